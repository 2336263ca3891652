"""The trial simulator: randomization, counterfactual effects, dropout and censoring, batched."""

import numpy as np
import pytest
from scipy import stats
from support import KnownGenerator

from cohorts.errors import InvalidScenarioError
from trials.design import Arm, Dropout, Effect, Endpoint, TrialDesign
from trials.simulate import months_to_unit, randomize, simulate_trials


def design(analysis, effect=None, dropout=0.0, **ep):
    return TrialDesign((Arm("control"), Arm("treated", 1.0, effect)), Endpoint(analysis, **ep), Dropout(dropout))


def test_randomize_fixed_arm_sizes_and_random_order():
    rng = np.random.default_rng(1)
    t = randomize(400, 90, 2 / 3, rng=rng)
    assert t.shape == (400, 90)
    assert (t.sum(axis=1) == 60).all()
    # every position is treated with probability 2/3 (binomial bound over 400 replicates, 4 SD)
    frac = t.mean(axis=0)
    assert np.all(np.abs(frac - 2 / 3) < 4 * np.sqrt(2 / 9 / 400))


def test_same_seed_same_trials_different_seed_differs():
    g = KnownGenerator("longitudinal")
    d = design("slope", Effect("slope_reduction", 0.3), 0.05, visits_months=(0, 3, 6))
    a = simulate_trials(g, d, 50, 20, rng=np.random.default_rng(7))
    b = simulate_trials(g, d, 50, 20, rng=np.random.default_rng(7))
    c = simulate_trials(g, d, 50, 20, rng=np.random.default_rng(8))
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.treated, b.treated)
    assert not np.array_equal(np.nan_to_num(a.y), np.nan_to_num(c.y))


def test_slope_reduction_scales_mean_decline():
    g = KnownGenerator("longitudinal", slope_sd=0.0, sigma=0.0)
    b = simulate_trials(g, design("slope", Effect("slope_reduction", 0.25), visits_months=(0, 6)), 40, 5,
                        rng=np.random.default_rng(3))
    change = b.y[..., 1] - b.y[..., 0]
    np.testing.assert_allclose(change[~b.treated], -6.0)
    np.testing.assert_allclose(change[b.treated], -4.5)


def test_dropout_fraction_matches_per_month_rate():
    g = KnownGenerator("longitudinal")
    b = simulate_trials(g, design("slope", dropout=0.05, visits_months=(0, 1, 2, 3, 4, 5, 6)), 200, 50,
                        rng=np.random.default_rng(4))
    observed_last = ~np.isnan(b.y[..., -1])
    expected = 0.95 ** 6
    n = observed_last.size
    assert abs(observed_last.mean() - expected) < 4 * np.sqrt(expected * (1 - expected) / n)
    # monotone: once missing, always missing; baseline always observed
    miss = np.isnan(b.y)
    assert not miss[..., 0].any()
    assert (np.diff(miss.astype(int), axis=-1) >= 0).all()


def test_tte_hazard_ratio_and_censoring():
    g = KnownGenerator("tte", rate=0.01, unit="days")
    d = design("logrank", Effect("hazard_ratio", 0.5), 0.0, followup=100.0)
    b = simulate_trials(g, d, 1000, 10, rng=np.random.default_rng(5))
    assert b.time.max() <= 100.0
    assert (b.time[~b.event] == 100.0).all()
    # P(event by 100 days) = 1 - exp(-rate * hr * 100)
    for mask, hr in ((~b.treated, 1.0), (b.treated, 0.5)):
        p = 1 - np.exp(-0.01 * hr * 100)
        n = mask.sum()
        assert abs(b.event[mask].mean() - p) < 4 * np.sqrt(p * (1 - p) / n)


def test_tte_dropout_converted_to_the_cohort_time_unit():
    g = KnownGenerator("tte", rate=1e-9, unit="days")  # nobody has an event: only dropout censors early
    b = simulate_trials(g, design("logrank", dropout=0.1, followup=10_000.0), 500, 10,
                        rng=np.random.default_rng(6))
    # time to dropout is exponential with mean 1 / (-log 0.9) months, converted to days
    mean_days = months_to_unit(1 / -np.log(0.9), "days")
    res = stats.kstest(b.time.ravel(), stats.expon(scale=float(mean_days)).cdf)
    assert res.pvalue > 1e-3


def test_design_and_cohort_outcome_must_match():
    g = KnownGenerator("tte")
    with pytest.raises(InvalidScenarioError, match="endpoint.analysis"):
        simulate_trials(g, design("slope", visits_months=(0, 6)), 20, 2, rng=np.random.default_rng(0))
