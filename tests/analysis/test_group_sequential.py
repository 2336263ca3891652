"""Group-sequential boundaries and operating characteristics (analysis.gs_boundaries, analysis.group_sequential).

References: rpact 3.3 getDesignGroupSequential / getDesignCharacteristics, stored by
tests/analysis/results/gs_rpact_reference.R in gs_rpact_reference.json; closed forms (one look: z_{1-alpha});
Monte Carlo simulation of the Brownian motion at the looks (binomial bands of 4 SD); a plain per-replicate loop
for the batched stopping rule; scipy's beta quantiles for the Clopper-Pearson interval.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from analysis.group_sequential import (GroupSequentialDesign, boundaries, crossing_probabilities,
                                       operating_characteristics, sequential_outcome, spending)
from cohorts.errors import InvalidDataError, InvalidScenarioError

REF = json.loads((Path(__file__).parent / "results" / "gs_rpact_reference.json").read_text())["designs"]
SPENDING = {"asOF": "obf", "asP": "pocock", "asHSD": "hsd", "bsOF": "obf", "bsP": "pocock", "bsHSD": "hsd"}
Z_TOL = 1e-6        # z scale vs rpact (measured max 5e-8; the task asks 1e-4)
P_TOL = 1e-7        # probabilities vs rpact (measured max 2e-8)
MC_SD = 4.0         # Monte Carlo bands: 4 binomial standard deviations
N_PATHS = 200_000


def design_from_rpact(name: str) -> GroupSequentialDesign:
    a = REF[name]["args"]
    return GroupSequentialDesign(tuple(REF[name]["informationRates"]), alpha=a["alpha"],
                                 spending=SPENDING[a["typeOfDesign"]], gamma=a.get("gammaA"),
                                 futility=SPENDING.get(a.get("typeBetaSpending")), beta=a["beta"], sided=a["sided"],
                                 gamma_futility=a.get("gammaB"))


@pytest.fixture(scope="module")
def computed():
    return {name: boundaries(design_from_rpact(name)) for name in REF}


# ---- spending functions and validation ----------------------------------------------------------------------

def test_spending_functions_closed_forms():
    t = np.array([0.1, 0.25, 0.5, 0.8, 1.0])
    a = 0.025
    assert np.allclose(spending(t, a, "obf"), 2 - 2 * stats.norm.cdf(stats.norm.ppf(1 - a / 2) / np.sqrt(t)),
                       rtol=1e-12, atol=1e-15)                   # atol: cancellation in 2 - 2 Phi
    assert np.allclose(spending(t, a, "pocock"), a * np.log(1 + (math.e - 1) * t), rtol=1e-13, atol=0)
    for g in (-4.0, 1.0, 3.0):
        assert np.allclose(spending(t, a, "hsd", g), a * (1 - np.exp(-g * t)) / (1 - np.exp(-g)), rtol=1e-12,
                           atol=0)
    assert np.allclose(spending(t, a, "hsd", 0.0), a * t, rtol=1e-15, atol=0)
    assert np.allclose(spending(t, a, "hsd", 1e-9), a * t, rtol=1e-8, atol=0)          # continuous at gamma 0
    for kind, g in (("obf", None), ("pocock", None), ("hsd", -4.0)):
        for sides in (1, 2):
            assert spending(1.0, 0.05, kind, g, sides) == pytest.approx(0.05, rel=1e-13)
    # two-sided OBF = one-sided OBF at alpha / 2, doubled (rpact asOF with sided = 2)
    assert np.allclose(spending(t, 0.05, "obf", sides=2), 2 * spending(t, 0.025, "obf"), rtol=1e-13, atol=0)


@pytest.mark.parametrize("name", sorted(REF))
def test_alpha_and_beta_spent_match_rpact(name, computed):
    b, r = computed[name], REF[name]
    # rpact stores the crossing probabilities its search reached (relative error up to 1.2e-10; the last one is
    # sometimes alpha - 1e-8); ours are the spending function values
    assert np.allclose(b.alpha_spent[:-1], r["alphaSpent"][:-1], rtol=1e-9, atol=0)
    assert abs(b.alpha_spent[-1] - r["alphaSpent"][-1]) < 2e-8
    if r["futilityBounds"] is not None:
        assert np.allclose(b.beta_spent, r["betaSpent"], rtol=0, atol=P_TOL)


@pytest.mark.parametrize("bad, fragment", [
    (dict(information_fractions=(0.5, 0.4, 1.0)), "strictly increasing"),
    (dict(information_fractions=(0.5, 0.9)), "end at 1.0"),
    (dict(information_fractions=(0.0, 1.0)), "(0, 1]"),
    (dict(information_fractions=(0.5, 1.2)), "(0, 1]"),
    (dict(information_fractions=()), "empty"),
    (dict(information_fractions=("a", 1.0)), "must be numbers"),
    (dict(information_fractions=(0.5, 1.0), spending="hsd"), "needs a finite number gamma"),
    (dict(information_fractions=(0.5, 1.0), gamma=-4), "only used with spending = 'hsd'"),
    (dict(information_fractions=(0.5, 1.0), spending="wang"), "choose one of obf, pocock, hsd"),
    (dict(information_fractions=(0.5, 1.0), futility="obf"), "needs beta"),
    (dict(information_fractions=(0.5, 1.0), futility="obf", beta=0.1, sided=2), "one-sided designs only"),
    (dict(information_fractions=(0.5, 1.0), alpha=0.6), "alpha = 0.6 must lie in (0, 0.5)"),
    (dict(information_fractions=(0.5, 1.0), sided=3), "sided = 3"),
    (dict(information_fractions=(0.5, 1.0), beta=1.2), "beta = 1.2"),
    (dict(information_fractions=(0.5, 1.0), gamma_futility=1.0), "drop gamma_futility"),
])
def test_design_validation(bad, fragment):
    with pytest.raises(InvalidScenarioError) as err:
        GroupSequentialDesign(**bad)
    assert fragment in str(err.value)


def test_design_validation_reports_every_problem():
    with pytest.raises(InvalidScenarioError) as err:
        GroupSequentialDesign((0.6, 0.5), alpha=-1, spending="hsd", futility="obf")
    assert len(err.value.problems) == 4                      # fractions, alpha, gamma, beta


# ---- boundaries vs rpact -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(REF))
def test_boundaries_match_rpact(name, computed):
    b, r = computed[name], REF[name]
    assert np.max(np.abs(b.efficacy - r["criticalValues"])) < Z_TOL
    assert np.allclose(stats.norm.sf(b.efficacy), r["stageLevels"], rtol=1e-5, atol=0)
    assert np.allclose(b.nominal_p, b.design.sided * stats.norm.sf(b.efficacy), rtol=1e-14, atol=0)
    if r["futilityBounds"] is None:
        assert b.futility is None
    else:
        assert np.max(np.abs(b.futility[:-1] - r["futilityBounds"])) < Z_TOL
        assert b.futility[-1] == b.efficacy[-1]
    table = b.summary()
    assert np.array_equal(table.efficacy_z, b.efficacy) and np.array_equal(table.alpha_spent, b.alpha_spent)
    assert table.futility_z.isna().all() == (b.futility is None)
    assert b.drift ** 2 == pytest.approx(r["shift"], rel=1e-6)
    assert b.inflation_factor == pytest.approx(r["inflationFactor"], rel=1e-6)


@pytest.mark.parametrize("name", sorted(REF))
def test_crossing_probabilities_match_rpact(name, computed):
    b, r = computed[name], REF[name]
    cp = crossing_probabilities(b, [b.drift, b.drift / 2, 0.0])
    at = cp[cp.drift == b.drift]
    # rpact counts only upper crossings as rejections (twoSidedPower = FALSE)
    assert np.max(np.abs((at.efficacy - at.efficacy_lower).to_numpy() - r["rejectionProbabilities"])) < P_TOL
    if r["futilityBounds"] is not None:
        assert np.max(np.abs(at.futility.to_numpy()[:-1] - r["futilityProbabilities"])) < P_TOL
        # power by design; 5e-8 = the Simpson grid's integration error at the default mesh (measured 1.3e-8)
        assert at.cumulative_efficacy.iloc[-1] == pytest.approx(1 - b.design.beta, abs=5e-8)
    # expected information relative to the fixed design, under drift, drift / 2 and 0 (futility obeyed)
    for drift, key in ((b.drift, "averageSampleNumber1"), (b.drift / 2, "averageSampleNumber01"),
                       (0.0, "averageSampleNumber0")):
        c = cp[cp.drift == drift]
        stop = np.diff(c.cumulative_stop.to_numpy(), prepend=0.0)
        assert b.inflation_factor * np.sum(stop * c.information_fraction) == pytest.approx(r[key], abs=P_TOL)


def test_grid_is_converged():
    for name in ("hsd_0_5", "hsd_m2_4_bshsd"):
        coarse, fine = boundaries(design_from_rpact(name)), boundaries(design_from_rpact(name), mesh=96)
        assert np.max(np.abs(coarse.efficacy - fine.efficacy)) < 1e-7
        assert np.max(np.abs(coarse.futility - fine.futility) if coarse.futility is not None else 0) < 1e-7


@pytest.mark.parametrize("kind, gamma", [("obf", None), ("pocock", None), ("hsd", -4.0), ("hsd", 2.0)])
def test_one_look_is_the_fixed_design(kind, gamma):
    b = boundaries(GroupSequentialDesign((1.0,), alpha=0.025, spending=kind, gamma=gamma, beta=0.2))
    assert b.efficacy[0] == pytest.approx(stats.norm.isf(0.025), abs=1e-10)
    assert b.inflation_factor == pytest.approx(1.0, abs=1e-9)
    two = boundaries(GroupSequentialDesign((1.0,), alpha=0.05, spending=kind, gamma=gamma, sided=2))
    assert two.efficacy[0] == pytest.approx(stats.norm.isf(0.025), abs=1e-10)
    assert two.drift is None and two.inflation_factor is None
    fut = boundaries(GroupSequentialDesign((1.0,), alpha=0.025, spending=kind, gamma=gamma, futility=kind,
                                           gamma_futility=gamma, beta=0.1))
    assert fut.drift == pytest.approx(stats.norm.isf(0.025) + stats.norm.isf(0.1), abs=1e-9)


def test_look_with_nothing_to_spend():
    # OBF spends 2 (1 - Phi(70.9)) = 0 in double precision at t = 0.001: no boundary there, all alpha at the end
    b = boundaries(GroupSequentialDesign((0.001, 1.0), alpha=0.025))
    assert b.efficacy[0] == np.inf and b.nominal_p[0] == 0.0
    assert b.efficacy[1] == pytest.approx(stats.norm.isf(0.025), abs=1e-9)


def test_crossing_probabilities_under_h0(computed):
    for name in ("obf_3", "hsd_m4_4", "obf_3_twosided"):
        b = computed[name]
        cp = crossing_probabilities(b, [0.0, 0.0])                     # a repeated drift stays two scenarios
        assert len(cp) == 2 * b.design.n_looks
        assert np.allclose(cp.cumulative_efficacy.to_numpy().reshape(2, -1), b.alpha_spent, rtol=0, atol=1e-10)
        assert (cp.cumulative_stop.to_numpy().reshape(2, -1)[:, -1] == 1.0).all()
        if b.design.sided == 2:
            assert np.allclose(cp.efficacy_lower, cp.efficacy / 2, rtol=1e-9, atol=0)
    b = computed["obf_3_bsof"]   # non-binding: ignoring futility keeps exactly alpha; obeying it spends less
    ignore = crossing_probabilities(b, 0.0, obey_futility=False)
    obey = crossing_probabilities(b, 0.0)
    assert ignore.cumulative_efficacy.iloc[-1] == pytest.approx(0.025, abs=1e-10)
    assert obey.cumulative_efficacy.iloc[-1] < 0.025 - 1e-3 and (ignore.futility == 0).all()


# ---- Monte Carlo: Brownian motion at the looks ---------------------------------------------------------------

def brownian_z(t, drift: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """Z at the looks: S(t) with independent N(drift dt, dt) increments, Z = S / sqrt(t)."""
    t = np.asarray(t)
    dt = np.diff(t, prepend=0.0)
    s = np.cumsum(rng.normal(drift * dt, np.sqrt(dt), size=(n, len(t))), axis=1)
    return s / np.sqrt(t)


def within(p_hat: float, p: float, n: int) -> bool:
    return abs(p_hat - p) <= MC_SD * math.sqrt(max(p * (1 - p), 1e-12) / n)


@pytest.mark.parametrize("name", ["obf_3_bsof", "hsd_m4_4", "pocock_4_twosided"])
def test_monte_carlo_matches_integration(name, computed):
    b = computed[name]
    rng = np.random.default_rng(20240611)
    t = b.information_fractions
    z0 = brownian_z(t, 0.0, N_PATHS, rng)
    assert within(operating_characteristics(z0, b, obey_futility=False).rejection_rate, b.design.alpha, N_PATHS)
    for drift in (0.0, b.drift):
        z = z0 if drift == 0.0 else brownian_z(t, drift, N_PATHS, rng)
        oc = operating_characteristics(z, b, n_at_look=t)
        cp = crossing_probabilities(b, drift)
        for col in ("efficacy", "futility", "stop"):
            exact = cp[col] if col != "stop" else np.diff(cp.cumulative_stop, prepend=0.0)
            for p_hat, p in zip(oc.per_look[col], exact):
                assert within(p_hat, p, N_PATHS), (col, p_hat, p)
        assert within(oc.rejection_rate, cp.cumulative_efficacy.iloc[-1], N_PATHS)
        expected_info = float(np.sum(np.diff(cp.cumulative_stop, prepend=0.0) * t))
        assert abs(oc.expected_n - expected_info) <= MC_SD * oc.expected_n_se


# ---- the stopping rule on batched Z ---------------------------------------------------------------------------

def loop_outcome(z, b, obey_futility=True):
    """Plain per-replicate reference for sequential_outcome."""
    out = []
    k_max = len(b.efficacy)
    for row in z:
        for k, zk in enumerate(row):
            stat = abs(zk) if b.design.sided == 2 else zk
            if not np.isnan(zk) and stat >= b.efficacy[k]:
                out.append((k + 1, "efficacy"))
                break
            if (b.futility is not None and obey_futility and k < k_max - 1 and not np.isnan(zk)
                    and zk <= b.futility[k]):
                out.append((k + 1, "futility"))
                break
        else:
            out.append((k_max, "none"))
    return out


def test_sequential_outcome_hand_cases(computed):
    b = computed["obf_3_bsof"]        # efficacy 3.71, 2.51, 1.99; futility -0.69, 1.00
    z = np.array([[4.0, np.nan, np.nan],     # efficacy at look 1
                  [0.0, 2.6, np.nan],        # efficacy at look 2
                  [-1.0, 3.0, 3.0],          # futility at look 1
                  [0.0, 0.5, 3.0],           # futility at look 2
                  [0.0, 1.5, 1.0],           # no rejection at the end
                  [np.nan, np.nan, 2.5],     # undefined interims continue
                  [0.0, 1.5, np.nan]])       # undefined at the end: no rejection
    out = sequential_outcome(z, b)
    assert out.stop_look.tolist() == [1, 2, 1, 2, 3, 3, 3]
    assert out.reason.tolist() == ["efficacy", "efficacy", "futility", "futility", "none", "efficacy", "none"]
    assert out.rejected.tolist() == [True, True, False, False, False, True, False]
    assert np.array_equal(out.stop_z, [4.0, 2.6, -1.0, 0.5, 1.0, 2.5, np.nan], equal_nan=True)
    ignore = sequential_outcome(z, b, obey_futility=False)
    assert ignore.stop_look.tolist()[2:4] == [2, 3] and ignore.rejected.tolist()[2:4] == [True, True]
    two = sequential_outcome(np.array([[-3.8, 0.0, 0.0], [0.0, -2.6, 0.0]]), computed["obf_3_twosided"])
    assert two.reason.tolist() == ["efficacy", "efficacy"] and (two.stop_z < 0).all()
    assert len(out.to_frame()) == 7


@pytest.mark.parametrize("name, obey", [("obf_3_bsof", True), ("obf_3_bsof", False), ("pocock_4_twosided", True),
                                        ("hsd_m2_4_bshsd", True)])
def test_sequential_outcome_matches_loop(name, obey, computed):
    b = computed[name]
    rng = np.random.default_rng(7)
    z = brownian_z(b.information_fractions, 1.5, 400, rng)
    z[rng.uniform(size=z.shape) < 0.1] = np.nan
    out = sequential_outcome(z, b, obey_futility=obey)
    ref = loop_outcome(z, b, obey)
    assert out.stop_look.tolist() == [s for s, _ in ref]
    assert out.reason.tolist() == [r for _, r in ref]
    assert set(out.reason) >= {"efficacy", "none"}


def test_operating_characteristics_exact_small_case(computed):
    b = computed["obf_3_bsof"]
    z = np.array([[4.0, 0, 0], [0.0, 2.6, 0], [-1.0, 0, 0], [0.0, 1.5, 1.0], [0.0, 1.5, 2.5]])
    n_rep = np.array([[50, 100, 150]] * 4 + [[60, 120, 170]])
    oc = operating_characteristics(z, b, n_at_look=[50, 100, 150], events_at_look=n_rep, conf_level=0.9)
    assert oc.rejection_rate == pytest.approx(3 / 5)
    assert oc.per_look.efficacy.tolist() == [0.2, 0.2, 0.2] and oc.per_look.futility.tolist() == [0.2, 0, 0]
    assert oc.per_look.cumulative_stop.iloc[-1] == pytest.approx(1.0)
    assert oc.expected_n == pytest.approx((50 + 100 + 50 + 150 + 150) / 5)
    assert oc.expected_events == pytest.approx((50 + 100 + 50 + 150 + 170) / 5)
    assert oc.expected_n_se == pytest.approx(np.std([50, 100, 50, 150, 150], ddof=1) / np.sqrt(5))
    # Clopper-Pearson from beta quantiles (independent of statsmodels)
    assert oc.rejection_ci[0] == pytest.approx(stats.beta.ppf(0.05, 3, 3), abs=1e-10)
    assert oc.rejection_ci[1] == pytest.approx(stats.beta.ppf(0.95, 4, 2), abs=1e-10)
    assert oc.summary().shape == (1, 8)


def test_operating_characteristics_input_errors(computed):
    b = computed["obf_3"]
    with pytest.raises(InvalidDataError, match=r"must be \(replicates, 3\)"):
        sequential_outcome(np.zeros((4, 2)), b)
    with pytest.raises(InvalidDataError, match="n_at_look has shape"):
        operating_characteristics(np.zeros((4, 3)), b, n_at_look=[1, 2])
    with pytest.raises(InvalidDataError, match="events_at_look"):
        operating_characteristics(np.zeros((4, 3)), b, events_at_look=[1, np.nan, 3])
    with pytest.raises(InvalidDataError, match="conf_level"):
        operating_characteristics(np.zeros((4, 3)), b, conf_level=95)
