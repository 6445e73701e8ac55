"""Server optimisers (Flower's FedAdam/FedYogi/FedAdagrad) in every aggregation mode, and
the calibration rounds that refit the intercept by secure sums."""

import json

import numpy as np
import pytest

from fedrisk import load_scenario, run_scenario
from fedrisk.data.prepare import prepare_horizontal
from fedrisk.horizontal.calibration import (
    CALIBRATE,
    MAX_STEP,
    TRAIN,
    calibration_statistics,
    newton_intercept,
)
from fedrisk.horizontal.server_optimizer import ServerOptimizer
from fedrisk.models.logistic import predict_proba
from tests.conftest import SCENARIOS


def quick(*overrides):
    return load_scenario(SCENARIOS / "quickstart.toml", list(overrides))


def model_of(out):
    m = json.loads((out / "model.json").read_text())
    return np.array(m["weights"] + [m["intercept"]])


# --- the optimiser step is Flower's --------------------------------------------------------


def test_fedadam_step_is_reddi_et_al_adam_with_flowers_bias_correction():
    s = quick("model.server_optimizer=fedadam", "model.server_learning_rate=0.05")
    m = s.model
    opt = ServerOptimizer(m)
    rng = np.random.default_rng(0)
    params = np.zeros(4)
    mom, var = np.zeros(4), np.zeros(4)
    for rnd in range(1, 6):
        g = rng.normal(size=4)
        params_flower = opt.apply(TRAIN, rnd, params, g)
        mom = m.server_beta_1 * mom + (1 - m.server_beta_1) * g
        var = m.server_beta_2 * var + (1 - m.server_beta_2) * g * g
        eta = (
            m.server_learning_rate
            * np.sqrt(1 - m.server_beta_2 ** (rnd + 1.0))
            / (1 - m.server_beta_1 ** (rnd + 1.0))
        )
        mine = params + eta * mom / (np.sqrt(var) + m.server_tau)
        np.testing.assert_allclose(params_flower, mine, rtol=1e-12, atol=1e-15)
        params = params_flower


@pytest.mark.parametrize("name", ["fedadam", "fedyogi", "fedadagrad"])
def test_an_optimiser_resumed_from_its_state_continues_identically(name):
    s = quick(f"model.server_optimizer={name}")
    rng = np.random.default_rng(1)
    steps = [rng.normal(size=3) for _ in range(6)]
    one, params = ServerOptimizer(s.model), np.zeros(3)
    for rnd, g in enumerate(steps, 1):
        params = one.apply(TRAIN, rnd, params, g)
    two, resumed = ServerOptimizer(s.model), np.zeros(3)
    for rnd, g in enumerate(steps[:3], 1):
        resumed = two.apply(TRAIN, rnd, resumed, g)
    three = ServerOptimizer(s.model)
    three.load_state(json.loads(json.dumps(two.state_dict())))  # through a checkpoint
    for rnd, g in enumerate(steps[3:], 4):
        resumed = three.apply(TRAIN, rnd, resumed, g)
    assert np.array_equal(params, resumed)


def test_fedavg_with_unit_server_rate_is_the_plain_mean_step():
    opt = ServerOptimizer(quick().model)
    p, g = np.array([0.1, -0.2]), np.array([0.3, 0.7])
    assert np.array_equal(opt.apply(TRAIN, 1, p, g), p + g)


@pytest.mark.slow
def test_fedadam_gives_the_same_model_in_plain_and_paillier_and_close_under_secagg(tmp_path):
    common = ("rounds=5", "model.server_optimizer=fedadam", "model.server_learning_rate=0.05")
    outs = {}
    for mode in ("plain", "paillier", "secagg"):
        extra = ("privacy.key_bits=1024",) if mode == "paillier" else ()
        s = quick(*common, f"privacy.aggregation={mode}", *extra)
        outs[mode] = run_scenario(s, tmp_path / mode, show_progress=False)
    plain, paillier, secagg = (model_of(outs[m].out_dir) for m in ("plain", "paillier", "secagg"))
    np.testing.assert_allclose(paillier, plain, rtol=0, atol=1e-9)
    # SecAgg+ quantises each update: close, not identical
    np.testing.assert_allclose(secagg, plain, rtol=0, atol=5e-3)
    # and the optimiser matters: FedAvg gives another model
    fedavg = run_scenario(quick("rounds=5"), tmp_path / "fedavg", show_progress=False)
    assert np.max(np.abs(model_of(fedavg.out_dir) - plain)) > 1e-3


# --- calibration rounds -----------------------------------------------------------------------


def test_newton_step_solves_the_intercept_equation_and_is_clipped():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(500, 3))
    y = (rng.random(500) < 0.1).astype(float)
    params = np.array([0.5, -0.3, 0.2, 1.5])  # far too high an intercept: mean PD ~ 0.8
    first = newton_intercept(params, calibration_statistics(params, X, y))
    assert first[-1] == pytest.approx(params[-1] - MAX_STEP)  # clipped from far away
    assert np.array_equal(first[:-1], params[:-1])  # weights untouched
    for _ in range(5):
        first = newton_intercept(first, calibration_statistics(first, X, y))
    assert predict_proba(first, X).mean() == pytest.approx(y.mean(), abs=1e-9)


def test_pooled_means_from_weighted_bank_statistics_give_the_pooled_newton_step():
    """What the aggregate carries (banks' means weighted by their row counts) gives the
    step the pooled rows give: the secure sum loses nothing."""
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(900, 2)), (rng.random(900) < 0.3).astype(float)
    params = np.array([0.4, -0.1, -2.0])
    parts = np.split(rng.permutation(900), [100, 450])
    weights = np.array([len(p) for p in parts], float)
    stats = np.stack([calibration_statistics(params, X[p], y[p]) for p in parts])
    pooled = (weights / weights.sum()) @ stats
    np.testing.assert_allclose(
        newton_intercept(params, pooled),
        newton_intercept(params, calibration_statistics(params, X, y)),
        rtol=1e-12,
    )


@pytest.mark.slow  # seconds of runs: the full suite covers it
def test_calibration_rounds_follow_training_and_match_the_training_default_rate(tmp_path):
    s = quick("rounds=4")
    assert s.calibration_rounds == 3 and s.max_rounds == 7
    out = run_scenario(s, tmp_path / "r", show_progress=False)
    data = prepare_horizontal(s)
    p = predict_proba(model_of(out.out_dir), data.train.X)
    assert p.mean() == pytest.approx(data.train.y.mean(), abs=1e-4)
    off = run_scenario(
        quick("rounds=4", "model.calibration=none"), tmp_path / "off", show_progress=False
    )
    p_off = predict_proba(model_of(off.out_dir), data.train.X)
    assert abs(p_off.mean() - data.train.y.mean()) > 0.02  # label skew drifted it
    # calibration moves the intercept only
    np.testing.assert_array_equal(model_of(out.out_dir)[:-1], model_of(off.out_dir)[:-1])
    # the calibration rounds travel as Flower rounds, recorded like the others
    rounds = {json.loads(line)["round"] for line in (out.out_dir / "transcript.jsonl").open()}
    assert max(rounds) == s.max_rounds


def test_no_calibration_round_under_client_dp_or_when_off():
    assert quick("privacy.dp=client", "privacy.noise_multiplier=1").calibration_rounds == 0
    assert quick("model.calibration=none").calibration_rounds == 0
    assert quick().calibration_rounds == 3


def test_dp_sgd_accounts_calibration_rounds_as_training_rounds():
    from fedrisk.privacy.plan import plan_dp

    s = quick("privacy.dp=sample", "privacy.noise_multiplier=1.2", "rounds=5")
    plan = plan_dp(s, {"a": 4000, "b": 6000})
    assert plan.steps == plan.steps_per_round * s.max_rounds
    assert len(plan.epsilon_per_round) == s.max_rounds
    off = plan_dp(
        quick(
            "privacy.dp=sample",
            "privacy.noise_multiplier=1.2",
            "rounds=5",
            "model.calibration=none",
        ),
        {"a": 4000, "b": 6000},
    )
    assert off.epsilon < plan.epsilon


def test_task_codes_cover_both_tasks():
    from fedrisk.horizontal.aggregation.paillier import TASK_OF_CODE

    assert set(TASK_OF_CODE.values()) == {TRAIN, CALIBRATE}
