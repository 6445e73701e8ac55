"""Synthetic credit population: deterministic, calibrated, and the planted signal shows."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from fedrisk.data import Standardizer, make_synthetic_credit, train_test_split


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = (make_synthetic_credit(500, seed) for seed in (3, 3, 4))
    for field in ("X", "y", "ids"):
        assert np.array_equal(getattr(a.dataset, field), getattr(b.dataset, field))
    assert np.array_equal(a.true_coef, b.true_coef) and a.intercept == b.intercept
    assert not np.array_equal(a.dataset.X, c.dataset.X)


def test_layout_names_and_ids():
    syn = make_synthetic_credit(50, 0, sources=("bank", "telco"), features_per_source=3)
    ds = syn.dataset
    assert syn.columns_by_source == {
        "bank": ("bank_0", "bank_1", "bank_2"),
        "telco": ("telco_0", "telco_1", "telco_2"),
    }
    assert ds.feature_names == ("bank_0", "bank_1", "bank_2", "telco_0", "telco_1", "telco_2")
    assert ds.ids[0] == "C000001" and ds.ids[-1] == "C000050"
    assert syn.true_coef.shape == (6,) and not syn.true_coef.flags.writeable
    # Bank shapes: utilisation in [0, 1], months in arrears are whole numbers 0..12.
    assert ds.X[:, 0].min() >= 0 and ds.X[:, 0].max() <= 1
    assert set(np.unique(ds.X[:, 1])) <= set(range(13))


@pytest.mark.parametrize("rate", [0.05, 0.2, 0.5])
def test_default_rate_near_base_rate(rate):
    y = make_synthetic_credit(20_000, 1, base_rate=rate).dataset.y
    assert abs(y.mean() - rate) < 0.015


def auc_on(ds, columns, seed=0):
    train, test = train_test_split(ds.select(columns), 0.3, seed)
    scaler = Standardizer.fit(train.X)
    model = LogisticRegression(max_iter=500).fit(scaler.transform(train.X), train.y)
    return roc_auc_score(test.y, model.predict_proba(scaler.transform(test.X))[:, 1])


def test_all_sources_beat_bank_alone():
    syn = make_synthetic_credit(8_000, 7)
    bank = auc_on(syn.dataset, syn.columns_by_source["bank"])
    joint = auc_on(syn.dataset, syn.dataset.feature_names)
    assert 0.6 < bank < joint - 0.02
    assert joint < 0.9  # credit-like, not trivially separable


def test_zero_signal_source_is_noise():
    syn = make_synthetic_credit(500, 0, signal={"tax": 0.0})
    assert np.all(
        syn.true_coef[[syn.dataset.feature_names.index(c) for c in syn.columns_by_source["tax"]]]
        == 0
    )


def test_true_coef_is_recoverable():
    syn = make_synthetic_credit(40_000, 2, sources=("bank",), features_per_source=2)
    scaler = Standardizer.fit(syn.dataset.X)
    model = LogisticRegression(C=1e4, max_iter=1000).fit(
        scaler.transform(syn.dataset.X), syn.dataset.y
    )
    assert np.allclose(model.coef_[0] / scaler.scale, syn.true_coef, rtol=0.2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_customers": 1}, "n_customers"),
        ({"seed": -1}, "seed"),
        ({"sources": ()}, "at least one"),
        ({"sources": "bank"}, "list of names"),
        ({"sources": ("bank", "bank")}, "unique"),
        ({"sources": ("bank", "tele com")}, "letters and digits"),
        ({"features_per_source": 0}, "features_per_source"),
        ({"base_rate": 1.0}, "base_rate"),
        ({"signal": {"crypto": 1.0}}, "unknown source 'crypto'"),
        ({"signal": {"bank": -1}}, "signal"),
    ],
)
def test_argument_validation(kwargs, match):
    args = {"n_customers": 100, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        make_synthetic_credit(**args)


# --- heavy tails and the default rate ---------------------------------------------------


@pytest.mark.parametrize("rate", [0.05, 0.3])
def test_heavy_tails_keep_the_requested_default_rate(rate):
    y = make_synthetic_credit(20_000, 2, base_rate=rate, tails="heavy").dataset.y
    assert abs(y.mean() - rate) < 0.01


def test_heavy_tails_are_heavy_and_the_truth_is_linear_in_their_log():
    from scipy.stats import kurtosis

    light = make_synthetic_credit(20_000, 5)
    heavy = make_synthetic_credit(20_000, 5, tails="heavy")
    logs = [j for j, t in enumerate(heavy.true_transform) if t == "log"]
    assert logs and set(light.true_transform) == {"identity"}
    X = heavy.dataset.X
    # the money columns: huge kurtosis and a few customers far beyond the median
    assert np.all(kurtosis(X[:, logs], axis=0) > 50)
    assert np.all(X[:, logs].max(axis=0) > 100 * np.median(X[:, logs], axis=0))
    assert np.all(kurtosis(light.dataset.X[:, logs], axis=0) < 30)
    # their logs are tame: the truth is linear in them, and a logistic model on the
    # transformed columns recovers it
    T = heavy.true_features(X)
    assert np.all(np.abs(kurtosis(T[:, logs], axis=0)) < 5)
    np.testing.assert_array_equal(np.delete(T, logs, axis=1), np.delete(X, logs, axis=1))
    scaler = Standardizer.fit(T)
    model = LogisticRegression(C=1e6, max_iter=2000).fit(scaler.transform(T), heavy.dataset.y)
    assert np.allclose(model.coef_[0] / scaler.scale, heavy.true_coef, rtol=0.25, atol=0.02)


def test_light_tails_are_unchanged_by_the_option():
    a, b = make_synthetic_credit(300, 9), make_synthetic_credit(300, 9, tails="light")
    np.testing.assert_array_equal(a.dataset.X, b.dataset.X)
    np.testing.assert_array_equal(a.true_features(a.dataset.X), a.dataset.X)
    with pytest.raises(ValueError, match="tails"):
        make_synthetic_credit(300, 9, tails="fat")
