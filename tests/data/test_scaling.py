"""Robust scaling: quantiles agreed from summed per-bank histograms, never from pooled rows."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedrisk.data import scaling
from fedrisk.data.prepare import prepare_horizontal
from fedrisk.data.scaling import (
    HIGH_QUANTILE,
    LOW_QUANTILE,
    RESOLUTION,
    RobustScaler,
    fine_index,
    fit_party_scaler,
)
from fedrisk.data.split import Standardizer
from fedrisk.scenario import scenario_from_dict


def _columns(rng, n):
    return np.column_stack(
        [
            rng.lognormal(10, 1.5, n) * (1 + rng.pareto(1.2, n)),  # income-like, huge outliers
            rng.standard_normal(n),
            rng.integers(0, 13, n).astype(float),  # months in arrears: integers
            -rng.pareto(1.5, n) * 1e6,  # negative, heavy left tail
        ]
    )


def _assert_bounds_bracket_order_statistics(scaler, X):
    """Each bound lies in the final grid bin of the order statistic np.quantile starts
    from (low) or ends at (high): within RESOLUTION in asinh space, on the safe side."""
    n = X.shape[0]
    lo_k, hi_k = int(np.floor(LOW_QUANTILE * (n - 1))), int(np.ceil(HIGH_QUANTILE * (n - 1)))
    S = np.sort(X, axis=0)
    eps = 1e-9
    for j in range(X.shape[1]):
        if not np.isfinite(scaler.clip_low[j]):  # unclipped: both in one final bin
            assert fine_index(S[lo_k, j]) == fine_index(S[hi_k, j])
            continue
        t_lo, t_hi = np.arcsinh(scaler.clip_low[j]), np.arcsinh(scaler.clip_high[j])
        assert np.arcsinh(S[lo_k, j]) - RESOLUTION - eps <= t_lo <= np.arcsinh(S[lo_k, j]) + eps
        assert np.arcsinh(S[hi_k, j]) - eps <= t_hi <= np.arcsinh(S[hi_k, j]) + RESOLUTION + eps
        # and so np.quantile (which interpolates between neighbouring order statistics)
        q_lo, q_hi = np.quantile(X[:, j], [LOW_QUANTILE, HIGH_QUANTILE])
        assert t_lo <= np.arcsinh(q_lo) + eps and t_hi >= np.arcsinh(q_hi) - eps


def test_quantiles_from_summed_histograms_match_the_pooled_rows():
    rng = np.random.default_rng(3)
    X = _columns(rng, 6000)
    parts = np.array_split(X[rng.permutation(len(X))], 6)
    scaler = RobustScaler.fit(parts)
    _assert_bounds_bracket_order_statistics(scaler, X)
    # the heavy columns really are clipped, far inside their extremes
    assert scaler.clip_high[0] < X[:, 0].max() / 10 and scaler.clip_low[3] > X[:, 3].min() / 10
    Z = scaler.transform(X)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(Z.std(axis=0), 1, rtol=1e-9)
    # integer values at the quantile are not moved by clipping
    assert set(np.unique(scaler.clip(X)[:, 2])) <= set(range(13))


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 400),
    banks=st.integers(1, 5),
    scale_exp=st.integers(-8, 100),  # squares must stay finite, as for any z-score
)
def test_quantiles_match_for_any_data_and_split(seed, n, banks, scale_exp):
    rng = np.random.default_rng(seed)
    X = np.column_stack(
        [
            rng.standard_normal(n) * 10.0**scale_exp,
            rng.integers(-3, 4, n).astype(float),
            np.round(rng.lognormal(0, 3, n), 3),
        ]
    )
    cuts = np.sort(rng.integers(0, n + 1, banks - 1))
    parts = np.split(X, cuts)  # some banks may hold no row
    scaler = RobustScaler.fit(parts)
    _assert_bounds_bracket_order_statistics(scaler, X)
    assert np.isfinite(scaler.transform(X)).all()


def test_the_sum_sees_only_per_bank_aggregates(monkeypatch):
    """secure_sum, the only place banks' numbers meet, gets one histogram (or moment
    vector) per bank: count arrays over the grid, never rows."""
    rng = np.random.default_rng(0)
    parts = [_columns(rng, n) for n in (300, 50, 1200)]
    d = parts[0].shape[1]
    calls = []
    real = scaling.secure_sum

    def spy(per_bank):
        per_bank = list(per_bank)
        calls.append(per_bank)
        return real(per_bank)

    monkeypatch.setattr(scaling, "secure_sum", spy)
    RobustScaler.fit(parts)
    assert len(calls) == scaling.LEVELS + 3  # histogram rounds, then count, Σ, Σ²
    for per_bank in calls:
        assert len(per_bank) == len(parts)
        shapes = {a.shape for a in per_bank}
        assert len(shapes) == 1  # the same shape whatever a bank's number of rows
        shape = shapes.pop()
        assert shape in ((2 * d, scaling.COARSE_BINS), (2 * d, scaling.REFINE_BINS), (d,))
    for per_bank in calls[: scaling.LEVELS]:
        for a, rows in zip(per_bank, parts):
            assert np.issubdtype(a.dtype, np.integer) and a.sum() <= 2 * rows.size
    with pytest.raises(ValueError, match="same shape"):
        real([np.zeros(3), np.zeros(4)])


def test_how_rows_are_split_among_banks_does_not_change_the_bounds():
    rng = np.random.default_rng(1)
    X = _columns(rng, 3000)
    one = RobustScaler.fit([X])
    six = RobustScaler.fit(np.array_split(X, 6))
    np.testing.assert_array_equal(one.clip_low, six.clip_low)
    np.testing.assert_array_equal(one.clip_high, six.clip_high)
    np.testing.assert_allclose(one.mean, six.mean, rtol=1e-12)
    np.testing.assert_allclose(one.scale, six.scale, rtol=1e-12)


def test_a_rare_indicator_is_left_unclipped():
    x = np.zeros((2000, 1))
    x[:4] = 1.0  # 0.2 % ones: clipping at 99.5 % would make the column constant
    scaler = RobustScaler.fit([x])
    assert scaler.clip_low[0] == -np.inf and scaler.clip_high[0] == np.inf
    np.testing.assert_allclose(scaler.transform(x), Standardizer.fit(x).transform(x))


def test_the_grid_covers_every_float_without_anyone_s_extremes():
    big = np.finfo(np.float64).max
    g = fine_index(np.array([-big, -1.0, 0.0, 1e-300, 1.0, big]))
    assert g[0] >= 0 and g[-1] < scaling.FINE_BINS and np.all(np.diff(g) >= 0)


def test_scaler_is_immutable_and_checks_shapes():
    scaler = RobustScaler.fit([np.arange(20.0).reshape(10, 2)])
    assert not scaler.mean.flags.writeable and not scaler.clip_low.flags.writeable
    with pytest.raises(ValueError, match="expected shape"):
        scaler.transform(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="not fitted"):
        RobustScaler().transform(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="same columns"):
        RobustScaler.fit([np.zeros((3, 2)), np.zeros((3, 3))])


def test_a_vertical_party_scales_its_own_columns():
    X = _columns(np.random.default_rng(2), 500)
    robust = fit_party_scaler(X, "robust")
    np.testing.assert_array_equal(robust.clip_low, RobustScaler.fit([X]).clip_low)
    for other in ("zscore", "none"):  # the encrypted protocol needs unit-scale features
        z = fit_party_scaler(X, other)
        np.testing.assert_allclose(z.transform(X), Standardizer.fit(X).transform(X))


def _scenario(**data):
    raw = {
        "data": {"source": "synthetic", "customers": 1500, "tails": "heavy", **data},
        "federation": {"banks": 3, "partition": "dirichlet", "alpha": 0.5},
    }
    return scenario_from_dict(raw, "t.toml")


def test_prepare_horizontal_fits_on_the_banks_parts():
    robust, zscore = (
        prepare_horizontal(_scenario()),
        prepare_horizontal(_scenario(scaling="zscore")),
    )
    for a, b in zip(robust.parts, zscore.parts):  # the partition does not depend on X
        np.testing.assert_array_equal(a, b)
    assert isinstance(robust.scaler, RobustScaler) and isinstance(zscore.scaler, Standardizer)
    none = prepare_horizontal(_scenario(scaling="none"))
    assert none.scaler is None
    raw_train = none.train.X
    expected = RobustScaler.fit([raw_train[idx] for idx in robust.parts])
    np.testing.assert_array_equal(robust.scaler.clip_high, expected.clip_high)
    np.testing.assert_allclose(robust.train.X, expected.transform(raw_train))
    np.testing.assert_allclose(robust.test.X, expected.transform(none.test.X))
