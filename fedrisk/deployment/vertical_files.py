"""The files and the public job of a vertical run on the Deployment Engine.

Who holds what, in separate processes:

- the **bank** (label holder, Paillier key holder) runs the ServerApp. It reads the
  public job from the run config ``fedrisk-job`` and its own rows, labels and private
  key from the folder its SuperLink's environment names (:data:`BANK_FILES_ENV`): a
  ServerApp runs in a process the SuperLink starts, with the SuperLink's environment.
  The folder is not in the run config, which every SuperNode's ClientApp also sees;
- each **data party** runs a ClientApp on its own SuperNode, given only its own rows
  (``--node-config data-path=...``, a ``.npz`` with ``ids``, ``X``, ``feature_names``),
  checked against the fingerprint in the public job, and the public key from the public
  job.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from phe import paillier
from phe.paillier import PaillierPrivateKey, PaillierPublicKey

from fedrisk.crypto.paillier import private_key_to_dict
from fedrisk.deployment.bank_files import read_private_key
from fedrisk.deployment.options import DeploymentOptions
from fedrisk.deployment.processes import write_private
from fedrisk.errors import InputError
from fedrisk.privacy.plan import DPPlan
from fedrisk.privacy.secrets import read_secret_file, write_secret_file
from fedrisk.scenario import Scenario, scenario_from_dict, to_toml
from fedrisk.vertical.protocol import BankJob, DataPartyJob, PartyData

KIND = "vertical"
BANK_FILES_ENV = "FEDRISK_BANK_FILES"  # the SuperLink's environment: the bank's folder
BANK_ROWS_FILE = "bank-rows.npz"
BANK_KEY_FILE = "bank-paillier-key.json"
BANK_SECRET_FILE = "bank-secret"  # the bank's own secret (owner-only)


# --- fingerprints and the public job ------------------------------------------------------


def party_digest(party: PartyData) -> str:
    """A short fingerprint of a data party's ids and columns: its SuperNode refuses a
    file from another scenario or seed (the harness's baselines would not match)."""
    h = hashlib.sha256("\n".join(str(i) for i in party.ids).encode())
    h.update(np.ascontiguousarray(party.X, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


def bank_digest(bank: BankJob) -> str:
    h = hashlib.sha256(party_digest(PartyData(bank.name, bank.ids, bank.X, ())).encode())
    h.update(np.ascontiguousarray(bank.y, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


def vertical_public_job(bank: BankJob, parties: DataPartyJob) -> dict[str, Any]:
    """What every party may know about a vertical run: the scenario, names, row
    fingerprints, the label-DP plan and the Paillier public key (no rows, no private
    key). Travels in the run config ``fedrisk-job``, which every SuperNode also sees."""
    return {
        "kind": KIND,
        "scenario_toml": to_toml(bank.scenario),
        "scenario_path": bank.scenario.source_file,
        "bank": bank.name,
        "bank_digest": bank_digest(bank),
        "party_names": [p.name for p in parties.parties],
        "party_digests": [party_digest(p) for p in parties.parties],
        "dp": bank.dp.to_dict() if bank.dp is not None else None,
        "paillier_n": str(bank.public_key.n),
    }


def is_vertical(public: Mapping[str, Any]) -> bool:
    return public.get("kind") == KIND


def public_scenario(public: Mapping[str, Any]) -> Scenario:
    return scenario_from_dict(tomllib.loads(public["scenario_toml"]), public["scenario_path"])


def public_dp(public: Mapping[str, Any]) -> DPPlan | None:
    return DPPlan.from_dict(public["dp"]) if public["dp"] is not None else None


def public_key_of(public: Mapping[str, Any]) -> PaillierPublicKey:
    return paillier.PaillierPublicKey(int(public["paillier_n"]))


# --- files: each SuperNode's rows, and the bank's -------------------------------------------


def write_party_files(folder: Path, parties: DataPartyJob) -> list[dict[str, Any]]:
    """One ``.npz`` per data party (its ids, columns and column names, nothing else);
    returns each party's SuperNode node config."""
    folder.mkdir(parents=True, exist_ok=True)
    configs = []
    for i, party in enumerate(parties.parties):
        path = folder / f"{party.name}.npz"
        np.savez(
            path,
            ids=np.asarray(party.ids, dtype=str),
            X=party.X,
            feature_names=np.asarray(party.feature_names, dtype=str),
        )
        secret = write_secret_file(folder / f"{party.name}-secret", party.secret)
        configs.append(
            {
                "partition-id": i,
                "num-partitions": len(parties.parties),
                "data-path": str(path.resolve()),
                "secret-path": str(secret.resolve()),  # the party's own secret
            }
        )
    return configs


def write_bank_files(folder: Path, bank: BankJob) -> Path:
    """The bank's rows and labels, and its Paillier private key, both readable by their
    owner only, for its ServerApp; returns the folder (its SuperLink's
    :data:`BANK_FILES_ENV`)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = folder / BANK_ROWS_FILE
    with open(rows, "wb") as f:
        np.savez(
            f,
            ids=np.asarray(bank.ids, dtype=str),
            X=bank.X,
            y=bank.y,
            feature_names=np.asarray(bank.feature_names, dtype=str),
        )
    rows.chmod(0o600)
    key = folder / BANK_KEY_FILE
    write_private(key, json.dumps(private_key_to_dict(bank.private_key)).encode())
    write_secret_file(folder / BANK_SECRET_FILE, bank.secret)
    return folder.resolve()


def read_party(path: str, name: str, secret_path: str = "") -> PartyData:
    """A data party's rows and, from ``secret_path``, its own secret (fresh if none)."""
    with np.load(path, allow_pickle=False) as f:
        names = tuple(str(c) for c in f["feature_names"])
        if secret_path:
            return PartyData(name, f["ids"], f["X"], names, read_secret_file(secret_path))
        return PartyData(name, f["ids"], f["X"], names)


def read_bank_job(public: Mapping[str, Any], folder: str | Path | None) -> BankJob:
    """The bank's job from its folder (its SuperLink's :data:`BANK_FILES_ENV`), checked
    against the public job; raises InputError naming the file and what is wrong."""
    if not folder:
        raise InputError(
            f"the bank's ServerApp needs its files: start its SuperLink with "
            f"{BANK_FILES_ENV}=DIR (the folder fedrisk data split wrote)"
        )
    rows_path, key_path = Path(folder) / BANK_ROWS_FILE, Path(folder) / BANK_KEY_FILE
    s = public_scenario(public)
    try:
        with np.load(rows_path, allow_pickle=False) as f:
            ids, X, y = f["ids"], f["X"], f["y"]
            names = tuple(str(c) for c in f["feature_names"])
        private_key = read_private_key(str(key_path))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{folder}: not the bank's files written by fedrisk data split ({exc})"
        ) from None
    public_key = private_key.public_key
    if str(public_key.n) != public["paillier_n"]:
        raise InputError(
            f"{key_path}: not the key whose public half this run's parties "
            "encrypt with; write the files again with fedrisk data split"
        )
    bank = BankJob(
        s,
        public["bank"],
        ids,
        X,
        y,
        names,
        tuple(public["party_names"]),
        public_key,
        private_key,
        public_dp(public),
    )
    secret_path = Path(folder) / BANK_SECRET_FILE
    if secret_path.exists():  # older bank folders have none: a fresh secret then
        bank = replace(bank, secret=read_secret_file(secret_path))
    if bank_digest(bank) != public["bank_digest"]:
        raise InputError(
            f"{rows_path}: {public['bank']}'s rows are not the ones this "
            "scenario gives; write them again with fedrisk data split"
        )
    return bank


def bank_private_key(options: DeploymentOptions | None) -> PaillierPrivateKey | None:
    """The bank's key from ``--bank-files`` (a federation someone else started: its
    parties hold files from the same ``fedrisk data split``); None for a local
    federation. Raises InputError for ``--superlink`` without ``--bank-files``."""
    if options is not None and options.superlink is not None and options.bank_files is None:
        raise InputError(
            f"--superlink {options.superlink}: a vertical run needs the bank's "
            "files for its ServerApp; give --bank-files DIR from fedrisk data "
            "split"
        )
    if options is None or options.bank_files is None:
        return None
    path = options.bank_files / BANK_KEY_FILE
    try:
        return read_private_key(str(path))
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(
            f"--bank-files {options.bank_files}: no {BANK_KEY_FILE} written by "
            "fedrisk data split for a vertical scenario"
        ) from None


__all__ = [
    "BANK_FILES_ENV",
    "BANK_KEY_FILE",
    "BANK_SECRET_FILE",
    "BANK_ROWS_FILE",
    "bank_digest",
    "bank_private_key",
    "is_vertical",
    "party_digest",
    "public_dp",
    "public_key_of",
    "public_scenario",
    "read_bank_job",
    "read_party",
    "vertical_public_job",
    "write_bank_files",
    "write_party_files",
]
