"""Stopping on validation loss: ``rounds`` becomes a maximum.

Each bank holds out ``model.validation_fraction`` of its own rows (drawn from the public
seed: the split protects nothing, and runs reproduce without secrets). Every training
round each bank scores the global model it received on those rows and sends the sum of
their log losses and their count, divided by its training-row count, in two extra slots
of its update: the aggregate, weighted by training rows like the update itself, carries
Σ losses / N and Σ counts / N, whose ratio is the pooled validation loss. The losses
are scored at the model's intercept shifted over a grid (:data:`SHIFTS`), and the best
shift counts: the stopping rule judges the model as it will be once calibrated. The slots
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

# The validation loss is scored at the global model's intercept shifted by each of these
# (logits): under label skew FedAvg drifts the intercept, which the calibration rounds
# repair at the end, so the loss that matters for stopping is the best over shifts (the
# loss of the model once calibrated), not the drifting raw loss, which rises from round
# 2 on the bundled data while the ranking still improves.
SHIFTS = np.linspace(-3.0, 3.0, 25)
N_SLOTS = SHIFTS.size + 1  # a loss sum per shift, then the count


def extra_slots(early_stopping: bool) -> int:
    """Values a bank adds after its delta in every update (Paillier's packing layout)."""
    return N_SLOTS if early_stopping else 0


def validation_split(n_rows: int, fraction: float, seed: int, party: int):
    """(training rows, validation rows) of one bank, sorted; at least one of each."""
    order = np.random.default_rng([seed, 2, party]).permutation(n_rows)
    n_val = min(max(1, round(n_rows * fraction)), n_rows - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def validation_slots(params: np.ndarray, X: np.ndarray, y: np.ndarray, n_train: int):
    """The slots a bank adds to its update: Σ log loss of its validation rows for the
    global model ``params`` at each intercept shift, then their count; each divided by
    its training-row count (the aggregate weighs banks by training rows)."""
    z = (X @ params[:-1] + params[-1])[:, None] + SHIFTS[None, :]  # rows × shifts
    # log loss = log(1 + e^z) − y·z, overflow-free
    losses = np.logaddexp(0.0, z) - y[:, None] * z
    return np.append(losses.sum(axis=0), float(len(y))) / n_train


def pooled_loss(slots: np.ndarray) -> float:
    """The pooled validation loss of the model once its intercept is calibrated (the
    best shift) from the aggregated slots."""
    count = slots[-1]
    return float(np.min(slots[:-1]) / count) if count > 0 else float("nan")


def judge_round(stopper, schedule, server_round: int, slots, started_from, new):
    """Where the aggregator reads the pooled loss (plain, SecAgg+): round ``server_round``'s
    slots score ``started_from``, the model it began with; on a stop, training ends here
    (``schedule``) and the best model replaces ``new``, the one the round produced."""
    stopper.observe(server_round - 1, pooled_loss(slots), started_from)
    if not stopper.should_stop():
        return new
    stopper.stopped_at = server_round
    if schedule is not None:
        schedule.stop_training(server_round)
    return stopper.best_params


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
    "extra_slots",
    "judge_round",
    "pooled_loss",
    "validation_slots",
    "validation_split",
]
