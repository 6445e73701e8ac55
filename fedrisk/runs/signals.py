"""SIGTERM and SIGHUP stop a run the way Ctrl-C does.

Python's default for SIGTERM ends the process at once, skipping every ``finally``: a
killed run would leave its hidden half-written folder, and a deployment its SuperLink,
SuperNodes and the work folder with the parties' rows and keys. Raised as
:class:`~fedrisk.errors.Terminated` (a KeyboardInterrupt), the clean-up that Ctrl-C gets
runs for them too, and the command line says what happened.

C code that clears Python errors (numpy parsing text, for one) can swallow the raised
exception; the signal is also remembered, and :func:`raise_if_terminated` — called before
a run folder is renamed into place, and by the command line at the end — stops the
command then.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from fedrisk.errors import Terminated

SIGNALS = (signal.SIGTERM, signal.SIGHUP)
_received: list[int] = []  # signals received while stop_on_termination was active
_depth = [0]  # nested blocks (a run inside a command): the outermost forgets the signals


@contextmanager
def stop_on_termination() -> Iterator[None]:
    """While the block runs (in the main thread), SIGTERM/SIGHUP raise Terminated."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        _received.append(signum)
        raise Terminated(signum)

    old = {sig: signal.signal(sig, stop) for sig in SIGNALS}
    _depth[0] += 1
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        _depth[0] -= 1
        if not _depth[0]:
            _received.clear()


def raise_if_terminated() -> None:
    """Raise Terminated if a SIGTERM/SIGHUP arrived whose exception was swallowed."""
    if _received:
        raise Terminated(_received[-1])


__all__ = ["SIGNALS", "raise_if_terminated", "stop_on_termination"]
