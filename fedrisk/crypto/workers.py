"""Both cores for big-integer batches: GIL-free threads and one shared worker-process pool.

Two kinds of work, two ways to spread them:

* **powmod batches** (textbook ``r^n`` obfuscators, CRT halves, decryption) run inside
  gmpy2's ``powmod_base_list`` / ``powmod_exp_list``, which always release the GIL: plain
  threads then use every core, with no copying (:func:`thread_map`).
* **Python-level mulmod chains** (fixed-base table lookups, Pippenger buckets) hold the
  GIL between operations: they go to worker processes (:func:`process_map`). The calling
  process computes one share itself; the pool has one worker per core all the same, so
  work started in the background (the bank's next obfuscators) and work the caller waits
  for (the provider's sums) do not queue behind each other. The pool is one per process, started on first use (forkserver: a clean parent to fork from;
  start-up 0.1–0.4 s, paid once) and reused by every party and key in the process; an
  engine sent to it is rebuilt once per worker and kept (:func:`cached_build`).

Results come back in input order and are exactly the serial ones. ``FEDRISK_CRYPTO_WORKERS``
caps the cores used (1: everything serial, no thread or process is started).
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

__all__ = [
    "active_processes",
    "cached_build",
    "pays_off",
    "process_ids",
    "process_map",
    "shutdown",
    "split",
    "start",
    "thread_map",
    "worker_count",
]


def worker_count(cap: int | None = None) -> int:
    """Cores to use: the CPUs this process may run on, at most ``cap``
    (``FEDRISK_CRYPTO_WORKERS`` in the environment caps it when ``cap`` is None)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    if cap is None and os.environ.get("FEDRISK_CRYPTO_WORKERS"):
        cap = int(os.environ["FEDRISK_CRYPTO_WORKERS"])
    return max(1, min(cpus, cap) if cap else cpus)


def split(items: list, parts: int) -> list[list]:
    """``items`` in at most ``parts`` contiguous, near-equal, non-empty chunks."""
    parts = max(1, min(parts, len(items)))
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for k in range(parts):
        end = start + size + (k < extra)
        out.append(items[start:end])
        start = end
    return out


_threads: ThreadPoolExecutor | None = None
_processes: ProcessPoolExecutor | None = None
_lock = threading.Lock()


def _thread_pool() -> ThreadPoolExecutor:
    global _threads
    with _lock:
        if _threads is None:
            _threads = ThreadPoolExecutor(
                max_workers=max(2, worker_count(os.cpu_count())),
                thread_name_prefix="fedrisk-crypto",
            )
        return _threads


def thread_map(fn, items: list, workers: int | None = None) -> list:
    """``fn`` over ``items`` cut into one near-equal chunk per core (at most ``workers``),
    the chunks after the first on threads, the first in the calling thread; ``fn`` maps a
    chunk to its list of results (spending its time in GIL-releasing C calls), and the
    results come back joined, in order."""
    chunks = split(list(items), worker_count(workers))
    if len(chunks) <= 1:
        return [v for c in chunks for v in fn(c)]
    futures = [_thread_pool().submit(fn, c) for c in chunks[1:]]
    first = fn(chunks[0])
    return [*first, *(v for f in futures for v in f.result())]


def _process_pool() -> ProcessPoolExecutor:
    global _processes
    with _lock:
        if _processes is None:
            # forkserver: forking a process whose other threads may hold locks is unsafe;
            # spawn where there is none. Either imports the main module again, so a
            # script using this needs the ``if __name__ == "__main__":`` guard.
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context(
                "forkserver" if "forkserver" in methods else "spawn"
            )
            _processes = ProcessPoolExecutor(max_workers=worker_count(), mp_context=context)
        return _processes


def start() -> None:
    """Have the worker processes ready: a long-lived party (the vertical bank's process,
    which in-process also hosts the data parties) calls this before its first batch, so
    each batch that pays for a process round trip gets one."""
    if worker_count() > 1:
        _process_pool()


def pays_off(seconds: float) -> bool:
    """Whether work of about this many serial seconds is worth the worker processes:
    a few milliseconds once they run, about a second before (starting them costs
    0.1–0.4 s, and a Deployment Engine ClientApp process lives for one message)."""
    with _lock:
        warm = _processes is not None
    return seconds >= (WARM_MIN_SECONDS if warm else COLD_MIN_SECONDS)


WARM_MIN_SECONDS = 0.005
COLD_MIN_SECONDS = 1.0


def process_map(fn, chunks: list, local: bool = True) -> list:
    """``[fn(c) for c in chunks]`` with ``fn`` a module-level function: the first chunk in
    the calling process when ``local`` (the others in worker processes), else all of them
    in workers (work meant to overlap the caller's own)."""
    if not chunks:
        return []
    remote = chunks[1:] if local else chunks
    try:
        futures: list[Future] = [_process_pool().submit(fn, c) for c in remote]
        head = [fn(chunks[0])] if local else []
        return head + [f.result() for f in futures]
    except BrokenProcessPool:
        # a worker died (killed, out of memory): drop the pool, so the next batch starts
        # a fresh one, and compute this batch here; the values are the same
        _discard_broken_pool()
        return [fn(c) for c in chunks]


def _discard_broken_pool() -> None:
    global _processes
    with _lock:
        broken, _processes = _processes, None
    if broken is not None:
        broken.shutdown(wait=False, cancel_futures=True)


_built: dict = {}


def cached_build(factory, args: tuple):
    """``factory(*args)``, built once per process (an engine's ``__reduce__`` uses this, so
    a worker rebuilds a table once, not with every batch it is sent)."""
    key = (factory, args)
    if key not in _built:
        if len(_built) >= 8:  # a few keys at a time; old tables go
            _built.pop(next(iter(_built)))
        _built[key] = factory(*args)
    return _built[key]


def process_ids() -> list[int]:
    """The worker processes' ids (none before the first process batch)."""
    with _lock:
        pool = _processes
    # the executor keeps its processes in a private attribute; reading is harmless
    return [] if pool is None else list((pool._processes or {}).keys())


def active_processes() -> int:
    """Worker processes running now (0 before the first process batch)."""
    with _lock:
        pool = _processes
    return 0 if pool is None else sum(p.is_alive() for p in (pool._processes or {}).values())


def shutdown() -> None:
    """Stop the worker processes and threads (they otherwise live until exit)."""
    global _threads, _processes
    with _lock:
        threads, processes, _threads, _processes = _threads, _processes, None, None
    if processes is not None:
        processes.shutdown(wait=True, cancel_futures=True)
    if threads is not None:
        threads.shutdown(wait=True)


atexit.register(shutdown)
