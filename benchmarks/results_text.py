"""How the benchmark files write figures into ``results/*.md``: one formatter, so every
results file gives seconds with the same precision."""

from __future__ import annotations


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
