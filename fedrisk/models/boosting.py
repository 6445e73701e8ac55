"""Gradient-boosted trees for default risk (log loss), the pieces SecureBoost shares.

Everything the federated protocol (:mod:`fedrisk.vertical.secureboost`) and a party
boosting alone have in common lives here, free of Flower and of encryption:

- **binning**: each party cuts each of its own columns at quantiles of its training
  rows (:func:`fit_bins`); a *candidate split* is "bin ≤ b" for one column and one bin;
- **fixed point**: g and h become integers (:func:`gh_integers`) so that sums of them,
  in plaintext or inside Paillier ciphertexts, are exact and equal;
- **left sums**: per candidate, how many rows, and which Σg and Σh, fall left of it
  (:func:`left_sums`, a bincount per column and a cumulative sum);
- **gain**: XGBoost's second-order gain of every candidate (:func:`split_gains`), from
  those integers only, so two runs that see the same integers choose the same splits;
- **growth**: :func:`grow_tree`, level by level, asks *sources* of candidates (the bank's
  own columns, each data party's) for left sums of the nodes it builds, derives each
  sibling by subtraction, picks the best candidate over all sources and asks its owner
  to split the node. The caller decides what a source is: a local table, or a party
  behind Flower messages and Paillier.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit

GH_FRAC_BITS = 24  # g ∈ [−1, 1] and h ∈ [0, ¼] to 2^-24 (the sums' resolution too)
_G_OFFSET = 1 << GH_FRAC_BITS  # g + 1 ≥ 0: packed slots hold non-negative integers


@dataclass(frozen=True)
class BoostingParams:
    """The boosting knobs (validated by the scenario loader)."""

    trees: int = 30
    max_depth: int = 3
    learning_rate: float = 0.3
    max_bins: int = 32
    min_child_weight: float = 1.0
    reg_lambda: float = 1.0
    subsample: float = 1.0
    early_stopping_rounds: int = 0
    validation_fraction: float = 0.1


# --- binning -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Bins:
    """Each column's cut points: row x falls in bin ``b`` = #(edges < x), so candidate
    (j, b) sends left the rows with ``x_j <= edges[j][b]``."""

    edges: tuple[np.ndarray, ...]

    @property
    def n_features(self) -> int:
        return len(self.edges)

    @property
    def candidates_per_feature(self) -> np.ndarray:
        return np.array([len(e) for e in self.edges], dtype=np.int64)

    @property
    def n_candidates(self) -> int:
        return int(self.candidates_per_feature.sum())

    def column_and_bin(self, index: int) -> tuple[int, int]:
        """(column, bin) of a candidate, columns in order, bins within."""
        return column_and_bin(self.candidates_per_feature, index)

    def candidate(self, index: int) -> tuple[int, float]:
        """(column, threshold) of a candidate: left is ``x <= threshold``."""
        j, b = self.column_and_bin(index)
        return j, float(self.edges[j][b])

    def codes(self, X: np.ndarray) -> np.ndarray:
        """Bin of every value, shape (rows, columns), uint16."""
        X = np.asarray(X, dtype=np.float64)
        out = np.empty(X.shape, dtype=np.uint16)
        for j, e in enumerate(self.edges):
            out[:, j] = np.searchsorted(e, X[:, j], side="left")
        return out


def column_and_bin(per_feature: np.ndarray, index: int) -> tuple[int, int]:
    """(column, bin) of candidate ``index`` when column j has ``per_feature[j]``."""
    ends = np.cumsum(per_feature)
    if not 0 <= index < (int(ends[-1]) if len(ends) else 0):
        raise IndexError(f"no candidate split {index}")
    j = int(np.searchsorted(ends, index, side="right"))
    return j, index - (int(ends[j - 1]) if j else 0)


def fit_bins(X: np.ndarray, max_bins: int) -> Bins:
    """Quantile cut points of each column (at most ``max_bins`` bins): a column with
    fewer distinct values than that is cut between each pair of them; a constant column
    gets no cut (no candidate: it is dropped from the search)."""
    X = np.asarray(X, dtype=np.float64)
    edges = []
    for j in range(X.shape[1]):
        values = np.unique(X[:, j])
        if len(values) <= max_bins:
            cuts = (values[:-1] + values[1:]) / 2
        else:
            q = np.quantile(X[:, j], np.linspace(0, 1, max_bins + 1)[1:-1], method="linear")
            cuts = np.unique(q)
            cuts = cuts[cuts < values[-1]]  # a cut at the maximum would leave a bin empty
        edges.append(np.ascontiguousarray(cuts, dtype=np.float64))
    return Bins(tuple(edges))


# --- fixed point and sums -----------------------------------------------------------------


def gh_integers(g: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(round((g + 1)·2^f), round(h·2^f)) as int64: non-negative, exactly summable."""
    scale = float(1 << GH_FRAC_BITS)
    gi = np.rint((np.clip(g, -1.0, 1.0) + 1.0) * scale).astype(np.int64)
    hi = np.rint(np.clip(h, 0.0, 0.25) * scale).astype(np.int64)
    return gi, hi


def sums_to_float(count, g_sum, h_sum) -> tuple[np.ndarray, np.ndarray]:
    """(Σg, Σh) from integer sums: the offset of every counted row taken back out."""
    count, g_sum, h_sum = (np.asarray(a, dtype=np.int64) for a in (count, g_sum, h_sum))
    scale = float(1 << GH_FRAC_BITS)
    return (g_sum - count * _G_OFFSET) / scale, h_sum / scale


def left_sums(
    codes: np.ndarray, per_feature: np.ndarray, gi: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """Per candidate (columns in order, bins within; ``per_feature`` candidates per
    column, :attr:`Bins.candidates_per_feature`), the rows left of it: int64 array (3,
    candidates) of (count, Σ g-integers, Σ h-integers) over the rows of ``codes``."""
    per = np.asarray(per_feature, dtype=np.int64)
    width = per + 1  # bins per column
    starts = np.r_[0, np.cumsum(width)[:-1]]
    flat = (codes.astype(np.int64) + starts[None, :]).ravel()
    total = int(width.sum())
    out = np.empty((3, int(width.sum())), dtype=np.int64)
    for k, w in enumerate((None, gi, hi)):
        weights = None if w is None else np.repeat(w.astype(np.float64), codes.shape[1])
        # float sums of integers below 2^53 are exact (at most 2^24 rows of 2^25)
        out[k] = np.rint(np.bincount(flat, weights=weights, minlength=total)).astype(np.int64)
    # cumulative within each column; a column's last bin is never a left side
    cum = np.cumsum(out, axis=1)
    keep = np.ones(total, dtype=bool)
    keep[starts + width - 1] = False
    return (cum - _segment_base(cum, starts, total))[:, keep]


def _segment_base(cum: np.ndarray, starts: np.ndarray, total: int) -> np.ndarray:
    """The running sum at each column's start, repeated over the column's bins."""
    offsets = np.zeros((cum.shape[0], len(starts)), dtype=np.int64)
    offsets[:, 1:] = cum[:, starts[1:] - 1]
    lengths = np.diff(np.r_[starts, total])
    return np.repeat(offsets, lengths, axis=1)


def split_gains(
    left: np.ndarray, node: np.ndarray, min_child_weight: float, reg_lambda: float
) -> np.ndarray:
    """Second-order gain ½(G_L²/(H_L+λ) + G_R²/(H_R+λ) − G²/(H+λ)) of each candidate
    from integer left sums (3, k) and the node's integer sums (3,); −inf where a side
    is empty or its Σh is below ``min_child_weight``."""
    g_left, h_left = sums_to_float(*left)
    g_all, h_all = sums_to_float(*node[:, None])
    g_right, h_right = g_all - g_left, h_all - h_left
    gain = 0.5 * (
        g_left**2 / (h_left + reg_lambda)
        + g_right**2 / (h_right + reg_lambda)
        - g_all**2 / (h_all + reg_lambda)
    )
    ok = (
        (left[0] > 0)
        & (left[0] < node[0])
        & (h_left >= min_child_weight)
        & (h_right >= min_child_weight)
    )
    return np.where(ok, gain, -np.inf)


# --- trees -------------------------------------------------------------------------------


@dataclass
class Tree:
    """One tree, nodes in the order they were made (0 is the root). A split node names
    its *source* (0: the bank's own columns, k: the k-th data party) and the source's
    split id; only that source knows which column and threshold the id stands for."""

    source: list[int] = field(default_factory=list)  # −1 at a leaf
    split: list[int] = field(default_factory=list)
    left: list[int] = field(default_factory=list)
    right: list[int] = field(default_factory=list)
    value: list[float] = field(default_factory=list)  # leaf weight (learning rate in)
    gain: list[float] = field(default_factory=list)
    count: list[int] = field(default_factory=list)

    def add(self, count: int) -> int:
        for lst, v in (
            (self.source, -1),
            (self.split, -1),
            (self.left, -1),
            (self.right, -1),
            (self.value, 0.0),
            (self.gain, 0.0),
            (self.count, count),
        ):
            lst.append(v)
        return len(self.source) - 1

    def to_record(self) -> dict:
        return {
            "source": self.source,
            "split": self.split,
            "left": self.left,
            "right": self.right,
            "value": self.value,
            "gain": self.gain,
            "count": self.count,
        }

    @classmethod
    def from_record(cls, record: dict) -> Tree:
        return cls(**{k: list(record[k]) for k in cls().to_record()})

    def leaves(self, goes_left: Callable[[int, int, np.ndarray], np.ndarray], n: int) -> np.ndarray:
        """The leaf of each of ``n`` rows, walking from the root; ``goes_left(source,
        split, rows)`` answers for the rows (indices) at a split node."""
        at = np.zeros(n, dtype=np.int64)
        stack = [0]
        while stack:
            node = stack.pop()
            if self.source[node] < 0:
                continue
            rows = np.flatnonzero(at == node)
            left = np.asarray(goes_left(self.source[node], self.split[node], rows), dtype=bool)
            at[rows[left]] = self.left[node]
            at[rows[~left]] = self.right[node]
            stack += [self.left[node], self.right[node]]
        return at


#: ask_sums(assignment, build) -> per source {node: (3, k) int64 left sums}; assignment
#: gives the node of every tree row (−1: in no node being split)
AskSums = Callable[[np.ndarray, list[int]], list[dict[int, np.ndarray]]]
#: ask_splits(per source {node: split id}, assignment, eval assignment) -> per source
#: {node: (left mask over the node's tree rows, left mask over the node's eval rows)}
AskSplits = Callable[
    [list[dict[int, int]], np.ndarray, np.ndarray],
    list[dict[int, tuple[np.ndarray, np.ndarray]]],
]


@dataclass
class GrowthStats:
    """What a tree's growth asked for (the benchmark splits its time by them)."""

    built_rows: int = 0  # Σ over built nodes of their rows (histogram work)
    nodes_built: int = 0


def grow_tree(
    g: np.ndarray,
    h: np.ndarray,
    params: BoostingParams,
    sources: int,
    ask_sums: AskSums,
    ask_splits: AskSplits,
    n_eval: int,
    stats: GrowthStats | None = None,
    right_first: Callable[[], bool] | None = None,
) -> tuple[Tree, np.ndarray, np.ndarray]:
    """Grow one tree level by level over the tree's rows (g, h per row).

    Returns (tree, leaf of each tree row, leaf of each eval row). Histogram subtraction:
    of two siblings only the one with fewer rows is asked for; the other's sums are its
    parent's minus those. Ties in gain go to the earlier source, then the lower split id,
    so equal sums always give the same tree. ``right_first()`` True gives a split's right
    child the lower node id (the bank draws it from its own secret, so a data party
    reading node ids cannot tell which side of another party's cut is "≤").
    """
    gi, hi = gh_integers(g, h)
    tree = Tree()
    root = tree.add(len(g))
    assign = np.zeros(len(g), dtype=np.int64)
    eval_assign = np.zeros(n_eval, dtype=np.int64)
    totals = {root: np.array([len(g), int(gi.sum()), int(hi.sum())], dtype=np.int64)}
    frontier = [root]
    build = [root]
    derive: dict[int, tuple[int, int]] = {}  # node -> (parent, built sibling)
    kept: list[dict[int, np.ndarray]] = [{} for _ in range(sources)]
    for _depth in range(params.max_depth):
        if not frontier:
            break
        active = np.where(np.isin(assign, frontier), assign, -1)
        if stats is not None:
            stats.built_rows += int(sum(tree.count[b] for b in build))
            stats.nodes_built += len(build)
        asked = ask_sums(active, build)
        sums: list[dict[int, np.ndarray]] = []
        for k in range(sources):
            mine = dict(asked[k])
            for node, (parent, sibling) in derive.items():
                mine[node] = kept[k][parent] - mine[sibling]
            sums.append(mine)
        decisions: list[dict[int, int]] = [{} for _ in range(sources)]
        for node in frontier:
            best = (0.0, -1, -1)  # a split must gain something
            for k in range(sources):
                gains = split_gains(
                    sums[k][node], totals[node], params.min_child_weight, params.reg_lambda
                )
                if gains.size:
                    j = int(np.argmax(gains))
                    if gains[j] > best[0]:
                        best = (float(gains[j]), k, j)
            if best[1] >= 0:
                decisions[best[1]][node] = best[2]
                tree.source[node], tree.split[node], tree.gain[node] = best[1], best[2], best[0]
        kept = sums
        split_nodes = [n for n in frontier if tree.source[n] >= 0]
        if not split_nodes:
            break
        answers = ask_splits(decisions, active, eval_assign)
        frontier, build, derive = [], [], {}
        for node in split_nodes:
            left_mask, eval_left = answers[tree.source[node]][node]
            rows = np.flatnonzero(assign == node)
            erows = np.flatnonzero(eval_assign == node)
            n_left, n_right = int(left_mask.sum()), int((~left_mask).sum())
            if right_first is not None and right_first():
                hi_ = tree.add(n_right)
                lo = tree.add(n_left)
            else:
                lo = tree.add(n_left)
                hi_ = tree.add(n_right)
            tree.left[node], tree.right[node] = lo, hi_
            assign[rows[left_mask]], assign[rows[~left_mask]] = lo, hi_
            eval_assign[erows[eval_left]], eval_assign[erows[~eval_left]] = lo, hi_
            left_rows, right_rows = rows[left_mask], rows[~left_mask]
            totals[lo] = np.array(
                [len(left_rows), int(gi[left_rows].sum()), int(hi[left_rows].sum())], np.int64
            )
            totals[hi_] = totals[node] - totals[lo]
            small, large = (lo, hi_) if len(left_rows) <= len(right_rows) else (hi_, lo)
            frontier += [lo, hi_]
            build.append(small)
            derive[large] = (node, small)
    for node in range(len(tree.source)):
        if tree.source[node] < 0:
            rows = assign == node
            tree.value[node] = float(
                -params.learning_rate * g[rows].sum() / (h[rows].sum() + params.reg_lambda)
            )
    return tree, assign, eval_assign


def base_score(y: np.ndarray) -> float:
    """The log-odds of the training default rate: every model starts there."""
    p = float(np.clip(np.mean(y), 1e-6, 1 - 1e-6))
    return float(np.log(p / (1 - p)))


def gradients(y: np.ndarray, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log loss: g = p − y, h = p(1 − p) at the current raw scores."""
    p = expit(raw)
    return p - y, p * (1 - p)


def log_loss(y: np.ndarray, raw: np.ndarray) -> float:
    return float(np.mean(np.logaddexp(0.0, raw) - y * raw))


@dataclass
class LocalSources:
    codes: list[np.ndarray]
    eval_codes: list[np.ndarray]
    bins: list[Bins]
    gi: np.ndarray | None = None
    hi: np.ndarray | None = None

    def set_gh(self, g: np.ndarray, h: np.ndarray) -> None:
        self.gi, self.hi = gh_integers(g, h)

    def sums(self, k: int, assignment: np.ndarray, build: list[int]) -> dict[int, np.ndarray]:
        out = {}
        for node in build:
            rows = np.flatnonzero(assignment == node)
            out[node] = left_sums(
                self.codes[k][rows],
                self.bins[k].candidates_per_feature,
                self.gi[rows],
                self.hi[rows],
            )
        return out

    def split(
        self, k: int, decisions: dict[int, int], assignment: np.ndarray, eval_assign: np.ndarray
    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        out = {}
        for node, cand in decisions.items():
            j, b = self.bins[k].column_and_bin(cand)
            rows = np.flatnonzero(assignment == node)
            erows = np.flatnonzero(eval_assign == node)
            out[node] = (self.codes[k][rows, j] <= b, self.eval_codes[k][erows, j] <= b)
        return out

    def ask_sums(self, assignment: np.ndarray, build: list[int]) -> list[dict[int, np.ndarray]]:
        return [self.sums(k, assignment, build) for k in range(len(self.codes))]

    def ask_splits(self, decisions, assignment, eval_assign):
        return [
            self.split(k, decisions[k], assignment, eval_assign) for k in range(len(self.codes))
        ]


def boost_locally(
    X: np.ndarray,
    y: np.ndarray,
    X_eval: np.ndarray,
    params: BoostingParams,
    seed: int,
) -> tuple[list[Tree], np.ndarray, Bins]:
    """The same boosting on one party's own columns (no federation): the trees, the
    raw scores of ``X_eval`` after each tree (trees × rows) and the bins. Row
    subsampling draws from ``seed``; no early stopping (the caller compares curves)."""
    bins = fit_bins(X, params.max_bins)
    codes, eval_codes = bins.codes(X), bins.codes(X_eval)
    rng = np.random.default_rng(seed)
    raw = np.full(len(y), base_score(y))
    raw_eval = np.full(len(X_eval), base_score(y))
    trees, curve = [], []
    for _ in range(params.trees):
        rows = subsample_rows(len(y), params.subsample, rng)
        g, h = gradients(y[rows], raw[rows])
        local = LocalSources([codes[rows]], [np.vstack([codes, eval_codes])], [bins])
        local.set_gh(g, h)
        tree, _, leaf = grow_tree(
            g, h, params, 1, local.ask_sums, local.ask_splits, len(y) + len(X_eval)
        )
        values = np.asarray(tree.value)
        raw += values[leaf[: len(y)]]
        raw_eval += values[leaf[len(y) :]]
        trees.append(tree)
        curve.append(raw_eval.copy())
    return trees, np.array(curve), bins


def subsample_rows(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """The rows one tree is grown on (sorted); all of them at ``fraction`` 1."""
    if fraction >= 1.0:
        return np.arange(n)
    return np.sort(rng.choice(n, size=max(2, int(round(fraction * n))), replace=False))


__all__ = [
    "boost_locally",
    "column_and_bin",
    "subsample_rows",
    "GH_FRAC_BITS",
    "Bins",
    "BoostingParams",
    "GrowthStats",
    "LocalSources",
    "Tree",
    "base_score",
    "fit_bins",
    "gh_integers",
    "gradients",
    "grow_tree",
    "left_sums",
    "log_loss",
    "split_gains",
    "sums_to_float",
]
