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
from fedrisk.data.characteristics import (
    Characteristics,
    PreparedCharacteristics,
    VerticalCharacteristics,
    drop_uninformative,
    load_csv_characteristics,
    load_vertical_characteristics,
    prepare_characteristics,
)
from fedrisk.data.csv_source import MISSING_TOKENS, load_csv, load_feature_csv
from fedrisk.data.dataset import Dataset
from fedrisk.data.partition import SCHEMES, partition_rows
from fedrisk.data.split import Standardizer, split_indices, train_test_split
from fedrisk.data.synthetic import SyntheticData, make_synthetic_credit

__all__ = [
    "BUNDLED",
    "MISSING_TOKENS",
    "SCHEMES",
    "UCI_FEATURES",
    "UCI_VERTICAL_SPLIT",
    "Characteristics",
    "Dataset",
    "PreparedCharacteristics",
    "Standardizer",
    "SyntheticData",
    "VerticalCharacteristics",
    "describe_bundled",
    "drop_uninformative",
    "load_bundled",
    "load_csv",
    "load_csv_characteristics",
    "load_feature_csv",
    "load_uci_default_credit",
    "load_vertical_characteristics",
    "make_synthetic_credit",
    "partition_rows",
    "prepare_characteristics",
    "split_indices",
    "train_test_split",
]
