"""Batched log-rank and Cox equal a per-replicate statsmodels loop (survdiff, PHReg) on every replicate.

Simulated data (own generator): exponential event times with a treatment hazard ratio, uniform dropout
censoring and administrative follow-up; a heavily tied variant rounds times to whole units.
"""

import warnings

import numpy as np
import pytest
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import survdiff

from analysis.estimators import cox_batched, logrank_batched

TOL = dict(rtol=1e-6, atol=1e-9)


def simulate(rng, R=200, N=60, hr=0.7, tied=False):
    treated = rng.random((R, N)) < 0.5
    t_event = rng.exponential(10.0, (R, N)) / np.where(treated, hr, 1.0)
    t_drop = rng.uniform(0, 60, (R, N))
    time = np.minimum(np.minimum(t_event, t_drop), 24.0)
    event = t_event <= np.minimum(t_drop, 24.0)
    if tied:
        time = np.ceil(time)
    return time, event, treated


def phreg(time, event, x, ties):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return PHReg(time, x.astype(float)[:, None], status=event.astype(float), ties=ties).fit()


@pytest.mark.parametrize("tied", [False, True])
def test_logrank_batched_equals_survdiff(tied):
    time, event, treated = simulate(np.random.default_rng(11 + tied), tied=tied)
    res = logrank_batched(time, event, treated)
    ref = np.array([survdiff(time[r], event[r].astype(float), treated[r]) for r in range(len(time))])
    np.testing.assert_allclose(res.statistic, ref[:, 0], **TOL)
    np.testing.assert_allclose(res.p_value, ref[:, 1], **TOL)
    assert np.isfinite(res.estimate).all() and (res.ci_low < res.estimate).all()
    if tied:
        assert (np.diff(np.sort(time[0][event[0]])) == 0).mean() > 0.5   # really heavily tied


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("tied", [False, True])
def test_cox_batched_equals_phreg(ties, tied):
    time, event, treated = simulate(np.random.default_rng(21 + tied), tied=tied)
    res = cox_batched(time, event, treated, ties=ties, alpha=0.05)
    ref = [phreg(time[r], event[r], treated[r], ties) for r in range(len(time))]
    np.testing.assert_allclose(res.details["log_hr"], [f.params[0] for f in ref], **TOL)
    np.testing.assert_allclose(res.details["se"], [f.bse[0] for f in ref], **TOL)
    np.testing.assert_allclose(res.p_value, [f.pvalues[0] for f in ref], **TOL)
    np.testing.assert_allclose(np.c_[res.ci_low, res.ci_high], np.exp([f.conf_int()[0] for f in ref]), **TOL)
    assert res.details["converged"].all() and res.details["ties"] == ties


def test_efron_and_breslow_differ_on_ties_only():
    time, event, treated = simulate(np.random.default_rng(5), R=20, tied=True)
    e = cox_batched(time, event, treated, ties="efron").details["log_hr"]
    b = cox_batched(time, event, treated, ties="breslow").details["log_hr"]
    assert np.abs(e - b).max() > 1e-3                       # ties matter ...
    assert (np.abs(b) <= np.abs(e) + 1e-12).mean() > 0.9    # ... Breslow attenuates towards 0
    time, event, treated = simulate(np.random.default_rng(5), R=20)
    np.testing.assert_allclose(cox_batched(time, event, treated, ties="efron").estimate,
                               cox_batched(time, event, treated, ties="breslow").estimate, rtol=1e-12)


def test_single_replicate_equals_batch_row():
    time, event, treated = simulate(np.random.default_rng(3), R=5, tied=True)
    for fn in (logrank_batched, cox_batched):
        full = fn(time, event, treated)
        one = fn(time[2], event[2], treated[2])
        np.testing.assert_allclose(one.estimate, full.estimate[2:3], rtol=1e-12)
        np.testing.assert_allclose(one.p_value, full.p_value[2:3], rtol=1e-12)


def test_edge_cases_give_nan_without_warnings():
    rng = np.random.default_rng(8)
    time, event, treated = simulate(rng, R=8, N=30, tied=True)
    event[0] = False                                  # no events
    treated[1] = False                                # treated arm empty
    treated[2] = False
    treated[2, 0] = True                              # one treated patient
    event[3] = event[3] & ~treated[3]                 # no events in the treated arm: infinite MLE
    event[4] = event[4] & treated[4]                  # no events in control: infinite MLE
    time[5, :3] = np.nan                              # missing times are dropped
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cox = cox_batched(time, event, treated)
        lr = logrank_batched(time, event, treated)
    assert np.isnan(cox.estimate[:5]).all() and np.isfinite(cox.estimate[5:]).all()
    assert np.isnan(lr.estimate[:3]).all() and np.isfinite(lr.estimate[3:]).all()
    assert not cox.rejected(0.05)[:5].any()
    assert cox.n_per_arm[5].sum() == 27 and cox.n_per_arm[1, 1] == 0
    keep = np.isfinite(time[5])
    ref = phreg(time[5][keep], event[5][keep], treated[5][keep], "efron")
    np.testing.assert_allclose(cox.details["log_hr"][5], ref.params[0], **TOL)
    # a patient censored at the first event time is at risk there; all events tied at one time
    t = np.array([[1.0, 1, 1, 1, 2, 2, 3, 3]])
    e = np.array([[1, 1, 0, 1, 1, 0, 1, 0]], bool)
    x = np.array([[1, 0, 1, 0, 1, 0, 1, 0]], bool)
    for ties in ("efron", "breslow"):
        np.testing.assert_allclose(cox_batched(t, e, x, ties=ties).details["log_hr"],
                                   phreg(t[0], e[0], x[0], ties).params, **TOL)


@pytest.mark.parametrize("hr", [0.02, 30.0])
def test_cox_extreme_effects_and_infinite_mle(hr):
    """Large effects converge to PHReg; where the MLE is infinite we give NaN (PHReg drifts to |b| > 10)."""
    time, event, treated = simulate(np.random.default_rng(7), R=50, N=30, hr=hr)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = cox_batched(time, event, treated)
    ref = np.array([phreg(time[r], event[r], treated[r], "efron").params[0] for r in range(50)])
    finite = np.isfinite(res.details["log_hr"])
    assert 5 < finite.sum() < 50
    np.testing.assert_allclose(res.details["log_hr"][finite], ref[finite], **TOL)
    assert (np.abs(ref[~finite]) > 10).all()
