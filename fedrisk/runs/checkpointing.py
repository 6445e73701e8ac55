"""Per-round checkpoints of an in-process horizontal run (both sides' state) and the
checks a resumed run makes against them; :mod:`fedrisk.flower.checkpoint` has the format."""

from __future__ import annotations

from pathlib import Path

from fedrisk.crypto.paillier import (
    BankKeys,
    precompute_in_background,
    private_key_from_dict,
    private_key_to_dict,
)
from fedrisk.crypto.threshold import KeyShare
from fedrisk.errors import InputError
from fedrisk.flower.checkpoint import Checkpoint, TranscriptLog, write_checkpoint
from fedrisk.flower.recorder import ServerRecorder
from fedrisk.horizontal.job import HorizontalJob, rows_digest
from fedrisk.privacy.secrets import PartySecret
from fedrisk.scenario import Scenario, to_toml


def checkpointer(
    folder: Path,
    s: Scenario,
    recorder: ServerRecorder,
    node_states: dict,
    keys: BankKeys | None,
    kept_rows: int,
    job: HorizontalJob,
    server_secret: PartySecret | None = None,
):
    """Save both sides' state after every round (see fedrisk.flower.checkpoint); each
    party's own secret goes in its own half (the banks' and the aggregator's)."""
    scenario_toml = to_toml(s)
    fingerprint = data_fingerprint(job)
    # absolute, so relative data paths resolve the same from any working folder
    scenario_path = (
        s.source_file if s.source_file.startswith("<") else str(Path(s.source_file).resolve())
    )
    transcript = TranscriptLog(folder, kept_rows)
    bank_keys = None
    if keys is not None and keys.shares is not None:  # threshold: each bank's own share
        bank_keys = {
            "threshold": {name: sh.to_dict() for name, sh in zip(s.bank_names(), keys.shares)}
        }
    elif keys is not None:  # the banks' own secret, in their half of the checkpoint
        bank_keys = private_key_to_dict(keys.private_key)
    bank_secrets = {b.name: b.secret.hex() for b in job.banks}

    def save(rnd: int, arrays) -> None:
        transcript.append(recorder.transcript.entries)
        write_checkpoint(
            folder,
            rnd=rnd,
            scenario_toml=scenario_toml,
            scenario_path=scenario_path,
            arrays=arrays,
            strategy_state=recorder.strategy.state_dict(),
            data_fingerprint=fingerprint,
            recorder_state=recorder.state_dict(with_transcript=False),
            party_of=recorder.party_of,
            bank_states=node_states,
            bank_keys=bank_keys,
            bank_secrets=bank_secrets,
            server_secret=server_secret.hex() if server_secret else None,
            randomness=job.randomness,
        )

    return save


def data_fingerprint(job: HorizontalJob) -> dict[str, str]:
    return {b.name: rows_digest(b) for b in job.banks}


def check_same_data(resume: Checkpoint, job: HorizontalJob, out: Path) -> None:
    """A resumed run must train on the rows the interrupted one did."""
    stored = resume.server.get("data_fingerprint", {})
    for name, digest in data_fingerprint(job).items():
        if stored.get(name) != digest:
            raise InputError(
                f"--resume {out}: {name}'s rows differ from when the run "
                "started (the data file changed?); start the run afresh"
            )


def keys_from_checkpoint(s: Scenario, stored: dict) -> BankKeys:
    if "threshold" in stored:  # each bank's share of the threshold key, by bank name
        shares = tuple(KeyShare.from_dict(stored["threshold"][name]) for name in s.bank_names())
        public = shares[0].public_key
        stop = precompute_in_background(list(s.bank_names()), public, s.max_rounds)
        return BankKeys(public, None, stop, shares)
    private = private_key_from_dict(stored)
    public = private.public_key
    return BankKeys(
        public, private, precompute_in_background(list(s.bank_names()), public, s.max_rounds)
    )


__all__ = ["check_same_data", "checkpointer", "data_fingerprint", "keys_from_checkpoint"]
