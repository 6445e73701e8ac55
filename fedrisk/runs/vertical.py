"""A vertical run as a pipeline: prepare (every party's table, the label-DP plan, the
bank's keys) -> federate (the bank's ServerApp and the parties' ClientApps on any engine)
-> evaluate (the simulator's baselines on the same aligned customers, the label-leakage
attack) -> write (the run folder)."""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import gmpy2
import numpy as np
from phe.paillier import PaillierPrivateKey

from fedrisk.crypto.fixed_base import PROCESS_MIN_VALUES
from fedrisk.crypto.hetero import FEATURE_CLIP, FEATURE_FRAC_BITS
from fedrisk.crypto.paillier import ObfuscatorPool, generate_keypair
from fedrisk.crypto.workers import worker_count
from fedrisk.data.scaling import fit_party_scaler
from fedrisk.data.vertical import VerticalTables, load_vertical
from fedrisk.deployment import vertical_files
from fedrisk.deployment.launch import RUN_TIMEOUT_BASE
from fedrisk.deployment.options import DeploymentOptions
from fedrisk.deployment.result import recorder_from_result
from fedrisk.evaluation import auc_interval_record, score_metrics
from fedrisk.evaluation.baselines import BaselineBudget, train_centralised, train_reference
from fedrisk.files import write_private_json
from fedrisk.flower.engines import quiet_flower, run_engine
from fedrisk.flower.recorder import ServerRecorder
from fedrisk.i18n import CLAUSE_SEP, N_
from fedrisk.model_io import TREES_DIR as MODEL_DIR
from fedrisk.model_io import LogisticPart, vertical_bank_record
from fedrisk.models.logistic import predict_proba
from fedrisk.privacy.plan import DPPlan, plan_dp
from fedrisk.privacy.secrets import OS_ENTROPY, RunSecrets
from fedrisk.runs.deployed import Watch, deploy, warn_if_insecure
from fedrisk.runs.outputs import RunOutcome, write_json, write_outputs
from fedrisk.runs.progress import run_progress, step_recorder
from fedrisk.runs.rundir import staged_run_dir
from fedrisk.runs.summary import THREAT_MODEL, against_reference
from fedrisk.scenario import Scenario
from fedrisk.version import __version__
from fedrisk.vertical.bank import make_bank_app
from fedrisk.vertical.leakage import label_leakage
from fedrisk.vertical.party import make_party_app
from fedrisk.vertical.protocol import BankJob, DataPartyJob, PartyData, VerticalOutcome

# Per exchange on the Deployment Engine: SuperNode polls and a fresh ClientApp process
# (Python, numpy, Flower and fedrisk imported again) plus the Paillier work itself.
SECONDS_PER_EXCHANGE = 30.0


def run_vertical(
    s: Scenario,
    out: Path,
    *,
    show_progress: bool = True,
    verbose: bool = False,
    client_mods: list | None = None,
    deployment: DeploymentOptions | None = None,
    secrets: RunSecrets | None = None,
) -> RunOutcome:
    """A bank and data-source parties: PSI alignment, then hetero LR with Paillier.

    ``secrets``: where each party's secret comes from (fresh os entropy when None).

    On every engine the same apps run and the same run folder is written: the engine
    only changes where the bank's ServerApp and the parties' ClientApps execute
    (:func:`federate_vertical`); what comes back is the bank's recorder and outcome.
    """
    started = time.perf_counter()
    quiet_flower(verbose)
    deployed = s.federation.engine == "deployment"
    private_key = None
    if deployed:  # --bank-files: the bank's key from its files (--superlink without
        # them is refused here, before anything starts)
        private_key = vertical_files.bank_private_key(deployment)
    setup = prepare_vertical(s, private_key, secrets)
    per_encryption = seconds_per_encryption(setup.bank.public_key, s, setup.bank.private_key)
    party_features = sum(t.n_features for t in setup.tables.data_parties)
    per_mulmod = seconds_per_mulmod(setup.bank.public_key)
    warn_if_long(s, len(setup.bank.ids), per_encryption, party_features, per_mulmod)
    if deployed and deployment is not None and deployment.bank_files is not None:
        # the bank's files must be this scenario's before anything starts
        vertical_files.read_bank_job(
            vertical_files.vertical_public_job(setup.bank, setup.parties), deployment.bank_files
        )
    with staged_run_dir(out) as stage:
        if not deployed:  # on the Deployment Engine each part stays on its node
            setup = keeping_model_parts(setup, stage)
        recorder, outcome, fed_wall, extra = federate_vertical(
            s,
            setup,
            show_progress=show_progress,
            verbose=verbose,
            client_mods=client_mods,
            deployment=deployment,
        )
        summary = complete_vertical(stage, s, setup, recorder, outcome, fed_wall, started, extra)
    return RunOutcome(out, summary)


# --- prepare ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerticalSetup:
    """A vertical run's inputs, as the simulator holds them: every party's table, the
    label-DP plan, the bank's job (its rows, labels and Paillier key pair) and the data
    parties' job (their rows and the public key). Each engine hands each app only its
    own part (on the Deployment Engine, in separate files)."""

    tables: VerticalTables
    dp: DPPlan | None
    bank: BankJob
    parties: DataPartyJob
    randomness: str = OS_ENTROPY  # where the parties' secrets come from (public)


def prepare_vertical(
    s: Scenario,
    private_key: PaillierPrivateKey | None = None,
    secrets: RunSecrets | None = None,
    tables: VerticalTables | None = None,
) -> VerticalSetup:
    """Load the parties' tables, plan label DP and make the bank's Paillier key pair
    (or use ``private_key``); each party gets its own secret from ``secrets`` (fresh
    os entropy when None). Raises InputError on bad input, before anything is
    written. ``tables``: the parties' columns as given (a scorecard's WOE-coded ones)
    instead of the scenario's data."""
    secrets = secrets or RunSecrets()
    tables = tables or load_vertical(s)
    holder = tables.holder
    dp = plan_dp(s, {holder.name: holder.n_rows})
    if private_key is None and not _needs_bank_key(s):
        public_key = None  # the dealer's secret-sharing protocol uses no Paillier key
    elif private_key is None:
        public_key, private_key = generate_keypair(s.privacy.key_bits)
    else:
        public_key = private_key.public_key
    bank = BankJob(
        s,
        holder.name,
        holder.ids,
        holder.X,
        holder.y,
        holder.feature_names,
        tuple(p.name for p in tables.data_parties),
        public_key,
        private_key,
        dp,
        secrets.of(holder.name),
    )
    parties = DataPartyJob(
        s,
        tuple(
            PartyData(p.name, p.ids, p.X, p.feature_names, secrets.of(p.name))
            for p in tables.data_parties
        ),
        public_key,
        dp.clip_norm if dp else None,
    )
    return VerticalSetup(tables, dp, bank, parties, secrets.mode)


def _needs_bank_key(s: Scenario) -> bool:
    return s.privacy.protocol == "paillier" or s.privacy.triples == "paillier"


# --- federate --------------------------------------------------------------------------------


def federate_vertical(
    s: Scenario,
    setup: VerticalSetup,
    *,
    show_progress: bool,
    verbose: bool,
    client_mods: list | None = None,
    deployment: DeploymentOptions | None = None,
) -> tuple[ServerRecorder, VerticalOutcome, float, dict[str, Any]]:
    """Run the bank's ServerApp and the parties' ClientApps on ``s.federation.engine``;
    return (recorder, outcome, federated wall seconds, extra summary sections).

    In-process and on the Simulation Engine the bank's app runs in this process and
    fills ``recorder``/``outcome`` directly; on the Deployment Engine it runs in a
    ServerApp process and sends them back as its result line.
    """
    if s.federation.engine == "deployment":
        return _federate_deployed(
            s, setup, deployment, show_progress=show_progress, verbose=verbose
        )
    outcome = VerticalOutcome()
    with run_progress(show_progress, s) as (progress, task):
        recorder = step_recorder(progress, task, "epoch")
        app = make_party_app(setup.parties, client_mods)
        fed_wall = run_engine(
            s.federation.engine,
            make_bank_app(setup.bank, recorder, outcome),
            app,
            len(setup.parties.parties),
        )
    if recorder.error is not None:
        raise recorder.error
    _check_finished(s, recorder, outcome)
    return recorder, outcome, fed_wall, {}


def _federate_deployed(
    s: Scenario,
    setup: VerticalSetup,
    options: DeploymentOptions | None,
    *,
    show_progress: bool,
    verbose: bool,
    watch: Watch | None = None,
) -> tuple[ServerRecorder, VerticalOutcome, float, dict[str, Any]]:
    """The Deployment Engine: a local SuperLink and one SuperNode per data party on
    127.0.0.1 (TLS and SuperNode authentication unless ``--insecure``), each party's rows
    and the bank's files in a work folder removed at the end; or, with ``--superlink``
    and ``--bank-files DIR`` (from ``fedrisk data split``), that federation, whose
    SuperNodes hold their files and whose SuperLink was started with
    ``FEDRISK_BANK_FILES=DIR``. The run config, which every SuperNode sees, carries the
    public job only: not where the bank's files are."""
    options = options or DeploymentOptions()
    warn_if_insecure(options)
    public = vertical_files.vertical_public_job(setup.bank, setup.parties)

    def bank_env(work: Path) -> dict[str, str]:
        folder = vertical_files.write_bank_files(work / "bank", setup.bank)
        return {vertical_files.BANK_FILES_ENV: str(folder)}

    record, fed_wall, deployment = deploy(
        s,
        options,
        lambda work: {"fedrisk-job": json.dumps(public, allow_nan=True)},
        lambda work: vertical_files.write_party_files(work / "parties", setup.parties),
        vertical_run_timeout(s, len(setup.bank.ids)),
        show_progress=show_progress,
        verbose=verbose,
        watch=watch,
        link_env=bank_env,
    )
    recorder = recorder_from_result(record, None)
    outcome = VerticalOutcome.from_dict(record["vertical"])
    _check_finished(s, recorder, outcome)
    return recorder, outcome, fed_wall, {"deployment": deployment}


LONG_RUN_SECONDS = 600.0
# Pippenger over the provider's fixed-point features (13-bit exponents, 4-bit windows):
# about 4 multiplications mod n² per customer per feature, and one more for Σ d_i
SUM_MULMODS_PER_ENTRY = 4


def seconds_per_encryption(public_key, s: Scenario, private_key=None) -> float:
    """This machine's time per residual encryption under the run's key and obfuscation,
    as the bank makes them (it holds ``private_key``): a batch on every core, after a
    warm-up batch (which builds the fixed-base tables and starts the workers)."""
    pool = ObfuscatorPool(public_key, s.privacy.obfuscation, private_key=private_key)
    # warm-up, untimed: a DJN batch this size builds the tables and starts the worker
    # processes (which rebuild theirs), both paid once per run, not per encryption
    pool.compute(pool.draw(PROCESS_MIN_VALUES if s.privacy.obfuscation == "djn" else 2))
    count = 16
    while True:
        started = time.perf_counter()
        pool.compute(pool.draw(count))
        took = time.perf_counter() - started
        if took >= 0.05 or count >= 1024:
            return took / count
        count *= 4


def seconds_per_mulmod(public_key, samples: int = 400) -> float:
    """This machine's time for one multiplication mod n² (the provider's sums are made of
    them)."""
    nsq = gmpy2.mpz(public_key.nsquare)
    a = b = gmpy2.mpz(public_key.n) + 12345
    started = time.perf_counter()
    for _ in range(samples):
        a = a * b % nsq
    return (time.perf_counter() - started) / samples


def estimated_seconds(
    s: Scenario, bank_rows: int, per_encryption: float, party_features: int, per_mulmod: float
) -> float:
    """A vertical run's federation time: per epoch and training customer, the residual's
    encryption and the parties' encrypted sums (shared over the cores), the rest of the
    protocol (scores, decryptions, messages) being small beside them."""
    train_rows = bank_rows * (1 - s.data.test_fraction)
    sums = (party_features * SUM_MULMODS_PER_ENTRY + 1) * per_mulmod / worker_count()
    return s.rounds * train_rows * (per_encryption + sums)


def warn_if_long(
    s: Scenario, bank_rows: int, per_encryption: float, party_features: int, per_mulmod: float
) -> None:
    """Say at the start when a run will take over ten minutes, and which keys shorten it."""
    seconds = estimated_seconds(s, bank_rows, per_encryption, party_features, per_mulmod)
    if seconds <= LONG_RUN_SECONDS:
        return
    shorter = [f"rounds (now {s.rounds})"]
    if s.privacy.obfuscation == "full":
        shorter.append('privacy.obfuscation = "djn" (about 7x faster encryption)')
    if s.privacy.key_bits > 2048:
        shorter.append("privacy.key_bits = 2048")
    warnings.warn(
        f"this vertical run will take about {seconds / 60:.0f} minutes ({s.rounds} epochs "
        f"over about {bank_rows * (1 - s.data.test_fraction):,.0f} training customers, "
        f"{per_encryption * 1000:.1f} ms per Paillier encryption here); shorten it with "
        + ", ".join(shorter),
        stacklevel=2,
    )


def vertical_run_timeout(s: Scenario, bank_rows: int) -> float:
    """Start-up plus, per epoch, every mini-batch's two exchanges and the test scoring,
    and the calibration's exchange."""
    batches = math.ceil(bank_rows * (1 - s.data.test_fraction) / s.model.batch_size)
    calibration = 0 if s.model.calibration == "none" else 1
    return RUN_TIMEOUT_BASE + (s.rounds * (2 * batches + 1) + calibration) * SECONDS_PER_EXCHANGE


def _check_finished(s: Scenario, recorder: ServerRecorder, outcome: VerticalOutcome) -> None:
    if outcome.test_scores is None or len(recorder.rounds) != s.rounds:
        raise RuntimeError(
            "the vertical run ended before its last epoch (the engine stopped early; "
            "rerun with --verbose for Flower's log)"
        )


# --- evaluate and write ----------------------------------------------------------------------


def complete_vertical(
    stage: Path,
    s: Scenario,
    setup: VerticalSetup,
    recorder: ServerRecorder,
    outcome: VerticalOutcome,
    fed_wall: float,
    started: float,
    extra: dict[str, Any] | None = None,
    privacy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything after a vertical federation, the same on every engine: baselines on
    the simulator's join of the aligned customers, the label-leakage attack, metrics,
    files. ``extra`` adds engine-specific sections to summary.json, ``privacy`` replaces
    keys of its privacy section (another protocol's)."""
    tables, dp = setup.tables, setup.dp
    holder = tables.holder
    # baselines on the same aligned customers and held-out rows (simulator's join)
    party_rows = [
        _aligned(p, outcome.train_ids, outcome.test_ids, s.data.scaling)
        for p in tables.data_parties
    ]
    pooled_train = np.hstack([outcome.bank_train_X] + [tr for tr, _ in party_rows])
    pooled_test = np.hstack([outcome.bank_test_X] + [te for _, te in party_rows])
    budget = BaselineBudget.of(s.model, s.rounds, s.seed)
    central = train_centralised(budget, pooled_train, outcome_train_y(holder, outcome))
    # the converged reference: every party's columns of the same aligned customers
    reference = train_reference(pooled_train, outcome_train_y(holder, outcome), s.model.l2)
    bank_alone = train_centralised(budget, outcome.bank_train_X, outcome_train_y(holder, outcome))
    y_test = outcome.test_y
    central_scores = predict_proba(central, pooled_test)
    # bootstrap AUC intervals seeded from the scenario (evaluation, not a party's secret)
    federated = {
        **score_metrics(y_test, outcome.test_scores),
        **auc_interval_record(y_test, outcome.test_scores, s.seed),
    }
    centralised = {
        **score_metrics(y_test, central_scores),
        **auc_interval_record(y_test, central_scores, s.seed),
    }
    local = {holder.name: score_metrics(y_test, predict_proba(bank_alone, outcome.bank_test_X))}
    judged = against_reference(
        y_test,
        federated,
        reference,
        reference.predict_proba(pooled_test),
        seed=s.seed,
        model="joint",
    )
    attacks: dict[str, Any] = {}
    if s.privacy.label_leakage_attack:
        first = tables.data_parties[0]
        attacks["label_leakage"] = {
            "attacker": first.name,
            "attack": N_("gradient projection: score_i = -x_i·g over each batch"),
            "label_auc_by_batch_size": label_leakage(
                party_rows[0][0],
                outcome.bank_train_X,
                outcome_train_y(holder, outcome),
                tuple(sorted({1, 8, 32, 128, 512, s.model.batch_size, 4 * s.model.batch_size})),
                s.seed,
                s.model.learning_rate,
                s.model.batch_size,
                dp=dp,
            ),
        }
    summary = {
        "fedrisk_version": __version__,
        "scenario": s.name,
        "description": s.description,
        "seed": s.seed,
        "engine": s.federation.engine,
        "kind": "vertical",
        "data": {
            "source": s.data.source,
            # each party scales its own columns alone (z-scored even with "none")
            "scaling": s.data.scaling,
            "label_holder": holder.name,
            "parties": {
                p.name: {
                    "rows": p.n_rows,
                    "features": p.n_features,
                    "columns": list(p.feature_names),
                }
                for p in tables.parties
            },
            "aligned_customers": outcome.aligned,
            "ids_per_party": {holder.name: holder.n_rows, **outcome.party_sizes},
            "train_rows": len(outcome.train_ids),
            "test_rows": len(outcome.test_ids),
            "test_default_rate": float(np.mean(y_test)),
        },
        "observed_default_rate": judged["observed_default_rate"],
        "federated": federated,
        "centralised": centralised,
        "reference": judged["reference"],
        "local_only": local,
        "comparison": {
            "federated_minus_centralised_auc": federated["auc"] - centralised["auc"],
            **judged["comparison"],
            "federated_minus_label_holder_alone_auc": federated["auc"] - local[holder.name]["auc"],
        },
        "warnings": judged["warnings"],
        "calibration": calibration_summary(s, outcome),
        "privacy": {
            "aggregation": "paillier",
            "dp": s.privacy.dp,
            "epsilon": None,
            "delta": None,
            "key_bits": s.privacy.key_bits,
            "key_holder": holder.name,
            "obfuscation": s.privacy.obfuscation,
            # where each party's protective draws come from: fresh per run, or --secrets
            "randomness": setup.randomness,
            "alignment": ALIGNMENT,
            "threat_model": THREAT_MODEL,
            "who_learns_what": who_learns_what(s, holder.name),
        },
        "cost": {
            "wall_s": None,
            "federated_wall_s": round(fed_wall, 3),
            "rounds": s.rounds,
            "epochs": s.rounds,
            "bytes_sent": recorder.transcript.total_bytes,
            "bytes_per_round": [r.bytes for r in recorder.rounds],
            "setup_bytes": recorder.transcript.bytes_in_round(0),
            "messages": len(recorder.transcript.entries),
            "encryptions": outcome.encryptions,
            "encryption_s": round(outcome.encrypt_s, 3),
            "obfuscator_precompute_s": round(outcome.precompute_s, 3),
            "decryption_s": round(outcome.decrypt_s, 3),
        },
        "attacks": attacks,
    }
    if dp is not None:
        summary["privacy"].update(dp.to_summary())
    summary["privacy"].update(privacy or {})
    write_outputs(
        stage,
        s,
        recorder,
        dp.epsilon_per_round if dp else (),
        outcome.test_scores,
        y_test,
        centralised["auc"],
        (holder.name, local[holder.name]["auc"]),
        reference_auc=judged["reference"]["auc"],
    )
    if setup.parties.model_dir is not None:
        summary["model_files"] = write_bank_part(s, setup, recorder, outcome, bank_alone)
    summary.update(extra or {})
    summary["cost"]["wall_s"] = round(time.perf_counter() - started, 3)
    write_json(stage / "summary.json", summary)
    return summary


def keeping_model_parts(setup: VerticalSetup, stage: Path) -> VerticalSetup:
    """``setup`` with each data party keeping its final part of the model in the run's
    ``model`` folder (owner-only): the parties' ClientApps write them themselves."""
    folder = stage / MODEL_DIR
    folder.mkdir(mode=0o700)
    folder.chmod(0o700)
    parties = replace(setup.parties, model_dir=str(folder))
    return replace(setup, parties=parties)


def write_bank_part(
    s: Scenario,
    setup: VerticalSetup,
    recorder: ServerRecorder,
    outcome: VerticalOutcome,
    bank_alone: np.ndarray,
) -> dict[str, str]:
    """The bank's part of the joint model (its scaling, calibrated weights and intercept,
    the scale it applies to the parties' partial scores) and its bank-only fallback,
    written beside the parties' parts. Returns summary.json's ``model_files``."""
    holder = setup.tables.holder
    scaler = outcome.bank_scaler  # fitted by the bank's app on its training rows
    scaling = [scaler.mean, scaler.scale, scaler.clip_low, scaler.clip_high]
    params = recorder.final_params
    # a secret-shared run's joint score acts on the ring's fixed-point features
    ring = s.privacy.protocol == "secret_sharing"
    encoding = {"feature_clip": FEATURE_CLIP, "feature_frac_bits": FEATURE_FRAC_BITS}
    record = vertical_bank_record(
        LogisticPart(
            holder.name, holder.feature_names, params[:-1], *scaling, **(encoding if ring else {})
        ),
        float(params[-1]),
        (outcome.calibration or {}).get("scale", 1.0),
        [p.name for p in setup.tables.data_parties],
        LogisticPart(holder.name, holder.feature_names, bank_alone[:-1], *scaling),
        float(bank_alone[-1]),
    )
    write_private_json(Path(setup.parties.model_dir) / f"{holder.name}.json", record)
    return {
        holder.name: f"{MODEL_DIR}/{holder.name}.json",
        **{p.name: f"{MODEL_DIR}/{p.name}.json" for p in setup.tables.data_parties},
    }


# summary.json's prose is built from clauses marked for the catalogs and joined with
# CLAUSE_SEP, so that the Chinese report can translate it clause by clause
ALIGNMENT = N_("ECDH PSI over X25519, chained through the label holder")
_BANK_CALIBRATION = {
    "intercept": (
        N_(
            "for the calibration, each party's partial scores on the training customers at "
            "its final weights (one more projection of each customer's features, as every "
            "epoch gives), from which it refits its own intercept"
        ),
    ),
    "platt": (
        N_(
            "for the calibration, each party's partial scores on the training customers at "
            "its final weights (one more projection of each customer's features, as every "
            "epoch gives), from which it fits a scale and an intercept on the joint score"
        ),
        N_("it keeps both and applies the scale to the parties' partial scores when it scores"),
    ),
}
_PARTIES_CALIBRATION = N_(
    "the calibration tells them nothing: one request for their partial scores on the "
    "training customers, naming no customer and carrying nothing derived from the labels, "
    "and the calibration itself stays with the bank"
)


def who_learns_what(s: Scenario, holder: str) -> dict[str, str]:
    """What each side learns in a Paillier vertical run (summary.json's
    ``privacy.who_learns_what``)."""
    bank = [
        N_(
            "the intersection, every party's id count, each party's partial scores per "
            "customer (not its features or weights)"
        ),
        *_BANK_CALIBRATION.get(s.model.calibration, ()),
    ]
    parties = [
        N_(
            "the bank's customer count (the number of masked ids it sends in PSI: the first "
            "party its whole count, a later one the size of the bank's intersection with the "
            "parties before it), the multi-party intersection (which of its customers are "
            "shared by the bank and every other data party), the held-out split of those "
            "ids, and their own gradient (labels leak through it; see "
            "attacks.label_leakage), nothing of another party's features, weights or labels"
        ),
    ]
    if s.model.calibration != "none":
        parties.append(_PARTIES_CALIBRATION)
    return {holder: CLAUSE_SEP.join(bank), "data parties": CLAUSE_SEP.join(parties)}


def calibration_summary(s: Scenario, outcome: VerticalOutcome) -> dict[str, Any]:
    """How the bank calibrated the joint model on its training customers (its record:
    method, scale, offset, the training default rate and mean PD before and after); the
    held-out customers' mean PD is each model's ``mean_pd`` beside
    ``observed_default_rate``."""
    return {
        **(outcome.calibration or {"method": "none"}),
        "fitted_on": None if s.model.calibration == "none" else "training customers, by the bank",
    }


def outcome_train_y(holder, outcome) -> np.ndarray:
    pos = {str(i): k for k, i in enumerate(holder.ids)}
    return holder.y[[pos[i] for i in outcome.train_ids]].astype(np.float64)


def _aligned(table, train_ids, test_ids, scaling) -> tuple[np.ndarray, np.ndarray]:
    """A party's rows for the training and held-out customers, scaled on its training
    rows as the party scales them (the simulator's omniscient join, for the centralised
    baseline and the attack)."""
    pos = {str(i): k for k, i in enumerate(table.ids)}
    train = table.X[[pos[i] for i in train_ids]]
    scaler = fit_party_scaler(train, scaling)
    return scaler.transform(train), scaler.transform(table.X[[pos[i] for i in test_ids]])


__all__ = [
    "ALIGNMENT",
    "VerticalSetup",
    "calibration_summary",
    "complete_vertical",
    "federate_vertical",
    "prepare_vertical",
    "run_vertical",
    "vertical_run_timeout",
    "who_learns_what",
]
