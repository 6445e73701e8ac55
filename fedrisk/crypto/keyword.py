"""Keyword lookup for PIR: a cuckoo-hashed table of sealed records.

PIR retrieves a record by its position; the bank knows an applicant's id, not where the
data party keeps it. The party places each of its ids in one of ``WAYS`` buckets chosen
by public hash functions of the id's OPRF value F_k(x), which the bank obtains for the
ids it asks about (hashing the raw id instead would let the bank rule out ids it never
asked about from which buckets are taken). Cuckoo hashing (Pagh & Rodler 2004, with three
choices: Fotakis et al. 2005 show insertion succeeds below a load of about 0.91; this
table is filled to :data:`LOAD`). The bank computes an applicant's three buckets itself and
always fetches all three, so the party sees the same number of PIR queries per applicant
whether it holds the id or not.

Each record is sealed under the id's OPRF value F_k(x) (:mod:`fedrisk.crypto.oprf`):
``record = SHAKE-256(F_k(x)) ⊕ (0⁸ ‖ payload)``. The bank, holding F_k(x) for the ids it
asked about, unseals a fetched record and keeps it when its first 8 bytes come out zero (a
wrong record passes with probability 2⁻⁶⁴); every other record, and every empty bucket
(filled with uniform bytes from the party's own secret), looks uniform to it. "Not found"
is the bank finding no such record among the three: the party's view is the same as for
a hit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

__all__ = [
    "CHECK_BYTES",
    "LOAD",
    "WAYS",
    "bucket_count",
    "candidate_buckets",
    "open_records",
    "place",
    "seal_records",
]

WAYS = 3
LOAD = 0.8
CHECK_BYTES = 8
_MAX_KICKS = 1000
_BUCKET_TAG = b"fedrisk/bucket\x00"


def bucket_count(items: int) -> int:
    return max(WAYS, int(np.ceil(items / LOAD)))


def candidate_buckets(keys: Sequence[bytes], buckets: int, table_seed: bytes) -> np.ndarray:
    """The ``WAYS`` buckets of each record (``len(keys) × WAYS``): BLAKE2b keyed with the
    table's public seed, of the record's OPRF value F_k(x). The bank can place an id only
    after the OPRF, so which buckets are taken says nothing about ids it never asked."""
    for k in keys:
        if not isinstance(k, (bytes, bytearray)):
            raise TypeError("cuckoo buckets are placed by OPRF values (bytes), not raw ids")
    digests = b"".join(
        hashlib.blake2b(_BUCKET_TAG + k, key=table_seed, digest_size=8 * WAYS).digest()
        for k in keys
    )
    words = np.frombuffer(digests, dtype="<u8").reshape(len(keys), WAYS)
    return (words % np.uint64(buckets)).astype(np.int64)


def place(candidates: np.ndarray, buckets: int) -> np.ndarray | None:
    """A bucket per item, each among its candidates, no two items sharing one; None if
    cuckoo insertion fails (the caller retries with another table seed)."""
    n = len(candidates)
    owner = np.full(buckets, -1, dtype=np.int64)
    where = np.full(n, -1, dtype=np.int64)
    pending = np.arange(n)
    for way in range(WAYS):  # vectorised: each free bucket goes to its first claimant
        if not pending.size:
            break
        wanted = candidates[pending, way]
        free = owner[wanted] < 0
        _, first = np.unique(wanted[free], return_index=True)
        chosen = pending[free][first]
        owner[candidates[chosen, way]] = chosen
        where[chosen] = candidates[chosen, way]
        pending = np.setdiff1d(pending, chosen, assume_unique=True)
    for item in pending.tolist():  # the few left: cuckoo eviction walks
        current, previous = item, -1
        for kick in range(_MAX_KICKS):
            options = candidates[current].tolist()
            free = [b for b in options if owner[b] < 0]
            if free:
                owner[free[0]] = current
                where[current] = free[0]
                break
            # evict from a bucket other than the one this item was just pushed out of
            choices = [b for b in options if b != previous] or options
            bucket = choices[kick % len(choices)]
            evicted = int(owner[bucket])
            owner[bucket], where[current], where[evicted] = current, bucket, -1
            current, previous = evicted, bucket
        else:
            return None
    return where


def _keystreams(keys: Sequence[bytes], nbytes: int) -> np.ndarray:
    stream = b"".join(hashlib.shake_256(b"fedrisk/seal\x00" + k).digest(nbytes) for k in keys)
    return np.frombuffer(stream, dtype=np.uint8).reshape(len(keys), nbytes)


def seal_records(keys: Sequence[bytes], payloads: np.ndarray) -> np.ndarray:
    """Each payload (uint8 rows) sealed under its id's OPRF value: ``record_bytes =
    CHECK_BYTES + payload bytes``."""
    payloads = np.asarray(payloads, dtype=np.uint8)
    if payloads.ndim != 2 or len(payloads) != len(keys):
        raise ValueError("one payload row per key")
    plain = np.concatenate([np.zeros((len(keys), CHECK_BYTES), np.uint8), payloads], axis=1)
    return plain ^ _keystreams(keys, plain.shape[1])


def open_records(keys: Sequence[bytes], records: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(opened: bool per record, payloads): a record opens under its key when its check
    bytes come out zero."""
    records = np.asarray(records, dtype=np.uint8)
    plain = records ^ _keystreams(keys, records.shape[1])
    opened = ~plain[:, :CHECK_BYTES].any(axis=1)
    return opened, plain[:, CHECK_BYTES:]
