"""PNG charts for run reports: AUC per round, reliability diagram, gains curve, a
SecureBoost run's gain-based importance by party and by feature, and a WOE scorecard's
weight of evidence per bin of one characteristic.

Each ``plot_*`` function draws one figure, saves it as a PNG (of ``FIGSIZE * DPI``
pixels unless its docstring says otherwise; creating the parent directory), closes it and
returns the path written. Figures are closed even when drawing or saving
fails, so long simulations do not leak memory.
"""

from __future__ import annotations

import math
import textwrap
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Figures are made with matplotlib.figure.Figure, not pyplot: saving needs no backend,
# so plotting works headless (no display, no Tk) without choosing one for the whole
# process; a notebook that runs fedrisk keeps its inline plots.
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, NullLocator, PercentFormatter

# chart labels are translated only when a font can draw them (English otherwise)
from fedrisk.evaluation.fonts import chart_gettext as _
from fedrisk.evaluation.fonts import chart_style
from fedrisk.i18n import N_  # noqa: E402

__all__ = [
    "plot_auc_per_round",
    "plot_calibration",
    "plot_gains",
    "plot_importance",
    "plot_privacy_sweep",
    "plot_woe",
    "draw_woe",
    "run_chart_title",
    "draw_run_chart",
    "RUN_CHARTS",
    "STEPS",
    "woe_figure_height",
    "woe_ticks",
    "WOE_WIDTH",
    "sweep_positions",
    "sweep_series",
    "SweepSeries",
    "FIGSIZE",
    "DPI",
    "new_figure",
]

#: Figure size in inches and resolution; the PNG is FIGSIZE * DPI pixels (840 x 540).
FIGSIZE = (7.0, 4.5)
DPI = 120

#: the x axis of an AUC chart: what one point is (translated when drawn)
STEPS = (N_("round"), N_("epoch"), N_("tree"))
#: what the charts of a run folder show, after "<scenario>: " in their titles: the AUC
#: chart per step, the reliability diagram, the gains curve
RUN_CHARTS = {
    "round": N_("federated test AUC per round"),
    "epoch": N_("joint test AUC per epoch"),
    "tree": N_("joint test AUC per tree"),
    "calibration": N_("calibration"),
    "gains": N_("gains by score decile"),
}


def run_chart_title(scenario: str, what: str) -> str:
    """A run folder chart's title, "<scenario>: <what>", ``what`` (one of RUN_CHARTS'
    values) in the chart's language."""
    return _("{scenario}: {what}").format(scenario=scenario, what=_(what))


def draw_run_chart(name: str, data: Mapping, path: Path) -> Path:
    """One of a run folder's charts (``auc_per_round.png``, ``calibration.png``,
    ``gains.png``) drawn as the run drew it, from ``data``: ``scenario`` and, for the AUC
    chart, ``step`` (one of STEPS), ``rounds``, ``auc``, ``centralised_auc``,
    ``reference_auc``, ``best_local_name``, ``best_local_auc``; for the others ``table``
    (calibration.json's table). A report draws them again in its own language."""
    scenario = str(data["scenario"])
    if name == "auc_per_round.png":
        return plot_auc_per_round(
            data["rounds"],
            data["auc"],
            path,
            centralised_auc=data.get("centralised_auc"),
            reference_auc=data.get("reference_auc"),
            best_local_auc=data.get("best_local_auc"),
            best_local_name=data.get("best_local_name"),
            title=run_chart_title(scenario, RUN_CHARTS[data["step"]]),
            x_label=data["step"],
        )
    if name == "calibration.png":
        return plot_calibration(
            data["table"], path, title=run_chart_title(scenario, RUN_CHARTS["calibration"])
        )
    if name == "gains.png":
        return plot_gains(data["table"], path, title=run_chart_title(scenario, RUN_CHARTS["gains"]))
    raise ValueError(f"{name}: not a chart of a run folder")


def new_figure(*grid, figsize=FIGSIZE, **subplots):
    """A figure of ``figsize`` inches and its axes (``Figure.subplots(*grid, ...)``),
    outside pyplot: nothing global is registered or left open."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*grid, **subplots)


def _render(path: Path, draw, *args, **kwargs) -> Path:
    """Create a figure, let ``draw(ax, ...)`` fill it, save it as PNG, close it.

    The ``finally`` matters: pyplot keeps every open figure alive, so one that
    fails half-way would otherwise leak for the life of the process.
    """
    path = Path(path)
    # the fonts are looked up while saving: the whole figure's life inside the style
    with chart_style():
        fig, ax = new_figure(figsize=FIGSIZE)
        try:
            draw(ax, *args, **kwargs)
            path.parent.mkdir(parents=True, exist_ok=True)
            # tight_layout rather than bbox_inches="tight": keeps the pixel size fixed.
            fig.tight_layout()
            fig.savefig(path, dpi=DPI, format="png")
        finally:
            fig.clear()  # frees the artists at once, as pyplot's close did
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
        label=_("federated"),
    )
    if centralised_auc is not None:
        ax.axhline(
            centralised_auc,
            linestyle="--",
            color="tab:green",
            label=_("centralised ({auc:.3f})").format(auc=centralised_auc),
        )
    if reference_auc is not None:
        ax.axhline(
            reference_auc,
            linestyle=":",
            color="black",
            label=_("reference, converged ({auc:.3f})").format(auc=reference_auc),
        )
    if best_local_auc is not None:
        who = (
            _("{party} alone").format(party=best_local_name)
            if best_local_name
            else _("best single party")
        )
        ax.axhline(
            best_local_auc, linestyle="--", color="tab:red", label=f"{who} ({best_local_auc:.3f})"
        )
    if single:
        # autoscaling one point gives 0.945-1.050 and ticks at fractions of a round
        ax.set_xlim(rounds[0] - 1, rounds[0] + 1)
        ax.set_xticks([rounds[0]])
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # rounds are whole numbers
    ax.set_xlabel(_(x_label))
    ax.set_ylabel(_("test AUC (pooled)"))
    ax.set_title(title or _("Federated test AUC per round"))
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
    ``"epoch"`` for a vertical run (one of STEPS, given in English: it is translated
    with the other labels).
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
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label=_("perfect calibration"))
    ax.plot(
        [row["mean_predicted"] for row in table],
        [row["observed_rate"] for row in table],
        marker="o",
        color="tab:blue",
        label=_("model"),
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel(_("mean predicted default probability"))
    ax.set_ylabel(_("observed default rate"))
    ax.set_title(title or _("Reliability diagram"))
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
    ax.plot([0, 100], [0, 100], linestyle="--", color="grey", label=_("random"))
    ax.plot(x, y, marker="o", color="tab:blue", label=_("model"))
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.xaxis.set_major_formatter(PercentFormatter())
    ax.yaxis.set_major_formatter(PercentFormatter())
    ax.set_xlabel(_("population, riskiest first"))
    ax.set_ylabel(_("defaults captured (cumulative)"))
    ax.set_title(title or _("Cumulative gains"))
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
    ax_party.set_title(_("by party"))
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
        ax_feature.text(0.5, 0.5, _("no splits"), ha="center", va="center")
    ax_feature.set_title(_("top {n} features (party:column)").format(n=len(features)))
    widest = (max(shares.values()), max((v for _, v in features), default=0.0))
    for ax, right in zip((ax_party, ax_feature), widest):
        ax.invert_yaxis()  # the first party, and the largest feature, on top
        ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
        ax.set_xlim(0, max(right * 1.25, 0.05))  # room for the labels
        ax.set_xlabel(_("share of the total split gain"))
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
    with chart_style():
        fig, (ax_party, ax_feature) = new_figure(
            1, 2, figsize=(11.0, 4.5), gridspec_kw={"width_ratios": [2, 3]}
        )
        try:
            draw_importance(ax_party, ax_feature, by_party, by_feature, top)
            fig.suptitle(title or _("Gain-based importance"))
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.tight_layout()
            fig.savefig(path, dpi=DPI, format="png")
        finally:
            fig.clear()  # frees the artists at once, as pyplot's close did
    return path


# --------------------------------------------------------------------------- WOE

#: bar colours of a WOE chart: lower risk than average (WOE > 0), higher risk, missing bin
WOE_LOWER_RISK = "#2e7d32"
WOE_HIGHER_RISK = "#c62828"
WOE_MISSING = "#bdbdbd"
#: a WOE chart's bin labels wrap at this many characters
WOE_LABEL_WIDTH = 28
#: a WOE chart's layout, in inches: its width (narrower than FIGSIZE: a report shows two
#: side by side); each bin's row is at least WOE_ROW high, or
#: WOE_LINE per line of its axis label; the margins above (titles) and below (axis
#: labels, legend) the panels; the gap between them
WOE_WIDTH = 6.0
WOE_ROW, WOE_LINE = 0.46, 0.16
WOE_TOP, WOE_BOTTOM, WOE_GAP = 0.72, 0.85, 0.2
WOE_FONT = 8  # points, of the bin labels, values and ticks


def woe_ticks(bins: Sequence[Mapping], missing_bin: int | None = -1) -> list[str]:
    """A WOE chart's axis label of each bin: its label (wrapped; the missing bin's said to
    be so) and its customers."""
    rows = _woe_bins(bins)
    missing = _missing_index(missing_bin, len(rows))
    ticks = []
    for i, (text, customers, _bad, _woe) in enumerate(rows):
        extra = _(" (missing values)") if i == missing and "missing" not in text else ""
        wrapped = textwrap.fill(f"{text}{extra}", WOE_LABEL_WIDTH, break_long_words=False)
        ticks.append(wrapped + "\n" + _("{n} customers").format(n=f"{customers:,}"))
    return ticks


def woe_figure_height(ticks: Sequence[str]) -> float:
    """The height (inches) of a WOE chart whose bins have the axis labels ``ticks``; its
    width is WOE_WIDTH."""
    rows = sum(max(WOE_ROW, WOE_LINE * (t.count("\n") + 1)) for t in ticks)
    return max(FIGSIZE[1] * 0.6, WOE_TOP + WOE_BOTTOM + rows)


def _woe_layout(fig, ticks: Sequence[str]) -> None:
    """Margins from the labels' length, without tight_layout (which draws the figure once
    more: a report draws a chart per characteristic)."""
    width, height = fig.get_size_inches()
    longest = max(_columns(line) for t in ticks for line in t.split("\n"))
    # DejaVu Sans averages about 0.6 em a character; plus the ticks and a little air
    left = min(0.6 * longest * WOE_FONT / 72 + 0.25, width * 0.45)
    fig.subplots_adjust(
        left=left / width,
        right=1 - 0.12 / width,
        top=1 - WOE_TOP / height,
        bottom=WOE_BOTTOM / height,
        wspace=WOE_GAP / ((width - left - 0.12 - WOE_GAP) / 2),
    )


def _columns(text: str) -> int:
    """How many character widths ``text`` takes: a Chinese character is about twice as
    wide as a Latin one."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _woe_bins(bins: Sequence[Mapping]) -> list[tuple[str, int, int, float]]:
    if not bins:
        raise ValueError("no bins to plot")
    _check_table([dict(b) for b in bins], ("label", "customers", "defaulters", "woe"), "WOE")
    rows = []
    for b in bins:
        n, bad, woe = int(b["customers"]), int(b["defaulters"]), float(b["woe"])
        if n < 0 or bad < 0 or bad > n:
            raise ValueError(f"bin {b['label']!r}: {bad} defaulters among {n} customers")
        if not math.isfinite(woe):
            raise ValueError(f"bin {b['label']!r}: WOE must be finite, got {woe}")
        rows.append((str(b["label"]), n, bad, woe))
    return rows


def _missing_index(missing_bin: int | None, n: int) -> int | None:
    if missing_bin is None:
        return None
    if not -n <= missing_bin < n:
        raise ValueError(f"missing_bin {missing_bin} is not a bin of {n}")
    return missing_bin % n


def draw_woe(
    ax_woe,
    ax_rate,
    bins: Sequence[Mapping],
    *,
    missing_bin: int | None = -1,
    overall_rate: float | None = None,
):
    """Left: the weight of evidence per bin as horizontal bars (first bin on top), each
    bin's label and customers on the axis (:func:`woe_ticks`); right, on the same rows:
    the bin's default rate as a dot, beside ``overall_rate`` (dotted). ``missing_bin``
    (an index into ``bins``, the last one by default; None: none) is drawn grey and
    hatched. A bin without customers has no default rate and says so. The legend sits
    at the foot of the figure, under the bars."""
    rows = _woe_bins(bins)
    n = len(rows)
    ticks = woe_ticks(bins, missing_bin)
    missing_bin = _missing_index(missing_bin, n)
    y = list(range(n))
    colours = [
        WOE_MISSING if i == missing_bin else WOE_LOWER_RISK if woe >= 0 else WOE_HIGHER_RISK
        for i, (*_, woe) in enumerate(rows)
    ]
    bars = ax_woe.barh(y, [w for *_, w in rows], color=colours, height=0.62, zorder=2)
    if missing_bin is not None:
        bars[missing_bin].set_hatch("//")
        bars[missing_bin].set_edgecolor("#616161")
    ax_woe.bar_label(
        bars,
        labels=[
            f"{w:+.2f}".replace("-", "\u2212") if c else _("no customers") for _n, c, _b, w in rows
        ],
        padding=3,
        fontsize=WOE_FONT,
    )
    ax_woe.axvline(0, color="#1d2330", linewidth=0.8, zorder=3)
    ax_woe.set_yticks(y)
    # labels are data (a category may hold "$"): never mathtext
    ax_woe.set_yticklabels(ticks, fontsize=WOE_FONT, parse_math=False)
    widest = max(abs(w) for *_, w in rows)
    room = max(widest * 1.5, 0.3)  # space for the value labels either side
    ax_woe.set_xlim(-room, room)
    ax_woe.xaxis.set_major_locator(MaxNLocator(nbins=6, symmetric=True))
    ax_woe.set_xlabel(_("WOE (> 0: lower risk than average)"), fontsize=9)
    ax_woe.set_title(_("weight of evidence"), fontsize=10)
    ax_woe.grid(True, axis="x", alpha=0.3, zorder=0)
    handles = [
        Patch(color=WOE_LOWER_RISK, label=_("lower risk")),
        Patch(color=WOE_HIGHER_RISK, label=_("higher risk")),
    ]
    if missing_bin is not None:
        handles.append(
            Patch(facecolor=WOE_MISSING, edgecolor="#616161", hatch="//", label=_("missing values"))
        )
    box = ax_woe.get_position()
    ax_woe.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=((box.x0 + box.x1) / 2, 0.0),
        bbox_transform=ax_woe.figure.transFigure,
        ncol=len(handles),
        fontsize=WOE_FONT,
        frameon=False,
    )

    rates = [(b / c if c else None) for _, c, b, _ in rows]
    at = [i for i, r in enumerate(rates) if r is not None]
    seen = [rates[i] for i in at]
    top = max(seen + ([overall_rate] if overall_rate is not None else []) + [0.05])
    ax_rate.hlines(at, 0, seen, color="#9aa3b5", linewidth=1.2, zorder=2)
    ax_rate.plot(seen, at, "o", color="#1d2330", markersize=6, zorder=3)
    for i, r in enumerate(rates):
        ax_rate.annotate(
            f"{100 * r:.1f} %" if r is not None else "\u2013",
            (r or 0.0, i),
            xytext=(5, 0),
            textcoords="offset points",
            va="center",
            fontsize=WOE_FONT,
        )
    if overall_rate is not None:
        ax_rate.axvline(overall_rate, color="#1d2330", linestyle=":", linewidth=1)
        ax_rate.set_xlabel(
            _("dotted: overall {rate:.1f} %").format(rate=100 * overall_rate), fontsize=WOE_FONT
        )
    ax_rate.set_xlim(0, min(1.0, top * 1.45))
    ax_rate.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    ax_rate.xaxis.set_major_locator(MaxNLocator(nbins=3))
    ax_rate.set_title(_("default rate"), fontsize=10)
    ax_rate.grid(True, axis="x", alpha=0.3, zorder=0)
    for ax in (ax_woe, ax_rate):
        ax.set_ylim(n - 0.5, -0.5)  # the first bin on top
        ax.tick_params(axis="x", labelsize=WOE_FONT)


def plot_woe(
    bins: Sequence[Mapping],
    path: Path,
    *,
    title: str = "",
    missing_bin: int | None = -1,
    overall_rate: float | None = None,
) -> Path:
    """One characteristic of a WOE scorecard (:func:`draw_woe`): the weight of evidence
    per bin as bars, with its label and customers on the axis, and beside it the bin's
    default rate. ``bins``: one mapping per bin with ``label``, ``customers``,
    ``defaulters`` and ``woe`` (scorecard.json's bins), in card order, the missing bin
    last. The PNG is ``WOE_WIDTH * DPI`` pixels wide and ``woe_figure_height(woe_ticks(
    bins, missing_bin)) * DPI`` high (taller for more bins or longer labels).
    """
    path = Path(path)
    with chart_style():
        ticks = woe_ticks(bins, missing_bin)  # checked before a figure is opened
        fig, (ax_woe, ax_rate) = new_figure(
            1,
            2,
            figsize=(WOE_WIDTH, woe_figure_height(ticks)),
            sharey=True,
            gridspec_kw={"width_ratios": [3, 1.3]},
        )
        try:
            _woe_layout(fig, ticks)
            draw_woe(ax_woe, ax_rate, bins, missing_bin=missing_bin, overall_rate=overall_rate)
            fig.suptitle(title or _("Weight of evidence per bin"), fontsize=11, parse_math=False)
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=DPI, format="png")
        finally:
            fig.clear()  # frees the artists at once, as pyplot's close did
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
    ticks = [(p, _("∞\n(no noise)") if not math.isfinite(v) else f"{v:g}") for v, p in pos.items()]
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
    with chart_style():
        _draw_sweep(
            series, pos, ticks, log, seeds, path, x_label, centralised_auc, title, reference_auc
        )
    return series


def _draw_sweep(
    series, pos, ticks, log, seeds, path, x_label, centralised_auc, title, reference_auc
) -> None:
    over_seeds = _(", mean over seeds") if seeds > 1 else ""
    fig, (ax1, ax2) = new_figure(1, 2, figsize=(11.0, 4.5))
    try:
        drawn = (
            (ax1, "auc", _("federated test AUC"), "o-", "tab:blue"),
            (ax2, "membership_auc", _("membership-attack AUC"), "o-", "tab:blue"),
            (ax2, "membership_auc_bound", _("upper bound from (ε, δ)"), "s--", "tab:red"),
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
                label=_("{label}: mean of {n} seeds, band min–max").format(
                    label=label, n=max(line.n)
                )
                if many
                else label,
            )
            if many:
                ax.fill_between(xs, line.low, line.high, color=colour, alpha=0.15, linewidth=0)
        if centralised_auc is not None:
            ax1.axhline(
                centralised_auc,
                ls="--",
                color="tab:green",
                label=_("centralised, no DP ({auc:.3f}{over_seeds})").format(
                    auc=centralised_auc, over_seeds=over_seeds
                ),
            )
        if reference_auc is not None:
            ax1.axhline(
                reference_auc,
                ls=":",
                color="black",
                label=_("reference, converged ({auc:.3f}{over_seeds})").format(
                    auc=reference_auc, over_seeds=over_seeds
                ),
            )
        ax1.set_ylabel(_("AUC on held-out customers"))
        ax2.axhline(0.5, ls=":", color="grey", label=_("chance (0.5)"))
        ax2.set_ylabel(_("attack AUC (members vs held-out)"))
        for ax in (ax1, ax2):
            if log:
                ax.set_xscale("log")
            ax.set_xlabel(x_label)
            ax.grid(True, alpha=0.3)
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xticks([p for p, _ in ticks])
            ax.set_xticklabels([t for _, t in ticks])
            ax.legend(loc="best", fontsize=8)
        per_point = _("{n} seeds per point") if seeds > 1 else _("{n} seed per point")
        fig.suptitle(title or per_point.format(n=seeds))
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI)
    finally:
        fig.clear()  # frees the artists at once, as pyplot's close did
