"""Numpy logistic regression: the model every party trains.

The parameters are one flat float64 vector ``[w_1 .. w_d, b]`` so that federated
updates, encryption and noise all act on a single array. Everything is vectorised
over rows; the only Python loop is over mini-batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit


def n_params(n_features: int) -> int:
    """Length of the flat parameter vector (weights plus intercept)."""
    return n_features + 1


def predict_proba(params: np.ndarray, X: np.ndarray) -> np.ndarray:
    """P(default) for each row of X."""
    return expit(X @ params[:-1] + params[-1])


def loss(params: np.ndarray, X: np.ndarray, y: np.ndarray, l2: float = 0.0) -> float:
    """Mean binary cross-entropy plus ½·l2·‖w‖² (the intercept is not penalised)."""
    z = X @ params[:-1] + params[-1]
    # log(1+e^z) - y·z, written with logaddexp so large |z| cannot overflow
    nll = np.mean(np.logaddexp(0.0, z) - y * z)
    return float(nll + 0.5 * l2 * np.dot(params[:-1], params[:-1]))


def per_example_gradients(params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Gradient of each row's log loss, shape (rows, d+1); used by DP-SGD clipping."""
    residual = predict_proba(params, X) - y
    return np.hstack([X * residual[:, None], residual[:, None]])


def gradient(params: np.ndarray, X: np.ndarray, y: np.ndarray, l2: float = 0.0) -> np.ndarray:
    """Mean log-loss gradient over the rows plus the L2 term."""
    residual = predict_proba(params, X) - y
    g = np.empty_like(params)
    g[:-1] = X.T @ residual / len(y) + l2 * params[:-1]
    g[-1] = residual.mean()
    return g


@dataclass(frozen=True)
class SGDConfig:
    """How a party trains locally in one round (validated by the scenario loader)."""

    learning_rate: float = 0.1
    local_epochs: int = 1
    batch_size: int = 64
    l2: float = 1e-4
    proximal_mu: float = 0.0  # FedProx: pulls local params towards the round's global ones


def local_sgd(
    params: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    config: SGDConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """Run ``local_epochs`` of shuffled mini-batch SGD from ``params``; return new params.

    With ``proximal_mu > 0`` this is FedProx's local objective
    (loss + mu/2·‖θ − θ_global‖²), which limits client drift on skewed data.
    """
    theta = np.array(params, dtype=np.float64, copy=True)
    anchor = theta.copy()
    n = len(y)
    bs = min(config.batch_size, n)
    for _ in range(config.local_epochs):
        order = rng.permutation(n)
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            g = gradient(theta, X[idx], y[idx], config.l2)
            if config.proximal_mu:
                g += config.proximal_mu * (theta - anchor)
            theta -= config.learning_rate * g
    return theta


class LogisticRegressionSGD:
    """A scikit-learn-style estimator around :func:`local_sgd`, for baselines and users.

    ``fit`` trains from zeros for ``epochs`` passes; ``predict_proba`` returns the
    two-column probability array scikit-learn users expect.
    """

    def __init__(
        self,
        learning_rate: float = 0.1,
        epochs: int = 20,
        batch_size: int = 64,
        l2: float = 1e-4,
        seed: int = 0,
    ) -> None:
        if learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if l2 < 0:
            raise ValueError(f"l2 must be >= 0, got {l2}")
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.l2 = l2
        self.seed = seed

    def fit(self, X: np.ndarray, y: np.ndarray) -> LogisticRegressionSGD:
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if X.ndim != 2 or len(X) != len(y):
            raise ValueError(f"X must be 2-D with len(y) rows; got X {X.shape}, y {y.shape}")
        config = SGDConfig(self.learning_rate, self.epochs, self.batch_size, self.l2)
        rng = np.random.default_rng(self.seed)
        self.params_ = local_sgd(np.zeros(n_params(X.shape[1])), X, y, config, rng)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = predict_proba(self.params_, np.asarray(X, dtype=np.float64))
        return np.column_stack([1.0 - p, p])
