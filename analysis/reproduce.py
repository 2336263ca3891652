"""Re-run a run directory from its manifest and say whether every number comes out the same.

:func:`reproduce_run` checks the directory's integrity (the manifest's own digest and every file's SHA-256),
reads the cohort (which must have the recorded SHA-256), trains the generator again from the seed (its
fingerprint must match), runs the same kind of run with the same scenario and settings, re-evaluates the family
when the run evaluated it, and compares

* the JSON results with the manifest's ``summary`` (and ``evaluation``), key by key; wall-clock fields are
  ignored (:data:`analysis.run_manifest.TIMING_KEYS`), and so are the package versions a sweep records;
* every raw table cell by cell (NaN equals NaN).

Numbers are compared exactly by default: the same seed on the same software gives bit-identical results.
``rtol`` allows a relative tolerance for re-runs on other hardware or library builds. The outcome lists every
difference (path, recorded value, re-run value), at most :data:`MAX_LISTED` per table.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.run_manifest import TIMING_KEYS, json_safe, without_timings
from analysis.run_reader import RunDirectory, open_run_dir
from cohorts.errors import WorkbenchError

__all__ = ["reproduce_run", "Reproduction", "json_differences", "frame_differences", "MAX_LISTED"]

MAX_LISTED = 20
_IGNORED = frozenset({"versions"})


@dataclass
class Reproduction:
    """``integrity``: problems with the directory itself; ``differences``: numbers that came out differently;
    ``checked``: what was compared (for the command's report)."""

    path: str
    integrity: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.integrity and not self.differences

    def to_json_dict(self) -> dict:
        return {"run_dir": self.path, "identical": self.identical, "integrity": self.integrity,
                "differences": self.differences, "checked": self.checked}


def _flatten(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k not in _IGNORED:
                out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out or {prefix: []}
    return {prefix: value}


def _same(a, b, rtol: float) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return a == b
    if math.isnan(a) and math.isnan(b):
        return True
    return a == b or (rtol > 0 and abs(a - b) <= rtol * max(abs(a), abs(b)))


def json_differences(recorded, rerun, *, where: str, rtol: float = 0.0) -> list[str]:
    """``where.path: recorded X, re-run Y`` for every leaf that differs (timings and versions ignored)."""
    a = _flatten(json.loads(json.dumps(json_safe(without_timings(recorded)))))
    b = _flatten(json.loads(json.dumps(json_safe(without_timings(rerun)))))
    out = []
    for key in sorted(set(a) | set(b)):
        if key not in b:
            out.append(f"{where}.{key}: recorded {a[key]!r}, missing in the re-run")
        elif key not in a:
            out.append(f"{where}.{key}: not recorded, re-run gives {b[key]!r}")
        elif not _same(a[key], b[key], rtol):
            out.append(f"{where}.{key}: recorded {a[key]!r}, re-run {b[key]!r}")
    return out


def frame_differences(recorded: pd.DataFrame, rerun: pd.DataFrame, *, where: str, rtol: float = 0.0) -> list[str]:
    """Cell-by-cell differences of two tables with the same layout (NaN equals NaN; timing columns ignored)."""
    recorded = recorded.drop(columns=[c for c in recorded.columns if c in TIMING_KEYS])
    rerun = rerun.drop(columns=[c for c in rerun.columns if c in TIMING_KEYS])
    if list(recorded.columns) != list(rerun.columns):
        return [f"{where}: columns differ: recorded {list(recorded.columns)}, re-run {list(rerun.columns)}"]
    if len(recorded) != len(rerun):
        return [f"{where}: recorded {len(recorded)} rows, re-run {len(rerun)}"]
    out, total = [], 0
    for col in recorded.columns:
        a, b = recorded[col].to_numpy(), rerun[col].to_numpy()
        if a.dtype.kind in "fc" or b.dtype.kind in "fc":
            a, b = a.astype(float), b.astype(float)
            same = (a == b) | (np.isnan(a) & np.isnan(b))
            if rtol > 0:
                with np.errstate(invalid="ignore"):
                    same |= np.abs(a - b) <= rtol * np.maximum(np.abs(a), np.abs(b))
        else:
            same = np.array([x == y for x, y in zip(a, b)], dtype=bool)
        bad = np.flatnonzero(~same)
        total += bad.size
        for i in bad[:max(0, MAX_LISTED - len(out))]:
            out.append(f"{where} row {i}, {col}: recorded {_plain(a[i])!r}, re-run {_plain(b[i])!r}")
    if total > len(out):
        out.append(f"{where}: {total - len(out)} more differing cells not listed")
    return out


def _plain(x):
    return x.item() if isinstance(x, np.generic) else x


def _rerun(run: RunDirectory, scenario, generator, progress):
    """(JSON results, {raw file name: table}) of the same run done again."""
    from analysis.workflow import run_power, run_sample_size
    s = run.manifest.get("settings", {})
    if run.kind == "power":
        res = run_power(generator, scenario.design, scenario.power, seed=scenario.seed, progress=progress)
        return res.to_json_dict(), {"replicates.parquet": res.raw}
    if run.kind == "sample_size":
        res = run_sample_size(generator, scenario.design, scenario.power, seed=scenario.seed,
                              target=float(s["target"]), n_min=s.get("n_min"), n_max=s.get("n_max"),
                              replicates=s.get("replicates"), n_start=s.get("n_start"))
        return res.to_json_dict(), {"evaluations.parquet": res.search.table()}
    from analysis.sweep import run_sweep
    from analysis.sweep_grid import parse_grid_text
    grid = parse_grid_text((run.path / "grid.toml").read_text(encoding="utf-8"), scenario)
    res = run_sweep(scenario, grid, client=None, progress=progress, generator=generator)
    return res.to_json_dict(), {"sweep.parquet": res.table}


def reproduce_run(path, *, rtol: float = 0.0, progress=None) -> Reproduction:
    """See the module docstring. User errors (unreadable directory, changed data) raise WorkbenchError."""
    from analysis.run_manifest import generator_fingerprint
    from analysis.workflow import evaluate_family, fit_generator

    run = open_run_dir(path)
    out = Reproduction(str(path), integrity=run.verify())
    m = run.manifest
    scenario = run.scenario()
    try:
        cohort = run.cohort()
    except WorkbenchError as exc:
        out.differences.append(f"cohort: {exc}")
        return out
    out.checked.append(f"cohort {cohort.name!r}: SHA-256 {cohort.sha256[:12]}... as recorded")
    ref = scenario.cohort
    generator = fit_generator(cohort, ref.generator, seed=scenario.seed, **ref.generator_params)
    fp = generator_fingerprint(generator)
    want = m.get("generator", {}).get("fingerprint_sha256")
    if fp != want:
        out.differences.append(f"generator.fingerprint_sha256: recorded {want!r}, re-trained {fp!r} (the generator "
                               "trained from the same seed draws different patients)")
    else:
        out.checked.append(f"generator {ref.generator!r} re-trained from seed {scenario.seed}: same fingerprint")
    summary, raws = _rerun(run, scenario, generator, progress)
    out.differences += json_differences(m.get("summary", {}), summary, where="summary", rtol=rtol)
    out.checked.append(f"{run.kind} results: {len(_flatten(without_timings(m.get('summary', {}))))} values")
    for name, frame in raws.items():
        try:
            recorded = run.raw(name)
        except WorkbenchError as exc:
            out.differences.append(str(exc))
            continue
        out.differences += frame_differences(recorded, frame.reset_index(drop=True), where=f"raw/{name}", rtol=rtol)
        out.checked.append(f"raw/{name}: {recorded.shape[0]} rows x {recorded.shape[1]} columns")
    if m.get("evaluation") is not None:
        ev = evaluate_family(cohort, ref.generator, seed=scenario.seed, params=ref.generator_params)
        frame = ev.report.summary()
        out.differences += json_differences(m["evaluation"]["summary"], frame.to_dict(orient="list"),
                                            where="evaluation.summary", rtol=rtol)
        out.checked.append(f"generator evaluation: {len(frame)} metrics")
    return out
