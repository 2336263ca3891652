"""Operating characteristics of the power simulation with trial conduct (analysis.power, analysis.estimand,
analysis.power_summary, analysis.power_result).

References: the closed forms of statsmodels ``TTestIndPower`` (true mean difference and SD of a known generator)
and Schoenfeld's events formula, each with the reference trial's own Monte Carlo error propagated; binomial bounds
of 4 SD for simulated power, type I error and coverage (95 %); ``4 * bias_se`` for bias; events, patients and
months recounted by hand from the very batches the simulation drew (same random streams); ``json.dumps`` with
``allow_nan=False`` for the JSON output.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import nct, norm
from scipy.stats import t as t_dist
from statsmodels.stats.power import TTestIndPower
from support import KnownGenerator

from analysis import analytic_power as ap
from analysis.estimand import REFERENCE_PATIENTS, analytic_power_column, reference_trial
from analysis.power import power_curve, simulate_design
from analysis.power_summary import look_table, operating_row
from analysis.workflow import fit_generator
from cohorts.builtin import load_builtin
from trials.conduct import Accrual, HybridControl, Looks, Randomization
from trials.design import Arm, Dropout, Effect, Endpoint, PowerSettings, TrialDesign
from trials.simulate import simulate_trials

SD = 4.0                        # Monte Carlo bands: 4 standard deviations
ALPHA = 0.05
SKELETON = {"analysis", "n_total", "power", "power_ci_low", "power_ci_high", "type1_error", "type1_error_ci_low",
            "type1_error_ci_high", "type1_error_by_n", "alpha", "replicates", "seed", "effect", "elapsed_s"}


def binom_var(p, n):
    p = np.asarray(p, dtype=float)
    return p * (1 - p) / n


def two_arm(analysis, effect, dropout=0.0, **kw):
    ep = {k: kw.pop(k) for k in ("followup", "events", "visits_months", "assessment_months") if k in kw}
    return TrialDesign((Arm("control"), Arm("treated", 1.0, effect)), Endpoint(analysis, **ep), Dropout(dropout),
                       **kw)


@pytest.fixture(scope="module")
def va():
    return fit_generator(load_builtin("va-lung"), seed=1)


@pytest.fixture(scope="module")
def ttest_curve():
    d = two_arm("ttest", Effect("mean_difference", 0.5))
    return power_curve(KnownGenerator("continuous", sd=1.0), d, PowerSettings((40, 80, 128), 800, ALPHA),
                       rng=np.random.default_rng(60))


@pytest.fixture(scope="module")
def logrank_curve(va):
    d = two_arm("logrank", Effect("hazard_ratio", 0.6), followup=200.0)
    return power_curve(va, d, PowerSettings((120, 240), 600, ALPHA), rng=np.random.default_rng(61))


# ---------------------------------------------------------------- analytic cross-check

def test_ttest_analytic_column_against_simulation_and_the_true_closed_form(ttest_curve):
    res, R = ttest_curve, 800
    op = res.operating
    ns = np.array(res.n_total, dtype=float)
    # the estimand's MC error moves the effect size delta / sd: its SE from the reference trial's mean
    # difference (estimand_se) and its pooled SD (relative SE 1 / sqrt(2 n_ref))
    se_es = np.hypot(op["estimand_se"].to_numpy(), 0.5 / math.sqrt(2 * REFERENCE_PATIENTS))
    h = 1e-4
    slope = np.array([(ap.ttest_power(n, mean_difference=0.5 + h, sd=1) - ap.ttest_power(n, mean_difference=0.5 - h,
                                                                                        sd=1)) / (2 * h) for n in ns])
    ref_sd = np.abs(slope) * se_es
    exact = np.array([TTestIndPower().power(effect_size=0.5, nobs1=n / 2, alpha=ALPHA) for n in ns])
    assert np.all(np.abs(res.analytic_power - exact) <= SD * ref_sd), (res.analytic_power, exact, ref_sd)
    band = SD * np.sqrt(binom_var(res.analytic_power, R) + ref_sd ** 2)
    assert np.all(np.abs(res.power - res.analytic_power) <= band), (res.power, res.analytic_power, band)
    assert np.all(np.diff(res.analytic_power) > 0)


def test_logrank_analytic_column_is_schoenfeld_at_the_simulated_events(logrank_curve):
    res, R = logrank_curve, 600
    op = res.operating
    hr = op["estimand"].to_numpy()
    events = op["expected_events"].to_numpy()
    want = [ap.tte_power_from_events(d, hazard_ratio=float(x), alpha=ALPHA) for d, x in zip(events, hr)]
    np.testing.assert_allclose(res.analytic_power, want, rtol=1e-12)
    # Schoenfeld: power = Phi(sqrt(d / 4) |log HR| - z) + Phi(-sqrt(d / 4) |log HR| - z); its derivative in log HR
    # carries the estimand's MC error (estimand_se is on the log scale for ratios)
    z = norm.isf(ALPHA / 2)
    ncp = np.sqrt(events / 4) * np.abs(np.log(hr))
    ref_sd = np.sqrt(events / 4) * norm.pdf(ncp - z) * op["estimand_se"].to_numpy()
    band = SD * np.sqrt(binom_var(res.analytic_power, R) + ref_sd ** 2)
    assert np.all(np.abs(res.power - res.analytic_power) <= band), (res.power, res.analytic_power, band)


def test_no_closed_form_gives_nan(va):
    als = fit_generator(load_builtin("als-natural-history"), seed=1)
    d = two_arm("mmrm", Effect("slope_reduction", 0.3), visits_months=(0, 3, 6))
    ref = reference_trial(als, d, 40, ALPHA, rng=np.random.default_rng(62), patients=400)
    assert np.isnan(analytic_power_column(d, ref, [40, 80], ALPHA)).all()
    tte = two_arm("logrank", Effect("hazard_ratio", 0.7), followup=200.0)
    ref = reference_trial(va, tte, 40, ALPHA, rng=np.random.default_rng(63), patients=400)
    assert analytic_power_column(tte, ref, [40], ALPHA, [30.0])[0] == pytest.approx(
        ap.tte_power_from_events(30.0, hazard_ratio=ref.estimate, alpha=ALPHA), rel=1e-12)
    others = [TrialDesign((Arm("control"), Arm("a", 1.0, Effect("hazard_ratio", 0.7)), Arm("b", 1.0)),
                          tte.endpoint),
              two_arm("logrank", Effect("hazard_ratio", 0.7), followup=200.0, looks=Looks((0.5, 1.0))),
              two_arm("logrank", Effect("hazard_ratio", 0.7), followup=200.0, hybrid=HybridControl(20))]
    for other in others:
        assert np.isnan(analytic_power_column(other, ref, [40, 80], ALPHA, [30.0, 60.0])).all()


# ---------------------------------------------------------------- bias, coverage, expected values

def test_coverage_under_the_null_is_95_percent(ttest_curve, logrank_curve):
    for res in (ttest_curve, logrank_curve):
        R = res.settings.replicates
        cov0 = res.operating["coverage_null"].to_numpy()
        assert np.all(np.abs(cov0 - 0.95) <= SD * np.sqrt(binom_var(0.95, R))), (res.analysis, cov0)
    # the log-rank (Peto) log hazard ratio is centred on 0 under the null (the hazard ratio itself is not: Jensen)
    log_hr0 = np.log(logrank_curve.estimates_null)
    assert np.all(np.abs(log_hr0.mean(axis=1)) <= SD * log_hr0.std(axis=1, ddof=1) / math.sqrt(600))
    # the effect scenario's intervals cover the estimand (the t interval is exact for normal data)
    cov = ttest_curve.operating["coverage"].to_numpy()
    assert np.all(np.abs(cov - 0.95) <= SD * np.sqrt(binom_var(0.95, 800))), cov


def test_bias_of_the_mean_difference_under_the_null_and_the_effect(ttest_curve):
    g = KnownGenerator("continuous", sd=1.0)
    null = two_arm("ttest", Effect("mean_difference", 0.5)).null()
    sim0 = simulate_design(g, null, 60, 1000, ALPHA, rng=np.random.default_rng(64))
    row = operating_row(sim0, sim0, 0.0, "ttest")
    assert row["bias"] == pytest.approx(sim0.estimate.mean(), rel=1e-13, abs=1e-15)
    assert row["bias_se"] == pytest.approx(sim0.estimate.std(ddof=1) / math.sqrt(1000), rel=1e-13)
    assert abs(row["bias"]) <= SD * row["bias_se"], row
    op = ttest_curve.operating
    # vs the estimand, whose own MC error (estimand_se) adds to the replicates' (bias_se)
    assert np.all(np.abs(op["bias"]) <= SD * np.hypot(op["bias_se"], op["estimand_se"])), op[["bias", "bias_se"]]


def test_expected_events_patients_and_months_are_the_means_of_the_simulated_trials(va):
    R, N, seed = 300, 80, 65
    d = two_arm("logrank", Effect("hazard_ratio", 0.7), dropout=0.02, followup=300.0, events=45,
                accrual=Accrual(rates=(3.0, 9.0), starts=(0.0, 4.0)))
    sim = simulate_design(va, d, N, R, ALPHA, rng=np.random.default_rng(seed))
    sim0 = simulate_design(va, d.null(), N, R, ALPHA, rng=np.random.default_rng(seed + 1))
    row = operating_row(sim, sim0, 0.7, "logrank")
    # the same stream layout as simulate_design: one chunk, the first child of the seed
    b = simulate_trials(va, d, N, R, rng=np.random.default_rng(seed).spawn(1)[0])
    events = b.event.sum(axis=1)
    assert (events <= 45).all() and (events == 45).mean() > 0.5
    np.testing.assert_array_equal(sim.events, events)
    assert row["expected_events"] == events.mean()
    enrolled = (b.entry <= b.analysis_time[:, None]).sum(axis=1)
    assert (enrolled < N).any()                                   # the cut comes before the last patient enters
    np.testing.assert_array_equal(sim.n_enrolled, enrolled)
    assert row["expected_n"] == pytest.approx(enrolled.mean(), rel=1e-15)
    assert row["expected_months"] == pytest.approx(b.analysis_time.mean(), rel=1e-15)
    assert row["expected_events_null"] == pytest.approx(sim0.events.mean(), rel=1e-15)


def test_expected_values_with_looks_are_taken_at_the_stopping_look(va):
    R, N = 300, 100
    d = two_arm("logrank", Effect("hazard_ratio", 0.5), followup=200.0, events=60, accrual=Accrual(duration=10.0),
                looks=Looks((0.5, 1.0), spending="pocock"))
    sim = simulate_design(va, d, N, R, ALPHA, rng=np.random.default_rng(66))
    sim0 = simulate_design(va, d.null(), N, R, ALPHA, rng=np.random.default_rng(67))
    stop = sim.extras["stop_look"] - 1
    assert 0.1 < (stop == 0).mean() < 0.9                         # both looks are used
    rows = np.arange(R)
    np.testing.assert_array_equal(sim.events, sim.extras["events_by_look"][rows, stop])
    row = operating_row(sim, sim0, 0.5, "logrank")
    assert row["expected_events"] == pytest.approx(sim.extras["events_by_look"][rows, stop].mean(), rel=1e-15)
    assert row["expected_n"] == pytest.approx(sim.extras["enrolled_by_look"][rows, stop].mean(), rel=1e-15)
    assert row["expected_events"] < 60
    looks = look_table(sim, sim0)
    for tag, s in (("", sim), ("_null", sim0)):
        eff = [((s.extras["stop_look"] == k) & s.rejected).mean() for k in (1, 2)]
        np.testing.assert_allclose(looks[f"p_efficacy{tag}"], eff, rtol=0, atol=1e-15)
        np.testing.assert_allclose(looks[f"cumulative_efficacy{tag}"].iloc[-1], s.rejected.mean(), atol=1e-15)
    np.testing.assert_allclose(looks["events"], sim.extras["events_by_look"].mean(axis=0), rtol=1e-15)


# ---------------------------------------------------------------- hybrid controls

def welch_power(delta: float, n0: int, n1: int) -> float:
    """Power of Welch's test at unit SD: noncentral t with the Welch-Satterthwaite df of the true variances (the
    Student closed form with 150 vs 30 patients has 178 df instead of 41 and is 0.013 higher)."""
    v0, v1 = 1 / n0, 1 / n1
    df = (v0 + v1) ** 2 / (v0 ** 2 / (n0 - 1) + v1 ** 2 / (n1 - 1))
    c, ncp = t_dist.isf(ALPHA / 2, df), delta / math.sqrt(v0 + v1)
    return float(nct.sf(c, df, ncp) + nct.cdf(-c, df, ncp))


def test_hybrid_without_drift_keeps_alpha_and_gains_power():
    R = 600
    d = two_arm("ttest", Effect("mean_difference", 0.6), hybrid=HybridControl(120))
    res = power_curve(KnownGenerator("continuous", sd=1.0), d, PowerSettings((60,), R, ALPHA),
                      rng=np.random.default_rng(68))
    op = res.operating.iloc[0]
    assert abs(res.type1_error - ALPHA) <= SD * math.sqrt(binom_var(ALPHA, R))
    assert abs(op["type1_randomized_only"] - ALPHA) <= SD * math.sqrt(binom_var(ALPHA, R))
    # 30 treated vs 30 + 120 controls against 30 vs 30 (a conservative unpaired band: the two share replicates)
    p1, p0 = res.power[0], op["power_randomized_only"]
    assert p1 - p0 > SD * math.sqrt(binom_var(p1, R) + binom_var(p0, R)), (p1, p0)
    for sim_p, ref in zip((p1, p0), (welch_power(0.6, 150, 30), welch_power(0.6, 30, 30))):
        assert abs(sim_p - ref) <= SD * math.sqrt(binom_var(ref, R)), (sim_p, ref)


def test_hybrid_with_drift_inflates_the_type1_error_of_the_hybrid_analysis_only(va):
    R = 500
    # today's patients die 1.5 times as fast as the historical ones the synthetic controls come from
    # (N = 200: at 40 per arm the log-rank test on this cohort rejects 5.5 % of null trials, 40,000 replicates)
    d = two_arm("logrank", Effect("hazard_ratio", 0.65), followup=365.0, hybrid=HybridControl(200, 1.5))
    res = power_curve(va, d, PowerSettings((200,), R, ALPHA), rng=np.random.default_rng(69))
    op = res.operating.iloc[0]
    band = SD * math.sqrt(binom_var(ALPHA, R))
    assert res.type1_error - ALPHA > band, res.type1_error
    assert abs(op["type1_randomized_only"] - ALPHA) <= band, op["type1_randomized_only"]
    # the hybrid's estimate under the null is biased away from 1 (towards harm: HR > 1)
    est0 = res.estimates_null[0]
    assert op["bias_null"] == pytest.approx(est0.mean() - 1.0, rel=1e-13)
    assert op["bias_null"] > SD * est0.std(ddof=1) / math.sqrt(R)


# ---------------------------------------------------------------- JSON

def json_designs():
    tte = Endpoint("logrank", followup=200.0)
    return {
        "fixed": TrialDesign((Arm("control"), Arm("treated", 1.0, Effect("hazard_ratio", 0.7, delay=20.0))), tte),
        "multi-arm": TrialDesign((Arm("control"), Arm("a", 1.0, Effect("hazard_ratio", 0.7)),
                                  Arm("b", 2.0, Effect("hazard_ratio", 0.5))), tte,
                                 randomization=Randomization("simple"), multiplicity="hochberg"),
        "hybrid": two_arm("logrank", Effect("hazard_ratio", 0.7), followup=200.0, hybrid=HybridControl(30, 1.2)),
        "looks": two_arm("logrank", Effect("hazard_ratio", 0.6), followup=200.0, events=30,
                         accrual=Accrual(duration=6.0),
                         looks=Looks((0.5, 1.0), futility="obf", beta=0.2, sided=1)),
    }


@pytest.mark.parametrize("kind", list(json_designs()))
def test_json_keeps_the_skeleton_and_has_no_nan(va, kind):
    d = json_designs()[kind]
    sizes = (8, 40) if kind == "multi-arm" else (40,)          # 8 patients in 3 arms: undefined comparisons
    res = power_curve(va, d, PowerSettings(sizes, 40, ALPHA), rng=np.random.default_rng(70), seed=70)
    j = res.to_json_dict()
    assert SKELETON <= set(j), SKELETON - set(j)
    text = json.dumps(j, allow_nan=False)                       # raises on NaN or infinity
    back = json.loads(text)
    assert back["n_total"] == list(sizes) and back["replicates"] == 40 and back["seed"] == 70
    assert back["power"] == [float(x) for x in res.power] and back["alpha"] == ALPHA
    assert back["type1_error_by_n"] == [float(x) for x in res.type1_by_n]
    assert back["effect"] == {d.effect.kind: d.effect.value, **d.effect.modifiers}
    assert len(back["arms"]) == len(d.arms)
    assert set(back["operating"]) == set(res.operating.columns)
    if kind != "fixed":
        assert back["analytic_power"] == [None] * len(sizes)     # NaN (no closed form) becomes null
    if kind == "multi-arm":
        assert back["multiplicity"] == "hochberg"
        assert np.isnan(res.estimates[0]).any()                  # undefined comparisons did occur
    if kind == "looks":
        assert len(back["looks"]) == 1 and back["looks"][0]["look"] == [1, 2]
