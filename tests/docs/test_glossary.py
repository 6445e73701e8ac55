"""docs/glossary.md and docs/zh/README.md stay true to fedrisk.

The glossary maps the terms of the CAICT 2020 fintech white paper's table 15 and section
四(三)4, as fedrisk's issue names them, to what fedrisk does and the command that shows it
(or says they are not covered, and why). These tests check that every named term has its
row, that every ``fedrisk ...`` command in either document parses with the real CLI,
names scenario files that exist and ``--set`` overrides the scenario loader accepts, that
every relative link (and README anchor) resolves, and that the Chinese guide is Chinese
and carries the README's quickstart exactly. Nothing runs: parsing and loading only.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest

from fedrisk.cli import build_parser
from fedrisk.i18n import resolve_language
from fedrisk.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
GLOSSARY = ROOT / "docs" / "glossary.md"
GUIDE = ROOT / "docs" / "zh" / "README.md"
DOCS = (GLOSSARY, GUIDE)

#: table 15 (privacy-computing techniques), the terms fedrisk's issue names
TABLE_15 = (
    "同态加密",
    "安全多方计算",
    "差分隐私",
    "安全聚合",
    "匿名追踪查询",
    "可信执行环境",
    "零知识证明",
)
#: MPC's building blocks and the alignment step a teacher of the table would name
BUILDING_BLOCKS = ("秘密分享", "不经意传输", "混淆电路", "隐私集合求交", "样本对齐")
#: section 四(三)4, 联合建模打破数据屏障
SECTION_4_3_4 = (
    "联合建模",
    "联邦学习",
    "横向联邦学习",
    "纵向联邦学习",
    "数据孤岛",
    "数据屏障",
    "标签",
    "特征",
    "联合风控",
    "信贷风控模型",
    "评分卡",
    "数据脱敏",
    "去标识化",
    "区块链",
)
TERMS = TABLE_15 + BUILDING_BLOCKS + SECTION_4_3_4
#: what fedrisk does not do: the row must say so (and why), not point at a command
NOT_COVERED = ("可信执行环境", "零知识证明", "不经意传输", "混淆电路", "数据脱敏", "区块链")
#: what fedrisk does: the row must give a command that shows it
COVERED = (
    "同态加密",
    "安全多方计算",
    "差分隐私",
    "安全聚合",
    "匿名追踪查询",
    "秘密分享",
    "隐私集合求交",
    "联合建模",
    "横向联邦学习",
    "纵向联邦学习",
    "联合风控",
)
NOT_COVERED_MARK = re.compile(r"(未覆盖|不涉及)[：:]\s*(\S.{7,})")
FENCE = re.compile(r"^[ \t]*```.*?^[ \t]*```[^\n]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
ENV_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=\S+$")
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _fenced_blocks(text: str) -> list[str]:
    """The bodies of the fenced code blocks, in order."""
    return [
        "\n".join(line.strip() for line in block.splitlines()[1:-1])
        for block in FENCE.findall(text)
    ]


def _prose(text: str) -> str:
    return FENCE.sub("", text)


def _table_rows(text: str) -> list[list[str]]:
    """Every body row of every pipe table, as stripped cells (header and rule left out)."""
    rows: list[list[str]] = []
    table: list[str] = []
    for line in [*_prose(text).splitlines(), ""]:
        if line.startswith("|"):
            table.append(line)
            continue
        for row in table[2:]:  # [0] is the header, [1] the rule
            rows.append([c.strip() for c in row.strip().strip("|").split("|")])
        table = []
    return rows


def _names(cell: str) -> set[str]:
    """The names a first cell lists: "数据孤岛 / 数据屏障", "匿名追踪查询（匿名查询、匿踪查询）"."""
    return {n.strip() for n in re.split(r"[/（）()、,，]", cell) if n.strip()}


def _glossary_rows() -> dict[str, list[str]]:
    rows = {}
    for cells in _table_rows(_text(GLOSSARY)):
        assert len(cells) == 4, f"glossary row without 4 cells: {cells}"
        for name in _names(cells[0]):
            assert name not in rows, f"glossary: {name} has two rows"
            rows[name] = cells
    return rows


def _shell_commands(line: str) -> list[str]:
    """The fedrisk commands of one shell line: `a && b` split, `VAR=x` prefixes and
    comments dropped, quoting kept."""
    found = []
    for part in line.split("&&"):
        words = part.split()
        while words and ENV_ASSIGNMENT.match(words[0]):
            words = words[1:]
        if words and words[0] == "fedrisk":
            found.append(shlex.join(shlex.split(" ".join(words), comments=True)))
    return found


def _shell_commands_in_cell(cell: str) -> list[str]:
    return [c for span in INLINE_CODE.findall(cell) for c in _shell_commands(span)]


def _commands(path: Path) -> list[str]:
    """Every fedrisk command in a document: in its code blocks and its inline code."""
    text = _text(path)
    commands = []
    for block in _fenced_blocks(text):
        for line in block.replace("\\\n", " ").splitlines():
            commands += _shell_commands(line)
    for span in INLINE_CODE.findall(_prose(text)):
        commands += _shell_commands(span)
    return commands


def _subcommands() -> set[str]:
    parser = build_parser()
    (sub,) = (a for a in parser._actions if a.dest == "command")
    return set(sub.choices)


def _run_outputs(path: Path) -> set[Path]:
    """The folders the document's own `fedrisk run --out DIR` commands write."""
    outs = set()
    for command in _commands(path):
        argv = shlex.split(command)[1:]
        if argv[:1] == ["run"] and "--out" in argv:
            outs.add(Path(argv[argv.index("--out") + 1]))
    return outs


def _github_anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens,
    repeats numbered."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for line in _prose(_text(path)).splitlines():
        m = re.match(r"#{1,6}\s+(.+?)\s*#*\s*$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


# 1. the terms ---------------------------------------------------------------------


def test_glossary_says_where_its_terms_come_from():
    intro = _text(GLOSSARY).split("\n|", 1)[0]
    for needle in (
        "表 15",
        "第四部分（三）4",
        "中国金融科技生态白皮书（2020年）",
        "没有随本仓库附带",
    ):
        assert needle in intro
    assert "not bundled" in intro


@pytest.mark.parametrize("term", TERMS)
def test_every_term_has_a_row_with_a_command_or_a_reason(term):
    rows = _glossary_rows()
    assert term in rows, f"{term}: no row in docs/glossary.md"
    where = rows[term][3]
    commands = _shell_commands_in_cell(where)
    reason = NOT_COVERED_MARK.search(where)
    assert commands or reason, f"{term}: neither a fedrisk command nor 未覆盖 with a reason"
    if term in NOT_COVERED:
        assert reason, f"{term}: fedrisk does not cover it; the row must say 未覆盖 and why"
    if term in COVERED:
        assert commands, f"{term}: fedrisk covers it; the row must give the command"


def test_every_glossary_row_has_a_command_or_a_reason():
    for cells in _table_rows(_text(GLOSSARY)):
        assert _shell_commands_in_cell(cells[3]) or NOT_COVERED_MARK.search(cells[3]), cells[0]


# 2. the commands ------------------------------------------------------------------


def _all_commands() -> list[tuple[str, str]]:
    return [(p.relative_to(ROOT).as_posix(), c) for p in DOCS for c in _commands(p)]


def test_the_documents_have_commands():
    found = {doc for doc, _ in _all_commands()}
    assert found == {"docs/glossary.md", "docs/zh/README.md"}


@pytest.mark.parametrize(("doc", "command"), _all_commands())
def test_every_command_parses_and_its_scenario_loads(doc, command):
    argv = shlex.split(command)[1:]
    if len(argv) == 1 and not argv[0].startswith("-"):  # a mention: "`fedrisk score` does"
        assert argv[0] in _subcommands(), f"{doc}: {command}: no such command"
        return
    args = build_parser().parse_args(argv)  # raises InputError on a bad command
    if getattr(args, "lang", None):
        resolve_language(args.lang)
    scenario = getattr(args, "scenario", None)
    if scenario is not None:
        assert (ROOT / scenario).is_file(), f"{doc}: {command}: no file {scenario}"
        overrides = list(getattr(args, "overrides", []) or [])
        if getattr(args, "engine", None):
            overrides.append(f"federation.engine={args.engine}")
        if args.command == "sweep":  # one point per value of each comma list
            points = [[]]
            for item in overrides:
                key, _, values = item.partition("=")
                points = [p + [f"{key}={v}"] for p in points for v in values.split(",")]
        else:
            points = [overrides]
        for point in points:
            load_scenario(ROOT / scenario, point)  # validates every key and value
    if args.command in ("score", "report"):  # a run folder the document makes first
        assert Path(args.dir) in _run_outputs(ROOT / doc), (
            f"{doc}: {command}: nothing in the docs writes {args.dir}"
        )


def test_a_bad_command_is_caught():
    """The check above can fail: a wrong key, value or option does not get through."""
    from fedrisk.errors import InputError

    with pytest.raises(InputError):
        build_parser().parse_args(["run", "scenarios/quickstart.toml", "--no-such-option"])
    with pytest.raises(InputError):
        load_scenario(ROOT / "scenarios/quickstart.toml", ["privacy.aggregation=secagg+"])


# 3. the links ---------------------------------------------------------------------


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(doc):
    links = LINK.findall(_prose(_text(doc)))
    assert links
    for target in links:
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file_part, _, anchor = unquote(target).partition("#")
        path = (doc.parent / file_part).resolve() if file_part else doc
        assert path.exists(), f"{doc.name}: {target}: no such file"
        if anchor and path.suffix == ".md":
            assert anchor in _github_anchors(path), f"{doc.name}: {target}: no such heading"


# 4. the Chinese guide -------------------------------------------------------------


def test_the_guide_is_mostly_chinese():
    prose = INLINE_CODE.sub("", _prose(_text(GUIDE)))
    prose = LINK.sub("", prose)
    cjk = len(CJK.findall(prose))
    latin = sum(1 for ch in prose if ch.isascii() and ch.isalpha())
    assert cjk > 2000
    assert cjk / (cjk + latin) > 0.7, f"{cjk} CJK characters against {latin} Latin letters"
    assert all(unicodedata.category(ch) != "Co" for ch in prose)  # no private-use glyphs


def test_the_guide_has_the_readme_quickstart_exactly():
    quickstart = [line for line in _fenced_blocks(_text(README))[0].splitlines() if line]
    assert any(line.startswith("pip install") for line in quickstart)
    guide_lines = {line for block in _fenced_blocks(_text(GUIDE)) for line in block.splitlines()}
    for line in quickstart:
        assert line in guide_lines, f"docs/zh/README.md lacks the quickstart line {line!r}"
