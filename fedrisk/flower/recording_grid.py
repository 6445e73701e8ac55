"""A Grid wrapper that writes the transcript: every message that crosses a party boundary.

Every message between the aggregator and a party passes through the ``Grid`` the
ServerApp is given, whatever the engine, so recording there (rather than inside one
strategy) also catches messages a strategy does not know about, such as the four
stages of SecAgg+. A *classifier* per aggregation mode says what each message is and
how it is protected; whether its receiver can read it is then derived from the payload
as it crossed (:func:`readable_as_crossed`): plaintext numbers are readable whatever the
classifier says, a ciphertext only by a holder of its key.

Party names come from a ``query.identify`` handshake at the start of the run (answered
by :func:`identify_mod` on every ClientApp), so the transcript names banks, not the
engine's node ids.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from flwr.app import ConfigRecord, Message, RecordDict
from flwr.common.secure_aggregation.secaggplus_constants import Key
from flwr.serverapp import Grid
from flwr.supercore.run import Run

from fedrisk.errors import ProtocolError, QuorumError
from fedrisk.flower.faults import DROPPED, is_lost
from fedrisk.flower.transcript import SERVER, Transcript, TranscriptEntry, message_bytes

IDENTIFY = "query.identify"

# (message, to_server) -> (what, protection, readable_by_receiver)
Classifier = Callable[[Message, bool], tuple[str, str, bool]]


def identity_reply(msg: Message, party: str) -> Message:
    return Message(RecordDict({"identity": ConfigRecord({"party": party})}), reply_to=msg)


def identify_mod(party_name: Callable[[int], str]):
    """A Flower client mod answering the identify handshake, for ClientApps built from a
    ``client_fn`` (whose mods see every message). Apps with registered handlers use
    ``@app.query("identify")`` instead, since their mods wrap only registered handlers."""

    def mod(msg: Message, context, call_next) -> Message:
        if msg.metadata.message_type == IDENTIFY:
            return identity_reply(msg, party_name(int(context.node_config["partition-id"])))
        return call_next(msg, context)

    return mod


# Integer lists that say where things go or which rounds/banks/rows they concern (node
# ids, rounds, share indices, batch positions), not what a party holds.
ROUTING_LISTS = frozenset({
    Key.DESTINATION_LIST, Key.SOURCE_LIST, Key.NODE_ID_LIST, Key.ACTIVE_NODE_ID_LIST,
    Key.DEAD_NODE_ID_LIST, "aggregate-rounds", "contributors", "partial-banks", "rows",
})  # fmt: skip


def carries_plaintext_numbers(msg: Message) -> bool:
    """Whether the payload holds numbers anyone can read: a numeric array (uint8 arrays
    are byte blobs, e.g. ciphertexts), a metric value, a float in a config record, or a
    list of integers in one (a fixed-point vector; single integers are protocol metadata
    such as a round or a share index). Bytes are taken for what the classifier says they
    are: a float vector serialised to bytes is not detected."""
    content = msg.content
    for record in content.array_records.values():
        if any(array.dtype != "uint8" for array in record.values()):
            return True
    if any(len(record) for record in content.metric_records.values()):
        return True
    for record in content.config_records.values():
        for key, value in record.items():
            items = value if isinstance(value, list) else [value]
            if any(isinstance(v, float) for v in items):
                return True
            if (
                key not in ROUTING_LISTS
                and isinstance(value, list)
                and len(value) > 1
                and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            ):
                return True
    return False


def readable_as_crossed(
    msg: Message, protection: str, readable: bool, holds_key: bool
) -> tuple[str, bool]:
    """(protection, readable_by_receiver) from the payload as it crossed: plaintext
    numbers make it readable (overriding a classifier that calls a field masked or
    encrypted); a ciphertext is readable iff the receiver holds its key; a mask or share
    keeps the classifier's word (it knows who holds the mask)."""
    if carries_plaintext_numbers(msg):
        return "plaintext", True
    if protection == "ciphertext":
        return protection, holds_key
    return protection, readable


def _error_kind(msg: Message) -> str:
    """'dropped' (an injected dropout, before training), 'lost' (the transport lost
    the party) or 'error' (the party answered with an error of its own)."""
    if msg.error.code == DROPPED:
        return "dropped"
    return "lost" if is_lost(msg) else "error"


def message_round(msg: Message) -> int:
    """The federated round a message belongs to (0 for set-up messages)."""
    if msg.metadata.group_id.isdigit():
        return int(msg.metadata.group_id)
    if msg.has_content():
        for record in msg.content.config_records.values():
            if "server-round" in record:
                return int(record["server-round"])
    return 0


class RecordingGrid(Grid):
    """Delegates to ``inner`` and records each message, in a deterministic order."""

    def __init__(
        self,
        inner: Grid,
        transcript: Transcript,
        classify: Classifier,
        server_name: str = SERVER,
        key_holders: Iterable[str] = (),
    ) -> None:
        self.inner = inner
        # who holds the private key of the run's ciphertexts (the banks in Paillier
        # FedAvg, the bank in vertical runs); nobody else can read them
        self.key_holders = frozenset(key_holders)
        self.server_name = server_name  # "server" (aggregator), or the bank in vertical runs
        self.transcript = transcript
        self.classify = classify
        self.party_of: dict[int, str] = {}
        self._round_of: dict[str, int] = {}  # instruction message id -> round

    # --- identity -------------------------------------------------------------------
    def identify(
        self,
        expected: int,
        timeout: float = 120.0,
        *,
        quorum: int | None = None,
        reply_timeout: float | None = None,
    ) -> dict[int, str]:
        """Wait for ``expected`` nodes, then ask each which party it is (round 0).

        With a ``quorum`` the run may start without parties that never connected or
        were lost before answering (within ``reply_timeout``), as long as ``quorum``
        parties identified themselves; without one, every party must.
        """
        deadline = time.monotonic() + timeout
        while len(nodes := sorted(self.inner.get_node_ids())) < expected:
            if time.monotonic() > deadline:
                if quorum is not None and len(nodes) >= quorum:
                    break
                raise ProtocolError(
                    f"round 0: only {len(nodes)} of {expected} parties "
                    f"connected within {timeout:.0f} s"
                )
            time.sleep(0.05)
        msgs = [
            Message(RecordDict({"config": ConfigRecord({"server-round": 0})}), node, IDENTIFY)
            for node in nodes
        ]
        replies = list(self.inner.send_and_receive(msgs, timeout=reply_timeout))
        for reply in replies:
            if reply.has_error():
                if quorum is not None and is_lost(reply):
                    continue
                raise ProtocolError(
                    f"round 0: node {reply.metadata.src_node_id} did not "
                    f"identify itself: {reply.error.reason}"
                )
            self.party_of[reply.metadata.src_node_id] = str(reply.content["identity"]["party"])
        self._record(msgs, to_server=False)
        self._record(replies, to_server=True)
        need = expected if quorum is None else quorum
        if len(self.party_of) < need:
            raise QuorumError.too_few(
                0, f"{len(self.party_of)} of {expected} parties identified themselves", need
            )
        return self.party_of

    def name(self, node_id: int) -> str:
        return self.party_of.get(node_id, f"node-{node_id}")

    # --- Grid interface ---------------------------------------------------------------
    def set_run(self, run: Run) -> None:
        self.inner.set_run(run)

    @property
    def run(self) -> Run:
        return self.inner.run

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None):
        return self.inner.create_message(content, message_type, dst_node_id, group_id, ttl)

    def get_node_ids(self) -> Iterable[int]:
        return self.inner.get_node_ids()

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        messages = list(messages)
        self._record(messages, to_server=False)
        ids = list(self.inner.push_messages(messages))
        self._remember_rounds(messages)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        replies = list(self.inner.pull_messages(message_ids))
        self._record(replies, to_server=True)
        return replies

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        messages = list(messages)
        self._record(messages, to_server=False)
        replies = list(self.inner.send_and_receive(messages, timeout=timeout))
        self._remember_rounds(messages)
        self._record(replies, to_server=True)
        return replies

    def _remember_rounds(self, messages: list[Message]) -> None:
        # ids are assigned by the inner grid on send; replies point back to them
        for msg in messages:
            self._round_of[msg.metadata.message_id] = message_round(msg)

    # --- recording -----------------------------------------------------------------
    def _record(self, messages: list[Message], to_server: bool) -> None:
        rows = []
        for msg in messages:
            node = msg.metadata.src_node_id if to_server else msg.metadata.dst_node_id
            sender, receiver = (
                (self.name(node), self.server_name)
                if to_server
                else (self.server_name, self.name(node))
            )
            if not msg.has_content():
                what, protection, readable = _error_kind(msg), "plaintext", True
            elif msg.metadata.message_type == IDENTIFY:
                what, protection, readable = "identity", "plaintext", True
            else:
                what, protection, readable = self.classify(msg, to_server)
                protection, readable = readable_as_crossed(
                    msg, protection, readable, receiver in self.key_holders
                )
            rnd = (
                self._round_of.pop(msg.metadata.reply_to_message_id, 0)
                if to_server
                else message_round(msg)
            )
            rows.append(
                TranscriptEntry(
                    rnd, sender, receiver, what, message_bytes(msg), protection, readable
                )
            )
        # engines deliver replies in any order; the transcript must not depend on it
        for row in sorted(rows, key=lambda r: (r.sender, r.receiver)):
            self.transcript.add(row)
