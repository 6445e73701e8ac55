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
from fedrisk.evaluation.plots import plot_auc_per_round, plot_calibration, plot_gains

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
