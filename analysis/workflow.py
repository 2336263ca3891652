"""From a scenario to numbers: the one code path shared by the CLI, the app and the report.

Seeds become generators here, at the edge: ``numpy.random.default_rng(seed).spawn(2)`` gives the generator's
training stream (child 0) and the trial simulation stream (child 1), so the same seed gives identical results
whichever interface runs it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.power import Progress, power_curve
from analysis.power_result import PowerResult
from cohorts.cohort import Cohort
from trials.design import PowerSettings, TrialDesign
from trials.scenario import CohortRef, Scenario
from trials.simulate import check_design_fits_cohort

__all__ = ["load_cohort_ref", "fit_generator", "run_power", "run_scenario", "ScenarioRun", "seed_streams",
           "evaluation_stream", "run_sample_size", "default_search_range", "evaluate_family", "HOLDOUT_FRACTION",
           "EvaluatedFamily", "load_and_fit"]

#: share of patients held out when a generator family is evaluated (app, ``insilico power --out``)
HOLDOUT_FRACTION = 0.3


def seed_streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """(training stream, simulation stream) derived from one seed."""
    fit_rng, sim_rng = np.random.default_rng(seed).spawn(2)
    return fit_rng, sim_rng


def evaluation_stream(seed: int) -> np.random.Generator:
    """The third child of the seed: train/holdout splits and evaluation samples (independent of the others)."""
    return np.random.default_rng(seed).spawn(3)[2]


def load_cohort_ref(ref: CohortRef) -> Cohort:
    """The cohort a scenario names: a built-in, or a data file read and validated with its schema."""
    if ref.builtin:
        from cohorts.builtin import load_builtin
        return load_builtin(ref.builtin)
    from cohorts.io import load_cohort
    from cohorts.schema import CohortSchema
    schema = CohortSchema.from_toml(ref.schema)
    return load_cohort(ref.data, schema, name=ref.data.name)


def fit_generator(cohort: Cohort, generator_name: str = "default", *, seed: int, data=None, progress=None,
                  **hyperparameters):
    """A generator of the named family fitted on ``cohort`` (or on ``data``, a subset of it) with the seed's
    training stream."""
    from cohorts.generators import get_generator
    fit_rng, _ = seed_streams(seed)
    frame = cohort.data if data is None else data
    return get_generator(generator_name, **hyperparameters).fit(frame, cohort.schema, rng=fit_rng, progress=progress)


def run_power(generator, design: TrialDesign, settings: PowerSettings, *, seed: int,
              progress: Progress | None = None) -> PowerResult:
    """Simulated power curve and type I error with the seed's simulation stream."""
    _, sim_rng = seed_streams(seed)
    return power_curve(generator, design, settings, rng=sim_rng, progress=progress, seed=seed)


def default_search_range(n_total) -> tuple[int, int]:
    """Sample-size search range from a power curve's sizes: half the smallest to four times the largest."""
    return max(4, min(n_total) // 2), 4 * max(n_total)


def run_sample_size(generator, design: TrialDesign, settings: PowerSettings, *, seed: int, target: float,
                    n_min: int | None = None, n_max: int | None = None, replicates: int | None = None,
                    n_start: int | None = None):
    """Smallest total N reaching ``target`` power by simulation, with the seed's simulation stream (the same
    numbers in the app and from ``insilico sample-size``); see :mod:`analysis.sample_size_sim`."""
    from analysis.sample_size_sim import simulated_sample_size
    lo, hi = default_search_range(settings.n_total)
    _, sim_rng = seed_streams(seed)
    return simulated_sample_size(generator, design, target, replicates=replicates or settings.replicates,
                                 alpha=settings.alpha, rng=sim_rng, n_min=n_min or lo, n_max=n_max or hi,
                                 n_start=n_start)


@dataclass(frozen=True, eq=False)
class ScenarioRun:
    scenario: Scenario
    cohort: Cohort
    generator: object
    result: PowerResult


def load_and_fit(scenario: Scenario, *, progress: Progress | None = None) -> tuple[Cohort, object]:
    """The scenario's cohort, checked against its design, and its generator fitted with the seed's training
    stream."""
    cohort = load_cohort_ref(scenario.cohort)
    check_design_fits_cohort(scenario.design, cohort.schema)
    if progress is not None:
        progress(0.0, f"fitting generator {scenario.cohort.generator!r}")
    generator = fit_generator(cohort, scenario.cohort.generator, seed=scenario.seed,
                              **scenario.cohort.generator_params)
    return cohort, generator


def run_scenario(scenario: Scenario, *, progress: Progress | None = None) -> ScenarioRun:
    """Load the cohort, fit the generator, simulate power: everything a scenario file asks for."""
    cohort, generator = load_and_fit(scenario)
    result = run_power(generator, scenario.design, scenario.power, seed=scenario.seed, progress=progress)
    return ScenarioRun(scenario, cohort, generator, result)


@dataclass(frozen=True, eq=False)
class EvaluatedFamily:
    """A family fitted on the training split and scored on the held-out patients."""

    report: object       # cohorts.evaluate.EvaluationReport
    n_train: int
    n_holdout: int


def evaluate_family(cohort: Cohort, generator_name: str, *, seed: int, params: dict | None = None,
                    holdout_fraction: float = HOLDOUT_FRACTION, progress=None) -> EvaluatedFamily:
    """Fit ``generator_name`` on ``1 - holdout_fraction`` of the patients (the seed's training stream) and
    evaluate it on the rest (:func:`cohorts.evaluate.evaluate_generator`; split and evaluation sample from
    :func:`evaluation_stream`): the same numbers as ``insilico train --holdout`` and the Generator page."""
    from cohorts.evaluate import evaluate_generator, split_train_holdout
    progress = progress or (lambda f, m: None)
    progress(0.0, f"splitting patients {1 - holdout_fraction:.0%} / {holdout_fraction:.0%}")
    train, holdout = split_train_holdout(cohort.data, cohort.schema, holdout_fraction=holdout_fraction,
                                         rng=evaluation_stream(seed))
    ids = cohort.schema.id
    n_train, n_holdout = int(train[ids].nunique()), int(holdout[ids].nunique())
    progress(0.05, f"training {generator_name!r} on {n_train:,} patients")
    gen = fit_generator(cohort, generator_name, seed=seed, data=train,
                        progress=lambda f, m: progress(0.05 + 0.6 * f, m), **(params or {}))
    progress(0.7, f"evaluating against {n_holdout:,} held-out patients")
    report = evaluate_generator(gen, train, holdout, cohort.schema, rng=evaluation_stream(seed))
    return EvaluatedFamily(report, n_train, n_holdout)
