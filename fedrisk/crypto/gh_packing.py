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


def column_groups(bins: np.ndarray, rows: int) -> list[list[int]]:
    """Columns whose bins are counted together. A group's rows go, one multiplication
    mod n² each, into one cell per combination of the group's bins; each column's bins
    are then products of cells (about ``cells − bins`` multiplications per column).
    Greedy over the columns by bin count: a column joins the group while that costs
    less than counting it alone (one multiplication per row). Pairs of 32-bin columns
    pay from ~2,000 rows; a handful of few-valued columns (sex, marital status,
    education) share one cell per customer. Columns with one bin have no candidate."""
    order = sorted((j for j in range(len(bins)) if bins[j] > 1), key=lambda j: bins[j])
    groups: list[list[int]] = []
    current: list[int] = []
    cells = 1
    for j in order:
        b = int(bins[j])
        if current:
            grown = cells * b
            now = rows + (sum(cells - int(bins[c]) for c in current) if len(current) > 1 else 0)
            after = rows + sum(grown - int(bins[c]) for c in [*current, j])
            if after < now + rows:
                current.append(j)
                cells = grown
                continue
            groups.append(current)
        current, cells = [j], b
    if current:
        groups.append(current)
    return groups


def _product(cts: list, picked, nsq) -> gmpy2.mpz:
    acc = cts[picked[0]]
    for i in picked[1:]:
        acc = acc * cts[i] % nsq
    return acc


def _cell_products(cts: list, rows: np.ndarray, cell: np.ndarray, cells: int, nsq) -> list:
    """The product of the ciphertexts of the rows in each cell (None: no row), the rows
    walked in order: ciphertexts are read as they lie in memory, each multiplied into
    its cell (a row whose cell is −1 is left out)."""
    out: list = [None] * cells
    for i, c in zip(rows.tolist(), cell.tolist()):
        if c >= 0:
            acc = out[c]
            out[c] = cts[i] if acc is None else acc * cts[i] % nsq
    return out


def _running(bin_sums: list, nsq) -> list:
    """Left sums: running products over bins 0 .. k−1 (None: an empty bin)."""
    out, running = [], gmpy2.mpz(1)
    for c in bin_sums:
        if c is not None:
            running = running * c % nsq
        out.append(running)
    return out


def _one_column(cts: list, col: np.ndarray, rows: np.ndarray, k: int, nsq) -> list:
    """One column's left sums: a product per bin (its last bin, k, is never a left
    side: its rows are skipped)."""
    cell = np.where(col < k, col.astype(np.int64), -1)
    return _running(_cell_products(cts, rows, cell, k, nsq), nsq)


def _group_columns(cts: list, sub: np.ndarray, rows: np.ndarray, bins: list, nsq) -> list:
    """Left sums of every column of a group, from one product per occupied cell."""
    flat = np.ravel_multi_index(tuple(sub.T.astype(np.int64)), tuple(bins))
    cells = np.empty(int(np.prod(bins)), dtype=object)
    cells[:] = _cell_products(cts, rows, flat, len(cells), nsq)
    cells = cells.reshape(bins)
    out = []
    for g, b in enumerate(bins):
        by_bin = np.moveaxis(cells, g, 0).reshape(b, -1)
        bin_sums = []
        for row in by_bin[: b - 1]:  # the last bin is never a left side
            present = [c for c in row.tolist() if c is not None]
            bin_sums.append(_product(present, range(len(present)), nsq) if present else None)
        out.append(_running(bin_sums, nsq))
    return out


def _node_sums(job: tuple) -> list[list[gmpy2.mpz]]:
    """Per node, the encrypted left sums of every candidate of these columns (in column
    order), the columns counted in :func:`column_groups`."""
    cts, codes, per_feature, node_rows, nsq = job
    bins = np.asarray(per_feature, dtype=np.int64) + 1
    out = []
    for rows in node_rows:
        sub = codes[rows]
        by_column: dict[int, list] = {}
        for group in column_groups(bins, len(rows)):
            if len(group) == 1:
                j = group[0]
                by_column[j] = _one_column(cts, sub[:, j], rows, int(per_feature[j]), nsq)
            else:
                sums = _group_columns(cts, sub[:, group], rows, [int(bins[j]) for j in group], nsq)
                by_column.update(zip(group, sums))
        out.append([c for j in range(len(bins)) for c in by_column.get(j, [])])
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
    "column_groups",
    "encrypted_left_sums",
    "fold",
]
