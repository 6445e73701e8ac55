"""Scorecard binning, weight of evidence (WOE) and information value (IV) from counts only.

A federation of banks cannot pool rows, but it can sum count vectors: each bank histograms
its own rows over a grid every party knows, and only the element-wise sum over banks is ever
seen. So every function here that *chooses* bin edges works from count histograms over a
fixed grid, never from raw values; raw values are only ever *mapped* to grid cells or bins.
One party holding a whole column (:func:`fit_numeric`, :func:`fit_categorical`) runs the very
same functions on its own histogram, so on the same rows it gets exactly the federated result.

**The grid.** One fixed grid serves every numeric column without anyone revealing a minimum or
a maximum: ``GRID_CELLS`` equal cells in ``t = asinh(x)`` over ``[-GRID_LIMIT, GRID_LIMIT]``,
values beyond clamped into the end cells. asinh is ≈ x near 0 and ≈ ln(2|x|) far out, so the
resolution is ≈ 0.018 absolute near 0 and ≈ 1.8 % relative for |x| > 1 (integers 0..45 each
have their own cell). A numeric binning is a strictly increasing array of *edge cells*
``cuts``: bin k holds the cells ``cuts[k-1] <= cell < cuts[k]``. Raw values are assigned
through :func:`grid_cells`, never by float comparisons with the displayed edge values
(:func:`cell_lower`, for labels only), so a federated count and a pooled one always agree.

**Conventions.**

- y = 1 is a default ("bad"), y = 0 a "good".
- WOE (Siddiqi; positive = lower risk) ``woe_i = ln((good_i/G) / (bad_i/B))``,
  ``IV = Σ (good_i/G − bad_i/B) · woe_i``. When a bin of a characteristic has customers but
  no goods or no bads, 0.5 is added to the goods and the bads of every populated bin of that
  characteristic (G and B are then the sums of the adjusted counts). A bin with no customers
  at all (the missing bin when nothing is missing) has WOE 0, adds 0 to IV and is not smoothed.
- Missing values (numeric NaN, categorical "" after stripping) always have their own bin, the
  last one (index = number of regular bins). ``max_bins`` counts regular bins only.
- "ascending" means the bad rate rises with the value (so WOE falls).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.stats import rankdata

__all__ = [
    "GRID_CELLS",
    "Binning",
    "BinningParams",
    "WoeTable",
    "same_bins",
    "select",
    "small_missing_to",
    "stability_index",
    "woe_table",
    "GRID_LIMIT",
    "METHODS",
    "MONOTONIC",
    "CategoricalBinning",
    "NumericBinning",
    "bin_counts",
    "bin_shares",
    "categorical_groups",
    "category_counts",
    "cell_histogram",
    "cell_lower",
    "equal_width_cuts",
    "fit_categorical",
    "fit_numeric",
    "grid_cells",
    "merge_cuts",
    "merge_small_bins",
    "monotone_merge",
    "numeric_cuts",
    "quantile_cuts",
    "woe_iv",
]

GRID_LIMIT = 36.0  # |asinh(x)| range covered; values beyond are clamped into the end cells
GRID_CELLS = 4096  # equal cells in t = asinh(x) over [-GRID_LIMIT, GRID_LIMIT]
# 72/4096 = 9/512: a dyadic step, so every cell boundary -L + c·Δ is an exact float
_STEP = 2.0 * GRID_LIMIT / GRID_CELLS

METHODS = ("quantile", "equal_width", "optimal")
MONOTONIC = ("ascending", "descending", "none", "auto")


# --- the grid ----------------------------------------------------------------------------


def grid_cells(x: np.ndarray) -> np.ndarray:
    """Grid cell (int64, same shape) of each value; NaN -> -1, ±inf -> the end cells."""
    x = np.asarray(x, dtype=np.float64)
    missing = np.isnan(x)
    t = np.arcsinh(np.where(missing, 0.0, x))
    # clip before the cast: inf (and anything past the limit) must not reach astype
    cell = np.clip(np.floor((t + GRID_LIMIT) / _STEP), 0, GRID_CELLS - 1).astype(np.int64)
    return np.where(missing, np.int64(-1), cell)


def _boundary_values(cells: np.ndarray) -> np.ndarray:
    """Finite value sinh(-L + c·Δ) of grid boundaries c in 0..GRID_CELLS (ends not infinite)."""
    return np.sinh(-GRID_LIMIT + np.asarray(cells, dtype=np.float64) * _STEP)


def cell_lower(cells: np.ndarray) -> np.ndarray:
    """Lower boundary value sinh(-L + c·Δ) of each cell: the displayed edge of a cut at ``c``.

    Cell 0 gives -inf and ``GRID_CELLS`` (one past the last cell) +inf, since the end cells
    hold everything beyond the grid. For labels only: assign values with :func:`grid_cells`.
    """
    c = np.asarray(cells, dtype=np.int64)
    if np.any((c < 0) | (c > GRID_CELLS)):
        raise ValueError(f"grid cells must lie in 0..{GRID_CELLS}")
    v = _boundary_values(c)
    v = np.where(c == 0, -np.inf, v)
    return np.where(c == GRID_CELLS, np.inf, v)


def cell_histogram(x: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    """Counts of one numeric column over the grid, the last entry counting missing values.

    Without labels: shape ``(GRID_CELLS + 1,)``. With labels: ``(2, GRID_CELLS + 1)``, row 0
    the goods (y == 0), row 1 the bads (y == 1). Banks sum these element-wise.
    """
    cells = grid_cells(np.ravel(x))
    idx = np.where(cells < 0, GRID_CELLS, cells)  # missing -> the extra last entry
    width = GRID_CELLS + 1
    if y is None:
        return np.bincount(idx, minlength=width).astype(np.int64)
    labels = _labels(y, len(idx))
    return np.bincount(idx + width * labels, minlength=2 * width).reshape(2, width)


def _labels(y: np.ndarray, n: int) -> np.ndarray:
    """y as int64 0/1, checked."""
    y = np.ravel(np.asarray(y))
    if len(y) != n:
        raise ValueError(f"{len(y)} labels for {n} values")
    if len(y) and not np.all((y == 0) | (y == 1)):
        raise ValueError("labels must be 0 (good) or 1 (bad)")
    return y.astype(np.int64)


def _check_counts(
    counts: np.ndarray, shape_tail: int, what: str, one_d: bool = False
) -> np.ndarray:
    counts = np.asarray(counts)
    if counts.ndim < 1 or counts.shape[-1] != shape_tail or (one_d and counts.ndim != 1):
        raise ValueError(f"{what} must end in an axis of length {shape_tail}, got {counts.shape}")
    if np.any(counts < 0):
        raise ValueError(f"{what} must be non-negative")
    return counts


def _check_max_bins(max_bins: int) -> int:
    if int(max_bins) != max_bins or max_bins < 1:
        raise ValueError(f"max_bins must be a positive integer, got {max_bins!r}")
    return int(max_bins)


# --- edges from a pooled histogram ---------------------------------------------------------


def quantile_cuts(counts: np.ndarray, max_bins: int) -> np.ndarray:
    """Cuts giving up to ``max_bins`` bins of about equal counts, from ``(GRID_CELLS,)`` counts
    of non-missing values.

    For the k-th boundary (target k/max_bins of the total) let c be the first cell at which the
    cumulative count reaches the target. The cut goes either at c (cell c starts the upper bin)
    or just after c (at the next occupied cell), whichever leaves the count below the cut nearer
    the target (ties: at c). That choice lets a heavy cell stay whole and still be cut off:
    a 0/1 indicator gets 2 bins however rare the 1s are. Cuts at the first occupied cell and
    repeated cuts are dropped, so a column with few distinct cells gets fewer bins and a
    constant column one bin (no cuts).
    """
    counts = _check_counts(counts, GRID_CELLS, "counts", one_d=True)
    max_bins = _check_max_bins(max_bins)
    occupied = np.flatnonzero(counts > 0)
    if len(occupied) < 2 or max_bins < 2:
        return np.zeros(0, dtype=np.int64)
    cum = np.cumsum(counts)
    total = cum[-1]
    # compare cum·m with k·total: exact in integers, no rounding of k/m
    targets = np.arange(1, max_bins) * total
    c = np.searchsorted(cum * max_bins, targets, side="left")
    below_at_c = (cum[c] - counts[c]) * max_bins  # count below a cut at c (scaled)
    below_after = cum[c] * max_bins  # count below a cut just after c (scaled)
    pos = np.searchsorted(occupied, c)
    has_next = pos + 1 < len(occupied)
    nxt = occupied[np.minimum(pos + 1, len(occupied) - 1)]
    go_after = has_next & (np.abs(below_after - targets) < np.abs(targets - below_at_c))
    cuts = np.where(go_after, nxt, c)
    cuts = np.unique(cuts[cuts > occupied[0]])
    return cuts.astype(np.int64)


def equal_width_cuts(counts: np.ndarray, max_bins: int) -> np.ndarray:
    """Cuts of ``max_bins`` equal widths in value space, from ``(GRID_CELLS,)`` counts.

    The range runs from the lower boundary of the first occupied cell to the upper boundary of
    the last occupied one (finite at the grid's ends). Each inner boundary snaps to the nearest
    grid cell boundary in value; duplicates go, and a bin left empty (outliers far from the bulk
    leave some) merges into its lower neighbour, so every regular bin has customers.
    """
    counts = _check_counts(counts, GRID_CELLS, "counts", one_d=True)
    max_bins = _check_max_bins(max_bins)
    occupied = np.flatnonzero(counts > 0)
    if len(occupied) < 2 or max_bins < 2:
        return np.zeros(0, dtype=np.int64)
    first, last = int(occupied[0]), int(occupied[-1])
    lo, hi = _boundary_values(np.array([first, last + 1]))
    values = lo + (hi - lo) * np.arange(1, max_bins) / max_bins
    # the boundaries on either side of each value, then the nearer of the two in value
    below = np.floor((np.arcsinh(values) + GRID_LIMIT) / _STEP).astype(np.int64)
    below = np.clip(below, first, last + 1)
    above = np.minimum(below + 1, last + 1)
    nearer_above = np.abs(_boundary_values(above) - values) < np.abs(
        values - _boundary_values(below)
    )
    cuts = np.where(nearer_above, above, below)
    cuts = np.unique(cuts[(cuts > first) & (cuts <= last)])
    # keep a cut only if the bin it starts has customers: an empty bin joins the one below
    cum = np.concatenate([[0], np.cumsum(counts)])
    ends = np.append(cuts[1:], GRID_CELLS)
    return cuts[cum[ends] - cum[cuts] > 0].astype(np.int64)


def merge_cuts(cuts: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """The cuts separating ``groups``: consecutive runs of the bin indices of ``cuts`` (as
    :func:`monotone_merge` returns them) covering all ``len(cuts) + 1`` bins in order."""
    cuts = np.asarray(cuts, dtype=np.int64)
    flat = [i for g in groups for i in g]
    if flat != list(range(len(cuts) + 1)) or any(len(g) == 0 for g in groups):
        raise ValueError(f"groups must cover bins 0..{len(cuts)} in order, in non-empty runs")
    # group g+1 starts at bin s; the cut below bin s is cuts[s - 1]
    return cuts[[g[0] - 1 for g in groups[1:]]].astype(np.int64)


def _check_cuts(cuts: np.ndarray) -> np.ndarray:
    cuts = np.asarray(cuts, dtype=np.int64).ravel()
    if len(cuts) and (cuts[0] <= 0 or cuts[-1] >= GRID_CELLS or np.any(np.diff(cuts) <= 0)):
        raise ValueError(f"cuts must be strictly increasing cells in (0, {GRID_CELLS})")
    return cuts


def bin_counts(counts2: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Per-bin counts from per-cell counts: ``(2, GRID_CELLS + 1)`` goods/bads per cell (last
    column missing) -> ``(2, len(cuts) + 2)`` goods/bads per regular bin, the missing bin last.

    Any leading shape works (a single ``(GRID_CELLS + 1,)`` histogram too).
    """
    counts2 = _check_counts(counts2, GRID_CELLS + 1, "counts2")
    cuts = _check_cuts(cuts)
    regular = counts2[..., :GRID_CELLS]
    zero = np.zeros(regular.shape[:-1] + (1,), dtype=regular.dtype)
    cum = np.concatenate([zero, np.cumsum(regular, axis=-1)], axis=-1)
    bounds = np.concatenate([[0], cuts, [GRID_CELLS]])
    per_bin = cum[..., bounds[1:]] - cum[..., bounds[:-1]]
    return np.concatenate([per_bin, counts2[..., GRID_CELLS:]], axis=-1)


# --- WOE and IV ------------------------------------------------------------------------------


def _woe_iv_rows(good: np.ndarray, bad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WOE and IV terms of every row of ``(rows, bins)`` counts: one characteristic per row."""
    good = np.asarray(good, dtype=np.float64)
    bad = np.asarray(bad, dtype=np.float64)
    populated = (good + bad) > 0
    smooth = np.any(populated & ((good == 0) | (bad == 0)), axis=-1, keepdims=True)
    s = np.where(smooth, 0.5, 0.0)
    g = np.where(populated, good + s, 0.0)
    b = np.where(populated, bad + s, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        pg = g / g.sum(axis=-1, keepdims=True)
        pb = b / b.sum(axis=-1, keepdims=True)
        woe = np.where(populated, np.log(pg / pb), 0.0)
        iv = np.where(populated, (pg - pb) * woe, 0.0)
    return woe, iv


def _good_bad(good, bad) -> tuple[np.ndarray, np.ndarray]:
    """Goods and bads per bin as float arrays, checked: 1-d, one of each per bin, ≥ 0."""
    good = np.asarray(good, dtype=np.float64)
    bad = np.asarray(bad, dtype=np.float64)
    if good.shape != bad.shape or good.ndim != 1:
        raise ValueError("good and bad must be 1-d arrays of the same length")
    if np.any(good < 0) or np.any(bad < 0):
        raise ValueError("counts must be non-negative")
    return good, bad


def woe_iv(good: np.ndarray, bad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin WOE and per-bin IV terms (their sum is the characteristic's IV).

    ``woe_i = ln((good_i/G) / (bad_i/B))``, positive = lower risk. If any bin with customers
    has no goods or no bads, 0.5 is added to the goods and bads of every bin with customers,
    and G, B are the sums of those adjusted counts. Empty bins: WOE 0, IV term 0, not smoothed.
    """
    good, bad = _good_bad(good, bad)
    woe, iv = _woe_iv_rows(good[None, :], bad[None, :])
    return woe[0], iv[0]


def _adjacent_merge_ivs(good: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """Total IV after merging each adjacent pair (p, p+1), for p = 0..k-2, all at once.

    Row p of the candidate matrix is the bins with p and p+1 summed; smoothing is decided per
    candidate, as :func:`woe_iv` would decide it for that binning.
    """
    k = len(good)
    p = np.arange(k - 1)[:, None]
    j = np.arange(k - 1)[None, :]
    src = np.where(j <= p, j, j + 1)  # column j of row p reads bin j (j <= p) or j + 1

    def candidates(v: np.ndarray) -> np.ndarray:
        m = v[src]
        m[np.arange(k - 1), np.arange(k - 1)] += v[1:]  # the merged bin p also takes p + 1
        return m

    _, iv = _woe_iv_rows(candidates(good), candidates(bad))
    return iv.sum(axis=1)


# --- merging ---------------------------------------------------------------------------------


class _Bins:
    """Adjacent bins being merged: goods, bads and the prebin (or category) indices of each."""

    def __init__(self, good: np.ndarray, bad: np.ndarray, groups: list[list[int]]) -> None:
        self.good = np.asarray(good, dtype=np.float64).copy()
        self.bad = np.asarray(bad, dtype=np.float64).copy()
        self.groups = [list(g) for g in groups]

    def __len__(self) -> int:
        return len(self.good)

    @property
    def total(self) -> np.ndarray:
        return self.good + self.bad

    def rates(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.bad / self.total  # NaN for an empty bin

    def merge(self, i: int) -> None:
        """Merge bin i + 1 into bin i."""
        self.good[i] += self.good[i + 1]
        self.bad[i] += self.bad[i + 1]
        self.groups[i] += self.groups[i + 1]
        self.good = np.delete(self.good, i + 1)
        self.bad = np.delete(self.bad, i + 1)
        del self.groups[i + 1]

    def iv(self) -> float:
        return float(woe_iv(self.good, self.bad)[1].sum())

    def merge_least_iv_loss(self) -> int:
        """Merge the adjacent pair whose merge keeps the most IV (ties: the first pair)."""
        p = int(np.argmax(_adjacent_merge_ivs(self.good, self.bad)))
        self.merge(p)
        return p


def _closer_neighbour(bins: _Bins, j: int) -> int:
    """Index of the neighbour of bin j with the closer bad rate; ties (or an empty bin j): the
    neighbour with fewer customers, then the left one."""
    if j == 0:
        return 1
    if j == len(bins) - 1:
        return j - 1
    r = bins.rates()
    left, right = abs(r[j - 1] - r[j]), abs(r[j + 1] - r[j])
    if left < right:
        return j - 1
    if right < left:
        return j + 1
    n = bins.total
    return j + 1 if n[j + 1] < n[j - 1] else j - 1


def _enforce_min_shares(bins: _Bins, min_bin_share: float, min_bad_share: float) -> None:
    """Merge until every bin has >= min_bin_share of customers, >= min_bad_share of bads and at
    least one good and one bad (or a single bin is left). Smallest violating bin first."""
    all_customers = float(bins.total.sum())
    all_bads = float(bins.bad.sum())
    while len(bins) > 1:
        n = bins.total
        bad_bins = (
            (n < min_bin_share * all_customers)
            | (bins.bad < min_bad_share * all_bads)
            | (bins.good < 1)
            | (bins.bad < 1)
        )
        if not bad_bins.any():
            return
        cand = np.flatnonzero(bad_bins)
        j = int(cand[np.argmin(n[cand])])  # argmin: lowest index among equally small
        k = _closer_neighbour(bins, j)
        bins.merge(min(j, k))


def _pool_adjacent_violators(bins: _Bins, ascending: bool) -> _Bins:
    """Merge adjacent bins until the bad rate is strictly monotone (pool adjacent violators).

    Rates compare by cross-multiplication (b1·n2 vs b2·n1), free of division rounding.
    """
    good: list[float] = []
    bad: list[float] = []
    groups: list[list[int]] = []
    for g, b, grp in zip(bins.good, bins.bad, bins.groups):
        good.append(float(g))
        bad.append(float(b))
        groups.append(list(grp))
        while len(good) > 1:
            # last block's rate vs the previous block's: b_last/n_last vs b_prev/n_prev
            lhs = bad[-1] * (good[-2] + bad[-2])
            rhs = bad[-2] * (good[-1] + bad[-1])
            if (lhs > rhs) if ascending else (lhs < rhs):
                break
            # pop first: an index of -2 would be re-read after the pop
            g_last, b_last, grp_last = good.pop(), bad.pop(), groups.pop()
            good[-1] += g_last
            bad[-1] += b_last
            groups[-1] += grp_last
    return _Bins(np.array(good), np.array(bad), groups)


def _spearman_sign(rates: np.ndarray) -> float:
    """Sign of Spearman's correlation between bin index and bad rate (0 when undefined)."""
    if len(rates) < 2 or np.ptp(rates) == 0:
        return 0.0
    a = rankdata(np.arange(len(rates))) - (len(rates) + 1) / 2
    r = rankdata(rates)
    return float(np.sign(np.dot(a, r - r.mean())))


def monotone_merge(
    good: np.ndarray,
    bad: np.ndarray,
    *,
    max_bins: int,
    min_bin_share: float,
    min_bad_share: float,
    monotonic: str,
) -> list[list[int]]:
    """ "Optimal" binning: merge adjacent prebins (regular bins only) into at most ``max_bins``
    bins. Returns the groups, consecutive runs of prebin indices covering all prebins in order.

    1. Every bin must hold >= ``min_bin_share`` of all customers, >= ``min_bad_share`` of all
       defaulters and at least one good and one bad: the smallest violating bin merges with the
       neighbour of closer bad rate, until none violates or one bin is left.
    2. The bad rate must be strictly monotone: "ascending" (rises with the value),
       "descending", "none" (skip), or "auto": the direction whose final binning (after step 3)
       has the larger IV; on a tie, the sign of Spearman's correlation between bin index and bad
       rate after step 1 (ascending when it is 0). Pool-adjacent-violators merging.
    3. While there are more than ``max_bins`` bins, merge the adjacent pair losing the least IV
       (a merged rate lies between its parts, so monotonicity survives).

    Deterministic; ties go to the lower index.
    """
    good, bad = _good_bad(good, bad)
    max_bins = _check_max_bins(max_bins)
    _check_share(min_bin_share, "min_bin_share")
    _check_share(min_bad_share, "min_bad_share")
    if monotonic not in MONOTONIC:
        raise ValueError(f"monotonic must be one of {', '.join(MONOTONIC)}, got {monotonic!r}")
    if len(good) == 0:
        return []

    bins = _Bins(good, bad, [[i] for i in range(len(good))])
    _enforce_min_shares(bins, min_bin_share, min_bad_share)

    def finish(b: _Bins) -> _Bins:
        while len(b) > max_bins:
            b.merge_least_iv_loss()
        return b

    if monotonic == "none":
        return finish(bins).groups
    if monotonic != "auto":
        return finish(_pool_adjacent_violators(bins, monotonic == "ascending")).groups
    up = finish(_pool_adjacent_violators(bins, ascending=True))
    down = finish(_pool_adjacent_violators(bins, ascending=False))
    iv_up, iv_down = up.iv(), down.iv()
    if abs(iv_up - iv_down) <= 1e-12 * max(1.0, iv_up, iv_down):
        return (down if _spearman_sign(bins.rates()) < 0 else up).groups
    return (up if iv_up > iv_down else down).groups


def _check_share(share: float, what: str) -> None:
    if not 0.0 <= share < 1.0:
        raise ValueError(f"{what} must lie in [0, 1), got {share!r}")


def categorical_groups(
    categories: list[str],
    good: np.ndarray,
    bad: np.ndarray,
    *,
    max_bins: int,
    min_bin_share: float,
) -> tuple[list[list[str]], int]:
    """Group the categories of a text characteristic (missing "" is not one: the caller gives it
    its own bin). Returns the groups and the index of the group for categories unseen at fit.

    Each category starts as its own bin. Categories with a share of all customers below
    ``min_bin_share`` (or no customers) merge into one rare bin; if that bin is itself below
    ``min_bin_share`` (and other bins exist) it merges into the bin of closest bad rate (ties:
    the largest, then the first). Bins are then ordered by bad rate, lowest risk first (ties:
    input order), and while more than ``max_bins`` remain the adjacent pair in that order
    losing the least IV merges. Unseen categories go to the bin holding the rare categories if
    any were rare, else to the largest bin. Categories inside a group keep the input order.
    """
    good = np.asarray(good, dtype=np.float64)
    bad = np.asarray(bad, dtype=np.float64)
    k = len(categories)
    if good.shape != (k,) or bad.shape != (k,):
        raise ValueError("good and bad need one count per category")
    if np.any(good < 0) or np.any(bad < 0):
        raise ValueError("counts must be non-negative")
    if len(set(categories)) != k or any(c.strip() != c or c == "" for c in categories):
        raise ValueError("categories must be distinct, stripped and non-empty")
    max_bins = _check_max_bins(max_bins)
    _check_share(min_bin_share, "min_bin_share")
    if k == 0:
        return [], 0

    n = good + bad
    everyone = float(n.sum())
    rare = (n < min_bin_share * everyone) | (n == 0)
    kept = np.flatnonzero(~rare)
    groups = [[int(i)] for i in kept]
    g, b = list(good[kept]), list(bad[kept])
    holder = None  # the bin holding the rare categories
    if rare.any():
        r_idx = np.flatnonzero(rare)
        rg, rb = float(good[r_idx].sum()), float(bad[r_idx].sum())
        too_small = rg + rb < min_bin_share * everyone or rg + rb == 0
        if too_small and groups:
            sizes = np.add(g, b)
            if rg + rb > 0:
                dist = np.abs(np.divide(b, sizes) - rb / (rg + rb))
                order = np.lexsort((np.arange(len(groups)), -sizes, dist))
            else:
                order = np.lexsort((np.arange(len(groups)), -sizes))
            holder = int(order[0])
            groups[holder] = sorted(groups[holder] + [int(i) for i in r_idx])
            g[holder] += rg
            b[holder] += rb
        else:
            groups.append([int(i) for i in r_idx])
            g.append(rg)
            b.append(rb)
            holder = len(groups) - 1

    # order by bad rate (an all-empty single bin has no rate: 0 keeps it in place)
    gg, bb = np.array(g), np.array(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = np.nan_to_num(bb / (gg + bb))
    first = np.array([grp[0] for grp in groups])
    order = np.lexsort((first, rates))
    bins = _Bins(gg[order], bb[order], [groups[i] for i in order])
    if holder is not None:
        holder = int(np.flatnonzero(order == holder)[0])
    while len(bins) > max_bins:
        p = bins.merge_least_iv_loss()
        if holder is not None and holder > p:
            holder -= 1  # bins p and p + 1 became bin p; everything above moved down one
    if holder is None:
        holder = int(np.argmax(bins.total))  # argmax: the first of equally large bins
    named = [[categories[i] for i in sorted(grp)] for grp in bins.groups]
    return named, holder


# --- binnings --------------------------------------------------------------------------------


def _fmt(v: float) -> str:
    return f"{v:.6g}"  # the same text as %.6g


@dataclass(frozen=True)
class NumericBinning:
    """A numeric characteristic's bins: grid edge cells, plus the missing bin last."""

    name: str
    cuts: tuple[int, ...]  # grid edge cells
    missing_to: int | None = None  # a regular bin missing values join (too few for one)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cuts", tuple(int(c) for c in _check_cuts(self.cuts)))
        _check_missing_to(self.missing_to, len(self.cuts) + 1)

    def n_bins(self) -> int:
        """Regular bins plus the missing bin."""
        return len(self.cuts) + 2

    def assign(self, x: np.ndarray) -> np.ndarray:
        """Bin index of each value (through its grid cell); NaN -> the last (missing) bin."""
        cells = grid_cells(x)
        idx = np.searchsorted(np.asarray(self.cuts, dtype=np.int64), cells, side="right")
        missing = len(self.cuts) + 1 if self.missing_to is None else self.missing_to
        return np.where(cells < 0, missing, idx).astype(np.int64)

    def edges(self) -> list[float]:
        """Displayed edge values (lower boundary of each cut cell); for labels, not assignment."""
        return [float(v) for v in cell_lower(np.asarray(self.cuts, dtype=np.int64))]

    def labels(self) -> list[str]:
        """ "< a", "[a, b)", ..., ">= z", then "missing" ("not missing" when there are no cuts)."""
        e = [_fmt(v) for v in self.edges()]
        if not e:
            return _with_missing(["not missing", "missing"], self.missing_to)
        inner = [f"[{a}, {b})" for a, b in zip(e[:-1], e[1:])]
        return _with_missing([f"< {e[0]}", *inner, f">= {e[-1]}", "missing"], self.missing_to)


def _check_missing_to(missing_to: int | None, regular: int) -> None:
    if missing_to is not None and not 0 <= missing_to < regular:
        raise ValueError(f"missing_to must index one of the {regular} regular bins")


def _with_missing(labels: list[str], missing_to: int | None) -> list[str]:
    if missing_to is None:
        return labels
    labels[missing_to] += " or missing"
    labels[-1] = f"missing (in bin {missing_to + 1})"
    return labels


def same_bins(a: Binning, b: Binning) -> bool:
    """Whether two binnings put every value in the same bin up to the bins' order (the
    federated and pooled text bins differ only in how their groups are numbered)."""
    if isinstance(a, NumericBinning) or isinstance(b, NumericBinning):
        return a == b
    if a.name != b.name or len(a.groups) != len(b.groups):
        return False

    def canon(x: CategoricalBinning) -> tuple:
        sets = [frozenset(g) for g in x.groups]
        pick = lambda i: None if i is None else sets[i]  # noqa: E731
        return set(sets), sets[x.unseen] if sets else None, pick(x.missing_to)

    return canon(a) == canon(b)


def small_missing_to(counts: np.ndarray, min_bin_share: float) -> int | None:
    """Where missing values go when too few to make a bin of their own: ``counts`` per
    bin (missing last); a missing bin holding fewer than ``min_bin_share`` of the
    customers (but some) joins the largest regular bin (ties: the first). By count only,
    so every party that knows the counts decides it alike; a missing bin that small
    would otherwise tell a vertical data party, who knows whose values are missing,
    those customers' default rate."""
    counts = np.asarray(counts, dtype=np.int64)
    missing, total = int(counts[-1]), int(counts.sum())
    if missing == 0 or missing >= min_bin_share * total or len(counts) < 2:
        return None
    return int(np.argmax(counts[:-1]))


def _clean_text(values: np.ndarray) -> np.ndarray:
    """Values as stripped str; None and float NaN become "" (missing)."""
    arr = np.asarray(values)
    if arr.dtype.kind == "O":
        flat = ["" if v is None or (isinstance(v, float) and v != v) else str(v) for v in arr.flat]
        arr = np.array(flat, dtype=str).reshape(arr.shape)
    return np.char.strip(arr.astype(str))


@dataclass(frozen=True)
class CategoricalBinning:
    """A text characteristic's bins: groups of categories, plus the missing bin last.

    ``unseen``: the bin of categories not seen at fit time (with no groups at all, 0: the
    missing bin, the only one).
    """

    name: str
    groups: tuple[tuple[str, ...], ...]
    unseen: int  # bin for categories not seen at fit time
    missing_to: int | None = None  # a regular bin missing values join (too few for one)

    def __post_init__(self) -> None:
        groups = tuple(tuple(str(c) for c in g) for g in self.groups)
        object.__setattr__(self, "groups", groups)
        flat = [c for g in groups for c in g]
        if len(set(flat)) != len(flat) or "" in flat or any(len(g) == 0 for g in groups):
            raise ValueError("groups must be non-empty, disjoint and hold no empty category")
        if not 0 <= self.unseen < max(len(groups), 1):
            raise ValueError(f"unseen must index one of the {len(groups)} groups")
        _check_missing_to(self.missing_to, len(groups))

    def n_bins(self) -> int:
        """Groups plus the missing bin."""
        return len(self.groups) + 1

    def assign(self, values: np.ndarray) -> np.ndarray:
        """Bin index of each value (stripped); "" -> the last (missing) bin."""
        text = _clean_text(values)
        lookup = {c: i for i, g in enumerate(self.groups) for c in g}
        lookup[""] = len(self.groups) if self.missing_to is None else self.missing_to
        uniq, inv = np.unique(text.ravel(), return_inverse=True)
        codes = np.array([lookup.get(u, self.unseen) for u in uniq], dtype=np.int64)
        return codes[inv.ravel()].reshape(text.shape)

    def labels(self) -> list[str]:
        """ "name in {a, b}" per group, then "missing"."""
        labels = [f"{self.name} in {{{', '.join(g)}}}" for g in self.groups] + ["missing"]
        return _with_missing(labels, self.missing_to)


# --- one party holding the whole column ------------------------------------------------------


def merge_small_bins(counts: np.ndarray, cuts: np.ndarray, min_bin_share: float) -> np.ndarray:
    """Cuts without a bin holding fewer than ``min_bin_share`` of the (non-missing)
    customers: the smallest such bin joins its smaller neighbour (ties: the left one),
    until none is left. By count only, as the quantile and equal-width methods choose
    their cuts; a bin of a handful of customers would give a vertical data party, who
    knows who is in it, their default rate (:mod:`fedrisk.vertical.binning`)."""
    counts = np.asarray(counts, dtype=np.int64)
    cuts = [int(c) for c in cuts]
    cum = np.concatenate([[0], np.cumsum(counts)])
    total = int(cum[-1])
    while cuts and total:
        edges = np.array([0, *cuts, GRID_CELLS])
        per = cum[edges[1:]] - cum[edges[:-1]]
        small = np.flatnonzero(per < min_bin_share * total)
        if not small.size:
            break
        j = int(small[np.argmin(per[small])])
        if j == 0:
            del cuts[0]
        elif j == len(per) - 1 or per[j - 1] <= per[j + 1]:
            del cuts[j - 1]
        else:
            del cuts[j]
    return np.array(cuts, dtype=np.int64)


def numeric_cuts(
    hist: np.ndarray,
    *,
    method: str,
    max_bins: int,
    min_bin_share: float,
    min_bad_share: float,
    monotonic: str,
    prebins: int = 50,
) -> np.ndarray:
    """Edge cells from a (summed) :func:`cell_histogram`: what a federation computes on the sum
    of the banks' histograms and :func:`fit_numeric` on one party's own.

    ``hist``: ``(GRID_CELLS + 1,)`` (labels unknown; "quantile" and "equal_width" only) or
    ``(2, GRID_CELLS + 1)`` goods/bads. "optimal" = :func:`quantile_cuts` with ``prebins``,
    :func:`monotone_merge`, :func:`merge_cuts`; the shares, ``monotonic`` and ``prebins`` are
    used by "optimal" only.
    """
    hist = _check_counts(hist, GRID_CELLS + 1, "hist")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if hist.ndim not in (1, 2) or (hist.ndim == 2 and hist.shape[0] != 2):
        raise ValueError(f"hist must have shape ({GRID_CELLS + 1},) or (2, {GRID_CELLS + 1})")
    counts = (hist if hist.ndim == 1 else hist.sum(axis=0))[:GRID_CELLS]
    if method == "quantile":
        return merge_small_bins(counts, quantile_cuts(counts, max_bins), min_bin_share)
    if method == "equal_width":
        return merge_small_bins(counts, equal_width_cuts(counts, max_bins), min_bin_share)
    if hist.ndim != 2:
        raise ValueError('method "optimal" needs labels: goods and bads per cell')
    pre = quantile_cuts(counts, prebins)
    per_bin = bin_counts(hist, pre)[:, :-1]  # regular prebins; the missing bin stays apart
    groups = monotone_merge(
        per_bin[0],
        per_bin[1],
        max_bins=max_bins,
        min_bin_share=min_bin_share,
        min_bad_share=min_bad_share,
        monotonic=monotonic,
    )
    return merge_cuts(pre, groups)


def fit_numeric(
    name: str,
    x: np.ndarray,
    y: np.ndarray | None,
    *,
    method: str,
    max_bins: int,
    min_bin_share: float,
    min_bad_share: float,
    monotonic: str,
    prebins: int = 50,
) -> NumericBinning:
    """Bin one numeric column held whole (a vertical party, the bank, the pooled baseline):
    :func:`numeric_cuts` on its :func:`cell_histogram`, hence exactly the federated result on
    the same rows. ``y`` may be None for "quantile" and "equal_width", which ignore labels."""
    if method == "optimal" and y is None:
        raise ValueError('method "optimal" needs labels')
    hist = cell_histogram(x) if y is None or method != "optimal" else cell_histogram(x, y)
    cuts = numeric_cuts(
        hist,
        method=method,
        max_bins=max_bins,
        min_bin_share=min_bin_share,
        min_bad_share=min_bad_share,
        monotonic=monotonic,
        prebins=prebins,
    )
    return NumericBinning(name, tuple(int(c) for c in cuts))


def category_counts(values: np.ndarray, y: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Sorted distinct non-missing categories (stripped) and their ``(2, k)`` goods/bads."""
    text = _clean_text(values).ravel()
    labels = _labels(y, len(text))
    present = text != ""
    cats, inv = np.unique(text[present], return_inverse=True)
    k = len(cats)
    counts = np.bincount(inv.ravel() + k * labels[present], minlength=2 * k).reshape(2, k)
    return [str(c) for c in cats], counts


def fit_categorical(
    name: str,
    values: np.ndarray,
    y: np.ndarray,
    *,
    max_bins: int,
    min_bin_share: float,
) -> CategoricalBinning:
    """Bin one text column held whole: :func:`category_counts` then :func:`categorical_groups`."""
    cats, counts = category_counts(values, y)
    groups, unseen = categorical_groups(
        cats, counts[0], counts[1], max_bins=max_bins, min_bin_share=min_bin_share
    )
    return CategoricalBinning(name, tuple(tuple(g) for g in groups), unseen)


# --- parameters and WOE tables ---------------------------------------------------------------


@dataclass(frozen=True)
class BinningParams:
    """How every characteristic of a run is binned (a scenario's ``[binning]``)."""

    method: str = "optimal"
    max_bins: int = 8
    min_bin_share: float = 0.05
    min_bad_share: float = 0.05
    monotonic: str = "auto"
    prebins: int = 50

    @property
    def labelled_cuts(self) -> bool:
        """Whether choosing a numeric column's edges needs the labels ("optimal")."""
        return self.method == "optimal"

    def cuts(self, hist: np.ndarray) -> np.ndarray:
        """Edge cells from a (summed) cell histogram, as :func:`numeric_cuts`."""
        return numeric_cuts(
            hist,
            method=self.method,
            max_bins=self.max_bins,
            min_bin_share=self.min_bin_share,
            min_bad_share=self.min_bad_share,
            monotonic=self.monotonic,
            prebins=self.prebins,
        )

    def groups(self, categories: list[str], good, bad) -> tuple[list[list[str]], int]:
        """A text characteristic's groups from its categories' summed counts."""
        return categorical_groups(
            categories, good, bad, max_bins=self.max_bins, min_bin_share=self.min_bin_share
        )

    def table(self, binning: Binning, good: np.ndarray, bad: np.ndarray) -> WoeTable:
        """The WOE table of ``binning`` from its goods and bads per bin (missing last),
        a too-small missing bin joined to the largest regular one (:func:`small_missing_to`)."""
        good, bad = np.asarray(good, dtype=np.int64), np.asarray(bad, dtype=np.int64)
        to = small_missing_to(good + bad, self.min_bin_share)
        if to is not None:
            good, bad = good.copy(), bad.copy()
            good[to] += good[-1]
            bad[to] += bad[-1]
            good[-1] = bad[-1] = 0
            binning = replace(binning, missing_to=to)
        return WoeTable(binning, good, bad)

    def table_of(self, binning: Binning, values: np.ndarray, y: np.ndarray) -> WoeTable:
        """The table of a column held whole (its rows counted per bin)."""
        raw = woe_table(binning, values, y)
        return self.table(binning, raw.good, raw.bad)

    def fit(self, name: str, values: np.ndarray, y: np.ndarray | None) -> Binning:
        """Bin one column held whole: text (str dtype) as categories, else numeric."""
        values = np.asarray(values)
        if values.dtype.kind in "USO":
            groups, unseen = self.groups(*_counts_of(values, y))
            return CategoricalBinning(name, tuple(tuple(g) for g in groups), unseen)
        return NumericBinning(name, tuple(int(c) for c in self.cuts(_hist_for(self, values, y))))


def _counts_of(
    values: np.ndarray, y: np.ndarray | None
) -> tuple[list[str], np.ndarray, np.ndarray]:
    cats, counts = category_counts(values, y)
    return cats, counts[0], counts[1]


def _hist_for(params: BinningParams, x: np.ndarray, y: np.ndarray | None) -> np.ndarray:
    return cell_histogram(x, y) if params.labelled_cuts else cell_histogram(x)


Binning = NumericBinning | CategoricalBinning


@dataclass(frozen=True, eq=False)
class WoeTable:
    """A characteristic's bins with their goods, bads, WOE and IV (missing bin last)."""

    binning: Binning
    good: np.ndarray
    bad: np.ndarray

    def __post_init__(self) -> None:
        good = np.asarray(self.good, dtype=np.int64)
        bad = np.asarray(self.bad, dtype=np.int64)
        if good.shape != (self.binning.n_bins(),) or bad.shape != good.shape:
            raise ValueError(f"{self.binning.name}: one good and one bad count per bin expected")
        object.__setattr__(self, "good", good)
        object.__setattr__(self, "bad", bad)
        woe, iv = woe_iv(good, bad)
        object.__setattr__(self, "woe", woe)
        object.__setattr__(self, "iv_terms", iv)

    @property
    def name(self) -> str:
        return self.binning.name

    @property
    def iv(self) -> float:
        return float(self.iv_terms.sum())

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Each value's WOE (the WOE coding a scorecard's logistic model is trained on)."""
        return self.woe[self.binning.assign(values)]

    def distribution(self, values: np.ndarray) -> np.ndarray:
        """Share of ``values`` in each bin (for the stability index between samples)."""
        return bin_shares(self.binning, values)


def bin_shares(binning: Binning, values: np.ndarray) -> np.ndarray:
    """Share of ``values`` in each bin of ``binning`` (missing bin last)."""
    idx = binning.assign(values)
    return np.bincount(idx, minlength=binning.n_bins()) / max(len(idx), 1)


def woe_table(binning: Binning, values: np.ndarray, y: np.ndarray) -> WoeTable:
    """The table of a column held whole: its rows counted per bin."""
    idx = binning.assign(values)
    labels = _labels(y, len(idx))
    counts = np.bincount(idx + binning.n_bins() * labels, minlength=2 * binning.n_bins())
    return WoeTable(binning, counts[: binning.n_bins()], counts[binning.n_bins() :])


def stability_index(expected: np.ndarray, actual: np.ndarray, epsilon: float = 1e-4) -> float:
    """Population stability index Σ (a − e)·ln(a / e) between two samples' bin shares
    (shares below ``epsilon`` raised to it, so an empty bin does not make it infinite)."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), epsilon)
    a = np.maximum(np.asarray(actual, dtype=np.float64), epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def select(
    names: list[str],
    ivs: np.ndarray,
    psis: np.ndarray,
    *,
    min_iv: float,
    max_psi: float,
    max_features: int,
) -> tuple[list[bool], list[str]]:
    """Which characteristics a scorecard keeps, and why each is kept or dropped: IV at
    least ``min_iv``, stability index at most ``max_psi``, then the ``max_features``
    highest IVs (ties by name, so the choice does not depend on column order)."""
    ivs, psis = np.asarray(ivs, dtype=np.float64), np.asarray(psis, dtype=np.float64)
    reasons = [
        f"IV {iv:.4f} below selection.min_iv = {min_iv:g}"
        if iv < min_iv
        else f"stability index {p:.3f} above selection.max_psi = {max_psi:g}"
        if p > max_psi
        else ""
        for iv, p in zip(ivs, psis)
    ]
    eligible = sorted(
        (i for i, r in enumerate(reasons) if not r), key=lambda i: (-ivs[i], names[i])
    )
    kept = set(eligible[:max_features])
    for rank, i in enumerate(eligible):
        reasons[i] = (
            f"IV {ivs[i]:.4f}, rank {rank + 1}"
            if i in kept
            else f"IV {ivs[i]:.4f} ranks {rank + 1}, beyond selection.max_features = {max_features}"
        )
    return [i in kept for i in range(len(names))], reasons
