"""What each side of a horizontal run holds.

The bank side (:class:`HorizontalJob`: rows and, for Paillier, the private key) and the
aggregator side (:class:`ServerJob`: public parameters only) are separate objects, so
the aggregator can be shown never to hold anything private.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
from flwr.app import Array, ArrayRecord
from phe.paillier import PaillierPrivateKey

from fedrisk.crypto.threshold import KeyShare
from fedrisk.horizontal.layout import PaillierSetup, public_max_weight
from fedrisk.models.logistic import SGDConfig
from fedrisk.privacy.plan import DPPlan
from fedrisk.privacy.secrets import PartySecret
from fedrisk.scenario import Scenario


@dataclass(frozen=True)
class BankData:
    """One bank's training rows (never leave the bank's ClientApp)."""

    name: str
    X: np.ndarray
    y: np.ndarray
    # the bank's own secret: its DP noise and sampling, noise shares, SecAgg+ rounding
    secret: PartySecret = field(default_factory=PartySecret.fresh, compare=False)
    # early stopping: the bank's own validation rows (held out of X, y)
    X_val: np.ndarray | None = None
    y_val: np.ndarray | None = None


def rows_digest(bank: BankData) -> str:
    """A short fingerprint of a bank's rows. SuperNodes check they were given the rows
    the scenario's split gives (a file from another scenario or seed would train a
    different model, and could overlap the harness's test rows); a resumed run checks
    the data did not change since it started."""
    h = hashlib.sha256(np.ascontiguousarray(bank.X, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(bank.y, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class HorizontalJob:
    """Everything the banks hold: their rows and, in Paillier mode, the shared key pair."""

    scenario: Scenario
    banks: tuple[BankData, ...]
    n_features: int
    paillier: PaillierSetup | None = None  # public parameters of the packing
    private_key: PaillierPrivateKey | None = None  # the banks' Paillier private key
    dp: DPPlan | None = None  # noise multiplier, clip norm, rates
    key_shares: tuple[KeyShare, ...] | None = None  # threshold key: only the banks' own
    randomness: str = "os-entropy"  # where the parties' secrets come from (public)

    @property
    def threshold(self) -> bool:
        """The banks hold shares of a threshold key instead of one private key."""
        return self.key_shares is not None

    def key_share(self, party: int) -> KeyShare:
        """Bank ``party``'s share of the threshold key (its Shamir index is party + 1)."""
        assert self.key_shares is not None
        for share in self.key_shares:
            if share.index == party + 1:
                return share
        raise KeyError(f"{self.banks[party].name} holds no share of the threshold key")

    @property
    def sgd(self) -> SGDConfig:
        m = self.scenario.model
        return SGDConfig(m.learning_rate, m.local_epochs, m.batch_size, m.l2, m.proximal_mu)

    def server_side(self, secret: PartySecret | None = None) -> ServerJob:
        """The aggregator's view: names, sizes of things, public parameters and the
        aggregator's own ``secret`` (fresh when None). No data, no bank's secret."""
        return ServerJob(
            self.scenario,
            tuple(b.name for b in self.banks),
            self.n_features,
            public_max_weight(max(len(b.y) for b in self.banks)),
            self.paillier,
            self.dp.public() if self.dp is not None else None,  # no bank's q_i
            secret or PartySecret.fresh(),
        )


@dataclass(frozen=True)
class ServerJob:
    scenario: Scenario
    party_names: tuple[str, ...]
    n_features: int
    max_weight: int  # public bound on any bank's example count (a power of 2)
    paillier: PaillierSetup | None = None  # public key and packing layout only
    dp: DPPlan | None = None  # public: no per-bank budget (DPPlan.public)
    # the aggregator's own secret: client-DP sampling of banks and its noise
    secret: PartySecret = field(default_factory=PartySecret.fresh, compare=False)


def client_rng(seed: int, party: int, rnd: int) -> np.random.Generator:
    """A bank's generator for one round of plain (non-private) SGD: from the public
    seed, so runs without DP reproduce without secrets. Anything protective draws from
    the bank's secret instead (:class:`~fedrisk.privacy.secrets.PartySecret`)."""
    return np.random.default_rng([seed, 1, party, rnd])


def params_record(params: np.ndarray) -> ArrayRecord:
    return ArrayRecord({"params": Array(np.ascontiguousarray(params, dtype=np.float64))})


__all__ = [
    "BankData",
    "HorizontalJob",
    "ServerJob",
    "client_rng",
    "params_record",
    "rows_digest",
]
