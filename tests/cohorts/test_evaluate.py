"""Generator evaluation: every metric against an independent computation, plus sanity checks on fake generators.

References: scipy (ks_2samp, spearmanr, contingency.association, linregress), scikit-learn (roc_auc_score),
statsmodels (OLS, PHReg formula interface, SurvfuncRight) and brute-force loops written here.
"""

import ast
import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from scipy.stats.contingency import association
from sklearn.metrics import roc_auc_score

from cohorts.errors import InvalidDataError
from cohorts.evaluate import concordance_index, evaluate_generator, split_train_holdout
from cohorts.evaluate_fidelity import (MISSING, association_difference, association_matrix, correlation_ratio,
                                       cramers_v, detection_auc, km_comparison, ks_statistic, ols_slopes,
                                       patient_features, trajectory_comparison, tv_distance)
from cohorts.evaluate_privacy import closest_distance, exact_copy_rate, gower_matrix, privacy_metrics, roc_auc
from cohorts.generators import get_generator
from cohorts.schema import CohortSchema

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
TTE = CohortSchema.from_dict({"id": "id", "baseline": {"numeric": ["x1", "x2"], "categorical": ["c"]},
                              "outcome": {"type": "tte", "time": "time", "event": "event"}})
AIDS = CohortSchema.from_dict({"id": "pid", "baseline": {"categorical": ["fac_drug", "fac_gender", "fac_prevOI",
                                                                        "fac_AZT"]},
                               "outcome": {"type": "longitudinal", "visit": "time", "value": "num_CD4"}})


def population(n, rng, *, shift=0.0, prefix="P"):
    """x1 ~ N(50, 10); x2 correlated with x1 (10 % missing); c in a/b/c (5 % missing); exponential event
    times depending on x1 and c, uniform censoring."""
    x1 = rng.normal(50, 10, n)
    x2 = 0.6 * (x1 - 50) / 10 + rng.normal(0, 0.8, n)
    x2[rng.uniform(size=n) < 0.1] = np.nan
    c = rng.choice(np.array(["a", "b", "c"], dtype=object), n, p=[0.5, 0.3, 0.2])
    c[rng.uniform(size=n) < 0.05] = None
    t_event = rng.exponential(100 * np.exp(-(0.03 * (x1 - 50) + 0.5 * (c == "b"))))
    cens = rng.uniform(0, 300, n)
    return pd.DataFrame({"id": [f"{prefix}{i}" for i in range(n)], "x1": x1 + shift, "x2": x2,
                         "c": pd.Series(c, dtype="string"), "time": np.minimum(t_event, cens),
                         "event": (t_event <= cens).astype(int)})


class IndependentGenerator:
    """Fresh patients from the same population as the real data."""
    schema_ = TTE

    def sample(self, n, *, rng):
        return population(n, rng, prefix="S")


class CopyGenerator:
    """Returns the training rows themselves (relabelled ids): the worst case for privacy."""
    schema_ = TTE

    def __init__(self, train):
        self.train = train

    def sample(self, n, *, rng):
        out = self.train.iloc[np.arange(n) % len(self.train)].reset_index(drop=True)
        return out.assign(id=[f"S{i}" for i in range(n)])


class BadGenerator:
    """x1 shifted by 4 SD and event times shuffled across patients."""
    schema_ = TTE

    def sample(self, n, *, rng):
        out = population(n, rng, shift=40.0, prefix="S")
        perm = rng.permutation(n)
        out[["time", "event"]] = out[["time", "event"]].to_numpy()[perm]
        return out


@pytest.fixture(scope="module")
def tte_split():
    rng = np.random.default_rng(2024)
    return split_train_holdout(population(1000, rng), TTE, rng=rng)


# ------------------------------------------------------------------------------------ fidelity metrics
def test_ks_statistic_matches_scipy():
    rng = np.random.default_rng(0)
    cases = [(rng.normal(size=50), rng.normal(0.3, 1, 80)), (rng.integers(0, 5, 40), rng.integers(0, 6, 70)),
             (rng.exponential(size=7), rng.exponential(size=300))]
    for a, b in cases:
        assert ks_statistic(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)
    a = np.r_[rng.normal(size=30), np.nan, np.nan]
    assert ks_statistic(a, cases[0][1]) == pytest.approx(stats.ks_2samp(a[:30], cases[0][1]).statistic, abs=1e-12)
    assert np.isnan(ks_statistic([], [1.0]))


def test_tv_distance_brute_force_with_missing_level():
    a = ["x", "y", None, "x", "z", None]
    b = ["y", "y", "x", None, "w"]
    levels = {"x", "y", "z", "w", None}
    brute = 0.5 * sum(abs(a.count(k) / len(a) - b.count(k) / len(b)) for k in levels)
    assert tv_distance(a, b) == pytest.approx(brute, abs=1e-12)
    assert tv_distance(a, a) == 0.0 and tv_distance(["p"], ["q"]) == 1.0


def test_cramers_v_matches_scipy_and_correlation_ratio_matches_anova_r2():
    rng = np.random.default_rng(1)
    a = rng.choice(list("abc"), 300)
    b = np.where(rng.uniform(size=300) < 0.4, a, rng.choice(list("abcd"), 300))
    table = pd.crosstab(a, b).to_numpy()
    assert cramers_v(a, b) == pytest.approx(association(table, method="cramer", correction=False), abs=1e-10)
    assert cramers_v(a, np.full(300, "k")) == 0.0
    x = rng.normal(size=300) + (a == "b") * 0.8
    x[:10] = np.nan
    keep = ~np.isnan(x)
    fit = sm.OLS(x[keep], pd.get_dummies(a[keep], drop_first=True, dtype=float).assign(const=1.0)).fit()
    assert correlation_ratio(x, a) == pytest.approx(np.sqrt(fit.rsquared), abs=1e-10)
    assert correlation_ratio(np.ones(20), a[:20]) == 0.0


def test_association_matrix_blocks_and_mean_difference():
    rng = np.random.default_rng(2)
    f = pd.DataFrame({"u": rng.normal(size=200), "v": rng.normal(size=200),
                      "g": pd.Series(rng.choice(list("pq"), 200), dtype="string"),
                      "h": pd.Series(rng.choice(list("rst"), 200), dtype="string")})
    f["v"] += f["u"]
    f.loc[:19, "v"] = np.nan
    m = association_matrix(f)
    ok = f["v"].notna()
    assert m.loc["u", "v"] == pytest.approx(stats.spearmanr(f["u"][ok], f["v"][ok]).statistic, abs=1e-12)
    assert m.loc["g", "h"] == pytest.approx(cramers_v(f["g"], f["h"]), abs=1e-12)
    assert m.loc["v", "h"] == m.loc["h", "v"] == pytest.approx(correlation_ratio(f["v"], f["h"]), abs=1e-12)
    np.testing.assert_allclose(np.diag(m), 1.0)
    g = f.sample(frac=1.0, random_state=3, ignore_index=True).assign(u=lambda d: -d["u"])
    real, synth, diff, mean = association_difference(f, g)
    brute = np.mean([abs(synth.iloc[i, j] - real.iloc[i, j]) for i in range(4) for j in range(i + 1, 4)])
    assert mean == pytest.approx(brute, abs=1e-12) and mean > 0.1
    assert association_difference(f, f)[3] == 0.0


def test_ols_slopes_and_longitudinal_features_match_linregress():
    data = pd.read_csv(DATA / "aids_ddi_ddc_long.csv").iloc[:300]
    slopes = ols_slopes(data, "pid", "time", "num_CD4")
    feats = patient_features(data, AIDS)
    for pid, p in data.groupby("pid"):
        p = p.sort_values("time")
        if p["time"].nunique() >= 2:
            assert slopes[pid] == pytest.approx(stats.linregress(p["time"], p["num_CD4"]).slope, abs=1e-10)
        else:
            assert np.isnan(slopes[pid]) and np.isnan(feats.loc[pid, "slope_num_CD4"])
        assert feats.loc[pid, "first_num_CD4"] == p["num_CD4"].iloc[0]
        assert feats.loc[pid, "last_num_CD4"] == p["num_CD4"].iloc[-1]
        assert feats.loc[pid, "n_visits"] == len(p)
    assert list(feats.columns[:4]) == list(AIDS.categorical) and len(feats) == data["pid"].nunique()


def _km_brute(t, e):
    """Product-limit estimate written out: S(t) at each distinct event time."""
    out, s = {}, 1.0
    for u in sorted(set(t[e == 1])):
        s *= 1 - np.sum((t == u) & (e == 1)) / np.sum(t >= u)
        out[u] = s
    return out


def test_km_comparison_against_brute_force_curves_and_dense_grid():
    rng = np.random.default_rng(4)
    t1, e1 = np.round(rng.exponential(10, 80), 1), rng.integers(0, 2, 80)
    t2, e2 = np.round(rng.exponential(14, 120), 1), rng.integers(0, 2, 120)
    km = km_comparison(t1, e1, t2, e2)
    for t, e, kt, ks in ((t1, e1, km.time_real, km.surv_real), (t2, e2, km.time_synthetic, km.surv_synthetic)):
        brute = _km_brute(t, e)
        np.testing.assert_allclose(ks[1:len(brute) + 1], list(brute.values()), atol=1e-12)
        np.testing.assert_allclose(kt[1:len(brute) + 1], list(brute.keys()))
        assert kt[0] == 0 and ks[0] == 1 and kt[-1] == t.max()

    def s_at(x, brute):
        keys = np.array(list(brute))
        vals = np.array(list(brute.values()))
        i = np.searchsorted(keys, x, side="right") - 1
        return np.where(i >= 0, vals[np.clip(i, 0, None)], 1.0)

    tau = min(t1.max(), t2.max())
    grid = np.linspace(0, tau, 400_001)
    d = np.abs(s_at(grid, _km_brute(t1, e1)) - s_at(grid, _km_brute(t2, e2)))
    assert km.followup == tau
    assert km.sup_distance == pytest.approx(d.max(), abs=1e-12)
    assert km.integrated_abs_difference == pytest.approx(d[:-1].sum() * (grid[1] - grid[0]), abs=tau * 1e-5)
    assert km.mean_abs_difference == pytest.approx(km.integrated_abs_difference / tau)
    same = km_comparison(t1, e1, t1, e1)
    assert same.sup_distance == 0 and same.integrated_abs_difference == 0


def test_trajectory_comparison_per_visit_and_slopes():
    data = pd.read_csv(DATA / "aids_ddi_ddc_long.csv")
    synth = data.assign(num_CD4=data["num_CD4"] + 1.0, pid=data["pid"] + 10_000)
    tr = trajectory_comparison(data, synth, AIDS)
    for row in tr.per_visit.itertuples():
        v = data.loc[data["time"] == row.visit, "num_CD4"].to_numpy()
        assert (row.n_real, row.n_synthetic) == (v.size, v.size)
        assert row.mean_real == pytest.approx(v.mean()) and row.mean_synthetic == pytest.approx(v.mean() + 1)
        assert row.sd_real == pytest.approx(v.std(ddof=1)) and row.sd_synthetic == pytest.approx(v.std(ddof=1))
    smd = np.mean(1.0 / tr.per_visit["sd_real"])
    assert tr.mean_abs_smd == pytest.approx(smd) and tr.mean_abs_log_sd_ratio == pytest.approx(0, abs=1e-12)
    np.testing.assert_allclose(tr.slopes_synthetic, tr.slopes_real, atol=1e-9)   # same trajectories shifted by 1
    assert tr.slope_ks == pytest.approx(stats.ks_2samp(tr.slopes_real, tr.slopes_synthetic).statistic, abs=1e-12)
    assert tr.slope_mean_real == pytest.approx(tr.slope_mean_synthetic)


def test_detection_auc_separates_shifted_data_and_is_reproducible():
    rng = np.random.default_rng(5)
    real = patient_features(population(300, rng), TTE)
    same = patient_features(population(300, rng, prefix="S"), TTE)
    shifted = patient_features(population(300, rng, shift=20.0, prefix="S"), TTE)   # x1 shifted by 2 SD
    auc_same, folds = detection_auc(real, same, rng=np.random.default_rng(6))
    assert folds.shape == (5,) and abs(auc_same - 0.5) < 0.08
    assert detection_auc(real, same, rng=np.random.default_rng(6))[0] == auc_same
    assert detection_auc(real, shifted, rng=np.random.default_rng(6))[0] > 0.85   # x1 alone: Phi(sqrt 2) = 0.92


# ------------------------------------------------------------------------------------- utility metrics
def _c_index_brute(t, e, r):
    num = den = 0.0
    for i in range(len(t)):
        for j in range(len(t)):
            if e[i] and (t[i] < t[j] or (t[i] == t[j] and not e[j])):
                den += 1
                num += 1.0 if r[i] > r[j] else 0.5 if r[i] == r[j] else 0.0
    return num / den


def test_concordance_index_matches_brute_force_with_ties():
    rng = np.random.default_rng(7)
    t = rng.integers(1, 15, 150).astype(float)   # many tied times
    e = rng.integers(0, 2, 150)
    r = rng.integers(0, 6, 150).astype(float)    # many tied risks
    assert concordance_index(t, e, r, chunk=17) == pytest.approx(_c_index_brute(t, e, r), abs=1e-12)
    assert concordance_index(t, e, -t) == pytest.approx(_c_index_brute(t, e, -t), abs=1e-12)
    t = np.arange(1.0, 11.0)
    assert concordance_index(t, np.ones(10), -t) == 1.0 and concordance_index(t, np.ones(10), t) == 0.0
    assert np.isnan(concordance_index(t, np.zeros(10), t))


def test_utility_scores_match_statsmodels_references(tte_split):
    train, holdout = tte_split
    report = evaluate_generator(IndependentGenerator(), train, holdout, TTE, rng=np.random.default_rng(8))
    # reference: Cox fitted through the statsmodels formula interface (treatment coding, median imputation)
    def prep(d):
        return d.assign(x2=d["x2"].fillna(train["x2"].median()), c=d["c"].fillna(MISSING).astype(str))
    tr, ho = prep(train), prep(holdout)
    fit = sm.PHReg.from_formula("time ~ x1 + x2 + C(c)", tr, status=tr["event"].to_numpy(), ties="breslow").fit()
    x = pd.get_dummies(ho["c"], dtype=float).reindex(columns=sorted(set(tr["c"])), fill_value=0.0)
    lp = ho[["x1", "x2"]].to_numpy() @ fit.params[-2:] + x.iloc[:, 1:].to_numpy() @ fit.params[:-2]
    assert report.utility.real == pytest.approx(_c_index_brute(ho["time"].to_numpy(), ho["event"].to_numpy(), lp),
                                                abs=1e-9)
    assert 0.55 < report.utility.synthetic < 0.7 and report.utility.ratio == pytest.approx(
        report.utility.synthetic / report.utility.real)


def test_continuous_and_binary_utility_against_statsmodels_and_sklearn():
    from sklearn.linear_model import LogisticRegression
    rng = np.random.default_rng(9)
    base = population(600, rng)
    base["y"] = 0.1 * base["x1"] + (base["c"] == "b").fillna(False).astype(float) * 2 + rng.normal(size=600)
    base["yb"] = (base["y"] > base["y"].median()).astype(int)
    train, holdout = base.iloc[:400], base.iloc[400:]
    for outcome in ("continuous", "binary"):
        value = "y" if outcome == "continuous" else "yb"
        schema = CohortSchema.from_dict({"id": "id", "baseline": {"numeric": ["x1"], "categorical": ["c"]},
                                         "outcome": {"type": outcome, "value": value}})
        cols = ["id", "x1", "c", value]

        class Gen:
            schema_ = schema

            def sample(self, n, *, rng):
                return train[cols].iloc[rng.integers(0, len(train), n)].assign(id=[f"S{i}" for i in range(n)])

        rep = evaluate_generator(Gen(), train[cols], holdout[cols], schema, rng=np.random.default_rng(10))
        xd = [pd.get_dummies(d["c"].fillna(MISSING), dtype=float).reindex(columns=["b", "c", MISSING],
                                                                            fill_value=0.0)
              .assign(x1=d["x1"].to_numpy()) for d in (train, holdout)]
        if outcome == "continuous":
            pred = sm.OLS(train["y"], sm.add_constant(xd[0])).fit().predict(sm.add_constant(xd[1]))
            y = holdout["y"]
            assert rep.utility.real == pytest.approx(1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2),
                                                     abs=1e-9)
            assert rep.fidelity.outcome.metric == "KS"
        else:
            # the documented design: numeric standardised (training mean/SD), dummies as 0/1
            z = [d.assign(x1=(d["x1"] - xd[0]["x1"].mean()) / xd[0]["x1"].std(ddof=0)) for d in xd]
            p = LogisticRegression(C=1.0, max_iter=1000).fit(z[0], train["yb"]).decision_function(z[1])
            assert rep.utility.real == pytest.approx(roc_auc_score(holdout["yb"], p), abs=1e-6)
            oc = rep.fidelity.outcome
            assert oc.positive == "1" and oc.mean_real == pytest.approx(train["yb"].mean())


# ------------------------------------------------------------------------------------- privacy metrics
def _gower_brute(a, b, ref):
    """The Gower distance of the evaluate_privacy docstring, one pair and one feature at a time."""
    cols = list(ref.columns)
    num = {c for c in cols if pd.api.types.is_float_dtype(ref[c])}
    span = {c: ref[c].max() - ref[c].min() for c in num}
    rows_a = [[a[c].iloc[i] for c in cols] for i in range(len(a))]
    rows_b = [[b[c].iloc[j] for c in cols] for j in range(len(b))]
    out = np.zeros((len(a), len(b)))
    for i, ra in enumerate(rows_a):
        for j, rb in enumerate(rows_b):
            total = 0.0
            for c, x, y in zip(cols, ra, rb):
                if c not in num:
                    total += float(x != y)
                elif np.isnan(x) or np.isnan(y):
                    total += 0.0 if np.isnan(x) and np.isnan(y) else 1.0
                elif span[c] == 0:
                    total += float(x != y)
                else:
                    total += min(1.0, abs(x - y) / span[c])
            out[i, j] = total / len(cols)
    return out


def test_gower_distance_and_dcr_brute_force():
    rng = np.random.default_rng(11)
    ref = patient_features(population(25, rng), TTE).assign(k=1.0)   # k: zero-range column
    other = patient_features(population(18, rng, shift=15.0, prefix="S"), TTE).assign(k=rng.integers(1, 3, 18) * 1.0)
    brute = _gower_brute(other, ref, ref)
    np.testing.assert_allclose(gower_matrix(other, ref, ref), brute, atol=1e-12)
    np.testing.assert_allclose(closest_distance(other, ref, ref, chunk=4), brute.min(axis=1), atol=1e-12)
    assert brute.max() <= 1 and np.all(np.diag(_gower_brute(ref, ref, ref)) == 0)


def test_exact_copies_roc_auc_and_privacy_summary():
    rng = np.random.default_rng(12)
    train = patient_features(population(60, rng), TTE)
    holdout = patient_features(population(40, rng, prefix="H"), TTE)
    synth = pd.concat([train.iloc[:15], patient_features(population(45, rng, prefix="S"), TTE)])
    assert exact_copy_rate(synth, train) == pytest.approx(15 / 60)
    moved = synth.copy()
    moved.iloc[0, 0] += 1e-9
    assert exact_copy_rate(moved, train) == pytest.approx(14 / 60)
    labels, scores = rng.integers(0, 2, 200), rng.integers(0, 10, 200)
    assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    p = privacy_metrics(train, holdout, synth)
    dcr_s = _gower_brute(synth, train, train).min(axis=1)
    dcr_h = _gower_brute(holdout, train, train).min(axis=1)
    np.testing.assert_allclose(p.dcr_synthetic, dcr_s, atol=1e-12)
    assert p.dcr_holdout_median == pytest.approx(np.median(dcr_h)) and p.dcr_holdout_p5 == pytest.approx(
        np.percentile(dcr_h, 5))
    assert p.share_closer_than_holdout_p5 == pytest.approx(np.mean(dcr_s < np.percentile(dcr_h, 5)))
    d_tr = _gower_brute(train, synth, train).min(axis=1)
    d_ho = _gower_brute(holdout, synth, train).min(axis=1)
    assert p.membership_auc == pytest.approx(roc_auc_score(np.r_[np.ones(60), np.zeros(40)], -np.r_[d_tr, d_ho]))


# ------------------------------------------------------------------------------ split and sanity checks
def test_split_keeps_patients_together_and_is_reproducible():
    data = pd.read_csv(DATA / "aids_ddi_ddc_long.csv")
    tr, ho = split_train_holdout(data, AIDS, holdout_fraction=0.3, rng=np.random.default_rng(13))
    assert not set(tr["pid"]) & set(ho["pid"]) and len(tr) + len(ho) == len(data)
    assert ho["pid"].nunique() == round(0.3 * data["pid"].nunique())
    assert ho.groupby("pid").size().equals(data[data["pid"].isin(ho["pid"])].groupby("pid").size())
    tr2, _ = split_train_holdout(data, AIDS, holdout_fraction=0.3, rng=np.random.default_rng(13))
    pd.testing.assert_frame_equal(tr, tr2)
    with pytest.raises(InvalidDataError, match="holdout_fraction"):
        split_train_holdout(data, AIDS, holdout_fraction=1.5, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        split_train_holdout(data, AIDS, rng=13)


def test_copy_generator_is_caught_by_privacy_metrics(tte_split):
    train, holdout = tte_split
    r = evaluate_generator(CopyGenerator(train), train, holdout, TTE, rng=np.random.default_rng(14))
    assert r.privacy.exact_copy_rate == 1.0 and r.privacy.exact_copy_rate_holdout == 0.0
    assert r.privacy.membership_auc > 0.95 and r.privacy.share_closer_than_holdout_p5 == 1.0
    assert r.privacy.dcr_synthetic_median == 0.0


def test_independent_sample_is_indistinguishable_and_leaks_nothing(tte_split):
    # 300 holdout vs 700 synthetic patients: over 30 seeds the detection AUC had mean 0.505, SD 0.025 and the
    # membership AUC mean 0.493, SD 0.023, so +-0.07 is about 3 SD.
    train, holdout = tte_split
    r = evaluate_generator(IndependentGenerator(), train, holdout, TTE, rng=np.random.default_rng(15))
    assert (r.n_train, r.n_holdout, r.n_synthetic) == (700, 300, 700)
    assert abs(r.fidelity.detection_auc - 0.5) < 0.07 and abs(r.privacy.membership_auc - 0.5) < 0.07
    assert r.privacy.exact_copy_rate == 0.0 and r.fidelity.km.sup_distance < 0.1
    assert r.fidelity.marginals["statistic"].max() < 0.1 and r.utility.ratio > 0.9


def test_bad_generator_is_detected(tte_split):
    train, holdout = tte_split
    r = evaluate_generator(BadGenerator(), train, holdout, TTE, rng=np.random.default_rng(16), n_synthetic=300)
    assert r.n_synthetic == 300 and r.fidelity.detection_auc > 0.95
    s = r.summary().set_index("name")
    assert s.loc["marginal KS: x1", "value"] > 0.5 and not s.loc["marginal KS: x1", "meets_target"]
    assert r.utility.synthetic < 0.56 and r.utility.ratio < 0.9   # shuffled times: no signal left to learn


# ---------------------------------------------------------------------------- real generator, report
@pytest.fixture(scope="module")
def real_reports():
    out = {}
    va = CohortSchema.from_toml(ROOT / "cohorts" / "builtin" / "va_lung.toml")
    for name, path, schema in (("va", "va_lung.csv", va), ("aids", "aids_ddi_ddc_long.csv", AIDS)):
        data = pd.read_csv(DATA / path)
        tr, ho = split_train_holdout(data, schema, rng=np.random.default_rng(1))
        g = get_generator("default").fit(tr, schema, rng=np.random.default_rng(2))
        out[name] = evaluate_generator(g, tr, ho, schema, rng=np.random.default_rng(3))
    return out


def test_default_generator_on_real_trials(real_reports):
    va, aids = real_reports["va"], real_reports["aids"]
    assert va.generator == "default" and va.fidelity.km is not None and va.fidelity.trajectory is None
    assert list(aids.fidelity.trajectory.per_visit["visit"]) == [0, 2, 6, 12, 18]
    for r in (va, aids):
        assert r.fidelity.detection_auc < 0.8 and r.privacy.membership_auc < 0.6
        assert r.fidelity.marginals["statistic"].max() < 0.2 and r.utility.ratio > 0.6
        assert r.privacy.exact_copy_rate < 0.05
    assert va.privacy.exact_copy_rate == 0.0


def test_report_summary_and_json(real_reports):
    r = real_reports["aids"]
    s = r.summary()
    assert list(s.columns) == ["section", "name", "value", "better", "target", "meets_target"]
    assert set(s["section"]) == {"fidelity", "utility", "privacy"}
    assert set(s["better"].dropna()) <= {"lower", "higher"}
    assert s["name"].is_unique and s["value"].notna().all()
    row = s.set_index("name").loc["detection AUC (holdout vs synthetic)"]
    assert row["value"] == r.fidelity.detection_auc and row["target"] == 0.6 and row["better"] == "lower"
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert d["utility"]["ratio"] == pytest.approx(r.utility.ratio)
    assert d["privacy"]["dcr_synthetic"] == pytest.approx(list(r.privacy.dcr_synthetic))
    assert len(d["summary"]) == len(s) and d["notes"] == []
    assoc = d["fidelity"]["association_difference"]
    assert assoc["columns"] == assoc["index"] == list(r.fidelity.association_difference.columns)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.n_train = 0


def test_evaluation_modules_do_not_import_analysis_or_streamlit():
    for name in ("evaluate.py", "evaluate_fidelity.py", "evaluate_privacy.py"):
        tree = ast.parse((ROOT / "cohorts" / name).read_text())
        mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        mods |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not {m for m in mods if m and m.split(".")[0] in ("analysis", "trials", "streamlit")}
