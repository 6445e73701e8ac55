"""The banks' ClientApp for federated binning (:mod:`.protocol` has the exchange).

Node ``partition-id`` i serves ``job.banks[i]`` and reads no other bank's rows. What a
bank carries from one message to the next (the union of the category values, the cuts,
the summed counts) lives in its Flower ``Context.state``, never in process memory, since
every message may meet a fresh ClientApp process; its cipher objects are a cache a fresh
process rebuilds. Under ``paillier`` a bank decrypts the aggregator's encrypted sums with
the banks' shared key and computes the cuts and the tables itself.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp

from fedrisk.crypto.paillier import ObfuscatorPool, VectorCipher, VectorDecryptor
from fedrisk.errors import ProtocolError
from fedrisk.flower.recording_grid import identity_reply
from fedrisk.horizontal.binning.protocol import (
    CATEGORIES,
    CATEGORIES_KEY,
    CIPHERTEXTS,
    CUTS_KEY,
    QUERY_ACTION,
    SUMMED_KEY,
    BankRows,
    BanksJob,
    BanksOutcome,
    CountPacking,
    Schema,
    bins_per_column,
    first_cuts,
    grid_counts,
    labelled_counts,
    own_categories,
    split_counts,
    woe_tables,
    zero_sum_masks,
)
from fedrisk.models.binning import GRID_CELLS, BinningParams, WoeTable

Crypto = tuple[VectorCipher, VectorDecryptor]


def make_bank_app(
    job: BanksJob, outcome: BanksOutcome | None = None, mods: list | None = None
) -> ClientApp:
    """The banks' ClientApp; each bank's tables also go to ``outcome`` (in-process
    engine: the harness reads them there); ``mods`` are extra Flower mods (tests)."""
    app = ClientApp(mods=list(mods or []))
    crypto = bank_crypto(job)

    @app.query("identify")
    def identify(msg: Message, context: Context) -> Message:
        return identity_reply(msg, job.banks[bank_index(job, context)].name)

    @app.query(QUERY_ACTION)
    def binning(msg: Message, context: Context) -> Message:
        bank = job.banks[bank_index(job, context)]
        stage = str(msg.content["config"]["stage"])
        if stage == "schema":
            return schema_reply(bank, msg)
        if stage == "grid":
            return grid_reply(job, bank, msg, context, crypto)
        if stage == "counts":
            return counts_reply(job, bank, msg, context, crypto)
        if stage == "finish":
            tables = finish(job, bank, msg, context, crypto)
            if outcome is not None:
                outcome.tables[bank.name] = tables
            return reply(msg, "finish", bank, {"ok": 1})
        raise ProtocolError(f"{bank.name}: unknown binning stage {stage!r}")

    return app


def bank_index(job: BanksJob, context: Context) -> int:
    """Which bank this node serves (its ``partition-id``)."""
    index = int(context.node_config["partition-id"])
    if not 0 <= index < len(job.banks):
        raise ProtocolError(f"node partition-id {index} names none of {len(job.banks)} banks")
    return index


def bank_masks(job: BanksJob, context: Context, stage: str, length: int) -> list[int]:
    """This bank's zero-sum masks for a count vector of ``length`` (its plaintexts)."""
    if job.private_key is None:
        raise ProtocolError("an encrypted exchange needs the banks' shared key")
    count = job.packing.n_ciphertexts(length)
    return zero_sum_masks(job.private_key, len(job.banks), bank_index(job, context), stage, count)


def bank_crypto(job: BanksJob) -> Callable[[str], Crypto]:
    """Each bank's cipher and decryptor, made on first use and kept in process memory
    (its obfuscator pool: os entropy, the bank's own randomness; shared-key holders take
    the CRT path)."""
    made: dict[str, Crypto] = {}

    def crypto(bank: str) -> Crypto:
        if bank not in made:
            if job.public_key is None or job.private_key is None:
                raise ProtocolError(f"{bank}: an encrypted exchange needs the banks' shared key")
            pool = ObfuscatorPool.shared(bank, job.public_key, job.private_key)
            made[bank] = (VectorCipher(job.public_key, pool), VectorDecryptor(job.private_key))
        return made[bank]

    return crypto


def reply(msg: Message, stage: str, bank: BankRows, values: dict, arrays=None) -> Message:
    """A bank's reply: a config record (stage, bank, ``values``) and, in the clear only,
    its count arrays in a record named after the stage."""
    content = {"config": ConfigRecord({"stage": stage, "party": bank.name, **values})}
    if arrays is not None:
        content[stage] = ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in arrays.items()})
    return Message(RecordDict(content), reply_to=msg)


def schema_reply(bank: BankRows, msg: Message) -> Message:
    """Column names and kinds, and the set of values of each text column (plaintext)."""
    schema = bank.schema
    cats = {f"{CATEGORIES}{j}": v for j, v in own_categories(bank, schema).items()}
    return reply(
        msg, "schema", bank, {"columns": list(schema.names), "kinds": list(schema.kinds), **cats}
    )


def grid_reply(job: BanksJob, bank: BankRows, msg: Message, context: Context, crypto) -> Message:
    """Keep the union of the category values; send the unlabelled grid histograms."""
    schema = bank.schema
    cfg = msg.content["config"]
    missing = [schema.names[j] for j in schema.text if f"{CATEGORIES}{j}" not in cfg]
    if missing:
        raise ProtocolError(f"{bank.name}: no category values sent for {missing}")
    context.state[CATEGORIES_KEY] = ConfigRecord(
        {str(j): [str(v) for v in cfg[f"{CATEGORIES}{j}"]] for j in schema.text}
    )
    if len(bank.y) > job.row_bound:
        raise ProtocolError(
            f"{bank.name}: {len(bank.y)} rows exceed the public bound {job.row_bound}"
        )
    grid = grid_counts(bank, schema)
    if job.aggregation == "paillier":
        cipher, _ = crypto(bank.name)
        masks = bank_masks(job, context, "grid", np.asarray(grid).size)
        return reply(msg, "grid", bank, {CIPHERTEXTS: job.packing.encrypt(cipher, grid, masks)})
    return reply(msg, "grid", bank, {}, {"grid": grid})


def counts_reply(job: BanksJob, bank: BankRows, msg: Message, context: Context, crypto) -> Message:
    """The cuts (sent, or computed from the decrypted summed grid), kept; the bank's
    labelled counts per (pre)bin and per category value."""
    schema = bank.schema
    if job.aggregation == "paillier":
        cipher, decryptor = crypto(bank.name)
        blobs = list(msg.content["config"].get(CIPHERTEXTS, []))
        cuts = decrypted_cuts(job.params, job.packing, schema, cipher, decryptor, blobs)
    else:
        sent = msg.content["cuts"]
        cuts = {j: sent[f"c{j}"].numpy().astype(np.int64) for j in schema.numeric}
    context.state[CUTS_KEY] = ArrayRecord({f"c{j}": Array(c) for j, c in cuts.items()})
    counts = labelled_counts(bank, schema, cuts, kept_categories(schema, context))
    if job.aggregation == "paillier":
        cipher, _ = crypto(bank.name)
        flat = np.concatenate([c.ravel() for c in counts]) if counts else np.zeros(0)
        masks = bank_masks(job, context, "counts", len(flat))
        return reply(msg, "counts", bank, {CIPHERTEXTS: job.packing.encrypt(cipher, flat, masks)})
    return reply(msg, "counts", bank, {}, {f"b{j}": c for j, c in enumerate(counts)})


def finish(job: BanksJob, bank: BankRows, msg: Message, context: Context, crypto) -> list[WoeTable]:
    """The tables from the summed labelled counts (sent, or decrypted), kept."""
    schema = bank.schema
    cuts = {j: context.state[CUTS_KEY][f"c{j}"].numpy() for j in schema.numeric}
    categories = kept_categories(schema, context)
    bins = bins_per_column(schema, cuts, categories)
    if job.aggregation == "paillier":
        cipher, decryptor = crypto(bank.name)
        blobs = list(msg.content["config"].get(CIPHERTEXTS, []))
        summed = decrypted_counts(job.packing, bins, cipher, decryptor, blobs)
    else:
        sent = msg.content["summed"]
        summed = [sent[f"b{j}"].numpy().astype(np.int64) for j in range(len(bins))]
        for j, (s, b) in enumerate(zip(summed, bins)):
            if s.shape != (2, b):
                raise ProtocolError(
                    f"{bank.name}: summed counts of column {j} have shape {s.shape}"
                )
    context.state[SUMMED_KEY] = ArrayRecord({f"b{j}": Array(s) for j, s in enumerate(summed)})
    return woe_tables(job.params, schema, cuts, categories, summed)


def kept_categories(schema: Schema, context: Context) -> dict[int, tuple[str, ...]]:
    kept = context.state[CATEGORIES_KEY]
    return {j: tuple(str(v) for v in kept[str(j)]) for j in schema.text}


def decrypted_cuts(
    params: BinningParams,
    packing: CountPacking,
    schema: Schema,
    cipher: VectorCipher,
    decryptor: VectorDecryptor,
    blobs: list,
) -> dict[int, np.ndarray]:
    """The cuts every bank computes from the encrypted summed grid histograms."""
    width = GRID_CELLS + 1
    flat = packing.decrypt(
        cipher, decryptor, blobs, len(schema.numeric) * width, "summed grid counts"
    )
    return first_cuts(params, schema, flat.reshape(len(schema.numeric), width))


def decrypted_counts(
    packing: CountPacking,
    bins: list[int],
    cipher: VectorCipher,
    decryptor: VectorDecryptor,
    blobs: list,
) -> list[np.ndarray]:
    """Each column's summed ``(2, bins)`` labelled counts, from their encrypted sum."""
    flat = packing.decrypt(cipher, decryptor, blobs, 2 * sum(bins), "summed bin counts")
    return split_counts(flat, bins)


__all__ = ["bank_crypto", "decrypted_counts", "decrypted_cuts", "make_bank_app"]
