"""Flower's ``flower-supernode``, polling the SuperLink every 0.2 s instead of every 3 s.

Flower 1.42's SuperNode sleeps 3 s whenever a pull finds no message, and 0.5 s between
looks for its ClientApp's reply, so every message exchange of a local federation waited
about 2 s for nothing (a vertical run has a dozen exchanges). fedrisk's local
federations (:mod:`fedrisk.deployment.processes`, all on 127.0.0.1) start their
SuperNodes through this module: the very same SuperNode, its idle sleeps capped at
:data:`IDLE_POLL_SECONDS`. A SuperNode a user starts against their own SuperLink is
theirs and unchanged.

Run as ``python -m fedrisk.deployment.supernode ARGS`` with ``flower-supernode``'s
arguments.
"""

from __future__ import annotations

import sys
import time
import types

from flwr.supernode import start_client_internal
from flwr.supernode.cli import flower_supernode

IDLE_POLL_SECONDS = 0.2


def _capped_time() -> types.SimpleNamespace:
    """The ``time`` module as the SuperNode's loop sees it, sleeps capped."""
    shim = types.SimpleNamespace(
        **{k: getattr(time, k) for k in dir(time) if not k.startswith("_")}
    )
    shim.sleep = lambda seconds: time.sleep(min(seconds, IDLE_POLL_SECONDS))
    return shim


def main() -> None:
    start_client_internal.time = _capped_time()
    sys.argv[0] = "flower-supernode"
    sys.exit(flower_supernode())


if __name__ == "__main__":
    main()

__all__ = ["IDLE_POLL_SECONDS", "main"]
