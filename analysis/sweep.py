"""Parameter sweeps: simulated power and type I error over a grid of designs, in-process or on Dask.

:func:`run_sweep` fits the scenario's generator once, with the seed's training stream
(:func:`analysis.workflow.fit_generator`, as ``insilico power`` does), then runs one task per grid cell
(:mod:`analysis.sweep_grid`). A cell simulates ``replicates`` trials of its design and ``replicates`` trials of
the same design with no effect, analyses each with the batched estimator, and reports

* power = share of two-sided rejections at ``alpha``, with its exact (Clopper-Pearson) 95 % Monte Carlo interval,
* type I error = the same share under the null design, with its Clopper-Pearson interval,
* mean_estimate = mean of the effect-scenario estimates (NaN ones left out), as in ``PowerResult.table``.

**Random stream layout.** Cell ``i`` (its index in the grid's canonical order) draws from::

    np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SWEEP_STREAM, i)))    # SWEEP_STREAM = 7

which is ``np.random.default_rng(seed).spawn(8)[7].spawn(i + 1)[i]``: independent of the training stream (child
0), the simulation stream (child 1) and the evaluation stream (child 2) of :mod:`analysis.workflow`. Its
``spawn(2)`` gives the effect and the null stream, each split into chunks of
:data:`~analysis.power.CHUNK_REPLICATES` replicates by :func:`~analysis.power.simulate_design`. So a cell's
numbers depend on the seed, the cell's index and its design only, never on the number of workers, the scheduler
or the order in which cells complete; without a client the cells run sequentially in-process with the same
numbers. (A sweep cell and ``insilico power`` at the same N use different streams: they agree within Monte Carlo
error, not exactly.)

On Dask the fitted generator is sent to every worker once (``client.scatter(..., broadcast=True)``) and each
cell is one ``client.submit`` task; progress is reported as cells complete.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.power import CHUNK_REPLICATES, rate_ci, simulate_design
from analysis.sweep_grid import SweepCell, SweepGrid
from cohorts.errors import InvalidScenarioError
from cohorts.provenance import RUN_PACKAGES, package_versions
from trials.design import TrialDesign
from trials.scenario import Scenario
from trials.simulate import check_design_fits_cohort

__all__ = ["run_sweep", "SweepResult", "cell_stream", "SWEEP_STREAM", "SWEEP_COLUMNS"]

#: first element of every cell's spawn key (see the module docstring); part of the stream layout, keep it fixed
SWEEP_STREAM = 7
#: the columns of :attr:`SweepResult.table`, in order
SWEEP_COLUMNS = ("cell", "effect", "n_total", "dropout_per_month", "analysis", "power", "power_ci_low",
                 "power_ci_high", "type1_error", "type1_ci_low", "type1_ci_high", "mean_estimate", "replicates",
                 "seconds")

Progress = Callable[[float, str], None]


def cell_stream(seed: int, index: int) -> np.random.Generator:
    """The random stream of grid cell ``index`` (canonical order) for ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SWEEP_STREAM, int(index))))


def _worker_address() -> str | None:
    try:
        from distributed import get_worker
        return get_worker().address
    except (ImportError, ValueError):
        return None


def _cell_task(generator, design: TrialDesign, cell: SweepCell, replicates: int, alpha: float, seed: int) -> dict:
    """One grid cell: power and type I error from the cell's own stream (runs on a worker or in-process)."""
    start = time.perf_counter()
    rng_effect, rng_null = cell_stream(seed, cell.index).spawn(2)
    sim = simulate_design(generator, design, cell.n_total, replicates, alpha, rng=rng_effect)
    sim0 = simulate_design(generator, design.null(), cell.n_total, replicates, alpha, rng=rng_null)
    est = sim.estimate
    k, k0 = int(sim.rejected.sum()), int(sim0.rejected.sum())
    lo, hi = map(float, rate_ci(k, replicates))
    lo0, hi0 = map(float, rate_ci(k0, replicates))
    return {"cell": cell.index, "effect": cell.effect, "n_total": cell.n_total,
            "dropout_per_month": cell.dropout_per_month, "analysis": cell.analysis,
            "power": k / replicates, "power_ci_low": lo, "power_ci_high": hi,
            "type1_error": k0 / replicates, "type1_ci_low": lo0, "type1_ci_high": hi0,
            "mean_estimate": float(np.nanmean(est)) if not np.isnan(est).all() else float("nan"),
            "replicates": replicates, "seconds": time.perf_counter() - start,
            "_worker": _worker_address()}


@dataclass(frozen=True, eq=False)
class SweepResult:
    """One row per grid cell (``table``, columns :data:`SWEEP_COLUMNS`, canonical order) and the run's
    ``summary`` (seed, scenario title, grid, versions, scheduler and workers used). Only ``seconds`` (wall
    time of each cell) and the summary's timings and scheduler fields vary between runs of the same seed."""

    table: pd.DataFrame
    summary: dict
    grid: SweepGrid

    def to_json_dict(self) -> dict:
        """The summary with every cell's row under ``"cells"`` (what ``--json`` prints and summary.json holds)."""
        cells = [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
                 for row in self.table.to_dict(orient="records")]
        cells = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()} for row in cells]
        return {**self.summary, "cells": cells}

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``sweep.parquet``, ``sweep.csv`` and ``summary.json`` into ``out_dir`` (created if needed)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"parquet": out / "sweep.parquet", "csv": out / "sweep.csv", "summary": out / "summary.json"}
        self.table.to_parquet(paths["parquet"], index=False)
        self.table.to_csv(paths["csv"], index=False, lineterminator="\n")
        paths["summary"].write_text(json.dumps(self.to_json_dict(), indent=2) + "\n", encoding="utf-8")
        return paths


def _run_cells(generator, jobs, replicates, alpha, seed, client, report) -> list[dict]:
    if client is None:
        return [report(_cell_task(generator, design, cell, replicates, alpha, seed)) for cell, design in jobs]
    from distributed import as_completed
    shared = client.scatter(generator, broadcast=True, hash=False)
    run_id = uuid.uuid4().hex[:8]
    futures = [client.submit(_cell_task, shared, design, cell, replicates, alpha, seed, pure=False,
                             key=f"sweep-cell-{run_id}-{cell.index}") for cell, design in jobs]
    try:
        return [report(f.result()) for f in as_completed(futures)]
    except BaseException as exc:
        client.cancel(futures)  # do not leave the other cells running on a shared cluster
        if isinstance(exc, ModuleNotFoundError):
            raise InvalidScenarioError(f"a Dask worker cannot import {exc.name!r}: install insilico-workbench "
                                       "(the same version as here) in every worker's environment") from exc
        raise


def run_sweep(scenario: Scenario, grid: SweepGrid, *, client=None, progress: Progress | None = None,
              generator=None) -> SweepResult:
    """Power and type I error of every cell of ``grid`` applied to ``scenario``.

    ``client``: a ``distributed.Client`` (one task per cell) or None to run the cells in-process, one after
    the other, with identical numbers. ``progress(fraction, message)`` is called as cells complete.
    ``generator``: an already fitted generator to use instead of fitting the scenario's (the app, tests).
    """
    start = time.perf_counter()
    fit_s = 0.0
    if generator is None:
        from analysis.workflow import load_and_fit
        generator = load_and_fit(scenario, progress=progress)[1]
        fit_s = time.perf_counter() - start
    jobs = [(cell, cell.design(scenario.design)) for cell in grid.cells()]
    if hasattr(generator, "schema_"):
        for design in {(c.analysis, c.dropout_per_month): d for c, d in jobs}.values():
            check_design_fits_cohort(design, generator.schema_)
    R, alpha, total = scenario.power.replicates, scenario.power.alpha, len(jobs)
    done = 0

    def report(row: dict) -> dict:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done / total, f"cell {done}/{total}: {jobs[row['cell']][0].label()}")
        return row

    rows = sorted(_run_cells(generator, jobs, R, alpha, scenario.seed, client, report), key=lambda r: r["cell"])
    workers = sorted({r.pop("_worker") or "in-process" for r in rows})
    table = pd.DataFrame(rows, columns=list(SWEEP_COLUMNS))
    summary = {
        "title": scenario.title, "seed": scenario.seed, "cohort": scenario.cohort.describe(),
        "generator": getattr(generator, "name", type(generator).__name__),
        "analysis_default": scenario.design.endpoint.analysis, "alpha": float(alpha), "replicates": int(R),
        "grid": grid.to_json_dict(), "n_cells": total,
        "scheduler": "in-process" if client is None else str(client.scheduler.address),
        "n_workers": len(workers), "workers_available": 1 if client is None else len(client.nthreads()),
        "stream_layout": f"cell i: SeedSequence(seed, spawn_key=({SWEEP_STREAM}, i)).spawn(2) -> effect, null; "
                         f"chunks of {CHUNK_REPLICATES} replicates",
        "versions": package_versions(RUN_PACKAGES), "fit_seconds": round(fit_s, 3),
        "elapsed_s": round(time.perf_counter() - start, 3),
    }
    return SweepResult(table=table, summary=summary, grid=grid)
