"""Calibrating the joint model's probabilities at the label holder, after training.

Why: the protocol trains on a Taylor approximation of the logistic loss (residual
d = z/4 − y'/2, :mod:`fedrisk.vertical.protocol`), i.e. least squares on ±1 labels. Its
stationary intercept puts the mean of 0.5 + z/4 at the default rate, not the mean of
σ(z): with 5 % defaults the mean predicted PD comes out three to four times the observed
rate, and the slope of z is not the logistic one either. The ranking is fine; the
probabilities are not.

What: the bank refits, on the training customers, by the exact logistic likelihood
(Newton's method, no randomness):

- ``"intercept"``: one offset c, p = σ(z + c); at the optimum the mean predicted PD on
  the training customers equals their default rate;
- ``"platt"``: a scale and an offset, p = σ(a·z + c) (Platt scaling); the mean PD matches
  too, and the spread of the scores is fitted as well.

Who learns what: the bank needs the joint score z = X_B w_B + b + Σ_k u_k of every
training customer at the final weights; it asks each data party once for its partial
scores u_k on the training customers (the kind of per-customer partial score it already
receives for every batch of every epoch, and for the held-out customers at the end). The
data parties receive one request naming no customer and carrying nothing derived from
the labels, and nothing else: the calibration (a, c) stays with the bank, which applies it
when it scores (it is the only one who ever sees z). So a data party's weights w_k stay as
trained; under ``"platt"`` the effective joint model is a·w_k on its features, a factor
only the bank knows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, log_expit

CALIBRATIONS = ("none", "intercept", "platt")
_MAX_STEPS = 100


@dataclass(frozen=True)
class Calibration:
    """p = σ(scale·z + offset) on the joint score z."""

    method: str = "none"
    scale: float = 1.0
    offset: float = 0.0

    def apply(self, z: np.ndarray) -> np.ndarray:
        return expit(self.scale * np.asarray(z, dtype=np.float64) + self.offset)

    def bank_part(self, w: np.ndarray, b: float) -> tuple[np.ndarray, float]:
        """The bank's weights and intercept with the calibration folded in (the data
        parties' partial scores are multiplied by ``scale`` when the bank scores)."""
        return self.scale * np.asarray(w, dtype=np.float64), self.scale * b + self.offset


def fit_calibration(z: np.ndarray, y: np.ndarray, method: str) -> Calibration:
    """Maximum-likelihood calibration of joint scores ``z`` against labels ``y`` (0/1).

    Deterministic (Newton's method with step halving from scale 1, offset 0; no draws).
    Raises ValueError on an unknown method or labels of one class only.
    """
    if method not in CALIBRATIONS:
        raise ValueError(f"unknown calibration {method!r}; allowed: {', '.join(CALIBRATIONS)}")
    if method == "none":
        return Calibration()
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(z) != len(y) or not 0 < y.sum() < len(y):
        raise ValueError("calibration needs one score per label and both classes")
    X = np.c_[z, np.ones_like(z)] if method == "platt" else np.ones((len(z), 1))
    offset_z = np.zeros_like(z) if method == "platt" else z
    theta = np.array([1.0, 0.0]) if method == "platt" else np.array([0.0])

    def nll(t: np.ndarray) -> float:
        eta = offset_z + X @ t
        return -float(np.sum(y * log_expit(eta) + (1 - y) * log_expit(-eta)))

    current = nll(theta)
    for _ in range(_MAX_STEPS):
        p = expit(offset_z + X @ theta)
        grad = X.T @ (p - y)
        if np.max(np.abs(grad)) <= 1e-12 * len(y):  # the score equation holds
            break
        hess = (X * (p * (1 - p))[:, None]).T @ X
        step = np.linalg.solve(hess + 1e-12 * np.eye(len(theta)), grad)
        t = 1.0
        while t > 1e-10:  # step halving: the likelihood never gets worse
            candidate = theta - t * step
            value = nll(candidate)
            if value <= current:
                break
            t /= 2
        else:
            break
        theta, current = candidate, value
    if method == "platt":
        return Calibration(method, float(theta[0]), float(theta[1]))
    return Calibration(method, 1.0, float(theta[0]))


__all__ = ["CALIBRATIONS", "Calibration", "fit_calibration"]
