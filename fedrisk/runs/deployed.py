"""``fedrisk run --engine deployment``: the same apps on Flower's Deployment Engine.

With no ``--superlink``, a local federation is started on 127.0.0.1 (one SuperLink, one
SuperNode per bank or data party, TLS and SuperNode authentication unless
``--insecure``), each party's rows written to a file only its SuperNode is pointed at
(``--node-config data-path``), the run submitted with ``flwr run``, and every process
stopped by pid at the end, on failure or on Ctrl-C. With ``--superlink HOST:PORT`` the
run is submitted to a federation someone else started (see the README's multi-machine
recipe).

Either way the ServerApp streams its result back as one log line and this process, the
simulator's harness, scores it on held-out rows and writes the usual run folder.
"""

from __future__ import annotations

import itertools
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fedrisk.crypto.paillier import BankKeys
from fedrisk.deployment.apps import AGGREGATOR_SECRET_ENV, public_job
from fedrisk.deployment.bank_files import write_bank_files
from fedrisk.deployment.launch import run_local, run_remote, run_timeout, write_app
from fedrisk.deployment.options import DeploymentOptions
from fedrisk.deployment.processes import LocalFederation
from fedrisk.deployment.result import (
    PROGRESS_MARK,
    raise_run_error,
    recorder_from_result,
    result_from_log,
)
from fedrisk.flower.engines import quiet_flower
from fedrisk.horizontal.keys import paillier_keys
from fedrisk.privacy.secrets import AGGREGATOR, RunSecrets, write_secret_file
from fedrisk.runs.horizontal import complete_horizontal, prepare_job
from fedrisk.runs.outputs import RunOutcome
from fedrisk.runs.progress import run_progress
from fedrisk.runs.rundir import staged_run_dir
from fedrisk.scenario import Scenario

Watch = Callable[[str, LocalFederation], None]


def run_deployed(
    s: Scenario,
    out: Path,
    options: DeploymentOptions | None,
    *,
    show_progress: bool = True,
    verbose: bool = False,
    keys: BankKeys | None = None,
    watch: Watch | None = None,
    secrets: RunSecrets | None = None,
) -> RunOutcome:
    """Run the horizontal scenario ``s`` on the Deployment Engine and write ``out`` like
    any other run.

    ``watch(line, federation)`` sees every line the run streams, with the local
    federation (fault injection in tests: kill a SuperNode when round 1 starts).
    ``secrets``: where each party's secret comes from (fresh os entropy when None); each
    bank's reaches its SuperNode in its own file, the aggregator's its SuperLink.
    """
    secrets = secrets or RunSecrets()
    options = options or DeploymentOptions()
    started = time.perf_counter()
    quiet_flower(verbose)
    keys = keys or paillier_keys(s)
    if keys:  # the banks encrypt on their SuperNodes, not here
        keys.stop_precompute.set()
    warn_if_insecure(options)
    data, job, score = prepare_job(s, keys, secrets)

    def link_env(work: Path) -> dict[str, str]:
        path = write_secret_file(work / "aggregator-secret", secrets.of(AGGREGATOR))
        return {AGGREGATOR_SECRET_ENV: str(path)}

    with staged_run_dir(out) as stage:
        record, fed_wall, deployment = deploy(
            s,
            options,
            lambda work: {"fedrisk-job": json.dumps(public_job(job), allow_nan=True)},
            lambda work: write_bank_files(work / "banks", job, keys),
            run_timeout(s),
            show_progress=show_progress,
            verbose=verbose,
            watch=watch,
            link_env=link_env,
        )
        recorder = recorder_from_result(record, score)
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


def deploy(
    s: Scenario,
    options: DeploymentOptions,
    make_run_config: Callable[[Path], dict[str, Any]],
    write_node_files: Callable[[Path], list[dict[str, Any]]],
    timeout: float,
    *,
    show_progress: bool,
    verbose: bool,
    watch: Watch | None = None,
    link_env: Callable[[Path], dict[str, str]] | None = None,
) -> tuple[dict[str, Any], float, dict[str, Any]]:
    """Submit a run to a local federation (one SuperNode per node config
    ``write_node_files(work)`` returns; ``link_env(work)`` is the SuperLink's own
    environment) or to ``--superlink``; return the ServerApp's
    result record, the federation's wall seconds and the summary's ``deployment``
    section. The work folder, which holds the parties' rows and keys, is removed at the
    end whatever happens; a result that reports a failure raises it here."""
    work = Path(tempfile.mkdtemp(prefix="fedrisk-deploy-"))
    try:
        app_dir = write_app(work / "app")
        run_config = make_run_config(work)
        with run_progress(show_progress, s) as (progress, task):
            under_way = itertools.count(2)  # the epoch under way after each reported one

            def on_line(line: str) -> None:
                if verbose:
                    print(line, file=sys.stderr)
                if PROGRESS_MARK in line:
                    epoch = min(next(under_way), s.max_rounds)  # vertical runs show it
                    progress.update(task, advance=1, status="on SuperNodes", epoch=epoch)

            fed_started = time.perf_counter()
            if options.superlink is None:
                nodes = write_node_files(work)
                env = link_env(work) if link_env is not None else None
                log = run_local(work, nodes, run_config, timeout, options, on_line, watch, env)
            else:
                log = run_remote(work, app_dir, run_config, timeout, options, on_line)
            fed_wall = time.perf_counter() - fed_started
        record = result_from_log(log)
        raise_run_error(record)
        deployment = {
            "superlink": options.superlink or "local (127.0.0.1)",
            "tls": not options.insecure,
            "supernode_auth": options.superlink is None and not options.insecure,
        }
        return record, fed_wall, deployment
    finally:
        shutil.rmtree(work, ignore_errors=True)


def warn_if_insecure(options: DeploymentOptions) -> None:
    if options.insecure:
        print(
            "fedrisk: warning: --insecure: no TLS and no SuperNode authentication; "
            "anyone who can reach the ports can read updates or join as a party",
            file=sys.stderr,
        )


__all__ = ["Watch", "deploy", "run_deployed", "warn_if_insecure"]
