"""Attack (a): the aggregator regenerates the DP-SGD noise a bank added.

Before each party had its own secret, a bank's DP-SGD generator was
``default_rng([seed, 1, party, round])`` with the scenario's public seed: the aggregator,
knowing the bank's row count and sample rate from summary.json, replayed the Poisson
sampling draws and regenerated all 28 noise vectors a bank added in one round (max
difference 0.0), i.e. it could strip the noise off the bank's update.

Here the aggregator has only its view: the update the bank sends it (captured as it
leaves the bank) and the run's public files. It re-runs the old seed-based derivation;
the noise it regenerates must now be uncorrelated with what the bank really added.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import fedrisk.privacy.mechanisms as mechanisms
from fedrisk.data.prepare import prepare_horizontal
from fedrisk.horizontal.job import client_rng
from fedrisk.horizontal.setup import bank_job
from fedrisk.horizontal.training import local_update
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.run import run_scenario
from fedrisk.scenario import load_scenario
from tests.conftest import SCENARIOS, read_summary

pytestmark = pytest.mark.slow

PARTY, ROUND = 0, 1


def regenerate_old_noise(
    seed: int, party: int, rnd: int, n_rows: int, steps: int, std: float, dim: int
):
    """The attacker's replay of the old derivation: per step, the Poisson sampling
    draws (n uniforms), then the Gaussian noise vector."""
    rng = np.random.default_rng([seed, 1, party, rnd])
    out = []
    for _ in range(steps):
        rng.random(n_rows)  # the sampling draws (rows kept: < q)
        out.append(rng.standard_normal(dim) * std)
    return np.stack(out)


def noise_the_bank_added(monkeypatch, job, party, params, rnd):
    """Ground truth (the bank's side, not the attacker's): its update recomputed with
    the noise recorded as it is drawn."""
    drawn = []
    real = mechanisms.gaussian_noise

    def recording(rng, shape, std):
        drawn.append(real(rng, shape, std))
        return drawn[-1]

    monkeypatch.setattr(mechanisms, "gaussian_noise", recording)
    delta = local_update(job, party, params, rnd)
    monkeypatch.setattr(mechanisms, "gaussian_noise", real)
    return delta, np.stack(drawn)


def test_the_aggregator_cannot_regenerate_a_banks_dp_sgd_noise(tmp_path, monkeypatch):
    s = load_scenario(
        SCENARIOS / "quickstart.toml", ["rounds=1", "privacy.dp=sample", "privacy.target_epsilon=3"]
    )
    sent = {}

    def capture(msg, context, call_next):  # what reaches the aggregator from bank 1
        reply = call_next(msg, context)
        party = int(context.node_config["partition-id"])
        cfg = msg.content["config"] if msg.has_content() and "config" in msg.content else {}
        rnd = int(cfg.get("server-round", 0))
        if party == PARTY and rnd == ROUND and reply.has_content() and "update" in reply.content:
            sent["delta"] = reply.content["update"]["delta"].numpy()
            sent["global"] = msg.content["arrays"]["params"].numpy()
        return reply

    secrets = RunSecrets()  # the default: fresh secrets from the OS
    out = tmp_path / "run"
    run_scenario(s, out, show_progress=False, client_mods=[capture], secrets=secrets)

    # the attacker's view: public files and the update it received
    summary = read_summary(out)
    public = load_scenario(out / "scenario.toml")
    name = list(summary["data"]["parties"])[PARTY]
    budget = summary["privacy"]["per_party"][name]
    std = summary["privacy"]["noise_multiplier"] * summary["privacy"]["clip_norm"]
    guess = regenerate_old_noise(
        public.seed,
        PARTY,
        ROUND,
        summary["data"]["parties"][name]["rows"],
        budget["steps_per_round"],
        std,
        len(sent["delta"]),
    )

    # ground truth from the bank's side: the update recomputed is the one it sent
    job = bank_job(s, prepare_horizontal(s), None, secrets)
    delta, actual = noise_the_bank_added(monkeypatch, job, PARTY, sent["global"], ROUND)
    assert np.array_equal(delta, sent["delta"])
    assert actual.shape == guess.shape and len(actual) >= 20

    r = np.corrcoef(guess.ravel(), actual.ravel())[0, 1]
    n = actual.size
    # Fisher z: |r| within 4 standard errors of 0 (independent noise), and far from 1
    assert abs(math.atanh(r)) * math.sqrt(n - 3) < 4, r
    assert np.abs(guess - actual).max() > std  # not one vector regenerated

    # control: against the old derivation the very same replay is exact
    old = []
    real = mechanisms.gaussian_noise

    def recording(rng, shape, std_):
        old.append(real(rng, shape, std_))
        return old[-1]

    monkeypatch.setattr(mechanisms, "gaussian_noise", recording)
    bank = job.banks[PARTY]
    mechanisms.dp_sgd_epochs(
        sent["global"],
        bank.X,
        bank.y,
        epochs=s.model.local_epochs,
        sample_rate=budget["sample_rate"],
        clip_norm=summary["privacy"]["clip_norm"],
        noise_multiplier=summary["privacy"]["noise_multiplier"],
        learning_rate=s.model.learning_rate,
        l2=s.model.l2,
        rng=client_rng(s.seed, PARTY, ROUND),
    )
    assert np.abs(np.stack(old) - guess).max() == 0.0
    print(f"noise vectors: {len(actual)}, r(regenerated, actual) = {r:.4f}; old code: max diff 0.0")
