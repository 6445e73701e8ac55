"""The progress bar over rounds (epochs, in vertical runs) with the live test score."""

from __future__ import annotations

import time
from typing import Any

from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from fedrisk.flower.recorder import ServerRecorder
from fedrisk.i18n import N_
from fedrisk.i18n import gettext as _
from fedrisk.scenario import Scenario

#: the steps a bar counts, marked for the catalogs (step_recorder shows them through _)
STEP_UNITS = (N_("epoch"), N_("tree"), N_("session"))


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
        unit = _("tree") if self.s.model.kind == "secureboost" else _("epoch")
        at = (
            _("{unit} {epoch}").format(unit=unit, epoch="{task.fields[epoch]}")
            if vertical
            else _("round {n}").format(n="{task.completed}")
        )
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn(at + "/{task.total}"),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TextColumn(_("ETA")),
            TimeRemainingColumn(),  # from the rounds (mini-batches) done so far
            transient=False,
        )
        self.bar.__enter__()
        who = (
            _("{n} parties").format(n=len(self.s.federation.parties) or _("default"))
            if self.s.federation.kind == "vertical"
            else _("{n} banks").format(n=self.s.federation.banks)
        )
        desc = f"{self.s.name}: {who}, {self.s.federation.engine}"
        task = self.bar.add_task(desc, total=self.s.max_rounds, status="", epoch=1)
        return self.bar, task

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)


class session_progress:
    """A rich bar over one session's steps (``fraction`` 0..1 via :func:`step_recorder`),
    with an ETA; or nothing."""

    def __init__(self, enabled: bool, description: str) -> None:
        self.enabled, self.description = enabled, description

    def __enter__(self):
        if not self.enabled:
            return _NoProgress(), None
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TextColumn(_("ETA")),
            TimeRemainingColumn(),
        )
        self.bar.__enter__()
        return self.bar, self.bar.add_task(self.description, total=1, status="", epoch=1)

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)


def epoch_eta(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` past an hour), as rich's time columns write it."""
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def step_recorder(progress: Any, task: Any, unit: str) -> ServerRecorder:
    """A recorder for a vertical run's bank that moves ``progress`` with every step (a
    mini-batch, a tree level): the run's ETA is there from the first steps, the status
    says when the ``unit`` (epoch, tree) under way ends and the last test AUC."""
    started: dict[int, float] = {}
    last_auc: list[str] = []

    def on_round(rnd: int, metrics: dict[str, float]) -> None:
        if "auc" in metrics:  # secret-shared runs score only after their last epoch
            last_auc[:] = [_("test AUC {auc}").format(auc=f"{metrics['auc']:.4f}")]
        progress.update(task, completed=rnd, status=", ".join(last_auc))

    def on_step(rnd: int, fraction: float) -> None:
        now = time.perf_counter()
        start = started.setdefault(rnd, now)  # the bank reports 0.0 first
        status = ""
        if fraction > 0:
            status = _("{unit} ends in {eta}").format(
                unit=_(unit), eta=epoch_eta((now - start) * (1 - fraction) / fraction)
            )
        status = ", ".join(x for x in (status, *last_auc) if x)
        progress.update(task, completed=rnd - 1 + 0.99 * fraction, epoch=rnd, status=status)

    recorder = ServerRecorder(None, on_round)
    recorder.on_step = on_step
    return recorder


__all__ = ["epoch_eta", "run_progress", "session_progress", "step_recorder"]
