"""Maintain the message catalogs (a developer's tool; needs Babel, from the dev extra).

    python -m fedrisk.i18n.catalogs update [AREA]   # re-extract marked strings into the .po
    python -m fedrisk.i18n.catalogs compile [AREA]  # .po -> .mo (the files gettext reads)
    python -m fedrisk.i18n.catalogs check           # untranslated, stale or mismatched entries

Strings are marked in code with ``_(...)`` (``from fedrisk.i18n import gettext as _``) or
``N_(...)``; the report's area is ``fedrisk/evaluation``, everything else is ``console``.
A translation must keep the message's ``{placeholders}``: ``check`` says where it does not.
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po, write_po

from fedrisk.i18n import CATALOGS, LANGUAGES, LOCALE_DIR

__all__ = ["area_of", "extract", "po_path", "mo_path", "problems", "update", "compile_all"]

PACKAGE = Path(__file__).resolve().parents[1]
KEYWORDS = {"_": None, "N_": None, "gettext": None, "report_gettext": None}
#: {name} and {name:spec} fields of str.format
FIELD = re.compile(r"(?<!\{)\{([A-Za-z_][\w.\[\]]*)(?:![rsa])?(?::[^{}]*)?\}")


def area_of(path: Path) -> str:
    rel = path.resolve().relative_to(PACKAGE).as_posix()
    return "report" if rel.startswith("evaluation/") else "console"


def _sources() -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent.name != "i18n":
            yield path


def extract() -> dict[str, dict[str, list[tuple[str, int]]]]:
    """area -> msgid -> [(file, line)] for every marked string in the package."""
    found: dict[str, dict[str, list[tuple[str, int]]]] = {a: {} for a in CATALOGS}
    for path in _sources():
        rel = path.relative_to(PACKAGE.parent).as_posix()
        for lineno, message, _comments, _context in extract_from_file(
            "python", str(path), keywords=KEYWORDS
        ):
            if isinstance(message, str) and message:
                found[area_of(path)].setdefault(message, []).append((rel, lineno))
    return found


def po_path(area: str, locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{area}.po"


def mo_path(area: str, locale: str) -> Path:
    return po_path(area, locale).with_suffix(".mo")


def _locales() -> list[str]:
    return [loc for loc in LANGUAGES.values() if loc]


def _read(path: Path, locale: str) -> Catalog:
    if not path.exists():
        return Catalog(locale=locale, domain=path.stem, project="fedrisk")
    with open(path, "rb") as fh:
        return read_po(fh, locale=locale)


def update(areas: tuple[str, ...] = CATALOGS) -> None:
    """Add newly marked strings (empty translations), drop ones no longer in the code."""
    found = extract()
    for locale in _locales():
        for area in areas:
            old = _read(po_path(area, locale), locale)
            new = Catalog(locale=locale, domain=area, project="fedrisk", fuzzy=False)
            for msgid, where in found[area].items():
                kept = old.get(msgid)
                new.add(msgid, kept.string if kept else "", locations=where)
            po_path(area, locale).parent.mkdir(parents=True, exist_ok=True)
            with open(po_path(area, locale), "wb") as fh:
                write_po(fh, new, width=100, omit_header=False, sort_output=False)


def compile_all(areas: tuple[str, ...] = CATALOGS) -> None:
    for locale in _locales():
        for area in areas:
            with open(mo_path(area, locale), "wb") as fh:
                write_mo(fh, _read(po_path(area, locale), locale), use_fuzzy=False)


def problems() -> list[str]:
    """Everything wrong with the catalogs, one line each (empty: all good)."""
    out: list[str] = []
    found = extract()
    for locale in _locales():
        for area in CATALOGS:
            po = _read(po_path(area, locale), locale)
            translated = {m.id: m.string for m in po if m.id}
            for msgid, where in found[area].items():
                text = translated.get(msgid)
                if not text:
                    out.append(f"{where[0][0]}:{where[0][1]}: no {locale} translation: {msgid!r}")
                elif sorted(set(FIELD.findall(text))) != sorted(set(FIELD.findall(msgid))):
                    out.append(
                        f"{where[0][0]}:{where[0][1]}: {locale} placeholders differ: "
                        f"{sorted(set(FIELD.findall(msgid)))} vs {sorted(set(FIELD.findall(text)))}"
                    )
            for msgid in set(translated) - set(found[area]):
                out.append(f"{po_path(area, locale).name}: stale entry {msgid!r}")
            mo = mo_path(area, locale)
            if not mo.exists():
                out.append(f"{mo}: missing (run: python -m fedrisk.i18n.catalogs compile)")
                continue
            with open(mo, "rb") as fh:
                compiled = {m.id: m.string for m in read_mo(fh) if m.id}
            if compiled != {k: v for k, v in translated.items() if v}:
                out.append(f"{mo.name}: older than {po_path(area, locale).name} (compile)")
    return out


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    areas = tuple(argv[1:]) or CATALOGS
    if command not in ("update", "compile", "check") or set(areas) - set(CATALOGS):
        print(__doc__, file=sys.stderr)
        return 2
    if command == "update":
        update(areas)
    if command in ("update", "compile"):
        compile_all(areas)
    elif command != "check":
        print(__doc__, file=sys.stderr)
        return 2
    issues = problems()
    buf = io.StringIO()
    for line in issues:
        print(line, file=buf)
    sys.stdout.write(buf.getvalue())
    return 1 if issues and command == "check" else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
