"""A data party's side of the anonymous query: build the sealed PIR table, evaluate the
OPRF on blinded points, answer PIR queries (:mod:`fedrisk.vertical.query.protocol`)."""

from __future__ import annotations

import os

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp

from fedrisk.crypto.keyword import (
    CHECK_BYTES,
    bucket_count,
    candidate_buckets,
    place,
    seal_records,
)
from fedrisk.crypto.oprf import OprfKey
from fedrisk.crypto.pir import PirLayout, PirServer
from fedrisk.crypto.sharing import Prg
from fedrisk.errors import ProtocolError
from fedrisk.flower.recording_grid import identity_reply
from fedrisk.privacy.secrets import PartySecret
from fedrisk.vertical.party import party_index
from fedrisk.vertical.query.protocol import (
    ScoringParty,
    ScoringPartyJob,
    bytes_as_words,
    words_as_bytes,
)

__all__ = ["SealedTable", "build_table", "make_query_party_app"]

_PLACEMENT_TRIES = 20
_SESSION = "fedrisk.query-session"


class SealedTable:
    """The party's PIR server over its sealed cuckoo table, what the bank may know of it
    (public seeds and sizes), and the party's own knowledge: each customer's candidate
    buckets (its ids' order) and its session's OPRF key."""

    def __init__(
        self, server: PirServer, table_seed: bytes, candidates: np.ndarray, oprf: OprfKey
    ) -> None:
        self.server = server
        self.table_seed = table_seed
        self.candidates = candidates
        self.oprf = oprf

    def public(self) -> dict:
        layout = self.server.layout
        return {
            "table-seed": self.table_seed,
            "pir-seed": self.server.seed,
            "buckets": layout.records,
            "record-bytes": layout.record_bytes,
            "rows": layout.rows,
            "columns": layout.columns,
        }


def build_table(party: ScoringParty, session: PartySecret, queries: int = 1) -> SealedTable:
    """Seal every customer's payload under its OPRF value, place the records by cuckoo
    hashing of those values, fill empty buckets with uniform bytes, and lay the table
    out for SimplePIR for ``queries`` queries. ``session``: the party's secret for this
    session (its OPRF key, seeds and filler are never reused across sessions)."""
    ids = [str(i) for i in party.ids]
    payload = party.side.payload(party.columns)
    oprf = OprfKey(session.digest("query/oprf-key"))
    keys = oprf.outputs(ids)
    sealed = seal_records(keys, payload)
    buckets = bucket_count(len(ids))
    for attempt in range(_PLACEMENT_TRIES):
        table_seed = session.digest("query/table-seed", attempt)  # public once sent
        candidates = candidate_buckets(keys, buckets, table_seed)
        where = place(candidates, buckets)
        if where is not None:
            break
    else:
        raise ProtocolError(f"{party.name}: cuckoo placement failed {_PLACEMENT_TRIES} times")
    record_bytes = CHECK_BYTES + payload.shape[1]
    filler = Prg(session.digest("query/filler")).words(-(-buckets * record_bytes // 8), "fill")
    records = filler.view(np.uint8)[: buckets * record_bytes].reshape(buckets, record_bytes).copy()
    records[where] = sealed
    layout = PirLayout.of(buckets, record_bytes, queries)
    server = PirServer(layout, records, session.digest("query/pir-seed"))
    return SealedTable(server, table_seed, candidates, oprf)


def make_query_party_app(job: ScoringPartyJob) -> ClientApp:
    """The data parties' ClientApp for a scoring session; node ``partition-id`` i serves
    ``job.parties[i]``. The sealed table lives in process memory (rebuilt if a fresh
    process takes over): it is large and a pure function of the party's data, part,
    secret and the session's entropy."""
    app = ClientApp()
    tables: dict[tuple[int, int, bytes], SealedTable] = {}

    def table(k: int, queries: int, context: Context) -> SealedTable:
        # the session's entropy is the party's own OS draw, kept in its node state so a
        # fresh ClientApp process rebuilds the very same table
        if _SESSION not in context.state:
            context.state[_SESSION] = ConfigRecord({"entropy": os.urandom(32)})
        entropy = bytes(context.state[_SESSION]["entropy"])
        if (k, queries, entropy) not in tables:
            session = job.parties[k].secret.session(entropy)
            tables[k, queries, entropy] = build_table(job.parties[k], session, queries)
        return tables[k, queries, entropy]

    @app.query("identify")
    def identify(msg: Message, context: Context) -> Message:
        return identity_reply(msg, job.parties[party_index(context)].name)

    @app.query("anonymous")
    def answer(msg: Message, context: Context) -> Message:
        k = party_index(context)
        stage = str(msg.content["config"]["stage"])
        cfg = msg.content["config"]
        queries = int(cfg["queries"])  # the session's size, which the party learns anyway
        if stage == "setup":
            t = table(k, queries, context)
            return Message(
                RecordDict(
                    {
                        "config": ConfigRecord({"stage": "setup", **t.public()}),
                        "pir": ArrayRecord({"hint": Array(words_as_bytes(t.server.hint()))}),
                    }
                ),
                reply_to=msg,
            )
        if stage == "oprf":
            evaluated = table(k, queries, context).oprf.evaluate(list(cfg["blinded"]))
            return Message(
                RecordDict({"config": ConfigRecord({"stage": "oprf", "evaluated": evaluated})}),
                reply_to=msg,
            )
        if stage == "pir":
            answers = table(k, queries, context).server.answer(
                bytes_as_words(msg.content["pir"]["queries"].numpy())
            )
            return Message(
                RecordDict(
                    {
                        "config": ConfigRecord({"stage": "pir"}),
                        "pir": ArrayRecord({"answers": Array(words_as_bytes(answers))}),
                    }
                ),
                reply_to=msg,
            )
        raise ProtocolError(f"{job.parties[k].name}: unknown stage {stage!r}")

    return app
