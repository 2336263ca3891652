"""``insilico sweep``: power and type I error over a parameter grid, on Dask (used by :mod:`cli`).

::

    insilico sweep SCENARIO.toml --grid GRID.toml --out DIR [--workers N | --scheduler tcp://HOST:PORT]
                   [--replicates R] [--seed S] [--json] [--quiet]

By default the cells run on a fresh local Dask cluster of ``--workers`` processes (one thread each), closed at
the end; ``--scheduler`` uses an existing cluster instead, and ``--workers 0`` runs in this process without
Dask. The numbers are the same in every case (:mod:`analysis.sweep`). ``--out`` is a run directory
(:mod:`analysis.run_dir`: ``raw/sweep.parquet``, ``results/table.csv``, ``results/summary.json``, the manifest,
the grid file, the generator and the heatmaps); prints the table, or with ``--json`` the summary as one JSON
object.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from contextlib import ExitStack
from pathlib import Path

from cohorts.errors import InvalidScenarioError

__all__ = ["add_sweep_command", "DEFAULT_WORKERS", "CONNECT_TIMEOUT_S"]

#: local Dask worker processes when neither --workers nor --scheduler is given
DEFAULT_WORKERS = 2
#: seconds to wait for an existing scheduler (--scheduler) before giving up
CONNECT_TIMEOUT_S = 10

_SHOWN = ["effect", "n_total", "dropout_per_month", "analysis", "power", "power_ci_low", "power_ci_high",
          "type1_error", "mean_estimate"]


def _client(stack: ExitStack, args):
    """A Dask client as the options ask (None: in-process), closed with ``stack``."""
    if args.workers is not None and args.workers < 0:
        raise InvalidScenarioError(f"--workers must be >= 0 (0 runs in this process without Dask), got {args.workers}")
    if args.workers == 0:
        return None
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InvalidScenarioError("insilico sweep needs Dask: pip install 'dask[distributed]' "
                                   "(or run in-process with --workers 0)") from None
    if args.scheduler:
        try:
            return stack.enter_context(Client(args.scheduler, timeout=CONNECT_TIMEOUT_S))
        except (OSError, ValueError, TypeError) as exc:
            raise InvalidScenarioError(f"--scheduler {args.scheduler}: cannot connect ({exc}); start one with "
                                       "`dask scheduler` and workers with `dask worker ADDRESS`, or omit "
                                       "--scheduler to use a local cluster") from None
    cluster = stack.enter_context(LocalCluster(n_workers=args.workers or DEFAULT_WORKERS, threads_per_worker=1,
                                               processes=True, dashboard_address=":0",
                                               silence_logs=logging.CRITICAL))
    return stack.enter_context(Client(cluster))


def _cmd_sweep(args) -> int:
    from analysis.sweep import run_sweep
    from analysis.sweep_grid import load_grid
    from cli_generators import progress_printer
    from trials.design import PowerSettings
    from trials.scenario import load_scenario

    from analysis.run_dir import check_run_dir_target
    from analysis.workflow import load_and_fit
    from cli_report import now, write_cli_run

    started = now()
    scenario = load_scenario(args.scenario)
    if args.replicates is not None:
        p = scenario.power
        scenario = dataclasses.replace(scenario, power=_build(PowerSettings, p.n_total, args.replicates, p.alpha))
    if args.seed is not None:
        if args.seed < 0:
            raise InvalidScenarioError(f"--seed must be a non-negative integer, got {args.seed}")
        scenario = dataclasses.replace(scenario, seed=args.seed)
    grid = load_grid(args.grid, scenario)
    check_run_dir_target(args.out)
    progress = None if args.quiet else progress_printer(sys.stderr)
    with ExitStack() as stack:
        client = _client(stack, args)
        if client is not None and not args.quiet:
            import importlib.util
            board = f"; dashboard {client.dashboard_link}" if importlib.util.find_spec("bokeh") else ""
            print(f"{grid.n_cells} cells on Dask scheduler {client.scheduler.address} "
                  f"({len(client.nthreads())} workers){board}", file=sys.stderr)
        cohort, generator = load_and_fit(scenario, progress=progress)
        result = run_sweep(scenario, grid, client=client, progress=progress, generator=generator)
    write_cli_run(args, kind="sweep", scenario=scenario, cohort=cohort, generator=generator, result=result,
                  started=started, grid_text=Path(args.grid).read_text(encoding="utf-8"),
                  settings={"seed": scenario.seed, "replicates": scenario.power.replicates})
    if args.json:
        print(json.dumps(result.to_json_dict()))
        return 0
    s = result.summary
    print(f"{scenario.title}\n{s['cohort']}; effect kind {s['grid']['effect_kind']}; seed {s['seed']}; "
          f"{s['replicates']} replicates per cell and scenario; alpha {s['alpha']}; "
          f"{s['n_cells']} cells on {s['n_workers']} worker(s), {s['elapsed_s']:.1f} s")
    print(result.table[_SHOWN].to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    return 0


def _build(cls, *args):
    try:
        return cls(*args)
    except InvalidScenarioError as exc:
        raise InvalidScenarioError([p.replace("power.replicates", "--replicates") for p in exc.problems]) from None


def add_sweep_command(sub) -> None:
    """Add ``insilico sweep`` to the ``insilico`` sub-command parsers."""
    sw = sub.add_parser("sweep", help="power and type I error over a grid of effects, sizes, dropout and analyses")
    sw.add_argument("scenario", help="scenario TOML file (the values the grid does not vary)")
    sw.add_argument("--grid", required=True, metavar="GRID.toml",
                    help="grid TOML file: [grid] with lists effect, n_total, dropout_per_month, analysis")
    sw.add_argument("--out", required=True, metavar="RUN_DIR",
                    help="run directory to create (manifest.json, raw/sweep.parquet, results/table.csv, "
                         "results/summary.json, generator, figures); must not exist or be empty")
    where = sw.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run on an existing Dask cluster")
    where.add_argument("--workers", type=int,
                       help=f"local Dask worker processes (default {DEFAULT_WORKERS}; 0 = in this process)")
    sw.add_argument("--replicates", type=int, help="override power.replicates (per cell and scenario)")
    sw.add_argument("--seed", type=int, help="override the scenario's seed")
    sw.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    sw.add_argument("--quiet", action="store_true", help="no progress on stderr")
    sw.set_defaults(func=_cmd_sweep)
