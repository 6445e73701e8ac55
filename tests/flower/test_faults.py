"""Dropouts, stragglers and min_parties: injected the same way on every engine,
aggregation stays correct with the banks that answered, and DP accounting charges the
rounds that really ran."""

import csv
import math

import numpy as np
import pytest
from flwr.app import Error, Message, RecordDict
from flwr.common.constant import ErrorCode

from fedrisk.errors import ProtocolError
from fedrisk.flower.faults import DROPPED, FaultPlan, QuorumError, answered
from fedrisk.privacy.accountant import GaussianSampledEvent, PrivacyAccountant
from fedrisk.privacy.secrets import AGGREGATOR, RunSecrets
from fedrisk.runs.run import run_scenario
from fedrisk.scenario import load_scenario
from tests.conftest import SCENARIOS, read_summary, without_timings


def quickstart(*overrides: str):
    return load_scenario(SCENARIOS / "quickstart.toml", list(overrides))


def dropped_rounds(s, party: int) -> list[int]:
    plan = FaultPlan.from_scenario(s)
    # calibration rounds are rounds too: faults strike there as well
    return [r for r in range(1, s.max_rounds + 1) if plan.drops(party, r)]


# --- the fault plan ---------------------------------------------------------------------


def test_fault_plan_is_deterministic_and_has_the_asked_rates():
    plan = FaultPlan(seed=7, dropout=0.3, stragglers=0.2, straggler_delay=1.5)
    draws = [(plan.drops(p, r), plan.delay(p, r)) for p in range(50) for r in range(1, 201)]
    again = FaultPlan(7, 0.3, 0.2, 1.5)
    assert draws == [
        (again.drops(p, r), again.delay(p, r)) for p in range(50) for r in range(1, 201)
    ]
    drop_rate = np.mean([d for d, _ in draws])
    slow_rate = np.mean([w > 0 for _, w in draws])
    assert abs(drop_rate - 0.3) < 0.01 and abs(slow_rate - 0.2) < 0.01
    assert {w for _, w in draws} == {0.0, 1.5}
    assert not FaultPlan(7).drops(0, 1) and FaultPlan(7).delay(0, 1) == 0.0
    # another seed, other faults
    other = FaultPlan(8, 0.3)
    assert [plan.drops(p, 1) for p in range(50)] != [other.drops(p, 1) for p in range(50)]


def _reply(error_code: int | None) -> Message:
    msg = Message(RecordDict(), dst_node_id=1001, message_type="train")
    if error_code is None:
        return Message(RecordDict(), reply_to=msg)
    return Message(Error(code=error_code, reason="why"), reply_to=msg)


@pytest.fixture
def task_identity():
    from flwr.supercore.task_identity import TaskIdentity

    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, 1


def test_answered_skips_lost_parties_and_stops_on_protocol_errors(task_identity):
    ok = [_reply(None), _reply(None)]
    lost = [
        _reply(DROPPED),
        _reply(ErrorCode.NODE_UNAVAILABLE),
        _reply(ErrorCode.MESSAGE_UNAVAILABLE),
    ]
    assert answered(3, ok + lost, min_parties=2) == ok
    with pytest.raises(
        QuorumError, match="round 3: only 2 parties answered, fewer than federation.min_parties = 3"
    ):
        answered(3, ok + lost, min_parties=3)
    # client DP asked fewer banks on purpose: the quorum is capped at those asked
    assert answered(3, ok, min_parties=5, asked=2) == ok
    with pytest.raises(ProtocolError, match="round 4: why") as info:
        answered(4, ok + [_reply(ErrorCode.CLIENT_APP_RAISED_EXCEPTION)], min_parties=1)
    assert not isinstance(info.value, QuorumError)


def test_a_dropped_bank_never_runs_its_training_code(tmp_path):
    """The fault strikes before the bank's code: it touches no data that round."""
    s = quickstart(
        "rounds=4", "federation.dropout=0.5", "model.local_epochs=1", "federation.min_parties=1"
    )
    rounds = range(1, s.max_rounds + 1)
    calls = []

    def witness(msg, context, call_next):
        from fedrisk.flower.recording_grid import message_round

        calls.append((int(context.node_config["partition-id"]), message_round(msg)))
        return call_next(msg, context)

    run_scenario(s, tmp_path / "r", show_progress=False, client_mods=[witness])
    ran = {c for c in calls if c[1] > 0}
    expected = {(p, r) for p in range(5) for r in rounds if r not in dropped_rounds(s, p)}
    assert ran == expected and len(expected) < 5 * len(rounds)


# --- aggregation with the parties that answered ----------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("aggregation", ["plain", "paillier", "secagg"])
def test_dropout_over_20_rounds_completes_close_to_the_full_run(tmp_path, aggregation):
    full = read_summary(
        run_scenario(
            quickstart("rounds=20", f"privacy.aggregation={aggregation}"),
            tmp_path / "full",
            show_progress=False,
        ).out_dir
    )
    s = quickstart("rounds=20", f"privacy.aggregation={aggregation}", "federation.dropout=0.3")
    out = run_scenario(s, tmp_path / "drop", show_progress=False).out_dir
    got = read_summary(out)
    assert abs(got["federated"]["auc"] - full["federated"]["auc"]) < 0.01
    faults = got["faults"]
    assert faults["rounds_completed"] == s.max_rounds
    # every bank's dropped rounds are exactly the injected ones, read from the transcript
    for p, name in enumerate(s.bank_names()):
        assert faults["per_party"][name]["dropped"] == len(dropped_rounds(s, p))
    expected_updates = [
        sum(r not in dropped_rounds(s, p) for p in range(5)) for r in range(1, s.max_rounds + 1)
    ]
    assert faults["updates_per_round"] == expected_updates
    assert min(expected_updates) < 5
    with open(out / "rounds.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["n_replies"]) for r in rows] == expected_updates
    if aggregation == "secagg":  # rounds SecAgg+ halted did not move the model
        halted = faults["rounds_without_update"]
        aucs = [r["auc"] for r in rows]
        assert all(aucs[r - 1] == aucs[r - 2] for r in halted if r > 1)
    else:
        assert faults["rounds_without_update"] == []


@pytest.mark.slow
def test_plain_and_paillier_aggregate_the_same_survivors_bit_for_bit(tmp_path):
    aucs = {}
    for agg in ("plain", "paillier"):
        s = quickstart(
            "rounds=8",
            f"privacy.aggregation={agg}",
            "privacy.key_bits=1024",
            "federation.dropout=0.4",
            "federation.min_parties=1",
        )
        aucs[agg] = run_scenario(s, tmp_path / agg, show_progress=False).summary["federated"]["auc"]
    assert aucs["plain"] == aucs["paillier"]


def test_too_few_parties_stops_the_run_naming_round_and_quorum(tmp_path):
    s = quickstart("rounds=20", "federation.dropout=0.6", "federation.min_parties=4")
    first_short = min(
        r for r in range(1, 21) if sum(r not in dropped_rounds(s, p) for p in range(5)) < 4
    )
    with pytest.raises(
        QuorumError,
        match=rf"round {first_short}: only \d parties answered, "
        r"fewer than federation.min_parties = 4",
    ) as info:
        run_scenario(s, tmp_path / "r", show_progress=False)
    assert info.value.resumable == (first_short > 1)
    assert not (tmp_path / "r").exists()


@pytest.mark.slow  # waits out real round timeouts (~8 s): the full suite runs it
def test_stragglers_past_the_timeout_miss_the_round(tmp_path):
    base = quickstart("rounds=4")
    slow = quickstart(
        "rounds=4",
        "federation.stragglers=0.3",
        "federation.straggler_delay=0.3",
        "federation.round_timeout=0.15",
    )
    patient = quickstart(
        "rounds=4",
        "federation.stragglers=0.3",
        "federation.straggler_delay=0.3",
        "federation.round_timeout=30",
    )
    plan = FaultPlan.from_scenario(slow)
    late = {(p, r) for p in range(5) for r in range(1, slow.max_rounds + 1) if plan.delay(p, r)}
    assert late
    got = read_summary(run_scenario(slow, tmp_path / "slow", show_progress=False).out_dir)
    per_party = got["faults"]["per_party"]
    for p, name in enumerate(slow.bank_names()):
        assert per_party[name]["lost_or_late"] == sum(1 for q, _ in late if q == p)
    assert got["faults"]["updates_per_round"] == [
        5 - sum(1 for _, r in late if r == rnd) for rnd in range(1, slow.max_rounds + 1)
    ]
    # when the aggregator waits long enough, stragglers only cost time
    waited = run_scenario(patient, tmp_path / "patient", show_progress=False).summary
    plain = run_scenario(base, tmp_path / "base", show_progress=False).summary
    assert waited["federated"] == plain["federated"]
    assert waited["cost"]["federated_wall_s"] > plain["cost"]["federated_wall_s"] + 0.25


# --- privacy accounting charges what ran -------------------------------------------------


def test_sample_dp_charges_each_bank_for_the_rounds_it_trained(tmp_path):
    s = quickstart(
        "rounds=10", "federation.dropout=0.3", "privacy.dp=sample", "privacy.noise_multiplier=1.2"
    )
    got = run_scenario(s, tmp_path / "r", show_progress=False).summary["privacy"]
    acct = PrivacyAccountant(s.privacy.delta)
    eps = {}
    for p, name in enumerate(s.bank_names()):
        party = got["per_party"][name]
        trained = s.max_rounds - len(dropped_rounds(s, p))  # calibration rounds count
        assert party["steps"] == party["steps_per_round"] * trained
        eps[name] = acct.epsilon(GaussianSampledEvent(1.2, party["sample_rate"], party["steps"]))
        assert party["epsilon"] == eps[name]
    assert got["epsilon"] == max(eps.values())
    assert got["epsilon"] < got["epsilon_planned"]


@pytest.mark.slow  # seconds of runs: the full suite covers it
def test_distributed_noise_lost_with_dropouts_is_accounted(tmp_path):
    """Under Paillier each bank adds a share of the noise: shares of banks that dropped
    out are missing from the sum, so those rounds had less noise, and ε says so."""
    s = quickstart(
        "rounds=6",
        "federation.dropout=0.3",
        "privacy.dp=client",
        "privacy.noise_multiplier=2.0",
        "privacy.aggregation=paillier",
        "privacy.key_bits=1024",
        "federation.min_parties=1",
    )
    got = run_scenario(s, tmp_path / "r", show_progress=False).summary
    acct = PrivacyAccountant(s.privacy.delta)
    events = []
    for k in got["faults"]["updates_per_round"]:  # every round is charged
        events.append(GaussianSampledEvent(2.0 * (math.sqrt(k / 5) if 0 < k < 5 else 1.0), 1.0, 1))
    assert got["privacy"]["epsilon"] == pytest.approx(acct.epsilon_of(events), rel=1e-12)
    assert got["privacy"]["epsilon"] > got["privacy"]["epsilon_planned"]
    # the server adds all the noise itself in plain mode: dropouts cost nothing extra
    plain = run_scenario(
        load_scenario(
            SCENARIOS / "quickstart.toml",
            [
                "rounds=6",
                "federation.dropout=0.3",
                "privacy.dp=client",
                "privacy.noise_multiplier=2.0",
                "federation.min_parties=1",
            ],
        ),
        tmp_path / "p",
        show_progress=False,
    ).summary
    assert plain["privacy"]["epsilon"] == plain["privacy"]["epsilon_planned"]


@pytest.mark.slow
def test_faults_are_the_same_on_the_simulation_engine(tmp_path):
    pytest.importorskip("ray")
    s = quickstart("rounds=5", "federation.dropout=0.3")
    a = run_scenario(s, tmp_path / "a", show_progress=False).summary
    sim = load_scenario(
        SCENARIOS / "quickstart.toml",
        ["rounds=5", "federation.dropout=0.3", "federation.engine=simulation"],
    )
    b = run_scenario(sim, tmp_path / "b", show_progress=False).summary
    assert a["federated"] == b["federated"]
    assert without_timings(a["faults"]) == without_timings(b["faults"])


def test_paillier_client_dp_charges_rounds_nobody_was_sampled_in(tmp_path):
    """Poisson sampling leaves some rounds empty; skipping them would make ε depend on
    the sample. With no dropouts the spent ε is the planned one."""
    s = quickstart(
        "rounds=8",
        "federation.banks=6",
        "privacy.dp=client",
        "privacy.noise_multiplier=1.5",
        "federation.sample_rate=0.3",
        "privacy.aggregation=paillier",
        "privacy.key_bits=1024",
        "federation.min_parties=1",
    )
    # the aggregator samples from its own secret: take a master secret under which
    # some round samples nobody (about 2 in 3 do), found with the aggregator's own rule
    secrets = next(
        RunSecrets(bytes([m]) * 32)
        for m in range(256)
        if any(
            not (
                RunSecrets(bytes([m]) * 32)
                .of(AGGREGATOR)
                .rng("client-dp/sample-banks", r)
                .random(6)
                < 0.3
            ).any()
            for r in range(1, 9)
        )
    )
    got = run_scenario(s, tmp_path / "r", show_progress=False, secrets=secrets).summary
    assert 0 in got["faults"]["updates_per_round"]  # an empty round happened
    assert got["privacy"]["epsilon"] == got["privacy"]["epsilon_planned"]
    assert got["privacy"]["steps"] == 8


def test_participation_charges_every_round_an_update_may_exist_for():
    from fedrisk.flower.participation import Participation
    from fedrisk.flower.transcript import TranscriptEntry as E

    rows = [
        E(1, "server", "b", "global_model", 10, "plaintext", True),
        E(1, "b", "server", "dropped", 0, "plaintext", True),  # injected, before
        E(2, "server", "b", "global_model_and_key_shares", 10, "plaintext", True),
        E(2, "b", "server", "masked_update", 10, "masked", False),  # update arrived,
        E(2, "b", "server", "lost", 0, "plaintext", True),  # then lost
        E(3, "server", "b", "global_model", 10, "plaintext", True),
        E(3, "b", "server", "lost", 0, "plaintext", True),  # transport lost
        E(4, "server", "b", "global_model", 10, "plaintext", True),
    ]  # late: no reply
    part = Participation.from_transcript(rows, ["b"], 4)
    assert part.trained("b") == (2, 3, 4)
    assert part.to_summary()["b"] == {"asked": 4, "answered": 1, "dropped": 1, "lost_or_late": 2}


def test_a_bank_error_that_halts_secagg_stops_the_run(tmp_path):
    from fedrisk.horizontal.aggregation.secagg import is_training_stage

    def broken(msg, context, call_next):
        if is_training_stage(msg) and int(context.node_config["partition-id"]) < 2:
            raise RuntimeError("disk on fire")
        return call_next(msg, context)

    s = quickstart("rounds=3", "privacy.aggregation=secagg")
    with pytest.raises(
        ProtocolError, match="round 1: .*(disk on fire|answered SecAgg\\+ with an error)"
    ) as info:
        run_scenario(s, tmp_path / "r", show_progress=False, client_mods=[broken])
    assert not isinstance(info.value, QuorumError)


@pytest.mark.parametrize(
    "method",
    ["rdp", pytest.param("pld", marks=pytest.mark.slow)],  # PLD composition: ~6 s
)
def test_epsilon_curve_is_each_prefix_composed(method):
    acct = PrivacyAccountant(1e-5, method)
    events = [
        GaussianSampledEvent(2.0, 0.5, 1),
        GaussianSampledEvent(2.0, 0.5, 0),
        GaussianSampledEvent(1.5, 0.5, 1),
    ]
    curve = acct.epsilon_curve(events)
    assert curve[0] == acct.epsilon(events[0]) == curve[1]
    assert curve[2] == pytest.approx(acct.epsilon_of(events), rel=1e-9)
    assert curve[2] > curve[1]
    same = [GaussianSampledEvent(2.0, 0.5, 1)] * 3
    assert acct.epsilon_curve(same)[-1] == acct.epsilon(GaussianSampledEvent(2.0, 0.5, 3))
