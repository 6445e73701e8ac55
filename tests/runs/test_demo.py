"""The teaching demo runs offline, quickly, and names every party and what it sent."""

import json
import re
import subprocess
import sys
import warnings

import pytest

from fedrisk.crypto.paillier import generate_keypair
from fedrisk.runs.demo import KEY_SIZE_WARNING

SNAKE_CASE = re.compile(r"[a-z]+(_[a-z]+)*")


def test_small_keys_still_warn_outside_the_demo_and_the_demo_filter_matches():
    with pytest.warns(UserWarning, match=KEY_SIZE_WARNING):
        generate_keypair(1024)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # anything the filter misses fails the test
        warnings.filterwarnings("ignore", message=KEY_SIZE_WARNING, category=UserWarning)
        generate_keypair(1024)


@pytest.mark.slow
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
    # 1024-bit keys are the demo's choice, said in its narration: no warning about them
    assert "NIST" not in proc.stderr and "1024-bit" not in proc.stderr, proc.stderr
    said = " ".join(proc.stdout.replace("│", " ").split())
    assert "1024-bit here, for speed" in said and "silenced for this demo only" in said
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
        "psi_masked_ids",
        "psi_double_masked_ids",
    ):
        assert message in out, message
    # one naming convention for every message of every run (was psi-finish_masked_ids)
    for transcript in (tmp_path / "demo").glob("*/transcript.jsonl"):
        for line in transcript.read_text(encoding="utf-8").splitlines():
            what = json.loads(line)["what"]
            assert SNAKE_CASE.fullmatch(what), (transcript.parent.name, what)
    # the plaintext partial scores the bank can read are explained, under the table
    text = " ".join(out.replace("│", " ").split())
    assert "* partial_scores: readable by design" in text
    assert "share x·w of a customer's linear score" in text
    assert "who sent what to whom" in out and "membership-attack AUC" in out
    runs = sorted(p.name for p in (tmp_path / "demo").iterdir())
    assert runs == ["1-vertical", "1-vertical-scoring", "2-five-banks", "3-dp-eps1", "3-dp-eps8"]
    # one anonymous query: the provider's view of it is unreadable, and said so
    assert "Scoring a new applicant without telling the provider who" in text
    assert "provider: learned that one applicant was scored, not who" in text
    scoring = (tmp_path / "demo" / "1-vertical-scoring" / "scores.transcript.jsonl").read_text()
    to_provider = [json.loads(x) for x in scoring.splitlines() if '"receiver": "provider"' in x]
    unread = {r["what"] for r in to_provider if not r["readable_by_receiver"]}
    assert unread == {"oprf_blinded_ids", "pir_queries"}
    for message in ("oprf_blinded_ids", "pir_queries", "pir_answers"):
        assert message in out, message
