"""End to end: the quickstart through Flower, its outputs, determinism and engines."""

import csv

import numpy as np
import pytest

from fedrisk.cli import main
from fedrisk.flower.transcript import read_jsonl
from fedrisk.scenario import CALIBRATION_ROUNDS
from tests.conftest import SCENARIOS, read_summary, without_timings

pytestmark = pytest.mark.slow

RUN_FILES = (
    "summary.json",
    "rounds.csv",
    "transcript.jsonl",
    "scenario.toml",
    "calibration.json",
    "auc_per_round.png",
    "calibration.png",
    "gains.png",
    "model.json",
    "scorecard.json",
    "scorecard.csv",
)


def test_quickstart_writes_every_file(quickstart_run):
    for name in RUN_FILES:
        assert (quickstart_run / name).is_file(), name
        assert (quickstart_run / name).stat().st_size > 0, name
    assert not [p for p in quickstart_run.parent.iterdir() if ".partial-" in p.name]


def test_quickstart_summary_contract_and_gains(quickstart_run):
    s = read_summary(quickstart_run)
    assert s["scenario"] == "quickstart" and s["seed"] == 42
    assert s["engine"] == "inprocess" and s["kind"] == "horizontal"
    for block in ("federated", "centralised"):
        assert set(s[block]) == {
            "auc",
            "auc_low",
            "auc_high",
            "ks",
            "gini",
            "log_loss",
            "brier",
            "mean_pd",
        }
        assert s[block]["auc_low"] < s[block]["auc"] < s[block]["auc_high"]
    assert len(s["local_only"]) == 5
    fed, cen = s["federated"]["auc"], s["centralised"]["auc"]
    mean_local = np.mean([m["auc"] for m in s["local_only"].values()])
    assert abs(fed - cen) <= 0.01, (fed, cen)
    assert fed > mean_local, (fed, mean_local)
    assert s["federated"]["gini"] == pytest.approx(2 * fed - 1)
    assert s["cost"]["rounds"] == 20 and s["cost"]["bytes_sent"] > 0


def test_rounds_csv_has_one_row_per_round(quickstart_run):
    rows = list(csv.DictReader(open(quickstart_run / "rounds.csv")))
    # 20 training rounds, then the calibration rounds
    assert [int(r["round"]) for r in rows] == list(range(1, 21 + CALIBRATION_ROUNDS))
    assert all(int(r["n_replies"]) == 5 for r in rows)
    final = float(rows[-1]["auc"])
    assert final == pytest.approx(read_summary(quickstart_run)["federated"]["auc"])
    assert float(rows[-1]["auc"]) > float(rows[0]["auc"])


def test_transcript_records_every_message_with_bytes(quickstart_run):
    entries = read_jsonl(quickstart_run / "transcript.jsonl")
    # round 0: each bank says who it is; then each round: the global model to 5 banks
    # and 5 updates back
    assert len(entries) == 10 + (20 + CALIBRATION_ROUNDS) * 10
    assert {e.what for e in entries if e.round == 0} == {"identity"}
    training = [e for e in entries if e.round > 0]
    assert {e.what for e in training} == {"global_model", "model_update"}
    assert {e.sender for e in training} == {"server"} | {f"bank_{i}" for i in range(1, 6)}
    assert all(e.bytes > 8 * 24 for e in training)  # at least the 24 float64 parameters
    total = sum(e.bytes for e in entries)
    assert total == read_summary(quickstart_run)["cost"]["bytes_sent"]
    # plain aggregation: the server reads every update in the clear, and says so
    assert all(e.readable_by_receiver and e.protection == "plaintext" for e in entries)


def test_same_seed_same_summary(quickstart_run, tmp_path, capsys):
    again = tmp_path / "again"
    assert main(["run", str(SCENARIOS / "quickstart.toml"), "--out", str(again), "--quiet"]) == 0
    assert capsys.readouterr().out == f"{again}\n"  # --quiet: only where the results are
    assert without_timings(read_summary(again)) == without_timings(read_summary(quickstart_run))
    assert (again / "transcript.jsonl").read_bytes() == (
        quickstart_run / "transcript.jsonl"
    ).read_bytes()


def test_other_seed_changes_results(quickstart_run, tmp_path):
    out = tmp_path / "seed"
    assert (
        main(
            [
                "run",
                str(SCENARIOS / "quickstart.toml"),
                "--out",
                str(out),
                "--quiet",
                "--set",
                "seed=7",
                "--set",
                "rounds=3",
            ]
        )
        == 0
    )
    assert read_summary(out)["federated"]["auc"] != read_summary(quickstart_run)["federated"]["auc"]


def test_rerun_into_an_old_run_folder_replaces_it(tmp_path):
    out = tmp_path / "r"
    args = [
        "run",
        str(SCENARIOS / "quickstart.toml"),
        "--out",
        str(out),
        "--quiet",
        "--set",
        "rounds=2",
    ]
    assert main(args) == 0
    assert main(args[:-1] + ["rounds=3"]) == 0
    assert read_summary(out)["cost"]["rounds"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_user_csv_runs(tmp_path):
    rng = np.random.default_rng(0)
    n, d = 3000, 6
    X = rng.normal(size=(n, d))
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ rng.normal(size=d) - 1.2)))).astype(int)
    with open(tmp_path / "mine.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "y"] + [f"x{i}" for i in range(d)])
        for i in range(n):
            w.writerow([f"c{i}", y[i], *X[i].round(5)])
    (tmp_path / "mine.toml").write_text(
        'name = "mine"\nrounds = 5\n[data]\nsource = "csv"\npath = "mine.csv"\n'
        '[federation]\nbanks = 3\npartition = "iid"\n'
    )
    out = tmp_path / "out"
    assert main(["run", str(tmp_path / "mine.toml"), "--out", str(out), "--quiet"]) == 0
    s = read_summary(out)
    assert s["data"]["features"] == d
    assert s["data"]["train_rows"] + s["data"]["test_rows"] == n
    assert s["federated"]["auc"] > 0.7  # the planted signal is found


def test_simulation_engine_matches_inprocess(quickstart_run, tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "sim"
    assert (
        main(
            [
                "run",
                str(SCENARIOS / "quickstart.toml"),
                "--out",
                str(out),
                "--quiet",
                "--engine",
                "simulation",
            ]
        )
        == 0
    )
    sim, inproc = read_summary(out), read_summary(quickstart_run)
    assert sim["engine"] == "simulation"
    assert abs(sim["federated"]["auc"] - inproc["federated"]["auc"]) <= 1e-9
    sim.pop("engine"), inproc.pop("engine")
    assert without_timings(sim) == without_timings(inproc)
    assert 'engine = "simulation"' in (out / "scenario.toml").read_text()
