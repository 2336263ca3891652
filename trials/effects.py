"""Treatment effects as counterfactual transforms of each synthetic patient's outcome.

Each effect kind maps to the parameter its latent outcome takes (see ``cohorts.generators.latent``):

=================  ===========================  ==============================================
effect             latent parameter              meaning for a treated patient
=================  ===========================  ==============================================
slope_reduction r  ``slowing = r``               decline(t) scaled by ``1 - r`` (r = 0.25: 25 % slower)
hazard_ratio h     ``log_hazard_ratio = log h``  hazard multiplied by ``h`` (same Exp(1) draw)
mean_difference d  ``shift = d``                 value shifted by ``d``
odds_ratio o       ``log_odds_ratio = log o``    odds multiplied by ``o`` (same uniform draw)
=================  ===========================  ==============================================

Control patients get the null parameter (0), so the same patient under control and under treatment differs
only by the effect: a clean counterfactual.
"""

from __future__ import annotations

import math

import numpy as np

from trials.design import Effect

__all__ = ["latent_parameter", "per_patient_parameter"]


def latent_parameter(effect: Effect) -> float:
    """The effect on the scale its latent outcome takes (0 means no effect)."""
    if effect.kind in ("hazard_ratio", "odds_ratio"):
        return math.log(effect.value)
    return float(effect.value)


def per_patient_parameter(effect: Effect, treated: np.ndarray) -> np.ndarray:
    """Per-patient latent effect parameter: ``latent_parameter(effect)`` where treated, 0 elsewhere."""
    return np.where(np.asarray(treated, dtype=bool), latent_parameter(effect), 0.0)
