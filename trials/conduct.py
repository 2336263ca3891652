"""How the trial is run: accrual, randomization, eligibility, interim looks, a hybrid control (pure data).

Each object validates itself on construction (an impossible value raises
:class:`~cohorts.errors.InvalidScenarioError` naming its scenario key) and draws nothing; the simulation
(:mod:`trials.simulate`, :mod:`trials.enrollment`) turns them into patients' entry times and arms.

Calendar time is in **months** throughout (as ``dropout.per_month`` and ``endpoint.visits_months``); a
time-to-event outcome keeps its cohort's unit and is converted where the two meet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cohorts.criteria import parse_criteria
from cohorts.errors import InvalidScenarioError

__all__ = ["Accrual", "Randomization", "Eligibility", "Looks", "HybridControl", "RANDOMIZATION_METHODS",
           "ACCRUAL_PROCESSES", "MULTIPLICITY", "SPENDING", "expression_problems"]

RANDOMIZATION_METHODS = ("fixed", "simple", "permuted_block")
ACCRUAL_PROCESSES = ("uniform", "poisson")
#: multiple-comparison adjustment of a multi-arm design (k treatments vs one control)
MULTIPLICITY = ("holm", "bonferroni", "hochberg", "none")
#: alpha- (and beta-) spending functions of group-sequential looks (see :mod:`analysis.gs_boundaries`)
SPENDING = ("obf", "pocock", "hsd")


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def expression_problems(value, key: str, example: str) -> list[str]:
    """What is wrong with ``value`` as a whitelist expression at scenario key ``key`` (``[]``: nothing)."""
    if not isinstance(value, str) or not value.strip():
        return [f"{key}: must be an expression, e.g. \"{example}\", got {value!r}"]
    try:
        parse_criteria(value)
    except InvalidScenarioError as exc:
        return [f"{key}: {q}" for q in exc.problems]
    return []


def _raise(problems: list[str]) -> None:
    if problems:
        raise InvalidScenarioError(problems)


@dataclass(frozen=True)
class Accrual:
    """Patients enter over calendar time: either ``duration`` (months over which all N enter at a constant rate)
    or piecewise-constant ``rates`` (patients per month) starting at ``starts`` (months, first 0; the last rate
    holds until everyone is in).

    ``process``: ``"uniform"`` spaces entries evenly in cumulative intensity (patient ``i`` of ``N``, 0-based,
    enters when the expected number enrolled reaches ``i + 1/2``); ``"poisson"`` draws a Poisson process of that
    intensity (given ``duration``: N sorted uniform times on ``[0, duration]``, the Poisson process conditioned on
    N arrivals)."""

    duration: float | None = None
    rates: tuple[float, ...] = ()
    starts: tuple[float, ...] = ()
    process: str = "uniform"

    def __post_init__(self):
        p = []
        rates = tuple(self.rates) if isinstance(self.rates, (list, tuple)) else self.rates
        starts = tuple(self.starts) if isinstance(self.starts, (list, tuple)) else self.starts
        if (self.duration is None) == (not rates):
            p.append("accrual: give either duration = MONTHS (all patients enter at a constant rate over it) or "
                     "rates = [PATIENTS PER MONTH, ...] (with starts = [0, MONTH, ...] for a piecewise rate)")
        if self.duration is not None and (not _num(self.duration) or self.duration <= 0):
            p.append(f"accrual.duration: must be a positive number of months, got {self.duration!r}")
        if rates:
            if not isinstance(rates, tuple) or not all(_num(r) and r > 0 for r in rates):
                p.append(f"accrual.rates: must be a list of positive numbers (patients per month), got {self.rates!r}")
            if not starts:
                starts = (0.0,) if isinstance(rates, tuple) and len(rates) == 1 else starts
            if not isinstance(starts, tuple) or len(starts) != len(rates or ()) or not all(_num(s) for s in starts):
                p.append(f"accrual.starts: needs one start month per rate (first 0), e.g. starts = [0, 6] with "
                         f"rates = [5, 20]; got {self.starts!r}")
            elif starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:])):
                p.append(f"accrual.starts: must begin at 0 and increase strictly, got {list(starts)}")
        elif starts:
            p.append("accrual.starts: applies only with rates")
        if self.process not in ACCRUAL_PROCESSES:
            p.append(f"accrual.process: must be one of {', '.join(ACCRUAL_PROCESSES)}, got {self.process!r}")
        _raise(p)
        object.__setattr__(self, "rates", tuple(float(r) for r in rates))
        object.__setattr__(self, "starts", tuple(float(s) for s in starts))
        if self.duration is not None:
            object.__setattr__(self, "duration", float(self.duration))

    def describe(self) -> str:
        how = "evenly spaced" if self.process == "uniform" else "Poisson arrivals"
        if self.duration is not None:
            return f"accrual over {self.duration:g} months ({how})"
        pieces = ", ".join(f"{r:g}/month from month {s:g}" for r, s in zip(self.rates, self.starts))
        return f"accrual at {pieces} ({how})"


@dataclass(frozen=True)
class Randomization:
    """How patients are assigned to arms, in order of entry.

    * ``"fixed"`` (default): fixed arm sizes in random order (a random permutation): the largest remainders of
      ``N * share`` (two arms: ``round(N * share)`` treated, as since the first release).
    * ``"simple"``: each patient independently, with the arms' allocation probabilities (arm sizes vary).
    * ``"permuted_block"``: blocks of ``block_size`` (a multiple of the sum of the integer allocation ratios),
      each a random permutation of the allocation, filled in order of entry within each stratum.

    ``strata`` (permuted blocks only): baseline covariates to stratify on, each a column name (one stratum per
    value; a missing value is its own stratum) or a whitelist expression such as ``"age >= 60"`` (true / not
    true)."""

    method: str = "fixed"
    block_size: int | None = None
    strata: tuple[str, ...] = ()

    def __post_init__(self):
        p = []
        if self.method not in RANDOMIZATION_METHODS:
            p.append(f"randomization.method: must be one of {', '.join(RANDOMIZATION_METHODS)}, got {self.method!r}")
        strata = tuple(self.strata) if isinstance(self.strata, (list, tuple)) else None
        if strata is None or not all(isinstance(s, str) and s.strip() for s in strata):
            p.append(f"randomization.strata: must be a list of column names or expressions, got {self.strata!r}")
            strata = ()
        if self.method == "permuted_block":
            b = self.block_size
            if isinstance(b, bool) or not isinstance(b, int) or b < 2:
                p.append(f"randomization.block_size: permuted blocks need an integer block size >= 2, got {b!r}")
        else:
            if self.block_size is not None:
                p.append(f"randomization.block_size: applies only to method = \"permuted_block\", not "
                         f"{self.method!r}")
            if strata:
                p.append("randomization.strata: stratification applies only to method = \"permuted_block\"")
        for s in strata:
            if not s.strip().isidentifier():
                p += expression_problems(s, f"randomization.strata[{s!r}]", "age >= 60")
        _raise(p)
        object.__setattr__(self, "strata", strata)

    def describe(self) -> str:
        if self.method == "fixed":
            return "fixed arm sizes in random order"
        if self.method == "simple":
            return "simple (independent) randomization"
        by = f", stratified by {', '.join(self.strata)}" if self.strata else ""
        return f"permuted blocks of {self.block_size}{by}"


@dataclass(frozen=True)
class Eligibility:
    """Who enters: ``criteria`` (a whitelist expression on baseline covariates, see :mod:`cohorts.criteria`)
    and ``enrich`` (expression -> relative enrolment weight, e.g. ``(("site_of_onset == 'Bulbar'", 2.0),)``)."""

    criteria: str | None = None
    enrich: tuple[tuple[str, float], ...] = ()

    def __post_init__(self):
        p = []
        if self.criteria is not None:
            p += expression_problems(self.criteria, "eligibility.criteria", "age >= 18 and fvc > 60")
        enrich = tuple(self.enrich.items()) if isinstance(self.enrich, dict) else tuple(self.enrich)
        for expr, w in enrich:
            if not _num(w) or w <= 0:
                p.append(f"eligibility.enrich[{expr!r}]: must be a positive weight (2 = twice as likely to enrol), "
                         f"got {w!r}")
            p += expression_problems(expr, f"eligibility.enrich[{expr!r}]", "site_of_onset == 'Bulbar'")
        if self.criteria is None and not enrich:
            p.append("eligibility: give criteria = \"...\" and/or enrich = { \"EXPRESSION\" = WEIGHT }")
        _raise(p)
        object.__setattr__(self, "enrich", tuple((str(e), float(w)) for e, w in enrich))

    def conditions(self):
        """The :class:`cohorts.conditional.SamplingConditions` the generator draws under."""
        from cohorts.conditional import SamplingConditions
        return SamplingConditions(criteria=self.criteria, enrich=dict(self.enrich) or None)

    def describe(self) -> str:
        parts = [f"eligible if {self.criteria}"] if self.criteria else []
        parts += [f"{w:g}x enrolment weight for {e}" for e, w in self.enrich]
        return "; ".join(parts)


@dataclass(frozen=True)
class Looks:
    """Group-sequential looks at ``information_fractions`` (strictly increasing, the last 1): efficacy
    boundaries by Lan-DeMets ``spending`` (``"obf"``, ``"pocock"``, or ``"hsd"`` with ``gamma``), optional
    non-binding ``futility`` by beta-spending (one-sided designs; ``beta`` its type II error).

    ``sided = 2`` (default) spends the power settings' two-sided ``alpha`` symmetrically; ``sided = 1`` spends
    ``alpha / 2`` one-sided in the direction of the assumed effect (needed for futility). Information is the
    share of the final number of events (time to event) or of the N patients with the endpoint assessed (others).
    """

    information_fractions: tuple[float, ...]
    spending: str = "obf"
    gamma: float | None = None
    futility: str | None = None
    beta: float | None = None
    gamma_futility: float | None = None
    sided: int = 2
    #: +1 / -1: the sign of the assumed effect on its latent scale (set by ``TrialDesign.null()`` so that the null
    #: scenario keeps the alternative's orientation); 0: from the design's own effect
    direction: int = 0

    def __post_init__(self):
        t = self.information_fractions
        p = []
        if not isinstance(t, (list, tuple)) or not t or not all(_num(x) for x in t):
            p.append(f"looks.information_fractions: must be a list of numbers ending at 1, e.g. [0.5, 1], got {t!r}")
        else:
            t = tuple(float(x) for x in t)
            if t[0] <= 0 or t[-1] != 1.0 or any(b <= a for a, b in zip(t, t[1:])):
                p.append(f"looks.information_fractions: must increase strictly in (0, 1] and end at 1, got {list(t)}")
            object.__setattr__(self, "information_fractions", t)
        if self.spending not in SPENDING:
            p.append(f"looks.spending: must be one of {', '.join(SPENDING)}, got {self.spending!r}")
        if self.futility is not None and self.futility not in SPENDING:
            p.append(f"looks.futility: must be one of {', '.join(SPENDING)} (or left out), got {self.futility!r}")
        if self.sided not in (1, 2):
            p.append(f"looks.sided: must be 1 or 2, got {self.sided!r}")
        elif self.futility is not None and self.sided != 1:
            p.append("looks.futility: futility boundaries need a one-sided design; add sided = 1")
        _raise(p)

    @property
    def n_looks(self) -> int:
        return len(self.information_fractions)

    def gs_design(self, alpha: float):
        """The :class:`analysis.gs_boundaries.GroupSequentialDesign` at two-sided level ``alpha``."""
        from analysis.gs_boundaries import GroupSequentialDesign
        return GroupSequentialDesign(self.information_fractions, alpha=alpha / 2 if self.sided == 1 else alpha,
                                     spending=self.spending, gamma=self.gamma, futility=self.futility,
                                     beta=self.beta, sided=self.sided, gamma_futility=self.gamma_futility)

    def describe(self) -> str:
        fr = ", ".join(f"{x:g}" for x in self.information_fractions)
        names = {"obf": "O'Brien-Fleming-type", "pocock": "Pocock-type", "hsd": f"Hwang-Shih-DeCani (gamma {self.gamma})"}
        text = f"{self.n_looks} looks at information {fr}; {names.get(self.spending, self.spending)} alpha spending"
        if self.futility:
            text += f", non-binding {names.get(self.futility, self.futility)} futility (beta {self.beta:g})"
        return text + ("" if self.sided == 2 else ", one-sided")


@dataclass(frozen=True)
class HybridControl:
    """A randomized control arm augmented with ``synthetic_controls`` patients drawn from the generator.

    ``drift`` (optional): how the current trial's patients differ from the historical ones the generator learned,
    as an effect of the endpoint's kind applied to every randomized patient (e.g. ``hazard_ratio`` 1.2: today's
    patients die 20 % faster than the historical ones); the synthetic controls keep the historical distribution,
    so drift biases the hybrid comparison. ``None``: no drift."""

    synthetic_controls: int
    drift: float | None = None

    def __post_init__(self):
        m = self.synthetic_controls
        p = []
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            p.append(f"hybrid.synthetic_controls: must be a positive integer (synthetic controls added per trial), "
                     f"got {m!r}")
        if self.drift is not None and not _num(self.drift):
            p.append(f"hybrid.drift: must be a number on the effect's scale, got {self.drift!r}")
        _raise(p)
        if self.drift is not None:
            object.__setattr__(self, "drift", float(self.drift))
