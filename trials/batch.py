"""Simulated trials as arrays over a replicate axis: what the batched estimators consume."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TrialBatch"]


@dataclass(frozen=True, eq=False)
class TrialBatch:
    """``R`` replicate trials of ``N`` patients each.

    * ``treated``: ``(R, N)`` bool, the randomized arm (False = control).
    * longitudinal: ``y`` ``(R, N, V)`` float at ``visit_times`` ``(V,)`` (in months), NaN once a patient has
      dropped out (monotone missingness); ``y[..., 0]`` is the baseline visit.
    * tte: ``time`` ``(R, N)`` observed time (event or censoring) in the cohort's time unit, ``event`` ``(R, N)``
      bool.
    * continuous / binary: ``y`` ``(R, N)``.
    """

    outcome_type: str
    treated: np.ndarray
    y: np.ndarray | None = None
    visit_times: np.ndarray | None = None
    time: np.ndarray | None = None
    event: np.ndarray | None = None
    time_unit: str | None = None

    @property
    def replicates(self) -> int:
        return self.treated.shape[0]

    @property
    def n_total(self) -> int:
        return self.treated.shape[1]

    def replicate(self, r: int) -> "TrialBatch":
        """The ``r``-th trial as a batch of one (for single-trial views and tests)."""
        sl = slice(r, r + 1)
        return TrialBatch(self.outcome_type, self.treated[sl],
                          None if self.y is None else self.y[sl], self.visit_times,
                          None if self.time is None else self.time[sl],
                          None if self.event is None else self.event[sl], self.time_unit)
