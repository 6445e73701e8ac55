"""Scenario loading: defaults, overrides and one-line errors naming the key."""

import dataclasses
from pathlib import Path

import pytest

from fedrisk.errors import ScenarioError
from fedrisk.scenario import load_scenario, parse_override, scenario_from_dict, to_toml

SCENARIOS = sorted((Path(__file__).parent.parent / "scenarios").glob("*.toml"))


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_shipped_scenarios_are_valid(path):
    s = load_scenario(path)
    assert s.name and s.rounds >= 1


def test_defaults_are_documented_values(tmp_path):
    s = load_scenario(write(tmp_path, 'name = "x"\n'))
    assert s.seed == 42 and s.rounds == 20
    assert s.federation.kind == "horizontal" and s.federation.engine == "inprocess"
    assert s.federation.banks == 5 and s.federation.partition == "dirichlet"
    assert s.privacy.aggregation == "plain" and s.privacy.delta == 1e-5


def test_resolved_toml_round_trips(tmp_path):
    s = load_scenario(SCENARIOS[0])
    again = load_scenario(write(tmp_path, to_toml(s)))
    assert again.to_dict() == s.to_dict()


def test_overrides_apply_and_are_validated(tmp_path):
    p = write(tmp_path, 'name = "x"\n')
    s = load_scenario(p, ["rounds=3", "federation.partition=iid", "model.l2=0"])
    assert s.rounds == 3 and s.federation.partition == "iid" and s.model.l2 == 0.0
    with pytest.raises(ScenarioError, match="federation.banks: must be >= 1"):
        load_scenario(p, ["federation.banks=0"])


def test_parse_override_reads_toml_values_and_bare_words():
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("a=0.5") == (["a"], 0.5)
    assert parse_override("a=true") == (["a"], True)
    assert parse_override("a=iid") == (["a"], "iid")
    with pytest.raises(ScenarioError, match="key.path=value"):
        parse_override("novalue")


@pytest.mark.parametrize(
    "text, message",
    [
        ('nmae = "x"\n', r"s.toml: nmae: unknown key; did you mean 'name'\?"),
        (
            "[federation]\nbnaks = 3\n",
            r"federation.bnaks: unknown key; did you mean 'federation.banks'",
        ),
        ("[federation]\nbanks = 0\n", r"federation.banks: must be >= 1, got 0"),
        (
            '[federation]\nbanks = "five"\n',
            r"federation.banks: expected an integer, got string 'five'",
        ),
        ("rounds = 2.5\n", r"rounds: expected an integer, got number 2.5"),
        ("[federation]\nbanks = true\n", r"federation.banks: expected an integer, got boolean"),
        ("[model]\nlearning_rate = -1\n", r"model.learning_rate: must be > 0"),
        ("[data]\ntest_fraction = 0\n", r"data.test_fraction: must be > 0"),
        (
            '[federation]\npartition = "random"\n',
            r"federation.partition: 'random' is not allowed; allowed: 'iid', 'dirichlet', 'quantity'",
        ),
        ('[privacy]\naggregation = "magic"\n', r"privacy.aggregation: 'magic' is not allowed"),
        ('[data]\nsource = "csv"\n', r"data.path: required when data.source = 'csv'"),
        ("data = 3\n", r"\[data\] must be a table"),
        ("[privacy]\ntarget_epsilon = 1.0\nnoise_multiplier = 1.0\n", r"not both"),
        ("name = \n", r"not valid TOML"),
    ],
)
def test_bad_scenarios_name_file_and_key(tmp_path, text, message):
    with pytest.raises(ScenarioError, match=message) as err:
        load_scenario(write(tmp_path, text))
    assert "\n" not in str(err.value)
    assert str(err.value).startswith(str(tmp_path / "s.toml"))


def test_missing_scenario_file(tmp_path):
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "absent.toml")


def test_scenario_is_frozen():
    s = scenario_from_dict({"name": "x"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.rounds = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "data, scaling, standardize",
    [
        ("", "robust", True),  # the default
        ("standardize = false\n", "none", False),  # older files keep their meaning
        ("standardize = true\n", "robust", True),
        ('scaling = "zscore"\n', "zscore", True),
        ('scaling = "none"\n', "none", False),
        ('standardize = false\nscaling = "none"\n', "none", False),
    ],
)
def test_standardize_and_scaling_resolve_to_one_meaning(tmp_path, data, scaling, standardize):
    s = load_scenario(write(tmp_path, "[data]\n" + data))
    assert (s.data.scaling, s.data.standardize) == (scaling, standardize)
    again = load_scenario(write(tmp_path, to_toml(s)))  # the resolved file runs the same
    assert (again.data.scaling, again.data.standardize) == (scaling, standardize)


def test_standardize_contradicting_scaling_is_refused(tmp_path):
    with pytest.raises(ScenarioError, match="data.standardize: false contradicts") as err:
        load_scenario(write(tmp_path, '[data]\nstandardize = false\nscaling = "robust"\n'))
    assert "\n" not in str(err.value) and str(err.value).startswith(str(tmp_path / "s.toml"))
    with pytest.raises(ScenarioError, match="data.standardize: true contradicts"):
        load_scenario(write(tmp_path, "[data]\nstandardize = true\n"), ["data.scaling=none"])
