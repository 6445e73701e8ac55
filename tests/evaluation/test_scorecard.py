"""Scorecard export and Python-side model loading (fedrisk.model_io, evaluation.scorecard)."""

import csv
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logit

import fedrisk
from fedrisk.errors import InputError
from fedrisk.evaluation.scorecard import (
    Scorecard,
    build_scorecard,
    read_scorecard,
    score,
    score_binned,
    write_scorecard,
)
from fedrisk.model_io import FederatedLogisticModel, load_model
from tests.conftest import SCENARIOS

NAMES = ["utilisation", "arrears", "balance", "age"]


def _record(w, b, mean=None, scale=None, names=None):
    return {
        "format": "fedrisk-logistic-v1",
        "feature_names": names or NAMES[: len(w)],
        "weights": list(map(float, w)),
        "intercept": float(b),
        "standardize": None
        if mean is None
        else {"mean": list(map(float, mean)), "scale": list(map(float, scale))},
    }


def _write_run(folder, record):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.json").write_text(json.dumps(record))
    return folder


def _rows(n=400, seed=0):
    rng = np.random.default_rng(seed)
    return np.column_stack(
        [
            rng.uniform(0, 1, n),
            rng.poisson(0.5, n).astype(float),
            rng.lognormal(8, 1, n),
            rng.integers(21, 70, n).astype(float),
        ]
    )


def _csv_points(path, X):
    """Score X from scorecard.csv alone, as a spreadsheet user would."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    base = [float(r["points"]) for r in rows if r["kind"] == "base"]
    feats = [r for r in rows if r["kind"] == "feature"]
    ppu = [float(r["points_per_unit"]) for r in feats]
    assert len(base) == 1 and len(ppu) == X.shape[1]
    # robust scaling: clip each raw value to the feature's bounds first (empty: none)
    low = [float(r["clip_low"]) if r["clip_low"] else -np.inf for r in feats]
    high = [float(r["clip_high"]) if r["clip_high"] else np.inf for r in feats]
    return base[0] + np.clip(X, low, high) @ np.array(ppu)


def _assert_ranks_like_model(points, proba, decision, card):
    """Points fall strictly with P(default): no inversions, and the exact relation."""
    order = np.lexsort((-points, proba))  # by P(default); within exact ties, any order
    assert np.all(np.diff(points[order]) <= 1e-9)
    strictly = np.diff(decision[order]) > 1e-9
    assert np.all(np.diff(points[order])[strictly] < 0)
    np.testing.assert_allclose(points, card.offset - card.factor * decision, rtol=0, atol=1e-9)
    ok = (proba > 1e-12) & (proba < 1 - 1e-12)
    np.testing.assert_allclose(
        points[ok], card.offset - card.factor * logit(proba[ok]), rtol=0, atol=1e-6
    )


# --- the run: model.json -> load_model -> scorecard files ---------------------------------


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    from fedrisk.runs.run import run_scenario
    from fedrisk.scenario import load_scenario

    out = tmp_path_factory.mktemp("scorecard") / "r"
    s = load_scenario(SCENARIOS / "quickstart.toml", ["rounds=3"])
    run_scenario(s, out, show_progress=False)
    return out


@pytest.mark.slow
def test_loaded_model_reproduces_the_runs_probabilities(short_run):
    from fedrisk.data.bundled import load_uci_default_credit
    from fedrisk.models.logistic import predict_proba

    rec = json.loads((short_run / "model.json").read_text())
    model = fedrisk.load_model(short_run)
    raw = load_uci_default_credit().X
    std = rec["standardize"]
    # robust scaling (the default) clips raw values first; a null bound: unclipped
    low = [-np.inf if v is None else v for v in std.get("clip_low", [None] * raw.shape[1])]
    high = [np.inf if v is None else v for v in std.get("clip_high", [None] * raw.shape[1])]
    Z = (np.clip(raw, low, high) - np.array(std["mean"])) / np.array(std["scale"])
    run_p = predict_proba(np.array(rec["weights"] + [rec["intercept"]]), Z)

    p = model.predict_proba(raw)
    assert p.shape == (len(raw), 2)
    np.testing.assert_allclose(p[:, 1], run_p, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert model.feature_names_ == tuple(rec["feature_names"])
    assert model.coef_.shape == (len(rec["feature_names"]),)
    np.testing.assert_allclose(
        model.coef_, np.array(rec["weights"]) / np.array(rec["standardize"]["scale"])
    )


@pytest.mark.slow
def test_run_scorecard_points_rank_customers_as_the_model_does(short_run):
    """The issue: exported points (json and csv) order customers as P(default) does."""
    from fedrisk.data.bundled import load_uci_default_credit

    model = load_model(short_run)
    raw = load_uci_default_credit().X
    card = read_scorecard(short_run / "scorecard.json")
    assert card.bins is None and "banks" in card.note
    assert (card.base_score, card.base_odds, card.pdo) == (600, 50, 20)
    assert list(card.points_per_unit) == list(model.feature_names_)
    proba, decision = model.predict_proba(raw)[:, 1], model.decision_function(raw)
    from_json = score(card, raw)
    from_csv = _csv_points(short_run / "scorecard.csv", raw)
    np.testing.assert_array_equal(from_csv, from_json)
    _assert_ranks_like_model(from_json, proba, decision, card)
    assert card == build_scorecard(model, note=card.note)


# --- model loading on hand-made model files ------------------------------------------------


def test_folding_the_z_scoring_matches_scoring_z_scored_rows(tmp_path):
    rng = np.random.default_rng(1)
    w, b = rng.normal(size=4), -1.3
    mean, scale = rng.normal(50, 20, 4), rng.uniform(0.5, 30, 4)
    model = load_model(_write_run(tmp_path / "run", _record(w, b, mean, scale)))
    X = _rows()
    z = ((X - mean) / scale) @ w + b
    np.testing.assert_allclose(model.decision_function(X), z, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(model.predict_proba(X)[:, 1], 1 / (1 + np.exp(-z)), rtol=1e-12)
    assert set(np.unique(model.predict(X))) <= {0, 1}
    # a model.json path works too, and an unstandardised model keeps its weights
    plain = load_model(_write_run(tmp_path / "plain", _record(w, b)) / "model.json")
    np.testing.assert_array_equal(plain.coef_, w)
    assert plain.intercept_ == b


class _Table:
    """A minimal pandas-like table: named columns, np.asarray gives the values."""

    def __init__(self, columns, values):
        self.columns, self._values = list(columns), np.asarray(values)

    def __array__(self, dtype=None, copy=None):
        return self._values if dtype is None else self._values.astype(dtype)


def test_tables_with_columns_are_matched_by_name():
    model = FederatedLogisticModel(NAMES, [0.5, 1.0, -1e-4, -0.01], 0.2)
    X = _rows(50)
    shuffled = [3, 0, 2, 1]
    table = _Table([NAMES[i] for i in shuffled], X[:, shuffled])
    np.testing.assert_allclose(
        model.decision_function(table), model.decision_function(X), rtol=1e-12
    )
    with pytest.raises(ValueError, match="missing 'arrears'.*unexpected 'id'"):
        model.predict_proba(_Table(["utilisation", "id", "balance", "age"], X))


def test_wrong_width_or_shape_of_X_is_a_value_error():
    model = FederatedLogisticModel(NAMES, [0.5, 1.0, -1e-4, -0.01], 0.2)
    with pytest.raises(ValueError, match="3 columns but the model has 4 features"):
        model.predict_proba(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="reshape"):
        model.predict_proba(np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        model.predict_proba(np.full((1, 4), np.nan))
    card = build_scorecard(model)
    with pytest.raises(ValueError, match="5 columns"):
        score(card, np.zeros((2, 5)))


def test_folder_without_model_json_is_an_input_error_naming_it(tmp_path):
    with pytest.raises(InputError, match="no model.json") as e:
        load_model(tmp_path)
    assert str(tmp_path) in str(e.value) and "\n" not in str(e.value)
    vertical = tmp_path / "vertical-run"
    vertical.mkdir()
    (vertical / "summary.json").write_text(json.dumps({"kind": "vertical"}))
    with pytest.raises(InputError, match="vertical run.*no single party") as e:
        fedrisk.load_model(vertical)
    assert str(vertical) in str(e.value)
    with pytest.raises(InputError, match="no such run folder"):
        load_model(tmp_path / "missing")


@pytest.mark.parametrize(
    "text, match",
    [
        ("{not json", "not JSON"),
        ('{"format": "something-else"}', "format: expected 'fedrisk-logistic-v1'"),
        (
            json.dumps({**_record([1.0, 2.0], 0.0), "weights": [1.0]}),
            "weights: expected a list of 2",
        ),
        (json.dumps(_record([1.0], 0.0, [0.0], [0.0])), "scale must be > 0"),
        (
            json.dumps({k: v for k, v in _record([1.0], 0.0).items() if k != "intercept"}),
            "intercept: missing",
        ),
    ],
)
def test_malformed_model_files_are_one_line_input_errors(tmp_path, text, match):
    (tmp_path / "model.json").write_text(text)
    with pytest.raises(InputError, match=match) as e:
        load_model(tmp_path)
    assert str(tmp_path / "model.json") in str(e.value) and "\n" not in str(e.value)


def test_package_import_stays_light():
    import subprocess
    import sys

    code = (
        "import sys, fedrisk; assert callable(fedrisk.load_model); "
        "print(','.join(m for m in ('numpy', 'scipy', 'fedrisk.model_io') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# --- the scorecard convention ---------------------------------------------------------------


def test_default_scaling_matches_the_textbook_numbers():
    card = build_scorecard(FederatedLogisticModel(["x"], [0.0], 0.0))
    assert card.factor == pytest.approx(20 / math.log(2))  # 28.8539
    assert card.offset == pytest.approx(600 - 28.8539008 * math.log(50))  # 487.1229
    # P(default) = 1/2 is even odds: 600 − 20·log2(50)
    assert score(card, np.zeros((1, 1)))[0] == pytest.approx(600 - 20 * math.log2(50))


finite = dict(allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    w=st.lists(st.floats(0.05, 3, **finite), min_size=1, max_size=5),
    signs=st.lists(st.booleans(), min_size=5, max_size=5),
    b=st.floats(-5, 5, **finite),
    mean=st.floats(-100, 100, **finite),
    scale=st.floats(0.5, 100, **finite),
    base_score=st.floats(300, 900, **finite),
    base_odds=st.floats(0.5, 200, **finite),
    pdo=st.floats(5, 80, **finite),
    j=st.integers(0, 4),
    x0=st.floats(-50, 50, **finite),
)
def test_pdo_and_base_odds_hold_for_random_models(
    w, signs, b, mean, scale, base_score, base_odds, pdo, j, x0
):
    d = len(w)
    j %= d
    w = np.array(w) * np.where(signs[:d], 1, -1)
    rec = _record(w, b, [mean] * d, [scale] * d, names=[f"f{i}" for i in range(d)])
    model = FederatedLogisticModel.from_record(rec)
    card = build_scorecard(model, base_score=base_score, base_odds=base_odds, pdo=pdo)
    wj = model.coef_[j]
    # doubling the good odds (log-odds of default down by ln 2) adds exactly PDO points
    x = np.full((1, d), x0)
    doubled = x.copy()
    doubled[0, j] -= math.log(2) / wj
    assert score(card, doubled)[0] - score(card, x)[0] == pytest.approx(pdo, abs=1e-7)
    # good:bad odds are exp(-decision); their ratio is taken in log space, since extreme
    # draws (a decision near ±700) overflow exp
    log_odds = lambda X: -model.decision_function(X)[0]  # noqa: E731
    assert math.exp(log_odds(doubled) - log_odds(x)) == pytest.approx(2, rel=1e-9)
    # a customer at the base odds gets the base score
    at_base = np.zeros((1, d))
    at_base[0, j] = (-math.log(base_odds) - model.intercept_) / wj
    assert math.exp(log_odds(at_base)) == pytest.approx(base_odds, rel=1e-9)
    assert score(card, at_base)[0] == pytest.approx(base_score, abs=1e-7)
    # and the points are offset − factor · log-odds of default for any row
    rows = np.random.default_rng(j).normal(mean, 3 * scale, (20, d))
    np.testing.assert_allclose(
        score(card, rows),
        card.offset - card.factor * model.decision_function(rows),
        rtol=0,
        atol=1e-9,
    )


def test_bad_scaling_settings_are_refused():
    model = FederatedLogisticModel(["x"], [1.0], 0.0)
    for kw in (
        {"pdo": 0},
        {"pdo": -20},
        {"base_odds": 0},
        {"base_score": float("nan")},
        {"reference_X": np.zeros((3, 1)), "n_bins": 0},
    ):
        with pytest.raises(ValueError):
            build_scorecard(model, **kw)


# --- files and the binned table ---------------------------------------------------------------


def _model():
    return FederatedLogisticModel(NAMES, [2.0, 0.8, 1e-4, -0.03], -1.5)


def test_json_and_csv_round_trip_and_rank_like_the_model(tmp_path):
    model, X = _model(), _rows(1000)
    card = build_scorecard(model, reference_X=X, base_score=700, base_odds=20, pdo=40)
    paths = write_scorecard(card, tmp_path)
    assert [p.name for p in paths] == ["scorecard.json", "scorecard.csv"]
    back = read_scorecard(paths[0])
    assert back == card and isinstance(back, Scorecard)
    assert read_scorecard(tmp_path) == card
    np.testing.assert_array_equal(score(back, X), score(card, X))
    np.testing.assert_array_equal(_csv_points(paths[1], X), score(card, X))
    _assert_ranks_like_model(
        score(back, X), model.predict_proba(X)[:, 1], model.decision_function(X), card
    )
    with open(paths[1], newline="") as fh:
        kinds = [r["kind"] for r in csv.DictReader(fh)]
    assert kinds.count("base") == 1 and kinds.count("feature") == 4
    assert kinds.count("bin") == len(card.bins)


def test_binned_table_is_integer_points_at_bin_medians():
    model, X = _model(), _rows(2000)
    X[:, 1] = np.minimum(X[:, 1], 2)  # arrears 0, 1 or 2: one bin per value, exact points
    card = build_scorecard(model, reference_X=X, n_bins=5)
    by = {n: [b for b in card.bins if b["feature"] == n] for n in NAMES}
    assert all(1 <= len(rows) <= 5 for rows in by.values())
    assert len(by["utilisation"]) == 5
    assert sum(b["count"] for b in by["utilisation"]) == len(X)
    assert [(b["lower"], b["upper"]) for b in by["arrears"]] == [(0, 0), (1, 1), (2, 2)]
    for n, rows in by.items():
        assert [b["bin"] for b in rows] == list(range(1, len(rows) + 1))
        lowers = [b["lower"] for b in rows]
        assert lowers == sorted(lowers)
        for b in rows:
            assert isinstance(b["points"], int)
            assert b["lower"] <= b["median"] <= b["upper"]
            assert b["points"] == round(card.points_per_unit[n] * b["median"])
    binned, exact = score_binned(card, X), score(card, X)
    assert binned.dtype.kind == "i"
    err = np.abs(binned - exact)
    assert card.bin_error["max_abs"] == pytest.approx(err.max())
    assert card.bin_error["mean_abs"] == pytest.approx(err.mean())
    assert np.corrcoef(binned, exact)[0, 1] > 0.9  # an approximation, but a close one
    with pytest.raises(ValueError, match="no bins"):
        score_binned(build_scorecard(model), X)


def test_constant_reference_feature_gets_one_bin():
    model, X = _model(), _rows(100)
    X[:, 0] = 0.25
    card = build_scorecard(model, reference_X=X)
    rows = [b for b in card.bins if b["feature"] == "utilisation"]
    assert len(rows) == 1 and rows[0]["count"] == 100


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda d: d.update(format="x"), "format"),
        (lambda d: d.update(offset=d["offset"] + 5), "do not match"),
        (lambda d: d.update(features=[]), "features"),
        (lambda d: d.update(base_points="600"), "base_points"),
    ],
)
def test_malformed_scorecard_files_are_input_errors(tmp_path, edit, match):
    json_path, _ = write_scorecard(build_scorecard(_model()), tmp_path)
    raw = json.loads(json_path.read_text())
    edit(raw)
    json_path.write_text(json.dumps(raw))
    with pytest.raises(InputError, match=match) as e:
        read_scorecard(json_path)
    assert str(json_path) in str(e.value)
    with pytest.raises(InputError, match="no such scorecard"):
        read_scorecard(tmp_path / "nope.json")
