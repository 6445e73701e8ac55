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
#: the steps of the white paper's joint-modelling story (四(三)4), in the demo's order
STORY_EN = (
    "1. The data silos",
    "2. Aligning customers without revealing the others (PSI)",
    "3. Training without exchanging raw data",
    "4. What each side learned",
    "5. What the provider's columns were worth",
    "6. Scoring a new applicant",
    "7. Five banks",
    "8. What differential privacy costs",
)
STORY_ZH = (
    "1. 数据孤岛",
    "2. 样本对齐",
    "3. 联合训练",
    "4. 各方获知了什么",
    "5. 数据提供方字段的价值",
    "6. 为新申请人评分",
    "7. 五家银行",
    "8. 差分隐私的代价",
)
CJK = re.compile(r"[\u4e00-\u9fff]")


def assert_in_order(text: str, steps: tuple[str, ...]) -> None:
    at = [text.find(step) for step in steps]
    assert -1 not in at, [s for s, i in zip(steps, at) if i == -1]
    assert at == sorted(at), at


def start_demo(folder, *extra: str) -> subprocess.Popen:
    """``fedrisk demo --no-pause`` into ``folder``/demo, its output in ``folder``."""
    folder.mkdir()
    argv = [
        sys.executable,
        "-m",
        "fedrisk.cli",
        "demo",
        "--no-pause",
        "--out",
        str(folder / "demo"),
        "--secrets",  # reproducible, and the file stays outside the demo folder
        str(folder / "secrets.json"),
        *extra,
    ]
    with open(folder / "stdout.txt", "w") as out, open(folder / "stderr.txt", "w") as err:
        return subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    """The demo in English and in Chinese, run side by side (each is mostly one thread):
    language -> (its folder, the finished process with .stdout and .stderr as text)."""
    root = tmp_path_factory.mktemp("demos")
    started = {
        lang: start_demo(root / lang, *extra)
        for lang, extra in (("en", ()), ("zh", ("--lang", "zh")))
    }
    done = {}
    for lang, proc in started.items():
        proc.wait(timeout=300)
        folder = root / lang
        done[lang] = (
            folder,
            subprocess.CompletedProcess(
                proc.args,
                proc.returncode,
                (folder / "stdout.txt").read_text(encoding="utf-8"),
                (folder / "stderr.txt").read_text(encoding="utf-8"),
            ),
        )
    return done


def test_small_keys_still_warn_outside_the_demo_and_the_demo_filter_matches():
    with pytest.warns(UserWarning, match=KEY_SIZE_WARNING):
        generate_keypair(1024)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # anything the filter misses fails the test
        warnings.filterwarnings("ignore", message=KEY_SIZE_WARNING, category=UserWarning)
        generate_keypair(1024)


@pytest.mark.slow
def test_demo_runs_and_narrates_who_sent_what(demos, tmp_path):
    folder, proc = demos["en"]
    assert proc.returncode == 0, proc.stderr
    # 1024-bit keys are the demo's choice, said in its narration: no warning about them
    assert "NIST" not in proc.stderr and "1024-bit" not in proc.stderr, proc.stderr
    said = " ".join(proc.stdout.replace("│", " ").split())
    assert "1024-bit here, for speed" in said and "silenced for this demo only" in said
    assert (folder / "secrets.json").stat().st_mode & 0o777 == 0o600
    assert not list((folder / "demo").rglob("secrets*"))
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
    for transcript in (folder / "demo").glob("*/transcript.jsonl"):
        for line in transcript.read_text(encoding="utf-8").splitlines():
            what = json.loads(line)["what"]
            assert SNAKE_CASE.fullmatch(what), (transcript.parent.name, what)
    # the plaintext partial scores the bank can read are explained, under the table
    text = " ".join(out.replace("│", " ").split())
    assert "* partial_scores: readable by design" in text
    assert "share x·w of a customer's linear score" in text
    assert "who sent what to whom" in out and "membership-attack AUC" in out
    runs = sorted(p.name for p in (folder / "demo").iterdir())
    assert runs == [
        "1-vertical",
        "1-vertical-scoring",
        "2-five-banks",
        "3-dp-eps1",
        "3-dp-eps8",
        "data",
    ]
    # the white paper's story, in its order
    assert_in_order(text, STORY_EN)
    # the silos really are apart: PSI found fewer customers than either holds
    summary = json.loads((folder / "demo" / "1-vertical" / "summary.json").read_text())
    held = summary["data"]["ids_per_party"]
    assert summary["data"]["aligned_customers"] < min(held.values())
    # the kept vertical run scores on its own after the demo moved its folder into place
    ids = tmp_path / "ids.csv"
    ids.write_text("id\n1\n", encoding="utf-8")
    from fedrisk.cli import main

    assert (
        main(
            [
                "score",
                str(folder / "demo" / "1-vertical"),
                "--ids",
                str(ids),
                "--out",
                str(tmp_path / "s.csv"),
                "--quiet",
            ]
        )
        == 0
    )
    # one anonymous query: the provider's view of it is unreadable, and said so
    assert "Scoring a new applicant without telling the provider who" in text
    assert "provider: learned that one applicant was scored, not who" in text
    scoring = (folder / "demo" / "1-vertical-scoring" / "scores.transcript.jsonl").read_text()
    to_provider = [json.loads(x) for x in scoring.splitlines() if '"receiver": "provider"' in x]
    unread = {r["what"] for r in to_provider if not r["readable_by_receiver"]}
    assert unread == {"oprf_blinded_ids", "pir_queries"}
    for message in ("oprf_blinded_ids", "pir_queries", "pir_answers"):
        assert message in out, message


@pytest.mark.slow
def test_demo_narrates_in_chinese(demos):
    """fedrisk demo --lang zh: the same story, in order, its narration and tables in
    Chinese (party names, message kinds and numbers stay as they are)."""
    _folder, proc = demos["zh"]
    assert proc.returncode == 0, proc.stderr
    assert "Glyph" not in proc.stderr, proc.stderr  # charts drawn with a CJK font, or English
    text = " ".join(proc.stdout.replace("│", " ").split())
    assert_in_order(text, STORY_ZH)
    for english in (*STORY_EN, "who sent what to whom", "press Enter", "readable by design"):
        assert english not in text, english
    for chinese in ("谁向谁发送了什么", "隐私集合求交", "同态加密", "匿名查询", "成员推断攻击 AUC"):
        assert chinese in text, chinese
    # a large share of the letters are Chinese: the rest are the tables' party names and
    # message kinds, which stay as the transcript has them (the English demo has none)
    letters = [c for c in text if c.isalpha()]
    assert sum(bool(CJK.match(c)) for c in letters) > 0.4 * len(letters)
    for message in ("partial_scores", "encrypted_residuals", "psi_masked_ids", "pir_queries"):
        assert message in text, message
