"""Run directories from the command line (used by :mod:`cli`).

::

    insilico power SCENARIO.toml --out RUN_DIR [--no-evaluation]     # and sample-size, sweep: --out RUN_DIR
    insilico report RUN_DIR [RUN_DIR ...] [--format html,pdf] [--out DIR] [--paper a4|letter] [--author NAME]
    insilico reproduce RUN_DIR [--rtol 0] [--json]

``report`` builds the review-board report of one power run directory, with the sensitivity grid of a sweep run
and the recommended N of a sample-size run when their directories are given too. ``reproduce`` re-runs a run
directory from its manifest and exits 0 when every number is identical, 1 with the list of differences when not
(or when a file or the manifest was edited), 2 for a user error.
"""

from __future__ import annotations

import json
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

from cohorts.errors import InvalidDataError

__all__ = ["add_report_commands", "add_out_option", "write_cli_run", "now"]

FORMATS = ("html", "pdf")


def now() -> datetime:
    return datetime.now(timezone.utc)


def add_out_option(parser, *, evaluation: bool = True) -> None:
    parser.add_argument("--out", metavar="RUN_DIR", help="write a run directory (manifest.json, scenario, generator, "
                        "per-replicate raw results, figures) for `insilico report` and `insilico reproduce`")
    if evaluation:
        parser.add_argument("--no-evaluation", action="store_true",
                            help="with --out: skip the generator evaluation on held-out patients (fidelity, "
                                 "utility, privacy) that the report shows")


def write_cli_run(args, *, kind: str, scenario, cohort, generator, result, started, settings: dict,
                  grid_text: str | None = None) -> Path:
    """Evaluate the family (unless --no-evaluation; sweeps never) and write the run directory."""
    from analysis.run_dir import save_run
    from analysis.workflow import evaluate_family
    evaluation = None
    if not getattr(args, "no_evaluation", True):
        if not args.quiet:
            print(f"evaluating {scenario.cohort.generator!r} on held-out patients ...", file=sys.stderr, flush=True)
        evaluation = evaluate_family(cohort, scenario.cohort.generator, seed=scenario.seed,
                                     params=scenario.cohort.generator_params)
    path = save_run(args.out, kind=kind, scenario=scenario, cohort=cohort, generator=generator, result=result,
                    started=started, command=shlex.join(["insilico", *args.argv]), settings=settings,
                    evaluation=evaluation, grid_text=grid_text)
    if not args.quiet:
        print(f"run directory written to {path} (`insilico report {path}`, `insilico reproduce {path}`)",
              file=sys.stderr)
    return path


def _formats(text: str) -> list[str]:
    out = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = [f for f in out if f not in FORMATS]
    if bad or not out:
        raise InvalidDataError(f"--format {text!r}: give html, pdf or html,pdf")
    return list(dict.fromkeys(out))


def _cmd_report(args) -> int:
    from analysis.report import render_html
    from analysis.run_reader import report_inputs
    formats = _formats(args.format)
    if "pdf" in formats:
        from analysis.report_pdf import pdf_renderer_problem
        problem = pdf_renderer_problem()
        if problem:
            raise InvalidDataError(problem)
    inputs = report_inputs(args.run_dirs, author=args.author, title=args.title)
    from analysis.run_manifest import REPORT_FOLDER
    out = Path(args.out) if args.out else Path(args.run_dirs[0]) / REPORT_FOLDER
    if out.exists() and not out.is_dir():
        raise InvalidDataError(f"--out {out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if "html" in formats:
        p = out / "report.html"
        p.write_text(render_html(inputs), encoding="utf-8")
        written.append(p)
    if "pdf" in formats:
        from analysis.report_pdf import render_pdf
        p = out / "report.pdf"
        p.write_bytes(render_pdf(inputs, paper=args.paper))
        written.append(p)
    for p in written:
        print(p)
    return 0


def _cmd_reproduce(args) -> int:
    from analysis.reproduce import reproduce_run
    from cli_generators import progress_printer
    progress = None if args.quiet or args.json else progress_printer(sys.stderr)
    outcome = reproduce_run(args.run_dir, rtol=args.rtol, progress=progress)
    if args.json:
        print(json.dumps(outcome.to_json_dict()))
    else:
        for line in outcome.checked:
            print(f"checked: {line}")
        for line in outcome.integrity:
            print(f"INTEGRITY: {line}")
        for line in outcome.differences:
            print(f"DIFFERENT: {line}")
        print("reproduced: identical results" if outcome.identical else
              f"NOT reproduced: {len(outcome.integrity)} integrity problem(s), {len(outcome.differences)} "
              "difference(s)")
    return 0 if outcome.identical else 1


def add_report_commands(sub) -> None:
    """Add ``insilico report`` and ``insilico reproduce``."""
    rp = sub.add_parser("report", help="review-board report (HTML, PDF) of run directories")
    rp.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                    help="one power run directory, optionally a sweep and a sample-size run directory")
    rp.add_argument("--format", default="html,pdf", help="html, pdf or html,pdf (default)")
    rp.add_argument("--out", metavar="DIR", help="where report.html / report.pdf go (default: RUN_DIR/report, which "
                                                  "reproduce leaves out of its checks)")
    rp.add_argument("--paper", choices=("a4", "letter"), default="a4", help="PDF paper size (default a4)")
    rp.add_argument("--author", help="author shown on the title page")
    rp.add_argument("--title", help="report title (default: the scenario's title)")
    rp.set_defaults(func=_cmd_report)
    rr = sub.add_parser("reproduce", help="re-run a run directory and verify identical results")
    rr.add_argument("run_dir", metavar="RUN_DIR")
    rr.add_argument("--rtol", type=float, default=0.0,
                    help="relative tolerance for numbers (default 0: bit-identical, as on the same software)")
    rr.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    rr.add_argument("--quiet", action="store_true", help="no progress on stderr")
    rr.set_defaults(func=_cmd_reproduce)
