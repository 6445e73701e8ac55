"""A second, adversarial review of the secret-sharing protocol (after the first review's
fixes: the prediction "sum" path, the run tag, AES-CTR Paillier masks, reveal = "none").

Views as in test_attack_sharing_uniform.py (a Flower mod records every message into a
data party or the dealer and the reply the bank gets back; the bank's and parties'
channel keys are captured so an addressee's sealed blobs can be opened); the
simulator's truth only scores an attack. Three data parties (bank + telecom + tax +
utility) and the dealer, 2 epochs of batches of 256. HOLDS: a claim that holds.
FINDING: a test asserting the claim (xfail until fixed; both fixed since).

- the sum path: the only SecureML party-0-truncated share that crosses unmasked is a
  data party's score share, sealed for data party 1: its top byte is always 0 (by
  construction) but its low 56 bits are uniform and uncorrelated with that party's
  partial score; the bank's best per-party combination is uncorrelated with each
  partial score, and after the reveal it gets exactly u_1 + u_2 + u_3 (HOLDS);
- no ring array that crosses in the clear (either way through the bank) carries the
  truncation's structure (top byte constant) except the documented outputs (HOLDS);
- in training, what the bank holds of a data party's residual share (its f's, one per
  product, and the others' halves in the clear) differs by independent pads (HOLDS);
- the run tag is sent to every data party and is a deterministic, unsalted hash of
  every party's raw rows *and the bank's labels*: a data party learns whether any
  other party's data changed between two runs of one scenario and can confirm a guess
  of them (FINDING, low);
- transcript labels: the reveal's weight shares and the bank's final score shares are
  marked unreadable although their receiver reconstructs its own weights / the joint
  scores from them, unlike the Paillier protocol's "masked_gradient" (readable: its
  own value under its own mask) (FINDING, low); the sealed score shares for data
  party 1 are marked "ciphertext" though party 1 holds the key (its content is a
  share: "masked" would be accurate) (FINDING, informational, same test).
"""

from __future__ import annotations

import functools
import json
from dataclasses import replace

import numpy as np
import pytest

from fedrisk.crypto.channel import ChannelKey
from fedrisk.crypto.sharing import decode
from fedrisk.privacy.secrets import PartySecret, RunSecrets
from fedrisk.runs.sharing import sharing_run_tag
from fedrisk.runs.vertical import prepare_vertical
from fedrisk.scenario import load_scenario
from tests.privacy.test_attack_sharing_scores import (
    bank_prediction_view,
    corr,
    no_correlation,
    strip_party_one_after_reveal,
)
from tests.privacy.test_attack_sharing_uniform import (
    MASTER,
    SECOND,
    TOML,
    View,
    _tmpdir,
    run_view,
    words_of,
)

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:1024-bit Paillier keys")]

THIRD = '[[federation.parties]]\nname = "utility"\nsignal = 0.8\n'


def three_party_scenario():
    folder = _tmpdir()
    text = TOML.format(
        rounds=2,
        customers=6000,
        batch=256,
        second=SECOND + THIRD,
        protocol="secret_sharing",
        triples='triples = "dealer"\n',
    )
    (folder / "s.toml").write_text(text)
    return load_scenario(folder / "s.toml", []), folder


@functools.cache
def three_party_view() -> View:
    s, folder = three_party_scenario()
    return run_view(s, folder, RunSecrets(MASTER))


def setup_cfg(view: View) -> dict:
    return next(e.cfg for e in view.party(view.names[0]) if e.stage == "setup")


def opened_sum_shares(view: View, pass_id: int) -> list[np.ndarray]:
    """What data party 1 opens in the "sum" message of ``pass_id``: the other data
    parties' score shares (its own channel key, the senders' public keys)."""
    cfg = setup_cfg(view)
    names, keys = list(cfg["names"]), list(cfg["peer-keys"])
    me = ChannelKey.from_private_bytes(names[1], view.channel[names[1]])
    ex = next(e for e in view.party(names[1]) if e.stage == "sum" and int(e.cfg["pass"]) == pass_id)
    return [
        words_of(np.frombuffer(me.open(names[m], keys[m], blob), dtype=np.uint8))
        for m, blob in enumerate(ex.cfg["sealed-shares"], start=2)
    ]


def chi2_low_byte(words: np.ndarray) -> float:
    from scipy import stats

    counts = np.bincount((words & np.uint64(0xFF)).astype(np.int64), minlength=256)
    return float(stats.chisquare(counts).pvalue)


# --- the sum path --------------------------------------------------------------------------------


def test_sum_path_party_one_and_bank_learn_no_individual_partial_score():
    """HOLDS. Per prediction pass (held-out, then calibration): each score share data
    party 1 opens is a party-0 truncation (top byte 0 on every word: the structure), yet
    its low 56 bits are uniform and it is uncorrelated with that party's partial score
    u_m at the 56-bit scale; the bank's sum plus its own half of party m's product is
    uncorrelated with u_m; after the reveal (it strips data party 1's half of the bank's
    product) what it holds is exactly u_1 + u_2 + u_3 (= z − X_0·w_0), no single u_m."""
    view = three_party_view()
    s = view.s
    fb = s.privacy.frac_bits
    assert len(view.names) == 3
    for pass_id in (s.rounds + 1, s.rounds + 2):
        opened = opened_sum_shares(view, pass_id)
        truths, halves = [], []
        for name in view.names:
            _, u, mine = bank_prediction_view(view, name, pass_id)
            truths.append(u)
            halves.append(mine)
        n = len(truths[0])
        assert n > 400
        for m, share in enumerate(opened, start=1):  # data parties 2 and 3
            assert np.all(share >> np.uint64(56) == 0)  # SecureML role 0: top byte 0
            assert chi2_low_byte(share) > 1e-6
            signed56 = ((share << np.uint64(8)).view(np.int64) >> np.int64(8)).astype(float)
            assert abs(corr(signed56, truths[m])) < no_correlation(n)
            assert abs(corr(share.astype(float), truths[m])) < no_correlation(n)
        summed = next(
            e
            for e in view.party(view.names[0])
            if e.stage == "sum" and int(e.cfg["pass"]) == pass_id
        )
        total = words_of(summed.reply_arrays["score-share"])
        for m in range(3):
            guess = decode(total + halves[m], fb)
            assert abs(corr(guess, truths[m])) < no_correlation(n), view.names[m]
        stripped = strip_party_one_after_reveal(view, pass_id)
        everything = decode(total + halves[0] + halves[1] + halves[2], fb) - stripped
        assert np.max(np.abs(everything - sum(truths))) < 0.01  # exactly the sum
        for m in range(3):  # no single partial score beyond what the sum carries
            rest = sum(truths) - truths[m]
            assert corr(everything - rest, truths[m]) > 0.999  # control: needs the others'
            assert np.std(everything - truths[m]) > 0.1 * np.std(truths[m])


# --- the truncation's structure in the clear ------------------------------------------------------

OUTPUTS = {"weight-share", "score-share"}  # the documented outputs (tested elsewhere)


def test_no_clear_ring_array_carries_the_truncation_structure():
    """HOLDS. Every ring array that crosses in the clear, bank → party and party → bank
    (and the dealer's to the bank), in every pass: the fraction of words whose top byte
    is 0x00 or 0xFF stays near 2/256; a party-0 truncated share (all 0x00) or a party-1
    one (all 0xFF) exposed without a fresh pad would give ~1. The control: the outputs
    (a truncated score share, weight shares) do show it or are excluded by design."""
    view = three_party_view()
    checked = 0
    for name, exchanges in view.log.items():
        for ex in exchanges:
            for direction, arrays in (("in", ex.arrays), ("out", ex.reply_arrays)):
                for key, blob in arrays.items():
                    if key in OUTPUTS or np.asarray(blob).dtype != np.uint8:
                        continue
                    words = words_of(blob)
                    if words.size < 256:
                        continue
                    top = words >> np.uint64(56)
                    extreme = float(np.mean((top == 0) | (top == 255)))
                    assert extreme < 0.05, (name, ex.stage, direction, key, extreme)
                    checked += 1
    assert checked > 100
    share = opened_sum_shares(view, view.s.rounds + 1)[0]  # the control
    assert np.mean((share >> np.uint64(56)) == 0) == 1.0


def test_training_bank_gets_a_residual_share_only_under_independent_pads():
    """HOLDS. Data party m (m ≥ 2) sends its residual share ⟨d4⟩_m (a party-0 truncation,
    top byte 0) under one fresh pad per product: f0 to the bank, f_j for data party j
    (relayed, so the bank sees it). Their differences f0 − f_j (what the bank can form)
    are pad differences: uniform in the top byte too, and the f's never show ⟨d4⟩_m's
    zero top byte."""
    view = three_party_view()
    for name in view.names[1:]:
        for ex in view.party(name):
            if ex.stage != "fwd" or not ex.cfg["train"]:
                continue
            f = {k: words_of(v) for k, v in ex.reply_arrays.items() if k.startswith("f")}
            assert set(f) == {"f0", "f1", "f2", "f3"} - {f"f{view.names.index(name) + 1}"}
            truth = ex.after["delta"]
            assert np.all(truth >> np.uint64(56) == 0)  # what the pads hide
            for k, v in f.items():
                assert np.mean(v >> np.uint64(56) == 0) < 0.05, (name, k)
                d = f["f0"] - v if k != "f0" else None
                if d is not None:
                    assert np.mean(d >> np.uint64(56) == 0) < 0.05, (name, k)


# --- the run tag ----------------------------------------------------------------------------------


# Second-review finding, fixed since (low): the run tag sent to every data party was an
# unsalted hash of every party's raw rows and the bank's labels: a data party could
# confirm a guess of another party's data. Now each fingerprint is keyed by its owner's
# secret. What remains, and is stated: with one secrets file kept for replays, the tag
# changes when any party's data changes (one bit across two runs), so pads never repeat.
def test_the_run_tag_lets_no_data_party_confirm_a_guess_of_the_banks_labels():
    s, _ = three_party_scenario()
    setup = prepare_vertical(s, None, RunSecrets(MASTER))
    tag = sharing_run_tag(s, setup)
    # the attacker knows the scenario, its own data and secret, and guesses the bank's
    # data exactly right; it lacks the bank's secret (here: any other secret)
    guessed = replace(setup, bank=replace(setup.bank, secret=PartySecret(bytes(32))))
    assert sharing_run_tag(s, guessed) != tag
    y = setup.bank.y.copy()
    y[0] = 1 - y[0]  # one customer's label: the tag changes (pads never repeat)
    assert sharing_run_tag(s, replace(setup, bank=replace(setup.bank, y=y))) != tag


# --- transcript labels ----------------------------------------------------------------------------


def transcript_rows(view: View) -> list[dict]:
    path = view.folder / "transcript.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# Second-review finding, fixed since (low): vertical/sharing/protocol.py
# classify_sharing marks the reveal's 'own_weight_share' (both ways) and the bank's
# 'score_shares' unreadable though the receiver reconstructs its own weights / z from
# them (the Paillier protocol marks its 'masked_gradient' readable for the same reason),
# and 'sealed_score_shares' 'ciphertext' though data party 1 holds the key (a share:
# 'masked'). Fix: return (..., 'masked', True) for score-share/weight-share and
# ('sealed_score_shares', 'masked', False) for stage 'sum'.
def test_transcript_says_readable_where_the_receiver_reconstructs_its_output():
    view = three_party_view()
    fb = view.s.privacy.frac_bits
    # the receivers do reconstruct: each data party its weights, the bank its own
    for name in view.names:
        ex = next(e for e in view.party(name) if e.stage == "reveal")
        w = decode(ex.after["weights"], fb)
        assert np.all(np.abs(w) < 64) and np.any(np.abs(w) > 1e-3)
    rows = transcript_rows(view)
    kinds = {}
    for r in rows:
        kinds.setdefault(r["what"], set()).add((r["protection"], r["readable_by_receiver"]))
    assert "own_weight_share" in kinds and "score_shares" in kinds
    assert kinds["own_weight_share"] == {("masked", True)}
    assert kinds["score_shares"] == {("masked", True)}
    assert kinds["sealed_score_shares"] == {("masked", False)}
