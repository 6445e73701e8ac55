"""How the benchmark files write figures into ``results/*.md``: one formatter, so every
results file gives seconds with the same precision, and one way to keep a file's figures
(as JSON under its tables) from one session to the next."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest


def seconds_text(seconds: float) -> str:
    """Seconds with three significant figures or so: 1,635 / 16.7 / 2.00 / 0.056 /
    0.0041."""
    if seconds >= 100:
        return f"{seconds:,.0f}"
    if seconds >= 10:
        return f"{seconds:.1f}"
    if seconds >= 1:
        return f"{seconds:.2f}"
    if seconds >= 0.01:
        return f"{seconds:.3f}"
    return f"{seconds:.4f}"


def stored_figures(path: Path) -> dict:
    """The figures a results file keeps under its tables (``<!-- data … -->``), or {}."""
    if not path.exists():
        return {}
    found = re.search(r"<!-- data\n(.*?)\n-->", path.read_text(), re.S)
    return json.loads(found.group(1)) if found else {}


def write_session(
    path: Path,
    title: str,
    command: str,
    key: str,
    render,
    bench_store,
    publish: bool = False,
    extra: dict | None = None,
) -> None:
    """``path``: this session's figures (``key`` prefix removed, plus ``extra`` when the
    session measured any) over the stored ones, rendered, with the title and the command
    that writes it; ``publish``: the tables also go to the session's terminal summary."""
    data = stored_figures(path)
    mine = {k.removeprefix(key): v for k, v in bench_store.results.items() if k.startswith(key)}
    if mine and extra:
        mine.update(extra)
    data.update(mine)
    table = render(data)
    if publish:  # as bench_store.publish, without the figures' JSON
        print("\n" + table)
        bench_store.tables.append(table)
    stored = json.dumps(data, sort_keys=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"# {title}\n\nWritten by `{command}`.\n\n{table}\n\n<!-- data\n{stored}\n-->\n"
    )


def publish_at_the_end(key: str, write_results):
    """A module fixture: the session's tables, once, when the module's tests are done."""

    @pytest.fixture(scope="module", autouse=True)
    def fixture(bench_store):
        yield
        if any(k.startswith(key) for k in bench_store.results):
            write_results(bench_store, publish=True)

    return fixture
