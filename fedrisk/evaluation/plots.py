"""PNG charts for run reports: AUC per round, reliability diagram, gains curve, and a
SecureBoost run's gain-based importance by party and by feature.

Each ``plot_*`` function draws one figure, saves it as a PNG of
``FIGSIZE * DPI`` pixels (creating the parent directory), closes it and
returns the path written. Figures are closed even when drawing or saving
fails, so long simulations do not leak memory.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

# Select the non-interactive backend before pyplot is imported so plotting works
# on headless machines and CI (no display, no Tk).
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator, NullLocator, PercentFormatter  # noqa: E402

__all__ = [
    "plot_auc_per_round",
    "plot_calibration",
    "plot_gains",
    "plot_importance",
    "plot_privacy_sweep",
    "sweep_positions",
    "sweep_series",
    "SweepSeries",
    "FIGSIZE",
    "DPI",
]

#: Figure size in inches and resolution; the PNG is FIGSIZE * DPI pixels (840 x 540).
FIGSIZE = (7.0, 4.5)
DPI = 120


def _render(path: Path, draw, *args, **kwargs) -> Path:
    """Create a figure, let ``draw(ax, ...)`` fill it, save it as PNG, close it.

    The ``finally`` matters: pyplot keeps every open figure alive, so one that
    fails half-way would otherwise leak for the life of the process.
    """
    path = Path(path)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    try:
        draw(ax, *args, **kwargs)
        path.parent.mkdir(parents=True, exist_ok=True)
        # tight_layout rather than bbox_inches="tight": keeps the pixel size fixed.
        fig.tight_layout()
        fig.savefig(path, dpi=DPI, format="png")
    finally:
        plt.close(fig)
    return path


def _check_table(table: list[dict], keys: tuple[str, ...], what: str) -> None:
    if not table:
        raise ValueError(f"{what} table is empty")
    missing = sorted({k for row in table for k in keys if k not in row})
    if missing:
        raise ValueError(f"{what} table rows lack keys: {', '.join(missing)}")


# --------------------------------------------------------------------------- AUC per round


def draw_auc(
    ax,
    rounds,
    auc,
    *,
    centralised_auc,
    best_local_auc,
    best_local_name,
    title,
    reference_auc=None,
    x_label="round",
):
    rounds, auc = list(rounds), list(auc)
    if len(rounds) != len(auc):
        raise ValueError(f"rounds and auc differ in length: {len(rounds)} vs {len(auc)}")
    if not rounds:
        raise ValueError("no rounds to plot")
    single = len(set(rounds)) == 1
    # one point (a one-epoch vertical run): a larger marker, or it vanishes in the frame
    ax.plot(
        rounds,
        auc,
        marker="o",
        markersize=8 if single else 4,
        color="tab:blue",
        label="federated",
    )
    if centralised_auc is not None:
        ax.axhline(
            centralised_auc,
            linestyle="--",
            color="tab:green",
            label=f"centralised ({centralised_auc:.3f})",
        )
    if reference_auc is not None:
        ax.axhline(
            reference_auc,
            linestyle=":",
            color="black",
            label=f"reference, converged ({reference_auc:.3f})",
        )
    if best_local_auc is not None:
        who = f"{best_local_name} alone" if best_local_name else "best single party"
        ax.axhline(
            best_local_auc, linestyle="--", color="tab:red", label=f"{who} ({best_local_auc:.3f})"
        )
    if single:
        # autoscaling one point gives 0.945-1.050 and ticks at fractions of a round
        ax.set_xlim(rounds[0] - 1, rounds[0] + 1)
        ax.set_xticks([rounds[0]])
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # rounds are whole numbers
    ax.set_xlabel(x_label)
    ax.set_ylabel("test AUC (pooled)")
    ax.set_title(title or "Federated test AUC per round")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")


def plot_auc_per_round(
    rounds: Sequence[int],
    auc: Sequence[float],
    path: Path,
    *,
    centralised_auc: float | None,
    best_local_auc: float | None,
    best_local_name: str | None = None,
    title: str = "",
    reference_auc: float | None = None,
    x_label: str = "round",
) -> Path:
    """Line of federated test AUC per round, with dashed reference lines.

    ``centralised_auc`` (all data pooled in one place, same budget), ``reference_auc``
    (a converged model on the pooled rows, dotted) and ``best_local_auc`` (the best
    party training alone, labelled ``"<best_local_name> alone"``) are drawn as
    horizontal lines unless ``None``. ``x_label`` names the step: ``"round"``, or
    ``"epoch"`` for a vertical run.
    """
    return _render(
        path,
        draw_auc,
        rounds,
        auc,
        centralised_auc=centralised_auc,
        best_local_auc=best_local_auc,
        best_local_name=best_local_name,
        title=title,
        reference_auc=reference_auc,
        x_label=x_label,
    )


# --------------------------------------------------------------------------- reliability


def _draw_calibration(ax, table: list[dict], title: str):
    _check_table(table, ("mean_predicted", "observed_rate"), "calibration")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    ax.plot(
        [row["mean_predicted"] for row in table],
        [row["observed_rate"] for row in table],
        marker="o",
        color="tab:blue",
        label="model",
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted default probability")
    ax.set_ylabel("observed default rate")
    ax.set_title(title or "Reliability diagram")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left")


def plot_calibration(table: list[dict], path: Path, title: str = "") -> Path:
    """Reliability diagram from :func:`~fedrisk.evaluation.metrics.calibration_table`
    rows: observed default rate against mean predicted probability per bin,
    with the diagonal as the perfectly calibrated reference."""
    return _render(path, _draw_calibration, table, title)


# --------------------------------------------------------------------------- gains


def _draw_gains(ax, table: list[dict], title: str):
    _check_table(table, ("n", "cum_defaults_pct"), "gains")
    # x is the cumulative population share, so unequal band sizes plot honestly.
    total = sum(row["n"] for row in table)
    x, y, running = [0.0], [0.0], 0
    for row in table:
        running += row["n"]
        x.append(100.0 * running / total)
        y.append(row["cum_defaults_pct"])
    ax.plot([0, 100], [0, 100], linestyle="--", color="grey", label="random")
    ax.plot(x, y, marker="o", color="tab:blue", label="model")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.xaxis.set_major_formatter(PercentFormatter())
    ax.yaxis.set_major_formatter(PercentFormatter())
    ax.set_xlabel("population, riskiest first")
    ax.set_ylabel("defaults captured (cumulative)")
    ax.set_title(title or "Cumulative gains")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")


def plot_gains(table: list[dict], path: Path, title: str = "") -> Path:
    """Cumulative capture curve from :func:`~fedrisk.evaluation.metrics.gains_table`
    rows, against the random-selection diagonal."""
    return _render(path, _draw_gains, table, title)


# --------------------------------------------------------------------------- importance

#: features drawn in the importance chart's right panel, largest share first
TOP_FEATURES = 10


def draw_importance(
    ax_party, ax_feature, by_party: Mapping[str, float], by_feature: Mapping[str, float], top: int
):
    """Left: each party's share of the total split gain; right: the ``top`` features
    ("party:column") by share, coloured as their party."""
    if not by_party:
        raise ValueError("no parties to plot")
    shares = {str(k): float(v) for k, v in by_party.items()}
    bad = [k for k, v in shares.items() if not math.isfinite(v) or v < 0]
    if bad:
        raise ValueError(f"gain shares must be finite and non-negative: {', '.join(bad)}")
    colour = {name: f"C{i % 10}" for i, name in enumerate(shares)}
    names = list(shares)
    bars = ax_party.barh(names, [shares[n] for n in names], color=[colour[n] for n in names])
    ax_party.bar_label(bars, labels=[f"{100 * shares[n]:.1f} %" for n in names], padding=3)
    ax_party.set_title("by party")
    features = sorted(((str(k), float(v)) for k, v in by_feature.items()), key=lambda kv: -kv[1])
    features = features[:top]
    if features:
        keys = [k for k, _ in features]
        bars = ax_feature.barh(
            keys,
            [v for _, v in features],
            color=[colour.get(k.partition(":")[0], "grey") for k in keys],
        )
        ax_feature.bar_label(bars, labels=[f"{100 * v:.1f} %" for _, v in features], padding=3)
    else:
        ax_feature.text(0.5, 0.5, "no splits", ha="center", va="center")
    ax_feature.set_title(f"top {len(features)} features (party:column)")
    widest = (max(shares.values()), max((v for _, v in features), default=0.0))
    for ax, right in zip((ax_party, ax_feature), widest):
        ax.invert_yaxis()  # the first party, and the largest feature, on top
        ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
        ax.set_xlim(0, max(right * 1.25, 0.05))  # room for the labels
        ax.set_xlabel("share of the total split gain")
        ax.grid(True, axis="x", alpha=0.3)


def plot_importance(
    by_party: Mapping[str, float],
    by_feature: Mapping[str, float],
    path: Path,
    *,
    title: str = "",
    top: int = TOP_FEATURES,
) -> Path:
    """A SecureBoost run's gain-based importance: each party's share of the total split
    gain (left) and the ``top`` features "party:column" by share (right), each bar
    coloured as its party. Shares are fractions (0-1) of the gain over the kept trees.
    """
    path = Path(path)
    fig, (ax_party, ax_feature) = plt.subplots(
        1, 2, figsize=(11.0, 4.5), gridspec_kw={"width_ratios": [2, 3]}
    )
    try:
        draw_importance(ax_party, ax_feature, by_party, by_feature, top)
        fig.suptitle(title or "Gain-based importance")
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.tight_layout()
        fig.savefig(path, dpi=DPI, format="png")
    finally:
        plt.close(fig)
    return path


# --------------------------------------------------------------------------- privacy sweep

#: what a sweep chart draws per run, in panel order (the bound joins the attack panel)
SWEEP_METRICS = ("auc", "membership_auc", "membership_auc_bound")


@dataclass(frozen=True)
class SweepSeries:
    """One line of a sweep chart: one point per swept value, over that value's runs.

    ``x`` holds the swept values as given (``inf`` stays ``inf``), in order; ``mean`` is
    the mean over the value's runs (seeds), ``low``/``high`` the band (min and max of
    those runs) and ``n`` how many runs each point has. Runs whose metric is missing
    (the bound at ε = ∞) are left out, and a value with none left has no point.
    """

    metric: str
    x: tuple
    mean: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    n: tuple[int, ...]


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def sweep_series(
    rows: Sequence[dict], x_key: str, metrics: Sequence[str] = SWEEP_METRICS
) -> dict[str, SweepSeries]:
    """Group one row per run by its swept value ``row[x_key]`` (the target as given, not
    what a run accounted): one point per value, numbers in ascending order (``inf``
    last), anything else in order of first appearance. Pure: what the chart draws."""
    values: list = []
    for r in rows:
        if r[x_key] not in values:
            values.append(r[x_key])
    if all(_is_number(v) for v in values):
        values.sort(key=float)
    out = {}
    for metric in metrics:
        xs, mean, low, high, n = [], [], [], [], []
        for v in values:
            got = [float(r[metric]) for r in rows if r[x_key] == v and r.get(metric) is not None]
            if not got:
                continue
            xs.append(v)
            mean.append(sum(got) / len(got))
            low.append(min(got))
            high.append(max(got))
            n.append(len(got))
        out[metric] = SweepSeries(metric, tuple(xs), tuple(mean), tuple(low), tuple(high), tuple(n))
    return out


def sweep_positions(values: Sequence) -> tuple[dict, list[tuple[float, str]], bool]:
    """Where each swept value sits on the x axis, the ticks, and whether it is a log
    axis. Numbers stay where they are; ``inf`` (no noise) sits one decade past the
    largest finite value on a log axis (or a step past it on a linear one), ticked ∞;
    values that are not numbers are categories at 0, 1, 2, …"""
    if not all(_is_number(v) for v in values):
        pos = {v: float(i) for i, v in enumerate(values)}
        return pos, [(p, str(v)) for v, p in pos.items()], False
    finite = sorted(float(v) for v in values if math.isfinite(v))
    log = bool(finite) and finite[0] > 0
    if not finite:
        top = 1.0
    elif log:
        top = finite[-1] * 10
    else:
        top = finite[-1] + max(1.0, (finite[-1] - finite[0]) / 4)
    pos = {v: (float(v) if math.isfinite(v) else top) for v in values}
    ticks = [(p, "∞\n(no noise)" if not math.isfinite(v) else f"{v:g}") for v, p in pos.items()]
    return pos, ticks, log


def plot_privacy_sweep(
    points: Sequence[dict],
    path: Path,
    *,
    x_key: str,
    x_label: str,
    centralised_auc: float | None,
    title: str = "",
    reference_auc: float | None = None,
) -> dict[str, SweepSeries]:
    """Test AUC and membership-attack AUC (and the bound on any attack, where the runs
    have one) against the swept value, one point per value (:func:`sweep_series`).
    ``centralised_auc`` and ``reference_auc`` are drawn as given (with several seeds,
    the caller passes their mean over the runs).

    ``points``: one dict per run with ``x_key`` (the swept value as given), ``auc``,
    ``membership_auc`` and optionally ``membership_auc_bound``; several seeds per value
    are drawn as their mean with a min–max band. Returns the plotted series.
    """
    path = Path(path)
    series = sweep_series(points, x_key)
    values = list(series["auc"].x)
    pos, ticks, log = sweep_positions(values)
    seeds = max(series["auc"].n, default=1)
    over_seeds = ", mean over seeds" if seeds > 1 else ""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11.0, 4.5))
    try:
        drawn = (
            (ax1, "auc", "federated test AUC", "o-", "tab:blue"),
            (ax2, "membership_auc", "membership-attack AUC", "o-", "tab:blue"),
            (ax2, "membership_auc_bound", "upper bound from (ε, δ)", "s--", "tab:red"),
        )
        for ax, key, label, style, colour in drawn:
            line = series[key]
            if not line.x:
                continue
            xs = [pos[v] for v in line.x]
            many = max(line.n) > 1
            ax.plot(
                xs,
                line.mean,
                style,
                color=colour,
                alpha=1.0 if key != "membership_auc_bound" else 0.7,
                label=f"{label}: mean of {max(line.n)} seeds, band min–max" if many else label,
            )
            if many:
                ax.fill_between(xs, line.low, line.high, color=colour, alpha=0.15, linewidth=0)
        if centralised_auc is not None:
            ax1.axhline(
                centralised_auc,
                ls="--",
                color="tab:green",
                label=f"centralised, no DP ({centralised_auc:.3f}{over_seeds})",
            )
        if reference_auc is not None:
            ax1.axhline(
                reference_auc,
                ls=":",
                color="black",
                label=f"reference, converged ({reference_auc:.3f}{over_seeds})",
            )
        ax1.set_ylabel("AUC on held-out customers")
        ax2.axhline(0.5, ls=":", color="grey", label="chance (0.5)")
        ax2.set_ylabel("attack AUC (members vs held-out)")
        for ax in (ax1, ax2):
            if log:
                ax.set_xscale("log")
            ax.set_xlabel(x_label)
            ax.grid(True, alpha=0.3)
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xticks([p for p, _ in ticks])
            ax.set_xticklabels([t for _, t in ticks])
            ax.legend(loc="best", fontsize=8)
        fig.suptitle(title or f"{seeds} seed{'s' if seeds > 1 else ''} per point")
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI)
    finally:
        plt.close(fig)
    return series
