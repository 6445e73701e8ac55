"""Vertical runs get defaults that fit vertical training (two epochs of batch 1024 at
step 0.3) for the keys their file leaves out, and a run that will take over ten
minutes says so at the start with the keys that shorten it."""

import time
import warnings

import pytest

from fedrisk.runs.vertical import (
    LONG_RUN_SECONDS,
    estimated_seconds,
    seconds_per_encryption,
    seconds_per_mulmod,
    warn_if_long,
)
from fedrisk.scenario import VERTICAL_DEFAULTS, resolved_toml, scenario_from_dict

ONLY_CSVS = {
    "data": {"source": "csv"},
    "federation": {
        "kind": "vertical",
        "parties": [
            {"name": "bank", "label": True, "path": "bank.csv"},
            {"name": "telecom", "path": "telecom.csv"},
        ],
    },
}


def test_a_vertical_file_naming_only_its_csvs_gets_the_vertical_defaults():
    s = scenario_from_dict(ONLY_CSVS)
    assert (s.rounds, s.model.batch_size, s.model.learning_rate) == (2, 1024, 0.3)
    assert VERTICAL_DEFAULTS == {"rounds": 2, "model.batch_size": 1024, "model.learning_rate": 0.3}
    # written as used, so the resolved file repeats the run
    assert "rounds = 2" in resolved_toml(s) and "batch_size = 1024" in resolved_toml(s)


def test_given_values_and_horizontal_runs_keep_theirs():
    s = scenario_from_dict({**ONLY_CSVS, "rounds": 7, "model": {"batch_size": 64}})
    assert (s.rounds, s.model.batch_size, s.model.learning_rate) == (7, 64, 0.3)
    h = scenario_from_dict({})
    assert (h.rounds, h.model.batch_size, h.model.learning_rate) == (20, 64, 0.1)


def test_a_long_run_is_announced_with_the_keys_that_shorten_it(monkeypatch):
    monkeypatch.setenv("FEDRISK_CRYPTO_WORKERS", "2")
    s = scenario_from_dict(ONLY_CSVS)
    # 25,000 shared customers (20,000 training), textbook obfuscation at 3072 bits (about
    # 20 ms each), a provider with 10 columns, 7 µs per mulmod, sums over 2 cores
    expected = 2 * 20_000 * (0.02 + (10 * 4 + 1) * 7e-6 / 2)
    assert estimated_seconds(s, 25_000, 0.02, 10, 7e-6) == pytest.approx(expected)
    with pytest.warns(UserWarning) as caught:
        warn_if_long(s, 25_000, 0.02, 10, 7e-6)
    (w,) = caught
    text = str(w.message)
    assert "will take about 13 minutes" in text and "20,000 training customers" in text
    assert "rounds (now 2)" in text and 'privacy.obfuscation = "djn"' in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a short one says nothing
        warn_if_long(s, 25_000, 0.2 * LONG_RUN_SECONDS / 40_000, 10, 7e-6)


def test_the_estimate_measures_this_machine():
    from fedrisk.crypto.paillier import ObfuscatorPool, generate_keypair  # why: this test only

    s = scenario_from_dict({**ONLY_CSVS, "privacy": {"key_bits": 1024, "obfuscation": "djn"}})
    public_key, private_key = generate_keypair(1024)
    per = seconds_per_encryption(public_key, s, private_key)
    # a fresh process's first estimate: the tables and the worker start-up are paid in
    # the warm-up, not counted per encryption (they once made it 100x too high)
    pool = ObfuscatorPool(public_key, "djn", private_key=private_key)
    pool.compute(pool.draw(64), workers=1)
    started = time.perf_counter()
    pool.compute(pool.draw(256), workers=1)
    serial = (time.perf_counter() - started) / 256
    assert 1e-6 < per < 3 * serial
    assert 1e-8 < seconds_per_mulmod(public_key) < 1e-3
