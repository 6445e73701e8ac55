"""Credit-risk scoring metrics on pooled predictions.

Every function here takes *pooled* scores (all parties' test rows together).
AUC and KS are rank statistics of the whole population: averaging them across
parties gives a number that is not the AUC/KS of any population, so callers
must concatenate first and call these once.

Conventions (``y_true`` = 1 means default, ``p`` = predicted probability of
default, so a higher ``p`` is riskier):

* AUC   -- :func:`sklearn.metrics.roc_auc_score`.
* Gini  -- ``2 * AUC - 1``.
* KS    -- ``max(TPR - FPR)`` over :func:`sklearn.metrics.roc_curve`. This is the
  one-sided credit convention: a score ranked the wrong way round gets KS 0
  (and a negative Gini), not KS 1.
* log loss -- :func:`sklearn.metrics.log_loss` with ``labels=[0, 1]``.
* Brier -- :func:`sklearn.metrics.brier_score_loss`.
* mean PD -- the mean predicted probability of default, to set beside the observed
  default rate (calibration-in-the-large: a model can rank well and still predict far
  too few or too many defaults overall).

Binned tables use equal-count bins built from ranks (ties are split by row
order, so every bin has ``n // bins`` or ``n // bins + 1`` rows).
"""

from __future__ import annotations

import math
import operator

import numpy as np

__all__ = [
    "score_metrics",
    "auc_interval",
    "auc_interval_record",
    "calibration_gap_pp",
    "calibration_warning",
    "CALIBRATION_WARN_PP",
    "calibration_table",
    "gains_table",
    "expected_calibration_error",
    "population_stability_index",
    "psi_band",
    "PSI_MONITOR",
    "PSI_SHIFT",
]

# Only log loss needs clipping: log(0) is infinite; the other metrics are fine at 0/1.
_LOG_LOSS_CLIP = 1e-15

#: |mean predicted PD - observed default rate| above this many percentage points: warn.
CALIBRATION_WARN_PP = 2.0

#: PSI at or above this: the score distribution has moved enough to monitor.
PSI_MONITOR = 0.1
#: PSI at or above this: a major shift (investigate / consider retraining).
PSI_SHIFT = 0.25


# --------------------------------------------------------------------------- validation


def _check_bins(bins: int) -> int:
    if isinstance(bins, bool):
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    try:
        bins = operator.index(bins)
    except TypeError:
        raise ValueError(f"bins must be a positive integer, got {bins!r}") from None
    if bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins}")
    return bins


def _as_1d_finite(x, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _validate(y_true, p, *, need_defaults: bool = False, need_both: bool = False):
    """Return ``(y, p)`` as int/float arrays, or raise ``ValueError`` saying what is wrong."""
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"y_true must be 1-D, got shape {y.shape}")
    p = _as_1d_finite(p, "p")
    if y.shape[0] != p.shape[0]:
        raise ValueError(f"y_true and p differ in length: {y.shape[0]} vs {p.shape[0]}")
    if y.dtype.kind not in "biuf" or not np.all(np.isin(y, (0, 1))):
        raise ValueError("y_true must contain only 0 (non-default) and 1 (default)")
    if p.min() < 0.0 or p.max() > 1.0:
        raise ValueError(f"p must lie in [0, 1], got range [{p.min():g}, {p.max():g}]")
    y = y.astype(np.int64)
    n_pos = int(y.sum())
    if need_both and (n_pos == 0 or n_pos == y.size):
        only = "defaults (1)" if n_pos else "non-defaults (0)"
        raise ValueError(f"y_true contains only {only}; need at least one of each class")
    if need_defaults and n_pos == 0:
        raise ValueError("y_true contains no defaults (1); capture rate and lift are undefined")
    return y, p


def _rank_bins(p: np.ndarray, bins: int, *, descending: bool = False):
    """Equal-count bin id for every row, plus the number of bins actually used.

    Ranks rather than quantile edges so that heavy ties cannot produce empty or
    lopsided bins; ``min(bins, n)`` keeps every bin non-empty for tiny samples.
    """
    n = p.size
    k = min(bins, n)
    order = np.argsort(-p if descending else p, kind="stable")
    ids = np.empty(n, dtype=np.intp)
    ids[order] = np.arange(n) * k // n
    return ids, k


# --------------------------------------------------------------------------- headline metrics


def score_metrics(y_true, p) -> dict[str, float]:
    """AUC, KS, Gini, log loss, Brier score and mean PD of pooled predictions.

    Returns plain Python floats (JSON-serialisable) under the keys
    ``auc, ks, gini, log_loss, brier, mean_pd``. Raises ``ValueError`` if the inputs
    differ in length, hold a single class, or ``p`` is not finite in [0, 1].
    """
    # why here: start-up time; scikit-learn takes ~0.7 s to import, and every Deployment Engine ClientApp
    # process (one per message) imports this module without scoring anything
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score, roc_curve

    y, p = _validate(y_true, p, need_both=True)
    auc = float(roc_auc_score(y, p))
    # Keep every threshold: cheap, and makes the max over the curve obviously exact.
    fpr, tpr, _ = roc_curve(y, p, drop_intermediate=False)
    ks = float(np.max(tpr - fpr))
    clipped = np.clip(p, _LOG_LOSS_CLIP, 1.0 - _LOG_LOSS_CLIP)
    return {
        "auc": auc,
        "ks": ks,
        "gini": 2.0 * auc - 1.0,
        "log_loss": float(log_loss(y, clipped, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "mean_pd": float(np.mean(p)),
    }


def weighted_auc(y_true, p, weights) -> np.ndarray:
    """AUC (Mann–Whitney, ties counted half) of ``p`` under each row of ``weights``.

    ``weights`` is a ``(B, n)`` array of non-negative row weights (bootstrap counts, say);
    returns ``B`` AUCs, NaN where a weighting leaves no default or no non-default. All ones
    gives :func:`sklearn.metrics.roc_auc_score`. The scores are sorted once and the tied
    scores grouped, so each weighting costs a few vectorised passes over ``n``.
    """
    y, p = _validate(y_true, p)
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    if w.shape[1] != y.size:
        raise ValueError(f"weights has {w.shape[1]} columns for {y.size} rows")
    order = np.argsort(p, kind="stable")
    sp, sy = p[order], y[order].astype(bool)
    starts = np.flatnonzero(np.r_[True, sp[1:] != sp[:-1]])  # tie groups of the sorted scores
    return _grouped_auc(w[:, order], sy, starts)


def _grouped_auc(w: np.ndarray, sy: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """AUCs for weights ``w`` (B, n) over rows already sorted by score; ``sy`` the
    sorted labels, ``starts`` where each group of tied scores begins."""
    pos = np.add.reduceat(np.where(sy, w, 0.0), starts, axis=1)
    neg = np.add.reduceat(np.where(sy, 0.0, w), starts, axis=1)
    return _cell_auc(pos, neg)


def _cell_auc(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """AUCs from the default (``pos``) and non-default (``neg``) weight of each group of
    tied scores, groups in ascending score order, one row per weighting."""
    # a default beats the non-defaults scored at or below it, the tied ones counted half
    wins = np.einsum("bg,bg->b", pos, np.cumsum(neg, axis=1)) - 0.5 * np.einsum(
        "bg,bg->b", pos, neg
    )
    pairs = pos.sum(axis=1).astype(float) * neg.sum(axis=1)
    return np.where(pairs > 0, wins / np.where(pairs > 0, pairs, 1.0), np.nan)


#: Rows times resamples drawn per chunk of :func:`auc_interval`: bounds its memory and
#: keeps a chunk in cache (measured: larger chunks are slower, not faster).
_BOOTSTRAP_CHUNK_CELLS = 400_000


def auc_interval(
    y_true,
    p,
    *,
    level: float = 0.95,
    resamples: int = 1000,
    seed: int | np.random.SeedSequence | None = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval ``(low, high)`` for the AUC of ``p``.

    Each of ``resamples`` replicates draws ``n`` rows with replacement: its multinomial
    counts, summed per group of tied scores and per class (a ``B × 2·groups`` matrix,
    built a chunk of replicates at a time: one draw, one ``bincount``), weight the
    Mann–Whitney statistic over the scores sorted once, ties counted half (as
    :func:`weighted_auc`, which takes any ``B × n`` weights). Replicates without both
    classes are dropped. ``seed``
    fixes the resampling (evaluation, not protective randomness: runs pass the scenario's
    seed so the same run gives the same interval).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level!r}")
    if isinstance(resamples, bool) or operator.index(resamples) < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples!r}")
    y, p = _validate(y_true, p, need_both=True)
    n = y.size
    order = np.argsort(p, kind="stable")
    sp, sy = p[order], y[order]
    first = np.r_[True, sp[1:] != sp[:-1]]
    groups = int(first.sum())
    # every sorted row's cell among (tie group, label): a replicate's multinomial counts
    # summed per cell are all the weighted Mann–Whitney statistic needs
    width = 2 * groups
    # int32 indices where they fit (a chunk's cells number at most 2 * max(n, CHUNK)):
    # half the memory traffic, the dearest part here
    itype = np.int32 if 2 * max(n, _BOOTSTRAP_CHUNK_CELLS) < 2**31 else np.int64
    cell = ((np.cumsum(first) - 1) * 2 + sy).astype(itype)
    rng = np.random.default_rng(seed)
    chunk = max(1, _BOOTSTRAP_CHUNK_CELLS // max(n, width))
    aucs = []
    for done in range(0, resamples, chunk):
        b = min(chunk, resamples - done)
        picks = cell[rng.integers(0, n, size=(b, n), dtype=itype)]
        picks += (np.arange(b, dtype=itype) * width)[:, None]
        counts = np.bincount(picks.ravel(), minlength=b * width).reshape(b, groups, 2)
        aucs.append(_cell_auc(counts[:, :, 1], counts[:, :, 0]))
    aucs = np.concatenate(aucs)
    aucs = aucs[np.isfinite(aucs)]
    if aucs.size == 0:
        return math.nan, math.nan
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(aucs, [tail, 1.0 - tail])
    return float(low), float(high)


def auc_interval_record(y_true, p, seed: int | None) -> dict[str, float]:
    """``auc_low`` and ``auc_high``, the 95 % bootstrap interval summary.json holds beside
    a model's ``auc``: 1,000 resamples, 200 above a million test rows (cost, not
    precision: the interval is then narrow anyway)."""
    resamples = 1000 if np.size(y_true) <= 1_000_000 else 200
    low, high = auc_interval(y_true, p, resamples=resamples, seed=seed)
    return {"auc_low": low, "auc_high": high}


def calibration_gap_pp(mean_pd: float, observed_rate: float) -> float:
    """Calibration-in-the-large in percentage points: 100 · (mean PD − observed rate);
    negative when the model predicts too few defaults."""
    return 100.0 * (float(mean_pd) - float(observed_rate))


def calibration_warning(
    mean_pd: float,
    observed_rate: float,
    *,
    model: str = "federated",
    threshold_pp: float = CALIBRATION_WARN_PP,
) -> str | None:
    """The warning a run prints when ``model``'s mean predicted PD differs from the
    observed default rate by more than ``threshold_pp`` percentage points; None when
    it does not."""
    gap = calibration_gap_pp(mean_pd, observed_rate)
    if not abs(gap) > threshold_pp:
        return None
    way = "under" if gap < 0 else "over"
    return (
        f"the {model} model's mean PD {100 * mean_pd:.1f}% differs from the observed "
        f"default rate {100 * observed_rate:.1f}% by {abs(gap):.1f} pp: probabilities are "
        f"miscalibrated (it {way}-predicts defaults overall); its ranking (AUC, KS) may "
        "still hold, but do not use its PDs for pricing or provisioning without "
        "recalibrating"
    )


# --------------------------------------------------------------------------- calibration


def calibration_table(y_true, p, bins: int = 10) -> list[dict]:
    """Reliability table over equal-count bins of predicted probability.

    One row per bin, lowest predictions first (``bin`` counts from 1):
    ``bin, n, mean_predicted, observed_rate, min_p, max_p``. Uses at most
    ``len(p)`` bins so that no bin is empty.
    """
    bins = _check_bins(bins)
    y, p = _validate(y_true, p)
    ids, k = _rank_bins(p, bins)
    n = np.bincount(ids, minlength=k)
    mean_pred = np.bincount(ids, weights=p, minlength=k) / n
    observed = np.bincount(ids, weights=y, minlength=k) / n
    # Bins are contiguous runs of the sorted scores, so min/max sit at the run ends.
    sorted_p = np.sort(p, kind="stable")
    ends = np.cumsum(n)
    starts = ends - n
    return [
        {
            "bin": i + 1,
            "n": int(n[i]),
            "mean_predicted": float(mean_pred[i]),
            "observed_rate": float(observed[i]),
            "min_p": float(sorted_p[starts[i]]),
            "max_p": float(sorted_p[ends[i] - 1]),
        }
        for i in range(k)
    ]


def expected_calibration_error(y_true, p, bins: int = 10) -> float:
    """Count-weighted mean of ``|observed_rate - mean_predicted|`` over the
    equal-count bins of :func:`calibration_table`. 0 is perfect calibration."""
    table = calibration_table(y_true, p, bins)
    total = sum(row["n"] for row in table)
    return float(
        sum(row["n"] * abs(row["observed_rate"] - row["mean_predicted"]) for row in table) / total
    )


# --------------------------------------------------------------------------- gains / lift


def gains_table(y_true, p, bins: int = 10) -> list[dict]:
    """Gains (capture) table by score band, riskiest band first.

    Columns: ``decile`` (1 = highest predicted risk), ``n``, ``defaults``,
    ``default_rate``, ``cum_defaults_pct`` (percentage, 0-100, of all defaults
    captured in this and riskier bands) and ``lift`` (this band's default rate
    divided by the overall default rate). Needs at least one default.
    """
    bins = _check_bins(bins)
    y, p = _validate(y_true, p, need_defaults=True)
    ids, k = _rank_bins(p, bins, descending=True)
    n = np.bincount(ids, minlength=k)
    defaults = np.bincount(ids, weights=y, minlength=k).round().astype(np.int64)
    rate = defaults / n
    total_defaults = defaults.sum()
    capture = 100.0 * np.cumsum(defaults) / total_defaults
    lift = rate / (total_defaults / y.size)
    return [
        {
            "decile": i + 1,
            "n": int(n[i]),
            "defaults": int(defaults[i]),
            "default_rate": float(rate[i]),
            "cum_defaults_pct": float(capture[i]),
            "lift": float(lift[i]),
        }
        for i in range(k)
    ]


# --------------------------------------------------------------------------- stability


def population_stability_index(expected, actual, bins: int = 10, *, epsilon: float = 1e-4) -> float:
    """Population Stability Index of ``actual`` scores against ``expected`` ones.

    ``PSI = sum((a_i - e_i) * ln(a_i / e_i))`` over bins, where ``e_i``/``a_i``
    are the shares of each sample in bin ``i``. Bin edges are the expected
    sample's inner quantiles (deduplicated, so tied scores cannot make empty
    zero-width bins); the outer bins are open-ended so that actual scores
    outside the expected range still count. Empty bins get share ``epsilon``
    so the log stays finite.

    Usual reading (see :func:`psi_band`):

    * ``PSI < 0.1``          -- stable: no significant shift, no action;
    * ``0.1 <= PSI < 0.25``  -- moderate shift, monitor;
    * ``PSI >= 0.25``        -- major shift, investigate / retrain.

    Scores may be on any scale (probabilities, points, log-odds), as long as
    both samples use the same one.
    """
    bins = _check_bins(bins)
    if not (epsilon > 0):
        raise ValueError(f"epsilon must be positive, got {epsilon!r}")
    expected = _as_1d_finite(expected, "expected")
    actual = _as_1d_finite(actual, "actual")
    inner = np.quantile(expected, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    edges = np.unique(inner)
    # side="right": bin j holds [edges[j-1], edges[j]); bins 0 and -1 are open-ended.
    e_share = np.bincount(np.searchsorted(edges, expected, side="right"), minlength=edges.size + 1)
    a_share = np.bincount(np.searchsorted(edges, actual, side="right"), minlength=edges.size + 1)
    e_share = np.maximum(e_share / expected.size, epsilon)
    a_share = np.maximum(a_share / actual.size, epsilon)
    return float(np.sum((a_share - e_share) * np.log(a_share / e_share)))


def psi_band(value: float) -> str:
    """Name the PSI band: ``"stable"`` (< 0.1), ``"monitor"`` (< 0.25) or ``"shift"``."""
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"PSI must be a finite non-negative number, got {value!r}")
    if value < PSI_MONITOR:
        return "stable"
    if value < PSI_SHIFT:
        return "monitor"
    return "shift"
