"""Paillier obfuscators: one powmod (the old limit) vs fixed-base tables and CRT.

Workload: 2048-bit key, 256-bit DJN exponents (``DJN_EXPONENT_BITS``), 8-bit windows.
Every benchmark computes a batch of obfuscators; the table reports ms per obfuscator.

Limits, the big-integer arithmetic each way cannot avoid:

* ``limit_powmod_full`` – ``gmpy2.powmod(r, n, n²)``: textbook, the old limit;
* ``limit_lifted_pair_full`` – ``powmod(r mod p, p, p²)`` and ``powmod(r mod q, q, q²)``: the
  key holder's textbook new limit (``LiftedPower``: r^n's distribution, half-length exponents);
* ``limit_crt_pair_full`` – ``powmod(r, n mod p(p−1), p²)`` and the same mod q²: the CRT pair
  (textbook, key holder), without the recombination;
* ``limit_powmod_djn`` – ``gmpy2.powmod(h_s, a, n²)``: DJN, the old limit;
* ``limit_chain_djn`` – one table lookup chain: k − 1 = 31 mulmods mod n² of table entries;
* ``limit_crt_chain_djn`` – the CRT pair of chains: 31 mulmods mod p² and 31 mod q².

Measured ways (``ObfuscatorPool.compute``, which is what ``take_many`` / ``prepare`` run):
textbook public (powmod), textbook key holder (CRT), DJN public (fixed-base table), DJN key
holder (CRT fixed-base), each serially (``workers=1``, to compare with its one-core limit);
then the key holder's two batches as a vertical run computes them, on every core
(``workers=None``): DJN over the shared worker-process pool plus this process (warmed up
before timing; the start-up is reported separately) and textbook on GIL-free threads.

The last test writes ``benchmarks/results/fixed_base.md``.
"""

from __future__ import annotations

import os
import platform
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import gmpy2
import pytest
from arithmetic_limits import (
    limit_chain_djn,
    limit_crt_chain_djn,
    limit_crt_pair_full,
    limit_lifted_pair_full,
    limit_powmod_djn,
    limit_powmod_full,
)

from fedrisk.crypto import workers
from fedrisk.crypto.fixed_base import DEFAULT_WINDOW, PROCESS_MIN_VALUES
from fedrisk.crypto.paillier import DJN_EXPONENT_BITS, ObfuscatorPool, generate_keypair
from fedrisk.crypto.workers import active_processes, worker_count

KEY_BITS = 2048
FULL_BATCH = 16  # textbook obfuscators per round (~0.1-0.2 s)
DJN_BATCH = 512  # DJN obfuscators per round
MULTI_FULL_BATCH = 64  # textbook obfuscators per round on every core (~0.2 s on 2)
MULTI_DJN_BATCH = 8192  # DJN obfuscators per round on every core (~0.5 s on 2)
KEY = "fixed_base:"
RESULTS = Path(__file__).resolve().parent / "results" / "fixed_base.md"
CHAIN = -(-DJN_EXPONENT_BITS // DEFAULT_WINDOW) - 1  # mulmods in one lookup chain


@dataclass
class Setup:
    n: gmpy2.mpz
    nsq: gmpy2.mpz
    p: gmpy2.mpz
    q: gmpy2.mpz
    pools: dict  # (obfuscation, key holder?) -> ObfuscatorPool
    rs: list
    exponents: list
    entries: list  # random table-like entries mod n², mod p², mod q²

    @property
    def hs(self):
        return self.pools["djn", False].djn_base


@pytest.fixture(scope="module")
def setup() -> Setup:
    workers.start()  # as a long-lived key holder does: its batches may use the workers
    public_key, private_key = generate_keypair(KEY_BITS)
    public = ObfuscatorPool(public_key, "djn")
    pools = {
        ("full", False): ObfuscatorPool(public_key),
        ("full", True): ObfuscatorPool(public_key, private_key=private_key),
        ("djn", False): public,
        ("djn", True): ObfuscatorPool(
            public_key, "djn", private_key=private_key, djn_base=public.djn_base
        ),
    }
    for pool in pools.values():
        pool.engine  # noqa: B018 - build the tables now, untimed
    p, q = gmpy2.mpz(private_key.p), gmpy2.mpz(private_key.q)
    n = p * q
    exponents = pools["djn", False].draw(DJN_BATCH)
    s = Setup(n, n * n, p, q, pools, pools["full", False].draw(FULL_BATCH), exponents, [])
    s.entries = [
        [gmpy2.mpz(secrets.randbelow(int(m))) for _ in range(CHAIN + 1)]
        for m in (s.nsq, p * p, q * q)
    ]
    # a benchmark of wrong code is worthless: every way gives powmod's values
    expected = [gmpy2.powmod(s.hs, a, s.nsq) for a in exponents[:8]]
    assert pools["djn", True].compute(exponents[:8]) == expected
    assert pools["djn", False].compute(exponents[:8]) == expected
    lifted = [lifted_r(p, q, r) for r in s.rs[:2]]  # the key holder's textbook values
    assert pools["full", True].compute(s.rs[:2], workers=1) == limit_powmod_full(lifted, n, s.nsq)
    return s


def lifted_r(p, q, r):
    """The r' whose r'^n the key holder's ``LiftedPower`` gives for r."""
    rp = gmpy2.powmod(r % p, gmpy2.invert(q, p - 1), p)
    rq = gmpy2.powmod(r % q, gmpy2.invert(p, q - 1), q)
    return rp + p * ((rq - rp) * gmpy2.invert(p, q) % q)


# the limits ---------------------------------------------------------------------------


# benchmarks ---------------------------------------------------------------------------


def serial(pool: ObfuscatorPool):
    """The pool's batch on this thread only, to compare with a one-core limit."""
    return lambda inputs: pool.compute(inputs, workers=1)


def run(benchmark, bench_store, name, count, fn, *args, rounds=5):
    out = benchmark.pedantic(fn, args=args, rounds=rounds, iterations=1, warmup_rounds=1)
    assert len(out) == count
    benchmark.extra_info["obfuscators"] = count
    bench_store.record(KEY + name, benchmark)
    if KEY + name in bench_store.results:
        bench_store.results[KEY + name]["count"] = count
    return out


@pytest.mark.benchmark(group="textbook r^n")
def test_limit_powmod_full(benchmark, bench_store, setup):
    run(benchmark, bench_store, "limit_powmod_full", FULL_BATCH, limit_powmod_full, setup.rs,
        setup.n, setup.nsq)  # fmt: skip


@pytest.mark.benchmark(group="textbook r^n")
def test_limit_crt_pair_full(benchmark, bench_store, setup):
    run(benchmark, bench_store, "limit_crt_pair_full", FULL_BATCH, limit_crt_pair_full,
        setup.rs, setup.p, setup.q)  # fmt: skip


@pytest.mark.benchmark(group="textbook r^n")
def test_limit_lifted_pair_full(benchmark, bench_store, setup):
    run(benchmark, bench_store, "limit_lifted_pair_full", FULL_BATCH, limit_lifted_pair_full,
        setup.rs, setup.p, setup.q)  # fmt: skip


@pytest.mark.benchmark(group="textbook r^n")
def test_pool_full_public(benchmark, bench_store, setup):
    pool = setup.pools["full", False]
    run(benchmark, bench_store, "pool_full_public", FULL_BATCH, serial(pool), setup.rs)


@pytest.mark.benchmark(group="textbook r^n")
def test_pool_full_crt(benchmark, bench_store, setup):
    pool = setup.pools["full", True]
    out = run(benchmark, bench_store, "pool_full_crt", FULL_BATCH, serial(pool), setup.rs)
    lifted = [lifted_r(setup.p, setup.q, r) for r in setup.rs]
    assert out == limit_powmod_full(lifted, setup.n, setup.nsq)


@pytest.mark.benchmark(group="DJN h_s^a")
def test_limit_powmod_djn(benchmark, bench_store, setup):
    run(benchmark, bench_store, "limit_powmod_djn", DJN_BATCH, limit_powmod_djn, setup.hs,
        setup.exponents, setup.nsq)  # fmt: skip


@pytest.mark.benchmark(group="DJN h_s^a")
def test_limit_chain_djn(benchmark, bench_store, setup):
    run(benchmark, bench_store, "limit_chain_djn", DJN_BATCH, limit_chain_djn,
        setup.entries[0], setup.nsq, DJN_BATCH)  # fmt: skip


@pytest.mark.benchmark(group="DJN h_s^a")
def test_limit_crt_chain_djn(benchmark, bench_store, setup):
    run(benchmark, bench_store, "limit_crt_chain_djn", DJN_BATCH, limit_crt_chain_djn,
        setup.entries[1], setup.entries[2], setup.p**2, setup.q**2, DJN_BATCH)  # fmt: skip


@pytest.mark.benchmark(group="DJN h_s^a")
def test_pool_djn_fixed_base(benchmark, bench_store, setup):
    pool = setup.pools["djn", False]
    run(benchmark, bench_store, "pool_djn_fixed_base", DJN_BATCH, serial(pool),
        setup.exponents)  # fmt: skip


@pytest.mark.benchmark(group="DJN h_s^a")
def test_pool_djn_crt_fixed_base(benchmark, bench_store, setup):
    pool = setup.pools["djn", True]
    out = run(benchmark, bench_store, "pool_djn_crt_fixed_base", DJN_BATCH, serial(pool),
              setup.exponents)  # fmt: skip
    assert out == setup.pools["djn", False].compute(setup.exponents, workers=1)


@pytest.mark.benchmark(group="textbook r^n")
def test_multicore_full_crt(benchmark, bench_store, setup):
    """The key holder's textbook batch on every core (CRT powmods on GIL-free threads)."""
    pool = setup.pools["full", True]
    rs = pool.draw(MULTI_FULL_BATCH)
    out = run(benchmark, bench_store, "multicore_full_crt", MULTI_FULL_BATCH,
              lambda inputs: pool.compute(inputs, workers=None), rs)  # fmt: skip
    assert out == pool.compute(rs, workers=1)


@pytest.mark.benchmark(group="DJN h_s^a")
def test_multicore_djn_crt_fixed_base(benchmark, bench_store, setup):
    """The key holder's DJN batch on every core: the shared worker-process pool plus this
    process. The first multi-core batch starts the workers and rebuilds the tables in
    them; it is timed apart (once per process in a run) and kept out of the rounds."""
    pool = setup.pools["djn", True]
    exponents = pool.draw(MULTI_DJN_BATCH)
    cold = active_processes() == 0
    started = time.perf_counter()
    pool.compute(pool.draw(2 * PROCESS_MIN_VALUES), workers=None)
    startup = time.perf_counter() - started
    out = run(benchmark, bench_store, "multicore_djn_crt_fixed_base", MULTI_DJN_BATCH,
              lambda inputs: pool.compute(inputs, workers=None), exponents, rounds=3)  # fmt: skip
    assert out == pool.compute(exponents, workers=1)
    write_table(bench_store, worker_count(), startup if cold else None)


LABELS = [
    ("limit_powmod_full", "textbook r^n: one powmod mod n² (old limit)"),
    ("pool_full_public", "textbook, public key only: pool (powmod)"),
    ("limit_crt_pair_full", "textbook, key holder: the CRT pair of powmods, exponent n mod p(p−1)"),
    (
        "limit_lifted_pair_full",
        "textbook, key holder: the lifted pair, exponents p and q (new limit)",
    ),
    ("pool_full_crt", "textbook, key holder: pool (lifted CRT pair, LiftedPower)"),
    ("limit_powmod_djn", "DJN h_s^a: one powmod mod n² (old limit)"),
    ("limit_chain_djn", f"DJN: one lookup chain, {CHAIN} mulmods mod n² (new limit)"),
    ("pool_djn_fixed_base", "DJN, public key only: pool (fixed-base table)"),
    ("limit_crt_chain_djn", f"DJN, key holder: the CRT pair of chains, 2 × {CHAIN} mulmods"),
    ("pool_djn_crt_fixed_base", "DJN, key holder: pool (CRT fixed-base tables)"),
]
MULTICORE = [  # (key, label, its serial way)
    ("multicore_full_crt", "textbook, key holder: pool (lifted), every core (threads)", "pool_full_crt"),
    ("multicore_djn_crt_fixed_base", "DJN, key holder: pool (CRT tables), every core "
     "(worker processes + this one)", "pool_djn_crt_fixed_base"),
]  # fmt: skip


def write_table(bench_store, workers: int, startup: float | None) -> None:
    res = {k[len(KEY) :]: v for k, v in bench_store.results.items() if k.startswith(KEY)}
    if not res:
        return
    per = {k: v["min"] / v["count"] * 1e3 for k, v in res.items()}
    old = {"full": per.get("limit_powmod_full"), "djn": per.get("limit_powmod_djn")}
    lines = [
        f"Paillier {KEY_BITS}-bit obfuscators, {DJN_EXPONENT_BITS}-bit DJN exponents, "
        f"{DEFAULT_WINDOW}-bit windows; ms per obfuscator (wall time / batch), min over rounds "
        f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
        f"{workers} cores used, Python {platform.python_version()}, gmpy2 {gmpy2.version()})",
        "",
        "| way | ms per obfuscator | vs one powmod (old limit) |",
        "|---|---:|---:|",
    ]
    for key, label in LABELS + [(k, lab) for k, lab, _ in MULTICORE]:
        if key in per:
            base = old["full" if "full" in key else "djn"]
            ratio = f"{base / per[key]:.1f}x" if base else "–"
            lines.append(f"| {label} | {per[key]:.3f} | {ratio} |")
    notes = []
    for key, label, one in MULTICORE:
        if key in per and one in per:
            notes.append(
                f"- {label.split(':')[0]}: {workers} cores give {per[one] / per[key]:.2f}x the "
                f"serial pool's throughput ({res[key]['count']:,} obfuscators per batch)."
            )
    if startup is not None:
        notes.append(
            f"- worker-process start-up (first multi-core batch, incl. rebuilding the tables "
            f"in the worker; once per process): {startup:.2f} s, not in the rows above."
        )
    notes.append(
        "- the serial rows run with `workers=1`, so they compare with their one-core limits; "
        "the multi-core rows are what a vertical run's key holder computes."
    )
    bench_store.publish(
        RESULTS,
        "Obfuscator benchmark",
        "python -m pytest benchmarks/test_bench_fixed_base.py --benchmark-only",
        "\n".join(lines + [""] + notes),
    )
