"""Restricted mean survival time (RMST) up to a horizon ``tau``: difference treated minus control.

Method: per arm, ``RMST = integral_0^tau S(t) dt`` under the Kaplan-Meier step function (exact ties are one
time; a patient censored at ``t`` is at risk at ``t``). Variance (Greenwood type, as R survival's
``print.survfit(rmean=tau)`` / ``summary(fit, rmean=tau)$table[, "se(rmean)"]`` and survRM2):
``Var = sum_{t_i <= tau} A_i^2 d_i / (n_i (n_i - d_i))`` over the arm's distinct event times, with
``A_i = integral_{t_i}^tau S(t) dt`` and a term 0 when ``n_i = d_i``. R's default ``se(rmean)`` is exactly this
(no ``n/(n-1)`` small-sample factor). The estimate is ``RMST_1 - RMST_0`` with ``se = sqrt(Var_1 + Var_0)``
(independent arms), ``z = estimate / se`` (the reported statistic), two-sided normal p and CI
``estimate -/+ z_{1-alpha/2} se``. Time is integrated from 0, so times must be non-negative.

``tau`` may not exceed either arm's largest follow-up time (event or censoring), where the curve is unknown:
:func:`rmst_test` raises :class:`~cohorts.errors.InvalidDataError` naming the arm and its largest time;
:func:`rmst_batched` gives NaN for such a replicate (``details["tau_beyond_followup"]``). Also undefined (NaN):
an arm with fewer than two analysable patients, a negative time, or ``se = 0`` (no event before ``tau``).
Checked against R ``summary(survfit(Surv(t, e) ~ arm), rmean=tau)$table[, c("rmean", "se(rmean)")]`` (stored
under tests/analysis/results/).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from cohorts.errors import InvalidDataError

from ._common import as_replicates, to_test_result, z_crit
from .km import km_steps
from .logrank import survival_arrays
from .result import BatchResult, TestResult

__all__ = ["rmst_batched", "rmst_test"]

METHOD = ("RMST difference (treated - control) up to tau; Kaplan-Meier area, Greenwood-type variance "
          "(R survival rmean), normal CI and Wald test")


def _arm_rmst(steps, k, tau):
    """RMST and its variance for arm ``k`` on every replicate (``tau`` ``(R,)``)."""
    t = np.minimum(steps["t"], tau[:, None])                # non-analysable rows (inf) sit at tau: length 0
    R = t.shape[0]
    surv = steps["surv"][k]
    s_before = np.concatenate([np.ones((R, 1)), surv[:, :-1]], axis=1)
    width = np.diff(t, axis=1, prepend=0.0)
    area = s_before * width                                # the piece of area ending at each position
    rmst = area.sum(axis=1)
    after = np.cumsum(area[:, ::-1], axis=1)[:, ::-1] - area    # A_i: area from t_i to tau
    n, d, point = steps["n"][k], steps["d"][k], steps["point"][k]
    with np.errstate(all="ignore"):
        h = np.where(point & (steps["t"] <= tau[:, None]) & (n > d), d / (n * (n - d)), 0.0)
    return rmst, (after * after * h).sum(axis=1)


def rmst_batched(time: np.ndarray, event: np.ndarray, treated: np.ndarray, tau, alpha: float = 0.05
                 ) -> BatchResult:
    """RMST difference on every replicate: ``time``, ``event`` (bool), ``treated`` are ``(R, N)``; ``tau`` a
    positive number (or ``(R,)`` array).

    ``details``: ``rmst_control``, ``rmst_treated``, ``se_control``, ``se_treated``, ``se`` (of the difference),
    ``tau``, ``max_time`` ((R, 2): largest follow-up time per arm), ``tau_beyond_followup`` ((R,) bool),
    ``events`` ((R, 2)), ``variance_method``.
    """
    zc = z_crit(alpha)
    time = as_replicates(time, ndim=2, name="time")
    treated = as_replicates(treated, ndim=2, name="treated", dtype=bool)
    R = time.shape[0]
    tau = np.broadcast_to(np.asarray(tau, dtype=float), (R,)).copy()
    if not (np.isfinite(tau).all() and (tau > 0).all()):
        raise ValueError(f"tau must be a positive finite horizon, got {tau[~(np.isfinite(tau) & (tau > 0))][0]}")
    steps = km_steps(time, event, treated)
    finite = np.isfinite(time)
    max_time = np.stack([np.max(np.where(finite & (treated == bool(k)), time, -np.inf), axis=1)
                         for k in (0, 1)], axis=1)
    beyond = (tau[:, None] > max_time).any(axis=1)
    negative = (np.where(finite, time, 0.0) < 0).any(axis=1)
    (r0, v0), (r1, v1) = _arm_rmst(steps, 0, tau), _arm_rmst(steps, 1, tau)
    with np.errstate(all="ignore"):
        se = np.sqrt(v0 + v1)
        defined = (steps["n_arm"].min(axis=1) >= 2) & ~beyond & ~negative & (se > 0)
        nan = lambda a: np.where(defined, a, np.nan)      # noqa: E731
        diff, se = nan(r1 - r0), nan(se)
        z = diff / se
        p = 2.0 * stats.norm.sf(np.abs(z))
    return BatchResult(METHOD, diff, diff - zc * se, diff + zc * se, p, z, steps["n_arm"],
                       {"rmst_control": nan(r0), "rmst_treated": nan(r1), "se_control": nan(np.sqrt(v0)),
                        "se_treated": nan(np.sqrt(v1)), "se": se, "tau": tau, "max_time": max_time,
                        "tau_beyond_followup": beyond, "events": steps["events"],
                        "variance_method": "Greenwood-type: sum_{t_i<=tau} A_i^2 d_i/(n_i(n_i-d_i)), "
                                           "A_i = KM area from t_i to tau (R survival rmean, survRM2)"})


def rmst_test(data: pd.DataFrame, *, time: str, event: str, arm: str, treated_value, tau: float,
              alpha: float = 0.05) -> TestResult:
    """RMST difference up to ``tau`` between ``arm == treated_value`` and the other arm.

    Raises :class:`InvalidDataError` if ``tau`` exceeds an arm's largest follow-up time or a time is negative.
    """
    t, e, x = survival_arrays(data, time=time, event=event, arm=arm, treated_value=treated_value)
    if (t < 0).any():
        raise InvalidDataError(f"column {time!r}: {int((t < 0).sum())} negative times; RMST integrates from 0")
    if not (np.isfinite(tau) and tau > 0):
        raise InvalidDataError(f"tau must be a positive finite horizon, got {tau!r}")
    labels = {True: treated_value}
    others = [v for v in pd.unique(data[arm].dropna()).tolist() if v != treated_value]
    labels[False] = others[0] if others else "control"
    for is_treated in (False, True):
        arm_t = t[x == is_treated]
        if arm_t.size and tau > arm_t.max():
            largest = min(t[x == k].max() for k in (False, True) if (x == k).any())
            raise InvalidDataError(f"tau = {tau:g} exceeds the largest follow-up time {arm_t.max():g} in arm "
                                   f"{arm}={labels[is_treated]!r}; choose tau <= {largest:g} (the smaller of "
                                   f"the two arms' largest times)")
    return to_test_result(rmst_batched(t[None], e[None], x[None], tau, alpha))
