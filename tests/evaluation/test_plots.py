"""Tests for fedrisk.evaluation.plots: real PNGs of the right size, no leaked figures."""

from __future__ import annotations

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest

from fedrisk.evaluation import (
    calibration_table,
    gains_table,
    plot_auc_per_round,
    plot_calibration,
    plot_gains,
)
from fedrisk.evaluation.plots import (
    DPI,
    FIGSIZE,
    draw_auc,
    plot_privacy_sweep,
    sweep_positions,
    sweep_series,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HEIGHT, WIDTH = round(FIGSIZE[1] * DPI), round(FIGSIZE[0] * DPI)


@pytest.fixture(autouse=True)
def _no_open_figures():
    plt.close("all")  # start clean whatever ran before
    yield
    assert plt.get_fignums() == [], "a plotting function left a figure open"


@pytest.fixture(scope="module")
def sample():
    rng = np.random.default_rng(0)
    p = rng.beta(1.5, 4.0, size=2000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    return y, p


def assert_png(path, written):
    assert written == path
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    image = mpimg.imread(path)
    assert image.shape[:2] == (HEIGHT, WIDTH)
    assert image.std() > 0  # something was drawn, not a blank canvas


def test_plot_auc_per_round(tmp_path):
    path = tmp_path / "auc.png"
    written = plot_auc_per_round(
        [1, 2, 3, 4, 5],
        [0.70, 0.74, 0.76, 0.77, 0.775],
        path,
        centralised_auc=0.78,
        best_local_auc=0.73,
        best_local_name="bank_3",
        title="quickstart",
    )
    assert_png(path, written)


def test_plot_auc_per_round_without_references_makes_parent_dir(tmp_path):
    path = tmp_path / "nested" / "dir" / "auc.png"
    written = plot_auc_per_round([1], [0.7], str(path), centralised_auc=None, best_local_auc=None)
    assert_png(path, written)


def test_auc_legend_labels():
    fig, ax = plt.subplots()
    try:
        draw_auc(
            ax,
            [1, 2],
            [0.7, 0.75],
            centralised_auc=0.78,
            best_local_auc=0.73,
            best_local_name="bank_3",
            title="",
        )
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    finally:
        plt.close(fig)
    assert labels == ["federated", "centralised (0.780)", "bank_3 alone (0.730)"]
    assert len(dashed) == 2


def test_auc_chart_draws_the_converged_reference():
    fig, ax = plt.subplots()
    try:
        draw_auc(
            ax,
            [1, 2],
            [0.7, 0.75],
            centralised_auc=0.78,
            reference_auc=0.79,
            best_local_auc=None,
            best_local_name=None,
            title="",
        )
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        dotted = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
    finally:
        plt.close(fig)
    assert labels == ["federated", "centralised (0.780)", "reference, converged (0.790)"]
    assert [line.get_ydata()[0] for line in dotted] == [0.79]


def test_plot_auc_length_mismatch_raises_and_closes(tmp_path):
    path = tmp_path / "auc.png"
    with pytest.raises(ValueError, match="length"):
        plot_auc_per_round([1, 2], [0.7], path, centralised_auc=None, best_local_auc=None)
    assert not path.exists()
    # the autouse fixture checks the half-built figure was closed


def test_plot_calibration(tmp_path, sample):
    path = tmp_path / "calibration.png"
    assert_png(path, plot_calibration(calibration_table(*sample), path, title="reliability"))


def test_plot_gains(tmp_path, sample):
    path = tmp_path / "gains.png"
    assert_png(path, plot_gains(gains_table(*sample), path, title="gains"))


@pytest.mark.parametrize("fn", [plot_calibration, plot_gains])
def test_table_plots_reject_empty_or_wrong_table(tmp_path, fn):
    with pytest.raises(ValueError, match="empty"):
        fn([], tmp_path / "x.png")
    with pytest.raises(ValueError, match="lack keys"):
        fn([{"bin": 1}], tmp_path / "x.png")


# --------------------------------------------------------------------------- privacy sweep


def sweep_rows():
    """Three seeds at target ε = 1 (each run accounts a slightly different ε) and two at ∞."""
    run = [  # (target, accounted ε, test AUC, attack AUC, bound)
        (1, 0.99999, 0.690, 0.501, 0.731),
        (1, 0.99996, 0.700, 0.503, 0.731),
        (1, 0.99998, 0.695, 0.502, 0.731),
        (float("inf"), float("inf"), 0.705, 0.504, None),
        (float("inf"), float("inf"), 0.707, 0.506, None),
    ]
    return [
        {
            "privacy.target_epsilon": t,
            "epsilon": e,
            "auc": a,
            "membership_auc": m,
            "membership_auc_bound": b,
        }
        for t, e, a, m, b in run
    ]


def test_sweep_series_one_point_per_target_not_per_accounted_epsilon():
    s = sweep_series(sweep_rows(), "privacy.target_epsilon")
    auc, attack, bound = s["auc"], s["membership_auc"], s["membership_auc_bound"]
    assert auc.x == (1, float("inf")) and attack.x == auc.x
    assert auc.n == (3, 2)
    assert auc.mean == pytest.approx((0.695, 0.706))
    assert auc.low == pytest.approx((0.690, 0.705)) and auc.high == pytest.approx((0.700, 0.707))
    assert attack.mean == pytest.approx((0.502, 0.505))
    assert attack.low == pytest.approx((0.501, 0.504))
    assert attack.high == pytest.approx((0.503, 0.506))
    # no bound at ε = ∞: the bound has its one finite point only
    assert bound.x == (1,) and bound.mean == pytest.approx((0.731,)) and bound.n == (3,)
    # grouped by the accounted ε instead, the finite seeds would make three points
    assert len(sweep_series(sweep_rows(), "epsilon")["auc"].x) == 4


def test_sweep_series_orders_numbers_with_infinity_last():
    rows = [
        {"t": v, "auc": float(i), "membership_auc": 0.5}
        for i, v in enumerate([float("inf"), 8, 0.5, 2])
    ]
    s = sweep_series(rows, "t", ("auc",))
    assert s["auc"].x == (0.5, 2, 8, float("inf"))
    assert s["auc"].mean == (2.0, 3.0, 1.0, 0.0)


def test_plot_privacy_sweep_draws_one_marker_per_target_at_the_target(tmp_path):
    path = tmp_path / "sweep.png"
    series = plot_privacy_sweep(
        sweep_rows(),
        path,
        x_key="privacy.target_epsilon",
        x_label="target ε",
        centralised_auc=0.71,
        reference_auc=0.72,
    )
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert series["auc"].x == (1, float("inf"))


def test_sweep_chart_positions_infinity_past_the_largest_target():
    pos, ticks, log = sweep_positions([0.5, 1, 8, float("inf")])
    assert log and pos[0.5] == 0.5 and pos[8] == 8 and pos[float("inf")] == 80
    assert [t for _, t in ticks] == ["0.5", "1", "8", "∞\n(no noise)"]
    pos, ticks, log = sweep_positions(["iid", "dirichlet"])
    assert not log and pos == {"iid": 0.0, "dirichlet": 1.0}


@pytest.mark.parametrize("x_label", ["round", "epoch"])
def test_auc_chart_of_one_point_has_one_integer_tick_and_a_visible_point(x_label):
    """A one-epoch vertical run: no 0.945-1.050 axis, the label matches the title."""
    fig, ax = plt.subplots()
    try:
        draw_auc(
            ax,
            [1],
            [0.71],
            centralised_auc=0.70,
            best_local_auc=0.64,
            best_local_name="bank",
            title=f"joint test AUC per {x_label}",
            x_label=x_label,
        )
        fig.canvas.draw()
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        low, high = ax.get_xlim()
        label = ax.get_xlabel()
        point = ax.get_lines()[0]
    finally:
        plt.close(fig)
    assert ticks == [1]
    assert low <= 0.5 and high >= 1.5  # the point sits well inside the frame
    assert label == x_label
    assert point.get_markersize() >= 6


def test_auc_chart_ticks_are_whole_rounds():
    fig, ax = plt.subplots()
    try:
        draw_auc(
            ax,
            [1, 2, 3],
            [0.6, 0.65, 0.7],
            centralised_auc=None,
            best_local_auc=None,
            best_local_name=None,
            title="",
        )
        fig.canvas.draw()
        ticks = ax.get_xticks()
    finally:
        plt.close(fig)
    assert all(float(t).is_integer() for t in ticks)
    assert ax.get_xlabel() == "round"


def test_drawing_leaves_the_process_backend_alone(tmp_path):
    """A notebook's inline backend survives fedrisk drawing its charts (it used to pick
    Agg for the whole process when plots loaded, silencing plt.show() in notebooks)."""
    import os
    import subprocess
    import sys

    code = (
        "import matplotlib, numpy as np\n"
        "from fedrisk.evaluation import calibration_table, plot_calibration\n"
        "y = np.array([0, 1] * 50); p = np.linspace(0.01, 0.99, 100)\n"
        f"plot_calibration(calibration_table(y, p), {str(tmp_path / 'c.png')!r})\n"
        "print(matplotlib.get_backend())\n"
    )
    env = {**os.environ, "MPLBACKEND": "svg"}  # a backend that is not Agg, headless
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "svg"
    assert (tmp_path / "c.png").read_bytes()[:8] == PNG_SIGNATURE
