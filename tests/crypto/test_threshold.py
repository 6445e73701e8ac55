"""Threshold Paillier: t of n key shares decrypt; fewer, or one bank, read nothing."""

import itertools
import math
import warnings

import gmpy2
import pytest

from fedrisk.crypto.paillier import VectorCipher
from fedrisk.crypto.threshold import KeyShare, deal, default_threshold, safe_prime


@pytest.fixture(scope="module")
def dealt():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return deal(1024, 5)


def test_safe_primes_are_safe():
    p = safe_prime(256)
    assert p.bit_length() == 256 and gmpy2.is_prime(p) and gmpy2.is_prime((p - 1) // 2)


def test_majority_threshold_by_default(dealt):
    assert [default_threshold(n) for n in (1, 2, 3, 4, 5, 6)] == [1, 2, 2, 3, 3, 4]
    assert dealt.threshold == 3 and len(dealt.shares) == 5
    assert all(s.n == dealt.public_key.n for s in dealt.shares)


def test_any_t_shares_recover_the_aggregate(dealt):
    cipher = VectorCipher(dealt.public_key)
    updates = [[10**30 + i, 7 * i, 1] for i in range(5)]
    total = cipher.add(*(cipher.encrypt(u) for u in updates))
    want = [sum(col) for col in zip(*updates)]
    for chosen in itertools.combinations(dealt.shares, 3):
        partials = {s.index: s.partial_decrypt(total, 4) for s in chosen}
        assert dealt.shares[0].combine(partials, 4, total) == want


def test_fewer_than_t_shares_cannot_combine(dealt):
    cipher = VectorCipher(dealt.public_key)
    ct = cipher.encrypt([123])
    partials = {s.index: s.partial_decrypt(ct, 1) for s in dealt.shares[:2]}
    with pytest.raises(ValueError, match="2 partial decryptions, the key needs 3 of 5"):
        dealt.shares[0].combine(partials, 1, ct)


def test_one_banks_share_cannot_decrypt_an_individual_update(dealt):
    """A bank (or the aggregator with one bank) holding an individual ciphertext and one
    share gets a random-looking group element, and the one-share 'combination' (as if
    t were 1) decodes to garbage; three shares recover the update."""
    cipher = VectorCipher(dealt.public_key)
    update = 424242
    ct = cipher.encrypt([update])
    one = dealt.shares[1]
    n = one.n
    partial = one.partial_decrypt(ct, 2)[0]
    assert partial % n != 1  # not of the form 1 + m·n: L() of it is meaningless
    inv = pow(4 * math.factorial(5) ** 2, -1, n)
    as_if_alone = ((int(partial) - 1) // n * inv - int(one.masks(2, ct)[0])) % n
    assert as_if_alone != update and as_if_alone > 2**64
    alone = KeyShare(one.index, n, one.n_banks, 1, one.secret, one.blind_seed)
    assert alone.combine({one.index: [partial]}, 2, ct) != [update]
    partials = {s.index: s.partial_decrypt(ct, 2) for s in dealt.shares[2:]}
    assert one.combine(partials, 2, ct) == [update]


def test_the_aggregator_cannot_open_the_partials_without_the_banks_mask(dealt):
    """It relays t partials; combined without the banks' mask they give M + mu mod n."""
    cipher = VectorCipher(dealt.public_key)
    ct = cipher.encrypt([99])
    partials = {s.index: s.partial_decrypt(ct, 3) for s in dealt.shares[:3]}
    no_mask = KeyShare(1, dealt.public_key.n, 5, 3, 0, b"aggregator guesses")
    assert no_mask.combine(partials, 3, ct) != [99]
    assert dealt.shares[4].combine(partials, 3, ct) == [99]


def test_two_openings_in_one_round_do_not_cancel_the_masks(dealt):
    """The aggregator alone, breaking the protocol: it has the banks partially decrypt a
    bank's ciphertext and an encryption of 0 in the same round and combines both with
    public values (Lagrange coefficients need no secret). With one mask per round the
    difference of the openings was the bank's update (found by review); the masks are
    bound to each ciphertext, so it is not."""
    cipher = VectorCipher(dealt.public_key)
    update, n = 123456789, dealt.public_key.n
    victim, zero = cipher.encrypt([update]), cipher.encrypt([0])
    no_mask = KeyShare(1, n, 5, 3, 0, b"aggregator")  # combines, knows no mask

    def opened(ct):
        partials = {s.index: s.partial_decrypt(ct, 7) for s in dealt.shares[:3]}
        with_its_mask = no_mask.combine(partials, 7, ct)[0]
        return (with_its_mask + int(no_mask.masks(7, ct)[0])) % n  # = M + mu(ct)

    assert (opened(victim) - opened(zero)) % n != update


def test_shares_round_trip_as_json(dealt):
    share = dealt.shares[2]
    assert KeyShare.from_dict(share.to_dict()) == share
