"""FedAvg over the banks that answered: the base every aggregation mode wraps."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from fedrisk.errors import QuorumError
from fedrisk.flower.faults import answered
from fedrisk.horizontal.calibration import TRAIN
from fedrisk.horizontal.early_stopping import EarlyStopping, judge_round
from fedrisk.horizontal.job import params_record
from fedrisk.horizontal.schedule import RoundSchedule, load_training_state, training_state
from fedrisk.horizontal.server_optimizer import ServerOptimizer


class BankFedAvg(FedAvg):
    """FedAvg over plaintext bank deltas, weighted by examples, in bank order.

    Wraps Flower's FedAvg rather than forking it: message construction and the round
    loop are Flower's; this class picks the banks (every connected one, in node order,
    without Flower's wait for a fixed number of nodes, since banks may be gone for
    good) and aggregates, deterministically, whatever the banks that answered sent.
    """

    def __init__(
        self,
        n_banks: int,
        min_parties: int = 1,
        optimizer: ServerOptimizer | None = None,
        schedule: RoundSchedule | None = None,
        stopper: EarlyStopping | None = None,
    ) -> None:
        super().__init__(
            fraction_train=1.0,
            fraction_evaluate=0.0,
            min_train_nodes=min_parties,
            min_available_nodes=min_parties,
            min_evaluate_nodes=0,
        )
        self.n_banks, self.min_parties = n_banks, min_parties
        self.optimizer = optimizer  # None: plain FedAvg, every round a training round
        self.schedule = schedule
        self.stopper = stopper  # early stopping (it reads the pooled validation loss)
        self._global: np.ndarray | None = None
        self.latest_arrays: ArrayRecord | None = None

    def early_stop(self, server_round: int, slots: np.ndarray, new: np.ndarray) -> np.ndarray:
        """Read round ``server_round``'s pooled validation loss (of the model it started
        from) and, if training should stop, return the best model instead of ``new``."""
        if self.stopper is None or self.task(server_round) != TRAIN:
            return new
        return judge_round(self.stopper, self.schedule, server_round, slots, self._global, new)

    def task(self, server_round: int) -> str:
        """The round's task (raises ScheduleDone past the last round)."""
        return self.schedule.task(server_round) if self.schedule else "train"

    def step(self, server_round: int, aggregate: np.ndarray) -> np.ndarray:
        """The next global model from this round's aggregate (the server optimiser, or
        the calibration round's intercept step)."""
        if self.optimizer is None:
            return self._global + aggregate
        return self.optimizer.apply(self.task(server_round), server_round, self._global, aggregate)

    def train_nodes(self, server_round: int, grid: Grid) -> list[int]:
        """Every connected bank that identified itself, in node order."""
        known = getattr(grid, "party_of", None)
        nodes = [n for n in sorted(grid.get_node_ids()) if not known or n in known]
        if len(nodes) < self.min_parties:
            raise QuorumError.too_few(
                server_round, f"{len(nodes)} parties are connected", self.min_parties
            )
        return nodes

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self.latest_arrays = arrays  # the model so far, if this round is past the end
        task = self.task(server_round)
        self._global = arrays["params"].numpy()
        cfg = ConfigRecord({**dict(config), "server-round": server_round, "task": task})
        record = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: cfg})
        return self._construct_messages(
            record, self.train_nodes(server_round, grid), MessageType.TRAIN
        )

    def state_dict(self) -> dict[str, Any]:
        """What the strategy must remember between rounds: the server optimiser's
        moments and the schedule (the global model travels in the checkpoint's arrays)."""
        return training_state(self.optimizer, self.schedule, self.stopper)

    def load_state(self, state: dict[str, Any]) -> None:
        load_training_state(state, self.optimizer, self.schedule, self.stopper)

    def answered(
        self, server_round: int, replies: Iterable[Message], asked: int | None = None
    ) -> list[Message]:
        return answered(server_round, list(replies), self.min_parties, asked=asked)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        ok = self.answered(server_round, replies)
        ok.sort(key=lambda m: int(m.content["metrics"]["partition-id"]))
        weights = np.array([float(m.content["metrics"]["num-examples"]) for m in ok])
        deltas = np.stack([m.content["update"]["delta"].numpy() for m in ok])
        # Weighted mean of deltas in a fixed order: bit-identical on every engine.
        share = weights / weights.sum()
        new = self.step(server_round, share @ deltas)
        if self.stopper is not None:
            slots = np.stack([m.content["update"]["validation"].numpy() for m in ok])
            new = self.early_stop(server_round, share @ slots, new)
        return params_record(new), MetricRecord({"num-examples": int(weights.sum())})


__all__ = ["BankFedAvg"]
