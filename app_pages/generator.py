"""Generator: train a synthetic-patient generator on the cohort and compare synthetic with real patients."""

from __future__ import annotations

import streamlit as st

from analysis.plots import validation_figures
from app_pages._state import (DEFAULT_SEED, adopt_finished_jobs, generator_meta, job_running, need, show_job,
                              sidebar, start_fit, widget)
from cohorts.errors import WorkbenchError
from cohorts.generators import REGISTRY, available_generators

ss = st.session_state
sidebar()
st.title("2 · Synthetic-patient generator")
cohort = need("cohort", "Data", "choose a cohort")

names = available_generators()
c1, c2 = st.columns([2, 1])
name = widget(c1.selectbox, "Generator family", "generator_name", "default", page="generator", options=names,
              format_func=lambda n: f"{n}: {REGISTRY[n].description}" if REGISTRY[n].description else n)
seed = int(widget(c2.number_input, "Seed", "seed", DEFAULT_SEED, page="generator", min_value=0, step=1,
                  help="One seed drives training and the power simulation (same seed, same numbers in the app, "
                       "the command line and the report)."))
ss["seed"] = seed
meta = generator_meta(cohort, name, seed)
fitted = ss.get("generator") if ss.get("generator_meta") == meta else None

st.button("Train generator" if fitted is None else "Train again", type="primary",
          disabled=job_running("fit_job") or job_running("power_job"),
          on_click=start_fit, args=(cohort, name, seed))


@st.fragment(run_every=0.5 if job_running("fit_job") else None)
def progress() -> None:
    show_job("fit_job")
    if adopt_finished_jobs():
        st.rerun()


progress()
if fitted is None:
    if not job_running("fit_job"):
        st.info(f"Train the generator on {cohort.n_patients:,} patients of **{cohort.name}** (seed {seed}).")
    st.stop()

params = fitted.get_params()
st.success(f"Generator **{name}** trained on {fitted.n_train_:,} patients (seed {seed}).")
if params:
    st.caption("Hyperparameters: " + ", ".join(f"`{k} = {v!r}`" for k, v in params.items()))

fig_key = ("figs", id(fitted), cohort.sha256)
if ss.get("validation_figs", (None, None))[0] != fig_key:
    try:
        with st.spinner("Drawing synthetic patients..."):
            ss["validation_figs"] = (fig_key, validation_figures(cohort, fitted, seed=seed))
    except WorkbenchError as exc:
        st.error(str(exc))
        st.stop()
figs = ss["validation_figs"][1]
titles = {"marginals": "Baseline covariates", "trajectory": "Trajectories", "km": "Kaplan-Meier"}
tabs = st.tabs([titles.get(k, k) for k in figs])
for tab, (key, fig) in zip(tabs, figs.items()):
    with tab:
        st.plotly_chart(fig, key=f"fig_{key}", theme=None)
st.caption(f"Synthetic sample: {cohort.n_patients:,} patients drawn with seed {seed}; real = {cohort.name}.")
st.page_link("app_pages/design.py", label="Next: design the trial", icon=":material/arrow_forward:")
