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
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from fedrisk.crypto.paillier import BankKeys
from fedrisk.deployment.apps import public_job
from fedrisk.deployment.bank_files import KEY_FILE, write_bank_files
from fedrisk.deployment.launch import run_local, run_remote, run_timeout, write_app
from fedrisk.deployment.options import DeploymentOptions
from fedrisk.deployment.result import (
    PROGRESS_MARK,
    raise_run_error,
    recorder_from_result,
    result_from_log,
)
from fedrisk.errors import InputError
from fedrisk.flower.engines import quiet_flower
from fedrisk.horizontal.keys import paillier_keys
from fedrisk.runs.horizontal import complete_horizontal, prepare_job
from fedrisk.runs.outputs import RunOutcome
from fedrisk.runs.progress import run_progress
from fedrisk.runs.rundir import staged_run_dir
from fedrisk.scenario import Scenario


def run_deployed(
    s: Scenario,
    out: Path,
    options: DeploymentOptions | None,
    *,
    show_progress: bool = True,
    verbose: bool = False,
    keys: BankKeys | None = None,
    watch: Callable[[str, object], None] | None = None,
) -> RunOutcome:
    """Run ``s`` on the Deployment Engine and write ``out`` like any other run.

    ``watch(line, federation)`` sees every line the run streams, with the local
    federation (fault injection in tests: kill a SuperNode when round 1 starts).
    """
    options = options or DeploymentOptions()
    started = time.perf_counter()
    quiet_flower(verbose)
    keys = keys or paillier_keys(s)
    if keys:  # the banks encrypt on their SuperNodes, not here
        keys.stop_precompute.set()
    if options.insecure:
        print(
            "fedrisk: warning: --insecure: no TLS and no SuperNode authentication; "
            "anyone who can reach the ports can read updates or join as a bank",
            file=sys.stderr,
        )
    data, job, score = prepare_job(s, keys)
    work = Path(tempfile.mkdtemp(prefix="fedrisk-deploy-"))
    restore = _interrupt_on_termination()
    try:
        with staged_run_dir(out) as stage:
            app_dir = write_app(work / "app")
            run_config = {"fedrisk-job": json.dumps(public_job(job), allow_nan=True)}
            timeout = run_timeout(s)
            with run_progress(show_progress, s) as (progress, task):

                def on_line(line: str) -> None:
                    if verbose:
                        print(line, file=sys.stderr)
                    if PROGRESS_MARK in line:
                        progress.update(task, advance=1, status="on SuperNodes")

                fed_started = time.perf_counter()
                if options.superlink is None:
                    log = run_local(work, job, keys, run_config, timeout, options, on_line, watch)
                else:
                    log = run_remote(work, app_dir, run_config, timeout, options, on_line)
                fed_wall = time.perf_counter() - fed_started
            record = result_from_log(log)
            raise_run_error(record)
            recorder = recorder_from_result(record, score)
            deployment = {
                "superlink": options.superlink or "local (127.0.0.1)",
                "tls": not options.insecure,
                "supernode_auth": options.superlink is None and not options.insecure,
            }
            summary = complete_horizontal(
                stage,
                s,
                data,
                job,
                recorder,
                fed_wall,
                score,
                started,
                extra={"deployment": deployment},
            )
        return RunOutcome(out, summary)
    finally:
        restore()
        shutil.rmtree(work, ignore_errors=True)


def _interrupt_on_termination():
    """Make SIGTERM and SIGHUP raise KeyboardInterrupt while a deployment runs, so the
    clean-up that Ctrl-C gets (every process stopped, the work folder with the banks'
    rows and key removed) runs for them too. Returns the function restoring handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    old = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    return lambda: [signal.signal(sig, handler) for sig, handler in old.items()]


def split_for_supernodes(s, out: Path) -> str:
    """``fedrisk data split``: each bank's rows (and the banks' Paillier key) for
    SuperNodes on other machines; returns what to tell each SuperNode."""
    if s.federation.kind != "horizontal":
        raise InputError(f"{s.source_file}: federation.kind: `data split` is for horizontal runs")
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
    lines = [
        f"{len(configs)} banks in {out}; copy each bank's file (and {KEY_FILE}, if "
        "any) to its machine and start its SuperNode with:"
    ]
    for bank, cfg in zip(job.banks, configs):
        cfg = {**cfg, "data-path": str(out.resolve() / Path(cfg["data-path"]).name)}
        if "paillier-key" in cfg:
            cfg["paillier-key"] = str(out.resolve() / KEY_FILE)
        text = " ".join(f"{k}={json.dumps(v)}" for k, v in cfg.items())
        lines.append(f"  {bank.name}: --node-config '{text}'")
    return "\n".join(lines)


__all__ = ["run_deployed", "split_for_supernodes"]
