"""fedrisk: privacy-preserving federated credit-risk modelling, simulated through Flower.

The public API: load a scenario, run it to a run folder, load the model it wrote::

    import fedrisk
    s = fedrisk.load_scenario("scenarios/quickstart.toml", ["rounds=5"])
    outcome = fedrisk.run_scenario(s, Path("runs/q"))
    model = fedrisk.load_model("runs/q")
    fedrisk.score_applicants("runs/v", "applicants.csv", "scores.csv")  # a vertical run

Names are loaded on first use, so ``import fedrisk`` stays light (the command line
starts the banks' key ceremony before Flower loads).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedrisk.version import __version__

# public name -> the module that defines it
_EXPORTS = {
    "run_scenario": "fedrisk.runs.run",
    "resume_run": "fedrisk.runs.resume",
    "score_applicants": "fedrisk.runs.score",
    "RunOutcome": "fedrisk.runs.outputs",
    "load_scenario": "fedrisk.scenario",
    "Scenario": "fedrisk.scenario",
    "DataConfig": "fedrisk.scenario",
    "FederationConfig": "fedrisk.scenario",
    "PartyConfig": "fedrisk.scenario",
    "ModelConfig": "fedrisk.scenario",
    "PrivacyConfig": "fedrisk.scenario",
    "FederatedLogisticModel": "fedrisk.model_io",
    "FederatedBoostedTrees": "fedrisk.model_io",
    "FederatedWoeScorecard": "fedrisk.model_io",
    "FederatedVerticalLogistic": "fedrisk.model_io",
    "InputError": "fedrisk.errors",
    "ProtocolError": "fedrisk.errors",
}

__all__ = ["__version__", "load_model", *_EXPORTS]

if TYPE_CHECKING:  # the same names, for type checkers and editors
    from fedrisk.errors import InputError as InputError
    from fedrisk.errors import ProtocolError as ProtocolError
    from fedrisk.model_io import FederatedBoostedTrees as FederatedBoostedTrees
    from fedrisk.model_io import FederatedLogisticModel as FederatedLogisticModel
    from fedrisk.model_io import FederatedVerticalLogistic as FederatedVerticalLogistic
    from fedrisk.model_io import FederatedWoeScorecard as FederatedWoeScorecard
    from fedrisk.runs.outputs import RunOutcome as RunOutcome
    from fedrisk.runs.resume import resume_run as resume_run
    from fedrisk.runs.run import run_scenario as run_scenario
    from fedrisk.runs.score import score_applicants as score_applicants
    from fedrisk.scenario import DataConfig as DataConfig
    from fedrisk.scenario import FederationConfig as FederationConfig
    from fedrisk.scenario import ModelConfig as ModelConfig
    from fedrisk.scenario import PartyConfig as PartyConfig
    from fedrisk.scenario import PrivacyConfig as PrivacyConfig
    from fedrisk.scenario import Scenario as Scenario
    from fedrisk.scenario import load_scenario as load_scenario


def load_model(
    run_dir: str | Path,
) -> (
    FederatedLogisticModel
    | FederatedBoostedTrees
    | FederatedWoeScorecard
    | FederatedVerticalLogistic
):
    """The final model of a run folder: a horizontal run's logistic regression, a
    SecureBoost run's trees joined with every party's part (the simulator's view), a
    scorecard run's points per bin (a vertical one joined with each party's bins), or a
    vertical logistic run's parts side by side (the simulator's view again); see
    :mod:`fedrisk.model_io`. (A function, not a lazy name: ``fedrisk.load_model`` costs
    no import until called.)"""
    from fedrisk.model_io import load_model as load

    return load(run_dir)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'fedrisk' has no attribute {name!r}")
