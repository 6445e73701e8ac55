"""The files a SuperNode is pointed at: one bank's rows, its own secret, under
record-level DP its own budget (its q_i = batch / n_i gives its size away, so not in the
public job) and, in Paillier mode, the banks' key or (threshold) its own key share (never
the aggregator's). Written by ``fedrisk run --engine deployment`` for a local
federation and by ``fedrisk data split`` for SuperNodes on other machines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from phe.paillier import PaillierPrivateKey

from fedrisk.crypto.paillier import BankKeys, private_key_from_dict, private_key_to_dict
from fedrisk.crypto.threshold import KeyShare
from fedrisk.horizontal.job import BankData, HorizontalJob
from fedrisk.privacy.plan import DPPlan
from fedrisk.privacy.secrets import PartySecret, read_secret_file, write_secret_file

KEY_FILE = "banks-paillier-key.json"


def write_bank_files(
    folder: Path, job: HorizontalJob, keys: BankKeys | None
) -> list[dict[str, Any]]:
    """Each bank's rows and own secret (and, in Paillier mode, the banks' key) in files
    its SuperNode alone is given (secrets and keys owner-only); returns the SuperNodes'
    node configs."""
    folder.mkdir(parents=True, exist_ok=True)
    key_file = None
    if keys is not None and keys.shares is None:
        key_file = folder / KEY_FILE
        key_file.write_text(json.dumps(private_key_to_dict(keys.private_key)), encoding="utf-8")
        key_file.chmod(0o600)
    configs = []
    for i, bank in enumerate(job.banks):
        path = folder / f"{bank.name}.npz"
        # early stopping: the bank's validation rows travel in its own file too
        held_out = {} if bank.X_val is None else {"X_val": bank.X_val, "y_val": bank.y_val}
        np.savez(path, X=bank.X, y=bank.y, **held_out)
        dp_file = None
        if job.dp is not None:
            dp_file = folder / f"{bank.name}-dp.json"
            dp_file.write_text(json.dumps(job.dp.for_party(bank.name).to_dict()), "utf-8")
            dp_file.chmod(0o600)
        bank_key = key_file
        if keys is not None and keys.shares is not None:  # threshold: its own share only
            bank_key = folder / share_file(bank.name)
            bank_key.write_text(json.dumps(keys.shares[i].to_dict()), encoding="utf-8")
            bank_key.chmod(0o600)
        secret = write_secret_file(folder / f"{bank.name}-secret", bank.secret)
        configs.append(
            {
                "partition-id": i,
                "num-partitions": len(job.banks),
                "data-path": str(path),
                "secret-path": str(secret),
                **({"paillier-key": str(bank_key)} if bank_key else {}),
                **({"dp-plan": str(dp_file)} if dp_file else {}),
            }
        )
    return configs


def share_file(bank: str) -> str:
    """The file of one bank's share of a threshold key (only its SuperNode reads it)."""
    return f"{bank}-paillier-key-share.json"


def read_bank_rows(path: str, name: str, secret_path: str = "") -> BankData:
    """A bank's rows and, from ``secret_path``, its own secret (fresh when not given)."""
    with np.load(path) as f:
        held_out = (f["X_val"], f["y_val"]) if "X_val" in f else (None, None)
        secret = read_secret_file(secret_path) if secret_path else PartySecret.fresh()
        return BankData(name, f["X"], f["y"], secret, *held_out)


def read_dp_plan(path: str) -> DPPlan:
    return DPPlan.from_dict(json.loads(open(path, encoding="utf-8").read()))


def read_private_key(path: str) -> PaillierPrivateKey:
    return private_key_from_dict(json.loads(open(path, encoding="utf-8").read()))


def read_bank_key(path: str) -> PaillierPrivateKey | KeyShare:
    """A bank's key file: the banks' shared private key, or its threshold key share."""
    stored = json.loads(open(path, encoding="utf-8").read())
    return KeyShare.from_dict(stored) if "secret" in stored else private_key_from_dict(stored)


__all__ = [
    "KEY_FILE",
    "read_bank_key",
    "read_bank_rows",
    "read_dp_plan",
    "read_private_key",
    "share_file",
    "write_bank_files",
]
