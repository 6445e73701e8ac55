"""Label leakage: what a data party can infer about the bank's labels from its own
gradients (the attack a teacher should show beside the protocol)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from fedrisk.privacy.mechanisms import clip_rows
from fedrisk.privacy.plan import DPPlan
from fedrisk.vertical.bank import bank_step


def label_leakage(
    X_party: np.ndarray,
    X_bank: np.ndarray,
    y: np.ndarray,
    batch_sizes: tuple[int, ...],
    seed: int,
    learning_rate: float,
    run_batch: int,
    max_rows: int = 6000,
    dp: DPPlan | None = None,
) -> dict[str, float]:
    """AUC with which a data party recovers labels from the gradients it sees.

    Replays one epoch of the protocol in the clear (the party's unmasked gradient equals
    X_kᵀd/|S| exactly) and scores each customer of each batch by −x_i·g: its own
    contribution to the batch gradient pushes that product towards −d_i·|x_i|²/|S|, and
    d is lower for defaulters. A bigger batch drowns each customer in the others; at
    large batches what is left is the population direction of the gradient, so the score
    tends to the AUC of a linear model on the party's own features. The step size scales
    with the batch (the linear scaling rule, capped at the run's) to keep small batches
    stable.
    """
    rng = np.random.default_rng([seed, 11])
    idx = rng.permutation(len(y))[:max_rows]
    Xp, Xb, y = X_party[idx], X_bank[idx], y[idx]
    if dp is not None:
        Xp = clip_rows(Xp, dp.clip_norm)
    out = {}
    for bs in batch_sizes:
        lr = learning_rate * min(1.0, bs / run_batch)
        wp, wb, b = np.zeros(Xp.shape[1]), np.zeros(Xb.shape[1]), 0.0
        scores = np.empty(len(y))
        order = rng.permutation(len(y))
        for start in range(0, len(y), bs):
            batch = order[start : start + bs]
            d = 0.25 * (Xp[batch] @ wp + Xb[batch] @ wb + b) - 0.5 * (2 * y[batch] - 1)
            g = Xp[batch].T @ d / len(batch)  # what the party decrypts and unmasks
            if dp is not None:  # the label-DP defence, as the bank applies it
                g = g + rng.normal(0, dp.noise_multiplier * dp.clip_norm, g.shape) / len(batch)
            scores[batch] = -(Xp[batch] @ g)  # the attack
            wp -= lr * g
            if dp is None:
                wb -= lr * Xb[batch].T @ d / len(batch)
                b -= lr * d.mean()
            else:  # the bank's own update, clipped and noised as the bank does it
                noise = rng.normal(0, dp.noise_multiplier * dp.clip_norm, Xb.shape[1] + 1)
                wb, b = bank_step(Xb[batch], d, wb, b, lr, 0.0, dp, noise)
        out[str(bs)] = float(roc_auc_score(y, scores))
    return out


__all__ = ["label_leakage"]
