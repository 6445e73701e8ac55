"""The aggregator and the banks attack horizontal WOE binning under ``paillier``
(review of ``fedrisk.horizontal.binning.protocol``: its docstring and WHO_LEARNS_WHAT).

The aggregator's real view is every bank's reply (it receives them) and the public key;
a bank's is the aggregator's requests and its own rows and key. The attacks run the
real protocol on the shipped ``scenarios/scorecard-german.toml`` banks (3 banks, their
training rows), with Flower mods on the banks' ClientApp playing what the aggregator
sends them.

The protocol says: "the decrypted count slot must equal the number of banks, so a
single bank's vector relayed as 'the sum' is refused". The aggregator holds every
bank's ciphertexts and the public key, so it can relay bank A's vector *raised to the
number of banks* (count slot = n, every count n × A's), or A's vector times an Enc of
its own holding n − 1 in the count slot and 0 elsewhere: both pass the check, and the
receiving bank reads A's per-bin goods and bads (divided by n, or as they are).
"""

from __future__ import annotations

import threading
import warnings
from functools import cache

import gmpy2
import numpy as np
import pytest

from fedrisk.crypto.encoding import PackingError
from fedrisk.crypto.paillier import BankKeys, VectorCipher, VectorDecryptor, generate_keypair
from fedrisk.data.characteristics import prepare_characteristics
from fedrisk.errors import ProtocolError
from fedrisk.flower.recording_grid import IDENTIFY
from fedrisk.horizontal.binning.protocol import (
    CATEGORIES,
    CIPHERTEXTS,
    SUMMED_KEY,
    WHO_LEARNS_WHAT,
    CountPacking,
    zero_sum_masks,
)
from fedrisk.horizontal.binning.run import BankRows, federated_binning
from fedrisk.horizontal.layout import public_max_weight
from fedrisk.models.binning import GRID_CELLS
from fedrisk.runs.scorecard import binning_params
from fedrisk.scenario import load_scenario
from tests.conftest import SCENARIOS

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:1024-bit Paillier keys")]

SCENARIO = SCENARIOS / "scorecard-german.toml"


@cache
def keys() -> BankKeys:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        public_key, private_key = generate_keypair(1024)
    return BankKeys(public_key, private_key, threading.Event())


@cache
def scenario_banks(n_banks: int = 3):
    s = load_scenario(SCENARIO, [f"federation.banks={n_banks}"])
    assert s.privacy.aggregation == "paillier"
    data = prepare_characteristics(s)
    train = data.train
    banks = [
        BankRows(name, {c: train.columns[c][part] for c in train.names}, train.y[part])
        for name, part in zip(data.party_names, data.parts)
    ]
    return s, banks


def run(banks, mods, s=None):
    s = s or scenario_banks()[0]
    return federated_binning(binning_params(s), banks, "paillier", keys(), client_mods=mods)


def sent_by_banks(banks) -> list:
    """Every reply the banks sent: the aggregator's whole view of them."""
    sent = []

    def capture(msg, context, call_next):
        reply = call_next(msg, context)
        if msg.metadata.message_type != IDENTIFY:
            sent.append(reply)
        return reply

    run(banks, [capture])
    return sent


def readable(reply) -> dict:
    """What the aggregator can read in a reply: everything but the ciphertexts."""
    cfg = reply.content["config"]
    return {k: cfg[k] for k in cfg if k != CIPHERTEXTS}


def test_the_aggregator_reads_names_and_category_values_only():
    s, banks = scenario_banks()
    sent = sent_by_banks(banks)
    assert len(sent) == 4 * len(banks)
    for reply in sent:
        assert not reply.content.array_records and not reply.content.metric_records
        for k, v in readable(reply).items():
            assert k in ("stage", "party", "columns", "kinds", "ok") or k.startswith(CATEGORIES)
            if k == "ok":
                assert v == 1
    # nothing it reads depends on a label or a numeric value: flip every label and
    # shift every numeric column, and the readable part is the same
    changed = [
        BankRows(
            b.name,
            {c: (v if v.dtype.kind in "USO" else v * 1.7 + 3.0) for c, v in b.columns.items()},
            1 - b.y,
        )
        for b in banks
    ]
    assert [readable(r) for r in sent] == [readable(r) for r in sent_by_banks(changed)]


def packing_of(banks) -> CountPacking:
    """The public packing every party derives (federated_binning's row bound)."""
    k = keys()
    return CountPacking(k.public_key, len(banks), public_max_weight(max(len(b.y) for b in banks)))


def forging_mod(stage: str, forge, targets=(1,)):
    """The aggregator relays ``forge(bank 0's ciphertexts)`` to ``targets`` as the encrypted
    sum of ``stage``'s request ("counts": the summed grid histograms, from bank 0's
    ``grid`` reply; "finish": the summed labelled counts, from bank 0's ``counts``
    reply). Records bank 0's ciphertexts, what was relayed, whether a target refused it
    (an error in that very step; a later failure of the run comes after the leak), and
    what each bank holds as the summed labelled counts at the end."""
    held: dict = {"refused": False}
    source = {"counts": "grid", "finish": "counts"}[stage]

    def mod(msg, context, call_next):
        cfg = msg.content.config_records.get("config", {})
        now = str(cfg.get("stage", ""))
        who = int(context.node_config["partition-id"])
        forged = now == stage and who in targets and forge is not None
        if forged:
            if "relayed" not in held:
                held["relayed"] = forge(held["bank-0"])
            cfg[CIPHERTEXTS] = held["relayed"]
        try:
            reply = call_next(msg, context)
        except Exception:
            if forged:
                held["refused"] = True
            raise
        if forged and reply.has_error():
            held["refused"] = True
        if now == source and who == 0:
            held["bank-0"] = list(reply.content["config"][CIPHERTEXTS])
        if now == "finish" and SUMMED_KEY in context.state:
            rec = context.state[SUMMED_KEY]
            held[f"summed-{who}"] = np.concatenate(
                [rec[f"b{j}"].numpy().ravel() for j in range(len(rec))]
            )
        if now == "counts" and who in (0, 1):
            held[f"counts-{who}"] = list(reply.content["config"][CIPHERTEXTS])
        return reply

    return mod, held


def decrypt_vector(
    packing: CountPacking, blobs: list, length: int, unmask: tuple | None = None
) -> np.ndarray | None:
    """A vector as a bank holding the key reads it (no count-slot check); ``unmask``
    (bank, banks, stage): first take that bank's zero-sum masks back out (a bank knows
    them: they come from the shared key). None when it does not decode at all."""
    k = keys()
    cipher, decryptor = VectorCipher(k.public_key), VectorDecryptor(k.private_key)
    packed = decryptor.decrypt(cipher.from_bytes(blobs, packing.n_ciphertexts(length)))
    if unmask is not None:
        masks = zero_sum_masks(k.private_key, unmask[1], unmask[0], unmask[2], len(packed))
        packed = [(int(v) - m) % k.public_key.n for v, m in zip(packed, masks)]
    try:
        return packing.packer.unpack(packed, length + 1).astype(np.int64)
    except PackingError:
        return None


def attempt(stage: str, forge, targets=(1,)):
    s, banks = scenario_banks()
    mod, held = forging_mod(stage, forge, targets)
    try:
        run(banks, [mod])
        held["run completed"] = True
    except ProtocolError as exc:
        held["run completed"] = False
        held["error"] = str(exc)
    return held


def test_a_lone_banks_labelled_counts_raised_to_n_are_refused():
    """FINDING if it fails: bank 0's encrypted labelled counts cubed pass bank 1's
    count-slot check (3 banks): bank 1 reads bank 0's goods and bads per (pre)bin."""
    k = keys()
    nsq = gmpy2.mpz(k.public_key.nsquare)
    cipher = VectorCipher(k.public_key)  # the aggregator's: public key only

    def cube(blobs):
        return cipher.to_bytes(
            [gmpy2.powmod(c, 3, nsq) for c in cipher.from_bytes(blobs, len(blobs))]
        )

    held = attempt("finish", cube)
    s, banks = scenario_banks()
    packing = packing_of(banks)
    length = len(held.get("summed-1", []))
    leaked = length > 0 and np.array_equal(
        held["summed-1"],
        3 * decrypt_vector(packing, held["bank-0"], length, (0, len(banks), "counts"))[:-1],
    )
    assert held["refused"] or not leaked, (
        "bank-1 accepted bank-0's labelled counts x3 as the sum over 3 banks: it holds "
        "bank-0's goods and bads per (pre)bin (divide by 3)"
    )


def test_a_lone_banks_grid_with_a_forged_count_slot_is_refused():
    """FINDING if it fails: the aggregator (public key only) encrypts [0 ... 0 | 2]
    itself, the grid's length being public (numeric columns x (GRID_CELLS + 1)), and
    multiplies it into bank 0's encrypted grid histograms: count slot 3, counts bank
    0's alone; banks 1 and 2 read bank 0's histogram of every numeric column (its
    values to ~1.8 % resolution), and the run completes (every bank's cuts are bank 0's)."""
    k = keys()
    s, banks = scenario_banks()
    packing = packing_of(banks)
    schema = banks[0].schema
    length = len(schema.numeric) * (GRID_CELLS + 1)
    cipher = VectorCipher(k.public_key)

    def plus_two(blobs):
        extra = np.zeros(length + 1, dtype=np.uint64)
        extra[-1] = 2
        forged = cipher.encrypt(packing.packer.pack(extra))
        return cipher.to_bytes(cipher.add(cipher.from_bytes(blobs, len(blobs)), forged))

    # relayed to every bank, so every bank computes the same cuts and the run goes on
    held = attempt("counts", plus_two, targets=(0, 1, 2))
    read = decrypt_vector(packing, held["relayed"], length)  # what banks 1 and 2 decrypt
    bank0 = decrypt_vector(packing, held["bank-0"], length, (0, len(banks), "grid"))
    assert bank0 is not None and bank0[-1] == 1
    leaked = read is not None and np.array_equal(read[:-1], bank0[:-1])
    assert held.get("refused") or not leaked, (
        "banks 1 and 2 accepted bank-0's grid histograms as the sum over 3 banks (the aggregator "
        "added an encrypted 2 to the count slot) and computed its cuts from them"
    )


def test_with_two_banks_each_reads_the_others_counts_and_the_statement_says_so():
    s, banks = scenario_banks(2)
    mod, held = forging_mod("finish", None)  # no forgery: the true sum
    run(banks, [mod], s)
    packing = packing_of(banks)
    length = len(held["summed-0"])
    own = decrypt_vector(packing, held["counts-0"], length, (0, 2, "counts"))[:-1]
    other = decrypt_vector(packing, held["counts-1"], length, (1, 2, "counts"))[:-1]
    assert np.array_equal(held["summed-0"] - own, other)  # bank 0 reads bank 1's counts
    said = WHO_LEARNS_WHAT["paillier"]["banks"]
    assert "with two banks" in said and "by subtraction" in said


def test_the_count_packing_has_computed_headroom_and_never_wraps():
    k = keys()
    for n_banks, rows in [(2, 700), (3, 512), (5, 4096)]:
        bound = public_max_weight(rows)
        packing = CountPacking(k.public_key, n_banks, bound)
        assert packing.sum_bound.bit_length() <= 8 * packing.packer.slot_bytes
        cipher, decryptor = VectorCipher(k.public_key), VectorDecryptor(k.private_key)
        full = np.full(300, bound, dtype=np.int64)  # every bank at the bound in every slot
        vectors = [cipher.from_bytes(packing.encrypt(cipher, full), packing.n_ciphertexts(300))]
        summed = cipher.to_bytes(cipher.add(*(vectors * n_banks)))
        got = packing.decrypt(cipher, decryptor, summed, 300, "summed counts")
        assert np.array_equal(got, n_banks * full)
        with pytest.raises(ProtocolError, match="outside"):
            packing.encrypt(cipher, np.array([bound + 1]))
