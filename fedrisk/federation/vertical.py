"""Vertical federation: a bank and data-source companies, same customers, own columns.

The bank (label holder, Paillier key holder) runs the Flower ``ServerApp`` and
orchestrates; every data-source party is a ``ClientApp``. After the identify handshake:

1. **Alignment (PSI).** For each data party in turn, ECDH PSI over X25519
   (:mod:`fedrisk.crypto.psi`), chained through the bank: party 2 is intersected with
   ``bank ∩ party 1`` only, and so on. The bank then tells each party the final shared
   ids (all of which the party holds) and which of them are held out for testing.
2. **Training** (hetero logistic regression, Hardy et al. 2017; FATE's scheme with the
   label holder as key holder), per mini-batch chosen by the bank:
   a. each party sends its partial scores u_k = X_k w_k for the batch;
   b. the bank forms u = X_B w_B + b + Σ u_k and the Taylor residual d = u/4 − y'/2
      (y' ∈ {−1, +1}), updates its own weights, and sends Enc(d_i) for the batch;
   c. each party computes Enc(Σ_i d_i x_ij) homomorphically for its features, adds a
      fresh random mask R_j (uniform mod n) inside the encryption and returns it;
   d. the bank decrypts G_j + R_j (uniform: it learns nothing) and returns it; the party
      removes R_j and updates its own weights (with the next batch's request).
3. **Joint prediction:** parties send partial scores on the test rows; the bank scores.

Who learns what (honest-but-curious, non-colluding): the bank learns the intersection,
each party's set size, and each party's partial scores u_k (a 1-d projection of its
features per customer, from which over many steps the features are identifiable up to
an invertible linear map — a known weakness of this protocol family). A data party
learns the intersection, its own plaintext gradient — from which labels leak (see
:func:`label_leakage`), more at small batches — and nothing else: residuals reach it
encrypted, its gradient masked. No party sees another's features, weights or labels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import gmpy2
import numpy as np
from flwr.app import (Array, ArrayRecord, ConfigRecord, Message, MessageType, RecordDict)
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from scipy.special import expit
from sklearn.metrics import roc_auc_score

from fedrisk.crypto.hetero import (FEATURE_FRAC_BITS, RESIDUAL_FRAC_BITS, decode_signed,
                                   encode_signed, encrypted_feature_sums)
from fedrisk.crypto.paillier import ObfuscatorPool, VectorCipher, VectorDecryptor
from fedrisk.crypto.psi import PsiParty
from fedrisk.data.split import Standardizer, split_indices
from fedrisk.errors import InputError, ProtocolError
from fedrisk.evaluation.metrics import score_metrics
from fedrisk.federation.horizontal import ServerRecorder
from fedrisk.federation.recording_grid import RecordingGrid, identity_reply
from fedrisk.privacy.mechanisms import clip_rows
from fedrisk.scenario import Scenario

PSI_KEY = "fedrisk.psi"
ROWS_KEY = "fedrisk.rows"
MODEL_KEY = "fedrisk.weights"
MASK_KEY = "fedrisk.masks"
QUERY = "query.vertical"


@dataclass(frozen=True)
class PartyData:
    name: str
    ids: np.ndarray
    X: np.ndarray
    feature_names: tuple[str, ...]


@dataclass(frozen=True)
class DataPartyJob:
    """What the data-source parties hold (one ClientApp serves them by partition-id)."""

    scenario: Scenario
    parties: tuple[PartyData, ...]
    public_key: Any
    clip_norm: float | None = None  # label DP: rows clipped to this L2 norm (public rule)


@dataclass(frozen=True)
class BankJob:
    """What the bank holds: its table, labels and the private key."""

    scenario: Scenario
    name: str
    ids: np.ndarray
    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    party_names: tuple[str, ...]
    public_key: Any
    private_key: Any
    dp: Any = None  # DPPlan with mode 'label': the bank noises each returned gradient


# --- data parties (ClientApp) --------------------------------------------------------------

def make_party_app(job: DataPartyJob, mods: list | None = None) -> ClientApp:
    """The data-source parties' ClientApp; ``mods`` are extra Flower mods (tests)."""
    app = ClientApp(mods=list(mods or []))
    pool = {}

    def cipher() -> VectorCipher:
        if "c" not in pool:  # one obfuscator pool per process (DJN if chosen)
            pool["c"] = VectorCipher(job.public_key, ObfuscatorPool(
                job.public_key, job.scenario.privacy.obfuscation))
        return pool["c"]

    @app.query("identify")
    def identify(msg: Message, context) -> Message:
        return identity_reply(msg, job.parties[_pid(context)].name)

    @app.query("vertical")
    def setup(msg: Message, context) -> Message:
        party = job.parties[_pid(context)]
        cfg = msg.content["config"]
        stage = str(cfg["stage"])
        if stage == "psi-mask":  # steps 1 and 4 of the exchange, with one key
            psi = PsiParty(party.name, [str(i) for i in party.ids],
                           np.random.default_rng([job.scenario.seed, 9, _pid(context)]))
            mine = psi.masked_ids()
            theirs_double = psi.mask_again(list(cfg["bank-masked"]))
            context.state[PSI_KEY] = ConfigRecord({"their-double": theirs_double})
            context.state[PSI_KEY + ".order"] = ArrayRecord(
                {"order": Array(np.asarray(psi.shuffle_order, dtype=np.int64))})
            return _reply(msg, {"masked": mine, "bank-double": theirs_double})
        if stage == "psi-finish":  # step 3 came back: my view of the intersection
            order = context.state[PSI_KEY + ".order"]["order"].numpy()
            theirs = set(context.state[PSI_KEY]["their-double"])
            mine = list(cfg["my-double"])
            shared = sorted(str(party.ids[order[k]]) for k, v in enumerate(mine) if v in theirs)
            return _reply(msg, {"count": len(shared)})
        if stage == "align":  # the final shared ids and the held-out ones, from the bank
            pos = {str(i): k for k, i in enumerate(party.ids)}
            try:
                train = np.array([pos[i] for i in cfg["train-ids"]], dtype=np.int64)
                test = np.array([pos[i] for i in cfg["test-ids"]], dtype=np.int64)
            except KeyError as exc:
                raise ProtocolError(f"{party.name}: the bank aligned an id it does not "
                                    f"hold: {exc}") from None
            context.state[ROWS_KEY] = ArrayRecord({"train": Array(train), "test": Array(test)})
            context.state[MODEL_KEY] = ArrayRecord({"w": Array(np.zeros(party.X.shape[1]))})
            return _reply(msg, {"ok": 1})
        raise ProtocolError(f"{party.name}: unknown stage {stage!r}")

    @app.train()
    def train(msg: Message, context) -> Message:
        party = job.parties[_pid(context)]
        cfg = msg.content["config"]
        X = _standardised(job, _pid(context), context)
        rows = context.state[ROWS_KEY]
        w = context.state[MODEL_KEY]["w"].numpy()
        stage = str(cfg["stage"])
        if "unmasked-pending" in cfg:  # step d of the previous batch: unmask and update
            w = _apply_gradient(job, w, cfg, context, cipher().public_key.n)
            context.state[MODEL_KEY] = ArrayRecord({"w": Array(w)})
        if stage == "scores":
            split = str(cfg.get("split", "train"))
            idx = rows[split].numpy()[np.asarray(cfg["rows"], dtype=np.int64)] \
                if "rows" in cfg else rows[split].numpy()
            return Message(RecordDict({"scores": ArrayRecord({"u": Array(X[idx] @ w)})}),
                           reply_to=msg)
        if stage == "gradient":
            idx = rows["train"].numpy()[np.asarray(cfg["rows"], dtype=np.int64)]
            c = cipher()
            n, nsq = c.public_key.n, gmpy2.mpz(c.public_key.nsquare)
            residuals = c.from_bytes(list(cfg["residuals"]), len(idx))
            sums = encrypted_feature_sums(residuals, X[idx], nsq)
            masks = [int.from_bytes(_random_bytes(n), "big") % n for _ in sums]
            masked = [s * e % nsq for s, e in zip(sums, c.encrypt(masks))]
            context.state[MASK_KEY] = ConfigRecord({"masks": [m.to_bytes(c.width, "big")
                                                              for m in masks],
                                                    "batch": len(idx)})
            return _reply(msg, {"masked-gradient": c.to_bytes(masked)})
        if stage == "apply":
            return _reply(msg, {"ok": 1})
        raise ProtocolError(f"{party.name}: unknown stage {stage!r}")

    return app


def _pid(context) -> int:
    return int(context.node_config["partition-id"])


def _reply(msg: Message, values: dict) -> Message:
    return Message(RecordDict({"config": ConfigRecord(values)}), reply_to=msg)


def _random_bytes(n: int) -> bytes:
    import secrets
    return secrets.token_bytes((n.bit_length() + 7) // 8 + 16)  # extra bytes: no mod bias


_STANDARDISED: dict[tuple[int, str], np.ndarray] = {}


def _standardised(job: DataPartyJob, pid: int, context) -> np.ndarray:
    """The party's features z-scored with its own training rows (a local step)."""
    party = job.parties[pid]
    key = (id(job), party.name)
    if key not in _STANDARDISED:
        train = context.state[ROWS_KEY]["train"].numpy()
        X = Standardizer().fit(party.X[train]).transform(party.X)
        if job.clip_norm is not None:  # bounds one label's effect on the gradient
            X = clip_rows(X, job.clip_norm)
        _STANDARDISED[key] = X
    return _STANDARDISED[key]


def _apply_gradient(job: DataPartyJob, w: np.ndarray, cfg, context, n: int) -> np.ndarray:
    state = context.state[MASK_KEY]
    masks = [int.from_bytes(b, "big") for b in state["masks"]]
    values = [int.from_bytes(b, "big") for b in cfg["unmasked-pending"]]
    if len(values) != len(masks):
        raise ProtocolError(f"expected {len(masks)} unmasked values, got {len(values)}")
    scale = 2.0 ** (RESIDUAL_FRAC_BITS + FEATURE_FRAC_BITS) * int(state["batch"])
    grad = np.array([decode_signed(v - m, n) for v, m in zip(values, masks)]) / scale
    m = job.scenario.model
    return w - m.learning_rate * (grad + m.l2 * w)


# --- the bank (ServerApp) ------------------------------------------------------------------

@dataclass
class VerticalOutcome:
    aligned: int = 0
    party_sizes: dict[str, int] = field(default_factory=dict)
    train_ids: np.ndarray | None = None
    test_ids: np.ndarray | None = None
    test_scores: np.ndarray | None = None
    test_y: np.ndarray | None = None
    bank_train_X: np.ndarray | None = None
    bank_test_X: np.ndarray | None = None
    encrypt_s: float = 0.0
    decrypt_s: float = 0.0
    encryptions: int = 0
    epochs: list = field(default_factory=list)


def classify_vertical(msg: Message, to_server: bool) -> tuple[str, str, bool]:
    cfg = msg.content.config_records.get("config", {})
    if to_server:
        if "scores" in msg.content:
            return "partial_scores", "plaintext", True
        if "masked-gradient" in cfg:
            return "encrypted_masked_gradient", "masked", False  # decrypts to G + R
        if "masked" in cfg:
            return "psi_masked_ids", "masked", False
        return "ack", "plaintext", True
    stage = str(cfg.get("stage", ""))
    if stage == "gradient":
        return "encrypted_residuals", "ciphertext", False
    if stage.startswith("psi"):
        return f"{stage}_masked_ids", "masked", False
    if stage == "align":
        return "aligned_ids", "plaintext", True  # ids the party itself holds
    if "unmasked-pending" in cfg:
        return "masked_gradient", "masked", True  # its own gradient plus its own mask
    return "row_selection", "plaintext", True  # batch positions only


def make_bank_app(job: BankJob, recorder: ServerRecorder, outcome: VerticalOutcome
                  ) -> ServerApp:
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context) -> None:
        grid = RecordingGrid(grid, recorder.transcript, classify_vertical, job.name)
        try:
            grid.identify(len(job.party_names))
            nodes = {name: node for node, name in grid.party_of.items()}
            _run_bank(job, grid, [nodes[n] for n in job.party_names], recorder, outcome)
        except Exception as exc:
            recorder.error = exc
            raise

    return app


def _ask(grid, nodes: list[int], message_type: str, configs: list[dict],
         what: str, rnd: int) -> list[Message]:
    msgs = [Message(RecordDict({"config": ConfigRecord({**cfg, "server-round": rnd})}),
                    dst_node_id=node, message_type=message_type)
            for node, cfg in zip(nodes, configs)]
    replies = list(grid.send_and_receive(msgs))
    by_node = {r.metadata.src_node_id: r for r in replies}
    out = []
    for node in nodes:
        reply = by_node.get(node)
        if reply is None or reply.has_error():
            reason = reply.error.reason if reply is not None else "no reply"
            raise ProtocolError(f"round {rnd}: {grid.name(node)} failed in {what}: {reason}")
        out.append(reply)
    return out


def _run_bank(job: BankJob, grid, nodes: list[int], recorder: ServerRecorder,
              outcome: VerticalOutcome) -> None:
    s = job.scenario
    # 1. PSI, chained through the bank (fresh bank key per exchange)
    shared = [str(i) for i in job.ids]
    for k, node in enumerate(nodes):
        bank_psi = PsiParty(job.name, shared, np.random.default_rng([s.seed, 10, k]))
        (reply,) = _ask(grid, [node], QUERY, [{"stage": "psi-mask",
                                              "bank-masked": bank_psi.masked_ids()}],
                        "private set intersection", 0)
        cfg = reply.content["config"]
        their_masked = list(cfg["masked"])
        outcome.party_sizes[job.party_names[k]] = len(their_masked)
        their_double = bank_psi.mask_again(their_masked)
        (reply2,) = _ask(grid, [node], QUERY, [{"stage": "psi-finish",
                                               "my-double": their_double}],
                         "private set intersection", 0)
        shared = bank_psi.intersect(list(cfg["bank-double"]), their_double)
        if int(reply2.content["config"]["count"]) < len(shared):
            raise ProtocolError(f"round 0: {job.party_names[k]} found fewer shared ids")
        if not shared:
            raise InputError(f"{s.source_file}: federation.parties: the bank and "
                             f"{job.party_names[k]} (with the parties before it) share no "
                             "customer ids; check the id columns")
    shared = sorted(shared)
    outcome.aligned = len(shared)
    # 2. held-out split by the bank (it holds the labels), told to every party
    pos = {str(i): k for k, i in enumerate(job.ids)}
    rows = np.array([pos[i] for i in shared], dtype=np.int64)
    y_all = job.y[rows]
    tr, te = split_indices(y_all, s.data.test_fraction, s.seed)
    train_ids = [shared[i] for i in tr]
    test_ids = [shared[i] for i in te]
    _ask(grid, nodes, QUERY, [{"stage": "align", "train-ids": train_ids,
                              "test-ids": test_ids}] * len(nodes), "alignment", 0)
    scaler = Standardizer().fit(job.X[rows[tr]])
    Xb, yb = scaler.transform(job.X[rows[tr]]), job.y[rows[tr]].astype(np.float64)
    Xb_test, y_test = scaler.transform(job.X[rows[te]]), job.y[rows[te]]
    outcome.train_ids, outcome.test_ids = np.array(train_ids), np.array(test_ids)
    outcome.bank_train_X, outcome.bank_test_X, outcome.test_y = Xb, Xb_test, y_test

    # 3. training
    cipher = VectorCipher(job.public_key, ObfuscatorPool(job.public_key,
                                                         s.privacy.obfuscation))
    decryptor = VectorDecryptor(job.private_key)
    n = job.public_key.n
    w, b = np.zeros(Xb.shape[1]), 0.0
    m = s.model
    pending: list[list[bytes]] | None = None
    recorder.server_name = job.name
    recorder.update_kinds = None
    recorder.start_clock()  # rounds.csv times epochs from here
    for epoch in range(1, s.rounds + 1):
        order = np.random.default_rng([s.seed, 8, epoch]).permutation(len(yb))
        for start in range(0, len(yb), m.batch_size):
            batch = order[start:start + m.batch_size]
            cfgs = [{"stage": "scores", "rows": batch.tolist(),
                     **({"unmasked-pending": pending[k]} if pending else {})}
                    for k in range(len(nodes))]
            replies = _ask(grid, nodes, MessageType.TRAIN, cfgs, "partial scores", epoch)
            u = Xb[batch] @ w + b + sum(r.content["scores"]["u"].numpy() for r in replies)
            d = 0.25 * u - 0.5 * (2 * yb[batch] - 1)
            w -= m.learning_rate * (Xb[batch].T @ d / len(batch) + m.l2 * w)
            b -= m.learning_rate * float(d.mean())
            t0 = time.perf_counter()
            enc = cipher.to_bytes(cipher.encrypt(encode_signed(d, RESIDUAL_FRAC_BITS, n)))
            outcome.encrypt_s += time.perf_counter() - t0
            outcome.encryptions += len(enc)
            replies = _ask(grid, nodes, MessageType.TRAIN,
                           [{"stage": "gradient", "rows": batch.tolist(), "residuals": enc}]
                           * len(nodes), "encrypted gradient", epoch)
            pending = []
            t0 = time.perf_counter()
            for k, r in enumerate(replies):
                blobs = list(r.content["config"]["masked-gradient"])
                try:
                    cts = cipher.from_bytes(blobs, len(blobs))
                except ValueError as exc:
                    raise ProtocolError(f"round {epoch}: {job.party_names[k]}: {exc}") from None
                values = decryptor.decrypt(cts)
                if job.dp is not None:  # label DP: noise the party's gradient sum
                    values = _noised(values, job.dp, s.seed, epoch, start, k, n)
                pending.append([int(v).to_bytes(cipher.width, "big") for v in values])
            outcome.decrypt_s += time.perf_counter() - t0
        # end of epoch: parties apply the last update, then score the test rows jointly
        test_scores = _joint_test_scores(grid, nodes, pending, Xb_test, w, b, epoch)
        pending = None
        outcome.test_scores = test_scores
        recorder.log_round(epoch, score_metrics(y_test, test_scores))
    recorder.final_params = np.r_[w, b]  # the bank's own part; parties keep theirs


def label_noise(dp, seed: int, epoch: int, batch_start: int, party: int, size: int
                ) -> np.ndarray:
    """N(0, (z·C)²) per gradient coordinate: one label moves Σ_i d_i x_i by at most C."""
    rng = np.random.default_rng([seed, 12, epoch, batch_start, party])
    return rng.normal(0.0, dp.noise_multiplier * dp.clip_norm, size)


def _noised(values: list[int], dp, seed: int, epoch: int, start: int, party: int,
            n: int) -> list[int]:
    noise = label_noise(dp, seed, epoch, start, party, len(values))
    fixed = encode_signed(noise, RESIDUAL_FRAC_BITS + FEATURE_FRAC_BITS, n)
    return [(v + e) % n for v, e in zip(values, fixed)]


def _joint_test_scores(grid, nodes, pending, Xb_test, w, b, epoch) -> np.ndarray:
    cfgs = [{"stage": "scores", "split": "test",
             **({"unmasked-pending": pending[k]} if pending else {})}
            for k in range(len(nodes))]
    replies = _ask(grid, nodes, MessageType.TRAIN, cfgs, "joint prediction", epoch)
    u = Xb_test @ w + b + sum(r.content["scores"]["u"].numpy() for r in replies)
    return expit(u)


# --- label leakage: what a data party can infer from its own gradients ---------------------

def label_leakage(X_party: np.ndarray, X_bank: np.ndarray, y: np.ndarray,
                  batch_sizes: tuple[int, ...], seed: int, learning_rate: float,
                  run_batch: int, max_rows: int = 6000, dp=None) -> dict[str, float]:
    """AUC with which a data party recovers labels from the gradients it sees.

    Replays one epoch of the protocol in the clear (the party's unmasked gradient equals
    X_kᵀd/|S| exactly) and scores each customer of each batch by −x_i·g: its own
    contribution to the batch gradient pushes that product towards −d_i·|x_i|²/|S|, and
    d is lower for defaulters. A bigger batch drowns each customer in the others; at
    large batches what is left is the population direction of the gradient, so the score
    tends to the AUC of a linear model on the party's own features. The step size scales
    with the batch (the linear scaling rule, capped at the run's) to keep small batches
    stable.
    """
    rng = np.random.default_rng([seed, 11])
    idx = rng.permutation(len(y))[:max_rows]
    Xp, Xb, y = X_party[idx], X_bank[idx], y[idx]
    if dp is not None:
        Xp = clip_rows(Xp, dp.clip_norm)
    out = {}
    for bs in batch_sizes:
        lr = learning_rate * min(1.0, bs / run_batch)
        wp, wb, b = np.zeros(Xp.shape[1]), np.zeros(Xb.shape[1]), 0.0
        scores = np.empty(len(y))
        order = rng.permutation(len(y))
        for start in range(0, len(y), bs):
            batch = order[start:start + bs]
            d = 0.25 * (Xp[batch] @ wp + Xb[batch] @ wb + b) - 0.5 * (2 * y[batch] - 1)
            g = Xp[batch].T @ d / len(batch)     # what the party decrypts and unmasks
            if dp is not None:  # the label-DP defence, as the bank applies it
                g = g + rng.normal(0, dp.noise_multiplier * dp.clip_norm, g.shape) / len(batch)
            scores[batch] = -(Xp[batch] @ g)     # the attack
            wp -= lr * g
            wb -= lr * Xb[batch].T @ d / len(batch)
            b -= lr * d.mean()
        out[str(bs)] = float(roc_auc_score(y, scores))
    return out


__all__ = ["BankJob", "DataPartyJob", "PartyData", "VerticalOutcome", "classify_vertical",
           "label_leakage", "make_bank_app", "make_party_app"]
