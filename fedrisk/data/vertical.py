"""Vertical federations: one table per party (same customers, different columns).

In a vertical federation a bank (the *label holder*, it knows who defaulted) and data
parties (telecom, e-commerce, tax office, ...) each hold their own columns about partly the
same customers. :func:`load_vertical` turns a scenario's ``[[federation.parties]]`` and
``[data]`` into one :class:`PartyTable` per party, each with the party's own ids in its
own order. It does **not** align rows or intersect ids — that is private set intersection's
job; :func:`true_intersection` is the plain-text answer, for tests and reports only.

Where the tables come from (``data.source``):

* ``"uci-default-credit"`` — the bundled UCI table, split by column. Without parties, the
  FATE guest/host split (:data:`~fedrisk.data.bundled.UCI_VERTICAL_SPLIT`): ``bank`` holds
  the label and 13 columns, ``provider`` 10. Every party holds all 30,000 customers.
* ``"synthetic"`` — :func:`~fedrisk.data.synthetic.make_synthetic_credit` with one source
  per party (default ``bank`` + ``telecom`` + ``ecommerce`` + ``tax``), with
  ``data.default_rate`` and ``data.tails``. The label holder
  has all ``data.customers`` customers; every data party has ``round(overlap·n)`` of them
  plus ``round((1-overlap)·n)`` customers the bank does not have (ids ``X000001``...),
  in a party-specific shuffled order.
* ``"csv"`` — one file per party (``federation.parties[i].path``); the label holder's file
  has the id, the label and its features, every other file the id and features only.

Column specs (``federation.parties[i].columns``) are exact names, globs (``BILL_AMT*``,
``PAY_?``) or ranges ``x0..x12`` (same prefix, integer suffix, inclusive); they resolve
against the available columns and keep their file order. Each column belongs to one party.

Every problem raises :class:`~fedrisk.errors.InputError` (mostly its subclass
:class:`~fedrisk.errors.DataError`) with one line naming the scenario file and key.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedrisk.data.bundled import UCI_NAME, UCI_VERTICAL_SPLIT, load_uci_default_credit
from fedrisk.data.columns import resolve_columns, warn_constant, without_excluded
from fedrisk.data.csv_source import load_csv, load_feature_csv
from fedrisk.data.dataset import preview
from fedrisk.data.synthetic import make_synthetic_credit
from fedrisk.errors import DataError, InputError
from fedrisk.scenario import PartyConfig, Scenario

__all__ = [
    "DEFAULT_BUNDLED_PARTIES",
    "DEFAULT_SYNTHETIC_PARTIES",
    "PartyTable",
    "VerticalTables",
    "check_parties",
    "column_plan",
    "load_vertical",
    "party_files",
    "refuse_label_column",
    "resolve_columns",
    "true_intersection",
]

# Parties used when a vertical scenario lists none (the first one holds the label). The
# synthetic generator gives repayment-style features only to a source named "bank".
DEFAULT_BUNDLED_PARTIES: tuple[str, ...] = ("bank", "provider")
DEFAULT_SYNTHETIC_PARTIES: tuple[str, ...] = ("bank", "telecom", "ecommerce", "tax")

_SYNTHETIC_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*\Z")  # what make_synthetic_credit accepts
_RULE = "each column belongs to one party"


# --- tables ---------------------------------------------------------------------------


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class PartyTable:
    """One party's share of a vertical federation, rows in the party's own order.

    The constructor copies into canonical dtypes (ids str, X float64 C-contiguous, y int8)
    and makes the arrays read-only. ``y`` is set only for the label holder.
    """

    name: str
    ids: np.ndarray
    X: np.ndarray
    feature_names: tuple[str, ...]
    y: np.ndarray | None = None

    def __post_init__(self) -> None:
        where = f"party {self.name!r}"
        ids = np.array(self.ids).astype(str)
        X = np.array(self.X, dtype=np.float64, order="C")
        names = tuple(str(n) for n in self.feature_names)
        if X.ndim != 2 or ids.shape != (X.shape[0],):
            raise DataError(
                f"{where}: X has shape {X.shape} and ids {ids.shape}; "
                "X must be (rows, features) with one id per row"
            )
        if len(names) != X.shape[1] or len(set(names)) != len(names):
            raise DataError(
                f"{where}: X has {X.shape[1]} columns but the feature names are "
                f"{preview(names)}; give one unique name per column"
            )
        if np.unique(ids).size != ids.size:
            raise DataError(f"{where}: customer ids must be unique")
        if not np.isfinite(X).all():
            raise DataError(f"{where}: X contains NaN or infinite values")
        object.__setattr__(self, "ids", _frozen(ids))
        object.__setattr__(self, "X", _frozen(X))
        object.__setattr__(self, "feature_names", names)
        if self.y is not None:
            y = np.array(self.y)
            if y.shape != ids.shape or (y.size and not np.isin(y, (0, 1)).all()):
                raise DataError(f"{where}: labels must be 0 or 1, one per row")
            object.__setattr__(self, "y", _frozen(y.astype(np.int8)))

    @property
    def n_rows(self) -> int:
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    @property
    def holds_label(self) -> bool:
        return self.y is not None


@dataclass(frozen=True, eq=False)
class VerticalTables:
    """All parties' tables: the label holder first, then the others in scenario order."""

    label_holder: str
    parties: tuple[PartyTable, ...]

    def __post_init__(self) -> None:
        parties = tuple(self.parties)
        names = [p.name for p in parties]
        if len(set(names)) != len(names):
            raise ValueError(f"party names must be unique, got {names}")
        if not parties or parties[0].name != self.label_holder or parties[0].y is None:
            raise ValueError(
                f"the label holder {self.label_holder!r} must come first and hold the labels"
            )
        if any(p.y is not None for p in parties[1:]):
            raise ValueError("only the label holder may hold labels")
        object.__setattr__(self, "parties", parties)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parties)

    @property
    def holder(self) -> PartyTable:
        """The label holder's table (``parties[0]``)."""
        return self.parties[0]

    @property
    def data_parties(self) -> tuple[PartyTable, ...]:
        """Every party but the label holder, in scenario order."""
        return self.parties[1:]

    def party(self, name: str) -> PartyTable:
        for p in self.parties:
            if p.name == name:
                return p
        raise KeyError(f"no party {name!r}; the parties are {', '.join(self.names)}")


def true_intersection(tables: VerticalTables | Sequence[PartyTable]) -> np.ndarray:
    """Ids every party holds, sorted (plain-text reference for tests and reports; the
    federation itself finds them by private set intersection)."""
    parties = tables.parties if isinstance(tables, VerticalTables) else tuple(tables)
    if not parties:
        return np.array([], dtype=str)
    common = np.unique(parties[0].ids)
    for p in parties[1:]:
        common = np.intersect1d(common, p.ids, assume_unique=True)
    return common.astype(str)


# --- column specs ---------------------------------------------------------------------


def _assign_columns(src: str, plan: list[tuple[int | None, str, tuple[str, ...]]]) -> None:
    """Refuse a party without columns and a column held by two parties.

    ``plan`` lists (scenario index or None for defaulted parties, name, resolved columns)
    in scenario order.
    """
    owner: dict[str, str] = {}
    for i, name, cols in plan:
        key = _party_key(src, i, "columns")
        if not cols:
            raise DataError(f"{key}: party {name!r} holds no columns; give at least one")
        for c in cols:
            if c in owner:
                raise DataError(f"{key}: {c!r} is held by both {owner[c]!r} and {name!r}; {_RULE}")
            owner[c] = name


def _party_key(src: str, i: int | None, field: str) -> str:
    return f"{src}: federation.parties" + (f"[{i}].{field}" if i is not None else "")


# --- loading --------------------------------------------------------------------------


def check_parties(s: Scenario) -> None:
    """One label holder and at least one data party, when the scenario lists parties."""
    parties = s.federation.parties
    if parties:
        holders = [i for i, p in enumerate(parties) if p.label]
        if len(holders) != 1 or len(parties) < 2:
            raise InputError(
                f"{s.source_file}: federation.parties: a vertical federation needs exactly "
                "one party with label = true and at least one data party"
            )


def load_vertical(s: Scenario) -> VerticalTables:
    """One table per party of the vertical scenario ``s``; deterministic for ``s.seed``."""
    src = s.source_file
    parties = tuple(s.federation.parties)
    check_parties(s)
    if s.data.source != "csv":
        for i, p in enumerate(parties):
            if p.path is not None:
                raise InputError(
                    f"{_party_key(src, i, 'path')}: path is only used with "
                    f"data.source = 'csv' (source is {s.data.source!r})"
                )
    loader = {UCI_NAME: _load_bundled, "synthetic": _load_synthetic, "csv": _load_csv}.get(
        s.data.source
    )
    if loader is not None:
        tables = loader(s, parties)
        for t in tables.parties:
            warn_constant(t.X, t.feature_names, f"{src}: party {t.name!r}")
        return tables
    raise InputError(
        f"{src}: data.source: {s.data.source!r} is not available for vertical "
        f"federations; allowed: {UCI_NAME!r}, 'synthetic', 'csv'"
    )


def _ordered(holder: PartyTable, others: list[PartyTable]) -> VerticalTables:
    return VerticalTables(holder.name, (holder, *others))


def _load_bundled(s: Scenario, parties: tuple[PartyConfig, ...]) -> VerticalTables:
    src = s.source_file
    ds = load_uci_default_credit()
    if not parties:
        parties = tuple(
            PartyConfig(name=n, columns=UCI_VERTICAL_SPLIT[n], label=(n == "bank"))
            for n in DEFAULT_BUNDLED_PARTIES
        )
        indices: list[int | None] = [None] * len(parties)
    else:
        indices = list(range(len(parties)))
    plan = []
    for i, p in zip(indices, parties):
        if p.columns is None:
            raise InputError(
                f"{_party_key(src, i, 'columns')}: columns required with the "
                f"bundled data ({UCI_NAME}); list the columns party {p.name!r} "
                "holds, e.g. ['LIMIT_BAL', 'BILL_AMT*', 'PAY_AMT1..PAY_AMT6']"
            )
        plan.append(
            (i, p.name, resolve_columns(p.columns, ds.feature_names, _party_key(src, i, "columns")))
        )
    plan = without_excluded(s, plan)
    _assign_columns(src, plan)
    position = {c: j for j, c in enumerate(ds.feature_names)}
    tables = {
        p.name: PartyTable(
            p.name, ds.ids, ds.X[:, [position[c] for c in cols]], cols, ds.y if p.label else None
        )
        for p, (_, _, cols) in zip(parties, plan)
    }
    holder = next(p.name for p in parties if p.label)
    return _ordered(tables[holder], [t for n, t in tables.items() if n != holder])


def _load_synthetic(s: Scenario, parties: tuple[PartyConfig, ...]) -> VerticalTables:
    src = s.source_file
    n = s.data.customers
    if parties:
        indices: list[int | None] = list(range(len(parties)))
        signal = {p.name: p.signal for p in parties}
    else:
        parties = tuple(
            PartyConfig(name=name, label=(k == 0))
            for k, name in enumerate(DEFAULT_SYNTHETIC_PARTIES)
        )
        indices = [None] * len(parties)
        signal = None  # the generator's defaults: bank 1.0, others 0.6
    for i, p in zip(indices, parties):
        if not _SYNTHETIC_NAME.match(p.name):
            raise InputError(
                f"{_party_key(src, i, 'name')}: {p.name!r}: with synthetic data "
                "party names must be letters and digits, starting with a letter "
                "(they name the generated columns)"
            )
    shared_n = round(s.data.overlap * n)
    extra_n = round((1.0 - s.data.overlap) * n)
    if shared_n < 1:
        raise InputError(
            f"{src}: data.overlap: {s.data.overlap:g} of {n} customers leaves the "
            "data parties no customer in common with the bank; raise data.overlap "
            "or data.customers"
        )
    sources = [p.name for p in parties]
    syn = _generate(src, n, s.seed, sources, s.data.features_per_source, signal, s.data)
    ds = syn.dataset
    plan = []
    for i, p in zip(indices, parties):
        if p.columns is None:
            cols = syn.columns_by_source[p.name]
        else:
            cols = resolve_columns(p.columns, ds.feature_names, _party_key(src, i, "columns"))
        plan.append((i, p.name, cols))
    plan = without_excluded(s, plan)
    _assign_columns(src, plan)

    position = {c: j for j, c in enumerate(ds.feature_names)}
    extra = None
    if extra_n:
        # Customers the bank does not have: a second population drawn the same way, with
        # its own seed, so the bank's table is the same whatever the overlap.
        extra_seed = int(np.random.SeedSequence([s.seed, 0xE87A]).generate_state(1, np.uint64)[0])
        extra = _generate(
            src, n, extra_seed, sources, s.data.features_per_source, signal, s.data
        ).dataset
        width = max(6, len(str(n)))
        extra_ids = np.char.add("X", np.char.zfill(np.arange(1, n + 1).astype(str), width))

    holder_k = next(k for k, p in enumerate(parties) if p.label)
    tables: dict[str, PartyTable] = {}
    for k, (p, (_, _, cols)) in enumerate(zip(parties, plan)):
        idx = [position[c] for c in cols]
        if k == holder_k:
            tables[p.name] = PartyTable(p.name, ds.ids, ds.X[:, idx], cols, ds.y)
            continue
        rng = np.random.default_rng([s.seed, k])
        shared = np.sort(rng.choice(n, size=shared_n, replace=False))
        ids, X = ds.ids[shared], ds.X[np.ix_(shared, idx)]
        if extra is not None:
            rows = np.sort(rng.choice(n, size=extra_n, replace=False))
            ids = np.concatenate([ids, extra_ids[rows]])
            X = np.vstack([X, extra.X[np.ix_(rows, idx)]])
        order = rng.permutation(ids.size)
        tables[p.name] = PartyTable(p.name, ids[order], X[order], cols)
    holder = parties[holder_k].name
    return _ordered(tables[holder], [t for name, t in tables.items() if name != holder])


def _generate(src, n, seed, sources, k, signal, data):
    try:
        return make_synthetic_credit(
            n,
            seed=seed,
            sources=sources,
            features_per_source=k,
            signal=signal,
            base_rate=data.default_rate,
            tails=data.tails,
        )
    except DataError as exc:
        raise DataError(f"{src}: data.customers: {exc}") from None
    except ValueError as exc:
        raise InputError(f"{src}: federation.parties: synthetic data: {exc}") from None


def party_files(s: Scenario) -> list[tuple[PartyConfig, Path, str]]:
    """Each party's csv file (vertical, ``data.source = "csv"``): (its config, the path,
    how messages name it), in scenario order; one-line errors for what is missing."""
    src = s.source_file
    parties = tuple(s.federation.parties)
    if not parties:
        raise InputError(
            f"{src}: federation.parties: required with data.source = 'csv'; add "
            "one [[federation.parties]] table (name, path, label) per party file"
        )
    if s.data.path:
        raise InputError(
            f"{src}: data.path: not used by vertical federations; give each "
            "party its own file in federation.parties[i].path"
        )
    out = []
    for i, p in enumerate(parties):
        key = _party_key(src, i, "path")
        if not p.path:
            raise InputError(
                f"{key}: required with data.source = 'csv'; give the csv file of "
                f"party {p.name!r} (relative to the scenario file)"
            )
        path = s.resolve_path(p.path)
        if not path.is_file():
            shown = repr(p.path) if str(path) == p.path else f"{p.path!r} ({path})"
            raise DataError(
                f"{key}: file {shown} not found; give the path of an existing "
                "csv file, relative to the scenario file"
            )
        out.append((p, path, f"{key} ({p.path})"))
    return out


def refuse_label_column(s: Scenario, names, where: str) -> None:
    """A data party's file must not carry the label column."""
    if s.data.label in names:
        raise DataError(
            f"{where}: has the label column {s.data.label!r}; the label "
            "belongs only in the label holder's file"
        )


def column_plan(s: Scenario, names: list) -> list[tuple[int, str, tuple[str, ...]]]:
    """(scenario index, party, its columns) from each file's column ``names``: the
    party's ``columns`` patterns resolved, ``data.exclude`` applied, and no column held
    twice."""
    src = s.source_file
    plan = []
    for i, (p, cols) in enumerate(zip(s.federation.parties, names)):
        if p.columns is not None:
            cols = resolve_columns(p.columns, cols, _party_key(src, i, "columns"))
        plan.append((i, p.name, tuple(cols)))
    plan = without_excluded(s, plan)
    _assign_columns(src, plan)
    return plan


def _load_csv(s: Scenario, parties: tuple[PartyConfig, ...]) -> VerticalTables:
    loaded = []
    for p, path, where in party_files(s):
        if p.label:
            ds = load_csv(path, label=s.data.label, id_column=s.data.id, display_name=where)
            ids, X, names, y = ds.ids, ds.X, ds.feature_names, ds.y
        else:
            ids, X, names = load_feature_csv(path, id_column=s.data.id, display_name=where)
            y = None
            refuse_label_column(s, names, where)
        loaded.append((ids, X, names, y))
    plan = column_plan(s, [names for _, _, names, _ in loaded])
    tables = {}
    for p, (ids, X, names, y), (_, _, cols) in zip(parties, loaded, plan):
        position = {c: j for j, c in enumerate(names)}
        tables[p.name] = PartyTable(p.name, ids, X[:, [position[c] for c in cols]], cols, y)
    holder = next(p.name for p in parties if p.label)
    return _ordered(tables[holder], [t for name, t in tables.items() if name != holder])
