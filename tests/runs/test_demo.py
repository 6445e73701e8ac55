"""The teaching demo runs offline, quickly, and names every party and what it sent."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_demo_runs_and_narrates_who_sent_what(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fedrisk.cli",
            "demo",
            "--no-pause",
            "--out",
            str(tmp_path / "demo"),
            "--secrets",  # reproducible, and the file stays outside the demo folder
            str(tmp_path / "secrets.json"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "secrets.json").stat().st_mode & 0o777 == 0o600
    assert not list((tmp_path / "demo").rglob("secrets*"))
    out = proc.stdout
    for party in ("bank", "provider", "bank_1", "bank_5"):
        assert party in out
    for message in (
        "partial_scores",
        "encrypted_residuals",
        "masked_gradient",
        "encrypted_update",
        "encrypted_aggregate",
    ):
        assert message in out, message
    assert "who sent what to whom" in out and "membership-attack AUC" in out
    runs = sorted(p.name for p in (tmp_path / "demo").iterdir())
    assert runs == ["1-vertical", "2-five-banks", "3-dp-eps1", "3-dp-eps8"]
