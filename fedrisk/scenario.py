"""Scenario files: TOML -> validated, frozen dataclasses.

Every key has a default documented in the field's ``help``; unknown keys, wrong types
and out-of-range values raise :class:`ScenarioError` with one line that names the file,
the key and what is allowed. ``--set a.b=value`` overrides are applied to the parsed
TOML before validation, so they get exactly the same checks.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

# declarations only (no Flower): the allowed modes and what each needs
from fedrisk.errors import InputError, ScenarioError
from fedrisk.files import input_file, read_input_text
from fedrisk.horizontal.aggregation import MODES as AGGREGATION_MODES

_ENGINES = ("inprocess", "simulation", "deployment")
_KINDS = ("horizontal", "vertical")
_OBFUSCATIONS = ("full", "djn")
_KEY_MODES = ("shared", "threshold")
_PROTOCOLS = ("paillier", "secret_sharing")
_TRIPLES = ("dealer", "paillier")
_REVEALS = ("own", "none")
_SOURCES = ("uci-default-credit", "synthetic", "csv")
_PARTITIONS = ("iid", "dirichlet", "quantity")
_AGGREGATIONS = tuple(AGGREGATION_MODES)
_DP_MODES = ("none", "sample", "client", "label")
_ACCOUNTANTS = ("rdp", "pld")
_SCALINGS = ("robust", "zscore", "none")
_TAILS = ("light", "heavy")
_SERVER_OPTIMIZERS = ("fedavg", "fedadam", "fedyogi", "fedadagrad")
_CALIBRATIONS = ("intercept", "platt", "none")
_MODEL_KINDS = ("logistic", "secureboost", "scorecard")
_BINNING_METHODS = ("quantile", "equal_width", "optimal")
_MONOTONIC = ("auto", "ascending", "descending", "none")
# horizontal: rounds after training that refit the intercept by secure sums (a public
# constant of the protocol; see fedrisk.horizontal.calibration)
CALIBRATION_ROUNDS = 3


def _spec(
    default: Any,
    help: str,
    *,
    choices: tuple = (),
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    optional: bool = False,
) -> Any:
    """A dataclass field carrying its validation rule in metadata."""
    meta = dict(
        help=help,
        choices=choices,
        lo=lo,
        hi=hi,
        lo_open=lo_open,
        hi_open=hi_open,
        optional=optional,
    )
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class DataConfig:
    source: str = _spec(
        "uci-default-credit", "bundled data set, 'synthetic' or 'csv'", choices=_SOURCES
    )
    path: str | None = _spec(None, "csv file, relative to the scenario file", optional=True)
    label: str = _spec("y", "label column of the csv (0/1, 1 = default)")
    id: str = _spec("id", "customer id column of the csv")
    exclude: tuple[str, ...] = _spec(
        (),
        "feature columns to leave out: names, globs (BILL_*) or ranges (x0..x12)",
    )
    test_fraction: float = _spec(
        0.2, "share of rows held out for testing (stratified)", lo=0.0, hi=0.9, lo_open=True
    )
    standardize: bool = _spec(
        True, "superseded by scaling: false means scaling = 'none' (older scenario files)"
    )
    scaling: str = _spec(
        "robust",
        "feature scaling from the banks' training rows: robust (clip at agreed quantiles, "
        "then z-score), zscore, or none",
        choices=_SCALINGS,
    )
    default_rate: float = _spec(
        0.2, "synthetic: expected share of defaulters", lo=0.0, hi=1.0, lo_open=True, hi_open=True
    )
    tails: str = _spec(
        "light", "synthetic: heavy = heavy-tailed ratio and income columns", choices=_TAILS
    )
    customers: int = _spec(20000, "synthetic: number of customers", lo=100, hi=10_000_000)
    overlap: float = _spec(
        1.0,
        "synthetic vertical: share of the bank's customers each data party also holds",
        lo=0.0,
        lo_open=True,
        hi=1.0,
    )
    features_per_source: int = _spec(4, "synthetic: features per data source", lo=1, hi=1000)


@dataclass(frozen=True)
class PartyConfig:
    """One party of a vertical federation: which columns it holds (and the label?)."""

    name: str = _spec("", "party name (bank, telecom, ...)")
    columns: tuple[str, ...] | None = _spec(
        None,
        "columns it holds: names, globs (BILL_*) or ranges (x0..x12); default: all in its file",
        optional=True,
    )
    label: bool = _spec(False, "true for the one party holding the label (the bank)")
    path: str | None = _spec(
        None,
        "csv of this party (id, its features, the label if it "
        "holds it), relative to the scenario file",
        optional=True,
    )
    signal: float = _spec(
        1.0, "synthetic data: strength of this party's features", lo=0.0, hi=100.0
    )


@dataclass(frozen=True)
class FederationConfig:
    kind: str = _spec(
        "horizontal",
        "horizontal (banks share features) or vertical (parties share customers)",
        choices=_KINDS,
    )
    engine: str = _spec("inprocess", "which Flower engine drives the apps", choices=_ENGINES)
    banks: int = _spec(5, "number of banks (Flower SuperNodes)", lo=1, hi=100_000)
    partition: str = _spec(
        "dirichlet", "how training rows are split across banks", choices=_PARTITIONS
    )
    alpha: float = _spec(
        0.5, "Dirichlet concentration: small = skewed", lo=0.0, lo_open=True, hi=1e6
    )
    min_rows: int = _spec(
        20, "smallest number of training rows a bank may get", lo=1, hi=10_000_000
    )
    sample_rate: float = _spec(
        1.0,
        "dp='client': probability each bank takes part in a round (Poisson sampling)",
        lo=0.0,
        lo_open=True,
        hi=1.0,
    )
    min_parties: int = _spec(
        2,
        "fewest parties that must answer a round; fewer stops the run (capped at federation.banks)",
        lo=1,
        hi=100_000,
    )
    dropout: float = _spec(
        0.0,
        "fault injection: probability a party drops out of a round",
        lo=0.0,
        hi=1.0,
        hi_open=True,
    )
    stragglers: float = _spec(
        0.0, "fault injection: probability a party is slow in a round", lo=0.0, hi=1.0
    )
    straggler_delay: float = _spec(1.0, "seconds a straggler is held up", lo=0.0, hi=3600.0)
    round_timeout: float = _spec(
        600.0,
        "seconds the aggregator waits for replies; later ones miss the round",
        lo=0.0,
        lo_open=True,
        hi=86_400.0,
    )
    parties: tuple[PartyConfig, ...] = field(
        default=(),
        metadata=dict(
            help="vertical: [[federation.parties]] tables",
            choices=(),
            lo=None,
            hi=None,
            optional=True,
            table_array=True,
        ),
    )


@dataclass(frozen=True)
class ModelConfig:
    kind: str = _spec(
        "logistic",
        "logistic regression, or (vertical) 'secureboost': gradient-boosted trees grown "
        "jointly from Paillier-encrypted gradients ([secureboost] keys), or 'scorecard': "
        "every characteristic binned jointly ([binning]), WOE-coded and selected by IV "
        "([selection]), logistic regression on the WOE columns and a points table per bin",
        choices=_MODEL_KINDS,
    )
    learning_rate: float = _spec(
        0.1, "SGD step size (secureboost: each tree's shrinkage)", lo=0.0, lo_open=True, hi=100.0
    )
    local_epochs: int = _spec(1, "passes over local data per round", lo=1, hi=1000)
    batch_size: int = _spec(64, "mini-batch size", lo=1, hi=10_000_000)
    l2: float = _spec(1e-4, "L2 penalty on the weights", lo=0.0, hi=100.0)
    proximal_mu: float = _spec(0.0, "FedProx proximal term (0 = FedAvg)", lo=0.0, hi=100.0)
    server_optimizer: str = _spec(
        "fedavg",
        "how the aggregate moves the global model (Flower's FedAvg, FedAdam, FedYogi, FedAdagrad)",
        choices=_SERVER_OPTIMIZERS,
    )
    server_learning_rate: float = _spec(
        1.0, "server step size (eta) applied to the aggregate", lo=0.0, lo_open=True, hi=100.0
    )
    server_beta_1: float = _spec(0.9, "server optimiser momentum", lo=0.0, hi=1.0, hi_open=True)
    server_beta_2: float = _spec(
        0.99, "server optimiser second-moment decay", lo=0.0, hi=1.0, hi_open=True
    )
    server_tau: float = _spec(
        1e-3, "server optimiser adaptivity (added to the root of v)", lo=0.0, lo_open=True, hi=10.0
    )
    calibration: str = _spec(
        "intercept",
        "after training, refit the intercept so the mean predicted PD matches the training "
        "default rate (a secure sum; vertical: at the bank), vertical only 'platt' (the bank "
        "refits a scale and the intercept on the joint scores; the vertical default), or none",
        choices=_CALIBRATIONS,
    )
    early_stopping: bool = _spec(
        False, "stop when validation loss stops improving; rounds becomes a maximum"
    )
    patience: int = _spec(5, "early stopping: rounds without improvement", lo=1, hi=100_000)
    validation_fraction: float = _spec(
        0.1,
        "early stopping: share of each bank's own rows held out for validation",
        lo=0.0,
        lo_open=True,
        hi=0.5,
    )


@dataclass(frozen=True)
class SecureBoostConfig:
    """Vertical gradient-boosted trees (model.kind = 'secureboost')."""

    trees: int = _spec(30, "boosting rounds: trees grown one after another", lo=1, hi=10_000)
    max_depth: int = _spec(3, "levels of splits per tree (3: up to 8 leaves)", lo=1, hi=16)
    max_bins: int = _spec(
        32, "quantile bins per column; each party bins its own columns", lo=2, hi=256
    )
    min_child_weight: float = _spec(
        1.0, "smallest hessian sum (Σ p(1−p)) a child of a split may have", lo=0.0, hi=1e6
    )
    reg_lambda: float = _spec(1.0, "L2 penalty on the leaf weights", lo=0.0, hi=1e6)
    subsample: float = _spec(
        1.0,
        "share of the training customers each tree is grown on (drawn by the bank)",
        lo=0.0,
        lo_open=True,
        hi=1.0,
    )
    early_stopping_rounds: int = _spec(
        0,
        "stop when the validation log loss has not improved for this many trees and keep "
        "the best number (0: grow every tree)",
        lo=0,
        hi=10_000,
    )
    validation_fraction: float = _spec(
        0.1,
        "early stopping: share of the training customers the bank holds out to validate",
        lo=0.0,
        lo_open=True,
        hi=0.5,
    )
    bank_first_tree: bool = _spec(
        False,
        "grow the first tree from the bank's own columns only: the data parties see no "
        "node membership of the tree whose gradients are the labels in disguise",
    )
    encrypted: bool = _spec(
        True,
        "false runs the very same protocol without encryption (no protection: to "
        "measure what Paillier costs)",
    )


@dataclass(frozen=True)
class BinningConfig:
    """How a scorecard bins its characteristics (model.kind = 'scorecard')."""

    method: str = _spec(
        "optimal",
        "'quantile' (equal counts), 'equal_width', or 'optimal': fine quantile bins merged "
        "to a monotone default rate with minimum shares per bin",
        choices=_BINNING_METHODS,
    )
    max_bins: int = _spec(
        8, "regular bins per characteristic (a missing bin is extra)", lo=2, hi=64
    )
    min_bin_share: float = _spec(
        0.05,
        "smallest share of customers in a bin, every method (smaller bins are merged; "
        "missing values too few for a bin join the largest; text columns: rarer "
        "categories share one bin); 0 allows bins of one customer, whose label a vertical "
        "data party could then read off its WOE",
        lo=0.0,
        hi=0.5,
    )
    min_bad_share: float = _spec(
        0.05, "optimal: smallest share of all defaulters in a bin", lo=0.0, hi=0.5
    )
    monotonic: str = _spec(
        "auto",
        "optimal: default rate rising ('ascending') or falling with the value, 'auto' "
        "(whichever keeps more IV) or 'none'",
        choices=_MONOTONIC,
    )
    prebins: int = _spec(50, "optimal: fine quantile bins merged from", lo=4, hi=256)


@dataclass(frozen=True)
class SelectionConfig:
    """Which binned characteristics a scorecard keeps (model.kind = 'scorecard')."""

    min_iv: float = _spec(
        0.02, "drop characteristics with less information value (0.02: 'not useful')", lo=0.0
    )
    max_features: int = _spec(
        20, "keep at most this many characteristics, highest IV first", lo=1, hi=10_000
    )
    max_psi: float = _spec(
        0.25,
        "drop characteristics whose bin shares shift more than this between the training "
        "and held-out customers (population stability index; 0.25: a significant shift)",
        lo=0.0,
        lo_open=True,
    )


@dataclass(frozen=True)
class PrivacyConfig:
    aggregation: str = _spec("plain", "how updates are aggregated", choices=_AGGREGATIONS)
    key_bits: int = _spec(
        2048, "Paillier modulus size (1024 only for experiments)", choices=(1024, 2048, 3072)
    )
    update_range: float = _spec(
        8.0,
        "paillier/secagg: deltas are clipped to ± this before fixed-point encoding",
        lo=0.0,
        lo_open=True,
        hi=1e6,
    )
    dp: str = _spec(
        "none",
        "differential privacy: 'sample' (DP-SGD in each bank, protects "
        "customers), 'client' (DP-FedAvg, protects banks) or, vertical, 'label' "
        "(noisy gradients protect the bank's labels)",
        choices=_DP_MODES,
    )
    accountant: str = _spec("rdp", "privacy accountant (dp-accounting)", choices=_ACCOUNTANTS)
    max_epsilon: float | None = _spec(
        None,
        "refuse a run whose accounted epsilon would exceed this budget",
        lo=0.0,
        lo_open=True,
        optional=True,
    )
    target_epsilon: float | None = _spec(
        None, "DP budget to calibrate noise to", lo=0.0, lo_open=True, optional=True
    )
    noise_multiplier: float | None = _spec(
        None, "DP noise multiplier (instead of a target)", lo=0.0, optional=True
    )
    delta: float = _spec(1e-5, "DP delta", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    obfuscation: str = _spec(
        "full",
        "Paillier obfuscation: 'full' (r^n, standard) or 'djn' "
        "(short-exponent, Damgård-Jurik-Nielsen: ~8x faster, extra "
        "assumption)",
        choices=_OBFUSCATIONS,
    )
    key: str = _spec(
        "shared",
        "paillier: who can decrypt: 'shared' (every bank holds the private key) or "
        "'threshold' (each bank holds a share; a majority of the banks must cooperate "
        "to decrypt an aggregate, so fewer cannot read an update)",
        choices=_KEY_MODES,
    )
    secagg_threshold: float | None = _spec(
        None,
        "secagg: share of each bank's SecAgg+ group "
        "needed to unmask (default 2/3); lower survives "
        "more dropouts, higher resists more colluding "
        "banks",
        lo=0.0,
        lo_open=True,
        hi=1.0,
        optional=True,
    )
    label_leakage_attack: bool = _spec(
        False, "vertical: run the gradient-based label inference a data party could mount"
    )
    protocol: str = _spec(
        "paillier",
        "vertical logistic: 'paillier' (Hardy et al.: the bank sees each party's partial "
        "scores) or 'secret_sharing' (additive shares over Z_2^64: the bank sees no "
        "partial score, weights stay shared while training)",
        choices=_PROTOCOLS,
    )
    triples: str | None = _spec(
        None,
        "secret_sharing: where the products' correlated randomness comes from: 'dealer' "
        "(a helper party with no data that must not collude with anyone; the default) "
        "or 'paillier' (no helper: the bank and one data party, under Paillier)",
        choices=_TRIPLES,
        optional=True,
    )
    frac_bits: int = _spec(
        13,  # SecureML's choice; resolution 1.2e-4
        "secret_sharing: fractional bits of weights, scores and residuals in the ring "
        "(features keep 8); products must fit 64 bits",
        lo=4,
        hi=40,
    )
    reveal: str = _spec(
        "own",
        "secret_sharing: after training each party receives its own weights ('own') or "
        "the model stays shared ('none')",
        choices=_REVEALS,
    )
    clip_norm: float | None = _spec(
        None,
        "DP clipping norm (default: 4.0 per customer "
        "gradient with dp='sample', 0.1 per bank update with "
        "dp='client')",
        lo=0.0,
        lo_open=True,
        hi=1e6,
        optional=True,
    )


@dataclass(frozen=True)
class Scenario:
    name: str = _spec("scenario", "name used for the run folder")
    seed: int = _spec(42, "seed for splits, partitions, training and noise", lo=0, hi=2**63 - 1)
    rounds: int = _spec(20, "federated rounds", lo=1, hi=100_000)
    description: str = _spec("", "free text shown in reports")
    data: DataConfig = field(default_factory=DataConfig)
    federation: FederationConfig = field(default_factory=FederationConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    secureboost: SecureBoostConfig = field(default_factory=SecureBoostConfig)
    binning: BinningConfig = field(default_factory=BinningConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    # Where the file came from (for error messages and relative csv paths); not a TOML key.
    source_file: str = field(default="<scenario>", compare=False, metadata=dict(internal=True))

    def resolve_path(self, path: str) -> Path:
        """A data path as written in the scenario, made relative to the scenario file."""
        p = Path(path).expanduser()
        if p.is_absolute() or self.source_file.startswith("<"):
            return p
        # lexically, so "../data/x.csv" names the same file before the folder holding
        # the scenario exists (a run folder's scenario.toml is written after loading)
        return Path(os.path.normpath(Path(self.source_file).parent / p))

    @property
    def calibration_rounds(self) -> int:
        """Calibration rounds after horizontal training: none when model.calibration is
        'none', under client-level DP (a bank's statistics have no bounded sensitivity)
        or in vertical runs (the label holder calibrates alone)."""
        m, dp = self.model, self.privacy.dp
        if self.federation.kind != "horizontal" or m.calibration == "none" or dp == "client":
            return 0
        return CALIBRATION_ROUNDS

    @property
    def max_rounds(self) -> int:
        """Flower rounds at most: training rounds, then the calibration rounds
        (secureboost: one round per tree)."""
        if self.model.kind == "secureboost":
            return self.secureboost.trees
        return self.rounds + self.calibration_rounds

    @property
    def quorum(self) -> int:
        """federation.min_parties, capped at the number of banks."""
        return min(self.federation.min_parties, self.federation.banks)

    def bank_names(self) -> tuple[str, ...]:
        """bank_1 .. bank_N (zero-padded so they sort in order)."""
        width = len(str(self.federation.banks))
        return tuple(f"bank_{i + 1:0{width}d}" for i in range(self.federation.banks))

    def to_dict(self) -> dict[str, Any]:
        """The scenario as TOML-ready nested dicts (None values left out)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.metadata.get("internal"):
                continue
            value = getattr(self, f.name)
            if _is_section(f):
                out[f.name] = {
                    k.name: _plain(getattr(value, k.name))
                    for k in fields(value)
                    if getattr(value, k.name) not in (None, ())
                }
            else:
                out[f.name] = value
        return out


def _plain(value: Any) -> Any:
    """Party tables as dicts (None left out), tuples as lists: TOML-ready values."""
    if isinstance(value, tuple) and value and isinstance(value[0], PartyConfig):
        return [
            {
                k.name: _plain(getattr(p, k.name))
                for k in fields(p)
                if getattr(p, k.name) is not None
            }
            for p in value
        ]
    return list(value) if isinstance(value, tuple) else value


_SECTIONS = {
    "data": DataConfig,
    "federation": FederationConfig,
    "model": ModelConfig,
    "secureboost": SecureBoostConfig,
    "binning": BinningConfig,
    "selection": SelectionConfig,
    "privacy": PrivacyConfig,
}


def _is_section(f) -> bool:
    return f.name in _SECTIONS


def load_scenario(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Scenario:
    """Read, override and validate a scenario file; every problem is reported at once
    (one line each), each attributed to the file or to the ``--set`` that caused it."""
    path = Path(path)
    where = str(path)
    text = read_input_text(path, where, kind="scenario file", error=ScenarioError)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{where}: not valid TOML: {exc}") from None
    overridden: dict[str, str] = {}
    for item in overrides:
        keys = apply_override(raw, item, where)
        overridden[".".join(keys)] = item
    problems = _Problems(where, overridden)
    scenario = _validate(raw, problems)
    if scenario is not None:
        _check_files(scenario, problems)
    problems.raise_if_any()
    assert scenario is not None
    return scenario


def parse_override(item: str) -> tuple[list[str], Any]:
    """``a.b=value`` -> (["a", "b"], value); the value is read as TOML, else as a string."""
    if "=" not in item:
        raise ScenarioError(f"--set {item}: expected key.path=value")
    key, _, text = item.partition("=")
    keys = [k.strip() for k in key.strip().split(".")]
    if not all(keys):
        raise ScenarioError(f"--set {item}: expected key.path=value")
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()  # bare words such as paillier or iid
    return keys, value


def apply_override(raw: dict[str, Any], item: str, where: str) -> list[str]:
    """Apply one --set override to the parsed TOML (validated later with the rest);
    returns the key path it set."""
    keys, value = parse_override(item)
    node = raw
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ScenarioError(f"--set {item}: '{k}' is not a table in {where}")
    node[keys[-1]] = value
    return keys


def scenario_from_dict(raw: Mapping[str, Any], where: str = "<scenario>") -> Scenario:
    """Validate parsed TOML (every problem at once, one line each)."""
    problems = _Problems(where, {})
    scenario = _validate(raw, problems)
    problems.raise_if_any()
    assert scenario is not None
    return scenario


class _Problems:
    """Problems found in a scenario, each one line naming where it came from (the file,
    or the ``--set`` override that set the key) and the key."""

    def __init__(self, file: str, overridden: Mapping[str, str]) -> None:
        self.file, self.overridden = file, overridden
        self.lines: list[str] = []
        self.keys: set[str] = set()

    def where(self, key: str) -> str:
        parts = key.replace("[", ".[").split(".")
        for i in range(len(parts), 0, -1):
            item = self.overridden.get(".".join(parts[:i]))
            if item is not None:
                return f"--set {item}"
        return self.file

    def add(self, key: str, text: str) -> None:
        self.keys.add(key)
        self.lines.append(f"{self.where(key)}: {key}: {text}")

    def add_cross(self, key: str, text: str) -> None:
        """A problem between keys; left out when ``key``, or a key its text names, is
        already wrong on its own (its default stood in for it, so the check would be
        about a value never given)."""
        named = [key, *re.findall(r"\b(?:data|federation|model|privacy)\.[a-z_]+", text)]
        if not any(
            n == k or n.startswith(k + ".") or k.startswith(n + ".")
            for n in named
            for k in self.keys
        ):
            self.lines.append(f"{self.where(key)}: {key}: {text}")

    def raise_if_any(self) -> None:
        if self.lines:
            raise ScenarioError("\n".join(dict.fromkeys(self.lines)))


class _Bad(Exception):
    """One value is not allowed (the text says what is)."""


def _validate(raw: Mapping[str, Any], problems: _Problems) -> Scenario | None:
    top_fields = {f.name: f for f in fields(Scenario) if not f.metadata.get("internal")}
    _reject_unknown(raw, top_fields, "", problems)
    kwargs: dict[str, Any] = {}
    for name, f in top_fields.items():
        if name not in raw:
            continue
        if name in _SECTIONS:
            section = raw[name]
            if not isinstance(section, dict):
                problems.add(name, f"[{name}] must be a table")
                continue
            kwargs[name] = _build_section(_SECTIONS[name], section, name, problems)
        else:
            try:
                kwargs[name] = _check_value(f, raw[name])
            except _Bad as exc:
                problems.add(name, str(exc))
    if "name" in kwargs:
        try:
            _check_name(kwargs["name"])
        except _Bad as exc:
            problems.add("name", str(exc))
            del kwargs["name"]
    if "data" in kwargs and isinstance(raw.get("data"), dict):
        kwargs["data"] = _resolve_scaling(kwargs["data"], raw["data"], problems)
    scenario = _resolve_calibration(Scenario(**kwargs, source_file=problems.file), raw)
    scenario = _resolve_vertical_defaults(scenario, raw)
    if scenario.privacy.protocol == "secret_sharing" and scenario.privacy.triples is None:
        scenario = replace(scenario, privacy=replace(scenario.privacy, triples="dealer"))
    _check_cross_fields(scenario, problems)
    return scenario


_NAME_MAX = 100


def _check_name(name: str) -> None:
    if not name.strip() or any(c in name for c in "/\\\0") or not name.isprintable():
        raise _Bad("must be non-empty, printable and contain no slashes")
    if len(name) > _NAME_MAX:
        raise _Bad(
            f"{len(name)} characters; at most {_NAME_MAX} are allowed (it names the run "
            "folder); put longer text in description"
        )


# Vertical runs the scenario leaves these to: measured on the bundled data and the
# synthetic and heavy-tailed vertical splits (README, Vertical joint modelling), two
# epochs of batch 1024 at step 0.3 reach the converged pooled reference's log loss to
# within 0.5 % once the bank's Platt step has run; more epochs do not improve on it and
# every epoch costs one Paillier encryption per customer. The horizontal defaults (20
# rounds of batch 64) would mean 375 encrypted exchanges per epoch, 20 times over.
VERTICAL_DEFAULTS = {"rounds": 2, "model.batch_size": 1024, "model.learning_rate": 0.3}


def _resolve_vertical_defaults(s: Scenario, raw: Mapping[str, Any]) -> Scenario:
    """A vertical run gets :data:`VERTICAL_DEFAULTS` for the keys its file leaves out."""
    if s.federation.kind != "vertical":
        return s
    model = raw.get("model") if isinstance(raw.get("model"), Mapping) else {}
    m = s.model
    if "batch_size" not in model:
        m = replace(m, batch_size=VERTICAL_DEFAULTS["model.batch_size"])
    if "learning_rate" not in model:
        m = replace(m, learning_rate=VERTICAL_DEFAULTS["model.learning_rate"])
    rounds = s.rounds if "rounds" in raw else VERTICAL_DEFAULTS["rounds"]
    return replace(s, rounds=rounds, model=m)


def _resolve_calibration(s: Scenario, raw: Mapping[str, Any]) -> Scenario:
    """A vertical run without ``model.calibration`` gets 'platt': measured on the bundled
    data, the synthetic and the heavy-tailed 5 %-default vertical splits, the bank's
    Platt step brings the joint model's log loss to the converged pooled reference's,
    where the intercept alone stays 3–4 % above it (README, Vertical joint modelling)."""
    model = raw.get("model")
    given = isinstance(model, Mapping) and "calibration" in model
    if s.federation.kind != "vertical" or given:
        return s
    return replace(s, model=replace(s.model, calibration="platt"))


def _resolve_scaling(data: DataConfig, raw: Mapping[str, Any], problems: _Problems) -> DataConfig:
    """``data.standardize`` (the older key) and ``data.scaling`` agree in the result.

    ``standardize = false`` alone means ``scaling = "none"``; ``scaling`` alone sets
    ``standardize`` to whether it scales; both given must agree.
    """
    if "standardize" not in raw:
        return replace(data, standardize=data.scaling != "none")
    if "scaling" not in raw:
        return replace(data, scaling=data.scaling if data.standardize else "none")
    if data.standardize != (data.scaling != "none"):
        problems.add_cross(
            "data.standardize",
            f"{str(data.standardize).lower()} contradicts "
            f"data.scaling = {data.scaling!r}; drop data.standardize (superseded) and "
            "set data.scaling to 'robust', 'zscore' or 'none'",
        )
    return data


def _reject_unknown(
    raw: Mapping[str, Any], known: Mapping[str, Any], prefix: str, problems: _Problems
) -> None:
    for key in raw:
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
            hint = (
                f"; did you mean '{prefix}{close[0]}'?"
                if close
                else (f"; allowed: {', '.join(prefix + k for k in known)}")
            )
            problems.add(f"{prefix}{key}", f"unknown key{hint}")


def _build_section(cls, raw: Mapping[str, Any], section: str, problems: _Problems):
    """The section's dataclass from the values that passed their checks (a value that
    did not is reported and its default stands in, so later checks still run)."""
    known = {f.name: f for f in fields(cls)}
    _reject_unknown(raw, known, f"{section}.", problems)
    kwargs = {}
    for name, value in raw.items():
        if name not in known:
            continue
        key = f"{section}.{name}"
        if known[name].metadata.get("table_array"):
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                problems.add(key, f"expected [[{key}]] tables")
                continue
            kwargs[name] = tuple(
                _build_section(PartyConfig, v, f"{key}[{i}]", problems) for i, v in enumerate(value)
            )
        else:
            try:
                kwargs[name] = _check_value(known[name], value)
            except _Bad as exc:
                problems.add(key, str(exc))
    return cls(**kwargs)


def _type_name(value: Any) -> str:
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "table",
    }.get(type(value), type(value).__name__)


def _check_value(f, value: Any) -> Any:
    meta = f.metadata
    expected = f.type if isinstance(f.type, str) else f.type.__name__
    base = expected.replace(" | None", "")
    if base == "tuple[str, ...]":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        if ok:
            value = tuple(value)
    elif base == "bool":
        ok = isinstance(value, bool)
    elif base == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            value = float(value)
    elif base == "str":
        ok = isinstance(value, str)
    else:  # pragma: no cover - a field type the loader does not know is a bug
        raise AssertionError(f"unhandled field type {expected}")
    wanted = {
        "bool": "a boolean (true/false)",
        "int": "an integer",
        "float": "a number",
        "str": "a string",
        "tuple[str, ...]": "an array of strings",
    }[base]
    if not ok:
        raise _Bad(f"expected {wanted}, got {_type_name(value)} {value!r}")
    if meta.get("choices") and value not in meta["choices"]:
        allowed = ", ".join(repr(c) if isinstance(c, str) else str(c) for c in meta["choices"])
        raise _Bad(f"{value!r} is not allowed; allowed: {allowed}")
    if (
        base == "float"
        and not math.isfinite(value)
        and not (value == math.inf and meta.get("hi") is None)
    ):
        raise _Bad(f"must be a finite number, got {value}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (value < lo or (meta.get("lo_open") and value == lo)):
        op = ">" if meta.get("lo_open") else ">="
        raise _Bad(f"must be {op} {lo:g}, got {value}")
    if hi is not None and (value > hi or (meta.get("hi_open") and value == hi)):
        op = "<" if meta.get("hi_open") else "<="
        raise _Bad(f"must be {op} {hi:g}, got {value}")
    return value


def _check_cross_fields(s: Scenario, problems: _Problems) -> None:
    vertical = s.federation.kind == "vertical"
    if s.data.source == "csv" and not s.data.path and not vertical:
        problems.add_cross("data.path", "required when data.source = 'csv'")
    if vertical and s.data.path:
        problems.add_cross(
            "data.path",
            "a vertical run reads one file per party; "
            "give each [[federation.parties]] its own path",
        )
    if s.data.source != "csv" and s.data.path:
        problems.add_cross(
            "data.path", f"only used with data.source = 'csv' (source is {s.data.source!r})"
        )
    p = s.privacy
    if p.target_epsilon is not None and p.noise_multiplier is not None:
        problems.add_cross("privacy", "give target_epsilon or noise_multiplier, not both")
    if p.dp != "none" and p.target_epsilon is None and p.noise_multiplier is None:
        problems.add_cross(
            "privacy.dp", f"{p.dp!r} needs privacy.target_epsilon or privacy.noise_multiplier"
        )
    if p.dp == "sample" and s.model.proximal_mu:
        problems.add_cross(
            "model.proximal_mu", "FedProx is not combined with DP-SGD (dp = 'sample'); set it to 0"
        )
    if p.dp == "label" and s.federation.kind != "vertical":
        problems.add_cross(
            "privacy.dp",
            "'label' protects the label holder in a vertical run; use 'sample' or 'client' here",
        )
    if p.dp == "client" and not AGGREGATION_MODES[p.aggregation].client_dp:
        allowed = " or ".join(repr(m.name) for m in AGGREGATION_MODES.values() if m.client_dp)
        problems.add_cross(
            "privacy.dp", f"'client' is available with aggregation {allowed}, not {p.aggregation!r}"
        )
    if p.dp != "client" and s.federation.sample_rate != 1.0:
        problems.add_cross(
            "federation.sample_rate",
            "sampling banks is part of "
            "dp = 'client'; with dp = " + repr(p.dp) + " every bank takes part",
        )
    if s.model.calibration == "platt" and s.federation.kind != "vertical":
        problems.add_cross(
            "model.calibration",
            "'platt' rescales the joint score at the vertical "
            "label holder; horizontal runs use 'intercept' or 'none'",
        )
    f = s.federation
    if f.kind == "vertical" and (f.dropout or f.stragglers):
        key = "federation.dropout" if f.dropout else "federation.stragglers"
        problems.add_cross(
            key,
            "fault injection is for horizontal runs; a "
            "vertical run needs every party for each batch",
        )
    if s.model.kind == "secureboost":
        _check_secureboost(s, problems)
    if s.model.kind == "scorecard":
        _check_scorecard(s, problems)
    if s.federation.kind == "vertical":
        _check_vertical(s, problems)
    elif s.federation.parties:
        problems.add_cross("federation.parties", "only used with federation.kind = 'vertical'")
    mode = AGGREGATION_MODES[s.privacy.aggregation]
    if s.federation.kind == "horizontal" and s.federation.banks < mode.min_banks:
        problems.add_cross(
            "privacy.aggregation",
            f"{mode.name!r} "
            f"needs at least {mode.min_banks} banks, federation.banks is "
            f"{s.federation.banks}",
        )
    if p.key != "shared" and (s.federation.kind != "horizontal" or not mode.bank_keys):
        problems.add_cross(
            "privacy.key",
            f"{p.key!r} is for horizontal runs with aggregation "
            f"'paillier', not {s.federation.kind} with {p.aggregation!r}",
        )
    if s.model.early_stopping and s.federation.kind != "horizontal":
        problems.add_cross(
            "model.early_stopping",
            "for horizontal runs; vertical runs train for the given rounds (epochs)",
        )
    if s.model.early_stopping and p.dp != "none":
        problems.add_cross(
            "model.early_stopping",
            f"not with privacy.dp = {p.dp!r}: the pooled "
            "validation loss is released without noise; fix rounds instead",
        )


def _check_vertical(s: Scenario, problems: _Problems) -> None:
    parties = s.federation.parties
    names = [p.name for p in parties]
    for i, p in enumerate(parties):
        if not p.name.strip() or any(c in p.name for c in "/\\\0 "):
            problems.add_cross(
                f"federation.parties[{i}].name", "must be non-empty, without spaces or slashes"
            )
        if p.columns is not None and not p.columns:
            problems.add_cross(
                f"federation.parties[{i}].columns",
                f"party {p.name!r} holds no columns; give at least one",
            )
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        problems.add_cross("federation.parties", f"the name {sorted(dupes)[0]!r} is used twice")
    if parties:
        holders = [p.name for p in parties if p.label]
        if len(holders) != 1:
            problems.add_cross(
                "federation.parties",
                "exactly one party must have label = true; "
                + (f"{', '.join(holders)} all do" if holders else "none does"),
            )
        if len(parties) < 2:
            problems.add_cross(
                "federation.parties",
                "a vertical federation needs the label holder and at least one data party",
            )
    if s.privacy.aggregation == "secagg":
        problems.add_cross(
            "privacy.aggregation",
            "vertical runs encrypt residuals with Paillier; 'secagg' is horizontal-only",
        )
    if s.privacy.dp not in ("none", "label"):
        problems.add_cross(
            "privacy.dp",
            f"{s.privacy.dp!r} is horizontal-only; vertical runs allow 'none' or 'label'",
        )
    _check_protocol(s, problems)


def _check_protocol(s: Scenario, problems: _Problems) -> None:
    """privacy.protocol, triples, frac_bits and reveal against the rest of the run."""
    p = s.privacy
    if p.protocol == "paillier":
        if p.triples is not None:
            problems.add_cross(
                "privacy.triples",
                f"{p.triples!r} deals the products of protocol 'secret_sharing'; this run "
                "uses privacy.protocol = 'paillier', which has no dealer and no triples "
                "(set privacy.protocol = 'secret_sharing' or remove privacy.triples)",
            )
        return
    if s.model.kind != "logistic":
        problems.add_cross(
            "privacy.protocol",
            f"'secret_sharing' trains the logistic model; model.kind {s.model.kind!r} "
            "runs with 'paillier'",
        )
        return
    parties = s.federation.parties
    data_parties = [q.name for q in parties if not q.label]
    if p.triples == "dealer" and "dealer" in [q.name for q in parties]:
        problems.add_cross(
            "federation.parties",
            "the name 'dealer' is the secret-sharing helper's; rename that party",
        )
    if p.triples == "paillier" and len(data_parties) > 1:
        problems.add_cross(
            "privacy.triples",
            f"'paillier' makes the products of the bank and one data party; this run has "
            f"{len(data_parties)} ({', '.join(data_parties)}): use 'dealer'",
        )
    if p.dp != "none":
        problems.add_cross(
            "privacy.dp",
            f"{p.dp!r} is not offered with privacy.protocol = 'secret_sharing' (no party "
            "sees a gradient to noise); use 'none'",
        )
    if p.label_leakage_attack:
        problems.add_cross(
            "privacy.label_leakage_attack",
            "the attack reads a data party's plaintext gradients, which the "
            "secret-sharing protocol never shows; set it to false",
        )
    if s.federation.engine == "deployment":
        problems.add_cross(
            "federation.engine",
            "'secret_sharing' runs on 'inprocess' or 'simulation'; the Deployment Engine "
            "runs privacy.protocol = 'paillier'",
        )


def _check_secureboost(s: Scenario, problems: _Problems) -> None:
    if s.federation.kind != "vertical":
        problems.add_cross(
            "model.kind",
            "'secureboost' grows trees across a bank and data parties on the same "
            "customers; set federation.kind = 'vertical' (horizontal runs train 'logistic')",
        )
        return
    if s.privacy.dp != "none":
        problems.add_cross(
            "privacy.dp",
            f"{s.privacy.dp!r} is not offered with model.kind = 'secureboost' (label DP "
            "noises the logistic protocol's gradients); use 'none'",
        )
    if s.federation.engine == "deployment":
        problems.add_cross(
            "federation.engine",
            "'deployment' runs the logistic vertical protocol; secureboost runs on "
            "'inprocess' or 'simulation'",
        )
    if s.privacy.label_leakage_attack:
        problems.add_cross(
            "privacy.label_leakage_attack",
            "the attack reads a data party's plaintext gradients, which secureboost "
            "never sends; set it to false",
        )


def _check_scorecard(s: Scenario, problems: _Problems) -> None:
    p = s.privacy
    if s.federation.kind == "horizontal" and p.aggregation not in ("plain", "paillier"):
        problems.add_cross(
            "privacy.aggregation",
            f"a scorecard's bin counts are summed in the clear ('plain') or under the banks' "
            f"Paillier key ('paillier'), not {p.aggregation!r}",
        )
    if s.federation.kind == "horizontal" and p.key != "shared":
        problems.add_cross(
            "privacy.key",
            "a scorecard's banks decrypt their summed bin counts with the shared key; use 'shared'",
        )
    if p.dp != "none":
        problems.add_cross(
            "privacy.dp",
            f"{p.dp!r} is not offered with model.kind = 'scorecard' (the WOE tables are "
            "released without noise); use 'none'",
        )
    if s.federation.engine == "deployment":
        problems.add_cross(
            "federation.engine",
            "a scorecard runs on 'inprocess' or 'simulation'",
        )


def _check_files(s: Scenario, problems: _Problems) -> None:
    """The data files the scenario names exist and can be read (before any work)."""
    named = [("data.path", s.data.path)] if s.data.source == "csv" else []
    if s.data.source == "csv":
        named += [
            (f"federation.parties[{i}].path", p.path)
            for i, p in enumerate(s.federation.parties)
            if p.path
        ]
    for key, given in named:
        if not given or key in problems.keys:
            continue
        path = s.resolve_path(given)
        shown = repr(given) if str(path) == given else f"{given!r} ({path})"
        try:
            input_file(path, f"{key}: {shown}", kind="file", error=ScenarioError)
        except InputError as exc:
            problems.lines.append(f"{problems.where(key)}: {exc}")


# What each mechanism uses when the scenario leaves it unset (the resolved scenario
# file writes the value used).
DEFAULT_CLIP_NORM = {"sample": 4.0, "client": 0.1, "label": 3.0}
DEFAULT_SECAGG_THRESHOLD = 2 / 3


def _horizontal(s: Scenario) -> bool:
    return s.federation.kind == "horizontal"


def _vertical(s: Scenario) -> bool:
    return s.federation.kind == "vertical"


def _synthetic(s: Scenario) -> bool:
    return s.data.source == "synthetic"


def _dp(s: Scenario) -> bool:
    return s.privacy.dp != "none"


def _boost(s: Scenario) -> bool:
    return _vertical(s) and s.model.kind == "secureboost"


def _logistic(s: Scenario) -> bool:
    return s.model.kind in ("logistic", "scorecard")


def _shared(s: Scenario) -> bool:
    return _vertical(s) and s.privacy.protocol == "secret_sharing"


def _scorecard(s: Scenario) -> bool:
    return s.model.kind == "scorecard"


def _optimal(s: Scenario) -> bool:
    return _scorecard(s) and s.binning.method == "optimal"


def _adaptive(s: Scenario) -> bool:
    return _horizontal(s) and s.model.server_optimizer != "fedavg"


def _stopping(s: Scenario) -> bool:
    return _horizontal(s) and s.model.early_stopping


def _encrypted_v(s: Scenario) -> bool:
    if _shared(s) and s.model.kind == "logistic":
        return s.privacy.triples == "paillier"
    return _vertical(s) and (_logistic(s) or s.secureboost.encrypted)


def _paillier_h(s: Scenario) -> bool:
    return _horizontal(s) and s.privacy.aggregation == "paillier"


# key -> when the key is read; keys not named here apply to every run. The run folder's
# scenario.toml holds only the keys that applied, so it says what the run used.
APPLIES = {
    "rounds": _logistic,
    "model.batch_size": _logistic,
    "model.l2": _logistic,
    "model.calibration": _logistic,
    **{f"secureboost.{f.name}": _boost for f in fields(SecureBoostConfig)},
    **{f"binning.{f.name}": _optimal for f in fields(BinningConfig)},
    "binning.method": _scorecard,
    "binning.max_bins": _scorecard,
    "binning.min_bin_share": _scorecard,  # text columns' rare categories too
    **{f"selection.{f.name}": _scorecard for f in fields(SelectionConfig)},
    "secureboost.validation_fraction": lambda s: (
        _boost(s) and s.secureboost.early_stopping_rounds > 0
    ),
    "data.path": lambda s: s.data.source == "csv" and _horizontal(s),
    "data.label": lambda s: s.data.source == "csv",
    "data.id": lambda s: s.data.source == "csv",
    "data.standardize": lambda s: False,  # superseded by data.scaling (which is written)
    "data.default_rate": _synthetic,
    "data.tails": _synthetic,
    "data.customers": _synthetic,
    "data.features_per_source": _synthetic,
    "data.overlap": lambda s: _synthetic(s) and _vertical(s),
    "federation.banks": _horizontal,
    "federation.partition": _horizontal,
    "federation.alpha": lambda s: _horizontal(s) and s.federation.partition != "iid",
    "federation.min_rows": _horizontal,
    "federation.sample_rate": lambda s: s.privacy.dp == "client",
    "federation.min_parties": _horizontal,
    "federation.dropout": _horizontal,
    "federation.stragglers": _horizontal,
    "federation.straggler_delay": lambda s: _horizontal(s) and s.federation.stragglers > 0,
    "federation.round_timeout": _horizontal,
    "federation.parties": _vertical,
    "federation.parties.signal": _synthetic,
    "federation.parties.path": lambda s: s.data.source == "csv",
    "model.local_epochs": _horizontal,
    "model.proximal_mu": _horizontal,
    "model.server_optimizer": _horizontal,
    "model.server_learning_rate": _horizontal,
    "model.server_beta_1": lambda s: _adaptive(s) and s.model.server_optimizer != "fedadagrad",
    "model.server_beta_2": lambda s: _adaptive(s) and s.model.server_optimizer != "fedadagrad",
    "model.server_tau": _adaptive,
    "model.early_stopping": _horizontal,
    "model.patience": _stopping,
    "model.validation_fraction": _stopping,
    "privacy.aggregation": _horizontal,
    "privacy.key_bits": lambda s: _encrypted_v(s) or _paillier_h(s),
    "privacy.key": _paillier_h,
    "privacy.obfuscation": _encrypted_v,
    "privacy.update_range": lambda s: (
        _horizontal(s) and s.privacy.aggregation in ("paillier", "secagg")
    ),
    "privacy.secagg_threshold": lambda s: _horizontal(s) and s.privacy.aggregation == "secagg",
    "privacy.accountant": _dp,
    "privacy.max_epsilon": _dp,
    "privacy.target_epsilon": _dp,
    "privacy.noise_multiplier": _dp,
    "privacy.delta": _dp,
    "privacy.clip_norm": _dp,
    "privacy.label_leakage_attack": lambda s: _vertical(s) and _logistic(s),
    "privacy.protocol": lambda s: _vertical(s) and s.model.kind == "logistic",
    "privacy.triples": _shared,
    "privacy.frac_bits": _shared,
    "privacy.reveal": _shared,
}


def applies(s: Scenario, key: str) -> bool:
    """Whether a run of ``s`` reads ``key`` (e.g. 'federation.banks')."""
    rule = APPLIES.get(key)
    return True if rule is None else bool(rule(s))


def resolved(s: Scenario) -> Scenario:
    """``s`` with the values a run uses where the file left them to the mechanism."""
    p = s.privacy
    if p.dp != "none" and p.clip_norm is None:
        p = replace(p, clip_norm=DEFAULT_CLIP_NORM[p.dp])
    if p.aggregation == "secagg" and p.secagg_threshold is None:
        p = replace(p, secagg_threshold=DEFAULT_SECAGG_THRESHOLD)
    return replace(s, privacy=p)


def resolved_toml(s: Scenario) -> str:
    """The run folder's scenario.toml: only the keys that applied to this run, with
    the values it used (``fedrisk run`` on it repeats the run)."""
    s = resolved(s)
    return _dict_to_toml(_applicable(s, s.to_dict()))


def _applicable(s: Scenario, tree: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out[key] = {k: v for k, v in value.items() if applies(s, f"{key}.{k}")}
            if "parties" in out[key]:
                out[key]["parties"] = [
                    {k: v for k, v in party.items() if applies(s, f"{key}.parties.{k}")}
                    for party in out[key]["parties"]
                ]
        elif applies(s, key):
            out[key] = value
    return out


def allowed_text(f) -> str:
    """What a key allows, from its declared checks (README's 'allowed' column)."""
    meta = f.metadata
    if meta.get("choices"):
        return ", ".join(f'`"{c}"`' if isinstance(c, str) else f"`{c}`" for c in meta["choices"])
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is None and hi is None:
        return ""

    def num(x: float) -> str:
        if x == 2**63 - 1:
            return "2^63 − 1"
        if x >= 1e5 and float(x).is_integer() and math.log10(x).is_integer():
            return f"10^{int(math.log10(x))}"
        return f"{x:g}"

    if hi is None:
        return f"{'>' if meta.get('lo_open') else '≥'} {num(lo)}"
    if "int" in str(f.type):
        return f"{num(lo)} – {num(hi)}"
    left = "(" if meta.get("lo_open") else "["
    right = ")" if meta.get("hi_open") else "]"
    return f"{left}{num(lo)}, {num(hi)}{right}"


def key_reference(kind: str | None = None) -> list[tuple[str, str, str, str]]:
    """(key, default, allowed, meaning) for every scenario key (a run of ``kind`` only:
    the keys it may read)."""
    probe = Scenario(federation=FederationConfig(kind=kind)) if kind else None
    rows = []
    for top in fields(Scenario):
        if top.metadata.get("internal"):
            continue
        if top.name in _SECTIONS:
            specs = [(f"{top.name}.{f.name}", f) for f in fields(_SECTIONS[top.name])]
        else:
            specs = [(top.name, top)]
        for key, f in specs:
            if probe is not None and key in APPLIES and not _may_apply(key, kind):
                continue
            default = f.default if f.default is not MISSING else ()
            shown = "—" if default in (None, ()) else _toml_value(default)
            rows.append((key, shown, allowed_text(f), f.metadata.get("help", "")))
    return rows


def _may_apply(key: str, kind: str) -> bool:
    """Whether some run of ``kind`` reads ``key`` (whatever its other settings)."""
    base = Scenario(federation=FederationConfig(kind=kind))
    variants = [
        base,
        replace(base, data=replace(base.data, source="synthetic")),
        replace(base, data=replace(base.data, source="csv")),
        replace(
            base, privacy=replace(base.privacy, dp="label" if kind == "vertical" else "client")
        ),
    ]
    if kind == "vertical":
        variants.append(replace(base, model=replace(base.model, kind="secureboost")))
    variants.append(replace(base, model=replace(base.model, kind="scorecard")))
    if kind == "horizontal":
        variants += [
            replace(base, privacy=replace(base.privacy, aggregation=a, key="shared"))
            for a in _AGGREGATIONS
        ]
        variants += [
            replace(
                base, model=replace(base.model, server_optimizer="fedadam", early_stopping=True)
            ),
            replace(base, federation=replace(base.federation, stragglers=0.5)),
        ]
    return any(applies(v, key) for v in variants)


def key_reference_text(kind: str | None = None) -> str:
    """``fedrisk keys``: the reference as aligned plain text."""
    rows = key_reference(kind)
    width = max(len(k) for k, *_ in rows)
    lines = [
        f"Scenario keys{f' a {kind} run reads' if kind else ''} "
        "(TOML sections [data], [federation], [model], [privacy]; "
        "--set section.key=value overrides any):",
        "",
    ]
    for key, default, allowed, meaning in rows:
        lines.append(
            f"{key:<{width}}  default {default}" + (f"; allowed {allowed}" if allowed else "")
        )
        lines.append(f"{'':<{width}}  {meaning}")
    return "\n".join(lines).replace("`", "")


def with_overrides(s: Scenario, **changes: Any) -> Scenario:
    """A copy of ``s`` with top-level fields replaced (used by sweeps and tests)."""
    return replace(s, **changes)


def to_toml(s: Scenario) -> str:
    """Serialise the scenario as TOML (every key, defaults included: what the
    Deployment Engine's apps are sent)."""
    return _dict_to_toml(s.to_dict())


def _dict_to_toml(tree: dict[str, Any]) -> str:
    lines: list[str] = []
    tables: list[tuple[str, dict]] = []
    for key, value in tree.items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for name, table in tables:
        lines.append(f"\n[{name}]")
        arrays = {
            k: v for k, v in table.items() if isinstance(v, list) and v and isinstance(v[0], dict)
        }
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items() if k not in arrays)
        for key, items in arrays.items():
            for item in items:
                lines.append(f"\n[[{name}.{key}]]")
                lines.extend(f"{k} = {_toml_value(v)}" for k, v in item.items())
    return "\n".join(lines) + "\n"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        if isinstance(v, float) and math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")
