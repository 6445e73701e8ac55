"""Errors that mean "the user's input is wrong" (exit code 2), kept apart from bugs."""

import signal


class InputError(Exception):
    """Bad user input: a scenario field, a data file, a command-line value.

    The message is one line that names the file, the field and what is allowed;
    the command line prints it as is and exits with code 2, without a traceback.
    """


class ScenarioError(InputError):
    """A scenario file or --set override is invalid."""


class DataError(InputError):
    """A data file or column is missing, malformed or not usable."""


class ProtocolError(Exception):
    """A party sent something the protocol does not allow (malformed ciphertexts, a
    decryption outside the packing range, an error instead of an update).

    The message names the round and the party; the run stops without writing results.
    """


class QuorumError(ProtocolError):
    """Fewer parties answered a round than ``federation.min_parties``: the run stops.

    ``resumable``: a checkpoint of the last completed round was kept.
    """

    def __init__(self, message: str, resumable: bool = False) -> None:
        super().__init__(message)
        self.resumable = resumable

    @classmethod
    def too_few(cls, rnd: int, count: str, min_parties: int) -> "QuorumError":
        """The one message every quorum check uses; ``count`` says how many parties
        did what, e.g. '2 parties answered'."""
        return cls(
            f"round {rnd}: only {count}, fewer than federation.min_parties = "
            f"{min_parties}; the run stopped"
        )


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM/SIGHUP: ``signum``) during a run that left a checkpoint; the
    message says how to resume."""

    def __init__(self, message: str, signum: int = 2) -> None:
        super().__init__(message)
        self.signum = signum


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP during a command: it stops and cleans up as for Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
