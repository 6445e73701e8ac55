"""Fixed-base exponentiation and CRT exponentiation for Paillier obfuscators, on gmpy2.

* :class:`FixedBaseTable` – ``base^e mod m`` for a base fixed in advance (DJN's ``h_s``):
  the exponent is cut into ``w``-bit windows and the table holds
  ``base^(j·2^(w·i))`` for every window ``i`` and digit ``j``, so one exponentiation is
  one lookup per non-zero window and ``k − 1`` mulmods (``k = ceil(bits / w)``) instead
  of a square-and-multiply over every bit.
* :class:`CrtFixedBase` – the key holder's version: one table mod p² and one mod q²
  (half-width numbers, each mulmod ~4x cheaper) and a CRT recombination to mod n².
* :class:`CrtPower` – the key holder's textbook obfuscator ``r^n mod n²`` as two
  half-width powmods (exponent n reduced mod p(p−1) and q(q−1)) and the same recombination;
  r varies per ciphertext, so there is no fixed base to tabulate.
* :class:`LiftedPower` – what the key holder uses for textbook obfuscation: the same
  distribution as ``r^n`` from two half-width powmods with half-length exponents
  (``s^p mod p²``, ``s^q mod q²``).

The table engines and :class:`CrtPower` give exactly the value ``gmpy2.powmod`` gives, so
ciphertexts made with them are identical, for the same randomness, to the public-key-only
path's; :class:`LiftedPower` gives ``r'^n`` for an r' that is as uniform as r.

Window size, measured here (2048-bit key, 256-bit DJN exponents, one core, ms per
exponentiation / table build seconds; NOTES §6: one powmod is 1.49 ms on a quiet machine):

| window w | lookups k | entries | n² table: ms / build s | p², q² tables (CRT): ms / build s |
|---:|---:|---:|---:|---:|
| 4 | 64 | 1,024 | 0.296 / 0.01 | – |
| 5 | 52 | 1,664 | 0.240 / 0.01 | – |
| 6 | 43 | 2,752 | 0.215 / 0.01 | 0.138 / 0.01 |
| 7 | 37 | 4,736 | 0.180 / 0.03 | 0.125 / 0.01 |
| 8 | 32 | 8,192 | 0.156 / 0.04 | 0.116 / 0.03 |
| 9 | 29 | 14,848 | 0.146 / 0.08 | 0.110 / 0.05 |
| 10 | 26 | 26,624 | 0.131 / 0.13 | – |

(one powmod ``h_s^a mod n²``: 1.22 ms in the same run; textbook ``r^n mod n²`` 8.93 ms by
powmod, 5.19 ms by :class:`CrtPower`.)

8-bit windows are the default (``DEFAULT_WINDOW``): 32 lookups, 8,192 entries (4 MiB
at 2048 bits, built in 0.04 s). Each wider window saves ~7% of the time per value but
doubles the table's memory and build time (10 bits: 13 MiB per table, paid back only
after ~3,600 obfuscators), and a process holds one table per pool (per party and key).

Every engine's ``pow_many(values, workers)`` spreads a batch over cores
(:mod:`fedrisk.crypto.workers`): the powmod engines (:class:`CrtPower`,
:class:`PlainPower`) on threads inside gmpy2's GIL-releasing ``powmod_base_list``, the
table engines over worker processes (their lookup chains are Python-level mulmods that
hold the GIL). The values come back in input order, identical to the serial ones.
"""

from __future__ import annotations

import gmpy2

from fedrisk.crypto.workers import (
    cached_build,
    pays_off,
    process_map,
    split,
    thread_map,
    worker_count,
)

__all__ = [
    "DEFAULT_WINDOW",
    "CrtFixedBase",
    "CrtPower",
    "FixedBaseTable",
    "LiftedPower",
    "PROCESS_MIN_VALUES",
    "PlainPower",
    "crt_recombiner",
]

DEFAULT_WINDOW = 8
# fewer table lookups than this per batch stay in the calling process: a worker's round
# trip costs ~1 ms, 64 lookup chains ~8-12 ms
PROCESS_MIN_VALUES = 64
LOOKUP_CHAIN_SECONDS = 1.5e-4  # one obfuscator from the tables, serially (2048-bit, CRT)


def _table_chunk(job: tuple) -> list:
    engine, values = job
    return [engine.pow(v) for v in values]


def _tabled_pow_many(engine, values, workers: int, local: bool) -> list:
    """A table engine's batch: serially, or over ``workers`` cores (worker processes and,
    when ``local``, the calling process)."""
    values = list(values)
    workers = worker_count(workers)
    if (
        workers == 1
        or len(values) < PROCESS_MIN_VALUES
        or not pays_off(len(values) * LOOKUP_CHAIN_SECONDS)
    ):
        return [engine.pow(v) for v in values]
    chunks = split(values, workers if local else workers - 1)
    parts = process_map(_table_chunk, [(engine, c) for c in chunks], local=local)
    return [v for part in parts for v in part]


class FixedBaseTable:
    """``base^e mod modulus`` for exponents ``0 <= e < 2^exponent_bits`` by table lookup."""

    def __init__(self, base: int, modulus: int, exponent_bits: int, window: int = DEFAULT_WINDOW):
        if exponent_bits < 1 or window < 1:
            raise ValueError("exponent_bits and window must be positive")
        self.modulus = m = gmpy2.mpz(modulus)
        self.exponent_bits = exponent_bits
        self.window = window
        self.windows = -(-exponent_bits // window)
        self.base = gmpy2.mpz(base) % m
        size = 1 << window
        table = []
        step = self.base  # base^(2^(w·i))
        for _ in range(self.windows):
            row = [gmpy2.mpz(1), step]
            for _ in range(size - 2):
                row.append(row[-1] * step % m)
            table.append(row)
            step = row[-1] * step % m
        self.table = table

    def __reduce__(self):
        # a worker process rebuilds the table once (tens of ms) instead of unpickling MiBs
        # with every batch
        args = (int(self.base), int(self.modulus), self.exponent_bits, self.window)
        return (cached_build, (FixedBaseTable, args))

    def pow(self, exponent: int) -> gmpy2.mpz:
        """``base^exponent mod modulus``: at most ``windows − 1`` mulmods."""
        e = int(exponent)
        if not 0 <= e < 1 << self.exponent_bits:
            raise ValueError(f"exponent outside [0, 2^{self.exponent_bits})")
        m = self.modulus
        if self.window == 8:  # byte digits at C speed (10-13% quicker than shifting)
            digits = e.to_bytes(self.windows, "little")
        else:
            w, mask = self.window, (1 << self.window) - 1
            digits = [(e >> (w * i)) & mask for i in range(self.windows)]
        result = None
        for row, digit in zip(self.table, digits):
            if digit:
                result = row[digit] if result is None else result * row[digit] % m
        return gmpy2.mpz(1) % m if result is None else result

    def pow_many(self, exponents, workers: int | None = 1, local: bool = True) -> list:
        """``pow`` of each exponent, in order, on ``workers`` cores (None: all; ``local``
        False: none of them the calling process's, for work that overlaps its own)."""
        return _tabled_pow_many(self, exponents, workers, local)


def crt_recombiner(p: int, q: int):
    """``(x mod p², x mod q²) -> x mod n²``, with ``(q²)^-1 mod p²`` computed once."""
    psq, qsq = gmpy2.mpz(p) ** 2, gmpy2.mpz(q) ** 2
    qsq_inv = gmpy2.invert(qsq, psq)

    def combine(xp, xq):
        return xq + qsq * ((xp - xq) * qsq_inv % psq)

    return combine


class CrtFixedBase:
    """The key holder's ``base^e mod n²`` from two half-width tables (mod p², mod q²)."""

    def __init__(self, base: int, p: int, q: int, exponent_bits: int, window: int = DEFAULT_WINDOW):
        p, q = gmpy2.mpz(p), gmpy2.mpz(q)
        self.nsquare = (p * q) ** 2
        self.exponent_bits = exponent_bits
        self.args = (int(base) % int(self.nsquare), int(p), int(q), exponent_bits, window)
        self.table_p = FixedBaseTable(base, p * p, exponent_bits, window)
        self.table_q = FixedBaseTable(base, q * q, exponent_bits, window)
        self.combine = crt_recombiner(p, q)

    def __reduce__(self):
        return (cached_build, (CrtFixedBase, self.args))

    def pow(self, exponent: int) -> gmpy2.mpz:
        return self.combine(self.table_p.pow(exponent), self.table_q.pow(exponent))

    def pow_many(self, exponents, workers: int | None = 1, local: bool = True) -> list:
        """As :meth:`FixedBaseTable.pow_many`."""
        return _tabled_pow_many(self, exponents, workers, local)


class _ListPowmods:
    """Engines whose batches are gmpy2 list powmods (``_chunk``), which always release
    the GIL: a batch is spread over threads."""

    def _chunk(self, rs: list) -> list[gmpy2.mpz]:
        raise NotImplementedError

    def pow_many(self, rs, workers: int | None = 1, local: bool = True) -> list[gmpy2.mpz]:
        """``pow`` of each r, in order, over ``workers`` threads (None: one per core).
        ``local`` is the table engines' switch: threads never block the caller's work."""
        del local
        return thread_map(self._chunk, rs, workers)


class CrtPower(_ListPowmods):
    """The key holder's ``r^n mod n²`` for varying r: two half-width powmods + CRT.

    The exponent n is reduced mod λ(p²) = p(p−1) and mod λ(q²) = q(q−1). That is exact
    for r coprime to n, and also when p | r: both sides are then 0 mod p², as the reduced
    exponent p·(q mod (p−1)) is at least 2."""

    def __init__(self, p: int, q: int):
        p, q = gmpy2.mpz(p), gmpy2.mpz(q)
        n = p * q
        self.n, self.nsquare = n, n * n
        self.psq, self.qsq = p * p, q * q
        self.exp_p = n % (p * (p - 1))
        self.exp_q = n % (q * (q - 1))
        self.combine = crt_recombiner(p, q)

    def pow(self, r: int) -> gmpy2.mpz:
        r = gmpy2.mpz(r)
        return self.combine(
            gmpy2.powmod(r % self.psq, self.exp_p, self.psq),
            gmpy2.powmod(r % self.qsq, self.exp_q, self.qsq),
        )

    def _chunk(self, rs: list) -> list[gmpy2.mpz]:
        xp = gmpy2.powmod_base_list([gmpy2.mpz(r) % self.psq for r in rs], self.exp_p, self.psq)
        xq = gmpy2.powmod_base_list([gmpy2.mpz(r) % self.qsq for r in rs], self.exp_q, self.qsq)
        return [self.combine(a, b) for a, b in zip(xp, xq)]


class LiftedPower(_ListPowmods):
    """The key holder's textbook obfuscator at half :class:`CrtPower`'s exponent length.

    ``r^n mod p²`` depends only on ``s = r^q mod p``: it is ``s^p mod p²`` (the lift of s to
    the subgroup of order p − 1). For r uniform in Z*_n, ``(r^q mod p, r^p mod q)`` is
    uniform in Z*_p × Z*_q (q ∤ p − 1 and p ∤ q − 1), so drawing ``(s_p, s_q) = (r mod p,
    r mod q)`` and returning ``CRT(s_p^p mod p², s_q^q mod q²)`` gives exactly the
    distribution of ``r^n mod n²`` — a uniform n-th residue; the value is ``r'^n`` for
    ``r' ≡ r^(q⁻¹ mod p−1) mod p`` and ``≡ r^(p⁻¹ mod q−1) mod q`` — with ~1024-bit
    exponents instead of ~2048-bit ones (about 2x quicker)."""

    def __init__(self, p: int, q: int):
        p, q = gmpy2.mpz(p), gmpy2.mpz(q)
        if not self.applies(p, q):
            raise ValueError("q divides p − 1 or p divides q − 1: use CrtPower")
        self.p, self.q = p, q
        self.psq, self.qsq = p * p, q * q
        self.combine = crt_recombiner(p, q)

    @staticmethod
    def applies(p: int, q: int) -> bool:
        """Whether the lift is a bijection for these primes (always for primes of one
        bit length, as phe makes them)."""
        return gmpy2.gcd(q, p - 1) == 1 and gmpy2.gcd(p, q - 1) == 1

    def pow(self, r: int) -> gmpy2.mpz:
        r = gmpy2.mpz(r)
        return self.combine(
            gmpy2.powmod(r % self.p, self.p, self.psq), gmpy2.powmod(r % self.q, self.q, self.qsq)
        )

    def _chunk(self, rs: list) -> list[gmpy2.mpz]:
        xp = gmpy2.powmod_base_list([gmpy2.mpz(r) % self.p for r in rs], self.p, self.psq)
        xq = gmpy2.powmod_base_list([gmpy2.mpz(r) % self.q for r in rs], self.q, self.qsq)
        return [self.combine(a, b) for a, b in zip(xp, xq)]


class PlainPower(_ListPowmods):
    """``r^exponent mod modulus`` by one powmod per r: the public-key-only textbook path."""

    def __init__(self, exponent: int, modulus: int):
        self.exponent, self.modulus = gmpy2.mpz(exponent), gmpy2.mpz(modulus)

    def pow(self, r: int) -> gmpy2.mpz:
        return gmpy2.powmod(gmpy2.mpz(r), self.exponent, self.modulus)

    def _chunk(self, rs: list) -> list[gmpy2.mpz]:
        return gmpy2.powmod_base_list([gmpy2.mpz(r) for r in rs], self.exponent, self.modulus)
