"""Paillier-encrypted FedAvg: the aggregator only ever holds ciphertexts.

Key custody: the banks share one Paillier key pair (made by a key ceremony among them,
or by a key authority that is not the aggregator); the aggregator gets the public key.
Each round:

1. the aggregator sends every bank the *encrypted* aggregate of the previous round;
2. each bank decrypts it, updates its copy of the global model, trains locally, and
   sends ``Enc(pack(n_i · q(delta_i)), n_i, 1)``: its delta in fixed point pre-scaled by
   its example count, plus its count and a 1 in two extra slots, so weighted FedAvg stays
   exact and the decoder learns the total weight and the number of summands;
3. the aggregator multiplies the ciphertexts (adds the plaintexts) and keeps the result.

Nothing the aggregator receives is readable without the private key: no counts, no
losses, no metrics. It learns only who took part and message sizes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid

from fedrisk.crypto.encoding import FixedPointCodec, PackingError, SlotPacker
from fedrisk.crypto.paillier import (CiphertextError, ObfuscatorPool, VectorCipher,
                                     VectorDecryptor, ciphertext_bytes)
from fedrisk.errors import ProtocolError
from fedrisk.federation.horizontal import (BankFedAvg, local_update, public_max_weight,
                                           raise_on_errors)
from fedrisk.models.logistic import n_params

GLOBAL_KEY = "fedrisk.global"
PROGRESS_KEY = "fedrisk.progress"


@dataclass(frozen=True)
class PaillierSetup:
    """Public parameters every party knows: the public key and the packing layout."""

    public_key: Any
    codec: FixedPointCodec
    packer: SlotPacker
    n_params: int

    @property
    def n_values(self) -> int:  # the delta, then the example count, then a 1
        return self.n_params + 2

    @property
    def n_ciphertexts(self) -> int:
        return self.packer.n_ints(self.n_values)

    @property
    def width(self) -> int:
        return ciphertext_bytes(self.public_key)


def paillier_setup(public_key, n_features: int, n_banks: int, max_bank_rows: int,
                   clip: float) -> PaillierSetup:
    """Choose the finest fixed-point precision whose k-party weighted sums still fit."""
    max_weight = public_max_weight(max_bank_rows)
    codec = FixedPointCodec.finest(clip, max_summands=n_banks, max_weight=max_weight)
    packer = SlotPacker.for_modulus(public_key.n.bit_length() - 1, codec.slot_bytes)
    return PaillierSetup(public_key, codec, packer, n_params(n_features))


# --- the banks' side ---------------------------------------------------------------------

_BANK_CRYPTO: dict[tuple[str, int], tuple[VectorCipher, VectorDecryptor | None]] = {}
_BANK_CRYPTO_LOCK = threading.Lock()  # banks may run in parallel threads


def bank_crypto(party: str, setup: PaillierSetup, private_key) -> tuple[VectorCipher,
                                                                         VectorDecryptor]:
    """This process's cipher objects for a bank (kept so timings and pools persist)."""
    key = (party, setup.public_key.n)
    with _BANK_CRYPTO_LOCK:
        if key not in _BANK_CRYPTO:
            pool = ObfuscatorPool.shared(party, setup.public_key)
            _BANK_CRYPTO[key] = (VectorCipher(setup.public_key, pool),
                                 VectorDecryptor(private_key))
        return _BANK_CRYPTO[key]


def crypto_seconds(parties, setup: PaillierSetup) -> dict[str, float] | None:
    """Seconds the banks spent in Paillier operations in this process (None if the banks
    ran elsewhere, e.g. in Ray actors)."""
    found = [_BANK_CRYPTO.get((p, setup.public_key.n)) for p in parties]
    if not all(found):
        return None
    return {
        "encryption_s": sum(c.encrypt_seconds for c, _ in found),
        "decryption_s": sum(d.decrypt_seconds for _, d in found),
        "obfuscator_precompute_s": sum(c.pool.precompute_seconds for c, _ in found),
    }


def decode_aggregate(setup: PaillierSetup, decryptor: VectorDecryptor, blobs: list,
                     contributors: int, rnd: int, cipher: VectorCipher) -> np.ndarray:
    """Decrypt an aggregate and return the weighted mean delta, or raise ProtocolError.

    Checks what a legal sum of ``contributors`` encodings must satisfy; a ciphertext made
    under another key or corrupted on the way decrypts to noise and fails them.
    """
    try:
        cts = cipher.from_bytes(blobs, setup.n_ciphertexts)
        values = setup.packer.unpack(decryptor.decrypt(cts), setup.n_values)
        sums, total_weight, ones = values[:-2], int(values[-2]), int(values[-1])
        codec = setup.codec
        if ones != contributors:
            raise PackingError(f"it decodes to {ones} summands, the aggregator reports "
                               f"{contributors}")
        if not contributors <= total_weight <= contributors * codec.max_weight:
            raise PackingError(f"its total weight {total_weight} is impossible for "
                               f"{contributors} banks")
        if np.any(sums > contributors * codec.max_weight * 2 * codec.magnitude):
            raise PackingError("a slot exceeds the largest legal sum")
    except (PackingError, CiphertextError) as exc:
        raise ProtocolError(f"round {rnd}: the aggregate of {contributors} banks decrypts "
                            f"outside the packing range ({exc}); a bank encrypted under "
                            "another key or its update was corrupted") from None
    return codec.decode_mean(sums, total_weight)


def _split(blob: np.ndarray, width: int) -> list[bytes]:
    raw = blob.tobytes()
    return [raw[i:i + width] for i in range(0, len(raw), width)]


def paillier_train(job, party: int, msg: Message, context) -> Message:
    """A bank's round: decrypt last round's aggregate, train, send its encrypted delta."""
    setup: PaillierSetup = job.paillier
    bank = job.banks[party]
    cfg = msg.content["config"]
    rnd = int(cfg["server-round"])
    cipher, decryptor = bank_crypto(bank.name, setup, job.private_key)
    if rnd == 1:
        global_params = np.zeros(setup.n_params)  # the public starting point
    else:
        done = int(context.state[PROGRESS_KEY]["round"]) if PROGRESS_KEY in context.state \
            else 0
        if done != rnd - 1:
            raise ProtocolError(f"round {rnd}: {bank.name} last applied round {done}")
        global_params = context.state[GLOBAL_KEY]["params"].numpy() + decode_aggregate(
            setup, decryptor, list(cfg["aggregate"]), int(cfg["contributors"]), rnd - 1,
            cipher)
    context.state[GLOBAL_KEY] = ArrayRecord({"params": Array(global_params)})
    context.state[PROGRESS_KEY] = MetricRecord({"round": rnd})

    delta = local_update(job, party, global_params, rnd)
    encoded, _ = setup.codec.encode(delta, weight=len(bank.y))
    values = np.concatenate([encoded, np.array([len(bank.y), 1], dtype=np.uint64)])
    blobs = cipher.to_bytes(cipher.encrypt(setup.packer.pack(values)))
    return Message(RecordDict({"config": ConfigRecord({"party": bank.name,
                                                       "ciphertexts": blobs})}),
                   reply_to=msg)


# --- the aggregator's side -----------------------------------------------------------------

class PaillierFedAvg(BankFedAvg):
    """FedAvg whose aggregation is ciphertext multiplication; holds the public key only."""

    def __init__(self, n_banks: int, setup: PaillierSetup) -> None:
        super().__init__(n_banks)
        self.setup = setup
        self.cipher = VectorCipher(setup.public_key)

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid):
        cfg = ConfigRecord({"server-round": server_round})
        if "aggregate" in arrays:
            cfg["aggregate"] = _split(arrays["aggregate"].numpy(), self.setup.width)
            cfg["contributors"] = int(arrays["contributors"].numpy()[0])
        # FedAvg builds and addresses the messages; the model travels only encrypted.
        return super(BankFedAvg, self).configure_train(server_round, ArrayRecord(), cfg,
                                                       grid)

    def aggregate_train(self, server_round: int, replies):
        ok = raise_on_errors(server_round, list(replies))
        if not ok:
            return None, None
        vectors = []
        for m in sorted(ok, key=lambda m: str(m.content["config"]["party"])):
            party = str(m.content["config"]["party"])
            try:
                vectors.append(self.cipher.from_bytes(list(m.content["config"]["ciphertexts"]),
                                                      self.setup.n_ciphertexts))
            except CiphertextError as exc:
                raise ProtocolError(f"round {server_round}: {party}: {exc}") from None
        total = self.cipher.add(*vectors)
        blob = np.frombuffer(b"".join(self.cipher.to_bytes(total)), dtype=np.uint8)
        record = ArrayRecord({"aggregate": Array(blob.copy()),
                              "contributors": Array(np.array([len(ok)], dtype=np.int64))})
        return record, None


def classify_paillier(msg: Message, to_server: bool) -> tuple[str, str, bool]:
    if to_server:
        return "encrypted_update", "ciphertext", False
    if "aggregate" in msg.content["config"]:
        return "encrypted_aggregate", "ciphertext", True  # the bank holds the key
    return "round_start", "plaintext", True
