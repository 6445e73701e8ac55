"""``fedrisk run``: one scenario to one run folder, dispatched on kind x engine."""

from __future__ import annotations

from pathlib import Path

from fedrisk.crypto.paillier import BankKeys
from fedrisk.deployment.options import DeploymentOptions
from fedrisk.errors import InputError
from fedrisk.flower.checkpoint import Checkpoint
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.deployed import run_deployed
from fedrisk.runs.horizontal import run_horizontal
from fedrisk.runs.outputs import RunOutcome
from fedrisk.runs.scorecard import run_scorecard
from fedrisk.runs.secureboost import run_secureboost
from fedrisk.runs.sharing import run_secret_shared
from fedrisk.runs.signals import stop_on_termination
from fedrisk.runs.vertical import run_vertical
from fedrisk.scenario import Scenario


def run_scenario(
    s: Scenario,
    out: Path,
    *,
    show_progress: bool = True,
    verbose: bool = False,
    client_mods: list | None = None,
    keys: BankKeys | None = None,
    resume: Checkpoint | None = None,
    deployment: DeploymentOptions | None = None,
    secrets: RunSecrets | None = None,
) -> RunOutcome:
    """Run ``s`` and write ``out``; raises InputError on bad input before writing.

    ``client_mods`` are extra Flower mods on every party's ClientApp (fault injection in
    tests and experiments: a mod can drop, delay or tamper with what a party sends).
    ``keys`` are the banks' Paillier keys from
    :func:`fedrisk.horizontal.keys.paillier_keys`, made earlier; made here if None.
    ``resume`` continues an interrupted in-process run from its checkpoint
    (:func:`fedrisk.runs.resume.resume_run`). ``deployment`` says where the Deployment
    Engine's federation is (a local one on 127.0.0.1 by default). ``secrets`` says
    where each party's own secret comes from (``--secrets FILE``; fresh os entropy per
    party when None).
    """
    # SIGTERM/SIGHUP clean up like Ctrl-C: run folder, and a deployment's processes
    # and work folder
    with stop_on_termination():
        return _dispatch(
            s, out, show_progress, verbose, client_mods, keys, resume, deployment, secrets
        )


def _dispatch(s, out, show_progress, verbose, client_mods, keys, resume, deployment, secrets):
    if s.model.kind == "secureboost":
        return run_secureboost(
            s,
            out,
            show_progress=show_progress,
            verbose=verbose,
            client_mods=client_mods,
            secrets=secrets,
        )
    if s.model.kind == "scorecard":
        return run_scorecard(
            s,
            out,
            show_progress=show_progress,
            verbose=verbose,
            client_mods=client_mods,
            keys=keys,
            secrets=secrets,
        )
    if s.federation.kind == "vertical" and s.privacy.protocol == "secret_sharing":
        return run_secret_shared(
            s,
            out,
            show_progress=show_progress,
            verbose=verbose,
            client_mods=client_mods,
            secrets=secrets,
        )
    if s.federation.kind == "vertical":
        return run_vertical(
            s,
            out,
            show_progress=show_progress,
            verbose=verbose,
            client_mods=client_mods,
            deployment=deployment,
            secrets=secrets,
        )
    if s.federation.engine == "deployment":
        if resume is not None:
            raise InputError(
                "--resume: runs on the deployment engine are not "
                "checkpointed; only in-process runs resume"
            )
        return run_deployed(
            s,
            out,
            deployment,
            show_progress=show_progress,
            verbose=verbose,
            keys=keys,
            secrets=secrets,
        )
    return run_horizontal(
        s,
        out,
        show_progress=show_progress,
        verbose=verbose,
        client_mods=client_mods,
        keys=keys,
        resume=resume,
        secrets=secrets,
    )


__all__ = ["run_scenario"]
