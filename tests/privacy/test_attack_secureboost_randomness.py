"""The bank attacks the randomness of the histograms it decrypts (SecureBoost).

The bank holds the private key, so from any ciphertext C it decrypts to M it can read
C·(1 − M·n) = R^n mod n², the ciphertext's randomness. It made the (g, h) ciphertexts
c_i itself, so it knows each r_i^n too. A data party's folded histogram ciphertext,
left as the product of the c_i over the rows left of each candidate (raised to the
fold's powers of two), would carry R^n = Π_j (Π_{i∈S_j} r_i^n)^(2^(w·(k−1−j))): the
bank could *check* any guess of which customers S_j fall left of a candidate — for a
bin holding one customer, try each one. The party multiplies every ciphertext it sends
by a fresh Enc(0) of its own; then the correct guess no longer checks out.

The attack runs on exactly what the bank holds: its private key, the ciphertexts it
sent, the reply it received, and a guess of S_j (here the true one, the best a guess
can be: if even that fails, every guess does).
"""

from __future__ import annotations

import warnings

import gmpy2
import numpy as np
import pytest

from fedrisk.crypto.gh_packing import GHLayout
from fedrisk.models.boosting import GH_FRAC_BITS, column_and_bin
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.secureboost import federate_secureboost
from fedrisk.runs.vertical import prepare_vertical
from fedrisk.scenario import load_scenario
from fedrisk.vertical.secureboost import party as party_module
from fedrisk.vertical.secureboost.protocol import BINS_KEY, GH_KEY, TREE_KEY
from tests.conftest import SCENARIOS

SMALL = [
    "model.kind=secureboost",
    "secureboost.trees=1",
    "secureboost.max_depth=1",
    "secureboost.max_bins=8",
    "privacy.key_bits=1024",
    "data.customers=800",
]


def capture_root_histogram():
    """Run one tree; return (the bank's private key, what the first data party held
    and sent for the root: its bin codes, split ids, the tree's (g, h) ciphertexts and
    its folded reply)."""
    s = load_scenario(SCENARIOS / "vertical-synthetic.toml", SMALL)
    seen = {}

    def spy(msg, context, call_next):
        reply = call_next(msg, context)
        cfg = msg.content.config_records.get("config", {})
        first = int(context.node_config["partition-id"]) == 0
        if first and str(cfg.get("stage")) == "histograms" and "root" not in seen:
            seen["root"] = {
                "codes": context.state[BINS_KEY]["train"].numpy(),
                "per_feature": context.state[BINS_KEY]["per-feature"].numpy(),
                "split_ids": context.state[BINS_KEY]["split-ids"].numpy(),
                "rows": context.state[TREE_KEY]["rows"].numpy(),
                "gh": context.state[GH_KEY]["gh"].numpy(),
                "reply": reply.content["sums"]["node-0"].numpy(),
            }
        return reply

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        setup = prepare_vertical(s, None, RunSecrets(b"randomness-attack".ljust(32, b"\0")))
    federate_secureboost(s, setup, show_progress=False, client_mods=[spy])
    return setup.bank.private_key, seen["root"]


def randomness(c: int, key) -> gmpy2.mpz:
    """R^n mod n² of a ciphertext, read with the private key (after decrypting it)."""
    n, nsq = gmpy2.mpz(key.public_key.n), gmpy2.mpz(key.public_key.nsquare)
    m = gmpy2.mpz(key.raw_decrypt(int(c)))
    return gmpy2.mpz(c) * (1 - m * n % nsq) % nsq


def guess_checks_out(key, root) -> bool:
    """The bank's check: does the first folded ciphertext's randomness equal what the
    guessed row sets (here the true ones) would give?"""
    nsq = gmpy2.mpz(key.public_key.nsquare)
    rows_r = [randomness(int.from_bytes(r.tobytes(), "big"), key) for r in root["gh"]]
    codes = root["codes"][root["rows"]]
    layout = GHLayout(len(rows_r), GH_FRAC_BITS)
    k = layout.per_ciphertext(key.public_key.n)
    order = np.argsort(root["split_ids"])  # split id -> candidate
    expected = gmpy2.mpz(1)
    for candidate in order[:k]:  # the first folded ciphertext, first candidate on top
        j, b = column_and_bin(root["per_feature"], int(candidate))
        product = gmpy2.mpz(1)
        for i in np.flatnonzero(codes[:, j] <= b):
            product = product * rows_r[i] % nsq
        expected = gmpy2.powmod(expected, gmpy2.mpz(1) << layout.slot_bits, nsq) * product % nsq
    observed = randomness(int.from_bytes(root["reply"][0].tobytes(), "big"), key)
    return observed == expected


@pytest.fixture(scope="module")
def defended():
    return capture_root_histogram()


def test_the_bank_cannot_check_which_customers_fall_in_a_bin(defended):
    key, root = defended
    assert root["reply"].shape[0] >= 1 and len(root["gh"]) > 100
    assert not guess_checks_out(key, root)


def test_without_the_partys_fresh_randomness_the_check_succeeds(monkeypatch):
    """The same attack on a party that does not re-randomise: the true guess checks
    out, so the bank could test guesses row by row. (Shows the attack is real and the
    test above can fail.)"""
    monkeypatch.setattr(party_module, "rerandomise", lambda cts, cipher: cts)
    key, root = capture_root_histogram()
    assert guess_checks_out(key, root)
