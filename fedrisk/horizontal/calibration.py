"""Calibration rounds: refit the intercept on the pooled training rows by secure sums.

Why: under label skew each bank's local SGD pulls the intercept towards its own default
rate (a bank with 0.1 % defaults towards logit(0.001)), and FedAvg averages those pulls
by example count, so the global intercept lands where no bank's data puts it: on the
bundled data the federated mean PD came out at 13 % against 22 % observed. The
weights' directions (the ranking, AUC) are barely hurt; the level is.

The fix acts at that root, on the equation the pooled maximum-likelihood intercept
solves: Σᵢ (yᵢ − pᵢ) = 0 over every bank's rows. After training, each calibration round
every bank sends the per-row means of (y − p) and p(1 − p) at the current global model,
in the slots of an ordinary update (so they travel under the run's aggregation: read by
the aggregator in plain mode, masked in SecAgg+, encrypted in Paillier mode) weighted by
its example count, so the aggregate is the pooled means. The global intercept then takes
a Newton step Σ(y − p) / Σ p(1 − p), clipped to ±:data:`MAX_STEP` logits (a bare Newton
step overshoots from far away); :data:`STEPS` rounds (``Scenario.calibration_rounds``) converge on every shipped scenario.
Weights stay as trained. What the sums reveal: the pooled residual and variance at the
global model, two numbers per round, which every party could compute from the model and
the pooled default rate anyway at convergence.

With DP-SGD (``dp = 'sample'``) the statistics are released the way a DP-SGD round
releases gradients: Poisson-sampled customers, each one's (y − p, p(1 − p)) clipped to
the clip norm, Gaussian noise N(0, (z·C)²) per step from the bank's own secret, the same
q, z and steps as a training round, so the accountant charges each calibration round as
one more training round. With client-level DP a bank's statistics have no bounded
sensitivity and no calibration round runs (summary.json says so).
"""

from __future__ import annotations

import numpy as np

from fedrisk.models.logistic import predict_proba
from fedrisk.privacy.mechanisms import clip_rows, gaussian_noise
from fedrisk.scenario import CALIBRATION_ROUNDS as STEPS

TRAIN = "train"
CALIBRATE = "calibrate"
MAX_STEP = 2.0  # largest intercept change per Newton step, in logits
# slots of the update vector that carry the statistics (the rest are zero)
RESIDUAL_SLOT, VARIANCE_SLOT = -1, 0


def _vector(n_params: int, residual: float, variance: float) -> np.ndarray:
    v = np.zeros(n_params)
    v[RESIDUAL_SLOT], v[VARIANCE_SLOT] = residual, variance
    return v


def calibration_statistics(params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A bank's exact per-row means of (y − p) and p(1 − p), as an update vector."""
    p = predict_proba(params, X)
    return _vector(params.size, float(np.mean(y - p)), float(np.mean(p * (1.0 - p))))


def private_calibration_statistics(
    params: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    *,
    sample_rate: float,
    steps: int,
    clip_norm: float,
    noise_multiplier: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """The statistics released like a DP-SGD round: ``steps`` Poisson samples of the rows
    (rate ``sample_rate``), each row's pair clipped to ``clip_norm``, N(0, (z·C)²) on
    each step's sum; the noisy sums over steps, divided by their expected row count."""
    n = len(y)
    p = predict_proba(params, X)
    pairs = clip_rows(np.column_stack([y - p, p * (1.0 - p)]), clip_norm)
    total = np.zeros(2)
    for _ in range(steps):  # a loop over steps; each step is vectorised over rows
        mask = rng.random(n) < sample_rate
        total += pairs[mask].sum(axis=0) + gaussian_noise(rng, 2, noise_multiplier * clip_norm)
    expected = steps * sample_rate * n
    return _vector(params.size, total[0] / expected, total[1] / expected)


def newton_intercept(params: np.ndarray, pooled: np.ndarray) -> np.ndarray:
    """The global model after one calibration round: the intercept moves by
    Σ(y − p) / Σ p(1 − p) (the pooled means' ratio), clipped to ±MAX_STEP."""
    variance = float(pooled[VARIANCE_SLOT])
    if not variance > 0:  # DP noise can make it non-positive: no step
        return np.array(params, copy=True)
    new = np.array(params, copy=True)
    new[-1] += float(np.clip(pooled[RESIDUAL_SLOT] / variance, -MAX_STEP, MAX_STEP))
    return new


__all__ = [
    "CALIBRATE",
    "MAX_STEP",
    "STEPS",
    "TRAIN",
    "calibration_statistics",
    "newton_intercept",
    "private_calibration_statistics",
]
