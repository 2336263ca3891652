"""Binary endpoints: risk difference / risk ratio and logistic regression.

References are computed live with statsmodels (an independent implementation): ``proportions_ztest``,
``confint_proportions_2indep`` (wald / newcomb / ratio-log), ``test_proportions_2indep`` (ratio, log) and
``Logit(...).fit(disp=0)`` on a design coded independently with ``pandas.get_dummies``; the unadjusted
logistic fit is also checked against the closed-form 2x2 odds ratio. Real data: VA lung cancer trial (death
within 180 days by treatment, adjusted for Karnofsky score and cell type) and GBSG2 (event by hormone
therapy, adjusted for age, tumour size and positive nodes).
"""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from statsmodels.stats.proportion import test_proportions_2indep as ztest_2indep

from analysis.estimators.binary import (risk_difference_batched, risk_difference_test, risk_ratio_batched,
                                        risk_ratio_test)
from analysis.estimators.logistic import logistic_batched, logistic_test
from cohorts.errors import InvalidDataError, UnknownNameError

DATA = Path(__file__).resolve().parents[1] / "data"
EXACT = dict(rtol=1e-10, atol=1e-12)      # same closed-form formula as statsmodels
SM = dict(rtol=1e-6, atol=1e-9)           # iterative fits (both converge far below this)
SAME = dict(rtol=1e-9, atol=1e-12, equal_nan=True)   # batched vs single: identical up to summation order


@pytest.fixture(scope="module")
def va():
    df = pd.read_csv(DATA / "va_lung.csv")
    df["death180"] = ((df["time_days"] <= 180) & (df["death"] == 1)).astype(int)
    return df


@pytest.fixture(scope="module")
def gbsg():
    return pd.read_csv(DATA / "gbsg2.csv")


CASES = {"va": ("death180", "Treatment", "test"), "gbsg": ("event", "horTh", "yes")}


def _counts(df, outcome, arm, tv):
    x = df[arm] == tv
    return (int(df.loc[x, outcome].sum()), int(x.sum()), int(df.loc[~x, outcome].sum()), int((~x).sum()))


# ---------------------------------------------------------------- risk difference / risk ratio


@pytest.mark.parametrize("alpha", [0.05, 0.1])
@pytest.mark.parametrize("ci", ["newcombe", "wald"])
@pytest.mark.parametrize("name", ["va", "gbsg"])
def test_risk_difference_equals_statsmodels(name, ci, alpha, va, gbsg):
    df = {"va": va, "gbsg": gbsg}[name]
    outcome, arm, tv = CASES[name]
    x1, n1, x0, n0 = _counts(df, outcome, arm, tv)
    res = risk_difference_test(df, outcome=outcome, arm=arm, treated_value=tv, alpha=alpha, ci=ci)
    z, p = proportions_ztest([x1, x0], [n1, n0])
    low, high = confint_proportions_2indep(x1, n1, x0, n0, method={"newcombe": "newcomb", "wald": "wald"}[ci],
                                           compare="diff", alpha=alpha)
    np.testing.assert_allclose([res.estimate, res.statistic, res.p_value, res.ci_low, res.ci_high],
                               [x1 / n1 - x0 / n0, z, p, low, high], **EXACT)
    assert res.n_per_arm == (n0, n1) and res.details["events"] == [x0, x1] and res.details["ci_method"] == ci


@pytest.mark.parametrize("name", ["va", "gbsg"])
def test_risk_ratio_equals_statsmodels(name, va, gbsg):
    df = {"va": va, "gbsg": gbsg}[name]
    outcome, arm, tv = CASES[name]
    x1, n1, x0, n0 = _counts(df, outcome, arm, tv)
    res = risk_ratio_test(df, outcome=outcome, arm=arm, treated_value=tv, alpha=0.1)
    low, high = confint_proportions_2indep(x1, n1, x0, n0, method="log", compare="ratio", alpha=0.1)
    ref = ztest_2indep(x1, n1, x0, n0, method="log", compare="ratio")
    np.testing.assert_allclose([res.estimate, res.ci_low, res.ci_high, res.statistic, res.p_value],
                               [(x1 / n1) / (x0 / n0), low, high, ref.statistic, ref.pvalue], **EXACT)
    assert res.n_per_arm == (n0, n1)


def _rd_sm(x1, n1, x0, n0, method):
    return confint_proportions_2indep(x1, n1, x0, n0, method=method, compare="diff")


def test_zero_cells():
    """One arm without events: RD fully defined (Newcombe = statsmodels), RR undefined. No events at all:
    RD estimate 0 with the Newcombe CI, but no z-test (NaN p) and no Wald CI (se = 0)."""
    y = np.zeros((3, 40))
    treated = np.tile(np.arange(40) < 20, (3, 1))
    y[0, 25:31] = 1                        # control 6/20, treated 0/20
    y[2] = 1                               # every patient an event
    nc = risk_difference_batched(y, treated)
    wd = risk_difference_batched(y, treated, ci="wald")
    rr = risk_ratio_batched(y, treated)
    z, p = proportions_ztest([0, 6], [20, 20])
    np.testing.assert_allclose([nc.estimate[0], nc.statistic[0], nc.p_value[0], nc.ci_low[0], nc.ci_high[0]],
                               [-0.3, z, p, *_rd_sm(0, 20, 6, 20, "newcomb")], **EXACT)
    np.testing.assert_allclose([wd.ci_low[0], wd.ci_high[0]], _rd_sm(0, 20, 6, 20, "wald"), **EXACT)
    for r in (1, 2):
        x = 20 * (r - 1)
        assert nc.estimate[r] == 0 and np.isnan([nc.p_value[r], nc.statistic[r]]).all()
        np.testing.assert_allclose([nc.ci_low[r], nc.ci_high[r]], _rd_sm(x, 20, x, 20, "newcomb"), **EXACT)
        assert nc.ci_low[r] < 0 < nc.ci_high[r] and np.isnan([wd.ci_low[r], wd.ci_high[r]]).all()
    for field in ("estimate", "ci_low", "ci_high", "p_value", "statistic"):
        assert np.isnan(getattr(rr, field)).all(), field
    assert not rr.rejected(0.05).any() and not nc.rejected(0.05)[1:].any()


def _binary_batch(rng, R=7, N=30):
    treated = rng.random((R, N)) < 0.5
    y = (rng.random((R, N)) < np.where(treated, 0.35, 0.55)).astype(float)
    y[rng.random((R, N)) < 0.1] = np.nan
    treated[1] = False
    treated[1, 0] = True                   # one treated patient: undefined
    y[2, treated[2]] = 0.0                 # no treated events: RR undefined, RD defined
    y[3] = 1.0                             # all events: no z-test
    y[4, ~treated[4]] = np.nan             # no analysable control: undefined
    return y, treated


def _frame(y, treated):
    return pd.DataFrame({"y": y, "arm": np.where(treated, "new", "old")})


@pytest.mark.parametrize("kind", ["newcombe", "wald", "ratio"])
def test_binary_batched_equals_single(kind):
    y, treated = _binary_batch(np.random.default_rng(3))
    alpha = 0.1
    if kind == "ratio":
        batch = risk_ratio_batched(y, treated, alpha)
        single = [risk_ratio_test(_frame(y[r], treated[r]), outcome="y", arm="arm", treated_value="new",
                                  alpha=alpha) for r in range(len(y))]
    else:
        batch = risk_difference_batched(y, treated, alpha, ci=kind)
        single = [risk_difference_test(_frame(y[r], treated[r]), outcome="y", arm="arm", treated_value="new",
                                       alpha=alpha, ci=kind) for r in range(len(y))]
    for field in ("estimate", "ci_low", "ci_high", "p_value", "statistic"):
        np.testing.assert_allclose(getattr(batch, field), [getattr(s, field) for s in single], **SAME)
    assert [tuple(n) for n in batch.n_per_arm] == [s.n_per_arm for s in single]
    undefined = [1, 4] if kind != "ratio" else [1, 2, 3, 4]
    assert np.isnan(batch.estimate[undefined]).all()
    assert np.isfinite(np.delete(batch.estimate, undefined)).all()


def test_binary_bad_input(va):
    kw = dict(arm="Treatment", treated_value="test")
    with pytest.raises(InvalidDataError, match="Karnofsky_score.*0/1"):
        risk_difference_test(va, outcome="Karnofsky_score", **kw)
    with pytest.raises(InvalidDataError, match="'nope' not found"):
        risk_ratio_test(va, outcome="nope", **kw)
    with pytest.raises(UnknownNameError, match="newcombe, wald"):
        risk_difference_test(va, outcome="death180", ci="exact", **kw)


# ---------------------------------------------------------------- logistic regression


def _sm_logit(df, outcome, arm, tv, covariates, alpha=0.05):
    design = pd.get_dummies(df[covariates], drop_first=True, dtype=float)
    design.insert(0, "treated", (df[arm] == tv).astype(float))
    fit = sm.Logit(df[outcome].astype(float), sm.add_constant(design)).fit(disp=0)
    return fit, fit.conf_int(alpha=alpha).iloc[1].to_numpy()


def _check_logit(res, fit, ci):
    np.testing.assert_allclose(res.details["coefficients"], fit.params.to_numpy(), **SM)
    np.testing.assert_allclose(res.details["coefficient_se"], fit.bse.to_numpy(), **SM)
    np.testing.assert_allclose([res.details["log_or"], res.details["se"], res.statistic, res.p_value,
                                res.details["loglik"]],
                               [fit.params.iloc[1], fit.bse.iloc[1], fit.tvalues.iloc[1], fit.pvalues.iloc[1],
                                fit.llf], **SM)
    np.testing.assert_allclose([res.estimate, res.ci_low, res.ci_high], np.exp([fit.params.iloc[1], *ci]), **SM)
    assert res.details["converged"] and fit.mle_retvals["converged"]


def test_logistic_va_lung_equals_statsmodels(va):
    covs = ["Karnofsky_score", "Celltype"]
    res = logistic_test(va, outcome="death180", arm="Treatment", treated_value="test", covariates=covs,
                        alpha=0.1)
    fit, ci = _sm_logit(va, "death180", "Treatment", "test", covs, alpha=0.1)
    _check_logit(res, fit, ci)
    assert res.details["coefficient_names"] == ["intercept", "Treatment[T.test]", "Karnofsky_score",
                                                "Celltype[T.large]", "Celltype[T.smallcell]",
                                                "Celltype[T.squamous]"]
    assert res.details["reference_levels"] == {"Celltype": "adeno"} and "first sorted" in res.details["coding"]
    assert res.details["n_dropped"] == 0 and res.n_per_arm == ((va["Treatment"] != "test").sum(),
                                                               (va["Treatment"] == "test").sum())
    # a numeric-coded categorical, declared as such, is the same model
    coded = va.assign(cell=va["Celltype"].map({"adeno": 0, "large": 1, "smallcell": 2, "squamous": 3}))
    again = logistic_test(coded, outcome="death180", arm="Treatment", treated_value="test",
                          covariates=["Karnofsky_score", "cell"], categorical=["cell"], alpha=0.1)
    np.testing.assert_allclose(again.details["coefficients"], res.details["coefficients"], rtol=1e-9)
    assert again.details["reference_levels"] == {"cell": 0}


def test_logistic_gbsg_equals_statsmodels(gbsg):
    covs = ["age", "tsize", "pnodes"]
    res = logistic_test(gbsg, outcome="event", arm="horTh", treated_value="yes", covariates=covs)
    fit, ci = _sm_logit(gbsg, "event", "horTh", "yes", covs)
    _check_logit(res, fit, ci)
    assert res.details["reference_levels"] == {}


@pytest.mark.parametrize("name", ["va", "gbsg"])
def test_logistic_unadjusted_is_the_2x2_odds_ratio(name, va, gbsg):
    """Saturated model: OR = x1 (n0 - x0) / (x0 (n1 - x1)), se(log OR) = sqrt of the four reciprocal cells."""
    df = {"va": va, "gbsg": gbsg}[name]
    outcome, arm, tv = CASES[name]
    x1, n1, x0, n0 = _counts(df, outcome, arm, tv)
    res = logistic_test(df, outcome=outcome, arm=arm, treated_value=tv)
    cells = np.array([x1, n1 - x1, x0, n0 - x0], dtype=float)
    np.testing.assert_allclose([res.estimate, res.details["se"]],
                               [x1 * (n0 - x0) / (x0 * (n1 - x1)), np.sqrt((1 / cells).sum())], rtol=1e-9)


def test_logistic_drops_incomplete_rows(va):
    df = va.astype({"Karnofsky_score": float, "death180": float})
    df.loc[3, "Karnofsky_score"] = np.nan
    df.loc[7, "Celltype"] = None
    df.loc[11, "death180"] = np.nan
    df.loc[15, "Treatment"] = None
    covs = ["Karnofsky_score", "Celltype"]
    res = logistic_test(df, outcome="death180", arm="Treatment", treated_value="test", covariates=covs)
    fit, ci = _sm_logit(df.dropna(subset=["death180", "Treatment", *covs]), "death180", "Treatment", "test", covs)
    _check_logit(res, fit, ci)
    assert res.details["n_dropped"] == 4 and sum(res.n_per_arm) == len(df) - 4


def test_logistic_bad_input(va):
    kw = dict(outcome="death180", arm="Treatment", treated_value="test")
    with pytest.raises(InvalidDataError, match="'Age' not found"):
        logistic_test(va, covariates=["Age"], **kw)
    with pytest.raises(InvalidDataError, match="cannot also be a covariate"):
        logistic_test(va, covariates=["Treatment"], **kw)
    with pytest.raises(InvalidDataError, match="not among the covariates"):
        logistic_test(va, covariates=["Karnofsky_score"], categorical=["Celltype"], **kw)
    with pytest.raises(InvalidDataError, match="0/1"):
        logistic_test(va, outcome="time_days", arm="Treatment", treated_value="test")


def _logit_batch(rng, R=9, N=80):
    treated = rng.random((R, N)) < 0.5
    cov = np.stack([rng.normal(50, 10, (R, N)), rng.normal(0, 1, (R, N))], axis=2)
    eta = -0.3 + 0.6 * treated + 0.04 * (cov[..., 0] - 50) + 0.5 * cov[..., 1]
    y = (rng.random((R, N)) < 1 / (1 + np.exp(-eta))).astype(float)
    y[2] = (cov[2, :, 1] > 0).astype(float)                  # complete separation by a covariate
    treated[3] = False
    treated[3, 0] = True                                     # an arm of one patient
    y[4, treated[4]] = 0.0                                   # no treated events: b1 = -inf
    y[5, :4] = np.nan                                        # missing outcome / covariate rows
    cov[5, 4:8, 0] = np.nan
    cov[6, :, 1] = 3.0                                       # constant covariate: rank deficient
    cov[7, :12, 1] = 0.0                                     # quasi-complete separation: sign(z) decides y
    y[7] = np.where(cov[7, :, 1] > 0, 1.0, np.where(cov[7, :, 1] < 0, 0.0, np.arange(N) % 2))
    return y, treated, cov


UNDEFINED = [2, 3, 4, 6, 7]


def test_logistic_batched_equals_single_and_statsmodels():
    y, treated, cov = _logit_batch(np.random.default_rng(11))
    batch = logistic_batched(y, treated, cov, alpha=0.1)
    for r in range(len(y)):
        df = pd.DataFrame({"y": y[r], "arm": np.where(treated[r], "B", "A"), "x1": cov[r, :, 0],
                           "x2": cov[r, :, 1]})
        single = logistic_test(df, outcome="y", arm="arm", treated_value="B", covariates=["x1", "x2"], alpha=0.1)
        for field in ("estimate", "ci_low", "ci_high", "p_value", "statistic"):
            np.testing.assert_allclose(getattr(batch, field)[r], getattr(single, field), **SAME)
        assert tuple(batch.n_per_arm[r]) == single.n_per_arm
        if r in UNDEFINED:
            assert np.isnan(batch.estimate[r]) and not batch.details["converged"][r]
            assert np.isnan(batch.details["coefficients"][r]).all()
            continue
        keep = df.dropna()
        fit, ci = _sm_logit(keep, "y", "arm", "B", ["x1", "x2"], alpha=0.1)
        _check_logit(single, fit, ci)
        np.testing.assert_allclose(batch.details["coefficients"][r], fit.params.to_numpy(), **SM)
    assert tuple(batch.n_per_arm[5]) == ((treated[5, 8:] == 0).sum(), treated[5, 8:].sum())
    assert not batch.rejected(0.5)[UNDEFINED].any()


def test_logistic_statsmodels_sees_the_separation():
    """The separated replicates are genuinely degenerate: statsmodels warns or returns a huge coefficient."""
    y, treated, cov = _logit_batch(np.random.default_rng(11))
    for r in (2, 7):
        x = sm.add_constant(np.column_stack([treated[r], cov[r]]).astype(float))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = sm.Logit(y[r], x).fit(disp=0, maxiter=200)
        assert caught or np.abs(fit.params).max() > 20


def test_logistic_without_covariates_batched():
    rng = np.random.default_rng(2)
    treated = rng.random((4, 50)) < 0.5
    y = (rng.random((4, 50)) < np.where(treated, 0.3, 0.5)).astype(float)
    y[1, treated[1]] = 1.0                                   # every treated patient an event: undefined
    res = logistic_batched(y, treated)
    assert np.isnan(res.estimate[1]) and np.isfinite(np.delete(res.estimate, 1)).all()
    for r in (0, 2, 3):
        x1, n1 = y[r, treated[r]].sum(), treated[r].sum()
        x0, n0 = y[r, ~treated[r]].sum(), (~treated[r]).sum()
        np.testing.assert_allclose(res.estimate[r], x1 * (n0 - x0) / (x0 * (n1 - x1)), rtol=1e-9)


def test_logistic_on_a_large_batch_equals_statsmodels():
    """200 replicates x 600 patients x 2 covariates (speed: bench/bench_estimators.py)."""
    rng = np.random.default_rng(5)
    R, N = 200, 600
    treated = rng.random((R, N)) < 0.5
    cov = np.stack([rng.normal(60, 10, (R, N)), rng.normal(0, 1, (R, N))], axis=2)
    eta = -0.5 + 0.4 * treated + 0.03 * (cov[..., 0] - 60) + 0.5 * cov[..., 1]
    y = (rng.random((R, N)) < 1 / (1 + np.exp(-eta))).astype(float)
    res = logistic_batched(y, treated, cov)
    assert res.details["converged"].all()
    assert res.details["iterations"].max() <= 8
    for r in (0, 199):
        fit = sm.Logit(y[r], sm.add_constant(np.column_stack([treated[r], cov[r]]).astype(float))).fit(disp=0)
        np.testing.assert_allclose(res.details["coefficients"][r], fit.params, **SM)
        np.testing.assert_allclose(res.details["coefficient_se"][r], fit.bse, **SM)
