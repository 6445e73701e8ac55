"""``fedrisk score``: score new applicants with a vertical run's joint model, fetching
the data parties' partial scores by anonymous query (OPRF + SimplePIR keyword lookup,
:mod:`fedrisk.vertical.query`), through Flower on the in-process engine.

Input: a vertical logistic run folder (its ``scenario.toml`` says where each party's
data is; its ``model/`` holds each party's part) and a CSV of applicants: the id column
(``data.id``) and, for applicants the bank does not have on file, the bank's model
columns. Output: one CSV row per applicant (id, P(default), which model scored it,
which parties hold it), plus ``<out stem>.summary.json`` (counts, costs, who learned
what) and ``<out stem>.transcript.jsonl`` (every message, as a run's transcript).

An applicant that some data party does not hold gets the **bank-only fallback**: the
bank's own logistic model on its own columns, trained on the same customers as the
joint model (the run's "bank alone" baseline). Nothing is written unless every file
is complete.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fedrisk.crypto.pir import ERROR_STDDEV, LWE_DIMENSION
from fedrisk.data.vertical import load_vertical
from fedrisk.errors import InputError
from fedrisk.files import read_input_text
from fedrisk.flower.engines import quiet_flower, run_engine
from fedrisk.flower.recorder import ServerRecorder
from fedrisk.model_io import FederatedVerticalLogistic, load_vertical_logistic, vertical_bank_file
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.progress import session_progress, step_recorder
from fedrisk.scenario import Scenario, load_scenario, resolved_toml
from fedrisk.vertical.query import (
    ScoringBankJob,
    ScoringOutcome,
    ScoringParty,
    ScoringPartyJob,
    make_query_bank_app,
    make_query_party_app,
)

__all__ = ["Applicants", "ScoreResult", "read_applicants", "score_applicants"]


@dataclass(frozen=True)
class Applicants:
    ids: tuple[str, ...]
    bank_X: np.ndarray  # the bank's raw columns, in the model's order


@dataclass(frozen=True)
class ScoreResult:
    out: Path
    pd: np.ndarray
    joint: np.ndarray  # True: scored by the joint model; False: bank-only fallback
    found: dict[str, np.ndarray]
    summary: dict[str, Any]


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
    model = _vertical_model(run_dir)
    s = _run_scenario(run_dir, None if scenario is None else Path(scenario))
    tables = load_vertical(s)
    if tables.holder.name != model.label_holder:
        raise InputError(f"{run_dir}/scenario.toml: the label holder is not the model's bank")
    applicants = read_applicants(ids_file, s.data.id, model, tables.holder)
    _check_out(out, ids_file)
    secrets = secrets or RunSecrets()
    parties = []
    by_name = {t.name: t for t in tables.data_parties}
    for name, part in model.parts.items():
        table = by_name.get(name)
        if table is None:
            raise InputError(f"{run_dir}/scenario.toml: no data party {name!r}")
        if tuple(table.feature_names) != part.columns:
            raise InputError(
                f"{run_dir}/scenario.toml: party {name!r}'s columns are not the ones its "
                "model part was trained on; score with the run's own data"
            )
        parties.append(ScoringParty(name, table.ids, table.X, part, secrets.of(name)))
    bank_job = ScoringBankJob(
        model.label_holder, tuple(model.parts), applicants.ids, secrets.of(model.label_holder)
    )
    outcome = ScoringOutcome()
    quiet_flower(False)
    with session_progress(
        show_progress, f"anonymous query: {len(applicants.ids):,} applicants"
    ) as (bar, task):
        recorder = step_recorder(bar, task, "session")
        recorder.server_name = model.label_holder
        wall = run_engine(
            "inprocess",
            make_query_bank_app(bank_job, recorder, outcome),
            make_query_party_app(ScoringPartyJob(tuple(parties))),
            len(parties),
        )
    if recorder.error is not None:
        raise recorder.error
    found = outcome.found
    joint = np.logical_and.reduce([found[k] for k in model.parts]) if model.parts else None
    joint = np.ones(len(applicants.ids), bool) if joint is None else joint
    pd = model.fallback_proba(applicants.bank_X)
    if joint.any():
        partial = {k: outcome.partial[k][joint] for k in model.parts}
        z = model.joint_scores(applicants.bank_X[joint], partial)
        pd[joint] = 1.0 / (1.0 + np.exp(-z))
    summary = _summary(run_dir, ids_file, model, applicants, joint, outcome, recorder, wall)
    summary["cost"]["wall_s"] = round(time.perf_counter() - started, 3)
    _write(out, applicants, pd, joint, found, model, summary, recorder)
    return ScoreResult(out, pd, joint, found, summary)


def _vertical_model(run_dir: Path) -> FederatedVerticalLogistic:
    summary_file = run_dir / "summary.json"
    if not run_dir.is_dir() or not summary_file.is_file():
        raise InputError(
            f"{run_dir}: not a run folder (no summary.json); give a vertical run's folder"
        )
    try:
        summary = json.loads(summary_file.read_text(encoding="utf-8"))
        kind = summary["kind"]
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(
            f"{summary_file}: not a fedrisk summary; give a vertical run's folder"
        ) from None
    if kind != "vertical":
        raise InputError(
            f"{run_dir}: a {kind} run; fedrisk score needs a vertical run (bank + data "
            "parties), whose data parties hold applicants' features"
        )
    bank_file = vertical_bank_file(run_dir)
    if bank_file is None:
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
            f"{run_dir}/model: no vertical logistic model to score with; fedrisk score "
            "takes a vertical logistic run (privacy.protocol 'paillier', or "
            "'secret_sharing' with reveal 'own')"
        )
    return load_vertical_logistic(bank_file)


def _run_scenario(run_dir: Path, scenario: Path | None) -> Scenario:
    """The run's scenario, with its data paths resolved (from ``scenario``'s folder
    when given; it must be the scenario the run was made from)."""
    recorded = run_dir / "scenario.toml"
    if scenario is None:
        return load_scenario(recorded)
    s = load_scenario(scenario)
    if resolved_toml(s) != read_input_text(recorded, "scenario.toml"):
        raise InputError(
            f"--scenario {scenario}: not the scenario of the run {run_dir} (its resolved "
            "keys differ from the run's scenario.toml)"
        )
    return s


def read_applicants(
    path: Path, id_column: str, model: FederatedVerticalLogistic, holder
) -> Applicants:
    """The applicants' ids and the bank's columns: from the file when it has them, else
    from the bank's own data (applicants it has on file)."""
    text = read_input_text(path, "--ids")
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    where = f"--ids {path}"
    if not rows:
        raise InputError(
            f"{where}: empty; give a header with the id column {id_column!r} and one "
            "applicant per line"
        )
    header = [h.strip() for h in rows[0]]
    columns = model.bank.columns
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
        X = np.empty((len(body), len(columns)))
        for j, c in enumerate(columns):
            for i, r in enumerate(body):
                try:
                    X[i, j] = float(r[pos[c]])
                except ValueError:
                    raise InputError(
                        f"{where}: line {i + 2}, column {c!r}: {r[pos[c]]!r} is not a number"
                    ) from None
        if not np.isfinite(X).all():
            raise InputError(f"{where}: the bank's columns must be finite numbers")
        return Applicants(tuple(ids), X)
    on_file = {str(i): k for k, i in enumerate(holder.ids)}
    for line, i in enumerate(ids, start=2):
        if i not in on_file:
            raise InputError(
                f"{where}: line {line}: id {i!r} is not in the bank's data; for new "
                f"applicants give the bank's columns ({', '.join(columns)})"
            )
    order = [list(holder.feature_names).index(c) for c in columns]
    X = holder.X[np.array([on_file[i] for i in ids])][:, order]
    return Applicants(tuple(ids), X)


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
    model: FederatedVerticalLogistic,
    applicants: Applicants,
    joint: np.ndarray,
    outcome: ScoringOutcome,
    recorder: ServerRecorder,
    wall: float,
) -> dict[str, Any]:
    n = len(applicants.ids)
    transcript = recorder.transcript
    by_what: dict[str, int] = {}
    for e in transcript.entries:
        by_what[e.what] = by_what.get(e.what, 0) + e.bytes
    return {
        "run": str(run_dir),
        "ids_file": str(ids_file),
        "applicants": n,
        "found": {k: int(v.sum()) for k, v in outcome.found.items()},
        "scored_jointly": int(joint.sum()),
        "bank_only_fallback": int(n - joint.sum()),
        "fallback_model": "the bank's own logistic model on its own columns, trained on the "
        "run's training customers (the run's 'bank alone' baseline)",
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
                "if so, that party's partial score; every other record it downloads stays "
                "sealed under an OPRF value it never obtained",
                "data parties": f"that a scoring session happened and its size ({n} "
                "applicants: the number of blinded ids and of PIR queries, three per "
                "applicant), nothing about which ids: blinded ids are uniform curve points, "
                "queries are LWE samples, answers use no secret",
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


def _write(
    out: Path,
    applicants: Applicants,
    pd: np.ndarray,
    joint: np.ndarray,
    found: dict[str, np.ndarray],
    model: FederatedVerticalLogistic,
    summary: dict[str, Any],
    recorder: ServerRecorder,
) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "pd", "model", *(f"found_{k}" for k in model.parts)])
    for i, ident in enumerate(applicants.ids):
        w.writerow(
            [
                ident,
                repr(float(pd[i])),
                "joint" if joint[i] else "bank_only",
                *(int(found[k][i]) for k in model.parts),
            ]
        )
    summary_file, transcript_file = sidecars(out)
    staged = []
    try:
        for target, writer in (
            (out, lambda p: p.write_text(buf.getvalue(), encoding="utf-8")),
            (
                summary_file,
                lambda p: p.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8"),
            ),
            (transcript_file, recorder.transcript.write_jsonl),
        ):
            fd, tmp = tempfile.mkstemp(prefix=".fedrisk-", dir=target.parent)
            os.close(fd)
            staged.append((Path(tmp), target))
            writer(Path(tmp))
        for tmp, target in staged:
            os.chmod(tmp, 0o644 & ~_umask())
            os.replace(tmp, target)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
