"""Design page helpers: effect inputs, additional treatment arms, and how the trial is conducted (accrual,
randomization, eligibility, per-arm and informative dropout, visit windows, event target, assessment time,
interim looks, hybrid control).

Each section draws its widgets (remembered across page switches by :func:`app_pages._state.widget`), builds its
library object in place and, when the input is invalid, shows an inline ``st.error`` with the library's message
(which names the scenario key, e.g. ``accrual.rates``); the other inputs keep their values. What the sections
produce is collected in a :class:`Conduct`: keyword arguments for ``TrialDesign``, ``Endpoint`` and ``Dropout``,
and the arms (see :meth:`Conduct.arms`). No logic of the trial lives here: the objects validate themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np
import streamlit as st

from app_pages._state import show_error, widget
from cohorts.criteria import parse_criteria
from cohorts.errors import InvalidScenarioError, WorkbenchError
from trials.conduct import (ACCRUAL_PROCESSES, MULTIPLICITY, RANDOMIZATION_METHODS, SPENDING, Accrual, Eligibility,
                            HybridControl, Looks, Randomization)
from trials.design import Arm
from trials.simulate import eligibility_columns

P = "design"
MAX_EXTRA_ARMS = 3

#: per effect kind: label, form name, default, factor from the library value to the shown one, widget bounds
EFFECT_INPUTS = {
    "slope_reduction": ("Slowing of decline (%)", "slope_reduction_pct", 25.0, 100.0,
                        dict(min_value=-100.0, max_value=100.0, step=5.0),
                        "Share of each patient's decline removed by treatment (CENTAUR: about 25 %)."),
    "hazard_ratio": ("Hazard ratio (treatment vs control)", "hazard_ratio", 0.7, 1.0,
                     dict(min_value=0.05, max_value=5.0, step=0.05), "Below 1 = fewer events on treatment."),
    "mean_difference": ("Mean difference (treatment - control)", "mean_difference", 1.0, 1.0, dict(step=0.5),
                        "In the outcome's unit."),
    "odds_ratio": ("Odds ratio (treatment vs control)", "odds_ratio", 1.5, 1.0,
                   dict(min_value=0.05, max_value=20.0, step=0.1), "Odds of the outcome = 1, treated vs control."),
    "risk_difference": ("Risk difference (treatment - control, %)", "risk_difference_pct", -10.0, 100.0,
                        dict(min_value=-100.0, max_value=100.0, step=1.0), "Percentage points."),
}
#: drift defaults (shown scale) and what drift means per effect kind
DRIFT = {"slope_reduction": (-10.0, "Drift: slowing of decline in today's patients (%)"),
         "hazard_ratio": (1.2, "Drift: hazard ratio, today's vs historical patients"),
         "mean_difference": (-0.5, "Drift: mean difference, today's - historical patients"),
         "odds_ratio": (1.2, "Drift: odds ratio, today's vs historical patients"),
         "risk_difference": (5.0, "Drift: risk difference, today's - historical patients (%)")}
SPENDING_NAMES = {"obf": "O'Brien-Fleming type", "pocock": "Pocock type", "hsd": "Hwang-Shih-DeCani (gamma)"}
METHOD_NAMES = {"fixed": "fixed arm sizes, random order", "simple": "simple (coin toss per patient)",
                "permuted_block": "permuted blocks (optionally stratified)"}
ACCRUAL_MODES = ("everyone at month 0", "over a duration", "piecewise rates")


def numbers(text: str, what: str, cast=float, example: str = "100, 200, 300") -> tuple:
    """Numbers separated by commas (or semicolons); a bad entry raises an error naming ``what``."""
    try:
        return tuple(cast(x) for x in str(text).replace(";", ",").split(",") if x.strip())
    except ValueError:
        raise InvalidScenarioError(f"{what}: write numbers separated by commas, e.g. {example}; "
                                   f"got {text!r}") from None


def effect_input(container, kind: str, *, prefix: str = "", label: str | None = None, default=None,
                 help: str | None = None) -> float:
    """A number input for an effect of ``kind``; returns the library's value (a percentage shown becomes a
    fraction). Form name: the kind's (``slope_reduction_pct``, ``hazard_ratio``, ...) after ``prefix``."""
    text, name, dflt, factor, bounds, tip = EFFECT_INPUTS[kind]
    shown = widget(container.number_input, label or text, prefix + name, dflt if default is None else default,
                   page=P, help=help or tip, **bounds)
    return float(shown) / factor


def expression_problems(text: str, where: str, baseline) -> list[str]:
    """Problems of an eligibility-style expression on the cohort's baseline covariates (a 0-row frame, so that
    types are checked too), each prefixed by the scenario key ``where``."""
    try:
        parse_criteria(text).check(baseline)
    except InvalidScenarioError as exc:
        return [f"{where}: {p}" for p in exc.problems]
    return []


def enrichment(text: str) -> tuple[tuple[str, float], ...]:
    """``EXPRESSION : WEIGHT`` lines (the weight after the last colon) as ``((expression, weight), ...)``."""
    out = []
    for i, line in enumerate(str(text).splitlines(), start=1):
        if not line.strip():
            continue
        m = re.match(r"^(.*):\s*([-+0-9.eE]+)\s*$", line)
        if m is None or not m.group(1).strip():
            raise InvalidScenarioError(f"eligibility.enrich (line {i}): write EXPRESSION : WEIGHT, e.g. "
                                       f"site_of_onset == 'Bulbar' : 2; got {line.strip()!r}")
        try:
            out.append((m.group(1).strip(), float(m.group(2))))
        except ValueError:
            raise InvalidScenarioError(f"eligibility.enrich (line {i}): the weight {m.group(2)!r} is not a "
                                       "number") from None
    return tuple(out)


@dataclass
class Conduct:
    """What the sections produced (see the module docstring)."""

    design: dict = field(default_factory=dict)       # TrialDesign keywords: accrual, randomization, ...
    endpoint: dict = field(default_factory=dict)     # Endpoint keywords: events, visit_window_months, ...
    dropout: dict = field(default_factory=dict)      # Dropout keywords: hazard_ratio_per_unit_change
    extra: list = field(default_factory=list)        # additional treatment arms: (name, allocation, effect value)
    arm_dropout: tuple | None = None                 # per arm, control first: share leaving per month
    problems: list = field(default_factory=list)
    slot: object = None                              # where the look boundaries are drawn

    def attempt(self, fn, *args, **kwargs):
        """``fn(...)``, or ``None`` with the error shown here (inline) and its problems kept."""
        try:
            return fn(*args, **kwargs)
        except WorkbenchError as exc:
            show_error(exc)
            self.problems += list(getattr(exc, "problems", None) or [str(exc)])
            return None

    def check(self, problems: list[str]) -> bool:
        if problems:
            self.attempt(_raise, problems)
        return not problems

    def arms(self, control: Arm, treatment: Arm) -> tuple[Arm, ...]:
        """The control, the treatment and the additional arms (effects of the treatment's kind and modifiers),
        each with its own dropout when given."""
        arms = [control, treatment]
        for name, allocation, value in self.extra:
            effect = treatment.effect and _with_value(treatment.effect, value, name)
            arms.append(Arm(name, allocation, effect))
        if self.arm_dropout is not None:
            arms = [replace(a, dropout_per_month=d) for a, d in zip(arms, self.arm_dropout)]
        return tuple(arms)


def _raise(problems):
    raise InvalidScenarioError(problems)


def _with_value(effect, value: float, arm: str):
    try:
        return replace(effect, value=value)
    except InvalidScenarioError as exc:
        raise InvalidScenarioError([f"arms[{arm}].{p}" for p in exc.problems]) from None


# -------------------------------------------------------------------------------------------------- arms
def extra_arms_inputs(kind: str, conduct: Conduct) -> None:
    """Up to :data:`MAX_EXTRA_ARMS` more treatment arms, compared each with the control, and the multiplicity."""
    with st.expander("Additional treatment arms (multi-arm)"):
        k = int(widget(st.number_input, "Additional treatment arms", "extra_arms", 0, page=P, min_value=0,
                       max_value=MAX_EXTRA_ARMS, step=1,
                       help="Each is compared with the shared control; the trial succeeds when any comparison is "
                            "significant after the multiplicity adjustment (disjunctive power)."))
        for i in range(k):
            c1, c2, c3 = st.columns(3)
            name = widget(c1.text_input, f"Arm {i + 3} name", f"arm{i}_name", f"treatment {i + 2}", page=P)
            alloc = widget(c2.number_input, f"Arm {i + 3} allocation", f"arm{i}_alloc", 1.0, page=P,
                           min_value=0.1, step=0.5)
            value = effect_input(c3, kind, prefix=f"arm{i}_", label=f"Arm {i + 3}: {EFFECT_INPUTS[kind][0]}",
                                 help="Same kind and modifiers (responders, subgroup, delay) as the first arm.")
            conduct.extra.append((name.strip(), float(alloc), value))
        if k:
            conduct.design["multiplicity"] = widget(
                st.selectbox, "Multiplicity adjustment", "multiplicity", "holm", page=P, options=list(MULTIPLICITY),
                help="Adjusted p-values over the comparisons with the control (familywise error <= alpha; "
                     "'none' = raw p-values): Holm step-down, Bonferroni, Hochberg step-up.")


# ----------------------------------------------------------------------------------------------- conduct
def conduct_inputs(cohort, arm_names: list[str], dropout: float, conduct: Conduct) -> None:
    """Accrual, randomization, eligibility and enrichment, dropout per arm and informative dropout, visit
    window, event target, assessment time (whichever apply to the cohort's outcome)."""
    otype = cohort.schema.outcome.type
    baseline = cohort.data[list(cohort.schema.baseline)].iloc[:0]
    with st.expander("Enrollment and conduct"):
        _accrual(conduct)
        _randomization(cohort, baseline, conduct)
        _eligibility(cohort, conduct)
        st.markdown("**Follow-up**")
        c1, c2 = st.columns(2)
        if otype in ("longitudinal", "tte") and widget(
                c1.checkbox, "Different dropout per arm", "arm_dropout_on", False, page=P,
                help="Otherwise every arm loses the dropout per month set above."):
            cols = st.columns(len(arm_names))
            rates = tuple(float(widget(
                col.number_input, f"Dropout per month, {name} (%)", f"arm_dropout_pct_{i}", dropout * 100, page=P,
                min_value=0.0, max_value=99.0, step=0.5)) / 100 for i, (col, name) in enumerate(zip(cols, arm_names)))
            # an arm at the overall rate has no dropout of its own (a sweep's dropout axis then moves it too)
            conduct.arm_dropout = tuple(None if r == dropout else r for r in rates)
        if otype == "longitudinal":
            conduct.dropout["hazard_ratio_per_unit_change"] = float(widget(
                c2.number_input, "Informative dropout: hazard ratio per unit change", "dropout_hr_per_unit", 1.0,
                page=P, min_value=0.05, max_value=20.0, step=0.05, format="%.2f",
                help="Between visits the dropout hazard is multiplied by this ratio to the power of the patient's "
                     "change from baseline (0.9 on ALSFRS-R: a patient who lost 5 points leaves 0.9^-5 = 1.7 "
                     "times as often). 1 = dropout ignores the trajectory."))
            conduct.endpoint["visit_window_months"] = float(widget(
                c1.number_input, "Visit window (± months)", "visit_window_months", 0.0, page=P, min_value=0.0,
                step=0.25, help="Each post-baseline visit happens uniformly within ± this of its nominal month "
                                "(less than half the shortest gap between visits); 0 = on time."))
        elif otype == "tte":
            events = int(widget(c2.number_input, "Events at the final analysis (0 = end of follow-up)", "events",
                                0, page=P, min_value=0, step=10,
                                help="Event-driven: the analysis happens in calendar time when this many events "
                                     "are observed; patients still at risk are censored then."))
            conduct.endpoint["events"] = events or None
        else:
            conduct.endpoint["assessment_months"] = float(widget(
                c2.number_input, "Assessment (months after randomization)", "assessment_months", 0.0, page=P,
                min_value=0.0, step=1.0, help="When the endpoint is measured: it times interim looks and the "
                                              "trial's duration."))


def _accrual(conduct: Conduct) -> None:
    st.markdown("**Accrual** (calendar time in months)")
    c1, c2, c3, c4 = st.columns(4)
    mode = widget(c1.selectbox, "Accrual", "accrual_mode", ACCRUAL_MODES[0], page=P, options=list(ACCRUAL_MODES),
                  help="How patients enter the trial over calendar time.")
    process = widget(c4.selectbox, "Arrival process", "accrual_process", "uniform", page=P,
                     options=list(ACCRUAL_PROCESSES), disabled=mode == ACCRUAL_MODES[0],
                     help="uniform: evenly spaced entries; poisson: random (Poisson) arrivals at that rate.")
    if mode == ACCRUAL_MODES[1]:
        months = widget(c2.number_input, "Accrual duration (months)", "accrual_months", 12.0, page=P,
                        min_value=0.1, step=1.0, help="All N patients enter at a constant rate over this time.")
        conduct.design["accrual"] = conduct.attempt(Accrual, duration=float(months), process=process)
    elif mode == ACCRUAL_MODES[2]:
        rates = widget(c2.text_input, "Rates (patients per month)", "accrual_rates", "5, 20", page=P,
                       help="Piecewise constant; the last rate holds until everyone is in.")
        starts = widget(c3.text_input, "Starting at month", "accrual_starts", "0, 6", page=P,
                        help="One start per rate: the first 0, then strictly increasing.")
        conduct.design["accrual"] = conduct.attempt(lambda: Accrual(
            rates=numbers(rates, "accrual.rates", example="5, 20"),
            starts=numbers(starts, "accrual.starts", example="0, 6"), process=process))


def _randomization(cohort, baseline, conduct: Conduct) -> None:
    st.markdown("**Randomization**")
    c1, c2, c3, c4 = st.columns(4)
    method = widget(c1.selectbox, "Method", "rand_method", "fixed", page=P, options=list(RANDOMIZATION_METHODS),
                    format_func=METHOD_NAMES.get, help="Fixed: arm sizes from the allocation, in random order.")
    blocks = method == "permuted_block"
    size = widget(c2.number_input, "Block size", "rand_block", 4, page=P, min_value=2, step=1, disabled=not blocks,
                  help="A multiple of the sum of the (integer) allocation ratios.")
    with c3:  # st.multiselect itself: the widget helper recognises multiselects by identity
        strata = widget(st.multiselect, "Strata (categorical covariates)", "rand_strata", [], page=P,
                        options=list(cohort.schema.categorical), disabled=not blocks,
                        help="One stratum per value (a missing value is its own stratum).")
    exprs = widget(c4.text_input, "Strata expressions (; separated)", "rand_strata_expr", "", page=P,
                   disabled=not blocks, help="Yes/no strata on any covariate, e.g. age >= 60; fvc_percent < 80")
    extra = [e.strip() for e in str(exprs).split(";") if e.strip()] if blocks else []
    if not conduct.check([p for i, e in enumerate(extra)
                          for p in expression_problems(e, f"randomization.strata[{i + len(strata)}]", baseline)]):
        extra = []
    kwargs = dict(block_size=int(size), strata=tuple(strata) + tuple(extra)) if blocks else {}
    conduct.design["randomization"] = conduct.attempt(Randomization, method, **kwargs) or Randomization()


def _eligibility(cohort, conduct: Conduct) -> None:
    baseline = cohort.data[list(eligibility_columns(cohort.schema))].iloc[:0]
    st.markdown("**Eligibility and enrichment**")
    c1, c2 = st.columns(2)
    criteria = widget(c1.text_input, "Eligibility criteria", "eligibility", "", page=P,
                      help="Who may enter, on baseline covariates, e.g. 18 <= age <= 75 and fvc_percent >= 60; "
                           "a patient with a missing value in a criterion is not eligible. Empty: everyone.")
    enrich_text = widget(c2.text_area, "Enrichment (one EXPRESSION : WEIGHT per line)", "enrichment", "", page=P,
                         height=80, help="Relative enrolment weight, e.g. site_of_onset == 'Bulbar' : 2 "
                                         "(bulbar onset twice as likely to enrol).")
    crit = str(criteria).strip() or None
    enrich = conduct.attempt(enrichment, enrich_text)
    if enrich is None:
        return
    problems = expression_problems(crit, "eligibility.criteria", baseline) if crit else []
    problems += [p for e, _ in enrich for p in expression_problems(e, f"eligibility.enrich[{e!r}]", baseline)]
    if (crit or enrich) and conduct.check(problems):
        conduct.design["eligibility"] = conduct.attempt(Eligibility, crit, enrich)
        if crit and conduct.design["eligibility"] is not None:
            acceptance(cohort, crit)


#: synthetic patients drawn for the live acceptance rate
PREVIEW_PATIENTS = 2000


def acceptance(cohort, criteria: str) -> None:
    """The live acceptance rate of the criteria: on the historical patients and, when the session has a
    generator trained on this cohort, on synthetic patients (the seed's draw, cached per criteria)."""
    from trials.eligibility_preview import (cohort_eligibility_frame, preview_eligibility,
                                            synthetic_eligibility_frame)
    ss = st.session_state
    previews = [conduct_preview(lambda: preview_eligibility(criteria, cohort_eligibility_frame(cohort),
                                                            "historical patients"))]
    gen, meta = ss.get("generator"), ss.get("generator_meta")
    if gen is not None and meta and meta[0] == cohort.sha256:
        key = (id(gen), criteria, int(ss.get("seed", 0)))
        if ss.get("eligibility_preview", (None,))[0] != key:
            rng = np.random.default_rng(int(ss.get("seed", 0)))
            ss["eligibility_preview"] = (key, conduct_preview(lambda: preview_eligibility(
                criteria, synthetic_eligibility_frame(gen, PREVIEW_PATIENTS, rng=rng), "synthetic patients")))
        previews.append(ss["eligibility_preview"][1])
    previews = [p for p in previews if p is not None]
    if not previews:
        return
    text = "; ".join(p.sentence() for p in previews)
    low = min(p.rate for p in previews)
    (st.warning if low < 0.05 else st.caption)(f"Acceptance: {text}." + (
        " Very few patients qualify: the simulation draws many candidates per enrolled patient and fails below "
        "0.1 %." if low < 0.05 else ""))
    first = previews[-1]
    if first.clause_rates:
        st.caption("Each condition alone: " + "; ".join(f"`{c}` {r:.0%}" for c, r in first.clause_rates))
    for hint in first.hints:
        st.warning(hint)


def conduct_preview(fn):
    """``fn()``, or None with the error shown inline (a criterion the data cannot evaluate)."""
    try:
        return fn()
    except WorkbenchError as exc:
        show_error(exc)
        return None


# -------------------------------------------------------------------------------------------------- looks
def looks_inputs(conduct: Conduct) -> None:
    """Group-sequential looks; their boundaries are drawn into ``conduct.slot`` by :func:`show_boundaries`
    once the page knows alpha."""
    with st.expander("Interim looks (group-sequential)"):
        if not widget(st.checkbox, "Analyse at interim looks", "looks_on", False, page=P,
                      help="Stop early for efficacy (and, one-sided, for futility) at information fractions; "
                           "information = share of the final events (time to event) or of the N patients with "
                           "the endpoint assessed."):
            return
        c1, c2, c3 = st.columns(3)
        fractions = widget(c1.text_input, "Information fractions", "looks_fractions", "0.5, 1", page=P,
                           help="Strictly increasing in (0, 1], the last 1 (the final analysis).")
        spend = widget(c2.selectbox, "Alpha spending", "looks_spending", "obf", page=P, options=list(SPENDING),
                       format_func=SPENDING_NAMES.get, help="Lan-DeMets spending of the two-sided alpha.")
        gamma = widget(c3.number_input, "Gamma (HSD)", "looks_gamma", -4.0, page=P, step=0.5,
                       disabled=spend != "hsd", help="-4: O'Brien-Fleming-like, 1: Pocock-like, 0: linear.")
        sided = widget(c1.radio, "Sides", "looks_sided", 2, page=P, options=[2, 1], horizontal=True,
                       format_func={2: "two-sided", 1: "one-sided"}.get,
                       help="One-sided spends alpha/2 in the direction of the assumed effect (needed for futility).")
        fut = widget(c2.selectbox, "Futility (beta spending)", "looks_futility", "none", page=P,
                     options=["none", *SPENDING], disabled=sided != 1,
                     format_func=lambda s: "none" if s == "none" else SPENDING_NAMES[s],
                     help="Non-binding futility boundaries; one-sided designs only.")
        fut = fut if sided == 1 and fut != "none" else None
        beta = widget(c3.number_input, "Beta (type II error, futility)", "looks_beta", 0.2, page=P, min_value=0.01,
                      max_value=0.5, step=0.05, disabled=fut is None)
        gamma_fut = widget(c3.number_input, "Gamma (HSD futility)", "looks_gamma_futility", -4.0, page=P, step=0.5,
                           disabled=fut != "hsd")
        conduct.design["looks"] = conduct.attempt(lambda: Looks(
            numbers(fractions, "looks.information_fractions", example="0.5, 1"), spending=spend,
            gamma=float(gamma) if spend == "hsd" else None, futility=fut, beta=float(beta) if fut else None,
            gamma_futility=float(gamma_fut) if fut == "hsd" else None, sided=int(sided)))
        conduct.slot = st.container()


def show_boundaries(conduct: Conduct, alpha: float) -> None:
    """The looks' boundaries (table and figure) at the design's alpha, in the looks expander."""
    looks = conduct.design.get("looks")
    if looks is None or conduct.slot is None:
        return
    from analysis.conduct_figures import boundaries_figure
    from analysis.sequential_sim import design_boundaries
    with conduct.slot:
        bounds = conduct.attempt(design_boundaries, looks, float(alpha))
        if bounds is None:
            return
        st.dataframe(bounds.summary().dropna(axis=1, how="all"), hide_index=True, key="design_boundaries_table")
        st.plotly_chart(boundaries_figure(bounds), key="design_boundaries", theme=None)
        st.caption(bounds.method)


# ------------------------------------------------------------------------------------------------- hybrid
def hybrid_inputs(kind: str, conduct: Conduct) -> None:
    """Synthetic controls from the generator added to the randomized controls, and drift."""
    with st.expander("Hybrid control (synthetic controls)"):
        if not widget(st.checkbox, "Add synthetic controls", "hybrid_on", False, page=P,
                      help="Each simulated trial's control arm is augmented with patients drawn from the "
                           "generator; the randomized-only comparison is shown beside it."):
            return
        c1, c2, c3 = st.columns(3)
        m = int(widget(c1.number_input, "Synthetic controls per trial", "hybrid_controls", 50, page=P, min_value=1,
                       step=10))
        drift = None
        if widget(c2.checkbox, "Today's patients differ (drift)", "hybrid_drift_on", False, page=P,
                  help="An effect of the endpoint's kind applied to every randomized patient; the synthetic "
                       "controls keep the historical distribution, so drift biases the hybrid comparison."):
            default, label = DRIFT[kind]
            drift = effect_input(c3, kind, prefix="drift_", label=label, default=default,
                                 help="On the effect's scale; the no-effect value means no drift.")
        conduct.design["hybrid"] = conduct.attempt(HybridControl, m, drift)


# ------------------------------------------------------------------------------------------------ summary
