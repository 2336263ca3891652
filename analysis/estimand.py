"""What the simulated estimates should be near, and what a formula would have said.

**Estimand** (:func:`reference_trial`): the analysis' large-sample limit under the design, computed from one
simulated trial ``m`` times as large (``m N >= 50,000`` randomized patients) with everything that scales with
``N`` scaled by ``m`` (accrual rates, the event target of an event-driven analysis, a hybrid design's synthetic
controls), so that follow-up, censoring and calendar cuts have the same distribution; interim looks are left out
(the estimand is the final analysis'). It is the reference for the bias (mean estimate minus it) and the coverage
(share of confidence intervals containing it). Its own Monte Carlo error is that of one trial of ``m N``
patients, ``1 / sqrt(m)`` of a replicate's standard error, reported as ``estimand_se`` (from that trial's
confidence interval, ``(ci_high - ci_low) / (2 z_{1 - alpha/2})``, on the log scale for ratios). Under the null design it is the estimate of a trial
with no effect (near 0 or 1).

**Analytic cross-check** (:func:`analytic_power_column`, two-arm fixed designs): the closed form of
:mod:`analysis.analytic_power` with its inputs read from the reference trial: Student t power with the reference
mean difference and pooled SD (``ttest``); unpooled normal approximation with the reference arms' proportions
(``proportions``, ``risk_difference``, ``risk_ratio``, ``logistic``); Schoenfeld's formula with the reference
hazard ratio and the mean number of events simulated at each N (``logrank``, ``cox``); Welch noncentral t with the
reference slope difference and each arm's variance of the observed per-patient slopes (``slope``). Other analyses
(ANCOVA, MMRM, random slopes) have no closed form here: NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from analysis import analytic_power as ap
from analysis.estimators import RATIO_ANALYSES, analyze_batch
from cohorts.errors import WorkbenchError
from trials.design import TrialDesign
from trials.simulate import simulate_trials

__all__ = ["ReferenceTrial", "reference_trial", "scaled_design", "depends_on_n", "has_closed_form",
           "analytic_power_column", "ANALYTIC_ANALYSES", "REFERENCE_PATIENTS"]

REFERENCE_PATIENTS = 50_000


#: analyses with a closed-form power (:func:`analytic_power_column`)
ANALYTIC_ANALYSES = frozenset({"ttest", "proportions", "risk_difference", "risk_ratio", "logistic", "logrank", "cox",
                               "slope"})


def has_closed_form(design: TrialDesign) -> bool:
    """A two-arm fixed design (no interim looks, no hybrid control) analysed by one of :data:`ANALYTIC_ANALYSES`."""
    return (design.n_treatments == 1 and design.looks is None and design.hybrid is None
            and design.endpoint.analysis in ANALYTIC_ANALYSES)


def depends_on_n(design: TrialDesign) -> bool:
    """Does the estimand change with N? Only through what :func:`scaled_design` scales: accrual at a rate, an
    event target, synthetic controls."""
    return ((design.accrual is not None and bool(design.accrual.rates)) or design.endpoint.events is not None
            or design.hybrid is not None)


def scaled_design(design: TrialDesign, m: int) -> TrialDesign:
    """The design ``m`` times as large (see the module docstring), without interim looks."""
    ep, acc, hy = design.endpoint, design.accrual, design.hybrid
    if acc is not None and acc.rates:
        acc = replace(acc, rates=tuple(r * m for r in acc.rates))
    if ep.events is not None:
        ep = replace(ep, events=ep.events * m)
    if hy is not None:
        hy = replace(hy, synthetic_controls=hy.synthetic_controls * m)
    return replace(design, endpoint=ep, accrual=acc, hybrid=hy, looks=None)


@dataclass(frozen=True, eq=False)
class ReferenceTrial:
    """The estimand and the inputs of the analytic cross-check, from one large trial."""

    estimate: float
    batch: object
    se: float = float("nan")


def reference_trial(generator, design: TrialDesign, n_total: int, alpha: float, *, rng: np.random.Generator,
                    patients: int = REFERENCE_PATIENTS) -> ReferenceTrial:
    """One trial ``m = ceil(patients / n_total)`` times as large as the design at ``n_total``; its estimate of the
    first treatment's effect is the estimand."""
    m = max(1, math.ceil(patients / n_total))
    big = simulate_trials(generator, scaled_design(design, m), n_total * m, 1, rng=rng)
    data = big.randomized()
    if design.n_treatments > 1:             # the control and the first treatment
        from analysis.multiarm import comparison_groups
        [(_, data)] = comparison_groups(data, 1)
    r = analyze_batch(data, design.endpoint.analysis, alpha)
    est, lo, hi = (float(np.asarray(getattr(r, k), dtype=float)[0]) for k in ("estimate", "ci_low", "ci_high"))
    if design.endpoint.analysis in RATIO_ANALYSES:
        lo, hi = (math.log(x) if x > 0 else float("nan") for x in (lo, hi))
    se = (hi - lo) / (2 * stats.norm.isf(alpha / 2))
    return ReferenceTrial(est, data, float(se))


def analytic_power_column(design: TrialDesign, ref: ReferenceTrial, n_total, alpha: float,
                          mean_events=None) -> np.ndarray:
    """Closed-form power at each total N (NaN where no closed form applies); see the module docstring."""
    n_total = np.asarray(n_total, dtype=float)
    nan = np.full(n_total.shape, np.nan)
    if not has_closed_form(design):
        return nan
    analysis = design.endpoint.analysis
    k = design.treatment.allocation / design.control.allocation
    b = ref.batch
    treated = b.treated[0]
    try:
        if analysis == "ttest":
            y = b.y[0]
            sd = math.sqrt((np.nanvar(y[~treated], ddof=1) * (np.sum(~treated) - 1)
                            + np.nanvar(y[treated], ddof=1) * (np.sum(treated) - 1)) / (y.size - 2))
            return np.array([ap.ttest_power(n, mean_difference=ref.estimate, sd=sd, alpha=alpha,
                                            allocation_ratio=k) for n in n_total])
        if analysis in ("proportions", "risk_difference", "risk_ratio", "logistic"):
            y = b.y[0]
            p0, p1 = float(np.nanmean(y[~treated])), float(np.nanmean(y[treated]))
            return np.array([ap.binary_power(n, p_control=p0, p_treated=p1, alpha=alpha, allocation_ratio=k,
                                             method="unpooled") for n in n_total])
        if analysis in ("logrank", "cox") and mean_events is not None:
            return np.array([ap.tte_power_from_events(d, hazard_ratio=ref.estimate, alpha=alpha, allocation_ratio=k)
                             for d in np.asarray(mean_events, dtype=float)])
        if analysis == "slope":
            from analysis.estimators.slope import patient_slopes
            times = b.visit_times if b.visit_times_actual is None else b.visit_times_actual[0]
            s = patient_slopes(b.y[0], times)
            v0, v1 = np.nanvar(s[~treated], ddof=1), np.nanvar(s[treated], ddof=1)
            return np.array([ap.slope_power(n, slope_difference=ref.estimate, slope_sd=math.sqrt(v0), residual_sd=0.0,
                                            visits_months=design.endpoint.visits_months, alpha=alpha,
                                            allocation_ratio=k, slope_sd_treated=math.sqrt(v1)) for n in n_total])
    except (WorkbenchError, ValueError, ZeroDivisionError):   # inputs outside a formula's domain: no cross-check
        return nan
    return nan
