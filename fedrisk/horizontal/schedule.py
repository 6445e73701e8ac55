"""Which task each Flower round of a horizontal run carries.

Rounds 1..R train (R = ``rounds``, or the round early stopping ended training at), then
``Scenario.calibration_rounds`` calibration rounds follow
(:mod:`fedrisk.horizontal.calibration`). The round's task travels in its messages'
config (``task``), so banks know what to compute and, in Paillier mode, how to apply
each aggregate they decrypt.
"""

from __future__ import annotations

from typing import Any

from fedrisk.horizontal.calibration import CALIBRATE, TRAIN


class ScheduleDone(Exception):
    """Raised by a strategy asked to configure a round after the last one: training
    stopped early and the calibration rounds are over (the ServerApp ends the run)."""


class RoundSchedule:
    def __init__(self, rounds: int, calibration_rounds: int) -> None:
        self.rounds, self.calibration_rounds = rounds, calibration_rounds
        self.stopped_at: int | None = None  # last training round, when stopped early

    @property
    def last_training_round(self) -> int:
        return self.stopped_at if self.stopped_at is not None else self.rounds

    @property
    def last_round(self) -> int:
        return self.last_training_round + self.calibration_rounds

    def task(self, rnd: int) -> str:
        """``train`` or ``calibrate``; ScheduleDone past the last round."""
        if rnd <= self.last_training_round:
            return TRAIN
        if rnd <= self.last_round:
            return CALIBRATE
        raise ScheduleDone(rnd)

    def stop_training(self, rnd: int) -> None:
        """Training ends after round ``rnd`` (early stopping; a decision that arrives
        after the last training round changes nothing here)."""
        if rnd < self.rounds:
            self.stopped_at = rnd

    def state_dict(self) -> dict[str, Any]:
        return {"stopped_at": self.stopped_at}

    def load_state(self, state: dict[str, Any]) -> None:
        self.stopped_at = state.get("stopped_at")


def training_state(optimizer, schedule, stopper) -> dict[str, Any]:
    """What an aggregator's strategy checkpoints of its training: the server optimiser's
    moments, the schedule and the early-stopping record (each may be absent)."""
    return {
        "optimizer": optimizer.state_dict() if optimizer else {},
        "schedule": schedule.state_dict() if schedule else {},
        "early_stopping": stopper.state_dict() if stopper else {},
    }


def load_training_state(state: dict[str, Any], optimizer, schedule, stopper) -> None:
    for part, key in (
        (optimizer, "optimizer"),
        (schedule, "schedule"),
        (stopper, "early_stopping"),
    ):
        if part is not None:
            part.load_state(state.get(key, {}))


__all__ = ["RoundSchedule", "ScheduleDone", "load_training_state", "training_state"]
