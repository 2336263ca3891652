"""Replicate trials from a fitted generator, batched over a replicate axis.

One call draws ``replicates * n_total`` synthetic patients at once, randomizes them to the two arms with the
design's allocation (fixed arm sizes, random order within each replicate), realizes each patient's outcome
under control or treatment (counterfactual transform of the same latent draws; responder, subgroup and
time-varying effects as in :mod:`trials.effects`), and applies loss to follow-up (exponential dropout) and
administrative censoring. No Python loop over replicates.
"""

from __future__ import annotations

import numpy as np

from cohorts.errors import InvalidScenarioError
from cohorts.schema import DAYS_PER_UNIT, CohortSchema
from trials.batch import TrialBatch
from trials.design import TrialDesign
from trials.effects import per_patient_parameter, piecewise_log_hazard_ratios

__all__ = ["simulate_trials", "randomize", "check_design_fits_cohort", "months_to_unit"]


def months_to_unit(months, unit: str) -> np.ndarray:
    """Convert months to ``unit`` (days, weeks, months, years)."""
    return np.asarray(months, dtype=float) * DAYS_PER_UNIT["months"] / DAYS_PER_UNIT[unit]


def check_design_fits_cohort(design: TrialDesign, schema: CohortSchema) -> None:
    """Raise :class:`InvalidScenarioError` if the design's analysis does not suit the cohort's outcome, or the
    effect's subgroup names a column that is not a baseline covariate of the cohort."""
    have, want = schema.outcome.type, design.endpoint.outcome_type
    if have != want:
        raise InvalidScenarioError(
            f"endpoint.analysis: {design.endpoint.analysis!r} analyses a {want} outcome, but the cohort's outcome "
            f"is {have}; choose an analysis for {have} outcomes or another cohort")
    if want in ("continuous", "binary") and design.dropout.per_month > 0:
        raise InvalidScenarioError(
            "dropout.per_month: dropout applies to longitudinal and time-to-event endpoints; a single "
            f"{want} measurement has no follow-up time. Set it to 0")
    crit = design.effect.criteria()
    if crit is not None:
        try:
            crit.check(schema.baseline)
        except InvalidScenarioError as exc:
            raise InvalidScenarioError([f"arms[{design.treatment.name}].effect.subgroup: {p}"
                                        for p in exc.problems]) from None


def randomize(replicates: int, n_total: int, treated_fraction: float, *, rng: np.random.Generator) -> np.ndarray:
    """``(R, N)`` bool treated indicator: ``round(N * fraction)`` treated per replicate, in random order."""
    n_treated = int(round(n_total * treated_fraction))
    n_treated = min(max(n_treated, 1), n_total - 1)
    template = np.zeros(n_total, dtype=bool)
    template[:n_treated] = True
    return rng.permuted(np.broadcast_to(template, (replicates, n_total)), axis=1)


def simulate_trials(generator, design: TrialDesign, n_total: int, replicates: int, *,
                    rng: np.random.Generator, return_draw: bool = False):
    """``replicates`` trials of ``n_total`` patients each from a fitted ``generator``: a :class:`TrialBatch`,
    or ``(batch, draw)`` with ``return_draw`` (the :class:`~cohorts.generators.latent.PatientDraw` of all
    ``replicates * n_total`` patients, replicate-major: e.g. their baseline covariates)."""
    schema = generator.schema_ if hasattr(generator, "schema_") else None
    if schema is not None:
        check_design_fits_cohort(design, schema)
    R, N = int(replicates), int(n_total)
    rng_draw, rng_arm, rng_out, rng_drop = rng.spawn(4)
    draw = generator.draw(R * N, rng=rng_draw)
    batch = _outcomes(draw, design, R, N, rng_arm=rng_arm, rng_out=rng_out, rng_drop=rng_drop)
    return (batch, draw) if return_draw else batch


def _outcomes(draw, design: TrialDesign, R: int, N: int, *, rng_arm, rng_out, rng_drop) -> TrialBatch:
    """Randomize the drawn patients, apply the effect and the observation process (see :func:`simulate_trials`)."""
    treated = randomize(R, N, design.treated_fraction, rng=rng_arm)
    effect = design.effect
    # responders are drawn after the randomization from the same stream, so designs without them are unchanged
    param = per_patient_parameter(effect, treated.ravel(), baseline=draw.baseline if effect.subgroup else None,
                                  rng=rng_arm)
    latent = draw.outcome
    kind = design.endpoint.outcome_type
    hazard_month = design.dropout.hazard_per_month

    if kind == "longitudinal":
        unit = latent.time_unit
        visits = months_to_unit(design.endpoint.visits_months, unit)
        y = latent.values(visits, slowing=param, rng=rng_out).reshape(R, N, -1)
        if hazard_month > 0:
            leave = rng_drop.exponential(1.0 / hazard_month, size=(R, N))  # months
            gone = np.asarray(design.endpoint.visits_months)[None, None, :] > leave[..., None]
            y = np.where(gone, np.nan, y)
        return TrialBatch(kind, treated, y=y, visit_times=np.asarray(design.endpoint.visits_months, float),
                          time_unit="months")

    if kind == "tte":
        unit = latent.time_unit
        if effect.is_time_varying:
            t_event = latent.event_time_piecewise(*piecewise_log_hazard_ratios(effect, param)).reshape(R, N)
        else:
            t_event = latent.event_time(param).reshape(R, N)
        censor = np.full((R, N), float(design.endpoint.followup))
        if hazard_month > 0:
            leave = months_to_unit(rng_drop.exponential(1.0 / hazard_month, size=(R, N)), unit)
            censor = np.minimum(censor, leave)
        event = t_event <= censor
        return TrialBatch(kind, treated, time=np.where(event, t_event, censor), event=event, time_unit=unit)

    if kind == "continuous":
        return TrialBatch(kind, treated, y=latent.value(param).reshape(R, N).astype(float))
    if kind == "binary":
        y = latent.value(risk_difference=param) if effect.kind == "risk_difference" else latent.value(param)
        return TrialBatch(kind, treated, y=y.reshape(R, N).astype(float))
    raise InvalidScenarioError(f"endpoint: unsupported outcome type {kind!r}")
