"""The dealer (``privacy.triples = "dealer"``): a party with no data that deals the
correlated randomness of the secret-sharing protocol, the semi-honest helper of
SecretFlow's semi2k. It must not collude with anyone: with the seed of a party it could
strip that party's one-time pads (README, ``privacy.who_learns_what``).

It gives every party a 32-byte seed from its own secret, sealed for that party (the
bank relays it); each party expands its pads U, v and its shares of U·v from its seed
(:mod:`fedrisk.crypto.sharing`). Per pass the dealer, who can expand every seed, sends
each holder of a product the correction U·v − ⟨U·v⟩_owner, again sealed for data
parties. It learns the batch sizes and the parties' column counts, nothing else.
"""

from __future__ import annotations

import numpy as np
from flwr.app import ConfigRecord, Context, Message

from fedrisk.crypto.channel import ChannelKey
from fedrisk.crypto.sharing import Prg, holder_correction, owner_pad, ring_bytes
from fedrisk.vertical.protocol import config_reply
from fedrisk.vertical.sharing.protocol import (
    BANK,
    DEALER_NAME,
    DealerJob,
    correction_slices,
    ring_content,
)

_STATE = "fedrisk.dealer"


def dealer_seed(job: DealerJob, party: int) -> bytes:
    """The seed the dealer deals party ``party``, from the dealer's own secret."""
    return job.secret.digest("sharing/seed", job.tag, party)


def dealer_reply(job: DealerJob, msg: Message, context: Context) -> Message:
    """The dealer's answer to the bank's ``query.sharing`` messages."""
    cfg = msg.content["config"]
    stage = str(cfg["stage"])
    if stage == "keys":
        key = ChannelKey(DEALER_NAME)
        context.state[_STATE] = ConfigRecord({"channel": key.private_bytes()})
        return config_reply(msg, {"channel-key": key.public_bytes})
    state = context.state[_STATE]
    key = ChannelKey.from_private_bytes(DEALER_NAME, state["channel"])
    if stage == "dealer-setup":
        names, keys = list(cfg["names"]), list(cfg["peer-keys"])
        state["names"], state["peer-keys"] = names, keys
        sealed = [key.seal(names[i], keys[i], dealer_seed(job, i)) for i in range(len(names))]
        return config_reply(msg, {"sealed-seeds": sealed})
    if stage == "dealer-pass":
        widths = [int(w) for w in cfg["widths"]]
        rows = [int(r) for r in cfg["batch-rows"]]
        blocks = pass_corrections(job, widths, int(cfg["pass"]), rows, bool(cfg["train"]))
        names, keys = list(state["names"]), list(state["peer-keys"])
        sealed = [
            key.seal(names[h], keys[h], ring_bytes(blocks[h]).tobytes())
            for h in range(1, len(widths))
        ]
        content = ring_content({"dealt": 1, "sealed": sealed}, {"corrections": blocks[BANK]})
        return Message(content, reply_to=msg)
    raise ValueError(f"dealer: unknown stage {stage!r}")


def pass_corrections(
    job: DealerJob, widths: list[int], pass_id: int, batch_rows: list[int], train: bool
) -> list[np.ndarray]:
    """Every holder's corrections for one pass, flat, blocks in batch order and products
    in their order within a block (:func:`correction_slices`)."""
    parties = len(widths)
    prgs = [Prg(dealer_seed(job, i)) for i in range(parties)]
    out: list[list[np.ndarray]] = [[] for _ in range(parties)]
    for batch, rows in enumerate(batch_rows):
        pads = {}
        for h in range(parties):
            for key in correction_slices(widths, rows, train, h):
                o = key.owner
                if o not in pads:  # one U per owner and batch, shared by its products
                    pads[o] = owner_pad(prgs[o], pass_id, batch, rows, widths[o])
                out[h].append(
                    holder_correction(
                        prgs[o], prgs[h], key, pass_id, batch, rows, widths[o], U=pads[o]
                    )
                )
    empty = np.zeros(0, dtype=np.uint64)
    return [np.concatenate(parts) if parts else empty for parts in out]


__all__ = ["dealer_reply", "dealer_seed", "pass_corrections"]
