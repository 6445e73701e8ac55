"""The newcomer's table of bad input: each case exits 2 with one line on stderr that
names the file (or flag), the key or column and what is allowed; no traceback, and
nothing left behind (no run folder, no ``runs/``, no hidden partial folder)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fedrisk.cli import main
from tests.conftest import SCENARIOS
from tests.test_cli_bad_input import run_cli

CSV = "id,y,x0,x1,x2\n" + "".join(
    f"{i},{i % 2},{i * 0.1:.2f},{(i % 7) - 3},{i % 3}\n" for i in range(60)
)
CSV_SCENARIO = 'name = "mine"\n[data]\nsource = "csv"\npath = "loans.csv"\n[federation]\nbanks = 2\npartition = "iid"\n'


def leftovers(cwd: Path) -> list[str]:
    """What a refused command must not have created: run folders, runs/, hidden
    .partial-/.incomplete/.probe folders (anything not put there by the case itself)."""
    return sorted(
        p.name
        for p in cwd.iterdir()
        if p.name in ("out", "runs")
        or ".partial-" in p.name
        or p.name.endswith(".incomplete")
        or ".fedrisk-probe" in p.name
    )


def long_name(tmp: Path) -> list[str]:
    (tmp / "s.toml").write_text(f'name = "{"n" * 300}"\n')
    return ["run", "s.toml"]  # default folder runs/<name>-<time>


def scenario_is_a_folder(tmp: Path) -> list[str]:
    (tmp / "scen.toml").mkdir()
    return ["run", "scen.toml", "--out", "out"]


def data_path_is_a_folder(tmp: Path) -> list[str]:
    (tmp / "loans.csv").mkdir()
    (tmp / "s.toml").write_text(CSV_SCENARIO)
    return ["run", "s.toml", "--out", "out"]


def data_path_missing(tmp: Path) -> list[str]:
    (tmp / "s.toml").write_text(CSV_SCENARIO)
    return ["run", "s.toml", "--out", "out"]


def bom_scenario_with_bad_value(tmp: Path) -> list[str]:
    # a BOM (Windows Notepad) is read as UTF-8: the error is the value, not "invalid TOML"
    (tmp / "s.toml").write_bytes(b"\xef\xbb\xbf" + b'name = "q"\n[federation]\nbanks = 0\n')
    return ["run", "s.toml", "--out", "out"]


def not_utf8(tmp: Path) -> list[str]:
    (tmp / "s.toml").write_bytes('name = "crédit"\n'.encode("latin-1"))
    return ["run", "s.toml", "--out", "out"]


def bad_toml(tmp: Path) -> list[str]:
    (tmp / "s.toml").write_text('name = "q"\nrounds = \n')
    return ["run", "s.toml", "--out", "out"]


def csv_bad_cell_line(tmp: Path) -> list[str]:
    rows = CSV.splitlines()
    rows[17] = "16,0,abc,2,1"  # line 18 in an editor (the header is line 1)
    (tmp / "loans.csv").write_text("\n".join(rows) + "\n")
    (tmp / "s.toml").write_text(CSV_SCENARIO)
    return ["run", "s.toml", "--out", "out"]


def exclude_unknown_column(tmp: Path) -> list[str]:
    (tmp / "loans.csv").write_text(CSV)
    (tmp / "s.toml").write_text(
        CSV_SCENARIO.replace('path = "loans.csv"', 'path = "loans.csv"\nexclude = ["x9"]')
    )
    return ["run", "s.toml", "--out", "out"]


def exclude_everything(tmp: Path) -> list[str]:
    (tmp / "loans.csv").write_text(CSV)
    (tmp / "s.toml").write_text(
        CSV_SCENARIO.replace('path = "loans.csv"', 'path = "loans.csv"\nexclude = ["x*"]')
    )
    return ["run", "s.toml", "--out", "out"]


def override_typo(tmp: Path) -> list[str]:
    (tmp / "s.toml").write_text('name = "q"\n')
    return ["run", "s.toml", "--out", "out", "--set", "model.lerning_rate=0.1"]


def out_parent_unwritable(tmp: Path) -> list[str]:
    # /sys refuses new folders even to root (os.access would say yes to root)
    return ["run", str(SCENARIOS / "quickstart.toml"), "--out", "/sys/fedrisk-out"]


def out_is_a_file(tmp: Path) -> list[str]:
    (tmp / "taken").write_text("a file")
    return ["run", str(SCENARIOS / "quickstart.toml"), "--out", "taken"]


def out_name_too_long(tmp: Path) -> list[str]:
    return ["run", str(SCENARIOS / "quickstart.toml"), "--out", "o" * 250]


def secrets_inside_run_folder(tmp: Path) -> list[str]:
    return ["run", str(SCENARIOS / "quickstart.toml"), "--out", "out", "--secrets", "out/s.key"]


def sweep_seeds(tmp: Path) -> list[str]:
    return ["sweep", str(SCENARIOS / "quickstart.toml"), "--seeds", "0"]


def party_path_is_a_folder(tmp: Path) -> list[str]:
    (tmp / "bank.csv").mkdir()
    (tmp / "tel.csv").write_text("id,t0\n1,2\n2,3\n")
    (tmp / "v.toml").write_text(
        'name = "v"\n[data]\nsource = "csv"\n[federation]\nkind = "vertical"\n'
        '[[federation.parties]]\nname = "bank"\nlabel = true\npath = "bank.csv"\n'
        '[[federation.parties]]\nname = "telecom"\npath = "tel.csv"\n'
    )
    return ["run", "v.toml", "--out", "out"]


def report_of_a_non_run(tmp: Path) -> list[str]:
    (tmp / "notarun").mkdir()
    return ["report", "notarun"]


def resume_with_scenario(tmp: Path) -> list[str]:
    return ["run", "--resume", "out", str(SCENARIOS / "quickstart.toml")]


CASES = {
    # case: (set-up, what the one line must name)
    "300-character name": (long_name, ("s.toml", "name", "300 characters", "at most 100")),
    "scenario is a folder": (scenario_is_a_folder, ("scen.toml", "is a folder")),
    "data.path is a folder": (
        data_path_is_a_folder,
        ("s.toml", "data.path", "loans.csv", "is a folder"),
    ),
    "data.path missing": (data_path_missing, ("s.toml", "data.path", "loans.csv", "no such file")),
    "BOM scenario": (bom_scenario_with_bad_value, ("s.toml", "federation.banks", ">= 1")),
    "not UTF-8": (not_utf8, ("s.toml", "not a UTF-8 text file")),
    "bad TOML": (bad_toml, ("s.toml", "not valid TOML", "line 2")),
    "CSV cell, editor line": (csv_bad_cell_line, ("loans.csv", "'x0'", "line 18", "'abc'")),
    "data.exclude unknown": (exclude_unknown_column, ("data.exclude", "'x9'", "matches no column")),
    "data.exclude all": (exclude_everything, ("data.exclude", "no feature column")),
    "--set typo": (
        override_typo,
        ("--set model.lerning_rate=0.1", "did you mean 'model.learning_rate'"),
    ),
    "--out unwritable": (out_parent_unwritable, ("--out", "/sys", "cannot create a folder")),
    "--out is a file": (out_is_a_file, ("--out", "taken", "not a folder")),
    "--out too long": (out_name_too_long, ("--out", "250 bytes", "at most")),
    "--secrets in run folder": (secrets_inside_run_folder, ("--secrets", "inside the run folder")),
    "sweep --seeds 0": (sweep_seeds, ("--seeds", "1 to 100")),
    "party path is a folder": (
        party_path_is_a_folder,
        ("v.toml", "federation.parties[0].path", "bank.csv", "is a folder"),
    ),
    "report of a non-run": (report_of_a_non_run, ("notarun", "summary.json")),
    "--resume with a scenario": (resume_with_scenario, ("--resume", "no SCENARIO")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_one_line(tmp_path, case, monkeypatch, capsys):
    """In-process through ``main`` (the command line's own entry point, which catches
    everything): the table stays fast; tests/test_cli_bad_input.py runs the real
    process for a few of them."""
    setup, needles = CASES[case]
    args = setup(tmp_path)
    before = {p.name for p in tmp_path.iterdir()}
    monkeypatch.chdir(tmp_path)
    code = main(args)
    out, err = capsys.readouterr()
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fedrisk: error: ") and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert out == ""
    created = {p.name for p in tmp_path.iterdir()} - before
    assert not created and not leftovers(tmp_path), created


def test_unreadable_scenario_exits_2(tmp_path, monkeypatch, capsys):
    """A scenario this process may not read. Root reads any file, so as root the
    refusal is simulated where the file is opened; otherwise chmod 000 is real."""
    scenario = tmp_path / "s.toml"
    scenario.write_text('name = "q"\n')
    scenario.chmod(0)
    if os.geteuid() == 0:
        real = os.access
        monkeypatch.setattr(
            os,
            "access",
            lambda p, mode, **kw: False if Path(p).resolve() == scenario else real(p, mode, **kw),
        )
    monkeypatch.chdir(tmp_path)
    assert main(["run", "s.toml", "--out", "out"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["fedrisk: error: s.toml: cannot be read (permission denied)"]
    assert not leftovers(tmp_path)


def test_every_problem_in_a_scenario_at_once(tmp_path):
    (tmp_path / "s.toml").write_text(
        'name = "q"\nrounds = "ten"\n[federation]\nbakns = 5\nalpha = -1\n'
        '[privacy]\ndp = "sample"\n'  # needs a target or a noise multiplier
    )
    proc = run_cli("run", "s.toml", "--out", "out", "--set", "model.batch_size=0", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert all(line.startswith("fedrisk: error: ") for line in lines)
    expected = [
        "s.toml: rounds: expected an integer",
        "s.toml: federation.bakns: unknown key; did you mean 'federation.banks'",
        "s.toml: federation.alpha: must be > 0",
        "--set model.batch_size=0: model.batch_size: must be >= 1",
        "s.toml: privacy.dp: 'sample' needs privacy.target_epsilon",
    ]
    for text in expected:
        assert sum(text in line for line in lines) == 1, (text, lines)
    assert len(lines) == len(expected), lines
    assert not leftovers(tmp_path)


@pytest.mark.slow
def test_a_constant_column_is_named_in_a_warning(tmp_path):
    rows = CSV.splitlines()
    rows = [rows[0] + ",flag"] + [r + ",1" for r in rows[1:]]
    (tmp_path / "loans.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "s.toml").write_text(CSV_SCENARIO)
    proc = run_cli("run", "s.toml", "--out", "out", "--quiet", "--set", "rounds=2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    warning = [line for line in proc.stderr.splitlines() if "one value in every row" in line]
    assert len(warning) == 1 and "'flag'" in warning[0] and "data.exclude" in warning[0]
    assert proc.stdout.strip() == "out"  # --quiet still says where the results are
    # and leaving it out silences it; the model then has the other three features
    proc = run_cli(
        "run",
        "s.toml",
        "--out",
        "out2",
        "--quiet",
        "--set",
        "rounds=2",
        "--set",
        'data.exclude=["flag"]',
        cwd=tmp_path,
    )
    assert proc.returncode == 0 and "one value in every row" not in proc.stderr
    assert '"flag"' in (tmp_path / "out2" / "scenario.toml").read_text()
    import json

    features = json.loads((tmp_path / "out2" / "model.json").read_text())["feature_names"]
    assert features == ["x0", "x1", "x2"]
