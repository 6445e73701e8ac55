"""Tests for fedrisk.privacy.mechanisms: clipping, the noise actually added, DP-SGD."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats
from sklearn.metrics import roc_auc_score

from fedrisk.models import logistic
from fedrisk.privacy import clip_rows, clip_vector, dp_sgd_epochs, dp_sgd_step, gaussian_noise


def toy_data(n: int = 500, d: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = np.linspace(1.5, -1.0, d)
    y = (rng.random(n) < logistic.predict_proba(np.append(w, -0.5), X)).astype(float)
    return X, y


# ---------------------------------------------------------------- clipping


def test_clip_rows_clips_long_rows_and_leaves_short_ones():
    G = np.array([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0], [-6.0, 8.0], [0.6, 0.8]])
    out = clip_rows(G, 1.0)
    norms = np.linalg.norm(out, axis=1)
    np.testing.assert_allclose(norms, [1.0, 0.5, 0.0, 1.0, 1.0], rtol=1e-15)
    np.testing.assert_array_equal(out[[1, 2, 4]], G[[1, 2, 4]])  # untouched, bit for bit
    np.testing.assert_allclose(out[0], [0.6, 0.8])  # direction kept
    np.testing.assert_allclose(out[3], [-0.6, 0.8])
    np.testing.assert_array_equal(clip_rows(G, math.inf), G)


@settings(max_examples=60, deadline=None, database=None)
@given(
    G=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, max_side=20),
        elements=st.floats(-1e6, 1e6),
    ),
    C=st.floats(1e-3, 1e3),
)
def test_clip_rows_property(G, C):
    out = clip_rows(G, C)
    norms_in = np.linalg.norm(G, axis=1)
    norms_out = np.linalg.norm(out, axis=1)
    assert np.all(norms_out <= C * (1 + 1e-12))
    inside = norms_in <= C
    np.testing.assert_array_equal(out[inside], G[inside])
    # clipped rows are positive multiples of the originals
    scale = np.where(norms_in > 0, norms_out / np.where(norms_in > 0, norms_in, 1), 1)
    np.testing.assert_allclose(out, G * scale[:, None], rtol=1e-9, atol=1e-12)


def test_clip_vector():
    v, s = clip_vector(np.array([3.0, 4.0]), 2.5)
    np.testing.assert_allclose(v, [1.5, 2.0])
    assert s == pytest.approx(0.5)
    v, s = clip_vector(np.array([0.3, 0.4]), 2.5)
    assert s == 1.0 and np.array_equal(v, [0.3, 0.4])


@pytest.mark.parametrize("C", [0.0, -1.0, math.nan])
def test_clipping_rejects_bad_norms(C):
    with pytest.raises(ValueError):
        clip_rows(np.ones((2, 2)), C)
    with pytest.raises(ValueError):
        clip_vector(np.ones(2), C)


def test_clip_rows_needs_a_matrix():
    with pytest.raises(ValueError):
        clip_rows(np.ones(3), 1.0)


# ---------------------------------------------------------------- noise


def test_gaussian_noise_basics():
    rng = np.random.default_rng(1)
    assert gaussian_noise(rng, (3, 4), 2.0).shape == (3, 4)
    assert not gaussian_noise(rng, 5, 0.0).any()
    for bad in (-1.0, math.inf, math.nan):
        with pytest.raises(ValueError):
            gaussian_noise(rng, 3, bad)


def test_noise_added_by_dp_sgd_has_std_z_times_c():
    """Chi-square test on the noise the step *actually added* (recovered from params).

    With n = 40,001 draws the 99.9% interval for s/σ is about 1 ± 1.2%, so a 10% error
    in the noise scale (or using z instead of z·C) fails for sure.
    """
    z, C, lr, ebs = 1.3, 0.7, 0.5, 64.0
    params = np.linspace(-1, 1, 40_001)
    empty_X, empty_y = np.empty((0, params.size - 1)), np.empty(0)
    new, noise = dp_sgd_step(
        params,
        empty_X,
        empty_y,
        clip_norm=C,
        noise_multiplier=z,
        expected_batch_size=ebs,
        learning_rate=lr,
        l2=0.0,
        rng=np.random.default_rng(2024),
    )
    added = (params - new) * ebs / lr  # empty batch, no decay: the update is noise only
    np.testing.assert_allclose(added, noise, rtol=1e-9, atol=1e-9)
    n = added.size
    sigma = z * C
    stat = (n - 1) * added.var(ddof=1) / sigma**2
    lo, hi = stats.chi2.ppf([0.0005, 0.9995], n - 1)
    assert lo < stat < hi
    assert abs(added.mean()) < 4 * sigma / math.sqrt(n)
    # the same test rejects a 10% error in the scale
    for wrong in (0.9 * sigma, 1.1 * sigma):
        assert not lo < (n - 1) * added.var(ddof=1) / wrong**2 < hi


def test_noise_is_added_to_the_clipped_sum():
    X, y = toy_data(40)
    params = np.full(X.shape[1] + 1, 0.3)
    z, C, lr, ebs = 0.8, 0.5, 0.1, 50.0
    new, noise = dp_sgd_step(
        params,
        X,
        y,
        clip_norm=C,
        noise_multiplier=z,
        expected_batch_size=ebs,
        learning_rate=lr,
        l2=0.0,
        rng=np.random.default_rng(5),
    )
    clipped_sum = clip_rows(logistic.per_example_gradients(params, X, y), C).sum(axis=0)
    np.testing.assert_allclose(new, params - lr * (clipped_sum + noise) / ebs, rtol=1e-12)


# ---------------------------------------------------------------- DP-SGD step


def test_dp_sgd_step_without_privacy_is_plain_sgd():
    X, y = toy_data(300)
    params = np.random.default_rng(3).normal(size=X.shape[1] + 1)
    ebs, lr, l2 = 250.0, 0.2, 0.01  # expected batch differs from the realised 300 on purpose
    new, noise = dp_sgd_step(
        params,
        X,
        y,
        clip_norm=math.inf,
        noise_multiplier=0.0,
        expected_batch_size=ebs,
        learning_rate=lr,
        l2=l2,
        rng=np.random.default_rng(0),
    )
    assert not noise.any()
    # sum of per-example gradients / expected batch, plus L2 on the weights only
    g = logistic.gradient(params, X, y, 0.0) * len(y) / ebs
    g[:-1] += l2 * params[:-1]
    np.testing.assert_allclose(new, params - lr * g, rtol=1e-12, atol=1e-14)


def test_dp_sgd_step_clips_each_example():
    X, y = toy_data(30)
    X = X * 100  # every per-example gradient is far above C
    params = np.zeros(X.shape[1] + 1)
    C, lr, ebs = 0.1, 1.0, 30.0
    new, _ = dp_sgd_step(
        params,
        X,
        y,
        clip_norm=C,
        noise_multiplier=0.0,
        expected_batch_size=ebs,
        learning_rate=lr,
        l2=0.0,
        rng=np.random.default_rng(0),
    )
    assert np.linalg.norm(new - params) <= lr * len(y) * C / ebs * (1 + 1e-12)


def test_empty_batch_is_noise_and_decay_only():
    params = np.array([1.0, -2.0, 0.5])
    new, noise = dp_sgd_step(
        params,
        np.empty((0, 2)),
        np.empty(0),
        clip_norm=1.0,
        noise_multiplier=1.0,
        expected_batch_size=10.0,
        learning_rate=0.1,
        l2=0.5,
        rng=np.random.default_rng(9),
    )
    decay = np.array([0.5 * 1.0, 0.5 * -2.0, 0.0])  # the intercept is not decayed
    np.testing.assert_allclose(new, params - 0.1 * (noise / 10.0 + decay))


def test_dp_sgd_step_validates():
    X, y = toy_data(10)
    p = np.zeros(X.shape[1] + 1)
    kw = dict(
        clip_norm=1.0,
        noise_multiplier=1.0,
        expected_batch_size=5.0,
        learning_rate=0.1,
        l2=0.0,
        rng=np.random.default_rng(0),
    )
    for bad in (
        dict(clip_norm=math.inf),
        dict(noise_multiplier=-1.0),
        dict(expected_batch_size=0.0),
        dict(learning_rate=0.0),
        dict(l2=-1.0),
    ):
        with pytest.raises(ValueError):
            dp_sgd_step(p, X, y, **{**kw, **bad})
    with pytest.raises(ValueError, match="shape"):
        dp_sgd_step(p, X.reshape(len(y) * 2, -1), y, **kw)  # wrong width, not reinterpreted


# ---------------------------------------------------------------- DP-SGD epochs


@pytest.mark.parametrize(
    "epochs,q,steps", [(1, 0.01, 100), (3, 0.2, 15), (2, 0.3, 7), (1, 1.0, 1), (0.5, 0.1, 5)]
)
def test_steps_taken_is_epochs_over_q(epochs, q, steps):
    X, y = toy_data(200)
    _, taken = dp_sgd_epochs(
        np.zeros(X.shape[1] + 1),
        X,
        y,
        epochs=epochs,
        sample_rate=q,
        clip_norm=1.0,
        noise_multiplier=1.0,
        learning_rate=0.1,
        l2=0.0,
        rng=np.random.default_rng(0),
    )
    assert taken == steps == round(epochs / q)


def test_dp_sgd_epochs_deterministic_for_a_seed():
    X, y = toy_data(400)
    kw = dict(
        epochs=2, sample_rate=0.05, clip_norm=1.0, noise_multiplier=1.1, learning_rate=0.2, l2=1e-4
    )
    p0 = np.zeros(X.shape[1] + 1)
    a, _ = dp_sgd_epochs(p0, X, y, rng=np.random.default_rng(7), **kw)
    b, _ = dp_sgd_epochs(p0, X, y, rng=np.random.default_rng(7), **kw)
    c, _ = dp_sgd_epochs(p0, X, y, rng=np.random.default_rng(8), **kw)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not p0.any()  # input untouched


def test_full_batch_without_privacy_is_gradient_descent():
    X, y = toy_data(150)
    p = np.zeros(X.shape[1] + 1)
    new, steps = dp_sgd_epochs(
        p,
        X,
        y,
        epochs=5,
        sample_rate=1.0,
        clip_norm=math.inf,
        noise_multiplier=0.0,
        learning_rate=0.3,
        l2=0.01,
        rng=np.random.default_rng(0),
    )
    ref = p.copy()
    for _ in range(steps):
        ref = ref - 0.3 * logistic.gradient(ref, X, y, 0.01)
    np.testing.assert_allclose(new, ref, rtol=1e-10, atol=1e-12)


def test_batches_do_not_depend_on_noise_level():
    # Noise is drawn even at z = 0, so the generator ends in the same state: sweeps over z
    # compare models trained on the same batches.
    X, y = toy_data(100)
    states = []
    for z in (0.0, 2.0):
        rng = np.random.default_rng(11)
        dp_sgd_epochs(
            np.zeros(X.shape[1] + 1),
            X,
            y,
            epochs=1,
            sample_rate=0.1,
            clip_norm=1.0,
            noise_multiplier=z,
            learning_rate=0.1,
            l2=0.0,
            rng=rng,
        )
        states.append(rng.bit_generator.state)
    assert states[0] == states[1]


def test_dp_sgd_still_learns():
    X, y = toy_data(4000, seed=1)
    Xt, yt = toy_data(2000, seed=2)
    params, _ = dp_sgd_epochs(
        np.zeros(X.shape[1] + 1),
        X,
        y,
        epochs=5,
        sample_rate=0.05,
        clip_norm=1.0,
        noise_multiplier=1.0,
        learning_rate=0.5,
        l2=0.0,
        rng=np.random.default_rng(0),
    )
    assert roc_auc_score(yt, logistic.predict_proba(params, Xt)) > 0.8


def test_dp_sgd_epochs_validates():
    X, y = toy_data(10)
    kw = dict(
        epochs=1,
        sample_rate=0.5,
        clip_norm=1.0,
        noise_multiplier=1.0,
        learning_rate=0.1,
        l2=0.0,
        rng=np.random.default_rng(0),
    )
    p = np.zeros(X.shape[1] + 1)
    for bad in (dict(sample_rate=0.0), dict(sample_rate=1.5), dict(epochs=0)):
        with pytest.raises(ValueError):
            dp_sgd_epochs(p, X, y, **{**kw, **bad})
    with pytest.raises(ValueError):
        dp_sgd_epochs(p, X[:0], y[:0], **kw)
