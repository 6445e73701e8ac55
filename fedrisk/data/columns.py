"""Which columns a party's features are: the scenario's names, globs (``BILL_*``) and
ranges (``x0..x12``), ``data.exclude``, and a warning for columns that carry nothing."""

from __future__ import annotations

import fnmatch
import re
import warnings
from collections.abc import Sequence

import numpy as np

from fedrisk.data.dataset import preview
from fedrisk.errors import DataError
from fedrisk.scenario import Scenario

_GLOB_CHARS = frozenset("*?[")
_RANGE = re.compile(r"(?P<p1>.*?)(?P<a>\d+)\.\.(?P<p2>.*?)(?P<b>\d+)\Z", re.DOTALL)


def resolve_columns(specs: Sequence[str], available: Sequence[str], where: str) -> tuple[str, ...]:
    """The available columns matched by ``specs`` (names, globs, ranges), in file order.

    ``where`` prefixes error messages (e.g. ``"scen.toml: federation.parties[1].columns"``).
    Every spec must match at least one column; overlapping specs are fine.
    """
    available = list(available)
    chosen: set[str] = set()
    for spec in specs:
        matched = _match(spec, available, where)
        if not matched:
            raise DataError(
                f"{where}: {spec!r} matches no column; available: {preview(available, 12)}"
            )
        chosen.update(matched)
    return tuple(c for c in available if c in chosen)


def _match(spec: str, available: list[str], where: str) -> list[str]:
    if spec in available:
        return [spec]
    if _GLOB_CHARS & set(spec):
        return [c for c in available if fnmatch.fnmatchcase(c, spec)]
    if ".." in spec:
        m = _RANGE.match(spec)
        if not m or m["p1"] != m["p2"]:
            raise DataError(
                f"{where}: {spec!r} is not a valid range; write ranges as "
                "prefix<a>..prefix<b> with the same prefix, e.g. 'x0..x12'"
            )
        lo, hi = int(m["a"]), int(m["b"])
        if lo > hi:
            raise DataError(
                f"{where}: range {spec!r} runs backwards; write the smaller "
                f"number first, e.g. '{m['p1']}{hi}..{m['p1']}{lo}'"
            )
        member = re.compile(re.escape(m["p1"]) + r"(\d+)\Z")
        out = []
        for c in available:
            cm = member.match(c)
            if cm and lo <= int(cm[1]) <= hi:
                out.append(c)
        return out
    return []


def excluded_columns(s: Scenario, available: Sequence[str]) -> frozenset[str]:
    """The columns ``data.exclude`` leaves out (each spec must match one)."""
    if not s.data.exclude:
        return frozenset()
    return frozenset(resolve_columns(s.data.exclude, available, f"{s.source_file}: data.exclude"))


def without_excluded(
    s: Scenario, plan: list[tuple[int | None, str, tuple[str, ...]]]
) -> list[tuple[int | None, str, tuple[str, ...]]]:
    """A vertical column plan (index, party, columns) without ``data.exclude``'s columns."""
    dropped = excluded_columns(s, [c for _, _, cols in plan for c in cols])
    return [(i, name, tuple(c for c in cols if c not in dropped)) for i, name, cols in plan]


def warn_constant(X: np.ndarray, names: Sequence[str], where: str) -> None:
    """Warn (one line) about feature columns with one value in every row: they carry
    no signal, and a modeller usually wants to know (or to leave them out)."""
    if X.shape[0] == 0:
        return
    constant = np.flatnonzero((X == X[0]).all(axis=0))
    if constant.size:
        cols = [names[j] for j in constant]
        shown = preview(cols, 8)
        warnings.warn(
            f"{where}: {'column' if len(cols) == 1 else 'columns'} {shown} "
            f"{'has' if len(cols) == 1 else 'have'} one value in every row and carry no "
            f"signal; leave {'it' if len(cols) == 1 else 'them'} out with data.exclude",
            stacklevel=2,
        )


__all__ = ["excluded_columns", "resolve_columns", "warn_constant", "without_excluded"]
