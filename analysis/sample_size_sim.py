"""Sample size for a target power, by simulating the design from the fitted generator.

:func:`simulated_sample_size` wires :func:`analysis.sample_size.find_sample_size` to the trial simulator:

1. **Start.** Unless ``n_start`` is given: where a closed form exists for the design (two-arm fixed designs
   analysed by ``ttest``, the binary analyses, ``logrank`` / ``cox`` or ``slope``; see
   :func:`analysis.estimand.analytic_power_column`), the smallest N on the allocation grid whose analytic power
   reaches the target, with the formula's inputs read from one large simulated trial (for time to event the
   expected events grow with N at that trial's event rate). Otherwise a pilot of ``replicates`` trials at ``n_pilot`` patients (default the
   geometric mean of ``n_min`` and ``n_max``) estimates the treatment effect and its standard error on the
   analysis's own scale (log scale for hazard, odds and risk ratios) as the mean and SD of the simulated
   estimates; the normal approximation ``N = n_pilot (z_{1-alpha/2} + z_{power})^2 SE^2 / effect^2`` (any
   estimator whose SE shrinks like ``1 / sqrt(N)``) is the start. This works for every analysis, with the
   generator's own outcome variability, so no outcome SD or event rate has to be guessed.
2. **Search** by simulation (bracket, bisect, probit fit; :mod:`analysis.sample_size`), every size on the
   allocation grid (2 for 1:1, 3 for 2:1 ...).
3. **Null.** The design without effect is simulated at the recommended N with as many replicates: its rejection
   rate is the type I error of that design, shown beside the answer.

Randomness: ``rng.spawn(3)`` gives the pilot (or analytic start), search and null streams, so the answer depends
only on the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from analysis.estimators import RATIO_ANALYSES
from analysis.power import simulate_design
from analysis.sample_size import SampleSizeResult, find_sample_size
from cohorts.errors import InvalidScenarioError
from trials.design import TrialDesign
from trials.simulate import check_design_fits_cohort

__all__ = ["simulated_sample_size", "SimulatedSampleSize", "allocation_step"]

#: analyses whose estimate is a ratio (the pilot works on its log)


@dataclass(frozen=True)
class SimulatedSampleSize:
    """The search result plus how it started (``pilot``) and the type I error at the recommended N."""

    search: SampleSizeResult
    target: float
    alpha: float
    n_start: int
    pilot: dict | None
    type1_rejections: int | None
    type1_replicates: int

    @property
    def type1_error(self) -> float | None:
        """Simulated type I error at the recommended N (None when no N was recommended)."""
        return None if self.type1_rejections is None else self.type1_rejections / self.type1_replicates

    def type1_ci(self) -> tuple[float | None, float | None]:
        if self.type1_rejections is None:
            return None, None
        lo, hi = proportion_confint(self.type1_rejections, self.type1_replicates, alpha=0.05, method="beta")
        return float(np.nan_to_num(lo, nan=0.0)), float(np.nan_to_num(hi, nan=1.0))

    def to_json_dict(self) -> dict:
        lo, hi = self.type1_ci()
        return {"target_power": self.target, "alpha": self.alpha, "n_start": self.n_start, "pilot": self.pilot,
                **self.search.to_json_dict(), "type1_error": self.type1_error, "type1_error_ci_low": lo,
                "type1_error_ci_high": hi, "type1_replicates": self.type1_replicates}


def allocation_step(design: TrialDesign) -> int:
    """Smallest total N step that keeps the allocation exact (2 for 1:1, 3 for 2:1, 4 for 1:1:2; 2 for
    non-integer ratios)."""
    ratios = [a.allocation for a in design.arms]
    if all(float(r).is_integer() for r in ratios):
        ints = [int(r) for r in ratios]
        return sum(ints) // math.gcd(*ints)
    return 2


def _pilot(generator, design, n_pilot, replicates, alpha, target, rng, n_min, n_max, step) -> tuple[int, dict]:
    sim = simulate_design(generator, design, n_pilot, replicates, alpha, rng=rng)
    est = sim.estimate
    ratio = design.endpoint.analysis in RATIO_ANALYSES
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.log(est) if ratio else np.asarray(est, float)
    e = e[np.isfinite(e)]
    info = {"n_total": int(n_pilot), "replicates": int(replicates), "power": int(sim.rejected.sum()) / replicates,
            "scale": "log" if ratio else "identity"}
    if len(e) < 10:
        info.update(effect=None, se=None, note="too few defined pilot trials; started at the pilot N")
        return int(n_pilot), info
    effect, se = float(e.mean()), float(e.std(ddof=1))
    info.update(effect=effect, se=se)
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(target)
    if abs(effect) < 1e-12 or not np.isfinite(se):
        info["note"] = "no effect in the pilot; started at the pilot N"
        return int(n_pilot), info
    n = n_pilot * (z * se / abs(effect)) ** 2
    return int(min(n_max, max(n_min, step * math.ceil(n / step)))), info


def _analytic_start(generator, design, target, alpha, rng, n_min, n_max, step) -> tuple[int, dict] | None:
    """The smallest N with analytic power >= ``target`` (see the module docstring), or None without a formula."""
    from analysis.estimand import analytic_power_column, has_closed_form, reference_trial
    if not has_closed_form(design):
        return None
    ref = reference_trial(generator, design, n_max, alpha, rng=rng)
    grid = np.arange(step * math.ceil(n_min / step), n_max + 1, step)
    events = None
    if design.endpoint.outcome_type == "tte":
        rate = float(ref.batch.event.sum()) / ref.batch.n_total
        events = grid * rate
        if design.endpoint.events is not None:
            events = np.minimum(events, design.endpoint.events)
    power = analytic_power_column(design, ref, grid, alpha, events)
    reach = np.flatnonzero(np.nan_to_num(power) >= target)
    if not np.isfinite(power).any():
        return None
    n = int(grid[reach[0]]) if reach.size else int(grid[-1])
    return n, {"method": "analytic", "analysis": design.endpoint.analysis, "n_total": n,
               "analytic_power": float(power[reach[0]] if reach.size else power[-1]),
               "estimand": ref.estimate, "note": None if reach.size else "the target is not reached below n_max"}


def simulated_sample_size(generator, design: TrialDesign, target: float, *, replicates: int, alpha: float,
                          rng: np.random.Generator, n_min: int, n_max: int, n_start: int | None = None,
                          n_pilot: int | None = None, max_evaluations: int = 12) -> SimulatedSampleSize:
    """Smallest total N whose simulated power reaches ``target`` (see the module docstring)."""
    if design.effect.is_null:
        raise InvalidScenarioError("the design has no treatment effect: a sample size for a target power needs "
                                   "an assumed effect (e.g. effect = { hazard_ratio = 0.7 })")
    if hasattr(generator, "schema_"):
        check_design_fits_cohort(design, generator.schema_)
    step = allocation_step(design)
    pilot_rng, search_rng, null_rng = rng.spawn(3)
    pilot = None
    if n_start is None:
        start = _analytic_start(generator, design, target, alpha, pilot_rng, n_min, n_max, step)
        if start is not None:
            n_start, pilot = start
        else:
            n_pilot = int(n_pilot or step * math.ceil(math.sqrt(n_min * n_max) / step))
            n_start, pilot = _pilot(generator, design, n_pilot, replicates, alpha, target, pilot_rng, n_min, n_max,
                                    step)

    def power_at(n: int, child: np.random.Generator) -> tuple[int, int]:
        return int(simulate_design(generator, design, n, replicates, alpha, rng=child).rejected.sum()), replicates

    search = find_sample_size(power_at, target, n_start=int(n_start), n_min=n_min, n_max=n_max,
                              replicates=replicates, rng=search_rng, step=step, max_evaluations=max_evaluations)
    type1 = None
    if search.n_recommended is not None:
        type1 = int(simulate_design(generator, design.null(), search.n_recommended, replicates, alpha,
                                    rng=null_rng).rejected.sum())
    return SimulatedSampleSize(search, float(target), float(alpha), int(n_start), pilot, type1, int(replicates))
