"""Anonymous query: scoring applicants with the data parties' parts of a vertical model
without telling them whom the bank asks about (OPRF + keyword SimplePIR)."""

from fedrisk.vertical.query.bank import make_query_bank_app
from fedrisk.vertical.query.party import make_query_party_app
from fedrisk.vertical.query.protocol import (
    ScoringBankJob,
    ScoringOutcome,
    ScoringParty,
    ScoringPartyJob,
)

__all__ = [
    "ScoringBankJob",
    "ScoringOutcome",
    "ScoringParty",
    "ScoringPartyJob",
    "make_query_bank_app",
    "make_query_party_app",
]
