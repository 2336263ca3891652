"""Single-dataset estimators on real trial data (tests/data) equal statsmodels to 1e-6.

References are computed live with statsmodels (an independent implementation): OLS, ttest_ind /
CompareMeans (usevar="unequal"), survdiff, PHReg, proportions_ztest / confint_proportions_2indep.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import survdiff
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, ttest_ind

from analysis.estimators import (ancova_test, cox_test, logrank_test, proportions_test, slope_test,
                                 ttest_test)
from cohorts.errors import InvalidDataError

DATA = Path(__file__).resolve().parents[1] / "data"
TOL = dict(rtol=1e-6, atol=1e-9)


@pytest.fixture(scope="module")
def va():
    return pd.read_csv(DATA / "va_lung.csv")


@pytest.fixture(scope="module")
def gbsg():
    return pd.read_csv(DATA / "gbsg2.csv")


@pytest.fixture(scope="module")
def aids():
    return pd.read_csv(DATA / "aids_ddi_ddc_long.csv")


def _close(a, b):
    np.testing.assert_allclose(a, b, **TOL)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("name", ["va", "gbsg"])
def test_cox_equals_phreg(name, ties, va, gbsg):
    df, cols = {"va": (va, ("time_days", "death", "Treatment", "test")),
                "gbsg": (gbsg, ("rfs_days", "event", "horTh", "yes"))}[name]
    t, e, arm, tv = cols
    res = cox_test(df, time=t, event=e, arm=arm, treated_value=tv, ties=ties, alpha=0.1)
    x = (df[arm] == tv).astype(float).to_numpy()[:, None]
    ref = PHReg(df[t].to_numpy(), x, status=df[e].to_numpy(), ties=ties).fit()
    _close(res.details["log_hr"], ref.params[0])
    _close(res.details["se"], ref.bse[0])
    _close(res.p_value, ref.pvalues[0])
    _close(res.statistic, ref.tvalues[0])
    _close([res.ci_low, res.ci_high], np.exp(ref.conf_int(alpha=0.1)[0]))
    assert res.n_per_arm == ((x[:, 0] == 0).sum(), (x[:, 0] == 1).sum())


def test_cox_va_lung_published(va):
    """Kalbfleisch & Prentice: HR test vs standard 1.018 (0.714-1.450), p = 0.92 (Efron ties)."""
    res = cox_test(va, time="time_days", event="death", arm="Treatment", treated_value="test")
    assert round(res.estimate, 3) == 1.018
    assert (round(res.ci_low, 3), round(res.ci_high, 3)) == (0.714, 1.450)
    assert round(res.p_value, 2) == 0.92


def _logrank_by_hand(t, e, x):
    o_e = v = 0.0
    for s in np.unique(t[e == 1]):
        at = t >= s
        n, n1 = at.sum(), (at & x).sum()
        d, d1 = ((t == s) & (e == 1)).sum(), ((t == s) & (e == 1) & x).sum()
        o_e += d1 - d * n1 / n
        v += d * (n1 / n) * (1 - n1 / n) * (n - d) / (n - 1) if n > 1 else 0.0
    return o_e, v


@pytest.mark.parametrize("name", ["va", "gbsg"])
def test_logrank_equals_survdiff(name, va, gbsg):
    df, (t, e, arm, tv) = {"va": (va, ("time_days", "death", "Treatment", "test")),
                           "gbsg": (gbsg, ("rfs_days", "event", "horTh", "yes"))}[name]
    res = logrank_test(df, time=t, event=e, arm=arm, treated_value=tv)
    chisq, p = survdiff(df[t].to_numpy(), df[e].to_numpy(), (df[arm] == tv).to_numpy())
    _close(res.statistic, chisq)
    _close(res.p_value, p)
    o_e, v = _logrank_by_hand(df[t].to_numpy(), df[e].to_numpy(), (df[arm] == tv).to_numpy())
    _close(res.estimate, np.exp(o_e / v))
    _close([res.ci_low, res.ci_high], np.exp(o_e / v + np.array([-1, 1]) * 1.959963984540054 / np.sqrt(v)))
    assert "Peto" in res.details["hr_method"]


def test_slope_equals_statsmodels(aids):
    res = slope_test(aids, id="pid", visit="time", value="num_CD4", arm="fac_drug", treated_value="ddI")
    slopes = {0: [], 1: []}
    for _, g in aids.groupby("pid"):
        g = g.dropna(subset=["num_CD4"])
        if len(g) >= 2:
            fit = sm.OLS(g["num_CD4"].to_numpy(), sm.add_constant(g["time"].to_numpy(float))).fit()
            slopes[int(g["fac_drug"].iloc[0] == "ddI")].append(fit.params[1])
    s1, s0 = np.array(slopes[1]), np.array(slopes[0])
    t, p, df = ttest_ind(s1, s0, usevar="unequal")
    _close([res.statistic, res.p_value, res.details["df"]], [t, p, df])
    _close(res.estimate, s1.mean() - s0.mean())
    _close([res.ci_low, res.ci_high], CompareMeans.from_data(s1, s0).tconfint_diff(usevar="unequal"))
    assert res.n_per_arm == (len(s0), len(s1))


@pytest.mark.parametrize("final", [None, 6])
def test_ancova_equals_ols(aids, final):
    res = ancova_test(aids, id="pid", visit="time", value="num_CD4", arm="fac_drug", treated_value="ddI",
                      final_visit=final)
    wide = aids.pivot(index="pid", columns="time", values="num_CD4")
    drug = aids.groupby("pid")["fac_drug"].first()
    last = 18 if final is None else final
    ok = wide[0].notna() & wide[last].notna()
    x = np.column_stack([np.ones(ok.sum()), (drug[ok] == "ddI").astype(float), wide.loc[ok, 0]])
    fit = sm.OLS((wide.loc[ok, last] - wide.loc[ok, 0]).to_numpy(), x).fit()
    _close([res.estimate, res.details["se"], res.statistic, res.p_value],
           [fit.params[1], fit.bse[1], fit.tvalues[1], fit.pvalues[1]])
    _close([res.ci_low, res.ci_high], fit.conf_int()[1])
    assert res.details["df"] == fit.df_resid == ok.sum() - 3


def test_ttest_equals_statsmodels(gbsg):
    res = ttest_test(gbsg, value="age", arm="horTh", treated_value="yes", alpha=0.01)
    a1, a0 = gbsg.loc[gbsg.horTh == "yes", "age"], gbsg.loc[gbsg.horTh == "no", "age"]
    t, p, df = ttest_ind(a1, a0, usevar="unequal")
    _close([res.statistic, res.p_value, res.details["df"], res.estimate], [t, p, df, a1.mean() - a0.mean()])
    _close([res.ci_low, res.ci_high], CompareMeans.from_data(a1, a0).tconfint_diff(alpha=0.01, usevar="unequal"))


@pytest.mark.parametrize("name", ["va", "gbsg"])
def test_proportions_equals_statsmodels(name, va, gbsg):
    df, (y, arm, tv) = {"va": (va, ("death", "Treatment", "test")),
                        "gbsg": (gbsg, ("event", "horTh", "yes"))}[name]
    res = proportions_test(df, value=y, arm=arm, treated_value=tv)
    tr = df[arm] == tv
    x1, n1, x0, n0 = df.loc[tr, y].sum(), tr.sum(), df.loc[~tr, y].sum(), (~tr).sum()
    z, p = proportions_ztest([x1, x0], [n1, n0])
    _close([res.statistic, res.p_value, res.estimate], [z, p, x1 / n1 - x0 / n0])
    _close([res.ci_low, res.ci_high], confint_proportions_2indep(x1, n1, x0, n0, method="wald"))


def test_bad_inputs_raise_clear_errors(va, aids):
    with pytest.raises(InvalidDataError, match="not found"):
        cox_test(va, time="nope", event="death", arm="Treatment", treated_value="test")
    with pytest.raises(InvalidDataError, match="does not occur"):
        logrank_test(va, time="time_days", event="death", arm="Treatment", treated_value="placebo")
    with pytest.raises(InvalidDataError, match="two arms"):
        ttest_test(va, value="Age_in_years", arm="Celltype", treated_value="squamous")
    with pytest.raises(InvalidDataError, match="duplicated"):
        slope_test(pd.concat([aids, aids.head(1)]), id="pid", visit="time", value="num_CD4",
                   arm="fac_drug", treated_value="ddI")
    with pytest.raises(InvalidDataError, match="0/1"):
        proportions_test(va, value="Karnofsky_score", arm="Treatment", treated_value="test")
