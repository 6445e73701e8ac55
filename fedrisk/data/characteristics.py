"""Scorecard characteristics: tables that keep text columns and missing values.

A WOE scorecard (``model.kind = "scorecard"``) bins every characteristic, so unlike the
numeric :class:`~fedrisk.data.dataset.Dataset` a :class:`Characteristics` table may hold
text columns and missing cells, with the conventions of :mod:`fedrisk.models.binning`:

* a numeric column is float64, missing = NaN (infinite values are refused);
* a text column is a numpy str array, values stripped, missing = ``""``.

Where the tables come from mirrors the logistic workflow exactly:

* :func:`prepare_characteristics` (horizontal): the same pooled source as
  :func:`~fedrisk.data.prepare.load_source` (csv files through :func:`load_csv_characteristics`),
  ``data.exclude`` left out, then the same stratified held-out split and the same bank
  partition as :func:`~fedrisk.data.prepare.prepare_horizontal`; no scaling (WOE coding
  replaces it).
* :func:`load_vertical_characteristics` (vertical): the bundled and synthetic tables of
  :func:`~fedrisk.data.vertical.load_vertical`, or one csv file per party with the same
  checks and messages as the vertical csv loader.

Columns that cannot tell anyone apart (:func:`drop_uninformative`) are dropped, each with a
warning line in the result's ``warnings``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedrisk.data.columns import excluded_columns
from fedrisk.data.csv_source import load_csv_columns
from fedrisk.data.dataset import Dataset, preview, row_index
from fedrisk.data.prepare import load_source, split_rows
from fedrisk.data.vertical import (
    PartyTable,
    check_parties,
    column_plan,
    load_vertical,
    party_files,
    refuse_label_column,
)
from fedrisk.errors import DataError, InputError
from fedrisk.scenario import Scenario

__all__ = [
    "Characteristics",
    "PreparedCharacteristics",
    "VerticalCharacteristics",
    "drop_uninformative",
    "load_csv_characteristics",
    "load_vertical_characteristics",
    "prepare_characteristics",
]


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class Characteristics:
    """One party's (or the pooled) scorecard table: named columns, labels and row ids.

    ``columns`` maps names, in file order, to float64 arrays (NaN = missing) or numpy str
    arrays (values stripped, "" = missing). ``y`` is int8 0/1, or None for a feature-only
    party; ``ids`` are unique strings; ``name`` names the table (its file) in messages.

    The constructor copies every array into its canonical dtype and makes it read-only
    (integer and boolean columns become float64), and keeps its own copy of the dict:
    treat it as read-only too.
    """

    columns: dict[str, np.ndarray]
    y: np.ndarray | None
    ids: np.ndarray
    name: str

    def __post_init__(self) -> None:
        where = self.name
        ids = np.array(self.ids).astype(str)
        if ids.ndim != 1:
            raise DataError(f"{where}: ids must be 1-D, one per row, got shape {ids.shape}")
        n = ids.size
        columns: dict[str, np.ndarray] = {}
        for name, values in dict(self.columns).items():
            if not isinstance(name, str) or not name:
                raise DataError(f"{where}: column names must be non-empty strings, got {name!r}")
            columns[name] = _frozen(_canonical(values, name, n, where))
        if np.unique(ids).size != n:
            raise DataError(f"{where}: row ids must be unique")
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "ids", _frozen(ids))
        if self.y is not None:
            y = np.array(self.y)
            if y.shape != (n,) or (n and not np.isin(y, (0, 1)).all()):
                raise DataError(f"{where}: labels must be 0 or 1, one per row ({n} rows)")
            object.__setattr__(self, "y", _frozen(y.astype(np.int8)))

    @classmethod
    def from_dataset(cls, ds: Dataset) -> Characteristics:
        """A numeric :class:`~fedrisk.data.dataset.Dataset` as characteristics (no missing)."""
        columns = {name: ds.X[:, j] for j, name in enumerate(ds.feature_names)}
        return cls(columns, ds.y, ds.ids, ds.name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.columns)

    @property
    def text_names(self) -> tuple[str, ...]:
        return tuple(n for n, v in self.columns.items() if v.dtype.kind == "U")

    @property
    def numeric_names(self) -> tuple[str, ...]:
        return tuple(n for n, v in self.columns.items() if v.dtype.kind != "U")

    @property
    def n_rows(self) -> int:
        return self.ids.size

    @property
    def n_columns(self) -> int:
        return len(self.columns)

    def is_text(self, name: str) -> bool:
        """True for a text (categorical) column, False for a numeric one."""
        if name not in self.columns:
            raise DataError(
                f"{self.name}: unknown column {name!r}; available: {preview(self.names)}"
            )
        return self.columns[name].dtype.kind == "U"

    def subset(self, rows: np.ndarray | Sequence[int]) -> Characteristics:
        """The rows at ``rows`` (an integer index array or a boolean mask), in that order;
        dtypes are kept. Repeated rows are refused, as ids must stay unique."""
        idx = row_index(rows, self.n_rows)
        columns = {n: v[idx] for n, v in self.columns.items()}
        y = None if self.y is None else self.y[idx]
        return Characteristics(columns, y, self.ids[idx], self.name)

    def select(self, names: Sequence[str]) -> Characteristics:
        """The named columns, in the order given (same rows, labels and ids)."""
        if isinstance(names, str):  # select("age") would otherwise iterate characters
            names = [names]
        names = list(names)
        unknown = [c for c in names if c not in self.columns]
        if unknown:
            raise DataError(
                f"{self.name}: unknown column(s) {preview(unknown, 4)}; "
                f"available: {preview(self.names)}"
            )
        if len(set(names)) != len(names):
            raise DataError(f"{self.name}: select() was given a column twice: {preview(names)}")
        return Characteristics({c: self.columns[c] for c in names}, self.y, self.ids, self.name)


def _canonical(values: object, name: str, n: int, where: str) -> np.ndarray:
    array = np.asarray(values)
    if array.shape != (n,):
        raise DataError(
            f"{where}: column {name!r} has shape {array.shape}; "
            f"every column must be 1-D with one value per id ({n})"
        )
    if array.dtype.kind in "biuf":
        out = np.array(array, dtype=np.float64)
        if np.isinf(out).any():
            raise DataError(
                f"{where}: column {name!r} has an infinite value; "
                "numbers must be finite (NaN marks a missing value)"
            )
        return out
    if array.dtype.kind in "UT":
        return np.array(array, dtype=str)
    raise DataError(
        f"{where}: column {name!r} has dtype {array.dtype}; "
        "a column must be numeric (float, NaN = missing) or numpy str ('' = missing)"
    )


def load_csv_characteristics(
    path: Path, label: str | None, id_column: str, display_name: str | None = None
) -> Characteristics:
    """A party's csv file with text columns and missing values kept
    (:func:`fedrisk.data.csv_source.load_csv_columns` says how cells are read).

    ``label=None`` for a feature-only party. ``display_name`` (default ``str(path)``) names
    the file in messages and becomes ``Characteristics.name``.
    """
    return Characteristics(*load_csv_columns(path, label, id_column, display_name))


def drop_uninformative(ch: Characteristics) -> tuple[Characteristics, list[str]]:
    """``ch`` without the columns that tell no two customers apart, and one warning line
    per dropped column.

    Dropped: a column with no value at all (every cell missing), and a column with a
    single value and no missing cell. A single value *with* missing cells is kept: its
    missing bin against its value bin is a missing-value indicator, and missingness can
    carry risk. If no column is left, :class:`~fedrisk.errors.InputError`.
    """
    keep, warnings = [], []
    for name, values in ch.columns.items():
        missing = np.isnan(values) if values.dtype.kind == "f" else values == ""
        present = np.unique(values[~missing])
        if present.size == 0:
            warnings.append(f"{ch.name}: column {name!r} has no value (every cell is missing)")
        elif present.size == 1 and not missing.any():
            warnings.append(
                f"{ch.name}: column {name!r} has one distinct value ({_show(present[0])})"
            )
        else:
            keep.append(name)
            continue
        warnings[-1] += " and is dropped"
    if not keep:
        raise InputError(
            f"{ch.name}: no column is left: every one is empty or has one value in every row "
            f"({preview(ch.names, 4)}); a scorecard needs at least one column that varies"
        )
    return (ch if len(keep) == ch.n_columns else ch.select(keep)), warnings


def _show(value: object) -> str:
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return repr(str(value))


# --- horizontal -------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PreparedCharacteristics:
    """A horizontal scorecard scenario's rows: the pooled training and held-out test rows
    and, per bank, its row indices into ``train`` (as :func:`prepare_horizontal` draws
    them); ``warnings`` name the columns dropped as uninformative."""

    train: Characteristics
    test: Characteristics
    parts: tuple[np.ndarray, ...]
    party_names: tuple[str, ...]
    warnings: tuple[str, ...] = ()


def prepare_characteristics(s: Scenario) -> PreparedCharacteristics:
    """The horizontal scenario ``s`` as scorecard tables: the rows, split and partition of
    :func:`~fedrisk.data.prepare.prepare_horizontal` for the same data, unscaled."""
    pooled = _pooled(s)
    pooled, warnings = drop_uninformative(pooled)
    train_idx, test_idx, parts = split_rows(s, pooled.y)
    train, test = pooled.subset(train_idx), pooled.subset(test_idx)
    return PreparedCharacteristics(train, test, tuple(parts), s.bank_names(), tuple(warnings))


def _pooled(s: Scenario) -> Characteristics:
    """The scenario's pooled source without ``data.exclude`` (as ``load_source``)."""
    d = s.data
    if d.source != "csv":
        return Characteristics.from_dataset(load_source(s))
    path = s.resolve_path(d.path)
    ch = load_csv_characteristics(path, label=d.label, id_column=d.id, display_name=str(path))
    dropped = excluded_columns(s, ch.names)
    if dropped:
        keep = [c for c in ch.names if c not in dropped]
        if not keep:
            raise InputError(
                f"{s.source_file}: data.exclude: leaves no feature column; keep at least one"
            )
        ch = ch.select(keep)
    return ch


# --- vertical ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class VerticalCharacteristics:
    """A vertical scorecard scenario's tables, each in its party's own row order (ids are
    not aligned: that is private set intersection's job). ``party_names``: the label
    holder's first, then the data parties' in scenario order, as ``parties``."""

    holder: Characteristics
    parties: tuple[Characteristics, ...]
    warnings: tuple[str, ...]
    party_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.holder.y is None or any(p.y is not None for p in self.parties):
            raise ValueError("the holder, and only the holder, must hold the labels")
        if len(self.party_names) != 1 + len(self.parties):
            raise ValueError("party_names must name the holder and then every data party")


def load_vertical_characteristics(s: Scenario) -> VerticalCharacteristics:
    """The vertical scenario ``s``'s tables with text columns and missing values kept.

    Bundled and synthetic data: :func:`~fedrisk.data.vertical.load_vertical`'s tables
    (numeric); csv: ``federation.parties[i].path`` read by :func:`load_csv_characteristics`,
    with the vertical csv loader's checks. Uninformative columns are dropped per party.
    """
    if s.data.source == "csv":
        check_parties(s)
        named = _load_csv_parties(s)
    else:
        tables = load_vertical(s)
        named = [(t.name, _from_table(s, t)) for t in tables.parties]
    warnings: list[str] = []
    kept = []
    for _, ch in named:
        ch, dropped = drop_uninformative(ch)
        warnings += dropped
        kept.append(ch)
    return VerticalCharacteristics(
        kept[0], tuple(kept[1:]), tuple(warnings), tuple(n for n, _ in named)
    )


def _from_table(s: Scenario, t: PartyTable) -> Characteristics:
    columns = {name: t.X[:, j] for j, name in enumerate(t.feature_names)}
    return Characteristics(columns, t.y, t.ids, f"{s.source_file}: party {t.name!r}")


def _load_csv_parties(s: Scenario) -> list[tuple[str, Characteristics]]:
    """One file per party, checked as the vertical csv loader checks them (the same
    functions): (name, table), the label holder first, then the data parties."""
    loaded = []
    for p, path, where in party_files(s):
        label = s.data.label if p.label else None
        ch = load_csv_characteristics(path, label=label, id_column=s.data.id, display_name=where)
        if not p.label:
            refuse_label_column(s, ch.columns, where)
        loaded.append((p, ch))
    plan = column_plan(s, [ch.names for _, ch in loaded])
    tables = [(p.name, ch.select(cols)) for (p, ch), (_, _, cols) in zip(loaded, plan)]
    holder = next(k for k, (p, _) in enumerate(loaded) if p.label)
    return [tables[holder]] + [t for k, t in enumerate(tables) if k != holder]
