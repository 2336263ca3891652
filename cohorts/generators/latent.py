"""Synthetic patients with their latent outcome parts: what a trial needs to apply an effect.

A generator's :meth:`~cohorts.generators.base.CohortGenerator.draw` returns a :class:`PatientDraw`: the
baseline covariates of ``n`` synthetic patients and, for their outcome, the random pieces from which the
outcome is *realized* under control or under a treatment effect. Effects are counterfactual transforms: the
same patient (same latent draws) gives the control outcome with no effect and the treated outcome with one.

All arrays are flat over patients (shape ``(n,)``); the trials layer draws ``replicates * n_total`` patients at
once and reshapes to ``(replicates, n_total)``. Every realization method is vectorised and takes per-patient
effect arrays: responder and subgroup effects are masks on those arrays (``trials.effects``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import math

import numpy as np
import pandas as pd

__all__ = ["PatientDraw", "SurvivalLatent", "TrajectoryLatent", "ContinuousLatent", "BinaryLatent"]


@dataclass(frozen=True, eq=False)
class SurvivalLatent:
    """Time to event under proportional hazards: ``T = H0^{-1}(E / exp(lp + log_hr))``.

    ``cumhaz_draw`` holds ``E ~ Exp(1)`` per patient, ``lp`` the linear predictor from the baseline covariates,
    and ``inverse_cumhaz`` the baseline cumulative hazard's inverse (vectorised), in the data's time unit.
    A hazard ratio ``hr`` for a treated patient keeps ``E`` and multiplies the hazard: the counterfactual event
    time of the same patient. Censoring is not part of the latent: the trial design sets it (follow-up, dropout).

    ``cumhaz`` (optional) is the baseline cumulative hazard ``H0`` itself; :meth:`event_time_piecewise` needs it
    only at the break points, and without it inverts ``inverse_cumhaz`` there numerically (bracketing and
    bisection to the last bit of a double; :meth:`baseline_cumhaz`).
    """

    cumhaz_draw: np.ndarray
    lp: np.ndarray
    inverse_cumhaz: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    time_unit: str = "days"
    cumhaz: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)

    def event_time(self, log_hazard_ratio: np.ndarray | float = 0.0) -> np.ndarray:
        h = self.cumhaz_draw * np.exp(-(self.lp + log_hazard_ratio))
        return self.inverse_cumhaz(h)

    def baseline_cumhaz(self, t) -> np.ndarray:
        """``H0(t)`` (array like ``t``): ``cumhaz`` when given, else ``inverse_cumhaz`` inverted numerically."""
        t = np.asarray(t, dtype=float)
        if self.cumhaz is not None:
            return np.asarray(self.cumhaz(t), dtype=float)
        return np.array([_invert_increasing(self.inverse_cumhaz, x) for x in t.ravel()]).reshape(t.shape)

    def event_time_piecewise(self, breaks, log_hazard_ratios) -> np.ndarray:
        """Event times under a piecewise-constant hazard ratio, from the same ``E`` as :meth:`event_time`.

        ``breaks`` ``b_1 < ... < b_K`` (positive, in the time unit) cut time into pieces ``[b_j, b_{j+1})`` with
        ``b_0 = 0``, ``b_{K+1} = inf``; ``log_hazard_ratios`` is ``(K + 1,)`` or per patient ``(n, K + 1)``. The
        patient's cumulative hazard is ``exp(lp) H1(t)``, ``H1(t) = sum_j HR_j [H0(min(t, b_{j+1})) - H0(b_j)]``
        over the pieces started by ``t``, and ``T`` solves ``exp(lp) H1(T) = E`` exactly: with
        ``e = E exp(-lp)`` and ``G_j = H1(b_j)``, ``T`` lies in the piece ``j`` with ``G_j <= e < G_{j+1}`` and
        ``T = H0^{-1}(H0(b_j) + (e - G_j) / HR_j)``. A patient whose hazard ratios are all 1 gets
        ``H0^{-1}(e)``, bit for bit the control time of :meth:`event_time`; one with ``HR_0 = 1`` (a delayed
        effect) whose control event falls before ``b_1`` keeps that same time.
        """
        e = self.cumhaz_draw * np.exp(-self.lp)
        b = np.asarray(breaks, dtype=float).ravel()
        K, n = len(b), len(e)
        if K and (not np.all(np.isfinite(b)) or b[0] <= 0 or np.any(np.diff(b) <= 0)):
            raise ValueError(f"breaks must be positive, finite and strictly increasing, got {list(b)}")
        lhr = np.asarray(log_hazard_ratios, dtype=float)
        lhr = np.broadcast_to(lhr, (n, K + 1)) if lhr.ndim == 1 else lhr
        if lhr.shape != (n, K + 1):
            raise ValueError(f"log_hazard_ratios must have shape ({K + 1},) or ({n}, {K + 1}), got {lhr.shape}")
        if K == 0:
            return self.event_time(lhr[:, 0])
        H_b = np.r_[0.0, self.baseline_cumhaz(b)]            # H0 at b_0 = 0, b_1, ..., b_K
        dH = np.diff(H_b)
        dH = np.where(np.isnan(dH), np.inf, dH)               # beyond the support: H0 = inf from there on
        hr = np.exp(lhr)
        G = np.zeros((n, K + 1))
        G[:, 1:] = np.cumsum(hr[:, :K] * dH, axis=1)           # H1 at b_0, ..., b_K
        j = np.sum(G[:, 1:] <= e[:, None], axis=1)            # the piece where H1 reaches e
        rows = np.arange(n)
        arg = H_b[j] + (e - G[rows, j]) / hr[rows, j]
        arg = np.where(np.all(lhr == 0.0, axis=1), e, arg)
        return self.inverse_cumhaz(arg)

    def take(self, idx) -> "SurvivalLatent":
        return SurvivalLatent(self.cumhaz_draw[idx], self.lp[idx], self.inverse_cumhaz, self.time_unit, self.cumhaz)


def _invert_increasing(fn: Callable[[np.ndarray], np.ndarray], target: float) -> float:
    """The ``h >= 0`` with ``fn(h) = target`` for an increasing ``fn`` (``H0`` from ``H0^{-1}``); ``inf`` when
    ``fn`` never reaches ``target``. Brackets by doubling/halving, then bisects until the bracket is two
    adjacent doubles."""
    f = lambda h: float(np.asarray(fn(np.array([h], dtype=float)), dtype=float).ravel()[0])  # noqa: E731
    if not target > 0:
        return 0.0
    lo, hi = 0.5, 1.0
    if f(hi) < target:
        while f(hi) < target:
            lo, hi = hi, hi * 2.0
            if not np.isfinite(hi):
                return math.inf
    else:
        while f(lo) >= target:
            lo, hi = lo / 2.0, lo
            if lo == 0.0:
                return hi if f(hi) == target else 0.0
    while True:
        mid = 0.5 * (lo + hi)
        if not lo < mid < hi:
            return hi
        if f(mid) < target:
            lo = mid
        else:
            hi = mid


@dataclass(frozen=True, eq=False)
class TrajectoryLatent:
    """Longitudinal score ``y(t) = start + (1 - slowing) * decline(t) + noise``, clipped to ``[lower, upper]``.

    ``start`` is each patient's true value at ``t = 0`` (baseline visit); ``decline`` maps visit times
    (shape ``(V,)``, in the visit unit) to each patient's noise-free change from baseline, shape ``(n, V)``,
    with ``decline(0) == 0``. A treatment that slows decline by a fraction ``r`` scales the individual decline by
    ``1 - r``; noise (sd ``sigma``) is independent per visit. ``integer`` rounds realized values (e.g. ALSFRS-R);
    ``grid`` (optional) moves each realized value to the nearest of a sorted set of values (e.g. the values the
    data can take, such as square roots of cell counts).

    Noise is ``N(0, sigma^2)`` unless ``noise_pool`` is given: then each visit's noise is ``sigma * noise_pool[j]``
    with ``j`` uniform over the pool (a residual bootstrap; the pool should have mean 0 and SD 1, e.g. the fitted
    model's standardized conditional residuals), so skewed or heavy-tailed residuals are reproduced;
    ``noise_scale`` (optional, per patient, fixed for the patient) multiplies the noise. Either way
    the draws depend only on ``rng`` and the output shape, never on ``slowing``: the same ``rng`` state gives the
    same patient the same noise under control and under treatment.
    """

    start: np.ndarray
    decline: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    sigma: float
    lower: float | None = None
    upper: float | None = None
    integer: bool = False
    time_unit: str = "months"
    #: per-patient parameters behind ``decline`` (for inspection and ``take``)
    params: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    take_fn: Callable[[np.ndarray], "TrajectoryLatent"] | None = field(default=None, repr=False)
    #: standardized residuals to resample as noise (``None``: Gaussian noise)
    noise_pool: np.ndarray | None = field(default=None, repr=False)
    #: per-patient multiplier of ``sigma`` (``None``: 1 for every patient)
    noise_scale: np.ndarray | None = field(default=None, repr=False)
    #: sorted values a realized score is moved to (the nearest; after rounding and clipping), ``None``: any value
    grid: np.ndarray | None = field(default=None, repr=False)

    def values(self, visit_times, *, slowing: np.ndarray | float = 0.0, rng: np.random.Generator) -> np.ndarray:
        """Realized scores at ``visit_times``, shape ``(n, V)``; no missing values (dropout is the design's)."""
        t = np.asarray(visit_times, dtype=float)
        slowing = np.asarray(slowing, dtype=float)
        if slowing.ndim == 1:
            slowing = slowing[:, None]
        y = self.start[:, None] + (1.0 - slowing) * self.decline(t)
        if self.noise_pool is None:
            noise = rng.normal(0.0, self.sigma, size=y.shape)
        else:
            noise = self.sigma * np.asarray(self.noise_pool)[rng.integers(0, len(self.noise_pool), size=y.shape)]
        if self.noise_scale is not None:
            noise = noise * np.asarray(self.noise_scale, dtype=float).reshape(-1, 1)
        y = y + noise
        if self.integer:
            y = np.rint(y)
        if self.lower is not None or self.upper is not None:
            y = np.clip(y, self.lower, self.upper)
        if self.grid is not None and len(self.grid) > 1:
            g = np.asarray(self.grid, dtype=float)
            i = np.clip(np.searchsorted(g, y), 1, len(g) - 1)
            y = np.where(y - g[i - 1] <= g[i] - y, g[i - 1], g[i])
        return y

    def take(self, idx) -> "TrajectoryLatent":
        if self.take_fn is None:
            raise NotImplementedError("this trajectory latent cannot be subset")
        return self.take_fn(idx)


@dataclass(frozen=True, eq=False)
class ContinuousLatent:
    """A single continuous value ``y = mean + resid + shift`` (clipped to bounds when given)."""

    mean: np.ndarray
    resid: np.ndarray
    lower: float | None = None
    upper: float | None = None

    def value(self, shift: np.ndarray | float = 0.0) -> np.ndarray:
        y = self.mean + self.resid + shift
        if self.lower is not None or self.upper is not None:
            y = np.clip(y, self.lower, self.upper)
        return y

    def take(self, idx) -> "ContinuousLatent":
        return ContinuousLatent(self.mean[idx], self.resid[idx], self.lower, self.upper)


@dataclass(frozen=True, eq=False)
class BinaryLatent:
    """A binary response ``y = U < p``, ``p = expit(lp + log_or)``: the same ``U`` gives the counterfactual.

    An odds ratio acts on the log-odds; a risk difference ``rd`` shifts each patient's probability to
    ``clip(p + rd, 0, 1)`` with the same ``U``, so ``y`` changes only for patients with ``U`` between the two
    probabilities (``rd < 0``: responders may become non-responders, never the reverse). Clipping means the
    realized average difference is ``mean(clip(p + rd, 0, 1)) - mean(p)``, which equals ``rd`` only when no
    patient's ``p + rd`` leaves ``[0, 1]`` and is smaller in magnitude otherwise.
    """

    lp: np.ndarray
    uniform: np.ndarray

    def probability(self, log_odds_ratio: np.ndarray | float = 0.0,
                    risk_difference: np.ndarray | float = 0.0) -> np.ndarray:
        """Each patient's probability of ``y = 1``."""
        p = 1.0 / (1.0 + np.exp(-(self.lp + log_odds_ratio)))
        if np.any(np.asarray(risk_difference) != 0):
            p = np.clip(p + risk_difference, 0.0, 1.0)
        return p

    def value(self, log_odds_ratio: np.ndarray | float = 0.0,
              risk_difference: np.ndarray | float = 0.0) -> np.ndarray:
        return (self.uniform < self.probability(log_odds_ratio, risk_difference)).astype(np.int8)

    def take(self, idx) -> "BinaryLatent":
        return BinaryLatent(self.lp[idx], self.uniform[idx])


OutcomeLatent = SurvivalLatent | TrajectoryLatent | ContinuousLatent | BinaryLatent


@dataclass(frozen=True, eq=False)
class PatientDraw:
    """``n`` synthetic patients: baseline covariates (schema columns, no id) and the latent outcome.

    ``info`` carries facts about how the patients were drawn (e.g. ``acceptance_rate`` under eligibility
    criteria), for the UI and the report.
    """

    #: the baseline covariates: a frame, or :class:`~cohorts.generators.sampled_columns.SampledColumns` made into
    #: a frame only when :attr:`baseline` is read
    source: object
    outcome: OutcomeLatent
    info: dict = field(default_factory=dict)

    @property
    def baseline(self) -> pd.DataFrame:
        return self.source if isinstance(self.source, pd.DataFrame) else self.source.frame()

    def __len__(self) -> int:
        return len(self.source)

    def take(self, idx) -> "PatientDraw":
        """The patients at positions ``idx`` (an integer index array), baseline and latent outcome together."""
        idx = np.asarray(idx)
        return PatientDraw(self.baseline.iloc[idx].reset_index(drop=True), self.outcome.take(idx), dict(self.info))
