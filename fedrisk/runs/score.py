"""``fedrisk score``: score new applicants with a vertical run's joint model, fetching
the data parties' partial scores by anonymous query (OPRF + SimplePIR keyword lookup,
:mod:`fedrisk.vertical.query`), through Flower on the in-process engine.

Input: a vertical run folder (logistic on either protocol, WOE scorecard or SecureBoost;
its ``scenario.toml`` says where each party's data is, its ``model/`` holds each party's
part) and a CSV of applicants: the id column (``data.id``) and, for applicants the bank
does not have on file, the bank's columns. Output: one CSV row per applicant (id,
P(default), which model scored it, a scorecard's points, which parties hold it), plus
``<out stem>.summary.json`` (counts, costs, who learned what) and
``<out stem>.transcript.jsonl`` (every message, as a run's transcript).

An applicant that some data party does not hold gets the fallback the model kind
defines (:mod:`fedrisk.vertical.query.models`): the bank-only model for logistic and
trees, the missing bins for a scorecard. Nothing is written unless every file is
complete.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fedrisk.crypto.pir import ERROR_STDDEV, LWE_DIMENSION
from fedrisk.data.characteristics import load_vertical_characteristics
from fedrisk.data.csv_source import is_number
from fedrisk.data.vertical import load_vertical
from fedrisk.errors import InputError
from fedrisk.files import input_file, read_input_text, with_umask_permissions
from fedrisk.flower.engines import quiet_flower, run_engine
from fedrisk.flower.recorder import ServerRecorder
from fedrisk.i18n import gettext as _
from fedrisk.model_io import TREES_DIR as MODEL_DIR
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.progress import session_progress, step_recorder
from fedrisk.scenario import Scenario, load_scenario, scenario_from_dict
from fedrisk.vertical.query import (
    ScoringBankJob,
    ScoringOutcome,
    ScoringParty,
    ScoringPartyJob,
    make_query_bank_app,
    make_query_party_app,
)
from fedrisk.vertical.query.models import QueryModel, Scored, query_model

__all__ = ["Applicants", "ScoreResult", "read_applicants", "score_applicants"]


@dataclass(frozen=True)
class Applicants:
    ids: tuple[str, ...]
    bank: dict[str, np.ndarray]  # the bank's raw columns, by name


@dataclass(frozen=True)
class ScoreResult:
    out: Path
    pd: np.ndarray
    model: np.ndarray  # per applicant: "joint", "bank_only" or "missing_bins"
    found: dict[str, np.ndarray]
    summary: dict[str, Any]
    points: np.ndarray | None = None


def score_applicants(
    run_dir: str | Path,
    ids_file: str | Path,
    out: str | Path,
    *,
    secrets: RunSecrets | None = None,
    scenario: str | Path | None = None,
    show_progress: bool = False,
) -> ScoreResult:
    """Score the applicants in ``ids_file`` with the joint model of ``run_dir``; write
    ``out`` (CSV) and its summary and transcript beside it. Raises InputError (one line)
    on bad input, before anything is written. ``scenario``: the file the run was made
    from, when its data paths are relative (they resolve against that file's folder);
    default the run folder's own ``scenario.toml``."""
    run_dir, ids_file, out = Path(run_dir), Path(ids_file), Path(out)
    started = time.perf_counter()
    query = _query_model(run_dir)
    s = _run_scenario(run_dir, None if scenario is None else Path(scenario))
    tables = _tables(s, query, run_dir)
    holder_ids, holder_columns = tables[query.label_holder]
    applicants = read_applicants(ids_file, s.data.id, query, holder_ids, holder_columns)
    _check_out(out, ids_file)
    secrets = secrets or RunSecrets()
    parties = []
    for name in query.parties:
        ids, columns = tables[name]
        side = query.party_side(name)
        missing = [c for c in side.columns if c not in columns]
        if missing:
            raise InputError(
                f"{run_dir}/scenario.toml: party {name!r} has no column {missing[0]!r}, which "
                "its part of the model uses; score with the run's own data"
            )
        own = {c: columns[c] for c in side.columns}
        parties.append(ScoringParty(name, ids, own, side, secrets.of(name)))
    bank_job = ScoringBankJob(
        query.label_holder, query.parties, applicants.ids, secrets.of(query.label_holder)
    )
    outcome = ScoringOutcome()
    quiet_flower(False)
    with session_progress(
        show_progress, _("anonymous query: {n} applicants").format(n=f"{len(applicants.ids):,}")
    ) as (bar, task):
        recorder = step_recorder(bar, task, "session")
        recorder.server_name = query.label_holder
        wall = run_engine(
            "inprocess",
            make_query_bank_app(bank_job, recorder, outcome),
            make_query_party_app(ScoringPartyJob(tuple(parties))),
            len(parties),
        )
    if recorder.error is not None:
        raise recorder.error
    try:
        scored = query.combine(applicants.bank, outcome.payloads, outcome.found)
    except ValueError as exc:  # a cell the scorecard cannot read
        raise InputError(f"--ids {ids_file}: {exc}") from None
    summary = _summary(run_dir, ids_file, query, applicants, scored, outcome, recorder, wall)
    summary["cost"]["wall_s"] = round(time.perf_counter() - started, 3)
    _write(out, applicants, scored, outcome.found, query, summary, recorder)
    return ScoreResult(out, scored.pd, scored.model, outcome.found, summary, scored.points)


def _query_model(run_dir: Path) -> QueryModel:
    summary_file = run_dir / "summary.json"
    if not run_dir.is_dir() or not summary_file.is_file():
        raise InputError(
            f"{run_dir}: not a run folder (no summary.json); give a vertical run's folder"
        )
    try:
        summary = json.loads(summary_file.read_text(encoding="utf-8"))
        kind = summary["kind"]
        holder = summary["data"]["label_holder"] if kind == "vertical" else None
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(
            f"{summary_file}: not a fedrisk summary; give a vertical run's folder"
        ) from None
    if kind != "vertical":
        raise InputError(
            f"{run_dir}: a {kind} run; fedrisk score needs a vertical run (bank + data "
            "parties), whose data parties hold applicants' features"
        )
    if not (run_dir / MODEL_DIR).is_dir():
        privacy = summary.get("privacy") or {}
        if privacy.get("reveal") == "none":
            raise InputError(
                f"{run_dir}: its weights stayed secret-shared (privacy.reveal = 'none'), "
                "so no party holds its part of the model; train with privacy.reveal = "
                "'own' to score applicants"
            )
        if summary.get("engine") == "deployment":
            raise InputError(
                f"{run_dir}: a Deployment Engine run, whose data parties keep their parts "
                "of the model on their own nodes; score a run made in-process or on the "
                "Simulation Engine"
            )
        raise InputError(
            f"{run_dir}: no model/ folder (a run of an older fedrisk); rerun the scenario "
            "to score applicants"
        )
    return query_model(run_dir, holder)


def _tables(s: Scenario, query: QueryModel, run_dir: Path) -> dict[str, tuple[np.ndarray, dict]]:
    """Every party's ids and raw columns (name → values), as the run's scenario loads
    them: with text and missing values for a scorecard."""
    if query.text_columns:
        chars = load_vertical_characteristics(s)
        named = zip(chars.party_names, (chars.holder, *chars.parties))
        tables = {name: (ch.ids, dict(ch.columns)) for name, ch in named}
    else:
        tables = {
            t.name: (t.ids, {c: t.X[:, j] for j, c in enumerate(t.feature_names)})
            for t in load_vertical(s).parties
        }
    for name in (query.label_holder, *query.parties):
        if name not in tables:
            raise InputError(f"{run_dir}/scenario.toml: no party {name!r}, which the model names")
    return tables


def _run_scenario(run_dir: Path, scenario: Path | None) -> Scenario:
    """The run's own scenario (its resolved ``scenario.toml``), its relative data paths
    resolved from ``scenario``'s folder when given (the file the run was made from),
    else from the run folder."""
    recorded = run_dir / "scenario.toml"
    if scenario is None:
        return load_scenario(recorded)
    input_file(scenario, "--scenario")
    try:
        raw = tomllib.loads(read_input_text(recorded, "scenario.toml"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{recorded}: not valid TOML ({exc})") from None
    return scenario_from_dict(raw, where=str(scenario))


def read_applicants(
    path: Path, id_column: str, query: QueryModel, holder_ids: np.ndarray, holder_columns: dict
) -> Applicants:
    """The applicants' ids and the bank's columns: from the file when it has them, else
    from the bank's own data (applicants it has on file)."""
    text = read_input_text(path, "--ids")
    rows = [r for r in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in r)]
    where = f"--ids {path}"
    if not rows:
        raise InputError(
            f"{where}: empty; give a header with the id column {id_column!r} and one "
            "applicant per line"
        )
    header = [h.strip() for h in rows[0]]
    columns = query.bank_columns
    allowed = f"the id column {id_column!r} and the bank's columns ({', '.join(columns)})"
    unknown = [h for h in header if h != id_column and h not in columns]
    if unknown:
        raise InputError(f"{where}: unknown column {unknown[0]!r}; allowed: {allowed}")
    if id_column not in header:
        raise InputError(f"{where}: no id column {id_column!r} (data.id); allowed: {allowed}")
    if len(set(header)) != len(header):
        raise InputError(f"{where}: a column appears twice in the header")
    body = rows[1:]
    if not body:
        raise InputError(f"{where}: no applicants, only a header; give one applicant per line")
    pos = {h: k for k, h in enumerate(header)}
    ids = []
    for line, r in enumerate(body, start=2):
        if len(r) != len(header):
            raise InputError(f"{where}: line {line} has {len(r)} cells, the header {len(header)}")
        ids.append(r[pos[id_column]].strip())
        if not ids[-1]:
            raise InputError(f"{where}: line {line}: the id is empty")
    if len(set(ids)) != len(ids):
        raise InputError(f"{where}: an applicant id appears twice")
    given = [c for c in columns if c in pos]
    if given and len(given) != len(columns):
        missing = [c for c in columns if c not in pos]
        raise InputError(
            f"{where}: column {missing[0]!r} is missing; give all the bank's columns "
            f"({', '.join(columns)}) or only the id column"
        )
    if given:
        cells = {c: [r[pos[c]].strip() for r in body] for c in columns}
        if query.text_columns:  # the scorecard reads text, numbers and missing values
            return Applicants(tuple(ids), {c: np.array(v, dtype=object) for c, v in cells.items()})
        bank = {}
        for c, values in cells.items():
            try:
                bank[c] = np.array([float(v) for v in values])
            except ValueError:
                bad = next(i for i, v in enumerate(values) if not is_number(v))
                raise InputError(
                    f"{where}: line {bad + 2}, column {c!r}: {values[bad]!r} is not a number"
                ) from None
            if not np.isfinite(bank[c]).all():
                raise InputError(f"{where}: column {c!r}: the bank's columns must be finite")
        return Applicants(tuple(ids), bank)
    on_file = {str(i): k for k, i in enumerate(holder_ids)}
    for line, i in enumerate(ids, start=2):
        if i not in on_file:
            raise InputError(
                f"{where}: line {line}: id {i!r} is not in the bank's data; for new "
                f"applicants give the bank's columns ({', '.join(columns)})"
            )
    rows_at = np.array([on_file[i] for i in ids])
    return Applicants(tuple(ids), {c: np.asarray(holder_columns[c])[rows_at] for c in columns})


def _check_out(out: Path, ids_file: Path) -> None:
    if out.suffix.lower() != ".csv":
        raise InputError(f"--out {out}: give a .csv file name")
    if not out.parent.is_dir():
        raise InputError(f"--out {out}: folder {out.parent} does not exist")
    if out.resolve() == ids_file.resolve():
        raise InputError(f"--out {out}: the same file as --ids")
    if not os.access(out.parent, os.W_OK):
        raise InputError(f"--out {out}: folder {out.parent} is not writable")


def sidecars(out: Path) -> tuple[Path, Path]:
    """``<out stem>.summary.json`` and ``<out stem>.transcript.jsonl``."""
    return out.with_name(out.stem + ".summary.json"), out.with_name(out.stem + ".transcript.jsonl")


def _summary(
    run_dir: Path,
    ids_file: Path,
    query: QueryModel,
    applicants: Applicants,
    scored: Scored,
    outcome: ScoringOutcome,
    recorder: ServerRecorder,
    wall: float,
) -> dict[str, Any]:
    n = len(applicants.ids)
    model = query
    joint = scored.model == "joint"
    transcript = recorder.transcript
    by_what: dict[str, int] = {}
    for e in transcript.entries:
        by_what[e.what] = by_what.get(e.what, 0) + e.bytes
    return {
        "run": str(run_dir),
        "ids_file": str(ids_file),
        "applicants": n,
        "found": {k: int(v.sum()) for k, v in outcome.found.items()},
        "model": query.kind,
        "scored_jointly": int(joint.sum()),
        "fallback": int(n - joint.sum()),
        "fallback_model": _FALLBACK[query.kind],
        "privacy": {
            "lookup": "OPRF (2HashDH over X25519) keys per id; cuckoo hashing, 3 public hash "
            "functions; SimplePIR (Henzinger et al., USENIX Security 2023)",
            "pir_parameters": {
                "lwe_dimension": LWE_DIMENSION,
                "modulus": "2^32",
                "error": f"rounded Gaussian, sigma {ERROR_STDDEV}",
                "plaintext_modulus": 256,
                "security": "128-bit (the paper's section 4.2, lattice estimator), at most "
                "2^13 columns",
            },
            "who_learns_what": {
                model.label_holder: "per applicant, whether each data party holds it and, "
                f"if so, {_PAYLOAD[query.kind]}; each party's customer count (its table's "
                "size, as PSI told it in training); every other record it downloads stays "
                "sealed under an OPRF value it never obtained, and the table's layout says "
                "nothing of ids it did not ask about (records are placed by their OPRF "
                "values)",
                "data parties": f"that a scoring session happened and its size ({n} "
                "applicants: the number of blinded ids and of PIR queries, three per "
                "applicant), nothing about which ids: blinded ids hide them under the "
                "Diffie-Hellman assumption, queries are LWE samples, every draw is fresh per "
                "session, answers use no secret",
            },
            "threat_model": "semi-honest parties; the bank may ask about any id it likes "
            "(each costs it one blinded id the party counts)",
        },
        "cost": {
            "bytes_sent": transcript.total_bytes,
            "bytes_by_message": by_what,
            "messages": len(transcript.entries),
            "federated_wall_s": round(wall, 3),
            "seconds": {k: round(v, 3) for k, v in outcome.seconds.items()},
            "tables": outcome.layout,
        },
    }


_FALLBACK = {
    "logistic": "bank_only: the bank's own logistic model on its own columns, trained on "
    "the run's training customers (the run's 'bank alone' baseline)",
    "secureboost": "bank_only: the bank's own boosted trees on its own columns, trained on "
    "the run's training customers (the run's 'bank alone' baseline)",
    "scorecard": "missing_bins: the scorecard with that party's characteristics in their "
    "missing bins (no data for them), as for any applicant with missing values",
}
_PAYLOAD = {
    "logistic": "that party's partial score",
    "scorecard": "that party's partial log-odds and points",
    "secureboost": "that party's left/right decision at each of its split ids",
}


def _write(
    out: Path,
    applicants: Applicants,
    scored: Scored,
    found: dict[str, np.ndarray],
    query: QueryModel,
    summary: dict[str, Any],
    recorder: ServerRecorder,
) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    points = ["points"] if scored.points is not None else []
    w.writerow(["id", "pd", "model", *points, *(f"found_{k}" for k in query.parties)])
    for i, ident in enumerate(applicants.ids):
        w.writerow(
            [
                ident,
                repr(float(scored.pd[i])),
                scored.model[i],
                *([int(scored.points[i])] if scored.points is not None else []),
                *(int(found[k][i]) for k in query.parties),
            ]
        )
    summary_file, transcript_file = sidecars(out)
    # the scores and the summary are the bank's (who applied, who is held where): they
    # keep mkstemp's owner-only mode; the transcript (message sizes) is public like a
    # run's, so the user's umask decides
    staged = []
    try:
        for target, writer, public in (
            (out, lambda p: p.write_text(buf.getvalue(), encoding="utf-8"), False),
            (
                summary_file,
                lambda p: p.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8"),
                False,
            ),
            (transcript_file, recorder.transcript.write_jsonl, True),
        ):
            fd, tmp = tempfile.mkstemp(prefix=".fedrisk-", dir=target.parent)
            os.close(fd)
            staged.append((Path(tmp), target))
            writer(Path(tmp))
            if public:
                with_umask_permissions(Path(tmp))
        for tmp, target in staged:
            os.replace(tmp, target)
    finally:
        for tmp, _target in staged:
            tmp.unlink(missing_ok=True)
