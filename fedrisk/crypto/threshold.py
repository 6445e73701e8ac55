"""Threshold Paillier: t of n banks must cooperate to decrypt (Shoup / Damgård–Jurik).

A one-time trusted dealer at set-up picks n = p·q from safe primes p = 2p'+1,
q = 2q'+1 (m = p'q'), the secret exponent d with d ≡ 0 (mod m) and d ≡ 1 (mod n), and
Shamir-shares d over Z_{n·m} with a random polynomial f of degree t-1: bank i gets
s_i = f(i). The public key is an ordinary phe key (g = n + 1), so encryption, packing
and homomorphic addition are unchanged. With Δ = n_banks!:

- partial decryption of c by bank i: c_i = c^(2Δ·s_i) mod n²;
- combination of any t partials (set S): c' = Π c_i^(2·λ_i) with the integer Lagrange
  coefficients λ_i = Δ·Π_{j∈S, j≠i} j / (j - i); c' = c^(4Δ²·d) = 1 + 4Δ²·M·n, so
  M = L(c') · (4Δ²)^-1 mod n.

Fewer than t shares are a (t-1)-of-t Shamir sharing that reveals nothing about d, and a
single bank's partial decryption of an update is a random-looking group element.

Blinding: the banks only partially decrypt an aggregate after multiplying it by
(1 + μ·n), the encryption of a mask μ (uniform mod n) derived from a seed the dealer gives
the banks and not the aggregator. Any t partials then open M + μ mod n, which the
aggregator (who relays the partials) cannot read, and each bank subtracts μ.

Nothing here imports Flower.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
import warnings
from dataclasses import dataclass, field

import gmpy2
import numpy as np
from phe.paillier import PaillierPublicKey

from fedrisk.crypto.paillier import (
    KEY_BITS,
    BankKeys,
    precompute_in_background,
    release_gil,
)

_SIEVE_PRIMES = [p for p in range(3, 1 << 16, 2) if gmpy2.is_prime(p)]
_WINDOW = 1 << 14


def safe_prime(bits: int) -> gmpy2.mpz:
    """A random safe prime p = 2q + 1 of ``bits`` bits (q prime).

    Candidates q are sieved in windows against the odd primes below 2^16 for both q and
    2q + 1 (numpy slices), so only a few hundred survivors reach Miller–Rabin.
    """
    release_gil()
    while True:
        q0 = gmpy2.mpz(secrets.randbits(bits - 1) | (1 << (bits - 2)) | 1)
        alive = np.ones(_WINDOW, dtype=bool)  # q = q0 + 2k
        for p in _SIEVE_PRIMES:
            r = int(q0 % p)
            inv2 = (p + 1) // 2
            alive[(-r * inv2) % p :: p] = False  # p | q
            alive[(-(2 * r + 1) * inv2 * inv2) % p :: p] = False  # p | 2q + 1
        for k in np.flatnonzero(alive):
            q = q0 + 2 * int(k)
            if gmpy2.is_prime(q, 1) and gmpy2.is_prime(2 * q + 1, 1):
                if gmpy2.is_prime(q, 40) and gmpy2.is_prime(2 * q + 1, 40):
                    p = 2 * q + 1
                    if p.bit_length() == bits:
                        return p


def default_threshold(n_banks: int) -> int:
    """A majority of the banks: t = floor(n/2) + 1."""
    return n_banks // 2 + 1


@dataclass(frozen=True)
class KeyShare:
    """One bank's share of the threshold key: all it needs to take part in decryption.

    ``blind_seed`` is the banks' common masking seed (never the aggregator's)."""

    index: int  # 1..n_banks (the Shamir point)
    n: int
    n_banks: int
    threshold: int
    secret: int  # s_i = f(i)
    blind_seed: bytes

    @property
    def public_key(self) -> PaillierPublicKey:
        return PaillierPublicKey(self.n)

    @property
    def delta(self) -> int:
        return math.factorial(self.n_banks)

    def to_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "n": str(self.n),
            "n_banks": self.n_banks,
            "threshold": self.threshold,
            "secret": str(self.secret),
            "blind_seed": self.blind_seed.hex(),
        }

    @classmethod
    def from_dict(cls, stored: dict) -> KeyShare:
        return cls(
            int(stored["index"]),
            int(stored["n"]),
            int(stored["n_banks"]),
            int(stored["threshold"]),
            int(stored["secret"]),
            bytes.fromhex(str(stored["blind_seed"])),
        )

    def masks(self, rnd: int, ciphertexts: list) -> list[gmpy2.mpz]:
        """The masks μ for these ciphertexts in round ``rnd``, uniform mod n; only banks
        know them. Bound to each ciphertext, not only to the round: an aggregator that asks
        for two ciphertexts to be opened (a bank's update and an encryption of 0) gets two
        unrelated masks, so subtracting the openings reveals nothing."""
        width = (self.n.bit_length() + 128 + 7) // 8  # 128 extra bits: negligible bias
        nsq_bytes = (2 * self.n.bit_length() + 7) // 8
        out = []
        for i, c in enumerate(ciphertexts):
            h = hashlib.shake_256(
                self.blind_seed + f"|{rnd}|{i}|".encode() + int(c).to_bytes(nsq_bytes, "big")
            ).digest(width)
            out.append(gmpy2.mpz(int.from_bytes(h, "big")) % self.n)
        return out

    def partial_decrypt(self, ciphertexts: list, rnd: int) -> list[gmpy2.mpz]:
        """This bank's partial decryptions of the blinded ciphertexts of round ``rnd``."""
        release_gil()
        n, nsq = gmpy2.mpz(self.n), gmpy2.mpz(self.n) ** 2
        exponent = gmpy2.mpz(2 * self.delta * self.secret)
        return [
            gmpy2.powmod(gmpy2.mpz(c) * (1 + mu * n) % nsq, exponent, nsq)
            for c, mu in zip(ciphertexts, self.masks(rnd, ciphertexts))
        ]

    def combine(self, partials: dict[int, list], rnd: int, ciphertexts: list) -> list[int]:
        """The plaintexts from ``threshold`` banks' partials (bank index -> values),
        unblinded; raises ValueError if too few banks or mismatched counts."""
        return [int(m) for m in combine_partials(self, partials, rnd, ciphertexts)]


def lagrange_coefficients(indices: list[int], delta: int) -> dict[int, int]:
    """Integer Lagrange coefficients at 0, scaled by Δ so they are integers."""
    out = {}
    for i in indices:
        num, den = delta, 1
        for j in indices:
            if j != i:
                num *= j
                den *= j - i
        assert num % den == 0
        out[i] = num // den
    return out


def combine_partials(
    share: KeyShare, partials: dict[int, list], rnd: int, ciphertexts: list
) -> list:
    """Combine any ``threshold`` banks' partial decryptions into unblinded plaintexts."""
    release_gil()
    chosen = sorted(partials)[: share.threshold]
    if len(chosen) < share.threshold:
        raise ValueError(
            f"{len(chosen)} partial decryptions, the key needs {share.threshold} of {share.n_banks}"
        )
    if any(len(partials[i]) != len(ciphertexts) for i in chosen):
        raise ValueError(f"expected {len(ciphertexts)} partial decryptions from every bank")
    n = gmpy2.mpz(share.n)
    nsq = n * n
    delta = share.delta
    lam = lagrange_coefficients(chosen, delta)
    inv = gmpy2.invert(gmpy2.mpz(4 * delta * delta), n)
    out = []
    for slot, mu in enumerate(share.masks(rnd, ciphertexts)):
        acc = gmpy2.mpz(1)
        for i in chosen:
            acc = acc * gmpy2.powmod(gmpy2.mpz(partials[i][slot]), 2 * lam[i], nsq) % nsq
        out.append(((acc - 1) // n * inv - mu) % n)
    return out


@dataclass
class ShareDecryptor:
    """A bank's decryption side under a threshold key: its partial decryptions, and the
    combination of t banks' partials (timed, like :class:`VectorDecryptor`)."""

    share: KeyShare
    decrypt_seconds: float = field(default=0.0, compare=False)

    def partial_decrypt(self, ciphertexts: list, rnd: int) -> list[gmpy2.mpz]:
        started = time.perf_counter()
        out = self.share.partial_decrypt(ciphertexts, rnd)
        self.decrypt_seconds += time.perf_counter() - started
        return out

    def combine(self, partials: dict[int, list], rnd: int, ciphertexts: list) -> list[int]:
        started = time.perf_counter()
        out = self.share.combine(partials, rnd, ciphertexts)
        self.decrypt_seconds += time.perf_counter() - started
        return out


@dataclass(frozen=True)
class ThresholdKeys:
    """What the dealer hands out: the public key, and bank i's share (to bank i only)."""

    public_key: PaillierPublicKey
    shares: tuple[KeyShare, ...]
    threshold: int
    dealer_seconds: float = 0.0


def deal(bits: int, n_banks: int, threshold: int | None = None) -> ThresholdKeys:
    """The trusted dealer: safe-prime modulus of ``bits`` bits and n_banks shares of it;
    the dealer forgets everything once the shares are out."""
    if bits not in KEY_BITS:
        raise ValueError(f"key size must be one of {KEY_BITS}, got {bits}")
    t = default_threshold(n_banks) if threshold is None else threshold
    if not 1 <= t <= n_banks:
        raise ValueError(f"threshold must be in [1, {n_banks}], got {t}")
    started = time.perf_counter()
    while True:
        p, q = safe_prime(bits // 2), safe_prime(bits // 2)
        n = p * q
        if p != q and n.bit_length() == bits:
            break
    m = (p - 1) // 2 * ((q - 1) // 2)
    # d ≡ 0 (mod m), d ≡ 1 (mod n): d = m · (m^-1 mod n)
    d = m * gmpy2.invert(m, n)
    nm = n * m
    coeffs = [d] + [gmpy2.mpz(secrets.randbelow(int(nm))) for _ in range(t - 1)]
    blind_seed = secrets.token_bytes(32)
    shares = []
    for i in range(1, n_banks + 1):
        s_i = gmpy2.mpz(0)
        for a in reversed(coeffs):  # Horner
            s_i = (s_i * i + a) % nm
        shares.append(KeyShare(i, int(n), n_banks, t, int(s_i), blind_seed))
    return ThresholdKeys(PaillierPublicKey(int(n)), tuple(shares), t, time.perf_counter() - started)


def threshold_key_ceremony(bits: int, banks: list[str], rounds: int) -> BankKeys:
    """The trusted dealer deals a majority-threshold key to ``banks`` (bank i gets
    ``shares[i]`` only); obfuscator precomputation starts as in the shared-key ceremony."""
    if bits < 2048:
        warnings.warn(
            f"{bits}-bit Paillier keys are below the 2048 bits NIST recommends "
            "(SP 800-57); use them for experiments only",
            stacklevel=2,
        )
    dealt = deal(bits, len(banks))
    stop = precompute_in_background(banks, dealt.public_key, rounds)
    return BankKeys(dealt.public_key, None, stop, dealt.shares, dealt.dealer_seconds)


__all__ = [
    "KeyShare",
    "ShareDecryptor",
    "ThresholdKeys",
    "combine_partials",
    "deal",
    "default_threshold",
    "lagrange_coefficients",
    "safe_prime",
    "threshold_key_ceremony",
]
