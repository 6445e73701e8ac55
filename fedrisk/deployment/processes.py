"""Flower Deployment Engine processes on this machine, for ``--engine deployment``.

The in-process and simulation engines never leave Python; this module runs the same
apps the way a real federation would: one ``flower-superlink`` and one
``flower-supernode`` per bank, talking over TLS on 127.0.0.1, each SuperNode
authenticated by its own key, and the run submitted with ``flwr run``.

What Flower 1.42 needs (read from its source and checked by hand):

- The SuperLink serves the Fleet, Control and Runtime (ServerAppIo) APIs over one
  HTTPS port (``--host``/``--port``); the gRPC servers and the health server only
  start on request, so nothing binds 0.0.0.0 unless ``FLWR_INTERNAL_GRPC_*`` is set
  (we remove it from the children's environment). Each SuperNode serves its own
  Runtime API for its ClientApps on ``--host 127.0.0.1 --port P``.
- TLS: ``flower-superlink --ssl-certfile --ssl-keyfile --ssl-ca-certfile``,
  ``flower-supernode --root-certificates``, and ``root-certificates`` (an absolute
  path) in the ``[superlink.NAME]`` table of ``$FLWR_HOME/config.toml`` for the CLI.
- SuperNode authentication: ``flower-superlink --enable-supernode-auth`` (TLS only),
  each public key registered with ``flwr supernode register KEY.pub NAME`` (OpenSSH
  format, NIST curve; the SuperLink assigns the node id at registration), and the
  SuperNode started with ``--auth-supernode-private-key`` (OpenSSH private key). The
  old ``--auth-list-public-keys`` CSV is refused by 1.42.
- ``flwr run --stream`` exits 0 even when the ServerApp raises; the run's status
  (``flwr ls --run-id ID --format json``) says ``finished:failed``.
- Every process runs with its own ``FLWR_HOME`` under the work folder (apps are
  unpacked into ``$FLWR_HOME/apps``), and ServerApp/ClientApp processes inherit the
  cwd of their SuperLink/SuperNode.
"""

from __future__ import annotations

import atexit
import datetime
import ipaddress
import json
import os
import queue
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import tomli_w
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fedrisk.errors import ProtocolError

HOST = "127.0.0.1"
CONNECTION = "fedrisk"
START_TIMEOUT = 60.0
STOP_GRACE = 5.0

# Flower phones home and checks for updates unless told not to; fedrisk runs offline.
QUIET_ENV = {
    "FLWR_TELEMETRY_ENABLED": "0",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
}
# Set, these make the SuperLink start legacy gRPC servers on 0.0.0.0.
# never inherited: Flower's servers on 0.0.0.0, and where a vertical bank's files are (only
# the SuperLink that runs the bank's ServerApp is told, explicitly)
_UNSAFE_ENV = (
    "FLWR_INTERNAL_GRPC_CONTROL_API",
    "FLWR_INTERNAL_GRPC_FLEET_API",
    "FEDRISK_BANK_FILES",
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_NODE_ID = re.compile(r"SuperNode ID: (\d+)")
_RUN_ID = re.compile(r"Successfully started run (\d+)")


# --------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a private CA and the server certificate it signed."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


@dataclass(frozen=True)
class NodeKeys:
    """One SuperNode's authentication key pair, in the OpenSSH formats Flower reads."""

    private_key: Path
    public_key: Path


def write_private(path: Path, data: bytes) -> None:
    """Write a key so that it is never readable by others, not even briefly."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def write_tls_material(folder: Path) -> TlsFiles:
    """A throwaway CA and a server certificate valid for 127.0.0.1 and localhost.

    The CA is made fresh for every federation and its key is not kept, so nothing
    else can ever be signed by it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=7)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedrisk local CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    files = TlsFiles(folder / "ca.crt", folder / "server.crt", folder / "server.key")
    files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_private(
        files.server_key,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    return files


def write_node_keys(folder: Path, name: str) -> NodeKeys:
    """A P-384 key pair for one SuperNode (Flower accepts NIST curves in OpenSSH form)."""
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP384R1())
    keys = NodeKeys(folder / name, folder / f"{name}.pub")
    write_private(
        keys.private_key,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        ),
    )
    keys.public_key.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        + b"\n"
    )
    return keys


# ---------------------------------------------------------------- CLI and processes


def executable(name: str) -> str:
    """The Flower console script of this interpreter's environment, not whatever PATH finds."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: is flwr installed in this environment?")
    return found


def flower_env(flwr_home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a Flower process: offline, its own FLWR_HOME, no 0.0.0.0 servers."""
    env = {k: v for k, v in os.environ.items() if k not in _UNSAFE_ENV}
    env.update(QUIET_ENV)
    for key in ("NO_PROXY", "no_proxy"):  # never send loopback traffic to a proxy
        env[key] = ",".join(filter(None, [env.get(key), HOST, "localhost"]))
    env["FLWR_HOME"] = str(flwr_home)
    # Flower starts its own helpers (flower-superexec, flwr-serverapp, flwr-clientapp)
    # by name: take them from this interpreter's environment, even if not activated
    env["PATH"] = os.pathsep.join(filter(None, [str(Path(sys.executable).parent), env.get("PATH")]))
    env.update(extra or {})
    return env


def write_flwr_config(
    flwr_home: Path, address: str, *, root_cert: Path | None, insecure: bool, name: str = CONNECTION
) -> Path:
    """Write ``$FLWR_HOME/config.toml`` with one SuperLink connection (overwrites it)."""
    connection: dict[str, object] = {"address": address}
    if insecure:
        connection["insecure"] = True
    elif root_cert is not None:
        connection["root-certificates"] = str(Path(root_cert).resolve())
    flwr_home.mkdir(parents=True, exist_ok=True)
    path = flwr_home / "config.toml"
    path.write_text(tomli_w.dumps({"superlink": {"default": name, name: connection}}))
    return path


def _flwr_cli(args: list[str], flwr_home: Path, timeout: float = 60.0) -> str:
    """Run one short ``flwr`` command and return its stdout; raise on failure."""
    try:
        done = subprocess.run(
            [executable("flwr"), *args],
            env=flower_env(flwr_home),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as err:
        raise RuntimeError(f"flwr {' '.join(args)} timed out after {timeout:.0f} s") from err
    if done.returncode != 0:
        tail = _ANSI.sub("", (done.stdout + done.stderr).strip())[-1500:]
        raise RuntimeError(f"flwr {' '.join(args)} failed ({done.returncode}):\n{tail}")
    return done.stdout


def _json_from(output: str) -> dict:
    """The JSON object ``--format json`` printed (some commands print a banner first)."""
    start = output.find("{")
    if start < 0:
        raise RuntimeError(f"no JSON in flwr output: {output.strip()[-300:]}")
    return json.loads(output[start:])


def register_supernode(public_key: Path, flwr_home: Path, name: str = CONNECTION) -> int:
    """Register a SuperNode's public key with the SuperLink; return the node id it gets."""
    out = _json_from(
        _flwr_cli(["supernode", "register", str(public_key), name, "--format", "json"], flwr_home)
    )
    if not out.get("success") or not out.get("node-id"):
        raise RuntimeError(f"SuperNode registration failed: {out}")
    return int(out["node-id"])


def list_supernodes(flwr_home: Path, name: str = CONNECTION) -> dict[int, str]:
    """Node id -> status ("registered", "online", "offline", ...) as the SuperLink sees it."""
    out = _json_from(_flwr_cli(["supernode", "ls", name, "--format", "json"], flwr_home))
    return {int(n["node-id"]): n["status"] for n in out.get("nodes", [])}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = _ANSI.sub("", path.read_text(errors="replace"))
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _proc_stat(pid: int) -> tuple[int, int, str, int] | None:
    """(ppid, pgid, state, start time) of a live process, from /proc; None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[2]), fields[0], int(fields[19])


def descendants(roots: set[int]) -> dict[int, tuple[int, int]]:
    """pid -> (pgid, start time) of every live descendant of roots.

    Flower's SuperLink starts its SuperExec in a new session, so killing the
    SuperLink's process group alone would leave it (and any ServerApp) behind.
    """
    if not Path("/proc").is_dir():
        return {}
    table: dict[int, tuple[int, int, str, int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _proc_stat(int(entry))) is not None:
            table[int(entry)] = stat
    found: dict[int, tuple[int, int]] = {}
    frontier = set(roots)
    while frontier:
        children = {
            pid
            for pid, st in table.items()
            if st[0] in frontier and pid not in found and pid not in roots
        }
        for pid in children:
            found[pid] = (table[pid][1], table[pid][3])
        frontier = children
    return found


def pid_alive(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = _proc_stat(pid)
    return stat is not None and stat[2] != "Z"


def _signal_group(pgid: int, sig: int) -> None:
    if pgid <= 1 or pgid == os.getpgid(0):
        return
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# ---------------------------------------------------------------------- federation

_LIVE: set[LocalFederation] = set()


@atexit.register
def _stop_all() -> None:
    """Nothing this module started may outlive the Python process."""
    for federation in list(_LIVE):
        federation.stop()


TASK_POLL_ENV = "FLWR_SUPEREXEC_TASK_POLL_INTERVAL"
LOCAL_TASK_POLL_SECONDS = "0.1"


class LocalFederation:
    """A SuperLink and one SuperNode per node config, as separate processes on 127.0.0.1.

    Use as a context manager; every process (and every process those start) is stopped
    on exit, on exceptions, on KeyboardInterrupt and at interpreter exit.

    ``node_configs[i]`` becomes SuperNode i's ``--node-config`` (via a TOML file, so
    strings may hold spaces and quotes). With ``secure=True`` traffic uses TLS with a
    fresh CA and only the SuperNodes whose keys were registered may join. ``env`` adds
    environment variables for every Flower process; ``FLWR_SUPEREXEC_TASK_POLL_INTERVAL``
    is 0.1 s unless given.
    """

    def __init__(
        self,
        workdir: Path,
        node_configs: list[dict[str, str | int | float]],
        secure: bool = True,
        *,
        env: Mapping[str, str] | None = None,
        link_env: Mapping[str, str] | None = None,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.node_configs = [dict(c) for c in node_configs]
        self.secure = secure
        self.start_timeout = start_timeout
        # SuperExec looks for new tasks once a second by default; on one machine a tenth
        # of that costs nothing and starts every ClientApp (one per message) sooner
        self._extra_env = {TASK_POLL_ENV: LOCAL_TASK_POLL_SECONDS, **dict(env or {})}
        # the SuperLink's own (its ServerApp processes inherit it), never the SuperNodes'
        self._link_env = dict(link_env or {})
        self._port = 0
        self._tls: TlsFiles | None = None
        self._link: subprocess.Popen[bytes] | None = None
        self._nodes: list[subprocess.Popen[bytes]] = []
        self._node_logs: list[Path] = []
        self._node_ids: list[int] = []
        self._stopped = False

    # -- properties

    @property
    def address(self) -> str:
        """SuperLink address for ``flwr`` (Control API; Fleet and Runtime share the port)."""
        return f"{HOST}:{self._port}"

    @property
    def root_cert(self) -> Path | None:
        """The CA certificate clients must trust, or None when insecure."""
        return self._tls.ca_cert if self._tls else None

    @property
    def pids(self) -> list[int]:
        """Process ids of the SuperLink and the SuperNodes, in start order."""
        return [p.pid for p in ([self._link] if self._link else []) + self._nodes]

    @property
    def node_ids(self) -> list[int]:
        """Flower node id of SuperNode i (what ``grid.get_node_ids()`` returns)."""
        return list(self._node_ids)

    @property
    def cli_home(self) -> Path:
        """A FLWR_HOME whose config.toml points ``flwr`` at this SuperLink."""
        return self.workdir / "cli"

    @property
    def link_log(self) -> Path:
        return self.workdir / "superlink.log"

    @property
    def node_logs(self) -> list[Path]:
        return list(self._node_logs)

    # -- life cycle

    def __enter__(self) -> LocalFederation:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the SuperLink, register the nodes, start them, wait until all are online."""
        if self._link is not None or self._stopped:
            raise RuntimeError("a LocalFederation can be started once")
        self.workdir.mkdir(parents=True, exist_ok=True)
        _LIVE.add(self)
        self._port = free_port()
        if self.secure:
            self._tls = write_tls_material(self.workdir / "tls")
        write_flwr_config(
            self.cli_home, self.address, root_cert=self.root_cert, insecure=not self.secure
        )
        self._start_link()
        self._wait_for_link()
        keys = [self._node_key(i) for i in range(len(self.node_configs))]
        # one `flwr supernode register` per key, each a ~1.7 s CLI process: all at once
        with ThreadPoolExecutor(max(1, len(keys))) as pool:
            expected = list(
                pool.map(
                    lambda k: register_supernode(k.public_key, self.cli_home) if k else None, keys
                )
            )
        for i, key in enumerate(keys):
            self._start_node(i, key)
        self._node_ids = self._wait_for_nodes(expected)

    def _spawn(
        self,
        args: list[str],
        log: Path,
        cwd: Path,
        flwr_home: Path,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start one Flower process in its own process group, output to its log."""
        cwd.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as out:
            return subprocess.Popen(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=cwd,
                env=flower_env(flwr_home, {**self._extra_env, **(env or {})}),
                start_new_session=True,
            )

    def _start_link(self) -> None:
        args = [
            executable("flower-superlink"),
            "--host",
            HOST,
            "--port",
            str(self._port),
            "--database",
            str(self.workdir / "link.db"),
            "--disable-runtime-dependency-installation",
        ]
        if self._tls:
            args += [
                "--ssl-certfile",
                str(self._tls.server_cert),
                "--ssl-keyfile",
                str(self._tls.server_key),
                "--ssl-ca-certfile",
                str(self._tls.ca_cert),
                "--enable-supernode-auth",
            ]
        else:
            args += ["--insecure"]
        link_dir = self.workdir / "superlink"
        self._link = self._spawn(
            args, self.link_log, link_dir, link_dir / "flwr-home", self._link_env
        )

    def _node_key(self, i: int) -> NodeKeys | None:
        return write_node_keys(self.workdir / "keys", f"node-{i}") if self.secure else None

    def _start_node(self, i: int, key: NodeKeys | None) -> None:
        node_dir = self.workdir / f"node-{i}"
        node_dir.mkdir(parents=True, exist_ok=True)
        config_file = node_dir / "node-config.toml"
        config_file.write_text(tomli_w.dumps(self.node_configs[i]))
        args = [
            # Flower's SuperNode with its idle polls shortened (fedrisk.deployment.supernode)
            sys.executable,
            "-m",
            "fedrisk.deployment.supernode",
            "--superlink",
            self.address,
            "--host",
            HOST,
            "--port",
            str(free_port()),
            "--node-config",
            str(config_file),
        ]
        if self._tls and key:
            args += [
                "--root-certificates",
                str(self._tls.ca_cert),
                "--auth-supernode-private-key",
                str(key.private_key),
            ]
        else:
            args += ["--insecure"]
        log = self.workdir / f"node-{i}.log"
        self._node_logs.append(log)
        self._nodes.append(self._spawn(args, log, node_dir, node_dir / "flwr-home"))

    def _wait_for_link(self) -> None:
        """Poll the SuperLink's /health endpoint (over TLS with our CA when secure)."""
        scheme = "https" if self._tls else "http"
        context = ssl.create_default_context(cafile=str(self._tls.ca_cert)) if self._tls else None
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            assert self._link is not None
            if self._link.poll() is not None:
                raise RuntimeError(
                    f"flower-superlink exited with code {self._link.returncode}"
                    f"; log {self.link_log}:\n{_log_tail(self.link_log)}"
                )
            try:
                with opener.open(f"{scheme}://{self.address}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(
            f"flower-superlink not ready after {self.start_timeout:.0f} s; "
            f"log {self.link_log}:\n{_log_tail(self.link_log)}"
        )

    def _wait_for_nodes(self, expected: list[int | None]) -> list[int]:
        """Wait for each SuperNode's "SuperNode ID: N" line, logged once it has joined."""
        deadline = time.monotonic() + self.start_timeout
        ids: list[int | None] = [None] * len(self._nodes)
        while None in ids:
            for i, (proc, log) in enumerate(zip(self._nodes, self._node_logs)):
                if ids[i] is not None:
                    continue
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"flower-supernode {i} exited with code "
                        f"{proc.returncode}; log {log}:\n{_log_tail(log)}"
                    )
                if m := _NODE_ID.search(_ANSI.sub("", log.read_text(errors="replace"))):
                    ids[i] = int(m.group(1))
                    if expected[i] is not None and ids[i] != expected[i]:
                        raise RuntimeError(
                            f"SuperNode {i} joined as {ids[i]}, but its key "
                            f"was registered as {expected[i]}"
                        )
            if None in ids:
                if time.monotonic() > deadline:
                    i = ids.index(None)
                    log = self._node_logs[i]
                    raise RuntimeError(
                        f"flower-supernode {i} did not join within "
                        f"{self.start_timeout:.0f} s; log {log}:\n"
                        f"{_log_tail(log)}\n--- superlink:\n"
                        f"{_log_tail(self.link_log, 10)}"
                    )
                time.sleep(0.2)
        return [int(i) for i in ids if i is not None]

    def kill_node(self, i: int) -> None:
        """SIGKILL SuperNode i and its ClientApps at once, like a bank's server crashing.

        The SuperLink only notices when heartbeats stop: up to 2 x 30 s in Flower 1.42.
        """
        proc = self._nodes[i]
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM every process group started here and by our processes, SIGKILL what
        is left after ``grace`` seconds, reap our children. Idempotent.

        A clean stop takes 1-2 s; only groups with a process we know to be alive are
        signalled, so a recycled pid is never hit.
        """
        if self._stopped:
            return
        self._stopped = True
        _LIVE.discard(self)
        procs = [*self._nodes, *([self._link] if self._link else [])]
        others = descendants({p.pid for p in procs if p.poll() is None})
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
            groups = _live_groups(procs, others)
            for pgid in groups:
                _signal_group(pgid, sig)
            deadline = time.monotonic() + wait
            while groups and time.monotonic() < deadline:
                time.sleep(0.1)
                groups = _live_groups(procs, others)
            if not groups:
                break
        for p in procs:
            p.wait()


def _same_process(pid: int, start: int) -> bool:
    """True if pid is alive and still the process we saw (pids get reused)."""
    stat = _proc_stat(pid)
    return stat is not None and stat[2] != "Z" and stat[3] == start


def _live_groups(
    procs: list[subprocess.Popen[bytes]], others: dict[int, tuple[int, int]]
) -> set[int]:
    """Process groups that still hold a live process of ours."""
    groups = {p.pid for p in procs if p.poll() is None}
    return groups | {pgid for pid, (pgid, start) in others.items() if _same_process(pid, start)}


# ---------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class SubmittedRun:
    """What ``flwr run --stream`` left behind."""

    exit_code: int
    run_id: int | None
    status: str
    details: str
    log: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.status == "finished:completed"


class RunFailed(ProtocolError):
    """A Flower run that did not complete; ``run`` holds its log and status."""

    def __init__(self, message: str, run: SubmittedRun) -> None:
        super().__init__(message)
        self.run = run


def run_status(run_id: int, flwr_home: Path, name: str = CONNECTION) -> tuple[str, str]:
    """(status, details) of a run, e.g. ("finished:failed", "ServerApp failed with ...")."""
    out = _json_from(
        _flwr_cli(["ls", name, "--run-id", str(run_id), "--format", "json"], flwr_home)
    )
    runs = out.get("runs") or [{}]
    return str(runs[0].get("status", "unknown")), str(runs[0].get("status-details", ""))


def _final_status(run_id: int, flwr_home: Path, wait: float = 15.0) -> tuple[str, str]:
    """The run's status once it has finished (the stream may end a moment earlier)."""
    deadline = time.monotonic() + wait
    while True:
        status, details = run_status(run_id, flwr_home)
        if status.startswith("finished") or time.monotonic() > deadline:
            return status, details
        time.sleep(0.5)


def _stop_run(run_id: int, flwr_home: Path) -> None:
    """Best effort: ask the SuperLink to stop a run we are abandoning."""
    try:
        _flwr_cli(["stop", str(run_id), CONNECTION], flwr_home, timeout=30)
    except RuntimeError:
        pass


def _reader(stream: IO[bytes], lines: queue.Queue[str | None]) -> None:
    """Forward a pipe's lines, colours removed, so the caller can wait with a timeout."""
    for raw in iter(stream.readline, b""):
        lines.put(_ANSI.sub("", raw.decode(errors="replace")).rstrip("\n"))
    lines.put(None)


def submit_run(
    app_dir: Path,
    address: str,
    *,
    root_cert: Path | None,
    insecure: bool,
    run_config: Mapping[str, str | int | float | bool],
    flwr_home: Path,
    timeout: float,
    on_line: Callable[[str], None] | None = None,
    check: bool = True,
) -> SubmittedRun:
    """Submit a Flower App with ``flwr run APP NAME --stream`` and follow it to the end.

    Writes ``flwr_home/config.toml`` (one connection, overwritten) and the run config
    as a TOML file (so string values may hold anything). Every output line, ANSI
    colours removed, goes to ``on_line``: the ServerApp's prints and ``flwr`` logger
    lines arrive there too. After ``timeout`` seconds ``flwr run`` is killed and the
    run stopped on the SuperLink. Because ``flwr run`` exits 0 when the ServerApp
    raises, success is judged by the run's final status. With ``check`` a failed or
    timed-out run raises :class:`RunFailed` (a ProtocolError); without, it is returned.
    """
    write_flwr_config(flwr_home, address, root_cert=root_cert, insecure=insecure)
    args = [executable("flwr"), "run", str(Path(app_dir).resolve()), CONNECTION, "--stream"]
    if run_config:
        config_file = flwr_home / "run-config.toml"
        config_file.write_text(tomli_w.dumps(dict(run_config)))
        args += ["--run-config", str(config_file)]

    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=flower_env(flwr_home),
        start_new_session=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True)
    reader.start()
    collected: list[str] = []
    run_id: int | None = None
    deadline = time.monotonic() + timeout
    timed_out = False
    try:
        while True:
            try:
                line = lines.get(timeout=max(0.0, min(1.0, deadline - time.monotonic())))
            except queue.Empty:
                if time.monotonic() >= deadline:
                    timed_out = True
                    break
                continue
            if line is None:
                break
            collected.append(line)
            if run_id is None and (m := _RUN_ID.search(line)):
                run_id = int(m.group(1))
            if on_line is not None:
                on_line(line)
    except BaseException:
        if run_id is not None:
            _stop_run(run_id, flwr_home)
        raise
    finally:
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGKILL)
        exit_code = proc.wait()
        reader.join(timeout=5)
        if proc.stdout and not reader.is_alive():
            proc.stdout.close()

    log = "\n".join(collected)
    if timed_out:
        if run_id is not None:
            _stop_run(run_id, flwr_home)
        run = SubmittedRun(exit_code, run_id, "timeout", f"no end after {timeout:.0f} s", log)
        return _checked(run, check, f"Flower run {run_id} did not finish within {timeout:.0f} s")
    if run_id is None:
        last = next((ln for ln in reversed(collected) if ln.strip()), "no output")
        run = SubmittedRun(exit_code, None, "not started", last, log)
        return _checked(
            run,
            check,
            f"flwr run did not start a run (exit code {exit_code}): {last.strip()[:200]}",
        )
    status, details = _final_status(run_id, flwr_home)
    run = SubmittedRun(exit_code, run_id, status, details, log)
    message = f"Flower run {run_id} ended {status}"
    if details and details != "N/A":
        message += ": " + details.splitlines()[0][:200]
    return _checked(run, check, message)


def _checked(run: SubmittedRun, check: bool, message: str) -> SubmittedRun:
    if check and not run.ok:
        raise RunFailed(message, run)
    return run
