"""Kaplan-Meier median survival per arm with the Brookmeyer-Crowley confidence interval.

Method: the Kaplan-Meier estimate ``S(t) = prod_{t_i <= t} (1 - d_i/n_i)`` over the arm's distinct event times
(exact ties are one time; a patient censored at ``t`` is at risk at ``t``), with Greenwood's
``sigma^2(t) = sum_{t_i <= t} d_i / (n_i (n_i - d_i))`` (the variance of ``log S``; R's ``std.err``). Pointwise
``1 - alpha`` bands, as R ``survfit(conf.type=...)`` (``z = z_{1-alpha/2}``):

* ``"log-log"`` (default, R's ``"log-log"``, statsmodels' ``"cloglog"``):
  ``S^exp(-/+ z sigma / log S)``, i.e. ``exp(-exp(log(-log S) +/- z sigma / |log S|))``; undefined at S = 0 or 1;
* ``"log"``: ``exp(log S -/+ z sigma)``, upper capped at 1; undefined at S = 0;
* ``"linear"`` (R's ``"plain"``): ``S (1 -/+ z sigma)`` clipped to [0, 1]; undefined where ``sigma`` is infinite.

The median is the first time the curve is <= 0.5; the Brookmeyer-Crowley interval is the set of times whose
pointwise band contains 0.5, reported as ``ci_low`` = the first time the lower band is <= 0.5 and ``ci_high`` =
the first time the upper band is <= 0.5. As R ``quantile.survfit``: comparisons use a tolerance of
``sqrt(machine eps)``, and where a curve equals 0.5 exactly over an interval the value is the midpoint of that
interval (its start and the next time the curve drops, or the arm's last follow-up time if it never drops).
**Not reached** (the curve or band never falls to 0.5) is ``inf``: e.g. ``ci_high = inf`` for an upper limit
beyond follow-up (R prints NA). An arm with no analysable patient gives NaN. Checked against R
``quantile(survfit(Surv(t, e) ~ arm, conf.type="log-log"), 0.5)`` (stored under tests/analysis/results/) and
``statsmodels`` ``SurvfuncRight.quantile_ci(0.5, method="cloglog")``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cohorts.errors import InvalidDataError, UnknownNameError

from ._common import as_replicates, require_columns, risk_sets, z_crit
from .logrank import survival_arrays
from .logrank_stratified import complete_rows

__all__ = ["km_median_batched", "km_summary", "km_steps", "KMMedianBatch", "CONF_TYPES"]

CONF_TYPES = ("log-log", "log", "linear")
_TOL = float(np.sqrt(np.finfo(float).eps))       # R quantile.survfit's tolerance


@dataclass(frozen=True, eq=False)
class KMMedianBatch:
    """Median survival per arm for ``R`` replicates: every array is ``(R, 2)`` (column 0 control, 1 treated)."""

    method: str
    conf_type: str
    median: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n: np.ndarray
    events: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        """One row per replicate and arm."""
        R = len(self.median)
        return pd.DataFrame({"replicate": np.repeat(np.arange(R), 2), "arm": np.tile(["control", "treated"], R),
                             "n": self.n.ravel(), "events": self.events.ravel(), "median": self.median.ravel(),
                             "ci_low": self.ci_low.ravel(), "ci_high": self.ci_high.ravel()})


def km_steps(time: np.ndarray, event: np.ndarray, treated: np.ndarray) -> dict:
    """Both arms' Kaplan-Meier curves on the sorted ``(R, N)`` grid of one sort per replicate.

    Returns ``t`` (sorted times, ``inf`` for non-analysable rows), ``is_last`` (last position of a tie group) and,
    per arm ``k`` (0 control, 1 treated), lists indexed by ``k``: ``n``, ``d`` (at risk / events in the arm at
    that time; valid where ``is_last``), ``point`` (``is_last`` and ``d > 0``: the curve steps there), ``surv``
    (``S`` after the position's tie group where ``is_last``, else before it), ``greenwood`` (``sigma^2``, same
    convention, ``inf`` once ``S = 0``), ``n_arm`` ``(R, 2)`` and ``events`` ``(R, 2)``.
    """
    time = as_replicates(time, ndim=2, name="time")
    rs = risk_sets(time, event, treated, per_event=False)
    t = np.sort(np.where(np.isfinite(time), time, np.inf), axis=1)
    out = {"t": t, "is_last": rs["is_last"], "n": [], "d": [], "point": [], "surv": [], "greenwood": [],
           "n_arm": rs["n_per_arm"],
           "events": np.stack([(rs["is_event"] & ~rs["treated_event"]).sum(axis=1),
                               rs["treated_event"].sum(axis=1)], axis=1)}
    for k in (0, 1):
        n, d = rs[f"n{k}"].astype(float), rs[f"d{k}"].astype(float)
        point = rs["is_last"] & (d > 0)
        with np.errstate(all="ignore"):
            log_step = np.where(point, np.log1p(-d / n), 0.0)
            gw_step = np.where(point, d / (n * (n - d)), 0.0)
        out["n"].append(n)
        out["d"].append(d)
        out["point"].append(point)
        out["surv"].append(np.exp(np.cumsum(log_step, axis=1)))
        out["greenwood"].append(np.cumsum(gw_step, axis=1))
    return out


def _bands(surv, greenwood, zc, conf_type):
    """Pointwise ``(lower, upper)`` band as R ``survfit_confint`` (NaN where R gives NA)."""
    se = np.sqrt(greenwood)
    with np.errstate(all="ignore"):
        if conf_type == "log-log":
            s = np.where((surv > 0) & (surv < 1), surv, np.nan)
            loglog, half = np.log(-np.log(s)), zc * se / np.abs(np.log(s))
            return np.exp(-np.exp(loglog + half)), np.exp(-np.exp(loglog - half))
        if conf_type == "log":
            s = np.where(surv > 0, surv, np.nan)
            return np.exp(np.log(s) - zc * se), np.minimum(np.exp(np.log(s) + zc * se), 1.0)
        half = zc * se * surv
        return np.maximum(surv - half, 0.0), np.minimum(surv + half, 1.0)


def _crossing(t, y, point, t_max, p=0.5):
    """First time the curve ``y`` (values at ``point`` positions; NaN = undefined there) is <= ``p``, with R's
    tolerance and midpoint rule; ``inf`` when never."""
    R, N = y.shape
    rows = np.arange(R)
    with np.errstate(invalid="ignore"):
        cand = point & (y < p + _TOL)
    found = cand.any(axis=1)
    k = np.argmax(cand, axis=1)
    yk, tk = y[rows, k], t[rows, k]
    with np.errstate(invalid="ignore"):
        later = point & (np.arange(N) > k[:, None]) & (y < yk[:, None])
    has_next = later.any(axis=1)
    t_next = np.where(has_next, t[rows, np.argmax(later, axis=1)], t_max)
    exact = np.abs(yk - p) < _TOL
    return np.where(found, np.where(exact, (tk + t_next) / 2.0, tk), np.inf)


def _method(alpha, conf_type):
    return (f"Kaplan-Meier median with Brookmeyer-Crowley {100 * (1 - alpha):g}% CI "
            f"({conf_type} transformed pointwise Greenwood CI); not reached = inf")


def km_median_batched(time: np.ndarray, event: np.ndarray, treated: np.ndarray, alpha: float = 0.05, *,
                      conf_type: str = "log-log") -> KMMedianBatch:
    """Median survival and its CI per arm on every replicate: ``time``, ``event`` (bool), ``treated`` are
    ``(R, N)``; ``conf_type`` is one of :data:`CONF_TYPES`."""
    if conf_type not in CONF_TYPES:
        raise UnknownNameError("KM confidence interval type", conf_type, CONF_TYPES)
    zc = z_crit(alpha)
    time = as_replicates(time, ndim=2, name="time")
    treated = as_replicates(treated, ndim=2, name="treated", dtype=bool)
    steps = km_steps(time, event, treated)
    finite = np.isfinite(time)                 # each arm's last follow-up time (for R's midpoint rule)
    t_max = [np.max(np.where(finite & (treated == bool(k)), time, -np.inf), axis=1) for k in (0, 1)]
    res = []
    for k in (0, 1):
        point, surv = steps["point"][k], steps["surv"][k]
        lower, upper = _bands(surv, steps["greenwood"][k], zc, conf_type)
        vals = [_crossing(steps["t"], y, point, t_max[k]) for y in (surv, lower, upper)]
        empty = steps["n_arm"][:, k] == 0
        res.append([np.where(empty, np.nan, v) for v in vals])
    median, low, high = (np.stack([res[0][i], res[1][i]], axis=1) for i in range(3))
    return KMMedianBatch(_method(alpha, conf_type), conf_type, median, low, high, steps["n_arm"],
                         steps["events"])


def km_summary(data: pd.DataFrame, *, time: str, event: str, arm: str | None = None,
               conf_type: str = "log-log", alpha: float = 0.05) -> pd.DataFrame:
    """One row per arm (sorted levels of ``arm``; one row ``"all"`` when ``arm`` is None): ``arm``, ``n``,
    ``events``, ``median``, ``ci_low``, ``ci_high`` (``inf`` = not reached). Rows with a missing time, event or
    arm are dropped. ``df.attrs["method"]`` states the method."""
    if arm is None:
        require_columns(data, [time, event])
        frame = data[[time, event]].assign(_arm="all")
        arm_col = "_arm"
    else:
        frame, arm_col = data, arm
    sub = complete_rows(frame, time=time, event=event, arm=arm_col)
    if sub.empty:
        raise InvalidDataError(f"no row has a time ({time!r}), event ({event!r})"
                               + (f" and arm ({arm!r})" if arm is not None else "") + " all present")
    levels = sorted(pd.unique(sub[arm_col]).tolist(), key=lambda v: (str(type(v)), v))
    rows = []
    for level in levels:          # each level against the rest: the level is the "treated" arm
        t, e, x = survival_arrays(sub.assign(_level=sub[arm_col] == level), time=time, event=event,
                                  arm="_level", treated_value=True)
        res = km_median_batched(t[None], e[None], x[None], alpha, conf_type=conf_type)
        rows.append({"arm": level, "n": int(res.n[0, 1]), "events": int(res.events[0, 1]),
                     "median": res.median[0, 1], "ci_low": res.ci_low[0, 1], "ci_high": res.ci_high[0, 1]})
    out = pd.DataFrame(rows, columns=["arm", "n", "events", "median", "ci_low", "ci_high"])
    out.attrs["method"] = _method(alpha, conf_type)
    return out
