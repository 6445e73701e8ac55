"""Vertical federation: a bank and data-source companies, same customers, own columns.

The bank (label holder, Paillier key holder) runs the Flower ``ServerApp`` and
orchestrates; every data-source party is a ``ClientApp``. After the identify handshake:

1. **Alignment (PSI).** For each data party in turn, ECDH PSI over X25519
   (:mod:`fedrisk.crypto.psi`), chained through the bank: party 2 is intersected with
   ``bank ∩ party 1`` only, and so on. The bank then tells each party the final shared
   ids (all of which the party holds) and which of them are held out for testing.
2. **Training** (hetero logistic regression, Hardy et al. 2017; FATE's scheme with the
   label holder as key holder), per mini-batch chosen by the bank:
   a. each party sends its partial scores u_k = X_k w_k for the batch;
   b. the bank forms u = X_B w_B + b + Σ u_k and the Taylor residual d = u/4 − y'/2
      (y' ∈ {−1, +1}), updates its own weights, and sends Enc(d_i) for the batch;
   c. each party computes Enc(Σ_i d_i x_ij) homomorphically for its features, adds a
      fresh random mask R_j (uniform mod n) inside the encryption and returns it;
   d. the bank decrypts G_j + R_j (uniform: it learns nothing) and returns it; the party
      removes R_j and updates its own weights (with the next batch's request).
3. **Joint prediction:** parties send partial scores on the test rows; the bank scores.
4. **Calibration** (unless ``model.calibration = "none"``): parties send partial scores on
   the training rows at their final weights; the bank fits σ(a·z + c) (or σ(z + c)) to
   the labels there and applies it when it scores (:mod:`fedrisk.vertical.calibration`).

Who learns what (honest-but-curious, non-colluding): the bank learns the intersection,
each party's set size, and each party's partial scores u_k (a 1-d projection of its
features per customer, from which over many steps the features are identifiable up to
an invertible linear map — a known weakness of this protocol family). A data party
learns the bank's customer count (or, after the first party, the size of the bank's
running intersection), the multi-party intersection, its own plaintext gradient — from which labels leak (see
:func:`fedrisk.vertical.leakage.label_leakage`), more at small batches — and nothing else: residuals reach it
encrypted, its gradient masked. No party sees another's features, weights or labels.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flwr.app import ConfigRecord, Message, RecordDict
from phe.paillier import PaillierPrivateKey, PaillierPublicKey

from fedrisk.privacy.plan import DPPlan
from fedrisk.privacy.secrets import PartySecret
from fedrisk.scenario import Scenario

PSI_KEY = "fedrisk.psi"
ROWS_KEY = "fedrisk.rows"
MODEL_KEY = "fedrisk.weights"
MASK_KEY = "fedrisk.masks"
SCALER_KEY = "fedrisk.scaler"
QUERY = "query.vertical"


@dataclass(frozen=True)
class PartyData:
    name: str
    ids: np.ndarray
    X: np.ndarray
    feature_names: tuple[str, ...]
    # the party's own secret: its PSI shuffle (the PSI key itself is drawn by the OS)
    secret: PartySecret = field(default_factory=PartySecret.fresh, compare=False)


@dataclass(frozen=True)
class DataPartyJob:
    """What the data-source parties hold (one ClientApp serves them by partition-id)."""

    scenario: Scenario
    parties: tuple[PartyData, ...]
    public_key: PaillierPublicKey
    clip_norm: float | None = None  # label DP: rows clipped to this L2 norm (public rule)
    # where each party keeps its final part of the model (model/<party>.json, owner-only),
    # for scoring applicants later; None: not kept (a scorecard's WOE-coded training)
    model_dir: str | None = None


@dataclass(frozen=True)
class BankJob:
    """What the bank holds: its table, labels and the private key."""

    scenario: Scenario
    name: str
    ids: np.ndarray
    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    party_names: tuple[str, ...]
    public_key: PaillierPublicKey
    private_key: PaillierPrivateKey
    dp: DPPlan | None = None  # DPPlan with mode 'label': the bank noises each returned gradient
    # the bank's own secret: its PSI shuffles, the held-out split, label-DP noise
    secret: PartySecret = field(default_factory=PartySecret.fresh, compare=False)


@dataclass
class VerticalOutcome:
    aligned: int = 0
    party_sizes: dict[str, int] = field(default_factory=dict)
    train_ids: np.ndarray | None = None
    test_ids: np.ndarray | None = None
    test_scores: np.ndarray | None = None
    test_y: np.ndarray | None = None
    bank_train_X: np.ndarray | None = None
    bank_test_X: np.ndarray | None = None
    encrypt_s: float = 0.0  # online: the residuals' encryption the bank waited for
    precompute_s: float = 0.0  # offline: obfuscators prepared while batches were away
    decrypt_s: float = 0.0
    encryptions: int = 0
    epochs: list = field(default_factory=list)
    calibration: dict | None = None  # the bank's calibration (calibration_record), if any
    largest_score: float | None = None  # secret sharing: max |z| the bank learned at the end
    bank_scaler: Any = None  # the bank's scaling of its own columns (its part of the model)

    _ARRAYS = ("train_ids", "test_ids", "test_scores", "test_y", "bank_train_X", "bank_test_X")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, arrays exact (``.npy`` bytes, base64): what the bank's ServerApp
        sends back to the harness on the Deployment Engine. Holds only what the bank
        knows: the aligned ids, its own z-scored rows, labels and joint test scores."""
        out: dict[str, Any] = {
            k: getattr(self, k)
            for k in (
                "aligned",
                "party_sizes",
                "encrypt_s",
                "precompute_s",
                "decrypt_s",
                "encryptions",
                "epochs",
                "calibration",
                "largest_score",
            )
        }
        out.update({k: _npy_text(getattr(self, k)) for k in self._ARRAYS})
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VerticalOutcome:
        plain = {k: v for k, v in d.items() if k not in cls._ARRAYS}
        return cls(**plain, **{k: _npy_array(d[k]) for k in cls._ARRAYS})


def _npy_text(a: np.ndarray | None) -> str | None:
    if a is None:
        return None
    buf = io.BytesIO()
    np.save(buf, np.asarray(a), allow_pickle=False)
    return base64.b64encode(buf.getvalue()).decode()


def _npy_array(text: str | None) -> np.ndarray | None:
    if text is None:
        return None
    return np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False)


#: transcript names of the bank's PSI messages, by protocol stage: snake_case and
#: ``psi_`` first, like every PSI message in the transcript (the stages themselves are
#: wire values, kebab-case like the other config keys)
PSI_MESSAGES = {"psi-mask": "psi_masked_ids", "psi-finish": "psi_double_masked_ids"}


def classify_vertical(msg: Message, to_server: bool) -> tuple[str, str, bool]:
    """(transcript name, protection, readable by the receiver) of one message. Names are
    snake_case, named after what the message carries; PSI's start with ``psi_``."""
    cfg = msg.content.config_records.get("config", {})
    if to_server:
        if "scores" in msg.content:
            return "partial_scores", "plaintext", True
        if "masked-gradient" in cfg:
            return "encrypted_masked_gradient", "masked", False  # decrypts to G + R
        if "masked" in cfg:  # its own ids masked, and the bank's masked again
            return "psi_masked_and_double_masked_ids", "masked", False
        return "ack", "plaintext", True
    stage = str(cfg.get("stage", ""))
    if stage == "gradient":
        return "encrypted_residuals", "ciphertext", False
    if stage in PSI_MESSAGES:
        return PSI_MESSAGES[stage], "masked", False
    if stage == "align":
        return "aligned_ids", "plaintext", True  # ids the party itself holds
    if "unmasked-pending" in cfg:
        return "masked_gradient", "masked", True  # its own gradient plus its own mask
    if cfg.get("purpose") == "calibration":
        return "calibration_request", "plaintext", True  # names no customer
    return "row_selection", "plaintext", True  # batch positions only


def config_reply(msg: Message, values: dict) -> Message:
    """A reply whose content is one config record (ids, ciphertexts, acks)."""
    return Message(RecordDict({"config": ConfigRecord(values)}), reply_to=msg)


__all__ = [
    "MASK_KEY",
    "MODEL_KEY",
    "PSI_KEY",
    "PSI_MESSAGES",
    "QUERY",
    "ROWS_KEY",
    "SCALER_KEY",
    "BankJob",
    "DataPartyJob",
    "PartyData",
    "VerticalOutcome",
    "classify_vertical",
    "config_reply",
]
