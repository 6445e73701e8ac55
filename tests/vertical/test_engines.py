"""Vertical runs on every engine: the Simulation and Deployment Engines give the
in-process result bit for bit; each data party keeps its protocol state in Flower's
``Context.state`` (so a fresh ClientApp process per message changes nothing); and
``fedrisk data split`` gives each data party's SuperNode only its own columns."""

import json
import stat
import tempfile
from pathlib import Path

import numpy as np
import pytest
from flwr.common.serde import context_from_proto, context_to_proto

from fedrisk.deployment import launch
from fedrisk.deployment import processes as flower_deployment
from fedrisk.deployment.processes import pid_alive
from fedrisk.deployment.vertical_files import BANK_FILES_ENV
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.run import run_scenario
from fedrisk.scenario import load_scenario
from tests.conftest import read_summary, without_timings
from tests.deployment.test_runs import processes_mentioning

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:1024-bit Paillier keys")]

# Small on purpose: on the Deployment Engine every message exchange costs seconds of
# Flower polling and a fresh ClientApp process, so one data party and one mini-batch
# (batch_size > training rows) keep the run to a handful of exchanges.
SCENARIO = """name = "vertical-small"
seed = 5
rounds = 1
[data]
source = "synthetic"
customers = 600
features_per_source = 3
overlap = 0.8
[federation]
kind = "vertical"
[[federation.parties]]
name = "bank"
label = true
signal = 1.0
[[federation.parties]]
name = "telecom"
signal = 0.8
[model]
learning_rate = 0.3
batch_size = 1024
[privacy]
key_bits = 1024
obfuscation = "djn"
"""


# runs compared across engines: the same parties' secrets (PSI, held-out split)
SECRETS = RunSecrets(bytes(range(32)))


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vertical-engines") / "small.toml"
    path.write_text(SCENARIO)
    return path


@pytest.fixture(scope="module")
def inprocess_run(scenario_file):
    out = scenario_file.parent / "inprocess"
    run_scenario(load_scenario(scenario_file), out, show_progress=False, secrets=SECRETS)
    return out


def assert_same_run(got_dir, ref_dir):
    got, ref = read_summary(got_dir), read_summary(ref_dir)
    assert abs(got["federated"]["auc"] - ref["federated"]["auc"]) <= 1e-9
    for key in ("federated", "centralised", "local_only", "data", "attacks", "calibration"):
        assert got[key] == ref[key], key
    assert without_timings(got["cost"]) == without_timings(ref["cost"])
    assert (got_dir / "transcript.jsonl").read_text() == (ref_dir / "transcript.jsonl").read_text()


def test_a_fresh_client_process_per_message_changes_nothing(
    scenario_file, inprocess_run, tmp_path, monkeypatch
):
    """What the Deployment Engine does to a data party, in this process: every message
    goes to a newly built ClientApp (nothing kept in memory) with the node's context
    serialised and parsed, as a SuperNode hands it to a fresh ClientApp process."""
    from fedrisk.runs import vertical

    real = vertical.make_party_app
    built = []

    def per_message(job, mods=None):
        def app(msg, context):
            app = real(job, mods)
            built.append(app)
            copy = context_from_proto(context_to_proto(context))
            reply = app(msg, copy)
            context.state = context_from_proto(context_to_proto(copy)).state
            return reply

        return app

    monkeypatch.setattr(vertical, "make_party_app", per_message)
    out = tmp_path / "fresh"
    run_scenario(load_scenario(scenario_file), out, show_progress=False, secrets=SECRETS)
    assert len(built) == read_summary(out)["cost"]["messages"] // 2
    assert_same_run(out, inprocess_run)


def test_simulation_engine_equals_in_process(scenario_file, inprocess_run, tmp_path):
    out = tmp_path / "simulation"
    run_scenario(
        load_scenario(scenario_file, ["federation.engine=simulation"]),
        out,
        show_progress=False,
        secrets=SECRETS,
    )
    assert read_summary(out)["engine"] == "simulation"
    assert_same_run(out, inprocess_run)


def test_secret_sharing_on_the_simulation_engine_equals_in_process(scenario_file, tmp_path):
    """The secret-sharing protocol (dealer, three ClientApp nodes) keeps its shares,
    seeds and keys in Context.state: Ray's actors give the in-process result."""
    overrides = ["privacy.protocol=secret_sharing", "model.batch_size=128"]
    runs = {}
    for engine in ("inprocess", "simulation"):
        out = tmp_path / engine
        s = load_scenario(scenario_file, [*overrides, f"federation.engine={engine}"])
        run_scenario(s, out, show_progress=False, secrets=SECRETS)
        runs[engine] = out
    assert read_summary(runs["simulation"])["engine"] == "simulation"
    assert read_summary(runs["simulation"])["privacy"]["triples"] == "dealer"
    assert_same_run(runs["simulation"], runs["inprocess"])


def test_deployment_engine_equals_in_process(scenario_file, inprocess_run, tmp_path, monkeypatch):
    """TLS and SuperNode authentication; each SuperNode is pointed at a file with its
    own party's rows only, and nothing a SuperNode sees (its environment, the run config
    every ClientApp gets) says where the bank's files are; no process and no work folder
    is left afterwards."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work))
    started: list = []
    real_start = flower_deployment.LocalFederation.start

    def start(self):
        started.append(self)
        real_start(self)
        # what each SuperNode was given, read while the files exist
        self.seen = []
        for config in self.node_configs:
            with np.load(config["data-path"]) as f:
                self.seen.append({k: f[k] for k in f})
        self.environ = [environ_of(pid) for pid in self.pids]  # SuperLink, then SuperNodes

    monkeypatch.setattr(flower_deployment.LocalFederation, "start", start)
    run_configs: list = []
    real_submit = launch.submit_run

    def submit(*args, **kwargs):
        run_configs.append(dict(kwargs["run_config"]))
        return real_submit(*args, **kwargs)

    monkeypatch.setattr(launch, "submit_run", submit)
    out = tmp_path / "deployed"
    run_scenario(
        load_scenario(scenario_file, ["federation.engine=deployment"]),
        out,
        show_progress=False,
        secrets=SECRETS,  # each party's reaches its app in its own file
    )
    got = read_summary(out)
    assert got["engine"] == "deployment"
    assert got["deployment"] == {
        "superlink": "local (127.0.0.1)",
        "tls": True,
        "supernode_auth": True,
    }
    assert_same_run(out, inprocess_run)
    (federation,) = started
    assert federation.secure
    (given,) = federation.seen  # one data party: its ids, its columns, no labels
    assert sorted(given) == ["X", "feature_names", "ids"]
    assert given["X"].shape[1] == 3 and all(
        str(c).startswith("telecom") for c in given["feature_names"]
    )
    link_env, *node_envs = federation.environ
    bank_files = link_env[BANK_FILES_ENV]
    assert bank_files.startswith(str(work))  # the bank's ServerApp is told where ...
    assert all(BANK_FILES_ENV not in env for env in node_envs)  # ... no SuperNode is,
    (run_config,) = run_configs
    assert list(run_config) == ["fedrisk-job"]  # nor the run config every ClientApp gets
    assert bank_files not in json.dumps(run_config)
    public = json.loads(run_config["fedrisk-job"])
    # the public job: names, fingerprints, the DP plan and the public key; no rows, no labels
    assert set(public) == {
        "kind",
        "scenario_toml",
        "scenario_path",
        "bank",
        "bank_digest",
        "party_names",
        "party_digests",
        "dp",
        "paillier_n",
    }
    assert len(federation.pids) == 2  # a SuperLink and one SuperNode were started ...
    assert not [p for p in federation.pids if pid_alive(p)]  # ... and none is left,
    assert processes_mentioning(str(tmp_path)) == []  # nor anything they started
    assert list(work.iterdir()) == []  # the rows and the bank's key are gone


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item)


def test_data_split_gives_each_party_only_its_columns(scenario_file, tmp_path, capsys):
    from fedrisk.cli import main
    from fedrisk.data.vertical import load_vertical

    out = tmp_path / "split"
    assert main(["data", "split", str(scenario_file), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    tables = load_vertical(load_scenario(scenario_file))
    assert sorted(p.name for p in out.iterdir()) == [
        "bank-paillier-key.json",
        "bank-rows.npz",
        "bank-secret",
        "telecom-secret",
        "telecom.npz",
    ]
    with np.load(out / "telecom.npz") as f:
        telecom = tables.data_parties[0]
        assert sorted(f) == ["X", "feature_names", "ids"]
        assert tuple(f["feature_names"]) == telecom.feature_names
        assert np.array_equal(f["X"], telecom.X) and np.array_equal(f["ids"], telecom.ids)
    with np.load(out / "bank-rows.npz") as f:
        assert tuple(f["feature_names"]) == tables.holder.feature_names
        assert np.array_equal(f["y"], tables.holder.y)
    key = out / "bank-paillier-key.json"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and set(json.loads(key.read_text())) == {
        "p",
        "q",
    }
    node_config = (
        f"telecom: --node-config 'partition-id=0 num-partitions=1 "
        f'data-path="{(out / "telecom.npz").resolve()}" '
        f'secret-path="{(out / "telecom-secret").resolve()}"\''
    )
    for secret in ("bank-secret", "telecom-secret"):  # each party's own, owner-only
        assert stat.S_IMODE((out / secret).stat().st_mode) == 0o600
        assert len(bytes.fromhex((out / secret).read_text())) == 32
    assert node_config in said and f"--bank-files {out}" in said
    assert main(["data", "split", str(scenario_file), "--out", str(out)]) == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err
