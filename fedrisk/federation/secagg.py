"""Secure aggregation with Flower's SecAgg+ (Bell et al., CCS 2020).

Flower 1.42 offers SecAgg+ only through its legacy API: ``SecAggPlusWorkflow`` inside a
``DefaultWorkflow`` on the server, ``secaggplus_mod`` on a ``NumPyClient`` app. Each
bank quantises its delta, adds pairwise masks agreed with its neighbours and a private
mask, and sends the masked vector; the masks cancel only in the sum. The aggregator
learns the *sum* (so the new global model, which all banks receive anyway), never one
bank's update. Unlike Paillier mode, the aggregator does see the global model.

Caveats (Flower's, stated in its docs): quantisation to ``quantization_range`` levels
over ``[-clip, clip]``, stochastic rounding from numpy's global generator, masks from a
32-bit-seeded numpy generator — fine for simulation, not cryptographic. Needs ≥ 3 banks.
"""

from __future__ import annotations

import math
import threading

import numpy as np
from flwr.app import Message
from flwr.client import NumPyClient
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
from flwr.common.secure_aggregation.secaggplus_constants import (RECORD_KEY_CONFIGS, Key,
                                                                 Stage)
from flwr.server import LegacyContext, ServerApp, ServerConfig
from flwr.server.strategy import FedAvg as LegacyFedAvg
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow

from fedrisk.errors import ProtocolError
from fedrisk.federation.horizontal import local_update, params_record
from fedrisk.federation.recording_grid import RecordingGrid
from fedrisk.models.logistic import n_params

MAX_NEIGHBOURS = 11  # SecAgg+: each bank shares keys with at most this many others


def secagg_shares(n_banks: int) -> tuple[int, int]:
    """(num_shares, reconstruction_threshold): full SecAgg up to 11 banks, then SecAgg+."""
    shares = min(n_banks, MAX_NEIGHBOURS)
    return shares, max(2, math.ceil(2 * shares / 3))


# --- the banks' side ---------------------------------------------------------------------

class SecAggBank(NumPyClient):
    def __init__(self, job, party: int) -> None:
        self.job, self.party = job, party

    def fit(self, parameters, config):
        rnd = int(config["server-round"])
        delta = local_update(self.job, self.party, parameters[0], rnd)
        return [delta], len(self.job.banks[self.party].y), {}


_GLOBAL_RNG_LOCK = threading.Lock()


def seeded_rounding_mod(seed: int):
    """Seed numpy's global generator per bank, round and stage: Flower's stochastic
    rounding draws from it, and runs must be reproducible. The generator is global, so
    banks running in parallel threads take turns (a lock) while they use it."""
    stages = {Stage.SETUP: 0, Stage.SHARE_KEYS: 1, Stage.COLLECT_MASKED_VECTORS: 2,
              Stage.UNMASK: 3}

    def mod(msg: Message, context, call_next) -> Message:
        rnd = int(msg.metadata.group_id or 0)
        stage = 9
        if msg.has_content() and RECORD_KEY_CONFIGS in msg.content.config_records:
            stage = stages.get(str(msg.content.config_records[RECORD_KEY_CONFIGS].get(
                Key.STAGE, "")), 9)
        party = int(context.node_config["partition-id"])
        return _call_with_global_seed([seed % 2**32, 4, party, rnd, stage], call_next,
                                      msg, context)

    return mod


def _call_with_global_seed(words: list[int], call_next, msg: Message, context) -> Message:
    # Module level, so Ray pickles it by reference (a closure would drag the lock along).
    with _GLOBAL_RNG_LOCK:
        np.random.seed(words)
        return call_next(msg, context)


def make_secagg_client_app(job, mods: list) -> ClientApp:
    def client_fn(context):
        return SecAggBank(job, int(context.node_config["partition-id"])).to_client()

    return ClientApp(client_fn=client_fn,
                     mods=[*mods, seeded_rounding_mod(job.scenario.seed), secaggplus_mod])


# --- the aggregator's side -----------------------------------------------------------------

class DeltaFedAvg(LegacyFedAvg):
    """Legacy FedAvg whose clients send deltas: new global = global + aggregated delta.

    Under SecAgg+ every result already carries the unmasked weighted mean, so this takes
    it as is instead of re-averaging identical vectors.
    """

    def __init__(self, n_banks: int, initial: np.ndarray, evaluate) -> None:
        super().__init__(fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=n_banks,
                         min_available_clients=n_banks, min_evaluate_clients=0,
                         accept_failures=False, evaluate_fn=evaluate,
                         on_fit_config_fn=lambda rnd: {"server-round": rnd},
                         initial_parameters=ndarrays_to_parameters([initial]))
        self.current = initial

    def aggregate_fit(self, server_round, results, failures):
        if failures:
            first = failures[0]
            raise ProtocolError(f"round {server_round}: {len(failures)} bank(s) failed "
                                f"during SecAgg+: {first}")
        mean_delta = parameters_to_ndarrays(results[0][1].parameters)[0]
        self.current = self.current + mean_delta
        return ndarrays_to_parameters([self.current]), {}


def classify_secagg(msg: Message, to_server: bool) -> tuple[str, str, bool]:
    cfg = msg.content.config_records.get(RECORD_KEY_CONFIGS, {})
    if to_server:
        if Key.MASKED_PARAMETERS in cfg:
            return "masked_update", "masked", False
        if Key.CIPHERTEXT_LIST in cfg:  # key shares for other banks, encrypted to them
            return "encrypted_key_shares", "ciphertext", False
        if Key.SHARE_LIST in cfg:  # by design: lets the server remove masks of the sum
            return "mask_secret_shares", "plaintext", True
        return "public_keys", "plaintext", True
    stage = cfg.get(Key.STAGE, "")
    if stage == Stage.COLLECT_MASKED_VECTORS:
        return "global_model_and_key_shares", "plaintext", True
    return f"secagg_{stage or 'config'}", "plaintext", True


def make_secagg_server_app(server_job, recorder) -> ServerApp:
    n = len(server_job.party_names)
    s = server_job.scenario
    shares, threshold = secagg_shares(n)
    app = ServerApp()

    def evaluate(rnd, ndarrays, config):
        metrics = recorder.evaluate(rnd, params_record(ndarrays[0]))
        return 0.0, dict(metrics) if metrics is not None else {}

    @app.main()
    def main(grid, context) -> None:
        strategy = DeltaFedAvg(n, np.zeros(n_params(server_job.n_features)), evaluate)
        legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=s.rounds),
                               strategy=strategy)
        workflow = DefaultWorkflow(fit_workflow=SecAggPlusWorkflow(
            num_shares=shares, reconstruction_threshold=threshold,
            max_weight=float(server_job.max_weight),
            clipping_range=s.privacy.update_range))
        grid = RecordingGrid(grid, recorder.transcript, classify_secagg)
        try:
            grid.identify(len(server_job.party_names))
            workflow(grid, legacy)
        except Exception as exc:
            recorder.error = exc
            raise
        recorder.final_params = strategy.current

    return app
