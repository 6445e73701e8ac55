"""A bank's local training step: plain SGD, or DP-SGD, or clipped for client DP."""

from __future__ import annotations

import numpy as np

from fedrisk.horizontal.calibration import (
    CALIBRATE,
    calibration_statistics,
    private_calibration_statistics,
)
from fedrisk.horizontal.early_stopping import N_SLOTS, validation_slots
from fedrisk.horizontal.job import HorizontalJob, client_rng
from fedrisk.models.logistic import local_sgd
from fedrisk.privacy.mechanisms import clip_vector, dp_sgd_epochs


def local_update(
    job: HorizontalJob, party: int, global_params: np.ndarray, rnd: int, task: str = "train"
) -> np.ndarray:
    """One bank's local training from the global model; returns the delta. In a
    calibration round (``task``), the bank's calibration statistics instead
    (:mod:`fedrisk.horizontal.calibration`), privatised like a DP-SGD round under DP.

    dp = 'sample': DP-SGD (Poisson-sampled customers, per-example clipping, noise), so
    the delta is already private. dp = 'client': plain SGD, then the delta is clipped to
    the clip norm; the noise is added to the sum (by the aggregator, or by the banks in
    shares when the aggregator cannot see the sum).
    """
    bank = job.banks[party]
    dp = job.dp
    # DP: every draw (sampling, noise, and the client-DP path's batches) from the bank's
    # own secret, which no other party can regenerate; plain SGD from the public seed
    rng = (
        client_rng(job.scenario.seed, party, rnd)
        if dp is None
        else bank.secret.rng(f"local-update/{dp.mode}", party, rnd)
    )
    if task == CALIBRATE:
        if dp is None:
            return calibration_statistics(global_params, bank.X, bank.y)
        if dp.mode != "sample":  # the scenario runs no calibration round under client DP
            raise RuntimeError(f"no calibration round under dp = {dp.mode!r}")
        budget = dp.parties[bank.name]
        return private_calibration_statistics(
            global_params,
            bank.X,
            bank.y,
            sample_rate=budget.sample_rate,
            steps=budget.steps_per_round,
            clip_norm=dp.clip_norm,
            noise_multiplier=dp.noise_multiplier,
            rng=rng,
        )
    if dp is not None and dp.mode == "sample":
        budget = dp.parties[bank.name]
        m = job.scenario.model
        new, steps = dp_sgd_epochs(
            global_params,
            bank.X,
            bank.y,
            epochs=m.local_epochs,
            sample_rate=budget.sample_rate,
            clip_norm=dp.clip_norm,
            noise_multiplier=dp.noise_multiplier,
            learning_rate=m.learning_rate,
            l2=m.l2,
            rng=rng,
        )
        if steps != budget.steps_per_round:  # the accountant composed another number
            raise RuntimeError(
                f"{bank.name} ran {steps} DP-SGD steps, the accountant "
                f"counted {budget.steps_per_round}"
            )
        return new - global_params
    new = local_sgd(global_params, bank.X, bank.y, job.sgd, rng)
    if dp is not None:
        return clip_vector(new - global_params, dp.clip_norm)[0]
    return new - global_params


def validation_report(
    job: HorizontalJob, party: int, global_params: np.ndarray, task: str
) -> np.ndarray:
    """The early-stopping slots a bank adds to its update: its validation loss of the
    global model it received (zeros in a calibration round); empty without early stopping."""
    bank = job.banks[party]
    if bank.X_val is None or bank.y_val is None:
        return np.zeros(0)
    if task == CALIBRATE:
        return np.zeros(N_SLOTS)
    return validation_slots(global_params, bank.X_val, bank.y_val, len(bank.y))


__all__ = ["local_update", "validation_report"]
