"""The entry point: federated WOE binning of the banks' training rows, on real Flower apps.

The harness plays every party here: it builds the banks' ClientApp and the aggregator's
ServerApp, runs them on the chosen engine and returns the tables the banks hold. On the
in-process engine bank 0 hands its tables over directly; when the banks ran elsewhere
(Simulation Engine), the banks' side of the harness repeats bank 0's computation from
the encrypted sums the aggregator relayed (``paillier``, with the banks' key) or takes
the aggregator's tables (``plain``, where it computed them itself).
"""

from __future__ import annotations

from fedrisk.crypto.paillier import BankKeys, VectorCipher, VectorDecryptor
from fedrisk.flower.engines import quiet_flower, run_engine
from fedrisk.horizontal.binning.aggregator import make_aggregator_app
from fedrisk.horizontal.binning.bank import decrypted_counts, decrypted_cuts, make_bank_app
from fedrisk.horizontal.binning.protocol import (
    AGGREGATIONS,
    AggregatorJob,
    AggregatorOutcome,
    BankRows,
    BanksJob,
    BanksOutcome,
    BinningOutcome,
    bins_per_column,
    woe_tables,
)
from fedrisk.horizontal.layout import public_max_weight
from fedrisk.models.binning import BinningParams, WoeTable


def federated_binning(
    params: BinningParams,
    banks: list[BankRows],
    aggregation: str,
    keys: BankKeys | None,
    engine: str = "inprocess",
    client_mods: list | None = None,
) -> BinningOutcome:
    """Bin every column of the banks' rows federatedly; the tables equal the pooled ones.

    ``aggregation``: "plain" (the aggregator reads and sums the banks' counts) or
    "paillier" (``keys``: the banks' shared key pair; the aggregator gets the public key
    only). ``client_mods``: extra Flower mods on the banks' ClientApp (tests read what
    crosses with them). Raises ValueError on bad arguments, ProtocolError when the banks disagree
    (e.g. different columns) or a party breaks the protocol.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(
            f"aggregation must be one of {', '.join(AGGREGATIONS)}, not {aggregation!r}"
        )
    if not banks:
        raise ValueError("federated binning needs at least one bank")
    names = tuple(b.name for b in banks)
    if len(set(names)) != len(names):
        raise ValueError(f"bank names must be distinct, got {list(names)}")
    public_key = private_key = None
    if aggregation == "paillier":
        if keys is None or keys.private_key is None:
            raise ValueError(
                "paillier binning needs the banks' shared key pair (a threshold key is not "
                "supported for binning)"
            )
        public_key, private_key = keys.public_key, keys.private_key
    # a public bound on a bank's rows (its order of magnitude only): the packing headroom
    row_bound = public_max_weight(max(len(b.y) for b in banks))
    banks_job = BanksJob(params, tuple(banks), aggregation, public_key, private_key, row_bound)
    aggregator_job = AggregatorJob(params, names, aggregation, public_key, row_bound)
    aggregator, banks_side = AggregatorOutcome(), BanksOutcome()
    quiet_flower()
    seconds = run_engine(
        engine,
        make_aggregator_app(aggregator_job, aggregator),
        make_bank_app(banks_job, banks_side, client_mods),
        len(banks),
    )
    if aggregator.error is not None:
        raise aggregator.error
    tables = banks_side.tables.get(names[0])
    if tables is None:
        tables = aggregator.tables if aggregation == "plain" else replay_bank(banks_job, aggregator)
    if tables is None:
        raise RuntimeError(
            "the binning exchange ended before the banks held their tables (the engine "
            "stopped early; rerun with --verbose for Flower's log)"
        )
    return BinningOutcome(
        tables,
        aggregator.transcript,
        seconds,
        aggregator.ciphertexts,
        aggregator.transcript.total_bytes,
    )


def replay_bank(job: BanksJob, aggregator: AggregatorOutcome) -> list[WoeTable] | None:
    """Bank 0's tables, computed as bank 0 computed them, from the encrypted sums the
    aggregator relayed (the banks' side of the harness holds their key)."""
    if aggregator.encrypted_grid is None or aggregator.encrypted_counts is None:
        return None
    assert job.public_key is not None and job.private_key is not None
    schema = job.banks[0].schema
    cipher, decryptor = VectorCipher(job.public_key), VectorDecryptor(job.private_key)
    cuts = decrypted_cuts(
        job.params, job.packing, schema, cipher, decryptor, aggregator.encrypted_grid
    )
    bins = bins_per_column(schema, cuts, aggregator.categories)
    summed = decrypted_counts(job.packing, bins, cipher, decryptor, aggregator.encrypted_counts)
    return woe_tables(job.params, schema, cuts, aggregator.categories, summed)


__all__ = ["BankRows", "BinningOutcome", "federated_binning", "replay_bank"]
