"""What a ServerApp produced, for the run harness to score and write out.

Both federations use it: the horizontal aggregator through Flower's ``evaluate_fn``
(one call per round), the vertical bank through :meth:`ServerRecorder.log_round` (one
call per epoch).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, MetricRecord, RecordDict

from fedrisk.flower.checkpoint import records_from_text, records_to_text
from fedrisk.flower.transcript import UPDATE_KINDS, Transcript, TranscriptEntry

# transcript kinds of a reply that did not answer the round
NOT_ANSWERS = ("error", "dropped", "lost")


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

    def __init__(
        self,
        evaluate_params: Callable[[np.ndarray], dict[str, float]] | None,
        on_round: Callable[[int, dict[str, float]], None] | None = None,
    ) -> None:
        self.evaluate_params = evaluate_params
        self.on_round = on_round or (lambda rnd, metrics: None)
        self.transcript = Transcript()
        self.rounds: list[RoundLog] = []
        self.opaque: dict[int, ArrayRecord] = {}
        self.final_params: np.ndarray | None = None
        self.final_opaque: ArrayRecord | None = None
        self.error: BaseException | None = None
        self.early_stopping: dict[str, Any] | None = None  # where and why training stopped
        self.server_name = "server"  # who receives replies (the bank, in vertical runs)
        self.on_checkpoint: Callable[[int, ArrayRecord], None] | None = None
        # progress within a round (vertical: the share of an epoch's mini-batches done)
        self.on_step: Callable[[int, float], None] = lambda rnd, fraction: None
        self.strategy: Any = None  # the aggregation strategy (its state is checkpointed)
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
        state = {
            "rounds": [vars(r) for r in self.rounds],
            "transcript_entries": len(self.transcript.entries),
            "opaque": {
                str(r): records_to_text(RecordDict({"a": rec})) for r, rec in self.opaque.items()
            },
        }
        if with_transcript:
            state["transcript"] = [dict(vars(e)) for e in self.transcript.entries]
        return state

    def load_state(self, state: dict[str, Any], transcript: list | None = None) -> None:
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
        replies = len(
            {
                e.sender
                for e in self.transcript.entries
                if e.round == rnd
                and e.receiver == self.server_name
                and (e.what in kinds if kinds else e.what not in NOT_ANSWERS)
            }
        )
        self.rounds.append(
            RoundLog(rnd, replies, self.transcript.bytes_in_round(rnd), now - self._last, metrics)
        )
        self._last = now
        self.on_round(rnd, metrics)


__all__ = ["NOT_ANSWERS", "RoundLog", "ServerRecorder"]
