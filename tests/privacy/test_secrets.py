"""Each party's own secret: derivation, the secrets file, and what --secrets changes.

With ``--secrets FILE`` two runs are identical; without it, two DP runs draw different
noise (another model) but spend the same ε; the file is owner-only and never lands in
the run folder."""

from __future__ import annotations

import json
import stat

import numpy as np
import pytest

from fedrisk.cli import main
from fedrisk.privacy.secrets import (
    OS_ENTROPY,
    SECRETS_FILE,
    PartySecret,
    RunSecrets,
    load_secrets_file,
)
from tests.conftest import SCENARIOS, read_summary, without_timings


def test_draws_are_deterministic_per_secret_purpose_and_numbers():
    a, b = PartySecret(bytes(32)), PartySecret(bytes(range(32)))
    same = a.rng("dp", 1, 2).standard_normal(5)
    assert np.array_equal(same, a.rng("dp", 1, 2).standard_normal(5))
    for other in (a.rng("dp", 1, 3), a.rng("dp", 12), a.rng("psi", 1, 2), b.rng("dp", 1, 2)):
        assert not np.array_equal(same, other.standard_normal(5))
    assert a.key.hex() not in repr(a)  # never printed
    with pytest.raises(ValueError):
        PartySecret(b"short")


def test_run_secrets_from_a_master_or_the_os():
    master = RunSecrets(bytes(range(32)))
    assert master.mode == SECRETS_FILE
    assert master.of("bank_1") == RunSecrets(bytes(range(32))).of("bank_1")
    assert master.of("bank_1") != master.of("bank_2")
    assert master.derived("point-1").of("bank_1") != master.of("bank_1")
    fresh = RunSecrets()
    assert fresh.mode == OS_ENTROPY
    assert fresh.of("bank_1") == fresh.of("bank_1")  # one secret per party per run
    assert fresh.of("bank_1") != RunSecrets().of("bank_1")
    kept = RunSecrets.restored(OS_ENTROPY, {"bank_1": fresh.of("bank_1")})
    assert kept.of("bank_1") == fresh.of("bank_1") and kept.mode == OS_ENTROPY


def test_the_secrets_file_is_created_owner_only_and_reused(tmp_path):
    path = tmp_path / "keys" / "secrets.json"
    first = load_secrets_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(bytes.fromhex(json.loads(path.read_text())["master"])) == 32
    assert load_secrets_file(path).of("bank_1") == first.of("bank_1")
    path.write_text("{}")
    from fedrisk.errors import InputError

    with pytest.raises(InputError, match="not a fedrisk secrets file"):
        load_secrets_file(path)


def _run(out, *extra):
    args = ["run", str(SCENARIOS / "quickstart.toml"), "--out", str(out), "--quiet"]
    sets = ["rounds=3", "privacy.dp=sample", "privacy.target_epsilon=3"]
    assert main([*args, *(a for s in sets for a in ("--set", s)), *extra]) == 0
    return read_summary(out)


def _files_text(folder) -> str:
    return "".join(
        p.read_bytes().hex() + p.read_text(errors="replace")
        for p in folder.rglob("*")
        if p.is_file()
    )


@pytest.mark.slow
def test_with_a_secrets_file_two_dp_runs_are_identical(tmp_path):
    secrets = tmp_path / "private" / "secrets.json"
    a = _run(tmp_path / "a", "--secrets", str(secrets))
    b = _run(tmp_path / "b", "--secrets", str(secrets))
    assert without_timings(a) == without_timings(b)
    assert a["privacy"]["randomness"] == "secrets-file"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    master = json.loads(secrets.read_text())["master"]
    bank_secret = load_secrets_file(secrets).of("bank_1").hex()
    for run in ("a", "b"):  # neither the master nor a party's secret is published
        text = _files_text(tmp_path / run)
        assert master not in text and bank_secret not in text
        assert not list((tmp_path / run).rglob("secrets*"))


@pytest.mark.slow
def test_without_it_two_dp_runs_differ_in_noise_not_in_epsilon(tmp_path):
    a = _run(tmp_path / "a")
    b = _run(tmp_path / "b")
    assert a["privacy"]["randomness"] == b["privacy"]["randomness"] == "os-entropy"
    assert a["privacy"]["epsilon"] == b["privacy"]["epsilon"]
    assert a["federated"]["auc"] != b["federated"]["auc"]  # other noise, another model
    model_a = json.loads((tmp_path / "a" / "model.json").read_text())
    model_b = json.loads((tmp_path / "b" / "model.json").read_text())
    assert model_a != model_b


def test_a_secrets_file_inside_the_run_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "run",
            str(SCENARIOS / "quickstart.toml"),
            "--out",
            str(out),
            "--quiet",
            "--secrets",
            str(out / "secrets.json"),
        ]
    )
    assert code == 2 and "inside the run folder" in capsys.readouterr().err
    assert not out.exists()


def test_resume_takes_no_secrets_file(tmp_path, capsys):
    code = main(["run", "--resume", str(tmp_path / "r"), "--secrets", str(tmp_path / "s.json")])
    assert code == 2 and "--secrets" in capsys.readouterr().err
