"""The project is a Flower App: pyproject's components load and drive a run."""

import importlib
import tomllib

import pytest
from flwr.app import Context, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import ServerApp

from fedrisk.federation.engines import InProcessGrid, _run_server

from .conftest import ROOT

pytestmark = pytest.mark.slow


def component(ref: str):
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def test_pyproject_components_are_flower_apps_that_run(tmp_path, monkeypatch, caplog):
    app = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["flwr"]["app"]
    assert app["publisher"]
    server_app = component(app["components"]["serverapp"])
    client_app = component(app["components"]["clientapp"])
    assert isinstance(server_app, ServerApp) and isinstance(client_app, ClientApp)
    scenario = tmp_path / "s.toml"
    scenario.write_text((ROOT / "scenarios/quickstart.toml").read_text()
                        .replace("rounds = 20", "rounds = 2"))
    # `flwr run` hands both apps the run config; here a grid stands in for the SuperLink
    grid = InProcessGrid(client_app, 5)
    for ctx in grid._contexts.values():
        ctx.run_config["scenario"] = str(scenario)
    original = Context.__init__

    def with_config(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.run_config.setdefault("scenario", str(scenario))

    monkeypatch.setattr(Context, "__init__", with_config)
    with caplog.at_level("WARNING", logger="fedrisk"):
        _run_server(server_app, grid)
    grid.close()
    assert "quickstart finished 2 rounds; test AUC 0.6" in caplog.text
