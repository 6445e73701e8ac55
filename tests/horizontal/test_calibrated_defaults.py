"""The shipped horizontal scenarios, with their default settings, give calibrated models
that match the converged pooled reference (issue 13's acceptance figures)."""

import pytest

from fedrisk import load_scenario, run_scenario
from tests.conftest import SCENARIOS

pytestmark = pytest.mark.slow

SHIPPED = [
    "quickstart",
    "paillier",
    "secagg",
    "dp-customers",
    "noniid",
    "noniid-fedprox",
    "quantity-skew",
]


@pytest.mark.parametrize("name", SHIPPED)
def test_mean_pd_and_log_loss_match_the_reference(tmp_path, name):
    s = load_scenario(SCENARIOS / f"{name}.toml")
    got = run_scenario(s, tmp_path / name, show_progress=False).summary
    fed, ref = got["federated"], got["reference"]
    gap_pp = 100 * (fed["mean_pd"] - got["observed_default_rate"])
    assert abs(gap_pp) <= 2.0, gap_pp
    assert fed["log_loss"] <= 1.05 * ref["log_loss"], (fed["log_loss"], ref["log_loss"])
    assert not [w for w in got["warnings"] if "mean PD" in w]


@pytest.mark.parametrize("name", ["quickstart"])
def test_defaults_match_the_reference_and_beat_the_banks_alone(tmp_path, name):
    s = load_scenario(SCENARIOS / f"{name}.toml")
    got = run_scenario(s, tmp_path / name, show_progress=False).summary
    fed, ref = got["federated"], got["reference"]
    mean_local = sum(m["auc"] for m in got["local_only"].values()) / len(got["local_only"])
    assert abs(fed["auc"] - ref["auc"]) <= 0.005
    assert fed["auc"] >= mean_local
    assert fed["log_loss"] <= 1.05 * ref["log_loss"]
