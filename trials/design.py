"""Frozen design objects of a two-arm trial: arms, allocation, endpoint, effect, dropout.

A design is pure data: building one validates it (impossible values raise
:class:`~cohorts.errors.InvalidScenarioError` naming the field), and nothing here draws random numbers.
"""

from __future__ import annotations

import math
from dataclasses import KW_ONLY, dataclass, field, replace

import numpy as np

from cohorts.criteria import parse_criteria
from cohorts.errors import InvalidScenarioError
from trials.conduct import (MULTIPLICITY, Accrual, Eligibility, HybridControl, Looks, Randomization,
                            expression_problems)

__all__ = ["Effect", "Arm", "Endpoint", "Dropout", "TrialDesign", "PowerSettings",
           "EFFECT_OUTCOME", "EFFECT_MODIFIERS", "ANALYSIS_OUTCOME", "NULL_EFFECT"]

#: effect kind -> the outcome type it applies to
EFFECT_OUTCOME = {
    "slope_reduction": "longitudinal",  # fraction of each patient's decline removed (0.25 = 25 % slowing)
    "hazard_ratio": "tte",              # treated vs control, proportional hazards
    "mean_difference": "continuous",    # treated minus control, in the outcome's unit
    "odds_ratio": "binary",             # treated vs control odds of the outcome = 1
    "risk_difference": "binary",        # treated minus control probability of the outcome = 1 (clipped per patient)
}
#: the value of each effect kind that means "no effect"
NULL_EFFECT = {"slope_reduction": 0.0, "hazard_ratio": 1.0, "mean_difference": 0.0, "odds_ratio": 1.0,
               "risk_difference": 0.0}
#: optional keys of an effect besides its kind (see :class:`Effect`)
EFFECT_MODIFIERS = ("delay", "until", "responder_fraction", "subgroup", "outside_value")
#: analysis name -> the outcome type it analyses (the estimators live in ``analysis``)
ANALYSIS_OUTCOME = {
    "slope": "longitudinal",    # per-patient OLS slope, Welch t-test between arms
    "ancova": "longitudinal",   # change from baseline at the last visit ~ arm + baseline (completers)
    "logrank": "tte",           # log-rank test
    "cox": "tte",               # Cox PH on arm, Efron ties, Wald test
    "ttest": "continuous",      # Welch two-sample t-test
    "proportions": "binary",    # two-sample z-test of proportions (pooled variance), risk difference
    "risk_difference": "binary",  # risk difference, Newcombe hybrid score CI, pooled z-test
    "risk_ratio": "binary",     # risk ratio, log (Katz) CI, Wald z-test on log RR
    "logistic": "binary",       # logistic regression odds ratio, Wald test
    "mmrm": "longitudinal",     # MMRM: change ~ visit x arm + visit x baseline, unstructured, REML, Satterthwaite
    "random_slope": "longitudinal",  # random intercept and slope model, time x arm (slope difference)
}


def _bad(path: str, msg: str) -> InvalidScenarioError:
    return InvalidScenarioError(f"{path}: {msg}")


def _value_problem(kind: str, v, key: str) -> str | None:
    """What is wrong with ``v`` as the value of an effect of ``kind`` (``None``: nothing), for key ``key``."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return f"effect.{key}: must be a finite number, got {v!r}"
    if kind in ("hazard_ratio", "odds_ratio") and v <= 0:
        return f"effect.{key}: must be > 0 (1 = no effect), got {v}"
    if kind == "slope_reduction" and not (-1.0 <= v <= 1.0):
        return (f"effect.{key}: is a fraction of the decline removed, between -1 and 1 "
                f"(0.25 = 25 % slowing), got {v}")
    if kind == "risk_difference" and not (-1.0 <= v <= 1.0):
        return (f"effect.{key}: is a difference of probabilities (treated minus control), between -1 and 1 "
                f"(-0.1 = 10 percentage points fewer responses), got {v}")
    return None


def _fmt_time(x: float, unit: str | None) -> str:
    return f"{x:g} {unit}" if unit else f"{x:g} (cohort time unit)"


@dataclass(frozen=True)
class Effect:
    """An assumed treatment effect: ``kind`` from :data:`EFFECT_OUTCOME`, its ``value``, and optional modifiers.

    Modifiers (keyword-only; all optional, see :data:`EFFECT_MODIFIERS`):

    * ``delay`` / ``until`` (``hazard_ratio`` only, in the cohort's time unit): the hazard ratio holds from
      ``delay`` (before it: 1, a delayed effect) and up to ``until`` (after it: 1, a waning effect); both give
      ``value`` on ``[delay, until)`` and 1 elsewhere. See :meth:`hazard_ratio_schedule`.
    * ``responder_fraction`` in (0, 1]: each treated patient responds with this probability (a Bernoulli draw
      per patient in the simulation); non-responders behave as controls.
    * ``subgroup``: an eligibility-style expression (:mod:`cohorts.criteria`, e.g. ``"age < 60"``) on the
      baseline covariates; treated patients outside it get ``outside_value`` (default: no effect).
    * ``time_unit``: only for :meth:`describe` (the scenario parser fills it from the cohort); not compared.
    """

    kind: str
    value: float
    _: KW_ONLY
    delay: float | None = None
    until: float | None = None
    responder_fraction: float = 1.0
    subgroup: str | None = None
    outside_value: float | None = None
    time_unit: str | None = field(default=None, compare=False)

    def __post_init__(self):
        if self.kind not in EFFECT_OUTCOME:
            raise _bad("effect", f"unknown effect {self.kind!r}; allowed: {', '.join(EFFECT_OUTCOME)}")
        problems = [p for p in (_value_problem(self.kind, self.value, self.kind),) if p]
        for key in ("delay", "until"):
            v = getattr(self, key)
            if v is None:
                continue
            if self.kind != "hazard_ratio":
                problems.append(f"effect.{key}: applies only to hazard_ratio (a time-varying hazard ratio), not "
                                f"to {self.kind}; remove it")
            elif isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 < v < math.inf):
                problems.append(f"effect.{key}: must be a positive time in the cohort's time unit, got {v!r}")
        if (self.kind == "hazard_ratio" and _number(self.delay) and _number(self.until)
                and not self.until > self.delay):
            problems.append(f"effect.until: must be after the delay ({self.delay:g}), got {self.until:g}")
        f = self.responder_fraction
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not (0 < f <= 1):
            problems.append(f"effect.responder_fraction: is the share of treated patients who respond, in (0, 1] "
                            f"(1 = everyone), got {f!r}")
        if self.subgroup is not None:
            problems += expression_problems(self.subgroup, "effect.subgroup", "age < 60")
        if self.outside_value is not None:
            if self.subgroup is None:
                problems.append("effect.outside_value: applies only with a subgroup (it is the effect outside "
                                "the subgroup); add subgroup = \"...\" or remove it")
            problems += [p for p in (_value_problem(self.kind, self.outside_value, "outside_value"),) if p]
        if self.time_unit is not None and not isinstance(self.time_unit, str):
            problems.append(f"effect.time_unit: must be text (days, weeks, months, years), got {self.time_unit!r}")
        if problems:
            raise InvalidScenarioError(problems)
        for key in ("value", "delay", "until", "responder_fraction", "outside_value"):
            if getattr(self, key) is not None:
                object.__setattr__(self, key, float(getattr(self, key)))

    @property
    def is_null(self) -> bool:
        """No patient is affected: the value (and ``outside_value`` when given) is the no-effect value."""
        null = NULL_EFFECT[self.kind]
        return self.value == null and (self.outside_value is None or self.outside_value == null)

    @property
    def outcome_type(self) -> str:
        return EFFECT_OUTCOME[self.kind]

    @property
    def is_time_varying(self) -> bool:
        """A hazard ratio with a ``delay`` or an ``until``: not proportional hazards."""
        return self.delay is not None or self.until is not None

    @property
    def modifiers(self) -> dict:
        """The modifiers that differ from their defaults, as scenario-file keys (in :data:`EFFECT_MODIFIERS` order)."""
        out = {"delay": self.delay, "until": self.until,
               "responder_fraction": None if self.responder_fraction == 1.0 else self.responder_fraction,
               "subgroup": self.subgroup, "outside_value": self.outside_value}
        return {k: v for k, v in out.items() if v is not None}

    def criteria(self):
        """The parsed :attr:`subgroup` (:class:`cohorts.criteria.Criteria`), ``None`` without one."""
        return None if self.subgroup is None else parse_criteria(self.subgroup)

    def hazard_ratio_schedule(self) -> tuple[tuple[float, ...], tuple[bool, ...]]:
        """``(breaks, on)``: the effect holds on piece ``j`` of ``[0, b_1), [b_1, b_2), ..., [b_K, inf)`` where
        ``on[j]``; elsewhere the hazard ratio is 1. No delay/until: ``((), (True,))`` (proportional hazards)."""
        if self.delay is not None and self.until is not None:
            return (self.delay, self.until), (False, True, False)
        if self.delay is not None:
            return (self.delay,), (False, True)
        if self.until is not None:
            return (self.until,), (True, False)
        return (), (True,)

    def _value_text(self, v: float) -> str:
        return {"slope_reduction": f"{v:.0%} slowing of each patient's decline",
                "hazard_ratio": f"hazard ratio {v:g}",
                "mean_difference": f"mean difference {v:+g}",
                "odds_ratio": f"odds ratio {v:g}",
                "risk_difference": f"risk difference {v:+g}"}[self.kind]

    def describe(self, time_unit: str | None = None) -> str:
        """The effect in words, e.g. "hazard ratio 0.7 after a delay of 3 months (1 before)"; ``time_unit``
        (default: :attr:`time_unit`) names the unit of ``delay`` and ``until``."""
        unit = time_unit or self.time_unit
        text = self._value_text(self.value)
        if self.kind == "hazard_ratio":
            if self.delay is not None and self.until is not None:
                text += (f" from {_fmt_time(self.delay, unit)} to {_fmt_time(self.until, unit)} "
                         "(1 before and after)")
            elif self.delay is not None:
                text += f" after a delay of {_fmt_time(self.delay, unit)} (1 before)"
            elif self.until is not None:
                text += f" until {_fmt_time(self.until, unit)}, then 1 (waning)"
            else:
                text += " (proportional hazards)"
        elif self.kind == "risk_difference":
            text += " (each patient's probability shifted, clipped to [0, 1])"
        if self.subgroup is not None:
            other = "no effect" if self.outside_value is None else self._value_text(self.outside_value)
            text += f" in patients with {self.subgroup.strip()} ({other} otherwise)"
        if self.responder_fraction < 1:
            text += (f", in a random {self.responder_fraction:.0%} of treated patients (responders; the others "
                     "as controls)")
        return text


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class Arm:
    """One arm: ``allocation`` is its relative share (1:1, 2:1 ...); no effect means control."""

    name: str
    allocation: float = 1.0
    effect: Effect | None = None
    #: this arm's loss to follow-up (share leaving per month); ``None``: the design's ``dropout.per_month``
    dropout_per_month: float | None = None

    def __post_init__(self):
        if not self.name:
            raise _bad("arms.name", "every arm needs a non-empty name")
        a = self.allocation
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not (0 < a < math.inf):
            raise _bad(f"arms[{self.name}].allocation", f"must be a positive number, got {a!r}")
        d = self.dropout_per_month
        if d is not None and (isinstance(d, bool) or not isinstance(d, (int, float)) or not (0 <= d < 1)):
            raise _bad(f"arms[{self.name}].dropout_per_month", f"must be in [0, 1), got {d!r}")


@dataclass(frozen=True)
class Endpoint:
    """What is measured and how it is analysed.

    ``visits_months``: the visit schedule of a longitudinal endpoint (first visit = baseline, usually 0).
    ``visit_window_months``: each post-baseline visit happens at a uniform time within +- this many months of
    its nominal time (0: on time); the per-patient slope analysis uses the actual times, the visit-based
    analyses (ANCOVA, MMRM) and random slopes the nominal visit.
    ``followup``: each patient's maximum follow-up from entry for a time-to-event endpoint, in the cohort's time
    unit. ``events``: event-driven analysis: the (final) analysis happens in calendar time when this many events
    have been observed (patients still at risk are censored then); ``followup`` becomes optional.
    ``assessment_months``: months from randomization to the measurement of a continuous or binary endpoint (it
    only times interim looks and the trial's duration).
    """

    analysis: str
    visits_months: tuple[float, ...] | None = None
    followup: float | None = None
    _: KW_ONLY
    events: int | None = None
    visit_window_months: float = 0.0
    assessment_months: float = 0.0

    def __post_init__(self):
        if self.analysis not in ANALYSIS_OUTCOME:
            raise _bad("endpoint.analysis", f"unknown analysis {self.analysis!r}; allowed: "
                       f"{', '.join(ANALYSIS_OUTCOME)}")
        if self.visits_months is not None:
            v = tuple(float(x) for x in self.visits_months)
            if len(v) < 2 or any(b <= a for a, b in zip(v, v[1:])) or v[0] < 0:
                raise _bad("endpoint.visits_months", "needs at least two strictly increasing times >= 0, "
                           f"e.g. [0, 1, 2, 3, 4, 5, 6]; got {list(self.visits_months)}")
            object.__setattr__(self, "visits_months", v)
        if self.outcome_type == "longitudinal" and self.visits_months is None:
            raise _bad("endpoint.visits_months", f"is required for analysis {self.analysis!r}")
        if self.followup is not None and not (0 < float(self.followup) < math.inf):
            raise _bad("endpoint.followup", f"must be a positive number, got {self.followup!r}")
        if self.outcome_type == "tte" and self.followup is None and self.events is None:
            raise _bad("endpoint.followup", f"is required for analysis {self.analysis!r} "
                       "(follow-up in the cohort's time unit), unless the analysis is event-driven (events = D)")
        e = self.events
        if e is not None:
            if isinstance(e, bool) or not isinstance(e, int) or e < 2:
                raise _bad("endpoint.events", f"must be an integer >= 2 (events at the final analysis), got {e!r}")
            if self.outcome_type != "tte":
                raise _bad("endpoint.events", "an event-driven analysis applies to time-to-event endpoints only")
        w = self.visit_window_months
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not (0 <= w < math.inf):
            raise _bad("endpoint.visit_window_months", f"must be a number of months >= 0, got {w!r}")
        if w > 0:
            if self.visits_months is None:
                raise _bad("endpoint.visit_window_months", "applies to longitudinal endpoints (with visits_months)")
            gaps = [b - a for a, b in zip(self.visits_months, self.visits_months[1:])]
            if 2 * w >= min(gaps):
                raise _bad("endpoint.visit_window_months", f"+-{w:g} months would let visits overlap; it must be "
                           f"less than half the shortest gap between visits ({min(gaps):g} months)")
        object.__setattr__(self, "visit_window_months", float(w))
        a = self.assessment_months
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not (0 <= a < math.inf):
            raise _bad("endpoint.assessment_months", f"must be a number of months >= 0, got {a!r}")
        object.__setattr__(self, "assessment_months", float(a))

    @property
    def outcome_type(self) -> str:
        return ANALYSIS_OUTCOME[self.analysis]


@dataclass(frozen=True)
class Dropout:
    """Loss to follow-up: a constant hazard such that ``per_month`` of patients still in leave each month.

    ``hazard_ratio_per_unit_change`` (longitudinal endpoints): informative dropout; between two visits the hazard
    is multiplied by this ratio to the power of the patient's last observed change from baseline (e.g. 0.9 for
    ALSFRS-R: a patient who has lost 5 points leaves ``0.9 ** -5 = 1.7`` times as often). 1: dropout ignores the
    trajectory."""

    per_month: float = 0.0
    hazard_ratio_per_unit_change: float = 1.0

    def __post_init__(self):
        p = self.per_month
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not (0 <= p < 1):
            raise _bad("dropout.per_month", f"must be in [0, 1), got {p!r}")
        h = self.hazard_ratio_per_unit_change
        if isinstance(h, bool) or not isinstance(h, (int, float)) or not (0 < h < math.inf):
            raise _bad("dropout.hazard_ratio_per_unit_change", f"must be a positive number (1 = dropout does not "
                       f"depend on the trajectory), got {h!r}")

    @property
    def informative(self) -> bool:
        return self.hazard_ratio_per_unit_change != 1.0

    @property
    def hazard_per_month(self) -> float:
        return -math.log1p(-self.per_month)


@dataclass(frozen=True)
class TrialDesign:
    """A trial: ``arms[0]`` is the control, ``arms[1:]`` the treatments (two arms, or k treatments vs one
    control with ``multiplicity`` adjustment), how it is analysed, and how it is conducted.

    Conduct (all optional; see :mod:`trials.conduct`): ``accrual`` (calendar entry; none: everyone enters at
    month 0), ``randomization`` (default fixed arm sizes in random order), ``eligibility`` (who is drawn),
    ``looks`` (group-sequential interim analyses), ``hybrid`` (synthetic controls added to the randomized ones).
    """

    arms: tuple[Arm, ...]
    endpoint: Endpoint
    dropout: Dropout = field(default_factory=Dropout)
    _: KW_ONLY
    accrual: Accrual | None = None
    randomization: Randomization = field(default_factory=Randomization)
    eligibility: Eligibility | None = None
    looks: Looks | None = None
    hybrid: HybridControl | None = None
    multiplicity: str = "holm"

    def __post_init__(self):
        arms = tuple(self.arms)
        if len(arms) < 2:
            raise _bad("arms", f"at least two arms are needed (the control first), got {len(arms)}")
        names = [a.name for a in arms]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise _bad("arms", f"arm names must differ; {', '.join(map(repr, dup))} appears more than once")
        if arms[0].effect is not None and not arms[0].effect.is_null:
            raise _bad(f"arms[{arms[0].name}].effect", "the first arm is the control and takes no effect")
        for arm in arms[1:]:
            eff = arm.effect
            if eff is not None and eff.outcome_type != self.endpoint.outcome_type:
                raise _bad(f"arms[{arm.name}].effect", f"{eff.kind!r} applies to {eff.outcome_type} outcomes, "
                           f"but analysis {self.endpoint.analysis!r} is for {self.endpoint.outcome_type} outcomes")
        kinds = {a.effect.kind for a in arms[1:] if a.effect is not None}
        if len(kinds) > 1:
            raise _bad("arms", f"every treatment arm's effect must be of one kind, got {', '.join(sorted(kinds))}")
        schedules = {(a.effect.delay, a.effect.until) for a in arms[1:] if a.effect is not None}
        if len(schedules) > 1:
            raise _bad("arms", "every treatment arm's hazard ratio must switch on and off at the same times "
                       "(equal delay and until)")
        object.__setattr__(self, "arms", arms)
        if self.multiplicity not in MULTIPLICITY:
            raise _bad("multiplicity", f"must be one of {', '.join(MULTIPLICITY)}, got {self.multiplicity!r}")
        if self.randomization.method == "permuted_block":
            ratios = [a.allocation for a in arms]
            if not all(float(r).is_integer() for r in ratios):
                raise _bad("randomization.block_size", "permuted blocks need integer allocation ratios (e.g. 1 and "
                           f"2), got {', '.join(f'{r:g}' for r in ratios)}")
            unit = int(sum(ratios))
            if self.randomization.block_size % unit:
                raise _bad("randomization.block_size", f"must be a multiple of the allocation total {unit} "
                           f"({':'.join(f'{r:g}' for r in ratios)}), got {self.randomization.block_size}")
        if self.n_treatments > 1 and self.looks is not None:
            raise _bad("looks", "group-sequential looks are supported for two-arm designs; remove [looks] or "
                       "keep one treatment arm")
        if self.hybrid is not None:
            if self.n_treatments > 1:
                raise _bad("hybrid", "a hybrid control is supported for two-arm designs; keep one treatment arm")
            if self.looks is not None:
                raise _bad("hybrid", "a hybrid control with interim looks is not supported; remove [looks]")
            if self.hybrid.drift is not None:
                problem = _value_problem(self.effect.kind, self.hybrid.drift, "drift")
                if problem:
                    raise _bad("hybrid.drift", f"is a {self.effect.kind} (the current trial's patients vs the "
                               f"historical ones): {problem.split(': ', 1)[1]}")
        if self.endpoint.outcome_type in ("continuous", "binary") and self.dropout.informative:
            raise _bad("dropout.hazard_ratio_per_unit_change", "informative dropout applies to longitudinal "
                       "endpoints (it follows the trajectory)")

    @property
    def control(self) -> Arm:
        return self.arms[0]

    @property
    def treatment(self) -> Arm:
        """The (first) treatment arm."""
        return self.arms[1]

    @property
    def treatments(self) -> tuple[Arm, ...]:
        return self.arms[1:]

    @property
    def n_treatments(self) -> int:
        return len(self.arms) - 1

    def _effect_of(self, arm: Arm) -> Effect:
        if arm.effect is not None:
            return arm.effect
        kind = next((a.effect.kind for a in self.arms[1:] if a.effect is not None), None)
        if kind is None:
            kind = next(k for k, o in EFFECT_OUTCOME.items() if o == self.endpoint.outcome_type)
        return Effect(kind, NULL_EFFECT[kind])

    @property
    def effect(self) -> Effect:
        """The (first) treatment arm's effect (the null effect of the endpoint's kind when none is given)."""
        return self._effect_of(self.treatment)

    @property
    def effects(self) -> tuple[Effect, ...]:
        """Each treatment arm's effect, in arm order."""
        return tuple(self._effect_of(a) for a in self.treatments)

    @property
    def allocation_shares(self) -> tuple[float, ...]:
        total = sum(a.allocation for a in self.arms)
        return tuple(a.allocation / total for a in self.arms)

    @property
    def treated_fraction(self) -> float:
        """Share of patients in the (first) treatment arm among the control and that arm."""
        a0, a1 = self.control.allocation, self.treatment.allocation
        return a1 / (a0 + a1)

    @property
    def has_conduct(self) -> bool:
        """Anything beyond the two-arm, all-enter-at-once, fixed-randomization skeleton."""
        return (self.accrual is not None or self.randomization != Randomization() or self.eligibility is not None
                or self.looks is not None or self.hybrid is not None or self.n_treatments > 1
                or self.endpoint.events is not None or self.endpoint.visit_window_months > 0
                or self.dropout.informative or any(a.dropout_per_month is not None for a in self.arms))

    def dropout_hazards(self) -> tuple[float, ...]:
        """Per arm: the monthly dropout hazard (the arm's own ``dropout_per_month`` or the design's)."""
        return tuple(-math.log1p(-(a.dropout_per_month if a.dropout_per_month is not None
                                   else self.dropout.per_month)) for a in self.arms)

    def conduct_summary(self) -> list[tuple[str, str]]:
        """How the trial is run: ``(label, text)`` lines for the report, the CLI and the app, for what differs from
        the two-arm skeleton (everyone at month 0, fixed arm sizes, no looks ...); empty for the skeleton."""
        ep, rows = self.endpoint, []
        if self.n_treatments > 1:
            rows.append(("Multiplicity", f"{self.n_treatments} treatments vs control, {self.multiplicity} "
                                         "adjustment; success = any treatment significant after adjustment"))
        if self.accrual is not None:
            rows.append(("Accrual", self.accrual.describe()))
        if self.randomization != Randomization():
            rows.append(("Randomization", self.randomization.describe()))
        if self.eligibility is not None:
            rows.append(("Eligibility", self.eligibility.describe()))
        if ep.events is not None:
            rows.append(("Event-driven analysis", f"when {ep.events} events have been observed (calendar time)"))
        if ep.visit_window_months:
            rows.append(("Visit windows", f"+-{ep.visit_window_months:g} months around each post-baseline visit"))
        per_arm = [a for a in self.arms if a.dropout_per_month is not None]
        if per_arm:
            rows.append(("Dropout by arm", ", ".join(f"{a.name} {a.dropout_per_month:.1%}/month" for a in per_arm)))
        if self.dropout.informative:
            rows.append(("Informative dropout", f"hazard x {self.dropout.hazard_ratio_per_unit_change:g} per unit "
                                                "of change from baseline"))
        if self.looks is not None:
            rows.append(("Interim looks", self.looks.describe()))
        if self.hybrid is not None:
            drift = "no drift" if self.hybrid.drift is None else f"drift {self.effect.kind} {self.hybrid.drift:g}"
            rows.append(("Hybrid control", f"{self.hybrid.synthetic_controls} synthetic controls per trial added to "
                                           f"the randomized control arm ({drift}); the randomized-only comparison is "
                                           "reported beside it"))
        return rows

    def null(self) -> "TrialDesign":
        """The same design with no treatment effect (for the simulated type I error): the null value of the
        effect's kind in every treatment arm, without delay, waning, responders or subgroup (conduct, drift and
        dropout unchanged)."""
        kind = self.effect.kind
        arms = (self.control,) + tuple(replace(a, effect=Effect(kind, NULL_EFFECT[kind])) for a in self.treatments)
        looks = self.looks
        if looks is not None and looks.direction == 0:
            looks = replace(looks, direction=self.effect_direction)
        return replace(self, arms=arms, looks=looks)

    @property
    def effect_direction(self) -> int:
        """+1 / -1: the sign of the (first) treatment effect on its latent scale (log hazard or odds ratio,
        difference, slowing); 0 for no effect. Interim looks orient their Z statistics by it."""
        if self.looks is not None and self.looks.direction != 0:
            return self.looks.direction
        e = self.effect
        v = math.log(e.value) if e.kind in ("hazard_ratio", "odds_ratio") else e.value
        return int(np.sign(v))


@dataclass(frozen=True)
class PowerSettings:
    """Total sample sizes to simulate, replicates per size, two-sided significance level."""

    n_total: tuple[int, ...]
    replicates: int = 1000
    alpha: float = 0.05

    def __post_init__(self):
        ns = tuple(self.n_total)
        if not ns or any(isinstance(n, bool) or not isinstance(n, int) or n < 4 for n in ns):
            raise _bad("power.n_total", f"must be a non-empty list of integers >= 4, got {list(ns)}")
        object.__setattr__(self, "n_total", ns)
        r = self.replicates
        if isinstance(r, bool) or not isinstance(r, int) or not (1 <= r <= 1_000_000):
            raise _bad("power.replicates", f"must be an integer in [1, 1000000], got {r!r}")
        a = self.alpha
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not (0 < a < 1):
            raise _bad("power.alpha", f"must be in (0, 1), got {a!r}")
