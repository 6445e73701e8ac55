"""``fedrisk report DIR``: one self-contained HTML file per run folder.

A horizontal and a tiny vertical run are rendered; the HTML must hold every section, a
who-saw-what matrix naming the parties, and only embedded (data URI) PNGs. A headless
Chromium then opens the file from disk, and the report's own script counts the images
that really decoded; Chromium is optional locally (skipped with a reason) and installed
in CI.
"""

import base64
import csv
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from fedrisk.cli import main
from fedrisk.errors import InputError
from fedrisk.evaluation.report import render_report
from fedrisk.runs.run import run_scenario
from fedrisk.scenario import load_scenario
from tests.conftest import SCENARIOS

pytestmark = pytest.mark.slow

PNG = b"\x89PNG\r\n\x1a\n"
SECTIONS = ("header", "metrics", "auc", "gains", "privacy", "who-saw-what", "costs")


@pytest.fixture(scope="module")
def reports(runs):
    return {kind: render_report(d) for kind, d in runs.items()}


def images(html: str) -> list[str]:
    return re.findall(r"<img\b[^>]*>", html)


def assert_embedded_pngs(html: str) -> int:
    tags = images(html)
    for tag in tags:
        src = re.search(r'src="([^"]*)"', tag).group(1)
        assert src.startswith("data:image/png;base64,"), src[:60]
        raw = base64.b64decode(src.partition(",")[2], validate=True)
        assert raw.startswith(PNG)
        pixels = mpimg.imread(io.BytesIO(raw), format="png")
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    return len(tags)


def assert_offline(html: str) -> None:
    """Nothing is fetched: every src/href is a data URI or an in-page anchor."""
    for attr in re.findall(r'\b(?:src|href)="([^"]*)"', html):
        assert attr.startswith(("data:", "#")), attr[:60]
    assert "url(" not in html and "@import" not in html
    assert "http://" not in html and "https://" not in html


# --------------------------------------------------------------------------- HTML


@pytest.mark.parametrize("kind", ["horizontal", "vertical"])
def test_report_has_every_section_and_embedded_images(runs, reports, kind):
    out = reports[kind]
    assert out == runs[kind] / "report.html"
    html = out.read_text(encoding="utf-8")
    summary = json.loads((runs[kind] / "summary.json").read_text())
    for section in SECTIONS:
        assert f'id="{section}"' in html, section
    for needle in (
        summary["scenario"],
        summary["description"],
        summary["engine"],
        summary["fedrisk_version"],
        "federated",
        "centralised",
        "vs centralised",
        "Gains table",
        "Calibration",
        "Who saw what",
        "ε per round",
        "aggregation",
        "bytes sent",
        "messages",
    ):
        assert needle in html, needle
    for party in summary["local_only"]:
        assert f"{party} alone" in html
    # 3 charts from the run folder; no DP in either run, so no ε chart
    assert assert_embedded_pngs(html) == 3
    assert "rounds.csv has no ε values" in html
    assert_offline(html)
    assert "data-images-loaded" not in html  # set by the script, in the browser only
    assert "imagesLoaded" in html


def matrix(html: str) -> str:
    """The who-saw-what section: the matrix and the table of every link's messages."""
    section = html.split('id="who-saw-what"', 1)[1].split("</section>", 1)[0]
    assert '<table class="matrix">' in section and '<table class="links">' in section
    return section


def test_who_saw_what_matrix_horizontal(runs, reports):
    m = matrix(reports["horizontal"].read_text(encoding="utf-8"))
    assert "from server" in m and "to server" in m
    for bank in json.loads((runs["horizontal"] / "summary.json").read_text())["data"]["parties"]:
        assert f"from {bank}<" in m and f"to {bank}<" in m
    # plain FedAvg: the server reads every update, each bank reads the global model
    assert "model_update" in m and "global_model" in m
    assert 'class="amber"' in m and 'class="green"' not in m


def test_who_saw_what_matrix_vertical(reports):
    m = matrix(reports["vertical"].read_text(encoding="utf-8"))
    # the Flower server is the label-holding bank (named "server" in older transcripts)
    assert re.search(r"from (server = )?bank<", m) and re.search(r"to (server = )?bank<", m)
    assert "to provider<" in m and "from provider<" in m
    # the provider only ever sees the residuals encrypted
    assert re.search(
        r"encrypted_residuals</span> ×[\d,]+, [\d,]+ B( \([\d.]+ [KMG]iB\))?, ciphertext"
        r'<span class="tag no">unreadable',
        m,
    )
    assert "partial_scores" in m and "psi_masked_ids" in m and "psi_double_masked_ids" in m
    html = reports["vertical"].read_text(encoding="utf-8")
    assert "aligned customers" in html and "ids held by provider" in html
    assert "label AUC the attacker" in html and "encryption time" in html


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    (dst / "report.html").unlink(missing_ok=True)
    return dst


def test_epsilon_chart_drawn_from_rounds_csv(runs, tmp_path):
    d = copy_run(runs["horizontal"], tmp_path / "dp")
    with open(d / "rounds.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for i, r in enumerate(rows, 1):
        r["epsilon"] = repr(0.5 * i**0.5)
    with open(d / "rounds.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    summary = json.loads((d / "summary.json").read_text())
    summary["privacy"].update(
        dp="sample",
        epsilon=0.5 * len(rows) ** 0.5,
        delta=1e-5,
        noise_multiplier=1.1,
        sample_rate=0.01,
        steps=300,
        accountant="rdp",
    )
    (d / "summary.json").write_text(json.dumps(summary))
    html = render_report(d).read_text(encoding="utf-8")
    assert assert_embedded_pngs(html) == 4
    assert 'alt="epsilon per round"' in html
    for needle in ("noise multiplier", "sample rate", "accountant", "rdp"):
        assert needle in html


def test_missing_optional_files_are_named_not_fatal(runs, tmp_path):
    d = copy_run(runs["horizontal"], tmp_path / "partial")
    for name in ("calibration.json", "transcript.jsonl", "gains.png", "model.json"):
        (d / name).unlink()
    (d / "rounds.csv").write_text("not,a\nvalid")
    summary = json.loads((d / "summary.json").read_text())
    del summary["attacks"], summary["cost"]
    summary["description"] = '<script>alert("x")</script> & more'
    (d / "summary.json").write_text(json.dumps(summary))
    html = render_report(d, tmp_path / "sub" / "r.html").read_text(encoding="utf-8")
    for needle in (
        "calibration.json is missing",
        "transcript.jsonl is missing",
        "gains.png is missing",
        "model.json is missing",
        "no attacks section",
        "no cost section",
    ):
        assert needle in html, needle
    assert '<script>alert("x")' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in html
    assert assert_embedded_pngs(html) == 2


def test_not_a_run_folder_raises_input_error(tmp_path):
    with pytest.raises(InputError, match="no summary.json"):
        render_report(tmp_path)
    with pytest.raises(InputError, match="no such folder"):
        render_report(tmp_path / "nope")


# --------------------------------------------------------------------------- CLI


def test_cli_report_prints_the_path(runs, tmp_path, capsys):
    out = tmp_path / "mine.html"
    assert main(["report", str(runs["horizontal"]), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_cli_nonexistent_folder_exits_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "fedrisk.cli", "report", "/nonexistent"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "/nonexistent" in lines[0] and proc.stdout == ""


def test_cli_folder_without_summary_exits_2(tmp_path, capsys):
    (tmp_path / "rounds.csv").write_text("round\n1\n")
    assert main(["report", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and captured.out == "", captured
    assert str(tmp_path) in lines[0] and "summary.json" in lines[0]
    assert not (tmp_path / "report.html").exists()


# --------------------------------------------------------------------------- browser


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip(
            "Chromium is not installed (apt-get install -y chromium); the headless "
            "browser check of the HTML report needs it"
        )
    return found


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def start_chromium(binary: str, profile: Path, *args: str) -> subprocess.Popen:
    profile.mkdir(parents=True)
    return subprocess.Popen(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen) -> str:
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    assert proc.returncode == 0, err[-2000:]
    return out


@pytest.mark.parametrize("kind", ["horizontal", "vertical"])
def test_report_renders_in_headless_chromium(reports, tmp_path, kind):
    binary = chromium()
    report = reports[kind]
    url = report.resolve().as_uri()
    shot = tmp_path / "shot.png"
    # both at once: each is a separate browser with its own profile
    dom_proc = start_chromium(binary, tmp_path / "p1", "--dump-dom", url)
    shot_proc = start_chromium(
        binary, tmp_path / "p2", f"--screenshot={shot}", "--window-size=1200,3000", url
    )
    dom, _ = finish(dom_proc), finish(shot_proc)

    n_images = len(images(report.read_text(encoding="utf-8")))
    assert n_images == 3
    assert len(re.findall(r'<img\b[^>]*src="data:image/png;base64,', dom)) == n_images
    # the report's script counted the images that decoded (complete, naturalWidth > 0)
    loaded = re.search(r'<body\b[^>]*\bdata-images-loaded="(\d+)"', dom)
    assert loaded, "the on-load script did not run"
    assert int(loaded.group(1)) == n_images
    assert 'id="who-saw-what"' in dom

    assert shot.is_file() and shot.stat().st_size > 10_000
    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (3000, 1200)
    colours = np.unique(pixels[::4, ::4, :3].reshape(-1, 3), axis=0)
    assert len(colours) > 1, "the screenshot is blank"


def test_report_shows_dropouts_and_participation(tmp_path):
    s = load_scenario(
        SCENARIOS / "quickstart.toml",
        ["rounds=4", "federation.dropout=0.4", "federation.min_parties=1"],
    )
    summary = run_scenario(s, tmp_path / "run", show_progress=False).summary
    html = Path(render_report(tmp_path / "run")).read_text()
    section = html[html.index("Dropouts, stragglers and participation") :]
    section = section[
        : section.index("</table></section>") if "</table></section>" in section else len(section)
    ]
    for name, party in summary["faults"]["per_party"].items():
        cells = re.findall(r"<td>([^<]*)</td>", section[section.index(name) :])[:4]
        assert cells == [str(party[k]) for k in ("asked", "answered", "dropped", "lost_or_late")]
    assert sum(p["dropped"] for p in summary["faults"]["per_party"].values()) > 0


# --------------------------------------------------------------------------- reading


def test_metrics_show_the_auc_interval_from_summary_json(runs, reports):
    for kind in ("horizontal", "vertical"):
        summary = json.loads((runs[kind] / "summary.json").read_text())
        section = reports[kind].read_text(encoding="utf-8")
        section = section[section.index('id="metrics"') : section.index('id="auc"')]
        for model in ("federated", "centralised", "reference"):
            m = summary[model]
            assert m["auc_low"] < m["auc"] < m["auc_high"], (kind, model)
            assert m["auc_high"] - m["auc_low"] < 0.1
            ci = f"95 % CI {m['auc_low']:.4f}–{m['auc_high']:.4f}"
            assert ci in section, (kind, model, ci)


def test_calibration_and_gains_tables_are_both_riskiest_first(reports):
    html = reports["horizontal"].read_text(encoding="utf-8")
    section = html[html.index('id="gains"') : html.index('id="privacy"')]
    assert "Gains table (decile 1 = riskiest scores)" in section
    assert "Calibration by score decile (decile 1 = riskiest scores)" in section
    calib = section[section.index("Calibration by score decile") :].split("</table>")[0]
    rows = re.findall(r"<tr><td>(\d+)</td><td>[\d,]+</td><td>([\d.]+)</td>", calib)
    assert [int(d) for d, _ in rows] == list(range(1, 11))
    predicted = [float(p) for _, p in rows]
    assert predicted == sorted(predicted, reverse=True)


def test_labels_psi_reading_and_sharing_note(reports):
    html = reports["horizontal"].read_text(encoding="utf-8")
    assert "psi federated vs centralised scores" not in html
    row = re.search(
        r"Population stability index \(PSI\), federated vs centralised scores</th>"
        r'<td class="l">([^<]*)</td>',
        html,
    )
    assert row, "the PSI row is missing"
    assert re.fullmatch(
        r"\d\.\d{4} \((stable: no significant shift|moderate shift|major shift)\)", row.group(1)
    )
    assert "below 0.10 stable (no significant shift)" in html
    footer = html[html.index("<footer>") :]
    assert "permissions your umask gives" in footer and "Share it deliberately" in footer
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(reports["horizontal"].stat().st_mode) == 0o666 & ~umask
    # no number padded with zeros it does not have (8.0000, 4.000000)
    text = re.sub(r"<[^>]+>", " ", re.sub(r'src="[^"]*"', "", html))
    assert not re.search(r"\b\d+\.0{5,}\b", text)


def test_privacy_config_values_read_naturally(runs, tmp_path):
    d = copy_run(runs["horizontal"], tmp_path / "cfg")
    summary = json.loads((d / "summary.json").read_text())
    summary["privacy"].update(clip_norm=4.0, update_range=8.0, delta=1e-5, epsilon=2.0)
    summary["comparison"]["psi_federated_vs_centralised_scores"] = 0.31
    (d / "summary.json").write_text(json.dumps(summary))
    html = render_report(d).read_text(encoding="utf-8")
    cells = dict(re.findall(r'<tr><th class="l">([^<]+)</th><td class="l">([^<]*)</td></tr>', html))
    assert cells["clip norm"] == "4" and cells["update range"] == "8"
    assert cells["δ"] == "10⁻⁵" and cells["ε (privacy loss)"] == "2"
    assert (
        cells["Population stability index (PSI), federated vs centralised scores"]
        == "0.3100 (major shift)"
    )


# --------------------------------------------------------------------------- layout

# Measures the page once it has laid out: how wide the document is and how far any
# scroll box (the who-saw-what matrix's) overflows its own width. Added to a copy of the
# report by the test, so an old report without a script of its own is measured the same.
LAYOUT_JS = """<script>
window.addEventListener("load", function () {
  var worst = 0, boxes = document.querySelectorAll(".scroll, table.matrix");
  for (var i = 0; i < boxes.length; i++) {
    var el = boxes[i].classList.contains("scroll") ? boxes[i] : boxes[i].parentElement;
    worst = Math.max(worst, el.scrollWidth - el.clientWidth);
  }
  var cells = document.querySelectorAll("table.matrix td"), narrow = 1e9;
  for (var j = 0; j < cells.length; j++) {
    narrow = Math.min(narrow, cells[j].getBoundingClientRect().width);
  }
  var b = document.body.dataset;
  b.pageWidth = String(document.documentElement.scrollWidth);
  b.viewWidth = String(window.innerWidth);
  b.boxOverflow = String(worst);
  b.narrowestCell = String(Math.round(narrow));
});
</script>"""


def layout_at(binary: str, report: Path, tmp_path: Path, width: int) -> dict[str, int]:
    page = tmp_path / "measured.html"
    page.write_text(
        report.read_text(encoding="utf-8").replace("</body>", LAYOUT_JS + "</body>"),
        encoding="utf-8",
    )
    proc = start_chromium(
        binary, tmp_path / "profile", f"--window-size={width},900", "--dump-dom", page.as_uri()
    )
    dom = finish(proc)
    body = re.search(r"<body\b[^>]*>", dom).group(0)
    got = dict(
        re.findall(r'data-(page-width|view-width|box-overflow|narrowest-cell)="(-?\d+)"', body)
    )
    assert len(got) == 4, f"the layout script did not run: {body[:300]}"
    return {k: int(v) for k, v in got.items()}


def test_report_of_20_banks_fits_1280_px(tmp_path):
    """The page never scrolls sideways at 1280 px, and the who-saw-what matrix of 21
    parties fits its box (no scrolling inside it either) with cells wide enough to read."""
    binary = chromium()
    s = load_scenario(
        SCENARIOS / "quickstart.toml",
        ["federation.banks=20", "rounds=2", "federation.partition=iid"],
    )
    run_scenario(s, tmp_path / "run", show_progress=False)
    report = render_report(tmp_path / "run")
    html = report.read_text(encoding="utf-8")
    assert "to bank_20<" in html and "from bank_20<" in html
    layout = layout_at(binary, report, tmp_path, 1280)
    assert layout["view-width"] == 1280
    assert layout["page-width"] <= 1280, layout
    assert layout["box-overflow"] <= 0, layout
    assert layout["narrowest-cell"] >= 20, layout
