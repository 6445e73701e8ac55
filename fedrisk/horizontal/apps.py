"""The banks' ClientApp and the aggregator's ServerApp for a horizontal scenario.

Banks send model *deltas*; the aggregator averages them weighted by the banks' example
counts. How the deltas travel is the aggregation mode's business
(:mod:`fedrisk.horizontal.aggregation`): these two functions look the mode up and let it
build its apps, so every engine drives the same pair.
"""

from __future__ import annotations

from flwr.clientapp import ClientApp
from flwr.serverapp import ServerApp

from fedrisk.flower.checkpoint import Checkpoint
from fedrisk.flower.faults import FaultPlan
from fedrisk.flower.recorder import ServerRecorder
from fedrisk.horizontal.aggregation import mode_of
from fedrisk.horizontal.job import HorizontalJob, ServerJob


def make_client_app(job: HorizontalJob, mods: list | None = None) -> ClientApp:
    """The bank's ClientApp for the scenario's aggregation mode.

    ``mods`` are extra Flower mods placed closest to the bank (tests use them to tamper
    with what a bank sends).
    """
    mode = mode_of(job.scenario.privacy.aggregation)
    faults = FaultPlan.from_scenario(job.scenario)
    return mode.implementation().client_app(job, faults, list(mods or []))


def make_server_app(
    server_job: ServerJob, recorder: ServerRecorder, resume: Checkpoint | None = None
) -> ServerApp:
    """The aggregator's ServerApp for the scenario's aggregation mode.

    ``resume`` (a :class:`~fedrisk.flower.checkpoint.Checkpoint`) continues an
    interrupted run after its last completed round instead of starting afresh.
    """
    mode = mode_of(server_job.scenario.privacy.aggregation)
    return mode.implementation().server_app(server_job, recorder, resume)


__all__ = ["make_client_app", "make_server_app"]
