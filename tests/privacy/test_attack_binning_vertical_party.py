"""A data party attacks vertical WOE binning: what it learns about the bank's labels
(review of ``fedrisk.vertical.binning.protocol.WHO_LEARNS_WHAT["data parties"]``).

The party's real view: the ids of the shared training and held-out customers
(``aligned_ids``), its own columns, the bank's groups of its pre-bins
(``bin_groups``) and the WOE of its selected columns' final bins (``woe_values``).

It knows which of its training customers fall in each final bin (n_i), so from a
column's WOE it solves for the defaulters per bin exactly: (n_i − b_i + ε)/(b_i + ε) =
e^woe_i · (G + ε·m)/(B + ε·m), Σ b_i = B, ε ∈ {0, ½} (the smoothing the bank applies
when a bin has no good or no bad); one unknown, B, found by bisection and checked to be
integral. That gives every bin's defaulters, the number of defaulters among the
shared training customers, and — summing the WOE of a customer's bins — a risk score
for every shared customer, training or held out.

WHO_LEARNS_WHAT says: "the WOE of the bins of their own selected columns (each bin's
default rate among the shared training customers); never a label". A bin is not
required to hold several customers or both outcomes when it is the *missing* bin
(min_bin_share and min_bad_share apply to the regular bins only), so a column with a
value missing for one or two shared customers — or one the party blanks on purpose —
gives the party their labels exactly.
"""

from __future__ import annotations

import csv
import shutil
import types
import warnings

import numpy as np
import pytest
from scipy.optimize import brentq
from sklearn.metrics import roc_auc_score

from fedrisk.data.characteristics import load_vertical_characteristics
from fedrisk.models.binning import CategoricalBinning
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.run import run_scenario
from fedrisk.runs.scorecard import binning_params
from fedrisk.scenario import load_scenario
from fedrisk.vertical.binning.party import final_binnings, groups_from_codes, party_prebins
from fedrisk.vertical.binning.protocol import WHO_LEARNS_WHAT
from fedrisk.vertical.protocol import ROWS_KEY
from tests.conftest import SCENARIOS

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:1024-bit Paillier keys")]

SCENARIO = SCENARIOS / "vertical-scorecard-german.toml"
SECRETS = RunSecrets(b"binning-party-attack".ljust(32, b"\0"))
BLANKED = "installment_rate"  # the bureau column the party leaves empty for two customers


def party_view(scenario_path, tmp_path):
    """Run the scenario; return what the data party received (and its own table)."""
    seen: dict = {}

    def spy(msg, context, call_next):
        cfg = msg.content.config_records.get("config", {})
        stage = str(cfg.get("stage", ""))
        if stage in ("align", "groups", "woe"):
            seen[stage] = dict(cfg)
        reply = call_next(msg, context)
        if stage == "labels":
            seen["train"] = context.state[ROWS_KEY]["train"].numpy().copy()
            seen["test"] = context.state[ROWS_KEY]["test"].numpy().copy()
        return reply

    s = load_scenario(scenario_path, ["rounds=1"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_scenario(s, tmp_path / "run", show_progress=False, client_mods=[spy], secrets=SECRETS)
    data = load_vertical_characteristics(s)
    return types.SimpleNamespace(s=s, party=data.parties[0], holder=data.holder, **seen)


def recover_defaulters(n: np.ndarray, woe: np.ndarray) -> tuple[np.ndarray, int] | None:
    """Per bin defaulters and their total, from the bin sizes the party counts itself
    and the WOE it was sent; None if no integral solution (never, below)."""
    N, populated = int(n.sum()), n > 0
    m = int(populated.sum())
    for eps in (0.0, 0.5):

        def bads(B: float, eps: float = eps) -> np.ndarray:
            rho = (N - B + eps * m) / (B + eps * m)
            return np.where(populated, (n + 2 * eps) / (1.0 + np.exp(woe) * rho) - eps, 0.0)

        B = brentq(lambda B: bads(B).sum() - B, 1e-9, N - 1e-9)
        b = bads(B)
        if np.allclose(b, np.round(b), atol=1e-6):
            return np.round(b).astype(np.int64), int(round(B))
    return None


def attack(v):
    """The party's reading of its WOE values: per selected column, (name, bin of each
    training / held-out customer, per-bin size, recovered defaulters)."""
    params = binning_params(v.s)
    prebins, rare = party_prebins(dict(v.party.columns), v.train, params, SECRETS.of("bureau"))
    groups = [groups_from_codes(list(v.groups[f"groups-{j}"])) for j in range(len(prebins))]
    unseen = [int(v.groups[f"unseen-{j}"]) for j in range(len(prebins))]
    missing = [int(v.groups[f"missing-{j}"]) for j in range(len(prebins))]
    final = final_binnings(prebins, groups, unseen, rare, [None if m < 0 else m for m in missing])
    out = []
    for j in v.woe["selected"]:
        b, woe = final[j], np.asarray(v.woe[f"woe-{j}"], dtype=np.float64)
        col = v.party.columns[b.name]
        tr, te = b.assign(col[v.train]), b.assign(col[v.test])
        n = np.bincount(tr, minlength=len(woe))
        out.append((b.name, woe, tr, te, n, recover_defaulters(n, woe)))
    return out


def labels_of(v, rows: np.ndarray) -> np.ndarray:
    """The truth, for scoring the attack (the bank's labels of those customers)."""
    pos = {str(i): k for k, i in enumerate(v.holder.ids)}
    return np.array([v.holder.y[pos[str(v.party.ids[r])]] for r in rows], dtype=np.int64)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    return party_view(SCENARIO, tmp_path_factory.mktemp("vparty"))


def test_the_party_reads_every_bins_defaulters_and_scores_every_shared_customer(shipped):
    """The statement's "each bin's default rate" holds exactly (defaulters per bin, and
    so the number of defaulters among the shared training customers); the score the
    party builds from it ranks customers (AUC below), training and held out alike."""
    v = shipped
    y_tr, y_te = labels_of(v, v.train), labels_of(v, v.test)
    score_tr, score_te = np.zeros(len(y_tr)), np.zeros(len(y_te))
    for name, woe, tr, te, _, recovered in attack(v):
        assert recovered is not None, name
        bads, total = recovered
        assert np.array_equal(bads, np.bincount(tr, weights=y_tr, minlength=len(woe))), name
        assert total == int(y_tr.sum())
        score_tr -= woe[tr]
        score_te -= woe[te]
    auc_tr, auc_te = roc_auc_score(y_tr, score_tr), roc_auc_score(y_te, score_te)
    # measured: about 0.70 on the training customers, 0.61 on the held-out ones
    assert 0.6 < auc_tr < 0.8 and 0.55 < auc_te < 0.7, (auc_tr, auc_te)


def test_who_learns_what_says_the_party_can_score_shared_customers():
    """FINDING if it fails: the statement stops at per-bin default rates and "never a
    label"; it does not say that the party also learns the bank's number of defaulters
    among the shared customers and can score each of them (the test above)."""
    said = WHO_LEARNS_WHAT["data parties"].lower()
    assert "score" in said or "predict" in said or "auc" in said, said


@pytest.fixture(scope="module")
def blanked(shipped, tmp_path_factory):
    """The same federation, the bureau's file with BLANKED empty for two shared training
    customers who did not default (the bank's split is its own secret's, the same as in
    ``shipped``: the same ids and secrets)."""
    folder = tmp_path_factory.mktemp("vparty-blank")
    shutil.copy(SCENARIO, folder / SCENARIO.name)
    shutil.copytree(SCENARIOS / "data", folder / "data")
    v = shipped
    y_tr = labels_of(v, v.train)
    targets = {str(v.party.ids[r]) for r in v.train[y_tr == 0][:2]}
    path = folder / "data" / "german-style-bureau.csv"
    rows = list(csv.DictReader(open(path)))
    for r in rows:
        if r["id"] in targets:
            r[BLANKED] = ""
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return party_view(folder / SCENARIO.name, folder), targets


def test_no_bin_gives_the_party_a_label(blanked):
    """FINDING if it fails: the missing bin of a selected column holds two customers,
    and its WOE tells the party neither defaulted: two labels, exactly."""
    v, targets = blanked
    learned = {}
    for _name, _woe, tr, _te, n, recovered in attack(v):
        bads, _ = recovered
        for k in np.flatnonzero((n > 0) & ((bads == 0) | (bads == n))):
            ids = [str(v.party.ids[r]) for r in v.train[tr == k]]
            learned.update({i: int(bads[k] > 0) for i in ids})
    assert BLANKED in [a[0] for a in attack(v)]  # the column is still selected
    assert not learned, (
        f"the party learned the labels of {len(learned)} shared training customers: "
        f"{learned} (targets {sorted(targets)})"
    )


def test_groups_of_an_unselected_text_column_do_not_rank_its_categories(tmp_path):
    """FINDING if it fails (unstated): the bank numbers a text column's groups by
    default rate, lowest risk first (``categorical_groups``), and sends the numbering
    for every column, selected or not: for a column the selection drops (no WOE sent),
    the party still learns which of its categories default more."""
    folder = tmp_path / "few"
    folder.mkdir()
    shutil.copy(SCENARIO, folder / SCENARIO.name)
    shutil.copytree(SCENARIOS / "data", folder / "data")
    with open(folder / SCENARIO.name, "a") as fh:
        fh.write("\n[selection]\nmax_features = 3\n")
    v = party_view(folder / SCENARIO.name, folder)
    y_tr = labels_of(v, v.train)
    prebins, rare = party_prebins(
        dict(v.party.columns), v.train, binning_params(v.s), SECRETS.of("bureau")
    )
    ranked = {}
    for j, b in enumerate(prebins):
        if j in v.woe["selected"] or not isinstance(b, CategoricalBinning):
            continue
        groups = groups_from_codes(list(v.groups[f"groups-{j}"]))
        if len(groups) < 3:
            continue
        codes = b.assign(v.party.columns[b.name][v.train])
        rates = [np.mean(y_tr[np.isin(codes, g)]) for g in groups]  # group k's default rate
        if all(x < y for x, y in zip(rates, rates[1:])):
            ranked[b.name] = [round(float(r), 3) for r in rates]
    assert not ranked, f"unselected, yet ranked by default rate (groups in order): {ranked}"
