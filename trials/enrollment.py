"""Enrollment, batched over replicates: calendar entry times and arm assignment in order of entry.

* :func:`entry_times` turns an :class:`~trials.conduct.Accrual` into ``(R, N)`` entry months, sorted within each
  replicate (patient ``i`` of a replicate is the ``i``-th to enter, so "the first ``n`` patients" is a column
  slice). With piecewise-constant intensity ``lambda(t)`` (patients per month) and cumulative ``Lambda(t)``, the
  ``uniform`` process puts patient ``i`` (0-based) at ``Lambda^{-1}(i + 1/2)``; the ``poisson`` process at
  ``Lambda^{-1}(Gamma_i)`` with ``Gamma_i`` the epochs of a unit-rate Poisson process (sums of Exp(1)), or, for a
  duration ``D``, at the order statistics of N uniforms on ``[0, D]`` (the Poisson process given N arrivals).
* :func:`assign_arms` returns ``(R, N)`` arm indices (0 = control): fixed arm sizes in random order, simple
  randomization, or permuted blocks within strata (each stratum's patients, in entry order, fill consecutive
  blocks; each block is an independent random permutation of the allocation).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cohorts.criteria import parse_criteria
from cohorts.errors import InvalidScenarioError
from trials.conduct import Accrual, Randomization

__all__ = ["entry_times", "assign_arms", "arm_sizes", "strata_codes", "inverse_cumulative_intensity"]


def inverse_cumulative_intensity(v, rates, starts) -> np.ndarray:
    """``Lambda^{-1}(v)`` for piecewise-constant ``rates`` starting at ``starts`` (the last rate holds for ever)."""
    rates, starts = np.asarray(rates, float), np.asarray(starts, float)
    cum = np.concatenate([[0.0], np.cumsum(np.diff(starts) * rates[:-1])])   # Lambda at each start
    v = np.asarray(v, dtype=float)
    j = np.searchsorted(cum, v, side="right") - 1
    return starts[j] + (v - cum[j]) / rates[j]


def entry_times(accrual: Accrual | None, replicates: int, n_total: int, *, rng: np.random.Generator) -> np.ndarray:
    """``(R, N)`` calendar entry months, ascending within each replicate (all 0 without accrual)."""
    R, N = int(replicates), int(n_total)
    if accrual is None:
        return np.zeros((R, N))
    if accrual.duration is not None:
        if accrual.process == "poisson":
            return np.sort(rng.uniform(0.0, accrual.duration, size=(R, N)), axis=1)
        rates, starts = (N / accrual.duration,), (0.0,)
    else:
        rates, starts = accrual.rates, accrual.starts
    if accrual.process == "poisson":
        v = np.cumsum(rng.standard_exponential(size=(R, N)), axis=1)
        return inverse_cumulative_intensity(v, rates, starts)
    t = inverse_cumulative_intensity(np.arange(N) + 0.5, rates, starts)
    return np.broadcast_to(t, (R, N)).copy()


def arm_sizes(n_total: int, shares) -> np.ndarray:
    """Fixed arm sizes for ``n_total`` patients: largest remainder of ``n_total * share``, each arm >= 1."""
    shares = np.asarray(shares, dtype=float)
    raw = n_total * shares
    n = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - n), kind="stable")[: n_total - n.sum()]:
        n[i] += 1
    while (n < 1).any():          # tiny trials: take from the largest arm
        n[np.argmax(n)] -= 1
        n[np.argmin(n)] += 1
    return n


def _fixed_two_arm(R: int, N: int, treated_fraction: float, rng) -> np.ndarray:
    n_treated = min(max(int(round(N * treated_fraction)), 1), N - 1)
    template = np.zeros(N, dtype=bool)
    template[:n_treated] = True
    return rng.permuted(np.broadcast_to(template, (R, N)), axis=1)


def strata_codes(strata: tuple[str, ...], baseline: pd.DataFrame) -> np.ndarray:
    """``(n,)`` stratum index (0..S-1) of each patient: the joint levels of the stratification factors (a column:
    its values, missing its own level; an expression: true / not true)."""
    n = len(baseline)
    code = np.zeros(n, dtype=np.int64)
    for s in strata:
        name = s.strip()
        if name.isidentifier() and name in baseline.columns:
            levels, _ = pd.factorize(baseline[name], use_na_sentinel=False)
        elif name.isidentifier():
            raise InvalidScenarioError(f"randomization.strata: {name!r} is not a baseline covariate; allowed: "
                                       f"{', '.join(map(str, baseline.columns))} (or an expression such as "
                                       "\"age >= 60\")")
        else:
            try:
                levels = parse_criteria(name).evaluate(baseline).astype(np.int64)
            except InvalidScenarioError as exc:
                raise InvalidScenarioError([f"randomization.strata[{name!r}]: {p}" for p in exc.problems]) from None
        code = code * (int(levels.max(initial=0)) + 1) + levels
    return pd.factorize(code)[0]


def _permuted_blocks(arm_template: np.ndarray, stratum: np.ndarray, rng) -> np.ndarray:
    """Arms ``(R, N)`` from blocks (one row of ``arm_template`` per block) filled within each stratum."""
    R, N = stratum.shape
    B = len(arm_template)
    S = int(stratum.max()) + 1
    # rank of each patient among earlier patients of the same stratum (entry order = column order): a stable sort
    # by stratum keeps entry order within it, so the rank is the position minus the stratum's first position
    order = np.argsort(stratum, axis=1, kind="stable")
    srt = np.take_along_axis(stratum, order, axis=1)
    pos = np.broadcast_to(np.arange(N), (R, N))
    first = np.maximum.accumulate(np.where(np.diff(srt, axis=1, prepend=-1) != 0, pos, 0), axis=1)
    rank = np.empty((R, N), dtype=np.int64)
    np.put_along_axis(rank, order, pos - first, axis=1)
    n_blocks = -(-N // B)
    blocks = rng.permuted(np.broadcast_to(arm_template, (R, S, n_blocks, B)), axis=-1)
    return blocks[np.arange(R)[:, None], stratum, rank // B, rank % B]


def assign_arms(randomization: Randomization, allocation, replicates: int, n_total: int, *,
                rng: np.random.Generator, baseline: pd.DataFrame | None = None) -> np.ndarray:
    """``(R, N)`` int8 arm index per patient (0 = control), in entry order; ``allocation``: the arms' relative
    shares; ``baseline`` (``R * N`` rows, replicate-major) is needed for strata."""
    R, N = int(replicates), int(n_total)
    alloc = np.asarray(allocation, dtype=float)
    shares = alloc / alloc.sum()
    k = len(alloc)
    if randomization.method == "fixed":
        if k == 2:   # the skeleton's stream: a permutation of a treated template
            return _fixed_two_arm(R, N, shares[1], rng).astype(np.int8)
        template = np.repeat(np.arange(k, dtype=np.int8), arm_sizes(N, shares))
        return rng.permuted(np.broadcast_to(template, (R, N)), axis=1)
    if randomization.method == "simple":
        return rng.choice(k, size=(R, N), p=shares).astype(np.int8)
    B = randomization.block_size
    unit = alloc.astype(int)
    template = np.repeat(np.arange(k, dtype=np.int8), unit * (B // int(unit.sum())))
    if randomization.strata:
        if baseline is None or len(baseline) != R * N:
            raise TypeError("stratified randomization needs the patients' baseline covariates (baseline=)")
        stratum = strata_codes(randomization.strata, baseline).reshape(R, N)
    else:
        stratum = np.zeros((R, N), dtype=np.int64)
    return _permuted_blocks(template, stratum, rng)
