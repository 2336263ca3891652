"""Fidelity and privacy of every generator family on the real cohorts (the table in docs/generators.md).

Usage: ``python bench/generator_fidelity.py [--seeds 3] [--families copula,cart,tvae,ctgan] [--out FILE.md]``

For each cohort (VA lung, GBSG-2: time to event; the ddI/ddC trial's repeated sqrt(CD4): longitudinal) the
patients are split 70/30 by id with ``evaluation_stream(seed)``; every family is trained on the same 70 % and
scored against the same 30 % by :func:`cohorts.compare.compare_families` (detection AUC of held-out real vs
synthetic patients, Kaplan-Meier sup distance or per-visit mean |SMD|, exact-copy rate, membership-inference
AUC, TSTR/TRTR utility ratio). Each figure is the mean over ``--seeds`` splits (seeds 1..k) with its standard
deviation: on 40-200 held-out patients one split's detection AUC moves by several hundredths. Not part of the
test suite: it trains the neural families at full size.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.workflow import evaluation_stream  # noqa: E402
from cohorts.compare import compare_families  # noqa: E402
from cohorts.evaluate import split_train_holdout  # noqa: E402
from cohorts.schema import CohortSchema  # noqa: E402

DATA = ROOT / "tests" / "data"
COHORTS = {
    "va_lung (tte, 137 patients)": ("va_lung.csv", {
        "id": "patient_id", "baseline": {"numeric": ["Age_in_years", "Karnofsky_score", "Months_from_Diagnosis"],
                                         "categorical": ["Celltype", "Prior_therapy", "Treatment"]},
        "outcome": {"type": "tte", "time": "time_days", "event": "death"}}),
    "gbsg2 (tte, 686 patients)": ("gbsg2.csv", {
        "id": "patient_id", "baseline": {"numeric": ["age", "estrec", "pnodes", "progrec", "tsize"],
                                         "categorical": ["horTh", "menostat", "tgrade"]},
        "outcome": {"type": "tte", "time": "rfs_days", "event": "event"}}),
    "ddI/ddC CD4 (longitudinal, 467 patients)": ("aids_ddi_ddc_long.csv", {
        "id": "pid", "baseline": {"numeric": [], "categorical": ["fac_drug", "fac_gender", "fac_prevOI", "fac_AZT"]},
        "outcome": {"type": "longitudinal", "visit": "time", "value": "num_CD4"}}),
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3, help="number of splits averaged (seeds 1..k)")
    ap.add_argument("--families", default="copula,cart,tvae,ctgan")
    ap.add_argument("--out", default=None, help="write the Markdown table here")
    args = ap.parse_args()
    families = args.families.split(",")
    blocks = []
    for label, (file, schema_dict) in COHORTS.items():
        schema = CohortSchema.from_dict(schema_dict)
        data = pd.read_csv(DATA / file)
        for seed in range(1, args.seeds + 1):
            train, holdout = split_train_holdout(data, schema, rng=evaluation_stream(seed))
            start = time.perf_counter()
            table, _, _ = compare_families(train, holdout, schema, families, rng=evaluation_stream(seed + 1000))
            print(f"{label}, seed {seed}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
            table.insert(0, "cohort", label)
            blocks.append(table)
    raw = pd.concat(blocks, ignore_index=True)
    metrics = ["detection_auc", "outcome_distance", "exact_copy_rate", "membership_auc", "utility_ratio",
               "training_seconds"]
    g = raw.groupby(["cohort", "family"], sort=False)[metrics]
    mean, sd = g.mean(), g.std()
    out = mean.copy()
    for m in metrics:
        out[m] = [f"{a:.3f} ± {b:.3f}" if m != "training_seconds" else f"{a:.1f}" for a, b in zip(mean[m], sd[m])]
    out = out.reset_index()
    md = out.to_markdown(index=False) if _has_tabulate() else out.to_string(index=False)
    print(md)
    if args.out:
        Path(args.out).write_text(md + "\n", encoding="utf-8")
    return 0


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
        return True
    except ImportError:
        return False


if __name__ == "__main__":
    sys.exit(main())
