"""Fixed-point packing under Paillier: sums are exact, nothing ever wraps."""

import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fedrisk.crypto.encoding import FixedPointCodec, PackingError, SlotPacker
from fedrisk.crypto.paillier import (
    CiphertextError,
    ObfuscatorPool,
    VectorCipher,
    VectorDecryptor,
    generate_keypair,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    PK1024, SK1024 = generate_keypair(1024)  # property tests: fast keys, same arithmetic
PK2048, SK2048 = generate_keypair(2048)


def encrypted_sum(vectors, codec, pk, sk, weights=None):
    """pack -> encrypt each vector -> add all ciphertexts -> decrypt -> unpack (DJN
    obfuscators: the sums are what is tested, and the fixed-base tables make the
    thousands of encryptions ~10x cheaper)."""
    cipher, dec = VectorCipher(pk, ObfuscatorPool(pk, "djn")), VectorDecryptor(sk)
    packer = SlotPacker.for_modulus(cipher.plaintext_bits, codec.slot_bytes)
    weights = weights or [1] * len(vectors)
    cts = [cipher.encrypt(packer.pack(codec.encode(v, w)[0])) for v, w in zip(vectors, weights)]
    total = cipher.add(*cts)
    return packer.unpack(dec.decrypt(total), len(vectors[0]))


def values(clip, d):
    edge = st.sampled_from([-clip, clip, 0.0, -clip / 3, clip * 0.999])
    return st.lists(st.one_of(edge, st.floats(-clip, clip)), min_size=d, max_size=d)


# up to 7 x 1,000 Paillier encryptions: part of the full suite, not the fast loop
@pytest.mark.slow
@settings(max_examples=6, deadline=None)
@given(
    k=st.integers(1, 1000),
    d=st.integers(1, 40),
    clip=st.sampled_from([0.5, 1.0, 16.0]),
    data=st.data(),
)
@example(k=1000, d=40, clip=1.0, data=None)
def test_encrypted_packed_sum_is_exact(k, d, clip, data):
    codec = FixedPointCodec.finest(clip, max_summands=k)
    if data is None:  # the explicit worst case: every party at the extremes of the range
        vectors = [np.array([clip if (i + j) % 2 else -clip for j in range(d)]) for i in range(k)]
    else:
        base = [np.array(data.draw(values(clip, d))) for _ in range(min(k, 4))]
        vectors = [base[i % len(base)] for i in range(k)]
    expected = sum(codec.quantize(v)[0] for v in vectors)  # numpy sum of quantised inputs
    sums = encrypted_sum(vectors, codec, PK1024, SK1024)
    decoded = sums.astype(np.int64) - codec.magnitude * k
    assert np.array_equal(decoded, expected)


def test_weighted_sum_and_mean_are_exact_at_2048_bits():
    rng = np.random.default_rng(0)
    codec = FixedPointCodec.finest(8.0, max_summands=5, max_weight=2**13)
    vectors = [rng.uniform(-8, 8, 50) for _ in range(5)]
    weights = [8000, 17, 4096, 1, 8192]
    sums = encrypted_sum(vectors, codec, PK2048, SK2048, weights)
    q = [codec.quantize(v)[0] for v in vectors]
    exact = sum(w * qi for w, qi in zip(weights, q))
    assert np.array_equal(sums.astype(np.int64) - codec.magnitude * sum(weights), exact)
    mean = codec.decode_mean(sums, sum(weights))
    plain = sum(w * v for w, v in zip(weights, vectors)) / sum(weights)
    assert np.max(np.abs(mean - plain)) <= codec.resolution


def test_values_outside_the_range_are_clipped_or_rejected_never_wrapped():
    codec = FixedPointCodec(clip=1.0, frac_bits=20, max_summands=3)
    q, clipped = codec.quantize(np.array([5.0, -7.0, 0.5, 1.0]))
    assert clipped == 2
    assert q[0] == codec.magnitude and q[1] == -codec.magnitude
    with pytest.raises(PackingError, match="outside"):
        codec.quantize(np.array([1.5]), on_overflow="raise")
    with pytest.raises(PackingError, match="NaN"):
        codec.quantize(np.array([np.nan]))
    sums = encrypted_sum([np.array([1e9, -1e9])] * 3, codec, PK1024, SK1024)
    assert list(sums.astype(np.int64) - 3 * codec.magnitude) == [
        3 * codec.magnitude,
        -3 * codec.magnitude,
    ]


def test_headroom_is_computed_and_enforced():
    with pytest.raises(PackingError, match="bits per slot"):
        FixedPointCodec(clip=1.0, frac_bits=60, max_summands=1000)
    codec = FixedPointCodec.finest(1.0, max_summands=1000, max_weight=1)
    assert codec.sum_bound.bit_length() <= 63
    assert codec.sum_bound == 1000 * 2 * codec.magnitude
    with pytest.raises(PackingError, match="weight"):
        codec.encode(np.zeros(3), weight=2)
    small = FixedPointCodec(clip=1.0, frac_bits=10, max_summands=10)
    packer = SlotPacker.for_modulus(1023, small.slot_bytes)
    with pytest.raises(PackingError, match="exceeds"):
        packer.pack(np.array([2 ** (8 * small.slot_bytes)], dtype=np.uint64))


def test_pack_unpack_roundtrip_and_layout():
    packer = SlotPacker.for_modulus(2047, 4)
    assert packer.slots_per_int == 63 and packer.int_bytes * 8 < 2047
    vals = np.arange(1000, dtype=np.uint64) * 4_000_000
    ints = packer.pack(vals)
    assert len(ints) == 16 and all(v.bit_length() <= packer.int_bytes * 8 for v in ints)
    assert np.array_equal(packer.unpack(ints, 1000), vals)


def test_garbage_plaintexts_are_rejected_not_decoded():
    packer = SlotPacker.for_modulus(2047, 8)
    with pytest.raises(PackingError, match="larger than the packing layout"):
        packer.unpack([2 ** (packer.int_bytes * 8)], 10)
    with pytest.raises(PackingError, match="padding"):
        packer.unpack([2 ** (packer.int_bytes * 8) - 1], 10)
    with pytest.raises(PackingError, match="expected 1 packed"):
        packer.unpack([1, 2], 10)


def test_ciphertext_parsing_rejects_corruption():
    cipher = VectorCipher(PK1024)
    blob = cipher.to_bytes(cipher.encrypt([42]))
    assert cipher.from_bytes(blob, 1)
    with pytest.raises(CiphertextError, match="bytes, expected"):
        cipher.from_bytes([blob[0][:-1]], 1)
    with pytest.raises(CiphertextError, match=r"not in \(0, n²\)"):
        cipher.from_bytes([b"\xff" * cipher.width], 1)
    with pytest.raises(CiphertextError, match="expected 2 ciphertexts"):
        cipher.from_bytes(blob, 2)


def test_obfuscator_pool_hands_out_each_value_once():
    pool = ObfuscatorPool(PK1024)
    pool.fill_in_background(6).join()
    taken = [pool.take() for _ in range(6)]
    assert len(set(int(t) for t in taken)) == 6 and len(pool) == 0
    assert pool.precompute_seconds > 0
    cipher, dec = VectorCipher(PK1024, pool), VectorDecryptor(SK1024)
    assert dec.decrypt(cipher.encrypt([7, 9])) == [7, 9]  # falls back to fresh values


def test_small_keys_warn():
    with pytest.warns(UserWarning, match="below the 2048 bits"):
        generate_keypair(1024)
    with pytest.raises(ValueError, match="key size"):
        generate_keypair(512)
