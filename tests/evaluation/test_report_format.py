"""The report's one number formatter: every number on the page reads naturally (no
"8.0000" or "4.000000"), metrics at 4 decimals, percentages at 1, bytes with units,
ε at 3 significant digits, ∞ for infinity; labels and the PSI reading."""

from __future__ import annotations

import math

import pytest

from fedrisk.evaluation.report import (
    PSI_NOTE,
    fmt,
    fmt_key,
    kind_of,
    label,
    psi_reading,
    riskiest_first,
)


@pytest.mark.parametrize(
    ("value", "kind", "text"),
    [
        (8.0, "auto", "8"),
        (2048, "plain", "2048"),
        ("1024", "plain", "1024"),
        (4.0, "auto", "4"),
        (8, "auto", "8"),
        (24000, "auto", "24,000"),
        (0.05, "auto", "0.05"),
        (0.0001, "auto", "0.0001"),
        (1e-05, "auto", "10⁻⁵"),
        (2.5e-06, "auto", "2.5 × 10⁻⁶"),
        (1.1, "auto", "1.1"),
        (0.123456, "auto", "0.1235"),
        (-3.0, "auto", "−3"),
        (True, "auto", "yes"),
        (None, "auto", "–"),
        (math.nan, "metric", "–"),
        ([], "auto", "none"),
        ("a<b", "auto", "a&lt;b"),
        (0.7067351752, "metric", "0.7067"),
        (0.7, "metric", "0.7000"),
        (-0.0166, "signed", "−0.0166"),
        (0.0013, "signed", "+0.0013"),
        (30.0678, "pct", "30.1 %"),
        (100.0, "pct", "100.0 %"),
        (2.0, "pp", "2.0 pp"),
        (-0.11, "signed_pp", "−0.1 pp"),
        (99078, "bytes", "99,078 B (96.8 KiB)"),
        (532, "bytes", "532 B"),
        (0.818, "seconds", "0.818 s"),
        (2.633, "seconds", "2.63 s"),
        (12.34, "seconds", "12.3 s"),
        (600.0, "seconds", "10 min"),
        (125, "seconds", "2 min 05 s"),
        (0.5123, "epsilon", "0.512"),
        (8.0, "epsilon", "8"),
        (12.345, "epsilon", "12.3"),
        (math.inf, "epsilon", "∞"),
        (math.inf, "auto", "∞"),
        (0.0325, "psi", "0.0325 (stable: no significant shift)"),
        (0.17, "psi", "0.1700 (moderate shift)"),
        (0.71, "psi", "0.7100 (major shift)"),
        ("0.5", "metric", "0.5000"),  # rounds.csv cells are strings
        ("", "bytes", "–"),
        ("17160", "bytes", "17,160 B (16.8 KiB)"),
    ],
)
def test_fmt(value, kind, text):
    assert fmt(value, kind) == text


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind"):
        fmt(1.0, "percent")


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("clip_norm", "auto"),
        ("update_range", "auto"),
        ("noise_multiplier", "auto"),
        ("epsilon", "epsilon"),
        ("auc", "metric"),
        ("auc_low", "metric"),
        ("membership_auc", "metric"),
        ("default_rate", "metric"),
        ("cum_defaults_pct", "pct"),
        ("calibration_gap_pp", "signed_pp"),
        ("calibration_warn_above_pp", "pp"),
        ("federated_minus_centralised_auc", "signed"),
        ("log_loss_ratio_federated_to_reference", "metric"),
        ("psi_federated_vs_centralised_scores", "psi"),
        ("bytes_sent", "bytes"),
        ("setup_bytes", "bytes"),
        ("wall_s", "seconds"),
        ("encryption_s", "seconds"),
        ("rounds", "auto"),
        ("key_bits", "plain"),
        ("frac_bits", "plain"),
        ("batch_size", "plain"),
    ],
)
def test_kind_of_key(key, kind):
    assert kind_of(key) == kind


def test_config_values_read_naturally():
    assert fmt_key("update_range", 8.0) == "8"
    assert fmt_key("clip_norm", 4.0) == "4"
    assert fmt_key("cum_defaults_pct", 30.0678) == "30.1 %"
    assert fmt_key("delta", 1e-5) == "10⁻⁵"


def test_labels_are_human():
    assert label("psi_federated_vs_centralised_scores") == (
        "Population stability index (PSI), federated vs centralised scores"
    )
    assert label("federated_wall_s") == "federated training time"
    assert label("obscure_thing_s") == "obscure thing time"
    assert label("some_key") == "some key"


def test_psi_reading_bands():
    assert psi_reading(0.0) == psi_reading(0.099) == "stable: no significant shift"
    assert psi_reading(0.1) == psi_reading(0.249) == "moderate shift"
    assert psi_reading(0.25) == psi_reading(3.0) == "major shift"
    assert "below 0.10 stable" in PSI_NOTE and "0.25 and above a major shift" in PSI_NOTE


def test_calibration_rows_riskiest_first():
    rows = [
        {"bin": i + 1, "n": 10, "mean_predicted": m, "observed_rate": m}
        for i, m in enumerate([0.1, 0.2, 0.5])
    ]
    out = riskiest_first(rows)
    assert [r["mean_predicted"] for r in out] == [0.5, 0.2, 0.1]
    assert [r["decile"] for r in out] == [1, 2, 3]
    # anything that is not a table of rows is passed on for the table to report
    assert riskiest_first(None) is None
    assert riskiest_first([{"bin": 1}]) == [{"bin": 1}]
