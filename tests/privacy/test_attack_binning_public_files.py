"""The run's public files of a vertical WOE scorecard, read for what a data party keeps:
its cut points and category names (DESIGN: only in model/scorecard-<party>.json,
owner-only), and for any party's secret or the bank's private key.

Public here: everything in the run folder but ``model/`` (scenario.toml, summary.json,
transcript.jsonl, scorecard.csv/.json, rounds.csv, calibration.json) and the HTML report.
"""

from __future__ import annotations

import html
import json
import stat
import warnings

import numpy as np
import pytest

from fedrisk.crypto.gh_packing import GHLayout
from fedrisk.crypto.paillier import decrypt_many
from fedrisk.data.characteristics import load_vertical_characteristics
from fedrisk.evaluation.report import render_report
from fedrisk.models.boosting import GH_FRAC_BITS
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs import scorecard as scorecard_module
from fedrisk.runs.run import run_scenario
from fedrisk.scenario import load_scenario
from fedrisk.vertical.binning.bank import per_bin_counts
from fedrisk.vertical.protocol import ROWS_KEY
from tests.conftest import SCENARIOS

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:1024-bit Paillier keys")]

SCENARIO = SCENARIOS / "vertical-scorecard-german.toml"
SECRETS = RunSecrets(b"binning-public-files".ljust(32, b"\0"))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    keys = {}
    real = scorecard_module.generate_keypair

    def keep(bits):
        keys["pair"] = real(bits)
        return keys["pair"]

    seen: dict = {}

    def spy(msg, context, call_next):  # what the bank received, and the party's rows
        cfg = msg.content.config_records.get("config", {})
        reply = call_next(msg, context)
        if str(cfg.get("stage", "")) == "labels":
            seen["sums"] = reply.content["sums"]["sums"].numpy().copy()
            seen["bins"] = [int(b) for b in reply.content["config"]["bins"]]
            seen["kinds"] = [str(k) for k in reply.content["config"]["kinds"]]
            seen["train"] = context.state[ROWS_KEY]["train"].numpy().copy()
        return reply

    out = tmp_path_factory.mktemp("vpublic") / "run"
    s = load_scenario(SCENARIO, ["rounds=1"])
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mp.setattr(scorecard_module, "generate_keypair", keep)
        run_scenario(s, out, show_progress=False, secrets=SECRETS, client_mods=[spy])
    report = render_report(out, out.parent / "report.html")
    public = {
        p.name: p.read_text(errors="replace")
        for p in out.iterdir()
        if p.is_file() and p.suffix in (".toml", ".json", ".jsonl", ".csv")
    }
    public["report.html"] = open(report).read()
    return s, out, public, keys["pair"][1], seen


def test_the_partys_bins_stay_in_its_owner_only_file(run):
    s, out, public, _, _ = run
    model = out / "model"
    assert stat.S_IMODE(model.stat().st_mode) == 0o700
    (part,) = [p for p in model.iterdir() if p.name.startswith("scorecard-")]
    assert part.name == "scorecard-bureau.json"
    assert stat.S_IMODE(part.stat().st_mode) == 0o600
    kept = json.loads(part.read_text())
    needles = set()
    for c in kept["characteristics"]:
        b = c["binning"]
        if b["kind"] == "text":
            needles.update(json.dumps(group) for group in b["groups"])  # ["tv"], ...
            needles.update(f'"{v}"' for g in b["groups"] for v in g)  # a JSON string
            needles.update(f"{{{', '.join(g)}}}" for g in b["groups"])  # {tv} as labels print
        else:
            needles.add(json.dumps(b["cuts"]))
            needles.update(f"{e:.6g}" for e in b["edges"])
            needles.update(f"{e:g}" for e in b["edges"])
        labels = [x["label"] for x in c["bins"] if x["label"] != "missing"]
        needles.update(labels)
        needles.update(html.escape(x) for x in labels)
    own = part.read_text()
    assert sum(n in own for n in needles) > 20  # the needles are what the party's file holds
    found = {(name, n) for name, text in public.items() for n in needles if n and n in text}
    # the bank's own columns may share a category value with the bureau's; none here
    assert not found, sorted(found)[:10]


def test_no_secret_and_no_private_key_in_any_file(run):
    s, out, public, private_key, _ = run
    every = {
        p.relative_to(out).as_posix(): p.read_bytes().decode(errors="replace")
        for p in out.rglob("*")
        if p.is_file() and p.suffix != ".png"
    }
    every.update(public)
    names = [p.name for p in s.federation.parties]
    needles = {SECRETS.of(n).hex() for n in names}
    needles |= {str(private_key.p), str(private_key.q), f"{private_key.p:x}", f"{private_key.q:x}"}
    found = [(f, n[:12]) for f, t in every.items() for n in needles if n in t]
    assert not found, found


def test_the_bank_cannot_name_a_text_columns_bins(run):
    """FINDING if it fails. The bank decrypts per-bin counts of each party text column,
    the bins in the categories' sorted order (rare ones merged into a last bin). The
    public summary.json names the column ("housing", "job", ...) and the bank knows its
    codebook (here: the values the column takes); sorted, it names every bin, so it
    holds the party's customers and defaulters per *named* category."""
    s, out, public, key, seen = run
    summary = json.loads(public["summary.json"])
    names = [
        c["characteristic"] for c in summary["binning"]["characteristics"] if c["owner"] == "bureau"
    ]  # public: the party's column names, in the bank's "column k" order
    data = load_vertical_characteristics(s)
    party, holder = data.parties[0], data.holder
    pos = {str(i): k for k, i in enumerate(holder.ids)}
    defaulters = sum(int(holder.y[pos[str(party.ids[r])]]) for r in seen["train"])  # the bank's
    layout = GHLayout(len(seen["train"]), GH_FRAC_BITS)
    per = layout.per_ciphertext(key.public_key.n)
    values = decrypt_many(key, [int.from_bytes(r.tobytes(), "big") for r in seen["sums"]])
    left = layout.unpack(values, sum(b - 1 for b in seen["bins"]), per)
    counts = per_bin_counts(left, seen["bins"], len(seen["train"]), defaulters)
    named = {}
    for name, kind, bins, (good, bad) in zip(names, seen["kinds"], seen["bins"], counts):
        if kind != "text":
            continue
        codebook = sorted({str(v).strip() for v in party.columns[name]} - {""})
        if len(codebook) != bins - 1:
            continue  # a rare bin: the bank would need the categories' rough sizes too
        truth = np.char.strip(party.columns[name][seen["train"]].astype(str))
        if all(int((truth == c).sum()) == int(good[k] + bad[k]) for k, c in enumerate(codebook)):
            named[name] = {c: (int(good[k] + bad[k]), int(bad[k])) for k, c in enumerate(codebook)}
    assert not named, f"the bank named every bin of {sorted(named)}: {named}"
