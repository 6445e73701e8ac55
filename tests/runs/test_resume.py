"""Checkpoints and --resume: an interrupted in-process run, resumed, ends exactly where
the uninterrupted run does (summary.json equal apart from timings)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from fedrisk import resume_run, run_scenario
from fedrisk.flower.recording_grid import message_round
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.scenario import load_scenario
from tests.conftest import SCENARIOS, interruptible, read_summary, without_timings


def interrupt_at(rnd: int):
    """A bank-side mod that presses Ctrl-C when round ``rnd`` reaches the banks."""

    def mod(msg, context, call_next):
        if message_round(msg) == rnd:
            raise KeyboardInterrupt
        return call_next(msg, context)

    return mod


CASES = {
    "plain": [],
    "paillier": ["privacy.aggregation=paillier", "privacy.key_bits=1024"],
    "secagg-dropout": ["privacy.aggregation=secagg", "federation.dropout=0.3"],
    "dp-sample-dropout": [
        "privacy.dp=sample",
        "privacy.target_epsilon=3",
        "federation.dropout=0.3",
    ],
    "dp-client-paillier": [
        "privacy.dp=client",
        "privacy.target_epsilon=30",
        "privacy.aggregation=paillier",
        "privacy.key_bits=1024",
        "federation.dropout=0.2",
        "federation.min_parties=1",
    ],
    "paillier-threshold-dropout": [
        "privacy.aggregation=paillier",
        "privacy.key_bits=1024",
        "privacy.key=threshold",
        "federation.dropout=0.2",
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_interrupted_after_round_10_and_resumed_equals_uninterrupted(tmp_path, case):
    s = load_scenario(SCENARIOS / "quickstart.toml", ["rounds=20", *CASES[case]])
    # os-entropy secrets, drawn once and given to both runs: the resumed run gets its
    # parties' secrets back from the checkpoint alone (resume_run is told nothing)
    secrets = RunSecrets()
    full = run_scenario(s, tmp_path / "full", show_progress=False, secrets=secrets).out_dir
    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt, match="checkpoint after round 10 kept"):
        run_scenario(s, cut, show_progress=False, client_mods=[interrupt_at(11)], secrets=secrets)
    assert not cut.exists() and (tmp_path / ".cut.incomplete" / "checkpoint").is_dir()
    resume_run(cut, show_progress=False)
    assert without_timings(read_summary(cut)) == without_timings(read_summary(full))
    for name in ("transcript.jsonl", "model.json", "calibration.json"):
        assert (cut / name).read_text() == (full / name).read_text(), name
    strip = [line.rsplit(",", 1)[0] for line in (full / "rounds.csv").read_text().split()]
    assert [line.rsplit(",", 1)[0] for line in (cut / "rounds.csv").read_text().split()] == strip
    assert not (tmp_path / ".cut.incomplete").exists()
    assert not (cut / "checkpoint").exists()


def test_the_checkpoint_keeps_the_banks_secrets_apart(tmp_path):
    s = load_scenario(
        SCENARIOS / "quickstart.toml",
        ["rounds=3", "privacy.aggregation=paillier", "privacy.key_bits=1024"],
    )
    with pytest.raises(KeyboardInterrupt):
        run_scenario(s, tmp_path / "cut", show_progress=False, client_mods=[interrupt_at(3)])
    folder = tmp_path / ".cut.incomplete" / "checkpoint"
    server = json.loads((folder / "checkpoint.json").read_text())
    banks = json.loads((folder / "banks.json").read_text())
    assert server["round"] == banks["round"] == 2
    p, q = int(banks["keys"]["p"]), int(banks["keys"]["q"])
    text = (folder / "checkpoint.json").read_text()
    assert str(p) not in text and str(q) not in text  # the aggregator's half has no key
    # each party's own secret in its own half, both halves owner-only
    assert set(banks["secrets"]) == {f"bank_{i}" for i in range(1, 6)}
    assert all(secret not in text for secret in banks["secrets"].values())
    assert len(bytes.fromhex(server["secret"])) == 32
    assert server["secret"] not in (folder / "banks.json").read_text()
    assert server["randomness"] == "os-entropy"
    for name in ("checkpoint.json", "banks.json"):
        assert (folder / name).stat().st_mode & 0o777 == 0o600, name
    assert set(server["strategy"]["history"]) == {"1", "2"}


def test_the_checkpoint_keeps_each_banks_threshold_share_in_the_banks_half(tmp_path):
    s = load_scenario(
        SCENARIOS / "quickstart.toml",
        [
            "rounds=3",
            "privacy.aggregation=paillier",
            "privacy.key_bits=1024",
            "privacy.key=threshold",
        ],
    )
    with pytest.raises(KeyboardInterrupt):
        run_scenario(s, tmp_path / "cut", show_progress=False, client_mods=[interrupt_at(3)])
    folder = tmp_path / ".cut.incomplete" / "checkpoint"
    server = json.loads((folder / "checkpoint.json").read_text())
    shares = json.loads((folder / "banks.json").read_text())["keys"]["threshold"]
    assert sorted(shares) == [f"bank_{i}" for i in range(1, 6)]
    assert [shares[f"bank_{i}"]["index"] for i in range(1, 6)] == [1, 2, 3, 4, 5]
    text = (folder / "checkpoint.json").read_text()
    assert not any(sh["secret"] in text or sh["blind_seed"] in text for sh in shares.values())
    assert set(server["strategy"]["partials"]) == {"1", "2"}


@pytest.mark.slow
def test_ctrl_c_on_the_command_line_then_resume(tmp_path):
    """The real path: SIGINT to `fedrisk run`, exit 130 with the resume command, then
    `fedrisk run --resume` finishes with the uninterrupted result."""
    overrides = ["rounds=8", "federation.stragglers=1.0", "federation.straggler_delay=0.1"]
    sets = [a for o in overrides for a in ("--set", o)]
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fedrisk.cli",
            "run",
            str(SCENARIOS / "quickstart.toml"),
            "--out",
            str(out),
            "--quiet",
            *sets,
        ],
        preexec_fn=interruptible,  # SIGINT as a terminal delivers it
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    ckpt = tmp_path / ".run.incomplete" / "checkpoint" / "checkpoint.json"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if ckpt.exists() and json.loads(ckpt.read_text())["round"] >= 2:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"resume with: fedrisk run --resume {out}" in err
    assert not out.exists()
    done = subprocess.run(
        [sys.executable, "-m", "fedrisk.cli", "run", "--resume", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    s = load_scenario(SCENARIOS / "quickstart.toml", overrides)
    full = run_scenario(s, tmp_path / "full", show_progress=False).out_dir
    assert without_timings(read_summary(out)) == without_timings(read_summary(full))


def _cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "fedrisk.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow  # several subprocess runs of the command line (~6 s)
def test_resume_refuses_bad_input_with_one_line(tmp_path):
    nothing = _cli("run", "--resume", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert nothing.returncode == 2 and "no checkpoint found" in nothing.stderr
    mixed = _cli(
        "run", str(SCENARIOS / "quickstart.toml"), "--resume", str(tmp_path / "x"), cwd=tmp_path
    )
    assert mixed.returncode == 2 and "give no SCENARIO" in mixed.stderr
    damaged = tmp_path / ".bad.incomplete" / "checkpoint"
    damaged.mkdir(parents=True)
    (damaged / "checkpoint.json").write_text("{not json")
    (damaged / "banks.json").write_text("{}")
    broken = _cli("run", "--resume", str(tmp_path / "bad"), cwd=tmp_path)
    assert broken.returncode == 2 and "damaged" in broken.stderr
    for proc in (nothing, mixed, broken):
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_a_run_that_fails_leaves_no_checkpoint_behind(tmp_path):
    def crash(msg, context, call_next):
        if message_round(msg) == 3:
            raise RuntimeError("disk on fire")
        return call_next(msg, context)

    s = load_scenario(SCENARIOS / "quickstart.toml", ["rounds=5"])
    with pytest.raises(Exception, match="disk on fire"):
        run_scenario(s, tmp_path / "r", show_progress=False, client_mods=[crash])
    assert list(tmp_path.iterdir()) == []


def test_a_run_stopped_for_lack_of_banks_resumes_with_a_lower_quorum(tmp_path):
    from fedrisk.errors import InputError
    from fedrisk.flower.faults import QuorumError

    s = load_scenario(
        SCENARIOS / "quickstart.toml",
        ["rounds=12", "federation.dropout=0.6", "federation.min_parties=3"],
    )
    out = tmp_path / "r"
    with pytest.raises(QuorumError, match="--set federation.min_parties=N") as info:
        run_scenario(s, out, show_progress=False)
    assert info.value.resumable
    with pytest.raises(InputError, match="may change only federation.min_parties"):
        resume_run(out, overrides=["rounds=30"], show_progress=False)
    with pytest.raises(QuorumError):  # the same faults strike again
        resume_run(out, show_progress=False)
    summary = resume_run(out, overrides=["federation.min_parties=1"], show_progress=False).summary
    assert summary["faults"]["rounds_completed"] == s.max_rounds  # 12 + calibration
    assert summary["faults"]["min_parties"] == 1


def test_checkpoint_halves_must_belong_together(tmp_path):
    from fedrisk.errors import InputError
    from fedrisk.flower.checkpoint import read_checkpoint

    s = load_scenario(SCENARIOS / "quickstart.toml", ["rounds=5"])
    with pytest.raises(KeyboardInterrupt):
        run_scenario(s, tmp_path / "cut", show_progress=False, client_mods=[interrupt_at(4)])
    folder = tmp_path / ".cut.incomplete" / "checkpoint"
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert oct((folder / "banks.json").stat().st_mode & 0o777) == "0o600"
    banks = json.loads((folder / "banks.json").read_text())
    banks["round"] = 1
    (folder / "banks.json").write_text(json.dumps(banks))
    with pytest.raises(
        InputError,
        match="inconsistent: the banks' state is from round 1, the aggregator's from round 3",
    ):
        read_checkpoint(folder, "--resume x")


def test_resume_refuses_data_that_changed(tmp_path):
    from fedrisk.errors import InputError

    csv = tmp_path / "loans.csv"
    rows = ["id,y,x0,x1"] + [f"{i},{i % 3 == 0:d},{i * 0.01:.2f},{i % 7}" for i in range(600)]
    csv.write_text("\n".join(rows) + "\n")
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        'name = "mine"\nrounds = 6\n[data]\nsource = "csv"\n'
        'path = "loans.csv"\n[federation]\nbanks = 3\npartition = "iid"\n'
    )
    s = load_scenario(scenario)
    with pytest.raises(KeyboardInterrupt):
        run_scenario(s, tmp_path / "cut", show_progress=False, client_mods=[interrupt_at(3)])
    rows[5] = "4,1,9.99,2"  # someone edits the file before the run resumes
    csv.write_text("\n".join(rows) + "\n")
    with pytest.raises(
        InputError,
        match=r"--resume .*cut: bank_\d's rows differ from when "
        "the run started",
    ):
        resume_run(tmp_path / "cut", show_progress=False)
    csv.write_text(
        "\n".join(
            ["id,y,x0,x1"] + [f"{i},{i % 3 == 0:d},{i * 0.01:.2f},{i % 7}" for i in range(600)]
        )
        + "\n"
    )
    assert (
        resume_run(tmp_path / "cut", show_progress=False).summary["faults"]["rounds_completed"]
        == s.max_rounds
    )
