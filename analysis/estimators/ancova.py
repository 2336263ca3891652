"""ANCOVA of the change from baseline at the last scheduled visit (completers).

Method: ``change = y_last - y_baseline`` regressed by OLS on ``1 + treated + baseline`` among completers
(patients observed at both the baseline and the last scheduled visit); estimate = the ``treated``
coefficient (adjusted mean difference in change, treated minus control), standard error from
``sigma^2 (X'X)^-1`` with ``sigma^2 = RSS / (n - 3)``, t-test and CI with ``n - 3`` degrees of freedom
(two-sided). Computed in closed form (Frisch-Waugh): with ``b~``, ``c~`` the baseline and change centred
within arm, ``beta = sum b~ c~ / sum b~^2``, ``tau = (cbar1 - cbar0) - beta (bbar1 - bbar0)``,
``var(tau) = sigma^2 (1/n1 + 1/n0 + (bbar1 - bbar0)^2 / sum b~^2)``. Checked against statsmodels OLS.
Undefined (NaN): an arm with fewer than two completers, or a baseline constant within arms (singular fit).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from cohorts.errors import InvalidDataError

from ._common import as_replicates, long_to_grid, to_test_result, z_crit
from .result import BatchResult, TestResult

__all__ = ["ancova_batched", "ancova_test"]

METHOD = "ANCOVA of change from baseline at the last visit (completers), t-test n-3 df"


def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise sum of products of two ``(R, N)`` arrays."""
    return np.einsum("rn,rn->r", a, b)


def ancova_batched(y: np.ndarray, treated: np.ndarray, alpha: float = 0.05) -> BatchResult:
    """ANCOVA on every replicate: ``y`` ``(R, N, V)`` with ``y[..., 0]`` the baseline and ``y[..., -1]`` the
    last scheduled visit (NaN = not observed); ``treated`` ``(R, N)``.

    ``n_per_arm`` counts completers. ``details``: ``df`` (n - 3), ``se``, ``baseline_coef``,
    ``mean_change_control``, ``mean_change_treated`` (unadjusted).
    """
    y = as_replicates(y, ndim=3, name="y")
    treated = as_replicates(treated, ndim=2, name="treated", dtype=bool)
    z_crit(alpha)
    first, final = np.ascontiguousarray(y[..., 0]), np.ascontiguousarray(y[..., -1])
    ok = ~np.isnan(first) & ~np.isnan(final)
    base = np.where(ok, first, 0.0)
    change = np.where(ok, final, 0.0) - base
    w1 = (ok & treated).astype(float)
    w0 = (ok & ~treated).astype(float)
    n = np.stack([w0.sum(axis=1), w1.sum(axis=1)], axis=1).astype(int)
    with np.errstate(all="ignore"):
        cbar = [_rowdot(w0, change) / n[:, 0], _rowdot(w1, change) / n[:, 1]]
        bbar = [_rowdot(w0, base) / n[:, 0], _rowdot(w1, base) / n[:, 1]]
        # within-arm centred baseline and change (0 where not a completer)
        bc = np.where(ok, base - np.where(treated, bbar[1][:, None], bbar[0][:, None]), 0.0)
        cc = np.where(ok, change - np.where(treated, cbar[1][:, None], cbar[0][:, None]), 0.0)
        sbb = _rowdot(bc, bc)
        beta = _rowdot(bc, cc) / sbb
        resid = cc - beta[:, None] * bc
        rss = _rowdot(resid, resid)
        ntot = n.sum(axis=1)
        df = (ntot - 3).astype(float)
        sigma2 = rss / df
        dbb = bbar[1] - bbar[0]
        tau = (cbar[1] - cbar[0]) - beta * dbb
        se = np.sqrt(sigma2 * (1.0 / n[:, 0] + 1.0 / n[:, 1] + dbb ** 2 / sbb))
        scale = _rowdot(base, base)
        defined = (n.min(axis=1) >= 2) & (sbb > 1e-12 * scale) & (se > 0) & np.isfinite(se)
        nan = np.where(defined, 0.0, np.nan)
        tau, se, df = tau + nan, se + nan, df + nan
        t = tau / se
        p = 2.0 * stats.t.sf(np.abs(t), df)
        q = stats.t.ppf(1.0 - alpha / 2.0, df)
    return BatchResult(METHOD, tau, tau - q * se, tau + q * se, p, t, n,
                       {"df": df, "se": se, "baseline_coef": beta + nan,
                        "mean_change_control": cbar[0] + nan, "mean_change_treated": cbar[1] + nan})


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
