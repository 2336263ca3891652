"""Group-sequential looks on simulated trials (analysis.sequential_sim, through analysis.design_analysis).

References: the canonical joint normal law of the look statistics integrated numerically
(:func:`analysis.gs_boundaries.crossing_probabilities`, itself checked against rpact) for the per-look stopping
probabilities under the null and under a known drift (Monte Carlo, binomial bounds of 4 SD); per-replicate
Python loops written here (sorting each replicate's calendar event times, truncating each patient's follow-up)
and :func:`trials.observe.cut_tte` for the data of event-driven interim looks; exact decimal arithmetic
(``fractions.Fraction``) for ``ceil(f D)``; the Welch t-test on the first ``n_k`` patients for other endpoints;
``scipy.stats.norm.isf`` and the sign of the estimate for the signed Z.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from support import KnownGenerator

from analysis.design_analysis import analyze_design
from analysis.estimators import ttest_batched
from analysis.gs_boundaries import boundaries, crossing_probabilities
from analysis.sequential_sim import look_data, sequential_trials, signed_z
from analysis.workflow import fit_generator
from cohorts.builtin import load_builtin
from cohorts.generators.latent import PatientDraw, TrajectoryLatent
from trials.conduct import Accrual, Looks, Randomization
from trials.design import Arm, Dropout, Effect, Endpoint, TrialDesign
from trials.observe import cut_tte
from trials.simulate import months_to_unit, simulate_trials

SD = 4.0                     # Monte Carlo bands: 4 binomial standard deviations
DAYS_PER_MONTH = float(months_to_unit(1.0, "days"))
BLOCKS = Randomization("permuted_block", 2)      # every look's first n_k patients split exactly 1:1 (n_k even)


def band(p, n):
    p = np.asarray(p, dtype=float)
    return SD * np.sqrt(p * (1 - p) / n)


def by_look(outcome, K: int, reason: str) -> np.ndarray:
    return np.array([((outcome.stop_look == k) & (outcome.reason == reason)).mean() for k in range(1, K + 1)])


@pytest.fixture(scope="module")
def va():
    return fit_generator(load_builtin("va-lung"), seed=1)


@pytest.fixture(scope="module")
def als():
    return fit_generator(load_builtin("als-natural-history"), seed=1)


# ---------------------------------------------------------------- continuous endpoint, two-sided, under the null

@pytest.mark.parametrize("spending", ["obf", "pocock"])
def test_null_stopping_probabilities_match_numerical_integration(spending):
    R, N, alpha = 6000, 300, 0.05
    d = TrialDesign((Arm("control"), Arm("treated", 1.0, Effect("mean_difference", 0.3))), Endpoint("ttest"),
                    randomization=BLOCKS, looks=Looks((1 / 3, 2 / 3, 1.0), spending=spending)).null()
    b = simulate_trials(KnownGenerator("continuous"), d, N, R, rng=np.random.default_rng(40))
    seq = sequential_trials(b, d, alpha)
    bounds = seq["bounds"]
    np.testing.assert_array_equal(bounds.efficacy, boundaries(d.looks.gs_design(alpha)).efficacy)
    ref = crossing_probabilities(bounds, 0.0)
    got = by_look(seq["outcome"], 3, "efficacy")
    assert np.all(np.abs(got - ref["efficacy"]) <= band(ref["efficacy"], R)), (got, ref["efficacy"].to_numpy())
    assert ref["cumulative_efficacy"].iloc[-1] == pytest.approx(alpha, abs=1e-7)     # all alpha is spent
    assert abs(seq["outcome"].rejected.mean() - alpha) <= band(alpha, R)
    # |Z| is the normal quantile of the two-sided p-value, and the stopping rule is |Z_k| >= c_k
    np.testing.assert_allclose(np.abs(seq["z"]), stats.norm.isf(seq["p_value"] / 2), rtol=1e-14)
    crossed = np.abs(seq["z"]) >= bounds.efficacy
    first = np.where(crossed.any(axis=1), np.argmax(crossed, axis=1) + 1, 3)
    np.testing.assert_array_equal(seq["outcome"].stop_look, first)
    # the design analysis reports the stopping look's numbers
    sim = analyze_design(b, d, alpha)
    rows = np.arange(R)
    np.testing.assert_array_equal(sim.rejected, seq["outcome"].rejected)
    np.testing.assert_array_equal(sim.p_value, seq["p_value"][rows, first - 1])
    np.testing.assert_array_equal(sim.estimate, seq["estimate"][rows, first - 1])


def test_continuous_looks_analyse_the_first_patients_assessed():
    R, N, assess = 50, 61, 3.0
    d = TrialDesign((Arm("control"), Arm("treated", 1.0, Effect("mean_difference", 0.5))),
                    Endpoint("ttest", assessment_months=assess), accrual=Accrual(duration=12.0, process="poisson"),
                    looks=Looks((0.3, 0.7, 1.0)))
    b = simulate_trials(KnownGenerator("continuous"), d, N, R, rng=np.random.default_rng(41))
    seq = sequential_trials(b, d, 0.05)
    for k, f in enumerate((0.3, 0.7, 1.0)):
        n_k = math.ceil(Fraction(str(f)) * N)                 # 19, 43, 61
        ref = ttest_batched(b.y[:, :n_k], b.treated[:, :n_k])
        np.testing.assert_allclose(seq["p_value"][:, k], ref.p_value, rtol=1e-13)
        np.testing.assert_allclose(seq["estimate"][:, k], ref.estimate, rtol=1e-13)
        when = b.entry[:, n_k - 1] + assess
        np.testing.assert_allclose(seq["month"][:, k], when, rtol=1e-15)
        enrolled = N if k == 2 else (b.entry <= when[:, None]).sum(axis=1)
        np.testing.assert_array_equal(seq["enrolled"][:, k], enrolled)
    assert "events" not in seq


@pytest.mark.parametrize("window", [0.0, 1.0])
def test_longitudinal_look_happens_when_the_first_patients_have_had_their_last_visit(window):
    R, N, visits = 60, 60, (0, 3, 6)
    d = TrialDesign((Arm("control"), Arm("treated", 1.0, Effect("slope_reduction", 0.3))),
                    Endpoint("slope", visits, visit_window_months=window), accrual=Accrual(duration=3.0),
                    looks=Looks((0.5, 1.0)))
    b = simulate_trials(KnownGenerator("longitudinal"), d, N, R, rng=np.random.default_rng(47))
    seq = sequential_trials(b, d, 0.05)
    for k, n_k in enumerate((30, 60)):
        last = visits[-1] if window == 0 else b.visit_times_actual[:, :n_k, -1]
        when = np.max(b.entry[:, :n_k] + last, axis=1)          # every one of the first n_k has been assessed
        np.testing.assert_allclose(seq["month"][:, k], when, rtol=1e-15)
        enrolled = N if k == 1 else (b.entry <= when[:, None]).sum(axis=1)
        np.testing.assert_array_equal(seq["enrolled"][:, k], enrolled)
    np.testing.assert_allclose(seq["month"][:, -1], b.analysis_time, rtol=1e-15)   # the final analysis' month


# ---------------------------------------------------------------- time to event: event-driven interim looks

def test_event_driven_interim_looks_cut_at_ceil_f_d_events(va):
    R, N, D, fractions = 200, 80, 62, (0.4, 0.7, 1.0)        # 0.7 * 62 = 43.4: ceil 44
    d = TrialDesign((Arm("control"), Arm("treated", 1.0, Effect("hazard_ratio", 0.7))),
                    Endpoint("logrank", followup=200.0, events=D), Dropout(0.03),
                    accrual=Accrual(rates=(4.0, 8.0), starts=(0.0, 3.0), process="poisson"),
                    looks=Looks(fractions))
    b = simulate_trials(va, d, N, R, rng=np.random.default_rng(42))
    seq = sequential_trials(b, d, 0.05)
    final = b.event.sum(axis=1)
    reached = final == D
    assert 10 < reached.sum() < R - 10                          # both kinds of replicate occur
    entry_days = months_to_unit(b.entry, "days")
    for k, f in enumerate(fractions):
        # events at the look: ceil(f D) where the target is reached, ceil(f D_r) with D_r the replicate's events
        want = np.array([math.ceil(Fraction(str(f)) * int(x)) for x in final])
        np.testing.assert_array_equal(seq["events"][:, k], want)
        if k == len(fractions) - 1:
            continue
        data, enrolled, month, events = look_data(b, d, f, final=False)
        cuts = np.empty(R)
        for r in range(R):
            cal = np.sort((entry_days[r] + b.time_full[r])[b.event_full[r]])
            cuts[r] = cut = cal[want[r] - 1]                    # calendar day of the ceil(f D_r)-th event
            assert month[r] * DAYS_PER_MONTH == pytest.approx(cut, rel=1e-14)
            done = entry_days[r] + b.time_full[r] <= cut
            t_ref = np.where(done, b.time_full[r], np.maximum(cut - entry_days[r], 0.0))
            np.testing.assert_allclose(data.time[r], t_ref, rtol=0, atol=1e-9)
            np.testing.assert_array_equal(data.event[r], b.event_full[r] & done)
            assert enrolled[r] == (entry_days[r] <= cut).sum()
        t_cut, e_cut = cut_tte(b.time_full, b.event_full, entry_days, cuts)
        np.testing.assert_array_equal(data.time, t_cut)
        np.testing.assert_array_equal(data.event, e_cut)
        np.testing.assert_array_equal(events, want)
    # the final look is the design's own (event-driven) analysis
    np.testing.assert_allclose(seq["month"][:, -1], b.analysis_time, rtol=1e-15)
    assert (np.diff(seq["month"], axis=1) > 0).all() and (np.diff(seq["enrolled"], axis=1) >= 0).all()


# ---------------------------------------------------------------- signed Z

def test_signed_z_by_hand():
    p = np.array([0.05, 0.05, 0.2, 0.2, np.nan])
    est = np.array([0.7, 1.4, -0.3, 0.3, 0.8])
    z = stats.norm.isf(p / 2)
    # hazard-ratio benefit (HR < 1: direction -1): Z > 0 when the estimate is below 1
    np.testing.assert_allclose(signed_z(p[:2], est[:2], "logrank", -1.0), [z[0], -z[1]], rtol=1e-15)
    np.testing.assert_allclose(signed_z(p[:2], est[:2], "cox", +1.0), [-z[0], z[1]], rtol=1e-15)
    # differences: Z > 0 when the estimate has the sign of the orientation
    np.testing.assert_allclose(signed_z(p[2:4], est[2:4], "ttest", +1.0), [-z[2], z[3]], rtol=1e-15)
    assert np.isnan(signed_z(p[4:], est[4:], "logrank", -1.0)).all()


@pytest.mark.parametrize("hr", [0.5, 1.6])
def test_hazard_ratio_z_is_positive_when_the_estimate_is_on_the_assumed_side(va, hr):
    d = TrialDesign((Arm("control"), Arm("treated", 1.0, Effect("hazard_ratio", hr))),
                    Endpoint("logrank", followup=365.0), looks=Looks((0.5, 1.0)))
    b = simulate_trials(va, d, 120, 100, rng=np.random.default_rng(43))
    seq = sequential_trials(b, d, 0.05)
    on_side = np.log(seq["estimate"]) * np.sign(np.log(hr)) > 0
    np.testing.assert_array_equal(seq["z"] > 0, on_side)
    np.testing.assert_allclose(np.abs(seq["z"]), stats.norm.isf(seq["p_value"] / 2), rtol=1e-14)
    assert (seq["z"][:, -1] > 0).mean() > 0.9                   # a strong effect points Z up


class RisingGenerator(KnownGenerator):
    """A score that rises ``N(+1, 0.5)`` per month (a slowing of a rise lowers the slope)."""

    def __init__(self):
        super().__init__("longitudinal")

    def draw(self, n, *, rng):
        base = pd.DataFrame({"x": rng.normal(size=n)})
        slope = rng.normal(1.0, 0.5, n)
        out = TrajectoryLatent(rng.normal(10, 5, n), lambda t, s=slope: s[:, None] * np.asarray(t)[None, :], 1.0)
        return PatientDraw(base, out)


@pytest.mark.parametrize("which,analysis", [("als", "slope"), ("als", "mmrm"), ("known", "slope"),
                                            ("rising", "slope"), ("rising", "ancova")])
def test_slope_reduction_z_is_positive_when_the_treated_course_is_slowed(which, analysis, request):
    g = request.getfixturevalue("als") if which == "als" else {"known": KnownGenerator("longitudinal"),
                                                               "rising": RisingGenerator()}[which]
    d = TrialDesign((Arm("control"), Arm("treated", 1.0, Effect("slope_reduction", 0.5))),
                    Endpoint(analysis, (0, 3, 6, 9)), randomization=BLOCKS, looks=Looks((0.5, 1.0)))
    b = simulate_trials(g, d, 120, 40, rng=np.random.default_rng(44))
    seq = sequential_trials(b, d, 0.05)
    declining = which != "rising"
    ctrl_change = np.nanmean(np.where(~b.treated, b.y[..., -1] - b.y[..., 0], np.nan))
    assert (ctrl_change < 0) == declining
    # slowed decline: treated minus control slope > 0; slowed rise: < 0. Either way Z > 0.
    slowed = seq["estimate"] > 0 if declining else seq["estimate"] < 0
    np.testing.assert_array_equal(seq["z"] > 0, slowed)
    assert (seq["z"] > 0).mean() > 0.9
    sim = analyze_design(b, d, 0.05)
    assert (sim.extras["z"][sim.rejected, sim.extras["stop_look"][sim.rejected] - 1] > 0).all()


# ---------------------------------------------------------------- one-sided designs with futility

def test_one_sided_futility_matches_numerical_integration_under_null_and_alternative():
    R, N, alpha = 4000, 300, 0.05
    looks = Looks((0.5, 1.0), spending="obf", futility="obf", beta=0.2, sided=1)
    drift = boundaries(looks.gs_design(alpha)).drift          # E Z at full information giving 80 % power
    delta = -drift * math.sqrt(4 / N)                         # 1:1, sd 1; lowering the value: direction -1
    d = TrialDesign((Arm("control"), Arm("treated", 1.0, Effect("mean_difference", delta))), Endpoint("ttest"),
                    randomization=BLOCKS, looks=looks)
    assert d.effect_direction == -1 and d.null().effect_direction == -1
    g = KnownGenerator("continuous", sd=1.0)
    for design, theta, seed in ((d.null(), 0.0, 45), (d, drift, 46)):
        b = simulate_trials(g, design, N, R, rng=np.random.default_rng(seed))
        seq = sequential_trials(b, design, alpha)
        bounds = seq["bounds"]
        assert bounds.design.alpha == alpha / 2 and bounds.design.sided == 1 and bounds.futility is not None
        ref = crossing_probabilities(bounds, theta)
        out = seq["outcome"]
        p_fut, p_eff = by_look(out, 2, "futility"), by_look(out, 2, "efficacy")
        assert abs(p_fut[0] - ref["futility"].iloc[0]) <= band(ref["futility"].iloc[0], R), (theta, p_fut, ref)
        assert np.all(np.abs(p_eff - ref["efficacy"]) <= band(ref["efficacy"], R)), (theta, p_eff, ref)
        power = ref["cumulative_efficacy"].iloc[-1]
        assert abs(out.rejected.mean() - power) <= band(power, R)
    assert power == pytest.approx(0.8, abs=1e-6)          # the design's drift: power 1 - beta
