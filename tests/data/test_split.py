"""Stratified train/test split and the Standardizer."""

import numpy as np
import pytest

from fedrisk.data import Standardizer, load_uci_default_credit, split_indices, train_test_split
from fedrisk.errors import DataError


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_stratified_keeps_default_rate_and_partitions_rows(fraction):
    ds = load_uci_default_credit()
    train, test = train_test_split(ds, fraction, seed=1)
    assert abs(train.y.mean() - ds.y.mean()) < 0.01 and abs(test.y.mean() - ds.y.mean()) < 0.01
    assert train.n_rows + test.n_rows == ds.n_rows
    assert abs(test.n_rows - fraction * ds.n_rows) <= 2
    assert not set(train.ids) & set(test.ids)


def test_deterministic_for_a_seed():
    y = np.r_[np.zeros(70, int), np.ones(30, int)]
    a, b, c = (split_indices(y, 0.3, s) for s in (5, 5, 6))
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not np.array_equal(a[1], c[1])
    assert np.all(np.diff(a[0]) > 0) and np.all(np.diff(a[1]) > 0)


def test_every_class_on_both_sides_and_errors():
    train, test = split_indices(np.array([0] * 50 + [1] * 2), 0.1, 0)
    assert set(np.array([0] * 50 + [1] * 2)[test]) == {0, 1}
    with pytest.raises(DataError, match="at least 2 per class"):
        split_indices(np.array([0, 0, 0, 1]), 0.5, 0)
    with pytest.raises(ValueError, match="test_fraction"):
        split_indices(np.array([0, 1] * 5), 1.0, 0)


def test_standardizer():
    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(5, 3, 200), np.full(200, 0.1), rng.normal(size=200)]
    scaler = Standardizer.fit(X)
    Z = scaler.transform(X)
    assert np.allclose(Z.mean(axis=0), 0) and np.allclose(Z.std(axis=0)[[0, 2]], 1)
    assert scaler.scale[1] == 1.0 and np.allclose(
        Z[:, 1], 0, atol=1e-12
    )  # constant column: std 0 -> 1
    assert not scaler.mean.flags.writeable
    assert np.allclose(Standardizer().fit(X).mean, scaler.mean)
    with pytest.raises(ValueError, match="not fitted"):
        Standardizer().transform(X)
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        scaler.transform(X[:, :2])
