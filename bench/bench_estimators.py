"""Speed of the batched estimators against a per-replicate loop of statsmodels fits (same data, same run).

Usage: ``python bench/bench_estimators.py [--replicates 2000] [--patients 600] [--loop 200] [--seed 1]
[--only cox,logistic]``

For every case the batched numpy function runs on all ``--replicates`` replicates; the statsmodels loop runs
on the first ``--loop`` of them (all of them when ``--loop 0``) and its time is scaled to ``--replicates``
(``loop s`` is that scaled time; slow peers such as PHReg take about 0.1-0.5 s a fit). ``max |d est|`` is the
largest absolute difference of the treatment estimates (log hazard ratio, log odds ratio, mean difference)
over the looped replicates. Peers: PHReg (Efron) for cox; survdiff for logrank (with ``strata`` for the
stratified test); OLS for ancova (change from baseline at the last visit ~ arm + baseline, completers) and
adjusted ANCOVA (outcome ~ arm + 2 covariates); Logit for logistic (arm + 2 covariates). Not part of the test
suite; the README quotes its output.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import statsmodels.api as sm
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import survdiff

from analysis.estimators import (ancova_adjusted_batched, ancova_batched, cox_adjusted_batched, cox_batched,
                                 logistic_batched, logrank_batched, logrank_stratified_batched)


def simulate(rng: np.random.Generator, R: int, N: int) -> dict:
    treated = rng.random((R, N)) < 0.5
    cov = np.stack([rng.normal(60, 10, (R, N)), rng.normal(0, 1, (R, N))], axis=2)
    lp = 0.02 * (cov[..., 0] - 60) + 0.3 * cov[..., 1]
    t_event = rng.exponential(12.0, (R, N)) * np.exp(-lp) / np.where(treated, 0.75, 1.0)
    t_drop = rng.exponential(60.0, (R, N))
    time_ = np.round(np.minimum(np.minimum(t_event, t_drop), 18.0), 1)   # months, 0.1 resolution: some ties
    event = t_event <= np.minimum(t_drop, 18.0)
    visits = np.arange(0.0, 13.0, 3.0)
    y = (rng.normal(36, 5, (R, N, 1)) - rng.normal(1.0, 0.5, (R, N, 1)) * np.where(treated, 0.75, 1.0)[..., None]
         * visits + rng.normal(0, 1.5, (R, N, len(visits))))
    y[np.arange(len(visits)) >= rng.integers(1, len(visits) + 4, (R, N))[..., None]] = np.nan
    eta = -0.5 + 0.4 * treated + lp
    binary = (rng.random((R, N)) < 1 / (1 + np.exp(-eta))).astype(float)
    outcome = 2.0 * lp + 0.5 * treated + rng.normal(0, 1, (R, N))
    strata = rng.integers(0, 3, (R, N))
    return dict(treated=treated, cov=cov, time=time_, event=event, y=y, binary=binary, outcome=outcome,
                strata=strata)


def _quiet(fn):
    def wrapped(*a):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*a)
    return wrapped


@_quiet
def ref_cox(d, r):
    return PHReg(d["time"][r], d["treated"][r, :, None].astype(float), status=d["event"][r].astype(float),
                 ties="efron").fit().params[0]


@_quiet
def ref_cox_adjusted(d, r):
    x = np.column_stack([d["treated"][r], d["cov"][r]]).astype(float)
    return PHReg(d["time"][r], x, status=d["event"][r].astype(float), ties="efron").fit().params[0]


def ref_logrank(d, r):
    return survdiff(d["time"][r], d["event"][r].astype(float), d["treated"][r])[1]


def ref_logrank_stratified(d, r):
    return survdiff(d["time"][r], d["event"][r].astype(float), d["treated"][r], strata=d["strata"][r])[1]


def ref_ancova(d, r):
    y = d["y"][r]
    ok = ~np.isnan(y[:, 0]) & ~np.isnan(y[:, -1])
    x = np.column_stack([np.ones(ok.sum()), d["treated"][r, ok], y[ok, 0]])
    return sm.OLS(y[ok, -1] - y[ok, 0], x).fit().params[1]


def ref_ancova_adjusted(d, r):
    x = sm.add_constant(np.column_stack([d["treated"][r], d["cov"][r]]).astype(float))
    return sm.OLS(d["outcome"][r], x).fit().params[1]


def ref_logistic(d, r):
    x = sm.add_constant(np.column_stack([d["treated"][r], d["cov"][r]]).astype(float))
    return sm.Logit(d["binary"][r], x).fit(disp=0).params[1]


CASES = {
    # name: (batched -> estimates on the comparison scale, reference per replicate, peer)
    "cox": (lambda d: cox_batched(d["time"], d["event"], d["treated"]).details["log_hr"], ref_cox,
            "PHReg (Efron)"),
    "cox_adjusted": (lambda d: cox_adjusted_batched(d["time"], d["event"], d["treated"], d["cov"]).details["log_hr"],
                     ref_cox_adjusted, "PHReg (Efron), 2 covariates"),
    "logrank": (lambda d: logrank_batched(d["time"], d["event"], d["treated"]).p_value, ref_logrank,
                "survdiff (p-value)"),
    "logrank_stratified": (lambda d: logrank_stratified_batched(d["time"], d["event"], d["treated"],
                                                                d["strata"]).p_value,
                           ref_logrank_stratified, "survdiff(strata) (p-value)"),
    "ancova": (lambda d: ancova_batched(d["y"], d["treated"]).estimate, ref_ancova, "OLS"),
    "ancova_adjusted": (lambda d: ancova_adjusted_batched(d["outcome"], d["treated"], d["cov"]).estimate,
                        ref_ancova_adjusted, "OLS, 2 covariates"),
    "logistic": (lambda d: logistic_batched(d["binary"], d["treated"], d["cov"]).details["log_or"], ref_logistic,
                 "Logit, 2 covariates"),
}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=2000)
    ap.add_argument("--patients", type=int, default=600)
    ap.add_argument("--loop", type=int, default=200, help="replicates looped in statsmodels (0 = all)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", default=None, help="comma-separated case names")
    args = ap.parse_args(argv)
    d = simulate(np.random.default_rng(args.seed), args.replicates, args.patients)
    k = args.replicates if args.loop <= 0 else min(args.loop, args.replicates)
    names = args.only.split(",") if args.only else list(CASES)
    print(f"{args.replicates} replicates x {args.patients} patients; statsmodels loop on {k} replicates, "
          f"time scaled to {args.replicates}")
    print(f"{'analysis':<19} {'batched s':>10} {'loop s':>9} {'ratio':>7} {'max |d est|':>12}  peer")
    for name in names:
        fast, ref, peer = CASES[name]
        fast(_head(d, 8))                                   # warm-up (imports, caches)
        t0 = time.perf_counter()
        est = fast(d)
        t_fast = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref_est = np.array([ref(d, r) for r in range(k)])
        t_loop = (time.perf_counter() - t0) * args.replicates / k
        diff = np.nanmax(np.abs(est[:k] - ref_est))
        print(f"{name:<19} {t_fast:>10.3f} {t_loop:>9.2f} {t_loop / t_fast:>6.0f}x {diff:>12.1e}  {peer}",
              flush=True)


def _head(d: dict, r: int) -> dict:
    return {k: v[:r] for k, v in d.items()}


if __name__ == "__main__":
    main()
