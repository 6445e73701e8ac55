"""The bundled UCI default-credit data: intact, immutable, cheap to reload."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from fedrisk.data import (
    BUNDLED,
    UCI_FEATURES,
    UCI_VERTICAL_SPLIT,
    Standardizer,
    describe_bundled,
    load_bundled,
    load_uci_default_credit,
    train_test_split,
)
from fedrisk.errors import DataError


@pytest.fixture(scope="module")
def uci():
    return load_uci_default_credit()


def test_shape_labels_and_ids(uci):
    assert (uci.n_rows, uci.n_features) == (30_000, 23)
    assert uci.feature_names == UCI_FEATURES
    assert abs(uci.y.mean() - 0.2212) <= 0.0001
    assert np.unique(uci.ids).size == 30_000
    assert uci.ids[0] == "1" and uci.ids[-1] == "30000"
    assert uci.name == "uci-default-credit"


def test_values_are_the_raw_integers(uci):
    # First raw row: ID 1, LIMIT_BAL 20000, ..., PAY_AMT2 689, default 1.
    assert uci.X[0, :6].tolist() == [20000, 2, 2, 1, 24, 2]
    assert uci.X[0, UCI_FEATURES.index("PAY_AMT2")] == 689
    assert uci.y[0] == 1
    assert uci.X[6, 0] == 500_000  # written as 5e+05 in the raw file
    assert np.array_equal(uci.X, np.round(uci.X))


def test_arrays_are_read_only_and_cached(uci):
    for array in (uci.X, uci.y, uci.ids):
        assert not array.flags.writeable
    with pytest.raises(ValueError):
        uci.X[0, 0] = 1.0
    assert load_uci_default_credit() is uci
    assert BUNDLED["uci-default-credit"]() is uci and load_bundled("uci-default-credit") is uci


def test_vertical_split_matches_fate(uci):
    bank, provider = UCI_VERTICAL_SPLIT["bank"], UCI_VERTICAL_SPLIT["provider"]
    assert (len(bank), len(provider)) == (13, 10)
    assert set(bank) | set(provider) == set(UCI_FEATURES) and not set(bank) & set(provider)
    assert bank[0] == "PAY_6" and provider[-1] == "PAY_5"
    assert uci.select(bank).n_features == 13


def test_columns_and_labels_carry_signal(uci):
    train, test = train_test_split(uci, 0.25, seed=0)
    scaler = Standardizer.fit(train.X)
    model = LogisticRegression(max_iter=500).fit(scaler.transform(train.X), train.y)
    auc = roc_auc_score(test.y, model.predict_proba(scaler.transform(test.X))[:, 1])
    assert auc >= 0.70


def test_describe_and_unknown_name():
    text = describe_bundled()
    assert "uci-default-credit: 30,000 rows, 23 features, default rate 22.12%" in text
    assert "10.24432/C55S3H" in text and "CC BY 4.0" in text
    with pytest.raises(DataError, match="available: uci-default-credit"):
        load_bundled("mnist")
