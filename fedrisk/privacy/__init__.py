"""Differential privacy for fedrisk: accounting, mechanisms and privacy attacks.

- :mod:`.accountant`: ε for the Gaussian mechanism that actually ran (dp-accounting,
  RDP or PLD), noise calibration, and the attack-AUC bound an (ε, δ) implies.
- :mod:`.mechanisms`: vectorised clipping, Gaussian noise, DP-SGD with Poisson sampling.
- :mod:`.attacks`: loss-threshold membership inference.
- :mod:`.secrets`: each party's own secret, from which its protective draws come.
"""

from fedrisk.privacy.accountant import (
    METHODS,
    PLD_MAX_EPSILON,
    GaussianSampledEvent,
    PrivacyAccountant,
    max_attack_auc_bound,
)
from fedrisk.privacy.attacks import membership_inference_auc, per_example_log_loss
from fedrisk.privacy.mechanisms import (
    clip_rows,
    clip_vector,
    dp_sgd_epochs,
    dp_sgd_step,
    gaussian_noise,
)
from fedrisk.privacy.secrets import PartySecret, RunSecrets, load_secrets_file

__all__ = [
    "METHODS",
    "PLD_MAX_EPSILON",
    "GaussianSampledEvent",
    "PrivacyAccountant",
    "max_attack_auc_bound",
    "membership_inference_auc",
    "per_example_log_loss",
    "clip_rows",
    "clip_vector",
    "dp_sgd_epochs",
    "dp_sgd_step",
    "gaussian_noise",
    "PartySecret",
    "RunSecrets",
    "load_secrets_file",
]
