"""Patient-level log-rank trials from a trained generator vs rpact's summary-level simulator, in one run.

Usage: ``python bench/bench_tte_vs_rpact.py [--trials 10000] [--patients 760] [--seed 1]``

Ours: the ``default`` generator trained on GBSG-2 (686 patients, 44 % with an event), two arms 1:1, hazard ratio
0.7, no dropout, 24 months of uniform accrual and the analysis at the 330th event in calendar time (the same design
as rpact's below), log-rank at two-sided 0.05;
``analysis.power.simulate_rejections`` simulates every patient (covariates, event and censoring times) and analyses
every trial. Peer: rpact ``getSimulationSurvival`` (R package r-cran-rpact; exponential control hazard, hazard ratio
0.7, 760 patients, analysis at 330 events, one-sided 0.025 = two-sided 0.05) for the same number of trials, timed by
``system.time`` inside R (start-up excluded). Prints both times, their ratio and both simulated powers, and how much
of our time went into drawing the patients. Without Rscript/rpact it prints our time only. Not part of the test
suite.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.power import simulate_rejections, simulation_threads  # noqa: E402
from analysis.workflow import fit_generator, seed_streams  # noqa: E402
from cohorts.io import cohort_from_frame  # noqa: E402
from cohorts.schema import CohortSchema  # noqa: E402
from trials.conduct import Accrual  # noqa: E402
from trials.design import Arm, Dropout, Effect, Endpoint, TrialDesign  # noqa: E402

RPACT = """suppressMessages(library(rpact))
t <- system.time(x <- getSimulationSurvival(design = getDesignGroupSequential(kMax = 1, alpha = 0.025, sided = 1),
  lambda2 = log(2) / 60, hazardRatio = 0.7, directionUpper = FALSE, plannedEvents = {events},
  maxNumberOfSubjects = {patients}, accrualTime = c(0, 24), maxNumberOfIterations = {trials}, seed = {seed}))
cat(t[["elapsed"]], x$overallReject, "\\n")
"""


def _time_draws(gen) -> list[float]:
    """Wrap ``gen.draw`` (on the instance) to add its wall time to the returned one-element list."""
    spent, draw = [0.0], gen.draw

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return draw(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - t0
    gen.draw = timed
    return spent


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--patients", type=int, default=760)
    ap.add_argument("--events", type=int, default=330)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    schema = CohortSchema.from_dict({
        "id": "patient_id", "baseline": {"numeric": ["age", "estrec", "pnodes", "progrec", "tsize"],
                                         "categorical": ["horTh", "menostat", "tgrade"]},
        "outcome": {"type": "tte", "time": "rfs_days", "event": "event"}})
    cohort = cohort_from_frame(pd.read_csv(ROOT / "tests" / "data" / "gbsg2.csv"), schema, name="gbsg2")
    gen = fit_generator(cohort, "default", seed=args.seed)
    # the same design as rpact's: 24 months of uniform accrual, analysis at the 330th event (calendar time)
    design = TrialDesign((Arm("control"), Arm("treated", 1, Effect("hazard_ratio", 0.7))),
                         Endpoint("logrank", events=args.events), Dropout(0.0), accrual=Accrual(duration=24.0))
    _, rng = seed_streams(args.seed)
    simulate_rejections(gen, design, args.patients, 50, 0.05, rng=np.random.default_rng(0))   # warm-up
    drawing = _time_draws(gen)
    t0 = time.perf_counter()
    p, _ = simulate_rejections(gen, design, args.patients, args.trials, 0.05, rng=rng)
    ours = time.perf_counter() - t0
    print(f"{args.trials:,} trials x {args.patients} patients, HR 0.7, log-rank")
    print(f"ours (patient-level, generator trained on GBSG-2): {ours:.2f} s, power {np.mean(p < 0.05):.3f}")
    print(f"  drawing patients (covariates and latent event times): {drawing[0]:.2f} s inside draw calls, summed over "
          f"{simulation_threads()} thread(s) (INSILICO_THREADS sets them); the rest randomizes, cuts and analyses")
    if shutil.which("Rscript") is None:
        print("rpact: Rscript not found (apt-get install r-cran-rpact to compare)")
        return
    code = RPACT.format(events=args.events, patients=args.patients, trials=args.trials, seed=args.seed)
    out = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True)
    if out.returncode != 0:
        print(f"rpact: failed ({out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode})")
        return
    elapsed, power = (float(x) for x in out.stdout.split()[:2])
    print(f"rpact getSimulationSurvival (summary-level, C++): {elapsed:.2f} s, power {power:.3f}")
    print(f"ratio rpact / ours: {elapsed / ours:.2f} (>= 1 means ours is at least as fast)")


if __name__ == "__main__":
    main()
