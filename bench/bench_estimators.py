"""Speed of the batched estimators against a per-replicate statsmodels loop (same data, same run).

Usage: ``python bench/bench_estimators.py [--replicates 2000] [--patients 600] [--seed 1]``

Prints, for cox (PHReg, Efron), logrank (survdiff) and ancova (OLS), the wall time of the batched numpy
function on all replicates, of the statsmodels loop over the same replicates, and their ratio. Also checks
that both agree (max absolute difference of the p-values). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import statsmodels.api as sm
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import survdiff

from analysis.estimators import ancova_batched, cox_batched, logrank_batched


def simulate(rng: np.random.Generator, R: int, N: int):
    treated = rng.random((R, N)) < 0.5
    t_event = rng.exponential(12.0, (R, N)) / np.where(treated, 0.75, 1.0)
    t_drop = rng.exponential(60.0, (R, N))
    time_ = np.round(np.minimum(np.minimum(t_event, t_drop), 18.0), 1)   # months, 0.1 resolution: some ties
    event = t_event <= np.minimum(t_drop, 18.0)
    visits = np.arange(0.0, 13.0, 3.0)
    y = (rng.normal(36, 5, (R, N, 1)) - rng.normal(1.0, 0.5, (R, N, 1)) * np.where(treated, 0.75, 1.0)[..., None]
         * visits + rng.normal(0, 1.5, (R, N, len(visits))))
    y[np.arange(len(visits)) >= rng.integers(1, len(visits) + 4, (R, N))[..., None]] = np.nan
    return treated, time_, event, y


def ref_cox(treated, time_, event):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.array([PHReg(time_[r], treated[r, :, None].astype(float), status=event[r].astype(float),
                               ties="efron").fit().pvalues[0] for r in range(len(time_))])


def ref_logrank(treated, time_, event):
    return np.array([survdiff(time_[r], event[r].astype(float), treated[r])[1] for r in range(len(time_))])


def ref_ancova(treated, y):
    out = []
    for r in range(len(y)):
        ok = ~np.isnan(y[r, :, 0]) & ~np.isnan(y[r, :, -1])
        x = np.column_stack([np.ones(ok.sum()), treated[r, ok], y[r, ok, 0]])
        out.append(sm.OLS(y[r, ok, -1] - y[r, ok, 0], x).fit().pvalues[1])
    return np.array(out)


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=2000)
    ap.add_argument("--patients", type=int, default=600)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    treated, time_, event, y = simulate(np.random.default_rng(args.seed), args.replicates, args.patients)
    cases = {
        "cox": (lambda: cox_batched(time_, event, treated).p_value, lambda: ref_cox(treated, time_, event)),
        "logrank": (lambda: logrank_batched(time_, event, treated).p_value,
                    lambda: ref_logrank(treated, time_, event)),
        "ancova": (lambda: ancova_batched(y, treated).p_value, lambda: ref_ancova(treated, y)),
    }
    print(f"{args.replicates} replicates x {args.patients} patients")
    print(f"{'analysis':<9} {'batched s':>10} {'statsmodels s':>14} {'ratio':>8} {'max |dp|':>10}")
    for name, (fast, ref) in cases.items():
        t_fast, p_fast = timed(fast)
        t_ref, p_ref = timed(ref)
        print(f"{name:<9} {t_fast:>10.3f} {t_ref:>14.2f} {t_ref / t_fast:>7.0f}x "
              f"{np.nanmax(np.abs(p_fast - p_ref)):>10.1e}", flush=True)


if __name__ == "__main__":
    main()
