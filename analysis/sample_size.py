"""Smallest total N reaching a target power, searched by simulation, with its Monte Carlo uncertainty.

The simulator is not called here: the caller passes ``power_at(n, rng) -> (rejections, replicates)`` for a
total sample size ``n`` (for example a wrapper of :func:`analysis.power.simulate_rejections`). Every
evaluation gets its own stream ``rng.spawn(1)[0]``, in evaluation order, so the search is deterministic for a
given ``rng``. Sizes live on the grid of multiples of ``step`` (2 for 1:1, 3 for 2:1: allocation is exact).

Search (at most ``max_evaluations`` simulated sizes, each simulated once):

1. **Bracket.** Simulate ``n_start`` (the analytic N of :func:`analysis.analytic_power.analytic_n` when there is
   one), then move up (simulated power below the target) or down by factors 1.25, 1.5, 2, 2, ... until the
   simulated power crosses the target, or ``n_max`` / ``n_min`` is reached. The last two sizes are the bracket.
2. **Bisect** the bracket ``lo < hi`` (simulated power below / at or above the target) on the grid until
   ``hi - lo = step``, keeping one evaluation in reserve.
3. **Fit and confirm.** Fit ``power(N) = Phi(z_target + b (sqrt(N) - sqrt(N*)))``, ``b >= 0``, by binomial
   maximum likelihood to every size inside the bracket (plus confirmation sizes); ``N*`` is the fitted crossing.
   The recommendation is ``N*`` rounded up to the grid; if it was not simulated, it is (the reserve), and the
   fit is repeated with it.

Why bisection places the points and a fit reads the answer: bisection never depends on a model being right (a
poor model cannot send the search astray) and ends with the points packed around the crossing; but its last
decision compares one noisy rate with the target, so its final bracket alone is noisy and ignores most of the
replicates, while the fit pools them all. The curve is the normal-approximation power of any test whose
noncentrality grows like ``sqrt(N)`` (z-tests; log-rank with events proportional to N; t-tests up to the t
versus normal difference) and is monotone. The sizes passed on the way to the bracket are left out of the fit:
far from the crossing a two-parameter curve can be biased (with 1e5 replicates per size and a start 20 times too
small, an all-points fit missed the t-test crossing; the local fit did not). ``lack_of_fit_p`` (deviance test,
K - 2 df) flags a curve that does not fit.

Monte Carlo uncertainty of the recommendation: the 95 % profile-likelihood interval of ``N*`` (every N* with
``2 (max loglik - profile loglik(N*)) <= chi2_1(0.95) = 3.84``), rounded up to the grid as ``n_ci_low`` /
``n_ci_high``; an end at ``n_min`` / ``n_max`` means "not bounded inside the search range". It is deterministic
(no bootstrap) and covers the binomial noise of the fitted points, not a misfit of the curve. ``power`` is the
simulated rejection rate at the recommended N, with its Clopper-Pearson 95 % interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special, stats
from statsmodels.stats.proportion import proportion_confint

from cohorts.errors import InvalidDataError, InvalidScenarioError

__all__ = ["find_sample_size", "SampleSizeResult", "Evaluation", "fit_power_curve"]

PowerAt = Callable[[int, np.random.Generator], tuple[int, int]]
STATUSES = ("found", "n_min_sufficient", "n_max_insufficient", "not_bracketed")
_GROWTH = (1.25, 1.5)  # then 2 for every further bracketing move
_CHI2_95 = float(stats.chi2.ppf(0.95, 1))


@dataclass(frozen=True)
class Evaluation:
    """One simulated size: ``rejections`` of ``replicates`` trials rejected the null at total N ``n_total``."""

    n_total: int
    rejections: int
    replicates: int

    @property
    def power(self) -> float:
        return self.rejections / self.replicates

    def ci(self) -> tuple[float, float]:
        """Clopper-Pearson 95 % interval of the simulated power."""
        lo, hi = proportion_confint(self.rejections, self.replicates, alpha=0.05, method="beta")
        return float(np.nan_to_num(lo, nan=0.0)), float(np.nan_to_num(hi, nan=1.0))


@dataclass(frozen=True)
class SampleSizeResult:
    """Outcome of :func:`find_sample_size` (see the module docstring for the method).

    ``status``: ``"found"``; ``"n_min_sufficient"`` (the simulated power at ``n_min`` already reaches the
    target: ``n_recommended = n_min``); ``"n_max_insufficient"`` (not reached at ``n_max``:
    ``n_recommended = None``); ``"not_bracketed"`` (the evaluation budget ran out first: ``None``).
    ``n_crossing``: fitted continuous N* (NaN unless found); ``n_ci_low`` / ``n_ci_high``: the grid sizes
    covering the 95 % profile-likelihood interval of N*; ``power`` / ``power_ci_*``: simulated power at
    ``n_recommended`` with its Clopper-Pearson 95 % interval (NaN if the budget left it unsimulated).
    ``probit_slope``: ``b`` of the fitted curve; ``evaluations``: every simulated size in evaluation order;
    ``fit_n``: the sizes the curve was fitted to.
    """

    target: float
    status: str
    n_recommended: int | None
    power: float
    power_ci_low: float
    power_ci_high: float
    n_crossing: float
    n_ci_low: int | None
    n_ci_high: int | None
    probit_slope: float
    lack_of_fit_p: float
    step: int
    evaluations: tuple[Evaluation, ...]
    fit_n: tuple[int, ...] = ()

    def fitted_power(self, n_total) -> np.ndarray:
        """Power of the fitted probit curve at ``n_total`` (NaN when no curve was fitted)."""
        s = np.sqrt(np.asarray(n_total, dtype=float))
        eta = stats.norm.ppf(self.target) + self.probit_slope * (s - math.sqrt(self.n_crossing)) \
            if math.isfinite(self.n_crossing) else np.full_like(s, np.nan)
        return stats.norm.cdf(eta)

    def table(self) -> pd.DataFrame:
        """One row per evaluated size, in increasing N: simulated power, its interval, the fitted power."""
        ev = sorted(self.evaluations, key=lambda e: e.n_total)
        ci = np.array([e.ci() for e in ev]).reshape(-1, 2)
        n = [e.n_total for e in ev]
        return pd.DataFrame({"n_total": n, "rejections": [e.rejections for e in ev],
                             "replicates": [e.replicates for e in ev], "power": [e.power for e in ev],
                             "power_ci_low": ci[:, 0], "power_ci_high": ci[:, 1],
                             "fitted_power": self.fitted_power(n), "in_fit": [x in self.fit_n for x in n]})

    def to_json_dict(self) -> dict:
        fin = lambda x: float(x) if math.isfinite(x) else None  # noqa: E731
        return {"target": self.target, "status": self.status, "n_recommended": self.n_recommended,
                "power": fin(self.power), "power_ci_low": fin(self.power_ci_low),
                "power_ci_high": fin(self.power_ci_high), "n_crossing": fin(self.n_crossing),
                "n_ci_low": self.n_ci_low, "n_ci_high": self.n_ci_high, "step": self.step,
                "lack_of_fit_p": fin(self.lack_of_fit_p), "fit_n": list(self.fit_n),
                "evaluations": [[e.n_total, e.rejections, e.replicates] for e in self.evaluations]}


def _nll(eta: np.ndarray, k: np.ndarray, m: np.ndarray) -> float:
    return float(-(k * special.log_ndtr(eta) + (m - k) * special.log_ndtr(-eta)).sum())


def _nll_derivs(eta: np.ndarray, k: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and second derivatives of the nll in eta (Mills ratios on the log scale; the second is > 0)."""
    logphi = -0.5 * eta ** 2 - 0.5 * math.log(2 * math.pi)
    lp, lm = np.exp(logphi - special.log_ndtr(eta)), np.exp(logphi - special.log_ndtr(-eta))
    return -(k * lp - (m - k) * lm), k * lp * (eta + lp) + (m - k) * lm * (lm - eta)


def _probit_ml(x: np.ndarray, offset: np.ndarray, k, m, theta, b_max: float) -> tuple[np.ndarray, float]:
    """Minimise the (convex) nll of ``eta = offset + x @ theta`` with the last coefficient in ``[0, b_max]``:
    projected Newton with backtracking; the bounded coefficient is frozen while it sits on a bound and its
    gradient points outwards."""
    theta = np.asarray(theta, dtype=float).copy()
    theta[-1] = min(max(theta[-1], 0.0), b_max)
    f = _nll(offset + x @ theta, k, m)
    for _ in range(200):
        g, h = _nll_derivs(offset + x @ theta, k, m)
        grad, hess = x.T @ g, (x * h[:, None]).T @ x
        free = np.ones(theta.size, dtype=bool)
        free[-1] = not ((theta[-1] <= 0.0 and grad[-1] > 0) or (theta[-1] >= b_max and grad[-1] < 0))
        step = np.zeros_like(theta)
        if free.any():
            sub = hess[np.ix_(free, free)]
            step[free] = np.linalg.solve(sub + 1e-12 * np.trace(sub) * np.eye(free.sum()), grad[free])
        if grad[free] @ step[free] < 1e-13 * max(1.0, abs(f)):
            break
        t = 1.0
        while True:
            new = theta - t * step
            new[-1] = min(max(new[-1], 0.0), b_max)
            f_new = _nll(offset + x @ new, k, m)
            if f_new <= f or t < 1e-12:
                break
            t /= 2
        if f_new > f:
            break
        theta, f = new, f_new
    return theta, f


def fit_power_curve(n_total, rejections, replicates, target: float, *, n_range: tuple[float, float]
                    ) -> tuple[float, float, float, float, float]:
    """Binomial ML fit of ``Phi(z_target + b (sqrt(N) - sqrt(N*)))``, ``b >= 0``, to simulated counts.

    Returns ``(N*, b, N*_low, N*_high, lack_of_fit_p)``: the crossing (clipped to ``n_range``), the slope per
    unit of sqrt(N), the 95 % profile-likelihood interval of N* clipped to ``n_range``, and the deviance
    goodness-of-fit p-value (NaN with fewer than 3 sizes). Needs at least two distinct sizes.
    """
    s = np.sqrt(np.asarray(n_total, dtype=float))
    k, m = np.asarray(rejections, dtype=float), np.asarray(replicates, dtype=float)
    if np.unique(s).size < 2:
        raise ValueError("fit_power_curve needs at least two distinct sizes")
    zt = float(stats.norm.ppf(target))
    c_lo, c_hi = math.sqrt(n_range[0]), math.sqrt(n_range[1])
    b_max = 50.0 / np.diff(np.unique(s)).min()  # steeper than 0 -> 1 between two adjacent sizes
    # 1. the probit regression eta = alpha + beta (s - mean) / sd, beta >= 0 (centred for conditioning)
    mu, sd = s.mean(), s.std()
    p0 = np.clip(k.sum() / m.sum(), 1e-3, 1 - 1e-3)
    (alpha_hat, beta_hat), nll_hat = _probit_ml(np.column_stack([np.ones_like(s), (s - mu) / sd]),
                                                np.zeros_like(s), k, m, [stats.norm.ppf(p0), 1.0], b_max * sd)
    b_hat = beta_hat / sd
    c_hat = mu + (zt - alpha_hat) / b_hat if b_hat > 0 else (c_lo if alpha_hat >= zt else c_hi)
    c_hat = float(np.clip(c_hat, c_lo, c_hi))

    # 2. profile nll at a fixed crossing c (the slope re-fitted, warm-started at b_hat); quasi-convex in c, as
    #    b >= 0 restricts (alpha, beta) to half-lines through one point of a convex problem
    def profile(c: float) -> float:
        return _probit_ml((s - c)[:, None], np.full_like(s, zt), k, m, [max(b_hat, 1e-3)], b_max)[1]

    nll_hat = min(nll_hat, profile(c_hat))
    level = nll_hat + _CHI2_95 / 2
    g = lambda c: profile(c) - level  # noqa: E731  (non-decreasing away from c_hat)
    low = c_lo if g(c_lo) <= 0 else optimize.brentq(g, c_lo, c_hat, xtol=1e-5)
    high = c_hi if g(c_hi) <= 0 else optimize.brentq(g, c_hat, c_hi, xtol=1e-5)
    p_hat = k / m
    nll_sat = float(-(special.xlogy(k, p_hat) + special.xlogy(m - k, 1 - p_hat)).sum())
    dev, dof = 2 * (nll_hat - nll_sat), s.size - 2
    lof = float(stats.chi2.sf(max(dev, 0.0), dof)) if dof > 0 else math.nan
    return c_hat ** 2, float(b_hat), low ** 2, high ** 2, lof


def _bad(key: str, msg: str) -> InvalidScenarioError:
    return InvalidScenarioError(f"sample_size.{key}: {msg}")


def find_sample_size(power_at: PowerAt, target: float, *, n_start: int, n_min: int, n_max: int,
                     replicates: int, rng: np.random.Generator, step: int = 2,
                     max_evaluations: int = 12) -> SampleSizeResult:
    """Smallest multiple of ``step`` in ``[n_min, n_max]`` whose power reaches ``target``, by simulation.

    ``power_at(n, rng)`` simulates ``replicates`` trials of total size ``n`` with ``rng`` and returns
    ``(rejections, replicates)`` (checked: the count must come back unchanged, ``0 <= rejections <= replicates``;
    an undefined replicate counts as a non-rejection, as in :func:`analysis.power.power_curve`).
    ``n_start`` is rounded up and ``n_min`` / ``n_max`` inwards to multiples of ``step``.
    """
    if not (0.0 < target < 1.0):
        raise _bad("target", f"must be in (0, 1), got {target!r}")
    for key, v in (("step", step), ("replicates", replicates), ("max_evaluations", max_evaluations)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise _bad(key, f"must be a positive integer, got {v!r}")
    if max_evaluations < 3:
        raise _bad("max_evaluations", f"must be >= 3 (bracket and confirm), got {max_evaluations}")
    lo_grid = step * math.ceil(n_min / step)
    hi_grid = step * math.floor(n_max / step)
    if not (0 < lo_grid < hi_grid):
        raise _bad("n_min", f"[n_min, n_max] = [{n_min}, {n_max}] must hold two multiples of step {step} > 0")
    up = lambda x: int(min(hi_grid, max(lo_grid, step * math.ceil(x / step - 1e-9))))  # noqa: E731
    down = lambda x: int(min(hi_grid, max(lo_grid, step * math.floor(x / step + 1e-9))))  # noqa: E731
    evals: dict[int, Evaluation] = {}

    def evaluate(n: int) -> bool:
        rej, done = power_at(int(n), rng.spawn(1)[0])
        rej, done = int(rej), int(done)
        if done != replicates or not (0 <= rej <= done):
            raise InvalidDataError(f"power_at({n}) returned (rejections={rej}, replicates={done}); need "
                                   f"replicates == {replicates} (as asked) and 0 <= rejections <= replicates")
        evals[int(n)] = Evaluation(int(n), rej, done)
        return evals[n].power >= target

    # 1. bracket
    n = up(n_start)
    lo = hi = None
    if evaluate(n):
        hi = n
    else:
        lo = n
    moves = 0
    while (lo is None or hi is None) and len(evals) < max_evaluations:
        f = _GROWTH[moves] if moves < len(_GROWTH) else 2.0
        moves += 1
        if hi is None:
            if lo == hi_grid:
                break
            n = max(up(lo * f), lo + step)
            if evaluate(n):
                hi = n
            else:
                lo = n
        else:
            if hi == lo_grid:
                break
            n = min(down(hi / f), hi - step)
            if evaluate(n):
                hi = n
            else:
                lo = n
    if lo is None or hi is None:
        status = "n_min_sufficient" if hi == lo_grid else "n_max_insufficient" if lo == hi_grid \
            else "not_bracketed"
        return _result(target, status, lo_grid if status == "n_min_sufficient" else None, evals, step)

    lo1, hi1 = lo, hi

    # 2. bisect, keeping one evaluation for the confirmation
    while hi - lo > step and len(evals) < max_evaluations - 1:
        mid = down((lo + hi) / 2)
        if mid in (lo, hi):
            mid = lo + step
        if evaluate(mid):
            hi = mid
        else:
            lo = mid

    # 3. fit the points inside the first bracket (and confirmations); simulate the recommendation if needed
    confirmed: list[int] = []
    while True:
        ev = [e for e in evals.values() if lo1 <= e.n_total <= hi1 or e.n_total in confirmed]
        fit = fit_power_curve([e.n_total for e in ev], [e.rejections for e in ev], [e.replicates for e in ev],
                              target, n_range=(lo_grid, hi_grid))
        n_rec = up(fit[0])
        if n_rec in evals or len(evals) >= max_evaluations:
            break
        evaluate(n_rec)
        confirmed.append(n_rec)
    return _result(target, "found", n_rec, evals, step, fit, tuple(sorted(e.n_total for e in ev)))


def _result(target, status, n_rec, evals, step, fit=None, fit_n=()) -> SampleSizeResult:
    nan = math.nan
    ev = evals.get(n_rec) if n_rec is not None else None
    p, (plo, phi) = (ev.power, ev.ci()) if ev is not None else (nan, (nan, nan))
    if fit is None:
        crossing, slope, ci, lof = nan, nan, (None, None), nan
    else:
        crossing, slope, low, high, lof = fit
        ci = (step * math.ceil(low / step - 1e-9), step * math.ceil(high / step - 1e-9))
    return SampleSizeResult(target=float(target), status=status, n_recommended=n_rec, power=float(p),
                            power_ci_low=float(plo), power_ci_high=float(phi), n_crossing=float(crossing),
                            n_ci_low=ci[0], n_ci_high=ci[1], probit_slope=float(slope),
                            lack_of_fit_p=float(lof), step=int(step), evaluations=tuple(evals.values()),
                            fit_n=fit_n)
