"""Secret-shared vertical logistic regression (``privacy.protocol = "secret_sharing"``).

Parties: the bank (index 0: labels, its own columns and the intercept) and data parties
1..k (their columns); with ``privacy.triples = "dealer"`` also a dealer, a ClientApp
holding no data. Every number below lives in the ring Z_2^64 in fixed point
(:mod:`fedrisk.crypto.sharing`): features with 8 fractional bits, everything else with
``privacy.frac_bits``.

Who shares what. Party o's weights w_o are split between o and its *partner* p(o): the
bank for a data party, data party 1 for the bank. Both start at 0 and never exist in the
clear during training.

Per mini-batch (rows chosen by the bank, as in the Paillier protocol):

1. Scores. z = Σ_o X_o w_o with X_o w_o = X_o⟨w_o⟩_o + X_o⟨w_o⟩_p(o): the first term is
   local to o; the second is a *product* of o's matrix and p(o)'s share. Each product
   ends as a two-party sharing (o, p(o)) of the small value X_o w_o, truncated locally
   (SecureML). The residual, scaled by 4, is d4 = z − 4y + 2 (the Taylor residual of the
   Paillier protocol, d = z/4 − y', times 4 so no party divides a share): the bank adds
   −4y + 2 to its share, so d4 is shared among all parties.
2. Gradients. G_o = X_oᵀ d4 = X_oᵀ⟨d4⟩_o + Σ_h X_oᵀ⟨d4⟩_h: a product for every other
   party h. h's half goes to p(o) (sealed for party 1 when it crosses the bank, so the
   bank never holds both halves of a product of its own matrix), so G_o ends shared
   between o and p(o), truncated locally, scaled by −lr/(4·batch) and added to w_o's
   shares with the L2 decay (bias excluded), as the Paillier protocol's update.

How a product X·y is made: with the dealer, a matrix Beaver triple (o holds U, h holds
v, both hold shares of U·v; o opens E = X − U once per batch, h opens f = y − v per
product). With ``triples = "paillier"`` (the bank and one data party, no helper, the way
FATE's SSHE-LR does it) h sends Enc_h(y) under its own Paillier key, o returns
Enc_h(X·y + r) with a statistically hiding mask r from its own secret and a fresh
textbook obfuscator, h decrypts its half (X·y + r) mod 2^64 and o keeps −r.

At the end the bank learns the joint scores of the customers it scores (held-out, and
training ones when it calibrates): the model's output, from the parties' shares of z.
With ``reveal = "own"`` each party then receives its partner's share of its own
weights; with ``"none"`` the weights stay shared.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, RecordDict

from fedrisk.crypto.sharing import ProductKey, encode, ring_bytes, truncate
from fedrisk.privacy.secrets import PartySecret
from fedrisk.vertical.protocol import QUERY, classify_vertical

BANK = 0
QUERY_SS = "query.sharing"
DEALER_NAME = "dealer"
STATE_KEY = "fedrisk.ss"  # a party's shares, seeds and keys (ArrayRecord)
CONFIG_STATE = "fedrisk.ss.cfg"  # its peers' channel and Paillier keys (ConfigRecord)
# the extra bits of the L2 decay constant (lr·l2 is small: 3e-5 at the defaults)
DECAY_EXTRA_BITS = 16
PREDICT_CHUNK = 4096  # rows per prediction batch


def partner(o: int) -> int:
    """Who holds the other share of party o's weights."""
    return 1 if o == BANK else BANK


def training_products(parties: int) -> list[ProductKey]:
    """Every product of one training batch, in the order they are made."""
    fwd = [ProductKey("fwd", o, partner(o)) for o in range(parties)]
    bwd = [ProductKey("bwd", o, h) for o in range(parties) for h in range(parties) if h != o]
    return fwd + bwd


def prediction_products(parties: int) -> list[ProductKey]:
    return [ProductKey("fwd", o, partner(o)) for o in range(parties)]


def products_for(parties: int, train: bool) -> list[ProductKey]:
    return training_products(parties) if train else prediction_products(parties)


def batch_starts(widths: list[int], batch_rows: list[int], train: bool, holder: int) -> list[int]:
    """Where each batch's block of the dealer's corrections for ``holder`` starts in its
    flat array for one pass (blocks in batch order, products in their order within)."""
    starts, at = [], 0
    for rows in batch_rows:
        starts.append(at)
        at += sum(
            sl.stop - sl.start for sl in correction_slices(widths, rows, train, holder).values()
        )
    return starts


def correction_slices(
    widths: list[int], rows: int, train: bool, holder: int
) -> dict[ProductKey, slice]:
    """Each of ``holder``'s products' corrections within one batch's block."""
    out, at = {}, 0
    for k in products_for(len(widths), train):
        if k.holder == holder:
            size = k.out_size(rows, widths[k.owner])
            out[k] = slice(at, at + size)
            at += size
    return out


@dataclass(frozen=True)
class StepConstants:
    """The public constants of one update, in ring units: the learning rate over
    4·batch (the 4 of d4) and the decay lr·l2."""

    frac_bits: int
    rows: int
    learning_rate: float
    l2: float

    @property
    def batch_shift(self) -> int:
        return int(math.floor(math.log2(self.rows)))

    @property
    def rate(self) -> np.uint64:
        value = self.learning_rate / 4.0 * 2.0**self.batch_shift / self.rows
        return encode(np.array([value]), self.frac_bits)[0]

    @property
    def decay(self) -> np.uint64:
        return encode(np.array([self.learning_rate * self.l2]), self.frac_bits + DECAY_EXTRA_BITS)[
            0
        ]


def updated_share(
    weights: np.ndarray,
    gradient: np.ndarray,
    party: int,
    c: StepConstants,
    feature_bits: int,
    decay_mask: np.ndarray,
) -> np.ndarray:
    """One party's share of w − lr·(G/(4·rows) + l2·w) from its shares of w and of
    G = Xᵀ d4 (at 2^(feature_bits + frac_bits)); ``party`` is its role (0: the owner,
    1: the partner) in the local truncations, ``decay_mask`` 0 for the intercept."""
    g = truncate(gradient, feature_bits + c.batch_shift, party)  # G / 2^(8 + shift)
    step = truncate(g * c.rate, c.frac_bits, party)
    decay = truncate(weights * c.decay, c.frac_bits + DECAY_EXTRA_BITS, party) * decay_mask
    return weights - step - decay


def intercept_mask(width: int) -> np.ndarray:
    """The L2 decay's mask over the bank's weights: 1, and 0 for the intercept (last)."""
    mask = np.ones(width, dtype=np.uint64)
    mask[-1] = 0
    return mask


def residual_offset(y: np.ndarray, frac_bits: int) -> np.ndarray:
    """What the bank adds to its share of z to make d4 = z − 4y + 2."""
    return encode(2.0 - 4.0 * np.asarray(y, dtype=np.float64), frac_bits)


@dataclass
class DealerJob:
    """The dealer: no data, its own secret (the seeds it deals from) and the run's tag
    (:func:`run_tag`: public, so a secrets file kept for replays never deals the same
    pads to another scenario or other data); it learns the shapes from the bank."""

    secret: PartySecret = field(default_factory=PartySecret.fresh, compare=False)
    tag: int = 0


def run_tag(scenario_text: str, *fingerprints: str) -> int:
    """A public 128-bit tag of one run: the resolved scenario and the parties' data
    fingerprints. Mixed into every pad's derivation so that the same secrets give the
    same pads (bit-for-bit replays) only for the same run: two runs that shared pads
    would let the bank subtract E's and read feature differences."""
    h = hashlib.sha256(scenario_text.encode())
    for f in fingerprints:
        h.update(b"\x00" + f.encode())
    return int.from_bytes(h.digest()[:16], "big")


def ring_content(config: dict, arrays: dict[str, np.ndarray]) -> RecordDict:
    """A message's content in this protocol: one config record and, if any, the ring
    arrays as bytes (record "ss"; uint8, so the transcript takes them for the shares
    they are, not for numbers anyone reads)."""
    content = RecordDict({"config": ConfigRecord(dict(config))})
    if arrays:
        content["ss"] = ArrayRecord({k: Array(ring_bytes(v)) for k, v in arrays.items()})
    return content


def classify_sharing(msg: Message, to_server: bool) -> tuple[str, str, bool]:
    """(transcript name, protection, readable by the receiver) of one message of the
    secret-sharing protocol; everything that is not a ciphertext is a uniform share or
    a value masked by a one-time pad the receiver lacks."""
    if msg.metadata.message_type == QUERY:  # identify, PSI and the held-out split
        return classify_vertical(msg, to_server)
    cfg = msg.content.config_records.get("config", {})
    arrays = msg.content.array_records.get("ss", {})
    stage = str(cfg.get("stage", ""))
    if to_server:
        if "dealt" in cfg:  # the bank's shares of the pads' products; the rest sealed
            return "dealt_correlations", "masked", False
        if "channel-key" in cfg:
            return "public_keys", "plaintext", True
        if "sealed-seeds" in cfg:
            return "sealed_correlated_randomness", "ciphertext", False
        # the outputs: shares the bank adds to its own to read z, or its own weights
        if "score-share" in arrays:
            return "score_shares", "masked", True
        if "weight-share" in arrays:
            return "own_weight_share", "masked", True
        if "enc-product" in cfg:
            return "encrypted_masked_products", "masked", False  # under its key: X·y + r
        if "enc-input" in cfg:
            return "encrypted_shares", "ciphertext", False  # under the sender's key
        if arrays:
            return "masked_features_and_shares", "masked", False
        if "sealed" in cfg:
            return "sealed_shares", "ciphertext", False
        return "ack", "plaintext", True
    if stage in ("keys", "dealer-setup"):
        return "public_keys", "plaintext", True
    if stage == "setup":  # widths and public keys; the dealer's seed in it is sealed
        return "public_keys_and_sealed_seed", "plaintext", True
    if stage == "dealer-pass":
        return "batch_sizes", "plaintext", True
    if stage == "reveal":  # the party adds it to its own share: its weights
        return "own_weight_share", "masked", True
    if stage == "sum":  # the others' shares of z, sealed for data party 1: shares to it
        return "sealed_score_shares", "masked", False
    if "enc-product" in cfg:
        return "encrypted_masked_products", "masked", False
    if "enc-input" in cfg:
        return "encrypted_shares", "ciphertext", False
    if arrays:
        return "masked_features_and_shares", "masked", False
    if "sealed" in cfg or "sealed-seed" in cfg:
        return "sealed_correlated_randomness", "ciphertext", False
    return "row_selection", "plaintext", True


__all__ = [
    "BANK",
    "CONFIG_STATE",
    "DEALER_NAME",
    "PREDICT_CHUNK",
    "QUERY_SS",
    "STATE_KEY",
    "DealerJob",
    "StepConstants",
    "classify_sharing",
    "batch_starts",
    "correction_slices",
    "intercept_mask",
    "partner",
    "prediction_products",
    "products_for",
    "residual_offset",
    "ring_content",
    "run_tag",
    "training_products",
    "updated_share",
]
