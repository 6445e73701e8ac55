"""ECDH private set intersection over X25519 (fedrisk.crypto.psi)."""

from __future__ import annotations

import hashlib
import json
import time
import types

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from fedrisk.crypto import psi
from fedrisk.crypto.psi import (
    LOW_ORDER_U,
    AlignmentResult,
    PsiParty,
    align_parties,
    hash_to_point,
    psi_two_party,
)
from fedrisk.errors import ProtocolError

P = 2**255 - 19


def overlapping_ids(n_a: int, n_b: int, n_shared: int, seed: int = 0):
    """Two id lists with exactly n_shared ids in common, in random order."""
    rng = np.random.default_rng(seed)
    pool = [f"cust-{i:07d}" for i in rng.choice(10**7, n_a + n_b - n_shared, replace=False)]
    shared, only_a, only_b = (pool[:n_shared], pool[n_shared:n_a], pool[n_a:])
    a, b = shared + only_a, shared + only_b
    rng.shuffle(a)
    rng.shuffle(b)
    return a, b, set(shared)


def wire_items(transcript):
    return [item for row in transcript for item in row["payload"]]


def assert_no_id_leaks(transcript, ids):
    """No payload holds a raw id or an unkeyed hash of one, as an item or inside the bytes."""
    items = wire_items(transcript)
    assert all(isinstance(x, bytes) and len(x) == 32 for x in items)
    blob = b"".join(items)
    unkeyed = {hashlib.sha256(i.encode()).digest() for i in ids} | {hash_to_point(i) for i in ids}
    assert not unkeyed & set(items)
    for i in ids:
        assert i.encode() not in blob
        assert hashlib.sha256(i.encode()).digest() not in blob
        assert hash_to_point(i) not in blob


# --- correctness -------------------------------------------------------------------------


def test_two_party_finds_exactly_the_shared_ids():
    bank_ids, tel_ids, shared = overlapping_ids(2000, 1500, 1200)
    transcript = []
    bank_view, tel_view = psi_two_party(
        PsiParty("bank", bank_ids), PsiParty("telecom", tel_ids), transcript
    )
    assert set(bank_view) == set(tel_view) == shared
    assert len(bank_view) == len(tel_view) == 1200
    # each view is in that party's own input order (handy for selecting rows)
    assert bank_view == [i for i in bank_ids if i in shared]
    assert tel_view == [i for i in tel_ids if i in shared]
    # four messages; who sent what and how much is visible in the log
    assert [(r["sender"], r["receiver"], r["what"], r["items"]) for r in transcript] == [
        ("telecom", "bank", "masked_ids", 1500),
        ("bank", "telecom", "masked_ids", 2000),
        ("bank", "telecom", "double_masked_ids", 1500),
        ("telecom", "bank", "double_masked_ids", 2000),
    ]
    assert all(r["bytes"] == 32 * r["items"] for r in transcript)
    json.dumps(transcript)  # without payloads, rows are JSON-friendly


@pytest.mark.parametrize("case", ["disjoint", "identical", "one_empty", "both_empty"])
def test_edge_cases(case):
    a = [f"id{i}" for i in range(50)]
    b = {
        "disjoint": [f"other{i}" for i in range(40)],
        "identical": list(reversed(a)),
        "one_empty": [],
        "both_empty": [],
    }[case]
    if case == "both_empty":
        a = []
    bank_view, other_view = psi_two_party(PsiParty("bank", a), PsiParty("d", b))
    expected = set(a) & set(b)
    assert set(bank_view) == set(other_view) == expected


def test_unicode_ids_are_distinct_strings_not_normalised():
    # "é" (NFC) and "e\u0301" (NFD) are different strings, so different ids; lone surrogates
    # must not crash the hashing.
    bank = ["Ünïcødé-1", "客户-42", "🙂", "", "é", "plain", "\ud800x"]
    other = ["客户-42", "🙂", "", "e\u0301", "\ud800x", "other"]
    bank_view, other_view = psi_two_party(PsiParty("bank", bank), PsiParty("d", other))
    assert set(bank_view) == set(other_view) == {"客户-42", "🙂", "", "\ud800x"}


def test_duplicates_and_non_strings_rejected():
    with pytest.raises(ValueError, match="unique"):
        PsiParty("d", ["a", "b", "a"])
    with pytest.raises(TypeError):
        PsiParty("d", ["a", 3])
    with pytest.raises(ValueError, match="unique"):
        align_parties(["a", "a"], {"d": ["a"]}, seed=0)
    with pytest.raises(ValueError, match="unique"):
        align_parties(["a"], {"d": ["a", "a"]}, seed=0)


def test_salt_changes_the_hash_and_must_match():
    assert hash_to_point("x") != hash_to_point("x", salt=b"run-2")
    with pytest.raises(ValueError, match="salt"):
        psi_two_party(PsiParty("bank", ["x"]), PsiParty("d", ["x"], salt=b"run-2"))
    # same non-default salt on both sides works
    bank_view, _ = psi_two_party(
        PsiParty("bank", ["x", "y"], salt=b"s"), PsiParty("d", ["x"], salt=b"s")
    )
    assert bank_view == ["x"]


def test_hash_is_pinned():
    # Both sides must hash identically, across versions too: changing the tag/format breaks
    # interoperability, so it should be a deliberate change of this value.
    assert hash_to_point("customer-1").hex() == (
        "a862d6bbf2c27a064cb5dd42585039057c9ef8675ceda42b4f1e519a977e8b38"
    )
    assert hash_to_point("customer-1")[31] < 0x80  # top bit cleared


# --- privacy properties -----------------------------------------------------------------


def test_no_message_carries_an_id_or_an_unkeyed_hash():
    bank_ids, tel_ids, _ = overlapping_ids(300, 200, 120, seed=1)
    transcript = []
    psi_two_party(
        PsiParty("bank", bank_ids), PsiParty("telecom", tel_ids), transcript, keep_payloads=True
    )
    assert_no_id_leaks(transcript, bank_ids + tel_ids)


def test_masked_values_differ_between_runs():
    ids = [f"c{i}" for i in range(100)]
    runs = []
    for _ in range(2):
        transcript = []
        psi_two_party(
            PsiParty("bank", ids, np.random.default_rng(3)),
            PsiParty("d", ids, np.random.default_rng(4)),
            transcript,
            keep_payloads=True,
        )
        runs.append(set(wire_items(transcript)))
    assert not runs[0] & runs[1]  # fresh keys every run: nothing is linkable across runs


def _sent_order(party: PsiParty) -> list[int]:
    """White-box: recover which input index sits at each position of what `party` sent."""
    sent = party.masked_ids()
    unshuffled = {psi.mask_point(party._key, hash_to_point(i)): k for k, i in enumerate(party.ids)}
    return [unshuffled[v] for v in sent]


@pytest.mark.parametrize("n", [20, 257])
def test_sent_list_is_shuffled_reproducibly_with_a_seed(n):
    ids = [f"c{i:05d}" for i in range(n)]
    order = _sent_order(PsiParty("d", ids, np.random.default_rng(11)))
    assert sorted(order) == list(range(n))  # a permutation: every id sent exactly once
    assert order != list(range(n))  # ...and not the input order
    assert order == _sent_order(PsiParty("d", ids, np.random.default_rng(11)))  # seeded
    assert _sent_order(PsiParty("d", ids)) != list(range(n))  # unseeded: OS entropy


def test_masked_ids_is_stable_across_calls():
    party = PsiParty("d", [f"c{i}" for i in range(30)])
    assert party.masked_ids() == party.masked_ids()


# --- the group operation -----------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    item=st.text(max_size=40),
    key_a=st.binary(min_size=32, max_size=32),
    key_b=st.binary(min_size=32, max_size=32),
)
def test_masking_commutes(item, key_a, key_b):
    a, b = X25519PrivateKey.from_private_bytes(key_a), X25519PrivateKey.from_private_bytes(key_b)
    h = hash_to_point(item)
    assert psi.mask_point(a, psi.mask_point(b, h)) == psi.mask_point(b, psi.mask_point(a, h))


def test_low_order_list_matches_cryptography():
    key = X25519PrivateKey.generate()
    for u in LOW_ORDER_U | {P, P + 1, 2**255 + 1}:  # non-canonical encodings reduce into the set
        with pytest.raises(ValueError):
            key.exchange(X25519PublicKey.from_public_bytes((u % 2**256).to_bytes(32, "little")))
        with pytest.raises(ProtocolError, match="low-order"):
            PsiParty("d", []).mask_again([(u % 2**256).to_bytes(32, "little")])


def test_low_order_hash_is_rehashed_deterministically(monkeypatch):
    real = hashlib.sha256
    first_try = hash_to_point("victim")

    def fake_sha256(data):  # counter 0 of "victim" lands on u = 1 (order 4)
        if data.endswith((0).to_bytes(4, "big") + b"victim"):
            return types.SimpleNamespace(digest=lambda: (1).to_bytes(32, "little"))
        return real(data)

    monkeypatch.setattr(psi, "hashlib", types.SimpleNamespace(sha256=fake_sha256))
    rehashed = hash_to_point("victim")
    assert rehashed != first_try and rehashed == hash_to_point("victim")
    assert int.from_bytes(rehashed, "little") % P not in LOW_ORDER_U
    bank_view, other_view = psi_two_party(
        PsiParty("bank", ["victim", "x"]), PsiParty("d", ["victim"])
    )
    assert bank_view == other_view == ["victim"]


def test_malformed_messages_are_protocol_errors():
    party = PsiParty("d", ["a", "b"])
    with pytest.raises(ProtocolError, match="32 bytes"):
        party.mask_again([b"short"])
    sent = party.masked_ids()
    with pytest.raises(ProtocolError, match="expected 2"):
        party.intersect(sent[:1], [])
    with pytest.raises(RuntimeError, match="masked_ids"):
        PsiParty("e", ["a"]).intersect([b"\x09" * 32], [])


# --- several parties ---------------------------------------------------------------------


def test_align_parties_finds_the_four_way_intersection():
    rng = np.random.default_rng(5)
    universe = [f"cust-{i:05d}" for i in range(1000)]
    bank = [universe[i] for i in rng.choice(1000, 700, replace=False)]
    others = {
        name: [universe[i] for i in rng.choice(1000, size, replace=False)]
        for name, size in [("telecom", 850), ("ecommerce", 400), ("tax", 930)]
    }
    truth = set(bank).intersection(*map(set, others.values()))
    assert 50 < len(truth) < 300  # the overlaps differ and the test is not trivial

    result = align_parties(bank, others, seed=42, keep_payloads=True)
    assert isinstance(result, AlignmentResult)
    assert result.shared_ids == tuple(sorted(truth))
    assert result.views == {name: tuple(sorted(truth)) for name in ["bank", *others]}
    assert result.per_party_sizes == {"bank": 700, "telecom": 850, "ecommerce": 400, "tax": 930}
    # the chain: each step meets what is left of the bank's set
    left = set(bank)
    for step, (name, ids) in zip(result.steps, others.items()):
        assert (step["party"], step["bank_size"], step["party_size"]) == (name, len(left), len(ids))
        left &= set(ids)
        assert step["intersection_size"] == len(left)
    # 4 messages per exchange, then one announcement per party
    assert len(result.messages) == 4 * 3 + 3
    assert [r["what"] for r in result.messages[-3:]] == ["final_double_masked_ids"] * 3
    assert all(r["items"] == len(truth) for r in result.messages[-3:])
    assert_no_id_leaks(result.messages, bank + [i for ids in others.values() for i in ids])

    # reordering the parties changes who learns what, not the result
    reordered = align_parties(bank, dict(reversed(list(others.items()))), seed=1)
    assert reordered.shared_ids == result.shared_ids


def test_align_parties_rejects_bad_setups():
    with pytest.raises(ValueError, match="at least one"):
        align_parties(["a"], {}, seed=0)
    with pytest.raises(ValueError, match="clashes"):
        align_parties(["a"], {"bank": ["a"]}, seed=0)


def test_align_parties_empty_intersection_midway():
    result = align_parties(["a", "b"], {"d1": ["c"], "d2": ["a", "b"]}, seed=0)
    assert result.shared_ids == ()
    assert result.views == {"bank": (), "d1": (), "d2": ()}
    assert [s["intersection_size"] for s in result.steps] == [0, 0]


# --- timing sanity (not a benchmark) ----------------------------------------------------


def test_five_thousand_by_five_thousand_is_quick():
    bank_ids, other_ids, shared = overlapping_ids(5000, 5000, 2500, seed=2)
    start = time.perf_counter()
    bank_view, other_view = psi_two_party(PsiParty("bank", bank_ids), PsiParty("d", other_ids))
    elapsed = time.perf_counter() - start
    assert set(bank_view) == set(other_view) == shared
    assert elapsed < 10, f"5,000 x 5,000 PSI took {elapsed:.1f} s"
