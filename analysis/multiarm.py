"""Multi-arm trials (k treatments vs one control): pairwise comparisons and multiplicity adjustment, batched.

Each treatment arm ``j`` is compared with the shared control by the design's analysis on the control and arm-``j``
patients only. Their number differs between replicates under simple or stratified block randomization, so the
replicates are grouped by that number (a handful of groups) and each group is analysed as one rectangular batch,
keeping the patients' entry order.

Adjusted p-values over the ``m`` comparisons of a replicate (``p_(1) <= ... <= p_(m)`` sorted; each hypothesis
``j`` is rejected when its adjusted p-value is below ``alpha``; familywise error at most ``alpha``):

* ``bonferroni``: ``min(1, m p_j)``;
* ``holm`` (Holm 1979, step-down): ``p~_(i) = max_{l <= i} min(1, (m - l + 1) p_(l))``;
* ``hochberg`` (Hochberg 1988, step-up; valid under independence or positive dependence, as here through the
  shared control): ``p~_(i) = min_{l >= i} min(1, (m - l + 1) p_(l))``;
* ``none``: the raw p-values.

Checked against ``statsmodels.stats.multitest.multipletests`` row by row. A NaN p-value (an undefined
comparison) counts as 1 in the adjustment and stays NaN.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from analysis.estimators import analyze_batch
from trials.batch import PATIENT_FIELDS, TrialBatch

__all__ = ["adjust_p_values", "comparison_groups", "analyze_comparisons"]

_OUTCOME_FIELDS = tuple(f for f in PATIENT_FIELDS if f not in ("treated", "arm"))


def adjust_p_values(p: np.ndarray, method: str) -> np.ndarray:
    """Adjusted p-values over the last axis (``(R, m)``), see the module docstring."""
    p = np.asarray(p, dtype=float)
    nan = np.isnan(p)
    q = np.where(nan, 1.0, p)
    m = q.shape[-1]
    if method == "none":
        return p.copy()
    if method == "bonferroni":
        out = np.minimum(1.0, m * q)
    elif method in ("holm", "hochberg"):
        order = np.argsort(q, axis=-1, kind="stable")
        srt = np.take_along_axis(q, order, axis=-1)
        scaled = np.minimum(1.0, (m - np.arange(m)) * srt)
        if method == "holm":
            adj = np.maximum.accumulate(scaled, axis=-1)
        else:
            adj = np.flip(np.minimum.accumulate(np.flip(scaled, -1), axis=-1), -1)
        out = np.empty_like(q)
        np.put_along_axis(out, order, adj, axis=-1)
    else:
        raise ValueError(f"unknown multiplicity adjustment {method!r}; use holm, bonferroni, hochberg or none")
    return np.where(nan, np.nan, out)


def comparison_groups(batch: TrialBatch, arm: int):
    """``[(rows, sub_batch), ...]``: the control and arm-``arm`` patients of each replicate, grouped by their
    number; ``sub_batch.treated`` marks arm ``arm``."""
    keep = (batch.arm == 0) | (batch.arm == arm)
    counts = keep.sum(axis=1)
    out = []
    for c in np.unique(counts):
        rows = np.flatnonzero(counts == c)
        idx = np.argsort(~keep[rows], axis=1, kind="stable")[:, :c]      # kept patients, in entry order
        take = {f: (None if getattr(batch, f) is None else
                    np.take_along_axis(getattr(batch, f)[rows], idx.reshape(idx.shape + (1,) * (getattr(batch, f).ndim - 2)), axis=1))
                for f in _OUTCOME_FIELDS}
        arms = np.take_along_axis(batch.arm[rows], idx, axis=1)
        sub = replace(batch, treated=arms == arm, arm=None,
                      analysis_time=None if batch.analysis_time is None else batch.analysis_time[rows], **take)
        out.append((rows, sub))
    return out


def analyze_comparisons(batch: TrialBatch, analysis: str, alpha: float) -> dict[str, np.ndarray]:
    """Each treatment vs control: ``(R, k)`` arrays ``p_value``, ``estimate``, ``ci_low``, ``ci_high``."""
    R, k = batch.replicates, batch.n_arms - 1
    out = {key: np.full((R, k), np.nan) for key in ("p_value", "estimate", "ci_low", "ci_high")}
    for j in range(1, k + 1):
        for rows, sub in comparison_groups(batch, j):
            res = analyze_batch(sub, analysis, alpha)
            for key in out:
                out[key][rows, j - 1] = np.asarray(getattr(res, key), dtype=float)
    return out
