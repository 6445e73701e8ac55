"""Secret-shared vertical logistic regression: protocol, bank, data party, dealer."""

from fedrisk.vertical.sharing.bank import make_sharing_bank_app
from fedrisk.vertical.sharing.party import make_sharing_party_app
from fedrisk.vertical.sharing.protocol import DealerJob

__all__ = ["DealerJob", "make_sharing_bank_app", "make_sharing_party_app"]
