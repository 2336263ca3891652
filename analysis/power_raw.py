"""Per-replicate raw results of a power simulation, for audit, and the :class:`PowerResult` rebuilt from them.

:func:`replicate_frame` lays out every simulated trial as one row: ``scenario`` (``"effect"`` or ``"null"``),
``n_total``, ``replicate`` (0-based within its N and scenario), the decision (``rejected``), the p-value, the
estimate and its confidence interval, the patients enrolled, the calendar month and the events at the (stopping)
analysis, and the design-specific per-replicate values (``stop_look``/``stop_reason`` of a group-sequential trial,
``z_<look>``, ``arm_p_value_<j>`` of a multi-arm trial, ``randomized_*`` of a hybrid control, ...). A reviewer can
recompute every number of the power table from it; :func:`power_result_from_records` does exactly that (power,
type I error and their exact intervals from the decisions), and takes the operating characteristics, look tables
and the analytic column from the JSON summary written with the run.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.power_result import PowerResult
from trials.design import PowerSettings, TrialDesign

__all__ = ["replicate_frame", "power_result_from_records", "RAW_CORE_COLUMNS"]

#: columns every raw table has, in order
RAW_CORE_COLUMNS = ("scenario", "n_total", "replicate", "rejected", "p_value", "estimate", "ci_low", "ci_high",
                    "n_enrolled", "month", "events")


def _one(sim, scenario: str, n: int) -> pd.DataFrame:
    R = len(sim)
    cols: dict = {"scenario": np.full(R, scenario, dtype=object), "n_total": np.full(R, int(n)),
                  "replicate": np.arange(R), "rejected": np.asarray(sim.rejected, bool)}
    for k in RAW_CORE_COLUMNS[4:]:
        cols[k] = np.asarray(getattr(sim, k), dtype=float)
    for key, value in sim.extras.items():
        if not isinstance(value, np.ndarray) or value.ndim == 0 or value.shape[0] != R or value.ndim > 2:
            continue
        if value.ndim == 1:
            cols[key] = value.astype(str) if value.dtype == object else value
        else:
            for j in range(value.shape[1]):
                cols[f"{key}_{j + 1}"] = value[:, j]
    return pd.DataFrame(cols)


def replicate_frame(sims, sims_null, n_total) -> pd.DataFrame:
    """One row per simulated trial: the effect scenario at every N, then the null scenario at every N."""
    parts = [_one(s, "effect", n) for s, n in zip(sims, n_total)]
    parts += [_one(s, "null", n) for s, n in zip(sims_null, n_total)]
    return pd.concat(parts, ignore_index=True)


def _matrix(raw: pd.DataFrame, scenario: str, column: str, n_total, R: int) -> np.ndarray:
    out = np.empty((len(n_total), R), dtype=bool if column == "rejected" else float)
    for k, n in enumerate(n_total):
        part = raw[(raw["scenario"] == scenario) & (raw["n_total"] == n)].sort_values("replicate")
        if len(part) != R:
            raise ValueError(f"the raw table has {len(part)} {scenario} replicates at N = {n}, expected {R}")
        out[k] = part[column].to_numpy(dtype=out.dtype)
    return out


def _frame(d: dict | None) -> pd.DataFrame | None:
    if d is None:
        return None
    return pd.DataFrame({k: [np.nan if v is None else v for v in vals] for k, vals in d.items()})


def power_result_from_records(summary: dict, raw: pd.DataFrame, design: TrialDesign,
                              settings: PowerSettings) -> PowerResult:
    """The :class:`PowerResult` of a run from its raw table and JSON summary (:meth:`PowerResult.to_json_dict`).

    Power and type I error are recomputed from the per-replicate decisions, so a raw table that does not match
    the summary shows up as different numbers, not as a silently trusted summary."""
    from analysis.power import rate_ci
    ns, R = tuple(int(n) for n in settings.n_total), int(settings.replicates)
    rej, rej0 = (_matrix(raw, s, "rejected", ns, R) for s in ("effect", "null"))
    k, k0 = rej.sum(axis=1), rej0.sum(axis=1)
    lo, hi = rate_ci(k, R)
    t_lo, t_hi = rate_ci(k0.sum(), len(ns) * R)
    analytic = summary.get("analytic_power")
    return PowerResult(
        design=design, settings=settings, analysis=summary.get("analysis", design.endpoint.analysis),
        power=k / R, power_ci_low=np.asarray(lo, float), power_ci_high=np.asarray(hi, float),
        type1_by_n=k0 / R, type1_error=float(k0.sum() / (len(ns) * R)),
        type1_ci_low=float(t_lo), type1_ci_high=float(t_hi),
        p_values=_matrix(raw, "effect", "p_value", ns, R), p_values_null=_matrix(raw, "null", "p_value", ns, R),
        estimates=_matrix(raw, "effect", "estimate", ns, R), estimates_null=_matrix(raw, "null", "estimate", ns, R),
        seed=summary.get("seed"), elapsed_s=float(summary.get("elapsed_s") or 0.0),
        operating=_frame(summary.get("operating")),
        looks=None if summary.get("looks") is None else [_frame(t) for t in summary["looks"]],
        analytic_power=None if analytic is None else np.array([np.nan if x is None else x for x in analytic], float),
        rejected=rej, rejected_null=rej0, raw=raw)
