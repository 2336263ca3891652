"""Reading a run directory back (layout in :mod:`analysis.run_dir`), and the report inputs of one or more runs.

:func:`open_run_dir` parses the manifest; the :class:`RunDirectory` methods read the rest on demand. The
scenario is the verbatim ``scenario.toml`` with the options the run was started with (``settings``) applied
again; an uploaded cohort is read from the copy in ``inputs/`` and must have the SHA-256 the manifest records.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import tomllib
from pathlib import Path

import pandas as pd

from analysis.run_manifest import MANIFEST_FILE, RUN_FORMAT, file_hashes, manifest_digest
from cohorts.errors import InvalidDataError
from cohorts.provenance import read_format_json

__all__ = ["open_run_dir", "RunDirectory", "report_inputs"]

_KINDS = ("power", "sample_size", "sweep")


def open_run_dir(path: str | Path) -> "RunDirectory":
    """The run directory at ``path`` (its manifest parsed; nothing else read yet)."""
    path = Path(path)
    mf = path / MANIFEST_FILE
    manifest = read_format_json(mf, RUN_FORMAT, what="run", fix="; restore the file or run again",
                                missing=f"{path}: no {MANIFEST_FILE}; a run directory is written by `insilico "
                                        "power|sample-size|sweep ... --out DIR` or by a run in the app")
    if manifest.get("kind") not in _KINDS:
        raise InvalidDataError(f"{mf}: unknown run kind {manifest.get('kind')!r}; one of {', '.join(_KINDS)}")
    return RunDirectory(path, manifest)


@dataclasses.dataclass(frozen=True, eq=False)
class RunDirectory:
    path: Path
    manifest: dict

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    def verify(self) -> list[str]:
        """What does not match the manifest: its own digest, and every file's SHA-256 (missing, changed, extra)."""
        problems = []
        if self.manifest.get("manifest_sha256") != manifest_digest(self.manifest):
            problems.append(f"{MANIFEST_FILE} was edited after the run wrote it (its manifest_sha256 does not "
                            "match its content)")
        recorded, now = self.manifest.get("files", {}), file_hashes(self.path)
        for name in sorted(set(recorded) | set(now)):
            if name not in now:
                problems.append(f"{name}: missing (the manifest records it)")
            elif name not in recorded:
                problems.append(f"{name}: not recorded in the manifest (added after the run)")
            elif recorded[name] != now[name]:
                problems.append(f"{name}: changed after the run (SHA-256 {now[name][:12]}... vs recorded "
                                f"{recorded[name][:12]}...)")
        return problems

    def _read(self, name: str) -> str:
        p = self.path / name
        if not p.is_file():
            raise InvalidDataError(f"{self.path}: {name} is missing; the run directory is incomplete")
        return p.read_text(encoding="utf-8")

    def scenario(self):
        """The scenario as run: ``scenario.toml`` verbatim, cohort files from ``inputs/``, settings applied
        (parsed once per RunDirectory)."""
        return self._scenario

    @functools.cached_property
    def _scenario(self):
        from trials.design import PowerSettings
        from trials.scenario import parse_scenario

        text = self._read("scenario.toml")
        d = tomllib.loads(text)
        info = self.manifest.get("cohort", {})
        if "data_file" in info:
            d["cohort"]["data"] = str(self.path / info["data_file"])
            d["cohort"]["schema"] = str(self.path / info["schema_file"])
        scenario = parse_scenario(d, base_dir=self.path, source=self.path / "scenario.toml", text=text)
        s = self.manifest.get("settings", {})
        p = scenario.power
        if s.get("replicates") is not None and s["replicates"] != p.replicates:
            scenario = dataclasses.replace(scenario, power=PowerSettings(p.n_total, int(s["replicates"]), p.alpha))
        if int(self.manifest["seed"]) != scenario.seed:
            scenario = dataclasses.replace(scenario, seed=int(self.manifest["seed"]))
        return scenario

    def cohort(self):
        """The cohort, checked against the SHA-256 the manifest records."""
        from analysis.workflow import load_cohort_ref
        cohort = load_cohort_ref(self.scenario().cohort)
        want = self.manifest.get("cohort", {}).get("sha256")
        if want and cohort.sha256 != want:
            raise InvalidDataError(f"the cohort {cohort.name!r} now has SHA-256 {cohort.sha256[:12]}..., the run "
                                   f"used {want[:12]}...: the data changed since the run")
        return cohort

    def generator(self):
        from cohorts.generators.persist import load_generator
        return load_generator(self.path / "generator")

    def model_card(self) -> dict:
        from cohorts.generators.persist import read_model_card
        return read_model_card(self.path / "generator")

    def summary(self) -> dict:
        return json.loads(self._read("results/summary.json"))

    def raw(self, name: str) -> pd.DataFrame:
        p = self.path / "raw" / name
        if not p.is_file():
            raise InvalidDataError(f"{self.path}: raw/{name} is missing; the run directory is incomplete")
        return pd.read_parquet(p)

    def power_result(self):
        """The PowerResult of a power run, rebuilt from its raw replicates (:mod:`analysis.power_raw`)."""
        from analysis.power_raw import power_result_from_records
        if self.kind != "power":
            raise InvalidDataError(f"{self.path} is a {self.kind} run, not a power run")
        scenario = self.scenario()
        return power_result_from_records(self.summary(), self.raw("replicates.parquet"), scenario.design,
                                         scenario.power)

    def sweep_table(self) -> pd.DataFrame:
        return self.raw("sweep.parquet")

    def evaluation_summary(self) -> pd.DataFrame | None:
        p = self.path / "evaluation" / "summary.csv"
        return pd.read_csv(p) if p.is_file() else None

    def figures(self) -> dict:
        import plotly.io as pio
        folder = self.path / "figures"
        if not folder.is_dir():
            return {}
        return {p.stem: pio.from_json(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))}


def report_inputs(runs, *, author: str | None = None, title: str | None = None):
    """:class:`~analysis.report_inputs.ReportInputs` of one power run, completed by optional sweep and
    sample-size runs of the same cohort (their sensitivity grid and recommended N)."""
    from analysis.report_inputs import ReportInputs

    runs = [r if isinstance(r, RunDirectory) else open_run_dir(r) for r in runs]
    power = [r for r in runs if r.kind == "power"]
    if len(power) != 1:
        raise InvalidDataError(f"a report needs exactly one power run directory (`insilico power SCENARIO --out "
                               f"DIR`), got {len(power)}; sweep and sample-size run directories add their "
                               "sections to it")
    main = power[0]
    sha = main.manifest["cohort"]["sha256"]
    for r in runs:
        if r.manifest["cohort"]["sha256"] != sha:
            raise InvalidDataError(f"{r.path} was run on another cohort (SHA-256 {r.manifest['cohort']['sha256'][:12]}"
                                   f"...) than {main.path} ({sha[:12]}...); a report combines runs of one cohort")
    sweep = next((r for r in runs if r.kind == "sweep"), None)
    size = next((r for r in runs if r.kind == "sample_size"), None)
    scenario = main.scenario()
    size_summary = None if size is None else size.summary()
    ev = main.manifest.get("evaluation")
    return ReportInputs(
        title=title or scenario.title, cohort=main.cohort(), generator=main.generator(), design=scenario.design,
        result=main.power_result(), scenario=scenario, scenario_toml=scenario.text, author=author,
        figures=main.figures(), evaluation=main.evaluation_summary(),
        evaluation_split=None if ev is None else {k: ev[k] for k in ("n_train", "n_holdout", "n_synthetic")},
        model_card=main.model_card(),
        sweep=None if sweep is None else sweep.sweep_table(),
        sweep_summary=None if sweep is None else sweep.summary(),
        sample_size=size_summary,
        manifest=main.manifest,
        **({} if size_summary is None else {"target_power": float(size_summary["target_power"])}))
