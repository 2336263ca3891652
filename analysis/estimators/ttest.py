"""Welch two-sample t-test of a continuous endpoint (treated minus control).

Method: means and sample variances (ddof 1) per arm; ``t = (m1 - m0) / sqrt(s1^2/n1 + s0^2/n0)``; degrees of
freedom by Welch-Satterthwaite; two-sided p-value from Student t(df); CI ``m1 - m0 -/+ t_{1-alpha/2,df} se``.
Checked against ``statsmodels.stats.weightstats.ttest_ind(usevar="unequal")`` and
``CompareMeans.tconfint_diff(usevar="unequal")``. NaN values are not analysable; an arm with fewer than two
values (or zero variance in both arms) gives NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._common import (arm_indicator, as_replicates, numeric_column, require_columns, to_test_result,
                      welch_batched)
from .result import BatchResult, TestResult

__all__ = ["ttest_batched", "ttest_test"]

METHOD = "Welch two-sample t-test"


def ttest_batched(y: np.ndarray, treated: np.ndarray, alpha: float = 0.05) -> BatchResult:
    """Welch t-test on every replicate: ``y`` and ``treated`` are ``(R, N)`` (``(N,)`` is one replicate).

    ``details``: ``df`` (Welch-Satterthwaite), ``se``, ``mean_control``, ``mean_treated``.
    """
    y = as_replicates(y, ndim=2, name="y")
    treated = as_replicates(treated, ndim=2, name="treated", dtype=bool)
    return welch_batched(y, treated, alpha, METHOD)


def ttest_test(data: pd.DataFrame, *, value: str, arm: str, treated_value, alpha: float = 0.05) -> TestResult:
    """Welch t-test of column ``value`` between the rows with ``arm == treated_value`` and the other arm."""
    require_columns(data, [value, arm])
    treated, known = arm_indicator(data, arm, treated_value)
    y = numeric_column(data, value)
    y = np.where(known, y, np.nan)
    return to_test_result(ttest_batched(y[None], treated[None], alpha))
