"""Train/test splitting and feature standardisation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedrisk.data.dataset import Dataset
from fedrisk.errors import DataError


def split_indices(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train_idx, test_idx), each sorted; deterministic for a seed.

    Exposed on its own so vertical parties can split the *same* rows of their own tables.
    Each class puts round(n_class * test_fraction) rows in test, and at least one on each side.
    """
    if not (isinstance(test_fraction, (int, float)) and 0 < test_fraction < 1):
        raise ValueError(f"test_fraction must be strictly between 0 and 1, got {test_fraction!r}")
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    test_parts = []
    for label in np.unique(y):  # loop over classes, not rows
        rows = np.flatnonzero(y == label)
        if rows.size < 2:
            raise DataError(
                f"class {label} has only {rows.size} row; a stratified split needs at least 2 per class"
            )
        n_test = min(max(round(rows.size * test_fraction), 1), rows.size - 1)
        test_parts.append(rng.permutation(rows)[:n_test])
    test = np.sort(np.concatenate(test_parts)) if test_parts else np.empty(0, np.intp)
    train = np.setdiff1d(np.arange(y.size), test, assume_unique=True)
    return train, test


def train_test_split(ds: Dataset, test_fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """Stratified by label: both halves keep the default rate (to within one row per class)."""
    train, test = split_indices(ds.y, test_fraction, seed)
    return ds.subset(train), ds.subset(test)


@dataclass(frozen=True, eq=False)
class Standardizer:
    """z-scoring with the population std (as FATE's files); constant columns get scale 1.

    Immutable: ``Standardizer.fit(X_train)`` returns a new, fitted instance (a classmethod,
    so ``Standardizer().fit(X)`` works too).
    """

    mean: np.ndarray | None = None
    scale: np.ndarray | None = None

    @classmethod
    def fit(cls, X: np.ndarray) -> Standardizer:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(f"Standardizer.fit needs a non-empty 2-D array, got shape {X.shape}")
        mean = X.mean(axis=0)
        scale = X.std(axis=0)
        # "std 0": also catch round-off leftovers on constant columns, which would blow up.
        scale[scale <= 1e-12 * np.maximum(1.0, np.abs(mean))] = 1.0
        mean.setflags(write=False)
        scale.setflags(write=False)
        return cls(mean, scale)

    def transform(self, X: np.ndarray) -> np.ndarray:
        if self.mean is None or self.scale is None:
            raise ValueError("Standardizer is not fitted; use Standardizer.fit(X_train) first")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.mean.size:
            raise ValueError(f"expected shape (n, {self.mean.size}), got {X.shape}")
        return (X - self.mean) / self.scale
