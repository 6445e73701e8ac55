"""The two comparisons every run is judged against.

- centralised: the same model, trained with the same optimiser and budget
  (rounds × local_epochs passes, same batch size and step) on the pooled training rows —
  the idealised model no law would allow.
- local only: each bank training alone on its own rows with the same budget.

Both are scored on the same held-out rows as the federated model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedrisk.models.logistic import SGDConfig, local_sgd, n_params
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


__all__ = ["BaselineBudget", "train_centralised", "train_local_only"]
