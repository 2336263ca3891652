"""Design: arms, assumed effect, endpoint analysis, visits or follow-up, dropout, conduct, sample sizes, replicates."""

from __future__ import annotations

import streamlit as st

from app_pages import _design_conduct as dc
from app_pages._state import DEFAULT_SEED, need, show_error, sidebar, widget
from cohorts.errors import InvalidScenarioError, WorkbenchError
from trials.design import ANALYSIS_OUTCOME, EFFECT_OUTCOME, Arm, Dropout, Effect, Endpoint, PowerSettings, TrialDesign
from trials.enrollment import arm_sizes
from trials.simulate import check_design_fits_cohort

ss = st.session_state
bar = sidebar()
st.title("3 · Trial design")
cohort = need("cohort", "Data", "choose a cohort")
otype = cohort.schema.outcome.type
unit = cohort.schema.outcome.unit
P = dc.P
conduct = dc.Conduct()

st.subheader("Arms")
c1, c2, c3, c4 = st.columns(4)
control = widget(c1.text_input, "Control arm", "control_name", "placebo", page=P)
alloc0 = widget(c2.number_input, "Control allocation", "control_alloc", 1.0, page=P, min_value=0.1, step=0.5)
treat = widget(c3.text_input, "Treatment arm", "treatment_name", "treatment", page=P)
alloc1 = widget(c4.number_input, "Treatment allocation", "treatment_alloc", 1.0, page=P, min_value=0.1, step=0.5)

st.subheader("Assumed treatment effect")
kind = next(k for k, o in EFFECT_OUTCOME.items() if o == otype)
value = dc.effect_input(st, kind)
with st.expander("Effect modifiers: responders, subgroup, delayed effect"):
    m1, m2, m3 = st.columns(3)
    responders = widget(m1.number_input, "Responders among treated (%)", "responder_pct", 100.0, page=P,
                        min_value=1.0, max_value=100.0, step=5.0,
                        help="Only this share of treated patients gets the effect; the others behave as controls.")
    subgroup = widget(m2.text_input, "Only in the subgroup", "effect_subgroup", "", page=P,
                      help="An eligibility-style expression, e.g. age < 60 and site_of_onset == 'Bulbar'; "
                           "empty = every treated patient.")
    delay = 0.0
    if kind == "hazard_ratio":
        delay = widget(m3.number_input, f"Delay before the effect ({unit})", "effect_delay", 0.0, page=P,
                       min_value=0.0, step=1.0, help="Hazard ratio 1 until then (a delayed effect).")
dc.extra_arms_inputs(kind, conduct)

st.subheader("Endpoint and analysis")
analyses = [a for a, o in ANALYSIS_OUTCOME.items() if o == otype]
c1, c2 = st.columns(2)
analysis = widget(c1.selectbox, "Analysis", f"analysis_{otype}", analyses[0], page=P, options=analyses)
visits = followup = None
if otype == "longitudinal":
    visits_text = widget(c2.text_input, "Visits (months from baseline)", "visits_months", "0, 1, 2, 3, 4, 5, 6",
                         page=P)
elif otype == "tte":
    default_fu = {"days": 365.0, "weeks": 52.0, "months": 12.0, "years": 1.0}.get(unit, 12.0)
    followup = widget(c2.number_input, f"Follow-up ({unit})", f"followup_{unit}", default_fu, page=P,
                      min_value=0.1, step=1.0)
dropout = 0.0
if otype in ("longitudinal", "tte"):
    dropout = widget(st.number_input, "Dropout per month (%)", "dropout_pct", 2.0, page=P, min_value=0.0,
                     max_value=99.0, step=0.5) / 100
names = [control, treat] + [name for name, _, _ in conduct.extra]
dc.conduct_inputs(cohort, names, dropout, conduct)
dc.looks_inputs(conduct)
dc.hybrid_inputs(kind, conduct)

st.subheader("Simulation")
c1, c2, c3, c4 = st.columns(4)
n_text = widget(c1.text_input, "Total sample sizes N", "n_total", "60, 120, 180, 240", page=P)
reps = widget(c2.number_input, "Replicates per N", "replicates", 1000, page=P, min_value=10, max_value=100_000,
              step=100, help="Monte Carlo error of power is at most 0.5 / sqrt(replicates).")
alpha = widget(c3.number_input, "Alpha (two-sided)", "alpha", 0.05, page=P, min_value=0.001, max_value=0.5,
               step=0.005, format="%.3f")
seed = int(widget(c4.number_input, "Seed", "seed", DEFAULT_SEED, page=P, min_value=0, step=1))
ss["seed"] = seed
dc.show_boundaries(conduct, alpha)

try:
    if conduct.problems:
        raise InvalidScenarioError(conduct.problems)
    if otype == "longitudinal":
        visits = dc.numbers(visits_text, "endpoint.visits_months")
    effect = Effect(kind, float(value), delay=float(delay) or None, responder_fraction=float(responders) / 100,
                    subgroup=subgroup.strip() or None)
    design = TrialDesign(arms=conduct.arms(Arm(control, float(alloc0)), Arm(treat, float(alloc1), effect)),
                         endpoint=Endpoint(analysis, visits_months=visits, followup=followup, **conduct.endpoint),
                         dropout=Dropout(float(dropout), **conduct.dropout), **conduct.design)
    check_design_fits_cohort(design, cohort.schema)
    settings = PowerSettings(dc.numbers(n_text, "power.n_total", int), int(reps), float(alpha))
except WorkbenchError as exc:
    show_error(exc)
    st.stop()

ss["design"], ss["settings"] = design, settings
sidebar(bar)
sizes = {n: ":".join(map(str, arm_sizes(n, design.allocation_shares))) for n in settings.n_total}
if design.n_treatments == 1:
    frac = design.treated_fraction
    sizes = {n: f"{n - round(n * frac)}:{round(n * frac)}" for n in settings.n_total}
st.success(f"**{analysis}** analysis of {design.effect.describe()}; "
           f"N = {', '.join(f'{n} ({s})' for n, s in sizes.items())}; "
           f"{settings.replicates} replicates per N and scenario, alpha {settings.alpha:g}, seed {seed}.")
if design.conduct_summary():
    st.caption("Conduct: " + "; ".join(f"{k.lower()} {v}" for k, v in design.conduct_summary()) + ".")
st.page_link("app_pages/power.py", label="Next: simulate power", icon=":material/arrow_forward:")
