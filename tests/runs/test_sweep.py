"""A real sweep: one chart point per swept target, whatever ε each seed accounted."""

import csv
import math

import pytest

from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.sweep import run_sweep
from tests.conftest import SCENARIOS

pytestmark = pytest.mark.slow


def test_sweep_groups_seeds_by_target_epsilon(tmp_path):
    out = tmp_path / "sw"
    result = run_sweep(
        SCENARIOS / "quickstart.toml",
        ["privacy.target_epsilon=1,inf", "rounds=2"],
        out,
        seeds=2,
        show_progress=False,
        secrets=RunSecrets(bytes(range(32))),
    )
    assert (out / "sweep.png").stat().st_size > 10_000
    # sweep.csv: one row per run, with the target as swept beside the accounted ε
    rows = list(csv.DictReader(open(out / "sweep.csv", encoding="utf-8")))
    assert [(r["privacy.target_epsilon"], r["seed"]) for r in rows] == [
        ("1", "42"),
        ("1", "43"),
        ("inf", "42"),
        ("inf", "43"),
    ]
    assert all(0.9 < float(r["epsilon"]) <= 1.0001 for r in rows[:2])
    assert all(math.isinf(float(r["epsilon"])) for r in rows[2:])
    # the chart: one point per target, at the target, the mean of its two seeds
    assert result["x_key"] == "privacy.target_epsilon"
    series = result["series"]
    for metric in ("auc", "membership_auc"):
        line = series[metric]
        assert line.x == (1, math.inf) and line.n == (2, 2)
        for k, target in enumerate(("1", "inf")):
            got = [float(r[metric]) for r in rows if r["privacy.target_epsilon"] == target]
            assert line.mean[k] == pytest.approx(sum(got) / 2)
            assert (line.low[k], line.high[k]) == pytest.approx((min(got), max(got)))
    assert series["membership_auc_bound"].x == (1,)  # no bound without noise


def test_a_vertical_scenario_sweeps_without_a_membership_attack(tmp_path):
    """Vertical runs have no membership attack: their rows leave it empty (a sweep used
    to stop after its first vertical point)."""
    out = tmp_path / "sw"
    result = run_sweep(
        SCENARIOS / "vertical-synthetic.toml",
        [
            "privacy.frac_bits=10,13",
            "privacy.protocol=secret_sharing",
            "data.customers=1500",
            "rounds=1",
        ],
        out,
        show_progress=False,
        secrets=RunSecrets(bytes(range(32))),
    )
    rows = list(csv.DictReader(open(out / "sweep.csv", encoding="utf-8")))
    assert [r["privacy.frac_bits"] for r in rows] == ["10", "13"]
    assert all(r["membership_auc"] == "" and float(r["auc"]) > 0.6 for r in rows)
    assert not result["series"]["membership_auc"].x
