"""What a scenario's differential privacy will run, and what it costs, before training.

``sample`` (record-level DP-SGD, unit = customer): bank i samples each of its n_i
customers with probability q_i = batch_size / n_i per step and takes
round(local_epochs / q_i) steps a round. Banks hold disjoint customers, so by parallel
composition the run's ε is the largest bank's ε (the *binding* bank, usually the
smallest: its q is largest). One noise multiplier z serves every bank: the largest of
the per-bank calibrations, so every bank meets the target.

``client`` (DP-FedAvg, unit = bank): each round every bank takes part with probability
q = federation.sample_rate; updates are clipped to clip_norm and the sum gets
N(0, (z·C)²) noise; one composition per round.

Either way the event is ``SelfComposed(PoissonSampled(q, Gaussian(z)), T)``, so
summary.json's noise_multiplier, sample_rate, steps and delta recompute ε exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from fedrisk.errors import InputError
from fedrisk.i18n import N_
from fedrisk.privacy.accountant import GaussianSampledEvent, PrivacyAccountant
from fedrisk.scenario import DEFAULT_CLIP_NORM, Scenario

EPSILON_WARNING = 10.0
# Defaults for privacy.clip_norm, chosen on the bundled data with the default model:
# about the 90th percentile of per-customer gradient norms on standardised features
# (clipping most gradients biases LR towards p = 0.5 and ruins calibration), and about
# the size of one bank's per-round model change.


@dataclass(frozen=True)
class PartyBudget:
    sample_rate: float
    steps_per_round: int
    steps: int
    epsilon: float


@dataclass(frozen=True)
class DPPlan:
    mode: str  # "sample" | "client"
    noise_multiplier: float
    clip_norm: float
    delta: float
    accountant: str
    sample_rate: float  # of the binding bank (sample) or of banks (client)
    steps_per_round: int
    steps: int
    epsilon: float
    epsilon_per_round: tuple[float, ...]
    binding_party: str | None
    parties: dict[str, PartyBudget] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def to_summary(self) -> dict:
        finite = math.isfinite(self.epsilon)
        return {
            # marked for the catalogs: the Chinese report shows it translated
            "mechanism": {
                "sample": N_("DP-SGD (record level, Poisson-sampled customers)"),
                "client": N_("DP-FedAvg (client level, Poisson-sampled banks)"),
                "label": N_(
                    "label DP: Gaussian noise on each data party's gradient (added by the "
                    "label holder before returning it) and on the label holder's own update"
                ),
            }[self.mode],
            "unit": {"sample": "customer", "client": "bank", "label": "label"}[self.mode],
            "epsilon": self.epsilon if finite else None,
            "epsilon_is_infinite": not finite,
            "delta": self.delta,
            "noise_multiplier": self.noise_multiplier,
            "clip_norm": self.clip_norm,
            "sample_rate": self.sample_rate,
            "steps": self.steps,
            "accountant": self.accountant,
            "binding_party": self.binding_party,
            "per_party": {
                k: {**vars(v), "epsilon": finite_or_none(v.epsilon)}
                for k, v in self.parties.items()
            },
        }

    def public(self) -> DPPlan:
        """The plan as the aggregator may hold it: mechanism, z, C, δ and accountant, no
        per-bank budget. Under ``sample`` DP a bank's q_i = batch / n_i (and so its steps
        and ε, and the binding bank's) would give its size away: those are NaN / empty
        here; each bank keeps its own budget (:meth:`for_party`)."""
        if self.mode != "sample":
            return replace(self, parties={})
        return replace(
            self,
            # z is calibrated to the binding bank: with the public target ε, δ, batch size
            # and rounds it gives that bank's size away (found by review); the aggregator
            # does not need it under record-level DP
            noise_multiplier=math.nan,
            sample_rate=math.nan,
            steps_per_round=0,
            steps=0,
            epsilon=math.nan,
            epsilon_per_round=(),
            binding_party=None,
            parties={},
        )

    def for_party(self, name: str) -> DPPlan:
        """What one bank holds: the public plan plus its own budget."""
        own = {name: self.parties[name]} if name in self.parties else {}
        # a bank needs z to add its noise (and could, as the aggregator could, work out
        # the binding bank's size from it: who_learns_what says so)
        return replace(self.public(), parties=own, noise_multiplier=self.noise_multiplier)

    def to_dict(self) -> dict:
        """Every field, for a party in another process to rebuild the plan exactly."""
        return {
            **{f: getattr(self, f) for f in self.__dataclass_fields__},
            "parties": {k: vars(v) for k, v in self.parties.items()},
            "epsilon_per_round": list(self.epsilon_per_round),
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, d: dict) -> DPPlan:
        return cls(
            **{
                **d,
                "parties": {k: PartyBudget(**v) for k, v in d["parties"].items()},
                "epsilon_per_round": tuple(d["epsilon_per_round"]),
                "warnings": tuple(d["warnings"]),
            }
        )

    def spent(
        self,
        trained: dict[str, tuple[int, ...]],
        rounds: int,
        noise_scale: dict[int, float] | None = None,
    ) -> DPPlan:
        """The plan re-accounted for what actually ran.

        ``trained``: party -> rounds it trained in (dropouts before training excluded);
        ``rounds``: rounds the run completed (fewer than planned if it stopped early);
        ``noise_scale`` (client DP): round -> share of the planned noise std that
        reached the sum (distributed noise loses the shares of banks that dropped
        out). Same mechanism, same accountant; every round run is charged.
        """
        acct = PrivacyAccountant(self.delta, self.accountant)
        z = self.noise_multiplier
        if self.mode == "sample":
            parties = {}
            for name, b in self.parties.items():
                steps = b.steps_per_round * len(trained.get(name, ()))
                parties[name] = replace(
                    b,
                    steps=steps,
                    epsilon=acct.epsilon(GaussianSampledEvent(z, b.sample_rate, steps)),
                )
            binding = max(parties, key=lambda k: parties[k].epsilon)
            b = parties[binding]
            # the per-round curve follows the binding bank, as the plan's does
            done = set(trained.get(binding, ()))
            per_round = acct.epsilon_curve(
                [
                    GaussianSampledEvent(z, b.sample_rate, b.steps_per_round if r in done else 0)
                    for r in range(1, rounds + 1)
                ]
            )
            return replace(
                self,
                steps=b.steps,
                epsilon=b.epsilon,
                sample_rate=b.sample_rate,
                steps_per_round=b.steps_per_round,
                epsilon_per_round=tuple(per_round),
                binding_party=binding,
                parties=parties,
            )
        if self.mode == "client":
            scale = noise_scale or {}
            per_round = acct.epsilon_curve(
                [
                    GaussianSampledEvent(z * scale.get(r, 1.0), self.sample_rate, 1)
                    for r in range(1, rounds + 1)
                ]
            )
            return replace(
                self,
                steps=rounds,
                epsilon=per_round[-1] if per_round else 0.0,
                epsilon_per_round=tuple(per_round),
            )
        return self


def finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None  # JSON has no infinity


def dp_steps_per_round(local_epochs: int, sample_rate: float) -> int:
    """Poisson-sampled steps a bank takes per round (as ``dp_sgd_epochs`` runs them)."""
    return max(1, round(local_epochs / sample_rate))


def plan_dp(s: Scenario, bank_rows: dict[str, int]) -> DPPlan | None:
    """The DP plan for a scenario and its banks' sizes; InputError if it cannot hold."""
    p = s.privacy
    if p.dp == "none":
        return None
    where = s.source_file
    unit_count = sum(bank_rows.values()) if p.dp in ("sample", "label") else len(bank_rows)
    unit = "customers (training rows)" if p.dp in ("sample", "label") else "banks"
    if p.delta >= 1.0 / unit_count:
        raise InputError(
            f"{where}: privacy.delta: {p.delta:g} is not below 1/n = "
            f"1/{unit_count} ({unit}); δ must be well below 1/n"
        )
    acct = PrivacyAccountant(p.delta, p.accountant)
    if p.dp == "sample":
        shapes = {name: (min(1.0, s.model.batch_size / n),) for name, n in bank_rows.items()}
        shapes = {
            name: (q, dp_steps_per_round(s.model.local_epochs, q)) for name, (q,) in shapes.items()
        }
    elif p.dp == "label":
        # every customer is in one batch per epoch and batches are disjoint; in its batch
        # a label enters one Gaussian release (sensitivity C) per data party and one for
        # the bank's own update, and the parties may pool theirs: K + 1 releases an epoch,
        # composed over epochs, no sampling amplification claimed
        data_parties = sum(not q.label for q in s.federation.parties)
        shapes = {"labels": (1.0, data_parties + 1)}
    else:
        q = s.federation.sample_rate
        shapes = {"all banks": (q, 1)}
    z = p.noise_multiplier
    if z is None:
        # one z for every bank: the largest needed by any of them (cache equal shapes)
        needed = {
            (q, spr): acct.calibrate(p.target_epsilon, q, spr * s.max_rounds)
            for q, spr in set(shapes.values())
        }
        z = max(needed.values())
    parties = {
        name: PartyBudget(
            q, spr, spr * s.max_rounds, acct.epsilon(GaussianSampledEvent(z, q, spr * s.max_rounds))
        )
        for name, (q, spr) in shapes.items()
    }
    binding = max(parties, key=lambda k: parties[k].epsilon)
    b = parties[binding]
    per_round = tuple(acct.epsilon_after(z, b.sample_rate, b.steps_per_round, s.max_rounds))
    if p.max_epsilon is not None and b.epsilon > p.max_epsilon:
        raise InputError(
            f"{where}: privacy.max_epsilon: this run would spend ε = "
            f"{b.epsilon:.3g} > budget {p.max_epsilon:g}; raise the noise, "
            "lower rounds or local epochs"
        )
    warnings = []
    if p.dp == "client" and b.epsilon > EPSILON_WARNING:
        warnings.append(
            f"client-level DP over {len(bank_rows)} banks gives ε = {b.epsilon:.3g} "
            f"(> {EPSILON_WARNING:g}): each bank is a large share of so few participants, "
            "so the noise that hides one bank barely leaves a model; such an ε promises "
            "little. Protect customers with dp = 'sample', or federate many more banks."
        )
    clip_norm = p.clip_norm if p.clip_norm is not None else DEFAULT_CLIP_NORM[p.dp]
    return DPPlan(
        p.dp,
        float(z),
        clip_norm,
        p.delta,
        p.accountant,
        b.sample_rate,
        b.steps_per_round,
        b.steps,
        b.epsilon,
        per_round,
        binding if p.dp == "sample" else None,
        parties if p.dp == "sample" else {},
        tuple(warnings),
    )
