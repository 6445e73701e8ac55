"""``fedrisk data split``: each party's files for SuperNodes on other machines.

Horizontal: each bank's rows (and, for Paillier, the banks' key). Vertical: each data
party's rows for its SuperNode, and the bank's rows and private key for its ServerApp.
The folder appears whole or not at all.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from fedrisk.deployment import vertical_files
from fedrisk.deployment.bank_files import KEY_FILE, write_bank_files
from fedrisk.errors import InputError
from fedrisk.horizontal.keys import paillier_keys
from fedrisk.runs.horizontal import prepare_job
from fedrisk.runs.vertical import prepare_vertical
from fedrisk.scenario import Scenario

T = TypeVar("T")


def split_for_supernodes(s: Scenario, out: Path) -> str:
    """Write the files into ``out`` (new or empty); return what to tell each SuperNode."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"--out {out}: exists and is not an empty folder")
    if s.federation.kind == "vertical":
        return _split_vertical(s, out)
    keys = paillier_keys(s)
    _, job, _ = prepare_job(s, keys)
    if keys:
        keys.stop_precompute.set()
    configs = staged_folder(out, lambda stage: write_bank_files(stage, job, keys))
    lines = [
        f"{len(configs)} banks in {out}; copy each bank's files, its own secret (and "
        f"{KEY_FILE}, or with "
        "a threshold key the bank's own key share, if any) to its machine and start its "
        "SuperNode with:"
    ]
    for bank, cfg in zip(job.banks, configs):
        cfg = {**cfg, "data-path": str(out.resolve() / Path(cfg["data-path"]).name)}
        cfg["secret-path"] = str(out.resolve() / Path(cfg["secret-path"]).name)
        if "paillier-key" in cfg:  # the banks' key, or (threshold) this bank's own share
            cfg["paillier-key"] = str(out.resolve() / Path(cfg["paillier-key"]).name)
        if "dp-plan" in cfg:  # the bank's own DP budget: its q_i gives its size away
            cfg["dp-plan"] = str(out.resolve() / Path(cfg["dp-plan"]).name)
        text = " ".join(f"{k}={json.dumps(v)}" for k, v in cfg.items())
        lines.append(f"  {bank.name}: --node-config '{text}'")
    return "\n".join(lines)


def _split_vertical(s: Scenario, out: Path) -> str:
    setup = prepare_vertical(s)

    def write(stage: Path) -> list[dict]:
        vertical_files.write_bank_files(stage, setup.bank)
        return vertical_files.write_party_files(stage, setup.parties)

    configs = staged_folder(out, write)
    lines = [
        f"{len(configs)} data parties in {out}; copy each party's file and its own secret "
        "to its machine and start its SuperNode with:"
    ]
    for party, cfg in zip(setup.parties.parties, configs):
        cfg = {**cfg, "data-path": str(out.resolve() / Path(cfg["data-path"]).name)}
        cfg["secret-path"] = str(out.resolve() / Path(cfg["secret-path"]).name)
        text = " ".join(f"{k}={json.dumps(v)}" for k, v in cfg.items())
        lines.append(f"  {party.name}: --node-config '{text}'")
    lines.append(
        f"The bank ({setup.bank.name}) keeps {vertical_files.BANK_ROWS_FILE}, "
        f"{vertical_files.BANK_KEY_FILE} and {vertical_files.BANK_SECRET_FILE} on its "
        "SuperLink's machine and runs: fedrisk run "
        "SCENARIO --engine deployment --superlink HOST:PORT --root-certificates CA "
        f"--bank-files {out}"
    )
    return "\n".join(lines)


def staged_folder(out: Path, write: Callable[[Path], T]) -> T:
    """Call ``write(stage)`` on a fresh folder beside ``out`` and rename it to ``out``
    (an empty folder or nothing) when it returns: never a half-written ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        result = write(stage)
        if out.exists():
            out.rmdir()
        stage.rename(out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return result


__all__ = ["split_for_supernodes", "staged_folder"]
