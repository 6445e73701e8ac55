"""The progress bar over rounds (epochs, in vertical runs) with the live test score."""

from __future__ import annotations

from typing import Any

from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from fedrisk.scenario import Scenario


class _NoProgress:
    def update(self, *args: Any, **kwargs: Any) -> None:
        pass


class run_progress:
    """A rich progress bar over rounds (or nothing, for tests and pipes)."""

    def __init__(self, enabled: bool, s: Scenario) -> None:
        self.enabled, self.s = enabled, s

    def __enter__(self):
        if not self.enabled:
            return _NoProgress(), None
        vertical = self.s.federation.kind == "vertical"
        # a vertical bar moves by mini-batch (fractions of an epoch) and names the epoch
        # under way; a horizontal one moves by round
        unit = "tree" if self.s.model.kind == "secureboost" else "epoch"
        at = f"{unit} {{task.fields[epoch]}}" if vertical else "round {task.completed}"
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn(at + "/{task.total}"),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),  # from the rounds (mini-batches) done so far
            transient=False,
        )
        self.bar.__enter__()
        who = (
            f"{len(self.s.federation.parties) or 'default'} parties"
            if self.s.federation.kind == "vertical"
            else f"{self.s.federation.banks} banks"
        )
        desc = f"{self.s.name}: {who}, {self.s.federation.engine}"
        task = self.bar.add_task(desc, total=self.s.max_rounds, status="", epoch=1)
        return self.bar, task

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)


__all__ = ["run_progress"]
