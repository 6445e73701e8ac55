"""Load a party's CSV file into a :class:`Dataset`, with one-line errors for bad data.

Every message names a row by its ``line N`` in the file, as an editor numbers lines
(the header is line 1; a quoted field spanning lines counts where its row starts).

Files ending in ``.gz`` are read through gzip. The file must be comma-separated UTF-8 with
a header line; for :func:`load_csv` and :func:`load_feature_csv` all columns other than the
id (and label) column are features and must be finite numbers. :func:`load_csv_columns`
(the scorecard's reader, wrapped by
:func:`fedrisk.data.characteristics.load_csv_characteristics`) also keeps text columns and
missing values (:data:`MISSING_TOKENS`).
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path
from typing import NamedTuple

import numpy as np

from fedrisk.data.dataset import Dataset, preview
from fedrisk.errors import DataError
from fedrisk.files import read_input_bytes

_FEATURE_RULE = "every feature must be a finite number"
_LABEL_RULE = "labels must be 0 or 1"
_SCORECARD_HINT = (
    ' (text columns and missing values are accepted with model.kind = "scorecard", which bins them)'
)
_FINITE_RULE = "numbers must be finite (text and missing values are accepted)"

# Cells that mean "missing" in a scorecard file (compared after stripping, case-sensitive).
MISSING_TOKENS: tuple[str, ...] = ("", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "?")


def load_csv(path: Path, label: str, id_column: str, display_name: str | None = None) -> Dataset:
    """A labelled party file: id column, 0/1 label column, every other column a feature.

    ``display_name`` (default ``str(path)``) names the file in error messages and becomes
    ``Dataset.name``. Needs at least 2 rows and both classes.
    """
    where = display_name or str(path)
    header, table, row_numbers = _read_table(Path(path), where)
    if label == id_column:
        raise DataError(f"{where}: label column and id column are both {label!r}; they must differ")
    id_pos = _column_index(header, id_column, "id", where)
    label_pos = _column_index(header, label, "label", where)
    feat_pos = [i for i in range(len(header)) if i not in (id_pos, label_pos)]
    if not feat_pos:
        raise DataError(f"{where}: no feature columns besides {id_column!r} and {label!r}")

    ids = _ids(table[:, id_pos], id_column, row_numbers, where)
    y = _labels(table[:, label_pos], label, row_numbers, where)
    names = [header[i] for i in feat_pos]
    X = _numbers(table[:, feat_pos], names, row_numbers, where, _FEATURE_RULE)
    return Dataset(X, y, ids, tuple(names), where)


def load_feature_csv(
    path: Path, id_column: str, display_name: str | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """A feature-only party file (no labels, e.g. a vertical data provider).

    Returns ``(ids, X, feature_names)``: ids a numpy str array, X float64 (n, d); both
    read-only. Same checks as :func:`load_csv` except the label ones.
    """
    where = display_name or str(path)
    header, table, row_numbers = _read_table(Path(path), where)
    id_pos = _column_index(header, id_column, "id", where)
    feat_pos = [i for i in range(len(header)) if i != id_pos]
    if not feat_pos:
        raise DataError(f"{where}: no feature columns besides the id column {id_column!r}")
    ids = _ids(table[:, id_pos], id_column, row_numbers, where)
    names = tuple(header[i] for i in feat_pos)
    X = np.ascontiguousarray(
        _numbers(table[:, feat_pos], list(names), row_numbers, where, _FEATURE_RULE)
    )
    ids.setflags(write=False)
    X.setflags(write=False)
    return ids, X, names


class CsvColumns(NamedTuple):
    """What :func:`load_csv_columns` read: the fields of a
    :class:`~fedrisk.data.characteristics.Characteristics`, which builds from it."""

    columns: dict[str, np.ndarray]  # file order; float64 (NaN = missing) or str ("" = missing)
    y: np.ndarray | None  # int8 0/1; None without a label column
    ids: np.ndarray  # str, unique
    name: str  # the display name


def load_csv_columns(
    path: Path, label: str | None, id_column: str, display_name: str | None = None
) -> CsvColumns:
    """A party file for the scorecard: every column but the id (and label) kept as a
    characteristic, numeric or text, with missing values.

    A column is numeric (float64, NaN = missing) when every non-missing cell parses as a
    number, otherwise text (numpy str, values stripped, "" = missing). Missing cells are
    those that, stripped, are one of :data:`MISSING_TOKENS` (case-sensitive). Numbers must
    be finite. ``label=None`` reads a feature-only file; with a label, the label and id
    checks and messages are those of :func:`load_csv` (labels 0/1, never missing, both
    classes present).
    """
    where = display_name or str(path)
    header, table, row_numbers = _read_table(Path(path), where)
    if label is not None and label == id_column:
        raise DataError(f"{where}: label column and id column are both {label!r}; they must differ")
    id_pos = _column_index(header, id_column, "id", where)
    label_pos = None if label is None else _column_index(header, label, "label", where)
    feat_pos = [i for i in range(len(header)) if i not in (id_pos, label_pos)]
    if not feat_pos:
        if label is None:
            raise DataError(f"{where}: no feature columns besides the id column {id_column!r}")
        raise DataError(f"{where}: no feature columns besides {id_column!r} and {label!r}")
    ids = _ids(table[:, id_pos], id_column, row_numbers, where)
    y = None if label_pos is None else _labels(table[:, label_pos], label, row_numbers, where)
    columns = {
        header[i]: _characteristic(table[:, i], header[i], row_numbers, where) for i in feat_pos
    }
    return CsvColumns(columns, y, ids, where)


# --- internals -------------------------------------------------------------------------


def _read_table(path: Path, where: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Header, a (rows, columns) numpy str table, and the file line each table row starts on."""
    raw = read_input_bytes(path, where, kind="CSV file", error=DataError)
    try:
        if path.name.endswith(".gz"):
            raw = gzip.decompress(raw)
        text = raw.decode("utf-8-sig")  # -sig: tolerate the BOM Excel writes
        reader = csv.reader(io.StringIO(text, newline=""))
        records, ends = [], []  # ends: the file line each record ends on
        for record in reader:
            records.append(record)
            ends.append(reader.line_num)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"{where}: cannot read the file ({reason}); it must be a UTF-8 CSV file"
        ) from None
    if not records or not any(records):
        raise DataError(
            f"{where}: file is empty; it must start with a header line such as 'id,y,x0,x1'"
        )

    header = [name.strip() for name in records[0]]
    _check_header(header, where)
    body = records[1:]
    # Lengths via map() stay in C; blank lines come out of csv.reader as [] and are skipped.
    lengths = np.fromiter(map(len, body), dtype=np.intp, count=len(body))
    ragged = (lengths != len(header)) & (lengths != 0)
    if ragged.any():
        r = int(np.argmax(ragged))
        raise DataError(
            f"{where}: line {ends[r] + 1} has {lengths[r]} fields but the "
            f"header has {len(header)} columns; "
            "every row must have one value per column"
        )
    keep = np.flatnonzero(lengths)
    if keep.size < 2:
        raise DataError(f"{where}: has {keep.size} data row(s); at least 2 are needed")
    if keep.size != len(body):
        body = [body[i] for i in keep]
    table = np.array(body, dtype=str)
    starts = np.asarray(ends, dtype=np.intp) + 1  # record i+1 starts after record i ends
    return header, table, starts[keep]


def _check_header(header: list[str], where: str) -> None:
    if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
        raise DataError(
            f"{where}: header {_shorten(header[0])} is one column; the file must be comma-separated"
        )
    empty = [i + 1 for i, name in enumerate(header) if not name]
    if empty:
        raise DataError(f"{where}: header column {empty[0]} has no name; every column needs a name")
    if all(is_number(name) for name in header):
        raise DataError(
            f"{where}: no header: the first line ({_shorten(','.join(header))}) is all numbers; "
            "the file must start with a line of column names"
        )
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(
                f"{where}: column name {name!r} appears more than once; column names must be unique"
            )
        seen.add(name)


def _column_index(header: list[str], column: str, role: str, where: str) -> int:
    try:
        return header.index(column)
    except ValueError:
        raise DataError(
            f"{where}: no {role} column {column!r}; the columns are {preview(header)}"
        ) from None


def _ids(column: np.ndarray, id_column: str, row_numbers: np.ndarray, where: str) -> np.ndarray:
    """Ids as written (whitespace-trimmed), so '7' and 'C0007' both work; must be unique."""
    ids = np.char.strip(column)
    empty = ids == ""
    if empty.any():
        r = int(np.argmax(empty))
        raise DataError(
            f"{where}: id column {id_column!r}, line {row_numbers[r]}: id is empty; every row needs an id"
        )
    order = np.argsort(ids, kind="stable")
    dup = np.flatnonzero(ids[order][1:] == ids[order][:-1])
    if dup.size:
        first, second = sorted(order[dup[0] : dup[0] + 2])
        raise DataError(
            f"{where}: id column {id_column!r} has the id {_shorten(ids[first])} twice "
            f"(lines {row_numbers[first]} and {row_numbers[second]}); ids must be unique"
        )
    return ids


def _labels(column: np.ndarray, label: str, row_numbers: np.ndarray, where: str) -> np.ndarray:
    """The 0/1 label column as int8; both classes must be present."""
    y_float = _numbers(column[:, None], [label], row_numbers, where, _LABEL_RULE)[:, 0]
    bad = (y_float != 0) & (y_float != 1)
    if bad.any():
        r = int(np.argmax(bad))
        raise DataError(
            f"{where}: label column {label!r} has value {_shorten(column[r])} "
            f"(line {row_numbers[r]}); {_LABEL_RULE}"
        )
    y = y_float.astype(np.int8)
    if np.unique(y).size < 2:
        raise DataError(
            f"{where}: label column {label!r} has only the value {int(y[0])} in all {y.size} rows; "
            "both classes 0 and 1 must be present"
        )
    return y


def _characteristic(
    column: np.ndarray, name: str, row_numbers: np.ndarray, where: str
) -> np.ndarray:
    """One scorecard column: float64 with NaN for missing if every other cell is a number,
    else the stripped text with "" for missing. One numpy parse; a retry only for text."""
    cells = np.char.strip(column)
    missing = np.isin(cells, MISSING_TOKENS)
    try:
        values = np.where(missing, "nan", cells).astype(np.float64)
    except ValueError:
        return np.where(missing, "", cells)
    infinite = np.isinf(values)
    if infinite.any():
        r = int(np.argmax(infinite))
        raise DataError(
            f"{where}: column {name!r}, line {row_numbers[r]}: value {_shorten(cells[r])} "
            f"is infinite; {_FINITE_RULE}"
        )
    return values  # a cell that parses as NaN (e.g. 'NAN') is missing too


def _numbers(
    block: np.ndarray, names: list[str], row_numbers: np.ndarray, where: str, rule: str
) -> np.ndarray:
    """Convert a str block to float64 in one numpy call; scan only to explain a failure."""
    try:
        values = block.astype(np.float64)
    except ValueError:
        values = None
    if values is not None:
        bad = ~np.isfinite(values)
        if not bad.any():
            return values
        r, c = np.unravel_index(int(np.argmax(bad)), bad.shape)  # first bad cell, row-major
        binnable = bool(np.isnan(values[r, c]))  # infinite values are refused everywhere
        problem = "value is NaN" if binnable else f"value {_shorten(block[r, c])} is infinite"
    else:
        r, c, problem = _first_unparsable(block)
        binnable = True  # text or empty: the scorecard takes both
    role = "label column" if rule == _LABEL_RULE else "column"
    hint = _SCORECARD_HINT if rule == _FEATURE_RULE and binnable else ""
    raise DataError(f"{where}: {role} {names[c]!r}, line {row_numbers[r]}: {problem}; {rule}{hint}")


def _first_unparsable(block: np.ndarray) -> tuple[int, int, str]:
    """Locate the earliest (row, column) that float() rejects. Error path only."""
    best: tuple[int, int] | None = None
    for c in range(block.shape[1]):
        try:
            block[:, c].astype(np.float64)
            continue
        except ValueError:
            pass
        for r, text in enumerate(block[:, c]):  # stops at the first bad cell
            if not is_number(text):
                if best is None or r < best[0]:
                    best = (r, c)
                break
    r, c = best if best is not None else (0, 0)
    text = str(block[r, c])
    problem = "value is empty" if not text.strip() else f"value {_shorten(text)} is not a number"
    return r, c, problem


def is_number(text: str) -> bool:
    """Whether ``float`` reads ``text`` (a csv cell)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _shorten(text: object, limit: int = 40) -> str:
    """repr() of a cell, cut so a huge or multi-line value cannot break the one-line message."""
    text = str(text)
    return repr(text if len(text) <= limit else text[:limit] + "...")
