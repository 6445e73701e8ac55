"""Horizontal federated WOE binning: banks with the same columns sum count vectors (in
the clear or under the banks' Paillier key) and get exactly the pooled bins and tables.

- :mod:`.protocol`: the exchange, its messages, who learns what, and the computations
  every party makes identically;
- :mod:`.bank`: the banks' ClientApp;
- :mod:`.aggregator`: the aggregator's ServerApp;
- :mod:`.run`: :func:`~fedrisk.horizontal.binning.run.federated_binning`, the entry point.

The package imports nothing itself.
"""

__all__ = ["aggregator", "bank", "protocol", "run"]
