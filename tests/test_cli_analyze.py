"""`insilico analyze`: the JSON contract on real trials, checked against statsmodels, and its user errors.

References computed live with statsmodels (PHReg, survdiff, SurvfuncRight, OLS, Logit); the estimators
themselves are checked in depth in tests/analysis.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import SurvfuncRight, survdiff

from cli import main

DATA = Path(__file__).resolve().parent / "data"
VA = str(DATA / "va_lung.csv")
TOL = dict(rtol=1e-6)


def run(capsys, *args):
    rc = main(["analyze", *args, "--json"])
    captured = capsys.readouterr()
    return rc, (json.loads(captured.out) if rc == 0 else None), captured.err


def test_tte_cox_on_va_lung_equals_phreg_and_published(capsys):
    rc, out, _ = run(capsys, VA, "--endpoint", "tte", "--arm", "Treatment", "--treated", "test",
                     "--time", "time_days", "--event", "death")
    assert rc == 0
    va = pd.read_csv(VA)
    x = (va["Treatment"] == "test").to_numpy(float)[:, None]
    fit = PHReg(va["time_days"], x, status=va["death"], ties="efron").fit()
    lo, hi = np.exp(fit.conf_int()[0])
    np.testing.assert_allclose([out["estimate"], out["ci_low"], out["ci_high"], out["p_value"]],
                               [np.exp(fit.params[0]), lo, hi, fit.pvalues[0]], **TOL)
    assert round(out["estimate"], 3) == 1.018 and round(out["ci_low"], 3) == 0.714      # published
    assert out["n_per_arm"] == {"standard": 69, "test": 68}
    assert out["events_per_arm"] == {"standard": 64, "test": 64}
    _, p = survdiff(va["time_days"], va["death"], va["Treatment"])
    np.testing.assert_allclose(out["logrank_p"], p, **TOL)
    sub = va[va["Treatment"] == "standard"]
    assert out["median_per_arm"]["standard"] == SurvfuncRight(sub["time_days"], sub["death"]).quantile(0.5) == 103
    # test arm: the KM curve is exactly 0.5 from day 52 to the next event at day 53; the median is then the
    # midpoint (R survfit's rule; statsmodels reports the start, 52)
    sub = va[va["Treatment"] == "test"]
    sf = SurvfuncRight(sub["time_days"], sub["death"])
    at = np.searchsorted(sf.surv_times, 52)
    assert sf.surv_prob[at] == pytest.approx(0.5, abs=1e-12) and sf.surv_times[at + 1] == 53
    assert out["median_per_arm"]["test"] == 52.5
    assert set(out) >= {"method", "estimate", "ci_low", "ci_high", "p_value", "n_per_arm", "logrank_p",
                        "events_per_arm", "median_per_arm"}


def test_tte_cox_with_covariates_and_strata_equals_phreg(capsys):
    rc, out, _ = run(capsys, VA, "--endpoint", "tte", "--arm", "Treatment", "--treated", "test", "--time",
                     "time_days", "--event", "death", "--covariates", "Karnofsky_score,Age_in_years",
                     "--strata", "Prior_therapy")
    assert rc == 0
    va = pd.read_csv(VA)
    x = np.column_stack([(va["Treatment"] == "test").to_numpy(float), va["Karnofsky_score"], va["Age_in_years"]])
    fit = PHReg(va["time_days"], x, status=va["death"], strata=va["Prior_therapy"], ties="efron").fit()
    np.testing.assert_allclose([np.log(out["estimate"]), out["p_value"]], [fit.params[0], fit.pvalues[0]], **TOL)


def test_continuous_ancova_with_baseline_equals_ols(capsys, tmp_path):
    rc, out, _ = run(capsys, str(DATA / "beat_the_blues.csv"), "--endpoint", "continuous", "--arm", "treatment",
                     "--treated", "BtheB", "--value", "bdi.2m", "--baseline", "bdi.pre", "--covariates", "drug")
    assert rc == 0
    d = pd.read_csv(DATA / "beat_the_blues.csv").dropna(subset=["bdi.2m", "bdi.pre"])
    X = sm.add_constant(np.column_stack([(d["treatment"] == "BtheB").to_numpy(float), d["bdi.pre"],
                                         (d["drug"] == "Yes").to_numpy(float)]))
    fit = sm.OLS(d["bdi.2m"].to_numpy(float), X).fit()
    np.testing.assert_allclose([out["estimate"], out["p_value"]], [fit.params[1], fit.pvalues[1]], **TOL)
    np.testing.assert_allclose([out["ci_low"], out["ci_high"]], fit.conf_int()[1], **TOL)
    assert sum(out["n_per_arm"].values()) == len(d)


def test_binary_logistic_and_risk_difference(capsys, tmp_path):
    va = pd.read_csv(VA)
    va["early_death"] = ((va["time_days"] <= 180) & (va["death"] == 1)).astype(int)
    path = tmp_path / "va.csv"
    va.to_csv(path, index=False)
    base = [str(path), "--endpoint", "binary", "--arm", "Treatment", "--treated", "test", "--value", "early_death"]
    rc, out, _ = run(capsys, *base, "--method", "logistic", "--covariates", "Karnofsky_score")
    assert rc == 0
    X = sm.add_constant(np.column_stack([(va["Treatment"] == "test").to_numpy(float), va["Karnofsky_score"]]))
    fit = sm.Logit(va["early_death"].to_numpy(float), X).fit(disp=0)
    np.testing.assert_allclose([np.log(out["estimate"]), out["p_value"]], [fit.params[1], fit.pvalues[1]],
                               rtol=1e-6)
    rc, out, _ = run(capsys, *base)
    p = va.groupby("Treatment")["early_death"].mean()
    assert out["estimate"] == pytest.approx(p["test"] - p["standard"], abs=1e-12)
    assert out["ci_low"] < out["estimate"] < out["ci_high"]


def test_longitudinal_default_is_mmrm_and_matches_the_library(capsys):
    from analysis.estimators import mmrm_test
    path = DATA / "epilepsy_progabide_long.csv"
    rc, out, _ = run(capsys, str(path), "--endpoint", "longitudinal", "--arm", "trt", "--treated", "progabide",
                     "--id", "subject", "--visit", "period", "--value", "y")
    assert rc == 0 and out["method_name"] == "mmrm"
    ref = mmrm_test(pd.read_csv(path), id="subject", visit="period", value="y", arm="trt",
                    treated_value="progabide")
    np.testing.assert_allclose([out["estimate"], out["p_value"]], [ref.estimate, ref.p_value], rtol=1e-12)


def test_numeric_arm_values_and_control_filter(capsys, tmp_path):
    va = pd.read_csv(VA)
    va["arm3"] = np.select([va["Treatment"] == "test", va["Celltype"] == "large"], [2, 9], default=1)
    path = tmp_path / "va3.csv"
    va.to_csv(path, index=False)
    args = [str(path), "--endpoint", "tte", "--arm", "arm3", "--treated", "2", "--time", "time_days", "--event",
            "death"]
    rc, _, err = run(capsys, *args)
    assert rc == 2 and "--control" in err and "arm3" in err
    rc, out, _ = run(capsys, *args, "--control", "1")
    assert rc == 0
    assert out["n_per_arm"] == {"1": int((va["arm3"] == 1).sum()), "2": int((va["arm3"] == 2).sum())}


@pytest.mark.parametrize("extra, message", [
    (["--time", "nope", "--event", "death"], "--time 'nope': no such column"),
    (["--event", "death"], "needs --time"),
    (["--time", "time_days", "--event", "death", "--method", "mmrm"], "choose one of cox, logrank, rmst"),
    (["--time", "time_days", "--event", "death", "--method", "rmst"], "--horizon"),
    (["--time", "time_days", "--event", "death", "--method", "rmst", "--horizon", "5000"], "exceeds the largest follow-up"),
    (["--time", "time_days", "--event", "death", "--method", "logrank", "--covariates", "Age_in_years"],
     "--covariates cannot be used"),
])
def test_user_errors_exit_2_with_a_message(capsys, extra, message):
    rc, _, err = run(capsys, VA, "--endpoint", "tte", "--arm", "Treatment", "--treated", "test", *extra)
    assert rc == 2 and message in err, err
    assert "Traceback" not in err


def test_unknown_treated_value(capsys):
    rc, _, err = run(capsys, VA, "--endpoint", "tte", "--arm", "Treatment", "--treated", "placebo", "--time",
                     "time_days", "--event", "death")
    assert rc == 2 and "standard, test" in err
