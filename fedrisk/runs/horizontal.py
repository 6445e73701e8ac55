"""A horizontal run on the in-process or Simulation engine, as a pipeline:

prepare (data, the banks' job, the scorer) -> federate (the Flower apps on an engine,
checkpointed in-process) -> evaluate (DP re-accounted for what ran, Paillier rounds
decoded on the banks' side, baselines, metrics, attacks) -> write (the run folder).

Everything that can fail on bad input happens in *prepare*, before the run folder is
staged ("nothing half-written"). The Deployment Engine shares prepare, evaluate and
write (:mod:`fedrisk.runs.deployed`).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from fedrisk.crypto.paillier import BankKeys, VectorCipher, VectorDecryptor
from fedrisk.crypto.threshold import ShareDecryptor
from fedrisk.data.prepare import PreparedData, prepare_horizontal
from fedrisk.errors import InputError
from fedrisk.evaluation import score_metrics
from fedrisk.evaluation.baselines import (
    BaselineBudget,
    train_centralised,
    train_local_only,
    train_reference,
)
from fedrisk.evaluation.scorecard import write_run_scorecard
from fedrisk.flower.checkpoint import SERVER_FILE, Checkpoint
from fedrisk.flower.engines import quiet_flower, run_engine
from fedrisk.flower.participation import Participation
from fedrisk.flower.recorder import ServerRecorder
from fedrisk.horizontal.aggregation import mode_of
from fedrisk.horizontal.aggregation.paillier import (
    TASK_OF_CODE,
    apply_decrypted,
    clipped_values,
    crypto_seconds,
    decode_aggregate,
)
from fedrisk.horizontal.apps import make_client_app, make_server_app
from fedrisk.horizontal.calibration import TRAIN
from fedrisk.horizontal.early_stopping import EarlyStopping
from fedrisk.horizontal.job import HorizontalJob
from fedrisk.horizontal.keys import paillier_keys
from fedrisk.horizontal.server_optimizer import ServerOptimizer
from fedrisk.horizontal.setup import bank_job
from fedrisk.i18n import gettext as _
from fedrisk.models.logistic import predict_proba
from fedrisk.privacy.plan import DPPlan, finite_or_none
from fedrisk.privacy.secrets import AGGREGATOR, PartySecret, RunSecrets
from fedrisk.runs.checkpointing import check_same_data, checkpointer, keys_from_checkpoint
from fedrisk.runs.outputs import RunOutcome, model_record, write_json, write_outputs
from fedrisk.runs.progress import run_progress
from fedrisk.runs.rundir import resumable_run_dir, staged_run_dir
from fedrisk.runs.summary import faults_summary, horizontal_summary, membership_attack
from fedrisk.scenario import Scenario

Scorer = Callable[[np.ndarray], dict[str, float]]


def run_horizontal(
    s: Scenario,
    out: Path,
    *,
    show_progress: bool = True,
    verbose: bool = False,
    client_mods: list | None = None,
    keys: BankKeys | None = None,
    resume: Checkpoint | None = None,
    secrets: RunSecrets | None = None,
) -> RunOutcome:
    """Run ``s`` on the in-process or Simulation engine and write ``out``.

    ``resume`` continues an interrupted in-process run from its checkpoint
    (:func:`fedrisk.runs.resume.resume_run`); in-process, every round is checkpointed.
    ``secrets``: where each party's secret comes from (fresh os entropy when None; a
    resumed run restores the secrets its parties had).
    """
    started = time.perf_counter()
    quiet_flower(verbose)
    engine = s.federation.engine
    if resume is not None and engine != "inprocess":
        raise InputError(
            f"--resume: runs on the {engine} engine are not "
            "checkpointed; only in-process runs resume"
        )
    if resume is not None and resume.banks.get("keys"):
        keys = keys_from_checkpoint(s, resume.banks["keys"])
    keys = keys or paillier_keys(s)
    if resume is not None:
        secrets = secrets_from_checkpoint(resume)
    secrets = secrets or RunSecrets()
    data, job, score = prepare_job(s, keys, secrets)
    if resume is not None:
        check_same_data(resume, job, out)
    checkpoints = engine == "inprocess"
    with (
        resumable_run_dir(out, resume=resume is not None, checkpoint_file=SERVER_FILE)
        if checkpoints
        else staged_run_dir(out)
    ) as stage:
        recorder, fed_wall = federate(
            job,
            score,
            keys,
            engine,
            client_mods,
            resume,
            stage / "checkpoint" if checkpoints else None,
            show_progress,
            secrets.of(AGGREGATOR),
        )
        summary = complete_horizontal(stage, s, data, job, recorder, fed_wall, score, started)
    return RunOutcome(out, summary)


# --- prepare ---------------------------------------------------------------------------------


def prepare_job(
    s: Scenario, keys: BankKeys | None, secrets: RunSecrets | None = None
) -> tuple[PreparedData, HorizontalJob, Scorer]:
    """(data, the banks' job, the harness's scorer on held-out rows); DP warnings
    printed. Raises InputError on bad input, before anything is written."""
    data = prepare_horizontal(s)
    job = bank_job(s, data, keys, secrets)
    for warning in job.dp.warnings if job.dp else ():
        print(f"fedrisk: warning: {warning}", file=sys.stderr)
    test_X, test_y = data.test.X, data.test.y

    def score(params: np.ndarray) -> dict[str, float]:
        return score_metrics(test_y, predict_proba(params, test_X))

    return data, job, score


# --- federate --------------------------------------------------------------------------------


def federate(
    job: HorizontalJob,
    score: Scorer,
    keys: BankKeys | None,
    engine: str,
    client_mods: list | None,
    resume: Checkpoint | None,
    checkpoint_folder: Path | None,
    show_progress: bool,
    server_secret: PartySecret | None = None,
) -> tuple[ServerRecorder, float]:
    """The banks' and the aggregator's apps on ``engine``; returns what the aggregator
    produced and the federation's wall seconds. ``checkpoint_folder``: save both sides'
    state there after every round (in-process only). ``server_secret``: the
    aggregator's own secret (fresh when None)."""
    server_job = job.server_side(server_secret)
    s = job.scenario
    with run_progress(show_progress, s) as (progress, task):

        def on_round(rnd: int, metrics: dict[str, float]) -> None:
            if rnd > 0:
                status = (
                    _("test AUC {auc}").format(auc=f"{metrics['auc']:.4f}")
                    if metrics
                    else _("aggregate encrypted")
                )
                progress.update(task, advance=1, status=status)

        # When the aggregator never holds the model (Paillier) there is nothing to score
        # live: the banks' side decodes each round afterwards.
        sees_model = mode_of(s.privacy.aggregation).server_sees_global_model
        recorder = ServerRecorder(score if sees_model else None, on_round)
        node_states = resume.bank_states() if resume is not None else {}
        if resume is not None:
            recorder.load_state(resume.server["recorder"], resume.transcript())
            progress.update(task, advance=resume.round, status=_("resumed"))
        if checkpoint_folder is not None:
            recorder.on_checkpoint = checkpointer(
                checkpoint_folder,
                s,
                recorder,
                node_states,
                keys,
                len(recorder.transcript.entries),
                job,
                server_job.secret,
            )
        try:
            fed_wall = run_engine(
                engine,
                make_server_app(server_job, recorder, resume),
                make_client_app(job, client_mods),
                len(job.banks),
                node_states if checkpoint_folder is not None else None,
            )
        finally:
            if keys:
                keys.stop_precompute.set()
    return recorder, fed_wall


def secrets_from_checkpoint(resume: Checkpoint) -> RunSecrets:
    """Each party's secret from its own half of the checkpoint (the banks' from
    banks.json, the aggregator's from server.json): a resumed run draws exactly what an
    uninterrupted one would, even with os-entropy secrets."""
    stored = dict(resume.banks.get("secrets") or {})
    if resume.server.get("secret"):
        stored[AGGREGATOR] = resume.server["secret"]
    return RunSecrets.restored(
        resume.server.get("randomness", "os-entropy"),
        {party: PartySecret.from_hex(text) for party, text in stored.items()},
    )


# --- evaluate and write ----------------------------------------------------------------------


def complete_horizontal(
    stage: Path,
    s: Scenario,
    data: PreparedData,
    job: HorizontalJob,
    recorder: ServerRecorder,
    fed_wall: float,
    score: Scorer,
    started: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything after the federation: accounting, baselines, metrics, files.

    Shared by every engine: the recorder holds what the aggregator produced;
    ``extra`` adds engine-specific sections to summary.json.
    """
    test_X, test_y = data.test.X, data.test.y
    check_federation_finished(recorder)
    part = Participation.from_transcript(
        recorder.transcript.entries, [b.name for b in job.banks], len(recorder.rounds)
    )
    planned = job.dp
    job = replace(job, dp=spent_dp(job, part))
    crypto = None
    if job.paillier:
        crypto = crypto_seconds([b.name for b in job.banks], job.paillier)
        decode_encrypted_rounds(job, recorder, score)

    base_started = time.perf_counter()
    budget = BaselineBudget.of(s.model, s.rounds, s.seed)
    central = train_centralised(budget, data.train.X, data.train.y)
    local = {b.name: train_local_only(budget, i, b.X, b.y) for i, b in enumerate(job.banks)}
    reference = train_reference(data.train.X, data.train.y, s.model.l2)
    baseline_wall = time.perf_counter() - base_started

    fed_scores = predict_proba(recorder.final_params, test_X)
    central_scores = predict_proba(central, test_X)
    local_metrics = {
        name: score_metrics(test_y, predict_proba(p, test_X)) for name, p in local.items()
    }
    summary = horizontal_summary(
        s,
        data,
        job,
        recorder,
        fed_scores,
        central_scores,
        reference,
        reference.predict_proba(test_X),
        local_metrics,
        fed_wall,
        baseline_wall,
        crypto,
    )
    if job.paillier:
        clipped = clipped_values([b.name for b in job.banks], job.paillier)
        summary["privacy"]["paillier"].update(
            {
                # None: the banks ran in other processes (Ray, the Deployment Engine)
                "clipped_values": sum(clipped.values()) if clipped is not None else None,
                "clipped_values_per_round": (
                    {str(r): clipped.get(r, 0) for r in range(1, len(recorder.rounds) + 1)}
                    if clipped is not None
                    else None
                ),
            }
        )
    summary["attacks"] = membership_attack(job, recorder.final_params, data)
    summary["faults"] = faults_summary(s, part, recorder)
    if planned is not None:
        summary["privacy"]["epsilon_planned"] = finite_or_none(planned.epsilon)
    summary.update(extra or {})
    cmp = summary["comparison"]
    write_outputs(
        stage,
        s,
        recorder,
        job.dp.epsilon_per_round if job.dp else (),
        fed_scores,
        test_y,
        summary["centralised"]["auc"],
        (cmp["best_local_party"], cmp["best_local_auc"]),
        reference_auc=summary["reference"]["auc"],
    )
    write_json(stage / "model.json", model_record(data, recorder.final_params))
    write_run_scorecard(stage)  # scorecard.json/.csv from model.json, no bins
    summary["cost"]["wall_s"] = round(time.perf_counter() - started, 3)
    write_json(stage / "summary.json", summary)
    return summary


def spent_dp(job: HorizontalJob, part: Participation) -> DPPlan | None:
    """The DP plan re-accounted for the rounds that ran and who trained in them."""
    dp = job.dp
    if dp is None:
        return None
    rounds = part.rounds
    trained = {p: part.trained(p) for p in part.asked}
    full = rounds == job.scenario.max_rounds and all(len(t) == rounds for t in trained.values())
    if dp.mode == "sample":
        return dp if full else dp.spent(trained, rounds)
    scale = {}
    if job.paillier is not None:  # the banks' noise shares: only answered ones summed
        for r in range(1, rounds + 1):
            asked, got = part.asked_in(r), part.answered_in(r)
            # Rounds where nobody was sampled, or nobody answered, are charged as
            # planned: skipping them would depend on the sample itself.
            scale[r] = math.sqrt(got / asked) if 0 < got < asked else 1.0
    if rounds == job.scenario.max_rounds and all(v == 1.0 for v in scale.values()):
        return dp
    return dp.spent(trained, rounds, scale)


def decode_encrypted_rounds(job: HorizontalJob, recorder: ServerRecorder, score: Scorer) -> None:
    """The banks' side of the harness replays the decryptions every bank made, to score
    each round's model (the aggregator never could)."""
    setup = job.paillier
    cipher = VectorCipher(setup.public_key)
    decryptor = (  # threshold key: combine the t partials the banks were sent
        ShareDecryptor(job.key_shares[0]) if job.threshold else VectorDecryptor(job.private_key)
    )
    params = np.zeros(setup.n_params)
    s = job.scenario
    optimizer = ServerOptimizer(s.model)  # what every bank applied, in order
    stopper = EarlyStopping(s.model.patience) if s.model.early_stopping else None
    last_training = 0
    for log in recorder.rounds:
        record = recorder.opaque.get(log.round)
        if record is not None:  # else nobody took part: the model did not move
            blobs = chunks(record["aggregate"].numpy().tobytes(), setup.width)
            task = TASK_OF_CODE[int(record["task"].numpy()[0])] if "task" in record else TRAIN
            aggregate = decode_aggregate(
                setup,
                decryptor,
                blobs,
                int(record["contributors"].numpy()[0]),
                log.round,
                cipher,
                shares=relayed_partials(record, setup) if job.threshold else None,
            )
            params = apply_decrypted(optimizer, stopper, log.round, task, params, aggregate)
            last_training = log.round if task == TRAIN else last_training
        log.test = score(params)
    recorder.final_params = params
    if stopper is not None:  # the banks read the pooled validation losses
        recorder.early_stopping = stopper.summary(s.rounds, last_training)


def relayed_partials(record, setup) -> dict[int, list[int]]:
    """The t banks' partial decryptions kept with a round's aggregate (threshold key)."""
    banks = [int(b) for b in record["partial-banks"].numpy()]
    flat = chunks(record["partials"].numpy().tobytes(), setup.width)
    k = setup.n_ciphertexts
    return {
        b: [int.from_bytes(x, "big") for x in flat[j * k : (j + 1) * k]]
        for j, b in enumerate(banks)
    }


def chunks(raw: bytes, width: int) -> list[bytes]:
    return [raw[i : i + width] for i in range(0, len(raw), width)]


def check_federation_finished(recorder: ServerRecorder) -> None:
    if recorder.error is not None:
        raise recorder.error
    if recorder.final_params is None and recorder.final_opaque is None:
        raise RuntimeError(
            "the federated run ended without a final model "
            "(the engine stopped early; rerun with --verbose for Flower's log)"
        )


__all__ = ["complete_horizontal", "federate", "prepare_job", "run_horizontal", "spent_dp"]
