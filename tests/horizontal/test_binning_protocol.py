"""Horizontal federated binning on real Flower apps: the tables equal the pooled ones
exactly, in the clear and under Paillier; what crosses (transcript and payloads); the
banks' side of the harness; bad input."""

from __future__ import annotations

import threading
import warnings
from functools import cache

import numpy as np
import pytest

from fedrisk.crypto.paillier import BankKeys, VectorCipher, VectorDecryptor, generate_keypair
from fedrisk.errors import ProtocolError
from fedrisk.flower.engines import run_engine
from fedrisk.flower.recording_grid import IDENTIFY, carries_plaintext_numbers
from fedrisk.horizontal.binning.aggregator import make_aggregator_app
from fedrisk.horizontal.binning.bank import make_bank_app
from fedrisk.horizontal.binning.protocol import (
    CIPHERTEXTS,
    AggregatorJob,
    AggregatorOutcome,
    BanksJob,
    BanksOutcome,
    CountPacking,
    zero_sum_masks,
)
from fedrisk.horizontal.binning.run import BankRows, federated_binning, replay_bank
from fedrisk.horizontal.layout import public_max_weight
from fedrisk.models.binning import METHODS, BinningParams

SIZES = {"bank-a": 1400, "bank-b": 700, "bank-c": 2100}


def bank_rows(name: str, n: int, seed: int, flip: bool = False) -> BankRows:
    """Synthetic rows: a skewed amount and a small count with NaNs, a text column with a
    category only this bank holds and a few missing values; labels depend on all three."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(8.0, 1.0, n)
    income[rng.random(n) < 0.08] = np.nan
    late = rng.poisson(1.2, n).astype(np.float64)
    late[rng.random(n) < 0.03] = np.nan
    region = rng.choice(
        np.array(["north", "south", "east", " west ", "", f"only-{name}"]),
        n,
        p=[0.35, 0.25, 0.2, 0.1, 0.05, 0.05],
    )
    z = 0.6 * (8.0 - np.nan_to_num(np.log(income), nan=8.0)) + 0.5 * np.nan_to_num(late)
    z = z + 0.4 * (region == "south") - 1.8
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(np.int64)
    if flip:
        y = 1 - y
    return BankRows(name, {"income": income, "late_payments": late, "region": region}, y)


def banks(flip: bool = False) -> list[BankRows]:
    return [bank_rows(name, n, k, flip) for k, (name, n) in enumerate(SIZES.items())]


@cache
def keys() -> BankKeys:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 1024-bit keys warn, on purpose: fast tests
        public_key, private_key = generate_keypair(1024)
    return BankKeys(public_key, private_key, threading.Event())


@cache
def run(method: str, aggregation: str):
    return federated_binning(BinningParams(method=method), banks(), aggregation, keys())


@pytest.mark.parametrize("aggregation", ["plain", pytest.param("paillier", marks=pytest.mark.slow)])
@pytest.mark.parametrize("method", METHODS)
def test_tables_equal_the_pooled_computation_exactly(method, aggregation):
    params = BinningParams(method=method)
    rows = banks()
    y = np.concatenate([b.y for b in rows])
    out = run(method, aggregation)
    assert [t.name for t in out.tables] == ["income", "late_payments", "region"]
    for table in out.tables:
        values = np.concatenate([b.columns[table.name] for b in rows])
        pooled = params.table_of(params.fit(table.name, values, y), values, y)
        assert table.binning == pooled.binning  # the same cuts / groups
        assert np.array_equal(table.good, pooled.good)
        assert np.array_equal(table.bad, pooled.bad)
        assert table.iv == pytest.approx(pooled.iv, abs=1e-12)
    assert out.seconds > 0 and out.bytes_sent == out.transcript.total_bytes > 0
    assert {e.round for e in out.transcript.entries} == {0}
    # 'optimal' merges prebins into fewer bins; every method bins the text column
    region = out.tables[2].binning
    assert {c for g in region.groups for c in g} >= {"north", "only-bank-a", "west"}
    if aggregation == "plain":
        assert out.encryptions == 0
    else:  # one encryption per ciphertext a bank sent
        sent = [
            e
            for e in out.transcript.entries
            if e.what.startswith("encrypted_") and e.receiver == "server"
        ]
        assert out.encryptions > 0 and len(sent) == 2 * len(SIZES)


def to_server(out) -> list:
    return [e for e in out.transcript.entries if e.receiver == "server"]


def to_banks(out) -> list:
    return [e for e in out.transcript.entries if e.sender == "server"]


@pytest.mark.slow
def test_under_paillier_the_aggregator_receives_ciphertexts_and_category_values_only():
    out = run("optimal", "paillier")
    whats = {e.what for e in to_server(out)}
    assert whats == {
        "identity",
        "category_values",
        "encrypted_grid_counts",
        "encrypted_bin_counts",
        "ack",
    }
    for e in to_server(out):
        if e.what.startswith("encrypted_"):
            assert (e.protection, e.readable_by_receiver) == ("ciphertext", False)
        else:  # names and category values, no count: no plaintext number crossed
            assert e.protection == "plaintext"
    # the banks get ciphertexts they can read (they hold the key) and the category union
    assert {e.what for e in to_banks(out)} == {
        "identity",
        "schema_request",
        "category_union",
        "encrypted_summed_grid_counts",
        "encrypted_summed_counts",
    }
    for e in to_banks(out):
        if e.what.startswith("encrypted_"):
            assert (e.protection, e.readable_by_receiver) == ("ciphertext", True)


def test_under_plain_the_aggregator_reads_every_banks_counts():
    out = run("optimal", "plain")
    counts = [e for e in to_server(out) if e.what in ("grid_counts", "bin_counts")]
    assert len(counts) == 2 * len(SIZES)
    assert all(e.protection == "plaintext" and e.readable_by_receiver for e in counts)
    assert {"cuts", "summed_counts"} <= {e.what for e in to_banks(out)}


def replies_of(params: BinningParams, rows: list[BankRows], aggregation: str) -> list:
    """Every reply a bank sent, as it left the bank."""
    sent = []

    def capture(msg, context, call_next):
        reply = call_next(msg, context)
        if msg.metadata.message_type != IDENTIFY:
            sent.append(reply)
        return reply

    federated_binning(params, rows, aggregation, keys(), client_mods=[capture])
    return sent


def plaintext_part(reply) -> dict:
    """A reply's content without its ciphertexts."""
    cfg = reply.content["config"]
    return {k: cfg[k] for k in cfg if k != CIPHERTEXTS}


@pytest.mark.slow
def test_no_label_derived_plaintext_reaches_the_aggregator_under_paillier():
    params = BinningParams(method="optimal")
    sent = replies_of(params, banks(), "paillier")
    flipped = replies_of(params, banks(flip=True), "paillier")
    assert len(sent) == 4 * len(SIZES)
    for reply in sent:
        assert not carries_plaintext_numbers(reply)
        assert not reply.content.array_records and not reply.content.metric_records
    # what the aggregator can read is the same whatever the labels
    assert [plaintext_part(r) for r in sent] == [plaintext_part(r) for r in flipped]
    # under plain it is not: the labelled counts cross in the clear
    plain = replies_of(params, banks(), "plain")
    assert any(carries_plaintext_numbers(r) for r in plain)


@pytest.mark.slow
def test_every_bank_holds_the_tables_and_the_harness_can_replay_bank_0():
    """The Simulation Engine's fallback (banks out of process): bank 0's computation
    repeated from the encrypted sums the aggregator relayed gives the banks' tables."""
    rows = tuple(banks())
    params = BinningParams(method="optimal")
    k = keys()
    bound = public_max_weight(max(SIZES.values()))  # the bound federated_binning uses
    job = BanksJob(params, rows, "paillier", k.public_key, k.private_key, bound)
    aggregator = AggregatorOutcome()
    side = BanksOutcome()
    names = tuple(b.name for b in rows)
    run_engine(
        "inprocess",
        make_aggregator_app(
            AggregatorJob(params, names, "paillier", k.public_key, bound), aggregator
        ),
        make_bank_app(job, side),
        len(rows),
    )
    assert aggregator.tables is None  # it never could compute them
    assert sorted(side.tables) == sorted(names)
    replayed = replay_bank(job, aggregator)
    for tables in [*side.tables.values(), replayed]:
        for table, first in zip(tables, side.tables[names[0]]):
            assert table.binning == first.binning
            assert np.array_equal(table.good, first.good) and np.array_equal(table.bad, first.bad)


@pytest.mark.slow
def test_only_every_banks_masked_vector_once_decrypts_to_a_sum():
    """The banks' zero-sum masks cancel in the product of all three banks' ciphertexts;
    one bank's vector relayed alone, or raised to the power 3 (which would pass the
    count slot without masks), decrypts to values uniform mod n and is refused."""
    k = keys()
    packing = CountPacking(k.public_key, n_banks=3, row_bound=1024)
    cipher, decryptor = VectorCipher(k.public_key), VectorDecryptor(k.private_key)
    counts = [np.arange(300, dtype=np.int64) % (7 + i) for i in range(3)]
    n_ct = packing.n_ciphertexts(300)
    blobs = [
        packing.encrypt(cipher, c, zero_sum_masks(k.private_key, 3, i, "grid", n_ct))
        for i, c in enumerate(counts)
    ]
    cts = [cipher.from_bytes(b, len(b)) for b in blobs]
    total = cipher.to_bytes(cipher.add(*cts))
    got = packing.decrypt(cipher, decryptor, total, 300, "summed counts")
    assert np.array_equal(got, sum(counts))
    for forged in (
        blobs[0],
        cipher.to_bytes(cipher.add(*[cts[0]] * 3)),
        cipher.to_bytes(cipher.add(cts[0], cts[1])),
    ):
        with pytest.raises(ProtocolError, match="legal sum|banks' vectors|exceeds"):
            packing.decrypt(cipher, decryptor, forged, 300, "summed counts")
    # without masks the count slot alone would let the cube of one bank through
    plain = packing.encrypt(cipher, counts[0])
    three = cipher.to_bytes(cipher.add(*[cipher.from_bytes(plain, len(plain))] * 3))
    assert np.array_equal(packing.decrypt(cipher, decryptor, three, 300, "x"), 3 * counts[0])


@pytest.mark.parametrize("aggregation", ["plain", "paillier"])
def test_banks_with_different_columns_stop_the_run_in_one_line(aggregation):
    rows = banks()
    other = rows[1]
    renamed = {("region_code" if c == "region" else c): v for c, v in other.columns.items()}
    rows[1] = BankRows(other.name, renamed, other.y)
    with pytest.raises(ProtocolError) as err:
        federated_binning(BinningParams(), rows, aggregation, keys())
    message = str(err.value)
    assert "\n" not in message
    assert "bank-b's columns" in message and "region_code (text)" in message
    assert "differ from bank-a's" in message


def test_bad_arguments_are_refused():
    k = keys()
    with pytest.raises(ValueError, match="aggregation must be one of plain, paillier"):
        federated_binning(BinningParams(), banks(), "secagg", k)
    threshold = BankKeys(k.public_key, None, threading.Event())
    with pytest.raises(ValueError, match="threshold key is not supported"):
        federated_binning(BinningParams(), banks(), "paillier", threshold)
    with pytest.raises(ValueError, match="one value per label"):
        BankRows("bank-x", {"a": np.zeros(3)}, np.zeros(4, dtype=np.int64))
