"""Treatment effects as counterfactual transforms of each synthetic patient's outcome.

Each effect kind maps to the parameter its latent outcome takes (see ``cohorts.generators.latent``):

=================  ===========================  ==============================================
effect             latent parameter              meaning for a treated patient
=================  ===========================  ==============================================
slope_reduction r  ``slowing = r``               decline(t) scaled by ``1 - r`` (r = 0.25: 25 % slower)
hazard_ratio h     ``log_hazard_ratio = log h``  hazard multiplied by ``h`` (same Exp(1) draw)
mean_difference d  ``shift = d``                 value shifted by ``d``
odds_ratio o       ``log_odds_ratio = log o``    odds multiplied by ``o`` (same uniform draw)
risk_difference d  ``risk_difference = d``       probability ``clip(p + d, 0, 1)`` (same uniform draw)
=================  ===========================  ==============================================

Control patients get the null parameter (0), so the same patient under control and under treatment differs
only by the effect: a clean counterfactual. The effect's modifiers are per-patient masks on that parameter:

* ``responder_fraction`` f: each patient responds with probability f (one Bernoulli draw per patient from the
  simulation's generator, made for every patient, used for the treated); a treated non-responder gets 0.
* ``subgroup`` S: a treated responder gets the value inside S and ``outside_value`` (default: no effect)
  outside it; S is evaluated on the drawn baseline covariates with :mod:`cohorts.criteria` (a patient whose
  subgroup condition is unknown, e.g. a missing covariate, counts as outside).
* ``delay`` / ``until`` (hazard ratio): the per-patient log hazard ratio applies only on the pieces of time the
  schedule switches on (:meth:`~trials.design.Effect.hazard_ratio_schedule`); see
  :meth:`~cohorts.generators.latent.SurvivalLatent.event_time_piecewise` for the exact event times.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cohorts.errors import InvalidScenarioError
from trials.design import Effect

__all__ = ["latent_parameter", "per_patient_parameter", "responders", "in_subgroup", "piecewise_log_hazard_ratios"]


def latent_parameter(effect: Effect, value: float | None = None) -> float:
    """The effect (or ``value`` of its kind) on the scale its latent outcome takes (0 means no effect)."""
    v = effect.value if value is None else float(value)
    if effect.kind in ("hazard_ratio", "odds_ratio"):
        return math.log(v)
    return float(v)


def responders(effect: Effect, n: int, *, rng: np.random.Generator | None = None) -> np.ndarray:
    """``(n,)`` bool: who responds. All True at ``responder_fraction = 1`` (no draw); otherwise one uniform draw
    per patient from ``rng``, True with probability ``responder_fraction``."""
    if effect.responder_fraction >= 1.0:
        return np.ones(n, dtype=bool)
    if rng is None:
        raise TypeError("an effect with responder_fraction < 1 needs rng= to draw who responds")
    return rng.random(n) < effect.responder_fraction


def in_subgroup(effect: Effect, baseline: pd.DataFrame | None, n: int) -> np.ndarray:
    """``(n,)`` bool: whose baseline satisfies the effect's ``subgroup`` (all True without one)."""
    crit = effect.criteria()
    if crit is None:
        return np.ones(n, dtype=bool)
    if baseline is None or len(baseline) != n:
        raise TypeError(f"an effect with a subgroup needs the {n} patients' baseline covariates (baseline=)")
    try:
        return crit.evaluate(baseline)
    except InvalidScenarioError as exc:
        raise InvalidScenarioError([f"effect.subgroup: {p}" for p in exc.problems]) from None


def per_patient_parameter(effect: Effect, treated: np.ndarray, *, baseline: pd.DataFrame | None = None,
                          rng: np.random.Generator | None = None) -> np.ndarray:
    """Per-patient latent effect parameter: 0 for controls and treated non-responders, the effect's parameter
    for treated responders in the subgroup, ``outside_value``'s (default 0) for treated responders outside it.

    ``baseline`` (the patients' covariates) is needed with a subgroup, ``rng`` with a responder fraction < 1.
    """
    treated = np.asarray(treated, dtype=bool)
    n = treated.size
    gets = treated & responders(effect, n, rng=rng)
    inside = in_subgroup(effect, baseline, n)
    outside = 0.0 if effect.outside_value is None else latent_parameter(effect, effect.outside_value)
    return np.where(gets, np.where(inside, latent_parameter(effect), outside), 0.0)


def piecewise_log_hazard_ratios(effect: Effect, param: np.ndarray) -> tuple[tuple[float, ...], np.ndarray]:
    """``(breaks, (n, K + 1) log hazard ratios)``: each patient's ``param`` on the pieces the effect's schedule
    switches on, 0 elsewhere (for :meth:`~cohorts.generators.latent.SurvivalLatent.event_time_piecewise`)."""
    breaks, on = effect.hazard_ratio_schedule()
    param = np.asarray(param, dtype=float).reshape(-1, 1)
    return breaks, param * np.asarray(on, dtype=float)[None, :]
