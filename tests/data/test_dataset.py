"""Dataset: canonical dtypes, immutability, subset/select."""

import numpy as np
import pytest

from fedrisk.data import Dataset
from fedrisk.errors import DataError


def small():
    X = np.arange(12, dtype=np.int64).reshape(4, 3)
    return Dataset(X, [0, 1, 1, 0], [10, 11, 12, 13], ("a", "b", "c"), "small")


def test_coerces_and_freezes_without_touching_inputs():
    X = np.arange(6.0).reshape(2, 3)
    ds = Dataset(X, np.array([0, 1]), np.array([5, 6]), ["a", "b", "c"], "t")
    assert ds.X.dtype == np.float64 and ds.y.dtype == np.int8 and ds.ids.dtype.kind == "U"
    assert ds.feature_names == ("a", "b", "c") and (ds.n_rows, ds.n_features) == (2, 3)
    assert not ds.X.flags.writeable and X.flags.writeable
    X[0, 0] = 99.0
    assert ds.X[0, 0] == 0.0


def test_subset_and_mask():
    ds = small()
    sub = ds.subset(np.array([3, 1]))
    assert sub.ids.tolist() == ["13", "11"] and sub.X[:, 0].tolist() == [9, 3]
    assert ds.subset(ds.y == 1).ids.tolist() == ["11", "12"]
    assert ds.subset([]).n_rows == 0
    with pytest.raises(ValueError, match="repeated"):
        ds.subset([1, 1])


def test_select():
    ds = small()
    sel = ds.select(["c", "a"])
    assert sel.feature_names == ("c", "a") and sel.X[0].tolist() == [2, 0]
    assert ds.select("b").feature_names == ("b",)
    with pytest.raises(
        DataError, match=r"dataset 'small': unknown column\(s\) 'zz'; available: 'a', 'b', 'c'"
    ):
        ds.select(["a", "zz"])
    with pytest.raises(DataError, match="twice"):
        ds.select(["a", "a"])
    with pytest.raises(DataError, match="at least one"):
        ds.select([])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"y": [0, 1, 2]}, "labels must be 0 or 1"),
        ({"ids": ["a", "a", "b"]}, "unique"),
        ({"feature_names": ("a",)}, "feature names"),
        ({"X": [[1.0, np.nan]] * 3}, "NaN"),
        ({"y": [0, 1]}, "one entry per row"),
    ],
)
def test_invalid_construction(kwargs, match):
    args = {
        "X": np.zeros((3, 2)),
        "y": [0, 1, 0],
        "ids": ["a", "b", "c"],
        "feature_names": ("f", "g"),
        "name": "t",
    }
    with pytest.raises(DataError, match=match):
        Dataset(**{**args, **kwargs})
