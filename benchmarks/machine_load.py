"""How busy the machine was while a benchmark timed something: CPU seconds of the whole
machine and of the benchmark's own processes, read from /proc, so a results file can flag
a timing other processes disturbed."""

from __future__ import annotations

import os


def cpu_seconds(pids=(), children: bool = False) -> tuple[float, float] | None:
    """(busy CPU seconds of the machine since boot, of this process and ``pids``; with
    ``children`` also its reaped children's); None where /proc is not there."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    ours = 0
    last = 15 if children else 13  # utime stime (cutime cstime)
    for pid in ["self", *pids]:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ours += sum(int(v) for v in fields[11:last])
        except (OSError, ValueError, IndexError):
            if pid == "self":
                return None  # a worker that is gone counts as nothing
    busy = sum(ticks[:8]) - ticks[3] - ticks[4]  # user .. steal, less idle and iowait
    hz = os.sysconf("SC_CLK_TCK")
    return busy / hz, ours / hz


def cpu_share(before, after, wall: float, min_wall: float = 0.0) -> dict | None:
    """Ours and other processes' CPU seconds between two :func:`cpu_seconds`, and the
    others' share of every CPU over ``wall`` seconds; None under ``min_wall`` (the kernel
    counts in ticks of 10 ms: a short span's share is noise)."""
    if not before or not after or wall <= 0 or wall < min_wall:
        return None
    ours = after[1] - before[1]
    others = max(0.0, after[0] - before[0] - ours)
    return {"ours": ours, "others": others, "share": others / (wall * (os.cpu_count() or 1))}
