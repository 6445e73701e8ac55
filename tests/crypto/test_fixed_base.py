"""Fixed-base, CRT and multi-process obfuscators: the same values as one powmod, and
ciphertexts that phe decrypts and that are valid under the public key alone."""

import os
import random
from math import gcd

import gmpy2
import pytest
from phe.paillier import EncryptedNumber, PaillierPrivateKey, PaillierPublicKey

from fedrisk.crypto import paillier
from fedrisk.crypto.fixed_base import (
    CrtFixedBase,
    CrtPower,
    FixedBaseTable,
    ParallelPowers,
    PlainPower,
    worker_count,
)
from fedrisk.crypto.paillier import DJN_EXPONENT_BITS, ObfuscatorPool, VectorCipher


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
    full_public, full_crt = made["full", False], made["full", True]
    rs = full_public.draw(4)
    assert full_crt.compute(rs) == full_public.compute(rs)
    assert full_public.compute(rs) == [gmpy2.powmod(r, PK1024.n, PK1024.nsquare) for r in rs]
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
    assert textbook.compute(r) == [gmpy2.powmod(r[0], pk.n, pk.nsquare)]
    cts = check_ciphertexts(pk, sk, holder.compute(inputs[-2:]) + textbook.compute(r), [0, 9, 7])
    assert all(c.bit_length() > 4000 for c in cts)  # full-size ciphertexts, like phe's


def test_a_foreign_private_key_is_refused():
    other = seeded_key(1024, 2)
    with pytest.raises(ValueError, match="does not belong"):
        ObfuscatorPool(PK1024, "djn", private_key=other)


def test_worker_count_is_capped():
    assert worker_count(1) == 1
    assert 1 <= worker_count() <= (os.cpu_count() or 1)


def test_the_parallel_path_equals_the_serial_path(monkeypatch):
    pool = ObfuscatorPool(PK1024, "djn", private_key=SK1024)
    inputs = pool.draw(40)
    serial = pool.compute(inputs)
    parallel = ParallelPowers(pool.engine, 2)
    try:
        assert parallel.pow_many(inputs) == serial
        assert parallel.pow_many([]) == []
    finally:
        parallel.close()
    # the pool's own parallel path, forced past its cost threshold
    monkeypatch.setattr(paillier, "PARALLEL_MIN_SECONDS", 0.0)
    textbook = ObfuscatorPool(PK1024, "full", private_key=SK1024)
    rs = textbook.draw(24)
    try:
        assert textbook.compute(rs, workers=2) == textbook.compute(rs)
        assert textbook.parallel_workers == 2  # the workers really ran
        textbook.fill_parallel(20, workers=2)
        assert len(textbook) == 20
        cts = check_ciphertexts(PK1024, SK1024, [textbook.take() for _ in range(3)], [1, 2, 3])
        assert len(set(cts)) == 3
    finally:
        textbook.close()
    assert textbook.parallel_workers == 0
