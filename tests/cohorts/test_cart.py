"""The ``cart`` family: :class:`SequentialCART` (synthpop-style sequential CART with leaf-member sampling).

References are independent of the model: the training data themselves (two-sample KS, total variation,
Spearman, group means), closed forms (binomial bounds, the uniform law of a leaf draw) and a Gaussian copula
fitted to the same data (to show that the nonlinear-dependence metric can fail).

Tolerances. Synthetic samples have ``N_SYN = 5000`` rows. A proportion ``p`` estimated from them has
``SE = sqrt(p (1 - p) / N_SYN)`` (0.0042 at p = 0.1). Where the model's own rate equals the training rate by
construction (the first visited column is drawn from its empirical marginal) the bound is ``4 SE``; for later
columns the model's rate is itself an estimate from ``n`` training rows, so the bound is
``4 sqrt(p (1 - p) (1 / N_SYN + 1 / n))``. Total variation: sampling alone gives
``E[TV] = 0.5 sum_k sqrt(2 p_k (1 - p_k) / (pi N_SYN))``, about 0.01 for 2-4 levels; the limit 0.05 leaves
room for tree error (the test asserts it is at least 3x the sampling term).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cohorts.errors import InvalidDataError, InvalidScenarioError, NotFittedError
from cohorts.generators import CARTGenerator, GaussianCopula, get_generator
from cohorts.generators.cart import SequentialCART
from cohorts.schema import CohortSchema

DATA = Path(__file__).resolve().parents[1] / "data"
N_SYN = 5000
Z = 4.0  # bound in standard errors for binomial checks
GBSG = (["age", "estrec", "pnodes", "progrec", "tsize"], ["horTh", "menostat", "tgrade"])
VA = (["Age_in_years", "Karnofsky_score", "Months_from_Diagnosis"], ["Celltype", "Prior_therapy", "Treatment"])
_CACHE: dict = {}


def synth(key, data_fn, numeric, categorical, *, seed=0, n=N_SYN, **kw):
    """(training frame, synthetic frame, model), cached per key."""
    if key not in _CACHE:
        data = data_fn()
        model = SequentialCART(**kw).fit(data, numeric, categorical, rng=np.random.default_rng(seed))
        _CACHE[key] = (data, model.sample(n, rng=np.random.default_rng(seed + 1000)), model)
    return _CACHE[key]


def gbsg2():
    return synth("gbsg2", lambda: pd.read_csv(DATA / "gbsg2.csv"), *GBSG)


def tv_distance(a: pd.Series, b: pd.Series) -> float:
    pa, pb = a.value_counts(normalize=True), b.value_counts(normalize=True)
    return float(0.5 * pa.sub(pb, fill_value=0).abs().sum())


def binomial_bound(p: float, n_train: int | None = None) -> float:
    return Z * np.sqrt(p * (1 - p) * (1 / N_SYN + (1 / n_train if n_train else 0.0)))


# ---------------------------------------------------------------------------- marginals and dependence
@pytest.mark.parametrize("case", ["gbsg2", "va_lung"])
def test_marginals_are_preserved(case):
    numeric, categorical = GBSG if case == "gbsg2" else VA
    data, syn, _ = synth(case, lambda: pd.read_csv(DATA / f"{case}.csv"), numeric, categorical)
    for c in numeric:
        assert stats.ks_2samp(data[c], syn[c]).pvalue > 0.001, c
    for c in categorical:
        p = data[c].value_counts(normalize=True).to_numpy()
        sampling_tv = 0.5 * np.sum(np.sqrt(2 * p * (1 - p) / (np.pi * N_SYN)))
        assert 0.05 >= 3 * sampling_tv
        assert tv_distance(data[c], syn[c]) < 0.05, c
    # the KS check can fail: a location shift of half an SD is detected even with 137 real rows
    c = numeric[0]
    assert stats.ks_2samp(data[c], syn[c] + 0.5 * data[c].std()).pvalue < 0.001


def _spearman_gap(real: pd.DataFrame, syn: pd.DataFrame, cols) -> float:
    return float((real[cols].corr("spearman") - syn[cols].corr("spearman")).abs().to_numpy().max())


def _group_mean_z(real: pd.DataFrame, syn: pd.DataFrame, group: str, value: str) -> pd.Series:
    """(real - synthetic) group means in standard errors of the difference."""
    r = real.groupby(group)[value].agg(["mean", "var", "count"])
    s = syn.groupby(group)[value].agg(["mean", "var", "count"])
    return (r["mean"] - s["mean"]) / np.sqrt(r["var"] / r["count"] + s["var"] / s["count"])


def test_pairwise_dependence_is_preserved_on_gbsg2():
    data, syn, _ = gbsg2()
    numeric, _ = GBSG
    assert _spearman_gap(data, syn, numeric) < 0.08  # real Spearman estrec-progrec 0.60, age-estrec 0.26
    pairs = [("menostat", "age"), ("horTh", "age"), ("tgrade", "progrec")]
    for group, value in pairs:
        assert (_group_mean_z(data, syn, group, value).abs() < 3).all(), (group, value)
    # the same checks fail for synthetic columns drawn independently (each permuted on its own)
    rng = np.random.default_rng(7)
    independent = syn.apply(lambda s: s.sample(frac=1, random_state=int(rng.integers(2**31))).to_numpy())
    assert _spearman_gap(data, independent, numeric) > 0.08
    assert (_group_mean_z(data, independent, "menostat", "age").abs() > 3).any()


def _parabola():
    rng = np.random.default_rng(1)
    x = rng.uniform(-2, 2, 1000)
    return pd.DataFrame({"x": x, "y": x**2 + rng.normal(0, 0.3, 1000)})


def _parabola_metrics(f: pd.DataFrame) -> tuple[float, float]:
    """Spearman(|x|, y) and the mean squared deviation of y from x^2 (the noise variance, 0.09, in the data)."""
    return float(stats.spearmanr(np.abs(f["x"]), f["y"])[0]), float(np.mean((f["y"] - f["x"] ** 2) ** 2))


@pytest.mark.parametrize("order", [None, ["y", "x"]], ids=["x-then-y", "y-then-x"])
def test_nonlinear_dependence_that_a_copula_misses(order):
    data, syn, _ = synth(("parabola", str(order)), _parabola, ["x", "y"], [], visit_order=order)
    rho_real, mse_real = _parabola_metrics(data)
    rho_syn, mse_syn = _parabola_metrics(syn)
    assert rho_real > 0.9 and abs(rho_syn - rho_real) < 0.05
    assert mse_syn < 1.5 * mse_real  # leaf width adds a little noise around the parabola
    copula = GaussianCopula().fit(data, ["x", "y"], [], rng=np.random.default_rng(2)).sample(
        N_SYN, rng=np.random.default_rng(3))
    rho_cop, mse_cop = _parabola_metrics(copula)
    assert rho_cop < 0.2 and mse_cop > 10 * mse_real  # the copula makes y independent of |x|


# ---------------------------------------------------------------------------- missingness, domain, rare levels
def _with_missing():
    rng = np.random.default_rng(3)
    n = 800
    age = np.round(rng.normal(60, 10, n), 1)
    grp = rng.choice(["a", "b"], n, p=[0.6, 0.4])
    lab = np.round(rng.lognormal(3, 0.5, n), 2)
    lab[rng.random(n) < np.where(grp == "b", 0.4, 0.05)] = np.nan  # depends on a later (categorical) column
    bmi = np.round(rng.normal(25, 4, n), 1)
    bmi[rng.random(n) < np.where(age > 65, 0.3, 0.02)] = np.nan  # depends on an earlier (numeric) column
    sex = pd.Series(rng.choice(["f", "m"], n), dtype="str")
    sex[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({"age": age, "lab": lab, "bmi": bmi, "grp": pd.Series(grp, dtype="str"), "sex": sex})


def test_missingness_rates_and_dependence_are_reproduced():
    data, syn, _ = synth("missing", _with_missing, ["age", "lab", "bmi"], ["grp", "sex"])
    n = len(data)
    for c in ("lab", "bmi", "sex"):
        p = data[c].isna().mean()
        assert abs(syn[c].isna().mean() - p) < binomial_bound(p, n), c
    assert not syn[["age", "grp"]].isna().any().any()
    for miss, by_real, by_syn in [("lab", data["grp"], syn["grp"]),
                                  ("bmi", data["age"] > 65, syn["age"] > 65)]:
        real = data[miss].isna().groupby(by_real).mean()
        got = syn[miss].isna().groupby(by_syn).mean()
        n_syn = by_syn.value_counts()
        for level, p in real.items():
            n_train = int((by_real == level).sum())
            bound = Z * np.sqrt(p * (1 - p) * (1 / n_syn[level] + 1 / n_train))
            assert abs(got[level] - p) < bound, (miss, level)
        assert real.max() - real.min() > 0.2 and got.max() - got.min() > 0.2  # the dependence is strong


def test_first_visited_column_has_the_exact_empirical_marginal():
    data = _with_missing()
    model = SequentialCART(visit_order=["bmi"]).fit(data, ["age", "lab", "bmi"], ["grp", "sex"],
                                                    rng=np.random.default_rng(4))
    syn = model.sample(N_SYN, rng=np.random.default_rng(5))
    p = data["bmi"].isna().mean()
    assert abs(syn["bmi"].isna().mean() - p) < binomial_bound(p)
    assert stats.ks_2samp(data["bmi"].dropna(), syn["bmi"].dropna()).pvalue > 0.001


def _mixed_dtypes():
    rng = np.random.default_rng(6)
    n = 1000
    rare = np.array(["common"] * 980 + ["rare"] * 20, dtype=object)[rng.permutation(n)]  # exactly 2 %
    visits = pd.array(rng.poisson(3, n), dtype="Int64")
    visits[rng.random(n) < 0.05] = pd.NA
    return pd.DataFrame({
        "dose": rng.gamma(2.0, 1.3, n),  # continuous: every value distinct
        "count": rng.poisson(4, n).astype(np.int64),
        "visits": visits,
        "stage": pd.Categorical(rng.choice(["I", "II", "III"], n), categories=["I", "II", "III", "IV"],
                                ordered=True),
        "site": pd.Series(rare, dtype="str"),
    })


def test_every_synthetic_value_was_observed_and_dtypes_are_kept():
    data, syn, _ = synth("mixed", _mixed_dtypes, ["dose", "count", "visits"], ["stage", "site"])
    g_data, g_syn, _ = gbsg2()
    for real, fake in ((data, syn), (g_data, g_syn)):
        for c in fake.columns:
            assert fake[c].dtype == real[c].dtype, c
            assert set(fake[c].dropna()) <= set(real[c].dropna()), c
    assert syn["dose"].nunique() > 500  # many distinct continuous values, all of them training values
    assert syn["visits"].isna().any() and "IV" not in set(syn["stage"])


def test_rare_category_frequency_within_binomial_bounds():
    data, syn, _ = synth("mixed", _mixed_dtypes, ["dose", "count", "visits"], ["stage", "site"])
    p = 0.02
    assert abs((syn["site"] == "rare").mean() - p) < binomial_bound(p, len(data))  # after 4 columns
    first = SequentialCART(visit_order=["site"]).fit(data, ["dose", "count", "visits"], ["stage", "site"],
                                                     rng=np.random.default_rng(1))
    rate = (first.sample(N_SYN, rng=np.random.default_rng(2))["site"] == "rare").mean()
    assert abs(rate - p) < binomial_bound(p)  # first column: exactly the empirical 2 %


def test_a_leaf_draw_is_uniform_over_the_training_members_of_that_leaf():
    """One binary predictor: the tree's leaves are the two groups, so y | group must be a uniform draw from
    the training y of that group (chi-square of member counts against equal counts)."""
    rng = np.random.default_rng(8)
    g = rng.choice(["a", "b"], 400)
    data = pd.DataFrame({"y": np.where(g == "a", 0.0, 3.0) + rng.normal(0, 1, 400), "g": pd.Series(g, dtype="str")})
    model = SequentialCART(visit_order=["g", "y"]).fit(data, ["y"], ["g"], rng=np.random.default_rng(9))
    syn = model.sample(8000, rng=np.random.default_rng(10))
    for level in ("a", "b"):
        members = data.loc[data["g"] == level, "y"]
        drawn = syn.loc[syn["g"] == level, "y"]
        assert set(drawn) <= set(members)
        counts = drawn.value_counts().reindex(members.to_numpy(), fill_value=0).to_numpy()
        assert stats.chisquare(counts).pvalue > 0.001, level


def test_density_smoothing_stays_in_range_and_keeps_the_shape():
    data, syn, _ = synth("smooth", _parabola, ["x", "y"], [], smoothing="density")
    for c in ("x", "y"):
        assert syn[c].between(data[c].min(), data[c].max()).all()
        assert stats.ks_2samp(data[c], syn[c]).pvalue > 0.001
    assert syn["y"].isin(data["y"]).mean() < 0.5  # smoothed: mostly new values
    rho_real, mse_real = _parabola_metrics(data)
    rho_syn, mse_syn = _parabola_metrics(syn)
    assert abs(rho_syn - rho_real) < 0.05 and mse_syn < 2 * mse_real
    ints = pd.DataFrame({"k": np.random.default_rng(3).integers(0, 100, 300).astype(np.int64)})
    out = SequentialCART(smoothing="density").fit(ints, ["k"], [], rng=np.random.default_rng(0)).sample(
        500, rng=np.random.default_rng(1))
    assert out["k"].dtype == np.int64 and out["k"].between(ints["k"].min(), ints["k"].max()).all()


# ---------------------------------------------------------------------------- reproducibility, generator, errors
def test_same_seed_identical_different_seed_differs_and_sampling_does_not_mutate():
    data, _, model = gbsg2()
    before = pickle.dumps(model)
    a = model.sample(300, rng=np.random.default_rng(5))
    pd.testing.assert_frame_equal(a, model.sample(300, rng=np.random.default_rng(5)))
    assert not a.equals(model.sample(300, rng=np.random.default_rng(6)))
    assert pickle.dumps(model) == before
    refit = SequentialCART().fit(data, *GBSG, rng=np.random.default_rng(0))
    pd.testing.assert_frame_equal(a, refit.sample(300, rng=np.random.default_rng(5)))
    empty = model.sample(0, rng=np.random.default_rng(0))
    assert len(empty) == 0 and list(empty.dtypes) == list(a.dtypes)


def test_cart_generator_end_to_end():
    data = pd.read_csv(DATA / "gbsg2.csv")
    schema = CohortSchema.from_dict({"id": "patient_id", "baseline": {"numeric": GBSG[0], "categorical": GBSG[1]},
                                     "outcome": {"type": "tte", "time": "rfs_days", "event": "event"}})
    seen = []
    g = get_generator("cart", min_samples_leaf=10, max_depth=6, visit_order=["tgrade"])
    assert isinstance(g, CARTGenerator) and g.description
    assert g.get_params() == {"min_samples_leaf": 10, "max_depth": 6, "smoothing": None, "visit_order": ["tgrade"],
                              "min_visit_fraction": 0.05, "covariate_by_time": True}
    g.fit(data, schema, rng=np.random.default_rng(0), progress=lambda f, m: seen.append(f))
    assert isinstance(g.cart_, SequentialCART) and g.cart_.order_[0] == "tgrade" and seen[-1] == 1.0
    assert g.cart_.steps_["age"].value_step.tree.get_depth() <= 6
    out = g.sample(400, rng=np.random.default_rng(1))
    assert list(out.columns) == list(schema.columns) and out["patient_id"].iloc[0] == "S000001"


def test_errors_are_workbench_errors():
    data = pd.read_csv(DATA / "va_lung.csv")
    with pytest.raises(NotFittedError):
        SequentialCART().sample(5, rng=np.random.default_rng(0))
    with pytest.raises(InvalidDataError, match="Age"):
        SequentialCART(visit_order=["Age"]).fit(data, *VA, rng=np.random.default_rng(0))
    with pytest.raises(InvalidDataError, match="twice"):
        SequentialCART(visit_order=["Celltype", "Celltype"]).fit(data, *VA, rng=np.random.default_rng(0))
    with pytest.raises(InvalidScenarioError, match="density"):
        SequentialCART(smoothing="spline").fit(data, *VA, rng=np.random.default_rng(0))
    with pytest.raises(InvalidScenarioError, match="min_samples_leaf"):
        SequentialCART(min_samples_leaf=0).fit(data, *VA, rng=np.random.default_rng(0))
    with pytest.raises(InvalidDataError, match="not in the data"):
        SequentialCART().fit(data.drop(columns="Celltype"), *VA, rng=np.random.default_rng(0))
