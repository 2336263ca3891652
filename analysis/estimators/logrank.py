"""Log-rank test of two survival curves, with the Peto (score) hazard-ratio estimate.

Method: at every distinct event time ``t`` with ``n = n0 + n1`` at risk (time >= t) and ``d = d0 + d1``
events, ``E1 = d n1 / n`` and the hypergeometric variance ``V_t = d (n1/n)(n0/n)(n - d)/(n - 1)``
(0 when ``n = 1``). Exact ties are one event time; a subject censored at ``t`` is at risk at ``t``.
``O1 - E1 = sum_t (d1 - E1)``, ``V = sum_t V_t``; statistic ``(O1 - E1)^2 / V`` ~ chi-square(1), two-sided
p-value (as ``statsmodels.duration.survdiff``). Estimate: the Peto/score hazard ratio treated vs control
``exp((O1 - E1) / V)`` with CI ``exp((O1 - E1)/V -/+ z_{1-alpha/2} / sqrt(V))`` (a one-step approximation to the
Cox estimate, good near HR = 1; it is not the Cox MLE). Undefined (NaN): no events, ``V = 0``, or an arm
with fewer than two patients. Non-finite times are not analysable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


from ._common import (arm_indicator, numeric_column, require_columns, risk_sets, to_test_result, z_crit,
                      zero_one_column)
from .result import BatchResult, TestResult

__all__ = ["logrank_batched", "logrank_test", "logrank_from_counts", "survival_arrays"]

METHOD = "log-rank test (chi-square, 1 df); Peto score hazard ratio exp((O1-E1)/V)"


def logrank_batched(time: np.ndarray, event: np.ndarray, treated: np.ndarray,
                    alpha: float = 0.05) -> BatchResult:
    """Log-rank test on every replicate: ``time``, ``event`` (bool), ``treated`` are ``(R, N)``.

    ``statistic`` is the chi-square. ``details``: ``observed_minus_expected`` (O1 - E1, treated),
    ``variance`` (V), ``log_hr`` ((O1 - E1)/V), ``se`` (1/sqrt(V)), ``events`` ((R, 2): control, treated),
    ``hr_method`` = "Peto (score) estimate exp((O1-E1)/V)".
    """
    zc = z_crit(alpha)
    rs = risk_sets(time, event, treated, per_event=False)
    n0, n1, d0, d1 = (rs[k].astype(float) for k in ("n0", "n1", "d0", "d1"))
    group = rs["is_last"] & ((rs["d0"] + rs["d1"]) > 0)        # one term per distinct event time
    return logrank_from_counts(n0, n1, d0, d1, group, rs, zc)


def logrank_from_counts(n0, n1, d0, d1, group, rs: dict, zc: float, *, method: str = METHOD,
                        hr_method: str = "Peto (score) estimate exp((O1-E1)/V)", **details) -> BatchResult:
    """The log-rank result from at-risk and event counts ``(R, N)`` on the sorted grid: one term where ``group``
    (the last position of each distinct event time); ``rs`` is the :func:`~._common.risk_sets` output (for the
    arm sizes and event counts). Extra ``details`` are passed through."""
    n, d = n0 + n1, d0 + d1
    with np.errstate(all="ignore"):
        e1 = np.where(group, d * n1 / n, 0.0)
        v = np.where(group & (n > 1), d * (n1 / n) * (n0 / n) * (n - d) / (n - 1), 0.0)
    o_e = np.where(group, d1, 0.0).sum(axis=1) - e1.sum(axis=1)
    var = v.sum(axis=1)
    n_arm = rs["n_per_arm"]
    events = np.stack([(rs["is_event"] & ~rs["treated_event"]).sum(axis=1), rs["treated_event"].sum(axis=1)],
                      axis=1)
    defined = (n_arm.min(axis=1) >= 2) & (var > 0)
    with np.errstate(all="ignore"):
        var = np.where(defined, var, np.nan)
        o_e = np.where(defined, o_e, np.nan)
        chisq = o_e ** 2 / var
        p = stats.chi2.sf(chisq, 1)
        log_hr = o_e / var
        se = 1.0 / np.sqrt(var)
    return BatchResult(method, np.exp(log_hr), np.exp(log_hr - zc * se), np.exp(log_hr + zc * se), p, chisq,
                       n_arm, {"observed_minus_expected": o_e, "variance": var, "log_hr": log_hr, "se": se,
                               "events": events, **details, "hr_method": hr_method})


def survival_arrays(data: pd.DataFrame, *, time: str, event: str, arm: str, treated_value):
    """``(time, event, treated)`` 1-D arrays from a frame; rows with a missing time, event or arm are dropped.

    ``event`` must be 0/1 or boolean (1 = event, 0 = censored).
    """
    require_columns(data, [time, event, arm])
    treated, known = arm_indicator(data, arm, treated_value)
    t = numeric_column(data, time)
    e = zero_one_column(data, event, "the event indicator")
    keep = known & np.isfinite(t) & ~np.isnan(e)
    return t[keep], e[keep].astype(bool), treated[keep]


def logrank_test(data: pd.DataFrame, *, time: str, event: str, arm: str, treated_value,
                 alpha: float = 0.05) -> TestResult:
    """Log-rank test of ``time``/``event`` between ``arm == treated_value`` and the other arm."""
    t, e, x = survival_arrays(data, time=time, event=event, arm=arm, treated_value=treated_value)
    return to_test_result(logrank_batched(t[None], e[None], x[None], alpha))
