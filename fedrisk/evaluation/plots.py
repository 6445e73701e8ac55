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
from matplotlib.ticker import MaxNLocator, PercentFormatter  # noqa: E402

__all__ = ["plot_auc_per_round", "plot_calibration", "plot_gains", "FIGSIZE", "DPI"]

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


def _draw_auc(ax, rounds, auc, *, centralised_auc, best_local_auc, best_local_name, title):
    rounds, auc = list(rounds), list(auc)
    if len(rounds) != len(auc):
        raise ValueError(f"rounds and auc differ in length: {len(rounds)} vs {len(auc)}")
    if not rounds:
        raise ValueError("no rounds to plot")
    ax.plot(rounds, auc, marker="o", markersize=4, color="tab:blue", label="federated")
    if centralised_auc is not None:
        ax.axhline(
            centralised_auc, linestyle="--", color="tab:green",
            label=f"centralised ({centralised_auc:.3f})",
        )
    if best_local_auc is not None:
        who = f"{best_local_name} alone" if best_local_name else "best single party"
        ax.axhline(
            best_local_auc, linestyle="--", color="tab:red", label=f"{who} ({best_local_auc:.3f})"
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # rounds are whole numbers
    ax.set_xlabel("round")
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
) -> Path:
    """Line of federated test AUC per round, with dashed reference lines.

    ``centralised_auc`` (all data pooled in one place) and ``best_local_auc``
    (the best party training alone, labelled ``"<best_local_name> alone"``)
    are drawn as horizontal dashed lines unless ``None``.
    """
    return _render(
        path, _draw_auc, rounds, auc, centralised_auc=centralised_auc,
        best_local_auc=best_local_auc, best_local_name=best_local_name, title=title,
    )


# --------------------------------------------------------------------------- reliability


def _draw_calibration(ax, table: list[dict], title: str):
    _check_table(table, ("mean_predicted", "observed_rate"), "calibration")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    ax.plot(
        [row["mean_predicted"] for row in table],
        [row["observed_rate"] for row in table],
        marker="o", color="tab:blue", label="model",
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
