"""One self-contained HTML report for a run folder (``fedrisk report DIR``).

The report is a single file: charts are embedded as ``data:image/png`` URIs, the CSS is
inline and nothing is fetched from the network, so it opens offline, from a USB stick or
as an e-mail attachment. It reads what ``fedrisk run`` wrote (``summary.json``,
``rounds.csv``, ``transcript.jsonl``, ``calibration.json``, the PNGs, ``scenario.toml``,
``model.json``, a SecureBoost run's ``model/`` folder); a missing optional file or key
makes its section say what is missing.

A SecureBoost run (``"model": "secureboost"`` in summary.json) gets a Trees section in
place of the AUC chart: gain-based importance by party and by feature (drawn as
``importance.png`` next to the report, and embedded), the test AUC per tree, the trees
grown and kept, the boosting settings and federated against centralised boosting and the
bank alone; the parts only logistic runs have (the converged reference, the label-leakage
attack) are left out.

A WOE scorecard run (``"model": "scorecard"``) gets a Scorecard section after the model
comparison: every characteristic's information value (IV) with its credit-practice
reading, stability index and why it was kept or dropped; a weight-of-evidence chart per
selected characteristic (drawn for the report and embedded); and the points table from
``scorecard.json`` (the per-bin card) with the base points, the scaling convention and
the integer-points check. A vertical run's data parties keep their bins' definitions, so
their bins appear by number.

The who-saw-what matrix is built from ``transcript.jsonl``: one row per sender, one
column per receiver, each cell listing the kinds of message with their total bytes and
whether the receiver could read them.

The page speaks the language in use (``--lang``, ``FEDRISK_LANG``; see
:mod:`fedrisk.i18n`): its prose through the "report" catalog, its charts through
:func:`~fedrisk.evaluation.fonts.chart_gettext`. In Chinese, the three charts the run
drew (in the run's language) are drawn again from rounds.csv and calibration.json, when
a font with Chinese glyphs exists.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from html import escape
from pathlib import Path
from typing import Any

from fedrisk.errors import InputError
from fedrisk.evaluation.fonts import chart_gettext, chart_style
from fedrisk.evaluation.metrics import PSI_MONITOR, PSI_SHIFT, psi_band
from fedrisk.files import with_umask_permissions
from fedrisk.i18n import N_, language, translate_clauses, using_language
from fedrisk.i18n import report_gettext as _

__all__ = ["render_report", "CONTROL_MESSAGES", "IV_NOTE", "iv_reading"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: the SecureBoost importance chart, written next to the report (and embedded in it)
IMPORTANCE_PNG = "importance.png"
#: features listed in a SecureBoost report's importance table, largest share first
TOP_FEATURES = 10

#: a WOE scorecard run's per-bin card, and its format: woe_scorecard.WOE_FORMAT, written
#: out because importing woe_scorecard loads scipy (2 s of a report's start-up)
WOE_CARD = "scorecard.json"
WOE_CARD_FORMAT = "fedrisk-woe-scorecard-v1"

#: Messages that only carry protocol metadata (who is who, "go", "done"), not data about
#: customers or models; listed in the matrix but left out of its colouring.
CONTROL_MESSAGES = frozenset({"identity", "ack", "round_start"})

METRICS = (
    ("auc", "AUC", True),
    ("ks", "KS", True),
    ("gini", "Gini", True),
    ("log_loss", N_("log loss"), False),
    ("mean_pd", N_("mean PD"), None),  # neither: closest to the observed default rate is best
    ("brier", "Brier", False),
)

# privacy keys shown first, in this order; every other key follows
PRIVACY_ORDER = (
    "aggregation",
    "dp",
    "mechanism",
    "unit",
    "epsilon",
    "delta",
    "randomness",
    "epsilon_is_infinite",
    "noise_multiplier",
    "clip_norm",
    "sample_rate",
    "steps",
    "accountant",
    "binding_party",
    "key_bits",
    "key_holder",
    "obfuscation",
    "alignment",
    "server_sees_individual_updates",
    "server_sees_global_model",
)

#: summary.json keys whose values are English prose written for machines (summary.json
#: stays English): shown translated clause by clause (fedrisk.i18n.translate_clauses)
PROSE_KEYS = frozenset(
    {
        "alignment",
        "threat_model",
        "who_learns_what",
        "resists",
        "banks_check_aggregates",
        "key_holders",
        "truncation",
        "residual",
        "model_folder",
        "mechanism",
        "membership_attack",
        "attack",
    }
)
#: the groups summary.json's who_learns_what names beside single parties
PARTY_GROUPS = {
    "data parties": N_("data parties"),
    "aggregator": N_("aggregator"),
    "banks": N_("banks"),
}

CSS = """
:root { --green: #d9f2d9; --green-b: #2e7d32; --amber: #ffe8b3; --amber-b: #b26a00;
        --grey: #eeeeee; --ink: #1d2330; --muted: #5b6475; --line: #d5d9e0; }
* { box-sizing: border-box; }
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); margin: 0 auto; max-width: 1100px; padding: 1.5rem 2rem 4rem;
       line-height: 1.45; background: #fff; }
h1 { margin: 0 0 .3rem; font-size: 1.8rem; }
h2 { margin-top: 2.4rem; border-bottom: 2px solid var(--line); padding-bottom: .25rem;
     font-size: 1.35rem; }
h3 { font-size: 1.05rem; margin-top: 1.4rem; }
p.lead { color: var(--muted); margin-top: 0; font-size: 1.05rem; }
.meta { display: flex; flex-wrap: wrap; gap: .4rem 1.6rem; margin: .8rem 0;
        padding: .6rem .9rem; background: #f5f7fa; border-radius: 6px; }
.meta span b { color: var(--muted); font-weight: 600; margin-right: .3rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .92rem; }
th, td { border: 1px solid var(--line); padding: .3rem .6rem; text-align: right;
         vertical-align: top; }
th { background: #f0f2f6; }
td.l, th.l { text-align: left; }
tr.fed td { font-weight: 600; }
.ci { display: block; font-size: .78rem; color: var(--ink); font-weight: normal;
      white-space: nowrap; }
.gap { display: block; font-size: .78rem; color: var(--muted); font-weight: normal; }
.missing { color: #8a1c1c; background: #fdecec; border-left: 4px solid #c62828;
           padding: .4rem .8rem; margin: .6rem 0; }
.note { color: var(--muted); font-size: .9rem; }
.warn { color: #5c3b00; background: var(--amber); border-left: 4px solid var(--amber-b);
        padding: .4rem .8rem; margin: .6rem 0; }
figure { margin: .8rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: .88rem; }
.two { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: flex-start; }
.two > * { flex: 1 1 420px; min-width: 0; }
.scroll { overflow-x: auto; max-width: 100%; }
table.matrix { font-size: .8rem; }
table.matrix td { text-align: center; min-width: 2.2rem; padding: .2rem .25rem;
                  vertical-align: middle; }
table.matrix th { padding: .2rem .3rem; white-space: nowrap; }
table.matrix th.rot { vertical-align: bottom; text-align: left; }
table.matrix th.rot span { writing-mode: vertical-rl; transform: rotate(180deg);
                           text-orientation: sideways; /* CJK turns with the rest */
                           display: inline-block; max-height: 9rem; overflow: hidden;
                           text-overflow: ellipsis; }
table.matrix th.corner { background: #fff; color: var(--muted); font-weight: normal;
                         font-size: .75rem; text-align: left; vertical-align: bottom; }
table.links { font-size: .82rem; }
table.links td.green, table.links td.amber, table.links td.control { white-space: nowrap; }
td.green { background: var(--green); border-left: 4px solid var(--green-b); }
td.amber { background: var(--amber); border-left: 4px solid var(--amber-b); }
td.control { background: var(--grey); }
td.empty { background: #fafafa; }
.msg { display: block; margin: .15rem 0; }
.msg .w { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
          font-size: .85rem; }
.tag { display: inline-block; font-size: .72rem; padding: 0 .35rem; border-radius: 3px;
       margin-left: .25rem; border: 1px solid; white-space: nowrap; }
.tag.ro { color: var(--amber-b); border-color: var(--amber-b); }
.tag.no { color: var(--green-b); border-color: var(--green-b); }
.tag.ctl { color: var(--muted); border-color: var(--muted); }
.legend span { display: inline-block; padding: .1rem .5rem; margin-right: .6rem;
               border-radius: 3px; font-size: .85rem; }
pre { background: #f5f7fa; padding: .8rem; overflow-x: auto; font-size: .85rem; }
details { margin: .6rem 0; }
table.points tr.char th { background: #e6eaf2; text-align: left; font-weight: 600; }
table.points tr.char th span { color: var(--muted); font-weight: normal; }
table.iv tr.dropped td { color: var(--muted); }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(460px, 1fr));
          gap: .4rem 1.5rem; }
footer { margin-top: 3rem; color: var(--muted); font-size: .8rem; }
"""

#: the page's fonts in Chinese: the same Latin fonts, then fonts with Chinese glyphs
BODY_FONTS = '"Helvetica Neue", Arial, sans-serif;'
CJK_BODY_FONTS = (
    '"Helvetica Neue", Arial, "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", '
    '"Hiragino Sans GB", "Microsoft YaHei", "WenQuanYi Micro Hei", sans-serif;'
)
#: the charts a run folder holds that the page shows, drawn again in its language: the
#: key of calibration.json each is drawn from (the AUC chart: rounds.csv)
RUN_CHART_TABLES = {
    "auc_per_round.png": "rounds",
    "calibration.png": "calibration",
    "gains.png": "gains",
}
#: the ``lang`` attribute of the page per language
HTML_LANG = {"en": "en", "zh": "zh-CN"}

# Counts the images that really decoded (complete and non-zero width) once the page has
# loaded; a headless browser check reads it from the DOM. Harmless for readers.
IMAGES_LOADED_JS = """
window.addEventListener("load", function () {
  var imgs = document.querySelectorAll("img"), n = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (imgs[i].complete && imgs[i].naturalWidth > 0) { n++; }
  }
  document.body.dataset.imagesLoaded = String(n);
});
"""

# Nothing may be fetched: images are data URIs, style and script are inline.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"


# --------------------------------------------------------------------------- entry point


def render_report(run_dir: Path, out: Path | None = None, lang: str | None = None) -> Path:
    """Write one self-contained HTML report for ``run_dir`` and return its path.

    ``out`` defaults to ``run_dir / "report.html"``. ``lang`` ("en", "zh") is the page's
    language; None keeps the language in use (``--lang`` or ``FEDRISK_LANG``). Raises
    :class:`InputError` when ``run_dir`` is not a run folder (no ``summary.json``) or the
    report cannot be written.
    """
    with using_language(lang):
        run_dir = Path(run_dir)
        summary = _load_summary(run_dir)
        out = Path(out) if out is not None else run_dir / "report.html"
        if out.is_dir():
            raise InputError(f"{out}: is a folder; give --out a file name such as report.html")
        page = _Report(run_dir, summary, out).html()
        _write_atomic(out, page)
    return out


def _load_summary(run_dir: Path) -> dict[str, Any]:
    if not run_dir.exists():
        raise InputError(f"{run_dir}: no such folder; give a run folder written by 'fedrisk run'")
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: not a folder; give a run folder written by 'fedrisk run'")
    path = run_dir / "summary.json"
    if not path.is_file():
        raise InputError(
            f"{run_dir}: not a run folder (no summary.json); give a folder written by 'fedrisk run'"
        )
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: cannot be read as JSON ({_one_line(exc)})") from None
    if not isinstance(summary, dict):
        raise InputError(f"{path}: expected a JSON object, got {type(summary).__name__}")
    return summary


def _write_atomic(out: Path, text: str) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            # mkstemp makes it owner-only; a report is shared like any file its user makes
            with_umask_permissions(Path(tmp))
            os.replace(tmp, out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise InputError(f"{out}: cannot write the report ({_one_line(exc)})") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# --------------------------------------------------------------------------- formatting


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


# One formatter for every number on the page: ``fmt(value, kind)``; ``fmt_key`` picks the
# kind from a summary.json key. Kinds:
#   "auto"    counts and configuration values, read naturally: 8, 4.0 -> "4", 0.05,
#             1e-05 -> "1 × 10⁻⁵" (at most 4 significant digits)
#   "plain"   sizes named in powers of two, without separators: 2048-bit keys, batch 1024
#   "metric"  model metrics and rates at 4 decimals: 0.7067
#   "signed"  a gap between metrics, at 4 decimals with its sign: +0.0012, −0.0166
#   "pct"     a percentage (0-100) at 1 decimal: 28.4 %
#   "pp"      percentage points at 1 decimal: 2.0 pp ("signed_pp": +3.4 pp, −0.1 pp)
#   "bytes"   99,078 B (96.8 KiB)
#   "seconds" 0.818 s, 12.3 s, 2 min 05 s, 1 h 02 min
#   "epsilon" 3 significant digits: 0.512, 8, ∞
#   "psi"     the index at 4 decimals with its reading (see psi_reading)
# Infinity is always ∞; None and NaN are "–".
KINDS = (
    "auto",
    "plain",
    "metric",
    "signed",
    "pct",
    "pp",
    "signed_pp",
    "bytes",
    "seconds",
    "epsilon",
    "psi",
)

MINUS = "\u2212"
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _number(x: Any) -> Any:
    """A rounds.csv string as the number it holds ('' as None); anything else as is."""
    if not isinstance(x, str):
        return x
    text = x.strip()
    if not text:
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            continue
    return x


def _natural(x: float) -> str:
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x):,}"
    ax = abs(x)
    if ax >= 1e4:
        return f"{x:,.0f}"
    if ax >= 1e-4:
        digits = max(0, 3 - math.floor(math.log10(ax)))  # 4 significant digits
        return f"{x:.{digits}f}".rstrip("0").rstrip(".")
    mantissa, exp = f"{x:.2e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    power = "10" + str(int(exp)).translate(_SUPERSCRIPT)
    return power if mantissa == "1" else f"{mantissa} × {power}"


def _seconds(x: float) -> str:
    if x < 10:
        return f"{x:.3g} s"
    if x < 60:
        return f"{x:.1f} s"
    if x < 3600:
        m, sec = divmod(round(x), 60)
        return f"{m} min {sec:02d} s" if sec else f"{m} min"
    h, m = divmod(round(x / 60), 60)
    return f"{h} h {m:02d} min" if m else f"{h} h"


def _bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n:,} B ({n / size:.1f} {unit})"
    return f"{n:,} B"


def fmt(x: Any, kind: str = "auto") -> str:
    """Any value for the page, as HTML-escaped text; numbers by ``kind`` (see KINDS)."""
    if kind not in KINDS:
        raise ValueError(f"unknown number kind {kind!r}")
    x = _number(x)
    if x is None:
        return "–"
    if isinstance(x, bool):
        return _("yes") if x else _("no")
    if isinstance(x, (list, tuple)):
        if not x:
            return _("none")
        return escape(", ".join(fmt(v, kind) if _is_num(v) else str(v) for v in x))
    if not _is_num(x):
        return escape(str(x))
    if isinstance(x, float) and math.isnan(x):
        return "–"
    if math.isinf(x):
        return ("∞" if x > 0 else MINUS + "∞") + (" %" if kind == "pct" else "")
    if kind == "metric":
        text = f"{x:.4f}"
    elif kind == "signed":
        text = f"{x:+.4f}"
    elif kind == "plain":
        text = str(x) if isinstance(x, int) else _natural(float(x)).replace(",", "")
    elif kind == "pct":
        text = f"{x:.1f} %"
    elif kind == "pp":
        text = _("{x} pp").format(x=f"{x:.1f}")
    elif kind == "signed_pp":
        text = _("{x} pp").format(x=f"{x:+.1f}")
    elif kind == "bytes":
        text = _bytes(int(x))
    elif kind == "seconds":
        text = _seconds(float(x))
    elif kind == "epsilon":
        text = f"{x:.3g}"
        if "e" in text:
            text = _natural(float(text))
    elif kind == "psi":
        return f"{fmt(x, 'metric')} ({escape(_(psi_reading(x)))})"
    else:
        text = _natural(float(x)) if isinstance(x, float) else f"{x:,}"
    return text.replace("-", MINUS)


#: summary.json keys whose numbers are model metrics or rates (4 decimals)
METRIC_KEYS = frozenset(
    {
        "auc",
        "auc_low",
        "auc_high",
        "ks",
        "gini",
        "log_loss",
        "brier",
        "mean_pd",
        "default_rate",
        "observed_rate",
        "mean_predicted",
        "observed_default_rate",
        "test_default_rate",
        "lift",
    }
)


def kind_of(key: str) -> str:
    """The number kind for a summary.json (or rounds.csv) key."""
    k = key.lower()
    if "psi" in k.split("_"):
        return "psi"
    if k.startswith("epsilon") or k.endswith("epsilon"):
        return "epsilon"
    if k.endswith("_s") or k == "wall_s":
        return "seconds"
    if "bytes" in k:
        return "bytes"
    if k.endswith("_pct"):
        return "pct"
    if k.endswith("_bits") or k.startswith("batch"):
        return "plain"
    if k.endswith("_pp"):
        return "signed_pp" if "gap" in k.split("_") else "pp"
    if "_minus_" in k:
        return "signed"
    if k in METRIC_KEYS or k.endswith(("_auc", "_ratio")) or "ratio" in k.split("_"):
        return "metric"
    return "auto"


def fmt_key(key: str, value: Any) -> str:
    """``value`` formatted as the kind its key names (see :func:`kind_of`)."""
    return fmt(value, kind_of(key))


def prose(text: str) -> str:
    """English prose from summary.json in the page's language (escaped): translated
    clause by clause; a clause without a translation stays English."""
    return escape(translate_clauses(text)[0])


def fmt_value(key: str, value: Any) -> str:
    """:func:`fmt_key`, with the prose of a :data:`PROSE_KEYS` key translated."""
    if key in PROSE_KEYS and isinstance(value, str):
        return prose(value)
    return fmt_key(key, value)


def party_label(name: str) -> str:
    """A party's name as summary.json gives it (escaped); a group of parties translated."""
    return escape(_(PARTY_GROUPS[name])) if name in PARTY_GROUPS else escape(name)


def signed_pct(fraction: Any) -> str:
    """A relative difference given as a fraction (−0.012) as a signed percent
    (−1.2 %); one that rounds to zero as 0.0 %."""
    if not _is_num(fraction) or not math.isfinite(fraction):
        return fmt(fraction, "pct")
    pct = 100 * fraction
    if abs(pct) < 0.05:
        return fmt(0.0, "pct")
    return ("+" if pct > 0 else "") + fmt(pct, "pct")


def share(fraction: Any) -> str:
    """A share given as a fraction (0.929) as a percent (92.9 %)."""
    return fmt(100 * fraction if _is_num(fraction) else fraction, "pct")


def comparison_value(key: str, value: Any) -> str:
    """A summary.json comparison entry: a relative difference ("…_relative_to_…", a
    fraction) as a signed percent, anything else as its key's kind."""
    if "_relative_to_" in key:
        return signed_pct(value)
    return fmt_key(key, value)


def psi_reading(value: float) -> str:
    """The credit-practice reading of a population stability index (bands of
    :func:`~fedrisk.evaluation.metrics.psi_band`), in English: the page translates it."""
    try:
        band = psi_band(value)
    except ValueError:
        return N_("not a valid PSI")
    return {
        "stable": N_("stable: no significant shift"),
        "monitor": N_("moderate shift"),
        "shift": N_("major shift"),
    }[band]


_PSI_BANDS = {"monitor": f"{PSI_MONITOR:.2f}", "shift": f"{PSI_SHIFT:.2f}"}
_PSI_NOTE = N_(
    "Population stability index (PSI), as read in credit practice: below {monitor} "
    "stable (no significant shift); {monitor} to {shift} a moderate shift; "
    "{shift} and above a major shift."
)
PSI_NOTE = _PSI_NOTE.format(**_PSI_BANDS)


def psi_note() -> str:
    """PSI_NOTE in the language in use."""
    return _(_PSI_NOTE).format(**_PSI_BANDS)


#: Siddiqi's reading of a characteristic's information value: (upper bound, reading); an
#: IV above the last bound is suspicious (see iv_reading)
IV_BANDS = (
    (0.02, N_("not useful")),
    (0.1, N_("weak")),
    (0.3, N_("medium")),
    (0.5, N_("strong")),
)
IV_SUSPICIOUS = N_("suspicious: too good, check for leakage")

IV_NOTE = N_(
    "Information value (IV), as read in credit practice (Siddiqi): below 0.02 not useful "
    "for prediction; 0.02 to 0.1 weak; 0.1 to 0.3 medium; 0.3 to 0.5 strong; above 0.5 "
    "suspicious: too good to be true, so check the characteristic is not leaking the "
    "outcome (recorded after the default, or derived from it)."
)


def iv_reading(value: Any) -> str:
    """The credit-practice reading of an information value (bands of IV_BANDS; exactly
    0.5 is still strong, anything above suspicious), in English: the page translates it."""
    if not _is_num(value) or math.isnan(value) or value < 0:
        return N_("not a valid IV")
    for bound, reading in IV_BANDS[:-1]:
        if value < bound:
            return reading
    return IV_BANDS[-1][1] if value <= IV_BANDS[-1][0] else IV_SUSPICIOUS


#: Human labels for summary.json keys; any other key is shown with its underscores as
#: spaces.
LABELS = {
    # comparison
    "federated_minus_centralised_auc": N_("AUC, federated − centralised"),
    "federated_minus_reference_auc": N_("AUC, federated − reference"),
    "federated_minus_mean_local_auc": N_("AUC, federated − mean of the parties alone"),
    "federated_minus_label_holder_alone_auc": N_("AUC, joint model − label holder alone"),
    "federated_relative_to_centralised_auc": N_("AUC, federated relative to centralised"),
    "log_loss_ratio_federated_to_reference": N_("Log loss, federated ÷ reference"),
    "calibration_gap_pp": N_("Calibration gap, mean PD − observed default rate"),
    "calibration_warn_above_pp": N_("Calibration warning when the gap exceeds"),
    "mean_local_auc": N_("Mean AUC of the parties alone"),
    "best_local_party": N_("Best party alone"),
    "best_local_auc": N_("AUC of the best party alone"),
    "psi_federated_vs_centralised_scores": N_(
        "Population stability index (PSI), federated vs centralised scores"
    ),
    # privacy
    "dp": N_("differential privacy"),
    "epsilon": N_("ε (privacy loss)"),
    "delta": N_("δ"),
    "epsilon_is_infinite": N_("ε is infinite"),
    "target_epsilon": N_("target ε"),
    "epsilon_planned": N_("ε planned"),
    "max_epsilon": N_("ε budget"),
    "clip_norm": N_("clip norm"),
    "update_range": N_("update range"),
    "server_sees_individual_updates": N_("aggregator sees each bank's update"),
    "server_sees_global_model": N_("aggregator sees the global model"),
    # cost
    "wall_s": N_("wall time"),
    "federated_wall_s": N_("federated training time"),
    "baselines_wall_s": N_("baselines time"),
    "encryption_s": N_("encryption time"),
    "decryption_s": N_("decryption time"),
    "obfuscator_precompute_s": N_("obfuscator precomputation time"),
    "histogram_wait_s": N_("histogram wait (the data parties' encrypted sums)"),
    "histogram_rows": N_("rows summed into histograms"),
    "trees": N_("trees grown"),
    "bytes_sent": N_("bytes sent"),
    "setup_bytes": N_("setup bytes (round 0)"),
    "max_rounds": N_("rounds allowed"),
    "messages": N_("messages"),
    # faults
    "straggler_delay_s": N_("straggler delay"),
    "round_timeout_s": N_("round timeout"),
    "min_parties": N_("fewest parties per round"),
    # shown in English as the key with spaces; listed so that they are translated
    "aggregation": N_("aggregation"),
    "mechanism": N_("mechanism"),
    "unit": N_("unit"),
    "randomness": N_("randomness"),
    "noise_multiplier": N_("noise multiplier"),
    "sample_rate": N_("sample rate"),
    "steps": N_("steps"),
    "accountant": N_("accountant"),
    "binding_party": N_("binding party"),
    "key_bits": N_("key bits"),
    "key_holder": N_("key holder"),
    "obfuscation": N_("obfuscation"),
    "alignment": N_("alignment"),
    "threat_model": N_("threat model"),
    "who_learns_what": N_("who learns what"),
    "resists": N_("resists"),
    "key_holders": N_("key holders"),
    "banks_check_aggregates": N_("banks check each aggregate"),
    "truncation": N_("truncation"),
    "residual": N_("residual"),
    "model_folder": N_("model folder"),
    "rounds": N_("rounds"),
    "epochs": N_("epochs"),
    "calibration_rounds": N_("calibration rounds"),
    "encryptions": N_("encryptions"),
    "decryptions": N_("decryptions"),
    "binning_bytes": N_("binning bytes"),
    "binning_wall_s": N_("binning wall time"),
    "dropout": N_("dropout"),
    "stragglers": N_("stragglers"),
    "rounds_completed": N_("rounds completed"),
    "rounds_without_update": N_("rounds without update"),
    "asked": N_("asked"),
    "answered": N_("answered"),
    "dropped": N_("dropped"),
    "lost_or_late": N_("lost or late"),
    # settings of the secure aggregation and secret-sharing protocols, as their keys read
    "ciphertexts_per_update": N_("ciphertexts per update"),
    "clipped_values": N_("clipped values"),
    "clipped_values_per_round": N_("clipped values per round"),
    "frac_bits": N_("frac bits"),
    "key": N_("key"),
    "paillier": N_("paillier"),
    "per_party": N_("per party"),
    "public_max_weight": N_("public max weight"),
    "slot_bits": N_("slot bits"),
    "slots_per_ciphertext": N_("slots per ciphertext"),
    "steps_per_round": N_("steps per round"),
    "threshold": N_("threshold"),
    "protocol": N_("protocol"),
    "triples": N_("triples"),
    "ring": N_("ring"),
    "reveal": N_("reveal"),
    "truncation_failure_bound_run": N_("truncation failure bound run"),
    "largest_score_seen_by_bank": N_("largest score seen by bank"),
    "truncation_bounds": N_("truncation bounds"),
    "num_shares": N_("num shares"),
    "reconstruction_threshold": N_("reconstruction threshold"),
    "quantization_levels": N_("quantization levels"),
}

#: Labels for a SecureBoost run's ``boosting`` settings (the Trees section)
BOOSTING_LABELS = {
    "trees_grown": N_("trees grown"),
    "trees_kept": N_("trees kept"),
    "max_depth": N_("max depth"),
    "learning_rate": N_("learning rate (each tree's shrinkage)"),
    "max_bins": N_("bins per column"),
    "min_child_weight": N_("min child weight (hessian sum)"),
    "reg_lambda": N_("L2 penalty on leaf weights (λ)"),
    "subsample": N_("share of training customers per tree"),
    "early_stopping_rounds": N_("early stopping rounds (0: off)"),
    "bank_first_tree": N_("first tree from the bank's columns only"),
    "encrypted": N_("gradients encrypted (Paillier)"),
}


def label(key: str) -> str:
    """The human label for a summary.json key (escaped)."""
    if key in LABELS:
        return escape(_(LABELS[key]))
    if key.endswith("_s"):  # seconds
        return escape(_("{what} time").format(what=key[:-2].replace("_", " ")))
    return escape(key.replace("_", " "))


class _Html(str):
    """Text that is already HTML (formatted and escaped): shown as is."""


def missing(what: str) -> str:
    return f'<p class="missing">{escape(what)}</p>'


def kv_table(rows: Iterable[tuple[str, str]]) -> str:
    body = "".join(f'<tr><th class="l">{k}</th><td class="l">{v}</td></tr>' for k, v in rows)
    return f"<table>{body}</table>" if body else ""


def png_data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure(data: bytes, alt: str, caption: str) -> str:
    return (
        f'<figure><img src="{png_data_uri(data)}" alt="{escape(alt)}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


# --------------------------------------------------------------------------- the report


class _Report:
    def __init__(self, run_dir: Path, summary: dict[str, Any], out: Path | None = None) -> None:
        self.dir = run_dir
        self.s = summary
        self.kind = str(summary.get("kind", "?"))
        # where the report goes: charts drawn for it (SecureBoost importance) go beside it
        self.out = Path(out) if out is not None else run_dir / "report.html"
        # gradient-boosted trees: no reference, calibration record or label-leakage attack
        self.boost = summary.get("model") == "secureboost"
        self.unit = "tree" if self.boost else "round"
        # a WOE scorecard: its own section; its scorecard.json is the per-bin card
        self.woe = summary.get("model") == "scorecard"
        self.sections = 0  # numbered as they are drawn (a scorecard run has one more)
        self.rounds, self.rounds_error = self._load_rounds()
        self.transcript, self.transcript_error = self._load_transcript()

    # --- loading optional files -------------------------------------------------------
    def _load_rounds(self) -> tuple[list[dict[str, str]] | None, str | None]:
        path = self.dir / "rounds.csv"
        if not path.is_file():
            return None, _("{name} is missing from the run folder").format(name="rounds.csv")
        try:
            with open(path, newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            return None, _("{name} could not be read ({error})").format(
                name="rounds.csv", error=_one_line(exc)
            )
        return rows, None

    def _load_transcript(self) -> tuple[list[dict[str, Any]] | None, str | None]:
        path = self.dir / "transcript.jsonl"
        if not path.is_file():
            return None, _("{name} is missing from the run folder").format(name="transcript.jsonl")
        rows: list[dict[str, Any]] = []
        try:
            with open(path, encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    row = json.loads(line)
                    if (
                        not isinstance(row, dict)
                        or not {"sender", "receiver", "what"} <= row.keys()
                    ):
                        return None, _(
                            "transcript.jsonl line {n} lacks sender, receiver or what"
                        ).format(n=n)
                    rows.append(row)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            return None, _("{name} could not be read ({error})").format(
                name="transcript.jsonl", error=_one_line(exc)
            )
        return rows, None

    def _png(self, name: str) -> tuple[bytes | None, str | None]:
        path = self.dir / name
        if not path.is_file():
            return None, _("{name} is missing from the run folder").format(name=name)
        try:
            data = path.read_bytes()
        except OSError as exc:
            return None, _("{name} could not be read ({error})").format(
                name=name, error=_one_line(exc)
            )
        if not data.startswith(PNG_SIGNATURE):
            return None, _("{name} is not a PNG image").format(name=name)
        return data, None

    def _image(self, name: str, alt: str, caption: str) -> str:
        data, err = self._png(name)
        if data is not None and name in RUN_CHART_TABLES and language() != "en":
            # the run drew it in its own language: drawn again in the page's, if it can
            data = self.redrawn(name) or data
        return missing(err) if data is None else figure(data, alt, caption)

    def redrawn(self, name: str) -> bytes | None:
        """``name`` (a chart of the run folder) drawn again in the page's language from
        the run's data, or None: in English, without a font for Chinese, or when the
        data to draw it from is missing (the run's own chart is shown)."""
        try:
            # start-up time: matplotlib loads only when the report draws a chart
            from fedrisk.evaluation.fonts import charts_in_chinese  # start-up time, as above
            from fedrisk.evaluation.plots import draw_run_chart  # start-up time, as above

            if not charts_in_chinese():  # no font for Chinese: warned, the run's chart shown
                return None
            with tempfile.TemporaryDirectory(prefix="fedrisk-chart-") as tmp:
                path = draw_run_chart(name, self._chart_data(name), Path(tmp) / name)
                return path.read_bytes()
        except Exception:  # a chart must not stop the report: the run's chart is shown
            return None

    def _chart_data(self, name: str) -> dict[str, Any]:
        """What the run drew ``name`` from (see plots.draw_run_chart)."""
        scenario = str(self.s.get("scenario", self.dir.name))
        if name != "auc_per_round.png":
            tables, err = self._json("calibration.json")
            if err is not None:
                raise ValueError(err)
            return {"scenario": scenario, "table": tables[RUN_CHART_TABLES[name]]}
        if self.rounds is None:
            raise ValueError(self.rounds_error)
        cmp, local = self._dict("comparison"), self._dict("local_only")
        if self.kind == "horizontal" and not self.boost:
            best = (cmp.get("best_local_party"), cmp.get("best_local_auc"))
        else:  # the label holder alone, as the vertical runners draw it
            holder = self._dict("data").get("label_holder")
            alone = local.get(holder) if holder is not None else None
            best = (holder, alone.get("auc") if isinstance(alone, dict) else None)
        return {
            "scenario": scenario,
            "step": self.x_label(),
            "rounds": [int(r["round"]) for r in self.rounds],
            "auc": [float(r.get("auc") or "nan") for r in self.rounds],
            "centralised_auc": self._dict("centralised").get("auc"),
            "reference_auc": None if self.boost else self._dict("reference").get("auc"),
            "best_local_name": best[0],
            "best_local_auc": best[1],
        }

    def x_label(self) -> str:
        """What one point of the AUC chart is: a round, an epoch or a tree (English)."""
        if self.boost:
            return "tree"
        return "epoch" if self.kind == "vertical" else "round"

    def _json(self, name: str) -> tuple[Any, str | None]:
        path = self.dir / name
        if not path.is_file():
            return None, _("{name} is missing from the run folder").format(name=name)
        try:
            return json.loads(path.read_text(encoding="utf-8")), None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            return None, _("{name} could not be read ({error})").format(
                name=name, error=_one_line(exc)
            )

    def _model_importance(self) -> dict[str, Any] | None:
        """Every party's per-column importance from ``model/importance.json`` (the
        simulator's view, owner-only); summary.json names only the bank's columns."""
        path = self.dir / "model" / "importance.json"
        try:
            raw = json.loads(path.read_text(encoding="utf-8")).get("by_feature")
        except (OSError, UnicodeDecodeError, ValueError, AttributeError):
            return None
        return raw if isinstance(raw, dict) else None

    def _dict(self, key: str) -> dict[str, Any]:
        v = self.s.get(key)
        return v if isinstance(v, dict) else {}

    # --- the page ---------------------------------------------------------------------
    def html(self) -> str:
        title = _("fedrisk report: {scenario}").format(
            scenario=self.s.get("scenario", self.dir.name)
        )
        lang = language()
        css = CSS if lang == "en" else CSS.replace(BODY_FONTS, CJK_BODY_FONTS, 1)
        sections = [
            self.header(),
            self.metrics(),
            *([self.scorecard()] if self.woe else []),
            self.trees() if self.boost else self.auc_chart(),
            self.gains_calibration(),
            self.privacy(),
            self.who_saw_what(),
            self.costs(),
            self.appendix(),
        ]
        return (
            f'<!DOCTYPE html>\n<html lang="{HTML_LANG.get(lang, lang)}">\n<head>\n'
            '<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{escape(title)}</title>\n<style>{css}</style>\n"
            f"<script>{IMAGES_LOADED_JS}</script>\n</head>\n<body>\n"
            + "\n".join(sections)
            + "\n<footer>"
            + _(
                "Written by fedrisk report from {folder}. Self-contained: every chart is "
                "embedded; nothing is loaded from the network."
            ).format(folder=escape(str(self.dir)))
            + " "
            + escape(self.access_note())
            + "</footer>\n</body>\n</html>\n"
        )

    def h2(self, title: str) -> str:
        """The next section's numbered heading."""
        self.sections += 1
        return f"<h2>{self.sections}. {escape(title)}</h2>"

    def access_note(self) -> str:
        """Who may read the report, and what sharing it shares."""
        return _(
            "This report is one self-contained file with the permissions your umask gives "
            "any file you make. Sharing it shares what it shows about each party: its rows, "
            "default rate and metrics, and a record (kind, size, protection) of every "
            "message it sent. Share it deliberately. The parties' secrets are never in a "
            "finished run folder (a checkpoint holding them is owner-only and removed when "
            "the run ends)."
        )

    # 1. header
    def header(self) -> str:
        s = self.s
        name = s.get("scenario")
        desc = s.get("description")
        meta = [
            (_("kind"), s.get("kind")),
            *([(_("model"), s["model"])] if s.get("model") is not None else []),
            (_("engine"), s.get("engine")),
            (_("seed"), s.get("seed")),
            (_("fedrisk version"), s.get("fedrisk_version")),
        ]
        data = self._dict("data")
        if data.get("source") is not None:
            meta.append((_("data"), data.get("source")))
        if data.get("train_rows") is not None:
            meta.append(
                (
                    _("train / test rows"),
                    _Html(f"{fmt(data.get('train_rows'))} / {fmt(data.get('test_rows'))}"),
                )
            )
        if self.kind == "horizontal" and data.get("partition") is not None:
            part = escape(str(data["partition"]))
            if data.get("alpha") is not None:
                part += f" (α = {fmt(data['alpha'])})"
            meta.append((_("partition"), _Html(part)))
        if self.kind == "vertical" and data.get("label_holder") is not None:
            meta.append((_("label holder"), data["label_holder"]))
        spans = "".join(
            f"<span><b>{escape(k)}</b>{v if isinstance(v, _Html) else fmt(v)}</span>"
            for k, v in meta
        )
        lacks = [k for k in ("scenario", "kind", "engine", "seed", "fedrisk_version") if k not in s]
        return (
            f'<header id="header"><h1>{escape(str(name or self.dir.name))}</h1>'
            + (
                f'<p class="lead">{escape(str(desc))}</p>'
                if desc
                else '<p class="lead note">' + _("(no description)") + "</p>"
            )
            + f'<div class="meta">{spans}</div>'
            + (
                missing(_("summary.json lacks: {keys}").format(keys=", ".join(lacks)))
                if lacks
                else ""
            )
            + "</header>"
        )

    # 2. metrics
    def metrics(self) -> str:
        head = '<section id="metrics">' + self.h2(_("Model quality on the held-out test rows"))
        central = self.s.get("centralised") if isinstance(self.s.get("centralised"), dict) else None
        rows: list[tuple[str, str, Any]] = []
        if isinstance(self.s.get("federated"), dict):
            rows.append((_("federated"), "fed", self.s["federated"]))
        if central is not None:
            rows.append((self.central_name(), "", central))
        reference = {} if self.boost else self._dict("reference")
        if reference:
            fitted = _("converged") if reference.get("converged", True) else _("NOT converged")
            rows.append(
                (
                    _("reference (pooled data, {fitted}, scikit-learn)").format(fitted=fitted),
                    "",
                    reference,
                )
            )
        local = self._dict("local_only")
        for party, m in local.items():
            if isinstance(m, dict):
                rows.append((_("{party} alone (local only)").format(party=party), "", m))
        if not rows:
            return (
                head
                + missing(_("summary.json has no federated, centralised or local_only metrics"))
                + "</section>"
            )
        cols = "".join(f"<th>{escape(_(lbl))}</th>" for _key, lbl, _better in METRICS)
        observed = self.s.get("observed_default_rate")
        body = []
        for name, cls, m in rows:
            cells = []
            for key, _label, _higher_better in METRICS:
                v = m.get(key)
                cell = fmt(v, "metric")
                if key == "auc" and _is_num(m.get("auc_low")) and _is_num(m.get("auc_high")):
                    cell += (
                        '<span class="ci">'
                        + _("95 % CI {low}–{high}").format(
                            low=fmt(m["auc_low"], "metric"), high=fmt(m["auc_high"], "metric")
                        )
                        + "</span>"
                    )
                if key == "mean_pd" and _is_num(v) and _is_num(observed):
                    # calibration-in-the-large: against what happened, not another model
                    cell += (
                        '<span class="gap">'
                        + _("{gap} vs observed").format(gap=fmt(v - observed, "signed"))
                        + "</span>"
                    )
                elif (
                    central is not None
                    and m is not central
                    and _is_num(v)
                    and _is_num(central.get(key))
                ):
                    cell += (
                        '<span class="gap">'
                        + _("{gap} vs centralised").format(gap=fmt(v - central[key], "signed"))
                        + "</span>"
                    )
                cells.append(f"<td>{cell}</td>")
            body.append(
                f'<tr class="{cls}"><td class="l">{escape(name)}</td>' + "".join(cells) + "</tr>"
            )
        notes = []
        if _is_num(observed):
            notes.append(
                '<p class="note">'
                + _(
                    "Observed default rate on the test customers: <b>{rate}</b>. A model's "
                    "mean PD should be close to it (calibration-in-the-large)."
                ).format(rate=fmt(observed, "metric"))
                + "</p>"
            )
        warnings = self.s.get("warnings")
        for warning in warnings if isinstance(warnings, list) else ():
            notes.append('<p class="warn"><b>' + _("Warning:") + f"</b> {escape(str(warning))}</p>")
        if central is None:
            notes.append(missing(_("summary.json has no centralised metrics: no gaps shown")))
        if not local:
            notes.append(missing(_("summary.json has no local_only metrics")))
        cmp = self._dict("comparison")
        extra = [(label(k), comparison_value(k, v)) for k, v in cmp.items()]
        if self.boost:
            how = central.get("model") if central is not None else None
            baselines = (
                _(
                    "Gaps are the row minus centralised boosting, grown on every party's "
                    "columns pooled in one place{how}. The bank alone grows the same "
                    "boosting on its own columns."
                ).format(how=f" ({escape(str(how))})" if how else "")
                + "</p>"
            )
        else:
            baselines = (
                _(
                    "Gaps are the row minus the centralised model, which pools every party's "
                    "rows and trains with the federated run's optimiser and budget; the "
                    "reference pools them too and is fitted to convergence (what is reachable "
                    "with all data in one place)."
                )
                + "</p>"
            )
        return (
            head
            + '<table><tr><th class="l">'
            + _("model")
            + f"</th>{cols}</tr>{''.join(body)}</table>"
            + '<p class="note">'
            + _(
                "AUC, KS and Gini: higher is better. Log loss and Brier: lower is better. "
                "Mean PD: the mean predicted probability of default, best when closest to "
                "the observed default rate."
            )
            + " "
            + baselines
            + "".join(notes)
            + ("<h3>" + _("Comparison") + f"</h3>{kv_table(extra)}" if extra else "")
            + (
                f'<p class="note">{escape(psi_note())}</p>'
                if any(kind_of(k) == "psi" for k in cmp)
                else ""
            )
            + "</section>"
        )

    # 2, WOE scorecard runs: characteristics, weight of evidence and points
    def scorecard(self) -> str:
        out = [
            '<section id="scorecard">'
            + self.h2(_("Scorecard: characteristics, weight of evidence and points")),
        ]
        b = self._dict("binning")
        how = ""
        if b.get("method") is not None:
            if "max_bins" in b:
                how = _(" ({method} binning, at most {n} regular bins)").format(
                    method=escape(str(b["method"])), n=fmt(b["max_bins"])
                )
            else:
                how = _(" ({method} binning)").format(method=escape(str(b["method"])))
        out.append(
            '<p class="note">'
            + _(
                "A WOE scorecard: every characteristic was binned jointly{how}, with a bin "
                "of its own for missing values, from counts summed across the parties; each "
                "bin's weight of evidence is WOE = ln(share of goods / share of defaulters), "
                "positive where customers default less than on average. The characteristics "
                "with enough information value were kept, the logistic model was trained on "
                "their WOE, and each bin is worth a number of points."
            ).format(how=how)
            + "</p>"
        )
        card, err = self._json(WOE_CARD)
        if err is None:
            err = self._card_error(card)
        out.append(self.hidden_bins(card if err is None else None))
        out.append(self.iv_table(b))
        if err is not None:
            out.append(missing(_("no WOE charts or points table: {error}").format(error=err)))
        else:
            out.append(self.woe_charts(card))
            out.append(self.points_table(card))
        out.append("</section>")
        return "".join(out)

    @staticmethod
    def _card_error(card: Any) -> str | None:
        """Why scorecard.json is not a per-bin WOE card the report can show (None: it is)."""
        if not isinstance(card, dict):
            return _("{name} is not a JSON object").format(name=WOE_CARD)
        if card.get("format") != WOE_CARD_FORMAT:
            return _("{name} is not a per-bin WOE scorecard (format {format})").format(
                name=WOE_CARD, format=repr(card.get("format"))
            )
        chars = card.get("characteristics")
        if not isinstance(chars, list) or not all(
            isinstance(c, dict) and isinstance(c.get("bins"), list) and c["bins"] for c in chars
        ):
            return _("{name} lacks characteristics with bins").format(name=WOE_CARD)
        keys = ("label", "customers", "defaulters", "woe", "points")
        if not all(isinstance(x, dict) and set(keys) <= x.keys() for c in chars for x in c["bins"]):
            return _("{name}: a bin lacks one of {keys}").format(
                name=WOE_CARD, keys=", ".join(keys)
            )
        return None

    def hidden_bins(self, card: dict[str, Any] | None) -> str:
        """Vertical runs: which parties keep their bins' definitions, and where."""
        if card is None:
            return ""
        owners: list[str] = []
        for c in card["characteristics"]:
            owner = str(c.get("owner", "?"))
            if c.get("binning") is None and owner not in owners:
                owners.append(owner)
        if not owners:
            return ""
        files = [f"model/scorecard-{o}.json" for o in owners]
        if len(owners) == 1:
            text = _(
                "The bins of the data party {owners} appear by number only: its cut points "
                "and categories stay with it, in {files} (owner-only)."
            )
        else:
            text = _(
                "The bins of the data parties {owners} appear by number only: their cut "
                "points and categories stay with them, in {files} (owner-only)."
            )
        text = text.format(owners=_and(owners), files=_and(files))
        lacking = [f for f in files if not (self.dir / f).is_file()]
        return f'<p class="note">{escape(text)}</p>' + (
            missing(_("{files} missing from the run folder").format(files=", ".join(lacking)))
            if lacking
            else ""
        )

    def iv_table(self, b: Mapping[str, Any]) -> str:
        out = ["<h3>" + _("Information value of every characteristic") + "</h3>"]
        chars = b.get("characteristics")
        if not isinstance(chars, list) or not chars:
            return "".join(out) + missing(_("summary.json has no binning.characteristics"))
        rows = [c for c in chars if isinstance(c, dict)]
        ranked = sorted(
            rows,
            key=lambda c: (
                -c["iv"] if _is_num(c.get("iv")) else math.inf,
                str(c.get("owner")),
                str(c.get("characteristic")),
            ),
        )
        body = []
        for i, c in enumerate(ranked, 1):
            kept = c.get("selected") is True
            reason = c.get("reason")
            what = (_("kept") if kept else _("dropped")) + (f": {reason}" if reason else "")
            body.append(
                f'<tr class="{"kept" if kept else "dropped"}"><td>{i}</td>'
                f'<td class="l">{escape(str(c.get("characteristic", "?")))}</td>'
                f'<td class="l">{fmt(c.get("owner"))}</td><td class="l">{fmt(c.get("kind"))}</td>'
                f"<td>{fmt(c.get('bins'))}</td><td>{fmt(c.get('iv'), 'metric')}</td>"
                f'<td class="l">{escape(_(iv_reading(c.get("iv"))))}</td>'
                f"<td>{fmt(c.get('stability_index'), 'metric')}</td>"
                f'<td class="l">{escape(what)}</td></tr>'
            )
        out.append(
            '<table class="iv"><tr><th>#</th><th class="l">' + _("characteristic") + "</th>"
            '<th class="l">' + _("owner") + '</th><th class="l">' + _("kind") + "</th>"
            "<th>" + _("bins (with the missing bin)") + "</th><th>IV</th>"
            '<th class="l">' + _("reading") + "</th><th>" + _("stability index") + "</th>"
            '<th class="l">' + _("selection") + f"</th></tr>{''.join(body)}</table>"
        )
        out.append(f'<p class="note">{escape(_(IV_NOTE))}</p>')
        suspicious = [
            c for c in ranked if _is_num(c.get("iv")) and iv_reading(c["iv"]) == IV_SUSPICIOUS
        ]
        if suspicious:
            names = _and(
                [f"{c.get('characteristic')} ({fmt(c['iv'], 'metric')})" for c in suspicious]
            )
            if len(suspicious) == 1:
                text = _(
                    "{names} has an IV above 0.5. Make sure it is known when the credit is "
                    "granted and not derived from the outcome before relying on the scorecard."
                )
            else:
                text = _(
                    "{names} have IVs above 0.5. Make sure they are known when the credit is "
                    "granted and not derived from the outcome before relying on the scorecard."
                )
            out.append(
                '<p class="warn"><b>'
                + _("Check for leakage:")
                + "</b> "
                + text.format(names=escape(names))
                + "</p>"
            )
        out.append(self.selection_rule(b, rows))
        return "".join(out)

    def selection_rule(self, b: Mapping[str, Any], rows: list[dict[str, Any]]) -> str:
        sel = self._dict("selection")
        if not sel:
            return missing(
                _("summary.json has no selection section: the selection rule is unknown")
            )
        kept = sum(1 for c in rows if c.get("selected") is True)
        rule = _(
            "<b>Selection rule:</b> a characteristic is kept when its IV is at least "
            "selection.min_iv = {min_iv} and its stability index is at most "
            "selection.max_psi = {max_psi}; of those, the selection.max_features = "
            "{max_features} with the highest IV (ties by name). Kept: {kept} of {total}."
        ).format(
            min_iv=fmt(sel.get("min_iv")),
            max_psi=fmt(sel.get("max_psi")),
            max_features=fmt(sel.get("max_features")),
            kept=fmt(kept),
            total=fmt(len(rows)),
        )
        stability = " " + _(
            "The stability index is the population stability index of the "
            "characteristic's bin shares between the training and the held-out customers "
            "(below {monitor} stable, {monitor} to {shift} a moderate shift, above {shift} "
            "a major one)."
        ).format(**_PSI_BANDS)
        pooled = ""
        diff = b.get("pooled_iv_max_abs_diff")
        if _is_num(diff):
            agree = b.get("bins_agree_with_pooled")
            if isinstance(agree, bool):
                pooled = _(
                    "Against pooling: the kept characteristics' IVs from the counts summed "
                    "across the parties differ from those of the same bins on the pooled "
                    "training rows by at most {diff}; binning the pooled rows gives {bins}."
                ).format(diff=fmt(diff), bins=_("the same bins") if agree else _("different bins"))
            else:
                pooled = _(
                    "Against pooling: the kept characteristics' IVs from the counts summed "
                    "across the parties differ from those of the same bins on the pooled "
                    "training rows by at most {diff}."
                ).format(diff=fmt(diff))
            pooled = " " + pooled
        return f'<p class="note">{rule}{escape(stability + pooled)}</p>'

    def woe_charts(self, card: Mapping[str, Any]) -> str:
        out = ["<h3>" + _("Weight of evidence per bin of each kept characteristic") + "</h3>"]
        chars = card["characteristics"]
        ivs = {
            (str(c.get("owner")), str(c.get("characteristic"))): c.get("iv")
            for c in self._dict("binning").get("characteristics") or ()
            if isinstance(c, dict)
        }
        try:
            # start-up time: matplotlib loads only when the report draws a chart
            from fedrisk.evaluation.plots import plot_woe  # start-up time, as above
        except Exception as exc:  # a chart must not stop the report
            return "".join(out) + missing(_("no WOE charts ({error})").format(error=_one_line(exc)))
        figures = []
        with tempfile.TemporaryDirectory(prefix="fedrisk-woe-") as tmp:
            for i, c in enumerate(chars):
                name, owner = str(c.get("name", "?")), str(c.get("owner", "?"))
                bins = c["bins"]
                hidden = c.get("binning") is None
                shown = [
                    {**x, "label": _short_label(name, x, hidden, k)} for k, x in enumerate(bins)
                ]
                customers = sum(x["customers"] for x in bins if _is_num(x["customers"]))
                bad = sum(x["defaulters"] for x in bins if _is_num(x["defaulters"]))
                iv = ivs.get((owner, name))
                title = f"{name} ({owner})" + (f", IV {fmt(iv, 'metric')}" if _is_num(iv) else "")
                try:
                    path = plot_woe(
                        shown,
                        Path(tmp) / f"woe-{i}.png",
                        title=title,
                        overall_rate=bad / customers if customers else None,
                    )
                    data = path.read_bytes()
                except Exception as exc:  # a chart must not stop the report
                    figures.append(
                        missing(
                            _("the WOE chart of {name} could not be drawn ({error})").format(
                                name=name, error=_one_line(exc)
                            )
                        )
                    )
                    continue
                if hidden:
                    caption = _(
                        "WOE of {name} ({owner}): {customers} training customers in {bins} "
                        "bins, numbered ({owner} keeps what they are)."
                    )
                else:
                    caption = _(
                        "WOE of {name} ({owner}): {customers} training customers in {bins} bins."
                    )
                figures.append(
                    figure(
                        data,
                        _("weight of evidence per bin of {name}").format(name=name),
                        caption.format(
                            name=name, owner=owner, customers=fmt(customers), bins=fmt(len(bins))
                        ),
                    )
                )
        out.append(
            '<p class="note">'
            + _(
                "One chart per kept characteristic, its bins in the order of the points "
                "table: each bin's weight of evidence as a bar (green: fewer defaulters than "
                "on average, red: more, grey hatched: the bin of missing values, always the "
                "last), its training customers under its label, and on the right the bin's "
                "default rate against the overall rate (dotted)."
            )
            + "</p>"
        )
        out.append('<div class="charts">' + "".join(figures) + "</div>")
        return "".join(out)

    def points_table(self, card: Mapping[str, Any]) -> str:
        out = ["<h3>" + _("Points table") + "</h3>"]
        ip = self._dict("scorecard").get("integer_points")
        ip = ip if isinstance(ip, dict) else {}
        base = card.get("base_points", self._dict("scorecard").get("base_points"))
        printed = card.get("base_points_rounded")
        if printed is None and _is_num(base):
            printed = int(round(base))
        score, odds, pdo = card.get("base_score"), card.get("base_odds"), card.get("pdo")
        factor, intercept = card.get("factor"), card.get("intercept")
        offset = None
        if _is_num(factor) and _is_num(score) and _is_num(odds) and odds > 0:
            offset = score - factor * math.log(odds)
        rows = [
            (
                _("base points"),
                _("<b>{printed}</b> (exactly {base})").format(printed=fmt(printed), base=fmt(base)),
            ),
            (
                _("scaling"),
                _(
                    "{score} points at good:bad odds of {odds}:1; {pdo} points to double the "
                    "odds (PDO)"
                ).format(score=fmt(score), odds=fmt(odds), pdo=fmt(pdo)),
            ),
            (_("factor"), f"PDO / ln 2 = {fmt(factor)}"),
            (
                _("offset"),
                _("{score} − factor · ln {odds} = {offset}").format(
                    score=fmt(score), odds=fmt(odds), offset=fmt(offset)
                ),
            ),
            (_("model intercept b"), fmt(intercept)),
            (
                _("convention"),
                _(
                    "points of a bin = −factor · β · WOE, rounded (β: the characteristic's "
                    "coefficient on its WOE); base points = offset − factor · b; a customer's "
                    "score = base points + the points of the bin it falls in, per "
                    "characteristic. Higher scores mean lower risk."
                ),
            ),
        ]
        out.append(kv_table(rows))
        body = []
        low = high = printed if _is_num(printed) else None
        for c in card["characteristics"]:
            name, owner = str(c.get("name", "?")), str(c.get("owner", "?"))
            pts = [x["points"] for x in c["bins"] if _is_num(x["points"])]
            if low is not None and pts:
                low, high = low + min(pts), high + max(pts)
            spread = (
                _(", points {low} to {high}").format(low=fmt(min(pts)), high=fmt(max(pts)))
                if pts
                else ""
            )
            body.append(
                f'<tr class="char"><th colspan="7">{escape(name)} <span>({escape(owner)}; '
                f"β = {fmt(c.get('coefficient'))}{spread})</span></th></tr>"
            )
            for k, x in enumerate(c["bins"], 1):
                n, bad = x["customers"], x["defaulters"]
                rate = bad / n if _is_num(n) and _is_num(bad) and n else None
                body.append(
                    f"<tr><td>{fmt(x.get('bin', k))}</td>"
                    f'<td class="l">{escape(str(x["label"]))}</td><td>{fmt(n)}</td>'
                    f"<td>{fmt(bad)}</td><td>{share(rate) if rate is not None else '–'}</td>"
                    f"<td>{fmt(x['woe'], 'signed')}</td><td><b>{fmt(x['points'])}</b></td></tr>"
                )
        out.append(
            '<table class="points"><tr><th>'
            + _("bin")
            + '</th><th class="l">'
            + _("label")
            + "</th>"
            "<th>"
            + _("customers")
            + "</th><th>"
            + _("defaulters")
            + "</th><th>"
            + _("default rate")
            + "</th>"
            "<th>WOE</th><th>" + _("points") + "</th></tr>" + "".join(body) + "</table>"
        )
        note = _(
            "Customers and defaulters are the training customers in each bin (summed across "
            "the parties); the last bin of every characteristic holds missing values. The "
            "same rows are in scorecard.csv{scores}"
        )
        scores = (
            _("; possible scores run from {low} to {high}.").format(low=fmt(low), high=fmt(high))
            if low is not None
            else "."
        )
        out.append('<p class="note">' + note.format(scores=scores) + "</p>")
        out.append(self.integer_check(ip))
        return "".join(out)

    def integer_check(self, ip: Mapping[str, Any]) -> str:
        out = ["<h4>" + _("Integer points against the model") + "</h4>"]
        if not ip:
            return "".join(out) + missing(_("summary.json has no scorecard.integer_points"))
        model_auc = self._dict("federated").get("auc")
        auc = ip.get("auc")
        gap = (
            " "
            + _("({gap} vs the model's {auc})").format(
                gap=fmt(auc - model_auc, "signed"), auc=fmt(model_auc, "metric")
            )
            if _is_num(auc) and _is_num(model_auc)
            else ""
        )
        out.append(
            kv_table(
                [
                    (_("AUC of the integer score"), fmt(auc, "metric") + gap),
                    ("KS", fmt(ip.get("ks"), "metric")),
                    ("Gini", fmt(ip.get("gini"), "metric")),
                    (
                        _("Spearman correlation with the model's ranking"),
                        fmt(ip.get("spearman_with_model"), "metric"),
                    ),
                    (
                        _("scores of the held-out customers"),
                        _("{low} to {high}").format(
                            low=fmt(ip.get("min")), high=fmt(ip.get("max"))
                        ),
                    ),
                ]
            )
        )
        out.append(
            '<p class="note">'
            + _(
                "On the held-out customers: rounding every bin's points to an integer should "
                "leave the ranking almost unchanged (Spearman close to 1, AUC close to the "
                "model's)."
            )
            + "</p>"
        )
        return "".join(out)

    # 3. AUC per round
    def auc_chart(self) -> str:
        vertical = self.kind == "vertical"
        caption = _(
            "Federated test AUC after each {unit}, beside the centralised model, the "
            "converged reference and the best single party trained alone."
        )
        return (
            '<section id="auc">'
            + self.h2(_("Test AUC per epoch") if vertical else _("Test AUC per round"))
            + self._image(
                "auc_per_round.png",
                _("federated test AUC per epoch")
                if vertical
                else _("federated test AUC per round"),
                caption.format(unit=_("epoch") if vertical else _("round")),
            )
            + "</section>"
        )

    def central_name(self) -> str:
        """The centralised baseline's row name in the metrics table."""
        if self.boost:
            return _("centralised boosting (pooled columns, scikit-learn)")
        return _("centralised (pooled data, idealised)")

    # 3, SecureBoost: the trees (in place of the AUC chart)
    def trees(self) -> str:
        b = self._dict("boosting")
        grown, kept = b.get("trees_grown"), b.get("trees_kept")
        out = [
            '<section id="trees">' + self.h2(_("Trees")),
            '<p class="note">'
            + _(
                "Gradient-boosted trees grown jointly (SecureBoost): the bank holds the "
                "labels and the Paillier key and sends each tree's gradients and hessians "
                "encrypted; every data party sums them into histograms over its own binned "
                "columns and keeps its thresholds."
            )
            + "</p>",
            "<h3>" + _("Trees grown and boosting settings") + "</h3>",
        ]
        if not b:
            out.append(missing(_("summary.json has no boosting section")))
        else:
            first = [k for k in ("trees_grown", "trees_kept") if k in b]
            rest = [k for k in b if k not in first and k != "validation_log_loss"]
            out.append(
                kv_table(
                    (
                        escape(
                            _(BOOSTING_LABELS[k]) if k in BOOSTING_LABELS else k.replace("_", " ")
                        ),
                        fmt_key(k, b[k]),
                    )
                    for k in first + rest
                )
            )
            if _is_num(grown) and _is_num(kept) and kept < grown:
                out.append(
                    '<p class="note">'
                    + _(
                        "Early stopping: the validation log loss was lowest after tree "
                        "{kept}, so the model keeps the first {kept} of the {grown} trees "
                        "grown; the metrics are those of the kept trees."
                    ).format(kept=fmt(kept), grown=fmt(grown))
                    + "</p>"
                )
        out.append(self.tree_comparison())
        out.append(self.auc_per_tree(b))
        out.append(self.importance(kept))
        out.append("</section>")
        return "".join(out)

    def tree_comparison(self) -> str:
        out = ["<h3>" + _("Federated against centralised boosting and the bank alone") + "</h3>"]
        central = self._dict("centralised")
        rows: list[tuple[str, Any]] = [(_("SecureBoost (federated)"), self._dict("federated"))]
        rows.append((self.central_name(), central))
        for party, m in self._dict("local_only").items():
            rows.append(
                (_("{party} alone (same boosting, its own columns)").format(party=party), m)
            )
        base = central.get("auc")
        body = []
        for name, m in rows:
            auc = m.get("auc") if isinstance(m, dict) else None
            diff = rel = None
            if m is not central and _is_num(auc) and _is_num(base) and base:
                diff, rel = auc - base, auc / base - 1
            body.append(
                f'<tr><td class="l">{escape(name)}</td><td>{fmt(auc, "metric")}</td>'
                f"<td>{fmt(diff, 'signed')}</td><td>{signed_pct(rel)}</td></tr>"
            )
        out.append(
            '<table><tr><th class="l">' + _("model") + "</th><th>" + _("test AUC") + "</th>"
            "<th>"
            + _("AUC − centralised")
            + "</th><th>"
            + _("relative to centralised")
            + "</th></tr>"
            + "".join(body)
            + "</table>"
        )
        if not _is_num(base):
            out.append(missing(_("summary.json has no centralised AUC: no differences shown")))
        out.append(
            '<p class="note">'
            + _(
                "Relative to centralised: the AUC divided by the centralised boosting's AUC, "
                "minus 1, as a percent. Centralised boosting sees every party's columns in "
                "one place with the same trees, depth, bins, learning rate and L2 penalty: "
                "what the federation can at best reach."
            )
            + "</p>"
        )
        return "".join(out)

    def auc_per_tree(self, b: Mapping[str, Any]) -> str:
        out = [
            '<h3 id="auc">' + _("Test AUC per tree") + "</h3>",
            self._image(
                "auc_per_round.png",
                _("federated test AUC per tree"),
                _(
                    "Test AUC of the joint model on the held-out customers after each tree, "
                    "beside centralised boosting and the bank alone (dashed)."
                ),
            ),
        ]
        if self.rounds is None:
            return "".join(out) + missing(self.rounds_error or _("rounds.csv missing"))
        if not self.rounds:
            return "".join(out) + missing(_("rounds.csv has no trees"))
        kept = b.get("trees_kept")
        val = b.get("validation_log_loss")
        val = val if isinstance(val, list) and val else None
        cols = (
            ("auc", _("test AUC")),
            ("ks", "KS"),
            ("gini", "Gini"),
            ("log_loss", _("log loss")),
            ("brier", "Brier"),
        )
        head = "".join(f"<th>{escape(lbl)}</th>" for _key, lbl in cols)
        head += "<th>" + _("validation log loss") + "</th>" if val else ""
        head += "<th>" + _("kept") + "</th>" if _is_num(kept) else ""
        body = []
        for r in self.rounds:
            tree = _number(r.get("round"))
            cells = [f"<td>{fmt(tree)}</td>"]
            cells += [f"<td>{fmt_key(k, r.get(k))}</td>" for k, _lbl in cols]
            if val:
                at = tree - 1 if isinstance(tree, int) and 0 < tree <= len(val) else None
                cells.append(f"<td>{fmt(val[at] if at is not None else None, 'metric')}</td>")
            if _is_num(kept):
                cells.append(f"<td>{fmt(isinstance(tree, int) and tree <= kept)}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        out.append("<table><tr><th>" + _("tree") + f"</th>{head}</tr>{''.join(body)}</table>")
        return "".join(out)

    def importance(self, kept: Any) -> str:
        out = ["<h3>" + _("Gain-based importance") + "</h3>"]
        imp = self._dict("importance")
        by_party = imp.get("by_party")
        if not isinstance(by_party, dict) or not by_party:
            return "".join(out) + missing(_("summary.json has no importance.by_party"))
        parties = {str(k): v if isinstance(v, dict) else {} for k, v in by_party.items()}
        raw = self._model_importance() or imp.get("by_feature")
        by_feature = raw if isinstance(raw, dict) else {}
        measure = imp.get("measure")
        if measure:
            out.append(
                '<p class="note">'
                + _("Measure: {measure}.").format(measure=escape(str(measure)))
                + "</p>"
            )
        out.append(self.importance_chart(parties, by_feature, kept))
        body = "".join(
            f'<tr><td class="l">{escape(name)}</td><td>{share(v.get("gain_share"))}</td>'
            f"<td>{fmt(v.get('splits'))}</td></tr>"
            for name, v in parties.items()
        )
        left = (
            "<div><h4>" + _("By party") + "</h4>"
            '<table><tr><th class="l">'
            + _("party")
            + "</th><th>"
            + _("share of the gain")
            + "</th>"
            "<th>" + _("splits") + f"</th></tr>{body}</table></div>"
        )
        ranked = sorted(
            ((str(k), v) for k, v in by_feature.items()),
            key=lambda kv: -kv[1] if _is_num(kv[1]) else math.inf,
        )
        top = ranked[:TOP_FEATURES]
        body = "".join(
            f'<tr><td>{i}</td><td class="l">{escape(k)}</td>'
            f'<td class="l">{escape(k.partition(":")[0])}</td><td>{share(v)}</td></tr>'
            for i, (k, v) in enumerate(top, 1)
        )
        right = ["<div><h4>" + _("Top features (party:column)") + "</h4>"]
        if not by_feature:
            right.append(missing(_("summary.json has no importance.by_feature")))
        else:
            right.append(
                "<table><tr><th>" + _("rank") + '</th><th class="l">' + _("feature") + "</th>"
                '<th class="l">' + _("party") + "</th><th>" + _("share of the gain") + f"</th></tr>"
                f"{body}</table>"
            )
            if len(ranked) > len(top):
                right.append(
                    '<p class="note">'
                    + _("{n} more features made splits, each with a smaller share.").format(
                        n=fmt(len(ranked) - len(top))
                    )
                    + "</p>"
                )
        right.append("</div>")
        out.append('<div class="two">' + left + "".join(right) + "</div>")
        out.append(
            '<p class="note">'
            + _(
                "A data party's columns are named here from the run folder's "
                "<code>model/importance.json</code>, the simulator's view (owner-only, not "
                "public): summary.json names only the bank's columns, since per-column "
                "shares of a data party would tell the bank the column behind each of its "
                "split ids."
            )
            + "</p>"
        )
        return "".join(out)

    def importance_chart(
        self, parties: Mapping[str, Mapping[str, Any]], by_feature: Mapping[str, Any], kept: Any
    ) -> str:
        """Draw the importance chart next to the report and embed it."""
        shares = {k: v.get("gain_share") for k, v in parties.items()}
        if not all(_is_num(v) for v in shares.values()):
            return missing(_("importance.by_party lacks a party's gain_share: no chart"))
        features = {str(k): v for k, v in by_feature.items() if _is_num(v)}
        path = self.out.parent / IMPORTANCE_PNG
        scenario = self.s.get("scenario", "")
        if _is_num(kept):  # a chart title: in the chart's language
            title = chart_gettext(N_("{scenario}: gain-based importance of the {n} kept trees"))
        else:
            title = chart_gettext(N_("{scenario}: gain-based importance"))
        try:
            # start-up time: matplotlib loads only when the report draws a chart
            from fedrisk.evaluation.plots import plot_importance  # start-up time, as above

            plot_importance(
                shares,
                features,
                path,
                title=title.format(scenario=scenario, n=fmt(kept)),
                top=TOP_FEATURES,
            )
            data = path.read_bytes()
        except Exception as exc:  # a chart must not stop the report
            return missing(
                _("the importance chart could not be drawn ({error})").format(error=_one_line(exc))
            )
        return figure(
            data,
            _("gain-based importance by party and by feature"),
            _(
                "Each party's share of the total split gain (left) and the top features "
                "(right), coloured by party. Also saved beside this report as {file}."
            ).format(file=IMPORTANCE_PNG),
        )

    # 4. gains and calibration
    def gains_calibration(self) -> str:
        out = ['<section id="gains">' + self.h2(_("Gains by score decile and calibration"))]
        tables, err = self._json("calibration.json")
        if err is not None or not isinstance(tables, dict):
            out.append(
                missing(err or _("{name} is not a JSON object").format(name="calibration.json"))
            )
            tables = {}
        gains, calib = tables.get("gains"), tables.get("calibration")
        left = ["<div><h3>" + _("Gains table (decile 1 = riskiest scores)") + "</h3>"]
        left.append(
            self._table(
                gains,
                (
                    ("decile", _("decile")),
                    ("n", _("customers")),
                    ("defaults", _("defaults")),
                    ("default_rate", _("default rate")),
                    ("cum_defaults_pct", _("cum. % of defaults")),
                    ("lift", _("lift")),
                ),
                "gains",
            )
            if tables
            else ""
        )
        left.append("</div>")
        right = [
            "<div>",
            self._image(
                "gains.png",
                _("gains by score decile"),
                _("Cumulative share of defaulters caught by decile."),
            ),
            "</div>",
        ]
        out.append('<div class="two">' + "".join(left) + "".join(right) + "</div>")
        left = [
            "<div><h3>" + _("Calibration by score decile (decile 1 = riskiest scores)") + "</h3>",
            '<p class="note">'
            + _(
                "Predicted against observed default rate, riskiest decile first, as in the "
                "gains table."
            )
            + "</p>",
        ]
        left.append(
            self._table(
                riskiest_first(calib),
                (
                    ("decile", _("decile")),
                    ("n", _("customers")),
                    ("mean_predicted", _("mean predicted")),
                    ("observed_rate", _("observed rate")),
                ),
                "calibration",
            )
            if tables
            else ""
        )
        left.append("</div>")
        right = [
            "<div>",
            self._image(
                "calibration.png",
                _("calibration plot"),
                _("Reliability diagram: points on the diagonal are well calibrated."),
            ),
            "</div>",
        ]
        out.append('<div class="two">' + "".join(left) + "".join(right) + "</div>")
        out.append("</section>")
        return "".join(out)

    @staticmethod
    def _table(rows: Any, cols: tuple[tuple[str, str], ...], what: str) -> str:
        if not isinstance(rows, list) or not rows:
            return missing(_("calibration.json has no {what} table").format(what=what))
        head = "".join(f"<th>{escape(lbl)}</th>" for _key, lbl in cols)
        body = "".join(
            "<tr>"
            + "".join(
                f"<td>{fmt_key(k, r.get(k)) if isinstance(r, dict) else '–'}</td>"
                for k, _lbl in cols
            )
            + "</tr>"
            for r in rows
        )
        return f"<table><tr>{head}</tr>{body}</table>"

    # 5. privacy
    def privacy(self) -> str:
        out = ['<section id="privacy">' + self.h2(_("Privacy"))]
        p = self._dict("privacy")
        if not p:
            out.append(missing(_("summary.json has no privacy section")))
        else:
            keys = [k for k in PRIVACY_ORDER if k in p] + [k for k in p if k not in PRIVACY_ORDER]
            flat, nested = [], []
            for k in keys:
                v = p[k]
                if isinstance(v, dict) and v:
                    nested.append((k, v))
                elif isinstance(v, dict):
                    flat.append((label(k), _("none")))
                elif isinstance(v, list):
                    if v:
                        flat.append((label(k), "<br>".join(escape(str(x)) for x in v)))
                else:
                    flat.append((label(k), fmt_value(k, v)))
            if p.get("dp") in (None, "none"):
                flat.append(
                    (
                        _("formal guarantee"),
                        _(
                            "none: no differential-privacy mechanism ran, so there is no ε to "
                            "report"
                        ),
                    )
                )
            out.append(kv_table(flat))
            for k, v in nested:
                if k == "who_learns_what":
                    table = kv_table(
                        (party_label(str(who)), fmt_value(k, said)) for who, said in v.items()
                    )
                else:
                    table = _nested_table(v)
                out.append(f"<h3>{label(k)}</h3>" + table)
        if self.boost:
            out.append(self.encryption_costs())
        out.append(self.attacks())
        out.append(self.epsilon_chart())
        out.append("</section>")
        return "".join(out)

    def encryption_costs(self) -> str:
        """SecureBoost: what the Paillier encryption of g and h cost, in time and bytes."""
        out = ["<h3>" + _("What the encryption cost") + "</h3>"]
        c = self._dict("cost")
        if not c:
            return "".join(out) + missing(_("summary.json has no cost section"))
        keys = (
            "encryptions",
            "encryption_s",
            "obfuscator_precompute_s",
            "histogram_wait_s",
            "decryptions",
            "decryption_s",
        )
        rows = [(label(k), fmt_key(k, c[k])) for k in keys if k in c]
        lacks = [k for k in keys if k not in c]
        if self.transcript:
            sums: dict[str, list[int]] = {}
            for row in self.transcript:
                size = row.get("bytes")
                if row.get("protection") == "ciphertext" and _is_num(size):
                    total = sums.setdefault(str(row["what"]), [0, 0])
                    total[0] += int(size)
                    total[1] += 1
            for what, (size, n) in sorted(sums.items()):
                rows.append(
                    (
                        _("bytes of {what} (ciphertext)").format(what=escape(what)),
                        _("{size} in {n} messages").format(size=fmt(size, "bytes"), n=fmt(n)),
                    )
                )
            ciphertext = sum(size for size, _n in sums.values())
            sent = c.get("bytes_sent")
            rows.append(
                (
                    _("ciphertext bytes, all"),
                    fmt(ciphertext, "bytes")
                    + (
                        " "
                        + _("({share} of the bytes sent)").format(share=share(ciphertext / sent))
                        if sent
                        else ""
                    ),
                )
            )
        if "bytes_sent" in c:
            rows.append((label("bytes_sent"), fmt_key("bytes_sent", c["bytes_sent"])))
        out.append(kv_table(rows))
        if self.transcript is None:
            out.append(
                missing(_("no ciphertext bytes: {error}").format(error=self.transcript_error))
            )
        if lacks:
            out.append(missing(_("summary.json cost lacks: {keys}").format(keys=", ".join(lacks))))
        out.append(
            '<p class="note">'
            + _(
                "The bank encrypts every training customer's g and h once per tree and "
                "decrypts the data parties' histogram sums; the histogram wait is the time it "
                "waited for those encrypted sums."
            )
            + "</p>"
        )
        return "".join(out)

    def attacks(self) -> str:
        out = ["<h3>" + _("Attacks") + "</h3>"]
        a = self.s.get("attacks")
        if not isinstance(a, dict):
            return "".join(out) + missing(_("summary.json has no attacks section"))
        if not a and self.boost:
            return "".join(out) + (
                '<p class="note">'
                + _(
                    "No attack is simulated for SecureBoost runs; who learns what (above) "
                    "lists what each party sees."
                )
                + "</p>"
            )
        if not a:
            return "".join(out) + (
                '<p class="note">' + _("No attack was run for this scenario.") + "</p>"
            )
        if "membership_auc" in a:
            bound = a.get("membership_auc_bound")
            out.append(
                kv_table(
                    [
                        (
                            _("membership inference attack"),
                            fmt_value("membership_attack", a.get("membership_attack")),
                        ),
                        (_("attack AUC (0.5 = guessing)"), fmt(a.get("membership_auc"), "metric")),
                        (
                            _("most any attack could reach under (ε, δ)"),
                            fmt(bound, "metric")
                            if bound is not None
                            else _("– (no finite ε: no bound)"),
                        ),
                    ]
                )
            )
        leak = None if self.boost else a.get("label_leakage")
        if isinstance(leak, dict):
            out.append(
                kv_table(
                    [
                        (_("label leakage attacker"), fmt(leak.get("attacker"))),
                        (_("attack"), fmt_value("attack", leak.get("attack"))),
                    ]
                )
            )
            by = leak.get("label_auc_by_batch_size")
            if isinstance(by, dict) and by:

                def key(b: str) -> float:
                    try:
                        return float(b)
                    except ValueError:
                        return math.inf

                rows = "".join(
                    f"<tr><td>{fmt(b, 'plain')}</td><td>{fmt(by[b], 'metric')}</td></tr>"
                    for b in sorted(by, key=key)
                )
                out.append(
                    "<table><tr><th>" + _("batch size") + "</th>"
                    "<th>" + _("label AUC the attacker reaches") + f"</th></tr>{rows}</table>"
                    '<p class="note">'
                    + _(
                        "AUC 1.0: the data party recovers every label from its gradient; "
                        "0.5: it learns nothing. Larger batches blur the per-customer signal."
                    )
                    + "</p>"
                )
            else:
                out.append(missing(_("attacks.label_leakage has no label_auc_by_batch_size")))
        others = {
            k: v
            for k, v in a.items()
            if k
            not in ("membership_auc", "membership_attack", "membership_auc_bound", "label_leakage")
        }
        if others:
            out.append(_nested_table(others))
        return "".join(out)

    def epsilon_chart(self) -> str:
        out = ["<h3>" + _("ε per round") + "</h3>"]
        if self.rounds is None:
            return "".join(out) + missing(_("no ε chart: {error}").format(error=self.rounds_error))
        pts = []
        for r in self.rounds:
            try:
                rnd, eps = int(r.get("round") or ""), r.get("epsilon") or ""
            except ValueError:
                continue
            if eps.strip():
                try:
                    pts.append((rnd, float(eps)))
                except ValueError:
                    continue
        if not pts and self.boost:
            return ""  # no differential privacy is offered with SecureBoost
        if not pts:
            return "".join(out) + (
                '<p class="note">'
                + _(
                    "rounds.csv has no ε values: no differential-privacy mechanism ran in this run."
                )
                + "</p>"
            )
        try:
            data = _plot_epsilon(pts, self._dict("privacy"), str(self.s.get("scenario", "")))
        except Exception as exc:  # a chart must not stop the report
            return "".join(out) + missing(
                _("the ε chart could not be drawn ({error})").format(error=_one_line(exc))
            )
        return "".join(out) + figure(
            data,
            _("epsilon per round"),
            _(
                "Accounted ε after each round (it only grows: every round spends more of the "
                "privacy budget)."
            ),
        )

    # 6. who saw what
    def who_saw_what(self) -> str:
        out = [
            '<section id="who-saw-what">' + self.h2(_("Who saw what")),
            '<p class="note">'
            + _(
                "Every message that crossed a party boundary, from transcript.jsonl. Rows: "
                "sender; columns: receiver; each cell says whether the receiver could read "
                "what it was sent (hover it for the messages). The table under the matrix "
                "lists every link's messages."
            )
            + "</p>",
        ]
        if self.transcript is None:
            return (
                "".join(out)
                + missing(_("no matrix: {error}").format(error=self.transcript_error))
                + "</section>"
            )
        if not self.transcript:
            return "".join(out) + missing(_("transcript.jsonl holds no messages")) + "</section>"
        if self.kind == "vertical":
            holder = self._dict("data").get("label_holder")
            if holder:
                key = self._dict("privacy").get("key_holder") == holder
                if key:
                    text = _(
                        "In a vertical run the Flower server is the label holder, "
                        "<b>{holder}</b>: it holds the labels and the Paillier private key and "
                        "relays every message between the other parties."
                    )
                else:
                    text = _(
                        "In a vertical run the Flower server is the label holder, "
                        "<b>{holder}</b>: it holds the labels and relays every message between "
                        "the other parties."
                    )
                out.append('<p class="note">' + text.format(holder=escape(str(holder))) + "</p>")
        aliases, first = {}, ["server"]
        holder = self._dict("data").get("label_holder")
        if self.kind == "vertical" and holder:
            # older run folders name the label holder "server" in the transcript
            aliases["server"] = f"server = {holder}"
            first.append(str(holder))
        out.append(
            '<p class="legend"><span style="background:var(--green)">'
            + _("no (green): the receiver could read none of it (ciphertext or masked)")
            + '</span><span style="background:var(--amber)">'
            + _("yes (amber): the receiver could read some of it")
            + '</span><span style="background:var(--grey)">'
            + _("ctl (grey): protocol control only")
            + "</span></p>"
        )
        out.append(who_saw_what_matrix(self.transcript, aliases, first))
        out.append(
            '<p class="note">'
            + _(
                "Control messages ({kinds}) carry only who-is-who and go-ahead signals; they "
                "are listed but do not colour a cell."
            ).format(kinds=escape(", ".join(sorted(CONTROL_MESSAGES))))
            + "</p>"
        )
        out.append("</section>")
        return "".join(out)

    # 7. costs
    def costs(self) -> str:
        out = ['<section id="costs">' + self.h2(_("Costs"))]
        c = self._dict("cost")
        if not c:
            out.append(missing(_("summary.json has no cost section")))
        else:
            rows = []
            for k, v in c.items():
                # a SecureBoost run's rounds are its trees, listed as such
                if k == "bytes_per_round" or (self.boost and k == "rounds" and "trees" in c):
                    continue
                rows.append((label(k), fmt_key(k, v)))
            if self.transcript:
                rows.append((_("messages in transcript.jsonl"), fmt(len(self.transcript))))
            out.append(kv_table(rows))
            if "encryption_s" not in c and "decryption_s" not in c:
                out.append(
                    '<p class="note">'
                    + _(
                        "No encryption or decryption times: this run did not use Paillier "
                        "encryption."
                    )
                    + "</p>"
                )
        if self.kind == "vertical":
            out.append(self._vertical_costs())
        out.append("<h3>" + (_("Per tree") if self.boost else _("Per round")) + "</h3>")
        out.append(self._per_round(c.get("bytes_per_round")))
        out.append(self._faults())
        dep = self._dict("deployment")
        if dep:
            out.append("<h3>" + _("Deployment Engine") + "</h3>")
            out.append(kv_table([(label(k), fmt_key(k, v)) for k, v in dep.items()]))
        out.append("</section>")
        return "".join(out)

    def _faults(self) -> str:
        f = self._dict("faults")
        if not f:
            return ""
        out = [
            "<h3>" + _("Dropouts, stragglers and participation") + "</h3>",
            kv_table(
                [
                    (label(k), fmt_key(k, v))
                    for k, v in f.items()
                    if k not in ("per_party", "updates_per_round")
                ]
            ),
        ]
        parties = f.get("per_party")
        if isinstance(parties, dict) and parties:
            cols = ("asked", "answered", "dropped", "lost_or_late")
            head = "".join(f"<th>{escape(label(c))}</th>" for c in cols)
            body = "".join(
                f'<tr><td class="l">{escape(str(k))}</td>'
                + "".join(f"<td>{fmt(v.get(c))}</td>" for c in cols)
                + "</tr>"
                for k, v in parties.items()
                if isinstance(v, dict)
            )
            out.append('<table><tr><th class="l">' + _("party") + f"</th>{head}</tr>{body}</table>")
        return "".join(out)

    def _vertical_costs(self) -> str:
        d = self._dict("data")
        out = ["<h3>" + _("Alignment (private set intersection)") + "</h3>"]
        ids = d.get("ids_per_party")
        rows = [(_("aligned customers"), fmt(d.get("aligned_customers")))]
        if isinstance(ids, dict):
            rows += [
                (_("ids held by {party}").format(party=escape(str(k))), fmt(v))
                for k, v in ids.items()
            ]
        else:
            out.append(missing(_("summary.json lacks data.ids_per_party")))
        out.append(kv_table(rows))
        parties = d.get("parties")
        if isinstance(parties, dict) and parties:
            body = "".join(
                f'<tr><td class="l">{escape(str(k))}</td><td>{fmt(v.get("rows"))}</td>'
                f'<td>{fmt(v.get("features"))}</td><td class="l">'
                f"{fmt(v.get('columns'))}</td></tr>"
                for k, v in parties.items()
                if isinstance(v, dict)
            )
            out.append(
                '<table><tr><th class="l">' + _("party") + "</th><th>" + _("rows") + "</th>"
                "<th>"
                + _("features")
                + '</th><th class="l">'
                + _("columns")
                + f"</th></tr>{body}</table>"
            )
        return "".join(out)

    def _per_round(self, bytes_per_round: Any) -> str:
        unit = _("tree") if self.boost else _("round")
        if self.rounds is None:
            if isinstance(bytes_per_round, list) and bytes_per_round:
                body = "".join(
                    f"<tr><td>{i}</td><td>{fmt(b, 'bytes')}</td></tr>"
                    for i, b in enumerate(bytes_per_round, 1)
                )
                return (
                    missing(self.rounds_error or _("rounds.csv missing"))
                    + f"<table><tr><th>{unit}</th><th>"
                    + _("bytes")
                    + f"</th></tr>{body}</table>"
                )
            return missing(self.rounds_error or _("rounds.csv missing"))
        if not self.rounds:
            return missing(
                _("rounds.csv has no trees") if self.boost else _("rounds.csv has no rounds")
            )
        cols = (
            ("round", unit),
            ("auc", _("test AUC")),
            ("n_replies", _("replies")),
            ("bytes", _("bytes")),
            ("wall_s", _("wall time")),
            # no differential privacy is offered with SecureBoost
            *(() if self.boost else (("epsilon", "ε"),)),
        )
        head = "".join(f"<th>{escape(lbl)}</th>" for _key, lbl in cols)
        body = "".join(
            "<tr>" + "".join(f"<td>{fmt_key(k, r.get(k))}</td>" for k, _lbl in cols) + "</tr>"
            for r in self.rounds
        )
        return f"<table><tr>{head}</tr>{body}</table>"

    # appendix
    def appendix(self) -> str:
        out = ['<section id="appendix"><h2>' + _("Appendix") + "</h2>"]
        path = self.dir / "scenario.toml"
        if path.is_file():
            try:
                text = path.read_text(encoding="utf-8")
                out.append(
                    "<details><summary>"
                    + _("scenario.toml (rerun with <code>fedrisk run scenario.toml</code>)")
                    + f"</summary><pre>{escape(text)}</pre></details>"
                )
            except (OSError, UnicodeDecodeError) as exc:
                out.append(
                    missing(
                        _("{name} could not be read ({error})").format(
                            name="scenario.toml", error=_one_line(exc)
                        )
                    )
                )
        else:
            out.append(
                missing(_("{name} is missing from the run folder").format(name="scenario.toml"))
            )
        if self.kind == "horizontal":
            model, err = self._json("model.json")
            if err is not None or not isinstance(model, dict):
                out.append(
                    missing(err or _("{name} is not a JSON object").format(name="model.json"))
                )
            else:
                names, weights = model.get("feature_names"), model.get("weights")
                if isinstance(names, list) and isinstance(weights, list):
                    pairs = sorted(
                        zip(names, weights), key=lambda p: -abs(p[1]) if _is_num(p[1]) else 0
                    )
                    body = "".join(
                        f'<tr><td class="l">{escape(str(n))}</td><td>{fmt(w)}</td></tr>'
                        for n, w in pairs
                    )
                    out.append(
                        "<details><summary>"
                        + (
                            _(
                                "final model (model.json): coefficients on each "
                                "characteristic's WOE, largest first"
                            )
                            if self.woe
                            else _(
                                "final model (model.json): weights on z-scored features, "
                                "largest first"
                            )
                        )
                        + "</summary><table>"
                        '<tr><th class="l">'
                        + _("feature")
                        + "</th><th>"
                        + _("weight")
                        + f"</th></tr>"
                        f'{body}<tr><td class="l">' + _("intercept") + f"</td>"
                        f"<td>{fmt(model.get('intercept'))}</td></tr></table>"
                        "</details>"
                    )
                else:
                    out.append(missing(_("model.json lacks feature_names or weights")))
        elif self.boost:
            out.append(self.model_folder())
        out.append("</section>")
        return "".join(out)

    def model_folder(self) -> str:
        """SecureBoost: the trees (model/trees.json) and each party's part."""
        trees, err = self._json("model/trees.json")
        if err is not None or not isinstance(trees, dict):
            return missing(err or _("{name} is not a JSON object").format(name="model/trees.json"))
        sources = trees.get("sources")
        sources = [str(x) for x in sources] if isinstance(sources, list) else []
        rows = []
        for name in sources:
            part, err = self._json(f"model/{name}.json")
            splits = part.get("splits") if isinstance(part, dict) else None
            if isinstance(splits, dict):
                rows.append(
                    f'<tr><td class="l">{escape(name)}</td><td>{fmt(len(splits))}</td>'
                    f'<td class="l">model/{escape(name)}.json</td></tr>'
                )
            else:
                rows.append(
                    f'<tr><td class="l">{escape(name)}</td><td>–</td>'
                    f'<td class="l">'
                    f"{escape(err or _('{name} lacks splits').format(name=f'model/{name}.json'))}"
                    "</td></tr>"
                )
        return (
            "<details><summary>"
            + _(
                "the model (model/): trees.json holds the trees (which party and split id "
                "decides each node, and the leaf values); each party's file holds its own "
                "splits (column and threshold)"
            )
            + "</summary>"
            + kv_table(
                [
                    (_("format"), fmt(trees.get("format"))),
                    (_("label holder"), fmt(trees.get("label_holder"))),
                    (_("trees kept"), fmt(trees.get("trees_kept"))),
                    (_("base score (log-odds)"), fmt(trees.get("base_score"))),
                ]
            )
            + '<table><tr><th class="l">'
            + _("party")
            + "</th><th>"
            + _("distinct splits used")
            + "</th>"
            '<th class="l">'
            + _("file")
            + f"</th></tr>{''.join(rows)}</table>"
            + '<p class="note">'
            + _(
                "In a deployment each party keeps its own part: scoring a customer needs every party."
            )
            + "</p></details>"
        )


def riskiest_first(rows: Any) -> Any:
    """calibration.json's reliability rows (written lowest predictions first) riskiest
    first, numbered as deciles like the gains table (1 = highest predicted risk); rows
    that are not all dicts with a mean prediction are left for the table to report."""
    if not isinstance(rows, list) or not rows:
        return rows
    if not all(isinstance(r, dict) and _is_num(r.get("mean_predicted")) for r in rows):
        return rows
    ranked = sorted(rows, key=lambda r: -r["mean_predicted"])
    return [{**r, "decile": i} for i, r in enumerate(ranked, 1)]


def _and(items: list[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    if len(items) <= 1:
        return "".join(items)
    return _("{items} and {last}").format(items=_(", ").join(items[:-1]), last=items[-1])


def _short_label(name: str, b: Mapping[str, Any], hidden: bool, k: int) -> str:
    """A bin's label for a WOE chart: "bin 3" where its owner keeps its bins, a text
    bin's categories without "name in {…}", anything else as written."""
    if hidden:  # drawn on the chart: in its language
        return chart_gettext(N_("bin {n}")).format(n=b.get("bin", k + 1))
    text = str(b.get("label", ""))
    prefix = f"{name} in {{"
    if text.startswith(prefix) and text.endswith("}"):
        return text[len(prefix) : -1]
    return text


def _nested_table(d: Mapping[str, Any]) -> str:
    """A dict as a table; a dict of dicts (per party) as one row per key."""
    if d and all(isinstance(v, dict) for v in d.values()):
        cols: list[str] = []
        for v in d.values():
            cols += [k for k in v if k not in cols]
        head = "".join(f"<th>{label(c)}</th>" for c in cols)
        body = "".join(
            f'<tr><td class="l">{escape(str(k))}</td>'
            + "".join(f"<td>{fmt_value(c, v.get(c))}</td>" for c in cols)
            + "</tr>"
            for k, v in d.items()
        )
        return f'<table><tr><th class="l"></th>{head}</tr>{body}</table>'
    rows = []
    for k, v in d.items():
        if isinstance(v, dict):
            rows.append((label(k), _nested_table(v)))
        else:
            rows.append((label(k), fmt_value(k, v)))
    return kv_table(rows)


# --------------------------------------------------------------------------- matrix


def _party_order(names: Iterable[str], first: list[str]) -> list[str]:
    """``first`` (the server or label holder) first, then the others in natural order
    (bank_2 before bank_10)."""

    def key(n: str):
        return (
            first.index(n) if n in first else len(first),
            [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", n)],
        )

    return sorted(set(names), key=key)


def who_saw_what_matrix(
    transcript: list[dict[str, Any]],
    aliases: Mapping[str, str] | None = None,
    first: list[str] | None = None,
) -> str:
    """The sender × receiver table (HTML) for transcript rows, then every link's messages;
    ``aliases`` renames parties in the headers (the vertical run's server is the
    label-holding bank) and ``first`` are the parties listed first.

    The matrix stays compact for any number of parties: one short verdict per cell
    (yes / no / ctl, coloured), the receivers' names written upwards, the messages of a
    cell in its tooltip; the table under it lists every link's messages in full."""
    aliases, first = aliases or {}, first or ["server"]
    cells: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for row in transcript:
        sender, receiver, what = str(row["sender"]), str(row["receiver"]), str(row["what"])
        kinds = cells.setdefault((sender, receiver), {})
        k = kinds.setdefault(what, {"count": 0, "bytes": 0, "protection": set(), "readable": set()})
        k["count"] += 1
        size = row.get("bytes")
        k["bytes"] += int(size) if _is_num(size) else 0
        k["protection"].add(str(row.get("protection", "?")))
        readable = row.get("readable_by_receiver")
        k["readable"].add(None if readable is None else bool(readable))
    senders = _party_order((s for s, _ in cells), first)
    receivers = _party_order((r for _, r in cells), first)

    def name(party: str) -> str:
        return escape(aliases.get(party, party))

    head = "".join(
        '<th class="rot"><span>' + _("to {party}").format(party=name(r)) + "</span></th>"
        for r in receivers
    )
    body, links = [], []
    for s in senders:
        tds = []
        for r in receivers:
            kinds = cells.get((s, r))
            if not kinds:
                tds.append('<td class="empty" title="' + escape(_("no messages")) + '"></td>')
                continue
            cell = _link(kinds)
            tip = f"{aliases.get(s, s)} → {aliases.get(r, r)}: {cell.verdict}; " + "; ".join(
                cell.plain
            )
            tds.append(
                f'<td class="{cell.cls}" title="{escape(tip)}">{cell.mark}</td>',
            )
            links.append(
                f'<tr><td class="l">{name(s)}</td><td class="l">{name(r)}</td>'
                f'<td class="l {cell.cls}">{escape(cell.verdict)}</td>'
                f'<td class="l">{"".join(cell.lines)}</td><td>{fmt(cell.total, "bytes")}</td></tr>'
            )
        body.append(
            '<tr><th class="l">'
            + _("from {party}").format(party=name(s))
            + f"</th>{''.join(tds)}</tr>"
        )
    matrix = (
        '<div class="scroll"><table class="matrix"><tr><th class="corner">'
        + _("can the receiver read it?<br>sender ↓ / receiver →")
        + f"</th>{head}</tr>{''.join(body)}</table></div>"
    )
    detail = (
        '<table class="links"><tr><th class="l">'
        + _("from")
        + '</th><th class="l">'
        + _("to")
        + "</th>"
        '<th class="l">' + _("receiver") + "</th>"
        '<th class="l">' + _("messages (kind ×count, bytes, protection)") + "</th>"
        "<th>" + _("total") + f"</th></tr>{''.join(links)}</table>"
    )
    opened = " open" if len(links) <= 12 else ""
    return (
        matrix
        + f"<details{opened}><summary>"
        + _("The messages on each of the {n} links").format(n=fmt(len(links)))
        + f"</summary>{detail}</details>"
    )


class _Cell:
    """One sender → receiver link of the matrix: colour, verdict, message lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.plain: list[str] = []
        self.total = 0
        self.cls = self.mark = self.verdict = ""


def _link(kinds: dict[str, dict[str, Any]]) -> _Cell:
    cell, data_readable, data_kinds = _Cell(), False, 0
    for what in sorted(kinds):
        k = kinds[what]
        cell.total += k["bytes"]
        control = what in CONTROL_MESSAGES
        readable = k["readable"]
        if control:
            word, cls = _("control"), "ctl"
        elif True in readable or None in readable:
            word, cls = _("readable"), "ro"
        else:
            word, cls = _("unreadable"), "no"
        tag = f'<span class="tag {cls}">{word}</span>'
        if not control:
            data_kinds += 1
            data_readable |= True in readable or None in readable
        prot = ", ".join(sorted(k["protection"]))
        size = fmt(k["bytes"], "bytes")
        cell.lines.append(
            f'<span class="msg"><span class="w">{escape(what)}</span> ×{fmt(k["count"])}, '
            f"{size}, {escape(prot)}{tag}</span>"
        )
        cell.plain.append(f"{what} ×{fmt(k['count'])}, {size}, {prot}, {word}")
    # the mark (yes / no / ctl) is the legend's key: translated with it
    if data_kinds == 0:
        cell.cls, cell.mark, cell.verdict = "control", _("ctl"), _("control only")
    elif data_readable:
        cell.cls, cell.mark, cell.verdict = "amber", _("yes"), _("can read data")
    else:
        cell.cls, cell.mark, cell.verdict = "green", _("no"), _("can read none of the data")
    return cell


# --------------------------------------------------------------------------- ε chart


def _plot_epsilon(points: list[tuple[int, float]], privacy: dict[str, Any], scenario: str) -> bytes:
    # start-up time: matplotlib loads only for the ε chart (the report's other parts
    # are text)
    from matplotlib.ticker import MaxNLocator  # start-up time, as above

    from fedrisk.evaluation.plots import DPI, new_figure

    # the chart's words through chart_gettext: English where no font draws Chinese
    with chart_style():
        fig, ax = new_figure()
        try:
            xs, ys = zip(*points)
            ax.plot(
                xs,
                ys,
                marker="o",
                markersize=3,
                color="#7b1fa2",
                label=chart_gettext(N_("accounted ε")),
            )
            final = privacy.get("epsilon")
            if _is_num(final) and math.isfinite(final):
                ax.axhline(
                    final,
                    color="#7b1fa2",
                    linestyle=":",
                    linewidth=1,
                    label=chart_gettext(N_("final ε = {epsilon}")).format(
                        epsilon=fmt(final, "epsilon")
                    ),
                )
            ax.set_xlabel(chart_gettext(N_("round")))
            ax.set_ylabel("ε")
            delta = privacy.get("delta")
            if _is_num(delta):
                title = chart_gettext(N_("{scenario}: privacy spent per round (δ = {delta})"))
            else:
                title = chart_gettext(N_("{scenario}: privacy spent per round"))
            ax.set_title(title.format(scenario=scenario, delta=fmt(delta)))
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylim(bottom=0)
            ax.grid(alpha=0.3)
            ax.legend(loc="lower right")
            fig.tight_layout()
            buf = io.BytesIO()
            fig.savefig(buf, dpi=DPI, format="png")
        finally:
            fig.clear()  # frees the artists at once
    return buf.getvalue()
