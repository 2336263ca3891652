"""AppTest of the Data page's uploads: tables in every accepted format through the role editor, a PRO-ACT
extract (zip, or its CSV files selected together) imported as a plain CSV + schema, a schema TOML upload, and
inline validation of the roles.

Expected values come from the library called directly (load_cohort, load_proact) on the same files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import io
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app_pages._data_sources import BUILTIN, UPLOAD
from cohorts.io import load_cohort
from cohorts.proact import load_proact
from cohorts.schema import CohortSchema

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "cohorts" / "fixtures"
VA_CSV = (ROOT / "tests" / "data" / "va_lung.csv").read_bytes()
VA_SCHEMA_TOML = (ROOT / "examples" / "va_lung_schema.toml").read_bytes()
PROACT_ZIP = (FIX / "proact.zip").read_bytes()
PROACT_FILES = {p.name: p.read_bytes() for p in sorted((FIX / "proact").iterdir())}


def _texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def _upload_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.radio(key="w_data_data_source").set_value(UPLOAD).run()
    assert not at.exception, at.exception
    return at


def _upload(at: AppTest, *files: tuple[str, bytes]) -> AppTest:
    value = [(n, d, "application/octet-stream") for n, d in files]
    at.file_uploader(key="w_data_upload").set_value(value).run()
    assert not at.exception, at.exception
    return at


def _tag(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:10]


def _write_xport(df: pd.DataFrame) -> bytes:
    spec = importlib.util.spec_from_file_location("_fixtures_xport", FIX / "xport.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_xport(df, name="VALUNG")


# =========================================================================== tables
def test_parquet_and_xport_tables_go_through_the_role_editor():
    va = pd.read_csv(io.BytesIO(VA_CSV))
    buf = io.BytesIO()
    va.to_parquet(buf)
    at = _upload(_upload_page(), ("va_lung.parquet", buf.getvalue()))
    assert not at.error, _texts(at.error)
    cohort = at.session_state["cohort"]
    assert cohort.name == "va_lung" and cohort.n_patients == 137 and cohort.schema.outcome.type == "tte"
    assert at.selectbox(key=f"w_data_schema.{_tag(buf.getvalue())}.event").value == "death"

    short = va.rename(columns={"patient_id": "id", "Age_in_years": "age", "Celltype": "cell", "time_days": "time"})
    short = short[["id", "age", "cell", "time", "death"]]
    xpt = _write_xport(short)
    _upload(at, ("va_lung.xpt", xpt))
    assert not at.error, _texts(at.error)
    cohort = at.session_state["cohort"]
    inferred = CohortSchema.infer(short)   # the editor names the time unit the inference leaves open
    inferred = dataclasses.replace(inferred, outcome=dataclasses.replace(inferred.outcome, time_unit="days"))
    expected = load_cohort(xpt, inferred, filename="va_lung.xpt")
    assert cohort.sha256 == expected.sha256 and cohort.schema == expected.schema
    pd.testing.assert_frame_equal(cohort.data, expected.data)


def test_a_refused_upload_keeps_the_previous_cohort():
    at = _upload(_upload_page(), ("va_lung.csv", VA_CSV.replace(b"\n", b"\x00\n", 3)))
    assert "NUL bytes" in _texts(at.error) and "va_lung.csv" in _texts(at.error)
    assert at.session_state["cohort"].name == "als-natural-history"
    assert "keeps its previous cohort" in _texts(at.caption)


def test_several_files_that_are_not_proact_tables():
    at = _upload(_upload_page(), ("a.csv", VA_CSV), ("b.csv", VA_CSV))
    assert "2 files are selected (a.csv, b.csv)" in _texts(at.error)


# =========================================================================== inline validation
def test_duplicated_id_is_shown_inline_with_rows_and_the_preview_stays():
    lines = VA_CSV.decode().splitlines()
    dup = "\n".join([*lines, lines[3]]) + "\n"      # patient 3 on a second row
    at = _upload(_upload_page(), ("dup.csv", dup.encode()))
    errors = _texts(at.error)
    assert "'patient_id' (patient id): 1 id on more than one row: id 3 in 2 data rows: 3, 138" in errors
    assert "one row per patient" in errors
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 50     # the file's preview
    assert at.session_state["cohort"].name == "als-natural-history"
    # the fix in the editor: 'longitudinal' is not it (no visit), removing the row is; choosing another id works
    at.selectbox(key=f"w_data_schema.{_tag(dup.encode())}.outcome_type").set_value("continuous").run()
    assert not at.exception


def test_event_column_that_is_not_zero_one_names_the_rows():
    raw = VA_CSV.decode().replace(",72.0,1\n", ",72.0,2\n", 1).encode()
    at = _upload(_upload_page(), ("va.csv", raw))
    tag = _tag(raw)   # 'death' is no longer 0/1, so the guess does not take it as the event: choose it
    at.selectbox(key=f"w_data_schema.{tag}.outcome_type").set_value("tte")
    at.selectbox(key=f"w_data_schema.{tag}.id").set_value("patient_id").run()
    at.selectbox(key=f"w_data_schema.{tag}.time").set_value("time_days")
    at.selectbox(key=f"w_data_schema.{tag}.event").set_value("death").run()
    assert not at.exception, at.exception
    errors = _texts(at.error)
    assert "column 'death' (tte event): not 0 or 1 in 1 data row: 1 (2)" in errors
    assert "1 = event, 0 = censored" in errors
    assert len(at.dataframe) == 1


# =========================================================================== schema TOML upload
def _upload_schema(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="w_data_schema_upload").set_value((name, data, "application/toml")).run()
    assert not at.exception, at.exception
    return at


def test_schema_toml_sets_the_roles():
    at = _upload(_upload_page(), ("va_lung.csv", VA_CSV))
    assert at.session_state["cohort"].schema != CohortSchema.from_toml(VA_SCHEMA_TOML.decode())  # inferred first
    _upload_schema(at, "va_lung_schema.toml", VA_SCHEMA_TOML)
    assert not at.error, _texts(at.error)
    expected = load_cohort(VA_CSV, CohortSchema.from_toml(VA_SCHEMA_TOML.decode()), filename="va_lung.csv")
    cohort = at.session_state["cohort"]
    assert cohort.schema == expected.schema and cohort.sha256 == expected.sha256
    assert "Roles set from **va_lung_schema.toml**" in _texts(at.caption)
    # applied once: an edit in the editor afterwards is kept, and it makes another cohort (same file, other
    # roles): a generator fitted on the old roles is dropped, though its key (the file's SHA-256) still matches
    at.session_state["generator"] = "fitted on the old roles"
    at.session_state["generator_meta"] = (cohort.sha256, "default", 1)
    tag = _tag(VA_CSV)
    at.multiselect(key=f"w_data_schema.{tag}.categorical").set_value(["Celltype"]).run()
    assert at.session_state["cohort"].schema.categorical == ("Celltype",)
    assert "generator" not in at.session_state and "generator_meta" not in at.session_state


@pytest.mark.parametrize("name,data,needle", [
    ("bad.toml", b"id = \n[outcome", "not valid TOML"),
    ("typo.toml", VA_SCHEMA_TOML.replace(b'"death"', b'"deaths"'),
     "column 'deaths' named in the schema is not in the uploaded table (did you mean 'death'?)"),
    ("wrong.toml", VA_SCHEMA_TOML.replace(b'type = "tte"', b'type = "survival"'), "'outcome.type' is 'survival'"),
    ("latin.toml", "id = \"é\"\n".encode("latin-1"), "not UTF-8"),
])
def test_bad_schema_toml_is_an_inline_error_and_roles_stay(name, data, needle):
    at = _upload(_upload_page(), ("va_lung.csv", VA_CSV))
    before = at.session_state["cohort"]
    _upload_schema(at, name, data)
    assert needle in _texts(at.error) and name in _texts(at.error)
    assert at.session_state["cohort"] is before


# =========================================================================== PRO-ACT
def test_proact_zip_becomes_a_plain_csv_cohort():
    at = _upload(_upload_page(), ("proact.zip", PROACT_ZIP))
    assert not at.error, _texts(at.error)
    expected = load_proact(PROACT_ZIP)
    name, raw = at.session_state["upload"]
    assert name == "proact-placebo-alsfrs-r.csv"
    cohort = at.session_state["cohort"]
    # the session cohort is the CSV with the importer's schema (bounds 0-48 included): what a scenario names
    assert cohort.schema == expected.schema and cohort.schema.outcome.upper == 48
    again = load_cohort(raw, expected.schema, filename=name)
    assert cohort.sha256 == again.sha256 and cohort.n_patients == expected.n_patients == 19
    pd.testing.assert_frame_equal(cohort.data, expected.data)
    assert f"Imported {expected.n_patients} patients from proact.zip." in _texts(at.success)
    assert "its SHA-256 is that CSV's" in _texts(at.caption)
    assert "Atassi" in cohort.citation and expected.import_report.notes[0] in cohort.description
    notes = "\n".join(str(m.value) for m in at.markdown)
    assert expected.import_report.notes[0] in notes


def test_proact_options_and_the_same_cohort_from_the_csv_files_selected_together():
    at = _upload(_upload_page(), ("proact.zip", PROACT_ZIP))
    at.radio(key="w_data_proact_outcome").set_value("survival").run()
    at.radio(key="w_data_proact_arms").set_value(at.radio(key="w_data_proact_arms").options[1]).run()
    assert not at.exception and not at.error, _texts(at.error)
    expected = load_proact(PROACT_ZIP, outcome="survival", placebo_only=False)
    cohort = at.session_state["cohort"]
    assert cohort.schema == expected.schema and cohort.n_patients == expected.n_patients
    assert "study_arm" in cohort.schema.categorical
    from_zip = cohort.sha256

    at2 = _upload(_upload_page(), *PROACT_FILES.items())
    at2.radio(key="w_data_proact_outcome").set_value("survival").run()
    at2.radio(key="w_data_proact_arms").set_value(at2.radio(key="w_data_proact_arms").options[1]).run()
    assert not at2.error, _texts(at2.error)
    assert at2.session_state["cohort"].sha256 == from_zip   # same CSV bytes, whatever the container


def test_proact_without_the_treatment_table_is_an_error():
    files = {k: v for k, v in PROACT_FILES.items() if k != "PROACT_TREATMENT.csv"}
    at = _upload(_upload_page(), *files.items())
    assert "required table TREATMENT is missing" in _texts(at.error)
    assert at.session_state["cohort"].name == "als-natural-history"


def test_proact_import_survives_a_page_switch():
    at = _upload(_upload_page(), ("proact.zip", PROACT_ZIP))
    before = at.session_state["cohort"]
    at.switch_page("app_pages/design.py").run()
    at.switch_page("app_pages/data.py").run()
    assert not at.exception and not at.error, _texts(at.error)
    after = at.session_state["cohort"]
    assert after.sha256 == before.sha256 and after.schema == before.schema


def test_scenario_style_restore_of_an_upload_without_the_uploader():
    """What the scenario restore does: ss['upload'] and the roles in the form, the uploader left empty."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.session_state["upload"] = ("va_lung.csv", VA_CSV)
    form = at.session_state["form"]
    form["data_source"] = UPLOAD
    schema = CohortSchema.from_toml(VA_SCHEMA_TOML.decode())
    tag = _tag(VA_CSV)
    form.update({f"schema.{tag}.id": schema.id, f"schema.{tag}.outcome_type": "tte",
                 f"schema.{tag}.time": "time_days", f"schema.{tag}.event": "death",
                 f"schema.{tag}.numeric": list(schema.numeric), f"schema.{tag}.categorical": list(schema.categorical)})
    at.session_state["form"] = form
    at.session_state["w_data_data_source"] = UPLOAD
    at.run()
    assert not at.exception and not at.error, _texts(at.error)
    assert at.session_state["cohort"].schema == schema
    at.radio(key="w_data_data_source").set_value(BUILTIN).run()
    assert at.session_state["cohort"].name == "als-natural-history"
