"""Who took part in which round, read back from the transcript.

The transcript is what the aggregator saw, on every engine, so participation derived
from it is the same whether parties ran in this process, in Ray actors or on
SuperNodes. Privacy accounting uses it: a bank is charged for a round when it was asked
to train, unless it dropped out before training (an injected dropout, which strikes
before the bank's code runs) and sent no update. A reply the transport lost or that came
late still counts: the bank trained, and its update may be somewhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fedrisk.flower.transcript import SERVER, UPDATE_KINDS, TranscriptEntry

# messages that make a bank train: plain, Paillier (first round / later rounds), SecAgg+
TRAIN_INSTRUCTIONS = frozenset(
    {"global_model", "round_start", "encrypted_aggregate", "global_model_and_key_shares"}
)


@dataclass(frozen=True)
class Participation:
    rounds: int  # rounds the run completed
    asked: dict[str, tuple[int, ...]]  # party -> rounds it was asked to train
    dropped: dict[str, tuple[int, ...]]  # party -> rounds it dropped out of
    answered: dict[str, tuple[int, ...]]  # party -> rounds its update arrived

    @classmethod
    def from_transcript(
        cls,
        entries: Iterable[TranscriptEntry],
        parties: Iterable[str],
        rounds: int,
        server: str = SERVER,
    ) -> Participation:
        asked = {p: set() for p in parties}
        dropped = {p: set() for p in asked}
        answered = {p: set() for p in asked}
        for e in entries:
            if not 1 <= e.round <= rounds:
                continue
            if e.sender == server and e.receiver in asked and e.what in TRAIN_INSTRUCTIONS:
                asked[e.receiver].add(e.round)
            elif e.receiver == server and e.sender in asked:
                if e.what == "dropped":
                    dropped[e.sender].add(e.round)
                elif e.what in UPDATE_KINDS:
                    answered[e.sender].add(e.round)
        return cls(
            rounds,
            *({p: tuple(sorted(r)) for p, r in d.items()} for d in (asked, dropped, answered)),
        )

    def trained(self, party: str) -> tuple[int, ...]:
        """Rounds ``party`` trained in (privacy cost), in order: every round it was
        asked, except those it dropped out of before training and sent no update."""
        gone = set(self.dropped[party]) - set(self.answered[party])
        return tuple(r for r in self.asked[party] if r not in gone)

    def asked_in(self, rnd: int) -> int:
        return sum(rnd in r for r in self.asked.values())

    def answered_in(self, rnd: int) -> int:
        return sum(rnd in r for r in self.answered.values())

    def to_summary(self) -> dict:
        out = {}
        for p in self.asked:
            dropped = set(self.dropped[p]) - set(self.answered[p])
            out[p] = {
                "asked": len(self.asked[p]),
                "answered": len(self.answered[p]),
                "dropped": len(dropped),
                "lost_or_late": len(set(self.asked[p]) - set(self.answered[p]) - dropped),
            }
        return out
