"""What resilience costs: per-round checkpoints and fault handling, against the same run
without them, measured in the same session (alternating, best of N).

- checkpoints: the in-process federation phase with a checkpoint after every round vs
  with checkpointing switched off (100 banks, 20 rounds: the transcript log grows by
  ~200 rows a round, so a checkpoint that rewrote it would show here);
- dropouts: the same run with ``federation.dropout = 0.3`` (fewer updates to aggregate,
  participation ledger and re-accounting afterwards) vs none.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import fedrisk.runs.horizontal as runner
from fedrisk.runs.run import run_scenario
from fedrisk.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
REPEATS = 3
MAX_CHECKPOINT_RATIO = 1.3
SETS = ["federation.banks=100", "rounds=20", "federation.partition=iid"]


def _federated_s(tmp: Path, name: str, *extra: str) -> float:
    s = load_scenario(ROOT / "scenarios/quickstart.toml", [*SETS, *extra])
    out = tmp / name
    shutil.rmtree(out, ignore_errors=True)
    return run_scenario(s, out, show_progress=False).summary["cost"]["federated_wall_s"]


def test_checkpoints_and_dropouts_vs_plain_runs(benchmark, tmp_path, monkeypatch):
    times = {"checkpointed": [], "no checkpoints": [], "dropout 0.3": []}
    real = runner.checkpointer

    def each():
        monkeypatch.setattr(runner, "checkpointer", real)
        times["checkpointed"].append(_federated_s(tmp_path, "ckpt"))
        times["dropout 0.3"].append(_federated_s(tmp_path, "drop", "federation.dropout=0.3"))
        monkeypatch.setattr(runner, "checkpointer", lambda *a, **k: None)
        times["no checkpoints"].append(_federated_s(tmp_path, "none"))

    benchmark.pedantic(each, rounds=REPEATS, iterations=1)
    best = {k: min(v) for k, v in times.items()}
    ratio = best["checkpointed"] / best["no checkpoints"]
    table = "\n".join(
        [
            "| 100 banks, 20 rounds, in-process | federation phase, s (best of "
            f"{REPEATS}) | vs no checkpoints |",
            "|---|---:|---:|",
            *(f"| {k} | {v:.2f} | {v / best['no checkpoints']:.2f}x |" for k, v in best.items()),
        ]
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "faults.md").write_text(table + "\n")
    print("\n" + table)
    assert ratio <= MAX_CHECKPOINT_RATIO, f"checkpoints cost {ratio:.2f}x"
