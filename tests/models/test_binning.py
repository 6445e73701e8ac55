"""Tests for fedrisk.models.binning: hand-computed WOE/IV, the grid, counts against raw rows,
the federated property (summed bank histograms = the pooled column) and the merging rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedrisk.models.binning import (
    GRID_CELLS,
    GRID_LIMIT,
    CategoricalBinning,
    NumericBinning,
    bin_counts,
    categorical_groups,
    cell_histogram,
    cell_lower,
    equal_width_cuts,
    fit_categorical,
    fit_numeric,
    grid_cells,
    merge_cuts,
    monotone_merge,
    numeric_cuts,
    quantile_cuts,
    woe_iv,
)

FAST = settings(max_examples=40, deadline=None)


def rising_default(n: int, seed: int, slope: float = 1.0):
    """x ~ N(0, 1) with P(default) rising with x (falling when slope < 0), 5 % missing."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    p = 1.0 / (1.0 + np.exp(-(slope * 1.5 * x - 1.5)))
    y = (rng.uniform(size=n) < p).astype(int)
    x[rng.uniform(size=n) < 0.05] = np.nan
    return x, y


def rates_of(good, bad, groups):
    g = np.array([sum(good[i] for i in grp) for grp in groups], dtype=float)
    b = np.array([sum(bad[i] for i in grp) for grp in groups], dtype=float)
    return g, b, b / (g + b)


# --------------------------------------------------------------------------- WOE and IV


def test_woe_iv_hand_example():
    # G = 100, B = 30: shares of goods .6 .3 .1, of bads 1/6 1/3 1/2
    woe, iv = woe_iv(np.array([60, 30, 10]), np.array([5, 10, 15]))
    assert woe == pytest.approx([math.log(3.6), math.log(0.9), math.log(0.2)])
    expected = [
        (0.6 - 1 / 6) * math.log(3.6),
        (0.3 - 1 / 3) * math.log(0.9),
        (0.1 - 0.5) * math.log(0.2),
    ]
    assert iv == pytest.approx(expected)
    assert iv.sum() == pytest.approx(1.2024, abs=1e-4)  # .5551 + .0035 + .6438 by hand
    assert woe[0] > 0 > woe[2]  # positive WOE = lower risk


def test_woe_smoothing_only_populated_bins_and_only_when_needed():
    # bin 1 has no goods: +0.5 to the populated bins 0..2; the empty bin 3 stays out
    woe, iv = woe_iv(np.array([10, 0, 5, 0]), np.array([2, 3, 1, 0]))
    g = np.array([10.5, 0.5, 5.5])
    b = np.array([2.5, 3.5, 1.5])
    G, B = 16.5, 7.5
    assert woe[:3] == pytest.approx(np.log((g / G) / (b / B)))
    assert iv[:3] == pytest.approx((g / G - b / B) * np.log((g / G) / (b / B)))
    assert woe[3] == 0.0 and iv[3] == 0.0
    # an empty bin alone (no customers at all) triggers no smoothing
    woe, iv = woe_iv(np.array([10, 5, 0]), np.array([2, 3, 0]))
    assert woe[:2] == pytest.approx([math.log((10 / 15) / (2 / 5)), math.log((5 / 15) / (3 / 5))])
    assert woe[2] == 0.0 and iv[2] == 0.0


@FAST
@given(
    st.lists(
        st.tuples(st.integers(0, 500), st.integers(0, 200)).filter(lambda t: t[0] + t[1] > 0),
        min_size=1,
        max_size=12,
    )
)
def test_iv_matches_textbook_formula(pairs):
    good = np.array([p[0] for p in pairs])
    bad = np.array([p[1] for p in pairs])
    woe, iv = woe_iv(good, bad)
    # independent plain-Python version of the textbook formula
    s = 0.5 if any(g == 0 or b == 0 for g, b in pairs) else 0.0
    G = sum(g + s for g, _ in pairs)
    B = sum(b + s for _, b in pairs)
    total = 0.0
    for (g, b), w in zip(pairs, woe):
        ref = math.log(((g + s) / G) / ((b + s) / B))
        assert w == pytest.approx(ref, rel=1e-9, abs=1e-12)
        total += ((g + s) / G - (b + s) / B) * ref
    assert iv.sum() == pytest.approx(total, rel=1e-9, abs=1e-12)
    assert np.all(iv >= -1e-15)  # every IV term is (p - q)·ln(p/q) >= 0


# --------------------------------------------------------------------------- the grid


@FAST
@given(
    st.floats(allow_nan=False, allow_infinity=True),
    st.floats(allow_nan=False, allow_infinity=True),
)
def test_grid_cells_monotone(a, b):
    lo, hi = min(a, b), max(a, b)
    ca, cb = grid_cells(np.array([lo, hi]))
    assert 0 <= ca <= cb < GRID_CELLS


def test_grid_cells_missing_ends_shape_and_integers():
    assert grid_cells(np.array([np.nan]))[0] == -1
    assert list(grid_cells(np.array([-np.inf, -1e300, 1e300, np.inf]))) == [
        0,
        0,
        GRID_CELLS - 1,
        GRID_CELLS - 1,
    ]
    assert grid_cells(np.zeros((3, 4))).shape == (3, 4)
    cells = grid_cells(np.arange(46))
    assert len(set(cells.tolist())) == 46
    assert grid_cells(np.array([0.0]))[0] == GRID_CELLS // 2  # 0 opens the upper half


def test_cell_lower_is_the_cells_boundary():
    step = 2 * GRID_LIMIT / GRID_CELLS
    c = np.arange(1, GRID_CELLS)
    assert np.all(np.diff(cell_lower(c)) > 0)
    assert cell_lower(np.array([0]))[0] == -np.inf
    assert cell_lower(np.array([2100]))[0] == pytest.approx(math.sinh(-GRID_LIMIT + 2100 * step))
    # the middle of each cell maps back to that cell
    mid = np.sinh(-GRID_LIMIT + (c + 0.5) * step)
    assert np.array_equal(grid_cells(mid), c)


def test_cell_histogram_shapes_and_counts():
    x = np.array([0.0, 0.0, 1.0, np.nan, 5.0, np.nan])
    y = np.array([0, 1, 1, 0, 0, 1])
    h = cell_histogram(x)
    assert h.shape == (GRID_CELLS + 1,) and h.sum() == 6 and h[-1] == 2
    h2 = cell_histogram(x, y)
    assert h2.shape == (2, GRID_CELLS + 1)
    assert np.array_equal(h2.sum(axis=0), h)
    assert h2[0, -1] == 1 and h2[1, -1] == 1
    assert h2[0, grid_cells(np.array([0.0]))[0]] == 1 and h2[1, grid_cells(np.array([1.0]))[0]] == 1
    with pytest.raises(ValueError):
        cell_histogram(x, np.array([0, 1, 2, 0, 0, 1]))


# --------------------------------------------------------------------------- counts vs rows


@FAST
@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.integers(0, 300))
def test_bin_counts_equals_counting_assigned_rows(seed, n_cuts, n):
    rng = np.random.default_rng(seed)
    x = rng.standard_cauchy(n) * rng.choice([0.01, 1, 100], size=n)
    x[rng.uniform(size=n) < 0.1] = np.nan
    y = rng.integers(0, 2, size=n)
    cuts = np.unique(rng.integers(1, GRID_CELLS, size=n_cuts))
    binning = NumericBinning("x", tuple(cuts.tolist()))
    idx = binning.assign(x)
    direct = np.zeros((2, binning.n_bins()), dtype=np.int64)
    np.add.at(direct, (y, idx), 1)
    assert np.array_equal(bin_counts(cell_histogram(x, y), cuts), direct)
    assert np.all(idx[np.isnan(x)] == binning.n_bins() - 1)


@pytest.mark.parametrize("method", ["quantile", "equal_width", "optimal"])
def test_summed_bank_histograms_give_the_pooled_binning(method):
    x, y = rising_default(6000, seed=3)
    knobs = dict(max_bins=6, min_bin_share=0.05, min_bad_share=0.05, monotonic="auto")
    pooled = fit_numeric("x", x, y, method=method, **knobs)
    banks = np.array_split(np.arange(len(x)), [1000, 3500])  # three unequal banks
    summed = sum(cell_histogram(x[r], y[r]) for r in banks)
    cuts = numeric_cuts(summed, method=method, **knobs)
    assert tuple(cuts.tolist()) == pooled.cuts
    fed = bin_counts(summed, cuts)
    assert np.array_equal(fed, bin_counts(cell_histogram(x, y), np.array(pooled.cuts)))
    assert len(pooled.cuts) >= 1


# --------------------------------------------------------------------------- edge finders


def test_quantile_cuts_equal_sized_on_continuous_data():
    rng = np.random.default_rng(7)
    x = rng.lognormal(3.0, 1.0, size=20000)
    counts = cell_histogram(x)[:-1]
    cuts = quantile_cuts(counts, 10)
    assert len(cuts) == 9
    per_bin = np.bincount(NumericBinning("x", tuple(cuts.tolist())).assign(x), minlength=11)
    shares = per_bin[:-1] / len(x)
    assert np.all(np.abs(shares - 0.1) < 0.02), shares
    assert per_bin[-1] == 0


@pytest.mark.parametrize("ones", [0.003, 0.1, 0.5, 0.9, 0.997])
@pytest.mark.parametrize("max_bins", [2, 5, 50])
def test_quantile_cuts_indicator_two_bins_constant_one(ones, max_bins):
    n = 1000
    ind = (np.arange(n) < ones * n).astype(float)
    cuts = quantile_cuts(cell_histogram(ind)[:-1], max_bins)
    assert cuts.tolist() == [grid_cells(np.array([1.0]))[0]]
    assert quantile_cuts(cell_histogram(np.full(50, 3.0))[:-1], max_bins).size == 0
    assert quantile_cuts(np.zeros(GRID_CELLS, dtype=int), max_bins).size == 0


def test_equal_width_cuts_even_in_value_space():
    x = np.linspace(0.0, 100.0, 5001)
    cuts = equal_width_cuts(cell_histogram(x)[:-1], 5)
    edges = cell_lower(cuts)
    assert edges == pytest.approx([20, 40, 60, 80], rel=0.02)


def test_equal_width_cuts_merge_empty_bins():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(0, 10, 500), [1000.0]])  # one far outlier
    hist = cell_histogram(x)
    cuts = equal_width_cuts(hist[:-1], 5)
    per_bin = bin_counts(hist, cuts)[:-1]
    assert 2 <= len(per_bin) <= 5
    assert np.all(per_bin > 0)
    assert per_bin[-1] == 1  # the outlier alone, the empty middle merged below it
    assert equal_width_cuts(cell_histogram(np.full(9, 2.0))[:-1], 5).size == 0


def test_merge_cuts():
    cuts = np.array([10, 20, 30, 40])
    assert merge_cuts(cuts, [[0, 1], [2], [3, 4]]).tolist() == [20, 30]
    assert merge_cuts(cuts, [[0, 1, 2, 3, 4]]).tolist() == []
    assert merge_cuts(cuts, [[0], [1], [2], [3], [4]]).tolist() == cuts.tolist()
    with pytest.raises(ValueError):
        merge_cuts(cuts, [[0, 2], [1], [3, 4]])
    with pytest.raises(ValueError):
        merge_cuts(cuts, [[0, 1], [2, 3]])


# --------------------------------------------------------------------------- monotone merge


@FAST
@given(
    st.lists(st.tuples(st.integers(0, 60), st.integers(0, 15)), min_size=1, max_size=40),
    st.integers(1, 8),
    st.sampled_from([0.0, 0.02, 0.1, 0.3]),
    st.sampled_from([0.0, 0.05, 0.2]),
    st.sampled_from(["ascending", "descending", "none", "auto"]),
)
def test_monotone_merge_properties(pairs, max_bins, min_share, min_bad, monotonic):
    good = np.array([p[0] for p in pairs])
    bad = np.array([p[1] for p in pairs])
    groups = monotone_merge(
        good,
        bad,
        max_bins=max_bins,
        min_bin_share=min_share,
        min_bad_share=min_bad,
        monotonic=monotonic,
    )
    assert [i for grp in groups for i in grp] == list(range(len(pairs)))
    assert all(grp == list(range(grp[0], grp[-1] + 1)) for grp in groups)
    assert 1 <= len(groups) <= max_bins
    if len(groups) == 1:
        return
    g, b, rate = rates_of(good, bad, groups)
    n = g + b
    assert np.all(g >= 1) and np.all(b >= 1)
    assert np.all(n >= min_share * n.sum() - 1e-9)
    assert np.all(b >= min_bad * b.sum() - 1e-9)
    steps = np.diff(rate)
    if monotonic == "ascending":
        assert np.all(steps > 0)
    elif monotonic == "descending":
        assert np.all(steps < 0)
    elif monotonic == "auto":
        assert np.all(steps > 0) or np.all(steps < 0)


def test_monotone_merge_pav_example():
    # bad rates .1 .3 .2 .4: ascending pools the middle pair, descending leaves one bin
    good = np.array([90, 70, 80, 60])
    bad = np.array([10, 30, 20, 40])
    knobs = dict(max_bins=10, min_bin_share=0.0, min_bad_share=0.0)
    assert monotone_merge(good, bad, monotonic="ascending", **knobs) == [[0], [1, 2], [3]]
    assert monotone_merge(good, bad, monotonic="descending", **knobs) == [[0, 1, 2, 3]]
    assert monotone_merge(good, bad, monotonic="auto", **knobs) == [[0], [1, 2], [3]]
    assert monotone_merge(good, bad, monotonic="none", **knobs) == [[0], [1], [2], [3]]
    # max_bins 3 on "none": merging (1, 2), rates .3 and .2, loses the least IV
    groups = monotone_merge(good, bad, monotonic="none", **{**knobs, "max_bins": 3})
    assert groups == [[0], [1, 2], [3]]


def test_monotone_merge_min_share_merges_with_closer_rate():
    # bin 1 (5 customers of 305) is below 5 %; its rate .4 is closer to bin 2's .5 than bin 0's .1
    good = np.array([90, 3, 100])
    bad = np.array([10, 2, 100])
    groups = monotone_merge(
        good, bad, max_bins=10, min_bin_share=0.05, min_bad_share=0.0, monotonic="none"
    )
    assert groups == [[0], [1, 2]]


@pytest.mark.parametrize("slope, direction", [(1.0, 1), (-1.0, -1)])
def test_auto_follows_the_data(slope, direction):
    x, y = rising_default(5000, seed=11, slope=slope)
    knobs = dict(max_bins=6, min_bin_share=0.05, min_bad_share=0.05)
    auto = fit_numeric("x", x, y, method="optimal", monotonic="auto", **knobs)
    wanted = "ascending" if direction > 0 else "descending"
    assert auto == fit_numeric("x", x, y, method="optimal", monotonic=wanted, **knobs)
    good, bad = bin_counts(cell_histogram(x, y), np.array(auto.cuts))[:, :-1]
    rate = bad / (good + bad)
    assert len(rate) >= 3
    assert np.all(np.sign(np.diff(rate)) == direction)
    woe = woe_iv(good, bad)[0]
    assert np.all(np.sign(np.diff(woe)) == -direction)  # WOE falls as the bad rate rises


def test_fit_numeric_needs_labels_for_optimal_only():
    x, _ = rising_default(200, seed=2)
    knobs = dict(max_bins=4, min_bin_share=0.05, min_bad_share=0.05, monotonic="auto")
    assert fit_numeric("x", x, None, method="quantile", **knobs).n_bins() == 5
    with pytest.raises(ValueError):
        fit_numeric("x", x, None, method="optimal", **knobs)
    with pytest.raises(ValueError):
        fit_numeric("x", x, None, method="median", **knobs)


# --------------------------------------------------------------------------- categorical


def test_categorical_rare_bin_and_unseen():
    cats = ["car", "tv", "edu", "yacht", "pony"]
    good = np.array([400, 300, 150, 10, 12])
    bad = np.array([100, 60, 50, 10, 8])
    groups, unseen = categorical_groups(cats, good, bad, max_bins=10, min_bin_share=0.05)
    # yacht (20 of 1100) and pony (20) are rare; together 40 = 3.6 % < 5 %: they join the
    # bin of closest bad rate, edu (.25) against rare .45, tv .167, car .2
    assert sorted(map(sorted, groups)) == [["car"], ["edu", "pony", "yacht"], ["tv"]]
    assert groups[unseen] == ["edu", "yacht", "pony"]  # input order inside a group
    # bins run lowest risk first
    assert [g[0] for g in groups] == ["tv", "car", "edu"]


def test_categorical_rare_bin_stands_alone_when_big_enough():
    cats = ["a", "b", "c", "d", "e"]
    good = np.array([300, 300, 30, 30, 30])
    bad = np.array([30, 90, 10, 12, 14])
    groups, unseen = categorical_groups(cats, good, bad, max_bins=10, min_bin_share=0.08)
    assert ["c", "d", "e"] in groups and groups[unseen] == ["c", "d", "e"]
    # no rare categories: unseen ones go to the largest bin
    groups, unseen = categorical_groups(cats, good, bad, max_bins=10, min_bin_share=0.0)
    assert len(groups) == 5 and groups[unseen] == ["b"]


def test_categorical_max_bins_merges_neighbours_in_bad_rate_order():
    cats = ["a", "b", "c", "d"]
    good = np.array([90, 89, 50, 20])
    bad = np.array([10, 11, 50, 80])  # rates .1 .11 .5 .8
    groups, _ = categorical_groups(cats, good, bad, max_bins=3, min_bin_share=0.0)
    assert groups == [["a", "b"], ["c"], ["d"]]
    groups, _ = categorical_groups(cats, good, bad, max_bins=1, min_bin_share=0.0)
    assert groups == [["a", "b", "c", "d"]]


def test_fit_categorical_assign_and_labels():
    rng = np.random.default_rng(5)
    values = rng.choice(
        ["own", "rent", "free", " own ", "", "x1"], p=[0.4, 0.3, 0.17, 0.1, 0.02, 0.01], size=3000
    )
    y = rng.integers(0, 2, size=3000)
    b = fit_categorical("housing", values, y, max_bins=5, min_bin_share=0.05)
    assert b.n_bins() == len(b.groups) + 1
    flat = [c for g in b.groups for c in g]
    assert sorted(flat) == ["free", "own", "rent", "x1"]  # " own " stripped; "" is missing
    idx = b.assign(np.array(["own", " rent", "", "never seen", "x1"]))
    assert idx[2] == b.n_bins() - 1
    assert idx[3] == b.unseen == idx[4]  # x1 was rare: unseen categories join it
    assert "own" in b.groups[idx[0]] and "rent" in b.groups[idx[1]]
    assert (
        b.assign(np.array(["own", None, float("nan")], dtype=object))[1:].tolist()
        == [b.n_bins() - 1] * 2
    )
    manual = CategoricalBinning("housing", (("own", "free"), ("rent",)), unseen=1)
    assert manual.labels() == ["housing in {own, free}", "housing in {rent}", "missing"]
    with pytest.raises(ValueError):
        CategoricalBinning("h", (("own",), ("own", "rent")), unseen=0)


# --------------------------------------------------------------------------- numeric binning


def test_numeric_labels_and_assign():
    step = 2 * GRID_LIMIT / GRID_CELLS
    c0 = int(grid_cells(np.array([0.0]))[0])
    b = NumericBinning("age", (c0, 2100))
    a = "%.6g" % math.sinh(-GRID_LIMIT + 2100 * step)
    assert b.labels() == ["< 0", f"[0, {a})", f">= {a}", "missing"]
    assert b.edges()[0] == 0.0
    assert b.n_bins() == 4
    assert b.assign(np.array([-1.0, 0.0, 0.5, 50.0, np.nan])).tolist() == [0, 1, 1, 2, 3]
    assert NumericBinning("age", ()).labels() == ["not missing", "missing"]
    with pytest.raises(ValueError):
        NumericBinning("age", (5, 5))
    with pytest.raises(ValueError):
        NumericBinning("age", (0, 5))
