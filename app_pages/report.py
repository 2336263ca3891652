"""Report: the review-board report of a power run directory (preview, HTML, PDF, manifest, raw data)."""

from __future__ import annotations

import streamlit as st

from app_pages._report_files import (build_html, build_pdf, pdf_problem, raw_zip, run_label, run_zip)
from app_pages._runs import list_runs
from app_pages._state import show_error, sidebar, widget
from cohorts.errors import WorkbenchError

ss = st.session_state
sidebar()
st.title("5 · Report")
runs = list_runs()
power_runs = [r for r in runs if r.kind == "power"]
if not power_runs:
    st.info("Every run on the **Power** page is kept as a run directory; the report is built from one. Run a "
            "simulation first.")
    st.page_link("app_pages/power.py", label="Go to Power")
    st.stop()

by_path = {str(r.path): r for r in runs}
c1, c2 = st.columns(2)
main = widget(c1.selectbox, "Power run", "report_run", str(power_runs[0].path), page="report",
              options=[str(r.path) for r in power_runs], format_func=lambda p: run_label(by_path[p]))
others = [r for r in runs if r.kind != "power"]
extra = widget(c2.multiselect, "Add a sweep or sample-size run", "report_extra", [], page="report",
               options=[str(r.path) for r in others], format_func=lambda p: run_label(by_path[p]),
               help="Its sensitivity grid or recommended N appears in the report (same cohort only).")
c1, c2, c3 = st.columns([2, 2, 1])
run = by_path[main]
title = widget(c1.text_input, "Report title", "report_title", run.manifest.get("title", ""), page="report")
author = widget(c2.text_input, "Author", "report_author", "", page="report")
paper = widget(c3.selectbox, "PDF paper", "report_paper", "a4", page="report", options=["a4", "letter"])

chosen = (main, *extra)
key = (chosen, title, author, run.manifest.get("manifest_sha256"))
if ss.get("report_html", (None, None))[0] != key:
    try:
        with st.spinner("Building the report from the run directory..."):
            ss["report_html"] = (key, build_html(chosen, title=title, author=author or None))
    except WorkbenchError as exc:
        show_error(exc)
        st.stop()
html = ss["report_html"][1]

problems = run.verify()
if problems:
    st.warning("This run directory was changed after the run:\n\n" + "\n".join(f"- {p}" for p in problems))
stem = run.path.name
d1, d2, d3, d4 = st.columns(4)
d1.download_button("HTML report", html, file_name=f"report-{stem}.html", mime="text/html", type="primary",
                   on_click="ignore", icon=":material/download:")
problem = pdf_problem()
if problem:
    d2.button("PDF report", disabled=True, help=problem)
elif st.session_state.get("report_pdf", (None,))[0] == (chosen, title, author, paper):
    d2.download_button("PDF report", ss["report_pdf"][1], file_name=f"report-{stem}.pdf", mime="application/pdf",
                       on_click="ignore", icon=":material/download:")
elif d2.button("Build the PDF", help="Static figures and page layout take a few seconds."):
    try:
        with st.spinner("Rendering the PDF (static figures, page layout)..."):
            ss["report_pdf"] = ((chosen, title, author, paper), build_pdf(chosen, title=title, author=author or None,
                                                                        paper=paper))
        st.rerun()
    except WorkbenchError as exc:
        show_error(exc)
d3.download_button("manifest.json", (run.path / "manifest.json").read_bytes(), file_name=f"manifest-{stem}.json",
                   mime="application/json", on_click="ignore")
d4.download_button("Raw data (zip)", raw_zip(run), file_name=f"raw-{stem}.zip", mime="application/zip",
                   on_click="ignore", help="Per-replicate results (Parquet), result tables and the manifest.")
e1, e2, _, _ = st.columns(4)
e1.download_button("Whole run directory (zip)", run_zip(run), file_name=f"{stem}.zip", mime="application/zip",
                   on_click="ignore", help="Unzip and run `insilico reproduce DIR` to re-run and verify it.")
e2.download_button("Scenario (TOML)", (run.path / "scenario.toml").read_bytes(), file_name=f"scenario-{stem}.toml",
                   mime="application/toml", on_click="ignore",
                   help="`insilico power scenario.toml` runs it from the command line (keep uploaded data beside it).")
st.caption(f"Run directory `{run.path}`. From a terminal: `insilico report {run.path} --format html,pdf` builds "
           f"the same report; `insilico reproduce {run.path}` re-runs it and checks every number.")
with st.expander("Scenario (TOML) of this run"):
    st.code((run.path / "scenario.toml").read_text(encoding="utf-8"), language="toml")
st.subheader("Preview")
st.components.v1.html(html, height=900, scrolling=True)
