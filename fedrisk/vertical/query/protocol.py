"""Anonymous query (匿名查询): the bank scores applicants with the data parties' parts of a
trained vertical model, and no data party learns whom the bank asked about.

After training each data party keeps its part of the joint model. To score applicant x
the bank needs the party's share of x's score (its partial score, or what the model needs
of its columns: :mod:`fedrisk.vertical.query.models`). The plain way — send x — tells
the party that x just applied for credit at this bank. Here:

1. **Set-up** (once per scoring session). The party computes its payload for every
   customer it holds, seals each under an OPRF of the customer's id (its own key), places them in a
   cuckoo table by public hashes of the ids (empty buckets: uniform bytes), and lays the
   table out for SimplePIR. It sends the bank the public seeds, the table's shape and the
   PIR hint (:mod:`fedrisk.crypto.pir`, :mod:`fedrisk.crypto.keyword`).
2. **OPRF.** The bank blinds every applicant's id; the party raises the blinded points to
   its key; the bank unblinds and holds F_k(x), the key to x's record only
   (:mod:`fedrisk.crypto.oprf`).
3. **PIR.** For each applicant the bank queries the table columns of all three of its
   cuckoo buckets (whether the party holds x or not); the party answers every query
   with one matrix–vector product, no secret involved. The bank decodes the columns,
   opens the record sealed under F_k(x) if one is there (a hit) and otherwise finds
   none ("not found"): the party's view is the same.

Who learns what (semi-honest, as in training): the data party learns that a scoring
session happened and how many applicants it covers (the number of blinded points and
queries), nothing about which ids: the blinded points r·H(x) hide x under the
Diffie–Hellman assumption (computationally: clamping keeps r to about a quarter of the
residues) and the queries are LWE samples (pseudorandom under the decisional LWE
assumption, n = 1024, q = 2³², σ = 6.4); every draw on both sides is fresh per session
(each party's secret keyed with new OS entropy), so two sessions' queries never cancel.
The bank learns, per applicant, whether each party holds it and, if so, its payload, and
each party's customer count (the table's size); the other records it downloads (a whole
column per query, and the table through the hint) stay sealed under OPRF values it never
obtained, and since records are placed by their OPRF values, which buckets are taken says
nothing about ids it did not ask about.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from flwr.app import Message

from fedrisk.privacy.secrets import PartySecret
from fedrisk.vertical.protocol import classify_vertical
from fedrisk.vertical.query.models import PartySide

__all__ = [
    "QUERY",
    "ScoringBankJob",
    "ScoringOutcome",
    "ScoringParty",
    "ScoringPartyJob",
    "bytes_as_words",
    "classify_query",
    "words_as_bytes",
]

QUERY = "query.anonymous"


@dataclass(frozen=True)
class ScoringParty:
    """A data party at scoring time: every customer it holds, its columns (name → raw
    values) and its side of the model (:mod:`fedrisk.vertical.query.models`)."""

    name: str
    ids: np.ndarray
    columns: dict[str, np.ndarray]
    side: PartySide
    secret: PartySecret = field(default_factory=PartySecret.fresh, compare=False)


@dataclass(frozen=True)
class ScoringPartyJob:
    parties: tuple[ScoringParty, ...]


@dataclass(frozen=True)
class ScoringBankJob:
    """The bank's side: the applicants' ids and its own secret (blinding, LWE secrets)."""

    name: str
    party_names: tuple[str, ...]
    applicant_ids: tuple[str, ...]
    secret: PartySecret = field(default_factory=PartySecret.fresh, compare=False)


@dataclass
class ScoringOutcome:
    """What the bank ends with: per data party, which applicants it holds and their
    payloads (uint8 rows; zeros where not found), plus the session's costs."""

    found: dict[str, np.ndarray] = field(default_factory=dict)
    payloads: dict[str, np.ndarray] = field(default_factory=dict)
    layout: dict[str, dict] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def words_as_bytes(words: np.ndarray) -> np.ndarray:
    """uint32 words (little-endian) as a uint8 array: LWE ciphertexts and hints cross as
    byte blobs, as ciphertexts do, not as readable numbers."""
    w = np.ascontiguousarray(words, dtype="<u4")
    return w.view(np.uint8).reshape(*w.shape[:-1], w.shape[-1] * 4)


def bytes_as_words(blob: np.ndarray) -> np.ndarray:
    """Inverse of :func:`words_as_bytes`."""
    b = np.ascontiguousarray(blob, dtype=np.uint8)
    if b.shape[-1] % 4:
        raise ValueError("a word array's bytes come in fours")
    return b.view("<u4").reshape(*b.shape[:-1], b.shape[-1] // 4)


def classify_query(msg: Message, to_server: bool) -> tuple[str, str, bool]:
    """(transcript name, protection, readable by the receiver) of one message. What the
    data party receives is unreadable to it: uniform blinded points and LWE queries."""
    if msg.metadata.message_type != QUERY:  # the identify handshake
        return classify_vertical(msg, to_server)
    cfg = msg.content.config_records.get("config", {})
    stage = str(cfg.get("stage", ""))
    if to_server:
        if stage == "setup":  # public seeds and sizes, and a function of sealed records
            return "pir_hint_and_public_seeds", "masked", True
        if stage == "oprf":  # under the bank's own blinding, which it removes
            return "oprf_evaluated_points", "masked", True
        return "pir_answers", "ciphertext", True  # under the bank's LWE secrets
    if stage == "setup":
        return "pir_setup_request", "plaintext", True
    if stage == "oprf":
        return "oprf_blinded_ids", "masked", False
    return "pir_queries", "ciphertext", False
