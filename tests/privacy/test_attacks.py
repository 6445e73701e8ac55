"""Tests for fedrisk.privacy.attacks: the loss-threshold membership-inference attack."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics

from fedrisk.models import logistic
from fedrisk.privacy import (
    GaussianSampledEvent,
    PrivacyAccountant,
    dp_sgd_epochs,
    max_attack_auc_bound,
    membership_inference_auc,
    per_example_log_loss,
)


def population(n: int, d: int, seed: int, signal: int = 5):
    """Rows from one fixed population: the first ``signal`` features matter, the rest are noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = np.zeros(d)
    w[:signal] = 1.0
    y = (rng.random(n) < logistic.predict_proba(np.append(w, 0.0), X)).astype(float)
    return X, y


@pytest.fixture(scope="module")
def overfit_setup():
    # 40 training rows, 200 features: the model can memorise every training label.
    X, y = population(40, 200, seed=0)
    Xo, yo = population(2000, 200, seed=1)
    model = logistic.LogisticRegressionSGD(
        learning_rate=0.5, epochs=300, batch_size=40, l2=0.0
    ).fit(X, y)
    return model.params_, X, y, Xo, yo


def test_per_example_log_loss_matches_model_loss():
    X, y = population(50, 4, seed=3)
    p = np.array([0.3, -0.2, 0.1, 0.5, -0.4])
    assert per_example_log_loss(p, X, y).mean() == pytest.approx(logistic.loss(p, X, y))


def test_attack_succeeds_on_an_overfitted_model(overfit_setup):
    auc = membership_inference_auc(*overfit_setup)
    assert auc > 0.6  # measured 0.97


def test_attack_fails_on_a_well_generalising_model():
    X, y = population(20_000, 10, seed=2)
    Xo, yo = population(20_000, 10, seed=3)
    params = logistic.LogisticRegressionSGD(learning_rate=0.1, epochs=3, l2=1e-4).fit(X, y).params_
    assert membership_inference_auc(params, X, y, Xo, yo) == pytest.approx(0.5, abs=0.03)


def test_identical_sets_give_exactly_one_half(overfit_setup):
    params, X, y, _, _ = overfit_setup
    assert membership_inference_auc(params, X, y, X, y) == 0.5


def test_sides_are_balanced_and_capped(monkeypatch, overfit_setup):
    params, X, y, Xo, yo = overfit_setup
    seen = []

    def spy(labels, scores):
        seen.append((int(labels.sum()), int((labels == 0).sum())))
        return 0.5

    monkeypatch.setattr(sklearn.metrics, "roc_auc_score", spy)  # read at call time
    membership_inference_auc(params, X, y, Xo, yo)  # 40 vs 2000
    membership_inference_auc(params, Xo, yo, Xo[:1500], yo[:1500], max_per_side=100)
    assert seen == [(40, 40), (100, 100)]


def test_subsampling_is_seeded(overfit_setup):
    params, X, y, Xo, yo = overfit_setup
    a = membership_inference_auc(params, X, y, Xo, yo, seed=4)
    assert a == membership_inference_auc(params, X, y, Xo, yo, seed=4)
    others = {membership_inference_auc(params, X, y, Xo, yo, seed=s) for s in range(5)}
    assert len(others) > 1  # a different subsample of non-members


def test_attack_validates(overfit_setup):
    params, X, y, Xo, yo = overfit_setup
    with pytest.raises(ValueError):
        membership_inference_auc(params, X[:0], y[:0], Xo, yo)
    with pytest.raises(ValueError):
        membership_inference_auc(params, X, y[:-1], Xo, yo)
    with pytest.raises(ValueError):
        membership_inference_auc(params, X, y, Xo, yo, max_per_side=0)


def test_dp_sgd_blunts_the_attack(overfit_setup):
    """Same over-fitting setup trained with DP-SGD at ε≈1: the attack drops towards chance
    and stays under the bound (ε, δ) implies. Averaged over seeds: 40 vs 40 rows make a
    single AUC noisy (sd ≈ 0.065)."""
    params, X, y, Xo, yo = overfit_setup
    q, epochs, delta = 0.25, 20, 1e-5
    steps = round(epochs / q)
    accountant = PrivacyAccountant(delta)
    z = accountant.calibrate(1.0, q, steps)
    eps = accountant.epsilon(GaussianSampledEvent(z, q, steps))
    aucs = []
    for seed in range(5):
        p, taken = dp_sgd_epochs(
            np.zeros_like(params),
            X,
            y,
            epochs=epochs,
            sample_rate=q,
            clip_norm=1.0,
            noise_multiplier=z,
            learning_rate=0.5,
            l2=0.0,
            rng=np.random.default_rng(seed),
        )
        assert taken == steps
        aucs.append(membership_inference_auc(p, X, y, Xo, yo))
    no_dp = membership_inference_auc(params, X, y, Xo, yo)
    assert np.mean(aucs) < no_dp - 0.2
    assert np.mean(aucs) < max_attack_auc_bound(eps, delta)


def test_auc_agrees_with_scikit_learn_on_balanced_sets(overfit_setup):
    from sklearn.metrics import roc_auc_score

    params, X, y, Xo, yo = overfit_setup
    Xn, yn = Xo[:40], yo[:40]  # already balanced: no subsampling happens
    scores = -np.concatenate(
        [per_example_log_loss(params, X, y), per_example_log_loss(params, Xn, yn)]
    )
    expected = roc_auc_score(np.r_[np.ones(40), np.zeros(40)], scores)
    assert membership_inference_auc(params, X, y, Xn, yn) == pytest.approx(expected, abs=1e-12)
