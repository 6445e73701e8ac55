"""The run folder's scenario.toml holds only the keys that applied to the run, with the
values it used; it reloads to the same run; and the key reference (README table,
`fedrisk keys`) states the checks the loader really applies."""

from __future__ import annotations

import re
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from fedrisk.cli import main
from fedrisk.errors import ScenarioError
from fedrisk.scenario import (
    APPLIES,
    Scenario,
    allowed_text,
    applies,
    key_reference,
    load_scenario,
    resolved_toml,
)
from tests.conftest import SCENARIOS

README = Path(__file__).parent.parent / "README.md"
HORIZONTAL_ONLY = {
    "federation": {"banks", "partition", "alpha", "min_rows", "min_parties", "dropout"},
    "privacy": {"aggregation", "update_range", "key", "secagg_threshold"},
    "model": {"local_epochs", "proximal_mu", "server_optimizer", "early_stopping"},
}


def flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def resolved(path: Path, *overrides: str) -> dict:
    return tomllib.loads(resolved_toml(load_scenario(path, list(overrides))))


def test_a_vertical_file_has_no_horizontal_keys():
    tree = resolved(SCENARIOS / "vertical.toml")
    for section, keys in HORIZONTAL_ONLY.items():
        assert not keys & set(tree.get(section, {})), (section, tree.get(section))
    assert "customers" not in tree["data"] and "path" not in tree["data"]
    assert all("signal" not in p and "path" not in p for p in tree["federation"]["parties"])
    # what the vertical run used: Paillier with these keys, the bank's Platt step
    assert tree["privacy"]["key_bits"] == 2048 and tree["privacy"]["obfuscation"]
    assert tree["model"]["calibration"] == "platt"


def test_a_plain_horizontal_file_has_no_vertical_or_unused_keys():
    tree = resolved(SCENARIOS / "quickstart.toml")
    assert "parties" not in tree["federation"]
    unused = {"key_bits", "obfuscation", "label_leakage_attack", "target_epsilon", "delta"}
    assert not unused & set(tree["privacy"]), tree["privacy"]
    assert "customers" not in tree["data"] and "standardize" not in tree["data"]
    assert "patience" not in tree["model"] and "server_beta_1" not in tree["model"]


def test_mechanism_defaults_are_written_as_used():
    dp = resolved(SCENARIOS / "quickstart.toml", "privacy.dp=sample", "privacy.target_epsilon=3")
    assert dp["privacy"]["clip_norm"] == 4.0 and dp["privacy"]["delta"] == 1e-5
    sec = resolved(SCENARIOS / "secagg.toml")
    assert sec["privacy"]["secagg_threshold"] == pytest.approx(2 / 3)
    assert "key_bits" not in sec["privacy"] and sec["privacy"]["update_range"] == 8.0
    syn = resolved(SCENARIOS / "vertical-synthetic.toml")
    assert syn["data"]["customers"] and all("signal" in p for p in syn["federation"]["parties"])


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.name)
def test_the_resolved_file_reloads_to_the_same_run(tmp_path, path):
    s = load_scenario(path)
    again_path = tmp_path / path.name  # beside its data, as the run folder's copy is
    if (path.parent / "data").is_dir():  # csv scenarios name files relative to themselves
        (tmp_path / "data").symlink_to(path.parent / "data")
    again_path.write_text(resolved_toml(s))
    again = load_scenario(again_path)
    for key in flat(s.to_dict()):
        if applies(s, key):
            assert flat(again.to_dict()).get(key) == flat(s.to_dict())[key] or (
                key == "privacy.clip_norm" or key == "privacy.secagg_threshold"
            ), key


def test_every_rule_names_a_real_key():
    keys = {k for k, *_ in key_reference()}
    assert set(APPLIES) - {"federation.parties.signal", "federation.parties.path"} <= keys


def test_readme_states_the_real_allowed_values():
    """README's key table: every key, each 'allowed' cell beginning with what the
    loader checks (caps included)."""
    rows = {}
    text = README.read_text(encoding="utf-8")
    table = text[text.index("| key | default | allowed | meaning |") :].split("\n\n")[0]
    for line in table.splitlines():
        m = re.match(r"\| `([a-z_.0-9]+)` \|[^|]*\|\s*([^|]*?)\s*\|", line)
        if m:
            rows[m.group(1)] = m.group(2).strip()
    for key, _, allowed, _ in key_reference():
        assert key in rows, f"README's key table has no row for {key}"
        assert rows[key].startswith(allowed), (key, rows[key], allowed)


def test_allowed_text_reads_the_declared_checks():
    f = {f.name: f for f in fields(Scenario)}
    assert allowed_text(f["rounds"]) == "1 – 10^5"
    assert allowed_text(f["seed"]) == "0 – 2^63 − 1"


def test_fedrisk_keys_prints_the_reference(capsys):
    assert main(["keys", "--kind", "vertical"]) == 0
    out = capsys.readouterr().out
    assert "privacy.obfuscation" in out and "federation.banks" not in out
    assert main(["keys"]) == 0
    out = capsys.readouterr().out
    assert "federation.banks" in out and "1 – 10^5" in out


def test_an_override_error_names_the_override_not_the_file(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('name = "x"\n[model]\nl2 = -1\n')
    with pytest.raises(ScenarioError) as err:
        load_scenario(p, ["federation.banks=0"])
    lines = str(err.value).splitlines()
    assert sorted(lines) == sorted(
        [
            f"{p}: model.l2: must be >= 0, got -1.0",
            "--set federation.banks=0: federation.banks: must be >= 1, got 0",
        ]
    )
