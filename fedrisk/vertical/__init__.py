"""Vertical federation: a bank and data-source companies on the same customers.

One file per role, as FATE 2.x lays out guest and host:

- :mod:`.protocol`: the exchange, what each side holds, who can read each message;
- :mod:`.bank`: the label holder and Paillier key holder (the ServerApp, FATE's guest);
- :mod:`.party`: a data-source party (a ClientApp, FATE's host);
- :mod:`.leakage`: the label-leakage attack a data party can run on its own gradients.
"""

__all__ = ["bank", "leakage", "party", "protocol"]
