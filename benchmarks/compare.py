"""Federated against centralised, over a fixed matrix of runs; plus a scaling study.

    python benchmarks/compare.py --quick    # subset + small scaling study, < 15 min on 2 cores
    python benchmarks/compare.py            # the full matrix (78 runs; 20 min measured on 2 cores)
    python benchmarks/compare.py --scaling  # the scaling study only (10/100/1000 banks)
    options: --seeds N, --out DIR (default benchmarks/results), --no-scaling

Every run already trains the centralised model on the same training rows, with the same
optimiser and budget, and scores it on the same test rows (``summary["centralised"]``);
the gap is federated AUC minus that.

Wall-time ratio to centralised = ``cost.federated_wall_s`` / ``centralised_s``, where
``centralised_s`` is :func:`fedrisk.evaluation.baselines.train_centralised` timed here
(min of 3) on the run's own prepared training rows. ``cost.baselines_wall_s`` is also
written, but it includes every bank's local-only model (100 of them at 100 banks), so it
is not the centralised time. For vertical runs the pooled rows only exist inside the run;
there the same call is timed on a same-shaped stand-in (train rows x all parties'
features; SGD cost depends on the shape only).

Outputs in --out: compare.csv (one row per run), compare.md (table aggregated over
seeds), gap_by_banks.png, bytes_per_round.png, auc_vs_epsilon.png, and from the scaling
study scaling.csv, scaling.md, scaling.png. Run folders go to a temporary directory and
are deleted after their summary is read.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import io
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
QUICKSTART = ROOT / "scenarios" / "quickstart.toml"
VERTICAL = ROOT / "scenarios" / "vertical.toml"

ROUNDS = 20
ALPHA = 0.5
# 100 banks under Dirichlet(0.5) label skew: no draw in 1000 gives every bank 30 rows for
# seeds 42-47 (20 works for one of them); 10 works for all. Used for every horizontal run.
MIN_ROWS = 10
PARTITIONS = {"iid": "iid", "non-iid": "dirichlet"}
AGGREGATIONS = ("plain", "paillier", "secagg")

CSV_FIELDS = (
    "case",
    "partition",
    "banks",
    "aggregation",
    "dp",
    "target_epsilon",
    "seed",
    "rounds",
    "auc",
    "ks",
    "centralised_auc",
    "gap",
    "wall_s",
    "federated_wall_s",
    "baselines_wall_s",
    "centralised_s",
    "wall_ratio",
    "bytes_per_round",
    "epsilon",
    "run_s",
)
SCALING_FIELDS = (
    "axis",
    "banks",
    "features",
    "aggregation",
    "rounds",
    "repeats",
    "per_round_s",
    "federated_wall_s",
    "process_s",
    "peak_rss_mib",
    "bytes_per_round",
    "auc",
)
SCALING_REPEATS = 2  # each scaling point runs twice: min time, max peak memory

# Per-run seconds on the 2-core machine at load average ~2 (20 rounds, in-process engine,
# key ceremony and centralised timing included): 5/20 banks and DP/vertical from a --quick
# run, 2 and 100 banks from single runs. They drive the progress bar's ETA and the full
# matrix's estimate, both rescaled by the speed measured in the session.
PRIOR_S = {
    "plain": {2: 2.5, 5: 2.5, 20: 2.0, 100: 8.0},
    "paillier": {2: 3.5, 5: 3.0, 20: 6.5, 100: 30.0},
    "secagg": {3: 4.3, 5: 4.3, 20: 29.0, 100: 122.0},
}
PRIOR_DP_S = 4.0
PRIOR_VERTICAL_S = (8.0, 36.0)  # fixed + per epoch


# --------------------------------------------------------------------------- the matrix


@dataclass(frozen=True)
class Case:
    case: str  # horizontal | horizontal-dp | vertical
    partition: str  # iid | non-iid | vertical
    banks: int  # banks; for vertical, parties
    aggregation: str
    dp: str
    target_epsilon: float | None
    seed: int
    rounds: int
    scenario: Path
    overrides: tuple[str, ...]

    @property
    def group(self) -> tuple:
        return (
            self.case,
            self.partition,
            self.banks,
            self.aggregation,
            self.dp,
            self.target_epsilon,
        )

    def label(self) -> str:
        if self.case == "vertical":
            return f"vertical {self.rounds} epoch(s), seed {self.seed}"
        dp = f", DP ε={self.target_epsilon:g}" if self.dp != "none" else ""
        return f"{self.partition} {self.banks} banks {self.aggregation}{dp}, seed {self.seed}"

    def prior_s(self) -> float:
        if self.case == "vertical":
            return PRIOR_VERTICAL_S[0] + PRIOR_VERTICAL_S[1] * self.rounds
        if self.dp != "none":
            return PRIOR_DP_S
        return _interp(PRIOR_S[self.aggregation], self.banks)


def _interp(table: dict[int, float], x: float) -> float:
    """Linear between the measured bank counts; proportional to banks beyond them."""
    xs = sorted(table)
    if x > xs[-1]:
        return table[xs[-1]] * x / xs[-1]
    return float(np.interp(x, xs, [table[k] for k in xs]))


def _scenario_seed(path: Path) -> int:
    from fedrisk.scenario import load_scenario

    return load_scenario(path).seed


def horizontal_case(
    partition: str, banks: int, aggregation: str, seed: int, epsilon: float | None = None
) -> Case:
    sets = [
        f"rounds={ROUNDS}",
        f"seed={seed}",
        f"federation.banks={banks}",
        f"federation.partition={PARTITIONS[partition]}",
        f"federation.alpha={ALPHA}",
        f"federation.min_rows={MIN_ROWS}",
        f"privacy.aggregation={aggregation}",
    ]
    dp = "none"
    if epsilon is not None:
        dp = "sample"
        sets += ["privacy.dp=sample", f"privacy.target_epsilon={epsilon}"]
    return Case(
        "horizontal-dp" if epsilon is not None else "horizontal",
        partition,
        banks,
        aggregation,
        dp,
        epsilon,
        seed,
        ROUNDS,
        QUICKSTART,
        tuple(sets),
    )


def vertical_case(seed: int, epochs: int) -> Case:
    # the label-leakage attack is a separate experiment: off here, it is not a cost of training
    sets = (f"seed={seed}", f"rounds={epochs}", "privacy.label_leakage_attack=false")
    return Case("vertical", "vertical", 2, "paillier", "none", None, seed, epochs, VERTICAL, sets)


def build_matrix(quick: bool, n_seeds: int) -> list[Case]:
    h_seeds = [_scenario_seed(QUICKSTART) + k for k in range(n_seeds)]
    v_seeds = [_scenario_seed(VERTICAL) + k for k in range(n_seeds)]
    banks = (5, 20) if quick else (2, 5, 20, 100)
    epsilons = (1.0, 8.0) if quick else (1.0, 3.0, 8.0)
    cases = []
    for partition in PARTITIONS:
        for b in banks:
            for agg in AGGREGATIONS:
                if agg == "secagg" and b < 3:
                    continue  # Flower's SecAgg+ needs at least 3 banks
                cases += [horizontal_case(partition, b, agg, s) for s in h_seeds]
    for eps in epsilons:
        cases += [horizontal_case("non-iid", 5, "plain", s, eps) for s in h_seeds]
    # the scenario's own 2 epochs in the full matrix; one epoch in --quick (~40-70 s each)
    cases += [vertical_case(s, 1 if quick else _scenario_rounds(VERTICAL)) for s in v_seeds]
    return cases


def _scenario_rounds(path: Path) -> int:
    from fedrisk.scenario import load_scenario

    return load_scenario(path).rounds


# --------------------------------------------------------------------------- running

_CENTRAL_CACHE: dict[Any, float] = {}


def centralised_seconds(s, X: np.ndarray, y: np.ndarray, key: Any, repeats: int = 3) -> float:
    """Min of ``repeats`` timings of train_centralised on these rows (cached per key)."""
    from fedrisk.evaluation.baselines import BaselineBudget, train_centralised

    if key not in _CENTRAL_CACHE:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            train_centralised(BaselineBudget.of(s.model, s.rounds, s.seed), X, y)
            times.append(time.perf_counter() - t0)
        _CENTRAL_CACHE[key] = min(times)
    return _CENTRAL_CACHE[key]


def run_case(case: Case, tmp: Path, log) -> list[dict[str, Any]]:
    """Run one case; one csv row (two for vertical: federated and bank alone)."""
    from fedrisk.horizontal.keys import paillier_keys
    from fedrisk.runs.run import run_scenario
    from fedrisk.scenario import load_scenario

    started = time.perf_counter()
    s = load_scenario(case.scenario, list(case.overrides))
    out = tmp / f"run-{int(time.time() * 1000)}"
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            keys = paillier_keys(s)
            summary = run_scenario(s, out, show_progress=False, keys=keys).summary
    finally:
        shutil.rmtree(out, ignore_errors=True)
        for line in dict.fromkeys(err.getvalue().splitlines()):
            if line.strip():
                log(f"  [dim]{line.strip()}[/dim]")
    if case.case == "vertical":
        rows_n = summary["data"]["train_rows"]
        n_feat = sum(p["features"] for p in summary["data"]["parties"].values())
        rng = np.random.default_rng(s.seed)
        X = rng.standard_normal((rows_n, n_feat))
        y = (rng.random(rows_n) < summary["data"]["test_default_rate"]).astype(np.float64)
        central_s = centralised_seconds(s, X, y, ("vertical", rows_n, n_feat, s.rounds, s.model))
    else:
        from fedrisk.data.prepare import prepare_horizontal

        # the training rows depend on the seed and the data, not on the banks
        key = ("horizontal", s.seed, s.rounds, s.data, s.model)
        if key not in _CENTRAL_CACHE:
            data = prepare_horizontal(s)
            centralised_seconds(s, data.train.X, data.train.y, key)
        central_s = _CENTRAL_CACHE[key]
    cost = summary["cost"]
    per_round = cost.get("bytes_per_round") or []
    eps = summary["privacy"].get("epsilon")
    row = {
        "case": case.case,
        "partition": case.partition,
        "banks": case.banks,
        "aggregation": case.aggregation,
        "dp": case.dp,
        "target_epsilon": case.target_epsilon,
        "seed": case.seed,
        "rounds": case.rounds,
        "auc": summary["federated"]["auc"],
        "ks": summary["federated"]["ks"],
        "centralised_auc": summary["centralised"]["auc"],
        "gap": summary["federated"]["auc"] - summary["centralised"]["auc"],
        "wall_s": cost["wall_s"],
        "federated_wall_s": cost["federated_wall_s"],
        "baselines_wall_s": cost.get("baselines_wall_s"),
        "centralised_s": central_s,
        "wall_ratio": cost["federated_wall_s"] / central_s,
        "bytes_per_round": float(np.mean(per_round)) if per_round else None,
        "epsilon": eps if eps is not None and math.isfinite(eps) else None,
        "run_s": time.perf_counter() - started,
    }
    rows = [row]
    if case.case == "vertical":
        alone = summary["local_only"]["bank"]
        rows.append(
            {
                **{k: None for k in CSV_FIELDS},
                "case": "vertical-bank-alone",
                "partition": "vertical",
                "banks": 1,
                "aggregation": "none",
                "dp": "none",
                "seed": case.seed,
                "rounds": case.rounds,
                "auc": alone["auc"],
                "ks": alone["ks"],
                "centralised_auc": row["centralised_auc"],
                "gap": alone["auc"] - row["centralised_auc"],
            }
        )
    return rows


class _Eta:
    """ETA from the prior per-run costs, rescaled by this session's measured speed."""

    def __init__(self, priors: list[float]) -> None:
        self.priors, self.done_prior, self.done_s, self.i = priors, 0.0, 0.0, 0
        self.run_started = time.perf_counter()

    @property
    def factor(self) -> float:
        return self.done_s / self.done_prior if self.done_prior else 1.0

    def start(self, i: int) -> None:
        self.i, self.run_started = i, time.perf_counter()

    def finish(self, seconds: float) -> None:
        self.done_prior += self.priors[self.i]
        self.done_s += seconds

    def remaining(self) -> float:
        after = sum(self.priors[self.i + 1 :]) * self.factor
        current = self.priors[self.i] * self.factor - (time.perf_counter() - self.run_started)
        return after + max(current, 0.0)


def _fmt_s(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


@contextlib.contextmanager
def progress_bar(title: str, priors: list[float]):
    """A rich progress bar weighted by each run's expected cost, with an ETA column."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text

    eta = _Eta(priors)

    class EtaColumn(ProgressColumn):
        def render(self, task) -> Text:
            if task.finished:
                return Text("done", style="green")
            return Text(f"ETA {_fmt_s(eta.remaining())}", style="cyan")

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        EtaColumn(),
        TextColumn("{task.fields[status]}"),
    )
    with bar:
        task = bar.add_task(title, total=len(priors), status="")
        yield bar, task, eta


def run_matrix(cases: list[Case], log_console) -> tuple[list[dict], list[str], float]:
    rows, failures = [], []
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="fedrisk-compare-") as tmp,
        progress_bar("matrix", [c.prior_s() for c in cases]) as (bar, task, eta),
    ):
        for i, case in enumerate(cases):
            eta.start(i)
            bar.update(task, status=case.label())
            t0 = time.perf_counter()
            new = []
            for attempt in (1, 2):  # one retry: a transient failure must not empty a cell
                try:
                    new = run_case(case, Path(tmp), bar.console.print)
                    break
                except Exception as exc:  # keep going: one broken cell must not lose the rest
                    what = "retried" if attempt == 1 else "failed twice, no row"
                    failures.append(f"{case.label()} ({what}): {type(exc).__name__}: {exc}")
                    bar.console.print(f"[red]FAILED[/red] {failures[-1]}")
            took = time.perf_counter() - t0
            eta.finish(took)
            rows += new
            if new:
                r = new[0]
                bar.console.print(
                    f"[{i + 1}/{len(cases)}] {case.label()}: AUC {r['auc']:.4f} "
                    f"(gap {r['gap']:+.4f}), {took:.1f} s"
                )
            bar.update(task, advance=1)
    return rows, failures, time.perf_counter() - started


# --------------------------------------------------------------------------- outputs


def _mean_sd(values: list[float]) -> tuple[float, float]:
    v = [x for x in values if x is not None]
    if not v:
        return math.nan, math.nan
    return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0


def aggregate(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        key = (
            r["case"],
            r["partition"],
            r["banks"],
            r["aggregation"],
            r["dp"],
            r["target_epsilon"],
        )
        groups.setdefault(key, []).append(r)
    out = []
    for key, rs in groups.items():
        auc, auc_sd = _mean_sd([r["auc"] for r in rs])
        gap, gap_sd = _mean_sd([r["gap"] for r in rs])
        out.append(
            {
                "case": key[0],
                "partition": key[1],
                "banks": key[2],
                "aggregation": key[3],
                "dp": key[4],
                "target_epsilon": key[5],
                "n": len(rs),
                "rounds": rs[0]["rounds"],
                "auc": auc,
                "auc_sd": auc_sd,
                "ks": _mean_sd([r["ks"] for r in rs])[0],
                "centralised_auc": _mean_sd([r["centralised_auc"] for r in rs])[0],
                "gap": gap,
                "gap_sd": gap_sd,
                "wall_ratio": _mean_sd([r["wall_ratio"] for r in rs])[0],
                "federated_wall_s": _mean_sd([r["federated_wall_s"] for r in rs])[0],
                "bytes_per_round": _mean_sd([r["bytes_per_round"] for r in rs])[0],
                "epsilon": _mean_sd([r["epsilon"] for r in rs])[0],
                "run_s": _mean_sd([r["run_s"] for r in rs])[0],
            }
        )
    return out


def _csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return v


def write_csv(path: Path, rows: list[dict], fields: tuple[str, ...]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: _csv_value(r.get(k)) for k in fields})


def _f(x: float | None, fmt: str, dash: str = "–") -> str:
    return dash if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def _ratio(x: float | None) -> str:
    if x is None or math.isnan(x):
        return "–"
    return f"{x:,.0f}x" if x >= 100 else f"{x:.1f}x"


def _bytes(x: float | None) -> str:
    if x is None or math.isnan(x):
        return "–"
    for unit, size in (("MB", 1e6), ("kB", 1e3)):
        if x >= size:
            return f"{x / size:,.1f} {unit}"
    return f"{x:,.0f} B"


def _setting(g: dict) -> str:
    if g["case"] == "vertical":
        epochs = f"{g['rounds']} epoch{'s' * (g['rounds'] > 1)}"
        return f"vertical, bank + provider, hetero LR ({epochs})"
    if g["case"] == "vertical-bank-alone":
        return "vertical: bank alone (its own 13 features)"
    dp = f", DP-SGD ε = {g['target_epsilon']:g}" if g["dp"] != "none" else ""
    return f"{g['partition']}, {g['banks']} banks{dp}"


def results_table(groups: list[dict]) -> str:
    lines = [
        "| setting | aggregation | seeds | AUC (mean ± sd) | KS | gap to centralised "
        "(mean ± sd) | wall time ratio to centralised | bytes per round | ε |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for g in groups:
        lines.append(
            f"| {_setting(g)} | {g['aggregation']} | {g['n']} | "
            f"{g['auc']:.4f} ± {g['auc_sd']:.4f} | {g['ks']:.4f} | "
            f"{g['gap']:+.4f} ± {g['gap_sd']:.4f} | {_ratio(g['wall_ratio'])} | "
            f"{_bytes(g['bytes_per_round'])} | {_f(g['epsilon'], '.2f')} |"
        )
    return "\n".join(lines)


def machine_note() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    import fedrisk

    return (
        f"{os.cpu_count()} CPUs ({cpu}){mem}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, fedrisk {fedrisk.__version__}"
    )


def _load() -> str:
    with contextlib.suppress(OSError):
        return "/".join(f"{x:.1f}" for x in os.getloadavg())
    return "n/a"


# --------------------------------------------------------------------------- charts


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


AGG_COLOURS = {"plain": "tab:blue", "paillier": "tab:orange", "secagg": "tab:green"}


def plot_gap_by_banks(groups: list[dict], path: Path) -> None:
    plt = _plt()
    hz = [g for g in groups if g["case"] == "horizontal"]
    parts = [p for p in PARTITIONS if any(g["partition"] == p for g in hz)]
    if not parts:
        return
    fig, axes = plt.subplots(
        1, len(parts), figsize=(5.5 * len(parts), 4.2), sharey=True, squeeze=False
    )
    try:
        for ax, part in zip(axes[0], parts):
            for k, agg in enumerate(AGGREGATIONS):
                gs = sorted(
                    (g for g in hz if g["partition"] == part and g["aggregation"] == agg),
                    key=lambda g: g["banks"],
                )
                if not gs:
                    continue
                x = np.array([g["banks"] for g in gs], float) * (1 + 0.04 * (k - 1))
                ax.errorbar(
                    x,
                    [g["gap"] for g in gs],
                    yerr=[g["gap_sd"] for g in gs],
                    marker="o",
                    capsize=3,
                    color=AGG_COLOURS[agg],
                    label=agg,
                )
            ax.axhline(0, color="grey", lw=0.8, ls="--")
            ax.set_xscale("log")
            banks = sorted({g["banks"] for g in hz})
            ax.set_xticks(banks, [str(b) for b in banks])
            ax.minorticks_off()
            name = "IID" if part == "iid" else f"non-IID (Dirichlet α = {ALPHA:g})"
            ax.set_title(f"{name}, {ROUNDS} rounds")
            ax.set_xlabel("banks")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("test AUC: federated − centralised\n(mean ± sd over seeds)")
        axes[0][0].legend()
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)


def plot_bytes(groups: list[dict], path: Path) -> None:
    plt = _plt()
    hz = [g for g in groups if g["case"] == "horizontal"]
    banks = sorted({g["banks"] for g in hz})
    if not banks:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    try:
        width = 0.8 / len(AGGREGATIONS)
        for k, agg in enumerate(AGGREGATIONS):
            vals = []
            for b in banks:
                v = [
                    g["bytes_per_round"] for g in hz if g["banks"] == b and g["aggregation"] == agg
                ]
                vals.append(float(np.mean(v)) if v else np.nan)
            xs = np.arange(len(banks)) + (k - 1) * width
            ax.bar(xs, vals, width, color=AGG_COLOURS[agg], label=agg)
        ax.set_yscale("log")
        ax.set_xticks(np.arange(len(banks)), [str(b) for b in banks])
        ax.set_xlabel("banks")
        ax.set_ylabel("bytes per round (both directions, log scale)")
        ax.set_title("Traffic per round by aggregation (mean over partitions and seeds)")
        ax.grid(axis="y", alpha=0.3, which="both")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)


def plot_auc_vs_epsilon(groups: list[dict], path: Path) -> None:
    plt = _plt()
    dp = sorted(
        (g for g in groups if g["case"] == "horizontal-dp"), key=lambda g: g["target_epsilon"]
    )
    if not dp:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    try:
        ax.errorbar(
            [g["epsilon"] for g in dp],
            [g["auc"] for g in dp],
            yerr=[g["auc_sd"] for g in dp],
            marker="o",
            capsize=3,
            label="federated, DP-SGD (record-level)",
        )
        ref = [
            g
            for g in groups
            if g["case"] == "horizontal"
            and g["partition"] == "non-iid"
            and g["banks"] == 5
            and g["aggregation"] == "plain"
        ]
        if ref:
            ax.axhline(
                ref[0]["auc"],
                color="tab:blue",
                ls=":",
                label=f"federated, no DP ({ref[0]['auc']:.4f})",
            )
        c = float(np.mean([g["centralised_auc"] for g in dp]))
        ax.axhline(c, color="tab:green", ls="--", label=f"centralised, no DP ({c:.4f})")
        ax.set_xscale("log")
        eps = [g["epsilon"] for g in dp]
        ax.set_xticks(eps, [f"{e:.2g}" for e in eps])
        ax.minorticks_off()
        ax.set_xlabel("accounted ε (δ = 1e-5)")
        ax.set_ylabel("test AUC (mean ± sd over seeds)")
        ax.set_title(f"Privacy against accuracy: non-IID, 5 banks, plain, {ROUNDS} rounds")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------- scaling


@dataclass(frozen=True)
class ScalePoint:
    axis: str  # banks | features | paillier
    banks: int
    features_per_source: int | None  # None: bundled data
    aggregation: str
    rounds: int = 3

    def overrides(self) -> list[str]:
        sets = [
            f"rounds={self.rounds}",
            "federation.partition=iid",
            f"federation.min_rows={MIN_ROWS}",
            f"federation.banks={self.banks}",
            f"privacy.aggregation={self.aggregation}",
        ]
        if self.features_per_source is not None:
            sets += [
                "data.source=synthetic",
                f"data.features_per_source={self.features_per_source}",
            ]
        return sets

    def label(self) -> str:
        what = (
            f"{4 * self.features_per_source} synthetic features"
            if self.features_per_source
            else "bundled data"
        )
        return f"{self.axis}: {self.banks} banks, {what}, {self.aggregation}"

    def prior_s(self) -> float:
        if self.aggregation == "paillier":
            return SCALING_REPEATS * (5.0 + 0.1 * self.banks)
        return SCALING_REPEATS * (4.0 + 0.02 * self.banks)


def scaling_points(quick: bool) -> list[ScalePoint]:
    pts = [
        ScalePoint("banks", b, None, "plain")
        for b in ((10, 100, 300) if quick else (10, 100, 1000))
    ]
    pts += [ScalePoint("features", 10, f, "plain") for f in (4, 16, 64)]
    # 20 rounds here, as in the matrix: with 3 rounds the obfuscators precomputed during
    # the CLI's start-up cover the whole run and the overhead disappears in the noise
    pts += [
        ScalePoint("paillier", b, None, agg, rounds=ROUNDS)
        for b in (5, 20)
        for agg in ("plain", "paillier")
    ]
    return pts


# Runs the command given as its arguments and prints its exit code, wall time and peak
# RSS (wait4's rusage of that child alone). Why a wrapper: on Linux a child's ru_maxrss
# starts from the high-water mark of the process it was forked from (exec keeps it), so
# forking `fedrisk run` straight from this ~250 MiB process would report at least that.
# The wrapper is a fresh ~15 MiB interpreter, so its child's figure is the run's own.
_WRAPPER = """
import json, os, subprocess, sys, time
t = time.perf_counter()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
err = p.stderr.read()
_, status, usage = os.wait4(p.pid, 0)
print(json.dumps({"rc": os.waitstatus_to_exitcode(status), "maxrss_kib": usage.ru_maxrss,
                  "wall_s": time.perf_counter() - t, "stderr": err.decode(errors="replace")}))
"""


def run_point(p: ScalePoint, tmp: Path) -> dict[str, Any]:
    """``fedrisk run`` in a child process (through _WRAPPER): time, peak RSS, summary."""
    out = tmp / f"{p.axis}-{p.banks}-{p.features_per_source}-{p.aggregation}"
    cmd = [
        sys.executable,
        "-m",
        "fedrisk.cli",
        "run",
        str(QUICKSTART),
        "--out",
        str(out),
        "--quiet",
        *[a for s in p.overrides() for a in ("--set", s)],
    ]
    done = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *cmd], cwd=tmp, check=True, capture_output=True, text=True
    )
    res = json.loads(done.stdout.strip().splitlines()[-1])
    if res["rc"] != 0:
        raise RuntimeError(f"exit {res['rc']}: {res['stderr'].strip()[-500:]}")
    took = res["wall_s"]
    summary = json.loads((out / "summary.json").read_text())
    shutil.rmtree(out, ignore_errors=True)
    cost = summary["cost"]
    return {
        "axis": p.axis,
        "banks": p.banks,
        "features": summary["data"]["features"],
        "aggregation": p.aggregation,
        "rounds": p.rounds,
        "per_round_s": cost["federated_wall_s"] / p.rounds,
        "federated_wall_s": cost["federated_wall_s"],
        "process_s": took,
        "peak_rss_mib": res["maxrss_kib"] / 1024,  # Linux: KiB
        "bytes_per_round": float(np.mean(cost["bytes_per_round"])),
        "auc": summary["federated"]["auc"],
        "crypto": {
            k: cost[k]
            for k in ("encryption_s", "decryption_s", "obfuscator_precompute_s")
            if k in cost
        },
    }


def run_scaling(quick: bool) -> tuple[list[dict], list[str], float]:
    pts = scaling_points(quick)
    rows, failures = [], []
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="fedrisk-scaling-") as tmp,
        progress_bar("scaling", [p.prior_s() for p in pts]) as (bar, task, eta),
    ):
        for i, p in enumerate(pts):
            eta.start(i)
            bar.update(task, status=p.label())
            t0 = time.perf_counter()
            try:
                runs = [run_point(p, Path(tmp)) for _ in range(SCALING_REPEATS)]
                # noise only adds time: the fastest repeat; memory: the largest
                r = min(runs, key=lambda x: x["per_round_s"])
                r = {
                    **r,
                    "process_s": min(x["process_s"] for x in runs),
                    "peak_rss_mib": max(x["peak_rss_mib"] for x in runs),
                    "repeats": len(runs),
                }
                rows.append(r)
                bar.console.print(
                    f"[{i + 1}/{len(pts)}] {p.label()}: "
                    f"{r['per_round_s']:.3f} s/round, "
                    f"{r['peak_rss_mib']:.0f} MiB peak, {r['process_s']:.1f} s"
                )
            except Exception as exc:
                failures.append(f"{p.label()}: {type(exc).__name__}: {exc}")
                bar.console.print(f"[red]FAILED[/red] {failures[-1]}")
            eta.finish(time.perf_counter() - t0)
            bar.update(task, advance=1)
    return rows, failures, time.perf_counter() - started


def _exponent(xs: list[float], ys: list[float]) -> float:
    if len(xs) < 2:
        return math.nan
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def _matrix_paillier_ratio(out: Path) -> dict[int, tuple[float, int]]:
    """Paillier/plain federated_wall_s from compare.csv (20 rounds), paired by
    partition and seed, per bank count: (mean ratio, pairs)."""
    path = out / "compare.csv"
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["case"] == "horizontal"]
    by = {
        (r["partition"], int(r["banks"]), r["aggregation"], r["seed"]): float(r["federated_wall_s"])
        for r in rows
    }
    ratios: dict[int, list[float]] = {}
    for (part, b, agg, seed), v in by.items():
        if agg == "paillier" and (part, b, "plain", seed) in by:
            ratios.setdefault(b, []).append(v / by[(part, b, "plain", seed)])
    return {b: (float(np.mean(v)), len(v)) for b, v in sorted(ratios.items())}


def write_scaling(
    rows: list[dict], failures: list[str], out: Path, header: str, runtime: float
) -> None:
    write_csv(out / "scaling.csv", rows, SCALING_FIELDS)
    banks = sorted((r for r in rows if r["axis"] == "banks"), key=lambda r: r["banks"])
    feats = sorted((r for r in rows if r["axis"] == "features"), key=lambda r: r["features"])
    b_exp = _exponent([r["banks"] for r in banks], [r["per_round_s"] for r in banks])
    f_exp = _exponent([r["features"] for r in feats], [r["per_round_s"] for r in feats])
    tail = (
        _exponent([r["banks"] for r in banks[-2:]], [r["per_round_s"] for r in banks[-2:]])
        if len(banks) >= 2
        else math.nan
    )
    lines = [
        header,
        "",
        f"Scaling study runtime: {_fmt_s(runtime)} ({runtime:.0f} s). Each "
        "point is one `fedrisk run scenarios/quickstart.toml --quiet` in its own child "
        "process (3 rounds unless stated, IID partition, min_rows 10, in-process engine, "
        "seed 42). "
        "Seconds per round = `cost.federated_wall_s` / rounds (the federation phase, "
        "without start-up, data loading, baselines or reports); peak memory = the "
        "child's `ru_maxrss` from `os.wait4`, read in a small wrapper process (a child "
        "forked straight from this script would inherit its ~250 MiB high-water mark); "
        "process s = the child's whole wall time (start-up, imports, baselines and "
        f"reports included). Each point ran {SCALING_REPEATS} times: the fastest time, "
        "the largest peak memory.",
        "",
        "| axis | banks | features | aggregation | s per round | process s | "
        "peak RSS (MiB) | bytes per round | test AUC |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['axis']} | {r['banks']} | {r['features']} | {r['aggregation']} | "
            f"{r['per_round_s']:.3f} | {r['process_s']:.1f} | "
            f"{r['peak_rss_mib']:.0f} | {_bytes(r['bytes_per_round'])} | "
            f"{r['auc']:.4f} |"
        )
    lines += ["", "Growth (least-squares slope of log(seconds per round) against log(size)):", ""]
    if banks:
        lines.append(
            f"- banks {', '.join(str(r['banks']) for r in banks)}: time per round "
            f"∝ banks^**{b_exp:.2f}** (between the two largest: "
            f"^{tail:.2f}); peak memory "
            f"{banks[0]['peak_rss_mib']:.0f} → {banks[-1]['peak_rss_mib']:.0f} MiB."
        )
    if feats:
        lines.append(
            f"- features {', '.join(str(r['features']) for r in feats)} (synthetic, "
            f"10 banks): time per round ∝ features^**{f_exp:.2f}**; peak memory "
            f"{feats[0]['peak_rss_mib']:.0f} → {feats[-1]['peak_rss_mib']:.0f} MiB."
        )
    lines += [
        "",
        f"Paillier overhead (2048-bit keys, {ROUNDS} rounds, ratio to plaintext at "
        "the same banks):",
        "",
        "| banks | federation s per round plain → Paillier | ratio | process s plain → "
        "Paillier | ratio | peak RSS ratio | bytes per round ratio | matrix ratio "
        "(`federated_wall_s`, compare.csv) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    matrix = _matrix_paillier_ratio(out)
    pai = {(r["banks"], r["aggregation"]): r for r in rows if r["axis"] == "paillier"}
    for b in sorted({k[0] for k in pai}):
        p, q = pai.get((b, "plain")), pai.get((b, "paillier"))
        if not (p and q):
            continue
        m = matrix.get(b)
        lines.append(
            f"| {b} | {p['per_round_s']:.3f} → {q['per_round_s']:.3f} | "
            f"{q['per_round_s'] / p['per_round_s']:.2f}x | {p['process_s']:.1f} → "
            f"{q['process_s']:.1f} | {q['process_s'] / p['process_s']:.2f}x | "
            f"{q['peak_rss_mib'] / p['peak_rss_mib']:.2f}x | "
            f"{q['bytes_per_round'] / p['bytes_per_round']:.1f}x | "
            + (f"{m[0]:.2f}x ({m[1]} pairs)" if m else "–")
            + " |"
        )
    lines += [
        "",
        f"The Paillier points run {ROUNDS} rounds (3 rounds would hide the cost: "
        "`fedrisk run` starts the banks' obfuscator precomputation before its heavy "
        "imports, and for 3 rounds it is done before round 1). Caveat on the "
        "federation-phase ratio: with plaintext aggregation the server scores the "
        "global model on the test rows after every round inside `federated_wall_s`; "
        "with Paillier it cannot (it never sees the model), so that scoring and the "
        "replayed decryptions happen after the federation phase. The process ratio "
        "counts everything a user waits for. The matrix column comes from "
        "in-process runs whose key ceremony starts just before the federation, so "
        "the precomputation competes with training for the 2 cores.",
    ]
    if failures:
        lines += ["", "Failed points:", ""] + [f"- {f}" for f in failures]
    (out / "scaling.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    plot_scaling(banks, feats, out / "scaling.png", b_exp, f_exp)


def _two_five(v: float, _pos) -> str:
    """Label the 2x and 5x minor ticks of a log axis, leave the others blank."""
    lead = round(v / 10 ** math.floor(math.log10(v)), 6) if v > 0 else 0
    return f"{v:.3g}" if lead in (2.0, 5.0) else ""


def plot_scaling(
    banks: list[dict], feats: list[dict], path: Path, b_exp: float, f_exp: float
) -> None:
    plt = _plt()
    from matplotlib.ticker import FormatStrFormatter, FuncFormatter, NullLocator

    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    try:
        for col, (pts, key, name, exp) in enumerate(
            (
                (banks, "banks", "banks (bundled data, 23 features)", b_exp),
                (feats, "features", "features (synthetic data, 10 banks)", f_exp),
            )
        ):
            if not pts:
                continue
            x = np.array([r[key] for r in pts], float)
            t = np.array([r["per_round_s"] for r in pts])
            ax = axes[0][col]
            ax.loglog(x, t, "o-", label="measured")
            if len(x) >= 2:
                c = np.polyfit(np.log(x), np.log(t), 1)
                ax.loglog(
                    x,
                    np.exp(np.polyval(c, np.log(x))),
                    "--",
                    color="grey",
                    label=f"fit: ∝ {key}^{exp:.2f}",
                )
            ax.set_ylabel("seconds per round")
            ax.set_title(f"time per round vs {key}")
            ax.legend()
            ax = axes[1][col]
            ax.semilogx(x, [r["peak_rss_mib"] for r in pts], "s-", color="tab:purple")
            ax.set_ylabel("peak RSS of the run (MiB)")
            ax.set_xlabel(name)
            ax.set_title(f"peak memory vs {key}")
            axes[1][col].set_ylim(0, 1.15 * max(r["peak_rss_mib"] for r in pts))
            axes[0][col].yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
            narrow = t.max() / t.min() < 3  # within a decade: label every tick
            axes[0][col].yaxis.set_minor_formatter(
                FormatStrFormatter("%.3g") if narrow else FuncFormatter(_two_five)
            )
            for a in (axes[0][col], axes[1][col]):
                a.set_xticks(x, [str(int(v)) for v in x])
                a.xaxis.set_minor_locator(NullLocator())
                a.grid(alpha=0.3, which="both")
        fig.suptitle("fedrisk run, in-process engine, 3 rounds, plaintext FedAvg")
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------- main


def full_estimate(quick_rows: list[dict], cases_run: list[Case], n_seeds: int) -> str:
    """The full matrix's runtime: prior per-run costs x the speed measured here."""
    measured = sum(r["run_s"] for r in quick_rows if r.get("run_s"))
    prior = sum(c.prior_s() for c in cases_run)
    factor = measured / prior if prior else 1.0
    full = build_matrix(False, n_seeds)
    est = sum(c.prior_s() for c in full) * factor
    scale = sum(p.prior_s() for p in scaling_points(False)) * factor
    by_agg: dict[str, float] = {}
    for c in full:
        name = c.case if c.case != "horizontal" else f"{c.aggregation}"
        by_agg[name] = by_agg.get(name, 0.0) + c.prior_s() * factor
    parts = ", ".join(f"{k} {_fmt_s(v)}" for k, v in by_agg.items())
    return (
        f"Full matrix ({len(full)} runs, {n_seeds} seeds): estimated **{_fmt_s(est)}** "
        f"on this machine ({parts}), plus ~{_fmt_s(scale)} for the full scaling study. "
        f"Estimate = expected per-run seconds (`PRIOR_S` in compare.py, measured on this "
        f"machine; 100 banks: plain {PRIOR_S['plain'][100]:.0f} s, Paillier "
        f"{PRIOR_S['paillier'][100]:.0f} s, SecAgg+ {PRIOR_S['secagg'][100]:.0f} s per "
        f"run) × this session's speed factor ({factor:.2f} = measured / expected over "
        f"the {len(cases_run)} runs above)."
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="the subset (2 seeds, 5/20 banks, ε 1/8, 1 vertical epoch) plus a "
        "small scaling study; < 15 min on 2 cores",
    )
    p.add_argument(
        "--scaling",
        action="store_true",
        help="run only the scaling study (with --quick: 10/100/300 banks)",
    )
    p.add_argument("--no-scaling", action="store_true", help="with --quick: skip the scaling study")
    p.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="seeds per cell: seed, seed+1, ... (default 3; 2 with --quick)",
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = p.parse_args(argv)
    n_seeds = args.seeds or (2 if args.quick else 3)
    if not 1 <= n_seeds <= 20:
        p.error("--seeds must be between 1 and 20")
    args.out.mkdir(parents=True, exist_ok=True)
    from fedrisk.flower.engines import quiet_flower

    quiet_flower(False)
    from rich.console import Console

    console = Console()

    command = "python benchmarks/compare.py " + " ".join(
        a for a in (argv if argv is not None else sys.argv[1:])
    )
    started, load_start = time.perf_counter(), _load()
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")

    def header(title: str, elapsed: float) -> str:
        return (
            f"# {title}\n\nCommand: `{command.strip()}`, {when}; total runtime "
            f"**{_fmt_s(elapsed)}** ({elapsed:.0f} s).\n\nMachine: {machine_note()}; "
            f"load average (1/5/15 min) {load_start} at the start, {_load()} at the end "
            "(the machine is shared: other processes add to every wall time)."
        )

    matrix_rows: list[dict] = []
    if not args.scaling:
        cases = build_matrix(args.quick, n_seeds)
        console.print(
            f"[bold]{len(cases)} runs[/bold] "
            f"({'quick' if args.quick else 'full'} matrix, {n_seeds} seeds); "
            f"expected ~{_fmt_s(sum(c.prior_s() for c in cases))}"
        )
        matrix_rows, failures, matrix_s = run_matrix(cases, console)
        write_csv(args.out / "compare.csv", matrix_rows, CSV_FIELDS)
        groups = aggregate(matrix_rows)
        plot_gap_by_banks(groups, args.out / "gap_by_banks.png")
        plot_bytes(groups, args.out / "bytes_per_round.png")
        plot_auc_vs_epsilon(groups, args.out / "auc_vs_epsilon.png")

    scaling_s = 0.0
    if args.scaling or (args.quick and not args.no_scaling):
        rows, s_failures, scaling_s = run_scaling(args.quick)
        title = "Scaling: banks, model size, Paillier overhead"
        write_scaling(rows, s_failures, args.out, header(title, scaling_s), scaling_s)

    total = time.perf_counter() - started
    if not args.scaling:
        notes = [
            f"Matrix: {len(cases)} runs in {_fmt_s(matrix_s)}"
            + (f"; scaling study {_fmt_s(scaling_s)} (see scaling.md)" if scaling_s else "")
            + ".",
            "",
            f"Horizontal runs: `scenarios/quickstart.toml` with {ROUNDS} rounds, "
            f"in-process engine, min_rows {MIN_ROWS}, non-IID = Dirichlet label skew "
            f"α = {ALPHA:g}, DP = record-level DP-SGD (`privacy.dp=sample`, δ = 1e-5, "
            "clip 4). Vertical: `scenarios/vertical.toml` (Paillier 2048, DJN "
            'obfuscation, label-leakage attack off); "bank alone" is '
            "`summary.local_only.bank`, the bank's model on its own features.",
            "",
            "Gap = federated test AUC − centralised test AUC (same training rows, same "
            "optimiser and budget, same test rows). Wall time ratio = "
            "`cost.federated_wall_s` / `train_centralised` time on the same rows (timed "
            "here, min of 3; not `baselines_wall_s`, which also trains every bank's "
            "local model); Paillier key generation is outside `federated_wall_s`. "
            "Bytes per round = mean over rounds of both directions' protobuf bytes "
            "(`cost.bytes_per_round`). ε = the accountant's ε for the whole run.",
            "",
        ]
        if args.quick:
            notes += [full_estimate(matrix_rows, cases, 3), ""]
        if failures:
            notes += (
                [
                    "Failed attempts (a failed run is retried once; the csv holds "
                    "only successful runs):",
                    "",
                ]
                + [f"- {f}" for f in failures]
                + [""]
            )
        title = "Federated vs centralised: the comparison matrix" + (
            " (--quick)" if args.quick else ""
        )
        (args.out / "compare.md").write_text(
            header(title, total) + "\n\n" + "\n".join(notes) + "\n" + results_table(groups) + "\n",
            encoding="utf-8",
        )
        print(results_table(groups))
    console.print(
        f"[bold]total runtime {_fmt_s(total)}[/bold] ({total:.0f} s); results in {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
