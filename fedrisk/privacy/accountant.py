"""Privacy accounting on dp-accounting: one small interface for the whole project.

DP-SGD inside a bank (unit = customer) and DP-FedAvg across banks (unit = bank) are
the same mechanism, a Poisson-subsampled Gaussian composed ``steps`` times, so one
event type covers both: :class:`GaussianSampledEvent`.

Two accountants are offered (``method``):

* ``"rdp"`` (default): Rényi DP (Mironov 2017; Mironov, Talwar, Zhang 2019) with
  dp-accounting's default order list. Fast, slightly loose (q=0.1, z=1, T=100,
  δ=1e-5 gives ε≈7.90).
* ``"pld"``: privacy-loss distributions (Koskela et al. 2020; Doroshenko et al. 2022),
  tighter (same event: ε≈7.05) but ~10x slower, and much slower per round (see
  :meth:`PrivacyAccountant.epsilon_after`). Two documented shortcuts keep it usable:
  at q = 1 (no sampling) T Gaussian steps are one Gaussian with std z/√T, whose exact
  ε is analytic (Balle & Wang 2018, ``dp_accounting.get_epsilon_gaussian``; PLD agrees
  to ~1e-9); and when RDP already gives ε > ``PLD_MAX_EPSILON`` (100) the RDP value is
  returned, because such an ε protects nothing and the PLD's discretised support then
  explodes (q=0.1, T=100: z=0.066 takes 39 s for one ε; a calibration probing smaller
  z was OOM-killed at 24 GB).

Both report an *upper bound* on ε for the event that actually ran: amplification by
sampling only applies if each record (or client) really was included independently
with probability q.

:func:`max_attack_auc_bound` turns (ε, δ) into the best membership-inference AUC any
attacker could reach, which is how the reports explain what an ε means.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import dp_accounting
    from dp_accounting.pld import privacy_loss_distribution as pld_lib

__all__ = [
    "GaussianSampledEvent",
    "PrivacyAccountant",
    "METHODS",
    "PLD_MAX_EPSILON",
    "max_attack_auc_bound",
]


@functools.cache
def _libraries():
    """dp-accounting's modules, imported on first use: they pull in scipy.signal and
    scipy.stats (about 1 s), which a Deployment Engine ClientApp process, started for
    every message, should not pay unless it accounts for ε."""
    import dp_accounting  # why: start-up time, see above
    from dp_accounting.pld import privacy_loss_distribution  # why: start-up time, see above
    from dp_accounting.rdp import rdp_privacy_accountant  # why: start-up time, see above

    return dp_accounting, privacy_loss_distribution, rdp_privacy_accountant


METHODS = ("rdp", "pld")

# dp-accounting's PLDAccountant default; kept explicit so epsilon() (which uses the
# library accountant) and epsilon_after() (which composes PLDs by hand) agree.
_PLD_DISCRETIZATION = 1e-4
# Above this (RDP) ε, "pld" reports the RDP bound instead: see the module docstring.
PLD_MAX_EPSILON = 100.0


class _DropFractionalOrderWarnings(logging.Filter):
    """Drops dp-accounting's "_compute_log_a_frac failed to converge" warnings.

    They fire for every small fractional RDP order that cannot be evaluated (tens per
    call); the order is then simply excluded from the minimum, which is harmless. Other
    absl warnings (e.g. negative Rényi divergence) still get through.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "_compute_log_a_frac failed to converge" not in str(record.msg)


def _install_log_filter() -> None:
    absl_logger = logging.getLogger("absl")
    if not any(isinstance(f, _DropFractionalOrderWarnings) for f in absl_logger.filters):
        absl_logger.addFilter(_DropFractionalOrderWarnings())


_install_log_filter()


@dataclass(frozen=True)
class GaussianSampledEvent:
    """Immutable description of the Gaussian mechanism that actually ran.

    ``noise_multiplier`` z is the noise std divided by the clip norm (sensitivity);
    ``sample_rate`` q is the Poisson inclusion probability (1.0 = everyone every step,
    no amplification); ``steps`` is the number of compositions.
    """

    noise_multiplier: float
    sample_rate: float
    steps: int

    def __post_init__(self) -> None:
        z, q, t = self.noise_multiplier, self.sample_rate, self.steps
        if not (isinstance(z, (int, float)) and z >= 0 and math.isfinite(z)):
            raise ValueError(f"noise_multiplier must be a finite number >= 0, got {z!r}")
        if not (isinstance(q, (int, float)) and 0 < q <= 1):
            raise ValueError(f"sample_rate must be in (0, 1], got {q!r}")
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0:
            raise ValueError(f"steps must be an integer >= 0, got {t!r}")
        # Normalise types so equal events compare and hash equal.
        object.__setattr__(self, "noise_multiplier", float(z))
        object.__setattr__(self, "sample_rate", float(q))
        object.__setattr__(self, "steps", int(t))

    def to_dp_event(self) -> dp_accounting.DpEvent:
        """``SelfComposed(PoissonSampled(q, Gaussian(z)), steps)``; no sampling wrapper at q=1."""
        dp_accounting, pld_lib, rdp_lib = _libraries()
        step: dp_accounting.DpEvent = dp_accounting.GaussianDpEvent(self.noise_multiplier)
        if self.sample_rate < 1.0:
            step = dp_accounting.PoissonSampledDpEvent(self.sample_rate, step)
        return dp_accounting.SelfComposedDpEvent(step, self.steps)


@functools.lru_cache(maxsize=256)
def _rdp_one_step(q: float, z: float, orders: tuple[float, ...]) -> np.ndarray:
    """RDP curve of ONE subsampled-Gaussian step at each order (the slow part, ~80 ms).

    RDP composes additively, so T steps cost one multiplication; caching lets
    epsilon_after, calibration and repeated reports reuse the curve.
    """
    dp_accounting, pld_lib, rdp_lib = _libraries()
    # Public API only: compose a single step into a fresh RdpAccountant, read its curve.
    single = GaussianSampledEvent(z, q, 1).to_dp_event()
    acc = rdp_lib.RdpAccountant(orders)
    acc.compose(single)
    curve = np.asarray(acc.rdp, dtype=np.float64)
    curve.setflags(write=False)  # cached: callers must not mutate it
    return curve


def _pld_one_step(q: float, z: float) -> pld_lib.PrivacyLossDistribution:
    """PLD of one subsampled step, built exactly as dp-accounting's PLDAccountant does."""
    dp_accounting, pld_lib, rdp_lib = _libraries()
    return pld_lib.from_gaussian_mechanism(
        standard_deviation=z,
        value_discretization_interval=_PLD_DISCRETIZATION,
        sampling_prob=q,
    )


class PrivacyAccountant:
    """ε for Gaussian-sampled events at a fixed δ, by RDP (default) or PLD.

    ``orders`` (RDP only) overrides dp-accounting's default order list; a shorter
    list is faster and gives an ε that is still valid, only possibly a little larger.
    """

    def __init__(
        self, delta: float, method: str = "rdp", *, orders: Sequence[float] | None = None
    ) -> None:
        dp_accounting, pld_lib, rdp_lib = _libraries()
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if not (isinstance(delta, (int, float)) and 0 < delta < 1):
            raise ValueError(f"delta must be in (0, 1), got {delta!r}")
        if orders is not None and method != "rdp":
            raise ValueError("orders only apply to method='rdp'")
        self.delta = float(delta)
        self.method = method
        chosen = rdp_lib.DEFAULT_RDP_ORDERS if orders is None else orders
        self.orders: tuple[float, ...] = tuple(float(a) for a in chosen)
        if not self.orders or min(self.orders) <= 1:
            raise ValueError("RDP orders must be a non-empty list of numbers > 1")

    def __repr__(self) -> str:
        return f"PrivacyAccountant(delta={self.delta}, method={self.method!r})"

    # -- ε of one event -------------------------------------------------------
    def epsilon(self, event: GaussianSampledEvent) -> float:
        """ε(δ) of ``event``; ``inf`` when no noise is added, 0 when nothing ran.

        RDP: ~0.1 s for a new (q, z), then cached. PLD: 0.5-5 s, growing as ε grows.
        """
        dp_accounting, pld_lib, rdp_lib = _libraries()
        trivial = self._trivial(event.noise_multiplier, event.steps)
        if trivial is not None:
            return trivial
        q, z, steps = event.sample_rate, event.noise_multiplier, event.steps
        if self.method == "rdp":
            return self._rdp_epsilon(q, z, steps)
        if q == 1.0:
            return self._gaussian_epsilon(z, steps)
        rdp_eps = self._rdp_epsilon(q, z, steps)
        if rdp_eps > PLD_MAX_EPSILON:
            return rdp_eps
        acc = dp_accounting.pld.PLDAccountant(value_discretization_interval=_PLD_DISCRETIZATION)
        acc.compose(event.to_dp_event())
        return float(acc.get_epsilon(self.delta))

    def _gaussian_epsilon(self, z: float, steps: int) -> float:
        # T unsampled Gaussian steps with std z compose to one with std z/√T (exact).
        dp_accounting, pld_lib, rdp_lib = _libraries()
        return float(dp_accounting.get_epsilon_gaussian(z / math.sqrt(steps), self.delta))

    def _rdp_epsilon(self, q: float, z: float, steps: int) -> float:
        # Same arithmetic as RdpAccountant (0 + steps·curve), so results are identical.
        dp_accounting, pld_lib, rdp_lib = _libraries()
        curve = _rdp_one_step(q, z, self.orders)
        eps, _ = rdp_lib.compute_epsilon(self.orders, steps * curve, self.delta)
        return float(eps)

    @staticmethod
    def _trivial(z: float, steps: int) -> float | None:
        if steps == 0:
            return 0.0
        if z == 0:
            return math.inf
        return None

    def epsilon_of(self, events: Sequence[GaussianSampledEvent]) -> float:
        """ε(δ) of events run one after another (e.g. rounds whose noise differed).

        One event gives exactly :meth:`epsilon`. RDP adds the events' curves; PLD
        composes them in dp-accounting's PLDAccountant.
        """
        dp_accounting, pld_lib, rdp_lib = _libraries()
        events = [e for e in events if e.steps > 0]
        if not events:
            return 0.0
        if any(e.noise_multiplier == 0 for e in events):
            return math.inf
        if len(events) == 1:
            return self.epsilon(events[0])
        if self.method == "rdp":
            total = sum(
                e.steps * _rdp_one_step(e.sample_rate, e.noise_multiplier, self.orders)
                for e in events
            )
            eps, _ = rdp_lib.compute_epsilon(self.orders, total, self.delta)
            return float(eps)
        acc = dp_accounting.pld.PLDAccountant(value_discretization_interval=_PLD_DISCRETIZATION)
        acc.compose(dp_accounting.ComposedDpEvent([e.to_dp_event() for e in events]))
        return float(acc.get_epsilon(self.delta))

    def epsilon_curve(self, events: Sequence[GaussianSampledEvent]) -> list[float]:
        """ε after each prefix of ``events`` (one per round), composed incrementally:
        element i equals ``epsilon_of(events[:i + 1])``, at the cost of one pass."""
        dp_accounting, pld_lib, rdp_lib = _libraries()
        out: list[float] = []
        steps: dict[tuple[float, float], int] = {}  # (q, z) -> steps so far
        acc = (
            None
            if self.method == "rdp"
            else dp_accounting.pld.PLDAccountant(value_discretization_interval=_PLD_DISCRETIZATION)
        )
        for e in events:
            if e.steps:
                key = (e.sample_rate, e.noise_multiplier)
                steps[key] = steps.get(key, 0) + e.steps
                if acc is not None:
                    acc.compose(e.to_dp_event())
            merged = [GaussianSampledEvent(z, q, t) for (q, z), t in steps.items()]
            if len(merged) <= 1 or any(m.noise_multiplier == 0 for m in merged):
                # one kind of event: exactly what epsilon() says for their total
                out.append(
                    self.epsilon(merged[0])
                    if merged and all(m.noise_multiplier for m in merged)
                    else (math.inf if merged else 0.0)
                )
            elif acc is None:
                total = sum(
                    m.steps * _rdp_one_step(m.sample_rate, m.noise_multiplier, self.orders)
                    for m in merged
                )
                out.append(float(rdp_lib.compute_epsilon(self.orders, total, self.delta)[0]))
            else:
                out.append(float(acc.get_epsilon(self.delta)))
        return out

    # -- ε after each round ---------------------------------------------------
    def epsilon_after(
        self, noise_multiplier: float, sample_rate: float, steps_per_round: int, rounds: int
    ) -> list[float]:
        """ε after rounds 1..``rounds`` when each round runs ``steps_per_round`` steps.

        RDP: one-step curve computed once (cached), scaled by the step count, converted
        per round: ~0.1 s for 200 rounds. PLD: the one-round PLD is built once and
        convolved in round by round (one FFT convolution per round, ~0.05-0.2 s each as
        the distribution widens; 200 rounds of q=0.1, z=1 take ~30 s; q=1 is analytic
        and fast). Use RDP for per-round curves and PLD for the final figure if the
        tighter value matters. Element r equals ``epsilon`` of the first r rounds.
        """
        # Validate through the event type (same rules, same messages).
        GaussianSampledEvent(noise_multiplier, sample_rate, steps_per_round)
        if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 0:
            raise ValueError(f"rounds must be an integer >= 0, got {rounds!r}")
        z, q = float(noise_multiplier), float(sample_rate)
        spr, rounds = int(steps_per_round), int(rounds)
        trivial = self._trivial(z, spr)
        if trivial is not None:
            return [trivial] * rounds
        rdp = [self._rdp_epsilon(q, z, spr * r) for r in range(1, rounds + 1)]
        if self.method == "rdp":
            return rdp
        if q == 1.0:
            return [self._gaussian_epsilon(z, spr * r) for r in range(1, rounds + 1)]
        # ε grows with rounds, so the rounds PLD can afford are a prefix; the rest keep
        # the RDP value, exactly as epsilon() would decide for each of them.
        n_pld = sum(1 for e in rdp if e <= PLD_MAX_EPSILON)
        out: list[float] = []
        if n_pld:
            per_round = _pld_one_step(q, z).self_compose(spr)
            total = per_round
            out.append(float(total.get_epsilon_for_delta(self.delta)))
            for _ in range(n_pld - 1):
                total = total.compose(per_round)
                out.append(float(total.get_epsilon_for_delta(self.delta)))
        return out + rdp[n_pld:]

    # -- calibration ----------------------------------------------------------
    def calibrate(
        self, target_epsilon: float, sample_rate: float, steps: int, *, rtol: float = 1e-4
    ) -> float:
        """Smallest noise multiplier z (to ``rtol``) whose ε is ≤ ``target_epsilon``.

        ``inf`` target -> 0.0 (no noise needed). Brent's method on a doubling bracket;
        the returned z is always on the private side (ε(z) ≤ target is checked). RDP
        takes ~0.2-0.7 s (each new z needs a new RDP curve); PLD ~1-25 s (longer for
        larger ε), seeded with the RDP answer because each PLD evaluation is slow.
        """
        from scipy.optimize import brentq  # why: start-up time (scipy.optimize, ~0.4 s)

        if not isinstance(target_epsilon, (int, float)) or math.isnan(target_epsilon):
            raise ValueError(f"target_epsilon must be a number, got {target_epsilon!r}")
        if target_epsilon == math.inf:
            return 0.0
        if target_epsilon <= 0:
            raise ValueError(
                f"target_epsilon must be > 0 (ε=0 needs infinite noise), got {target_epsilon}"
            )
        GaussianSampledEvent(1.0, sample_rate, steps)  # validates q and steps
        if steps == 0:
            return 0.0

        def eps(z: float) -> float:
            return self.epsilon(GaussianSampledEvent(z, sample_rate, steps))

        # Bracket [lo, hi] with ε(lo) > target >= ε(hi); ε decreases in z. PLD is tighter
        # than RDP, so RDP's (cheap) answer is a good upper end for the slow PLD search.
        hi = 1.0
        if self.method == "pld":
            hi = PrivacyAccountant(self.delta, "rdp").calibrate(
                target_epsilon, sample_rate, steps, rtol=rtol
            )
            hi = max(hi, 1e-6)
        while eps(hi) > target_epsilon:
            hi *= 2.0
            if hi > 1e6:
                raise ValueError(f"no noise multiplier up to 1e6 reaches ε={target_epsilon}")
        shrink = 0.8 if self.method == "pld" else 0.5
        lo = hi * shrink
        while eps(lo) <= target_epsilon:
            hi, lo = lo, lo * shrink
            if lo < 1e-6:  # a vanishing amount of noise already meets the target
                return hi
        # ε can be inf for tiny z; Brent needs finite values (this just forces bisection).
        z = brentq(lambda x: min(eps(x), 1e300) - target_epsilon, lo, hi, xtol=1e-12, rtol=rtol)
        # Brent may land a hair on the wrong side; step towards hi until private.
        step = max(rtol * z, 1e-12)
        while z < hi and eps(z) > target_epsilon:
            z = min(z + step, hi)
            step *= 2.0
        return float(z)


def max_attack_auc_bound(epsilon: float, delta: float = 0.0) -> float:
    """Upper bound on the ROC AUC of ANY membership-inference attack under (ε, δ)-DP.

    Hypothesis-testing view of DP (Wasserman & Zhou 2010; Kairouz, Oh & Viswanath 2015,
    "The composition theorem for differential privacy", Thm 2.1; Dong, Roth & Su 2022,
    "Gaussian differential privacy", f_{ε,δ}): deciding "member or not" from the output
    of an (ε, δ)-DP mechanism, every test's false-positive rate α and true-positive rate
    satisfy

        TPR ≤ min(1, e^ε·α + δ, 1 − e^{−ε}·(1 − δ − α)).

    The AUC is ∫₀¹ TPR(α) dα, so integrating this envelope bounds every attack's AUC.
    The envelope is piecewise linear, so the trapezoid rule on a grid that contains its
    kinks is exact; we integrate numerically (vectorised) rather than in closed form so
    the code reads as the formula. For δ = 0 the integral is sigmoid(ε) = e^ε/(1+e^ε)
    (the two lines cross at α* = 1/(1+e^ε)), which the tests check.

    The bound is loose for Gaussian mechanisms, whose full trade-off curve (f-DP) lies
    well inside the (ε, δ) envelope at any single δ; it is a worst case, not an estimate.
    """
    if not (isinstance(epsilon, (int, float)) and epsilon >= 0):
        raise ValueError(f"epsilon must be >= 0, got {epsilon!r}")
    if not (isinstance(delta, (int, float)) and 0 <= delta <= 1):
        raise ValueError(f"delta must be in [0, 1], got {delta!r}")
    if math.isinf(epsilon) or delta == 1:
        return 1.0
    e = math.exp(min(epsilon, 700.0))  # e^700 is finite; beyond it the bound is 1.0 anyway
    kinks = [
        (1 - delta) / (e + 1),  # the two sloped lines cross
        (1 - delta) / e,  # e^ε·α + δ reaches 1
        1 - delta,  # the second line reaches 1
    ]
    alpha = np.unique(np.clip(np.concatenate([np.linspace(0.0, 1.0, 1025), kinks]), 0.0, 1.0))
    tpr = np.minimum.reduce([np.ones_like(alpha), e * alpha + delta, 1 - (1 - delta - alpha) / e])
    auc = float(np.sum(np.diff(alpha) * (tpr[1:] + tpr[:-1]) / 2.0))
    return min(max(auc, 0.5), 1.0)
