"""Stratified log-rank, covariate-adjusted (stratified) Cox, Kaplan-Meier medians and RMST.

References: statsmodels computed live (survdiff with strata, PHReg with strata, SurvfuncRight.quantile_ci) and R
survival 3.5.3 values stored under tests/analysis/results/tte_*.csv by the tte_*.R scripts there (survdiff,
coxph, quantile.survfit / print.survfit, summary(survfit, rmean=tau)). Real data: VA lung, GBSG2 (tests/data).
Batched functions are checked against the single-dataset ones and per-replicate statsmodels fits on simulated
replicate batches (own generator) that include undefined replicates.
"""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import SurvfuncRight, survdiff

from analysis.estimators import cox_batched, logrank_batched
from analysis.estimators.cox_adjusted import cox_adjusted_batched, cox_adjusted_test, design_matrix
from analysis.estimators.km import km_median_batched, km_summary
from analysis.estimators.logrank_stratified import logrank_stratified_batched, logrank_stratified_test
from analysis.estimators.rmst import rmst_batched, rmst_test
from cohorts.errors import InvalidDataError, UnknownNameError

DATA = Path(__file__).resolve().parents[1] / "data"
RESULTS = Path(__file__).resolve().parent / "results"
SM = dict(rtol=1e-6, atol=1e-9)         # against statsmodels (live)
RREF = dict(rtol=1e-8, atol=1e-10)      # against stored R values (17 significant digits)
SAME = dict(rtol=1e-10, atol=1e-12)     # batched vs single replicate
VA = ("time_days", "death", "Treatment", "test")
GB = ("rfs_days", "event", "horTh", "yes")


@pytest.fixture(scope="module")
def va():
    return pd.read_csv(DATA / "va_lung.csv")


@pytest.fixture(scope="module")
def gbsg():
    df = pd.read_csv(DATA / "gbsg2.csv")
    return df.assign(meno_grade=df["menostat"] + ":" + df["tgrade"])


def r_ref(name):
    """Stored R output (long format) as {(dataset, analysis, group, quantity): value}; NA -> NaN."""
    df = pd.read_csv(RESULTS / f"tte_{name}.csv", comment="#", keep_default_na=False)
    df["group"] = df["group"].astype(str)
    value = pd.to_numeric(df["value"].replace("NA", np.nan))
    return dict(zip(zip(df["dataset"], df["analysis"], df["group"], df["quantity"]), value))


def simulate(rng, R=40, N=80, tied=False, strata=3):
    """Exponential event times with a treatment effect and two covariates, dropout and follow-up censoring."""
    treated = rng.random((R, N)) < 0.5
    cov = np.stack([rng.normal(60, 10, (R, N)), rng.random((R, N)) < 0.4], axis=2).astype(float)
    s = rng.integers(0, strata, (R, N))
    lp = np.log(0.7) * treated + 0.03 * (cov[..., 0] - 60) + 0.5 * cov[..., 1] + 0.3 * s
    t_event = rng.exponential(10.0, (R, N)) * np.exp(-lp)
    t_drop = rng.uniform(0, 60, (R, N))
    time = np.minimum(np.minimum(t_event, t_drop), 24.0)
    event = t_event <= np.minimum(t_drop, 24.0)
    if tied:
        time = np.ceil(time)
    return time, event, treated, cov, s


def spoil(time, event, treated, cov=None):
    """Make replicates 0-3 undefined: one treated patient; no treated events; no events; a constant covariate."""
    time, event, treated = time.copy(), event.copy(), treated.copy()
    treated[0] = False
    treated[0, 0] = True
    event[1] &= ~treated[1]
    event[2] = False
    if cov is not None:
        cov = cov.copy()
        cov[3, :, 0] = 5.0
    return time, event, treated, cov


# ---------------------------------------------------------------- stratified log-rank


@pytest.mark.parametrize("dataset,cols,strata", [("va_lung", VA, "Celltype"), ("va_lung", VA, "Prior_therapy"),
                                                 ("gbsg2", GB, "tgrade"), ("gbsg2", GB, "meno_grade")])
def test_logrank_stratified_equals_survdiff_and_R(dataset, cols, strata, va, gbsg):
    df = va if dataset == "va_lung" else gbsg
    t, e, arm, tv = cols
    res = logrank_stratified_test(df, time=t, event=e, arm=arm, treated_value=tv, strata=strata)
    chisq, p = survdiff(df[t].to_numpy(), df[e].to_numpy(), (df[arm] == tv).to_numpy(),
                        strata=df[strata].to_numpy())
    np.testing.assert_allclose([res.statistic, res.p_value], [chisq, p], **SM)
    ref = r_ref("logrank_stratified")
    label = "strata=" + ("menostat:tgrade" if strata == "meno_grade" else strata)
    np.testing.assert_allclose([res.statistic, res.p_value, res.details["observed_minus_expected"],
                                res.details["variance"]],
                               [ref[dataset, label, "", "chisq"], ref[dataset, label, "", "p_value"],
                                ref[dataset, label, "treated", "observed_minus_expected"],
                                ref[dataset, label, "treated", "variance"]], **RREF)
    o_e, v = res.details["observed_minus_expected"], res.details["variance"]
    np.testing.assert_allclose([res.estimate, res.ci_low, res.ci_high],
                               np.exp(o_e / v + np.array([0, -1, 1]) * 1.959963984540054 / np.sqrt(v)), **SAME)
    assert res.details["n_strata"] == df[strata].nunique() and res.details["rows_dropped"] == 0


@pytest.mark.parametrize("tied", [False, True])
def test_logrank_stratified_batched_equals_single_and_survdiff(tied):
    time, event, treated, _, s = simulate(np.random.default_rng(31 + tied), R=30, tied=tied)
    time, event, treated, _ = spoil(time, event, treated)
    time[5, :7] = np.nan                                     # non-analysable rows
    res = logrank_stratified_batched(time, event, treated, s * 7 - 3)   # any integer codes
    assert np.isnan(res.p_value[[0, 2]]).all() and np.isnan(res.estimate[[0, 2]]).all()
    for r in range(len(time)):
        one = logrank_stratified_batched(time[r], event[r], treated[r], s[r])
        np.testing.assert_allclose([one.statistic[0], one.estimate[0]], [res.statistic[r], res.estimate[r]],
                                   **SAME, equal_nan=True)
        if r in (0, 2):
            continue
        ok = np.isfinite(time[r])
        chisq, p = survdiff(time[r][ok], event[r][ok].astype(float), treated[r][ok], strata=s[r][ok])
        np.testing.assert_allclose([res.statistic[r], res.p_value[r]], [chisq, p], **SM)


def test_logrank_stratified_one_stratum_is_logrank():
    time, event, treated, _, _ = simulate(np.random.default_rng(4), R=20, tied=True)
    a = logrank_stratified_batched(time, event, treated, np.zeros(time.shape, dtype=int))
    b = logrank_batched(time, event, treated)
    np.testing.assert_allclose([a.statistic, a.estimate, a.ci_low], [b.statistic, b.estimate, b.ci_low], **SAME)


def test_logrank_stratified_bad_input(va):
    with pytest.raises(InvalidDataError, match="Celltyp"):
        logrank_stratified_test(va, time="time_days", event="death", arm="Treatment", treated_value="test",
                                strata="Celltyp")
    res = logrank_stratified_test(va.assign(Celltype=va["Celltype"].where(va.index >= 5)), time="time_days",
                                  event="death", arm="Treatment", treated_value="test", strata="Celltype")
    assert res.details["rows_dropped"] == 5 and sum(res.n_per_arm) == len(va) - 5


# ---------------------------------------------------------------- adjusted / stratified Cox

COX_CASES = [("va_lung", VA, ("Karnofsky_score", "Celltype"), "Prior_therapy"),
             ("gbsg2", GB, ("age", "tsize", "pnodes"), "tgrade"),
             ("va_lung", VA, ("Karnofsky_score", "Celltype"), None),
             ("gbsg2", GB, ("age", "tsize", "pnodes"), None)]


def _phreg(time, x, event, ties, strata=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return PHReg(time, x, status=event.astype(float), ties=ties, strata=strata).fit()


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("dataset,cols,covariates,strata", COX_CASES)
def test_cox_adjusted_equals_phreg(dataset, cols, covariates, strata, ties, va, gbsg):
    df = va if dataset == "va_lung" else gbsg
    t, e, arm, tv = cols
    res = cox_adjusted_test(df, time=t, event=e, arm=arm, treated_value=tv, covariates=covariates,
                            strata=strata, ties=ties, alpha=0.1)
    z, names, refs = design_matrix(df, covariates)
    x = np.column_stack([(df[arm] == tv).to_numpy(float), z])
    fit = _phreg(df[t].to_numpy(), x, df[e].to_numpy(), ties, None if strata is None else df[strata].to_numpy())
    np.testing.assert_allclose(res.details["coef"], fit.params, **SM)
    np.testing.assert_allclose(res.details["se_coef"], fit.bse, **SM)
    np.testing.assert_allclose([res.p_value, res.statistic], [fit.pvalues[0], fit.tvalues[0]], **SM)
    np.testing.assert_allclose([res.ci_low, res.ci_high], np.exp(fit.conf_int(alpha=0.1)[0]), **SM)
    np.testing.assert_allclose(res.details["loglik"], fit.llf, **SM)
    assert res.details["coef_names"] == ["treated", *names] and res.details["converged"]
    assert ties.capitalize() in res.method and ("stratified" in res.method) == (strata is not None)
    if dataset == "va_lung":
        assert refs == {"Celltype": "adeno"} and names[1:] == ["Celltype[large]", "Celltype[smallcell]",
                                                               "Celltype[squamous]"]


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("dataset,cols,covariates,strata", COX_CASES[:2])
def test_cox_adjusted_equals_R_coxph(dataset, cols, covariates, strata, ties, va, gbsg):
    df = va if dataset == "va_lung" else gbsg
    t, e, arm, tv = cols
    res = cox_adjusted_test(df, time=t, event=e, arm=arm, treated_value=tv, covariates=covariates,
                            strata=strata, ties=ties)
    ref = r_ref("cox_adjusted")
    label = f"{arm} + {' + '.join(covariates)} + strata({strata}) ties={ties}"
    rows = [k for k in ref if k[:2] == (dataset, label) and k[3] == "coef"]
    assert len(rows) == len(res.details["coef"])
    np.testing.assert_allclose(res.details["coef"], [ref[k] for k in rows], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(res.details["se_coef"], [ref[k[:3] + ("se",)] for k in rows], rtol=1e-6)
    np.testing.assert_allclose(res.details["loglik"], ref[dataset, label, "", "loglik"], rtol=1e-9)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_cox_adjusted_batched_equals_phreg_loop(ties):
    time, event, treated, cov, s = simulate(np.random.default_rng(41), R=24, tied=True)
    time, event, treated, cov = spoil(time, event, treated, cov)
    cov[6, :5, 1] = np.nan                                   # rows not analysable in replicate 6
    res = cox_adjusted_batched(time, event, treated, cov, s, ties=ties)
    assert np.isnan(res.estimate[:4]).all() and np.isnan(res.details["coef"][:4]).all()
    assert np.isfinite(res.estimate[4:]).all() and res.details["converged"][4:].all()
    for r in range(len(time)):
        one = cox_adjusted_batched(time[r], event[r], treated[r], cov[r], s[r], ties=ties)
        np.testing.assert_allclose(one.details["coef"][0], res.details["coef"][r], **SAME, equal_nan=True)
        if r < 4:
            continue
        ok = np.isfinite(cov[r]).all(axis=1)
        fit = _phreg(time[r][ok], np.column_stack([treated[r][ok], cov[r][ok]]).astype(float), event[r][ok],
                     ties, s[r][ok])
        np.testing.assert_allclose(res.details["coef"][r], fit.params, **SM)
        np.testing.assert_allclose(res.details["se_coef"][r], fit.bse, **SM)


def test_cox_adjusted_without_covariates_is_cox():
    time, event, treated, _, _ = simulate(np.random.default_rng(7), R=30, tied=True)
    for ties in ("efron", "breslow"):
        a = cox_adjusted_batched(time, event, treated, ties=ties)
        b = cox_batched(time, event, treated, ties=ties)
        np.testing.assert_allclose([a.details["log_hr"], a.details["se"], a.p_value],
                                   [b.details["log_hr"], b.details["se"], b.p_value], rtol=1e-8)


def test_cox_adjusted_infinite_covariate_effect_is_undefined():
    """A binary covariate whose "1" group has no events: the MLE is -inf (PHReg returns a huge value)."""
    time, event, treated, cov, _ = simulate(np.random.default_rng(9), R=3)
    event[0] &= cov[0, :, 1] == 0
    res = cox_adjusted_batched(time, event, treated, cov)
    assert np.isnan(res.estimate[0]) and not res.details["converged"][0] and np.isfinite(res.estimate[1:]).all()


def test_cox_adjusted_on_a_large_batch_equals_phreg():
    """200 replicates x 600 patients x 2 covariates (speed: bench/bench_estimators.py)."""
    time, event, treated, cov, _ = simulate(np.random.default_rng(5), R=200, N=600)
    res = cox_adjusted_batched(time, event, treated, cov)
    assert res.details["converged"].all()
    for r in (0, 199):
        fit = _phreg(time[r], np.column_stack([treated[r], cov[r]]).astype(float), event[r], "efron")
        np.testing.assert_allclose(res.details["coef"][r], fit.params, **SM)


def test_cox_adjusted_bad_input(va):
    kw = dict(time="time_days", event="death", arm="Treatment", treated_value="test")
    with pytest.raises(InvalidDataError, match="single|two levels"):
        cox_adjusted_test(va.assign(one="x"), covariates=["one"], **kw)
    with pytest.raises(InvalidDataError, match="constant"):
        cox_adjusted_test(va.assign(k=1.0), covariates=["k"], **kw)
    with pytest.raises(InvalidDataError, match="Karnofsky"):
        cox_adjusted_test(va, covariates=["Karnofsky"], **kw)
    with pytest.raises(UnknownNameError):
        cox_adjusted_test(va, covariates=["Karnofsky_score"], ties="exact", **kw)
    res = cox_adjusted_test(va.assign(Karnofsky_score=va["Karnofsky_score"].where(va.index >= 3)),
                            covariates="Karnofsky_score", **kw)
    assert res.details["rows_dropped"] == 3 and "reference = first sorted level" in res.details["coding"]


# ---------------------------------------------------------------- Kaplan-Meier medians

KM_CASES = [("va_lung", "time_days", "death", "Treatment"), ("va_lung", "time_days", "death", "Celltype"),
            ("va_lung", "time_days", "death", None), ("gbsg2", "rfs_days", "event", "horTh"),
            ("gbsg2", "rfs_days", "event", "tgrade"), ("toy", "time", "event", "arm")]
R_CONF = {"log-log": "log-log", "log": "log", "linear": "plain"}


@pytest.mark.parametrize("conf_type", list(R_CONF))
@pytest.mark.parametrize("dataset,t,e,arm", KM_CASES)
def test_km_summary_equals_R_quantile(dataset, t, e, arm, conf_type, va, gbsg):
    toy = pd.DataFrame({"time": [1, 2, 3, 4, 1, 2, 5, 6], "event": [1, 1, 1, 1, 1, 1, 0, 0],
                        "arm": list("aaaabbbb")})
    df = {"va_lung": va, "gbsg2": gbsg, "toy": toy}[dataset]
    out = km_summary(df, time=t, event=e, arm=arm, conf_type=conf_type)
    ref = r_ref("km")
    label = f"{arm or 1} conf.type={R_CONF[conf_type]}"
    for row in out.itertuples():
        key = (dataset, label, str(row.arm))
        assert (row.n, row.events) == (ref[key + ("n",)], ref[key + ("events",)])
        expect = [ref[key + (q,)] for q in ("median", "ci_low", "ci_high")]
        # R's NA (not reached) is inf here; times are data values or midpoints of two: exact up to rounding
        np.testing.assert_allclose([row.median, row.ci_low, row.ci_high], np.nan_to_num(expect, nan=np.inf),
                                   rtol=1e-12)
    assert len(out) == (1 if arm is None else df[arm].nunique())
    assert conf_type in out.attrs["method"]


@pytest.mark.parametrize("conf_type,sm_method", [("log-log", "cloglog"), ("log", "log"), ("linear", "linear")])
def test_km_ci_equals_statsmodels(conf_type, sm_method, va, gbsg):
    """statsmodels (SAS rule: the BC set's first point and the time after its last point) agrees on the CI limits
    except where that set is not an interval; its median uses S < 0.5 strictly, so it differs where the curve is
    exactly 0.5 (VA test arm: R and this module give the midpoint 52.5, statsmodels 52)."""
    for df, (t, e, arm, _) in ((va, VA), (gbsg, GB)):
        out = km_summary(df, time=t, event=e, arm=arm, conf_type=conf_type).set_index("arm")
        for level, d in df.groupby(arm):
            sf = SurvfuncRight(d[t].to_numpy(), d[e].to_numpy())
            with np.errstate(all="ignore"):
                lb, ub = sf.quantile_ci(0.5, method=sm_method)
            ours = out.loc[level, ["ci_low", "ci_high"]].to_numpy(float)
            if (conf_type, level) == ("log", "no"):
                # the Brookmeyer-Crowley set is not an interval here: the wide late "log" band contains 0.5 again
                # from the last event times on; statsmodels reports its last point (inf), R (and this module)
                # the first time the upper band falls to 0.5 (1814, checked against R above)
                assert ub == np.inf and ours[1] == 1814.0
                ub = ours[1]
            np.testing.assert_allclose(ours, [lb, ub], rtol=1e-12)
            if not np.isclose(sf.surv_prob, 0.5).any():
                assert out.loc[level, "median"] == sf.quantile(0.5)


def test_km_median_batched_equals_single():
    time, event, treated, _, _ = simulate(np.random.default_rng(13), R=25, N=40, tied=True)
    treated[0] = False                      # no treated patient: NaN
    event[1] &= ~treated[1]                 # no treated event: not reached (inf)
    for conf_type in ("log-log", "log", "linear"):
        res = km_median_batched(time, event, treated, conf_type=conf_type)
        assert np.isnan([res.median[0, 1], res.ci_low[0, 1], res.ci_high[0, 1]]).all() and res.n[0, 1] == 0
        assert np.isinf([res.median[1, 1], res.ci_high[1, 1]]).all() and np.isfinite(res.median[1, 0])
        for r in range(len(time)):
            one = km_median_batched(time[r], event[r], treated[r], conf_type=conf_type)
            for field in ("median", "ci_low", "ci_high", "n", "events"):
                np.testing.assert_array_equal(getattr(one, field)[0], getattr(res, field)[r])
        frame = res.to_frame()
        assert len(frame) == 2 * len(time) and list(frame.columns[-3:]) == ["median", "ci_low", "ci_high"]
    with pytest.raises(UnknownNameError):
        km_median_batched(time, event, treated, conf_type="plain")


# ---------------------------------------------------------------- RMST

RMST_CASES = [("va_lung", VA, "Treatment", 100), ("va_lung", VA, "Treatment", 365), ("va_lung", VA, "Treatment", 553),
              ("gbsg2", GB, "horTh", 365), ("gbsg2", GB, "horTh", 1000), ("gbsg2", GB, "horTh", 2000),
              ("gbsg2", GB, "horTh", 2563)]


@pytest.mark.parametrize("dataset,cols,label,tau", RMST_CASES)
def test_rmst_equals_R(dataset, cols, label, tau, va, gbsg):
    df = va if dataset == "va_lung" else gbsg
    t, e, arm, tv = cols
    res = rmst_test(df, time=t, event=e, arm=arm, treated_value=tv, tau=tau, alpha=0.1)
    ref = r_ref("rmst")
    control = sorted(set(df[arm]) - {tv})[0]
    key = (dataset, f"{label} tau={tau}")
    d = res.details
    np.testing.assert_allclose([d["rmst_control"], d["rmst_treated"], d["se_control"], d["se_treated"]],
                               [ref[key + (control, "rmean")], ref[key + (tv, "rmean")],
                                ref[key + (control, "se_rmean")], ref[key + (tv, "se_rmean")]], **RREF)
    se = np.hypot(d["se_control"], d["se_treated"])
    diff = d["rmst_treated"] - d["rmst_control"]
    np.testing.assert_allclose([res.estimate, d["se"], res.ci_low, res.ci_high],
                               [diff, se, diff - 1.6448536269514722 * se, diff + 1.6448536269514722 * se], **SAME)


def test_rmst_tau_beyond_followup(va):
    kw = dict(time="time_days", event="death", arm="Treatment", treated_value="test")
    with pytest.raises(InvalidDataError, match=r"Treatment='standard'.*553"):
        rmst_test(va, tau=600, **kw)
    with pytest.raises(InvalidDataError, match="negative"):
        rmst_test(va.assign(time_days=va["time_days"] - 10), tau=100, **kw)
    t, e, x = va["time_days"].to_numpy(), va["death"].to_numpy(bool), (va["Treatment"] == "test").to_numpy()
    res = rmst_batched(np.stack([t, t]), np.stack([e, e]), np.stack([x, x]), np.array([600.0, 500.0]))
    assert np.isnan(res.estimate[0]) and res.details["tau_beyond_followup"].tolist() == [True, False]
    np.testing.assert_allclose(res.details["max_time"][0], [553.0, 999.0])


def test_rmst_batched_equals_single():
    time, event, treated, _, _ = simulate(np.random.default_rng(17), R=25, N=50, tied=True)
    time, event, treated, _ = spoil(time, event, treated)    # 0: one treated patient; 2: no events (se = 0)
    time[4, treated[4]] = np.minimum(time[4, treated[4]], 6.0)  # 4: treated follow-up ends before tau
    res = rmst_batched(time, event, treated, tau=8.0)
    beyond = res.details["tau_beyond_followup"]
    assert beyond[4] and not np.delete(beyond, [0, 4]).any()
    assert np.isnan(res.estimate[[0, 2, 4]]).all() and np.isfinite(np.delete(res.estimate, [0, 2, 4])).all()
    for r in range(len(time)):
        one = rmst_batched(time[r], event[r], treated[r], tau=8.0)
        np.testing.assert_allclose([one.estimate[0], one.details["se"][0], one.p_value[0]],
                                   [res.estimate[r], res.details["se"][r], res.p_value[r]], **SAME, equal_nan=True)
