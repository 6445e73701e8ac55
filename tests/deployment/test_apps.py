"""The project is a Flower App: pyproject's components load and drive a run, from a
scenario path (`flwr run .`) or from the public job `fedrisk run --engine deployment`
hands them, and give the in-process result bit for bit."""

import csv
import importlib
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Context
from flwr.clientapp import ClientApp
from flwr.serverapp import ServerApp

from fedrisk.deployment.apps import public_job
from fedrisk.deployment.bank_files import write_bank_files
from fedrisk.deployment.result import RESULT_MARK, decode_result, recorder_from_result
from fedrisk.flower.engines import InProcessGrid, run_server
from fedrisk.scenario import CALIBRATION_ROUNDS
from tests.conftest import ROOT, SCENARIOS

pytestmark = pytest.mark.slow


def component(ref: str):
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def components():
    app = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["flwr"]["app"]
    assert app["publisher"]
    server_app = component(app["components"]["serverapp"])
    client_app = component(app["components"]["clientapp"])
    assert isinstance(server_app, ServerApp) and isinstance(client_app, ClientApp)
    return server_app, client_app


def drive(monkeypatch, capsys, n_nodes: int, run_config: dict, node_configs=None) -> dict:
    """Run the module-level apps as a SuperLink would hand them their configs."""
    server_app, client_app = components()
    grid = InProcessGrid(client_app, n_nodes)
    for i, ctx in enumerate(grid._contexts.values()):
        ctx.run_config.update(run_config)
        ctx.node_config.update((node_configs or [{}] * n_nodes)[i])
    original = Context.__init__

    def with_config(self, *args, **kwargs):
        original(self, *args, **kwargs)
        for k, v in run_config.items():
            self.run_config.setdefault(k, v)

    monkeypatch.setattr(Context, "__init__", with_config)
    capsys.readouterr()
    run_server(server_app, grid)
    grid.close()
    line = next(ln for ln in capsys.readouterr().out.splitlines() if RESULT_MARK in ln)
    return decode_result(line.split(RESULT_MARK, 1)[1])


def test_flwr_run_dot_drives_a_scenario_file(tmp_path, monkeypatch, capsys):
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        (SCENARIOS / "quickstart.toml").read_text().replace("rounds = 20", "rounds = 2")
    )
    record = drive(monkeypatch, capsys, 5, {"scenario": str(scenario)})
    assert record["error"] is None
    assert len(record["recorder"]["rounds"]) == 2 + CALIBRATION_ROUNDS
    assert len(record["params_by_round"]) == 3 + CALIBRATION_ROUNDS  # the start, the rounds


@pytest.mark.parametrize(
    "overrides",
    [
        ["rounds=3"],
        ["rounds=3", "privacy.aggregation=paillier", "privacy.key_bits=1024"],
        [
            "rounds=3",
            "privacy.aggregation=paillier",
            "privacy.key_bits=1024",
            "privacy.key=threshold",
        ],
        ["rounds=3", "privacy.dp=sample", "privacy.target_epsilon=4", "federation.dropout=0.3"],
    ],
)
def test_the_deployed_apps_give_the_in_process_result(tmp_path, monkeypatch, capsys, overrides):
    """The ServerApp sees only the public job; each bank only its own file."""
    from fedrisk.data.prepare import prepare_horizontal
    from fedrisk.evaluation import score_metrics
    from fedrisk.horizontal.keys import paillier_keys
    from fedrisk.horizontal.setup import bank_job
    from fedrisk.models.logistic import predict_proba
    from fedrisk.privacy.secrets import RunSecrets
    from fedrisk.runs.run import run_scenario
    from fedrisk.scenario import load_scenario

    s = load_scenario(SCENARIOS / "quickstart.toml", overrides)
    keys = paillier_keys(s)
    data = prepare_horizontal(s)
    # both runs from the same parties' secrets; each bank's reaches it in its own file
    secrets = RunSecrets(bytes(range(32)))
    job = bank_job(s, data, keys, secrets)
    public = public_job(job)
    text = json.dumps(public)
    assert len(text) < 20_000  # metadata, not 24,000 customers' rows
    if keys is not None:  # the aggregator's config holds the public key only
        assert str(keys.public_key.n) in text
        secrets_ = (
            [str(sh.secret) for sh in keys.shares] + [keys.shares[0].blind_seed.hex()]
            if keys.shares
            else [str(keys.private_key.p), str(keys.private_key.q)]
        )
        assert not any(x in text for x in secrets_)
    configs = write_bank_files(tmp_path / "banks", job, keys)
    if keys is not None and keys.shares:  # threshold: each SuperNode gets its own share
        files = [json.loads(open(c["paillier-key"]).read()) for c in configs]
        assert [f["index"] for f in files] == [1, 2, 3, 4, 5]
        assert [f["secret"] for f in files] == [str(sh.secret) for sh in keys.shares]
        assert len({c["paillier-key"] for c in configs}) == 5
    record = drive(
        monkeypatch, capsys, len(job.banks), {"fedrisk-job": json.dumps(public)}, configs
    )
    assert record["error"] is None, record["error"]
    expected = run_scenario(
        s, tmp_path / "inprocess", show_progress=False, keys=keys, secrets=secrets
    )
    recorder = recorder_from_result(
        record, lambda p: score_metrics(data.test.y, predict_proba(p, data.test.X))
    )
    if keys is None:
        auc = score_metrics(data.test.y, predict_proba(recorder.final_params, data.test.X))["auc"]
        assert auc == expected.summary["federated"]["auc"]
    else:  # the aggregator returns ciphertexts only
        assert recorder.final_params is None and recorder.final_opaque is not None
    got = [(r.round, r.n_replies, r.bytes) for r in recorder.rounds]
    with open(tmp_path / "inprocess" / "rounds.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert got == [(int(r["round"]), int(r["n_replies"]), int(r["bytes"])) for r in rows]
    assert np.all([c["data-path"].endswith(".npz") for c in configs])
    for bank, c in zip(job.banks, configs):  # each bank's own secret, owner-only
        assert Path(c["secret-path"]).read_text().strip() == bank.secret.hex()
        assert Path(c["secret-path"]).stat().st_mode & 0o777 == 0o600
        assert bank.secret.hex() not in text  # not in the public job


def test_a_relative_scenario_is_found_in_the_unpacked_app(tmp_path, monkeypatch):
    """The apps run in their SuperLink's or SuperNode's folder; Flower puts the unpacked
    app (which carries scenarios/*.toml) on sys.path."""
    from fedrisk.deployment import apps as flower_app

    app = tmp_path / "app"
    (app / "scenarios").mkdir(parents=True)
    (app / "scenarios" / "only-here.toml").write_text('name = "x"\n')
    elsewhere = tmp_path / "superlink"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert flower_app.scenario_file("scenarios/only-here.toml") == "scenarios/only-here.toml"
    monkeypatch.syspath_prepend(str(app))
    assert flower_app.scenario_file("scenarios/only-here.toml") == str(
        app / "scenarios" / "only-here.toml"
    )
    assert flower_app.scenario_file(str(app / "x.toml")) == str(app / "x.toml")


def test_a_bank_given_rows_from_another_split_is_refused(tmp_path, monkeypatch, capsys):
    from fedrisk.data.prepare import prepare_horizontal
    from fedrisk.horizontal.setup import bank_job
    from fedrisk.scenario import load_scenario

    s = load_scenario(SCENARIOS / "quickstart.toml", ["rounds=1", "federation.banks=3"])
    job = bank_job(s, prepare_horizontal(s), None)
    configs = write_bank_files(tmp_path / "banks", job, None)
    other = load_scenario(
        SCENARIOS / "quickstart.toml", ["rounds=1", "federation.banks=3", "seed=7"]
    )
    write_bank_files(tmp_path / "other", bank_job(other, prepare_horizontal(other), None), None)
    configs[1]["data-path"] = str(tmp_path / "other" / "bank_2.npz")
    record = drive(monkeypatch, capsys, 3, {"fedrisk-job": json.dumps(public_job(job))}, configs)
    assert "bank_2: its rows" in record["error"]
    assert "are not the ones this scenario's split gives" in record["error"]
    assert record["error_kind"] == "protocol"


def test_data_split_gives_each_bank_only_its_threshold_key_share(tmp_path):
    from fedrisk.deployment.options import DeploymentOptions
    from fedrisk.runs.split import split_for_supernodes
    from fedrisk.scenario import load_scenario

    s = load_scenario(
        SCENARIOS / "quickstart.toml",
        ["privacy.aggregation=paillier", "privacy.key=threshold", "privacy.key_bits=1024"],
    )
    text = split_for_supernodes(s, tmp_path / "banks")
    for i in range(1, 6):
        assert f'paillier-key="{tmp_path / "banks"}/bank_{i}-paillier-key-share.json"' in text
    assert not (tmp_path / "banks" / "banks-paillier-key.json").exists()
    keys = DeploymentOptions(bank_files=tmp_path / "banks").bank_keys(s)
    assert keys.private_key is None and [sh.index for sh in keys.shares] == [1, 2, 3, 4, 5]
