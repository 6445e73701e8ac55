"""The server optimiser: how a round's aggregate moves the global model.

``model.server_optimizer`` names one of Flower's adaptive federated optimisers (Reddi et
al., ICLR 2021: FedAdam, FedYogi, FedAdagrad) or plain FedAvg. The step runs wherever the
aggregate is readable: on the aggregator in plain and SecAgg+ mode, on every bank
(identically, from the same decrypted aggregates) in Paillier mode, and in the harness
that replays the banks' decryptions to score each round. So every side calls
:meth:`ServerOptimizer.apply` on the same numbers in the same order, and the models agree.

The update rules are Flower's own: a Flower strategy object is kept, and its
``aggregate_train`` runs with the FedAvg part (averaging replies) replaced by the
aggregate fedrisk already computed, so only Flower's optimiser arithmetic (m_t, v_t,
bias-corrected step) acts on it.

A calibration round's aggregate is not a model change but the pooled calibration
statistics; :meth:`ServerOptimizer.apply` routes it to the intercept's Newton step
(:func:`fedrisk.horizontal.calibration.newton_intercept`) and leaves the optimiser's
moments alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord
from flwr.serverapp.strategy import FedAdagrad, FedAdam, FedAvg, FedYogi

from fedrisk.horizontal.calibration import CALIBRATE, TRAIN, newton_intercept
from fedrisk.scenario import ModelConfig


class _GivenAggregate(FedAvg):
    """Stands where FedAvg's averaging sits in a FedOpt strategy's method order: it
    returns the aggregate fedrisk computed instead of averaging Flower replies."""

    given: np.ndarray | None = None

    def aggregate_train(self, server_round, replies):
        return ArrayRecord({"params": Array(self.given)}), None


def _flower_class(base: type) -> type:
    # MRO: base (e.g. FedAdam) -> FedOpt -> _GivenAggregate -> FedAvg: the optimiser's
    # super().aggregate_train() reaches _GivenAggregate
    return type(f"Given{base.__name__}", (base, _GivenAggregate), {})


FLOWER_OPTIMIZERS: dict[str, type] = {
    "fedadam": _flower_class(FedAdam),
    "fedyogi": _flower_class(FedYogi),
    "fedadagrad": _flower_class(FedAdagrad),
}


class ServerOptimizer:
    """One side's copy of the server optimiser (its moments are state: checkpointed by
    the aggregator, kept in the bank's Flower context in Paillier mode)."""

    def __init__(self, model: ModelConfig) -> None:
        self.name, self.eta = model.server_optimizer, model.server_learning_rate
        self._flower = None
        if self.name != "fedavg":
            kwargs = dict(eta=self.eta, eta_l=model.learning_rate, tau=model.server_tau)
            if self.name != "fedadagrad":  # Flower's FedAdagrad has no moment decays
                kwargs.update(beta_1=model.server_beta_1, beta_2=model.server_beta_2)
            self._flower = FLOWER_OPTIMIZERS[self.name](**kwargs)

    def apply(self, task: str, rnd: int, params: np.ndarray, aggregate: np.ndarray) -> np.ndarray:
        """The global model after round ``rnd``'s ``aggregate`` (a weighted mean delta for
        a training round, pooled statistics for a calibration round)."""
        if task == CALIBRATE:
            return newton_intercept(params, aggregate)
        if task != TRAIN:
            raise ValueError(f"unknown round task {task!r}")
        if self._flower is None:  # FedAvg with a server learning rate
            return params + aggregate if self.eta == 1.0 else params + self.eta * aggregate
        opt = self._flower
        opt.current_arrays = {"params": params}
        opt.given = params + aggregate
        new, _ = opt.aggregate_train(rnd, [])
        return new["params"].numpy()

    def state_dict(self) -> dict[str, Any]:
        opt = self._flower
        if opt is None:
            return {}
        return {
            name: None if moment is None else moment["params"].tolist()
            for name, moment in (("m_t", opt.m_t), ("v_t", opt.v_t))
        }

    def load_state(self, state: dict[str, Any]) -> None:
        opt = self._flower
        if opt is None:
            return
        for name in ("m_t", "v_t"):
            value = state.get(name)
            setattr(opt, name, None if value is None else {"params": np.array(value)})


__all__ = ["FLOWER_OPTIMIZERS", "ServerOptimizer"]
