"""The bank receives no partial score and no weight of another party in the secret-sharing
protocol; at the end it learns the joint scores z (review of who_learns_what["bank"]).

One attack, the bank's, on three protocols: everything the bank receives from a data
party (the ClientApp's replies, recorded by a Flower mod) and what it decrypts with its
own key, per training batch. Each array is decoded as signed fixed point at every
plausible scale (its low k bits as a signed k-bit integer, k = 24 … 64: a mask over
the high bits only would show at a small k) and, pooled over the run's batches,
correlated with the party's true partial scores u = X_party·w_party at that step (the
simulator's truth: the party's z-scored rows and its weights rebuilt from both shares,
used only to score the attack). With ``privacy.protocol = "paillier"`` one reply is u
itself (|corr| = 1): the attack works. With ``"secret_sharing"`` (dealer, and
``triples = "paillier"``) nothing the bank receives during training, alone or added to
its own share of the residual, correlates with u, and no array of a party's width
decodes to that party's weights. The same attack from each data party's view finds
neither the labels nor the other data party's partial scores.

At the end the bank is meant to learn z, the model's output, for the customers it
scores. With one data party the prediction messages give it z and nothing else (the same
attack on them finds nothing; z minus the bank's own part is that party's final partial
score, which who_learns_what states). With two data parties it learns more: each
party's own partial score, from that party's score share and the bank's own half of the
party's product, and after reveal = "own" data party 1's as well (FINDING, high, the
xfail at the end).
"""

from __future__ import annotations

import numpy as np
import pytest

from fedrisk.crypto.paillier import decrypt_many
from fedrisk.crypto.sharing import (
    FEATURE_FRAC_BITS,
    Prg,
    ProductKey,
    decode,
    encode,
    holder_half,
    holder_pad,
    owner_share,
    ring_matmul,
    truncate,
)
from fedrisk.data.vertical import load_vertical
from fedrisk.vertical.sharing.protocol import BANK, batch_starts, correction_slices
from tests.privacy.test_attack_sharing_uniform import (
    DEALER_NAME,
    View,
    capture,
    dealer_view,
    paillier_view,
    words_of,
)

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:1024-bit Paillier keys")]

SCALES = (24, 32, 40, 48, 56, 64)


def no_correlation(n: int) -> float:
    """A bound on |corr| for n independent pairs, over a few hundred candidates (the
    null's sd is 1/sqrt(n); its maximum over 400 candidates is about 3.5/sqrt(n))."""
    return 5 / np.sqrt(n)


def paillier_protocol_view() -> View:
    """The Paillier protocol (Hardy et al.) on the same data as dealer_view, one epoch."""
    return capture(protocol="paillier", rounds=1)


def signed_views(words: np.ndarray):
    """(k, the low k bits of each ring word as a signed integer) for each scale k."""
    w = np.asarray(words, dtype=np.uint64)
    for k in SCALES:
        low = (w << np.uint64(64 - k)).view(np.int64) >> np.int64(64 - k)
        yield k, low.astype(np.float64)


def corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def label(ex) -> tuple[int, int]:
    return int(ex.cfg["pass"]), int(ex.cfg["batch"])


def widths_of(view: View) -> list[int]:
    for ex in view.party(view.names[0]):
        if ex.stage == "setup":
            return [int(w) for w in ex.cfg["widths"]]
    raise AssertionError("no set-up")


def bank_n(view: View) -> int:
    for ex in view.party(view.names[0]):
        if ex.stage == "setup":
            return int.from_bytes(ex.cfg["bank-paillier-n"], "big")
    raise AssertionError("no set-up")


def true_weights(view: View, i: int, ex) -> np.ndarray:
    """Data party i's weights (ring words, privacy.frac_bits fractional bits) when
    ``ex`` (its forward message) arrived: its own share plus the bank's (truth, for
    scoring; the bank's share from its f and its seed's v, or, under Paillier, as its
    code held it)."""
    if view.dealer_mode:  # the bank's f = ⟨w_i⟩_0 − v with v from the bank's seed
        key = ProductKey("fwd", i, BANK)
        v = holder_pad(
            Prg(view.seed_of(BANK)),
            key,
            int(ex.cfg["pass"]),
            int(ex.cfg["batch"]),
            widths_of(view)[i],
        )
        return ex.before["w"] + words_of(ex.arrays["f"]) + v
    return ex.before["w"] + view.bank_wp[(int(ex.cfg["pass"]), int(ex.cfg["batch"]))]


def training_steps(view: View, name: str) -> list[dict]:
    """Per training batch of data party ``name``: the true partial scores u and weights
    w, and what the bank received from it (arrays, and what it decrypted)."""
    steps = []
    if view.s.privacy.protocol == "paillier":  # the Paillier protocol: float replies
        for ex in view.party(name):
            if ex.stage == "scores" and "rows" in ex.cfg and "split" not in ex.cfg:
                w = ex.after["w"]
                steps.append({"u": ex.F @ w, "w": w, "received": dict(ex.reply_arrays)})
        return steps
    i = view.names.index(name) + 1
    fwd = [ex for ex in view.party(name) if ex.stage == "fwd" and ex.cfg["train"]]
    bwd = [ex for ex in view.party(name) if ex.stage == "bwd"]
    assert len(fwd) == len(bwd) > 0
    decrypted = []
    if not view.dealer_mode:  # what the bank decrypts, in order: fwd (rows), bwd (width)
        decrypted = [values for n, values in view.decrypted if n == bank_n(view)]
    for b, (f, g) in enumerate(zip(fwd, bwd)):
        w = decode(true_weights(view, i, f), view.s.privacy.frac_bits)
        received = {k: words_of(v) for k, v in {**f.reply_arrays, **g.reply_arrays}.items()}
        if decrypted:
            received["decrypted fwd half"] = np.array(
                [v % 2**64 for v in decrypted[2 * b]], dtype=np.uint64
            )
            received["decrypted bwd half"] = np.array(
                [v % 2**64 for v in decrypted[2 * b + 1]], dtype=np.uint64
            )
        if view.bank_delta:  # the bank's own share of the residual (its own state)
            received["own share of d4"] = view.bank_delta[b]
        elif decrypted:  # ... which it sent under its own key: Enc_0(⟨d4⟩_0)
            key = view.paillier_keys[bank_n(view)]
            cts = [int.from_bytes(c, "big") for c in g.cfg["enc-input"]]
            received["own share of d4"] = np.array(decrypt_many(key, cts), dtype=np.uint64)
        steps.append({"u": f.F @ w, "w": w, "received": received})
    return steps


def bank_attack(view: View, name: str) -> tuple[float, str, int]:
    """The bank's best |corr| between anything it received from ``name`` in training
    (each array, per column when it has one value per row per column, at every scale;
    and each added to its own share of d4) and that party's partial scores."""
    steps = training_steps(view, name)
    first = steps[0]  # a full batch: which arrays have one value per row (per column)
    per_row = {
        k: np.asarray(v).size // len(first["u"])
        for k, v in first["received"].items()
        if np.asarray(v).size % len(first["u"]) == 0
    }
    candidates: dict[str, list[np.ndarray]] = {}
    for step in steps:
        rows = len(step["u"])
        received = step["received"]
        own = received.get("own share of d4")
        for key, values in received.items():
            values = np.asarray(values)
            if key not in per_row:
                continue
            columns = values.reshape(rows, per_row[key]).T
            for j, col in enumerate(columns):
                candidates.setdefault(f"{key}[{j}]", []).append(col)
                if own is not None and key != "own share of d4" and len(columns) == 1:
                    candidates.setdefault(f"{key} + own d4", []).append(col + own)
                    candidates.setdefault(f"{key} - own d4", []).append(col - own)
    u = np.concatenate([step["u"] for step in steps])
    best, where = 0.0, ""
    for key, parts in candidates.items():
        values = np.concatenate(parts)
        views = [("float", values)] if values.dtype.kind == "f" else signed_views(values)
        for k, decoded in views:
            c = abs(corr(decoded, u))
            if c > best:
                best, where = c, f"{key} at {k}"
    return best, where, len(u)


def weights_in_replies(steps: list[dict], frac_bits: int) -> list[str]:
    """Arrays of a party's width the bank received (in ``training_steps``) that decode,
    at the weights' fractional bits and from their low k bits for every scale k, to that
    party's weights at some step."""
    weights = [s["w"] for s in steps if np.abs(s["w"]).max() > 1e-3]
    hits = []
    for step in steps:
        for key, values in step["received"].items():
            values = np.asarray(values)
            if values.dtype.kind == "f" or values.size != len(steps[0]["w"]):
                continue
            for k, decoded in signed_views(values):
                scaled = decoded / 2.0**frac_bits
                if any(np.abs(scaled - w).max() < 1e-3 for w in weights):
                    hits.append(f"{key} at {k}")
    return hits


def test_the_attack_reads_partial_scores_in_the_paillier_protocol():
    """The control: with privacy.protocol = "paillier" the same attack on the same data
    finds each party's partial scores (what that protocol's who_learns_what admits)."""
    view = paillier_protocol_view()
    for name in view.names:
        best, where, _ = bank_attack(view, name)
        assert best > 0.999, (name, best, where)


def test_secret_sharing_bank_receives_no_partial_score_in_training():
    """HOLDS. Dealer mode, two data parties, two epochs; and triples = "paillier" (one
    data party, where the bank also decrypts its halves): nothing the bank receives
    while training correlates with any party's partial scores at any scale."""
    for view in (dealer_view(), paillier_view()):
        for name in view.names:
            best, where, n = bank_attack(view, name)
            assert n >= 500
            assert best < no_correlation(n), (view.s.privacy.triples, name, best, where)


def test_secret_sharing_bank_receives_no_weight_of_another_party():
    """HOLDS. No array the bank receives during training has a data party's weights in
    it (decoded at its fractional bits); the check itself finds weights where they are
    (the truth rebuilt from both shares is in the candidate list's format)."""
    for view in (dealer_view(), paillier_view()):
        bits = view.s.privacy.frac_bits
        for name in view.names:
            hits = weights_in_replies(training_steps(view, name), bits)
            assert hits == [], (view.s.privacy.triples, name, hits)
    # the check finds the weights when they are there: each step's weights, unmasked,
    # planted among what the bank received
    view = dealer_view()
    bits = view.s.privacy.frac_bits
    steps = training_steps(view, view.names[0])
    planted = [{**s, "received": {**s["received"], "planted": encode(s["w"], bits)}} for s in steps]
    assert len(weights_in_replies(planted, bits)) >= len(steps) - 1


# --- a data party's view -------------------------------------------------------------------


def party_attack(view: View, name: str) -> tuple[float, str, int]:
    """Data party ``name``'s best |corr| between anything it received while training
    (each array, per column, at every scale; each row-length one also added to its own
    share of d4; under Paillier the halves it decrypted) and the labels of the batch's
    customers or another data party's partial scores."""
    holder = load_vertical(view.s).holder
    label_of = dict(zip(holder.ids.tolist(), holder.y.tolist()))
    align = next(ex for ex in view.party(name) if ex.stage == "align")
    train_ids = list(align.cfg["train-ids"])
    others = {
        m: {label(ex): ex for ex in view.party(m) if ex.stage == "fwd" and ex.cfg["train"]}
        for m in view.names
        if m != name
    }
    mine = [ex for ex in view.party(name) if ex.stage in ("fwd", "bwd") and ex.cfg["train"]]
    decrypted = []
    if not view.dealer_mode:
        party_n = next(n for n in view.paillier_keys if n != bank_n(view))
        decrypted = [values for n, values in view.decrypted if n == party_n]
    candidates: dict[str, list] = {}
    targets: dict[str, list] = {"labels": []}
    for k, ex in enumerate(mine):
        rows = len(ex.cfg["rows"])
        received = {key: words_of(v) for key, v in ex.arrays.items()}
        if decrypted:
            received["decrypted half"] = np.array([v % 2**64 for v in decrypted[k]], np.uint64)
        own = ex.after.get("delta") if ex.stage == "fwd" else ex.before.get("delta")
        for key, values in received.items():
            if values.size % rows or values.size // rows == 0:
                continue
            columns = values.reshape(rows, -1).T
            for j, col in enumerate(columns):
                candidates.setdefault(f"{ex.stage} {key}[{j}]", []).append(col)
                if own is not None and len(columns) == 1:
                    candidates.setdefault(f"{ex.stage} {key} + own d4", []).append(col + own)
        if ex.stage != "fwd":
            continue
        ids = [train_ids[r] for r in ex.cfg["rows"]]
        targets["labels"].append(np.array([label_of[i] for i in ids], dtype=np.float64))
        for m, by_label in others.items():
            o = by_label[label(ex)]
            w = decode(true_weights(view, view.names.index(m) + 1, o), view.s.privacy.frac_bits)
            targets.setdefault(f"{m}'s partial scores", []).append(o.F @ w)
    truth = {k: np.concatenate(v) for k, v in targets.items()}
    n = len(truth["labels"])
    best, where = 0.0, ""
    for key, parts in candidates.items():
        stage = key.split(" ", 1)[0]
        # forward and backward messages of one batch cover the same rows, in order
        if sum(len(p) for p in parts) != n:
            continue
        for k, decoded in signed_views(np.concatenate(parts)):
            for what, target in truth.items():
                c = abs(corr(decoded, target))
                if c > best:
                    best, where = c, f"{key} at {k} against {what} ({stage})"
    return best, where, n


def test_a_data_party_receives_no_label_and_no_score():
    """HOLDS (who_learns_what["data parties"]: "no label, residual, gradient or score of
    anyone"). The same attack from each data party's view: nothing it receives while
    training correlates with the labels of the customers in the batch or with the other
    data party's partial scores, at any scale; the control: its own share of d4 plus
    the bank's (which it never sees) is d4 = z − 4y + 2, which does."""
    view = dealer_view()
    for v in (view, paillier_view()):
        for name in v.names:
            best, where, n = party_attack(v, name)
            assert n >= 500
            assert best < no_correlation(n), (v.s.privacy.triples, name, best, where)
    # control: d4 itself, from both shares of one batch, tells the labels
    name = view.names[0]
    ex = next(e for e in view.party(name) if e.stage == "fwd" and e.cfg["train"])
    other = next(e for e in view.party(view.names[1]) if e.stage == "fwd" and label(e) == label(ex))
    d4 = ex.after["delta"] + other.after["delta"] + view.bank_delta[0]
    holder = load_vertical(view.s).holder
    label_of = dict(zip(holder.ids.tolist(), holder.y.tolist()))
    train_ids = list(next(e for e in view.party(name) if e.stage == "align").cfg["train-ids"])
    y = np.array([label_of[train_ids[r]] for r in ex.cfg["rows"]], dtype=np.float64)
    assert abs(corr(decode(d4, view.s.privacy.frac_bits), y)) > 0.5


# --- the end: the joint scores -----------------------------------------------------------------


def bank_prediction_view(view: View, name: str, pass_id: int):
    """For data party ``name`` in prediction pass ``pass_id`` (dealer mode): what the
    bank can compute from its own view — the party's score share plus the bank's own
    truncated half of that party's forward product (its seed's pad v and its dealer
    corrections) — and the truth u = X·w."""
    widths = widths_of(view)
    i = view.names.index(name) + 1
    ex = next(
        e
        for e in view.party(name)
        if e.stage == "fwd" and not e.cfg["train"] and int(e.cfg["pass"]) == pass_id
    )
    assert int(ex.cfg["batch"]) == 0
    rows = len(ex.cfg["rows"])
    dealt = next(
        e
        for e in view.party(DEALER_NAME)
        if e.stage == "dealer-pass" and int(e.cfg["pass"]) == pass_id
    )
    flat = words_of(dealt.reply_arrays["corrections"])
    at = batch_starts(widths, [int(r) for r in dealt.cfg["batch-rows"]], False, BANK)[0]
    key = ProductKey("fwd", i, BANK)
    sl = correction_slices(widths, rows, False, BANK)[key]
    v = holder_pad(Prg(view.seed_of(BANK)), key, pass_id, 0, widths[i])
    E = words_of(ex.reply_arrays["E"]).reshape(rows, widths[i])
    half = holder_half("fwd", E, v, flat[at + sl.start : at + sl.stop])
    mine = truncate(half, FEATURE_FRAC_BITS, 1)
    w = decode(true_weights(view, i, ex), view.s.privacy.frac_bits)
    share = ex.reply_arrays.get("score-share")
    if share is None:  # more data parties: its share went to data party 1, sealed
        return None, ex.F @ w, mine
    guess = decode(words_of(share) + mine, view.s.privacy.frac_bits)
    return guess, ex.F @ w, words_of(share)


def test_one_data_party_the_bank_learns_only_z_at_the_end():
    """HOLDS (who_learns_what: "the joint scores z ... with one data party, z minus its
    own part is that party's final partial score"). Bank + one data party, dealer mode:
    in each prediction pass the score share alone is uncorrelated with the party's
    partial score at every scale, and so is the share plus the bank's own half of the
    party's product (the attack of the xfail below): the party's share also carries its
    half of the *bank's* product, so only the full sum, z, comes out."""
    view = capture(parties=1)
    s = view.s
    for pass_id in (s.rounds + 1, s.rounds + 2):  # held-out customers, then training ones
        guess, u, share = bank_prediction_view(view, view.names[0], pass_id)
        assert len(u) > 300
        assert abs(corr(guess, u)) < no_correlation(len(u))
        for _, decoded in signed_views(share):
            assert abs(corr(decoded, u)) < no_correlation(len(u))


def strip_party_one_after_reveal(view: View, pass_id: int) -> np.ndarray:
    """Data party 1's half of the *bank's* product in a prediction pass, which the bank
    computes itself once the reveal hands it ⟨w_0⟩_1."""
    name = view.names[0]
    ex = next(
        e
        for e in view.party(name)
        if e.stage == "fwd" and not e.cfg["train"] and int(e.cfg["pass"]) == pass_id
    )
    reveal = next(e for e in view.party(name) if e.stage == "reveal")
    v_prime = words_of(reveal.reply_arrays["weight-share"]) - words_of(ex.reply_arrays["f-up"])
    rows, prg = len(ex.cfg["rows"]), Prg(view.seed_of(BANK))
    own = next(X for split, X, _ in view.joint if split == ex.cfg["split"])  # its columns
    X0 = own[np.asarray(ex.cfg["rows"], dtype=np.int64)]
    key = ProductKey("fwd", BANK, 1)
    theirs = ring_matmul(X0, v_prime) - owner_share(prg, key, pass_id, 0, rows)
    return decode(truncate(theirs, FEATURE_FRAC_BITS, 1), view.s.privacy.frac_bits)


def test_two_data_parties_the_bank_learns_only_z_at_the_end():
    """HOLDS since the review (it found the bank adding data party 2's score share to
    its own half of party 2's product: u_2 exactly). Now the parties' shares reach
    data party 1 sealed and the bank gets one sum. The bank's best try per party, the
    sum plus its own half of that party's product, is uncorrelated with the party's
    partial score; with its halves of every party's product (and, after the reveal,
    party 1's half of the bank's product) it gets u_1 + u_2 = z − X_0·w_0, as stated."""
    view = dealer_view()
    s = view.s
    fb = s.privacy.frac_bits
    for pass_id in (s.rounds + 1, s.rounds + 2):
        summed = next(
            e
            for e in view.party(view.names[0])
            if e.stage == "sum" and int(e.cfg["pass"]) == pass_id
        )
        total = words_of(summed.reply_arrays["score-share"])
        halves, truths = [], []
        for name in view.names:
            _, u, mine = bank_prediction_view(view, name, pass_id)
            halves.append(mine)
            truths.append(u)
            assert abs(corr(decode(total + mine, fb), u)) < no_correlation(len(u)), name
        for ex in view.party(view.names[1]):
            if ex.stage == "fwd" and not ex.cfg["train"]:
                assert "score-share" not in ex.reply_arrays
        stripped = strip_party_one_after_reveal(view, pass_id)
        both = decode(total + halves[0] + halves[1], fb) - stripped
        assert corr(both, truths[0] + truths[1]) > 0.999  # the sum it is meant to see
