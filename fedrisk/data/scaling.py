"""Robust feature scaling agreed across banks from securely summed histograms.

``data.scaling = "robust"`` clips every column at its 0.5 % and 99.5 % quantiles over all
banks' training rows, then z-scores the clipped column with the banks' summed moments.
No row leaves its bank: every bank computes *aggregates* of its own rows (histogram counts
over a grid every bank knows, then the count, sum and sum of squares of its clipped
columns) and only the element-wise sum over the banks is used — what one secure-sum round
(Paillier or SecAgg+ aggregation of the count vectors) would reveal. :func:`secure_sum` is
the one place per-bank aggregates meet; it accepts count or moment arrays, never rows.

The grid needs nobody's raw extremes. Values are mapped to ``t = asinh(x)``, which is
≈ x near 0 and ≈ ±ln(2|x|) far out, so a fixed range ``[-711, 711]`` covers every finite
float64. The agreement takes :data:`LEVELS` rounds:

1. a coarse histogram: :data:`COARSE_BINS` equal bins in t (each ≈ 1.39 wide, i.e. about a
   factor 4 in |x| for |x| > 1);
2. the bin holding the wanted order statistic is split into :data:`REFINE_BINS` sub-bins
   and the banks count again, inside that bin only; repeated once more.

The final bins are ``1422 / (1024 · 256 · 256) ≈ 2.1e-5`` wide in t (a relative 2e-5 of
the value for |x| > 1, absolute 2e-5 near 0): the agreed quantile is the order statistic
``x_(k)`` of the pooled training rows to that resolution, where
``k = floor(q_low·(n−1))`` for the low bound and ``ceil(q_high·(n−1))`` for the high one,
the two order statistics between which ``np.quantile`` interpolates. The low bound is the
*lower* edge of its final bin and the high bound the *upper* edge, so clipping never moves
a value equal to the quantile (integer columns keep their values).

What the sums reveal, to every bank (and to the aggregator under plaintext aggregation):
per column, the summed counts of the coarse grid — a coarse picture of the column's
distribution over all banks, which places the smallest and largest values to within a
coarse bin, never exactly — then counts inside the two bins holding the quantiles, then
the clipped columns' count, mean and variance. No per-bank count is revealed when the sum
is secure; the number of training rows is (it is the sum of the counts).

A column whose two quantiles fall in the same final bin (e.g. an indicator with fewer
than 0.5 % ones) is not clipped: clipping would make it constant and throw its signal
away. Such columns have bounds ``-inf`` / ``+inf`` (``null`` in model.json).

Why 0.5 % / 99.5 %: credit files carry a handful of extreme incomes, balances and ratios
(data errors, the very wealthy) far beyond the 99.5th percentile; they dominate a z-score
and the logistic fit. Clipping harder (1 % / 99 %) flattens legitimate tails where
defaulters concentrate (arrears, utilisation); at 0.5 % the clipped rows are ~1 in 100.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LOW_QUANTILE = 0.005
HIGH_QUANTILE = 0.995
T_LIMIT = 711.0  # asinh(max float64) ≈ 710.48
COARSE_BINS = 1024
REFINE_BINS = 256
LEVELS = 3  # the coarse pass and two refinements
_FINE_PER_COARSE = REFINE_BINS ** (LEVELS - 1)
FINE_BINS = COARSE_BINS * _FINE_PER_COARSE  # total number of final bins over [-T, T]
RESOLUTION = 2 * T_LIMIT / FINE_BINS  # width of a final bin in asinh space


def fine_index(X: np.ndarray) -> np.ndarray:
    """Each value's final-level bin on the common grid (int64, same shape as ``X``).

    Every level's bins are derived from this one integer, so the coarse bin of a value
    always contains its sub-bins (no float edge disagreements between the levels).
    """
    t = np.arcsinh(np.asarray(X, dtype=np.float64))
    g = np.floor((t + T_LIMIT) / RESOLUTION).astype(np.int64)
    return np.clip(g, 0, FINE_BINS - 1)


def bank_histogram(
    X: np.ndarray, starts: np.ndarray, step: int, bins: int, columns: np.ndarray
) -> np.ndarray:
    """One bank's counts, computed on its own rows: shape ``(len(starts), bins)``.

    Histogram ``h`` counts column ``columns[h]``'s values whose final-level index lies in
    ``[starts[h], starts[h] + bins·step)``, in ``bins`` bins of ``step`` final bins each.
    Vectorised: one ``np.bincount`` over all histograms at once.
    """
    g = fine_index(X)[:, columns]  # (n, H)
    offset = g - starts[None, :]
    k = offset // step
    inside = (offset >= 0) & (k < bins)
    h = np.broadcast_to(np.arange(len(starts)), k.shape)
    flat = h[inside] * bins + k[inside]
    return np.bincount(flat, minlength=len(starts) * bins).reshape(len(starts), bins)


def bank_moments(X: np.ndarray, low: np.ndarray, high: np.ndarray, centre: np.ndarray):
    """One bank's (count, Σ(x−c), Σ(x−c)²) of its clipped columns, ``c`` a public centre."""
    Z = np.clip(np.asarray(X, dtype=np.float64), low, high) - centre
    return np.array([Z.shape[0]] * Z.shape[1], dtype=np.float64), Z.sum(axis=0), (Z * Z).sum(0)


def secure_sum(per_bank: Sequence[np.ndarray]) -> np.ndarray:
    """The element-wise sum of the banks' aggregates: all a secure-sum round reveals.

    Takes one aggregate array per bank (histogram counts or moment vectors), all of the
    same shape; the result is the only thing the caller learns.
    """
    arrays = [np.asarray(a) for a in per_bank]
    if not arrays:
        raise ValueError("secure_sum needs at least one bank's aggregate")
    if any(a.shape != arrays[0].shape for a in arrays):
        raise ValueError("every bank's aggregate must have the same shape")
    return np.sum(arrays, axis=0)


def agreed_quantile_bins(parts: Sequence[np.ndarray], ranks: np.ndarray, columns: np.ndarray):
    """Final-level bin holding the order statistic ``ranks[h]`` (0-based) of column
    ``columns[h]`` over all parts' rows, found from summed histograms only."""
    starts = np.zeros(len(ranks), dtype=np.int64)
    within = np.asarray(ranks, dtype=np.int64).copy()
    span = FINE_BINS
    for level in range(LEVELS):
        bins = COARSE_BINS if level == 0 else REFINE_BINS
        step = span // bins
        counts = secure_sum([bank_histogram(X, starts, step, bins, columns) for X in parts])
        cum = np.cumsum(counts, axis=1)
        # first bin whose cumulative count exceeds the rank
        b = (cum <= within[:, None]).sum(axis=1)
        before = np.where(b > 0, cum[np.arange(len(b)), np.maximum(b - 1, 0)], 0)
        within = within - before
        starts = starts + b * step
        span = step
    return starts


@dataclass(frozen=True, eq=False)
class RobustScaler:
    """Clip at agreed quantiles, then z-score with the clipped columns' pooled moments.

    Immutable; ``RobustScaler.fit(parts)`` takes one training matrix per bank (or one
    matrix, for a party scaling its own columns) and returns a fitted instance.
    ``clip_low``/``clip_high`` may hold ``-inf``/``inf`` for columns left unclipped.
    """

    clip_low: np.ndarray | None = None
    clip_high: np.ndarray | None = None
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None

    @classmethod
    def fit(cls, parts: Sequence[np.ndarray] | np.ndarray) -> RobustScaler:
        if isinstance(parts, np.ndarray):
            parts = [parts]
        parts = [np.asarray(p, dtype=np.float64) for p in parts]
        if not parts or any(p.ndim != 2 for p in parts):
            raise ValueError("RobustScaler.fit needs one 2-D array per bank")
        d = parts[0].shape[1]
        if any(p.shape[1] != d for p in parts):
            raise ValueError("every bank's training rows must have the same columns")
        n = sum(p.shape[0] for p in parts)  # in a federation: the sum of the counts
        if n == 0:
            raise ValueError("RobustScaler.fit needs at least one training row")
        cols = np.arange(d)
        ranks = np.concatenate(
            [
                np.full(d, int(np.floor(LOW_QUANTILE * (n - 1)))),
                np.full(d, int(np.ceil(HIGH_QUANTILE * (n - 1)))),
            ]
        )
        g = agreed_quantile_bins(parts, ranks, np.concatenate([cols, cols]))
        g_low, g_high = g[:d], g[d:]
        low = np.sinh(g_low * RESOLUTION - T_LIMIT)
        high = np.sinh((g_high + 1) * RESOLUTION - T_LIMIT)
        keep = g_low == g_high  # clipping would leave a constant column
        # a public centre for the moments (no cancellation in Σx² − (Σx)²/n): the middle
        # of the clip range, or the one bin that holds 99 % of an unclipped column's rows
        centre = np.where(keep, low, (low + high) / 2)
        low[keep], high[keep] = -np.inf, np.inf
        totals = [secure_sum(m) for m in zip(*(bank_moments(p, low, high, centre) for p in parts))]
        count, s1, s2 = totals
        shift = s1 / count
        mean = centre + shift
        scale = np.sqrt(np.maximum(s2 / count - shift**2, 0.0))
        scale[scale <= 1e-12 * np.maximum(1.0, np.abs(mean))] = 1.0
        for a in (low, high, mean, scale):
            a.setflags(write=False)
        return cls(low, high, mean, scale)

    def clip(self, X: np.ndarray) -> np.ndarray:
        if self.clip_low is None or self.clip_high is None:
            raise ValueError("RobustScaler is not fitted; use RobustScaler.fit(parts) first")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.clip_low.size:
            raise ValueError(f"expected shape (n, {self.clip_low.size}), got {X.shape}")
        return np.clip(X, self.clip_low, self.clip_high)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (self.clip(X) - self.mean) / self.scale


def fit_party_scaler(X: np.ndarray, scaling: str) -> RobustScaler:
    """A vertical party's scaling of its own columns on its own training rows, alone.

    In a vertical federation every party holds its own features, so nothing is summed
    across parties: ``"robust"`` clips at the party's own quantiles (the same grid and
    rule as the banks', with one part), anything else z-scores without clipping — the
    fixed-point encoding of the encrypted protocol needs features on a unit scale, so a
    vertical run always z-scores (``"none"`` means ``"zscore"`` there).
    """
    X = np.asarray(X, dtype=np.float64)
    if scaling == "robust":
        return RobustScaler.fit([X])
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"fit_party_scaler needs a non-empty 2-D array, got shape {X.shape}")
    mean = X.mean(axis=0)
    scale = X.std(axis=0)  # as Standardizer: population std, constant columns get 1
    scale[scale <= 1e-12 * np.maximum(1.0, np.abs(mean))] = 1.0
    low, high = np.full(X.shape[1], -np.inf), np.full(X.shape[1], np.inf)
    for a in (low, high, mean, scale):
        a.setflags(write=False)
    return RobustScaler(low, high, mean, scale)


__all__ = [
    "fit_party_scaler",
    "HIGH_QUANTILE",
    "LOW_QUANTILE",
    "RESOLUTION",
    "RobustScaler",
    "agreed_quantile_bins",
    "bank_histogram",
    "bank_moments",
    "secure_sum",
]
