"""The bank in vertical binning: label holder, key holder, the Flower ServerApp.

It aligns (shared with every vertical model), bins its own columns, sends the encrypted
labels, turns each party's encrypted per-bin sums into counts, groups the parties'
pre-bins, computes every characteristic's WOE and IV, selects, and sends each party the
WOE of its selected columns (:mod:`fedrisk.vertical.binning.protocol`).
"""

from __future__ import annotations

import time

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, MessageType, RecordDict
from flwr.serverapp import ServerApp

from fedrisk.crypto import workers
from fedrisk.crypto.gh_packing import GHLayout
from fedrisk.crypto.paillier import ObfuscatorPool, VectorCipher, decrypt_many
from fedrisk.errors import ProtocolError
from fedrisk.flower.exchange import exchange
from fedrisk.flower.recorder import ServerRecorder
from fedrisk.flower.recording_grid import RecordingGrid
from fedrisk.models.binning import (
    BinningParams,
    monotone_merge,
    select,
    small_missing_to,
    stability_index,
    woe_iv,
)
from fedrisk.models.boosting import GH_FRAC_BITS, gh_integers
from fedrisk.vertical.bank import align_customers, bank_server_app
from fedrisk.vertical.binning.protocol import BinningRunOutcome, ColumnResult, classify_binning
from fedrisk.vertical.protocol import BankJob


def make_binning_bank_app(
    job: BankJob,
    columns: dict[str, np.ndarray],
    params: BinningParams,
    selection,
    recorder: ServerRecorder,
    outcome: BinningRunOutcome,
) -> ServerApp:
    """``columns``: the bank's own characteristics (rows in ``job.ids`` order);
    ``selection``: the scenario's ``[selection]``."""
    return bank_server_app(
        job,
        recorder,
        classify_binning,
        lambda grid, nodes: _run_bank(job, columns, params, selection, grid, nodes, outcome),
    )


def _ask(grid: RecordingGrid, nodes: list[int], contents: list[RecordDict], what: str):
    for content in contents:
        content["config"]["server-round"] = 0  # all before the scorecard's training
    return exchange(grid, nodes, contents, MessageType.TRAIN, what, "round 0")


def per_bin_counts(left: np.ndarray, bins: list[int], total: int, bad_total: int):
    """Per column, (goods, bads) per bin from the left sums (count, Σ y·2^f, ·) of every
    candidate "bin ≤ k" (columns in order, bins within) and the totals."""
    out, at = [], 0
    for b in bins:
        count = np.r_[0, left[0, at : at + b - 1], total]
        bad = np.r_[0, left[1, at : at + b - 1] >> GH_FRAC_BITS, bad_total]
        at += b - 1
        n, d = np.diff(count), np.diff(bad)
        if (n < 0).any() or (d < 0).any() or (d > n).any():
            raise ProtocolError("per-bin sums are not counts (a party sent wrong sums)")
        out.append((n - d, d))
    return out


def party_groups(kind: str, good: np.ndarray, bad: np.ndarray, params: BinningParams):
    """The bank's grouping of a party column's regular pre-bins (by index): numeric
    ones merged to a monotone default rate ("optimal") or kept; text ones by count and
    default rate, rare categories together. Returns (groups, the unseen bin)."""
    k = len(good)
    if kind == "text":
        names = [str(i) for i in range(k)]
        groups, unseen = params.groups(names, good, bad)
        return [[int(i) for i in g] for g in groups], unseen
    if params.labelled_cuts and k > 1:
        groups = monotone_merge(
            good,
            bad,
            max_bins=params.max_bins,
            min_bin_share=params.min_bin_share,
            min_bad_share=params.min_bad_share,
            monotonic=params.monotonic,
        )
        return [list(g) for g in groups], 0
    return [[i] for i in range(k)], 0


def canonical(groups: list[list[int]], unseen: int) -> tuple[list[list[int]], int]:
    """Groups numbered by their first pre-bin, not by default rate: the numbering is
    sent for every column, and in default-rate order it would rank the categories of a
    column the selection drops (for which the party gets no WOE)."""
    order = sorted(range(len(groups)), key=lambda k: min(groups[k]))
    return [groups[k] for k in order], order.index(unseen) if groups else unseen


def _run_bank(
    job: BankJob,
    columns: dict[str, np.ndarray],
    params: BinningParams,
    selection,
    grid: RecordingGrid,
    nodes: list[int],
    outcome: BinningRunOutcome,
) -> None:
    started = time.perf_counter()
    rows, tr, te = align_customers(job, grid, nodes, outcome)
    y_train = job.y[rows[tr]].astype(np.int64)
    # 1. its own columns, in plaintext: it holds them and the labels
    results: list[ColumnResult] = []
    for name, values in columns.items():
        train_v, test_v = values[rows[tr]], values[rows[te]]
        table = params.table_of(params.fit(name, train_v, y_train), train_v, y_train)
        binning = table.binning
        outcome.bank_binnings[name] = binning
        results.append(
            ColumnResult(
                job.name,
                name,
                "text" if train_v.dtype.kind in "USO" else "numeric",
                table.good,
                table.bad,
                table.woe,
                table.iv,
                stability_index(table.distribution(train_v), table.distribution(test_v)),
                [[i] for i in range(binning.n_bins() - 1)],
            )
        )
    # 2. the encrypted labels, [y | 0 | 1] per training customer
    pool = ObfuscatorPool(
        job.public_key, job.scenario.privacy.obfuscation, private_key=job.private_key
    )
    cipher = VectorCipher(job.public_key, pool)
    workers.start()
    layout = GHLayout(len(tr), GH_FRAC_BITS)
    gi, hi = gh_integers(y_train - 1.0, np.zeros(len(tr)))
    t0 = time.perf_counter()
    enc = cipher.encrypt(layout.pack_rows(gi, hi))
    raw = b"".join(int(c).to_bytes(cipher.width, "big") for c in enc)
    payload = np.frombuffer(raw, dtype=np.uint8).reshape(len(enc), cipher.width)
    outcome.encrypt_s += time.perf_counter() - t0
    outcome.encryptions += len(enc)
    content = [
        RecordDict(
            {
                "config": ConfigRecord({"stage": "labels"}),
                "labels": ArrayRecord({"labels": Array(payload)}),
            }
        )
        for _ in nodes
    ]
    replies = _ask(grid, nodes, content, "encrypted bin sums")
    per = layout.per_ciphertext(job.public_key.n)
    party_cols: list[list[tuple[str, np.ndarray, np.ndarray]]] = []
    for k, reply in enumerate(replies):
        cfg = reply.content["config"]
        bins, kinds = [int(b) for b in cfg["bins"]], [str(x) for x in cfg["kinds"]]
        sums = reply.content["sums"]["sums"].numpy()
        candidates = sum(b - 1 for b in bins)
        if sums.ndim != 2 or sums.shape[0] != -(-candidates // per):
            raise ProtocolError(f"round 0: {job.party_names[k]} sent {sums.shape[0]} ciphertexts")
        t0 = time.perf_counter()
        values = decrypt_many(job.private_key, [int.from_bytes(r.tobytes(), "big") for r in sums])
        outcome.decrypt_s += time.perf_counter() - t0
        outcome.decryptions += len(values)
        try:
            left = layout.unpack(values, candidates, per)
        except ValueError as exc:
            raise ProtocolError(f"round 0: {job.party_names[k]}: {exc}") from None
        counts = per_bin_counts(left, bins, len(tr), int(y_train.sum()))
        party_cols.append([(kind, g, b) for kind, (g, b) in zip(kinds, counts)])
    # 3. the parties' bins grouped (by index), their stability indices back
    content, grouped = [], []
    for cols in party_cols:
        cfg, mine = {"stage": "groups"}, []
        for j, (kind, good, bad) in enumerate(cols):
            groups, unseen = canonical(*party_groups(kind, good[:-1], bad[:-1], params))
            code = np.empty(len(good) - 1, dtype=np.int64)
            for number, grp in enumerate(groups):
                code[grp] = number
            g = np.r_[[good[grp].sum() for grp in groups], good[-1]]
            b = np.r_[[bad[grp].sum() for grp in groups], bad[-1]]
            to = small_missing_to(g + b, params.min_bin_share)  # by count: the party agrees
            if to is not None:
                g[to], b[to], g[-1], b[-1] = g[to] + g[-1], b[to] + b[-1], 0, 0
            cfg[f"groups-{j}"], cfg[f"unseen-{j}"] = code.tolist(), int(unseen)
            cfg[f"missing-{j}"] = -1 if to is None else to
            mine.append((kind, g, b, groups, unseen, to))
        content.append(RecordDict({"config": ConfigRecord(cfg)}))
        grouped.append(mine)
    replies = _ask(grid, nodes, content, "stability")
    for k, (reply, mine) in enumerate(zip(replies, grouped)):
        psi = [float(p) for p in reply.content["config"]["psi"]]
        for j, ((kind, g, b, groups, unseen, to), p) in enumerate(zip(mine, psi)):
            woe, iv = woe_iv(g, b)
            results.append(
                ColumnResult(
                    job.party_names[k],
                    f"{job.party_names[k]}:column {j + 1}",
                    kind,
                    g,
                    b,
                    woe,
                    float(iv.sum()),
                    p,
                    groups,
                    unseen,
                    to,
                )
            )
    # 4. selection over every characteristic, then each party its selected columns' WOE
    kept, reasons = select(
        [r.name for r in results],
        np.array([r.iv for r in results]),
        np.array([r.psi for r in results]),
        min_iv=selection.min_iv,
        max_psi=selection.max_psi,
        max_features=selection.max_features,
    )
    for r, keep, why in zip(results, kept, reasons):
        r.selected, r.reason = keep, why
    content = []
    for name in job.party_names:
        mine = [r for r in results if r.owner == name]
        cfg = {"stage": "woe", "selected": [j for j, r in enumerate(mine) if r.selected]}
        for j, r in enumerate(mine):
            if r.selected:
                cfg[f"woe-{j}"] = [float(w) for w in r.woe]
        content.append(RecordDict({"config": ConfigRecord(cfg)}))
    _ask(grid, nodes, content, "WOE values")
    outcome.columns = results
    pool.wait()
    outcome.seconds = time.perf_counter() - started


__all__ = ["canonical", "make_binning_bank_app", "party_groups", "per_bin_counts"]
