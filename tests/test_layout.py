"""The package's shape: the layers of pyproject.toml's import-linter contracts hold, no import cycles, no private names
across modules, the aggregation registry is complete and loads no Flower."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from fedrisk.horizontal.aggregation import MODES
from tests.conftest import ROOT

PACKAGE = ROOT / "fedrisk"
LINT_IMPORTS = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """import-linter on the package found under ``root``, with the repository's contracts."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [LINT_IMPORTS, "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_import_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    "where, line",
    [
        ("module level", "import fedrisk.runs.run\n"),
        (
            "inside a function",
            "\n\ndef _later():\n    from fedrisk.runs import run\n    return run\n",
        ),
    ],
)
def test_a_deliberate_cycle_breaks_the_contract(tmp_path, where, line):
    """crypto importing the harness closes a cycle (the harness imports crypto): the same
    contracts, run on a copy of the package with that one import added, must fail."""
    shutil.copytree(
        PACKAGE, tmp_path / "fedrisk", ignore=shutil.ignore_patterns("__pycache__", "*.csv.gz")
    )
    target = tmp_path / "fedrisk" / "crypto" / "encoding.py"
    target.write_text(target.read_text() + line)
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert "fedrisk.crypto.encoding -> fedrisk.runs" in result.stdout


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    modules = sorted(m for m in graph.modules if m.startswith("fedrisk"))
    edges = {
        m: sorted(i for i in graph.find_modules_directly_imported_by(m) if i.startswith("fedrisk"))
        for m in modules
    }
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            children = edges.get(node, [])
            if i < len(children):
                work.append((node, i + 1))
                child = children[i]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return out


def test_the_module_graph_has_no_cycle():
    # every import counts, those for type checkers only included
    graph = grimp.build_graph("fedrisk", include_external_packages=False, cache_dir=None)
    assert _cycles(graph) == []
    graph.add_import(importer="fedrisk.crypto.encoding", imported="fedrisk.runs.run")
    assert _cycles(graph), "the cycle finder must see a cycle it is shown"


def _python_files(*folders: Path):
    for folder in folders:
        yield from sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def test_no_private_name_crosses_a_module():
    """``from fedrisk.x import _name`` and ``fedrisk_module._name`` are refused in the
    package, the tests and the benchmarks: what another module needs is public."""
    found = []
    for path in _python_files(PACKAGE, ROOT / "tests", ROOT / "benchmarks"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules = set()  # local names bound to fedrisk modules
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fedrisk"):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno} {alias.name}")
                    modules.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("fedrisk"):
                        modules.add(alias.asname or alias.name.split(".")[0])
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name)
                and node.value.id in modules
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value.id}.{node.attr}")
    assert found == []


def test_imports_inside_functions_say_why():
    """A module-level import belongs at the top; one inside a function is there for
    start-up time (or an optional extra) and says so. The command line and the
    package's entry points are start-up code throughout."""
    startup_files = {PACKAGE / "cli.py", PACKAGE / "__init__.py"}
    unexplained = []
    for path in _python_files(PACKAGE):
        if path in startup_files:
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    near = " ".join(lines[max(0, node.lineno - 4) : node.lineno]).lower()
                    if "start-up" not in near and "optional extra" not in near:
                        unexplained.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert unexplained == []


def test_the_registry_and_the_key_ceremony_load_no_flower():
    """The command line reads the scenario and starts the banks' key ceremony before
    Flower loads; both read the aggregation registry."""
    code = (
        "import sys, fedrisk.scenario, fedrisk.horizontal.keys, fedrisk.horizontal.aggregation;"
        "print(sorted(m for m in ('flwr', 'ray', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", sorted(MODES))
def test_every_aggregation_mode_implements_what_the_registry_promises(name):
    mode = MODES[name]
    module = mode.implementation()
    for entry in ("client_app", "server_app", "summary"):
        assert callable(getattr(module, entry, None)), f"{mode.module} lacks {entry}"
    assert mode.min_banks >= 1 and mode.exchanges_per_round >= 1
    assert not (mode.server_sees_individual_updates and not mode.server_sees_global_model)


def test_every_package_says_what_it_exports():
    missing = [
        str(p.relative_to(ROOT))
        for p in PACKAGE.rglob("__init__.py")
        if "__all__" not in p.read_text(encoding="utf-8")
    ]
    assert missing == []
