"""Where a Deployment Engine run goes: ``--superlink``, ``--root-certificates``,
``--insecure``, ``--bank-files``, checked together with one-line errors."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

from fedrisk.crypto.paillier import BankKeys
from fedrisk.crypto.threshold import KeyShare
from fedrisk.deployment.bank_files import KEY_FILE, read_bank_key, read_private_key, share_file
from fedrisk.errors import InputError
from fedrisk.horizontal.aggregation import mode_of
from fedrisk.scenario import Scenario


@dataclass(frozen=True)
class DeploymentOptions:
    superlink: str | None = None  # HOST:PORT of a running SuperLink's Control API
    root_certificates: Path | None = None  # its CA certificate (TLS)
    insecure: bool = False
    bank_files: Path | None = None  # what `fedrisk data split` wrote for the banks

    def bank_keys(self, s: Scenario) -> BankKeys | None:
        """The banks' Paillier key from the bank files (None without Paillier)."""
        if not _banks_share_a_key(s):
            return None
        if s.privacy.key == "threshold":  # the banks' side of the harness: every share
            return self._threshold_keys(s)
        path = self.bank_files / KEY_FILE
        try:
            private = read_private_key(str(path))
        except (OSError, ValueError, KeyError, TypeError):
            raise InputError(
                f"--bank-files {self.bank_files}: {KEY_FILE} is not a key file "
                "written by fedrisk data split"
            ) from None
        return BankKeys(private.public_key, private, threading.Event())

    def _threshold_keys(self, s: Scenario) -> BankKeys:
        shares = []
        for name in s.bank_names():
            path = self.bank_files / share_file(name)
            try:
                shares.append(read_bank_key(str(path)))
            except (OSError, ValueError, KeyError, TypeError):
                raise InputError(
                    f"--bank-files {self.bank_files}: {path.name} is not a key share "
                    "written by fedrisk data split"
                ) from None
        if not all(isinstance(sh, KeyShare) for sh in shares):
            raise InputError(f"--bank-files {self.bank_files}: not a threshold key's shares")
        return BankKeys(shares[0].public_key, None, threading.Event(), tuple(shares))

    @classmethod
    def from_cli(
        cls,
        superlink: str | None,
        root_certificates: Path | None,
        insecure: bool,
        bank_files: Path | None = None,
        s: Scenario | None = None,
    ) -> DeploymentOptions:
        if superlink is not None and not re.fullmatch(r"[\w.\-\[\]:]+:\d{1,5}", superlink):
            raise InputError(f"--superlink {superlink}: expected HOST:PORT, e.g. 10.0.0.5:9093")
        if root_certificates is not None:
            if superlink is None:
                raise InputError(
                    "--root-certificates: only with --superlink (a local "
                    "federation makes its own certificates)"
                )
            if not root_certificates.is_file():
                raise InputError(f"--root-certificates {root_certificates}: no such file")
            if insecure:
                raise InputError("--root-certificates: not with --insecure")
        if superlink is not None and root_certificates is None and not insecure:
            raise InputError(
                f"--superlink {superlink}: give --root-certificates (the CA of "
                "its TLS certificate), or --insecure for a SuperLink without "
                "TLS"
            )
        # the banks' shared key (horizontal Paillier); a vertical bank's own files are
        # checked by the vertical run, which knows its file names
        banks_share_key = s is not None and _banks_share_a_key(s)
        if bank_files is not None:
            if superlink is None:
                raise InputError(
                    "--bank-files: only with --superlink (a local federation writes its own)"
                )
            if not bank_files.is_dir():
                raise InputError(
                    f"--bank-files {bank_files}: no such folder (write it with fedrisk data split)"
                )
            if banks_share_key and not (bank_files / KEY_FILE).is_file():
                raise InputError(
                    f"--bank-files {bank_files}: no {KEY_FILE}; split the "
                    "scenario again with privacy.aggregation = 'paillier'"
                )
        elif superlink is not None and banks_share_key:
            raise InputError(
                f"--superlink {superlink}: Paillier needs the banks' key on "
                "their SuperNodes; give --bank-files DIR from fedrisk data split"
            )
        return cls(superlink, root_certificates, insecure, bank_files)


def _banks_share_a_key(s: Scenario) -> bool:
    return s.federation.kind == "horizontal" and mode_of(s.privacy.aggregation).bank_keys


__all__ = ["DeploymentOptions"]
