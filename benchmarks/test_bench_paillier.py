"""Paillier aggregation core: naive per-float phe vs the packed vectorised core vs its limit.

Workload: d = 1000 floats per client, k = 10 clients, 2048-bit keys.

* ``naive``  – python-paillier as documented: ``public_key.encrypt(float)`` per element
  (phe's own float encoding), the server adds k encrypted vectors element-wise with ``+``,
  the key holder calls ``private_key.decrypt`` per element.
* ``packed`` – fedrisk's core: ``FixedPointCodec`` (32-bit slots) + ``SlotPacker`` +
  ``VectorCipher`` / ``VectorDecryptor``: 63 slots per 2048-bit plaintext, 16 ciphertexts,
  as a bank runs it in the default shared-key mode (``privacy.key = "shared"``): the bank
  holds the private key, so its obfuscators take the CRT path, and batches use every core
  (GIL-free threads for the powmods, :mod:`fedrisk.crypto.workers`).
* ``limit``  – the raw gmpy2 / CRT arithmetic the packed core cannot avoid, for the same
  number of ciphertexts, on one core: encrypt = the lifted pair ``powmod(r mod p, p, p²)``
  and ``powmod(r mod q, q, q²)`` per ciphertext (the key holder's new limit; the old
  limit, one ``powmod(r, n, n²)``, is shown beside it), one mulmod per ciphertext per extra
  client (aggregate), one CRT ``raw_decrypt`` per ciphertext (decrypt).

The last test benchmarks the full packed round trip and checks the acceptance criteria
against timings from this same session: packed total ≥ 150x faster than naive, and within
1.5x of the (one-core) limit. It writes the result table to ``benchmarks/results/paillier.md``.
"""

from __future__ import annotations

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
from arithmetic_limits import limit_decrypt, limit_lifted_pair_full, limit_powmod_full

from fedrisk.crypto.encoding import FixedPointCodec, SlotPacker
from fedrisk.crypto.paillier import (
    ObfuscatorPool,
    VectorCipher,
    VectorDecryptor,
    ciphertext_bytes,
    generate_keypair,
)
from fedrisk.crypto.threshold import ThresholdKeys, deal
from fedrisk.crypto.workers import worker_count

D = 1000  # floats per client vector
K = 10  # clients (summands)
KEY_BITS = 2048
CLIP = 1.0
SLOT_BITS = 32
MIN_SPEEDUP = 150.0  # acceptance: packed total at least 150x faster than naive total
MAX_OVER_LIMIT = 1.5  # acceptance: packed total within 1.5x of the limit total
PRECOMPUTED_ROUNDS = 12
INTERLEAVED_ROUNDS = 6  # alternating whole-pipeline rounds of packed and limit (~2.5 s)
RESULTS = Path(__file__).resolve().parent / "results" / "paillier.md"
THRESHOLD_BANKS = 5  # threshold key: t = 3 of 5 banks (a majority)


# --------------------------------------------------------------------------------------
# The code being measured (module-level so every benchmark times exactly these).
# --------------------------------------------------------------------------------------


def naive_encrypt(public_key, x: np.ndarray) -> list:
    return [public_key.encrypt(float(v)) for v in x]


def naive_aggregate(vectors: list[list]) -> list:
    total = list(vectors[0])
    for vec in vectors[1:]:
        total = [a + b for a, b in zip(total, vec)]
    return total


def naive_decrypt(private_key, ciphertexts: list) -> list[float]:
    return [private_key.decrypt(c) for c in ciphertexts]


def packed_encrypt(
    codec: FixedPointCodec, packer: SlotPacker, cipher: VectorCipher, x: np.ndarray
) -> list:
    values, _clipped = codec.encode(x)
    return cipher.encrypt(packer.pack(values))


def packed_decrypt(
    codec: FixedPointCodec,
    packer: SlotPacker,
    decryptor: VectorDecryptor,
    ciphertexts: list,
    total_weight: int,
) -> np.ndarray:
    sums = packer.unpack(decryptor.decrypt(ciphertexts), D)
    return codec.decode_sum(sums, total_weight)


def threshold_partials(keys: ThresholdKeys, ciphertexts: list, rnd: int = 1) -> dict:
    """t banks' partial decryptions (each bank computes its own, in parallel in a real
    federation; here one after the other)."""
    return {s.index: s.partial_decrypt(ciphertexts, rnd) for s in keys.shares[: keys.threshold]}


def threshold_decrypt(
    codec: FixedPointCodec, packer: SlotPacker, keys: ThresholdKeys, ciphertexts: list, k: int
) -> np.ndarray:
    """t partial decryptions + their combination + unpack + decode (a threshold key)."""
    partials = threshold_partials(keys, ciphertexts)
    plain = keys.shares[0].combine(partials, 1, ciphertexts)
    return codec.decode_sum(packer.unpack(plain, D), k)


def packed_roundtrip(p: PackedSetup, x: np.ndarray) -> np.ndarray:
    """One client encrypts, the server adds it to the other K-1 clients', the key holder decodes."""
    mine = packed_encrypt(p.codec, p.packer, p.cipher, x)
    total = p.cipher.add(mine, *p.ciphertexts[1:])
    return packed_decrypt(p.codec, p.packer, p.decryptor, total, K)


def limit_aggregate(pairs: list, nsq) -> list:
    return [a * b % nsq for a, b in pairs]


# --------------------------------------------------------------------------------------
# Shared (module-scoped) setup: keys, inputs, packed ciphertexts, the naive vector.
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys():
    return generate_keypair(KEY_BITS)


@pytest.fixture(scope="module")
def floats() -> np.ndarray:
    """K client vectors of D floats; includes clipped values and worst-case slot sums."""
    rng = np.random.default_rng(20240611)
    x = rng.normal(0.0, 0.5, size=(K, D))  # ~4.6% of values fall outside ±CLIP
    x[:, :8] = CLIP  # every client at +clip: the slot sum hits its upper bound
    x[:, 8:16] = -CLIP  # every client at -clip: the slot sum is 0
    return x


@dataclass
class PackedSetup:
    codec: FixedPointCodec
    packer: SlotPacker
    cipher: VectorCipher
    decryptor: VectorDecryptor
    quantised_sum: np.ndarray  # int64, numpy sum of the K quantised inputs
    ciphertexts: list  # K distinct encrypted client vectors
    aggregate: list  # their homomorphic sum

    @property
    def n_ciphertexts(self) -> int:
        return self.packer.n_ints(D)

    def check_decoded(self, decoded: np.ndarray) -> None:
        """Decoded sum == numpy sum of the quantised inputs, bit for bit."""
        expected = self.quantised_sum.astype(np.float64) * self.codec.resolution
        assert decoded.dtype == np.float64 and decoded.shape == (D,)
        assert np.array_equal(decoded, expected)


@pytest.fixture(scope="module")
def packed(keys, floats) -> PackedSetup:
    public_key, private_key = keys
    codec = FixedPointCodec.finest(clip=CLIP, max_summands=K, slot_bits=SLOT_BITS)
    # a bank in shared-key mode holds the private key: CRT obfuscators; the pool is empty,
    # so every obfuscator is computed online
    cipher = VectorCipher(public_key, ObfuscatorPool(public_key, private_key=private_key))
    packer = SlotPacker.for_modulus(cipher.plaintext_bits, codec.slot_bytes)
    assert codec.slot_bytes == 4 and packer.slots_per_int == 63 and packer.n_ints(D) == 16
    decryptor = VectorDecryptor(private_key)

    # Packed encryption is cheap: K *distinct* client vectors (~0.2 s each).
    ciphertexts = [packed_encrypt(codec, packer, cipher, x) for x in floats]
    assert all(len(c) == packer.n_ints(D) for c in ciphertexts)
    quantised = np.stack([codec.quantize(x)[0] for x in floats])
    aggregate = cipher.add(*ciphertexts)
    setup = PackedSetup(
        codec, packer, cipher, decryptor, quantised.sum(axis=0), ciphertexts, aggregate
    )

    # A benchmark of wrong code is worthless: the packed sum must be exact before we time it.
    slots = packer.unpack(decryptor.decrypt(aggregate), D)
    assert np.array_equal(slots.astype(np.int64) - K * codec.magnitude, setup.quantised_sum)
    assert slots.max() == codec.sum_bound  # worst-case carry exercised, no spill
    setup.check_decoded(codec.decode_sum(slots, K))
    return setup


@dataclass
class ThresholdSetup:
    keys: ThresholdKeys
    aggregate: list  # the K packed client vectors' sum under the threshold key
    dealer_s: float


@pytest.fixture(scope="module")
def threshold(packed, floats) -> ThresholdSetup:
    """A dealt 2048-bit threshold key (t = 3 of 5) and the same packed aggregate under it."""
    keys = deal(KEY_BITS, THRESHOLD_BANKS)
    cipher = VectorCipher(keys.public_key)
    aggregate = cipher.add(
        *(packed_encrypt(packed.codec, packed.packer, cipher, x) for x in floats)
    )
    setup = ThresholdSetup(keys, aggregate, keys.dealer_seconds)
    packed.check_decoded(threshold_decrypt(packed.codec, packed.packer, keys, aggregate, K))
    return setup


class NaiveState:
    """The naive ciphertexts of client 0, encrypted once and shared (13 s per vector).

    The aggregation input is this one encrypted vector reused K times: the cost of phe's
    ``+`` (a mulmod of n² after aligning exponents) does not depend on the values. Reuse
    also means the K summands of each element carry the *same* phe exponent, i.e. the
    vectors are "encoded the same way for all" clients, so no ``decrease_exponent_to``
    (an extra powmod) is ever needed. Real clients encoding different floats with phe's
    default encoding get mismatched exponents and pay ~3x more (NOTES §2), so the naive
    aggregate measured here is a lower bound and the speed-up is conservative.
    """

    def __init__(self, public_key, private_key, x: np.ndarray) -> None:
        self.public_key, self.private_key, self.x = public_key, private_key, x
        self.ciphertexts: list | None = None
        self.aggregate: list | None = None

    def encrypted(self) -> list:
        if self.ciphertexts is None:
            self.ciphertexts = naive_encrypt(self.public_key, self.x)
        return self.ciphertexts

    def aggregation_input(self) -> list[list]:
        return [self.encrypted()] * K  # the same vector K times, see the class docstring

    def aggregated(self) -> list:
        if self.aggregate is None:
            self.aggregate = naive_aggregate(self.aggregation_input())
        return self.aggregate


@pytest.fixture(scope="module")
def naive(keys, floats) -> NaiveState:
    return NaiveState(*keys, floats[0])


@dataclass
class LimitInputs:
    rs: list  # one random r per ciphertext
    p: gmpy2.mpz
    q: gmpy2.mpz
    n: gmpy2.mpz
    nsq: gmpy2.mpz
    pairs: list  # (K-1) * n_ciphertexts operand pairs, one mulmod each
    aggregate: list  # packed aggregate as Python ints (raw_decrypt wants int)


@pytest.fixture(scope="module")
def limit(keys, packed) -> LimitInputs:
    public_key, private_key = keys
    n, nsq = gmpy2.mpz(public_key.n), gmpy2.mpz(public_key.nsquare)
    count = packed.n_ciphertexts  # from the packer, not a literal
    rs = [gmpy2.mpz(secrets.randbelow(public_key.n - 1) + 1) for _ in range(count)]
    first = packed.ciphertexts[0]
    pairs = [(a, b) for vec in packed.ciphertexts[1:] for a, b in zip(first, vec)]
    assert len(pairs) == (K - 1) * count
    p, q = gmpy2.mpz(private_key.p), gmpy2.mpz(private_key.q)
    return LimitInputs(rs, p, q, n, nsq, pairs, [int(c) for c in packed.aggregate])


# --------------------------------------------------------------------------------------
# (a) naive per-float phe
# --------------------------------------------------------------------------------------


@pytest.mark.benchmark(group="encrypt")
def test_naive_encrypt(benchmark, bench_store, naive):
    # ~13 s: once. The result is the vector every other naive benchmark reuses.
    cts = benchmark.pedantic(
        naive_encrypt, args=(naive.public_key, naive.x), rounds=1, iterations=1
    )
    assert len(cts) == D
    naive.ciphertexts = cts
    benchmark.extra_info.update(
        ciphertexts=D, bytes_per_client=D * ciphertext_bytes(naive.public_key)
    )
    bench_store.record("naive_encrypt", benchmark)


@pytest.mark.benchmark(group="aggregate")
def test_naive_aggregate(benchmark, bench_store, naive):
    vectors = naive.aggregation_input()
    total = benchmark.pedantic(naive_aggregate, args=(vectors,), rounds=3, iterations=1)
    naive.aggregate = total
    for i in (0, 8, 500, D - 1):  # spot check (each decrypt ~4 ms)
        assert naive.private_key.decrypt(total[i]) == pytest.approx(K * naive.x[i], rel=1e-12)
    bench_store.record("naive_aggregate", benchmark)


@pytest.mark.benchmark(group="decrypt")
def test_naive_decrypt(benchmark, bench_store, naive):
    total = naive.aggregated()
    out = benchmark.pedantic(naive_decrypt, args=(naive.private_key, total), rounds=1, iterations=1)
    np.testing.assert_allclose(out, K * naive.x, rtol=1e-12)
    bench_store.record("naive_decrypt", benchmark)


# --------------------------------------------------------------------------------------
# (b) packed vectorised core
# --------------------------------------------------------------------------------------


@pytest.mark.benchmark(group="encrypt")
def test_packed_encrypt(benchmark, bench_store, packed, floats):
    assert len(packed.cipher.pool) == 0  # no precomputed obfuscators: full online cost
    cts = benchmark(packed_encrypt, packed.codec, packed.packer, packed.cipher, floats[0])
    assert len(cts) == packed.n_ciphertexts
    benchmark.extra_info.update(
        ciphertexts=packed.n_ciphertexts,
        bytes_per_client=packed.n_ciphertexts * packed.cipher.width,
    )
    bench_store.record("packed_encrypt", benchmark)


@pytest.mark.benchmark(group="encrypt")
def test_packed_precomputed_encrypt(benchmark, bench_store, keys, packed, floats):
    """Online encryption when an ObfuscatorPool already holds every r^n mod n²."""
    public_key, _ = keys
    pool = ObfuscatorPool(public_key)
    cipher = VectorCipher(public_key, pool=pool)
    spare = 1
    pool.fill(spare)

    def refill():  # untimed: exactly one vector's worth of obfuscators per round
        assert len(pool) == spare, "previous round did not use precomputed obfuscators only"
        pool.fill(packed.n_ciphertexts)

    cts = benchmark.pedantic(
        packed_encrypt,
        args=(packed.codec, packed.packer, cipher, floats[0]),
        setup=refill,
        rounds=PRECOMPUTED_ROUNDS,
        iterations=1,
    )
    assert len(pool) == spare  # every round took n_ciphertexts precomputed entries, no fresh ones
    slots = packed.packer.unpack(packed.decryptor.decrypt(cts), D)
    assert np.array_equal(slots, packed.codec.encode(floats[0])[0])
    bench_store.record("packed_precomputed_encrypt", benchmark)


@pytest.mark.benchmark(group="aggregate")
def test_packed_aggregate(benchmark, bench_store, packed):
    total = benchmark(packed.cipher.add, *packed.ciphertexts)
    assert total == packed.aggregate
    bench_store.record("packed_aggregate", benchmark)


@pytest.mark.benchmark(group="decrypt")
def test_packed_decrypt(benchmark, bench_store, packed):
    decoded = benchmark(
        packed_decrypt, packed.codec, packed.packer, packed.decryptor, packed.aggregate, K
    )
    packed.check_decoded(decoded)
    bench_store.record("packed_decrypt", benchmark)


@pytest.mark.benchmark(group="decrypt")
def test_threshold_partial_decrypt(benchmark, bench_store, threshold):
    share = threshold.keys.shares[0]
    out = benchmark(share.partial_decrypt, threshold.aggregate, 1)
    assert len(out) == len(threshold.aggregate)
    bench_store.record("threshold_partial_decrypt", benchmark)


@pytest.mark.benchmark(group="decrypt")
def test_threshold_decrypt(benchmark, bench_store, packed, threshold):
    decoded = benchmark(
        threshold_decrypt, packed.codec, packed.packer, threshold.keys, threshold.aggregate, K
    )
    packed.check_decoded(decoded)
    bench_store.record("threshold_decrypt", benchmark)


# --------------------------------------------------------------------------------------
# (c) limit: the raw arithmetic that bounds (b)
# --------------------------------------------------------------------------------------


@pytest.mark.benchmark(group="encrypt")
def test_limit_encrypt(benchmark, bench_store, limit):
    out = benchmark(limit_lifted_pair_full, limit.rs, limit.p, limit.q)
    assert len(out) == len(limit.rs)
    bench_store.record("limit_encrypt", benchmark)


@pytest.mark.benchmark(group="encrypt")
def test_old_limit_encrypt(benchmark, bench_store, limit):
    out = benchmark(limit_powmod_full, limit.rs, limit.n, limit.nsq)
    assert len(out) == len(limit.rs)
    bench_store.record("old_limit_encrypt", benchmark)


@pytest.mark.benchmark(group="aggregate")
def test_limit_aggregate(benchmark, bench_store, limit):
    out = benchmark(limit_aggregate, limit.pairs, limit.nsq)
    assert len(out) == len(limit.pairs)
    bench_store.record("limit_aggregate", benchmark)


@pytest.mark.benchmark(group="decrypt")
def test_limit_decrypt(benchmark, bench_store, keys, limit):
    _, private_key = keys
    out = benchmark(limit_decrypt, private_key, limit.aggregate)
    assert len(out) == len(limit.aggregate)
    bench_store.record("limit_decrypt", benchmark)


# --------------------------------------------------------------------------------------
# Acceptance: ratios from this same session (this test is itself a benchmark, so
# ``--benchmark-only`` does not skip it).
# --------------------------------------------------------------------------------------


def _perf(fn, repeat: int, setup=None) -> dict:
    """Fallback timing when a benchmark above did not run (e.g. ``-k``, --benchmark-disable)."""
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()  # untimed
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return {
        "min": min(times),
        "median": statistics.median(times),
        "rounds": repeat,
        "source": "perf_counter",
    }


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    if ms >= 100:
        return f"{ms:,.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    return f"{ms:.2f}"


@pytest.mark.benchmark(group="roundtrip")
def test_packed_roundtrip_meets_acceptance_ratios(
    benchmark, bench_store, keys, floats, packed, naive, limit, threshold
):
    decoded = benchmark(packed_roundtrip, packed, floats[0])
    packed.check_decoded(decoded)
    bench_store.record("packed_roundtrip", benchmark)

    public_key, private_key = keys
    pool = ObfuscatorPool(public_key)
    pooled = VectorCipher(public_key, pool=pool)
    fallbacks = {  # measured here only if the matching benchmark did not run
        "naive_encrypt": (
            lambda: setattr(naive, "ciphertexts", naive_encrypt(public_key, naive.x)),
            1,
        ),
        "naive_aggregate": (lambda: naive_aggregate(naive.aggregation_input()), 3),
        "naive_decrypt": (lambda: naive_decrypt(private_key, naive.aggregated()), 1),
        "packed_encrypt": (
            lambda: packed_encrypt(packed.codec, packed.packer, packed.cipher, floats[0]),
            5,
        ),
        "packed_precomputed_encrypt": (
            lambda: packed_encrypt(packed.codec, packed.packer, pooled, floats[0]),
            5,
            lambda: pool.fill(packed.n_ciphertexts),
        ),
        "packed_aggregate": (lambda: packed.cipher.add(*packed.ciphertexts), 20),
        "packed_decrypt": (
            lambda: packed_decrypt(
                packed.codec, packed.packer, packed.decryptor, packed.aggregate, K
            ),
            5,
        ),
        "limit_encrypt": (lambda: limit_lifted_pair_full(limit.rs, limit.p, limit.q), 5),
        "old_limit_encrypt": (lambda: limit_powmod_full(limit.rs, limit.n, limit.nsq), 5),
        "limit_aggregate": (lambda: limit_aggregate(limit.pairs, limit.nsq), 20),
        "limit_decrypt": (lambda: limit_decrypt(private_key, limit.aggregate), 5),
        "packed_roundtrip": (lambda: packed_roundtrip(packed, floats[0]), 5),
        "threshold_partial_decrypt": (
            lambda: threshold.keys.shares[0].partial_decrypt(threshold.aggregate, 1),
            3,
        ),
        "threshold_decrypt": (
            lambda: threshold_decrypt(
                packed.codec, packed.packer, threshold.keys, threshold.aggregate, K
            ),
            3,
        ),
    }
    res = bench_store.results
    for key, (fn, repeat, *setup) in fallbacks.items():
        if key not in res:
            res[key] = _perf(fn, repeat, *setup)
    assert len(pool) == 0  # fallback precomputed rounds used pool entries only

    ops = ("encrypt", "aggregate", "decrypt")

    def total(family: str, stat: str) -> float:
        return sum(res[f"{family}_{op}"][stat] for op in ops)

    # The shared machine's load drifts over the ~30 s of this suite, so the component
    # benchmarks of packed and limit may have run under different load. Time the two whole
    # pipelines again here, alternating (ABBA), so both see the same conditions.
    def packed_pipeline():
        packed_roundtrip(packed, floats[0])

    def limit_pipeline():
        limit_lifted_pair_full(limit.rs, limit.p, limit.q)
        limit_aggregate(limit.pairs, limit.nsq)
        limit_decrypt(private_key, limit.aggregate)

    alternating = {"packed": [], "limit": []}
    for i in range(INTERLEAVED_ROUNDS):
        order = ("packed", "limit") if i % 2 == 0 else ("limit", "packed")
        for name in order:
            fn = packed_pipeline if name == "packed" else limit_pipeline
            started = time.perf_counter()
            fn()
            alternating[name].append(time.perf_counter() - started)

    # Every timing is the true cost plus non-negative noise, so the minimum over all the
    # measurements of the same work in this session is the tightest estimate of its cost:
    # the sum of the component benchmarks' mins, the whole-pipeline timings above, and
    # (packed) the round-trip benchmark. The naive encrypt and decrypt run once (13 s + 4 s):
    # noise during them can only inflate naive, so the medians are reported alongside.
    best = {
        "naive": total("naive", "min"),
        "packed": min(
            total("packed", "min"), res["packed_roundtrip"]["min"], min(alternating["packed"])
        ),
        "limit": min(total("limit", "min"), min(alternating["limit"])),
    }
    speedup = best["naive"] / best["packed"]
    speedup_median = total("naive", "median") / total("packed", "median")
    over_limit = best["packed"] / best["limit"]
    over_limit_alternating = min(alternating["packed"]) / min(alternating["limit"])
    over_limit_median = statistics.median(alternating["packed"]) / statistics.median(
        alternating["limit"]
    )

    width = ciphertext_bytes(public_key)
    n_ct = packed.n_ciphertexts
    workers = worker_count()
    mins = {k: v["min"] for k, v in res.items()}  # the table shows each benchmark's min
    old_extra = mins["old_limit_encrypt"] - mins["limit_encrypt"]  # only encrypt differs
    rows = [
        (
            "encrypt 1000 floats (one client)",
            mins["naive_encrypt"],
            mins["packed_encrypt"],
            mins["limit_encrypt"],
            mins["old_limit_encrypt"],
        ),
        (
            "aggregate 10 clients (server)",
            mins["naive_aggregate"],
            mins["packed_aggregate"],
            mins["limit_aggregate"],
            mins["limit_aggregate"],
        ),
        (
            "decrypt + decode the sum (key holder)",
            mins["naive_decrypt"],
            mins["packed_decrypt"],
            mins["limit_decrypt"],
            mins["limit_decrypt"],
        ),
        (
            "sum of the three rows above",
            total("naive", "min"),
            total("packed", "min"),
            total("limit", "min"),
            total("limit", "min") + old_extra,
        ),
        (
            "**total** (min over all timings of the pipeline)",
            best["naive"],
            best["packed"],
            best["limit"],
            best["limit"] + old_extra,
        ),
    ]
    lines = [
        f"Paillier {KEY_BITS}-bit, d = {D} floats, k = {K} clients; ms, min over rounds "
        f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, phe {phe.__version__}, gmpy2 {gmpy2.version()})",
        "",
        f"| operation | naive phe per float | packed ({workers} cores) | limit (gmpy2, one core) "
        "| old limit (one powmod per ciphertext) |",
        "|---|---:|---:|---:|---:|",
        *(f"| {name} | {_ms(a)} | {_ms(b)} | {_ms(c)} | {_ms(d)} |" for name, a, b, c, d in rows),
        f"| encrypt, obfuscators precomputed (online part only) | – | "
        f"{_ms(mins['packed_precomputed_encrypt'])} | – | – |",
        f"| threshold key: one bank's partial decryption of the sum | – | "
        f"{_ms(mins['threshold_partial_decrypt'])} | – | – |",
        f"| threshold key: t = {threshold.keys.threshold} of {THRESHOLD_BANKS} partials "
        f"+ combine + decode (vs the row 'decrypt + decode') | – | "
        f"{_ms(mins['threshold_decrypt'])} | – | – |",
        f"| ciphertexts per client | {D:,} | {n_ct} | {n_ct} | {n_ct} |",
        f"| bytes per client | {D * width:,} | {n_ct * width:,} | {n_ct * width:,} "
        f"| {n_ct * width:,} |",
        "",
        f"- packed layout: {packed.codec.slot_bytes}-byte slots, {packed.codec.frac_bits} "
        f"fractional bits, {packed.packer.slots_per_int} slots per plaintext, "
        f"{n_ct} ciphertexts of {width} bytes.",
        f"- speed-up naive/packed (totals): **{speedup:.1f}x** "
        f"(component medians: {speedup_median:.1f}x); required ≥ {MIN_SPEEDUP:g}x.",
        f"- packed/limit (totals): **{over_limit:.3f}x** (alternating pipelines: min "
        f"{over_limit_alternating:.3f}x, median {over_limit_median:.3f}x); "
        f"required ≤ {MAX_OVER_LIMIT:g}x. The limit is one core's; the packed pipeline uses "
        f"{workers} (encryption and decryption batches on GIL-free threads).",
        f"- the key holder's encryption vs the old limit (one powmod mod n² per ciphertext): "
        f"{mins['old_limit_encrypt'] / mins['packed_encrypt']:.1f}x below it; the lifted pair "
        f"alone (one core) is {mins['old_limit_encrypt'] / mins['limit_encrypt']:.2f}x below it.",
        f"- traffic naive/packed: {D / n_ct:.1f}x less per client.",
        f"- threshold key: decryption {mins['threshold_decrypt'] / mins['packed_decrypt']:.1f}x "
        f"the shared key's (t partials run one after the other here; banks run theirs in "
        f"parallel); the dealer's one-time set-up (two 1024-bit safe primes, shares) took "
        f"{threshold.dealer_s:.1f} s.",
        "- rounds: "
        + ", ".join(
            f"{k} {v['rounds']}" + ("" if v["source"] == "pytest-benchmark" else " (perf_counter)")
            for k, v in res.items()
            if ":" not in k  # other benchmark files' keys carry their prefix
        )
        + f"; alternating pipelines {INTERLEAVED_ROUNDS} each.",
    ]
    table = "\n".join(lines)
    print("\n" + table)
    bench_store.tables.append(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        "# Paillier aggregation benchmark\n\n"
        "Written by `python -m pytest benchmarks/ --benchmark-only`.\n\n" + table + "\n"
    )

    benchmark.extra_info.update(speedup=speedup, over_limit=over_limit)
    assert speedup >= MIN_SPEEDUP, f"packed only {speedup:.1f}x faster than naive"
    assert over_limit <= MAX_OVER_LIMIT, f"packed is {over_limit:.2f}x its limit"
