"""The report shows the converged reference, a mean PD column beside log loss, the
observed default rate and the miscalibration warning (no run needed: a summary.json
built from synthetic predictions is enough)."""

from __future__ import annotations

import json
import re
from html import escape, unescape

import numpy as np
import pytest
from scipy.special import expit

from fedrisk.evaluation import score_metrics
from fedrisk.evaluation.baselines import train_reference
from fedrisk.evaluation.report import render_report
from fedrisk.runs.summary import against_reference


def summary_with(shift: float) -> dict:
    """Federated scores = the reference's log-odds moved by ``shift`` (0: calibrated)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(20_000, 5))
    y = (rng.uniform(size=20_000) < expit(X @ [0.8, -0.5, 0.3, 0.0, 0.2] - 1.3)).astype(int)
    train, test = slice(0, 10_000), slice(10_000, None)
    ref = train_reference(X[train], y[train], 1e-4)
    ref_scores = ref.predict_proba(X[test])
    fed = expit(np.log(ref_scores / (1 - ref_scores)) + shift)
    federated = score_metrics(y[test], fed)
    judged = against_reference(y[test], federated, ref, ref_scores, seed=3)
    return {
        "scenario": "synthetic",
        "kind": "horizontal",
        "observed_default_rate": judged["observed_default_rate"],
        "federated": federated,
        "centralised": score_metrics(y[test], ref_scores),
        "reference": judged["reference"],
        "local_only": {"bank_1": score_metrics(y[test], np.clip(fed * 1.5, 0, 1))},
        "comparison": judged["comparison"],
        "warnings": judged["warnings"],
    }


def metrics_section(html: str) -> str:
    return html[html.index('id="metrics"') : html.index('id="auc"')]


@pytest.mark.parametrize("shift", [0.0, -0.8])
def test_report_shows_reference_mean_pd_and_the_warning_when_due(tmp_path, shift):
    s = summary_with(shift)
    (tmp_path / "summary.json").write_text(json.dumps(s))
    section = metrics_section(render_report(tmp_path).read_text())
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", section)
    assert headers[headers.index("log loss") + 1] == "mean PD"
    assert "reference (pooled data, converged, scikit-learn)" in section
    row = section[section.index("reference (pooled") :].split("</tr>")[0]
    assert f"{s['reference']['mean_pd']:.4f}" in row and f"{s['reference']['auc']:.4f}" in row
    gap = s["federated"]["mean_pd"] - s["observed_default_rate"]
    assert f"{gap:+.4f} vs observed".replace("-", "−") in section
    assert f"{s['observed_default_rate']:.4f}" in section
    # the warning is in the report exactly when summary.json has it (and it is due)
    assert bool(s["warnings"]) == (abs(100 * gap) > 2) == (shift != 0.0)
    assert ("Warning:" in section) == bool(s["warnings"])
    for w in s["warnings"]:
        assert escape(w) in section and w in unescape(section)
