"""SIGTERM and SIGINT in the middle of real commands: the command says what happened,
exits 128 + the signal, and leaves no hidden partial folder behind (an in-process
horizontal run keeps only the checkpoint it announces, for --resume)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SCENARIOS, interruptible

pytestmark = pytest.mark.slow

VERTICAL = [
    "run",
    str(SCENARIOS / "vertical.toml"),
    "--out",
    "out",
    "--set",
    "privacy.key_bits=1024",
    "--set",
    "rounds=3",
]


def hidden(cwd: Path) -> list[str]:
    return sorted(p.name for p in cwd.rglob(".*") if p.name.startswith("."))


def start_and_signal(args: list[str], cwd: Path, sig: int, ready) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(
        [sys.executable, "-m", "fedrisk.cli", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,
    )
    deadline = time.monotonic() + 120
    try:
        while not ready(cwd):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the command never got going"
            time.sleep(0.05)
        time.sleep(0.3)  # inside the work, not at its door
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def partial_exists(cwd: Path) -> bool:
    return any(".partial-" in p.name for p in cwd.rglob(".*"))


@pytest.mark.parametrize(
    "sig, code, words",
    [
        (signal.SIGTERM, 143, "stopped by SIGTERM"),
        (signal.SIGINT, 130, "interrupted"),
    ],
)
def test_a_signalled_run_leaves_no_partial_folder_and_says_so(tmp_path, sig, code, words):
    proc = start_and_signal(VERTICAL, tmp_path, sig, partial_exists)
    assert proc.returncode == code, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last == (
        f"fedrisk: {words}; no results were written and no partial folder was left behind"
    )
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == [], [p.name for p in tmp_path.rglob("*")]


def test_sigterm_during_the_demo_leaves_nothing(tmp_path):
    def first_run_started(cwd: Path) -> bool:  # a run's folder inside the demo's own
        return any(".partial-" in p.name for p in cwd.glob(".demo.partial-*/.*"))

    proc = start_and_signal(
        ["demo", "--no-pause", "--out", "demo"], tmp_path, signal.SIGTERM, first_run_started
    )
    assert proc.returncode == 143, proc.stderr
    assert "stopped by SIGTERM" in proc.stderr.strip().splitlines()[-1]
    assert list(tmp_path.iterdir()) == [], [p.name for p in tmp_path.rglob("*")]


def test_sigterm_after_a_checkpoint_keeps_it_and_says_how_to_resume(tmp_path):
    """An in-process horizontal run checkpoints every round: SIGTERM (a scheduler's
    preemption) keeps the checkpoint it names, and nothing else."""

    def checkpointed(cwd: Path) -> bool:
        return (cwd / ".out.incomplete" / "checkpoint").is_dir()

    args = ["run", str(SCENARIOS / "quickstart.toml"), "--out", "out", "--set", "rounds=400"]
    proc = start_and_signal(args, tmp_path, signal.SIGTERM, checkpointed)
    assert proc.returncode == 143, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("fedrisk: stopped by SIGTERM; checkpoint after round ")
    assert last.endswith("resume with: fedrisk run --resume out"), last
    assert [p.name for p in tmp_path.iterdir()] == [".out.incomplete"]
    assert not partial_exists(tmp_path)


def test_a_signalled_scoring_session_writes_nothing(tmp_path):
    """fedrisk score stopped mid-session (the bank blinding 20,000 applicants' ids):
    exit 143, one line, no scores, summary, transcript or temporary file."""
    import numpy as np

    from fedrisk.privacy.secrets import RunSecrets
    from fedrisk.runs.run import run_scenario
    from fedrisk.scenario import load_scenario
    from tests.vertical.test_runs import SCENARIO, write_party_csvs

    write_party_csvs(tmp_path)
    (tmp_path / "s.toml").write_text(SCENARIO.replace("rounds = 2", "rounds = 1"))
    run_scenario(
        load_scenario(tmp_path / "s.toml"),
        tmp_path / "run",
        show_progress=False,
        secrets=RunSecrets(bytes(32)),
    )
    rows = np.random.default_rng(0).normal(size=(20_000, 3)).round(4)
    lines = ["id,b0,b1,b2"] + [f"n{i},{a},{b},{c}" for i, (a, b, c) in enumerate(rows)]
    (tmp_path / "applicants.csv").write_text("\n".join(lines) + "\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    started = time.monotonic()
    args = ["score", "run", "--scenario", "s.toml", "--ids", "applicants.csv", "--out", "s.csv"]
    proc = start_and_signal(
        args, tmp_path, signal.SIGTERM, lambda cwd: time.monotonic() - started > 2.5
    )
    assert proc.returncode == 143, (proc.returncode, proc.stderr)
    assert proc.stderr.strip().splitlines()[-1].startswith("fedrisk: stopped by SIGTERM")
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before
