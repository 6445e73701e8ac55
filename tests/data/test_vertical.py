"""Vertical party tables: bundled FATE split, synthetic overlap, per-party csv files,
column specs, and one-line errors naming the scenario file and key."""

from dataclasses import replace

import numpy as np
import pytest

from fedrisk.data import UCI_VERTICAL_SPLIT
from fedrisk.data.vertical import (
    PartyTable,
    VerticalTables,
    load_vertical,
    resolve_columns,
    true_intersection,
)
from fedrisk.errors import DataError, InputError, ScenarioError
from fedrisk.scenario import load_scenario, scenario_from_dict

WHERE = "scen.toml"


def scenario(parties=None, where=WHERE, **data):
    raw = {"federation": {"kind": "vertical"}}
    if parties is not None:
        raw["federation"]["parties"] = parties
    if data:
        raw["data"] = data
    return scenario_from_dict(raw, where)


def error(s, cls=InputError) -> str:
    with pytest.raises(cls) as info:
        load_vertical(s)
    message = str(info.value)
    assert "\n" not in message, "messages must be one line"
    assert isinstance(info.value, InputError)
    assert s.source_file in message
    return message


def assert_read_only(tables: VerticalTables):
    for p in tables.parties:
        for a in (p.ids, p.X) + ((p.y,) if p.y is not None else ()):
            assert not a.flags.writeable


# --- bundled --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundled_default():
    return load_vertical(scenario())


def test_bundled_default_is_the_fate_split(bundled_default):
    v = bundled_default
    assert v.label_holder == "bank" and v.names == ("bank", "provider")
    bank, provider = v.parties
    assert bank.feature_names == UCI_VERTICAL_SPLIT["bank"] and bank.n_features == 13
    assert provider.feature_names == UCI_VERTICAL_SPLIT["provider"] and provider.n_features == 10
    assert bank.X.shape == (30_000, 13) and provider.X.shape == (30_000, 10)
    assert bank.X.dtype == np.float64 and bank.y.dtype == np.int8
    assert abs(bank.y.mean() - 0.2212) <= 0.0001
    assert provider.y is None and not provider.holds_label
    assert np.array_equal(bank.ids, provider.ids) and np.unique(bank.ids).size == 30_000
    assert true_intersection(v).size == 30_000
    assert v.party("provider") is provider
    assert provider.X[0, :6].tolist() == [20000, 2, 2, 1, 24, 2]  # first raw UCI row
    assert_read_only(v)
    with pytest.raises(KeyError, match="bank, provider"):
        v.party("tax")


def test_bundled_explicit_columns_with_globs_and_ranges():
    s = scenario(
        [
            {"name": "agency", "columns": ["LIMIT_BAL", "PAY_?"]},
            {"name": "lender", "label": True, "columns": ["BILL_AMT*", "PAY_AMT2..PAY_AMT4"]},
        ]
    )
    v = load_vertical(s)
    assert v.names == ("lender", "agency")  # label holder first
    lender, agency = v.parties
    assert lender.feature_names == (
        "BILL_AMT1",
        "BILL_AMT2",
        "BILL_AMT3",
        "BILL_AMT4",
        "BILL_AMT5",
        "BILL_AMT6",
        "PAY_AMT2",
        "PAY_AMT3",
        "PAY_AMT4",
    )
    # file order kept; PAY_0 and PAY_2..PAY_6 match PAY_?, PAY_AMT* do not
    assert agency.feature_names == (
        "LIMIT_BAL",
        "PAY_0",
        "PAY_2",
        "PAY_3",
        "PAY_4",
        "PAY_5",
        "PAY_6",
    )
    assert lender.y is not None and agency.y is None
    assert agency.X[0, 0] == 20000


def test_bundled_range_over_a_gap_and_overlapping_specs():
    s = scenario(
        [
            {"name": "bank", "label": True, "columns": ["PAY_0..PAY_6", "PAY_2"]},
            {"name": "p", "columns": ["AGE"]},
        ]
    )
    v = load_vertical(s)
    assert v.party("bank").feature_names == ("PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6")


@pytest.mark.parametrize(
    "columns, expected",
    [
        (["NOPE"], "'NOPE' matches no column"),
        (["X_*"], "'X_*' matches no column"),
        (["PAY_AMT7..PAY_AMT9"], "'PAY_AMT7..PAY_AMT9' matches no column"),
        (["PAY_AMT1..BILL_AMT3"], "not a valid range"),
        (["PAY_AMT4..PAY_AMT1"], "runs backwards"),
    ],
)
def test_bundled_bad_column_spec(columns, expected):
    s = scenario(
        [{"name": "bank", "label": True, "columns": ["AGE"]}, {"name": "p", "columns": columns}]
    )
    message = error(s, DataError)
    assert message.startswith(f"{WHERE}: federation.parties[1].columns: ")
    assert expected in message


def test_bundled_column_held_by_two_parties():
    s = scenario(
        [
            {"name": "bank", "label": True, "columns": ["LIMIT_BAL", "AGE"]},
            {"name": "telecom", "columns": ["BILL_AMT*", "LIMIT_BAL"]},
        ]
    )
    assert error(s, DataError) == (
        f"{WHERE}: federation.parties[1].columns: 'LIMIT_BAL' is held by both 'bank' and "
        "'telecom'; each column belongs to one party"
    )


def test_bundled_needs_columns():
    s = scenario([{"name": "bank", "label": True, "columns": ["AGE"]}, {"name": "p"}])
    message = error(s)
    assert "federation.parties[1].columns: columns required with the bundled data" in message


def test_empty_columns_rejected_by_scenario_and_by_loader():
    with pytest.raises(ScenarioError, match=r"parties\[1\]\.columns: .*holds no columns"):
        scenario(
            [{"name": "bank", "label": True, "columns": ["AGE"]}, {"name": "p", "columns": []}]
        )
    # Built without the loader's checks, the data module still refuses it.
    s = scenario(
        [{"name": "bank", "label": True, "columns": ["AGE"]}, {"name": "p", "columns": ["SEX"]}]
    )
    parties = (s.federation.parties[0], replace(s.federation.parties[1], columns=()))
    s = replace(s, federation=replace(s.federation, parties=parties))
    assert "federation.parties[1].columns: party 'p' holds no columns" in error(s, DataError)


def test_path_only_with_csv():
    s = scenario(
        [
            {"name": "bank", "label": True, "columns": ["AGE"]},
            {"name": "p", "columns": ["SEX"], "path": "p.csv"},
        ]
    )
    assert "federation.parties[1].path: path is only used with data.source = 'csv'" in error(s)
    s = scenario(
        [{"name": "bank", "label": True}, {"name": "tel", "path": "p.csv"}],
        source="synthetic",
        customers=200,
    )
    assert "federation.parties[1].path: path is only used with" in error(s)


def test_resolve_columns_keeps_file_order():
    cols = ["x10", "x2", "id2", "x0", "x1", "y"]
    assert resolve_columns(["x0..x2", "y"], cols, "w") == ("x2", "x0", "x1", "y")
    assert resolve_columns(["x1*"], cols, "w") == ("x10", "x1")
    assert resolve_columns(["x?", "x10"], cols, "w") == ("x10", "x2", "x0", "x1")


# --- synthetic ------------------------------------------------------------------------


N = 1000


def test_synthetic_default_four_parties_with_overlap():
    s = scenario(source="synthetic", customers=N, overlap=0.8, features_per_source=3)
    v = load_vertical(s)
    assert v.names == ("bank", "telecom", "ecommerce", "tax") and v.label_holder == "bank"
    bank = v.holder
    assert (
        bank.ids.size == N
        and bank.y is not None
        and bank.feature_names == ("bank_0", "bank_1", "bank_2")
    )
    bank_ids = set(bank.ids.tolist())
    for p in v.data_parties:
        assert p.y is None and p.feature_names == tuple(f"{p.name}_{j}" for j in range(3))
        ids = set(p.ids.tolist())
        assert len(ids) == p.ids.size == round(0.8 * N) + round(0.2 * N)
        assert len(ids & bank_ids) == round(0.8 * N)
        assert len(ids - bank_ids) == round(0.2 * N)
        assert all(i.startswith("X") for i in ids - bank_ids)
        assert not np.array_equal(np.sort(p.ids), p.ids)  # party-specific shuffled order
    # different parties pick different customers, so the intersection of all is smaller
    common = true_intersection(v)
    assert common.size < round(0.8 * N) and np.array_equal(common, np.sort(common))
    assert_read_only(v)


def test_synthetic_rows_follow_their_customer():
    s = scenario(source="synthetic", customers=N, overlap=0.7)
    a = load_vertical(s)
    full = load_vertical(replace(s, data=replace(s.data, overlap=1.0)))
    # The bank's table does not depend on the overlap; shared rows carry the same values.
    assert np.array_equal(a.holder.X, full.holder.X) and np.array_equal(a.holder.y, full.holder.y)
    tel_a, tel_full = a.party("telecom"), full.party("telecom")
    pos = {c: i for i, c in enumerate(tel_full.ids)}
    shared = [i for i, c in enumerate(tel_a.ids) if c in pos]
    assert np.array_equal(tel_a.X[shared], tel_full.X[[pos[c] for c in tel_a.ids[shared]]])
    assert set(tel_full.ids) == set(full.holder.ids)  # overlap 1: same customers, own order
    assert not np.array_equal(tel_full.ids, full.holder.ids)


def test_synthetic_is_deterministic_for_a_seed():
    s = scenario(source="synthetic", customers=N, overlap=0.8)
    a, b = load_vertical(s), load_vertical(s)
    c = load_vertical(replace(s, seed=s.seed + 1))
    for pa, pb in zip(a.parties, b.parties):
        assert np.array_equal(pa.ids, pb.ids) and np.array_equal(pa.X, pb.X)
    assert not np.array_equal(a.party("tax").ids, c.party("tax").ids)


def test_synthetic_explicit_parties_and_column_override():
    s = scenario(
        [
            {"name": "bank", "label": True, "columns": ["bank_*", "tax_0"]},
            {"name": "tax", "columns": ["tax_1..tax_3"], "signal": 0.5},
            {"name": "telco"},
        ],
        source="synthetic",
        customers=300,
    )
    v = load_vertical(s)
    assert v.names == ("bank", "tax", "telco")
    assert v.party("bank").feature_names[-1] == "tax_0"
    assert v.party("tax").feature_names == ("tax_1", "tax_2", "tax_3")
    assert v.party("telco").feature_names == ("telco_0", "telco_1", "telco_2", "telco_3")


def test_synthetic_errors():
    s = scenario(
        [{"name": "bank", "label": True, "columns": ["bank_*", "tax_0"]}, {"name": "tax"}],
        source="synthetic",
        customers=300,
    )
    assert "parties[1].columns: 'tax_0' is held by both 'bank' and 'tax'" in error(s)
    s = scenario(
        [{"name": "bank", "label": True}, {"name": "tele_com"}], source="synthetic", customers=300
    )
    assert "federation.parties[1].name: 'tele_com'" in error(s)
    s = scenario(source="synthetic", customers=100, overlap=0.001)
    assert "data.overlap" in error(s)


def test_synthetic_from_a_toml_file(tmp_path):
    path = tmp_path / "v.toml"
    path.write_text(
        'seed = 7\n[data]\nsource = "synthetic"\ncustomers = 500\noverlap = 0.9\n'
        '[federation]\nkind = "vertical"\n'
        '[[federation.parties]]\nname = "bank"\nlabel = true\n'
        '[[federation.parties]]\nname = "telecom"\ncolumns = ["telecom_0..telecom_1"]\n'
    )
    v = load_vertical(load_scenario(path))
    assert v.names == ("bank", "telecom") and v.party("telecom").n_features == 2
    assert v.party("telecom").n_rows == 450 + 50


# --- csv ------------------------------------------------------------------------------


def write_party_files(tmp_path, n=20):
    bank = "id,y,a,b\n" + "".join(f"c{i},{i % 2},{i},{i * 0.5}\n" for i in range(n))
    kept = [i for i in range(n) if i % 5]  # 80 % of the bank's customers ...
    tele = "id,c,d\n" + "".join(f"c{i},{i + 100},{-i}\n" for i in reversed(kept))
    tele += "".join(f"t{j},{j},{j}\n" for j in range(4))  # ... plus customers it alone has
    (tmp_path / "bank.csv").write_text(bank)
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "telecom.csv").write_text(tele)


def csv_scenario(tmp_path, parties=None, **data):
    """A vertical csv scenario whose file lives in tmp_path (paths relative to it)."""
    if parties is None:
        parties = [
            {"name": "bank", "label": True, "path": "bank.csv"},
            {"name": "telecom", "path": "data/telecom.csv"},
        ]
    return scenario(parties, where=str(tmp_path / "scen.toml"), source="csv", **data)


def test_csv_loads_each_party_in_its_own_order(tmp_path):
    write_party_files(tmp_path)
    v = load_vertical(csv_scenario(tmp_path))
    bank, tele = v.parties
    assert bank.feature_names == ("a", "b") and tele.feature_names == ("c", "d")
    assert bank.ids.tolist()[:2] == ["c0", "c1"] and bank.y.tolist()[:4] == [0, 1, 0, 1]
    assert tele.ids.tolist()[:2] == ["c19", "c18"] and tele.y is None
    assert tele.n_rows == 16 + 4
    assert true_intersection(v).tolist() == sorted(f"c{i}" for i in range(20) if i % 5)
    assert tele.X[0].tolist() == [119.0, -19.0]
    assert_read_only(v)


def test_csv_columns_select_within_a_file(tmp_path):
    write_party_files(tmp_path)
    s = csv_scenario(
        tmp_path,
        [
            {"name": "bank", "label": True, "path": "bank.csv", "columns": ["b"]},
            {"name": "telecom", "path": "data/telecom.csv", "columns": ["d"]},
        ],
    )
    v = load_vertical(s)
    assert v.holder.feature_names == ("b",) and v.holder.X[3, 0] == 1.5
    assert v.party("telecom").feature_names == ("d",)


def test_csv_missing_path_key(tmp_path):
    write_party_files(tmp_path)
    s = csv_scenario(
        tmp_path, [{"name": "bank", "label": True, "path": "bank.csv"}, {"name": "telecom"}]
    )
    assert "federation.parties[1].path: required with data.source = 'csv'" in error(s)


def test_csv_missing_file(tmp_path):
    write_party_files(tmp_path)
    s = csv_scenario(
        tmp_path,
        [
            {"name": "bank", "label": True, "path": "bank.csv"},
            {"name": "telecom", "path": "nope.csv"},
        ],
    )
    message = error(s, DataError)
    assert "federation.parties[1].path: file 'nope.csv'" in message and "not found" in message


def test_csv_label_column_in_a_data_party_file(tmp_path):
    write_party_files(tmp_path)
    (tmp_path / "data" / "telecom.csv").write_text("id,c,y\nc1,1,0\nc2,2,1\n")
    message = error(csv_scenario(tmp_path), DataError)
    assert "federation.parties[1].path (data/telecom.csv)" in message
    assert "label column 'y'" in message and "label holder" in message


def test_csv_duplicate_id(tmp_path):
    write_party_files(tmp_path)
    (tmp_path / "data" / "telecom.csv").write_text("id,c\nc1,1\nc2,2\nc1,3\n")
    message = error(csv_scenario(tmp_path), DataError)
    assert "data/telecom.csv" in message and "'c1' twice" in message


def test_csv_non_numeric_value(tmp_path):
    write_party_files(tmp_path)
    (tmp_path / "bank.csv").write_text("id,y,a,b\nc1,0,1,2\nc2,1,oops,3\n")
    message = error(csv_scenario(tmp_path), DataError)
    assert "federation.parties[0].path (bank.csv)" in message
    assert "column 'a'" in message and "'oops' is not a number" in message


def test_csv_same_column_name_in_two_files(tmp_path):
    write_party_files(tmp_path)
    (tmp_path / "data" / "telecom.csv").write_text("id,a\nc1,1\nc2,2\n")
    message = error(csv_scenario(tmp_path), DataError)
    assert "parties[1].columns: 'a' is held by both 'bank' and 'telecom'" in message


def test_csv_needs_parties_and_no_data_path(tmp_path):
    write_party_files(tmp_path)
    s = scenario(where=str(tmp_path / "scen.toml"), source="csv")
    assert "federation.parties: required with data.source = 'csv'" in error(s)
    with pytest.raises(ScenarioError, match="data.path"):
        csv_scenario(tmp_path, path="bank.csv")
    s = csv_scenario(tmp_path)
    s = replace(s, data=replace(s.data, path="bank.csv"))  # built past the scenario checks
    assert "data.path: not used by vertical federations" in error(s)


def test_csv_scenario_file_without_data_path(tmp_path):
    write_party_files(tmp_path)
    path = tmp_path / "scen.toml"
    path.write_text(
        '[data]\nsource = "csv"\n[federation]\nkind = "vertical"\n'
        '[[federation.parties]]\nname = "telecom"\npath = "data/telecom.csv"\n'
        '[[federation.parties]]\nname = "bank"\nlabel = true\npath = "bank.csv"\n'
    )
    v = load_vertical(load_scenario(path))
    assert v.names == ("bank", "telecom") and v.holder.n_rows == 20


# --- tables ---------------------------------------------------------------------------


def test_party_table_copies_and_freezes():
    X = np.arange(6).reshape(3, 2)
    t = PartyTable("p", [1, 2, 3], X, ("u", "v"))
    X[0, 0] = 99
    assert t.X[0, 0] == 0 and t.X.dtype == np.float64 and t.ids.tolist() == ["1", "2", "3"]
    with pytest.raises(DataError, match="unique"):
        PartyTable("p", ["a", "a"], np.zeros((2, 1)), ("u",))
    with pytest.raises(ValueError, match="first"):
        VerticalTables("bank", (t, PartyTable("bank", ["1"], [[0.0]], ("w",), [1])))


def test_synthetic_default_rate_and_heavy_tails_reach_the_parties():
    from scipy.stats import kurtosis

    s = scenario(source="synthetic", customers=4000, default_rate=0.05, tails="heavy")
    tables = load_vertical(s)
    assert abs(tables.holder.y.mean() - 0.05) < 0.015
    light = load_vertical(scenario(source="synthetic", customers=4000, default_rate=0.05))
    for heavy_t, light_t in zip(tables.parties, light.parties):
        # every party holds money columns whose tails dwarf the light-tailed ones'
        assert kurtosis(heavy_t.X, axis=0).max() > 5 * kurtosis(light_t.X, axis=0).max()
