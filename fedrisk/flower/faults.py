"""Faults a real federation has: parties that drop out of a round, parties that are slow.

Injection is a Flower client mod (:func:`fault_mod`), so it works the same on every
engine: whether bank *i* drops out of round *r*, or is slow in it, is drawn from a
generator seeded by (seed, party, round) and nothing else, so a scenario replays the
same faults everywhere. A dropped party answers with an error reply *before* its
training code runs (it touches no data that round); a straggler sleeps
``federation.straggler_delay`` seconds first, and the aggregator, which waits at most
``federation.round_timeout`` seconds, goes on without it if that is too long.

The aggregator side (:func:`answered`) keeps the replies it can use, treats lost parties
as dropouts (injected ones, and those the transport reports: a crashed or unreachable
SuperNode), and stops the run when fewer than ``federation.min_parties`` answered. A
party that *answers with an error of its own* (it raised, or rejected what it was sent)
still stops the run: that is a protocol problem, not a dropout.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from flwr.app import Error, Message
from flwr.common.constant import ErrorCode

from fedrisk.errors import ProtocolError, QuorumError

DROPPED = 1100  # Error.code of an injected dropout (Flower's own codes are below 10)

# Errors the transport reports when a party is gone: treated as dropouts, not as faults
# of the protocol.
LOST_PARTY_CODES = frozenset(
    {
        DROPPED,
        ErrorCode.MESSAGE_UNAVAILABLE,
        ErrorCode.REPLY_MESSAGE_UNAVAILABLE,
        ErrorCode.NODE_UNAVAILABLE,
        ErrorCode.CLIENT_APP_CRASHED,
    }
)


@dataclass(frozen=True)
class FaultPlan:
    """Which party drops out of or straggles in which round (deterministic)."""

    seed: int
    dropout: float = 0.0
    stragglers: float = 0.0
    straggler_delay: float = 0.0

    @classmethod
    def from_scenario(cls, s) -> FaultPlan:
        f = s.federation
        return cls(s.seed, f.dropout, f.stragglers, f.straggler_delay)

    @property
    def active(self) -> bool:
        return self.dropout > 0 or (self.stragglers > 0 and self.straggler_delay > 0)

    def drops(self, party: int, rnd: int) -> bool:
        return (
            self.dropout > 0
            and np.random.default_rng([self.seed, 8, party, rnd]).random() < self.dropout
        )

    def delay(self, party: int, rnd: int) -> float:
        late = (
            self.stragglers > 0
            and np.random.default_rng([self.seed, 9, party, rnd]).random() < self.stragglers
        )
        return self.straggler_delay if late else 0.0


def fault_mod(plan: FaultPlan, round_of, does_work=lambda msg: True):
    """A client mod injecting ``plan``'s faults where a party would train.

    ``round_of(msg)`` reads the federated round (0 = set-up, never faulted);
    ``does_work(msg)`` says whether this message makes the party train. Faults strike
    there: in SecAgg+ that is after the key exchange, when a bank should send its masked
    update, which is the dropout the protocol is built to survive (Flower 1.42's SecAgg+
    cannot recover a bank lost during its set-up stage: it halts that round).
    """

    def mod(msg: Message, context, call_next) -> Message:
        rnd = round_of(msg)
        if rnd <= 0:
            return call_next(msg, context)
        if not does_work(msg):
            return call_next(msg, context)
        party = int(context.node_config["partition-id"])
        if plan.drops(party, rnd):
            return Message(
                Error(code=DROPPED, reason=f"dropped out of round {rnd} (federation.dropout)"),
                reply_to=msg,
            )
        pause = plan.delay(party, rnd)
        if pause:
            time.sleep(pause)
        return call_next(msg, context)

    return mod


def is_lost(msg: Message) -> bool:
    return msg.has_error() and msg.error.code in LOST_PARTY_CODES


def answered(
    rnd: int, replies: list[Message], min_parties: int, *, asked: int | None = None
) -> list[Message]:
    """The usable replies of round ``rnd``; raise if a party broke the protocol or too
    few answered.

    ``asked`` caps the quorum when fewer parties than ``min_parties`` were asked on
    purpose (client-level DP samples banks).
    """
    ok = []
    for m in replies:
        if not m.has_error():
            ok.append(m)
        elif not is_lost(m):
            raise ProtocolError(f"round {rnd}: {m.error.reason}")
    need = min_parties if asked is None else min(min_parties, asked)
    if len(ok) < need:
        raise QuorumError.too_few(rnd, f"{len(ok)} parties answered", min_parties)
    return ok


__all__ = ["DROPPED", "FaultPlan", "LOST_PARTY_CODES", "answered", "fault_mod", "is_lost"]
