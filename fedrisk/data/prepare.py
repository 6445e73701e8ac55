"""From a scenario's [data] and [federation] sections to per-bank training rows.

The held-out test rows are split off first (stratified), so every model — federated,
centralised and each bank alone — is scored on exactly the same customers.
Standardisation uses training-row statistics only; in a real federation that is one
secure-sum round of feature means and variances, which reveals only those aggregates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedrisk.data.bundled import BUNDLED
from fedrisk.data.csv_source import load_csv
from fedrisk.data.dataset import Dataset
from fedrisk.data.partition import partition_rows
from fedrisk.data.split import Standardizer, train_test_split
from fedrisk.data.synthetic import make_synthetic_credit
from fedrisk.errors import DataError, InputError
from fedrisk.scenario import Scenario


@dataclass(frozen=True)
class PreparedData:
    train: Dataset
    test: Dataset
    parts: tuple[np.ndarray, ...]  # row indices into train, one array per bank
    party_names: tuple[str, ...]
    scaler: Standardizer | None = None  # how raw features were z-scored (None: as given)


def load_source(s: Scenario) -> Dataset:
    """The pooled data set the scenario names (bundled, synthetic or the user's csv)."""
    d = s.data
    if d.source == "csv":
        path = s.resolve_path(d.path)
        if not path.is_file():
            raise InputError(f"{s.source_file}: data.path: {path}: no such file")
        return load_csv(path, label=d.label, id_column=d.id, display_name=str(path))
    if d.source == "synthetic":
        return make_synthetic_credit(
            d.customers, seed=s.seed, features_per_source=d.features_per_source
        ).dataset
    return BUNDLED[d.source]()


def prepare_horizontal(s: Scenario) -> PreparedData:
    pooled = load_source(s)
    where = s.source_file
    n_test = int(round(pooled.n_rows * s.data.test_fraction))
    if n_test < 2 or pooled.n_rows - n_test < 2:
        raise InputError(
            f"{where}: data.test_fraction: {s.data.test_fraction} leaves "
            f"{n_test} test rows of {pooled.n_rows}; both halves need ≥ 2 rows"
        )
    train, test = train_test_split(pooled, s.data.test_fraction, seed=s.seed)
    scaler = None
    if s.data.standardize:
        scaler = Standardizer().fit(train.X)
        train = _with_X(train, scaler.transform(train.X))
        test = _with_X(test, scaler.transform(test.X))
    f = s.federation
    if f.banks * f.min_rows > train.n_rows:
        raise InputError(
            f"{where}: federation.banks: {f.banks} banks × min_rows {f.min_rows} "
            f"needs {f.banks * f.min_rows} training rows, the data has "
            f"{train.n_rows}; lower banks or min_rows"
        )
    try:
        parts = partition_rows(
            train.y, f.banks, f.partition, seed=s.seed, alpha=f.alpha, min_rows=f.min_rows
        )
    except (DataError, ValueError) as exc:
        raise InputError(f"{where}: federation.partition: {exc}") from None
    return PreparedData(train, test, tuple(parts), s.bank_names(), scaler)


def _with_X(ds: Dataset, X: np.ndarray) -> Dataset:
    return Dataset(X=X, y=ds.y, ids=ds.ids, feature_names=ds.feature_names, name=ds.name)
