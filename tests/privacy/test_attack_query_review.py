"""Independent review of the anonymous query's privacy claims (``fedrisk score``: OPRF over
X25519, cuckoo keyword table, SimplePIR, through Flower), attacked from each party's real
view: the messages it receives in real scoring sessions (captured where the bank's
ServerApp hands them over and gets the replies back), what it holds itself, and the
public files (the run's scenario.toml, transcript.jsonl, summary.json and the scoring's
.summary.json / .transcript.jsonl).

Each test passes while the claim holds. The review found four problems, since fixed;
the tests written for them (marked "Finding n") now check the fix and fail if it is
reverted:

1. two sessions with the same ``--secrets FILE`` drew the same blinding scalars and LWE
   secrets, so the data party linked repeated applicants and read the asked columns off
   the difference of two sessions' queries: now every draw on both sides is keyed with
   fresh OS entropy per session (``PartySecret.session``);
2. cuckoo buckets were public hashes of the raw ids, so the bank ruled out ids it never
   asked about from which buckets its asked ids' records took: now records are placed by
   hashes of their OPRF values;
3. the scoring's summary (found counts) was written world-readable beside the scores:
   now the scores and summary are the bank's own (0600) and only the transcript, the same
   for any two applicant sets of one size, is public;
4. (informational) the docstrings now say OPRF hiding is computational, the set-up reply
   is readable by the bank, and the bank learns each party's customer count.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tomllib

import numpy as np
import pytest
from scipy import stats

from fedrisk.crypto.keyword import WAYS, candidate_buckets, open_records, place
from fedrisk.crypto.oprf import OprfBlinding, OprfKey, hash_to_curve
from fedrisk.crypto.pir import (
    ERROR_STDDEV,
    LWE_DIMENSION,
    MAX_COLUMNS,
    PirClient,
    PirLayout,
    PirServer,
    public_matrix,
)
from fedrisk.crypto.sharing import Prg
from fedrisk.data.vertical import load_vertical
from fedrisk.privacy.secrets import PartySecret, RunSecrets, load_secrets_file
from fedrisk.runs.score import score_applicants, sidecars
from fedrisk.scenario import load_scenario
from fedrisk.vertical.query import bank as query_bank
from fedrisk.vertical.query import party as query_party
from fedrisk.vertical.query.protocol import bytes_as_words
from tests.vertical.test_score import run  # noqa: F401 - the module's run fixture

pytestmark = [
    pytest.mark.usefixtures("seeded_entropy"),
    pytest.mark.filterwarnings("ignore:1024-bit Paillier keys"),
]

Q = 1 << 32
DELTA = 1 << 24
P25519 = 2**255 - 19
ORDER = 2**252 + 27742317777372353535851937790883648493
PARTY = "telecom"
SIZE = 40  # applicants per session in the two-set comparison
_PUBLIC_RUN_FILES = ("scenario.toml", "summary.json", "transcript.jsonl")


# --- one real scoring session, as each side saw it ------------------------------------------


def _plain(content) -> dict:
    """A message's content as plain values: config entries and uint8 arrays."""
    out = {}
    for name, record in content.config_records.items():
        out[name] = {k: (list(v) if isinstance(v, list) else v) for k, v in record.items()}
    for name, record in content.array_records.items():
        out[name] = {k: a.numpy().copy() for k, a in record.items()}
    return out


def _session(tmp, out, ids, name, secrets=None):
    """Score ``ids`` once through Flower and keep what each side saw: the messages the
    data party received and sent (one data party: telecom), the bank's OPRF values, the
    records it opened per (applicant, way), its kept LWE secrets, the party's table and
    session secret, and the scoring's files and their modes (written under umask 022, so
    that a world-readable file shows)."""
    seen: dict = {"to_party": {}, "from_party": {}, "opened": [], "kept": [], "keys": []}
    exchange, open_records = query_bank.exchange, query_bank.open_records
    query, outputs = PirClient.query, OprfBlinding.outputs
    build, init = query_party.build_table, PirServer.__init__

    def spy_exchange(grid, nodes, contents, message_type, what, when):
        replies = exchange(grid, nodes, contents, message_type, what, when)
        stage = str(contents[0]["config"]["stage"])
        seen["to_party"][stage] = _plain(contents[0])
        seen["from_party"][stage] = _plain(replies[0].content)
        return replies

    def spy_open(keys, records):
        opened, payload = open_records(keys, records)
        seen["opened"].append(opened.copy())
        return opened, payload

    def spy_query(self, columns, randomness):
        queries, kept = query(self, columns, randomness)
        seen["kept"].append(kept)
        return queries, kept

    def spy_outputs(self, evaluated):
        got = outputs(self, evaluated)
        seen["keys"].extend(got)
        return got

    def spy_build(party, session, queries=1):
        table = build(party, session, queries)
        seen["party"], seen["session"], seen["table"] = party, session, table
        return table

    def spy_init(self, layout, records, seed):
        seen["records"] = np.array(records)
        init(self, layout, records, seed)

    (tmp / f"{name}.csv").write_text("id\n" + "\n".join(ids) + "\n")
    umask = os.umask(0o022)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(query_bank, "exchange", spy_exchange)
        mp.setattr(query_bank, "open_records", spy_open)
        mp.setattr(PirClient, "query", spy_query)
        mp.setattr(OprfBlinding, "outputs", spy_outputs)
        mp.setattr(query_party, "build_table", spy_build)
        mp.setattr(PirServer, "__init__", spy_init)
        try:
            result = score_applicants(
                out, tmp / f"{name}.csv", tmp / f"{name}-scores.csv", secrets=secrets,
                scenario=tmp / "s.toml",
            )  # fmt: skip
        finally:
            os.umask(umask)
    scores_file = tmp / f"{name}-scores.csv"
    summary_file, transcript_file = sidecars(scores_file)
    seen["modes"] = {
        what: stat.S_IMODE(f.stat().st_mode)
        for what, f in (("scores", scores_file), ("summary", summary_file),
                        ("transcript", transcript_file))
    }  # fmt: skip
    seen["ids"] = list(ids)
    seen["result"] = result
    seen["summary"] = json.loads(summary_file.read_text())
    seen["transcript"] = [json.loads(x) for x in transcript_file.read_text().splitlines()]
    seen["queries"] = bytes_as_words(seen["to_party"]["pir"]["pir"]["queries"])
    seen["blinded"] = list(seen["to_party"]["oprf"]["config"]["blinded"])
    return seen


def _bank_ids(tmp) -> list[str]:
    bank, _ = load_vertical(load_scenario(tmp / "s.toml")).parties
    return [str(i) for i in bank.ids]


def _layout(seen) -> PirLayout:
    cfg = seen["from_party"]["setup"]["config"]
    return PirLayout(
        int(cfg["buckets"]), int(cfg["record-bytes"]), int(cfg["rows"]), int(cfg["columns"])
    )


def _centred(words: np.ndarray) -> np.ndarray:
    w = np.asarray(words, dtype=np.int64) % Q
    return np.where(w >= Q // 2, w - Q, w)


def _public_file_digests(out) -> dict[str, bytes]:
    return {p: hashlib.sha256((out / p).read_bytes()).digest() for p in _PUBLIC_RUN_FILES}


@pytest.fixture(scope="module")
def two_sets(run):  # noqa: F811
    """Two sessions of the same size, fresh secrets each (the default): every applicant
    held by the data party, and no applicant held by it."""
    tmp, out, shared = run
    before = _public_file_digests(out)
    held = sorted(shared)[100 : 100 + SIZE]
    missing = sorted(set(_bank_ids(tmp)) - shared)[:SIZE]
    a = _session(tmp, out, held, "all-held")
    b = _session(tmp, out, missing, "none-held")
    assert a["result"].found[PARTY].all() and not b["result"].found[PARTY].any()
    return a, b, before


@pytest.fixture(scope="module")
def same_secrets_file(run, tmp_path_factory):  # noqa: F811
    """Two sessions run with the same ``--secrets FILE`` (as the CLI allows for score):
    30 applicants each, all held by the party, the first 15 the same (same positions),
    the last 15 different."""
    tmp, out, shared = run
    file = tmp_path_factory.mktemp("secrets") / "secrets.json"
    held = sorted(shared)
    first = held[200:215] + held[300:315]
    second = held[200:215] + held[400:415]
    a = _session(tmp, out, first, "file-1", secrets=load_secrets_file(file))
    b = _session(tmp, out, second, "file-2", secrets=load_secrets_file(file))
    return a, b


# --- the data party's view ------------------------------------------------------------------


@pytest.mark.slow
def test_the_party_receives_the_same_messages_whoever_is_asked(two_sets, run):  # noqa: F811
    """All held vs none held: every config value the party receives is the same, every
    blob has the same length, the transcripts are equal row for row, and scoring leaves
    the run's public files alone."""
    a, b, before = two_sets
    _, out, _ = run
    assert set(a["to_party"]) == set(b["to_party"]) == {"setup", "oprf", "pir"}
    for stage in ("setup", "oprf", "pir"):
        ma, mb = a["to_party"][stage], b["to_party"][stage]
        assert ma.keys() == mb.keys()
        cfg_a = {k: v for k, v in ma["config"].items() if k != "blinded"}
        cfg_b = {k: v for k, v in mb["config"].items() if k != "blinded"}
        assert cfg_a == cfg_b  # stage, server-round, queries = 3 x applicants: no id
        assert set(cfg_a) <= {"stage", "server-round", "queries"}
        assert cfg_a["queries"] == WAYS * SIZE
        for name in ma.keys() - {"config"}:
            for k in ma[name]:
                assert ma[name][k].shape == mb[name][k].shape
                assert ma[name][k].dtype == mb[name][k].dtype == np.uint8
    assert [len(p) for p in a["blinded"]] == [len(p) for p in b["blinded"]] == [32] * SIZE
    assert a["transcript"] == b["transcript"]  # sizes, names, protections, rounds, order
    assert _public_file_digests(out) == before


@pytest.mark.slow
def test_the_party_cannot_tell_the_sets_apart_by_any_statistic_tried(two_sets):
    """The party's best hypothesis tests on the blobs: under the hypothesis "the bank
    asked about these 40 customers of mine" it looks for Δ = 2^24 at the columns of their
    cuckoo buckets (it placed its records, so it knows each customer's three buckets),
    in the top byte and the low bits; and at the blinded points' bytes. The true set and a
    false one look the same."""
    a, b, _ = two_sets
    assert a["table"].table_seed != b["table"].table_seed  # fresh party draws per session
    words, sums = [], []
    for view in (a, b):  # the hypothesis "a's ids", tested on each session's own table
        layout, table = _layout(view), view["table"]
        row = {str(x): k for k, x in enumerate(view["party"].ids)}
        buckets = table.candidates[[row[x] for x in a["ids"]]]
        cols = np.unique(layout.column_of(buckets))
        words.append(view["queries"][:, cols].ravel().astype(np.int64))
        # the per-query sum over the hypothesised columns (Δ would add up in it)
        sums.append(view["queries"][:, cols].astype(np.int64).sum(axis=1) % Q)
    for part in (lambda w: w >> 24, lambda w: w & 0xFF, lambda w: (w >> 12) & 0xFF):
        table = np.vstack([np.bincount(part(w), minlength=256) for w in words]) + 1
        assert stats.chi2_contingency(table).pvalue > 1e-4
    assert stats.ks_2samp(*words).pvalue > 1e-4
    assert stats.ks_2samp(*sums).pvalue > 1e-4
    points = [np.frombuffer(b"".join(v["blinded"]), np.uint8).reshape(-1, 32) for v in (a, b)]
    assert all((p[:, 31] < 128).all() for p in points)  # u < 2^255 - 19: both sets alike
    table = np.vstack([np.bincount(p[:, :31].ravel(), minlength=256) for p in points])
    assert stats.chi2_contingency(table + 1).pvalue > 1e-4
    as_numbers = [
        np.array([int.from_bytes(x, "little") / 2**255 for x in v["blinded"]]) for v in (a, b)
    ]
    assert stats.ks_2samp(*as_numbers).pvalue > 1e-4


@pytest.mark.slow
def test_queries_are_fresh_lwe_samples_with_delta_only_at_the_asked_buckets(two_sets):
    """From the bank's kept LWE secrets and the public A: every query the party received
    is A·s + e + Δ·u_j exactly, with j the column of the applicant's cuckoo bucket, three
    per applicant in way order 0, 1, 2 whether the party holds the id or not (so the order
    depends on nothing the party could learn); the buckets hash the bank's OPRF values,
    so for a held id they are the party's own three; e a rounded Gaussian of deviation
    6.4; s fresh per query and per session."""
    a, b, _ = two_sets
    errors, secrets = [], []
    for view in (a, b):
        layout = _layout(view)
        cfg = view["from_party"]["setup"]["config"]
        A = public_matrix(bytes(cfg["pir-seed"]), layout.columns).astype(np.uint64)
        (kept,) = view["kept"]
        buckets = candidate_buckets(view["keys"], layout.records, bytes(cfg["table-seed"]))
        assert np.array_equal(kept.columns, layout.column_of(buckets.reshape(-1)))
        row = {str(x): k for k, x in enumerate(view["party"].ids)}
        held = [k for k, x in enumerate(view["ids"]) if x in row]
        assert len(held) in (0, SIZE)  # all held or none
        mine = view["table"].candidates[[row[view["ids"][k]] for k in held]]
        assert np.array_equal(buckets[held], mine.reshape(len(held), WAYS))
        s = kept.secrets.astype(np.uint64)
        residual = _centred(view["queries"].astype(np.uint64) - (A @ s.T).T)
        rows = np.arange(len(residual))
        at = residual[rows, kept.columns]
        assert np.all(np.abs(at - DELTA) < 16 * ERROR_STDDEV)  # Δ at the asked column
        residual[rows, kept.columns] -= DELTA
        assert np.abs(residual).max() < 16 * ERROR_STDDEV  # and nowhere else
        errors.append(residual.ravel())
        secrets.append(kept.secrets)
    e = np.concatenate(errors)
    assert abs(e.mean()) < 0.1 and abs(e.std() - ERROR_STDDEV) < 0.1
    s = np.concatenate(secrets)
    assert len({row.tobytes() for row in s}) == len(s)  # no secret reused, in or across
    assert stats.chisquare(np.bincount(s.ravel() >> 24, minlength=256)).pvalue > 1e-4


@pytest.mark.slow
def test_fresh_secrets_two_sessions_do_not_cancel(two_sets):
    """With fresh secrets (the default) the difference of two sessions' queries is as
    uniform as the queries: no exact zeros or ±Δ a reuse of (s, e) would leave."""
    a, b, _ = two_sets
    diff = (a["queries"].astype(np.int64) - b["queries"].astype(np.int64)) % Q
    special = np.isin(diff, [0, DELTA, Q - DELTA]).mean()
    assert special < 1e-3
    assert not set(a["blinded"]) & set(b["blinded"])


def _owners(view) -> dict[tuple[int, ...], list[str]]:
    """The data party's own knowledge of one session's table: which of its customers have
    each triple of PIR columns (the columns of their three candidate buckets)."""
    table = view["table"]
    triples = table.server.layout.column_of(table.candidates).tolist()
    who: dict[tuple[int, ...], list[str]] = {}
    for ident, t in zip((str(i) for i in view["party"].ids), triples):
        who.setdefault(tuple(t), []).append(ident)
    return who


@pytest.mark.slow
def test_same_secrets_file_twice_the_party_cannot_recover_whom_was_asked(same_secrets_file):
    """Finding 1, fixed. The review's attack: the data party subtracts two sessions'
    queries; were (s, e) reused, the difference would be 0 and ±Δ only, the asked columns
    readable off the ±Δ entries and matched to its customers' buckets (in each session's
    own table, which it built). With per-session draws on both sides nothing cancels: the
    difference is as uniform as the queries, no applicant's rows are readable, and the
    bank's LWE secrets share no row across the two sessions."""
    a, b = same_secrets_file
    assert a["queries"].shape == b["queries"].shape  # same size: the attack applies
    who = {"a": _owners(a), "b": _owners(b)}
    diff = (a["queries"].astype(np.int64) - b["queries"].astype(np.int64)) % Q
    assert np.isin(diff, [0, DELTA, Q - DELTA]).mean() < 1e-3
    readable, identified = 0, set()
    for i in range(len(a["ids"])):
        rows = diff[WAYS * i : WAYS * (i + 1)]
        if not np.isin(rows, [0, DELTA, Q - DELTA]).all():
            continue  # what a fresh (s, e) per session leaves: nothing to read
        readable += 1
        cols_a = [np.flatnonzero(r == DELTA) for r in rows]
        cols_b = [np.flatnonzero(r == Q - DELTA) for r in rows]
        if all(len(c) == 1 for c in cols_a + cols_b):
            for cols, view, key in ((cols_a, a, "a"), (cols_b, b, "b")):
                named = who[key].get(tuple(int(c[0]) for c in cols), [])
                if view["ids"][i] in named:
                    identified.add(view["ids"][i])
    # the claim: the party learns nothing about which ids the bank asked about
    assert not readable and not identified, f"the party identified {len(identified)}"
    (kept_a,), (kept_b,) = a["kept"], b["kept"]
    assert not {r.tobytes() for r in kept_a.secrets} & {r.tobytes() for r in kept_b.secrets}


@pytest.mark.slow
def test_same_secrets_file_twice_blinded_points_do_not_link(same_secrets_file):
    """Finding 1, fixed (the bank's side): the blinding scalars are fresh per session
    with a secrets file too, so the 15 applicants asked again at the same positions send
    unrelated blinded points; no point repeats anywhere across the two sessions."""
    a, b = same_secrets_file
    assert a["ids"][:15] == b["ids"][:15]
    linked = [i for i, (p, q) in enumerate(zip(a["blinded"], b["blinded"])) if p == q]
    assert not linked, f"{len(linked)} of {len(a['blinded'])} blinded ids repeat"
    assert not set(a["blinded"]) & set(b["blinded"])


@pytest.mark.slow
def test_same_secrets_file_twice_the_partys_draws_are_fresh(same_secrets_file):
    """Finding 1, fixed (the data party's side): with the same secrets file each session
    has its own OPRF key, table seed, PIR seed and filler, so the bank cannot carry the
    OPRF values it obtained in one session over to the next (it must ask, blinded id by
    blinded id, again): the 15 repeated applicants, all held, get new F_k(x), and the
    first session's values open no record of the second session's table."""
    a, b = same_secrets_file
    assert a["session"] != b["session"]
    pa, pb = (v["from_party"]["setup"]["config"] for v in (a, b))
    assert pa["table-seed"] != pb["table-seed"] and pa["pir-seed"] != pb["pir-seed"]
    assert a["result"].found[PARTY].all() and b["result"].found[PARTY].all()
    assert not set(a["keys"][:15]) & set(b["keys"][:15])
    records = b["records"]
    for key in a["keys"][:15]:  # each a held id's value in session a
        assert not open_records([key] * len(records), records)[0].any()


@pytest.mark.slow
def test_the_party_received_messages_are_marked_unreadable(two_sets):
    """Claim (4), from the scoring's transcript.jsonl: everything the data party receives
    is unreadable to it, but for the identify handshake and the set-up request, which
    carry no customer (the same bytes whoever is asked). And the bank's side of finding 4
    as now documented."""
    a, b, _ = two_sets
    for view in (a, b):
        to_party = [r for r in view["transcript"] if r["receiver"] == PARTY]
        assert {r["what"] for r in to_party} == {
            "identity", "pir_setup_request", "oprf_blinded_ids", "pir_queries"
        }  # fmt: skip
        for r in to_party:
            if r["what"] in ("oprf_blinded_ids", "pir_queries"):
                assert not r["readable_by_receiver"]
                assert r["protection"] in ("masked", "ciphertext")
    readable = [
        [(r["what"], r["bytes"]) for r in v["transcript"] if r["receiver"] == PARTY] for v in (a, b)
    ]
    assert readable[0] == readable[1]
    # finding 4: the set-up reply (public seeds, sizes, the hint over sealed records) is
    # marked readable by the bank, and the bank's part of who_learns_what names the
    # customer count its table's size tells
    for view in (a, b):
        (setup,) = [r for r in view["transcript"] if r["what"] == "pir_hint_and_public_seeds"]
        assert setup["receiver"] == "bank" and setup["readable_by_receiver"]
        assert setup["protection"] == "masked"
        assert "customer count" in view["summary"]["privacy"]["who_learns_what"]["bank"]


@pytest.mark.slow
def test_the_scoring_outputs_are_the_banks_and_the_public_transcript_tells_only_the_size(
    two_sets,
    run,  # noqa: F811
):
    """Finding 3, fixed. The scores and ``<stem>.summary.json`` say who is held where (all
    held vs none held: their summaries differ), so they are the bank's private output,
    written owner-only (0600 under umask 022); only ``<stem>.transcript.jsonl`` is
    public (0644 under umask 022), and it is the same, row for row, for two applicant
    sets of one size at the two extremes (all held, none held), and names no applicant.
    No staged temporary file is left beside them."""
    tmp, _, _ = run
    a, b, _ = two_sets

    def content(summary):
        s = {k: v for k, v in summary.items() if k not in ("run", "ids_file")}
        s["cost"] = {k: v for k, v in s["cost"].items() if "wall" not in k and k != "seconds"}
        return s  # timing is out of scope; paths are the caller's choice

    assert content(a["summary"]) != content(b["summary"])  # why they must stay private
    for view in (a, b):
        assert view["modes"] == {"scores": 0o600, "summary": 0o600, "transcript": 0o644}
        text = json.dumps(view["transcript"])
        assert not any(x in text for x in a["ids"] + b["ids"])
    assert a["transcript"] == b["transcript"]
    assert not list(tmp.glob(".fedrisk-*"))


# --- the bank's view ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def many_asked(run):  # noqa: F811
    """The bank asks about 1,500 of its 2,500 customers (fresh secrets)."""
    tmp, out, shared = run
    rng = np.random.default_rng(11)
    universe = _bank_ids(tmp)
    asked = [str(i) for i in rng.choice(universe, 1500, replace=False)]
    return _session(tmp, out, asked, "many"), universe, shared


@pytest.mark.slow
def test_the_bank_opens_only_asked_records_and_sees_uniform_filler(many_asked):
    """The whole sealed table (the hint gives it to the bank, columns ≤ n): the OPRF
    values the bank obtained open exactly the asked held ids' records; filler and other
    customers' records are alike byte for byte, check bytes included."""
    seen, _, shared = many_asked
    (opened,) = seen["opened"]
    opened = opened.reshape(-1, WAYS)
    assert np.array_equal(opened.any(axis=1), [i in shared for i in seen["ids"]])
    cfg = seen["from_party"]["setup"]["config"]
    cand = candidate_buckets(seen["keys"], int(cfg["buckets"]), bytes(cfg["table-seed"]))
    assert all(len(set(c[o].tolist())) <= 1 for c, o in zip(cand, opened))  # one record
    records, table, party = seen["records"], seen["table"], seen["party"]
    mine = [str(i) for i in party.ids]
    where = place(table.candidates, len(records))  # the party's own placement, again
    assert open_records(table.oprf.outputs(mine), records[where])[0].all()
    occupied = np.zeros(len(records), bool)
    occupied[where] = True
    asked = set(seen["ids"])
    others = occupied.copy()
    others[[w for i, w in zip(mine, where) if i in asked]] = False
    filler, sealed = records[~occupied], records[others]
    for cut in (slice(0, 8), slice(8, None)):  # check bytes, payload bytes
        hist = [np.bincount(r[:, cut].ravel(), minlength=256) for r in (filler, sealed)]
        assert stats.chi2_contingency(np.vstack(hist) + 1).pvalue > 1e-4
    assert not (sealed[:, :8] == 0).all(axis=1).any()


@pytest.mark.slow
def test_the_bank_cannot_tell_whether_the_party_holds_an_id_it_did_not_ask(many_asked):
    """Finding 2, fixed: records are placed by hashes of their OPRF values. The bank's
    full view of a session (the 1,500 asked ids, their F_k(x), the table seed, which of
    their buckets opened) tells it which buckets its asked held ids take; the buckets any
    other id could take hash F_k(x), which it never obtained. The review's exclusion (a
    non-asked id whose three buckets are all taken by asked ids is certainly not held),
    computed the only way open to the bank (the public hash of the raw id), now names
    held ids as often as ids the party lacks: it proves nothing. The raw-id buckets are
    those of no record (chance hits only); with F_k, which only the party has, the same
    inference would be sound."""
    seen, universe, shared = many_asked
    cfg = seen["from_party"]["setup"]["config"]
    buckets, seed = int(cfg["buckets"]), bytes(cfg["table-seed"])
    table, party = seen["table"], seen["party"]
    # the bank's own computations: the asked ids' buckets and where a record opened
    asked = seen["ids"]
    (opened,) = seen["opened"]
    opened = opened.reshape(-1, WAYS)
    cand = candidate_buckets(seen["keys"], buckets, seed)
    taken = set(cand[opened].tolist())  # buckets holding an asked id
    mine = [str(i) for i in party.ids]
    row = {x: k for k, x in enumerate(mine)}
    held = [k for k, x in enumerate(asked) if x in row]
    assert np.array_equal(cand[held], table.candidates[[row[asked[k]] for k in held]])
    # where the party's records are vs the buckets of their raw ids: chance agreement
    where = place(table.candidates, buckets)
    raw = [x.encode() for x in mine]  # the raw ids, hashed as if they were the keys
    hits = int((candidate_buckets(raw, buckets, seed) == where[:, None]).any(axis=1).sum())
    assert stats.binomtest(hits, len(mine), WAYS / buckets, "greater").pvalue > 1e-4
    # the review's exclusion, by raw ids
    asked_set = set(asked)
    rest = [i for i in universe if i not in asked_set]
    rest_held = np.array([i in shared for i in rest])
    excluded = np.array(
        [
            set(bs.tolist()) <= taken
            for bs in candidate_buckets([x.encode() for x in rest], buckets, seed)
        ]
    )
    wrong = int((excluded & rest_held).sum())
    assert wrong > 0, f"the bank proved {excluded.sum()} non-asked ids are not held"
    assert excluded.sum() >= 20  # the inference fires, and "excludes" held ids too
    contingency = [
        [(excluded & rest_held).sum(), (excluded & ~rest_held).sum()],
        [(~excluded & rest_held).sum(), (~excluded & ~rest_held).sum()],
    ]
    assert stats.fisher_exact(contingency).pvalue > 1e-3  # no better than a guess
    # the same inference over F_k(x), the party's key: sound (no held id excluded)
    true = candidate_buckets(table.oprf.outputs(rest), buckets, seed)
    excluded_by_f = np.array([set(bs.tolist()) <= taken for bs in true])
    assert excluded_by_f.any() and not (excluded_by_f & rest_held).any()


@pytest.mark.slow
def test_the_bank_cannot_reuse_oprf_values_on_a_later_fresh_session(two_sets, many_asked):
    """With fresh secrets (the default) each session has its own OPRF key: the bank's
    F_k(x) from one session opens nothing in another session's table."""
    a, _, _ = two_sets
    later, _, _ = many_asked
    records = later["records"]
    for key in a["keys"][:10]:
        assert not open_records([key] * len(records), records)[0].any()


@pytest.mark.slow
def test_protective_randomness_is_the_partys_own_not_public(two_sets, run):  # noqa: F811
    """Claim (3): the table seed, PIR seed, filler and OPRF key come from the party's
    session secret (its own secret keyed with its fresh OS draw): fresh each session, not
    recomputable from the public seeds it sends, from the run's public files (scenario
    seed, scenario.toml, summary.json), nor from the party's own long-term secret alone
    (what every session drew from before finding 1's fix)."""
    tmp, out, _ = run
    a, b, _ = two_sets
    pa, pb = (v["from_party"]["setup"]["config"] for v in (a, b))
    assert pa["table-seed"] != pb["table-seed"] and pa["pir-seed"] != pb["pir-seed"]
    records, table, party, session = a["records"], a["table"], a["party"], a["session"]
    assert bytes(pa["table-seed"]) == table.table_seed
    assert table.table_seed in {session.digest("query/table-seed", t) for t in range(20)}
    assert bytes(pa["pir-seed"]) == session.digest("query/pir-seed")
    scenario = tomllib.loads((out / "scenario.toml").read_text())
    seed = int(scenario["seed"])
    guesses = [
        bytes(32),
        seed.to_bytes(32, "little"),
        seed.to_bytes(32, "big"),
        hashlib.sha256(str(seed).encode()).digest(),
        *(hashlib.sha256((out / p).read_bytes()).digest() for p in _PUBLIC_RUN_FILES),
        bytes(pa["table-seed"]),
        bytes(pa["pir-seed"]),
    ]
    guesses += [RunSecrets(g).of(PARTY).key for g in guesses]
    guesses.append(party.secret.key)  # the party's long-term secret, without the session
    mine = [str(i) for i in party.ids]
    where = place(table.candidates, len(records))
    empty = np.setdiff1d(np.arange(len(records)), where)
    filler = records[empty]
    public = {bytes(pa["table-seed"]), bytes(pa["pir-seed"])}
    real_keys = table.oprf.outputs(mine[:5])
    for g in guesses:
        derived = PartySecret(g)
        assert not {derived.digest("query/table-seed", t) for t in range(3)} & public
        assert derived.digest("query/pir-seed") not in public
        for prg_seed in (g, derived.digest("query/filler")):
            words = Prg(prg_seed).words(-(-records.size // 8), "fill")
            guess = words.view(np.uint8)[: records.size].reshape(records.shape)[empty]
            assert (guess == filler).mean() < 0.02
        guessed_keys = OprfKey(derived.digest("query/oprf-key")).outputs(mine[:5])
        assert not set(guessed_keys) & set(real_keys)
    # the other session's filler (its own fresh draw) at the same empty buckets
    other_filler = b["records"][empty]
    assert other_filler.shape == filler.shape and (other_filler == filler).mean() < 0.02
    # and another session secret builds a different table of the same shape
    other = query_party.build_table(
        party, PartySecret.fresh(), int(a["to_party"]["setup"]["config"]["queries"])
    )
    assert other.server.layout == table.server.layout
    assert other.table_seed != table.table_seed


# --- SimplePIR as implemented ---------------------------------------------------------------


def _lwe(columns: int, batch: int, randomness: bytes, seed: bytes = b"\x05" * 32):
    layout = PirLayout(records=columns, record_bytes=1, rows=1, columns=columns)
    client = PirClient(layout, seed, np.zeros((1, LWE_DIMENSION), np.uint32))
    cols = np.arange(batch) * (columns // batch)
    q, kept = client.query(cols, randomness)
    A = public_matrix(seed, columns).astype(np.uint64)
    residual = _centred(q.astype(np.uint64) - (A @ kept.secrets.astype(np.uint64).T).T)
    return residual, cols, kept


def test_lwe_error_is_a_rounded_gaussian_of_deviation_6_4_and_delta_is_placed():
    residual, cols, kept = _lwe(2048, 32, b"\x11" * 32)
    rows = np.arange(len(cols))
    assert np.all(np.abs(residual[rows, cols] - DELTA) < 100)
    residual[rows, cols] -= DELTA
    e = residual.ravel()
    assert abs(e.mean()) < 0.1
    assert abs(e.std() - ERROR_STDDEV) < 0.1
    assert abs(stats.kurtosis(e, fisher=False) - 3.0) < 0.15  # Gaussian, not uniform
    assert abs(stats.skew(e)) < 0.05
    assert np.abs(e).max() < 8 * ERROR_STDDEV
    p0 = stats.norm.cdf(0.5 / ERROR_STDDEV) - stats.norm.cdf(-0.5 / ERROR_STDDEV)
    assert abs((e == 0).mean() - p0) < 0.005
    # goodness of fit on -19..19, the tails pooled into the end bins
    edges = np.concatenate([[-np.inf], np.arange(-19.5, 20.5), [np.inf]])
    want = np.diff(stats.norm.cdf(edges / ERROR_STDDEV))
    got = np.bincount(np.clip(e, -20, 20) + 20, minlength=41)
    assert stats.chisquare(got, want * got.sum()).pvalue > 1e-4


def test_lwe_secrets_are_uniform_and_fresh_per_query_and_per_randomness():
    r1, _, k1 = _lwe(1024, 32, b"\x21" * 32)
    r2, _, k2 = _lwe(1024, 32, b"\x22" * 32)
    s = np.concatenate([k1.secrets, k2.secrets])
    assert len({row.tobytes() for row in s}) == len(s)
    for part in (s >> 24, s & 0xFF, (s >> 13) & 0xFF):
        assert stats.chisquare(np.bincount(part.ravel(), minlength=256)).pvalue > 1e-4
    assert abs(s.astype(np.float64).mean() / Q - 0.5) < 0.005
    # fresh errors per query: no two queries of a batch share theirs
    e = np.concatenate([r1, r2])
    assert len({row.tobytes() for row in e}) == len(e)


@pytest.mark.slow
def test_pir_decodes_exactly_at_the_worst_case_with_the_claimed_margin():
    """All bytes 255 at the most columns allowed (2^13): decoding is exact and |D·e|
    stays far below Δ/2 = 2^23 (the docstring: σ(D·e) ≤ 2^17.2)."""
    rows = 16
    layout = PirLayout(records=MAX_COLUMNS, record_bytes=rows, rows=rows, columns=MAX_COLUMNS)
    records = np.full((MAX_COLUMNS, rows), 255, np.uint8)
    seed = os.urandom(32)
    server = PirServer(layout, records, seed)
    hint = server.hint()
    A = public_matrix(seed, MAX_COLUMNS).astype(np.uint64)
    exact = (layout.matrix(records).astype(np.uint64) @ A) % Q
    assert np.array_equal(hint, exact)  # the float64 products are exact
    client = PirClient(layout, seed, hint)
    cols = np.array([0, 1, MAX_COLUMNS // 2, MAX_COLUMNS - 1])
    q, kept = client.query(cols, os.urandom(32))
    ans = server.answer(q)
    D = layout.matrix(records).astype(np.uint64)
    assert np.array_equal(ans, (q.astype(np.uint64) @ D.T) % Q)  # exact, no secret
    assert (client.decode(ans, kept) == 255).all()
    hs = hint.astype(np.uint64) @ kept.secrets.T.astype(np.uint64)
    noisy = _centred(ans.astype(np.uint64) - hs.T)
    margin = np.abs(_centred(noisy - 255 * DELTA)).max() / (DELTA / 2)
    assert margin < 0.25
    extreme = np.full((1, MAX_COLUMNS), Q - 1, np.uint32)
    want = (255 * (Q - 1) * MAX_COLUMNS) % Q
    assert (server.answer(extreme) == want).all()


# --- the OPRF as implemented ----------------------------------------------------------------


def _ladder(k: int, u: int) -> tuple[int, int]:
    """x-only Montgomery ladder (RFC 7748) for any scalar: (X, Z), Z = 0 at infinity."""
    x1, x2, z2, x3, z3, swap = u, 1, 0, u, 1, 0
    for t in reversed(range(k.bit_length())):
        bit = (k >> t) & 1
        swap ^= bit
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b = x2 + z2, x2 - z2
        aa, bb = a * a % P25519, b * b % P25519
        e = aa - bb
        c, d = x3 + z3, x3 - z3
        da, cb = d * a % P25519, c * b % P25519
        x3, z3 = (da + cb) ** 2 % P25519, x1 * (da - cb) ** 2 % P25519
        x2, z2 = aa * bb % P25519, e * (aa + 121665 * e) % P25519
    if swap:
        x2, z2 = x3, z3
    return x2, z2


def _at_infinity(k: int, point: bytes) -> bool:
    return _ladder(k, int.from_bytes(point, "little"))[1] == 0


TRICKY_IDS = ["1", "01", "1 ", " 1", "1\x00", "e\u0301", "\u00e9", "c00001", "C00001", "10"]


def test_oprf_blinded_path_equals_direct_and_ids_never_collide():
    key = OprfKey(os.urandom(32))
    ids = TRICKY_IDS + [f"c{i:05d}" for i in range(2, 152)]
    draws = []
    blinding = OprfBlinding(ids, lambda: draws.append(os.urandom(32)) or draws[-1])
    got = blinding.outputs(key.evaluate(blinding.blinded()))
    assert got == key.outputs(ids)
    assert len(set(got)) == len(ids)
    assert len({hash_to_curve(i) for i in ids}) == len(ids)
    # the unblinding scalar is a clamped representative of r⁻¹ mod ℓ
    for r, t in blinding._pairs:
        assert r * t % ORDER == 1
        for s in (r, t):
            assert s % 8 == 0 and 2**254 <= s < 2**255
    # finding 4 (the docstring now says hiding is computational): r is kept only when
    # r⁻¹ has a clamped representative, about half of the draws, and the clamped scalars
    # cover about half of the residues mod ℓ: r ranges over about a quarter of them
    assert 0.35 < len(ids) / len(draws) < 0.65
    assert len({r % ORDER for r, _ in blinding._pairs}) == len(ids)
    # the same id blinded twice: two unrelated points
    again = OprfBlinding(ids[:20], lambda: os.urandom(32)).blinded()
    assert not set(again) & set(blinding.blinded()[:20])


def test_oprf_points_are_on_the_curve_and_in_the_prime_order_subgroup():
    """H(x) is on the curve, never the twist (8ℓ·H(x) = O); every blinded point and every
    answer k·B lies in the prime-order subgroup (ℓ·B = O): no small-order part from which
    the party's key or the id could show."""
    key = OprfKey(os.urandom(32))
    ids = TRICKY_IDS[:6]
    blinding = OprfBlinding(ids, lambda: os.urandom(32))
    blinded = blinding.blinded()
    for ident, b, kb in zip(ids, blinded, key.evaluate(blinded)):
        u = int.from_bytes(hash_to_curve(ident), "little")
        rhs = (u**3 + 486662 * u * u + u) % P25519
        assert pow(rhs, (P25519 - 1) // 2, P25519) == 1
        assert _at_infinity(8 * ORDER, hash_to_curve(ident))
        assert _at_infinity(ORDER, b) and _at_infinity(ORDER, kb)
        assert not _at_infinity(8, b)
