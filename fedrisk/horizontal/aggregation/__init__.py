"""Aggregation modes: how the banks' updates reach the aggregator, one module each.

A small registry from the names a scenario uses (``privacy.aggregation``) to what each
mode declares: what the banks must share before the run, what the aggregator can read,
what it needs of the federation. The scenario contract, the run harness, the summary and
the Deployment Engine read these declarations instead of testing the mode's name.

Each mode's module provides

- ``client_app(job, faults, mods) -> ClientApp``: the banks' side (``faults``: the
  injected dropouts and stragglers; ``mods``: extra Flower mods, closest to the bank);
- ``server_app(server_job, recorder, resume) -> ServerApp``: the aggregator's side;
- ``summary(server_job) -> dict``: the mode's own section of summary.json's ``privacy``.

This module is declarations only and imports no Flower: the scenario contract and the
command line read it before the heavy imports (the banks' key ceremony starts first), and
:meth:`AggregationMode.implementation` loads a mode's module when a run needs it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class AggregationMode:
    """What a mode declares (read by the harness, the scenario checks and the summary)."""

    name: str
    description: str
    module: str  # implements client_app, server_app, summary
    bank_keys: bool = False  # the banks share a Paillier key pair before round 1
    min_banks: int = 1  # fewer banks cannot run the mode at all
    client_dp: bool = True  # combines with client-level DP (dp = 'client')
    server_sees_individual_updates: bool = False
    server_sees_global_model: bool = True
    exchanges_per_round: int = 1  # message exchanges per round (run timeouts)

    def implementation(self) -> ModuleType:
        return importlib.import_module(self.module)


MODES: dict[str, AggregationMode] = {
    m.name: m
    for m in (
        AggregationMode(
            "plain",
            "float deltas the aggregator reads and averages",
            "fedrisk.horizontal.aggregation.plain",
            server_sees_individual_updates=True,
        ),
        AggregationMode(
            "paillier",
            "packed Paillier ciphertexts under the banks' key; the aggregator "
            "multiplies them and never holds the key",
            "fedrisk.horizontal.aggregation.paillier",
            bank_keys=True,
            server_sees_global_model=False,
        ),
        AggregationMode(
            "secagg",
            "Flower's SecAgg+: pairwise masks that cancel in the sum",
            "fedrisk.horizontal.aggregation.secagg",
            min_banks=3,
            client_dp=False,
            exchanges_per_round=4,
        ),
    )
}


def mode_of(name: str) -> AggregationMode:
    """The declared mode (scenario files are checked against :data:`MODES` on load)."""
    return MODES[name]


__all__ = ["MODES", "AggregationMode", "mode_of"]
