"""Paillier-encrypted FedAvg: the aggregator only ever holds ciphertexts.

Key custody: the banks share one Paillier key pair (made by a key ceremony among them,
or by a key authority that is not the aggregator); the aggregator gets the public key.
Each round:

1. the aggregator sends every bank taking part the *encrypted* aggregates of the rounds
   it has not yet seen (the previous round's, unless banks are sampled);
2. each bank decrypts them, updates its copy of the global model, trains locally, and
   sends ``Enc(pack(n_i · q(delta_i)), n_i, 1)``: its delta in fixed point pre-scaled by
   its example count, plus its count and a 1 in two extra slots, so weighted FedAvg stays
   exact and the decoder learns the total weight and the number of summands;
3. the aggregator multiplies the ciphertexts (adds the plaintexts) and keeps the result.

Nothing the aggregator receives is readable without the private key: no counts, no
losses, no metrics. It learns only who took part and message sizes.

With client-level DP (``dp = 'client'``) banks are Poisson-sampled, weigh equally, clip
their deltas and each adds its share of the Gaussian noise before encrypting; the model
moves by the decrypted noisy sum over the expected number of participants.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from fedrisk.crypto.encoding import PackingError
from fedrisk.crypto.paillier import (
    CiphertextError,
    ObfuscatorPool,
    VectorCipher,
    VectorDecryptor,
)
from fedrisk.errors import ProtocolError
from fedrisk.flower.checkpoint import Checkpoint
from fedrisk.flower.faults import FaultPlan
from fedrisk.flower.recorder import ServerRecorder
from fedrisk.horizontal.client import fedavg_client_app
from fedrisk.horizontal.client_dp import bank_noise_share, sample_banks
from fedrisk.horizontal.fedavg import BankFedAvg
from fedrisk.horizontal.job import HorizontalJob, ServerJob
from fedrisk.horizontal.layout import PaillierSetup
from fedrisk.horizontal.server import fedavg_server_app
from fedrisk.horizontal.training import local_update
from fedrisk.privacy.plan import DPPlan
from fedrisk.privacy.secrets import PartySecret

GLOBAL_KEY = "fedrisk.global"
PROGRESS_KEY = "fedrisk.progress"


# --- the banks' side ---------------------------------------------------------------------

_BANK_CRYPTO: dict[tuple[str, int], tuple[VectorCipher, VectorDecryptor | None]] = {}
_BANK_CRYPTO_LOCK = threading.Lock()  # banks may run in parallel threads


def bank_crypto(
    party: str, setup: PaillierSetup, private_key
) -> tuple[VectorCipher, VectorDecryptor]:
    """This process's cipher objects for a bank (kept so timings and pools persist)."""
    key = (party, setup.public_key.n)
    with _BANK_CRYPTO_LOCK:
        if key not in _BANK_CRYPTO:
            pool = ObfuscatorPool.shared(party, setup.public_key)
            _BANK_CRYPTO[key] = (VectorCipher(setup.public_key, pool), VectorDecryptor(private_key))
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


def decode_aggregate(
    setup: PaillierSetup,
    decryptor: VectorDecryptor,
    blobs: list,
    contributors: int,
    rnd: int,
    cipher: VectorCipher,
) -> np.ndarray:
    """Decrypt an aggregate and return the model change, or raise ProtocolError.

    Checks what a legal sum of ``contributors`` encodings must satisfy; a ciphertext made
    under another key or corrupted on the way decrypts to noise and fails them.
    """
    try:
        cts = cipher.from_bytes(blobs, setup.n_ciphertexts)
        values = setup.packer.unpack(decryptor.decrypt(cts), setup.n_values)
        sums, total_weight, ones = values[:-2], int(values[-2]), int(values[-1])
        codec = setup.codec
        if ones != contributors:
            raise PackingError(
                f"it decodes to {ones} summands, the aggregator reports {contributors}"
            )
        if not contributors <= total_weight <= contributors * codec.max_weight:
            raise PackingError(
                f"its total weight {total_weight} is impossible for {contributors} banks"
            )
        if np.any(sums > contributors * codec.max_weight * 2 * codec.magnitude):
            raise PackingError("a slot exceeds the largest legal sum")
    except (PackingError, CiphertextError) as exc:
        raise ProtocolError(
            f"round {rnd}: the aggregate of {contributors} banks decrypts "
            f"outside the packing range ({exc}); a bank encrypted under "
            "another key or its update was corrupted"
        ) from None
    return setup.step(sums, total_weight)


def paillier_train(job: HorizontalJob, party: int, msg: Message, context: Context) -> Message:
    """A bank's round: apply the aggregates it missed, train, send its encrypted delta."""
    setup = job.paillier
    assert setup is not None, "a Paillier bank job carries the packing layout"
    bank = job.banks[party]
    cfg = msg.content["config"]
    rnd = int(cfg["server-round"])
    cipher, decryptor = bank_crypto(bank.name, setup, job.private_key)
    done = int(context.state[PROGRESS_KEY]["round"]) if PROGRESS_KEY in context.state else 0
    global_params = (
        context.state[GLOBAL_KEY]["params"].numpy() if done else np.zeros(setup.n_params)
    )  # round 0: the public starting point
    rounds = [int(r) for r in cfg.get("aggregate-rounds", [])]
    counts = [int(c) for c in cfg.get("contributors", [])]
    blobs = list(cfg.get("aggregates", []))
    k = setup.n_ciphertexts
    for i, (agg_round, contributors) in enumerate(zip(rounds, counts)):
        if agg_round <= done:
            continue  # applied already: its last reply was late or lost on the way
        global_params = global_params + decode_aggregate(
            setup, decryptor, blobs[i * k : (i + 1) * k], contributors, agg_round, cipher
        )
        done = agg_round
    context.state[GLOBAL_KEY] = ArrayRecord({"params": Array(global_params)})
    context.state[PROGRESS_KEY] = MetricRecord({"round": int(cfg.get("through-round", done))})

    delta = local_update(job, party, global_params, rnd)
    weight = len(bank.y)
    if job.dp is not None and job.dp.mode == "client":
        weight = 1
        delta = delta + bank_noise_share(
            bank.secret,
            party,
            rnd,
            delta.shape,
            job.dp.noise_multiplier,
            job.dp.clip_norm,
            int(cfg["participants"]),
        )
    encoded, _ = setup.codec.encode(delta, weight=weight)
    values = np.concatenate([encoded, np.array([weight, 1], dtype=np.uint64)])
    blobs_out = cipher.to_bytes(cipher.encrypt(setup.packer.pack(values)))
    return Message(
        RecordDict({"config": ConfigRecord({"party": bank.name, "ciphertexts": blobs_out})}),
        reply_to=msg,
    )


# --- the aggregator's side -----------------------------------------------------------------


class PaillierFedAvg(BankFedAvg):
    """FedAvg whose aggregation is ciphertext multiplication; holds the public key only.

    It keeps each round's encrypted aggregate and sends every bank taking part the ones
    it has not seen, so a bank that sat rounds out (sampling, or a dropout) catches up.
    """

    def __init__(
        self,
        n_banks: int,
        setup: PaillierSetup,
        dp: DPPlan | None = None,
        secret: PartySecret | None = None,
        min_parties: int = 1,
    ) -> None:
        super().__init__(n_banks, min_parties)
        self.setup, self.dp = setup, dp
        self.secret = secret or PartySecret.fresh()  # the aggregator's own secret
        self.cipher = VectorCipher(setup.public_key)
        self.history: dict[int, tuple[list[bytes], int]] = {}  # round -> (aggregate, k)
        self.seen: dict[int, int] = {}  # node -> last round it has applied (it answered)

    def state_dict(self) -> dict[str, Any]:
        return {
            "history": {
                str(r): {"aggregate": [b.hex() for b in blobs], "contributors": k}
                for r, (blobs, k) in self.history.items()
            },
            "seen": {str(node): r for node, r in self.seen.items()},
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.history = {
            int(r): ([bytes.fromhex(b) for b in h["aggregate"]], int(h["contributors"]))
            for r, h in state["history"].items()
        }
        self.seen = {int(node): int(r) for node, r in state["seen"].items()}

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ):
        if self.dp is not None and self.dp.mode == "client":
            nodes = sample_banks(grid, self.secret, server_round, self.dp.sample_rate)
            self._asked = len(nodes)
        else:
            nodes = self.train_nodes(server_round, grid)
            self._asked = None
        messages = []
        for node in nodes:
            missed = [r for r in sorted(self.history) if r > self.seen.get(node, 0)]
            cfg = ConfigRecord(
                {
                    "server-round": server_round,
                    "through-round": server_round - 1,
                    "aggregate-rounds": missed,
                    "contributors": [self.history[r][1] for r in missed],
                    "aggregates": [b for r in missed for b in self.history[r][0]],
                    "participants": len(nodes),
                }
            )
            messages.append(
                Message(
                    RecordDict({self.arrayrecord_key: ArrayRecord(), self.configrecord_key: cfg}),
                    dst_node_id=node,
                    message_type=MessageType.TRAIN,
                )
            )
        return messages

    def aggregate_train(self, server_round: int, replies):
        ok = self.answered(server_round, replies, asked=self._asked)
        if not ok:
            return None, None
        for m in ok:  # it decrypted everything it was sent before it answered
            self.seen[m.metadata.src_node_id] = server_round - 1
        vectors = []
        for m in sorted(ok, key=lambda m: str(m.content["config"]["party"])):
            party = str(m.content["config"]["party"])
            try:
                vectors.append(
                    self.cipher.from_bytes(
                        list(m.content["config"]["ciphertexts"]), self.setup.n_ciphertexts
                    )
                )
            except CiphertextError as exc:
                raise ProtocolError(f"round {server_round}: {party}: {exc}") from None
        blobs = self.cipher.to_bytes(self.cipher.add(*vectors))
        self.history[server_round] = (blobs, len(ok))
        record = ArrayRecord(
            {
                "aggregate": Array(np.frombuffer(b"".join(blobs), dtype=np.uint8).copy()),
                "contributors": Array(np.array([len(ok)], dtype=np.int64)),
                "round": Array(np.array([server_round], dtype=np.int64)),
            }
        )
        return record, None


def classify_paillier(msg: Message, to_server: bool) -> tuple[str, str, bool]:
    if to_server:
        return "encrypted_update", "ciphertext", False
    if list(msg.content["config"].get("aggregates", [])):
        return "encrypted_aggregate", "ciphertext", True  # the bank holds the key
    return "round_start", "plaintext", True


# --- the mode's entry points (see fedrisk.horizontal.aggregation) ---------------------------


def client_app(job: HorizontalJob, faults: FaultPlan, mods: list) -> ClientApp:
    return fedavg_client_app(job, faults, mods, paillier_train)


def server_app(
    server_job: ServerJob, recorder: ServerRecorder, resume: Checkpoint | None
) -> ServerApp:
    s, setup = server_job.scenario, server_job.paillier
    assert setup is not None, "a Paillier server job carries the public key and layout"

    def strategy() -> PaillierFedAvg:
        return PaillierFedAvg(
            len(server_job.party_names), setup, server_job.dp, server_job.secret, s.quorum
        )

    # In Paillier mode the aggregator never holds the model: it starts from nothing and
    # keeps encrypted aggregates the banks' side decodes.
    return fedavg_server_app(
        server_job,
        recorder,
        resume,
        strategy,
        classify_paillier,
        ArrayRecord(),
        model_is_opaque=True,
    )


def summary(server_job: ServerJob) -> dict[str, Any]:
    p = server_job.paillier
    assert p is not None
    return {
        "paillier": {
            "key_bits": server_job.scenario.privacy.key_bits,
            "key_holders": "banks",
            "update_range": p.codec.clip,
            "frac_bits": p.codec.frac_bits,
            "slot_bits": 8 * p.codec.slot_bytes,
            "slots_per_ciphertext": p.packer.slots_per_int,
            "ciphertexts_per_update": p.n_ciphertexts,
            "public_max_weight": p.codec.max_weight,
        }
    }


__all__ = [
    "PaillierFedAvg",
    "bank_crypto",
    "classify_paillier",
    "client_app",
    "crypto_seconds",
    "decode_aggregate",
    "paillier_train",
    "server_app",
    "summary",
]
