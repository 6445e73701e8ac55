"""The converged reference (scikit-learn on the pooled rows) and the calibration warning."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit

from fedrisk.evaluation import (
    CALIBRATION_WARN_PP,
    baselines,
    calibration_gap_pp,
    calibration_warning,
)
from fedrisk.evaluation.baselines import train_reference


def credit_like(n: int = 4000, d: int = 8, seed: int = 0):
    """Correlated, unevenly scaled features and ~28% defaults."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * rng.uniform(0.5, 3.0, size=d)
    w = rng.normal(size=d) / np.sqrt(d)
    y = (rng.uniform(size=n) < expit(X @ w * 0.5 - 1.9)).astype(np.int64)
    return X, y


def objective(theta, X, y, l2):
    """fedrisk's loss, written out again: mean log loss + ½·l2·‖w‖², intercept free."""
    z = X @ theta[:-1] + theta[-1]
    r = expit(z) - y
    f = np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * theta[:-1] @ theta[:-1]
    g = np.append(X.T @ r / len(y) + l2 * theta[:-1], r.mean())
    return f, g


@pytest.mark.parametrize("l2", [0.0, 1e-4, 1e-2])
def test_reference_is_converged_and_matches_an_independent_fit(l2):
    X, y = credit_like()
    ref = train_reference(X, y, l2)
    assert ref.kind == "logistic" and ref.converged
    assert ref.n_iter < ref.max_iter
    # its gradient, computed here and not by fedrisk, vanishes on the training rows
    _, g = objective(ref.params, X, y, l2)
    assert np.linalg.norm(g) < 1e-6
    assert ref.gradient_norm == pytest.approx(np.linalg.norm(g), abs=1e-9)
    # scipy's BFGS on the same objective, from another start, lands on the same model
    other = minimize(
        objective,
        np.full(X.shape[1] + 1, 0.1),
        args=(X, y, l2),
        jac=True,
        method="BFGS",
        options={"gtol": 1e-10, "maxiter": 10_000},
    )
    np.testing.assert_allclose(ref.params, other.x, atol=1e-5)
    # sklearn's probabilities are the logistic of the recorded parameters
    np.testing.assert_allclose(
        ref.predict_proba(X), expit(X @ other.x[:-1] + other.x[-1]), atol=1e-6
    )


@pytest.mark.parametrize("l2", [1e-4, 10.0])
def test_the_intercept_is_not_penalised(l2):
    """With a free intercept the optimum has mean(p − y) = 0: the mean PD on the training
    rows is their default rate, however heavy the penalty on the weights (a penalised
    intercept would be pulled toward 0, i.e. toward PD 50%)."""
    X, y = credit_like()
    ref = train_reference(X, y, l2)
    assert ref.predict_proba(X).mean() == pytest.approx(y.mean(), abs=1e-6)


def test_record_is_json_ready_and_c_matches_l2():
    X, y = credit_like(n=1000)
    rec = train_reference(X, y, 1e-3).record()
    assert rec["C"] == pytest.approx(1 / (1e-3 * 1000))
    assert train_reference(X, y, 0.0).record()["C"] is None  # C = ∞ has no JSON form
    assert rec["converged"] is True and rec["kind"] == "logistic"
    assert (rec["train_rows"], rec["features"]) == X.shape


def test_a_reference_stopped_early_says_it_did_not_converge(monkeypatch):
    monkeypatch.setattr(baselines, "REFERENCE_MAX_ITER", 2)
    X, y = credit_like()
    ref = train_reference(X, y, 1e-4)
    assert ref.n_iter == 2 and not ref.converged
    assert ref.record()["converged"] is False and ref.gradient_norm > 1e-4


# --------------------------------------------------------------------------- calibration


def predictions(rate: float, mean_pd: float, n: int = 5000, seed: int = 0):
    """Outcomes with default rate ``rate`` and scores averaging ``mean_pd``."""
    rng = np.random.default_rng(seed)
    y = np.zeros(n, dtype=np.int64)
    y[: round(rate * n)] = 1
    p = rng.uniform(0.0, 2 * mean_pd, size=n)
    p += mean_pd - p.mean()
    return y, p


@pytest.mark.parametrize(
    ("rate", "mean_pd", "warns"),
    [
        (0.22, 0.13, True),  # under-predicts by 9 pp (the quickstart on issue 13's main)
        (0.05, 0.08, True),  # over-predicts by 3 pp
        (0.22, 0.21, False),  # 1 pp: within tolerance
        (0.05, 0.065, False),
    ],
)
def test_warning_when_mean_pd_is_more_than_2pp_off(rate, mean_pd, warns):
    y, p = predictions(rate, mean_pd)
    observed, mean = y.mean(), p.mean()
    assert calibration_gap_pp(mean, observed) == pytest.approx(100 * (mean_pd - rate))
    warning = calibration_warning(mean, observed)
    assert (warning is not None) == warns
    if warns:
        assert f"{100 * mean:.1f}%" in warning and f"{100 * observed:.1f}%" in warning
        assert f"{abs(100 * (mean - observed)):.1f} pp" in warning
        assert ("under-predicts" if mean < observed else "over-predicts") in warning


def test_warning_threshold_is_strict():
    assert CALIBRATION_WARN_PP == 2.0
    assert calibration_warning(0.30, 0.28) is None  # exactly 2 pp (to rounding)
    assert calibration_warning(0.3001, 0.28) is not None
    assert calibration_warning(0.1, 0.2, threshold_pp=20.0) is None
    assert "the joint model" in calibration_warning(0.1, 0.2, model="joint")
