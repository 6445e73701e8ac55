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

WOE scorecard runs (``model.kind = "scorecard"``) write ``scorecard.json``: per selected
characteristic its bins (grid edge cells for a numeric column, groups of categories for
a text one), their weight of evidence and integer points. :func:`load_model` gives a
:class:`FederatedWoeScorecard`, which bins raw rows (text columns and missing values
included) exactly as the run did and scores them with the card's integer points or the
model's exact log-odds. Such a run's ``model.json`` acts on WOE-coded columns, not on raw
values, so it is never loaded on its own. In a vertical scorecard run the bank's
``scorecard.json`` names a data party's bins by number only; each data party's own part,
``model/scorecard-<party>.json``, holds its bins, and loading joins them (the simulator's
view again).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
SCORECARD_FILE = "scorecard.json"
WOE_FORMAT = "fedrisk-woe-scorecard-v1"
WOE_PART_PREFIX = "scorecard-"  # a vertical data party's part: model/scorecard-<party>.json
# the binning grid of fedrisk.models.binning, replicated (model_io may not import models)
GRID_LIMIT = 36.0  # |asinh(x)| range covered; values beyond fall into the end cells
GRID_CELLS = 4096  # equal cells in t = asinh(x) over [-GRID_LIMIT, GRID_LIMIT]
GRID_STEP = 2.0 * GRID_LIMIT / GRID_CELLS  # 9/512: every cell boundary is an exact float
# strings that mean "missing" (stripped, case-sensitive), as fedrisk.data.csv_source reads
MISSING_TOKENS: tuple[str, ...] = ("", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "?")


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


def load_model(
    run_dir: str | Path,
) -> FederatedLogisticModel | FederatedBoostedTrees | FederatedWoeScorecard:
    """The final model of a run folder.

    A horizontal run (or its ``model.json`` file itself) gives a
    :class:`FederatedLogisticModel`; a SecureBoost run (or its ``model`` folder, or
    that folder's ``trees.json``) a :class:`FederatedBoostedTrees`; a WOE scorecard run
    (or its ``scorecard.json``, or its ``model.json``, which acts on WOE-coded columns)
    a :class:`FederatedWoeScorecard`, joined with each data party's own part of the
    bins in a vertical run. Vertical logistic runs have no whole model to load
    (InputError saying so).
    """
    path = Path(run_dir)
    if path.is_dir():
        for trees_file in (path / TREES_DIR / TREES_FILE, path / TREES_FILE):
            if trees_file.is_file():
                return _load_trees(trees_file)
        card = _woe_card_of(path)
        if card is not None:
            return _load_woe_card(card)
        bank_file = vertical_bank_file(path)
        if bank_file is not None:
            return load_vertical_logistic(bank_file)
        file = path / MODEL_FILE
        if not file.is_file():
            raise InputError(_no_model_message(path))
    elif path.is_file():
        if path.name == TREES_FILE:
            return _load_trees(path)
        if path.name.startswith(WOE_PART_PREFIX) and _format_of(path) == WOE_FORMAT:
            raise InputError(
                f"{path}: one data party's own part of a vertical scorecard (its bins "
                f"only); load the run folder ({path.parent.parent}), which joins every "
                f"party's part with the bank's {SCORECARD_FILE}"
            )
        card = _woe_card_of(path.parent) if path.name == MODEL_FILE else None
        if path.name == SCORECARD_FILE and _format_of(path) == WOE_FORMAT:
            card = path
        if card is not None:
            return _load_woe_card(card)
        file = path
    else:
        raise InputError(f"{path}: no such run folder")
    record = _read_json(file, "model file")
    return FederatedLogisticModel.from_record(record, str(file))


# --- vertical logistic regression: one part per party ---------------------------------------

VERTICAL_FORMAT = "fedrisk-vertical-logistic-v1"  # the bank's part: model/<bank>.json
VERTICAL_PART_FORMAT = "fedrisk-vertical-logistic-part-v1"  # a data party's: model/<party>.json


class LogisticPart:
    """One party's part of a vertical logistic model: its columns' scaling (clip, then
    z-score as fitted on its own training rows; under label DP each row then clipped to
    L2 norm ``clip_norm``; in a secret-shared run each value clipped to
    ±``feature_clip`` and rounded to ``feature_frac_bits`` fractional bits, as the ring
    encodes it) and its weights. ``partial_scores`` is the party's share of
    the joint log-odds, ``standardised(X) @ coef``, exactly as its ClientApp computed it
    in training."""

    def __init__(
        self,
        party: str,
        columns: Sequence[str],
        coef: Sequence[float],
        mean: Sequence[float],
        scale: Sequence[float],
        clip_low: Sequence[float | None],
        clip_high: Sequence[float | None],
        clip_norm: float | None = None,
        feature_clip: float | None = None,
        feature_frac_bits: int | None = None,
    ) -> None:
        self.party = str(party)
        self.columns = tuple(str(c) for c in columns)
        d = len(self.columns)
        self.coef = _vector(_listed(coef), d, f"{party}: coef")
        self.mean = _vector(_listed(mean), d, f"{party}: mean")
        self.scale = _vector(_listed(scale), d, f"{party}: scale")
        self.clip_low = _bounds(_listed(clip_low), d, -np.inf, f"{party}: clip_low")
        self.clip_high = _bounds(_listed(clip_high), d, np.inf, f"{party}: clip_high")
        self.clip_norm = None if clip_norm is None else float(clip_norm)
        self.feature_clip = None if feature_clip is None else float(feature_clip)
        self.feature_frac_bits = None if feature_frac_bits is None else int(feature_frac_bits)

    def standardised(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.columns):
            raise ValueError(f"{self.party}: expected rows of {len(self.columns)} columns")
        Z = (np.clip(X, self.clip_low, self.clip_high) - self.mean) / self.scale
        if self.clip_norm is not None:
            norms = np.linalg.norm(Z, axis=1)
            factor = np.ones_like(norms)
            over = norms > self.clip_norm
            factor[over] = self.clip_norm / norms[over]
            Z = Z * factor[:, None]
        if self.feature_clip is not None:
            Z = np.clip(Z, -self.feature_clip, self.feature_clip)
        if self.feature_frac_bits is not None:
            Z = np.rint(Z * 2.0**self.feature_frac_bits) / 2.0**self.feature_frac_bits
        return Z

    def partial_scores(self, X: Any) -> np.ndarray:
        return self.standardised(X) @ self.coef

    def record(self) -> dict[str, Any]:
        return {
            "format": VERTICAL_PART_FORMAT,
            "party": self.party,
            "columns": list(self.columns),
            "coef": [float(v) for v in self.coef],
            "mean": [float(v) for v in self.mean],
            "scale": [float(v) for v in self.scale],
            "clip_low": [float(v) if np.isfinite(v) else None for v in self.clip_low],
            "clip_high": [float(v) if np.isfinite(v) else None for v in self.clip_high],
            "clip_norm": self.clip_norm,
            "feature_clip": self.feature_clip,
            "feature_frac_bits": self.feature_frac_bits,
        }

    @classmethod
    def from_record(cls, record: Any, where: str) -> LogisticPart:
        if not isinstance(record, dict) or record.get("format") != VERTICAL_PART_FORMAT:
            raise InputError(f"{where}: not a vertical logistic part ({VERTICAL_PART_FORMAT})")
        try:
            return cls(
                record["party"],
                record["columns"],
                record["coef"],
                record["mean"],
                record["scale"],
                record["clip_low"],
                record["clip_high"],
                record.get("clip_norm"),
                record.get("feature_clip"),
                record.get("feature_frac_bits"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{where}: {_one_line(exc)}") from None


class FederatedVerticalLogistic:
    """A vertical logistic run's joint model, every party's part side by side (the
    simulator's view; in a deployment each party keeps its own part and
    :mod:`fedrisk.runs.score` fetches the data parties' partial scores by private
    information retrieval).

    Joint log-odds: ``bank.partial_scores(X_bank) + intercept + party_scale · Σ_k
    parts[k].partial_scores(X_k)`` (calibration folded into the bank's part and
    ``party_scale``). ``fallback`` and ``fallback_intercept``: the bank-only model (its own
    columns, trained on the same customers) used for an applicant a data party does not
    hold."""

    def __init__(
        self,
        bank: LogisticPart,
        intercept: float,
        party_scale: float,
        parts: Mapping[str, LogisticPart],
        fallback: LogisticPart,
        fallback_intercept: float,
        source: str | None = None,
    ) -> None:
        self.bank, self.intercept, self.party_scale = bank, float(intercept), float(party_scale)
        self.parts = dict(parts)
        self.fallback, self.fallback_intercept = fallback, float(fallback_intercept)
        self.source = source
        self.classes_ = np.array([0, 1])

    @property
    def label_holder(self) -> str:
        return self.bank.party

    def joint_scores(self, bank_X: Any, partial: Mapping[str, np.ndarray]) -> np.ndarray:
        """Joint log-odds from the bank's raw rows and each data party's partial scores."""
        z = self.bank.partial_scores(bank_X) + self.intercept
        return z + self.party_scale * sum(np.asarray(partial[k], float) for k in self.parts)

    def decision_function(self, rows: Mapping[str, Any]) -> np.ndarray:
        """Joint log-odds from every party's raw rows (``{party: rows}``, same customers)."""
        partial = {k: p.partial_scores(rows[k]) for k, p in self.parts.items()}
        return self.joint_scores(rows[self.bank.party], partial)

    def predict_proba(self, rows: Mapping[str, Any]) -> np.ndarray:
        z = self.decision_function(rows)
        return np.column_stack([expit(-z), expit(z)])

    def fallback_proba(self, bank_X: Any) -> np.ndarray:
        """P(default) of the bank-only model (applicants a data party does not hold)."""
        return expit(self.fallback.partial_scores(bank_X) + self.fallback_intercept)

    def __repr__(self) -> str:
        return (
            f"FederatedVerticalLogistic(bank {self.bank.party!r}, parties "
            f"{list(self.parts)}, source={self.source!r})"
        )


def vertical_bank_record(
    own: LogisticPart,
    intercept: float,
    party_scale: float,
    parties: Sequence[str],
    fallback: LogisticPart,
    fallback_intercept: float,
) -> dict[str, Any]:
    """The bank's part of a vertical logistic model, as ``model/<bank>.json`` holds it
    (what :func:`load_vertical_logistic` reads back)."""
    return {
        "format": VERTICAL_FORMAT,
        "label_holder": own.party,
        "parties": list(parties),
        "own": own.record(),
        "intercept": float(intercept),
        "party_scale": float(party_scale),
        "fallback": fallback.record(),
        "fallback_intercept": float(fallback_intercept),
    }


def _listed(values: Any) -> Any:
    """Arrays as lists of floats (infinite bounds as None), lists as they are."""
    if isinstance(values, list):
        return values
    return [float(v) if math.isfinite(float(v)) else None for v in np.asarray(values, float)]


def vertical_bank_file(folder: Path) -> Path | None:
    """The bank's part of a vertical logistic run (in its ``model`` folder), if any."""
    model = folder / TREES_DIR
    if not model.is_dir():
        return None
    for file in sorted(model.glob("*.json")):
        if _format_of(file) == VERTICAL_FORMAT:
            return file
    return None


def load_vertical_logistic(bank_file: Path) -> FederatedVerticalLogistic:
    """The bank's part and every data party's part it names (same folder)."""
    record = _read_json(bank_file, "model file")
    where = str(bank_file)
    try:
        parties = [str(p) for p in record["parties"]]
        bank = LogisticPart.from_record(record["own"], where)
        fallback = LogisticPart.from_record(record["fallback"], where)
        intercept, scale = float(record["intercept"]), float(record["party_scale"])
        fallback_intercept = float(record["fallback_intercept"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{where}: {_one_line(exc)}") from None
    parts = {}
    for name in parties:
        file = bank_file.parent / f"{name}.json"
        if not file.is_file():
            raise InputError(
                f"{file}: data party {name!r}'s part of the model is missing (a run on the "
                "Deployment Engine keeps it on the party's node)"
            )
        parts[name] = LogisticPart.from_record(_read_json(file, "model part"), str(file))
    return FederatedVerticalLogistic(
        bank, intercept, scale, parts, fallback, fallback_intercept, source=where
    )


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


@dataclass(frozen=True)
class SecureBoostFiles:
    """A SecureBoost run's model files, read and checked once: the joined ``model``,
    ``trees.json``'s record, and per source (the label holder first) its split table
    ``{split id: (column, threshold)}`` and its part file's record."""

    model: FederatedBoostedTrees
    record: dict[str, Any]
    splits: tuple[dict[int, tuple[str, float]], ...]
    parts: tuple[dict[str, Any], ...]

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(self.record["sources"])


def _load_trees(file: Path) -> FederatedBoostedTrees:
    return read_secureboost(file).model


def read_secureboost(file: Path) -> SecureBoostFiles:
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
    for k, (name, (part_file, splits, _)) in enumerate(zip(sources, parts)):
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
            part_file, splits, _ = parts[k]
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
        model = FederatedBoostedTrees(
            names, compiled, float(base), parties=sources, feature_parties=owners, source=where
        )
    except ValueError as exc:
        raise InputError(f"{where}: {_one_line(exc)}") from None
    return SecureBoostFiles(
        model,
        record,
        tuple(splits for _, splits, _ in parts),
        tuple(part for _, _, part in parts),
    )


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


def _read_part(
    folder: Path, name: str, k: int
) -> tuple[Path, dict[int, tuple[str, float]], dict[str, Any]]:
    """(file, {split id: (column, threshold)}, the file's record) of one party's part of
    the model."""
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
    return file, out, record


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


# --- WOE scorecards: scorecard.json and the data parties' parts ------------------------------


def grid_cells(x: Any) -> np.ndarray:
    """Grid cell (int64, same shape) of each value; NaN -> -1, ±inf -> the end cells.

    The same operations, in the same order, as :func:`fedrisk.models.binning.grid_cells`,
    so a value finds the cell (hence the bin) the run gave it, bit for bit.
    """
    x = np.asarray(x, dtype=np.float64)
    missing = np.isnan(x)
    t = np.arcsinh(np.where(missing, 0.0, x))
    # clip before the cast: inf (and anything past the limit) must not reach astype
    cell = np.clip(np.floor((t + GRID_LIMIT) / GRID_STEP), 0, GRID_CELLS - 1).astype(np.int64)
    return np.where(missing, np.int64(-1), cell)


def woe_of_counts(good: Any, bad: Any) -> np.ndarray:
    """Each bin's exact WOE from its goods and bads, as :func:`fedrisk.models.binning.woe_iv`
    computes it (smoothing by 0.5 where a populated bin lacks goods or bads; an empty bin
    has WOE 0). ``scorecard.json`` prints WOE to 6 decimals; the model used these."""
    good = np.asarray(good, dtype=np.float64)[None, :]
    bad = np.asarray(bad, dtype=np.float64)[None, :]
    populated = (good + bad) > 0
    smooth = np.any(populated & ((good == 0) | (bad == 0)), axis=-1, keepdims=True)
    s = np.where(smooth, 0.5, 0.0)
    g = np.where(populated, good + s, 0.0)
    b = np.where(populated, bad + s, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        pg = g / g.sum(axis=-1, keepdims=True)
        pb = b / b.sum(axis=-1, keepdims=True)
        woe = np.where(populated, np.log(pg / pb), 0.0)
    return woe[0]


@dataclass(frozen=True, eq=False)
class WoeCharacteristic:
    """One characteristic of a WOE scorecard: how raw values find a bin, and each bin's
    WOE (exact, as the model used it).

    Numeric (``cuts`` given): a value's grid cell (:func:`grid_cells`) falls in regular
    bin k when ``cuts[k-1] <= cell < cuts[k]``; NaN in the missing bin, the last.
    Text (``groups`` given): a stripped value is in the bin of the group naming it; an
    unknown category in bin ``unseen``; "" (None, NaN, or a missing token such as "NA"
    that no group names) in the missing bin, the last. ``labels``, ``customers`` and
    ``defaulters`` (per bin, optional) are for :meth:`FederatedWoeScorecard.table`.
    """

    name: str
    coefficient: float  # β on the WOE value
    woe: Any  # one per bin, the missing bin last
    cuts: Any = None
    groups: Any = None
    unseen: int = 0
    owner: str = ""
    labels: Any = None
    customers: Any = None
    defaulters: Any = None
    missing_to: int | None = None  # too few missing values: the regular bin they joined
    _lookup: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        at = f"characteristic {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(
                f"a characteristic needs a name (a non-empty string), got {self.name!r}"
            )
        if (self.cuts is None) == (self.groups is None):
            raise ValueError(f"{at}: give either cuts (numeric) or groups (text), not both")
        if not _is_number(self.coefficient) or not math.isfinite(self.coefficient):
            raise ValueError(f"{at}: coefficient must be a finite number")
        lookup: dict[str, int] = {}
        if self.cuts is not None:
            cuts = np.asarray(self.cuts)
            if cuts.size and (cuts.dtype.kind not in "iu" or cuts.ndim != 1):
                raise ValueError(f"{at}: cuts must be a list of grid cells (whole numbers)")
            cuts = cuts.astype(np.int64).ravel()
            if cuts.size and (cuts[0] <= 0 or cuts[-1] >= GRID_CELLS or (np.diff(cuts) <= 0).any()):
                raise ValueError(
                    f"{at}: cuts must be strictly increasing grid cells in (0, {GRID_CELLS})"
                )
            cuts.setflags(write=False)
            object.__setattr__(self, "cuts", cuts)
            n_bins = cuts.size + 2
        else:
            groups = tuple(tuple(g) for g in self.groups)
            for i, g in enumerate(groups):
                for c in g:
                    if not isinstance(c, str) or not c or c.strip() != c:
                        raise ValueError(
                            f"{at}: group {i + 1}: {c!r} is not a category "
                            "(a non-empty string without surrounding spaces)"
                        )
                    if c in lookup:
                        raise ValueError(f"{at}: category {c!r} is in two groups")
                    lookup[c] = i
                if not g:
                    raise ValueError(f"{at}: group {i + 1} is empty")
            if not _is_int(self.unseen) or not 0 <= self.unseen < max(len(groups), 1):
                raise ValueError(
                    f"{at}: unseen must be the index of one of its {len(groups)} groups, "
                    f"got {self.unseen!r}"
                )
            object.__setattr__(self, "groups", groups)
            n_bins = len(groups) + 1
        object.__setattr__(self, "_lookup", lookup)
        if self.missing_to is not None and (
            not _is_int(self.missing_to) or not 0 <= self.missing_to < n_bins - 1
        ):
            raise ValueError(f"{at}: missing_to must be one of its {n_bins - 1} regular bins")
        woe = np.array(self.woe, dtype=np.float64)
        if woe.shape != (n_bins,) or not np.isfinite(woe).all():
            raise ValueError(
                f"{at}: woe must be {n_bins} finite numbers (one per bin, the missing bin "
                f"last), got shape {woe.shape}"
            )
        woe.setflags(write=False)
        object.__setattr__(self, "woe", woe)
        object.__setattr__(self, "coefficient", float(self.coefficient))
        object.__setattr__(self, "owner", str(self.owner))
        labels = self.default_labels() if self.labels is None else tuple(map(str, self.labels))
        if len(labels) != n_bins:
            raise ValueError(f"{at}: {len(labels)} labels for {n_bins} bins")
        object.__setattr__(self, "labels", labels)
        for key in ("customers", "defaulters"):
            counts = getattr(self, key)
            if counts is not None:
                counts = tuple(int(c) for c in counts)
                if len(counts) != n_bins:
                    raise ValueError(f"{at}: {len(counts)} {key} counts for {n_bins} bins")
                object.__setattr__(self, key, counts)

    @property
    def kind(self) -> str:
        """ "numeric" or "text"."""
        return "numeric" if self.cuts is not None else "text"

    @property
    def n_bins(self) -> int:
        """Regular bins (or groups) plus the missing bin."""
        return self.woe.size

    def default_labels(self) -> tuple[str, ...]:
        """Labels as the run writes them: "< a", "[a, b)", ">= z" (edge values of the cut
        cells, %.6g) or "name in {a, b}", then "missing"."""
        if self.cuts is None:
            return (*(f"{self.name} in {{{', '.join(g)}}}" for g in self.groups), "missing")
        edges = np.sinh(-GRID_LIMIT + self.cuts.astype(np.float64) * GRID_STEP)
        e = [f"{float(v):.6g}" for v in edges]
        if not e:
            return ("not missing", "missing")
        inner = [f"[{a}, {b})" for a, b in zip(e[:-1], e[1:])]
        return (f"< {e[0]}", *inner, f">= {e[-1]}", "missing")

    def assign(self, values: Any) -> np.ndarray:
        """The bin (0-based, int64) of each raw value of a 1-D column."""
        if self.cuts is not None:
            cells = grid_cells(numeric_column(values, self.name))
            idx = np.searchsorted(self.cuts, cells, side="right")
            missing = self.cuts.size + 1 if self.missing_to is None else self.missing_to
            return np.where(cells < 0, missing, idx).astype(np.int64)
        text = text_column(values, self.name, known=self._lookup)
        missing = len(self.groups) if self.missing_to is None else self.missing_to
        lookup = {**self._lookup, "": missing}
        uniq, inv = np.unique(text, return_inverse=True)
        codes = np.array([lookup.get(u, self.unseen) for u in uniq], dtype=np.int64)
        return codes[inv.ravel()]


class FederatedWoeScorecard:
    """A WOE scorecard run's model on raw characteristics, scikit-learn style.

    Each row is binned characteristic by characteristic (``bins_``); :meth:`score` adds
    the card's integer points, ``round(base_points) + Σ round(-factor · β_j · WOE_j)``,
    as the run's points table prints them; :meth:`predict_proba` is the logistic model
    the points stand for, P(default) = σ(``intercept_`` + Σ ``coef_[j]`` · WOE_j(bin)),
    exact (the WOE as trained, not the 6 printed decimals). Higher points = lower risk.

    ``feature_names_`` are the selected characteristics in card order,
    ``feature_parties_`` the party holding each ("banks" in a horizontal run);
    ``classes_ == [0, 1]`` (1 = default). In a vertical run this is the simulator's view:
    the data parties' bins, which in a real deployment only each party holds.

    ``X`` for every method: a mapping ``{name: column}`` (lists or arrays; text columns as
    str), a table with ``.columns`` (pandas and the like), or a 2-D array in
    ``feature_names_`` order (object or str dtype for text). Columns are matched by name
    and others ignored. Numeric columns take numbers or number strings; NaN, None and the
    strings of ``MISSING_TOKENS`` are missing (the missing bin), infinite values fall in
    the end bins. Text columns are stripped; "", None, NaN and missing tokens are missing,
    unknown categories go to the bin of unseen ones.
    """

    def __init__(
        self,
        characteristics: Sequence[WoeCharacteristic],
        intercept: float,
        *,
        base_score: float = 600.0,
        base_odds: float = 50.0,
        pdo: float = 20.0,
        source: str | None = None,
    ) -> None:
        chars = tuple(characteristics)
        if not chars or not all(isinstance(c, WoeCharacteristic) for c in chars):
            raise ValueError("a scorecard needs at least one WoeCharacteristic")
        names = tuple(c.name for c in chars)
        if len(set(names)) != len(names):
            raise ValueError("characteristic names must be unique")
        for key, v in (("intercept", intercept), ("base_score", base_score)):
            if not _is_number(v) or not math.isfinite(v):
                raise ValueError(f"{key} must be a finite number, got {v!r}")
        for key, v in (("base_odds", base_odds), ("pdo", pdo)):
            if not _is_number(v) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"{key} must be a finite number > 0, got {v!r}")
        # the convention of fedrisk.evaluation.scorecard.scaling, computed the same way
        factor = pdo / math.log(2)
        offset = base_score - factor * math.log(base_odds)
        self.characteristics_: tuple[WoeCharacteristic, ...] = chars
        self.feature_names_: tuple[str, ...] = names
        self.feature_parties_: tuple[str, ...] = tuple(c.owner for c in chars)
        self.parties_: tuple[str, ...] = tuple(dict.fromkeys(self.feature_parties_))
        self.intercept_: float = float(intercept)
        coef = np.array([c.coefficient for c in chars])
        coef.setflags(write=False)
        self.coef_: np.ndarray = coef  # β per characteristic, on its WOE
        self.base_score_ = float(base_score)
        self.base_odds_ = float(base_odds)
        self.pdo_ = float(pdo)
        self.factor_: float = factor
        self.base_points_: float = offset - factor * self.intercept_
        self.base_points_rounded_: int = int(round(self.base_points_))
        points = []
        for c in chars:  # as WoeScorecard.points rounds them
            p = np.rint(-factor * c.coefficient * c.woe).astype(np.int64)
            p.setflags(write=False)
            points.append(p)
        self.points_: tuple[np.ndarray, ...] = tuple(points)  # integer points per bin
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = len(names)
        self.source = source  # the scorecard.json it was loaded from, if any

    @classmethod
    def from_file(cls, scorecard_file: str | Path) -> FederatedWoeScorecard:
        """Load ``scorecard.json`` and, for a vertical run, the parts in ``model/`` beside
        it (InputError naming the file at fault)."""
        return _load_woe_card(Path(scorecard_file))

    def bins_(self, X: Any) -> np.ndarray:
        """Each row's bin (0-based) per characteristic, shape ``(n, n_features_in_)``."""
        columns, n = _raw_columns(X, self.feature_names_)
        out = np.empty((n, self.n_features_in_), dtype=np.int64)
        for j, (c, values) in enumerate(zip(self.characteristics_, columns)):
            out[:, j] = c.assign(values)
        return out

    def score(self, X: Any) -> np.ndarray:
        """Integer points per row: rounded base points + each characteristic's rounded
        bin points (higher = lower risk), as the run's points table adds them."""
        bins = self.bins_(X)
        total = np.full(bins.shape[0], self.base_points_rounded_, dtype=np.int64)
        for j, points in enumerate(self.points_):
            total += points[bins[:, j]]
        return total

    def decision_function(self, X: Any) -> np.ndarray:
        """The model's exact log-odds of default, ``intercept_ + Σ coef_[j] · WOE_j``."""
        bins = self.bins_(X)
        z = np.full(bins.shape[0], self.intercept_)
        for j, c in enumerate(self.characteristics_):
            z += c.coefficient * c.woe[bins[:, j]]
        return z

    def predict_proba(self, X: Any) -> np.ndarray:
        """Shape ``(n, 2)``: column 0 P(no default), column 1 P(default)."""
        z = self.decision_function(X)
        return np.column_stack([expit(-z), expit(z)])

    def predict(self, X: Any, threshold: float = 0.5) -> np.ndarray:
        """1 (default) where P(default) ≥ ``threshold``, else 0."""
        return (self.predict_proba(X)[:, 1] >= threshold).astype(np.int8)

    def table(self) -> list[dict[str, Any]]:
        """The points table, one row per bin (the missing bin included), with the columns
        and rounding of the run's ``scorecard.csv``: characteristic, owner, bin (1-based),
        label, customers, defaulters (None when unknown), woe, coefficient, points. The
        base points are ``base_points_rounded_``."""
        rows = []
        for c, points in zip(self.characteristics_, self.points_):
            for k in range(c.n_bins):
                rows.append(
                    {
                        "characteristic": c.name,
                        "owner": c.owner,
                        "bin": k + 1,
                        "label": c.labels[k],
                        "customers": None if c.customers is None else c.customers[k],
                        "defaulters": None if c.defaulters is None else c.defaulters[k],
                        "woe": round(float(c.woe[k]), 6),
                        "coefficient": round(c.coefficient, 6),
                        "points": int(points[k]),
                    }
                )
        return rows

    def __repr__(self) -> str:
        parties = f", parties {preview(self.parties_)}" if self.parties_ != ("",) else ""
        return (
            f"FederatedWoeScorecard({self.n_features_in_} characteristics, "
            f"{sum(c.n_bins for c in self.characteristics_)} bins, base points "
            f"{self.base_points_rounded_}{parties}, source={self.source!r})"
        )


# --- raw columns ---------------------------------------------------------------------------


def _raw_columns(X: Any, names: Sequence[str]) -> tuple[list[np.ndarray], int]:
    """The 1-D raw column of each name in ``X``, and the number of rows."""
    names = list(names)
    d = len(names)
    if isinstance(X, Mapping):
        keys = {str(k): k for k in X}
        missing = [n for n in names if n not in keys]
        if missing:
            raise ValueError(
                f"X lacks {len(missing)} of the scorecard's {d} characteristics: {preview(missing)}"
            )
        columns = [np.asarray(X[keys[n]]) for n in names]
        if columns and all(c.ndim == 0 for c in columns):
            columns = [c.reshape(1) for c in columns]  # one row given as scalars
        for n, c in zip(names, columns):
            if c.ndim != 1:
                raise ValueError(f"X[{n!r}] must be a 1-D column of values, got shape {c.shape}")
        lengths = {c.shape[0] for c in columns}
        if len(lengths) > 1:
            shown = ", ".join(f"{n!r}: {c.shape[0]}" for n, c in zip(names, columns))
            raise ValueError(f"X's columns have different lengths ({shown})")
        return columns, (lengths.pop() if lengths else 0)
    table_columns = getattr(X, "columns", None)
    if table_columns is not None and not isinstance(X, np.ndarray):
        cols = [str(c) for c in table_columns]
        missing = [n for n in names if n not in cols]
        if missing:
            raise ValueError(
                f"X lacks {len(missing)} of the scorecard's {d} characteristics: {preview(missing)}"
            )
        twice = [n for n in names if cols.count(n) > 1]
        if twice:
            raise ValueError(f"X has more than one column named {preview(twice)}")
        A = _matrix(X, len(cols))
        return [A[:, cols.index(n)] for n in names], A.shape[0]
    A = _matrix(X, d)
    if A.shape[1] != d:
        raise ValueError(
            f"X has {A.shape[1]} columns but the scorecard has {d} characteristics "
            f"({preview(names)}); give them in that order, or pass a mapping of columns"
        )
    return [A[:, j] for j in range(d)], A.shape[0]


def _matrix(X: Any, d: int) -> np.ndarray:
    """X as a 2-D array; Python values (None, mixed text and numbers) kept as objects."""
    if isinstance(X, np.ndarray):
        A = X
    else:
        try:
            A = np.asarray(X)
        except ValueError:  # ragged rows
            A = np.array(X, dtype=object)
        if A.dtype.kind in "US" and not isinstance(X, str):
            A = np.array(X, dtype=object)  # numbers beside text stay numbers
    if A.ndim == 1 and A.dtype == object and A.size and isinstance(A[0], (list, tuple)):
        raise ValueError("X's rows have different lengths; every row needs one value per column")
    if A.ndim != 2:
        hint = " (one row: X.reshape(1, -1))" if A.ndim == 1 else ""
        raise ValueError(f"X must be 2-D (rows, {d} columns), got shape {A.shape}{hint}")
    return A


def _missing_object(v: Any) -> bool:
    """None, a float NaN, or pandas' NA/NaT (recognised by type name: no pandas import)."""
    if v is None or type(v).__name__ in ("NAType", "NaTType"):
        return True
    return isinstance(v, (float, np.floating)) and v != v


def numeric_column(values: Any, name: str) -> np.ndarray:
    """A numeric characteristic's raw 1-D column as float64, NaN = missing.

    Numbers as they are (±inf kept: they fall in the end cells); strings stripped, a
    missing token (``MISSING_TOKENS``) is NaN, any other parsed as the run's csv reader
    parses it (ValueError naming the column and the value when it is not a number).
    """
    arr = np.asarray(values)
    if arr.dtype.kind in "biuf":
        return arr.astype(np.float64)
    if arr.dtype.kind in "US":
        return _parse_numbers(arr.astype(str), name, np.arange(arr.size))
    if arr.dtype.kind != "O":
        raise ValueError(
            f"X[{name!r}]: values of dtype {arr.dtype} are not numbers; "
            f"{name!r} is a numeric characteristic"
        )
    out = np.empty(arr.shape, dtype=np.float64)
    text_rows = []
    for i, v in enumerate(arr):
        if _missing_object(v):
            out[i] = np.nan
        elif isinstance(v, str):
            text_rows.append(i)
        elif isinstance(v, (int, float, np.integer, np.floating, np.bool_)):
            out[i] = float(v)
        else:
            raise ValueError(
                f"X[{name!r}] row {i}: {_shorten(v)} is not a number; "
                f"{name!r} is a numeric characteristic"
            )
    if text_rows:
        rows = np.array(text_rows)
        out[rows] = _parse_numbers(np.array([arr[i] for i in rows], dtype=str), name, rows)
    return out


def _parse_numbers(cells: np.ndarray, name: str, rows: np.ndarray) -> np.ndarray:
    """Strings to float64 as fedrisk.data.csv_source reads a numeric column's cells."""
    cells = np.char.strip(cells)
    missing = np.isin(cells, MISSING_TOKENS)
    texts = np.where(missing, "nan", cells)
    try:
        return texts.astype(np.float64)
    except ValueError:
        pass
    for i, cell in enumerate(texts):
        try:
            np.array(cell).astype(np.float64)
        except ValueError:
            raise ValueError(
                f"X[{name!r}] row {int(rows[i])}: {_shorten(str(cell))} is not a number; "
                f"{name!r} is a numeric characteristic (missing: NaN, None or one of "
                f"{', '.join(repr(t) for t in MISSING_TOKENS)})"
            ) from None
    raise ValueError(f"X[{name!r}]: values that are not numbers")  # not reached


def text_column(values: Any, name: str, known: Any = ()) -> np.ndarray:
    """A text characteristic's raw 1-D column as stripped str, "" = missing: None, NaN
    and the missing tokens (``MISSING_TOKENS``, as the run's csv reader treats them)
    unless ``known`` names them as a category."""
    arr = np.asarray(values)
    kind = arr.dtype.kind
    if kind in "US":
        cells = arr.astype(str)
    elif kind in "fc":
        cells = np.array(["" if v != v else str(v) for v in arr.tolist()], dtype=str)
    elif kind in "biu":
        cells = arr.astype(str)
    elif kind == "O":
        flat = ["" if _missing_object(v) else str(v) for v in arr.tolist()]
        cells = np.array(flat, dtype=str)
    else:
        raise ValueError(
            f"X[{name!r}]: values of dtype {arr.dtype} are not text; "
            f"{name!r} is a text characteristic"
        )
    cells = np.char.strip(cells.reshape(arr.shape))
    tokens = [t for t in MISSING_TOKENS if t and t not in known]
    return np.where(np.isin(cells, tokens), "", cells)


def _shorten(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- reading scorecard.json ------------------------------------------------------------------


def _format_of(file: Path) -> Any:
    """The ``format`` of a JSON file (None when it is not a readable JSON object)."""
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record.get("format") if isinstance(record, dict) else None


def _woe_card_of(folder: Path) -> Path | None:
    """The scorecard.json to load for a run folder, if it is a WOE scorecard run: its
    summary says so, or its scorecard.json has the WOE format."""
    file = folder / SCORECARD_FILE
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        summary = None
    if isinstance(summary, dict) and summary.get("model") == "scorecard":
        return file
    return file if file.is_file() and _format_of(file) == WOE_FORMAT else None


_CARD_NUMBERS = ("base_score", "base_odds", "pdo", "factor", "intercept", "base_points")


def _load_woe_card(file: Path) -> FederatedWoeScorecard:
    """scorecard.json, joined with the data parties' parts beside it; InputError (one
    line, naming the file at fault) when anything is missing or inconsistent."""
    where = str(file)
    if not file.is_file():
        raise InputError(
            f"{file}: missing: this WOE scorecard run folder has lost its points table "
            "(every complete scorecard run writes it)"
        )
    record = _read_json(file, "scorecard file")
    chars = _card_characteristics(record, where)
    sources = [where] * len(chars)  # the file each characteristic's bins come from
    hidden: dict[str, list[int]] = {}
    for i, (c, binning) in enumerate(chars):
        if binning is None:
            hidden.setdefault(c["owner"], []).append(i)
    for owner, at in hidden.items():
        part = file.parent / TREES_DIR / f"{WOE_PART_PREFIX}{owner}.json"
        names = [chars[i][0]["name"] for i in at]
        own = _read_woe_part(part, owner, names, record, where)
        for i in at:
            mine = own.get(chars[i][0]["name"])
            c = chars[i][0]
            if mine is None:
                raise InputError(
                    f"{part}: characteristics: no {c['name']!r}, which {file.name} says "
                    f"party {owner!r} bins; this file is that party's own part of the model"
                )
            if mine[0]["coefficient"] != c["coefficient"] or _counts(mine[0]) != _counts(c):
                raise InputError(
                    f"{part}: characteristic {c['name']!r}: its coefficient or bins (customers, "
                    f"defaulters, points) differ from {file.name}'s; the files are from "
                    "different runs"
                )
            chars[i] = mine
            sources[i] = f"{part} ({owner!r}'s own part)"
    built = []
    for (c, b), source in zip(chars, sources):
        try:
            built.append(_characteristic(c, b))
        except ValueError as exc:
            raise InputError(f"{source}: {_one_line(exc)}") from None
    try:
        card = FederatedWoeScorecard(
            built,
            float(record["intercept"]),
            base_score=float(record["base_score"]),
            base_odds=float(record["base_odds"]),
            pdo=float(record["pdo"]),
            source=where,
        )
    except ValueError as exc:
        raise InputError(f"{where}: {_one_line(exc)}") from None
    _check_card(card, record, chars, where)
    return card


def _counts(c: dict[str, Any]) -> list[tuple[Any, Any, Any]]:
    return [(b["customers"], b["defaulters"], b["points"]) for b in c["bins"]]


def _read_woe_part(
    part: Path, owner: str, names: list[str], card: dict[str, Any], card_file: str
) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """{name: (record, binning)} of one data party's own part, model/scorecard-<owner>.json."""
    whose = f"party {owner!r}'s own part of the model (its bins of {preview(names)})"
    if not _plain_name(owner):
        raise InputError(
            f"{card_file}: owner {owner!r} keeps the bins of {preview(names)} but is not a "
            "plain party name; its part of the model cannot be looked up"
        )
    if not part.is_file():
        raise InputError(
            f"{part}: missing: this file is {whose}; the bank's {SCORECARD_FILE} names that "
            "party's bins by number only, so the scorecard cannot bin raw rows without it"
        )
    try:
        record = json.loads(part.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{part}: not valid JSON ({_one_line(exc)}); this file is {whose}"
        ) from None
    except OSError as exc:
        raise InputError(f"{part}: cannot read ({_one_line(exc)}); this file is {whose}") from None
    where = f"{part} ({owner!r}'s own part)"
    if not isinstance(record, dict):
        raise InputError(f"{where}: not a scorecard part (expected a JSON object)")
    if record.get("owner") != owner:
        raise InputError(f"{where}: owner: expected {owner!r}, got {record.get('owner')!r}")
    for key in ("base_score", "base_odds", "pdo", "intercept"):
        if record.get(key) != card.get(key):
            raise InputError(
                f"{where}: {key}: {record.get(key)!r}, but {SCORECARD_FILE} has "
                f"{card.get(key)!r}; the files are from different runs"
            )
    out = {}
    for c, binning in _card_characteristics(record, where):
        if c["owner"] != owner:
            raise InputError(f"{where}: characteristic {c['name']!r} is owned by {c['owner']!r}")
        if binning is None:
            raise InputError(f"{where}: characteristic {c['name']!r}: binning: missing (null)")
        out[c["name"]] = (c, binning)
    return out


def _card_characteristics(
    record: Any, where: str
) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """The type-checked characteristics of a scorecard record: (record, binning)."""
    if not isinstance(record, dict):
        raise InputError(f"{where}: not a fedrisk scorecard file (expected a JSON object)")
    fmt = record.get("format")
    if fmt != WOE_FORMAT:
        raise InputError(f"{where}: format: expected {WOE_FORMAT!r}, got {fmt!r}")
    for key in (*_CARD_NUMBERS, "base_points_rounded", "characteristics"):
        if key not in record:
            raise InputError(f"{where}: {key}: missing")
    for key in _CARD_NUMBERS:
        v = record[key]
        if not _is_number(v) or not math.isfinite(v):
            raise InputError(f"{where}: {key}: expected a finite number, got {v!r}")
    chars = record["characteristics"]
    if not isinstance(chars, list) or not chars:
        raise InputError(f"{where}: characteristics: expected a non-empty list")
    out = []
    seen = set()
    for i, c in enumerate(chars):
        at = f"{where}: characteristics[{i}]"
        if not isinstance(c, dict):
            raise InputError(f"{at}: expected a JSON object")
        for key in ("name", "owner", "coefficient", "binning", "bins"):
            if key not in c:
                raise InputError(f"{at}: {key}: missing")
        name = c["name"]
        if not isinstance(name, str) or not name or name in seen:
            raise InputError(f"{at}: name: expected a unique non-empty string, got {name!r}")
        seen.add(name)
        at = f"{where}: characteristic {name!r}"
        if not isinstance(c["owner"], str):
            raise InputError(f"{at}: owner: expected a party name")
        if not _is_number(c["coefficient"]) or not math.isfinite(c["coefficient"]):
            raise InputError(f"{at}: coefficient: expected a finite number")
        bins = c["bins"]
        if not isinstance(bins, list) or not bins or not all(isinstance(b, dict) for b in bins):
            raise InputError(f"{at}: bins: expected a non-empty list of bins")
        for k, b in enumerate(bins):
            ok = (
                b.get("bin") == k + 1
                and isinstance(b.get("label"), str)
                and _is_int(b.get("customers"))
                and _is_int(b.get("defaulters"))
                and 0 <= b["defaulters"] <= b["customers"]
                and _is_number(b.get("woe"))
                and _is_int(b.get("points"))
            )
            if not ok:
                raise InputError(
                    f"{at}: bins[{k}]: expected bin {k + 1} with a label, whole customers >= "
                    "defaulters >= 0, a woe and whole points"
                )
        out.append((c, _binning(c["binning"], len(bins), at)))
    return out


def _binning(b: Any, n_bins: int, at: str) -> dict[str, Any] | None:
    """A checked binning record (None: the bins are a data party's, kept in its part)."""
    if b is None:
        return None
    if not isinstance(b, dict) or b.get("kind") not in ("numeric", "text"):
        raise InputError(f'{at}: binning: expected null or {{"kind": "numeric" | "text", ...}}')
    if b["kind"] == "numeric":
        grid = b.get("grid")
        if not isinstance(grid, dict) or (grid.get("limit"), grid.get("cells")) != (
            GRID_LIMIT,
            GRID_CELLS,
        ):
            raise InputError(
                f"{at}: binning.grid: {grid!r}; this fedrisk bins on limit {GRID_LIMIT}, "
                f"{GRID_CELLS} cells"
            )
        cuts = b.get("cuts")
        if not isinstance(cuts, list) or not all(map(_is_int, cuts)):
            raise InputError(f"{at}: binning.cuts: expected a list of grid cells (integers)")
        if len(cuts) + 2 != n_bins:
            raise InputError(
                f"{at}: {len(cuts)} cuts make {len(cuts) + 2} bins (the missing bin "
                f"included), but bins lists {n_bins}"
            )
        return b
    groups = b.get("groups")
    if not isinstance(groups, list) or not all(
        isinstance(g, list) and all(isinstance(c, str) for c in g) for g in groups
    ):
        raise InputError(f"{at}: binning.groups: expected a list of lists of categories")
    if not _is_int(b.get("unseen")):
        raise InputError(f"{at}: binning.unseen: expected a group index")
    if len(groups) + 1 != n_bins:
        raise InputError(
            f"{at}: {len(groups)} groups make {len(groups) + 1} bins (the missing bin "
            f"included), but bins lists {n_bins}"
        )
    return b


def _characteristic(c: dict[str, Any], b: dict[str, Any]) -> WoeCharacteristic:
    """A checked characteristic record as a WoeCharacteristic, its WOE exact from the
    counts (ValueError, which the caller prefixes with the file)."""
    bins = c["bins"]
    customers = [x["customers"] for x in bins]
    defaulters = [x["defaulters"] for x in bins]
    woe = woe_of_counts(np.subtract(customers, defaulters), defaulters)
    printed = np.array([x["woe"] for x in bins], dtype=np.float64)
    if np.abs(np.round(woe, 6) - printed).max() > 1e-9:
        k = int(np.argmax(np.abs(np.round(woe, 6) - printed)))
        raise ValueError(
            f"characteristic {c['name']!r} bin {k + 1}: woe {printed[k]} does not follow "
            f"from its customers and defaulters ({woe[k]:.6f}); edited by hand?"
        )
    common = dict(
        coefficient=float(c["coefficient"]),
        woe=woe,
        owner=c["owner"],
        labels=[x["label"] for x in bins],
        customers=customers,
        defaulters=defaulters,
    )
    if b["kind"] == "numeric":
        return WoeCharacteristic(
            c["name"], cuts=b["cuts"], missing_to=b.get("missing_to"), **common
        )
    return WoeCharacteristic(
        c["name"],
        groups=b["groups"],
        unseen=b["unseen"],
        missing_to=b.get("missing_to"),
        **common,
    )


def _check_card(card: FederatedWoeScorecard, record: dict[str, Any], chars, where: str) -> None:
    """The numbers scorecard.json prints must be those the loaded card computes."""
    if not math.isclose(card.factor_, record["factor"], rel_tol=1e-12):
        raise InputError(
            f"{where}: factor: {record['factor']!r}, but pdo / ln 2 = {card.factor_!r}"
        )
    if not math.isclose(card.base_points_, record["base_points"], rel_tol=1e-9, abs_tol=1e-9):
        raise InputError(
            f"{where}: base_points: {record['base_points']!r}, but base_score, base_odds, pdo "
            f"and intercept give {card.base_points_!r}; edited by hand?"
        )
    if record["base_points_rounded"] != card.base_points_rounded_:
        raise InputError(
            f"{where}: base_points_rounded: {record['base_points_rounded']!r}, expected "
            f"{card.base_points_rounded_} (base_points rounded)"
        )
    for (c, _), points in zip(chars, card.points_):
        printed = [b["points"] for b in c["bins"]]
        if printed != points.tolist():
            k = next(k for k, (p, q) in enumerate(zip(printed, points)) if p != q)
            raise InputError(
                f"{where}: characteristic {c['name']!r} bin {k + 1}: points {printed[k]}, but "
                f"-factor · coefficient · WOE rounds to {int(points[k])}; edited by hand?"
            )
