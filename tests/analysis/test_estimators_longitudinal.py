"""Batched slope and ANCOVA (longitudinal), Welch t-test and proportions equal per-replicate statsmodels.

Simulated data (own generator): random intercepts and slopes per patient, a treatment effect on the slope,
monotone dropout (NaN from a random visit on) plus sporadic missed visits.
"""

import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, ttest_ind

from analysis.estimators import ancova_batched, proportions_batched, slope_batched, ttest_batched
from analysis.estimators.slope import patient_slopes

TOL = dict(rtol=1e-6, atol=1e-9)
VISITS = np.array([0.0, 1, 2, 3, 4.5, 6])


def simulate(rng, R=200, N=24):
    treated = rng.random((R, N)) < 0.5
    slope = rng.normal(-1.0, 0.5, (R, N)) * np.where(treated, 0.7, 1.0)
    y = rng.normal(36, 5, (R, N))[..., None] + slope[..., None] * VISITS + rng.normal(0, 1.5, (R, N, len(VISITS)))
    drop = rng.integers(1, len(VISITS) + 3, (R, N))          # first missing visit index (>= V: completer)
    y[np.arange(len(VISITS)) >= drop[..., None]] = np.nan
    y[rng.random(y.shape) < 0.08] = np.nan                   # sporadic missed visits (baseline too)
    return y, treated


def ref_slope(y, x, alpha):
    s = {0: [], 1: []}
    for yi, xi in zip(y, x):
        ok = ~np.isnan(yi)
        if ok.sum() >= 2:
            s[int(xi)].append(sm.OLS(yi[ok], sm.add_constant(VISITS[ok])).fit().params[1])
    s1, s0 = np.array(s[1]), np.array(s[0])
    t, p, df = ttest_ind(s1, s0, usevar="unequal")
    lo, hi = CompareMeans.from_data(s1, s0).tconfint_diff(alpha=alpha, usevar="unequal")
    return [s1.mean() - s0.mean(), t, p, df, lo, hi]


def test_slope_batched_equals_ols_loop():
    y, treated = simulate(np.random.default_rng(1))
    res = slope_batched(y, VISITS, treated, alpha=0.1)
    ref = np.array([ref_slope(y[r], treated[r], 0.1) for r in range(len(y))])
    got = np.c_[res.estimate, res.statistic, res.p_value, res.details["df"], res.ci_low, res.ci_high]
    np.testing.assert_allclose(got, ref, **TOL)


def test_ancova_batched_equals_ols_loop():
    y, treated = simulate(np.random.default_rng(2))
    res = ancova_batched(y, treated)
    checked = 0
    for r in range(len(y)):
        ok = ~np.isnan(y[r, :, 0]) & ~np.isnan(y[r, :, -1])
        assert tuple(res.n_per_arm[r]) == ((ok & ~treated[r]).sum(), (ok & treated[r]).sum())
        if res.n_per_arm[r].min() < 2:                 # an arm with < 2 completers: undefined by design
            assert np.isnan([res.estimate[r], res.p_value[r], res.ci_low[r]]).all()
            continue
        checked += 1
        x = np.column_stack([np.ones(ok.sum()), treated[r, ok], y[r, ok, 0]])
        fit = sm.OLS(y[r, ok, -1] - y[r, ok, 0], x).fit()
        got = [res.estimate[r], res.details["se"][r], res.statistic[r], res.p_value[r], res.ci_low[r],
               res.ci_high[r], res.details["df"][r]]
        want = [fit.params[1], fit.bse[1], fit.tvalues[1], fit.pvalues[1], *fit.conf_int()[1], fit.df_resid]
        np.testing.assert_allclose(got, want, **TOL)
    assert checked > 150


def test_ttest_and_proportions_batched_equal_statsmodels():
    rng = np.random.default_rng(4)
    R, N = 200, 40
    treated = rng.random((R, N)) < 0.4
    y = rng.normal(0, 1, (R, N)) * np.where(treated, 2.0, 1.0) + 0.3 * treated
    y[rng.random((R, N)) < 0.05] = np.nan
    b = (rng.random((R, N)) < np.where(treated, 0.5, 0.3)).astype(float)
    tt, pr = ttest_batched(y, treated), proportions_batched(b, treated, alpha=0.1)
    for r in range(R):
        y1, y0 = y[r, treated[r]], y[r, ~treated[r]]
        y1, y0 = y1[~np.isnan(y1)], y0[~np.isnan(y0)]
        t, p, df = ttest_ind(y1, y0, usevar="unequal")
        ci = CompareMeans.from_data(y1, y0).tconfint_diff(usevar="unequal")
        np.testing.assert_allclose([tt.statistic[r], tt.p_value[r], tt.details["df"][r], tt.ci_low[r],
                                    tt.ci_high[r]], [t, p, df, *ci], **TOL)
        x1, n1, x0, n0 = b[r, treated[r]].sum(), treated[r].sum(), b[r, ~treated[r]].sum(), (~treated[r]).sum()
        z, p = proportions_ztest([x1, x0], [n1, n0])
        ci = confint_proportions_2indep(x1, n1, x0, n0, method="wald", alpha=0.1)
        np.testing.assert_allclose([pr.statistic[r], pr.p_value[r], pr.ci_low[r], pr.ci_high[r]], [z, p, *ci],
                                   **TOL)


def test_edge_cases_give_nan_without_warnings():
    y, treated = simulate(np.random.default_rng(9), R=6, N=12)
    treated[0] = False                                  # one arm empty
    y[1, treated[1], 1:] = np.nan                       # treated: nobody has 2 visits / completes
    y[2, :, 0] = 5.0                                    # constant baseline: singular ANCOVA
    y[3, :, :] = np.nan                                 # nothing observed at all
    bin_ = np.zeros((6, 12))
    bin_[5] = 1.0                                       # everyone has the event: zero variance
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sl, an = slope_batched(y, VISITS, treated), ancova_batched(y, treated)
        tt, pr = ttest_batched(y[..., -1], treated), proportions_batched(bin_, treated)
    assert np.isnan(sl.estimate[[0, 1, 3]]).all() and np.isfinite(sl.estimate[[2, 4, 5]]).all()
    assert np.isnan(an.estimate[:4]).all() and np.isnan(an.p_value[:4]).all()
    assert np.isnan(tt.estimate[[0, 1, 3]]).all()
    assert np.isnan(pr.estimate).all()                  # all-zero and all-one outcomes: undefined
    assert sl.n_per_arm[0, 1] == 0 and not sl.rejected(0.05)[[0, 1, 3]].any()
    assert an.details["df"][4] == an.n_per_arm[4].sum() - 3


def test_patient_slopes_use_observed_visits_only():
    """A patient's slope uses only its observed visits (times need not be equally spaced)."""
    y = np.array([[1.0, np.nan, 3.0, np.nan, np.nan, 6.0], [2.0, 2.5, np.nan, np.nan, np.nan, np.nan],
                  [np.nan, np.nan, np.nan, 4.0, np.nan, np.nan]])
    got = patient_slopes(y, VISITS)
    assert got[0] == pytest.approx(np.polyfit(VISITS[[0, 2, 5]], [1, 3, 6], 1)[0], rel=1e-12)
    assert got[1] == pytest.approx(0.5, rel=1e-12) and np.isnan(got[2])
