"""CAFS scores and the Finkelstein-Schoenfeld test against a hand calculation, an independent R double loop
(tests/analysis/results/cafs_reference.R and its stored outputs), a Python double loop, and the Wilcoxon-Mann-
Whitney test (scipy) in the case without censoring, where the two coincide.

Scores are integers and must match exactly; test statistics to 1e-10 relative (R prints 15 digits).
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.estimators.cafs import cafs_batched, cafs_scores, cafs_test
from cohorts.errors import InvalidDataError

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data"
RESULTS = HERE / "results"
TOL = dict(rtol=1e-10, atol=1e-12)


@pytest.fixture(scope="module")
def reference():
    return json.loads((RESULTS / "cafs_reference.json").read_text())


@pytest.fixture(scope="module")
def hand():
    return pd.read_csv(RESULTS / "cafs_hand_scores.csv")


@pytest.fixture(scope="module")
def aids():
    """One row per patient of the ddI/ddC trial: follow-up to death (event) or last contact (time2 of the
    last row), change = last observed sqrt(CD4) minus baseline (visit 0)."""
    long = pd.read_csv(DATA / "aids_ddi_ddc_long.csv").sort_values(["pid", "time"])
    g = long.groupby("pid")
    base = long[long.time == 0].set_index("pid")["num_CD4"]
    return pd.DataFrame({"time": g["time2"].max(), "event": g["event"].max(),
                         "change": g["num_CD4"].last() - base, "fac_drug": g["fac_drug"].first()}).reset_index()


def test_hand_example_scores_by_hand(hand):
    """Six patients, horizon 12 (times in months; event 1 = death):

    ===  ====  =====  ======  =======  ==================================================================
     #   time  event  change  arm      pairs (+ win, - loss, 0 tie; S = survival, F = function)
    ===  ====  =====  ======  =======  ==================================================================
     1    3     1     -10     control  -S2 (died first) -S3 (censored at 4 >= 3) -S4 -S5 -S6      = -5
     2    6     1      -2     treated  +S1, -F3 (3 censored at 4 < 6: change -1 > -2), -S4 -S5 -S6 = -3
     3    4     0      -1     treated  +S1, +F2, +F4 +F5 +F6 (nobody else compared on survival)  = +5
     4   12     0      -5     control  +S1 +S2, -F3, 0 F5 (equal change), -F6 (-3 > -5)            =  0
     5   16     0      -5     control  +S1 +S2, -F3, 0 F4, -F6 (horizon: alive at 12, -3 > -5)     =  0
     6   15     1      -3     treated  death after the horizon = alive at 12: +S1 +S2, -F3, +F4 +F5 = +3
    ===  ====  =====  ======  =======  ==================================================================

    Without a horizon, patient 6 died at 15: 5 (followed to 16) now beats 6 on survival (+1 for 5, -1 for 6),
    while 4 (censored at 12 < 15) still meets 6 on function: scores -5, -3, 5, 0, 2, 1.
    """
    by_hand = {12.0: [-5, -3, 5, 0, 0, 3], None: [-5, -3, 5, 0, 2, 1]}
    for horizon, expected in by_hand.items():
        res = cafs_test(hand, time="time", event="event", change="change", arm="arm", treated_value="treated",
                        horizon=horizon)
        assert res.details["scores"] == expected
    # horizon 12: T = -3 + 5 + 3 = 5, sum U^2 = 68, V = 3*3/(6*5) * 68 = 20.4, d = T * 6 / 9
    res = cafs_test(hand, time="time", event="event", change="change", arm="arm", treated_value="treated",
                    horizon=12)
    np.testing.assert_allclose([res.details["sum_score_treated"], res.details["variance"], res.statistic,
                                res.estimate, res.details["se"]],
                               [5, 20.4, 5 / np.sqrt(20.4), 10 / 3, np.sqrt(20.4) * 6 / 9], **TOL)
    np.testing.assert_allclose(res.p_value, 2 * stats.norm.sf(5 / np.sqrt(20.4)), **TOL)
    # ranks of (-5, -3, 5, 0, 0, 3): 1, 2, 6, 3.5, 3.5, 5 -> treated (2, 6, 5), control (1, 3.5, 3.5)
    np.testing.assert_allclose([res.details["mean_rank_treated"], res.details["mean_rank_control"]],
                               [13 / 3, 8 / 3], **TOL)
    assert res.n_per_arm == (3, 3) and res.details["deaths"] == [1, 1]


def _check_summary(res, ref):
    np.testing.assert_allclose(
        [res.details["sum_score_treated"], res.details["variance"], res.statistic, res.p_value, res.estimate,
         res.details["se"], res.details["mean_score_control"], res.details["mean_score_treated"],
         res.details["mean_rank_control"], res.details["mean_rank_treated"]],
        [ref[k] for k in ("sum_score_treated", "variance", "z", "p_value", "estimate", "se",
                          "mean_score_control", "mean_score_treated", "mean_rank_control", "mean_rank_treated")],
        **TOL)
    assert res.n_per_arm == (ref["n_control"], ref["n_treated"])


@pytest.mark.parametrize("horizon", [12.0, None])
def test_hand_example_equals_r(hand, reference, horizon):
    key = "h12" if horizon else "none"
    res = cafs_test(hand, time="time", event="event", change="change", arm="arm", treated_value="treated",
                    horizon=horizon)
    assert res.details["scores"] == hand[f"score_{key}"].tolist()
    _check_summary(res, reference[f"hand_{key}"])


@pytest.mark.parametrize("horizon", [12.0, None])
def test_aids_equals_r(aids, reference, horizon):
    key = "h12" if horizon else "none"
    stored = pd.read_csv(RESULTS / "cafs_aids_scores.csv")
    np.testing.assert_allclose(aids[["time", "event", "change"]].to_numpy(),       # same patient table as R
                               stored[["time", "event", "change"]].to_numpy(), rtol=1e-9)
    res = cafs_test(aids, time="time", event="event", change="change", arm="fac_drug", treated_value="ddI",
                    horizon=horizon)
    np.testing.assert_array_equal(res.details["scores"], stored[f"score_{key}"].to_numpy())
    _check_summary(res, reference[f"aids_{key}"])


def _brute(t, d, c, horizon):
    """Python double loop over pairs (the rules of the module docstring, written out)."""
    n, u = len(t), np.zeros(len(t))
    for i in range(n):
        for j in range(n):
            if i == j or not (np.isfinite(t[i]) and np.isfinite(t[j])):
                continue
            ti, tj = min(t[i], horizon), min(t[j], horizon)
            di, dj = d[i] and t[i] <= horizon, d[j] and t[j] <= horizon
            s = 0
            if di and dj and ti != tj:
                s = 1 if ti > tj else -1
            elif di and not dj and tj >= ti:
                s = -1
            elif dj and not di and ti >= tj:
                s = 1
            elif not (np.isnan(c[i]) or np.isnan(c[j]) or c[i] == c[j]):
                s = 1 if c[i] > c[j] else -1
            u[i] += s
    return np.where(np.isfinite(t), u, np.nan)


@pytest.mark.parametrize("horizon", [8.0, None])
def test_scores_equal_double_loop_with_ties_and_missing(horizon):
    """Integer times and changes (many ties), 10 % missing changes, 5 % non-analysable patients."""
    rng = np.random.default_rng(3)
    R, N = 25, 30
    t = rng.integers(1, 12, (R, N)).astype(float)
    d = rng.random((R, N)) < 0.5
    c = rng.integers(-5, 3, (R, N)).astype(float)
    c[rng.random((R, N)) < 0.1] = np.nan
    t[rng.random((R, N)) < 0.05] = np.nan
    got = cafs_scores(t, d, c, horizon)
    ref = np.array([_brute(t[r], d[r], c[r], np.inf if horizon is None else horizon) for r in range(R)])
    np.testing.assert_array_equal(got, ref)
    assert np.nansum(got, axis=1).tolist() == [0] * R                       # wins and losses balance


def test_without_censoring_equals_mann_whitney():
    """Everyone followed to the horizon or dead before it: the CAFS order is a ranking, U = 2 rank - (N + 1),
    and the FS z equals the tie-corrected Wilcoxon-Mann-Whitney z (scipy, asymptotic, no continuity)."""
    rng = np.random.default_rng(4)
    R, N = 20, 40
    death = rng.exponential(15, (R, N)).round()
    died = death <= 12
    t = np.where(died, death, 12.0)
    c = rng.integers(-8, 1, (R, N)).astype(float)
    x = rng.random((R, N)) < 0.5
    res = cafs_batched(t, died, c, x, horizon=12)
    for r in range(R):
        mw = stats.mannwhitneyu(res.details["scores"][r, x[r]], res.details["scores"][r, ~x[r]],
                                method="asymptotic", use_continuity=False)
        np.testing.assert_allclose(res.p_value[r], mw.pvalue, **TOL)
        ranks = stats.rankdata(res.details["scores"][r])
        np.testing.assert_allclose(res.details["scores"][r], 2 * ranks - (N + 1), **TOL)


def test_batched_equals_single_with_undefined_replicates():
    rng = np.random.default_rng(6)
    R, N = 8, 25
    t = rng.uniform(1, 20, (R, N)).round(1)
    d = rng.random((R, N)) < 0.4
    c = rng.normal(-4, 3, (R, N)).round()
    x = rng.random((R, N)) < 0.5
    x[0] = False                            # one arm empty
    x[1, :] = False
    x[1, 0] = True                          # one treated patient
    d[2], c[2] = False, 0.0                 # nobody died, equal changes: every pair tied, V = 0
    t[3, ::2] = np.nan                      # half the patients not analysable (still defined)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = cafs_batched(t, d, c, x, horizon=15.0, alpha=0.1)
    assert np.isnan(np.c_[res.estimate, res.p_value, res.statistic, res.ci_low,
                          res.details["mean_rank_treated"]][:3]).all()
    assert not res.rejected(0.1)[:3].any()
    for r in range(R):
        frame = pd.DataFrame({"t": t[r], "e": d[r].astype(int), "c": c[r], "arm": np.where(x[r], "A", "B")})
        if r == 0:
            with pytest.raises(InvalidDataError, match="does not occur"):
                cafs_test(frame, time="t", event="e", change="c", arm="arm", treated_value="A")
            continue
        one = cafs_test(frame, time="t", event="e", change="c", arm="arm", treated_value="A", horizon=15.0,
                        alpha=0.1)
        got = [res.estimate[r], res.ci_low[r], res.ci_high[r], res.p_value[r], res.statistic[r],
               res.details["mean_rank_control"][r], res.details["mean_rank_treated"][r]]
        want = [one.estimate, one.ci_low, one.ci_high, one.p_value, one.statistic,
                one.details["mean_rank_control"], one.details["mean_rank_treated"]]
        np.testing.assert_allclose(got, want, **TOL)
        keep = np.isfinite(t[r])
        np.testing.assert_array_equal(res.details["scores"][r][keep], one.details["scores"])
        assert tuple(res.n_per_arm[r]) == one.n_per_arm
    assert res.n_per_arm[3].sum() == 12


def test_type_one_error_under_the_null_with_censoring():
    """Same survival, function and dropout in both arms, R = 3,000 trials of 80: rejection rate inside the
    99.9 % binomial band around 0.05 (+/- 0.013)."""
    rng = np.random.default_rng(7)
    R, N = 3000, 80
    death = rng.exponential(20, (R, N))
    drop = rng.uniform(3, 40, (R, N))
    t = np.minimum(death, drop)
    c = rng.normal(-1, 0.5, (R, N)) * np.minimum(t, 12) + rng.normal(0, 2, (R, N))
    x = rng.random((R, N)) < 0.5
    rate = cafs_batched(t, death <= drop, c.round(), x, horizon=12).rejected(0.05).mean()
    half = stats.norm.ppf(0.9995) * np.sqrt(0.05 * 0.95 / R)
    assert 0.05 - half <= rate <= 0.05 + half, rate


def test_bad_inputs_raise_clear_errors(hand):
    kw = dict(time="time", event="event", change="change", arm="arm", treated_value="treated")
    with pytest.raises(InvalidDataError, match="0/1"):
        cafs_test(hand.assign(event=2), **kw)
    with pytest.raises(InvalidDataError, match="horizon must be a positive"):
        cafs_test(hand, horizon=0, **kw)
    with pytest.raises(InvalidDataError, match="negative follow-up"):
        cafs_test(hand.assign(time=-hand.time), **kw)
    with pytest.raises(InvalidDataError, match="not found"):
        cafs_test(hand.drop(columns="change"), **kw)
