"""Secret-shared vertical logistic regression: it trains what the Paillier protocol
trains, with any number of data parties, both ways of making products, reproducibly;
bad input exits 2 with one line."""

import contextlib
import io
import json
import shutil
import warnings
from pathlib import Path

import pytest

from fedrisk.cli import main
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.run import run_scenario
from fedrisk.scenario import load_scenario

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:1024-bit Paillier keys")]

SECRETS = RunSecrets(bytes([7] * 32))


def run(path, out, *overrides, secrets=SECRETS):
    s = load_scenario(path, list(overrides))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_scenario(s, out, show_progress=False, secrets=secrets).summary


THREE_PARTIES = """name = "three"
seed = 5
rounds = 3
[data]
source = "synthetic"
customers = 6000
features_per_source = 4
[federation]
kind = "vertical"
[[federation.parties]]
name = "bank"
label = true
[[federation.parties]]
name = "telecom"
[[federation.parties]]
name = "ecommerce"
[[federation.parties]]
name = "tax"
[model]
batch_size = 512
[privacy]
protocol = "secret_sharing"
"""


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    """vertical-ss.toml and vertical.toml with the same parties' secrets: the same
    aligned customers, held-out split and batches."""
    tmp = tmp_path_factory.mktemp("ss")
    ss = run(REPO / "scenarios" / "vertical-ss.toml", tmp / "ss")
    paillier = run(REPO / "scenarios" / "vertical.toml", tmp / "paillier")
    return ss, paillier, tmp


def test_bundled_run_trains_what_the_paillier_protocol_trains(bundled):
    ss, paillier, _ = bundled
    assert ss["data"]["test_rows"] == paillier["data"]["test_rows"]
    assert abs(ss["federated"]["auc"] - paillier["federated"]["auc"]) <= 0.002
    assert abs(ss["centralised"]["auc"] - paillier["centralised"]["auc"]) < 1e-12
    assert abs(ss["federated"]["auc"] - ss["centralised"]["auc"]) <= 0.002
    assert ss["federated"]["auc"] > ss["local_only"]["bank"]["auc"] + 0.04
    p = ss["privacy"]
    assert p["protocol"] == "secret_sharing" and p["triples"] == "dealer"
    assert p["truncation_failure_bound_run"] < 0.05
    assert "dealer" in p["who_learns_what"] and "collude" in p["who_learns_what"]["dealer"]


def test_the_transcript_marks_shares_masked_and_the_bank_reads_no_partial_score(bundled):
    _, _, tmp = bundled
    rows = [json.loads(line) for line in (tmp / "ss" / "transcript.jsonl").read_text().splitlines()]
    to_bank = {r["what"] for r in rows if r["receiver"] == "bank" and r["round"] > 0}
    assert "partial_scores" not in to_bank
    readable = {
        (r["what"], r["receiver"])
        for r in rows
        if r["round"] > 0 and r["readable_by_receiver"] and r["what"] != "ack"
    }
    # readable: row positions, the dealer's batch sizes, and the outputs (the shares of
    # z the bank sums to score, each party's share of its own weights at the reveal)
    outputs = {
        ("score_shares", "bank"),
        ("own_weight_share", "bank"),
        ("own_weight_share", "provider"),
    }
    assert {w for w, _ in readable - outputs} <= {"row_selection", "batch_sizes"}, readable
    training = {r["what"] for r in rows if 0 < r["round"] < 2 and r["readable_by_receiver"]}
    assert training <= {"row_selection", "batch_sizes", "ack"}, training
    assert any(r["sender"] == "dealer" for r in rows)
    paillier = [
        json.loads(line)
        for line in (tmp / "paillier" / "transcript.jsonl").read_text().splitlines()
    ]
    assert any(r["what"] == "partial_scores" and r["readable_by_receiver"] for r in paillier)


def test_three_data_parties_train_jointly(tmp_path):
    (tmp_path / "s.toml").write_text(THREE_PARTIES)
    summary = run(tmp_path / "s.toml", tmp_path / "out")
    assert set(summary["data"]["parties"]) == {"bank", "telecom", "ecommerce", "tax"}
    assert abs(summary["federated"]["auc"] - summary["centralised"]["auc"]) <= 0.01
    assert summary["federated"]["auc"] > summary["local_only"]["bank"]["auc"] + 0.02


def test_same_secrets_same_results_bit_for_bit_and_reveal_none(tmp_path):
    (tmp_path / "s.toml").write_text(
        THREE_PARTIES.replace("customers = 6000", "customers = 2000").replace(
            "rounds = 3", "rounds = 1"
        )
    )
    a = run(tmp_path / "s.toml", tmp_path / "a")
    b = run(tmp_path / "s.toml", tmp_path / "b")
    c = run(tmp_path / "s.toml", tmp_path / "c", "privacy.reveal=none")
    assert a["federated"] == b["federated"]
    # reveal only decides what happens after the test scores; another scenario is
    # another run tag, so other pads, so other ±1-unit truncation roundings
    assert abs(a["federated"]["auc"] - c["federated"]["auc"]) < 1e-3
    assert c["privacy"]["reveal"] == "none"
    other = run(tmp_path / "s.toml", tmp_path / "d", secrets=RunSecrets(bytes([8] * 32)))
    assert other["federated"] != a["federated"]  # a party's secrets drive the split


def test_paillier_triples_train_what_the_dealers_triples_train(tmp_path):
    text = (
        THREE_PARTIES.replace(
            '[[federation.parties]]\nname = "ecommerce"\n[[federation.parties]]\nname = "tax"\n', ""
        )
        .replace("customers = 6000", "customers = 1500")
        .replace("rounds = 3", "rounds = 1")
    )
    (tmp_path / "s.toml").write_text(text)
    dealer = run(tmp_path / "s.toml", tmp_path / "dealer")
    paillier = run(
        tmp_path / "s.toml",
        tmp_path / "paillier",
        "privacy.triples=paillier",
        "privacy.key_bits=1024",
        "model.calibration=none",
    )
    assert abs(dealer["federated"]["auc"] - paillier["federated"]["auc"]) < 0.002
    assert paillier["cost"]["encryptions"] > 0
    assert paillier["privacy"]["triples"] == "paillier"
    assert "dealer" not in paillier["privacy"]["who_learns_what"]


BAD = [
    ('[privacy]\nprotocol = "paillier"\ntriples = "dealer"\n', "privacy.triples"),
    ('[privacy]\nprotocol = "secret_sharing"\ntriples = "paillier"\n', "privacy.triples"),
    ('[privacy]\nprotocol = "secret_sharing"\nfrac_bits = 40\n', "privacy.frac_bits"),
    (
        '[privacy]\nprotocol = "secret_sharing"\ndp = "label"\nnoise_multiplier = 1.0\n',
        "privacy.dp",
    ),
    ('[privacy]\nprotocol = "secret_sharing"\ntriples = "broker"\n', "privacy.triples"),
    ('[privacy]\nprotocol = "secret_sharing"\nlabel_leakage_attack = true\n', "label_leakage"),
    ('[privacy]\nprotocol = "mpc"\n', "privacy.protocol"),
]


@pytest.mark.parametrize("tail,key", BAD)
def test_bad_secret_sharing_scenarios_exit_2_with_one_line(tmp_path, tail, key):
    text = THREE_PARTIES.split("[privacy]")[0].replace("customers = 6000", "customers = 600")
    (tmp_path / "s.toml").write_text(text + tail)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["run", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")])
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
    assert code == 2, err.getvalue()
    assert len(lines) == 1 and key in lines[0] and "Traceback" not in err.getvalue()
    assert not (tmp_path / "out").exists()
    shutil.rmtree(tmp_path / "out", ignore_errors=True)


def test_a_party_named_dealer_is_refused_in_dealer_mode(tmp_path):
    text = THREE_PARTIES.replace('name = "tax"', 'name = "dealer"')
    (tmp_path / "s.toml").write_text(text)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["run", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")])
    assert code == 2 and "federation.parties" in err.getvalue() and "dealer" in err.getvalue()


def test_a_long_paillier_triples_run_is_announced(tmp_path, monkeypatch):
    from fedrisk.runs import sharing
    from fedrisk.runs.vertical import prepare_vertical

    (tmp_path / "s.toml").write_text(THREE_PARTIES.replace("customers = 6000", "customers = 800"))
    dealer = load_scenario(tmp_path / "s.toml")
    assert sharing.estimated_seconds(dealer, prepare_vertical(dealer, None, SECRETS)) == 0.0
    two = THREE_PARTIES.replace(
        '[[federation.parties]]\nname = "ecommerce"\n[[federation.parties]]\nname = "tax"\n', ""
    ).replace("customers = 6000", "customers = 800")
    (tmp_path / "p.toml").write_text(two)
    s = load_scenario(tmp_path / "p.toml", ["privacy.triples=paillier", "privacy.key_bits=1024"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        setup = prepare_vertical(s, None, SECRETS)
    seconds = sharing.estimated_seconds(s, setup)
    assert 0.1 < seconds < 600
    monkeypatch.setattr(sharing, "LONG_RUN_SECONDS", seconds / 2)
    with pytest.warns(UserWarning, match="privacy.triples = 'dealer' takes seconds"):
        sharing.warn_if_long(s, setup)
