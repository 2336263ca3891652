"""Generator: pick a family (or auto), train it with progress, evaluate it on held-out patients, compare
families, and save / load a trained generator. Logic: app_pages/_generator_jobs.py; drawing:
app_pages/_generator_views.py."""

from __future__ import annotations

import streamlit as st

from analysis.plots import validation_figures
from app_pages._generator_jobs import adopt_generator_jobs, evaluation_key, start_comparison, start_evaluation
from app_pages._generator_views import (comparison_table, detection_chart, figure_tabs, hyperparameter_form, poll,
                                        save_load, show_evaluation, show_generator)
from app_pages._state import DEFAULT_SEED, generator_meta, job_running, need, show_error, sidebar, start_fit, widget
from cohorts.errors import WorkbenchError
from cohorts.generators import REGISTRY, available_generators

ss = st.session_state
sidebar()
adopt_generator_jobs()
st.title("2 · Synthetic-patient generator")
cohort = need("cohort", "Data", "choose a cohort")

# ------------------------------------------------------------------------------------------ train
names = available_generators()
c1, c2 = st.columns([2, 1])
name = widget(c1.selectbox, "Generator family", "generator_name", "default", page="generator", options=names,
              format_func=lambda n: f"{n}: {REGISTRY[n].description}" if REGISTRY[n].description else n)
seed = int(widget(c2.number_input, "Seed", "seed", DEFAULT_SEED, page="generator", min_value=0, step=1,
                  help="One seed drives training, evaluation and the power simulation (same seed, same numbers in "
                       "the app, the command line and the report)."))
ss["seed"] = seed
params, params_ok = hyperparameter_form(name)
meta = generator_meta(cohort, name, seed)
same = ss.get("generator_meta") == meta and ss.get("generator_params", {}) == params
fitted = ss.get("generator") if same else None
session_gen = ss.get("generator") if (ss.get("generator_meta") or ("",))[0] == cohort.sha256 else None

busy = job_running("fit_job") or job_running("power_job")
st.button("Train generator" if fitted is None else "Train again", type="primary", disabled=busy or not params_ok,
          on_click=start_fit, args=(cohort, name, seed, params))
poll("fit_job")
if fitted is not None:
    show_generator(fitted, seed)
elif not job_running("fit_job"):
    other = (f" (the session's generator is **{ss['generator_meta'][1]}**, seed {ss['generator_meta'][2]}, "
             "with other settings)") if session_gen is not None else ""
    st.info(f"Train **{name}** on all {cohort.n_patients:,} patients of **{cohort.name}** (seed {seed}){other}.")

# --------------------------------------------------------------------------------------- evaluate
st.subheader("Evaluate on held-out patients")
st.caption("Evaluation trains the same family, seed and hyperparameters on a random 70 % of the patients and scores "
           "it against the other 30 %, patients it never saw, so the scores are honest (a generator that memorised "
           "its training patients would look perfect on them). The generator used for trials is trained on all "
           "patients, so that none is wasted (more patients rarely make a generator worse).")
st.button("Evaluate", disabled=job_running("eval_job") or not params_ok, on_click=start_evaluation,
          args=(cohort, name, seed, params))
poll("eval_job")
run = ss.get("evaluation")
if run is not None:
    show_evaluation(run, evaluation_key(cohort, name, seed, params))
validation = None
if fitted is not None:
    fig_key = ("figs", id(fitted), cohort.sha256)
    if ss.get("validation_figs", (None, None))[0] != fig_key:
        try:
            with st.spinner("Drawing synthetic patients..."):
                ss["validation_figs"] = (fig_key, validation_figures(cohort, fitted, seed=seed))
        except WorkbenchError as exc:
            show_error(exc)
    if ss.get("validation_figs", (None, None))[0] == fig_key:
        validation = ss["validation_figs"][1]
figure_tabs(validation, run)
if validation:
    st.caption(f"Real vs synthetic: {cohort.n_patients:,} patients drawn with seed {seed} from the generator trained "
               f"on all patients; 'Held-out' tabs: the evaluation above.")

# ---------------------------------------------------------------------------------------- compare
st.subheader("Compare families")
candidates = [n for n in ("copula", "cart") if n in names]
families = widget(st.multiselect, "Families to compare", "compare_families", candidates, page="generator",
                  options=[n for n in names if n not in ("auto", "default")],
                  help="Each is trained on the same 70 % of patients and scored on the same 30 %. The neural "
                       "families (tvae, ctgan) train about 3,000 steps each: minutes on a few thousand patients.")
st.button("Compare", disabled=job_running("compare_job") or not families, on_click=start_comparison,
          args=(cohort, families, seed))
poll("compare_job")
comparison = ss.get("comparison")
if comparison is not None:
    if comparison.key != (cohort.sha256, tuple(families), seed):
        st.warning("This comparison is for other families, another seed or another cohort; compare again to update.")
    st.caption(f"{comparison.n_train:,} training and {comparison.n_holdout:,} held-out patients; best first.")
    comparison_table(comparison.table, key="comparison_table")
    st.plotly_chart(detection_chart(comparison.table), key="comparison_chart", theme=None)

# ------------------------------------------------------------------------------------- save / load
st.subheader("Save / load")
save_load(cohort, session_gen)
st.page_link("app_pages/design.py", label="Next: design the trial", icon=":material/arrow_forward:")
