"""Data: choose a built-in reference cohort, or upload a table (CSV, Parquet, SAS XPORT) or a PRO-ACT extract and
name its column roles. Upload logic lives in :mod:`app_pages._data_import`."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages._data_import import (
    PROACT_OUTCOMES,
    UPLOAD_TYPES,
    adopt_import,
    cached_import,
    check_roles,
    import_for,
    read_upload,
    schema_from_upload,
    selection,
    upload_tag,
)
from app_pages._data_sources import BUILTIN, UPLOAD
from app_pages._schema_editor import preset, schema_editor
from app_pages._state import show_error, sidebar, widget
from cohorts.builtin import DEFAULT_BUILTIN, available_builtins, load_builtin
from cohorts.errors import WorkbenchError
from cohorts.uploads import MAX_UPLOAD_MB

ss = st.session_state
bar = sidebar()
st.title("1 · Historical data")
st.write("The cohort the generator learns from: control-arm or natural-history patients.")

source = widget(st.radio, "Source", "data_source", BUILTIN, page="data", options=[BUILTIN, UPLOAD], horizontal=True)
PLACEBO, ALL_ARMS = "Placebo patients only", "All arms (adds the covariate study_arm)"


def use(cohort) -> None:
    """Make ``cohort`` the session's cohort; results computed on another cohort no longer apply.

    Other roles for the same file are another cohort too; the generator is then dropped as well, because its key
    (the file's SHA-256, :func:`app_pages._state.generator_meta`) would still match."""
    old = ss.get("cohort")
    if old is None or old.sha256 != cohort.sha256 or old.name != cohort.name or old.schema != cohort.schema:
        ss["cohort"] = cohort
        stale = ["design", "settings", "power_result", "power_key", "report_html"]
        if old is not None and old.sha256 == cohort.sha256 and old.schema != cohort.schema:
            stale += ["generator", "generator_meta", "generator_params", "generator_card", "evaluation"]
        for key in stale:
            ss.pop(key, None)


def stop_with(exc: WorkbenchError) -> None:
    """Show the error, say which cohort the session keeps, and stop the page."""
    show_error(exc)
    if ss.get("cohort") is not None:
        st.caption(f"The session keeps its previous cohort, **{ss['cohort'].name}**, until this is fixed.")
    st.stop()


def proact_section(chosen) -> None:
    """Options of a PRO-ACT import, its notes and counts; the imported table becomes the session's upload."""
    st.subheader("PRO-ACT import")
    st.caption("A .zip is read as a PRO-ACT extract (PROACT_ALSFRS.csv, PROACT_TREATMENT.csv ... at any depth); "
               "to use a single table, upload it unzipped.")
    c1, c2 = st.columns(2)
    arms = widget(c1.radio, "Patients", "proact_arms", PLACEBO, page="data", options=[PLACEBO, ALL_ARMS])
    outcome = widget(c2.radio, "Outcome", "proact_outcome", "alsfrs_r", page="data", options=list(PROACT_OUTCOMES),
                     format_func=PROACT_OUTCOMES.get)
    try:
        result = cached_import(chosen, placebo_only=arms == PLACEBO, outcome=outcome)
    except WorkbenchError as exc:
        stop_with(exc)
    adopt_import(result)
    report = result.report
    st.success(f"Imported {result.n_patients:,} patients from {', '.join(chosen.files)}.")
    with st.expander("What the importer kept and dropped", expanded=False):
        st.markdown("\n".join(f"- {n}" for n in report.notes) or "Nothing was dropped.")
        st.dataframe(pd.DataFrame({"count": list(report.counts), "value": list(report.counts.values())}),
                     hide_index=True)
        st.caption("Input files (SHA-256): " + "; ".join(f"{n} `{h[:12]}…`" for n, h in report.files))
    st.caption(f"The cohort is this import saved as a plain CSV file, **{result.csv_name}** "
               f"({len(result.csv_bytes):,} bytes), with the column roles below: its SHA-256 is that CSV's, and "
               "scenario files and run directories name that file.")
    st.download_button("Download the imported table (CSV)", result.csv_bytes, file_name=result.csv_name,
                       mime="text/csv")


def schema_upload(df, tag: str) -> None:
    """An optional schema TOML that sets the roles (applied once per file; the editor can change them after)."""
    up = st.file_uploader("Column roles from a schema file (TOML, optional)", type=["toml"],
                          key="w_data_schema_upload", max_upload_size=1)
    if up is None:
        return
    raw = up.getvalue()
    try:
        schema = schema_from_upload(up.name, raw, df.columns)
    except WorkbenchError as exc:
        show_error(exc)
        return
    applied = (tag, upload_tag(raw))
    if ss.get("schema_applied") != applied:
        ss["schema_applied"] = applied
        preset(tag, schema)
    st.caption(f"Roles set from **{up.name}**.")


if source == BUILTIN:
    infos = {b.name: b for b in available_builtins()}
    name = widget(st.selectbox, "Built-in cohort", "builtin", DEFAULT_BUILTIN, page="data", options=list(infos),
                  format_func=lambda n: infos[n].title)
    try:
        use(load_builtin(name))
    except WorkbenchError as exc:
        show_error(exc)
        st.stop()
else:
    files = st.file_uploader(
        "Historical patients: a table (CSV, TSV, Parquet or SAS XPORT .xpt; one row per patient, or per visit), or "
        "a PRO-ACT extract (.zip, or its PROACT_*.csv files selected together)", type=UPLOAD_TYPES,
        accept_multiple_files=True, key="w_data_upload", max_upload_size=MAX_UPLOAD_MB)
    try:
        chosen = selection([(f.name, f.getvalue()) for f in files or []])
    except WorkbenchError as exc:
        stop_with(exc)
    if chosen is not None and chosen.kind == "proact":
        proact_section(chosen)
    elif chosen is not None:
        ss["upload"] = (chosen.name, chosen.data)
    if ss.get("upload") is None:
        st.info(f"Upload a file (at most {MAX_UPLOAD_MB} MB). Longitudinal data: one row per visit, baseline "
                "covariates repeated on each row.")
        st.stop()
    fname, raw = ss["upload"]
    st.caption(f"File: **{fname}** ({len(raw):,} bytes)")
    try:
        df = read_upload(fname, raw)
    except WorkbenchError as exc:
        stop_with(exc)
    tag = upload_tag(raw)
    st.subheader("Column roles")
    schema_upload(df, tag)
    schema_dict = schema_editor(df, tag)
    imported = import_for(raw)
    info = {"citation": imported.citation, "description": str(imported.report)} if imported else {}
    try:
        cohort = check_roles(raw, fname, schema_dict, **info)
    except WorkbenchError as exc:
        show_error(exc)
        if ss.get("cohort") is not None:
            st.caption(f"The session keeps its previous cohort, **{ss['cohort'].name}**, until the roles fit.")
        st.subheader("Preview of the file")
        st.dataframe(df.head(50), width="stretch")
        st.stop()
    use(cohort)
    with st.expander("Schema (TOML): save it to run this cohort from the command line"):
        st.code(cohort.schema.to_toml(), language="toml")

cohort = ss["cohort"]
sidebar(bar)
info = next((b for b in available_builtins() if b.name == cohort.name), None)
if info is not None and info.simulated:
    st.warning(f"**Simulated cohort, not patient data.** {info.description}")
elif info is not None:
    st.info(info.description)
if cohort.citation:
    st.caption(f"Source: {cohort.citation}")

s = cohort.schema
c1, c2, c3 = st.columns(3)
c1.metric("Patients", f"{cohort.n_patients:,}")
c2.metric("Rows", f"{len(cohort.data):,}")
c3.metric("Outcome", s.outcome.type)
roles = {"id": s.id, "numeric": ", ".join(s.numeric) or "-", "categorical": ", ".join(s.categorical) or "-",
         "outcome": ", ".join(f"{k}={v}" for k, v in s.to_dict()["outcome"].items())}
st.table({"role": list(roles), "columns": list(roles.values())})
st.subheader("Preview")
st.dataframe(cohort.data.head(50), width="stretch")
st.caption(f"SHA-256 of the data: `{cohort.sha256}`" + (f" (of the file {cohort.source})" if source == UPLOAD else ""))
st.page_link("app_pages/generator.py", label="Next: train the generator", icon=":material/arrow_forward:")
