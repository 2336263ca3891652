"""Issue-5 target: a power curve of 5 sizes x 1,000 replicates of the ALS slope scenario in under 10 s on 2 cores.

Usage: ``python bench/bench_power_curve.py [--replicates 1000]``

Runs ``examples/als_slope.toml`` (default generator on the built-in ALS cohort, 25 % slowing, per-patient slope
analysis) at N = 60, 120, 180, 240, 300 with the null scenario at every N (2 x 5 x 1,000 simulated trials), and
the per-N operating characteristics (estimand from one 50,000-patient trial, bias, coverage, analytic cross-check).
Prints the fit time, the power-curve time (``PowerResult.elapsed_s``) and the end-to-end time. The peer is the
target itself (no other tool simulates patient-level ALS trajectories); the same machine's rpact comparison for
time-to-event trials is ``bench/bench_tte_vs_rpact.py``. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.workflow import fit_generator, load_cohort_ref, run_power  # noqa: E402
from trials.design import PowerSettings  # noqa: E402
from trials.scenario import load_scenario  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=1000)
    args = ap.parse_args(argv)
    start = time.perf_counter()
    s = load_scenario(ROOT / "examples" / "als_slope.toml")
    s = dataclasses.replace(s, power=PowerSettings((60, 120, 180, 240, 300), args.replicates, 0.05))
    cohort = load_cohort_ref(s.cohort)
    gen = fit_generator(cohort, s.cohort.generator, seed=s.seed)
    fitted = time.perf_counter()
    res = run_power(gen, s.design, s.power, seed=s.seed)
    end = time.perf_counter()
    print(f"ALS slope power curve, 5 sizes x {args.replicates} replicates (+ null): fit {fitted - start:.1f} s, "
          f"power curve {res.elapsed_s:.1f} s, end to end {end - start:.1f} s (target < 10 s)")
    print(res.table()[["n_total", "power", "analytic_power", "type1_error", "bias", "coverage"]].to_string(index=False))


if __name__ == "__main__":
    main()
