"""``fedrisk report DIR --lang zh``: the whole page, and its charts, in Chinese.

The horizontal and vertical runs of test_report (and a tiny SecureBoost run) are
rendered in Chinese through the CLI: the page says ``lang="zh-CN"``, its headings and
prose are Chinese, every image loads in headless Chromium, and the charts draw Chinese
glyphs (never boxes): no "Glyph missing" warning while drawing, and the chart font draws
different Chinese strings differently. ``FEDRISK_LANG=zh`` does the same; without either
the page stays English. Without a font for Chinese, charts keep English labels with one
warning naming the package to install, and the prose is still Chinese.
"""

import base64
import io
import itertools
import json
import re
import warnings
from html import escape
from types import SimpleNamespace

import matplotlib.image as mpimg
import numpy as np
import pytest

from fedrisk.cli import main
from fedrisk.evaluation import fonts
from fedrisk.evaluation.report import render_report
from fedrisk.i18n import clauses, language, translate_clauses, using_language
from fedrisk.runs.scorecard import add_binning_knowledge
from fedrisk.runs.summary import THREAT_MODEL
from tests.evaluation import test_report as base

ZH_HEADINGS = {
    "horizontal": (
        "留出测试集上的模型质量",
        "各轮测试 AUC",
        "按评分十分位的增益与校准",
        "隐私",
        "谁看到了什么",
        "开销",
        "附录",
    ),
    "vertical": (
        "留出测试集上的模型质量",
        "各 epoch 的测试 AUC",
        "隐私",
        "谁看到了什么",
        "样本对齐（隐私集合求交）",
    ),
}
EN_HEADINGS = (
    "Model quality on the held-out test rows",
    "Gains by score decile and calibration",
    "Who saw what",
    "Privacy</h2>",
    "Costs</h2>",
    "Appendix",
)
RUN_PNGS = ("auc_per_round.png", "gains.png", "calibration.png")  # in page order
INSTALL = "apt-get install fonts-wqy-microhei"


def cjk_font() -> str:
    family = fonts.chart_font()
    if family is None:
        pytest.skip(f"no font with Chinese glyphs ({INSTALL}); the chart checks need one")
    return family


def visible_text(html: str) -> str:
    text = re.sub(r"<(style|script|pre)\b.*?</\1>", " ", html, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"data:image/png;base64,\S+", " ", text)


def cjk_share(text: str) -> float:
    """Chinese characters among the letters of ``text``."""
    cjk = sum(1 for c in text if "\u4e00" <= c <= "\u9fff")
    latin = sum(1 for c in text if c.isascii() and c.isalpha())
    return cjk / max(1, cjk + latin)


def cli(args: list[str]) -> int:
    """``fedrisk ARGS`` in this process; the language it sets is undone after."""
    with using_language(None):
        return main(args)


def pngs(html: str) -> list[bytes]:
    return [base64.b64decode(s) for s in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


@pytest.fixture(scope="module")
def zh_reports(runs, tmp_path_factory):
    """Each run's report rendered in Chinese through the CLI, with chart warnings kept."""
    out, caught = {}, {}
    tmp = tmp_path_factory.mktemp("zh")
    for kind, run in runs.items():
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            assert (
                cli(["report", str(run), "--out", str(tmp / f"{kind}.html"), "--lang", "zh"]) == 0
            )
        assert language() == "en"  # --lang does not leak into the next command
        out[kind] = tmp / f"{kind}.html"
        caught[kind] = [str(w.message) for w in seen]
    return out, caught


# --------------------------------------------------------------------------- the page


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["horizontal", "vertical"])
def test_cli_lang_zh_writes_a_chinese_page(zh_reports, kind):
    html = zh_reports[0][kind].read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in html
    assert '"WenQuanYi Micro Hei"' in html and '"Microsoft YaHei"' in html  # CJK fallbacks
    headings = re.findall(r"<h[1-4][^>]*>(.*?)</h[1-4]>", html)
    for heading in ZH_HEADINGS[kind]:
        assert any(heading in h for h in headings), (heading, headings)
    for english in EN_HEADINGS:
        assert english not in html, english
    text = visible_text(html)
    assert cjk_share(text) > 0.35, cjk_share(text)
    for prose in ("测试客户的实际违约率", "跨越参与方边界的每一条消息", "自成一体"):
        assert prose in text, prose
    assert "vs centralised" not in text and "is missing from the run folder" not in text
    # data stays as it is: party names and message kinds
    assert "bank_1" in text or "provider" in text
    assert len(pngs(html)) == 3


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["horizontal", "vertical"])
def test_zh_images_load_in_headless_chromium(zh_reports, tmp_path, kind):
    binary = base.chromium()
    report = zh_reports[0][kind]
    dom = base.finish(
        base.start_chromium(binary, tmp_path / "p", "--dump-dom", report.resolve().as_uri())
    )
    n_images = len(pngs(report.read_text(encoding="utf-8")))
    assert n_images == 3
    loaded = re.search(r'<body\b[^>]*\bdata-images-loaded="(\d+)"', dom)
    assert loaded, "the on-load script did not run"
    assert int(loaded.group(1)) == n_images  # complete and naturalWidth > 0
    assert 'lang="zh-CN"' in dom


# --------------------------------------------------------------------------- the charts


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["horizontal", "vertical"])
def test_zh_charts_are_redrawn_with_chinese_glyphs(runs, zh_reports, kind):
    cjk_font()
    assert not [m for m in zh_reports[1][kind] if "Glyph" in m or "no font" in m]
    html = zh_reports[0][kind].read_text(encoding="utf-8")
    for drawn, name in zip(pngs(html), RUN_PNGS):
        english = (runs[kind] / name).read_bytes()
        assert drawn != english, f"{name} was not drawn again in Chinese"
        a = mpimg.imread(io.BytesIO(drawn), format="png")
        b = mpimg.imread(io.BytesIO(english), format="png")
        assert a.shape == b.shape  # the same chart, only its words differ


@pytest.mark.slow
def test_charts_the_report_draws_raise_no_glyph_warning(runs, tmp_path):
    cjk_font()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*Glyph.*missing")
        warnings.filterwarnings("error", message="no font with Chinese glyphs")
        render_report(runs["horizontal"], tmp_path / "r.html", lang="zh")
    assert language() == "en"


def draw_text(text: str) -> np.ndarray:
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(2.0, 0.6), dpi=100)
    try:
        fig.text(0.05, 0.3, text, fontsize=16)
        fig.canvas.draw()
        return np.asarray(fig.canvas.buffer_rgba()).copy()
    finally:
        plt.close(fig)


def test_the_chart_font_draws_chinese_not_boxes():
    """Boxes (a font without the glyphs) draw any two Chinese strings alike; the chart
    style draws them differently, and without a "Glyph missing" warning."""
    cjk_font()
    one, two = "违约概率", "隐私预算"
    import matplotlib

    with matplotlib.rc_context({"font.family": ["DejaVu Sans"]}), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.array_equal(draw_text(one), draw_text(two)), "boxes should look alike"
    with using_language("zh"), fonts.chart_style(), warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*Glyph.*missing")
        a, b = draw_text(one), draw_text(two)
    assert not np.array_equal(a, b)
    assert (a[..., :3] < 128).any()  # something was drawn


# --------------------------------------------------------------------------- language


@pytest.mark.slow
def test_fedrisk_lang_env_gives_the_same_page_and_none_gives_english(
    runs,
    zh_reports,
    tmp_path,
    monkeypatch,
):
    run = runs["horizontal"]
    monkeypatch.setenv("FEDRISK_LANG", "zh")
    assert cli(["report", str(run), "--out", str(tmp_path / "env.html")]) == 0
    zh = zh_reports[0]["horizontal"].read_text(encoding="utf-8")
    assert (tmp_path / "env.html").read_text(encoding="utf-8") == zh
    monkeypatch.delenv("FEDRISK_LANG")
    assert cli(["report", str(run), "--out", str(tmp_path / "en.html")]) == 0
    en = (tmp_path / "en.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in en and "WenQuanYi" not in en
    assert cjk_share(visible_text(en)) == 0
    for english in EN_HEADINGS:
        assert english in en, english
    # the library default is the same English page
    assert render_report(run, tmp_path / "lib.html").read_text(encoding="utf-8") == en
    # the English page embeds the run's own charts, as drawn
    assert pngs(en) == [(run / n).read_bytes() for n in RUN_PNGS]


@pytest.mark.slow
def test_without_a_cjk_font_charts_keep_english_and_one_warning(runs, tmp_path, monkeypatch):
    fonts.forget_font()  # the warning is given once per process
    monkeypatch.setattr(fonts, "chart_font", lambda: None)
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            out = render_report(runs["horizontal"], tmp_path / "r.html", lang="zh")
    finally:
        monkeypatch.undo()
        fonts.forget_font()
    told = [str(w.message) for w in seen if "no font with Chinese glyphs" in str(w.message)]
    assert len(told) == 1 and "fonts-wqy-microhei" in told[0]
    assert not [w for w in seen if "Glyph" in str(w.message)]
    html = out.read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in html and "留出测试集上的模型质量" in html
    # the run's English charts, not redrawn
    assert pngs(html) == [(runs["horizontal"] / n).read_bytes() for n in RUN_PNGS]


# --------------------------------------------------------------------------- summary prose
#
# summary.json's prose (who learns what, the threat model, the alignment) stays English;
# the Chinese page translates it clause by clause (fedrisk.i18n.translate_clauses). Every
# variant each source site writes is translated with no clause left over, so a clause
# added at a source site without a catalog entry fails here.


def _scenario(**sections) -> SimpleNamespace:
    return SimpleNamespace(**{k: SimpleNamespace(**v) for k, v in sections.items()})


def _horizontal_prose() -> dict[str, str]:
    from fedrisk.horizontal.aggregation import paillier, plain, secagg
    from fedrisk.horizontal.binning.protocol import WHO_LEARNS_WHAT as BINNING

    out: dict[str, str] = {"threat_model": THREAT_MODEL}
    out |= {f"plain {k}": v for k, v in plain.summary(None)["who_learns_what"].items()}
    for banks in (3, 20):
        job = SimpleNamespace(
            scenario=_scenario(privacy={"secagg_threshold": None, "update_range": 8.0}),
            party_names=tuple(f"bank_{i}" for i in range(banks)),
        )
        said = secagg.summary(job)["who_learns_what"]
        out |= {f"secagg {banks} {k}": v for k, v in said.items()}
    codec = SimpleNamespace(clip=8.0, frac_bits=40, slot_bytes=8, max_weight=1024)
    layout = SimpleNamespace(codec=codec, packer=SimpleNamespace(slots_per_int=15), n_ciphertexts=2)
    for key in ("shared", "threshold"):
        job = SimpleNamespace(
            scenario=_scenario(privacy={"key": key, "key_bits": 1024}),
            party_names=tuple(f"bank_{i}" for i in range(5)),
            paillier=layout,
        )
        said = paillier.summary(job)
        out |= {f"paillier {key} {k}": v for k, v in said["who_learns_what"].items()}
        for k in ("resists", "banks_check_aggregates", "key_holders"):
            out[f"paillier {key} {k}"] = said["paillier"][k]
    binning_said: dict[str, str] = {}
    for mode, said in BINNING.items():
        before = {"aggregator": "the global model each round"}
        knows = {"who_learns_what": dict(before)}
        add_binning_knowledge({"privacy": knows}, said)
        binning_said |= {f"scorecard {mode} {k}": v for k, v in knows["who_learns_what"].items()}
    return out | binning_said


def _vertical_prose() -> dict[str, str]:
    from fedrisk.runs import secureboost, sharing, vertical
    from fedrisk.vertical.binning.protocol import WHO_LEARNS_WHAT as BINNING

    out = {"alignment": vertical.ALIGNMENT, "threat_model": THREAT_MODEL}
    for cal in ("none", "intercept", "platt"):
        said = vertical.who_learns_what(_scenario(model={"calibration": cal}), "bank")
        out |= {f"paillier {cal} {k}": v for k, v in said.items()}
    for encrypted, first in itertools.product((True, False), repeat=2):
        s = _scenario(secureboost={"encrypted": encrypted, "bank_first_tree": first})
        said = secureboost.who_learns_what(s, "bank")
        out |= {f"secureboost {encrypted} {first} {k}": v for k, v in said.items()}
    for triples, reveal in itertools.product(("dealer", "paillier"), ("own", "none")):
        s = _scenario(privacy={"triples": triples, "reveal": reveal})
        said = sharing.who_learns_what(s, "bank")
        out |= {f"sharing {triples} {reveal} {k}": v for k, v in said.items()}
    knows = {
        "who_learns_what": vertical.who_learns_what(
            _scenario(model={"calibration": "platt"}), "bank"
        )
    }
    add_binning_knowledge({"privacy": knows}, BINNING)
    out |= {f"scorecard {k}": v for k, v in knows["who_learns_what"].items()}
    return out


@pytest.mark.parametrize(
    "prose", [_horizontal_prose, _vertical_prose], ids=["horizontal", "vertical"]
)
def test_every_variant_of_the_summary_prose_has_a_chinese_translation(prose):
    texts = prose()
    assert len(texts) > 10
    with using_language("zh"):
        for where, text in texts.items():
            zh, missed = translate_clauses(text)
            assert missed == [], (where, missed)
            assert cjk_share(zh) > 0.5, (where, zh)


def test_translate_clauses_keeps_what_it_cannot_translate_and_says_so():
    known = "semi-honest parties: they follow the protocol and may pool what they see"
    new = "a clause nobody has translated (yet; it has a semicolon inside)"
    text = f"{known}; {new}; see who_learns_what"
    assert clauses(text) == [known, new, "see who_learns_what"]  # not cut inside brackets
    assert translate_clauses(text) == (text, [])  # English: as written
    with using_language("zh"):
        zh, missed = translate_clauses(text)
        assert missed == [new]
        assert zh == f"半诚实参与方：遵守协议，但可能汇集各自看到的信息；{new}；见“谁获知了什么”"
        # a template: the numbers are taken from the clause, the rest is translated
        zh, missed = translate_clauses(
            "the weighted sum of the banks' updates each round (so the global model), not one "
            "bank's update unless it colludes with enough of that bank's neighbours to unmask "
            "it (7 of 10 shares)"
        )
        assert missed == [] and "10 份秘密分享中的 7 份" in zh
        # "binning: {clause}": the clause inside is translated in turn, or reported
        zh, missed = translate_clauses(f"binning: {new}")
        assert zh == f"分箱阶段：{new}" and missed == [new]
        assert translate_clauses("") == ("", [])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["horizontal", "vertical"])
def test_zh_privacy_section_shows_the_summary_prose_in_chinese(runs, zh_reports, kind):
    summary = json.loads((runs[kind] / "summary.json").read_text())
    privacy = summary["privacy"]
    html = zh_reports[0][kind].read_text(encoding="utf-8")
    section = html.split('<section id="privacy">', 1)[1].split("</section>", 1)[0]
    texts = dict(privacy["who_learns_what"])
    texts |= {k: privacy[k] for k in ("threat_model", "alignment") if k in privacy}
    attacks = summary.get("attacks", {})
    if "membership_attack" in attacks:
        texts["membership_attack"] = attacks["membership_attack"]
    if "label_leakage" in attacks:
        texts["attack"] = attacks["label_leakage"]["attack"]
    assert "threat_model" in texts and len(privacy["who_learns_what"]) >= 2
    if kind == "vertical":
        assert "alignment" in texts
    with using_language("zh"):
        for key, text in texts.items():
            zh, missed = translate_clauses(text)
            assert missed == [], (key, missed)
            assert escape(zh) in section, (key, zh)
            assert escape(text) not in section, key  # the English sentence is gone
    # group names are translated, party names stay as they are
    assert ("聚合方" in section) if kind == "horizontal" else ("各数据方" in section)
