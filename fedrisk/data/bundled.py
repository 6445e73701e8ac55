"""Data sets shipped inside the package (see bundled/ATTRIBUTION.md), and a registry of them."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from types import MappingProxyType

from fedrisk.data.csv_source import load_csv
from fedrisk.data.dataset import Dataset
from fedrisk.errors import DataError

UCI_NAME = "uci-default-credit"
UCI_ATTRIBUTION = (
    'UCI Machine Learning Repository, "default of credit card clients", I-Cheng Yeh (2009), '
    "DOI 10.24432/C55S3H, CC BY 4.0 (obtained through FATE examples/data, Apache-2.0)"
)
UCI_FEATURES: tuple[str, ...] = (
    ("LIMIT_BAL", "SEX", "EDUCATION", "MARRIAGE", "AGE", "PAY_0")
    + tuple(f"PAY_{i}" for i in range(2, 7))
    + tuple(f"BILL_AMT{i}" for i in range(1, 7))
    + tuple(f"PAY_AMT{i}" for i in range(1, 7))
)
# FATE's vertical split: the guest ("bank", holds the label) has x0..x12, the host
# ("provider") has x0..x9; same column order as FATE's hetero files.
UCI_VERTICAL_SPLIT: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {
        "bank": ("PAY_6",)
        + tuple(f"BILL_AMT{i}" for i in range(1, 7))
        + tuple(f"PAY_AMT{i}" for i in range(1, 7)),
        "provider": ("LIMIT_BAL", "SEX", "EDUCATION", "MARRIAGE", "AGE", "PAY_0")
        + tuple(f"PAY_{i}" for i in range(2, 6)),
    }
)


@functools.cache
def load_uci_default_credit() -> Dataset:
    """UCI "default of credit card clients": 30,000 rows, 23 raw (unscaled) integer features.

    Label ``default`` (1 = defaulted next month, 22.12 %); ids are the UCI ``ID`` as strings.
    Parsed once per process; every call returns the same immutable Dataset (read-only arrays).
    """
    resource = resources.files("fedrisk.data") / "bundled" / "uci_default_credit.csv.gz"
    with resources.as_file(resource) as path:  # a real file even if installed as a zip
        ds = load_csv(Path(path), label="default", id_column="id", display_name=UCI_NAME)
    if ds.feature_names != UCI_FEATURES:  # guards against a rebuilt bundle with other columns
        raise DataError(
            f"{UCI_NAME}: bundled columns {ds.feature_names} differ from {UCI_FEATURES}"
        )
    return ds


BUNDLED = MappingProxyType({UCI_NAME: load_uci_default_credit})
_ATTRIBUTION = {UCI_NAME: UCI_ATTRIBUTION}


def load_bundled(name: str) -> Dataset:
    """The bundled data set called ``name`` (a key of ``BUNDLED``)."""
    try:
        loader = BUNDLED[name]
    except KeyError:
        raise DataError(
            f"unknown bundled data set {name!r}; available: {', '.join(sorted(BUNDLED))}"
        ) from None
    return loader()


def describe_bundled() -> str:
    """A few lines per bundled data set, for the ``fedrisk data`` command."""
    blocks = []
    for name, loader in BUNDLED.items():
        ds = loader()
        blocks.append(
            f"{name}: {ds.n_rows:,} rows, {ds.n_features} features, "
            f"default rate {ds.y.mean():.2%}\n"
            f"  source: {_ATTRIBUTION[name]}"
        )
    return "\n".join(blocks)
