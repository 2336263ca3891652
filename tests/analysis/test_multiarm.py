"""Multi-arm trials (analysis.multiarm, analysis.design_analysis): multiplicity adjustment, pairwise comparisons.

References: ``statsmodels.stats.multitest.multipletests`` row by row (holm, bonferroni, simes-hochberg) for the
adjusted p-values; the single-dataset estimators (``analysis.estimators.SINGLE``) on each replicate's control and
arm-j patients, selected by hand with pandas, for the batched comparisons of ragged (simple randomization)
batches; the bivariate normal law of two comparisons sharing one control (correlation 1/2 at 1:1:1) for the
familywise error under the global null. Monte Carlo checks: binomial bounds of 4 SD.
"""

from __future__ import annotations

import gc
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from support import KnownGenerator

from analysis.design_analysis import analyze_design
from analysis.estimators import SINGLE
from analysis.multiarm import adjust_p_values, analyze_comparisons, comparison_groups
from analysis.workflow import fit_generator
from cohorts.builtin import load_builtin
from cohorts.errors import InvalidDataError
from trials.conduct import Accrual, Randomization
from trials.design import Arm, Dropout, Effect, Endpoint, TrialDesign
from trials.simulate import simulate_trials

SD = 4.0                 # Monte Carlo bands: 4 binomial standard deviations
EXACT = 1e-12            # adjusted p-values vs statsmodels (measured max 0)
SAME = 1e-12             # batched comparison vs the single-dataset estimator, relative (measured max 0)
STATSMODELS = {"holm": "holm", "bonferroni": "bonferroni", "hochberg": "simes-hochberg"}


def band(p: float, n: int) -> float:
    return SD * math.sqrt(p * (1 - p) / n)


# ---------------------------------------------------------------- adjusted p-values

def random_p_matrix(rng: np.random.Generator, R: int, m: int) -> np.ndarray:
    """Uniform p-values with ties (values on a coarse grid in a third of the rows), zeros, ones and NaN."""
    p = rng.uniform(size=(R, m))
    coarse = rng.uniform(size=R) < 1 / 3
    p[coarse] = np.round(p[coarse] * 10) / 10                  # ties within a row, and exact 0 / 1
    p[rng.uniform(size=(R, m)) < 0.1] = np.nan
    p[0] = np.nan                                               # a row that is all NaN
    p[1] = 0.02                                                 # a row that is all tied
    return p


@pytest.mark.parametrize("method", list(STATSMODELS))
@pytest.mark.parametrize("m", [1, 2, 3, 5])
def test_adjusted_p_values_equal_statsmodels_row_by_row(method, m, monkeypatch):
    # statsmodels' holm branch calls gc.collect() on every call (50 ms each in a test process): skip it here
    monkeypatch.setattr(gc, "collect", lambda *args: 0)
    p = random_p_matrix(np.random.default_rng(100 + m), 400, m)
    got = adjust_p_values(p, method)
    assert got.shape == p.shape
    ties = 0
    for r in range(len(p)):
        nan = np.isnan(p[r])
        # NaN counts as 1 in the adjustment and stays NaN
        ref = multipletests(np.where(nan, 1.0, p[r]), alpha=0.05, method=STATSMODELS[method])[1]
        ref = np.where(nan, np.nan, ref)
        np.testing.assert_allclose(got[r], ref, rtol=0, atol=EXACT, err_msg=f"row {r}: {p[r]}")
        ties += len(np.unique(p[r][~nan])) < (~nan).sum()
    assert m == 1 or ties >= 5                                    # the tie path was exercised
    assert np.isnan(got[0]).all()


def test_adjustment_none_returns_the_raw_p_values_and_unknown_names_raise():
    p = random_p_matrix(np.random.default_rng(7), 50, 3)
    got = adjust_p_values(p, "none")
    np.testing.assert_array_equal(got, p)
    assert got is not p
    with pytest.raises(ValueError, match="holm, bonferroni, hochberg or none"):
        adjust_p_values(p, "sidak")


def test_hochberg_never_above_holm_and_holm_never_above_bonferroni():
    p = random_p_matrix(np.random.default_rng(8), 500, 4)
    ok = ~np.isnan(p)
    hoch, holm, bonf = (adjust_p_values(p, k) for k in ("hochberg", "holm", "bonferroni"))
    assert (hoch[ok] <= holm[ok] + 1e-15).all() and (holm[ok] <= bonf[ok] + 1e-15).all()
    assert (holm[ok] >= p[ok]).all() and (bonf[ok] <= 1.0).all()


# ---------------------------------------------------------------- comparisons on ragged batches

CASES = {   # analysis: (generator, effect, endpoint keywords, accrual)
    "ttest": (KnownGenerator("continuous"), Effect("mean_difference", 0.4), {}, None),
    "proportions": (KnownGenerator("binary", p=0.4), Effect("odds_ratio", 2.0), {}, None),
    "logrank": (KnownGenerator("tte", rate=0.01), Effect("hazard_ratio", 0.6), {"followup": 150.0, "events": 12},
                Accrual(duration=6.0)),
    "cox": (KnownGenerator("tte", rate=0.01), Effect("hazard_ratio", 0.6), {"followup": 150.0}, None),
    "slope": (KnownGenerator("longitudinal"), Effect("slope_reduction", 0.3), {"visits_months": (0, 2, 4, 6)}, None),
}


def frame_of(batch, r: int, analysis: str) -> tuple[pd.DataFrame, dict]:
    """Replicate ``r`` as a DataFrame (one row per patient, or per patient-visit) and the single function's
    column keywords."""
    arm = batch.arm[r]
    if analysis in ("logrank", "cox"):
        return pd.DataFrame({"t": batch.time[r], "e": batch.event[r].astype(int), "arm": arm}), {"time": "t",
                                                                                                "event": "e"}
    if analysis == "slope":
        V = len(batch.visit_times)
        df = pd.DataFrame({"id": np.repeat(np.arange(len(arm)), V), "month": np.tile(batch.visit_times, len(arm)),
                           "y": batch.y[r].ravel(), "arm": np.repeat(arm, V)})
        return df.dropna(subset=["y"]), {"id": "id", "visit": "month", "value": "y"}
    return pd.DataFrame({"y": batch.y[r], "arm": arm}), {"value": "y"}


@pytest.mark.parametrize("analysis", list(CASES))
def test_each_comparison_equals_the_single_estimator_on_that_replicates_two_arms(analysis):
    g, effect, ep, accrual = CASES[analysis]
    seed = list(CASES).index(analysis) + 30
    dropout = Dropout(0.05 if analysis in ("logrank", "cox", "slope") else 0.0)    # missed visits, censoring
    design = TrialDesign((Arm("control"), Arm("a1", 1.0, effect), Arm("a2", 2.0, Effect(effect.kind, effect.value))),
                         Endpoint(analysis, **ep), dropout, randomization=Randomization("simple"), accrual=accrual)
    R, N = 60, 16
    b = simulate_trials(g, design, N, R, rng=np.random.default_rng(seed))
    got = analyze_comparisons(b, analysis, 0.05)
    assert all(v.shape == (R, 2) for v in got.values())
    sizes = np.stack([(b.arm == k).sum(axis=1) for k in range(3)], axis=1)
    assert len(np.unique(sizes[:, 0] + sizes[:, 1])) > 3            # ragged: several group sizes
    undefined = 0
    for r in range(R):
        df, cols = frame_of(b, r, analysis)
        for j in (1, 2):
            two = df[df["arm"].isin([0, j])]
            try:
                ref = SINGLE[analysis](two, **cols, arm="arm", treated_value=j, alpha=0.05)
                ref = np.array([ref.p_value, ref.estimate, ref.ci_low, ref.ci_high])
            except InvalidDataError:                    # arm j (or the control) has no patient: undefined
                assert min(sizes[r, 0], sizes[r, j]) == 0
                ref = np.full(4, np.nan)
            mine = np.array([got[k][r, j - 1] for k in ("p_value", "estimate", "ci_low", "ci_high")])
            undefined += np.isnan(ref[0])
            np.testing.assert_allclose(mine, ref, rtol=SAME, atol=1e-300, equal_nan=True,
                                       err_msg=f"{analysis}: replicate {r}, arm {j}")
    assert undefined < R                                  # most comparisons are defined
    if analysis == "ttest":
        assert undefined > 0                              # and the undefined path (an arm with < 2) was exercised


def test_comparison_groups_keep_each_replicates_control_and_arm_patients_in_entry_order():
    d = TrialDesign((Arm("control"), Arm("a1", 1.0), Arm("a2", 1.0)), Endpoint("logrank", followup=200.0),
                    randomization=Randomization("simple"), accrual=Accrual(duration=10.0, process="poisson"))
    b = simulate_trials(KnownGenerator("tte"), d, 30, 80, rng=np.random.default_rng(4))
    for j in (1, 2):
        groups = comparison_groups(b, j)
        rows_all = np.sort(np.concatenate([rows for rows, _ in groups]))
        np.testing.assert_array_equal(rows_all, np.arange(b.replicates))         # a partition of the replicates
        for rows, sub in groups:
            assert sub.arm is None and sub.treated.shape == (len(rows), sub.n_total)
            for i, r in enumerate(rows):
                keep = (b.arm[r] == 0) | (b.arm[r] == j)
                np.testing.assert_array_equal(sub.treated[i], b.arm[r][keep] == j)
                for f in ("time", "event", "entry", "time_full", "event_full"):
                    np.testing.assert_array_equal(getattr(sub, f)[i], getattr(b, f)[r][keep])
            np.testing.assert_array_equal(sub.analysis_time, b.analysis_time[rows])
            assert (np.diff(sub.entry, axis=1) >= 0).all()


# ---------------------------------------------------------------- familywise error under the global null

def fwer_none_reference(alpha: float, rho: float = 0.5) -> float:
    """P(|Z1| > z or |Z2| > z) for standard bivariate normal Z with correlation ``rho`` (two comparisons with one
    shared control, 1:1:1), z = z_{1 - alpha/2}."""
    z = stats.norm.isf(alpha / 2)
    inside = stats.multivariate_normal([0, 0], [[1, rho], [rho, 1]]).cdf([z, z], lower_limit=[-z, -z])
    return 1 - inside


def test_familywise_error_of_a_three_arm_design_under_the_global_null_continuous():
    R, N, alpha = 3000, 150, 0.05
    base = TrialDesign((Arm("control"), Arm("a1", 1.0, Effect("mean_difference", 0.5)),
                        Arm("a2", 1.0, Effect("mean_difference", 0.5))), Endpoint("ttest"))
    null = base.null()
    b = simulate_trials(KnownGenerator("continuous"), null, N, R, rng=np.random.default_rng(21))
    fwer = {m: analyze_design(b, replace(null, multiplicity=m), alpha).rejected.mean()
            for m in ("holm", "bonferroni", "hochberg", "none")}
    # Holm and Bonferroni reject some hypothesis iff min p < alpha / 2 (m = 2): equal, and <= alpha
    assert fwer["holm"] == fwer["bonferroni"]
    assert fwer["bonferroni"] <= alpha + band(alpha, R), fwer
    ref_bonf = fwer_none_reference(alpha / 2)              # P(min p < alpha / 2): 0.0465 at rho 1/2
    assert abs(fwer["bonferroni"] - ref_bonf) <= band(ref_bonf, R), (fwer, ref_bonf)
    assert fwer["hochberg"] <= alpha + band(alpha, R)
    # unadjusted: 1 - (1 - alpha)^2 = 0.0975 for independent comparisons, 0.0907 with the shared control
    ref_none = fwer_none_reference(alpha)
    assert fwer["none"] - alpha > band(alpha, R), fwer
    assert abs(fwer["none"] - ref_none) <= band(ref_none, R), (fwer, ref_none)
    # each comparison alone is a level-alpha test
    sim = analyze_design(b, null, alpha)
    for j in range(2):
        raw = sim.extras["arm_p_value"][:, j] < alpha
        assert abs(raw.mean() - alpha) <= band(alpha, R)


@pytest.mark.parametrize("multiplicity", ["holm", "bonferroni"])
def test_familywise_error_under_the_global_null_tte_builtin(multiplicity):
    va = fit_generator(load_builtin("va-lung"), seed=1)
    R, N, alpha = 400, 90, 0.05
    d = TrialDesign((Arm("control"), Arm("a1", 1.0, Effect("hazard_ratio", 1.0)), Arm("a2", 1.0)),
                    Endpoint("logrank", followup=365.0), Dropout(0.02), multiplicity=multiplicity)
    b = simulate_trials(va, d, N, R, rng=np.random.default_rng(22))
    sim = analyze_design(b, d, alpha)
    assert sim.extras["arm_p_adjusted"].shape == (R, 2) and not np.isnan(sim.p_value).any()
    assert sim.rejected.mean() <= alpha + band(alpha, R), sim.rejected.mean()
    # the decision p-value is the smallest adjusted one, and the per-arm decisions are adjusted < alpha
    np.testing.assert_array_equal(sim.p_value, sim.extras["arm_p_adjusted"].min(axis=1))
    np.testing.assert_array_equal(sim.rejected, (sim.extras["arm_p_adjusted"] < alpha).any(axis=1))
    np.testing.assert_array_equal(sim.extras["arm_p_adjusted"],
                                  adjust_p_values(sim.extras["arm_p_value"], multiplicity))
