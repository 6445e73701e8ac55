"""SimplePIR, the keyword table and the OPRF: correctness, and the query's
indistinguishability under a two-sample test."""

import os

import numpy as np
import pytest
from scipy import stats

from fedrisk.crypto.keyword import (
    CHECK_BYTES,
    WAYS,
    bucket_count,
    candidate_buckets,
    open_records,
    place,
    seal_records,
)
from fedrisk.crypto.oprf import OprfBlinding, OprfKey, hash_to_curve
from fedrisk.crypto.pir import MAX_COLUMNS, PirClient, PirLayout, PirServer

# every p-value below is of seeded draws: the same verdict on every run
pytestmark = pytest.mark.usefixtures("seeded_entropy")


def _session(records, queries=1, seed=b"s" * 32):
    layout = PirLayout.of(len(records), records.shape[1], queries)
    server = PirServer(layout, records, seed)
    return layout, server, PirClient(layout, seed, server.hint())


@pytest.mark.parametrize(
    "n, width, queries", [(1, 1, 1), (37, 16, 1), (5000, 16, 30), (20000, 3, 1)]
)
def test_every_asked_record_comes_back_exactly(n, width, queries):
    rng = np.random.default_rng(n)
    records = rng.integers(0, 256, (n, width), dtype=np.uint8)
    layout, server, client = _session(records, queries)
    assert layout.columns <= MAX_COLUMNS and layout.rows % width == 0
    asked = rng.integers(0, n, 25)
    q, kept = client.query(layout.column_of(asked), os.urandom(32))
    columns = client.decode(server.answer(q), kept)
    for j, i in enumerate(asked):
        np.testing.assert_array_equal(layout.record_in(columns[j], i), records[i])


def test_largest_entries_at_the_widest_layout_still_decode():
    # every byte 255 and 8,192 columns: the error term D·e at its largest
    records = np.full((9 * MAX_COLUMNS, 1), 255, np.uint8)
    layout, server, client = _session(records)
    assert layout.columns == MAX_COLUMNS
    q, kept = client.query(np.array([0, MAX_COLUMNS - 1]), os.urandom(32))
    assert (client.decode(server.answer(q), kept) == 255).all()


def test_the_answer_is_the_plain_product_mod_2_32():
    """The party's answer is D·q mod 2^32 and nothing else: no secret, no randomness."""
    rng = np.random.default_rng(0)
    records = rng.integers(0, 256, (300, 4), dtype=np.uint8)
    layout, server, client = _session(records)
    q, _ = client.query(np.array([3]), os.urandom(32))
    D = layout.matrix(records).astype(object)
    want = [int(sum(int(a) * int(b) for a, b in zip(row, q[0]))) % 2**32 for row in D]
    assert server.answer(q)[0].tolist() == want
    assert server.answer(q).tobytes() == server.answer(q).tobytes()


@pytest.mark.slow  # seconds of runs: the full suite covers it
def test_queries_for_two_columns_are_indistinguishable():
    """Two-sample tests on 2,000 fresh queries for column a and 2,000 for column b: the
    words at a's and b's positions (where Δ is added) and the top bytes (where Δ shows)."""
    rng = np.random.default_rng(1)
    records = rng.integers(0, 256, (4000, 16), dtype=np.uint8)
    layout, _, client = _session(records)
    a, b = 5, layout.columns - 3
    qa, _ = client.query(np.full(2000, a), os.urandom(32))
    qb, _ = client.query(np.full(2000, b), os.urandom(32))
    for col in (a, b):
        assert stats.ks_2samp(qa[:, col], qb[:, col]).pvalue > 1e-3
        top_a = np.bincount(qa[:, col] >> 24, minlength=256)
        top_b = np.bincount(qb[:, col] >> 24, minlength=256)
        assert stats.chi2_contingency(np.vstack([top_a, top_b]) + 1).pvalue > 1e-3
    # and the distinguisher that knows the public matrix but not the secrets: the
    # difference of the two positions is uniform either way
    assert stats.ks_2samp(qa[:, a] - qa[:, b], qb[:, a] - qb[:, b]).pvalue > 1e-3
    assert stats.kstest(qa[:, a] / 2**32, "uniform").pvalue > 1e-3


def test_layouts_follow_the_session_size():
    one = PirLayout.of(1_250_000, 16, 1)
    many = PirLayout.of(1_250_000, 16, 3000)
    assert one.columns > 8000 and many.rows > one.rows and many.columns < one.columns
    with pytest.raises(ValueError):
        PirLayout.of(0, 16)


def test_cuckoo_places_every_id_in_one_of_its_buckets():
    ids = [f"C{i:06d}".encode() for i in range(20000)]  # stand-ins for OPRF values
    buckets = bucket_count(len(ids))
    cands = candidate_buckets(ids, buckets, b"k" * 32)
    where = place(cands, buckets)
    assert where is not None and len(set(where.tolist())) == len(ids)
    assert (cands == where[:, None]).any(axis=1).all()
    assert cands.shape == (len(ids), WAYS)
    # public hash: the bank computes the same buckets from the id and the seed alone
    np.testing.assert_array_equal(candidate_buckets(ids[:5], buckets, b"k" * 32), cands[:5])


def test_a_sealed_record_opens_only_under_its_own_key():
    keys = [os.urandom(32) for _ in range(50)]
    payload = np.random.default_rng(2).integers(0, 256, (50, 8), dtype=np.uint8)
    sealed = seal_records(keys, payload)
    assert sealed.shape == (50, CHECK_BYTES + 8)
    opened, got = open_records(keys, sealed)
    assert opened.all() and (got == payload).all()
    opened, _ = open_records(keys[1:] + keys[:1], sealed)  # every key one off
    assert not opened.any()


def test_oprf_blinded_equals_direct_and_hides_the_id():
    key = OprfKey(os.urandom(32))
    ids = ["alice", "bob", "C000123"]
    blinding = OprfBlinding(ids, lambda: os.urandom(32))
    assert blinding.outputs(key.evaluate(blinding.blinded())) == key.outputs(ids)
    assert len(set(key.outputs(ids))) == 3
    assert OprfKey(os.urandom(32)).outputs(ids) != key.outputs(ids)
    # the same id blinded twice gives unrelated points; the party never sees H(id)
    again = OprfBlinding(ids, lambda: os.urandom(32)).blinded()
    assert not set(again) & set(blinding.blinded())
    assert hash_to_curve("alice") not in blinding.blinded()


def test_blinded_points_of_two_ids_are_indistinguishable():
    a = OprfBlinding(["alice"] * 400, lambda: os.urandom(32)).blinded()
    b = OprfBlinding(["bob"] * 400, lambda: os.urandom(32)).blinded()
    as_float = [np.array([int.from_bytes(p, "little") / 2**255 for p in x]) for x in (a, b)]
    assert stats.ks_2samp(*as_float).pvalue > 1e-3
