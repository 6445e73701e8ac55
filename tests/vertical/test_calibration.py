"""The bank calibrates the joint model on its training customers (model.calibration)."""

import csv
import json
import warnings

import numpy as np
import pytest
from flwr.app import Context, RecordDict
from flwr.common.constant import SUPERLINK_NODE_ID
from flwr.supercore.task_identity import TaskIdentity
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from fedrisk.errors import ScenarioError
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.run import run_scenario
from fedrisk.scenario import load_scenario
from fedrisk.vertical.calibration import Calibration, fit_calibration
from tests.conftest import read_summary


def scores_and_labels(n=5000, rate_shift=-3.0, seed=0):
    """Joint scores on the wrong scale (what the Taylor loss gives) and rare labels."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-0.5, 0.6, n)
    y = (rng.random(n) < expit(2.5 * z + rate_shift)).astype(float)
    return z, y


@pytest.mark.parametrize("method", ["intercept", "platt"])
def test_calibrated_mean_pd_on_the_training_customers_is_their_default_rate(method):
    z, y = scores_and_labels()
    assert abs(expit(z).mean() - y.mean()) > 0.1  # badly calibrated to begin with
    cal = fit_calibration(z, y, method)
    assert cal.method == method
    assert abs(cal.apply(z).mean() - y.mean()) < 1e-6
    assert fit_calibration(z, y, method) == cal  # no randomness


def test_platt_is_the_maximum_likelihood_scale_and_offset():
    z, y = scores_and_labels()
    cal = fit_calibration(z, y, "platt")
    ref = LogisticRegression(C=1e12, tol=1e-12, max_iter=10_000).fit(z[:, None], y)
    assert cal.scale == pytest.approx(ref.coef_[0, 0], rel=1e-4)
    assert cal.offset == pytest.approx(ref.intercept_[0], rel=1e-4)
    assert fit_calibration(z, y, "intercept").scale == 1.0


def test_folding_the_calibration_into_the_banks_part_scores_the_same():
    rng = np.random.default_rng(1)
    Xb, w, b, u_party = rng.normal(size=(50, 3)), rng.normal(size=3), 0.3, rng.normal(size=50)
    cal = Calibration("platt", 1.7, -2.1)
    w2, b2 = cal.bank_part(w, b)
    # the bank scales the party's partial scores; the party's weights are untouched
    assert np.allclose(expit(Xb @ w2 + b2 + cal.scale * u_party), cal.apply(Xb @ w + b + u_party))
    assert fit_calibration(*scores_and_labels(), "none") == Calibration()
    with pytest.raises(ValueError, match="both classes"):
        fit_calibration(np.zeros(4), np.zeros(4), "intercept")


def test_platt_is_refused_for_horizontal_runs(tmp_path):
    (tmp_path / "s.toml").write_text('name = "h"\n[model]\ncalibration = "platt"\n')
    with pytest.raises(ScenarioError, match="model.calibration: 'platt'") as err:
        load_scenario(tmp_path / "s.toml")
    assert "\n" not in str(err.value)


def test_vertical_runs_default_to_platt_and_horizontal_ones_to_the_intercept(tmp_path):
    from fedrisk.scenario import to_toml

    vertical = '[federation]\nkind = "vertical"\n'
    cases = {
        "": "intercept",
        vertical: "platt",
        vertical + '[model]\ncalibration = "intercept"\n': "intercept",
        vertical + '[model]\ncalibration = "none"\n': "none",
    }
    for k, (text, expected) in enumerate(cases.items()):
        path = tmp_path / f"s{k}.toml"
        path.write_text(f'name = "s{k}"\n' + text)
        s = load_scenario(path)
        assert s.model.calibration == expected, text
        path.write_text(to_toml(s))  # the resolved scenario reads back the same
        assert load_scenario(path).model.calibration == expected


# --- runs ------------------------------------------------------------------------------

SCENARIO = """name = "rare-defaults"
seed = 4
rounds = 2
[data]
source = "csv"
[federation]
kind = "vertical"
[[federation.parties]]
name = "bank"
label = true
path = "bank.csv"
[[federation.parties]]
name = "telecom"
path = "telecom.csv"
[model]
learning_rate = 0.3
batch_size = 256
calibration = "{calibration}"
[privacy]
key_bits = 1024
obfuscation = "djn"
"""
SECRETS = RunSecrets(bytes(range(32)))


def write_rare_default_csvs(folder, n=900, seed=2):
    """bank.csv (id, y, 2 heavy-tailed features) and telecom.csv (id, 2 features) on
    the same customers, about 6 % defaults."""
    rng = np.random.default_rng(seed)
    Xb = np.c_[rng.lognormal(0, 1, n), rng.standard_t(3, n)]
    Xt = rng.normal(size=(n, 2))
    logit = 0.8 * np.log(Xb[:, 0]) + 0.4 * Xb[:, 1] + Xt @ [0.9, -0.6] - 3.2
    y = (rng.random(n) < expit(logit)).astype(int)
    for name, header, cols in (
        ("bank.csv", ["id", "y", "b0", "b1"], [y, *Xb.T]),
        ("telecom.csv", ["id", "t0", "t1"], list(Xt.T)),
    ):
        with open(folder / name, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows([f"c{i:05d}", *(c[i] for c in cols)] for i in range(n))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vertical-calibration")
    write_rare_default_csvs(folder)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for method in ("none", "intercept", "platt"):
            path = folder / f"{method}.toml"
            path.write_text(SCENARIO.format(calibration=method))
            out[method] = folder / method
            run_scenario(load_scenario(path), out[method], show_progress=False, secrets=SECRETS)
    return {m: read_summary(d) for m, d in out.items()}, out


@pytest.mark.slow
def test_calibration_makes_the_joint_model_no_worse_and_keeps_its_ranking(runs):
    summaries, _ = runs
    before = summaries["none"]
    assert before["calibration"]["method"] == "none"
    for method in ("intercept", "platt"):
        after = summaries[method]
        cal = after["calibration"]
        assert cal["method"] == method
        assert abs(cal["train_mean_pd_after"] - cal["train_default_rate"]) < 1e-6
        assert abs(cal["train_mean_pd_before"] - cal["train_default_rate"]) > 0.02
        # a monotone map of the same joint scores: same ranking, better probabilities
        assert after["federated"]["auc"] == pytest.approx(before["federated"]["auc"], abs=1e-12)
        assert after["federated"]["log_loss"] <= before["federated"]["log_loss"]
        assert after["federated"]["brier"] <= before["federated"]["brier"]
        # the baselines do not change
        assert after["centralised"] == before["centralised"]
        assert after["local_only"] == before["local_only"]
    # what is reported per epoch is the calibrated model at the end
    with open(runs[1]["platt"] / "rounds.csv", newline="") as fh:
        last = list(csv.DictReader(fh))[-1]
    assert float(last["log_loss"]) == pytest.approx(summaries["platt"]["federated"]["log_loss"])


@pytest.mark.slow
def test_a_data_party_receives_one_request_that_names_no_customer(runs):
    summaries, out = runs

    def to_party(method):
        lines = (out[method] / "transcript.jsonl").read_text().splitlines()
        rows = [json.loads(line) for line in lines]
        return [r for r in rows if r["receiver"] == "telecom"]

    extra = [r for r in to_party("platt") if r["what"] == "calibration_request"]
    assert len(extra) == 1 and len(to_party("platt")) == len(to_party("none")) + 1
    assert len(to_party("intercept")) == len(to_party("platt"))
    said = summaries["platt"]["privacy"]["who_learns_what"]
    assert "calibration tells them nothing" in said["data parties"]
    assert "scale" in said["bank"]


@pytest.mark.slow
def test_the_calibration_request_does_not_depend_on_the_labels(tmp_path):
    """The attack a data party could mount on the calibration: read the labels off what
    it receives. Rerun the bank with the labels flipped: every calibration message the
    party receives is the same, byte for byte (and the calibration the bank fits is not)."""
    from fedrisk.crypto.paillier import generate_keypair
    from fedrisk.data.vertical import load_vertical
    from fedrisk.flower.engines import InProcessGrid
    from fedrisk.flower.recorder import ServerRecorder
    from fedrisk.vertical.bank import make_bank_app
    from fedrisk.vertical.party import make_party_app
    from fedrisk.vertical.protocol import BankJob, DataPartyJob, PartyData, VerticalOutcome

    write_rare_default_csvs(tmp_path, n=600)
    (tmp_path / "s.toml").write_text(
        SCENARIO.format(calibration="platt").replace("rounds = 2", "rounds = 1")
    )
    s = load_scenario(tmp_path / "s.toml")
    tables = load_vertical(s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pk, sk = generate_keypair(1024)
    holder, party = tables.holder, tables.data_parties[0]

    def calibration_messages(y):
        bank = BankJob(
            s,
            holder.name,
            holder.ids,
            holder.X,
            y,
            holder.feature_names,
            ("telecom",),
            pk,
            sk,
            secret=SECRETS.of("bank"),
        )
        job = DataPartyJob(s, (PartyData(party.name, party.ids, party.X, party.feature_names),), pk)
        received = []

        def spy(msg, context, call_next):
            received.append(msg)
            return call_next(msg, context)

        grid = InProcessGrid(make_party_app(job, [spy]), 1)
        TaskIdentity.task_id, TaskIdentity.run_id = 1, grid.run.run_id
        TaskIdentity.node_id = SUPERLINK_NODE_ID
        outcome = VerticalOutcome()
        make_bank_app(bank, ServerRecorder(None), outcome)(
            grid,
            Context(
                run_id=1,
                node_id=SUPERLINK_NODE_ID,
                node_config={},
                state=RecordDict(),
                run_config={},
            ),
        )
        grid.close()
        after_training = [
            m for m in received if dict(m.content["config"]).get("purpose") == "calibration"
        ]
        return [dict(m.content["config"]) for m in after_training], outcome.calibration

    flipped = (1 - holder.y).astype(holder.y.dtype)
    seen, fitted = calibration_messages(holder.y)
    seen_flipped, fitted_flipped = calibration_messages(flipped)
    assert len(seen) == 1 and seen == seen_flipped
    assert set(seen[0]) == {"stage", "split", "purpose", "server-round"}
    assert fitted["train_default_rate"] != fitted_flipped["train_default_rate"]
