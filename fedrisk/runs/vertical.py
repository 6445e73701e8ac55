"""A vertical run: the bank and the data-source parties through Flower, then the
simulator's baselines on the same aligned customers, the label-leakage attack and the
run folder."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from fedrisk.crypto.paillier import generate_keypair
from fedrisk.data.split import Standardizer
from fedrisk.data.vertical import load_vertical
from fedrisk.errors import InputError
from fedrisk.evaluation import score_metrics
from fedrisk.evaluation.baselines import BaselineBudget, train_centralised
from fedrisk.flower.engines import quiet_flower, run_engine
from fedrisk.flower.recorder import ServerRecorder
from fedrisk.models.logistic import predict_proba
from fedrisk.privacy.plan import plan_dp
from fedrisk.runs.outputs import RunOutcome, write_json, write_outputs
from fedrisk.runs.progress import run_progress
from fedrisk.runs.rundir import staged_run_dir
from fedrisk.scenario import Scenario
from fedrisk.version import __version__
from fedrisk.vertical.bank import make_bank_app
from fedrisk.vertical.leakage import label_leakage
from fedrisk.vertical.party import make_party_app
from fedrisk.vertical.protocol import BankJob, DataPartyJob, PartyData, VerticalOutcome


def run_vertical(
    s: Scenario,
    out: Path,
    *,
    show_progress: bool = True,
    verbose: bool = False,
    client_mods: list | None = None,
) -> RunOutcome:
    """A bank and data-source parties: PSI alignment, then hetero LR with Paillier."""
    started = time.perf_counter()
    quiet_flower(verbose)
    if s.federation.engine != "inprocess":
        raise InputError(
            f"{s.source_file}: federation.engine: vertical runs use the "
            "in-process engine in this version"
        )
    tables = load_vertical(s)
    holder = tables.holder
    dp = plan_dp(s, {holder.name: holder.n_rows})
    public_key, private_key = generate_keypair(s.privacy.key_bits)
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
    )
    parties = DataPartyJob(
        s,
        tuple(PartyData(p.name, p.ids, p.X, p.feature_names) for p in tables.data_parties),
        public_key,
        dp.clip_norm if dp else None,
    )
    outcome = VerticalOutcome()
    with staged_run_dir(out) as stage:
        with run_progress(show_progress, s) as (progress, task):

            def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
                progress.update(task, advance=1, status=f"test AUC {metrics['auc']:.4f}")

            recorder = ServerRecorder(None, on_epoch)
            app = make_party_app(parties, client_mods)
            fed_wall = run_engine(
                "inprocess", make_bank_app(bank, recorder, outcome), app, len(parties.parties)
            )
        if recorder.error is not None:
            raise recorder.error
        # baselines on the same aligned customers and held-out rows (simulator's join)
        party_rows = [_aligned(p, outcome.train_ids, outcome.test_ids) for p in tables.data_parties]
        pooled_train = np.hstack([outcome.bank_train_X] + [tr for tr, _ in party_rows])
        pooled_test = np.hstack([outcome.bank_test_X] + [te for _, te in party_rows])
        budget = BaselineBudget.of(s.model, s.rounds, s.seed)
        central = train_centralised(budget, pooled_train, outcome_train_y(holder, outcome))
        bank_alone = train_centralised(
            budget, outcome.bank_train_X, outcome_train_y(holder, outcome)
        )
        y_test = outcome.test_y
        federated = score_metrics(y_test, outcome.test_scores)
        centralised = score_metrics(y_test, predict_proba(central, pooled_test))
        local = {holder.name: score_metrics(y_test, predict_proba(bank_alone, outcome.bank_test_X))}
        attacks: dict[str, Any] = {}
        if s.privacy.label_leakage_attack:
            first = tables.data_parties[0]
            attacks["label_leakage"] = {
                "attacker": first.name,
                "attack": "gradient projection: score_i = -x_i·g over each batch",
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
            "federated": federated,
            "centralised": centralised,
            "local_only": local,
            "comparison": {
                "federated_minus_centralised_auc": federated["auc"] - centralised["auc"],
                "federated_minus_label_holder_alone_auc": federated["auc"]
                - local[holder.name]["auc"],
            },
            "privacy": {
                "aggregation": "paillier",
                "dp": "none",
                "epsilon": None,
                "delta": None,
                "key_bits": s.privacy.key_bits,
                "key_holder": holder.name,
                "obfuscation": s.privacy.obfuscation,
                "alignment": "ECDH PSI over X25519, chained through the label holder",
                "who_learns_what": {
                    holder.name: "the intersection, every party's id count, each party's "
                    "partial scores per customer (not its features or weights)",
                    "data parties": "the intersection and their own gradient (labels leak "
                    "through it; see attacks.label_leakage), nothing of "
                    "another party's features, weights or labels",
                },
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
                "decryption_s": round(outcome.decrypt_s, 3),
            },
            "attacks": attacks,
        }
        if dp is not None:
            summary["privacy"].update(dp.to_summary())
        write_outputs(
            stage,
            s,
            recorder,
            dp.epsilon_per_round if dp else (),
            outcome.test_scores,
            y_test,
            centralised["auc"],
            (holder.name, local[holder.name]["auc"]),
            "joint test AUC per epoch",
        )
        summary["cost"]["wall_s"] = round(time.perf_counter() - started, 3)
        write_json(stage / "summary.json", summary)
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


__all__ = ["run_vertical"]
