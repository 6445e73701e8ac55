"""Evaluation of pooled credit-risk scores: metrics, tables and report plots.

Metrics take *pooled* predictions (every party's test rows together); never
average AUC or KS across parties.
"""

from fedrisk.evaluation.metrics import (
    CALIBRATION_WARN_PP,
    PSI_MONITOR,
    PSI_SHIFT,
    auc_interval,
    auc_interval_record,
    calibration_gap_pp,
    calibration_table,
    calibration_warning,
    expected_calibration_error,
    gains_table,
    population_stability_index,
    psi_band,
    score_metrics,
)

_PLOTS = ("plot_auc_per_round", "plot_calibration", "plot_gains")


def __getattr__(name: str):
    # the plots load matplotlib (~0.5 s): only when one is asked for, so the protocol's
    # processes (a Deployment Engine ClientApp, started per message) do not pay for it
    if name in _PLOTS:
        from fedrisk.evaluation import plots  # why: start-up time, see above

        return getattr(plots, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CALIBRATION_WARN_PP",
    "PSI_MONITOR",
    "PSI_SHIFT",
    "auc_interval",
    "auc_interval_record",
    "calibration_gap_pp",
    "calibration_table",
    "calibration_warning",
    "expected_calibration_error",
    "gains_table",
    "plot_auc_per_round",
    "plot_calibration",
    "plot_gains",
    "population_stability_index",
    "psi_band",
    "score_metrics",
]
