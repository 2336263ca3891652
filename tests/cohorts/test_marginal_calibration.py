"""Marginal calibration of the neural families (empirical quantile mapping onto the training marginals)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cohorts.generators.marginal_calibration import MarginalCalibration, calibrate, calibrated_sample
from cohorts.generators.tvae import TVAEBaseline


def _ks_bound(n: int, m: int, alpha: float = 0.001) -> float:
    """Two-sample Kolmogorov-Smirnov critical value (asymptotic), ``c(alpha) sqrt((n + m) / (n m))``."""
    return np.sqrt(-0.5 * np.log(alpha / 2)) * np.sqrt((n + m) / (n * m))


def test_a_continuous_model_marginal_becomes_the_training_marginal_and_keeps_its_ranks():
    rng = np.random.default_rng(1)
    train = pd.DataFrame({"x": rng.exponential(3.0, 400)})            # skewed training values
    reference = pd.DataFrame({"x": rng.normal(0.0, 1.0, 20_000)})     # the model's (wrong) marginal
    cal = MarginalCalibration().fit(train, ["x"], reference)
    raw = pd.DataFrame({"x": rng.normal(0.0, 1.0, 5_000)})
    out = cal.apply(raw, rng=np.random.default_rng(2))["x"].to_numpy()
    # the calibrated values follow the training distribution (KS two-sample test at the 0.1 % level)
    assert stats.ks_2samp(out, train["x"]).statistic < _ks_bound(5_000, 400)
    assert stats.ks_2samp(raw["x"], train["x"]).statistic > 0.3                  # and the raw ones did not
    # the map is monotone: the joint ranks of the model are kept
    order = np.argsort(raw["x"].to_numpy())
    assert np.all(np.diff(out[order]) >= 0)
    assert out.min() >= train["x"].min() and out.max() <= train["x"].max()


def test_heaped_integers_come_back_and_ties_in_the_model_output_are_spread():
    rng = np.random.default_rng(3)
    # tumour sizes heaped at multiples of 5 (70 % of patients); the model's output coarse (multiples of 10), so
    # each of its values is a large tie standing for many training values
    heaped = rng.random(600) < 0.7
    size = np.where(heaped, 5 * np.rint(rng.gamma(6, 1.0, 600)), np.rint(rng.gamma(6, 5.0, 600)))
    train = pd.DataFrame({"tsize": np.clip(size, 3, 120).astype(np.int64)})
    model = lambda m, r: pd.DataFrame({"tsize": np.clip(10 * np.rint(r.gamma(6, 0.5, m)), 3, 120).astype(np.int64)})  # noqa: E731
    cal = MarginalCalibration().fit(train, ["tsize"], model(20_000, rng))
    out = cal.apply(model(4_000, rng), rng=np.random.default_rng(4))["tsize"]
    assert out.dtype == np.int64
    share_train = np.mean(train["tsize"] % 5 == 0)
    share_out = np.mean(out % 5 == 0)
    se = np.sqrt(share_train * (1 - share_train) * (1 / 600 + 1 / 4_000))
    assert abs(share_out - share_train) < 4 * se                      # the heaping is reproduced
    # the model's tied values are spread over the training values they stand for: the calibrated column has the
    # training distribution, which a map sending each tie to one value could not give (KS at the 0.1 % level)
    assert stats.ks_2samp(out, train["tsize"]).statistic < _ks_bound(4_000, 600)
    assert set(np.unique(out)) <= set(range(int(train["tsize"].min()), int(train["tsize"].max()) + 1))


def test_rows_are_mapped_one_by_one_and_missing_values_stay_missing():
    rng = np.random.default_rng(5)
    train = pd.DataFrame({"a": rng.normal(50, 10, 200), "b": rng.lognormal(1, 1, 200)})
    cal = MarginalCalibration().fit(train, ["a", "b"], pd.DataFrame({"a": rng.normal(0, 1, 5000),
                                                                       "b": rng.normal(0, 1, 5000)}))
    raw = pd.DataFrame({"a": rng.normal(0, 1, 50), "b": rng.normal(0, 1, 50)})
    raw.loc[[3, 17], "b"] = np.nan
    whole = cal.apply(raw, rng=np.random.default_rng(6))
    first = cal.apply(raw.iloc[:10], rng=np.random.default_rng(6))
    pd.testing.assert_frame_equal(whole.iloc[:10], first)               # a row does not depend on the others
    assert whole["b"].isna().tolist() == raw["b"].isna().tolist()
    assert cal.apply(raw.iloc[:1], rng=np.random.default_rng(7))["a"].iloc[0] != \
        cal.apply(raw.iloc[1:2], rng=np.random.default_rng(7))["a"].iloc[0]   # one row is not the median


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(8)
    n = 300
    size = np.where(rng.random(n) < 0.7, 5 * np.rint(rng.gamma(5, 1.0, n)), np.rint(rng.gamma(5, 5.0, n)))
    return pd.DataFrame({"tsize": np.clip(size, 3, 120).astype(np.int64), "age": rng.normal(55, 10, n),
                         "grade": rng.choice(["1", "2", "3"], n)})


def test_a_neural_model_is_calibrated_by_default_but_not_under_dp_or_when_switched_off(table):
    fit = dict(rng=np.random.default_rng(9))
    on = TVAEBaseline(epochs=5).fit(table, ["tsize", "age"], ["grade"], **fit)
    assert on.calibration_ is not None and on.calibration_.columns_ == ["tsize", "age"]
    off = TVAEBaseline(epochs=5, calibrate_marginals=False).fit(table, ["tsize", "age"], ["grade"],
                                                                rng=np.random.default_rng(9))
    assert off.calibration_ is None
    dp = TVAEBaseline(epochs=1, dp_epsilon=5.0).fit(table, ["tsize", "age"], ["grade"], rng=np.random.default_rng(9))
    assert dp.calibration_ is None            # the training values would otherwise travel with a DP model
    # after 5 epochs the network's marginals are poor; the calibrated ones are the training marginals
    s_on = on.sample(3000, rng=np.random.default_rng(10))
    s_off = off.sample(3000, rng=np.random.default_rng(10))
    for c in ("tsize", "age"):
        assert stats.ks_2samp(s_on[c], table[c]).statistic < _ks_bound(3000, len(table))
    assert stats.ks_2samp(s_off["age"], table["age"]).statistic > stats.ks_2samp(s_on["age"], table["age"]).statistic
    assert s_on["tsize"].dtype == table["tsize"].dtype


class _NarrowModel:
    """A stand-in network whose age output is narrow: rounded, it takes three values (large ties)."""

    dp_epsilon = None

    def __init__(self):
        self.transformer_ = SimpleNamespace(info_=[SimpleNamespace(name="age", kind="continuous"),
                                                   SimpleNamespace(name="sbp", kind="continuous")])

    def _sample_model(self, n, *, rng, raw_continuous=False):
        f = rng.standard_normal(n)
        age, sbp = 60 + 0.4 * f, 130 + 12 * f + 4 * rng.standard_normal(n)
        return pd.DataFrame({"age": age if raw_continuous else np.rint(age).astype(np.int64), "sbp": sbp})


def test_calibration_keeps_the_networks_rank_correlations():
    """Calibration is monotone on the network's own floats (before rounding), so an integer column keeps its rank
    correlation with the others: spreading rounded ties at random had cost an age column 0.69 of its Spearman
    correlation on the speed benchmark's table."""
    rng = np.random.default_rng(11)
    f = rng.standard_normal(400)
    table = pd.DataFrame({"age": np.clip(np.rint(60 + 10 * f + 3 * rng.standard_normal(400)), 18, 90).astype(np.int64),
                          "sbp": 130 + 12 * f + 6 * rng.standard_normal(400)})
    model = _NarrowModel()
    model.calibration_ = calibrate(model, table, enabled=True, rng=np.random.default_rng(12))
    raw = model._sample_model(4000, rng=np.random.default_rng(13), raw_continuous=True)
    cal = calibrated_sample(model, 4000, rng=np.random.default_rng(13))
    rho_raw = stats.spearmanr(raw["age"], raw["sbp"]).statistic
    rho_cal = stats.spearmanr(cal["age"], cal["sbp"]).statistic
    assert abs(rho_cal - rho_raw) < 0.02, (rho_raw, rho_cal)      # only the rounding of the calibrated age ties
    assert cal["age"].dtype == np.int64 and cal["age"].between(table["age"].min(), table["age"].max()).all()
    assert stats.ks_2samp(cal["age"], table["age"]).statistic < _ks_bound(4000, 400)
