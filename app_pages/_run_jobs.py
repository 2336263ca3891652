"""Starting the runs that write a run directory (power, sample size, sweep) as background jobs of the session.

Each run takes what it needs from the session before its thread starts (:func:`run_context`: the fitted
generator when it matches cohort, family and seed, the scenario, a fresh run directory path, the session's
evaluation), fits the generator when needed, computes, and writes the run directory
(:func:`analysis.run_dir.save_run`) into the session's workspace (:mod:`app_pages._runs`).
"""

from __future__ import annotations

import streamlit as st

from app_pages._design_form import form_params
from app_pages._state import form, generator_meta, start_job

__all__ = ["run_context", "save_run_dir", "scenario_text", "now", "start_power", "start_sample_size", "start_sweep"]


def run_context(cohort, generator_name: str, design, settings, seed: int, kind: str):
    """(fitted generator or None, its hyperparameters, scenario, run directory path, evaluation or None) of a
    run about to start, taken from the session before the background thread starts."""
    from app_pages._generator_jobs import evaluation_key
    from app_pages._runs import new_run_path, session_scenario
    ss = st.session_state
    meta = generator_meta(cohort, generator_name, seed)
    fitted = ss.get("generator") if ss.get("generator_meta") == meta else None
    # without a matching fitted generator the run trains one with the Generator page's hyperparameters
    params = dict(ss.get("generator_params", {})) if fitted is not None else form_params(generator_name, form())
    title = f"{cohort.name}: {design.effect.describe()}, {design.endpoint.analysis} analysis"
    scenario = session_scenario(cohort, generator_name, params, design, settings, seed, title)
    ev = ss.get("evaluation")
    evaluation = ev if ev is not None and ev.key == evaluation_key(cohort, generator_name, seed, params) else None
    return fitted, params, scenario, new_run_path(kind), evaluation


def save_run_dir(path, kind, scenario, cohort, generator, result, started, settings, evaluation, progress,
              grid_text=None):
    from analysis.run_dir import save_run
    from analysis.workflow import evaluate_family
    if evaluation is None and kind == "power":
        progress(0.97, "evaluating the generator on held-out patients (for the report)")
        ref = scenario.cohort
        evaluation = evaluate_family(cohort, ref.generator, seed=scenario.seed, params=ref.generator_params)
    progress(0.99, "writing the run directory")
    return save_run(path, kind=kind, scenario=scenario, cohort=cohort, generator=generator, result=result,
                    started=started, command=f"app: {kind.replace('_', '-')} run", settings=settings,
                    evaluation=evaluation, grid_text=grid_text)


def scenario_text(scenario) -> str:
    from trials.scenario import scenario_to_toml
    return scenario_to_toml(scenario)


def now():
    from datetime import datetime, timezone
    return datetime.now(timezone.utc)


def start_power(cohort, generator_name: str, design, settings, seed: int) -> None:
    """Fit (unless the session's generator matches cohort, name and seed) then simulate power, in a thread, and
    write the run directory (:mod:`app_pages._runs`)."""
    from analysis.workflow import fit_generator, run_power
    fitted, params, scenario, path, evaluation = run_context(cohort, generator_name, design, settings, seed,
                                                              "power")

    def work(progress):
        started = now()
        gen = fitted
        if gen is None:  # train with the form's hyperparameters (what the scenario file records)
            progress(0.0, f"training generator {generator_name!r}")
            gen = fit_generator(cohort, generator_name, seed=seed, **params)
        result = run_power(gen, design, settings, seed=seed, progress=lambda f, m: progress(0.95 * f, m))
        run_dir = save_run_dir(path, "power", scenario, cohort, gen, result, started,
                            {"seed": seed, "replicates": settings.replicates}, evaluation, progress)
        return gen, result, run_dir
    start_job("power_job", work, label="Simulating", key=(*generator_meta(cohort, generator_name, seed), design,
                                                         settings),
              kind="power", title=scenario.title, run_path=path, scenario=scenario_text(scenario))


def start_sample_size(cohort, generator_name: str, design, settings, seed: int, target: float) -> None:
    """Fit (unless the session's generator matches) then search the smallest N reaching ``target``, in a thread
    (:func:`analysis.workflow.run_sample_size`: the numbers of ``insilico sample-size`` for the same seed), and
    write the run directory."""
    from analysis.workflow import default_search_range, fit_generator, run_sample_size
    fitted, params, scenario, path, _ = run_context(cohort, generator_name, design, settings, seed, "sample_size")
    n_min, n_max = default_search_range(settings.n_total)

    def work(progress):
        started = now()
        gen = fitted
        if gen is None:
            progress(0.0, f"training generator {generator_name!r}")
            gen = fit_generator(cohort, generator_name, seed=seed, **params)
        progress(0.05, f"searching N for power {target:.0%}")
        res = run_sample_size(gen, design, settings, seed=seed, target=target, n_min=n_min, n_max=n_max)
        save_run_dir(path, "sample_size", scenario, cohort, gen, res, started,
                  {"seed": seed, "replicates": settings.replicates, "target": float(target), "n_min": n_min,
                   "n_max": n_max, "n_start": None}, None, progress)
        return res
    start_job("sample_size_job", work, label="Sample size", key=(*generator_meta(cohort, generator_name, seed),
                                                                design, settings, float(target)),
              kind="sample_size", title=f"{scenario.title}: N for power {target:.0%}", run_path=path,
              scenario=scenario_text(scenario))


def start_sweep(cohort, generator_name: str, scenario, grid) -> None:
    """Run :func:`analysis.sweep.run_sweep` in a thread with the session's fitted generator (fitted first when
    the session has none for this cohort, generator and seed), and write the run directory."""
    from analysis.sweep import run_sweep
    from analysis.workflow import fit_generator
    fitted, params, scen, path, _ = run_context(cohort, generator_name, scenario.design, scenario.power,
                                                 scenario.seed, "sweep")

    def work(progress):
        started = now()
        gen = fitted
        if gen is None:
            progress(0.0, f"training generator {generator_name!r}")
            gen = fit_generator(cohort, generator_name, seed=scenario.seed, **params)
        res = run_sweep(scenario, grid, generator=gen, progress=progress)
        save_run_dir(path, "sweep", scen, cohort, gen, res, started,
                  {"seed": scenario.seed, "replicates": scenario.power.replicates}, None, progress,
                  grid_text=grid.to_toml())
        return res
    meta = generator_meta(cohort, generator_name, scenario.seed)
    start_job("sweep_job", work, label="Sweep", key=(*meta, scenario.design, scenario.power, grid), kind="sweep",
              title=f"sweep of {grid.n_cells} cells: {scen.title}", run_path=path, scenario=scenario_text(scen))
