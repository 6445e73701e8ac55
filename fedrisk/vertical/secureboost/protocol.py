"""SecureBoost (Cheng et al. 2019; FATE's Hetero SecureBoost): vertical gradient-boosted
trees with the bank as label holder, key holder and Flower ``ServerApp``, and each
data-source party a ``ClientApp``.

After the set-up every vertical model shares (PSI alignment, the held-out split:
:func:`fedrisk.vertical.bank.align_customers`), per tree:

1. the bank computes each customer's g = p − y and h = p(1 − p) on the tree's rows
   (its subsample), packs (g, h, 1) into one plaintext (:mod:`fedrisk.crypto.gh_packing`)
   and sends the Paillier encryptions to every party (``encrypted_gradients``);
2. per level, the bank tells each party which node each of the tree's rows is in and
   which nodes to build (``node_membership``: of two siblings only the smaller);
   each party bins its own columns (quantiles of its training rows, once), multiplies
   the ciphertexts per bin, takes running products over the bins (the *left* sums of
   every candidate split "bin ≤ b"), orders them by its *split ids* (a permutation of
   its candidates from its own secret), folds several candidates into each ciphertext
   and returns them (``encrypted_histograms``);
3. the bank decrypts, derives every unbuilt sibling by subtraction, scores every
   candidate of every source (its own columns in plaintext) with the second-order gain
   and, where a party's candidate wins, asks that party to split the node
   (``split_request``: node, split id, and which validation and held-out customers sit
   in the node); the party answers which of them go left (``split_directions``).

Leaf weights are the bank's (it holds g and h). Held-out customers walk every tree
during training (their directions come back with each split), so the per-tree test AUC
is the joint model's. With ``secureboost.encrypted = false`` the very same messages
carry the integer sums in plaintext: the trees are identical (the test suite checks).

Who learns what (``fedrisk.runs.secureboost.who_learns_what`` writes it into every
summary): the bank learns, for each node, every candidate's left sums (count, Σg, Σh)
under the party's split ids — the party's binned column histograms per node; the ids
are fixed for the run, so it can group them into unnamed columns with their bins in
order (tests/privacy/test_attack_secureboost_review.py does) — and the partition a chosen
party split makes of the node's customers; never a column name, a threshold or a raw
value. It can read the randomness of what it decrypts, so each party re-randomises what
it sends. A data party learns the node membership of every row of every tree it takes
part in and, through split requests, of the validation and held-out customers: the
partition every split makes (not which side is the lower one: the bank draws which child
gets the lower node id from its own secret), chosen with the labels, so label
information leaks through them — above all in the first tree, whose gradients are the
labels in disguise; ``secureboost.bank_first_tree`` grows that tree from the bank's
columns alone — and which of its own splits were used, and ciphertexts it cannot read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flwr.app import Message

from fedrisk.vertical.protocol import VerticalOutcome, classify_vertical

GH_KEY = "fedrisk.gh"  # the tree's packed (g, h, 1) per row: ciphertexts or integers
TREE_KEY = "fedrisk.tree"  # the tree's rows and the current level's node membership
BINS_KEY = "fedrisk.bins"  # the party's bin codes of its training and held-out rows
SPLIT_ID_KEY = "fedrisk.split-ids"  # candidate -> split id (the party's permutation)


@dataclass
class BoostOutcome(VerticalOutcome):
    """What the bank knows at the end: the alignment, its trees (splits as source +
    split id), held-out raw scores after every tree, and its costs."""

    trees: list = field(default_factory=list)  # Tree records
    best_trees: int = 0  # trees kept (early stopping), else every tree
    base_score: float = 0.0
    test_raw_per_tree: list = field(default_factory=list)
    validation_loss: list = field(default_factory=list)
    bank_bins: Any = None  # the bank's own Bins (its part of the model)
    decryptions: int = 0
    histogram_s: float = 0.0  # the bank's wait for the parties' histograms
    built_rows: int = 0  # Σ over built nodes of their rows (the histogram work)


def classify_secureboost(msg: Message, to_server: bool) -> tuple[str, str, bool]:
    """(transcript name, protection, readable by the receiver) of one message."""
    cfg = msg.content.config_records.get("config", {})
    stage = str(cfg.get("stage", ""))
    if to_server:
        if stage == "histograms":
            encrypted = bool(cfg.get("encrypted", 1))
            return (
                ("encrypted_histograms", "ciphertext", True)
                if encrypted
                else ("histograms", "plaintext", True)
            )
        if stage == "split":
            return "split_directions", "plaintext", True
        if stage == "gh":
            return "ack", "plaintext", True
        return classify_vertical(msg, to_server)
    if stage == "gh":
        encrypted = bool(cfg.get("encrypted", 1))
        return (
            ("encrypted_gradients", "ciphertext", False)
            if encrypted
            else ("gradients", "plaintext", True)
        )
    if stage == "histograms":
        return "node_membership", "plaintext", True
    if stage == "split":
        return "split_request", "plaintext", True
    return classify_vertical(msg, to_server)


__all__ = [
    "BINS_KEY",
    "GH_KEY",
    "SPLIT_ID_KEY",
    "TREE_KEY",
    "BoostOutcome",
    "classify_secureboost",
]
