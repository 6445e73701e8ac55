"""Which model defaults serve several data shapes: the grid behind the README's table.

    python benchmarks/defaults_grid.py            # prints one JSON row per run, then a table

Each shape's scenario keeps its data and federation; its [model] settings are replaced by
every combination below (20 rounds; calibration rounds on, as by default). A row gives the
federated AUC minus the converged reference's, minus the banks' mean alone, the log-loss
ratio to the reference and the calibration gap (mean PD − observed rate, pp).
"""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
from pathlib import Path

from fedrisk import load_scenario, run_scenario

ROOT = Path(__file__).resolve().parent.parent
SHAPES = {
    "bundled, 5 banks, α=0.5": "quickstart",
    "bundled, 10 banks, α=0.1": "noniid",
    "bundled, iid": "iid",
    "heavy tails, 5 % defaults, 6 banks, α=0.3": "heavy-tails",
}
GRID = [
    {"learning_rate": lr, "local_epochs": ep, "server_optimizer": opt}
    for lr, ep, opt in itertools.product([0.05, 0.1, 0.2], [1, 3], ["fedavg", "fedadam"])
]


def run(shape: str, setting: dict) -> dict:
    sets = ["rounds=20", *(f"model.{k}={v}" for k, v in setting.items())]
    if setting["server_optimizer"] == "fedadam":
        sets.append("model.server_learning_rate=0.05")
    s = load_scenario(ROOT / "scenarios" / f"{SHAPES[shape]}.toml", sets)
    with tempfile.TemporaryDirectory() as folder:
        got = run_scenario(s, Path(folder) / "r", show_progress=False).summary
    fed, ref = got["federated"], got["reference"]
    local = [m["auc"] for m in got["local_only"].values()]
    return {
        "shape": shape,
        **setting,
        "auc_minus_reference": fed["auc"] - ref["auc"],
        "auc_minus_mean_alone": fed["auc"] - sum(local) / len(local),
        "log_loss_ratio": fed["log_loss"] / ref["log_loss"],
        "calibration_gap_pp": 100 * (fed["mean_pd"] - got["observed_default_rate"]),
    }


def main() -> int:
    rows = []
    for shape in SHAPES:
        for setting in GRID:
            rows.append(run(shape, setting))
            print(json.dumps(rows[-1]), flush=True)
    print(
        "| shape | lr | epochs | optimiser | AUC − ref | AUC − mean alone | log loss / ref | gap (pp) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['shape']} | {r['learning_rate']} | {r['local_epochs']} | "
            f"{r['server_optimizer']} | {r['auc_minus_reference']:+.4f} | "
            f"{r['auc_minus_mean_alone']:+.4f} | {r['log_loss_ratio']:.3f} | "
            f"{r['calibration_gap_pp']:+.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
