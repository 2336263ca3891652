"""Design: arms, assumed effect, endpoint analysis, visits or follow-up, dropout, sample sizes, replicates."""

from __future__ import annotations

import streamlit as st

from app_pages._state import DEFAULT_SEED, need, show_error, sidebar, widget
from cohorts.errors import InvalidScenarioError, WorkbenchError
from trials.design import (ANALYSIS_OUTCOME, EFFECT_OUTCOME, Arm, Dropout, Effect, Endpoint, PowerSettings,
                           TrialDesign)
from trials.simulate import check_design_fits_cohort

ss = st.session_state
bar = sidebar()
st.title("3 · Trial design")
cohort = need("cohort", "Data", "choose a cohort")
otype = cohort.schema.outcome.type
unit = cohort.schema.outcome.unit
P = "design"


def numbers(text: str, what: str, cast=float) -> tuple:
    try:
        return tuple(cast(x) for x in text.replace(";", ",").split(",") if x.strip())
    except ValueError:
        raise InvalidScenarioError(f"{what}: write numbers separated by commas, e.g. 100, 200, 300; "
                                   f"got {text!r}") from None


st.subheader("Arms")
c1, c2, c3, c4 = st.columns(4)
control = widget(c1.text_input, "Control arm", "control_name", "placebo", page=P)
alloc0 = widget(c2.number_input, "Control allocation", "control_alloc", 1.0, page=P, min_value=0.1, step=0.5)
treat = widget(c3.text_input, "Treatment arm", "treatment_name", "treatment", page=P)
alloc1 = widget(c4.number_input, "Treatment allocation", "treatment_alloc", 1.0, page=P, min_value=0.1, step=0.5)

st.subheader("Assumed treatment effect")
kind = next(k for k, o in EFFECT_OUTCOME.items() if o == otype)
if kind == "slope_reduction":
    pct = widget(st.number_input, "Slowing of decline (%)", "slope_reduction_pct", 25.0, page=P,
                 min_value=-100.0, max_value=100.0, step=5.0,
                 help="Share of each patient's decline removed by treatment (CENTAUR: about 25 %).")
    value = pct / 100
elif kind == "hazard_ratio":
    value = widget(st.number_input, "Hazard ratio (treatment vs control)", "hazard_ratio", 0.7, page=P,
                   min_value=0.05, max_value=5.0, step=0.05, help="Below 1 = fewer events on treatment.")
elif kind == "mean_difference":
    value = widget(st.number_input, "Mean difference (treatment - control)", "mean_difference", 1.0, page=P,
                   step=0.5)
else:
    value = widget(st.number_input, "Odds ratio (treatment vs control)", "odds_ratio", 1.5, page=P,
                   min_value=0.05, max_value=20.0, step=0.1)
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

st.subheader("Simulation")
c1, c2, c3, c4 = st.columns(4)
n_text = widget(c1.text_input, "Total sample sizes N", "n_total", "60, 120, 180, 240", page=P)
reps = widget(c2.number_input, "Replicates per N", "replicates", 1000, page=P, min_value=10, max_value=100_000,
              step=100, help="Monte Carlo error of power is at most 0.5 / sqrt(replicates).")
alpha = widget(c3.number_input, "Alpha (two-sided)", "alpha", 0.05, page=P, min_value=0.001, max_value=0.5,
               step=0.005, format="%.3f")
seed = int(widget(c4.number_input, "Seed", "seed", DEFAULT_SEED, page=P, min_value=0, step=1))
ss["seed"] = seed

try:
    if otype == "longitudinal":
        visits = numbers(visits_text, "endpoint.visits_months")
    effect = Effect(kind, float(value), delay=float(delay) or None, responder_fraction=float(responders) / 100,
                    subgroup=subgroup.strip() or None)
    design = TrialDesign(arms=(Arm(control, float(alloc0)), Arm(treat, float(alloc1), effect)),
                         endpoint=Endpoint(analysis, visits_months=visits, followup=followup),
                         dropout=Dropout(float(dropout)))
    check_design_fits_cohort(design, cohort.schema)
    settings = PowerSettings(numbers(n_text, "power.n_total", int), int(reps), float(alpha))
except WorkbenchError as exc:
    show_error(exc)
    st.stop()

ss["design"], ss["settings"] = design, settings
sidebar(bar)
frac = design.treated_fraction
st.success(f"**{analysis}** analysis of {design.effect.describe()}; "
           f"N = {', '.join(f'{n} ({n - round(n * frac)}:{round(n * frac)})' for n in settings.n_total)}; "
           f"{settings.replicates} replicates per N and scenario, alpha {settings.alpha:g}, seed {seed}.")
st.page_link("app_pages/power.py", label="Next: simulate power", icon=":material/arrow_forward:")
