"""The in-memory table every fedrisk model and party works on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fedrisk.errors import DataError


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def preview(names: Sequence[str], limit: int = 8) -> str:
    """'a, b, c, ... (30 in all)': keeps error messages on one short line."""
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... ({len(names)} in all)"


def row_index(idx: np.ndarray | Sequence[int], n_rows: int) -> np.ndarray:
    """Rows to take from a table of ``n_rows``: an integer index array or a boolean mask,
    as integer positions; repeated rows are refused (a table's ids must stay unique)."""
    idx = np.asarray(idx)
    if idx.dtype == bool:
        if idx.shape != (n_rows,):
            raise ValueError(f"boolean mask has shape {idx.shape}, expected ({n_rows},)")
        return np.flatnonzero(idx)
    if idx.size == 0:
        return idx.astype(np.intp)
    if not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"row index must be integers or a boolean mask, got dtype {idx.dtype}")
    if np.unique(idx).size != idx.size:
        raise ValueError("row index contains repeated rows; a table's ids must stay unique")
    return idx


@dataclass(frozen=True, eq=False)
class Dataset:
    """Rows of one party (or of the whole population): features, 0/1 labels and row ids.

    The constructor copies its inputs into canonical dtypes (X float64 C-contiguous,
    y int8, ids numpy str) and makes the arrays read-only, so a Dataset can be cached and
    shared between simulated parties without anyone changing it under another's feet.
    To modify, copy first: ``X = ds.X.copy()``.
    """

    X: np.ndarray
    y: np.ndarray
    ids: np.ndarray
    feature_names: tuple[str, ...]
    name: str

    def __post_init__(self) -> None:
        where = f"dataset {self.name!r}"
        X = np.array(self.X, dtype=np.float64, order="C")  # always a private copy
        y = np.array(self.y)
        ids = np.array(self.ids).astype(str)
        names = tuple(str(n) for n in self.feature_names)
        if X.ndim != 2:
            raise DataError(f"{where}: X must be 2-D (rows, features), got shape {X.shape}")
        n, d = X.shape
        if y.shape != (n,) or ids.shape != (n,):
            raise DataError(
                f"{where}: X has {n} rows but y has shape {y.shape} and ids {ids.shape}; "
                "they must all have one entry per row"
            )
        if len(names) != d:
            raise DataError(f"{where}: X has {d} columns but {len(names)} feature names were given")
        if len(set(names)) != d:
            raise DataError(f"{where}: feature names must be unique, got {preview(names)}")
        if not np.isfinite(X).all():
            raise DataError(
                f"{where}: X contains NaN or infinite values; every feature must be finite"
            )
        if n and not np.isin(y, (0, 1)).all():
            raise DataError(f"{where}: labels must be 0 or 1, got {np.unique(y)[:5].tolist()}")
        if np.unique(ids).size != n:
            raise DataError(f"{where}: row ids must be unique")
        # frozen=True forbids normal assignment; this is the documented way round it.
        object.__setattr__(self, "X", _frozen(X))
        object.__setattr__(self, "y", _frozen(y.astype(np.int8)))
        object.__setattr__(self, "ids", _frozen(ids))
        object.__setattr__(self, "feature_names", names)

    @property
    def n_rows(self) -> int:
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    def subset(self, idx: np.ndarray | Sequence[int]) -> Dataset:
        """The rows at ``idx`` (an integer index array or a boolean mask), in that order.

        Repeated indices are refused, because ids must stay unique; for bootstrap samples
        index ``X``/``y`` directly.
        """
        idx = row_index(idx, self.n_rows)
        return Dataset(self.X[idx], self.y[idx], self.ids[idx], self.feature_names, self.name)

    def select(self, columns: Sequence[str]) -> Dataset:
        """The named feature columns, in the order given (e.g. one party's vertical share)."""
        if isinstance(columns, str):  # select("AGE") would otherwise iterate characters
            columns = [columns]
        columns = list(columns)
        if not columns:
            raise DataError(f"dataset {self.name!r}: select() needs at least one column name")
        position = {name: i for i, name in enumerate(self.feature_names)}
        unknown = [c for c in columns if c not in position]
        if unknown:
            raise DataError(
                f"dataset {self.name!r}: unknown column(s) {preview(unknown, 4)}; "
                f"available: {preview(self.feature_names)}"
            )
        if len(set(columns)) != len(columns):
            raise DataError(
                f"dataset {self.name!r}: select() was given a column twice: {preview(columns)}"
            )
        cols = [position[c] for c in columns]
        return Dataset(self.X[:, cols], self.y, self.ids, tuple(columns), self.name)
