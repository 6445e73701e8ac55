"""A secret-shared vertical logistic run (``privacy.protocol = "secret_sharing"``):
prepare (every party's table, as any vertical run; the ring's headroom for the data's
shape) -> federate (the bank's ServerApp, the parties' and the dealer's ClientApps) ->
evaluate and write (the very baselines and files of the Paillier protocol, with this
protocol's privacy record)."""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

from fedrisk.crypto.sharing import (
    SCORE_BOUND_BITS,
    WEIGHT_BOUND_BITS,
    check_headroom,
    max_frac_bits,
    product_bits,
    truncation_failure_bound,
)
from fedrisk.crypto.workers import worker_count
from fedrisk.deployment.vertical_files import bank_digest, party_digest
from fedrisk.errors import InputError
from fedrisk.flower.engines import quiet_flower, run_engine
from fedrisk.flower.recorder import ServerRecorder
from fedrisk.i18n import CLAUSE_SEP, N_
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.outputs import RunOutcome
from fedrisk.runs.progress import run_progress, step_recorder
from fedrisk.runs.rundir import staged_run_dir
from fedrisk.runs.vertical import (
    VerticalSetup,
    complete_vertical,
    keeping_model_parts,
    prepare_vertical,
    seconds_per_encryption,
    seconds_per_mulmod,
)
from fedrisk.scenario import Scenario, resolved_toml
from fedrisk.vertical.protocol import VerticalOutcome
from fedrisk.vertical.sharing.bank import make_sharing_bank_app
from fedrisk.vertical.sharing.party import make_sharing_party_app
from fedrisk.vertical.sharing.protocol import DEALER_NAME, DealerJob, run_tag


def run_secret_shared(
    s: Scenario,
    out: Path,
    *,
    show_progress: bool = True,
    verbose: bool = False,
    client_mods: list | None = None,
    secrets: RunSecrets | None = None,
) -> RunOutcome:
    """A bank and data parties train the joint logistic model on additive shares."""
    started = time.perf_counter()
    quiet_flower(verbose)
    secrets = secrets or RunSecrets()
    setup = prepare_vertical(s, None, secrets)
    check_ring(s, setup)
    warn_if_long(s, setup)
    tag = sharing_run_tag(s, setup)
    dealer = DealerJob(secrets.of(DEALER_NAME), tag) if s.privacy.triples == "dealer" else None
    with staged_run_dir(out) as stage:
        if s.privacy.reveal == "own":  # each party ends knowing its weights: it keeps them
            setup = keeping_model_parts(setup, stage)
        recorder, outcome, fed_wall = federate_shared(
            s, setup, dealer, tag, show_progress=show_progress, client_mods=client_mods
        )
        summary = complete_vertical(
            stage,
            s,
            setup,
            recorder,
            outcome,
            fed_wall,
            started,
            privacy=privacy_record(s, setup, outcome),
        )
    return RunOutcome(out, summary)


def check_ring(s: Scenario, setup: VerticalSetup) -> None:
    """Refuse fractional bits whose products would not fit the ring for this data's
    shape (every party's columns, the batch size), before anything is written."""
    features = sum(t.n_features for t in setup.tables.parties) + 1
    problem = check_headroom(s.privacy.frac_bits, features, s.model.batch_size)
    if problem is not None:
        what, bits = problem
        raise InputError(
            f"{s.source_file}: privacy.frac_bits: {s.privacy.frac_bits} fractional bits "
            f"make the {what} of batches of {s.model.batch_size} rows over {features} "
            f"columns need {bits} bits, the ring Z_2^64 has 63 for a signed value; at most "
            f"{max_frac_bits(features, s.model.batch_size)} is allowed here"
        )


LONG_RUN_SECONDS = 600.0


def estimated_seconds(s: Scenario, setup: VerticalSetup) -> float:
    """A run with ``triples = "paillier"``: per batch, every product's outputs (2 ×
    batch + columns) each cost a textbook encryption of a mask under the other party's
    key and about as much again in the holder's own encryptions and decryptions; plus
    the multi-exponentiations (3 windows of 4 bits per 12-bit feature, bucket overhead
    of 2 × 15 per window and output). The dealer's runs are seconds (not estimated)."""
    if s.privacy.triples != "paillier":
        return 0.0
    public = setup.bank.public_key
    textbook = replace(s, privacy=replace(s.privacy, obfuscation="full"))
    per_mask = seconds_per_encryption(public, textbook)
    per_mul = seconds_per_mulmod(public)
    rows = s.model.batch_size
    columns = sum(t.n_features for t in setup.tables.parties) + 1
    outputs = 2 * rows + columns
    mulmods = 3 * (rows * (columns + 60) + columns * (rows + 30))
    per_batch = 2 * outputs * per_mask + mulmods * per_mul / worker_count()
    train = len(setup.bank.ids) * (1 - s.data.test_fraction)
    return s.rounds * math.ceil(train / rows) * per_batch


def warn_if_long(s: Scenario, setup: VerticalSetup) -> None:
    seconds = estimated_seconds(s, setup)
    if seconds > LONG_RUN_SECONDS:
        warnings.warn(
            f"this secret-sharing run with privacy.triples = 'paillier' will take about "
            f"{seconds / 60:.0f} minutes ({s.privacy.key_bits}-bit keys, {s.rounds} "
            "epochs); privacy.triples = 'dealer' takes seconds, privacy.key_bits = 1024 "
            "is for experiments",
            stacklevel=2,
        )


def sharing_run_tag(s: Scenario, setup: VerticalSetup) -> int:
    """The run's public tag: the resolved scenario and every party's data fingerprint,
    keyed by that party's own secret. The engine is
    left out: where the apps run changes nothing they compute, so every engine gives
    the in-process result bit for bit."""
    same_everywhere = replace(s, federation=replace(s.federation, engine="inprocess"))
    # each fingerprint keyed by its owner's secret: the tag changes with any party's data
    # (labels included) but lets no one confirm a guess of another party's data
    return run_tag(
        resolved_toml(same_everywhere),
        setup.bank.secret.digest("sharing/tag/" + bank_digest(setup.bank)).hex(),
        *(p.secret.digest("sharing/tag/" + party_digest(p)).hex() for p in setup.parties.parties),
    )


def federate_shared(
    s: Scenario,
    setup: VerticalSetup,
    dealer: DealerJob | None,
    tag: int | None = None,
    *,
    show_progress: bool,
    client_mods: list | None = None,
) -> tuple[ServerRecorder, VerticalOutcome, float]:
    """The bank's ServerApp and the parties' (and the dealer's) ClientApps on the
    in-process or the Simulation Engine; ``tag``: the run's (computed when None)."""
    tag = sharing_run_tag(s, setup) if tag is None else tag
    outcome = VerticalOutcome()
    with run_progress(show_progress, s) as (progress, task):
        recorder = step_recorder(progress, task, "epoch")
        nodes = len(setup.parties.parties) + (1 if dealer is not None else 0)
        fed_wall = run_engine(
            s.federation.engine,
            make_sharing_bank_app(setup.bank, recorder, outcome, tag),
            make_sharing_party_app(setup.parties, dealer, client_mods),
            nodes,
        )
    if recorder.error is not None:
        raise recorder.error
    if outcome.largest_score is not None and outcome.largest_score >= 2.0**SCORE_BOUND_BITS:
        warnings.warn(
            f"a joint score reached {outcome.largest_score:.1f}, beyond the ±"
            f"{2**SCORE_BOUND_BITS} the truncation's failure bound assumes; the bound in "
            "summary.json does not hold for this run (lower privacy.frac_bits)",
            stacklevel=2,
        )
    if outcome.test_scores is None or len(recorder.rounds) != s.rounds:
        raise RuntimeError(
            "the secret-sharing run ended before its last epoch (the engine stopped "
            "early; rerun with --verbose for Flower's log)"
        )
    return recorder, outcome, fed_wall


def privacy_record(s: Scenario, setup: VerticalSetup, outcome: VerticalOutcome) -> dict[str, Any]:
    """summary.json's privacy section for this protocol: what was run, the truncation's
    error bound, and who learns what."""
    p = s.privacy
    holder = setup.tables.holder.name
    bound = truncation_record(s, setup, outcome)
    dealer = p.triples == "dealer"
    record: dict[str, Any] = {
        "aggregation": "secret_sharing",
        "protocol": "secret_sharing",
        "triples": p.triples,
        "ring": "Z_2^64",
        "frac_bits": p.frac_bits,
        "feature_frac_bits": 8,
        **bound,
        "reveal": p.reveal,
        "residual": N_("Taylor, as the Paillier protocol: d = z/4 - y', times 4 in the ring"),
        "key_holder": None,
        "key_bits": p.key_bits if not dealer else None,
        "obfuscation": p.obfuscation if not dealer else None,
        "threat_model": N_(
            "semi-honest parties that do not collude (the dealer in particular: it can "
            "expand every party's pads)"
        )
        if dealer
        else N_("semi-honest parties that do not collude"),
        "who_learns_what": who_learns_what(s, holder),
    }
    return record


def truncation_record(
    s: Scenario, setup: VerticalSetup, outcome: VerticalOutcome
) -> dict[str, Any]:
    """The truncation's error bound: every truncation is within one unit of
    2^-frac_bits except with probability 2^(bits+1−64), bits from the stated bounds
    (:func:`fedrisk.crypto.sharing.product_bits`); summed over the run's truncations
    (scores: one per customer and party's weights per pass; gradients: one per column
    per batch, the steps after it being smaller)."""
    parties = len(setup.tables.parties)
    features = sum(t.n_features for t in setup.tables.parties) + 1
    bits = product_bits(s.privacy.frac_bits, features, s.model.batch_size)
    train = len(outcome.train_ids)
    batches = -(-train // s.model.batch_size)
    passes = s.rounds + (0 if s.model.calibration == "none" else 1)
    scored = passes * train + len(outcome.test_ids)
    scores = scored * parties * truncation_failure_bound(bits["scores"])
    gradients = s.rounds * batches * features * truncation_failure_bound(bits["gradient"])
    return {
        "truncation": N_(
            "SecureML local truncation of two-party sharings (Mohassel & Zhang 2017): each "
            "result within one unit (2^-frac_bits) of the exact one, except with the failure "
            "probability bounded below (then off by about 2^(64-frac_bits))"
        ),
        "truncation_bounds": {
            "feature_abs_max": 8.0,
            "weight_abs_max": 2.0**WEIGHT_BOUND_BITS,
            "score_abs_max": 2.0**SCORE_BOUND_BITS,
            "bits": bits,
        },
        "truncation_failure_bound_run": min(1.0, scores + gradients),
        "largest_score_seen_by_bank": outcome.largest_score,
    }


def who_learns_what(s: Scenario, holder: str) -> dict[str, str]:
    """What each side learns, from clauses marked for the catalogs and joined with
    CLAUSE_SEP (the Chinese report translates them one by one)."""
    p = s.privacy
    dealer = p.triples == "dealer"
    bank = [
        N_("the intersection and every party's id count (PSI, as in every vertical run)"),
        N_(
            "during training only uniform shares and masked values (E = X − U, f = y − v) — "
            "no partial score, no gradient, no weight of another party. At the end the joint "
            "scores z of the customers it scores (held-out, and training customers for its "
            "calibration): the model's output"
        ),
        N_(
            "with one data party, z minus its own part is that party's final partial score, "
            "one projection per customer (the Paillier protocol shows one per customer per "
            "epoch)"
        ),
        N_("its own weights (reveal = 'own')")
        if p.reveal == "own"
        else N_(
            "its weights are not sent to it (reveal = 'none'), but from the joint scores of "
            "the training customers it calibrates on and its own columns, least squares "
            "recovers them and, with one data party, that party's final partial scores: "
            "'none' keeps the weights from the data parties only"
        ),
    ]
    parties = [
        N_("the bank's customer count and the intersection (PSI), the held-out split"),
        N_(
            "during training only uniform shares, masked values and sealed blobs — no label, "
            "residual, gradient or score of anyone"
        )
        if dealer
        else N_(
            "during training only uniform shares, masked values and ciphertexts under the "
            "bank's key — no label, residual, gradient or score of anyone"
        ),
        N_(
            "the run's tag (a keyed hash: only whether some party's data changed between two "
            "runs made with one secrets file)"
        ),
        N_("then the bank's share of its own weights (reveal = 'own'): its weights")
        if p.reveal == "own"
        else N_("its weights stay shared (reveal = 'none')"),
    ]
    out = {holder: CLAUSE_SEP.join(bank), "data parties": CLAUSE_SEP.join(parties)}
    if dealer:
        out[DEALER_NAME] = CLAUSE_SEP.join(
            (
                N_("every party's column count and the batch sizes, nothing of the data"),
                N_(
                    "it deals every seed, so it must not collude with any party: with a "
                    "party's messages it could strip the pads (the semi-honest, "
                    "non-colluding helper of SecretFlow's semi2k)"
                ),
            )
        )
    return out


__all__ = [
    "check_ring",
    "estimated_seconds",
    "federate_shared",
    "privacy_record",
    "run_secret_shared",
    "sharing_run_tag",
    "truncation_record",
    "warn_if_long",
]
