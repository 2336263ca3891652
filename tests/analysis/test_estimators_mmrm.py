"""MMRM and random-slope model: batched = single, single = independent references.

References: R nlme ``gls`` (unstructured covariance, REML) + emmeans Satterthwaite contrasts, and nlme ``lme`` /
lmerTest ``lmer`` for the random-slope model, stored in tests/analysis/results/mmrm_reference.json by
mmrm_reference.R next to it; statsmodels OLS (complete data: the MMRM reduces to per-visit ANCOVA) and
statsmodels ``MixedLM`` computed live. Data: Beat the Blues (BDI, 5 visits, dropout) and the ddI/ddC trial
(sqrt CD4, 5 visits) from tests/data, and simulated trials (own generator) for batched-vs-single checks.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats

from analysis.estimators.mmrm import cholesky_param, mmrm_batched, mmrm_test
from analysis.estimators.mmrm_fit import _Problem, pattern_stats
from analysis.estimators.random_slope import _cov_fn, random_slope_batched, random_slope_test
from cohorts.errors import InvalidDataError

DATA = Path(__file__).resolve().parents[1] / "data"
REF = json.loads((Path(__file__).parent / "results" / "mmrm_reference.json").read_text())
VISITS = np.array([0.0, 1, 2, 4, 6])


@pytest.fixture(scope="module")
def datasets():
    btb = pd.read_csv(DATA / "beat_the_blues.csv")
    cols = {"bdi.pre": 0, "bdi.2m": 2, "bdi.4m": 4, "bdi.6m": 6, "bdi.8m": 8}
    long = btb.melt(id_vars=["patient_id", "treatment"], value_vars=list(cols), var_name="v", value_name="bdi")
    long["month"] = long["v"].map(cols)
    aids = pd.read_csv(DATA / "aids_ddi_ddc_long.csv")
    return {"beat_the_blues": (long, dict(id="patient_id", visit="month", value="bdi", arm="treatment",
                                          treated_value="BtheB")),
            "aids": (aids, dict(id="pid", visit="time", value="num_CD4", arm="fac_drug", treated_value="ddI"))}


def simulate(rng, R=6, N=40, visits=VISITS):
    """Random intercepts and slopes, 25 % slower decline on treatment, dropout and missed visits."""
    V = len(visits)
    treated = rng.random((R, N)) < 0.5
    slope = rng.normal(-1.0, 0.5, (R, N)) * np.where(treated, 0.75, 1.0)
    y = rng.normal(36, 5, (R, N, 1)) + slope[..., None] * visits + rng.normal(0, 1.5, (R, N, V))
    y[np.arange(V) >= rng.integers(1, V + 3, (R, N))[..., None]] = np.nan
    y[..., 1:][rng.random((R, N, V - 1)) < 0.08] = np.nan
    return y, treated


def to_long(y, treated, visits=VISITS):
    N, V = y.shape
    return pd.DataFrame({"pid": np.repeat(np.arange(N), V), "week": np.tile(visits, N), "score": y.ravel(),
                         "arm": np.repeat(np.where(treated, "drug", "placebo"), V)})


# ---------------------------------------------------------------- MMRM vs R nlme::gls + emmeans (stored)
@pytest.mark.parametrize("name", ["beat_the_blues", "aids"])
def test_mmrm_equals_r_gls_emmeans(name, datasets):
    data, cols = datasets[name]
    ref = REF["mmrm"][name]
    res = mmrm_test(data, **cols, alpha=0.05)
    assert res.details["converged"]
    assert res.n_per_arm == (ref["n_control"], ref["n_treated"])
    np.testing.assert_allclose(res.details["visit_times"], ref["visits"], rtol=0, atol=0)
    # R's optimum is within ~3e-6 relative of ours (gls/optim stops at a gradient of ~1e-3; ours ~1e-12)
    np.testing.assert_allclose(res.details["visit_estimate"], ref["estimate"], rtol=2e-5)
    np.testing.assert_allclose(res.details["visit_se"], ref["se"], rtol=1e-5)
    np.testing.assert_allclose(res.details["sigma"], ref["sigma"], rtol=1e-5)
    # nlme's REML logLik omits + log|X'X| / 2 (ours includes it so that it does not depend on the design coding)
    np.testing.assert_allclose(res.details["loglik"] - ref["half_logdet_xtx"], ref["loglik"], rtol=0, atol=1e-6)
    # Satterthwaite: emmeans' formula with an accurate (numDeriv) Hessian agrees to < 1e-4 ...
    np.testing.assert_allclose(res.details["visit_df"], ref["df_numderiv"], rtol=1e-4)
    # ... while emmeans' own df use nlme's fdHess apVar, off by up to 5.2 % (Beat the Blues, last visit)
    np.testing.assert_allclose(res.details["visit_df"], ref["df"], rtol=0.06)
    t = ref["estimate"][-1] / ref["se"][-1]
    p_ref = 2 * stats.t.sf(abs(t), ref["df_numderiv"][-1])
    q_ref = stats.t.ppf(0.975, ref["df_numderiv"][-1])
    np.testing.assert_allclose([res.estimate, res.details["se"], res.statistic, res.p_value],
                               [ref["estimate"][-1], ref["se"][-1], t, p_ref], rtol=2e-5)
    np.testing.assert_allclose([res.ci_low, res.ci_high],
                               ref["estimate"][-1] + np.array([-1, 1]) * q_ref * ref["se"][-1], rtol=2e-5)


def test_mmrm_complete_data_is_per_visit_ancova():
    """With no missing data the REML GLS fit is OLS per visit and the Satterthwaite df is exactly n - 3."""
    rng = np.random.default_rng(11)
    treated = rng.random((3, 50)) < 0.5
    y = rng.normal(30, 4, (3, 50, 1)) + rng.normal(0, 2, (3, 50, 5)) - 0.8 * VISITS + 1.5 * treated[..., None]
    res = mmrm_batched(y, treated, VISITS, alpha=0.1)
    for r in range(3):
        change = y[r, :, 1:] - y[r, :, :1]
        x = np.column_stack([np.ones(50), treated[r], y[r, :, 0]])
        fits = [sm.OLS(change[:, k], x).fit() for k in range(4)]
        np.testing.assert_allclose(res.details["visit_estimate"][r], [f.params[1] for f in fits], rtol=1e-9)
        np.testing.assert_allclose(res.details["visit_se"][r], [f.bse[1] for f in fits], rtol=1e-8)
        np.testing.assert_allclose(res.details["visit_df"][r], 47.0, rtol=1e-8)
        np.testing.assert_allclose([res.p_value[r], res.statistic[r], res.ci_low[r], res.ci_high[r]],
                                   [fits[-1].pvalues[1], fits[-1].tvalues[1], *fits[-1].conf_int(0.1)[1]],
                                   rtol=1e-8)


def test_mmrm_single_visit_is_completers_ancova():
    """With one post-baseline visit (missing values included) the MMRM is the completers' ANCOVA."""
    y, treated = simulate(np.random.default_rng(8), R=4, N=50)
    y = y[..., [0, 3]]
    res = mmrm_batched(y, treated, VISITS[[0, 3]])
    for r in range(4):
        ok = np.isfinite(y[r]).all(-1)
        fit = sm.OLS(y[r, ok, 1] - y[r, ok, 0], np.column_stack([np.ones(ok.sum()), treated[r, ok], y[r, ok, 0]])).fit()
        np.testing.assert_allclose([res.estimate[r], res.details["se"][r], res.details["df"][r], res.p_value[r]],
                                   [fit.params[1], fit.bse[1], fit.df_resid, fit.pvalues[1]], rtol=1e-8)


# ---------------------------------------------------------------- batched = single (R = 1 and long data)
@pytest.mark.parametrize("fn, single", [(mmrm_batched, mmrm_test), (random_slope_batched, random_slope_test)])
def test_batched_equals_single(fn, single):
    y, treated = simulate(np.random.default_rng(3))
    treated[2] = False                                  # undefined: no treated patient
    y[3, :, 1:] = np.nan                                # MMRM undefined: no post-baseline value
    treated[4] = True                                   # undefined: a single control patient
    treated[4, 0] = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")                  # undefined replicates: NaN, never a warning
        res = fn(y, treated, VISITS, alpha=0.1)
    if fn is mmrm_batched:                              # analysable: a baseline and a later value
        use = np.isfinite(y[..., 0]) & np.isfinite(y[..., 1:]).any(-1)
    else:                                               # any value
        use = np.isfinite(y).any(-1)
    expected_n = {r: ((use[r] & ~treated[r]).sum(), (use[r] & treated[r]).sum()) for r in (2, 3, 4)}
    assert expected_n[2][1] == 0 and expected_n[4][0] == 1
    for r in range(len(y)):
        got = [res.estimate[r], res.ci_low[r], res.ci_high[r], res.p_value[r], res.statistic[r],
               res.details["se"][r], res.details["df"][r], res.details["loglik"][r]]
        if r in expected_n:                             # (random slope, replicate 3: all at time 0, no slope)
            assert np.isnan(got).all() and not res.details["converged"][r]
            assert tuple(res.n_per_arm[r]) == expected_n[r]
            continue
        assert res.details["converged"][r]
        row = fn(y[r:r + 1], treated[r:r + 1], VISITS, alpha=0.1)
        one = single(to_long(y[r], treated[r]), id="pid", visit="week", value="score", arm="arm",
                     treated_value="drug", alpha=0.1)
        want = [row.estimate[0], row.ci_low[0], row.ci_high[0], row.p_value[0], row.statistic[0],
                row.details["se"][0], row.details["df"][0], row.details["loglik"][0]]
        np.testing.assert_allclose(got, want, rtol=1e-8)
        np.testing.assert_allclose(got[:7], [one.estimate, one.ci_low, one.ci_high, one.p_value, one.statistic,
                                             one.details["se"], one.details["df"]], rtol=1e-8)
        assert tuple(res.n_per_arm[r]) == one.n_per_arm


def test_unbounded_likelihood_and_boundary_fits():
    # MMRM: the last visit's change equals the previous one + 1 for every patient seen there, so a singular
    # covariance fits it exactly and the REML likelihood is unbounded: undefined (NaN), no warning
    y, treated = simulate(np.random.default_rng(5), R=2, N=60)
    y[1, :, -1] = np.where(np.isfinite(y[1, :, -2]), y[1, :, -2] + 1.0, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = mmrm_batched(y, treated, VISITS)
    assert res.details["converged"][0] and np.isfinite(res.p_value[0])
    assert not res.details["converged"][1] and np.isnan([res.estimate[1], res.p_value[1], res.details["df"][1]]).all()
    # random slope: a replicate whose REML estimate of G is singular (intercept and slope perfectly correlated)
    # is a converged boundary fit
    y, treated = simulate(np.random.default_rng(4), R=2)
    res = random_slope_batched(y[:1], treated[:1], VISITS)
    g = res.details["G"][0]
    assert res.details["converged"][0] and res.details["iterations"][0] < 30
    assert abs(g[0, 1]) / np.sqrt(g[0, 0] * g[1, 1]) > 0.999
    assert np.isfinite([res.estimate[0], res.p_value[0], res.details["df"][0]]).all()


def test_asymptotic_df_is_normal():
    y, treated = simulate(np.random.default_rng(4), R=2)
    for fn in (mmrm_batched, random_slope_batched):
        a, b = fn(y, treated, VISITS, df="asymptotic"), fn(y, treated, VISITS)
        np.testing.assert_array_equal(a.estimate, b.estimate)
        assert np.isinf(a.details["df"]).all()
        np.testing.assert_allclose(a.p_value, 2 * stats.norm.sf(np.abs(a.statistic)), rtol=1e-12)
        np.testing.assert_allclose(a.ci_high - a.estimate, stats.norm.ppf(0.975) * a.details["se"], rtol=1e-12)


# ---------------------------------------------------------------- random slope vs statsmodels (live) and R
def _mixedlm(long):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = smf.mixedlm("value ~ time + time:treated", long, groups=long["id"], re_formula="~time").fit(reml=True)
    assert fit.converged
    # statsmodels' bse_fe invert the full observed Hessian (fixed/covariance cross terms included: 3 % larger
    # on Beat the Blues); nlme, lme4 and we use (X' V^-1 X)^-1, so rebuild that from statsmodels' estimates
    info = np.zeros((3, 3))
    for _, g in long.groupby("id"):
        x = np.column_stack([np.ones(len(g)), g["time"], g["time"] * g["treated"]])
        v = x[:, :2] @ fit.cov_re.to_numpy() @ x[:, :2].T + fit.scale * np.eye(len(g))
        info += x.T @ np.linalg.solve(v, x)
    return fit, np.sqrt(np.diag(np.linalg.inv(info)))


@pytest.mark.parametrize("name", ["beat_the_blues", "simulated"])
def test_random_slope_equals_statsmodels_mixedlm(name, datasets):
    if name == "simulated":
        y, treated = simulate(np.random.default_rng(7), R=1, N=80)
        data, cols = to_long(y[0], treated[0]), dict(id="pid", visit="week", value="score", arm="arm",
                                                     treated_value="drug")
    else:
        data, cols = datasets[name]
    res = random_slope_test(data, **cols)
    long = pd.DataFrame({"id": data[cols["id"]], "time": data[cols["visit"]], "value": data[cols["value"]],
                         "treated": (data[cols["arm"]] == cols["treated_value"]).astype(float)}).dropna()
    fit, bse = _mixedlm(long)
    np.testing.assert_allclose(res.details["fe_params"], fit.fe_params, rtol=1e-4)     # achieved <= 8e-6
    np.testing.assert_allclose(res.details["bse"], bse, rtol=1e-4)                      # achieved <= 4e-6
    np.testing.assert_allclose(res.details["G"], fit.cov_re, rtol=1e-3)                 # achieved <= 4e-4
    np.testing.assert_allclose(res.details["sigma2"], fit.scale, rtol=1e-4)


@pytest.mark.parametrize("name", ["beat_the_blues", "aids"])
def test_random_slope_equals_r_lme_and_lmertest(name, datasets):
    data, cols = datasets[name]
    ref = REF["random_slope"][name]
    res = random_slope_test(data, **cols)
    assert res.details["converged"]
    np.testing.assert_allclose(res.details["fe_params"], ref["fe_params"], rtol=5e-6)  # R stops ~1e-6 short
    np.testing.assert_allclose(res.details["bse"], ref["bse"], rtol=5e-6)
    np.testing.assert_allclose(res.details["G"], ref["G"], rtol=5e-5)
    np.testing.assert_allclose(res.details["sigma2"], ref["sigma2"], rtol=5e-6)
    np.testing.assert_allclose(res.details["loglik"] - ref["half_logdet_xtx"], ref["loglik"], rtol=0, atol=1e-6)
    # lmerTest's Satterthwaite df (numDeriv Hessian of the REML deviance) and p for time:treated
    np.testing.assert_allclose(res.details["df"], ref["lmer_satterthwaite_df"][2], rtol=1e-6)
    np.testing.assert_allclose(res.p_value, ref["lmer_p_value"][2], rtol=1e-5)


# ---------------------------------------------------------------- the REML engine's analytic derivatives
@pytest.mark.parametrize("model", ["mmrm", "random_slope"])
def test_gradient_and_hessian_equal_finite_differences(model):
    y, treated = simulate(np.random.default_rng(9), R=2, N=40)
    rng = np.random.default_rng(10)
    if model == "mmrm":
        K = 4
        base = y[:, :, 0]
        resp = y[:, :, 1:] - base[..., None]
        z = np.stack([np.ones_like(base), treated, base - 36.0], axis=-1)
        A = np.zeros((3, K, 3 * K))
        for m in range(3):
            A[m, np.arange(K), np.arange(K) * 3 + m] = 1.0
        use = np.isfinite(base) & (~np.isnan(resp)).any(-1)
        cov = lambda th: cholesky_param(th, K)                         # noqa: E731
        theta = rng.normal(0, 0.3, (2, 10)) + np.r_[1, 0, 1, 0, 0, 1, 0, 0, 0, 1]     # log diagonal near 1
    else:
        resp, z, use = y, np.stack([np.ones(treated.shape), treated], axis=-1), (~np.isnan(y)).any(-1)
        A = np.zeros((2, 5, 3))
        A[0, :, 0], A[0, :, 1], A[1, :, 2] = 1.0, VISITS, VISITS
        cov, theta = _cov_fn(VISITS), rng.normal(0, 0.3, (2, 4)) + np.r_[1.5, 0, -0.5, 0.3]
    prob = _Problem(pattern_stats(resp, z, use), A, cov)
    cur = prob.evaluate(theta, derivatives=True)
    h = 1e-5
    eye = np.eye(theta.shape[1]) * h
    fd_g = np.stack([(prob.evaluate(theta + e)["loglik"] - prob.evaluate(theta - e)["loglik"]) / (2 * h)
                     for e in eye], axis=1)
    fd_h = np.stack([(prob.evaluate(theta + e, True)["grad"] - prob.evaluate(theta - e, True)["grad"]) / (2 * h)
                     for e in eye], axis=1)
    scale = np.abs(cur["hess"]).max()
    np.testing.assert_allclose(cur["grad"], fd_g, rtol=0, atol=1e-6 * scale)
    np.testing.assert_allclose(cur["hess"], fd_h, rtol=0, atol=1e-6 * scale)


# ---------------------------------------------------------------- errors
def test_bad_input_raises(datasets):
    data, cols = datasets["beat_the_blues"]
    with pytest.raises(InvalidDataError, match="column 'bdi_score' not found"):
        mmrm_test(data, **{**cols, "value": "bdi_score"})
    with pytest.raises(InvalidDataError, match="treated_value 'drug' does not occur"):
        random_slope_test(data, **{**cols, "treated_value": "drug"})
    with pytest.raises(InvalidDataError, match="baseline and at least one later visit"):
        mmrm_test(data[data["month"] == 0], **cols)
    with pytest.raises(ValueError, match="df must be one of"):
        mmrm_test(data, **cols, df="kenward-roger")
    with pytest.raises(ValueError, match="alpha"):
        random_slope_batched(np.zeros((1, 4, 5)), np.zeros((1, 4), bool), VISITS, alpha=1.5)
