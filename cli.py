"""The ``insilico`` command: the workbench headless, on scenario files.

::

    insilico power SCENARIO.toml [--json] [--replicates N] [--seed S] [--report REPORT.html] [--out RUN_DIR]
    insilico sample-size SCENARIO.toml [--target 0.8] [--n-min N] [--n-max N] [--replicates R] [--out RUN_DIR]
    insilico report RUN_DIR [RUN_DIR ...] [--format html,pdf] [--out DIR] [--paper a4|letter] [--author NAME]
    insilico reproduce RUN_DIR [--rtol 0] [--json]   # exit 0 identical, 1 different (with the differences)
    insilico sweep SCENARIO.toml --grid GRID.toml --out DIR [--workers N | --scheduler tcp://HOST:PORT] [--json]
    insilico calibrate DATA --schema S.toml --arm COL --treated V --analysis NAME [--replicates R] [--json]
    insilico scenario [FILE] [--schema] [--toml]   # check a scenario file, print it normalized or its JSON schema
    insilico cohorts                      # list the built-in cohorts
    insilico train DATA --schema SCHEMA.toml --generator NAME --out DIR --seed N [--holdout 0.3]
    insilico sample DIR --n N --seed N --out FILE.csv [--criteria EXPR]
    insilico evaluate DIR --data DATA [--json]
    insilico import proact SOURCE --out DIR | insilico import adam --adsl F (--adtte F | --bds F) --out DIR
    insilico analyze DATA --endpoint tte|continuous|binary|longitudinal --arm COL --treated VALUE [...] [--json]

Exit status: 0 on success, 2 for a user error (bad scenario, bad data: the message says what to fix),
1 for anything unexpected. With ``--json`` stdout carries exactly one JSON object; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from cohorts.errors import WorkbenchError

__all__ = ["main"]


def _cmd_power(args) -> int:
    from analysis.workflow import run_scenario
    from cli_report import now
    from trials.scenario import load_scenario

    started = now()
    if args.out:
        from analysis.run_dir import check_run_dir_target
        check_run_dir_target(args.out)
    scenario = load_scenario(args.scenario)
    if args.replicates is not None or args.seed is not None:
        from trials.design import PowerSettings
        power = scenario.power
        if args.replicates is not None:
            power = PowerSettings(power.n_total, args.replicates, power.alpha)
        scenario = dataclasses.replace(scenario, power=power,
                                       seed=args.seed if args.seed is not None else scenario.seed)
    from cli_generators import progress_printer
    progress = None if args.quiet else progress_printer(sys.stderr)
    run = run_scenario(scenario, progress=progress)
    result = run.result
    if args.report:
        from analysis.report import build_html_report
        html = build_html_report(title=scenario.title, cohort=run.cohort, generator=run.generator,
                                 scenario_or_design=scenario, result=result)
        Path(args.report).write_text(html, encoding="utf-8")
        if not args.quiet:
            print(f"report written to {args.report}", file=sys.stderr)
    if args.out:
        from cli_report import write_cli_run
        write_cli_run(args, kind="power", scenario=scenario, cohort=run.cohort, generator=run.generator,
                      result=result, started=started,
                      settings={"seed": scenario.seed, "replicates": scenario.power.replicates})
    if args.json:
        out = {"title": scenario.title, "cohort": scenario.cohort.describe(),
               "generator": scenario.cohort.generator, **result.to_json_dict()}
        print(json.dumps(out))
    else:
        print(f"{scenario.title}\n{scenario.cohort.describe()}; analysis {result.analysis}; "
              f"effect: {scenario.design.effect.describe()}; seed {scenario.seed}")
        for label, text in scenario.design.conduct_summary():
            print(f"{label}: {text}")
        print(result.table().to_string(index=False, float_format=lambda x: f"{x:.3f}"))
        print(f"type I error (no effect, {len(result.n_total) * result.settings.replicates} replicates): "
              f"{result.type1_error:.4f} [{result.type1_ci_low:.4f}, {result.type1_ci_high:.4f}] "
              f"at alpha {result.settings.alpha}")
    return 0


def _cmd_sample_size(args) -> int:
    from analysis.workflow import default_search_range, load_and_fit, run_sample_size
    from trials.scenario import load_scenario
    from cli_report import now

    started = now()
    if args.out:
        from analysis.run_dir import check_run_dir_target
        check_run_dir_target(args.out)
    scenario = load_scenario(args.scenario)
    seed = args.seed if args.seed is not None else scenario.seed
    replicates = args.replicates or scenario.power.replicates
    lo, hi = default_search_range(scenario.power.n_total)
    n_min, n_max = args.n_min or lo, args.n_max or hi
    scenario = dataclasses.replace(scenario, seed=seed)
    cohort, generator = load_and_fit(scenario, progress=None if args.quiet else
                                     lambda f, m: print(f"{m} ...", file=sys.stderr, flush=True))
    if not args.quiet:
        print(f"searching N in [{n_min}, {n_max}] for power {args.target} ({replicates} replicates per N) ...",
              file=sys.stderr, flush=True)
    res = run_sample_size(generator, scenario.design, scenario.power, seed=seed, target=args.target,
                          n_min=n_min, n_max=n_max, replicates=replicates, n_start=args.n_start)
    if args.out:
        from cli_report import write_cli_run
        write_cli_run(args, kind="sample_size", scenario=scenario, cohort=cohort,
                      generator=generator, result=res, started=started,
                      settings={"seed": seed, "replicates": replicates, "target": args.target, "n_min": n_min,
                                "n_max": n_max, "n_start": args.n_start})
    if args.json:
        print(json.dumps({"title": scenario.title, "seed": seed, "analysis": scenario.design.endpoint.analysis,
                          **res.to_json_dict()}))
        return 0
    s = res.search
    print(f"{scenario.title}\nanalysis {scenario.design.endpoint.analysis}; effect: "
          f"{scenario.design.effect.describe()}; seed {seed}; {replicates} replicates per N")
    print(s.table().to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    if s.n_recommended is None:
        print(f"status {s.status}: no N in [{n_min}, {n_max}] was shown to reach power {args.target}")
        return 0
    lo, hi = res.type1_ci()
    print(f"recommended total N: {s.n_recommended} (status {s.status}; Monte Carlo 95 % range "
          f"{s.n_ci_low}-{s.n_ci_high}); simulated power there {s.power:.3f}; type I error at that N "
          f"{res.type1_error:.4f} [{lo:.4f}, {hi:.4f}]")
    return 0


def _cmd_cohorts(args) -> int:
    from cohorts.builtin import available_builtins
    for b in available_builtins():
        print(f"{b.name:32s} {b.title}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="insilico", description="In-silico clinical trial workbench")
    sub = p.add_subparsers(dest="command", required=True)
    pw = sub.add_parser("power", help="simulated power curve and type I error of a scenario file")
    pw.add_argument("scenario", help="scenario TOML file")
    pw.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    pw.add_argument("--replicates", type=int, help="override power.replicates")
    pw.add_argument("--seed", type=int, help="override the scenario's seed")
    pw.add_argument("--report", metavar="FILE.html", help="also write the self-contained HTML report")
    pw.add_argument("--quiet", action="store_true", help="no progress on stderr")
    from cli_report import add_out_option, add_report_commands
    add_out_option(pw)
    pw.set_defaults(func=_cmd_power)
    ss = sub.add_parser("sample-size", help="smallest total N reaching a target power, by simulation")
    ss.add_argument("scenario", help="scenario TOML file (its power.n_total sets the default search range)")
    ss.add_argument("--target", type=float, default=0.8, help="target power (default 0.8)")
    ss.add_argument("--n-min", type=int, help="smallest total N searched (default half the smallest n_total)")
    ss.add_argument("--n-max", type=int, help="largest total N searched (default 4x the largest n_total)")
    ss.add_argument("--n-start", type=int, help="first N simulated (default: the closed form where one exists, else a pilot simulation)")
    ss.add_argument("--replicates", type=int, help="replicates per simulated N (default power.replicates)")
    ss.add_argument("--seed", type=int, help="override the scenario's seed")
    ss.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    ss.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_out_option(ss)
    ss.set_defaults(func=_cmd_sample_size)
    co = sub.add_parser("cohorts", help="list the built-in cohorts")
    co.set_defaults(func=_cmd_cohorts)
    from cli_generators import add_generator_commands, add_import_command
    add_generator_commands(sub)
    add_import_command(sub)
    from cli_analyze import add_analyze_command
    add_analyze_command(sub)
    from cli_sweep import add_sweep_command
    add_sweep_command(sub)
    from cli_calibrate import add_calibrate_command
    add_calibrate_command(sub)
    from cli_scenario import add_scenario_command
    add_scenario_command(sub)
    add_report_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except WorkbenchError as exc:
        print(f"insilico: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
