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

Vertical runs have no ``model.json``: each party holds only the weights of its own
features, so no single party can load the whole model.
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


def load_model(run_dir: str | Path) -> FederatedLogisticModel:
    """The final model of a horizontal run folder (or of a ``model.json`` file itself)."""
    path = Path(run_dir)
    if path.is_dir():
        file = path / MODEL_FILE
        if not file.is_file():
            raise InputError(_no_model_message(path))
    elif path.is_file():
        file = path
    else:
        raise InputError(f"{path}: no such run folder")
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{file}: not a valid model file (not JSON: {_one_line(exc)})") from None
    except OSError as exc:
        raise InputError(f"{file}: cannot read: {_one_line(exc)}") from None
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


def _no_model_message(folder: Path) -> str:
    kind = None
    try:
        kind = json.loads((folder / "summary.json").read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):
        pass
    if kind == "vertical":
        return (
            f"{folder}: no {MODEL_FILE}: this is a vertical run, where each party holds "
            "only the weights of its own features, so no single party has the whole "
            "model to load"
        )
    if (folder / "summary.json").is_file():
        return f"{folder}: no {MODEL_FILE} in this run folder (written by horizontal runs only)"
    return f"{folder}: no {MODEL_FILE}; not a fedrisk run folder"


def preview(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(repr(s) for s in items[:limit])
    return shown + (f", … ({len(items)} in all)" if len(items) > limit else "")


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
