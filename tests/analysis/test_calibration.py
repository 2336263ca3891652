"""Calibration against a real trial (analysis.calibration, cli_calibrate) on the VA lung trial (cox) and the
progabide epilepsy trial (slope).

References: the real estimate is checked against the single-dataset estimator run directly on the file
(tolerance 1e-12); summary numbers against direct counts on the per-replicate arrays (exact); Monte Carlo
checks use binomial bands of 4 SD.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.calibration import calibrate_trial, calibration_figure, mid_rank_percentile
from analysis.estimators import cox_test, slope_test
from cli_calibrate import add_calibrate_command
from cohorts.errors import InvalidDataError, InvalidScenarioError, UnknownNameError, WorkbenchError
from cohorts.schema import CohortSchema

ROOT = Path(__file__).resolve().parents[2]
VA = ROOT / "tests" / "data" / "va_lung.csv"
EPIL = ROOT / "tests" / "data" / "epilepsy_progabide_long.csv"
SCHEMA = ROOT / "examples" / "va_lung_schema.toml"
R = 200
SEED = 20260101


def band(p: float, n: int, sds: float = 4.0) -> float:
    return sds * math.sqrt(p * (1 - p) / n)


@pytest.fixture(scope="module")
def va():
    return pd.read_csv(VA)


@pytest.fixture(scope="module")
def schema():
    return CohortSchema.from_toml(SCHEMA)


@pytest.fixture(scope="module")
def result(va, schema):
    return calibrate_trial(va, schema, arm="Treatment", treated_value="test", analysis="cox", replicates=R,
                           seed=SEED)


def epilepsy_schema():
    return CohortSchema.from_dict({"id": "subject", "baseline": {"numeric": ["age", "base"]},
                                   "outcome": {"type": "longitudinal", "visit": "period", "value": "y",
                                               "time_unit": "weeks"}})


def test_real_estimate_is_cox_on_the_file(result, va):
    ref = cox_test(va, time="time_days", event="death", arm="Treatment", treated_value="test")
    for key in ("estimate", "ci_low", "ci_high", "p_value"):
        assert getattr(result.real, key) == pytest.approx(getattr(ref, key), abs=1e-12, rel=0)
    assert result.real.estimate == pytest.approx(1.018, abs=5e-4)  # published HR test vs standard


def test_design_copies_the_real_trial(result, va):
    assert result.n_per_arm == (69, 68) and result.arms == ("standard", "test")
    assert (result.design.control.allocation, result.design.treatment.allocation) == (69, 68)
    assert result.design.endpoint.followup == va["time_days"].max()
    assert result.effect.kind == "hazard_ratio" and result.effect_source == "observed"
    assert result.effect.value == result.real.estimate
    assert result.replicates == R and result.estimates.shape == result.p_values_null.shape == (R,)


def test_null_p_values_roughly_uniform(result):
    p = result.p_values_null
    assert np.isfinite(p).all()
    for q in (0.05, 0.25, 0.5):  # share below q within 4 binomial SD of q
        assert abs((p < q).mean() - q) <= band(q, R)
    # under no effect the share of simulated p below the real p estimates the real p (4 SD)
    assert abs(result.share_p_below_null - result.real.p_value) <= band(result.real.p_value, R)


def test_summary_numbers_are_direct_counts(result):
    x, p = result.real.estimate, result.real.p_value
    for est, pct in ((result.estimates, result.percentile), (result.estimates_null, result.percentile_null)):
        direct = (np.sum(est < x) + 0.5 * np.sum(est == x)) / np.sum(np.isfinite(est))
        assert pct == direct
        assert 0 < pct < 1
    assert result.share_p_below == np.mean(result.p_values < p)
    assert result.share_p_below_null == np.mean(result.p_values_null < p)
    assert result.power == np.mean(result.p_values < 0.05)
    assert result.type1_error == np.mean(result.p_values_null < 0.05)
    s = result.summary()
    assert list(s["scenario"]) == ["assumed effect", "no effect"]
    assert s["percentile_of_real"].tolist() == [result.percentile, result.percentile_null]
    assert s["rejection_rate"].tolist() == [result.power, result.type1_error]


def test_mid_rank_percentile_edges():
    assert mid_rank_percentile([1.0, 2.0, 3.0, np.nan], 2.0) == 0.5
    assert mid_rank_percentile([1.0, 2.0, 3.0], 0.0) == 0.0 and mid_rank_percentile([1.0], 5.0) == 1.0
    assert math.isnan(mid_rank_percentile([np.nan], 1.0)) and math.isnan(mid_rank_percentile([1.0], np.nan))


def test_same_seed_same_json_other_seed_differs(va, schema):
    kw = dict(arm="Treatment", treated_value="test", analysis="cox", replicates=50)
    a = json.dumps(calibrate_trial(va, schema, seed=7, **kw).to_json_dict(), allow_nan=False)
    b = json.dumps(calibrate_trial(va, schema, seed=7, **kw).to_json_dict(), allow_nan=False)
    c = json.dumps(calibrate_trial(va, schema, seed=8, **kw).to_json_dict(), allow_nan=False)
    assert a == b and a != c


def test_given_effect(va, schema):
    res = calibrate_trial(va, schema, arm="Treatment", treated_value="test", analysis="logrank", replicates=20,
                          seed=1, effect=0.5, followup=365)
    assert (res.effect.kind, res.effect.value, res.effect_source) == ("hazard_ratio", 0.5, "given")
    assert res.design.endpoint.followup == 365
    # HR 0.5 makes the simulated estimates fall far below those under no effect
    assert np.median(res.estimates) < np.median(res.estimates_null)


def test_arm_as_baseline_covariate_is_refused(va):
    bad = CohortSchema.from_dict({"id": "patient_id", "baseline": {"categorical": ["Celltype", "Treatment"]},
                                  "outcome": {"type": "tte", "time": "time_days", "event": "death"}})
    with pytest.raises(InvalidDataError, match="'Treatment' is a baseline covariate"):
        calibrate_trial(va, bad, arm="Treatment", treated_value="test", analysis="cox", replicates=10, seed=1)


def test_unknown_or_mismatched_analysis(va, schema):
    kw = dict(arm="Treatment", treated_value="test", replicates=10, seed=1)
    with pytest.raises(UnknownNameError, match="unknown analysis 'coxx'.*cox"):
        calibrate_trial(va, schema, analysis="coxx", **kw)
    with pytest.raises(InvalidScenarioError, match="'ttest' is for continuous"):
        calibrate_trial(va, schema, analysis="ttest", **kw)
    with pytest.raises(InvalidDataError, match="no row of column 'Treatment'"):
        calibrate_trial(va, schema, analysis="cox", **{**kw, "treated_value": "tst"})


def test_longitudinal_needs_effect():
    d = pd.read_csv(EPIL)
    with pytest.raises(InvalidScenarioError, match="slope reduction"):
        calibrate_trial(d, epilepsy_schema(), arm="trt", treated_value="progabide", analysis="slope",
                        replicates=10, seed=1)


def test_longitudinal_with_effect_slopes_per_month():
    d = pd.read_csv(EPIL)
    res = calibrate_trial(d, epilepsy_schema(), arm="trt", treated_value="progabide", analysis="slope",
                          replicates=30, seed=1, effect=0.2)
    months = d.assign(period=d["period"] * 7 / (365.25 / 12))  # weeks -> months, as in the simulated trials
    ref = slope_test(months, id="subject", visit="period", value="y", arm="trt", treated_value="progabide")
    assert res.real.estimate == pytest.approx(ref.estimate, abs=1e-12, rel=0)
    assert res.design.endpoint.visits_months == pytest.approx(tuple(np.arange(1, 5) * 7 / (365.25 / 12)), abs=1e-12)
    assert (res.effect.kind, res.effect.value) == ("slope_reduction", 0.2)


def test_figure(result):
    fig = calibration_figure(result)
    hists = [t for t in fig.data if t.type == "histogram"]
    assert len(hists) == 2 and len(hists[0].x) == R
    assert fig.layout.shapes[0].x0 == result.real.estimate


def parser():
    p = argparse.ArgumentParser(prog="insilico")
    add_calibrate_command(p.add_subparsers(dest="command", required=True))
    return p


def test_cli_json(result, capsys):
    args = parser().parse_args(["calibrate", str(VA), "--schema", str(SCHEMA), "--arm", "Treatment", "--treated",
                                "test", "--analysis", "cox", "--replicates", str(R), "--seed", str(SEED), "--json"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == json.loads(json.dumps(result.to_json_dict()))  # same seed: the library's numbers
    assert out["n_per_arm"] == {"standard": 69, "test": 68}


def test_cli_text_and_errors(capsys):
    base = ["calibrate", str(VA), "--schema", str(SCHEMA), "--arm", "Treatment", "--analysis", "cox",
            "--replicates", "20"]
    args = parser().parse_args(base + ["--treated", "test", "--control", "standard"])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "real trial: estimate 1.018" in text and "percentile_of_real" in text
    for extra, msg in ((["--treated", "tst"], "--treated 'tst'"), (["--treated", "test", "--arm", "Arm"],
                                                                    "--arm 'Arm': no such column"),
                       (["--treated", "test", "--replicates", "0"], "--replicates 0")):
        args = parser().parse_args(base + extra)
        with pytest.raises(WorkbenchError, match=msg):
            args.func(args)
