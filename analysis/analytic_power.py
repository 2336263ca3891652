"""Closed-form power and sample size of a two-arm trial, two-sided ``alpha`` (no simulation).

Notation: allocation ratio ``k = n_treated / n_control``, treated share ``p = k / (1 + k)``, total
``N = n_control (1 + k)``, ``z_q`` the standard normal quantile, ``z = z_{1-alpha/2} + z_{1-beta}`` with
``1 - beta`` the power. Sample sizes are returned unrounded by the per-kind functions; :func:`analytic_n`
rounds each arm up (``n_control = ceil(N / (1 + k))``, ``n_treated = ceil(k N / (1 + k))``).

* **continuous** (difference ``delta``, common SD ``sigma``): Student two-sample t-test with noncentral t power,
  statsmodels ``TTestIndPower`` with effect size ``delta / sigma`` (Cohen 1988, *Statistical Power Analysis*,
  ch. 2). Checked against rpact ``getSampleSizeMeans(normalApproximation = FALSE)``.
* **binary** (``p_control``, ``p_treated``), two methods:

  - ``"arcsine"`` (default): statsmodels ``NormalIndPower`` with Cohen's ``h = 2 asin(sqrt(p1)) -
    2 asin(sqrt(p0))`` (``proportion_effectsize``; Cohen 1988, ch. 6): power
    ``Phi(|h| sqrt(n0 n1 / N) - z_{1-alpha/2}) + Phi(-|h| sqrt(n0 n1 / N) - z_{1-alpha/2})``, N solved by root
    finding (``solve_power``).
  - ``"unpooled"``: normal approximation for the risk difference with the unpooled variance under null and
    alternative (Chow, Shao & Wang, *Sample Size Calculations in Clinical Research*, 2nd ed. 2008, sec. 4.2):
    ``n_control = z^2 (p0 (1 - p0) + p1 (1 - p1) / k) / (p1 - p0)^2``; power ``Phi(ncp - z_{1-alpha/2}) +
    Phi(-ncp - z_{1-alpha/2})`` with ``ncp = |p1 - p0| / sqrt(p0 (1 - p0) / n0 + p1 (1 - p1) / n1)``.

* **tte** (hazard ratio ``HR``, treated vs control), required number of EVENTS ``d``:

  - ``"schoenfeld"`` (default; Schoenfeld, Biometrika 1981;68:316-319): ``d = z^2 / (p (1 - p) log(HR)^2)``;
  - ``"freedman"`` (Freedman, Stat Med 1982;1:121-129): ``d = z^2 (1 + k HR)^2 / (k (1 - HR)^2)``.

  Power from ``d`` events inverts them, ``ncp = sqrt(d p (1 - p)) |log HR|`` (Schoenfeld) or
  ``sqrt(d k) |1 - HR| / (1 + k HR)`` (Freedman), power ``Phi(ncp - z_{1-alpha/2}) + Phi(-ncp - z_{1-alpha/2})``.
  Patients from events: ``N = d / P(event)`` with ``event_probability`` the overall probability that a
  patient's event is observed during the trial (both arms pooled; the caller derives it from accrual, follow-up
  and dropout).
  Checked against rpact ``getSampleSizeSurvival`` / ``getPowerSurvival`` and a published table.

* **longitudinal** (difference in mean slope ``delta`` per month, treated minus control): the per-patient OLS
  slope at visit times ``t_1..t_V`` (all attended) has variance ``v = sigma_b^2 + sigma_e^2 / Sxx``,
  ``Sxx = sum_j (t_j - tbar)^2``, with ``sigma_b`` the SD of the true slopes and ``sigma_e`` the within-patient
  residual SD (Diggle, Heagerty, Liang & Zeger, *Analysis of Longitudinal Data*, 2nd ed. 2002, sec. 2.4;
  Fitzmaurice, Laird & Ware, *Applied Longitudinal Analysis*, 2nd ed. 2011, ch. 20). Power of the Welch test
  of the slopes: noncentral t with ``ncp = delta / sqrt(v0/n0 + v1/n1)`` and the Welch-Satterthwaite df
  ``(v0/n0 + v1/n1)^2 / ((v0/n0)^2/(n0-1) + (v1/n1)^2/(n1-1))`` (Moser, Stevens & Watts, Commun Stat Theory
  Methods 1989;18:3963-3975), both tails. ``v1`` may differ (``slope_sd_treated``: a 25 % slowing that scales
  each treated decline also scales its SD). Missed visits and dropout lower the power: this is an upper bound.
  Checked against ``TTestIndPower`` (equal variances, 1:1) and by simulation with ``slope_batched``.

The closed-form sizes (unpooled binary, events) come from the near tail only, as in their sources; the powers
count both tails (as statsmodels and rpact), so they equal ``alpha`` at no effect, and power at the closed-form
size exceeds the asked power by the far tail, ``Phi(-2 z_{1-alpha/2} - z_{1-beta})`` (< 1e-5 at 80 %).

:func:`analytic_power` / :func:`analytic_n` dispatch on the kind; an unknown kind or method raises
:class:`~cohorts.errors.UnknownNameError`, impossible parameters :class:`~cohorts.errors.InvalidScenarioError`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import optimize, stats
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_effectsize

from cohorts.errors import InvalidScenarioError, UnknownNameError

__all__ = ["analytic_power", "analytic_n", "round_up_arms", "ANALYTIC_KINDS",
           "ttest_power", "ttest_n", "binary_power", "binary_n",
           "tte_events", "tte_power_from_events", "events_to_n",
           "slope_variance", "slope_power", "slope_n"]

BINARY_METHODS = ("arcsine", "unpooled")
TTE_METHODS = ("schoenfeld", "freedman")


def _bad(key: str, msg: str) -> InvalidScenarioError:
    return InvalidScenarioError(f"sample_size.{key}: {msg}")


def _check(alpha: float, k: float, power: float | None = None) -> None:
    if not (0.0 < alpha < 1.0):
        raise _bad("alpha", f"must be in (0, 1), got {alpha!r}")
    if not (0.0 < k < math.inf):
        raise _bad("allocation_ratio", f"is n_treated / n_control and must be > 0, got {k!r}")
    if power is not None and not (alpha < power < 1.0):
        raise _bad("power", f"must be in (alpha, 1) = ({alpha:g}, 1): a two-sided test has power alpha at no "
                   f"effect; got {power!r}")


def _check_n(n_total: float) -> None:
    if not (n_total > 0 and math.isfinite(n_total)):
        raise _bad("n_total", f"must be a positive number, got {n_total!r}")


def _z(power: float, alpha: float) -> float:
    return float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))


def _two_tails(ncp: float, alpha: float) -> float:
    zc = stats.norm.ppf(1 - alpha / 2)
    return float(stats.norm.cdf(ncp - zc) + stats.norm.cdf(-ncp - zc))


def round_up_arms(n_total: float, allocation_ratio: float = 1.0) -> int:
    """Total of the two arms each rounded up: ``ceil(N / (1 + k)) + ceil(k N / (1 + k))``."""
    n0 = n_total / (1 + allocation_ratio)
    return int(math.ceil(n0 - 1e-9) + math.ceil(allocation_ratio * n0 - 1e-9))


# --- continuous: Student t-test (statsmodels TTestIndPower) ---------------------------------------------------

def _effect(mean_difference: float, sd: float) -> float:
    if not sd > 0:
        raise _bad("sd", f"must be > 0, got {sd!r}")
    return abs(mean_difference) / sd


def ttest_power(n_total: float, *, mean_difference: float, sd: float, alpha: float = 0.05,
                allocation_ratio: float = 1.0) -> float:
    """Power of the two-sample t-test with ``n_total`` patients."""
    _check(alpha, allocation_ratio)
    _check_n(n_total)
    return float(TTestIndPower().power(effect_size=_effect(mean_difference, sd), nobs1=n_total / (1 + allocation_ratio),
                                       alpha=alpha, ratio=allocation_ratio))


def ttest_n(power: float, *, mean_difference: float, sd: float, alpha: float = 0.05,
            allocation_ratio: float = 1.0) -> float:
    """Unrounded total N of the two-sample t-test (``TTestIndPower.solve_power`` for ``nobs1``)."""
    _check(alpha, allocation_ratio, power)
    es = _effect(mean_difference, sd)
    if es == 0:
        raise _bad("mean_difference", "is 0: no sample size reaches a power above alpha")
    n0 = TTestIndPower().solve_power(effect_size=es, nobs1=None, alpha=alpha, power=power, ratio=allocation_ratio)
    return float(np.squeeze(n0)) * (1 + allocation_ratio)


# --- binary: Cohen's h (NormalIndPower) or unpooled risk difference --------------------------------------------

def _props(p_control: float, p_treated: float) -> None:
    for key, p in (("p_control", p_control), ("p_treated", p_treated)):
        if not (0.0 < p < 1.0):
            raise _bad(key, f"must be a probability in (0, 1), got {p!r}")


def _method(method: str, valid: Sequence[str], what: str) -> str:
    if method not in valid:
        raise UnknownNameError(what, method, valid)
    return method


def binary_power(n_total: float, *, p_control: float, p_treated: float, alpha: float = 0.05,
                 allocation_ratio: float = 1.0, method: str = "arcsine") -> float:
    """Power of the two-sample test of proportions (``method``: ``"arcsine"`` or ``"unpooled"``)."""
    _check(alpha, allocation_ratio)
    _check_n(n_total)
    _props(p_control, p_treated)
    n0 = n_total / (1 + allocation_ratio)
    if _method(method, BINARY_METHODS, "binary power method") == "arcsine":
        h = abs(proportion_effectsize(p_treated, p_control))
        return float(NormalIndPower().power(effect_size=h, nobs1=n0, alpha=alpha, ratio=allocation_ratio))
    se = math.sqrt(p_control * (1 - p_control) / n0 + p_treated * (1 - p_treated) / (allocation_ratio * n0))
    return _two_tails(abs(p_treated - p_control) / se, alpha)


def binary_n(power: float, *, p_control: float, p_treated: float, alpha: float = 0.05,
             allocation_ratio: float = 1.0, method: str = "arcsine") -> float:
    """Unrounded total N of the two-sample test of proportions."""
    _check(alpha, allocation_ratio, power)
    _props(p_control, p_treated)
    if p_control == p_treated:
        raise _bad("p_treated", "equals p_control: no sample size reaches a power above alpha")
    k = allocation_ratio
    if _method(method, BINARY_METHODS, "binary power method") == "arcsine":
        h = abs(proportion_effectsize(p_treated, p_control))
        n0 = float(np.squeeze(NormalIndPower().solve_power(effect_size=h, nobs1=None, alpha=alpha, power=power,
                                                           ratio=k)))
    else:
        var = p_control * (1 - p_control) + p_treated * (1 - p_treated) / k
        n0 = _z(power, alpha) ** 2 * var / (p_treated - p_control) ** 2
    return n0 * (1 + k)


# --- time to event: Schoenfeld / Freedman events -----------------------------------------------------------------

def _hr(hazard_ratio: float) -> None:
    if not (0.0 < hazard_ratio < math.inf):
        raise _bad("hazard_ratio", f"must be > 0, got {hazard_ratio!r}")


def _tte_scale(hazard_ratio: float, k: float, method: str) -> float:
    """``c`` with ``ncp = c sqrt(d)``: the events formulas are ``d = z^2 / c^2``."""
    if _method(method, TTE_METHODS, "time-to-event power method") == "schoenfeld":
        p = k / (1 + k)
        return math.sqrt(p * (1 - p)) * abs(math.log(hazard_ratio))
    return math.sqrt(k) * abs(1 - hazard_ratio) / (1 + k * hazard_ratio)


def tte_events(power: float, *, hazard_ratio: float, alpha: float = 0.05, allocation_ratio: float = 1.0,
               method: str = "schoenfeld") -> float:
    """Unrounded number of events (Schoenfeld 1981 or Freedman 1982) for ``power``."""
    _check(alpha, allocation_ratio, power)
    _hr(hazard_ratio)
    if hazard_ratio == 1:
        raise _bad("hazard_ratio", "is 1: no number of events reaches a power above alpha")
    return _z(power, alpha) ** 2 / _tte_scale(hazard_ratio, allocation_ratio, method) ** 2


def tte_power_from_events(events: float, *, hazard_ratio: float, alpha: float = 0.05,
                          allocation_ratio: float = 1.0, method: str = "schoenfeld") -> float:
    """Power of the log-rank test after ``events`` events (the inverted events formula)."""
    _check(alpha, allocation_ratio)
    _hr(hazard_ratio)
    if not (events > 0 and math.isfinite(events)):
        raise _bad("events", f"must be a positive number, got {events!r}")
    return _two_tails(_tte_scale(hazard_ratio, allocation_ratio, method) * math.sqrt(events), alpha)


def events_to_n(events: float, event_probability: float) -> float:
    """Unrounded number of patients expected to yield ``events`` events: ``events / event_probability``."""
    if not (0.0 < event_probability <= 1.0):
        raise _bad("event_probability", f"must be in (0, 1] (overall probability a patient's event is "
                   f"observed during the trial), got {event_probability!r}")
    return events / event_probability


# --- longitudinal: Welch test of per-patient OLS slopes --------------------------------------------------------

def slope_variance(slope_sd: float, residual_sd: float, visits_months: Sequence[float]) -> float:
    """Variance of one patient's OLS slope: ``slope_sd^2 + residual_sd^2 / Sxx`` over all visits."""
    t = np.asarray(visits_months, dtype=float)
    if t.ndim != 1 or t.size < 2 or not np.all(np.isfinite(t)) or np.ptp(t) == 0:
        raise _bad("visits_months", f"needs at least two distinct finite visit times, got {list(visits_months)}")
    if not (slope_sd >= 0 and residual_sd >= 0 and slope_sd + residual_sd > 0):
        raise _bad("slope_sd", f"slope_sd and residual_sd must be >= 0 and not both 0, got {slope_sd!r}, "
                   f"{residual_sd!r}")
    sxx = float(((t - t.mean()) ** 2).sum())
    return slope_sd ** 2 + residual_sd ** 2 / sxx


def slope_power(n_total: float, *, slope_difference: float, slope_sd: float, residual_sd: float,
                visits_months: Sequence[float], alpha: float = 0.05, allocation_ratio: float = 1.0,
                slope_sd_treated: float | None = None) -> float:
    """Power of the Welch test of per-patient slopes (noncentral t, Welch-Satterthwaite df, both tails)."""
    _check(alpha, allocation_ratio)
    _check_n(n_total)
    v0 = slope_variance(slope_sd, residual_sd, visits_months)
    v1 = v0 if slope_sd_treated is None else slope_variance(slope_sd_treated, residual_sd, visits_months)
    n0 = n_total / (1 + allocation_ratio)
    n1 = allocation_ratio * n0
    if min(n0, n1) < 2:
        raise _bad("n_total", f"leaves an arm with < 2 patients (n_control {n0:g}, n_treated {n1:g})")
    a0, a1 = v0 / n0, v1 / n1
    df = (a0 + a1) ** 2 / (a0 ** 2 / (n0 - 1) + a1 ** 2 / (n1 - 1))
    ncp = abs(slope_difference) / math.sqrt(a0 + a1)
    tc = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(tc, df, ncp) + stats.nct.cdf(-tc, df, ncp))


def slope_n(power: float, *, slope_difference: float, slope_sd: float, residual_sd: float,
            visits_months: Sequence[float], alpha: float = 0.05, allocation_ratio: float = 1.0,
            slope_sd_treated: float | None = None) -> float:
    """Unrounded total N at which :func:`slope_power` equals ``power`` (root of a monotone function)."""
    _check(alpha, allocation_ratio, power)
    if slope_difference == 0:
        raise _bad("slope_difference", "is 0: no sample size reaches a power above alpha")
    kw = dict(slope_difference=slope_difference, slope_sd=slope_sd, residual_sd=residual_sd,
              visits_months=visits_months, alpha=alpha, allocation_ratio=allocation_ratio,
              slope_sd_treated=slope_sd_treated)
    k = allocation_ratio
    lo = 2.0 * (1 + k) / min(1.0, k)  # both arms >= 2 patients (the nct is erratic at df near 0)
    f = lambda n: slope_power(n, **kw) - power  # noqa: E731
    if f(lo) >= 0:
        return lo
    hi = 2 * lo
    while f(hi) < 0:
        hi *= 2
    return float(optimize.brentq(f, lo, hi, xtol=1e-8, rtol=1e-12))


# --- dispatch ------------------------------------------------------------------------------------------------

def _tte_power(n_total, *, hazard_ratio, event_probability, alpha=0.05, allocation_ratio=1.0,
               method="schoenfeld"):
    _check_n(n_total)
    events = n_total / events_to_n(1.0, event_probability)  # validates event_probability
    return tte_power_from_events(events, hazard_ratio=hazard_ratio, alpha=alpha,
                                 allocation_ratio=allocation_ratio, method=method)


def _tte_n(power, *, hazard_ratio, event_probability, alpha=0.05, allocation_ratio=1.0, method="schoenfeld"):
    d = tte_events(power, hazard_ratio=hazard_ratio, alpha=alpha, allocation_ratio=allocation_ratio, method=method)
    return events_to_n(d, event_probability)


#: kind -> (power function of n_total, unrounded total-N function of power)
_KINDS = {
    "continuous": (ttest_power, ttest_n),
    "binary": (binary_power, binary_n),
    "tte": (_tte_power, _tte_n),
    "longitudinal": (slope_power, slope_n),
}
ANALYTIC_KINDS = tuple(_KINDS)
_PARAMS = {
    "continuous": ("mean_difference", "sd"),
    "binary": ("p_control", "p_treated", "method"),
    "tte": ("hazard_ratio", "event_probability", "method"),
    "longitudinal": ("slope_difference", "slope_sd", "residual_sd", "visits_months", "slope_sd_treated"),
}


def _lookup(kind: str, params: dict):
    if kind not in _KINDS:
        raise UnknownNameError("analytic power kind", kind, ANALYTIC_KINDS)
    allowed = _PARAMS[kind] + ("alpha", "allocation_ratio")
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise _bad(kind, f"unknown parameter(s) {', '.join(unknown)}; accepted: {', '.join(allowed)}")
    return _KINDS[kind]


def analytic_power(kind: str, n_total: float, **params) -> float:
    """Closed-form power at ``n_total`` patients for ``kind`` in :data:`ANALYTIC_KINDS`, e.g.
    ``analytic_power("tte", 400, hazard_ratio=0.7, event_probability=0.6, allocation_ratio=2)``."""
    power_fn, _ = _lookup(kind, params)
    return power_fn(n_total, **params)


def analytic_n(kind: str, power: float, **params) -> int:
    """Smallest total N (each arm rounded up, see :func:`round_up_arms`) with the closed-form power, e.g.
    ``analytic_n("continuous", 0.8, mean_difference=0.5, sd=1.0)`` -> 128."""
    _, n_fn = _lookup(kind, params)
    return round_up_arms(n_fn(power, **params), params.get("allocation_ratio", 1.0))
