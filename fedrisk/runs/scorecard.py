"""A WOE scorecard run (``model.kind = "scorecard"``), horizontal or vertical, as a
pipeline:

bin (every characteristic binned jointly through Flower: the banks' summed counts, or
the bank and the data parties' encrypted per-bin label sums) -> select (IV, stability,
count) -> code (each party WOE-codes its own selected columns) -> train (the existing
federated logistic regression on the WOE columns: FedAvg for banks, hetero LR for a bank
and data parties) -> score (integer points per bin, ``scorecard.csv``/``.json``).

The centralised baseline runs the same workflow on the pooled rows: binning the pooled
columns gives the federated bins and WOE exactly (:mod:`fedrisk.models.binning` computes
both from the same counts; the summary reports the largest IV difference, which is 0),
and the logistic model on the pooled WOE columns is the run's ``centralised`` model.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from fedrisk.crypto.paillier import generate_keypair
from fedrisk.data.characteristics import load_vertical_characteristics, prepare_characteristics
from fedrisk.data.dataset import Dataset
from fedrisk.data.prepare import PreparedData
from fedrisk.data.scaling import fit_party_scaler
from fedrisk.data.vertical import PartyTable, VerticalTables
from fedrisk.errors import InputError
from fedrisk.evaluation import score_metrics
from fedrisk.evaluation.scorecard import scaling
from fedrisk.evaluation.woe_scorecard import Characteristic, WoeScorecard, write_woe_scorecard
from fedrisk.files import write_private_json
from fedrisk.flower.engines import quiet_flower, run_engine
from fedrisk.flower.recorder import ServerRecorder
from fedrisk.horizontal.binning.protocol import WHO_LEARNS_WHAT as BINNING_WHO_LEARNS_WHAT
from fedrisk.horizontal.binning.run import BankRows, federated_binning
from fedrisk.horizontal.keys import paillier_keys
from fedrisk.horizontal.setup import bank_job
from fedrisk.i18n import CLAUSE_SEP, N_
from fedrisk.models.binning import (
    BinningParams,
    WoeTable,
    same_bins,
    select,
    stability_index,
)
from fedrisk.models.logistic import predict_proba
from fedrisk.privacy.secrets import AGGREGATOR, RunSecrets
from fedrisk.runs.horizontal import complete_horizontal, federate
from fedrisk.runs.outputs import RunOutcome, write_json
from fedrisk.runs.progress import run_progress
from fedrisk.runs.rundir import staged_run_dir
from fedrisk.runs.secureboost import MODEL_DIR
from fedrisk.runs.vertical import complete_vertical, federate_vertical, prepare_vertical
from fedrisk.scenario import Scenario
from fedrisk.vertical.binning.bank import make_binning_bank_app
from fedrisk.vertical.binning.party import (
    alignment_data,
    final_binnings,
    make_binning_party_app,
    party_prebins,
)
from fedrisk.vertical.binning.protocol import (
    WHO_LEARNS_WHAT,
    BinningPartyData,
    BinningRunOutcome,
)
from fedrisk.vertical.protocol import MODEL_KEY, BankJob, DataPartyJob


def binning_params(s: Scenario) -> BinningParams:
    b = s.binning
    return BinningParams(
        b.method, b.max_bins, b.min_bin_share, b.min_bad_share, b.monotonic, b.prebins
    )


def training_scenario(s: Scenario) -> Scenario:
    """The scenario the logistic phase runs: WOE columns need no scaling of their own
    (a vertical party still z-scores its columns for the fixed-point encoding; the
    scorecard maps the weights back to raw WOE)."""
    return replace(s, data=replace(s.data, scaling="none"))


def run_scorecard(
    s: Scenario,
    out: Path,
    *,
    show_progress: bool = True,
    verbose: bool = False,
    client_mods: list | None = None,
    keys=None,
    secrets: RunSecrets | None = None,
) -> RunOutcome:
    """Run a scorecard scenario (either federation) and write ``out``."""
    if s.federation.kind == "vertical":
        return run_vertical_scorecard(
            s,
            out,
            show_progress=show_progress,
            verbose=verbose,
            client_mods=client_mods,
            secrets=secrets,
        )
    return run_horizontal_scorecard(
        s,
        out,
        show_progress=show_progress,
        verbose=verbose,
        client_mods=client_mods,
        keys=keys,
        secrets=secrets,
    )


# --- horizontal -----------------------------------------------------------------------------


@dataclass
class ColumnRecord:
    """A horizontal characteristic as the summary shows it (every bank holds its table)."""

    owner: str
    name: str
    kind: str
    woe: np.ndarray
    good: np.ndarray
    bad: np.ndarray
    iv: float
    psi: float
    selected: bool = False
    reason: str = ""


def run_horizontal_scorecard(
    s: Scenario,
    out: Path,
    *,
    show_progress: bool = True,
    verbose: bool = False,
    client_mods: list | None = None,
    keys=None,
    secrets: RunSecrets | None = None,
) -> RunOutcome:
    started = time.perf_counter()
    quiet_flower(verbose)
    secrets = secrets or RunSecrets()
    data = prepare_characteristics(s)
    for w in data.warnings:
        print(f"fedrisk: warning: {w}", file=sys.stderr)
    params = binning_params(s)
    if keys is None and s.privacy.aggregation == "paillier":
        keys = paillier_keys(s)
    train, test = data.train, data.test
    banks = [
        BankRows(name, {c: train.columns[c][part] for c in train.names}, train.y[part])
        for name, part in zip(data.party_names, data.parts)
    ]
    with run_progress(show_progress, replace(s, rounds=1)) as (progress, task):
        progress.update(task, status="binning every characteristic")
        binned = federated_binning(params, banks, s.privacy.aggregation, keys, s.federation.engine)
    columns = [
        ColumnRecord(
            "banks",
            t.name,
            "text" if train.is_text(t.name) else "numeric",
            t.woe,
            t.good,
            t.bad,
            t.iv,
            # stability of the bins between the banks' training rows and the held-out
            # customers (the simulator's test set; in a federation a secure sum of
            # per-bin counts, as the binning's)
            stability_index(
                t.distribution(train.columns[t.name]), t.distribution(test.columns[t.name])
            ),
        )
        for t in binned.tables
    ]
    kept, reasons = select(
        [c.name for c in columns],
        np.array([c.iv for c in columns]),
        np.array([c.psi for c in columns]),
        min_iv=s.selection.min_iv,
        max_psi=s.selection.max_psi,
        max_features=s.selection.max_features,
    )
    for c, k, r in zip(columns, kept, reasons):
        c.selected, c.reason = k, r
    check_selection(s, columns)
    tables = {t.name: t for t in binned.tables}
    chosen = [tables[c.name] for c in columns if c.selected]
    names = tuple(t.name for t in chosen)
    # every bank codes its own rows with the agreed WOE (the simulator codes them at once)
    coded = PreparedData(
        Dataset(_coded(chosen, train), train.y, train.ids, names, train.name),
        Dataset(_coded(chosen, test), test.y, test.ids, names, test.name),
        data.parts,
        data.party_names,
        None,
    )
    s_train = training_scenario(s)
    job = bank_job(s_train, coded, keys, secrets)
    test_X, test_y = coded.test.X, coded.test.y

    def score(params_: np.ndarray) -> dict[str, float]:
        return score_metrics(test_y, predict_proba(params_, test_X))

    with staged_run_dir(out) as stage:
        recorder, fed_wall = federate(
            job,
            score,
            keys,
            s.federation.engine,
            client_mods,
            None,
            None,
            show_progress,
            secrets.of(AGGREGATOR),
        )
        recorder.transcript.entries[:0] = binned.transcript.entries
        summary = complete_horizontal(
            stage, s_train, coded, job, recorder, fed_wall, score, started
        )
        w = np.asarray(recorder.final_params, dtype=np.float64)
        card = WoeScorecard(
            600.0,
            50.0,
            20.0,
            float(w[-1]),
            tuple(
                Characteristic(
                    t.name,
                    "banks",
                    float(b),
                    t.woe,
                    t.good,
                    t.bad,
                    tuple(t.binning.labels()),
                    t.binning,
                )
                for t, b in zip(chosen, w[:-1])
            ),
        )
        write_woe_scorecard(card, stage)
        test_bins = np.column_stack([t.binning.assign(test.columns[t.name]) for t in chosen])
        pooled_tables = {
            t.name: params.table_of(
                params.fit(t.name, train.columns[t.name], train.y),
                train.columns[t.name],
                train.y,
            )
            for t in chosen
        }
        pooled = {f"banks:{k}": v.iv for k, v in pooled_tables.items()}
        selected = [
            ("banks", t.name, t.binning, c) for t in chosen for c in columns if c.name == t.name
        ]
        summary["model"] = "scorecard"
        summary.update(scorecard_sections(s, card, selected, columns, test_bins, test_y, pooled))
        summary["binning"]["bins_agree_with_pooled"] = all(
            same_bins(pooled_tables[t.name].binning, t.binning) for t in chosen
        )
        add_binning_knowledge(summary, BINNING_WHO_LEARNS_WHAT[s.privacy.aggregation])
        summary["cost"]["binning_wall_s"] = round(binned.seconds, 3)
        summary["cost"]["binning_bytes"] = binned.bytes_sent
        summary["cost"]["wall_s"] = round(time.perf_counter() - started, 3)
        write_json(stage / "summary.json", summary)
    return RunOutcome(out, summary)


def _coded(chosen: list[WoeTable], ch) -> np.ndarray:
    """Rows WOE-coded: one column per selected characteristic."""
    if not chosen:
        return np.zeros((ch.n_rows, 0))
    return np.column_stack([t.transform(ch.columns[t.name]) for t in chosen])


# --- vertical -------------------------------------------------------------------------------


@dataclass
class VerticalCoding:
    """What the binning phase leaves: each party's WOE-coded selected columns and, per
    selected characteristic, its owner, bins and WOE."""

    tables: VerticalTables
    selected: list[tuple[str, str, WoeTable | None, Any]]  # owner, name, table, result


def run_vertical_scorecard(
    s: Scenario,
    out: Path,
    *,
    show_progress: bool = True,
    verbose: bool = False,
    client_mods: list | None = None,
    secrets: RunSecrets | None = None,
) -> RunOutcome:
    started = time.perf_counter()
    quiet_flower(verbose)
    secrets = secrets or RunSecrets()
    data = load_vertical_characteristics(s)
    for w in data.warnings:
        print(f"fedrisk: warning: {w}", file=sys.stderr)
    holder_name = next(p.name for p in s.federation.parties if p.label)
    party_names = tuple(p.name for p in s.federation.parties if not p.label)
    public_key, private_key = generate_keypair(s.privacy.key_bits)
    holder = data.holder
    bank = BankJob(
        s,
        holder_name,
        holder.ids,
        np.zeros((holder.n_rows, 0)),
        holder.y,
        (),
        party_names,
        public_key,
        private_key,
        None,
        secrets.of(holder_name),
    )
    parties = tuple(
        BinningPartyData(name, p.ids, dict(p.columns), secrets.of(name))
        for name, p in zip(party_names, data.parties)
    )
    params = binning_params(s)
    binning = BinningRunOutcome()
    recorder = ServerRecorder(None, None)
    with run_progress(show_progress, replace(s, rounds=1)) as (progress, task):
        progress.update(task, status="binning every characteristic")
        bin_wall = run_engine(
            s.federation.engine,
            make_binning_bank_app(
                bank, dict(holder.columns), params, s.selection, recorder, binning
            ),
            make_binning_party_app(
                DataPartyJob(s, tuple(alignment_data(p) for p in parties), public_key),
                parties,
                params,
                client_mods,
            ),
            len(parties),
        )
    if recorder.error is not None:
        raise recorder.error
    check_selection(s, binning.columns)
    coding = vertical_coding(holder_name, holder, parties, binning, params)
    s_train = training_scenario(s)
    setup = prepare_vertical(s_train, private_key, secrets, coding.tables)
    weights: dict[int, np.ndarray] = {}
    with staged_run_dir(out) as stage:
        lr_recorder, outcome, fed_wall, extra = federate_vertical(
            s_train,
            setup,
            show_progress=show_progress,
            verbose=verbose,
            client_mods=[*(client_mods or []), _capture_weights(weights)],
        )
        # the binning phase's messages first: one transcript for the whole run
        lr_recorder.transcript.entries[:0] = recorder.transcript.entries
        summary = complete_vertical(
            stage, s_train, setup, lr_recorder, outcome, fed_wall, started, extra
        )
        card = vertical_card(coding, lr_recorder.final_params, outcome, weights)
        # the bank's card: the data parties' bins by number (their cut points and
        # categories stay theirs); model/ holds each party's own part, owner-only
        write_woe_scorecard(card.hiding(set(party_names)), stage)
        model_dir = stage / MODEL_DIR
        model_dir.mkdir(mode=0o700)
        model_dir.chmod(0o700)
        for name in party_names:
            write_private_json(model_dir / f"scorecard-{name}.json", card.part_of(name))
        summary["kind"] = "vertical"
        summary["model"] = "scorecard"
        bins = vertical_test_bins(coding, holder, parties, outcome.test_ids)
        pooled_iv, agree = vertical_pooled(coding, holder, parties, outcome.train_ids, params)
        summary.update(
            scorecard_sections(
                s,
                card,
                coding.selected,
                binning.columns,
                bins,
                outcome.test_y,
                pooled_iv,
                {
                    (p.name, f"{p.name}:column {j + 1}"): name
                    for p in parties
                    for j, name in enumerate(p.columns)
                },
            )
        )
        summary["binning"]["bins_agree_with_pooled"] = agree
        summary["cost"]["binning_wall_s"] = round(bin_wall, 3)
        summary["cost"]["encryptions"] += binning.encryptions
        add_binning_knowledge(
            summary,
            {holder_name: WHO_LEARNS_WHAT["bank"], "data parties": WHO_LEARNS_WHAT["data parties"]},
        )
        summary["cost"]["wall_s"] = round(time.perf_counter() - started, 3)
        write_json(stage / "summary.json", summary)
    return RunOutcome(out, summary)


def add_binning_knowledge(summary: dict, binning: dict[str, str]) -> None:
    """``privacy.who_learns_what`` of a scorecard run: what each party learns in the
    binning (a WOE table's per-bin default rates) beside what it learns in training."""
    knows = summary["privacy"].setdefault("who_learns_what", {})
    for party, text in binning.items():
        before = knows.get(party)
        # templates whose {clause} the Chinese report translates in turn
        said = N_("binning: {clause}").format(clause=text)
        if before:
            said += CLAUSE_SEP + N_("training: {clause}").format(clause=before)
        knows[party] = said


def check_selection(s: Scenario, columns) -> None:
    """A selection that keeps nothing stops the run (before anything is written)."""
    if any(c.selected for c in columns):
        return
    best = max(columns, key=lambda c: c.iv, default=None)
    shown = f"the highest IV is {best.iv:.4f}" if best is not None else "no characteristic"
    raise InputError(
        f"{s.source_file}: selection: no characteristic is kept ({shown}; "
        f"selection.min_iv = {s.selection.min_iv:g}, selection.max_psi = "
        f"{s.selection.max_psi:g}); lower min_iv or raise max_psi"
    )


def _capture_weights(store: dict[int, np.ndarray]):
    """A Flower mod keeping each simulated party's latest weights (the simulator reads
    them to print the party's points; in a real federation they stay with the party)."""

    def mod(msg, context, call_next):
        reply = call_next(msg, context)
        if MODEL_KEY in context.state:
            store[int(context.node_config["partition-id"])] = (
                context.state[MODEL_KEY]["w"].numpy().copy()
            )
        return reply

    return mod


def vertical_coding(holder_name, holder, parties, binning: BinningRunOutcome, params):
    """Each party's WOE-coded selected columns (the bank codes its own; each data party
    replays its binning with the bank's groups and codes its columns with the WOE it was
    sent), as the tables of the logistic phase."""
    by_owner: dict[str, list] = {}
    for r in binning.columns:
        by_owner.setdefault(r.owner, []).append(r)
    selected: list = []
    mine = [r for r in by_owner.get(holder_name, []) if r.selected]
    cols = []
    for r in mine:
        b = binning.bank_binnings[r.name]
        cols.append(r.woe[b.assign(holder.columns[r.name])])
        selected.append((holder_name, r.name, b, r))
    X = np.column_stack(cols) if cols else np.zeros((holder.n_rows, 0))
    tables = [PartyTable(holder_name, holder.ids, X, tuple(r.name for r in mine), holder.y)]
    for p in parties:
        train_rows = rows_of(p.ids, binning.train_ids)
        prebins, rare_bins = party_prebins(p.columns, train_rows, params, p.secret)
        results = by_owner.get(p.name, [])
        final = final_binnings(
            prebins,
            [r.groups for r in results],
            [r.unseen for r in results],
            rare_bins,
            [r.missing_to for r in results],
        )
        cols, names = [], []
        for b, r in zip(final, results):
            if r.selected:
                cols.append(r.woe[b.assign(p.columns[b.name])])
                names.append(b.name)
                selected.append((p.name, b.name, b, r))
        X = np.column_stack(cols) if cols else np.zeros((len(p.ids), 0))
        tables.append(PartyTable(p.name, p.ids, X, tuple(names)))
    return VerticalCoding(VerticalTables(holder_name, tuple(tables)), selected)


def vertical_card(coding: VerticalCoding, bank_params, outcome, weights) -> WoeScorecard:
    """The points table: the joint model's weights mapped back to raw WOE values (each
    party z-scored its WOE columns on its training rows; under Platt calibration the
    bank scales the parties' partial scores)."""
    tables = coding.tables
    scale = float((outcome.calibration or {}).get("scale", 1.0) or 1.0)
    bank_w = np.asarray(bank_params, dtype=np.float64)
    intercept = float(bank_w[-1])
    coefs: dict[tuple[str, str], float] = {}
    for k, t in enumerate(tables.parties):
        train = rows_of(t.ids, outcome.train_ids)
        scaler = fit_party_scaler(t.X[train], "none")
        if k == 0:
            w = bank_w[:-1]
        else:
            w = scale * weights.get(k - 1, np.zeros(t.n_features))
        beta = w / scaler.scale
        intercept -= float(np.sum(beta * scaler.mean))
        for name, b in zip(t.feature_names, beta):
            coefs[(t.name, name)] = float(b)
    chars = []
    for owner, name, binning, r in coding.selected:
        labels = tuple(binning.labels())
        chars.append(
            Characteristic(name, owner, coefs[(owner, name)], r.woe, r.good, r.bad, labels, binning)
        )
    return WoeScorecard(600.0, 50.0, 20.0, intercept, tuple(chars))


def rows_of(table_ids, ids) -> np.ndarray:
    """Positions in a party's table (its ``table_ids``, its own order) of ``ids``."""
    pos = {str(i): k for k, i in enumerate(table_ids)}
    return np.array([pos[str(i)] for i in ids], dtype=np.int64)


def selected_columns(coding: VerticalCoding, holder, parties, ids):
    """(owner, name, bins, the owner's values of ``ids``) of every selected characteristic
    (the simulator's join of each party's own column)."""
    owners = {p.name: p for p in parties}
    for owner, name, binning, _ in coding.selected:
        table = owners.get(owner, holder)
        yield owner, name, binning, table.columns[name][rows_of(table.ids, ids)]


def vertical_test_bins(coding: VerticalCoding, holder, parties, test_ids) -> np.ndarray:
    """The held-out customers' bin of every selected characteristic (at scoring time
    each party looks up its own columns' bins)."""
    out = [b.assign(v) for _, _, b, v in selected_columns(coding, holder, parties, test_ids)]
    return np.column_stack(out) if out else np.zeros((len(test_ids), 0), dtype=np.int64)


def vertical_pooled(
    coding: VerticalCoding, holder, parties, train_ids, params: BinningParams
) -> tuple[dict[str, float], bool]:
    """The centralised workflow's binning: every selected characteristic binned on the
    pooled training rows (labels joined to the party's column) and its IV, and whether
    those bins are the federated ones — the check that the encrypted per-bin sums and
    the bank's grouping by index gave exactly the pooled result."""
    y = holder.y[rows_of(holder.ids, train_ids)]
    agree, out = True, {}
    for owner, name, binning, values in selected_columns(coding, holder, parties, train_ids):
        pooled = params.table_of(params.fit(name, values, y), values, y)
        agree = agree and same_bins(pooled.binning, binning)
        out[f"{owner}:{name}"] = pooled.iv
    return out, agree


def scorecard_sections(
    s, card: WoeScorecard, selected, columns, test_bins, y_test, pooled_iv, names=None
) -> dict:
    """summary.json's binning, selection and scorecard sections."""
    real = {(o, r.name): n for o, n, _, r in selected}
    real.update(names or {})
    chars = [
        {
            "owner": r.owner,
            "characteristic": real.get((r.owner, r.name), r.name),
            "kind": r.kind,
            "bins": len(r.woe),
            "iv": r.iv,
            "stability_index": r.psi,
            "selected": r.selected,
            "reason": r.reason,
        }
        for r in columns
    ]
    fed_iv = {f"{o}:{n}": r.iv for o, n, _, r in selected}
    points = card.points(test_bins)
    logit = card.logit(test_bins)
    y_test = np.asarray(y_test)
    rho = float(spearmanr(points, -logit).statistic) if len(points) > 2 else math.nan
    return {
        "binning": {
            "method": s.binning.method,
            "max_bins": s.binning.max_bins,
            "characteristics": chars,
            "pooled_iv_max_abs_diff": max(
                (abs(fed_iv[k] - pooled_iv[k]) for k in fed_iv), default=0.0
            ),
        },
        "selection": {
            "min_iv": s.selection.min_iv,
            "max_psi": s.selection.max_psi,
            "max_features": s.selection.max_features,
            "selected": list(fed_iv),
        },
        "scorecard": {
            "base_points": round(card.base_points, 3),
            "characteristics": len(card.characteristics),
            "bins": sum(len(c.woe) for c in card.characteristics),
            "integer_points": {
                # higher points = lower risk: the AUC of the negated score
                **{
                    k: v
                    for k, v in score_metrics(y_test, _pd_of(points, card)).items()
                    if k in ("auc", "ks", "gini")
                },
                "spearman_with_model": rho,
                "min": int(points.min()) if len(points) else None,
                "max": int(points.max()) if len(points) else None,
            },
        },
    }


def _pd_of(points: np.ndarray, card: WoeScorecard) -> np.ndarray:
    """The default probability integer points stand for: points = offset + factor · ln(odds
    good:bad), so PD = 1 / (1 + exp((points − offset) / factor))."""
    factor, offset = scaling(card.base_score, card.base_odds, card.pdo)
    return 1.0 / (1.0 + np.exp((points - offset) / factor))


__all__ = [
    "binning_params",
    "check_selection",
    "run_horizontal_scorecard",
    "run_scorecard",
    "run_vertical_scorecard",
    "training_scenario",
    "vertical_card",
    "vertical_coding",
    "vertical_pooled",
]
