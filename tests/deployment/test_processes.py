"""Real Flower Deployment Engine processes (SuperLink, SuperNodes, ``flwr run``) on 127.0.0.1."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_ssh_private_key

from fedrisk.deployment.processes import (
    LocalFederation,
    RunFailed,
    descendants,
    executable,
    flower_env,
    free_port,
    pid_alive,
    submit_run,
    write_node_keys,
    write_tls_material,
)
from fedrisk.errors import ProtocolError

MARK = "DEPLOYTEST_RESULT "

PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "deploytest"
version = "0.1.0"
description = "Two-round query app for the deployment tests"
license = "Apache-2.0"
dependencies = []

[tool.flwr.app]
publisher = "fedrisk"

[tool.flwr.app.components]
serverapp = "deploytest_app.apps:server_app"
clientapp = "deploytest_app.apps:client_app"

[tool.flwr.app.config]
rounds = 2
outfile = ""
fail = false
"""

APPS = (
    """\
import json, os
from pathlib import Path
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

client_app = ClientApp()
server_app = ServerApp()


@client_app.query()
def query(msg: Message, context: Context) -> Message:
    prev = context.state.config_records.get("seen")
    count = (prev["n"] if prev else 0) + 1
    context.state["seen"] = ConfigRecord({"n": count})
    return Message(RecordDict({"r": ConfigRecord({"count": count, **context.node_config})}),
                   reply_to=msg)


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    if cfg["fail"]:
        raise RuntimeError("deliberate ServerApp failure")
    rounds = []
    for r in range(int(cfg["rounds"])):
        msgs = [Message(RecordDict(), dst_node_id=n, message_type="query")
                for n in grid.get_node_ids()]
        replies = grid.send_and_receive(msgs, timeout=40)
        rounds.append(sorted((dict(m.content["r"]) for m in replies if not m.has_error()),
                             key=lambda row: row["bank"]))
    result = {"rounds": rounds, "cwd": os.getcwd()}
    if cfg["outfile"]:
        Path(str(cfg["outfile"])).write_text(json.dumps(result))
    print("%s" + json.dumps(result), flush=True)
"""
    % MARK
)


def _mini_app(folder: Path) -> Path:
    (folder / "deploytest_app").mkdir(parents=True)
    (folder / "pyproject.toml").write_text(PYPROJECT)
    (folder / "deploytest_app" / "__init__.py").write_text("")
    (folder / "deploytest_app" / "apps.py").write_text(APPS)
    return folder


def _everything(fed: LocalFederation) -> list[int]:
    """Our processes and every process they started (SuperExecs, App processes)."""
    return fed.pids + list(descendants(set(fed.pids)))


def test_tls_material_names_localhost_and_hides_keys(tmp_path):
    tls = write_tls_material(tmp_path)
    cert = x509.load_pem_x509_certificate(tls.server_cert.read_bytes())
    ca = x509.load_pem_x509_certificate(tls.ca_cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    cert.verify_directly_issued_by(ca)
    keys = write_node_keys(tmp_path, "bank")
    load_ssh_private_key(keys.private_key.read_bytes(), None)
    assert keys.public_key.read_text().startswith("ecdsa-sha2-nistp384 ")
    for private in (tls.server_key, keys.private_key):
        assert private.stat().st_mode & 0o777 == 0o600


@pytest.mark.slow
def test_secure_federation_runs_the_app_and_stops_cleanly(tmp_path):
    app = _mini_app(tmp_path / "app")
    outfile = tmp_path / "server-wrote.json"
    lines: list[str] = []
    configs = [{"bank": i, "partition-id": i, "label": f'bank "{i}" of 2'} for i in range(2)]
    with LocalFederation(tmp_path / "fed", configs) as fed:
        assert fed.root_cert is not None and len(fed.node_ids) == 2
        run = submit_run(
            app,
            fed.address,
            root_cert=fed.root_cert,
            insecure=False,
            run_config={"outfile": str(outfile)},
            flwr_home=tmp_path / "cli",
            timeout=90,
            on_line=lines.append,
        )
        assert run.ok and run.exit_code == 0 and run.run_id
        with pytest.raises(RunFailed) as failed:
            submit_run(
                app,
                fed.address,
                root_cert=fed.root_cert,
                insecure=False,
                run_config={"fail": True},
                flwr_home=tmp_path / "cli",
                timeout=60,
            )
        processes = _everything(fed)
    assert isinstance(failed.value, ProtocolError)
    assert "finished:failed" in str(failed.value) and "deliberate" in str(failed.value)
    assert failed.value.run.exit_code == 0  # flwr run itself does not report the failure

    marked = [ln for ln in lines if ln.startswith(MARK)]
    assert len(marked) == 1
    result = json.loads(marked[0][len(MARK) :])
    assert result == json.loads(outfile.read_text())
    assert [[row["count"] for row in rnd] for rnd in result["rounds"]] == [[1, 1], [2, 2]]
    assert [row["label"] for row in result["rounds"][0]] == ['bank "0" of 2', 'bank "1" of 2']
    assert result["cwd"] == str((tmp_path / "fed" / "superlink").resolve())
    assert not [pid for pid in processes if pid_alive(pid)]


@pytest.mark.slow
def test_an_exception_inside_the_with_block_stops_every_process(tmp_path):
    with pytest.raises(ValueError, match="bank on fire"):
        with LocalFederation(tmp_path / "fed", [{"bank": 0}, {"bank": 1}], secure=False) as fed:
            assert fed.root_cert is None
            processes = _everything(fed)
            assert len(processes) >= 5  # SuperLink, 2 SuperNodes, their SuperExecs
            raise ValueError("bank on fire")
    assert not [pid for pid in processes if pid_alive(pid)]
    for pid in fed.pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    fed.stop()  # idempotent


@pytest.mark.slow
def test_an_unregistered_supernode_is_refused(tmp_path):
    with LocalFederation(tmp_path / "fed", [{"bank": 0}]) as fed:
        rogue = write_node_keys(tmp_path / "rogue", "rogue")
        log = tmp_path / "rogue.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [
                    executable("flower-supernode"),
                    "--superlink",
                    fed.address,
                    "--root-certificates",
                    str(fed.root_cert),
                    "--auth-supernode-private-key",
                    str(rogue.private_key),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(free_port()),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=flower_env(tmp_path / "rogue"),
                cwd=tmp_path,
                start_new_session=True,
            )
        try:
            code = proc.wait(timeout=45)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # its SuperExec, if still there
            except ProcessLookupError:
                pass
            proc.wait()
        assert code != 0
        assert "Failed to activate SuperNode" in log.read_text()
        time.sleep(0.1)
        assert all(pid_alive(pid) for pid in fed.pids)  # the federation itself is unharmed
