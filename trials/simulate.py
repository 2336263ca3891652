"""Replicate trials from a fitted generator, batched over a replicate axis.

One call draws ``replicates * n_total`` synthetic patients at once (under the design's eligibility criteria and
enrichment), gives them calendar entry times (:mod:`trials.enrollment`), randomizes them to the arms in order of
entry (fixed sizes, simple, or stratified permuted blocks), realizes each patient's outcome under control or
treatment (counterfactual transform of the same latent draws; responder, subgroup and time-varying effects as in
:mod:`trials.effects`), and applies the observation process (:mod:`trials.observe`: visit windows, dropout per
arm and optionally informative, follow-up and the calendar data cut of an event-driven analysis). A hybrid
design's synthetic controls are drawn from the same generator (without the current trial's drift) and appended.
No Python loop over replicates.
"""

from __future__ import annotations

import numpy as np

from cohorts.criteria import parse_criteria
from cohorts.errors import InvalidScenarioError
from cohorts.schema import DAYS_PER_UNIT, CohortSchema
from trials.batch import PATIENT_FIELDS, TrialBatch
from trials.conduct import Randomization
from trials.design import TrialDesign
from trials.effects import latent_parameter, per_patient_parameter, piecewise_log_hazard_ratios
from trials.enrollment import assign_arms, entry_times
from trials.observe import cut_tte, dropout_missing, event_cut, observe_tte, visit_times_actual

__all__ = ["simulate_trials", "randomize", "check_design_fits_cohort", "expression_problems_on_cohort",
           "eligibility_columns", "months_to_unit"]


def months_to_unit(months, unit: str) -> np.ndarray:
    """Convert months to ``unit`` (days, weeks, months, years)."""
    return np.asarray(months, dtype=float) * DAYS_PER_UNIT["months"] / DAYS_PER_UNIT[unit]


def eligibility_columns(schema: CohortSchema) -> tuple[str, ...]:
    """The columns eligibility criteria and enrichment see: the baseline covariates, plus for a longitudinal outcome
    its value column (each patient's value at the baseline visit; see ``CohortGenerator.baseline_frame``)."""
    o = schema.outcome
    extra = (o.value,) if o.type == "longitudinal" and o.value not in schema.baseline else ()
    return tuple(schema.baseline) + extra


def expression_problems_on_cohort(design: TrialDesign, schema: CohortSchema, frame=None) -> list[str]:
    """Problems of the design's expressions against the cohort's columns: the effect's subgroup and the strata on
    the baseline covariates, eligibility criteria and enrichment on :func:`eligibility_columns`. With ``frame``
    (the cohort's data) the columns' types are checked too (e.g. a text column compared with a number)."""
    def columns(names):
        names = list(names)
        return frame[names] if frame is not None and set(names) <= set(frame.columns) else names

    baseline = columns(schema.baseline)
    checks = []
    for arm in design.treatments:
        if arm.effect is not None and arm.effect.subgroup is not None:
            checks.append((f"arms[{arm.name}].effect.subgroup", arm.effect.subgroup, baseline))
    if design.eligibility is not None:
        seen = columns(eligibility_columns(schema))
        if design.eligibility.criteria is not None:
            checks.append(("eligibility.criteria", design.eligibility.criteria, seen))
        checks += [(f"eligibility.enrich[{e!r}]", e, seen) for e, _ in design.eligibility.enrich]
    problems = []
    for s in design.randomization.strata:
        name = s.strip()
        if not name.isidentifier():
            checks.append((f"randomization.strata[{s!r}]", s, baseline))
        elif name not in schema.baseline:
            problems.append(f"randomization.strata: {name!r} is not a baseline covariate of the cohort; allowed: "
                            f"{', '.join(schema.baseline)} (or an expression such as \"age >= 60\")")
    for where, text, cols in checks:
        try:
            parse_criteria(text).check(cols)
        except InvalidScenarioError as exc:
            problems += [f"{where}: {p}" for p in exc.problems]
    return problems


def check_design_fits_cohort(design: TrialDesign, schema: CohortSchema, frame=None) -> None:
    """Raise :class:`InvalidScenarioError` if the design's analysis does not suit the cohort's outcome, dropout is
    set for a single measurement, or an expression (subgroup, eligibility, enrichment, strata) names a column the
    cohort does not have (:func:`expression_problems_on_cohort`; ``frame`` adds type checks)."""
    have, want = schema.outcome.type, design.endpoint.outcome_type
    if have != want:
        raise InvalidScenarioError(
            f"endpoint.analysis: {design.endpoint.analysis!r} analyses a {want} outcome, but the cohort's outcome "
            f"is {have}; choose an analysis for {have} outcomes or another cohort")
    if want in ("continuous", "binary") and any(h > 0 for h in design.dropout_hazards()):
        raise InvalidScenarioError(
            "dropout.per_month: dropout applies to longitudinal and time-to-event endpoints; a single "
            f"{want} measurement has no follow-up time. Set it to 0")
    problems = expression_problems_on_cohort(design, schema, frame)
    if problems:
        raise InvalidScenarioError(problems)


def randomize(replicates: int, n_total: int, treated_fraction: float, *, rng: np.random.Generator) -> np.ndarray:
    """``(R, N)`` bool treated indicator: ``round(N * fraction)`` treated per replicate, in random order."""
    return assign_arms(Randomization(), (1.0 - treated_fraction, treated_fraction), replicates, n_total,
                       rng=rng).astype(bool)


def simulate_trials(generator, design: TrialDesign, n_total: int, replicates: int, *,
                    rng: np.random.Generator, return_draw: bool = False):
    """``replicates`` trials of ``n_total`` randomized patients each from a fitted ``generator``: a
    :class:`TrialBatch`, or ``(batch, draw)`` with ``return_draw`` (the
    :class:`~cohorts.generators.latent.PatientDraw` of all ``replicates * n_total`` randomized patients,
    replicate-major: e.g. their baseline covariates).

    Streams: ``rng.spawn(4)`` gives the patients, the arms (and responders), the outcomes' noise and dropout; a
    second ``rng.spawn(3)`` the entry times, the visit windows and a hybrid design's synthetic controls (drawn only
    when the design has them, so a design without them gives the same trials as before they existed)."""
    schema = generator.schema_ if hasattr(generator, "schema_") else None
    if schema is not None:
        check_design_fits_cohort(design, schema)
    R, N = int(replicates), int(n_total)
    rng_draw, rng_arm, rng_out, rng_drop = rng.spawn(4)
    rng_entry, rng_window, rng_hybrid = rng.spawn(3)
    conditions = design.eligibility.conditions() if design.eligibility is not None else None
    draw = _draw(generator, R * N, rng_draw, conditions)
    strata = bool(design.randomization.strata)
    arm = assign_arms(design.randomization, [a.allocation for a in design.arms], R, N, rng=rng_arm,
                      baseline=draw.baseline if strata else None)
    entry = entry_times(design.accrual, R, N, rng=rng_entry)
    param, drift = _parameters(design, arm, draw, rng_arm)
    out = _outcomes(draw.outcome, design, param, arm, entry, rng_out=rng_out, rng_drop=rng_drop,
                    rng_window=rng_window, drift=drift)
    if design.hybrid is not None:
        M = design.hybrid.synthetic_controls
        rng_syn_draw, rng_syn_out, rng_syn_drop, rng_syn_window = rng_hybrid.spawn(4)
        syn = _draw(generator, R * M, rng_syn_draw, conditions)
        zeros = np.zeros((R, M), dtype=np.int8)
        syn_out = _outcomes(syn.outcome, design, np.zeros(R * M), zeros, np.zeros((R, M)), rng_out=rng_syn_out,
                            rng_drop=rng_syn_drop, rng_window=rng_syn_window, cut=False)
        out = {k: (np.concatenate([v, syn_out[k]], axis=1) if k in PATIENT_FIELDS and v is not None else v)
               for k, v in out.items()}
        arm = np.concatenate([arm, zeros], axis=1)
        out["entry"] = np.concatenate([entry, np.zeros((R, M))], axis=1)
        out["synthetic"] = np.concatenate([np.zeros((R, N), bool), np.ones((R, M), bool)], axis=1)
    else:
        out["entry"] = entry
    kind = design.endpoint.outcome_type
    unit = "months" if kind == "longitudinal" else getattr(draw.outcome, "time_unit", None)
    batch = TrialBatch(kind, arm == 1, time_unit=unit, arm=arm if design.n_treatments > 1 else None, **out)
    return (batch, draw) if return_draw else batch


def _draw(generator, n: int, rng, conditions):
    return generator.draw(n, rng=rng) if conditions is None else generator.draw(n, rng=rng, conditions=conditions)


def _parameters(design: TrialDesign, arm: np.ndarray, draw, rng_arm) -> tuple[np.ndarray, float]:
    """``(param, drift)``: per-patient latent effect parameter (flat, replicate-major) of each treatment arm's
    effect, and a hybrid design's drift for every randomized patient (on the same latent scale). The drift is
    folded into ``param`` except for a time-varying hazard ratio, whose schedule must not switch it off."""
    flat = arm.ravel()
    param = np.zeros(flat.size)
    for k, effect in enumerate(design.effects, start=1):
        # responders are drawn after the randomization from the same stream, so designs without them are unchanged
        param = param + per_patient_parameter(effect, flat == k, rng=rng_arm,
                                              baseline=draw.baseline if effect.subgroup else None)
    if design.hybrid is None or design.hybrid.drift is None:
        return param, 0.0
    drift = latent_parameter(design.effect, design.hybrid.drift)
    if design.effect.is_time_varying:
        return param, drift
    if design.effect.kind == "slope_reduction":    # slowings compose multiplicatively
        return 1.0 - (1.0 - param) * (1.0 - drift), 0.0
    return param + drift, 0.0


def _outcomes(latent, design: TrialDesign, param, arm, entry, *, rng_out, rng_drop, rng_window,
              cut: bool = True, drift: float = 0.0) -> dict:
    """The arrays of a :class:`TrialBatch` for patients with latent outcomes ``latent`` (``R * N``, flat),
    effect parameters ``param``, arms ``(R, N)`` and entry months ``(R, N)``; ``cut``: apply the calendar data cut
    (synthetic controls of a hybrid design are observed in full); ``drift``: a log hazard ratio applied at all
    times on top of a time-varying effect."""
    R, N = arm.shape
    ep = design.endpoint
    kind = ep.outcome_type
    hazards = np.asarray(design.dropout_hazards())
    hazard = hazards[0] if np.all(hazards == hazards[0]) else hazards[arm]      # per month
    effect = design.effect

    if kind == "longitudinal":
        unit = latent.time_unit
        nominal = np.asarray(ep.visits_months, float)
        actual = visit_times_actual(nominal, ep.visit_window_months, (R, N), rng=rng_window)
        times = months_to_unit(nominal if actual is None else actual.reshape(R * N, -1), unit)
        y = latent.values(times, slowing=param, rng=rng_out).reshape(R, N, -1)
        if np.any(hazards > 0):
            gone = dropout_missing(y, nominal if actual is None else actual, hazard,
                                   design.dropout.hazard_ratio_per_unit_change, rng=rng_drop)
            y = np.where(gone, np.nan, y)
        end = entry[:, -1] + nominal[-1] if actual is None else np.max(entry + actual[..., -1], axis=1)
        return {"y": y, "visit_times": nominal, "visit_times_actual": actual, "analysis_time": end}

    if kind == "tte":
        unit = latent.time_unit
        if effect.is_time_varying:
            breaks, lhr = piecewise_log_hazard_ratios(effect, param)
            t_event = latent.event_time_piecewise(breaks, lhr + drift).reshape(R, N)
        else:
            t_event = latent.event_time(param).reshape(R, N)
        leave = None
        if np.any(hazards > 0):
            with np.errstate(divide="ignore"):
                leave = months_to_unit(rng_drop.exponential(1.0, size=(R, N)) * (1.0 / hazard), unit)
        time_full, event_full = observe_tte(t_event, ep.followup, leave)
        entry_u = months_to_unit(entry, unit)
        if ep.events is not None and cut:
            at = event_cut(time_full, event_full, entry_u, ep.events)
        else:
            at = np.max(entry_u + time_full, axis=1)
        time, event = cut_tte(time_full, event_full, entry_u, at) if cut else (time_full, event_full)
        return {"time": time, "event": event, "time_full": time_full, "event_full": event_full,
                "analysis_time": at * float(months_to_unit(1.0, "months") / months_to_unit(1.0, unit))}

    end = entry[:, -1] + ep.assessment_months
    if kind == "continuous":
        return {"y": latent.value(param).reshape(R, N).astype(float), "analysis_time": end}
    if kind == "binary":
        y = latent.value(risk_difference=param) if effect.kind == "risk_difference" else latent.value(param)
        return {"y": y.reshape(R, N).astype(float), "analysis_time": end}
    raise InvalidScenarioError(f"endpoint: unsupported outcome type {kind!r}")
