"""Vertical joint modelling: alignment, the joint model, who saw what, bad input."""

import contextlib
import csv
import io
import os
import subprocess
import warnings

import numpy as np
import pytest
from flwr.app import Context, RecordDict
from flwr.common.constant import SUPERLINK_NODE_ID
from flwr.supercore.task_identity import TaskIdentity

from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.run import run_scenario
from fedrisk.scenario import load_scenario
from tests.conftest import read_summary

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:1024-bit Paillier keys")]


def write_party_csvs(tmp_path, n=2500, shared=0.8, seed=0):
    """bank.csv (id, y, 3 features) and telecom.csv (id, 3 features) with 80 % of the
    bank's ids plus others; the signal is split across both."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"c{i:05d}" for i in range(n)])
    Xb, Xt = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    logit = Xb @ [0.8, -0.5, 0.3] + Xt @ [1.0, 0.7, -0.6] - 1.2
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    with open(tmp_path / "bank.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "y", "b0", "b1", "b2"])
        for i in range(n):
            w.writerow([ids[i], y[i], *Xb[i].round(5)])
    keep = rng.permutation(n)[: int(shared * n)]
    extra = [f"t{i:05d}" for i in range(300)]
    with open(tmp_path / "telecom.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "t0", "t1", "t2"])
        rows = [(ids[i], *Xt[i].round(5)) for i in keep] + [
            (e, *rng.normal(size=3).round(5)) for e in extra
        ]
        for r in rng.permutation(len(rows)):
            w.writerow(rows[r])
    return set(ids[keep])


SCENARIO = """name = "mine"
seed = 3
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
[privacy]
key_bits = 1024
obfuscation = "djn"
label_leakage_attack = true
"""


SECRETS = RunSecrets(bytes(range(32)))


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vertical")
    shared = write_party_csvs(tmp)
    (tmp / "s.toml").write_text(SCENARIO)
    out = tmp / "out"
    # the parties' secrets fixed: the held-out split is drawn from the bank's secret, and
    # over fresh secrets two epochs' gap to the converged model spreads (|gap| 0.000-0.011
    # over 2,000 customers), so a fresh draw would make the 0.01 check a coin toss
    run_scenario(load_scenario(tmp / "s.toml"), out, show_progress=False, secrets=SECRETS)
    return out, shared


def test_users_csvs_align_exactly_and_train_jointly(csv_run):
    out, shared = csv_run
    s = read_summary(out)
    assert s["kind"] == "vertical"
    assert s["data"]["aligned_customers"] == len(shared) == 2000
    assert s["data"]["train_rows"] + s["data"]["test_rows"] == 2000
    assert s["data"]["parties"]["telecom"]["rows"] == 2300
    fed, cen = s["federated"]["auc"], s["centralised"]["auc"]
    assert abs(fed - cen) <= 0.01, (fed, cen)
    assert fed - s["local_only"]["bank"]["auc"] >= 0.05  # the telecom features matter
    assert s["cost"]["encryptions"] > 0 and s["cost"]["bytes_sent"] > 0


def test_label_leakage_is_reported_and_shrinks_with_batch_size(csv_run):
    leak = read_summary(csv_run[0])["attacks"]["label_leakage"]["label_auc_by_batch_size"]
    assert leak["1"] > 0.95
    assert leak["1"] > leak["32"] > 0.5


def test_transcript_says_who_could_read_what(csv_run):
    rows = [__import__("json").loads(line) for line in open(csv_run[0] / "transcript.jsonl")]
    to_party = [r for r in rows if r["receiver"] == "telecom" and r["round"] > 0]
    assert to_party
    assert {r["what"] for r in to_party} == {
        "row_selection",
        "encrypted_residuals",
        "masked_gradient",
        "calibration_request",  # the default calibration: one, naming no customer
    }
    assert all(
        r["protection"] in ("ciphertext", "masked")
        for r in to_party
        if r["what"] not in ("row_selection", "calibration_request")
    )
    # the bank only ever receives partial scores and masked gradients from the party
    to_bank = {r["what"] for r in rows if r["receiver"] == "bank" and r["round"] > 0}
    assert to_bank == {"partial_scores", "encrypted_masked_gradient"}


def test_no_party_receives_another_partys_data(tmp_path):
    """Capture every message the data party receives and check its content: no float
    arrays at all, bytes that are ciphertexts (< n²), masked values (< n) or PSI points,
    and integer lists that are distinct row positions (not labels)."""
    from fedrisk.crypto.paillier import generate_keypair
    from fedrisk.data.vertical import load_vertical
    from fedrisk.flower.recorder import ServerRecorder
    from fedrisk.vertical.bank import make_bank_app
    from fedrisk.vertical.party import make_party_app
    from fedrisk.vertical.protocol import BankJob, DataPartyJob, PartyData, VerticalOutcome

    write_party_csvs(tmp_path, n=800)
    (tmp_path / "s.toml").write_text(SCENARIO.replace("rounds = 2", "rounds = 1"))
    s = load_scenario(tmp_path / "s.toml")
    tables = load_vertical(s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pk, sk = generate_keypair(1024)
    holder = tables.holder
    bank = BankJob(
        s, holder.name, holder.ids, holder.X, holder.y, holder.feature_names, ("telecom",), pk, sk
    )
    party = tables.data_parties[0]
    job = DataPartyJob(s, (PartyData(party.name, party.ids, party.X, party.feature_names),), pk)
    received = []

    def spy(msg, context, call_next):
        received.append(msg)
        return call_next(msg, context)

    from fedrisk.flower.engines import InProcessGrid

    grid = InProcessGrid(make_party_app(job, [spy]), 1)
    TaskIdentity.task_id, TaskIdentity.run_id = 1, grid.run.run_id
    TaskIdentity.node_id = SUPERLINK_NODE_ID
    app = make_bank_app(bank, ServerRecorder(None), VerticalOutcome())
    app(
        grid,
        Context(
            run_id=1, node_id=SUPERLINK_NODE_ID, node_config={}, state=RecordDict(), run_config={}
        ),
    )
    grid.close()
    assert len(received) > 5
    bank_values = set(np.round(holder.X.ravel(), 5).tolist())
    for msg in received:
        assert not msg.content.array_records, "a float array reached the data party"
        for record in msg.content.config_records.values():
            for key, value in record.items():
                values = value if isinstance(value, list) else [value]
                for v in values:
                    if isinstance(v, bytes):
                        iv = int.from_bytes(v, "big")
                        assert len(v) == 32 or iv < pk.nsquare, key
                    elif isinstance(v, float):
                        raise AssertionError(f"float {key} reached the data party")
                    elif isinstance(v, int) and key == "rows":
                        pass
                if key == "rows":
                    assert len(set(value)) == len(value)  # positions, not 0/1 labels
                if key in ("train-ids", "test-ids"):
                    assert set(value) <= set(party.ids.tolist())
        assert not bank_values & {
            round(v, 5)
            for r in msg.content.config_records.values()
            for val in r.values()
            for v in (val if isinstance(val, list) else [val])
            if isinstance(v, float)
        }


def cli(*args, cwd):
    """The command line's own entry point, in this process (``main`` catches everything
    the process would; a fresh interpreter per case cost seconds each)."""
    from fedrisk.cli import main

    out, err, here = io.StringIO(), io.StringIO(), os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


BAD = {
    "party with no columns": (
        '[[federation.parties]]\nname = "bank"\nlabel = true\ncolumns = ["PAY_6"]\n'
        '[[federation.parties]]\nname = "provider"\ncolumns = []\n',
        "federation.parties[1].columns: party 'provider' holds no columns",
    ),
    "two label holders": (
        '[[federation.parties]]\nname = "bank"\nlabel = true\ncolumns = ["PAY_6"]\n'
        '[[federation.parties]]\nname = "provider"\nlabel = true\ncolumns = ["AGE"]\n',
        "exactly one party must have label = true; bank, provider all do",
    ),
    "no label holder": (
        '[[federation.parties]]\nname = "bank"\ncolumns = ["PAY_6"]\n'
        '[[federation.parties]]\nname = "provider"\ncolumns = ["AGE"]\n',
        "exactly one party must have label = true; none does",
    ),
    "column held twice": (
        '[[federation.parties]]\nname = "bank"\nlabel = true\ncolumns = ["PAY_6", "AGE"]\n'
        '[[federation.parties]]\nname = "provider"\ncolumns = ["AGE"]\n',
        "'AGE' is held by both 'bank' and 'provider'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_vertical_scenarios_exit_2(tmp_path, case):
    parties, needle = BAD[case]
    (tmp_path / "s.toml").write_text('name = "v"\n[federation]\nkind = "vertical"\n' + parties)
    proc = cli("run", "s.toml", "--out", "out", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip().splitlines()
    assert len(line) == 1 and needle in line[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_no_shared_ids_and_duplicate_ids_exit_2(tmp_path):
    write_party_csvs(tmp_path, n=300)
    text = open(tmp_path / "telecom.csv").read().replace("c0", "zz")  # no id in common
    (tmp_path / "telecom.csv").write_text(text)
    (tmp_path / "s.toml").write_text(SCENARIO)
    proc = cli("run", "s.toml", "--out", "out", cwd=tmp_path)
    assert proc.returncode == 2 and "share no customer ids" in proc.stderr, proc.stderr
    assert len(errors(proc)) == 1 and not (tmp_path / "out").exists()

    write_party_csvs(tmp_path, n=300)
    lines = open(tmp_path / "telecom.csv").read().splitlines()
    (tmp_path / "telecom.csv").write_text("\n".join(lines + [lines[1]]) + "\n")
    proc = cli("run", "s.toml", "--out", "out", cwd=tmp_path)
    assert proc.returncode == 2 and "telecom.csv" in proc.stderr, proc.stderr
    assert len(errors(proc)) == 1 and not (tmp_path / "out").exists()


def errors(proc) -> list[str]:
    """stderr lines but the one-line warnings (1024-bit keys warn, on purpose)."""
    lines = proc.stderr.strip().splitlines()
    assert all(line.startswith("fedrisk: ") for line in lines), proc.stderr
    return [line for line in lines if not line.startswith("fedrisk: warning:")]


def test_label_dp_defence_is_accounted_and_blunts_the_attack(tmp_path, csv_run):
    from dp_accounting import dp_event, rdp

    write_party_csvs(tmp_path)
    (tmp_path / "s.toml").write_text(SCENARIO + 'dp = "label"\ntarget_epsilon = 1.0\n')
    out = tmp_path / "dp"
    run_scenario(load_scenario(tmp_path / "s.toml"), out, show_progress=False)
    s = read_summary(out)
    p = s["privacy"]
    # 2 epochs x (1 data party + the bank's own update)
    assert (
        p["dp"] == "label" and p["unit"] == "label" and p["sample_rate"] == 1.0 and p["steps"] == 4
    )
    acc = rdp.RdpAccountant()
    acc.compose(
        dp_event.SelfComposedDpEvent(dp_event.GaussianDpEvent(p["noise_multiplier"]), p["steps"])
    )
    assert acc.get_epsilon(p["delta"]) == pytest.approx(p["epsilon"], rel=0.01)
    assert p["epsilon"] <= 1.0
    leak = s["attacks"]["label_leakage"]["label_auc_by_batch_size"]
    undefended = read_summary(csv_run[0])["attacks"]["label_leakage"]["label_auc_by_batch_size"]
    assert leak["1"] < undefended["1"] - 0.2  # per-customer labels no longer fall out
    eps = [float(r["epsilon"]) for r in csv.DictReader(open(out / "rounds.csv"))]
    assert eps[-1] == pytest.approx(p["epsilon"])


def test_who_learns_what_says_a_data_party_learns_the_bank_count_and_intersection(csv_run):
    said = read_summary(csv_run[0])["privacy"]["who_learns_what"]["data parties"]
    assert "bank's customer count" in said and "multi-party intersection" in said
