"""SecureBoost (``model.kind = "secureboost"``): seconds per tree, split by step, against
the big-integer arithmetic each step cannot avoid.

**Bundled data, 2048-bit keys** (``scenarios/vertical-secureboost.toml``: 24,000 training
customers, the bank's 13 columns, the provider's 10, depth 3, 32 bins, DJN obfuscation).

The real protocol runs first (``run_scenario`` with ``secureboost.trees = 3``, in-process,
a Flower mod on the provider's ClientApp that times each message it handles and keeps what
tree 2's requests held). Tree 2 is the *whole tree*: its ``wall_s`` in ``rounds.csv``. It
is a steady-state tree: its obfuscators were prepared in the background during tree 1, and
it prepares tree 3's while the provider works. From the mod come the inputs the steps are
replayed on: the provider's bin codes of its training rows, its split-id permutation, tree
2's rows and, per level, the node membership and the nodes built (the root, then the
smaller child of each split). The labels come from the training ids the bank sent.

Each step then runs in isolation under a fresh 2048-bit key, the way the protocol runs it
(every core), and so does its limit (one core):

* encryption — bank: ``GHLayout.pack_rows`` + ``VectorCipher.encrypt`` + the ciphertexts
  to bytes (what ``encryption_s`` times in ``bank.py``), one packed (g, h, 1) per tree row,
  with the key holder's ``ObfuscatorPool(public_key, "djn", private_key=...)`` left empty,
  so every obfuscator is computed online (CRT table chains over the worker process and
  this one). Limit: one CRT pair of 31-mulmod lookup chains per row (mod p² and mod q²),
  the key holder's fixed-base DJN encryption (``arithmetic_limits.limit_crt_chain_djn``,
  as in ``test_bench_vertical.py``; the recombination and the ``(1 + mn)·r`` mulmod left
  out).
* histograms — provider: ``encrypted_left_sums`` for each level's built nodes, one call
  per level as the party makes it, columns shared over the worker process and this one.
  Limit: one mulmod mod n² per (built row × provider column), as a chain of ``a * b % n²``
  on one core: SecureBoost's classic count. The code counts columns in groups (a
  multiplication per row into a cell per combination of the group's bins), so it needs
  fewer; the table also sets it against the mulmods it makes, counted by running it on
  stand-ins that count their multiplications. The step uses both cores, its limits one.
* fold — provider: cipher compression of each built node's left sums, in split-id order
  (``fold``, powmod batches on threads). Limit: Horner's rule serially, one powmod by
  2^w and one mulmod per candidate after the first of each ciphertext.
* re-randomise — provider: each folded ciphertext times a fresh Enc(0) of its own
  (``party.rerandomise``, its public-key DJN pool as ``party_cipher`` makes it: fixed-base
  table chains). Limit: per folded ciphertext one 31-mulmod lookup chain mod n² and the 2
  mulmods (``arithmetic_limits.limit_chain_djn``, as the vertical masks' limit).
* decryption — bank: ``decrypt_many`` of each node's folded ciphertexts + ``GHLayout.unpack``
  (threads). Limit: phe's CRT ``raw_decrypt`` per folded ciphertext.

*Rest* = whole tree − the five steps: serialisation and Flower messages, the provider's
bytes-to-integer conversions and bin bookkeeping, the bank's gradients, plaintext
histograms of its own columns, gains, split messages, leaf values and scoring.

Correctness is checked before timing: every built node's decrypted, unpacked left sums
equal ``left_sums`` in plaintext on the same rows, columns and split-id order.

The last test (a benchmark itself) re-times every step and its limit in alternating
(ABBA) rounds and asserts each step within ``MAX_OVER_LIMIT`` of its one-core limit (the
lower of the ratio of minima and the median of the paired ratios).

**FATE's reference shape** (``test_fate_shape_seconds_per_tree[1024|2048]``, deselect with
``-k "not fate"``: they take minutes). Synthetic vertical data: a bank with 30 columns and
the labels, one data party with 300 columns, 100,000 customers in every tree (125,000
generated, 20 % held out: FATE's 100k × (30 + 300) is the training set), depth 3, 32 bins,
DJN obfuscation, two trees, through ``run_scenario``. Per tree: ``rounds.csv`` ``wall_s``
(tree 2 is the steady state: no binning, its obfuscators prepared during tree 1); the
split from ``summary.json``'s cost fields (run totals / trees); the provider's own
handling of each histogram request from the same mod; the set-up (identify, ECDH PSI,
held-out split: the federation's wall time less the trees') apart. Each step's limit
comes from per-operation times measured right after the run, under a fresh key of the
same size (the mulmods over as many ciphertexts as the party holds), times the run's
counts (rows, built rows × 300, folded candidates, decryptions). FATE 2.x reports 114–221
s per tree for this shape at 1024 bits with 16 cores per party; the target here is at
most ``FATE_TARGET_S`` per tree at 1024 bits on 2 cores. Another job on the same cores
doubles the time per tree, so each run records the CPU seconds other processes used
meanwhile (``/proc/stat``), and the target is asserted only for a run they left alone
(``FATE_MAX_OTHER_SHARE``).

Everything is written to ``benchmarks/results/secureboost.md``; a section not measured in
this session is kept from the file as it was.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import platform
import re
import secrets
import statistics
import time
import warnings
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import gmpy2
import numpy as np
import phe
import pytest
from arithmetic_limits import limit_chain_djn, limit_crt_chain_djn, limit_decrypt
from results_text import seconds_text

from fedrisk.crypto import workers
from fedrisk.crypto.fixed_base import DEFAULT_WINDOW, PROCESS_MIN_VALUES
from fedrisk.crypto.gh_packing import GHLayout, encrypted_left_sums, fold
from fedrisk.crypto.paillier import (
    DJN_EXPONENT_BITS,
    ObfuscatorPool,
    VectorCipher,
    decrypt_many,
    generate_keypair,
    release_gil,
)
from fedrisk.crypto.workers import worker_count
from fedrisk.data.bundled import load_uci_default_credit
from fedrisk.models.boosting import GH_FRAC_BITS, base_score, gh_integers, gradients, left_sums
from fedrisk.runs.run import run_scenario
from fedrisk.scenario import load_scenario
from fedrisk.vertical.secureboost.party import rerandomise
from fedrisk.vertical.secureboost.protocol import BINS_KEY

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "vertical-secureboost.toml"
RESULTS = Path(__file__).resolve().parent / "results" / "secureboost.md"
COMMAND = "python -m pytest benchmarks/test_bench_secureboost.py --benchmark-only"
KEY = "secureboost:"
KEY_BITS = 2048
N_TRAIN = 24_000  # bundled: aligned training customers (checked against the run)
BANK_COLUMNS, PROVIDER_COLUMNS = 13, 10
RUN_TREES = 3  # the real run on the bundled data ...
WHOLE_TREE = 2  # ... and its tree timed as "the whole tree" (steady state)
CHAIN = -(-DJN_EXPONENT_BITS // DEFAULT_WINDOW) - 1  # mulmods in one lookup chain
PARTY_STEPS = ("histograms", "fold", "rerandomise")  # what the provider does per request
RERANDOMISE_MULMODS = 2  # an Enc(0)'s own (1 · obfuscator) and into the ciphertext
MAX_OVER_LIMIT = 1.3  # acceptance: every step within 1.3x of its one-core limit
BENCH_ROUNDS = 2  # pytest-benchmark rounds per step / limit (each is seconds)
ABBA_ROUNDS = 4  # alternating step / limit rounds in the acceptance test

# FATE's reference shape
FATE_KEY_BITS = (1024, 2048)
FATE_TREES = {1024: 2, 2048: 2}  # tree 2: steady state (no binning, obfuscators prepared)
FATE_ROWS = 100_000  # customers each tree is grown on
FATE_TEST_FRACTION = 0.2
FATE_CUSTOMERS = round(FATE_ROWS / (1 - FATE_TEST_FRACTION))  # 125,000 generated and aligned
FATE_BANK_COLUMNS, FATE_PARTY_COLUMNS = 30, 300
FATE_REFERENCE_S = (114, 221)  # FATE 2.x, 1024-bit, 16 cores per party, per tree
FATE_TARGET_S = 120.0  # on 2 cores at 1024 bits
# Measured on a quiet machine at 39-53 s per tree, so it is asserted, but only for a run
# the rest of the machine left alone: other processes' share of the CPUs during the run
# at most FATE_MAX_OTHER_SHARE (a test suite on the same 2 cores doubled the time per tree).
FATE_TARGET_ASSERTED = True
FATE_MAX_OTHER_SHARE = 0.2
FATE_SCENARIO = """\
# FATE 2.x's SecureBoost benchmark shape: 100k customers x (bank 30 + party 300) columns
name = "fate-shape-{bits}"
description = "SecureBoost at FATE's reference shape, synthetic, Paillier {bits}"
seed = 7

[data]
source = "synthetic"
customers = {customers}
features_per_source = {party_columns}
test_fraction = {test_fraction}

[federation]
kind = "vertical"

[[federation.parties]]
name = "bank"
label = true
columns = ["bank_0..bank_{bank_last}"]

[[federation.parties]]
name = "party"

[model]
kind = "secureboost"
learning_rate = 0.3

[secureboost]
trees = {trees}
max_depth = 3
max_bins = 32

[privacy]
key_bits = {bits}
obfuscation = "djn"
"""


# --------------------------------------------------------------------------------------
# The real protocol, watched from the data party's side
# --------------------------------------------------------------------------------------


@dataclass
class PartyEvent:
    tree: int  # server-round of the message (0: set-up)
    stage: str
    start: float  # perf_counter when the party got it
    seconds: float  # the party's handling (call_next)
    built_rows: int = 0  # histograms: rows of the nodes it was asked to build
    nodes: int = 0  # ... the nodes
    candidates: int = 0  # ... its candidate splits per node (from its reply)


class PartySpy:
    """A Flower mod on the data party's ClientApp: times each message the party handles
    and keeps what the requests of the trees in ``keep`` held (the tree's rows, each
    level's node membership and built nodes), the party's bin codes and the training
    ids, for the replay and the mulmod counts."""

    def __init__(self, keep: Collection[int] = ()) -> None:
        self.keep = set(keep)
        self.events: list[PartyEvent] = []
        self.levels: dict[int, list[tuple[np.ndarray, list[int]]]] = {}
        self.tree_rows: dict[int, np.ndarray] = {}
        self.train_ids: list[str] | None = None
        self.bins: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def node_rows(self, tree: int) -> list[list[np.ndarray]]:
        """Per level, each built node's rows (positions among the tree's rows)."""
        return [[np.flatnonzero(a == b) for b in build] for a, build in self.levels[tree]]

    def __call__(self, msg, context, call_next):
        cfg = msg.content.config_records.get("config") or {}
        stage = str(cfg.get("stage", ""))
        tree = int(cfg.get("server-round", 0))
        built = nodes = candidates = 0
        if stage == "histograms":
            arrays = msg.content["membership"]
            assign = arrays["assign"].numpy()
            build = [int(b) for b in cfg["build"]]
            built, nodes = int(np.isin(assign, build).sum()), len(build)
            if tree in self.keep:
                if "tree-rows" in arrays:
                    self.tree_rows[tree] = arrays["tree-rows"].numpy()
                self.levels.setdefault(tree, []).append((assign, build))
        if stage == "align" and self.keep:
            self.train_ids = [str(i) for i in cfg["train-ids"]]
        started = time.perf_counter()
        reply = call_next(msg, context)
        seconds = time.perf_counter() - started
        if stage == "histograms" and not reply.has_error():
            candidates = int(reply.content["config"]["candidates"])
        self.events.append(PartyEvent(tree, stage, started, seconds, built, nodes, candidates))
        if stage == "histograms" and tree in self.keep and self.bins is None:
            state = context.state[BINS_KEY]
            self.bins = tuple(state[k].numpy() for k in ("train", "per-feature", "split-ids"))
        return reply

    def per_tree(self, stage: str, what: str = "seconds") -> dict[int, float]:
        out: dict[int, float] = {}
        for e in self.events:
            if e.stage == stage and e.tree > 0:
                out[e.tree] = out.get(e.tree, 0) + getattr(e, what)
        return out

    def setup_seconds(self) -> float:
        """The party's own handling of the set-up (identify, PSI, alignment)."""
        return sum(e.seconds for e in self.events if e.tree == 0)


@dataclass
class RunRecord:
    summary: dict
    walls: list[float]  # rounds.csv wall_s, one per tree
    command_s: float  # the whole run_scenario call
    spy: PartySpy
    load: tuple[float, float]  # 1-min load average before and after
    cpu: dict | None = None  # CPU seconds during the run: this process tree's, others'

    @property
    def setup_s(self) -> float:
        """Identify, PSI and the held-out split (and the engine's start): the federation's
        wall time less every tree's."""
        return self.summary["cost"]["federated_wall_s"] - sum(self.walls)


def cpu_seconds() -> tuple[float, float] | None:
    """(busy CPU seconds of the whole machine since boot, of this process and its crypto
    worker processes); None where /proc is not there."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
        ours = 0
        for pid in ["self", *workers.process_ids()]:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ours += int(fields[11]) + int(fields[12])  # utime, stime
    except (OSError, ValueError, IndexError):
        return None
    busy = sum(ticks[:8]) - ticks[3] - ticks[4]  # user .. steal, less idle and iowait
    hz = os.sysconf("SC_CLK_TCK")
    return busy / hz, ours / hz


def run_real(scenario, out: Path, spy: PartySpy) -> RunRecord:
    load = os.getloadavg()[0]
    cpu0 = cpu_seconds()
    started = time.perf_counter()
    run_scenario(scenario, out, show_progress=False, client_mods=[spy])
    command_s = time.perf_counter() - started
    cpu1 = cpu_seconds()
    with (out / "rounds.csv").open() as f:
        walls = [float(r["wall_s"]) for r in csv.DictReader(f)]
    summary = json.loads((out / "summary.json").read_text())
    cpu = None
    if cpu0 and cpu1:
        ours = cpu1[1] - cpu0[1]
        others = max(0.0, cpu1[0] - cpu0[0] - ours)
        cpu = {"ours": ours, "others": others, "share": others / (command_s * os.cpu_count())}
    return RunRecord(summary, walls, command_s, spy, (load, os.getloadavg()[0]), cpu)


# --------------------------------------------------------------------------------------
# The steps (module-level so the benchmarks and the acceptance test time exactly these)
# --------------------------------------------------------------------------------------


def bank_encrypt(cipher: VectorCipher, layout: GHLayout, gi, hi) -> tuple[list, bytes]:
    """Bank: one packed (g, h, 1) per tree row, encrypted and turned into bytes (what
    ``_Parties.send_gh`` times as encryption)."""
    enc = cipher.encrypt(layout.pack_rows(gi, hi))
    return enc, b"".join(int(c).to_bytes(cipher.width, "big") for c in enc)


def party_histograms(cts: list, codes: np.ndarray, per_feature, levels: list, nsq) -> list:
    """Provider: the encrypted left sums of every built node, one call per level."""
    return [
        sums for rows in levels for sums in encrypted_left_sums(cts, codes, per_feature, rows, nsq)
    ]


def party_fold(node_sums: list, order: np.ndarray, slot_bits: int, k: int, nsq) -> list:
    """Provider: each node's sums in split-id order, ``k`` candidates per ciphertext."""
    return [fold([sums[c] for c in order], slot_bits, k, nsq) for sums in node_sums]


def party_rerandomise(folded: list, cipher: VectorCipher) -> list:
    """Provider: a fresh Enc(0) of its own into each folded ciphertext."""
    return [rerandomise(f, cipher) for f in folded]


def bank_decrypt(private_key, layout: GHLayout, folded: list, candidates: int, k: int) -> list:
    """Bank: decrypt each node's folded ciphertexts and read the (count, Σg, Σh) slots."""
    return [layout.unpack(decrypt_many(private_key, f), candidates, k) for f in folded]


# the limits (one core) -----------------------------------------------------------------


def limit_mulmods(bases: list, count: int, nsq):
    """``count`` multiplications mod n², as a chain of ``a * b % n²``."""
    acc = gmpy2.mpz(1)
    for b in itertools.islice(itertools.cycle(bases), count):
        acc = acc * b % nsq
    return acc


class _Counted:
    """Stands in for every ciphertext: counts the multiplications mod n² made with it."""

    def __init__(self) -> None:
        self.mulmods = 0

    def __mul__(self, other):
        self.mulmods += 1
        return self

    __rmul__ = __mul__

    def __mod__(self, modulus):
        return self


def counted_mulmods(codes: np.ndarray, per_feature, levels: list) -> int:
    """The multiplications mod n² ``encrypted_left_sums`` makes for these nodes (one
    call per level, serially, on stand-ins): the columns it counts together in groups
    need fewer than one per built row and column."""
    c = _Counted()
    for rows in levels:
        encrypted_left_sums([c] * len(codes), codes, per_feature, rows, 3, workers=1)
    return c.mulmods


def limit_fold(ordered: list[list], k: int, slot_bits: int, nsq) -> None:
    """Horner's rule on one core: per candidate after each ciphertext's first, a powmod
    by 2^w and one mulmod."""
    shift = gmpy2.mpz(1) << slot_bits
    for sums in ordered:
        for i in range(0, len(sums), k):
            acc = sums[i]
            for c in sums[i + 1 : i + k]:
                acc = gmpy2.powmod(acc, shift, nsq) * c % nsq


# --------------------------------------------------------------------------------------
# Bundled workload: the real run, then the replay inputs
# --------------------------------------------------------------------------------------


@dataclass
class Workload:
    run: RunRecord
    codes: np.ndarray  # the provider's bin codes of tree 2's rows
    per_feature: np.ndarray
    order: np.ndarray  # split id -> candidate
    levels: list[list[np.ndarray]]  # per level, each built node's rows (tree positions)
    gi: np.ndarray
    hi: np.ndarray
    counted: int = 0  # the mulmods encrypted_left_sums makes for the tree (counted)

    @property
    def rows(self) -> int:
        return len(self.gi)

    @property
    def nodes(self) -> list[np.ndarray]:
        return [r for level in self.levels for r in level]

    @property
    def built_rows(self) -> int:
        return sum(len(r) for r in self.nodes)

    @property
    def mulmods(self) -> int:
        return self.built_rows * self.codes.shape[1]

    @property
    def candidates(self) -> int:
        return len(self.order)


@pytest.fixture(scope="module")
def workload(tmp_path_factory) -> Workload:
    s = load_scenario(SCENARIO, [f"secureboost.trees={RUN_TREES}"])
    assert s.model.kind == "secureboost" and s.secureboost.encrypted
    assert s.privacy.key_bits == KEY_BITS and s.privacy.obfuscation == "djn"
    assert (s.secureboost.max_depth, s.secureboost.max_bins, s.secureboost.subsample) == (3, 32, 1)
    release_gil()
    workers.start()
    spy = PartySpy(keep=[WHOLE_TREE])
    run = run_real(s, tmp_path_factory.mktemp("secureboost-run") / "run", spy)
    data = run.summary["data"]
    assert data["train_rows"] == N_TRAIN
    assert [p["features"] for p in data["parties"].values()] == [BANK_COLUMNS, PROVIDER_COLUMNS]
    assert len(run.walls) == RUN_TREES and run.summary["boosting"]["encrypted"]
    codes_train, per_feature, split_ids = spy.bins
    assert codes_train.shape == (N_TRAIN, PROVIDER_COLUMNS)
    tree_rows = spy.tree_rows[WHOLE_TREE]
    levels = spy.node_rows(WHOLE_TREE)
    # the labels of tree 2's rows (the party saw their ids, the benchmark reads the labels)
    ds = load_uci_default_credit()
    y_of = {str(i): int(v) for i, v in zip(ds.ids, ds.y)}
    y = np.array([y_of[spy.train_ids[i]] for i in tree_rows], dtype=np.float64)
    g, h = gradients(y, np.full(len(y), base_score(y)))  # cost does not depend on them
    gi, hi = gh_integers(g, h)
    w = Workload(run, codes_train[tree_rows], per_feature, np.argsort(split_ids), levels, gi, hi)
    assert w.built_rows == spy.per_tree("histograms", "built_rows")[WHOLE_TREE]
    w.counted = counted_mulmods(w.codes, w.per_feature, w.levels)
    return w


@dataclass
class Crypto:
    public_key: object
    private_key: object
    n: gmpy2.mpz
    nsq: gmpy2.mpz
    cipher: VectorCipher  # the bank's: key holder's DJN pool, kept empty
    party_cipher: VectorCipher  # the provider's: public-key DJN pool (fixed-base table)
    layout: GHLayout
    k: int  # candidates per folded ciphertext
    cts: list
    sums: list  # per built node, the encrypted left sums (column order)
    folded: list  # per built node, its folded ciphertexts, re-randomised
    ordered: list  # per built node, the sums in split-id order (the fold's input)
    entries: tuple  # CHAIN + 1 random table-like entries mod p² and mod q²
    entries_nsq: list  # ... and mod n² (the public-key table)
    psq: gmpy2.mpz
    qsq: gmpy2.mpz

    @property
    def folded_flat(self) -> list[int]:
        return [int(c) for f in self.folded for c in f]


@pytest.fixture(scope="module")
def crypto(workload) -> Crypto:
    public_key, private_key = generate_keypair(KEY_BITS)
    n, nsq = gmpy2.mpz(public_key.n), gmpy2.mpz(public_key.nsquare)
    p, q = gmpy2.mpz(private_key.p), gmpy2.mpz(private_key.q)
    pool = ObfuscatorPool(public_key, "djn", private_key=private_key)  # as bank.py makes it
    cipher = VectorCipher(public_key, pool)
    party = VectorCipher(public_key, ObfuscatorPool(public_key, "djn"))  # as party_cipher
    layout = GHLayout(workload.rows, GH_FRAC_BITS)
    k = layout.per_ciphertext(int(n))
    # warm-up, untimed: a run pays the worker start-up and table builds once per process
    warm = 2 * PROCESS_MIN_VALUES
    bank_encrypt(cipher, GHLayout(warm, GH_FRAC_BITS), workload.gi[:warm], workload.hi[:warm])
    cts, _ = bank_encrypt(cipher, layout, workload.gi, workload.hi)
    sums = party_histograms(cts, workload.codes, workload.per_feature, workload.levels, nsq)
    party_rerandomise([[1]], party)  # builds the party's table, untimed
    folded = party_rerandomise(party_fold(sums, workload.order, layout.slot_bits, k, nsq), party)
    entries_nsq, *entries = (
        [gmpy2.mpz(secrets.randbelow(int(m))) for _ in range(CHAIN + 1)]
        for m in (nsq, p * p, q * q)
    )
    c = Crypto(
        public_key,
        private_key,
        n,
        nsq,
        cipher,
        party,
        layout,
        k,
        cts,
        sums,
        folded,
        [[s[i] for i in workload.order] for s in sums],
        tuple(entries),
        entries_nsq,
        p * p,
        q * q,
    )
    check(c, workload, bank_decrypt(private_key, layout, folded, workload.candidates, k))
    assert len(pool) == 0 and len(party.pool) == 0
    return c


def check(c: Crypto, w: Workload, decrypted: list) -> None:
    """A benchmark of wrong code is worthless: every built node's decrypted left sums are
    the plaintext ones, in split-id order."""
    assert len(decrypted) == len(w.nodes)
    for rows, got in zip(w.nodes, decrypted):
        expected = left_sums(w.codes[rows], w.per_feature, w.gi[rows], w.hi[rows])[:, w.order]
        np.testing.assert_array_equal(got, expected)


def record(bench_store, name: str, benchmark) -> None:
    bench_store.record(KEY + name, benchmark)


# --------------------------------------------------------------------------------------
# Bank: encrypt the tree's (g, h, 1)
# --------------------------------------------------------------------------------------


@pytest.mark.benchmark(group="secureboost: bank encrypts (g, h, 1) per tree row")
def test_secureboost_encrypt(benchmark, bench_store, workload, crypto):
    enc, raw = benchmark.pedantic(
        bank_encrypt,
        args=(crypto.cipher, crypto.layout, workload.gi, workload.hi),
        rounds=BENCH_ROUNDS,
        iterations=1,
    )
    assert len(enc) == workload.rows and len(raw) == workload.rows * crypto.cipher.width
    assert len(crypto.cipher.pool) == 0  # every obfuscator computed online
    sums = party_histograms(
        enc, workload.codes, workload.per_feature, workload.levels[:1], crypto.nsq
    )
    folded = party_fold(sums, workload.order, crypto.layout.slot_bits, crypto.k, crypto.nsq)
    got = bank_decrypt(crypto.private_key, crypto.layout, folded, workload.candidates, crypto.k)
    rows = workload.levels[0][0]  # the root: every row's ciphertext is right
    np.testing.assert_array_equal(
        got[0],
        left_sums(workload.codes[rows], workload.per_feature, workload.gi[rows], workload.hi[rows])[
            :, workload.order
        ],
    )
    benchmark.extra_info.update(ciphertexts=workload.rows, cores=worker_count())
    record(bench_store, "encrypt", benchmark)


@pytest.mark.benchmark(group="secureboost: bank encrypts (g, h, 1) per tree row")
def test_limit_encrypt_crt_chains(benchmark, bench_store, workload, crypto):
    out = benchmark.pedantic(
        limit_crt_chain_djn,
        args=(*crypto.entries, crypto.psq, crypto.qsq, workload.rows),
        rounds=BENCH_ROUNDS,
        iterations=1,
    )
    assert len(out) == workload.rows
    record(bench_store, "limit_encrypt", benchmark)


# --------------------------------------------------------------------------------------
# Provider: histograms of the built nodes, then the fold
# --------------------------------------------------------------------------------------


@pytest.mark.benchmark(group="secureboost: provider's encrypted histograms")
def test_secureboost_histograms(benchmark, bench_store, workload, crypto):
    sums = benchmark.pedantic(
        party_histograms,
        args=(crypto.cts, workload.codes, workload.per_feature, workload.levels, crypto.nsq),
        rounds=BENCH_ROUNDS,
        iterations=1,
    )
    assert sums == crypto.sums  # the same products, however the columns were shared out
    benchmark.extra_info.update(built_rows=workload.built_rows, mulmods=workload.mulmods)
    record(bench_store, "histograms", benchmark)


@pytest.mark.benchmark(group="secureboost: provider's encrypted histograms")
def test_limit_histogram_mulmods(benchmark, bench_store, workload, crypto):
    benchmark.pedantic(
        limit_mulmods,
        args=(crypto.cts, workload.mulmods, crypto.nsq),
        rounds=BENCH_ROUNDS,
        iterations=1,
    )
    benchmark.extra_info.update(mulmods=workload.mulmods)
    record(bench_store, "limit_histograms", benchmark)


@pytest.mark.benchmark(group="secureboost: provider folds the sums (cipher compression)")
def test_secureboost_fold(benchmark, bench_store, workload, crypto):
    folded = benchmark.pedantic(
        party_fold,
        args=(crypto.sums, workload.order, crypto.layout.slot_bits, crypto.k, crypto.nsq),
        rounds=3,
        iterations=1,
    )
    got = bank_decrypt(crypto.private_key, crypto.layout, folded, workload.candidates, crypto.k)
    check(crypto, workload, got)
    record(bench_store, "fold", benchmark)


@pytest.mark.benchmark(group="secureboost: provider folds the sums (cipher compression)")
def test_limit_fold(benchmark, bench_store, crypto):
    benchmark.pedantic(
        limit_fold,
        args=(crypto.ordered, crypto.k, crypto.layout.slot_bits, crypto.nsq),
        rounds=3,
        iterations=1,
    )
    record(bench_store, "limit_fold", benchmark)


@pytest.mark.benchmark(group="secureboost: provider re-randomises the folded sums")
def test_secureboost_rerandomise(benchmark, bench_store, workload, crypto):
    out = benchmark.pedantic(
        party_rerandomise, args=(crypto.folded, crypto.party_cipher), rounds=5, iterations=1
    )
    assert len(crypto.party_cipher.pool) == 0
    check(
        crypto,
        workload,
        bank_decrypt(crypto.private_key, crypto.layout, out, workload.candidates, crypto.k),
    )
    record(bench_store, "rerandomise", benchmark)


@pytest.mark.benchmark(group="secureboost: provider re-randomises the folded sums")
def test_limit_rerandomise(benchmark, bench_store, crypto):
    count = len(crypto.folded_flat)
    benchmark.pedantic(limit_rerandomise, args=(crypto, count), rounds=5, iterations=1)
    record(bench_store, "limit_rerandomise", benchmark)


def limit_rerandomise(c: Crypto, count: int) -> list:
    """Per ciphertext one lookup chain mod n² and its 2 mulmods."""
    return limit_chain_djn(c.entries_nsq + c.entries_nsq[:RERANDOMISE_MULMODS], c.nsq, count)


# --------------------------------------------------------------------------------------
# Bank: decrypt and unpack
# --------------------------------------------------------------------------------------


@pytest.mark.benchmark(group="secureboost: bank decrypts the folded sums")
def test_secureboost_decrypt(benchmark, bench_store, workload, crypto):
    got = benchmark.pedantic(
        bank_decrypt,
        args=(crypto.private_key, crypto.layout, crypto.folded, workload.candidates, crypto.k),
        rounds=5,
        iterations=1,
    )
    check(crypto, workload, got)
    benchmark.extra_info.update(ciphertexts=len(crypto.folded_flat))
    record(bench_store, "decrypt", benchmark)


@pytest.mark.benchmark(group="secureboost: bank decrypts the folded sums")
def test_limit_decrypt(benchmark, bench_store, crypto):
    flat = crypto.folded_flat
    benchmark.pedantic(limit_decrypt, args=(crypto.private_key, flat), rounds=5, iterations=1)
    record(bench_store, "limit_decrypt", benchmark)


# --------------------------------------------------------------------------------------
# FATE's reference shape: whole runs (minutes; deselect with -k "not fate")
# --------------------------------------------------------------------------------------


def fold_steps(candidates: int, nodes: int, k: int) -> int:
    """Horner steps (a powmod by 2^w and a mulmod) to fold ``nodes`` × ``candidates``."""
    return nodes * (candidates - -(-candidates // k))


def unit_limits(bits: int, slot_bits: int, rows: int) -> dict[str, float]:
    """One core, seconds per operation under a fresh key of ``bits``: a mulmod mod n², a
    CRT pair of DJN lookup chains (the key holder's encryption), a Horner step of the fold
    (a powmod by 2^slot_bits and a mulmod), a re-randomisation (a lookup chain mod n² and
    2 mulmods), a ``raw_decrypt``. The mulmods run through ``rows`` ciphertexts (twice), so
    their working set is the party's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 1024-bit keys warn (experiments only)
        public_key, private_key = generate_keypair(bits)
    nsq = gmpy2.mpz(public_key.nsquare)
    p, q = gmpy2.mpz(private_key.p), gmpy2.mpz(private_key.q)
    psq, qsq = p * p, q * q
    cts = [gmpy2.mpz(secrets.randbelow(int(nsq))) for _ in range(rows)]
    en, ep, eq = (
        [gmpy2.mpz(secrets.randbelow(int(m))) for _ in range(CHAIN + 1)] for m in (nsq, psq, qsq)
    )
    ints = [int(c) for c in cts[:200]]
    work = {
        "mulmod": (lambda: limit_mulmods(cts, 2 * rows, nsq), 2 * rows),
        "encrypt": (lambda: limit_crt_chain_djn(ep, eq, psq, qsq, 2000), 2000),
        "fold": (lambda: limit_fold([cts[:500]], 500, slot_bits, nsq), 499),
        "rerandomise": (
            lambda: limit_chain_djn(en + en[:RERANDOMISE_MULMODS], nsq, 1000),
            1000,
        ),
        "decrypt": (lambda: limit_decrypt(private_key, ints), len(ints)),
    }
    out = {}
    for name, (fn, count) in work.items():
        times = []
        for _ in range(3):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        out[name] = min(times) / count
    return out


@pytest.mark.benchmark(group="secureboost: FATE's shape, 100k x (30 + 300), per tree")
@pytest.mark.parametrize("key_bits", FATE_KEY_BITS)
def test_fate_shape_seconds_per_tree(benchmark, bench_store, tmp_path, key_bits):
    trees = FATE_TREES[key_bits]
    path = tmp_path / "fate-shape.toml"
    path.write_text(
        FATE_SCENARIO.format(
            bits=key_bits,
            customers=FATE_CUSTOMERS,
            party_columns=FATE_PARTY_COLUMNS,
            test_fraction=FATE_TEST_FRACTION,
            bank_last=FATE_BANK_COLUMNS - 1,
            trees=trees,
        )
    )
    s = load_scenario(path)
    spy = PartySpy(keep=range(1, trees + 1))
    got: dict[str, RunRecord] = {}

    def run():
        got["run"] = run_real(s, tmp_path / "run", spy)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 1024-bit key; "this run will take minutes"
        benchmark.pedantic(run, rounds=1, iterations=1)
    rec = got["run"]
    data, cost = rec.summary["data"], rec.summary["cost"]
    assert data["train_rows"] == FATE_ROWS and data["aligned_customers"] == FATE_CUSTOMERS
    assert [p["features"] for p in data["parties"].values()] == [
        FATE_BANK_COLUMNS,
        FATE_PARTY_COLUMNS,
    ]
    assert len(rec.walls) == trees == cost["trees"]
    assert cost["encryptions"] == trees * FATE_ROWS
    built = spy.per_tree("histograms", "built_rows")
    assert sum(built.values()) == cost["histogram_rows"]
    layout = GHLayout(FATE_ROWS, GH_FRAC_BITS)
    units = unit_limits(key_bits, layout.slot_bits, FATE_ROWS)
    candidates = max(e.candidates for e in spy.events)
    k = layout.per_ciphertext(1 << (key_bits - 1))  # phe's n has exactly key_bits bits
    nodes = spy.per_tree("histograms", "nodes")
    codes_train, per_feature, _ = spy.bins
    counted = {
        t: counted_mulmods(codes_train[spy.tree_rows[t]], per_feature, spy.node_rows(t))
        for t in sorted(spy.levels)
    }
    bench_store.results[KEY + f"fate:{key_bits}"] = {
        "bits": key_bits,
        "trees": trees,
        "walls": rec.walls,
        "setup_s": rec.setup_s,
        "setup_party_s": spy.setup_seconds(),
        "command_s": rec.command_s,
        "cost": cost,
        "party_hist_s": spy.per_tree("histograms"),
        "party_split_s": spy.per_tree("split"),
        "built_rows": built,
        "counted": counted,
        "nodes": nodes,
        "candidates": candidates,
        "per_ciphertext": k,
        "fold_steps": sum(fold_steps(candidates, v, k) for v in nodes.values()),
        "units": units,
        "load": rec.load,
        "cpu": rec.cpu,
        "last_tree_levels": [
            e.seconds for e in spy.events if e.stage == "histograms" and e.tree == trees
        ],
        "auc": rec.summary["federated"]["auc"],
        "when": datetime.now(UTC),
    }
    benchmark.extra_info.update(walls=rec.walls, setup_s=rec.setup_s)
    write_results(bench_store)


# --------------------------------------------------------------------------------------
# The results file
# --------------------------------------------------------------------------------------


def _machine() -> str:
    return (
        f"{os.cpu_count()} CPUs, {worker_count()} cores used, Python "
        f"{platform.python_version()}, phe {phe.__version__}, gmpy2 {gmpy2.version()}"
    )


def fate_section(bench_store) -> str | None:
    """The FATE-shape table from this session's runs (None: none ran)."""
    res = {
        b: bench_store.results[KEY + f"fate:{b}"]
        for b in FATE_KEY_BITS
        if KEY + f"fate:{b}" in bench_store.results
    }
    if not res:
        return None
    bits = list(res)
    per: dict[int, dict[str, float]] = {}
    for b, r in res.items():
        t, c, u = r["trees"], r["cost"], r["units"]
        enc, hist, dec = c["encryption_s"] / t, c["histogram_wait_s"] / t, c["decryption_s"] / t
        mean = statistics.mean(r["walls"])
        built = c["histogram_rows"] / t
        per[b] = {
            "mean": mean,
            "enc": enc,
            "hist": hist,
            "dec": dec,
            "rest": mean - enc - hist - dec,
            "lim_enc": FATE_ROWS * u["encrypt"],
            "lim_hist": built * FATE_PARTY_COLUMNS * u["mulmod"],
            "lim_counted": sum(r["counted"].values()) / t * u["mulmod"],
            "lim_fold": r["fold_steps"] / t * u["fold"],
            "lim_rerandomise": c["decryptions"] / t * u["rerandomise"],
            "lim_dec": c["decryptions"] / t * u["decrypt"],
            "built": built,
        }

    def trees_of(key: str, fmt) -> Callable[[int], str]:
        return lambda b: " / ".join(fmt(res[b][key][t]) for t in sorted(res[b][key]))

    def ratio(step: str) -> Callable[[int], str]:
        return lambda b: f"{per[b][step] / per[b]['lim_' + step]:.2f}x"

    def party_limit(b: int, hist: str = "lim_hist") -> float:
        return per[b][hist] + per[b]["lim_fold"] + per[b]["lim_rerandomise"]

    def party_ratio(b: int, counted: bool = False) -> str:
        r, u = res[b], res[b]["units"]
        out = []
        for t in sorted(r["party_hist_s"]):
            mulmods = r["counted"][t] if counted else r["built_rows"][t] * FATE_PARTY_COLUMNS
            lim = mulmods * u["mulmod"]
            lim += fold_steps(r["candidates"], r["nodes"][t], r["per_ciphertext"]) * u["fold"]
            folded = r["nodes"][t] * -(-r["candidates"] // r["per_ciphertext"])
            lim += folded * u["rerandomise"]
            out.append(f"{r['party_hist_s'][t] / lim:.2f}x")
        return " / ".join(out)

    def cpu_cell(b: int) -> str:
        cpu = res[b]["cpu"]
        if cpu is None:
            return "–"
        return f"{cpu['ours']:,.0f} / {cpu['others']:,.0f} ({cpu['share']:.0%} of the CPUs)"

    def target(b: int) -> str:
        if b != 1024:
            return "–"
        worst = max(res[b]["walls"])
        if worst > FATE_TARGET_S:
            return f"over by {worst - FATE_TARGET_S:.1f} s"
        return f"met ({FATE_TARGET_S / worst:.1f}x below)"

    lo, hi = FATE_REFERENCE_S
    table = [
        ("trees grown", lambda b: str(res[b]["trees"])),
        (
            "**seconds per tree** (rounds.csv wall_s, tree 1 / tree 2)",
            lambda b: " / ".join(f"**{seconds_text(w)}**" for w in res[b]["walls"]),
        ),
        ("mean per tree", lambda b: seconds_text(per[b]["mean"])),
        ("FATE 2.x per tree (1024-bit, 16 cores per party)", lambda b: f"{lo}–{hi}"),
        (f"target on 2 cores at 1024 bits: ≤ {FATE_TARGET_S:.0f} s per tree", target),
        ("per tree: bank encryption (encryption_s / trees)", lambda b: seconds_text(per[b]["enc"])),
        (
            "per tree: histograms, the bank's wait (histogram_wait_s / trees)",
            lambda b: seconds_text(per[b]["hist"]),
        ),
        (
            "… of which the party's own handling, tree 1 / tree 2",
            trees_of("party_hist_s", seconds_text),
        ),
        ("per tree: decryption (decryption_s / trees)", lambda b: seconds_text(per[b]["dec"])),
        ("per tree: rest (wall − the three)", lambda b: seconds_text(per[b]["rest"])),
        (
            "limit (one core): encryption, one CRT pair of DJN chains per row",
            lambda b: seconds_text(per[b]["lim_enc"]),
        ),
        (
            f"limit (one core): histograms, one mulmod mod n² per built row × "
            f"{FATE_PARTY_COLUMNS} columns",
            lambda b: seconds_text(per[b]["lim_hist"]),
        ),
        (
            "limit (one core): histograms, the mulmods the grouped code makes (counted)",
            lambda b: seconds_text(per[b]["lim_counted"]),
        ),
        (
            "limit (one core): decryption, one raw_decrypt per folded ciphertext",
            lambda b: seconds_text(per[b]["lim_dec"]),
        ),
        (
            f"limit (one core): fold, a powmod by 2^w + a mulmod per folded candidate "
            f"(w = {GHLayout(FATE_ROWS, GH_FRAC_BITS).slot_bits})",
            lambda b: seconds_text(per[b]["lim_fold"]),
        ),
        (
            "limit (one core): re-randomise, a lookup chain mod n² + 2 mulmods per folded "
            "ciphertext",
            lambda b: seconds_text(per[b]["lim_rerandomise"]),
        ),
        ("encryption / its limit (step on 2 cores)", ratio("enc")),
        (
            "histograms (the bank's wait) / the party's limits: histograms + fold + "
            "re-randomise (steps on 2 cores)",
            lambda b: f"{per[b]['hist'] / party_limit(b):.2f}x",
        ),
        ("… the party's own handling / those limits, tree 1 / tree 2", party_ratio),
        (
            "… the same against the mulmods the grouped code makes (+ fold + re-randomise), "
            "tree 1 / tree 2",
            lambda b: party_ratio(b, counted=True),
        ),
        ("decryption / its limit (step on 2 cores)", ratio("dec")),
        (
            "built rows per tree (root + smaller children), tree 1 / tree 2",
            trees_of("built_rows", lambda v: f"{v:,}"),
        ),
        (
            "histogram mulmods per tree: built rows × columns / counted, tree 1 / tree 2",
            lambda b: " / ".join(
                f"{res[b]['built_rows'][t] * FATE_PARTY_COLUMNS / 1e6:.1f}M / "
                f"{res[b]['counted'][t] / 1e6:.1f}M"
                for t in sorted(res[b]["counted"])
            ),
        ),
        (
            "decryptions per tree",
            lambda b: f"{res[b]['cost']['decryptions'] / res[b]['trees']:,.0f}",
        ),
        (
            "one core, µs: mulmod mod n² / CRT pair of DJN chains / raw_decrypt",
            lambda b: " / ".join(
                f"{res[b]['units'][k] * 1e6:.2f}" for k in ("mulmod", "encrypt", "decrypt")
            ),
        ),
        (
            "set-up: federation wall − Σ trees (identify, ECDH PSI, split)",
            lambda b: seconds_text(res[b]["setup_s"]),
        ),
        ("… of which the party's own handling", lambda b: seconds_text(res[b]["setup_party_s"])),
        (
            "whole run_scenario (data, keys, federation, baselines, files)",
            lambda b: seconds_text(res[b]["command_s"]),
        ),
        (
            "bytes per tree, MB",
            lambda b: " / ".join(f"{v / 1e6:.1f}" for v in res[b]["cost"]["bytes_per_round"]),
        ),
        ("test AUC after the last tree", lambda b: f"{res[b]['auc']:.4f}"),
        (
            "the party's handling of each request, last tree (level 1 / 2 / 3)",
            lambda b: " / ".join(seconds_text(x) for x in res[b]["last_tree_levels"]),
        ),
        ("1-min load average before / after", lambda b: "{:.1f} / {:.1f}".format(*res[b]["load"])),
        ("CPU seconds during the run: this run's processes / other processes", cpu_cell),
    ]
    when = max(r["when"] for r in res.values())
    lines = [
        f"SecureBoost at FATE's reference shape: synthetic, {FATE_CUSTOMERS:,} customers "
        f"aligned by PSI, each tree grown on {FATE_ROWS:,} ({FATE_TEST_FRACTION:.0%} held "
        f"out), bank {FATE_BANK_COLUMNS} columns + labels, one data party "
        f"{FATE_PARTY_COLUMNS} columns, depth 3, 32 bins, DJN obfuscation, in-process; "
        f"seconds ({when:%Y-%m-%d %H:%M} UTC, {_machine()})",
        "",
        "| measure | " + " | ".join(f"{b}-bit" for b in bits) + " |",
        "|---|" + "---:|" * len(bits),
        *(f"| {label} | " + " | ".join(fn(b) for b in bits) + " |" for label, fn in table),
        "",
        "- per tree: rounds.csv `wall_s` (from the bank's start of the tree to its end). Tree 1 "
        "also pays the party's binning of its columns and computes its own obfuscators online "
        "while preparing tree 2's in the background; a last tree prepares none. The cost "
        "split is summary.json's run totals divided by the trees; the party's handling of "
        "each tree's histogram requests (bytes to integers, `encrypted_left_sums`, fold, "
        "re-randomise, bytes) comes from a Flower mod on its ClientApp.",
        "- limits: per-operation times on one core under a fresh key of the same size, "
        "measured right after the run, times the run's counts. The steps use both cores, "
        "the limits one.",
        f"- FATE 2.x's figure is for 1024-bit keys with 16 cores per party; the target here "
        f"is ≤ {FATE_TARGET_S:.0f} s for every tree at 1024 bits on 2 cores, asserted when "
        f"other processes used at most {FATE_MAX_OTHER_SHARE:.0%} of the CPUs during the run "
        "(a test suite running on the same 2 cores about doubled the time per tree).",
    ]
    return "\n".join(lines)


def _sections(text: str) -> dict[str, str]:
    return dict(re.findall(r"<!-- (\w+): start -->\n(.*?)\n<!-- \1: end -->", text, re.S))


def write_results(bench_store, bundled: str | None = None, publish: bool = False) -> None:
    """Write the results file: this session's sections, the others kept as they were."""
    old = _sections(RESULTS.read_text()) if RESULTS.exists() else {}
    new = {"bundled": bundled, "fate": fate_section(bench_store)}
    parts = []
    for name, text in new.items():
        text = text or old.get(name) or f"_not measured yet: run `{COMMAND}`_"
        parts.append(f"<!-- {name}: start -->\n{text}\n<!-- {name}: end -->")
    body = "\n\n".join(parts)
    title = "SecureBoost benchmark: seconds per tree against the limits"
    if publish:
        bench_store.publish(RESULTS, title, COMMAND, body)
    else:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(f"# {title}\n\nWritten by `{COMMAND}`.\n\n{body}\n")


# --------------------------------------------------------------------------------------
# Acceptance and the bundled table (a benchmark itself, so --benchmark-only runs it)
# --------------------------------------------------------------------------------------


@dataclass
class Step:
    name: str
    limit: str
    label: str
    limit_label: str
    step_fn: object
    limit_fn: object
    times: dict = field(default_factory=lambda: {"step": [], "limit": []})


@pytest.mark.benchmark(group="secureboost: acceptance")
def test_secureboost_tree_meets_limits(benchmark, bench_store, workload, crypto):
    w, c = workload, crypto
    cores = worker_count()

    # The benchmark itself: the provider's whole histogram step for the tree.
    def provider_step():
        sums = party_histograms(c.cts, w.codes, w.per_feature, w.levels, c.nsq)
        folded = party_fold(sums, w.order, c.layout.slot_bits, c.k, c.nsq)
        return party_rerandomise(folded, c.party_cipher)

    folded = benchmark.pedantic(provider_step, rounds=1, iterations=1)
    check(c, w, bank_decrypt(c.private_key, c.layout, folded, w.candidates, c.k))

    flat = c.folded_flat
    steps = [
        Step(
            "encrypt",
            "limit_encrypt",
            f"bank: pack + encrypt {w.rows:,} (g, h, 1) + to bytes (DJN, key holder's CRT "
            "tables; worker process + this one)",
            f"{w.rows:,} CRT pairs of {CHAIN}-mulmod chains (mod p², mod q²)",
            lambda: bank_encrypt(c.cipher, c.layout, w.gi, w.hi),
            lambda: limit_crt_chain_djn(*c.entries, c.psq, c.qsq, w.rows),
        ),
        Step(
            "histograms",
            "limit_histograms",
            f"provider: `encrypted_left_sums`, {len(w.nodes)} built nodes over "
            f"{len(w.levels)} levels, {w.built_rows:,} rows × {w.codes.shape[1]} columns "
            "(columns over the worker process + this one)",
            f"{w.mulmods:,} mulmods mod n²",
            lambda: party_histograms(c.cts, w.codes, w.per_feature, w.levels, c.nsq),
            lambda: limit_mulmods(c.cts, w.mulmods, c.nsq),
        ),
        Step(
            "fold",
            "limit_fold",
            f"provider: fold {len(w.nodes)} × {w.candidates} sums into {len(flat)} "
            f"ciphertexts ({c.k} per ciphertext, {c.layout.slot_bits}-bit slots; threads)",
            "Horner serially: a powmod by 2^w + a mulmod per candidate",
            lambda: party_fold(c.sums, w.order, c.layout.slot_bits, c.k, c.nsq),
            lambda: limit_fold(c.ordered, c.k, c.layout.slot_bits, c.nsq),
        ),
        Step(
            "rerandomise",
            "limit_rerandomise",
            f"provider: re-randomise the {len(flat)} folded ciphertexts (an Enc(0) each, "
            "its public-key DJN table)",
            f"{len(flat)} {CHAIN}-mulmod chains mod n² + {RERANDOMISE_MULMODS} mulmods each",
            lambda: party_rerandomise(c.folded, c.party_cipher),
            lambda: limit_rerandomise(c, len(flat)),
        ),
        Step(
            "decrypt",
            "limit_decrypt",
            f"bank: `decrypt_many` + unpack of the {len(flat)} folded ciphertexts (threads)",
            f"{len(flat)} × phe `raw_decrypt`",
            lambda: bank_decrypt(c.private_key, c.layout, c.folded, w.candidates, c.k),
            lambda: limit_decrypt(c.private_key, flat),
        ),
    ]
    # Each step and its limit again, alternating (ABBA), so both see the same load.
    for i in range(ABBA_ROUNDS):
        for st in steps:
            for side in ("step", "limit") if i % 2 == 0 else ("limit", "step"):
                fn = st.step_fn if side == "step" else st.limit_fn
                started = time.perf_counter()
                fn()
                st.times[side].append(time.perf_counter() - started)
    assert len(c.cipher.pool) == 0 and len(c.party_cipher.pool) == 0

    res = bench_store.results
    rows, over = [], {}
    for st in steps:
        meas = min([*st.times["step"], res.get(KEY + st.name, {}).get("min", np.inf)])
        lim = min([*st.times["limit"], res.get(KEY + st.limit, {}).get("min", np.inf)])
        paired = statistics.median(a / b for a, b in zip(st.times["step"], st.times["limit"]))
        over[st.name] = min(meas / lim, paired)
        rows.append((st, meas, lim, paired))
    total = sum(m for _, m, _, _ in rows)
    total_lim = sum(lim for _, _, lim, _ in rows)
    # the histograms against the multiplications the grouped code really makes
    _, h_meas, h_lim, h_paired = next(r for r in rows if r[0].name == "histograms")
    scale = w.counted / w.mulmods
    over["histograms (its own count)"] = min(h_meas / (h_lim * scale), h_paired / scale)
    table = []
    for st, m, lim, p in rows:
        table.append(
            f"| {st.label} | {seconds_text(m)} | {seconds_text(lim)} | {m / lim:.2f}x | {p:.2f}x | {st.limit_label} |"
        )
        if st.name == "histograms":
            table.append(
                f"| … the same against the mulmods it makes (columns counted in groups) | "
                f"{seconds_text(m)} | {seconds_text(lim * scale)} | {m / (lim * scale):.2f}x | {p / scale:.2f}x | "
                f"{w.counted:,} mulmods mod n², counted ({scale:.0%} of one per row × column) |"
            )
    walls = w.run.walls
    whole = walls[WHOLE_TREE - 1]
    cost = w.run.summary["cost"]
    party_levels = [
        e.seconds for e in w.run.spy.events if e.stage == "histograms" and e.tree == WHOLE_TREE
    ]
    lines = [
        f"SecureBoost on the bundled data (`scenarios/vertical-secureboost.toml`): "
        f"{w.rows:,} training customers, bank {BANK_COLUMNS} columns, provider "
        f"{w.codes.shape[1]}, depth 3, 32 bins, Paillier {KEY_BITS}-bit, DJN; one tree (tree "
        f"{WHOLE_TREE} of a {RUN_TREES}-tree run); seconds, min over rounds; steps on "
        f"**{cores} cores**, limits on one ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{_machine()}, 1-min load average {os.getloadavg()[0]:.1f})",
        "",
        "| step | measured | limit (one core) | ratio | ratio, paired ABBA median | the limit |",
        "|---|---:|---:|---:|---:|---|",
        *table,
        f"| sum of the five steps | {seconds_text(total)} | {seconds_text(total_lim)} | {total / total_lim:.2f}x | | |",
        f"| **whole tree**: the real protocol, tree {WHOLE_TREE}'s rounds.csv `wall_s` | "
        f"**{seconds_text(whole)}** | | | | |",
        f"| rest = whole tree − the five steps | {seconds_text(whole - total)} | | | | messages and "
        "serialisation, the bank's own columns, gains, splits, leaves, scoring |",
        "",
        f"- the real run ({RUN_TREES} trees, in-process): trees took "
        + " / ".join(f"{seconds_text(x)}" for x in walls)
        + f" s; set-up (federation wall − Σ trees) {seconds_text(w.run.setup_s)} s; whole "
        f"`run_scenario` {seconds_text(w.run.command_s)} s. Its cost fields (all trees): encryption "
        f"{seconds_text(cost['encryption_s'])} s, histogram wait {seconds_text(cost['histogram_wait_s'])} s, "
        f"decryption {seconds_text(cost['decryption_s'])} s ({cost['decryptions']} ciphertexts), "
        f"obfuscators prepared in the background {seconds_text(cost['obfuscator_precompute_s'])} s"
        + (
            f"; CPU seconds during the run: {w.run.cpu['ours']:.0f} its own, "
            f"{w.run.cpu['others']:.0f} other processes'. "
            if w.run.cpu
            else ". "
        )
        + f"In tree {WHOLE_TREE} the provider's handling of its {len(party_levels)} histogram "
        "requests took " + " / ".join(seconds_text(x) for x in party_levels) + f" s (Σ "
        f"{seconds_text(sum(party_levels))} s; the isolated histograms + fold + re-randomise: "
        f"{seconds_text(sum(m for st, m, _, _ in rows if st.name in PARTY_STEPS))} s).",
        f"- tree {WHOLE_TREE}'s built nodes: "
        + "; ".join(
            f"level {i + 1}: " + ", ".join(f"{len(r):,}" for r in lv) + " rows"
            for i, lv in enumerate(w.levels)
        )
        + f" (Σ {w.built_rows:,}); {w.candidates} candidate splits per node. The histogram "
        f"limit is SecureBoost's classic count, {w.codes.shape[1]} mulmods per built row; "
        f"the code counts columns in groups and makes {w.counted:,} (counted on stand-ins), "
        "the second row's limit at the same cost per mulmod.",
        "- the tree's obfuscators: in the real run they were prepared in the background "
        "during the tree before, on one worker process (and this tree prepared the next "
        "one's while the provider worked); the isolated encryption computes every one "
        f"online on both cores. The real run's encryption took {seconds_text(cost['encryption_s'] / RUN_TREES)} "
        "s per tree (encryption_s / trees: it includes waiting for that background "
        "batch).",
        f"- measured = min over the pytest-benchmark rounds and {ABBA_ROUNDS} alternating "
        f"(ABBA) rounds of step and limit; required: every step ≤ {MAX_OVER_LIMIT:g}x its "
        "one-core limit (the lower of the two ratios). The steps use both cores, the limits "
        "one: the histograms' ratio below 1 is the second core's gain.",
    ]
    write_results(bench_store, "\n".join(lines), publish=True)
    benchmark.extra_info.update(whole_tree_s=whole, steps_s=total)

    bad = {k: round(v, 3) for k, v in over.items() if v > MAX_OVER_LIMIT}
    assert not bad, f"steps over {MAX_OVER_LIMIT}x their one-core limit: {bad}"
    fate = bench_store.results.get(KEY + "fate:1024")
    if FATE_TARGET_ASSERTED and fate is not None and cores >= 2:
        share = fate["cpu"]["share"] if fate["cpu"] else 0.0
        if share <= FATE_MAX_OTHER_SHARE:
            assert max(fate["walls"]) <= FATE_TARGET_S, f"FATE shape, 1024-bit: {fate['walls']}"
        else:
            warnings.warn(
                f"FATE shape, 1024-bit: the target ({FATE_TARGET_S:g} s per tree) not checked: "
                f"other processes used {share:.0%} of the CPUs during the run",
                stacklevel=1,
            )
