"""ANCOVA of the change from baseline at the last scheduled visit (completers).

Method: ``change = y_last - y_baseline`` regressed by OLS on ``1 + treated + baseline`` among completers
(patients observed at both the baseline and the last scheduled visit); estimate = the ``treated``
coefficient (adjusted mean difference in change, treated minus control), standard error from
``sigma^2 (X'X)^-1`` with ``sigma^2 = RSS / (n - 3)``, t-test and CI with ``n - 3`` degrees of freedom
(two-sided). Computed by the batched OLS of :mod:`~analysis.estimators.ancova_adjusted` (centred cross-products,
one pass over the data). Checked against statsmodels OLS. Undefined (NaN): an arm with fewer than two
completers, or a baseline constant or collinear with the arm (singular fit).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cohorts.errors import InvalidDataError

from ._common import as_replicates, long_to_grid, to_test_result, z_crit
from .ancova_adjusted import ancova_adjusted_batched
from .result import BatchResult, TestResult

__all__ = ["ancova_batched", "ancova_test"]

METHOD = "ANCOVA of change from baseline at the last visit (completers), t-test n-3 df"


def ancova_batched(y: np.ndarray, treated: np.ndarray, alpha: float = 0.05) -> BatchResult:
    """ANCOVA on every replicate: ``y`` ``(R, N, V)`` with ``y[..., 0]`` the baseline and ``y[..., -1]`` the
    last scheduled visit (NaN = not observed); ``treated`` ``(R, N)``.

    ``n_per_arm`` counts completers. ``details``: ``df`` (n - 3), ``se``, ``baseline_coef``,
    ``mean_change_control``, ``mean_change_treated`` (unadjusted). The OLS fit is
    :func:`~analysis.estimators.ancova_adjusted.ancova_adjusted_batched` with the baseline as the covariate.
    """
    y = as_replicates(y, ndim=3, name="y")
    treated = as_replicates(treated, ndim=2, name="treated", dtype=bool)
    z_crit(alpha)
    first = np.ascontiguousarray(y[..., 0])                       # one strided read each, then contiguous passes
    change = np.ascontiguousarray(y[..., -1]) - first             # NaN unless both visits are observed
    res = ancova_adjusted_batched(change, treated, first[..., None], alpha,
                                  names=["const", "treated", "baseline"], method=METHOD)
    ok = np.isfinite(change)
    w1 = (ok & treated).astype(float)
    w0 = (ok & ~treated).astype(float)
    c = np.where(ok, change, 0.0)
    defined = np.isfinite(res.estimate)
    nan = np.where(defined, 0.0, np.nan)
    with np.errstate(all="ignore"):
        m0 = np.einsum("rn,rn->r", w0, c) / w0.sum(axis=1) + nan
        m1 = np.einsum("rn,rn->r", w1, c) / w1.sum(axis=1) + nan
    return BatchResult(METHOD, res.estimate, res.ci_low, res.ci_high, res.p_value, res.statistic, res.n_per_arm,
                       {"df": res.details["df"], "se": res.details["se"],
                        "baseline_coef": res.details["coef"][:, 2], "mean_change_control": m0,
                        "mean_change_treated": m1})


def ancova_test(data: pd.DataFrame, *, id: str, visit: str, value: str, arm: str, treated_value,
                alpha: float = 0.05, baseline_visit: float | None = None,
                final_visit: float | None = None) -> TestResult:
    """ANCOVA of long data (one row per patient visit).

    The baseline and last scheduled visits default to the smallest and largest visit time present in
    ``data``; pass ``baseline_visit`` / ``final_visit`` to choose others.
    """
    y, visits, treated, _ = long_to_grid(data, id=id, visit=visit, value=value, arm=arm,
                                         treated_value=treated_value)
    cols = []
    for name, v, default in (("baseline_visit", baseline_visit, 0), ("final_visit", final_visit, -1)):
        if v is None:
            cols.append(len(visits) - 1 if default == -1 else 0)
            continue
        hit = np.flatnonzero(visits == float(v))
        if not len(hit):
            raise InvalidDataError(f"{name}={v!r} is not a visit in column {visit!r}; visits are "
                                   f"{visits.tolist()}")
        cols.append(int(hit[0]))
    return to_test_result(ancova_batched(y[None][..., cols], treated[None], alpha))
