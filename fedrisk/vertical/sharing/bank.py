"""The bank in the secret-sharing protocol: label holder, the Flower ServerApp, the
relay between the other parties (:mod:`fedrisk.vertical.sharing.protocol`).

It aligns the customers (PSI, as every vertical model), sets up the parties' keys and,
with a dealer, their seeds; then per mini-batch two exchanges (scores, then gradients),
a prediction pass on the held-out customers and, unless ``model.calibration = "none"``,
one on the training customers, and the reveal. It never holds both halves of a product
of another party's features: what it relays for others is masked or sealed.
"""

from __future__ import annotations

import numpy as np
from flwr.app import MessageType, RecordDict
from flwr.serverapp import ServerApp

from fedrisk.crypto.channel import ChannelKey
from fedrisk.crypto.sharing import (
    FEATURE_FRAC_BITS,
    Prg,
    ProductKey,
    decode,
    encode_features,
    holder_half,
    holder_pad,
    owner_half,
    owner_pad,
    owner_share,
    ring_from_bytes,
    ring_matmul,
    truncate,
)
from fedrisk.evaluation.metrics import score_metrics
from fedrisk.flower.exchange import exchange
from fedrisk.flower.recorder import ServerRecorder
from fedrisk.flower.recording_grid import RecordingGrid
from fedrisk.vertical.bank import (
    aligned_bank_rows,
    bank_server_app,
    calibration_record,
    epoch_order,
)
from fedrisk.vertical.calibration import Calibration, fit_calibration
from fedrisk.vertical.protocol import BankJob, VerticalOutcome
from fedrisk.vertical.sharing import paillier_products as hp
from fedrisk.vertical.sharing.protocol import (
    BANK,
    DEALER_NAME,
    PREDICT_CHUNK,
    QUERY_SS,
    StepConstants,
    batch_starts,
    classify_sharing,
    correction_slices,
    intercept_mask,
    residual_offset,
    ring_content,
    updated_share,
)


def make_sharing_bank_app(
    job: BankJob, recorder: ServerRecorder, outcome: VerticalOutcome, tag: int
) -> ServerApp:
    """The bank's ServerApp; ``tag``: the run's public tag (:func:`.protocol.run_tag`)."""
    dealer = job.scenario.privacy.triples == "dealer"
    return bank_server_app(
        job,
        recorder,
        classify_sharing,
        lambda grid, nodes: SharingBank(job, grid, nodes, recorder, outcome, tag).run(),
        helpers=(DEALER_NAME,) if dealer else (),
        key_holders=(),  # every ciphertext is under a key its receiver lacks, or masked
    )


class SharingBank:
    """The bank's side of one run (its shares, keys and the parties' node ids)."""

    def __init__(
        self,
        job: BankJob,
        grid: RecordingGrid,
        nodes: list[int],
        recorder: ServerRecorder,
        outcome: VerticalOutcome,
        tag: int,
    ) -> None:
        self.job, self.grid, self.recorder, self.outcome = job, grid, recorder, outcome
        self.tag = tag
        self.s = job.scenario
        self.dealer_mode = self.s.privacy.triples == "dealer"
        k = len(job.party_names)
        self.nodes = nodes[:k]
        self.dealer_node = nodes[k] if self.dealer_mode else None
        self.parties = k + 1  # the bank and the data parties
        self.frac_bits = self.s.privacy.frac_bits
        self.key = ChannelKey(job.name)
        self.prg: Prg | None = None
        self.paillier: hp.BankPaillier | None = None

    # --- messaging -------------------------------------------------------------------
    def ask(self, nodes, message_type, contents, what, rnd):
        return exchange(self.grid, nodes, contents, message_type, what, f"round {rnd}")

    def config_all(self, stage: str, per_node: list[dict], rnd: int, what: str, nodes=None):
        nodes = self.nodes if nodes is None else nodes
        contents = [self.message(stage, cfg, {}, rnd) for cfg in per_node]
        return self.ask(nodes, QUERY_SS, contents, what, rnd)

    # --- the run ---------------------------------------------------------------------
    def run(self) -> None:
        job, s, outcome = self.job, self.s, self.outcome
        Xb, yb, Xb_test, y_test = aligned_bank_rows(job, self.grid, self.nodes, outcome)
        self.F_train = np.c_[Xb, np.ones(len(yb))]  # its columns and the intercept's ones
        self.F_test = np.c_[Xb_test, np.ones(len(y_test))]
        self.X_train, self.X_test = encode_features(self.F_train), encode_features(self.F_test)
        self.y = yb
        self.set_up()
        w = np.zeros(self.widths[BANK], dtype=np.uint64)  # ⟨w_0⟩_0
        partner_shares = [np.zeros(d, dtype=np.uint64) for d in self.widths]  # ⟨w_i⟩_0
        self.w, self.wp = w, partner_shares
        m = s.model
        self.recorder.server_name = job.name
        self.recorder.update_kinds = None
        self.recorder.start_clock()
        for epoch in range(1, s.rounds + 1):
            self.recorder.on_step(epoch, 0.0)
            order = epoch_order(s.seed, epoch, len(yb))
            batches = [order[i : i + m.batch_size] for i in range(0, len(yb), m.batch_size)]
            dealt = self.deal(epoch, [len(b) for b in batches], True)
            for index, batch in enumerate(batches):
                self.train_batch(epoch, index, batch, dealt)
                self.recorder.on_step(epoch, (index + 1) / len(batches))
            metrics: dict[str, float] = {}
            if epoch == s.rounds:
                metrics = self.evaluate(epoch, y_test)
            self.recorder.log_round(epoch, metrics)
        if s.privacy.reveal == "own":
            self.reveal(s.rounds)
        if self.paillier is not None:
            outcome.encrypt_s, outcome.decrypt_s = self.paillier.encrypt_s, self.paillier.decrypt_s
            outcome.encryptions = self.paillier.encryptions

    def set_up(self) -> None:
        """Channel keys from every party (and the dealer), widths, seeds or Paillier keys."""
        job = self.job
        helpers = [self.dealer_node] if self.dealer_mode else []
        replies = self.config_all(
            "keys", [{}] * (len(self.nodes) + len(helpers)), 0, "keys", self.nodes + helpers
        )
        cfgs = [r.content["config"] for r in replies]
        names = [job.name, *job.party_names]
        keys = [self.key.public_bytes, *(c["channel-key"] for c in cfgs[: len(self.nodes)])]
        self.widths = [self.X_train.shape[1], *(int(c["width"]) for c in cfgs[: len(self.nodes)])]
        self.names = names
        extra: list[dict] = [{} for _ in self.nodes]
        if self.dealer_mode:
            dealer_key = cfgs[-1]["channel-key"]
            (reply,) = self.config_all(
                "dealer-setup",
                [{"names": names, "peer-keys": keys}],
                0,
                "correlated randomness",
                [self.dealer_node],
            )
            sealed = list(reply.content["config"]["sealed-seeds"])
            self.prg = Prg(self.key.open(DEALER_NAME, dealer_key, sealed[BANK]))
            self.dealer_key = dealer_key
            for i in range(len(self.nodes)):
                extra[i] = {"sealed-seed": sealed[i + 1], "dealer-key": dealer_key}
            keys_for_parties = [*keys, dealer_key]
        else:
            self.paillier = hp.BankPaillier(job, [c["paillier-n"] for c in cfgs], self.tag)
            for i in range(len(self.nodes)):
                extra[i] = {"bank-paillier-n": self.paillier.own_n_bytes}
            keys_for_parties = keys
        replies = self.config_all(
            "setup",
            [
                {
                    "index": i + 1,
                    "names": names,
                    "peer-keys": keys_for_parties,
                    "widths": self.widths,
                    "run-tag": self.tag.to_bytes(16, "big"),
                    **extra[i],
                }
                for i in range(len(self.nodes))
            ],
            0,
            "set-up",
        )
        if self.paillier is not None:
            self.paillier.receive_input(replies[0].content["config"]["enc-input"])

    def deal(self, pass_id: int, batch_rows: list[int], train: bool) -> dict | None:
        """The dealer's corrections for one pass: the bank's own (flat) and where each
        batch's block starts, for every party; the data parties' sealed blobs."""
        if not self.dealer_mode:
            return None
        (reply,) = self.config_all(
            "dealer-pass",
            [
                {
                    "pass": pass_id,
                    "batch-rows": batch_rows,
                    "train": int(train),
                    "widths": self.widths,
                }
            ],
            pass_id if train else 0,
            "correlated randomness",
            [self.dealer_node],
        )
        return {
            "bank": ring_from_bytes(reply.content["ss"]["corrections"].numpy()),
            "sealed": list(reply.content["config"]["sealed"]),
            "starts": [
                batch_starts(self.widths, batch_rows, train, h) for h in range(self.parties)
            ],
            "pass": pass_id,
        }

    def corrections(self, dealt: dict, batch: int, rows: int, train: bool) -> dict:
        at = dealt["starts"][BANK][batch]
        return {
            k: dealt["bank"][at + sl.start : at + sl.stop]
            for k, sl in correction_slices(self.widths, rows, train, BANK).items()
        }

    @staticmethod
    def message(stage: str, cfg: dict, arrays: dict, rnd: int) -> RecordDict:
        return ring_content({"stage": stage, "server-round": rnd, **cfg}, arrays)

    def batch_cfg(
        self, i, pass_id, index, positions, split, train, dealt, deliver: bool = True
    ) -> dict:
        """What every batch message says (pass, batch, rows, split) and, with a dealer,
        where data party ``i``'s corrections start; the pass's sealed corrections ride on
        its first batch's first message (``deliver``)."""
        cfg = {
            "pass": pass_id,
            "batch": index,
            "rows": positions.tolist(),
            "split": split,
            "train": int(train),
        }
        if dealt is not None:
            cfg["corr-at"] = dealt["starts"][i + 1][index]
            if index == 0 and deliver:
                cfg["sealed"] = dealt["sealed"][i]
        return cfg

    # --- one training batch ----------------------------------------------------------
    def train_batch(self, epoch: int, index: int, positions: np.ndarray, dealt) -> None:
        if self.paillier is not None:
            return hp.bank_train_batch(self, epoch, index, positions)
        X = self.X_train[positions]
        rows = len(positions)
        z, replies, got, E, corr = self.forward(
            epoch, index, positions, X, "train", True, dealt, epoch
        )
        delta = z + residual_offset(self.y[positions], self.frac_bits)
        # its own gradient's share, and its halves of the data parties' gradients
        G0 = ring_matmul(X.T, delta)
        for h in range(1, self.parties):
            key = ProductKey("bwd", BANK, h)
            G0 = G0 + owner_half(
                "bwd", X, ring_from_bytes(got[h - 1]["f0"]), self.zo(key, epoch, index, rows)
            )
        halves, contents = {}, []
        for i in range(1, self.parties):
            key = ProductKey("bwd", i, BANK)
            vi = self.v(key, epoch, index, rows)
            halves[i] = holder_half("bwd", E[i], vi, corr[key])
            arrays = {"f0": delta - vi}
            cfg = self.batch_cfg(i - 1, epoch, index, positions, "train", True, dealt, False)
            for m in range(1, self.parties):
                if m != i:  # relayed: m's opened f for i's product, m's opened E
                    arrays[f"f{m}"] = ring_from_bytes(got[m - 1][f"f{i}"])
                    arrays[f"E{m}"] = E[m]
            if i == 1:
                cfg["sealed-halves"] = [
                    replies[m - 1].content["config"]["sealed"] for m in range(2, self.parties)
                ]
            contents.append(self.message("bwd", cfg, arrays, epoch))
        replies = self.ask(self.nodes, MessageType.TRAIN, contents, "gradients", epoch)
        got2 = [self.arrays_of(r) for r in replies]
        constants = StepConstants(self.frac_bits, rows, self.s.model.learning_rate, self.s.model.l2)
        for i in range(1, self.parties):
            G = halves[i]
            for m in range(1, self.parties):
                if m != i:
                    G = G + ring_from_bytes(got2[m - 1][f"h{i}"])
            self.wp[i] = updated_share(self.wp[i], G, 1, constants, FEATURE_FRAC_BITS, 1)
        self.w = updated_share(
            self.w, G0, 0, constants, FEATURE_FRAC_BITS, intercept_mask(self.widths[BANK])
        )

    def forward(self, pass_id, index, positions, X, split, train, dealt, rnd) -> tuple:
        """Step 1 of a batch, training or prediction: the bank's share of z from its own
        product (X_0 with data party 1's share) and its halves of every data party's;
        returns (its share of z, the replies, their arrays, the parties' opened E's, its
        corrections). Its opened E_0 goes to every data party in training (they hold
        shares of d4 for its gradient) and to data party 1 only in prediction."""
        rows = len(positions)
        corr = self.corrections(dealt, index, rows, train)
        E0 = X - owner_pad(self.prg, pass_id, index, rows, self.widths[BANK])
        v, contents = {}, []
        for i in range(1, self.parties):
            key = ProductKey("fwd", i, BANK)
            v[key] = self.v(key, pass_id, index, rows)
            arrays = {"f": self.wp[i] - v[key], **({"E0": E0} if train or i == 1 else {})}
            cfg = self.batch_cfg(i - 1, pass_id, index, positions, split, train, dealt)
            contents.append(self.message("fwd", cfg, arrays, rnd))
        what = "scores" if train else "joint prediction"
        replies = self.ask(self.nodes, MessageType.TRAIN, contents, what, rnd)
        got = [self.arrays_of(r) for r in replies]
        E = {
            i: ring_from_bytes(got[i - 1]["E"], (rows, self.widths[i]))
            for i in range(1, self.parties)
        }
        z = self.own_score_share(X, ring_from_bytes(got[0]["f-up"]), pass_id, index, rows)
        for i in range(1, self.parties):
            key = ProductKey("fwd", i, BANK)
            z = z + truncate(holder_half("fwd", E[i], v[key], corr[key]), FEATURE_FRAC_BITS, 1)
        return z, replies, got, E, corr

    def own_score_share(self, X, f_up, pass_id, index, rows) -> np.ndarray:
        """Its part of z as the owner of the bank's product: X_0·(⟨w_0⟩_0 + f) + ⟨Uv⟩_0,
        truncated as party 0."""
        key = ProductKey("fwd", BANK, 1)
        own = owner_half("fwd", X, f_up, self.zo(key, pass_id, index, rows), self.w)
        return truncate(own, FEATURE_FRAC_BITS, 0)

    def v(self, key: ProductKey, pass_id: int, batch: int, rows: int) -> np.ndarray:
        return holder_pad(self.prg, key, pass_id, batch, key.in_size(rows, self.widths[key.owner]))

    def zo(self, key: ProductKey, pass_id: int, batch: int, rows: int) -> np.ndarray:
        return owner_share(
            self.prg, key, pass_id, batch, key.out_size(rows, self.widths[key.owner])
        )

    @staticmethod
    def arrays_of(reply) -> dict[str, np.ndarray]:
        if "ss" not in reply.content:
            return {}
        return {k: v.numpy() for k, v in reply.content["ss"].items()}

    # --- prediction and reveal -------------------------------------------------------
    def joint_scores(self, pass_id: int, split: str, X: np.ndarray, rnd: int) -> np.ndarray:
        """The joint scores z of ``split``'s customers: a forward pass of the protocol,
        then every party's share of z to the bank (the model's output)."""
        chunks = [
            np.arange(i, min(i + PREDICT_CHUNK, len(X))) for i in range(0, len(X), PREDICT_CHUNK)
        ]
        dealt = self.deal(pass_id, [len(c) for c in chunks], False)
        out = []
        for index, positions in enumerate(chunks):
            if self.paillier is not None:
                out.append(hp.bank_predict_batch(self, pass_id, index, positions, split, X, rnd))
                continue
            z, replies, got, _, _ = self.forward(
                pass_id, index, positions, X[positions], split, False, dealt, rnd
            )
            share = self.parties_score_share(replies, got, pass_id, index, rnd)
            out.append(decode(z + share, self.frac_bits))
        return np.concatenate(out)

    def parties_score_share(self, replies, got, pass_id: int, index: int, rnd: int) -> np.ndarray:
        """The data parties' shares of z, as one sum: the bank holds the other half of
        each party's product, so party i's share alone would give it X_i·w_i. With one
        data party that sum is its share (z − the bank's own part is then its partial
        score anyway); with more, the others' shares reach data party 1 sealed and it
        returns the sum."""
        if self.parties == 2:
            return ring_from_bytes(got[0]["score-share"])
        sealed = [replies[m - 1].content["config"]["sealed"] for m in range(2, self.parties)]
        (reply,) = self.ask(
            self.nodes[:1],
            MessageType.TRAIN,
            [
                self.message(
                    "sum", {"pass": pass_id, "batch": index, "sealed-shares": sealed}, {}, rnd
                )
            ],
            "joint prediction",
            rnd,
        )
        return ring_from_bytes(self.arrays_of(reply)["score-share"])

    def evaluate(self, epoch: int, y_test: np.ndarray) -> dict[str, float]:
        s = self.s
        z_test = self.joint_scores(s.rounds + 1, "test", self.X_test, epoch)
        self.outcome.largest_score = float(np.abs(z_test).max(initial=0.0))
        calibration = Calibration()
        if s.model.calibration != "none":
            z_train = self.joint_scores(s.rounds + 2, "train", self.X_train, epoch)
            self.outcome.largest_score = max(
                self.outcome.largest_score, float(np.abs(z_train).max(initial=0.0))
            )
            calibration = fit_calibration(z_train, self.y, s.model.calibration)
            self.outcome.calibration = calibration_record(calibration, z_train, self.y)
        self.outcome.test_scores = calibration.apply(z_test)
        self.calibration = calibration
        return score_metrics(y_test, self.outcome.test_scores)

    def reveal(self, rnd: int) -> None:
        """reveal = "own": each data party gets the bank's share of its weights; data
        party 1 returns its share of the bank's."""
        contents = [
            self.message("reveal", {}, {"weight-share": self.wp[i]}, rnd)
            for i in range(1, self.parties)
        ]
        replies = self.ask(self.nodes, MessageType.TRAIN, contents, "reveal", rnd)
        share = ring_from_bytes(self.arrays_of(replies[0])["weight-share"])
        weights = decode(self.w + share, self.frac_bits)
        w, b = self.calibration.bank_part(weights[:-1], float(weights[-1]))
        self.recorder.final_params = np.r_[w, b]


__all__ = ["SharingBank", "make_sharing_bank_app"]
