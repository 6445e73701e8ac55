"""Additive secret sharing over the ring Z_2^64, with fixed-point numbers.

A value x is held as shares s_0 + s_1 + … ≡ x (mod 2^64), each share a ``uint64``;
numpy's unsigned arithmetic wraps mod 2^64, so sums and products of shares are ring
operations as they stand (never per element in Python).

Fixed point: features carry ``FEATURE_FRAC_BITS`` = 8 fractional bits (the z-scores the
Paillier protocol encodes, clipped to ±8); weights, scores and residuals carry
``frac_bits`` (the scenario's ``privacy.frac_bits``). A product carries the sum of its
factors' fractional bits and is brought back by *truncation*.

Truncation is SecureML's local truncation for two parties (Mohassel & Zhang 2017,
Theorem 1): party 0 keeps ⌊s_0 / 2^t⌋, party 1 keeps 2^64 − ⌊(2^64 − s_1) / 2^t⌋. When
|x| < 2^ℓ the result is ⌊x / 2^t⌋ + e with e ∈ {−1, 0, 1} (one unit in the last place),
except with probability at most 2^(ℓ+1−64), when it is off by about 2^(64−t): the
failure bound the run reports (:func:`truncation_failure_bound`). Truncation is only
ever applied to a *two-party* sharing of a small value, which is why every product in
:mod:`fedrisk.vertical.sharing` is gathered at two parties before it is truncated.

Products of one party's matrix X with a vector y another party holds (both private,
neither shared) use correlated randomness (a matrix Beaver triple, SecureML's): the
owner of X holds a uniform U, the holder of y a uniform v, and they hold shares of
U·v. The owner opens E = X − U, the holder f = y − v; then X·y = X·f + E·v + U·v, the
owner's half X·f + ⟨Uv⟩_0 and the holder's E·v + ⟨Uv⟩_1. E and f are uniform: U and v
are one-time pads, fresh for every batch and every product.

Correlated randomness is expanded from 32-byte seeds with AES-256 in counter mode
(``cryptography``): a party and the dealer who share a seed derive the same U, v and
shares without sending them; numpy's generators are not cryptographic (their state can
be recovered from outputs), so they never produce a pad.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# features as the Paillier protocol encodes them: z-scores clipped to ±8, 8 fractional bits
from fedrisk.crypto.hetero import FEATURE_CLIP, FEATURE_FRAC_BITS

RING_BITS = 64
# stated bounds the failure probabilities rest on: joint scores |z| < 2^5 (a PD within
# 1.3e-14 of 0 or 1; the bank checks the scores it learns at the end against it) and
# weights |w| < 2^6 on z-scored features; the residual 4d = z − 4y + 2 is then < 2^6
SCORE_BOUND_BITS = 5
WEIGHT_BOUND_BITS = 6


def encode(values: np.ndarray, frac_bits: int) -> np.ndarray:
    """Signed floats -> ring elements (two's complement, ``frac_bits`` fractional bits)."""
    q = np.rint(np.asarray(values, dtype=np.float64) * 2.0**frac_bits).astype(np.int64)
    return q.view(np.uint64)


def decode(ring: np.ndarray, frac_bits: int) -> np.ndarray:
    """Ring elements -> signed floats."""
    return np.asarray(ring, dtype=np.uint64).view(np.int64) / 2.0**frac_bits


def encode_features(X: np.ndarray) -> np.ndarray:
    """A party's z-scored features, clipped to ±8 and in 8-bit fixed point: the same
    numbers the Paillier protocol raises ciphertexts to."""
    return encode(np.clip(X, -FEATURE_CLIP, FEATURE_CLIP), FEATURE_FRAC_BITS)


def truncate(share: np.ndarray, bits: int, party: int) -> np.ndarray:
    """SecureML's local truncation of one share of a two-party sharing (``party`` 0 or
    1) by ``bits``; the two results share ⌊x / 2^bits⌋ up to one unit (see the module)."""
    share = np.asarray(share, dtype=np.uint64)
    shift = np.uint64(bits)
    if party == 0:
        return share >> shift
    return np.uint64(0) - ((np.uint64(0) - share) >> shift)


def truncation_failure_bound(value_bits: int) -> float:
    """Probability that one truncation of a two-party sharing of a value below
    2^value_bits (in ring units) is off by more than one unit: 2^(value_bits+1−64)."""
    return 2.0 ** (value_bits + 1 - RING_BITS)


def share(values: np.ndarray, parties: int, rng_words) -> list[np.ndarray]:
    """``parties`` additive shares of ring elements ``values``: the first parties − 1
    are uniform words from ``rng_words(count)``, the last makes the sum."""
    values = np.asarray(values, dtype=np.uint64)
    shares = [rng_words(values.size).reshape(values.shape) for _ in range(parties - 1)]
    last = values.copy()
    for s in shares:
        last -= s
    return [*shares, last]


def reconstruct(shares: list[np.ndarray]) -> np.ndarray:
    total = np.zeros_like(np.asarray(shares[0], dtype=np.uint64))
    for s in shares:
        total += np.asarray(s, dtype=np.uint64)
    return total


def ring_matmul(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """A @ B mod 2^64 (unsigned integer matmul wraps; no float rounding)."""
    return np.matmul(np.asarray(A, dtype=np.uint64), np.asarray(B, dtype=np.uint64))


class Prg:
    """Uniform ring words from a 32-byte seed: AES-256-CTR keyed by a hash of the seed
    and a label, so each (purpose, epoch, batch, product …) has its own stream."""

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise ValueError(f"a PRG seed is 32 bytes, got {len(seed)}")
        self._seed = seed

    def words(self, count: int, purpose: str, *label: int) -> np.ndarray:
        h = hashlib.blake2b(key=self._seed, digest_size=32, person=b"fedrisk-prg")
        h.update(purpose.encode())
        for n in label:
            h.update(b"\x00" + str(int(n)).encode())
        enc = Cipher(algorithms.AES(h.digest()), modes.CTR(b"\x00" * 16)).encryptor()
        return np.frombuffer(enc.update(bytes(8 * count)), dtype=np.uint64).copy()

    def matrix(self, shape: tuple[int, ...], purpose: str, *label: int) -> np.ndarray:
        return self.words(math.prod(shape), purpose, *label).reshape(shape)


# --- products of one party's matrix and another's vector -------------------------------------


@dataclass(frozen=True)
class ProductKey:
    """Names one product in one batch: ``kind`` 'fwd' (X·y, y over X's columns) or
    'bwd' (Xᵀ·y, y over its rows), the owner of X and the holder of y (party indices)."""

    kind: str
    owner: int
    holder: int

    def out_size(self, rows: int, columns: int) -> int:
        return rows if self.kind == "fwd" else columns

    def in_size(self, rows: int, columns: int) -> int:
        return columns if self.kind == "fwd" else rows

    @property
    def code(self) -> int:
        return (0 if self.kind == "fwd" else 1) + 2 * self.owner + 1024 * self.holder


def _apply(kind: str, M: np.ndarray, y: np.ndarray) -> np.ndarray:
    return ring_matmul(M, y) if kind == "fwd" else ring_matmul(M.T, y)


def owner_pad(prg: Prg, pass_id: int, batch: int, rows: int, columns: int) -> np.ndarray:
    """U: the owner's one-time pad over its batch matrix (one per batch, every product
    of that batch uses it; E = X − U is opened once)."""
    return prg.matrix((rows, columns), "U", pass_id, batch)


def holder_pad(prg: Prg, key: ProductKey, pass_id: int, batch: int, size: int) -> np.ndarray:
    """v: the holder's one-time pad over its vector, fresh per product."""
    return prg.words(size, "v", pass_id, batch, key.code)


def owner_share(prg: Prg, key: ProductKey, pass_id: int, batch: int, size: int) -> np.ndarray:
    """The owner's share of U·v (or Uᵀ·v), from its seed."""
    return prg.words(size, "Z", pass_id, batch, key.code)


def holder_correction(
    owner: Prg,
    holder: Prg,
    key: ProductKey,
    pass_id: int,
    batch: int,
    rows: int,
    columns: int,
    U: np.ndarray | None = None,
) -> np.ndarray:
    """What the dealer sends the holder: U·v − ⟨U·v⟩_owner (its share of the product of
    the two pads), computed from both parties' seeds (``U``: the owner's pad, if the
    caller expanded it already)."""
    if U is None:
        U = owner_pad(owner, pass_id, batch, rows, columns)
    v = holder_pad(holder, key, pass_id, batch, key.in_size(rows, columns))
    size = key.out_size(rows, columns)
    return _apply(key.kind, U, v) - owner_share(owner, key, pass_id, batch, size)


def owner_half(
    kind: str, X: np.ndarray, f: np.ndarray, z_owner: np.ndarray, y_own: np.ndarray | None = None
) -> np.ndarray:
    """The owner's half of X·y from the holder's opened f = y − v: X·f + ⟨Uv⟩_owner
    (plus X·y_own, the owner's own share of y, folded in)."""
    if y_own is not None:
        f = f + y_own
    return _apply(kind, X, f) + z_owner


def holder_half(kind: str, E: np.ndarray, v: np.ndarray, correction: np.ndarray) -> np.ndarray:
    """The holder's half of X·y from the owner's opened E = X − U: E·v + ⟨Uv⟩_holder."""
    return _apply(kind, E, v) + correction


# --- headroom --------------------------------------------------------------------------------


def product_bits(frac_bits: int, features: int, batch_size: int) -> dict[str, int]:
    """Bits each truncated quantity of one step needs (sign included), in ring units,
    from the stated bounds: features ±8 (3 bits + 8 fractional), weights below
    2^WEIGHT_BOUND_BITS, joint scores below 2^SCORE_BOUND_BITS, residuals 4d below
    2^(SCORE_BOUND_BITS + 1). 'scores': one party's X·w before truncation; 'gradient':
    Xᵀ·d4 over a batch."""
    columns = math.ceil(math.log2(features + 1))
    scores = FEATURE_FRAC_BITS + frac_bits + 3 + WEIGHT_BOUND_BITS + columns
    residual = SCORE_BOUND_BITS + 1
    gradient = FEATURE_FRAC_BITS + frac_bits + 3 + residual + math.ceil(math.log2(batch_size))
    return {"scores": scores + 1, "gradient": gradient + 1}


def check_headroom(frac_bits: int, features: int, batch_size: int) -> tuple[str, int] | None:
    """None if every product fits the ring; else (which product, bits it needs)."""
    for what, bits in product_bits(frac_bits, features, batch_size).items():
        if bits > RING_BITS - 1:
            return what, bits
    return None


def max_frac_bits(features: int, batch_size: int) -> int:
    """The most fractional bits whose products still fit the ring."""
    f = 1
    while check_headroom(f + 1, features, batch_size) is None:
        f += 1
    return f


def ring_bytes(values: np.ndarray) -> np.ndarray:
    """Ring elements as the bytes that cross the wire (uint8: a byte blob, not numbers
    anyone reads as such; the transcript takes a share for the share it is)."""
    return np.ascontiguousarray(values, dtype=np.uint64).reshape(-1).view(np.uint8)


def ring_from_bytes(blob: np.ndarray, shape: tuple[int, ...] | None = None) -> np.ndarray:
    out = np.ascontiguousarray(blob, dtype=np.uint8).view(np.uint64)
    return out.reshape(shape) if shape is not None else out


__all__ = [
    "FEATURE_CLIP",
    "FEATURE_FRAC_BITS",
    "RING_BITS",
    "SCORE_BOUND_BITS",
    "WEIGHT_BOUND_BITS",
    "ProductKey",
    "Prg",
    "check_headroom",
    "decode",
    "encode",
    "encode_features",
    "holder_correction",
    "holder_half",
    "holder_pad",
    "max_frac_bits",
    "owner_half",
    "owner_pad",
    "owner_share",
    "product_bits",
    "reconstruct",
    "ring_bytes",
    "ring_from_bytes",
    "ring_matmul",
    "share",
    "truncate",
    "truncation_failure_bound",
]
