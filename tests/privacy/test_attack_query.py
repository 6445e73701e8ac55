"""The data party attacks the anonymous query from its real view: the blinded ids and
PIR queries it receives in real scoring sessions (captured where its ClientApp handles
them), its own sealed table, and the public files. Whom the bank asks about must not
show."""

import numpy as np
import pytest
from scipy import stats

from fedrisk.crypto.oprf import OprfKey
from fedrisk.crypto.pir import PirServer
from fedrisk.runs.score import score_applicants
from fedrisk.vertical.query import party as query_party
from tests.vertical.test_score import run  # noqa: F401 - the module's run fixture

pytestmark = [
    pytest.mark.usefixtures("seeded_entropy"),
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:1024-bit Paillier keys"),
]

SESSIONS = 12


def _views(out, tmp, ident, n):
    """What the party sees over ``n`` sessions asking about ``ident`` (fresh bank
    secrets each): its tables (records, seeds), the queries and blinded points it
    received, and the answers it gave."""
    seen = {"tables": [], "records": [], "queries": [], "blinded": [], "answers": []}
    build, init = query_party.build_table, PirServer.__init__
    answer, evaluate = PirServer.answer, OprfKey.evaluate

    def spy_build(party, session, queries=1):
        table = build(party, session, queries)
        seen["tables"].append(table)
        seen["ids"] = [str(i) for i in party.ids]
        return table

    def spy_init(self, layout, records, seed):
        seen["records"].append(np.array(records))
        init(self, layout, records, seed)

    def spy_answer(self, queries):
        got = answer(self, queries)
        seen["queries"].append(np.array(queries))
        seen["answers"].append(got)
        return got

    def spy_evaluate(self, blinded):
        seen["blinded"].extend(blinded)
        return evaluate(self, blinded)

    with pytest.MonkeyPatch.context() as spies:  # the test's own patches stay
        spies.setattr(query_party, "build_table", spy_build)
        spies.setattr(PirServer, "__init__", spy_init)
        spies.setattr(PirServer, "answer", spy_answer)
        spies.setattr(OprfKey, "evaluate", spy_evaluate)
        (tmp / "who.csv").write_text(f"id\n{ident}\n")
        for k in range(n):
            score_applicants(out, tmp / "who.csv", tmp / f"who-{k}.csv", scenario=tmp / "s.toml")
    return seen


def test_the_data_party_cannot_tell_whom_the_bank_asked(monkeypatch, run):  # noqa: F811
    tmp, out, shared = run
    held, other = sorted(shared)[10], sorted(shared)[20]
    a = _views(out, tmp, held, SESSIONS)
    b = _views(out, tmp, other, SESSIONS)
    table = a["tables"][0]
    layout = table.server.layout
    assert all(q.shape == (3, layout.columns) for q in a["queries"] + b["queries"])
    # the attacker's best positions: the columns of the held id's own cuckoo buckets (the
    # party placed it, so it knows them), in each session's own table
    assert table.candidates.shape[1] == 3
    cols_of = [
        t.server.layout.column_of(t.candidates[a["ids"].index(held)]) for t in a["tables"]
    ] + [t.server.layout.column_of(t.candidates[b["ids"].index(held)]) for t in b["tables"]]
    words = [
        np.concatenate([q[:, c].ravel() for q, c in zip(s["queries"], cols_of[k * SESSIONS :])])
        for k, s in enumerate((a, b))
    ]
    assert stats.ks_2samp(*words).pvalue > 1e-3
    # Δ = 2^24 is added at the asked column: it would show in the top byte
    top = [np.bincount(w >> 24, minlength=256) for w in words]
    assert stats.chi2_contingency(np.vstack(top) + 1).pvalue > 1e-3
    blinded = [
        np.array([int.from_bytes(p, "little") / 2**255 for p in s["blinded"]]) for s in (a, b)
    ]
    assert stats.ks_2samp(*blinded).pvalue > 1e-3
    # and nothing else differs: the same message sizes in every session
    assert len(a["blinded"]) == len(b["blinded"]) == SESSIONS


def test_the_answer_uses_no_secret(monkeypatch, run):  # noqa: F811
    """What the party answered is D·q for its own table and the query it received: a
    stranger holding the table (with another public seed, so another A) computes the same
    bytes, so no secret of the party enters the answer."""
    tmp, out, shared = run
    seen = _views(out, tmp, sorted(shared)[0], 1)
    layout = seen["tables"][0].server.layout
    stranger = PirServer(layout, seen["records"][0], b"\x00" * 32)
    assert stranger.answer(seen["queries"][0]).tobytes() == seen["answers"][0].tobytes()


def test_the_bank_opens_the_asked_rows_and_nothing_else(monkeypatch, run):  # noqa: F811
    """The bank's strongest view: the party's whole sealed table (the hint and the
    columns it downloads give it much of that) and the OPRF values of the ids it asked
    about. Those values open exactly the asked ids' records; nothing else opens."""
    from fedrisk.crypto.keyword import open_records
    from fedrisk.crypto.oprf import OprfBlinding

    tmp, out, shared = run
    asked = sorted(shared)[:3] + ["c99998", "c99999"]  # three held, two nobody holds
    keys: list = []
    outputs = OprfBlinding.outputs

    def spy_outputs(self, evaluated):
        got = outputs(self, evaluated)
        keys.extend(got)
        return got

    monkeypatch.setattr(OprfBlinding, "outputs", spy_outputs)
    build = query_party.build_table
    tables = []
    monkeypatch.setattr(
        query_party,
        "build_table",
        lambda p, session, q=1: tables.append(build(p, session, q)) or tables[-1],
    )
    records = []
    init = PirServer.__init__

    def spy_init(self, layout, recs, seed):
        records.append(np.array(recs))
        init(self, layout, recs, seed)

    monkeypatch.setattr(PirServer, "__init__", spy_init)
    lines = ["id,b0,b1,b2"] + [f"{i},0.1,0.2,0.3" for i in asked]
    (tmp / "asked.csv").write_text("\n".join(lines) + "\n")
    score_applicants(out, tmp / "asked.csv", tmp / "asked-scores.csv", scenario=tmp / "s.toml")
    monkeypatch.undo()
    table = records[0]
    opened_ids = set()
    for ident, key in zip(asked, keys):
        opened, _ = open_records([key] * len(table), table)
        assert opened.sum() == (1 if ident in shared else 0)
        if opened.any():
            opened_ids.add(ident)
    assert opened_ids == set(asked[:3])
    # keys the bank could make up itself open nothing
    rng = np.random.default_rng(0)
    guesses = [rng.bytes(32) for _ in range(20)]
    for key in guesses:
        assert not open_records([key] * len(table), table)[0].any()
