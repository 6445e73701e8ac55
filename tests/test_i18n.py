"""The language fedrisk speaks: English by default, Chinese on request, from complete
message catalogs; a language it does not speak is bad input."""

import pytest

from fedrisk.cli import main, print_run_result
from fedrisk.i18n import ENV, gettext, language, resolve_language, using_language
from fedrisk.i18n.catalogs import problems
from tests.conftest import read_summary


def test_every_marked_string_is_translated_with_its_placeholders_and_compiled():
    """Untranslated strings, translations that lose or invent a {placeholder} (a KeyError
    at .format in Chinese only) and .mo files older than their .po all fail here."""
    assert problems() == []


@pytest.mark.parametrize(
    "value, code",
    [("en", "en"), ("zh", "zh"), ("zh_CN.UTF-8", "zh"), ("zh-CN", "zh"), ("ZH", "zh")],
)
def test_language_spellings(monkeypatch, value, code):
    monkeypatch.delenv(ENV, raising=False)
    assert resolve_language(value) == code
    monkeypatch.setenv(ENV, value)
    assert resolve_language(None) == code


def test_english_is_the_default_whatever_the_machine_locale(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    monkeypatch.setenv("LC_ALL", "zh_CN.UTF-8")
    assert resolve_language(None) == "en"
    monkeypatch.setenv(ENV, "zh")
    assert resolve_language("en") == "en"  # --lang wins over the environment


@pytest.mark.parametrize(
    "argv, env, named",
    [
        (["report", "nowhere", "--lang", "fr"], None, "--lang: 'fr'"),
        (["demo", "--no-pause", "--lang", "klingon"], None, "--lang: 'klingon'"),
        (["report", "nowhere"], "de_DE.UTF-8", f"{ENV}: 'de_DE.UTF-8'"),
    ],
)
def test_a_language_fedrisk_does_not_speak_is_one_line_exit_2(
    monkeypatch, capsys, tmp_path, argv, env, named
):
    monkeypatch.chdir(tmp_path)
    if env:
        monkeypatch.setenv(ENV, env)
    else:
        monkeypatch.delenv(ENV, raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert named in err and "allowed: en, zh" in err
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_using_language_switches_back():
    assert language() == "en"
    with using_language("zh"):
        assert gettext("federated") == "联邦模型"
    assert language() == "en" and gettext("federated") == "federated"


def test_the_run_summary_table_in_both_languages(quickstart_run, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich's width: no label wrapped over two lines
    summary = read_summary(quickstart_run)
    print_run_result(summary, quickstart_run)
    english = capsys.readouterr().out
    assert "federated" in english and "centralised (pooled, idealised)" in english
    with using_language("zh"):
        print_run_result(summary, quickstart_run)
    chinese = capsys.readouterr().out
    for heading in ("模型", "联邦模型", "集中式（数据汇集，理想情形）", "单独建模", "网络传输"):
        assert heading in chinese, heading
    for english_only in ("federated", "centralised", "alone", "bytes over the wire"):
        assert english_only not in chinese, english_only
    # the numbers do not change with the language
    assert f"{summary['federated']['auc']:.4f}" in chinese
