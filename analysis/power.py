"""Simulated power and type I error over a list of total sample sizes.

For each total N the design is simulated ``replicates`` times from the generator and analysed with the
batched estimator; power is the two-sided rejection rate at ``alpha`` with an exact (Clopper-Pearson) 95 %
Monte Carlo interval. The same design with no effect is simulated at every N too: its rejection rate is the
simulated type I error (synthetic data analysed as if real can inflate it, so it is always shown).

Randomness: ``rng`` is split with ``rng.spawn`` into one child per (N, scenario, chunk of replicates), with a
fixed chunk size, so results depend only on the seed, never on timing or progress reporting.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from statsmodels.stats.proportion import proportion_confint

from analysis.estimators import analyze_batch
from analysis.power_result import PowerResult
from trials.design import PowerSettings, TrialDesign
from trials.simulate import check_design_fits_cohort, simulate_trials

__all__ = ["power_curve", "simulate_rejections", "rejections", "rate_ci", "CHUNK_REPLICATES"]

#: replicates simulated per batch (memory bound); part of the random stream layout, so keep it fixed
CHUNK_REPLICATES = 500

Progress = Callable[[float, str], None]


def simulate_rejections(generator, design: TrialDesign, n_total: int, replicates: int, alpha: float, *,
                        rng: np.random.Generator, on_chunk: Callable[[int], None] | None = None):
    """p-values and estimates of ``replicates`` simulated trials, in fixed-size chunks."""
    n_chunks = -(-replicates // CHUNK_REPLICATES)
    p_values, estimates = [], []
    for i, child in enumerate(rng.spawn(n_chunks)):
        r = min(CHUNK_REPLICATES, replicates - i * CHUNK_REPLICATES)
        batch = simulate_trials(generator, design, n_total, r, rng=child)
        res = analyze_batch(batch, design.endpoint.analysis, alpha)
        p_values.append(np.asarray(res.p_value, float))
        estimates.append(np.asarray(res.estimate, float))
        if on_chunk is not None:
            on_chunk(r)
    return np.concatenate(p_values), np.concatenate(estimates)


def rejections(p_values, alpha: float) -> np.ndarray:
    """Two-sided rejections at ``alpha`` counted over the last axis; an undefined (NaN) p-value does not reject."""
    p = np.asarray(p_values, dtype=float)
    return np.where(np.isnan(p), False, p < alpha).sum(axis=-1)


def rate_ci(k, n) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) 95 % interval of ``k`` successes in ``n`` (statsmodels ``method="beta"``)."""
    lo, hi = proportion_confint(np.asarray(k), n, alpha=0.05, method="beta")
    return np.nan_to_num(np.asarray(lo, float), nan=0.0), np.nan_to_num(np.asarray(hi, float), nan=1.0)


def power_curve(generator, design: TrialDesign, settings: PowerSettings, *, rng: np.random.Generator,
                progress: Progress | None = None, seed: int | None = None) -> PowerResult:
    """Simulated power at each ``settings.n_total`` and the simulated type I error of the null design."""
    if hasattr(generator, "schema_"):
        check_design_fits_cohort(design, generator.schema_)
    start = time.perf_counter()
    R, alpha = settings.replicates, settings.alpha
    K = len(settings.n_total)
    total = 2 * K * R
    done = 0

    def tick(r: int, label: str) -> None:
        nonlocal done
        done += r
        if progress is not None:
            progress(done / total, label)

    null = design.null()
    p_alt, p_null = np.empty((K, R)), np.empty((K, R))
    e_alt, e_null = np.empty((K, R)), np.empty((K, R))
    children = rng.spawn(2 * K)
    for k, n in enumerate(settings.n_total):
        p_alt[k], e_alt[k] = simulate_rejections(
            generator, design, n, R, alpha, rng=children[2 * k],
            on_chunk=lambda r, n=n: tick(r, f"N = {n}: effect scenario"))
        p_null[k], e_null[k] = simulate_rejections(
            generator, null, n, R, alpha, rng=children[2 * k + 1],
            on_chunk=lambda r, n=n: tick(r, f"N = {n}: null scenario"))

    rej, rej0 = rejections(p_alt, alpha), rejections(p_null, alpha)
    lo, hi = rate_ci(rej, R)
    t_lo, t_hi = rate_ci(rej0.sum(), K * R)
    return PowerResult(
        design=design, settings=settings, analysis=design.endpoint.analysis,
        power=rej / R, power_ci_low=lo, power_ci_high=hi,
        type1_by_n=rej0 / R, type1_error=float(rej0.sum() / (K * R)),
        type1_ci_low=float(t_lo), type1_ci_high=float(t_hi),
        p_values=p_alt, p_values_null=p_null, estimates=e_alt, estimates_null=e_null,
        seed=seed, elapsed_s=time.perf_counter() - start)
