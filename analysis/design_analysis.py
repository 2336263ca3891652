"""One analysis of every simulated trial of a design, whatever its conduct: what the power simulation consumes.

:func:`analyze_design` returns a :class:`SimulatedTrials` for ``R`` replicates:

* two arms, one analysis: the design's analysis (:func:`analysis.estimators.analyze_batch`); rejected when the
  two-sided p-value is below ``alpha``;
* a **hybrid** control: the same analysis with the synthetic controls counted as controls; the pure randomized
  comparison of the same replicate (synthetic controls left out) is kept beside it (``randomized_*``);
* **k treatments** vs one control: each comparison (:mod:`analysis.multiarm`), p-values adjusted by the design's
  ``multiplicity``; the trial "succeeds" (``rejected``) when any treatment is significant after adjustment
  (disjunctive power); the per-arm and all-arms rejections are kept; ``estimate`` is the first treatment's;
* **group-sequential looks** (:mod:`analysis.sequential_sim`): rejected when an efficacy boundary is crossed; the
  estimate, interval and p-value are those of the look where the trial stopped (naive, not adjusted for the
  stopping, so their bias and coverage are what a naive analysis would show), and the sample size, events and
  calendar month are those at that look.

``n_enrolled`` counts randomized patients in the trial at its (stopping) analysis, ``events`` observed events
(time to event), ``month`` the calendar month of that analysis.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analysis.estimators import analyze_batch
from trials.batch import TrialBatch
from trials.design import TrialDesign

__all__ = ["SimulatedTrials", "analyze_design", "concat_simulated"]


@dataclass(frozen=True, eq=False)
class SimulatedTrials:
    """Per replicate ``(R,)``: ``p_value``, ``estimate``, ``ci_low``, ``ci_high``, ``rejected``, ``n_enrolled``,
    ``month``, ``events`` (NaN when not time to event); ``extras``: design-specific arrays (per-arm results,
    per-look statistics, the randomized-only comparison of a hybrid design)."""

    p_value: np.ndarray
    estimate: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    rejected: np.ndarray
    n_enrolled: np.ndarray
    month: np.ndarray
    events: np.ndarray
    extras: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.p_value)


def concat_simulated(parts: list[SimulatedTrials]) -> SimulatedTrials:
    """Chunks of replicates joined in order."""
    def cat(vals):
        return np.concatenate(vals, axis=0)
    fields = ("p_value", "estimate", "ci_low", "ci_high", "rejected", "n_enrolled", "month", "events")
    extras = {k: cat([p.extras[k] for p in parts]) for k in parts[0].extras
              if isinstance(parts[0].extras[k], np.ndarray)}
    extras.update({k: v for k, v in parts[0].extras.items() if not isinstance(v, np.ndarray)})
    return SimulatedTrials(*(cat([getattr(p, f) for p in parts]) for f in fields), extras=extras)


def _events(batch: TrialBatch) -> np.ndarray:
    if batch.outcome_type != "tte":
        return np.full(batch.replicates, np.nan)
    ev = batch.event if batch.synthetic is None else batch.event & ~batch.synthetic
    return ev.sum(axis=1).astype(float)


def _month(batch: TrialBatch) -> np.ndarray:
    return (np.full(batch.replicates, np.nan) if batch.analysis_time is None
            else np.asarray(batch.analysis_time, dtype=float))


def _enrolled(batch: TrialBatch) -> np.ndarray:
    n = batch.n_total if batch.synthetic is None else int((~batch.synthetic[0]).sum())
    if batch.entry is None or batch.analysis_time is None or batch.outcome_type != "tte":
        return np.full(batch.replicates, float(n))
    entry = batch.entry[:, :n]
    return (entry <= batch.analysis_time[:, None]).sum(axis=1).astype(float)


def _result_arrays(res) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(getattr(res, k), dtype=float) for k in ("p_value", "estimate", "ci_low", "ci_high"))


def analyze_design(batch: TrialBatch, design: TrialDesign, alpha: float) -> SimulatedTrials:
    """See the module docstring."""
    analysis = design.endpoint.analysis
    if design.looks is not None:
        from analysis.sequential_sim import sequential_trials
        seq = sequential_trials(batch, design, alpha)
        out, rows = seq["outcome"], np.arange(batch.replicates)
        at = out.stop_look - 1
        pick = {k: seq[k][rows, at] for k in ("p_value", "estimate", "ci_low", "ci_high", "enrolled", "month")}
        events = seq["events"][rows, at] if "events" in seq else np.full(batch.replicates, np.nan)
        extras = {"z": seq["z"], "stop_look": out.stop_look, "stop_reason": np.asarray(out.reason, dtype=object),
                  "enrolled_by_look": seq["enrolled"], "month_by_look": seq["month"], "bounds": seq["bounds"]}
        if "events" in seq:
            extras["events_by_look"] = seq["events"]
        return SimulatedTrials(pick["p_value"], pick["estimate"], pick["ci_low"], pick["ci_high"],
                               np.asarray(out.rejected, bool), pick["enrolled"], pick["month"], events, extras)
    if design.n_treatments > 1:
        from analysis.multiarm import adjust_p_values, analyze_comparisons
        cmp = analyze_comparisons(batch, analysis, alpha)
        adj = adjust_p_values(cmp["p_value"], design.multiplicity)
        rej = np.where(np.isnan(adj), False, adj < alpha)
        extras = {"arm_p_value": cmp["p_value"], "arm_p_adjusted": adj, "arm_estimate": cmp["estimate"],
                  "arm_rejected": rej, "all_rejected": rej.all(axis=1)}
        with np.errstate(invalid="ignore"):
            decision_p = np.where(np.isnan(adj).all(axis=1), np.nan, np.nanmin(np.where(np.isnan(adj), np.inf, adj), axis=1))
        return SimulatedTrials(decision_p, cmp["estimate"][:, 0], cmp["ci_low"][:, 0], cmp["ci_high"][:, 0],
                               rej.any(axis=1), _enrolled(batch), _month(batch), _events(batch), extras)
    res = analyze_batch(batch, analysis, alpha)
    p, est, lo, hi = _result_arrays(res)
    extras = {}
    if batch.synthetic is not None:
        rp, re, rlo, rhi = _result_arrays(analyze_batch(batch.randomized(), analysis, alpha))
        extras = {"randomized_p_value": rp, "randomized_estimate": re, "randomized_ci_low": rlo,
                  "randomized_ci_high": rhi, "randomized_rejected": np.where(np.isnan(rp), False, rp < alpha)}
    return SimulatedTrials(p, est, lo, hi, np.where(np.isnan(p), False, p < alpha), _enrolled(batch),
                           _month(batch), _events(batch), extras)
