"""SecureBoost's packed histograms: encrypted left sums decrypt to the plaintext sums
exactly (grouped columns, single columns, empty bins, several nodes, one core or two),
worst-case slots do not carry, folding and unpacking round-trip with a remainder."""

from __future__ import annotations

import warnings

import gmpy2
import numpy as np
import pytest

from fedrisk.crypto.gh_packing import GHLayout, column_groups, encrypted_left_sums, fold
from fedrisk.crypto.paillier import ObfuscatorPool, VectorCipher, decrypt_many, generate_keypair
from fedrisk.models.boosting import GH_FRAC_BITS, fit_bins, gh_integers, left_sums


@pytest.fixture(scope="module")
def keys():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return generate_keypair(1024)


def encrypt_rows(keys, gi, hi):
    pk, sk = keys
    layout = GHLayout(len(gi), GH_FRAC_BITS)
    cipher = VectorCipher(pk, ObfuscatorPool(pk, "djn", private_key=sk))
    return layout, cipher.encrypt(layout.pack_rows(gi, hi))


def decrypted_left_sums(keys, layout, sums):
    pk, sk = keys
    k = layout.per_ciphertext(pk.n)
    folded = fold(sums, layout.slot_bits, k, pk.nsquare)
    return layout.unpack(decrypt_many(sk, folded), len(sums), k)


def table(rng, n):
    """Credit-like columns: binary, few-valued, continuous, one with an empty middle
    bin, and a constant one (no candidate)."""
    X = np.c_[
        rng.integers(0, 2, n),
        rng.integers(0, 4, n),
        rng.integers(0, 7, n),
        rng.lognormal(size=n),
        rng.normal(size=n),
        np.where(rng.random(n) < 0.5, 0.0, 10.0),
        np.full(n, 3.0),
    ]
    return X


@pytest.mark.parametrize("workers", [1, 2])
def test_encrypted_left_sums_equal_the_plaintext_sums(keys, workers):
    rng = np.random.default_rng(5)
    n = 3000
    X = table(rng, n)
    bins = fit_bins(X, 16)
    codes = bins.codes(X)
    g, h = rng.uniform(-1, 1, n), rng.uniform(0, 0.25, n)
    gi, hi = gh_integers(g, h)
    layout, cts = encrypt_rows(keys, gi, hi)
    nodes = [np.arange(n), np.flatnonzero(X[:, 4] > 0.5), np.flatnonzero(X[:, 0] == 1)[:40]]
    enc = encrypted_left_sums(
        cts, codes, bins.candidates_per_feature, nodes, keys[0].nsquare, workers=workers
    )
    assert bins.candidates_per_feature[-1] == 0  # the constant column: no candidate
    for rows, sums in zip(nodes, enc):
        want = left_sums(codes[rows], bins.candidates_per_feature, gi[rows], hi[rows])
        np.testing.assert_array_equal(decrypted_left_sums(keys, layout, sums), want)


def test_columns_are_grouped_when_it_saves_multiplications():
    bins = np.array([2, 4, 7, 33, 33, 33, 1])
    many = column_groups(bins, 80_000)
    assert sorted(j for g in many for j in g) == [0, 1, 2, 3, 4, 5]  # one-bin column left out
    assert {0, 1, 2} <= set(many[0])  # few-valued columns share cells
    assert len(many) < 6
    assert column_groups(bins, 5) == [[0], [1], [2], [3], [4], [5]]  # small node: alone


def test_worst_case_slots_do_not_carry(keys):
    """Every row at g = +1 and h = ¼ (the largest slot values) and at g = −1, h = 0."""
    pk, _ = keys
    n = 500
    for g, h in ((np.ones(n), np.full(n, 0.25)), (-np.ones(n), np.zeros(n))):
        gi, hi = gh_integers(g, h)
        layout, cts = encrypt_rows(keys, gi, hi)
        total = gmpy2.mpz(1)
        for c in cts:
            total = total * c % gmpy2.mpz(pk.nsquare)
        got = decrypted_left_sums(keys, layout, [total] * 3)
        np.testing.assert_array_equal(got[:, 0], [n, gi.sum(), hi.sum()])


def test_unpack_refuses_too_few_ciphertexts(keys):
    layout = GHLayout(100, GH_FRAC_BITS)
    k = layout.per_ciphertext(keys[0].n)
    with pytest.raises(ValueError):
        layout.unpack([0], k + 1, k)
