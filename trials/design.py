"""Frozen design objects of a two-arm trial: arms, allocation, endpoint, effect, dropout.

A design is pure data: building one validates it (impossible values raise
:class:`~cohorts.errors.InvalidScenarioError` naming the field), and nothing here draws random numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from cohorts.errors import InvalidScenarioError

__all__ = ["Effect", "Arm", "Endpoint", "Dropout", "TrialDesign", "PowerSettings",
           "EFFECT_OUTCOME", "ANALYSIS_OUTCOME", "NULL_EFFECT"]

#: effect kind -> the outcome type it applies to
EFFECT_OUTCOME = {
    "slope_reduction": "longitudinal",  # fraction of each patient's decline removed (0.25 = 25 % slowing)
    "hazard_ratio": "tte",              # treated vs control, proportional hazards
    "mean_difference": "continuous",    # treated minus control, in the outcome's unit
    "odds_ratio": "binary",             # treated vs control odds of the outcome = 1
}
#: the value of each effect kind that means "no effect"
NULL_EFFECT = {"slope_reduction": 0.0, "hazard_ratio": 1.0, "mean_difference": 0.0, "odds_ratio": 1.0}
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


@dataclass(frozen=True)
class Effect:
    """An assumed treatment effect: ``kind`` from :data:`EFFECT_OUTCOME`, and its ``value``."""

    kind: str
    value: float

    def __post_init__(self):
        if self.kind not in EFFECT_OUTCOME:
            raise _bad("effect", f"unknown effect {self.kind!r}; allowed: {', '.join(EFFECT_OUTCOME)}")
        v = self.value
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise _bad(f"effect.{self.kind}", f"must be a finite number, got {v!r}")
        if self.kind in ("hazard_ratio", "odds_ratio") and v <= 0:
            raise _bad(f"effect.{self.kind}", f"must be > 0 (1 = no effect), got {v}")
        if self.kind == "slope_reduction" and not (-1.0 <= v <= 1.0):
            raise _bad("effect.slope_reduction", f"is a fraction of the decline removed, between -1 and 1 "
                       f"(0.25 = 25 % slowing), got {v}")
        object.__setattr__(self, "value", float(v))

    @property
    def is_null(self) -> bool:
        return self.value == NULL_EFFECT[self.kind]

    @property
    def outcome_type(self) -> str:
        return EFFECT_OUTCOME[self.kind]

    def describe(self) -> str:
        return {"slope_reduction": f"{self.value:.0%} slowing of each patient's decline",
                "hazard_ratio": f"hazard ratio {self.value:g} (proportional hazards)",
                "mean_difference": f"mean difference {self.value:+g}",
                "odds_ratio": f"odds ratio {self.value:g}"}[self.kind]


@dataclass(frozen=True)
class Arm:
    """One arm: ``allocation`` is its relative share (1:1, 2:1 ...); no effect means control."""

    name: str
    allocation: float = 1.0
    effect: Effect | None = None

    def __post_init__(self):
        if not self.name:
            raise _bad("arms.name", "every arm needs a non-empty name")
        a = self.allocation
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not (0 < a < math.inf):
            raise _bad(f"arms[{self.name}].allocation", f"must be a positive number, got {a!r}")


@dataclass(frozen=True)
class Endpoint:
    """What is measured and how it is analysed.

    ``visits_months``: the visit schedule of a longitudinal endpoint (first visit = baseline, usually 0).
    ``followup``: administrative follow-up of a time-to-event endpoint, in the cohort's time unit.
    """

    analysis: str
    visits_months: tuple[float, ...] | None = None
    followup: float | None = None

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
        if self.outcome_type == "tte" and self.followup is None:
            raise _bad("endpoint.followup", f"is required for analysis {self.analysis!r} "
                       "(follow-up in the cohort's time unit)")

    @property
    def outcome_type(self) -> str:
        return ANALYSIS_OUTCOME[self.analysis]


@dataclass(frozen=True)
class Dropout:
    """Loss to follow-up: a constant hazard such that ``per_month`` of patients still in leave each month."""

    per_month: float = 0.0

    def __post_init__(self):
        p = self.per_month
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not (0 <= p < 1):
            raise _bad("dropout.per_month", f"must be in [0, 1), got {p!r}")

    @property
    def hazard_per_month(self) -> float:
        return -math.log1p(-self.per_month)


@dataclass(frozen=True)
class TrialDesign:
    """A two-arm trial: ``arms[0]`` is the control, ``arms[1]`` the treatment."""

    arms: tuple[Arm, Arm]
    endpoint: Endpoint
    dropout: Dropout = field(default_factory=Dropout)

    def __post_init__(self):
        arms = tuple(self.arms)
        if len(arms) != 2:
            raise _bad("arms", f"exactly two arms are supported (control first), got {len(arms)}")
        if arms[0].name == arms[1].name:
            raise _bad("arms", f"arm names must differ, both are {arms[0].name!r}")
        if arms[0].effect is not None and not arms[0].effect.is_null:
            raise _bad(f"arms[{arms[0].name}].effect", "the first arm is the control and takes no effect")
        eff = arms[1].effect
        if eff is not None and eff.outcome_type != self.endpoint.outcome_type:
            raise _bad(f"arms[{arms[1].name}].effect", f"{eff.kind!r} applies to {eff.outcome_type} outcomes, "
                       f"but analysis {self.endpoint.analysis!r} is for {self.endpoint.outcome_type} outcomes")
        object.__setattr__(self, "arms", arms)

    @property
    def control(self) -> Arm:
        return self.arms[0]

    @property
    def treatment(self) -> Arm:
        return self.arms[1]

    @property
    def effect(self) -> Effect:
        """The treatment effect (the null effect of the endpoint's kind when none is given)."""
        if self.treatment.effect is not None:
            return self.treatment.effect
        kind = next(k for k, o in EFFECT_OUTCOME.items() if o == self.endpoint.outcome_type)
        return Effect(kind, NULL_EFFECT[kind])

    @property
    def treated_fraction(self) -> float:
        a0, a1 = self.control.allocation, self.treatment.allocation
        return a1 / (a0 + a1)

    def null(self) -> "TrialDesign":
        """The same design with no treatment effect (for the simulated type I error)."""
        e = self.effect
        arm = replace(self.treatment, effect=Effect(e.kind, NULL_EFFECT[e.kind]))
        return replace(self, arms=(self.control, arm))


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
