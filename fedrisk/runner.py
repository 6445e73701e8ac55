"""Run one scenario end to end and write its run folder.

Order matters for the "nothing half-written" promise: everything that can fail on bad
input (scenario, data, partition) happens before the run folder is staged.
"""

from __future__ import annotations

import csv
import json
import math
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from fedrisk import __version__
from fedrisk.crypto.paillier import (BankKeys, VectorCipher, VectorDecryptor,
                                     private_key_to_dict)
from fedrisk.data.prepare import PreparedData, prepare_horizontal
from fedrisk.data.split import Standardizer
from fedrisk.errors import InputError
from fedrisk.evaluation import (calibration_table, gains_table, plot_auc_per_round,
                                plot_calibration, plot_gains, population_stability_index,
                                score_metrics)
from fedrisk.evaluation.baselines import train_centralised, train_local_only
from fedrisk.federation.engines import quiet_flower, run_engine
from fedrisk.federation.horizontal import (BankData, HorizontalJob, ServerRecorder,
                                           make_client_app, make_server_app, rows_digest)
from fedrisk.federation.keys import paillier_keys
from fedrisk.federation.participation import Participation
from fedrisk.privacy.attacks import membership_inference_auc
from fedrisk.privacy.accountant import max_attack_auc_bound
from fedrisk.privacy.plan import finite_or_none, plan_dp
from fedrisk.federation.paillier_agg import crypto_seconds, decode_aggregate, paillier_setup
from fedrisk.models.logistic import predict_proba
from fedrisk.federation.checkpoint import (SERVER_FILE, Checkpoint, TranscriptLog,
                                           write_checkpoint)
from fedrisk.rundir import resumable_run_dir, staged_run_dir
from fedrisk.scenario import Scenario, to_toml

ROUND_FIELDS = ("round", "auc", "ks", "gini", "log_loss", "brier", "epsilon", "n_replies",
                "bytes", "wall_s")


@dataclass(frozen=True)
class RunOutcome:
    out_dir: Path
    summary: dict[str, Any]


def run_scenario(s: Scenario, out: Path, *, show_progress: bool = True,
                 verbose: bool = False, client_mods: list | None = None,
                 keys: BankKeys | None = None, resume: Checkpoint | None = None,
                 deployment: Any = None) -> RunOutcome:
    """Run ``s`` and write ``out``; raises InputError on bad input before writing.

    ``client_mods`` are extra Flower mods on every bank's ClientApp (fault injection in
    tests and experiments: a mod can drop, delay or tamper with what a bank sends).
    ``keys`` are Paillier keys from :func:`paillier_keys` made earlier; made here if None.
    ``resume`` continues an interrupted in-process run from its checkpoint
    (:func:`resume_run`); on the in-process engine every round is checkpointed.
    """
    if s.federation.kind == "vertical":
        return run_vertical(s, out, show_progress=show_progress, verbose=verbose,
                            client_mods=client_mods)
    started = time.perf_counter()
    quiet_flower(verbose)
    if resume is not None and s.federation.engine != "inprocess":
        raise InputError(f"--resume: runs on the {s.federation.engine} engine are not "
                         "checkpointed; only in-process runs resume")
    if resume is not None and resume.banks.get("keys"):
        keys = _keys_from_checkpoint(s, resume.banks["keys"])
    keys = keys or paillier_keys(s)
    if s.federation.engine == "deployment":
        from fedrisk.federation.deploy_run import run_deployed
        return run_deployed(s, out, deployment, show_progress=show_progress,
                            verbose=verbose, keys=keys)
    data, job, score = prepare_job(s, keys)
    if resume is not None:
        _check_same_data(resume, job, out)
    checkpoints = s.federation.engine == "inprocess"
    with (resumable_run_dir(out, resume=resume is not None, checkpoint_file=SERVER_FILE)
          if checkpoints else staged_run_dir(out)) as stage:
        with _progress(show_progress, s) as (progress, task):
            def on_round(rnd: int, metrics: dict[str, float]) -> None:
                if rnd > 0:
                    status = (f"test AUC {metrics['auc']:.4f}" if metrics
                              else "aggregate encrypted")
                    progress.update(task, advance=1, status=status)

            # In Paillier mode the aggregator never holds the model: nothing to score live.
            recorder = ServerRecorder(None if job.paillier else score, on_round)
            node_states = resume.bank_states() if resume is not None else {}
            if resume is not None:
                recorder.load_state(resume.server["recorder"], resume.transcript())
                progress.update(task, advance=resume.round, status="resumed")
            if checkpoints:
                recorder.on_checkpoint = _checkpointer(
                    stage / "checkpoint", s, recorder, node_states, keys,
                    len(recorder.transcript.entries), job)
            try:
                fed_wall = run_engine(s.federation.engine,
                                      make_server_app(job.server_side(), recorder, resume),
                                      make_client_app(job, client_mods), len(job.banks),
                                      node_states if checkpoints else None)
            finally:
                if keys:
                    keys.stop_precompute.set()
        summary = complete_horizontal(stage, s, data, job, recorder, fed_wall, score,
                                      started)
    return RunOutcome(out, summary)


def prepare_job(s: Scenario, keys: BankKeys | None):
    """(data, the banks' job, the harness's scorer on held-out rows); DP warnings
    printed. Raises InputError on bad input, before anything is written."""
    data = prepare_horizontal(s)
    job = _bank_job(s, data, keys)
    for warning in (job.dp.warnings if job.dp else ()):
        print(f"fedrisk: warning: {warning}", file=sys.stderr)
    test_X, test_y = data.test.X, data.test.y

    def score(params: np.ndarray) -> dict[str, float]:
        return score_metrics(test_y, predict_proba(params, test_X))

    return data, job, score


def complete_horizontal(stage: Path, s: Scenario, data: PreparedData, job: HorizontalJob,
                        recorder: ServerRecorder, fed_wall: float, score,
                        started: float, extra: dict[str, Any] | None = None
                        ) -> dict[str, Any]:
    """Everything after the federation: accounting, baselines, metrics, files.

    Shared by every engine: the recorder holds what the aggregator produced;
    ``extra`` adds engine-specific sections to summary.json.
    """
    test_X, test_y = data.test.X, data.test.y
    _check_federation_finished(recorder)
    part = Participation.from_transcript(recorder.transcript.entries,
                                         [b.name for b in job.banks], len(recorder.rounds))
    planned = job.dp
    job = replace(job, dp=_spent_dp(job, part))
    crypto = None
    if job.paillier:
        crypto = crypto_seconds([b.name for b in job.banks], job.paillier)
        _decode_encrypted_rounds(job, recorder, score)

    base_started = time.perf_counter()
    central = train_centralised(s, data.train.X, data.train.y)
    local = {b.name: train_local_only(s, i, b.X, b.y) for i, b in enumerate(job.banks)}
    baseline_wall = time.perf_counter() - base_started

    fed_scores = predict_proba(recorder.final_params, test_X)
    central_scores = predict_proba(central, test_X)
    local_metrics = {name: score_metrics(test_y, predict_proba(p, test_X))
                     for name, p in local.items()}
    summary = _summary(s, data, job, recorder, fed_scores, central_scores, local_metrics,
                       fed_wall, baseline_wall, crypto)
    summary["attacks"] = _attacks(job, recorder.final_params, data)
    summary["faults"] = _faults_summary(s, part, recorder)
    if planned is not None:
        summary["privacy"]["epsilon_planned"] = finite_or_none(planned.epsilon)
    summary.update(extra or {})
    cmp = summary["comparison"]
    _write_outputs(stage, s, recorder, job.dp.epsilon_per_round if job.dp else (),
                   fed_scores, test_y, summary["centralised"]["auc"],
                   (cmp["best_local_party"], cmp["best_local_auc"]),
                   "federated test AUC per round")
    _write_json(stage / "model.json", model_record(data, recorder.final_params))
    from fedrisk.evaluation.scorecard import write_run_scorecard
    write_run_scorecard(stage)  # scorecard.json/.csv from model.json, no bins
    summary["cost"]["wall_s"] = round(time.perf_counter() - started, 3)
    _write_json(stage / "summary.json", summary)
    return summary


def _bank_job(s: Scenario, data: PreparedData, keys: BankKeys | None) -> HorizontalJob:
    """The banks' side of the run; raises InputError if the DP plan cannot hold."""
    banks = tuple(BankData(name, data.train.X[idx], data.train.y[idx])
                  for name, idx in zip(data.party_names, data.parts))
    dp = plan_dp(s, {b.name: len(b.y) for b in banks})
    setup = None
    if keys is not None:
        client_rate = dp.sample_rate if dp is not None and dp.mode == "client" else None
        setup = paillier_setup(keys.public_key, data.train.n_features, len(banks),
                               max(len(b.y) for b in banks), s.privacy.update_range,
                               client_rate)
    return HorizontalJob(s, banks, data.train.n_features, setup,
                         keys.private_key if keys else None, dp)


# what may change when a run resumes: how many banks it needs and the faults it meets
RESUME_OVERRIDES = ("federation.min_parties", "federation.dropout", "federation.stragglers",
                    "federation.straggler_delay", "federation.round_timeout")


def resume_run(out: Path, *, overrides: list[str] | tuple[str, ...] = (),
               show_progress: bool = True, verbose: bool = False,
               client_mods: list | None = None) -> RunOutcome:
    """Continue the interrupted run that was to write ``out``, from its checkpoint.

    ``overrides`` (``--set``) may change only :data:`RESUME_OVERRIDES`, e.g. to go on
    with fewer banks after a run stopped for lack of them; without overrides the
    resumed run ends exactly where an uninterrupted one would.
    """
    import tomllib
    from fedrisk.federation.checkpoint import read_checkpoint
    from fedrisk.rundir import incomplete_dir
    from fedrisk.scenario import apply_override, parse_override, scenario_from_dict

    stage = out if out.name.endswith(".incomplete") else incomplete_dir(out)
    if stage is out:
        out = out.parent / out.name[1:-len(".incomplete")]
    ckpt = read_checkpoint(stage / "checkpoint", f"--resume {out}")
    raw = tomllib.loads(ckpt.scenario_toml)
    for item in overrides:
        key = ".".join(parse_override(item)[0])
        if key not in RESUME_OVERRIDES:
            raise InputError(f"--set {item}: a resumed run may change only "
                             + ", ".join(RESUME_OVERRIDES))
        apply_override(raw, item, f"--resume {out}")
    s = scenario_from_dict(raw, ckpt.server["scenario_path"])
    return run_scenario(s, out, show_progress=show_progress, verbose=verbose,
                        client_mods=client_mods, resume=ckpt)


def _checkpointer(folder: Path, s: Scenario, recorder: ServerRecorder,
                  node_states: dict, keys: BankKeys | None, kept_rows: int,
                  job: HorizontalJob):
    """Save both sides' state after every round (see fedrisk.federation.checkpoint)."""
    scenario_toml = to_toml(s)
    fingerprint = data_fingerprint(job)
    # absolute, so relative data paths resolve the same from any working folder
    scenario_path = (s.source_file if s.source_file.startswith("<")
                     else str(Path(s.source_file).resolve()))
    transcript = TranscriptLog(folder, kept_rows)
    bank_keys = None
    if keys is not None:  # the banks' own secret, in their half of the checkpoint
        bank_keys = private_key_to_dict(keys.private_key)

    def save(rnd: int, arrays) -> None:
        transcript.append(recorder.transcript.entries)
        write_checkpoint(folder, rnd=rnd, scenario_toml=scenario_toml,
                         scenario_path=scenario_path, arrays=arrays,
                         strategy_state=recorder.strategy.state_dict(),
                         data_fingerprint=fingerprint,
                         recorder_state=recorder.state_dict(with_transcript=False),
                         party_of=recorder.party_of,
                         bank_states=node_states, bank_keys=bank_keys)

    return save


def data_fingerprint(job: HorizontalJob) -> dict[str, str]:
    return {b.name: rows_digest(b) for b in job.banks}


def _check_same_data(resume: Checkpoint, job: HorizontalJob, out: Path) -> None:
    """A resumed run must train on the rows the interrupted one did."""
    stored = resume.server.get("data_fingerprint", {})
    for name, digest in data_fingerprint(job).items():
        if stored.get(name) != digest:
            raise InputError(f"--resume {out}: {name}'s rows differ from when the run "
                             "started (the data file changed?); start the run afresh")


def _keys_from_checkpoint(s: Scenario, stored: dict) -> BankKeys:
    from fedrisk.crypto.paillier import precompute_in_background, private_key_from_dict
    private = private_key_from_dict(stored)
    public = private.public_key
    return BankKeys(public, private, precompute_in_background(list(s.bank_names()), public,
                                                              s.rounds))


def _spent_dp(job: HorizontalJob, part: Participation):
    """The DP plan re-accounted for the rounds that ran and who trained in them."""
    dp = job.dp
    if dp is None:
        return None
    rounds = part.rounds
    trained = {p: part.trained(p) for p in part.asked}
    full = rounds == job.scenario.rounds and all(
        len(t) == rounds for t in trained.values())
    if dp.mode == "sample":
        return dp if full else dp.spent(trained, rounds)
    scale = {}
    if job.paillier is not None:  # the banks' noise shares: only answered ones summed
        for r in range(1, rounds + 1):
            asked, got = part.asked_in(r), part.answered_in(r)
            # Rounds where nobody was sampled, or nobody answered, are charged as
            # planned: skipping them would depend on the sample itself.
            scale[r] = math.sqrt(got / asked) if 0 < got < asked else 1.0
    if rounds == job.scenario.rounds and all(v == 1.0 for v in scale.values()):
        return dp
    return dp.spent(trained, rounds, scale)


def _faults_summary(s: Scenario, part: Participation, recorder: ServerRecorder) -> dict:
    f = s.federation
    strategy = getattr(recorder, "strategy", None)
    return {
        "dropout": f.dropout, "stragglers": f.stragglers,
        "straggler_delay_s": f.straggler_delay, "round_timeout_s": f.round_timeout,
        "min_parties": s.quorum,
        "rounds_completed": part.rounds,
        "updates_per_round": [part.answered_in(r) for r in range(1, part.rounds + 1)],
        "rounds_without_update": sorted(getattr(strategy, "halted", [])),
        "per_party": part.to_summary(),
    }


def _decode_encrypted_rounds(job: HorizontalJob, recorder: ServerRecorder, score) -> None:
    """The banks' side of the harness replays the decryptions every bank made, to score
    each round's model (the aggregator never could)."""
    setup = job.paillier
    cipher, decryptor = VectorCipher(setup.public_key), VectorDecryptor(job.private_key)
    params = np.zeros(setup.n_params)
    for log in recorder.rounds:
        record = recorder.opaque.get(log.round)
        if record is not None:  # else nobody took part: the model did not move
            blobs = _chunks(record["aggregate"].numpy().tobytes(), setup.width)
            params = params + decode_aggregate(setup, decryptor, blobs,
                                               int(record["contributors"].numpy()[0]),
                                               log.round, cipher)
        log.test = score(params)
    recorder.final_params = params


def _chunks(raw: bytes, width: int) -> list[bytes]:
    return [raw[i:i + width] for i in range(0, len(raw), width)]


class _NoProgress:
    def update(self, *args: Any, **kwargs: Any) -> None:
        pass


class _progress:
    """A rich progress bar over rounds (or nothing, for tests and pipes)."""

    def __init__(self, enabled: bool, s: Scenario) -> None:
        self.enabled, self.s = enabled, s

    def __enter__(self):
        if not self.enabled:
            return _NoProgress(), None
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                            TextColumn("round {task.completed}/{task.total}"),
                            TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                            transient=False)
        self.bar.__enter__()
        who = (f"{len(self.s.federation.parties) or 'default'} parties"
               if self.s.federation.kind == "vertical" else f"{self.s.federation.banks} banks")
        desc = f"{self.s.name}: {who}, {self.s.federation.engine}"
        task = self.bar.add_task(desc, total=self.s.rounds, status="")
        return self.bar, task

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)


def _check_federation_finished(recorder: ServerRecorder) -> None:
    if recorder.error is not None:
        raise recorder.error
    if recorder.final_params is None and recorder.final_opaque is None:
        raise RuntimeError("the federated run ended without a final model "
                           "(the engine stopped early; rerun with --verbose for Flower's log)")


def model_record(data: PreparedData, params: np.ndarray) -> dict[str, Any]:
    """The final model as JSON: weights on z-scored features plus the z-scoring, so
    :func:`fedrisk.load_model` can score raw feature rows."""
    return {
        "format": "fedrisk-logistic-v1",
        "feature_names": list(data.train.feature_names),
        "weights": [float(v) for v in params[:-1]],
        "intercept": float(params[-1]),
        "standardize": None if data.scaler is None else {
            "mean": [float(v) for v in data.scaler.mean],
            "scale": [float(v) for v in data.scaler.scale]},
    }


def _attacks(job: HorizontalJob, params: np.ndarray, data: PreparedData) -> dict[str, Any]:
    """Loss-threshold membership inference on the final model (members: training rows,
    non-members: held-out rows), beside the most any attack could reach under the
    accounted (ε, δ)."""
    auc = membership_inference_auc(params, data.train.X, data.train.y, data.test.X,
                                   data.test.y, seed=job.scenario.seed)
    bound = None
    if job.dp is not None and math.isfinite(job.dp.epsilon):
        bound = max_attack_auc_bound(job.dp.epsilon, job.dp.delta)
    return {"membership_auc": auc, "membership_attack": "loss threshold (Yeom et al. 2018)",
            "membership_auc_bound": bound}


def _privacy_summary(s: Scenario, job: HorizontalJob) -> dict[str, Any]:
    aggregation = s.privacy.aggregation
    out: dict[str, Any] = {
        "aggregation": aggregation,
        "dp": s.privacy.dp,
        # no DP mechanism ran: no formal guarantee to report
        "epsilon": None,
        "delta": None,
        # what the aggregator can read (checked against transcript.jsonl by the tests)
        "server_sees_individual_updates": aggregation == "plain",
        "server_sees_global_model": aggregation != "paillier",
    }
    if job.dp is not None:
        out.update(job.dp.to_summary())
        out["warnings"] = list(job.dp.warnings)
    if job.paillier:
        p = job.paillier
        out["paillier"] = {
            "key_bits": s.privacy.key_bits,
            "key_holders": "banks",
            "update_range": p.codec.clip,
            "frac_bits": p.codec.frac_bits,
            "slot_bits": 8 * p.codec.slot_bytes,
            "slots_per_ciphertext": p.packer.slots_per_int,
            "ciphertexts_per_update": p.n_ciphertexts,
            "public_max_weight": p.codec.max_weight,
        }
    elif aggregation == "secagg":
        from fedrisk.federation.secagg import secagg_shares
        shares, threshold = secagg_shares(len(job.banks), s.privacy.secagg_threshold)
        out["secagg"] = {"num_shares": shares, "reconstruction_threshold": threshold,
                         "update_range": s.privacy.update_range,
                         "quantization_levels": 2**22}
    return out


def _summary(s: Scenario, data: PreparedData, job: HorizontalJob, recorder: ServerRecorder,
             fed_scores: np.ndarray, central_scores: np.ndarray,
             local_metrics: dict[str, dict[str, float]], fed_wall: float,
             baseline_wall: float, crypto: dict[str, float] | None) -> dict[str, Any]:
    test_y = data.test.y
    federated = score_metrics(test_y, fed_scores)
    centralised = score_metrics(test_y, central_scores)
    local_aucs = {k: v["auc"] for k, v in local_metrics.items()}
    best_local = max(local_aucs, key=local_aucs.get)
    mean_local = float(np.mean(list(local_aucs.values())))
    bytes_total = recorder.transcript.total_bytes
    return {
        "fedrisk_version": __version__,
        "scenario": s.name,
        "description": s.description,
        "seed": s.seed,
        "engine": s.federation.engine,
        "kind": s.federation.kind,
        "data": {
            "source": s.data.source,
            "features": data.train.n_features,
            "train_rows": data.train.n_rows,
            "test_rows": data.test.n_rows,
            "test_default_rate": float(np.mean(test_y)),
            "partition": s.federation.partition,
            "alpha": s.federation.alpha if s.federation.partition != "iid" else None,
            "parties": {name: {"rows": int(len(idx)),
                               "default_rate": float(np.mean(data.train.y[idx]))}
                        for name, idx in zip(data.party_names, data.parts)},
        },
        "federated": federated,
        "centralised": centralised,
        "local_only": local_metrics,
        "comparison": {
            "federated_minus_centralised_auc": federated["auc"] - centralised["auc"],
            "federated_minus_mean_local_auc": federated["auc"] - mean_local,
            "mean_local_auc": mean_local,
            "best_local_party": best_local,
            "best_local_auc": local_aucs[best_local],
            "psi_federated_vs_centralised_scores": population_stability_index(
                central_scores, fed_scores),
        },
        "privacy": _privacy_summary(s, job),
        "cost": {
            "wall_s": None,  # filled in last
            "federated_wall_s": round(fed_wall, 3),
            "baselines_wall_s": round(baseline_wall, 3),
            "rounds": s.rounds,
            "bytes_sent": bytes_total,
            "bytes_per_round": [r.bytes for r in recorder.rounds],
            "setup_bytes": recorder.transcript.bytes_in_round(0),
            "messages": len(recorder.transcript.entries),
            **({k: round(v, 3) for k, v in crypto.items()} if crypto else {}),
        },
    }


def _write_outputs(stage: Path, s: Scenario, recorder: ServerRecorder,
                   epsilon_per_round: tuple[float, ...], scores: np.ndarray,
                   test_y: np.ndarray, centralised_auc: float, best_local: tuple[str, float],
                   curve_title: str) -> None:
    """The files every run folder has, horizontal or vertical (summary.json is last)."""
    (stage / "scenario.toml").write_text(to_toml(s), encoding="utf-8")
    recorder.transcript.write_jsonl(stage / "transcript.jsonl")
    eps = epsilon_per_round
    with open(stage / "rounds.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(ROUND_FIELDS)
        for r in recorder.rounds:
            w.writerow([r.round, *(_num(r.test[k]) for k in ROUND_FIELDS[1:6]),
                        _num(eps[r.round - 1]) if eps else "", r.n_replies, r.bytes,
                        f"{r.wall_s:.4f}"])
    calib = calibration_table(test_y, scores)
    gains = gains_table(test_y, scores)
    _write_json(stage / "calibration.json", {"calibration": calib, "gains": gains})
    plot_auc_per_round([r.round for r in recorder.rounds],
                       [r.test["auc"] for r in recorder.rounds], stage / "auc_per_round.png",
                       centralised_auc=centralised_auc, best_local_auc=best_local[1],
                       best_local_name=best_local[0], title=f"{s.name}: {curve_title}")
    plot_calibration(calib, stage / "calibration.png", title=f"{s.name}: calibration")
    plot_gains(gains, stage / "gains.png", title=f"{s.name}: gains by score decile")


def _num(x: float) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else repr(float(x))


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n",
                    encoding="utf-8")


# --- vertical runs --------------------------------------------------------------------------

def run_vertical(s: Scenario, out: Path, *, show_progress: bool = True,
                 verbose: bool = False, client_mods: list | None = None) -> RunOutcome:
    """A bank and data-source parties: PSI alignment, then hetero LR with Paillier."""
    from fedrisk.crypto.paillier import generate_keypair
    from fedrisk.data.vertical import load_vertical
    from fedrisk.federation.vertical import (BankJob, DataPartyJob, PartyData,
                                             VerticalOutcome, label_leakage, make_bank_app,
                                             make_party_app)

    started = time.perf_counter()
    quiet_flower(verbose)
    if s.federation.engine != "inprocess":
        raise InputError(f"{s.source_file}: federation.engine: vertical runs use the "
                         "in-process engine in this version")
    tables = load_vertical(s)
    holder = tables.holder
    dp = plan_dp(s, {holder.name: holder.n_rows})
    public_key, private_key = generate_keypair(s.privacy.key_bits)
    bank = BankJob(s, holder.name, holder.ids, holder.X, holder.y, holder.feature_names,
                   tuple(p.name for p in tables.data_parties), public_key, private_key, dp)
    parties = DataPartyJob(s, tuple(PartyData(p.name, p.ids, p.X, p.feature_names)
                                    for p in tables.data_parties), public_key,
                           dp.clip_norm if dp else None)
    outcome = VerticalOutcome()
    with staged_run_dir(out) as stage:
        with _progress(show_progress, s) as (progress, task):
            def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
                progress.update(task, advance=1, status=f"test AUC {metrics['auc']:.4f}")

            recorder = ServerRecorder(None, on_epoch)
            app = make_party_app(parties, client_mods)
            fed_wall = run_engine("inprocess", make_bank_app(bank, recorder, outcome),
                                  app, len(parties.parties))
        if recorder.error is not None:
            raise recorder.error
        # baselines on the same aligned customers and held-out rows (simulator's join)
        party_rows = [_aligned(p, outcome.train_ids, outcome.test_ids)
                      for p in tables.data_parties]
        pooled_train = np.hstack([outcome.bank_train_X] + [tr for tr, _ in party_rows])
        pooled_test = np.hstack([outcome.bank_test_X] + [te for _, te in party_rows])
        central = train_centralised(s, pooled_train, outcome_train_y(holder, outcome))
        bank_alone = train_centralised(s, outcome.bank_train_X, outcome_train_y(holder, outcome))
        y_test = outcome.test_y
        federated = score_metrics(y_test, outcome.test_scores)
        centralised = score_metrics(y_test, predict_proba(central, pooled_test))
        local = {holder.name: score_metrics(y_test, predict_proba(bank_alone,
                                                                  outcome.bank_test_X))}
        attacks: dict[str, Any] = {}
        if s.privacy.label_leakage_attack:
            first = tables.data_parties[0]
            attacks["label_leakage"] = {
                "attacker": first.name,
                "attack": "gradient projection: score_i = -x_i·g over each batch",
                "label_auc_by_batch_size": label_leakage(
                    party_rows[0][0],
                    outcome.bank_train_X, outcome_train_y(holder, outcome),
                    tuple(sorted({1, 8, 32, 128, 512, s.model.batch_size,
                                  4 * s.model.batch_size})), s.seed,
                    s.model.learning_rate, s.model.batch_size, dp=dp),
            }
        summary = {
            "fedrisk_version": __version__, "scenario": s.name,
            "description": s.description, "seed": s.seed, "engine": s.federation.engine,
            "kind": "vertical",
            "data": {"source": s.data.source, "label_holder": holder.name,
                     "parties": {p.name: {"rows": p.n_rows, "features": p.n_features,
                                          "columns": list(p.feature_names)}
                                 for p in tables.parties},
                     "aligned_customers": outcome.aligned,
                     "ids_per_party": {holder.name: holder.n_rows, **outcome.party_sizes},
                     "train_rows": len(outcome.train_ids), "test_rows": len(outcome.test_ids),
                     "test_default_rate": float(np.mean(y_test))},
            "federated": federated, "centralised": centralised, "local_only": local,
            "comparison": {
                "federated_minus_centralised_auc": federated["auc"] - centralised["auc"],
                "federated_minus_label_holder_alone_auc":
                    federated["auc"] - local[holder.name]["auc"]},
            "privacy": {
                "aggregation": "paillier", "dp": "none", "epsilon": None, "delta": None,
                "key_bits": s.privacy.key_bits, "key_holder": holder.name,
                "obfuscation": s.privacy.obfuscation,
                "alignment": "ECDH PSI over X25519, chained through the label holder",
                "who_learns_what": {
                    holder.name: "the intersection, every party's id count, each party's "
                                 "partial scores per customer (not its features or weights)",
                    "data parties": "the intersection and their own gradient (labels leak "
                                    "through it; see attacks.label_leakage), nothing of "
                                    "another party's features, weights or labels"},
            },
            "cost": {"wall_s": None, "federated_wall_s": round(fed_wall, 3),
                     "rounds": s.rounds, "epochs": s.rounds,
                     "bytes_sent": recorder.transcript.total_bytes,
                     "bytes_per_round": [r.bytes for r in recorder.rounds],
                     "setup_bytes": recorder.transcript.bytes_in_round(0),
                     "messages": len(recorder.transcript.entries),
                     "encryptions": outcome.encryptions,
                     "encryption_s": round(outcome.encrypt_s, 3),
                     "decryption_s": round(outcome.decrypt_s, 3)},
            "attacks": attacks,
        }
        if dp is not None:
            summary["privacy"].update(dp.to_summary())
        _write_outputs(stage, s, recorder, dp.epsilon_per_round if dp else (),
                       outcome.test_scores, y_test, centralised["auc"],
                       (holder.name, local[holder.name]["auc"]), "joint test AUC per epoch")
        summary["cost"]["wall_s"] = round(time.perf_counter() - started, 3)
        _write_json(stage / "summary.json", summary)
    return RunOutcome(out, summary)


def outcome_train_y(holder, outcome) -> np.ndarray:
    pos = {str(i): k for k, i in enumerate(holder.ids)}
    return holder.y[[pos[i] for i in outcome.train_ids]].astype(np.float64)


def _aligned(table, train_ids, test_ids) -> tuple[np.ndarray, np.ndarray]:
    """A party's rows for the training and held-out customers, z-scored on its training
    rows (the simulator's omniscient join, for the centralised baseline and the attack)."""
    pos = {str(i): k for k, i in enumerate(table.ids)}
    train = table.X[[pos[i] for i in train_ids]]
    scaler = Standardizer().fit(train)
    return scaler.transform(train), scaler.transform(table.X[[pos[i] for i in test_ids]])
