"""Client-level differential privacy (DP-FedAvg, McMahan et al., ICLR 2018).

Each round every bank takes part independently with probability q (Poisson sampling,
drawn by the aggregator from its own secret, per round), clips its model delta
to C, and the *sum* of the clipped deltas gets Gaussian noise N(0, (z·C)²); the model
moves by that noisy sum divided by the *expected* number of participants q·K (a fixed
denominator, so one bank changes the result by at most C/(qK)). Banks weigh equally:
weighting by example counts would let a large bank exceed the sensitivity.

Where the aggregator sees the sum (plain), it adds the noise; where it cannot (Paillier),
each of the m sampled banks adds N(0, (z·C)²/m), so the decrypted sum carries exactly
the full noise and no party ever sees it without it.
"""

from __future__ import annotations

import math

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid

from fedrisk.errors import ProtocolError
from fedrisk.horizontal.fedavg import BankFedAvg
from fedrisk.horizontal.job import params_record
from fedrisk.privacy.mechanisms import gaussian_noise
from fedrisk.privacy.secrets import PartySecret

NORM_SLACK = 1e-9  # float round-off allowed on a clipped norm


def sample_banks(grid: Grid, secret: PartySecret, rnd: int, rate: float) -> list[int]:
    """Node ids of the banks taking part in ``rnd``: Poisson sampling in bank order,
    from the aggregator's ``secret`` (the banks cannot predict who is sampled)."""
    parties = sorted(grid.party_of.items(), key=lambda item: item[1])
    if rate >= 1.0:
        return [node for node, _ in parties]
    draws = secret.rng("client-dp/sample-banks", rnd).random(len(parties))
    return [node for (node, _), d in zip(parties, draws) if d < rate]


def server_noise_rng(secret: PartySecret, rnd: int) -> np.random.Generator:
    """The aggregator's noise for round ``rnd``, from its own secret."""
    return secret.rng("client-dp/server-noise", rnd)


def bank_noise_share(
    secret: PartySecret,
    party: int,
    rnd: int,
    shape,
    noise_multiplier: float,
    clip_norm: float,
    participants: int,
) -> np.ndarray:
    """One bank's share of the round's noise (from the bank's own ``secret``): the m
    shares sum to N(0, (z·C)²)."""
    rng = secret.rng("client-dp/noise-share", party, rnd)
    return gaussian_noise(rng, shape, noise_multiplier * clip_norm / math.sqrt(participants))


class ClientDPFedAvg(BankFedAvg):
    """FedAvg with Poisson-sampled banks, clipped deltas and Gaussian noise on the sum."""

    def __init__(
        self, n_banks: int, plan, secret: PartySecret, min_parties: int = 1, optimizer=None
    ) -> None:
        super().__init__(n_banks, min_parties, optimizer)
        self.plan, self.secret = plan, secret  # the aggregator's own secret
        self.released_noise: dict[int, np.ndarray] = {}  # kept for the statistical tests

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ):
        self._global = arrays["params"].numpy()
        nodes = sample_banks(grid, self.secret, server_round, self.plan.sample_rate)
        self._asked = len(nodes)
        cfg = ConfigRecord({"server-round": server_round})
        record = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: cfg})
        return self._construct_messages(record, nodes, MessageType.TRAIN)

    def aggregate_train(self, server_round: int, replies):
        ok = sorted(
            self.answered(server_round, replies, asked=self._asked),
            key=lambda m: int(m.content["metrics"]["partition-id"]),
        )
        c, z = self.plan.clip_norm, self.plan.noise_multiplier
        total = np.zeros_like(self._global)
        for m in ok:
            delta = m.content["update"]["delta"].numpy()
            if np.linalg.norm(delta) > c * (1 + NORM_SLACK):
                raise ProtocolError(
                    f"round {server_round}: bank {m.content['metrics']['partition-id']} "
                    f"sent an update of norm {np.linalg.norm(delta):.4g} > "
                    f"clip norm {c:g}"
                )
            total += delta
        noise = gaussian_noise(server_noise_rng(self.secret, server_round), total.shape, z * c)
        self.released_noise[server_round] = noise
        expected = self.plan.sample_rate * self.n_banks
        new = self.step(server_round, (total + noise) / expected)
        return params_record(new), MetricRecord({"participants": len(ok)})


__all__ = ["ClientDPFedAvg", "bank_noise_share", "sample_banks", "server_noise_rng"]
