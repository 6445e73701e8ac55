"""From a scenario's [data] and [federation] sections to per-bank training rows.

The held-out test rows are split off first (stratified), so every model — federated,
centralised and each bank alone — is scored on exactly the same customers.
Scaling (``data.scaling``) uses training-row statistics only. ``"zscore"``: in a real
federation one secure-sum round of feature counts, sums and sums of squares, which reveals
only those aggregates. ``"robust"`` (:mod:`fedrisk.data.scaling`): each bank histograms its
own training rows over a common grid, three secure-sum rounds of those counts agree the
0.5 % / 99.5 % quantiles, and a fourth sums the clipped columns' moments; the summed counts
reveal a coarse distribution of each column over all banks, never a bank's rows. The
banks' parts are drawn first (they depend on the labels only) so each bank's histogram
is computed on its own rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedrisk.data.bundled import BUNDLED
from fedrisk.data.columns import excluded_columns, warn_constant
from fedrisk.data.csv_source import load_csv
from fedrisk.data.dataset import Dataset
from fedrisk.data.partition import partition_rows
from fedrisk.data.scaling import RobustScaler
from fedrisk.data.split import Standardizer, split_indices
from fedrisk.data.synthetic import make_synthetic_credit
from fedrisk.errors import DataError, InputError
from fedrisk.scenario import Scenario


@dataclass(frozen=True)
class PreparedData:
    train: Dataset
    test: Dataset
    parts: tuple[np.ndarray, ...]  # row indices into train, one array per bank
    party_names: tuple[str, ...]
    # how raw features were scaled (None: as given; RobustScaler: clipped, then z-scored)
    scaler: Standardizer | RobustScaler | None = None


def load_source(s: Scenario) -> Dataset:
    """The pooled data set the scenario names (bundled, synthetic or the user's csv),
    without the ``data.exclude`` columns; constant columns are warned about."""
    ds = _load_source(s)
    dropped = excluded_columns(s, ds.feature_names)
    if dropped:
        keep = [j for j, c in enumerate(ds.feature_names) if c not in dropped]
        if not keep:
            raise InputError(
                f"{s.source_file}: data.exclude: leaves no feature column; keep at least one"
            )
        names = tuple(ds.feature_names[j] for j in keep)
        ds = Dataset(ds.X[:, keep], ds.y, ds.ids, names, ds.name)
    warn_constant(ds.X, ds.feature_names, ds.name)
    return ds


def _load_source(s: Scenario) -> Dataset:
    d = s.data
    if d.source == "csv":
        path = s.resolve_path(d.path)
        return load_csv(path, label=d.label, id_column=d.id, display_name=str(path))
    if d.source == "synthetic":
        return make_synthetic_credit(
            d.customers,
            seed=s.seed,
            features_per_source=d.features_per_source,
            base_rate=d.default_rate,
            tails=d.tails,
        ).dataset
    return BUNDLED[d.source]()


def prepare_horizontal(s: Scenario) -> PreparedData:
    pooled = load_source(s)
    train_idx, test_idx, parts = split_rows(s, pooled.y)
    train, test = pooled.subset(train_idx), pooled.subset(test_idx)
    scaler = fit_scaler(s.data.scaling, train.X, parts)
    if scaler is not None:
        train = _with_X(train, scaler.transform(train.X))
        test = _with_X(test, scaler.transform(test.X))
    return PreparedData(train, test, tuple(parts), s.bank_names(), scaler)


def split_rows(s: Scenario, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(training rows, held-out rows, each bank's positions among the training rows) of
    pooled labels ``y``: the stratified split and the partition every horizontal run
    uses, with one-line errors when the data is too small for them."""
    where, n = s.source_file, len(y)
    n_test = int(round(n * s.data.test_fraction))
    if n_test < 2 or n - n_test < 2:
        raise InputError(
            f"{where}: data.test_fraction: {s.data.test_fraction} leaves "
            f"{n_test} test rows of {n}; both halves need ≥ 2 rows"
        )
    train_idx, test_idx = split_indices(y, s.data.test_fraction, s.seed)
    f = s.federation
    if f.banks * f.min_rows > len(train_idx):
        raise InputError(
            f"{where}: federation.banks: {f.banks} banks × min_rows {f.min_rows} "
            f"needs {f.banks * f.min_rows} training rows, the data has "
            f"{len(train_idx)}; lower banks or min_rows"
        )
    try:
        parts = partition_rows(
            y[train_idx], f.banks, f.partition, seed=s.seed, alpha=f.alpha, min_rows=f.min_rows
        )
    except (DataError, ValueError) as exc:
        raise InputError(f"{where}: federation.partition: {exc}") from None
    return train_idx, test_idx, parts


def fit_scaler(
    scaling: str, X: np.ndarray, parts: list[np.ndarray] | tuple[np.ndarray, ...]
) -> Standardizer | RobustScaler | None:
    """The scaler ``data.scaling`` names, fitted on the training rows ``X``; ``parts``
    (row indices, one array per bank) say whose rows are whose: the robust scaler sees
    only each bank's own histograms, summed."""
    if scaling == "none":
        return None
    if scaling == "zscore":  # pooled moments = the banks' summed moments
        return Standardizer().fit(X)
    if scaling == "robust":
        return RobustScaler.fit([X[idx] for idx in parts])
    raise ValueError(f"unknown scaling {scaling!r}")


def _with_X(ds: Dataset, X: np.ndarray) -> Dataset:
    return Dataset(X=X, y=ds.y, ids=ds.ids, feature_names=ds.feature_names, name=ds.name)
