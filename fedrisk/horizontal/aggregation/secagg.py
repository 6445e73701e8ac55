"""Secure aggregation with Flower's SecAgg+ (Bell et al., CCS 2020).

Flower 1.42 offers SecAgg+ only through its legacy API: ``SecAggPlusWorkflow`` inside a
``DefaultWorkflow`` on the server, ``secaggplus_mod`` on a ``NumPyClient`` app. Each
bank quantises its delta, adds pairwise masks agreed with its neighbours and a private
mask, and sends the masked vector; the masks cancel only in the sum. The aggregator
learns the *sum* (so the new global model, which all banks receive anyway), never one
bank's update. Unlike Paillier mode, the aggregator does see the global model.

Caveats (Flower's, stated in its docs): quantisation to ``quantization_range`` levels
over ``[-clip, clip]``, stochastic rounding from numpy's global generator (seeded here
from each bank's own secret), masks from a 32-bit-seeded numpy generator — fine for
simulation, not cryptographic. Needs ≥ 3 banks.
"""

from __future__ import annotations

import importlib
import math
import threading

import numpy as np
from flwr.app import Error, Message, MetricRecord
from flwr.client import NumPyClient
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key, Stage
from flwr.server import LegacyContext, ServerApp, ServerConfig
from flwr.server.strategy import FedAvg as LegacyFedAvg
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow

from fedrisk.errors import ProtocolError, QuorumError
from fedrisk.flower.checkpoint import Checkpoint
from fedrisk.flower.faults import LOST_PARTY_CODES, FaultPlan, fault_mod
from fedrisk.flower.recorder import ServerRecorder
from fedrisk.flower.recording_grid import RecordingGrid, identify_mod, message_round
from fedrisk.horizontal.calibration import TRAIN
from fedrisk.horizontal.client import party_errors_mod
from fedrisk.horizontal.early_stopping import EarlyStopping, judge_round
from fedrisk.horizontal.job import HorizontalJob, ServerJob, params_record
from fedrisk.horizontal.schedule import (
    RoundSchedule,
    ScheduleDone,
    load_training_state,
    training_state,
)
from fedrisk.horizontal.server_optimizer import ServerOptimizer
from fedrisk.horizontal.training import local_update, validation_report
from fedrisk.i18n import CLAUSE_SEP, N_
from fedrisk.models.logistic import n_params
from fedrisk.scenario import DEFAULT_SECAGG_THRESHOLD

MAX_NEIGHBOURS = 11  # SecAgg+: each bank shares keys with at most this many others


def secagg_shares(n_banks: int, threshold: float | None = None) -> tuple[int, int]:
    """(num_shares, reconstruction_threshold): full SecAgg up to 11 banks, then SecAgg+.

    ``threshold`` is privacy.secagg_threshold, the share of a bank's group needed to
    unmask (default 2/3). Higher resists more colluding banks; lower survives more
    dropouts (SecAgg+ halts a round when a group keeps fewer than the threshold).
    """
    shares = min(n_banks, MAX_NEIGHBOURS)
    t = max(
        2, math.ceil((DEFAULT_SECAGG_THRESHOLD if threshold is None else threshold) * shares - 1e-9)
    )
    return shares, min(t, shares - 1) if shares > 2 else 2


# --- the banks' side ---------------------------------------------------------------------


class SecAggBank(NumPyClient):
    def __init__(self, job, party: int) -> None:
        self.job, self.party = job, party

    def fit(self, parameters, config):
        rnd, task = int(config["server-round"]), str(config.get("task", TRAIN))
        delta = local_update(self.job, self.party, parameters[0], rnd, task)
        arrays = [delta]
        if self.job.scenario.model.early_stopping:  # summed under the same masks
            arrays.append(validation_report(self.job, self.party, parameters[0], task))
        return arrays, len(self.job.banks[self.party].y), {}


# The generator of the bank whose message this thread is handling (set by rounding_mod).
_ROUNDING = threading.local()
# Flower's secaggplus_mod quantises with its module's `quantize`, whose stochastic rounding
# draws from numpy's GLOBAL generator; fedrisk neither seeds nor uses that generator: the
# mod's name is pointed at the same quantisation drawing from the bank's own generator.
_SECAGGPLUS = importlib.import_module("flwr.client.mod.secure_aggregation.secaggplus_mod")
_FLOWER_QUANTIZE = _SECAGGPLUS.quantize


def quantize_with_bank_rng(
    parameters: list[np.ndarray], clipping_range: float, target_range: int
) -> list[np.ndarray]:
    """Flower 1.42's ``quantize`` (clip, shift, scale, stochastic rounding), with the
    rounding drawn from the bank's own generator; Flower's own outside a bank's message."""
    rng = getattr(_ROUNDING, "rng", None)
    if rng is None:
        return _FLOWER_QUANTIZE(parameters, clipping_range, target_range)
    quantizer = target_range / (2 * clipping_range)
    out = []
    for arr in parameters:
        pre = (np.clip(arr, -clipping_range, clipping_range) + clipping_range) * quantizer
        rounded = np.atleast_1d(np.ceil(pre).astype(np.int32))
        rounded[rng.random(rounded.shape) < rounded - np.atleast_1d(pre)] -= 1
        out.append(rounded.reshape(np.shape(pre)))
    return out


_SECAGGPLUS.quantize = quantize_with_bank_rng


def rounding_mod(job: HorizontalJob):
    """SecAgg+'s stochastic rounding from the bank's own secret, per round and stage: runs
    with a secrets file are reproducible, and nobody else can regenerate the rounding."""
    stages = {Stage.SETUP: 0, Stage.SHARE_KEYS: 1, Stage.COLLECT_MASKED_VECTORS: 2, Stage.UNMASK: 3}

    def mod(msg: Message, context, call_next) -> Message:
        rnd = int(msg.metadata.group_id or 0)
        stage = 9
        if msg.has_content() and RECORD_KEY_CONFIGS in msg.content.config_records:
            stage = stages.get(
                str(msg.content.config_records[RECORD_KEY_CONFIGS].get(Key.STAGE, "")), 9
            )
        party = int(context.node_config["partition-id"])
        return _call_with_bank_rng(
            job.banks[party].secret.rng("secagg/rounding", party, rnd, stage),
            call_next,
            msg,
            context,
        )

    return mod


def _call_with_bank_rng(rng: np.random.Generator, call_next, msg: Message, context) -> Message:
    # Module level, so Ray pickles it by reference. Thread-local: banks in parallel threads
    # each see their own generator.
    _ROUNDING.rng = rng
    try:
        return call_next(msg, context)
    finally:
        _ROUNDING.rng = None


def client_app(job: HorizontalJob, faults: FaultPlan, mods: list) -> ClientApp:
    """The banks' legacy NumPyClient app under ``secaggplus_mod``. Banks identify
    themselves first; a dropout strikes at the training stage, after the key exchange
    (Flower 1.42's SecAgg+ cannot recover a node lost during its set-up)."""
    base = [
        identify_mod(lambda i: job.banks[i].name),
        fault_mod(faults, message_round, is_training_stage),
        party_errors_mod(job),
    ]

    def client_fn(context):
        return SecAggBank(job, int(context.node_config["partition-id"])).to_client()

    return ClientApp(
        client_fn=client_fn,
        mods=[
            *base,
            *mods,
            withhold_count_mod,
            rounding_mod(job),
            secaggplus_mod,
        ],
    )


# --- the aggregator's side -----------------------------------------------------------------


class DeltaFedAvg(LegacyFedAvg):
    """Legacy FedAvg whose clients send deltas: new global = global + aggregated delta.

    Under SecAgg+ every result already carries the unmasked weighted mean of the banks
    that survived the round, so this takes it as is instead of re-averaging identical
    vectors. Banks that dropped out arrive as ``failures``; SecAgg+ itself removes their
    masks (or halts the round when fewer than its threshold remain).
    """

    def __init__(
        self,
        n_banks: int,
        initial: np.ndarray,
        evaluate,
        min_parties: int,
        offset: int = 0,
        optimizer: ServerOptimizer | None = None,
        schedule: RoundSchedule | None = None,
        stopper: EarlyStopping | None = None,
    ) -> None:
        super().__init__(
            fraction_fit=1.0,
            fraction_evaluate=0.0,
            min_fit_clients=min_parties,
            min_available_clients=min_parties,
            min_evaluate_clients=0,
            accept_failures=True,
            evaluate_fn=evaluate,
            on_fit_config_fn=self.fit_config,
            initial_parameters=ndarrays_to_parameters([initial]),
        )
        self.current, self.offset = initial, offset
        self.min_parties = min_parties
        self.optimizer, self.schedule, self.stopper = optimizer, schedule, stopper
        self.aggregated: dict[int, int] = {}  # round -> banks whose updates were summed
        self.halted: list[int] = []  # rounds SecAgg+ could not unmask (too few left)

    def task(self, server_round: int) -> str:
        return self.schedule.task(server_round) if self.schedule else TRAIN

    def fit_config(self, rnd: int) -> dict:
        return {"server-round": rnd + self.offset, "task": self.task(rnd + self.offset)}

    def state_dict(self) -> dict:
        return {
            "aggregated": {str(r): k for r, k in self.aggregated.items()},
            "halted": self.halted,
            **training_state(self.optimizer, self.schedule, self.stopper),
        }

    def load_state(self, state: dict) -> None:
        self.aggregated = {int(r): int(k) for r, k in state["aggregated"].items()}
        self.halted = [int(r) for r in state["halted"]]
        load_training_state(state, self.optimizer, self.schedule, self.stopper)

    def aggregate_fit(self, server_round, results, failures):
        server_round += self.offset
        for failure in failures:
            if not _is_dropout(failure):
                raise ProtocolError(
                    f"round {server_round}: a bank failed during SecAgg+: {failure}"
                )
        if len(results) < self.min_parties:
            raise QuorumError.too_few(
                server_round, f"{len(results)} parties answered", self.min_parties
            )
        self.aggregated[server_round] = len(results)
        arrays = parameters_to_ndarrays(results[0][1].parameters)
        mean_delta = arrays[0]
        task = self.task(server_round)
        before = self.current
        if self.optimizer is None:
            self.current = self.current + mean_delta
        else:
            self.current = self.optimizer.apply(task, server_round, self.current, mean_delta)
        if self.stopper is not None and task == TRAIN:
            # the masked sum's validation slots: the pooled loss of the model it started from
            self.current = judge_round(
                self.stopper, self.schedule, server_round, arrays[1], before, self.current
            )
        return ndarrays_to_parameters([self.current]), {}


def _is_dropout(failure: BaseException) -> bool:
    """SecAgg+ wraps each failed reply's ``Error`` in an Exception."""
    error = failure.args[0] if failure.args else None
    return isinstance(error, Error) and error.code in LOST_PARTY_CODES


def is_training_stage(msg: Message) -> bool:
    """The SecAgg+ stage in which a bank trains (and so may be slow)."""
    if not msg.has_content() or RECORD_KEY_CONFIGS not in msg.content.config_records:
        return False
    stage = msg.content.config_records[RECORD_KEY_CONFIGS].get(Key.STAGE, "")
    return stage == Stage.COLLECT_MASKED_VECTORS


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


class OffsetGrid(RecordingGrid):
    """Shifts the round (group id) of every message a resumed legacy workflow sends:
    Flower's legacy loop counts from 1 again, the run must not."""

    def __init__(self, inner: RecordingGrid, offset: int) -> None:
        self.__dict__.update(inner.__dict__)  # share its transcript, names and state
        self._recording, self.offset = inner, offset

    def _shift(self, messages):
        for msg in messages:
            if msg.metadata.group_id.isdigit():
                msg.metadata.group_id = str(int(msg.metadata.group_id) + self.offset)
            yield msg

    def push_messages(self, messages):
        return self._recording.push_messages(list(self._shift(messages)))

    def send_and_receive(self, messages, *, timeout=None):
        return self._recording.send_and_receive(list(self._shift(messages)), timeout=timeout)


COUNT_KEY = "fitres.num_examples"  # where Flower's legacy FitRes keeps the example count


def withhold_count_mod(msg: Message, context, call_next) -> Message:
    """Outside ``secaggplus_mod``: drop the bank's example count that Flower's SecAgg+
    leaves in the clear beside the masked vector (the count's weight travels masked
    inside it); the aggregator needs no bank's size."""
    reply = call_next(msg, context)
    if reply.has_content() and Key.MASKED_PARAMETERS in reply.content.config_records.get(
        RECORD_KEY_CONFIGS, {}
    ):
        del reply.content[COUNT_KEY]
    return reply


def _with_placeholder_count(msg: Message) -> Message:
    if msg.has_content() and Key.MASKED_PARAMETERS in msg.content.config_records.get(
        RECORD_KEY_CONFIGS, {}
    ):
        msg.content[COUNT_KEY] = MetricRecord({"num_examples": 0})
    return msg


class PlaceholderCountGrid(RecordingGrid):
    """Flower's legacy compat reads an example count from every masked-vector reply;
    banks withhold theirs (:func:`withhold_count_mod`), so after the transcript has
    recorded what crossed this puts a placeholder 0 there (DeltaFedAvg never reads it)."""

    def __init__(self, inner: RecordingGrid) -> None:
        self.__dict__.update(inner.__dict__)  # share its transcript, names and state
        self._wrapped = inner

    def push_messages(self, messages):
        return self._wrapped.push_messages(messages)

    def pull_messages(self, message_ids):
        return [_with_placeholder_count(m) for m in self._wrapped.pull_messages(message_ids)]

    def send_and_receive(self, messages, *, timeout=None):
        replies = self._wrapped.send_and_receive(messages, timeout=timeout)
        return [_with_placeholder_count(m) for m in replies]


def server_app(
    server_job: ServerJob, recorder: ServerRecorder, resume: Checkpoint | None = None
) -> ServerApp:
    n = len(server_job.party_names)
    s = server_job.scenario
    shares, threshold = secagg_shares(n, s.privacy.secagg_threshold)
    app = ServerApp()
    strategy: DeltaFedAvg | None = None

    def evaluate(rnd, ndarrays, config):
        if resume is not None:
            if rnd == 0:  # scored before the interruption
                recorder.start_clock()
                return None
            rnd += resume.round
        if rnd > 0 and rnd not in strategy.aggregated:
            # SecAgg+ halts a round (Flower logs it and goes on) when too few banks are
            # left to unmask it: the model does not move. The run goes on too, unless
            # fewer than min_parties are still answering at all.
            replies = [
                e
                for e in recorder.transcript.entries
                if e.round == rnd and e.receiver == recorder.server_name
            ]
            failed = sorted({e.sender for e in replies if e.what == "error"})
            if failed:  # a bank's own error, not a dropout
                raise ProtocolError(
                    f"round {rnd}: {', '.join(failed)} answered SecAgg+ "
                    "with an error and the round could not be unmasked"
                )
            updates = {e.sender for e in replies if e.what == "masked_update"}
            if len(updates) < s.quorum:
                raise QuorumError.too_few(rnd, f"{len(updates)} parties answered", s.quorum)
            strategy.halted.append(rnd)
        metrics = recorder.evaluate(rnd, params_record(ndarrays[0]))
        return 0.0, dict(metrics) if metrics is not None else {}

    @app.main()
    def main(grid, context) -> None:
        nonlocal strategy
        done = resume.round if resume is not None else 0
        start = (
            resume.arrays["params"].numpy()
            if resume is not None
            else np.zeros(n_params(server_job.n_features))
        )
        strategy = DeltaFedAvg(
            n,
            start,
            evaluate,
            s.quorum,
            offset=done,
            optimizer=ServerOptimizer(s.model),
            schedule=RoundSchedule(s.rounds, s.calibration_rounds),
            stopper=EarlyStopping(s.model.patience) if s.model.early_stopping else None,
        )
        recorder.strategy = strategy
        timeout = s.federation.round_timeout
        legacy = LegacyContext(
            context=context,
            strategy=strategy,
            config=ServerConfig(num_rounds=s.max_rounds - done, round_timeout=timeout),
        )
        workflow = DefaultWorkflow(
            fit_workflow=SecAggPlusWorkflow(
                num_shares=shares,
                reconstruction_threshold=threshold,
                max_weight=float(server_job.max_weight),
                clipping_range=s.privacy.update_range,
                timeout=timeout,
            )
        )
        grid = RecordingGrid(grid, recorder.transcript, classify_secagg)
        recorder.party_of = grid.party_of
        try:
            if resume is None:
                grid.identify(len(server_job.party_names), quorum=s.quorum, reply_timeout=timeout)
            else:
                grid.party_of.update(resume.party_of)
                strategy.load_state(resume.server["strategy"])
                grid = OffsetGrid(grid, done)
            try:
                workflow(PlaceholderCountGrid(grid), legacy)
            except ScheduleDone:  # stopped early, and the calibration rounds are over
                pass
        except Exception as exc:
            recorder.error = exc
            raise
        recorder.final_params = strategy.current
        if strategy.stopper is not None:  # the aggregator read the pooled validation losses
            recorder.early_stopping = strategy.stopper.summary(
                s.rounds, strategy.schedule.last_training_round
            )

    return app


def summary(server_job: ServerJob) -> dict:
    s = server_job.scenario
    shares, threshold = secagg_shares(len(server_job.party_names), s.privacy.secagg_threshold)
    return {
        "who_learns_what": {
            # clauses marked for the catalogs, joined with CLAUSE_SEP: the Chinese report
            # translates them one by one
            "aggregator": CLAUSE_SEP.join(
                (
                    N_(
                        "the weighted sum of the banks' updates each round (so the global "
                        "model), not one bank's update unless it colludes with enough of "
                        "that bank's neighbours to unmask it ({threshold} of {shares} shares)"
                    ).format(threshold=threshold, shares=shares),
                    N_("which banks answered"),
                    N_(
                        "the total rows of each round's answering banks (Flower's SecAgg+ "
                        "weighs inside the masked sum), so, with dropouts, a bank's row count "
                        "from two rounds' totals"
                    ),
                )
            ),
            "banks": N_("the global model each round, and the pairwise key-agreement messages"),
        },
        "secagg": {
            "num_shares": shares,
            "reconstruction_threshold": threshold,
            "update_range": s.privacy.update_range,
            "quantization_levels": 2**22,
        },
    }


__all__ = [
    "DeltaFedAvg",
    "OffsetGrid",
    "classify_secagg",
    "client_app",
    "is_training_stage",
    "secagg_shares",
    "server_app",
    "summary",
]
