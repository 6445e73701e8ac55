"""Plain aggregation: banks send float deltas the aggregator reads and averages.

With client-level DP the aggregator clips nothing (the banks clip their own deltas) and
adds the Gaussian noise to the sum (:class:`~fedrisk.horizontal.client_dp.ClientDPFedAvg`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import ServerApp
from flwr.serverapp.strategy import Strategy

from fedrisk.flower.checkpoint import Checkpoint
from fedrisk.flower.faults import FaultPlan
from fedrisk.flower.recorder import ServerRecorder
from fedrisk.horizontal.calibration import TRAIN
from fedrisk.horizontal.client import fedavg_client_app
from fedrisk.horizontal.client_dp import ClientDPFedAvg
from fedrisk.horizontal.early_stopping import EarlyStopping
from fedrisk.horizontal.fedavg import BankFedAvg
from fedrisk.horizontal.job import HorizontalJob, ServerJob, params_record
from fedrisk.horizontal.schedule import RoundSchedule
from fedrisk.horizontal.server import fedavg_server_app
from fedrisk.horizontal.server_optimizer import ServerOptimizer
from fedrisk.horizontal.training import local_update, validation_report
from fedrisk.i18n import N_
from fedrisk.models.logistic import n_params


def plain_train(job: HorizontalJob, party: int, msg: Message, context: Context) -> Message:
    cfg = msg.content["config"]
    rnd, task = int(cfg["server-round"]), str(cfg.get("task", TRAIN))
    global_params = msg.content["arrays"]["params"].numpy()
    delta = local_update(job, party, global_params, rnd, task)
    update = {"delta": Array(delta)}
    if job.scenario.model.early_stopping:
        update["validation"] = Array(validation_report(job, party, global_params, task))
    content = RecordDict(
        {
            "update": ArrayRecord(update),
            "metrics": MetricRecord(
                {"num-examples": len(job.banks[party].y), "partition-id": party}
            ),
        }
    )
    return Message(content=content, reply_to=msg)


def classify_plain(msg: Message, to_server: bool) -> tuple[str, str, bool]:
    return ("model_update" if to_server else "global_model"), "plaintext", True


def client_app(job: HorizontalJob, faults: FaultPlan, mods: list) -> ClientApp:
    return fedavg_client_app(job, faults, mods, plain_train)


def server_app(
    server_job: ServerJob, recorder: ServerRecorder, resume: Checkpoint | None
) -> ServerApp:
    s, n, dp = server_job.scenario, len(server_job.party_names), server_job.dp

    def strategy() -> Strategy:
        optimizer = ServerOptimizer(s.model)
        if dp is not None and dp.mode == "client":
            return ClientDPFedAvg(n, dp, server_job.secret, s.quorum, optimizer)
        stopper = EarlyStopping(s.model.patience) if s.model.early_stopping else None
        schedule = RoundSchedule(s.rounds, s.calibration_rounds)
        return BankFedAvg(n, s.quorum, optimizer, schedule, stopper)

    initial = params_record(np.zeros(n_params(server_job.n_features)))
    return fedavg_server_app(
        server_job, recorder, resume, strategy, classify_plain, initial, model_is_opaque=False
    )


def summary(server_job: ServerJob) -> dict[str, Any]:
    return {
        "who_learns_what": {
            "aggregator": N_(
                "every bank's model update and example count, in the clear, and the global model"
            ),
            "banks": N_("the global model each round"),
        }
    }


__all__ = ["classify_plain", "client_app", "plain_train", "server_app", "summary"]
