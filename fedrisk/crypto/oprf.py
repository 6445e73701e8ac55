"""An oblivious pseudorandom function (OPRF) of customer ids over X25519 (2HashDH).

The data party holds a key k; the bank holds an id x. At the end the bank knows
``F_k(x) = SHA-256(tag ‖ x ‖ k·H(x))`` and the party knows nothing of x; the bank learns
F_k only at the ids it blinded. The anonymous query seals each row of the party's table
under ``F_k`` of the row's id, so the bank can open the rows of the ids it asked about and
no other row (Jarecki, Kiayias & Krawczyk, "Round-optimal password-protected secret
sharing and T-PAKE in the password-only model", ASIACRYPT 2014; the same
Diffie–Hellman construction as the PSI in :mod:`fedrisk.crypto.psi`):

1. bank: a random clamped scalar r, sends ``B = r·H(x)`` (the party learns nothing of x
   under the decisional Diffie–Hellman assumption: r ranges over the clamped scalars whose
   inverse is clamped too, about a quarter of the residues mod ℓ, so B is not exactly
   uniform; hiding is computational);
2. party: returns ``k·B``;
3. bank: ``r⁻¹·(k·B) = k·H(x)`` and hashes it with x.

Why ``H`` lands on the curve, not on its twist (as :func:`fedrisk.crypto.psi.hash_to_point`
may): unblinding multiplies by r⁻¹ modulo the curve's prime subgroup order ℓ, which undoes
r only on the curve. ``H`` hashes by try-and-increment until ``u³ + A·u² + u`` is a
square mod p (a Legendre symbol, gmpy2). The X25519 function clamps scalars (a multiple
of 8 in [2²⁵⁴, 2²⁵⁵)): the factor 8 clears the small-order part of ``H(x)``, and a
blinding scalar is kept only if some representative of r⁻¹ mod ℓ is itself clamped
(about half are), so every multiplication is the library's constant-time
``X25519PrivateKey.exchange``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import gmpy2
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from fedrisk.crypto import workers

__all__ = [
    "OPRF_OUTPUT_BYTES",
    "OprfBlinding",
    "OprfKey",
    "hash_to_curve",
    "oprf_output",
]

POINT_BYTES = 32
OPRF_OUTPUT_BYTES = 32
_P = 2**255 - 19
_ORDER = 2**252 + 27742317777372353535851937790883648493  # ℓ, the prime subgroup's order
_A = 486662
_HASH_TAG = b"fedrisk/oprf/hash-to-curve25519\x00"
_OUT_TAG = b"fedrisk/oprf/output\x00"


def hash_to_curve(item: str) -> bytes:
    """A point of Curve25519 (never its twist) from ``item``, as a 32-byte u-coordinate."""
    data = item.encode()
    for counter in range(256):  # each try lands on the curve with probability 1/2
        digest = hashlib.sha256(_HASH_TAG + bytes([counter]) + data).digest()
        u = int.from_bytes(digest, "little") & ((1 << 255) - 1)
        if u < _P and gmpy2.legendre((u * u * u + _A * u * u + u) % _P, _P) == 1:
            return u.to_bytes(POINT_BYTES, "little")
    raise ValueError("no curve point in 256 tries")  # probability 2^-256


def oprf_output(item: str, point: bytes) -> bytes:
    """F_k(x) from x and k·H(x): the second hash of 2HashDH (binds the id)."""
    data = item.encode()
    return hashlib.sha256(_OUT_TAG + len(data).to_bytes(4, "big") + data + point).digest()


def _clamped(scalar: int) -> int:
    return (scalar & ~7 & ((1 << 255) - 1)) | (1 << 254)


def _is_clamped(scalar: int) -> bool:
    return scalar % 8 == 0 and (1 << 254) <= scalar < (1 << 255)


def _key(scalar: int) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(scalar.to_bytes(32, "little"))


def _times(key: X25519PrivateKey, point: bytes) -> bytes:
    return key.exchange(X25519PublicKey.from_public_bytes(bytes(point)))


class OprfKey:
    """The data party's OPRF key (its own secret, 32 bytes)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32:
            raise ValueError(f"an OPRF key is made from 32 bytes, got {len(secret)}")
        self._secret = bytes(secret)
        self._key = _key(_clamped(int.from_bytes(secret, "little")))

    def evaluate(self, blinded: Sequence[bytes]) -> list[bytes]:
        """Step 2: ``k·B`` for each blinded point the bank sent (any length, any order)."""
        for b in blinded:
            if len(b) != POINT_BYTES:
                raise ValueError(f"a blinded point is {POINT_BYTES} bytes, got {len(b)}")
        return [_times(self._key, b) for b in blinded]

    def outputs(self, items: Iterable[str]) -> list[bytes]:
        """F_k(x) for the party's own ids, directly (the keys it seals its rows with);
        about 35 µs an id, so a large table's ids are spread over every core."""
        items = [str(x) for x in items]
        parts = workers.split(items, workers.worker_count())
        if len(parts) < 2 or not workers.pays_off(len(items) * _SECONDS_PER_OUTPUT):
            return _outputs((self._secret, items))
        chunks = workers.process_map(_outputs, [(self._secret, chunk) for chunk in parts])
        return [out for chunk in chunks for out in chunk]


_SECONDS_PER_OUTPUT = 3.5e-5  # hash to the curve, one exchange, one SHA-256 (measured)


def _outputs(job: tuple[bytes, list[str]]) -> list[bytes]:
    """F_k over a chunk of ids (module level: worker processes run it)."""
    secret, items = job
    key = _key(_clamped(int.from_bytes(secret, "little")))
    return [oprf_output(x, _times(key, hash_to_curve(x))) for x in items]


class OprfBlinding:
    """The bank's side for a batch of ids: blinding scalars drawn from ``entropy`` (a
    callable giving 32 fresh bytes a call: the bank's own secret stream)."""

    def __init__(self, items: Sequence[str], entropy) -> None:
        self.items = [str(x) for x in items]
        self._pairs: list[tuple[int, int]] = []
        for _ in self.items:
            while True:  # keep r whose inverse mod ℓ has a clamped representative
                r = _clamped(int.from_bytes(entropy(), "little"))
                inverse = pow(r, -1, _ORDER)
                t = next(
                    (inverse + j * _ORDER for j in range(16) if _is_clamped(inverse + j * _ORDER)),
                    0,
                )
                if t:
                    self._pairs.append((r, t))
                    break

    def blinded(self) -> list[bytes]:
        """Step 1: ``r·H(x)`` per id, in the order given."""
        return [_times(_key(r), hash_to_curve(x)) for x, (r, _) in zip(self.items, self._pairs)]

    def outputs(self, evaluated: Sequence[bytes]) -> list[bytes]:
        """Step 3: F_k(x) per id from the party's ``k·B`` (same order)."""
        if len(evaluated) != len(self.items):
            raise ValueError(f"expected {len(self.items)} evaluated points, got {len(evaluated)}")
        return [
            oprf_output(x, _times(_key(t), e))
            for x, (_, t), e in zip(self.items, self._pairs, evaluated)
        ]
