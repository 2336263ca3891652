"""Speed of the batched MMRM (and random-slope model) against a per-replicate loop of the same code with R = 1.

Usage: ``python bench/bench_mmrm.py [--replicates 200] [--patients 300] [--visits 5] [--seed 1] [--repeat 3]``

Simulates ALS-like trials (random intercept and slope, 25 % slower decline on treatment, monotone dropout plus
sporadic missed visits), then prints for ``mmrm_batched`` and ``random_slope_batched``: the wall time of one
batched call on all replicates, of the loop calling the same function one replicate at a time (``R = 1``, the
path ``mmrm_test`` takes), their ratio (target >= 20x for the MMRM) and the largest absolute differences of the
estimates, standard errors and Satterthwaite df between the two. Times are the best of ``--repeat`` runs (the
machine may be shared). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from analysis.estimators.mmrm import mmrm_batched
from analysis.estimators.random_slope import random_slope_batched


def simulate(rng: np.random.Generator, R: int, N: int, V: int):
    visits = np.linspace(0.0, 12.0, V)                                   # months
    treated = rng.random((R, N)) < 0.5
    slope = rng.normal(-1.0, 0.5, (R, N)) * np.where(treated, 0.75, 1.0)
    y = (rng.normal(36.0, 5.0, (R, N, 1)) + slope[..., None] * visits + rng.normal(0.0, 1.5, (R, N, V)))
    y[np.arange(V) >= rng.integers(1, V + 3, (R, N))[..., None]] = np.nan     # dropout from a random visit on
    y[..., 1:][rng.random((R, N, V - 1)) < 0.05] = np.nan                      # sporadic missed visits
    return y, treated, visits


def best_time(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=200)
    ap.add_argument("--patients", type=int, default=300)
    ap.add_argument("--visits", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    y, treated, visits = simulate(np.random.default_rng(args.seed), args.replicates, args.patients, args.visits)
    R = len(y)
    print(f"{R} replicates x {args.patients} patients x {args.visits} visits")
    for name, fn in (("mmrm", mmrm_batched), ("random_slope", random_slope_batched)):
        fn(y[:2], treated[:2], visits)                                       # warm-up (imports, caches)
        t_batch, res = best_time(lambda: fn(y, treated, visits), args.repeat)
        t_loop, ones = best_time(lambda: [fn(y[r:r + 1], treated[r:r + 1], visits) for r in range(R)],
                                 args.repeat)
        diff = {k: np.nanmax(np.abs(np.array([getattr(o, "estimate")[0] if k == "estimate" else o.details[k][0]
                                              for o in ones]) - (res.estimate if k == "estimate"
                                                                 else res.details[k])))
                for k in ("estimate", "se", "df")}
        print(f"{name:>13}: batched {t_batch:6.2f} s | loop of R=1 {t_loop:6.2f} s | ratio {t_loop / t_batch:5.1f}x"
              f" | converged {res.details['converged'].mean():.3f} | max |diff| estimate {diff['estimate']:.1e}"
              f" se {diff['se']:.1e} df {diff['df']:.1e}")


if __name__ == "__main__":
    main()
