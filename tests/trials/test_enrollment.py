"""Enrollment (trials.enrollment): entry times and arm assignment, each against an independent reference.

References: closed-form entry times (``Lambda^{-1}(i + 1/2)`` by hand, piece by piece), Poisson counts
(mean and variance ``Lambda(t)``), uniform order statistics (KS test), exact largest-remainder arm sizes in
rational arithmetic (``fractions.Fraction``), per-replicate Python loops over strata and blocks, and the exact
permuted-block imbalance bound derived below. Monte Carlo checks: binomial / normal bounds at 4 SD.
"""

from fractions import Fraction
from itertools import permutations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cohorts.errors import InvalidScenarioError
from trials.conduct import Accrual, Randomization
from trials.enrollment import arm_sizes, assign_arms, entry_times, inverse_cumulative_intensity, strata_codes

SD = 4.0


def lam(t, rates, starts):
    """Reference cumulative intensity Lambda(t), piece by piece."""
    total = 0.0
    for j, (r, s) in enumerate(zip(rates, starts)):
        end = starts[j + 1] if j + 1 < len(starts) else np.inf
        total += r * max(0.0, min(t, end) - s)
    return total


def lam_inverse(v, rates, starts):
    """Reference Lambda^{-1}(v): walk the pieces until v is used up."""
    for j, (r, s) in enumerate(zip(rates, starts)):
        end = starts[j + 1] if j + 1 < len(starts) else np.inf
        if v <= r * (end - s):
            return s + v / r
        v -= r * (end - s)
    raise AssertionError("unreachable: the last rate holds for ever")


# ---------------------------------------------------------------- entry times

def test_no_accrual_everyone_enters_at_zero():
    assert np.array_equal(entry_times(None, 3, 5, rng=np.random.default_rng(0)), np.zeros((3, 5)))


def test_uniform_duration_is_the_closed_form_and_draws_nothing():
    rng = np.random.default_rng(1)
    state = rng.bit_generator.state
    t = entry_times(Accrual(duration=18), 7, 45, rng=rng)
    assert rng.bit_generator.state == state            # deterministic: the stream is untouched
    expected = (np.arange(45) + 0.5) * 18 / 45          # patient i enters at (i + 1/2) D / N
    assert t.shape == (7, 45)
    np.testing.assert_allclose(t, np.broadcast_to(expected, (7, 45)), rtol=1e-13, atol=0)


@pytest.mark.parametrize("rates, starts", [((5.0, 20.0), (0.0, 6.0)), ((2.0, 10.0, 3.0), (0.0, 4.0, 7.5))])
def test_uniform_piecewise_rates_match_the_hand_inverse(rates, starts):
    N = 80
    t = entry_times(Accrual(rates=rates, starts=starts), 3, N, rng=np.random.default_rng(2))
    expected = np.array([lam_inverse(i + 0.5, rates, starts) for i in range(N)])
    np.testing.assert_allclose(t, np.broadcast_to(expected, (3, N)), rtol=1e-12, atol=1e-12)
    # and Lambda(entry_i) = i + 1/2 with the reference Lambda
    np.testing.assert_allclose([lam(x, rates, starts) for x in t[0]], np.arange(N) + 0.5, rtol=1e-12)


def test_inverse_cumulative_intensity_at_and_between_breakpoints():
    rates, starts = (2.0, 10.0, 3.0), (0.0, 4.0, 7.5)
    v = np.array([0.0, 7.9, 8.0, 8.1, 43.0, 44.5, 100.0])     # 8 = Lambda(4), 43 = Lambda(7.5)
    got = inverse_cumulative_intensity(v, rates, starts)
    np.testing.assert_allclose(got, [lam_inverse(x, rates, starts) for x in v], rtol=1e-13, atol=1e-13)
    assert got[2] == 4.0 and got[4] == 7.5


def test_poisson_piecewise_counts_have_mean_and_variance_lambda():
    rates, starts = (5.0, 20.0), (0.0, 6.0)
    R, N = 4000, 250          # Lambda(8) = 70: P(Poisson(70) >= 250) is nil, so the count is untruncated
    t = entry_times(Accrual(rates=rates, starts=starts, process="poisson"), R, N, rng=np.random.default_rng(3))
    assert (np.diff(t, axis=1) >= 0).all() and (t > 0).all()
    for when in (2.0, 6.0, 8.0):
        L = lam(when, rates, starts)
        count = (t <= when).sum(axis=1)
        assert abs(count.mean() - L) < SD * np.sqrt(L / R), when          # Poisson mean, 4 SD
        # sample variance of a Poisson count: Var(s^2) ~ (mu4 - sigma^4) / R = (L + 2 L^2) / R
        assert abs(count.var(ddof=1) - L) < SD * np.sqrt((L + 2 * L * L) / R), when


def test_poisson_duration_entries_are_sorted_uniforms():
    R, N, D = 2000, 30, 12.0
    t = entry_times(Accrual(duration=D, process="poisson"), R, N, rng=np.random.default_rng(4))
    assert (np.diff(t, axis=1) >= 0).all() and t.min() >= 0 and t.max() <= D
    # pooled entries are U(0, D): KS test at level 1e-4
    assert stats.kstest(t.ravel() / D, "uniform").pvalue > 1e-4
    # the i-th entry is the i-th order statistic: Beta(i, N + 1 - i) D, mean i D / (N + 1), 4 SD
    i = np.arange(1, N + 1)
    mean = i * D / (N + 1)
    sd = D * np.sqrt(i * (N + 1 - i) / ((N + 1) ** 2 * (N + 2)))
    assert np.all(np.abs(t.mean(axis=0) - mean) < SD * sd / np.sqrt(R))


# ---------------------------------------------------------------- fixed randomization

def largest_remainder(n, alloc):
    """Exact reference: floor of n * share in rationals, the rest one each by largest remainder (ties: lower
    arm first), then no arm empty (take from the largest, give to the smallest)."""
    total = sum(Fraction(a) for a in alloc)
    raw = [n * Fraction(a) / total for a in alloc]
    size = [int(x) for x in raw]
    order = sorted(range(len(alloc)), key=lambda k: (-(raw[k] - size[k]), k))
    for k in order[: n - sum(size)]:
        size[k] += 1
    while min(size) < 1:
        size[size.index(max(size))] -= 1
        size[size.index(min(size))] += 1
    return size


@pytest.mark.parametrize("alloc", [(1, 1), (1, 2), (1, 1, 2), (2, 3, 5), (1, 1, 1), (3, 1, 1, 1)])
def test_arm_sizes_are_the_exact_largest_remainder(alloc):
    for n in range(len(alloc), 120):
        shares = np.asarray(alloc, float) / sum(alloc)
        assert list(arm_sizes(n, shares)) == largest_remainder(n, alloc), n


@pytest.mark.parametrize("alloc, n", [((1, 1, 2), 50), ((1, 1, 2), 7), ((1, 2), 31), ((1, 1), 40)])
def test_fixed_arm_sizes_in_every_replicate_and_uniform_positions(alloc, n):
    R = 3000
    arm = assign_arms(Randomization(), alloc, R, n, rng=np.random.default_rng(5))
    assert arm.dtype == np.int8 and arm.shape == (R, n)
    want = largest_remainder(n, alloc)      # (no exact .5 ties here: see the two-arm tie test)
    for k, size in enumerate(want):
        assert ((arm == k).sum(axis=1) == size).all()
    # random order: every position is arm k with probability size_k / n (binomial, 4 SD)
    for k, size in enumerate(want):
        p = size / n
        assert np.all(np.abs((arm == k).mean(axis=0) - p) < SD * np.sqrt(p * (1 - p) / R))


def test_two_arm_fixed_keeps_the_legacy_round_half_even_count():
    """Two arms keep the pre-conduct stream: ``round(N * treated share)`` treated (Python's round, half to even),
    which differs from :func:`arm_sizes` at exact .5 ties (1:1 with N = 3 mod 4: one more treated)."""
    for n in range(2, 60):
        arm = assign_arms(Randomization(), (1, 1), 4, n, rng=np.random.default_rng(n))
        treated = (arm == 1).sum(axis=1)
        assert (treated == min(max(round(n / 2), 1), n - 1)).all(), n
    assert list(arm_sizes(7, [0.5, 0.5])) == [4, 3]              # largest remainder: the control gets the 4th
    assert (assign_arms(Randomization(), (1, 1), 1, 7, rng=np.random.default_rng(0)) == 1).sum() == 4


# ---------------------------------------------------------------- simple randomization

def test_simple_randomization_shares_are_binomial():
    R, N = 400, 100
    alloc = (1, 1, 2)
    arm = assign_arms(Randomization("simple"), alloc, R, N, rng=np.random.default_rng(6))
    for k, p in enumerate((0.25, 0.25, 0.5)):
        assert abs((arm == k).mean() - p) < SD * np.sqrt(p * (1 - p) / (R * N))
        # arm sizes vary across replicates with the binomial variance N p (1 - p) (sample variance, 4 SD)
        size = (arm == k).sum(axis=1)
        var = N * p * (1 - p)
        mu4 = var * (1 + 3 * (N - 2) * p * (1 - p))              # binomial 4th central moment
        assert abs(size.var(ddof=1) - var) < SD * np.sqrt((mu4 - var ** 2) / R)


# ---------------------------------------------------------------- permuted blocks

def check_blocks(arm, stratum_key, alloc, block):
    """Per replicate and stratum (entry order): each complete block holds exactly ``m * a_k`` of arm k, the
    partial last block at most that; returns the complete blocks (as tuples) and the largest prefix imbalance
    ``max |n_k(n) - n p_k|`` over prefixes, strata and arms."""
    alloc = np.asarray(alloc)
    m = block // alloc.sum()
    p = [Fraction(int(a), int(alloc.sum())) for a in alloc]
    blocks, worst = [], Fraction(0)
    for r in range(arm.shape[0]):
        groups = {}
        for i in range(arm.shape[1]):
            groups.setdefault(stratum_key(r, i), []).append(int(arm[r, i]))
        for seq in groups.values():
            for j in range(0, len(seq), block):
                b = seq[j:j + block]
                counts = np.bincount(b, minlength=len(alloc))
                if len(b) == block:
                    assert (counts == m * alloc).all(), (r, b)
                    blocks.append(tuple(b))
                else:
                    assert (counts <= m * alloc).all(), (r, b)
            c = np.zeros(len(alloc), int)
            for n, a in enumerate(seq, start=1):
                c[a] += 1
                worst = max(worst, max(abs(c[k] - n * p[k]) for k in range(len(alloc))))
    return blocks, worst


@pytest.mark.parametrize("alloc, block", [((1, 1), 4), ((1, 2), 6), ((1, 1, 2), 8)])
def test_permuted_blocks_exact_counts_imbalance_bound_and_uniform_order(alloc, block):
    R, N = 600, 50                       # 50 is not a multiple of the block: the last block is partial
    arm = assign_arms(Randomization("permuted_block", block), alloc, R, N, rng=np.random.default_rng(7))
    blocks, worst = check_blocks(arm, lambda r, i: 0, alloc, block)
    # bound: after n = qB + r patients arm k has q B p_k + c with c in [max(0, r - B(1 - p_k)), min(r, B p_k)],
    # so |n_k - n p_k| <= B p_k (1 - p_k), attained at r = B p_k; the largest over arms is the bound here
    p = [Fraction(a, sum(alloc)) for a in alloc]
    bound = max(block * q * (1 - q) for q in p)
    assert worst <= bound
    assert worst == bound                                      # attained (600 replicates make it certain)
    # each complete block is a uniformly random arrangement of its multiset (binomial bound per pattern, 4 SD)
    template = tuple(np.repeat(np.arange(len(alloc)), np.asarray(alloc) * (block // sum(alloc))))
    patterns = sorted(set(permutations(template)))
    freq = pd.Series(blocks).value_counts()
    assert set(freq.index) <= set(patterns)
    n, q = len(blocks), 1 / len(patterns)
    for pat in patterns:
        assert abs(freq.get(pat, 0) / n - q) < SD * np.sqrt(q * (1 - q) / n), pat


def frame(R, N, seed):
    g = np.random.default_rng(seed)
    sex = g.choice(np.array(["F", "M", None], dtype=object), size=R * N, p=[0.45, 0.45, 0.1])
    age = np.round(g.normal(60, 10, R * N), 1)
    age[g.random(R * N) < 0.05] = np.nan
    return pd.DataFrame({"sex": sex, "age": age, "site": g.choice(["a", "b", "c"], R * N)})


def reference_key(df, row):
    """Stratum of one patient: sex (missing its own level) and whether age >= 60 (missing: not true)."""
    sex = df["sex"].iat[row]
    age = df["age"].iat[row]
    return ("<NA>" if sex is None or sex != sex else sex, bool(age >= 60) if age == age else False)


def test_strata_codes_partition_matches_the_reference():
    df = frame(1, 2000, 8)
    code = strata_codes(("sex", "age >= 60"), df)
    keys = [reference_key(df, i) for i in range(len(df))]
    assert len(set(keys)) == 6 and code.max() == 5 and code.min() == 0
    # same code <=> same reference key
    pairs = set(zip(code.tolist(), keys))
    assert len(pairs) == len(set(keys)) == len(set(code.tolist()))
    one = strata_codes(("site",), df)
    assert len(set(zip(one.tolist(), df["site"]))) == 3


def test_stratified_permuted_blocks_balance_every_stratum():
    R, N, block = 150, 80, 4
    df = frame(R, N, 9)
    arm = assign_arms(Randomization("permuted_block", block, ("sex", "age >= 60")), (1, 1), R, N,
                      rng=np.random.default_rng(10), baseline=df)
    blocks, worst = check_blocks(arm, lambda r, i: reference_key(df, r * N + i), (1, 1), block)
    assert worst <= Fraction(block, 4)            # |n1 - n0| <= B / 2 in every stratum and prefix
    assert len(blocks) > 1000
    # so at the end of enrollment every stratum of every replicate is within B / 2
    r_keys = [[reference_key(df, r * N + i) for i in range(N)] for r in range(R)]
    for r in range(R):
        for key in set(r_keys[r]):
            sel = np.array([k == key for k in r_keys[r]])
            assert abs(2 * (arm[r, sel] == 1).sum() - sel.sum()) <= block // 2


def test_stratification_needs_a_baseline_and_known_columns():
    with pytest.raises(TypeError, match="baseline"):
        assign_arms(Randomization("permuted_block", 4, ("sex",)), (1, 1), 2, 10, rng=np.random.default_rng(0))
    with pytest.raises(InvalidScenarioError, match="nope"):
        strata_codes(("nope",), frame(1, 10, 0))
