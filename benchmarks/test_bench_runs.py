"""Whole runs: what encrypted aggregation costs a user, against plaintext, same machine.

Each iteration runs the quickstart twice through the ``fedrisk`` command (plaintext, then
Paillier), alternating so both see the same load; the ratio of the fastest runs is
asserted. Process wall time is what a user waits for (start-up included); the
federation-phase ratio from ``summary.json`` is reported beside it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
REPEATS = 3
MAX_RATIO = 1.5


def _run(tmp: Path, name: str, *sets: str) -> tuple[float, dict]:
    out = tmp / name
    cmd = [
        sys.executable,
        "-m",
        "fedrisk.cli",
        "run",
        str(ROOT / "scenarios/quickstart.toml"),
        "--out",
        str(out),
        "--quiet",
        *[a for s in sets for a in ("--set", s)],
    ]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=tmp)
    wall = time.perf_counter() - started
    return wall, json.loads((out / "summary.json").read_text())


def test_paillier_run_vs_plain_run(benchmark, tmp_path):
    walls = {"plain": [], "paillier": []}
    fed = {"plain": [], "paillier": []}
    summaries = {}

    def both():
        for mode in ("plain", "paillier"):
            wall, summary = _run(
                tmp_path, f"{mode}-{len(walls[mode])}", f"privacy.aggregation={mode}"
            )
            walls[mode].append(wall)
            fed[mode].append(summary["cost"]["federated_wall_s"])
            summaries[mode] = summary

    benchmark.pedantic(both, rounds=REPEATS, iterations=1)
    ratio = min(walls["paillier"]) / min(walls["plain"])
    fed_ratio = min(fed["paillier"]) / min(fed["plain"])
    cost = summaries["paillier"]["cost"]
    table = "\n".join(
        [
            "| quickstart (5 banks, 20 rounds, 2048-bit keys) | plaintext | Paillier | ratio |",
            "|---|---:|---:|---:|",
            f"| `fedrisk run` wall time, s (best of {REPEATS}) | {min(walls['plain']):.2f} | "
            f"{min(walls['paillier']):.2f} | {ratio:.2f}x |",
            f"| federation phase, s | {min(fed['plain']):.2f} | {min(fed['paillier']):.2f} | "
            f"{fed_ratio:.2f}x |",
            f"| bytes over the wire | {summaries['plain']['cost']['bytes_sent']:,} | "
            f"{cost['bytes_sent']:,} | "
            f"{cost['bytes_sent'] / summaries['plain']['cost']['bytes_sent']:.2f}x |",
            f"| banks' encryption / precompute / decryption, s | – | "
            f"{cost['encryption_s']:.2f} / {cost['obfuscator_precompute_s']:.2f} / "
            f"{cost['decryption_s']:.2f} | |",
            f"| federated test AUC | {summaries['plain']['federated']['auc']:.6f} | "
            f"{summaries['paillier']['federated']['auc']:.6f} | |",
        ]
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "runs.md").write_text(table + "\n")
    print("\n" + table)
    assert (
        abs(summaries["paillier"]["federated"]["auc"] - summaries["plain"]["federated"]["auc"])
        <= 1e-6
    )
    assert ratio <= MAX_RATIO, f"Paillier run took {ratio:.2f}x the plaintext run"
