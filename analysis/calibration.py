"""Calibration against a real trial: does the simulator reproduce what the trial actually showed?

Given a real two-arm trial dataset, the generator is trained on the CONTROL arm only (rows with
``arm == control``); the real analysis is run on both arms with :data:`analysis.estimators.SINGLE`; then the
same trial (its arm sizes ``n_control : n_treated``, its total N, its follow-up: the largest observed time for
time-to-event unless given, its visits for longitudinal outcomes) is simulated ``R`` times under an assumed
effect and ``R`` times under no effect, and analysed with the same (batched) analysis.

The assumed effect defaults to the observed estimate, in the design's effect kind: the hazard ratio for tte
analyses (cox, logrank), the mean difference for ``ttest``, the risk difference for ``proportions`` /
``risk_difference``, the odds ratio for ``logistic``. A slope reduction (longitudinal) or a risk ratio cannot be
derived from one number, so those analyses need ``effect`` explicitly. Longitudinal visit times are converted
to months before the real analysis, as in the simulated trials, so slopes are per month in both.

Reported (``F`` = the simulated estimates, ``P`` = the simulated p-values, finite ones only; ``x`` = the real
estimate, ``p`` = the real p-value):

* percentile of the real estimate, mid-rank: ``(#{F < x} + #{F == x} / 2) / #F`` (0.5 = the real trial sits at
  the median of the simulated ones), under the assumed effect and under the null;
* share of simulated trials with ``P < p`` (under the null this estimates ``p`` itself when the simulator is
  calibrated; under the effect it is the chance a trial like this one would look at least as convincing);
* simulated power and type I error: the rejection rate ``#{P < alpha} / R`` (NaN counts as not rejected).

Randomness: ``seed`` -> :func:`analysis.workflow.seed_streams`: the training stream fits the generator; the
simulation stream is split with ``spawn(2)`` into the effect scenario (child 0) and the null (child 1), so the
same seed gives the same numbers from the CLI and the library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis.estimators import SINGLE
from analysis.power import rejections, simulate_rejections
from analysis.estimators.result import TestResult
from cohorts.errors import InvalidDataError, InvalidScenarioError, UnknownNameError
from cohorts.schema import DAYS_PER_UNIT, CohortSchema
from trials.design import ANALYSIS_OUTCOME, Arm, Effect, Endpoint, TrialDesign

__all__ = ["calibrate_trial", "CalibrationResult", "calibration_figure", "effect_kind_for", "mid_rank_percentile"]

#: analysis -> effect kind the observed estimate converts to (None: not derivable from one number)
_OBSERVED_KIND = {"cox": "hazard_ratio", "logrank": "hazard_ratio", "ttest": "mean_difference",
                  "proportions": "risk_difference", "risk_difference": "risk_difference",
                  "logistic": "odds_ratio", "risk_ratio": None,
                  "slope": None, "ancova": None, "mmrm": None, "random_slope": None}
#: analysis -> effect kind of a number given as ``effect``
_GIVEN_KIND = {**_OBSERVED_KIND, "risk_ratio": "risk_difference", "slope": "slope_reduction",
               "ancova": "slope_reduction", "mmrm": "slope_reduction", "random_slope": "slope_reduction"}


def effect_kind_for(analysis: str) -> str:
    """The effect kind a plain number given as ``effect`` means for ``analysis``."""
    return _GIVEN_KIND[analysis]


def mid_rank_percentile(values, x: float) -> float:
    """``(#{v < x} + #{v == x} / 2) / #v`` over the finite ``values`` (NaN when none or ``x`` is NaN)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0 or not math.isfinite(x):
        return math.nan
    return float(((v < x).sum() + 0.5 * (v == x).sum()) / v.size)


def _share_below(p_values, p: float) -> float:
    v = np.asarray(p_values, float)
    v = v[np.isfinite(v)]
    if v.size == 0 or not math.isfinite(p):
        return math.nan
    return float((v < p).mean())


def _rate(p_values, alpha: float) -> float:
    return float(rejections(p_values, alpha)) / len(p_values)


def _num(x):
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass(frozen=True, eq=False)
class CalibrationResult:
    """The real trial's analysis beside ``R`` simulated copies of it (under the assumed effect and the null)."""

    analysis: str
    arms: tuple[str, str]               # (control, treated) labels
    n_per_arm: tuple[int, int]          # real (control, treated) patients
    design: TrialDesign                 # the simulated trial (with the assumed effect)
    real: TestResult
    estimates: np.ndarray               # (R,) simulated estimates under the assumed effect
    p_values: np.ndarray
    estimates_null: np.ndarray          # (R,) under no effect
    p_values_null: np.ndarray
    alpha: float
    seed: int
    generator: str
    effect_source: str                  # "observed" or "given"

    @property
    def replicates(self) -> int:
        return len(self.p_values)

    @property
    def effect(self) -> Effect:
        return self.design.effect

    @property
    def percentile(self) -> float:
        """Mid-rank percentile (0-1) of the real estimate among the simulated estimates under the effect."""
        return mid_rank_percentile(self.estimates, self.real.estimate)

    @property
    def percentile_null(self) -> float:
        """Mid-rank percentile (0-1) of the real estimate among the simulated estimates under no effect."""
        return mid_rank_percentile(self.estimates_null, self.real.estimate)

    @property
    def share_p_below(self) -> float:
        """Share of simulated trials (effect) whose p-value is below the real one."""
        return _share_below(self.p_values, self.real.p_value)

    @property
    def share_p_below_null(self) -> float:
        """Share of simulated trials (no effect) whose p-value is below the real one."""
        return _share_below(self.p_values_null, self.real.p_value)

    @property
    def power(self) -> float:
        return _rate(self.p_values, self.alpha)

    @property
    def type1_error(self) -> float:
        return _rate(self.p_values_null, self.alpha)

    def summary(self) -> pd.DataFrame:
        """One row per scenario: the real numbers beside the simulated distribution."""
        rows = []
        for name, est, p, pct, share, rate in (
                ("assumed effect", self.estimates, self.p_values, self.percentile, self.share_p_below, self.power),
                ("no effect", self.estimates_null, self.p_values_null, self.percentile_null,
                 self.share_p_below_null, self.type1_error)):
            e = np.asarray(est, float)
            e = e[np.isfinite(e)]
            q = np.quantile(e, [0.025, 0.5, 0.975]) if e.size else [np.nan] * 3
            rows.append({"scenario": name, "effect": (self.effect.describe() if name == "assumed effect"
                                                      else self.design.null().effect.describe()),
                         "real_estimate": self.real.estimate, "real_p_value": self.real.p_value,
                         "sim_median": q[1], "sim_q025": q[0], "sim_q975": q[2],
                         "percentile_of_real": pct, "share_p_below_real": share, "rejection_rate": rate,
                         "replicates": self.replicates})
        return pd.DataFrame(rows)

    def to_json_dict(self) -> dict:
        """JSON-safe dict (NaN -> None), per-replicate numbers included for audit."""
        r = self.real
        lst = (lambda a: [_num(x) for x in np.asarray(a, float)])
        return {
            "analysis": self.analysis, "generator": self.generator, "seed": self.seed, "alpha": self.alpha,
            "replicates": self.replicates,
            "arms": {"control": self.arms[0], "treated": self.arms[1]},
            "n_per_arm": {self.arms[0]: self.n_per_arm[0], self.arms[1]: self.n_per_arm[1]},
            "followup": self.design.endpoint.followup,
            "visits_months": (list(self.design.endpoint.visits_months)
                              if self.design.endpoint.visits_months else None),
            "effect": {"kind": self.effect.kind, "value": self.effect.value, "source": self.effect_source},
            "real": {"method": r.method, "estimate": _num(r.estimate), "ci_low": _num(r.ci_low),
                     "ci_high": _num(r.ci_high), "p_value": _num(r.p_value)},
            "effect_scenario": {"percentile_of_real": _num(self.percentile),
                                "share_p_below_real": _num(self.share_p_below), "power": _num(self.power),
                                "estimates": lst(self.estimates), "p_values": lst(self.p_values)},
            "null_scenario": {"percentile_of_real": _num(self.percentile_null),
                              "share_p_below_real": _num(self.share_p_below_null),
                              "type1_error": _num(self.type1_error),
                              "estimates": lst(self.estimates_null), "p_values": lst(self.p_values_null)},
        }


def _to_months(unit: str) -> float:
    return DAYS_PER_UNIT[unit] / DAYS_PER_UNIT["months"]


def _column_keywords(analysis: str, schema: CohortSchema) -> dict:
    o = schema.outcome
    if o.type == "tte":
        return {"time": o.time, "event": o.event}
    if o.type == "longitudinal":
        return {"id": schema.id, "visit": o.visit, "value": o.value}
    if analysis in ("risk_difference", "risk_ratio", "logistic"):
        return {"outcome": o.value}
    return {"value": o.value}


def _check_inputs(data: pd.DataFrame, schema: CohortSchema, arm: str, analysis: str) -> None:
    if analysis not in SINGLE:
        raise UnknownNameError("analysis", analysis, SINGLE)
    if ANALYSIS_OUTCOME[analysis] != schema.outcome.type:
        raise InvalidScenarioError(f"analysis {analysis!r} is for {ANALYSIS_OUTCOME[analysis]} outcomes, but the "
                                   f"schema's outcome is {schema.outcome.type}; choose one of "
                                   f"{', '.join(a for a, t in ANALYSIS_OUTCOME.items() if t == schema.outcome.type)}")
    if arm not in data.columns:
        raise InvalidDataError(f"arm column {arm!r}: no such column; columns are "
                               f"{', '.join(map(str, data.columns))}")
    if arm in schema.columns:
        role = "a baseline covariate" if arm in schema.baseline else "the id or an outcome column"
        raise InvalidDataError(f"arm column {arm!r} is {role} in the schema; the schema describes the cohort "
                               "without the arm column: remove it from the schema")


def _clean_two_arms(data: pd.DataFrame, schema: CohortSchema, arm: str, treated_value, control_value):
    """Validated rows of the two arms (schema columns + the arm column) and the control value."""
    col = data[arm]
    if not (col == treated_value).any():
        raise InvalidDataError(f"treated value {treated_value!r}: no row of column {arm!r} has it")
    if control_value is None:
        others = [v for v in pd.unique(col.dropna()) if v != treated_value]
        if len(others) != 1:
            raise InvalidDataError(f"column {arm!r} has {len(others)} values besides the treated value "
                                   f"{treated_value!r}; name the control arm (control_value / --control)")
        control_value = others[0]
    elif not (col == control_value).any():
        raise InvalidDataError(f"control value {control_value!r}: no row of column {arm!r} has it")
    if control_value == treated_value:
        raise InvalidDataError("the control and treated values name the same arm; give two different values")
    rows = data[col.isin([treated_value, control_value])].reset_index(drop=True)
    from cohorts.io import validate
    clean = validate(rows, schema, source="calibration data")
    if schema.is_longitudinal:
        per_id = rows.groupby(schema.id, sort=False)[arm].nunique()
        if (per_id > 1).any():
            raise InvalidDataError(f"arm column {arm!r} changes within patient(s) "
                                   f"{', '.join(map(str, per_id.index[per_id > 1][:5]))}; one arm per patient")
        arm_of = rows.drop_duplicates(schema.id).set_index(schema.id)[arm]
        clean[arm] = clean[schema.id].map(arm_of).to_numpy()
    else:
        clean[arm] = rows[arm].to_numpy()
    return clean, control_value


def _assumed_effect(analysis: str, effect, estimate: float) -> tuple[Effect, str]:
    if isinstance(effect, Effect):
        return effect, "given"
    if effect is not None:
        return Effect(_GIVEN_KIND[analysis], float(effect)), "given"
    kind = _OBSERVED_KIND[analysis]
    if kind is None:
        what = ("a slope reduction (fraction of the decline removed, e.g. 0.25)"
                if ANALYSIS_OUTCOME[analysis] == "longitudinal" else f"a {_GIVEN_KIND[analysis].replace('_', ' ')}")
        raise InvalidScenarioError(f"effect: analysis {analysis!r} reports an estimate that cannot be converted to "
                                   f"the simulated effect; give the assumed effect explicitly as {what} "
                                   "(effect= / --effect)")
    if not math.isfinite(estimate):
        raise InvalidScenarioError(f"effect: the real {analysis} estimate is undefined (NaN); give the assumed "
                                   "effect explicitly (effect= / --effect)")
    return Effect(kind, float(estimate)), "observed"


def calibrate_trial(data: pd.DataFrame, schema: CohortSchema, *, arm: str, treated_value, analysis: str,
                    replicates: int, seed: int, generator: str = "default", effect=None, followup=None,
                    control_value=None, alpha: float = 0.05) -> CalibrationResult:
    """Train ``generator`` on the control arm of ``data``, simulate the trial ``replicates`` times under the
    assumed ``effect`` (default: the observed estimate) and under no effect; see the module docstring.

    ``schema`` describes the cohort without the arm column; ``effect`` is an :class:`Effect` or a number of the
    analysis's effect kind (:func:`effect_kind_for`); ``followup`` (tte, the cohort's time unit) defaults to the
    largest observed time.
    """
    from analysis.workflow import fit_generator, seed_streams
    from cohorts.io import cohort_from_frame

    _check_inputs(data, schema, arm, analysis)
    if effect is None and _OBSERVED_KIND[analysis] is None:
        _assumed_effect(analysis, None, math.nan)  # raises: this analysis needs the effect given
    if isinstance(replicates, bool) or not isinstance(replicates, (int, np.integer)) or replicates < 1:
        raise InvalidScenarioError(f"replicates: must be a positive whole number, got {replicates!r}")
    if not 0 < alpha < 1:
        raise InvalidScenarioError(f"alpha: give a level between 0 and 1, e.g. 0.05; got {alpha!r}")
    clean, control_value = _clean_two_arms(data, schema, arm, treated_value, control_value)
    o = schema.outcome
    real_data = clean
    if o.type == "longitudinal":  # simulated trials measure visits in months: analyse the real one alike
        real_data = clean.assign(**{o.visit: clean[o.visit].astype(float) * _to_months(o.unit)})
    real = SINGLE[analysis](real_data, **_column_keywords(analysis, schema), arm=arm, treated_value=treated_value,
                            alpha=alpha)
    assumed, source = _assumed_effect(analysis, effect, real.estimate)

    is_treated = clean[arm] == treated_value
    key = schema.id if schema.is_longitudinal else None
    n_t = int(clean.loc[is_treated, key].nunique()) if key else int(is_treated.sum())
    n_c = int(clean.loc[~is_treated, key].nunique()) if key else int((~is_treated).sum())
    if n_c < 2 or n_t < 2:
        raise InvalidDataError(f"each arm needs at least two patients; got control {n_c}, treated {n_t}")
    visits = None
    if o.type == "tte":
        followup = float(clean[o.time].max()) if followup is None else followup
    else:
        followup = None
    if o.type == "longitudinal":
        v = np.sort(pd.unique(clean[o.visit].astype(float)))
        visits = tuple(v * _to_months(o.unit))
    design = TrialDesign((Arm(str(control_value), n_c), Arm(str(treated_value), n_t, assumed)),
                         Endpoint(analysis, visits_months=visits, followup=followup))

    controls = clean[~is_treated].drop(columns=arm)
    cohort = cohort_from_frame(controls, schema, name=f"control arm ({control_value})")
    gen = fit_generator(cohort, generator, seed=seed)
    _, sim_rng = seed_streams(seed)
    rng_effect, rng_null = sim_rng.spawn(2)
    n_total = n_c + n_t
    p, e = simulate_rejections(gen, design, n_total, int(replicates), alpha, rng=rng_effect)
    p0, e0 = simulate_rejections(gen, design.null(), n_total, int(replicates), alpha, rng=rng_null)
    return CalibrationResult(analysis=analysis, arms=(str(control_value), str(treated_value)),
                             n_per_arm=(n_c, n_t), design=design, real=real, estimates=e, p_values=p,
                             estimates_null=e0, p_values_null=p0, alpha=alpha, seed=int(seed),
                             generator=generator, effect_source=source)


def calibration_figure(result: CalibrationResult) -> go.Figure:
    """Histograms of the simulated estimates under the assumed effect and under no effect, with a vertical line
    at the real estimate."""
    fig = go.Figure()
    for name, est, color in (("simulated, assumed effect", result.estimates, "#1f77b4"),
                             ("simulated, no effect", result.estimates_null, "#7f7f7f")):
        e = np.asarray(est, float)
        fig.add_trace(go.Histogram(x=e[np.isfinite(e)], name=name, opacity=0.6, marker_color=color,
                                   histnorm="probability"))
    x = result.real.estimate
    if math.isfinite(x):
        fig.add_vline(x=x, line_color="#d62728", line_width=2,
                      annotation_text=f"real {x:.3g} (percentile {result.percentile:.0%} under effect, "
                                      f"{result.percentile_null:.0%} under null)")
    fig.update_layout(template="plotly_white", barmode="overlay",
                      title=f"Real trial vs {result.replicates} simulated trials ({result.analysis}, "
                            f"{result.effect.describe()})",
                      xaxis_title=f"{result.real.method} estimate", yaxis_title="share of simulated trials")
    return fig
