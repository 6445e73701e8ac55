"""Horizontal federated WOE binning: what travels, who computes what, who learns what.

Several banks hold the same columns for different customers; an aggregator coordinates.
Every bin edge and every WOE table is a function of *summed* count vectors
(:mod:`fedrisk.models.binning`), so the banks only ever contribute counts, and the result
equals the pooled computation on all banks' rows exactly. All of it happens before
training round 1, so every message is in round 0 of the transcript.

Exchanges (``query.binning`` messages, one ``stage`` each), after the identify handshake:

1. ``schema``: each bank sends its column names and kinds and, per text column, the set
   of category values it holds (plaintext). The aggregator checks that every bank has the
   same columns, in the same order and of the same kinds, before any count leaves a bank.
2. ``grid``: the aggregator sends the union of the category values (sorted) per text
   column; each bank replies with the *unlabelled* :func:`~fedrisk.models.binning.cell_histogram`
   of each numeric column ((GRID_CELLS + 1) counts, missing last). Labels stay out of
   this exchange whatever the method.
3. ``counts``: from the summed grid histograms, per numeric column, the cuts:
   ``quantile`` / ``equal_width`` final ones, or for ``optimal`` the ``prebins`` quantile
   prebins (:func:`first_cuts`). Each bank replies with its *labelled* counts per bin
   (:func:`labelled_counts`): goods and bads per (pre)bin and per category, missing last.
4. ``finish``: the summed labelled counts reach every bank; ``optimal`` columns merge their
   prebins (:func:`~fedrisk.models.binning.monotone_merge`, the merged bins' counts are sums
   of the prebins'), text columns are grouped (:func:`~fedrisk.models.binning.categorical_groups`)
   and the tables are built (:func:`woe_tables`). The banks acknowledge; each now holds the
   tables (and keeps the cuts, categories and summed counts in its Flower node state).

Where the sums are made (``privacy.aggregation``):

- ``plain``: banks send count vectors in the clear; the aggregator sums them, computes the
  cuts (sent in ``counts``) and the tables, and sends the summed labelled counts in
  ``finish`` so every bank builds the same tables itself.
- ``paillier``: each bank packs its count vector (:class:`CountPacking`: byte slots wide
  enough for the sum over all banks, with a count slot of 1 per bank) and encrypts it
  under the banks' shared public key. The aggregator multiplies the banks' ciphertexts and
  sends the encrypted sum back with the next request (grid sums in ``counts``, labelled
  sums in ``finish``); the banks decrypt and compute the cuts and the tables themselves,
  identically (deterministic). The aggregator never holds the key and never sees a count,
  a cut or a table. Each bank adds zero-sum masks to its plaintexts (:func:`zero_sum_masks`,
  keyed by the banks' shared secret): they cancel only in the product of every bank's
  ciphertexts once, so anything else the aggregator relays as "the sum" — one bank's
  vector, raised to a power or with an encryption of its own mixed in, a bank left out —
  decrypts to values uniform mod n, which the banks refuse (the count slot, which must
  equal the number of banks, and every slot's bound).

Category values are plaintext in both modes: the aggregator learns which categories each
bank holds (:data:`WHO_LEARNS_WHAT`). The protocol draws no randomness of its own: the
Paillier obfuscators come from the operating system through each bank's obfuscator pool.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np
from flwr.app import Message
from phe.paillier import PaillierPrivateKey, PaillierPublicKey

from fedrisk.crypto.encoding import PackingError, SlotPacker
from fedrisk.crypto.paillier import CiphertextError, VectorCipher, VectorDecryptor
from fedrisk.errors import ProtocolError
from fedrisk.flower.transcript import Transcript
from fedrisk.i18n import CLAUSE_SEP, N_
from fedrisk.models.binning import (
    GRID_CELLS,
    BinningParams,
    CategoricalBinning,
    NumericBinning,
    WoeTable,
    bin_counts,
    category_counts,
    cell_histogram,
    merge_cuts,
    monotone_merge,
    quantile_cuts,
)

QUERY_ACTION = "binning"
QUERY = f"query.{QUERY_ACTION}"
STAGES = ("schema", "grid", "counts", "finish")
AGGREGATIONS = ("plain", "paillier")
NUMERIC, TEXT = "numeric", "text"
CIPHERTEXTS = "ciphertexts"  # config key of a packed, encrypted count vector
CATEGORIES = "categories-"  # config key prefix: + column index, a text column's values
# a bank's node state between messages (it may be a fresh process each time)
CUTS_KEY = "fedrisk.binning.cuts"
CATEGORIES_KEY = "fedrisk.binning.categories"
SUMMED_KEY = "fedrisk.binning.summed"

# clauses marked for the catalogs, joined with CLAUSE_SEP: the Chinese report translates
# them one by one
WHO_LEARNS_WHAT = {
    "plain": {
        "aggregator": CLAUSE_SEP.join(
            (
                N_("every bank's column names"),
                N_("per text column the set of category values each bank holds"),
                N_(
                    "per numeric column each bank's unlabelled grid histogram (its values to "
                    "about 1.8 % relative resolution, counted)"
                ),
                N_(
                    "each bank's goods and bads per (pre)bin and per category, and the pooled "
                    "tables it computes"
                ),
            )
        ),
        "banks": CLAUSE_SEP.join(
            (
                N_(
                    "the cuts (prebins for 'optimal'), the union of the category values, the "
                    "summed goods and bads per (pre)bin and category over all banks (the "
                    "pooled tables)"
                ),
                N_("with two banks, the other bank's labelled counts per (pre)bin, by subtraction"),
            )
        ),
    },
    "paillier": {
        "aggregator": CLAUSE_SEP.join(
            (
                N_(
                    "every bank's column names and, per text column, the set of category "
                    "values each bank holds (plaintext)"
                ),
                N_("ciphertexts only for every count, so no count, cut or table"),
                N_(
                    "how many ciphertexts each message holds (so the number of (pre)bins of "
                    "the run)"
                ),
            )
        ),
        "banks": CLAUSE_SEP.join(
            (
                N_(
                    "the summed unlabelled grid histogram of every numeric column over all "
                    "banks, the union of the category values, the summed goods and bads per "
                    "(pre)bin and category (the pooled tables)"
                ),
                N_(
                    "with two banks, the other bank's histograms and labelled counts, by "
                    "subtraction"
                ),
                N_(
                    "every bank holds the private key, so it could read another bank's counts "
                    "if the aggregator handed them over (shared key)"
                ),
            )
        ),
    },
}


# --- what the parties hold ------------------------------------------------------------------


def column_kind(values: np.ndarray) -> str:
    """'text' for str (or object) arrays, else 'numeric'."""
    return TEXT if np.asarray(values).dtype.kind in "USO" else NUMERIC


@dataclass(frozen=True)
class BankRows:
    """One bank's training rows, its own: ``columns`` float64 (NaN = missing) or numpy str
    ("" = missing), the same names and kinds at every bank; ``y`` 0/1 (1 = default)."""

    name: str
    columns: dict[str, np.ndarray]
    y: np.ndarray

    def __post_init__(self) -> None:
        y = np.asarray(self.y)
        if y.ndim != 1 or (len(y) and not np.all((y == 0) | (y == 1))):
            raise ValueError(f"{self.name}: y must be a 1-d array of 0/1 labels")
        for column, values in self.columns.items():
            if np.ndim(values) != 1 or len(values) != len(y):
                raise ValueError(
                    f"{self.name}: column {column!r} must be 1-d with one value per label "
                    f"({len(y)}), got shape {np.shape(values)}"
                )

    @property
    def schema(self) -> Schema:
        return Schema(tuple(self.columns), tuple(column_kind(v) for v in self.columns.values()))


@dataclass(frozen=True)
class Schema:
    """Column names and kinds, in column order (public: every bank has the same)."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]

    @property
    def numeric(self) -> list[int]:
        return [j for j, k in enumerate(self.kinds) if k == NUMERIC]

    @property
    def text(self) -> list[int]:
        return [j for j, k in enumerate(self.kinds) if k == TEXT]

    def describe(self) -> str:
        return ", ".join(f"{n} ({k})" for n, k in zip(self.names, self.kinds))


@dataclass(frozen=True)
class CountPacking:
    """How a bank's count vector becomes Paillier plaintexts: one byte-aligned slot per
    count, as wide as the largest possible sum over all banks (``n_banks × row_bound``,
    ``row_bound`` a public bound on a bank's rows), then one slot holding 1 (the summands
    counter), as many slots per plaintext as fit below n."""

    public_key: PaillierPublicKey
    n_banks: int
    row_bound: int

    @property
    def sum_bound(self) -> int:
        return self.n_banks * self.row_bound

    @property
    def packer(self) -> SlotPacker:
        slot_bytes = max(1, math.ceil(self.sum_bound.bit_length() / 8))
        return SlotPacker.for_modulus(self.public_key.n.bit_length() - 1, slot_bytes)

    def n_ciphertexts(self, length: int) -> int:
        """Ciphertexts of a vector of ``length`` counts (the counter slot included)."""
        return self.packer.n_ints(length + 1)

    def encrypt(
        self, cipher: VectorCipher, counts: np.ndarray, masks: list[int] | None = None
    ) -> list[bytes]:
        """``masks``: one value mod n per plaintext (:func:`zero_sum_masks`), added
        before encryption; the banks' masks cancel only in the sum of every bank once."""
        counts = np.asarray(counts, dtype=np.int64).ravel()
        if counts.size and (counts.min() < 0 or counts.max() > self.row_bound):
            raise ProtocolError(f"a count lies outside [0, {self.row_bound}]")
        values = np.concatenate([counts.astype(np.uint64), np.ones(1, dtype=np.uint64)])
        plain = self.packer.pack(values)
        if masks is not None:
            n = self.public_key.n
            plain = [(int(v) + m) % n for v, m in zip(plain, masks, strict=True)]
        return cipher.to_bytes(cipher.encrypt(plain))

    def decrypt(
        self,
        cipher: VectorCipher,
        decryptor: VectorDecryptor,
        blobs: list,
        length: int,
        what: str,
    ) -> np.ndarray:
        """The summed counts (int64) of an encrypted sum over every bank, checked: the
        packing, and a counter slot equal to the number of banks."""
        try:
            cts = cipher.from_bytes(blobs, self.n_ciphertexts(length))
            values = self.packer.unpack(decryptor.decrypt(cts), length + 1)
        except (CiphertextError, PackingError) as exc:
            raise ProtocolError(
                f"round 0: the {what} do not decrypt to a legal sum ({exc}); a bank "
                "encrypted under another key or the sum was corrupted"
            ) from None
        if int(values[-1]) != self.n_banks:
            raise ProtocolError(
                f"round 0: the {what} sum {int(values[-1])} banks' vectors, not all "
                f"{self.n_banks}; refused (the aggregator is misbehaving)"
            )
        if np.any(values > self.sum_bound):
            raise ProtocolError(f"round 0: a slot of the {what} exceeds the largest legal sum")
        return values[:-1].astype(np.int64)


def zero_sum_masks(
    private_key: PaillierPrivateKey, n_banks: int, bank: int, stage: str, count: int
) -> list[int]:
    """Bank ``bank``'s masks for ``count`` plaintexts of ``stage``: F(bank) − F(bank+1)
    mod n per plaintext, F a pseudo-random function keyed by the banks' shared secret
    (their private key, which the aggregator lacks). Summed over every bank exactly once
    the masks cancel; any other combination the aggregator could form (one bank's
    vector raised to a power, a bank left out or counted twice, an encryption of its
    own) decrypts to values uniform mod n, which the sum's checks refuse."""
    n = private_key.public_key.n
    key = hashlib.sha256(
        b"fedrisk/binning-mask"
        + int(private_key.p).to_bytes((int(private_key.p).bit_length() + 7) // 8, "big")
    ).digest()
    width = (n.bit_length() + 7) // 8 + 16  # extra bytes: no mod bias

    def prf(k: int, j: int) -> int:
        label = f"{stage}/{k % n_banks}/{j}".encode()
        return int.from_bytes(hashlib.shake_256(key + label).digest(width), "big") % n

    return [(prf(bank, j) - prf(bank + 1, j)) % n for j in range(count)]


@dataclass(frozen=True)
class BanksJob:
    """What the banks hold (one ClientApp serves them: node ``partition-id`` i is
    ``banks[i]`` and reads no other entry). ``private_key``: the banks' shared key."""

    params: BinningParams
    banks: tuple[BankRows, ...]
    aggregation: str
    public_key: PaillierPublicKey | None = None
    private_key: PaillierPrivateKey | None = None
    row_bound: int = 1

    @property
    def packing(self) -> CountPacking:
        assert self.public_key is not None, "a Paillier job carries the banks' public key"
        return CountPacking(self.public_key, len(self.banks), self.row_bound)


@dataclass(frozen=True)
class AggregatorJob:
    """What the aggregator may know: the method, the banks' names, the public key."""

    params: BinningParams
    bank_names: tuple[str, ...]
    aggregation: str
    public_key: PaillierPublicKey | None = None
    row_bound: int = 1

    @property
    def packing(self) -> CountPacking:
        assert self.public_key is not None, "a Paillier job carries the banks' public key"
        return CountPacking(self.public_key, len(self.bank_names), self.row_bound)


@dataclass
class AggregatorOutcome:
    """What the aggregator's ServerApp produced, for the harness: the transcript, the
    tables (``plain`` only), and under ``paillier`` the encrypted sums it relayed (which
    the banks' side of the harness can decrypt when the banks ran out of process)."""

    transcript: Transcript = field(default_factory=Transcript)
    schema: Schema | None = None
    tables: list[WoeTable] | None = None
    categories: dict[int, tuple[str, ...]] = field(default_factory=dict)
    encrypted_grid: list[bytes] | None = None
    encrypted_counts: list[bytes] | None = None
    ciphertexts: int = 0  # received from the banks: one encryption each
    error: BaseException | None = None


@dataclass
class BinningOutcome:
    """What :func:`~fedrisk.horizontal.binning.run.federated_binning` returns."""

    tables: list[WoeTable]  # one per column, in column order
    transcript: Transcript  # every message of the binning phase
    seconds: float
    encryptions: int
    bytes_sent: int


@dataclass
class BanksOutcome:
    """The banks' side in this process (in-process engine): each bank's tables."""

    tables: dict[str, list[WoeTable]] = field(default_factory=dict)


# --- the computations every party makes identically ----------------------------------------


def own_categories(bank: BankRows, schema: Schema) -> dict[int, list[str]]:
    """Per text column (by index) the sorted distinct non-missing values the bank holds."""
    return {j: category_counts(bank.columns[schema.names[j]], bank.y)[0] for j in schema.text}


def grid_counts(bank: BankRows, schema: Schema) -> np.ndarray:
    """``(numeric columns, GRID_CELLS + 1)`` unlabelled histograms, missing last."""
    out = np.zeros((len(schema.numeric), GRID_CELLS + 1), dtype=np.int64)
    for i, j in enumerate(schema.numeric):
        out[i] = cell_histogram(np.asarray(bank.columns[schema.names[j]], dtype=np.float64))
    return out


def first_cuts(params: BinningParams, schema: Schema, grid: np.ndarray) -> dict[int, np.ndarray]:
    """Per numeric column (by column index) its cuts from the summed grid histograms
    (:func:`grid_counts`' layout): final ones, or for "optimal" the prebins."""
    if params.labelled_cuts:
        return {
            j: quantile_cuts(hist[:GRID_CELLS], params.prebins)
            for j, hist in zip(schema.numeric, grid)
        }
    return {j: params.cuts(hist) for j, hist in zip(schema.numeric, grid)}


def bins_per_column(
    schema: Schema, cuts: dict[int, np.ndarray], categories: dict[int, tuple[str, ...]]
) -> list[int]:
    """Bins of each column's labelled counts, the missing bin included."""
    return [
        len(cuts[j]) + 2 if kind == NUMERIC else len(categories[j]) + 1
        for j, kind in enumerate(schema.kinds)
    ]


def labelled_counts(
    bank: BankRows,
    schema: Schema,
    cuts: dict[int, np.ndarray],
    categories: dict[int, tuple[str, ...]],
) -> list[np.ndarray]:
    """Per column ``(2, bins)`` goods (row 0) and bads (row 1) per bin, missing last: per
    (pre)bin of ``cuts`` for numeric columns, per value of ``categories`` for text ones."""
    y = np.asarray(bank.y).astype(np.int64)
    totals = np.array([len(y) - y.sum(), y.sum()], dtype=np.int64)
    out = []
    for j, (name, kind) in enumerate(zip(schema.names, schema.kinds)):
        values = bank.columns[name]
        if kind == NUMERIC:
            x = np.asarray(values, dtype=np.float64)
            out.append(bin_counts(cell_histogram(x, y), cuts[j]).astype(np.int64))
            continue
        union = np.asarray(categories[j], dtype=str)
        names, counts = category_counts(values, y)
        cats = np.asarray(names, dtype=str)
        pos = np.searchsorted(union, cats)
        inside = pos < len(union)
        if not inside.all() or np.any(union[pos[inside]] != cats[inside]):
            raise ProtocolError(
                f"{bank.name}: the category values sent for {name!r} miss some it holds"
            )
        per_value = np.zeros((2, len(union) + 1), dtype=np.int64)
        per_value[:, pos] = counts
        per_value[:, -1] = totals - counts.sum(axis=1)  # missing: everyone else
        out.append(per_value)
    return out


def split_counts(flat: np.ndarray, bins: list[int]) -> list[np.ndarray]:
    """A flat vector of concatenated ``(2, bins)`` blocks back into the blocks."""
    ends = np.cumsum([2 * b for b in bins], dtype=np.int64)
    expected = int(ends[-1]) if len(ends) else 0
    if len(flat) != expected:
        raise ProtocolError(f"round 0: {len(flat)} counts for a layout of {expected}")
    return [block.reshape(2, b) for block, b in zip(np.split(flat, ends[:-1]), bins)]


def merged(counts: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """``(2, len(groups) + 1)``: the regular bins of ``counts`` summed per group, then the
    missing bin as it was."""
    group_of = np.empty(counts.shape[1] - 1, dtype=np.int64)
    for g, members in enumerate(groups):
        group_of[members] = g
    out = np.zeros((2, len(groups) + 1), dtype=np.int64)
    for row in (0, 1):
        np.add.at(out[row], group_of, counts[row, :-1])
    out[:, -1] = counts[:, -1]
    return out


def woe_tables(
    params: BinningParams,
    schema: Schema,
    cuts: dict[int, np.ndarray],
    categories: dict[int, tuple[str, ...]],
    summed: list[np.ndarray],
) -> list[WoeTable]:
    """The tables, one per column in column order, from the summed labelled counts."""
    tables = []
    for j, (name, kind) in enumerate(zip(schema.names, schema.kinds)):
        counts = np.asarray(summed[j], dtype=np.int64)
        if kind == NUMERIC:
            final = np.asarray(cuts[j], dtype=np.int64)
            if params.labelled_cuts:  # merge the prebins; no further exchange needed
                groups = monotone_merge(
                    counts[0, :-1],
                    counts[1, :-1],
                    max_bins=params.max_bins,
                    min_bin_share=params.min_bin_share,
                    min_bad_share=params.min_bad_share,
                    monotonic=params.monotonic,
                )
                final, counts = merge_cuts(final, groups), merged(counts, groups)
            binning = NumericBinning(name, tuple(int(c) for c in final))
        else:
            values = list(categories[j])
            groups, unseen = params.groups(values, counts[0, :-1], counts[1, :-1])
            index = {c: i for i, c in enumerate(values)}
            counts = merged(counts, [[index[c] for c in g] for g in groups])
            binning = CategoricalBinning(name, tuple(tuple(g) for g in groups), unseen)
        tables.append(params.table(binning, counts[0], counts[1]))
    return tables


# --- the transcript ---------------------------------------------------------------------------


def classify_binning(msg: Message, to_server: bool) -> tuple[str, str, bool]:
    """(transcript name, protection, readable by the receiver) of one binning message;
    the recording grid then checks the payload itself (plaintext numbers are readable
    whatever this says; a ciphertext only by the banks, who hold the key)."""
    cfg = msg.content.config_records.get("config", {})
    stage = str(cfg.get("stage", ""))
    encrypted = CIPHERTEXTS in cfg
    if to_server:
        if stage == "schema":
            has_text = TEXT in list(cfg.get("kinds", []))
            return ("category_values" if has_text else "column_schema"), "plaintext", True
        if stage == "grid":
            if encrypted:
                return "encrypted_grid_counts", "ciphertext", False
            return "grid_counts", "plaintext", True
        if stage == "counts":
            if encrypted:
                return "encrypted_bin_counts", "ciphertext", False
            return "bin_counts", "plaintext", True
        return "ack", "plaintext", True
    if stage == "schema":
        return "schema_request", "plaintext", True
    if stage == "grid":
        has_text = any(str(k).startswith(CATEGORIES) for k in cfg)
        return ("category_union" if has_text else "grid_request"), "plaintext", True
    if stage == "counts":
        if encrypted:
            return "encrypted_summed_grid_counts", "ciphertext", True
        return "cuts", "plaintext", True
    if encrypted:
        return "encrypted_summed_counts", "ciphertext", True
    return "summed_counts", "plaintext", True


__all__ = [
    "AGGREGATIONS",
    "CATEGORIES",
    "CATEGORIES_KEY",
    "CIPHERTEXTS",
    "CUTS_KEY",
    "NUMERIC",
    "QUERY",
    "QUERY_ACTION",
    "STAGES",
    "SUMMED_KEY",
    "TEXT",
    "WHO_LEARNS_WHAT",
    "AggregatorJob",
    "AggregatorOutcome",
    "BankRows",
    "BanksJob",
    "BanksOutcome",
    "BinningOutcome",
    "CountPacking",
    "zero_sum_masks",
    "Schema",
    "bins_per_column",
    "classify_binning",
    "column_kind",
    "first_cuts",
    "grid_counts",
    "labelled_counts",
    "merged",
    "own_categories",
    "split_counts",
    "woe_tables",
]
