"""The Design and Generator pages' form values of a design: what a restored scenario writes into the widgets.

:func:`page_design` writes a design the way the Design page builds it (notations that mean the same trial);
:func:`design_form` gives every Design-page form value that rebuilds it, or one problem per scenario key the page
cannot show (a waning effect, a value outside a widget's range, ...); :func:`generator_form` does the same for the
Generator page's family, seed and hyperparameters; :func:`design_form_names` lists every Design-page form name.
"""

from __future__ import annotations

from dataclasses import replace

from app_pages._design_conduct import ACCRUAL_MODES, EFFECT_INPUTS, MAX_EXTRA_ARMS
from cohorts.schema import OUTCOME_TYPES, TIME_UNITS
from trials.design import EFFECT_OUTCOME

__all__ = ["page_design", "design_form", "design_form_names", "generator_form", "form_params"]


def form_params(name: str, form: dict) -> dict:
    """The hyperparameters of family ``name`` that the Generator page's form changes from the defaults (read as
    :func:`app_pages._generator_views.hyperparameter_form` reads its widgets; unreadable entries are left out)."""
    from app_pages._generator_jobs import changed_params, hyperparameters, parse_optional
    values = {}
    for k, (kind, default) in hyperparameters(name).items():
        value = form.get(f"hp_{name}_{k}", "" if default is None else default)
        try:
            if default is None:
                values[k] = parse_optional(value, kind)
            elif kind in (bool, int, float):
                values[k] = kind(value)
            else:
                values[k] = value
        except (TypeError, ValueError):
            continue
    return changed_params(name, values)


def page_design(design):
    """``(design, notes)``: ``design`` written the way the Design page builds it, for notations that mean the
    same trial: ``multiplicity`` with one treatment arm (unused) becomes the page's ``holm``; when only some arms
    have their own ``dropout_per_month`` equal to ``dropout.per_month``, it is dropped (the page keeps an arm's
    own dropout only where it differs); text the page strips (subgroup, criteria, added arms' names) loses its outer blanks."""
    notes = []
    if design.n_treatments == 1 and design.multiplicity != "holm":
        notes.append(f"multiplicity = {design.multiplicity!r} applies to several treatment arms; with one it is "
                     "unused (the Design page shows 'holm').")
        design = replace(design, multiplicity="holm")
    p = design.dropout.per_month
    if any(a.dropout_per_month == p for a in design.arms):
        notes.append(f"Arms whose own dropout_per_month equals dropout.per_month ({p:g}) are shown without one (the "
                     "Design page keeps an arm's own dropout only where it differs; the same trial, except in a "
                     "sweep over dropout, where an arm's own dropout would stay fixed).")
        design = replace(design, arms=tuple(replace(a, dropout_per_month=None) if a.dropout_per_month == p else a
                                            for a in design.arms))
    arms = []
    for i, arm in enumerate(design.arms):
        eff = arm.effect
        if eff is not None and eff.subgroup is not None and eff.subgroup != eff.subgroup.strip():
            arm = replace(arm, effect=replace(eff, subgroup=eff.subgroup.strip()))
        if i >= 2 and arm.name != arm.name.strip():
            arm = replace(arm, name=arm.name.strip())
        arms.append(arm)
    if tuple(arms) != design.arms:
        design = replace(design, arms=tuple(arms))
    el = design.eligibility
    if el is not None and el.criteria is not None and el.criteria != el.criteria.strip():
        design = replace(design, eligibility=replace(el, criteria=el.criteria.strip()))
    return design, notes


def design_form_names() -> tuple[str, ...]:
    """Every form name of the Design page's widgets (what a restore resets to the page's defaults unless the
    scenario sets it)."""
    effects = [spec[1] for spec in EFFECT_INPUTS.values()]
    names = ["control_name", "control_alloc", "treatment_name", "treatment_alloc", *effects, "responder_pct",
             "effect_subgroup", "effect_delay", *(f"analysis_{t}" for t in OUTCOME_TYPES), "visits_months",
             *(f"followup_{u}" for u in TIME_UNITS), "dropout_pct", "extra_arms", "multiplicity", "arm_dropout_on",
             *(f"arm_dropout_pct_{i}" for i in range(MAX_EXTRA_ARMS + 2)), "dropout_hr_per_unit",
             "visit_window_months", "events", "assessment_months", "accrual_mode", "accrual_process",
             "accrual_months", "accrual_rates", "accrual_starts", "rand_method", "rand_block", "rand_strata",
             "rand_strata_expr", "eligibility", "enrichment", "looks_on", "looks_fractions", "looks_spending",
             "looks_gamma", "looks_sided", "looks_futility", "looks_beta", "looks_gamma_futility", "hybrid_on",
             "hybrid_controls", "hybrid_drift_on", *(f"drift_{e}" for e in effects), "n_total", "replicates", "alpha",
             "seed"]
    for i in range(MAX_EXTRA_ARMS):
        names += [f"arm{i}_name", f"arm{i}_alloc", *(f"arm{i}_{e}" for e in effects)]
    return tuple(names)


def _number_text(v) -> str:
    v = float(v)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def _numbers_text(values) -> str:
    return ", ".join(_number_text(v) for v in values)


def _shown(value: float, factor: float) -> float | None:
    """A number ``s`` to show for the library's ``value`` such that the page's ``s / factor`` is exactly
    ``value`` (the shortest decimal first: 0.29 -> 29.0, not 28.999999999999996); ``None`` if there is none."""
    exact = float(value) * factor
    for candidate in [round(exact, k) for k in range(16)] + [exact]:
        if candidate / factor == float(value):
            return float(candidate)
    return None


class _Form:
    """Widget values being collected, with the problems of values the widgets cannot hold."""

    def __init__(self):
        self.values: dict = {}
        self.problems: list[str] = []

    def set(self, name: str, value) -> None:
        self.values[name] = value

    def number(self, name: str, value, where: str, lo=None, hi=None, unit: str = "") -> None:
        self.values[name] = value
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            span = (f"{lo:g} to {hi:g}" if hi is not None else f"at least {lo:g}") if lo is not None \
                else f"at most {hi:g}"
            self.problems.append(f"{where}: the Design page takes {span}{unit}, the scenario has {value:g}{unit}")

    def shown(self, name: str, value: float, factor: float, where: str, lo=None, hi=None) -> None:
        s = _shown(value, factor)
        if s is None:
            self.problems.append(f"{where}: {value!r} cannot be entered exactly on the Design page")
            return
        self.number(name, s, where, lo, hi, " %" if factor == 100.0 else "")


def _bounds(kind: str) -> tuple:
    b = EFFECT_INPUTS[kind][4]
    return b.get("min_value"), b.get("max_value")


def _arms_form(f: _Form, design) -> str | None:
    """Arms, effect and modifiers, added arms; returns the effect's form name (``None``: not showable)."""
    control, treat, extra = design.arms[0], design.arms[1], design.arms[2:]
    if control.effect is not None:
        f.problems.append("arms[0].effect: the Design page's first arm is the control, without an effect; remove it")
    eff = treat.effect
    if eff is None:
        f.problems.append("arms[1].effect: the Design page needs the treatment arm's effect; write its no-effect "
                          "value, e.g. effect = { hazard_ratio = 1 }")
        return None
    kind, (_, ename, _, factor, _, _) = eff.kind, EFFECT_INPUTS[eff.kind]
    otype = design.endpoint.outcome_type
    page_kind = next(k for k, o in EFFECT_OUTCOME.items() if o == otype)
    if kind != page_kind:
        f.problems.append(f"arms[1].effect: the Design page gives a {otype} endpoint's effect as {page_kind}, "
                          f"not {kind}")
        return None
    f.set("control_name", control.name)
    f.number("control_alloc", float(control.allocation), "arms[0].allocation", 0.1)
    f.set("treatment_name", treat.name)
    f.number("treatment_alloc", float(treat.allocation), "arms[1].allocation", 0.1)
    f.shown(ename, eff.value, factor, f"arms[1].effect.{kind}", *_bounds(kind))
    f.shown("responder_pct", eff.responder_fraction, 100.0, "arms[1].effect.responder_fraction", 1.0, 100.0)
    f.set("effect_subgroup", eff.subgroup or "")
    if kind == "hazard_ratio":
        f.number("effect_delay", float(eff.delay or 0.0), "arms[1].effect.delay", 0.0)
    if eff.until is not None:
        f.problems.append("arms[1].effect.until: the Design page has no waning effect (a hazard ratio until a time)")
    if eff.outside_value is not None:
        f.problems.append("arms[1].effect.outside_value: the Design page has no effect outside the subgroup")
    if len(extra) > MAX_EXTRA_ARMS:
        f.problems.append(f"arms: the Design page takes at most {MAX_EXTRA_ARMS} treatment arms besides the first, "
                          f"the scenario has {len(extra)}")
    f.set("extra_arms", min(len(extra), MAX_EXTRA_ARMS))
    for i, arm in enumerate(extra[:MAX_EXTRA_ARMS]):
        where = f"arms[{i + 2}]"
        if arm.effect is None or arm.effect.kind != kind or replace(eff, value=arm.effect.value) != arm.effect:
            f.problems.append(f"{where}.effect: on the Design page every treatment arm has the first one's effect "
                              "kind and modifiers (responders, subgroup, delay); only the value may differ")
            continue
        f.set(f"arm{i}_name", arm.name)
        f.number(f"arm{i}_alloc", float(arm.allocation), f"{where}.allocation", 0.1)
        f.shown(f"arm{i}_{ename}", arm.effect.value, factor, f"{where}.effect.{kind}", *_bounds(kind))
    if extra:
        f.set("multiplicity", design.multiplicity)
    return ename


def _endpoint_form(f: _Form, design, unit: str | None) -> None:
    """Analysis, visits or follow-up, dropout (overall, per arm, informative), visit window, events, assessment."""
    ep, otype = design.endpoint, design.endpoint.outcome_type
    f.set(f"analysis_{otype}", ep.analysis)
    timed = otype in ("longitudinal", "tte")
    if otype == "longitudinal":
        f.set("visits_months", _numbers_text(ep.visits_months))
    elif ep.visits_months is not None:
        f.problems.append("endpoint.visits_months: the Design page sets visits for longitudinal outcomes only")
    if otype == "tte" and ep.followup is None:
        f.problems.append(f"endpoint.followup: the Design page always sets a follow-up (in {unit}); add followup = ...")
    elif otype == "tte":
        f.number(f"followup_{unit}", float(ep.followup), "endpoint.followup", 0.1)
    elif ep.followup is not None:
        f.problems.append("endpoint.followup: the Design page sets a follow-up for time-to-event outcomes only")
    own = [a.dropout_per_month for a in design.arms]
    if timed:
        f.shown("dropout_pct", design.dropout.per_month, 100.0, "dropout.per_month", 0.0, 99.0)
        f.set("arm_dropout_on", any(d is not None for d in own))
        if any(d is not None for d in own):     # an arm without its own dropout shows (and keeps) the overall one
            for i, d in enumerate(own):
                f.shown(f"arm_dropout_pct_{i}", design.dropout.per_month if d is None else d, 100.0,
                        f"arms[{i}].dropout_per_month", 0.0, 99.0)
    elif any(d is not None for d in own):
        f.problems.append("arms.dropout_per_month: the Design page has no dropout for a single measurement")
    if otype == "longitudinal":
        f.number("dropout_hr_per_unit", float(design.dropout.hazard_ratio_per_unit_change),
                 "dropout.hazard_ratio_per_unit_change", 0.05, 20.0)
        f.number("visit_window_months", float(ep.visit_window_months), "endpoint.visit_window_months", 0.0)
    elif design.dropout.informative:
        f.problems.append("dropout.hazard_ratio_per_unit_change: the Design page sets informative dropout for "
                          "longitudinal endpoints only")
    if otype == "tte":
        f.set("events", int(ep.events or 0))
    if otype in ("continuous", "binary"):
        f.number("assessment_months", float(ep.assessment_months), "endpoint.assessment_months", 0.0)
    elif ep.assessment_months:
        f.problems.append("endpoint.assessment_months: the Design page sets it for continuous and binary endpoints "
                          "only")


def _conduct_form(f: _Form, design, schema, ename: str, factor: float) -> None:
    """Accrual, randomization, eligibility and enrichment, looks, hybrid control."""
    acc = design.accrual
    f.set("accrual_process", acc.process if acc is not None else "uniform")
    if acc is None:
        f.set("accrual_mode", ACCRUAL_MODES[0])
    elif acc.duration is not None:
        f.set("accrual_mode", ACCRUAL_MODES[1])
        f.number("accrual_months", float(acc.duration), "accrual.duration", 0.1)
    else:
        f.set("accrual_mode", ACCRUAL_MODES[2])
        f.set("accrual_rates", _numbers_text(acc.rates))
        f.set("accrual_starts", _numbers_text(acc.starts))
    r = design.randomization
    f.set("rand_method", r.method)
    if r.method == "permuted_block":
        f.number("rand_block", int(r.block_size), "randomization.block_size", 2)
        cols = [s for s in r.strata if s in schema.categorical]
        exprs = [s for s in r.strata if s not in schema.categorical]
        if tuple(cols + exprs) != tuple(r.strata):
            f.problems.append(f"randomization.strata: the Design page lists the categorical columns first, then the "
                              f"expressions; write strata = {cols + exprs!r}")
        for s in exprs:
            if s.strip().isidentifier() or ";" in s or s != s.strip():
                f.problems.append(f"randomization.strata: {s!r}: the Design page stratifies on categorical columns "
                                  f"({', '.join(schema.categorical) or 'none'}) and on expressions without ';'")
        f.set("rand_strata", cols)
        f.set("rand_strata_expr", "; ".join(exprs))
    el = design.eligibility
    f.set("eligibility", el.criteria if el is not None and el.criteria else "")
    enrich = el.enrich if el is not None else ()
    for text in ([el.criteria] if el is not None and el.criteria else []) + [e for e, _ in enrich]:
        if "\n" in text or "\r" in text:
            f.problems.append(f"eligibility: {text!r}: the Design page takes one line per expression")
    if any(e != e.strip() for e, _ in enrich):
        f.problems.append("eligibility.enrich: the Design page strips blanks around an expression; remove them")
    f.set("enrichment", "\n".join(f"{e} : {w!r}" for e, w in enrich))
    lk = design.looks
    f.set("looks_on", lk is not None)
    if lk is not None:
        f.set("looks_fractions", _numbers_text(lk.information_fractions))
        f.set("looks_spending", lk.spending)
        if lk.spending == "hsd":
            f.number("looks_gamma", float(lk.gamma), "looks.gamma")
        f.set("looks_sided", int(lk.sided))
        f.set("looks_futility", lk.futility or "none")
        if lk.futility is not None:
            f.number("looks_beta", float(lk.beta), "looks.beta", 0.01, 0.5)
        elif lk.beta is not None:
            f.problems.append("looks.beta: the Design page sets beta only with futility boundaries (futility = ...)")
        if lk.futility == "hsd":
            f.number("looks_gamma_futility", float(lk.gamma_futility), "looks.gamma_futility")
    h = design.hybrid
    f.set("hybrid_on", h is not None)
    if h is not None:
        f.number("hybrid_controls", int(h.synthetic_controls), "hybrid.synthetic_controls", 1)
        f.set("hybrid_drift_on", h.drift is not None)
        if h.drift is not None:
            f.shown(f"drift_{ename}", h.drift, factor, "hybrid.drift", *_bounds(design.effect.kind))


def design_form(design, settings, seed: int, schema) -> tuple[dict, list[str]]:
    """``(form values, problems)``: the Design page's widget values from which it builds ``design`` (as written
    by :func:`page_design`), ``settings`` and ``seed`` again; a problem per thing its widgets cannot hold."""
    f = _Form()
    ename = _arms_form(f, design)
    if ename is None:
        return f.values, f.problems
    _endpoint_form(f, design, schema.outcome.unit)
    _conduct_form(f, design, schema, ename, EFFECT_INPUTS[design.effect.kind][3])
    f.set("n_total", ", ".join(str(n) for n in settings.n_total))
    f.number("replicates", int(settings.replicates), "power.replicates", 10, 100_000)
    f.number("alpha", float(settings.alpha), "power.alpha", 0.001, 0.5)
    f.number("seed", int(seed), "seed", 0)
    return f.values, f.problems


def generator_form(name: str, params: dict) -> tuple[dict, list[str]]:
    """``(form values, problems)``: the Generator page's family and hyperparameter widgets for ``params``."""
    from app_pages._generator_jobs import hyperparameters, widget_value
    specs = hyperparameters(name)
    values = {"generator_name": name}
    problems = [f"cohort.params.{k}: the Generator page edits {', '.join(specs) or 'no hyperparameters'} of {name!r}, "
                f"not {k}" for k in params if k not in specs]
    for k, (kind, default) in specs.items():
        values[f"hp_{name}_{k}"] = widget_value(params.get(k, default), kind, default)
    shown = form_params(name, values)
    for k, v in params.items():
        if k in specs and shown.get(k, specs[k][1]) != v:
            problems.append(f"cohort.params.{k}: the Generator page cannot show {v!r} (it takes a "
                            f"{specs[k][0].__name__})")
    return values, problems
