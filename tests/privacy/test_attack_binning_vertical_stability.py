"""The bank reads a data party's ``stability`` reply (vertical WOE binning).

Each party sends, per column, the population stability index of its final bins between
the shared training and held-out customers, a float64. The bank knows the training
customers' count per final bin (it decrypted them) and the number of held-out
customers (its own split). For a column with few bins it tries every held-out count
vector: PSI as a float is so fine that one vector fits, so the bank learns the number
of *held-out* customers in each of the party's bins, which WHO_LEARNS_WHAT does not say
("each column's stability index"). Aggregate counts, as it learns for the training
customers; low severity, but unstated. (Rounding the index, e.g. to 3 decimals, which
is all the selection rule needs, would leave many vectors.)
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fedrisk.data.characteristics import load_vertical_characteristics
from fedrisk.models.binning import stability_index
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.run import run_scenario
from fedrisk.runs.scorecard import binning_params
from fedrisk.scenario import load_scenario
from fedrisk.vertical.binning.party import final_binnings, groups_from_codes, party_prebins
from fedrisk.vertical.protocol import ROWS_KEY
from tests.conftest import SCENARIOS

STABILITY_SECRETS = RunSecrets(b"binning-stability".ljust(32, b"\0"))
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:1024-bit Paillier keys")]

SCENARIO = SCENARIOS / "vertical-scorecard-german.toml"


def held_out_vectors(train_counts: np.ndarray, n_test: int, psi: float) -> np.ndarray:
    """Every held-out count vector (k ≤ 4 bins) whose index with the training shares is
    ``psi`` as sent (3 decimals; as the party computes it: shares floored at 1e-4)."""
    k = len(train_counts)
    e = np.maximum(train_counts / train_counts.sum(), 1e-4)
    grids = np.meshgrid(*[np.arange(n_test + 1)] * (k - 1), indexing="ij")
    c = np.stack([g.ravel() for g in grids], axis=1)
    c = c[c.sum(axis=1) <= n_test]
    c = np.column_stack([c, n_test - c.sum(axis=1)])
    a = np.maximum(c / n_test, 1e-4)
    got = np.sum((a - e) * np.log(a / e), axis=1)
    return c[np.round(got, 3) == psi]


def test_the_stability_index_does_not_give_the_held_out_counts_per_bin(tmp_path):
    """FINDING if it fails (unstated leak)."""
    seen: dict = {}

    def spy(msg, context, call_next):
        cfg = msg.content.config_records.get("config", {})
        reply = call_next(msg, context)
        if str(cfg.get("stage", "")) == "groups":
            seen["groups"] = dict(cfg)
            seen["psi"] = [float(p) for p in reply.content["config"]["psi"]]
            seen["train"] = context.state[ROWS_KEY]["train"].numpy().copy()
            seen["test"] = context.state[ROWS_KEY]["test"].numpy().copy()
        return reply

    s = load_scenario(SCENARIO, ["rounds=1"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_scenario(
            s,
            tmp_path / "run",
            show_progress=False,
            client_mods=[spy],
            secrets=STABILITY_SECRETS,
        )
    party = load_vertical_characteristics(s).parties[0]
    prebins, rare = party_prebins(
        dict(party.columns), seen["train"], binning_params(s), STABILITY_SECRETS.of("bureau")
    )
    g = seen["groups"]
    final = final_binnings(
        prebins,
        [groups_from_codes(list(g[f"groups-{j}"])) for j in range(len(prebins))],
        [int(g[f"unseen-{j}"]) for j in range(len(prebins))],
        rare,
        [
            None if int(g[f"missing-{j}"]) < 0 else int(g[f"missing-{j}"])
            for j in range(len(prebins))
        ],
    )
    pinned = {}
    for j, b in enumerate(final):
        if b.n_bins() > 4:
            continue
        values = party.columns[b.name]
        # what the bank holds: training counts per final bin (decrypted), held-out size
        train = np.bincount(b.assign(values[seen["train"]]), minlength=b.n_bins())
        truth = np.bincount(b.assign(values[seen["test"]]), minlength=b.n_bins())
        # the party sends the index to 3 decimals
        assert round(stability_index(train / train.sum(), truth / truth.sum()), 3) == seen["psi"][j]
        fits = held_out_vectors(train, len(seen["test"]), seen["psi"][j])
        if len(fits) == 1 and np.array_equal(fits[0], truth):
            pinned[b.name] = truth.tolist()
    assert not pinned, f"the bank reads the held-out customers per bin of {pinned}"
