"""fedrisk score: applicants scored by anonymous query equal the joint model's direct
prediction; applicants a data party does not hold get the bank-only fallback; the data
party's view does not depend on whom the bank asks about; bad input exits 2."""

import csv
import json
import subprocess

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from fedrisk.cli import main
from fedrisk.data.split import split_indices
from fedrisk.data.vertical import load_vertical
from fedrisk.errors import InputError
from fedrisk.model_io import FederatedBoostedTrees, FederatedVerticalLogistic, load_model
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.run import run_scenario
from fedrisk.runs.score import score_applicants, sidecars
from fedrisk.scenario import load_scenario
from tests.test_cli_bad_input import run_cli
from tests.vertical.test_runs import SCENARIO, write_party_csvs

pytestmark = [pytest.mark.filterwarnings("ignore:1024-bit Paillier keys")]

SECRETS = RunSecrets(bytes(range(32)))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("score")
    shared = write_party_csvs(tmp)
    (tmp / "s.toml").write_text(SCENARIO.replace("rounds = 2", "rounds = 1"))
    out = tmp / "out"
    run_scenario(load_scenario(tmp / "s.toml"), out, show_progress=False, secrets=SECRETS)
    return tmp, out, shared


def _read_scores(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_each_party_keeps_its_part_and_the_parts_give_the_runs_predictions(run):
    tmp, out, _ = run
    parts = sorted(p.name for p in (out / "model").iterdir())
    assert parts == ["bank.json", "telecom.json"]
    assert all((out / "model" / p).stat().st_mode & 0o077 == 0 for p in parts)
    model = load_model(out)
    assert isinstance(model, FederatedVerticalLogistic)
    # the held-out customers, as the bank drew them from its own secret (simulator's view)
    s = load_scenario(tmp / "s.toml")
    tables = load_vertical(s)
    bank, telecom = tables.parties
    shared = sorted(set(bank.ids) & set(telecom.ids))
    at_bank = {i: k for k, i in enumerate(bank.ids)}
    at_telecom = {i: k for k, i in enumerate(telecom.ids)}
    rows = np.array([at_bank[i] for i in shared])
    _, te = split_indices(
        bank.y[rows], s.data.test_fraction, SECRETS.of("bank").seed_int("vertical/split")
    )
    test = [shared[i] for i in te]
    p = model.predict_proba(
        {
            "bank": bank.X[[at_bank[i] for i in test]],
            "telecom": telecom.X[[at_telecom[i] for i in test]],
        }
    )[:, 1]
    summary = json.loads((out / "summary.json").read_text())
    y = bank.y[[at_bank[i] for i in test]]
    assert roc_auc_score(y, p) == pytest.approx(summary["federated"]["auc"], abs=1e-12)
    # the bank-only fallback is the run's "bank alone" baseline
    alone = model.fallback_proba(bank.X[[at_bank[i] for i in test]])
    assert roc_auc_score(y, alone) == pytest.approx(summary["local_only"]["bank"]["auc"], abs=1e-12)
    assert summary["model_files"] == {"bank": "model/bank.json", "telecom": "model/telecom.json"}


def test_a_thousand_applicants_equal_the_direct_prediction_and_misses_fall_back(run):
    tmp, out, shared = run
    s = load_scenario(tmp / "s.toml")
    bank, telecom = load_vertical(s).parties
    rng = np.random.default_rng(5)
    # 1,000 of the bank's customers, some of whom telecom does not hold
    ids = list(rng.choice(bank.ids, 1000, replace=False))
    held = [i in shared for i in ids]
    assert 100 < len(ids) - sum(held) < 400
    (tmp / "applicants.csv").write_text("id\n" + "\n".join(ids) + "\n")
    result = score_applicants(
        out, tmp / "applicants.csv", tmp / "scores.csv", secrets=SECRETS, scenario=tmp / "s.toml"
    )
    got = _read_scores(tmp / "scores.csv")
    assert [r["id"] for r in got] == ids
    model = load_model(out)
    at_bank = {i: k for k, i in enumerate(bank.ids)}
    at_telecom = {i: k for k, i in enumerate(telecom.ids)}
    Xb = bank.X[[at_bank[i] for i in ids]]
    hit = np.array(held)
    direct = model.fallback_proba(Xb)
    direct[hit] = model.predict_proba(
        {
            "bank": Xb[hit],
            "telecom": telecom.X[[at_telecom[i] for i, h in zip(ids, held) if h]],
        }
    )[:, 1]
    pd = np.array([float(r["pd"]) for r in got])
    np.testing.assert_allclose(pd, direct, rtol=0, atol=1e-9)
    assert [r["model"] for r in got] == ["joint" if h else "bank_only" for h in held]
    assert [r["found_telecom"] for r in got] == [str(int(h)) for h in held]
    assert result.summary["scored_jointly"] == sum(held)
    assert result.summary["fallback"] == 1000 - sum(held)
    # the fallback is the bank's own model, not the joint one with a zero partial score
    miss = ~hit
    joint_zero = model.joint_scores(Xb[miss], {"telecom": np.zeros(miss.sum())})
    assert not np.allclose(pd[miss], 1 / (1 + np.exp(-joint_zero)))


def test_new_applicants_bring_the_banks_columns(run):
    tmp, out, _ = run
    s = load_scenario(tmp / "s.toml")
    bank, telecom = load_vertical(s).parties
    model = load_model(out)
    # telecom's own customers the bank has never seen (t00000...), with made-up bank rows
    new = [i for i in telecom.ids if i.startswith("t")][:20]
    rng = np.random.default_rng(1)
    Xb = rng.normal(size=(20, 3)).round(4)
    lines = ["id,b0,b1,b2"] + [f"{i},{','.join(map(str, x))}" for i, x in zip(new, Xb)]
    (tmp / "new.csv").write_text("\n".join(lines) + "\n")
    score_applicants(out, tmp / "new.csv", tmp / "new-scores.csv", scenario=tmp / "s.toml")
    got = _read_scores(tmp / "new-scores.csv")
    at_telecom = {i: k for k, i in enumerate(telecom.ids)}
    want = model.predict_proba({"bank": Xb, "telecom": telecom.X[[at_telecom[i] for i in new]]})
    np.testing.assert_allclose([float(r["pd"]) for r in got], want[:, 1], rtol=0, atol=1e-9)
    assert {r["model"] for r in got} == {"joint"}


def test_same_secrets_same_session_bit_for_bit(run):
    tmp, out, _ = run
    (tmp / "few.csv").write_text("id\nc00001\nc00002\nc00003\n")
    for k in (1, 2):
        score_applicants(
            out, tmp / "few.csv", tmp / f"few-{k}.csv", secrets=SECRETS, scenario=tmp / "s.toml"
        )
    assert (tmp / "few-1.csv").read_bytes() == (tmp / "few-2.csv").read_bytes()
    t1, t2 = (sidecars(tmp / f"few-{k}.csv")[1].read_text() for k in (1, 2))
    assert t1 == t2


def test_transcript_marks_the_data_partys_view_unreadable(run):
    tmp, out, _ = run
    (tmp / "one.csv").write_text("id\nc00007\n")
    score_applicants(out, tmp / "one.csv", tmp / "one-scores.csv", scenario=tmp / "s.toml")
    summary_file, transcript_file = sidecars(tmp / "one-scores.csv")
    rows = [json.loads(line) for line in transcript_file.read_text().splitlines()]
    to_party = {r["what"]: r for r in rows if r["receiver"] == "telecom"}
    assert not to_party["oprf_blinded_ids"]["readable_by_receiver"]
    assert not to_party["pir_queries"]["readable_by_receiver"]
    assert to_party["pir_queries"]["protection"] == "ciphertext"
    to_bank = {r["what"]: r for r in rows if r["receiver"] == "bank"}
    assert to_bank["pir_answers"]["readable_by_receiver"]
    # public seeds and sizes, and the hint: readable, but a function of sealed records
    assert to_bank["pir_hint_and_public_seeds"]["protection"] == "masked"
    # the scores and their summary (who applied, who is held where) are the bank's own
    assert (tmp / "one-scores.csv").stat().st_mode & 0o077 == 0
    assert summary_file.stat().st_mode & 0o077 == 0
    summary = json.loads(summary_file.read_text())
    assert "how many" not in summary["privacy"]["who_learns_what"]["bank"]
    assert "1 applicants" in summary["privacy"]["who_learns_what"]["data parties"]


def test_the_data_partys_messages_are_the_same_size_whoever_is_asked(run):
    """A held id and one telecom does not hold: the same messages, the same sizes."""
    tmp, out, shared = run
    held = sorted(shared)[0]
    s = load_scenario(tmp / "s.toml")
    bank, _ = load_vertical(s).parties
    missing = sorted(set(bank.ids) - shared)[0]
    views = []
    for name, ident in (("held", held), ("missing", missing)):
        (tmp / f"{name}.csv").write_text(f"id\n{ident}\n")
        score_applicants(
            out, tmp / f"{name}.csv", tmp / f"{name}-scores.csv", scenario=tmp / "s.toml"
        )
        transcript = sidecars(tmp / f"{name}-scores.csv")[1].read_text().splitlines()
        views.append([json.loads(line) for line in transcript])
    assert views[0] == views[1]


# --- bad input -------------------------------------------------------------------------


def _refused(proc, needle, cwd, out="bad.csv"):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert needle in lines[0], lines[0]
    assert not (cwd / out).exists()
    assert not any(p.exists() for p in sidecars(cwd / out))


@pytest.mark.parametrize(
    "content, needle",
    [
        ("id,b0,b1,b2,income\nc00001,1,2,3,4\n", "unknown column 'income'"),
        ("id,salary\nc00001,3\n", "unknown column 'salary'"),
        ("", "empty"),
        ("\n\n", "empty"),
        ("id\n", "no applicants"),
        ("customer\nc00001\n", "unknown column 'customer'"),
        ("id,b0\nc00001,1\n", "column 'b1' is missing"),
        ("id,b0,b1,b2\nc00001,1,x,3\n", "'x' is not a number"),
        ("id\nnobody\n", "not in the bank's data"),
        ("id\nc00001\nc00001\n", "appears twice"),
    ],
)
def test_bad_ids_files_exit_2_with_one_line(run, content, needle, capsys, monkeypatch):
    tmp, out, _ = run
    monkeypatch.chdir(tmp)
    (tmp / "ids.csv").write_text(content)
    args = ["score", str(out), "--scenario", "s.toml", "--ids", "ids.csv", "--out", "bad.csv"]
    code = main(args)
    err = capsys.readouterr().err
    _refused(subprocess.CompletedProcess(args, code, "", err), needle, tmp)


def test_a_bad_ids_file_from_the_shell(run):
    tmp, out, _ = run
    (tmp / "ids.csv").write_text("id,b0,b1,b2,income\nc00001,1,2,3,4\n")
    proc = run_cli(
        "score", str(out), "--scenario", "s.toml", "--ids", "ids.csv", "--out", "bad.csv", cwd=tmp
    )
    _refused(proc, "unknown column 'income'; allowed: the id column 'id'", tmp)


@pytest.mark.slow  # seconds of runs: the full suite covers it
def test_a_run_folder_that_is_not_vertical_exits_2(run, tmp_path):
    tmp, _, _ = run
    horizontal = tmp_path / "h"
    proc = run_cli(
        "run",
        str(__import__("tests.conftest", fromlist=["SCENARIOS"]).SCENARIOS / "quickstart.toml"),
        "--out",
        str(horizontal),
        "--quiet",
        "--set",
        "rounds=1",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "ids.csv").write_text("id\n1\n")
    proc = run_cli("score", str(horizontal), "--ids", "ids.csv", "--out", "bad.csv", cwd=tmp_path)
    _refused(proc, "a horizontal run; fedrisk score needs a vertical run", tmp_path)
    proc = run_cli(
        "score", str(tmp_path / "nope"), "--ids", "ids.csv", "--out", "bad.csv", cwd=tmp_path
    )
    _refused(proc, "not a run folder", tmp_path)


@pytest.mark.slow  # seconds of runs: the full suite covers it
def test_a_secret_shared_run_scores_the_same_way(tmp_path):
    """privacy.protocol = "secret_sharing" (reveal "own"): each party ends knowing its
    weights and keeps them; scoring through PIR equals the parts' direct prediction, and
    the parts give the run's own test AUC to fixed-point error."""
    shared = write_party_csvs(tmp_path)
    text = SCENARIO.replace("rounds = 2", "rounds = 1").replace(
        "[privacy]\n", '[privacy]\nprotocol = "secret_sharing"\n'
    )
    text = text.replace('obfuscation = "djn"\nlabel_leakage_attack = true\n', "")
    text = text.replace("key_bits = 1024\n", "")
    (tmp_path / "s.toml").write_text(text)
    out = tmp_path / "out"
    run_scenario(load_scenario(tmp_path / "s.toml"), out, show_progress=False, secrets=SECRETS)
    model = load_model(out)
    assert model.parts["telecom"].feature_clip == 8.0
    bank, telecom = load_vertical(load_scenario(tmp_path / "s.toml")).parties
    ids = sorted(shared)[:150] + sorted(set(bank.ids) - shared)[:50]
    (tmp_path / "a.csv").write_text("id\n" + "\n".join(ids) + "\n")
    score_applicants(
        out, tmp_path / "a.csv", tmp_path / "a-scores.csv", scenario=tmp_path / "s.toml"
    )
    got = np.array([float(r["pd"]) for r in _read_scores(tmp_path / "a-scores.csv")])
    at_bank = {i: k for k, i in enumerate(bank.ids)}
    at_telecom = {i: k for k, i in enumerate(telecom.ids)}
    want = model.fallback_proba(bank.X[[at_bank[i] for i in ids]])
    want[:150] = model.predict_proba(
        {
            "bank": bank.X[[at_bank[i] for i in ids[:150]]],
            "telecom": telecom.X[[at_telecom[i] for i in ids[:150]]],
        }
    )[:, 1]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    # the parts against the run's own held-out AUC (the ring's truncations aside)
    s = load_scenario(tmp_path / "s.toml")
    rows = np.array([at_bank[i] for i in sorted(shared)])
    _, te = split_indices(
        bank.y[rows], s.data.test_fraction, SECRETS.of("bank").seed_int("vertical/split")
    )
    test = [sorted(shared)[i] for i in te]
    p = model.predict_proba(
        {
            "bank": bank.X[[at_bank[i] for i in test]],
            "telecom": telecom.X[[at_telecom[i] for i in test]],
        }
    )[:, 1]
    auc = json.loads((out / "summary.json").read_text())["federated"]["auc"]
    assert roc_auc_score(bank.y[[at_bank[i] for i in test]], p) == pytest.approx(auc, abs=1e-3)
    # reveal = "none": nobody holds a part, so nothing to score with
    (tmp_path / "n.toml").write_text(text.replace("[privacy]\n", '[privacy]\nreveal = "none"\n'))
    none = tmp_path / "none"
    run_scenario(load_scenario(tmp_path / "n.toml"), none, show_progress=False, secrets=SECRETS)
    assert not (none / "model").exists()
    with pytest.raises(InputError, match="reveal = 'none'"):
        score_applicants(none, tmp_path / "a.csv", tmp_path / "b.csv", scenario=tmp_path / "n.toml")


def _copy_german(tmp_path):
    from tests.conftest import SCENARIOS

    (tmp_path / "data").mkdir()
    for name in ("german-style-bank.csv", "german-style-bureau.csv"):
        (tmp_path / "data" / name).write_bytes((SCENARIOS / "data" / name).read_bytes())
    text = (SCENARIOS / "vertical-scorecard-german.toml").read_text()
    (tmp_path / "s.toml").write_text(text.replace("rounds = 4", "rounds = 1"))
    return tmp_path / "s.toml"


def test_a_vertical_scorecard_scores_points_and_missing_bins(tmp_path):
    """A WOE scorecard: the bureau sends its partial log-odds and points; an applicant it
    does not hold is scored with its characteristics in their missing bins, exactly as
    the card scores missing values. Text columns and missing cells in the ids file."""
    scenario = _copy_german(tmp_path)
    out = tmp_path / "out"
    run_scenario(load_scenario(scenario), out, show_progress=False, secrets=SECRETS)
    card = load_model(out)
    bank_rows = list(csv.DictReader(open(tmp_path / "data" / "german-style-bank.csv")))
    bureau_rows = {
        r["id"]: r for r in csv.DictReader(open(tmp_path / "data" / "german-style-bureau.csv"))
    }
    chosen = bank_rows[:200]
    assert 5 < sum(r["id"] not in bureau_rows for r in chosen) < 100
    bank_cols = [c for c, o in zip(card.feature_names_, card.feature_parties_) if o == "bank"]
    lines = ["id," + ",".join(bank_cols)] + [
        r["id"] + "," + ",".join(r[c] for c in bank_cols) for r in chosen
    ]
    lines.append("new1," + ",".join("" for _ in bank_cols))  # a new applicant, all missing
    (tmp_path / "a.csv").write_text("\n".join(lines) + "\n")
    result = score_applicants(out, tmp_path / "a.csv", tmp_path / "a-scores.csv", scenario=scenario)
    got = _read_scores(tmp_path / "a-scores.csv")
    ids = [r["id"] for r in chosen] + ["new1"]
    columns = {c: [] for c in card.feature_names_}
    for i, r in zip(ids, chosen + [{}]):
        other = bureau_rows.get(i, {})
        for c, owner in zip(card.feature_names_, card.feature_parties_):
            columns[c].append((r if owner == "bank" else other).get(c))  # None: missing
    want_pd = card.predict_proba(columns)[:, 1]
    np.testing.assert_allclose([float(r["pd"]) for r in got], want_pd, rtol=0, atol=1e-9)
    assert [int(r["points"]) for r in got] == card.score(columns).tolist()
    held = [i in bureau_rows for i in ids]
    assert [r["model"] for r in got] == ["joint" if h else "missing_bins" for h in held]
    assert result.summary["model"] == "scorecard"


@pytest.mark.slow  # seconds of runs: the full suite covers it
def test_secureboost_scores_by_split_decisions(tmp_path):
    """SecureBoost: each party sends one left/right bit per split id; the joint trees'
    predictions, exactly; applicants a party lacks get the bank-only trees."""
    from tests.conftest import SCENARIOS

    text = (SCENARIOS / "vertical-secureboost-synthetic.toml").read_text()
    (tmp_path / "s.toml").write_text(text)
    s = load_scenario(
        tmp_path / "s.toml",
        ["secureboost.trees=4", "data.customers=2000", "privacy.key_bits=1024"],
    )
    out = tmp_path / "out"
    run_scenario(s, out, show_progress=False, secrets=SECRETS)
    model = load_model(out)
    tables = load_vertical(s)
    pos = {t.name: {i: k for k, i in enumerate(t.ids)} for t in tables.parties}
    ids = list(tables.holder.ids[::5])
    (tmp_path / "a.csv").write_text("id\n" + "\n".join(ids) + "\n")
    score_applicants(out, tmp_path / "a.csv", tmp_path / "a-scores.csv")
    got = _read_scores(tmp_path / "a-scores.csv")
    held = [all(i in pos[t.name] for t in tables.data_parties) for i in ids]
    assert [r["model"] for r in got] == ["joint" if h else "bank_only" for h in held]
    assert 0 < sum(held) < len(ids)
    by_name = {t.name: t for t in tables.parties}
    X = np.array(
        [
            [
                by_name[o].X[pos[o][i], list(by_name[o].feature_names).index(c)]
                for c, o in zip(model.feature_names_, model.feature_parties_)
            ]
            for i, h in zip(ids, held)
            if h
        ]
    )
    got_pd = np.array([float(r["pd"]) for r in got])
    np.testing.assert_allclose(got_pd[np.array(held)], model.predict_proba(X)[:, 1], atol=1e-12)
    bank = json.loads((out / "model" / "bank.json").read_text())["fallback"]
    alone = FederatedBoostedTrees(bank["columns"], bank["trees"], bank["base_score"])
    Xb = tables.holder.X[[pos["bank"][i] for i, h in zip(ids, held) if not h]]
    np.testing.assert_allclose(got_pd[~np.array(held)], alone.predict_proba(Xb)[:, 1], atol=1e-12)
    # the fallback is the run's "bank alone" baseline: its AUC on the held-out customers
    shared = sorted(set.intersection(*(set(t.ids) for t in tables.parties)))
    y = tables.holder.y[[pos["bank"][i] for i in shared]]
    _, te = split_indices(y, s.data.test_fraction, SECRETS.of("bank").seed_int("vertical/split"))
    test = [shared[i] for i in te]
    p = alone.predict_proba(tables.holder.X[[pos["bank"][i] for i in test]])[:, 1]
    auc = json.loads((out / "summary.json").read_text())["local_only"]["bank"]["auc"]
    assert roc_auc_score(y[te], p) == pytest.approx(auc, abs=1e-12)
