"""Encrypted linear algebra for vertical (hetero) logistic regression.

The label holder encrypts each customer's residual d_i (signed fixed point, mod n); a
data party needs Enc(Σ_i d_i · x_ij) for each of its features j. That is a
multi-exponentiation Π_i Enc(d_i)^{X_ij} mod n², with X_ij the party's features in
non-negative fixed point. It is computed with Pippenger's bucket method (window of 4
bits): about (bits/4)·(B + 32) multiplications instead of B full exponentiations.
The offset that made features non-negative is removed with one exponentiation by the
negative offset of Enc(Σ d_i). The features are shared out over the cores (worker
processes: the bucket chains are Python-level mulmods that hold the GIL).
"""

from __future__ import annotations

import math

import gmpy2
import numpy as np

from fedrisk.crypto.workers import pays_off, process_map, split, worker_count

RESIDUAL_FRAC_BITS = 24  # residuals: |d| ≲ 3, resolution 6e-8
FEATURE_FRAC_BITS = 8  # features (z-scores): resolution 0.004
FEATURE_CLIP = 8.0  # z-scores beyond ±8 are clipped before encoding
WINDOW = 4
PROCESS_MIN_TERMS = 4096  # fewer rows × features stay in this process (~60 ms of work)
TERM_SECONDS = 1.5e-5  # one row × feature of the sums, serially (~4 mulmods mod n²)


def encode_signed(values: np.ndarray, frac_bits: int, n: int) -> list[int]:
    """Signed floats -> integers mod n (negative v becomes n − |v|)."""
    q = np.rint(np.asarray(values, dtype=np.float64) * 2.0**frac_bits).astype(np.int64)
    return [int(v) % n for v in q.tolist()]


def decode_signed(value: int, n: int) -> int:
    """Integer mod n -> signed integer (values above n/2 are negative)."""
    value = int(value) % n
    return value - n if value > n // 2 else value


def feature_exponents(X: np.ndarray) -> tuple[np.ndarray, int]:
    """Features -> non-negative fixed-point exponents, and the offset added to each."""
    offset = int(round(FEATURE_CLIP * 2**FEATURE_FRAC_BITS))
    q = np.rint(np.clip(X, -FEATURE_CLIP, FEATURE_CLIP) * 2**FEATURE_FRAC_BITS)
    return q.astype(np.int64) + offset, offset


def multiexp(bases: list, exponents: np.ndarray, nsq) -> gmpy2.mpz:
    """Π bases[i] ** exponents[i] mod nsq, exponents non-negative (Pippenger buckets)."""
    exponents = np.asarray(exponents, dtype=np.int64)
    top = int(exponents.max(initial=0))
    if top == 0:
        return gmpy2.mpz(1)
    windows = math.ceil(top.bit_length() / WINDOW)
    mask = (1 << WINDOW) - 1
    acc = gmpy2.mpz(1)
    for w in reversed(range(windows)):
        for _ in range(WINDOW if w < windows - 1 else 0):
            acc = acc * acc % nsq
        digits = (exponents >> (w * WINDOW)) & mask
        running, total = gmpy2.mpz(1), gmpy2.mpz(1)
        for k in range(mask, 0, -1):  # Σ_k k·bucket_k by running sums: 2 mults per k
            for i in np.flatnonzero(digits == k):
                running = running * bases[i] % nsq
            total = total * running % nsq
        acc = acc * total % nsq
    return acc


def _sums_chunk(job: tuple) -> list[gmpy2.mpz]:
    residuals, exps, unshift, nsq = job
    return [multiexp(residuals, exps[:, j], nsq) * unshift % nsq for j in range(exps.shape[1])]


def encrypted_feature_sums(
    residuals: list, X: np.ndarray, nsq, workers: int | None = 1
) -> list[gmpy2.mpz]:
    """Enc(2^(r+f) · Σ_i d_i x_ij) for each column j of X, from Enc(d_i), the columns
    shared out over ``workers`` cores (None: all); the same ciphertexts either way."""
    exps, offset = feature_exponents(X)
    nsq = gmpy2.mpz(nsq)
    total_d = gmpy2.mpz(1)
    for c in residuals:
        total_d = total_d * c % nsq
    unshift = gmpy2.powmod(total_d, -offset, nsq)  # removes offset · Σ d_i
    workers = worker_count(workers)
    columns = list(range(X.shape[1]))
    if (
        workers == 1
        or len(columns) < 2
        or exps.size < PROCESS_MIN_TERMS
        or not pays_off(exps.size * TERM_SECONDS)
    ):
        return _sums_chunk((residuals, exps, unshift, nsq))
    jobs = [(residuals, exps[:, cols], unshift, nsq) for cols in split(columns, workers)]
    return [s for part in process_map(_sums_chunk, jobs) for s in part]
