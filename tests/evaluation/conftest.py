"""Run folders several report test modules read: made once per session."""

import warnings

import pytest

from fedrisk.runs.run import run_scenario
from fedrisk.scenario import load_scenario
from tests.conftest import SCENARIOS

# The bundled UCI data split between the bank and a data provider (as scenarios/
# vertical.toml), one epoch over a fifth of the rows with small keys: a few seconds.
VERTICAL = """name = "tiny-vertical"
description = "bank + provider, one epoch, 1024-bit keys (test)"
seed = 42
rounds = 1
[data]
source = "uci-default-credit"
test_fraction = 0.8   # 6,000 training rows: fewer Paillier encryptions, a faster test
[federation]
kind = "vertical"
[[federation.parties]]
name = "bank"
label = true
columns = ["PAY_6", "BILL_AMT*", "PAY_AMT*"]
[[federation.parties]]
name = "provider"
columns = ["LIMIT_BAL", "SEX", "EDUCATION", "MARRIAGE", "AGE", "PAY_0", "PAY_2..PAY_5"]
[model]
learning_rate = 0.3
batch_size = 2048
[privacy]
key_bits = 1024
obfuscation = "djn"
label_leakage_attack = true
"""


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    h = tmp / "h"
    run_scenario(load_scenario(SCENARIOS / "quickstart.toml", ["rounds=3"]), h, show_progress=False)
    (tmp / "v.toml").write_text(VERTICAL)
    v = tmp / "v"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*1024-bit", category=UserWarning)
        run_scenario(load_scenario(tmp / "v.toml"), v, show_progress=False)
    return {"horizontal": h, "vertical": v}
