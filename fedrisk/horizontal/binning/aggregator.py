"""The aggregator's ServerApp for federated binning (:mod:`.protocol` has the exchange).

It asks the banks, in job order, and sums what they send: count arrays under ``plain``
(it then computes the cuts and the tables itself), ciphertexts under ``paillier`` (it
multiplies them and relays the encrypted sums; it has the public key only). Every
message goes through a :class:`~fedrisk.flower.recording_grid.RecordingGrid`.
"""

from __future__ import annotations

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.serverapp import Grid, ServerApp

from fedrisk.crypto.paillier import CiphertextError, VectorCipher
from fedrisk.errors import ProtocolError
from fedrisk.flower.exchange import exchange
from fedrisk.flower.recording_grid import RecordingGrid
from fedrisk.flower.transcript import SERVER
from fedrisk.horizontal.binning.protocol import (
    CATEGORIES,
    CIPHERTEXTS,
    QUERY,
    AggregatorJob,
    AggregatorOutcome,
    Schema,
    bins_per_column,
    classify_binning,
    first_cuts,
    woe_tables,
)
from fedrisk.models.binning import GRID_CELLS


def make_aggregator_app(job: AggregatorJob, outcome: AggregatorOutcome) -> ServerApp:
    """The aggregator's ServerApp: the recording grid, the identify handshake, then the
    binning exchange; an error is kept in ``outcome`` for the harness."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        # under paillier the banks hold the key: ciphertexts sent to them are readable
        holders = job.bank_names if job.aggregation == "paillier" else ()
        grid = RecordingGrid(
            grid, outcome.transcript, classify_binning, SERVER, key_holders=holders
        )
        try:
            grid.identify(len(job.bank_names))
            nodes = {name: node for node, name in grid.party_of.items()}
            absent = [n for n in job.bank_names if n not in nodes]
            if absent:
                raise ProtocolError(f"round 0: {', '.join(absent)} did not identify")
            run_binning(job, grid, [nodes[n] for n in job.bank_names], outcome)
        except Exception as exc:
            outcome.error = exc
            raise

    return app


def ask(
    grid: RecordingGrid,
    nodes: list[int],
    stage: str,
    config: dict,
    arrays: dict[str, np.ndarray] | None = None,
) -> list[Message]:
    """One request per bank (the same content for each), the replies in ``nodes`` order;
    a missing or failed reply stops the run."""
    content = {"config": ConfigRecord({**config, "stage": stage, "server-round": 0})}
    if arrays is not None:
        key = "cuts" if stage == "counts" else "summed"
        content[key] = ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in arrays.items()})
    contents = [RecordDict(dict(content)) for _ in nodes]
    return exchange(grid, nodes, contents, QUERY, f"binning {stage}", "round 0")


def agreed_schema(names: tuple[str, ...], replies: list[Message]) -> Schema:
    """The banks' common columns; one line naming the first bank that differs."""
    schemas = [
        Schema(
            tuple(str(c) for c in r.content["config"]["columns"]),
            tuple(str(k) for k in r.content["config"]["kinds"]),
        )
        for r in replies
    ]
    for name, schema in zip(names[1:], schemas[1:]):
        if schema != schemas[0]:
            raise ProtocolError(
                f"round 0: {name}'s columns [{schema.describe()}] differ from {names[0]}'s "
                f"[{schemas[0].describe()}]; every bank must hold the same columns, in order"
            )
    if not schemas[0].names:
        raise ProtocolError("round 0: the banks hold no column to bin")
    return schemas[0]


def category_union(schema: Schema, replies: list[Message]) -> dict[int, tuple[str, ...]]:
    """Per text column the sorted union of the banks' category values (code-point order,
    as numpy's ``unique``, so the pooled computation sees the same order)."""
    return {
        j: tuple(sorted({str(v) for r in replies for v in r.content["config"][f"{CATEGORIES}{j}"]}))
        for j in schema.text
    }


def plain_sum(
    names: tuple[str, ...], replies: list[Message], record: str, shapes: dict[str, tuple]
) -> dict[str, np.ndarray]:
    """Element-wise sums over the banks of the arrays in each reply's ``record``."""
    total = {k: np.zeros(shape, dtype=np.int64) for k, shape in shapes.items()}
    for name, r in zip(names, replies):
        if record not in r.content.array_records:
            raise ProtocolError(f"round 0: {name} sent no {record} in the clear")
        arrays = r.content[record]
        for k, shape in shapes.items():
            a = arrays[k].numpy() if k in arrays else None
            if a is None or a.shape != shape or a.dtype.kind not in "iu" or np.any(a < 0):
                got = "nothing" if a is None else f"{a.dtype} {a.shape}"
                raise ProtocolError(
                    f"round 0: {name}'s {record} {k} must be non-negative integers of "
                    f"shape {shape}, got {got}"
                )
            total[k] += a.astype(np.int64)
    return total


def encrypted_sum(
    cipher: VectorCipher,
    names: tuple[str, ...],
    replies: list[Message],
    expected: int | None,
    what: str,
    outcome: AggregatorOutcome,
) -> list[bytes]:
    """The product of the banks' ciphertexts (the encrypted sum of their vectors), in
    bank order; ``expected`` ciphertexts each (None: as many as the first bank sent)."""
    vectors = []
    for name, r in zip(names, replies):
        blobs = list(r.content["config"].get(CIPHERTEXTS, []))
        if expected is None:
            expected = len(blobs)
        try:
            vectors.append(cipher.from_bytes(blobs, expected))
        except CiphertextError as exc:
            raise ProtocolError(f"round 0: {name}'s {what}: {exc}") from None
        outcome.ciphertexts += len(blobs)
    return cipher.to_bytes(cipher.add(*vectors))


def run_binning(
    job: AggregatorJob, grid: RecordingGrid, nodes: list[int], outcome: AggregatorOutcome
) -> None:
    names, params = job.bank_names, job.params
    encrypted = job.aggregation == "paillier"
    cipher = VectorCipher(job.public_key) if encrypted else None

    # 1. columns and category values (plaintext), checked before any count leaves a bank
    replies = ask(grid, nodes, "schema", {})
    schema = outcome.schema = agreed_schema(names, replies)
    categories = outcome.categories = category_union(schema, replies)

    # 2. the union of the category values out; unlabelled grid histograms back
    union = {f"{CATEGORIES}{j}": list(v) for j, v in categories.items()}
    replies = ask(grid, nodes, "grid", union)
    grid_shape = (len(schema.numeric), GRID_CELLS + 1)
    if encrypted:
        expected = job.packing.n_ciphertexts(grid_shape[0] * grid_shape[1])
        grid_sum = encrypted_sum(cipher, names, replies, expected, "grid counts", outcome)
        outcome.encrypted_grid = grid_sum
        # 3. the encrypted sum out (the banks compute the cuts); labelled counts back
        replies = ask(grid, nodes, "counts", {CIPHERTEXTS: grid_sum})
        counts_sum = encrypted_sum(cipher, names, replies, None, "bin counts", outcome)
        outcome.encrypted_counts = counts_sum
        # 4. the encrypted sum out; the banks build the tables
        ask(grid, nodes, "finish", {CIPHERTEXTS: counts_sum})
        return

    summed_grid = plain_sum(names, replies, "grid", {"grid": grid_shape})["grid"]
    cuts = first_cuts(params, schema, summed_grid)
    # 3. the cuts out; labelled counts back
    replies = ask(grid, nodes, "counts", {}, {f"c{j}": c for j, c in cuts.items()})
    bins = bins_per_column(schema, cuts, categories)
    shapes = {f"b{j}": (2, b) for j, b in enumerate(bins)}
    summed = plain_sum(names, replies, "counts", shapes)
    # 4. the summed counts out (every bank builds the same tables); the tables here too
    ask(grid, nodes, "finish", {}, summed)
    outcome.tables = woe_tables(
        params, schema, cuts, categories, [summed[f"b{j}"] for j in range(len(bins))]
    )


__all__ = ["ask", "make_aggregator_app", "run_binning"]
