"""Run folders that appear whole or not at all.

Results are written into a hidden sibling folder and renamed into place at the end, so
a failed, interrupted (Ctrl-C) or terminated (SIGTERM, SIGHUP) run leaves nothing
half-written behind; the one exception is an in-process run interrupted after a
checkpoint, whose hidden ``.NAME.incomplete`` folder ``fedrisk run --resume`` continues.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fedrisk.errors import InputError, QuorumError, RunInterrupted, Terminated
from fedrisk.files import output_folder, with_umask_permissions
from fedrisk.runs.signals import raise_if_terminated

MARKER = "summary.json"  # a folder holding this is a fedrisk run and may be replaced


def default_run_dir(name: str, root: Path = Path("runs")) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = root / f"{name}-{stamp}"
    i = 1
    while candidate.exists():
        i += 1
        candidate = root / f"{name}-{stamp}-{i}"
    return candidate


def check_target(out: Path) -> None:
    """Refuse, before any work, a folder that cannot be written or that is not an
    earlier fedrisk run (it would be replaced)."""
    output_folder(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise InputError(
            f"--out {out}: folder exists, is not empty and is not a fedrisk "
            "run folder; choose another --out"
        )


def incomplete_dir(out: Path) -> Path:
    """Where a resumable run of ``out`` works until it finishes (hidden sibling)."""
    return out.parent / f".{out.name}.incomplete"


@contextmanager
def resumable_run_dir(out: Path, *, resume: bool, checkpoint_file: str) -> Iterator[Path]:
    """Like :func:`staged_run_dir`, but the scratch folder has a fixed name and survives
    an interruption (Ctrl-C) or a run stopped for lack of parties, when it holds a
    checkpoint (``checkpoint/<checkpoint_file>``): ``fedrisk run --resume OUT`` picks it
    up. Any other failure removes it, as before: nothing half-written is left behind."""
    check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = incomplete_dir(out)
    if not resume and stage.exists():
        print(
            f"fedrisk: warning: discarding the interrupted run in {stage} (continue one "
            f"with fedrisk run --resume {out})",
            file=sys.stderr,
        )
        shutil.rmtree(stage)
    stage.mkdir(mode=0o700, exist_ok=True)  # it will hold the banks' checkpoint
    marker = stage / "checkpoint" / checkpoint_file

    def hint() -> str:
        done = json.loads(marker.read_text(encoding="utf-8"))["round"]
        return (
            f"checkpoint after round {done} kept in {stage}; resume with: "
            f"fedrisk run --resume {out}"
        )

    try:
        yield stage
        raise_if_terminated()  # a SIGTERM whose exception C code swallowed
    except KeyboardInterrupt as exc:
        if not marker.exists():
            shutil.rmtree(stage, ignore_errors=True)
            raise
        if isinstance(exc, Terminated):
            raise RunInterrupted(f"stopped by {exc.signal_name}; {hint()}", exc.signum) from None
        raise RunInterrupted(f"interrupted; {hint()}") from None
    except QuorumError as exc:
        if not marker.exists():
            shutil.rmtree(stage, ignore_errors=True)
            raise
        raise QuorumError(
            f"{exc}; {hint()} once enough parties are back (or add --set "
            "federation.min_parties=N to go on with fewer)",
            resumable=True,
        ) from None
    except BaseException:
        if not resume:  # never throw away the checkpoint a resume started from
            shutil.rmtree(stage, ignore_errors=True)
        raise
    shutil.rmtree(stage / "checkpoint", ignore_errors=True)
    with_umask_permissions(stage)  # owner-only while it held the banks' checkpoint
    _replace(out, stage)


@contextmanager
def staged_run_dir(out: Path) -> Iterator[Path]:
    """Yield a scratch folder; on success it replaces ``out``, on failure it vanishes."""
    check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    with_umask_permissions(stage)  # a run folder is shared like any file the user makes
    try:
        yield stage
        raise_if_terminated()  # a SIGTERM whose exception C code swallowed
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    _replace(out, stage)


def _replace(out: Path, stage: Path) -> None:
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        out.rename(old / "run")
        stage.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        stage.rename(out)
