"""Run directories: every power, sample-size or sweep run written to disk for audit and reproduction.

::

    RUN_DIR/
        manifest.json          what ran, on what, with which software, what came out (analysis.run_manifest)
        scenario.toml          the scenario file, verbatim
        grid.toml              (sweep) the grid file, verbatim
        inputs/                (uploaded cohorts) the data file and schema file as read
        generator/             the fitted generator: model.pkl + model_card.json (cohorts.generators.persist)
        results/summary.json   the JSON results (what --json prints)
        results/table.csv      the result table (power per N, the sample-size evaluations, the sweep cells)
        raw/replicates.parquet (power) one row per simulated trial (analysis.power_raw); raw/sweep.parquet
                               (sweep) one row per cell
        evaluation/summary.csv (when evaluated) the family's fidelity / utility / privacy on held-out patients
        figures/NAME.json      plotly figures (``plotly.io.from_json``): the power curve, real vs synthetic,
                               the evaluation figures

:func:`write_run_dir` writes into a fresh temporary sibling and renames it at the end, so an interrupted run
leaves no half-written directory, and it never overwrites a non-empty directory. :mod:`analysis.run_reader` reads
one back.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from analysis.run_manifest import (MANIFEST_FILE, RUN_FORMAT, STREAMS, file_hashes, generator_fingerprint,
                                   json_safe, manifest_digest, platform_text, versions, without_timings)
from cohorts.errors import InvalidDataError
from cohorts.provenance import sha256_bytes

__all__ = ["RunRecord", "write_run_dir", "save_run", "check_run_dir_target", "RUN_KINDS"]

RUN_KINDS = ("power", "sample_size", "sweep")


@dataclass(frozen=True, eq=False)
class RunRecord:
    """One finished run, as :func:`write_run_dir` needs it.

    ``settings``: the options that changed what ran beyond the scenario file (``seed``, ``replicates``; a
    sample-size search's ``target``, ``n_min``, ``n_max``, ``n_start``); ``result``: a PowerResult (power), a
    SimulatedSampleSize (sample_size) or a SweepResult (sweep); ``evaluation``: an
    :class:`analysis.workflow.EvaluatedFamily` or None; ``figures``: name -> plotly figure."""

    kind: str
    scenario: object
    cohort: object
    generator: object
    result: object
    started: datetime
    finished: datetime
    command: str
    settings: dict = field(default_factory=dict)
    grid_text: str | None = None
    evaluation: object | None = None
    figures: dict = field(default_factory=dict)


def check_run_dir_target(out: str | Path) -> Path:
    """``out`` as a Path if a run directory may be written there (missing or empty), else a clear error."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidDataError(f"--out {out}: exists and is not an empty directory; a run directory is never "
                               "overwritten: give a new directory name (it is created)")
    return out


def _results(record: RunRecord) -> tuple[dict, pd.DataFrame, dict[str, pd.DataFrame]]:
    """(summary JSON, result table, raw tables by file name)."""
    r = record.result
    if record.kind == "power":
        return r.to_json_dict(), r.table(), {"replicates.parquet": r.raw}
    if record.kind == "sample_size":
        table = r.search.table()
        return r.to_json_dict(), table, {"evaluations.parquet": table}
    if record.kind == "sweep":
        return r.to_json_dict(), r.table, {"sweep.parquet": r.table}
    raise ValueError(f"unknown run kind {record.kind!r}; one of {RUN_KINDS}")


def _write_inputs(tmp: Path, record: RunRecord) -> dict:
    ref = record.scenario.cohort
    cohort = record.cohort
    info = {"name": cohort.name, "source": cohort.source, "sha256": cohort.sha256,
            "n_patients": int(cohort.n_patients), "n_rows": int(len(cohort.data))}
    if ref.builtin:
        return {**info, "builtin": ref.builtin}
    (tmp / "inputs").mkdir()
    shutil.copy2(ref.data, tmp / "inputs" / Path(ref.data).name)
    shutil.copy2(ref.schema, tmp / "inputs" / Path(ref.schema).name)
    return {**info, "data_file": f"inputs/{Path(ref.data).name}", "schema_file": f"inputs/{Path(ref.schema).name}"}


def write_run_dir(out: str | Path, record: RunRecord) -> Path:
    """Write ``record`` as a run directory at ``out`` (see the module docstring) and return its path."""
    from cohorts.generators.persist import save_generator
    from trials.scenario import scenario_to_toml

    out = check_run_dir_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        scenario = record.scenario
        toml = scenario.text or scenario_to_toml(scenario)
        (tmp / "scenario.toml").write_text(toml, encoding="utf-8")
        if record.grid_text is not None:
            (tmp / "grid.toml").write_text(record.grid_text, encoding="utf-8")
        cohort_info = _write_inputs(tmp, record)
        gen = record.generator
        save_generator(gen, tmp / "generator", training_data_sha256=record.cohort.sha256, seed=scenario.seed)
        card = json.loads((tmp / "generator" / "model_card.json").read_text(encoding="utf-8"))
        summary, table, raws = _results(record)
        (tmp / "results").mkdir()
        (tmp / "results" / "summary.json").write_text(json.dumps(json_safe(summary), indent=2) + "\n",
                                                       encoding="utf-8")
        table.to_csv(tmp / "results" / "table.csv", index=False, lineterminator="\n")
        (tmp / "raw").mkdir()
        for name, frame in raws.items():
            frame.to_parquet(tmp / "raw" / name, index=False)
        evaluation = None
        if record.evaluation is not None:
            ev = record.evaluation
            (tmp / "evaluation").mkdir()
            frame = ev.report.summary()
            frame.to_csv(tmp / "evaluation" / "summary.csv", index=False, lineterminator="\n")
            evaluation = {"n_train": ev.n_train, "n_holdout": ev.n_holdout,
                          "n_synthetic": int(ev.report.n_synthetic),
                          "summary": json_safe(frame.to_dict(orient="list"))}
        if record.figures:
            (tmp / "figures").mkdir()
            for name, fig in record.figures.items():
                if fig is not None:
                    (tmp / "figures" / f"{name}.json").write_text(fig.to_json(), encoding="utf-8")
        manifest = {
            "format": RUN_FORMAT, "kind": record.kind, "title": scenario.title,
            "command": record.command, "reproduce": f"insilico reproduce {out}",
            "scenario": {"file": "scenario.toml", "sha256": sha256_bytes(toml.encode("utf-8"))},
            "settings": json_safe(record.settings), "seed": int(scenario.seed), "streams": STREAMS,
            "cohort": cohort_info,
            "generator": {"family": scenario.cohort.generator, "name": getattr(gen, "name", type(gen).__name__),
                          "hyperparameters": card.get("hyperparameters", {}),
                          "model_sha256": card.get("model_sha256"), "fingerprint_sha256": generator_fingerprint(gen),
                          "training_seconds": card.get("training_seconds")},
            "versions": versions(), "platform": platform_text(),
            "started": record.started.astimezone(timezone.utc).isoformat(timespec="seconds"),
            "finished": record.finished.astimezone(timezone.utc).isoformat(timespec="seconds"),
            "elapsed_s": round((record.finished - record.started).total_seconds(), 3),
            "summary": json_safe(without_timings(summary)),
            "evaluation": evaluation,
            "files": file_hashes(tmp),
        }
        manifest["manifest_sha256"] = manifest_digest(manifest)
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty (checked above)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def save_run(out: str | Path, *, kind: str, scenario, cohort, generator, result, started: datetime, command: str,
             settings: dict, evaluation=None, grid_text: str | None = None) -> Path:
    """Draw the run's figures (:func:`analysis.run_figures.run_figures`) and write its run directory: the one
    call the command line and the app make when a run finishes."""
    from analysis.run_figures import run_figures
    figures = run_figures(cohort, generator, seed=scenario.seed,
                          power_result=result if kind == "power" else None, evaluation=evaluation,
                          sweep_table=result.table if kind == "sweep" else None)
    return write_run_dir(out, RunRecord(kind=kind, scenario=scenario, cohort=cohort, generator=generator,
                                        result=result, started=started, finished=datetime.now(timezone.utc),
                                        command=command, settings=settings, grid_text=grid_text,
                                        evaluation=evaluation, figures=figures))
