"""Label DP in the vertical protocol: one label's worst-case effect on everything the
parties receive, measured against what the accountant charges."""

import math

import numpy as np
import pytest

from fedrisk.privacy.mechanisms import clip_rows
from fedrisk.privacy.plan import DPPlan
from fedrisk.vertical.bank import bank_step

C, Z, LR, L2, BATCH = 1.0, 1.0, 0.3, 1e-4, 16


def _plan() -> DPPlan:
    return DPPlan("label", Z, C, 1e-5, "rdp", 1.0, 1, 1, 1.0, (1.0,), None)


def _data(n=64, k=2, seed=0):
    rng = np.random.default_rng(seed)
    Xb = rng.normal(size=(n, 2)) * 1.5
    Xp = [rng.normal(size=(n, 2)) * 1.5 for _ in range(k)]
    logit = Xb @ [0.8, -0.5] + sum(x @ [1.0, 0.7] for x in Xp) - 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return Xb, [clip_rows(x, C) for x in Xp], y


def _sensitivity(Xb, Xp, y, flip, epochs, defended, seed=1):
    """L2 norm of the difference, over every release of the run, between the release
    means under ``y`` and under ``y`` with label ``flip`` flipped, *given the same
    history*: world B is coupled to world A (its noise is chosen so that every release
    equals A's), which is how adaptive composition charges it. The releases are each data
    party's noisy gradient sum and, defended, the bank's own noisy update; every later
    residual depends on the label only through them iff B's bank ends in A's state."""
    y_b = y.copy()
    y_b[flip] = 1 - y_b[flip]
    dp = _plan() if defended else None
    rng = np.random.default_rng(seed)
    n = len(y)
    wp = [np.zeros(x.shape[1]) for x in Xp]  # the parties see the same releases in A and B
    banks = {"A": (np.zeros(Xb.shape[1]), 0.0), "B": (np.zeros(Xb.shape[1]), 0.0)}
    sq = 0.0
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, BATCH):
            bt = order[start : start + BATCH]
            u_parties = sum(x[bt] @ w for x, w in zip(Xp, wp))
            d = {}
            for world, labels in (("A", y), ("B", y_b)):
                w, b = banks[world]
                d[world] = 0.25 * (Xb[bt] @ w + b + u_parties) - 0.5 * (2 * labels[bt] - 1)
            # the data parties' releases: Σ d_i x_i (rows clipped) + N(0, (zC)²)
            releases = []
            for x in Xp:
                mean = {world: x[bt].T @ d[world] for world in d}
                sq += float(np.sum((mean["B"] - mean["A"]) ** 2))
                releases.append(mean["A"] + rng.normal(0, Z * C, x.shape[1]))
            # the bank's own update, through the bank's code
            noise_a = rng.normal(0, Z * C, Xb.shape[1] + 1)
            banks["A"] = bank_step(Xb[bt], d["A"], *banks["A"], LR, L2, dp, noise_a)
            if defended:
                rows = clip_rows(np.c_[Xb[bt], np.ones(len(bt))], C)
                mean = {world: rows.T @ d[world] for world in d}
                sq += float(np.sum((mean["B"] - mean["A"]) ** 2))
                # coupled: B's noise makes its release equal A's
                noise_b = mean["A"] + noise_a - mean["B"]
                banks["B"] = bank_step(Xb[bt], d["B"], *banks["B"], LR, L2, dp, noise_b)
                np.testing.assert_allclose(banks["B"][0], banks["A"][0], atol=1e-12)
            else:
                banks["B"] = bank_step(Xb[bt], d["B"], *banks["B"], LR, L2)
            for k, g in enumerate(releases):
                wp[k] = wp[k] - LR * (g / len(bt) + L2 * wp[k])
    return math.sqrt(sq)


@pytest.mark.parametrize("epochs", [2, 8])
def test_label_sensitivity_is_no_larger_than_accounted(epochs):
    Xb, Xp, y = _data(k=2)
    accounted = C * math.sqrt(epochs * (len(Xp) + 1))  # (K + 1) releases an epoch
    worst = max(_sensitivity(Xb, Xp, y, j, epochs, True) for j in range(len(y)))
    assert worst <= accounted * (1 + 1e-9)
    assert worst > 0.5 * accounted  # the measurement is not vacuous
    print(f"label DP, {epochs} epochs: worst sensitivity / accounted = {worst / accounted:.3f}")


def test_the_measure_catches_a_bank_that_updates_with_raw_labels():
    """The old scheme (the bank's own update from raw labels, one party, composed over
    epochs only): one label moves later residuals, beyond C·√epochs."""
    Xb, Xp, y = _data(k=1)
    epochs = 8
    worst = max(_sensitivity(Xb, Xp, y, j, epochs, False) for j in range(len(y)))
    print(f"undefended bank update: worst / C·√epochs = {worst / (C * math.sqrt(epochs)):.3f}")
    assert worst > C * math.sqrt(epochs)
