"""The files every run folder has, horizontal or vertical, and what a run returns."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fedrisk.data.prepare import PreparedData
from fedrisk.evaluation import calibration_table, gains_table
from fedrisk.evaluation.plots import draw_run_chart
from fedrisk.flower.recorder import ServerRecorder
from fedrisk.scenario import Scenario, resolved_toml

#: rounds.csv's columns; the test metrics are score_metrics' keys, "round" to "mean_pd"
ROUND_FIELDS = (
    "round",
    "task",
    "auc",
    "ks",
    "gini",
    "log_loss",
    "brier",
    "mean_pd",
    "epsilon",
    "n_replies",
    "bytes",
    "wall_s",
)


_METRICS_START = ROUND_FIELDS.index("auc")
_METRICS_END = ROUND_FIELDS.index("mean_pd") + 1


@dataclass(frozen=True)
class RunOutcome:
    out_dir: Path
    summary: dict[str, Any]


def model_record(data: PreparedData, params: np.ndarray) -> dict[str, Any]:
    """The final model as JSON: weights on scaled features plus the scaling, so
    :func:`fedrisk.load_model` can score raw feature rows."""
    return {
        "format": "fedrisk-logistic-v1",
        "feature_names": list(data.train.feature_names),
        "weights": [float(v) for v in params[:-1]],
        "intercept": float(params[-1]),
        "standardize": scaler_record(data.scaler),
    }


def scaler_record(scaler) -> dict[str, Any] | None:
    """The scaling as model.json's ``standardize``: mean and scale, plus clip bounds (null
    for a feature left unclipped) when the run scaled robustly."""
    if scaler is None:
        return None
    record: dict[str, Any] = {
        "mean": [float(v) for v in scaler.mean],
        "scale": [float(v) for v in scaler.scale],
    }
    if getattr(scaler, "clip_low", None) is not None:
        for key in ("clip_low", "clip_high"):
            record[key] = [float(v) if np.isfinite(v) else None for v in getattr(scaler, key)]
    return record


def write_outputs(
    stage: Path,
    s: Scenario,
    recorder: ServerRecorder,
    epsilon_per_round: tuple[float, ...],
    scores: np.ndarray,
    test_y: np.ndarray,
    centralised_auc: float,
    best_local: tuple[str, float],
    *,
    reference_auc: float | None = None,
) -> None:
    """The files every run folder has, horizontal or vertical (summary.json is last).
    ``reference_auc``: the converged reference's, drawn beside the centralised one."""
    (stage / "scenario.toml").write_text(resolved_toml(s), encoding="utf-8")
    recorder.transcript.write_jsonl(stage / "transcript.jsonl")
    eps = epsilon_per_round
    stop = recorder.early_stopping
    last_training = stop["training_rounds_run"] if stop else s.rounds
    if s.model.kind == "secureboost":  # every round grows a tree
        last_training = len(recorder.rounds)
    with open(stage / "rounds.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(ROUND_FIELDS)
        for r in recorder.rounds:
            w.writerow(
                [
                    r.round,
                    "train" if r.round <= last_training else "calibrate",
                    *(_num(r.test.get(k)) for k in ROUND_FIELDS[_METRICS_START:_METRICS_END]),
                    _num(eps[r.round - 1]) if eps else "",
                    r.n_replies,
                    r.bytes,
                    f"{r.wall_s:.4f}",
                ]
            )
    calib = calibration_table(test_y, scores)
    gains = gains_table(test_y, scores)
    write_json(stage / "calibration.json", {"calibration": calib, "gains": gains})
    # the same drawing the report repeats in its own language (plots.draw_run_chart)
    draw_run_chart(
        "auc_per_round.png",
        {
            "scenario": s.name,
            "step": _x_label(s),
            "rounds": [r.round for r in recorder.rounds],
            "auc": [r.test.get("auc", float("nan")) for r in recorder.rounds],
            "centralised_auc": centralised_auc,
            "reference_auc": reference_auc,
            "best_local_name": best_local[0],
            "best_local_auc": best_local[1],
        },
        stage / "auc_per_round.png",
    )
    for name, table in (("calibration.png", calib), ("gains.png", gains)):
        draw_run_chart(name, {"scenario": s.name, "table": table}, stage / name)


def _x_label(s: Scenario) -> str:
    if s.model.kind == "secureboost":
        return "tree"
    return "epoch" if s.federation.kind == "vertical" else "round"


def _num(x: float) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else repr(float(x))


def write_json(path: Path, obj: Any) -> None:
    path.write_text(
        json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n", encoding="utf-8"
    )


__all__ = ["ROUND_FIELDS", "RunOutcome", "model_record", "write_json", "write_outputs"]
