"""A Paillier cipher for packed integer vectors, on python-paillier keys and gmpy2.

Keys come from ``phe`` (``generate_paillier_keypair``). Encryption is the textbook
scheme with g = n + 1: ``c = (1 + m·n) · r^n mod n²``; the ``r^n`` factor (the
obfuscator) is the only expensive part, one modular exponentiation per ciphertext, and
can be computed ahead of time by an :class:`ObfuscatorPool` (each entry used once).
Decryption uses phe's CRT ``raw_decrypt``. Ciphertexts travel as fixed-width big-endian
bytes (the width of n²), so message sizes do not depend on the values.
"""

from __future__ import annotations

import secrets
import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass, field

import gmpy2
from phe import paillier
from phe.paillier import PaillierPrivateKey, PaillierPublicKey

KEY_BITS = (1024, 2048, 3072)
DJN_EXPONENT_BITS = 256  # twice the 128-bit security level


class CiphertextError(ValueError):
    """A ciphertext is malformed: wrong length, out of range, or the wrong count."""


def generate_keypair(bits: int = 2048) -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    """A fresh phe key pair; sizes below 2048 bits are for experiments only."""
    if bits not in KEY_BITS:
        raise ValueError(f"key size must be one of {KEY_BITS}, got {bits}")
    if bits < 2048:
        warnings.warn(
            f"{bits}-bit Paillier keys are below the 2048 bits NIST recommends "
            "(SP 800-57); use them for experiments only",
            stacklevel=2,
        )
    return paillier.generate_paillier_keypair(n_length=bits)


def private_key_to_dict(key: PaillierPrivateKey) -> dict[str, str]:
    """The key as JSON-able text (its primes): what a bank keeps on disk."""
    return {"p": str(key.p), "q": str(key.q)}


def private_key_from_dict(stored: dict[str, str]) -> PaillierPrivateKey:
    p, q = int(stored["p"]), int(stored["q"])
    return PaillierPrivateKey(PaillierPublicKey(p * q), p, q)


def release_gil() -> None:
    """Let gmpy2 release the GIL in powmod (off by default; the setting is per thread),
    so a background thread precomputing obfuscators runs beside numpy training."""
    gmpy2.get_context().allow_release_gil = True


def ciphertext_bytes(public_key: PaillierPublicKey) -> int:
    return (public_key.nsquare.bit_length() + 7) // 8


class ObfuscatorPool:
    """Precomputed ``r^n mod n²`` values, filled ahead of use by a background thread.

    This moves the one expensive step of encryption offline (e.g. between rounds); the
    values are random and secret, and each is handed out exactly once.
    """

    _shared: dict[tuple[str, int], ObfuscatorPool] = {}
    _shared_lock = threading.Lock()

    @classmethod
    def shared(cls, owner: str, public_key: PaillierPublicKey) -> ObfuscatorPool:
        """The pool of one party under one key, for this process."""
        with cls._shared_lock:
            return cls._shared.setdefault((owner, public_key.n), cls(public_key))

    def __init__(self, public_key: PaillierPublicKey, obfuscation: str = "full") -> None:
        self._n = gmpy2.mpz(public_key.n)
        self._nsq = gmpy2.mpz(public_key.nsquare)
        if obfuscation not in ("full", "djn"):
            raise ValueError(f"obfuscation must be 'full' or 'djn', got {obfuscation!r}")
        self.obfuscation = obfuscation
        if obfuscation == "djn":
            # Damgård–Jurik–Nielsen: h = -x² generates the squares' subgroup; h_s = h^n.
            # An obfuscator is then h_s^a for a short random a, one powmod with a
            # DJN_EXPONENT_BITS exponent instead of a full n-bit one (an extra,
            # standard assumption: short exponents are as good as full ones).
            x = gmpy2.mpz(secrets.randbelow(int(self._n) - 2) + 2)
            self._hs = gmpy2.powmod(-(x * x) % self._n, self._n, self._nsq)
        self._ready: deque = deque()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.precompute_seconds = 0.0

    def fresh(self) -> gmpy2.mpz:
        """One new obfuscator, computed now."""
        if self.obfuscation == "djn":
            return gmpy2.powmod(self._hs, secrets.randbits(DJN_EXPONENT_BITS), self._nsq)
        r = gmpy2.mpz(secrets.randbelow(int(self._n) - 1) + 1)
        return gmpy2.powmod(r, self._n, self._nsq)

    def fill(self, count: int) -> None:
        """Compute ``count`` obfuscators in this thread."""
        release_gil()
        started = time.perf_counter()
        for _ in range(count):
            value = self.fresh()
            with self._lock:
                self._ready.append(value)
        self.precompute_seconds += time.perf_counter() - started

    def fill_in_background(self, count: int) -> threading.Thread:
        """Start filling in a daemon thread (gmpy2 releases the GIL in powmod)."""
        self._thread = threading.Thread(
            target=self.fill, args=(count,), daemon=True, name="fedrisk-obfuscators"
        )
        self._thread.start()
        return self._thread

    def take(self) -> gmpy2.mpz:
        """A precomputed obfuscator if one is ready, else a fresh one."""
        with self._lock:
            if self._ready:
                return self._ready.popleft()
        return self.fresh()

    def __len__(self) -> int:
        return len(self._ready)


def precompute_in_background(
    owners: list[str], public_key: PaillierPublicKey, per_owner: int
) -> threading.Event:
    """Fill each owner's shared pool in one daemon thread, round-robin so the earliest
    rounds are covered first; set the returned event to stop early."""
    pools = [ObfuscatorPool.shared(o, public_key) for o in owners]
    stop = threading.Event()

    def work() -> None:
        release_gil()
        for _ in range(per_owner):
            for pool in pools:
                if stop.is_set():
                    return
                pool.fill(1)

    threading.Thread(target=work, daemon=True, name="fedrisk-obfuscators").start()
    return stop


@dataclass
class VectorCipher:
    """Encrypt and add packed integer vectors under one public key (no private key)."""

    public_key: PaillierPublicKey
    pool: ObfuscatorPool | None = None
    encrypt_seconds: float = field(default=0.0, compare=False)

    def __post_init__(self) -> None:
        self._n = gmpy2.mpz(self.public_key.n)
        self._nsq = gmpy2.mpz(self.public_key.nsquare)
        self.width = ciphertext_bytes(self.public_key)
        if self.pool is None:
            self.pool = ObfuscatorPool(self.public_key)

    @property
    def plaintext_bits(self) -> int:
        """Packed plaintexts must stay below n; this many bits always do."""
        return self.public_key.n.bit_length() - 1

    def encrypt(self, plaintexts: list[int]) -> list[gmpy2.mpz]:
        release_gil()
        started = time.perf_counter()
        out = []
        for m in plaintexts:
            if not 0 <= m < self.public_key.n:
                raise CiphertextError("plaintext outside [0, n)")
            out.append((1 + self._n * m) % self._nsq * self.pool.take() % self._nsq)
        self.encrypt_seconds += time.perf_counter() - started
        return out

    def add(self, *vectors: list) -> list[gmpy2.mpz]:
        """Slot-wise homomorphic sum of ciphertext vectors (multiplication mod n²)."""
        nsq = self._nsq
        total = [gmpy2.mpz(c) for c in vectors[0]]
        for vec in vectors[1:]:
            if len(vec) != len(total):
                raise CiphertextError(f"cannot add {len(vec)} ciphertexts to {len(total)}")
            total = [a * b % nsq for a, b in zip(total, vec)]
        return total

    def to_bytes(self, ciphertexts: list) -> list[bytes]:
        return [int(c).to_bytes(self.width, "big") for c in ciphertexts]

    def from_bytes(self, blobs: list, expected: int) -> list[gmpy2.mpz]:
        """Parse and check ciphertexts: the count, each width, and 0 < c < n²."""
        if len(blobs) != expected:
            raise CiphertextError(f"expected {expected} ciphertexts, got {len(blobs)}")
        out = []
        for i, blob in enumerate(blobs):
            if not isinstance(blob, (bytes, bytearray)) or len(blob) != self.width:
                size = len(blob) if isinstance(blob, (bytes, bytearray)) else type(blob).__name__
                raise CiphertextError(f"ciphertext {i} has {size} bytes, expected {self.width}")
            c = gmpy2.mpz(int.from_bytes(blob, "big"))
            if not 0 < c < self._nsq:
                raise CiphertextError(f"ciphertext {i} is not in (0, n²)")
            out.append(c)
        return out


@dataclass
class VectorDecryptor:
    """The private-key side: only the key holders (the banks) ever build one."""

    private_key: PaillierPrivateKey
    decrypt_seconds: float = field(default=0.0, compare=False)

    def decrypt(self, ciphertexts: list) -> list[int]:
        release_gil()
        started = time.perf_counter()
        out = [self.private_key.raw_decrypt(int(c)) for c in ciphertexts]
        self.decrypt_seconds += time.perf_counter() - started
        return out


@dataclass(frozen=True)
class BankKeys:
    """The banks' keys, and the switch of their obfuscator precomputation.

    ``key = 'shared'``: one private key every bank holds. ``key = 'threshold'``:
    ``private_key`` is None and ``shares[i]`` is bank i's share of the threshold key
    (:class:`fedrisk.crypto.threshold.KeyShare`), which only bank i may be given."""

    public_key: PaillierPublicKey
    private_key: PaillierPrivateKey | None
    stop_precompute: threading.Event
    shares: tuple | None = None  # threshold key: bank i's KeyShare at i
    dealer_seconds: float = 0.0


def bank_key_ceremony(bits: int, banks: list[str], rounds: int) -> BankKeys:
    """Make the banks' key pair and start precomputing each bank's ``rounds``
    obfuscators in the background, so that work overlaps everything that follows
    (start-up, data preparation, training) instead of waiting for the first round."""
    public_key, private_key = generate_keypair(bits)
    return BankKeys(public_key, private_key, precompute_in_background(banks, public_key, rounds))
