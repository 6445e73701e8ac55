"""A data-source party (FATE's *host*): a ClientApp holding features, never labels.

It answers the bank's PSI exchange, keeps its aligned rows, weights and pending masks in
its own Flower ``Context.state``, sends partial scores, and turns encrypted residuals into
a masked encrypted gradient (:mod:`fedrisk.vertical.protocol` has the whole exchange).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import gmpy2
import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp

from fedrisk.crypto.hetero import (
    FEATURE_FRAC_BITS,
    RESIDUAL_FRAC_BITS,
    decode_signed,
    encrypted_feature_sums,
)
from fedrisk.crypto.paillier import ObfuscatorPool, VectorCipher
from fedrisk.crypto.psi import PsiParty
from fedrisk.data.scaling import RobustScaler, fit_party_scaler
from fedrisk.errors import ProtocolError
from fedrisk.files import write_private_json
from fedrisk.flower.recording_grid import identity_reply
from fedrisk.model_io import LogisticPart
from fedrisk.privacy.mechanisms import clip_rows
from fedrisk.vertical.protocol import (
    MASK_KEY,
    MODEL_KEY,
    PSI_KEY,
    ROWS_KEY,
    SCALER_KEY,
    DataPartyJob,
    PartyData,
    config_reply,
)


def make_party_app(job: DataPartyJob, mods: list | None = None) -> ClientApp:
    """The data-source parties' ClientApp; ``mods`` are extra Flower mods (tests).

    Node ``partition-id`` i serves ``job.parties[i]`` and reads no other entry: on the
    Deployment Engine each SuperNode's job holds its own party's rows only (the others
    by name), in-process and on the Simulation Engine the simulator's job holds all.
    Everything a party carries from one message to the next (PSI shuffle order and
    double-masked ids, its aligned rows, z-scoring, weights, gradient masks) lives in
    the node's ``Context.state``, never in process memory: on the Deployment Engine
    every message may be handled by a fresh ClientApp process, which gets the state
    back from its SuperNode (serialised with the message). The one thing kept in
    memory, the cipher (:func:`party_cipher`), is the encryption randomness: a cache a
    fresh process refills.
    """
    app = ClientApp(mods=list(mods or []))
    cipher = party_cipher(job)

    @app.query("identify")
    def identify(msg: Message, context: Context) -> Message:
        return identity_reply(msg, job.parties[party_index(context)].name)

    @app.query("vertical")
    def setup(msg: Message, context: Context) -> Message:
        party = job.parties[party_index(context)]
        reply = scaled_alignment_reply(job, party, msg, context)
        if str(msg.content["config"]["stage"]) == "align":
            context.state[MODEL_KEY] = ArrayRecord({"w": Array(np.zeros(party.X.shape[1]))})
        return reply

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        party = job.parties[party_index(context)]
        cfg = msg.content["config"]
        rows = context.state[ROWS_KEY]
        w = context.state[MODEL_KEY]["w"].numpy()
        stage = str(cfg["stage"])
        if "unmasked-pending" in cfg:  # step d of the previous batch: unmask and update
            w = _apply_gradient(job, w, cfg, context, cipher().public_key.n)
            context.state[MODEL_KEY] = ArrayRecord({"w": Array(w)})
        if stage == "scores":
            if cfg.get("final") and job.model_dir is not None:
                keep_model_part(job, party, w, context)
            split = str(cfg.get("split", "train"))
            idx = (
                rows[split].numpy()[np.asarray(cfg["rows"], dtype=np.int64)]
                if "rows" in cfg
                else rows[split].numpy()
            )
            return Message(
                RecordDict(
                    {
                        "scores": ArrayRecord(
                            {"u": Array(standardised_rows(job, party, idx, context) @ w)}
                        )
                    }
                ),
                reply_to=msg,
            )
        if stage == "gradient":
            idx = rows["train"].numpy()[np.asarray(cfg["rows"], dtype=np.int64)]
            c = cipher()
            n, nsq = c.public_key.n, gmpy2.mpz(c.public_key.nsquare)
            residuals = c.from_bytes(list(cfg["residuals"]), len(idx))
            X = standardised_rows(job, party, idx, context)
            sums = encrypted_feature_sums(residuals, X, nsq, workers=None)  # all cores
            masks = [int.from_bytes(_random_bytes(n), "big") % n for _ in sums]
            masked = [s * e % nsq for s, e in zip(sums, c.encrypt(masks))]
            context.state[MASK_KEY] = ConfigRecord(
                {"masks": [m.to_bytes(c.width, "big") for m in masks], "batch": len(idx)}
            )
            return config_reply(msg, {"masked-gradient": c.to_bytes(masked)})
        if stage == "apply":
            return config_reply(msg, {"ok": 1})
        raise ProtocolError(f"{party.name}: unknown stage {stage!r}")

    return app


def answer_setup(app: ClientApp, job: DataPartyJob) -> None:
    """The identify handshake and the alignment (PSI, then the held-out split), as
    every vertical model's data parties answer them (hetero LR adds its scaling)."""

    @app.query("identify")
    def identify(msg: Message, context: Context) -> Message:
        return identity_reply(msg, job.parties[party_index(context)].name)

    @app.query("vertical")
    def setup(msg: Message, context: Context) -> Message:
        return alignment_reply(job.parties[party_index(context)], msg, context)


def alignment_reply(party: PartyData, msg: Message, context: Context) -> Message:
    """A data party's side of the set-up (``query.vertical``): the PSI exchange with the
    bank, then the shared ids and the held-out split, kept as its rows in
    ``context.state[ROWS_KEY]``. Every vertical model's party app answers it so."""
    cfg = msg.content["config"]
    stage = str(cfg["stage"])
    if stage == "psi-mask":  # steps 1 and 4 of the exchange, with one key
        psi = PsiParty(
            party.name,
            [str(i) for i in party.ids],
            party.secret.rng("vertical/psi", party_index(context)),  # its own, not the seed
        )
        mine = psi.masked_ids()
        theirs_double = psi.mask_again(list(cfg["bank-masked"]))
        context.state[PSI_KEY] = ConfigRecord({"their-double": theirs_double})
        context.state[PSI_KEY + ".order"] = ArrayRecord(
            {"order": Array(np.asarray(psi.shuffle_order, dtype=np.int64))}
        )
        return config_reply(msg, {"masked": mine, "bank-double": theirs_double})
    if stage == "psi-finish":  # step 3 came back: my view of the intersection
        order = context.state[PSI_KEY + ".order"]["order"].numpy()
        theirs = set(context.state[PSI_KEY]["their-double"])
        mine = list(cfg["my-double"])
        shared = sorted(str(party.ids[order[k]]) for k, v in enumerate(mine) if v in theirs)
        # done with the exchange: no need to carry ~32 bytes per id in every later
        # message's context
        del context.state[PSI_KEY], context.state[PSI_KEY + ".order"]
        return config_reply(msg, {"count": len(shared)})
    if stage == "align":  # the final shared ids and the held-out ones, from the bank
        pos = {str(i): k for k, i in enumerate(party.ids)}
        try:
            train = np.array([pos[i] for i in cfg["train-ids"]], dtype=np.int64)
            test = np.array([pos[i] for i in cfg["test-ids"]], dtype=np.int64)
        except KeyError as exc:
            raise ProtocolError(
                f"{party.name}: the bank aligned an id it does not hold: {exc}"
            ) from None
        context.state[ROWS_KEY] = ArrayRecord({"train": Array(train), "test": Array(test)})
        return config_reply(msg, {"ok": 1})
    raise ProtocolError(f"{party.name}: unknown stage {stage!r}")


def scaled_alignment_reply(
    job: DataPartyJob, party: PartyData, msg: Message, context: Context
) -> Message:
    """:func:`alignment_reply`, and at the ``align`` stage the party's scaling fitted
    on its own training rows (the logistic protocols' parties z-score their columns)."""
    reply = alignment_reply(party, msg, context)
    if str(msg.content["config"]["stage"]) == "align":
        fit_scaler_state(job, party, context)
    return reply


def fit_scaler_state(job: DataPartyJob, party: PartyData, context: Context) -> None:
    """The party's scaling (data.scaling) fitted on its own training rows, alone, and
    kept in ``context.state`` for :func:`standardised_rows`."""
    train = context.state[ROWS_KEY]["train"].numpy()
    scaler = fit_party_scaler(party.X[train], job.scenario.data.scaling)
    context.state[SCALER_KEY] = ArrayRecord(
        {k: Array(np.array(getattr(scaler, k))) for k in ("mean", "scale", "clip_low", "clip_high")}
    )


def keep_model_part(
    job: DataPartyJob,
    party: PartyData,
    w: np.ndarray,
    context: Context,
    encoding: tuple[float, int] | None = None,
) -> None:
    """The party's final part of the joint model (its scaling and weights), written to
    its own file in ``job.model_dir`` (owner-only): what it needs to answer anonymous
    queries for applicants' partial scores (:mod:`fedrisk.vertical.query`).
    ``encoding``: (clip, fractional bits) of a secret-shared run's fixed-point features."""
    scaler = context.state[SCALER_KEY]
    part = LogisticPart(
        party.name,
        party.feature_names,
        w,
        *(scaler[k].numpy() for k in ("mean", "scale", "clip_low", "clip_high")),
        clip_norm=job.clip_norm,
        feature_clip=None if encoding is None else encoding[0],
        feature_frac_bits=None if encoding is None else encoding[1],
    )
    write_private_json(Path(job.model_dir) / f"{party.name}.json", part.record())


def party_cipher(job: DataPartyJob) -> Callable[[], VectorCipher]:
    """The party's encryption, made on first use and kept in process memory: its
    obfuscator pool (DJN if chosen) draws from os entropy, the party's own randomness,
    a cache a fresh ClientApp process refills."""
    pool: dict[str, VectorCipher] = {}

    def cipher() -> VectorCipher:
        if "c" not in pool:
            obfuscation = job.scenario.privacy.obfuscation
            pool["c"] = VectorCipher(job.public_key, ObfuscatorPool(job.public_key, obfuscation))
        return pool["c"]

    return cipher


def party_index(context: Context) -> int:
    """Which of the job's parties this node serves (its ``partition-id``)."""
    return int(context.node_config["partition-id"])


def _random_bytes(n: int) -> bytes:
    return secrets.token_bytes((n.bit_length() + 7) // 8 + 16)  # extra bytes: no mod bias


def standardised_rows(
    job: DataPartyJob, party: PartyData, idx: np.ndarray, context: Context
) -> np.ndarray:
    """Rows ``idx`` of the party's features, clipped and z-scored as fitted on its own
    training rows (at alignment, kept in ``context.state``) and, under label DP,
    clipped. Row by row, so the same numbers whichever rows are asked for; recomputed per
    message because a ClientApp process may live for one message only."""
    scaler = context.state[SCALER_KEY]
    X = RobustScaler(*(scaler[k].numpy() for k in ("clip_low", "clip_high", "mean", "scale")))
    X = X.transform(party.X[idx])
    if job.clip_norm is not None:  # bounds one label's effect on the gradient
        X = clip_rows(X, job.clip_norm)
    return X


def _apply_gradient(
    job: DataPartyJob, w: np.ndarray, cfg: ConfigRecord, context: Context, n: int
) -> np.ndarray:
    state = context.state[MASK_KEY]
    masks = [int.from_bytes(b, "big") for b in state["masks"]]
    values = [int.from_bytes(b, "big") for b in cfg["unmasked-pending"]]
    if len(values) != len(masks):
        raise ProtocolError(f"expected {len(masks)} unmasked values, got {len(values)}")
    scale = 2.0 ** (RESIDUAL_FRAC_BITS + FEATURE_FRAC_BITS) * int(state["batch"])
    grad = np.array([decode_signed(v - m, n) for v, m in zip(values, masks)]) / scale
    m = job.scenario.model
    return w - m.learning_rate * (grad + m.l2 * w)


__all__ = [
    "alignment_reply",
    "answer_setup",
    "fit_scaler_state",
    "keep_model_part",
    "make_party_app",
    "party_cipher",
    "party_index",
    "scaled_alignment_reply",
    "standardised_rows",
]
