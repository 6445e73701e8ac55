"""Vertical (hetero logistic regression) cryptography: one batch and one epoch vs its limit.

Workload: the bundled-data scenario (``scenarios/vertical.toml``): the bank holds the labels,
the provider its p = 10 features; 24,000 aligned training customers (30,000 less the 20%
held out), batch B = 1024, 2048-bit keys. The provider's features are the real bundled
columns, z-scored on the training rows, and the batch is the first batch of epoch 1, chosen
exactly as ``_run_bank`` does. Residuals are synthetic but shaped like the protocol's
``d = u/4 − (2y − 1)/2``, with the batch's real labels.

One batch of the protocol (``fedrisk/vertical/``) does this cryptography:

* ``vertical_encrypt_residuals_{full,djn}`` – bank: ``VectorCipher.encrypt(encode_signed(d,
  RESIDUAL_FRAC_BITS, n))``, B ciphertexts, every obfuscator computed online (empty pool).
* ``vertical_feature_sums`` – provider: ``encrypted_feature_sums(residuals, X_batch, n²)``,
  one Pippenger multi-exponentiation per feature (p = 10).
* ``vertical_mask_sums_{full,djn}`` – provider: p random masks, encrypted and multiplied
  into the sums, as the party's ``train`` handler does.
* ``vertical_decrypt`` – bank: ``VectorDecryptor.decrypt`` of the p masked sums.

Limits, the big-integer arithmetic each step cannot avoid:

* ``limit_residual_powmod_full`` – B × ``gmpy2.powmod(r, n, n²)``;
* ``limit_residual_powmod_djn`` – B × ``gmpy2.powmod(h_s, a, n²)``, a random
  ``DJN_EXPONENT_BITS``-bit a;
* ``limit_feature_mulmods`` – the modular multiplications Pippenger (window 4) needs for
  these exponents, counted from each feature's exponent bit length: windows × (B + 2·15)
  + 4·(windows − 1) squarings, executed as a chain of ``a * b % n²``;
* ``limit_mask_powmod_{full,djn}`` – p × the matching powmod;
* ``limit_decrypt`` – p × phe's CRT ``raw_decrypt``.

The last test (itself a benchmark, so ``--benchmark-only`` runs it) re-times every
step against its limit in alternating (ABBA) rounds. It then writes per-batch and per-epoch
seconds, the ratios and the full vs DJN epoch totals to ``benchmarks/results/vertical.md``.
It asserts that each step is within 1.5x of its limit and that DJN encryption is faster
than full encryption. The 1.5x check uses the lower of two ratios: the ratio of the minima,
and the median of the ABBA rounds' back-to-back ratios. An epoch is ceil(N/B) = 24 batches: 23 of 1024 rows and one of 448.
Per-row work (residual encryption) scales by N/B rows. The feature sums scale by the
Pippenger multiplication count of every batch of the epoch. Per-batch work (masks, decrypt)
scales by 24.
"""

from __future__ import annotations

import itertools
import math
import os
import platform
import secrets
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import gmpy2
import numpy as np
import phe
import pytest

from fedrisk.crypto.hetero import (
    FEATURE_FRAC_BITS,
    RESIDUAL_FRAC_BITS,
    WINDOW,
    decode_signed,
    encode_signed,
    encrypted_feature_sums,
    feature_exponents,
)
from fedrisk.crypto.paillier import (
    DJN_EXPONENT_BITS,
    ObfuscatorPool,
    VectorCipher,
    VectorDecryptor,
    generate_keypair,
    release_gil,
)
from fedrisk.data.split import Standardizer, split_indices
from fedrisk.data.vertical import load_vertical
from fedrisk.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "vertical.toml"
PROVIDER = "provider"
N_TRAIN = 24_000  # expected aligned training customers (checked against the data)
B = 1024  # batch size (checked against the scenario)
P = 10  # provider features (checked against the data)
KEY_BITS = 2048
MAX_OVER_LIMIT = 1.5  # acceptance: every step within 1.5x of its limit
FULL_ROUNDS = 2  # a full-obfuscation batch is ~10-12 s: two rounds per side
DJN_ROUNDS = 3
ABBA_ROUNDS = 6  # alternating step/limit rounds in the acceptance test (encryption)
ABBA_ROUNDS_CHEAP = 16  # ... and for the cheap steps (sums, masks, decrypt: < 0.2 s each)
ABBA_SLICE_FULL = 64  # residuals per ABBA round (full), scaled to B per ciphertext
ABBA_SLICE_DJN = 256  # residuals per ABBA round (DJN), scaled to B per ciphertext
RESULTS = Path(__file__).resolve().parent / "results" / "vertical.md"
KEY = "vertical:"  # prefix in the session-wide store (paillier has its own limit_decrypt)


# --------------------------------------------------------------------------------------
# The code being measured (module-level so every benchmark times exactly these).
# --------------------------------------------------------------------------------------


def bank_encrypt_residuals(cipher: VectorCipher, d: np.ndarray, n: int) -> list:
    """Bank, step b of a batch: one ciphertext per residual (``_run_bank``)."""
    return cipher.encrypt(encode_signed(d, RESIDUAL_FRAC_BITS, n))


def party_feature_sums(residuals: list, X: np.ndarray, nsq) -> list:
    """Provider, step c: Enc(Σ_i d_i x_ij) for its p features (Pippenger)."""
    return encrypted_feature_sums(residuals, X, nsq)


def party_mask_sums(cipher: VectorCipher, sums: list, n: int, nsq) -> tuple[list, list]:
    """Provider, step c: fresh masks R_j encrypted into the sums (the ``train`` handler)."""
    width = (n.bit_length() + 7) // 8 + 16  # extra bytes: no modulo bias
    masks = [int.from_bytes(secrets.token_bytes(width), "big") % n for _ in sums]
    return [s * e % nsq for s, e in zip(sums, cipher.encrypt(masks))], masks


def bank_decrypt(decryptor: VectorDecryptor, masked: list) -> list[int]:
    """Bank, step d: decrypt G_j + R_j."""
    return decryptor.decrypt(masked)


def limit_powmod_full(rs: list, n, nsq) -> list:
    return [gmpy2.powmod(r, n, nsq) for r in rs]


def limit_powmod_djn(hs, exponents: list, nsq) -> list:
    return [gmpy2.powmod(hs, a, nsq) for a in exponents]


def limit_mulmods(bases: list, count: int, nsq):
    acc = gmpy2.mpz(1)
    for b in itertools.islice(itertools.cycle(bases), count):
        acc = acc * b % nsq
    return acc


def limit_decrypt(private_key, ciphertexts: list[int]) -> list[int]:
    return [private_key.raw_decrypt(c) for c in ciphertexts]


def pippenger_mulmods(X: np.ndarray) -> int:
    """Multiplications mod n² Pippenger (window 4) needs for these features' exponents:
    per feature, windows × (rows + 2·15) + 4 · (windows − 1) squarings."""
    exps, _ = feature_exponents(X)
    rows, buckets = exps.shape[0], (1 << WINDOW) - 1
    total = 0
    for top in exps.max(axis=0).tolist():
        windows = math.ceil(int(top).bit_length() / WINDOW)
        total += windows * (rows + 2 * buckets) + WINDOW * max(windows - 1, 0)
    return total


def implementation_mulmods(X: np.ndarray) -> int:
    """What ``encrypted_feature_sums`` actually multiplies (for the report): per window one
    per non-zero digit + 15 running totals + 1 into the accumulator, the squarings, B for
    Σ d_i and one unshift per feature (its short powmod is not counted)."""
    exps, _ = feature_exponents(X)
    mask = (1 << WINDOW) - 1
    total = exps.shape[0] + exps.shape[1]
    for j in range(exps.shape[1]):
        col = exps[:, j]
        windows = math.ceil(int(col.max()).bit_length() / WINDOW)
        for w in range(windows):
            total += int(np.count_nonzero((col >> (w * WINDOW)) & mask)) + mask + 1
        total += WINDOW * (windows - 1)
    return total


# --------------------------------------------------------------------------------------
# Shared (module-scoped) setup: the bundled workload, keys, ciphertexts, correctness.
# --------------------------------------------------------------------------------------


@dataclass
class Workload:
    X_train: np.ndarray  # provider features of the N training rows, z-scored on them
    order: np.ndarray  # epoch-1 row order, as the bank draws it
    X: np.ndarray  # the benchmarked batch: first B rows of the order (B × P)
    d: np.ndarray  # the batch's residuals (float)
    scenario_obfuscation: str

    @property
    def n_train(self) -> int:
        return self.X_train.shape[0]

    @property
    def n_batches(self) -> int:
        return math.ceil(self.n_train / B)

    @property
    def epoch_rows_factor(self) -> float:
        """Per-row work: an epoch is N/B batches' worth of rows."""
        return self.n_train / B

    def epoch_batches(self):
        for start in range(0, self.n_train, B):
            yield self.X_train[self.order[start : start + B]]

    @property
    def expected_sums(self) -> list[int]:
        """X_qᵀ·D in fixed point, exact Python integers (the scale is 2^(r+f))."""
        exps, offset = feature_exponents(self.X)
        Xq = (exps - offset).astype(object)
        D = np.rint(self.d * 2.0**RESIDUAL_FRAC_BITS).astype(np.int64).astype(object)
        return [int(v) for v in Xq.T @ D]


@pytest.fixture(scope="module")
def workload() -> Workload:
    s = load_scenario(SCENARIO)
    assert s.model.batch_size == B and s.privacy.key_bits == KEY_BITS
    tables = load_vertical(s)
    bank = tables.parties[0]
    (provider,) = [t for t in tables.parties if t.name == PROVIDER]
    assert provider.n_features == P
    # The alignment, split and epoch order of _run_bank (PSI finds every customer here).
    shared = sorted(set(bank.ids.tolist()) & set(provider.ids.tolist()))
    bank_pos = {i: k for k, i in enumerate(bank.ids.tolist())}
    prov_pos = {i: k for k, i in enumerate(provider.ids.tolist())}
    y_all = bank.y[np.array([bank_pos[i] for i in shared])]
    tr, _te = split_indices(y_all, s.data.test_fraction, s.seed)
    assert len(tr) == N_TRAIN
    rows = np.array([prov_pos[shared[i]] for i in tr])
    X_train = Standardizer().fit(provider.X[rows]).transform(provider.X[rows])
    order = np.random.default_rng([s.seed, 8, 1]).permutation(len(tr))
    batch = order[:B]
    y = y_all[tr][batch].astype(np.float64)
    u = np.random.default_rng(20240612).normal(-1.3, 0.9, size=B)  # a mid-training score
    d = 0.25 * u - 0.5 * (2 * y - 1)
    return Workload(X_train, order, X_train[batch], d, s.privacy.obfuscation)


@pytest.fixture(scope="module")
def keys():
    release_gil()  # the ciphers set this on first use; set it for the limits too
    return generate_keypair(KEY_BITS)


@dataclass
class Vertical:
    public_key: object
    private_key: object
    n: int
    nsq: gmpy2.mpz
    decryptor: VectorDecryptor
    residuals: list  # the batch's encrypted residuals (DJN; cost does not depend on it)
    sums: list  # encrypted feature sums
    masked: list  # masked sums as the bank receives them
    masked_int: list[int]
    expected: list[int]  # X_qᵀ·D

    def cipher(self, obfuscation: str) -> VectorCipher:
        """A cipher with an empty pool: every obfuscator is computed online."""
        return VectorCipher(self.public_key, ObfuscatorPool(self.public_key, obfuscation))

    def check_sums(self, sums: list) -> None:
        """Decrypted feature sums == X_qᵀ·D exactly."""
        got = [decode_signed(v, self.n) for v in self.decryptor.decrypt(sums)]
        assert got == self.expected

    def check_masked(self, plain: list[int], masks: list[int]) -> None:
        got = [decode_signed(v - m, self.n) for v, m in zip(plain, masks)]
        assert got == self.expected


@pytest.fixture(scope="module")
def vert(keys, workload) -> Vertical:
    public_key, private_key = keys
    n, nsq = public_key.n, gmpy2.mpz(public_key.nsquare)
    decryptor = VectorDecryptor(private_key)
    setup = Vertical(
        public_key, private_key, n, nsq, decryptor, [], [], [], [], workload.expected_sums
    )
    cipher = setup.cipher("djn")
    residuals = bank_encrypt_residuals(cipher, workload.d, n)
    sums = party_feature_sums(residuals, workload.X, nsq)
    # A benchmark of wrong code is worthless: the gradient must be exact before we time it.
    setup.check_sums(sums)
    masked, masks = party_mask_sums(cipher, sums, n, nsq)
    plain = bank_decrypt(decryptor, masked)
    setup.check_masked(plain, masks)
    # ... and it is the gradient the party applies: X_qᵀ·D / (2^(r+f) B) ≈ Xᵀd / B.
    grad = np.array(setup.expected, dtype=np.float64) / (
        2.0 ** (RESIDUAL_FRAC_BITS + FEATURE_FRAC_BITS) * B
    )
    np.testing.assert_allclose(grad, workload.X.T @ workload.d / B, rtol=0, atol=1e-3)
    setup.residuals, setup.sums, setup.masked = residuals, sums, masked
    setup.masked_int = [int(c) for c in masked]
    return setup


@dataclass
class LimitInputs:
    n: gmpy2.mpz
    nsq: gmpy2.mpz
    rs: list  # B random r in [1, n)
    hs: gmpy2.mpz  # h_s = (−x²)^n mod n², as ObfuscatorPool("djn") makes it
    djn_exponents: list  # B random DJN_EXPONENT_BITS-bit a
    mulmods: int  # Pippenger count for the benchmarked batch


@pytest.fixture(scope="module")
def limit(keys, workload) -> LimitInputs:
    public_key, _ = keys
    n, nsq = gmpy2.mpz(public_key.n), gmpy2.mpz(public_key.nsquare)
    rs = [gmpy2.mpz(secrets.randbelow(public_key.n - 1) + 1) for _ in range(B)]
    x = gmpy2.mpz(secrets.randbelow(public_key.n - 2) + 2)
    hs = gmpy2.powmod(-(x * x) % n, n, nsq)
    exps = [gmpy2.mpz(secrets.randbits(DJN_EXPONENT_BITS)) for _ in range(B)]
    return LimitInputs(n, nsq, rs, hs, exps, pippenger_mulmods(workload.X))


# --------------------------------------------------------------------------------------
# Bank: encrypt B residuals
# --------------------------------------------------------------------------------------


def _bench_encrypt_residuals(benchmark, bench_store, vert, workload, obfuscation: str):
    cipher = vert.cipher(obfuscation)
    rounds = FULL_ROUNDS if obfuscation == "full" else DJN_ROUNDS
    cts = benchmark.pedantic(
        bank_encrypt_residuals, args=(cipher, workload.d, vert.n), rounds=rounds, iterations=1
    )
    assert len(cts) == B and len(cipher.pool) == 0  # all obfuscators computed online
    vert.check_sums(party_feature_sums(cts, workload.X, vert.nsq))  # every residual right
    benchmark.extra_info.update(ciphertexts=B)
    bench_store.record(f"{KEY}vertical_encrypt_residuals_{obfuscation}", benchmark)


@pytest.mark.benchmark(group="vertical: bank encrypts B residuals")
def test_vertical_encrypt_residuals_full(benchmark, bench_store, vert, workload):
    _bench_encrypt_residuals(benchmark, bench_store, vert, workload, "full")


@pytest.mark.benchmark(group="vertical: bank encrypts B residuals")
def test_vertical_encrypt_residuals_djn(benchmark, bench_store, vert, workload):
    _bench_encrypt_residuals(benchmark, bench_store, vert, workload, "djn")


@pytest.mark.benchmark(group="vertical: bank encrypts B residuals")
def test_limit_residual_powmod_full(benchmark, bench_store, limit):
    out = benchmark.pedantic(
        limit_powmod_full, args=(limit.rs, limit.n, limit.nsq), rounds=FULL_ROUNDS, iterations=1
    )
    assert len(out) == B
    bench_store.record(f"{KEY}limit_residual_powmod_full", benchmark)


@pytest.mark.benchmark(group="vertical: bank encrypts B residuals")
def test_limit_residual_powmod_djn(benchmark, bench_store, limit):
    out = benchmark.pedantic(
        limit_powmod_djn,
        args=(limit.hs, limit.djn_exponents, limit.nsq),
        rounds=DJN_ROUNDS,
        iterations=1,
    )
    assert len(out) == B
    bench_store.record(f"{KEY}limit_residual_powmod_djn", benchmark)


# --------------------------------------------------------------------------------------
# Provider: p encrypted feature sums, then p masks
# --------------------------------------------------------------------------------------


@pytest.mark.benchmark(group="vertical: provider feature sums (p Pippenger multiexps)")
def test_vertical_feature_sums(benchmark, bench_store, vert, workload):
    sums = benchmark(party_feature_sums, vert.residuals, workload.X, vert.nsq)
    vert.check_sums(sums)
    benchmark.extra_info.update(
        features=P, rows=B, implementation_mulmods=implementation_mulmods(workload.X)
    )
    bench_store.record(f"{KEY}vertical_feature_sums", benchmark)


@pytest.mark.benchmark(group="vertical: provider feature sums (p Pippenger multiexps)")
def test_limit_feature_mulmods(benchmark, bench_store, vert, limit):
    benchmark(limit_mulmods, vert.residuals, limit.mulmods, limit.nsq)
    benchmark.extra_info.update(mulmods=limit.mulmods)
    bench_store.record(f"{KEY}limit_feature_mulmods", benchmark)


def _bench_mask_sums(benchmark, bench_store, vert, obfuscation: str):
    cipher = vert.cipher(obfuscation)
    masked, masks = benchmark(party_mask_sums, cipher, vert.sums, vert.n, vert.nsq)
    assert len(cipher.pool) == 0
    vert.check_masked(bank_decrypt(vert.decryptor, masked), masks)
    bench_store.record(f"{KEY}vertical_mask_sums_{obfuscation}", benchmark)


@pytest.mark.benchmark(group="vertical: provider masks p sums")
def test_vertical_mask_sums_full(benchmark, bench_store, vert):
    _bench_mask_sums(benchmark, bench_store, vert, "full")


@pytest.mark.benchmark(group="vertical: provider masks p sums")
def test_vertical_mask_sums_djn(benchmark, bench_store, vert):
    _bench_mask_sums(benchmark, bench_store, vert, "djn")


@pytest.mark.benchmark(group="vertical: provider masks p sums")
def test_limit_mask_powmod_full(benchmark, bench_store, limit):
    benchmark(limit_powmod_full, limit.rs[:P], limit.n, limit.nsq)
    bench_store.record(f"{KEY}limit_mask_powmod_full", benchmark)


@pytest.mark.benchmark(group="vertical: provider masks p sums")
def test_limit_mask_powmod_djn(benchmark, bench_store, limit):
    benchmark(limit_powmod_djn, limit.hs, limit.djn_exponents[:P], limit.nsq)
    bench_store.record(f"{KEY}limit_mask_powmod_djn", benchmark)


# --------------------------------------------------------------------------------------
# Bank: decrypt p masked sums
# --------------------------------------------------------------------------------------


@pytest.mark.benchmark(group="vertical: bank decrypts p masked sums")
def test_vertical_decrypt(benchmark, bench_store, vert):
    plain = benchmark(bank_decrypt, vert.decryptor, vert.masked)
    assert len(plain) == P
    bench_store.record(f"{KEY}vertical_decrypt", benchmark)


@pytest.mark.benchmark(group="vertical: bank decrypts p masked sums")
def test_limit_decrypt(benchmark, bench_store, vert):
    benchmark(limit_decrypt, vert.private_key, vert.masked_int)
    bench_store.record(f"{KEY}limit_decrypt", benchmark)


# --------------------------------------------------------------------------------------
# Acceptance and the per-epoch table (a benchmark itself, so --benchmark-only runs it).
# --------------------------------------------------------------------------------------


def _perf(fn, repeat: int) -> dict:
    """Fallback timing when a benchmark above did not run (e.g. ``-k``)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return {
        "min": min(times),
        "median": statistics.median(times),
        "rounds": repeat,
        "source": "perf_counter",
    }


def _s(seconds: float) -> str:
    if seconds >= 10:
        return f"{seconds:,.1f}"
    if seconds >= 1:
        return f"{seconds:.2f}"
    if seconds >= 0.01:
        return f"{seconds:.3f}"
    return f"{seconds:.4f}"


@dataclass
class Step:
    name: str  # benchmark name of the measured step
    limit: str  # benchmark name of its limit
    label: str  # row label in the table
    epoch_factor: float  # epoch time = batch time × this
    step_fn: object  # one ABBA round of the step ...
    limit_fn: object  # ... and of its limit
    abba_scale: float  # ABBA time × this = time for the whole batch
    abba_rounds: int = ABBA_ROUNDS_CHEAP


@pytest.mark.benchmark(group="vertical: acceptance")
def test_vertical_epoch_meets_limits(benchmark, bench_store, keys, workload, vert, limit):
    n, nsq = vert.n, vert.nsq
    ciphers = {ob: vert.cipher(ob) for ob in ("full", "djn")}
    d_full, d_djn = workload.d[:ABBA_SLICE_FULL], workload.d[:ABBA_SLICE_DJN]

    # The benchmark itself: the provider's whole step (sums + DJN masks) on the batch.
    def provider_step():
        return party_mask_sums(
            ciphers["djn"], party_feature_sums(vert.residuals, workload.X, nsq), n, nsq
        )

    masked, masks = benchmark.pedantic(provider_step, rounds=3, iterations=1)
    vert.check_masked(bank_decrypt(vert.decryptor, masked), masks)

    # Epoch scaling: 24 batches (23 × 1024 rows + 1 × 448); the feature sums by the
    # Pippenger count of each of the epoch's batches (windows depend on each batch's max).
    epoch_mulmods = sum(pippenger_mulmods(Xb) for Xb in workload.epoch_batches())
    rows_f, batches_f = workload.epoch_rows_factor, float(workload.n_batches)
    mulmod_f = epoch_mulmods / limit.mulmods

    steps = [
        Step(
            "vertical_encrypt_residuals_full",
            "limit_residual_powmod_full",
            f"bank: encrypt {B} residuals, full r^n",
            rows_f,
            lambda: bank_encrypt_residuals(ciphers["full"], d_full, n),
            lambda: limit_powmod_full(limit.rs[:ABBA_SLICE_FULL], limit.n, nsq),
            B / ABBA_SLICE_FULL,
            ABBA_ROUNDS,
        ),
        Step(
            "vertical_encrypt_residuals_djn",
            "limit_residual_powmod_djn",
            f"bank: encrypt {B} residuals, DJN",
            rows_f,
            lambda: bank_encrypt_residuals(ciphers["djn"], d_djn, n),
            lambda: limit_powmod_djn(limit.hs, limit.djn_exponents[:ABBA_SLICE_DJN], nsq),
            B / ABBA_SLICE_DJN,
            ABBA_ROUNDS,
        ),
        Step(
            "vertical_feature_sums",
            "limit_feature_mulmods",
            f"provider: {P} encrypted feature sums (Pippenger)",
            mulmod_f,
            lambda: party_feature_sums(vert.residuals, workload.X, nsq),
            lambda: limit_mulmods(vert.residuals, limit.mulmods, nsq),
            1.0,
        ),
        Step(
            "vertical_mask_sums_full",
            "limit_mask_powmod_full",
            f"provider: mask {P} sums, full r^n",
            batches_f,
            lambda: party_mask_sums(ciphers["full"], vert.sums, n, nsq),
            lambda: limit_powmod_full(limit.rs[:P], limit.n, nsq),
            1.0,
        ),
        Step(
            "vertical_mask_sums_djn",
            "limit_mask_powmod_djn",
            f"provider: mask {P} sums, DJN",
            batches_f,
            lambda: party_mask_sums(ciphers["djn"], vert.sums, n, nsq),
            lambda: limit_powmod_djn(limit.hs, limit.djn_exponents[:P], nsq),
            1.0,
        ),
        Step(
            "vertical_decrypt",
            "limit_decrypt",
            f"bank: decrypt {P} masked sums",
            batches_f,
            lambda: bank_decrypt(vert.decryptor, vert.masked),
            lambda: limit_decrypt(vert.private_key, vert.masked_int),
            1.0,
        ),
    ]

    # Whatever benchmark did not run (``-k``, --benchmark-disable) is timed here.
    res = bench_store.results
    fallbacks = {
        "vertical_encrypt_residuals_full": (
            lambda: bank_encrypt_residuals(vert.cipher("full"), workload.d, n),
            1,
        ),
        "vertical_encrypt_residuals_djn": (
            lambda: bank_encrypt_residuals(vert.cipher("djn"), workload.d, n),
            2,
        ),
        "limit_residual_powmod_full": (lambda: limit_powmod_full(limit.rs, limit.n, nsq), 1),
        "limit_residual_powmod_djn": (
            lambda: limit_powmod_djn(limit.hs, limit.djn_exponents, nsq),
            2,
        ),
    }
    for st in steps:
        fallbacks.setdefault(st.name, (st.step_fn, 5))
        fallbacks.setdefault(st.limit, (st.limit_fn, 5))
    for key, (fn, repeat) in fallbacks.items():
        if KEY + key not in res:
            res[KEY + key] = _perf(fn, repeat)
    assert all(len(c.pool) == 0 for c in ciphers.values())

    # The shared machine's load drifts over the ~1.5 min of this file, so a step and its
    # limit may have been benchmarked under different load. Time them again here,
    # alternating (ABBA), so both see the same conditions. The residual encryptions use a
    # slice of the batch, scaled per ciphertext (a full-obfuscation batch is ~10 s).
    abba = {st.name: {"step": [], "limit": []} for st in steps}
    for i in range(max(st.abba_rounds for st in steps)):
        for st in steps:
            if i >= st.abba_rounds:
                continue
            for side in ("step", "limit") if i % 2 == 0 else ("limit", "step"):
                fn = st.step_fn if side == "step" else st.limit_fn
                started = time.perf_counter()
                fn()
                abba[st.name][side].append((time.perf_counter() - started) * st.abba_scale)

    # Every timing is the true cost plus non-negative noise: each side's batch time is the
    # minimum over the benchmark's rounds and the alternating rounds. When other jobs keep
    # both cores busy, no round of a short step may run undisturbed, and the two minima
    # can then come from different load. Each alternating round times the step and its
    # limit back to back, under the same load, so the median of those paired ratios is the
    # second estimate. The acceptance check uses the lower of the two estimates; the table
    # shows both.
    rows, best = [], {}
    for st in steps:
        meas = min(res[KEY + st.name]["min"], min(abba[st.name]["step"]))
        lim = min(res[KEY + st.limit]["min"], min(abba[st.name]["limit"]))
        paired = statistics.median(
            a / b for a, b in zip(abba[st.name]["step"], abba[st.name]["limit"])
        )
        best[st.name] = (meas, lim, st.epoch_factor)
        rows.append((st, meas, lim, paired))

    def epoch_total(names: list[str]) -> tuple[float, float]:
        return (
            sum(best[k][0] * best[k][2] for k in names),
            sum(best[k][1] * best[k][2] for k in names),
        )

    totals = {
        ob: epoch_total(
            [
                f"vertical_encrypt_residuals_{ob}",
                "vertical_feature_sums",
                f"vertical_mask_sums_{ob}",
                "vertical_decrypt",
            ]
        )
        for ob in ("full", "djn")
    }
    batch_totals = {
        ob: (sum(best[k][0] for k in names), sum(best[k][1] for k in names))
        for ob, names in (
            (
                ob,
                [
                    f"vertical_encrypt_residuals_{ob}",
                    "vertical_feature_sums",
                    f"vertical_mask_sums_{ob}",
                    "vertical_decrypt",
                ],
            )
            for ob in ("full", "djn")
        )
    }

    last_rows = workload.n_train - (workload.n_batches - 1) * B
    per_ct = {ob: best[f"vertical_encrypt_residuals_{ob}"][0] / B for ob in ("full", "djn")}
    per_mulmod = best["vertical_feature_sums"][1] / limit.mulmods
    impl = implementation_mulmods(workload.X)
    lines = [
        f"Vertical hetero LR, one provider (p = {P} features), bundled data: N = "
        f"{workload.n_train:,} training customers, B = {B}, Paillier {KEY_BITS}-bit; "
        f"seconds, min over rounds ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, phe {phe.__version__}, "
        f"gmpy2 {gmpy2.version()})",
        "",
        "| step | batch: measured | batch: limit | ratio | epoch: measured | epoch: limit "
        "| ratio, paired ABBA median |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {st.label} | {_s(m)} | {_s(lim)} | {m / lim:.3f}x | {_s(m * st.epoch_factor)} "
            f"| {_s(lim * st.epoch_factor)} | {alt:.3f}x |"
            for st, m, lim, alt in rows
        ),
        *(
            f"| **total, {ob} obfuscation** | {_s(batch_totals[ob][0])} | "
            f"{_s(batch_totals[ob][1])} | {batch_totals[ob][0] / batch_totals[ob][1]:.3f}x | "
            f"**{_s(totals[ob][0])}** | {_s(totals[ob][1])} | |"
            for ob in ("full", "djn")
        ),
        "",
        f"- epoch = {workload.n_batches} batches ({workload.n_batches - 1} × {B} rows + 1 × "
        f"{last_rows}): residual encryption × {rows_f:g} (rows / B), feature sums × "
        f"{mulmod_f:.4f} (Pippenger count of the epoch, {epoch_mulmods:,}, over the batch's), "
        f"masks and decryption × {workload.n_batches} (per batch).",
        f"- epoch total, full vs DJN: **{_s(totals['full'][0])} s vs {_s(totals['djn'][0])} s "
        f"({totals['full'][0] / totals['djn'][0]:.1f}x)**; residual encryption alone "
        f"{per_ct['full'] / per_ct['djn']:.1f}x faster with DJN "
        f"({per_ct['full'] * 1e3:.2f} vs {per_ct['djn'] * 1e3:.2f} ms per ciphertext). The "
        f'scenario uses obfuscation = "{workload.scenario_obfuscation}".',
        f"- feature-sum limit: {limit.mulmods:,} mulmods mod n² for the batch (windows × "
        f"(B + 30) + squarings, from each feature's exponent bit length; "
        f"{per_mulmod * 1e6:.2f} µs each). The implementation does {impl:,} (zero digits "
        f"skipped, 16 instead of 30 per window, plus B for Σ d_i and p unshifts).",
        f"- measured = min over the benchmark rounds and the alternating (ABBA) rounds of "
        f"step and limit in the acceptance test ({ABBA_ROUNDS} for the residual encryption, "
        f"{ABBA_ROUNDS_CHEAP} for the rest; residual encryption there on "
        f"{ABBA_SLICE_FULL} (full) / {ABBA_SLICE_DJN} (DJN) residuals, scaled to {B}). "
        f"The last column is the median over those rounds of step / limit timed back to back. "
        f"Required: for every step, the lower of the two ratios ≤ {MAX_OVER_LIMIT:g}x; DJN "
        f"encryption faster than full.",
        "- not in the table: serialisation (to/from bytes) and the plaintext numpy work.",
        "- rounds: "
        + ", ".join(
            f"{k.removeprefix(KEY)} {v['rounds']}"
            + ("" if v["source"] == "pytest-benchmark" else " (perf_counter)")
            for k, v in res.items()
            if k.startswith(KEY)
        )
        + ".",
    ]
    table = "\n".join(lines)
    print("\n" + table)
    bench_store.tables.append(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        "# Vertical (hetero LR) cryptography benchmark: one epoch vs its limit\n\n"
        "Written by `python -m pytest benchmarks/test_bench_vertical.py "
        "--benchmark-only`.\n\n" + table + "\n"
    )

    benchmark.extra_info.update(epoch_full_s=totals["full"][0], epoch_djn_s=totals["djn"][0])
    over = {st.name: min(m / lim, paired) for st, m, lim, paired in rows}
    bad = {k: round(v, 3) for k, v in over.items() if v > MAX_OVER_LIMIT}
    assert not bad, f"steps over {MAX_OVER_LIMIT}x their limit: {bad}"
    assert per_ct["djn"] < per_ct["full"], "DJN residual encryption is not faster than full"
    assert totals["djn"][0] < totals["full"][0]
