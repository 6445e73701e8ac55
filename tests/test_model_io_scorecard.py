"""fedrisk.load_model on a WOE scorecard run folder (model.kind = "scorecard"): the loaded
FederatedWoeScorecard bins raw rows (text columns, missing values) as the run did, its
integer points and probabilities are the run's, and broken inputs and files are one-line
errors. The binning is checked against fedrisk.models.binning bit for bit."""

from __future__ import annotations

import csv
import json
import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import fedrisk
from fedrisk.data.characteristics import load_vertical_characteristics, prepare_characteristics
from fedrisk.data.csv_source import MISSING_TOKENS, load_csv_columns
from fedrisk.data.split import split_indices
from fedrisk.errors import InputError
from fedrisk.evaluation import score_metrics
from fedrisk.evaluation.woe_scorecard import Characteristic, WoeScorecard, write_woe_scorecard
from fedrisk.model_io import GRID_CELLS as IO_GRID_CELLS
from fedrisk.model_io import GRID_LIMIT as IO_GRID_LIMIT
from fedrisk.model_io import (
    GRID_STEP,
    FederatedLogisticModel,
    FederatedWoeScorecard,
    WoeCharacteristic,
    grid_cells,
    load_model,
    woe_of_counts,
)
from fedrisk.model_io import MISSING_TOKENS as IO_MISSING_TOKENS
from fedrisk.models import binning
from fedrisk.models.binning import (
    GRID_CELLS,
    GRID_LIMIT,
    CategoricalBinning,
    NumericBinning,
    woe_iv,
)
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.run import run_scenario
from fedrisk.scenario import load_scenario
from tests.conftest import SCENARIOS

HORIZONTAL = SCENARIOS / "scorecard-german.toml"
VERTICAL = SCENARIOS / "vertical-scorecard-german.toml"
DATA = SCENARIOS / "data"
MASTER = b"model-io-scorecard".ljust(32, b"\0")  # the vertical run's secrets, to redo its split


def produce(scenario: Path, out: Path) -> Path:
    with warnings.catch_warnings():
        # 1024-bit keys warn, on purpose
        warnings.filterwarnings("ignore", message=r".*Paillier keys are below")
        run_scenario(load_scenario(scenario), out, show_progress=False, secrets=RunSecrets(MASTER))
    return out


@pytest.fixture(scope="module")
def horizontal_run(tmp_path_factory) -> Path:
    return produce(HORIZONTAL, tmp_path_factory.mktemp("woe") / "horizontal")


@pytest.fixture(scope="module")
def vertical_run(tmp_path_factory) -> Path:
    return produce(VERTICAL, tmp_path_factory.mktemp("woe") / "vertical")


@pytest.fixture(params=["horizontal", "vertical"])
def run(request) -> Path:
    return request.getfixturevalue(f"{request.param}_run")


# --- an independent computation: scorecard.json + fedrisk.models.binning ---------------------


def card_records(run: Path) -> tuple[dict, dict[str, dict]]:
    """scorecard.json and each data party's characteristics from its own part, by name."""
    card = json.loads((run / "scorecard.json").read_text())
    parts = {}
    for file in sorted((run / "model").glob("scorecard-*.json")):
        part = json.loads(file.read_text())
        parts.update({c["name"]: c for c in part["characteristics"]})
    return card, parts


def independent(run: Path, columns: dict[str, np.ndarray]):
    """(bins, integer points, exact log-odds) of rows in the run's own canonical columns
    (float with NaN, stripped str with ""), through fedrisk.models.binning's classes."""
    card, parts = card_records(run)
    n = len(next(iter(columns.values())))
    points = np.full(n, card["base_points_rounded"], dtype=np.int64)
    z = np.full(n, card["intercept"])
    all_bins = []
    assert card["base_points_rounded"] == int(round(card["base_points"]))
    for c in card["characteristics"]:
        b = (c if c["binning"] is not None else parts[c["name"]])["binning"]
        if b["kind"] == "numeric":
            assert b["grid"] == {"limit": GRID_LIMIT, "cells": GRID_CELLS}
            bins_of = NumericBinning(c["name"], tuple(b["cuts"]), b.get("missing_to"))
        else:
            bins_of = CategoricalBinning(
                c["name"], tuple(map(tuple, b["groups"])), b["unseen"], b.get("missing_to")
            )
        bins = bins_of.assign(columns[c["name"]])
        customers = np.array([x["customers"] for x in c["bins"]])
        bad = np.array([x["defaulters"] for x in c["bins"]])
        woe, _ = woe_iv(customers - bad, bad)
        np.testing.assert_allclose(woe, [x["woe"] for x in c["bins"]], atol=5e-7)
        points += np.array([x["points"] for x in c["bins"]])[bins]
        z += c["coefficient"] * woe[bins]
        all_bins.append(bins)
    return np.column_stack(all_bins), points, z


# --- held-out-like rows, read back from the German csv files ---------------------------------


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def german_rows(kind: str) -> tuple[list[str], list[list[str]]]:
    """The run's source rows as strings: the pooled file, or bank joined with bureau."""
    if kind == "horizontal":
        return read_csv(DATA / "german-style-credit.csv")
    bank_header, bank = read_csv(DATA / "german-style-bank.csv")
    bureau_header, bureau = read_csv(DATA / "german-style-bureau.csv")
    by_id = {r[0]: r[1:] for r in bureau}
    return bank_header + bureau_header[1:], [r + by_id[r[0]] for r in bank if r[0] in by_id]


def cut_values(run: Path) -> dict[str, list[str]]:
    """Per numeric characteristic, the exact boundary value sinh(-L + c·Δ) of each of its
    cut cells c and the floats either side of it, as csv text (repr round-trips)."""
    card, parts = card_records(run)
    out = {}
    for c in card["characteristics"]:
        b = (c if c["binning"] is not None else parts[c["name"]])["binning"]
        if b["kind"] == "numeric":
            at = np.sinh(-GRID_LIMIT + np.array(b["cuts"], dtype=np.float64) * GRID_STEP)
            near = np.concatenate([at, np.nextafter(at, -np.inf), np.nextafter(at, np.inf)])
            out[c["name"]] = [repr(float(v)) for v in near]
    return out


def edge_rows(header: list[str], numeric: set[str], cuts: dict[str, list[str]], n: int):
    """Rows a scoring desk might send: padded, missing, unknown, huge, tiny, negative and
    exact grid-boundary values, in every column."""
    numbers = [" 12 ", "NA", "?", "", "NaN", "nan", "null", "1e300", "-1e300", "-5", "0", "-0",
               "5e-324", "2.5e-300", "1.7976931348623157e308", repr(float(np.sinh(-GRID_LIMIT))),
               repr(float(np.sinh(GRID_LIMIT)))]  # fmt: skip
    texts = [" own ", "brand-new", "", "NA", "?", "None", "N/A", "  no checking  "]
    out = []
    for i in range(n):
        row = [f"edge-{i}", str(i % 2)]
        for j, name in enumerate(header[2:]):
            pool = [*numbers, *cuts.get(name, [])] if name in numeric else texts
            row.append(pool[(i + j) % len(pool)])
        out.append(row)
    return out


def held_out_like(run: Path, tmp_path: Path):
    """(raw string columns by name, the run's own reading of the same file): the German
    rows of the run's files, then edge rows."""
    header, rows = german_rows("vertical" if (run / "model").is_dir() else "horizontal")
    first = load_csv_columns(DATA / "german-style-credit.csv", "y", "id")
    numeric = {name for name, v in first.columns.items() if v.dtype.kind == "f"}
    cuts = cut_values(run)
    n = max(len(numbers) for numbers in cuts.values()) + 20
    rows = rows + edge_rows(header, numeric, cuts, n)
    file = tmp_path / "held-out-like.csv"
    with open(file, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([header, *rows])
    canonical = load_csv_columns(file, "y", "id")
    assert {n for n, v in canonical.columns.items() if v.dtype.kind == "f"} == numeric
    raw = {name: [r[j] for r in rows] for j, name in enumerate(header)}
    return raw, canonical.columns


# --- the run's own numbers ---------------------------------------------------------------------


@pytest.mark.slow
def test_horizontal_card_scores_the_held_out_customers_as_the_run_did(horizontal_run):
    model = fedrisk.load_model(horizontal_run)
    assert isinstance(model, FederatedWoeScorecard)
    summary = json.loads((horizontal_run / "summary.json").read_text())
    test = prepare_characteristics(load_scenario(HORIZONTAL)).test
    check_run_numbers(model, summary, test.columns, test.y)
    # model.json is the same logistic regression, on the WOE-coded columns
    logistic = load_model(horizontal_run / "model.json")
    assert isinstance(logistic, FederatedWoeScorecard)  # its raw-row face is the card
    record = json.loads((horizontal_run / "model.json").read_text())
    woe_model = FederatedLogisticModel.from_record(record)
    assert woe_model.feature_names_ == model.feature_names_
    np.testing.assert_array_equal(woe_model.coef_, model.coef_)
    assert woe_model.intercept_ == model.intercept_
    bins = model.bins_(test.columns)
    coded = np.column_stack([c.woe[bins[:, j]] for j, c in enumerate(model.characteristics_)])
    np.testing.assert_allclose(
        woe_model.decision_function(coded), model.decision_function(test.columns), rtol=1e-12
    )


@pytest.mark.slow
def test_vertical_card_scores_the_held_out_customers_as_the_run_did(vertical_run):
    model = fedrisk.load_model(vertical_run)
    assert isinstance(model, FederatedWoeScorecard)
    assert model.parties_ == ("bank", "bureau")
    summary = json.loads((vertical_run / "summary.json").read_text())
    # the run's held-out customers: the bank's split of the shared ids, from its secret
    s = load_scenario(VERTICAL)
    data = load_vertical_characteristics(s)
    holder, bureau = data.holder, data.parties[0]
    shared = sorted(set(map(str, holder.ids)) & set(map(str, bureau.ids)))
    at = {str(i): k for k, i in enumerate(holder.ids)}
    y = holder.y[[at[i] for i in shared]]
    seed = RunSecrets(MASTER).of("bank").seed_int("vertical/split")
    _, te = split_indices(y, s.data.test_fraction, seed)
    test_ids = [shared[i] for i in te]
    columns = {}
    for table in (holder, bureau):
        at = {str(i): k for k, i in enumerate(table.ids)}
        rows = [at[i] for i in test_ids]
        columns.update({name: v[rows] for name, v in table.columns.items()})
    check_run_numbers(model, summary, columns, y[te])


def check_run_numbers(model, summary, columns, y) -> None:
    points = model.score(columns)
    shown = summary["scorecard"]["integer_points"]
    assert (int(points.min()), int(points.max())) == (shown["min"], shown["max"])
    assert model.base_points_ == pytest.approx(summary["scorecard"]["base_points"], abs=1e-3)
    # the run's AUC of the integer points, through the PD they stand for
    offset = model.base_score_ - model.factor_ * math.log(model.base_odds_)
    pd_points = 1.0 / (1.0 + np.exp((points - offset) / model.factor_))
    got = score_metrics(y, pd_points)
    for key in ("auc", "ks", "gini"):
        assert got[key] == pytest.approx(shown[key], abs=1e-12)
    # the probabilities are the federated model's
    got = score_metrics(y, model.predict_proba(columns)[:, 1])
    for key in ("auc", "ks", "log_loss", "brier", "mean_pd"):
        assert got[key] == pytest.approx(summary["federated"][key], rel=1e-9, abs=1e-12)
    assert summary["federated"]["auc"] > 0.6


@pytest.mark.slow
def test_raw_csv_rows_score_as_scorecard_json_and_the_binning_say(run, tmp_path):
    """Rows read back from the German files as strings ("?", "NA", "", padded text,
    unknown categories, huge and boundary numbers) against an independent computation
    from scorecard.json (and the data parties' parts) with fedrisk.models.binning."""
    model = load_model(run)
    raw, canonical = held_out_like(run, tmp_path)
    bins, points, z = independent(run, canonical)
    np.testing.assert_array_equal(model.bins_(raw), bins)
    np.testing.assert_array_equal(model.score(raw), points)
    np.testing.assert_array_equal(model.decision_function(raw), z)
    proba = model.predict_proba(raw)
    np.testing.assert_allclose(proba[:, 1], 1.0 / (1.0 + np.exp(-z)), rtol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict(raw), (proba[:, 1] >= 0.5).astype(np.int8))
    # the run's canonical columns (NaN, "") give the same as the strings
    np.testing.assert_array_equal(model.score(canonical), points)
    # the rows exercise missing and unseen bins of both kinds
    for j, c in enumerate(model.characteristics_):
        missing_bin = c.n_bins - 1 if c.missing_to is None else c.missing_to
        assert (bins[:, j] == missing_bin).any(), c.name
        if c.kind == "text":
            assert (bins[:, j] == c.unseen).any(), c.name


@pytest.mark.slow
def test_every_shape_of_x_scores_the_same(run, tmp_path):
    model = load_model(run)
    raw, _ = held_out_like(run, tmp_path)
    expected = model.score(raw)
    names = model.feature_names_
    rows = [[raw[n][i] for n in names] for i in range(len(expected))]
    assert (model.score(rows) == expected).all()  # list of rows, all strings
    assert (model.score(np.array(rows, dtype=str)) == expected).all()
    objects = np.array(rows, dtype=object)
    for j, c in enumerate(model.characteristics_):  # numbers as numbers, None for missing
        if c.kind == "numeric":
            objects[:, j] = [
                None if v.strip() in MISSING_TOKENS else float(v) for v in objects[:, j]
            ]
    assert (model.score(objects) == expected).all()
    table = Table(raw)  # .columns, extra columns (id, y, unused) ignored
    assert (model.score(table) == expected).all()
    one = model.score({n: raw[n][3] for n in names})  # one row as scalars
    assert one.tolist() == [expected[3]]


class Table:
    """A table with ``.columns`` and no pandas (duck-typed like a DataFrame)."""

    def __init__(self, columns: dict[str, list]) -> None:
        self.columns = list(columns)
        self.data = np.array(list(columns.values()), dtype=object).T

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.data, dtype=dtype)


@pytest.mark.slow
def test_the_points_table_is_the_runs(run):
    model = load_model(run)
    with open(run / "scorecard.csv", newline="") as fh:
        printed = list(csv.DictReader(fh))
    rows = model.table()
    assert len(rows) == len(printed) == sum(c.n_bins for c in model.characteristics_)
    for mine, theirs in zip(rows, printed):
        for key, value in mine.items():
            if key == "label" and theirs["owner"] not in ("banks", "bank"):
                assert theirs["label"].startswith("bin ")  # the bank's card hides them
                continue
            assert str(value) == theirs[key], (key, mine, theirs)
    assert not any(r["label"].startswith("bin ") for r in rows)  # the parties' own labels


# --- broken inputs and files --------------------------------------------------------------------


@pytest.mark.slow
def test_bad_rows_are_one_line_value_errors(horizontal_run):
    model = load_model(horizontal_run)
    names = model.feature_names_
    good = {n: ["1"] if c.kind == "numeric" else ["own"] for n, c in
            zip(names, model.characteristics_)}  # fmt: skip
    with pytest.raises(ValueError, match=r"lacks 2 .*'duration', 'age'") as info:
        model.score({k: v for k, v in good.items() if k not in ("age", "duration")})
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"X\['age'\] row 1: 'forty' is not a number"):
        model.score(
            {**good, "age": ["40", "forty"], **{n: good[n] * 2 for n in names if n != "age"}}
        )
    with pytest.raises(ValueError, match="different lengths"):
        model.score({**good, "age": ["1", "2"]})
    with pytest.raises(ValueError, match=r"has 3 columns but the scorecard has 12"):
        model.score(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"must be 2-D .*reshape"):
        model.score(np.zeros(12))
    with pytest.raises(ValueError, match="rows have different lengths"):
        model.score([["1"] * 12, ["1"] * 11])
    with pytest.raises(ValueError, match=r"lacks 1 .*'age'"):
        model.score(Table({n: v for n, v in good.items() if n != "age"}))


def copy_run(run: Path, tmp_path: Path) -> Path:
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


def edit_json(path: Path, change) -> None:
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


@pytest.mark.slow
def test_a_missing_or_unreadable_party_part_names_the_file(vertical_run, tmp_path):
    run = copy_run(vertical_run, tmp_path)
    part = run / "model" / "scorecard-bureau.json"
    saved = part.read_bytes()
    part.unlink()
    with pytest.raises(InputError, match=r"scorecard-bureau\.json: missing: .*'bureau''s own part"):
        load_model(run)
    part.write_text("{not json")
    with pytest.raises(
        InputError, match=r"scorecard-bureau\.json: not valid JSON .*'bureau''s own part"
    ) as info:
        load_model(run)
    assert "\n" not in str(info.value)
    part.write_bytes(b"\xff\xfe")
    with pytest.raises(InputError, match=r"scorecard-bureau\.json: .*own part"):
        load_model(run)
    part.write_bytes(saved)
    edit_json(part, lambda r: r.update(owner="bank"))
    with pytest.raises(InputError, match=r"owner: expected 'bureau'"):
        load_model(run)
    part.write_bytes(saved)
    edit_json(part, lambda r: r["characteristics"][0]["bins"][0].update(points=99))
    with pytest.raises(InputError, match=r"scorecard-bureau\.json: characteristic .* differ"):
        load_model(run)
    part.write_bytes(saved)
    edit_json(part, lambda r: r["characteristics"].pop())
    with pytest.raises(InputError, match=r"no 'age'.*own part"):
        load_model(run)
    part.write_bytes(saved)
    with pytest.raises(InputError, match=r"one data party's own part .*load the run folder"):
        load_model(part)
    assert load_model(run / "scorecard.json").n_features_in_ == 11


@pytest.mark.slow
def test_an_edited_scorecard_json_is_refused(horizontal_run, tmp_path):
    run = copy_run(horizontal_run, tmp_path)
    card = run / "scorecard.json"
    saved = card.read_bytes()
    banks_part = r"scorecard-banks\.json: missing: .*'banks''s own part"
    cases = [
        (lambda r: r.update(format="nope"), r"format: expected 'fedrisk-woe-scorecard-v1'"),
        (lambda r: r["characteristics"][0]["bins"][0].update(points=99), r"bin 1: points 99"),
        (lambda r: r["characteristics"][1]["bins"][0].update(defaulters=1), r"does not follow"),
        (lambda r: r.update(base_points_rounded=1), r"base_points_rounded"),
        (lambda r: r["characteristics"][8]["binning"].update(grid={"limit": 30}), r"grid"),
        (lambda r: r["characteristics"][8]["binning"]["cuts"].pop(), r"cuts make"),
        (lambda r: r["characteristics"][0]["binning"].update(unseen=9), r"unseen"),
        (lambda r: r["characteristics"][0].update(binning=None), banks_part),
    ]
    for change, message in cases:
        card.write_bytes(saved)
        edit_json(card, change)
        with pytest.raises(InputError, match=message) as info:
            load_model(run)
        assert "\n" not in str(info.value)
        assert str(info.value).startswith(str(card) if message != banks_part else str(run))
    card.unlink()
    with pytest.raises(InputError, match=r"scorecard\.json: missing: .*lost its points table"):
        load_model(run)  # summary.json says it is a scorecard run: never model.json alone


# --- the grid, bit for bit -------------------------------------------------------------------


def boundary(k: int) -> float:
    return float(np.sinh(-GRID_LIMIT + k * GRID_STEP))


def test_the_grid_constants_are_the_binnings():
    assert (IO_GRID_LIMIT, IO_GRID_CELLS) == (GRID_LIMIT, GRID_CELLS)
    assert GRID_STEP == 2.0 * GRID_LIMIT / GRID_CELLS
    assert IO_MISSING_TOKENS == MISSING_TOKENS


def test_every_grid_boundary_and_its_neighbours_find_the_same_cell():
    k = np.arange(GRID_CELLS + 1)
    b = np.sinh(-GRID_LIMIT + k * GRID_STEP)
    x = np.concatenate([b, np.nextafter(b, -np.inf), np.nextafter(b, np.inf), -b])
    x = np.concatenate([x, [0.0, -0.0, 5e-324, -5e-324, np.inf, -np.inf, np.nan, 1.8e308]])
    np.testing.assert_array_equal(grid_cells(x), binning.grid_cells(x))
    assert grid_cells(x).dtype == np.int64


finite = st.floats(allow_nan=True, allow_infinity=True)
near_boundary = st.tuples(st.integers(0, GRID_CELLS), st.integers(-3, 3)).map(
    lambda t: float(
        np.nextafter(boundary(t[0]), math.copysign(np.inf, t[1])) if t[1] else boundary(t[0])
    )
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(finite, near_boundary, st.floats(-1e-300, 1e-300)), max_size=40))
@example([1e308, -1e308, 1e-320, -1e-320, 2.0**-1074, 36.0, -36.0])
def test_grid_cells_equal_the_binnings_bit_for_bit(values):
    x = np.array(values, dtype=np.float64)
    np.testing.assert_array_equal(grid_cells(x), binning.grid_cells(x))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(1, GRID_CELLS - 1), unique=True, max_size=8).map(sorted),
    st.lists(st.one_of(finite, near_boundary), min_size=1, max_size=30),
)
def test_numeric_bins_equal_numeric_binning_assign(cuts, values):
    x = np.array(values, dtype=np.float64)
    c = WoeCharacteristic("x", 0.5, np.zeros(len(cuts) + 2), cuts=cuts)
    expected = NumericBinning("x", tuple(cuts)).assign(x)
    np.testing.assert_array_equal(c.assign(x), expected)
    # the same numbers as the strings a csv file holds (repr round-trips)
    text = ["NA" if v != v else repr(v) for v in values]
    np.testing.assert_array_equal(c.assign(text), expected)


categories = st.sampled_from(["own", "rent", "free", "<0", ">=200", "a b", "x"])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(categories, unique=True, min_size=1, max_size=5),
    st.integers(0, 4),
    st.lists(st.one_of(categories, st.sampled_from(["", " own ", "zzz", "NA", "?"]),
                       st.none(), st.just(float("nan"))), min_size=1, max_size=20),
)  # fmt: skip
def test_text_bins_equal_categorical_binning_assign(cats, split, values):
    split = min(split, len(cats) - 1)
    groups = tuple(g for g in (tuple(cats[: split + 1]), tuple(cats[split + 1 :])) if g)
    unseen = len(groups) - 1
    c = WoeCharacteristic("t", 1.0, np.zeros(len(groups) + 1), groups=groups, unseen=unseen)
    # the run's csv reader turned missing tokens into "": the run's column
    run_column = ["" if v is None or v != v or v.strip() in MISSING_TOKENS else v for v in values]
    expected = CategoricalBinning("t", groups, unseen).assign(np.array(run_column, dtype=str))
    np.testing.assert_array_equal(c.assign(np.array(values, dtype=object)), expected)


# --- a hand-made card, through the run's own writer ------------------------------------------


def made_card(rng) -> WoeScorecard:
    """A vertical-style card: the bank's numeric and text characteristics and a data
    party's, with counts that need smoothing and an empty missing bin."""
    num = NumericBinning("income", (2100, 2200, 2300))
    text = CategoricalBinning("housing", (("own",), ("rent", "free")), 1)
    theirs = NumericBinning("age", (2250,))
    chars = []
    for owner, b in (("bank", num), ("bank", text), ("bureau", theirs)):
        n = b.n_bins()
        good = rng.integers(1, 40, n)
        bad = rng.integers(1, 15, n)
        bad[0] = 0  # a bin without defaulters: every populated bin is smoothed
        if owner == "bureau":
            good[-1] = bad[-1] = 0  # nobody missing: WOE 0, not smoothed
        woe, _ = woe_iv(good, bad)
        coef = float(rng.normal(-0.7, 0.2))
        labels = tuple(b.labels())
        chars.append(Characteristic(b.name, owner, coef, woe, good, bad, labels, b))
    return WoeScorecard(600.0, 50.0, 20.0, float(rng.normal(-1, 0.3)), tuple(chars))


def test_a_written_card_loads_and_scores_as_woe_scorecard_does(tmp_path):
    rng = np.random.default_rng(5)
    card = made_card(rng)
    write_woe_scorecard(card.hiding({"bureau"}), tmp_path)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "scorecard-bureau.json").write_text(json.dumps(card.part_of("bureau")))
    model = load_model(tmp_path)
    assert model.feature_parties_ == ("bank", "bank", "bureau")
    n = 500
    X = {
        "income": np.where(rng.random(n) < 0.1, np.nan, np.sinh(rng.normal(0, 8, n))),
        "housing": rng.choice(["own", " rent", "free ", "castle", "", "NA"], n).astype(object),
        "age": rng.normal(30, 20, n).round(),
    }
    X["housing"][:5] = None
    bins = np.column_stack([c.binning.assign(np.asarray(X[c.name])) for c in card.characteristics])
    bins[:, 1] = np.where(np.isin(X["housing"], [None, "NA"]), 2, bins[:, 1])
    np.testing.assert_array_equal(model.bins_(X), bins)
    np.testing.assert_array_equal(model.score(X), card.points(bins))
    np.testing.assert_array_equal(model.decision_function(X), card.logit(bins))
    for mine, c in zip(model.characteristics_, card.characteristics):
        np.testing.assert_array_equal(mine.woe, c.woe)  # exact, from the counts
        np.testing.assert_array_equal(woe_of_counts(c.good, c.bad), c.woe)
    assert [r["label"] for r in model.table()] == [r["label"] for r in card.rows()]
    assert "FederatedWoeScorecard(3 characteristics" in repr(model)


def test_woe_characteristic_refuses_what_it_cannot_bin():
    with pytest.raises(ValueError, match="either cuts"):
        WoeCharacteristic("x", 1.0, [0, 0])
    with pytest.raises(ValueError, match="strictly increasing"):
        WoeCharacteristic("x", 1.0, [0, 0, 0], cuts=[5, 5])
    with pytest.raises(ValueError, match="woe must be 3"):
        WoeCharacteristic("x", 1.0, [0, 0], cuts=[5])
    with pytest.raises(ValueError, match="two groups"):
        WoeCharacteristic("t", 1.0, [0, 0, 0], groups=[["a"], ["a"]])
    with pytest.raises(ValueError, match="unseen"):
        WoeCharacteristic("t", 1.0, [0, 0], groups=[["a"]], unseen=1)
    with pytest.raises(ValueError, match="unique"):
        c = WoeCharacteristic("x", 1.0, [0, 0], cuts=[])
        FederatedWoeScorecard([c, c], 0.0)
