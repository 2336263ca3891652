"""Session state and background jobs shared by the app pages (keeps every page thin).

Plain session keys (they survive page switches, unlike widget keys):

* ``cohort`` (:class:`~cohorts.cohort.Cohort`), ``upload`` ((file name, bytes) of the last upload);
* ``generator`` (fitted) and ``generator_meta`` (cohort SHA-256, generator name, seed it was fitted with);
  ``generator_params`` (hyperparameters changed from the family's defaults) and ``generator_card`` (the
  model card when the generator was loaded from a file, else absent);
* ``design``, ``settings``, ``seed``: the current design, power settings and seed (set by the Design page);
* ``form``: every widget's last value, so a page shows what the user entered when they come back;
* ``fit_job``, ``power_job``: :class:`Job` objects running in background threads;
* ``power_result`` and ``power_key``: the last finished power run and what it was computed for;
  ``power_run_dir``: its run directory (every run is written to the session's workspace, :mod:`app_pages._runs`).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable

import streamlit as st

from cohorts.errors import WorkbenchError

DEFAULT_SEED = 20261122


# ----------------------------------------------------------------------------------------- widgets
def form() -> dict:
    return st.session_state.setdefault("form", {})


def widget(fn: Callable, label: str, name: str, default, *, page: str, options=None, **kwargs):
    """Call a streamlit widget whose value is remembered under ``form[name]`` across page switches.

    The widget key (``w_<page>_<name>``) is recreated from the plain ``form`` dict whenever streamlit has
    dropped it, then the widget's value is copied back to ``form``.
    """
    key = f"w_{page}_{name}"
    store = form()
    value = st.session_state[key] if key in st.session_state else store.get(name, default)
    if options is not None:  # a remembered value must still be a valid option
        opts = list(options)
        if fn is st.multiselect or getattr(fn, "__name__", "") == "multiselect":
            value = [v for v in (value or []) if v in opts]
        elif value not in opts:
            value = default if default in opts else (opts[0] if opts else None)
    if key not in st.session_state or st.session_state[key] != value:
        st.session_state[key] = value
    if options is not None:
        kwargs["options"] = options
    value = fn(label, key=key, **kwargs)
    store[name] = value
    return value


def show_error(exc: WorkbenchError) -> None:
    """A workbench error as one st.error box listing every problem."""
    problems = getattr(exc, "problems", None)
    if problems and len(problems) > 1:
        where = f" in {exc.source}" if getattr(exc, "source", None) else ""
        st.error(f"{len(problems)} problems{where}:\n\n" + "\n".join(f"- {p}" for p in problems))
    else:
        st.error(str(exc))


# -------------------------------------------------------------------------------------------- jobs
class Job:
    """``fn(progress)`` running in a daemon thread; ``progress(fraction, message)`` updates the job."""

    def __init__(self, fn: Callable[[Callable[[float, str], None]], object], *, label: str, key=None):
        self.label, self.key = label, key
        self.fraction, self.message = 0.0, "starting"
        self.result = None
        self.error: WorkbenchError | None = None
        self.exception: BaseException | None = None
        self.traceback = ""
        self.started, self.finished = time.time(), None
        self.adopted = False
        self._thread = threading.Thread(target=self._run, args=(fn,), name=f"job-{label}", daemon=True)
        self._thread.start()

    def progress(self, fraction: float, message: str) -> None:
        self.fraction, self.message = min(max(float(fraction), 0.0), 1.0), message

    def _run(self, fn) -> None:
        try:
            self.result = fn(self.progress)
            self.fraction = 1.0
        except WorkbenchError as exc:
            self.error = exc
        except Exception as exc:  # noqa: BLE001 - a bug: kept and shown with its traceback
            self.exception, self.traceback = exc, traceback.format_exc()
        finally:
            self.finished = time.time()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def elapsed(self) -> float:
        return (self.finished or time.time()) - self.started

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)


def job_running(name: str) -> bool:
    job = st.session_state.get(name)
    return job is not None and job.running


def show_job(name: str) -> None:
    """Progress while running; the error (or the bug's traceback) once failed."""
    job = st.session_state.get(name)
    if job is None:
        return
    if job.running:
        st.progress(job.fraction, text=f"{job.label}: {job.message} ({job.elapsed:.0f} s)")
    elif job.error is not None:
        show_error(job.error)
    elif job.exception is not None:
        st.exception(job.exception)


def adopt_finished_jobs() -> bool:
    """Move finished job results into the plain session keys; True when something was adopted."""
    ss = st.session_state
    changed = False
    fit = ss.get("fit_job")
    if fit is not None and not fit.running and not fit.adopted:
        fit.adopted = True
        if fit.result is not None:
            ss["generator"], ss["generator_meta"] = fit.result, fit.key
            ss["generator_params"] = dict(getattr(fit, "params", {}))
            ss.pop("generator_card", None)
            changed = True
    job = ss.get("power_job")
    if job is not None and not job.running and not job.adopted:
        job.adopted = True
        if job.result is not None:
            generator, result, run_dir = job.result
            ss["power_result"], ss["power_key"], ss["power_run_dir"] = result, job.key, run_dir
            meta = (job.key[0], job.key[1], job.key[2])
            if ss.get("generator_meta") != meta:
                ss["generator"], ss["generator_meta"] = generator, meta
                ss["generator_params"] = {}
                ss.pop("generator_card", None)
            changed = True
    return changed


def generator_meta(cohort, name: str, seed: int) -> tuple:
    return (cohort.sha256, name, int(seed))


def start_fit(cohort, name: str, seed: int, params: dict | None = None) -> None:
    """Fit in a thread with progress; ``params``: hyperparameters changed from the family's defaults."""
    from analysis.workflow import fit_generator
    params = dict(params or {})

    def work(progress):
        progress(0.0, f"training generator {name!r} on {cohort.n_patients:,} patients")
        return fit_generator(cohort, name, seed=seed, progress=progress, **params)
    job = Job(work, label="Training", key=generator_meta(cohort, name, seed))
    job.params = params
    st.session_state["fit_job"] = job


def _run_context(cohort, generator_name: str, design, settings, seed: int, kind: str):
    """(fitted generator or None, its hyperparameters, scenario, run directory path, evaluation or None) of a
    run about to start, taken from the session before the background thread starts."""
    from app_pages._runs import new_run_path, session_scenario
    ss = st.session_state
    meta = generator_meta(cohort, generator_name, seed)
    fitted = ss.get("generator") if ss.get("generator_meta") == meta else None
    params = dict(ss.get("generator_params", {})) if fitted is not None else {}
    title = f"{cohort.name}: {design.effect.describe()}, {design.endpoint.analysis} analysis"
    scenario = session_scenario(cohort, generator_name, params, design, settings, seed, title)
    from app_pages._generator_jobs import evaluation_key
    ev = ss.get("evaluation")
    evaluation = ev if ev is not None and ev.key == evaluation_key(cohort, generator_name, seed, params) else None
    return fitted, params, scenario, new_run_path(kind), evaluation


def _save_run(path, kind, scenario, cohort, generator, result, started, settings, evaluation, progress,
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


def _now():
    from datetime import datetime, timezone
    return datetime.now(timezone.utc)


def start_power(cohort, generator_name: str, design, settings, seed: int) -> None:
    """Fit (unless the session's generator matches cohort, name and seed) then simulate power, in a thread, and
    write the run directory (:mod:`app_pages._runs`)."""
    from analysis.workflow import fit_generator, run_power
    ss = st.session_state
    fitted, params, scenario, path, evaluation = _run_context(cohort, generator_name, design, settings, seed,
                                                              "power")

    def work(progress):
        started = _now()
        gen = fitted
        if gen is None:  # retrain with the family's defaults (what the scenario file then records)
            progress(0.0, f"training generator {generator_name!r}")
            gen = fit_generator(cohort, generator_name, seed=seed, **params)
        result = run_power(gen, design, settings, seed=seed, progress=lambda f, m: progress(0.95 * f, m))
        run_dir = _save_run(path, "power", scenario, cohort, gen, result, started,
                            {"seed": seed, "replicates": settings.replicates}, evaluation, progress)
        return gen, result, run_dir
    ss["power_job"] = Job(work, label="Simulating", key=(*generator_meta(cohort, generator_name, seed), design,
                                                         settings))


def start_sample_size(cohort, generator_name: str, design, settings, seed: int, target: float) -> None:
    """Fit (unless the session's generator matches) then search the smallest N reaching ``target``, in a thread
    (:func:`analysis.workflow.run_sample_size`: the numbers of ``insilico sample-size`` for the same seed), and
    write the run directory."""
    from analysis.workflow import default_search_range, fit_generator, run_sample_size
    ss = st.session_state
    fitted, params, scenario, path, _ = _run_context(cohort, generator_name, design, settings, seed, "sample_size")
    n_min, n_max = default_search_range(settings.n_total)

    def work(progress):
        started = _now()
        gen = fitted
        if gen is None:
            progress(0.0, f"training generator {generator_name!r}")
            gen = fit_generator(cohort, generator_name, seed=seed, **params)
        progress(0.05, f"searching N for power {target:.0%}")
        res = run_sample_size(gen, design, settings, seed=seed, target=target, n_min=n_min, n_max=n_max)
        _save_run(path, "sample_size", scenario, cohort, gen, res, started,
                  {"seed": seed, "replicates": settings.replicates, "target": float(target), "n_min": n_min,
                   "n_max": n_max, "n_start": None}, None, progress)
        return res
    ss["sample_size_job"] = Job(work, label="Sample size", key=(*generator_meta(cohort, generator_name, seed),
                                                                design, settings, float(target)))


def current_power_key():
    ss = st.session_state
    cohort, design, settings = ss.get("cohort"), ss.get("design"), ss.get("settings")
    if cohort is None or design is None or settings is None:
        return None
    return (*generator_meta(cohort, form().get("generator_name", "default"), ss.get("seed", DEFAULT_SEED)),
            design, settings)


# ----------------------------------------------------------------------------------------- sidebar
def sidebar(slot=None):
    """Adopt finished jobs and caption what is chosen so far; returns the sidebar slot it wrote into.

    A page that changes the cohort or design after the top-of-page call passes that slot back to rewrite it.
    """
    adopt_finished_jobs()
    first = slot is None
    slot = slot if slot is not None else st.sidebar.empty()
    ss = st.session_state
    cohort, design, settings = ss.get("cohort"), ss.get("design"), ss.get("settings")
    lines = [f"**Cohort:** {cohort.name} ({cohort.n_patients} patients, {cohort.schema.outcome.type})"
             if cohort is not None else "**Cohort:** none yet"]
    meta = ss.get("generator_meta")
    if ss.get("generator") is not None and cohort is not None and meta and meta[0] == cohort.sha256:
        how = ", loaded from a file" if ss.get("generator_card") else ""
        how += ", custom hyperparameters" if ss.get("generator_params") else ""
        lines.append(f"**Generator:** {meta[1]} (seed {meta[2]}{how})")
    else:
        lines.append("**Generator:** not trained")
    if design is not None and settings is not None:
        lines.append(f"**Design:** {design.endpoint.analysis}, {design.effect.describe()}, "
                     f"N = {', '.join(map(str, settings.n_total))}, {settings.replicates} replicates")
    else:
        lines.append("**Design:** not set")
    if job_running("power_job") or job_running("fit_job"):
        lines.append("_A computation is running in the background._")
    slot.caption("  \n".join(lines))
    if first:
        from app_pages._scenario_io import scenario_sidebar
        scenario_sidebar()
    return slot


def need(key: str, page: str, what: str) -> object:
    """The session value under ``key``, or an info box pointing to the page that sets it (and stop)."""
    value = st.session_state.get(key)
    if value is None:
        st.info(f"First {what} on the **{page}** page.")
        st.page_link(f"app_pages/{page.lower()}.py", label=f"Go to {page}")
        st.stop()
    return value
