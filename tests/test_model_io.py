"""model.json with robust scaling: clip bounds saved, loaded and applied to new applicants;
older files without them still load."""

import csv
import json

import numpy as np
import pytest
from scipy.special import expit

from fedrisk.data.prepare import prepare_horizontal
from fedrisk.errors import InputError
from fedrisk.evaluation.scorecard import build_scorecard, read_scorecard, score, write_scorecard
from fedrisk.model_io import load_model
from fedrisk.runs.outputs import model_record
from fedrisk.scenario import scenario_from_dict


def _prepared(scaling):
    raw = {
        "data": {"source": "synthetic", "customers": 1200, "tails": "heavy", "scaling": scaling},
        "federation": {"banks": 3},
    }
    return prepare_horizontal(scenario_from_dict(raw, "t.toml"))


def _raw_test_rows():
    return _prepared("none").test.X  # the same held-out customers, unscaled


def _params(d, seed=0):
    return np.random.default_rng(seed).normal(size=d + 1)


def test_model_json_round_trip_applies_the_clip_bounds(tmp_path):
    data = _prepared("robust")
    params = _params(data.train.n_features)
    record = model_record(data, params)
    std = record["standardize"]
    assert len(std["clip_low"]) == len(std["clip_high"]) == data.train.n_features
    (tmp_path / "model.json").write_text(json.dumps(record, allow_nan=False))
    model = load_model(tmp_path)
    raw = _raw_test_rows()
    run_p = expit(data.test.X @ params[:-1] + params[-1])  # what the run scored
    np.testing.assert_allclose(model.predict_proba(raw)[:, 1], run_p, rtol=1e-9, atol=1e-12)
    # an applicant far beyond every bound scores like one at the bounds
    far = np.where(params[:-1] > 0, 1e12, -1e12)[None, :]
    at = np.where(params[:-1] > 0, model.clip_high_, model.clip_low_)[None, :]
    at = np.where(np.isfinite(at), at, far)
    np.testing.assert_allclose(model.decision_function(far), model.decision_function(at))
    # the run's scorecard clips the same way, in json and csv
    card = build_scorecard(model)
    write_scorecard(card, tmp_path)
    back = read_scorecard(tmp_path)
    assert back == card and back.clips
    np.testing.assert_allclose(
        score(back, raw), card.offset - card.factor * model.decision_function(raw)
    )
    with open(tmp_path / "scorecard.csv", newline="") as fh:
        feats = [r for r in csv.DictReader(fh) if r["kind"] == "feature"]
    assert [float(r["clip_high"]) for r in feats if r["clip_high"]] == [
        v for v in std["clip_high"] if v is not None
    ]


def test_zscore_and_old_model_files_have_no_clip_bounds(tmp_path):
    data = _prepared("zscore")
    params = _params(data.train.n_features, 1)
    record = model_record(data, params)
    assert set(record["standardize"]) == {"mean", "scale"}  # as written before robust scaling
    (tmp_path / "model.json").write_text(json.dumps(record))
    model = load_model(tmp_path)
    assert np.all(model.clip_low_ == -np.inf) and np.all(model.clip_high_ == np.inf)
    raw = _raw_test_rows()
    run_p = expit(data.test.X @ params[:-1] + params[-1])
    np.testing.assert_allclose(model.predict_proba(raw)[:, 1], run_p, rtol=1e-9, atol=1e-12)
    assert build_scorecard(model).clips == {}


def _with(std_extra):
    return {
        "format": "fedrisk-logistic-v1",
        "feature_names": ["a", "b"],
        "weights": [1.0, -1.0],
        "intercept": 0.0,
        "standardize": {"mean": [0.0, 0.0], "scale": [1.0, 1.0], **std_extra},
    }


@pytest.mark.parametrize(
    "extra, match",
    [
        ({"clip_low": [0.0, 0.0]}, "both clip_low and clip_high"),
        ({"clip_low": [0.0], "clip_high": [1.0, 1.0]}, "clip_low: expected a list of 2"),
        ({"clip_low": [0.0, "x"], "clip_high": [1.0, 1.0]}, "finite number or null"),
        ({"clip_low": [2.0, 0.0], "clip_high": [1.0, 1.0]}, "clip_low must be <= clip_high"),
    ],
)
def test_malformed_clip_bounds_are_one_line_input_errors(tmp_path, extra, match):
    (tmp_path / "model.json").write_text(json.dumps(_with(extra)))
    with pytest.raises(InputError, match=match) as e:
        load_model(tmp_path)
    assert "\n" not in str(e.value)


def test_null_bounds_leave_a_feature_unclipped(tmp_path):
    (tmp_path / "model.json").write_text(
        json.dumps(_with({"clip_low": [None, -1.0], "clip_high": [None, 1.0]}))
    )
    model = load_model(tmp_path)
    X = np.array([[1e9, 5.0], [-1e9, -5.0]])
    np.testing.assert_allclose(model.decision_function(X), [1e9 - 1.0, -1e9 + 1.0])
