"""Differential privacy as run: ε from dp-accounting for the mechanism that ran, the
noise that was added, the warnings, the sweep, and bad DP input."""

import csv
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from dp_accounting import dp_event, rdp

from fedrisk.data.prepare import prepare_horizontal
from fedrisk.horizontal.client_dp import bank_noise_share
from fedrisk.horizontal.setup import bank_job
from fedrisk.horizontal.training import local_update
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.run import run_scenario
from fedrisk.scenario import CALIBRATION_ROUNDS, load_scenario
from tests.conftest import SCENARIOS, read_summary

pytestmark = pytest.mark.slow

# runs compared with each other draw their DP noise from the same parties' secrets
SECRETS = RunSecrets(bytes(range(32)))


def quick(*overrides):
    return load_scenario(SCENARIOS / "quickstart.toml", list(overrides))


def recompute_epsilon(privacy: dict) -> float:
    """ε from summary.json's own fields, with dp-accounting directly."""
    event = dp_event.GaussianDpEvent(privacy["noise_multiplier"])
    if privacy["sample_rate"] < 1:
        event = dp_event.PoissonSampledDpEvent(privacy["sample_rate"], event)
    accountant = rdp.RdpAccountant()
    accountant.compose(dp_event.SelfComposedDpEvent(event, privacy["steps"]))
    return accountant.get_epsilon(privacy["delta"])


@pytest.fixture(scope="module")
def dp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "dp3"
    run_scenario(
        quick("privacy.dp=sample", "privacy.target_epsilon=3"),
        out,
        show_progress=False,
        secrets=SECRETS,
    )
    return out


def test_record_level_epsilon_is_the_accounted_one(dp_run, quickstart_run):
    s = read_summary(dp_run)
    p = s["privacy"]
    assert 2.7 <= p["epsilon"] <= 3.0
    assert recompute_epsilon(p) == pytest.approx(p["epsilon"], rel=0.01)
    assert p["accountant"] == "rdp" and p["unit"] == "customer"
    # parallel composition: the run's ε is the largest bank's, and that bank is named
    per_party = p["per_party"]
    assert p["epsilon"] == max(b["epsilon"] for b in per_party.values())
    assert per_party[p["binding_party"]]["epsilon"] == p["epsilon"]
    assert abs(s["federated"]["auc"] - read_summary(quickstart_run)["federated"]["auc"]) <= 0.03
    assert s["attacks"]["membership_auc"] <= s["attacks"]["membership_auc_bound"]


def test_rounds_csv_tracks_epsilon(dp_run):
    rows = list(csv.DictReader(open(dp_run / "rounds.csv")))
    eps = [float(r["epsilon"]) for r in rows]
    assert len(eps) == 20 + CALIBRATION_ROUNDS and all(a <= b for a, b in zip(eps, eps[1:]))
    assert eps[-1] == pytest.approx(read_summary(dp_run)["privacy"]["epsilon"])


def test_dp_sgd_noise_matches_the_noise_multiplier():
    """Run a bank's real local update twice from the same generator state, with and
    without noise, at a tiny step: the difference is the summed noise the bank added,
    whose std must be sqrt(T)·z·C / (q·n) per coordinate."""
    lr = 1e-7
    s = quick("privacy.dp=sample", "privacy.noise_multiplier=1.3", "model.learning_rate=1e-7")
    job = bank_job(s, prepare_horizontal(s), None)
    silent = job.__class__(
        **{**job.__dict__, "dp": job.dp.__class__(**{**job.dp.__dict__, "noise_multiplier": 0.0})}
    )
    party = 1
    budget = job.dp.parties[job.banks[party].name]
    start = np.zeros(job.n_features + 1)
    diffs = np.concatenate(
        [
            (local_update(job, party, start, rnd) - local_update(silent, party, start, rnd)) / lr
            for rnd in range(1, 201)
        ]
    )
    n = len(job.banks[party].y)
    expected = math.sqrt(budget.steps_per_round) * 1.3 * job.dp.clip_norm / (budget.sample_rate * n)
    ratio = diffs.var() / expected**2
    # 4,800 draws: the variance ratio has sd ≈ 0.02; a 10 % error in std is ~10 sd away
    assert abs(ratio - 1) < 0.08, ratio


def test_client_level_noise_matches_the_noise_multiplier():
    """Drive the real apps and read back the noise the aggregator released each round."""
    from fedrisk.flower.engines import run_engine
    from fedrisk.flower.recorder import ServerRecorder
    from fedrisk.horizontal.apps import make_client_app, make_server_app

    s = quick("privacy.dp=client", "privacy.noise_multiplier=0.8", "rounds=150")
    job = bank_job(s, prepare_horizontal(s), None)
    recorder = ServerRecorder(lambda p: {})
    run_engine(
        "inprocess",
        make_server_app(job.server_side(), recorder),
        make_client_app(job),
        len(job.banks),
    )
    released = np.concatenate(list(recorder.strategy.released_noise.values()))
    assert released.size == 150 * 24
    expected = 0.8 * job.dp.clip_norm
    # 3,600 draws: variance ratio sd ≈ 0.024
    assert abs(released.var() / expected**2 - 1) < 0.1


def test_distributed_noise_shares_sum_to_the_full_noise():
    z, c, m = 1.1, 0.5, 4
    secret = [RunSecrets(bytes(32)).of(f"bank_{party}") for party in range(m)]  # each its own
    totals = np.stack(
        [
            sum(bank_noise_share(secret[party], party, rnd, (25,), z, c, m) for party in range(m))
            for rnd in range(400)
        ]
    )
    assert abs(totals.var() / (z * c) ** 2 - 1) < 0.1  # 10,000 draws
    shares = np.stack([bank_noise_share(secret[0], 0, rnd, (25,), z, c, m) for rnd in range(400)])
    assert abs(shares.var() / (z * c / 2) ** 2 - 1) < 0.1  # each bank adds 1/√m of it


def test_client_dp_warns_and_reports_the_large_epsilon(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fedrisk.cli",
            "run",
            str(SCENARIOS / "quickstart.toml"),
            "--out",
            str(tmp_path / "c"),
            "--set",
            "privacy.dp=client",
            "--set",
            "privacy.noise_multiplier=1.0",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "warning: client-level DP over 5 banks gives ε = 30.1" in proc.stderr
    p = read_summary(tmp_path / "c")["privacy"]
    assert p["unit"] == "bank" and p["sample_rate"] == 1.0 and p["steps"] == 20
    assert p["epsilon"] > 10
    assert recompute_epsilon(p) == pytest.approx(p["epsilon"], rel=0.01)
    assert p["warnings"]
    # the console names the accounted budget next to the results
    stdout = " ".join(proc.stdout.split())
    assert f"Differential privacy (client): ε = {p['epsilon']:.3g}, δ = 1e-05 per bank" in stdout


@pytest.mark.parametrize("aggregation", ["paillier", "secagg"])
def test_dp_sample_works_with_secure_aggregation(aggregation, dp_run, tmp_path):
    run = run_scenario(
        quick(
            "privacy.dp=sample", "privacy.target_epsilon=3", f"privacy.aggregation={aggregation}"
        ),
        tmp_path / aggregation,
        show_progress=False,
        secrets=SECRETS,  # the same noise as dp_run's
    )
    plain = read_summary(dp_run)
    assert run.summary["privacy"]["epsilon"] == plain["privacy"]["epsilon"]
    assert abs(run.summary["federated"]["auc"] - plain["federated"]["auc"]) <= 1e-3


def test_client_dp_with_paillier_runs_with_sampled_banks(tmp_path):
    run = run_scenario(
        quick(
            "privacy.dp=client",
            "privacy.noise_multiplier=1.0",
            "privacy.aggregation=paillier",
            "federation.sample_rate=0.6",
            "rounds=8",
        ),
        tmp_path / "pc",
        show_progress=False,
        secrets=SECRETS,  # a sampling known to vary
    )
    p = run.summary["privacy"]
    assert p["sample_rate"] == 0.6 and p["steps"] == 8
    assert recompute_epsilon(p) == pytest.approx(p["epsilon"], rel=0.01)
    replies = [r["n_replies"] for r in csv.DictReader(open(tmp_path / "pc" / "rounds.csv"))]
    assert len(set(replies)) > 1  # Poisson sampling: the number of banks varies


def cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "fedrisk.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    "sets, needle",
    [
        (["privacy.dp=sample", "privacy.target_epsilon=-1"], "privacy.target_epsilon: must be > 0"),
        (
            ["privacy.dp=sample", "privacy.target_epsilon=3", "privacy.delta=0.001"],
            "privacy.delta: 0.001 is not below 1/n",
        ),
        (
            ["privacy.dp=sample", "privacy.target_epsilon=3", "privacy.clip_norm=0"],
            "privacy.clip_norm: must be > 0",
        ),
        (
            ["privacy.dp=sample", "privacy.target_epsilon=3", "privacy.noise_multiplier=1"],
            "give target_epsilon or noise_multiplier, not both",
        ),
        (["privacy.dp=sample"], "needs privacy.target_epsilon or privacy.noise_multiplier"),
        (
            ["privacy.dp=sample", "privacy.noise_multiplier=0.5", "privacy.max_epsilon=1"],
            "privacy.max_epsilon: this run would spend",
        ),
    ],
)
def test_bad_dp_input_exits_2(tmp_path, sets, needle, monkeypatch, capsys):
    """Through the command line's own entry point in this process (it catches all the
    process would; a fresh interpreter per case cost seconds each)."""
    from fedrisk.cli import main

    args = ["run", str(SCENARIOS / "quickstart.toml"), "--out", "out"]
    for item in sets:
        args += ["--set", item]
    monkeypatch.chdir(tmp_path)
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_sweep_over_epsilon_on_the_quickstart(tmp_path):
    # a fixed master secret: the same parties' draws on every run of this test
    (tmp_path / "secrets.json").write_text(json.dumps({"master": "5e" * 32}))
    proc = cli(
        "sweep",
        str(SCENARIOS / "quickstart.toml"),
        "--set",
        "privacy.target_epsilon=0.5,2,8,inf",
        "--out",
        "sw",
        "--quiet",
        "--secrets",  # one noise draw, the same at every point: a curve, not a scatter
        "secrets.json",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "sw\n"  # --quiet: only the sweep folder
    out = tmp_path / "sw"
    assert (out / "sweep.png").stat().st_size > 10_000
    rows = list(csv.DictReader(open(out / "sweep.csv")))
    assert [r["privacy.target_epsilon"] for r in rows] == ["0.5", "2", "8", "inf"]
    auc = [float(r["auc"]) for r in rows]
    attack = [float(r["membership_auc"]) for r in rows]
    eps = [float(r["epsilon"]) for r in rows]
    assert all(e <= t * 1.0001 for e, t in zip(eps[:-1], [0.5, 2, 8]))
    assert math.isinf(eps[-1])
    # more privacy budget, better model (small slack for DP noise between points)
    assert all(b >= a - 0.002 for a, b in zip(auc, auc[1:])) and auc[-1] > auc[0]
    # less budget, the attack no further from chance: within the attack AUC's own sampling
    # error (about 0.004 with 6,000 held-out rows), since neither end is far from 0.5
    assert abs(attack[0] - 0.5) <= abs(attack[-1] - 0.5) + 0.008
    assert len(list((out / "points").iterdir())) == 4
    # each point's mean PD and the (DP-free, converged) reference's AUC, from its summary
    for r, point in zip(rows, sorted((out / "points").iterdir())):  # "00-…", "01-…"
        s = json.loads((point / "summary.json").read_text())
        assert float(r["mean_pd"]) == pytest.approx(s["federated"]["mean_pd"])
        assert float(r["reference_auc"]) == pytest.approx(s["reference"]["auc"])


def test_sweep_needs_a_list(tmp_path):
    proc = cli("sweep", str(SCENARIOS / "quickstart.toml"), "--set", "rounds=3", cwd=tmp_path)
    assert proc.returncode == 2 and "comma-separated list" in proc.stderr
