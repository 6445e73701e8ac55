"""Start or reach a federation, submit the run with ``flwr run`` and collect its log.

The submitted Flower App is a folder with a pyproject only: the code is the fedrisk
installed on every SuperLink and SuperNode machine, the job travels in the run config.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fedrisk.deployment.options import DeploymentOptions
from fedrisk.deployment.processes import LocalFederation, SubmittedRun, submit_run
from fedrisk.deployment.result import RESULT_MARK
from fedrisk.errors import ProtocolError
from fedrisk.horizontal.aggregation import mode_of
from fedrisk.scenario import Scenario

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
serverapp = "fedrisk.deployment.apps:server_app"
clientapp = "fedrisk.deployment.apps:client_app"

[tool.flwr.app.config]
fedrisk-job = ""
"""
# Start-up (SuperLink, SuperNodes, registration) plus, per round, a few SuperNode polls,
# a fresh ClientApp process per message, and as long as the aggregator may wait for
# replies (round_timeout per message exchange; SecAgg+ has four): a hung run still ends.
RUN_TIMEOUT_BASE = 300.0
RUN_TIMEOUT_PER_ROUND = 120.0


def run_timeout(s: Scenario) -> float:
    exchanges = mode_of(s.privacy.aggregation).exchanges_per_round
    exchanges += s.privacy.key == "threshold"  # the partial-decryption exchange
    return RUN_TIMEOUT_BASE + s.max_rounds * (
        RUN_TIMEOUT_PER_ROUND + exchanges * s.federation.round_timeout
    )


def write_app(folder: Path) -> Path:
    """A Flower App folder: only a pyproject; the code is the installed fedrisk."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(APP_PYPROJECT, encoding="utf-8")
    return folder


def run_local(
    work: Path,
    node_configs: list[dict[str, Any]],
    run_config: dict,
    timeout: float,
    options: DeploymentOptions,
    on_line: Callable[[str], None],
    watch: Callable[[str, LocalFederation], None] | None,
    link_env: dict[str, str] | None = None,
) -> str:
    """Start a local federation on 127.0.0.1 (one SuperNode per node config), submit the
    run, stop every process; return the run's log (it holds the result line).
    ``watch(line, federation)`` sees every streamed line (fault injection in tests);
    ``link_env`` goes to the SuperLink alone (and so to its ServerApp processes)."""
    with LocalFederation(
        work / "federation", node_configs, secure=not options.insecure, link_env=link_env
    ) as federation:

        def each_line(line: str) -> None:
            on_line(line)
            if watch is not None:
                watch(line, federation)

        run = submit_run(
            work / "app",
            federation.address,
            root_cert=federation.root_cert,
            insecure=options.insecure,
            run_config=run_config,
            flwr_home=work / "cli",
            timeout=timeout,
            on_line=each_line,
            check=False,
        )
    return _checked_log(run)


def run_remote(
    work: Path,
    app_dir: Path,
    run_config: dict,
    timeout: float,
    options: DeploymentOptions,
    on_line: Callable[[str], None],
) -> str:
    """Submit the run to the SuperLink at ``--superlink``; return the run's log."""
    run = submit_run(
        app_dir,
        options.superlink,
        root_cert=options.root_certificates,
        insecure=options.insecure,
        run_config=run_config,
        flwr_home=work / "cli",
        timeout=timeout,
        on_line=on_line,
        check=False,
    )
    return _checked_log(run)


def _checked_log(run: SubmittedRun) -> str:
    if RESULT_MARK not in run.log:
        tail = next(
            (ln.strip() for ln in reversed(run.log.splitlines()) if ln.strip()), "no output"
        )
        raise ProtocolError(
            f"the Flower run ended {run.status} without a result ({run.details or tail})"[:400]
        )
    return run.log


__all__ = [
    "RUN_TIMEOUT_BASE",
    "RUN_TIMEOUT_PER_ROUND",
    "run_local",
    "run_remote",
    "run_timeout",
    "write_app",
]
