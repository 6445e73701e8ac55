"""``fedrisk run --engine deployment``: the same apps on Flower's Deployment Engine.

With no ``--superlink``, a local federation is started on 127.0.0.1 (one SuperLink, one
SuperNode per bank, TLS and SuperNode authentication unless ``--insecure``), each bank's
rows written to a file only its SuperNode is pointed at (``--node-config data-path``),
the run submitted with ``flwr run``, and every process stopped by pid at the end, on
failure or on Ctrl-C. With ``--superlink HOST:PORT`` the run is submitted to a
federation someone else started (see the README's multi-machine recipe).

Either way the ServerApp streams its result back as one log line and this process, the
simulator's harness, scores it on held-out rows and writes the usual run folder.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fedrisk.errors import InputError, ProtocolError
from fedrisk.federation.faults import QuorumError
from fedrisk.federation.flower_app import (PROGRESS_MARK, RESULT_MARK, decode_result,
                                           public_job, recorder_from_result)

APP_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "fedrisk-job"
version = "1.0.0"
description = "A fedrisk scenario as a Flower App (the code is the installed fedrisk)"
dependencies = []

[tool.flwr.app]
publisher = "fedrisk"

[tool.flwr.app.components]
serverapp = "fedrisk.federation.flower_app:server_app"
clientapp = "fedrisk.federation.flower_app:client_app"

[tool.flwr.app.config]
fedrisk-job = ""
"""
# Start-up (SuperLink, SuperNodes, registration) plus, per round, a few SuperNode polls,
# a fresh ClientApp process per message, and as long as the aggregator may wait for
# replies (round_timeout per message exchange; SecAgg+ has four): a hung run still ends.
RUN_TIMEOUT_BASE = 300.0
RUN_TIMEOUT_PER_ROUND = 120.0


def run_timeout(s) -> float:
    exchanges = 4 if s.privacy.aggregation == "secagg" else 1
    return RUN_TIMEOUT_BASE + s.rounds * (RUN_TIMEOUT_PER_ROUND
                                          + exchanges * s.federation.round_timeout)


KEY_FILE = "banks-paillier-key.json"


@dataclass(frozen=True)
class DeploymentOptions:
    superlink: str | None = None          # HOST:PORT of a running SuperLink's Control API
    root_certificates: Path | None = None  # its CA certificate (TLS)
    insecure: bool = False
    bank_files: Path | None = None        # what `fedrisk data split` wrote for the banks

    def bank_keys(self, s):
        """The banks' Paillier key from the bank files (None without Paillier)."""
        if s.privacy.aggregation != "paillier":
            return None
        import threading

        from fedrisk.crypto.paillier import BankKeys
        from fedrisk.federation.flower_app import read_private_key
        path = self.bank_files / KEY_FILE
        try:
            private = read_private_key(str(path))
        except (OSError, ValueError, KeyError, TypeError):
            raise InputError(f"--bank-files {self.bank_files}: {KEY_FILE} is not a key file "
                             "written by fedrisk data split") from None
        return BankKeys(private.public_key, private, threading.Event())

    @classmethod
    def from_cli(cls, superlink: str | None, root_certificates: Path | None,
                 insecure: bool, bank_files: Path | None = None,
                 s=None) -> "DeploymentOptions":
        if superlink is not None and not re.fullmatch(r"[\w.\-\[\]:]+:\d{1,5}", superlink):
            raise InputError(f"--superlink {superlink}: expected HOST:PORT, e.g. "
                             "10.0.0.5:9093")
        if root_certificates is not None:
            if superlink is None:
                raise InputError("--root-certificates: only with --superlink (a local "
                                 "federation makes its own certificates)")
            if not root_certificates.is_file():
                raise InputError(f"--root-certificates {root_certificates}: no such file")
            if insecure:
                raise InputError("--root-certificates: not with --insecure")
        if superlink is not None and root_certificates is None and not insecure:
            raise InputError(f"--superlink {superlink}: give --root-certificates (the CA of "
                             "its TLS certificate), or --insecure for a SuperLink without "
                             "TLS")
        if bank_files is not None:
            if superlink is None:
                raise InputError("--bank-files: only with --superlink (a local federation "
                                 "writes its own)")
            if not bank_files.is_dir():
                raise InputError(f"--bank-files {bank_files}: no such folder (write it with "
                                 "fedrisk data split)")
            if s is not None and s.privacy.aggregation == "paillier" and \
                    not (bank_files / KEY_FILE).is_file():
                raise InputError(f"--bank-files {bank_files}: no {KEY_FILE}; split the "
                                 "scenario again with privacy.aggregation = 'paillier'")
        elif superlink is not None and s is not None and s.privacy.aggregation == "paillier":
            raise InputError(f"--superlink {superlink}: Paillier needs the banks' key on "
                             "their SuperNodes; give --bank-files DIR from fedrisk data split")
        return cls(superlink, root_certificates, insecure, bank_files)


def run_deployed(s, out: Path, options: DeploymentOptions | None, *, show_progress: bool,
                 verbose: bool, keys, watch=None) -> Any:
    """Run ``s`` on the Deployment Engine and write ``out`` like any other run.

    ``watch(line, federation)`` sees every line the run streams, with the local
    federation (fault injection in tests: kill a SuperNode when round 1 starts).
    """
    from fedrisk.rundir import staged_run_dir
    from fedrisk.runner import RunOutcome, _progress, complete_horizontal, prepare_job

    options = options or DeploymentOptions()
    started = time.perf_counter()
    if keys:  # the banks encrypt on their SuperNodes, not here
        keys.stop_precompute.set()
    if options.insecure:
        print("fedrisk: warning: --insecure: no TLS and no SuperNode authentication; "
              "anyone who can reach the ports can read updates or join as a bank",
              file=sys.stderr)
    data, job, score = prepare_job(s, keys)
    work = Path(tempfile.mkdtemp(prefix="fedrisk-deploy-"))
    restore = _interrupt_on_termination()
    try:
        with staged_run_dir(out) as stage:
            app_dir = write_app(work / "app")
            run_config = {"fedrisk-job": json.dumps(public_job(job), allow_nan=True)}
            timeout = run_timeout(s)
            with _progress(show_progress, s) as (progress, task):
                def on_line(line: str) -> None:
                    if verbose:
                        print(line, file=sys.stderr)
                    if PROGRESS_MARK in line:
                        progress.update(task, advance=1, status="on SuperNodes")

                fed_started = time.perf_counter()
                if options.superlink is None:
                    log = _run_local(work, job, keys, run_config, timeout, options, on_line,
                                     watch)
                else:
                    log = _run_remote(work, app_dir, run_config, timeout, options, on_line)
                fed_wall = time.perf_counter() - fed_started
            record = _result_from(log)
            _raise_run_error(record)
            recorder = recorder_from_result(record, score)
            deployment = {
                "superlink": options.superlink or "local (127.0.0.1)",
                "tls": not options.insecure,
                "supernode_auth": options.superlink is None and not options.insecure,
            }
            summary = complete_horizontal(stage, s, data, job, recorder, fed_wall, score,
                                          started, extra={"deployment": deployment})
        return RunOutcome(out, summary)
    finally:
        restore()
        shutil.rmtree(work, ignore_errors=True)


def _interrupt_on_termination():
    """Make SIGTERM and SIGHUP raise KeyboardInterrupt while a deployment runs, so the
    clean-up that Ctrl-C gets (every process stopped, the work folder with the banks'
    rows and key removed) runs for them too. Returns the function restoring handlers."""
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    old = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    return lambda: [signal.signal(sig, handler) for sig, handler in old.items()]


def split_for_supernodes(s, out: Path) -> str:
    """``fedrisk data split``: each bank's rows (and the banks' Paillier key) for
    SuperNodes on other machines; returns what to tell each SuperNode."""
    from fedrisk.federation.keys import paillier_keys
    from fedrisk.runner import prepare_job
    if s.federation.kind != "horizontal":
        raise InputError(f"{s.source_file}: federation.kind: `data split` is for horizontal "
                         "runs")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"--out {out}: exists and is not an empty folder")
    keys = paillier_keys(s)
    _, job, _ = prepare_job(s, keys)
    if keys:
        keys.stop_precompute.set()
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        configs = write_bank_files(stage, job, keys)
        if out.exists():
            out.rmdir()
        stage.rename(out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    lines = [f"{len(configs)} banks in {out}; copy each bank's file (and {KEY_FILE}, if "
             "any) to its machine and start its SuperNode with:"]
    for bank, cfg in zip(job.banks, configs):
        cfg = {**cfg, "data-path": str(out.resolve() / Path(cfg["data-path"]).name)}
        if "paillier-key" in cfg:
            cfg["paillier-key"] = str(out.resolve() / KEY_FILE)
        text = " ".join(f"{k}={json.dumps(v)}" for k, v in cfg.items())
        lines.append(f"  {bank.name}: --node-config '{text}'")
    return "\n".join(lines)


def write_app(folder: Path) -> Path:
    """A Flower App folder: only a pyproject; the code is the installed fedrisk."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(APP_PYPROJECT, encoding="utf-8")
    return folder


def write_bank_files(folder: Path, job, keys) -> list[dict[str, Any]]:
    """Each bank's rows (and, in Paillier mode, the banks' key) in files its SuperNode
    alone is given; returns the SuperNodes' node configs."""
    from fedrisk.crypto.paillier import private_key_to_dict
    folder.mkdir(parents=True, exist_ok=True)
    key_file = None
    if keys is not None:
        key_file = folder / KEY_FILE
        key_file.write_text(json.dumps(private_key_to_dict(keys.private_key)),
                            encoding="utf-8")
        key_file.chmod(0o600)
    configs = []
    for i, bank in enumerate(job.banks):
        path = folder / f"{bank.name}.npz"
        np.savez(path, X=bank.X, y=bank.y)
        configs.append({"partition-id": i, "num-partitions": len(job.banks),
                        "data-path": str(path),
                        **({"paillier-key": str(key_file)} if key_file else {})})
    return configs


def _run_local(work: Path, job, keys, run_config: dict, timeout: float,
               options: DeploymentOptions, on_line, watch) -> str:
    from fedrisk.federation.deployment import LocalFederation, submit_run
    node_configs = write_bank_files(work / "banks", job, keys)
    with LocalFederation(work / "federation", node_configs,
                         secure=not options.insecure) as federation:
        def each_line(line: str) -> None:
            on_line(line)
            if watch is not None:
                watch(line, federation)

        run = submit_run(work / "app", federation.address, root_cert=federation.root_cert,
                         insecure=options.insecure, run_config=run_config,
                         flwr_home=work / "cli", timeout=timeout, on_line=each_line,
                         check=False)
    return _checked_log(run)


def _run_remote(work: Path, app_dir: Path, run_config: dict, timeout: float,
                options: DeploymentOptions, on_line) -> str:
    from fedrisk.federation.deployment import submit_run
    run = submit_run(app_dir, options.superlink, root_cert=options.root_certificates,
                     insecure=options.insecure, run_config=run_config,
                     flwr_home=work / "cli", timeout=timeout, on_line=on_line, check=False)
    return _checked_log(run)


def _checked_log(run) -> str:
    if RESULT_MARK not in run.log:
        tail = next((ln.strip() for ln in reversed(run.log.splitlines()) if ln.strip()),
                    "no output")
        raise ProtocolError(f"the Flower run ended {run.status} without a result "
                            f"({run.details or tail})"[:400])
    return run.log


def _result_from(log: str) -> dict[str, Any]:
    line = next(ln for ln in reversed(log.splitlines()) if RESULT_MARK in ln)
    return decode_result(line.split(RESULT_MARK, 1)[1].strip())


def _raise_run_error(record: dict[str, Any]) -> None:
    kind, message = record["error_kind"], record["error"]
    if kind == "quorum":
        raise QuorumError(message)
    if kind == "protocol":
        raise ProtocolError(message)
    if kind is not None:
        raise RuntimeError(f"the ServerApp failed: {message}")
