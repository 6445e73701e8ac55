"""SIGTERM and SIGHUP stop a run the way Ctrl-C does.

Python's default for SIGTERM ends the process at once, skipping every ``finally``: a
killed run would leave its hidden half-written folder, and a deployment its SuperLink,
SuperNodes and the work folder with the parties' rows and keys. Raised as
:class:`~fedrisk.errors.Terminated` (a KeyboardInterrupt), the clean-up that Ctrl-C gets
runs for them too, and the command line says what happened.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from fedrisk.errors import Terminated

SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@contextmanager
def stop_on_termination() -> Iterator[None]:
    """While the block runs (in the main thread), SIGTERM/SIGHUP raise Terminated."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Terminated(signum)

    old = {sig: signal.signal(sig, stop) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


__all__ = ["SIGNALS", "stop_on_termination"]
