"""``insilico calibrate``: train on a real trial's control arm, simulate that trial, place the real result.

::

    insilico calibrate DATA --schema SCHEMA.toml --arm COL --treated VALUE [--control VALUE] --analysis NAME
        [--replicates 1000] [--seed S] [--effect X] [--followup T] [--generator default] [--alpha 0.05] [--json]

The schema describes the cohort without the arm column. ``--effect`` is a number of the analysis's effect kind
(hazard ratio for cox/logrank, mean difference for ttest, risk difference for proportions/risk_difference/
risk_ratio, odds ratio for logistic, slope reduction for longitudinal analyses, where it is required); without
it the observed estimate is assumed. See :mod:`analysis.calibration` for the numbers reported; ``--json``
prints :meth:`~analysis.calibration.CalibrationResult.to_json_dict` (per-replicate estimates and p-values
included).
"""

from __future__ import annotations

import json

from cohorts.errors import InvalidDataError, InvalidScenarioError

__all__ = ["add_calibrate_command", "run_calibrate"]

DEFAULT_SEED = 20260101


def run_calibrate(args):
    """The :class:`~analysis.calibration.CalibrationResult` of parsed ``args`` (user errors raise
    :class:`~cohorts.errors.WorkbenchError`)."""
    from analysis.calibration import calibrate_trial
    from cli_analyze import match_value
    from cohorts.io import read_table
    from cohorts.schema import CohortSchema

    if args.replicates < 1:
        raise InvalidScenarioError(f"--replicates {args.replicates}: give a positive number, e.g. 1000")
    schema = CohortSchema.from_toml(args.schema)
    data = read_table(args.data)
    if args.arm not in data.columns:
        raise InvalidDataError(f"--arm {args.arm!r}: no such column; columns are "
                               f"{', '.join(map(str, data.columns))}")
    treated = match_value(data[args.arm], args.treated, "--treated")
    control = None if args.control is None else match_value(data[args.arm], args.control, "--control")
    return calibrate_trial(data, schema, arm=args.arm, treated_value=treated, control_value=control,
                           analysis=args.analysis, replicates=args.replicates, seed=args.seed,
                           generator=args.generator, effect=args.effect, followup=args.followup, alpha=args.alpha)


def _cmd_calibrate(args) -> int:
    res = run_calibrate(args)
    if args.json:
        print(json.dumps(res.to_json_dict(), allow_nan=False))
        return 0
    r = res.real
    fmt = (lambda v: "NA" if v != v else f"{v:.4g}")
    c, t = res.arms
    print(f"{r.method}: {t} vs {c} (n = {res.n_per_arm[1]} vs {res.n_per_arm[0]})")
    print(f"real trial: estimate {fmt(r.estimate)} ({int(round((1 - res.alpha) * 100))}% CI {fmt(r.ci_low)} to "
          f"{fmt(r.ci_high)}), p = {fmt(r.p_value)}")
    print(f"simulated: {res.replicates} trials, generator {res.generator!r} trained on the {c} arm, seed {res.seed}"
          + (f", follow-up {res.design.endpoint.followup:g}" if res.design.endpoint.followup else ""))
    print(res.summary().drop(columns=["real_estimate", "real_p_value", "replicates"])
          .to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


def add_calibrate_command(sub) -> None:
    from trials.design import ANALYSIS_OUTCOME
    a = sub.add_parser("calibrate", help="train on a real trial's control arm, simulate the trial many times and "
                                         "place the real estimate and p-value in the simulated distribution")
    a.add_argument("data", help="the real trial data file (CSV, Parquet or SAS XPT), both arms")
    a.add_argument("--schema", required=True, help="schema TOML of the cohort WITHOUT the arm column")
    a.add_argument("--arm", required=True, help="the arm column")
    a.add_argument("--treated", required=True, help="the arm column's value of the treated arm")
    a.add_argument("--control", help="the control arm's value (needed when the arm column has other values)")
    a.add_argument("--analysis", required=True, help=f"one of {', '.join(ANALYSIS_OUTCOME)}")
    a.add_argument("--replicates", type=int, default=1000, help="simulated trials per scenario (1000)")
    a.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed ({DEFAULT_SEED})")
    a.add_argument("--effect", type=float, help="assumed effect in the analysis's effect kind (default: the "
                                                "observed estimate; required for longitudinal analyses)")
    a.add_argument("--followup", type=float, help="tte: follow-up in the time unit (default: largest time)")
    a.add_argument("--generator", default="default", help="generator family (default)")
    a.add_argument("--alpha", type=float, default=0.05, help="two-sided level (0.05)")
    a.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    a.set_defaults(func=_cmd_calibrate)
