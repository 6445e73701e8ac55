"""Whether a protective random draw of WOE binning comes from the scenario (seed) or the
parties' RunSecrets rather than each party's own fresh randomness: the same scenario run
twice with the same secrets and the same keys must still put different ciphertexts on
the wire (the bank's encrypted labels, the party's re-randomised bin sums, the banks'
encrypted count vectors), while the plaintexts under them are the same.
"""

from __future__ import annotations

import threading
import warnings

import pytest

from fedrisk.crypto.paillier import BankKeys, decrypt_many, generate_keypair
from fedrisk.data.characteristics import prepare_characteristics
from fedrisk.errors import ProtocolError
from fedrisk.flower.recording_grid import IDENTIFY
from fedrisk.horizontal.binning.protocol import CIPHERTEXTS
from fedrisk.horizontal.binning.run import BankRows, federated_binning
from fedrisk.privacy.secrets import RunSecrets
from fedrisk.runs import scorecard as scorecard_module
from fedrisk.runs.run import run_scenario
from fedrisk.runs.scorecard import binning_params
from fedrisk.scenario import load_scenario
from tests.conftest import SCENARIOS

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:1024-bit Paillier keys")]

SECRETS = bytes(range(32))


def _ints(rows) -> list[int]:
    return [int.from_bytes(r.tobytes(), "big") for r in rows]


def test_vertical_ciphertexts_differ_between_runs_with_the_same_seed_secrets_and_key(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        public_key, private_key = generate_keypair(1024)
    s = load_scenario(SCENARIOS / "vertical-scorecard-german.toml", ["rounds=1"])
    wires = []
    for k in range(2):
        seen: dict = {}

        def spy(msg, context, call_next, seen=seen):
            cfg = msg.content.config_records.get("config", {})
            reply = call_next(msg, context)
            if str(cfg.get("stage", "")) == "labels":
                seen["labels"] = _ints(msg.content["labels"]["labels"].numpy())
                seen["sums"] = _ints(reply.content["sums"]["sums"].numpy())
                raise RuntimeError("seen enough")  # the rest of the run is not needed
            return reply

        with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mp.setattr(scorecard_module, "generate_keypair", lambda bits: (public_key, private_key))
            with pytest.raises(ProtocolError, match="seen enough"):
                run_scenario(
                    s,
                    tmp_path / f"run{k}",
                    show_progress=False,
                    client_mods=[spy],
                    secrets=RunSecrets(SECRETS),
                )
        wires.append(seen)
    a, b = wires
    for what in ("labels", "sums"):
        # the same plaintexts (same seed, secrets, split, labels, bins) ...
        assert decrypt_many(private_key, a[what]) == decrypt_many(private_key, b[what])
        # ... under different randomness: none of it from the seed or the secrets
        assert not set(a[what]) & set(b[what]), what


def test_horizontal_ciphertexts_differ_between_runs_with_the_same_seed_and_keys():
    """The banks' binning (the scenario's banks and rows, from its seed) twice."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        public_key, private_key = generate_keypair(1024)
    keys = BankKeys(public_key, private_key, threading.Event())
    s = load_scenario(SCENARIOS / "scorecard-german.toml")
    data = prepare_characteristics(s)
    banks = [
        BankRows(
            name, {c: data.train.columns[c][part] for c in data.train.names}, data.train.y[part]
        )
        for name, part in zip(data.party_names, data.parts)
    ]
    wires = []
    for _ in range(2):
        sent: dict = {}

        def capture(msg, context, call_next, sent=sent):
            reply = call_next(msg, context)
            cfg = reply.content.config_records.get("config", {})
            if msg.metadata.message_type != IDENTIFY and CIPHERTEXTS in cfg:
                bank = int(context.node_config["partition-id"])
                mine = sent.setdefault(bank, [])
                mine.append([int.from_bytes(bytes(c), "big") for c in cfg[CIPHERTEXTS]])
            return reply

        federated_binning(binning_params(s), banks, "paillier", keys, client_mods=[capture])
        wires.append(sent)
    a, b = wires
    assert sorted(a) == sorted(b) == [0, 1, 2]
    for bank in a:
        assert len(a[bank]) == len(b[bank]) == 2  # its grid and its labelled counts
        for x, y in zip(a[bank], b[bank]):
            assert decrypt_many(private_key, x) == decrypt_many(private_key, y)
            assert not set(x) & set(y)
