"""A data party's side of the anonymous query: build the sealed PIR table, evaluate the
OPRF on blinded points, answer PIR queries (:mod:`fedrisk.vertical.query.protocol`)."""

from __future__ import annotations

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
from fedrisk.vertical.party import party_index
from fedrisk.vertical.query.protocol import (
    ScoringParty,
    ScoringPartyJob,
    bytes_as_words,
    words_as_bytes,
)

__all__ = ["SealedTable", "build_table", "make_query_party_app"]

_PLACEMENT_TRIES = 20


class SealedTable:
    """The party's PIR server over its sealed cuckoo table, and what the bank may know
    of it (public seeds and sizes)."""

    def __init__(self, server: PirServer, table_seed: bytes) -> None:
        self.server = server
        self.table_seed = table_seed

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


def build_table(party: ScoringParty, queries: int = 1) -> SealedTable:
    """Seal every customer's payload under its OPRF value, place the records by cuckoo
    hashing (public hash seed), fill empty buckets with uniform bytes from the party's
    own secret, and lay the table out for SimplePIR for ``queries`` queries."""
    ids = [str(i) for i in party.ids]
    payload = party.side.payload(party.columns)
    sealed = seal_records(OprfKey(party.secret.digest("query/oprf-key")).outputs(ids), payload)
    buckets = bucket_count(len(ids))
    for attempt in range(_PLACEMENT_TRIES):
        table_seed = party.secret.digest("query/table-seed", attempt)  # public once sent
        where = place(candidate_buckets(ids, buckets, table_seed), buckets)
        if where is not None:
            break
    else:
        raise ProtocolError(f"{party.name}: cuckoo placement failed {_PLACEMENT_TRIES} times")
    record_bytes = CHECK_BYTES + payload.shape[1]
    filler = Prg(party.secret.digest("query/filler")).words(-(-buckets * record_bytes // 8), "fill")
    records = filler.view(np.uint8)[: buckets * record_bytes].reshape(buckets, record_bytes).copy()
    records[where] = sealed
    layout = PirLayout.of(buckets, record_bytes, queries)
    return SealedTable(
        PirServer(layout, records, party.secret.digest("query/pir-seed")), table_seed
    )


def make_query_party_app(job: ScoringPartyJob) -> ClientApp:
    """The data parties' ClientApp for a scoring session; node ``partition-id`` i serves
    ``job.parties[i]``. The sealed table lives in process memory (rebuilt if a fresh
    process takes over): it is large and a pure function of the party's data, part and
    secret."""
    app = ClientApp()
    tables: dict[tuple[int, int], SealedTable] = {}

    def table(k: int, queries: int) -> SealedTable:
        if (k, queries) not in tables:
            tables[k, queries] = build_table(job.parties[k], queries)
        return tables[k, queries]

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
            t = table(k, queries)
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
            key = OprfKey(job.parties[k].secret.digest("query/oprf-key"))
            evaluated = key.evaluate(list(msg.content["config"]["blinded"]))
            return Message(
                RecordDict({"config": ConfigRecord({"stage": "oprf", "evaluated": evaluated})}),
                reply_to=msg,
            )
        if stage == "pir":
            answers = table(k, queries).server.answer(
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
