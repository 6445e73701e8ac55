"""Flower plumbing both federations share.

- :mod:`.engines`: the in-process Grid and Flower's Simulation Engine (Ray);
- :mod:`.recording_grid`: a Grid wrapper that records every message crossing a party
  boundary, with the identify handshake that names the parties;
- :mod:`.exchange`: one request to each party of a bespoke protocol, every reply back;
- :mod:`.transcript`: the record of those messages (``transcript.jsonl``);
- :mod:`.recorder`: what a ServerApp produced, for the harness;
- :mod:`.participation`: who was asked and who answered each round (from the transcript);
- :mod:`.faults`: injected dropouts and stragglers, and the quorum rule;
- :mod:`.checkpoint`: per-round checkpoints of both sides and the resumed round loop.
"""

__all__ = [
    "checkpoint",
    "engines",
    "exchange",
    "faults",
    "participation",
    "recorder",
    "recording_grid",
    "transcript",
]
