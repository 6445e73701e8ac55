"""SecureBoost: the encrypted protocol builds the plaintext protocol's very trees; what
each side receives (from the transcript and from the messages themselves); the bank's
first tree; early stopping; determinism; bad input."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.secureboost import complete_secureboost, federate_secureboost
from fedrisk.runs.vertical import prepare_vertical
from fedrisk.scenario import load_scenario
from tests.conftest import SCENARIOS
from tests.vertical.test_runs import cli

# a bank and three data parties, small enough for a few seconds per run
SMALL = [
    "model.kind=secureboost",
    "secureboost.trees=3",
    "secureboost.max_depth=3",
    "secureboost.max_bins=16",
    "privacy.key_bits=1024",
    "data.customers=1500",
]
MASTER = b"secureboost-tests".ljust(32, b"\0")


def scenario(*extra: str):
    return load_scenario(SCENARIOS / "vertical-synthetic.toml", [*SMALL, *extra])


def federate(s, client_mods=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 1024-bit keys warn, on purpose
        setup = prepare_vertical(s, None, RunSecrets(MASTER))
    recorder, outcome, wall = federate_secureboost(
        s, setup, show_progress=False, client_mods=client_mods
    )
    return setup, recorder, outcome, wall


@pytest.fixture(scope="module")
def encrypted():
    return federate(scenario())


@pytest.fixture(scope="module")
def plaintext():
    return federate(scenario("secureboost.encrypted=false"))


def splits(outcome) -> list[list[tuple[int, int]]]:
    return [[(src, sid) for src, sid in zip(t["source"], t["split"])] for t in outcome.trees]


def test_encrypted_and_plaintext_runs_build_identical_trees(encrypted, plaintext):
    """Same party, same split id (so the same column and bin: split ids are the
    party's fixed naming of its candidates), same children at every node of every
    tree, and the same held-out scores; three data parties all take part."""
    enc, plain = encrypted[2], plaintext[2]
    assert splits(enc) == splits(plain)
    for a, b in zip(enc.trees, plain.trees):
        assert a["left"] == b["left"] and a["right"] == b["right"]
        assert a["count"] == b["count"]
        np.testing.assert_array_equal(a["value"], b["value"])
    np.testing.assert_array_equal(enc.test_scores, plain.test_scores)
    used = {src for tree in splits(enc) for src, _ in tree if src >= 0}
    assert len(used) >= 3, used  # the trees use several sources, not the bank alone
    assert enc.encryptions > 0 and enc.decryptions > 0
    assert plain.encryptions == 0 and plain.decryptions == 0


def test_trees_are_real_models(encrypted):
    """Depth 3 trees with leaves on both sides; the held-out AUC improves on the
    starting point and every tree is logged as a round."""
    _, recorder, outcome, _ = encrypted
    assert len(recorder.rounds) == 3 == len(outcome.trees)
    for tree in outcome.trees:
        leaves = [i for i, s in enumerate(tree["source"]) if s < 0]
        assert 2 <= len(leaves) <= 8
        assert sum(tree["count"][i] for i in leaves) == tree["count"][0]
    assert recorder.rounds[-1].test["auc"] > 0.6


def test_transcript_says_parties_get_only_ciphertexts_and_membership(encrypted):
    _, recorder, _, _ = encrypted
    to_parties = {
        (e.what, e.protection, e.readable_by_receiver)
        for e in recorder.transcript.entries
        if e.receiver != "bank" and e.round > 0
    }
    assert to_parties == {
        ("encrypted_gradients", "ciphertext", False),
        ("node_membership", "plaintext", True),
        ("split_request", "plaintext", True),
    }
    to_bank = {
        (e.what, e.protection)
        for e in recorder.transcript.entries
        if e.receiver == "bank" and e.round > 0
    }
    assert to_bank == {
        ("encrypted_histograms", "ciphertext"),
        ("split_directions", "plaintext"),
        ("ack", "plaintext"),
    }


def test_messages_carry_no_feature_value_threshold_or_gradient(tmp_path):
    """From the messages themselves, as they cross: what a data party receives in the
    trees' rounds is uint8 ciphertexts (each < n²) and integer row positions and node
    ids; what the bank receives is uint8 ciphertexts of n² width and 0/1 directions;
    no float anywhere, so no feature value, threshold, g or h in the clear."""
    received, sent = [], []

    def spy(msg, context, call_next):
        reply = call_next(msg, context)
        received.append(msg)
        sent.append(reply)
        return reply

    s = scenario("secureboost.trees=2")
    setup, _, outcome, _ = federate(s, [spy])
    nsq = setup.bank.public_key.nsquare
    width = (nsq.bit_length() + 7) // 8
    stages = set()
    for msg, reply in zip(received, sent):
        cfg = msg.content.config_records.get("config", {})
        stage = str(cfg.get("stage", ""))
        stages.add(stage)
        if stage == "gh":
            gh = msg.content["gh"]["gh"].numpy()
            assert gh.dtype == np.uint8 and gh.shape[1] == width
            assert all(int.from_bytes(r.tobytes(), "big") < nsq for r in gh[:50])
        for record in msg.content.array_records.values():
            for array in record.values():
                assert array.numpy().dtype.kind in "ui", "a float reached a data party"
        for record in reply.content.array_records.values():
            for key, array in record.items():
                a = array.numpy()
                assert a.dtype == np.uint8, f"{stage}: {key} is {a.dtype}"
                if stage == "split":
                    assert set(np.unique(a)) <= {0, 1}
                if stage == "histograms":
                    assert a.shape[1] == width
        for record in [
            *msg.content.config_records.values(),
            *reply.content.config_records.values(),
        ]:
            for value in record.values():
                values = value if isinstance(value, list) else [value]
                assert not any(isinstance(v, float) for v in values), stage
    assert {"gh", "histograms", "split"} <= stages
    assert outcome.trees


def test_bank_first_tree_keeps_the_parties_out_of_it():
    s = scenario("secureboost.bank_first_tree=true", "secureboost.trees=2")
    _, recorder, outcome, _ = federate(s)
    first = outcome.trees[0]
    assert {src for src in first["source"] if src >= 0} == {0}
    assert not [e for e in recorder.transcript.entries if e.round == 1 and e.receiver != "bank"]
    assert [e for e in recorder.transcript.entries if e.round == 2 and e.receiver != "bank"]


def test_early_stopping_keeps_the_best_number_of_trees():
    s = scenario(
        "secureboost.trees=12",
        "secureboost.early_stopping_rounds=2",
        "model.learning_rate=1.5",
        "secureboost.encrypted=false",
    )
    _, _, outcome, _ = federate(s)
    losses = outcome.validation_loss
    assert len(losses) == len(outcome.trees) <= 12
    assert outcome.best_trees == int(np.argmin(losses)) + 1
    if len(outcome.trees) < 12:  # stopped: the last two did not improve on the best
        assert len(outcome.trees) - outcome.best_trees == 2


def test_same_secrets_same_results_bit_for_bit(plaintext, tmp_path):
    s = scenario("secureboost.encrypted=false")
    again = federate(s)
    assert splits(again[2]) == splits(plaintext[2])
    np.testing.assert_array_equal(again[2].test_scores, plaintext[2].test_scores)


def test_run_folder_has_the_trees_parts_importance_and_baselines(plaintext, tmp_path):
    setup, recorder, outcome, wall = plaintext
    s = scenario("secureboost.encrypted=false")
    summary = complete_secureboost(tmp_path, s, setup, recorder, outcome, wall, 0.0)
    trees = json.loads((tmp_path / "model" / "trees.json").read_text())
    assert trees["sources"] == ["bank", "telecom", "ecommerce", "tax"]
    assert len(trees["trees"]) == 3
    # every used party split id is in that party's part, with a column it holds
    for k, name in enumerate(trees["sources"]):
        part = json.loads((tmp_path / "model" / f"{name}.json").read_text())
        used = {
            sid for t in trees["trees"] for src, sid in zip(t["source"], t["split"]) if src == k
        }
        assert set(map(int, part["splits"])) == used
        columns = set(setup.tables.party(name).feature_names)
        assert {v["column"] for v in part["splits"].values()} <= columns
    share = summary["importance"]["by_party"]
    assert abs(sum(v["gain_share"] for v in share.values()) - 1) < 1e-9
    rounds = (tmp_path / "rounds.csv").read_text().splitlines()
    assert len(rounds) == 1 + 3
    assert summary["centralised"]["auc"] > 0.6 and "bank" in summary["local_only"]
    assert "transcript.jsonl" in {p.name for p in tmp_path.iterdir()}


BAD = {
    "secureboost with a horizontal federation": (
        ["--set", "model.kind=secureboost"],
        "model.kind: 'secureboost' grows trees across a bank and data parties",
    ),
    "depth 0": (["--set", "secureboost.max_depth=0"], "secureboost.max_depth: must be >= 1"),
    "one bin": (["--set", "secureboost.max_bins=1"], "secureboost.max_bins: must be >= 2"),
    "learning rate 0": (["--set", "model.learning_rate=0"], "model.learning_rate: must be > 0"),
    "negative learning rate": (
        ["--set", "model.learning_rate=-0.1"],
        "model.learning_rate: must be > 0",
    ),
    "label DP": (
        ["--set", "privacy.dp=label", "--set", "privacy.target_epsilon=3"],
        "privacy.dp: 'label' is not offered with model.kind = 'secureboost'",
    ),
    "deployment engine": (
        ["--set", "federation.engine=deployment"],
        "federation.engine: 'deployment' runs the logistic vertical protocol",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_secureboost_scenarios_exit_2_with_one_line(tmp_path, case):
    extra, needle = BAD[case]
    horizontal = case.startswith("secureboost with a horizontal")
    scen = str(SCENARIOS / ("quickstart.toml" if horizontal else "vertical-secureboost.toml"))
    proc = cli("run", scen, "--out", "out", *extra, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_constant_column_is_named_dropped_and_the_run_goes_on(tmp_path):
    """A party's constant column: a one-line warning naming it, no split candidate
    on it (its bins have no cut), and the run completes."""
    rng = np.random.default_rng(0)
    n = 600
    ids = [f"c{i}" for i in range(n)]
    x = rng.normal(size=(n, 2))
    y = (x[:, 0] + rng.normal(size=n) > 0.8).astype(int)
    (tmp_path / "bank.csv").write_text(
        "id,y,b0\n" + "".join(f"{i},{t},{v:.4f}\n" for i, t, v in zip(ids, y, x[:, 0]))
    )
    (tmp_path / "telecom.csv").write_text(
        "id,t0,flat\n" + "".join(f"{i},{v:.4f},5\n" for i, v in zip(ids, x[:, 1]))
    )
    (tmp_path / "s.toml").write_text(
        'name = "c"\n[data]\nsource = "csv"\n[federation]\nkind = "vertical"\n'
        '[[federation.parties]]\nname = "bank"\nlabel = true\npath = "bank.csv"\n'
        '[[federation.parties]]\nname = "telecom"\npath = "telecom.csv"\n'
        '[model]\nkind = "secureboost"\n[secureboost]\ntrees = 2\n'
        "[privacy]\nkey_bits = 1024\n"
    )
    proc = cli("run", "s.toml", "--out", "out", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    warned = [line for line in proc.stderr.splitlines() if "'flat'" in line]
    assert len(warned) == 1 and "one value in every row" in warned[0]
    trees = json.loads((tmp_path / "out" / "model" / "trees.json").read_text())
    part = json.loads((tmp_path / "out" / "model" / "telecom.json").read_text())
    assert trees["trees"] and all(v["column"] != "flat" for v in part["splits"].values())


@pytest.mark.slow
def test_simulation_engine_grows_the_in_process_trees():
    """Flower's Simulation Engine (Ray) runs the same apps: with the same secrets, the
    same trees and held-out scores, bit for bit."""
    pytest.importorskip("ray")
    s = scenario("secureboost.trees=2", "secureboost.encrypted=false")
    on_ray = federate(
        scenario(
            "secureboost.trees=2", "secureboost.encrypted=false", "federation.engine=simulation"
        )
    )
    here = federate(s)
    assert splits(on_ray[2]) == splits(here[2])
    np.testing.assert_array_equal(on_ray[2].test_scores, here[2].test_scores)
