"""``fedrisk report`` on a WOE scorecard run folder: a Scorecard section after the model
comparison with the IV table (every characteristic, its IV and reading, stability index,
kept or why dropped, the selection rule), one WOE chart per kept characteristic and the
points table (equal to scorecard.csv) with the base points, the convention and the
integer-points check; no continuous points-per-unit scorecard. A vertical run shows the
data party's bins by number and says where their definitions stay.

The German-style scenarios (scenarios/scorecard-german.toml: three banks;
scenarios/vertical-scorecard-german.toml: bank + bureau) run once each for the module,
in-process with 1024-bit keys (a few seconds each)."""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import re
import shutil
import warnings
from html import unescape
from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import pytest

from fedrisk.evaluation.plots import DPI, WOE_WIDTH, draw_woe, plot_woe, woe_figure_height
from fedrisk.evaluation.report import IV_NOTE, WOE_CARD_FORMAT, iv_reading, render_report
from fedrisk.evaluation.woe_scorecard import WOE_FORMAT
from fedrisk.runs.run import run_scenario
from fedrisk.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
PNG = b"\x89PNG\r\n\x1a\n"
MINUS = "\u2212"


def build(tmp_path_factory, scenario: str) -> dict:
    out = tmp_path_factory.mktemp(scenario) / "run"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*1024-bit", category=UserWarning)
        run_scenario(load_scenario(SCENARIOS / f"{scenario}.toml"), out, show_progress=False)
    report = render_report(out)
    with open(out / "scorecard.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {
        "dir": out,
        "html": report.read_text(encoding="utf-8"),
        "summary": json.loads((out / "summary.json").read_text()),
        "card": json.loads((out / "scorecard.json").read_text()),
        "csv": rows,
    }


@pytest.fixture(scope="module")
def horizontal(tmp_path_factory) -> dict:
    return build(tmp_path_factory, "scorecard-german")


@pytest.fixture(scope="module")
def vertical(tmp_path_factory) -> dict:
    return build(tmp_path_factory, "vertical-scorecard-german")


@pytest.fixture(params=["horizontal", "vertical"])
def run(request) -> dict:
    return request.getfixturevalue(request.param)


def section(html: str, sid: str) -> str:
    return html.split(f'<section id="{sid}">', 1)[1].split("</section>", 1)[0]


def table(text: str, cls: str) -> str:
    return text.split(f'<table class="{cls}">', 1)[1].split("</table>", 1)[0]


def cells(tr: str) -> list[str]:
    found = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, flags=re.S)
    return [unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in found]


def rows(table_html: str) -> list[tuple[str, list[str]]]:
    """(the row's class, its cell texts) for every row of an HTML table."""
    return [
        (cls, cells(tr))
        for cls, tr in re.findall(r'<tr(?: class="([^"]*)")?>(.*?)</tr>', table_html, flags=re.S)
    ]


def number(text: str) -> float:
    return float(text.replace(MINUS, "-").replace(",", "").replace("+", ""))


def images(text: str) -> list[bytes]:
    return [
        base64.b64decode(b)
        for b in re.findall(r'<img\b[^>]*src="data:image/png;base64,([^"]+)"', text)
    ]


# --------------------------------------------------------------------------- fast


@pytest.mark.parametrize(
    ("iv", "reading"),
    [
        (0.0, "not useful"),
        (0.0199, "not useful"),
        (0.02, "weak"),
        (0.0999, "weak"),
        (0.1, "medium"),
        (0.2999, "medium"),
        (0.3, "strong"),
        (0.5, "strong"),
        (0.5001, "suspicious: too good, check for leakage"),
        (3.0, "suspicious: too good, check for leakage"),
        (math.nan, "not a valid IV"),
        (-0.1, "not a valid IV"),
        (None, "not a valid IV"),
    ],
)
def test_iv_reading_follows_siddiqis_bands(iv, reading):
    assert iv_reading(iv) == reading
    assert all(b in IV_NOTE for b in ("0.02", "0.1", "0.3", "0.5", "leaking"))


BINS = [
    {"label": "$5 to $10", "customers": 120, "defaulters": 20, "woe": 0.6},
    {"label": "[10, 20)", "customers": 300, "defaulters": 90, "woe": -0.1},
    {"label": ">= 20", "customers": 80, "defaulters": 40, "woe": -0.9},
    {"label": "missing", "customers": 0, "defaulters": 0, "woe": 0.0},
]


def test_plot_woe_writes_one_png_and_closes_it(tmp_path):
    plt.close("all")
    path = plot_woe(BINS, tmp_path / "sub" / "woe.png", title="x (bank)", overall_rate=0.3)
    assert path.read_bytes()[:8] == PNG and plt.get_fignums() == []
    image = mpimg.imread(path)
    assert image.shape[1] == round(WOE_WIDTH * DPI)
    assert image.shape[0] == round(woe_figure_height(["a\nb"] * 4) * DPI)
    with pytest.raises(ValueError, match="defaulters among"):
        plot_woe([{**BINS[0], "defaulters": 500}], tmp_path / "bad.png")
    with pytest.raises(ValueError, match="no bins"):
        plot_woe([], tmp_path / "none.png")
    assert plt.get_fignums() == []


def test_draw_woe_bars_rates_and_the_missing_bin():
    fig, (ax_woe, ax_rate) = plt.subplots(1, 2, sharey=True)
    try:
        draw_woe(ax_woe, ax_rate, BINS, overall_rate=0.3)
        bars = ax_woe.patches
        assert [round(b.get_width(), 6) for b in bars] == [0.6, -0.1, -0.9, 0.0]
        assert [b.get_hatch() for b in bars] == [None, None, None, "//"]
        labels = [t.get_text() for t in ax_woe.get_yticklabels()]
        assert labels[0] == "$5 to $10\n120 customers" and labels[3] == "missing\n0 customers"
        texts = [t.get_text() for t in ax_rate.texts]
        assert texts == ["16.7 %", "30.0 %", "50.0 %", "\u2013"]  # no rate without customers
    finally:
        plt.close(fig)


def test_the_reports_format_is_woe_scorecards():
    assert WOE_CARD_FORMAT == WOE_FORMAT


# --------------------------------------------------------------------------- run folders


@pytest.mark.slow
def test_scorecard_section_comes_after_the_model_comparison(horizontal):
    html, s = horizontal["html"], horizontal["summary"]
    assert s["model"] == "scorecard"
    at = [html.index(f'<section id="{sid}">') for sid in ("metrics", "scorecard", "auc", "gains")]
    assert at == sorted(at)
    assert "<h2>2. Scorecard" in html and "<h2>3. Test AUC per round</h2>" in html
    assert "<h2>7. Costs</h2>" in html


@pytest.mark.slow
def test_iv_table_has_every_characteristic_sorted_by_iv(run):
    s, sc = run["summary"], section(run["html"], "scorecard")
    chars = s["binning"]["characteristics"]
    body = [c for cls, c in rows(table(sc, "iv")) if cls in ("kept", "dropped")]
    assert len(body) == len(chars)
    expected = sorted(chars, key=lambda c: -c["iv"])
    for i, (got, c) in enumerate(zip(body, expected), 1):
        rank, name, owner, kind, bins, iv, reading, psi, selection = got
        assert (int(rank), name, owner, kind, int(bins)) == (
            i,
            c["characteristic"],
            c["owner"],
            c["kind"],
            c["bins"],
        )
        assert iv == f"{c['iv']:.4f}" and reading == iv_reading(c["iv"])
        assert psi == f"{c['stability_index']:.4f}"
        assert selection == ("kept: " if c["selected"] else "dropped: ") + c["reason"]
    sel = s["selection"]
    kept = sum(c["selected"] for c in chars)
    assert f"selection.min_iv = {sel['min_iv']:g}" in sc
    assert f"selection.max_psi = {sel['max_psi']:g}" in sc
    assert f"selection.max_features = {sel['max_features']}" in sc
    assert f"Kept: {kept} of {len(chars)}." in sc
    assert IV_NOTE in unescape(sc)
    # every characteristic's IV above 0.5 is flagged for a leakage check
    for c in chars:
        if c["iv"] > 0.5:
            assert f"{c['characteristic']} ({c['iv']:.4f})" in unescape(sc)
            assert "Check for leakage" in sc


@pytest.mark.slow
def test_one_woe_chart_per_selected_characteristic(run):
    html, s, card = run["html"], run["summary"], run["card"]
    sc = section(html, "scorecard")
    selected = s["selection"]["selected"]
    assert [f"{c['owner']}:{c['name']}" for c in card["characteristics"]] == selected
    charts = sc.split('<div class="charts">', 1)[1]
    pngs = images(charts)
    assert len(pngs) == len(selected) == len(re.findall(r"<figcaption>WOE of ", charts))
    for c in card["characteristics"]:
        assert f"<figcaption>WOE of {c['name']} ({c['owner']}): " in charts
    for data in pngs:
        assert data[:8] == PNG
        assert mpimg.imread(io.BytesIO(data)).shape[1] == round(WOE_WIDTH * DPI)
    # the run folder's three charts, and the WOE charts; nothing else
    assert len(images(html)) == 3 + len(selected)


@pytest.mark.slow
def test_points_table_rows_equal_scorecard_csv(run):
    sc = section(run["html"], "scorecard")
    got, name = [], None
    for cls, c in rows(table(sc, "points"))[1:]:
        if cls == "char":
            name, owner = re.match(r"(\S+) \((\S+);", c[0]).groups()
            continue
        got.append((name, owner, *c))
    assert len(got) == len(run["csv"])
    for (name, owner, b, label, n, bad, rate, woe, points), r in zip(got, run["csv"]):
        assert (name, owner, b, label) == (r["characteristic"], r["owner"], r["bin"], r["label"])
        assert (int(number(n)), int(number(bad))) == (int(r["customers"]), int(r["defaulters"]))
        assert number(woe) == pytest.approx(float(r["woe"]), abs=5e-5)
        assert int(number(points)) == int(r["points"])
        if int(r["customers"]):
            assert rate == f"{100 * int(r['defaulters']) / int(r['customers']):.1f} %"


@pytest.mark.slow
def test_base_points_convention_and_integer_check(run):
    s, card = run["summary"], run["card"]
    sc = unescape(section(run["html"], "scorecard"))
    assert f'base points</th><td class="l"><b>{card["base_points_rounded"]}</b>' in sc
    assert (
        f"{card['base_score']:g} points at good:bad odds of {card['base_odds']:g}:1; "
        f"{card['pdo']:g} points to double the odds (PDO)"
    ) in sc
    assert "points of a bin = −factor · β · WOE" in sc and "PDO / ln 2 = 28.85" in sc
    ip = s["scorecard"]["integer_points"]
    assert f'AUC of the integer score</th><td class="l">{ip["auc"]:.4f}' in sc
    assert f'model\'s ranking</th><td class="l">{ip["spearman_with_model"]:.4f}' in sc
    assert f"{ip['min']} to {ip['max']}" in sc


@pytest.mark.slow
def test_no_continuous_points_per_unit_scorecard(run):
    html = run["html"].lower()
    assert "points per unit" not in html and "points_per_unit" not in html
    assert "z-scored" not in html  # model.json holds coefficients on WOE values


@pytest.mark.slow
def test_horizontal_bins_are_labelled_and_no_party_keeps_them(horizontal):
    sc = section(horizontal["html"], "scorecard")
    assert "by number only" not in sc and "model/scorecard-" not in sc
    assert "checking_status in {no checking}" in unescape(sc)


@pytest.mark.slow
def test_vertical_bureau_bins_appear_by_number(vertical):
    sc = unescape(section(vertical["html"], "scorecard"))
    assert (
        "The bins of the data party bureau appear by number only: its cut points and "
        "categories stay with it, in model/scorecard-bureau.json (owner-only)."
    ) in sc
    bureau = [r for r in vertical["csv"] if r["owner"] == "bureau"]
    assert bureau and all(r["label"] == f"bin {r['bin']} (kept by bureau)" for r in bureau)
    for c in vertical["card"]["characteristics"]:
        if c["owner"] == "bureau":
            assert f"WOE of {c['name']} (bureau): " in sc and "numbered (bureau keeps" in sc
    # what the bureau keeps (its categories, its cut points) is nowhere in the report
    own = json.loads((vertical["dir"] / "model" / "scorecard-bureau.json").read_text())
    kept = [b["label"] for c in own["characteristics"] for b in c["bins"]]
    assert any("{" in k for k in kept)
    # one grid serves every column, so a bank's own column can share a cut's text with
    # the bureau's (">= 39.79": months of duration, years of age): those are the bank's
    banks_own = {r["label"] for r in vertical["csv"] if r["owner"] != "bureau"}
    hidden = [k for k in kept if not k.startswith("missing") and k not in banks_own]
    assert hidden
    for label in hidden:  # "missing", "missing (in bin 3)": generic
        assert label not in sc, label


@pytest.mark.slow
def test_other_runs_and_broken_cards(horizontal, tmp_path):
    # the same folder read as a logistic run: no Scorecard section, sections as before
    d = tmp_path / "logistic"
    shutil.copytree(horizontal["dir"], d)
    s = dict(horizontal["summary"])
    del s["model"]
    (d / "summary.json").write_text(json.dumps(s))
    html = render_report(d).read_text(encoding="utf-8")
    assert 'id="scorecard"' not in html and "<h2>2. Test AUC per round</h2>" in html
    assert len(images(html)) == 3
    # a scorecard run whose scorecard.json is not the per-bin card: said, not fatal
    (d / "summary.json").write_text(json.dumps(horizontal["summary"]))
    (d / "scorecard.json").write_text(json.dumps({"format": "fedrisk-scorecard-v1"}))
    sc = section(render_report(d).read_text(encoding="utf-8"), "scorecard")
    assert "not a per-bin WOE scorecard" in sc and '<table class="iv">' in sc
    (d / "scorecard.json").unlink()
    sc = section(render_report(d).read_text(encoding="utf-8"), "scorecard")
    assert "scorecard.json is missing from the run folder" in sc
