"""Group-sequential looks on simulated trials: the data at each interim, its Z statistic, and the stopping rule.

Look ``k`` of ``K`` happens at information fraction ``f_k``:

* **time to event**: in calendar time, when ``ceil(f_k D)`` events have been observed, ``D`` the number of events
  of that replicate's final analysis (the design's event target, or all events by the end of follow-up); the
  data are cut there (:func:`trials.observe.cut_tte`: patients not yet entered contribute nothing);
* **other endpoints**: when the first ``n_k = ceil(f_k N)`` randomized patients (in entry order) have had their
  endpoint assessed (last visit, or ``endpoint.assessment_months`` after entry); those ``n_k`` patients are
  analysed, and every patient entered by then counts as enrolled (the expected sample size counts them).

The look's analysis is the design's (:func:`analysis.estimators.analyze_batch`), and its two-sided p-value becomes
``Z_k = s |Phi^{-1}(p_k / 2)|`` with ``s = +1`` when the estimate lies on the side of no effect the assumed effect
points to (``TrialDesign.effect_direction``; for a slowing of decline, times minus the sign of the control arm's
mean change, since slowing a decline raises the slope and slowing a rise lowers it), ``-1`` otherwise. The
efficacy and futility boundaries come from :func:`analysis.gs_boundaries.boundaries` (Lan-DeMets spending by
numerical integration) and :func:`analysis.group_sequential.sequential_outcome` applies them (futility obeyed).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import stats

from analysis.estimators import RATIO_ANALYSES, analyze_batch
from analysis.group_sequential import sequential_outcome
from analysis.gs_boundaries import boundaries
from trials.batch import TrialBatch
from trials.design import TrialDesign
from trials.observe import cut_tte, event_cut
from trials.simulate import months_to_unit

__all__ = ["design_boundaries", "signed_z", "look_data", "sequential_trials"]

@functools.lru_cache(maxsize=64)
def design_boundaries(looks, alpha: float):
    """Boundaries of the design's looks at two-sided level ``alpha`` (cached: they are deterministic)."""
    return boundaries(looks.gs_design(alpha))


def _orientation(batch: TrialBatch, design: TrialDesign) -> float:
    s = float(design.effect_direction) or 1.0
    if design.effect.kind == "slope_reduction" and batch.y is not None:
        ctrl = ~batch.treated
        change = batch.y[..., -1] - batch.y[..., 0]
        mean_change = np.nanmean(np.where(ctrl, change, np.nan))
        # slowing a decline (control change < 0) raises the slope: the assumed side is the direction itself;
        # slowing a rise lowers it: the opposite side
        s *= -1.0 if mean_change > 0 else 1.0
    return s


def signed_z(p_value, estimate, analysis: str, orientation: float) -> np.ndarray:
    """``Z`` from a two-sided p-value, positive when the estimate is on the side of ``orientation``."""
    p = np.asarray(p_value, dtype=float)
    est = np.asarray(estimate, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        centred = np.log(est) if analysis in RATIO_ANALYSES else est
        z = stats.norm.isf(p / 2.0)
    return np.where(np.sign(centred) * orientation >= 0, z, -z)


def look_data(batch: TrialBatch, design: TrialDesign, fraction: float, final: bool):
    """``(data, enrolled (R,), calendar month (R,), events (R,) or None)`` of one look."""
    R, N = batch.treated.shape
    entry = batch.entry if batch.entry is not None else np.zeros((R, N))
    if batch.outcome_type == "tte":
        unit = batch.time_unit
        to_unit = float(months_to_unit(1.0, unit))
        if final:
            data, cut = batch, batch.analysis_time * to_unit
        else:
            d = np.maximum(1, np.ceil(fraction * batch.event.sum(axis=1) - 1e-9)).astype(int)
            entry_u = entry * to_unit
            cut = event_cut(batch.time_full, batch.event_full, entry_u, d)
            time, event = cut_tte(batch.time_full, batch.event_full, entry_u, cut)
            data = TrialBatch("tte", batch.treated, time=time, event=event, time_unit=unit)
        enrolled = (entry * to_unit <= cut[:, None]).sum(axis=1)
        return data, enrolled, cut / to_unit, data.event.sum(axis=1)
    n_k = N if final else max(2, math.ceil(fraction * N - 1e-9))
    ep = design.endpoint
    if batch.outcome_type == "longitudinal" and batch.visit_times_actual is not None:
        # with visit windows an earlier patient's last visit can come after the n_k-th patient's
        when = np.max(entry[:, :n_k] + batch.visit_times_actual[:, :n_k, -1], axis=1)
    else:
        last = ep.visits_months[-1] if batch.outcome_type == "longitudinal" else ep.assessment_months
        when = entry[:, n_k - 1] + last           # entry is ascending: the n_k-th patient is the last assessed
    enrolled = (entry <= when[:, None]).sum(axis=1) if not final else np.full(R, N)
    return batch.first_patients(n_k), enrolled, when, None


def sequential_trials(batch: TrialBatch, design: TrialDesign, alpha: float) -> dict:
    """Every look of every replicate, and where each replicate stops: ``z`` ``(R, K)``, ``p_value`` /
    ``estimate`` / ``ci_low`` / ``ci_high`` / ``enrolled`` / ``month`` (and ``events`` for time to event)
    ``(R, K)``, the per-replicate :class:`~analysis.group_sequential.SequentialOutcome` ``outcome`` and the
    ``bounds``."""
    looks = design.looks
    bounds = design_boundaries(looks, float(alpha))
    K = looks.n_looks
    orient = _orientation(batch, design)
    keys = ("z", "p_value", "estimate", "ci_low", "ci_high", "enrolled", "month", "events")
    out = {k: np.full((batch.replicates, K), np.nan) for k in keys}
    for k, f in enumerate(looks.information_fractions):
        data, enrolled, month, events = look_data(batch, design, f, final=k == K - 1)
        res = analyze_batch(data, design.endpoint.analysis, alpha)
        for key in ("p_value", "estimate", "ci_low", "ci_high"):
            out[key][:, k] = np.asarray(getattr(res, key), dtype=float)
        out["z"][:, k] = signed_z(res.p_value, res.estimate, design.endpoint.analysis, orient)
        out["enrolled"][:, k], out["month"][:, k] = enrolled, month
        if events is not None:
            out["events"][:, k] = events
    if batch.outcome_type != "tte":
        del out["events"]
    out["outcome"] = sequential_outcome(out["z"], bounds)
    out["bounds"] = bounds
    return out
