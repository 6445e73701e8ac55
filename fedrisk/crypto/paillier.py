"""A Paillier cipher for packed integer vectors, on python-paillier keys and gmpy2.

Keys come from ``phe`` (``generate_paillier_keypair``). Encryption is the textbook
scheme with g = n + 1: ``c = (1 + m·n) · r^n mod n²``; the ``r^n`` factor (the
obfuscator) is the only expensive part, one modular exponentiation per ciphertext, and
can be computed ahead of time by an :class:`ObfuscatorPool` (each entry used once), from
a fixed-base table for DJN obfuscation and with CRT for a party holding the private key
(:mod:`fedrisk.crypto.fixed_base`), batches spread over the cores
(:mod:`fedrisk.crypto.workers`). Decryption is phe's CRT decryption done in batches
(the same arithmetic as ``raw_decrypt``, on GIL-free threads). Ciphertexts travel as fixed-width big-endian
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

from fedrisk.crypto.fixed_base import (
    DEFAULT_WINDOW,
    CrtFixedBase,
    CrtPower,
    FixedBaseTable,
    LiftedPower,
    PlainPower,
)
from fedrisk.crypto.workers import thread_map, worker_count

__all__ = [
    "DJN_EXPONENT_BITS",
    "KEY_BITS",
    "BankKeys",
    "CiphertextError",
    "ObfuscatorPool",
    "VectorCipher",
    "VectorDecryptor",
    "bank_key_ceremony",
    "ciphertext_bytes",
    "decrypt_many",
    "generate_keypair",
    "precompute_in_background",
    "private_key_from_dict",
    "private_key_to_dict",
    "release_gil",
]

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

    Every obfuscator is ``engine.pow(x)`` for a fresh random ``x`` (:meth:`draw`): r for
    textbook obfuscation (``r^n``), a short exponent a for DJN (``h_s^a``). The engine is
    the fastest this party may use (:mod:`fedrisk.crypto.fixed_base`): DJN from a
    fixed-base table, and, for a party that holds the private key (``private_key=``), both
    kinds split over p² and q² (CRT; textbook with half-length exponents,
    :class:`~fedrisk.crypto.fixed_base.LiftedPower`). Every engine's output has the
    distribution of the public-key-only path's (DJN: the same value for the same x).
    Batches use ``workers`` cores (None: all, within ``FEDRISK_CRYPTO_WORKERS``; 1: this thread only).
    """

    _shared: dict[tuple[str, int], ObfuscatorPool] = {}
    _shared_lock = threading.Lock()

    @classmethod
    def shared(
        cls,
        owner: str,
        public_key: PaillierPublicKey,
        private_key: PaillierPrivateKey | None = None,
    ) -> ObfuscatorPool:
        """The pool of one party under one key, for this process (the first call makes it;
        pass the private key there for the key holder's fast path)."""
        with cls._shared_lock:
            key = (owner, public_key.n)
            if key not in cls._shared:
                cls._shared[key] = cls(public_key, private_key=private_key)
            return cls._shared[key]

    def __init__(
        self,
        public_key: PaillierPublicKey,
        obfuscation: str = "full",
        private_key: PaillierPrivateKey | None = None,
        window: int = DEFAULT_WINDOW,
        djn_base: int | None = None,
        workers: int | None = None,
    ) -> None:
        self._n = gmpy2.mpz(public_key.n)
        self._nsq = gmpy2.mpz(public_key.nsquare)
        if obfuscation not in ("full", "djn"):
            raise ValueError(f"obfuscation must be 'full' or 'djn', got {obfuscation!r}")
        if private_key is not None and private_key.public_key.n != public_key.n:
            raise ValueError("the private key does not belong to this public key")
        self.obfuscation = obfuscation
        self._private_key = private_key
        self._window = window
        if obfuscation == "djn":
            # Damgård–Jurik–Nielsen: h = -x² generates the squares' subgroup; h_s = h^n.
            # An obfuscator is then h_s^a for a short random a, one powmod with a
            # DJN_EXPONENT_BITS exponent instead of a full n-bit one (an extra,
            # standard assumption: short exponents are as good as full ones).
            # ``djn_base`` passes an h_s made elsewhere (e.g. published with the key).
            if djn_base is None:
                x = gmpy2.mpz(secrets.randbelow(int(self._n) - 2) + 2)
                djn_base = gmpy2.powmod(-(x * x) % self._n, self._n, self._nsq)
            if not 0 < djn_base < self._nsq:
                raise ValueError("djn_base must lie in (0, n²)")
            self._hs = gmpy2.mpz(djn_base)
        elif djn_base is not None:
            raise ValueError("djn_base is for obfuscation='djn' only")
        self._engine = None  # built on first use (a DJN table takes tens of ms)
        self.workers = workers
        self._preparing: threading.Thread | None = None
        self._ready: deque = deque()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.precompute_seconds = 0.0

    @property
    def djn_base(self) -> gmpy2.mpz | None:
        """DJN's h_s (None for textbook obfuscation)."""
        return self._hs if self.obfuscation == "djn" else None

    @property
    def engine(self):
        """What turns a random x into an obfuscator (``pow`` / ``pow_many``)."""
        if self._engine is None:
            key = self._private_key
            if self.obfuscation == "djn" and key is not None:
                engine = CrtFixedBase(self._hs, key.p, key.q, DJN_EXPONENT_BITS, self._window)
            elif self.obfuscation == "djn":
                engine = FixedBaseTable(self._hs, self._nsq, DJN_EXPONENT_BITS, self._window)
            elif key is not None and LiftedPower.applies(key.p, key.q):
                engine = LiftedPower(key.p, key.q)
            elif key is not None:
                engine = CrtPower(key.p, key.q)
            else:
                engine = PlainPower(self._n, self._nsq)
            self._engine = engine
        return self._engine

    def draw(self, count: int) -> list[int]:
        """``count`` fresh secret random inputs: a for DJN, r for textbook obfuscation."""
        if self.obfuscation == "djn":
            return [secrets.randbits(DJN_EXPONENT_BITS) for _ in range(count)]
        n = int(self._n)
        return [secrets.randbelow(n - 1) + 1 for _ in range(count)]

    def compute(self, inputs: list[int], workers: int | None = None) -> list[gmpy2.mpz]:
        """The obfuscators of the given inputs (from :meth:`draw`), in order, on ``workers``
        cores (None: the pool's setting); the same values however they are computed."""
        release_gil()
        return self.engine.pow_many(inputs, self.workers if workers is None else workers)

    def take_many(self, count: int) -> list[gmpy2.mpz]:
        """``count`` obfuscators: the ready ones first (waiting for a :meth:`prepare` under
        way), the rest computed now on the pool's cores."""
        self.wait()
        with self._lock:
            got = [self._ready.popleft() for _ in range(min(count, len(self._ready)))]
        if len(got) < count:
            got += self.compute(self.draw(count - len(got)))
        return got

    def prepare(self, count: int) -> None:
        """Start computing ``count`` obfuscators in the background (the offline half of
        encryption), so they are ready when the next batch is encrypted: on a GIL-free
        thread for the powmod engines, on worker processes for the table engines, either
        way beside the caller's own work. With one core there is nothing to overlap:
        :meth:`take_many` computes them when asked."""
        self.wait()
        workers = worker_count(self.workers)
        if workers == 1 or count < 1:
            return
        inputs = self.draw(count)

        def work() -> None:
            release_gil()
            started = time.perf_counter()
            values = self.engine.pow_many(inputs, workers, local=False)
            with self._lock:
                self._ready.extend(values)
            self.precompute_seconds += time.perf_counter() - started

        self._preparing = threading.Thread(target=work, daemon=True, name="fedrisk-prepare")
        self._preparing.start()

    def wait(self) -> None:
        """Until a :meth:`prepare` under way has finished."""
        if self._preparing is not None:
            self._preparing.join()
            self._preparing = None

    def fresh(self) -> gmpy2.mpz:
        """One new obfuscator, computed now."""
        return self.engine.pow(self.draw(1)[0])

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
    owners: list[str],
    public_key: PaillierPublicKey,
    per_owner: int,
    private_key: PaillierPrivateKey | None = None,
) -> threading.Event:
    """Fill each owner's shared pool in one daemon thread, round-robin so the earliest
    rounds are covered first; set the returned event to stop early. ``private_key``:
    the owners hold it (shared-key mode), so their pools take the CRT path."""
    pools = [ObfuscatorPool.shared(o, public_key, private_key) for o in owners]
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
        n, nsq = self._n, self._nsq
        if any(not 0 <= m < n for m in plaintexts):
            raise CiphertextError("plaintext outside [0, n)")
        obfuscators = self.pool.take_many(len(plaintexts))
        # g = n + 1: g^m = 1 + m·n (< n², no reduction needed)
        out = [(1 + n * m) * r % nsq for m, r in zip(plaintexts, obfuscators)]
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
    workers: int | None = None

    def decrypt(self, ciphertexts: list) -> list[int]:
        started = time.perf_counter()
        out = decrypt_many(self.private_key, ciphertexts, self.workers)
        self.decrypt_seconds += time.perf_counter() - started
        return out


def decrypt_many(private_key: PaillierPrivateKey, ciphertexts: list, workers: int | None = None):
    """phe's CRT decryption of each ciphertext, in order (exactly ``raw_decrypt``'s
    arithmetic), the powmods batched in gmpy2 lists over ``workers`` GIL-free threads."""
    key = private_key
    p, q = gmpy2.mpz(key.p), gmpy2.mpz(key.q)
    psq, qsq = gmpy2.mpz(key.psquare), gmpy2.mpz(key.qsquare)
    hp, hq, p_inv = gmpy2.mpz(key.hp), gmpy2.mpz(key.hq), gmpy2.mpz(key.p_inverse)

    def chunk(cs: list) -> list[int]:
        xp = gmpy2.powmod_base_list([c % psq for c in cs], p - 1, psq)
        xq = gmpy2.powmod_base_list([c % qsq for c in cs], q - 1, qsq)
        out = []
        for a, b in zip(xp, xq):
            mp = (a - 1) // p * hp % p  # L_p(c^(p−1) mod p²)·h_p mod p
            mq = (b - 1) // q * hq % q
            out.append(int(mp + (mq - mp) * p_inv % q * p))
        return out

    return thread_map(chunk, [gmpy2.mpz(c) for c in ciphertexts], workers)


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
    stop = precompute_in_background(banks, public_key, rounds, private_key)
    return BankKeys(public_key, private_key, stop)
