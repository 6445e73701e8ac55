"""Shared state for the benchmark suite (run with ``python -m pytest benchmarks/ --benchmark-only``).

The ratio test at the end of ``test_bench_paillier.py`` compares timings measured in the
*same* session, so every benchmark records its statistics in one session-level store.
The store also keeps the markdown result table, which is echoed in pytest's terminal
summary (so it is visible without ``-s``).
"""

from __future__ import annotations

import os

import pytest

# Numpy work here is tiny; keep BLAS/OpenMP from spawning threads that compete with the
# gmpy2 big-integer arithmetic on a small (2-core) machine.
for _k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_k, "1")


class BenchStore:
    """Timings by benchmark key, in seconds, plus the tables to show at the end."""

    def __init__(self) -> None:
        self.results: dict[str, dict] = {}
        self.tables: list[str] = []

    def record(self, key: str, benchmark) -> None:
        """Keep a pytest-benchmark result (nothing is kept when benchmarking is disabled)."""
        meta = getattr(benchmark, "stats", None)
        if not getattr(benchmark, "enabled", False) or not meta:
            return
        stats = meta.stats
        self.results[key] = {
            "min": stats.min,
            "median": stats.median,
            "rounds": stats.rounds,
            "source": "pytest-benchmark",
        }

    def publish(self, path, title: str, command: str, table: str) -> None:
        """Show a result table at the end of the session and write it to ``path``
        (markdown: the title, the command that wrote it, the table)."""
        print("\n" + table)
        self.tables.append(table)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {title}\n\nWritten by `{command}`.\n\n{table}\n")


_STORE = pytest.StashKey[BenchStore]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_STORE] = BenchStore()


@pytest.fixture(scope="session")
def bench_store(request: pytest.FixtureRequest) -> BenchStore:
    return request.config.stash[_STORE]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    store = config.stash.get(_STORE, None)
    if store is None or not store.tables:
        return
    terminalreporter.section("fedrisk Paillier benchmark: naive vs packed vs limit")
    for table in store.tables:
        terminalreporter.write_line(table)
