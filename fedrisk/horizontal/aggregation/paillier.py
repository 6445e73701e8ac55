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

Banks check every aggregate before using it (:func:`decode_aggregate`): the decrypted
count slot must equal the contributors claimed and reach the quorum, so a lone bank's
ciphertext forwarded as an "aggregate" stops the run; and the ``participants`` their
client-DP noise share divides by must lie in [1, number of banks].

With ``privacy.key = 'threshold'`` (:mod:`fedrisk.crypto.threshold`) no bank holds the
private key: after aggregating, the aggregator sends the aggregate to every connected
bank (a ``decrypt`` query), each returns its partial decryption of the aggregate blinded
by a mask only the banks know, and the aggregator relays t of them with the aggregate in
the next round's messages; each bank combines them and removes the mask. Fewer than t
partial decryptions stop the run (QuorumError).

With client-level DP (``dp = 'client'``) banks are Poisson-sampled, weigh equally, clip
their deltas and each adds its share of the Gaussian noise before encrypting; the model
moves by the decrypted noisy sum over the expected number of participants.
"""

from __future__ import annotations

import json
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
from fedrisk.crypto.threshold import KeyShare, ShareDecryptor, default_threshold
from fedrisk.errors import ProtocolError, QuorumError
from fedrisk.flower.checkpoint import Checkpoint
from fedrisk.flower.faults import FaultPlan, is_lost
from fedrisk.flower.recorder import ServerRecorder
from fedrisk.horizontal.calibration import CALIBRATE, TRAIN
from fedrisk.horizontal.client import fedavg_client_app
from fedrisk.horizontal.client_dp import bank_noise_share, sample_banks
from fedrisk.horizontal.early_stopping import EarlyStopping, pooled_loss
from fedrisk.horizontal.fedavg import BankFedAvg
from fedrisk.horizontal.job import HorizontalJob, ServerJob
from fedrisk.horizontal.layout import PaillierSetup
from fedrisk.horizontal.schedule import RoundSchedule
from fedrisk.horizontal.server import fedavg_server_app
from fedrisk.horizontal.server_optimizer import ServerOptimizer
from fedrisk.horizontal.training import local_update, validation_report
from fedrisk.i18n import CLAUSE_SEP, N_
from fedrisk.privacy.plan import DPPlan
from fedrisk.privacy.secrets import PartySecret

GLOBAL_KEY = "fedrisk.global"
PROGRESS_KEY = "fedrisk.progress"
DECRYPTED_KEY = "fedrisk.decrypted"  # the last round this bank partially decrypted
DECRYPT_QUERY = "decrypt"
DECRYPT = f"{MessageType.QUERY}.{DECRYPT_QUERY}"  # threshold key: a partial decryption
PARTICIPANTS_KEY = "fedrisk.participants"  # round -> participants the aggregator claimed
OPTIMIZER_KEY = "fedrisk.optimizer"  # the bank's copy of the server optimiser's moments
STOPPING_KEY = "fedrisk.early-stopping"  # the validation losses the bank decrypted
TASK_CODES = {TRAIN: 0, CALIBRATE: 1}  # a round's task, as the aggregate record carries it
TASK_OF_CODE = {code: task for task, code in TASK_CODES.items()}


def bank_optimizer(job: HorizontalJob, context: Context) -> ServerOptimizer:
    """The bank's copy of the server optimiser, with the moments it kept so far."""
    optimizer = ServerOptimizer(job.scenario.model)
    if OPTIMIZER_KEY in context.state:
        optimizer.load_state(
            {k: list(v) for k, v in context.state[OPTIMIZER_KEY].items()}  # type: ignore[arg-type]
        )
    return optimizer


def keep_optimizer(optimizer: ServerOptimizer, context: Context) -> None:
    state = {k: v for k, v in optimizer.state_dict().items() if v is not None}
    context.state[OPTIMIZER_KEY] = ConfigRecord(state)


def bank_stopper(job: HorizontalJob, context: Context) -> EarlyStopping | None:
    """The bank's early-stopping record (the pooled validation losses it decrypted)."""
    if not job.scenario.model.early_stopping:
        return None
    stopper = EarlyStopping(job.scenario.model.patience)
    if STOPPING_KEY in context.state:
        stopper.load_state(json.loads(str(context.state[STOPPING_KEY]["json"])))
    return stopper


def apply_decrypted(
    optimizer: ServerOptimizer,
    stopper: EarlyStopping | None,
    agg_round: int,
    task: str,
    params: np.ndarray,
    decoded: np.ndarray,
) -> np.ndarray:
    """The global model after a decrypted aggregate, as every bank (and the harness that
    replays them) computes it: the validation slots read first (early stopping: a stop
    reverts to the best model and skips this and every later training aggregate), then
    the server optimiser's step or the calibration step."""
    aggregate, slots = decoded[: params.size], decoded[params.size :]
    if stopper is not None and task == TRAIN:
        if stopper.stopped_at is not None and agg_round >= stopper.stopped_at:
            return params  # a training round after the stop: its update is void
        stopper.observe(agg_round - 1, pooled_loss(slots), params)
        if stopper.should_stop():  # decided on reading this aggregate, at the next round
            stopper.stopped_at = agg_round + 1
            return stopper.best_params
    return optimizer.apply(task, agg_round, params, aggregate)


def client_dp(job: HorizontalJob) -> bool:
    return job.dp is not None and job.dp.mode == "client"


# --- the banks' side ---------------------------------------------------------------------

_BANK_CRYPTO: dict[tuple[str, int], tuple[VectorCipher, VectorDecryptor | None]] = {}
_BANK_CRYPTO_LOCK = threading.Lock()  # banks may run in parallel threads


def bank_crypto(
    party: str, setup: PaillierSetup, private_key
) -> tuple[VectorCipher, VectorDecryptor | ShareDecryptor]:
    """This process's cipher objects for a bank (kept so timings and pools persist);
    ``private_key`` is the shared private key, or the bank's own threshold KeyShare."""
    key = (party, setup.public_key.n)
    with _BANK_CRYPTO_LOCK:
        if key not in _BANK_CRYPTO:
            holds_key = not isinstance(private_key, KeyShare)  # shared mode: the CRT path
            pool = ObfuscatorPool.shared(
                party, setup.public_key, private_key if holds_key else None
            )
            decryptor = (
                ShareDecryptor(private_key)
                if isinstance(private_key, KeyShare)
                else VectorDecryptor(private_key)
            )
            _BANK_CRYPTO[key] = (VectorCipher(setup.public_key, pool), decryptor)
        return _BANK_CRYPTO[key]


# (bank, key n) -> round -> values the fixed-point encoder clipped to ±update_range
_CLIPPED: dict[tuple[str, int], dict[int, int]] = {}


def clipped_values(parties, setup: PaillierSetup) -> dict[int, int] | None:
    """Values the banks' encoders clipped, per round, summed over banks, in this process
    (None if the banks ran elsewhere): the update range silently bounding updates."""
    keys = [(p, setup.public_key.n) for p in parties]
    if not all(key in _BANK_CRYPTO for key in keys):
        return None
    out: dict[int, int] = {}
    for key in keys:
        for rnd, count in _CLIPPED.get(key, {}).items():
            out[rnd] = out.get(rnd, 0) + count
    return dict(sorted(out.items()))


def bank_secret(job: HorizontalJob, party: int):
    """What bank ``party`` decrypts with: the shared private key or its own key share."""
    return job.key_share(party) if job.threshold else job.private_key


def round_shares(cfg: ConfigRecord, i: int, k: int, t: int) -> dict[int, list[int]]:
    """The partial decryptions relayed with the ``i``-th missed aggregate: bank index ->
    its ``k`` partials (t banks' partials per aggregate; t is the bank's own knowledge of
    its key, not the aggregator's word)."""
    banks = [int(b) for b in cfg.get("partial-banks", [])]
    blobs = list(cfg.get("partials", []))
    chosen = banks[i * t : (i + 1) * t]
    return {
        b: [int.from_bytes(x, "big") for x in blobs[(i * t + j) * k : (i * t + j + 1) * k]]
        for j, b in enumerate(chosen)
    }


def paillier_decrypt(job: HorizontalJob, party: int, msg: Message, context: Context) -> Message:
    """A bank's partial decryption of a round's (blinded) aggregate, under a threshold key.

    The bank cannot check the aggregate before it decrypts it partially (only t partials
    open it); it checks the count slot when it combines, before it uses the model."""
    setup = job.paillier
    assert setup is not None and job.threshold
    bank = job.banks[party]
    cfg = msg.content["config"]
    rnd = int(cfg["server-round"])
    # one partial decryption per round, rounds only forward: an aggregator cannot collect
    # several openings of one round (the masks are also bound to each ciphertext)
    done = int(context.state[DECRYPTED_KEY]["round"]) if DECRYPTED_KEY in context.state else 0
    if rnd <= done:
        raise ProtocolError(
            f"round {rnd}: {bank.name} was asked for a second partial decryption "
            f"(it already decrypted for round {done}); the aggregator is misbehaving"
        )
    context.state[DECRYPTED_KEY] = MetricRecord({"round": rnd})
    cipher, decryptor = bank_crypto(bank.name, setup, bank_secret(job, party))
    cts = cipher.from_bytes(list(cfg["aggregate"]), setup.n_ciphertexts)
    partials = decryptor.partial_decrypt(cts, rnd)
    return Message(
        RecordDict(
            {
                "config": ConfigRecord(
                    {
                        "party": bank.name,
                        "share-index": job.key_share(party).index,
                        "partials": cipher.to_bytes(partials),
                    }
                )
            }
        ),
        reply_to=msg,
    )


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
    min_contributors: int = 1,
    max_contributors: int | None = None,
    shares: dict[int, list] | None = None,
) -> np.ndarray:
    """Decrypt an aggregate and return the model change, or raise ProtocolError.

    Checks what a legal sum of ``contributors`` encodings must satisfy; a ciphertext made
    under another key or corrupted on the way decrypts to noise and fails them. The count
    slot (each bank packs a 1) must equal the contributors the aggregator claims, and lie
    in [``min_contributors``, ``max_contributors``]: a lone bank's ciphertext forwarded
    as an "aggregate" decodes to a count of 1 and cannot pass a quorum of 2 or more.
    With a threshold key, ``decryptor`` combines the banks' partial decryptions
    ``shares`` (bank index -> partial decryptions of the blinded aggregate).
    """
    check_contributors(rnd, contributors, min_contributors, max_contributors)
    try:
        cts = cipher.from_bytes(blobs, setup.n_ciphertexts)
        if shares is None:
            plain = decryptor.decrypt(cts)
        else:
            try:
                plain = decryptor.combine(shares, rnd, cts)
            except ValueError as exc:
                raise CiphertextError(str(exc)) from None
        values = setup.packer.unpack(plain, setup.n_values)
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
        if contributors > 1 and np.all(np.asarray(sums) % total_weight == 0):
            # one bank's ciphertext raised to the power k decodes to k·w·(its slots), so
            # every slot is divisible by the total weight k·w; a genuine weighted sum of
            # k banks' slots is, by chance, with probability about (1/k)^d or less
            raise ProtocolError(
                f"round {rnd}: the aggregate of {contributors} banks looks like one update "
                f"multiplied by {contributors} (every slot divisible by its total weight); "
                "the aggregator "
                "is misbehaving"
            )
    except (PackingError, CiphertextError) as exc:
        raise ProtocolError(
            f"round {rnd}: the aggregate of {contributors} banks decrypts "
            f"outside the packing range ({exc}); a bank encrypted under "
            "another key or its update was corrupted"
        ) from None
    return setup.step(sums, total_weight)


def check_contributors(rnd: int, claimed: int, least: int, most: int | None) -> None:
    """The aggregator's claimed count of summands must be one a quorum allows."""
    if claimed < least:
        raise ProtocolError(
            f"round {rnd}: the aggregator sent an aggregate of {claimed} bank(s), fewer "
            f"than the {least} federation.min_parties requires; refused (a lone bank's "
            "update is not an aggregate)"
        )
    if most is not None and claimed > most:
        raise ProtocolError(
            f"round {rnd}: the aggregator sent an aggregate of {claimed} banks, more "
            f"than the {most} that took part; refused"
        )


def checked_participants(job: HorizontalJob, cfg: ConfigRecord, rnd: int) -> int:
    """The round's participant count the bank's noise share divides by, checked.

    A malicious aggregator could inflate it to shrink every bank's share of the client-DP
    noise: it must lie in [1, number of banks] (sampling may legitimately ask fewer than
    federation.min_parties). It is kept so that the round's aggregate, once decrypted,
    must not count more summands than this.
    """
    participants = int(cfg.get("participants", 0))
    if not 1 <= participants <= len(job.banks):
        raise ProtocolError(
            f"round {rnd}: the aggregator claims {participants} participants, outside "
            f"[1, {len(job.banks)} banks]; refused (it would shrink the DP noise shares)"
        )
    return participants


def paillier_train(job: HorizontalJob, party: int, msg: Message, context: Context) -> Message:
    """A bank's round: apply the aggregates it missed, train, send its encrypted delta."""
    setup = job.paillier
    assert setup is not None, "a Paillier bank job carries the packing layout"
    bank = job.banks[party]
    cfg = msg.content["config"]
    rnd = int(cfg["server-round"])
    cipher, decryptor = bank_crypto(bank.name, setup, bank_secret(job, party))
    done = int(context.state[PROGRESS_KEY]["round"]) if PROGRESS_KEY in context.state else 0
    global_params = (
        context.state[GLOBAL_KEY]["params"].numpy() if done else np.zeros(setup.n_params)
    )  # round 0: the public starting point
    rounds = [int(r) for r in cfg.get("aggregate-rounds", [])]
    counts = [int(c) for c in cfg.get("contributors", [])]
    tasks = [str(t) for t in cfg.get("aggregate-tasks", [TRAIN] * len(rounds))]
    optimizer = bank_optimizer(job, context)
    stopper = bank_stopper(job, context)
    blobs = list(cfg.get("aggregates", []))
    k = setup.n_ciphertexts
    claimed = dict(context.state[PARTICIPANTS_KEY]) if PARTICIPANTS_KEY in context.state else {}
    for i, (agg_round, contributors, task) in enumerate(zip(rounds, counts, tasks)):
        if agg_round <= done:
            continue  # applied already: its last reply was late or lost on the way
        decoded = decode_aggregate(
            setup,
            decryptor,
            blobs[i * k : (i + 1) * k],
            contributors,
            agg_round,
            cipher,
            min_contributors=1 if client_dp(job) else job.scenario.quorum,
            max_contributors=claimed.get(str(agg_round), len(job.banks)),
            shares=(
                round_shares(cfg, i, k, job.key_share(party).threshold) if job.threshold else None
            ),
        )
        # the server optimiser's step, run by every bank alike on the same aggregates
        global_params = apply_decrypted(optimizer, stopper, agg_round, task, global_params, decoded)
        done = agg_round
    keep_optimizer(optimizer, context)
    if stopper is not None:
        context.state[STOPPING_KEY] = ConfigRecord({"json": json.dumps(stopper.state_dict())})
    context.state[GLOBAL_KEY] = ArrayRecord({"params": Array(global_params)})
    context.state[PROGRESS_KEY] = MetricRecord({"round": int(cfg.get("through-round", done))})

    if client_dp(job):  # this round's count, checked before the noise share uses it
        claimed[str(rnd)] = checked_participants(job, cfg, rnd)
        context.state[PARTICIPANTS_KEY] = MetricRecord(claimed)
    task = str(cfg.get("task", TRAIN))
    # after an early stop a training round's update is void (every side skips it); it is
    # still a genuine update, so the aggregate passes the banks' checks
    delta = np.concatenate(
        [
            local_update(job, party, global_params, rnd, task),
            validation_report(job, party, global_params, task),
        ]
    )
    stopped = stopper is not None and stopper.stopped_at is not None
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
    encoded, clipped = setup.codec.encode(delta, weight=weight)
    with _BANK_CRYPTO_LOCK:
        _CLIPPED.setdefault((bank.name, setup.public_key.n), {})[rnd] = clipped
    values = np.concatenate([encoded, np.array([weight, 1], dtype=np.uint64)])
    blobs_out = cipher.to_bytes(cipher.encrypt(setup.packer.pack(values)))
    reply = ConfigRecord({"party": bank.name, "ciphertexts": blobs_out})
    if stopped:  # the aggregator must end the training loop: one public bit, and the round
        reply["stop-after-round"] = stopper.stopped_at - 1
        reply["best-round"] = stopper.best_round
    return Message(RecordDict({"config": reply}), reply_to=msg)


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
        threshold: int | None = None,
        timeout: float | None = None,
        schedule: RoundSchedule | None = None,
    ) -> None:
        # the banks run the server optimiser; the aggregator only follows the schedule
        super().__init__(n_banks, min_parties, schedule=schedule)
        self.setup, self.dp = setup, dp
        self.secret = secret or PartySecret.fresh()  # the aggregator's own secret
        self.threshold, self.timeout = threshold, timeout  # threshold key: t of n_banks
        self.cipher = VectorCipher(setup.public_key)
        self.history: dict[int, tuple[list[bytes], int]] = {}  # round -> (aggregate, k)
        self.tasks: dict[int, str] = {}  # round -> its task (train / calibrate)
        self.stop: tuple[int, int] | None = None  # early stop the banks reported
        self.partials: dict[int, dict[int, list[bytes]]] = {}  # round -> t banks' partials
        self.seen: dict[int, int] = {}  # node -> last round it has applied (it answered)
        self._grid: Grid | None = None

    def state_dict(self) -> dict[str, Any]:
        return {
            "history": {
                str(r): {"aggregate": [b.hex() for b in blobs], "contributors": k}
                for r, (blobs, k) in self.history.items()
            },
            "partials": {
                str(r): {str(i): [b.hex() for b in blobs] for i, blobs in shares.items()}
                for r, shares in self.partials.items()
            },
            "seen": {str(node): r for node, r in self.seen.items()},
            "tasks": {str(r): t for r, t in self.tasks.items()},
            "stop": self.stop,
            "schedule": self.schedule.state_dict() if self.schedule else {},
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.history = {
            int(r): ([bytes.fromhex(b) for b in h["aggregate"]], int(h["contributors"]))
            for r, h in state["history"].items()
        }
        self.partials = {
            int(r): {int(i): [bytes.fromhex(b) for b in blobs] for i, blobs in shares.items()}
            for r, shares in state.get("partials", {}).items()
        }
        self.seen = {int(node): int(r) for node, r in state["seen"].items()}
        self.tasks = {int(r): str(t) for r, t in state.get("tasks", {}).items()}
        stop = state.get("stop")
        self.stop = None if stop is None else (int(stop[0]), int(stop[1]))
        if self.schedule is not None:
            self.schedule.load_state(state.get("schedule", {}))

    def collect_partials(self, server_round: int, blobs: list[bytes]) -> dict[int, list[bytes]]:
        """The threshold key's extra exchange: every connected bank is sent the round's
        aggregate and returns its partial decryption (of the aggregate blinded by the
        banks' mask, which the aggregator cannot remove); the first t by share index are
        kept and relayed with the aggregate. Fewer than t answers stop the run."""
        assert self._grid is not None and self.threshold is not None
        grid, k = self._grid, self.setup.n_ciphertexts
        cfg = ConfigRecord({"server-round": server_round, "aggregate": blobs})
        messages = [
            Message(
                RecordDict({"config": cfg}),
                dst_node_id=node,
                message_type=DECRYPT,
                group_id=str(server_round),
            )
            for node in self.train_nodes(server_round, grid)
        ]
        got: dict[int, list[bytes]] = {}
        for m in grid.send_and_receive(messages, timeout=self.timeout):
            if m.has_error():
                if not is_lost(m):
                    raise ProtocolError(f"round {server_round}: {m.error.reason}")
                continue
            reply = m.content["config"]
            party, index = str(reply["party"]), int(reply["share-index"])
            try:
                partials = self.cipher.from_bytes(list(reply["partials"]), k)
            except CiphertextError as exc:
                raise ProtocolError(f"round {server_round}: {party}: {exc}") from None
            got[index] = self.cipher.to_bytes(partials)
        if len(got) < self.threshold:
            raise QuorumError(
                f"round {server_round}: only {len(got)} banks returned a partial decryption, "
                f"fewer than the threshold key's t = {self.threshold} of {self.n_banks}; "
                "the run stopped"
            )
        return {i: got[i] for i in sorted(got)[: self.threshold]}

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ):
        self.latest_arrays = arrays  # the last aggregate, if this round is past the end
        task = self.tasks[server_round] = self.task(server_round)
        if self.dp is not None and self.dp.mode == "client":
            nodes = sample_banks(grid, self.secret, server_round, self.dp.sample_rate)
            self._asked = len(nodes)
        else:
            nodes = self.train_nodes(server_round, grid)
            self._asked = None
        self._grid = grid
        messages = []
        for node in nodes:
            missed = [r for r in sorted(self.history) if r > self.seen.get(node, 0)]
            cfg = ConfigRecord(
                {
                    "server-round": server_round,
                    "task": task,
                    "through-round": server_round - 1,
                    "aggregate-rounds": missed,
                    "aggregate-tasks": [self.tasks.get(r, TRAIN) for r in missed],
                    "contributors": [self.history[r][1] for r in missed],
                    "aggregates": [b for r in missed for b in self.history[r][0]],
                    "participants": len(nodes),
                }
            )
            if self.threshold is not None:  # t banks' partials of each missed aggregate
                cfg["partial-threshold"] = self.threshold
                cfg["partial-banks"] = [i for r in missed for i in self.partials[r]]
                cfg["partials"] = [
                    b for r in missed for shares in self.partials[r].values() for b in shares
                ]
            messages.append(
                Message(
                    RecordDict({self.arrayrecord_key: ArrayRecord(), self.configrecord_key: cfg}),
                    dst_node_id=node,
                    message_type=MessageType.TRAIN,
                )
            )
        return messages

    def aggregate_train(self, server_round: int, replies):
        try:
            return self._aggregate_train(server_round, replies)
        finally:
            self._grid = None  # held for the round only (an in-process grid holds the banks)

    def _aggregate_train(self, server_round: int, replies):
        ok = self.answered(server_round, replies, asked=self._asked)
        if not ok:
            return None, None
        for m in ok:  # it decrypted everything it was sent before it answered
            self.seen[m.metadata.src_node_id] = server_round - 1
            cfg = m.content["config"]
            if "stop-after-round" in cfg and self.stop is None:
                # the banks found the validation loss stalled: training ends here
                self.stop = (int(cfg["stop-after-round"]), int(cfg["best-round"]))
                if self.schedule is not None:
                    self.schedule.stop_training(server_round)
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
        arrays = {
            "aggregate": Array(np.frombuffer(b"".join(blobs), dtype=np.uint8).copy()),
            "contributors": Array(np.array([len(ok)], dtype=np.int64)),
            "round": Array(np.array([server_round], dtype=np.int64)),
            "task": Array(np.array([TASK_CODES[self.tasks[server_round]]], dtype=np.int64)),
        }
        if self.threshold is not None:
            shares = self.collect_partials(server_round, blobs)
            self.partials[server_round] = shares
            arrays["partial-banks"] = Array(np.array(list(shares), dtype=np.int64))
            arrays["partials"] = Array(
                np.frombuffer(
                    b"".join(b for v in shares.values() for b in v), dtype=np.uint8
                ).copy()
            )
        self.history[server_round] = (blobs, len(ok))
        return ArrayRecord(arrays), None


def classify_paillier(msg: Message, to_server: bool) -> tuple[str, str, bool]:
    if msg.metadata.message_type == DECRYPT:  # threshold key: t partials open a blinded sum
        return (
            ("partial_decryption", "ciphertext", False)
            if to_server
            else ("aggregate_to_decrypt", "ciphertext", False)
        )
    if to_server:
        return "encrypted_update", "ciphertext", False
    if list(msg.content["config"].get("aggregates", [])):
        return "encrypted_aggregate", "ciphertext", True  # the bank holds the key
    return "round_start", "plaintext", True


# --- the mode's entry points (see fedrisk.horizontal.aggregation) ---------------------------


def client_app(job: HorizontalJob, faults: FaultPlan, mods: list) -> ClientApp:
    queries = {DECRYPT_QUERY: paillier_decrypt} if job.threshold else {}
    return fedavg_client_app(job, faults, mods, paillier_train, queries)


def server_app(
    server_job: ServerJob, recorder: ServerRecorder, resume: Checkpoint | None
) -> ServerApp:
    s, setup = server_job.scenario, server_job.paillier
    assert setup is not None, "a Paillier server job carries the public key and layout"

    n_banks = len(server_job.party_names)
    threshold = default_threshold(n_banks) if s.privacy.key == "threshold" else None

    def strategy() -> PaillierFedAvg:
        return PaillierFedAvg(
            n_banks,
            setup,
            server_job.dp,
            server_job.secret,
            s.quorum,
            threshold=threshold,
            timeout=s.federation.round_timeout,
            schedule=RoundSchedule(s.rounds, s.calibration_rounds),
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


# The threat model (semi-honest parties) per privacy.key: which collusions cannot read
# an individual bank's update (clauses marked for the catalogs, joined with CLAUSE_SEP:
# the Chinese report translates them one by one).
RESISTS = {
    "shared": CLAUSE_SEP.join(
        (
            N_("a semi-honest aggregator alone, and banks without the aggregator's ciphertexts"),
            N_("not the aggregator with any one bank (every bank holds the private key)"),
        )
    ),
    "threshold": N_(
        "a semi-honest aggregator with up to {below} banks, or any {below} banks "
        "(t = {t} of {n} key shares decrypt, and the banks only partially decrypt "
        "blinded aggregates)"
    ),
}


def summary(server_job: ServerJob) -> dict[str, Any]:
    p = server_job.paillier
    assert p is not None
    n_banks = len(server_job.party_names)
    key = server_job.scenario.privacy.key
    t = default_threshold(n_banks) if key == "threshold" else None
    resists = RESISTS[key].format(t=t, n=n_banks, below=(t or 1) - 1)
    return {
        "key": key,
        "resists": resists,
        "who_learns_what": {
            "aggregator": CLAUSE_SEP.join(
                (
                    N_("which banks took part and the sizes of their messages"),
                    N_("ciphertexts only: no update, count or model in the clear"),
                )
            ),
            "banks": CLAUSE_SEP.join(
                (N_("the global model each round (they decrypt the aggregates)"),)
                + (
                    ()
                    if key == "threshold"
                    else (
                        N_(
                            "any bank could decrypt another's update if the aggregator "
                            "handed it over (shared key)"
                        ),
                    )
                )
            ),
        },
        "paillier": {
            "key": key,
            "threshold": t,  # banks whose partial decryptions open an aggregate
            "resists": resists,
            "banks_check_aggregates": CLAUSE_SEP.join(
                (
                    N_(
                        "count slot = contributors claimed >= federation.min_parties (1 with "
                        "client DP sampling)"
                    ),
                    N_("participants in [1, banks]"),
                )
            ),
            "key_bits": server_job.scenario.privacy.key_bits,
            "key_holders": N_("banks")
            if key == "shared"
            else N_("{t} of {n} banks").format(t=t, n=n_banks),
            "update_range": p.codec.clip,
            "frac_bits": p.codec.frac_bits,
            "slot_bits": 8 * p.codec.slot_bytes,
            "slots_per_ciphertext": p.packer.slots_per_int,
            "ciphertexts_per_update": p.n_ciphertexts,
            "public_max_weight": p.codec.max_weight,
        },
    }


__all__ = [
    "TASK_OF_CODE",
    "apply_decrypted",
    "PaillierFedAvg",
    "bank_crypto",
    "classify_paillier",
    "client_app",
    "clipped_values",
    "crypto_seconds",
    "decode_aggregate",
    "paillier_train",
    "server_app",
    "summary",
]
