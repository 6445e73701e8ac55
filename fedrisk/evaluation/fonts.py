"""A font with Chinese glyphs for charts drawn in Chinese, or English labels without one.

matplotlib's default font (DejaVu Sans) has no CJK glyphs: Chinese labels would come out
as empty boxes. When the language is Chinese, charts look for a CJK font in this order:

1. ``FEDRISK_CJK_FONT``: the path of a .ttf/.otf/.ttc file the user names;
2. a font matplotlib already knows under a family name below (macOS and Windows ship
   PingFang SC / Microsoft YaHei; Linux distributions Noto Sans CJK or WenQuanYi);
3. a system font file whose name says CJK (matplotlib's font cache may predate it).

Each candidate must actually hold the glyphs of a probe string. With none found, charts
keep their English labels (never boxes) and one warning says which package provides a
font: ``fonts-noto-cjk`` or ``fonts-wqy-microhei`` on Debian/Ubuntu.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from fedrisk.i18n import language, report_gettext

__all__ = [
    "CJK_FAMILIES",
    "FONT_ENV",
    "NO_FONT_WARNING",
    "PROBE",
    "chart_font",
    "chart_gettext",
    "charts_in_chinese",
    "chart_style",
    "forget_font",
    "has_glyphs",
]

FONT_ENV = "FEDRISK_CJK_FONT"
#: families tried in order (simplified-Chinese forms first)
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "PingFang SC",
    "Hiragino Sans GB",
    "Microsoft YaHei",
    "SimHei",
    "Heiti SC",
    "Droid Sans Fallback",
    "AR PL UMing CN",
    "Noto Sans CJK JP",
)
#: characters every chart in Chinese uses; a font must draw them all
PROBE = "轮次违约率风险模型隐私预算"
NO_FONT_WARNING = (
    "no font with Chinese glyphs found: charts keep English labels. Install one "
    "(Debian/Ubuntu: apt install fonts-noto-cjk or fonts-wqy-microhei) or set "
    f"{FONT_ENV}=/path/to/font.ttf"
)
_FILE_HINT = re.compile(
    r"cjk|wqy|sourcehan|source-han|droidsansfallback|uming|ukai|pingfang|msyh|yahei|simhei|"
    r"simsun|hiragino|notosanssc|notoserifsc",
    re.IGNORECASE,
)


def has_glyphs(path: str | Path, text: str = PROBE) -> bool:
    """Whether the font file at ``path`` draws every character of ``text``."""
    from matplotlib.ft2font import FT2Font  # start-up time: matplotlib only when drawing

    try:
        font = FT2Font(str(path))
    except (OSError, RuntimeError, ValueError):
        return False
    return all(font.get_char_index(ord(ch)) for ch in text if not ch.isspace())


def _register(path: str) -> str | None:
    from matplotlib import font_manager  # start-up time, as above

    if not has_glyphs(path):
        return None
    font_manager.fontManager.addfont(path)
    return font_manager.FontProperties(fname=path).get_name()


@lru_cache(maxsize=1)
def chart_font() -> str | None:
    """The family name of a font with Chinese glyphs, registered with matplotlib, or None."""
    from matplotlib import font_manager  # start-up time, as above

    named = os.environ.get(FONT_ENV, "").strip()
    if named:
        family = _register(named) if Path(named).is_file() else None
        if family:
            return family
        warnings.warn(
            f"{FONT_ENV}={named}: not a font file with Chinese glyphs; looking elsewhere",
            stacklevel=2,
        )
    known = {f.name: f.fname for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in known and has_glyphs(known[family]):
            return family
    for path in sorted(font_manager.findSystemFonts()):
        if _FILE_HINT.search(Path(path).name):
            family = _register(path)
            if family:
                return family
    return None


def charts_in_chinese() -> bool:
    """Whether charts are drawn in Chinese now: the language is Chinese and a font can
    draw it (without one, the warning is given once)."""
    if language() != "zh":
        return False
    if chart_font() is None:
        _warn_once()
        return False
    return True


@lru_cache(maxsize=1)
def _warn_once() -> None:
    warnings.warn(NO_FONT_WARNING, stacklevel=3)


def forget_font() -> None:
    """Look for the font again, and warn again if there is none (after installing one
    in a long session, or in tests)."""
    chart_font.cache_clear()
    _warn_once.cache_clear()


def chart_gettext(message: str) -> str:
    """``message`` translated for a chart: in Chinese only when a CJK font can draw it."""
    return report_gettext(message) if charts_in_chinese() else message


@contextmanager
def chart_style() -> Iterator[None]:
    """matplotlib settings for the charts drawn inside: with Chinese labels, DejaVu Sans
    first (Latin text unchanged) and the CJK font as per-glyph fallback."""
    if not charts_in_chinese():
        yield
        return
    import matplotlib  # start-up time, as above

    family = chart_font()
    # the families themselves, not the generic "sans-serif": matplotlib falls back glyph
    # by glyph only across font.family, and resolves a generic name to its first font
    with matplotlib.rc_context({"font.family": ["DejaVu Sans", family]}):
        yield
