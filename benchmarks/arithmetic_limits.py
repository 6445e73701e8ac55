"""The big-integer arithmetic a Paillier step cannot avoid, on one core: the limits the
benchmark files (``test_bench_paillier.py``, ``test_bench_fixed_base.py``,
``test_bench_vertical.py``) time each step against. Old limits are the public-key way,
one ``powmod`` mod n² per value; new limits are what the key holder's or the fixed-base
engine's own arithmetic comes to."""

from __future__ import annotations

import gmpy2


def limit_powmod_full(rs: list, n, nsq) -> list:
    """Textbook ``r^n mod n²``, one powmod each: the old limit."""
    return [gmpy2.powmod(r, n, nsq) for r in rs]


def limit_crt_pair_full(rs: list, p, q) -> list:
    """Exactly ``r^n`` by CRT: ``powmod(r, n mod p(p−1), p²)`` and the same mod q²."""
    psq, qsq, n = p * p, q * q, p * q
    ep, eq = n % (p * (p - 1)), n % (q * (q - 1))
    return [(gmpy2.powmod(r, ep, psq), gmpy2.powmod(r, eq, qsq)) for r in rs]


def limit_lifted_pair_full(rs: list, p, q) -> list:
    """The key holder's textbook obfuscator (``LiftedPower``): two half-width powmods with
    half-length exponents, ``(r mod p)^p mod p²`` and ``(r mod q)^q mod q²`` (the 2-mulmod
    recombination left out)."""
    psq, qsq = p * p, q * q
    return [(gmpy2.powmod(r % p, p, psq), gmpy2.powmod(r % q, q, qsq)) for r in rs]


def limit_powmod_djn(hs, exponents: list, nsq) -> list:
    """DJN ``h_s^a mod n²``, one powmod each: the old limit."""
    return [gmpy2.powmod(hs, a, nsq) for a in exponents]


def chain(entries: list, m):
    """One table lookup chain: ``len(entries) − 1`` mulmods."""
    acc = entries[0]
    for e in entries[1:]:
        acc = acc * e % m
    return acc


def limit_chain_djn(entries: list, nsq, count: int) -> list:
    """``count`` lookup chains mod n² (the public-key fixed-base table)."""
    return [chain(entries, nsq) for _ in range(count)]


def limit_crt_chain_djn(entries_p: list, entries_q: list, psq, qsq, count: int) -> list:
    """``count`` CRT pairs of chains, mod p² and mod q² (the key holder's tables)."""
    return [(chain(entries_p, psq), chain(entries_q, qsq)) for _ in range(count)]


def limit_decrypt(private_key, ciphertexts: list[int]) -> list[int]:
    """phe's CRT ``raw_decrypt`` of each ciphertext."""
    return [private_key.raw_decrypt(c) for c in ciphertexts]
