"""Covariate-adjusted ANCOVA and PROCOVA equal statsmodels OLS; PROCOVA's variance reduction and type I error.

References: statsmodels OLS (formula API with ``C(x)`` dummy coding for categorical covariates; an
independent implementation) computed live on Beat the Blues and GBSG2 (tests/data) and on simulated
replicates; tolerance 1e-8 relative. Monte Carlo checks state their tolerance next to the assertion.
"""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats

from analysis.estimators.ancova_adjusted import ancova_adjusted_batched, ancova_adjusted_test
from analysis.estimators.procova import fit_prognostic_model, procova_batched, procova_test
from cohorts.errors import InvalidDataError

DATA = Path(__file__).resolve().parents[1] / "data"
TOL = dict(rtol=1e-8, atol=1e-10)


@pytest.fixture(scope="module")
def btb():
    d = pd.read_csv(DATA / "beat_the_blues.csv")
    later = d[["bdi.2m", "bdi.4m", "bdi.6m", "bdi.8m"]]
    d["bdi_last"] = later.ffill(axis=1).iloc[:, -1]            # last observed BDI after baseline
    return d


@pytest.fixture(scope="module")
def gbsg():
    d = pd.read_csv(DATA / "gbsg2.csv")
    d["log_rfs"] = np.log(d["rfs_days"])
    return d


def _check_against_formula(res, frame, formula, order):
    """``res`` (TestResult) equals statsmodels' formula OLS; ``order`` maps our coef names to theirs."""
    fit = smf.ols(formula, frame).fit()
    ref = [order[n] for n in res.details["coef_names"]]
    np.testing.assert_allclose(res.details["coef"], fit.params[ref].to_numpy(), **TOL)
    np.testing.assert_allclose(res.details["coef_se"], fit.bse[ref].to_numpy(), **TOL)
    np.testing.assert_allclose([res.estimate, res.statistic, res.p_value, res.details["r2"]],
                               [fit.params["tr"], fit.tvalues["tr"], fit.pvalues["tr"], fit.rsquared], **TOL)
    np.testing.assert_allclose([res.ci_low, res.ci_high], fit.conf_int().loc["tr"].to_numpy(), **TOL)
    np.testing.assert_allclose(res.details["sigma"], np.sqrt(fit.scale), **TOL)
    assert res.details["df"] == fit.df_resid
    assert sum(res.n_per_arm) == fit.nobs
    return fit


@pytest.mark.parametrize("outcome", ["bdi.8m", "bdi_last"])
def test_btb_equals_statsmodels(btb, outcome):
    res = ancova_adjusted_test(btb, outcome=outcome, arm="treatment", treated_value="BtheB",
                               covariates=["bdi.pre", "drug", "length"])
    frame = btb.assign(y=btb[outcome], tr=(btb.treatment == "BtheB").astype(float), pre=btb["bdi.pre"])
    order = {"Intercept": "Intercept", "treated": "tr", "bdi.pre": "pre", "drug[T.Yes]": "C(drug)[T.Yes]",
             "length[T.>6m]": "C(length)[T.>6m]"}
    fit = _check_against_formula(res, frame, "y ~ tr + pre + C(drug) + C(length)", order)
    assert fit.nobs == btb[[outcome, "bdi.pre"]].notna().all(axis=1).sum()   # complete cases only
    assert res.details["coef_names"][3:] == ["drug[T.Yes]", "length[T.>6m]"]  # first sorted level: reference


def test_gbsg_equals_statsmodels(gbsg):
    res = ancova_adjusted_test(gbsg, outcome="log_rfs", arm="horTh", treated_value="yes",
                               covariates=["age", "tsize", "tgrade"], alpha=0.1)
    frame = gbsg.assign(y=gbsg.log_rfs, tr=(gbsg.horTh == "yes").astype(float))
    fit = smf.ols("y ~ tr + age + tsize + C(tgrade)", frame).fit()
    order = {"Intercept": "Intercept", "treated": "tr", "age": "age", "tsize": "tsize",
             "tgrade[T.II]": "C(tgrade)[T.II]", "tgrade[T.III]": "C(tgrade)[T.III]"}
    ref = [order[n] for n in res.details["coef_names"]]
    np.testing.assert_allclose(res.details["coef"], fit.params[ref].to_numpy(), **TOL)
    np.testing.assert_allclose(res.details["coef_se"], fit.bse[ref].to_numpy(), **TOL)
    np.testing.assert_allclose([res.ci_low, res.ci_high], fit.conf_int(alpha=0.1).loc["tr"].to_numpy(), **TOL)
    np.testing.assert_allclose(res.p_value, fit.pvalues["tr"], **TOL)
    # the brief's model: log(rfs_days) ~ horTh + age + tsize
    res2 = ancova_adjusted_test(gbsg, outcome="log_rfs", arm="horTh", treated_value="yes",
                                covariates=["age", "tsize"])
    fit2 = smf.ols("y ~ tr + age + tsize", frame).fit()
    np.testing.assert_allclose(res2.details["coef"], fit2.params.to_numpy(), **TOL)
    np.testing.assert_allclose(res2.details["coef_se"], fit2.bse.to_numpy(), **TOL)
    np.testing.assert_allclose(res2.p_value, fit2.pvalues["tr"], **TOL)


def test_numeric_column_forced_categorical(gbsg):
    """``categorical=`` dummy-codes a numeric column (here the number of positive nodes, capped at 3)."""
    d = gbsg.assign(nodes=np.minimum(gbsg.pnodes, 3))
    res = ancova_adjusted_test(d, outcome="log_rfs", arm="horTh", treated_value="yes", covariates=["nodes"],
                               categorical=["nodes"])
    fit = smf.ols("log_rfs ~ tr + C(nodes)", d.assign(tr=(d.horTh == "yes").astype(float))).fit()
    assert res.details["coef_names"] == ["Intercept", "treated", "nodes[T.2.0]", "nodes[T.3.0]"]
    ref = ["Intercept", "tr", "C(nodes)[T.2.0]", "C(nodes)[T.3.0]"]
    np.testing.assert_allclose(res.details["coef"], fit.params[ref].to_numpy(), **TOL)
    np.testing.assert_allclose(res.details["coef_se"], fit.bse[ref].to_numpy(), **TOL)


def _simulate(rng, R=60, N=40, p=2):
    cov = rng.normal(50, 10, (R, N, p))
    x = rng.random((R, N)) < 0.5
    y = 0.05 * cov.sum(axis=2) + 0.8 * x + rng.normal(0, 1, (R, N))
    y[rng.random((R, N)) < 0.1] = np.nan
    cov[rng.random((R, N, p)) < 0.03] = np.nan
    return y, x, cov


def test_batched_equals_statsmodels_loop_and_edge_cases():
    rng = np.random.default_rng(5)
    y, x, cov = _simulate(rng)
    x[0] = False                                        # no treated patient
    x[1, 1:] = False                                    # one treated patient (< 2: undefined)
    cov[2, :, 1] = 3.0                                  # constant covariate
    cov[3, :, 1] = 2 * cov[3, :, 0] - 1                 # collinear covariates
    y[4, 5:] = np.nan                                   # 5 patients for 4 coefficients (defined, 1 df)
    y[5, 3:] = np.nan                                   # 3 patients for 4 coefficients (undefined)
    cov[6, :, 0] = x[6]                                 # covariate equal to treatment
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = ancova_adjusted_batched(y, x, cov, alpha=0.1)
    undefined = [0, 1, 2, 3, 5, 6]
    out = np.c_[res.estimate, res.ci_low, res.ci_high, res.p_value, res.statistic, res.details["coef"],
                res.details["coef_se"], res.details["df"], res.details["sigma"], res.details["r2"]]
    assert np.isnan(out[undefined]).all()
    assert not res.rejected(0.1)[undefined].any()
    checked = 0
    for r in range(len(y)):
        ok = ~np.isnan(y[r]) & ~np.isnan(cov[r]).any(axis=1)
        assert tuple(res.n_per_arm[r]) == ((ok & ~x[r]).sum(), (ok & x[r]).sum())
        if r in undefined:
            continue
        fit = sm.OLS(y[r, ok], np.column_stack([np.ones(ok.sum()), x[r, ok], cov[r, ok]])).fit()
        np.testing.assert_allclose(res.details["coef"][r], fit.params, **TOL)
        np.testing.assert_allclose(res.details["coef_se"][r], fit.bse, **TOL)
        np.testing.assert_allclose([res.p_value[r], res.details["r2"][r], *fit.conf_int(alpha=0.1)[1]],
                                   [fit.pvalues[1], fit.rsquared, res.ci_low[r], res.ci_high[r]], **TOL)
        assert res.details["df"][r] == fit.df_resid
        checked += 1
    assert checked == len(y) - len(undefined)
    assert res.details["df"][4] == 1


def test_no_covariates_is_pooled_t_test_and_shared_covariates_broadcast():
    rng = np.random.default_rng(8)
    y, x, cov = _simulate(rng, R=5, N=30)
    res = ancova_adjusted_batched(y, x)
    for r in range(5):
        ok = ~np.isnan(y[r])
        t, p = stats.ttest_ind(y[r, ok & x[r]], y[r, ok & ~x[r]])       # Student (pooled variance)
        np.testing.assert_allclose([res.statistic[r], res.p_value[r]], [t, p], **TOL)
    shared = np.nan_to_num(cov[0], nan=50.0)                               # (N, p): one design for all
    np.testing.assert_allclose(ancova_adjusted_batched(y, x, shared).estimate,
                               ancova_adjusted_batched(y, x, np.broadcast_to(shared, (5, 30, 2))).estimate,
                               **TOL)


def test_bad_inputs_raise_clear_errors(btb):
    with pytest.raises(InvalidDataError, match="not found"):
        ancova_adjusted_test(btb, outcome="bdi.8m", arm="treatment", treated_value="BtheB", covariates=["age"])
    with pytest.raises(InvalidDataError, match="at least two levels"):
        ancova_adjusted_test(btb.assign(one="a"), outcome="bdi.8m", arm="treatment", treated_value="BtheB",
                             covariates=["one"])
    with pytest.raises(InvalidDataError, match="must not contain the arm"):
        ancova_adjusted_test(btb, outcome="bdi.8m", arm="treatment", treated_value="BtheB",
                             covariates=["treatment"])
    with pytest.raises(InvalidDataError, match="non-numeric"):
        ancova_adjusted_test(btb, outcome="drug", arm="treatment", treated_value="BtheB")


# ----------------------------------------------------------------------------------------------- PROCOVA

FEATURES = ["age", "menostat", "tsize", "tgrade", "pnodes", "progrec", "estrec"]


@pytest.fixture(scope="module")
def split(gbsg):
    """GBSG2 split at random (seeded) into a historical half (its control patients train the model) and a
    trial half."""
    idx = np.random.default_rng(2022).permutation(len(gbsg))
    hist, trial = gbsg.iloc[idx[:343]], gbsg.iloc[idx[343:]].reset_index(drop=True)
    return hist[hist.horTh == "no"], trial


@pytest.mark.parametrize("model", ["gradient_boosting", "linear"])
def test_procova_equals_statsmodels_with_score(split, model):
    hist, trial = split
    m = fit_prognostic_model(hist, outcome="log_rfs", features=FEATURES, model=model,
                             rng=np.random.default_rng(1))
    res = procova_test(trial, outcome="log_rfs", arm="horTh", treated_value="yes", prognostic_model=m,
                       features=FEATURES)
    score = m.predict(trial[FEATURES])
    tr = (trial.horTh == "yes").to_numpy(float)
    y = trial.log_rfs.to_numpy()
    fit = sm.OLS(y, np.column_stack([np.ones(len(y)), tr, score])).fit()
    raw = sm.OLS(y, np.column_stack([np.ones(len(y)), tr])).fit()
    np.testing.assert_allclose(res.details["coef"], fit.params, **TOL)
    np.testing.assert_allclose(res.details["coef_se"], fit.bse, **TOL)
    np.testing.assert_allclose([res.estimate, res.p_value, res.ci_low, res.ci_high],
                               [fit.params[1], fit.pvalues[1], *fit.conf_int()[1]], **TOL)
    np.testing.assert_allclose([res.details["unadjusted_estimate"], res.details["unadjusted_se"],
                                res.details["unadjusted_p"]], [raw.params[1], raw.bse[1], raw.pvalues[1]], **TOL)
    rho = np.corrcoef(score[tr == 0], y[tr == 0])[0, 1]
    n = len(y)
    np.testing.assert_allclose([res.details["rho_control"], res.details["variance_reduction"],
                                res.details["n_procova_same_power"], res.details["n_unadjusted_same_power"]],
                               [rho, 1 - rho ** 2, (1 - rho ** 2) * n, n / (1 - rho ** 2)], **TOL)
    assert res.details["coef_names"] == ["Intercept", "treated", "prognostic_score"]
    assert res.details["n_unadjusted"] == n


def test_procova_callable_model_and_extra_covariate(btb):
    """A callable ``frame -> predictions`` is a prognostic model; extra covariates enter the ANCOVA."""
    d = btb.dropna(subset=["bdi.8m"])
    res = procova_test(d, outcome="bdi.8m", arm="treatment", treated_value="BtheB",
                       prognostic_model=lambda f: 0.6 * f["bdi.pre"] + 3.0, features=["bdi.pre"],
                       covariates=["drug"])
    fit = smf.ols("y ~ tr + s + C(drug)", d.assign(y=d["bdi.8m"], tr=(d.treatment == "BtheB").astype(float),
                                                   s=0.6 * d["bdi.pre"] + 3.0)).fit()
    ref = ["Intercept", "tr", "s", "C(drug)[T.Yes]"]
    np.testing.assert_allclose(res.details["coef"], fit.params[ref].to_numpy(), **TOL)
    np.testing.assert_allclose(res.details["coef_se"], fit.bse[ref].to_numpy(), **TOL)
    assert res.details["coef_names"] == ["Intercept", "treated", "prognostic_score", "drug[T.Yes]"]
    with pytest.raises(InvalidDataError, match="one predicted control outcome per patient"):
        procova_test(d, outcome="bdi.8m", arm="treatment", treated_value="BtheB",
                     prognostic_model=lambda f: np.zeros(3), features=["bdi.pre"])


def test_fit_prognostic_model_is_seeded(split):
    hist, trial = split
    p = [fit_prognostic_model(hist, outcome="log_rfs", features=FEATURES, rng=np.random.default_rng(s))
         .predict(trial[FEATURES]) for s in (4, 4, 5)]
    np.testing.assert_array_equal(p[0], p[1])              # same generator seed: identical model
    assert np.abs(p[0] - p[2]).max() > 1e-6                # subsampling differs with the seed
    with pytest.raises(InvalidDataError, match="use one of"):
        fit_prognostic_model(hist, outcome="log_rfs", features=FEATURES, model="forest",
                             rng=np.random.default_rng(0))


def test_procova_se_ratio_matches_one_minus_rho_squared():
    """Simulated trials, known score-outcome correlation rho = 0.6 (score ~ N(0,1), y = rho s + e):
    E[(se_adj/se_unadj)^2] = (1 - rho^2)(1 + O(2/N)). With R = 2,000 and N = 200 the Monte Carlo SE of the mean
    ratio is ~0.2 % and the finite-sample term ~1 %; tolerance 3 % relative.

    Per replicate the ratio is exactly ``(1 - rho_pooled^2) (N-2)/(N-3) (1 + d^2 / (S_ss (1/n0 + 1/n1)))``
    (``d``: difference in mean score between arms, ``S_ss``: within-arm score sum of squares), checked to 1e-10."""
    rng = np.random.default_rng(11)
    R, N, rho = 2000, 200, 0.6
    s = rng.normal(size=(R, N))
    y = rho * s + np.sqrt(1 - rho ** 2) * rng.normal(size=(R, N))
    x = rng.random((R, N)) < 0.5
    res = procova_batched(y, x, s)
    ratio = res.details["se_ratio_squared"]
    assert abs(ratio.mean() / (1 - rho ** 2) - 1) < 0.03
    assert abs(res.details["variance_reduction"].mean() / (1 - rho ** 2) - 1) < 0.03
    n0, n1 = (~x).sum(axis=1), x.sum(axis=1)
    m0, m1 = (s * ~x).sum(axis=1) / n0, (s * x).sum(axis=1) / n1
    sss = (((s - np.where(x, m1[:, None], m0[:, None])) ** 2)).sum(axis=1)
    imbalance = (m1 - m0) ** 2 / (sss * (1 / n0 + 1 / n1))
    exact = (1 - res.details["rho_pooled"] ** 2) * (N - 2) / (N - 3) * (1 + imbalance)
    np.testing.assert_allclose(ratio, exact, rtol=1e-10)


def _band(k, level=0.999):
    """Binomial acceptance band for a 0.05 rejection rate over ``k`` replicates."""
    half = stats.norm.ppf(0.5 + level / 2) * np.sqrt(0.05 * 0.95 / k)
    return 0.05 - half, 0.05 + half


def test_procova_type_one_error_simulated_null():
    """No treatment effect, score correlated 0.7 with the outcome, N = 100, R = 4,000 replicates: rejection
    rate inside the 99.9 % binomial band around 0.05 (+/- 0.011)."""
    rng = np.random.default_rng(12)
    R, N = 4000, 100
    s = rng.normal(size=(R, N))
    y = 0.7 * s + np.sqrt(0.51) * rng.standard_t(5, size=(R, N))
    x = rng.random((R, N)) < 0.5
    rate = procova_batched(y, x, s).rejected(0.05).mean()
    lo, hi = _band(R)
    assert lo <= rate <= hi, (rate, lo, hi)


def test_procova_type_one_error_by_rerandomization(split):
    """Real trial half of GBSG2 with its outcome fixed and the arm re-randomized 2,000 times (the null holds
    by construction); gradient-boosting score. Rejection rate inside the 99.9 % band (+/- 0.016)."""
    hist, trial = split
    m = fit_prognostic_model(hist, outcome="log_rfs", features=FEATURES, rng=np.random.default_rng(1))
    score = m.predict(trial[FEATURES])
    rng = np.random.default_rng(13)
    R, N = 2000, len(trial)
    x = rng.permuted(np.broadcast_to(np.arange(N) < N // 2, (R, N)), axis=1)
    res = procova_batched(np.broadcast_to(trial.log_rfs.to_numpy(), (R, N)), x, score)
    lo, hi = _band(R)
    assert lo <= res.rejected(0.05).mean() <= hi
