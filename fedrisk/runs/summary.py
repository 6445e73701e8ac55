"""summary.json for a horizontal run: what federation bought, what privacy cost.

The contract is the README's "Output: the run folder"; every metric is computed on the held-out rows from pooled
scores (never averaged across parties).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fedrisk.data.prepare import PreparedData
from fedrisk.evaluation import (
    CALIBRATION_WARN_PP,
    auc_interval_record,
    calibration_gap_pp,
    calibration_warning,
    population_stability_index,
    score_metrics,
)
from fedrisk.evaluation.baselines import REFERENCE_GRADIENT_TOL, Reference
from fedrisk.flower.participation import Participation
from fedrisk.flower.recorder import ServerRecorder
from fedrisk.horizontal.aggregation import mode_of
from fedrisk.horizontal.job import HorizontalJob
from fedrisk.i18n import CLAUSE_SEP, N_
from fedrisk.privacy.accountant import max_attack_auc_bound
from fedrisk.privacy.attacks import membership_inference_auc
from fedrisk.scenario import Scenario
from fedrisk.version import __version__


def faults_summary(s: Scenario, part: Participation, recorder: ServerRecorder) -> dict:
    f = s.federation
    strategy = getattr(recorder, "strategy", None)
    return {
        "dropout": f.dropout,
        "stragglers": f.stragglers,
        "straggler_delay_s": f.straggler_delay,
        "round_timeout_s": f.round_timeout,
        "min_parties": s.quorum,
        "rounds_completed": part.rounds,
        "updates_per_round": [part.answered_in(r) for r in range(1, part.rounds + 1)],
        "rounds_without_update": sorted(getattr(strategy, "halted", [])),
        "per_party": part.to_summary(),
    }


# clauses marked for the catalogs, joined with CLAUSE_SEP: the Chinese report translates
# summary.json's prose clause by clause
THREAT_MODEL = CLAUSE_SEP.join(
    (
        N_("semi-honest parties: they follow the protocol and may pool what they see"),
        N_("see who_learns_what"),
    )
)


def membership_attack(job: HorizontalJob, params: np.ndarray, data: PreparedData) -> dict[str, Any]:
    """Loss-threshold membership inference on the final model (members: training rows,
    non-members: held-out rows), beside the most any attack could reach under the
    accounted (ε, δ)."""
    auc = membership_inference_auc(
        params, data.train.X, data.train.y, data.test.X, data.test.y, seed=job.scenario.seed
    )
    bound = None
    if job.dp is not None and math.isfinite(job.dp.epsilon):
        bound = max_attack_auc_bound(job.dp.epsilon, job.dp.delta)
    return {
        "membership_auc": auc,
        "membership_attack": N_("loss threshold (Yeom et al. 2018)"),
        "membership_auc_bound": bound,
    }


def against_reference(
    test_y: np.ndarray,
    federated: dict[str, float],
    reference: Reference,
    reference_scores: np.ndarray,
    *,
    seed: int | None,
    model: str = "federated",
) -> dict[str, Any]:
    """What every run reports beside its same-budget ``centralised`` model, horizontal or
    vertical: the converged ``reference`` (its metrics on the same held-out customers and
    how it was fitted), the observed default rate, the federated model's gaps to both
    (``comparison`` entries) and the run's ``warnings`` (miscalibration; a reference
    that did not converge). ``seed`` (the scenario's) fixes the reference's bootstrap AUC
    interval (``auc_low``, ``auc_high``)."""
    ref = {
        **score_metrics(test_y, reference_scores),
        **auc_interval_record(test_y, reference_scores, seed),
        **reference.record(),
    }
    observed = float(np.mean(test_y))
    warnings = []
    miscalibrated = calibration_warning(federated["mean_pd"], observed, model=model)
    if miscalibrated is not None:
        warnings.append(miscalibrated)
    if not reference.converged:
        warnings.append(
            f"the reference model did not converge ({reference.n_iter} of "
            f"{reference.max_iter} iterations, gradient norm {reference.gradient_norm:.2e} "
            f"> {REFERENCE_GRADIENT_TOL:g}): gaps to it understate what is reachable"
        )
    return {
        "reference": ref,
        "observed_default_rate": observed,
        "comparison": {
            "federated_minus_reference_auc": federated["auc"] - ref["auc"],
            "log_loss_ratio_federated_to_reference": federated["log_loss"] / ref["log_loss"],
            "calibration_gap_pp": calibration_gap_pp(federated["mean_pd"], observed),
            "calibration_warn_above_pp": CALIBRATION_WARN_PP,
        },
        "warnings": warnings,
    }


def _privacy_summary(s: Scenario, job: HorizontalJob) -> dict[str, Any]:
    mode = mode_of(s.privacy.aggregation)
    out: dict[str, Any] = {
        "aggregation": mode.name,
        "dp": s.privacy.dp,
        # no DP mechanism ran: no formal guarantee to report
        "epsilon": None,
        "delta": None,
        # what the aggregator can read (checked against transcript.jsonl by the tests)
        "server_sees_individual_updates": mode.server_sees_individual_updates,
        "server_sees_global_model": mode.server_sees_global_model,
        "threat_model": THREAT_MODEL,
        # where each party's protective draws come from: fresh per run, or --secrets FILE
        "randomness": job.randomness,
    }
    if job.dp is not None:
        out.update(job.dp.to_summary())
        out["warnings"] = list(job.dp.warnings)
    out.update(mode.implementation().summary(job.server_side()))
    return out


def horizontal_summary(
    s: Scenario,
    data: PreparedData,
    job: HorizontalJob,
    recorder: ServerRecorder,
    fed_scores: np.ndarray,
    central_scores: np.ndarray,
    reference: Reference,
    reference_scores: np.ndarray,
    local_metrics: dict[str, dict[str, float]],
    fed_wall: float,
    baseline_wall: float,
    crypto: dict[str, float] | None,
) -> dict[str, Any]:
    test_y = data.test.y
    # bootstrap AUC intervals seeded from the scenario (evaluation, not a party's secret)
    federated = {
        **score_metrics(test_y, fed_scores),
        **auc_interval_record(test_y, fed_scores, s.seed),
    }
    centralised = {
        **score_metrics(test_y, central_scores),
        **auc_interval_record(test_y, central_scores, s.seed),
    }
    local_aucs = {k: v["auc"] for k, v in local_metrics.items()}
    best_local = max(local_aucs, key=local_aucs.get)
    mean_local = float(np.mean(list(local_aucs.values())))
    bytes_total = recorder.transcript.total_bytes
    judged = against_reference(test_y, federated, reference, reference_scores, seed=s.seed)
    return {
        "fedrisk_version": __version__,
        "scenario": s.name,
        "description": s.description,
        "seed": s.seed,
        "engine": s.federation.engine,
        "kind": s.federation.kind,
        "data": {
            "source": s.data.source,
            "scaling": s.data.scaling,  # robust: clipped at quantiles the banks agreed
            "features": data.train.n_features,
            "train_rows": data.train.n_rows,
            "test_rows": data.test.n_rows,
            "test_default_rate": float(np.mean(test_y)),
            "partition": s.federation.partition,
            "alpha": s.federation.alpha if s.federation.partition != "iid" else None,
            "parties": {
                name: {"rows": int(len(idx)), "default_rate": float(np.mean(data.train.y[idx]))}
                for name, idx in zip(data.party_names, data.parts)
            },
        },
        "observed_default_rate": judged["observed_default_rate"],
        "federated": federated,
        "centralised": centralised,
        "reference": judged["reference"],
        "local_only": local_metrics,
        "comparison": {
            "federated_minus_centralised_auc": federated["auc"] - centralised["auc"],
            **judged["comparison"],
            "federated_minus_mean_local_auc": federated["auc"] - mean_local,
            "mean_local_auc": mean_local,
            "best_local_party": best_local,
            "best_local_auc": local_aucs[best_local],
            "psi_federated_vs_centralised_scores": population_stability_index(
                central_scores, fed_scores
            ),
        },
        "training": {
            "server_optimizer": s.model.server_optimizer,
            "server_learning_rate": s.model.server_learning_rate,
            "calibration": s.model.calibration if s.calibration_rounds else "none",
            "calibration_rounds": s.calibration_rounds,
            "early_stopping": recorder.early_stopping,
        },
        "warnings": judged["warnings"],
        "privacy": _privacy_summary(s, job),
        "cost": {
            "wall_s": None,  # filled in last
            "federated_wall_s": round(fed_wall, 3),
            "baselines_wall_s": round(baseline_wall, 3),
            "rounds": training_rounds_run(s, recorder),
            "max_rounds": s.rounds,
            "calibration_rounds": s.calibration_rounds,
            "bytes_sent": bytes_total,
            "bytes_per_round": [r.bytes for r in recorder.rounds],
            "setup_bytes": recorder.transcript.bytes_in_round(0),
            "messages": len(recorder.transcript.entries),
            **({k: round(v, 3) for k, v in crypto.items()} if crypto else {}),
        },
    }


def training_rounds_run(s, recorder) -> int:
    """Training rounds that ran: the scenario's rounds, or where early stopping ended."""
    stop = recorder.early_stopping
    return stop["training_rounds_run"] if stop else s.rounds


__all__ = [
    "THREAT_MODEL",
    "against_reference",
    "faults_summary",
    "horizontal_summary",
    "membership_attack",
    "training_rounds_run",
]
