"""Shared outcome models against independent references and known truths.

Survival: the piecewise-exponential (PE) PH MLE equals a Poisson GLM with log-exposure offset on the data split at
the cut points (statsmodels GLM; coefficients and log rates to 1e-5, log-likelihood to 1e-6); on data simulated
from a known piecewise hazard the rates and coefficients are recovered within 4 SEs (cuts given) and, with quantile
cuts chosen by AIC, the baseline survival within 0.04 (measured 0.027); PE coefficients agree with Cox (statsmodels
PHReg, Efron ties) within one combined SE (measured: under 0.1); AIC picks Weibull on Weibull data and PE on PE
data; 90 % censoring with integer-rounded (tied) times.

Longitudinal: our logistic MLE equals statsmodels GLM Binomial (1e-7); the dropout regression recovers a known
hazard on observed level and empirical-Bayes slope within 3 SEs (data simulated here by an independent per-patient
loop); with dropout driven by the latent slope (faster decliners leave earlier) the synthetic data reproduce the
real gap in mean OLS slope between early dropouts and completers within 3 combined SEs (and a generator with
non-informative dropout does not); on the built-in ALS cohort the synthetic visit-count distribution is within 0.02
and the per-visit mean ALSFRS-R within 0.6 points of the real ones (measured: 0.006 and 0.35).
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from cohorts.errors import InvalidDataError
from cohorts.generators import get_generator
from cohorts.generators.dropout import VisitProcess, logistic_mle
from cohorts.generators.survival import SurvivalModel, WeibullPH
from cohorts.generators.survival_flexible import PiecewiseExponentialPH, PiecewiseInverseCumhaz, exposure_matrix
from cohorts.schema import CohortSchema

BETA = np.array([0.5, -0.7])
TRUE_CUTS, TRUE_RATES = np.array([5.0, 15.0]), np.array([0.05, 0.01, 0.04])  # high-low-high: not Weibull


def _covariates(n, rng):
    return np.column_stack([rng.normal(size=n), rng.integers(0, 2, n)]).astype(float)


def _pe_data(n, rng, *, censor_max=40.0):
    X = _covariates(n, rng)
    T = PiecewiseInverseCumhaz(TRUE_CUTS, TRUE_RATES)(rng.exponential(size=n) * np.exp(-X @ BETA))
    C = rng.uniform(0, censor_max, n)
    return np.minimum(T, C), (T <= C).astype(int), X


def _true_cumhaz(t):
    E, _ = exposure_matrix(np.asarray(t, float), TRUE_CUTS)
    return E @ TRUE_RATES


def _frame(t, d, X):
    return pd.DataFrame({"pid": np.arange(len(t)), "x1": X[:, 0], "grp": np.where(X[:, 1] == 1, "b", "a"),
                         "time": t, "event": d})


TTE_SCHEMA = CohortSchema.from_dict({"id": "pid", "baseline": {"numeric": ["x1"], "categorical": ["grp"]},
                                     "outcome": {"type": "tte", "time": "time", "event": "event",
                                                 "time_unit": "months"}})


# ------------------------------------------------------------------ piecewise exponential PH
def test_piecewise_mle_equals_poisson_glm_on_split_data():
    import statsmodels.api as sm

    t, d, X = _pe_data(1500, np.random.default_rng(1))
    m = PiecewiseExponentialPH(n_pieces=4).fit(t, d, X)
    assert m.converged_ and m.n_pieces_ == 4
    E, piece = exposure_matrix(t, m.cuts_)
    i, j = np.nonzero(E > 0)
    counts = (d[i] == 1) & (piece[i] == j)
    exog = np.column_stack([(j[:, None] == np.arange(4)[None, :]).astype(float), X[i]])
    ref = sm.GLM(counts.astype(float), exog, family=sm.families.Poisson(), offset=np.log(E[i, j])).fit(tol=1e-13)
    np.testing.assert_allclose(np.log(m.rates_), ref.params[:4], atol=1e-5)
    np.testing.assert_allclose(m.coef_, ref.params[4:], atol=1e-5)
    np.testing.assert_allclose(np.r_[m.se_log_rates_, m.se_coef_], ref.bse, rtol=1e-4)
    # the Poisson log-likelihood differs by sum d log E (counts are 0/1, so no log factorials)
    assert m.loglik_ == pytest.approx(ref.llf - np.sum(counts * np.log(E[i, j])), abs=1e-6)


def test_piecewise_recovers_a_known_hazard_and_agrees_with_cox():
    from statsmodels.duration.hazard_regression import PHReg

    t, d, X = _pe_data(3000, np.random.default_rng(2))
    known = PiecewiseExponentialPH().fit(t, d, X, cuts=TRUE_CUTS)
    assert known.converged_
    assert np.all(np.abs(np.log(known.rates_) - np.log(TRUE_RATES)) < 4 * known.se_log_rates_)
    assert np.all(np.abs(known.coef_ - BETA) < 4 * known.se_coef_)
    auto = PiecewiseExponentialPH().fit(t, d, X)  # quantile cuts, number of pieces by AIC
    assert auto.n_pieces_ >= 3 and auto.aic_ == min(auto.aic_by_pieces_.values())
    grid = np.array([3.0, 5.0, 10.0, 15.0, 25.0, 35.0])
    # quantile cuts miss the true jumps a little: baseline survival within 0.04, the high-low-high shape kept
    np.testing.assert_allclose(np.exp(-auto.baseline_cumhaz(grid)), np.exp(-_true_cumhaz(grid)), atol=0.04)
    assert auto.hazard(2.0)[0] > 2 * auto.hazard(10.0)[0] and auto.hazard(30.0)[0] > 2 * auto.hazard(10.0)[0]
    cox = PHReg(t, X, status=d, ties="efron").fit()
    assert np.all(np.abs(auto.coef_ - cox.params) < np.sqrt(auto.se_coef_ ** 2 + cox.bse ** 2))
    assert np.all(np.abs(auto.coef_ - BETA) < 4 * auto.se_coef_)


def test_heavy_censoring_and_integer_rounded_times():
    from statsmodels.duration.hazard_regression import PHReg

    rng = np.random.default_rng(3)
    t, d, X = _pe_data(6000, rng, censor_max=4.0)
    t = np.ceil(t)  # whole months: heavy ties
    assert 0.85 < 1 - d.mean() < 0.95  # about 90 % censored
    m = PiecewiseExponentialPH().fit(t, d, X)
    assert m.converged_ and np.all(m.events_per_piece_ >= 5)
    assert np.all(np.abs(m.coef_ - BETA) < 4 * m.se_coef_)
    cox = PHReg(t, X, status=d, ties="efron").fit()
    assert np.all(np.abs(m.coef_ - cox.params) < np.sqrt(m.se_coef_ ** 2 + cox.bse ** 2))
    # the generator keeps the event fraction and the time range (censoring model + clip at the largest time)
    data = _frame(t, d, X)
    g = get_generator("default").fit(data, TTE_SCHEMA, rng=np.random.default_rng(0))
    assert set(g.outcome_model_.aic_) == {"weibull", "piecewise-exponential"}
    out = g.sample(6000, rng=np.random.default_rng(1))
    assert abs(out["event"].mean() - d.mean()) < 0.02
    assert set(out["time"]) <= set(np.unique(t))
    # every piece needs events: few events give fewer pieces, none is an error
    few = PiecewiseExponentialPH(n_pieces=8, min_events_per_piece=5).fit(t[:200], d[:200], X[:200])
    assert few.n_pieces_ <= max(1, int(d[:200].sum()) // 5)
    with pytest.raises(InvalidDataError, match="no events"):
        PiecewiseExponentialPH().fit(t, np.zeros_like(d), X)
    with pytest.raises(InvalidDataError, match="no event"):
        PiecewiseExponentialPH().fit(t, d, X, cuts=[1.0, 1.5])  # whole-month times: (1, 1.5] is empty


def test_piecewise_inverse_cumhaz_is_exact_vectorised_and_picklable():
    inv = PiecewiseInverseCumhaz(TRUE_CUTS, TRUE_RATES)
    t = np.r_[0.0, np.random.default_rng(4).uniform(0, 60, 997), 5.0, 15.0].reshape(50, 20)
    H = _true_cumhaz(t.ravel()).reshape(t.shape)
    np.testing.assert_allclose(inv(H), t, rtol=1e-12, atol=1e-12)
    assert inv(H).shape == (50, 20)
    # by hand: H0(5) = 0.25, H0(15) = 0.35; h = 0.55 lies 0.2 / 0.04 = 5 time units into the last piece
    np.testing.assert_allclose(inv(np.array([0.25, 0.3, 0.35, 0.55])), [5.0, 10.0, 15.0, 20.0], rtol=1e-12)
    back = pickle.loads(pickle.dumps(inv))
    np.testing.assert_array_equal(back(H), inv(H))
    with pytest.raises(ValueError):
        PiecewiseInverseCumhaz([1.0], [0.1, 0.0])


def test_survival_model_chooses_the_baseline_hazard_by_aic():
    rng = np.random.default_rng(5)
    X = _covariates(2000, rng)
    Tw = 300 * (rng.exponential(size=2000) * np.exp(-X @ BETA)) ** (1 / 1.4)
    Cw = rng.uniform(0, 800, 2000)
    weib = _frame(np.minimum(Tw, Cw), (Tw <= Cw).astype(int), X)
    pe = _frame(*_pe_data(2000, rng))
    kw = dict(numeric=["x1"], categorical=["grp"], time_unit="months")
    base = lambda f: f[["x1", "grp"]]  # noqa: E731
    mw = SurvivalModel().fit(base(weib), weib["time"], weib["event"], **kw)
    mp = SurvivalModel().fit(base(pe), pe["time"], pe["event"], **kw)
    assert mw.baseline_hazard_ == "weibull" and mw.aic_["weibull"] < mw.aic_["piecewise-exponential"]
    assert mp.baseline_hazard_ == "piecewise-exponential" and mp.aic_["piecewise-exponential"] < mp.aic_["weibull"]
    assert isinstance(mw.ph_, WeibullPH) and isinstance(mp.ph_, PiecewiseExponentialPH)
    assert any("piecewise-exponential" in n and "AIC" in n for n in mp.fit_notes_)
    # both AICs are 2 k - 2 l of the full likelihood on the same times
    assert mp.aic_["weibull"] == pytest.approx(2 * 4 - 2 * mp.weibull_.loglik_)
    lat = mp.latent(base(pe).iloc[:100], rng=np.random.default_rng(6))
    assert isinstance(lat.inverse_cumhaz, PiecewiseInverseCumhaz)
    np.testing.assert_allclose(mp.ph_.cumhaz(lat.event_time(np.log(0.6))), mp.ph_.cumhaz(lat.event_time()) / 0.6,
                               rtol=1e-10)
    forced = SurvivalModel(baseline_hazard="weibull").fit(base(pe), pe["time"], pe["event"], **kw)
    assert forced.baseline_hazard_ == "weibull" and forced.piecewise_ is None
    with pytest.raises(InvalidDataError, match="baseline_hazard"):
        SurvivalModel(baseline_hazard="cox").fit(base(pe), pe["time"], pe["event"], **kw)


# ------------------------------------------------------------------ longitudinal: dropout and visits
MONTHS = np.arange(13.0)


def _trajectories(n, rng, *, slope_sd=0.55):
    slope = rng.normal(-1.0, slope_sd, n)
    start = rng.normal(38.0, 5.0, n)
    y = np.clip(np.rint(start[:, None] + slope[:, None] * MONTHS + rng.normal(0, 1.5, (n, len(MONTHS)))), 0, 48)
    return slope, y


def test_dropout_regression_recovers_a_known_hazard():
    """Dropout after visit k: logit h = -2.6 - 0.08 (y_k - 30) - 1.2 (s_k - mu), simulated patient by patient."""
    rng = np.random.default_rng(7)
    n, mu, kappa = 3000, -1.0, 1.5 ** 2 / 0.3
    a, b_level, b_slope = -2.6, -0.08, -1.2
    _, y = _trajectories(n, rng)
    rows = []
    for i in range(n):
        for k in range(len(MONTHS)):
            rows.append((i, MONTHS[k], y[i, k]))
            if k == len(MONTHS) - 1:
                break
            tt, yy = MONTHS[:k + 1], y[i, :k + 1]
            sxx = np.sum((tt - tt.mean()) ** 2)
            sxy = np.sum((tt - tt.mean()) * (yy - yy.mean()))
            s = (sxy + kappa * mu) / (sxx + kappa)  # empirical-Bayes slope from the visits so far
            h = 1 / (1 + np.exp(-(a + b_level * (y[i, k] - 30) + b_slope * (s - mu))))
            if rng.random() < h:
                break
    g, t, v = np.array(rows).T
    vp = VisitProcess().fit(t, v, g.astype(int), slope_mean=mu, slope_kappa=kappa)
    assert vp.hazard_method_.startswith("logistic")
    assert abs(vp.coef_level_ - b_level) < 3 * vp.se_level_ and vp.coef_level_ < 0
    assert abs(vp.coef_slope_ - b_slope) < 3 * vp.se_slope_ and vp.coef_slope_ < 0
    np.testing.assert_array_equal(vp.attendance_, 1.0)  # no intermittent misses in these data


def test_logistic_mle_equals_statsmodels_glm():
    import statsmodels.api as sm

    rng = np.random.default_rng(11)
    X = np.column_stack([np.ones(5000), rng.normal(size=(5000, 2)), rng.integers(0, 2, 5000)])
    y = (rng.random(5000) < 1 / (1 + np.exp(-(X @ [-2.0, 0.8, -0.5, 1.0])))).astype(float)
    ref = sm.GLM(y, X, family=sm.families.Binomial()).fit(tol=1e-13)
    b, se = logistic_mle(X, y)
    np.testing.assert_allclose(b, ref.params, atol=1e-7)
    np.testing.assert_allclose(se, ref.bse, rtol=1e-6)
    with pytest.raises(FloatingPointError):  # complete separation
        logistic_mle(X[:, :2], (X[:, 1] > 0).astype(float))


def _mnar_frame(n, seed, *, missed=0.0):
    """Dropout after each monthly visit with logit h = -3 - 2 (slope + 1): faster decliners leave earlier."""
    rng = np.random.default_rng(seed)
    slope, y = _trajectories(n, rng, slope_sd=0.5)
    h = 1 / (1 + np.exp(-(-3.0 - 2.0 * (slope + 1.0))))
    n_visits = 1 + np.cumprod(rng.random((n, len(MONTHS) - 1)) >= h[:, None], axis=1).sum(axis=1)
    keep = np.arange(len(MONTHS))[None, :] < n_visits[:, None]
    inner = (np.arange(len(MONTHS))[None, :] > 0) & (np.arange(len(MONTHS))[None, :] < (n_visits - 1)[:, None])
    keep &= ~(inner & (rng.random(keep.shape) < missed))
    i, j = np.nonzero(keep)
    return pd.DataFrame({"pid": i, "age": rng.normal(60, 10, n)[i].round(1), "month": MONTHS[j].astype(int),
                         "score": y[i, j].astype(int)})


LONG_SCHEMA = CohortSchema.from_dict({"id": "pid", "baseline": {"numeric": ["age"], "categorical": []},
                                      "outcome": {"type": "longitudinal", "visit": "month", "value": "score",
                                                  "time_unit": "months", "lower": 0, "upper": 48}})


def _slope_gap(df):
    """Mean OLS slope of early dropouts (3-7 visits) minus completers' (13 visits), and its SE."""
    grp = df.groupby("pid")
    tc = df["month"] - grp["month"].transform("mean")
    yc = df["score"] - grp["score"].transform("mean")
    slope = (tc * yc).groupby(df["pid"]).sum() / (tc * tc).groupby(df["pid"]).sum()
    last = grp["month"].max()
    nv = grp.size()
    early, done = slope[(nv >= 3) & (last <= 6)], slope[last == 12]
    return early.mean() - done.mean(), np.sqrt(early.var() / len(early) + done.var() / len(done))


def test_synthetic_data_reproduce_informative_dropout():
    real = _mnar_frame(1500, 8)
    gap_real, se_real = _slope_gap(real)
    assert gap_real < -0.3  # early dropouts decline faster
    visits_real = real.groupby("pid").size().value_counts(normalize=True)
    results = {}
    for informative in (True, False):
        g = get_generator("default")
        g.informative_dropout = informative
        g.fit(real, LONG_SCHEMA, rng=np.random.default_rng(0))
        out = g.sample(4000, rng=np.random.default_rng(1))
        gap, se = _slope_gap(out)
        visits = out.groupby("pid").size().value_counts(normalize=True).reindex(visits_real.index, fill_value=0)
        means = (out.groupby("month")["score"].mean() - real.groupby("month")["score"].mean()).abs().max()
        results[informative] = (abs(gap - gap_real) / np.hypot(se, se_real), np.abs(visits - visits_real).max(),
                                means, g)
    z, dv, dm, g = results[True]
    assert z < 3 and dv < 0.025 and dm < 0.5
    vp = g.outcome_model_.visits_
    assert vp.coef_slope_ < -2 * vp.se_slope_  # fitted: steeper observed decline, higher hazard
    z0, dv0, dm0, _ = results[False]
    assert z0 > 5 and dm0 > 1.0 and dv0 < 0.025  # same visit counts, but the wrong patients leave


def test_missed_visits_are_learned_and_reproduced():
    real = _mnar_frame(2000, 9, missed=0.15)
    g = get_generator("default").fit(real, LONG_SCHEMA, rng=np.random.default_rng(0))
    vp = g.outcome_model_.visits_
    inner = vp.attendance_[1:-1]
    assert np.all(np.abs(inner - 0.85) < 0.05)  # truth: 15 % of visits before the last are missed
    out = g.sample(4000, rng=np.random.default_rng(1))

    def gaps(df):  # fraction of patients with a missed visit before their last
        grp = df.groupby("pid")["month"]
        return float(((grp.max() + 1) > grp.size()).mean())

    assert abs(gaps(out) - gaps(real)) < 0.03
    assert (out.groupby("pid")["month"].min() == 0).all()


def test_complete_follow_up_gives_no_dropout():
    rng = np.random.default_rng(10)
    _, y = _trajectories(200, rng)
    df = pd.DataFrame({"pid": np.repeat(np.arange(200), 13), "age": np.repeat(rng.normal(60, 10, 200), 13),
                       "month": np.tile(MONTHS.astype(int), 200), "score": y.ravel().astype(int)})
    g = get_generator("default").fit(df, LONG_SCHEMA, rng=np.random.default_rng(0))
    assert any("too few departures" in n for n in g.fit_notes_)
    out = g.sample(300, rng=np.random.default_rng(1))
    assert (out.groupby("pid").size() == 13).all()


def test_als_builtin_visit_counts_and_mean_alsfrs_r_per_visit():
    from cohorts.builtin import load_builtin

    cohort = load_builtin("als-natural-history")
    data, schema = cohort.data, cohort.schema
    g = get_generator("default").fit(data, schema, rng=np.random.default_rng(0))
    assert g.training_seconds_ < 10  # about 1.5 s on an idle core; budget 5 s, doubled for shared machines
    vp = g.outcome_model_.visits_
    assert vp.hazard_method_.startswith("logistic") and vp.coef_slope_ < 0 and vp.coef_level_ < 0
    out = g.sample(6000, rng=np.random.default_rng(1))
    p_real = data.groupby("patient_id").size().value_counts(normalize=True).sort_index()
    p_synth = out.groupby("patient_id").size().value_counts(normalize=True).reindex(p_real.index, fill_value=0)
    assert np.abs(p_real - p_synth).max() < 0.02
    m_real = data.groupby("month")["alsfrs_r"].mean()
    m_synth = out.groupby("month")["alsfrs_r"].mean().reindex(m_real.index)
    assert np.abs(m_real - m_synth).max() < 0.6
    # without the trajectory-linked dropout the month-12 mean would be off by the survivors' selection
    draw = g.draw(6000, rng=np.random.default_rng(2))
    attended, y = g.outcome_model_.observe(draw.outcome, rng=np.random.default_rng(3))
    assert m_real.iloc[-1] - y[:, -1].mean() > 1.5
    assert abs(m_real.iloc[-1] - y[attended[:, -1], -1].mean()) < 0.6
