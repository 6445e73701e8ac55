"""A data-source party in SecureBoost (FATE's *host*): a ClientApp holding columns,
never labels, turning the bank's encrypted (g, h) into encrypted per-candidate sums.

Its bins, its split-id permutation, the tree's ciphertexts and the level's node
membership live in the node's ``Context.state``; thresholds never leave it.
"""

from __future__ import annotations

import gmpy2
import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp

from fedrisk.crypto.gh_packing import GHLayout, encrypted_left_sums, fold
from fedrisk.crypto.paillier import ObfuscatorPool, VectorCipher, ciphertext_bytes
from fedrisk.errors import ProtocolError
from fedrisk.models.boosting import GH_FRAC_BITS, Bins, column_and_bin, fit_bins, left_sums
from fedrisk.vertical.party import answer_setup, party_cipher, party_index
from fedrisk.vertical.protocol import ROWS_KEY, DataPartyJob, PartyData
from fedrisk.vertical.secureboost.protocol import BINS_KEY, GH_KEY, TREE_KEY


def split_table(
    party: PartyData, train_rows: np.ndarray, max_bins: int, index: int
) -> tuple[Bins, np.ndarray]:
    """(bins, split id of each candidate): the party's quantile bins of its training
    rows and the permutation, from its own secret, that names its candidates (fixed for
    the run, so histogram subtraction works across a parent and its children: the bank
    sees split ids, never a column name or a cut). The simulator calls this to write the
    party's part of the model."""
    bins = fit_bins(party.X[train_rows], max_bins)
    split_ids = party.secret.rng("secureboost/split-ids", index).permutation(bins.n_candidates)
    return bins, split_ids


def make_secureboost_party_app(job: DataPartyJob, mods: list | None = None) -> ClientApp:
    """The data parties' ClientApp for ``model.kind = "secureboost"``; node
    ``partition-id`` i serves ``job.parties[i]``."""
    app = ClientApp(mods=list(mods or []))
    sb = job.scenario.secureboost
    cipher = party_cipher(job)

    answer_setup(app, job)

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        party = job.parties[party_index(context)]
        cfg = msg.content["config"]
        stage = str(cfg["stage"])
        if stage == "gh":  # the tree's (g, h): kept until the next tree's arrive
            context.state[GH_KEY] = ArrayRecord({"gh": msg.content["gh"]["gh"]})
            return _reply(msg, {"stage": "gh", "ok": 1})
        codes, per_feature, split_ids = _bins(job, party, context, sb.max_bins)
        if stage == "histograms":
            arrays = msg.content["membership"]
            if "tree-rows" in arrays:  # a new tree: its rows (the bank's subsample)
                context.state[TREE_KEY] = ArrayRecord({"rows": arrays["tree-rows"]})
            tree = context.state[TREE_KEY]
            assign = arrays["assign"].numpy()
            context.state[TREE_KEY] = ArrayRecord(
                {"rows": tree["rows"], "assign": arrays["assign"]}
            )
            tree_codes = codes["train"][tree["rows"].numpy()]
            build = [int(b) for b in cfg["build"]]
            node_rows = [np.flatnonzero(assign == b) for b in build]
            order = np.argsort(split_ids)  # split id -> candidate
            sums = _histograms(
                cipher() if sb.encrypted else None,
                context,
                tree_codes,
                per_feature,
                node_rows,
                order,
            )
            return Message(
                RecordDict(
                    {
                        "config": _config(
                            {
                                "stage": "histograms",
                                "candidates": len(order),
                                "encrypted": int(sb.encrypted),
                            }
                        ),
                        "sums": ArrayRecord({f"node-{b}": Array(s) for b, s in zip(build, sums)}),
                    }
                ),
                reply_to=msg,
            )
        if stage == "split":
            tree = context.state[TREE_KEY]
            assign = tree["assign"].numpy()
            tree_codes = codes["train"][tree["rows"].numpy()]
            asked = msg.content["eval"]
            out = {}
            for node, sid in zip(cfg["nodes"], cfg["split-ids"]):
                node, sid = int(node), int(sid)
                if not 0 <= sid < len(split_ids):
                    raise ProtocolError(f"{party.name}: no split id {sid}")
                j, b = column_and_bin(per_feature, int(np.flatnonzero(split_ids == sid)[0]))
                rows = np.flatnonzero(assign == node)
                val = asked[f"val-{node}"].numpy()
                test = asked[f"test-{node}"].numpy()
                out[f"left-{node}"] = Array((tree_codes[rows, j] <= b).astype(np.uint8))
                out[f"val-{node}"] = Array((codes["train"][val, j] <= b).astype(np.uint8))
                out[f"test-{node}"] = Array((codes["test"][test, j] <= b).astype(np.uint8))
            return Message(
                RecordDict({"config": _config({"stage": "split"}), "directions": ArrayRecord(out)}),
                reply_to=msg,
            )
        raise ProtocolError(f"{party.name}: unknown stage {stage!r}")

    return app


def _config(values: dict) -> ConfigRecord:
    return ConfigRecord(values)


def _reply(msg: Message, values: dict) -> Message:
    return Message(RecordDict({"config": _config(values)}), reply_to=msg)


def _bins(job: DataPartyJob, party: PartyData, context: Context, max_bins: int):
    """The party's bin codes (training and held-out rows), candidates per column and
    split ids: made once, on its own training rows, and kept in its state."""
    index = party_index(context)
    if BINS_KEY not in context.state:
        rows = context.state[ROWS_KEY]
        train = rows["train"].numpy()
        bins, split_ids = split_table(party, train, max_bins, index)
        context.state[BINS_KEY] = ArrayRecord(
            {
                "train": Array(bins.codes(party.X[train])),
                "test": Array(bins.codes(party.X[rows["test"].numpy()])),
                "per-feature": Array(bins.candidates_per_feature),
                "split-ids": Array(split_ids.astype(np.int64)),
            }
        )
    state = context.state[BINS_KEY]
    codes = {"train": state["train"].numpy(), "test": state["test"].numpy()}
    return codes, state["per-feature"].numpy(), state["split-ids"].numpy()


def _histograms(
    cipher: VectorCipher | None,
    context: Context,
    tree_codes: np.ndarray,
    per_feature: np.ndarray,
    node_rows: list[np.ndarray],
    order: np.ndarray,
) -> list[np.ndarray]:
    """Per node, the left sums of every candidate in split-id order: folded ciphertexts
    (uint8, one row each), re-randomised, or, unencrypted (no ``cipher``), the (3,
    candidates) integers."""
    gh = context.state[GH_KEY]["gh"].numpy()
    if cipher is None:
        gi, hi = gh
        return [left_sums(tree_codes[r], per_feature, gi[r], hi[r])[:, order] for r in node_rows]
    public_key = cipher.public_key
    width = ciphertext_bytes(public_key)
    if gh.ndim != 2 or gh.shape[1] != width:
        raise ProtocolError(f"expected ciphertexts of {width} bytes, got an array {gh.shape}")
    cts = [gmpy2.mpz(int.from_bytes(row, "big")) for row in _rows(gh)]
    sums = encrypted_left_sums(cts, tree_codes, per_feature, node_rows, public_key.nsquare)
    layout = GHLayout(len(cts), GH_FRAC_BITS)
    k = layout.per_ciphertext(public_key.n)
    out = []
    for node_sums in sums:
        folded = fold([node_sums[c] for c in order], layout.slot_bits, k, public_key.nsquare)
        out.append(_as_bytes(rerandomise(folded, cipher), width))
    return out


def rerandomise(ciphertexts: list, cipher: VectorCipher) -> list:
    """Each ciphertext times a fresh Enc(0) of the party's own: the bank, which holds
    the private key, can recover a ciphertext's randomness; without this, that would be
    a product of the randomness of the bank's own (g, h) ciphertexts over the rows left
    of each candidate, against which it could test guesses of which customers fall in
    which bin (tests/privacy/test_attack_secureboost_randomness.py).

    The Enc(0) is textbook, r^n with r uniform in Z_n*, whatever obfuscation the run
    uses for its bulk encryptions: a DJN obfuscator lies in the subgroup one public
    element generates, and the key holder, who knows p and q, can test which guess of the
    bins leaves the recovered randomness in it (a few full powmods per reply;
    tests/privacy/test_attack_binning_vertical_bank.py)."""
    pk = cipher.public_key
    zeros = VectorCipher(pk, ObfuscatorPool(pk, "full")).encrypt([0] * len(ciphertexts))
    nsq = pk.nsquare
    return [c * z % nsq for c, z in zip(ciphertexts, zeros)]


def _rows(a: np.ndarray) -> list[bytes]:
    buf, width = a.tobytes(), a.shape[1]
    return [buf[i : i + width] for i in range(0, len(buf), width)]


def _as_bytes(ciphertexts: list, width: int) -> np.ndarray:
    raw = b"".join(int(c).to_bytes(width, "big") for c in ciphertexts)
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(ciphertexts), width).copy()


__all__ = ["make_secureboost_party_app", "rerandomise", "split_table"]
