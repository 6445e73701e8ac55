"""Vertical binning for a WOE scorecard: the bank (label holder, key holder, ServerApp)
learns every characteristic's per-bin default counts, each data party's bins stay its own.

- :mod:`.protocol`: the messages, the jobs, what the bank ends up knowing;
- :mod:`.bank`: the bank's ServerApp;
- :mod:`.party`: the data parties' ClientApp (and the binning the simulator replays).
"""

__all__ = ["bank", "party", "protocol"]
