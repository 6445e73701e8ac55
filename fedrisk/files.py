"""The one place user-named files and folders are checked: inputs are readable regular
files, outputs can be created, and every failure is an :class:`InputError` whose one
line names what the user wrote (``what``: a key, a flag), the path and what is allowed.

The checks run before any work, so a run that cannot read its data or write its folder
says so at once instead of after minutes of training.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from fedrisk.errors import InputError

# room a run folder's name needs beside it: '.<name>.partial-XXXXXXXX' while it is written
_STAGE_SUFFIX = len(".") + len(".partial-") + 8
_DEFAULT_NAME_MAX = 255


def input_file(
    path: Path, what: str, *, kind: str = "file", error: type[InputError] = InputError
) -> Path:
    """``path`` if it is an existing regular file this process can read; else ``error``."""
    shown = _named(path, what)
    if not path.exists():
        raise error(f"{shown}: no such {kind}")
    if path.is_dir():
        raise error(f"{shown}: is a folder; give the path of a {kind}")
    if not path.is_file():
        raise error(f"{shown}: not a regular file; give the path of a {kind}")
    if not os.access(path, os.R_OK):
        raise error(f"{shown}: cannot be read (permission denied)")
    return path


def read_input_bytes(
    path: Path, what: str, *, kind: str = "file", error: type[InputError] = InputError
) -> bytes:
    """The bytes of an input file, after :func:`input_file`'s checks."""
    input_file(path, what, kind=kind, error=error)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise error(f"{_named(path, what)}: cannot be read ({_reason(exc)})") from None


def read_input_text(
    path: Path, what: str, *, kind: str = "file", error: type[InputError] = InputError
) -> str:
    """An input file as text: UTF-8, with or without the byte-order mark that Windows
    editors and Excel write."""
    raw = read_input_bytes(path, what, kind=kind, error=error)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise error(f"{_named(path, what)}: not a UTF-8 text file") from None


def output_folder(out: Path, what: str = "--out") -> None:
    """Refuse, before any work, a folder that cannot be created and written: a name too
    long for the file system, a parent that is a file, or one this process cannot write."""
    name_max = _name_max(out.parent)
    if len(out.name.encode()) + _STAGE_SUFFIX > name_max:
        raise InputError(
            f"{what} {_short(out)}: the folder name is {len(out.name.encode())} bytes; "
            f"at most {name_max - _STAGE_SUFFIX} are allowed (a shorter --out or scenario name)"
        )
    parent = _nearest_existing(out.parent)
    if not parent.is_dir():
        raise InputError(f"{what} {_short(out)}: {parent} is a file, not a folder")
    try:  # os.access says yes to root on read-only file systems: try for real
        probe = tempfile.mkdtemp(prefix=".fedrisk-probe-", dir=parent)
    except OSError as exc:
        raise InputError(
            f"{what} {_short(out)}: cannot create a folder in {parent} ({_reason(exc)}); "
            "choose a folder you can write"
        ) from None
    os.rmdir(probe)


def with_umask_permissions(path: Path) -> None:
    """Give a folder or file made by :mod:`tempfile` (owner-only, for its own safety)
    the permissions ``mkdir``/``open`` would: the user's umask decides who may read a
    run folder or report, as for any file they make. Folders holding parties' secrets
    (checkpoints, ``fedrisk data split``, secrets files) stay owner-only and do not
    call this."""
    mask = os.umask(0o022)
    os.umask(mask)
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)


def write_private_json(path: Path, obj: Any) -> None:
    """A file readable by its owner only (0600), whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(obj, indent=1, allow_nan=False) + "\n")


def _named(path: Path, what: str) -> str:
    """``what`` (a key or flag), with the path unless it already shows it."""
    return what if str(path) in what else f"{what}: {path}"


def _nearest_existing(path: Path) -> Path:
    path = path if str(path) else Path(".")
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(_nearest_existing(folder), "PC_NAME_MAX")
    except (OSError, ValueError):
        return _DEFAULT_NAME_MAX


def _short(path: Path) -> str:
    text = str(path)
    return text if len(text) <= 80 else text[:60] + "…" + text[-15:]


def _reason(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return exc.strerror or type(exc).__name__


__all__ = [
    "write_private_json",
    "input_file",
    "output_folder",
    "read_input_bytes",
    "read_input_text",
    "with_umask_permissions",
]
