"""A data-source party in the secret-sharing protocol: a ClientApp holding features,
never labels (:mod:`fedrisk.vertical.sharing.protocol` has the whole exchange).

The same ClientApp serves the dealer's node (the node after the data parties), which
answers with :func:`fedrisk.vertical.sharing.dealer.dealer_reply`. Everything a party
carries between messages (its shares, its seed, its keys, the pass's corrections) lives
in the node's ``Context.state``.
"""

from __future__ import annotations

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message
from flwr.clientapp import ClientApp

from fedrisk.crypto.channel import ChannelKey
from fedrisk.crypto.sharing import (
    FEATURE_CLIP,
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
    ring_bytes,
    ring_from_bytes,
    ring_matmul,
    truncate,
)
from fedrisk.errors import ProtocolError
from fedrisk.flower.recording_grid import identity_reply
from fedrisk.vertical.party import (
    keep_model_part,
    party_index,
    scaled_alignment_reply,
    standardised_rows,
)
from fedrisk.vertical.protocol import ROWS_KEY, DataPartyJob, PartyData, config_reply
from fedrisk.vertical.sharing import paillier_products as hp
from fedrisk.vertical.sharing.dealer import dealer_reply
from fedrisk.vertical.sharing.protocol import (
    BANK,
    CONFIG_STATE,
    DEALER_NAME,
    STATE_KEY,
    DealerJob,
    StepConstants,
    correction_slices,
    intercept_mask,
    ring_content,
    updated_share,
)


def make_sharing_party_app(
    job: DataPartyJob, dealer: DealerJob | None, mods: list | None = None
) -> ClientApp:
    """The data parties' ClientApp (node ``partition-id`` i serves ``job.parties[i]``)
    and, with a dealer, the dealer's (the node after them)."""
    app = ClientApp(mods=list(mods or []))
    sides: dict[int, hp.ProductSide] = {}  # its Paillier side (key tables), a cache

    def side(context: Context) -> hp.ProductSide:
        index = party_index(context)
        if index not in sides:
            party = job.parties[index]
            sides[index] = hp.party_side(context, party.secret, job.scenario.privacy.obfuscation)
        return sides[index]

    def is_dealer(context: Context) -> bool:
        return dealer is not None and party_index(context) == len(job.parties)

    @app.query("identify")
    def identify(msg: Message, context: Context) -> Message:
        name = DEALER_NAME if is_dealer(context) else job.parties[party_index(context)].name
        return identity_reply(msg, name)

    @app.query("vertical")
    def setup(msg: Message, context: Context) -> Message:
        return scaled_alignment_reply(job, job.parties[party_index(context)], msg, context)

    @app.query("sharing")
    def sharing(msg: Message, context: Context) -> Message:
        if is_dealer(context):
            return dealer_reply(dealer, msg, context)
        return _setup_reply(job, job.parties[party_index(context)], msg, context, side)

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        party = job.parties[party_index(context)]
        stage = str(msg.content["config"]["stage"])
        if stage == "fwd":
            return _forward(job, party, msg, context, side)
        if stage == "bwd":
            return _backward(job, party, msg, context, side)
        if stage == "reveal":
            return _reveal(job, party, msg, context)
        if stage == "sum":
            return _sum_scores(party, msg, context)
        raise ProtocolError(f"{party.name}: unknown stage {stage!r}")

    return app


# --- state -----------------------------------------------------------------------------------


def _arrays(context: Context) -> dict[str, np.ndarray]:
    rec = context.state[STATE_KEY]
    return {k: rec[k].numpy() for k in rec.keys()}


def _keep(context: Context, **arrays: np.ndarray) -> None:
    rec = context.state[STATE_KEY]
    for k, v in arrays.items():
        rec[k] = Array(np.ascontiguousarray(v))


def _cfg(context: Context) -> ConfigRecord:
    return context.state[CONFIG_STATE]


def _setup_reply(
    job: DataPartyJob, party: PartyData, msg: Message, context: Context, side
) -> Message:
    cfg = msg.content["config"]
    stage = str(cfg["stage"])
    if stage == "keys":
        key = ChannelKey(party.name)
        context.state[CONFIG_STATE] = ConfigRecord({"channel": key.private_bytes()})
        context.state[STATE_KEY] = ArrayRecord({})
        reply = {"channel-key": key.public_bytes, "width": int(party.X.shape[1])}
        if job.scenario.privacy.triples == "paillier":
            reply["paillier-n"] = hp.new_party_key(context, job.scenario.privacy.key_bits)
        return config_reply(msg, reply)
    if stage == "setup":
        state = _cfg(context)
        index = int(cfg["index"])
        for k in ("names", "peer-keys", "widths"):
            state[k] = cfg[k]
        state["run-tag"] = cfg["run-tag"]
        state["index"] = index
        widths = [int(w) for w in cfg["widths"]]
        arrays = {"w": np.zeros(widths[index], dtype=np.uint64)}
        if index == 1:  # the partner of the bank's weights
            arrays["wp"] = np.zeros(widths[BANK], dtype=np.uint64)
        if "sealed-seed" in cfg:  # dealer mode
            key = ChannelKey.from_private_bytes(party.name, state["channel"])
            seed = key.open(DEALER_NAME, cfg["dealer-key"], cfg["sealed-seed"])
            arrays["seed"] = np.frombuffer(seed, dtype=np.uint8)
        _keep(context, **arrays)
        reply: dict = {"ok": 1}
        if "bank-paillier-n" in cfg:
            state["bank-paillier-n"] = cfg["bank-paillier-n"]
            if index == 1:
                reply["enc-input"] = side(context).encrypt_own(np.zeros(widths[BANK], np.uint64))
        return config_reply(msg, reply)
    raise ProtocolError(f"{party.name}: unknown stage {stage!r}")


# --- one batch -------------------------------------------------------------------------------


class BatchView:
    """What a party works with in one message: its index, every party's widths, the
    pass, the batch's rows of its own (z-scored, fixed-point) features and its PRG."""

    def __init__(self, job: DataPartyJob, party: PartyData, msg: Message, context: Context):
        cfg = msg.content["config"]
        state = _cfg(context)
        self.cfg = cfg
        self.index = int(state["index"])
        self.widths = [int(w) for w in state["widths"]]
        self.names = list(state["names"])
        self.peer_keys = list(state["peer-keys"])
        self.pass_id, self.batch = int(cfg["pass"]), int(cfg["batch"])
        self.train = bool(cfg["train"])
        split = str(cfg["split"])
        idx = context.state[ROWS_KEY][split].numpy()[np.asarray(cfg["rows"], dtype=np.int64)]
        self.F = standardised_rows(job, party, idx, context)
        self.X = encode_features(self.F)
        self.rows = self.X.shape[0]
        self.arrays = _arrays(context)
        self.paillier = job.scenario.privacy.triples == "paillier"
        self.prg = None if self.paillier else Prg(self.arrays["seed"].tobytes())
        self.key = ChannelKey.from_private_bytes(party.name, state["channel"])
        self.inputs = msg.content.array_records.get("ss", ArrayRecord({}))
        s = job.scenario
        self.frac_bits = s.privacy.frac_bits
        self.constants = StepConstants(
            s.privacy.frac_bits, self.rows, s.model.learning_rate, s.model.l2
        )

    def ring(self, name: str, shape=None) -> np.ndarray:
        return ring_from_bytes(self.inputs[name].numpy(), shape)

    def corrections(self) -> dict[ProductKey, np.ndarray]:
        flat = self.arrays["corr"]
        at = int(self.cfg["corr-at"])
        return {
            k: flat[at + sl.start : at + sl.stop]
            for k, sl in correction_slices(self.widths, self.rows, self.train, self.index).items()
        }

    def zo(self, key: ProductKey) -> np.ndarray:
        size = key.out_size(self.rows, self.widths[key.owner])
        return owner_share(self.prg, key, self.pass_id, self.batch, size)

    def v(self, key: ProductKey) -> np.ndarray:
        size = key.in_size(self.rows, self.widths[key.owner])
        return holder_pad(self.prg, key, self.pass_id, self.batch, size)


def _forward(job: DataPartyJob, party: PartyData, msg: Message, context: Context, side) -> Message:
    """Step 1: the party's share of z, and what the others need of it for the products
    (its opened E, its opened f's, its sealed half for data party 1)."""
    b = BatchView(job, party, msg, context)
    if "sealed" in b.cfg:  # the pass's corrections, from the dealer through the bank
        opened = b.key.open(DEALER_NAME, b.peer_keys[-1], b.cfg["sealed"])
        b.arrays["corr"] = ring_from_bytes(np.frombuffer(opened, dtype=np.uint8))
        _keep(context, corr=b.arrays["corr"])
    if b.paillier:
        out, cfg, kept = hp.party_forward(b, side(context), b.F)
        _keep(context, **kept)
        return _arrays_reply(msg, out, cfg)
    i, out, sealed = b.index, {}, {}
    corr = b.corrections()
    U = owner_pad(b.prg, b.pass_id, b.batch, b.rows, b.widths[i])
    out["E"] = b.X - U
    mine = ProductKey("fwd", i, BANK)
    own = owner_half("fwd", b.X, b.ring("f"), b.zo(mine), b.arrays["w"])
    z = truncate(own, FEATURE_FRAC_BITS, 0)
    E0 = b.ring("E0", (b.rows, b.widths[BANK])) if "E0" in b.inputs else None
    if i == 1:  # holder of the bank's weights' share: its half of X_0 · ⟨w_0⟩_1
        key = ProductKey("fwd", BANK, 1)
        v = b.v(key)
        z = z + truncate(holder_half("fwd", E0, v, corr[key]), FEATURE_FRAC_BITS, 1)
        out["f-up"] = b.arrays["wp"] - v
    if not b.train:  # a prediction pass: its share of z, summed at data party 1
        if len(b.widths) == 2:
            out["score-share"] = z
        elif i == 1:
            _keep(context, score=z)
        else:
            sealed["sealed"] = b.key.seal(b.names[1], b.peer_keys[1], ring_bytes(z).tobytes())
        return _arrays_reply(msg, out, sealed)
    for o in range(len(b.widths)):  # the backward products where it holds ⟨d4⟩_i
        if o == i:
            continue
        key = ProductKey("bwd", o, i)
        v = b.v(key)
        out[f"f{o}"] = z - v
        if o == BANK:
            half = holder_half("bwd", E0, v, corr[key])
            if i == 1:
                b.arrays["held"] = half
            else:  # for data party 1, the partner of the bank's weights: sealed
                sealed["sealed"] = b.key.seal(
                    b.names[1], b.peer_keys[1], ring_bytes(half).tobytes()
                )
    _keep(context, delta=z, **({"held": b.arrays["held"]} if i == 1 else {}))
    return _arrays_reply(msg, out, sealed)


def _backward(job: DataPartyJob, party: PartyData, msg: Message, context: Context, side) -> Message:
    """Step 2: the party's share of its gradient (and, for data party 1, its share of
    the bank's), the updates, and its halves of the other data parties' products."""
    b = BatchView(job, party, msg, context)
    if b.paillier:
        out, cfg, kept = hp.party_backward(b, side(context), b.F)
        _keep(context, **kept)
        return _arrays_reply(msg, out, cfg)
    i, parties = b.index, len(b.widths)
    corr = b.corrections()
    delta = b.arrays["delta"]
    G = ring_matmul(b.X.T, delta)
    for h in range(parties):
        if h != i:
            G = G + owner_half("bwd", b.X, b.ring(f"f{h}"), b.zo(ProductKey("bwd", i, h)))
    w = updated_share(b.arrays["w"], G, 0, b.constants, FEATURE_FRAC_BITS, 1)
    out = {}
    for m in range(1, parties):  # its halves of the other data parties' products
        if m != i:
            key = ProductKey("bwd", m, i)
            E = b.ring(f"E{m}", (b.rows, b.widths[m]))
            out[f"h{m}"] = holder_half("bwd", E, b.v(key), corr[key])
    kept = {"w": w}
    if i == 1:  # the bank's gradient: its held half plus the others', sealed to it
        G0 = b.arrays["held"]
        for m, blob in enumerate(list(b.cfg.get("sealed-halves", [])), start=2):
            G0 = G0 + ring_from_bytes(
                np.frombuffer(b.key.open(b.names[m], b.peer_keys[m], blob), dtype=np.uint8)
            )
        kept["wp"] = updated_share(
            b.arrays["wp"], G0, 1, b.constants, FEATURE_FRAC_BITS, intercept_mask(b.widths[BANK])
        )
    _keep(context, **kept)
    return _arrays_reply(msg, out, {"ok": 1} if not out else {})


def _sum_scores(party: PartyData, msg: Message, context: Context) -> Message:
    """Data party 1 in a prediction pass with more data parties: its share of z plus
    theirs (sealed for it), one sum for the bank, which holds the other half of every
    party's product and so must not see a party's share alone."""
    state = _cfg(context)
    key = ChannelKey.from_private_bytes(party.name, state["channel"])
    names, keys = list(state["names"]), list(state["peer-keys"])
    total = _arrays(context)["score"]
    for m, blob in enumerate(list(msg.content["config"]["sealed-shares"]), start=2):
        total = total + ring_from_bytes(
            np.frombuffer(key.open(names[m], keys[m], blob), dtype=np.uint8)
        )
    return _arrays_reply(msg, {"score-share": total}, {})


def _reveal(job: DataPartyJob, party: PartyData, msg: Message, context: Context) -> Message:
    """reveal = "own": the bank's share of this party's weights arrives; data party 1
    answers with its share of the bank's. The party keeps its weights as its part of the
    model (for scoring applicants later), with the fixed-point encoding of its features."""
    arrays = _arrays(context)
    incoming = ring_from_bytes(msg.content["ss"]["weight-share"].numpy())
    weights = arrays["w"] + incoming
    _keep(context, weights=weights)
    if job.model_dir is not None:
        w = decode(weights, job.scenario.privacy.frac_bits)
        keep_model_part(job, party, w, context, (FEATURE_CLIP, FEATURE_FRAC_BITS))
    out = {"weight-share": arrays["wp"]} if "wp" in arrays else {}
    return _arrays_reply(msg, out, {"ok": 1} if not out else {})


def _arrays_reply(msg: Message, arrays: dict[str, np.ndarray], config: dict) -> Message:
    return Message(ring_content(config, arrays), reply_to=msg)


__all__ = ["BatchView", "make_sharing_party_app"]
