"""Attack (c): a data party reads labels off the bank's held-out split.

Before each party had its own secret, the bank split the aligned customers with
``split_indices(y, test_fraction, seed)`` and the scenario's public seed. The split is
stratified: each class's rows are permuted by the seeded generator and the first
``round(n_class·f)`` held out. From the ``align`` message alone (which customers train,
which are held out) a data party re-ran the generator for every possible number of
defaulters and kept the ones whose split is an interleaving of the two classes' splits:
it recovered the exact number of defaulters (6,636 of 30,000) and, with certainty, the
labels of 4,384 of 6,000 test customers.

Here the data party has only the ``align`` message and the public scenario; the same
attack must find neither the count nor any label, and test membership must say nothing
of the label (AUC ≈ 0.5).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from fedrisk.data.split import split_indices
from fedrisk.data.vertical import load_vertical

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:1024-bit Paillier keys")]


def class_strings(seed: int, n0: int, n1: int, f: float):
    """Which ranks of each class the old split held out, for n0 payers, n1 defaulters
    (split_indices draws class 0's permutation first, then class 1's)."""
    rng = np.random.default_rng(seed)
    out = []
    for n in (n0, n1):
        k = min(max(round(n * f), 1), n - 1)
        a = np.zeros(n, dtype=bool)
        a[rng.permutation(n)[:k]] = True
        out.append(a)
    return out


def interleavings(m: np.ndarray, a0: np.ndarray, a1: np.ndarray) -> np.ndarray | None:
    """F[i, j]: the first i of a0 and j of a1 interleave to m[:i+j]; None as soon as no
    prefix does (most wrong guesses die within a few rows)."""
    n0, n1 = len(a0), len(a1)
    F = np.zeros((n0 + 1, n1 + 1), dtype=bool)
    F[0] = np.concatenate([[True], np.cumprod(a1 == m[:n1]).astype(bool)])
    j = np.arange(n1 + 1)
    for i in range(1, n0 + 1):
        idx = i + j - 1
        ok = idx < len(m)
        mi = np.where(ok, m[np.minimum(idx, len(m) - 1)], False)
        A = F[i - 1] & (a0[i - 1] == mi) & ok
        B = np.zeros(n1 + 1, dtype=bool)
        B[1:] = (a1 == mi[1:]) & ok[1:]
        # F[i, j] = A[j] or (F[i, j-1] and B[j]): some k <= j with A[k], B[k+1..j] all true
        start = np.maximum.accumulate(np.where(~B, j, 0))
        cA = np.cumsum(A)
        F[i] = (cA - np.where(start > 0, cA[start - 1], 0)) > 0
        if not F[i].any():
            return None
    return F


def old_split_attack(m: np.ndarray, seed: int, f: float):
    """Every defaulter count the old seeded split is consistent with, and for a unique
    one the labels forced on every customer (1, 0, or -1 when not forced)."""
    n = len(m)
    feasible = []
    for n1 in range(2, n - 1):
        a0, a1 = class_strings(seed, n - n1, n1, f)
        if a0.sum() + a1.sum() != m.sum():
            continue
        F = interleavings(m, a0, a1)
        if F is not None and F[-1, -1]:
            feasible.append((n1, a0, a1, F))
    labels = np.full(n, -1)
    if len(feasible) == 1:
        n1, a0, a1, F = feasible[0]
        G = interleavings(m[::-1], a0[::-1], a1[::-1])[::-1, ::-1]  # suffixes
        can0, can1 = np.zeros(n, bool), np.zeros(n, bool)
        for i in range(1, len(a0) + 1):  # position i+j-1 is a0's i-th
            js = np.flatnonzero(F[i - 1] & G[i])
            can0[i + js - 1] |= a0[i - 1] == m[i + js - 1]
        for j in range(1, len(a1) + 1):
            i_s = np.flatnonzero(F[:, j - 1] & G[:, j])
            can1[i_s + j - 1] |= a1[j - 1] == m[i_s + j - 1]
        labels[can1 & ~can0] = 1
        labels[can0 & ~can1] = 0
    return [n1 for n1, *_ in feasible], labels


def bootstrap_ci(y, score, rng, n=1000):
    idx = rng.integers(0, len(y), size=(n, len(y)))
    return np.percentile([roc_auc_score(y[i], score[i]) for i in idx], [2.5, 97.5])


def test_the_align_message_no_longer_gives_labels_away(vertical_party_view):
    s, _, _, seen = vertical_party_view
    shared = sorted(seen["train-ids"] + seen["test-ids"])  # the bank's order: sorted ids
    test = set(seen["test-ids"])
    m = np.array([i in test for i in shared])
    f = s.data.test_fraction

    # ground truth, for scoring only
    holder = load_vertical(s).holder
    label = dict(zip(map(str, holder.ids), holder.y))
    y = np.array([label[i] for i in shared])

    counts, forced = old_split_attack(m, s.seed, f)
    assert int(y.sum()) not in counts or len(counts) > 1  # the count is not recovered
    assert not (forced >= 0).any()  # no label forced
    score = np.where(forced >= 0, forced, 0.5) + 0.0
    assert roc_auc_score(y, score) == 0.5
    # test membership itself: independent of the label
    auc = roc_auc_score(y, m.astype(float))
    lo, hi = bootstrap_ci(y, m.astype(float), np.random.default_rng(0))
    assert lo <= 0.5 <= hi and abs(auc - 0.5) < 0.05, (auc, lo, hi)

    # control: the split the old code made (the public seed) gives it all away
    _, old_test = split_indices(y, f, s.seed)
    old_m = np.zeros(len(y), dtype=bool)
    old_m[old_test] = True
    old_counts, old_forced = old_split_attack(old_m, s.seed, f)
    assert old_counts == [int(y.sum())]
    right = (old_forced >= 0) & (old_forced == y)
    assert right.sum() == (old_forced >= 0).sum() > 0
    print(
        f"aligned {len(y)}, defaulters {int(y.sum())}: feasible counts now {counts}; "
        f"membership AUC {auc:.3f} (CI {lo:.3f}-{hi:.3f}); old split: count "
        f"{old_counts}, labels forced {int((old_forced >= 0).sum())} "
        f"({int((old_forced[old_test] >= 0).sum())} of {len(old_test)} test customers)"
    )
