"""Attack (b): a data party strips the bank's label-DP noise off its gradients.

Before each party had its own secret, the bank's label-DP noise was drawn from
``default_rng([seed, 12, epoch, batch_start, party])`` with the scenario's public seed.
A data party regenerated it and subtracted it from the gradient it unmasks, and label
DP was gone: label attack AUC 0.57 → 1.00 on 500 synthetic customers, batch 1, ε = 1.

Here the data party has only its view: the messages it receives (the aligned ids, the
rows of each batch, the unmasked gradient it applies to its own weights), its own
columns and the run's public files. It re-runs the old derivation to "denoise"; its
label attack must now be at chance.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from fedrisk.data.scaling import RobustScaler
from fedrisk.data.vertical import load_vertical
from fedrisk.privacy.mechanisms import clip_rows
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.run import run_scenario
from fedrisk.scenario import load_scenario
from fedrisk.vertical.bank import label_noise
from fedrisk.vertical.protocol import MODEL_KEY, SCALER_KEY
from tests.conftest import read_summary

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:1024-bit Paillier keys")]

SCENARIO = """name = "label-dp-attack"
seed = 11
rounds = 1
[data]
source = "synthetic"
customers = 500
features_per_source = 3
overlap = 1.0
test_fraction = 0.2
[federation]
kind = "vertical"
[[federation.parties]]
name = "bank"
label = true
signal = 1.0
[[federation.parties]]
name = "telecom"
signal = 1.0
[model]
learning_rate = 0.01
batch_size = 1
[privacy]
key_bits = 1024
obfuscation = "djn"
dp = "label"
target_epsilon = 1.0
"""


def bootstrap_auc(y, score, rng, n=1000):
    idx = rng.integers(0, len(y), size=(n, len(y)))
    aucs = [roc_auc_score(y[i], score[i]) for i in idx if 0 < y[i].sum() < len(i)]
    return np.percentile(aucs, [2.5, 97.5])


def test_the_data_party_cannot_strip_the_label_dp_noise(tmp_path):
    (tmp_path / "s.toml").write_text(SCENARIO)
    s = load_scenario(tmp_path / "s.toml")
    seen = {"grads": [], "rows": [], "w": []}

    def party_view(msg, context, call_next):  # everything here the party holds anyway
        cfg = msg.content["config"] if "config" in msg.content else {}
        before = context.state[MODEL_KEY]["w"].numpy() if MODEL_KEY in context.state else None
        reply = call_next(msg, context)
        if cfg.get("stage") == "align":
            seen["train_ids"] = list(cfg["train-ids"])
            seen["scaler"] = [
                context.state[SCALER_KEY][k].numpy()
                for k in ("clip_low", "clip_high", "mean", "scale")
            ]
        if "unmasked-pending" in cfg:  # its weights moved by lr·(g + l2·w): read g back
            after = context.state[MODEL_KEY]["w"].numpy()
            m = s.model
            seen["grads"].append((before - after) / m.learning_rate - m.l2 * before)
        batch_scores = cfg.get("purpose") != "calibration"  # not the request after training
        if cfg.get("stage") == "scores" and cfg.get("split", "train") == "train" and batch_scores:
            seen["w"].append(context.state[MODEL_KEY]["w"].numpy())  # what u_k used
        if cfg.get("stage") == "gradient":
            seen["rows"].append(list(cfg["rows"]))
        return reply

    # a fixed master secret keeps this statistical test deterministic; the attacker does
    # not have it (the old derivation uses the public seed only)
    secrets = RunSecrets(bytes(range(32)))
    out = tmp_path / "run"
    run_scenario(s, out, show_progress=False, client_mods=[party_view], secrets=secrets)
    summary = read_summary(out)
    p = summary["privacy"]
    assert p["unit"] == "label" and p["epsilon"] <= 1.0

    # the party's own columns, scaled and clipped as it sends them
    tables = load_vertical(s)
    party = tables.data_parties[0]
    pos = {str(i): k for k, i in enumerate(party.ids)}
    train = np.array([pos[i] for i in seen["train_ids"]])
    X = clip_rows(RobustScaler(*seen["scaler"]).transform(party.X[train]), p["clip_norm"])
    rows = np.array([r[0] for r in seen["rows"]])  # batch 1: one customer per gradient
    grads = np.stack(seen["grads"])
    assert len(grads) == len(rows) == len(train)

    # the old derivation, from the public seed: batch_start = the batch's index
    z_c = p["noise_multiplier"] * p["clip_norm"]
    old = np.stack(
        [
            np.random.default_rng([s.seed, 12, 1, start, 0]).normal(0.0, z_c, X.shape[1])
            for start in range(len(rows))
        ]
    )

    # the party's own partial score of each customer when its batch was scored
    own_u = np.einsum("ij,ij->i", X[rows], np.stack(seen["w"]))

    def label_scores(g):
        """g = d_i·x_i (+ noise) with d_i = (u_bank + u_own)/4 − y'/2: read d_i off g,
        take out the party's own share of the score, and what is left falls with y."""
        x = X[rows]
        d = np.einsum("ij,ij->i", g, x) / np.maximum(np.einsum("ij,ij->i", x, x), 1e-12)
        return -(d - own_u / 4)

    holder = tables.holder
    label = dict(zip(map(str, holder.ids), holder.y))
    y = np.array([label[seen["train_ids"][r]] for r in rows])
    noisy_auc = roc_auc_score(y, label_scores(grads))
    denoised = grads - old
    auc = roc_auc_score(y, label_scores(denoised))
    lo, hi = bootstrap_auc(y, label_scores(denoised), np.random.default_rng(0))
    assert auc <= 0.55 and lo <= 0.5 <= hi, (auc, lo, hi)

    # control: with the noise the bank really drew (its secret; the old code let anyone
    # regenerate it) the same denoising recovers most labels
    true = np.stack(
        [
            label_noise(secrets_dp(p), secrets.of(holder.name), 1, start, 0, X.shape[1])
            for start in range(len(rows))
        ]
    )
    # (not 1.00: the bank noises its own update too, which blurs its share of the score)
    assert roc_auc_score(y, label_scores(grads - true)) > 0.75
    print(
        f"customers {len(y)}: label AUC noisy {noisy_auc:.3f}, old-derivation denoised "
        f"{auc:.3f} (95% CI {lo:.3f}-{hi:.3f}), true noise removed "
        f"{roc_auc_score(y, label_scores(grads - true)):.3f}"
    )


def secrets_dp(privacy: dict):
    """The public DP parameters, shaped as label_noise reads them."""

    class Plan:  # what label_noise reads from the DP plan
        noise_multiplier = privacy["noise_multiplier"]
        clip_norm = privacy["clip_norm"]

    return Plan
