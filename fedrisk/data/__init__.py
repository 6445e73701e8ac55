"""Data for fedrisk: the bundled UCI credit data, party CSV files, synthetic populations,
train/test splits and horizontal partitions. Every loader returns an immutable Dataset."""

from fedrisk.data.bundled import (
    BUNDLED,
    UCI_FEATURES,
    UCI_VERTICAL_SPLIT,
    describe_bundled,
    load_bundled,
    load_uci_default_credit,
)
from fedrisk.data.csv_source import load_csv, load_feature_csv
from fedrisk.data.dataset import Dataset
from fedrisk.data.partition import SCHEMES, partition_rows
from fedrisk.data.split import Standardizer, split_indices, train_test_split
from fedrisk.data.synthetic import SyntheticData, make_synthetic_credit

__all__ = [
    "BUNDLED",
    "SCHEMES",
    "UCI_FEATURES",
    "UCI_VERTICAL_SPLIT",
    "Dataset",
    "Standardizer",
    "SyntheticData",
    "describe_bundled",
    "load_bundled",
    "load_csv",
    "load_feature_csv",
    "load_uci_default_credit",
    "make_synthetic_credit",
    "partition_rows",
    "split_indices",
    "train_test_split",
]
