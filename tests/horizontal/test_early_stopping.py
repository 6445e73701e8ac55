"""Early stopping on the pooled validation loss: rounds become a maximum."""

import json

import numpy as np
import pytest

from fedrisk import load_scenario, resume_run, run_scenario
from fedrisk.errors import ScenarioError
from fedrisk.horizontal.early_stopping import EarlyStopping, validation_split
from tests.conftest import SCENARIOS


def quick(*overrides):
    return load_scenario(SCENARIOS / "quickstart.toml", list(overrides))


def test_the_rule_stops_after_patience_rounds_without_improvement():
    stop = EarlyStopping(patience=2)
    for j, loss in enumerate([0.7, 0.5, 0.4, 0.45, 0.41]):
        assert not stop.should_stop()
        stop.observe(j, loss, np.full(2, j))
    assert stop.should_stop() and stop.best_round == 2
    assert np.array_equal(stop.best_params, np.full(2, 2))
    again = EarlyStopping(2)
    again.load_state(json.loads(json.dumps(stop.state_dict())))
    assert again.best_round == 2 and again.should_stop()


def test_validation_rows_are_the_banks_own_and_disjoint():
    train, val = validation_split(1000, 0.1, seed=3, party=1)
    assert len(val) == 100 and not set(train) & set(val) and len(train) + len(val) == 1000
    other, _ = validation_split(1000, 0.1, seed=3, party=2)
    assert not np.array_equal(train, other)


def test_early_stopping_is_refused_where_it_is_not_built():
    for extra in ("privacy.aggregation=secagg", "privacy.dp=sample privacy.noise_multiplier=1"):
        with pytest.raises(ScenarioError, match="model.early_stopping"):
            quick("model.early_stopping=true", *extra.split())


@pytest.mark.slow
def test_a_200_round_run_stops_keeps_the_best_round_and_resumes_to_the_same_stop(tmp_path):
    s = quick("rounds=200", "model.early_stopping=true", "model.patience=3")
    got = run_scenario(s, tmp_path / "r", show_progress=False).summary
    stop = got["training"]["early_stopping"]
    assert stop["stopped"] and stop["stopped_at_round"] < 200
    assert got["cost"]["rounds"] == stop["stopped_at_round"]
    losses = stop["validation_loss"]
    best = stop["best_round"]
    assert losses[best] == min(losses) and len(losses) - 1 - best >= 3
    rows = (tmp_path / "r" / "rounds.csv").read_text().splitlines()
    assert len(rows) - 1 == stop["stopped_at_round"] + s.calibration_rounds
    # interrupted after round 2 and resumed: the same stop, the same model
    from tests.runs.test_resume import interrupt_at

    with pytest.raises(KeyboardInterrupt):
        run_scenario(s, tmp_path / "cut", show_progress=False, client_mods=[interrupt_at(2)])
    resumed = resume_run(tmp_path / "cut", show_progress=False).summary
    assert resumed["training"]["early_stopping"] == stop
    assert resumed["federated"] == got["federated"]
