"""PNG charts for run reports: AUC per round, reliability diagram, gains curve.

Each ``plot_*`` function draws one figure, saves it as a PNG of
``FIGSIZE * DPI`` pixels (creating the parent directory), closes it and
returns the path written. Figures are closed even when drawing or saving
fails, so long simulations do not leak memory.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    "plot_privacy_sweep",
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


def _sweep_x(values: Sequence[float]) -> tuple[list[float], float | None]:
    """Finite x values stay; ∞ (no noise) is drawn one decade past the largest."""
    finite = [v for v in values if v is not None and v != float("inf")]
    top = max(finite) * 10 if finite else 1.0
    return [top if v == float("inf") else v for v in values], (
        top if len(finite) < len(values) else None
    )


def plot_privacy_sweep(
    points: Sequence[dict],
    path: Path,
    *,
    x_key: str,
    x_label: str,
    centralised_auc: float | None,
    title: str = "",
    reference_auc: float | None = None,
) -> Path:
    """Test AUC and membership-attack AUC against ε (or another swept value).

    ``points``: one dict per run with ``x_key``, ``auc``, ``membership_auc`` and
    optionally ``membership_auc_bound``; several seeds per x are drawn as mean with a
    min-max band.
    """
    path = Path(path)
    xs = sorted({p[x_key] for p in points}, key=lambda v: (v is None, v))
    plot_x, inf_at = _sweep_x(xs)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11.0, 4.5))
    try:
        for ax, key, label in (
            (ax1, "auc", "federated test AUC"),
            (ax2, "membership_auc", "membership-attack AUC"),
        ):
            groups = [[p[key] for p in points if p[x_key] == x] for x in xs]
            mean = [sum(g) / len(g) for g in groups]
            ax.plot(plot_x, mean, "o-", color="tab:blue", label=label)
            ax.fill_between(
                plot_x,
                [min(g) for g in groups],
                [max(g) for g in groups],
                color="tab:blue",
                alpha=0.15,
                linewidth=0,
            )
            ax.set_xscale("log")
            ax.set_xlabel(x_label)
            ax.grid(True, alpha=0.3)
        if centralised_auc is not None:
            ax1.axhline(
                centralised_auc,
                ls="--",
                color="tab:green",
                label=f"centralised, no DP ({centralised_auc:.3f})",
            )
        if reference_auc is not None:
            ax1.axhline(
                reference_auc,
                ls=":",
                color="black",
                label=f"reference, converged ({reference_auc:.3f})",
            )
        ax1.set_ylabel("AUC on held-out customers")
        ax2.axhline(0.5, ls=":", color="grey", label="chance (0.5)")
        bounds = [[p.get("membership_auc_bound") for p in points if p[x_key] == x] for x in xs]
        pairs = [(px, b[0]) for px, b in zip(plot_x, bounds) if b and b[0] is not None]
        if pairs:
            ax2.plot(
                *zip(*pairs), "s--", color="tab:red", alpha=0.7, label="upper bound from (ε, δ)"
            )
        ax2.set_ylabel("attack AUC (members vs held-out)")
        for ax in (ax1, ax2):
            finite = [t for t in plot_x if t != inf_at]
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xticks(finite + ([inf_at] if inf_at is not None else []))
            ax.set_xticklabels(
                [f"{t:.3g}" for t in finite] + (["∞\n(no noise)"] if inf_at is not None else [])
            )
            ax.legend(loc="best", fontsize=8)
        fig.suptitle(title)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI)
    finally:
        plt.close(fig)
    return path
