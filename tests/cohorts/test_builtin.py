"""Built-in reference cohorts: API, determinism, and calibration of the simulated ALS cohort.

Targets and tolerances come from cohorts/builtin/README.md (Paganoni 2023, Atassi 2014, van Eijk 2025);
the VA lung hazard ratio 1.018 is the published Cox estimate (Kalbfleisch & Prentice 1980).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import SurvfuncRight

from cohorts.builtin import DEFAULT_BUILTIN, BuiltinInfo, available_builtins, load_builtin
from cohorts.builtin.als import ADMIN_CENSOR_MONTHS, N_PATIENTS, simulate_als
from cohorts.cohort import Cohort, frame_sha256
from cohorts.errors import UnknownNameError

ALS = "als-natural-history"
ALS_SURV = "als-natural-history-survival"
NAMES = (ALS, ALS_SURV, "va-lung")


@pytest.fixture(scope="module")
def als_long() -> pd.DataFrame:
    return load_builtin(ALS).data


@pytest.fixture(scope="module")
def als_surv() -> pd.DataFrame:
    return load_builtin(ALS_SURV).data


@pytest.fixture(scope="module")
def slopes(als_long) -> pd.Series:
    """Per-patient OLS decline (points/month, positive = decline) over months 0-12, patients with >= 3 visits."""
    pid = als_long["patient_id"]
    x, y = als_long["month"].astype(float), als_long["alsfrs_r"].astype(float)
    dx = x - x.groupby(pid).transform("mean")
    dy = y - y.groupby(pid).transform("mean")
    n = pid.value_counts().sort_index()
    slope = -(dx * dy).groupby(pid).sum() / (dx * dx).groupby(pid).sum()
    return slope[n >= 3]


# ----------------------------------------------------------------------------------------------- API
def test_public_surface():
    import cohorts.builtin as pkg
    assert set(pkg.__all__) == {"DEFAULT_BUILTIN", "BuiltinInfo", "available_builtins", "load_builtin"}
    assert DEFAULT_BUILTIN == ALS


def test_available_builtins_lists_every_cohort():
    infos = available_builtins()
    assert all(isinstance(i, BuiltinInfo) for i in infos)
    assert [i.name for i in infos][0] == DEFAULT_BUILTIN
    assert {i.name for i in infos} == set(NAMES)
    by_name = {i.name: i for i in infos}
    assert by_name[ALS].title == "ALS natural history (simulated from published summaries)"
    assert by_name[ALS].simulated and by_name[ALS_SURV].simulated and not by_name["va-lung"].simulated
    for name in (ALS, ALS_SURV):
        text = by_name[name].description + by_name[name].citation
        assert "NOT patient data" in by_name[name].description
        for source in ("Atassi 2014", "van Eijk 2025", "Paganoni 2023"):
            assert source in text
    assert "Kalbfleisch" in by_name["va-lung"].citation


@pytest.mark.parametrize("name", NAMES)
def test_load_builtin_returns_valid_cohort(name):
    cohort = load_builtin(name)
    assert isinstance(cohort, Cohort)
    assert cohort.name == name and cohort.source == f"builtin:{name}"
    assert cohort.citation and cohort.description
    df, schema = cohort.data, cohort.schema
    assert set(schema.columns) <= set(df.columns)
    assert not df[list(schema.columns)].isna().any().any()
    assert df.duplicated(subset=[schema.id, *([schema.outcome.visit] if schema.is_longitudinal else [])]).sum() == 0
    for col in schema.numeric:
        assert pd.api.types.is_numeric_dtype(df[col]), col
    assert cohort.sha256 == frame_sha256(df)
    validate = _io_validate()
    if validate is not None:  # cohorts.io is written elsewhere; use it once it exists
        validate(df, schema, source=cohort.source)


def _io_validate():
    try:
        from cohorts.io import validate
    except ImportError:
        return None
    return validate


def test_schemas_match_the_brief():
    long, surv = load_builtin(ALS).schema, load_builtin(ALS_SURV).schema
    assert long.outcome.type == "longitudinal" and long.outcome.value == "alsfrs_r"
    assert long.outcome.visit == "month" and long.outcome.unit == "months"
    assert (long.outcome.lower, long.outcome.upper) == (0.0, 48.0)
    assert long.categorical == ("sex", "site_of_onset", "riluzole", "c9orf72")
    assert surv.outcome.type == "tte" and surv.outcome.time == "survival_months"
    assert surv.outcome.event == "death_or_tracheostomy" and surv.outcome.unit == "months"
    assert "alsfrs_r_baseline" in surv.numeric
    va = load_builtin("va-lung").schema
    assert (va.outcome.time, va.outcome.event, va.outcome.unit) == ("time_days", "death", "days")


def test_unknown_name_lists_valid_names():
    with pytest.raises(UnknownNameError) as err:
        load_builtin("als-natural-histroy")
    msg = str(err.value)
    assert "als-natural-histroy" in msg
    for name in NAMES:
        assert name in msg
    assert isinstance(err.value, KeyError)


def test_loads_are_independent_copies():
    a = load_builtin(ALS)
    a.data.loc[0, "alsfrs_r"] = -999
    b = load_builtin(ALS)
    assert b.data.loc[0, "alsfrs_r"] != -999
    assert b.sha256 == frame_sha256(b.data)


# ------------------------------------------------------------------------------------- determinism
def test_deterministic_frames_and_hash():
    a, b = load_builtin(ALS), load_builtin(ALS)
    pd.testing.assert_frame_equal(a.data, b.data)
    assert a.sha256 == b.sha256
    long, surv = simulate_als()  # uncached re-simulation gives the same patients
    pd.testing.assert_frame_equal(long, a.data)
    pd.testing.assert_frame_equal(surv, load_builtin(ALS_SURV).data)


def test_long_and_survival_frames_describe_the_same_patients(als_long, als_surv):
    assert als_long["patient_id"].nunique() == len(als_surv) == N_PATIENTS
    first = als_long[als_long["month"] == 0].set_index("patient_id")
    surv = als_surv.set_index("patient_id")
    assert (first["alsfrs_r"] == surv["alsfrs_r_baseline"]).all()
    shared = [c for c in surv.columns if c in first.columns]
    pd.testing.assert_frame_equal(first[shared], surv.loc[first.index, shared])


# -------------------------------------------------------------------------------- ALS calibration
def test_scores_are_bounded_integers(als_long):
    s = als_long["alsfrs_r"]
    assert pd.api.types.is_integer_dtype(s)
    assert s.between(0, 48).all()
    assert set(als_long["month"].unique()) == set(range(13))


def test_baseline_covariates(als_surv):
    s = als_surv
    assert abs(s["alsfrs_r_baseline"].mean() - 36.8) < 0.5
    assert abs(s["alsfrs_r_baseline"].std() - 5.35) < 0.5
    assert abs(s["pre_baseline_slope"].mean() - 0.91) < 0.05
    assert abs(s["pre_baseline_slope"].std() - 0.53) < 0.08
    expected = (48 - s["alsfrs_r_baseline"]) / s["months_since_onset"]
    np.testing.assert_allclose(s["pre_baseline_slope"], expected, atol=1e-4)
    assert (s["diagnostic_delay_months"] < s["months_since_onset"]).all()
    assert 10 <= s["diagnostic_delay_months"].median() <= 14
    assert s["age"].between(18, 85).all() and abs(s["age"].mean() - 57) < 1
    assert s["fvc_percent"].between(20, 130).all() and abs(s["fvc_percent"].mean() - 80) < 2
    assert abs((s["sex"] == "Female").mean() - 0.38) < 0.03
    assert 0.25 <= (s["site_of_onset"] == "Bulbar").mean() <= 0.30
    assert abs((s["riluzole"] == "Yes").mean() - 0.75) < 0.03
    assert 0.08 <= (s["c9orf72"] == "Carrier").mean() <= 0.10


def test_mean_slope_matches_published_decline(slopes):
    assert 0.89 <= slopes.mean() <= 1.08  # van Eijk 2025 (0.89) .. Atassi 2014 (1.02) + tolerance
    assert len(slopes) > 0.8 * N_PATIENTS


def test_decline_is_faster_early(als_long):
    wide = als_long.pivot(index="patient_id", columns="month", values="alsfrs_r")
    seen = wide[[0, 6, 12]].dropna()
    early, late = (seen[0] - seen[6]).mean(), (seen[6] - seen[12]).mean()
    assert early > late + 0.5


def test_missingness_is_monotone_and_stops_at_death(als_long, als_surv):
    months = als_long.groupby("patient_id")["month"].agg(["min", "max", "size"])
    assert (months["min"] == 0).all()
    assert (months["size"] == months["max"] + 1).all()  # no gaps: visits stop for good
    surv = als_surv.set_index("patient_id").loc[months.index]
    assert (months["max"] < surv["survival_months"]).all()  # no visit at or after death/censoring


def test_visit_dropout_rate(als_long, als_surv):
    last = als_long.groupby("patient_id")["month"].max()
    surv = als_surv.set_index("patient_id").loc[last.index]
    died_next = (surv["death_or_tracheostomy"] == 1) & (surv["survival_months"] <= last + 1)
    dropped = (last < 12) & ~died_next
    per_month = dropped.sum() / last.sum()
    assert 0.012 <= per_month <= 0.025


def test_faster_decliners_die_earlier(slopes, als_surv):
    surv = als_surv.set_index("patient_id").loc[slopes.index]
    died = surv["death_or_tracheostomy"] == 1
    r = np.corrcoef(slopes[died], surv.loc[died, "survival_months"])[0, 1]
    assert r < -0.1


def test_median_survival_matches_paganoni(als_surv):
    assert als_surv["survival_months"].between(0, ADMIN_CENSOR_MONTHS).all()
    sf = SurvfuncRight(als_surv["survival_months"].to_numpy(), als_surv["death_or_tracheostomy"].to_numpy())
    assert 12.0 <= sf.quantile(0.5) <= 14.5  # Paganoni 2023: 13.15 months from baseline


# --------------------------------------------------------------------------------------- VA lung
def test_va_lung_reproduces_published_hazard_ratio():
    cohort = load_builtin("va-lung")
    df = cohort.data
    assert cohort.n_patients == len(df) == 137
    assert int(df["death"].sum()) == 128
    exog = (df["Treatment"] == "test").astype(float).to_numpy()[:, None]
    fit = PHReg(df["time_days"].to_numpy(), exog, status=df["death"].to_numpy()).fit()
    assert abs(np.exp(fit.params[0]) - 1.018) < 0.005


def test_other_generators_give_other_patients_of_the_same_shape():
    long, surv = simulate_als(rng=np.random.default_rng(7), n=200)
    assert surv["patient_id"].tolist() == list(range(1, 201))
    assert list(long.columns) == list(load_builtin(ALS).data.columns)
    assert not surv.equals(load_builtin(ALS_SURV).data.iloc[:200])
