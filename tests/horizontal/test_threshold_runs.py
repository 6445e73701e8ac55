"""Paillier with a threshold key, and banks that check every aggregate they are sent
against a misbehaving aggregator (tampered aggregator messages, via client mods)."""

import json
import re

import pytest
from flwr.app import Error, Message

from fedrisk.errors import ProtocolError, QuorumError
from fedrisk.flower.faults import DROPPED
from fedrisk.horizontal.aggregation.paillier import DECRYPT
from fedrisk.runs.run import run_scenario
from fedrisk.scenario import CALIBRATION_ROUNDS, load_scenario
from tests.conftest import SCENARIOS, read_summary

pytestmark = pytest.mark.slow


def quick(*overrides):
    return load_scenario(
        SCENARIOS / "quickstart.toml", ["privacy.aggregation=paillier", *overrides]
    )


def is_train(msg):
    return msg.metadata.message_type == "train"


def forward_one_banks_ciphertext(victim="bank_2", to="bank_1", claim=1, power=1, n=None):
    """A malicious aggregator: sends ``to`` the victim's round-1 ciphertext (raised to
    ``power`` mod n², which multiplies every slot) as the round-1 'aggregate' of ``claim``
    banks."""
    kept = {}

    def scaled(blobs):
        if power == 1:
            return blobs
        nsq = n * n
        return [pow(int.from_bytes(b, "big"), power, nsq).to_bytes(len(b), "big") for b in blobs]

    def mod(msg, context, call_next):
        cfg = msg.content["config"] if msg.has_content() and is_train(msg) else None
        rnd = int(cfg["server-round"]) if cfg is not None else 0
        if cfg is not None and rnd == 2 and context.node_config["partition-id"] == 0:
            cfg["aggregates"] = scaled(kept[victim])
            cfg["contributors"] = [claim]
        reply = call_next(msg, context)
        out = reply.content["config"] if reply.has_content() and cfg is not None else None
        if out is not None and rnd == 1 and str(out.get("party", "")) == victim:
            kept[victim] = list(out["ciphertexts"])
        return reply

    assert to == "bank_1"
    return mod


def inflate_participants(to):
    def mod(msg, context, call_next):
        if msg.has_content() and is_train(msg):
            msg.content["config"]["participants"] = to
        return call_next(msg, context)

    return mod


def test_a_lone_banks_ciphertext_forwarded_as_an_aggregate_stops_the_run(tmp_path):
    with pytest.raises(ProtocolError) as err:
        run_scenario(
            quick("rounds=3"),
            tmp_path / "run",
            show_progress=False,
            client_mods=[forward_one_banks_ciphertext()],
        )
    line = str(err.value)
    assert "\n" not in line
    assert line.startswith("round 2: bank_1: ProtocolError: round 1: the aggregator sent an ")
    assert "aggregate of 1 bank(s), fewer than the 2 federation.min_parties requires" in line
    assert not (tmp_path / "run").exists()


def test_a_lone_ciphertext_claimed_as_five_fails_the_count_slot(tmp_path):
    with pytest.raises(ProtocolError, match=r"round 2: bank_1: .*decodes to 1 summands, the "):
        run_scenario(
            quick("rounds=3"),
            tmp_path / "run",
            show_progress=False,
            client_mods=[forward_one_banks_ciphertext(claim=5)],
        )


def client_dp(*overrides):
    return quick(
        "privacy.dp=client",
        "privacy.noise_multiplier=1.0",
        "federation.sample_rate=0.6",
        "rounds=2",
        *overrides,
    )


def test_inflated_participants_stop_the_run_with_one_line(tmp_path, monkeypatch, capsys):
    import fedrisk.runs.run as runner
    from fedrisk.cli import main

    original = runner.run_scenario

    def with_tamper(*args, **kwargs):
        return original(*args, **kwargs, client_mods=[inflate_participants(6)])

    monkeypatch.setattr(runner, "run_scenario", with_tamper)
    argv = ["run", str(SCENARIOS / "quickstart.toml"), "--out", str(tmp_path / "o"), "--quiet"]
    for o in (
        "privacy.aggregation=paillier",
        "privacy.dp=client",
        "privacy.noise_multiplier=1.0",
        "federation.sample_rate=0.6",
        "rounds=2",
    ):
        argv += ["--set", o]
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    # the first round any bank is sampled in (the aggregator's own secret draws it)
    assert re.search(r"round \d+: bank_\d: ProtocolError", err[0]), err[0]
    assert "the aggregator claims 6 participants, outside [1, 5 banks]" in err[0]
    assert not (tmp_path / "o").exists()


def test_honest_participants_pass(tmp_path):
    run_scenario(client_dp(), tmp_path / "dp", show_progress=False)
    assert read_summary(tmp_path / "dp")["privacy"]["key"] == "shared"


# --- threshold key -----------------------------------------------------------------------


def test_threshold_key_gives_the_shared_key_model(tmp_path):
    shared, thr = tmp_path / "shared", tmp_path / "thr"
    run_scenario(quick("rounds=4"), shared, show_progress=False)
    run_scenario(quick("rounds=4", "privacy.key=threshold"), thr, show_progress=False)
    a, b = read_summary(shared), read_summary(thr)
    assert abs(a["federated"]["auc"] - b["federated"]["auc"]) <= 1e-9
    assert b["privacy"]["key"] == "threshold"
    assert b["privacy"]["paillier"]["threshold"] == 3
    assert "fewer than 3" in b["privacy"]["resists"] or "up to 2 banks" in b["privacy"]["resists"]
    assert "not the aggregator with any one bank" in a["privacy"]["resists"]
    rows = [json.loads(x) for x in (thr / "transcript.jsonl").read_text().splitlines()]
    partials = [r for r in rows if r["what"] == "partial_decryption"]
    assert partials and not any(r["readable_by_receiver"] for r in partials)


def drop_decryptions(banks):
    def mod(msg, context, call_next):
        if msg.metadata.message_type == DECRYPT and context.node_config["partition-id"] in banks:
            return Message(Error(code=DROPPED, reason="dropped"), reply_to=msg)
        return call_next(msg, context)

    return mod


def test_fewer_than_t_partial_decryptions_stop_the_run(tmp_path):
    with pytest.raises(QuorumError, match=r"round 1: only 2 banks returned a partial decryption"):
        run_scenario(
            quick("rounds=2", "privacy.key=threshold"),
            tmp_path / "run",
            show_progress=False,
            client_mods=[drop_decryptions({0, 1, 2})],
        )


@pytest.mark.parametrize("mode", ["plain", "secagg"])
def test_threshold_key_needs_paillier(mode):
    from fedrisk.errors import ScenarioError

    with pytest.raises(ScenarioError, match=r"privacy.key: 'threshold' is for horizontal runs"):
        load_scenario(
            SCENARIOS / "quickstart.toml", [f"privacy.aggregation={mode}", "privacy.key=threshold"]
        )


def test_the_aggregator_never_holds_a_key_share():
    from fedrisk.crypto.threshold import KeyShare, ShareDecryptor
    from tests.horizontal.test_secure_aggregation import drive, reachable

    job, server_app, client_app, grid, recorder = drive(
        quick("rounds=2", "privacy.key=threshold", "privacy.key_bits=1024")
    )

    def holds_share(root):
        return any(isinstance(o, (KeyShare, ShareDecryptor)) for o in reachable(root))

    assert holds_share(client_app)
    assert not holds_share(server_app) and not holds_share(recorder)
    configs = [m.content.config_records.get("config") for m in grid.received]
    partials = [c for c in configs if c is not None and "partials" in c]
    assert len(partials) == 5 * (2 + CALIBRATION_ROUNDS)  # 5 banks x rounds


def test_a_lone_ciphertext_scaled_to_pass_the_count_is_refused(tmp_path):
    """Found by review: the victim's ciphertext raised to the power k decrypts to k times
    its update in every slot, count slot k included, so it passed the count and quorum
    checks and the receiving bank's model step was exactly the victim's update. A genuine
    sum of k banks has every delta slot divisible by k with probability k^-d: refused."""
    from fedrisk.horizontal.keys import paillier_keys

    s = quick("rounds=3", "federation.min_parties=3")
    keys = paillier_keys(s)
    n = keys.public_key.n
    with pytest.raises(ProtocolError, match=r"round 2: bank_1: .*one update multiplied"):
        run_scenario(
            s,
            tmp_path / "run",
            show_progress=False,
            keys=keys,
            client_mods=[forward_one_banks_ciphertext(claim=3, power=3, n=n)],
        )
    assert not (tmp_path / "run").exists()
