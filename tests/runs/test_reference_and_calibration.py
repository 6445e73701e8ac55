"""Every run, horizontal or vertical, reports the converged reference and
calibration-in-the-large (mean PD against the observed default rate), and warns when the
federated model's mean PD is more than 2 percentage points off."""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from threadpoolctl import threadpool_limits

from fedrisk.cli import main
from fedrisk.data.prepare import prepare_horizontal
from fedrisk.evaluation import CALIBRATION_WARN_PP
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.run import run_scenario
from fedrisk.scenario import load_scenario
from tests.conftest import SCENARIOS, read_summary

METRICS = {"auc", "ks", "gini", "log_loss", "brier", "mean_pd"}

# A bank and a telecom on 1,500 synthetic customers, one epoch with small keys: seconds.
VERTICAL = """name = "tiny-vertical"
seed = 7
rounds = 1
[data]
source = "synthetic"
customers = 1500
features_per_source = 4
overlap = 0.9
[federation]
kind = "vertical"
[[federation.parties]]
name = "bank"
label = true
signal = 0.6
[[federation.parties]]
name = "telecom"
signal = 1.0
[model]
learning_rate = 0.3
batch_size = 1024
[privacy]
key_bits = 1024
"""


@pytest.fixture(scope="module")
def horizontal(tmp_path_factory):
    """The quickstart for 3 rounds through the CLI, with what it printed."""
    out = tmp_path_factory.mktemp("h") / "run"
    args = ["run", str(SCENARIOS / "quickstart.toml"), "--out", str(out), "--set", "rounds=3"]
    return out, args


def check_calibration_reported(s: dict) -> None:
    observed = s["observed_default_rate"]
    assert observed == s["data"]["test_default_rate"]
    for block in [s["federated"], s["centralised"], s["reference"], *s["local_only"].values()]:
        assert METRICS <= set(block)
        assert 0.0 < block["mean_pd"] < 1.0
    gap = s["comparison"]["calibration_gap_pp"]
    assert gap == pytest.approx(100 * (s["federated"]["mean_pd"] - observed))
    miscalibrated = [w for w in s["warnings"] if "miscalibrated" in w]
    # the warning is there exactly when the numbers beside it say it should be
    assert len(miscalibrated) == (abs(gap) > CALIBRATION_WARN_PP)
    for w in miscalibrated:
        assert f"by {abs(gap):.1f} pp" in w and f"{100 * observed:.1f}%" in w


def check_reference(s: dict) -> None:
    ref, fed, cmp = s["reference"], s["federated"], s["comparison"]
    assert ref["kind"] == "logistic" and ref["converged"] is True
    assert ref["n_iter"] < ref["max_iter"] and ref["gradient_norm"] < 1e-4
    assert cmp["federated_minus_reference_auc"] == pytest.approx(fed["auc"] - ref["auc"])
    assert cmp["log_loss_ratio_federated_to_reference"] == pytest.approx(
        fed["log_loss"] / ref["log_loss"]
    )


def test_horizontal_run_reports_reference_mean_pd_and_warning(horizontal, capsys, monkeypatch):
    out, args = horizontal
    monkeypatch.setenv("COLUMNS", "200")  # rich: one line per table row
    assert main(args) == 0
    printed = capsys.readouterr()
    s = read_summary(out)
    check_reference(s)
    check_calibration_reported(s)
    assert s["reference"]["features"] == s["data"]["features"] == 23
    assert s["reference"]["train_rows"] == s["data"]["train_rows"]
    # an independent fit on the run's own rows and scaling scores the same
    scenario = load_scenario(SCENARIOS / "quickstart.toml", ["rounds=3"])
    data = prepare_horizontal(scenario)
    n = data.train.n_rows
    sk = LogisticRegression(C=1 / (scenario.model.l2 * n), tol=1e-10, max_iter=10_000)
    with threadpool_limits(limits=1):
        p = sk.fit(data.train.X, data.train.y).predict_proba(data.test.X)[:, 1]
    assert s["reference"]["auc"] == pytest.approx(roc_auc_score(data.test.y, p), abs=1e-6)
    assert s["reference"]["log_loss"] == pytest.approx(log_loss(data.test.y, p), abs=1e-6)
    assert s["reference"]["mean_pd"] == pytest.approx(p.mean(), abs=1e-6)
    # rounds.csv: a mean PD per round, the last one the federated model's
    rows = list(csv.DictReader(open(out / "rounds.csv")))
    assert float(rows[-1]["mean_pd"]) == pytest.approx(s["federated"]["mean_pd"])
    # the console: a mean PD column, the reference row, the observed rate, the warnings
    assert "mean PD" in printed.out and "reference (pooled, converged)" in printed.out
    assert f"{s['observed_default_rate']:.4f}" in printed.out
    for w in s["warnings"]:
        assert f"fedrisk: warning: {w}" in printed.err.replace("\n", " ")
    assert printed.err.count("fedrisk: warning:") == len(s["warnings"])


def test_vertical_run_reports_reference_on_every_partys_columns(tmp_path):
    (tmp_path / "v.toml").write_text(VERTICAL)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*1024-bit", category=UserWarning)
        # fixed secrets: the bank's split and noise are the same every time
        run_scenario(
            load_scenario(tmp_path / "v.toml"),
            tmp_path / "v",
            show_progress=False,
            secrets=RunSecrets(bytes(range(32))),
        )
    s = read_summary(tmp_path / "v")
    check_reference(s)
    check_calibration_reported(s)
    # fitted on every party's columns of the aligned training customers
    assert s["reference"]["features"] == sum(p["features"] for p in s["data"]["parties"].values())
    assert (
        s["reference"]["features"] == 8 and s["reference"]["train_rows"] == s["data"]["train_rows"]
    )
    rows = list(csv.DictReader(open(tmp_path / "v" / "rounds.csv")))
    assert float(rows[-1]["mean_pd"]) == pytest.approx(s["federated"]["mean_pd"])
    assert np.isfinite(s["comparison"]["calibration_gap_pp"])
