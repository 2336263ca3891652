"""Two-sample z-test of proportions (pooled variance) with a Wald CI for the risk difference.

Method: ``p1 = x1/n1`` (treated), ``p0 = x0/n0`` (control), pooled ``p = (x1 + x0)/(n1 + n0)``;
statistic ``z = (p1 - p0) / sqrt(p (1 - p) (1/n1 + 1/n0))``, two-sided normal p-value (as
``statsmodels.stats.proportion.proportions_ztest([x1, x0], [n1, n0])``). Estimate: risk difference
``p1 - p0`` with the unpooled Wald CI ``p1 - p0 -/+ z_{1-alpha/2} sqrt(p1(1-p1)/n1 + p0(1-p0)/n0)`` (as
``confint_proportions_2indep(method="wald", compare="diff")``). No continuity correction. The outcome is
coded 1 = event, 0 = no event; NaN is not analysable. Undefined (NaN): an arm with < 2 patients, or
``p`` equal to 0 or 1 (zero variance).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


from ._common import as_replicates, to_test_result, z_crit
from .binary import binary_arrays
from .result import BatchResult, TestResult

__all__ = ["proportions_batched", "proportions_test"]

METHOD = "two-sample z-test of proportions (pooled variance), risk difference"


def proportions_batched(y: np.ndarray, treated: np.ndarray, alpha: float = 0.05) -> BatchResult:
    """z-test on every replicate: ``y`` (0/1, NaN = missing) and ``treated`` are ``(R, N)``.

    ``details``: ``p_control``, ``p_treated``, ``p_pooled``, ``se_pooled`` (of the test), ``se`` (Wald, of
    the CI).
    """
    y = as_replicates(y, ndim=2, name="y")
    treated = as_replicates(treated, ndim=2, name="treated", dtype=bool)
    zc = z_crit(alpha)
    ok = ~np.isnan(y)
    arms = (ok & ~treated, ok & treated)
    n = np.stack([a.sum(axis=1) for a in arms], axis=1)
    x = np.stack([np.where(a, y, 0.0).sum(axis=1) for a in arms], axis=1)
    with np.errstate(all="ignore"):
        p0, p1 = x[:, 0] / n[:, 0], x[:, 1] / n[:, 1]
        pooled = x.sum(axis=1) / n.sum(axis=1)
        se0 = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n[:, 0] + 1.0 / n[:, 1]))
        defined = (n.min(axis=1) >= 2) & (se0 > 0)
        diff = np.where(defined, p1 - p0, np.nan)
        z = diff / se0
        pval = 2.0 * stats.norm.sf(np.abs(z))
        se = np.sqrt(p1 * (1.0 - p1) / n[:, 1] + p0 * (1.0 - p0) / n[:, 0])
        se = np.where(defined, se, np.nan)
    nan = np.where(defined, 0.0, np.nan)
    return BatchResult(METHOD, diff, diff - zc * se, diff + zc * se, pval, z, n,
                       {"p_control": p0 + nan, "p_treated": p1 + nan, "p_pooled": pooled + nan,
                        "se_pooled": se0 + nan, "se": se})


def proportions_test(data: pd.DataFrame, *, value: str, arm: str, treated_value,
                     alpha: float = 0.05) -> TestResult:
    """z-test of the 0/1 column ``value`` between ``arm == treated_value`` and the other arm.

    A boolean column is accepted; any value other than 0, 1 or missing raises :class:`InvalidDataError`.
    """
    y, treated = binary_arrays(data, outcome=value, arm=arm, treated_value=treated_value)
    return to_test_result(proportions_batched(y[None], treated[None], alpha))
