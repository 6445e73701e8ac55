"""The teaching notebooks in docs/notebooks run top to bottom, so they cannot rot.

Each notebook is executed in a fresh kernel of the Python running the tests (a
kernelspec written for ``sys.executable`` into a temporary JUPYTER_PATH, so a fresh venv
needs nothing installed beyond the dev extra), in a temporary working folder. A cell
that raises fails the test with that cell's error (nbclient's CellExecutionError). Every
notebook must also draw at least one chart inline, and be committed without outputs.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import nbclient
import nbformat
import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "docs" / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
#: seconds any one notebook may take (each runs in well under a minute on 2 cores)
CELL_TIMEOUT = 300
QUIET_ENV = {
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    # the kernel's own inline backend, whatever the CI shell sets (Agg would draw nothing)
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
}


def test_the_notebooks_are_there():
    assert len(NOTEBOOKS) >= 4, f"expected at least 4 notebooks in {NOTEBOOKS_DIR}"
    readme = (NOTEBOOKS_DIR / "README.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        assert path.name in readme, f"{path.name} is not listed in docs/notebooks/README.md"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs, f"{path.name}: cell {i} has stored outputs; clear them"
            assert cell.execution_count is None, f"{path.name}: cell {i} has an execution count"
    assert nb.cells[0].cell_type == "markdown", f"{path.name}: start with what it teaches"
    assert nb.cells[-1].cell_type == "markdown", f"{path.name}: end with what to take away"


@pytest.fixture
def python_kernel(tmp_path, monkeypatch):
    """A "python3" kernelspec running this very interpreter, first on JUPYTER_PATH."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    kernel = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (fedrisk tests)",
        "language": "python",
    }
    (spec / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    # the notebooks' tempfile.mkdtemp() run folders land under pytest's tmp_path
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    for key, value in QUIET_ENV.items():
        monkeypatch.setenv(key, value)
    return "python3"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, python_kernel):
    nb = nbformat.read(path, as_version=4)
    work = tmp_path / "cwd"
    work.mkdir()
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name=python_kernel,
        resources={"metadata": {"path": str(work)}},
    )
    started = time.perf_counter()
    client.execute()  # raises CellExecutionError naming the cell and its traceback
    elapsed = time.perf_counter() - started
    images = [
        output
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    assert images, f"{path.name}: no chart was drawn inline (no image/png output)"
    errors = [
        output
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors, f"{path.name}: error outputs {errors}"
    print(f"{path.name}: {elapsed:.1f} s, {len(images)} inline image(s)")
