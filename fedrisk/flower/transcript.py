"""Who sent what to whom: every message that crosses a party boundary.

Rows are written to ``transcript.jsonl``. ``bytes`` is the size of the message
payload (its Flower ``RecordDict``) serialised to protobuf; routing metadata (node and
message ids, a few dozen bytes that differ between engines) is left out so that every
engine reports the same figure. ``protection`` says what the
receiver gets: ``plaintext`` (readable), ``ciphertext`` or ``masked`` (not readable
without a key or the other masks); ``readable_by_receiver`` is the boolean the privacy
tests check.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from flwr.app import Message
from flwr.common.serde import recorddict_to_proto

SERVER = "server"
PROTECTIONS = ("plaintext", "ciphertext", "masked")
# the ``what`` of a reply that carries a bank's update, in each aggregation mode
UPDATE_KINDS = frozenset({"model_update", "encrypted_update", "masked_update"})


def message_bytes(message: Message) -> int:
    """Serialised size of a Flower message's payload in bytes."""
    return recorddict_to_proto(message.content).ByteSize() if message.has_content() else 0


@dataclass(frozen=True)
class TranscriptEntry:
    round: int
    sender: str
    receiver: str
    what: str
    bytes: int
    protection: str
    readable_by_receiver: bool

    def __post_init__(self) -> None:
        if self.protection not in PROTECTIONS:
            raise ValueError(f"protection must be one of {PROTECTIONS}")


class Transcript:
    """An append-only list of :class:`TranscriptEntry` with per-round byte totals."""

    def __init__(self) -> None:
        self.entries: list[TranscriptEntry] = []

    def add(self, entry: TranscriptEntry) -> None:
        self.entries.append(entry)

    def bytes_in_round(self, rnd: int) -> int:
        return sum(e.bytes for e in self.entries if e.round == rnd)

    @property
    def total_bytes(self) -> int:
        return sum(e.bytes for e in self.entries)

    def write_jsonl(self, path: Path) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            for e in self.entries:
                fh.write(json.dumps(asdict(e), sort_keys=True) + "\n")


def read_jsonl(path: Path) -> list[TranscriptEntry]:
    with open(path, encoding="utf-8") as fh:
        return [TranscriptEntry(**json.loads(line)) for line in fh if line.strip()]
