"""Horizontal partitions: disjoint, complete, deterministic, min_rows; Dirichlet skews labels."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedrisk.data import SCHEMES, partition_rows
from fedrisk.errors import DataError


@st.composite
def problems(draw):
    n_parties = draw(st.integers(1, 8))
    min_rows = draw(st.integers(0, 12))
    n = draw(st.integers(max(n_parties * min_rows, n_parties), 600))
    rate = draw(st.floats(0.0, 1.0))
    y = (np.random.default_rng(draw(st.integers(0, 2**16))).random(n) < rate).astype(np.int8)
    return y, n_parties, min_rows


@settings(max_examples=60, deadline=None, database=None)  # no .hypothesis/ in the repo
@given(
    problem=problems(),
    scheme=st.sampled_from(SCHEMES),
    alpha=st.floats(0.05, 50),
    seed=st.integers(0, 2**32),
)
def test_partition_properties(problem, scheme, alpha, seed):
    y, k, min_rows = problem
    try:
        parts = partition_rows(y, k, scheme, seed, alpha=alpha, min_rows=min_rows)
    except DataError as exc:  # allowed only for unlucky Dirichlet label skew, with advice
        assert scheme == "dirichlet" and "raise alpha" in str(exc)
        return
    assert len(parts) == k
    everything = np.concatenate(parts)
    assert np.array_equal(np.sort(everything), np.arange(y.size))  # disjoint and complete
    for p in parts:
        assert p.size >= max(min_rows, 1) and np.all(np.diff(p) > 0)
    again = partition_rows(y, k, scheme, seed, alpha=alpha, min_rows=min_rows)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    if scheme == "dirichlet":  # a class with >= k rows reaches every party
        for label in np.unique(y):
            if np.sum(y == label) >= k:
                assert all(np.any(y[p] == label) for p in parts)


def label_spread(y, scheme, alpha, seed):
    parts = partition_rows(y, 10, scheme, seed, alpha=alpha, min_rows=10)
    return np.std([y[p].mean() for p in parts])


def test_dirichlet_small_alpha_is_more_label_skewed_than_iid():
    y = (np.random.default_rng(0).random(5000) < 0.22).astype(np.int8)
    for seed in range(5):
        iid = label_spread(y, "iid", 0.5, seed)
        skew = label_spread(y, "dirichlet", 0.1, seed)
        assert skew > 3 * iid
    assert label_spread(y, "dirichlet", 1000.0, 0) < 0.03  # large alpha is close to IID


def test_quantity_skew_varies_sizes_not_labels():
    y = (np.random.default_rng(1).random(5000) < 0.22).astype(np.int8)
    sizes = [p.size for p in partition_rows(y, 5, "quantity", 3, alpha=0.3, min_rows=10)]
    assert max(sizes) > 5 * min(sizes)
    iid_sizes = [p.size for p in partition_rows(y, 5, "iid", 3)]
    assert max(iid_sizes) - min(iid_sizes) <= 1


def test_different_seeds_differ():
    y = np.zeros(100, np.int8)
    y[:30] = 1
    for scheme in SCHEMES:
        a = partition_rows(y, 3, scheme, 1)
        b = partition_rows(y, 3, scheme, 2)
        assert not all(np.array_equal(u, v) for u, v in zip(a, b))


def test_too_few_rows_and_infeasible_dirichlet():
    y = np.array([0, 1] * 20)
    with pytest.raises(
        DataError, match="cannot give each of 5 parties at least 10 rows from 40 rows"
    ):
        partition_rows(y, 5, "iid", 0)
    with pytest.raises(DataError, match="raise alpha or lower the number of parties"):
        partition_rows(np.array([0, 1] * 500), 10, "dirichlet", 0, alpha=0.01, min_rows=90)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"scheme": "random"}, "unknown partition scheme 'random'"),
        ({"n_parties": 0}, "n_parties"),
        ({"alpha": 0.0}, "alpha"),
        ({"min_rows": -1}, "min_rows"),
    ],
)
def test_argument_validation(kwargs, match):
    args = {"y": np.array([0, 1] * 50), "n_parties": 2, "scheme": "iid", "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        partition_rows(**args)
