"""The teaching notebooks in docs/notebooks run top to bottom, so they cannot rot.

Each notebook is executed in a fresh kernel of the Python running the tests (a
kernelspec written for ``sys.executable`` into a temporary JUPYTER_PATH, so a fresh venv
needs nothing installed beyond the dev extra), in a temporary working folder. A cell
that raises fails the test with that cell's error (nbclient's CellExecutionError). Every
notebook must also draw at least one chart inline, and be committed without outputs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

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


#: notebooks executed at once: one kernel per core (their runs are mostly one thread)
AT_ONCE = 2
#: executes one notebook in its own process, so two can run side by side; a cell that
#: raises leaves nbclient's CellExecutionError (the cell and its traceback) on stderr
EXECUTE = """
import sys, nbclient, nbformat
src, out, work, timeout = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
nb = nbformat.read(src, as_version=4)
client = nbclient.NotebookClient(
    nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": work}}
)
try:
    client.execute()
finally:
    nbformat.write(nb, out)
"""


def kernel_env(root: Path) -> dict[str, str]:
    """The environment of a notebook's kernel: a "python3" kernelspec running this very
    interpreter first on JUPYTER_PATH (a fresh venv needs nothing beyond the dev extra),
    the run folders of the notebooks' tempfile.mkdtemp() under pytest's tmp folder."""
    spec = root / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    kernel = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (fedrisk tests)",
        "language": "python",
    }
    (spec / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
    (root / "tmp").mkdir()
    return {
        **os.environ,
        **QUIET_ENV,
        "JUPYTER_PATH": str(root / "jupyter"),
        "TMPDIR": str(root / "tmp"),
    }


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Every notebook executed, AT_ONCE at a time: name -> (process, executed copy, s)."""
    root = tmp_path_factory.mktemp("notebooks")
    env = kernel_env(root)
    waiting, running, done = list(NOTEBOOKS), [], {}
    while waiting or running:
        while waiting and len(running) < AT_ONCE:
            path = waiting.pop(0)
            work = root / path.stem
            work.mkdir()
            out = work / path.name
            argv = [
                sys.executable,
                "-c",
                EXECUTE,
                str(path),
                str(out),
                str(work),
                str(CELL_TIMEOUT),
            ]
            # output to a file, not a pipe: a kernel's noise cannot fill a pipe nobody reads
            log = open(work / "stderr.txt", "w", encoding="utf-8")  # noqa: SIM115
            proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
            running.append((path, out, proc, log, time.perf_counter()))
        path, out, proc, log, started = running.pop(0)
        proc.wait(timeout=CELL_TIMEOUT * 4)
        log.close()
        err = (out.parent / "stderr.txt").read_text(encoding="utf-8", errors="replace")
        done[path.name] = (proc.returncode, err, out, time.perf_counter() - started)
    return done


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, executed):
    returncode, stderr, out, elapsed = executed[path.name]
    assert returncode == 0, f"{path.name} failed:\n{stderr[-6000:]}"
    nb = nbformat.read(out, as_version=4)
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
