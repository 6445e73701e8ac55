"""What a Deployment Engine run sends back: the ServerApp's recorder as one log line.

The ServerApp may run on a SuperLink on another machine; its log stream is the one
channel that reaches the harness from there, so the result travels as a compressed
JSON line behind :data:`RESULT_MARK`, and progress as :data:`PROGRESS_MARK` lines.
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

import numpy as np
from flwr.app import RecordDict

from fedrisk.errors import InputError, ProtocolError, QuorumError
from fedrisk.flower.checkpoint import records_from_text, records_to_text
from fedrisk.flower.recorder import ServerRecorder

RESULT_MARK = "FEDRISK-RESULT "
PROGRESS_MARK = "FEDRISK-ROUND "


def _arr(a: np.ndarray | None) -> str | None:
    return (
        None
        if a is None
        else base64.b64encode(np.ascontiguousarray(a, dtype=np.float64).tobytes()).decode()
    )


def _unarr(text: str | None) -> np.ndarray | None:
    return None if text is None else np.frombuffer(base64.b64decode(text), dtype=np.float64)


def result_record(
    recorder: ServerRecorder, params_by_round: list[np.ndarray], error: BaseException | None
) -> dict[str, Any]:
    return {
        "recorder": recorder.state_dict(),
        "params_by_round": [_arr(p) for p in params_by_round],
        "final_params": _arr(recorder.final_params),
        "final_opaque": (
            records_to_text(RecordDict({"a": recorder.final_opaque}))
            if recorder.final_opaque is not None
            else None
        ),
        "halted": sorted(getattr(recorder.strategy, "halted", [])),
        "early_stopping": recorder.early_stopping,
        "error": None if error is None else str(error),
        "error_kind": error_kind(error),
    }


def encode_result(record: dict[str, Any]) -> str:
    raw = json.dumps(record, allow_nan=True).encode()
    return base64.b64encode(zlib.compress(raw, 6)).decode()


def decode_result(text: str) -> dict[str, Any]:
    return json.loads(zlib.decompress(base64.b64decode(text)))


def recorder_from_result(record: dict[str, Any], score) -> ServerRecorder:
    """Rebuild the aggregator's recorder in the harness; score each round's model."""
    recorder = ServerRecorder(None)
    recorder.load_state(record["recorder"])
    params = [_unarr(p) for p in record["params_by_round"]]
    if params:
        for log_row, p in zip(recorder.rounds, params[1:]):  # [0] is the initial model
            log_row.test = score(p)
    recorder.final_params = _unarr(record["final_params"])
    if record["final_opaque"] is not None:
        recorder.final_opaque = records_from_text(record["final_opaque"])["a"]
    recorder.early_stopping = record.get("early_stopping")

    class _Halted:
        halted = record["halted"]

    recorder.strategy = _Halted()
    return recorder


def result_from_log(log: str) -> dict[str, Any]:
    line = next(ln for ln in reversed(log.splitlines()) if RESULT_MARK in ln)
    return decode_result(line.split(RESULT_MARK, 1)[1].strip())


def error_kind(error: BaseException | None) -> str | None:
    """How the harness re-raises a ServerApp's failure: bad input (a party's own files)
    exits 2, a quorum or protocol break exits 1 with one line, anything else is a bug."""
    if error is None:
        return None
    if isinstance(error, QuorumError):
        return "quorum"
    if isinstance(error, ProtocolError):
        return "protocol"
    if isinstance(error, InputError):
        return "input"
    return "internal"


def raise_run_error(record: dict[str, Any]) -> None:
    kind, message = record["error_kind"], record["error"]
    if kind == "input":
        raise InputError(message)
    if kind == "quorum":
        raise QuorumError(message)
    if kind == "protocol":
        raise ProtocolError(message)
    if kind is not None:
        raise RuntimeError(f"the ServerApp failed: {message}")


__all__ = [
    "PROGRESS_MARK",
    "RESULT_MARK",
    "decode_result",
    "encode_result",
    "raise_run_error",
    "recorder_from_result",
    "result_from_log",
    "result_record",
]
