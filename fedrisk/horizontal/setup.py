"""The banks' side of a horizontal run, from prepared data and the banks' keys."""

from __future__ import annotations

from fedrisk.crypto.paillier import BankKeys
from fedrisk.data.prepare import PreparedData
from fedrisk.horizontal.early_stopping import extra_slots, validation_split
from fedrisk.horizontal.job import BankData, HorizontalJob
from fedrisk.horizontal.layout import paillier_setup
from fedrisk.privacy.plan import plan_dp
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.scenario import Scenario


def bank_job(
    s: Scenario, data: PreparedData, keys: BankKeys | None, secrets: RunSecrets | None = None
) -> HorizontalJob:
    """Each bank's training rows and own secret, the DP plan and, with the banks'
    Paillier keys, the packing layout; raises InputError if the DP plan cannot hold.
    ``secrets``: where each bank's secret comes from (fresh os entropy when None)."""
    secrets = secrets or RunSecrets()
    banks = tuple(
        _bank(s, k, name, data.train.X[idx], data.train.y[idx], secrets)
        for k, (name, idx) in enumerate(zip(data.party_names, data.parts))
    )
    dp = plan_dp(s, {b.name: len(b.y) for b in banks})
    setup = None
    if keys is not None:
        client_rate = dp.sample_rate if dp is not None and dp.mode == "client" else None
        setup = paillier_setup(
            keys.public_key,
            data.train.n_features,
            len(banks),
            max(len(b.y) for b in banks),
            s.privacy.update_range,
            client_rate,
            extra_slots(s.model.early_stopping),
        )
    return HorizontalJob(
        s,
        banks,
        data.train.n_features,
        setup,
        keys.private_key if keys else None,
        dp,
        keys.shares if keys else None,
        secrets.mode,
    )


def _bank(s: Scenario, party: int, name: str, X, y, secrets: RunSecrets) -> BankData:
    """A bank's rows; with early stopping, its validation rows held out of training."""
    if not s.model.early_stopping:
        return BankData(name, X, y, secrets.of(name))
    train, val = validation_split(len(y), s.model.validation_fraction, s.seed, party)
    return BankData(name, X[train], y[train], secrets.of(name), X[val], y[val])


__all__ = ["bank_job"]
