"""The banks' Paillier key ceremony for a scenario (light imports: the CLI calls it
before loading Flower, so obfuscator precomputation overlaps start-up)."""

from __future__ import annotations

from fedrisk.crypto.paillier import BankKeys, bank_key_ceremony
from fedrisk.scenario import Scenario


def paillier_keys(s: Scenario) -> BankKeys | None:
    """The banks' key pair if the scenario uses Paillier aggregation, else None."""
    if s.privacy.aggregation != "paillier":
        return None
    return bank_key_ceremony(s.privacy.key_bits, list(s.bank_names()), s.rounds)
