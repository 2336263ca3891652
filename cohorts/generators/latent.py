"""Synthetic patients with their latent outcome parts: what a trial needs to apply an effect.

A generator's :meth:`~cohorts.generators.base.CohortGenerator.draw` returns a :class:`PatientDraw`: the
baseline covariates of ``n`` synthetic patients and, for their outcome, the random pieces from which the
outcome is *realized* under control or under a treatment effect. Effects are counterfactual transforms: the
same patient (same latent draws) gives the control outcome with no effect and the treated outcome with one.

All arrays are flat over patients (shape ``(n,)``); the trials layer draws ``replicates * n_total`` patients at
once and reshapes to ``(replicates, n_total)``. Every realization method is vectorised and takes per-patient
effect arrays, so subgroup effects later are a mask away.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

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
    """

    cumhaz_draw: np.ndarray
    lp: np.ndarray
    inverse_cumhaz: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    time_unit: str = "days"

    def event_time(self, log_hazard_ratio: np.ndarray | float = 0.0) -> np.ndarray:
        h = self.cumhaz_draw * np.exp(-(self.lp + log_hazard_ratio))
        return self.inverse_cumhaz(h)

    def take(self, idx) -> "SurvivalLatent":
        return SurvivalLatent(self.cumhaz_draw[idx], self.lp[idx], self.inverse_cumhaz, self.time_unit)


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
    """A binary response ``y = U < expit(lp + log_or)``: the same ``U`` gives the counterfactual under an OR."""

    lp: np.ndarray
    uniform: np.ndarray

    def value(self, log_odds_ratio: np.ndarray | float = 0.0) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-(self.lp + log_odds_ratio)))
        return (self.uniform < p).astype(np.int8)

    def take(self, idx) -> "BinaryLatent":
        return BinaryLatent(self.lp[idx], self.uniform[idx])


OutcomeLatent = SurvivalLatent | TrajectoryLatent | ContinuousLatent | BinaryLatent


@dataclass(frozen=True, eq=False)
class PatientDraw:
    """``n`` synthetic patients: baseline covariates (schema columns, no id) and the latent outcome.

    ``info`` carries facts about how the patients were drawn (e.g. ``acceptance_rate`` under eligibility
    criteria), for the UI and the report.
    """

    baseline: pd.DataFrame
    outcome: OutcomeLatent
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.baseline)

    def take(self, idx) -> "PatientDraw":
        """The patients at positions ``idx`` (an integer index array), baseline and latent outcome together."""
        idx = np.asarray(idx)
        return PatientDraw(self.baseline.iloc[idx].reset_index(drop=True), self.outcome.take(idx), dict(self.info))
