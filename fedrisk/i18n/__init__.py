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
    "N_",
    "language",
    "set_language",
    "resolve_language",
    "using_language",
    "catalog",
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


@cache
def catalog(lang: str) -> _gettext.NullTranslations:
    """The chained catalogs of ``lang`` (English: the identity)."""
    locale = LANGUAGES[_normalise(lang, "language")]
    if locale is None:
        return _gettext.NullTranslations()
    chain: _gettext.NullTranslations | None = None
    for domain in CATALOGS:
        # fallback=False: a catalog missing from an installed package is a packaging bug
        found = _gettext.translation(domain, localedir=LOCALE_DIR, languages=[locale])
        if chain is None:
            chain = found
        else:
            chain.add_fallback(found)
    assert chain is not None
    return chain


def gettext(message: str) -> str:
    """``message`` in the language in use (itself when there is no translation)."""
    if _current == "en":
        return message
    return catalog(_current).gettext(message)


def N_(message: str) -> str:  # noqa: N802 - gettext's own name for "mark, translate later"
    """Mark ``message`` for the catalogs without translating it now (module constants
    are translated where they are shown, after the language is known)."""
    return message
