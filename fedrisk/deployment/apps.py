"""Module-level Flower apps, for Flower's Deployment Engine (and ``flwr run .``).

``pyproject.toml`` names these in ``[tool.flwr.app.components]``; they build the same
apps ``fedrisk run`` uses in-process, from what each side may know:

- the ServerApp (aggregator) gets the *public* job from the run config key
  ``fedrisk-job`` (JSON: the scenario, party names, feature count, public weight bound
  (a power of two), the DP plan without any bank's budget, Paillier public key) and
  never loads customer data or learns a bank's size;
- each ClientApp (a bank, on its own SuperNode) reads the same public job, its identity
  from the node config ``partition-id``, its own rows from the node config
  ``data-path`` (a ``.npz`` with ``X`` and ``y``, written by ``fedrisk run --engine
  deployment``), under record-level DP its own budget from ``dp-plan`` and, in Paillier
  mode, the banks' key from ``paillier-key``.

Vertical runs (public job ``"kind": "vertical"``) are handed to
:mod:`fedrisk.deployment.vertical_apps`: the bank is the ServerApp, the data parties the
ClientApps, each reading only its own files.

``fedrisk run --engine deployment`` writes a tiny app folder whose config carries the
job, starts or reaches the federation and collects the result, which the ServerApp
emits as one log line (:data:`RESULT_MARK`) so it also arrives from a remote SuperLink.

Without ``fedrisk-job`` (``flwr run .`` in a checkout), the config key ``scenario``
names a scenario file and every node derives its bank's rows from the scenario's data
(bundled or synthetic data exist wherever fedrisk is installed): a simulator's
shortcut, fine for trying the Deployment Engine, not for real banks.
"""

from __future__ import annotations

import json
import os
import sys
import tomllib
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from phe import paillier
from phe.paillier import PaillierPrivateKey

from fedrisk.crypto.threshold import KeyShare
from fedrisk.data.prepare import prepare_horizontal
from fedrisk.deployment.bank_files import read_bank_key, read_bank_rows, read_dp_plan
from fedrisk.deployment.result import PROGRESS_MARK, RESULT_MARK, encode_result, result_record
from fedrisk.deployment.vertical_apps import bank_main, party_app
from fedrisk.deployment.vertical_files import is_vertical
from fedrisk.flower.recorder import ServerRecorder
from fedrisk.horizontal.aggregation import mode_of
from fedrisk.horizontal.apps import make_client_app, make_server_app
from fedrisk.horizontal.early_stopping import extra_slots
from fedrisk.horizontal.job import BankData, HorizontalJob, ServerJob, rows_digest
from fedrisk.horizontal.layout import PaillierSetup, paillier_setup
from fedrisk.horizontal.setup import bank_job
from fedrisk.privacy.plan import DPPlan
from fedrisk.privacy.secrets import read_secret_file
from fedrisk.scenario import Scenario, load_scenario, scenario_from_dict, to_toml

DEFAULT_SCENARIO = "scenarios/quickstart.toml"
# the SuperLink's environment names the aggregator's secret file (never the run config,
# which every SuperNode sees)
AGGREGATOR_SECRET_ENV = "FEDRISK_AGGREGATOR_SECRET"
PROJECT = Path(__file__).resolve().parents[2]  # the checkout (or the unpacked app)


# --- the public job -----------------------------------------------------------------------


def public_job(job: HorizontalJob) -> dict[str, Any]:
    """What every party may know about a run (no rows, no private key)."""
    server = job.server_side()
    setup = job.paillier
    return {
        "scenario_toml": to_toml(job.scenario),
        "scenario_path": job.scenario.source_file,
        "party_names": list(server.party_names),
        "bank_digests": [rows_digest(b) for b in job.banks],
        "n_features": job.n_features,
        "max_weight": server.max_weight,
        "dp": server.dp.to_dict() if server.dp is not None else None,
        "paillier_n": str(setup.public_key.n) if setup is not None else None,
    }


def _scenario(public: dict[str, Any]) -> Scenario:
    return scenario_from_dict(tomllib.loads(public["scenario_toml"]), public["scenario_path"])


def _paillier_setup(public: dict[str, Any], s: Scenario) -> PaillierSetup | None:
    if public["paillier_n"] is None:
        return None
    dp = public["dp"]
    rate = dp["sample_rate"] if dp is not None and dp["mode"] == "client" else None
    return paillier_setup(
        paillier.PaillierPublicKey(int(public["paillier_n"])),
        public["n_features"],
        len(public["party_names"]),
        public["max_weight"],  # a power of two: the layout it gives is the banks' own
        s.privacy.update_range,
        rate,
        extra_slots(s.model.early_stopping),
    )


def _dp(public: dict[str, Any]) -> DPPlan | None:
    return DPPlan.from_dict(public["dp"]) if public["dp"] is not None else None


def server_job_from(public: dict[str, Any]) -> ServerJob:
    s = _scenario(public)
    return ServerJob(
        s,
        tuple(public["party_names"]),
        public["n_features"],
        public["max_weight"],
        _paillier_setup(public, s),
        _dp(public),
    )


def bank_job_from(
    public: dict[str, Any],
    party: int,
    rows: BankData,
    private_key: PaillierPrivateKey | KeyShare | None,
    dp: DPPlan | None = None,
) -> HorizontalJob:
    """One bank's job: its own rows, key (a threshold key: its own share only) and DP
    budget (``dp``, from its own files; else the public plan); the other banks appear by
    name only."""
    s = _scenario(public)
    dp = dp if dp is not None else _dp(public)
    if dp is not None and dp.mode == "sample" and rows.name not in dp.parties:
        raise ValueError(
            f"{rows.name}: record-level DP needs this bank's own budget (node config "
            "dp-plan, written by fedrisk data split); the public job carries none"
        )
    empty = np.zeros((0, public["n_features"]))
    banks = tuple(
        rows if i == party else BankData(name, empty, np.zeros(0))
        for i, name in enumerate(public["party_names"])
    )
    share = private_key if isinstance(private_key, KeyShare) else None
    return HorizontalJob(
        s,
        banks,
        public["n_features"],
        _paillier_setup(public, s),
        None if share else private_key,
        dp,
        (share,) if share else None,
    )


# --- `flwr run .` without fedrisk: everything from a scenario path -------------------------


@lru_cache(maxsize=4)
def _job_from_scenario(path: str) -> HorizontalJob:
    s = load_scenario(path)
    if s.federation.kind != "horizontal" or mode_of(s.privacy.aggregation).bank_keys:
        raise ValueError(
            f"{path}: `flwr run .` drives horizontal plain or secagg runs "
            "(Paillier needs the banks' key ceremony, vertical the bank's own files "
            "and key): use `fedrisk run --engine deployment` for those"
        )
    return bank_job(s, prepare_horizontal(s), None)


def scenario_file(name: str) -> str:
    """A relative ``scenario`` is relative to the Flower App folder. The apps run in their
    SuperLink's or SuperNode's folder, so look there, in the checkout fedrisk was
    installed from, and in the unpacked app (Flower puts it on ``sys.path``)."""
    path = Path(name)
    if path.is_absolute():
        return str(path)
    for base in (Path.cwd(), PROJECT, *(Path(p) for p in sys.path if p)):
        if (base / path).is_file():
            return str(base / path)
    return name  # load_scenario names it in its error


def _public(context: Context) -> dict[str, Any]:
    text = context.run_config.get("fedrisk-job")
    if text:
        return json.loads(str(text))
    scenario = scenario_file(str(context.run_config.get("scenario", DEFAULT_SCENARIO)))
    return public_job(_job_from_scenario(scenario))


# --- the apps ---------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _bank_app(
    public_text: str,
    party: int,
    data_path: str,
    key_path: str,
    dp_path: str,
    secret_path: str = "",
) -> ClientApp:
    public = json.loads(public_text)
    name = public["party_names"][party]
    dp = read_dp_plan(dp_path) if dp_path else None
    if data_path:
        rows = read_bank_rows(data_path, name, secret_path)
    else:  # `flwr run .`: derive this bank's rows (and budget) from the scenario's data
        derived = _job_from_scenario(str(public["scenario_path"]))
        rows = derived.banks[party]
        dp = derived.dp.for_party(name) if derived.dp is not None else None
    expected = public["bank_digests"][party]
    if rows_digest(rows) != expected:
        raise ValueError(
            f"{name}: its rows ({data_path or 'derived'}) are not the ones this "
            f"scenario's split gives (fingerprint {rows_digest(rows)}, expected "
            f"{expected}); write them again with fedrisk data split"
        )
    key = read_bank_key(key_path) if key_path else None
    return make_client_app(bank_job_from(public, party, rows, key, dp))


def _dispatch(msg: Message, context: Context) -> Message:
    public = _public(context)
    if is_vertical(public):  # a data party of a vertical run
        return party_app(public, context)(msg, context)
    cfg = context.node_config
    app = _bank_app(
        json.dumps(public, sort_keys=True),
        int(cfg["partition-id"]),
        str(cfg.get("data-path", "")),
        str(cfg.get("paillier-key", "")),
        str(cfg.get("dp-plan", "")),
        str(cfg.get("secret-path", "")),  # the bank's own secret (fresh when absent)
    )
    return app(msg, context)


client_app = ClientApp()


@client_app.query("vertical")
def vertical(msg: Message, context: Context) -> Message:
    return _dispatch(msg, context)


@client_app.train()
def train(msg: Message, context: Context) -> Message:
    return _dispatch(msg, context)


@client_app.query("identify")
def identify(msg: Message, context: Context) -> Message:
    return _dispatch(msg, context)


@client_app.query("decrypt")  # Paillier with a threshold key: a partial decryption
def decrypt(msg: Message, context: Context) -> Message:
    return _dispatch(msg, context)


server_app = ServerApp()


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    try:
        public = _public(context)
        if is_vertical(public):  # the bank of a vertical run: its own files, its result
            return bank_main(grid, context, public, _emit)
        job = server_job_from(public)
        if os.environ.get(AGGREGATOR_SECRET_ENV):  # the aggregator's own secret
            job = replace(job, secret=read_secret_file(os.environ[AGGREGATOR_SECRET_ENV]))
    except Exception as exc:  # reported to the harness like any other failure
        _emit(RESULT_MARK + encode_result(result_record(ServerRecorder(None), [], exc)))
        raise
    params_by_round: list[np.ndarray] = []

    def keep(params: np.ndarray) -> dict[str, float]:
        params_by_round.append(params)  # scored by the harness, which holds test rows
        return {}

    def on_round(rnd: int, metrics: dict[str, float]) -> None:
        if rnd > 0:
            _emit(PROGRESS_MARK + f"{rnd}/{job.scenario.max_rounds}")

    sees_model = mode_of(job.scenario.privacy.aggregation).server_sees_global_model
    recorder = ServerRecorder(keep if sees_model else None, on_round)
    error = None
    try:
        make_server_app(job, recorder)(grid, context)
    except Exception as exc:  # reported to the harness with the result
        error = exc
    _emit(
        RESULT_MARK
        + encode_result(result_record(recorder, params_by_round, error or recorder.error))
    )


def _emit(line: str) -> None:
    print(line, flush=True)
    sys.stdout.flush()


__all__ = [
    "AGGREGATOR_SECRET_ENV",
    "bank_job_from",
    "client_app",
    "public_job",
    "scenario_file",
    "server_app",
    "server_job_from",
]
