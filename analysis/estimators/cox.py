"""Cox proportional-hazards model with one binary covariate (treated), Wald test and CI.

Method: maximum partial likelihood for ``log HR`` = ``b`` (treated vs control). With ``n0, n1`` at risk
(time >= t) and ``d0, d1`` events at each distinct event time (exact ties are one time; a subject censored
at ``t`` is at risk at ``t``), the log partial likelihood is

* Efron (default): ``sum_t [ d1 b - sum_{l=0}^{d-1} log(n0 + n1 e^b - (l/d)(d0 + d1 e^b)) ]``;
* Breslow (``ties="breslow"``): ``sum_t [ d1 b - d log(n0 + n1 e^b) ]``.

Each term is ``log(A + B e^b)``; score ``D1 - sum p``, information ``sum A B e^b / (A + B e^b)^2`` with
``p = B e^b / (A + B e^b)``. Newton-Raphson from ``b = 0``, vectorised over replicates, halving the step while
the log-likelihood decreases, until ``|step| < 1e-10`` (at most 100 iterations). Wald: ``se = 1/sqrt(info)``
at the MLE, ``z = b / se`` (the reported statistic), two-sided normal p, HR CI ``exp(b -/+ z_{1-alpha/2} se)``.
Matches ``statsmodels`` ``PHReg(ties="efron"/"breslow")`` params, bse and pvalues. Undefined (NaN): an arm
with fewer than two patients, no events, or an infinite MLE (monotone likelihood, e.g. no events in an arm),
which is detected exactly from the limits of the score rather than by iterating.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from cohorts.errors import UnknownNameError

from ._common import risk_sets, to_test_result, z_crit
from .logrank import survival_arrays
from .result import BatchResult, TestResult

__all__ = ["cox_batched", "cox_test", "TIES"]

TIES = ("efron", "breslow")
_TOL, _MAX_ITER, _MAX_HALVING = 1e-10, 100, 40


def _terms(time, event, treated, ties: str):
    """Per-event terms ``(A, B)`` of the log partial likelihood on the sorted ``(R, N)`` grid (non-events:
    ``A = 1, B = 0``, contributing nothing), the treated event count ``D1`` and existence of a finite MLE."""
    rs = risk_sets(time, event, treated)
    ev = rs["is_event"]
    n0, n1, d0, d1 = (rs[k].astype(float) for k in ("n0", "n1", "d0", "d1"))
    if ties == "efron":
        with np.errstate(all="ignore"):
            frac = np.where(ev, rs["l"] / (d0 + d1), 0.0)
    else:
        frac = 0.0
    a = np.where(ev, n0 - frac * d0, 1.0)
    b = np.where(ev, n1 - frac * d1, 0.0)
    d1_total = rs["treated_event"].sum(axis=1).astype(float)
    # score(b) = D1 - sum p(b) decreases from D1 - #{n0 = 0 < n1} (b -> -inf) to D1 - #{n1 > 0} (b -> +inf)
    k_pos = (ev & (rs["n1"] > 0)).sum(axis=1)
    k_neg = (ev & (rs["n0"] == 0) & (rs["n1"] > 0)).sum(axis=1)
    finite = (k_neg < d1_total) & (d1_total < k_pos)
    return a, b, d1_total, finite, rs


def _evaluate(a, b, d1, beta):
    """Log partial likelihood, score and information at ``beta`` (one value per row)."""
    eb = np.exp(beta)[:, None]
    be = b * eb
    den = a + be
    ll = d1 * beta - np.log(den).sum(axis=1)
    score = d1 - (be / den).sum(axis=1)
    info = (a * be / (den * den)).sum(axis=1)
    return ll, score, info


def _newton(a, b, d1, rows):
    """Newton-Raphson with step halving on the replicates ``rows``; returns beta, info, loglik, iterations,
    converged (full-length arrays, NaN outside ``rows``)."""
    R = a.shape[0]
    beta = np.full(R, np.nan)
    info = np.full(R, np.nan)
    ll = np.full(R, np.nan)
    iters = np.zeros(R, dtype=int)
    conv = np.zeros(R, dtype=bool)
    beta[rows] = 0.0
    ll[rows], score, info[rows] = _evaluate(a[rows], b[rows], d1[rows], beta[rows])
    step = np.full(R, np.nan)
    step[rows] = score / info[rows]
    active = rows.copy()
    for it in range(1, _MAX_ITER + 1):
        if not len(active):
            break
        st = step[active]
        aa, bb, dd = a[active], b[active], d1[active]
        new = beta[active] + st
        ll_new, sc_new, in_new = _evaluate(aa, bb, dd, new)
        worse = ~(ll_new >= ll[active] - 1e-12 * np.abs(ll[active]))
        for _ in range(_MAX_HALVING):
            if not worse.any():
                break
            st = np.where(worse, st / 2.0, st)
            w = np.flatnonzero(worse)
            new[w] = beta[active][w] + st[w]
            ll_new[w], sc_new[w], in_new[w] = _evaluate(aa[w], bb[w], dd[w], new[w])
            worse[w] = ~(ll_new[w] >= ll[active][w] - 1e-12 * np.abs(ll[active][w]))
        beta[active], ll[active], info[active] = new, ll_new, in_new
        iters[active] = it
        done = np.abs(st) < _TOL
        with np.errstate(all="ignore"):
            step[active] = sc_new / in_new
        done |= np.abs(step[active]) < _TOL
        conv[active[done]] = True
        active = active[~done]
    return beta, info, ll, iters, conv


def cox_batched(time: np.ndarray, event: np.ndarray, treated: np.ndarray, alpha: float = 0.05, *,
                ties: str = "efron") -> BatchResult:
    """Cox PH fit on every replicate: ``time``, ``event`` (bool), ``treated`` are ``(R, N)``.

    ``estimate`` is the hazard ratio treated vs control; ``statistic`` the Wald z. ``details``: ``log_hr``,
    ``se`` (of log HR), ``loglik`` (log partial likelihood at the MLE), ``iterations``, ``converged``,
    ``events`` ((R, 2): control, treated), ``ties``.
    """
    if ties not in TIES:
        raise UnknownNameError("ties method", ties, TIES)
    zc = z_crit(alpha)
    a, b, d1, finite, rs = _terms(time, event, treated, ties)
    n_arm = rs["n_per_arm"]
    ok = finite & (n_arm.min(axis=1) >= 2)
    with np.errstate(over="ignore", invalid="ignore"):   # an overshooting step is halved, not reported
        beta, info, ll, iters, conv = _newton(a, b, d1, np.flatnonzero(ok))
    with np.errstate(all="ignore"):
        good = ok & conv & (info > 0)
        beta = np.where(good, beta, np.nan)
        se = np.where(good, 1.0 / np.sqrt(info), np.nan)
        z = beta / se
        p = 2.0 * stats.norm.sf(np.abs(z))
    events = np.stack([(rs["is_event"] & ~rs["treated_event"]).sum(axis=1), rs["treated_event"].sum(axis=1)],
                      axis=1)
    method = f"Cox PH ({ties.capitalize()} ties), Wald test"
    return BatchResult(method, np.exp(beta), np.exp(beta - zc * se), np.exp(beta + zc * se), p, z, n_arm,
                       {"log_hr": beta, "se": se, "loglik": np.where(good, ll, np.nan), "iterations": iters,
                        "converged": conv, "events": events, "ties": ties})


def cox_test(data: pd.DataFrame, *, time: str, event: str, arm: str, treated_value, ties: str = "efron",
             alpha: float = 0.05) -> TestResult:
    """Cox PH of ``time``/``event`` on the indicator ``arm == treated_value`` (ties: "efron" or "breslow")."""
    t, e, x = survival_arrays(data, time=time, event=event, arm=arm, treated_value=treated_value)
    return to_test_result(cox_batched(t[None], e[None], x[None], alpha, ties=ties))
