"""The default generator's models against known truths and independent references (statsmodels).

Tolerances: parameter recovery within 4 standard errors; Weibull PH vs Cox (statsmodels PHReg, Efron ties)
within 3 combined SEs; REML fixed effects equal to statsmodels MixedLM's to 1e-3; copula marginals by a
two-sample KS test (p > 0.001) and Spearman correlations within 0.05 on 5,000 draws.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cohorts.generators import GaussianCopula, TrajectoryModel, WeibullPH, get_generator
from cohorts.schema import CohortSchema

DATA = Path(__file__).resolve().parents[1] / "data"
GBSG_NUM = ["age", "estrec", "pnodes", "progrec", "tsize"]
GBSG_CAT = ["horTh", "menostat", "tgrade"]


def _weibull_ph_data(n, rng, *, shape=1.4, scale=300.0, beta=(0.5, -0.7), censor_max=800.0):
    X = np.column_stack([rng.normal(size=n), rng.integers(0, 2, n)])
    T = scale * (rng.exponential(size=n) * np.exp(-X @ np.asarray(beta))) ** (1 / shape)
    C = rng.uniform(0, censor_max, n)
    return np.minimum(T, C), (T <= C).astype(int), X


# ------------------------------------------------------------------ Weibull PH
def test_weibull_ph_recovers_known_parameters_and_agrees_with_cox():
    from statsmodels.duration.hazard_regression import PHReg

    shape, scale, beta = 1.4, 300.0, np.array([0.5, -0.7])
    t, d, X = _weibull_ph_data(4000, np.random.default_rng(3), shape=shape, scale=scale, beta=beta)
    m = WeibullPH().fit(t, d, X)
    assert m.converged_
    assert abs(np.log(m.shape_) - np.log(shape)) < 4 * m.se_log_shape_
    assert abs(np.log(m.scale_) - np.log(scale)) < 4 * m.se_log_scale_
    assert np.all(np.abs(m.coef_ - beta) < 4 * m.se_coef_)
    cox = PHReg(t, X, status=d, ties="efron").fit()
    assert np.all(np.abs(m.coef_ - cox.params) < 3 * np.sqrt(m.se_coef_ ** 2 + cox.bse ** 2))
    # the log-likelihood is the full one (checked against scipy's Weibull density and survival function)
    lp = X @ m.coef_
    ll = np.sum(d * (np.log(m.shape_ / t) + m.shape_ * np.log(t / m.scale_) + lp)) \
        - np.sum((t / m.scale_) ** m.shape_ * np.exp(lp))
    assert m.loglik_ == pytest.approx(ll, rel=1e-10)


def test_weibull_ph_handles_ties_and_heavy_censoring():
    rng = np.random.default_rng(4)
    t, d, X = _weibull_ph_data(4000, rng, censor_max=120.0)  # about 15 % events
    t = np.ceil(t / 7) * 7  # weekly grid: many ties
    assert d.mean() < 0.2
    m = WeibullPH().fit(t, d, X)
    assert m.converged_ and np.all(np.abs(m.coef_ - [0.5, -0.7]) < 4 * m.se_coef_)
    no_cov = WeibullPH().fit(np.r_[0.0, t[:50]], np.r_[1, d[:50]])  # a time of 0 and no covariates
    assert np.isfinite(no_cov.shape_) and no_cov.coef_.shape == (0,)


def test_hazard_ratio_is_a_counterfactual_time_scaling():
    data = pd.read_csv(DATA / "va_lung.csv")
    schema = CohortSchema.from_dict({"id": "patient_id", "baseline": {"numeric": ["Karnofsky_score"],
                                     "categorical": ["Celltype"]},
                                     "outcome": {"type": "tte", "time": "time_days", "event": "death"}})
    g = get_generator("default").fit(data, schema, rng=np.random.default_rng(0))
    draw = g.draw(1000, rng=np.random.default_rng(1))
    lat, m = draw.outcome, g.outcome_model_
    for h in (0.5, 0.7, 1.3):  # the chosen baseline (AIC): the same patient's cumulative hazard divided by h
        np.testing.assert_allclose(m.ph_.cumhaz(lat.event_time(np.log(h))), m.ph_.cumhaz(lat.event_time(0.0)) / h,
                                   rtol=1e-10)
    # under the Weibull baseline the hazard ratio is a time scaling T_h = T_0 h^(-1 / shape)
    wlat = dataclasses.replace(lat, lp=m.design_.transform(draw.baseline) @ m.weibull_.coef_,
                               inverse_cumhaz=m.weibull_.inverse_cumhaz)
    shape = m.weibull_.shape_
    for h in (0.5, 0.7, 1.3):
        np.testing.assert_allclose(wlat.event_time(np.log(h)), wlat.event_time(0.0) * h ** (-1 / shape), rtol=1e-12)
    assert lat.time_unit == "days"
    # Karnofsky score is strongly protective in these data (Kalbfleisch & Prentice), under either baseline
    assert m.ph_.coef_[0] < 0 and m.weibull_.coef_[0] < 0


# ------------------------------------------------------------------ copula
def test_copula_preserves_marginals_and_rank_correlations_on_gbsg2():
    data = pd.read_csv(DATA / "gbsg2.csv")
    cop = GaussianCopula().fit(data, GBSG_NUM, GBSG_CAT, rng=np.random.default_rng(0))
    out = cop.sample(5000, rng=np.random.default_rng(1))
    for c in GBSG_NUM:
        assert stats.ks_2samp(data[c], out[c]).pvalue > 0.001, c
    for c in GBSG_CAT:
        p, q = data[c].value_counts(normalize=True), out[c].value_counts(normalize=True)
        assert set(q.index) == set(p.index) and np.abs(p - q.reindex(p.index)).max() < 0.03, c
    diff = out[GBSG_NUM].corr("spearman") - data[GBSG_NUM].corr("spearman")
    assert np.abs(diff.to_numpy()).max() < 0.05


def _copula_frame(n, rng):
    R = np.array([[1, 0.6, 0.4], [0.6, 1, -0.3], [0.4, -0.3, 1]])
    Z = rng.multivariate_normal(np.zeros(3), R, size=n)
    return pd.DataFrame({"x": np.exp(Z[:, 0]), "k": np.floor(4 * stats.norm.cdf(Z[:, 1])).astype(np.int64),
                         "grp": pd.Series(np.where(Z[:, 2] > 0.5, "high", "low"), dtype="str")})


def test_copula_known_dependence_with_ties_and_categories():
    df = _copula_frame(3000, np.random.default_rng(7))
    cop = GaussianCopula().fit(df, ["x", "k"], ["grp"], rng=np.random.default_rng(0))
    # the latent correlation is recovered despite 4 tied levels and a binary column (levels sorted: high < low)
    np.testing.assert_allclose(cop.correlation_[np.triu_indices(3, 1)], [0.6, -0.4, 0.3], atol=0.06)
    out = cop.sample(5000, rng=np.random.default_rng(1))
    assert out.dtypes.to_dict() == df.dtypes.to_dict()
    assert set(out["k"]) == set(df["k"]) and set(out["grp"]) == {"high", "low"}
    codes = lambda f: f.assign(grp=(f["grp"] == "high").astype(float))  # noqa: E731
    diff = codes(out).corr("spearman") - codes(df).corr("spearman")
    assert np.abs(diff.to_numpy()).max() < 0.05
    assert np.linalg.eigvalsh(cop.correlation_).min() > 0


def test_copula_missingness_rate_and_dependence():
    rng = np.random.default_rng(8)
    df = _copula_frame(3000, rng)
    df.loc[rng.random(3000) < np.where(df["k"] == 3, 0.4, 0.05), "x"] = np.nan  # missing more often when k = 3
    df.loc[rng.random(3000) < 0.1, "grp"] = np.nan
    cop = GaussianCopula().fit(df, ["x", "k"], ["grp"], rng=np.random.default_rng(0))
    out = cop.sample(5000, rng=np.random.default_rng(1))
    assert out.dtypes.to_dict() == df.dtypes.to_dict()
    for c in ("x", "grp"):
        assert abs(out[c].isna().mean() - df[c].isna().mean()) < 0.02, c
    assert out.loc[out["k"] == 3, "x"].isna().mean() > 2 * out.loc[out["k"] < 2, "x"].isna().mean()
    obs = out["x"].dropna()
    assert obs.min() >= df["x"].min() and obs.max() <= df["x"].max()


# ------------------------------------------------------------------ trajectory
def _trajectory_data(n=300, seed=5):
    rng = np.random.default_rng(seed)
    months = np.array([0.0, 1, 2, 4, 6, 9, 12])
    age = rng.normal(60, 10, n)
    site = rng.choice(["bulbar", "limb"], n, p=[0.3, 0.7])
    u = rng.multivariate_normal([0, 0], [[20, -0.6], [-0.6, 0.3]], size=n)
    slope = -1.0 - 0.4 * (site == "bulbar") + u[:, 1]
    y = (38 + 0.1 * (age - 60) + u[:, 0])[:, None] + slope[:, None] * months + 0.02 * months ** 2 \
        + rng.normal(0, 1.5, (n, len(months)))
    keep = (np.arange(len(months))[None, :] < rng.integers(2, len(months) + 1, n)[:, None]).ravel()
    df = pd.DataFrame({"pid": np.repeat(np.arange(n), len(months)), "age": np.repeat(age, len(months)),
                       "site": np.repeat(site, len(months)), "month": np.tile(months, n), "score": y.ravel()})[keep]
    schema = CohortSchema.from_dict({"id": "pid", "baseline": {"numeric": ["age"], "categorical": ["site"]},
                                     "outcome": {"type": "longitudinal", "visit": "month", "value": "score"}})
    return df.reset_index(drop=True), schema


def test_trajectory_reml_equals_statsmodels_mixedlm():
    import statsmodels.formula.api as smf
    from statsmodels.regression.mixed_linear_model import MixedLMParams

    df, schema = _trajectory_data()
    m = TrajectoryModel().fit(df, schema)
    assert m.method_.startswith("profiled REML, G unstructured") and m.fit_notes_ == []
    base = df.drop_duplicates("pid")
    ref = df.assign(z=(df["age"] - base["age"].mean()) / base["age"].std(ddof=0), bulbar=(df["site"] == "bulbar") * 1.0)
    model = smf.mixedlm("score ~ (z + bulbar) * month + I(month ** 2)", ref, groups=ref["pid"], re_formula="~month")
    sm = model.fit(reml=True)  # statsmodels' default optimizer (bfgs); its lbfgs stops at a worse local optimum here
    assert sm.converged
    fe = m.fe_params_
    for ours, theirs in [("time", "month"), ("time^2", "I(month ** 2)"), ("intercept", "Intercept"),
                         ("age", "z"), ("site=bulbar", "bulbar"), ("time:site=bulbar", "bulbar:month")]:
        assert fe[ours] == pytest.approx(sm.fe_params[theirs], abs=1e-3), ours
    np.testing.assert_allclose(m.G_, np.asarray(sm.cov_re), rtol=0.01, atol=1e-3)
    assert m.sigma_ == pytest.approx(np.sqrt(sm.scale), rel=1e-3)
    at_ours = MixedLMParams.from_components(fe_params=np.zeros(7), cov_re=m.G_ / m.sigma_ ** 2)
    assert model.loglike(at_ours, profile_fe=True) >= sm.llf - 1e-4  # our optimum is at least as good
    # truth: slope -1.0 at mean age for the reference site (limb), -0.4 more for bulbar onset
    assert abs(fe["time"] + 1.0) < 4 * sm.bse_fe["month"]
    assert abs(fe["time:site=bulbar"] + 0.4) < 4 * sm.bse_fe["bulbar:month"]


def _ols_slopes(df, id, t, y):
    df = df[df.groupby(id)[t].transform("size") >= 2]
    tc = df[t] - df.groupby(id)[t].transform("mean")
    yc = df[y] - df.groupby(id)[y].transform("mean")
    return ((tc * yc).groupby(df[id]).sum() / (tc * tc).groupby(df[id]).sum()).to_numpy()


def test_synthetic_slopes_and_visit_pattern_match_the_aids_trial():
    data = pd.read_csv(DATA / "aids_ddi_ddc_long.csv")
    schema = CohortSchema.from_dict({"id": "pid", "baseline": {"categorical": ["fac_drug", "fac_prevOI"]},
                                     "outcome": {"type": "longitudinal", "visit": "time", "value": "num_CD4"}})
    g = get_generator("default").fit(data, schema, rng=np.random.default_rng(0))
    out = g.sample(5000, rng=np.random.default_rng(1))
    real = _ols_slopes(data, "pid", "time", "num_CD4")
    synth = _ols_slopes(out, "pid", "time", "num_CD4")
    se = np.sqrt(real.var() / len(real) + synth.var() / len(synth))
    assert abs(synth.mean() - real.mean()) < 3 * se
    np.testing.assert_array_equal(g.outcome_model_.visit_times_, [0, 2, 6, 12, 18])
    p_real = data.groupby("pid").size().value_counts(normalize=True).sort_index()
    p_synth = out.groupby("pid").size().value_counts(normalize=True).sort_index()
    assert np.abs(p_real - p_synth.reindex(p_real.index, fill_value=0)).max() < 0.05


def test_slowing_scales_the_decline():
    df, schema = _trajectory_data()
    g = get_generator("default").fit(df, schema, rng=np.random.default_rng(0))
    lat = g.draw(500, rng=np.random.default_rng(2)).outcome
    t = np.array([0.0, 3, 6, 12])
    np.testing.assert_array_equal(lat.decline(t)[:, 0], 0.0)
    for r in (0.25, 0.5):
        y0 = lat.values(t, rng=np.random.default_rng(3))
        yr = lat.values(t, slowing=r, rng=np.random.default_rng(3))  # same patients, same noise
        inside = (y0 > lat.lower) & (y0 < lat.upper) & (yr > lat.lower) & (yr < lat.upper)
        np.testing.assert_allclose((yr - y0)[inside], -r * lat.decline(t)[inside], atol=1e-9)
    sub = lat.take(np.arange(5))
    np.testing.assert_allclose(sub.decline(t), lat.decline(t)[:5])


def test_trajectory_falls_back_and_says_so():
    df, schema = _trajectory_data(n=40, seed=6)
    df = df[df["month"] <= 1]  # two visit times: no t^2 term
    m = TrajectoryModel().fit(df, schema)
    assert any("t^2" in note for note in m.fit_notes_) and "time^2" not in m.fe_params_
    assert np.isfinite(m.sigma_) and np.all(np.linalg.eigvalsh(m.G_) >= -1e-12)
