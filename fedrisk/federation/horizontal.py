"""Horizontal federation: banks with the same features and different customers.

One Flower ``ClientApp`` (a bank) and one ``ServerApp`` (the aggregator) built from a
:class:`HorizontalJob`. Banks send model *deltas* weighted by their example counts;
the server's :class:`BankFedAvg` wraps Flower's ``FedAvg`` and only changes how replies
are aggregated (in a fixed order, so every engine gives the same bits) and recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from fedrisk.federation.transcript import SERVER, Transcript, TranscriptEntry, message_bytes
from fedrisk.models.logistic import SGDConfig, local_sgd, loss, n_params
from fedrisk.scenario import Scenario


@dataclass(frozen=True)
class BankData:
    """One bank's training rows (never leave the bank's ClientApp)."""

    name: str
    X: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class HorizontalJob:
    scenario: Scenario
    banks: tuple[BankData, ...]
    n_features: int

    @property
    def sgd(self) -> SGDConfig:
        m = self.scenario.model
        return SGDConfig(m.learning_rate, m.local_epochs, m.batch_size, m.l2, m.proximal_mu)


def client_rng(seed: int, party: int, rnd: int) -> np.random.Generator:
    """A bank's generator for one round: depends on nothing an engine could reorder."""
    return np.random.default_rng([seed, 1, party, rnd])


def params_record(params: np.ndarray) -> ArrayRecord:
    return ArrayRecord({"params": Array(np.ascontiguousarray(params, dtype=np.float64))})


def make_client_app(job: HorizontalJob) -> ClientApp:
    """The bank's ClientApp: local SGD from the global model, reply with the delta."""
    app = ClientApp()

    @app.train()
    def train(msg: Message, context) -> Message:
        party = int(context.node_config["partition-id"])
        bank = job.banks[party]
        rnd = int(msg.content["config"]["server-round"])
        global_params = msg.content["arrays"]["params"].numpy()
        new = local_sgd(global_params, bank.X, bank.y, job.sgd,
                        client_rng(job.scenario.seed, party, rnd))
        content = RecordDict({
            "update": ArrayRecord({"delta": Array(new - global_params)}),
            "metrics": MetricRecord({
                "num-examples": len(bank.y),
                "partition-id": party,
                "train-loss": loss(new, bank.X, bank.y, job.sgd.l2),
            }),
        })
        return Message(content=content, reply_to=msg)

    return app


@dataclass
class RoundLog:
    """What the server side observed in one round (for rounds.csv)."""

    round: int
    n_replies: int
    train_loss: float
    bytes: int
    wall_s: float
    test: dict[str, float] = field(default_factory=dict)


class BankFedAvg(FedAvg):
    """FedAvg over bank deltas, weighted by examples, aggregated in party order.

    Wraps Flower's FedAvg rather than forking it: sampling, message construction and the
    round loop are Flower's; this class only aggregates (deterministically) and writes
    the transcript.
    """

    def __init__(self, n_banks: int, transcript: Transcript,
                 party_name: Callable[[int], str]) -> None:
        super().__init__(fraction_train=1.0, fraction_evaluate=0.0,
                         min_train_nodes=n_banks, min_available_nodes=n_banks,
                         min_evaluate_nodes=0)
        self.transcript = transcript
        self.party_name = party_name
        self.round_info: dict[int, dict] = {}
        self._sent: dict[int, int] = {}
        self._global: np.ndarray | None = None

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        messages = list(super().configure_train(server_round, arrays, config, grid))
        self._global = arrays["params"].numpy()
        self._sent = {m.metadata.dst_node_id: message_bytes(m) for m in messages}
        return messages

    def aggregate_train(self, server_round: int, replies: Iterable[Message]
                        ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        ok = [m for m in replies if not m.has_error()]
        failed = [m for m in replies if m.has_error()]
        ok.sort(key=lambda m: int(m.content["metrics"]["partition-id"]))
        for m in ok:
            party = self.party_name(int(m.content["metrics"]["partition-id"]))
            self._record(server_round, SERVER, party, "global_model",
                         self._sent.pop(m.metadata.src_node_id, 0))
            self._record(server_round, party, SERVER, "model_update", message_bytes(m))
        for node_id, size in sorted(self._sent.items()):  # sent, never answered
            self._record(server_round, SERVER, f"node-{node_id}", "global_model", size)
        self.round_info[server_round] = {
            "n_replies": len(ok), "n_failed": len(failed),
            "failures": [m.error.reason for m in failed],
        }
        if not ok:
            return None, None
        weights = np.array([float(m.content["metrics"]["num-examples"]) for m in ok])
        deltas = np.stack([m.content["update"]["delta"].numpy() for m in ok])
        # Weighted mean of deltas in a fixed order: bit-identical on every engine.
        new = self._global + (weights / weights.sum()) @ deltas
        losses = np.array([float(m.content["metrics"]["train-loss"]) for m in ok])
        metrics = MetricRecord({"train-loss": float(weights @ losses / weights.sum()),
                                "num-examples": int(weights.sum())})
        return params_record(new), metrics

    def _record(self, rnd: int, sender: str, receiver: str, what: str, size: int) -> None:
        self.transcript.add(TranscriptEntry(rnd, sender, receiver, what, size,
                                            "plaintext", True))


class ServerRecorder:
    """Collects what the ServerApp produced, for the runner to write out.

    ``evaluate`` is the simulator's view, not part of the protocol: it scores the
    global model on held-out rows no party sent anywhere.
    """

    def __init__(self, evaluate_params: Callable[[np.ndarray], dict[str, float]],
                 on_round: Callable[[int, dict[str, float]], None] | None = None) -> None:
        self.evaluate_params = evaluate_params
        self.on_round = on_round or (lambda rnd, metrics: None)
        self.transcript = Transcript()
        self.rounds: list[RoundLog] = []
        self.final_params: np.ndarray | None = None
        self.initial_test: dict[str, float] = {}
        self._last = time.perf_counter()

    def evaluate(self, rnd: int, arrays: ArrayRecord) -> MetricRecord:
        metrics = self.evaluate_params(arrays["params"].numpy())
        now = time.perf_counter()
        if rnd == 0:
            self.initial_test = metrics
        else:
            self._round_done(rnd, metrics, now - self._last)
        self._last = now
        self.on_round(rnd, metrics)
        return MetricRecord(metrics)

    def _round_done(self, rnd: int, metrics: dict[str, float], wall_s: float) -> None:
        self.rounds.append(RoundLog(rnd, 0, float("nan"),
                                    self.transcript.bytes_in_round(rnd), wall_s, metrics))


def make_server_app(job: HorizontalJob, recorder: ServerRecorder) -> ServerApp:
    """The aggregator's ServerApp: Flower's round loop with :class:`BankFedAvg`."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context) -> None:
        strategy = BankFedAvg(len(job.banks), recorder.transcript,
                              lambda i: job.banks[i].name)
        result = strategy.start(
            grid=grid,
            initial_arrays=params_record(np.zeros(n_params(job.n_features))),
            num_rounds=job.scenario.rounds,
            evaluate_fn=recorder.evaluate,
        )
        for log in recorder.rounds:
            info = strategy.round_info.get(log.round, {})
            log.n_replies = info.get("n_replies", 0)
            train = result.train_metrics_clientapp.get(log.round)
            if train is not None:
                log.train_loss = float(train["train-loss"])
        recorder.round_failures = {r: i["failures"] for r, i in strategy.round_info.items()
                                   if i["failures"]}
        recorder.final_params = result.arrays["params"].numpy()

    return app
