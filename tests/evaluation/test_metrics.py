"""Tests for fedrisk.evaluation.metrics: known values, independent cross-checks, bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from fedrisk.evaluation import (
    calibration_table,
    expected_calibration_error,
    gains_table,
    population_stability_index,
    psi_band,
    score_metrics,
)
from fedrisk.evaluation.metrics import auc_interval, auc_interval_record, weighted_auc

KEYS = {"auc", "ks", "gini", "log_loss", "brier", "mean_pd"}


def calibrated_sample(n: int, seed: int):
    """Scores p and outcomes y ~ Bernoulli(p): calibrated by construction."""
    rng = np.random.default_rng(seed)
    p = rng.beta(1.5, 4.0, size=n)  # skewed to low PDs, like a credit book
    y = (rng.uniform(size=n) < p).astype(int)
    return y, p


# --------------------------------------------------------------------------- score_metrics


def test_perfect_separation():
    m = score_metrics([0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.8, 0.9])
    assert m["auc"] == 1.0 and m["ks"] == 1.0 and m["gini"] == 1.0


def test_reversed_score():
    m = score_metrics([0, 0, 0, 1, 1], [0.9, 0.8, 0.7, 0.2, 0.1])
    assert m["auc"] == 0.0
    assert m["gini"] == -1.0
    assert m["ks"] == 0.0  # one-sided credit convention: max(TPR - FPR) is 0 here


def test_hand_computed_small_example():
    # Defaults score 0.3, 0.5, 0.6; non-defaults 0.1, 0.2, 0.4.
    # AUC: 8 of 9 (default, non-default) pairs ranked right (0.3 < 0.4 is the miss).
    # KS: threshold 0.5 gives TPR 2/3, FPR 0; threshold 0.3 gives TPR 1, FPR 1/3 -> 2/3.
    m = score_metrics([0, 0, 1, 0, 1, 1], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    assert m["auc"] == pytest.approx(8 / 9)
    assert m["gini"] == pytest.approx(7 / 9)
    assert m["ks"] == pytest.approx(2 / 3)


def test_keys_types_and_json():
    y, p = calibrated_sample(500, seed=1)
    m = score_metrics(y, p)
    assert set(m) == KEYS
    assert all(type(v) is float for v in m.values())
    assert json.loads(json.dumps(m)) == m


def test_agrees_with_sklearn_and_mann_whitney():
    y, p = calibrated_sample(2000, seed=2)
    m = score_metrics(y, p)
    assert m["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert m["log_loss"] == pytest.approx(log_loss(y, p), abs=1e-12)
    assert m["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert m["gini"] == pytest.approx(2 * m["auc"] - 1, abs=1e-12)
    assert m["mean_pd"] == pytest.approx(sum(p) / len(p), abs=1e-12)
    # Independent of sklearn: AUC = U / (n_pos * n_neg).
    u = stats.mannwhitneyu(p[y == 1], p[y == 0]).statistic
    assert m["auc"] == pytest.approx(u / ((y == 1).sum() * (y == 0).sum()), abs=1e-12)


def test_ks_matches_scipy_one_sided_ks():
    y, p = calibrated_sample(300, seed=3)
    # max(F_nondefault - F_default) is scipy's one-sided "greater" statistic.
    ref = stats.ks_2samp(p[y == 0], p[y == 1], alternative="greater").statistic
    assert score_metrics(y, p)["ks"] == pytest.approx(ref, abs=1e-12)


def test_log_loss_survives_hard_zero_and_one():
    m = score_metrics([0, 1, 0, 1], [1.0, 0.0, 0.2, 0.7])  # confidently wrong twice
    assert math.isfinite(m["log_loss"]) and m["log_loss"] > 10
    assert m["brier"] == pytest.approx((1 + 1 + 0.04 + 0.09) / 4)


@st.composite
def labelled_scores(draw):
    """Labels with both classes, scores in [0, 1] with plenty of ties."""
    rest = draw(st.lists(st.integers(0, 1), min_size=0, max_size=60))
    y = draw(st.permutations([0, 1] + rest))
    score = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), st.floats(0.0, 1.0))
    p = draw(st.lists(score, min_size=len(y), max_size=len(y)))
    return np.array(y), np.array(p)


@settings(max_examples=150, deadline=None)
@given(labelled_scores())
def test_ks_is_max_gap_between_class_cdfs(data):
    y, p = data
    t = np.unique(p)
    cdf_default = (p[y == 1][:, None] <= t).mean(axis=0)
    cdf_good = (p[y == 0][:, None] <= t).mean(axis=0)
    # Empirical CDFs meet at 1 at the top score, so the max is already >= 0.
    expected = np.max(cdf_good - cdf_default)
    m = score_metrics(y, p)
    assert m["ks"] == pytest.approx(expected, abs=1e-12)
    assert 0.0 <= m["ks"] <= 1.0


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "y, p, match",
    [
        ([0, 1, 1], [0.1, 0.2], "length"),
        ([1, 1, 1], [0.1, 0.2, 0.3], "only defaults"),
        ([0, 0, 0], [0.1, 0.2, 0.3], "only non-defaults"),
        ([0, 1, 1], [0.1, float("nan"), 0.3], "NaN"),
        ([0, 1, 1], [0.1, float("inf"), 0.3], "NaN or infinite"),
        ([0, 1, 1], [0.1, 1.2, 0.3], r"\[0, 1\]"),
        ([0, 1, 1], [-0.1, 0.2, 0.3], r"\[0, 1\]"),
        ([0, 1, 2], [0.1, 0.2, 0.3], "only 0"),
        ([0, 1, float("nan")], [0.1, 0.2, 0.3], "only 0"),
        ([], [], "empty"),
        ([[0, 1]], [[0.1, 0.2]], "1-D"),
        ([0, 1], ["a", "b"], "numeric"),
    ],
)
def test_score_metrics_rejects_bad_input(y, p, match):
    with pytest.raises(ValueError, match=match):
        score_metrics(y, p)


@pytest.mark.parametrize("fn", [calibration_table, gains_table, expected_calibration_error])
@pytest.mark.parametrize("bins", [0, -1, 2.5, True])
def test_binned_functions_reject_bad_bins(fn, bins):
    with pytest.raises(ValueError, match="bins"):
        fn([0, 1, 1], [0.1, 0.2, 0.3], bins=bins)


@pytest.mark.parametrize("fn", [calibration_table, gains_table, expected_calibration_error])
def test_binned_functions_reject_length_mismatch_and_nan(fn):
    with pytest.raises(ValueError, match="length"):
        fn([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        fn([0, 1, 1], [0.1, np.nan, 0.3])


def test_gains_needs_a_default():
    with pytest.raises(ValueError, match="no defaults"):
        gains_table([0, 0, 0], [0.1, 0.2, 0.3])


# --------------------------------------------------------------------------- calibration


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.floats(0.0, 1.0)), min_size=1, max_size=80),
    st.integers(1, 15),
)
def test_calibration_table_structure(rows, bins):
    y = np.array([r[0] for r in rows])
    p = np.array([r[1] for r in rows])
    table = calibration_table(y, p, bins=bins)
    assert len(table) == min(bins, len(y))
    assert sum(r["n"] for r in table) == len(y)
    assert [r["bin"] for r in table] == list(range(1, len(table) + 1))
    sizes = {r["n"] for r in table}
    assert max(sizes) - min(sizes) <= 1  # equal-count bins
    for r in table:
        assert r["min_p"] <= r["mean_predicted"] + 1e-12
        assert r["mean_predicted"] <= r["max_p"] + 1e-12
        assert 0.0 <= r["observed_rate"] <= 1.0
    for lo, hi in zip(table, table[1:]):
        assert lo["max_p"] <= hi["min_p"]  # bins are ordered and do not overlap


def test_calibration_table_small_example():
    table = calibration_table([0, 0, 1, 0, 1, 1], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], bins=3)
    assert [(r["n"], r["observed_rate"]) for r in table] == [(2, 0.0), (2, 0.5), (2, 1.0)]
    assert [r["mean_predicted"] for r in table] == pytest.approx([0.15, 0.35, 0.55])
    assert [(r["min_p"], r["max_p"]) for r in table] == [(0.1, 0.2), (0.3, 0.4), (0.5, 0.6)]


def test_calibration_allows_single_class():
    table = calibration_table([0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4], bins=2)
    assert [r["observed_rate"] for r in table] == [0.0, 0.0]


def test_ece_calibrated_vs_miscalibrated():
    y, p = calibrated_sample(50_000, seed=4)
    assert expected_calibration_error(y, p) < 0.02
    squashed = 0.5 + 0.3 * (p - 0.5)  # same ranking, probabilities pulled toward 0.5
    assert expected_calibration_error(y, squashed) > 0.1
    # Ranking is untouched, so AUC cannot tell the two apart; that is what ECE is for.
    assert score_metrics(y, squashed)["auc"] == pytest.approx(score_metrics(y, p)["auc"])


def test_ece_matches_table_and_exact_zero():
    y, p = calibrated_sample(1000, seed=5)
    table = calibration_table(y, p, bins=7)
    manual = sum(r["n"] * abs(r["observed_rate"] - r["mean_predicted"]) for r in table) / 1000
    assert expected_calibration_error(y, p, bins=7) == pytest.approx(manual)
    assert expected_calibration_error([0, 1, 0, 1], [0.5] * 4, bins=1) == 0.0


# --------------------------------------------------------------------------- gains


def test_gains_informative_score():
    y, p = calibrated_sample(5000, seed=6)
    table = gains_table(y, p)
    assert len(table) == 10
    assert [r["decile"] for r in table] == list(range(1, 11))
    assert table[-1]["cum_defaults_pct"] == pytest.approx(100.0)
    assert table[0]["lift"] > 1.0
    assert table[-1]["lift"] < 1.0
    capture = [r["cum_defaults_pct"] for r in table]
    assert capture == sorted(capture)
    assert sum(r["n"] for r in table) == 5000
    assert sum(r["defaults"] for r in table) == int(y.sum())
    # Riskiest first: the default rate falls from the top band to the bottom one.
    assert table[0]["default_rate"] > table[-1]["default_rate"]


def test_gains_small_example():
    # 10 accounts, the two highest scores default: the top band of 2 captures all.
    p = np.linspace(0.1, 1.0, 10)
    y = np.array([0] * 8 + [1, 1])
    table = gains_table(y, p, bins=5)
    top = table[0]
    assert (top["n"], top["defaults"], top["default_rate"]) == (2, 2, 1.0)
    assert top["cum_defaults_pct"] == 100.0
    assert top["lift"] == pytest.approx(5.0)
    assert all(r["cum_defaults_pct"] == 100.0 for r in table)
    assert [r["lift"] for r in table[1:]] == [0.0] * 4


# --------------------------------------------------------------------------- PSI


def test_psi_identical_is_zero():
    _, p = calibrated_sample(2000, seed=7)
    assert population_stability_index(p, p) == pytest.approx(0.0, abs=1e-12)
    assert psi_band(population_stability_index(p, p.copy())) == "stable"


def test_psi_same_distribution_is_stable():
    _, a = calibrated_sample(20_000, seed=8)
    _, b = calibrated_sample(20_000, seed=9)
    assert population_stability_index(a, b) < 0.1


def test_psi_shift_and_rough_symmetry():
    rng = np.random.default_rng(10)
    a = rng.normal(0.0, 1.0, 10_000)
    b = rng.normal(1.0, 1.0, 10_000)  # one standard deviation shift
    ab = population_stability_index(a, b)
    ba = population_stability_index(b, a)
    assert ab > 0.25 and ba > 0.25
    assert psi_band(ab) == psi_band(ba) == "shift"
    assert 0.5 < ab / ba < 2.0  # not exactly symmetric (edges come from `expected`)


def test_psi_hand_computed():
    expected = np.arange(10.0)  # median edge at 4.5 with bins=2 -> shares 0.5 / 0.5
    actual = np.array([0.0] * 3 + [9.0] * 7)  # shares 0.3 / 0.7
    ref = (0.3 - 0.5) * math.log(0.3 / 0.5) + (0.7 - 0.5) * math.log(0.7 / 0.5)
    assert population_stability_index(expected, actual, bins=2) == pytest.approx(ref)


def test_psi_open_ended_bins_and_ties():
    expected = np.linspace(0, 1, 1000)
    # All actual scores beyond the expected range still land in the top bin.
    far = population_stability_index(expected, np.full(500, 5.0))
    assert math.isfinite(far) and far > 1.0
    # Heavily tied expected sample: duplicate edges collapse, result stays finite.
    tied = np.r_[np.zeros(800), np.linspace(0.1, 1, 200)]
    assert math.isfinite(population_stability_index(tied, expected))
    assert population_stability_index(np.ones(50), np.ones(50)) == pytest.approx(0.0)


def test_psi_rejects_bad_input():
    with pytest.raises(ValueError, match="empty"):
        population_stability_index([], [0.1])
    with pytest.raises(ValueError, match="NaN"):
        population_stability_index([0.1, 0.2], [0.1, np.nan])
    with pytest.raises(ValueError, match="bins"):
        population_stability_index([0.1, 0.2], [0.1, 0.2], bins=0)
    with pytest.raises(ValueError, match="epsilon"):
        population_stability_index([0.1, 0.2], [0.1, 0.2], epsilon=0)


@pytest.mark.parametrize(
    "value, band",
    [
        (0.0, "stable"),
        (0.0999, "stable"),
        (0.1, "monitor"),
        (0.2499, "monitor"),
        (0.25, "shift"),
        (3.0, "shift"),
    ],
)
def test_psi_band(value, band):
    assert psi_band(value) == band


@pytest.mark.parametrize("value", [-0.01, float("nan"), float("inf")])
def test_psi_band_rejects_nonsense(value):
    with pytest.raises(ValueError):
        psi_band(value)


# --------------------------------------------------------------------------- AUC interval


def tied_sample(n: int, seed: int):
    """Scores rounded to 2 decimals (many ties), outcomes drawn from them."""
    y, p = calibrated_sample(n, seed)
    return y, np.round(p, 2)


@pytest.mark.parametrize("rounded", [False, True])
def test_weighted_auc_all_ones_is_sklearns_auc(rounded):
    y, p = tied_sample(3000, 5) if rounded else calibrated_sample(3000, 5)
    got = weighted_auc(y, p, np.ones((1, y.size)))
    assert got.shape == (1,)
    assert got[0] == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_weighted_auc_counts_are_repeated_rows():
    """Integer weights = each row repeated that many times (ties counted half)."""
    y, p = tied_sample(500, 6)
    rng = np.random.default_rng(0)
    w = rng.integers(0, 4, size=(5, y.size))
    got = weighted_auc(y, p, w)
    for row, auc in zip(w, got):
        assert auc == pytest.approx(roc_auc_score(np.repeat(y, row), np.repeat(p, row)), abs=1e-12)
    # a weighting without one class has no AUC
    assert np.isnan(weighted_auc(y, p, (y == 1)[None, :].astype(float))[0])


def slow_bootstrap(y, p, resamples, seed, level=0.95):
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(resamples):
        i = rng.integers(0, y.size, y.size)
        if 0 < y[i].sum() < y.size:
            aucs.append(roc_auc_score(y[i], p[i]))
    return np.quantile(aucs, [(1 - level) / 2, (1 + level) / 2])


@pytest.mark.slow  # seconds of runs: the full suite covers it
def test_auc_interval_matches_a_slow_reference_bootstrap():
    y, p = tied_sample(1000, 7)  # with ties: the harder case
    auc = roc_auc_score(y, p)
    low, high = auc_interval(y, p, resamples=4000, seed=1)
    ref_low, ref_high = slow_bootstrap(y, p, 1000, seed=2)
    assert low < auc < high
    # two independent bootstraps (4,000 and 1,000 replicates): endpoints agree to within
    # Monte Carlo error
    assert low == pytest.approx(ref_low, abs=0.008)
    assert high == pytest.approx(ref_high, abs=0.008)
    # and the normal-theory width (Hanley & McNeil 1982) to within a fifth
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    n1, n0 = y.sum(), y.size - y.sum()
    se = math.sqrt(
        (auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2)) / (n1 * n0)
    )
    assert high - low == pytest.approx(2 * 1.96 * se, rel=0.2)


def test_auc_interval_is_seeded_and_narrows_with_level():
    y, p = calibrated_sample(1500, 8)
    assert auc_interval(y, p, seed=3) == auc_interval(y, p, seed=3)
    assert auc_interval(y, p, seed=3) != auc_interval(y, p, seed=4)
    lo95, hi95 = auc_interval(y, p, seed=3)
    lo80, hi80 = auc_interval(y, p, seed=3, level=0.8)
    assert lo95 < lo80 < hi80 < hi95
    with pytest.raises(ValueError, match="level"):
        auc_interval(y, p, level=1.0)
    with pytest.raises(ValueError, match="one of each class"):
        auc_interval(np.zeros(5), np.linspace(0, 1, 5))


def test_auc_interval_record_keys():
    y, p = calibrated_sample(1000, 9)
    rec = auc_interval_record(y, p, seed=0)
    assert set(rec) == {"auc_low", "auc_high"}
    assert rec["auc_low"] < roc_auc_score(y, p) < rec["auc_high"]
    json.dumps(rec)
