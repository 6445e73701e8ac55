"""``fedrisk sweep``: one scenario over a grid of values (and seeds), one curve.

``--set privacy.target_epsilon=0.5,1,2,4,8,inf`` makes one point per value; several
comma lists make their product. Every point is a full run folder under
``DIR/points/``; ``sweep.csv`` has one row per run (the swept values as given, then the
accounted ε and the metrics) and ``sweep.png`` draws test AUC and membership-attack AUC
against the swept value: one point per value (the mean over its seeds, with a min–max
band), not per accounted ε, which differs from the target in the fifth digit from seed
to seed. With several swept keys every grid point is its own point on the x axis.
"""

from __future__ import annotations

import csv
import itertools
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fedrisk.errors import ScenarioError
from fedrisk.evaluation.plots import plot_privacy_sweep
from fedrisk.horizontal.keys import paillier_keys
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.run import run_scenario
from fedrisk.runs.rundir import staged_run_dir
from fedrisk.scenario import Scenario, load_scenario, parse_override

DP_KEYS = ("privacy.target_epsilon", "privacy.noise_multiplier")
CSV_FIELDS = (
    "point",
    "seed",
    "epsilon",
    "noise_multiplier",
    "auc",
    "ks",
    "log_loss",
    "brier",
    "mean_pd",
    "membership_auc",
    "membership_auc_bound",
    "centralised_auc",
    "reference_auc",
    "wall_s",
)


@dataclass(frozen=True)
class SweepGrid:
    fixed: tuple[str, ...]  # plain --set overrides
    axes: tuple[tuple[str, tuple[str, ...]], ...]  # key -> raw values, in order

    def points(self) -> list[tuple[str, ...]]:
        """Each point as its list of ``key=value`` overrides."""
        keys = [k for k, _ in self.axes]
        return [
            tuple(f"{k}={v}" for k, v in zip(keys, combo))
            for combo in itertools.product(*(vals for _, vals in self.axes))
        ]


def parse_grid(overrides: list[str]) -> SweepGrid:
    fixed, axes = [], []
    for item in overrides:
        key, _, text = item.partition("=")
        if "," in text and not text.strip().startswith(("[", '"', "'")):
            values = tuple(v.strip() for v in text.split(","))
            if not all(values):
                raise ScenarioError(f"--set {item}: empty value in the list")
            axes.append((key.strip(), values))
        else:
            fixed.append(item)
    if not axes:
        raise ScenarioError(
            "--set: a sweep needs at least one comma-separated list, e.g. "
            "--set privacy.target_epsilon=0.5,1,2,4,8,inf"
        )
    return SweepGrid(tuple(fixed), tuple(axes))


def run_sweep(
    scenario_path: Path,
    overrides: list[str],
    out: Path,
    *,
    seeds: int = 1,
    engine: str | None = None,
    show_progress: bool = True,
    secrets: RunSecrets | None = None,
) -> dict[str, Any]:
    """Run every point of the grid (``seeds`` seeds each). The points of one seed share
    their parties' secrets (common random numbers: the curve shows what the privacy
    level changes, not another noise draw); each seed gets its own, derived from
    ``secrets`` (``--secrets``) or fresh from the OS."""
    secrets = secrets or RunSecrets()
    per_seed: dict[int, RunSecrets] = {}
    grid = parse_grid(overrides)
    fixed = list(grid.fixed) + ([f"federation.engine={engine}"] if engine else [])
    base = load_scenario(scenario_path, fixed)
    swept = [k for k, _ in grid.axes]
    if any(k in DP_KEYS for k in swept) and base.privacy.dp == "none":
        # sweeping a DP budget means DP: record-level DP-SGD protects customers
        print(
            "fedrisk: note: privacy.dp is 'none' in the scenario; the sweep uses 'sample' "
            "(record-level DP-SGD) so the swept privacy budget takes effect",
            file=sys.stderr,
        )
        fixed.append("privacy.dp=sample")
    # validate every point before running any (bad input fails fast, writes nothing)
    plan = []
    for i, point in enumerate(grid.points()):
        for k in range(seeds):
            s = load_scenario(scenario_path, fixed + list(point) + [f"seed={base.seed + k}"])
            plan.append((i, point, s))
    rows: list[dict[str, Any]] = []
    with staged_run_dir(out) as stage, _bar(show_progress, len(plan)) as (bar, task):
        for i, point, s in plan:
            label = "-".join(p.split("=", 1)[1] for p in point)
            started = time.perf_counter()
            folder = f"{i:02d}-{label}-seed{s.seed}"
            run = run_scenario(
                s,
                stage / "points" / folder,
                show_progress=False,
                keys=paillier_keys(s),
                secrets=per_seed.setdefault(s.seed, secrets.derived(f"seed-{s.seed}")),
            )
            rows.append(_row(point, s, run.summary, time.perf_counter() - started))
            bar.update(task, advance=1, status=f"{label}: AUC {rows[-1]['auc']:.4f}")
        _write_csv(stage / "sweep.csv", rows, swept)
        x_key, x_label = _x_axis(swept)
        series = plot_privacy_sweep(
            rows,
            stage / "sweep.png",
            x_key=x_key,
            x_label=x_label,
            # each seed splits and partitions its own way: its own references, averaged
            centralised_auc=_mean(r["centralised_auc"] for r in rows),
            reference_auc=_mean(r["reference_auc"] for r in rows),
            title=f"{base.name}: privacy against accuracy "
            f"({seeds} seed{'s' if seeds > 1 else ''} per point)",
        )
    return {"out": out, "rows": rows, "x_key": x_key, "series": series}


def _row(point: tuple[str, ...], s: Scenario, summary: dict, wall: float) -> dict[str, Any]:
    p, f = summary["privacy"], summary["federated"]
    eps = p.get("epsilon")
    if p.get("epsilon_is_infinite") or (p["dp"] == "none"):
        eps = math.inf
    row = {
        "point": " ".join(point),
        "seed": s.seed,
        "epsilon": eps,
        "noise_multiplier": p.get("noise_multiplier"),
        "auc": f["auc"],
        "ks": f["ks"],
        "log_loss": f["log_loss"],
        "brier": f["brier"],
        "mean_pd": f["mean_pd"],
        "membership_auc": summary["attacks"].get("membership_auc"),  # horizontal only
        "membership_auc_bound": summary["attacks"].get("membership_auc_bound"),
        "centralised_auc": summary["centralised"]["auc"],
        "reference_auc": summary["reference"]["auc"],
        "wall_s": round(wall, 2),
    }
    for item in point:
        keys, value = parse_override(item)
        row[".".join(keys)] = value
    return row


def _mean(values) -> float | None:
    got = [float(v) for v in values if v is not None]
    return sum(got) / len(got) if got else None


def _x_axis(swept: list[str]) -> tuple[str, str]:
    """The row key the chart groups runs by, and its axis label: the swept value as given
    (a run's accounted ε is only within rounding of its target), or with several swept
    keys the grid point itself."""
    if len(swept) > 1:
        return "point", "grid point"
    if swept[0] == "privacy.target_epsilon":
        return swept[0], "target ε (as swept; δ fixed)"
    if swept[0] == "privacy.noise_multiplier":
        return swept[0], "noise multiplier z (as swept)"
    return swept[0], swept[0]


def _write_csv(path: Path, rows: list[dict], swept: list[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=[*swept, *CSV_FIELDS], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


class _bar:
    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total = enabled, total

    def __enter__(self):
        if not self.enabled:

            class _Quiet:
                def update(self, *a, **k):
                    pass

            return _Quiet(), None
        self.progress = Progress(
            TextColumn("[bold]sweep"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
        )
        self.progress.__enter__()
        return self.progress, self.progress.add_task("sweep", total=self.total, status="")

    def __exit__(self, *exc):
        if self.enabled:
            self.progress.__exit__(*exc)
