"""Per-patient slope analysis of a longitudinal endpoint: OLS slope per patient, then a Welch t-test.

Method: for every patient, the ordinary least-squares slope of value on visit time over that patient's
non-missing visits, ``b_i = sum (t - tbar)(y - ybar) / sum (t - tbar)^2`` (patients with fewer than two
non-missing visits are excluded); then the Welch two-sample t-test of the slopes, treated minus control
(unequal variances, Welch-Satterthwaite df, two-sided p from Student t(df), CI with the t quantile at that df).
The slope is per unit of visit time (per month for a :class:`~trials.batch.TrialBatch`). Missing visits (NaN,
from dropout or missed appointments) are simply left out of the patient's fit. Checked against statsmodels
OLS per patient plus ``ttest_ind(usevar="unequal")`` / ``CompareMeans.tconfint_diff(usevar="unequal")``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._common import as_replicates, long_to_grid, to_test_result, welch_batched
from .result import BatchResult, TestResult

__all__ = ["patient_slopes", "slope_batched", "slope_test"]

METHOD = "per-patient OLS slope, Welch t-test"


def patient_slopes(y: np.ndarray, visit_times: np.ndarray) -> np.ndarray:
    """OLS slope of ``y`` ``(..., V)`` on ``visit_times`` (``(V,)`` or broadcastable to ``y``) per patient.

    NaN where fewer than two visits are observed (or all observed visits share one time).
    """
    y = np.asarray(y, dtype=float)
    t = np.broadcast_to(np.asarray(visit_times, dtype=float), y.shape)
    w = ~np.isnan(y) & np.isfinite(t)
    k = w.sum(axis=-1)
    with np.errstate(all="ignore"):
        tbar = np.where(w, t, 0.0).sum(axis=-1) / k
        ybar = np.where(w, y, 0.0).sum(axis=-1) / k
        dt = np.where(w, t - tbar[..., None], 0.0)
        sxx = (dt * dt).sum(axis=-1)
        sxy = (dt * np.where(w, y - ybar[..., None], 0.0)).sum(axis=-1)
        slope = sxy / sxx
    return np.where((k >= 2) & (sxx > 0), slope, np.nan)


def slope_batched(y: np.ndarray, visit_times: np.ndarray, treated: np.ndarray,
                  alpha: float = 0.05) -> BatchResult:
    """Slope analysis of ``y`` ``(R, N, V)`` observed at ``visit_times`` ``(V,)``; ``treated`` ``(R, N)``.

    ``n_per_arm`` counts patients with a slope (>= 2 visits). ``details``: ``df`` (Welch-Satterthwaite),
    ``se``, ``mean_control``, ``mean_treated`` (mean slopes per unit of visit time).
    """
    y = as_replicates(y, ndim=3, name="y")
    treated = as_replicates(treated, ndim=2, name="treated", dtype=bool)
    return welch_batched(patient_slopes(y, visit_times), treated, alpha, METHOD)


def slope_test(data: pd.DataFrame, *, id: str, visit: str, value: str, arm: str, treated_value,
               alpha: float = 0.05) -> TestResult:
    """Slope analysis of long data (one row per patient visit), e.g.
    ``slope_test(df, id="patient_id", visit="month", value="alsfrs_r", arm="arm", treated_value="treatment")``.
    """
    y, visits, treated, _ = long_to_grid(data, id=id, visit=visit, value=value, arm=arm,
                                         treated_value=treated_value)
    return to_test_result(slope_batched(y[None], visits, treated[None], alpha))
