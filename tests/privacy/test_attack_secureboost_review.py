"""An independent review of SecureBoost's privacy claims, attack by attack.

Every attack runs on one attacker's real view: the messages that party receives (a
Flower mod records a data party's; for the bank, what its own code computed from what
it received: the decrypted histograms, its trees and its g, h) plus the run folder.
The simulator's ground truth (every party's rows, its secret) is used only to score an
attack, never inside one.

What each test shows (HOLDS: a claim that holds, with a test beside it showing the
attack would work without the defence; ADMITTED: a leak who_learns_what states, shown
by the attack):

- public summary names no data-party column (HOLDS); per-column importance, kept in the
  owner-only model/importance.json, would name every split id (the attack);
- the bank groups a party's split ids into unnamed columns in bin order (ADMITTED);
- a data party learns the partition every split makes, held-out customers included,
  but not which side is "≤" (ADMITTED; the side hidden by the bank's coin);
- model/ is owner-only (HOLDS), since its thresholds and leaf values would give the
  bank the cuts and a data party default counts;
- rounds.csv's per-tree AUC gives a data party held-out default counts on each side of
  its own splits (ADMITTED);
- the g/h ciphertexts hide equal gradients (HOLDS; reused obfuscators would not);
- a plaintext run says the parties read g and h (HOLDS);
- every protective draw comes from its own party's secret (HOLDS).
"""

from __future__ import annotations

import json
import os
import stat
import warnings
from dataclasses import dataclass, field

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.special import expit

from fedrisk.crypto.paillier import ObfuscatorPool
from fedrisk.models.boosting import column_and_bin, gh_integers
from fedrisk.privacy.secrets import OS_ENTROPY, PartySecret, RunSecrets
from fedrisk.runs.secureboost import (
    complete_secureboost,
    federate_secureboost,
    who_learns_what,
)
from fedrisk.runs.vertical import prepare_vertical
from fedrisk.vertical.secureboost import bank as bank_module
from fedrisk.vertical.secureboost.party import split_table
from fedrisk.vertical.secureboost.protocol import BINS_KEY
from tests.vertical.test_secureboost import scenario

pytestmark = [pytest.mark.filterwarnings("ignore:1024-bit Paillier keys"), pytest.mark.slow]

MASTER = b"secureboost-review".ljust(32, b"\0")


def _plain(content) -> tuple[dict, dict]:
    """A message's config and every array in it, as plain Python/numpy."""
    cfg = dict(content.config_records["config"]) if "config" in content.config_records else {}
    arrays = {k: a.numpy().copy() for rec in content.array_records.values() for k, a in rec.items()}
    return cfg, arrays


@dataclass
class View:
    s: object
    setup: object
    recorder: object
    outcome: object
    folder: object = None
    summary: dict | None = None
    # data party index -> [(stage, config, arrays received, arrays sent back, state)]
    party: dict = field(default_factory=dict)
    # the bank's own view: (tree, assignment, build, decrypted sums per party) per level
    bank_sums: list = field(default_factory=list)
    bank_gh: dict = field(default_factory=dict)  # tree -> (tree rows, g, h)


def capture(s, secrets: RunSecrets, folder=None) -> View:
    """One run; records what each data party received and sent, and what the bank
    decrypted; writes the run folder to ``folder`` when given."""
    party: dict = {}
    bank_sums: list = []
    bank_gh: dict = {}

    def spy(msg, context, call_next):
        reply = call_next(msg, context)
        k = int(context.node_config["partition-id"])
        cfg, arrays = _plain(msg.content)
        _, sent = _plain(reply.content)
        state = {}
        if BINS_KEY in context.state:
            state["split-ids"] = context.state[BINS_KEY]["split-ids"].numpy().copy()
        party.setdefault(k, []).append((str(cfg.get("stage", "")), cfg, arrays, sent, state))
        return reply

    sums, send_gh = bank_module.PartySources.sums, bank_module.PartySources.send_gh

    def bank_sees_sums(self, assignment, build):
        out = sums(self, assignment, build)
        bank_sums.append((self.tree, assignment.copy(), list(build), out))
        return out

    def bank_sends_gh(self, tree, rows, g, h, cipher):
        bank_gh[tree] = (rows.copy(), g.copy(), h.copy())
        return send_gh(self, tree, rows, g, h, cipher)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bank_module.PartySources, "sums", bank_sees_sums)
        mp.setattr(bank_module.PartySources, "send_gh", bank_sends_gh)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            setup = prepare_vertical(s, None, secrets)
        recorder, outcome, wall = federate_secureboost(
            s, setup, show_progress=False, client_mods=[spy]
        )
    view = View(s, setup, recorder, outcome, party=party, bank_sums=bank_sums, bank_gh=bank_gh)
    if folder is not None:
        mask = os.umask(0o022)  # a common umask, so "as readable as summary.json" means something
        try:
            view.summary = complete_secureboost(folder, s, setup, recorder, outcome, wall, 0.0)
        finally:
            os.umask(mask)
        view.folder = folder
    return view


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("secureboost-review")
    return capture(scenario(), RunSecrets(MASTER), folder)


@pytest.fixture(scope="module")
def stump(tmp_path_factory):
    """A one-stump run (one tree of depth 1) with its run folder."""
    folder = tmp_path_factory.mktemp("secureboost-stump")
    s = scenario("secureboost.trees=1", "secureboost.max_depth=1")
    return capture(s, RunSecrets(MASTER), folder)


# --- ground truth (scoring only) ---------------------------------------------------------


def _rows_of(table, ids) -> np.ndarray:
    pos = {str(i): k for k, i in enumerate(table.ids)}
    return np.array([pos[str(i)] for i in ids], dtype=np.int64)


def truth_candidates(view: View, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(column, bin) of each split id of data party k (0-based), from its secret."""
    p = view.setup.parties.parties[k]
    rows = _rows_of(p, view.outcome.train_ids)
    bins, split_ids = split_table(p, rows, view.s.secureboost.max_bins, k)
    cand = np.argsort(split_ids)
    cb = [column_and_bin(bins.candidates_per_feature, int(c)) for c in cand]
    return np.array([c for c, _ in cb]), np.array([b for _, b in cb])


def truth_left(view: View, src: int, sid: int, which: str, positions: np.ndarray) -> np.ndarray:
    """Whether each customer (train or test positions) falls left of source ``src``'s
    split ``sid``: the splitting party's own feature against its own threshold."""
    ids = view.outcome.train_ids if which == "train" else view.outcome.test_ids
    if src == 0:
        table = view.setup.tables.holder
        j, thr = view.outcome.bank_bins.candidate(sid)
    else:
        table = view.setup.parties.parties[src - 1]
        bins, split_ids = split_table(
            table, _rows_of(table, view.outcome.train_ids), view.s.secureboost.max_bins, src - 1
        )
        j, thr = bins.candidate(int(np.argsort(split_ids)[sid]))
    X = table.X[_rows_of(table, ids)]
    return X[positions, j] <= thr


def y_train(view: View) -> np.ndarray:
    holder = view.setup.tables.holder
    return holder.y[_rows_of(holder, view.outcome.train_ids)]


# --- a data party's view, level by level -------------------------------------------------


def membership_levels(view: View, k: int) -> dict[int, tuple[np.ndarray, list[np.ndarray]]]:
    """Data party k's node_membership messages: per tree, (the tree's rows as train
    positions, the node of every tree row at each level)."""
    out: dict[int, tuple[np.ndarray, list[np.ndarray]]] = {}
    for stage, cfg, arrays, _, _ in view.party[k]:
        if stage != "histograms":
            continue
        t = int(cfg["server-round"])
        if "tree-rows" in arrays:
            out[t] = (arrays["tree-rows"], [])
        out[t][1].append(arrays["assign"])
    return out


def inferred_splits(levels: list[np.ndarray]) -> dict[int, tuple[np.ndarray, np.ndarray, int]]:
    """What a data party reads off two consecutive levels: for each node p that split,
    (its tree rows, which of them went to the child with the smaller id, that id).
    Whether that child is the left ("value ≤ cut") side the bank drew from its secret."""
    out = {}
    for now, then in zip(levels, levels[1:]):
        for p in np.unique(now[now >= 0]).tolist():
            rows = np.flatnonzero(now == p)
            children = np.unique(then[rows])
            if len(children) == 2 and children.min() >= 0:
                out[p] = (rows, then[rows] == children.min(), int(children.min()))
    return out


# --- 1. the bank names the columns behind split ids -----------------------------------------


def name_split_ids(run, by_feature: dict[str, float]) -> int:
    """The bank's attack: its own trees (source, split id and gain of every node: it
    computed them) and a per-column importance table. For each data party, the split
    ids of that party's splits, each with its total gain, fall into columns by a subset
    sum (gains are generic floats: one subset per column). Returns how many split ids
    it named correctly (scored against the party's own part, the simulator's truth)."""
    trees = run.outcome.trees[: run.outcome.best_trees]
    total = sum(g for t in trees for s, g in zip(t["source"], t["gain"]) if s >= 0)
    named = 0
    for k, p in enumerate(run.setup.parties.parties, start=1):
        gains: dict[int, float] = {}
        for t in trees:
            for src, sid, g in zip(t["source"], t["split"], t["gain"]):
                if src == k:
                    gains[sid] = gains.get(sid, 0.0) + g
        shares = {key: v for key, v in by_feature.items() if key.split(":", 1)[0] == p.name}
        if not gains or not shares:
            continue
        ids = sorted(gains)
        assert len(ids) <= 20, "brute force over subsets"
        weights = np.array([gains[i] for i in ids])
        masks = np.arange(1, 1 << len(ids))
        bits = (masks[:, None] >> np.arange(len(ids))) & 1
        sums = bits @ weights
        guess: dict[int, str] = {}
        for key, share in shares.items():
            hits = np.flatnonzero(np.abs(sums - share * total) <= 1e-9 * total)
            if len(hits) != 1:
                continue
            for i in np.flatnonzero(bits[hits[0]]):
                guess[ids[i]] = key.split(":", 1)[1]
        part = json.loads((run.folder / "model" / f"{p.name}.json").read_text())
        truth = {int(sid): rec["column"] for sid, rec in part["splits"].items()}
        named += sum(truth.get(sid) == column for sid, column in guess.items())
    return named


def test_public_summary_names_no_data_party_column(run):
    """HOLDS (fails if summary.json names a data party's columns again). summary.json
    is public; its importance names only the bank's own columns, so the bank's
    subset-sum attack (below) has nothing to work on."""
    summary = json.loads((run.folder / "summary.json").read_text())  # public
    by_feature = summary["importance"]["by_feature"]
    assert all(key.startswith("bank:") for key in by_feature), by_feature
    assert name_split_ids(run, by_feature) == 0


def test_per_column_importance_would_name_every_split_id(run):
    """Why it must stay out of the public files (shows the test above could fail): the
    same attack on the simulator's full table, model/importance.json, names the
    column behind every data-party split id the trees use."""
    full = json.loads((run.folder / "model" / "importance.json").read_text())
    used = sum(
        1
        for k in range(1, len(run.setup.parties.parties) + 1)
        for sid in {
            sid for t in run.outcome.trees for src, sid in zip(t["source"], t["split"]) if src == k
        }
    )
    assert used >= 5 and name_split_ids(run, full["by_feature"]) == used


# --- 2. the bank un-shuffles the split ids -------------------------------------------------


def bank_observations(view: View, k: int):
    """The bank's view of data party k: per observed node (built ones decrypted,
    siblings by subtraction, as grow_tree derives them), the (3, candidates) left sums,
    and the smallest and largest integer g and h among the node's rows (the bank made
    g and h, and knows which rows are in which node)."""
    obs = []
    by_tree: dict[int, list] = {}
    for t, assign, build, out in view.bank_sums:
        by_tree.setdefault(t, []).append((assign, build, out))
    for t, levels in by_tree.items():
        tree = view.outcome.trees[t - 1]
        gi, hi = gh_integers(*view.bank_gh[t][1:])
        parent, sibling = {}, {}
        for p, (lo, hi_) in enumerate(zip(tree["left"], tree["right"])):
            if lo >= 0:
                parent[lo] = parent[hi_] = p
                sibling[lo], sibling[hi_] = hi_, lo
        known: dict[int, np.ndarray] = {}
        for assign, build, out in levels:
            for v in build:
                known[v] = out[k][v]
                if v in parent:
                    known[sibling[v]] = known[parent[v]] - known[v]
            for v in np.unique(assign[assign >= 0]).tolist():
                rows = np.flatnonzero(assign == v)
                obs.append(
                    (known[v], gi[rows].min(), gi[rows].max(), hi[rows].min(), hi[rows].max())
                )
    return obs


def unshuffle(obs) -> list[tuple[int, int]]:
    """The bank's reconstruction: split id a is followed in its column by split id b
    when b's left set contains a's at every node seen — count, Σg and Σh of b minus a's
    must be a count d ≥ 0 of rows with g, h within the node's range — and b is the
    nearest such (smallest root-count step), one successor and predecessor each."""
    sums = np.array([o[0] for o in obs], dtype=np.float64)  # nodes, 3, candidates
    lo_g, hi_g, lo_h, hi_h = (np.array([o[i] for o in obs], np.float64) for i in range(1, 5))
    cnt, G, H = sums[:, 0], sums[:, 1], sums[:, 2]
    d = cnt[:, None, :] - cnt[:, :, None]  # [node, a, b]: b − a
    dg = G[:, None, :] - G[:, :, None]
    dh = H[:, None, :] - H[:, :, None]
    lg, ug = lo_g[:, None, None] * d, hi_g[:, None, None] * d
    lh, uh = lo_h[:, None, None] * d, hi_h[:, None, None] * d
    nested = ((d >= 0) & (dg >= lg) & (dg <= ug) & (dh >= lh) & (dh <= uh)).all(axis=0)
    root = cnt[0]
    step = root[None, :] - root[:, None]
    nested &= step > 0
    cost = np.where(nested, step, 1e12)
    a, b = linear_sum_assignment(cost)
    return [(int(x), int(y)) for x, y in zip(a, b) if cost[x, y] < 1e12]


def test_bank_unshuffles_split_ids_into_columns_and_bin_order(run):
    """ADMITTED (who_learns_what says it; fails if the naming stops linking nodes).
    The permutation that names a party's candidates is drawn once per party per run and reused at every node of every tree, so the bank can line a split id up
    across nodes. Two candidates of one column have nested left sets at every node;
    two of different columns almost never do over a run's nodes. From its decrypted
    sums alone the bank links each split id to the next bin of the same column:
    every party's split ids fall into its columns, in bin order (and a split id's
    root count is its bin's quantile). Columns stay unnamed (summary.json names only the
    bank's: the tests above). Naming that does not link nodes would stop
    this test (measured: from one node alone about a third of the links come out
    right; from one depth-3 tree, nearly all — so a per-tree permutation is not
    enough, and histogram subtraction needs parent and child in one naming)."""
    for k in range(len(run.setup.parties.parties)):
        col, b = truth_candidates(run, k)
        true_links = {
            (x, y)
            for x in range(len(col))
            for y in range(len(col))
            if col[x] == col[y] and b[y] == b[x] + 1
        }
        links = unshuffle(bank_observations(run, k))
        right = sum(link in true_links for link in links)
        assert right >= 0.9 * len(true_links), (k, right, len(true_links))
        assert right >= 0.9 * len(links), (k, right, len(links))


# --- 3. a data party learns the other sources' cuts ---------------------------------------


def test_a_data_party_learns_other_sources_cuts_of_training_and_held_out_customers(run):
    """ADMITTED (who_learns_what says it; fails if the party no longer learns these
    partitions). A data party learns, customer by customer, the partition every split
    of the *bank* and of the *other data parties* makes — feature information about the
    other parties, not only labels — and, through the validation and held-out
    positions in its split requests, the same for held-out customers, who are not rows
    of any tree. Not which side is "≤ cut": the bank draws from its own secret which
    child gets the smaller node id (before that fix the smaller id was always the left
    side); the "smaller id = left" guess is checked to be wrong often."""
    parties = run.setup.parties.parties
    # the party with the most split requests (it needs held-out positions)
    k = max(range(len(parties)), key=lambda i: sum(st == "split" for st, *_ in run.party[i]))
    me = k + 1
    learned = {"bank": 0, "other party": 0, "held-out": 0}
    sides: dict[tuple[int, int], tuple[int, bool]] = {}  # (tree, child) -> (parent, left?)
    guesses: list[bool] = []  # per split: was "the smaller id is the left side" right?
    for t, (tree_rows, levels) in membership_levels(run, k).items():
        tree = run.outcome.trees[t - 1]
        for p, (rows, left, lo) in inferred_splits(levels).items():
            src, sid = tree["source"][p], tree["split"][p]
            guesses.append(tree["left"][p] == lo)  # scored by the simulator's truth
            left_id = tree["left"][p]
            sides[(t, left_id)] = (p, True)
            sides[(t, tree["right"][p])] = (p, False)
            if src == me:
                continue
            truth = truth_left(run, src, sid, "train", tree_rows[rows])
            # the partition, up to which side is which
            assert (left == truth).all() or (left == ~truth).all()
            learned["bank" if src == 0 else "other party"] += len(rows)
    for stage, cfg, arrays, _, _ in run.party[k]:
        if stage != "split":
            continue
        t = int(cfg["server-round"])
        tree = run.outcome.trees[t - 1]
        for v in map(int, cfg["nodes"]):
            test = arrays[f"test-{v}"]
            if (t, v) not in sides or not len(test):
                continue
            p, is_left = sides[(t, v)]
            src = tree["source"][p]
            if src == me:
                continue
            # every held-out customer the party was asked about lies on that side
            truth = truth_left(run, src, tree["split"][p], "test", test)
            assert truth.all() if is_left else not truth.any()
            learned["held-out"] += len(test)
    assert learned["bank"] > 100 and learned["other party"] > 100, learned
    assert learned["held-out"] > 10, learned
    assert len(guesses) >= 8 and 0.2 <= np.mean(guesses) <= 0.8, guesses


# --- 4. the model folder -----------------------------------------------------------------


def test_model_folder_is_owner_only_for_it_would_give_away_thresholds_and_labels(run):
    """HOLDS (fails if model/ became as readable as the public files). model/ holds
    (a) every data party's column and threshold per split id and (b) the bank's leaf
    values and base score: with its own first-tree node membership and the public
    scenario (learning rate, λ), a data party would turn them into the exact number of
    defaulters among every set of customers it saw in a node (g = p₀ − y, h = p₀(1 −
    p₀) in the first tree, and a leaf's value is −lr·Σg/(Σh + λ)), shown below. So
    model/ is the simulator's, owner-only (0700, files 0600), and summary.json says
    it is not public."""
    folder = run.folder
    assert stat.S_IMODE((folder / "model").stat().st_mode) == 0o700
    for path in sorted((folder / "model").iterdir()):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    summary = json.loads((folder / "summary.json").read_text())
    assert "not one of the run's public files" in summary["privacy"]["model_folder"]
    # (a) the bank reads a data party's thresholds behind its own split ids
    tax = json.loads((folder / "model" / "tax.json").read_text())
    assert tax["splits"] and all("threshold" in r for r in tax["splits"].values())
    # (b) a data party: first tree, leaf values -> default counts of node members
    trees = json.loads((folder / "model" / "trees.json").read_text())
    lr, lam = run.s.model.learning_rate, run.s.secureboost.reg_lambda
    p0 = float(expit(trees["base_score"]))
    h0 = p0 * (1 - p0)
    first = trees["trees"][0]

    def defaulters(v: int) -> float:  # Σ over the leaves under node v
        if first["source"][v] < 0:
            n, w = first["count"][v], first["value"][v]
            return n * p0 + w * (n * h0 + lam) / lr
        return defaulters(first["left"][v]) + defaulters(first["right"][v])

    tree_rows, levels = membership_levels(run, 0)[1]
    y = y_train(run)[tree_rows]
    checked = 0
    for assign in levels:
        for v in np.unique(assign[assign >= 0]).tolist():
            members = np.flatnonzero(assign == v)
            guess = defaulters(v)
            assert abs(guess - round(guess)) < 1e-6
            assert round(guess) == int(y[members].sum()), v
            checked += 1
    assert checked >= 5


# --- 4b. the public per-tree metrics ------------------------------------------------------


def test_a_data_party_reads_held_out_default_counts_from_rounds_csv(stump):
    """ADMITTED, small (who_learns_what says it; fails once the per-tree test metrics
    stop pinning this down, e.g.
    rounded or no longer per tree). A data party knows which customers are held out
    (the align message) and, when its split is used, which of them go left (it
    answered the split request). summary.json's observed_default_rate gives the number
    of held-out defaulters n1, and rounds.csv's AUC after the tree — a two-valued score
    for a stump — is a quadratic in the number a of defaulters on the left: the party
    solves it for the exact count of defaulters on each side of its split among the
    held-out customers. Not admitted by who_learns_what (label counts, not membership);
    every tree with a party's split adds such equations."""
    view, folder = stump, stump.folder
    root = view.outcome.trees[0]
    assert root["source"][0] > 0, "the stump must be a data party's split"
    k = root["source"][0] - 1
    arrays, sent = next((a, sent) for st, _, a, sent, _ in view.party[k] if st == "split")
    test_pos = arrays["test-0"]
    left = sent["test-0"].astype(bool)  # the party's own answer
    n_test = len(next(c for st, c, *_ in view.party[k] if st == "align")["test-ids"])
    assert len(test_pos) == n_test  # every held-out customer walks the root
    summary = json.loads((folder / "summary.json").read_text())  # public
    n1 = round(summary["observed_default_rate"] * n_test)
    n0, n_left, n_right = n_test - n1, int(left.sum()), int((~left).sum())
    auc = float((folder / "rounds.csv").read_text().splitlines()[1].split(",")[2])

    def two_valued_auc(a: int) -> float:  # left scores higher; ties count one half
        n0_left, n0_right = n_left - a, n_right - (n1 - a)
        return (a * n0_right + 0.5 * (a * n0_left + (n1 - a) * n0_right)) / (n1 * n0)

    feasible = [
        a
        for a in range(max(0, n1 - n_right), min(n1, n_left) + 1)
        if min(abs(two_valued_auc(a) - auc), abs(1 - two_valued_auc(a) - auc)) < 1e-9
    ]
    holder = view.setup.tables.holder
    y_test = holder.y[_rows_of(holder, view.outcome.test_ids)][test_pos]
    assert feasible == [int(y_test[left].sum())]


# --- 5. the (g, h) ciphertexts ---------------------------------------------------------------


def first_tree_ciphertexts(view: View) -> tuple[np.ndarray, np.ndarray]:
    """The first data party's tree-1 ciphertexts, and (truth) the labels of their rows."""
    gh = next(a["gh"] for st, _, a, _, _ in view.party[0] if st == "gh")
    tree_rows, _ = membership_levels(view, 0)[1]
    return gh, y_train(view)[tree_rows]


def label_groups(gh: np.ndarray) -> np.ndarray:
    """The party's attack: group rows by ciphertext; the rarer group is the
    defaulters (in the first tree g takes one value per label)."""
    _, inverse, counts = np.unique(gh, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    if len(counts) != 2:
        return np.full(len(gh), -1)
    return (inverse == int(np.argmin(counts))).astype(int)


def test_gh_ciphertexts_hide_equal_gradients(stump):
    """Claim HOLDS (the test below shows it could fail). In the first tree every
    customer's plaintext is one of two values (g = p₀ − y, h constant); the data party
    receives ciphertexts that are all distinct, all the same width (no size channel:
    fixed-width big-endian bytes), so grouping them says nothing."""
    gh, y = first_tree_ciphertexts(stump)
    assert len(np.unique(y)) == 2
    assert gh.dtype == np.uint8 and gh.ndim == 2  # one fixed width per ciphertext
    assert len(np.unique(gh, axis=0)) == len(gh)
    assert (label_groups(gh) == -1).all()


def test_with_reused_obfuscators_a_party_reads_the_first_trees_labels(monkeypatch):
    """The attack above on a bank whose obfuscators repeat (the same random input for
    every encryption): equal plaintexts give equal ciphertexts and the data party reads
    every label of the first tree."""
    monkeypatch.setattr(ObfuscatorPool, "draw", lambda self, count: [123456789] * count)
    s = scenario("secureboost.trees=1", "secureboost.max_depth=1")
    gh, y = first_tree_ciphertexts(capture(s, RunSecrets(MASTER)))
    assert (label_groups(gh) == y).all()


def test_plaintext_run_says_the_parties_read_g_and_h():
    """HOLDS (fails if who_learns_what promised ciphertexts again). With
    ``secureboost.encrypted = false`` the data party's ``gradients`` message holds the
    integer g and h: in the first tree g + 1 = p₀ + 1 − y, so it reads every label (gi
    below the offset 2^24 is a defaulter), and who_learns_what says so."""
    s = scenario("secureboost.trees=1", "secureboost.max_depth=1", "secureboost.encrypted=false")
    view = capture(s, RunSecrets(MASTER))
    gi, _ = next(a["gh"] for st, _, a, _, _ in view.party[0] if st == "gh")
    tree_rows, _ = membership_levels(view, 0)[1]
    np.testing.assert_array_equal((gi < 1 << 24).astype(int), y_train(view)[tree_rows])
    claim = who_learns_what(s, "bank")["data parties"]
    assert "ciphertexts of g and h they cannot read" not in claim
    assert "the first tree's g gives every label" in claim


# --- 6. whose randomness ----------------------------------------------------------------------


def test_each_protective_draw_comes_from_its_own_partys_secret():
    """Claim HOLDS (fails if a draw moved to another party's secret or the seed).
    Same scenario and public seed, three sets of secrets: changing only the bank's
    secret changes the held-out split and the tree's rows (its validation slice and
    subsample) and leaves the party's split ids its own secret's permutation; changing
    only the party's secret changes its split ids and none of the bank's draws.
    (Obfuscators and the party's re-randomisation come from os entropy: the
    ciphertext tests above.)"""
    s = scenario(
        "secureboost.encrypted=false",
        "secureboost.trees=2",
        "secureboost.max_depth=1",
        "secureboost.subsample=0.5",
        "secureboost.early_stopping_rounds=1",
        "secureboost.validation_fraction=0.2",
    )
    names = ["bank", "telecom", "ecommerce", "tax"]

    def secrets(**changed):
        base = {n: PartySecret(bytes([i + 1]) * 32) for i, n in enumerate(names)}
        base.update({n: PartySecret(v * 32) for n, v in changed.items()})
        return RunSecrets.restored(OS_ENTROPY, base)

    def draws(view):
        tree_rows = {t: rows for t, (rows, _) in membership_levels(view, 0).items()}
        ids = next(c for st, c, *_ in view.party[0] if st == "align")
        split_ids = next(st["split-ids"] for *_, st in view.party[0] if "split-ids" in st)
        return list(ids["test-ids"]), tree_rows, split_ids

    base = draws(capture(s, secrets()))
    bank = draws(capture(s, secrets(bank=b"\x42")))
    party = draws(capture(s, secrets(telecom=b"\x43")))
    assert bank[0] != base[0]  # held-out split: the bank's
    assert not np.array_equal(bank[1][1], base[1][1])  # tree rows: the bank's
    # split ids: not the bank's (its held-out split changes the party's bins, hence how
    # many candidates; the permutation of them is still the party's own draw)
    mine = secrets().of("telecom").rng("secureboost/split-ids", 0)
    np.testing.assert_array_equal(bank[2], mine.permutation(len(bank[2])))
    assert party[0] == base[0]
    for t in base[1]:
        np.testing.assert_array_equal(party[1][t], base[1][t])
    assert not np.array_equal(party[2], base[2])  # split ids: the party's own
