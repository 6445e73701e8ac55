"""The two sides of a vertical run inside Flower's Deployment Engine apps.

:mod:`fedrisk.deployment.apps` hands a vertical job (public job ``"kind": "vertical"``)
here: the ServerApp is the bank, reading its own files; each ClientApp is a data party,
reading only its own rows. A party's protocol state lives in its node's
``Context.state``, which the SuperNode keeps between messages and hands to each
ClientApp process (:mod:`fedrisk.vertical.party`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import numpy as np
from flwr.app import Context
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid

from fedrisk.deployment.result import PROGRESS_MARK, RESULT_MARK, encode_result, result_record
from fedrisk.deployment.vertical_files import (
    BANK_FILES_ENV,
    party_digest,
    public_dp,
    public_key_of,
    public_scenario,
    read_bank_job,
    read_party,
)
from fedrisk.flower.recorder import ServerRecorder
from fedrisk.vertical.bank import make_bank_app
from fedrisk.vertical.party import make_party_app
from fedrisk.vertical.protocol import DataPartyJob, PartyData, VerticalOutcome


@lru_cache(maxsize=8)
def _party_app(public_text: str, pid: int, data_path: str, secret_path: str = "") -> ClientApp:
    """Party ``pid``'s ClientApp from its own file; the other parties by name only. A
    cache of what the file and the public job give (a fresh process rebuilds it)."""
    public = json.loads(public_text)
    names = public["party_names"]
    if not 0 <= pid < len(names):
        raise ValueError(f"partition-id {pid}: this run has {len(names)} data parties")
    if not data_path:
        raise ValueError(
            f"{names[pid]}: give the SuperNode its rows with --node-config "
            "data-path=... (fedrisk data split writes them)"
        )
    own = read_party(data_path, names[pid], secret_path)
    if party_digest(own) != public["party_digests"][pid]:
        raise ValueError(
            f"{names[pid]}: its rows ({data_path}) are not the ones this "
            f"scenario gives (fingerprint {party_digest(own)}, expected "
            f"{public['party_digests'][pid]}); write them again with "
            "fedrisk data split"
        )
    parties = tuple(
        own if i == pid else PartyData(name, np.zeros(0, dtype=str), np.zeros((0, 0)), ())
        for i, name in enumerate(names)
    )
    dp = public_dp(public)
    job = DataPartyJob(
        public_scenario(public),
        parties,
        public_key_of(public),
        dp.clip_norm if dp is not None else None,
    )
    return make_party_app(job)


def party_app(public: Mapping[str, Any], context: Context) -> ClientApp:
    """The data party's ClientApp for this SuperNode (its node config says which)."""
    cfg = context.node_config
    return _party_app(
        json.dumps(public, sort_keys=True),
        int(cfg["partition-id"]),
        str(cfg.get("data-path", "")),
        str(cfg.get("secret-path", "")),  # the party's own secret (fresh when absent)
    )


def bank_main(
    grid: Grid, context: Context, public: Mapping[str, Any], emit: Callable[[str], None]
) -> None:
    """The bank's ServerApp on the Deployment Engine: read its files, run the protocol,
    ``emit`` progress lines and the result line (also when it fails)."""
    rounds = public_scenario(public).rounds

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        emit(PROGRESS_MARK + f"{epoch}/{rounds}")

    recorder, outcome, error = ServerRecorder(None, on_epoch), VerticalOutcome(), None
    try:
        bank = read_bank_job(public, os.environ.get(BANK_FILES_ENV))
        make_bank_app(bank, recorder, outcome)(grid, context)
    except Exception as exc:  # reported to the harness with the result
        error = exc
    record = result_record(recorder, [], error or recorder.error)
    record["vertical"] = outcome.to_dict()
    emit(RESULT_MARK + encode_result(record))


__all__ = ["bank_main", "party_app"]
