"""Secret-shared vertical logistic regression at FATE's reference shape: seconds per epoch
of every vertical logistic protocol against a plaintext numpy epoch measured in the same
run, and the dealer mode's memory.

Shape (FATE 2.x's LR benchmark): synthetic, 100,000 training customers, the bank 30
columns + the labels, one data party 300 columns, batch 1024, so an epoch is 98 batches
(97 of 1024 rows, one of 672). FATE 2.x publishes 4m54s per epoch for SSHE-LR and 2m16s
for hetero LR, Paillier 1024, 16 cores per party; fedrisk runs 2048-bit keys on 2 cores.
The data are built in memory (:func:`synthetic_arrays`: a latent risk drives the labels
and loads on every column, the columns on scales from 1 to ~3,000, no missing values) and
handed to ``prepare_vertical(s, None, secrets, tables=...)``; 1 % of the customers are
held out (at least one per class), so the prediction pass is small. PSI over the ~101,000
ids and the scaling fits are set-up: they happen before the bank starts the epoch clock
(``SharingBank.run`` and ``_run_bank`` call ``recorder.start_clock()`` after them).

What is measured, row by row:

1. ``privacy.protocol = "secret_sharing"``, ``triples = "dealer"``: two whole epochs
   through the real Flower apps (``federate_shared``, in-process engine), in a child
   process (``python benchmarks/test_bench_sharing.py --dealer OUT.json``) so its memory
   is its own. ``rounds = 2``, ``model.calibration = "none"``: epoch 1's
   ``recorder.rounds[0].wall_s`` is training only (the deal, 98 batches); epoch 2's also
   holds the held-out prediction pass (``SharingBank.evaluate`` runs after the last
   epoch's batches, inside its clock). A Flower mod on the ClientApp (which serves the
   data party and the dealer) stamps every request: each epoch's training time is from
   its ``dealer-pass`` request (the first message of the epoch) to the next pass's, and
   the prediction pass is epoch 2's wall minus its training. The reveal comes after the
   last ``log_round``, outside every epoch. Asserted: every epoch's training at most
   ``EPOCH_BAR_S`` (the bar; ``EPOCH_TARGET_S`` is the target, reported met or not).
   Checked first: the bank's revealed weights equal, to fixed-point error, the same
   Taylor-residual SGD run in float64 on the same rows, quantised as the protocol
   quantises features (z-scores clipped to ±8, 8 fractional bits), in the same batch
   order; the joint test AUC equals that reference's.
2. Memory of (1), the child's own: ``VmHWM`` (``/proc/self/status``) is reset (write
   ``5`` to ``/proc/self/clear_refs``) when epoch 1's ``dealer-pass`` request arrives,
   and read when the prediction pass's arrives: the peak resident set of the whole
   simulation (bank, data party and dealer in one process, the data of all three, Flower's
   protobuf copies of every message) during the two training epochs. Also shown: the
   resident set when the epoch starts, the peak through the end of the run, and
   ``ru_maxrss`` of the whole child (data generation and PSI included). Asserted: the
   training peak at most ``MEMORY_LIMIT``.
3. ``triples = "paillier"`` (no dealer; the bank and the party compute products under
   each other's 2048-bit Paillier keys): too slow for a whole epoch. The real protocol
   runs on ``SS_PAILLIER_BATCHES`` batches of 1024 rows (the same 30 + 300 columns, same
   generator), ``rounds = 1``; the mod stamps each batch's first request (``fwd``), and
   a batch is from its ``fwd`` to the next one's: one whole cycle, both parties' work,
   the bank's products for the next batch (they precede its request) included. Batch 1
   carries one-off costs (the parties' key tables); the last batch's cycle ends at the
   prediction pass's first request, before which the bank makes its products for ~40
   held-out rows instead of 1024, so it is short. The epoch estimate is batch 1 + 97 ×
   the median of the batches between (the 672-row last batch of an epoch counted as a
   full one). Both ``privacy.obfuscation`` values (the parties' encryptions of their own
   shares; the masks are textbook whatever it says).
4. ``privacy.protocol = "paillier"`` (hetero LR, the bank holds the key): the same way,
   on ``HETERO_BATCHES`` batches from ``scores`` request to ``scores`` request. Batch 1's
   residual encryption has no obfuscators ready; the last batch has no next batch whose
   obfuscators the bank prepares meanwhile (every other batch of an epoch shares the cores
   with that), so the median again takes the batches between. DJN and textbook.
5. Plaintext: the same Taylor-residual mini-batch SGD (d = z/4 + 1/2 − y, step
   lr·(Xᵀd/B + l2·w), intercept undecayed) over the pooled float64 matrix, 100,000 × 331
   (both parties' columns z-scored and the intercept's ones), numpy, in this process (one
   BLAS thread: ``benchmarks/conftest.py``); min over rounds.

Every test writes ``benchmarks/results/sharing.md``; a row not measured in this session
is kept from the file as it was (its date says when it was measured).
"""

from __future__ import annotations

import cProfile
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from machine_load import cpu_seconds, cpu_share
from results_text import publish_at_the_end, seconds_text, write_session

from fedrisk.crypto import workers
from fedrisk.data.scaling import fit_party_scaler
from fedrisk.data.split import split_indices
from fedrisk.data.vertical import PartyTable, VerticalTables
from fedrisk.evaluation.metrics import score_metrics
from fedrisk.flower.engines import quiet_flower
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.sharing import check_ring, federate_shared
from fedrisk.runs.vertical import federate_vertical, prepare_vertical
from fedrisk.scenario import Scenario, scenario_from_dict
from fedrisk.vertical.sharing.protocol import DEALER_NAME, DealerJob

RESULTS = Path(__file__).resolve().parent / "results" / "sharing.md"
COMMAND = "python -m pytest benchmarks/test_bench_sharing.py --benchmark-only"
KEY = "sharing:"

# FATE's reference shape
TRAIN_ROWS = 100_000
BANK_COLUMNS, PARTY_COLUMNS = 30, 300
BATCH = 1024
EPOCH_BATCHES = -(-TRAIN_ROWS // BATCH)  # 98: 97 × 1024 + 1 × 672
TEST_FRACTION = 0.01  # ~1,010 held out: the prediction pass stays small
SEED = 7
KEY_BITS = 2048
LEARNING_RATE, L2 = 0.3, 1e-4
FATE_SSHE_S = 4 * 60 + 54  # FATE 2.x SSHE-LR, per epoch, Paillier 1024, 16 cores per party
FATE_HETERO_S = 2 * 60 + 16  # FATE 2.x hetero LR, the same
EPOCH_BAR_S = 30.0  # dealer mode, training seconds per epoch on 2 cores: asserted
EPOCH_TARGET_S = 15.0  # ... and the target (reported)
MEMORY_LIMIT = 3 * 2**30  # bytes, the dealer-mode epoch's peak resident set
DEALER_EPOCHS = 2
SS_PAILLIER_BATCHES = 5  # ~20 s each at 2048 bits on 2 cores
HETERO_BATCHES = 5  # ~2.5 s (DJN) / ~7 s (textbook) each
PLAINTEXT_ROUNDS = 5
WEIGHT_ATOL = 0.005  # the bank's revealed weights vs float64 SGD (16 fractional bits)
AUC_ATOL = 0.002
MAX_OTHER_SHARE = 0.2  # others' CPU share above which a timing is flagged as disturbed
MASTER = b"fedrisk-bench-sharing".ljust(32, b"\0")


# --------------------------------------------------------------------------------------
# The data: synthetic, built in memory
# --------------------------------------------------------------------------------------


def synthetic_arrays(train_rows: int, seed: int = SEED, test_fraction: float = TEST_FRACTION):
    """(ids, bank X, party X in the bank's row order, y, customers): as many customers as
    make exactly ``train_rows`` training rows after the protocol's stratified split."""
    rng = np.random.default_rng(seed)
    n = round(train_rows / (1 - test_fraction)) + 2
    spare = n // 20 + 100
    latent = rng.standard_normal(n + spare)
    y = (rng.random(n + spare) < 1.0 / (1.0 + np.exp(-(1.2 * latent - 1.5)))).astype(np.int64)
    for _ in range(20):  # split sizes depend on the class counts only
        train, _ = split_indices(y[:n], test_fraction, 0)
        if len(train) == train_rows:
            break
        n += train_rows - len(train)
    else:
        raise RuntimeError(f"no customer count gives {train_rows} training rows")
    latent, y = latent[:n], y[:n]

    def block(k: int) -> np.ndarray:
        x = rng.standard_normal((n, k))
        x += np.multiply.outer(latent, rng.uniform(-0.3, 0.3, k))
        x *= np.exp(rng.uniform(0.0, 8.0, k))
        x += rng.uniform(-1.0, 1.0, k) * x.std(axis=0)
        return x

    ids = np.char.add("C", np.char.zfill(np.arange(n).astype(str), 7))
    return ids, block(BANK_COLUMNS), block(PARTY_COLUMNS), y, n


def synthetic_tables(train_rows: int) -> tuple[VerticalTables, int]:
    """The two parties' tables (the party's rows in an order of its own)."""
    ids, Xb, Xp, y, n = synthetic_arrays(train_rows)
    order = np.random.default_rng([SEED, 1]).permutation(n)
    bank = PartyTable("bank", ids, Xb, tuple(f"bank_{j}" for j in range(BANK_COLUMNS)), y)
    del Xb
    party = PartyTable(
        "party", ids[order], Xp[order], tuple(f"party_{j}" for j in range(PARTY_COLUMNS))
    )
    return VerticalTables("bank", (bank, party)), n


def make_scenario(customers: int, rounds: int, privacy: dict) -> Scenario:
    return scenario_from_dict(
        {
            "name": "fate-shape-lr",
            "description": "FATE's LR benchmark shape, synthetic",
            "seed": SEED,
            "rounds": rounds,
            "data": {"source": "synthetic", "customers": customers, "test_fraction": TEST_FRACTION},
            "federation": {
                "kind": "vertical",
                "parties": [{"name": "bank", "label": True}, {"name": "party"}],
            },
            "model": {
                "learning_rate": LEARNING_RATE,
                "batch_size": BATCH,
                "l2": L2,
                "calibration": "none",
            },
            "privacy": {"key_bits": KEY_BITS, **privacy},
        },
        "<benchmark>",
    )


# --------------------------------------------------------------------------------------
# Plaintext: the same SGD in float64
# --------------------------------------------------------------------------------------


def plaintext_epoch(X, y, w, order, decay_mask) -> np.ndarray:
    """One epoch of the protocols' Taylor-residual SGD: d = z/4 + 1/2 − y per row,
    w ← w − lr·(Xᵀd/B + l2·w) with the intercept (decay_mask 0) undecayed."""
    for start in range(0, len(order), BATCH):
        rows = order[start : start + BATCH]
        Xb = X[rows]
        d = Xb @ w * 0.25 + 0.5 - y[rows]
        w = w - LEARNING_RATE * (Xb.T @ d / len(rows) + L2 * w * decay_mask)
    return w


def epoch_order(epoch: int, rows: int) -> np.ndarray:
    """The bank's batch order of an epoch (``SharingBank.run``, ``_run_bank``)."""
    return np.random.default_rng([SEED, 8, epoch]).permutation(rows)


def quantised(X: np.ndarray) -> np.ndarray:
    """What the protocol computes with: z-scores clipped to ±8, 8 fractional bits."""
    return np.rint(np.clip(X, -8.0, 8.0) * 256.0) / 256.0


def reference_model(tables: VerticalTables, outcome, s: Scenario, epochs: int, quantise: bool):
    """The same SGD in float64 on the run's own rows (the bank's aligned training rows in
    its order, the party's scaled as it scales them), ``quantise``: with the features
    the protocol computes with. Returns (weights: the bank's 30, the intercept, the
    party's 300; the held-out rows' matrix)."""
    bank_t, party_t = tables.parties
    pos = {str(i): k for k, i in enumerate(party_t.ids)}
    p_train = np.array([pos[str(i)] for i in outcome.train_ids])
    p_test = np.array([pos[str(i)] for i in outcome.test_ids])
    scaler = fit_party_scaler(party_t.X[p_train], s.data.scaling)
    q = quantised if quantise else np.asarray
    X = q(
        np.hstack(
            [
                outcome.bank_train_X,
                np.ones((len(p_train), 1)),
                scaler.transform(party_t.X[p_train]),
            ]
        )
    )
    X_test = q(
        np.hstack(
            [outcome.bank_test_X, np.ones((len(p_test), 1)), scaler.transform(party_t.X[p_test])]
        )
    )
    bpos = {str(i): k for k, i in enumerate(bank_t.ids)}
    y = bank_t.y[[bpos[str(i)] for i in outcome.train_ids]].astype(np.float64)
    mask = np.ones(X.shape[1])
    mask[BANK_COLUMNS] = 0.0  # the intercept
    w = np.zeros(X.shape[1])
    for e in range(1, epochs + 1):
        w = plaintext_epoch(X, y, w, epoch_order(e, len(y)), mask)
    return w, X_test


# --------------------------------------------------------------------------------------
# Watching the run: a Flower mod, the machine's CPU, the process's memory
# --------------------------------------------------------------------------------------


class Watch:
    """A Flower mod on the ClientApp (the data party and, with a dealer, the dealer):
    for every request, (stage, 1 training / 0 prediction / -1 neither, pass, arrival,
    handling seconds); ``hooks`` run on arrival (before the handler) with the first four."""

    def __init__(self, hooks=()) -> None:
        self.events: list[tuple[str, int, int, float, float]] = []
        self.hooks = list(hooks)

    def __call__(self, msg, context, call_next):
        cfg = msg.content.config_records.get("config") or {}
        stage = str(cfg.get("stage", ""))
        if "train" in cfg:
            train = int(cfg["train"])
        elif stage in ("scores", "gradient"):  # hetero LR: training names its rows
            train = int("rows" in cfg)
        else:  # set-up, reveal: neither training nor prediction
            train = -1
        pass_id = int(cfg["pass"]) if "pass" in cfg else -1
        arrival = time.perf_counter()
        for hook in self.hooks:
            hook(stage, train, pass_id, arrival)
        reply = call_next(msg, context)
        self.events.append((stage, train, pass_id, arrival, time.perf_counter() - arrival))
        return reply

    def arrivals(self, stage: str, train: int) -> list[float]:
        return [e[3] for e in self.events if e[0] == stage and e[1] == train]

    def handling(self, stage: str, train: int = 1, pass_id: int | None = None) -> float:
        return sum(
            e[4]
            for e in self.events
            if e[0] == stage and e[1] == train and (pass_id is None or e[2] == pass_id)
        )

    def count(self, train: int = 1) -> int:
        return sum(1 for e in self.events if e[1] == train)


def vm_status(field: str) -> int:
    """A ``/proc/self/status`` size (VmRSS, VmHWM) in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_peak() -> bool:
    """Reset VmHWM to the current resident set (Linux ≥ 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------------------
# 1-2. Dealer mode: two whole epochs in a child process
# --------------------------------------------------------------------------------------


def dealer_epochs(profile: Path | None = None) -> dict:
    """Runs in the child: the data, the run, the checks' inputs; returns the figures."""
    quiet_flower()
    started = time.perf_counter()
    tables, customers = synthetic_tables(TRAIN_ROWS)
    generated_s = time.perf_counter() - started
    s = make_scenario(customers, DEALER_EPOCHS, {"protocol": "secret_sharing", "triples": "dealer"})
    secrets = RunSecrets(MASTER)
    setup = prepare_vertical(s, None, secrets, tables=tables)
    check_ring(s, setup)
    marks: dict = {}
    profiler = cProfile.Profile() if profile else None

    def on_arrival(stage, train, pass_id, arrival):
        if stage != "dealer-pass":
            return
        if train == 1 and pass_id == 1:  # epoch 1 starts
            marks["rss_start"] = vm_status("VmRSS")
            marks["peak_reset"] = reset_peak()
            marks["cpu0"] = cpu_seconds(children=True)
            if profiler is not None:  # the requests run in this (the bank's) thread
                profiler.enable()
        elif train == 0:  # training is over: the prediction pass's deal
            marks["hwm_train"] = vm_status("VmHWM")
            marks["cpu1"] = cpu_seconds(children=True)
            if profiler is not None:
                profiler.disable()

    watch = Watch([on_arrival])
    fed_started = time.perf_counter()
    recorder, outcome, fed_wall = federate_shared(
        s, setup, DealerJob(secrets.of(DEALER_NAME)), show_progress=False, client_mods=[watch]
    )
    fed_s = time.perf_counter() - fed_started
    hwm_end = vm_status("VmHWM")
    if profiler is not None:
        profiler.dump_stats(str(profile))
    deals = {(e[2], e[1]): e[3] for e in watch.events if e[0] == "dealer-pass"}
    starts = [deals[(p, 1)] for p in range(1, DEALER_EPOCHS + 1)] + [deals[(DEALER_EPOCHS + 1, 0)]]
    training = [b - a for a, b in zip(starts, starts[1:])]
    walls = [r.wall_s for r in recorder.rounds]
    epochs = []
    for e in range(1, DEALER_EPOCHS + 1):
        epochs.append(
            {
                "training_s": training[e - 1],
                "wall_s": walls[e - 1],
                "party_fwd_s": watch.handling("fwd", 1, e),
                "party_bwd_s": watch.handling("bwd", 1, e),
                "dealer_s": watch.handling("dealer-pass", 1, e),
                "bytes": recorder.rounds[e - 1].bytes,
                "requests": sum(1 for ev in watch.events if ev[1] == 1 and ev[2] == e),
            }
        )

    bank_w = np.asarray(recorder.final_params, dtype=np.float64)
    w, X_test = reference_model(tables, outcome, s, DEALER_EPOCHS, quantise=True)
    reference_auc = score_metrics(outcome.test_y, 1 / (1 + np.exp(-(X_test @ w))))["auc"]
    return {
        "customers": customers,
        "train_rows": len(outcome.train_ids),
        "test_rows": len(outcome.test_ids),
        "generated_s": generated_s,
        "federate_s": fed_s,
        "fed_wall_s": fed_wall,
        "setup_s": starts[0] - fed_started,  # identify, PSI, scaling fits, keys, seeds
        "epochs": epochs,
        "prediction_s": walls[-1] - training[-1],
        "prediction_requests": watch.count(0),
        "rss_start": marks["rss_start"],
        "peak_reset": marks["peak_reset"],
        "hwm_train": marks["hwm_train"],
        "hwm_end": hwm_end,
        "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "cpu": cpu_share(marks["cpu0"], marks["cpu1"], sum(training)),
        "weights_max_diff": float(np.max(np.abs(bank_w - w[: BANK_COLUMNS + 1]))),
        "weights_max_abs": float(np.max(np.abs(w[: BANK_COLUMNS + 1]))),
        "party_weights_max_abs": float(np.max(np.abs(w[BANK_COLUMNS + 1 :]))),
        "auc": score_metrics(outcome.test_y, outcome.test_scores)["auc"],
        "reference_auc": reference_auc,
        "profile": str(profile) if profile else None,
    }


def child_main(argv: list[str]) -> None:
    """``python benchmarks/test_bench_sharing.py --dealer OUT.json [--profile OUT.prof]``:
    the dealer-mode epochs in a process of their own (``--profile``: a cProfile of the
    training epochs, the bank's thread, where every request is handled)."""
    import argparse

    parser = argparse.ArgumentParser(description=child_main.__doc__)
    parser.add_argument("--dealer", type=Path, required=True)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args(argv)
    args.dealer.write_text(json.dumps(dealer_epochs(args.profile), indent=1))


# --------------------------------------------------------------------------------------
# 3-4. The Paillier modes: a few real batches, scaled to an epoch
# --------------------------------------------------------------------------------------

SAMPLED = {
    # name: (privacy section, the batch's first request, batches)
    "ss-paillier": (
        {"protocol": "secret_sharing", "triples": "paillier"},
        "fwd",
        SS_PAILLIER_BATCHES,
    ),
    "hetero": ({"protocol": "paillier"}, "scores", HETERO_BATCHES),
}
STEADY = slice(1, -1)  # batch 1 and the last are not an epoch's (module docstring, 3-4)


def sampled_run(mode: str, obfuscation: str) -> dict:
    """The real protocol on a few batches of 1024 rows, in this process; per batch from
    the mod's stamps, scaled to an epoch of ``EPOCH_BATCHES``."""
    privacy, first, batches = SAMPLED[mode]
    quiet_flower()
    tables, customers = synthetic_tables(batches * BATCH)
    s = make_scenario(customers, 1, {**privacy, "obfuscation": obfuscation})
    setup = prepare_vertical(s, None, RunSecrets(MASTER), tables=tables)
    watch = Watch()
    cpu0 = cpu_seconds(workers.process_ids(), children=True)
    started = time.perf_counter()
    if mode == "ss-paillier":
        check_ring(s, setup)
        recorder, outcome, _ = federate_shared(
            s, setup, None, show_progress=False, client_mods=[watch]
        )
    else:
        recorder, outcome, _, _ = federate_vertical(
            s, setup, show_progress=False, verbose=False, client_mods=[watch]
        )
    wall = time.perf_counter() - started
    cpu = cpu_share(cpu0, cpu_seconds(workers.process_ids(), children=True), wall)
    starts = watch.arrivals(first, 1)
    assert len(starts) == batches, (mode, len(starts))
    edges = [*starts, watch.arrivals(first, 0)[0]]  # the last batch ends at the prediction
    intervals = [b - a for a, b in zip(edges, edges[1:])]
    party = [
        sum(e[4] for e in watch.events if e[1] == 1 and a <= e[3] < b)
        for a, b in zip(edges, edges[1:])
    ]
    steady = intervals[STEADY]
    per_batch = statistics.median(steady)
    # the transcript: every batch is 2 requests and 2 replies, the first 4·batches
    # entries of round 1 (the prediction and the reveal follow)
    entries = [e for e in recorder.transcript.entries if e.round == 1]
    batch_bytes = sum(e.bytes for e in entries[: 4 * batches]) / batches
    bank_w = np.asarray(recorder.final_params, dtype=np.float64)
    w, _ = reference_model(tables, outcome, s, 1, quantise=mode == "ss-paillier")
    return {
        "mode": mode,
        "obfuscation": obfuscation,
        "batches": batches,
        "intervals": intervals,
        "party": party,
        "steady": steady,
        "steady_batches": list(range(1, batches + 1))[STEADY],
        "per_batch_s": per_batch,
        "epoch_s": intervals[0] + (EPOCH_BATCHES - 1) * per_batch,
        "batch_bytes": batch_bytes,
        "wall_s": wall,
        "cpu": cpu,
        "weights_max_diff": float(np.max(np.abs(bank_w - w[: BANK_COLUMNS + 1]))),
        "weights_max_abs": float(np.max(np.abs(w[: BANK_COLUMNS + 1]))),
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
    }


# --------------------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------------------


def machine() -> str:
    return f"{os.cpu_count()} CPUs, Python {platform.python_version()}"


def measured_min(benchmark, fn, rounds: int) -> float:
    """pytest-benchmark's minimum, or (benchmarking disabled) perf_counter's."""
    meta = getattr(benchmark, "stats", None)
    if getattr(benchmark, "enabled", False) and meta:
        return meta.stats.min
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


@pytest.fixture(scope="module")
def pooled() -> tuple[np.ndarray, np.ndarray]:
    """The pooled float64 matrix of FATE's shape, 100,000 × (30 + 1 + 300), z-scored."""
    _ids, Xb, Xp, y, _n = synthetic_arrays(TRAIN_ROWS)
    X = np.hstack([Xb[:TRAIN_ROWS], np.ones((TRAIN_ROWS, 1)), Xp[:TRAIN_ROWS]])
    del Xb, Xp
    scale = X.std(axis=0)
    scale[BANK_COLUMNS] = 1.0
    mean = X.mean(axis=0)
    mean[BANK_COLUMNS] = 0.0
    X -= mean
    X /= scale
    return np.ascontiguousarray(X), y[:TRAIN_ROWS].astype(np.float64)


@pytest.mark.benchmark(group="sharing: FATE's shape, one epoch")
def test_plaintext_numpy_epoch(benchmark, bench_store, pooled):
    X, y = pooled
    assert X.shape == (TRAIN_ROWS, BANK_COLUMNS + 1 + PARTY_COLUMNS)
    mask = np.ones(X.shape[1])
    mask[BANK_COLUMNS] = 0.0
    order = epoch_order(1, TRAIN_ROWS)
    w0 = np.zeros(X.shape[1])

    def run():
        return plaintext_epoch(X, y, w0, order, mask)

    w = benchmark.pedantic(run, rounds=PLAINTEXT_ROUNDS, iterations=1, warmup_rounds=1)
    auc = score_metrics(y, 1 / (1 + np.exp(-(X @ w))))["auc"]
    assert auc > 0.65, f"one plaintext epoch reached a training AUC of {auc:.3f} only"
    from threadpoolctl import threadpool_info

    record(
        bench_store,
        "plaintext",
        {
            "epoch_s": measured_min(benchmark, run, PLAINTEXT_ROUNDS),
            "rounds": PLAINTEXT_ROUNDS,
            "train_auc": auc,
            "blas_threads": max((i["num_threads"] for i in threadpool_info()), default=1),
            "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
        },
    )


@pytest.mark.benchmark(group="sharing: FATE's shape, one epoch")
def test_dealer_epoch(benchmark, bench_store, tmp_path):
    out = tmp_path / "dealer.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--dealer", str(out)]
    profile = os.environ.get("FEDRISK_BENCH_PROFILE")  # a path: cProfile the epochs too
    if profile:
        command += ["--profile", profile]
    env = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}

    def run():
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30 * 60)

    proc = benchmark.pedantic(run, rounds=1, iterations=1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    r.update(when=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), machine=machine())
    record(bench_store, "dealer", r)
    # a benchmark of wrong code is worthless: the model is the plaintext one
    assert r["train_rows"] == TRAIN_ROWS
    assert all(e["requests"] == 2 * EPOCH_BATCHES + 1 for e in r["epochs"])
    assert r["weights_max_diff"] <= WEIGHT_ATOL, r["weights_max_diff"]
    assert abs(r["auc"] - r["reference_auc"]) <= AUC_ATOL, (r["auc"], r["reference_auc"])
    # without /proc/self/clear_refs the peak is the whole child's: a stricter check
    assert r["hwm_train"] <= MEMORY_LIMIT, f"peak {r['hwm_train'] / 2**30:.2f} GiB"
    worst = max(e["training_s"] for e in r["epochs"])
    assert worst <= EPOCH_BAR_S, f"an epoch took {worst:.1f} s (bar {EPOCH_BAR_S:g} s)"


@pytest.mark.benchmark(group="sharing: FATE's shape, sampled batches scaled to an epoch")
@pytest.mark.parametrize("obfuscation", ("full", "djn"))
def test_paillier_triples_sampled(benchmark, bench_store, obfuscation):
    _sampled(benchmark, bench_store, "ss-paillier", obfuscation)


@pytest.mark.benchmark(group="sharing: FATE's shape, sampled batches scaled to an epoch")
@pytest.mark.parametrize("obfuscation", ("djn", "full"))
def test_hetero_lr_sampled(benchmark, bench_store, obfuscation):
    _sampled(benchmark, bench_store, "hetero", obfuscation)


def _sampled(benchmark, bench_store, protocol: str, obfuscation: str) -> None:
    """One protocol's sampled batches, timed once, recorded and checked against the
    float64 reference's weights."""
    got = {}

    def run():
        got["r"] = sampled_run(protocol, obfuscation)

    benchmark.pedantic(run, rounds=1, iterations=1)
    r = got["r"]
    record(bench_store, f"{protocol}:{obfuscation}", r)
    assert r["weights_max_diff"] <= WEIGHT_ATOL, r["weights_max_diff"]


# --------------------------------------------------------------------------------------
# The results file
# --------------------------------------------------------------------------------------


def record(bench_store, name: str, result: dict) -> None:
    bench_store.results[KEY + name] = result
    write_results(bench_store)


def _gib(size: float) -> str:
    return f"{size / 2**30:.2f} GiB"


def _x(ratio: float) -> str:
    return f"{ratio:,.0f}x" if ratio >= 100 else f"{ratio:.1f}x" if ratio >= 10 else f"{ratio:.2f}x"


def _vs_fate(ratio: float) -> str:
    """fedrisk's seconds over FATE's, in words."""
    return f"{1 / ratio:,.0f}x faster" if ratio < 1 else f"{ratio:.1f}x slower"


def _cpu(cpu: dict | None) -> str:
    if not cpu:
        return "–"
    flag = " (disturbed)" if cpu["share"] > MAX_OTHER_SHARE else ""
    return f"{cpu['share']:.0%}{flag}"


def write_results(bench_store, publish: bool = False) -> None:
    """The file: this session's rows over the stored ones; ``publish``: also shown in the
    session's terminal summary (once, when the module's tests are done)."""
    write_session(
        RESULTS,
        "Secret-shared vertical LR at FATE's reference shape: seconds per epoch",
        COMMAND,
        KEY,
        render,
        bench_store,
        publish,
    )


_publish_at_the_end = publish_at_the_end(KEY, write_results)


def render(data: dict) -> str:
    plain = data.get("plaintext")
    plain_s = plain["epoch_s"] if plain else None

    def vs_plain(seconds: float) -> str:
        return _x(seconds / plain_s) if plain_s else "–"

    rows = []
    d = data.get("dealer")
    if d:
        worst = max(e["training_s"] for e in d["epochs"])
        rows.append(
            (
                '**secret sharing, dealer** (`triples = "dealer"`)',
                f"whole epochs, real apps in-process, training only (the slower of "
                f"{len(d['epochs'])}: "
                + " / ".join(seconds_text(e["training_s"]) for e in d["epochs"])
                + " s)",
                f"**{seconds_text(worst)}**",
                vs_plain(worst),
                f"SSHE-LR {FATE_SSHE_S}",
                _vs_fate(worst / FATE_SSHE_S),
                d["when"],
            )
        )
    for mode, label, fate_name, fate_s in (
        ("ss-paillier", 'secret sharing, Paillier products (`triples = "paillier"`)', "SSHE-LR", FATE_SSHE_S),
        ("hetero", 'hetero LR (`protocol = "paillier"`)', "hetero LR", FATE_HETERO_S),
    ):  # fmt: skip
        for ob in ("djn", "full"):
            r = data.get(f"{mode}:{ob}")
            if not r:
                continue
            b = r["steady_batches"]
            rows.append(
                (
                    f"{label}, obfuscation `{ob}`",
                    f"extrapolated from {r['batches']} real batches: batch 1 "
                    f"({seconds_text(r['intervals'][0])} s) + {EPOCH_BATCHES - 1} × the median of "
                    f"batches {b[0]}–{b[-1]} "
                    f"({seconds_text(r['per_batch_s'])} s)",
                    seconds_text(r["epoch_s"]),
                    vs_plain(r["epoch_s"]),
                    f"{fate_name} {fate_s}",
                    _vs_fate(r["epoch_s"] / fate_s),
                    r["when"],
                )
            )
    if plain:
        rows.append(
            (
                "plaintext numpy (the limit)",
                f"the same SGD on the pooled float64 matrix, {TRAIN_ROWS:,} × "
                f"{BANK_COLUMNS + 1 + PARTY_COLUMNS}, {plain['blas_threads']} BLAS "
                f"thread(s); min of {plain['rounds']} epochs",
                seconds_text(plain_s),
                "1x",
                "–",
                "–",
                plain["when"],
            )
        )
    lines = [
        f"FATE 2.x's LR benchmark shape: synthetic, {TRAIN_ROWS:,} training customers "
        f"(1 % more held out), the bank {BANK_COLUMNS} columns + labels, one data party "
        f"{PARTY_COLUMNS} columns, batch {BATCH} ({EPOCH_BATCHES} batches per epoch), "
        f"Paillier {KEY_BITS}-bit where a mode uses it, in-process engine, "
        f"{(d or plain or {}).get('machine', machine())}. FATE's figures: Paillier 1024, "
        "16 cores per party.",
        "",
        "| protocol | how it was measured | seconds per epoch | vs plaintext numpy "
        "| FATE 2.x, s per epoch | fedrisk vs FATE | measured |",
        "|---|---|---:|---:|---:|---:|---|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    if d:
        lines += ["", *dealer_section(d)]
    sampled = [data[f"{m}:{ob}"] for m in SAMPLED for ob in ("djn", "full") if f"{m}:{ob}" in data]
    if sampled:
        lines += ["", *sampled_section(sampled)]
    return "\n".join(lines)


def dealer_section(d: dict) -> list[str]:
    e1 = d["epochs"][0]
    worst = max(e["training_s"] for e in d["epochs"])
    target = (
        f"met ({EPOCH_TARGET_S / worst:.1f}x below)"
        if worst <= EPOCH_TARGET_S
        else f"missed by {worst - EPOCH_TARGET_S:.1f} s"
    )

    def split(e: dict) -> str:
        rest = e["training_s"] - e["party_fwd_s"] - e["party_bwd_s"] - e["dealer_s"]
        return (
            f"data party: scores {seconds_text(e['party_fwd_s'])} + gradients {seconds_text(e['party_bwd_s'])}; "
            f"dealer's corrections {seconds_text(e['dealer_s'])}; the rest (the bank's own work, "
            f"Flower's protobuf round trip of every message, the transcript) {seconds_text(rest)}"
        )

    rows = [
        (
            f"training, seconds per epoch (epoch {', '.join(str(i + 1) for i in range(len(d['epochs'])))})",
            " / ".join(f"**{seconds_text(e['training_s'])}**" for e in d["epochs"]),
        ),
        (
            f"bar ≤ {EPOCH_BAR_S:g} s (asserted) / target ≤ {EPOCH_TARGET_S:g} s",
            f"met ({EPOCH_BAR_S / worst:.0f}x below) / {target}",
        ),
        ("rounds.csv `wall_s`, epoch 1 (training only)", seconds_text(e1["wall_s"])),
        (
            f"rounds.csv `wall_s`, epoch {len(d['epochs'])} (training + the prediction pass)",
            seconds_text(d["epochs"][-1]["wall_s"]),
        ),
        (
            f"prediction pass on the {d['test_rows']:,} held-out customers (its deal + "
            f"{d['prediction_requests'] - 1} forward request"
            f"{'s' if d['prediction_requests'] > 2 else ''}; epoch {len(d['epochs'])}'s "
            "wall − its training)",
            seconds_text(d["prediction_s"]),
        ),
        ("per batch (epoch 1's training / 98)", f"{e1['training_s'] / EPOCH_BATCHES * 1e3:.1f} ms"),
        ("where epoch 1 goes, seconds", split(e1)),
        (
            "requests to the party and the dealer per epoch / bytes per epoch, both directions",
            f"{e1['requests']} / {e1['bytes'] / 1e6:,.0f} MB ({e1['bytes'] / EPOCH_BATCHES / 1e6:.2f} "
            "MB per batch)",
        ),
        (
            "resident set when epoch 1 starts (all three parties' data and state)",
            _gib(d["rss_start"]),
        ),
        (
            f"**peak resident set during the {len(d['epochs'])} training epochs** (asserted ≤ "
            f"{_gib(MEMORY_LIMIT)})"
            + ("" if d["peak_reset"] else " (VmHWM could not be reset: the whole child's)"),
            f"**{_gib(d['hwm_train'])}**",
        ),
        ("peak from epoch 1 to the end of the run (prediction, reveal)", _gib(d["hwm_end"])),
        (
            "peak of the whole child process (data generation, PSI included: `ru_maxrss`)",
            _gib(d["maxrss"]),
        ),
        (
            f"set-up before epoch 1: identify, PSI over {d['customers']:,} ids, the scaling "
            "fits, keys, seeds (not in any epoch)",
            f"{seconds_text(d['setup_s'])} s",
        ),
        (
            "check: the bank's revealed weights vs float64 SGD on the quantised features, "
            "largest absolute difference / largest weight",
            f"{d['weights_max_diff']:.2e} / {d['weights_max_abs']:.3f}",
        ),
        (
            "check: test AUC, joint model / float64 reference",
            f"{d['auc']:.4f} / {d['reference_auc']:.4f}",
        ),
        ("other processes' share of the CPUs during the training epochs", _cpu(d["cpu"])),
    ]
    return [
        f"**Dealer mode** ({d['when']}): {len(d['epochs'])} epochs through `federate_shared` in a "
        'child process, `model.calibration = "none"`, `reveal = "own"`, 16 fractional bits.',
        "",
        "| measure | value |",
        "|---|---:|",
        *(f"| {a} | {b} |" for a, b in rows),
        "",
        "- training: from the epoch's `dealer-pass` request (its first message) to the next "
        "pass's (the Flower mod's stamps); epoch 1's equals its rounds.csv `wall_s`. The "
        "set-up (PSI, fits, keys, seeds) is before `recorder.start_clock()`.",
        "- memory: `VmHWM` of the child, reset through `/proc/self/clear_refs` when epoch 1's "
        "first request arrives and read when the prediction pass's arrives: the bank, the "
        "data party and the dealer are one process here (each party alone needs less). An "
        "epoch allocates per-batch arrays of a few MB, reused from what the set-up freed, so "
        "the peak is the resident set the epoch starts with (a thread sampling `VmRSS` every "
        "2 ms during the epochs, tried once, saw 0.56-0.64 GiB).",
    ]


def sampled_section(results: list[dict]) -> list[str]:
    rows = []
    for r in results:
        rows.append(
            "| "
            + " | ".join(
                (
                    "secret sharing, Paillier products"
                    if r["mode"] == "ss-paillier"
                    else "hetero LR",
                    f"`{r['obfuscation']}`",
                    str(r["batches"]),
                    " / ".join(seconds_text(t) for t in r["intervals"]),
                    " / ".join(seconds_text(t) for t in r["party"]),
                    f"**{seconds_text(r['per_batch_s'])}**",
                    f"**{seconds_text(r['epoch_s'])}**",
                    f"{r['batch_bytes'] / 1e6:.2f}",
                    f"{r['weights_max_diff']:.1e}",
                    _cpu(r["cpu"]),
                    r["when"],
                )
            )
            + " |"
        )
    return [
        f"**The Paillier modes, sampled** (2048-bit keys): the real protocol on a few batches "
        f"of {BATCH} rows at {BANK_COLUMNS} + {PARTY_COLUMNS} columns, scaled to "
        f"{EPOCH_BATCHES} batches.",
        "",
        "| protocol | obfuscation | batches run | seconds per batch, each | of which the "
        "data party's handling | per batch (median of the steady batches) | epoch estimate, s "
        "| MB per batch | weights vs float64 | others' CPU share | measured |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        *rows,
        "",
        "- a batch: from its first request arriving at the data party (`fwd` / `scores`) to "
        "the next batch's (the last: to the prediction pass's first request): both parties' "
        "work and the messages of one whole cycle. Epoch estimate = batch 1 + "
        f"{EPOCH_BATCHES - 1} × the median of the batches between the first and the last; "
        f"the last batch of a real epoch has {TRAIN_ROWS - (EPOCH_BATCHES - 1) * BATCH} rows "
        "and is counted as a full one.",
        "- why not batch 1 and the last: batch 1 pays one-off costs (secret sharing: the "
        "parties' key tables; hetero LR: no obfuscators prepared yet). The last batch's cycle "
        "ends at the prediction pass's first request: in secret sharing the bank's products "
        "before it cover ~40 held-out rows, not the next batch's 1024; in hetero LR there is "
        "no next batch whose obfuscators the bank prepares meanwhile on the same cores.",
        "- secret sharing's masks are textbook r^n under the peer's key whatever "
        "`obfuscation` says; `obfuscation` sets the parties' encryptions of their own shares.",
        "- weights: max |bank's final weight − float64 SGD on the same rows| after the sampled "
        "batches (secret sharing: the revealed weights, on the quantised features).",
    ]


if __name__ == "__main__":
    child_main(sys.argv[1:])
