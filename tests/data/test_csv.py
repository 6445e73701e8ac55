"""load_csv / load_feature_csv: good files load; every bad case is a one-line DataError."""

import gzip

import numpy as np
import pytest

from fedrisk.data import load_csv, load_feature_csv
from fedrisk.errors import DataError, InputError

GOOD = "id,y,x0,x1,x2,x3,x4\n" + "".join(
    f"{i},{i % 2},{i}.5,{-i},1e3,{i * i},0\n" for i in range(1, 11)
)


def write(tmp_path, text, name="party.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path, label="y", id_column="id", **kw) -> str:
    with pytest.raises(DataError) as info:
        load_csv(path, label=label, id_column=id_column, **kw)
    message = str(info.value)
    assert "\n" not in message, "messages must be one line"
    assert isinstance(info.value, InputError)
    return message


# --- good files -----------------------------------------------------------------------


def test_good_csv_loads_with_right_shapes_and_dtypes(tmp_path):
    ds = load_csv(write(tmp_path, GOOD), label="y", id_column="id")
    assert ds.X.shape == (10, 5) and ds.X.dtype == np.float64 and ds.X.flags.c_contiguous
    assert ds.y.dtype == np.int8 and ds.y.tolist() == [i % 2 for i in range(1, 11)]
    assert ds.ids.tolist() == [str(i) for i in range(1, 11)]
    assert ds.feature_names == ("x0", "x1", "x2", "x3", "x4")
    assert ds.X[2].tolist() == [3.5, -3.0, 1000.0, 9.0, 0.0]
    assert ds.name == str(tmp_path / "party.csv")
    assert not ds.X.flags.writeable


def test_label_written_as_float_string_ids_quotes_and_blank_lines(tmp_path):
    text = '"cust","target","a"\nC1,0.0,1\n\nC2,1.0,2\r\nC3, 1 ,3\n\n'
    ds = load_csv(write(tmp_path, text), label="target", id_column="cust", display_name="bank A")
    assert ds.y.tolist() == [0, 1, 1]
    assert ds.ids.tolist() == ["C1", "C2", "C3"]
    assert ds.name == "bank A"


def test_gzip_file_and_label_column_anywhere(tmp_path):
    path = tmp_path / "p.csv.gz"
    path.write_bytes(gzip.compress(b"x0,id,x1,y\n1,a,2,0\n3,b,4,1\n"))
    ds = load_csv(path, label="y", id_column="id")
    assert ds.feature_names == ("x0", "x1") and ds.X.tolist() == [[1, 2], [3, 4]]


def test_feature_only_file(tmp_path):
    ids, X, names = load_feature_csv(write(tmp_path, "id,x0,x1\n7,1,2\n8,3,4\n"), id_column="id")
    assert ids.tolist() == ["7", "8"] and names == ("x0", "x1") and X.shape == (2, 2)
    assert not X.flags.writeable and not ids.flags.writeable


def test_feature_only_file_reports_bad_cell(tmp_path):
    with pytest.raises(
        DataError, match=r"host\.csv: column 'x1', line 3: value 'oops' is not a number"
    ):
        load_feature_csv(write(tmp_path, "id,x0,x1\n7,1,2\n8,3,oops\n", "host.csv"), id_column="id")


# --- one test per error case -----------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: no such CSV file$"):
        load_csv(tmp_path / "nope.csv", label="y", id_column="id")


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(DataError, match="is a folder; give the path of a CSV file"):
        load_csv(tmp_path, label="y", id_column="id")


def test_unreadable_bytes(tmp_path):
    path = tmp_path / "bin.csv"
    path.write_bytes(b"id,y,x\n\xff\xfe\x00,1,2\n")
    msg = load_error(path)
    assert "bin.csv" in msg and "cannot read" in msg


def test_empty_file(tmp_path):
    msg = load_error(write(tmp_path, "", "empty.csv"))
    assert "empty.csv" in msg and "empty" in msg


def test_no_header(tmp_path):
    msg = load_error(write(tmp_path, "1,0,2.5\n2,1,3.5\n", "nohead.csv"))
    assert "nohead.csv" in msg and "no header" in msg


def test_semicolon_separated(tmp_path):
    msg = load_error(write(tmp_path, "id;y;x\n1;0;2\n2;1;3\n", "semi.csv"))
    assert "semi.csv" in msg and "comma-separated" in msg


def test_missing_id_column(tmp_path):
    msg = load_error(write(tmp_path, GOOD), id_column="customer")
    assert "party.csv" in msg and "no id column 'customer'" in msg and "'x0'" in msg


def test_missing_label_column(tmp_path):
    msg = load_error(write(tmp_path, GOOD), label="default")
    assert "party.csv" in msg and "no label column 'default'" in msg and "'id'" in msg


def test_column_list_is_truncated(tmp_path):
    header = "id,y," + ",".join(f"x{i}" for i in range(40))
    text = header + "\n" + "1,0" + ",1" * 40 + "\n" + "2,1" + ",1" * 40 + "\n"
    msg = load_error(write(tmp_path, text), label="target")
    assert "(42 in all)" in msg and "'x39'" not in msg


def test_duplicated_column_names(tmp_path):
    msg = load_error(write(tmp_path, "id,y,x0,x0\n1,0,1,2\n2,1,3,4\n"))
    assert "party.csv" in msg and "'x0'" in msg and "more than once" in msg


def test_empty_column_name(tmp_path):
    msg = load_error(write(tmp_path, "id,y,,x1\n1,0,1,2\n2,1,3,4\n"))
    assert "party.csv" in msg and "column 3 has no name" in msg


def test_ragged_row(tmp_path):
    msg = load_error(write(tmp_path, "id,y,x0\n1,0,1\n2,1\n"))
    assert "party.csv" in msg and "line 3 has 2 fields" in msg


def test_non_numeric_value(tmp_path):
    text = GOOD.replace("\n5,1,5.5,-5,", "\n5,1,5.5,abc,")
    msg = load_error(write(tmp_path, text))
    assert msg == (
        f"{tmp_path / 'party.csv'}: column 'x1', line 6: value 'abc' is not a number; "
        "every feature must be a finite number (text columns and missing values are "
        'accepted with model.kind = "scorecard", which bins them)'
    )


def test_first_bad_cell_is_reported_in_row_order(tmp_path):
    text = "id,y,x0,x1\n1,0,1,2\n2,1,3,bad\n3,0,worse,5\n"
    assert "column 'x1', line 3" in load_error(write(tmp_path, text))


def test_nan_value(tmp_path):
    msg = load_error(write(tmp_path, "id,y,x0,x1\n1,0,1,2\n2,1,NaN,4\n"))
    assert "party.csv: column 'x0', line 3: value is NaN" in msg


def test_empty_value(tmp_path):
    msg = load_error(write(tmp_path, "id,y,x0,x1\n1,0,1,2\n2,1,3,\n"))
    assert "party.csv: column 'x1', line 3: value is empty" in msg


def test_infinite_value(tmp_path):
    msg = load_error(write(tmp_path, "id,y,x0,x1\n1,0,1,-inf\n2,1,3,4\n"))
    assert "party.csv: column 'x1', line 2: value '-inf' is infinite" in msg


def test_line_numbers_are_the_editors(tmp_path):
    # the header is line 1; blank lines and quoted fields spanning lines count
    msg = load_error(write(tmp_path, "id,y,x0\n1,0,1\n\n2,1,x\n"))
    assert "line 4" in msg
    msg = load_error(write(tmp_path, 'id,y,x0,x1\n1,0,1,"3\n"\n2,1,x,4\n'))
    assert "column 'x0', line 4" in msg


def test_label_not_zero_or_one(tmp_path):
    msg = load_error(write(tmp_path, "id,y,x0\n1,0,1\n2,1,2\n3,1,3\n4,0,4\n5,2,5\n"))
    assert msg.endswith("party.csv: label column 'y' has value '2' (line 6); labels must be 0 or 1")


def test_label_not_a_number(tmp_path):
    msg = load_error(write(tmp_path, "id,y,x0\n1,0,1\n2,yes,2\n"))
    assert "party.csv: label column 'y', line 3: value 'yes' is not a number" in msg


def test_label_missing(tmp_path):
    msg = load_error(write(tmp_path, "id,y,x0\n1,0,1\n2,,2\n"))
    assert "label column 'y', line 3: value is empty" in msg


def test_duplicate_ids(tmp_path):
    msg = load_error(write(tmp_path, "id,y,x0\nA7,0,1\nB2,1,2\nA7,1,3\n"))
    assert "party.csv: id column 'id' has the id 'A7' twice (lines 2 and 4)" in msg


def test_empty_id(tmp_path):
    msg = load_error(write(tmp_path, "id,y,x0\n1,0,1\n,1,2\n"))
    assert "id column 'id', line 3: id is empty" in msg


@pytest.mark.parametrize("body", ["", "1,0,1\n"])
def test_fewer_than_two_rows(tmp_path, body):
    msg = load_error(write(tmp_path, "id,y,x0\n" + body))
    assert "party.csv" in msg and "at least 2" in msg


def test_only_one_class(tmp_path):
    msg = load_error(write(tmp_path, "id,y,x0\n1,0,1\n2,0,2\n3,0.0,3\n"))
    assert "party.csv: label column 'y' has only the value 0 in all 3 rows" in msg


def test_no_feature_columns(tmp_path):
    msg = load_error(write(tmp_path, "id,y\n1,0\n2,1\n"))
    assert "party.csv" in msg and "no feature columns" in msg


def test_label_same_as_id(tmp_path):
    assert "both 'id'" in load_error(write(tmp_path, GOOD), label="id")


def test_display_name_replaces_path_in_messages(tmp_path):
    msg = load_error(write(tmp_path, "id,y,x0\n1,0,1\n2,1,zz\n"), display_name="scenario data.path")
    assert msg.startswith("scenario data.path: column 'x0', line 3")


def test_long_values_are_cut(tmp_path):
    msg = load_error(write(tmp_path, "id,y,x0\n1,0,1\n2,1," + "z" * 500 + "\n"))
    assert len(msg) < 350  # the path, a 40-character cut of the value and the scorecard hint
