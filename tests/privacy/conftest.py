"""A vertical run on 2,000 synthetic customers, with everything the data party receives
recorded as it arrives (the view attacks (c) and (d) are allowed)."""

from __future__ import annotations

import pytest

from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.run import run_scenario
from fedrisk.scenario import load_scenario
from fedrisk.vertical.protocol import PSI_KEY

VERTICAL_2000 = """name = "vertical-attacks"
seed = 7
rounds = 1
[data]
source = "synthetic"
customers = 2000
features_per_source = 3
overlap = 0.8
test_fraction = 0.2
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
batch_size = 2048
[privacy]
key_bits = 1024
obfuscation = "djn"
"""


@pytest.fixture(scope="session")
def vertical_party_view(tmp_path_factory):
    """(scenario, run folder, the parties' secrets, what the data party received)."""
    folder = tmp_path_factory.mktemp("vertical-attacks")
    (folder / "s.toml").write_text(VERTICAL_2000)
    s = load_scenario(folder / "s.toml")
    seen: dict = {}

    def party_view(msg, context, call_next):
        cfg = msg.content["config"] if "config" in msg.content else {}
        reply = call_next(msg, context)
        stage = cfg.get("stage")
        if stage == "psi-mask":
            seen["bank-masked"] = list(cfg["bank-masked"])
            seen["my-masked"] = list(reply.content["config"]["masked"])
            seen["bank-double"] = list(reply.content["config"]["bank-double"])
            seen["my-order"] = context.state[PSI_KEY + ".order"]["order"].numpy()
        elif stage == "psi-finish":
            seen["my-double"] = list(cfg["my-double"])
        elif stage == "align":
            seen["train-ids"] = list(cfg["train-ids"])
            seen["test-ids"] = list(cfg["test-ids"])
        return reply

    secrets = RunSecrets()  # fresh from the OS, as a real run
    out = folder / "run"
    run_scenario(s, out, show_progress=False, client_mods=[party_view], secrets=secrets)
    return s, out, secrets, seen
