"""Fixed-base, CRT and multi-core obfuscators and decryption: the same values as one
powmod (and phe's decryption), and ciphertexts that phe decrypts and that are valid under
the public key alone."""

import os
import random
import threading
from math import gcd

import gmpy2
import numpy as np
import pytest
from phe.paillier import EncryptedNumber, PaillierPrivateKey, PaillierPublicKey

from fedrisk.crypto import workers
from fedrisk.crypto.fixed_base import (
    CrtFixedBase,
    CrtPower,
    FixedBaseTable,
    LiftedPower,
    PlainPower,
)
from fedrisk.crypto.hetero import encrypted_feature_sums
from fedrisk.crypto.paillier import (
    DJN_EXPONENT_BITS,
    ObfuscatorPool,
    VectorCipher,
    decrypt_many,
)
from fedrisk.crypto.workers import worker_count


def seeded_key(bits: int, seed: int) -> PaillierPrivateKey:
    """A key from two seeded primes (next_prime is ~100x quicker than phe's keygen)."""
    rng = random.Random(seed)
    half = bits // 2
    while True:
        p, q = (int(gmpy2.next_prime(rng.getrandbits(half) | 3 << (half - 2))) for _ in "pq")
        if p != q and (p * q).bit_length() == bits:
            return PaillierPrivateKey(PaillierPublicKey(p * q), p, q)


SK1024 = seeded_key(1024, 1)
PK1024 = SK1024.public_key
RNG = random.Random(7)
two_cores = pytest.mark.skipif(worker_count() < 2, reason="needs 2 cores")


def exponents(bits: int, count: int) -> list[int]:
    return [0, 1, 2**bits - 1, 2 ** (bits - 1)] + [RNG.getrandbits(bits) for _ in range(count)]


@pytest.mark.parametrize("window, bits", [(1, 20), (3, 64), (8, 256), (7, 256)])
def test_fixed_base_pow_is_powmod(window, bits):
    nsq = gmpy2.mpz(PK1024.nsquare)
    base = gmpy2.mpz(RNG.randrange(2, PK1024.nsquare))
    table = FixedBaseTable(base, nsq, bits, window)
    assert table.windows == -(-bits // window)
    es = exponents(bits, 12)
    assert table.pow_many(es) == [gmpy2.powmod(base, e, nsq) for e in es]
    for bad in (-1, 2**bits):
        with pytest.raises(ValueError):
            table.pow(bad)


def test_crt_results_equal_the_non_crt_ones():
    p, q, n, nsq = SK1024.p, SK1024.q, PK1024.n, PK1024.nsquare
    base = gmpy2.powmod(RNG.randrange(2, n), n, nsq)
    es = exponents(DJN_EXPONENT_BITS, 10)
    expected = [gmpy2.powmod(base, e, nsq) for e in es]
    assert CrtFixedBase(base, p, q, DJN_EXPONENT_BITS).pow_many(es) == expected
    assert FixedBaseTable(base, nsq, DJN_EXPONENT_BITS).pow_many(es) == expected
    # textbook r^n: random r, r = 1, n − 1, and r sharing a factor with n (exact too)
    rs = [1, n - 1, p, 2 * q] + [RNG.randrange(1, n) for _ in range(6)]
    assert CrtPower(p, q).pow_many(rs) == PlainPower(n, nsq).pow_many(rs)
    assert PlainPower(n, nsq).pow_many(rs) == [gmpy2.powmod(r, n, nsq) for r in rs]


def lifted_r(key, r: int) -> int:
    """The r' with LiftedPower(r) == r'^n mod n²: r^(q⁻¹ mod p−1) mod p, r^(p⁻¹ mod q−1)
    mod q, joined by CRT."""
    p, q = gmpy2.mpz(key.p), gmpy2.mpz(key.q)
    rp = gmpy2.powmod(r % p, gmpy2.invert(q, p - 1), p)
    rq = gmpy2.powmod(r % q, gmpy2.invert(p, q - 1), q)
    return int(rp + p * ((rq - rp) * gmpy2.invert(p, q) % q))


def test_the_lifted_textbook_obfuscators_are_uniform_nth_residues():
    """r ↦ r' is a bijection of Z*_n (so r' is as uniform as r), and every value is an
    n-th residue mod n² (order divides φ(n)): exactly what r^n is."""
    p, q, n, nsq = SK1024.p, SK1024.q, PK1024.n, PK1024.nsquare
    lifted = LiftedPower(p, q)
    rs = [1, n - 1, 2, 3] + [RNG.randrange(1, n) for _ in range(40)]
    images = [lifted_r(SK1024, r) for r in rs]
    assert len(set(images)) == len(rs) and all(gcd(r, n) == 1 for r in images)
    phi = (p - 1) * (q - 1)
    values = lifted.pow_many(rs)
    assert all(gmpy2.powmod(v, phi, nsq) == 1 for v in values)
    assert values == [gmpy2.powmod(r, n, nsq) for r in images]
    # a small exhaustive check of the bijection, on toy primes 11 and 13
    small_p, small_q = 11, 13
    small = LiftedPower(small_p, small_q)
    units = [r for r in range(1, small_p * small_q) if gcd(r, small_p * small_q) == 1]
    nth = {pow(r, small_p * small_q, (small_p * small_q) ** 2) for r in units}
    assert sorted(small.pow_many(units)) == sorted(nth)  # each n-th residue exactly once
    assert not LiftedPower.applies(7, 3)  # 3 | 7 − 1: the pool falls back to CrtPower


def pools(public_key, private_key):
    return {
        (obfuscation, holder): ObfuscatorPool(
            public_key, obfuscation, private_key=private_key if holder else None
        )
        for obfuscation in ("full", "djn")
        for holder in (False, True)
    }


class Given:
    """A stand-in pool that hands out exactly the given obfuscators (and no others)."""

    def __init__(self, values):
        self.take = iter(values).__next__

    def take_many(self, count):
        return [self.take() for _ in range(count)]


def check_ciphertexts(public_key, private_key, obfuscators, plaintexts):
    """Encrypt with the given obfuscators; check decryption, range, width, validity."""
    cipher = VectorCipher(public_key, Given(obfuscators))
    cts = cipher.encrypt(plaintexts)
    n, nsq = public_key.n, public_key.nsquare
    for c, m in zip(cts, plaintexts):
        assert 0 < c < nsq and gcd(int(c), n) == 1
        assert private_key.raw_decrypt(int(c)) == m
        number = EncryptedNumber(public_key, int(c))
        if m <= public_key.max_int:  # phe's own decoding
            assert private_key.decrypt(number) == m
        # valid under the public key alone: phe adds to it homomorphically
        total = (number + 12345).ciphertext(be_secure=False)
        assert private_key.raw_decrypt(total) == (m + 12345) % n
    blobs = cipher.to_bytes(cts)
    assert {len(b) for b in blobs} == {cipher.width}
    assert cipher.from_bytes(blobs, len(cts)) == cts
    return cts


def test_every_path_encrypts_to_the_same_decryptable_ciphertexts():
    plaintexts = [0, 1, 42, PK1024.n - 1, RNG.randrange(PK1024.n)]
    made = pools(PK1024, SK1024)
    for pool in made.values():
        inputs = pool.draw(len(plaintexts))
        check_ciphertexts(PK1024, SK1024, pool.compute(inputs), plaintexts)
    # the key holder's CRT path gives exactly the public path's values for the same
    # randomness (and h_s): indistinguishable in size, range and value
    djn_public = made["djn", False]
    djn_crt = ObfuscatorPool(PK1024, "djn", private_key=SK1024, djn_base=djn_public.djn_base)
    inputs = djn_public.draw(6)
    hs = djn_public.djn_base
    assert djn_crt.compute(inputs) == djn_public.compute(inputs)
    assert djn_public.compute(inputs) == [gmpy2.powmod(hs, a, PK1024.nsquare) for a in inputs]
    full_public, full_holder = made["full", False], made["full", True]
    rs = full_public.draw(4)
    assert full_public.compute(rs) == [gmpy2.powmod(r, PK1024.n, PK1024.nsquare) for r in rs]
    # the key holder's textbook path (LiftedPower) gives r'^n for the r' the lift maps r to
    assert isinstance(full_holder.engine, LiftedPower)
    assert full_holder.compute(rs) == full_public.compute([lifted_r(SK1024, r) for r in rs])
    # fresh() and fill() still work on every path
    for pool in made.values():
        pool.fill(2)
        check_ciphertexts(PK1024, SK1024, [pool.take(), pool.take(), pool.fresh()], [5, 6, 7])


def test_the_fast_paths_at_2048_bits():
    sk = seeded_key(2048, 3)
    pk = sk.public_key
    public = ObfuscatorPool(pk, "djn")
    holder = ObfuscatorPool(pk, "djn", private_key=sk, djn_base=public.djn_base)
    inputs = exponents(DJN_EXPONENT_BITS, 2)
    expected = [gmpy2.powmod(public.djn_base, a, pk.nsquare) for a in inputs]
    assert holder.compute(inputs) == public.compute(inputs) == expected
    textbook = ObfuscatorPool(pk, "full", private_key=sk)
    r = textbook.draw(1)
    assert textbook.compute(r) == [gmpy2.powmod(lifted_r(sk, r[0]), pk.n, pk.nsquare)]
    cts = check_ciphertexts(pk, sk, holder.compute(inputs[-2:]) + textbook.compute(r), [0, 9, 7])
    assert all(c.bit_length() > 4000 for c in cts)  # full-size ciphertexts, like phe's


def test_a_foreign_private_key_is_refused():
    other = seeded_key(1024, 2)
    with pytest.raises(ValueError, match="does not belong"):
        ObfuscatorPool(PK1024, "djn", private_key=other)


def test_worker_count_is_capped(monkeypatch):
    assert worker_count(1) == 1
    assert 1 <= worker_count() <= (os.cpu_count() or 1)
    monkeypatch.setenv("FEDRISK_CRYPTO_WORKERS", "1")
    assert worker_count() == 1 and worker_count(2) == min(2, os.cpu_count() or 1)


@two_cores
def test_a_dead_worker_costs_one_batch_not_the_run():
    """A worker process killed mid-run (out of memory, an operator): that batch is
    computed here, the next starts a fresh pool; the values never change."""
    import signal  # why: only this test sends signals

    workers.start()
    pool = ObfuscatorPool(PK1024, "djn", private_key=SK1024)
    inputs = pool.draw(120)
    serial = pool.compute(inputs, workers=1)
    assert pool.compute(inputs, workers=2) == serial  # the worker pool is up
    for pid in workers.process_ids():
        os.kill(pid, signal.SIGKILL)
    assert pool.compute(inputs, workers=2) == serial  # this batch: here
    workers.start()  # the next: a fresh pool
    assert pool.compute(inputs, workers=2) == serial
    assert workers.active_processes() >= 1


@two_cores
def test_a_cold_pool_is_not_started_for_small_work():
    """A process that never started its workers (a Deployment Engine ClientApp lives for
    one message) computes a batch's sums itself unless the work would take ~a second."""
    workers.shutdown()
    X = np.random.default_rng(4).normal(size=(700, 7))
    djn = ObfuscatorPool(PK1024, "djn", private_key=SK1024)
    residuals = VectorCipher(PK1024, djn).encrypt(list(range(700)))
    cold = encrypted_feature_sums(residuals, X, PK1024.nsquare, 2)
    assert workers.active_processes() == 0 and not workers.process_ids()
    workers.start()
    assert encrypted_feature_sums(residuals, X, PK1024.nsquare, 2) == cold
    assert workers.active_processes() >= 1


@two_cores
def test_every_multi_core_path_equals_the_serial_path():
    workers.start()  # as a long-lived party does (small batches skip a cold pool)
    # table engines over a worker process (and this one), from the caller or beside it
    djn = ObfuscatorPool(PK1024, "djn", private_key=SK1024)
    inputs = djn.draw(150)
    serial = djn.compute(inputs, workers=1)
    assert djn.compute(inputs, workers=2) == serial
    assert djn.engine.pow_many(inputs, 2, local=False) == serial
    public = ObfuscatorPool(PK1024, "djn", djn_base=djn.djn_base)
    assert public.compute(inputs, workers=2) == serial
    assert workers.active_processes() >= 1  # the worker really ran
    # powmod engines on threads
    for holder in (SK1024, None):
        full = ObfuscatorPool(PK1024, "full", private_key=holder)
        rs = full.draw(9)
        assert full.compute(rs, workers=2) == full.compute(rs, workers=1)
        bases = [lifted_r(SK1024, r) for r in rs] if holder else rs
        assert full.compute(rs, workers=2) == [
            gmpy2.powmod(r, PK1024.n, PK1024.nsquare) for r in bases
        ]
    # decryption in batches: phe's raw_decrypt, value for value
    cts = VectorCipher(PK1024, djn).encrypt([0, 1, PK1024.n - 1] + [RNG.randrange(PK1024.n)] * 4)
    cts += [1, PK1024.nsquare - 1, RNG.randrange(1, PK1024.nsquare)]  # any value in range
    expected = [SK1024.raw_decrypt(int(c)) for c in cts]
    assert decrypt_many(SK1024, cts, 2) == decrypt_many(SK1024, cts, 1) == expected
    # the feature sums, columns shared out: the same ciphertexts
    X = np.random.default_rng(3).normal(size=(700, 7))
    residuals = VectorCipher(PK1024, djn).encrypt(list(range(700)))
    nsq = PK1024.nsquare
    assert encrypted_feature_sums(residuals, X, nsq, 2) == encrypted_feature_sums(
        residuals, X, nsq, 1
    )


@two_cores
def test_prepared_obfuscators_are_used_once_and_valid():
    workers.start()
    for obfuscation in ("djn", "full"):
        pool = ObfuscatorPool(PK1024, obfuscation, private_key=SK1024, workers=2)
        pool.prepare(80)
        pool.wait()
        assert len(pool) == 80 and pool.precompute_seconds > 0
        values = pool.take_many(90)  # 80 prepared + 10 computed now
        assert len(pool) == 0 and len(set(values)) == 90
        check_ciphertexts(PK1024, SK1024, values[75:85], list(range(10)))


def test_one_core_starts_no_thread_or_process(monkeypatch):
    monkeypatch.setenv("FEDRISK_CRYPTO_WORKERS", "1")
    assert worker_count() == 1
    pool = ObfuscatorPool(PK1024, "djn", private_key=SK1024)
    pool.prepare(100)  # nothing to overlap on one core
    assert len(pool) == 0
    assert not [t for t in threading.enumerate() if t.name == "fedrisk-prepare"]
    assert len(pool.take_many(3)) == 3


def test_key_holder_ciphertexts_look_like_public_ones():
    """Size and range: encryptions of 0 (the ciphertext is then the obfuscator itself)
    from the key holder's paths (CRT tables, lifted textbook) and from the public-key
    path spread alike over (0, n²) and serialise to the same width. The two-sample KS
    test compares where they fall (p > 1e-4: a false alarm once in 10,000 runs); a
    missing or constant obfuscator, or one kept to part of the range, fails it."""
    from scipy.stats import ks_2samp  # why: start-up time; only this test needs scipy.stats

    nsq = PK1024.nsquare
    zeros = [0] * 300
    for obfuscation in ("djn", "full"):
        public = ObfuscatorPool(PK1024, obfuscation)
        holder = ObfuscatorPool(PK1024, obfuscation, private_key=SK1024)
        spread = {}
        for name, pool in (("public", public), ("holder", holder)):
            cipher = VectorCipher(PK1024, pool)
            cts = cipher.encrypt(zeros)
            assert {len(b) for b in cipher.to_bytes(cts)} == {cipher.width}
            assert all(0 < c < nsq for c in cts) and len(set(cts)) == len(cts)
            spread[name] = [int(c) / nsq for c in cts]
        assert ks_2samp(spread["public"], spread["holder"]).pvalue > 1e-4, obfuscation
        # the check has teeth: no obfuscation at all (every ciphertext 1) is caught
        assert ks_2samp(spread["public"], [1 / nsq] * 300).pvalue < 1e-4
