"""Scenario files: TOML -> validated, frozen dataclasses.

Every key has a default documented in the field's ``help``; unknown keys, wrong types
and out-of-range values raise :class:`ScenarioError` with one line that names the file,
the key and what is allowed. ``--set a.b=value`` overrides are applied to the parsed
TOML before validation, so they get exactly the same checks.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from fedrisk.errors import ScenarioError

# declarations only (no Flower): the allowed modes and what each needs
from fedrisk.horizontal.aggregation import MODES as AGGREGATION_MODES

_ENGINES = ("inprocess", "simulation", "deployment")
_KINDS = ("horizontal", "vertical")
_OBFUSCATIONS = ("full", "djn")
_KEY_MODES = ("shared", "threshold")
_SOURCES = ("uci-default-credit", "synthetic", "csv")
_PARTITIONS = ("iid", "dirichlet", "quantity")
_AGGREGATIONS = tuple(AGGREGATION_MODES)
_DP_MODES = ("none", "sample", "client", "label")
_ACCOUNTANTS = ("rdp", "pld")
_SCALINGS = ("robust", "zscore", "none")
_TAILS = ("light", "heavy")
_SERVER_OPTIMIZERS = ("fedavg", "fedadam", "fedyogi", "fedadagrad")
_CALIBRATIONS = ("intercept", "platt", "none")
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
    learning_rate: float = _spec(0.1, "SGD step size", lo=0.0, lo_open=True, hi=100.0)
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
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    # Where the file came from (for error messages and relative csv paths); not a TOML key.
    source_file: str = field(default="<scenario>", compare=False, metadata=dict(internal=True))

    def resolve_path(self, path: str) -> Path:
        """A data path as written in the scenario, made relative to the scenario file."""
        p = Path(path).expanduser()
        if p.is_absolute() or self.source_file.startswith("<"):
            return p
        return Path(self.source_file).parent / p

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
        """Flower rounds at most: training rounds, then the calibration rounds."""
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
    "privacy": PrivacyConfig,
}


def _is_section(f) -> bool:
    return f.name in _SECTIONS


def load_scenario(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Scenario:
    """Read, override and validate a scenario file."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise ScenarioError(f"{where}: no such scenario file")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{where}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{where}: not a UTF-8 text file") from None
    for item in overrides:
        apply_override(raw, item, where)
    return scenario_from_dict(raw, where)


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


def apply_override(raw: dict[str, Any], item: str, where: str) -> None:
    """Apply one --set override to the parsed TOML (validated later with the rest)."""
    keys, value = parse_override(item)
    node = raw
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ScenarioError(f"--set {item}: '{k}' is not a table in {where}")
    node[keys[-1]] = value


def scenario_from_dict(raw: Mapping[str, Any], where: str = "<scenario>") -> Scenario:
    top_fields = {f.name: f for f in fields(Scenario) if not f.metadata.get("internal")}
    _reject_unknown(raw, top_fields, "", where)
    kwargs: dict[str, Any] = {}
    for name, f in top_fields.items():
        if name not in raw:
            continue
        if name in _SECTIONS:
            section = raw[name]
            if not isinstance(section, dict):
                raise ScenarioError(f"{where}: [{name}] must be a table")
            kwargs[name] = _build_section(_SECTIONS[name], section, name, where)
        else:
            kwargs[name] = _check_value(f, raw[name], name, where)
    if "data" in kwargs:
        kwargs["data"] = _resolve_scaling(kwargs["data"], raw["data"], where)
    scenario = _resolve_calibration(Scenario(**kwargs, source_file=where), raw)
    _check_cross_fields(scenario, where)
    return scenario


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


def _resolve_scaling(data: DataConfig, raw: Mapping[str, Any], where: str) -> DataConfig:
    """``data.standardize`` (the older key) and ``data.scaling`` agree in the result.

    ``standardize = false`` alone means ``scaling = "none"``; ``scaling`` alone sets
    ``standardize`` to whether it scales; both given must agree.
    """
    if "standardize" not in raw:
        return replace(data, standardize=data.scaling != "none")
    if "scaling" not in raw:
        return replace(data, scaling=data.scaling if data.standardize else "none")
    if data.standardize != (data.scaling != "none"):
        raise ScenarioError(
            f"{where}: data.standardize: {str(data.standardize).lower()} contradicts "
            f"data.scaling = {data.scaling!r}; drop data.standardize (superseded) and "
            "set data.scaling to 'robust', 'zscore' or 'none'"
        )
    return data


def _reject_unknown(
    raw: Mapping[str, Any], known: Mapping[str, Any], prefix: str, where: str
) -> None:
    for key in raw:
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
            hint = (
                f"; did you mean '{prefix}{close[0]}'?"
                if close
                else (f"; allowed: {', '.join(prefix + k for k in known)}")
            )
            raise ScenarioError(f"{where}: {prefix}{key}: unknown key{hint}")


def _build_section(cls, raw: Mapping[str, Any], section: str, where: str):
    known = {f.name: f for f in fields(cls)}
    _reject_unknown(raw, known, f"{section}.", where)
    kwargs = {}
    for name, value in raw.items():
        key = f"{section}.{name}"
        if known[name].metadata.get("table_array"):
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise ScenarioError(f"{where}: {key}: expected [[{key}]] tables")
            kwargs[name] = tuple(
                _build_section(PartyConfig, v, f"{key}[{i}]", where) for i, v in enumerate(value)
            )
        else:
            kwargs[name] = _check_value(known[name], value, key, where)
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


def _check_value(f, value: Any, key: str, where: str) -> Any:
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
        raise ScenarioError(f"{where}: {key}: expected {wanted}, got {_type_name(value)} {value!r}")
    if meta.get("choices") and value not in meta["choices"]:
        allowed = ", ".join(repr(c) if isinstance(c, str) else str(c) for c in meta["choices"])
        raise ScenarioError(f"{where}: {key}: {value!r} is not allowed; allowed: {allowed}")
    if (
        base == "float"
        and not math.isfinite(value)
        and not (value == math.inf and meta.get("hi") is None)
    ):
        raise ScenarioError(f"{where}: {key}: must be a finite number, got {value}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (value < lo or (meta.get("lo_open") and value == lo)):
        op = ">" if meta.get("lo_open") else ">="
        raise ScenarioError(f"{where}: {key}: must be {op} {lo:g}, got {value}")
    if hi is not None and (value > hi or (meta.get("hi_open") and value == hi)):
        op = "<" if meta.get("hi_open") else "<="
        raise ScenarioError(f"{where}: {key}: must be {op} {hi:g}, got {value}")
    return value


def _check_cross_fields(s: Scenario, where: str) -> None:
    vertical = s.federation.kind == "vertical"
    if s.data.source == "csv" and not s.data.path and not vertical:
        raise ScenarioError(f"{where}: data.path: required when data.source = 'csv'")
    if vertical and s.data.path:
        raise ScenarioError(
            f"{where}: data.path: a vertical run reads one file per party; "
            "give each [[federation.parties]] its own path"
        )
    if s.data.source != "csv" and s.data.path:
        raise ScenarioError(
            f"{where}: data.path: only used with data.source = 'csv' (source is {s.data.source!r})"
        )
    p = s.privacy
    if p.target_epsilon is not None and p.noise_multiplier is not None:
        raise ScenarioError(f"{where}: privacy: give target_epsilon or noise_multiplier, not both")
    if p.dp != "none" and p.target_epsilon is None and p.noise_multiplier is None:
        raise ScenarioError(
            f"{where}: privacy.dp: {p.dp!r} needs privacy.target_epsilon or "
            "privacy.noise_multiplier"
        )
    if p.dp == "sample" and s.model.proximal_mu:
        raise ScenarioError(
            f"{where}: model.proximal_mu: FedProx is not combined with "
            "DP-SGD (dp = 'sample'); set it to 0"
        )
    if p.dp == "label" and s.federation.kind != "vertical":
        raise ScenarioError(
            f"{where}: privacy.dp: 'label' protects the label holder in a "
            "vertical run; use 'sample' or 'client' here"
        )
    if p.dp == "client" and not AGGREGATION_MODES[p.aggregation].client_dp:
        allowed = " or ".join(repr(m.name) for m in AGGREGATION_MODES.values() if m.client_dp)
        raise ScenarioError(
            f"{where}: privacy.dp: 'client' is available with aggregation "
            f"{allowed}, not {p.aggregation!r}"
        )
    if p.dp != "client" and s.federation.sample_rate != 1.0:
        raise ScenarioError(
            f"{where}: federation.sample_rate: sampling banks is part of "
            "dp = 'client'; with dp = " + repr(p.dp) + " every bank takes part"
        )
    if s.model.calibration == "platt" and s.federation.kind != "vertical":
        raise ScenarioError(
            f"{where}: model.calibration: 'platt' rescales the joint score at the vertical "
            "label holder; horizontal runs use 'intercept' or 'none'"
        )
    f = s.federation
    if f.kind == "vertical" and (f.dropout or f.stragglers):
        key = "federation.dropout" if f.dropout else "federation.stragglers"
        raise ScenarioError(
            f"{where}: {key}: fault injection is for horizontal runs; a "
            "vertical run needs every party for each batch"
        )
    if s.federation.kind == "vertical":
        _check_vertical(s, where)
    elif s.federation.parties:
        raise ScenarioError(
            f"{where}: federation.parties: only used with federation.kind = 'vertical'"
        )
    mode = AGGREGATION_MODES[s.privacy.aggregation]
    if s.federation.kind == "horizontal" and s.federation.banks < mode.min_banks:
        raise ScenarioError(
            f"{where}: privacy.aggregation: {mode.name!r} "
            f"needs at least {mode.min_banks} banks, federation.banks is "
            f"{s.federation.banks}"
        )
    if p.key != "shared" and (s.federation.kind != "horizontal" or not mode.bank_keys):
        raise ScenarioError(
            f"{where}: privacy.key: {p.key!r} is for horizontal runs with aggregation "
            f"'paillier', not {s.federation.kind} with {p.aggregation!r}"
        )
    if s.model.early_stopping and s.federation.kind != "horizontal":
        raise ScenarioError(
            f"{where}: model.early_stopping: for horizontal runs; vertical runs train "
            "for the given rounds (epochs)"
        )
    if s.model.early_stopping and p.dp != "none":
        raise ScenarioError(
            f"{where}: model.early_stopping: not with privacy.dp = {p.dp!r}: the pooled "
            "validation loss is released without noise; fix rounds instead"
        )
    if not s.name.strip() or any(c in s.name for c in "/\\\0"):
        raise ScenarioError(f"{where}: name: must be non-empty and contain no slashes")


def _check_vertical(s: Scenario, where: str) -> None:
    parties = s.federation.parties
    names = [p.name for p in parties]
    for i, p in enumerate(parties):
        if not p.name.strip() or any(c in p.name for c in "/\\\0 "):
            raise ScenarioError(
                f"{where}: federation.parties[{i}].name: must be non-empty, "
                "without spaces or slashes"
            )
        if p.columns is not None and not p.columns:
            raise ScenarioError(
                f"{where}: federation.parties[{i}].columns: party "
                f"{p.name!r} holds no columns; give at least one"
            )
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ScenarioError(
            f"{where}: federation.parties: the name {sorted(dupes)[0]!r} is used twice"
        )
    if parties:
        holders = [p.name for p in parties if p.label]
        if len(holders) != 1:
            raise ScenarioError(
                f"{where}: federation.parties: exactly one party must have label = true; "
                + (f"{', '.join(holders)} all do" if holders else "none does")
            )
        if len(parties) < 2:
            raise ScenarioError(
                f"{where}: federation.parties: a vertical federation needs "
                "the label holder and at least one data party"
            )
    if s.privacy.aggregation == "secagg":
        raise ScenarioError(
            f"{where}: privacy.aggregation: vertical runs encrypt residuals "
            "with Paillier; 'secagg' is horizontal-only"
        )
    if s.privacy.dp not in ("none", "label"):
        raise ScenarioError(
            f"{where}: privacy.dp: {s.privacy.dp!r} is horizontal-only; "
            "vertical runs allow 'none' or 'label'"
        )


def with_overrides(s: Scenario, **changes: Any) -> Scenario:
    """A copy of ``s`` with top-level fields replaced (used by sweeps and tests)."""
    return replace(s, **changes)


def to_toml(s: Scenario) -> str:
    """Serialise the resolved scenario as TOML (every key, defaults included)."""
    lines: list[str] = []
    tables: list[tuple[str, dict]] = []
    for key, value in s.to_dict().items():
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
