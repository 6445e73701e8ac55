"""The comparisons every run is judged against.

- reference: a converged model on the pooled training rows (scikit-learn's
  LogisticRegression, the same L2), what a modeller would fit with all data in one
  place and no budget; the federated model should come close to it.
- centralised: the same model, trained with the same optimiser and budget
  (rounds × local_epochs passes, same batch size and step) on the pooled training rows —
  the idealised model no law would allow.
- local only: each bank training alone on its own rows with the same budget.

All are scored on the same held-out rows as the federated model.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from fedrisk.models.logistic import SGDConfig, gradient, local_sgd, n_params
from fedrisk.scenario import ModelConfig


@dataclass(frozen=True)
class BaselineBudget:
    """What the baselines need of a scenario: the federated run's optimiser, its whole
    budget of passes, and the simulation seed (never a party's secret)."""

    sgd: SGDConfig
    seed: int

    @classmethod
    def of(cls, model: ModelConfig, rounds: int, seed: int) -> BaselineBudget:
        return cls(
            SGDConfig(
                model.learning_rate, rounds * model.local_epochs, model.batch_size, model.l2, 0.0
            ),
            seed,
        )


def train_centralised(budget: BaselineBudget, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    return local_sgd(
        np.zeros(n_params(X.shape[1])), X, y, budget.sgd, np.random.default_rng([budget.seed, 2])
    )


def train_local_only(
    budget: BaselineBudget, party: int, X: np.ndarray, y: np.ndarray
) -> np.ndarray:
    return local_sgd(
        np.zeros(n_params(X.shape[1])),
        X,
        y,
        budget.sgd,
        np.random.default_rng([budget.seed, 3, party]),
    )


#: lbfgs stops when the largest gradient component of the mean loss is below this ...
REFERENCE_TOL = 1e-10
#: ... or after this many iterations (then the reference says it did not converge).
REFERENCE_MAX_ITER = 10_000
#: A reference whose gradient (mean loss + ½·l2·‖w‖², fedrisk's own) is larger than
#: this on the training rows is reported as not converged.
REFERENCE_GRADIENT_TOL = 1e-4


@dataclass(frozen=True)
class Reference:
    """A converged model on the pooled training rows, and how it got there."""

    kind: str  # "logistic" (room for "hist_gradient_boosting" for boosted runs)
    model: LogisticRegression
    params: np.ndarray  # fedrisk's layout: weights, then the intercept
    n_iter: int
    max_iter: int
    gradient_norm: float  # of fedrisk's training objective at ``params``
    train_rows: int

    @property
    def converged(self) -> bool:
        return self.n_iter < self.max_iter and self.gradient_norm < REFERENCE_GRADIENT_TOL

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """P(default) for each row of X (scikit-learn's own prediction)."""
        return self.model.predict_proba(X)[:, list(self.model.classes_).index(1)]

    def record(self) -> dict:
        """How the reference was fitted, for summary.json (its metrics go beside it)."""
        return {
            "kind": self.kind,
            "library": "scikit-learn LogisticRegression (lbfgs)",
            "features": int(self.model.n_features_in_),
            "train_rows": self.train_rows,
            # C = 1/(l2·n); None when l2 = 0 (C = ∞: no penalty; JSON has no infinity)
            "C": float(self.model.C) if np.isfinite(self.model.C) else None,
            "n_iter": self.n_iter,
            "max_iter": self.max_iter,
            "gradient_norm": self.gradient_norm,
            "converged": self.converged,
        }


def train_boosting(params, X: np.ndarray, y: np.ndarray, seed: int):
    """scikit-learn's HistGradientBoostingClassifier with SecureBoost's knobs (``params``,
    a :class:`~fedrisk.models.boosting.BoostingParams`): the same trees, depth, bins,
    learning rate and L2; leaves may hold one row (scikit-learn has no Σh floor per
    child; its own min_hessian_to_split is fixed at 1e-3); no early stopping; every row
    per tree."""
    # start-up: scikit-learn's ensemble module is imported only by boosting runs
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(
        max_iter=params.trees,
        max_depth=params.max_depth,
        learning_rate=params.learning_rate,
        max_bins=min(255, params.max_bins),
        l2_regularization=params.reg_lambda,
        min_samples_leaf=1,
        max_leaf_nodes=None,
        early_stopping=False,
        random_state=seed,
    )
    with threadpool_limits(limits=1):
        return model.fit(X, np.asarray(y).astype(np.int64))


def train_reference(X: np.ndarray, y: np.ndarray, l2: float) -> Reference:
    """scikit-learn's LogisticRegression fitted to convergence on the pooled rows.

    fedrisk's loss is mean log loss + ½·l2·‖w‖² with the intercept unpenalised;
    scikit-learn's lbfgs minimises C·Σ log loss + ½·‖w‖², intercept unpenalised too, so
    C = 1/(l2·n) is the same minimiser (C = ∞, no penalty, when l2 = 0). Convergence is
    checked on fedrisk's own gradient of that objective, not taken on trust.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y).astype(np.int64)
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0, got {l2}")
    C = np.inf if l2 == 0 else 1.0 / (l2 * len(y))
    model = LogisticRegression(C=C, solver="lbfgs", tol=REFERENCE_TOL, max_iter=REFERENCE_MAX_ITER)
    # One BLAS thread: on rows × tens of features, threads only add synchronisation
    # (measured: 0.1 s with one, 2.4 s with two on a busy 2-core machine).
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        # not converging is reported in the record (and as a run warning), not raised
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    params = np.append(model.coef_.ravel(), model.intercept_[0]).astype(np.float64)
    grad = gradient(params, X, y.astype(np.float64), l2)
    return Reference(
        "logistic",
        model,
        params,
        int(np.max(model.n_iter_)),
        REFERENCE_MAX_ITER,
        float(np.linalg.norm(grad)),
        len(y),
    )


__all__ = [
    "REFERENCE_GRADIENT_TOL",
    "BaselineBudget",
    "Reference",
    "train_boosting",
    "train_centralised",
    "train_local_only",
    "train_reference",
]
