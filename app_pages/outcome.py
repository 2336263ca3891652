"""Outcome: one trial, real (the session's cohort holds a two-arm trial) or one virtual trial simulated from the
design, as Table 1, Kaplan-Meier or mean trajectories, the primary analysis and a forest plot of subgroups."""

from __future__ import annotations

import streamlit as st

from analysis.estimators import SINGLE
from analysis.outcome_view import arm_levels, cohort_trial, forest_figure, simulate_one_trial, subgroup_effects
from analysis.workflow import seed_streams
from app_pages._state import DEFAULT_SEED, need, show_error, sidebar, widget
from cohorts.errors import WorkbenchError

ss = st.session_state
P = "outcome"
sidebar()
st.title("Outcome of one trial")
cohort = need("cohort", "Data", "choose a cohort")
design, settings = ss.get("design"), ss.get("settings")
alpha = float(settings.alpha) if settings is not None else 0.05

SIM, REAL = "One virtual trial (simulated from the design)", "Real trial in the cohort's data"
source = widget(st.radio, "Trial", "trial_source", SIM, page=P, options=[SIM, REAL], horizontal=True)


def arm_candidates() -> list[str]:
    """Two-level categorical covariates, names that look like an arm first."""
    cols = [c for c in cohort.schema.categorical if cohort.data[c].nunique() == 2]
    return sorted(cols, key=lambda c: not any(w in c.lower() for w in ("arm", "treat", "trt", "group", "drug")))


try:
    if source == SIM:
        design = need("design", "Design", "set the design")
        generator, meta = ss.get("generator"), ss.get("generator_meta")
        if generator is None or not meta or meta[0] != cohort.sha256:
            st.info("First train a generator on this cohort on the **Generator** page.")
            st.stop()
        c1, c2 = st.columns(2)
        n_default = int(settings.n_total[-1]) if settings is not None else 120
        n_total = int(widget(c1.number_input, "Patients (total N)", "trial_n", n_default, page=P, min_value=4,
                             step=10))
        seed = int(widget(c2.number_input, "Seed of this trial", "trial_seed", int(ss.get("seed", DEFAULT_SEED)),
                          page=P, min_value=0, step=1))
        key = (meta, design, n_total, seed)
        if ss.get("outcome_trial", (None,))[0] != key:
            _, sim_rng = seed_streams(seed)
            trial = simulate_one_trial(generator, design, n_total, rng=sim_rng,
                                       source=f"one virtual trial, {n_total} patients, seed {seed}")
            ss["outcome_trial"] = (key, trial)
        trial = ss["outcome_trial"][1]
        analysis = design.endpoint.analysis
        st.caption(f"Generator **{meta[1]}** (fitted with seed {meta[2]}); {design.effect.describe()}; "
                   f"dropout {design.dropout.per_month:.1%} per month. Synthetic patients, not patient data.")
    else:
        arms = arm_candidates()
        if not arms:
            st.info("The cohort has no two-level categorical column to use as the randomized arm. Upload a trial "
                    "with its arm column among the categorical covariates on the **Data** page.")
            st.stop()
        c1, c2, c3 = st.columns(3)
        arm = widget(c1.selectbox, "Arm column", "trial_arm", arms[0], page=P, options=arms)
        levels = arm_levels(cohort.data, arm)
        treated = widget(c2.selectbox, "Treated arm", f"trial_treated_{arm}", levels[-1], page=P, options=levels)
        trial = cohort_trial(cohort, arm=arm, treated_value=treated)
        options = trial.analyses()
        default = design.endpoint.analysis if design is not None and design.endpoint.analysis in options \
            else options[0]
        analysis = widget(c3.selectbox, "Analysis", f"trial_analysis_{cohort.schema.outcome.type}", default, page=P,
                          options=options)
except WorkbenchError as exc:
    show_error(exc)
    st.stop()

n0, n1 = (int((trial.patients[trial.arm] == a).sum()) for a in trial.arms)
st.write(f"**{trial.source}**: {len(trial.patients)} patients, {trial.control} (n = {n0}) vs "
         f"{trial.treated} (n = {n1}).")
kwargs = trial.analysis_kwargs(analysis)

st.subheader("Baseline characteristics")
if trial.covariates:
    table = trial.table_one()
    st.dataframe(table, hide_index=True, column_config={
        "column": None, "variable": st.column_config.TextColumn("variable"),
        "SMD": st.column_config.NumberColumn("SMD", format="%.3f",
                                             help="standardized mean difference, treated vs control")})
    st.caption("Continuous: mean (SD); SMD = (m1 - m0) / sqrt((s1² + s0²) / 2), treated minus control. "
               "Categorical: n (%); SMD of Yang & Dalton (non-negative). |SMD| > 0.1 is often read as imbalance.")
else:
    st.caption("No baseline covariates.")

st.subheader("Outcome")
fig = trial.outcome_figure()
if fig is not None:
    st.plotly_chart(fig, key="outcome_figure", theme=None)

st.subheader("Primary analysis")
try:
    res = SINGLE[analysis](trial.data, **kwargs, alpha=alpha)
except WorkbenchError as exc:
    show_error(exc)
    st.stop()
c1, c2, c3 = st.columns(3)
c1.metric("Estimate", f"{res.estimate:.4g}",
          help=f"{1 - alpha:.0%} CI {res.ci_low:.4g} to {res.ci_high:.4g}")
c2.metric(f"{1 - alpha:.0%} CI", f"{res.ci_low:.3g} to {res.ci_high:.3g}")
c3.metric("p-value", f"{res.p_value:.3g}")
st.caption(f"{analysis}: {res.method}; analysable patients {res.n_per_arm[0]} control, "
           f"{res.n_per_arm[1]} treated; alpha {alpha:g}.")

st.subheader("Subgroups")
options = list(trial.covariates)
chosen = widget(st.multiselect, "Subgroup columns", "trial_subgroups", list(trial.categorical[:3]), page=P,
                options=options, help="Categorical columns: one line per level; numeric: split at the median.")
if chosen:
    try:
        rows = subgroup_effects(trial.data, analysis=analysis, subgroups=chosen, **kwargs, alpha=alpha)
    except WorkbenchError as exc:
        show_error(exc)
        st.stop()
    st.plotly_chart(forest_figure(rows), key="forest", theme=None)
    st.dataframe(rows.drop(columns=["subgroup", "level"]), hide_index=True)
    st.caption("Subgroup estimates are descriptive: many comparisons, small groups, no multiplicity control.")
