"""Simulated power and type I error over a list of total sample sizes.

For each total N the design is simulated ``replicates`` times from the generator and analysed with the
batched estimator; power is the two-sided rejection rate at ``alpha`` with an exact (Clopper-Pearson) 95 %
Monte Carlo interval. The same design with no effect is simulated at every N too: its rejection rate is the
simulated type I error (synthetic data analysed as if real can inflate it, so it is always shown).

Randomness: ``rng`` is split with ``rng.spawn`` into one child per (N, scenario, chunk of replicates), with a
fixed chunk size, so results depend only on the seed, never on timing or progress reporting.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from analysis.design_analysis import SimulatedTrials, analyze_design, concat_simulated
from analysis.power_raw import replicate_frame
from analysis.power_result import PowerResult
from trials.design import PowerSettings, TrialDesign
from trials.simulate import check_design_fits_cohort, simulate_trials

__all__ = ["power_curve", "simulate_design", "simulate_rejections", "rejections", "rate_ci", "CHUNK_REPLICATES"]

#: replicates simulated per batch (memory bound); part of the random stream layout, so keep it fixed
CHUNK_REPLICATES = 500

Progress = Callable[[float, str], None]


def simulate_design(generator, design: TrialDesign, n_total: int, replicates: int, alpha: float, *,
                    rng: np.random.Generator, on_chunk: Callable[[int], None] | None = None) -> SimulatedTrials:
    """``replicates`` simulated and analysed trials (:func:`analysis.design_analysis.analyze_design`), in
    fixed-size chunks."""
    n_chunks = -(-replicates // CHUNK_REPLICATES)
    sizes = [min(CHUNK_REPLICATES, replicates - i * CHUNK_REPLICATES) for i in range(n_chunks)]

    def chunk(args) -> SimulatedTrials:
        r, child = args
        return analyze_design(simulate_trials(generator, design, n_total, r, rng=child), design, alpha)
    jobs = list(zip(sizes, rng.spawn(n_chunks)))
    workers = min(n_chunks, simulation_threads())
    if workers <= 1:
        parts = []
        for job in jobs:
            parts.append(chunk(job))
            if on_chunk is not None:
                on_chunk(job[0])
        return concat_simulated(parts)
    # chunks are independent streams: threads change the wall time, never the numbers (numpy's random fills,
    # sorts and reductions release the GIL); results are taken in chunk order, progress reported from here
    parts = []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="insilico-chunk") as pool:
        futures = [pool.submit(chunk, job) for job in jobs]
        try:
            for job, future in zip(jobs, futures):
                parts.append(future.result())
                if on_chunk is not None:
                    on_chunk(job[0])
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return concat_simulated(parts)


def simulation_threads() -> int:
    """Threads simulating chunks of replicates at once: ``$INSILICO_THREADS``, else the CPUs this process may
    use (1 inside a Dask worker, which already runs one task per thread)."""
    env = os.environ.get("INSILICO_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            pass
    try:
        from distributed import get_worker
        get_worker()
        return 1
    except (ImportError, ValueError):
        pass
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def simulate_rejections(generator, design: TrialDesign, n_total: int, replicates: int, alpha: float, *,
                        rng: np.random.Generator, on_chunk: Callable[[int], None] | None = None):
    """``(p_values, estimates)`` of :func:`simulate_design` (for a design with interim looks the p-value is the
    nominal one of the stopping look: count rejections with ``simulate_design(...).rejected``)."""
    sim = simulate_design(generator, design, n_total, replicates, alpha, rng=rng, on_chunk=on_chunk)
    return sim.p_value, sim.estimate


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
    sims, sims0 = [], []
    children = rng.spawn(2 * K)
    for k, n in enumerate(settings.n_total):
        sims.append(simulate_design(generator, design, n, R, alpha, rng=children[2 * k],
                                    on_chunk=lambda r, n=n: tick(r, f"N = {n}: effect scenario")))
        sims0.append(simulate_design(generator, null, n, R, alpha, rng=children[2 * k + 1],
                                     on_chunk=lambda r, n=n: tick(r, f"N = {n}: null scenario")))
    operating, looks, analytic = _operating(generator, design, settings, sims, sims0, rng)

    rej = np.array([s.rejected.sum() for s in sims])
    rej0 = np.array([s.rejected.sum() for s in sims0])
    lo, hi = rate_ci(rej, R)
    t_lo, t_hi = rate_ci(rej0.sum(), K * R)
    return PowerResult(
        design=design, settings=settings, analysis=design.endpoint.analysis,
        power=rej / R, power_ci_low=lo, power_ci_high=hi,
        type1_by_n=rej0 / R, type1_error=float(rej0.sum() / (K * R)),
        type1_ci_low=float(t_lo), type1_ci_high=float(t_hi),
        p_values=np.stack([s.p_value for s in sims]), p_values_null=np.stack([s.p_value for s in sims0]),
        estimates=np.stack([s.estimate for s in sims]), estimates_null=np.stack([s.estimate for s in sims0]),
        seed=seed, elapsed_s=time.perf_counter() - start,
        operating=operating, looks=looks, analytic_power=analytic,
        rejected=np.stack([s.rejected for s in sims]), rejected_null=np.stack([s.rejected for s in sims0]),
        raw=replicate_frame(sims, sims0, settings.n_total))


def _operating(generator, design, settings, sims, sims0, rng):
    """Per-N operating characteristics (:mod:`analysis.power_summary`), the look tables and the analytic column.
    The estimand's large trials use their own streams (spawned after the replicates'), so they change nothing
    else."""
    from analysis.estimand import analytic_power_column, depends_on_n, reference_trial
    from analysis.power_summary import look_table, operating_row
    ns = settings.n_total
    ref_rngs = rng.spawn(len(ns))
    if depends_on_n(design):
        refs = [reference_trial(generator, design, n, settings.alpha, rng=r) for n, r in zip(ns, ref_rngs)]
    else:
        refs = [reference_trial(generator, design, max(ns), settings.alpha, rng=ref_rngs[0])] * len(ns)
    rows = [operating_row(s, s0, ref.estimate, design.endpoint.analysis, ref.se)
            for s, s0, ref in zip(sims, sims0, refs)]
    operating = pd.DataFrame(rows)
    looks = [look_table(s, s0) for s, s0 in zip(sims, sims0)] if design.looks is not None else None
    events = operating["expected_events"] if "expected_events" in operating else None
    analytic = np.array([analytic_power_column(design, ref, [n], settings.alpha,
                                               None if events is None else [events.iloc[i]])[0]
                         for i, (n, ref) in enumerate(zip(ns, refs))])
    return operating, looks, analytic
