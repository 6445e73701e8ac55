"""``fedrisk report`` on a SecureBoost run folder: a Trees section (importance by party
and by feature, drawn as importance.png next to the report; test AUC per tree; trees
grown and kept; the boosting settings; federated against centralised boosting and the
bank alone), the encryption's cost beside who learns what, and none of the parts only
logistic runs have (reference model, calibration record, label-leakage attack).

One small real run (synthetic customers, four parties, two trees, 1024-bit keys: a
few seconds) is rendered once for the module; the tests read its HTML against its
summary.json, rounds.csv and transcript.jsonl."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import shutil
import warnings
from html import escape, unescape

import matplotlib.image as mpimg
import pytest

from fedrisk.evaluation.report import IMPORTANCE_PNG, TOP_FEATURES, render_report
from fedrisk.runs.run import run_scenario
from fedrisk.scenario import load_scenario

pytestmark = pytest.mark.slow

PNG = b"\x89PNG\r\n\x1a\n"
MINUS = "\u2212"

# scenarios/vertical-synthetic.toml's four parties on 2,000 customers, two shallow trees
SCENARIO = """name = "tiny-secureboost"
description = "bank + telecom + ecommerce + tax, synthetic, SecureBoost, 2 trees (test)"
seed = 7
[data]
source = "synthetic"
customers = 2000
features_per_source = 4
overlap = 0.8
[federation]
kind = "vertical"
[[federation.parties]]
name = "bank"
label = true
signal = 1.0
[[federation.parties]]
name = "telecom"
signal = 0.6
[[federation.parties]]
name = "ecommerce"
signal = 0.6
[[federation.parties]]
name = "tax"
signal = 0.8
[model]
kind = "secureboost"
learning_rate = 0.3
[secureboost]
trees = 2
max_depth = 3
max_bins = 16
[privacy]
key_bits = 1024
obfuscation = "djn"
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("secureboost-report")
    (tmp / "s.toml").write_text(SCENARIO)
    out = tmp / "run"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*1024-bit", category=UserWarning)
        run_scenario(load_scenario(tmp / "s.toml"), out, show_progress=False)
    report = render_report(out)
    with open(out / "rounds.csv", newline="") as fh:
        rounds = list(csv.DictReader(fh))
    transcript = [
        json.loads(line) for line in (out / "transcript.jsonl").read_text().splitlines() if line
    ]
    return {
        "dir": out,
        "report": report,
        "html": report.read_text(encoding="utf-8"),
        "summary": json.loads((out / "summary.json").read_text()),
        "rounds": rounds,
        "transcript": transcript,
    }


def section(html: str, sid: str) -> str:
    return html.split(f'<section id="{sid}">', 1)[1].split("</section>", 1)[0]


def after(text: str, heading: str) -> str:
    """The first table after ``heading``."""
    return text[text.index(heading) :].split("</table>", 1)[0]


def cells(table: str) -> list[list[str]]:
    """The data rows of an HTML table (those with a <td>; a key-value table's key is a
    <th>), as unescaped cell texts, tags stripped."""
    rows = []
    for tr in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S):
        if "<td" in tr:
            found = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, flags=re.S)
            rows.append([unescape(re.sub(r"<[^>]+>", "", c)) for c in found])
    return rows


def pct(fraction: float) -> str:
    return f"{100 * fraction:.1f} %".replace("-", MINUS)


def test_the_run_is_a_secureboost_run_without_logistic_sections(run):
    s = run["summary"]
    assert s["kind"] == "vertical" and s["model"] == "secureboost"
    assert "reference" not in s and "calibration" not in s
    assert set(s["importance"]["by_party"]) == set(s["data"]["parties"])


def test_importance_chart_is_drawn_next_to_the_report_and_embedded(run, tmp_path):
    assert run["report"] == run["dir"] / "report.html"
    path = run["dir"] / IMPORTANCE_PNG
    assert path.is_file()
    data = path.read_bytes()
    assert data.startswith(PNG)
    assert mpimg.imread(io.BytesIO(data), format="png").shape[:2] == (540, 1320)
    trees = section(run["html"], "trees")
    tag = re.search(r'<img src="data:image/png;base64,([^"]+)" alt="gain-based importance', trees)
    assert tag and base64.b64decode(tag.group(1)) == data
    # the chart goes beside the report, wherever that is written
    elsewhere = render_report(run["dir"], tmp_path / "sub" / "r.html")
    assert (elsewhere.parent / IMPORTANCE_PNG).read_bytes().startswith(PNG)
    # every chart embedded: AUC per tree, importance, gains, calibration
    assert len(re.findall(r'<img src="data:image/png;base64,', run["html"])) == 4


def test_trees_section_names_each_party_and_its_share(run):
    imp = run["summary"]["importance"]
    trees = section(run["html"], "trees")
    rows = cells(after(trees, "By party"))
    assert [r[0] for r in rows] == list(imp["by_party"])
    for party, share, splits in rows:
        want = imp["by_party"][party]
        assert share == pct(want["gain_share"]), party
        assert splits == str(want["splits"]), party
    assert sum(float(r[1].rstrip(" %")) for r in rows) == pytest.approx(100, abs=0.3)
    top = cells(after(trees, "Top features (party:column)"))
    # every party's columns come from model/importance.json (the simulator's view,
    # owner-only); the public summary names only the bank's
    full = json.loads((run["dir"] / "model" / "importance.json").read_text())["by_feature"]
    assert set(imp["by_feature"]) == {k for k in full if k.startswith("bank:")}
    expected = sorted(full.items(), key=lambda kv: -kv[1])[:TOP_FEATURES]
    assert [(r[1], r[2], r[3]) for r in top] == [(k, k.split(":")[0], pct(v)) for k, v in expected]
    assert [r[0] for r in top] == [str(i) for i in range(1, len(expected) + 1)]


def test_auc_per_tree_is_shown_and_labelled_per_tree(run):
    s, trees = run["summary"], section(run["html"], "trees")
    assert "Test AUC per tree" in trees and 'alt="federated test AUC per tree"' in trees
    rows = cells(after(trees, "Test AUC per tree"))
    assert len(rows) == len(run["rounds"]) == s["boosting"]["trees_grown"] == 2
    for row, r in zip(rows, run["rounds"]):
        assert row[0] == r["round"]
        assert row[1] == f"{float(r['auc']):.4f}"
        assert row[-1] == "yes"  # every tree kept: no early stopping
    # the model is the last kept tree's
    assert rows[-1][1] == f"{s['federated']['auc']:.4f}"
    costs = section(run["html"], "costs")
    assert "<h3>Per tree</h3>" in costs and "Per round" not in costs
    assert "<th>ε</th>" not in costs


def test_trees_grown_kept_settings_and_comparison(run):
    s, trees = run["summary"], section(run["html"], "trees")
    b = s["boosting"]
    settings = dict(cells(after(trees, "Trees grown and boosting settings")))
    assert settings["trees grown"] == str(b["trees_grown"])
    assert settings["trees kept"] == str(b["trees_kept"])
    assert settings["max depth"] == str(b["max_depth"])
    assert settings["bins per column"] == str(b["max_bins"])
    assert settings["learning rate (each tree's shrinkage)"] == "0.3"
    assert settings["gradients encrypted (Paillier)"] == "yes"
    table = cells(after(trees, "Federated against centralised boosting and the bank alone"))
    by_model = {r[0]: r[1:] for r in table}
    central = s["centralised"]["auc"]
    fed = by_model["SecureBoost (federated)"]
    bank = by_model["bank alone (same boosting, its own columns)"]
    assert by_model["centralised boosting (pooled columns, scikit-learn)"] == [
        f"{central:.4f}",
        "–",
        "–",
    ]
    for shown, auc in ((fed, s["federated"]["auc"]), (bank, s["local_only"]["bank"]["auc"])):
        assert shown[0] == f"{auc:.4f}"
        assert shown[1] == f"{auc - central:+.4f}".replace("-", MINUS)
        relative = float(shown[2].rstrip(" %").replace(MINUS, "-"))
        assert relative == pytest.approx(100 * (auc / central - 1), abs=0.05)
        # signed both ways (with two trees the bank alone may beat centralised)
        if abs(auc / central - 1) >= 0.0005:
            assert shown[2][0] == ("+" if auc > central else MINUS), shown
    # the metrics section's comparison shows summary.json's relative difference as a percent
    comparison = dict(cells(after(section(run["html"], "metrics"), "<h3>Comparison</h3>")))
    shown = comparison["AUC, federated relative to centralised"]
    relative = s["comparison"]["federated_relative_to_centralised_auc"]
    assert shown.endswith(" %") and shown == fed[2]
    assert float(shown.rstrip(" %").replace(MINUS, "-")) == pytest.approx(100 * relative, abs=0.05)


def test_privacy_shows_who_learns_what_and_the_encryption_cost(run):
    s, privacy = run["summary"], section(run["html"], "privacy")
    for who, text in s["privacy"]["who_learns_what"].items():
        assert escape(who) in privacy and escape(text) in privacy
    c = s["cost"]
    lines = dict(cells(after(privacy, "What the encryption cost")))
    seconds = {"encryption time": "encryption_s", "decryption time": "decryption_s"}
    for name, key in seconds.items():
        assert lines[name] == f"{c[key]:.3g} s", name
    assert lines["histogram wait (the data parties' encrypted sums)"] == (
        f"{c['histogram_wait_s']:.3g} s"
    )
    assert lines["encryptions"] == f"{c['encryptions']:,}"
    assert lines["decryptions"] == f"{c['decryptions']:,}"
    for what in ("encrypted_gradients", "encrypted_histograms"):
        sent = [r for r in run["transcript"] if r["what"] == what]
        total = sum(r["bytes"] for r in sent)
        assert lines[f"bytes of {what} (ciphertext)"].startswith(f"{total:,} B") and lines[
            f"bytes of {what} (ciphertext)"
        ].endswith(f"in {len(sent)} messages")
    assert lines["bytes sent"].startswith(f"{c['bytes_sent']:,} B")


def logistic_only(html: str) -> list[str]:
    found = []
    for needle in (
        "reference (pooled",
        "converged reference",
        "the reference pools",
        "label leakage",
        "label AUC the attacker",
        "batch size",
        "calibration record",
        "ε per round",
        "Test AUC per epoch",
    ):
        if needle in html:
            found.append(needle)
    return found


def test_no_logistic_only_sections(run):
    html = run["html"]
    assert logistic_only(html) == []
    assert '<section id="trees">' in html and '<section id="auc">' not in html
    for sid in ("header", "metrics", "gains", "privacy", "who-saw-what", "costs", "appendix"):
        assert f'id="{sid}"' in html, sid


def test_logistic_only_keys_in_a_secureboost_summary_are_not_shown(run, tmp_path):
    """Even when summary.json carries a reference, a calibration record and a label-leakage
    attack (as a logistic run's does), a SecureBoost report leaves them out."""
    d = tmp_path / "run"
    shutil.copytree(run["dir"], d)
    s = dict(run["summary"])
    s["reference"] = {**s["centralised"], "converged": True}
    s["calibration"] = {"method": "intercept", "fitted_on": "training customers"}
    s["attacks"] = {
        "label_leakage": {
            "attacker": "telecom",
            "attack": "gradient sign",
            "label_auc_by_batch_size": {"1": 0.99},
        }
    }
    (d / "summary.json").write_text(json.dumps(s))
    html = render_report(d).read_text(encoding="utf-8")
    assert logistic_only(html) == []
    assert "intercept" not in section(html, "metrics") + section(html, "privacy")


def test_early_stopping_shows_the_kept_trees(run, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(run["dir"], d)
    s = json.loads(json.dumps(run["summary"]))
    s["boosting"].update(trees_kept=1, early_stopping_rounds=1, validation_log_loss=[0.41, 0.43])
    (d / "summary.json").write_text(json.dumps(s))
    trees = section(render_report(d).read_text(encoding="utf-8"), "trees")
    assert "the model keeps the first 1 of the 2 trees grown" in trees
    rows = cells(after(trees, "Test AUC per tree"))
    assert [(r[-2], r[-1]) for r in rows] == [("0.4100", "yes"), ("0.4300", "no")]
