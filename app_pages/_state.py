"""Session state and background jobs shared by the app pages (keeps every page thin).

Plain session keys (they survive page switches, unlike widget keys):

* ``cohort`` (:class:`~cohorts.cohort.Cohort`), ``upload`` ((file name, bytes) of the last upload);
* ``generator`` (fitted) and ``generator_meta`` (cohort SHA-256, generator name, seed it was fitted with);
  ``generator_params`` (hyperparameters changed from the family's defaults) and ``generator_card`` (the
  model card when the generator was loaded from a file, else absent);
* ``design``, ``settings``, ``seed``: the current design, power settings and seed (set by the Design page);
* ``form``: every widget's last value, so a page shows what the user entered when they come back;
* ``fit_job``, ``power_job``, ``sample_size_job``, ``sweep_job`` (and ``eval_job``, ``compare_job``):
  :class:`~app_pages._jobs.Job` objects running in background threads (started by :func:`start_job`, listed on
  the Runs page, cancellable);
* ``power_result`` and ``power_key``: the last finished power run and what it was computed for;
  ``power_run_dir``: its run directory (every run is written to the session's workspace, :mod:`app_pages._runs`);
* ``workspace_token``: the workspace key, also in the address (:mod:`app_pages._session`);
* ``eligibility_preview`` (the Design page's synthetic acceptance rate, cached), ``proact_import`` and
  ``schema_applied`` (the Data page's PRO-ACT import and schema-file upload, applied once).

Widget keys start with ``w_``; every other key is kept for a browser refresh (:mod:`app_pages._session`).
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from app_pages._jobs import Job
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
def start_job(name: str, fn: Callable, *, label: str, key=None, kind: str = "job", title: str = "",
              run_path=None, scenario: str | None = None) -> Job:
    """Start ``fn(progress)`` as a background :class:`~app_pages._jobs.Job` of this session's workspace and keep
    it under ``session_state[name]`` (listed on the Runs page; it survives a refresh)."""
    from app_pages._runs import workspace
    job = Job(fn, label=label, key=key, kind=kind, title=title, folder=workspace(), run_path=run_path,
              scenario=scenario)
    st.session_state[name] = job
    return job


def job_running(name: str) -> bool:
    job = st.session_state.get(name)
    return job is not None and job.running


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def progress_text(job) -> str:
    """``Simulating: N = 120 (35 s, about 1 min 10 s left)``."""
    eta = job.eta
    left = "estimating the time left" if eta is None else f"about {duration(eta)} left"
    what = "cancelling" if job.state == "cancelling" else job.message
    return f"{job.label}: {what} ({duration(job.elapsed)}, {left})"


def show_bug(exc: BaseException, what: str) -> None:
    """An internal error: a plain sentence, the details folded away (for a bug report), never a bare traceback."""
    st.error(f"Internal error while {what.lower()}: {type(exc).__name__}. This is a bug in the workbench, not a "
             "problem with your input; your data and earlier results are kept. Please report it with the details "
             "below.")
    with st.expander("Technical details (for a bug report)"):
        st.exception(exc)


def show_job(name: str) -> None:
    """Progress with the time left and a Cancel button while running; the error once failed; a note once
    cancelled."""
    job = st.session_state.get(name)
    if job is None:
        return
    if job.running:
        c1, c2 = st.columns([6, 1])
        c1.progress(job.fraction, text=progress_text(job))
        c2.button("Cancel", key=f"w_cancel_{name}_{job.id}", on_click=job.cancel, disabled=job.state != "running",
                  help="Stops at the next progress step; nothing is written.")
    elif job.state == "cancelled":
        st.info(f"{job.label} was cancelled after {duration(job.elapsed)}; nothing was written.")
    elif job.error is not None:
        show_error(job.error)
    elif job.exception is not None:
        show_bug(job.exception, job.label)


def adopt_finished_jobs() -> bool:
    """Move finished job results into the plain session keys; True when something was adopted."""
    ss = st.session_state
    changed = False
    fit = ss.get("fit_job")
    if fit is not None and not fit.running and not fit.adopted:
        fit.adopted = True
        if fit.result is not None and fits_session_cohort(fit.result):
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
            if ss.get("generator_meta") != meta and fits_session_cohort(generator):
                ss["generator"], ss["generator_meta"] = generator, meta
                ss["generator_params"] = {}
                ss.pop("generator_card", None)
            changed = True
    return changed


def fits_session_cohort(generator) -> bool:
    """Whether a generator that finished training in the background was trained with the session cohort's column
    roles: the roles may have changed meanwhile while the data (and so the generator's key) stayed the same."""
    cohort = st.session_state.get("cohort")
    schema = getattr(generator, "schema_", None)
    return cohort is not None and (schema is None or schema == cohort.schema)


def generator_meta(cohort, name: str, seed: int) -> tuple:
    return (cohort.sha256, name, int(seed))


def start_fit(cohort, name: str, seed: int, params: dict | None = None) -> None:
    """Fit in a thread with progress; ``params``: hyperparameters changed from the family's defaults."""
    from analysis.workflow import fit_generator
    params = dict(params or {})

    def work(progress):
        progress(0.0, f"training generator {name!r} on {cohort.n_patients:,} patients")
        return fit_generator(cohort, name, seed=seed, progress=progress, **params)
    job = start_job("fit_job", work, label="Training", key=generator_meta(cohort, name, seed), kind="train",
                    title=f"{name} generator on {cohort.name} (seed {seed})")
    job.params = params


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
    slot.caption("  \n".join(lines))
    if first:
        sidebar_jobs()
        from app_pages._scenario_io import scenario_sidebar
        scenario_sidebar()
    return slot


def sidebar_jobs() -> None:
    """The workspace's running jobs in the sidebar, each with its progress, time left and a Cancel button,
    refreshed every second; a full rerun once one of them ends (so the page shows its result)."""
    from app_pages._jobs import jobs_in
    from app_pages._runs import workspace
    folder = workspace()
    watched = [j for j in jobs_in(folder) if j.running]

    @st.fragment(run_every=1.0 if watched else None)
    def _jobs() -> None:
        if any(not j.running for j in watched):
            st.rerun()
        for j in watched:
            st.progress(j.fraction, text=progress_text(j))
            st.button("Cancel", key=f"w_sidebar_cancel_{j.id}", on_click=j.cancel, disabled=j.state != "running")
        if watched:
            st.page_link("app_pages/runs.py", label="All runs of this workspace", icon=":material/history:")
    with st.sidebar:
        _jobs()


def need(key: str, page: str, what: str) -> object:
    """The session value under ``key``, or an info box pointing to the page that sets it (and stop)."""
    value = st.session_state.get(key)
    if value is None:
        st.info(f"First {what} on the **{page}** page.")
        st.page_link(f"app_pages/{page.lower()}.py", label=f"Go to {page}")
        st.stop()
    return value
