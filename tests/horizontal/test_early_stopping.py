"""Early stopping on the pooled validation loss: rounds become a maximum."""

import csv
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


def test_early_stopping_is_refused_with_dp_and_in_vertical_runs():
    with pytest.raises(ScenarioError, match="model.early_stopping: not with privacy.dp"):
        quick("model.early_stopping=true", "privacy.dp=sample", "privacy.noise_multiplier=1")
    with pytest.raises(ScenarioError, match="model.early_stopping: for horizontal runs"):
        load_scenario(SCENARIOS / "vertical.toml", ["model.early_stopping=true"])


def test_the_validation_loss_is_judged_at_the_best_intercept_shift():
    """A model whose intercept drifted scores as well as the calibrated one: the rule
    must not stop because of drift the calibration rounds repair."""
    from fedrisk.horizontal.early_stopping import pooled_loss, validation_slots

    rng = np.random.default_rng(4)
    X = rng.normal(size=(4000, 2))
    y = (rng.random(4000) < 1 / (1 + np.exp(-(X @ [1.0, -0.5] - 1.5)))).astype(float)
    good = np.array([1.0, -0.5, -1.5])
    drifted = good + np.array([0, 0, 1.5])
    assert pooled_loss(validation_slots(drifted, X, y, 4000)) == pytest.approx(
        pooled_loss(validation_slots(good, X, y, 4000)), abs=2e-3
    )
    worse = np.array([0.2, -0.1, -1.5])  # a weaker ranking is worse at any shift
    assert (
        pooled_loss(validation_slots(worse, X, y, 4000))
        > pooled_loss(validation_slots(good, X, y, 4000)) + 0.01
    )


@pytest.mark.slow
def test_a_200_round_run_stops_keeps_the_best_round_and_resumes_to_the_same_stop(tmp_path):
    s = quick("rounds=200", "model.early_stopping=true", "model.patience=2")
    got = run_scenario(s, tmp_path / "r", show_progress=False).summary
    stop = got["training"]["early_stopping"]
    assert stop["stopped"] and stop["stopped_at_round"] < 200
    assert got["cost"]["rounds"] == stop["stopped_at_round"]
    losses = stop["validation_loss"]
    best = stop["best_round"]
    assert losses[best] == min(losses) and len(losses) - 1 - best >= 2
    rows = list(csv.DictReader((tmp_path / "r" / "rounds.csv").open()))
    assert len(rows) == stop["stopped_at_round"] + s.calibration_rounds
    # the kept model ranks as the best round's did (calibration moves the intercept only)
    best_auc = float(rows[best - 1]["auc"]) if best else 0.5
    assert abs(got["federated"]["auc"] - best_auc) < 0.002
    # interrupted after round 2 and resumed: the same stop, the same model
    from tests.runs.test_resume import interrupt_at

    with pytest.raises(KeyboardInterrupt):
        run_scenario(s, tmp_path / "cut", show_progress=False, client_mods=[interrupt_at(2)])
    resumed = resume_run(tmp_path / "cut", show_progress=False).summary
    assert resumed["training"]["early_stopping"] == stop
    assert resumed["federated"] == got["federated"]


@pytest.mark.slow
def test_early_stopping_under_paillier_and_secagg_matches_plain(tmp_path):
    """The banks decide under Paillier (they alone read the pooled loss), a round later
    than the aggregator does in plain mode, and keep the same best model."""
    common = ("rounds=60", "model.early_stopping=true", "model.patience=2")
    runs = {}
    for mode, extra in (("plain", ()), ("paillier", ("privacy.key_bits=1024",)), ("secagg", ())):
        s = quick(*common, f"privacy.aggregation={mode}", *extra)
        runs[mode] = run_scenario(s, tmp_path / mode, show_progress=False)
    stop = {m: r.summary["training"]["early_stopping"] for m, r in runs.items()}
    assert stop["plain"]["stopped"] and stop["paillier"]["stopped"] and stop["secagg"]["stopped"]
    assert stop["paillier"]["best_round"] == stop["plain"]["best_round"]
    assert stop["paillier"]["stopped_at_round"] == stop["plain"]["stopped_at_round"] + 1
    np.testing.assert_allclose(
        stop["paillier"]["validation_loss"][: len(stop["plain"]["validation_loss"])],
        stop["plain"]["validation_loss"],
        rtol=0,
        atol=1e-9,
    )
    models = {m: json.loads((r.out_dir / "model.json").read_text()) for m, r in runs.items()}
    np.testing.assert_allclose(
        models["paillier"]["weights"] + [models["paillier"]["intercept"]],
        models["plain"]["weights"] + [models["plain"]["intercept"]],
        rtol=0,
        atol=1e-9,
    )
    # the aggregator never read a loss under Paillier: nothing about it in the clear
    transcript = (runs["paillier"].out_dir / "transcript.jsonl").read_text()
    assert "validation" not in transcript
