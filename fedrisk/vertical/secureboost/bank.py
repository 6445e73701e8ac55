"""The bank in SecureBoost (FATE's *guest*): label holder, Paillier key holder, the
Flower ServerApp. It grows every tree (:func:`fedrisk.models.boosting.grow_tree`) with
its own columns as source 0 and each data party, behind Flower messages, as source k
(:mod:`fedrisk.vertical.secureboost.protocol` has the exchange).
"""

from __future__ import annotations

import time

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MessageType, RecordDict
from flwr.serverapp import ServerApp
from scipy.special import expit

from fedrisk.crypto import workers
from fedrisk.crypto.gh_packing import GHLayout
from fedrisk.crypto.paillier import ObfuscatorPool, VectorCipher, decrypt_many
from fedrisk.errors import ProtocolError
from fedrisk.evaluation.metrics import score_metrics
from fedrisk.flower.exchange import exchange
from fedrisk.flower.recorder import ServerRecorder
from fedrisk.flower.recording_grid import RecordingGrid
from fedrisk.models.boosting import (
    GH_FRAC_BITS,
    BoostingParams,
    GrowthStats,
    LocalSources,
    base_score,
    fit_bins,
    gh_integers,
    gradients,
    grow_tree,
    log_loss,
    subsample_rows,
)
from fedrisk.scenario import Scenario
from fedrisk.vertical.bank import align_customers, bank_server_app
from fedrisk.vertical.protocol import BankJob
from fedrisk.vertical.secureboost.protocol import BoostOutcome, classify_secureboost


def boosting_params(s: Scenario) -> BoostingParams:
    """The scenario's boosting knobs (model.learning_rate is each tree's shrinkage)."""
    b = s.secureboost
    return BoostingParams(
        trees=b.trees,
        max_depth=b.max_depth,
        learning_rate=s.model.learning_rate,
        max_bins=b.max_bins,
        min_child_weight=b.min_child_weight,
        reg_lambda=b.reg_lambda,
        subsample=b.subsample,
        early_stopping_rounds=b.early_stopping_rounds,
        validation_fraction=b.validation_fraction,
    )


def make_secureboost_bank_app(
    job: BankJob, recorder: ServerRecorder, outcome: BoostOutcome
) -> ServerApp:
    return bank_server_app(
        job,
        recorder,
        classify_secureboost,
        lambda grid, nodes: _run_bank(job, grid, nodes, recorder, outcome),
    )


def _send(
    grid: RecordingGrid,
    nodes: list[int],
    contents: list[RecordDict],
    what: str,
    rnd: int,
) -> list[Message]:
    """One message per node (its own content), every reply or a ProtocolError."""
    for content in contents:
        content["config"]["server-round"] = rnd
    return exchange(grid, nodes, contents, MessageType.TRAIN, what, f"tree {rnd}")


class PartySources:
    """The data parties as sources 1..P of :func:`grow_tree`: each request one Flower
    exchange with every party at once."""

    def __init__(self, job: BankJob, grid: RecordingGrid, nodes: list[int], outcome: BoostOutcome):
        self.job, self.grid, self.nodes, self.outcome = job, grid, nodes, outcome
        self.encrypted = job.scenario.secureboost.encrypted
        self.tree = 0
        self.tree_rows: np.ndarray | None = None  # train positions, sent with level 1
        self.layout: GHLayout | None = None
        self.eval_split: np.ndarray | None = None  # eval index -> (is test, position)

    def send_gh(self, tree: int, rows: np.ndarray, g: np.ndarray, h: np.ndarray, cipher) -> None:
        self.tree, self.tree_rows = tree, rows
        gi, hi = gh_integers(g, h)
        if self.encrypted:
            self.layout = GHLayout(len(rows), GH_FRAC_BITS)
            t0 = time.perf_counter()
            enc = cipher.encrypt(self.layout.pack_rows(gi, hi))
            raw = b"".join(int(c).to_bytes(cipher.width, "big") for c in enc)
            payload = np.frombuffer(raw, dtype=np.uint8).reshape(len(enc), cipher.width)
            self.outcome.encrypt_s += time.perf_counter() - t0
            self.outcome.encryptions += len(enc)
        else:
            payload = np.vstack([gi, hi])
        content = [
            RecordDict(
                {
                    "config": ConfigRecord({"stage": "gh", "encrypted": int(self.encrypted)}),
                    "gh": ArrayRecord({"gh": Array(payload)}),
                }
            )
            for _ in self.nodes
        ]
        _send(self.grid, self.nodes, content, "encrypted gradients", tree)

    def sums(self, assignment: np.ndarray, build: list[int]) -> list[dict[int, np.ndarray]]:
        arrays = {"assign": Array(assignment.astype(np.int64))}
        if self.tree_rows is not None:
            arrays["tree-rows"] = Array(self.tree_rows.astype(np.int64))
            self.tree_rows = None
        content = [
            RecordDict(
                {
                    "config": ConfigRecord({"stage": "histograms", "build": build}),
                    "membership": ArrayRecord(arrays),
                }
            )
            for _ in self.nodes
        ]
        t0 = time.perf_counter()
        replies = _send(self.grid, self.nodes, content, "histograms", self.tree)
        self.outcome.histogram_s += time.perf_counter() - t0
        out = []
        for k, reply in enumerate(replies):
            count = int(reply.content["config"]["candidates"])
            got = {}
            for node in build:
                key = f"node-{node}"
                if key not in reply.content["sums"]:
                    raise ProtocolError(
                        f"tree {self.tree}: {self.job.party_names[k]} sent no {key}"
                    )
                got[node] = self._read(reply.content["sums"][key].numpy(), count, k)
            out.append(got)
        return out

    def _read(self, payload: np.ndarray, count: int, k: int) -> np.ndarray:
        """(3, count) integer left sums from a party's reply."""
        name = self.job.party_names[k]
        if not self.encrypted:
            if payload.shape != (3, count):
                raise ProtocolError(f"tree {self.tree}: {name} sent sums of shape {payload.shape}")
            return payload.astype(np.int64)
        n = self.job.public_key.n
        per = self.layout.per_ciphertext(n)
        expected = -(-count // per)
        if payload.ndim != 2 or payload.shape[0] != expected:
            raise ProtocolError(
                f"tree {self.tree}: {name} sent {payload.shape[0]} ciphertexts, expected {expected}"
            )
        t0 = time.perf_counter()
        values = decrypt_many(
            self.job.private_key, [int.from_bytes(r.tobytes(), "big") for r in payload]
        )
        self.outcome.decrypt_s += time.perf_counter() - t0
        self.outcome.decryptions += len(values)
        try:
            return self.layout.unpack(values, count, per)
        except ValueError as exc:
            raise ProtocolError(f"tree {self.tree}: {name}: {exc}") from None

    def splits(
        self, decisions: list[dict[int, int]], eval_assign: np.ndarray
    ) -> list[dict[int, tuple[np.ndarray, np.ndarray]]]:
        asked = [k for k, d in enumerate(decisions) if d]
        out: list[dict] = [{} for _ in decisions]
        if not asked:
            return out
        content = []
        for k in asked:
            arrays = {}
            for node in decisions[k]:
                erows = np.flatnonzero(eval_assign == node)
                is_test, pos = self.eval_split[erows, 0], self.eval_split[erows, 1]
                arrays[f"val-{node}"] = Array(pos[is_test == 0].astype(np.int64))
                arrays[f"test-{node}"] = Array(pos[is_test == 1].astype(np.int64))
            content.append(
                RecordDict(
                    {
                        "config": ConfigRecord(
                            {
                                "stage": "split",
                                "nodes": list(decisions[k]),
                                "split-ids": list(decisions[k].values()),
                            }
                        ),
                        "eval": ArrayRecord(arrays),
                    }
                )
            )
        replies = _send(self.grid, [self.nodes[k] for k in asked], content, "split", self.tree)
        for k, reply in zip(asked, replies):
            got = reply.content["directions"]
            for node in decisions[k]:
                erows = np.flatnonzero(eval_assign == node)
                is_test = self.eval_split[erows, 0]
                eval_left = np.empty(len(erows), dtype=bool)
                eval_left[is_test == 0] = got[f"val-{node}"].numpy().astype(bool)
                eval_left[is_test == 1] = got[f"test-{node}"].numpy().astype(bool)
                out[k][node] = (got[f"left-{node}"].numpy().astype(bool), eval_left)
        return out


class _TreeSources:
    """One tree's sources: the bank's own columns (source 0), then the parties (unless
    the tree is the bank's alone); reports progress by level."""

    def __init__(self, local, parties, recorder, tree, params) -> None:
        self.local, self.parties, self.recorder = local, parties, recorder
        self.tree, self.depth, self.level = tree, params.max_depth, 0

    def ask_sums(self, assignment, build):
        self.level += 1
        self.recorder.on_step(self.tree, min(0.99, self.level / (self.depth + 1)))
        mine = self.local.sums(0, assignment, build)
        return [mine] + (self.parties.sums(assignment, build) if self.parties else [])

    def ask_splits(self, decisions, assignment, eval_assign):
        mine = self.local.split(0, decisions[0], assignment, eval_assign)
        theirs = self.parties.splits(decisions[1:], eval_assign) if self.parties else []
        return [mine] + theirs


def _run_bank(
    job: BankJob,
    grid: RecordingGrid,
    nodes: list[int],
    recorder: ServerRecorder,
    outcome: BoostOutcome,
) -> None:
    s = job.scenario
    params = boosting_params(s)
    rows, tr, te = align_customers(job, grid, nodes, outcome)
    X_train, y_train = job.X[rows[tr]], job.y[rows[tr]].astype(np.float64)
    X_test, y_test = job.X[rows[te]], job.y[rows[te]]
    outcome.test_y = y_test
    # the bank's own columns: binned on its training rows, like every party's
    bins = fit_bins(X_train, params.max_bins)
    outcome.bank_bins = bins
    codes_train, codes_test = bins.codes(X_train), bins.codes(X_test)
    # validation slice for early stopping: drawn from the bank's own secret
    positions = np.arange(len(tr))
    val = np.array([], dtype=np.int64)
    if params.early_stopping_rounds:
        rng = job.secret.rng("secureboost/validation")
        val = np.sort(
            rng.choice(len(tr), max(1, round(params.validation_fraction * len(tr))), replace=False)
        )
    fit = np.setdiff1d(positions, val)
    y_fit, y_val = y_train[fit], y_train[val]
    # eval rows walk each tree by the splits' directions: this tree's unsampled rows
    # (their raw scores move too), the validation customers, then the held-out ones
    held = np.vstack(
        [
            np.c_[np.zeros(len(val), np.int64), val],
            np.c_[np.ones(len(te), np.int64), np.arange(len(te))],
        ]
    )
    held_codes = np.vstack([codes_train[val], codes_test])
    parties = PartySources(job, grid, nodes, outcome)
    pool = ObfuscatorPool(job.public_key, s.privacy.obfuscation, private_key=job.private_key)
    cipher = VectorCipher(job.public_key, pool)
    if s.secureboost.encrypted:
        workers.start()
    outcome.base_score = base_score(y_fit)
    raw_fit = np.full(len(fit), outcome.base_score)
    raw_held = np.full(len(held), outcome.base_score)
    n_val = len(val)
    best_loss, best_tree = np.inf, 0
    stats = GrowthStats()
    recorder.server_name = job.name
    recorder.update_kinds = None
    recorder.start_clock()
    for t in range(1, params.trees + 1):
        recorder.on_step(t, 0.0)
        rng = job.secret.rng("secureboost/subsample", t)  # the bank's own draw
        sub = subsample_rows(len(fit), params.subsample, rng)
        g, h = gradients(y_fit[sub], raw_fit[sub])
        rest = np.setdiff1d(np.arange(len(fit)), sub)  # fit rows this tree was not grown on
        parties.eval_split = np.vstack([np.c_[np.zeros(len(rest), np.int64), fit[rest]], held])
        eval_codes = np.vstack([codes_train[fit[rest]], held_codes])
        local = LocalSources([codes_train[fit[sub]]], [eval_codes], [bins])
        local.set_gh(g, h)
        with_parties = not (s.secureboost.bank_first_tree and t == 1)
        if with_parties:
            parties.send_gh(t, fit[sub], g, h, cipher)
            if s.secureboost.encrypted and t < params.trees:
                pool.prepare(len(sub))  # next tree's obfuscators while the parties work
        sources = _TreeSources(local, parties if with_parties else None, recorder, t, params)
        tree, leaf_fit, leaf_eval = grow_tree(
            g,
            h,
            params,
            1 + (len(nodes) if with_parties else 0),
            sources.ask_sums,
            sources.ask_splits,
            len(parties.eval_split),
            stats,
            _coin(job.secret.rng("secureboost/child-ids", t)),
        )
        values = np.asarray(tree.value)
        raw_fit[sub] += values[leaf_fit]
        raw_fit[rest] += values[leaf_eval[: len(rest)]]
        raw_held += values[leaf_eval[len(rest) :]]
        outcome.trees.append(tree.to_record())
        test_raw = raw_held[n_val:]
        outcome.test_raw_per_tree.append(test_raw.copy())
        recorder.log_round(t, score_metrics(y_test, expit(test_raw)))
        if n_val:
            loss = log_loss(y_val, raw_held[:n_val])
            outcome.validation_loss.append(loss)
            if loss < best_loss - 1e-12:
                best_loss, best_tree = loss, t
            elif t - best_tree >= params.early_stopping_rounds:
                break
    outcome.best_trees = best_tree if n_val else len(outcome.trees)
    outcome.built_rows = stats.built_rows
    outcome.test_scores = expit(outcome.test_raw_per_tree[outcome.best_trees - 1])
    pool.wait()
    outcome.precompute_s = pool.precompute_seconds


def _coin(rng: np.random.Generator):
    """Fair coin flips from the bank's own generator (which child gets the lower id)."""
    return lambda: bool(rng.integers(2))


__all__ = ["PartySources", "boosting_params", "make_secureboost_bank_app"]
