"""fedrisk.load_model on a SecureBoost run folder: model/trees.json joined with each
party's part gives FederatedBoostedTrees, which scores the run's held-out customers
exactly as the run did; broken model files are one-line InputErrors naming the file."""

from __future__ import annotations

import json
import shutil
import time
import warnings

import numpy as np
import pytest
from scipy.special import logit

import fedrisk
from fedrisk.errors import InputError
from fedrisk.model_io import FederatedBoostedTrees, load_model
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.rundir import staged_run_dir
from fedrisk.runs.secureboost import complete_secureboost, federate_secureboost
from fedrisk.runs.vertical import prepare_vertical
from fedrisk.scenario import load_scenario
from tests.conftest import SCENARIOS

# a bank and three data parties (telecom, ecommerce, tax), a few seconds to run
SMALL = [
    "model.kind=secureboost",
    "secureboost.trees=3",
    "privacy.key_bits=1024",
    "data.customers=2000",
]
MASTER = b"model-io-secureboost".ljust(32, b"\0")


@pytest.fixture(scope="module")
def boosted(tmp_path_factory):
    """(run folder, setup, outcome) of one small encrypted SecureBoost run."""
    started = time.perf_counter()
    s = load_scenario(SCENARIOS / "vertical-synthetic.toml", SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 1024-bit keys warn, on purpose
        setup = prepare_vertical(s, None, RunSecrets(MASTER))
    recorder, outcome, wall = federate_secureboost(s, setup, show_progress=False)
    run = tmp_path_factory.mktemp("secureboost") / "run"
    with staged_run_dir(run) as stage:
        complete_secureboost(stage, s, setup, recorder, outcome, wall, started)
    return run, setup, outcome


def pooled_test_columns(setup, outcome) -> dict[str, np.ndarray]:
    """Every party's raw column values of the run's held-out customers, by name."""
    columns = {}
    for table in setup.tables.parties:
        position = {str(i): k for k, i in enumerate(table.ids)}
        rows = np.array([position[str(i)] for i in outcome.test_ids])
        for j, name in enumerate(table.feature_names):
            columns[name] = table.X[rows, j]
    return columns


class Table:
    """A table with ``.columns`` and no pandas (what as_feature_matrix duck-types)."""

    def __init__(self, columns: dict[str, np.ndarray]) -> None:
        self.columns = list(columns)
        self._data = np.column_stack(list(columns.values()))

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self._data, dtype=dtype)


def copy_model(run, tmp_path):
    """A scratch copy of the run folder's model/ files (with its summary) to break."""
    shutil.copytree(run / "model", tmp_path / "model")
    shutil.copy(run / "summary.json", tmp_path / "summary.json")
    return tmp_path / "model"


def edit_json(path, change) -> None:
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


# --- the run's own scores ---------------------------------------------------------------


def test_loaded_trees_score_the_held_out_customers_as_the_run_did(boosted):
    run, setup, outcome = boosted
    model = fedrisk.load_model(run)
    assert isinstance(model, FederatedBoostedTrees)
    assert model.n_trees_ == outcome.best_trees == 3
    assert model.parties_ == ("bank", "telecom", "ecommerce", "tax")
    # every column the parts name, party by party, each party's in its table's order
    named = set()
    for party in model.parties_:
        part = json.loads((run / "model" / f"{party}.json").read_text())
        named |= {spec["column"] for spec in part["splits"].values()}
    expected = [n for t in setup.tables.parties for n in t.feature_names if n in named]
    assert list(model.feature_names_) == expected and model.n_features_in_ == len(expected)
    assert {p for p in model.feature_parties_} <= set(model.parties_)
    assert len({p for p in model.feature_parties_}) >= 3  # data parties' columns are in
    columns = pooled_test_columns(setup, outcome)
    X = np.column_stack([columns[n] for n in model.feature_names_])
    proba = model.predict_proba(X)
    assert proba.shape == (len(outcome.test_ids), 2)
    np.testing.assert_allclose(proba[:, 1], outcome.test_scores, rtol=0, atol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        model.decision_function(X), logit(outcome.test_scores), rtol=0, atol=1e-9
    )
    assert np.array_equal(model.predict(X), (proba[:, 1] >= 0.5).astype(np.int8))
    assert list(model.classes_) == [0, 1]
    assert model.apply(X).shape == (len(X), 3)
    text = repr(model)
    assert "3 trees" in text and all(p in text for p in model.parties_)


def test_a_table_in_any_column_order_scores_the_same(boosted):
    run, setup, outcome = boosted
    model = load_model(run)
    columns = pooled_test_columns(setup, outcome)
    names = list(model.feature_names_)
    shuffled = [names[i] for i in np.random.default_rng(3).permutation(len(names))]
    assert shuffled != names
    table = Table({n: columns[n] for n in shuffled})
    np.testing.assert_allclose(
        model.predict_proba(table)[:, 1], outcome.test_scores, rtol=0, atol=1e-12
    )
    unused = next(n for n in columns if n not in names)
    with pytest.raises(ValueError, match=f"unexpected '{unused}'"):
        model.predict_proba(Table({**{n: columns[n] for n in names}, unused: columns[unused]}))
    with pytest.raises(ValueError, match=f"missing '{names[0]}'"):
        model.predict_proba(Table({n: columns[n] for n in names[1:]}))


def test_the_model_folder_and_trees_json_load_the_same_model(boosted, tmp_path):
    run, setup, outcome = boosted
    table = Table(pooled_test_columns(setup, outcome))
    whole = load_model(run)
    used = Table({n: dict(zip(table.columns, table._data.T))[n] for n in whole.feature_names_})
    for where in (run / "model", run / "model" / "trees.json"):
        model = load_model(where)
        assert model.feature_names_ == whole.feature_names_
        np.testing.assert_array_equal(model.predict_proba(used), whole.predict_proba(used))
    # moved away from its summary.json: the same columns (order as the parts name them)
    alone = tmp_path / "elsewhere"
    shutil.copytree(run / "model", alone)
    model = load_model(alone)
    assert set(model.feature_names_) == set(whole.feature_names_)
    np.testing.assert_array_equal(model.predict_proba(used), whole.predict_proba(used))


def test_the_walk_sends_a_value_equal_to_the_threshold_left():
    # root: a <= 1 ? leaf 1 : node 2;  node 2: b <= 2 ? leaf 3 : leaf 4
    tree = {
        "feature": [0, -1, 1, -1, -1],
        "threshold": [1.0, 0.0, 2.0, 0.0, 0.0],
        "left": [1, -1, 3, -1, -1],
        "right": [2, -1, 4, -1, -1],
        "value": [0.0, 0.5, 0.0, -1.0, 2.0],
    }
    stump = {k: [v[0] if k != "feature" else -1] for k, v in tree.items()} | {"value": [0.25]}
    model = FederatedBoostedTrees(["a", "b"], [tree, stump], 0.1, parties=["bank"])
    X = np.array([[1.0, 9.0], [1.5, 2.0], [3.0, 2.5], [-5.0, -5.0]])
    np.testing.assert_allclose(model.decision_function(X), 0.1 + 0.25 + np.array([0.5, -1, 2, 0.5]))
    assert model.apply(X).tolist() == [[1, 0], [3, 0], [4, 0], [1, 0]]
    with pytest.raises(ValueError, match=r"trees\[0\] node 2: children 1 and 4 out of range"):
        FederatedBoostedTrees(["a", "b"], [{**tree, "left": [1, -1, 1, -1, -1]}], 0.0)
    with pytest.raises(ValueError, match="feature 2 out of range"):
        FederatedBoostedTrees(["a", "b"], [{**tree, "feature": [2, -1, 1, -1, -1]}], 0.0)


# --- broken model files ----------------------------------------------------------------


def _first_split(record) -> tuple[int, int, int]:
    """(tree, node, source) of the first data-party split node in trees.json."""
    for t, tree in enumerate(record["trees"]):
        for i, src in enumerate(tree["source"]):
            if src > 0:
                return t, i, src
    raise AssertionError("no data-party split")


def _set_tree(key, node, value):
    def change(record):
        record["trees"][0][key][node] = value

    return change


@pytest.mark.parametrize(
    "change, match",
    [
        (
            lambda r: r.update(format="fedrisk-logistic-v1"),
            "format: expected 'fedrisk-secureboost-v1'",
        ),
        (lambda r: r.pop("base_score"), "base_score: missing"),
        (lambda r: r.update(base_score="high"), "base_score: expected a finite number"),
        (lambda r: r.update(sources=["bank", "../x"]), "sources: expected a non-empty list"),
        (lambda r: r.update(trees_kept=7), "trees_kept: 7, but trees holds 3 trees"),
        (lambda r: r["trees"][0].pop("value"), r"trees\[0\]: value: missing"),
        (lambda r: r["trees"][0]["left"].pop(), "lists of one equal, non-zero length"),
        (_set_tree("source", 0, 9), r"trees\[0\] node 0: source 9 out of range \(4 sources"),
        (_set_tree("left", 0, 99), r"trees\[0\] node 0: children 99 and \d+ out of range"),
        (_set_tree("right", 0, 0), r"trees\[0\] node 0: children \d+ and 0 out of range"),
        (_set_tree("split", 0, 1.5), r"trees\[0\]: split: expected a list of integers"),
    ],
)
def test_a_malformed_trees_json_is_a_one_line_input_error(boosted, tmp_path, change, match):
    model_dir = copy_model(boosted[0], tmp_path)
    edit_json(model_dir / "trees.json", change)
    with pytest.raises(InputError, match=match) as e:
        load_model(tmp_path)
    assert str(model_dir / "trees.json") in str(e.value) and "\n" not in str(e.value)


def test_a_trees_json_that_is_not_json_is_an_input_error(boosted, tmp_path):
    model_dir = copy_model(boosted[0], tmp_path)
    (model_dir / "trees.json").write_text('{"format": "fedrisk-secureboost-v1", "trees": [')
    with pytest.raises(InputError, match="not JSON") as e:
        load_model(tmp_path)
    assert str(model_dir / "trees.json") in str(e.value) and "\n" not in str(e.value)


def test_a_missing_party_part_is_an_input_error_naming_the_file(boosted, tmp_path):
    model_dir = copy_model(boosted[0], tmp_path)
    (model_dir / "telecom.json").unlink()
    with pytest.raises(InputError, match="names party 'telecom'") as e:
        load_model(tmp_path)
    assert str(model_dir / "telecom.json") in str(e.value) and "\n" not in str(e.value)


def test_a_split_id_missing_from_its_part_is_an_input_error(boosted, tmp_path):
    model_dir = copy_model(boosted[0], tmp_path)
    record = json.loads((model_dir / "trees.json").read_text())
    t, i, src = _first_split(record)
    party, sid = record["sources"][src], record["trees"][t]["split"][i]
    edit_json(model_dir / f"{party}.json", lambda p: p["splits"].pop(str(sid)))
    with pytest.raises(InputError, match=rf"splits: no split {sid} \(trees\[{t}\] node {i}") as e:
        load_model(tmp_path)
    assert str(model_dir / f"{party}.json") in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda p: p.update(party="someone"), "party: expected 'tax', got 'someone'"),
        (lambda p: p.update(source=1), "source: expected 3"),
        (lambda p: p.update(splits=[]), "splits: expected"),
        (lambda p: p["splits"].update({"x1": {}}), "'x1' is not a split id"),
        (
            lambda p: next(iter(p["splits"].values())).update(threshold=None),
            r'splits\["\d+"\]: expected \{"column"',
        ),
    ],
)
def test_a_malformed_party_part_is_an_input_error_naming_it(boosted, tmp_path, change, match):
    model_dir = copy_model(boosted[0], tmp_path)
    edit_json(model_dir / "tax.json", change)
    with pytest.raises(InputError, match=match) as e:
        load_model(tmp_path)
    assert str(model_dir / "tax.json") in str(e.value) and "\n" not in str(e.value)


def test_folders_without_a_loadable_model_say_why(tmp_path):
    lost = tmp_path / "lost-trees"
    lost.mkdir()
    (lost / "summary.json").write_text(json.dumps({"kind": "vertical", "model": "secureboost"}))
    with pytest.raises(InputError, match="no model/trees.json: this secureboost run"):
        load_model(lost)
    logistic = tmp_path / "vertical-logistic"
    logistic.mkdir()
    (logistic / "summary.json").write_text(json.dumps({"kind": "vertical"}))
    with pytest.raises(InputError, match="vertical run.*no single party"):
        load_model(logistic)
