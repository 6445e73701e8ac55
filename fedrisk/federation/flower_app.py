"""Module-level Flower apps, so the project is a Flower App (``flwr run .``).

``pyproject.toml`` names these in ``[tool.flwr.app.components]``. They delegate to the
same factories ``fedrisk run`` uses; the scenario file comes from the run config key
``scenario`` (default ``scenarios/quickstart.toml``), and each SuperNode's
``partition-id`` picks its bank.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from fedrisk.data.prepare import prepare_horizontal
from fedrisk.federation.horizontal import (HorizontalJob, ServerRecorder, make_client_app,
                                           make_server_app)
from fedrisk.models.logistic import predict_proba
from fedrisk.scenario import load_scenario

DEFAULT_SCENARIO = "scenarios/quickstart.toml"
log = logging.getLogger("fedrisk")


@lru_cache(maxsize=4)
def _job(scenario_path: str) -> tuple[HorizontalJob, object, ClientApp]:
    from fedrisk.runner import _bank_job

    s = load_scenario(scenario_path)
    if s.federation.kind != "horizontal" or s.privacy.aggregation == "paillier":
        raise ValueError(f"{scenario_path}: `flwr run` drives horizontal plain or secagg "
                         "runs (Paillier needs the banks' key ceremony, vertical its PSI "
                         "state): use `fedrisk run` for those")
    data = prepare_horizontal(s)
    job = _bank_job(s, data, None)
    return job, data.test, make_client_app(job)


def _scenario_path(context: Context) -> str:
    return str(context.run_config.get("scenario", DEFAULT_SCENARIO))


client_app = ClientApp()


@client_app.train()
def train(msg: Message, context: Context) -> Message:
    _, _, bank_app = _job(_scenario_path(context))
    return bank_app(msg, context)


@client_app.query("identify")
def identify(msg: Message, context: Context) -> Message:
    _, _, bank_app = _job(_scenario_path(context))
    return bank_app(msg, context)


server_app = ServerApp()


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    from fedrisk.evaluation.metrics import score_metrics

    job, test, _ = _job(_scenario_path(context))
    recorder = ServerRecorder(lambda p: score_metrics(test.y, predict_proba(p, test.X)))
    make_server_app(job.server_side(), recorder)(grid, context)
    final = recorder.rounds[-1].test if recorder.rounds else {}
    log.warning("fedrisk: %s finished %d rounds; test AUC %.4f", job.scenario.name,
                len(recorder.rounds), final.get("auc", float("nan")))
