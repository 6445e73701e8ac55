"""A horizontal WOE scorecard: three banks bin every characteristic of a file with text
columns and missing values from securely summed counts, select by IV, train FedAvg on
the WOE columns and print integer points per bin."""

import csv
import json
import shutil
import subprocess
import warnings

import pytest

from fedrisk.cli import main
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.run import run_scenario
from fedrisk.scenario import load_scenario
from tests.conftest import SCENARIOS, read_summary
from tests.test_cli_bad_input import assert_clean_refusal

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:1024-bit Paillier keys")]

SECRETS = RunSecrets(bytes(range(32)))
SCENARIO = SCENARIOS / "scorecard-german.toml"


@pytest.fixture(scope="module")
def german(tmp_path_factory):
    out = tmp_path_factory.mktemp("scorecard") / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_scenario(load_scenario(SCENARIO), out, show_progress=False, secrets=SECRETS)
    return out


def test_iv_and_bins_equal_the_pooled_ones_and_the_points_rank_like_the_model(german):
    s = read_summary(german)
    assert s["model"] == "scorecard"
    b = s["binning"]
    assert b["pooled_iv_max_abs_diff"] <= 1e-9 and b["bins_agree_with_pooled"]
    chars = {c["characteristic"]: c for c in b["characteristics"]}
    assert chars["purpose"]["kind"] == "text" and chars["age"]["kind"] == "numeric"
    kept = {f"banks:{k}" for k, c in chars.items() if c["selected"]}
    assert set(s["selection"]["selected"]) == kept
    assert all(c["iv"] >= 0.02 for c in chars.values() if c["selected"])
    assert abs(s["federated"]["auc"] - s["centralised"]["auc"]) <= 0.01
    assert s["scorecard"]["integer_points"]["spearman_with_model"] >= 0.99
    assert abs(s["scorecard"]["integer_points"]["auc"] - s["federated"]["auc"]) <= 0.01
    knows = s["privacy"]["who_learns_what"]
    assert knows["aggregator"].startswith("binning: ") and "training: " in knows["aggregator"]


def test_scorecard_csv_has_one_row_per_bin_missing_values_included(german):
    s = read_summary(german)
    rows = list(csv.DictReader(open(german / "scorecard.csv")))
    chars = {c["characteristic"]: c for c in s["binning"]["characteristics"] if c["selected"]}
    assert len(rows) == sum(c["bins"] for c in chars.values())
    amount = [r for r in rows if r["characteristic"] == "credit_amount"]
    assert amount[-1]["label"].startswith("missing")  # a bin of their own, or joined
    assert int(amount[-1]["customers"]) > 0 or any(
        r["label"].endswith(" or missing") and int(r["customers"]) > 0 for r in amount
    )
    # rare purposes are merged with others, never dropped: every customer is in a bin
    purpose = [r for r in rows if r["characteristic"] == "purpose"]
    total = sum(int(r["customers"]) for r in purpose)
    assert total == s["data"]["train_rows"]
    card = json.loads((german / "scorecard.json").read_text())
    assert all(c["binning"] is not None for c in card["characteristics"])


def test_the_aggregator_reads_no_count_under_paillier(german):
    rows = [json.loads(line) for line in open(german / "transcript.jsonl")]
    binning = [r for r in rows if r["round"] == 0 and r["receiver"] == "server"]
    counts = [r for r in binning if "counts" in r["what"]]
    assert counts and all(r["protection"] == "ciphertext" for r in counts)
    assert all(not r["readable_by_receiver"] for r in counts)


@pytest.mark.parametrize(
    "override, needles",
    [
        ("privacy.aggregation=secagg", ("privacy.aggregation", "'plain'", "'paillier'")),
        ("binning.method=chimerge", ("binning.method", "optimal")),
        ("selection.max_features=0", ("selection.max_features", "1")),
    ],
)
def test_bad_scorecard_input_exits_2(tmp_path, monkeypatch, capsys, override, needles):
    shutil.copy(SCENARIO, tmp_path / "s.toml")
    shutil.copytree(SCENARIOS / "data", tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    code = main(["run", "s.toml", "--out", "out", "--set", override])
    o, err = capsys.readouterr()
    err = "\n".join(ln for ln in err.splitlines() if "1024-bit" not in ln)
    assert_clean_refusal(subprocess.CompletedProcess([], code, o, err), *needles, cwd=tmp_path)


def test_without_scorecard_a_text_column_exits_2_and_says_binning_accepts_it(
    tmp_path, monkeypatch, capsys
):
    shutil.copy(SCENARIO, tmp_path / "s.toml")
    shutil.copytree(SCENARIOS / "data", tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    code = main(["run", "s.toml", "--out", "out", "--set", "model.kind=logistic"])
    o, err = capsys.readouterr()
    err = "\n".join(ln for ln in err.splitlines() if "1024-bit" not in ln)
    assert_clean_refusal(
        subprocess.CompletedProcess([], code, o, err),
        "german-style-credit.csv",
        "checking_status",
        "scorecard",
        cwd=tmp_path,
    )
