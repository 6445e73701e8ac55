"""SecureBoost: vertical gradient-boosted trees, one file per role as FATE lays out
guest and host.

- :mod:`.protocol`: the exchange, what the bank keeps, who can read each message;
- :mod:`.bank`: the label and key holder growing each tree (the ServerApp);
- :mod:`.party`: a data-source party answering with encrypted histograms (a ClientApp).
"""

__all__ = ["bank", "party", "protocol"]
