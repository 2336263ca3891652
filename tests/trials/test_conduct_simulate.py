"""Trial conduct end to end through simulate_trials, on the built-in cohorts (ALS natural history, VA lung).

References: the pre-conduct simulator re-implemented here (its random streams, step by step) for bit-identity;
per-replicate sorting of calendar event times for event-driven cuts; the closed form ``1 - (1 - p)^t`` for the
share lost to dropout per arm; exact largest-remainder arm sizes; eligibility expressions re-evaluated on the
drawn patients; a per-stratum loop for permuted blocks; the log-rank test for synthetic vs randomized controls.
Monte Carlo checks: binomial bounds at 4 SD.
"""

import numpy as np
import pytest

from analysis.estimators.logrank import logrank_batched
from analysis.workflow import fit_generator
from cohorts.builtin import load_builtin
from cohorts.criteria import parse_criteria
from trials.conduct import Accrual, Eligibility, HybridControl, Randomization
from trials.design import Arm, Dropout, Effect, Endpoint, TrialDesign
from trials.effects import per_patient_parameter, piecewise_log_hazard_ratios
from trials.simulate import months_to_unit, simulate_trials

SD = 4.0
DAYS_PER_MONTH = float(months_to_unit(1.0, "days"))


@pytest.fixture(scope="module")
def als():
    return fit_generator(load_builtin("als-natural-history"), seed=1)


@pytest.fixture(scope="module")
def va():
    return fit_generator(load_builtin("va-lung"), seed=1)


def legacy_simulate(generator, design, N, R, rng):
    """The simulator before trial conduct existed (two arms, everyone at month 0, fixed arm sizes)."""
    rng_draw, rng_arm, rng_out, rng_drop = rng.spawn(4)
    draw = generator.draw(R * N, rng=rng_draw)
    n_treated = min(max(int(round(N * design.treated_fraction)), 1), N - 1)
    template = np.zeros(N, dtype=bool)
    template[:n_treated] = True
    treated = rng_arm.permuted(np.broadcast_to(template, (R, N)), axis=1)
    effect = design.effect
    param = per_patient_parameter(effect, treated.ravel(), baseline=draw.baseline if effect.subgroup else None,
                                  rng=rng_arm)
    latent, h = draw.outcome, design.dropout.hazard_per_month
    if design.endpoint.outcome_type == "longitudinal":
        visits = np.asarray(design.endpoint.visits_months, float)
        y = latent.values(visits, slowing=param, rng=rng_out).reshape(R, N, -1)
        if h > 0:
            leave = rng_drop.exponential(1.0 / h, size=(R, N))
            y = np.where(visits[None, None, :] > leave[..., None], np.nan, y)
        return treated, y, None, None
    if effect.is_time_varying:
        t_event = latent.event_time_piecewise(*piecewise_log_hazard_ratios(effect, param)).reshape(R, N)
    else:
        t_event = latent.event_time(param).reshape(R, N)
    censor = np.full((R, N), float(design.endpoint.followup))
    if h > 0:
        censor = np.minimum(censor, months_to_unit(rng_drop.exponential(1.0 / h, size=(R, N)), latent.time_unit))
    event = t_event <= censor
    return treated, None, np.where(event, t_event, censor), event


LEGACY = {
    "als slope 1:1, dropout": ("als", (1.0, Effect("slope_reduction", 0.3)), Endpoint("slope", (0, 3, 6, 9, 12)),
                               0.05, 61),
    "va logrank 2:1, dropout": ("va", (2.0, Effect("hazard_ratio", 0.7)), Endpoint("logrank", followup=365.0),
                                0.02, 61),
    "va responders, delay": ("va", (1.0, Effect("hazard_ratio", 0.6, delay=30.0, responder_fraction=0.5)),
                             Endpoint("cox", followup=300.0), 0.0, 40),
}


@pytest.mark.parametrize("case", list(LEGACY))
def test_design_without_conduct_is_bit_identical_to_the_legacy_path(case, als, va):
    which, (alloc, effect), endpoint, dropout, N = LEGACY[case]
    g = {"als": als, "va": va}[which]
    R = 25
    # every conduct field at its default, spelled out
    d = TrialDesign((Arm("control"), Arm("treated", alloc, effect)), endpoint, Dropout(dropout), accrual=None,
                    randomization=Randomization("fixed"), eligibility=None, looks=None, hybrid=None)
    assert not d.has_conduct
    b = simulate_trials(g, d, N, R, rng=np.random.default_rng(11))
    treated, y, time, event = legacy_simulate(g, d, N, R, np.random.default_rng(11))
    assert np.array_equal(b.treated, treated)
    if y is not None:
        assert np.array_equal(b.y, y, equal_nan=True)
        assert np.isnan(y).any()                                  # the dropout path was exercised
    else:
        assert np.array_equal(b.time, time) and np.array_equal(b.event, event)
        assert np.array_equal(b.time_full, time) and np.array_equal(b.event_full, event)
    assert b.arm is None and b.synthetic is None and (b.entry == 0).all()


def test_event_driven_analysis_stops_at_exactly_d_events(va):
    R, N, D = 200, 60, 40
    d = TrialDesign((Arm("control"), Arm("treated", 1.0, Effect("hazard_ratio", 0.8))),
                    Endpoint("logrank", followup=150.0, events=D), Dropout(0.03), accrual=Accrual(duration=12))
    b = simulate_trials(va, d, N, R, rng=np.random.default_rng(12))
    np.testing.assert_allclose(b.entry, np.broadcast_to((np.arange(N) + 0.5) * 12 / N, (R, N)), rtol=1e-13)
    entry_days = months_to_unit(b.entry, "days")
    reach = b.event_full.sum(axis=1) >= D
    assert reach.sum() > 20 and (~reach).sum() > 20                # both kinds of replicate occur
    assert (b.event.sum(axis=1)[reach] == D).all()
    assert np.array_equal(b.event[~reach], b.event_full[~reach])     # the rest: analysed at the end of follow-up
    assert np.array_equal(b.time[~reach], b.time_full[~reach])
    for r in range(R):                                            # reference: sort calendar event times
        cal = np.sort((entry_days[r] + b.time_full[r])[b.event_full[r]])
        at = cal[D - 1] if reach[r] else np.max(entry_days[r] + b.time_full[r])
        assert b.analysis_time[r] * DAYS_PER_MONTH == pytest.approx(at, rel=1e-12)
    assert (b.time <= b.time_full).all() and not (b.event & ~b.event_full).any()


def test_per_arm_dropout_rates(als):
    R, N, visits = 60, 200, (0, 3, 6, 9, 12)
    d = TrialDesign((Arm("control", dropout_per_month=0.02), Arm("treated", 1.0, dropout_per_month=0.10)),
                    Endpoint("slope", visits))
    b = simulate_trials(als, d, N, R, rng=np.random.default_rng(13))
    gone = np.isnan(b.y)
    for mask, p_month in ((~b.treated, 0.02), (b.treated, 0.10)):
        for j, t in enumerate(visits):
            p = 1 - (1 - p_month) ** t
            n = mask.sum()
            assert abs(gone[..., j][mask].mean() - p) < SD * np.sqrt(p * (1 - p) / n) + 1e-15, (p_month, t)


def test_eligibility_holds_for_every_drawn_patient(als, va):
    crit = "age >= 55 and fvc_percent >= 70 and site_of_onset == 'Limb'"
    d = TrialDesign((Arm("control"), Arm("treated", 1.0)), Endpoint("slope", (0, 6, 12)),
                    eligibility=Eligibility(crit))
    b, draw = simulate_trials(als, d, 50, 20, rng=np.random.default_rng(14), return_draw=True)
    assert len(draw.baseline) == 50 * 20 and parse_criteria(crit).evaluate(draw.baseline).all()
    crit = "Karnofsky_score >= 60 and Celltype != 'large'"
    d = TrialDesign((Arm("control"), Arm("treated", 1.0)), Endpoint("logrank", followup=365.0),
                    eligibility=Eligibility(crit))
    _, draw = simulate_trials(va, d, 40, 20, rng=np.random.default_rng(15), return_draw=True)
    assert parse_criteria(crit).evaluate(draw.baseline).all()


def test_stratified_blocks_balance_each_stratum_of_the_drawn_patients(als):
    R, N, B = 40, 90, 6
    d = TrialDesign((Arm("control"), Arm("treated", 2.0)), Endpoint("slope", (0, 6, 12)),
                    randomization=Randomization("permuted_block", B, ("sex", "age >= 60")),
                    eligibility=Eligibility("age >= 40"), accrual=Accrual(rates=(4, 12), starts=(0, 3),
                                                                          process="poisson"))
    b, draw = simulate_trials(als, d, N, R, rng=np.random.default_rng(16), return_draw=True)
    assert (np.diff(b.entry, axis=1) >= 0).all()
    sex = draw.baseline["sex"].to_numpy().reshape(R, N)
    old = (draw.baseline["age"].to_numpy() >= 60).reshape(R, N)
    complete = 0
    for r in range(R):
        for key in set(zip(sex[r], old[r])):
            arms = b.treated[r][(sex[r] == key[0]) & (old[r] == key[1])].astype(int)
            for j in range(0, len(arms), B):
                blk = arms[j:j + B]
                if len(blk) == B:
                    complete += 1
                    assert blk.sum() == 4                           # 2:1 in blocks of 6: 4 treated, 2 control
                else:
                    assert blk.sum() <= 4 and len(blk) - blk.sum() <= 2
    assert complete > 4 * R


def test_multi_arm_codes_sizes_and_per_arm_effects(va):
    R, N = 150, 100
    d = TrialDesign((Arm("control"), Arm("same", 1.0, Effect("hazard_ratio", 1.0)),
                     Arm("better", 2.0, Effect("hazard_ratio", 0.4))), Endpoint("logrank", followup=60.0))
    b = simulate_trials(va, d, N, R, rng=np.random.default_rng(17))
    assert b.arm.dtype == np.int8 and set(np.unique(b.arm)) == {0, 1, 2} and b.n_arms == 3
    assert np.array_equal(b.treated, b.arm == 1)
    for k, size in enumerate((25, 25, 50)):                         # 1:1:2 of 100, exact
        assert ((b.arm == k).sum(axis=1) == size).all()
    p = [b.event[b.arm == k].mean() for k in range(3)]
    n = [(b.arm == k).sum() for k in range(3)]
    se = np.sqrt(p[0] * (1 - p[0]) * (1 / n[0] + 1 / n[1]))
    assert abs(p[1] - p[0]) < SD * se                               # the null arm behaves as the control
    assert p[0] - p[2] > SD * np.sqrt(p[0] * (1 - p[0]) / n[0] + p[2] * (1 - p[2]) / n[2])


def pooled_logrank(b):
    """Randomized controls (as 'treated') vs synthetic controls, all replicates pooled into one data set."""
    ctrl = ~b.treated & ~b.synthetic
    sel = ctrl | b.synthetic
    return logrank_batched(b.time[sel][None], b.event[sel][None], ctrl[sel][None])


@pytest.mark.parametrize("drift", [None, 2.0])
def test_hybrid_appends_synthetic_controls_and_drift_hits_only_randomized(va, drift):
    R, N, M = 40, 80, 50
    d = TrialDesign((Arm("control"), Arm("treated", 1.0)), Endpoint("logrank", followup=365.0),
                    accrual=Accrual(duration=6), hybrid=HybridControl(M, drift))
    b = simulate_trials(va, d, N, R, rng=np.random.default_rng(18))
    assert b.treated.shape == (R, N + M) and b.synthetic.shape == (R, N + M)
    assert not b.synthetic[:, :N].any() and b.synthetic[:, N:].all()
    assert not b.treated[:, N:].any() and (b.entry[:, N:] == 0).all()
    assert np.array_equal(b.time[:, N:], b.time_full[:, N:])      # synthetic controls are observed in full
    assert b.randomized().n_total == N and b.randomized().synthetic is None
    res = pooled_logrank(b)
    p, hr = float(res.p_value[0]), float(res.estimate[0])
    if drift is None:
        assert p > 1e-4 and 0.8 < hr < 1.25      # same distribution: no rejection at level 1e-4
    else:
        assert p < 1e-6 and hr > 1.5              # today's controls die faster than the historical ones


def test_visit_windows_and_analysis_time(als):
    R, N, w = 30, 60, 0.5
    d = TrialDesign((Arm("control"), Arm("treated", 1.0)), Endpoint("slope", (0, 3, 6, 9), visit_window_months=w),
                    accrual=Accrual(duration=10, process="poisson"))
    b = simulate_trials(als, d, N, R, rng=np.random.default_rng(19))
    a = b.visit_times_actual
    assert a.shape == (R, N, 4) and (a[..., 0] == 0).all()
    assert (np.abs(a - np.array([0, 3, 6, 9])) <= w).all() and (a[..., 1:] != np.array([3, 6, 9])).all()
    assert (b.entry >= 0).all() and (b.entry <= 10).all() and (np.diff(b.entry, axis=1) >= 0).all()
    assert (b.analysis_time >= b.entry[:, -1] + 9 - w).all()     # exact value: see the test below


def test_hybrid_drift_holds_at_all_times_with_a_delayed_effect(va):
    R, N, M, delay = 40, 80, 50, 90.0
    d = TrialDesign((Arm("control"), Arm("treated", 1.0, Effect("hazard_ratio", 1.0, delay=delay))),
                    Endpoint("logrank", followup=365.0), hybrid=HybridControl(M, 2.0))
    b = simulate_trials(va, d, N, R, rng=np.random.default_rng(20))
    early = b.event & (b.time <= delay)                 # before the delay: only the drift can act
    ctrl = ~b.treated & ~b.synthetic
    sel = ctrl | b.synthetic
    res = logrank_batched(np.minimum(b.time, delay)[sel][None], early[sel][None], ctrl[sel][None])
    assert float(res.p_value[0]) < 1e-6 and float(res.estimate[0]) > 1.5


def test_analysis_time_is_the_last_visit_of_anyone_with_windows(als):
    R, N, w = 30, 60, 0.5
    d = TrialDesign((Arm("control"), Arm("treated", 1.0)), Endpoint("slope", (0, 3, 6, 9), visit_window_months=w),
                    accrual=Accrual(duration=10))
    b = simulate_trials(als, d, N, R, rng=np.random.default_rng(21))
    np.testing.assert_array_equal(b.analysis_time, np.max(b.entry + b.visit_times_actual[..., -1], axis=1))
