"""Data: choose a built-in reference cohort or upload a CSV / Parquet table and name its column roles."""

from __future__ import annotations

import hashlib

import streamlit as st

from app_pages._data_sources import BUILTIN, UPLOAD
from app_pages._schema_editor import schema_editor
from app_pages._state import show_error, sidebar, widget
from cohorts.builtin import DEFAULT_BUILTIN, available_builtins, load_builtin
from cohorts.errors import WorkbenchError
from cohorts.io import load_cohort, read_table
from cohorts.schema import CohortSchema

ss = st.session_state
bar = sidebar()
st.title("1 · Historical data")
st.write("The cohort the generator learns from: control-arm or natural-history patients.")

source = widget(st.radio, "Source", "data_source", BUILTIN, page="data", options=[BUILTIN, UPLOAD], horizontal=True)


def use(cohort) -> None:
    """Make ``cohort`` the session's cohort; results computed on another cohort no longer apply."""
    old = ss.get("cohort")
    if old is None or old.sha256 != cohort.sha256 or old.name != cohort.name:
        ss["cohort"] = cohort
        for key in ("design", "settings", "power_result", "power_key", "report_html"):
            ss.pop(key, None)


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
    up = st.file_uploader("Table of historical patients (one row per patient, or per visit)",
                          type=["csv", "parquet", "pq"], key="w_data_upload")
    if up is not None:
        ss["upload"] = (up.name, up.getvalue())
    if ss.get("upload") is None:
        st.info("Upload a CSV or Parquet file. Longitudinal data: one row per visit, baseline covariates "
                "repeated on each row.")
        st.stop()
    fname, raw = ss["upload"]
    st.caption(f"File: **{fname}** ({len(raw):,} bytes)")
    try:
        df = read_table(raw, filename=fname)
    except WorkbenchError as exc:
        show_error(exc)
        st.stop()
    st.subheader("Column roles")
    schema_dict = schema_editor(df, hashlib.sha256(raw).hexdigest()[:10])
    try:
        schema = CohortSchema.from_dict(schema_dict, source="column roles")
        cohort = load_cohort(raw, schema, filename=fname)
    except WorkbenchError as exc:
        show_error(exc)
        st.dataframe(df.head(20), width="stretch")
        st.stop()
    use(cohort)
    with st.expander("Schema (TOML): save it to run this cohort from the command line"):
        st.code(schema.to_toml(), language="toml")

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
st.caption(f"SHA-256 of the data: `{cohort.sha256}`")
st.page_link("app_pages/generator.py", label="Next: train the generator", icon=":material/arrow_forward:")
