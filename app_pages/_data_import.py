"""The Data page's upload logic (the page draws; this module decides and converts).

* :func:`selection`: what the uploader holds, after :func:`cohorts.uploads.check_upload` on every file: one
  table (CSV/TSV, Parquet, SAS XPORT), one PRO-ACT extract (.zip), or the PRO-ACT CSV files selected together
  (zipped in memory, so the importer sees one archive).
* :func:`import_proact`: a PRO-ACT extract through :func:`cohorts.proact.load_proact`, expressed as a plain
  CSV file plus its schema. The session cohort is then ``load_cohort(csv bytes, schema)`` like any uploaded
  table, so its SHA-256 is that CSV's and scenario files and run directories (:mod:`app_pages._runs`) name
  that file. :func:`adopt_import` makes it the session's upload (``ss["upload"]``) and presets the roles.
* :func:`schema_from_upload`: a schema TOML upload checked against the table's columns.
* :func:`check_roles`: the cohort of the edited roles, or the library's error (shown inline by the page).

Reading untrusted bytes must never end in a traceback: an exception other than a
:class:`~cohorts.errors.WorkbenchError` while parsing is turned into an :class:`InvalidDataError` saying so.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

import pandas as pd
import streamlit as st

from app_pages._runs import bare_name
from app_pages._schema_editor import preset
from cohorts.adam import ImportReport
from cohorts.errors import InvalidDataError, WorkbenchError
from cohorts.io import load_cohort, read_table
from cohorts.schema import CohortSchema, closest
from cohorts.uploads import ACCEPTED_SUFFIXES, check_upload

__all__ = [
    "PROACT_OUTCOMES",
    "UPLOAD_TYPES",
    "ProactImport",
    "Selection",
    "adopt_import",
    "cached_import",
    "check_roles",
    "import_for",
    "import_proact",
    "read_upload",
    "schema_from_upload",
    "selection",
    "upload_tag",
]

#: extensions offered by the uploader (without the dot, as st.file_uploader wants them)
UPLOAD_TYPES = [s.lstrip(".") for s in ACCEPTED_SUFFIXES]
PROACT_OUTCOMES = {"alsfrs_r": "ALSFRS-R trajectories (one row per visit)",
                   "survival": "Survival (time to death, one row per patient)"}
MAX_SCHEMA_BYTES = 1024 * 1024
_PROACT_CSV = re.compile(r"^proact_[a-z]+\.csv$", re.IGNORECASE)
_ZIP_TIME = (2000, 1, 1, 0, 0, 0)   # fixed member times: the same files make the same archive bytes


def upload_tag(raw: bytes) -> str:
    """The role editor's tag of an upload: the first 10 hex digits of its SHA-256."""
    return hashlib.sha256(raw).hexdigest()[:10]


# =========================================================================== what was uploaded
@dataclass(frozen=True)
class Selection:
    """What the uploader holds: ``kind`` "table" (one file) or "proact" (``data``: a zip archive)."""

    kind: str
    name: str
    data: bytes
    files: tuple[str, ...] = ()


def selection(files: list[tuple[str, bytes]]) -> Selection | None:
    """The upload of ``files`` ((name, bytes) pairs, as the uploader returns them); ``None`` when empty.

    Raises :class:`InvalidDataError` for a file refused by :func:`check_upload`, or several files that are not
    all PRO-ACT tables (``PROACT_<TABLE>.csv``).
    """
    if not files:
        return None
    kinds = [check_upload(name, data) for name, data in files]
    names = tuple(bare_name(name) for name, _ in files)
    if len(files) == 1:
        (name, data), = files
        return Selection("proact" if kinds[0] == "zip" else "table", bare_name(name), bytes(data), names)
    others = [n for n in names if not _PROACT_CSV.match(n)]
    if others:
        raise InvalidDataError(f"{len(files)} files are selected ({', '.join(names)}); a table is read from one "
                               "file: remove the others (x next to each file), or select only the PRO-ACT CSV "
                               "files (PROACT_ALSFRS.csv, PROACT_TREATMENT.csv ...) together",
                               source=", ".join(others))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in sorted(zip(names, (d for _, d in files))):
            archive.writestr(zipfile.ZipInfo(name, _ZIP_TIME), bytes(data))
    return Selection("proact", "PRO-ACT files", buffer.getvalue(), names)


# =========================================================================== PRO-ACT
@dataclass(frozen=True)
class ProactImport:
    """A PRO-ACT import as a plain data file: ``csv_bytes`` (named ``csv_name``) with ``schema``."""

    key: tuple
    csv_name: str
    csv_bytes: bytes
    schema: CohortSchema
    report: ImportReport
    citation: str
    n_patients: int


def _stem(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", PurePosixPath(bare_name(name)).stem).strip("-")
    return stem if stem and stem.lower() != "pro-act-files" else "proact"


def import_proact(sel: Selection, *, placebo_only: bool, outcome: str) -> ProactImport:
    """``sel`` (a PRO-ACT zip) through :func:`load_proact`, then written as CSV (the cohort's data file)."""
    from cohorts.proact import load_proact
    source = io.BytesIO(sel.data)
    source.name = sel.name
    imported = _guarded(lambda: load_proact(source, placebo_only=placebo_only, outcome=outcome), sel.name)
    csv = imported.data.to_csv(index=False, lineterminator="\n").encode("utf-8")
    name = f"{_stem(sel.name)}-{'placebo' if placebo_only else 'all-arms'}-{outcome.replace('_', '-')}.csv"
    return ProactImport(key=_import_key(sel, placebo_only, outcome), csv_name=name, csv_bytes=csv,
                        schema=imported.schema, report=imported.import_report, citation=imported.citation,
                        n_patients=imported.n_patients)


def _import_key(sel: Selection, placebo_only: bool, outcome: str) -> tuple:
    return hashlib.sha256(sel.data).hexdigest(), bool(placebo_only), outcome


def cached_import(sel: Selection, *, placebo_only: bool, outcome: str) -> ProactImport:
    """:func:`import_proact`, reusing the session's last import of the same bytes and options (reruns)."""
    ss = st.session_state
    last = ss.get("proact_import")
    if last is not None and last.key == _import_key(sel, placebo_only, outcome):
        return last
    result = import_proact(sel, placebo_only=placebo_only, outcome=outcome)
    ss["proact_import"] = result
    return result


def adopt_import(result: ProactImport) -> bool:
    """Make the imported CSV the session's upload and preset its roles (once: later edits are kept).

    True when the upload changed."""
    ss = st.session_state
    upload = (result.csv_name, result.csv_bytes)
    if ss.get("upload") == upload:
        return False
    ss["upload"] = upload
    preset(upload_tag(result.csv_bytes), result.schema)
    return True


def import_for(raw: bytes) -> ProactImport | None:
    """The session's PRO-ACT import whose CSV is ``raw`` (for its citation and notes), else ``None``."""
    last = st.session_state.get("proact_import")
    return last if last is not None and last.csv_bytes == raw else None


# =========================================================================== tables and roles
def _guarded(fn, name: str):
    """``fn()``; an unexpected exception from a parser fed untrusted bytes becomes an InvalidDataError."""
    try:
        return fn()
    except WorkbenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - untrusted bytes: report, never a traceback
        raise InvalidDataError(f"the file could not be read ({type(exc).__name__}: {exc}); it is probably damaged "
                               "or not what its extension says: export it again, or as CSV", source=name) from None


def read_upload(name: str, raw: bytes) -> pd.DataFrame:
    """The table of an uploaded file (checked by :func:`check_upload` first)."""
    check_upload(name, raw)
    return _guarded(lambda: read_table(raw, filename=name), name)


def check_roles(raw: bytes, name: str, roles: dict, **cohort_info):
    """The :class:`~cohorts.cohort.Cohort` of the upload with the edited ``roles``, or raise the library's
    :class:`InvalidDataError` (every problem: what, which rows, how to fix)."""
    schema = CohortSchema.from_dict(roles, source="column roles")
    return _guarded(lambda: load_cohort(raw, schema, filename=name, **cohort_info), name)


def schema_from_upload(name: str, data: bytes, columns) -> CohortSchema:
    """A schema TOML upload, validated and checked against the table's ``columns``."""
    source = bare_name(name) or "schema file"
    if len(data) > MAX_SCHEMA_BYTES:
        raise InvalidDataError(f"the schema file is {len(data):,} bytes; a schema is a few lines of TOML (at most "
                               f"{MAX_SCHEMA_BYTES:,} bytes): upload the .toml file of the column roles",
                               source=source)
    try:
        text = bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidDataError(f"the schema file is not UTF-8 text (byte {exc.start}); save it as UTF-8",
                               source=source) from None
    schema = CohortSchema.from_toml_text(text, source=source, hint="; a schema looks like: id = \"patient_id\", then "
                                         "[baseline] numeric = [...] categorical = [...], then [outcome] type = ...")
    cols = [str(c) for c in columns]
    missing = [c for c in schema.columns if c not in cols]
    if missing:
        raise InvalidDataError([f"column {c!r} named in the schema is not in the uploaded table{closest(c, cols)}; "
                                "rename it in the schema (or in the table)" for c in missing], source=source)
    return schema
