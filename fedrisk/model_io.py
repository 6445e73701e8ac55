"""Load a horizontal run's final model and score raw customer rows in Python.

A run folder's ``model.json`` holds the weights on z-scored features plus the z-scoring
(``standardize``: mean and scale, or null when the run did not standardise). Loading
folds the z-scoring into coefficients on the raw features::

    w_raw = w / scale          b_raw = b − Σ_j w_j · mean_j / scale_j

so ``model.predict_proba(raw_rows)`` equals the run's own probabilities (up to float
rounding) without the caller having to know how the run scaled its data.

Runs with ``data.scaling = "robust"`` clip every feature before z-scoring; their
``standardize`` record also holds ``clip_low`` and ``clip_high`` (one bound per feature,
``null`` for a feature left unclipped), and the loaded model clips raw rows the same way
before applying the folded coefficients. Files without those keys (older runs, or
``"zscore"``) load as before: no clipping.

Vertical logistic runs have no ``model.json``: each party holds only the weights of its
own features, so no single party can load the whole model.

SecureBoost runs (``model.kind = "secureboost"``) write ``model/trees.json`` (the trees,
whose split nodes name only a source and that source's split id) and one part per
party, ``model/<party>.json`` (each of its split ids' column and threshold).
:func:`load_model` joins them into a :class:`FederatedBoostedTrees`: the simulator's
view, which in a real deployment no single party could assemble.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit

from fedrisk.errors import InputError

MODEL_FORMAT = "fedrisk-logistic-v1"
MODEL_FILE = "model.json"
TREES_FORMAT = "fedrisk-secureboost-v1"
TREES_DIR = "model"  # a secureboost run's model folder: trees.json and one part per party
TREES_FILE = "trees.json"


class FederatedLogisticModel:
    """The federated logistic regression on raw features, scikit-learn style.

    ``coef_`` (shape ``(d,)``) and ``intercept_`` (a float) act on raw feature values in
    ``feature_names_`` order; ``predict_proba`` returns ``[P(no default), P(default)]``
    per row (``classes_ == [0, 1]``, 1 = default).
    """

    def __init__(
        self,
        feature_names: Sequence[str],
        coef: Sequence[float],
        intercept: float,
        *,
        source: str | None = None,
        clip_low: Sequence[float] | None = None,
        clip_high: Sequence[float] | None = None,
    ) -> None:
        coef = np.array(coef, dtype=np.float64)
        names = tuple(str(n) for n in feature_names)
        if coef.ndim != 1 or coef.size != len(names):
            raise ValueError(f"{len(names)} feature names but coef has shape {coef.shape}")
        if len(set(names)) != len(names):
            raise ValueError("feature names must be unique")
        if not (np.isfinite(coef).all() and math.isfinite(float(intercept))):
            raise ValueError("coefficients and intercept must be finite")
        coef.setflags(write=False)
        low = np.full(coef.size, -np.inf) if clip_low is None else np.array(clip_low, float)
        high = np.full(coef.size, np.inf) if clip_high is None else np.array(clip_high, float)
        if low.shape != coef.shape or high.shape != coef.shape:
            raise ValueError(f"clip bounds must have one value per feature ({coef.size})")
        if np.isnan(low).any() or np.isnan(high).any() or (low > high).any():
            raise ValueError("clip bounds must be numbers with clip_low <= clip_high")
        low.setflags(write=False)
        high.setflags(write=False)
        # raw features are clipped to [clip_low_, clip_high_] (±inf: unclipped) first
        self.clip_low_: np.ndarray = low
        self.clip_high_: np.ndarray = high
        self.feature_names_: tuple[str, ...] = names
        self.coef_: np.ndarray = coef
        self.intercept_: float = float(intercept)
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = len(names)
        self.source = source  # the model.json it was loaded from, if any

    @classmethod
    def from_record(cls, record: Any, where: str = MODEL_FILE) -> FederatedLogisticModel:
        """Build from a ``model.json`` record (raises InputError naming ``where``)."""
        w, b, names, mean, scale, low, high = _parse_record(record, where)
        if mean is None:
            return cls(names, w, b, source=where)
        return cls(
            names,
            w / scale,
            b - float(np.sum(w * mean / scale)),
            source=where,
            clip_low=low,
            clip_high=high,
        )

    def clip(self, X: Any) -> np.ndarray:
        """Raw rows as a float matrix in model order, clipped to the run's bounds."""
        return np.clip(as_feature_matrix(X, self.feature_names_), self.clip_low_, self.clip_high_)

    def decision_function(self, X: Any) -> np.ndarray:
        """Log-odds of default, ``intercept_ + clip(X) @ coef_``, one value per row."""
        return self.clip(X) @ self.coef_ + self.intercept_

    def predict_proba(self, X: Any) -> np.ndarray:
        """Shape ``(n, 2)``: column 0 P(no default), column 1 P(default)."""
        z = self.decision_function(X)
        return np.column_stack([expit(-z), expit(z)])

    def predict(self, X: Any, threshold: float = 0.5) -> np.ndarray:
        """1 (default) where P(default) ≥ ``threshold``, else 0."""
        return (self.predict_proba(X)[:, 1] >= threshold).astype(np.int8)

    def __repr__(self) -> str:
        return (
            f"FederatedLogisticModel({self.n_features_in_} features, "
            f"intercept {self.intercept_:.4g}, source={self.source!r})"
        )


class FederatedBoostedTrees:
    """A SecureBoost run's gradient-boosted trees on raw features, scikit-learn style.

    This is the simulator's view: one process holding every party's part of the model
    (the trees from the bank, each data party's split thresholds from that party). In a
    real deployment each party keeps its own thresholds and the bank knows a data
    party's splits only by id, so scoring a customer takes every party's help.

    ``feature_names_`` lists every column the parts name, party by party in the order
    of ``parties_`` (the label holder first); ``predict_proba`` returns
    ``[P(no default), P(default)]`` per row (``classes_ == [0, 1]``, 1 = default), with
    P(default) = sigmoid(``base_score_`` + the leaf value each tree gives the row). A
    row goes left at a split when its value is ``<=`` the threshold.

    ``trees`` holds one record per tree, nodes in order (0 is the root, a child comes
    after its parent): ``feature`` (index into ``feature_names``, −1 at a leaf),
    ``threshold``, ``left``, ``right`` (child nodes, ignored at a leaf) and ``value``
    (the leaf's raw-score increment, learning rate included).
    """

    def __init__(
        self,
        feature_names: Sequence[str],
        trees: Sequence[Any],
        base_score: float,
        *,
        parties: Sequence[str] = (),
        feature_parties: Sequence[str] | None = None,
        source: str | None = None,
    ) -> None:
        names = tuple(str(n) for n in feature_names)
        if len(set(names)) != len(names):
            raise ValueError("feature names must be unique")
        if isinstance(base_score, bool) or not math.isfinite(float(base_score)):
            raise ValueError(f"base_score must be a finite number, got {base_score!r}")
        owners = tuple(str(p) for p in feature_parties) if feature_parties is not None else ()
        if feature_parties is not None and len(owners) != len(names):
            raise ValueError(f"{len(names)} feature names but {len(owners)} feature parties")
        self.feature_names_: tuple[str, ...] = names
        self.feature_parties_: tuple[str, ...] = owners  # the party holding each feature
        self.parties_: tuple[str, ...] = tuple(str(p) for p in parties)
        self.base_score_: float = float(base_score)
        self.trees_: tuple[_Tree, ...] = tuple(
            _Tree.build(t, len(names), i) for i, t in enumerate(trees)
        )
        self.n_trees_ = len(self.trees_)
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = len(names)
        self.source = source  # the trees.json it was loaded from, if any

    @classmethod
    def from_files(cls, trees_file: str | Path) -> FederatedBoostedTrees:
        """Load ``trees.json`` and the party parts beside it (InputError naming the file)."""
        return _load_trees(Path(trees_file))

    def apply(self, X: Any) -> np.ndarray:
        """The leaf (node index) each tree sends each row to, shape ``(n, n_trees_)``."""
        A = as_feature_matrix(X, self.feature_names_)
        out = np.empty((A.shape[0], self.n_trees_), dtype=np.int64)
        for t, tree in enumerate(self.trees_):
            out[:, t] = tree.leaves(A)
        return out

    def decision_function(self, X: Any) -> np.ndarray:
        """Log-odds of default, ``base_score_`` + Σ over trees of the row's leaf value."""
        leaves = self.apply(X)
        raw = np.full(leaves.shape[0], self.base_score_)
        for t, tree in enumerate(self.trees_):  # tree by tree, in the run's order
            raw += tree.value[leaves[:, t]]
        return raw

    def predict_proba(self, X: Any) -> np.ndarray:
        """Shape ``(n, 2)``: column 0 P(no default), column 1 P(default)."""
        z = self.decision_function(X)
        return np.column_stack([expit(-z), expit(z)])

    def predict(self, X: Any, threshold: float = 0.5) -> np.ndarray:
        """1 (default) where P(default) ≥ ``threshold``, else 0."""
        return (self.predict_proba(X)[:, 1] >= threshold).astype(np.int8)

    def __repr__(self) -> str:
        parties = f", parties {preview(self.parties_)}" if self.parties_ else ""
        return (
            f"FederatedBoostedTrees({self.n_trees_} trees, {self.n_features_in_} features"
            f"{parties}, source={self.source!r})"
        )


class _Tree:
    """One tree as read-only arrays over its nodes (``feature`` −1 at a leaf)."""

    __slots__ = ("feature", "threshold", "left", "right", "value")

    def __init__(self, feature, threshold, left, right, value) -> None:
        self.feature, self.threshold, self.left, self.right, self.value = (
            feature,
            threshold,
            left,
            right,
            value,
        )

    @classmethod
    def build(cls, record: Any, d: int, index: int) -> _Tree:
        """From a record with feature/threshold/left/right/value; ValueError if it is
        not a tree whose children come after their parents."""
        where = f"trees[{index}]"
        if isinstance(record, _Tree):  # another model's tree: checked against d afresh
            record = {key: getattr(record, key) for key in _Tree.__slots__}
        try:
            feature, left, right = (_indices(record[k]) for k in ("feature", "left", "right"))
            threshold = np.array(record["threshold"], dtype=np.float64)
            value = np.array(record["value"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{where}: not a tree record ({_one_line(exc)})") from None
        arrays = (feature, threshold, left, right, value)
        n = feature.size
        if n == 0 or any(a.ndim != 1 or a.size != n for a in arrays):
            raise ValueError(
                f"{where}: feature, threshold, left, right and value must be "
                "lists of one equal, non-zero length (one entry per node)"
            )
        bad = np.flatnonzero((feature < -1) | (feature >= d))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"{where} node {i}: feature {int(feature[i])} out of range ({d} features)"
            )
        split = feature >= 0
        nodes = np.arange(n)
        bad = np.flatnonzero(
            split & ((left <= nodes) | (left >= n) | (right <= nodes) | (right >= n))
        )
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"{where} node {i}: children {int(left[i])} and {int(right[i])} out of range "
                f"(the tree has {n} nodes; a child comes after its parent)"
            )
        if not np.isfinite(threshold[split]).all():
            raise ValueError(f"{where}: every split threshold must be finite")
        if not np.isfinite(value[~split]).all():
            raise ValueError(f"{where}: every leaf value must be finite")
        # a leaf walks nowhere: its feature/threshold/children are never read
        threshold = np.where(split, threshold, 0.0)
        left, right = np.where(split, left, nodes), np.where(split, right, nodes)
        value = np.where(split, 0.0, value)
        for a in (feature, threshold, left, right, value):
            a.setflags(write=False)
        return cls(feature, threshold, left, right, value)

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """The leaf of every row of X, walking all rows down one level at a time
        (vectorised over the rows still at a split node; as many steps as levels)."""
        at = np.zeros(X.shape[0], dtype=np.int64)
        live = np.arange(X.shape[0]) if self.feature[0] >= 0 else at[:0]
        while live.size:
            node = at[live]
            goes_left = X[live, self.feature[node]] <= self.threshold[node]
            step = np.where(goes_left, self.left[node], self.right[node])
            at[live] = step
            live = live[self.feature[step] >= 0]
        return at


def _indices(values: Any) -> np.ndarray:
    """Whole numbers as an int64 array (ValueError for 1.5 or True, not a silent 1)."""
    raw = np.asarray(values)
    if raw.dtype == bool or not np.array_equal(raw.astype(np.int64), raw):
        raise ValueError("feature, left and right must be whole numbers")
    return raw.astype(np.int64)


def load_model(run_dir: str | Path) -> FederatedLogisticModel | FederatedBoostedTrees:
    """The final model of a run folder.

    A horizontal run (or its ``model.json`` file itself) gives a
    :class:`FederatedLogisticModel`; a SecureBoost run (or its ``model`` folder, or
    that folder's ``trees.json``) a :class:`FederatedBoostedTrees`. Vertical logistic
    runs have no whole model to load (InputError saying so).
    """
    path = Path(run_dir)
    if path.is_dir():
        for trees_file in (path / TREES_DIR / TREES_FILE, path / TREES_FILE):
            if trees_file.is_file():
                return _load_trees(trees_file)
        file = path / MODEL_FILE
        if not file.is_file():
            raise InputError(_no_model_message(path))
    elif path.is_file():
        if path.name == TREES_FILE:
            return _load_trees(path)
        file = path
    else:
        raise InputError(f"{path}: no such run folder")
    record = _read_json(file, "model file")
    return FederatedLogisticModel.from_record(record, str(file))


def as_feature_matrix(X: Any, feature_names: Sequence[str]) -> np.ndarray:
    """``X`` as a float (n, d) array in ``feature_names`` order; ValueError if it is not.

    Accepts a 2-D array-like or a table with ``.columns`` (pandas and the like): its
    columns are matched by name and put in model order; missing or unknown names fail.
    """
    names = list(feature_names)
    d = len(names)
    columns = getattr(X, "columns", None)
    if columns is not None and not isinstance(X, np.ndarray):
        cols = [str(c) for c in columns]
        missing = [n for n in names if n not in cols]
        extra = [c for c in cols if c not in names]
        if missing or extra or len(cols) != d:
            parts = []
            if missing:
                parts.append(f"missing {preview(missing)}")
            if extra:
                parts.append(f"unexpected {preview(extra)}")
            if not parts:
                parts.append("duplicate column names")
            raise ValueError(
                f"X has columns that do not match the model's {d} features: " + "; ".join(parts)
            )
        order = [cols.index(n) for n in names]
        A = np.asarray(X, dtype=np.float64)[:, order]
    else:
        A = np.asarray(X, dtype=np.float64)
    if A.ndim != 2:
        hint = " (one row: X.reshape(1, -1))" if A.ndim == 1 else ""
        raise ValueError(f"X must be 2-D (rows, {d} features), got shape {A.shape}{hint}")
    if A.shape[1] != d:
        raise ValueError(
            f"X has {A.shape[1]} columns but the model has {d} features ({preview(names)})"
        )
    if not np.isfinite(A).all():
        raise ValueError("X contains NaN or infinite values; every feature must be finite")
    return A


def _parse_record(record: Any, where: str):
    """Validate a model.json record; return (w, b, names, mean, scale, clip_low,
    clip_high), the last four None when absent (clip bounds: ±inf where null)."""
    if not isinstance(record, dict):
        raise InputError(f"{where}: not a fedrisk model file (expected a JSON object)")
    fmt = record.get("format")
    if fmt != MODEL_FORMAT:
        raise InputError(f"{where}: format: expected {MODEL_FORMAT!r}, got {fmt!r}")
    for key in ("feature_names", "weights", "intercept", "standardize"):
        if key not in record:
            raise InputError(f"{where}: {key}: missing")
    names = record["feature_names"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise InputError(f"{where}: feature_names: expected a non-empty list of strings")
    if len(set(names)) != len(names):
        raise InputError(f"{where}: feature_names: names must be unique")
    d = len(names)
    w = _vector(record["weights"], d, f"{where}: weights")
    b = record["intercept"]
    if isinstance(b, bool) or not isinstance(b, (int, float)) or not math.isfinite(b):
        raise InputError(f"{where}: intercept: expected a finite number, got {b!r}")
    std = record["standardize"]
    if std is None:
        return w, float(b), names, None, None, None, None
    if not isinstance(std, dict) or "mean" not in std or "scale" not in std:
        raise InputError(
            f'{where}: standardize: expected null or {{"mean": [...], "scale": [...]}}'
        )
    mean = _vector(std["mean"], d, f"{where}: standardize.mean")
    scale = _vector(std["scale"], d, f"{where}: standardize.scale")
    if not (scale > 0).all():
        raise InputError(f"{where}: standardize.scale: every scale must be > 0")
    if ("clip_low" in std) != ("clip_high" in std):
        raise InputError(f"{where}: standardize: give both clip_low and clip_high, or neither")
    if "clip_low" not in std:
        return w, float(b), names, mean, scale, None, None
    low = _bounds(std["clip_low"], d, -np.inf, f"{where}: standardize.clip_low")
    high = _bounds(std["clip_high"], d, np.inf, f"{where}: standardize.clip_high")
    if (low > high).any():
        raise InputError(f"{where}: standardize: clip_low must be <= clip_high for every feature")
    return w, float(b), names, mean, scale, low, high


def _bounds(value: Any, d: int, missing: float, where: str) -> np.ndarray:
    """A list of d finite numbers or nulls (null: that feature is not clipped)."""
    if not isinstance(value, list) or len(value) != d:
        raise InputError(f"{where}: expected a list of {d} numbers or nulls (one per feature)")
    ok = all(
        v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))
        for v in value
    )
    if not ok:
        raise InputError(f"{where}: every bound must be a finite number or null")
    return np.array([missing if v is None else float(v) for v in value], dtype=np.float64)


def _vector(value: Any, d: int, where: str) -> np.ndarray:
    if (
        not isinstance(value, list)
        or len(value) != d
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        raise InputError(f"{where}: expected a list of {d} numbers (one per feature)")
    arr = np.array(value, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise InputError(f"{where}: every value must be finite")
    return arr


def _read_json(file: Path, what: str) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{file}: not a valid {what} (not JSON: {_one_line(exc)})") from None
    except OSError as exc:
        raise InputError(f"{file}: cannot read: {_one_line(exc)}") from None


# --- secureboost: trees.json and the parties' parts ----------------------------------------


def _load_trees(file: Path) -> FederatedBoostedTrees:
    """Join ``trees.json`` with the part files beside it; InputError (one line, naming
    the file at fault) when anything is missing or malformed."""
    where = str(file)
    record = _read_json(file, "secureboost trees file")
    if not isinstance(record, dict):
        raise InputError(f"{where}: not a fedrisk trees file (expected a JSON object)")
    fmt = record.get("format")
    if fmt != TREES_FORMAT:
        raise InputError(f"{where}: format: expected {TREES_FORMAT!r}, got {fmt!r}")
    for key in ("sources", "base_score", "trees"):
        if key not in record:
            raise InputError(f"{where}: {key}: missing")
    sources = record["sources"]
    if not isinstance(sources, list) or not sources or not all(map(_plain_name, sources)):
        raise InputError(f"{where}: sources: expected a non-empty list of party names (no slashes)")
    if len(set(sources)) != len(sources):
        raise InputError(f"{where}: sources: party names must be unique")
    holder = record.get("label_holder", sources[0])
    if holder != sources[0]:
        raise InputError(
            f"{where}: label_holder: {holder!r} should be the first source ({sources[0]!r})"
        )
    base = record["base_score"]
    if not _is_number(base) or not math.isfinite(base):
        raise InputError(f"{where}: base_score: expected a finite number, got {base!r}")
    trees = record["trees"]
    if not isinstance(trees, list):
        raise InputError(f"{where}: trees: expected a list of trees")
    kept = record.get("trees_kept", len(trees))
    if not _is_int(kept) or kept != len(trees):
        raise InputError(f"{where}: trees_kept: {kept!r}, but trees holds {len(trees)} trees")
    nodes = [_tree_nodes(t, i, len(sources), where) for i, t in enumerate(trees)]
    parts = [_read_part(file.parent, name, k) for k, name in enumerate(sources)]

    # the features: each party's columns, in its table's order when the run's summary
    # records it, else as its part names them
    order = _column_orders(file)
    names: list[str] = []
    owners: list[str] = []
    index: dict[tuple[int, str], int] = {}
    for k, (name, (part_file, splits)) in enumerate(zip(sources, parts)):
        columns = list(dict.fromkeys(column for column, _ in splits.values()))
        known = order.get(name)
        if known is not None and set(columns) <= set(known):
            columns = [c for c in known if c in set(columns)]
        for column in columns:
            if column in names:
                raise InputError(
                    f"{part_file}: column {column!r} is also in "
                    f"{owners[names.index(column)]!r}'s part; each column belongs to one party"
                )
            index[k, column] = len(names)
            names.append(column)
            owners.append(name)

    compiled = []
    for t, (source, split, left, right, value) in enumerate(nodes):
        feature, threshold = [], []
        for i, (k, sid) in enumerate(zip(source, split)):
            if k < 0:
                feature.append(-1)
                threshold.append(0.0)
                continue
            part_file, splits = parts[k]
            if sid not in splits:
                raise InputError(
                    f"{part_file}: splits: no split {sid} (trees[{t}] node {i} of "
                    f"{file.name} uses it)"
                )
            column, cut = splits[sid]
            feature.append(index[k, column])
            threshold.append(cut)
        compiled.append(
            {
                "feature": feature,
                "threshold": threshold,
                "left": left,
                "right": right,
                "value": value,
            }
        )
    try:
        return FederatedBoostedTrees(
            names, compiled, float(base), parties=sources, feature_parties=owners, source=where
        )
    except ValueError as exc:
        raise InputError(f"{where}: {_one_line(exc)}") from None


_NODE_KEYS = ("source", "split", "left", "right", "value")


def _tree_nodes(tree: Any, t: int, n_sources: int, where: str) -> tuple[list, ...]:
    """(source, split, left, right, value) of one tree record, type-checked."""
    at = f"{where}: trees[{t}]"
    if not isinstance(tree, dict):
        raise InputError(f"{at}: expected a JSON object with {', '.join(_NODE_KEYS)}")
    for key in _NODE_KEYS:
        if key not in tree:
            raise InputError(f"{at}: {key}: missing")
    lists = [tree[key] for key in _NODE_KEYS]
    n = len(lists[0]) if isinstance(lists[0], list) else -1
    if n < 1 or any(not isinstance(v, list) or len(v) != n for v in lists):
        raise InputError(
            f"{at}: {', '.join(_NODE_KEYS)} must be lists of one equal, non-zero length"
        )
    for key, values in zip(_NODE_KEYS[:4], lists):
        if not all(map(_is_int, values)):
            raise InputError(f"{at}: {key}: expected a list of integers")
    if not all(map(_is_number, lists[4])):
        raise InputError(f"{at}: value: expected a list of numbers")
    source, split = lists[0], lists[1]
    for i, (k, sid) in enumerate(zip(source, split)):
        if not -1 <= k < n_sources:
            raise InputError(
                f"{at} node {i}: source {k} out of range ({n_sources} sources; -1 at a leaf)"
            )
        if k >= 0 and sid < 0:
            raise InputError(f"{at} node {i}: split {sid}: expected a split id >= 0")
    return tuple(lists)


def _read_part(folder: Path, name: str, k: int) -> tuple[Path, dict[int, tuple[str, float]]]:
    """(file, {split id: (column, threshold)}) of one party's part of the model."""
    file = folder / f"{name}.json"
    if not file.is_file():
        raise InputError(
            f"{file}: missing: {TREES_FILE} names party {name!r} (source {k}) but its "
            "part of the model is not there"
        )
    record = _read_json(file, "model part file")
    if not isinstance(record, dict):
        raise InputError(f"{file}: not a model part file (expected a JSON object)")
    if record.get("party") != name:
        raise InputError(f"{file}: party: expected {name!r}, got {record.get('party')!r}")
    if not _is_int(record.get("source")) or record["source"] != k:
        raise InputError(
            f"{file}: source: expected {k} ({name!r}'s place in {TREES_FILE}'s sources), "
            f"got {record.get('source')!r}"
        )
    splits = record.get("splits")
    if not isinstance(splits, dict):
        raise InputError(
            f'{file}: splits: expected {{"<split id>": {{"column": ..., "threshold": ...}}}}'
        )
    out: dict[int, tuple[str, float]] = {}
    for sid, spec in splits.items():
        if not (sid.isascii() and sid.isdigit() and str(int(sid)) == sid):
            raise InputError(f"{file}: splits: {sid!r} is not a split id (an integer >= 0)")
        column = spec.get("column") if isinstance(spec, dict) else None
        cut = spec.get("threshold") if isinstance(spec, dict) else None
        if not (isinstance(column, str) and column and _is_number(cut) and math.isfinite(cut)):
            raise InputError(
                f'{file}: splits["{sid}"]: expected {{"column": a name, "threshold": a '
                "finite number}"
            )
        out[int(sid)] = (column, float(cut))
    return file, out


def _column_orders(trees_file: Path) -> dict[str, list[str]]:
    """Each party's columns in its table's order, from the run folder's summary.json
    (``data.parties.<name>.columns``); empty when there is none to read."""
    if trees_file.parent.name != TREES_DIR:
        return {}
    try:
        summary = json.loads((trees_file.parent.parent / "summary.json").read_text("utf-8"))
        parties = summary["data"]["parties"]
        return {
            str(name): list(p["columns"])
            for name, p in parties.items()
            if isinstance(p, dict)
            and isinstance(p.get("columns"), list)
            and all(isinstance(c, str) for c in p["columns"])
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _plain_name(name: Any) -> bool:
    """A party name that is a plain file name (its part is ``<name>.json``)."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and name.isprintable()
        and not any(c in name for c in "/\\\0")
    )


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _no_model_message(folder: Path) -> str:
    summary: Any = None
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    kind = summary.get("kind") if isinstance(summary, dict) else None
    if kind == "vertical" and summary.get("model") == "secureboost":
        return (
            f"{folder}: no {TREES_DIR}/{TREES_FILE}: this secureboost run folder has lost "
            "its trees (every complete run writes them)"
        )
    if kind == "vertical":
        return (
            f"{folder}: no {MODEL_FILE}: this is a vertical run, where each party holds "
            "only the weights of its own features, so no single party has the whole "
            "model to load"
        )
    if (folder / "summary.json").is_file():
        return (
            f"{folder}: no {MODEL_FILE} in this run folder (written by horizontal runs; "
            f"secureboost runs write {TREES_DIR}/{TREES_FILE})"
        )
    return f"{folder}: no {MODEL_FILE}; not a fedrisk run folder"


def preview(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(repr(s) for s in items[:limit])
    return shown + (f", … ({len(items)} in all)" if len(items) > limit else "")


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
