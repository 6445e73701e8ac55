"""The banks' side of a FedAvg-based mode: one ClientApp that trains and identifies."""

from __future__ import annotations

from collections.abc import Callable

from flwr.app import Context, Error, Message
from flwr.clientapp import ClientApp

from fedrisk.flower.faults import FaultPlan, fault_mod
from fedrisk.flower.recording_grid import identity_reply, message_round
from fedrisk.horizontal.job import HorizontalJob

# (job, the bank's partition id, the message, its context) -> the reply
TrainHandler = Callable[[HorizontalJob, int, Message, Context], Message]


def party_errors_mod(job: HorizontalJob):
    """Turn a bank's exception into a Flower error reply that names the bank."""

    def mod(msg: Message, context: Context, call_next) -> Message:
        try:
            return call_next(msg, context)
        except Exception as exc:
            name = job.banks[int(context.node_config["partition-id"])].name
            return Message(
                Error(code=1, reason=f"{name}: {type(exc).__name__}: {exc}"), reply_to=msg
            )

    return mod


def fedavg_client_app(
    job: HorizontalJob,
    faults: FaultPlan,
    mods: list,
    handler: TrainHandler,
    queries: dict[str, TrainHandler] | None = None,
) -> ClientApp:
    """A bank's ClientApp: faults injected first, errors named, then ``mods`` (closest to
    the bank: tests tamper with what it sends), then ``handler`` for each round, and
    ``queries`` (action name -> handler) for a mode's extra exchanges."""
    app = ClientApp(mods=[fault_mod(faults, message_round), party_errors_mod(job), *mods])

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        return handler(job, int(context.node_config["partition-id"]), msg, context)

    for action, query_handler in (queries or {}).items():

        def query(msg: Message, context: Context, run=query_handler) -> Message:
            return run(job, int(context.node_config["partition-id"]), msg, context)

        app.query(action)(query)

    @app.query("identify")
    def identify(msg: Message, context: Context) -> Message:
        return identity_reply(msg, job.banks[int(context.node_config["partition-id"])].name)

    return app


__all__ = ["TrainHandler", "fedavg_client_app", "party_errors_mod"]
