"""SecureBoost's encrypted histograms: g, h and a count packed into one plaintext per
customer, per-bin sums under Paillier, and several candidates' sums per ciphertext.

Layout (computed headroom, as :mod:`fedrisk.crypto.encoding` does for model updates):
a customer's plaintext is three byte-aligned slots, most significant first,

    [ g + 1 in fixed point | h in fixed point | 1 ]

each wide enough for the sum over every row of the tree (``rows``), so adding the
ciphertexts of any subset of rows adds the three slots without a carry between them.
One multiplication mod n² per row and column builds a data party's per-bin sums; a
cumulative product over the bins gives each candidate split's *left* sums.

Cipher compression: a candidate's sums take ``slot_bits`` bits, far fewer than n's, so
``per_ciphertext`` candidates are folded into one ciphertext by Horner's rule,
``C = (…(c₁^(2^w) · c₂)^(2^w) · …) · c_k`` (w = ``slot_bits``), before sending: the bank
decrypts one ciphertext for ``per_ciphertext`` candidates and reads their slots off
the plaintext's bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import gmpy2
import numpy as np

from fedrisk.crypto.workers import pays_off, process_map, split, thread_map, worker_count

PROCESS_MIN_TERMS = 8192  # fewer rows × columns stay in this process
MULMOD_SECONDS = 1e-5  # one histogram term, serially, at 2048 bits (to judge a pool)


@dataclass(frozen=True)
class GHLayout:
    """Slot widths for sums over at most ``rows`` customers, g and h in fixed point
    with ``frac_bits`` fractional bits (g + 1 ∈ [0, 2], h ∈ [0, ¼])."""

    rows: int
    frac_bits: int

    @property
    def slot_bytes(self) -> tuple[int, int, int]:
        """Bytes of the g, h and count slots."""
        g_max = self.rows * (2 << self.frac_bits)  # (g + 1) ≤ 2 per row
        h_max = self.rows * (1 << (self.frac_bits - 2))  # h ≤ ¼ per row
        return tuple(max(1, math.ceil(v.bit_length() / 8)) for v in (g_max, h_max, self.rows))

    @property
    def candidate_bytes(self) -> int:
        return sum(self.slot_bytes)

    @property
    def slot_bits(self) -> int:
        return 8 * self.candidate_bytes

    def per_ciphertext(self, n: int) -> int:
        """Candidates one plaintext mod n holds (its top bit left unused)."""
        return max(1, (int(n).bit_length() - 1) // self.slot_bits)

    def pack_rows(self, gi: np.ndarray, hi: np.ndarray) -> list[int]:
        """Each row's plaintext (g, h as :func:`~fedrisk.models.boosting.gh_integers`)."""
        gb, hb, cb = self.slot_bytes
        raw = np.zeros((len(gi), gb + hb + cb), dtype=np.uint8)
        raw[:, :gb] = _big_endian(gi, gb)
        raw[:, gb : gb + hb] = _big_endian(hi, hb)
        raw[:, -1] = 1
        buf, width = raw.tobytes(), raw.shape[1]
        return [int.from_bytes(buf[i : i + width], "big") for i in range(0, len(buf), width)]

    def unpack(self, values: list[int], candidates: int, per_ciphertext: int) -> np.ndarray:
        """(3, candidates) int64 (count, Σg, Σh) from the decrypted folded plaintexts
        (the last one holds the remainder)."""
        gb, hb, cb = self.slot_bytes
        width = self.candidate_bytes
        buf = b"".join(int(v).to_bytes(per_ciphertext * width, "big") for v in values)
        slots = np.frombuffer(buf, dtype=np.uint8).reshape(-1, width)
        pad = len(values) * per_ciphertext - candidates
        if pad < 0 or (pad and slots[-per_ciphertext : -per_ciphertext + pad].any()):
            raise ValueError(f"{len(values)} folded ciphertexts cannot hold {candidates} sums")
        if pad:  # the last ciphertext's leading slots are empty
            slots = np.vstack([slots[:-per_ciphertext], slots[-per_ciphertext + pad :]])
        out = np.empty((3, candidates), dtype=np.int64)
        out[1] = _from_big_endian(slots[:, :gb])
        out[2] = _from_big_endian(slots[:, gb : gb + hb])
        out[0] = _from_big_endian(slots[:, gb + hb :])
        return out


def _big_endian(values: np.ndarray, width: int) -> np.ndarray:
    """Non-negative int64 values as ``width`` big-endian bytes each (width ≤ 8)."""
    be = np.asarray(values, dtype=">u8").view(np.uint8).reshape(-1, 8)
    return be[:, 8 - width :]


def _from_big_endian(raw: np.ndarray) -> np.ndarray:
    padded = np.zeros((raw.shape[0], 8), dtype=np.uint8)
    padded[:, 8 - raw.shape[1] :] = raw
    return padded.view(">u8").ravel().astype(np.int64)


def _node_sums(job: tuple) -> list[list[gmpy2.mpz]]:
    """Per node, the encrypted left sums of every candidate of these columns: one
    product of ciphertexts per bin (the last bin is never a left side), then running
    products over the bins."""
    cts, codes, per_feature, node_rows, nsq = job
    one = gmpy2.mpz(1)
    out = []
    for rows in node_rows:
        sums: list[gmpy2.mpz] = []
        sub = codes[rows]
        for j, k in enumerate(per_feature):
            if k == 0:
                continue
            col = sub[:, j]
            order = np.argsort(col, kind="stable")
            ends = np.searchsorted(col[order], np.arange(1, k + 1), side="left")
            picked = rows[order[: ends[-1]]].tolist()  # rows in bins 0 .. k−1
            running, start = one, 0
            for end in ends.tolist():
                for i in picked[start:end]:
                    running = running * cts[i] % nsq
                sums.append(running)
                start = end
        out.append(sums)
    return out


def encrypted_left_sums(
    cts: list,
    codes: np.ndarray,
    per_feature: np.ndarray,
    node_rows: list[np.ndarray],
    nsq,
    workers: int | None = None,
) -> list[list[gmpy2.mpz]]:
    """Enc(left sums) of every candidate (columns in order, bins within) for each node
    (its rows as indices into ``cts``/``codes``), the columns shared over ``workers``
    processes (None: every core) when that pays."""
    nsq = gmpy2.mpz(nsq)
    per_feature = np.asarray(per_feature, dtype=np.int64)
    terms = sum(len(r) for r in node_rows) * codes.shape[1]
    workers = worker_count(workers)
    columns = list(range(codes.shape[1]))
    if (
        workers == 1
        or len(columns) < 2
        or terms < PROCESS_MIN_TERMS
        or not pays_off(terms * MULMOD_SECONDS)
    ):
        return _node_sums((cts, codes, per_feature, node_rows, nsq))
    # the rows every node needs, once: a worker gets only those ciphertexts
    needed = np.unique(np.concatenate(node_rows)) if node_rows else np.array([], np.int64)
    local = [np.searchsorted(needed, r) for r in node_rows]
    sub_cts = [cts[i] for i in needed.tolist()]
    sub_codes = codes[needed]
    jobs = [
        (sub_cts, sub_codes[:, cols], per_feature[cols], local, nsq)
        for cols in split(columns, workers)
    ]
    parts = process_map(_node_sums, jobs)
    return [[c for part in parts for c in part[i]] for i in range(len(node_rows))]


def fold(ciphertexts: list, slot_bits: int, per_ciphertext: int, nsq, workers=None) -> list:
    """Cipher compression: each run of ``per_ciphertext`` ciphertexts (the last one
    shorter) folded into one by Horner's rule, the first most significant."""
    nsq = gmpy2.mpz(nsq)
    groups = [
        ciphertexts[i : i + per_ciphertext] for i in range(0, len(ciphertexts), per_ciphertext)
    ]
    shift = gmpy2.mpz(1) << slot_bits

    def chunk(gs: list[list]) -> list:
        accs = [gmpy2.mpz(g[0]) for g in gs]
        longest = max((len(g) for g in gs), default=0)
        for s in range(1, longest):
            live = [i for i, g in enumerate(gs) if len(g) > s]
            raised = gmpy2.powmod_base_list([accs[i] for i in live], shift, nsq)
            for i, a in zip(live, raised):
                accs[i] = a * gs[i][s] % nsq
        return accs

    return thread_map(chunk, groups, workers)


__all__ = [
    "GHLayout",
    "encrypted_left_sums",
    "fold",
]
