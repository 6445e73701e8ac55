"""Paillier and SecAgg+ aggregation: same model, and the aggregator provably blind."""

import dataclasses
import json
import math
import re
import types

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, Context, Message, RecordDict
from flwr.common.constant import SUPERLINK_NODE_ID
from flwr.supercore.task_identity import TaskIdentity
from phe.paillier import PaillierPrivateKey

from fedrisk.crypto.paillier import VectorDecryptor, ciphertext_bytes, generate_keypair
from fedrisk.data.prepare import prepare_horizontal
from fedrisk.deployment.apps import public_job
from fedrisk.errors import ProtocolError
from fedrisk.flower.engines import InProcessGrid
from fedrisk.flower.recorder import ServerRecorder
from fedrisk.flower.transcript import SERVER, read_jsonl
from fedrisk.horizontal.apps import make_client_app, make_server_app
from fedrisk.horizontal.keys import paillier_keys
from fedrisk.horizontal.setup import bank_job
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs.run import run_scenario
from fedrisk.scenario import CALIBRATION_ROUNDS, load_scenario
from tests.conftest import SCENARIOS, read_summary

pytestmark = pytest.mark.slow

UPDATES = {"model_update", "encrypted_update", "masked_update"}


# runs compared across engines: the same banks' secrets
SECRETS = RunSecrets(bytes(range(32)))


def quick(*overrides):
    return load_scenario(SCENARIOS / "quickstart.toml", list(overrides))


@pytest.fixture(scope="module")
def paillier_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "paillier"
    run_scenario(quick("privacy.aggregation=paillier"), out, show_progress=False)
    return out


@pytest.fixture(scope="module")
def secagg_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "secagg"
    run_scenario(quick("privacy.aggregation=secagg"), out, show_progress=False, secrets=SECRETS)
    return out


def readable_updates_at_server(run_dir):
    """Transcript rows where the aggregator could read something a bank computed from
    its data (an update); the identity handshake and SecAgg+ key material excepted."""
    return [
        e
        for e in read_jsonl(run_dir / "transcript.jsonl")
        if e.receiver == SERVER
        and e.readable_by_receiver
        and e.round > 0
        and e.what not in ("public_keys", "mask_secret_shares")
    ]


# --- same model ------------------------------------------------------------------------


def test_paillier_gives_the_plaintext_model(paillier_run, quickstart_run):
    enc, plain = read_summary(paillier_run), read_summary(quickstart_run)
    assert abs(enc["federated"]["auc"] - plain["federated"]["auc"]) <= 1e-6
    for k in ("ks", "log_loss", "brier", "mean_pd"):
        assert enc["federated"][k] == pytest.approx(plain["federated"][k], abs=1e-6)
    assert enc["privacy"]["paillier"]["key_bits"] == 2048
    assert enc["privacy"]["paillier"]["ciphertexts_per_update"] == 1


def test_paillier_cost_reports_bytes_per_round_and_crypto_seconds(paillier_run):
    cost = read_summary(paillier_run)["cost"]
    assert len(cost["bytes_per_round"]) == 20 + CALIBRATION_ROUNDS and all(
        b > 0 for b in cost["bytes_per_round"]
    )
    assert sum(cost["bytes_per_round"]) + cost["setup_bytes"] == cost["bytes_sent"]
    # 100 encryptions of one 2048-bit ciphertext: the powmods took real time somewhere
    assert cost["encryption_s"] + cost["obfuscator_precompute_s"] > 0.1
    assert cost["decryption_s"] > 0


def test_paillier_reports_the_values_its_encoder_clipped(paillier_run, tmp_path):
    p = read_summary(paillier_run)["privacy"]["paillier"]
    assert (
        p["clipped_values"] == 0 and len(p["clipped_values_per_round"]) == 20 + CALIBRATION_ROUNDS
    )
    out = tmp_path / "narrow"
    s = quick("privacy.aggregation=paillier", "privacy.update_range=0.001", "rounds=2")
    run_scenario(s, out, show_progress=False)
    p = read_summary(out)["privacy"]["paillier"]
    per_round = p["clipped_values_per_round"]
    assert set(per_round) == {str(r) for r in range(1, 3 + CALIBRATION_ROUNDS)}
    assert per_round["1"] > 0
    assert p["clipped_values"] == sum(per_round.values())


def test_secagg_gives_nearly_the_plaintext_model(secagg_run, quickstart_run):
    sec, plain = read_summary(secagg_run), read_summary(quickstart_run)
    # SecAgg+ quantises to 2^22 levels over ±8: tiny, bounded differences
    assert abs(sec["federated"]["auc"] - plain["federated"]["auc"]) <= 1e-4
    # the calibration rounds travel masked too: the same level of predicted PD
    assert abs(sec["federated"]["mean_pd"] - plain["federated"]["mean_pd"]) <= 1e-3
    assert sec["federated"]["log_loss"] == pytest.approx(plain["federated"]["log_loss"], rel=1e-3)


# --- the aggregator is blind: from the transcript ------------------------------------------


def test_transcript_check_catches_plaintext_updates(quickstart_run):
    # the check below is not vacuous: on a plain run it finds every update
    assert len(readable_updates_at_server(quickstart_run)) == 5 * (20 + CALIBRATION_ROUNDS)


def smuggle_update(msg, context, call_next):
    """A bank's mod that slips its plaintext model (floats) into the Paillier reply."""
    reply = call_next(msg, context)
    if reply.has_content() and "ciphertexts" in reply.content.config_records.get("config", {}):
        reply.content["leak"] = ArrayRecord({"delta": Array(np.linspace(-1.0, 1.0, 24))})
    return reply


def test_transcript_reads_the_payload_a_smuggled_float_update_is_readable(tmp_path):
    out = tmp_path / "smuggled"
    s = quick("privacy.aggregation=paillier", "rounds=2")
    run_scenario(s, out, show_progress=False, client_mods=[smuggle_update])
    leaked = readable_updates_at_server(out)
    # the classifier calls every bank reply an encrypted update; the payload says otherwise
    assert len(leaked) == 5 * (2 + CALIBRATION_ROUNDS)
    assert all(e.what == "encrypted_update" and e.protection == "plaintext" for e in leaked)
    # ciphertexts under the banks' key stay unreadable to the aggregator, readable to banks
    entries = read_jsonl(out / "transcript.jsonl")
    aggregates = [e for e in entries if e.what == "encrypted_aggregate"]
    assert aggregates and all(e.readable_by_receiver for e in aggregates)


def smuggle_fixed_point(msg, context, call_next):
    """A bank's mod that slips a fixed-point copy of its update and its row count (plain
    integers in a config list) into the Paillier reply (found by review: a first version
    of the payload check counted only floats)."""
    reply = call_next(msg, context)
    cfg = reply.content.config_records.get("config", {}) if reply.has_content() else {}
    if "ciphertexts" in cfg:
        cfg["note"] = [int(v) for v in np.arange(24) * 2**20] + [1234]
    return reply


def test_transcript_reads_the_payload_smuggled_integers_are_readable(tmp_path):
    out = tmp_path / "ints"
    s = quick("privacy.aggregation=paillier", "rounds=2")
    run_scenario(s, out, show_progress=False, client_mods=[smuggle_fixed_point])
    leaked = readable_updates_at_server(out)
    assert len(leaked) == 5 * (2 + CALIBRATION_ROUNDS) and all(
        e.protection == "plaintext" for e in leaked
    )


def test_paillier_server_receives_only_ciphertexts(paillier_run):
    entries = read_jsonl(paillier_run / "transcript.jsonl")
    to_server = [e for e in entries if e.receiver == SERVER and e.round > 0]
    assert len(to_server) == 5 * (20 + CALIBRATION_ROUNDS)
    assert all(
        e.what == "encrypted_update" and e.protection == "ciphertext" and not e.readable_by_receiver
        for e in to_server
    )
    assert readable_updates_at_server(paillier_run) == []
    summary = read_summary(paillier_run)["privacy"]
    assert summary["server_sees_individual_updates"] is False
    assert summary["server_sees_global_model"] is False
    # the global model never travels in the clear: banks get the encrypted aggregate
    to_banks = {e.what for e in entries if e.sender == SERVER and e.round > 1}
    assert to_banks == {"encrypted_aggregate"}


def test_secagg_server_receives_only_masked_updates(secagg_run):
    updates = [
        e
        for e in read_jsonl(secagg_run / "transcript.jsonl")
        if e.receiver == SERVER and e.what in UPDATES
    ]
    assert len(updates) == 5 * (20 + CALIBRATION_ROUNDS)
    assert all(e.protection == "masked" and not e.readable_by_receiver for e in updates)
    assert readable_updates_at_server(secagg_run) == []


# --- the aggregator is blind: from the server object and what it received ------------------


class CapturingGrid(InProcessGrid):
    """The in-process grid, keeping every reply the aggregator receives."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.received: list[Message] = []

    def pull_messages(self, message_ids):
        replies = list(super().pull_messages(message_ids))
        self.received.extend(replies)
        return replies


def drive(scenario, client_mods=None):
    keys = paillier_keys(scenario)
    job = bank_job(scenario, prepare_horizontal(scenario), keys)
    recorder = ServerRecorder(None if job.paillier else (lambda p: {}))
    server_app = make_server_app(job.server_side(), recorder)
    client_app = make_client_app(job, client_mods)
    grid = CapturingGrid(client_app, len(job.banks))
    TaskIdentity.task_id, TaskIdentity.run_id = 1, grid.run.run_id
    TaskIdentity.node_id = SUPERLINK_NODE_ID
    server_app(
        grid,
        Context(
            run_id=1, node_id=SUPERLINK_NODE_ID, node_config={}, state=RecordDict(), run_config={}
        ),
    )
    return job, server_app, client_app, grid, recorder


def reachable(root, limit=200_000):
    """Every object reachable from ``root`` through attributes, closures and containers,
    not through modules, classes or function globals (which reach everything)."""
    seen, stack, out = set(), [root], []
    while stack and len(seen) < limit:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (types.ModuleType, type)):
            continue
        seen.add(id(obj))
        out.append(obj)
        if isinstance(obj, (str, bytes, int, float, bool, type(None), np.ndarray)):
            continue
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        if isinstance(obj, types.FunctionType):
            stack.extend(c.cell_contents for c in (obj.__closure__ or ()) if _filled(c))
            stack.extend(obj.__defaults__ or ())
        elif isinstance(obj, types.MethodType):
            stack.extend([obj.__self__, obj.__func__])
        if dataclasses.is_dataclass(obj):
            stack.extend(getattr(obj, f.name) for f in dataclasses.fields(obj))
        if hasattr(obj, "__dict__") and not isinstance(obj, types.FunctionType):
            stack.extend(vars(obj).values())
    return out


def _filled(cell):
    try:
        cell.cell_contents
        return True
    except ValueError:
        return False


def holds_private_key(root) -> bool:
    return any(isinstance(o, (PaillierPrivateKey, VectorDecryptor)) for o in reachable(root))


def test_paillier_server_never_holds_a_private_key_or_a_readable_update():
    job, server_app, client_app, grid, recorder = drive(
        quick("privacy.aggregation=paillier", "rounds=3")
    )
    # the walk does find a key where there is one: the banks' app holds it
    assert holds_private_key(client_app)
    assert not holds_private_key(server_app)
    assert not holds_private_key(recorder)
    width = ciphertext_bytes(job.paillier.public_key)
    nsq = job.paillier.public_key.nsquare
    updates = [m for m in grid.received if "identity" not in m.content]
    assert len(updates) == 5 * (3 + CALIBRATION_ROUNDS)
    decryptor = VectorDecryptor(job.private_key)
    for m in updates:
        assert not m.content.array_records and not m.content.metric_records
        cfg = m.content["config"]
        assert set(cfg.keys()) == {"party", "ciphertexts"}
        cts = list(cfg["ciphertexts"])
        assert len(cts) == job.paillier.n_ciphertexts
        for blob in cts:
            assert len(blob) == width and 0 < int.from_bytes(blob, "big") < nsq
        # they really are the bank's packed update: with the key, the count slot reads
        # back the bank's example count (and without it they are noise to the server)
        values = job.paillier.packer.unpack(
            decryptor.decrypt([int.from_bytes(b, "big") for b in cts]), job.paillier.n_values
        )
        bank = next(b for b in job.banks if b.name == str(cfg["party"]))
        assert int(values[-2]) == len(bank.y) and int(values[-1]) == 1


def test_plain_server_does_receive_readable_updates():
    # the same capture on a plain run sees float arrays: the checks above can fail
    _, _, _, grid, _ = drive(quick("rounds=2"))
    updates = [m for m in grid.received if "identity" not in m.content]
    assert updates and all(m.content.array_records for m in updates)


def test_secagg_server_receives_vectors_that_look_random():
    job, server_app, client_app, grid, recorder = drive(
        quick("privacy.aggregation=secagg", "rounds=2")
    )
    from flwr.common import bytes_to_ndarray
    from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key

    masked = []
    for m in grid.received:
        cfg = m.content.config_records.get(RECORD_KEY_CONFIGS)
        if cfg is not None and Key.MASKED_PARAMETERS in cfg:
            masked.extend(bytes_to_ndarray(b).ravel() for b in cfg[Key.MASKED_PARAMETERS])
    # 5 banks × (2 rounds + calibration rounds) × (weight factor, delta vector)
    assert len(masked) == 5 * (2 + CALIBRATION_ROUNDS) * 2
    values = np.concatenate(masked).astype(np.float64)
    # Unmasked, a quantised weighted delta lies below 2^22 (quantisation levels × weight
    # ratio ≤ 1); masked, it is uniform over the 2^32 ring: 99.9 % of values above 2^22.
    assert np.mean(values >= 2**22) > 0.9
    assert abs(values.mean() / 2**32 - 0.5) < 0.15
    assert not holds_private_key(server_app)


# --- corrupt input: clear errors naming party and round, no run folder ---------------------


def tamper(party, rnd, change):
    """A Flower client mod that alters what ``party`` sends in round ``rnd``."""

    def mod(msg, context, call_next):
        reply = call_next(msg, context)
        cfg = reply.content.config_records.get("config") if reply.has_content() else None
        if (
            cfg is not None
            and str(cfg.get("party", "")) == party
            and int(msg.content["config"]["server-round"]) == rnd
        ):
            cfg["ciphertexts"] = change(list(cfg["ciphertexts"]))
        return reply

    return mod


_, OTHER_KEY = generate_keypair(2048)


def under_another_key(cts):
    other = OTHER_KEY.public_key
    nsq_width = len(cts[0])
    out = []
    for _ in cts:
        c = other.raw_encrypt(123456789) % (2 ** (8 * nsq_width - 8))  # below our n²
        out.append(c.to_bytes(nsq_width, "big"))
    return out


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda cts: [cts[0][:-1]], r"round 2: bank_3: ciphertext 0 has 511 bytes, expected 512"),
        (lambda cts: [b"\xff" * len(cts[0])], r"round 2: bank_3: ciphertext 0 is not in \(0, n²\)"),
        (lambda cts: cts + cts, r"round 2: bank_3: expected 1 ciphertexts, got 2"),
        (
            under_another_key,
            r"round 2: the aggregate of 5 banks decrypts outside the packing "
            r"range",
        ),
    ],
)
def test_corrupt_ciphertexts_stop_the_run_cleanly(tmp_path, change, message):
    out = tmp_path / "run"
    with pytest.raises(ProtocolError, match=message):
        run_scenario(
            quick("privacy.aggregation=paillier", "rounds=4"),
            out,
            show_progress=False,
            client_mods=[tamper("bank_3", 2, change)],
        )
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_protocol_error_exits_1_with_one_line(tmp_path, monkeypatch, capsys):
    import fedrisk.runs.run as runner
    from fedrisk.cli import main

    original = runner.run_scenario

    def with_tamper(*args, **kwargs):
        return original(
            *args, **kwargs, client_mods=[tamper("bank_1", 1, lambda cts: [cts[0][:10]])]
        )

    monkeypatch.setattr(runner, "run_scenario", with_tamper)
    code = main(
        [
            "run",
            str(SCENARIOS / "quickstart.toml"),
            "--out",
            str(tmp_path / "o"),
            "--quiet",
            "--set",
            "privacy.aggregation=paillier",
            "--set",
            "rounds=2",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert "round 1: bank_1: ciphertext 0 has 10 bytes" in err[0]
    assert not (tmp_path / "o").exists()


def test_secagg_needs_three_banks(tmp_path):
    from fedrisk.errors import ScenarioError

    with pytest.raises(ScenarioError, match="at least 3 banks"):
        quick("privacy.aggregation=secagg", "federation.banks=2")


@pytest.mark.parametrize("mode", ["paillier", "secagg"])
def test_simulation_engine_matches_inprocess(mode, tmp_path):
    """Four rounds (and the calibration rounds after them) on both engines: enough
    exchanges to show the same apps give the same result wherever Flower runs them."""
    pytest.importorskip("ray")
    summaries = {}
    for engine in ("inprocess", "simulation"):
        out = tmp_path / engine
        run_scenario(
            quick(f"privacy.aggregation={mode}", "rounds=4", f"federation.engine={engine}"),
            out,
            show_progress=False,
            secrets=SECRETS,  # SecAgg+'s rounding draws from the banks' secrets
        )
        summaries[engine] = read_summary(out)
    inproc, sim = summaries["inprocess"], summaries["simulation"]
    assert sim["federated"] == inproc["federated"]
    assert (
        sim["cost"]["bytes_per_round"] == inproc["cost"]["bytes_per_round"] or mode == "secagg"
    )  # SecAgg+ messages carry node ids, which differ by engine
    assert readable_updates_at_server(tmp_path / "simulation") == []


# --- nothing the aggregator need not know: no bank's size ----------------------------------

NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def numbers_in(root) -> tuple[set[int], list[float]]:
    """Every int and float reachable from ``root`` (numbers written in strings too)."""
    ints, floats = set(), []
    for obj in reachable(root):
        if isinstance(obj, bool):
            continue
        if isinstance(obj, int):
            ints.add(obj)
        elif isinstance(obj, float):
            floats.append(obj)
        elif isinstance(obj, np.ndarray) and obj.dtype.kind in "iuf" and obj.size < 100_000:
            for v in obj.ravel().tolist():
                (ints.add if isinstance(v, int) else floats.append)(v)
        elif isinstance(obj, str):
            for text in NUMBER.findall(obj):
                v = float(text)
                floats.append(v)
                if v.is_integer():
                    ints.add(int(v))
    return ints, floats


def message_numbers(messages) -> tuple[set[int], list[float]]:
    """The numbers in messages as they arrived: config and metric values, arrays."""
    ints, floats = set(), []
    for m in messages:
        if not m.has_content():
            continue
        values = [v for rec in m.content.config_records.values() for v in rec.values()]
        values += [v for rec in m.content.metric_records.values() for v in rec.values()]
        values += [a.numpy() for rec in m.content.array_records.values() for a in rec.values()]
        i, f = numbers_in(values)
        ints |= i
        floats += f
    return ints, floats


@pytest.mark.parametrize("mode", ["paillier", "secagg"])
def test_the_aggregator_cannot_compute_a_banks_size(mode, tmp_path):
    """(e) Under record-level DP a bank's q_i = batch / n_i would give n_i away. The
    aggregator holds its ServerJob (and what its app and recorder reach), the public job
    of the Deployment Engine, every message it received, and the run folder's
    scenario.toml and transcript.jsonl: no bank's row count, q_i or ε_i is among their
    numbers, nor the binding bank's noise multiplier z (from which, with the public target
    ε, its size follows); the one size-related number is the public power-of-two weight
    bound. (Under SecAgg+ the unmasked sum carries the round's total weight: with dropouts,
    differences between rounds give banks' sizes away; summary.json's who_learns_what
    says so.)
    (Plain FedAvg sends example counts by design; summary.json is the simulator's report
    to the user, who plays every party, and is never sent to the aggregator.)"""
    s = quick(
        f"privacy.aggregation={mode}",
        "privacy.key_bits=1024",
        "privacy.dp=sample",
        "privacy.target_epsilon=4",
        "rounds=2",
    )
    job, server_app, _, grid, recorder = drive(s)
    sizes = [len(b.y) for b in job.banks]
    rates = [b.sample_rate for b in job.dp.parties.values()]
    epsilons = [b.epsilon for b in job.dp.parties.values()]
    assert rates == [s.model.batch_size / n for n in sizes]  # what it must not learn
    server = job.server_side()
    assert server.dp.parties == {} and server.dp.steps_per_round == 0
    # z is calibrated to the binding bank: with the public target it would give that
    # bank's size away (found by review), so the aggregator holds none
    assert math.isnan(server.dp.noise_multiplier)
    bound = server.max_weight
    assert bound & (bound - 1) == 0 and bound // 2 < max(sizes) <= bound

    out = tmp_path / "run"
    run_scenario(s, out, show_progress=False)
    files = [(out / name).read_text() for name in ("scenario.toml", "transcript.jsonl")]
    held = [
        numbers_in([server_app, recorder, server]),
        numbers_in(json.loads(json.dumps(public_job(job)))),
        message_numbers(grid.received),
        numbers_in(files),
    ]
    for ints, floats in held:
        assert not set(sizes) & ints
        for secret in rates + epsilons + [job.dp.noise_multiplier]:
            assert not any(math.isclose(secret, v, rel_tol=1e-9) for v in floats)
    # the checks are not vacuous: the harness's own report names every size
    report = numbers_in((out / "summary.json").read_text())
    assert set(sizes) <= report[0]


def test_secagg_leaves_numpy_global_generator_alone(tmp_path):
    """Flower's SecAgg+ rounds stochastically; the draws come from each bank's own
    secret-derived generator, never from numpy's global one (nobody seeds it, and a run
    does not move it)."""
    np.random.seed(1234)
    before = np.random.get_state()[1].copy()
    run_scenario(
        quick("privacy.aggregation=secagg", "rounds=2"), tmp_path / "r", show_progress=False
    )
    assert np.array_equal(np.random.get_state()[1], before)


def test_summary_states_the_threat_model_and_who_learns_what(
    quickstart_run, paillier_run, secagg_run
):
    for run, sees_updates in ((quickstart_run, True), (paillier_run, False), (secagg_run, False)):
        privacy = read_summary(run)["privacy"]
        assert privacy["threat_model"].startswith("semi-honest parties")
        said = privacy["who_learns_what"]["aggregator"]
        assert ("in the clear" in said and "ciphertexts only" not in said) == sees_updates
