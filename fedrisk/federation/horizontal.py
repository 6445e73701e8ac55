"""Horizontal federation: banks with the same features and different customers.

One Flower ``ClientApp`` (a bank) and one ``ServerApp`` (the aggregator). Banks send
model *deltas*; the aggregator averages them weighted by the banks' example counts. How
the deltas travel depends on ``privacy.aggregation``:

- ``plain``: float arrays the aggregator reads (:class:`BankFedAvg`);
- ``paillier``: packed Paillier ciphertexts (:mod:`fedrisk.federation.paillier_agg`);
- ``secagg``: Flower's SecAgg+ masking (:mod:`fedrisk.federation.secagg`).

The bank side (:class:`HorizontalJob`, with data and, for Paillier, the private key) and
the aggregator side (:class:`ServerJob`, public parameters only) are separate objects,
so the aggregator can be shown never to hold anything private.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flwr.app import (Array, ArrayRecord, ConfigRecord, Error, Message, MessageType,
                      MetricRecord, RecordDict)
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from fedrisk.federation.checkpoint import ResumedStrategy
from fedrisk.federation.faults import FaultPlan, QuorumError, answered, fault_mod
from fedrisk.federation.recording_grid import (RecordingGrid, identify_mod, identity_reply,
                                               message_round)
from fedrisk.federation.transcript import UPDATE_KINDS, Transcript
from fedrisk.models.logistic import SGDConfig, local_sgd, n_params
from fedrisk.privacy.mechanisms import clip_vector, dp_sgd_epochs
from fedrisk.scenario import Scenario


@dataclass(frozen=True)
class BankData:
    """One bank's training rows (never leave the bank's ClientApp)."""

    name: str
    X: np.ndarray
    y: np.ndarray


def rows_digest(bank: BankData) -> str:
    """A short fingerprint of a bank's rows. SuperNodes check they were given the rows
    the scenario's split gives (a file from another scenario or seed would train a
    different model, and could overlap the harness's test rows); a resumed run checks
    the data did not change since it started."""
    h = hashlib.sha256(np.ascontiguousarray(bank.X, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(bank.y, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class HorizontalJob:
    """Everything the banks hold: their rows and, in Paillier mode, the shared key pair."""

    scenario: Scenario
    banks: tuple[BankData, ...]
    n_features: int
    paillier: Any = None       # PaillierSetup (public parameters)
    private_key: Any = None    # the banks' Paillier private key
    dp: Any = None             # DPPlan: noise multiplier, clip norm, sampling rates

    @property
    def sgd(self) -> SGDConfig:
        m = self.scenario.model
        return SGDConfig(m.learning_rate, m.local_epochs, m.batch_size, m.l2, m.proximal_mu)

    def server_side(self) -> "ServerJob":
        """The aggregator's view: names, sizes of things, public parameters. No data."""
        return ServerJob(self.scenario, tuple(b.name for b in self.banks), self.n_features,
                         public_max_weight(max(len(b.y) for b in self.banks)), self.paillier,
                         self.dp)


@dataclass(frozen=True)
class ServerJob:
    scenario: Scenario
    party_names: tuple[str, ...]
    n_features: int
    max_weight: int            # public bound on any bank's example count (a power of 2)
    paillier: Any = None       # PaillierSetup: public key and packing layout only
    dp: Any = None             # DPPlan (public)


def public_max_weight(max_rows: int) -> int:
    """The next power of two at or above the largest bank: a public bound on example
    counts that reveals only their order of magnitude."""
    return 1 << max(0, (max_rows - 1).bit_length())


def client_rng(seed: int, party: int, rnd: int) -> np.random.Generator:
    """A bank's generator for one round: depends on nothing an engine could reorder."""
    return np.random.default_rng([seed, 1, party, rnd])


def params_record(params: np.ndarray) -> ArrayRecord:
    return ArrayRecord({"params": Array(np.ascontiguousarray(params, dtype=np.float64))})


def local_update(job: HorizontalJob, party: int, global_params: np.ndarray,
                 rnd: int) -> np.ndarray:
    """One bank's local training from the global model; returns the delta.

    dp = 'sample': DP-SGD (Poisson-sampled customers, per-example clipping, noise), so
    the delta is already private. dp = 'client': plain SGD, then the delta is clipped to
    the clip norm; the noise is added to the sum (by the aggregator, or by the banks in
    shares when the aggregator cannot see the sum).
    """
    bank = job.banks[party]
    rng = client_rng(job.scenario.seed, party, rnd)
    dp = job.dp
    if dp is not None and dp.mode == "sample":
        budget = dp.parties[bank.name]
        m = job.scenario.model
        new, steps = dp_sgd_epochs(global_params, bank.X, bank.y, epochs=m.local_epochs,
                                   sample_rate=budget.sample_rate, clip_norm=dp.clip_norm,
                                   noise_multiplier=dp.noise_multiplier,
                                   learning_rate=m.learning_rate, l2=m.l2, rng=rng)
        if steps != budget.steps_per_round:  # the accountant composed another number
            raise RuntimeError(f"{bank.name} ran {steps} DP-SGD steps, the accountant "
                               f"counted {budget.steps_per_round}")
        return new - global_params
    new = local_sgd(global_params, bank.X, bank.y, job.sgd, rng)
    if dp is not None:
        return clip_vector(new - global_params, dp.clip_norm)[0]
    return new - global_params


def party_errors_mod(job: HorizontalJob):
    """Turn a bank's exception into a Flower error reply that names the bank."""

    def mod(msg: Message, context, call_next) -> Message:
        try:
            return call_next(msg, context)
        except Exception as exc:
            name = job.banks[int(context.node_config["partition-id"])].name
            return Message(Error(code=1, reason=f"{name}: {type(exc).__name__}: {exc}"),
                           reply_to=msg)

    return mod


def make_client_app(job: HorizontalJob, mods: list | None = None) -> ClientApp:
    """The bank's ClientApp for the scenario's aggregation mode.

    ``mods`` are extra Flower mods placed closest to the bank (tests use them to tamper
    with what a bank sends).
    """
    aggregation = job.scenario.privacy.aggregation
    faults = FaultPlan.from_scenario(job.scenario)
    if aggregation == "secagg":
        from fedrisk.federation.secagg import is_training_stage, make_secagg_client_app
        base = [identify_mod(lambda i: job.banks[i].name),
                fault_mod(faults, message_round, is_training_stage), party_errors_mod(job)]
        return make_secagg_client_app(job, base + list(mods or []))
    app = ClientApp(mods=[fault_mod(faults, message_round), party_errors_mod(job),
                          *(mods or [])])
    if aggregation == "paillier":
        from fedrisk.federation.paillier_agg import paillier_train
        handler = paillier_train
    else:
        handler = plain_train

    @app.train()
    def train(msg: Message, context) -> Message:
        return handler(job, int(context.node_config["partition-id"]), msg, context)

    @app.query("identify")
    def identify(msg: Message, context) -> Message:
        return identity_reply(msg, job.banks[int(context.node_config["partition-id"])].name)

    return app


def plain_train(job: HorizontalJob, party: int, msg: Message, context) -> Message:
    rnd = int(msg.content["config"]["server-round"])
    delta = local_update(job, party, msg.content["arrays"]["params"].numpy(), rnd)
    content = RecordDict({
        "update": ArrayRecord({"delta": Array(delta)}),
        "metrics": MetricRecord({"num-examples": len(job.banks[party].y),
                                 "partition-id": party}),
    })
    return Message(content=content, reply_to=msg)


class BankFedAvg(FedAvg):
    """FedAvg over plaintext bank deltas, weighted by examples, in bank order.

    Wraps Flower's FedAvg rather than forking it: message construction and the round
    loop are Flower's; this class picks the banks (every connected one, in node order,
    without Flower's wait for a fixed number of nodes, since banks may be gone for
    good) and aggregates, deterministically, whatever the banks that answered sent.
    """

    def __init__(self, n_banks: int, min_parties: int = 1) -> None:
        super().__init__(fraction_train=1.0, fraction_evaluate=0.0,
                         min_train_nodes=min_parties, min_available_nodes=min_parties,
                         min_evaluate_nodes=0)
        self.n_banks, self.min_parties = n_banks, min_parties
        self._global: np.ndarray | None = None

    def train_nodes(self, server_round: int, grid: Grid) -> list[int]:
        """Every connected bank that identified itself, in node order."""
        known = getattr(grid, "party_of", None)
        nodes = [n for n in sorted(grid.get_node_ids()) if not known or n in known]
        if len(nodes) < self.min_parties:
            raise QuorumError.too_few(server_round, f"{len(nodes)} parties are connected",
                                      self.min_parties)
        return nodes

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        self._global = arrays["params"].numpy()
        cfg = ConfigRecord({**dict(config), "server-round": server_round})
        record = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: cfg})
        return self._construct_messages(record, self.train_nodes(server_round, grid),
                                        MessageType.TRAIN)

    def state_dict(self) -> dict[str, Any]:
        """What the strategy must remember between rounds (plain FedAvg: nothing; the
        global model travels in the checkpoint's arrays)."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        pass

    def answered(self, server_round: int, replies: Iterable[Message],
                 asked: int | None = None) -> list[Message]:
        return answered(server_round, list(replies), self.min_parties, asked=asked)

    def aggregate_train(self, server_round: int, replies: Iterable[Message]
                        ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        ok = self.answered(server_round, replies)
        ok.sort(key=lambda m: int(m.content["metrics"]["partition-id"]))
        weights = np.array([float(m.content["metrics"]["num-examples"]) for m in ok])
        deltas = np.stack([m.content["update"]["delta"].numpy() for m in ok])
        # Weighted mean of deltas in a fixed order: bit-identical on every engine.
        new = self._global + (weights / weights.sum()) @ deltas
        return params_record(new), MetricRecord({"num-examples": int(weights.sum())})


NOT_ANSWERS = ("error", "dropped", "lost")


def classify_plain(msg: Message, to_server: bool) -> tuple[str, str, bool]:
    return ("model_update" if to_server else "global_model"), "plaintext", True


@dataclass
class RoundLog:
    """What one round cost and scored (for rounds.csv)."""

    round: int
    n_replies: int
    bytes: int
    wall_s: float
    test: dict[str, float] = field(default_factory=dict)


class ServerRecorder:
    """Collects what the ServerApp produced, for the runner to write out.

    ``evaluate_params`` is the simulator's view, not part of the protocol: it scores the
    global model on held-out rows no party sent anywhere. When the aggregator never holds
    the model in the clear (Paillier), there is nothing to score during the run:
    ``evaluate_params`` is None and the opaque per-round aggregates are kept for the
    banks' side of the harness to decode afterwards.
    """

    def __init__(self, evaluate_params: Callable[[np.ndarray], dict[str, float]] | None,
                 on_round: Callable[[int, dict[str, float]], None] | None = None) -> None:
        self.evaluate_params = evaluate_params
        self.on_round = on_round or (lambda rnd, metrics: None)
        self.transcript = Transcript()
        self.rounds: list[RoundLog] = []
        self.opaque: dict[int, ArrayRecord] = {}
        self.final_params: np.ndarray | None = None
        self.final_opaque: ArrayRecord | None = None
        self.error: BaseException | None = None
        self.server_name = "server"  # who receives replies (the bank, in vertical runs)
        self.on_checkpoint: Callable[[int, ArrayRecord], None] | None = None
        self.strategy: Any = None     # the aggregation strategy (its state is checkpointed)
        self.party_of: dict[int, str] = {}  # node id -> party, from the identify handshake
        # the replies that carry a bank's update (a round's other replies, e.g. SecAgg+
        # key exchange, do not count as answering it); None: every reply but errors
        self.update_kinds: frozenset[str] | None = UPDATE_KINDS
        self._last = time.perf_counter()

    def evaluate(self, rnd: int, arrays: ArrayRecord) -> MetricRecord | None:
        metrics: dict[str, float] = {}
        if self.evaluate_params is not None:
            metrics = self.evaluate_params(arrays["params"].numpy())
        elif rnd > 0 and "round" in arrays and int(arrays["round"].numpy()[0]) == rnd:
            self.opaque[rnd] = arrays  # a round nobody took part in has no new aggregate
        if rnd > 0:
            self.log_round(rnd, metrics)
            if self.on_checkpoint is not None:
                self.on_checkpoint(rnd, arrays)
        else:
            self.start_clock()
            self.on_round(rnd, metrics)
        return MetricRecord(metrics) if metrics else None

    # --- checkpoints ------------------------------------------------------------------
    def state_dict(self, with_transcript: bool = True) -> dict[str, Any]:
        """The recorder as JSON-able values. Checkpoints append the transcript to a file
        of its own instead (``with_transcript=False``): rewriting it every round would
        cost rounds² time."""
        from fedrisk.federation.checkpoint import records_to_text
        state = {"rounds": [vars(r) for r in self.rounds],
                 "transcript_entries": len(self.transcript.entries),
                 "opaque": {str(r): records_to_text(RecordDict({"a": rec}))
                            for r, rec in self.opaque.items()}}
        if with_transcript:
            state["transcript"] = [dict(vars(e)) for e in self.transcript.entries]
        return state

    def load_state(self, state: dict[str, Any], transcript: list | None = None) -> None:
        from fedrisk.federation.checkpoint import records_from_text
        from fedrisk.federation.transcript import TranscriptEntry
        self.rounds = [RoundLog(**r) for r in state["rounds"]]
        rows = state["transcript"] if transcript is None else transcript
        self.transcript.entries = [TranscriptEntry(**e) for e in rows]
        self.opaque = {int(r): records_from_text(t)["a"] for r, t in state["opaque"].items()}

    def start_clock(self) -> None:
        """Round 1's seconds count from here."""
        self._last = time.perf_counter()

    def log_round(self, rnd: int, metrics: dict[str, float]) -> None:
        """Close round ``rnd``: its replies, bytes and seconds, for rounds.csv."""
        now = time.perf_counter()
        kinds = self.update_kinds
        replies = len({e.sender for e in self.transcript.entries
                       if e.round == rnd and e.receiver == self.server_name
                       and (e.what in kinds if kinds else e.what not in NOT_ANSWERS)})
        self.rounds.append(RoundLog(rnd, replies, self.transcript.bytes_in_round(rnd),
                                    now - self._last, metrics))
        self._last = now
        self.on_round(rnd, metrics)


def make_server_app(server_job: ServerJob, recorder: ServerRecorder,
                    resume: Any = None) -> ServerApp:
    """The aggregator's ServerApp for the scenario's aggregation mode.

    ``resume`` (a :class:`~fedrisk.federation.checkpoint.Checkpoint`) continues an
    interrupted run after its last completed round instead of starting afresh.
    """
    aggregation = server_job.scenario.privacy.aggregation
    if aggregation == "secagg":
        from fedrisk.federation.secagg import make_secagg_server_app
        return make_secagg_server_app(server_job, recorder, resume)
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context) -> None:
        n = len(server_job.party_names)
        s = server_job.scenario
        dp, seed, quorum = server_job.dp, s.seed, s.quorum
        if aggregation == "paillier":
            from fedrisk.federation.paillier_agg import PaillierFedAvg, classify_paillier
            strategy = PaillierFedAvg(n, server_job.paillier, dp, seed, quorum)
            classify, initial = classify_paillier, ArrayRecord()
        else:
            if dp is not None and dp.mode == "client":
                from fedrisk.federation.client_dp import ClientDPFedAvg
                strategy = ClientDPFedAvg(n, dp, seed, quorum)
            else:
                strategy = BankFedAvg(n, quorum)
            classify = classify_plain
            initial = params_record(np.zeros(n_params(server_job.n_features)))
        recorder.strategy = strategy  # checkpoints, and tests that read what it released
        grid = RecordingGrid(grid, recorder.transcript, classify)
        recorder.party_of = grid.party_of
        done, evaluate, runner = 0, recorder.evaluate, strategy
        try:
            if resume is None:
                grid.identify(len(server_job.party_names), quorum=quorum,
                              reply_timeout=s.federation.round_timeout)
            else:
                done, initial = resume.round, resume.arrays
                grid.party_of.update(resume.party_of)
                strategy.load_state(resume.server["strategy"])
                evaluate, runner = _shifted(recorder, done), ResumedStrategy(strategy, done)
            result = runner.start(grid=grid, initial_arrays=initial,
                                  num_rounds=s.rounds - done,
                                  timeout=s.federation.round_timeout, evaluate_fn=evaluate)
        except Exception as exc:  # keep it for the runner: Ray swallows ServerApp errors
            recorder.error = exc
            raise
        final = result.arrays if s.rounds > done else initial
        if aggregation == "paillier":
            recorder.final_opaque = final
        else:
            recorder.final_params = final["params"].numpy()

    return app


def _shifted(recorder: ServerRecorder, done: int):
    """evaluate_fn for a resumed run: Flower's round r is the run's round done + r."""

    def evaluate(rnd: int, arrays: ArrayRecord) -> MetricRecord | None:
        if rnd == 0:  # already scored before the interruption
            recorder.start_clock()
            return None
        return recorder.evaluate(rnd + done, arrays)

    return evaluate
