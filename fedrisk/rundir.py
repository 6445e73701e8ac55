"""Run folders that appear whole or not at all.

Results are written into a hidden sibling folder and renamed into place at the end, so
a failed or interrupted run leaves nothing half-written behind.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from fedrisk.errors import InputError

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
    """Refuse to overwrite a folder that is not an earlier fedrisk run."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise InputError(f"--out {out}: folder exists, is not empty and is not a fedrisk "
                         "run folder; choose another --out")


@contextmanager
def staged_run_dir(out: Path) -> Iterator[Path]:
    """Yield a scratch folder; on success it replaces ``out``, on failure it vanishes."""
    check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        out.rename(old / "run")
        stage.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        stage.rename(out)
