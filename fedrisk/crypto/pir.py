"""SimplePIR: single-server private information retrieval from learning with errors.

Henzinger, Hong, Corrigan-Gibbs, Meiklejohn & Vaikuntanathan, "One Server for the Price
of Two: Simple and Fast Single-Server Private Information Retrieval", USENIX Security
2023. The server (the data party) holds a table of byte records laid out as a matrix
``D`` (``rows × columns``, one byte per entry, plaintext modulus p = 2⁸); records sit in
columns, ``rows // record_bytes`` to a column. With a public uniform matrix
``A ∈ Z_q^{columns × n}`` (expanded from a public seed):

* set-up: the server sends the hint ``H = D·A mod q`` (``rows × n``) once;
* query for column j: the client draws ``s ← Z_q^n`` uniform and ``e`` from a rounded
  Gaussian of deviation σ, and sends ``qu = A·s + e + Δ·u_j mod q`` (Δ = q/p): an LWE
  sample plus a multiple of a unit vector, so pseudorandom whatever j is;
* answer: ``ans = D·qu mod q``: one matrix–vector product, no secret, no randomness;
* decode: ``ans − H·s = D·e + Δ·D[:, j]``; rounding to multiples of Δ gives column j.

Parameters (the paper's §4.2, 128-bit security by the lattice estimator): n = 1024,
q = 2³², σ = 6.4, at most 2¹³ columns (LWE samples) for plaintext moduli up to 991; this
module uses p = 256. Correctness: ``|D·e| < Δ/2 = 2²³`` is needed; with entries below
2⁸, at most 2¹³ columns and σ = 6.4 the standard deviation of ``D·e`` is at most 2^17.2,
so a decoding error needs a 56σ deviation (probability below 2⁻²²⁰⁰ per entry).

The client learns the whole column (every record in it), so the records must protect
themselves (:mod:`fedrisk.crypto.keyword` seals each under a key only its id opens).
The hint reveals ``D·A`` and, with ``columns ≤ n``, ``D`` itself: the table must hold
nothing but sealed records and uniform filler.

Arithmetic mod 2³² runs as float64 BLAS products that stay exact: ``D·qu`` (entries
below 2⁸ times words below 2³², at most 2¹³ terms: below 2⁵³) in one product; products
of two word matrices (``A·s``, ``H·s``) split each word into 16-bit halves, whose
products summed over n = 1024 terms stay below 2⁴².
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = [
    "CHUNK",
    "ERROR_STDDEV",
    "LWE_DIMENSION",
    "MAX_COLUMNS",
    "PirClient",
    "PirLayout",
    "PirQuery",
    "PirServer",
    "public_matrix",
]

LWE_DIMENSION = 1024  # n
MODULUS_BITS = 32  # q = 2^32
ERROR_STDDEV = 6.4  # σ
PLAIN_BITS = 8  # p = 2^8: one byte per entry
MAX_COLUMNS = 8192  # 2^13 LWE samples; also keeps D·qu exact in float64
CHUNK = 256  # queries made or decoded at a time (bounds a large batch's memory)
_DELTA = 1 << (MODULUS_BITS - PLAIN_BITS)
_MASK32 = np.uint64(0xFFFFFFFF)


@dataclass(frozen=True)
class PirLayout:
    """Where ``records`` records of ``record_bytes`` bytes sit in the ``rows × columns``
    byte matrix: record i in column ``i // per_column``, rows
    ``(i % per_column)·record_bytes`` onwards. Public (it depends on the sizes only)."""

    records: int
    record_bytes: int
    rows: int
    columns: int

    @property
    def per_column(self) -> int:
        return self.rows // self.record_bytes

    @classmethod
    def of(cls, records: int, record_bytes: int, queries: int = 1) -> PirLayout:
        """The layout with the fewest words for the hint plus ``queries`` queries and
        answers, ``rows·n + queries·(columns + rows)``: rows ≈
        √(records·record_bytes·queries / (n + queries)), with at most
        :data:`MAX_COLUMNS` columns."""
        if records < 1 or record_bytes < 1 or queries < 1:
            raise ValueError("a PIR table needs a record of a byte or more, and a query")
        total = records * record_bytes
        rows = math.sqrt(total * queries / (LWE_DIMENSION + queries))
        per_column = max(1, round(rows / record_bytes), math.ceil(records / MAX_COLUMNS))
        per_column = min(per_column, records)
        columns = math.ceil(records / per_column)
        return cls(records, record_bytes, per_column * record_bytes, columns)

    def column_of(self, index: np.ndarray) -> np.ndarray:
        return np.asarray(index, dtype=np.int64) // self.per_column

    def matrix(self, records: np.ndarray) -> np.ndarray:
        """The records (uint8, ``records × record_bytes``) as the byte matrix, padded
        with zero records (the caller fills unused records with uniform bytes)."""
        records = np.asarray(records, dtype=np.uint8)
        if records.shape != (self.records, self.record_bytes):
            raise ValueError(
                f"expected {self.records} records of {self.record_bytes} bytes, "
                f"got shape {records.shape}"
            )
        padded = np.zeros((self.columns * self.per_column, self.record_bytes), np.uint8)
        padded[: self.records] = records
        # column c holds records c·per_column … : stack them vertically
        return padded.reshape(self.columns, self.rows).T

    def record_in(self, column_bytes: np.ndarray, index: int) -> np.ndarray:
        start = (int(index) % self.per_column) * self.record_bytes
        return column_bytes[start : start + self.record_bytes]


def _stream(seed: bytes, purpose: bytes, nbytes: int) -> bytes:
    key = hashlib.blake2b(purpose, key=seed, digest_size=32, person=b"fedrisk-pir").digest()
    return Cipher(algorithms.AES(key), modes.CTR(b"\x00" * 16)).encryptor().update(bytes(nbytes))


def public_matrix(seed: bytes, columns: int) -> np.ndarray:
    """A (``columns × n`` words mod 2³²) from the public seed, by AES-256-CTR."""
    words = np.frombuffer(_stream(seed, b"A", 4 * columns * LWE_DIMENSION), dtype=np.uint32)
    return words.reshape(columns, LWE_DIMENSION)


def _halves(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = np.asarray(words, dtype=np.uint32)
    return (w & 0xFFFF).astype(np.float64), (w >> 16).astype(np.float64)


def _exact(product: np.ndarray) -> np.ndarray:
    return product.astype(np.uint64)  # integral and below 2^53: exact


def _combine(lo_lo: np.ndarray, cross: np.ndarray) -> np.ndarray:
    # X·Y mod 2^32 = X0·Y0 + 2^16·(X0·Y1 + X1·Y0) (the 2^32 term vanishes); uint64 wraps
    # mod 2^64, a multiple of 2^32
    return ((_exact(lo_lo) + (_exact(cross) << np.uint64(16))) & _MASK32).astype(np.uint32)


def _words_product(x_halves: tuple[np.ndarray, np.ndarray], y: np.ndarray) -> np.ndarray:
    """(X·Y) mod 2³² for word matrices, X given as its 16-bit halves (inner ≤ 2²⁰)."""
    x0, x1 = x_halves
    y0, y1 = _halves(y)
    return _combine(x0 @ y0, x0 @ y1 + x1 @ y0)


class PirServer:
    """The data party's side: its byte records, their hint, and answers."""

    def __init__(self, layout: PirLayout, records: np.ndarray, seed: bytes) -> None:
        self.layout = layout
        self.seed = bytes(seed)
        # float64 copy of the bytes for BLAS (8x the table's size, kept for answers)
        self._D = layout.matrix(records).astype(np.float64)

    def hint(self) -> np.ndarray:
        """H = D·A mod 2³² (``rows × n`` words), sent once."""
        A = public_matrix(self.seed, self.layout.columns)
        a0, a1 = _halves(A)
        # D·A0 and D·A1 are each exact (entries < 2^8 · 2^16 · 2^13 terms)
        return _combine(self._D @ a0, self._D @ a1)

    def answer(self, queries: np.ndarray) -> np.ndarray:
        """``D·qu mod 2³²`` for each query (``batch × columns`` words → ``batch × rows``).
        A function of the table and the queries only: no secret, no randomness."""
        q = np.asarray(queries, dtype=np.uint32)
        if q.ndim != 2 or q.shape[1] != self.layout.columns:
            raise ValueError(f"a query is {self.layout.columns} words; got shape {tuple(q.shape)}")
        return (_exact(q.astype(np.float64) @ self._D.T) & _MASK32).astype(np.uint32)


@dataclass(frozen=True)
class PirQuery:
    """What the client keeps of a batch of queries: the columns and LWE secrets."""

    columns: np.ndarray
    secrets: np.ndarray  # batch × n words


class PirClient:
    """The bank's side, once it has the public seed and the hint."""

    def __init__(self, layout: PirLayout, seed: bytes, hint: np.ndarray) -> None:
        hint = np.asarray(hint, dtype=np.uint32)
        if hint.shape != (layout.rows, LWE_DIMENSION):
            raise ValueError(f"the hint is {layout.rows} × {LWE_DIMENSION} words, got {hint.shape}")
        self.layout = layout
        self._A = _halves(public_matrix(seed, layout.columns))
        self._H = _halves(hint)

    def query(self, columns: np.ndarray, randomness: bytes) -> tuple[np.ndarray, PirQuery]:
        """Queries for ``columns`` (``batch × columns`` words to send) and what to keep.
        ``randomness``: 32 bytes of the client's own secret, fresh per batch (the LWE
        secrets and errors are expanded from it by AES-256-CTR, a stream per chunk of
        :data:`CHUNK` queries, which also caps the memory a large batch takes)."""
        cols = np.asarray(columns, dtype=np.int64)
        if cols.size and (cols.min() < 0 or cols.max() >= self.layout.columns):
            raise ValueError(f"a column is in 0..{self.layout.columns - 1}")
        out = np.empty((len(cols), self.layout.columns), dtype=np.uint32)
        secrets = np.empty((len(cols), LWE_DIMENSION), dtype=np.uint32)
        for start in range(0, len(cols), CHUNK):
            part = cols[start : start + CHUNK]
            label = b"query" + start.to_bytes(8, "big")
            out[start : start + len(part)], secrets[start : start + len(part)] = self._chunk(
                part,
                _stream(
                    randomness, label, 4 * len(part) * (LWE_DIMENSION + 4 * self.layout.columns)
                ),
            )
        return out, PirQuery(cols, secrets)

    def _chunk(self, cols: np.ndarray, stream: bytes) -> tuple[np.ndarray, np.ndarray]:
        b, n, m = len(cols), LWE_DIMENSION, self.layout.columns
        raw = np.frombuffer(stream, np.uint32)
        s = raw[: b * n].reshape(b, n)
        e = _rounded_gaussian(raw[b * n :].view(np.uint64).reshape(b, m, 2))
        q = _words_product(self._A, s.T).T.astype(np.int64) + e
        q[np.arange(b), cols] += _DELTA
        return (q % (1 << MODULUS_BITS)).astype(np.uint32), s

    def decode(self, answers: np.ndarray, kept: PirQuery) -> np.ndarray:
        """The asked columns' bytes (``batch × rows``, uint8) from the answers."""
        ans = np.asarray(answers, dtype=np.uint32)
        if ans.shape != (len(kept.columns), self.layout.rows):
            raise ValueError(
                f"expected {len(kept.columns)} answers of {self.layout.rows} words, "
                f"got shape {tuple(ans.shape)}"
            )
        out = np.empty(ans.shape, dtype=np.uint8)
        for start in range(0, len(ans), CHUNK):
            part = slice(start, start + CHUNK)
            mask = _words_product(self._H, kept.secrets[part].T).T
            noisy = (ans[part].astype(np.uint64) - mask) & _MASK32
            out[part] = ((noisy + np.uint64(_DELTA // 2)) >> np.uint64(24)) & np.uint64(0xFF)
        return out


def _rounded_gaussian(pairs: np.ndarray) -> np.ndarray:
    """Rounded Gaussian of deviation σ by Box–Muller from pairs of uniform 64-bit words."""
    u1 = (pairs[..., 0] >> np.uint64(11)).astype(np.float64) + 1.0  # in [1, 2^53]
    u2 = (pairs[..., 1] >> np.uint64(11)).astype(np.float64)
    radius = np.sqrt(-2.0 * np.log(u1 / 2.0**53))
    return np.rint(ERROR_STDDEV * radius * np.cos(2.0 * np.pi * u2 / 2.0**53)).astype(np.int64)
