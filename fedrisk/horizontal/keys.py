"""The banks' Paillier key ceremony for a scenario (light imports: the CLI calls it
before loading Flower, so obfuscator precomputation overlaps start-up)."""

from __future__ import annotations

from fedrisk.crypto.paillier import BankKeys, bank_key_ceremony
from fedrisk.crypto.threshold import threshold_key_ceremony
from fedrisk.horizontal.aggregation import mode_of
from fedrisk.scenario import Scenario


def paillier_keys(s: Scenario) -> BankKeys | None:
    """The banks' key pair (``privacy.key = 'threshold'``: the dealer's key shares) if
    the scenario's aggregation mode needs one, else None."""
    if s.federation.kind != "horizontal" or not mode_of(s.privacy.aggregation).bank_keys:
        return None
    ceremony = threshold_key_ceremony if s.privacy.key == "threshold" else bank_key_ceremony
    return ceremony(s.privacy.key_bits, list(s.bank_names()), s.max_rounds)


__all__ = ["paillier_keys"]
