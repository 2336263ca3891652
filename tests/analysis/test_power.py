"""Simulated power against closed forms, within Monte Carlo (binomial) error."""

import numpy as np
import pytest
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_effectsize
from support import KnownGenerator

from analysis.power import power_curve
from trials.design import Arm, Dropout, Effect, Endpoint, PowerSettings, TrialDesign

Z = 4.0  # a 4-SD binomial band: a false alarm about once in 16,000 checks


def band(p, n):
    return Z * np.sqrt(p * (1 - p) / n)


def two_arm(analysis, effect, **ep):
    return TrialDesign((Arm("control"), Arm("treated", 1, effect)), Endpoint(analysis, **ep), Dropout(0.0))


def test_continuous_power_equals_ttest_power_within_binomial_error():
    R, sizes, delta = 2000, (40, 80, 128), 0.5
    res = power_curve(KnownGenerator("continuous", sd=1.0), two_arm("ttest", Effect("mean_difference", delta)),
                      PowerSettings(sizes, R, 0.05), rng=np.random.default_rng(11))
    analytic = np.array([TTestIndPower().power(effect_size=delta, nobs1=n / 2, alpha=0.05, ratio=1.0)
                         for n in sizes])
    # Welch's df differ from Student's by < 1 here: allow 0.005 beyond the binomial band
    assert np.all(np.abs(res.power - analytic) <= band(analytic, R) + 0.005), (res.power, analytic)
    assert np.all(res.power_ci_low <= res.power) and np.all(res.power <= res.power_ci_high)
    assert abs(res.type1_error - 0.05) <= band(0.05, 3 * R)


def test_binary_power_equals_normal_approximation_within_binomial_error():
    R, n, p0, odds_ratio = 2000, 400, 0.3, 2.0
    odds1 = odds_ratio * p0 / (1 - p0)
    p1 = odds1 / (1 + odds1)
    res = power_curve(KnownGenerator("binary", p=p0), two_arm("proportions", Effect("odds_ratio", odds_ratio)),
                      PowerSettings((n,), R, 0.05), rng=np.random.default_rng(12))
    analytic = NormalIndPower().power(effect_size=proportion_effectsize(p1, p0), nobs1=n / 2, alpha=0.05)
    assert abs(res.power[0] - analytic) <= band(analytic, R) + 0.01


@pytest.mark.parametrize("analysis,kind,effect,ep", [
    ("slope", "longitudinal", Effect("slope_reduction", 0.0), {"visits_months": (0, 2, 4, 6)}),
    ("ancova", "longitudinal", Effect("slope_reduction", 0.0), {"visits_months": (0, 2, 4, 6)}),
    ("logrank", "tte", Effect("hazard_ratio", 1.0), {"followup": 200.0}),
    ("cox", "tte", Effect("hazard_ratio", 1.0), {"followup": 200.0}),
    ("mmrm", "longitudinal", Effect("slope_reduction", 0.0), {"visits_months": (0, 2, 4, 6)}),
    ("random_slope", "longitudinal", Effect("slope_reduction", 0.0), {"visits_months": (0, 2, 4, 6)}),
    ("ttest", "continuous", Effect("mean_difference", 0.0), {}),
    ("proportions", "binary", Effect("odds_ratio", 1.0), {}),
    ("risk_difference", "binary", Effect("risk_difference", 0.0), {}),
    ("risk_ratio", "binary", Effect("odds_ratio", 1.0), {}),
    ("logistic", "binary", Effect("odds_ratio", 1.0), {}),
])
def test_type1_error_at_alpha_for_each_analysis(analysis, kind, effect, ep):
    R = 1500
    res = power_curve(KnownGenerator(kind), two_arm(analysis, effect, **ep), PowerSettings((100,), R, 0.05),
                      rng=np.random.default_rng(13))
    # both the "effect" (null here) and the null scenario estimate alpha
    assert abs(res.power[0] - 0.05) <= band(0.05, R)
    assert abs(res.type1_error - 0.05) <= band(0.05, R)


def test_same_seed_identical_results_and_progress_reaches_one():
    g = KnownGenerator("longitudinal")
    d = two_arm("slope", Effect("slope_reduction", 0.4), visits_months=(0, 3, 6))
    s = PowerSettings((30, 60), 120, 0.05)
    seen = []
    a = power_curve(g, d, s, rng=np.random.default_rng(5), progress=lambda f, m: seen.append(f))
    b = power_curve(g, d, s, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a.p_values, b.p_values)
    np.testing.assert_array_equal(a.p_values_null, b.p_values_null)
    assert seen[-1] == pytest.approx(1.0) and all(x <= y for x, y in zip(seen, seen[1:]))
    j = a.to_json_dict()
    assert set(j) >= {"n_total", "power", "power_ci_low", "power_ci_high", "type1_error", "replicates", "seed"}
    assert len(j["power"]) == 2


def test_json_records_the_effect_modifiers():
    effect = Effect("hazard_ratio", 0.7, delay=30.0, responder_fraction=0.8)
    res = power_curve(KnownGenerator("tte", rate=0.01), two_arm("logrank", effect, followup=365),
                      PowerSettings((40,), 20, 0.05), rng=np.random.default_rng(2))
    assert res.to_json_dict()["effect"] == {"hazard_ratio": 0.7, "delay": 30.0, "responder_fraction": 0.8}


def test_threads_change_nothing_but_the_wall_time(monkeypatch):
    """Chunks of replicates have their own random streams, so simulating them in 1 or 3 threads gives identical
    p-values and estimates, and progress is reported chunk by chunk, in order, from the calling thread."""
    import threading

    from analysis.power import CHUNK_REPLICATES, simulate_design, simulation_threads
    design = two_arm("logrank", Effect("hazard_ratio", 0.7), followup=24.0)
    gen = KnownGenerator("tte")
    runs = {}
    for threads in ("1", "3"):
        monkeypatch.setenv("INSILICO_THREADS", threads)
        assert simulation_threads() == int(threads)
        seen = []
        sim = simulate_design(gen, design, 100, 3 * CHUNK_REPLICATES + 7, 0.05, rng=np.random.default_rng(5),
                              on_chunk=lambda r: seen.append((r, threading.current_thread() is threading.main_thread())))
        assert seen == [(CHUNK_REPLICATES, True)] * 3 + [(7, True)]
        runs[threads] = sim
    np.testing.assert_array_equal(runs["1"].p_value, runs["3"].p_value)
    np.testing.assert_array_equal(runs["1"].estimate, runs["3"].estimate)


def test_a_failing_progress_callback_stops_the_threads(monkeypatch):
    from analysis.power import simulate_design
    monkeypatch.setenv("INSILICO_THREADS", "2")

    class Stop(Exception):
        pass

    def stop(r):
        raise Stop
    with pytest.raises(Stop):
        simulate_design(KnownGenerator("continuous", sd=1.0), two_arm("ttest", Effect("mean_difference", 0.5)), 40,
                        5000, 0.05, rng=np.random.default_rng(1), on_chunk=stop)
