"""Observation process (trials.observe): visit windows, dropout, follow-up and calendar data cuts.

References: per-patient Python loops written here on the same exponential draws (informative dropout, follow-up,
calendar cuts: sort each replicate's calendar event times), the closed form ``1 - exp(-h t)`` for the share
missing under a constant hazard, and U(-w, w) moments for visit windows. Monte Carlo checks: 4 SD.
"""

import numpy as np
import pytest

from trials.observe import cut_tte, dropout_missing, event_cut, observe_tte, visit_times_actual

SD = 4.0
VISITS = np.array([0.0, 1.0, 2.0, 4.0, 6.0, 9.0, 12.0])


# ---------------------------------------------------------------- visit windows

def test_no_window_means_visits_on_time():
    assert visit_times_actual(VISITS, 0.0, (3, 4), rng=np.random.default_rng(0)) is None


def test_visit_windows_are_uniform_within_the_window_and_baseline_is_exact():
    R, N, w = 200, 100, 0.4
    t = visit_times_actual(VISITS, w, (R, N), rng=np.random.default_rng(1))
    assert t.shape == (R, N, len(VISITS))
    assert (t[..., 0] == VISITS[0]).all()
    jitter = (t - VISITS)[..., 1:]
    assert np.abs(jitter).max() <= w
    n = R * N
    # U(-w, w): mean 0, var w^2 / 3; E[X^2] estimated with known mean 0 has variance E X^4 - (E X^2)^2 = 4 w^4 / 45
    for j in range(jitter.shape[-1]):
        x = jitter[..., j].ravel()
        assert abs(x.mean()) < SD * w / np.sqrt(3 * n), j
        assert abs((x * x).mean() - w * w / 3) < SD * np.sqrt(4 * w ** 4 / 45 / n), j
        # uniform, not e.g. triangular: P(|X| > w / 2) = 1/2 (binomial, 4 SD)
        assert abs((np.abs(x) > w / 2).mean() - 0.5) < SD * np.sqrt(0.25 / n), j
    # independent across visits: correlation of neighbouring jitters ~ 0 (SD 1/sqrt(n))
    assert abs(np.corrcoef(jitter[..., 1].ravel(), jitter[..., 2].ravel())[0, 1]) < SD / np.sqrt(n)


# ---------------------------------------------------------------- dropout

def test_constant_hazard_is_leave_at_e_over_h_on_the_same_draws():
    R, N = 30, 40
    y = np.zeros((R, N, len(VISITS)))
    h = np.random.default_rng(2).uniform(0.0, 0.2, (R, N))
    h[0, :5] = 0.0                                              # no dropout at all for these
    gone = dropout_missing(y, VISITS, h, 1.0, rng=np.random.default_rng(3))
    e = np.random.default_rng(3).exponential(1.0, size=(R, N))
    with np.errstate(divide="ignore"):
        ref = VISITS[None, None, :] > (e / h)[..., None]
    assert np.array_equal(gone, ref)
    assert not gone[0, :5].any()


def test_constant_hazard_share_missing_is_one_minus_exp():
    R, N, h = 400, 250, -np.log(0.95)
    gone = dropout_missing(np.zeros((R, N, len(VISITS))), VISITS, h, 1.0, rng=np.random.default_rng(4))
    assert not gone[..., 0].any()
    assert (np.diff(gone.astype(int), axis=-1) >= 0).all()      # monotone: once gone, gone
    n = R * N
    for j, t in enumerate(VISITS):
        p = 1 - np.exp(-h * t)
        assert abs(gone[..., j].mean() - p) < SD * np.sqrt(p * (1 - p) / n) + 1e-15, t


def reference_informative(y, times, h, c, e):
    """Per patient: cumulative hazard sum_{l<=j} h c^(y_{l-1} - y_0) (t_l - t_{l-1}); visit j missing once it
    exceeds the patient's exponential draw e."""
    R, N, V = y.shape
    gone = np.zeros((R, N, V), dtype=bool)
    for r in range(R):
        for i in range(N):
            t = times if times.ndim == 1 else times[r, i]
            cum = 0.0
            for j in range(1, V):
                cum += h[r, i] * c ** (y[r, i, j - 1] - y[r, i, 0]) * (t[j] - t[j - 1])
                gone[r, i, j] = cum > e[r, i]
    return gone


@pytest.mark.parametrize("windows", [False, True])
def test_informative_dropout_matches_a_per_patient_loop(windows):
    R, N, V = 40, 60, len(VISITS)
    g = np.random.default_rng(5)
    slope = g.normal(-1.0, 0.6, (R, N))
    y = 36 + slope[..., None] * VISITS + g.normal(0, 1.5, (R, N, V))
    times = visit_times_actual(VISITS, 0.3, (R, N), rng=g) if windows else VISITS
    h = np.where(g.random((R, N)) < 0.5, -np.log(0.97), -np.log(0.9))      # per-arm-like hazards
    gone = dropout_missing(y, times, h, 0.85, rng=np.random.default_rng(6))
    e = np.random.default_rng(6).exponential(1.0, size=(R, N))
    ref = reference_informative(y, np.asarray(times), h, 0.85, e)
    assert np.array_equal(gone, ref)
    assert (np.diff(gone.astype(int), axis=-1) >= 0).all() and not gone[..., 0].any()
    # informative: declining patients (c < 1, change mostly < 0) leave more than under the constant hazard
    base = dropout_missing(y, times, h, 1.0, rng=np.random.default_rng(6))
    assert gone.sum() > base.sum()


def test_informative_dropout_with_ratio_one_is_the_constant_hazard():
    R, N = 50, 50
    g = np.random.default_rng(7)
    y = g.normal(30, 5, (R, N, len(VISITS)))
    a = dropout_missing(y, VISITS, 0.05, 1.0, rng=np.random.default_rng(8))
    e = np.random.default_rng(8).exponential(1.0, size=(R, N))
    assert np.array_equal(a, VISITS > (e / 0.05)[..., None])
    ref = reference_informative(y, VISITS, np.full((R, N), 0.05), 1.0, e)
    assert np.array_equal(a, ref)                      # the loop's cumulative hazard h t_j gives the same visits


# ---------------------------------------------------------------- follow-up

def test_observe_tte_is_min_of_event_followup_and_dropout():
    g = np.random.default_rng(9)
    t_event = g.exponential(100, (20, 30))
    leave = g.exponential(150, (20, 30))
    time, event = observe_tte(t_event, 120.0, leave)
    for r in range(20):
        for i in range(30):
            c = min(120.0, leave[r, i])
            assert event[r, i] == (t_event[r, i] <= c)
            assert time[r, i] == (t_event[r, i] if event[r, i] else c)
    time, event = observe_tte(t_event, None, None)        # no limit: every event observed
    assert event.all() and np.array_equal(time, t_event)


# ---------------------------------------------------------------- calendar cuts

def reference_cut(time_full, event_full, entry, d):
    """Per replicate: the d-th smallest calendar event time (entry + time), else the last follow-up end."""
    out = []
    for r in range(len(time_full)):
        cal = sorted(entry[r, i] + time_full[r, i] for i in range(time_full.shape[1]) if event_full[r, i])
        dd = d if np.ndim(d) == 0 else d[r]
        out.append(cal[dd - 1] if len(cal) >= dd else max(entry[r] + time_full[r]))
    return np.array(out)


def reference_observe_at(time_full, event_full, entry, cut):
    """Per patient at calendar ``cut``: not entered -> (0, no event); follow-up over by the cut (entry + time
    <= cut, in calendar time) -> (time, event) as in full; otherwise censored at ``cut - entry``."""
    time, event = np.zeros_like(time_full), np.zeros_like(event_full)
    for r in range(len(time_full)):
        for i in range(time_full.shape[1]):
            a, tf = cut[r] - entry[r, i], time_full[r, i]
            if a <= 0:
                continue
            if entry[r, i] + tf <= cut[r]:
                time[r, i], event[r, i] = tf, event_full[r, i]
            else:
                time[r, i] = a
    return time, event


def trial_data(R, N, seed, followup=400.0):
    g = np.random.default_rng(seed)
    entry = np.sort(g.uniform(0, 24, (R, N)), axis=1) * 30.4375          # months -> days: non-integer times
    time_full, event_full = observe_tte(g.exponential(250, (R, N)), followup, g.exponential(900, (R, N)))
    return time_full, event_full, entry


@pytest.mark.parametrize("d", [20, 35, "per-replicate", 1000])
def test_event_cut_and_cut_tte_match_the_per_replicate_reference(d):
    R, N = 300, 50
    time_full, event_full, entry = trial_data(R, N, 10)
    if d == "per-replicate":
        d = np.random.default_rng(11).integers(2, 60, R)         # some above N, many above the events there are
    at = event_cut(time_full, event_full, entry, d)
    np.testing.assert_array_equal(at, reference_cut(time_full, event_full, entry, d))
    time, event = cut_tte(time_full, event_full, entry, at)
    ref_time, ref_event = reference_observe_at(time_full, event_full, entry, at)
    np.testing.assert_array_equal(event, ref_event)
    np.testing.assert_array_equal(time, ref_time)
    # exactly d events in every replicate that reaches d; every event otherwise (the cut is the end)
    need = np.broadcast_to(d, (R,))
    reach = event_full.sum(axis=1) >= need
    assert np.array_equal(event.sum(axis=1)[reach], need[reach])
    assert np.array_equal(event[~reach], event_full[~reach]) and np.array_equal(time[~reach], time_full[~reach])
    # the cases cover both branches: d reached (20), both kinds of replicate (35, per replicate), never (1000)
    assert reach.any() == (np.max(need) < 1000) and (~reach).any() == (np.max(need) > 20)


def test_patients_entering_after_the_cut_contribute_nothing():
    R, N = 200, 60
    time_full, event_full, entry = trial_data(R, N, 12)
    at = event_cut(time_full, event_full, entry, 10)             # early: many patients not yet entered
    late = entry >= at[:, None]
    assert late.sum() > 1000
    time, event = cut_tte(time_full, event_full, entry, at)
    assert (time[late] == 0).all() and not event[late].any()
    assert (time <= time_full).all() and not (event & ~event_full).any()
    assert (entry + time <= at[:, None] + 1e-9)[~late].all()      # nobody observed past the cut


def test_the_defining_event_is_never_lost_to_rounding():
    """Regression: comparing ``time <= cut - entry`` dropped the d-th event in about a third of replicates
    (``(entry + time) - entry`` rounds below ``time``); the cut compares calendar times."""
    R, N, d = 3000, 40, 25
    g = np.random.default_rng(13)
    entry = np.sort(g.uniform(0, 24, (R, N)), axis=1) * 30.4375
    time_full = g.exponential(200, (R, N))
    event_full = np.ones((R, N), bool)
    at = event_cut(time_full, event_full, entry, d)
    _, event = cut_tte(time_full, event_full, entry, at)
    assert (event.sum(axis=1) == d).all()
