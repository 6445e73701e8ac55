"""Ring arithmetic, SecureML truncation, Beaver products from seeds, sealed channels."""

import numpy as np
import pytest
from cryptography.exceptions import InvalidTag
from hypothesis import given, settings
from hypothesis import strategies as st

from fedrisk.crypto.channel import ChannelKey
from fedrisk.crypto.sharing import (
    FEATURE_FRAC_BITS,
    Prg,
    ProductKey,
    check_headroom,
    decode,
    encode,
    encode_features,
    holder_correction,
    holder_half,
    holder_pad,
    max_frac_bits,
    owner_half,
    owner_pad,
    owner_share,
    reconstruct,
    share,
    truncate,
    truncation_failure_bound,
)


def words(seed):
    rng = np.random.default_rng(seed)
    return lambda n: rng.integers(0, 2**64, size=n, dtype=np.uint64, endpoint=False)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e4, 1e4), min_size=1, max_size=50), st.integers(4, 24))
def test_encode_decode_round_trips_to_the_resolution(values, frac_bits):
    x = np.array(values)
    assert np.abs(decode(encode(x, frac_bits), frac_bits) - x).max() <= 2.0 ** -(frac_bits + 1)


def test_shares_reconstruct_and_each_share_alone_is_uniform():
    x = encode(np.linspace(-3, 3, 20000), 16)
    s0, s1, s2 = share(x, 3, words(1))
    assert np.array_equal(reconstruct([s0, s1, s2]), x)
    # the top byte of a share is uniform (the values themselves have 0x00/0xff there)
    top = (s2 >> np.uint64(56)).astype(np.int64)
    counts = np.bincount(top, minlength=256)
    chi2 = ((counts - len(top) / 256) ** 2 / (len(top) / 256)).sum()
    assert chi2 < 330  # 255 dof, p ≈ 0.001
    raw_top = np.bincount((x >> np.uint64(56)).astype(np.int64), minlength=256)
    assert ((raw_top - len(top) / 256) ** 2 / (len(top) / 256)).sum() > 10_000


def test_local_truncation_is_within_one_unit_and_fails_as_rarely_as_stated():
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1000, 200_000)
    ring = encode(x, 36)  # 36 fractional bits, values up to ~2^48 in ring units
    s0, s1 = share(ring, 2, words(3))
    t = truncate(s0, 20, 0) + truncate(s1, 20, 1)
    err = t.view(np.int64) - (ring.view(np.int64) >> 20)
    off = np.abs(err) > 1
    # values below 2^49 in ring units: at most 2^(49+1-64) of truncations may fail
    assert off.mean() <= 5 * truncation_failure_bound(49) + 1e-4
    assert np.abs(err[~off]).max() <= 1
    assert np.abs(decode(t[~off], 16) - x[~off]).max() < 2 * 2.0**-16


def test_a_failed_truncation_is_what_the_bound_counts():
    """The failure: party 1's share inside a window of |x| ring units above 0 (party 0's
    then just below x), which a uniform share hits with probability |x|/2^64; the
    result is off by 2^(64−t). Everywhere else it is within one unit."""
    x = np.array([5 << 20], dtype=np.uint64)
    for s1 in ((1 << 64) - 3, 1 << 63, 5 << 20 + 1, 7 << 40):
        s1 = np.array([s1], dtype=np.uint64)
        t = truncate(x - s1, 20, 0) + truncate(s1, 20, 1)
        assert abs(int(t.view(np.int64)[0]) - 5) <= 1
    s1 = np.array([2], dtype=np.uint64)  # inside the window
    t = truncate(x - s1, 20, 0) + truncate(s1, 20, 1)
    assert abs(int(t.view(np.int64)[0]) - 5) >= 2**43
    assert truncation_failure_bound(40) == 2.0**-23


@pytest.mark.parametrize("kind", ["fwd", "bwd"])
def test_a_product_of_owned_matrix_and_held_vector_from_dealt_seeds(kind):
    rng = np.random.default_rng(4)
    rows, cols = 300, 17
    Xf = rng.normal(size=(rows, cols))
    y = rng.normal(0, 0.5, cols if kind == "fwd" else rows)
    X, yr = encode_features(Xf), encode(y, 16)
    owner, holder = Prg(bytes(range(32))), Prg(bytes(range(1, 33)))
    key = ProductKey(kind, 1, 0)
    U = owner_pad(owner, 1, 0, rows, cols)
    v = holder_pad(holder, key, 1, 0, key.in_size(rows, cols))
    corr = holder_correction(owner, holder, key, 1, 0, rows, cols)  # the dealer's
    y_own, y_theirs = share(yr, 2, words(5))
    E, f = X - U, y_theirs - v  # what each opens
    a = owner_half(kind, X, f, owner_share(owner, key, 1, 0, len(corr)), y_own)
    b = holder_half(kind, E, v, corr)
    got = decode(truncate(a, FEATURE_FRAC_BITS, 0) + truncate(b, FEATURE_FRAC_BITS, 1), 16)
    Xq = decode(X, FEATURE_FRAC_BITS)
    want = Xq @ decode(yr, 16) if kind == "fwd" else Xq.T @ decode(yr, 16)
    assert np.abs(got - want).max() < 3 * 2.0**-16


def test_pads_are_fresh_per_batch_pass_and_product():
    prg = Prg(bytes(32))
    a = owner_pad(prg, 1, 0, 4, 3)
    assert not np.array_equal(a, owner_pad(prg, 1, 1, 4, 3))
    assert not np.array_equal(a, owner_pad(prg, 2, 0, 4, 3))
    assert np.array_equal(a, owner_pad(Prg(bytes(32)), 1, 0, 4, 3))
    k1, k2 = ProductKey("bwd", 0, 1), ProductKey("bwd", 0, 2)
    assert not np.array_equal(holder_pad(prg, k1, 1, 0, 8), holder_pad(prg, k2, 1, 0, 8))
    with pytest.raises(ValueError):
        Prg(b"short")


def test_headroom_refuses_fractional_bits_that_overflow_the_ring():
    assert check_headroom(16, 24, 1024) is None
    what, bits = check_headroom(40, 24, 1024)
    assert what == "gradient" and bits > 63
    assert check_headroom(max_frac_bits(331, 1024), 331, 1024) is None
    assert check_headroom(max_frac_bits(331, 1024) + 1, 331, 1024) is not None
    assert max_frac_bits(24, 4096) < max_frac_bits(24, 256)


def test_sealed_messages_open_only_for_the_pair_and_untouched():
    a, b, c = ChannelKey("bank"), ChannelKey("telecom"), ChannelKey("dealer")
    blob = c.seal("telecom", b.public_bytes, b"seed" * 8)
    assert b.open("dealer", c.public_bytes, blob) == b"seed" * 8
    with pytest.raises(InvalidTag):
        a.open("dealer", c.public_bytes, blob)  # the relay cannot
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(InvalidTag):
        b.open("dealer", c.public_bytes, tampered)
    again = ChannelKey.from_private_bytes("telecom", b.private_bytes())
    assert again.open("dealer", c.public_bytes, blob) == b"seed" * 8
