"""Points-based credit scorecard from the federated logistic model.

The credit-industry convention (Siddiqi, *Credit Risk Scorecards*)::

    score  = offset + factor · ln(odds of being good)     odds = P(good) : P(bad)
    factor = PDO / ln 2                                    PDO: points to double the odds
    offset = base_score − factor · ln(base_odds)           base_score at base_odds

Defaults: 600 points at 50:1 good:bad, 20 points to double the odds. The model predicts
P(default) = sigmoid(b + Σ_j w_j x_j) on raw features, so ln(good odds) = −(b + Σ_j w_j x_j)
and the score is exactly linear in the raw features::

    score(x) = base_points + Σ_j points_per_unit_j · x_j
    base_points = offset − factor · b          points_per_unit_j = −factor · w_j

That continuous form is what :func:`score` computes and what ``scorecard.json`` /
``scorecard.csv`` hold; it ranks customers exactly as the model's probabilities do.
A model trained with robust scaling clips each raw feature to ``[clip_low, clip_high]``
first (stored per feature; empty/null where a feature is not clipped), so there
``score(x) = base_points + Σ_j points_per_unit_j · clip(x_j)``.

Printed scorecards want a few integer points per feature instead. Given reference rows
(``reference_X``), :func:`build_scorecard` also makes a binned table: per feature,
quantile bins of the reference values (one bin per value when a feature has no more
distinct values than bins), each worth ``round(points_per_unit · median of the bin)``;
``lower`` and ``upper`` are the smallest and largest reference values in the bin. A row
falls in the last bin whose ``lower`` is ≤ its value (values below the first bin fall in
the first bin), and its binned score is ``round(base_points)`` plus its bins'
points. That is an approximation: ``bin_error`` reports how far it is from the exact
score on the reference rows. Run folders carry no bins: the raw training rows are the
banks' and never leave them.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from fedrisk.errors import InputError
from fedrisk.model_io import FederatedLogisticModel, as_feature_matrix, load_model

SCORECARD_FORMAT = "fedrisk-scorecard-v1"
JSON_FILE = "scorecard.json"
CSV_FILE = "scorecard.csv"
CSV_FIELDS = (
    "kind",
    "feature",
    "coefficient",
    "points_per_unit",
    "bin",
    "lower",
    "upper",
    "median",
    "count",
    "points",
    "clip_low",
    "clip_high",
)
RUN_NOTE = (
    "No binned table: the raw training rows are the banks' and never leave them. "
    "Use the continuous form (score = base_points + sum of points_per_unit x raw "
    "value, clipped to the feature's clip_low/clip_high where given), or call fedrisk.evaluation.scorecard.build_scorecard(model, "
    "reference_X=...) on rows you hold to print a binned table."
)
CONVENTION = (
    "score = offset + factor * ln(odds good:bad); factor = pdo / ln 2; "
    "offset = base_score - factor * ln(base_odds); "
    "score(x) = base_points + sum_j points_per_unit[j] * x[j] (raw feature values, "
    "clipped to [clip_low, clip_high] where given)"
)


@dataclass(frozen=True)
class Scorecard:
    """A scorecard in its exact continuous form, plus an optional binned table.

    ``points_per_unit`` and ``coefficients`` (raw-feature log-odds of default) are keyed
    by feature name in model order; ``intercept`` is the raw-feature intercept.
    ``bins`` rows: feature, bin (1-based), lower, upper, median, count, points (int).
    """

    base_score: float
    base_odds: float
    pdo: float
    factor: float
    offset: float
    base_points: float
    points_per_unit: dict[str, float]
    bins: list[dict] | None = None
    coefficients: dict[str, float] | None = None
    intercept: float | None = None
    bin_error: dict[str, float] | None = None  # |binned − exact| on reference rows:
    # max_abs, mean_abs, p99_abs (points)
    note: str | None = None
    # per feature (lower, upper) clip bounds applied to raw values first; None: unclipped
    clips: dict[str, tuple[float | None, float | None]] | None = None

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(self.points_per_unit)

    def clip(self, A: np.ndarray) -> np.ndarray:
        """Raw rows (already in scorecard order) clipped as the model clips them."""
        if not self.clips:
            return A
        lo = [self.clips.get(n, (None, None))[0] for n in self.feature_names]
        hi = [self.clips.get(n, (None, None))[1] for n in self.feature_names]
        lo = np.array([-np.inf if v is None else v for v in lo], dtype=np.float64)
        hi = np.array([np.inf if v is None else v for v in hi], dtype=np.float64)
        return np.clip(A, lo, hi)


def scaling(base_score: float = 600, base_odds: float = 50, pdo: float = 20) -> tuple[float, float]:
    """``(factor, offset)`` of the convention; ValueError on unusable settings."""
    for name, v in (("base_score", base_score), ("base_odds", base_odds), ("pdo", pdo)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {v!r}")
    if base_odds <= 0:
        raise ValueError(f"base_odds must be > 0 (good:bad odds such as 50), got {base_odds}")
    if pdo <= 0:
        raise ValueError(f"pdo must be > 0 (points to double the odds), got {pdo}")
    factor = pdo / math.log(2)
    return factor, base_score - factor * math.log(base_odds)


def build_scorecard(
    model: FederatedLogisticModel,
    *,
    base_score: float = 600,
    base_odds: float = 50,
    pdo: float = 20,
    reference_X: Any = None,
    n_bins: int = 5,
    note: str | None = None,
) -> Scorecard:
    """The scorecard of ``model``; with ``reference_X`` (raw rows) also a binned table."""
    factor, offset = scaling(base_score, base_odds, pdo)
    names = model.feature_names_
    ppu = {n: float(-factor * w) for n, w in zip(names, model.coef_)}
    card = Scorecard(
        base_score=float(base_score),
        base_odds=float(base_odds),
        pdo=float(pdo),
        factor=factor,
        offset=offset,
        base_points=offset - factor * model.intercept_,
        points_per_unit=ppu,
        coefficients={n: float(w) for n, w in zip(names, model.coef_)},
        intercept=float(model.intercept_),
        note=note,
        clips=_model_clips(model),
    )
    if reference_X is None:
        return card
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be an integer ≥ 1, got {n_bins!r}")
    R = card.clip(as_feature_matrix(reference_X, names))
    if R.shape[0] == 0:
        raise ValueError("reference_X has no rows; bins need reference values")
    bins = [row for j, n in enumerate(names) for row in _feature_bins(n, R[:, j], ppu[n], n_bins)]
    card = replace(card, bins=bins)
    err = np.abs(score_binned(card, R) - score(card, R))
    return replace(
        card,
        bin_error={
            "max_abs": float(err.max()),
            "mean_abs": float(err.mean()),
            "p99_abs": float(np.quantile(err, 0.99)),
        },
    )


def score(scorecard: Scorecard, X: Any) -> np.ndarray:
    """Exact continuous points for raw rows ``X`` (array in scorecard order, or a table)."""
    A = scorecard.clip(as_feature_matrix(X, scorecard.feature_names))
    return scorecard.base_points + A @ np.array(list(scorecard.points_per_unit.values()))


def score_binned(scorecard: Scorecard, X: Any) -> np.ndarray:
    """Integer points from the binned table (an approximation of :func:`score`)."""
    if not scorecard.bins:
        raise ValueError("this scorecard has no bins; build it with reference_X=...")
    A = scorecard.clip(as_feature_matrix(X, scorecard.feature_names))
    total = np.full(A.shape[0], round(scorecard.base_points), dtype=np.int64)
    for j, name in enumerate(scorecard.feature_names):
        rows = [b for b in scorecard.bins if b["feature"] == name]
        if not rows:
            raise ValueError(f"the binned table has no bins for feature {name!r}")
        lowers = np.array([b["lower"] for b in rows], dtype=np.float64)
        points = np.array([b["points"] for b in rows], dtype=np.int64)
        k = np.clip(np.searchsorted(lowers, A[:, j], side="right") - 1, 0, len(rows) - 1)
        total += points[k]
    return total


def write_scorecard(scorecard: Scorecard, folder: Path) -> tuple[Path, Path]:
    """Write ``scorecard.json`` and ``scorecard.csv`` into ``folder``; return both paths."""
    folder = Path(folder)
    json_path, csv_path = folder / JSON_FILE, folder / CSV_FILE
    json_path.write_text(
        json.dumps(_to_json(scorecard), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    coef = scorecard.coefficients or {}
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        w.writeheader()
        w.writerow(
            {
                "kind": "base",
                "coefficient": _num(scorecard.intercept),
                "points": _num(scorecard.base_points),
            }
        )
        clips = scorecard.clips or {}
        for name, ppu in scorecard.points_per_unit.items():
            lo, hi = clips.get(name, (None, None))
            w.writerow(
                {
                    "kind": "feature",
                    "feature": name,
                    "coefficient": _num(coef.get(name)),
                    "points_per_unit": _num(ppu),
                    "clip_low": _num(lo),
                    "clip_high": _num(hi),
                }
            )
        for b in scorecard.bins or ():
            w.writerow(
                {"kind": "bin", **{k: _num(v) if isinstance(v, float) else v for k, v in b.items()}}
            )
    return json_path, csv_path


def read_scorecard(path: Path) -> Scorecard:
    """A scorecard from ``scorecard.json`` (a file, or a folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / JSON_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such scorecard file") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{path}: not a valid scorecard file (not JSON: {' '.join(str(exc).split())})"
        ) from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {' '.join(str(exc).split())}") from None
    return _from_json(raw, str(path))


def write_run_scorecard(stage: Path) -> tuple[Path, Path]:
    """The run folder's scorecard (continuous form, no bins) beside its ``model.json``."""
    return write_scorecard(build_scorecard(load_model(stage), note=RUN_NOTE), stage)


# --- internals --------------------------------------------------------------------------------


def _feature_bins(name: str, col: np.ndarray, ppu: float, n_bins: int) -> list[dict]:
    """Bins of one feature's reference values: lower/upper are the smallest and largest
    reference values inside the bin; points are at the bin's median."""
    values = np.unique(col)
    if values.size <= n_bins:
        lowers = values  # one bin per distinct value
    else:
        lowers = np.unique(np.quantile(col, np.linspace(0.0, 1.0, n_bins + 1)))[:-1]
    k = np.clip(np.searchsorted(lowers, col, side="right") - 1, 0, len(lowers) - 1)
    rows = []
    for i in range(len(lowers)):
        members = col[k == i]
        if members.size == 0:  # a quantile edge inside a gap of the data: nothing to show
            continue
        median = float(np.median(members))
        rows.append(
            {
                "feature": name,
                "bin": len(rows) + 1,
                "lower": float(members.min()),
                "upper": float(members.max()),
                "median": median,
                "count": int(members.size),
                "points": int(round(ppu * median)),
            }
        )
    return rows


def _model_clips(model: FederatedLogisticModel) -> dict[str, tuple[float | None, float | None]]:
    """The model's clip bounds per feature (None for ±inf); empty when nothing is clipped."""
    low = getattr(model, "clip_low_", None)
    high = getattr(model, "clip_high_", None)
    if low is None or high is None or not (np.isfinite(low).any() or np.isfinite(high).any()):
        return {}
    bound = lambda v: float(v) if np.isfinite(v) else None  # noqa: E731
    return {n: (bound(a), bound(b)) for n, a, b in zip(model.feature_names_, low, high)}


def _to_json(card: Scorecard) -> dict[str, Any]:
    coef = card.coefficients or {}
    clips = card.clips or {}
    return {
        "format": SCORECARD_FORMAT,
        "convention": CONVENTION,
        "base_score": card.base_score,
        "base_odds": card.base_odds,
        "pdo": card.pdo,
        "factor": card.factor,
        "offset": card.offset,
        "intercept": card.intercept,
        "base_points": card.base_points,
        "features": [
            {
                "name": n,
                "coefficient": coef.get(n),
                "points_per_unit": p,
                **({"clip_low": clips[n][0], "clip_high": clips[n][1]} if n in clips else {}),
            }
            for n, p in card.points_per_unit.items()
        ],
        "bins": card.bins,
        "bin_error": card.bin_error,
        "note": card.note,
    }


def _from_json(raw: Any, where: str) -> Scorecard:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: not a fedrisk scorecard (expected a JSON object)")
    if raw.get("format") != SCORECARD_FORMAT:
        raise InputError(
            f"{where}: format: expected {SCORECARD_FORMAT!r}, got {raw.get('format')!r}"
        )
    nums = {}
    for key in ("base_score", "base_odds", "pdo", "factor", "offset", "base_points"):
        nums[key] = _number(raw.get(key), f"{where}: {key}")
    try:
        factor, offset = scaling(nums["base_score"], nums["base_odds"], nums["pdo"])
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None
    if not (
        math.isclose(factor, nums["factor"], rel_tol=1e-9)
        and math.isclose(offset, nums["offset"], rel_tol=1e-9, abs_tol=1e-9)
    ):
        raise InputError(
            f"{where}: factor/offset do not match base_score, base_odds and pdo "
            "(edited by hand?); rebuild the scorecard"
        )
    feats = raw.get("features")
    if (
        not isinstance(feats, list)
        or not feats
        or not all(isinstance(f, dict) and isinstance(f.get("name"), str) for f in feats)
    ):
        raise InputError(
            f"{where}: features: expected a non-empty list of "
            '{"name", "coefficient", "points_per_unit"} objects'
        )
    names = [f["name"] for f in feats]
    if len(set(names)) != len(names):
        raise InputError(f"{where}: features: names must be unique")
    ppu = {
        f["name"]: _number(f.get("points_per_unit"), f"{where}: features.{f['name']}")
        for f in feats
    }
    coefs = None
    if all(f.get("coefficient") is not None for f in feats):
        coefs = {
            f["name"]: _number(f["coefficient"], f"{where}: features.{f['name']}") for f in feats
        }
    clips = {}
    for f in feats:
        if "clip_low" in f or "clip_high" in f:
            lo, hi = f.get("clip_low"), f.get("clip_high")
            key = f"{where}: features.{f['name']}"
            lo = None if lo is None else _number(lo, key + ".clip_low")
            hi = None if hi is None else _number(hi, key + ".clip_high")
            if lo is not None and hi is not None and lo > hi:
                raise InputError(f"{key}: clip_low must be <= clip_high")
            clips[f["name"]] = (lo, hi)
    intercept = raw.get("intercept")
    if intercept is not None:
        intercept = _number(intercept, f"{where}: intercept")
    bins = raw.get("bins")
    if bins is not None and not (
        isinstance(bins, list)
        and all(
            isinstance(b, dict)
            and b.get("feature") in ppu
            and isinstance(b.get("points"), int)
            and isinstance(b.get("lower"), (int, float))
            for b in bins
        )
    ):
        raise InputError(
            f"{where}: bins: expected null or a list of bin rows "
            "(feature, bin, lower, upper, median, count, points)"
        )
    return Scorecard(
        **nums,
        points_per_unit=ppu,
        bins=bins,
        coefficients=coefs,
        intercept=intercept,
        bin_error=raw.get("bin_error"),
        note=raw.get("note"),
        clips=clips,
    )


def _number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise InputError(f"{where}: expected a finite number, got {v!r}")
    return float(v)


def _num(v: float | None) -> str:
    return "" if v is None else repr(float(v))
