"""The bank's side of the anonymous query: a ServerApp that fetches each data party's
partial score of every applicant by OPRF + keyword PIR
(:mod:`fedrisk.vertical.query.protocol`)."""

from __future__ import annotations

import os
import time
from itertools import count

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, RecordDict
from flwr.serverapp import Grid, ServerApp

from fedrisk.crypto.keyword import WAYS, candidate_buckets, open_records
from fedrisk.crypto.oprf import OprfBlinding
from fedrisk.crypto.pir import LWE_DIMENSION, PirClient, PirLayout
from fedrisk.errors import ProtocolError
from fedrisk.flower.exchange import exchange
from fedrisk.flower.recorder import ServerRecorder
from fedrisk.flower.recording_grid import RecordingGrid
from fedrisk.vertical.query.protocol import (
    QUERY,
    ScoringBankJob,
    ScoringOutcome,
    bytes_as_words,
    classify_query,
    words_as_bytes,
)

__all__ = ["make_query_bank_app"]

_ROUND = 1  # a scoring session is one round of the transcript


def make_query_bank_app(
    job: ScoringBankJob, recorder: ServerRecorder, outcome: ScoringOutcome
) -> ServerApp:
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        # the bank alone holds the LWE secrets its queries and answers are under
        grid = RecordingGrid(
            grid, recorder.transcript, classify_query, job.name, key_holders=[job.name]
        )
        try:
            grid.identify(len(job.party_names))
            nodes = {name: node for node, name in grid.party_of.items()}
            _score(job, grid, [nodes[n] for n in job.party_names], outcome, recorder)
        except Exception as exc:
            recorder.error = exc
            raise

    return app


def _ask(
    grid: RecordingGrid, nodes: list[int], contents: list[RecordDict], what: str, n_queries: int
):
    for c in contents:
        c["config"]["server-round"] = _ROUND
        c["config"]["queries"] = n_queries
    return exchange(grid, nodes, contents, QUERY, what, "scoring")


def _score(
    job: ScoringBankJob,
    grid: RecordingGrid,
    nodes: list[int],
    outcome: ScoringOutcome,
    recorder: ServerRecorder,
) -> None:
    ids = list(job.applicant_ids)
    t0 = time.perf_counter()
    # the session's size (the party sees it in every later message anyway) lets it lay
    # its table out for that many queries
    n_queries = WAYS * len(ids)  # PIR queries in this session
    setups = _ask(
        grid,
        nodes,
        [RecordDict({"config": ConfigRecord({"stage": "setup"})}) for _ in nodes],
        "set-up",
        n_queries,
    )
    outcome.seconds["setup"] = time.perf_counter() - t0
    recorder.on_step(1, 0.25)
    # the bank's draws for this session: its own secret keyed with fresh OS entropy, so
    # two sessions never share blinding scalars or LWE secrets (with a secrets file
    # too: the differences of repeated queries would give the asked columns away)
    draws = job.secret.session(os.urandom(32))
    counter = count()
    blindings = [
        OprfBlinding(ids, lambda k=k: draws.digest("query/blind", k, next(counter)))
        for k in range(len(nodes))
    ]
    t0 = time.perf_counter()
    replies = _ask(
        grid,
        nodes,
        [
            RecordDict({"config": ConfigRecord({"stage": "oprf", "blinded": b.blinded()})})
            for b in blindings
        ],
        "oblivious PRF",
        n_queries,
    )
    keys = [b.outputs(list(r.content["config"]["evaluated"])) for b, r in zip(blindings, replies)]
    outcome.seconds["oprf"] = time.perf_counter() - t0
    recorder.on_step(1, 0.5)
    # PIR: every applicant's WAYS buckets at every party, hit or not
    clients, buckets, kept, contents = [], [], [], []
    t0 = time.perf_counter()
    for k, reply in enumerate(setups):
        cfg = reply.content["config"]
        layout = PirLayout(
            int(cfg["buckets"]), int(cfg["record-bytes"]), int(cfg["rows"]), int(cfg["columns"])
        )
        if layout != PirLayout.of(layout.records, layout.record_bytes, n_queries):
            raise ProtocolError(f"{job.party_names[k]}: a table layout fedrisk does not make")
        client = PirClient(
            layout, bytes(cfg["pir-seed"]), bytes_as_words(reply.content["pir"]["hint"].numpy())
        )
        b = candidate_buckets(keys[k], layout.records, bytes(cfg["table-seed"])).reshape(-1)
        queries, keep = client.query(layout.column_of(b), draws.digest("query/pir", k))
        clients.append(client)
        buckets.append(b)
        kept.append(keep)
        contents.append(
            RecordDict(
                {
                    "config": ConfigRecord({"stage": "pir"}),
                    "pir": ArrayRecord({"queries": Array(words_as_bytes(queries))}),
                }
            )
        )
        outcome.layout[job.party_names[k]] = {
            "buckets": layout.records,
            "record_bytes": layout.record_bytes,
            "rows": layout.rows,
            "columns": layout.columns,
            "hint_bytes": int(layout.rows) * LWE_DIMENSION * 4,
        }
    outcome.seconds["query"] = time.perf_counter() - t0
    recorder.on_step(1, 0.75)
    t0 = time.perf_counter()
    answers = _ask(grid, nodes, contents, "private information retrieval", n_queries)
    outcome.seconds["answer"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for k, reply in enumerate(answers):
        layout = clients[k].layout
        columns = clients[k].decode(
            bytes_as_words(reply.content["pir"]["answers"].numpy()), kept[k]
        )
        starts = (buckets[k] % layout.per_column) * layout.record_bytes
        records = columns[
            np.arange(len(starts))[:, None], starts[:, None] + np.arange(layout.record_bytes)
        ]
        opened, payload = open_records([key for key in keys[k] for _ in range(WAYS)], records)
        opened = opened.reshape(len(ids), WAYS)
        hit = opened.any(axis=1)
        first = opened.argmax(axis=1)
        rows = payload.reshape(len(ids), WAYS, -1)[np.arange(len(ids)), first]
        outcome.found[job.party_names[k]] = hit
        outcome.payloads[job.party_names[k]] = np.where(hit[:, None], rows, 0).astype(np.uint8)
    outcome.seconds["decode"] = time.perf_counter() - t0
    recorder.on_step(1, 1.0)
