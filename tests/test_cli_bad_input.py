"""Bad input: exit code 2, one line on stderr naming the problem, no traceback,
and no run folder (or partial folder) left behind."""

import subprocess
import sys
from pathlib import Path

import pytest

from fedrisk.cli import main
from tests.conftest import SCENARIOS


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fedrisk.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_clean_refusal(proc: subprocess.CompletedProcess, *needles: str, cwd: Path) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert not (cwd / "out").exists()
    assert not (cwd / "runs").exists()
    assert not [p for p in cwd.iterdir() if ".partial-" in p.name or p.name.endswith(".incomplete")]


def write_csv(path: Path, rows: list[str]) -> None:
    path.write_text("\n".join(rows) + "\n")


GOOD_ROWS = ["id,y,x0,x1"] + [f"{i},{i % 2},{i * 0.1:.2f},{(i % 7) - 3}" for i in range(200)]


@pytest.mark.parametrize(
    "scenario, needles",
    [
        (
            'name = "q"\n[federation]\nbakns = 5\n',
            ("s.toml", "federation.bakns", "unknown key", "did you mean 'federation.banks'"),
        ),
        ('name = "q"\nrounds = "ten"\n', ("s.toml", "rounds", "expected an integer")),
        ('name = "q"\n[federation]\nbanks = 0\n', ("s.toml", "federation.banks", ">= 1")),
        (
            'name = "q"\n[data]\nsource = "csv"\npath = "missing.csv"\n',
            ("missing.csv", "no such file"),
        ),
    ],
)
def test_bad_scenarios_exit_2(tmp_path, scenario, needles):
    (tmp_path / "s.toml").write_text(scenario)
    proc = run_cli("run", "s.toml", "--out", "out", cwd=tmp_path)
    assert_clean_refusal(proc, *needles, cwd=tmp_path)


def test_default_run_folder_is_not_created_on_bad_input(tmp_path):
    (tmp_path / "s.toml").write_text('name = "q"\n[federation]\nbanks = 0\n')
    proc = run_cli("run", "s.toml", cwd=tmp_path)  # no --out: would be runs/q-<time>
    assert_clean_refusal(proc, "federation.banks", cwd=tmp_path)


@pytest.mark.parametrize(
    "mutate, needles",
    [
        (lambda rows: rows[:5] + ["4,1,nan,2"] + rows[6:], ("data.csv", "x0", "NaN")),
        (lambda rows: rows[:5] + ["4,2,0.5,2"] + rows[6:], ("data.csv", "'y'", "2")),
        (lambda rows: rows[:5] + ["4,1,abc,2"] + rows[6:], ("data.csv", "x0", "abc")),
        (lambda rows: [rows[0].replace("y", "target")] + rows[1:], ("data.csv", "'y'")),
    ],
)
def test_bad_csv_exit_2(tmp_path, mutate, needles, monkeypatch, capsys):
    """In-process (``main`` catches everything the process would): four heavy imports
    fewer for the fast loop; the cases above run the real process."""
    write_csv(tmp_path / "data.csv", mutate(GOOD_ROWS))
    (tmp_path / "s.toml").write_text(
        'name = "q"\n[data]\nsource = "csv"\npath = "data.csv"\n'
        '[federation]\nbanks = 2\npartition = "iid"\n'
    )
    monkeypatch.chdir(tmp_path)
    code = main(["run", "s.toml", "--out", "out"])
    out, err = capsys.readouterr()
    proc = subprocess.CompletedProcess([], code, out, err)
    assert_clean_refusal(proc, *needles, cwd=tmp_path)


def test_bad_override_and_unknown_engine_exit_2(tmp_path):
    proc = run_cli(
        "run",
        str(SCENARIOS / "quickstart.toml"),
        "--out",
        "out",
        "--set",
        "model.lerning_rate=0.1",
        cwd=tmp_path,
    )
    assert_clean_refusal(
        proc, "model.lerning_rate", "did you mean 'model.learning_rate'", cwd=tmp_path
    )
    proc = run_cli(
        "run", str(SCENARIOS / "quickstart.toml"), "--out", "out", "--engine", "warp", cwd=tmp_path
    )
    assert_clean_refusal(proc, "federation.engine", "'warp'", "inprocess", cwd=tmp_path)


def test_missing_scenario_and_usage_errors_exit_2(tmp_path):
    assert_clean_refusal(
        run_cli("run", "nope.toml", cwd=tmp_path),
        "nope.toml",
        "no such scenario file",
        cwd=tmp_path,
    )
    assert_clean_refusal(run_cli("fly", cwd=tmp_path), "invalid choice", cwd=tmp_path)


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    foreign = tmp_path / "precious"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("do not delete")
    proc = run_cli("run", str(SCENARIOS / "quickstart.toml"), "--out", "precious", cwd=tmp_path)
    assert proc.returncode == 2 and "not a fedrisk run folder" in proc.stderr
    assert (foreign / "thesis.tex").read_text() == "do not delete"


def test_data_command_names_licence(tmp_path):
    proc = run_cli("data", cwd=tmp_path)
    assert proc.returncode == 0
    assert "CC BY 4.0" in proc.stdout and "30,000" in proc.stdout.replace("30000", "30,000")


@pytest.mark.parametrize(
    "override, needles",
    [
        ("data.scaling=foo", ("data.scaling", "'foo'", "'robust'", "'zscore'", "'none'")),
        ("data.tails=fat", ("data.tails", "'fat'", "'heavy'")),
        ("data.default_rate=1.5", ("data.default_rate", "< 1")),
    ],
)
def test_bad_scaling_and_synthetic_options_exit_2(tmp_path, override, needles):
    (tmp_path / "s.toml").write_text('name = "q"\n[data]\nsource = "synthetic"\n')
    proc = run_cli("run", "s.toml", "--out", "out", "--set", override, cwd=tmp_path)
    assert_clean_refusal(proc, f"--set {override}:", *needles, cwd=tmp_path)
