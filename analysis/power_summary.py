"""Per-N operating characteristics of a simulated design beyond power: bias, coverage, expected size, events and
duration, the analytic cross-check, per-arm power (multi-arm), the randomized-only comparison (hybrid), and the
per-look stopping probabilities (group-sequential). Built by :func:`analysis.power.power_curve`.

Bias is ``mean(estimate) - estimand`` with its Monte Carlo standard error ``sd / sqrt(R)``; coverage the share of
replicates whose confidence interval contains the estimand (Clopper-Pearson interval); under the null design the
estimand is the no-effect value (0, or 1 for ratio estimates). Expected values are means over replicates (at the
look where each trial stopped for a group-sequential design).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.design_analysis import SimulatedTrials
from analysis.estimators import null_estimate

__all__ = ["operating_row", "look_table"]


def _mean_se(x) -> tuple[float, float]:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else float("nan")


def _coverage(sim: SimulatedTrials, truth: float) -> float:
    ok = np.isfinite(sim.ci_low) & np.isfinite(sim.ci_high)
    if not ok.any() or not np.isfinite(truth):
        return float("nan")
    return float(((sim.ci_low <= truth) & (truth <= sim.ci_high))[ok].mean())


def operating_row(sim: SimulatedTrials, sim0: SimulatedTrials, estimand: float, analysis: str,
                  estimand_se: float = float("nan")) -> dict:
    """One N's summary (see the module docstring); keys become columns of ``PowerResult.table()``."""
    bias, bias_se = _mean_se(sim.estimate - estimand)
    row = {"estimand": estimand, "estimand_se": estimand_se, "bias": bias, "bias_se": bias_se, "coverage": _coverage(sim, estimand),
           "coverage_null": _coverage(sim0, null_estimate(analysis)),
           "expected_n": _mean_se(sim.n_enrolled)[0], "expected_n_null": _mean_se(sim0.n_enrolled)[0],
           "expected_months": _mean_se(sim.month)[0], "expected_months_null": _mean_se(sim0.month)[0]}
    if np.isfinite(sim.events).any():
        row["expected_events"] = _mean_se(sim.events)[0]
        row["expected_events_null"] = _mean_se(sim0.events)[0]
    ex, ex0 = sim.extras, sim0.extras
    if "arm_rejected" in ex:
        for j in range(ex["arm_rejected"].shape[1]):
            row[f"power_arm_{j + 1}"] = float(ex["arm_rejected"][:, j].mean())
            row[f"type1_arm_{j + 1}"] = float(ex0["arm_rejected"][:, j].mean())
        row["power_all_arms"] = float(ex["all_rejected"].mean())
    if "randomized_rejected" in ex:
        row["power_randomized_only"] = float(ex["randomized_rejected"].mean())
        row["type1_randomized_only"] = float(ex0["randomized_rejected"].mean())
        rb, rb_se = _mean_se(ex["randomized_estimate"] - estimand)
        row["bias_randomized_only"], row["bias_randomized_only_se"] = rb, rb_se
        row["bias_null"] = _mean_se(sim0.estimate - null_estimate(analysis))[0]
        row["bias_null_randomized_only"] = _mean_se(ex0["randomized_estimate"] - null_estimate(analysis))[0]
    return row


def look_table(sim: SimulatedTrials, sim0: SimulatedTrials) -> pd.DataFrame | None:
    """Per look: boundaries, and the simulated probability of stopping there for efficacy / futility under the
    effect and under the null, with the expected patients, events and calendar month at each look."""
    if "stop_look" not in sim.extras:
        return None
    bounds = sim.extras["bounds"]
    out = bounds.summary()
    K = len(out)
    for tag, s in (("", sim), ("_null", sim0)):
        look, reason = s.extras["stop_look"], s.extras["stop_reason"]
        out[f"p_efficacy{tag}"] = [float(((look == k) & (reason == "efficacy")).mean()) for k in range(1, K + 1)]
        out[f"p_futility{tag}"] = [float(((look == k) & (reason == "futility")).mean()) for k in range(1, K + 1)]
        out[f"cumulative_efficacy{tag}"] = np.cumsum(out[f"p_efficacy{tag}"])
    out["enrolled"] = np.nanmean(sim.extras["enrolled_by_look"], axis=0)
    out["month"] = np.nanmean(sim.extras["month_by_look"], axis=0)
    if "events_by_look" in sim.extras:
        out["events"] = np.nanmean(sim.extras["events_by_look"], axis=0)
    return out
