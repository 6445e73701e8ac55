"""A data-source party in vertical binning (FATE's *host*): a ClientApp holding columns,
never labels, turning the bank's encrypted labels into encrypted per-bin sums.

Its bins, cut points and category names never leave it: the bank sees bins by index.
The binning is a function of the party's own training rows and of the bank's groups, so
the simulator replays it (:func:`party_prebins`, :func:`final_binnings`) to code the
party's columns for the scorecard exactly as the party does.
"""

from __future__ import annotations

import gmpy2
import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp

from fedrisk.crypto.gh_packing import GHLayout, encrypted_left_sums, fold
from fedrisk.crypto.paillier import ciphertext_bytes
from fedrisk.errors import ProtocolError
from fedrisk.models.binning import (
    GRID_CELLS,
    Binning,
    BinningParams,
    CategoricalBinning,
    NumericBinning,
    bin_shares,
    cell_histogram,
    merge_cuts,
    quantile_cuts,
    stability_index,
)
from fedrisk.models.boosting import GH_FRAC_BITS
from fedrisk.privacy.secrets import PartySecret
from fedrisk.vertical.binning.protocol import BinningPartyData
from fedrisk.vertical.party import answer_setup, party_cipher, party_index
from fedrisk.vertical.protocol import ROWS_KEY, DataPartyJob, PartyData
from fedrisk.vertical.secureboost.party import rerandomise


def is_text(values: np.ndarray) -> bool:
    return np.asarray(values).dtype.kind in "USO"


def party_prebins(
    columns: dict[str, np.ndarray],
    train_rows: np.ndarray,
    params: BinningParams,
    secret: PartySecret | None = None,
) -> tuple[list[Binning], list[int | None]]:
    """Each column's first bins, on the party's training rows and without labels, and
    for each text column the pre-bin of its rare categories (None: none are rare).

    Numeric columns get their final bins ("quantile", "equal_width") or
    ``params.prebins`` quantile bins ("optimal", merged later by the bank). Text columns
    get one bin per category (sorted), except that categories rarer than
    ``params.min_bin_share`` of the training customers are merged here, by count, into
    one last pre-bin: the bank never sees a rare category's counts. The bank groups the
    pre-bins later; the result is the pooled binning's (the rare set is decided by count
    alone, as the pooled computation decides it). With the party's ``secret`` a text
    column's pre-bins are in an order drawn from it, not sorted: in sorted order the
    bank, knowing a column's name and its usual values, could name every bin."""
    out: list[Binning] = []
    rare_bins: list[int | None] = []
    for j, (name, values) in enumerate(columns.items()):
        v = np.asarray(values)[train_rows]
        if is_text(v):
            text = np.char.strip(v.astype(str))
            cats, counts = np.unique(text[text != ""], return_counts=True)
            rare = counts < params.min_bin_share * len(text)
            groups = [(str(c),) for c in cats[~rare]]
            if rare.any():
                groups.append(tuple(str(c) for c in cats[rare]))
            order = np.arange(len(groups))
            if secret is not None:
                order = secret.rng("binning/text-order", j).permutation(len(groups))
            rare_bins.append(
                int(np.flatnonzero(order == len(groups) - 1)[0]) if rare.any() else None
            )
            out.append(CategoricalBinning(name, tuple(groups[k] for k in order), 0))
            continue
        rare_bins.append(None)
        hist = cell_histogram(v)
        cuts = (
            quantile_cuts(hist[:GRID_CELLS], params.prebins)
            if params.labelled_cuts
            else params.cuts(hist)
        )
        out.append(NumericBinning(name, tuple(int(c) for c in cuts)))
    return out, rare_bins


def final_binnings(
    prebins: list[Binning],
    groups: list[list[int]],
    unseen: list[int],
    rare_bins: list[int | None],
    missing_to: list[int | None] | None = None,
) -> list[Binning]:
    """The bank's groups of each column's regular pre-bins applied (runs of consecutive
    pre-bins for numeric columns; any sets of categories for text ones). Categories not
    seen in training fall in the group holding the rare ones, if there were any (the
    party knows which pre-bin that is; the bank does not), else in the bank's choice."""
    out: list[Binning] = []
    missing_to = missing_to or [None] * len(prebins)
    for b, g, u, rare, to in zip(prebins, groups, unseen, rare_bins, missing_to):
        if isinstance(b, NumericBinning):
            cuts = merge_cuts(np.asarray(b.cuts, dtype=np.int64), g)
            out.append(NumericBinning(b.name, tuple(int(c) for c in cuts), to))
        else:
            if rare is not None:
                u = next(k for k, grp in enumerate(g) if rare in grp)
            out.append(
                CategoricalBinning(
                    b.name,
                    # categories in sorted order within a group, as the pooled binning
                    tuple(tuple(sorted(c for i in grp for c in b.groups[i])) for grp in g),
                    u,
                    to,
                )
            )
    return out


def groups_from_codes(codes: list[int]) -> list[list[int]]:
    """Group index per regular pre-bin (as sent) -> the groups' pre-bin lists."""
    groups: dict[int, list[int]] = {}
    for prebin, group in enumerate(codes):
        groups.setdefault(int(group), []).append(prebin)
    return [groups[k] for k in sorted(groups)]


def make_binning_party_app(
    job: DataPartyJob,
    columns: tuple[BinningPartyData, ...],
    params: BinningParams,
    mods: list | None = None,
) -> ClientApp:
    """The data parties' ClientApp for vertical binning; node ``partition-id`` i serves
    ``columns[i]`` (and ``job.parties[i]`` for the alignment, which needs ids only)."""
    app = ClientApp(mods=list(mods or []))
    cipher = party_cipher(job)

    answer_setup(app, job)

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        party = columns[party_index(context)]
        cfg = msg.content["config"]
        stage = str(cfg["stage"])
        rows = context.state[ROWS_KEY]
        train_rows, test_rows = rows["train"].numpy(), rows["test"].numpy()
        prebins, rare_bins = party_prebins(party.columns, train_rows, params, party.secret)
        if stage == "labels":
            cts = _ciphertexts(msg.content["labels"]["labels"].numpy(), cipher().public_key)
            if len(cts) != len(train_rows):
                raise ProtocolError(
                    f"{party.name}: {len(cts)} labels for {len(train_rows)} training customers"
                )
            codes = np.column_stack(
                [b.assign(party.columns[b.name][train_rows]) for b in prebins]
            ).astype(np.int64)
            per_feature = np.array([b.n_bins() - 1 for b in prebins], dtype=np.int64)
            pk = cipher().public_key
            (sums,) = encrypted_left_sums(
                cts, codes, per_feature, [np.arange(len(cts))], pk.nsquare
            )
            layout = GHLayout(len(cts), GH_FRAC_BITS)
            folded = fold(sums, layout.slot_bits, layout.per_ciphertext(pk.n), pk.nsquare)
            width = ciphertext_bytes(pk)
            raw = b"".join(int(c).to_bytes(width, "big") for c in rerandomise(folded, cipher()))
            payload = np.frombuffer(raw, dtype=np.uint8).reshape(len(folded), width).copy()
            return Message(
                RecordDict(
                    {
                        "config": ConfigRecord(
                            {
                                "stage": "labels",
                                "bins": [b.n_bins() for b in prebins],
                                "kinds": [
                                    "text" if is_text(party.columns[b.name]) else "numeric"
                                    for b in prebins
                                ],
                            }
                        ),
                        "sums": ArrayRecord({"sums": Array(payload)}),
                    }
                ),
                reply_to=msg,
            )
        if stage == "groups":
            groups = [groups_from_codes(list(cfg[f"groups-{j}"])) for j in range(len(prebins))]
            unseen = [int(cfg[f"unseen-{j}"]) for j in range(len(prebins))]
            missing = [int(cfg[f"missing-{j}"]) for j in range(len(prebins))]
            final = final_binnings(
                prebins, groups, unseen, rare_bins, [None if m < 0 else m for m in missing]
            )
            # rounded: at float precision the index of a few-bin column pins down the
            # held-out customers' counts per bin for the bank; 3 decimals judge max_psi
            psi = [
                round(
                    stability_index(
                        bin_shares(b, party.columns[b.name][train_rows]),
                        bin_shares(b, party.columns[b.name][test_rows]),
                    ),
                    3,
                )
                for b in final
            ]
            return Message(
                RecordDict({"config": ConfigRecord({"stage": "groups", "psi": psi})}),
                reply_to=msg,
            )
        if stage == "woe":  # the WOE of its selected columns' bins: what it codes them with
            return Message(
                RecordDict({"config": ConfigRecord({"stage": "woe", "ok": 1})}), reply_to=msg
            )
        raise ProtocolError(f"{party.name}: unknown stage {stage!r}")

    return app


def _ciphertexts(raw: np.ndarray, public_key) -> list:
    width = ciphertext_bytes(public_key)
    if raw.ndim != 2 or raw.shape[1] != width:
        raise ProtocolError(f"expected ciphertexts of {width} bytes, got an array {raw.shape}")
    buf = raw.tobytes()
    return [gmpy2.mpz(int.from_bytes(buf[i : i + width], "big")) for i in range(0, len(buf), width)]


def alignment_data(party: BinningPartyData) -> PartyData:
    """The party as the shared alignment sees it: its ids and secret (no columns)."""
    return PartyData(party.name, party.ids, np.zeros((len(party.ids), 0)), (), party.secret)


__all__ = [
    "alignment_data",
    "final_binnings",
    "groups_from_codes",
    "is_text",
    "make_binning_party_app",
    "party_prebins",
]
