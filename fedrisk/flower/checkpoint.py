"""Checkpoints: a horizontal run's state after every round, so an interrupted run resumes.

Two files, kept apart because they belong to different parties:

- ``checkpoint.json``, the aggregator's side: the last completed round, what the
  strategy needs to go on (the global model, or Paillier's encrypted aggregate history
  and which bank has applied what), the aggregator's own secret (owner-only file) and
  the per-round log; beside it
  ``transcript.jsonl``, appended each round, which is also the privacy ledger (who
  trained in which round; ε is recomputed from it);
- ``banks.json``, the banks' side: each bank's Flower context state (a Paillier bank's
  decrypted copy of the model), each bank's own secret and, in Paillier mode, the
  banks' key pair. In a real
  federation each bank persists its own part; the simulator keeps them in one file.

Both are replaced atomically after each round. Values are stored exactly (float64 bytes,
Flower records as protobuf), so a resumed run ends bit for bit where an uninterrupted
one would.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.common.serde import recorddict_from_proto, recorddict_to_proto
from flwr.proto.recorddict_pb2 import RecordDict as ProtoRecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from fedrisk.errors import InputError

FORMAT = "fedrisk-checkpoint-v1"
SERVER_FILE = "checkpoint.json"
BANKS_FILE = "banks.json"
TRANSCRIPT_FILE = "transcript.jsonl"


def records_to_text(records: RecordDict) -> str:
    return base64.b64encode(recorddict_to_proto(records).SerializeToString()).decode()


def records_from_text(text: str) -> RecordDict:
    proto = ProtoRecordDict()
    proto.ParseFromString(base64.b64decode(text))
    return recorddict_from_proto(proto)


def write_json_atomic(path: Path, obj: Any, private: bool = False) -> None:
    """Write, flush to disk, then rename over ``path``: readers see the old file or the
    new one. ``private`` files (the banks' secrets) are readable by their owner only."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(obj, allow_nan=False))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@dataclass(frozen=True)
class Checkpoint:
    """What :func:`read_checkpoint` found: the aggregator's and the banks' side."""

    folder: Path
    server: dict[str, Any]
    banks: dict[str, Any]

    @property
    def round(self) -> int:
        return int(self.server["round"])

    @property
    def arrays(self) -> ArrayRecord:
        return records_from_text(self.server["arrays"])["arrays"]

    @property
    def scenario_toml(self) -> str:
        return self.server["scenario_toml"]

    def transcript(self) -> list[dict]:
        """The first rows of the transcript log, as many as the checkpoint counted."""
        n = int(self.server["recorder"]["transcript_entries"])
        lines = (self.folder / TRANSCRIPT_FILE).read_text(encoding="utf-8").splitlines()
        if len(lines) < n:
            raise InputError(
                f"{self.folder}: the transcript log has {len(lines)} rows, the "
                f"checkpoint counted {n}; the checkpoint is damaged"
            )
        return [json.loads(line) for line in lines[:n]]

    @property
    def party_of(self) -> dict[int, str]:
        """Node id -> party, from the interrupted run's identify handshake."""
        return {int(node): party for node, party in self.server["party_of"].items()}

    def bank_states(self) -> dict[int, RecordDict]:
        return {int(node): records_from_text(text) for node, text in self.banks["states"].items()}


def write_checkpoint(
    folder: Path,
    *,
    rnd: int,
    scenario_toml: str,
    scenario_path: str,
    arrays: ArrayRecord,
    strategy_state: dict,
    data_fingerprint: dict,
    recorder_state: dict,
    party_of: dict[int, str],
    bank_states: dict[int, RecordDict],
    bank_keys: dict | None,
    bank_secrets: dict[str, str] | None = None,
    server_secret: str | None = None,
    randomness: str = "os-entropy",
) -> None:
    """Save both sides after round ``rnd`` (banks first: a crash between the two writes
    leaves banks one round ahead, which the aggregator's resend tolerates)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_json_atomic(
        folder / BANKS_FILE,
        private=True,
        obj={
            "format": FORMAT,
            "round": rnd,
            "states": {str(n): records_to_text(st) for n, st in bank_states.items()},
            "keys": bank_keys,
            "secrets": bank_secrets,  # each bank's own secret (hex)
        },
    )
    write_json_atomic(
        folder / SERVER_FILE,
        private=True,  # holds the aggregator's own secret
        obj={
            "format": FORMAT,
            "round": rnd,
            # the scenario as run (overrides applied); its path resolves relative data paths
            "scenario_path": scenario_path,
            "scenario_toml": scenario_toml,
            "data_fingerprint": data_fingerprint,  # each bank's rows: resume checks them
            "arrays": records_to_text(RecordDict({"arrays": arrays})),
            "strategy": strategy_state,
            "recorder": recorder_state,
            "party_of": {str(n): p for n, p in party_of.items()},
            "secret": server_secret,  # the aggregator's own secret (hex)
            "randomness": randomness,
        },
    )


def read_checkpoint(folder: Path, where: str) -> Checkpoint:
    """Load a checkpoint folder, or raise InputError naming what is wrong."""
    try:
        server = json.loads((folder / SERVER_FILE).read_text(encoding="utf-8"))
        banks = json.loads((folder / BANKS_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(
            f"{where}: no checkpoint found (an interrupted fedrisk run leaves one in {folder})"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(f"{where}: the checkpoint in {folder} is damaged") from None
    except OSError as exc:
        raise InputError(
            f"{where}: cannot read the checkpoint in {folder}: {exc.strerror}"
        ) from None
    if (
        not isinstance(server, dict)
        or not isinstance(banks, dict)
        or server.get("format") != FORMAT
        or banks.get("format") != FORMAT
    ):
        raise InputError(f"{where}: the checkpoint in {folder} is not a {FORMAT} file")
    missing = [
        k
        for k in (
            "round",
            "scenario_toml",
            "scenario_path",
            "arrays",
            "strategy",
            "recorder",
            "party_of",
        )
        if k not in server
    ]
    if missing or "states" not in banks or "round" not in banks:
        raise InputError(
            f"{where}: the checkpoint in {folder} is damaged (missing "
            f"{', '.join(missing) or 'the banks state'})"
        )
    # banks are saved first, so they may be one round ahead, never behind
    if banks["round"] not in (server["round"], server["round"] + 1):
        raise InputError(
            f"{where}: the checkpoint in {folder} is inconsistent: the banks' "
            f"state is from round {banks['round']}, the aggregator's from "
            f"round {server['round']}"
        )
    return Checkpoint(folder, server, banks)


class ResumedStrategy(Strategy):
    """Runs the remaining rounds of ``inner`` after ``offset`` completed ones.

    Flower's round loop always counts from 1; this wrapper shifts every round number
    the inner strategy sees, so messages, seeds and the transcript carry the same round
    numbers as in an uninterrupted run. It wraps rather than forks, as Flower's own DP
    wrappers do.
    """

    def __init__(self, inner: Strategy, offset: int) -> None:
        self.inner, self.offset = inner, offset

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        return self.inner.configure_train(server_round + self.offset, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        return self.inner.aggregate_train(server_round + self.offset, replies)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        return self.inner.configure_evaluate(server_round + self.offset, arrays, config, grid)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        return self.inner.aggregate_evaluate(server_round + self.offset, replies)

    def summary(self) -> None:
        self.inner.summary()


class TranscriptLog:
    """The checkpoint's copy of the transcript, appended round by round.

    ``checkpoint.json`` records how many rows count; rows past that (a crash between
    the append and the checkpoint) are dropped when the run resumes.
    """

    def __init__(self, folder: Path, kept: int = 0) -> None:
        self.path = folder / TRANSCRIPT_FILE
        self.written = kept
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        rows = (
            self.path.read_text(encoding="utf-8").splitlines(keepends=True)[:kept] if kept else []
        )
        tmp = self.path.with_name(TRANSCRIPT_FILE + ".tmp")
        tmp.write_text("".join(rows), encoding="utf-8")
        os.replace(tmp, self.path)  # an interruption here leaves the old log whole

    def append(self, entries: list) -> None:
        new = entries[self.written :]
        if new:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.writelines(json.dumps(asdict(e)) + "\n" for e in new)
                fh.flush()
                os.fsync(fh.fileno())
        self.written = len(entries)


__all__ = [
    "BANKS_FILE",
    "Checkpoint",
    "ResumedStrategy",
    "SERVER_FILE",
    "TranscriptLog",
    "read_checkpoint",
    "records_from_text",
    "records_to_text",
    "write_checkpoint",
]
