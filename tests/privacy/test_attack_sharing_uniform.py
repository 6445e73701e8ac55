"""Every message a party receives in the secret-sharing protocol is uniform over the
ring or a ciphertext (``privacy.protocol = "secret_sharing"``, review of
``who_learns_what``: "during training only uniform shares and masked values").

The view: a Flower client mod on the ClientApps records each message into a data party
or the dealer and the reply coming out of it, which is exactly what the bank (the
ServerApp, the relay) receives from that party. Ring arrays cross as uint8 blobs in an
ArrayRecord "ss" and are read back as uint64 words. For each receiver and each kind of
array (per column for the E matrices) chi-square tests on the lowest and the top byte
and a test of each of the 64 bit frequencies must not reject uniformity; the same tests
on the parties' real fixed-point features and on the unmasked weights reject (the
control). Ciphertexts are checked for what they claim: AES-GCM blobs that open for
their addressee only (and the bank, the relay, cannot open), Paillier ciphertexts
below n² of the receiver's or the sender's key, whose plaintexts (what the key holder
decrypts) are again uniform words.

Excluded, with why (public to the receiver by the protocol, or the run's output):

- row positions ("rows"), the split name, pass/batch indices, "corr-at" (the offset of
  a batch's block in the dealer's corrections: a function of the batch sizes and
  widths), "index", "names", "widths", "batch-rows", "train": shapes and routing every
  party needs; the row positions are the plaintext row selection of every vertical
  protocol;
- X25519 channel keys and Paillier moduli: public keys;
- the output shares: "score-share" (prediction passes: the bank is meant to learn the
  joint score z, who_learns_what) and "weight-share" (reveal = "own": each party is meant
  to learn its own weights). A share that went through SecureML's local truncation lies
  in [0, 2^(64-t)) or its negative by construction, so its top byte is not uniform; its
  low bits are tested. Whether these outputs tell the bank more than z is
  test_attack_sharing_scores.py's question.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
import types
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from cryptography.exceptions import InvalidTag
from scipy import stats

from fedrisk.crypto.channel import NONCE_BYTES, ChannelKey
from fedrisk.crypto.hetero import decode_signed
from fedrisk.crypto.sharing import (
    Prg,
    ProductKey,
    decode,
    encode,
    encode_features,
    holder_pad,
    owner_pad,
    ring_from_bytes,
)
from fedrisk.data.vertical import load_vertical
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.run import run_scenario
from fedrisk.scenario import load_scenario
from fedrisk.vertical.party import standardised_rows
from fedrisk.vertical.protocol import MODEL_KEY, ROWS_KEY
from fedrisk.vertical.sharing import bank as ss_bank
from fedrisk.vertical.sharing import paillier_products as hp
from fedrisk.vertical.sharing import party as ss_party
from fedrisk.vertical.sharing import protocol as ss_protocol
from fedrisk.vertical.sharing.dealer import dealer_seed
from fedrisk.vertical.sharing.protocol import CONFIG_STATE, DEALER_NAME, STATE_KEY, DealerJob

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:1024-bit Paillier keys")]

MASTER = b"sharing-attack-review".ljust(32, b"\0")
P_MIN = 1e-6  # per test; deterministic runs (fixed secrets), and ~150 tests per run

TOML = """name = "ss-attacks"
seed = 11
rounds = {rounds}
[data]
source = "synthetic"
customers = {customers}
features_per_source = 3
overlap = 0.8
test_fraction = 0.2
[federation]
kind = "vertical"
[[federation.parties]]
name = "bank"
label = true
signal = 1.0
[[federation.parties]]
name = "telecom"
signal = 0.8
{second}[model]
learning_rate = 0.3
batch_size = {batch}
[privacy]
protocol = "{protocol}"
{triples}key_bits = 1024
"""
SECOND = '[[federation.parties]]\nname = "tax"\nsignal = 0.8\n'


# --- the capture (shared by the test_attack_sharing_* files) ----------------------------------


def _plain_cfg(content) -> dict:
    if "config" not in content.config_records:
        return {}
    out = {}
    for k, v in content.config_records["config"].items():
        out[k] = list(v) if isinstance(v, list) else v
    return out


def _plain_arrays(content) -> dict[str, np.ndarray]:
    return {k: a.numpy().copy() for rec in content.array_records.values() for k, a in rec.items()}


@dataclass
class Exchange:
    """One message into a ClientApp and the reply the bank gets back."""

    stage: str
    kind: str  # Flower message type
    cfg: dict
    arrays: dict  # ring arrays as uint8 blobs (or the Paillier protocol's floats)
    reply_cfg: dict
    reply_arrays: dict
    before: dict  # the party's own state before (simulator's truth: scoring only)
    after: dict
    F: np.ndarray | None = None  # the batch's z-scored features (truth)


@dataclass
class View:
    s: object
    folder: Path
    secrets: RunSecrets
    names: list[str]  # data parties, in job order (node k serves names[k])
    log: dict = field(default_factory=dict)  # receiver name -> [Exchange]
    channel: dict = field(default_factory=dict)  # party name -> its X25519 private bytes
    bank_key: ChannelKey | None = None
    decrypted: list = field(default_factory=list)  # (n, signed plaintexts) per decryption
    bank_delta: list = field(default_factory=list)  # the bank's ⟨d4⟩_0 per training batch
    bank_wp: dict = field(default_factory=dict)  # paillier triples: (pass, batch) -> ⟨w_1⟩_0
    paillier_keys: dict = field(default_factory=dict)  # n -> private key (truth)
    joint: list = field(default_factory=list)  # the bank's (split, own features, z) outputs
    truncated: int = 0  # two-party truncations made (elements, counted at role 0)

    @property
    def dealer_mode(self) -> bool:
        return self.s.privacy.protocol == "secret_sharing" and self.s.privacy.triples == "dealer"

    @property
    def tag(self) -> int:
        """The run's public tag, as the bank told every party at set-up."""
        for exchanges in self.log.values():
            for e in exchanges:
                if "run-tag" in e.cfg:
                    return int.from_bytes(e.cfg["run-tag"], "big")
        raise AssertionError("no set-up message carried the run's tag")

    def seed_of(self, index: int) -> bytes:
        """The seed the dealer dealt party ``index`` (0 the bank), from its secret."""
        return dealer_seed(DealerJob(self.secrets.of(DEALER_NAME), self.tag), index)

    def party(self, name: str) -> list[Exchange]:
        return self.log.get(name, [])


_TMP: list[str] = []


def _tmpdir() -> Path:
    if not _TMP:
        _TMP.append(tempfile.mkdtemp(prefix="fedrisk-ss-attacks-"))
        atexit.register(shutil.rmtree, _TMP[0], True)
    return Path(tempfile.mkdtemp(dir=_TMP[0]))


def scenario(
    protocol="secret_sharing",
    triples="dealer",
    parties=2,
    customers=3000,
    rounds=2,
    batch=256,
    overrides=(),
):
    folder = _tmpdir()
    text = TOML.format(
        rounds=rounds,
        customers=customers,
        batch=batch,
        second=SECOND if parties == 2 else "",
        protocol=protocol,
        triples=f'triples = "{triples}"\n' if protocol == "secret_sharing" else "",
    )
    (folder / "s.toml").write_text(text)
    return load_scenario(folder / "s.toml", list(overrides)), folder


def run_view(s, folder: Path, secrets: RunSecrets) -> View:
    """One run of ``s`` with everything the parties, the dealer and the bank receive."""
    tables = load_vertical(s)
    names = [p.name for p in tables.data_parties]
    view = View(s, folder / "run", secrets, names)
    no_dp = types.SimpleNamespace(clip_norm=None)

    def state_of(context) -> dict:
        out = {}
        for key in (STATE_KEY, MODEL_KEY):
            if key in context.state.array_records:
                out.update({k: a.numpy().copy() for k, a in context.state[key].items()})
        return out

    def spy(msg, context, call_next):
        k = int(context.node_config["partition-id"])
        name = names[k] if k < len(names) else DEALER_NAME
        cfg, arrays = _plain_cfg(msg.content), _plain_arrays(msg.content)
        before = state_of(context)
        reply = call_next(msg, context)
        F = None
        if k < len(names) and ("rows" in cfg or cfg.get("stage") == "scores"):
            split = str(cfg.get("split", "train"))
            idx = context.state[ROWS_KEY][split].numpy()
            if "rows" in cfg:
                idx = idx[np.asarray(cfg["rows"], dtype=np.int64)]
            F = standardised_rows(no_dp, tables.data_parties[k], idx, context)
        if CONFIG_STATE in context.state.config_records and name not in view.channel:
            rec = context.state[CONFIG_STATE]
            if "channel" in rec:
                view.channel[name] = rec["channel"]
        view.log.setdefault(name, []).append(
            Exchange(
                str(cfg.get("stage", "")),
                str(msg.metadata.message_type),
                cfg,
                arrays,
                _plain_cfg(reply.content),
                _plain_arrays(reply.content),
                before,
                state_of(context),
                F,
            )
        )
        return reply

    class BankChannelKey(ChannelKey):
        def __init__(self, name, private=None):
            super().__init__(name, private)
            view.bank_key = self

    real_decrypt, real_matmul, real_forward = hp.decrypt_many, ss_bank.ring_matmul, hp.bank_forward

    def decrypt_many(key, cts):
        values = real_decrypt(key, cts)
        n = key.public_key.n
        view.paillier_keys[n] = key
        view.decrypted.append((n, [decode_signed(v, n) for v in values]))
        return values

    def bank_matmul(A, B):  # the bank's own G0 = X_0ᵀ ⟨d4⟩_0: record its ⟨d4⟩_0
        view.bank_delta.append(np.asarray(B, dtype=np.uint64).copy())
        return real_matmul(A, B)

    def bank_forward(bank, pass_id, index, *args):
        view.bank_wp[(pass_id, index)] = bank.wp[1].copy()
        return real_forward(bank, pass_id, index, *args)

    real_joint, real_truncate = ss_bank.SharingBank.joint_scores, ss_bank.truncate

    def joint_scores(bank, pass_id, split, X, rnd):
        z = real_joint(bank, pass_id, split, X, rnd)
        view.joint.append((split, X.copy(), z.copy()))
        return z

    def truncate(share, bits, party):
        if party == 0:
            view.truncated += np.asarray(share).size
        return real_truncate(share, bits, party)

    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module in (ss_bank, ss_party, ss_protocol, hp):
            mp.setattr(module, "truncate", truncate)
        mp.setattr(ss_bank.SharingBank, "joint_scores", joint_scores)
        mp.setattr(ss_bank, "ChannelKey", BankChannelKey)
        mp.setattr(hp, "decrypt_many", decrypt_many)
        mp.setattr(ss_bank, "ring_matmul", bank_matmul)
        mp.setattr(hp, "bank_forward", bank_forward)
        run_scenario(s, view.folder, show_progress=False, client_mods=[spy], secrets=secrets)
    return view


@functools.cache
def capture(
    protocol="secret_sharing",
    triples="dealer",
    parties=2,
    customers=3000,
    rounds=2,
    batch=256,
    overrides=(),
    master=MASTER,
) -> View:
    """A cached run (several files attack the same runs)."""
    s, folder = scenario(protocol, triples, parties, customers, rounds, batch, overrides)
    return run_view(s, folder, RunSecrets(master))


def dealer_view() -> View:
    """Bank + two data parties + the dealer, 2 epochs of batches of 256."""
    return capture()


def paillier_view() -> View:
    """Bank + one data party, products under Paillier (1024-bit keys), 1 epoch."""
    return capture(triples="paillier", parties=1, customers=800, rounds=1)


# --- uniformity -------------------------------------------------------------------------------


def words_of(blob: np.ndarray) -> np.ndarray:
    return ring_from_bytes(np.asarray(blob, dtype=np.uint8))


def uniformity(words: np.ndarray, bits: int = 64) -> dict[str, float]:
    """p-values: chi-square on the lowest byte and on the top byte of the low ``bits``
    bits (nibbles when there are fewer than 2,560 words), and the smallest p of the
    ``bits`` bit frequencies (two-sided, Bonferroni over the bits)."""
    w = np.asarray(words, dtype=np.uint64).ravel()
    n = len(w)
    assert n >= 32, n
    width = 8 if n >= 2560 else 4
    low = (w & np.uint64((1 << width) - 1)).astype(np.int64)
    top = ((w >> np.uint64(bits - width)) & np.uint64((1 << width) - 1)).astype(np.int64)
    p_low = stats.chisquare(np.bincount(low, minlength=1 << width)).pvalue
    p_top = stats.chisquare(np.bincount(top, minlength=1 << width)).pvalue
    ones = ((w[:, None] >> np.arange(bits, dtype=np.uint64)) & np.uint64(1)).sum(axis=0)
    z = (ones - n / 2) / np.sqrt(n / 4)
    p_bits = min(1.0, bits * 2 * stats.norm.sf(np.abs(z)).min())
    return {"low byte": float(p_low), "top byte": float(p_top), "bits": float(p_bits)}


def rejects(words: np.ndarray, bits: int = 64) -> dict[str, float]:
    return {k: p for k, p in uniformity(words, bits).items() if p < P_MIN}


OUTPUT_SHARES = ("score-share", "weight-share")


def ring_classes(view: View, receiver: str) -> dict[tuple, list[np.ndarray]]:
    """Every ring array ``receiver`` receives, grouped by (stage, name[, column]): a
    data party's or the dealer's incoming messages, or (receiver "bank") every reply.
    Matrices (E) are split per column: a pad that missed one column shows there."""
    groups: dict[tuple, list[np.ndarray]] = {}
    if receiver == "bank":
        items = [
            (ex.stage, ex.reply_arrays, ex.cfg, sender)
            for sender, log in view.log.items()
            for ex in log
        ]
    else:
        items = [(ex.stage, ex.arrays, ex.cfg, receiver) for ex in view.party(receiver)]
    widths = {}
    for ex in view.party(view.names[0]):
        if ex.stage == "setup":
            widths = dict(enumerate(int(w) for w in ex.cfg["widths"]))
    for stage, arrays, cfg, sender in items:
        for name, blob in arrays.items():
            words = words_of(blob)
            key = (stage, sender, name)
            if name[0] == "E" and "rows" in cfg:  # E (from its sender) or E{m} (relayed)
                owner = view.names.index(sender) + 1 if name == "E" else int(name[1:])
                cols = widths[owner]
                for j, col in enumerate(words.reshape(-1, cols).T):
                    groups.setdefault((*key, j), []).append(col)
            else:
                groups.setdefault(key, []).append(words)
    return groups


def _pooled(groups: dict, minimum: int = 160) -> dict[tuple, np.ndarray]:
    out, rest = {}, {}
    for key, parts in groups.items():
        words = np.concatenate(parts)
        (out if len(words) >= minimum else rest)[key] = words
    if rest:
        out[("pooled", "small classes", len(rest))] = np.concatenate(list(rest.values()))
    return out


def test_dealer_mode_every_ring_array_a_party_receives_is_uniform():
    """HOLDS. Bank + two data parties + dealer, 2 epochs: every masked value (E = X − U,
    f = y − v, the relayed f's and E's, the halves h, the dealer's corrections
    U·v − ⟨U·v⟩) each receiver gets, per kind (per column for E), passes the byte
    and bit tests; the output shares pass them on their low 56 bits."""
    view = dealer_view()
    checked, outputs = 0, 0
    for receiver in [*view.names, "bank"]:
        groups = ring_classes(view, receiver)
        assert groups, receiver
        masked = {k: v for k, v in groups.items() if k[2] not in OUTPUT_SHARES}
        for key, words in _pooled(masked).items():
            assert not rejects(words), (receiver, key, uniformity(words))
            checked += 1
        for key, words in _pooled(
            {k: v for k, v in groups.items() if k[2] in OUTPUT_SHARES}
        ).items():
            if len(words) >= 160:
                assert not rejects(words, bits=56), (receiver, key, uniformity(words, 56))
                outputs += 1
    # the output shares: data party 1's sum of the shares of z, the reveal's weight shares
    assert checked >= 30 and outputs >= 1, (checked, outputs)
    # the dealer receives no array at all
    assert all(not ex.arrays for ex in view.party(DEALER_NAME))


PUBLIC_CONFIG = {
    # key: why a receiver may read it
    "stage": "the protocol step",
    "server-round": "the round",
    "pass": "pass index (epoch, or a prediction pass)",
    "batch": "batch index",
    "rows": "row positions: the plaintext row selection of every vertical protocol",
    "split": "train/test: the held-out split is known to the data parties (PSI)",
    "train": "whether a pass trains",
    "corr-at": "offset of a batch's block in the corrections: from batch sizes, widths",
    "index": "the party's index",
    "names": "the parties' names",
    "widths": "every party's column count",
    "batch-rows": "batch sizes",
    "channel-key": "an X25519 public key",
    "peer-keys": "X25519 public keys",
    "dealer-key": "an X25519 public key",
    "width": "a column count",
    "paillier-n": "a Paillier public modulus",
    "bank-paillier-n": "a Paillier public modulus",
    "ok": "an acknowledgement",
    "dealt": "an acknowledgement",
    "run-tag": "the run's public tag (a hash of the resolved scenario and data fingerprints)",
}
SEALED = ("sealed", "sealed-seed", "sealed-seeds", "sealed-halves", "sealed-shares")
PAILLIER = ("enc-product", "enc-input")


def config_items(view: View, receiver: str):
    """(stage, sender, key, value) of every config entry ``receiver`` gets in the
    secret-sharing exchanges (``query.sharing`` and training; the PSI and alignment
    stages are every vertical protocol's)."""
    if receiver == "bank":
        for sender, log in view.log.items():
            for ex in log:
                if ex.kind in ("query.sharing", "train"):
                    for k, v in ex.reply_cfg.items():
                        yield ex.stage, sender, k, v
    else:
        for ex in view.party(receiver):
            if ex.kind in ("query.sharing", "train"):
                for k, v in ex.cfg.items():
                    yield ex.stage, "bank", k, v


def test_every_config_value_is_public_or_a_ciphertext():
    """HOLDS. Besides the ring arrays, each receiver gets only the public entries listed
    above (each with its reason), 32-byte public keys and ciphertexts: sealed blobs in
    dealer mode, Paillier ciphertexts in Paillier mode; no float anywhere."""
    for view in (dealer_view(), paillier_view()):
        for receiver in [*view.names, "bank", *([DEALER_NAME] if view.dealer_mode else [])]:
            for stage, _, key, value in config_items(view, receiver):
                values = value if isinstance(value, list) else [value]
                assert not any(isinstance(v, float) for v in values), (receiver, key)
                if key in SEALED:
                    assert view.dealer_mode and all(isinstance(v, bytes) for v in values)
                elif key in PAILLIER:
                    assert not view.dealer_mode and all(isinstance(v, bytes) for v in values)
                else:
                    assert key in PUBLIC_CONFIG, (receiver, stage, key)
                    if key == "rows":  # positions, not 0/1 labels
                        assert len(set(values)) == len(values)
                    if key.endswith("key") or key == "peer-keys":
                        assert all(isinstance(v, bytes) and len(v) == 32 for v in values)


def _sealed_blobs(view: View):
    """(addressee, sender, what, sealed bytes) of every sealed blob in the run."""
    names = ["bank", *view.names]
    for ex in view.party(DEALER_NAME):
        if ex.stage == "dealer-setup":
            for i, blob in enumerate(ex.reply_cfg["sealed-seeds"]):
                yield names[i], DEALER_NAME, "seed", blob
        if ex.stage == "dealer-pass":
            for h, blob in enumerate(ex.reply_cfg["sealed"], start=1):
                yield names[h], DEALER_NAME, "corrections", blob
    for sender in view.names[1:]:
        for ex in view.party(sender):
            if "sealed" in ex.reply_cfg:
                # training: its half of a product of the bank's; prediction: its share of z
                what = "half" if ex.cfg.get("train") else "score share"
                yield view.names[0], sender, what, ex.reply_cfg["sealed"]


def _peer_public(view: View, name: str) -> bytes:
    for ex in view.party(view.names[0]):
        if ex.stage == "setup":
            names, keys = list(ex.cfg["names"]), list(ex.cfg["peer-keys"])
            return keys[names.index(name)] if name in names else keys[-1]
    raise AssertionError("no set-up seen")


def test_sealed_blobs_are_aes_gcm_for_their_addressee_only():
    """HOLDS. Every sealed blob (the dealer's seeds and corrections, the halves data
    party 2 seals for data party 1) is nonce + AES-GCM ciphertext + tag: 28 bytes over
    its payload, opens under its addressee's key, and the bank, which relays it, gets
    InvalidTag with its own. The blobs' bytes are uniform."""
    view = dealer_view()
    opened, blobs = 0, []
    for addressee, sender, _, blob in _sealed_blobs(view):
        blobs.append(np.frombuffer(blob, dtype=np.uint8))
        peer = _peer_public(view, sender)
        if addressee == "bank":
            payload = view.bank_key.open(sender, peer, blob)
        else:
            key = ChannelKey.from_private_bytes(addressee, view.channel[addressee])
            payload = key.open(sender, peer, blob)
            with pytest.raises(InvalidTag):
                view.bank_key.open(sender, peer, blob)
        assert len(blob) == NONCE_BYTES + len(payload) + 16
        opened += 1
    assert opened >= 10
    data = np.concatenate(blobs)
    counts = np.bincount(data, minlength=256)
    assert stats.chisquare(counts).pvalue > 1e-6


def test_what_the_addressee_opens_is_uniform():
    """HOLDS. What data party 1 finds inside the sealed halves (X_0ᵀ v − ⟨U_0ᵀv⟩_0,
    masked by the bank's share of the pads' product) and each party's dealer
    corrections (U·v − ⟨U·v⟩_owner) are uniform words: opening a blob gives its
    addressee nothing but its own share."""
    view = dealer_view()
    payloads: dict[str, list] = {}
    for addressee, sender, what, blob in _sealed_blobs(view):
        if what == "seed":
            continue  # 32 random bytes, expanded by AES-CTR (its own addressee's)
        key = ChannelKey.from_private_bytes(addressee, view.channel[addressee])
        raw = key.open(sender, _peer_public(view, sender), blob)
        payloads.setdefault(f"{what}: {addressee} from {sender}", []).append(
            words_of(np.frombuffer(raw, dtype=np.uint8))
        )
    # two parties' corrections, party 2's halves and its shares of z for party 1
    assert len(payloads) == 4
    for who, parts in payloads.items():
        words = np.concatenate(parts)
        # a share of z is truncated as the owner's (a logical shift): 56 uniform bits
        bits = 56 if who.startswith("score share") else 64
        assert not rejects(words, bits=bits), (who, uniformity(words, bits))


def test_paillier_mode_ciphertexts_and_what_the_key_holders_decrypt():
    """HOLDS. With triples = "paillier" every ciphertext each side receives is below n²
    of the key it claims (enc-product: the receiver's own key, which it decrypts;
    enc-input: the sender's key, which it cannot); what each decrypts, X·y + r, is
    uniform as a ring word (mod 2^64) and, as an integer, below 2^(mask bits + 1). The
    only ring arrays are the output shares; the score shares' low 56 bits are uniform."""
    view = paillier_view()
    bank_n = party_n = None
    for ex in view.party(view.names[0]):
        if ex.stage == "keys":
            party_n = int.from_bytes(ex.reply_cfg["paillier-n"], "big")
        if ex.stage == "setup":
            bank_n = int.from_bytes(ex.cfg["bank-paillier-n"], "big")
    assert bank_n and party_n and bank_n != party_n
    counted = 0
    for receiver in (view.names[0], "bank"):
        own, other = (party_n, bank_n) if receiver != "bank" else (bank_n, party_n)
        for _, _, key, value in config_items(view, receiver):
            if key in PAILLIER:
                n = own if key == "enc-product" else other
                width = (2 * n.bit_length() + 7) // 8
                for blob in value:
                    assert len(blob) == width
                    assert 0 < int.from_bytes(blob, "big") < n * n
                    counted += 1
    assert counted > 1000
    for n in (bank_n, party_n):
        plain = [v for m, values in view.decrypted if m == n for v in values]
        assert len(plain) >= 500
        top = max(hp.mask_bits(t) for t in (256, 2, 4))
        assert all(-(2**90) < v < 2 ** (top + 1) for v in plain)
        words = np.array([v % 2**64 for v in plain], dtype=np.uint64)
        assert not rejects(words), uniformity(words)
    # the ring arrays: only the output shares (score shares, the reveal)
    groups = ring_classes(view, "bank")
    assert {k[2] for k in groups} == set(OUTPUT_SHARES)
    scores = np.concatenate(next(v for k, v in groups.items() if k[2] == "score-share"))
    assert not rejects(scores, bits=56), uniformity(scores, 56)


def test_the_same_tests_reject_real_features_and_unmasked_weights():
    """The control (the tests above can fail): the very uniformity tests reject a data
    party's real fixed-point features (encode_features of its z-scored rows: what E
    would be without the pad U), E with its pad put back, and its weights encoded as the
    protocol carries them, unmasked."""
    view = dealer_view()
    name = view.names[0]
    fwd = [ex for ex in view.party(name) if ex.stage == "fwd" and ex.cfg.get("train")]
    X = np.concatenate([encode_features(ex.F) for ex in fwd])
    assert rejects(X)
    for j in range(X.shape[1]):
        assert rejects(X[:, j])
    # E + U = X: the test sees through an E whose pad is removed
    prg = Prg(view.seed_of(1))
    unpadded = [
        words_of(ex.reply_arrays["E"]).reshape(len(ex.cfg["rows"]), -1)
        + owner_pad(prg, int(ex.cfg["pass"]), int(ex.cfg["batch"]), len(ex.cfg["rows"]), 3)
        for ex in fwd
    ]
    assert np.array_equal(np.concatenate(unpadded), X)
    assert rejects(np.concatenate(unpadded))
    # the weights, reconstructed from both shares, in the ring as the protocol holds them
    bank_prg = Prg(view.seed_of(0))
    weights = []
    for ex in fwd:
        v = holder_pad(
            bank_prg, ProductKey("fwd", 1, 0), int(ex.cfg["pass"]), int(ex.cfg["batch"]), 3
        )
        weights.append(ex.before["w"] + words_of(ex.arrays["f"]) + v)
    w = np.concatenate(weights)
    assert np.abs(decode(w, view.s.privacy.frac_bits)).max() < 8  # real weights, not garbage
    assert rejects(w)
    assert rejects(encode(np.random.default_rng(0).normal(size=5000), view.s.privacy.frac_bits))
