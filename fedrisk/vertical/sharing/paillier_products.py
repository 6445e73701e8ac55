"""The products of the secret-sharing protocol without a dealer (``privacy.triples =
"paillier"``): the bank and one data party, each with its own Paillier key, the way
FATE's SSHE-LR makes them.

For a product X·y (X the owner's, y the holder's share) the holder sends Enc_h(y) under
its own key; the owner computes Enc_h(X·y) homomorphically (Pippenger multi-
exponentiation, :func:`fedrisk.crypto.hetero.encrypted_feature_sums`, the features in
the exponent), multiplies in Enc_h(r) for a mask r from its own secret, uniform over
2^(64 + 11 + log2(terms) + 40) (statistically hiding X·y to 2^-40) and with a fresh
textbook obfuscator (the key holder knows its inputs' randomness; a short-exponent one
would let it test guesses of X), and returns it. The holder decrypts its half
(X·y + r) mod 2^64; the owner keeps −r. No triple is made first: the products are
computed directly, which is what the triples would be spent on.

Per batch (bank 0, data party 1; z and d4 as in :mod:`.protocol`):

1. bank → party: Enc_0(⟨w_1⟩_0), and Enc_1(X_0⟨w_0⟩_1 + r) from the party's latest
   Enc_1(⟨w_0⟩_1). The party decrypts its half of the bank's product, returns
   Enc_0(X_1⟨w_1⟩_0 + r') and Enc_1(⟨d4⟩_1).
2. bank → party: Enc_1(X_0ᵀ⟨d4⟩_1 + r'') and Enc_0(⟨d4⟩_0). The party decrypts its share
   of the bank's gradient, updates ⟨w_0⟩_1 and ⟨w_1⟩_1, returns Enc_0(X_1ᵀ⟨d4⟩_0 + r''')
   and Enc_1(⟨w_0⟩_1) for the next batch.
"""

from __future__ import annotations

import math
import time

import gmpy2
import numpy as np
from flwr.app import Context, Message, MessageType
from phe.paillier import PaillierPrivateKey, PaillierPublicKey

from fedrisk.crypto.hetero import decode_signed, encrypted_feature_sums
from fedrisk.crypto.paillier import (
    ObfuscatorPool,
    VectorCipher,
    decrypt_many,
    generate_keypair,
)
from fedrisk.crypto.sharing import (
    FEATURE_FRAC_BITS,
    Prg,
    ProductKey,
    decode,
    ring_from_bytes,
    ring_matmul,
    truncate,
)
from fedrisk.privacy.secrets import PartySecret
from fedrisk.vertical.sharing.protocol import (
    BANK,
    CONFIG_STATE,
    StepConstants,
    intercept_mask,
    residual_offset,
    updated_share,
)

STATISTICAL_BITS = 40
FEATURE_BITS = 11  # |fixed-point feature| ≤ 8·2^8


def mask_bits(terms: int) -> int:
    """Bits of the owner's mask: 64 (a share) + 11 (a feature) + log2(terms) + 40."""
    return 64 + FEATURE_BITS + max(1, math.ceil(math.log2(max(terms, 2)))) + STATISTICAL_BITS


def draw_masks(secret: PartySecret, count: int, bits: int, *label: int) -> list[int]:
    """``count`` uniform integers below 2^bits from the owner's own secret, through
    AES-CTR (:class:`fedrisk.crypto.sharing.Prg`): the key holder decrypts X·y + r, so
    r's bits must not come from a generator whose state its outputs give away."""
    words = -(-bits // 64)
    raw = (
        Prg(secret.digest("sharing/paillier-mask", *label))
        .words(count * words, "mask")
        .reshape(count, words)
    )
    top = bits - 64 * (words - 1)
    out = []
    for row in raw.tolist():
        value = 0
        for w in row:
            value = (value << 64) | int(w)
        out.append(value >> (64 - top))
    return out


class ProductSide:
    """One party's Paillier side: its own key pair (it encrypts its shares and decrypts
    its halves) and its peer's public key (it masks products under it)."""

    def __init__(
        self,
        own: PaillierPrivateKey,
        peer: PaillierPublicKey,
        secret: PartySecret,
        obfuscation: str,
        tag: int,
    ) -> None:
        self.own, self.peer, self.secret, self.tag = own, peer, secret, tag
        self.own_cipher = VectorCipher(
            own.public_key, ObfuscatorPool(own.public_key, obfuscation, private_key=own)
        )
        # the masks' obfuscators: textbook r^n under the peer's key, whatever the run's
        # obfuscation (the peer holds that key and its inputs' randomness)
        self.peer_cipher = VectorCipher(peer, ObfuscatorPool(peer, "full"))
        self.encrypt_s = self.decrypt_s = 0.0
        self.encryptions = 0

    def encrypt_own(self, values: np.ndarray) -> list[bytes]:
        started = time.perf_counter()
        cts = self.own_cipher.encrypt([int(v) for v in np.asarray(values, np.uint64).tolist()])
        self.encrypt_s += time.perf_counter() - started
        self.encryptions += len(cts)
        return self.own_cipher.to_bytes(cts)

    def masked_product(
        self, blobs: list, X: np.ndarray, kind: str, label: tuple[int, ...]
    ) -> tuple[list[bytes], np.ndarray]:
        """(Enc_peer(X·y + r) for y the peer's encrypted share, −r mod 2^64): X (floats,
        z-scored) as rows × columns; 'fwd' sums over columns, 'bwd' over rows."""
        terms = X.shape[1] if kind == "fwd" else X.shape[0]
        cts = self.peer_cipher.from_bytes(list(blobs), terms)
        nsq = gmpy2.mpz(self.peer.nsquare)
        M = X.T if kind == "fwd" else X
        sums = encrypted_feature_sums(cts, M, nsq, workers=None)
        masks = draw_masks(self.secret, len(sums), mask_bits(terms), self.tag, *label)
        started = time.perf_counter()
        enc_masks = self.peer_cipher.encrypt(masks)
        self.encrypt_s += time.perf_counter() - started
        self.encryptions += len(masks)
        out = [s * e % nsq for s, e in zip(sums, enc_masks)]
        kept = np.array([(-m) % 2**64 for m in masks], dtype=np.uint64)
        return self.peer_cipher.to_bytes(out), kept

    def open_half(self, blobs: list) -> np.ndarray:
        """Its half of a product it holds the share of: (X·y + r) mod 2^64."""
        started = time.perf_counter()
        cts = self.own_cipher.from_bytes(list(blobs), len(blobs))
        n = self.own.public_key.n
        values = decrypt_many(self.own, cts)
        self.decrypt_s += time.perf_counter() - started
        return np.array([decode_signed(v, n) % 2**64 for v in values], dtype=np.uint64)


def _label(pass_id: int, batch: int, key: ProductKey) -> tuple[int, int, int]:
    return pass_id, batch, key.code


# --- the data party's side -------------------------------------------------------------------


def new_party_key(context: Context, bits: int) -> bytes:
    """The data party's own key pair (kept in its state); its public n for the bank."""
    public, private = generate_keypair(bits)
    state = context.state[CONFIG_STATE]
    state["paillier-p"] = int(private.p).to_bytes((private.p.bit_length() + 7) // 8, "big")
    state["paillier-q"] = int(private.q).to_bytes((private.q.bit_length() + 7) // 8, "big")
    return int(public.n).to_bytes((public.n.bit_length() + 7) // 8, "big")


def party_side(context: Context, secret: PartySecret, obfuscation: str) -> ProductSide:
    """The data party's side from its state; its masks tagged with the run's tag the
    bank sent at set-up (public)."""
    state = context.state[CONFIG_STATE]
    p = int.from_bytes(state["paillier-p"], "big")
    q = int.from_bytes(state["paillier-q"], "big")
    own = PaillierPrivateKey(PaillierPublicKey(p * q), p, q)
    peer = PaillierPublicKey(int.from_bytes(state["bank-paillier-n"], "big"))
    return ProductSide(own, peer, secret, obfuscation, int.from_bytes(state["run-tag"], "big"))


def party_forward(b, side: ProductSide, float_X: np.ndarray) -> tuple[dict, dict, dict]:
    """Step 1 at data party 1: (arrays to return, config to return, arrays to keep)."""
    i = b.index
    cfg = b.cfg
    hA = side.open_half(list(cfg["enc-product"]))  # its half of X_0·⟨w_0⟩_1
    key = ProductKey("fwd", i, BANK)
    enc, kept = side.masked_product(
        list(cfg["enc-input"]), float_X, "fwd", _label(b.pass_id, b.batch, key)
    )
    own = ring_matmul(b.X, b.arrays["w"]) + kept
    z = truncate(own, FEATURE_FRAC_BITS, 0) + truncate(hA, FEATURE_FRAC_BITS, 1)
    if not b.train:
        return {"score-share": z}, {"enc-product": enc}, {}
    return {}, {"enc-product": enc, "enc-input": side.encrypt_own(z)}, {"delta": z}


def party_backward(b, side: ProductSide, float_X: np.ndarray) -> tuple[dict, dict, dict]:
    """Step 2 at data party 1: its share of the bank's gradient and of its own, both
    updates, Enc_0(X_1ᵀ⟨d4⟩_0 + r) and Enc_1(⟨w_0⟩_1) for the next batch."""
    i = b.index
    cfg = b.cfg
    G0 = side.open_half(list(cfg["enc-product"]))
    wp = updated_share(
        b.arrays["wp"], G0, 1, b.constants, FEATURE_FRAC_BITS, intercept_mask(b.widths[BANK])
    )
    key = ProductKey("bwd", i, BANK)
    enc, kept = side.masked_product(
        list(cfg["enc-input"]), float_X, "bwd", _label(b.pass_id, b.batch, key)
    )
    G = ring_matmul(b.X.T, b.arrays["delta"]) + kept
    w = updated_share(b.arrays["w"], G, 0, b.constants, FEATURE_FRAC_BITS, 1)
    return {}, {"enc-product": enc, "enc-input": side.encrypt_own(wp)}, {"w": w, "wp": wp}


# --- the bank's side -------------------------------------------------------------------------


class BankPaillier:
    """The bank's Paillier side: its key pair (the run's), the party's public key, and
    the party's latest Enc_1(⟨w_0⟩_1)."""

    def __init__(self, job, party_ns: list, tag: int) -> None:
        peer = PaillierPublicKey(int.from_bytes(party_ns[0], "big"))
        self.side = ProductSide(
            job.private_key, peer, job.secret, job.scenario.privacy.obfuscation, tag
        )
        self.own_n_bytes = int(job.public_key.n).to_bytes(
            (job.public_key.n.bit_length() + 7) // 8, "big"
        )
        self.partner_enc: list | None = None

    def receive_input(self, blobs) -> None:
        self.partner_enc = list(blobs)

    @property
    def encrypt_s(self) -> float:
        return self.side.encrypt_s

    @property
    def decrypt_s(self) -> float:
        return self.side.decrypt_s

    @property
    def encryptions(self) -> int:
        return self.side.encryptions


def _send(bank, stage, cfg, rnd, what) -> Message:
    (reply,) = bank.ask(
        bank.nodes, MessageType.TRAIN, [bank.message(stage, cfg, {}, rnd)], what, rnd
    )
    return reply


def bank_forward(bank, pass_id, index, positions, split, X, F, train, rnd):
    """Step 1 from the bank: returns (its share of z, the party's reply)."""
    hp = bank.paillier
    side = hp.side
    key0 = ProductKey("fwd", BANK, 1)
    enc_c, kept_c = side.masked_product(hp.partner_enc, F, "fwd", _label(pass_id, index, key0))
    cfg = {
        **bank.batch_cfg(0, pass_id, index, positions, split, train, None),
        "enc-input": side.encrypt_own(bank.wp[1]),
        "enc-product": enc_c,
    }
    reply = _send(bank, "fwd", cfg, rnd, "scores" if train else "joint prediction")
    rcfg = reply.content["config"]
    own = ring_matmul(X, bank.w) + kept_c
    hB = side.open_half(list(rcfg["enc-product"]))  # its half of X_1·⟨w_1⟩_0
    z = truncate(own, FEATURE_FRAC_BITS, 0) + truncate(hB, FEATURE_FRAC_BITS, 1)
    return z, reply


def bank_train_batch(bank, epoch: int, index: int, positions: np.ndarray) -> None:
    hp = bank.paillier
    side = hp.side
    X, F = bank.X_train[positions], bank.F_train[positions]
    rows = len(positions)
    z, reply = bank_forward(bank, epoch, index, positions, "train", X, F, True, epoch)
    delta = z + residual_offset(bank.y[positions], bank.frac_bits)
    key = ProductKey("bwd", BANK, 1)
    enc_g, kept_g = side.masked_product(
        list(reply.content["config"]["enc-input"]), F, "bwd", _label(epoch, index, key)
    )
    G0 = ring_matmul(X.T, delta) + kept_g
    cfg = {
        **bank.batch_cfg(0, epoch, index, positions, "train", True, None),
        "enc-product": enc_g,
        "enc-input": side.encrypt_own(delta),
    }
    reply = _send(bank, "bwd", cfg, epoch, "gradients")
    rcfg = reply.content["config"]
    G1 = side.open_half(list(rcfg["enc-product"]))
    constants = StepConstants(bank.frac_bits, rows, bank.s.model.learning_rate, bank.s.model.l2)
    bank.wp[1] = updated_share(bank.wp[1], G1, 1, constants, FEATURE_FRAC_BITS, 1)
    bank.w = updated_share(
        bank.w, G0, 0, constants, FEATURE_FRAC_BITS, intercept_mask(bank.widths[BANK])
    )
    hp.receive_input(rcfg["enc-input"])


def bank_predict_batch(bank, pass_id, index, positions, split, X, rnd) -> np.ndarray:
    F = (bank.F_test if split == "test" else bank.F_train)[positions]
    z, reply = bank_forward(bank, pass_id, index, positions, split, X[positions], F, False, rnd)
    share = ring_from_bytes(reply.content["ss"]["score-share"].numpy())
    return decode(z + share, bank.frac_bits)


__all__ = [
    "BankPaillier",
    "bank_forward",
    "ProductSide",
    "bank_predict_batch",
    "bank_train_batch",
    "draw_masks",
    "mask_bits",
    "new_party_key",
    "party_backward",
    "party_forward",
    "party_side",
]
