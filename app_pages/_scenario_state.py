"""Scenario file <-> app session: the TOML the sidebar offers for download, and what an uploaded scenario restores.

Drawing lives in :mod:`app_pages._scenario_io`; this module decides (no widgets).

**Download** (:func:`scenario_files`): the session's cohort, generator family and changed hyperparameters (as the
Generator page's form holds them, :func:`form_params`), seed, design and power settings as scenario TOML
(:func:`trials.scenario.scenario_to_toml`). An uploaded table is named by its bare file name, and its schema as
``<stem>.schema.toml``, so that ``insilico power SCENARIO.toml`` works with the two files kept beside it.

**Upload** (:func:`prepare_restore`, then :func:`apply_restore`): the text is parsed by the whitelist parser
(:func:`trials.scenario.parse_scenario`) and everything is checked before the session changes at all:

* the cohort: a built-in one by name; a data file only by its **bare file name** looked up in this session's
  workspace ``uploads/`` folder (where :func:`app_pages._runs.session_scenario` writes the session's upload and
  its schema), or the session's current upload of that name (the Data page). A path in the file is never
  opened as written (it could name another session's files or ``/etc/passwd``): the parser only ever sees
  paths inside ``uploads/``. Without the file the restore stops with :class:`MissingUploadError`;
* the design, as the Design page will rebuild it from its widgets (:func:`app_pages._design_form.page_design`: a few notations that
  mean the same trial are written the page's way, each reported in :attr:`Restore.notes`), and every widget
  value that gives it back (:func:`app_pages._design_form.design_form`). A scenario the pages cannot show exactly (a waning effect,
  a value outside a widget's range, ...) is refused with one problem per key, never half-restored.

:func:`apply_restore` then writes the form values, drops the widget keys (``w_<page>_<name>``) so that
:func:`app_pages._state.widget` recreates them from the form, and sets ``cohort``, ``upload``, ``design``,
``settings`` and ``seed``. Results of another cohort are dropped, and so are finished sample-size and sweep jobs
(their pages show a result without checking what it was computed for); the others are shown as stale by their
pages, which compare keys.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

from app_pages._data_sources import BUILTIN, UPLOAD
from app_pages._design_form import (
    design_form,
    design_form_names,
    form_params,
    generator_form,
    page_design,
)
from app_pages._runs import bare_name
from app_pages._runs import safe_name as stored_name
from cohorts.errors import InvalidDataError, InvalidScenarioError, WorkbenchError

__all__ = ["MAX_SCENARIO_BYTES", "MissingUploadError", "Restore", "ScenarioFiles", "apply_restore", "bare_name",
           "design_form", "design_form_names", "form_params", "generator_form", "page_design", "prepare_restore",
           "scenario_files"]

MAX_SCENARIO_BYTES = 1024 * 1024
_COHORT_CHANGED = ("power_result", "power_key", "report_html", "report_pdf")   # results of another cohort
_UNKEYED_JOBS = ("sample_size_job", "sweep_job")   # their pages show a finished result without checking its key


class MissingUploadError(InvalidScenarioError):
    """The scenario names a data or schema file that this session does not have."""

    kind = "missing file"


# ================================================================================================ download
@dataclass(frozen=True)
class ScenarioFiles:
    """What the sidebar offers: the scenario TOML and, for an uploaded table, its schema TOML."""

    toml: str
    name: str
    data_name: str | None = None
    schema_toml: str | None = None
    schema_name: str | None = None


def data_file_names(upload_name: str) -> tuple[str, str]:
    """``(data, schema)``: the bare file names a scenario of an uploaded table uses."""
    data = bare_name(upload_name) or "data.csv"
    return data, f"{Path(data).stem}.schema.toml"


def scenario_files(cohort, upload, generator: str, params: dict, design, settings, seed: int) -> ScenarioFiles:
    """The session's scenario as TOML (``upload``: the session's ``(file name, bytes)`` or ``None``)."""
    from trials.scenario import CohortRef, Scenario, scenario_to_toml
    ref_params = tuple(sorted(params.items()))
    data = schema = schema_text = None
    if cohort.source.startswith("builtin:"):
        ref = CohortRef(builtin=cohort.source.removeprefix("builtin:"), generator=generator, params=ref_params)
    else:
        data, schema = data_file_names(upload[0] if upload else f"{cohort.name}.csv")
        ref = CohortRef(data=Path(data), schema=Path(schema), generator=generator, params=ref_params)
        schema_text = cohort.schema.to_toml()
    title = f"{cohort.name}: {design.effect.describe()}, {design.endpoint.analysis} analysis"
    text = scenario_to_toml(Scenario(title=title, seed=int(seed), cohort=ref, design=design, power=settings))
    return ScenarioFiles(text, f"scenario-{stored_name(cohort.name)}.toml", data, schema_text, schema)


# ================================================================================================= restore
@dataclass(frozen=True)
class Restore:
    """Everything an uploaded scenario sets, checked (see :func:`apply_restore`)."""

    scenario: object                  # trials.scenario.Scenario
    cohort: object                    # cohorts.cohort.Cohort
    design: object                    # the design the Design page rebuilds (see page_design)
    form: dict                        # form name -> widget value
    clear: tuple[str, ...]            # form names reset to the pages' defaults
    upload: tuple[str, bytes] | None  # the session's new upload (an uploaded table)
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        s, d = self.scenario, self.design
        return (f"Restored **{s.title}**: cohort {self.cohort.name}, generator {s.cohort.generator}, seed {s.seed}; "
                f"{d.endpoint.analysis} analysis of {d.effect.describe()}; N = "
                f"{', '.join(map(str, s.power.n_total))}, {s.power.replicates} replicates.")


def _plain_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _missing(name: str) -> MissingUploadError:
    return MissingUploadError(f"This scenario uses the uploaded file {name}: upload it (and its schema) on the Data "
                              "page first, then upload the scenario again.")


def _is_session_upload(name: str, upload) -> bool:
    return upload is not None and stored_name(bare_name(upload[0])) == stored_name(name)


def _locate(cohort: dict, uploads: Path, session_upload, session_cohort) -> tuple[dict, list[str]]:
    """``cohort`` with ``data`` and ``schema`` replaced by files inside ``uploads`` (their bare names), and notes.

    The session's own upload of that name (and, without a schema file, the Data page's column roles of it) are
    written there first, as :func:`app_pages._runs.session_scenario` does for a run."""
    notes = []
    data_bare = bare_name(cohort["data"])
    if not data_bare:
        raise _missing(repr(cohort["data"]))
    data_path = uploads / stored_name(data_bare)
    from_session = _is_session_upload(data_bare, session_upload)
    if from_session:
        uploads.mkdir(parents=True, exist_ok=True)
        if not _plain_file(data_path) or data_path.read_bytes() != session_upload[1]:
            data_path.write_bytes(session_upload[1])
    elif not _plain_file(data_path):
        raise _missing(data_bare)
    out = dict(cohort, data=str(data_path))
    schema = cohort.get("schema")
    if isinstance(schema, str):
        schema_bare = bare_name(schema)
        if not schema_bare:
            raise _missing(repr(schema))
        schema_path = uploads / stored_name(schema_bare)
        if not _plain_file(schema_path):
            same = (from_session and session_cohort is not None
                    and session_cohort.sha256 == hashlib.sha256(session_upload[1]).hexdigest())
            if not same:
                raise _missing(schema_bare)
            schema_path.write_text(session_cohort.schema.to_toml(), encoding="utf-8")
            notes.append(f"The schema file {schema_bare} is not in this session: the column roles set on the Data "
                         f"page for {data_bare} are used.")
        out["schema"] = str(schema_path)
    return out, notes


def _parse(raw: bytes, source: str, uploads: Path, session_upload, session_cohort):
    """The scenario of the uploaded bytes, with its data and schema (if any) resolved inside ``uploads``."""
    from trials.scenario import parse_scenario
    where = bare_name(source) or "the scenario file"
    if len(raw) > MAX_SCENARIO_BYTES:
        raise InvalidScenarioError(f"the file is {len(raw):,} bytes; a scenario is a page of TOML (at most "
                                   f"{MAX_SCENARIO_BYTES:,} bytes)", source=where)
    try:
        text = raw.decode("utf-8-sig")
        d = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise InvalidScenarioError(f"not UTF-8 text (byte {exc.start}); save the scenario as UTF-8",
                                   source=where) from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidScenarioError(f"not valid TOML: {exc}", source=where) from None
    notes = []
    cohort = d.get("cohort")
    if isinstance(cohort, dict) and isinstance(cohort.get("data"), str):
        located, notes = _locate(cohort, uploads, session_upload, session_cohort)
        d = dict(d, cohort=located)
    return parse_scenario(d, source=Path(where), text=text), notes


def _load_cohort(ref):
    """The cohort a parsed scenario names (its files lie in the session's uploads folder), with the upload."""
    if ref.builtin is not None:
        from cohorts.builtin import load_builtin
        return load_builtin(ref.builtin), None
    from cohorts.io import load_cohort
    from cohorts.schema import CohortSchema
    schema = CohortSchema.from_toml(ref.schema)
    raw = Path(ref.data).read_bytes()
    name = bare_name(str(ref.data))
    try:
        return load_cohort(raw, schema, filename=name), (name, raw)
    except WorkbenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - untrusted bytes: reported, never a traceback
        raise InvalidDataError(f"the file could not be read ({type(exc).__name__}: {exc})", source=name) from None


def prepare_restore(raw: bytes, source: str, *, uploads: Path, session_upload=None, session_cohort=None) -> Restore:
    """Check an uploaded scenario (bytes of file ``source``) against what the app can show; nothing in the session
    changes. Raises :class:`MissingUploadError` (a named file is not in this session) or another
    :class:`~cohorts.errors.WorkbenchError` listing every problem."""
    from trials.simulate import check_design_fits_cohort
    scenario, notes = _parse(raw, source, uploads, session_upload, session_cohort)
    cohort, upload = _load_cohort(scenario.cohort)
    design, more = page_design(scenario.design)
    check_design_fits_cohort(design, cohort.schema, cohort.data)
    values, problems = design_form(design, scenario.power, scenario.seed, cohort.schema)
    gen_values, gen_problems = generator_form(scenario.cohort.generator, scenario.cohort.generator_params)
    problems += gen_problems
    if problems:
        hint = "the app's pages cannot show the above; `insilico power` runs the file as it is"
        raise InvalidScenarioError([*problems, hint], source=bare_name(source) or None)
    values.update(gen_values)
    if upload is None:
        values.update({"data_source": BUILTIN, "builtin": scenario.cohort.builtin})
    else:
        values["data_source"] = UPLOAD
        values.update(schema_form(hashlib.sha256(upload[1]).hexdigest()[:10], cohort.schema))
    clear = tuple(n for n in design_form_names() if n not in values)
    return Restore(scenario, cohort, design, values, clear, upload, tuple(notes + more))


def schema_form(tag: str, schema) -> dict:
    """The Data page's column-role values (``schema.<tag>.<role>``) that show ``schema``."""
    out = schema.outcome
    roles = {"id": schema.id, "outcome_type": out.type, "time": out.time, "event": out.event, "value": out.value,
             "visit": out.visit, "time_unit": out.unit, "lower": out.lower, "upper": out.upper,
             "numeric": list(schema.numeric), "categorical": list(schema.categorical)}
    return {f"schema.{tag}.{k}": v for k, v in roles.items() if v is not None or k in ("lower", "upper")}


def _stale_widget(key: str, values: dict) -> bool:
    """Whether session key ``key`` is a widget key whose value the restore replaces."""
    if not isinstance(key, str):
        return False
    if key.startswith("w_design_"):
        return True
    return any(key == f"w_{page}_{name}" for page in ("data", "generator") for name in values)


def apply_restore(ss, restore: Restore) -> None:
    """Write ``restore`` into the session state ``ss`` (see the module docstring)."""
    form = ss.setdefault("form", {})
    for name in restore.clear:
        form.pop(name, None)
    form.update(restore.form)
    for key in [k for k in list(ss.keys()) if _stale_widget(k, restore.form)]:
        del ss[key]
    old = ss.get("cohort")
    if old is None or old.sha256 != restore.cohort.sha256 or old.name != restore.cohort.name:
        for key in _COHORT_CHANGED:
            ss.pop(key, None)
    for key in _UNKEYED_JOBS:
        job = ss.get(key)
        if job is not None and not getattr(job, "running", False):
            ss.pop(key, None)
    ss["cohort"] = restore.cohort
    if restore.upload is not None:
        ss["upload"] = restore.upload
    ss["design"], ss["settings"], ss["seed"] = restore.design, restore.scenario.power, int(restore.scenario.seed)
