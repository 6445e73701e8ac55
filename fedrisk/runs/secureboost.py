"""A SecureBoost run (``model.kind = "secureboost"``): prepare (every party's table and
the bank's keys, as for vertical logistic runs) -> federate (the bank's ServerApp and
the parties' ClientApps) -> evaluate (scikit-learn's HistGradientBoostingClassifier on
the pooled columns, and the same boosting on the bank's columns alone, on the same
customers) -> write (the run folder, with the trees and each party's part)."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from fedrisk.crypto.workers import worker_count
from fedrisk.evaluation import auc_interval_record, score_metrics
from fedrisk.evaluation.baselines import train_boosting
from fedrisk.files import write_private_json
from fedrisk.flower.engines import quiet_flower, run_engine
from fedrisk.flower.recorder import ServerRecorder
from fedrisk.i18n import CLAUSE_SEP, N_
from fedrisk.models.boosting import base_score, boost_locally
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.outputs import RunOutcome, write_json, write_outputs
from fedrisk.runs.progress import run_progress, step_recorder
from fedrisk.runs.rundir import staged_run_dir
from fedrisk.runs.summary import THREAT_MODEL
from fedrisk.runs.vertical import (
    ALIGNMENT,
    VerticalSetup,
    prepare_vertical,
    seconds_per_encryption,
    seconds_per_mulmod,
)
from fedrisk.scenario import Scenario
from fedrisk.version import __version__
from fedrisk.vertical.secureboost.bank import boosting_params, make_secureboost_bank_app
from fedrisk.vertical.secureboost.party import make_secureboost_party_app, split_table
from fedrisk.vertical.secureboost.protocol import BoostOutcome

MODEL_DIR = "model"
TREES_FILE = "trees.json"
TREES_FORMAT = "fedrisk-secureboost-v1"
LONG_RUN_SECONDS = 600.0


def run_secureboost(
    s: Scenario,
    out: Path,
    *,
    show_progress: bool = True,
    verbose: bool = False,
    client_mods: list | None = None,
    secrets: RunSecrets | None = None,
) -> RunOutcome:
    """Grow ``secureboost.trees`` trees jointly; write the run folder."""
    started = time.perf_counter()
    quiet_flower(verbose)
    setup = prepare_vertical(s, None, secrets)
    warn_if_long(s, setup)
    with staged_run_dir(out) as stage:
        recorder, outcome, fed_wall = federate_secureboost(
            s, setup, show_progress=show_progress, client_mods=client_mods
        )
        summary = complete_secureboost(stage, s, setup, recorder, outcome, fed_wall, started)
    return RunOutcome(out, summary)


def estimated_seconds(s: Scenario, setup: VerticalSetup) -> float:
    """Per tree: one encryption per training customer and, per level, one
    multiplication mod n² per customer and data-party column (half the customers after
    the root, by histogram subtraction), shared over the cores."""
    if not s.secureboost.encrypted:
        return 0.0
    rows = len(setup.bank.ids) * (1 - s.data.test_fraction) * s.secureboost.subsample
    columns = sum(t.n_features for t in setup.tables.data_parties)
    per_enc = seconds_per_encryption(setup.bank.public_key, s, setup.bank.private_key)
    per_mul = seconds_per_mulmod(setup.bank.public_key)
    levels = 1 + 0.5 * (s.secureboost.max_depth - 1)
    per_tree = rows * per_enc + rows * columns * levels * per_mul / worker_count()
    return s.secureboost.trees * per_tree


def warn_if_long(s: Scenario, setup: VerticalSetup) -> None:
    seconds = estimated_seconds(s, setup)
    if seconds > LONG_RUN_SECONDS:
        warnings.warn(
            f"this secureboost run will take about {seconds / 60:.0f} minutes "
            f"({s.secureboost.trees} trees); shorten it with secureboost.trees, "
            "secureboost.subsample or fewer data-party columns",
            stacklevel=2,
        )


def federate_secureboost(
    s: Scenario, setup: VerticalSetup, *, show_progress: bool, client_mods: list | None = None
) -> tuple[ServerRecorder, BoostOutcome, float]:
    """The bank's ServerApp and the parties' ClientApps on the in-process or the
    Simulation Engine; the recorder logs one round per tree."""
    outcome = BoostOutcome()
    with run_progress(show_progress, s) as (progress, task):
        recorder = step_recorder(progress, task, "tree")
        fed_wall = run_engine(
            s.federation.engine,
            make_secureboost_bank_app(setup.bank, recorder, outcome),
            make_secureboost_party_app(setup.parties, client_mods),
            len(setup.parties.parties),
        )
    if recorder.error is not None:
        raise recorder.error
    if outcome.test_scores is None:
        raise RuntimeError(
            "the secureboost run ended before its last tree (the engine stopped early; "
            "rerun with --verbose for Flower's log)"
        )
    return recorder, outcome, fed_wall


# --- evaluate and write ----------------------------------------------------------------


def _rows_of(table, ids: np.ndarray) -> np.ndarray:
    pos = {str(i): k for k, i in enumerate(table.ids)}
    return np.array([pos[str(i)] for i in ids], dtype=np.int64)


def model_parts(s: Scenario, setup: VerticalSetup, outcome: BoostOutcome) -> dict[str, dict]:
    """Each party's part of the model: for every split id its trees use, the column and
    threshold (left: value ≤ threshold). The bank's is its own binning; a data party's
    is recomputed from its rows and its own secret, as its ClientApp made it."""
    used: dict[int, set[int]] = {}
    for tree in outcome.trees[: outcome.best_trees]:
        for src, sid in zip(tree["source"], tree["split"]):
            if src >= 0:
                used.setdefault(src, set()).add(sid)
    holder = setup.tables.holder
    parts = {
        holder.name: {
            "party": holder.name,
            "source": 0,
            "splits": {
                str(sid): _split_record(holder.feature_names, *outcome.bank_bins.candidate(sid))
                for sid in sorted(used.get(0, ()))
            },
        }
    }
    for k, party in enumerate(setup.parties.parties, start=1):
        bins, split_ids = split_table(
            party, _rows_of(party, outcome.train_ids), s.secureboost.max_bins, k - 1
        )
        candidate_of = np.argsort(split_ids)
        parts[party.name] = {
            "party": party.name,
            "source": k,
            "splits": {
                str(sid): _split_record(
                    party.feature_names, *bins.candidate(int(candidate_of[sid]))
                )
                for sid in sorted(used.get(k, ()))
            },
        }
    return parts


def fallback_trees(names, trees, bins, base: float) -> dict[str, Any]:
    """Trees grown on the bank's own columns as a self-contained record: every split as
    its column (index into ``columns``) and threshold, for
    :class:`~fedrisk.model_io.FederatedBoostedTrees`."""
    compiled = []
    for tree in trees:
        split = [src >= 0 for src in tree.source]
        cuts = [bins.candidate(sid) if on else (-1, 0.0) for sid, on in zip(tree.split, split)]
        compiled.append(
            {
                "feature": [int(c) for c, _ in cuts],
                "threshold": [float(t) for _, t in cuts],
                "left": list(tree.left),
                "right": list(tree.right),
                "value": [float(v) for v in tree.value],
            }
        )
    return {"columns": list(names), "base_score": float(base), "trees": compiled}


def _split_record(names, column: int, threshold: float) -> dict[str, Any]:
    return {"column": names[column], "threshold": threshold}


def importance(outcome: BoostOutcome, parts: dict[str, dict]) -> dict[str, Any]:
    """Gain-based importance: the total gain of the splits each party and each column
    made, over the kept trees, as shares of the whole."""
    by_source = {p["source"]: name for name, p in parts.items()}
    party_gain: dict[str, float] = dict.fromkeys(parts, 0.0)
    feature_gain: dict[str, float] = {}
    splits = dict.fromkeys(parts, 0)
    for tree in outcome.trees[: outcome.best_trees]:
        for src, sid, gain in zip(tree["source"], tree["split"], tree["gain"]):
            if src < 0:
                continue
            name = by_source[src]
            party_gain[name] += gain
            splits[name] += 1
            column = parts[name]["splits"][str(sid)]["column"]
            key = f"{name}:{column}"
            feature_gain[key] = feature_gain.get(key, 0.0) + gain
    total = sum(party_gain.values()) or 1.0
    return {
        "measure": "total split gain over the kept trees, as a share",
        "by_party": {
            n: {"gain_share": g / total, "splits": splits[n]} for n, g in party_gain.items()
        },
        "by_feature": dict(
            sorted(((k, v / total) for k, v in feature_gain.items()), key=lambda kv: -kv[1])
        ),
    }


def public_importance(full: dict[str, Any], bank: str) -> dict[str, Any]:
    """What summary.json (public) may say: every party's share and split count, and
    the bank's own columns. A data party's per-column shares would tell the bank,
    which knows each split's gain, the column behind each of that party's split ids
    (a subset sum): they stay in ``model/importance.json``, the simulator's view."""
    return {
        **full,
        "by_feature": {k: v for k, v in full["by_feature"].items() if k.startswith(bank + ":")},
        "data_party_columns": f"{MODEL_DIR}/importance.json (the simulator's view, owner-only)",
    }


def complete_secureboost(
    stage: Path,
    s: Scenario,
    setup: VerticalSetup,
    recorder: ServerRecorder,
    outcome: BoostOutcome,
    fed_wall: float,
    started: float,
) -> dict[str, Any]:
    """Baselines on the simulator's join of the same customers, metrics, files."""
    tables = setup.tables
    holder = tables.holder
    params = boosting_params(s)
    train_ids, test_ids = outcome.train_ids, outcome.test_ids
    y_train = holder.y[_rows_of(holder, train_ids)].astype(np.float64)
    y_test = outcome.test_y
    blocks = [(t.X[_rows_of(t, train_ids)], t.X[_rows_of(t, test_ids)]) for t in tables.parties]
    pooled_train = np.hstack([tr for tr, _ in blocks])
    pooled_test = np.hstack([te for _, te in blocks])
    central_scores = train_boosting(params, pooled_train, y_train, s.seed).predict_proba(
        pooled_test
    )[:, 1]
    bank_train, bank_test = blocks[tables.parties.index(holder)]
    bank_trees, bank_curve, bank_bins = boost_locally(
        bank_train, y_train, bank_test, params, s.seed
    )
    bank_scores = 1 / (1 + np.exp(-bank_curve[-1]))
    federated = {
        **score_metrics(y_test, outcome.test_scores),
        **auc_interval_record(y_test, outcome.test_scores, s.seed),
    }
    centralised = {
        **score_metrics(y_test, central_scores),
        **auc_interval_record(y_test, central_scores, s.seed),
        "model": "scikit-learn HistGradientBoostingClassifier, same trees, depth, bins, "
        "learning rate and L2 on every party's columns of the same customers",
    }
    local = {holder.name: score_metrics(y_test, bank_scores)}
    parts = model_parts(s, setup, outcome)
    # model/ is the simulator's view: every party's private part side by side (the
    # data parties' cuts, the bank's leaf values): owner-only, unlike the public files
    model_dir = stage / MODEL_DIR
    model_dir.mkdir(mode=0o700)
    model_dir.chmod(0o700)
    full_importance = importance(outcome, parts)
    write_private_json(model_dir / "importance.json", full_importance)
    write_private_json(
        model_dir / TREES_FILE,
        {
            "format": TREES_FORMAT,
            "label_holder": holder.name,
            "sources": [p.name for p in tables.parties if p is holder]
            + [p.name for p in tables.data_parties],
            "base_score": outcome.base_score,
            "trees_kept": outcome.best_trees,
            "trees": outcome.trees[: outcome.best_trees],
        },
    )
    # the bank's part also keeps its bank-only model (the "bank alone" baseline): what
    # fedrisk score uses for an applicant some data party does not hold
    parts[holder.name]["fallback"] = fallback_trees(
        holder.feature_names, bank_trees, bank_bins, base_score(y_train)
    )
    for name, part in parts.items():
        write_private_json(model_dir / f"{name}.json", part)
    b = s.secureboost
    summary: dict[str, Any] = {
        "fedrisk_version": __version__,
        "scenario": s.name,
        "description": s.description,
        "seed": s.seed,
        "engine": s.federation.engine,
        "kind": "vertical",
        "model": "secureboost",
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
            "train_rows": len(train_ids),
            "test_rows": len(test_ids),
            "test_default_rate": float(np.mean(y_test)),
        },
        "boosting": {
            "trees_grown": len(outcome.trees),
            "trees_kept": outcome.best_trees,
            "max_depth": b.max_depth,
            "learning_rate": s.model.learning_rate,
            "max_bins": b.max_bins,
            "min_child_weight": b.min_child_weight,
            "reg_lambda": b.reg_lambda,
            "subsample": b.subsample,
            "early_stopping_rounds": b.early_stopping_rounds,
            "validation_log_loss": outcome.validation_loss or None,
            "bank_first_tree": b.bank_first_tree,
            "encrypted": b.encrypted,
        },
        "observed_default_rate": float(np.mean(y_test)),
        "federated": federated,
        "centralised": centralised,
        "local_only": local,
        "comparison": {
            "federated_minus_centralised_auc": federated["auc"] - centralised["auc"],
            "federated_relative_to_centralised_auc": federated["auc"] / centralised["auc"] - 1,
            "federated_minus_label_holder_alone_auc": federated["auc"] - local[holder.name]["auc"],
        },
        "importance": public_importance(full_importance, holder.name),
        "warnings": [],
        "privacy": {
            "aggregation": "paillier" if b.encrypted else "none",
            "dp": "none",
            "epsilon": None,
            "delta": None,
            "key_bits": s.privacy.key_bits if b.encrypted else None,
            "key_holder": holder.name,
            "obfuscation": s.privacy.obfuscation if b.encrypted else None,
            "randomness": setup.randomness,
            "alignment": ALIGNMENT,
            "threat_model": THREAT_MODEL,
            "who_learns_what": who_learns_what(s, holder.name),
            "model_folder": N_(
                "{folder}/ holds every party's private part side by side (the simulator's "
                "view; owner-only): not one of the run's public files"
            ).format(folder=MODEL_DIR),
        },
        "cost": {
            "wall_s": None,
            "federated_wall_s": round(fed_wall, 3),
            "rounds": len(outcome.trees),
            "trees": len(outcome.trees),
            "bytes_sent": recorder.transcript.total_bytes,
            "bytes_per_round": [r.bytes for r in recorder.rounds],
            "setup_bytes": recorder.transcript.bytes_in_round(0),
            "messages": len(recorder.transcript.entries),
            "encryptions": outcome.encryptions,
            "encryption_s": round(outcome.encrypt_s, 3),
            "obfuscator_precompute_s": round(outcome.precompute_s, 3),
            "histogram_wait_s": round(outcome.histogram_s, 3),
            "decryptions": outcome.decryptions,
            "decryption_s": round(outcome.decrypt_s, 3),
            "histogram_rows": outcome.built_rows,
        },
        "attacks": {},
    }
    if not b.encrypted:
        summary["warnings"].append(
            "secureboost.encrypted = false: g, h and the histograms crossed in plaintext "
            "(no protection; for measuring what encryption costs)"
        )
    write_outputs(
        stage,
        s,
        recorder,
        (),
        outcome.test_scores,
        y_test,
        centralised["auc"],
        (holder.name, local[holder.name]["auc"]),
    )
    summary["cost"]["wall_s"] = round(time.perf_counter() - started, 3)
    write_json(stage / "summary.json", summary)
    return summary


def who_learns_what(s: Scenario, bank: str) -> dict[str, str]:
    """What each side learns in this run (the claims tests/privacy attack), from clauses
    marked for the catalogs and joined with CLAUSE_SEP (the Chinese report translates
    them one by one)."""
    b = s.secureboost
    first = (
        N_(
            "the first tree is grown from the bank's columns alone "
            "(secureboost.bank_first_tree), so they see nothing of it"
        )
        if b.bank_first_tree
        else N_(
            "the first tree's partitions follow the labels most closely (its g is p0 - y): "
            "secureboost.bank_first_tree = true keeps that tree at the bank"
        )
    )
    gh = (
        N_("and ciphertexts of g and h they cannot read")
        if b.encrypted
        else N_(
            "and g and h of every customer of every tree in plaintext "
            "(secureboost.encrypted = false: the first tree's g gives every label)"
        )
    )
    knows = [
        N_("the intersection and every party's id count"),
        N_(
            "per tree node, each data party's left sums (count, sum of g, sum of h) for every "
            "candidate split under the party's split ids: the party's binned column "
            "histograms on that node, its columns unnamed but (the split ids being fixed for "
            "the run) groupable into columns with their bins in order"
        ),
        N_(
            "and the left/right partition a chosen party split makes of the node's customers "
            "(training, validation and held-out), so which customers lie in which range of an "
            "unnamed column"
        ),
        N_("never a column name, a threshold or a raw feature value"),
    ]
    if not b.encrypted:
        knows.append(N_("with secureboost.encrypted = false the histograms too"))
    parties = [
        N_(
            "every party's id count (summary.json publishes them) and the multi-party "
            "intersection (PSI), the held-out split of those ids, the node membership of "
            "every row of every tree they take part in and, through their split requests, of "
            "the validation and held-out customers: the partition every split of the bank or "
            "another party makes (not which side is the lower one: the bank draws which child "
            "gets the lower node id), partitions the bank chose with the labels, so label "
            "information leaks through them"
        ),
        N_(
            "which of their own splits were used and where those send each customer, so, "
            "with the public per-tree test AUC in rounds.csv, the held-out default counts on "
            "each side of their own splits"
        ),
        gh,
        first,
    ]
    return {bank: CLAUSE_SEP.join(knows), "data parties": CLAUSE_SEP.join(parties)}


__all__ = [
    "MODEL_DIR",
    "TREES_FILE",
    "TREES_FORMAT",
    "complete_secureboost",
    "estimated_seconds",
    "federate_secureboost",
    "importance",
    "model_parts",
    "public_importance",
    "run_secureboost",
    "who_learns_what",
]
