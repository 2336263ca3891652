"""Richer effects as per-patient counterfactual transforms: piecewise hazard ratio (delayed, waning), responder
fraction, subgroup effect, risk difference; their scenario keys, messages and round trip.

References: closed forms of KnownGenerator (exponential event times with ``rate``, linear slopes, constant
probability), and each patient's control counterfactual (the same seed with ``design.null()``). Monte Carlo
checks use binomial (or mean) error bounds of 4 standard deviations.
"""

import numpy as np
import pytest
from support import KnownGenerator

from cohorts.errors import InvalidScenarioError
from cohorts.generators.latent import BinaryLatent, PatientDraw, SurvivalLatent
from cohorts.generators.survival import WeibullInverseCumhaz
from cohorts.generators.survival_flexible import PiecewiseInverseCumhaz
from trials.design import Arm, Dropout, Effect, Endpoint, TrialDesign
from trials.effects import per_patient_parameter
from trials.scenario import parse_scenario_text, scenario_to_toml
from trials.simulate import simulate_trials

SD = 4.0  # width of every Monte Carlo band, in standard deviations


def design(analysis, effect=None, **ep):
    return TrialDesign((Arm("control"), Arm("treated", 1.0, effect)), Endpoint(analysis, **ep), Dropout(0.0))


def both(g, d, n, r, seed):
    """The trials under ``d`` and under ``d.null()`` from the same seed: each patient's two counterfactuals."""
    return (simulate_trials(g, d, n, r, rng=np.random.default_rng(seed)),
            simulate_trials(g, d.null(), n, r, rng=np.random.default_rng(seed)))


class Recording:
    """Wraps a generator and keeps the baseline it drew (to know who is in a subgroup)."""

    def __init__(self, g):
        self.g, self.schema_, self.baseline = g, g.schema_, None

    def draw(self, n, *, rng):
        d = self.g.draw(n, rng=rng)
        self.baseline = d.baseline
        return d


def km(time, event, at):
    """Kaplan-Meier survival at times ``at`` (product limit over the distinct event times)."""
    order = np.argsort(time)
    t, e = time[order], event[order]
    uniq, first = np.unique(t, return_index=True)
    deaths = np.add.reduceat(e.astype(float), first)
    at_risk = len(t) - first
    s = np.cumprod(1 - deaths / at_risk)
    idx = np.searchsorted(uniq, at, side="right") - 1
    return np.where(idx >= 0, s[np.maximum(idx, 0)], 1.0)


# ------------------------------------------------------------------ piecewise hazard ratio, exact
RATE, HR, DELAY, UNTIL = 0.1, 0.5, 3.0, 8.0


@pytest.mark.parametrize("effect,expected", [
    (Effect("hazard_ratio", HR, delay=DELAY), lambda t0: np.where(t0 < DELAY, t0, DELAY + (t0 - DELAY) / HR)),
    (Effect("hazard_ratio", HR, until=UNTIL), lambda t0: np.where(t0 < HR * UNTIL, t0 / HR, UNTIL + t0 - HR * UNTIL)),
    (Effect("hazard_ratio", HR, delay=DELAY, until=UNTIL),
     lambda t0: np.where(t0 < DELAY, t0, np.where(t0 < DELAY + HR * (UNTIL - DELAY), DELAY + (t0 - DELAY) / HR,
                                                  UNTIL + t0 - DELAY - HR * (UNTIL - DELAY)))),
])
def test_piecewise_hazard_ratio_event_times_are_exact(effect, expected):
    # exponential H0(t) = rate t, so H1(T1) = H0(T0) has the closed forms above; follow-up long enough that
    # nobody is censored. KnownGenerator gives no H0, so this also checks its numerical inversion.
    g = KnownGenerator("tte", rate=RATE, unit="months")
    eff, null = both(g, design("logrank", effect, followup=1e9), 200, 5, seed=11)
    assert eff.event.all() and null.event.all()
    np.testing.assert_array_equal(eff.treated, null.treated)
    t0, t1, tr = null.time, eff.time, eff.treated
    np.testing.assert_array_equal(t1[~tr], t0[~tr])                 # controls untouched, bit for bit
    np.testing.assert_allclose(t1[tr], expected(t0[tr]), rtol=1e-12)
    if effect.delay is not None:                                     # an event before the delay: same time
        early = tr & (t0 < DELAY)
        assert early.sum() > 50
        np.testing.assert_array_equal(t1[early], t0[early])


@pytest.mark.parametrize("effect,survival", [
    (Effect("hazard_ratio", HR, delay=DELAY),
     lambda t: np.exp(-RATE * np.where(t <= DELAY, t, DELAY + HR * (t - DELAY)))),
    (Effect("hazard_ratio", HR, until=UNTIL),
     lambda t: np.exp(-RATE * np.where(t <= UNTIL, HR * t, HR * UNTIL + (t - UNTIL)))),
])
def test_piecewise_hazard_ratio_km_matches_the_exponential_closed_form(effect, survival):
    g = KnownGenerator("tte", rate=RATE, unit="months")
    b = simulate_trials(g, design("logrank", effect, followup=20.0), 2000, 10, rng=np.random.default_rng(12))
    at = np.array([1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 16.0])
    for mask, s_true in ((b.treated, survival(at)), (~b.treated, np.exp(-RATE * at))):
        n = mask.sum()
        s_km = km(b.time[mask], b.event[mask], at)
        # censoring only at 20 > every t: KM is the binomial fraction surviving; band SD sqrt(S (1 - S) / n)
        assert np.all(np.abs(s_km - s_true) < SD * np.sqrt(s_true * (1 - s_true) / n)), (s_km, s_true)


@pytest.mark.parametrize("inverse,cumhaz", [
    (WeibullInverseCumhaz(scale=10.0, shape=1.7), lambda t: (np.asarray(t) / 10.0) ** 1.7),
    (PiecewiseInverseCumhaz([2.0, 5.0], [0.05, 0.2, 0.1]),
     lambda t: np.interp(t, [0.0, 2.0, 5.0, 1e6], [0.0, 0.1, 0.7, 0.7 + 0.1 * (1e6 - 5.0)])),
])
def test_event_time_piecewise_solves_the_cumulative_hazard(inverse, cumhaz):
    rng = np.random.default_rng(13)
    n = 3000
    E, lp = rng.exponential(size=n), rng.normal(0, 0.5, n)
    given = SurvivalLatent(E, lp, inverse, "months", cumhaz)
    inverted = SurvivalLatent(E, lp, inverse, "months")              # H0 by numerical inversion
    breaks = (1.5, 4.0, 9.0)
    lhr = np.log(rng.uniform(0.3, 2.0, (n, 4)))                     # per patient and piece
    t = given.event_time_piecewise(breaks, lhr)
    np.testing.assert_allclose(inverted.event_time_piecewise(breaks, lhr), t, rtol=1e-12)
    # exp(lp) H1(T) = E with H1(t) = sum_j HR_j [H0(min(t, b_{j+1})) - H0(b_j)] over the pieces started by t
    b = np.r_[0.0, breaks, np.inf]
    h1 = sum(np.exp(lhr[:, j]) * np.clip(cumhaz(np.minimum(t, b[j + 1])) - cumhaz(b[j]), 0, None)
             for j in range(4))
    np.testing.assert_allclose(np.exp(lp) * h1, E, rtol=1e-9)
    # one hazard ratio on every piece is proportional hazards; all zeros is the control time, bit for bit
    np.testing.assert_allclose(given.event_time_piecewise(breaks, np.full(4, np.log(0.7))),
                               given.event_time(np.log(0.7)), rtol=1e-12)
    np.testing.assert_array_equal(given.event_time_piecewise(breaks, np.zeros(4)), given.event_time())
    np.testing.assert_allclose(given.baseline_cumhaz(breaks), inverted.baseline_cumhaz(breaks), rtol=1e-14)


def test_delayed_effect_with_a_fitted_generator_keeps_early_events():
    # the built-in va-lung cohort's default generator (Weibull or piecewise-exponential PH baseline, no H0 given):
    # each treated patient's time is the control time before the delay and, after it, solves the piecewise equation
    from cohorts.builtin import load_builtin
    from cohorts.generators import REGISTRY
    c = load_builtin("va-lung")
    g = REGISTRY["default"]().fit(c.data, c.schema, rng=np.random.default_rng(14))
    d = design("logrank", Effect("hazard_ratio", 0.5, delay=60.0), followup=1e9)
    eff, null = both(g, d, 200, 5, seed=15)
    tr, t0, t1 = eff.treated, null.time, eff.time
    np.testing.assert_array_equal(t1[~tr | (t0 < 60.0)], t0[~tr | (t0 < 60.0)])
    late = tr & (t0 >= 60.0)
    assert late.sum() > 100 and np.all(t1[late] > t0[late])     # HR 0.5 after the delay: later events


# ------------------------------------------------------------------ responder fraction
def test_responder_share_and_mean_slope_difference():
    f, r = 0.4, 0.5
    eff = Effect("slope_reduction", r, responder_fraction=f)
    # no noise, one slope: a treated patient's 6-month change is -6 (non-responder) or -6 (1 - r) (responder)
    g = KnownGenerator("longitudinal", slope_sd=0.0, sigma=0.0)
    b = simulate_trials(g, design("slope", eff, visits_months=(0, 6)), 500, 10, rng=np.random.default_rng(21))
    change = b.y[..., 1] - b.y[..., 0]
    np.testing.assert_allclose(change[~b.treated], -6.0)
    responder = np.isclose(change[b.treated], -6.0 * (1 - r))
    assert np.all(responder | np.isclose(change[b.treated], -6.0))
    n = b.treated.sum()
    assert abs(responder.mean() - f) < SD * np.sqrt(f * (1 - f) / n)
    # with slope spread and noise: mean slope difference (treated - control) = f * r * |mean slope| = f * r
    g = KnownGenerator("longitudinal", slope_sd=0.5, sigma=1.0)
    b = simulate_trials(g, design("slope", eff, visits_months=(0, 6)), 1000, 10, rng=np.random.default_rng(22))
    slope = (b.y[..., 1] - b.y[..., 0]) / 6.0
    st, sc = slope[b.treated], slope[~b.treated]
    se = np.sqrt(st.var(ddof=1) / st.size + sc.var(ddof=1) / sc.size)
    assert abs((st.mean() - sc.mean()) - f * r) < SD * se


@pytest.mark.parametrize("kind,effect,check", [
    ("continuous", Effect("mean_difference", 2.0, responder_fraction=0.3),
     lambda y1, y0: np.isclose(y1 - y0, 2.0)),
    ("tte", Effect("hazard_ratio", 0.5, responder_fraction=0.3), lambda t1, t0: np.isclose(t1, t0 / 0.5)),
    ("binary", Effect("risk_difference", -0.2, responder_fraction=0.3), None),
])
def test_responder_fraction_applies_to_every_kind(kind, effect, check):
    g = KnownGenerator(kind, sd=1.0, p=0.5, rate=0.1)
    ep = {"continuous": dict(analysis="ttest"), "tte": dict(analysis="logrank", followup=1e9),
          "binary": dict(analysis="proportions")}[kind]
    eff, null = both(g, design(effect=effect, **ep), 1000, 10, seed=23)
    a1 = eff.time if kind == "tte" else eff.y
    a0 = null.time if kind == "tte" else null.y
    np.testing.assert_array_equal(a1[~eff.treated], a0[~eff.treated])    # controls untouched
    if check is None:  # binary: responders are hidden by the uniform draw; the realized rate is 0.5 - 0.3 * 0.2
        p, n = 0.5 - 0.3 * 0.2, eff.treated.sum()
        assert abs(a1[eff.treated].mean() - p) < SD * np.sqrt(p * (1 - p) / n)
        assert np.all(a1[eff.treated] <= a0[eff.treated])               # rd < 0 only removes responses
        return
    changed = check(a1[eff.treated], a0[eff.treated])
    assert np.all(changed | (a1[eff.treated] == a0[eff.treated]))
    n = eff.treated.sum()
    assert abs(changed.mean() - 0.3) < SD * np.sqrt(0.3 * 0.7 / n)


def test_responders_need_an_rng_and_designs_without_them_draw_nothing():
    with pytest.raises(TypeError, match="rng"):
        per_patient_parameter(Effect("mean_difference", 1.0, responder_fraction=0.5), [True, False])
    p = per_patient_parameter(Effect("mean_difference", 1.0, responder_fraction=1.0), [True, False])
    assert list(p) == [1.0, 0.0]


# ------------------------------------------------------------------ subgroup
@pytest.mark.parametrize("outside", [None, 0.1])
def test_subgroup_effect_leaves_the_rest_as_their_control_counterfactual(outside):
    r = 0.4
    g = Recording(KnownGenerator("longitudinal", slope_sd=0.0, sigma=0.0))
    d = design("slope", Effect("slope_reduction", r, subgroup="x < 0", outside_value=outside), visits_months=(0, 6))
    eff = simulate_trials(g, d, 400, 5, rng=np.random.default_rng(31))
    inside = np.asarray(g.baseline["x"] < 0).reshape(eff.treated.shape)
    null = simulate_trials(g, d.null(), 400, 5, rng=np.random.default_rng(31))
    tr = eff.treated
    np.testing.assert_array_equal(eff.y[~tr], null.y[~tr])
    change = eff.y[..., 1] - eff.y[..., 0]
    np.testing.assert_allclose(change[tr & inside], -6.0 * (1 - r))
    if outside is None:
        np.testing.assert_array_equal(eff.y[tr & ~inside], null.y[tr & ~inside])
    else:
        np.testing.assert_allclose(change[tr & ~inside], -6.0 * (1 - outside))
    assert (tr & inside).sum() > 100 and (tr & ~inside).sum() > 100


def test_subgroup_hazard_ratio_outside_is_the_control_time():
    g = Recording(KnownGenerator("tte", rate=0.1, unit="months"))
    d = design("logrank", Effect("hazard_ratio", 0.5, subgroup="x >= 0.5"), followup=1e9)
    eff = simulate_trials(g, d, 300, 4, rng=np.random.default_rng(32))
    inside = np.asarray(g.baseline["x"] >= 0.5).reshape(eff.treated.shape)
    null = simulate_trials(g, d.null(), 300, 4, rng=np.random.default_rng(32))
    tr = eff.treated
    np.testing.assert_array_equal(eff.time[~(tr & inside)], null.time[~(tr & inside)])
    np.testing.assert_allclose(eff.time[tr & inside], null.time[tr & inside] / 0.5, rtol=1e-12)


def test_subgroup_on_a_column_the_cohort_lacks_names_the_key():
    g = KnownGenerator("continuous")
    d = design("ttest", Effect("mean_difference", 1.0, subgroup="age < 60"))
    with pytest.raises(InvalidScenarioError) as info:
        simulate_trials(g, d, 20, 2, rng=np.random.default_rng(0))
    assert info.value.problems[0].startswith("arms[treated].effect.subgroup: unknown column `age`")


# ------------------------------------------------------------------ risk difference
def test_risk_difference_without_clipping():
    g = KnownGenerator("binary", p=0.3)
    eff, null = both(g, design("proportions", Effect("risk_difference", -0.1)), 2000, 10, seed=41)
    tr = eff.treated
    np.testing.assert_array_equal(eff.y[~tr], null.y[~tr])
    assert np.all(eff.y[tr] <= null.y[tr])                        # same uniform: -0.1 only removes responses
    p1, p0 = eff.y[tr].mean(), eff.y[~tr].mean()
    n1, n0 = tr.sum(), (~tr).sum()
    se = np.sqrt(0.2 * 0.8 / n1 + 0.3 * 0.7 / n0)
    assert abs((p1 - p0) - (-0.1)) < SD * se


class TwoRiskGenerator(KnownGenerator):
    """Binary outcome with P(y = 1) = 0.05 for even and 0.5 for odd patients: a risk difference of -0.1 clips."""

    def __init__(self):
        super().__init__("binary")

    def draw(self, n, *, rng):
        d = super().draw(n, rng=rng)
        p = np.where(np.arange(n) % 2 == 0, 0.05, 0.5)
        return PatientDraw(d.baseline, BinaryLatent(np.log(p / (1 - p)), d.outcome.uniform))


def test_risk_difference_clipping_shrinks_the_realized_difference():
    lat = BinaryLatent(np.log(np.array([0.05, 0.5]) / np.array([0.95, 0.5])), np.zeros(2))
    p0, p1 = lat.probability(), lat.probability(risk_difference=-0.1)
    np.testing.assert_allclose(p1, [0.0, 0.4], atol=1e-15)
    assert p1.mean() - p0.mean() == pytest.approx(-0.075, abs=1e-15)   # not -0.1: 0.05 - 0.1 is clipped to 0
    b = simulate_trials(TwoRiskGenerator(), design("proportions", Effect("risk_difference", -0.1)), 4000, 10,
                        rng=np.random.default_rng(42))
    n1 = b.treated.sum()
    # treated rate 0.2 (without clipping it would be 0.175: 12 SD away at this n)
    assert abs(b.y[b.treated].mean() - 0.2) < SD * np.sqrt(0.2 * 0.8 / n1)


def test_risk_difference_values_are_checked():
    with pytest.raises(InvalidScenarioError, match="effect.risk_difference: is a difference of probabilities"):
        Effect("risk_difference", 1.5)
    assert Effect("risk_difference", 0.0).is_null and not Effect("risk_difference", -0.1).is_null


# ------------------------------------------------------------------ design objects
def test_describe_null_and_modifiers():
    e = Effect("hazard_ratio", 0.7, delay=3, time_unit="months")
    assert e.describe() == "hazard ratio 0.7 after a delay of 3 months (1 before)"
    waning = Effect("hazard_ratio", 0.6, until=12).describe("months")
    assert waning == "hazard ratio 0.6 until 12 months, then 1 (waning)"
    s = Effect("slope_reduction", 0.4, subgroup="age < 60", responder_fraction=0.5).describe()
    assert s == ("40% slowing of each patient's decline in patients with age < 60 (no effect otherwise), in a "
                 "random 50% of treated patients (responders; the others as controls)")
    assert "risk difference -0.1" in Effect("risk_difference", -0.1).describe()
    d = design("logrank", Effect("hazard_ratio", 0.7, delay=3, until=9, responder_fraction=0.5, subgroup="x > 0",
                                 outside_value=0.9), followup=12.0)
    assert d.null().effect == Effect("hazard_ratio", 1.0) and d.null().effect.modifiers == {}
    assert Effect("hazard_ratio", 1.0, subgroup="x > 0", outside_value=0.8).is_null is False
    assert Effect("hazard_ratio", 0.7, delay=3) == Effect("hazard_ratio", 0.7, delay=3.0, time_unit="days")


# ------------------------------------------------------------------ scenario keys
SLOPE = """
title = "t"
seed = 1
[cohort]
builtin = "als-natural-history"
[endpoint]
analysis = "slope"
visits_months = [0, 3, 6]
[[arms]]
name = "placebo"
[[arms]]
name = "drug"
effect = EFFECT
[power]
n_total = [60]
"""
TTE = SLOPE.replace('"als-natural-history"', '"als-natural-history-survival"').replace(
    'analysis = "slope"\nvisits_months = [0, 3, 6]', 'analysis = "logrank"\nfollowup = 24')


def problems_of(text):
    with pytest.raises(InvalidScenarioError) as info:
        parse_scenario_text(text)
    return info.value.problems


@pytest.mark.parametrize("base,effect,start", [
    (SLOPE, "{ slope_reduction = 0.3, dealy = 3 }", "arms[1].effect.dealy: unknown key (did you mean 'delay'?)"),
    (SLOPE, "{ slope_reduction = 0.3, delay = 3 }", "arms[1].effect.delay: applies only to hazard_ratio"),
    (SLOPE, "{ slope_reduction = 0.3, responder_fraction = 0 }", "arms[1].effect.responder_fraction: is the share"),
    (SLOPE, "{ slope_reduction = 0.3, responder_fraction = 1.5 }", "arms[1].effect.responder_fraction: is the "
                                                                    "share of treated patients who respond, in (0, 1]"),
    (SLOPE, '{ slope_reduction = 0.3, subgroup = "agee < 60" }',
     "arms[1].effect.subgroup: unknown column `agee`; did you mean `age`? (at column 1)"),
    (SLOPE, """{ slope_reduction = 0.3, subgroup = "age < 60 and __import__('os')" }""",
     "arms[1].effect.subgroup: dunder names like `__import__` are not allowed (at column 14)"),
    (SLOPE, """{ slope_reduction = 0.3, subgroup = "site_of_onset == 'bulbar'" }""",
     "arms[1].effect.subgroup: 'bulbar' never occurs in `site_of_onset`; did you mean `Bulbar`?"),
    (SLOPE, '{ slope_reduction = 0.3, subgroup = "site_of_onset < 3" }',
     "arms[1].effect.subgroup: cannot compare `site_of_onset` (text) with `3`"),
    (SLOPE, "{ slope_reduction = 0.3, outside_value = 0.1 }", "arms[1].effect.outside_value: applies only with a "
                                                              "subgroup"),
    (SLOPE, '{ slope_reduction = 0.3, subgroup = "age < 60", outside_value = 2 }',
     "arms[1].effect.outside_value: is a fraction of the decline removed"),
    (SLOPE, "{ slope_reduction = 0.3, odds_ratio = 2 }", "arms[1].effect: give one effect kind, got slope_reduction "
                                                         "and odds_ratio"),
    (SLOPE, "{ responder_fraction = 0.5 }", "arms[1].effect: needs an effect kind"),
    (SLOPE, "{ risk_difference = -0.1 }", "arms[drug].effect: 'risk_difference' applies to binary outcomes"),
    (TTE, "{ hazard_ratio = 0.7, delay = -1 }", "arms[1].effect.delay: must be a positive time"),
    (TTE, "{ hazard_ratio = 0.7, delay = 6, until = 6 }", "arms[1].effect.until: must be after the delay (6)"),
    (TTE, '{ hazard_ratio = 0.7, until = "x" }', "arms[1].effect.until: must be a positive time"),
])
def test_effect_key_problems_message_by_message(base, effect, start):
    probs = problems_of(base.replace("EFFECT", effect))
    assert any(p.startswith(start) for p in probs), probs


def test_subgroup_is_checked_against_a_data_cohorts_schema(tmp_path):
    (tmp_path / "d.csv").write_text("id,age,y\n1,50,1.0\n")
    (tmp_path / "s.toml").write_text('id = "id"\n[outcome]\ntype = "continuous"\nvalue = "y"\n'
                                     '[baseline]\nnumeric = ["age"]\n')
    text = (SLOPE.replace('builtin = "als-natural-history"', f'data = "{tmp_path / "d.csv"}"\n'
                          f'schema = "{tmp_path / "s.toml"}"')
            .replace('analysis = "slope"\nvisits_months = [0, 3, 6]', 'analysis = "ttest"'))
    ok = parse_scenario_text(text.replace("EFFECT", '{ mean_difference = 1, subgroup = "age < 60" }'))
    assert ok.design.effect.subgroup == "age < 60"
    probs = problems_of(text.replace("EFFECT", '{ mean_difference = 1, subgroup = "sex == \'F\'" }'))
    assert any(p.startswith("arms[1].effect.subgroup: unknown column `sex`") for p in probs), probs


@pytest.mark.parametrize("base,effect", [
    (TTE, "{ hazard_ratio = 0.7, delay = 3 }"),
    (TTE, "{ hazard_ratio = 0.6, until = 12 }"),
    (TTE, """{ hazard_ratio = 0.6, delay = 2, until = 12.5, responder_fraction = 0.75, """
          """subgroup = "site_of_onset == 'Bulbar' and age < 60", outside_value = 0.9 }"""),
    (SLOPE, "{ slope_reduction = 0.3, responder_fraction = 0.5 }"),
    (SLOPE, '{ slope_reduction = 0.4, subgroup = "age < 60" }'),
    (SLOPE.replace('analysis = "slope"\nvisits_months = [0, 3, 6]', 'analysis = "proportions"').replace(
        '"als-natural-history"', '"va-lung"'), "{ risk_difference = -0.1 }"),  # the parser checks design only
])
def test_effect_keys_round_trip(base, effect):
    s = parse_scenario_text(base.replace("EFFECT", effect))
    t = parse_scenario_text(scenario_to_toml(s))
    assert t.design == s.design and t.design.effect.modifiers == s.design.effect.modifiers
    assert t.design.effect.describe() == s.design.effect.describe()


def test_scenario_effect_is_described_in_the_cohorts_time_unit():
    s = parse_scenario_text(TTE.replace("EFFECT", "{ hazard_ratio = 0.7, delay = 3 }"))
    assert s.design.effect.describe() == "hazard ratio 0.7 after a delay of 3 months (1 before)"
