"""The two comparisons every run is judged against.

- centralised: the same model, trained with the same optimiser and budget
  (rounds × local_epochs passes, same batch size and step) on the pooled training rows —
  the idealised model no law would allow.
- local only: each bank training alone on its own rows with the same budget.

Both are scored on the same held-out rows as the federated model.
"""

from __future__ import annotations

import numpy as np

from fedrisk.models.logistic import SGDConfig, local_sgd, n_params
from fedrisk.scenario import Scenario


def _budget(s: Scenario) -> SGDConfig:
    m = s.model
    return SGDConfig(m.learning_rate, s.rounds * m.local_epochs, m.batch_size, m.l2, 0.0)


def train_centralised(s: Scenario, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    return local_sgd(np.zeros(n_params(X.shape[1])), X, y, _budget(s),
                     np.random.default_rng([s.seed, 2]))


def train_local_only(s: Scenario, party: int, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    return local_sgd(np.zeros(n_params(X.shape[1])), X, y, _budget(s),
                     np.random.default_rng([s.seed, 3, party]))
