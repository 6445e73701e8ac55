"""A vertical WOE scorecard: a bank and a credit bureau bin every characteristic
(text columns and missing values included) from the bank's encrypted labels, select by
IV, train hetero LR on the WOE columns and print integer points per bin."""

import csv
import json
import shutil
import subprocess
import warnings

import numpy as np
import pytest
from flwr.app import Message

from fedrisk.cli import main
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.run import run_scenario
from fedrisk.scenario import load_scenario
from tests.conftest import SCENARIOS, read_summary
from tests.test_cli_bad_input import assert_clean_refusal

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:1024-bit Paillier keys")]

SECRETS = RunSecrets(bytes(range(32)))
SCENARIO = SCENARIOS / "vertical-scorecard-german.toml"


@pytest.fixture(scope="module")
def german(tmp_path_factory):
    """The German-style files, a Flower mod reading every message a party receives."""
    seen: list[tuple[str, dict]] = []

    def spy(msg: Message, context, call_next):
        cfg = msg.content.config_records.get("config", {})
        arrays = {
            k: {n: a.numpy() for n, a in r.items()} for k, r in msg.content.array_records.items()
        }
        seen.append((str(cfg.get("stage", "")), {"config": dict(cfg), "arrays": arrays}))
        return call_next(msg, context)

    out = tmp_path_factory.mktemp("scorecard") / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_scenario(
            load_scenario(SCENARIO), out, show_progress=False, secrets=SECRETS, client_mods=[spy]
        )
    return out, seen


def test_iv_equals_pooled_selection_is_listed_and_points_rank_like_the_model(german):
    out, _ = german
    s = read_summary(out)
    assert s["model"] == "scorecard"
    b = s["binning"]
    assert b["pooled_iv_max_abs_diff"] <= 1e-9 and b["bins_agree_with_pooled"]
    chars = {c["characteristic"]: c for c in b["characteristics"]}
    # text columns of both parties are binned; a rare purpose is merged, not dropped
    assert chars["checking_status"]["kind"] == "text" and chars["purpose"]["kind"] == "text"
    assert chars["purpose"]["owner"] == "bureau"
    kept = [k for k, c in chars.items() if c["selected"]]
    assert set(s["selection"]["selected"]) == {f"{chars[k]['owner']}:{k}" for k in kept}
    assert all(chars[k]["iv"] >= 0.02 for k in kept)
    assert all(c["reason"] for c in chars.values())
    assert abs(s["federated"]["auc"] - s["centralised"]["auc"]) <= 0.01
    assert s["federated"]["auc"] > s["local_only"]["bank"]["auc"]  # the bureau's bins help
    assert s["scorecard"]["integer_points"]["spearman_with_model"] >= 0.99
    knows = s["privacy"]["who_learns_what"]
    assert knows["bank"].startswith("binning: ") and "defaulters per bin" in knows["bank"]
    assert "WOE" in knows["data parties"] and "training: " in knows["data parties"]


def test_scorecard_csv_has_one_row_per_bin_with_integer_points(german):
    out, _ = german
    s = read_summary(out)
    rows = list(csv.DictReader(open(out / "scorecard.csv")))
    chars = {c["characteristic"]: c for c in s["binning"]["characteristics"] if c["selected"]}
    assert {r["characteristic"] for r in rows} == set(chars)
    assert len(rows) == sum(c["bins"] for c in chars.values())
    assert all(int(r["points"]) == float(r["points"]) for r in rows)
    # credit_amount's empty cells (about 5 %) have a bin of their own, or, too few for
    # one (under binning.min_bin_share), join the largest bin
    amount = [r for r in rows if r["characteristic"] == "credit_amount"]
    assert amount[-1]["label"].startswith("missing")
    assert int(amount[-1]["customers"]) > 0 or any(
        r["label"].endswith(" or missing") and int(r["customers"]) > 0 for r in amount
    )
    card = json.loads((out / "scorecard.json").read_text())
    assert card["base_points_rounded"] == round(card["base_points"])


def test_the_bank_gets_bin_sums_and_the_bureau_only_ciphertexts_groups_and_its_woe(german):
    out, seen = german
    rows = [json.loads(line) for line in open(out / "transcript.jsonl")]
    setup = [r for r in rows if r["round"] == 0]
    to_bank = {r["what"] for r in setup if r["receiver"] == "bank"}
    to_bureau = {r["what"] for r in setup if r["receiver"] == "bureau"}
    psi = {"psi_masked_ids", "psi_double_masked_ids", "psi_masked_and_double_masked_ids"}
    assert to_bank - psi == {"identity", "encrypted_bin_sums", "stability", "ack"}
    assert to_bureau - psi == {
        "identity",
        "aligned_ids",
        "encrypted_labels",
        "bin_groups",
        "woe_values",
    }
    assert all(r["protection"] == "ciphertext" for r in setup if r["what"] == "encrypted_labels")
    # what the bureau really received: labels only as ciphertexts (bytes, no 0/1 vector)
    (labels,) = [m for stage, m in seen if stage == "labels"]
    assert set(labels["arrays"]) == {"labels"}
    (ct,) = labels["arrays"]["labels"].values()
    assert ct.dtype == np.uint8 and ct.shape[1] == 256  # 1024-bit n: n² in 256 bytes
    (groups,) = [m for stage, m in seen if stage == "groups"]
    assert all(isinstance(v, (int, list, str)) for v in groups["config"].values())
    # WOE only for the bureau's selected columns
    (woe,) = [m for stage, m in seen if stage == "woe"]
    s = read_summary(out)
    bureau = [c for c in s["binning"]["characteristics"] if c["owner"] == "bureau"]
    chosen = [j for j, c in enumerate(bureau) if c["selected"]]
    assert sorted(woe["config"]["selected"]) == chosen
    assert {k for k in woe["config"] if k.startswith("woe-")} == {f"woe-{j}" for j in chosen}


def test_same_secrets_same_scorecard(german, tmp_path):
    out, _ = german
    again = tmp_path / "again"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_scenario(load_scenario(SCENARIO), again, show_progress=False, secrets=SECRETS)
    assert (again / "scorecard.csv").read_text() == (out / "scorecard.csv").read_text()


@pytest.mark.parametrize(
    "override, needles",
    [
        ("binning.max_bins=1", ("binning.max_bins", "2")),
        ("selection.min_iv=-0.1", ("selection.min_iv", ">= 0")),
        ("selection.min_iv=5", ("selection", "no characteristic is kept", "min_iv")),
    ],
)
def test_bad_scorecard_input_exits_2(tmp_path, monkeypatch, capsys, override, needles):
    for f in ("vertical-scorecard-german.toml",):
        shutil.copy(SCENARIO, tmp_path / f)
    shutil.copytree(SCENARIOS / "data", tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    code = main(["run", "vertical-scorecard-german.toml", "--out", "out", "--set", override])
    o, err = capsys.readouterr()
    err = "\n".join(ln for ln in err.splitlines() if "1024-bit" not in ln)
    assert_clean_refusal(subprocess.CompletedProcess([], code, o, err), *needles, cwd=tmp_path)


def test_a_constant_characteristic_is_named_dropped_and_the_run_goes_on(tmp_path, capsys):
    shutil.copy(SCENARIO, tmp_path / "s.toml")
    (tmp_path / "data").mkdir()
    shutil.copy(SCENARIOS / "data" / "german-style-bank.csv", tmp_path / "data")
    lines = (SCENARIOS / "data" / "german-style-bureau.csv").read_text().splitlines()
    bureau = [lines[0] + ",region"] + [ln + ",north" for ln in lines[1:]]
    (tmp_path / "data" / "german-style-bureau.csv").write_text("\n".join(bureau) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_scenario(load_scenario(tmp_path / "s.toml"), tmp_path / "out", show_progress=False)
    err = capsys.readouterr().err
    assert "'region'" in err and "dropped" in err
    names = {
        c["characteristic"] for c in read_summary(tmp_path / "out")["binning"]["characteristics"]
    }
    assert "region" not in names and "purpose" in names


def test_the_bureaus_cut_points_and_categories_stay_in_its_own_owner_only_part(german):
    out, _ = german
    public = (out / "scorecard.csv").read_text() + (out / "scorecard.json").read_text()
    assert not [v for v in ("new car", "furniture", "retraining", "unemployed") if v in public]
    rows = list(csv.DictReader(open(out / "scorecard.csv")))
    assert all(r["label"].startswith("bin ") for r in rows if r["owner"] == "bureau")
    card = json.loads((out / "scorecard.json").read_text())
    assert all(c["binning"] is None for c in card["characteristics"] if c["owner"] == "bureau")
    part = out / "model" / "scorecard-bureau.json"
    assert part.stat().st_mode & 0o777 == 0o600 and (out / "model").stat().st_mode & 0o777 == 0o700
    mine = json.loads(part.read_text())
    assert {c["owner"] for c in mine["characteristics"]} == {"bureau"}
    assert all(c["binning"] is not None for c in mine["characteristics"])
