"""fedrisk on Flower's Deployment Engine: a local SuperLink and one SuperNode per bank on
127.0.0.1, with TLS and SuperNode authentication, the same result as in-process, and no
process left behind, also when a bank's SuperNode dies mid-run."""

import base64
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fedrisk.deployment.options import DeploymentOptions
from fedrisk.deployment.processes import pid_alive
from fedrisk.errors import QuorumError
from fedrisk.privacy.secrets import load_secrets_file
from fedrisk.runs.run import run_scenario
from fedrisk.scenario import load_scenario
from tests.conftest import SCENARIOS, interruptible, read_summary

pytestmark = pytest.mark.slow


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text`` (zombies are dead)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmd and state != "Z":
            found.append(int(entry.name))
    return found


def test_quickstart_on_the_deployment_engine_matches_in_process(tmp_path):
    """The issue's first check, through the command line, in secure mode; with client
    DP and a secrets file, so the aggregator's secret (its SuperLink's environment) and
    each bank's (its own file) must reach their apps for the noise to match."""
    secrets = tmp_path / "secrets.json"
    out = tmp_path / "deployed"
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the run's work folder lands here
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fedrisk.cli",
            "run",
            str(SCENARIOS / "quickstart.toml"),
            "--engine",
            "deployment",
            "--set",
            "rounds=1",
            "--set",
            "federation.banks=2",
            "--set",
            "privacy.dp=client",
            "--set",
            "privacy.noise_multiplier=1.0",
            "--secrets",
            str(secrets),
            "--out",
            str(out),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "--insecure" not in proc.stderr  # secure mode: no --insecure warning
    got = read_summary(out)
    assert got["engine"] == "deployment"
    assert got["deployment"] == {
        "superlink": "local (127.0.0.1)",
        "tls": True,
        "supernode_auth": True,
    }
    s = load_scenario(
        SCENARIOS / "quickstart.toml",
        ["rounds=1", "federation.banks=2", "privacy.dp=client", "privacy.noise_multiplier=1.0"],
    )
    ref = run_scenario(
        s, tmp_path / "inprocess", show_progress=False, secrets=load_secrets_file(secrets)
    ).summary
    assert got["privacy"]["randomness"] == "secrets-file"
    assert abs(got["federated"]["auc"] - ref["federated"]["auc"]) <= 1e-6
    assert got["cost"]["bytes_per_round"] == ref["cost"]["bytes_per_round"]
    assert (out / "transcript.jsonl").read_text() == (
        tmp_path / "inprocess" / "transcript.jsonl"
    ).read_text()
    assert processes_mentioning(str(tmp_path)) == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("fedrisk-deploy-")]


def kill_banks(pids: list[int], lines: list[str], kills: dict[int, int]):
    """A watch that SIGKILLs SuperNode ``kills[r]`` as round r starts; keeps every pid
    and every line the run streams."""
    done: set[int] = set()

    def watch(line: str, federation) -> None:
        lines.append(line)
        if not pids:
            pids.extend(federation.pids)
        for rnd, node in kills.items():
            if rnd not in done and f"[ROUND {rnd}/" in line:
                federation.kill_node(node)
                done.add(rnd)

    return watch


def test_supernodes_killed_mid_run(tmp_path, monkeypatch):
    """bank_1's SuperNode is killed as round 1 starts: the round goes on with the two
    banks left (min_parties = 2). bank_2's is killed as round 2 starts: one bank is
    too few, and the run stops with one clear line. Nothing is left running."""
    import tempfile

    from fedrisk.deployment.result import RESULT_MARK, decode_result
    from fedrisk.runs.deployed import run_deployed

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "work"))
    (tmp_path / "work").mkdir()
    s = load_scenario(
        SCENARIOS / "quickstart.toml",
        [
            "rounds=2",
            "federation.banks=3",
            "federation.engine=deployment",
            "federation.min_parties=2",
            # how long the aggregator waits for a dead bank (healthy SuperNodes, polling
            # every 0.2 s, answer in 1-4 s on a loaded 2-core machine, their ClientApps
            # importing in under 1 s; 10 s keeps over twice that margin)
            "federation.round_timeout=10",
        ],
    )
    pids: list[int] = []
    lines: list[str] = []
    out = tmp_path / "out" / "run"
    with pytest.raises(
        QuorumError,
        match="^round 2: only 1 parties answered, fewer than "
        "federation.min_parties = 2; the run stopped$",
    ):
        run_deployed(
            s,
            out,
            None,
            show_progress=False,
            verbose=False,
            keys=None,
            watch=kill_banks(pids, lines, {1: 0, 2: 1}),
        )
    record = decode_result(next(ln for ln in lines if RESULT_MARK in ln).split(RESULT_MARK, 1)[1])
    rounds = record["recorder"]["rounds"]
    assert [(r["round"], r["n_replies"]) for r in rounds] == [(1, 2)]  # round 1: the two left
    assert not out.exists()
    assert len(pids) == 4  # a SuperLink and three SuperNodes were started ...
    assert not [p for p in pids if pid_alive(p)]  # ... and none is left,
    assert processes_mentioning(str(tmp_path)) == []  # nor anything they started
    assert list((tmp_path / "work").iterdir()) == []  # the work folder is gone


def test_bad_deployment_options_are_refused_with_one_line(tmp_path, monkeypatch, capsys):
    """Through the command line's own entry point (in this process: one subprocess per
    case would cost seconds each), from an empty working folder."""
    from types import SimpleNamespace

    from fedrisk.cli import main

    monkeypatch.chdir(tmp_path)

    def run(*argv):
        capsys.readouterr()
        code = main(list(argv))
        return SimpleNamespace(returncode=code, stderr=capsys.readouterr().err)

    def cli(*args):
        return run("run", str(SCENARIOS / "quickstart.toml"), *args)

    cases = [
        (
            ["--engine", "deployment", "--superlink", "10.0.0.5:9093"],
            "--superlink 10.0.0.5:9093: give --root-certificates",
        ),
        (["--engine", "deployment", "--superlink", "nohost"], "expected HOST:PORT"),
        (
            ["--engine", "deployment", "--superlink", "h:1", "--root-certificates", "none.pem"],
            "no such file",
        ),
        (["--insecure"], "--insecure: only used with --engine deployment"),
        (["--engine", "deployment", "--bank-files", "b"], "--bank-files: only with --superlink"),
        (
            [
                "--engine",
                "deployment",
                "--set",
                "privacy.aggregation=paillier",
                "--superlink",
                "h:1",
                "--insecure",
            ],
            "Paillier needs the banks' key on their SuperNodes",
        ),
    ]
    for args, needle in cases:
        proc = cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    split = run(
        "data", "split", str(SCENARIOS / "quickstart.toml"), "--out", str(tmp_path / "full")
    )
    assert split.returncode == 2 and "is not an empty folder" in split.stderr
    bad_key = tmp_path / "bad"
    bad_key.mkdir()
    (bad_key / "banks-paillier-key.json").write_text("{}")
    proc = cli(
        "--engine",
        "deployment",
        "--set",
        "privacy.aggregation=paillier",
        "--superlink",
        "h:1",
        "--insecure",
        "--bank-files",
        str(bad_key),
    )
    assert (
        proc.returncode == 2
        and "is not a key file written by fedrisk data split" in proc.stderr
        and len(proc.stderr.strip().splitlines()) == 1
    )


def test_submitting_to_a_running_superlink_with_split_bank_files(tmp_path):
    """The multi-machine path on one machine: someone else's federation (started here by
    hand), SuperNodes given the files and node configs `fedrisk data split` printed,
    `fedrisk run --superlink` with Paillier decoding through the banks' key, then
    `flwr run .` on the same federation."""
    from flwr.common.config import parse_config_args

    from fedrisk.deployment.processes import LocalFederation, submit_run
    from fedrisk.deployment.result import RESULT_MARK, decode_result
    from fedrisk.scenario import to_toml
    from tests.conftest import ROOT

    sets = [
        "--set",
        "rounds=1",
        "--set",
        # calibration rounds on the Deployment Engine: test_apps's deployed-apps test
        "model.calibration=none",
        "--set",
        "federation.banks=2",
        "--set",
        "privacy.aggregation=paillier",
        "--set",
        "privacy.key_bits=1024",
    ]
    banks = tmp_path / "banks"
    split = subprocess.run(
        [
            sys.executable,
            "-m",
            "fedrisk.cli",
            "data",
            "split",
            str(SCENARIOS / "quickstart.toml"),
            "--out",
            str(banks),
            *sets,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert split.returncode == 0, split.stderr
    configs = [
        parse_config_args([line.split("--node-config ", 1)[1].strip("'")])
        for line in split.stdout.splitlines()
        if "--node-config" in line
    ]
    assert [c["partition-id"] for c in configs] == [0, 1]
    s = load_scenario(
        SCENARIOS / "quickstart.toml", ["rounds=1", "model.calibration=none", "federation.banks=2"]
    )
    scenario = tmp_path / "plain.toml"
    scenario.write_text(to_toml(s))
    with LocalFederation(tmp_path / "theirs", configs) as federation:
        out = tmp_path / "run"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "fedrisk.cli",
                "run",
                str(SCENARIOS / "quickstart.toml"),
                *sets,
                "--engine",
                "deployment",
                "--superlink",
                federation.address,
                "--root-certificates",
                str(federation.root_cert),
                "--bank-files",
                str(banks),
                "--out",
                str(out),
                "--quiet",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        # the same federation, reached the way Flower users do: `flwr run .` from the
        # checkout (a bundle of scenarios/*.toml; the code is the installed fedrisk)
        dot = submit_run(
            ROOT,
            federation.address,
            root_cert=federation.root_cert,
            insecure=False,
            run_config={"scenario": str(scenario)},
            flwr_home=tmp_path / "cli",
            timeout=300,
        )
        pids = federation.pids
    assert not [p for p in pids if pid_alive(p)]
    got = read_summary(out)
    assert got["deployment"]["superlink"] == federation.address
    run_scenario(s, tmp_path / "inprocess", show_progress=False)
    ref = read_summary(tmp_path / "inprocess")
    # Paillier decodes to the plaintext model bit for bit
    assert got["federated"]["auc"] == ref["federated"]["auc"]
    assert got["privacy"]["aggregation"] == "paillier"
    line = next(ln for ln in dot.log.splitlines() if RESULT_MARK in ln)
    record = decode_result(line.split(RESULT_MARK, 1)[1])
    assert record["error"] is None
    assert len(record["recorder"]["rounds"]) == 1
    reference = json.loads((tmp_path / "inprocess" / "model.json").read_text())
    final = np.frombuffer(base64.b64decode(record["final_params"]), dtype=np.float64)
    assert final[:-1].tolist() == reference["weights"]  # bit for bit
    assert final[-1] == reference["intercept"]


def test_ctrl_c_stops_every_process_of_a_deployment_run(tmp_path):
    import signal
    import time

    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fedrisk.cli",
            "run",
            str(SCENARIOS / "quickstart.toml"),
            "--engine",
            "deployment",
            "--set",
            "federation.banks=3",
            "--out",
            str(out),
            "--quiet",
        ],
        preexec_fn=interruptible,  # SIGINT as a terminal delivers it
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until the three SuperNodes are up
            running = [
                p
                for p in processes_mentioning(str(tmp_path))
                if b"fedrisk.deployment.supernode" in Path(f"/proc/{p}/cmdline").read_bytes()
            ]
            if len(running) >= 3:
                break
            time.sleep(0.2)
        assert len(running) >= 3
        time.sleep(3)  # into the run
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
        leftover = processes_mentioning(str(tmp_path))
        for pid in leftover:  # a failed test must not leave a federation running
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1] == (
        "fedrisk: interrupted; no results were written and no partial folder was left behind"
    )
    assert "Traceback" not in err
    assert leftover == []  # seen before the clean-up above killed them
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("fedrisk-deploy-")]


def test_insecure_mode_warns_before_anything_starts(tmp_path, monkeypatch, capsys):
    import fedrisk.runs.deployed as deploy_run

    started = []

    def start_then_ctrl_c(*args, **kwargs):
        started.append(1)
        raise KeyboardInterrupt

    monkeypatch.setattr(deploy_run, "run_local", start_then_ctrl_c)
    s = load_scenario(
        SCENARIOS / "quickstart.toml",
        ["rounds=1", "federation.banks=3", "federation.engine=deployment"],
    )
    options = DeploymentOptions.from_cli(None, None, True)
    with pytest.raises(KeyboardInterrupt):
        deploy_run.run_deployed(
            s, tmp_path / "out", options, show_progress=False, verbose=False, keys=None
        )
    err = capsys.readouterr().err
    assert "warning: --insecure: no TLS and no SuperNode authentication" in err
    assert started == [1] and not (tmp_path / "out").exists()
