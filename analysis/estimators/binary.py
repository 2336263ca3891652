"""Binary endpoint, two arms: risk difference (Wald or Newcombe CI, pooled z-test) and risk ratio (log CI).

Notation: ``x1`` events among ``n1`` treated, ``x0`` among ``n0`` controls, ``p1 = x1/n1``, ``p0 = x0/n0``,
``z = z_{1-alpha/2}``. The outcome is coded 1 = event, 0 = no event; NaN is not analysable.

Risk difference ``d = p1 - p0`` (treated minus control):

* test: pooled z-test ``z_stat = d / sqrt(p (1 - p) (1/n1 + 1/n0))`` with ``p = (x1 + x0)/(n1 + n0)``,
  two-sided normal p-value (as ``statsmodels.stats.proportion.proportions_ztest``);
* ``ci="wald"``: ``d -/+ z sqrt(p1(1-p1)/n1 + p0(1-p0)/n0)`` (as ``confint_proportions_2indep(method="wald",
  compare="diff")``);
* ``ci="newcombe"`` (default): Newcombe (Stat Med 1998;17:873-90) method 10, the hybrid score interval built
  from the Wilson score intervals ``(l1, u1)``, ``(l0, u0)`` of each arm,
  ``l_k, u_k = (x_k + z^2/2 -/+ z sqrt(x_k (n_k - x_k)/n_k + z^2/4)) / (n_k + z^2)``;
  ``[d - sqrt((p1 - l1)^2 + (u0 - p0)^2), d + sqrt((u1 - p1)^2 + (p0 - l0)^2)]`` (as
  ``confint_proportions_2indep(method="newcomb", compare="diff")``).

Risk ratio ``RR = p1/p0`` (treated vs control): Katz log interval ``exp(log RR -/+ z se)`` with
``se = sqrt(1/x1 - 1/n1 + 1/x0 - 1/n0)`` (as ``confint_proportions_2indep(compare="ratio", method="log")``,
i.e. without the 0.5 cell adjustment of statsmodels' default ``"log-adjusted"``), Wald test
``z_stat = log RR / se``, two-sided normal p (as ``test_proportions_2indep(compare="ratio", method="log")``).

Undefined replicates (NaN) and zero cells, decided as follows:

* an arm with fewer than two analysable patients: every output NaN (both functions);
* risk difference, no event or no non-event in both arms together (pooled ``p`` is 0 or 1): the z-test is
  undefined, so ``statistic`` and ``p_value`` are NaN (a non-rejection), while the estimate (``d = 0``) and
  the Newcombe interval, which stays defined and non-degenerate for zero cells, are reported; the Wald
  interval is NaN whenever its ``se`` is 0 (both arms at 0 or 1), since it would collapse to a point;
* risk ratio, zero events in either arm (``RR`` is 0, infinite or 0/0, ``se`` infinite), or every patient
  an event in both arms (``se = 0``): every output NaN. No continuity correction is applied.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from cohorts.errors import UnknownNameError

from ._common import (arm_indicator, as_replicates, require_columns, to_test_result, z_crit,
                      zero_one_column)
from .result import BatchResult, TestResult

__all__ = ["risk_difference_batched", "risk_difference_test", "risk_ratio_batched", "risk_ratio_test",
           "CI_METHODS", "binary_arrays"]

CI_METHODS = ("newcombe", "wald")


def _counts(y, treated):
    """``(n, x)``: analysable patients and events per arm, ``(R, 2)`` float arrays (control, treated)."""
    y = as_replicates(y, ndim=2, name="y")
    treated = as_replicates(treated, ndim=2, name="treated", dtype=bool)
    if y.shape != treated.shape:
        raise ValueError(f"y {y.shape} and treated {treated.shape} must have the same shape")
    ok = ~np.isnan(y)
    arms = (ok & ~treated, ok & treated)
    n = np.stack([a.sum(axis=1) for a in arms], axis=1).astype(float)
    x = np.stack([np.where(a, y, 0.0).sum(axis=1) for a in arms], axis=1)
    return n, x


def _wilson(x, n, zc):
    """Wilson score interval of ``x`` events out of ``n`` (elementwise)."""
    z2 = zc * zc
    centre = (x + z2 / 2.0) / (n + z2)
    half = zc * np.sqrt(x * (n - x) / n + z2 / 4.0) / (n + z2)
    return centre - half, centre + half


def risk_difference_batched(y: np.ndarray, treated: np.ndarray, alpha: float = 0.05, *,
                            ci: str = "newcombe") -> BatchResult:
    """Risk difference on every replicate: ``y`` (0/1, NaN = missing) and ``treated`` are ``(R, N)``.

    ``statistic`` / ``p_value``: pooled z-test. ``details``: ``events`` and ``n`` ((R, 2): control, treated),
    ``p_control``, ``p_treated``, ``p_pooled``, ``se`` (unpooled Wald se of ``d``), ``se_pooled`` (of the
    test), ``ci_method``.
    """
    if ci not in CI_METHODS:
        raise UnknownNameError("risk-difference CI method", ci, CI_METHODS)
    zc = z_crit(alpha)
    n, x = _counts(y, treated)
    with np.errstate(all="ignore"):
        p0, p1 = x[:, 0] / n[:, 0], x[:, 1] / n[:, 1]
        defined = n.min(axis=1) >= 2
        nan = np.where(defined, 0.0, np.nan)
        diff = p1 - p0 + nan
        pooled = x.sum(axis=1) / n.sum(axis=1) + nan
        se0 = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n[:, 0] + 1.0 / n[:, 1]))
        se0 = np.where(se0 > 0, se0, np.nan)
        z = diff / se0
        pval = 2.0 * stats.norm.sf(np.abs(z))
        se = np.sqrt(p1 * (1.0 - p1) / n[:, 1] + p0 * (1.0 - p0) / n[:, 0]) + nan
        if ci == "wald":
            half = np.where(se > 0, zc * se, np.nan)
            low, high = diff - half, diff + half
            method = "risk difference, Wald CI, pooled z-test"
        else:
            l0, u0 = _wilson(x[:, 0], n[:, 0], zc)
            l1, u1 = _wilson(x[:, 1], n[:, 1], zc)
            low = diff - np.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
            high = diff + np.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
            method = "risk difference, Newcombe hybrid score CI, pooled z-test"
    return BatchResult(method, diff, low, high, pval, z, n.astype(int),
                       {"events": x.astype(int), "n": n.astype(int), "p_control": p0 + nan,
                        "p_treated": p1 + nan, "p_pooled": pooled, "se": se, "se_pooled": se0,
                        "ci_method": ci})


def risk_ratio_batched(y: np.ndarray, treated: np.ndarray, alpha: float = 0.05) -> BatchResult:
    """Risk ratio on every replicate: ``y`` (0/1, NaN = missing) and ``treated`` are ``(R, N)``.

    ``statistic``: Wald z of log RR. ``details``: ``events`` and ``n`` ((R, 2)), ``p_control``,
    ``p_treated``, ``log_rr``, ``se`` (of log RR), ``ci_method`` ("log").
    """
    zc = z_crit(alpha)
    n, x = _counts(y, treated)
    with np.errstate(all="ignore"):
        p0, p1 = x[:, 0] / n[:, 0], x[:, 1] / n[:, 1]
        se = np.sqrt(1.0 / x[:, 1] - 1.0 / n[:, 1] + 1.0 / x[:, 0] - 1.0 / n[:, 0])
        defined = (n.min(axis=1) >= 2) & (x.min(axis=1) > 0) & (se > 0) & np.isfinite(se)
        nan = np.where(defined, 0.0, np.nan)
        log_rr = np.log(p1) - np.log(p0) + nan
        se = se + nan
        z = log_rr / se
        pval = 2.0 * stats.norm.sf(np.abs(z))
    return BatchResult("risk ratio, log (Katz) CI, Wald test on log RR", np.exp(log_rr),
                       np.exp(log_rr - zc * se), np.exp(log_rr + zc * se), pval, z, n.astype(int),
                       {"events": x.astype(int), "n": n.astype(int), "p_control": p0 + nan,
                        "p_treated": p1 + nan, "log_rr": log_rr, "se": se, "ci_method": "log"})


def binary_arrays(data: pd.DataFrame, *, outcome: str, arm: str, treated_value) -> tuple[np.ndarray, np.ndarray]:
    """``(y, treated)`` ``(N,)`` from a 0/1 (or boolean) column ``outcome``; rows with a missing arm get
    ``y = NaN``. Any value other than 0, 1 or missing raises :class:`InvalidDataError`."""
    require_columns(data, [outcome, arm])
    treated, known = arm_indicator(data, arm, treated_value)
    y = zero_one_column(data, outcome, "a binary outcome")
    return np.where(known, y, np.nan), treated


def risk_difference_test(data: pd.DataFrame, *, outcome: str, arm: str, treated_value, alpha: float = 0.05,
                         ci: str = "newcombe") -> TestResult:
    """Risk difference of the 0/1 column ``outcome``, ``arm == treated_value`` minus the other arm."""
    y, x = binary_arrays(data, outcome=outcome, arm=arm, treated_value=treated_value)
    return to_test_result(risk_difference_batched(y[None], x[None], alpha, ci=ci))


def risk_ratio_test(data: pd.DataFrame, *, outcome: str, arm: str, treated_value,
                    alpha: float = 0.05) -> TestResult:
    """Risk ratio of the 0/1 column ``outcome``, ``arm == treated_value`` vs the other arm."""
    y, x = binary_arrays(data, outcome=outcome, arm=arm, treated_value=treated_value)
    return to_test_result(risk_ratio_batched(y[None], x[None], alpha))
