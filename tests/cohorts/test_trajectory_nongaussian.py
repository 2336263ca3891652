"""Non-Gaussian random effects and visit noise of :class:`TrajectoryModel`, against known truths.

Data are simulated from a known random intercept + slope model (7 visits over 12 months, one numeric covariate)
with a skewed (gamma) random intercept, skewed (gamma) visit noise or noise whose SD grows with the level.
Tolerances: two-sample KS p > 0.001 against the simulated patients' true effects; skewness within 0.45 (the
smoothing jitter alone shrinks it by ``(1 - h^2)^1.5``, about 0.87 at 1,500 patients; the sampling SD of a
skewness of this shape is about 0.1 for the data and again for 2,000 draws); covariances within 5 % (about
5 sampling SEs at 40,000 draws); the noise SD by level within 20 % (about 5 % sampling SD per bin plus
interpolation between bin medians). The counterfactual identities are exact (1e-9). The ddI/ddC detection
AUCs follow the bench's protocol (5 seeds). Each tolerance was checked on 6 to 8 other simulation seeds.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cohorts.generators import TrajectoryModel, get_generator
from cohorts.generators.trajectory import empirical_bayes, make_trajectory_latent
from cohorts.schema import CohortSchema

DATA = Path(__file__).resolve().parents[1] / "data"
MONTHS = np.array([0.0, 1, 2, 4, 6, 9, 12])
SCHEMA = CohortSchema.from_dict({"id": "pid", "baseline": {"numeric": ["age"]},
                                 "outcome": {"type": "longitudinal", "visit": "month", "value": "score",
                                             "lower": -1000, "upper": 1000}})


def _gamma(rng, size, shape, sd):
    """Centered gamma draws with SD ``sd`` and skewness ``2 / sqrt(shape)``."""
    return (rng.gamma(shape, 1.0, size) - shape) / np.sqrt(shape) * sd


def _simulate(n, seed, u0, noise, *, with_slopes=False):
    """``y = 30 + 0.1 (age - 60) + u0 + (-1 + u1) t + noise``, ``u1 ~ N(0, 0.3^2)``; every visit observed."""
    rng = np.random.default_rng(seed)
    age = rng.normal(60, 10, n)
    u1 = rng.normal(0, 0.3, n)
    y = (30 + 0.1 * (age - 60) + u0)[:, None] + (-1.0 + u1)[:, None] * MONTHS + noise(rng, (n, len(MONTHS)))
    df = pd.DataFrame({"pid": np.repeat(np.arange(n), len(MONTHS)), "age": np.repeat(age, len(MONTHS)),
                       "month": np.tile(MONTHS, n), "score": y.ravel()})
    return (df, u1) if with_slopes else df


def _drawn_effects(m, df, n, seed):
    """A fitted model's synthetic ``(u0, u1)`` for baselines resampled from the data."""
    base = df.drop_duplicates("pid")[["age"]].sample(n, replace=True, random_state=seed).reset_index(drop=True)
    lat = m.latent(base, rng=np.random.default_rng(seed))
    X = m.design_.transform(base)
    return np.column_stack([lat.start - m.intercept_ - X @ m.coef_start_,
                            lat.params["slope"] - m.slope_ - X @ m.coef_slope_]), lat


# ------------------------------------------------------------------ empirical Bayes
def test_empirical_bayes_matches_dense_per_patient_formulas():
    rng = np.random.default_rng(0)
    n = 60
    counts = rng.integers(1, 7, n)  # 1 to 6 visits: singular Z'Z for the one-visit patients
    g = np.repeat(np.arange(n), counts)
    t = np.concatenate([np.sort(rng.choice(MONTHS, k, replace=False)) for k in counts])
    r = rng.normal(0, 3, len(t))
    G, s2 = np.array([[9.0, -0.4], [-0.4, 0.2]]), 2.25
    u, e_std, c = empirical_bayes(r, t, g, G, s2)
    for i in range(n):
        rows = g == i
        Z = np.column_stack([np.ones(rows.sum()), t[rows]])
        Vinv = np.linalg.inv(Z @ G @ Z.T + s2 * np.eye(rows.sum()))
        np.testing.assert_allclose(u[i], G @ Z.T @ Vinv @ r[rows], atol=1e-10)
        e = s2 * Vinv @ r[rows]
        np.testing.assert_allclose(e_std[rows], e / np.sqrt(s2 * s2 * np.diag(Vinv)), atol=1e-10)
        np.testing.assert_allclose(c[rows], s2 * np.diag(Vinv @ Vinv) / np.diag(Vinv), atol=1e-10)
    # a random-intercept-only G (singular) works too: no slope BLUPs
    u1, _, _ = empirical_bayes(r, t, g, np.diag([9.0, 0.0]), s2)
    np.testing.assert_array_equal(u1[:, 1], 0.0)


# ------------------------------------------------------------------ random effects
def test_empirical_random_effects_reproduce_skewed_intercepts():
    n = 1500
    u0 = _gamma(np.random.default_rng(503), n, 3.0, 4.0)  # skewness about 1.15
    df, u1 = _simulate(n, 3, u0, lambda rng, s: rng.normal(0, 1.5, s), with_slopes=True)
    emp = TrajectoryModel(residuals="gaussian").fit(df, SCHEMA)
    gau = TrajectoryModel(random_effects="gaussian", residuals="gaussian").fit(df, SCHEMA)
    assert emp.re_pool_ is not None and gau.re_pool_ is None
    ue, _ = _drawn_effects(emp, df, 2000, 1)
    ug, _ = _drawn_effects(gau, df, 2000, 1)
    assert stats.ks_2samp(ue[:, 0], u0).pvalue > 0.001
    assert abs(stats.skew(ue[:, 0]) - stats.skew(u0)) < 0.45
    assert stats.ks_2samp(ue[:, 1], u1).pvalue > 0.001  # the slopes are normal, and stay so
    # the Gaussian model cannot: its intercepts are symmetric (here its KS p-value is also 1e-5)
    assert abs(stats.skew(ug[:, 0]) - stats.skew(u0)) > 0.8


def test_empirical_random_effects_reduce_to_gaussian_on_gaussian_data():
    n = 1500
    u0 = np.random.default_rng(504).normal(0, 4, n)
    df, u1 = _simulate(n, 4, u0, lambda rng, s: rng.normal(0, 1.5, s), with_slopes=True)
    m = TrajectoryModel().fit(df, SCHEMA)
    u, _ = _drawn_effects(m, df, 3000, 2)
    # skewness and excess kurtosis 0 within 3 SEs of the pool (1,500 patients) and the draws (3,000) together
    for j, truth in ((0, u0), (1, u1)):
        assert stats.ks_2samp(u[:, j], truth).pvalue > 0.001, j
        assert abs(stats.skew(u[:, j])) < 0.25 and abs(stats.kurtosis(u[:, j])) < 0.45, j


def test_drawn_random_effects_have_covariance_G():
    n = 1500
    u0 = _gamma(np.random.default_rng(505), n, 3.0, 4.0)
    df = _simulate(n, 5, u0, lambda rng, s: rng.normal(0, 1.5, s))
    m = TrajectoryModel().fit(df, SCHEMA)
    # the recoloured pool: mean 0, covariance (divisor n) exactly G
    w = m.re_pool_
    np.testing.assert_allclose(w.mean(axis=0), 0.0, atol=1e-10)
    np.testing.assert_allclose(m.re_chol_ @ (w.T @ w / len(w)) @ m.re_chol_.T, m.G_, rtol=1e-8, atol=1e-12)
    # the draws (neighbour donors, smoothing jitter): covariance G within sampling error
    u, _ = _drawn_effects(m, df, 40000, 3)
    C = np.cov(u.T)
    np.testing.assert_allclose(np.diag(C), np.diag(m.G_), rtol=0.05)
    assert abs(C[0, 1] - m.G_[0, 1]) < 0.05 * np.sqrt(m.G_[0, 0] * m.G_[1, 1])


def test_few_patients_fall_back_to_gaussian_and_say_so():
    df = _simulate(12, 6, np.random.default_rng(506).normal(0, 4, 12), lambda rng, s: rng.normal(0, 1.5, s))
    m = TrajectoryModel().fit(df, SCHEMA)
    assert m.re_pool_ is None and any("Gaussian random effects" in note for note in m.fit_notes_)
    assert m.noise_pool_ is not None  # 84 residuals are enough for the residual pool
    with pytest.raises(ValueError, match="random_effects"):
        TrajectoryModel(random_effects="kde")
    with pytest.raises(ValueError, match="random_effects_neighbours"):
        TrajectoryModel(random_effects_neighbours=0.0)


# ------------------------------------------------------------------ visit noise
def test_noise_pool_resampling_reproduces_a_skewed_distribution():
    rng = np.random.default_rng(7)
    pool = _gamma(rng, 5000, 1.0, 1.0)  # skewness 2
    pool = (pool - pool.mean()) / pool.std()
    lat = make_trajectory_latent(np.full(4000, 20.0), np.full(4000, -1.0), 0.0, 2.0, None, None, False, "months",
                                 noise_pool=pool)
    t = np.array([0.0, 3, 6])
    noise = lat.values(t, rng=np.random.default_rng(8)) - (lat.start[:, None] + lat.decline(t))
    assert np.isin(np.round(noise / 2.0, 9), np.round(pool, 9)).all()  # every draw is a pool value times sigma
    assert stats.ks_2samp(noise.ravel(), 2.0 * pool).pvalue > 0.001
    assert abs(stats.skew(noise.ravel()) - 2.0) < 0.3


def test_fitted_noise_is_skewed_like_the_data():
    """Conditional residuals dilute the noise's skewness (each is the noise minus a weighted average of the
    patient's noise: with 7 visits and 2 random effects about 0.6 of it is left); Gaussian noise has none."""
    n = 1000
    df = _simulate(n, 8, np.random.default_rng(508).normal(0, 4, n), lambda rng, s: _gamma(rng, s, 2.0, 1.5))
    t = MONTHS
    skews = {}
    for kind in ("empirical", "gaussian"):
        m = TrajectoryModel(residuals=kind).fit(df, SCHEMA)
        _, lat = _drawn_effects(m, df, 3000, 4)
        noise = lat.values(t, rng=np.random.default_rng(9)) - (lat.start[:, None] + lat.decline(t))
        assert noise.std() == pytest.approx(m.sigma_, rel=0.05)
        skews[kind] = stats.skew(noise.ravel())
    truth = 2 / np.sqrt(2.0)
    assert 0.45 * truth < skews["empirical"] < 1.1 * truth
    assert abs(skews["gaussian"]) < 0.1


def test_noise_sd_follows_the_level():
    n = 1000
    u0 = np.random.default_rng(777).normal(0, 4, n)
    sd = 1.5 * np.exp(0.125 * u0)  # the noise SD grows with the patient's level: x 2.72 from -1 to +1 SD
    df = _simulate(n, 0, u0, lambda rng, s: rng.normal(0, 1, s) * sd[:, None])
    m = TrajectoryModel().fit(df, SCHEMA)
    start = m.intercept_ + float(m.design_.transform(pd.DataFrame({"age": [60.0]}))[0] @ m.coef_start_)
    got = m.sigma_ * m.noise_scale(start + np.array([-4.0, 0.0, 4.0]))
    np.testing.assert_allclose(got, 1.5 * np.exp(0.125 * np.array([-4.0, 0.0, 4.0])), rtol=0.2)
    flat = TrajectoryModel(residual_bins=1).fit(df, SCHEMA)
    assert flat.noise_scale(np.array([start])) is None


# ------------------------------------------------------------------ counterfactual
def test_slowing_keeps_the_same_noise_draws_and_scales_the_slope_exactly():
    data = pd.read_csv(DATA / "aids_ddi_ddc_long.csv")
    schema = CohortSchema.from_dict({"id": "pid", "baseline": {"categorical": ["fac_drug", "fac_prevOI"]},
                                     "outcome": {"type": "longitudinal", "visit": "time", "value": "num_CD4"}})
    g = get_generator("default").fit(data, schema, rng=np.random.default_rng(0))
    lat = g.draw(3000, rng=np.random.default_rng(1)).outcome
    assert lat.noise_pool is not None and lat.noise_scale is not None and lat.grid is not None
    free = dataclasses.replace(lat, lower=None, upper=None, grid=None)  # no bound or grid in the way
    t = np.array([0.0, 2, 6, 12, 18])
    tc = t - t.mean()
    y0 = free.values(t, rng=np.random.default_rng(2))
    for r in (0.25, 0.5):
        yr = free.values(t, slowing=np.full(3000, r), rng=np.random.default_rng(2))
        np.testing.assert_allclose(yr - (free.start[:, None] + (1 - r) * free.decline(t)),
                                   y0 - (free.start[:, None] + free.decline(t)), atol=1e-9)  # the same noise
        slope_diff = (yr - y0) @ tc / (tc @ tc)
        np.testing.assert_allclose(slope_diff, -r * (free.decline(t) @ tc / (tc @ tc)), atol=1e-9)
        assert slope_diff.mean() == pytest.approx(-r * np.mean(free.decline(t) @ tc / (tc @ tc)), abs=1e-9)
    sub = lat.take(np.arange(5, 10))
    np.testing.assert_array_equal(sub.noise_scale, lat.noise_scale[5:10])
    assert sub.noise_pool is lat.noise_pool and sub.grid is lat.grid


def test_value_grid_keeps_square_roots_of_counts():
    data = pd.read_csv(DATA / "aids_ddi_ddc_long.csv")
    schema = CohortSchema.from_dict({"id": "pid", "baseline": {"categorical": ["fac_prevOI"]},
                                     "outcome": {"type": "longitudinal", "visit": "time", "value": "num_CD4"}})
    m = TrajectoryModel().fit(data, schema)
    lat = m.latent(pd.DataFrame({"fac_prevOI": ["AIDS", "noAIDS"] * 500}), rng=np.random.default_rng(0))
    y = lat.values(m.visit_times_, rng=np.random.default_rng(1))
    np.testing.assert_allclose(y ** 2, np.rint(y ** 2), atol=1e-8)  # CD4 counts are whole numbers
    assert set(np.unique(y)) <= set(data["num_CD4"])
    off = TrajectoryModel(value_grid="none").fit(data, schema)
    y = off.latent(pd.DataFrame({"fac_prevOI": ["AIDS"] * 200}),
                   rng=np.random.default_rng(0)).values(m.visit_times_, rng=np.random.default_rng(1))
    assert not np.allclose(y ** 2, np.rint(y ** 2), atol=1e-8)


# ------------------------------------------------------------------ real data: detection
def _mean_detection_auc(data, schema, seeds=range(1, 6)) -> float:
    from analysis.workflow import evaluation_stream
    from cohorts.evaluate import split_train_holdout
    from cohorts.evaluate_fidelity import detection_auc, patient_features

    aucs = []
    for seed in seeds:
        train, holdout = split_train_holdout(data, schema, rng=evaluation_stream(seed))
        real = patient_features(holdout, schema)
        g = get_generator("default").fit(train, schema, rng=np.random.default_rng(seed))
        synth = patient_features(g.sample(train[schema.id].nunique(), rng=np.random.default_rng(100 + seed)),
                                 schema)
        aucs.append(detection_auc(real, synth[real.columns], rng=np.random.default_rng(seed))[0])
    return float(np.mean(aucs))


def test_detection_auc_on_the_ddi_ddc_trial_drops(monkeypatch):
    """Held-out detection AUC of the default family, mean of 5 seeds: 0.647 with Gaussian random effects and
    noise (no value grid), 0.519 with the defaults (per seed 0.46-0.55 against 0.63-0.67; 0.549 against 0.658
    over 12 seeds). The issue's target is <= 0.60."""
    import cohorts.generators.sequential as sequential

    data = pd.read_csv(DATA / "aids_ddi_ddc_long.csv")
    schema = CohortSchema.from_dict({"id": "pid", "baseline": {"numeric": [], "categorical": [
        "fac_drug", "fac_gender", "fac_prevOI", "fac_AZT"]}, "outcome": {"type": "longitudinal", "visit": "time",
                                                                         "value": "num_CD4"}})
    new = _mean_detection_auc(data, schema)
    monkeypatch.setattr(sequential, "TrajectoryModel", functools.partial(
        TrajectoryModel, random_effects="gaussian", residuals="gaussian", value_grid="none"))
    old = _mean_detection_auc(data, schema)
    assert new < old - 0.05 and new <= 0.60, (new, old)
