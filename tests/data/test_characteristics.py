"""Scorecard characteristics: text columns and missing values kept, the numeric path's
hint, subset/select, uninformative columns, and the same split, partition and vertical
checks as the logistic workflow."""

import numpy as np
import pytest

from fedrisk.data import (
    MISSING_TOKENS,
    Characteristics,
    Dataset,
    drop_uninformative,
    load_csv,
    load_csv_characteristics,
    load_vertical_characteristics,
    prepare_characteristics,
)
from fedrisk.data.prepare import prepare_horizontal
from fedrisk.errors import DataError, InputError
from fedrisk.scenario import load_scenario, scenario_from_dict
from tests.conftest import ROOT

GERMAN = ROOT / "scenarios" / "data"


def write(tmp_path, text, name="party.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def one_line_error(call, cls=DataError) -> str:
    with pytest.raises(cls) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, "messages must be one line"
    assert isinstance(info.value, InputError)
    return message


# --- reading ----------------------------------------------------------------------------


def test_text_and_numeric_columns_with_missing_values(tmp_path):
    text = (
        "id,y,car,amount,age,mixed\n"
        " 1 ,0, own ,100,NA,1\n"
        "2,1,rent,,35,x\n"
        "3,0,,2.5e3, 41 ,\n"
        "4,1,?,7,null,2\n"
    )
    ch = load_csv_characteristics(write(tmp_path, text), label="y", id_column="id")
    assert ch.names == ("car", "amount", "age", "mixed") and ch.n_rows == 4
    assert ch.text_names == ("car", "mixed") and ch.numeric_names == ("amount", "age")
    assert ch.is_text("car") and not ch.is_text("amount")
    assert ch.columns["car"].tolist() == ["own", "rent", "", ""]
    assert ch.columns["mixed"].tolist() == ["1", "x", "", "2"]  # one non-number: all text
    assert ch.columns["amount"].dtype == np.float64
    np.testing.assert_array_equal(ch.columns["amount"], [100, np.nan, 2500, 7])
    np.testing.assert_array_equal(ch.columns["age"], [np.nan, 35, 41, np.nan])
    assert ch.ids.tolist() == ["1", "2", "3", "4"] and ch.y.dtype == np.int8
    assert ch.y.tolist() == [0, 1, 0, 1] and ch.name == str(tmp_path / "party.csv")
    for a in (ch.ids, ch.y, *ch.columns.values()):
        assert not a.flags.writeable


def test_every_missing_token_is_missing_and_the_list_is_case_sensitive(tmp_path):
    cells = list(MISSING_TOKENS) + [" NA ", "n/a", "NONE"]
    rows = "".join(f"{i},{i % 2},{c},{c}\n" for i, c in enumerate(cells))
    rows += f"{len(cells)},1,4,{len(cells)}\n"
    ch = load_csv_characteristics(write(tmp_path, "id,y,n,t\n" + rows), "y", "id")
    t = ch.columns["t"]  # text: 'n/a' and 'NONE' are values, not missing
    k = len(MISSING_TOKENS) + 1
    assert (t[:k] == "").all() and t[k:].tolist() == ["n/a", "NONE", str(len(cells))]
    assert ch.is_text("n")  # 'n/a' does not parse as a number


def test_feature_only_file_and_a_missing_number_token(tmp_path):
    ch = load_csv_characteristics(write(tmp_path, "id,a\n7,1\n8,NAN\n"), None, "id")
    assert ch.y is None and np.isnan(ch.columns["a"][1])  # parses as NaN: missing too


def test_infinite_number_refused(tmp_path):
    path = write(tmp_path, "id,y,a,b\n1,0,1,x\n2,1,-inf,y\n")
    message = one_line_error(lambda: load_csv_characteristics(path, "y", "id"))
    assert message == (
        f"{path}: column 'a', line 3: value '-inf' is infinite; "
        "numbers must be finite (text and missing values are accepted)"
    )


@pytest.mark.parametrize(
    "cell, problem", [("", "value is empty"), ("NA", "value 'NA' is not a number")]
)
def test_label_missing_refused(tmp_path, cell, problem):
    path = write(tmp_path, f"id,y,a\n1,0,x\n2,{cell},y\n3,1,z\n")
    message = one_line_error(lambda: load_csv_characteristics(path, "y", "id"))
    assert f"party.csv: label column 'y', line 3: {problem}; labels must be 0 or 1" in message


def test_same_id_and_header_checks_as_load_csv(tmp_path):
    path = write(tmp_path, "id,y,a\n1,0,x\n2,1,y\n1,0,z\n")
    message = one_line_error(lambda: load_csv_characteristics(path, "y", "id"))
    assert message == one_line_error(lambda: load_csv(path, "y", "id"))
    assert "'1' twice (lines 2 and 4)" in message
    message = one_line_error(lambda: load_csv_characteristics(path, "default", "id"))
    assert "no label column 'default'" in message


def test_numeric_path_hints_at_the_scorecard(tmp_path):
    path = write(tmp_path, "id,y,a\n1,0,1\n2,1,car\n")
    message = one_line_error(lambda: load_csv(path, "y", "id"))
    assert message == (
        f"{path}: column 'a', line 3: value 'car' is not a number; every feature must be a "
        "finite number (text columns and missing values are accepted with "
        'model.kind = "scorecard", which bins them)'
    )
    path = write(tmp_path, "id,y,a\n1,0,1\n2,1,inf\n")
    assert "scorecard" not in one_line_error(lambda: load_csv(path, "y", "id"))
    path = write(tmp_path, "id,y,a\n1,0,1\n2,car,1\n")
    assert "scorecard" not in one_line_error(lambda: load_csv(path, "y", "id"))


# --- the table ----------------------------------------------------------------------------


def small() -> Characteristics:
    columns = {
        "t": np.array(["a", "b", "", "a"]),
        "n": np.array([1.0, np.nan, 3.0, 4.0]),
        "i": np.array([1, 2, 3, 4]),
    }
    return Characteristics(columns, np.array([0, 1, 0, 1]), np.array(["w", "x", "y", "z"]), "s")


def test_subset_and_select_keep_dtypes():
    ch = small()
    assert ch.columns["i"].dtype == np.float64  # integers become float64
    sub = ch.subset(np.array([3, 1]))
    assert sub.ids.tolist() == ["z", "x"] and sub.y.tolist() == [1, 1]
    assert sub.columns["t"].dtype.kind == "U" and sub.columns["t"].tolist() == ["a", "b"]
    assert sub.columns["n"].dtype == np.float64 and np.isnan(sub.columns["n"][1])
    assert ch.subset(np.array([True, False, False, True])).ids.tolist() == ["w", "z"]
    picked = ch.select(["n", "t"])
    assert picked.names == ("n", "t") and picked.text_names == ("t",)
    assert picked.columns["t"].dtype.kind == "U" and picked.ids is not None
    with pytest.raises(ValueError, match="repeated"):
        ch.subset([0, 0])
    assert "unknown column(s) 'q'" in one_line_error(lambda: ch.select(["q"]))


def test_constructor_refuses_bad_columns():
    ids = np.array(["a", "b"])
    with pytest.raises(DataError, match="infinite"):
        Characteristics({"x": np.array([1.0, np.inf])}, None, ids, "s")
    with pytest.raises(DataError, match="one value per id"):
        Characteristics({"x": np.array([1.0])}, None, ids, "s")
    with pytest.raises(DataError, match="unique"):
        Characteristics({"x": np.array([1.0, 2.0])}, None, np.array(["a", "a"]), "s")


def test_from_dataset():
    ds = Dataset(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0, 1]), ["p", "q"], ("a", "b"), "d")
    ch = Characteristics.from_dataset(ds)
    assert ch.names == ("a", "b") and ch.numeric_names == ("a", "b") and ch.name == "d"
    assert ch.columns["b"].tolist() == [2.0, 4.0] and ch.y.tolist() == [0, 1]


def test_drop_uninformative_names_each_dropped_column():
    columns = {
        "keep": np.array(["a", "b", "a"]),
        "three": np.array([3.0, 3.0, 3.0]),
        "own": np.array(["own", "own", "own"]),
        "empty": np.array([np.nan, np.nan, np.nan]),
        "blank": np.array(["", "", ""]),
        "flag": np.array([5.0, np.nan, 5.0]),  # one value and missing: a missing indicator
    }
    ch = Characteristics(columns, np.array([0, 1, 1]), np.array(["1", "2", "3"]), "f.csv")
    kept, warnings = drop_uninformative(ch)
    assert kept.names == ("keep", "flag")
    assert warnings == [
        "f.csv: column 'three' has one distinct value (3) and is dropped",
        "f.csv: column 'own' has one distinct value ('own') and is dropped",
        "f.csv: column 'empty' has no value (every cell is missing) and is dropped",
        "f.csv: column 'blank' has no value (every cell is missing) and is dropped",
    ]
    assert drop_uninformative(kept) == (kept, [])
    nothing = ch.select(["three", "empty"])
    message = one_line_error(lambda: drop_uninformative(nothing), InputError)
    assert message.startswith("f.csv: no column is left") and "'three', 'empty'" in message


# --- scenarios ----------------------------------------------------------------------------


def test_horizontal_split_and_parts_match_prepare_horizontal():
    s = load_scenario(ROOT / "scenarios" / "quickstart.toml", ["data.scaling=none"])
    numeric = prepare_horizontal(s)
    ch = prepare_characteristics(s)
    assert np.array_equal(ch.test.ids, numeric.test.ids)
    assert np.array_equal(ch.train.ids, numeric.train.ids)
    assert np.array_equal(ch.train.y, numeric.train.y)
    assert len(ch.parts) == 5 and ch.party_names == numeric.party_names
    for a, b in zip(ch.parts, numeric.parts, strict=True):
        assert np.array_equal(a, b)
    assert ch.train.names == numeric.train.feature_names and ch.warnings == ()
    assert np.array_equal(ch.test.columns["AGE"], numeric.test.X[:, 4])  # unscaled


def test_horizontal_csv_keeps_text_and_honours_exclude(tmp_path):
    path = GERMAN / "german-style-credit.csv"
    s = scenario_from_dict(
        {
            "data": {"source": "csv", "path": str(path), "exclude": ["job"]},
            "federation": {"banks": 3, "partition": "iid"},
        },
        "scen.toml",
    )
    p = prepare_characteristics(s)
    assert "job" not in p.train.names and p.train.is_text("purpose")
    assert p.train.n_rows + p.test.n_rows == 1000 and p.test.n_rows == 200
    assert np.isnan(p.train.columns["credit_amount"]).any()
    assert sum(part.size for part in p.parts) == p.train.n_rows


def german_vertical(tmp_path, bank_columns=None):
    bank = f"columns = {bank_columns!r}\n" if bank_columns else ""
    (tmp_path / "scen.toml").write_text(
        '[data]\nsource = "csv"\n\n[federation]\nkind = "vertical"\n\n'
        '[[federation.parties]]\nname = "bureau"\n'
        f'path = "{GERMAN / "german-style-bureau.csv"}"\n\n'
        f'[[federation.parties]]\nname = "bank"\nlabel = true\n{bank}'
        f'path = "{GERMAN / "german-style-bank.csv"}"\n'
    )
    return load_scenario(tmp_path / "scen.toml")


def test_vertical_german_style_keeps_text_and_missing_values(tmp_path):
    v = load_vertical_characteristics(german_vertical(tmp_path))
    assert v.party_names == ("bank", "bureau") and v.warnings == ()
    bank, (bureau,) = v.holder, v.parties
    assert bank.y is not None and bureau.y is None
    assert bank.n_rows == 950 and bureau.n_rows == 960
    assert bank.text_names == ("checking_status", "credit_history", "savings_status")
    assert bank.numeric_names == ("duration", "credit_amount", "existing_credits")
    assert (bank.columns["savings_status"] == "").sum() > 0
    assert np.isnan(bank.columns["credit_amount"]).sum() > 0
    assert np.isnan(bureau.columns["age"]).sum() > 0 and bureau.is_text("employment")
    assert (bureau.columns["employment"] == "").sum() > 0  # the '?' cells
    assert "federation.parties[1].path" in bank.name


def test_vertical_columns_and_messages_as_the_vertical_csv_loader(tmp_path):
    v = load_vertical_characteristics(german_vertical(tmp_path, ["duration", "checking_*"]))
    assert v.holder.names == ("checking_status", "duration")
    s = german_vertical(tmp_path, ["nope"])
    message = one_line_error(lambda: load_vertical_characteristics(s))
    assert "federation.parties[1].columns: 'nope' matches no column" in message


def test_vertical_bundled_is_the_numeric_split():
    s = load_scenario(ROOT / "scenarios" / "vertical.toml")
    v = load_vertical_characteristics(s)
    assert v.party_names == ("bank", "provider") and v.holder.n_rows == 30000
    assert v.holder.names[0] == "PAY_6" and v.parties[0].text_names == ()
