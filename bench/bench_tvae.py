"""Training and sampling speed of the neural baseline models (``tvae``, ``ctgan``) on a made-up table.

Usage: ``python bench/bench_tvae.py [--rows 5000] [--sample 100000] [--families tvae ctgan] [--epochs N]
[--seed 1]``

The table (built from an explicit ``numpy`` generator, ``--seed``) has 20 columns of mixed types: 8 continuous
(normal, bimodal, log-normal, correlated through two latent factors; one with 10 % missing), 2 integer-valued
wide columns (age, a lab count), 3 few-level integers (Poisson counts, a 0/1 flag), 7 categoricals (str,
pandas ``category`` with an unused level, 2 to 6 levels, one rare level, one with 5 % missing). For each family
it prints the wall time of ``fit`` (transformer included) and of sampling ``--sample`` rows, plus two quick
fidelity figures: the mean Kolmogorov-Smirnov distance of the numeric marginals and the largest absolute
difference between real and synthetic Spearman correlations. Targets: fit < 60 s, sampling 100,000 rows < 2 s
on 2 CPU cores. Wall and CPU (process) times are both printed: training runs torch on one thread, so on a
busy shared machine the CPU time is the better estimate of an uncontended run. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cohorts.generators.ctgan import CTGANBaseline  # noqa: E402
from cohorts.generators.tvae import TVAEBaseline  # noqa: E402


def make_table(n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, list[str], list[str]]:
    f1, f2 = rng.standard_normal(n), rng.standard_normal(n)
    df = pd.DataFrame({
        "age": np.clip(np.rint(60 + 10 * f1 + 4 * rng.standard_normal(n)), 18, 90).astype(np.int64),
        "weight_kg": 75 + 8 * f1 + 10 * rng.standard_normal(n),
        "bmi": np.where(rng.random(n) < 0.3, 22, 31) + 1.5 * rng.standard_normal(n) + f2,
        "crp_mg_l": np.exp(1 + 0.8 * f2 + 0.5 * rng.standard_normal(n)),
        "sbp_mmhg": 130 + 12 * f1 - 5 * f2 + 8 * rng.standard_normal(n),
        "fvc_pct": 80 - 6 * f2 + 10 * rng.standard_normal(n),
        "egfr": 90 - 8 * f1 + 12 * rng.standard_normal(n),
        "alsfrs_slope": -1.0 + 0.5 * rng.standard_normal(n) - 0.2 * f2,
        "albumin_g_l": 42 + 3 * rng.standard_normal(n),
        "platelets": np.rint(250 + 60 * rng.standard_normal(n) + 20 * f1).astype(np.int64),
        "n_relapses": rng.poisson(1.5, n),
        "n_visits": rng.poisson(4 + 2 * (f1 > 0), n),
        "smoker": (rng.random(n) < 0.25 + 0.1 * (f2 > 0)).astype(np.int64),
        "sex": pd.Series(rng.choice(["female", "male"], n), dtype="str"),
        "site": rng.choice(["bulbar", "limb", "rare"], n, p=[0.3, 0.68, 0.02]),
        "stage": pd.Categorical(np.where(f2 + rng.standard_normal(n) > 0.5, "III", np.where(f1 > 0, "II", "I")),
                                categories=["I", "II", "III", "IV"], ordered=True),
        "region": rng.choice(["north", "south", "east", "west", "centre", "islands"], n),
        "arm": rng.choice(["placebo", "low", "high"], n),
        "race": pd.Series(rng.choice(["a", "b", "c", "d"], n, p=[0.7, 0.15, 0.1, 0.05]), dtype="str"),
        "riluzole": rng.choice(["yes", "no"], n, p=[0.8, 0.2]),
    })
    df.loc[rng.random(n) < 0.10, "fvc_pct"] = np.nan
    df.loc[rng.random(n) < 0.05, "sex"] = np.nan
    numeric = ["age", "weight_kg", "bmi", "crp_mg_l", "sbp_mmhg", "fvc_pct", "egfr", "alsfrs_slope", "albumin_g_l",
               "platelets", "n_relapses", "n_visits", "smoker"]
    return df, numeric, [c for c in df.columns if c not in numeric]


def fidelity(real: pd.DataFrame, synth: pd.DataFrame, numeric: list[str]) -> tuple[float, float]:
    ks = np.mean([ks_2samp(real[c].dropna(), synth[c].dropna()).statistic for c in numeric])
    rc, sc = real[numeric].corr("spearman").to_numpy(), synth[numeric].corr("spearman").to_numpy()
    return float(ks), float(np.nanmax(np.abs(rc - sc)))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--sample", type=int, default=100_000)
    ap.add_argument("--families", nargs="+", default=["tvae", "ctgan"], choices=["tvae", "ctgan"])
    ap.add_argument("--epochs", type=int, default=None, help="override the default epochs")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    df, numeric, categorical = make_table(args.rows, rng)
    print(f"table: {len(df)} rows x {df.shape[1]} columns ({len(numeric)} numeric, {len(categorical)} categorical)")
    for fam in args.families:
        cls = {"tvae": TVAEBaseline, "ctgan": CTGANBaseline}[fam]
        model = cls() if args.epochs is None else cls(epochs=args.epochs)
        t0, c0 = time.perf_counter(), time.process_time()
        model.fit(df, numeric, categorical, rng=np.random.default_rng(args.seed + 1))
        fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        synth = model.sample(args.sample, rng=np.random.default_rng(args.seed + 2))
        sample_s, sample_cpu = time.perf_counter() - t0, time.process_time() - c0
        ks, dcorr = fidelity(df, synth, numeric)
        print(f"{fam:6s} epochs {model.epochs_:4d}  width {model.transformer_.dim_:4d}  fit {fit_s:6.1f} s "
              f"(cpu {fit_cpu:6.1f} s)  sample {args.sample:,} rows {sample_s:5.2f} s (cpu {sample_cpu:5.2f} s)  "
              f"mean KS {ks:.3f}  max |d Spearman| {dcorr:.3f}")


if __name__ == "__main__":
    main()
