"""Vertical binning (FATE's hetero feature binning; the first half of a WOE scorecard).

After the set-up every vertical model shares (PSI alignment and the held-out split,
:func:`fedrisk.vertical.bank.align_customers`):

1. the bank bins its own columns on its training customers (it holds them and the
   labels) and sends every data party the Paillier encryptions of the training
   customers' labels, one ciphertext per customer, packed as ``[y | 0 | 1]`` in the
   layout of :class:`fedrisk.crypto.gh_packing.GHLayout` (``encrypted_labels``);
2. each party bins each of its own columns on its training customers — numeric ones
   over the fixed grid of :mod:`fedrisk.models.binning` (the final bins, or fine
   pre-bins for ``binning.method = "optimal"``), text ones one bin per category —
   multiplies the ciphertexts per bin, folds several bins' sums into each ciphertext,
   re-randomises them and returns them (``encrypted_bin_sums``);
3. the bank decrypts: per bin of every party column, the number of customers and of
   defaulters. It merges a party's pre-bins where the method asks (adjacent pre-bins to
   a monotone default rate, rare categories together) and sends each party the groups
   (``bin_groups``: runs of bin indices); each party answers with the population
   stability index of its final bins between its training and held-out customers
   (``stability``);
4. the bank computes WOE and IV of every characteristic, selects (IV, stability, count)
   and sends each party the WOE of its selected columns' bins (``woe_values``): what it
   needs to code its columns for the scorecard's logistic model, and nothing for a
   column that is not selected.

Who learns what (honest-but-curious, non-colluding; ``WHO_LEARNS_WHAT`` goes into the
summary): the bank learns, for every column of every party, the number of customers and
of defaulters in each bin, bins in value order (the WOE table: the per-bin default rates
DESIGN §6 names), and each column's stability index — never a column's values, its cut
points or category names, nor which customer is in which bin. A data party learns
ciphertexts it cannot read, the bank's groups of its bins, and the WOE of its selected
columns' bins: the default rate of each of its bins among the shared training customers
(so, for a customer it knows to be in a bin, that bin's default rate — never a label,
as no bin holds fewer than ``binning.min_bin_share`` of the customers).

Beyond honest-but-curious: a bank that deviates could encrypt chosen values instead of
labels (spare bits in the h slot and the fraction bits) and read which bin chosen
customers fall in; the data party cannot check what it sums. The protocol assumes the
bank follows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flwr.app import Message

from fedrisk.i18n import CLAUSE_SEP, N_
from fedrisk.privacy.secrets import PartySecret
from fedrisk.vertical.protocol import VerticalOutcome, classify_vertical

LABELS_KEY = "fedrisk.binning.labels"  # the bank's encrypted labels (training order)
CODES_KEY = "fedrisk.binning.codes"  # the party's bin codes of its training/held-out rows

# clauses marked for the catalogs, joined with CLAUSE_SEP: the Chinese report translates
# them one by one
WHO_LEARNS_WHAT = {
    "bank": CLAUSE_SEP.join(
        (
            N_("the intersection and the held-out split (its own draw)"),
            N_(
                "for every column of every data party the number of customers and of "
                "defaulters per bin, bins in value order (the column's WOE table), and each "
                "column's stability index"
            ),
            N_(
                "never a party's values, cut points, category names or which customer is in "
                "which bin"
            ),
        )
    ),
    "data parties": CLAUSE_SEP.join(
        (
            N_(
                "the intersection, ciphertexts they cannot read, the bank's grouping of their "
                "bins (by first bin, not by risk), and the WOE of the bins of their own "
                "selected columns, from which a party reads the exact number of defaulters in "
                "each of its bins and among all shared training customers, and can score "
                "every shared customer with its own columns' WOE (held-out AUC about 0.6 on "
                "the German-style files, tests/privacy/test_attack_binning_vertical_party.py)"
            ),
            N_(
                "no bin smaller than binning.min_bin_share of the customers, so no single "
                "label (with min_bin_share = 0 a one-customer bin would give its label away)"
            ),
        )
    ),
}


@dataclass(frozen=True)
class BinningPartyData:
    """A data party's own columns: float64 (NaN missing) or str ("" missing)."""

    name: str
    ids: np.ndarray
    columns: dict[str, np.ndarray]
    secret: PartySecret = field(default_factory=PartySecret.fresh, compare=False)


@dataclass
class ColumnResult:
    """What the bank knows of one characteristic at the end."""

    owner: str
    name: str  # the bank's own columns by name; a party's as "party:column k"
    kind: str  # "numeric" or "text" (a party says which, not what)
    good: np.ndarray  # per final bin, the missing bin last
    bad: np.ndarray
    woe: np.ndarray
    iv: float
    psi: float
    groups: list[list[int]]  # final bin -> the party's pre-bins (identity for the bank)
    unseen: int = 0  # text columns: the bin of categories not seen in training
    missing_to: int | None = None  # too few missing values: the regular bin they join
    selected: bool = False
    reason: str = ""


@dataclass
class BinningRunOutcome(VerticalOutcome):
    """The bank's view: the alignment, every characteristic's table, and costs."""

    columns: list[ColumnResult] = field(default_factory=list)
    bank_binnings: dict[str, Any] = field(default_factory=dict)  # its own Binning objects
    decryptions: int = 0
    seconds: float = 0.0


def classify_binning(msg: Message, to_server: bool) -> tuple[str, str, bool]:
    """(transcript name, protection, readable by the receiver) of one message."""
    cfg = msg.content.config_records.get("config", {})
    stage = str(cfg.get("stage", ""))
    if to_server:
        if stage == "labels":
            return "encrypted_bin_sums", "ciphertext", True
        if stage == "groups":
            return "stability", "plaintext", True
        if stage == "woe":
            return "ack", "plaintext", True
        return classify_vertical(msg, to_server)
    if stage == "labels":
        return "encrypted_labels", "ciphertext", False
    if stage == "groups":
        return "bin_groups", "plaintext", True
    if stage == "woe":
        return "woe_values", "plaintext", True
    return classify_vertical(msg, to_server)


__all__ = [
    "CODES_KEY",
    "LABELS_KEY",
    "WHO_LEARNS_WHAT",
    "BinningPartyData",
    "BinningRunOutcome",
    "ColumnResult",
    "classify_binning",
]
