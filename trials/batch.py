"""Simulated trials as arrays over a replicate axis: what the batched estimators consume."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = ["TrialBatch", "PATIENT_FIELDS"]

#: the fields with a replicate axis then a patient axis (``(R, N)`` or ``(R, N, V)``)
PATIENT_FIELDS = ("treated", "y", "time", "event", "arm", "entry", "visit_times_actual", "time_full", "event_full",
                  "synthetic")


@dataclass(frozen=True, eq=False)
class TrialBatch:
    """``R`` replicate trials of ``N`` patients each.

    * ``treated``: ``(R, N)`` bool, the randomized arm (False = control).
    * longitudinal: ``y`` ``(R, N, V)`` float at ``visit_times`` ``(V,)`` (in months), NaN once a patient has
      dropped out (monotone missingness); ``y[..., 0]`` is the baseline visit.
    * tte: ``time`` ``(R, N)`` observed time (event or censoring) in the cohort's time unit, ``event`` ``(R, N)``
      bool.
    * continuous / binary: ``y`` ``(R, N)``.

    Conduct (filled by :func:`trials.simulate.simulate_trials`; ``None`` when not applicable):

    * ``arm``: ``(R, N)`` int8 arm index (0 = control; ``treated`` is ``arm == 1``; a multi-arm batch is
      analysed per comparison, :func:`analysis.multiarm.comparison_groups`);
    * ``entry``: ``(R, N)`` calendar entry month, ascending within a replicate (0 without accrual);
    * ``analysis_time``: ``(R,)`` calendar month of the (final) analysis;
    * ``visit_times_actual``: ``(R, N, V)`` months at which each visit happened (visit windows);
    * tte: ``time_full`` / ``event_full``: each patient's observation without the calendar data cut (only
      follow-up and dropout), from which interim data cuts are taken (:mod:`trials.datacut`);
    * ``synthetic``: ``(R, N)`` bool, synthetic controls of a hybrid design (appended after the randomized
      patients, with ``entry`` 0).
    """

    outcome_type: str
    treated: np.ndarray
    y: np.ndarray | None = None
    visit_times: np.ndarray | None = None
    time: np.ndarray | None = None
    event: np.ndarray | None = None
    time_unit: str | None = None
    arm: np.ndarray | None = None
    entry: np.ndarray | None = None
    analysis_time: np.ndarray | None = None
    visit_times_actual: np.ndarray | None = None
    time_full: np.ndarray | None = None
    event_full: np.ndarray | None = None
    synthetic: np.ndarray | None = None

    @property
    def replicates(self) -> int:
        return self.treated.shape[0]

    @property
    def n_total(self) -> int:
        return self.treated.shape[1]

    @property
    def n_arms(self) -> int:
        return 2 if self.arm is None else int(self.arm.max(initial=1)) + 1

    def _take(self, rows, cols=slice(None)) -> "TrialBatch":
        cut = {f: None if getattr(self, f) is None else getattr(self, f)[rows][:, cols] for f in PATIENT_FIELDS}
        return replace(self, analysis_time=None if self.analysis_time is None else self.analysis_time[rows], **cut)

    def replicate(self, r: int) -> "TrialBatch":
        """The ``r``-th trial as a batch of one (for single-trial views and tests)."""
        return self._take(slice(r, r + 1))

    def first_patients(self, n: int) -> "TrialBatch":
        """The first ``n`` patients to enter each replicate (a column slice)."""
        return self._take(slice(None), slice(0, int(n)))

    def randomized(self) -> "TrialBatch":
        """Without a hybrid design's synthetic controls (the pure randomized comparison)."""
        if self.synthetic is None:
            return self
        n = int((~self.synthetic[0]).sum())
        return replace(self.first_patients(n), synthetic=None)
