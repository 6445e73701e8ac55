"""The language fedrisk speaks to people: English by default, Chinese (简体中文) on request.

Text shown to people (the demo's narration, the run's console summary, the report's
prose, chart labels) goes through :func:`gettext` (imported as ``_``) and is looked up in
standard GNU gettext message catalogs under ``fedrisk/i18n/locale/<lang>/LC_MESSAGES``:
one catalog per area (``console`` for the command line and the demo, ``report`` for the
HTML report and its charts), chained so one lookup searches them all. English is the
source language, so English needs no catalog.

The language comes from ``--lang`` on the command line, else ``FEDRISK_LANG``, else
English; the locale of the machine (``LANG``) is deliberately not read, so a Chinese
desktop still gets the documented English output unless asked. Machine-readable files
(summary.json, transcript.jsonl, CSV columns) never change with the language.
"""

from __future__ import annotations

import gettext as _gettext
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from fedrisk.errors import InputError

__all__ = [
    "LANGUAGES",
    "CATALOGS",
    "ENV",
    "LOCALE_DIR",
    "gettext",
    "report_gettext",
    "N_",
    "language",
    "set_language",
    "resolve_language",
    "using_language",
    "catalog",
    "CLAUSE_SEP",
    "clauses",
    "translate_clauses",
]

#: the languages fedrisk speaks: code -> the gettext locale its catalogs are filed under
LANGUAGES = {"en": None, "zh": "zh_CN"}
#: one catalog (gettext domain) per area, searched in this order
CATALOGS = ("console", "report")
#: the environment variable that picks the language when --lang is not given
ENV = "FEDRISK_LANG"
LOCALE_DIR = Path(__file__).parent / "locale"

# spellings people and locales use for the same two languages
_ALIASES = {
    "en": "en",
    "en_us": "en",
    "en-us": "en",
    "en_gb": "en",
    "c": "en",
    "zh": "zh",
    "zh_cn": "zh",
    "zh-cn": "zh",
    "zh-hans": "zh",
    "zh_hans": "zh",
    "cn": "zh",
}

_current = "en"


def _normalise(value: str, where: str) -> str:
    key = value.strip().split(".")[0].lower()  # zh_CN.UTF-8 -> zh_cn
    if key in _ALIASES:
        return _ALIASES[key]
    allowed = ", ".join(LANGUAGES)
    raise InputError(f"{where}: {value!r} is not a language fedrisk speaks; allowed: {allowed}")


def resolve_language(cli_value: str | None = None) -> str:
    """The language to use: ``--lang`` if given, else ``FEDRISK_LANG``, else English.
    A value fedrisk does not speak is bad input (exit 2) naming where it came from."""
    if cli_value:
        return _normalise(cli_value, "--lang")
    env = os.environ.get(ENV, "").strip()
    return _normalise(env, ENV) if env else "en"


def set_language(lang: str) -> str:
    """Speak ``lang`` ("en", "zh" or an alias) from now on; returns the code set."""
    global _current
    _current = _normalise(lang, "language")
    return _current


def language() -> str:
    """The code of the language in use ("en" or "zh")."""
    return _current


@contextmanager
def using_language(lang: str | None) -> Iterator[str]:
    """Speak ``lang`` inside the block (None: keep the current one), then switch back:
    a library call such as ``render_report(..., lang="zh")`` leaves no global change."""
    global _current
    before = _current
    try:
        yield set_language(lang) if lang else _current
    finally:
        _current = before


class _Catalog(_gettext.GNUTranslations):
    """A compiled catalog that can list its messages (for matching clause templates)."""

    def messages(self) -> list[str]:
        return [k for k in self._catalog if isinstance(k, str) and k]


def _catalogs(locale: str, first: str) -> list[_Catalog]:
    """Every area's compiled catalog for ``locale``, ``first`` first."""
    # fallback=False: a catalog missing from an installed package is a packaging bug
    return [
        _gettext.translation(domain, localedir=LOCALE_DIR, languages=[locale], class_=_Catalog)
        for domain in sorted(CATALOGS, key=lambda d: d != first)
    ]


@cache
def catalog(lang: str, first: str = CATALOGS[0]) -> _gettext.NullTranslations:
    """The chained catalogs of ``lang`` (English: the identity), ``first`` searched first:
    the same English may read differently in two areas ("dropped": a bank that dropped
    out of a round in the console, a characteristic left out of a scorecard in the
    report), and each area's own wording wins there."""
    locale = LANGUAGES[_normalise(lang, "language")]
    if locale is None:
        return _gettext.NullTranslations()
    chain, *rest = _catalogs(locale, first)
    for found in rest:
        chain.add_fallback(found)
    return chain


def _translated(message: str, first: str) -> str:
    if _current == "en":
        return message
    return catalog(_current, first).gettext(message)


def gettext(message: str) -> str:
    """``message`` in the language in use (itself when there is no translation); the
    console's wording first."""
    return _translated(message, "console")


def report_gettext(message: str) -> str:
    """:func:`gettext` with the report's wording first (the report and its charts)."""
    return _translated(message, "report")


def N_(message: str) -> str:  # noqa: N802 - gettext's own name for "mark, translate later"
    """Mark ``message`` for the catalogs without translating it now (module constants
    are translated where they are shown, after the language is known)."""
    return message


#: where prose written for machines (summary.json's ``who_learns_what``, threat models) is
#: cut into clauses: "; " outside brackets; the Chinese page joins them with "；"
CLAUSE_SEP = "; "
_ZH_SEP = "；"
#: a template's placeholder: ``{clause}`` stands for a clause (translated in turn), any
#: other for one token such as a number (shown as written)
_FIELD = re.compile(r"\{([A-Za-z_]\w*)\}")
_OPEN, _CLOSE = "([", ")]"


def clauses(text: str, sep: str = CLAUSE_SEP) -> list[str]:
    """``text`` cut at ``sep`` where no bracket is open: "a (b; c); d" -> ["a (b; c)", "d"]."""
    out, depth, start, i = [], 0, 0, 0
    while i < len(text):
        c = text[i]
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth = max(0, depth - 1)
        elif depth == 0 and text.startswith(sep, i):
            out.append(text[start:i])
            start = i = i + len(sep)
            continue
        i += 1
    out.append(text[start:])
    return out


@cache
def _templates(lang: str) -> tuple[tuple[re.Pattern[str], str], ...]:
    """``lang``'s catalog messages with ``{placeholders}``, as patterns matching a whole
    clause: how a clause that interpolates a value (a count) finds its translation."""
    found: list[tuple[re.Pattern[str], str]] = []
    for cat in _catalogs(LANGUAGES[lang], CATALOGS[0]):
        for msgid in cat.messages():
            if "{{" in msgid or not _FIELD.search(msgid):
                continue
            parts, pos, seen = [], 0, set()
            for m in _FIELD.finditer(msgid):
                parts.append(re.escape(msgid[pos : m.start()]))
                name = m.group(1)
                if name in seen:  # a repeated field must repeat its value
                    parts.append(f"(?P={name})")
                else:
                    seen.add(name)
                    parts.append(f"(?P<{name}>.+)" if name == "clause" else rf"(?P<{name}>[^\s;]+)")
                pos = m.end()
            parts.append(re.escape(msgid[pos:]))
            found.append((re.compile("".join(parts)), msgid))
    return tuple(found)


def _clause(text: str, missed: list[str]) -> str:
    if not text.strip():  # gettext("") is the catalog's header
        return text
    translated = report_gettext(text)
    if translated != text:
        return translated
    for pattern, msgid in _templates(_current):
        m = pattern.fullmatch(text)
        if m is None:
            continue
        values = m.groupdict()
        if "clause" in values:
            values["clause"] = _clause(values["clause"], missed)
        return report_gettext(msgid).format(**values)
    missed.append(text)
    return text


def translate_clauses(text: str, sep: str = CLAUSE_SEP) -> tuple[str, list[str]]:
    """``text`` (English prose written for machines, such as a party's line of
    summary.json's ``who_learns_what``) in the language in use, clause by clause (see
    :func:`clauses`), and the clauses that have no translation: those stay English,
    never dropped. A clause is looked up as it stands, else against the catalogs'
    templates (``"... ({threshold} of {shares} shares)"``, ``"binning: {clause}"``)."""
    if _current == "en":
        return text, []
    missed: list[str] = []
    out = _ZH_SEP.join(_clause(c, missed) for c in clauses(text, sep))
    return out, missed
