"""Stopping on validation loss: ``rounds`` becomes a maximum.

Each bank holds out ``model.validation_fraction`` of its own rows (drawn from the public
seed: the split protects nothing, and runs reproduce without secrets). Every training
round each bank scores the global model it received on those rows and sends the sum of
their log losses and their count, divided by its training-row count, in two extra slots
of its update: the aggregate, weighted by training rows like the update itself, carries
Σ losses / N and Σ counts / N, whose ratio is the pooled validation loss. The slots
travel under the run's aggregation (in the clear to the aggregator in plain mode, in the
masked sum under SecAgg+, inside the encrypted vector under Paillier), so only the
pooled loss is revealed, to whoever reads the aggregate.

The rule (the same wherever it runs): with validation losses L_0 .. L_j known (L_j scores
the model after round j), stop when j − argmin L ≥ ``patience``; the best model is kept,
the calibration rounds start from it. In plain and SecAgg+ mode the aggregator reads
L_{t-1} in round t's aggregate and decides there. In Paillier mode the banks read it
when they decrypt that aggregate at the next round, decide identically, and tell the
aggregator (one public bit and the best round, in the clear: the aggregator must end the
loop); that round's own update is then discarded by everyone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fedrisk.models.logistic import predict_proba

N_SLOTS = 2  # validation loss sum and count, each over the bank's training rows


def validation_split(n_rows: int, fraction: float, seed: int, party: int):
    """(training rows, validation rows) of one bank, sorted; at least one of each."""
    order = np.random.default_rng([seed, 2, party]).permutation(n_rows)
    n_val = min(max(1, round(n_rows * fraction)), n_rows - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def validation_slots(params: np.ndarray, X: np.ndarray, y: np.ndarray, n_train: int):
    """The two slots a bank adds to its update: Σ log loss and count of its validation
    rows for the global model ``params``, each divided by its training-row count."""
    p = np.clip(predict_proba(params, X), 1e-15, 1 - 1e-15)
    losses = -(y * np.log(p) + (1.0 - y) * np.log1p(-p))
    return np.array([losses.sum(), float(len(y))]) / n_train


def pooled_loss(slots: np.ndarray) -> float:
    """The pooled validation loss from the aggregated slots."""
    return float(slots[0] / slots[1]) if slots[1] > 0 else float("nan")


class EarlyStopping:
    """The losses seen so far and the best model (its round and, where this side holds
    the model, its parameters)."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.losses: dict[int, float] = {}  # model round j -> pooled validation loss
        self.best_params: np.ndarray | None = None
        self.stopped_at: int | None = None  # the round whose update was not applied

    @property
    def best_round(self) -> int | None:
        if not self.losses:
            return None
        return min(self.losses, key=lambda j: (self.losses[j], j))

    def observe(self, model_round: int, loss: float, params: np.ndarray | None) -> None:
        """L_j for the model after round ``model_round`` (``params``, if this side holds it)."""
        self.losses[model_round] = loss
        if self.best_round == model_round and params is not None:
            self.best_params = np.array(params, copy=True)

    def should_stop(self) -> bool:
        if not self.losses or self.stopped_at is not None:
            return False
        return max(self.losses) - self.best_round >= self.patience

    def summary(self, rounds: int, last_training_round: int) -> dict[str, Any]:
        stopped = self.stopped_at is not None
        return {
            "patience": self.patience,
            "stopped": stopped,
            "stopped_at_round": self.stopped_at,
            "training_rounds_run": last_training_round,
            "best_round": self.best_round if stopped else last_training_round,
            "reason": (
                f"validation loss did not improve for {self.patience} rounds after round "
                f"{self.best_round}; the model of round {self.best_round} is kept"
                if stopped
                else f"reached the maximum of {rounds} rounds; the last model is kept"
            ),
            "validation_loss": [self.losses[j] for j in sorted(self.losses)],
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "losses": {str(j): v for j, v in self.losses.items()},
            "best_params": None if self.best_params is None else self.best_params.tolist(),
            "stopped_at": self.stopped_at,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.losses = {int(j): float(v) for j, v in state.get("losses", {}).items()}
        best = state.get("best_params")
        self.best_params = None if best is None else np.array(best)
        self.stopped_at = state.get("stopped_at")


__all__ = [
    "N_SLOTS",
    "EarlyStopping",
    "pooled_loss",
    "validation_slots",
    "validation_split",
]
