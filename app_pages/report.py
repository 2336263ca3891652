"""Report: the self-contained HTML report and the scenario TOML that reproduces it from the command line."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from analysis.report import build_html_report
from app_pages._state import need, sidebar, widget
from trials.scenario import CohortRef, Scenario, scenario_to_toml

ss = st.session_state
sidebar()
st.title("5 · Report")
cohort = need("cohort", "Data", "choose a cohort")
result = need("power_result", "Power", "run the simulation")
cohort_sha, generator_name, seed = ss["power_key"][:3]
generator = ss.get("generator")
if cohort_sha != cohort.sha256 or generator is None or ss.get("generator_meta") != tuple(ss["power_key"][:3]):
    st.warning("The last power run used another cohort or generator; run the simulation again on the "
               "**Power** page.")
    st.stop()

title = widget(st.text_input, "Report title", "report_title",
               f"{cohort.name}: {result.design.effect.describe()}, {result.analysis} analysis", page="report")
builtin = cohort.source.removeprefix("builtin:") if cohort.source.startswith("builtin:") else None
params = tuple(sorted(ss.get("generator_params", {}).items()))
if builtin:
    ref = CohortRef(builtin=builtin, generator=generator_name, params=params)
    schema_name = None
else:
    schema_name = f"{Path(cohort.source or cohort.name).stem}.schema.toml"
    ref = CohortRef(data=Path(cohort.source or f"{cohort.name}.csv"), schema=Path(schema_name),
                    generator=generator_name, params=params)
scenario = Scenario(title=title, seed=int(seed), cohort=ref, design=result.design, power=result.settings)
toml = scenario_to_toml(scenario)

report_key = (id(result), title)
if ss.get("report_html", (None, None))[0] != report_key:
    with st.spinner("Building the report (figures and synthetic sample)..."):
        html = build_html_report(title=title, cohort=cohort, generator=generator, scenario_or_design=scenario,
                                 result=result)
    ss["report_html"] = (report_key, html)
html = ss["report_html"][1]

stem = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in cohort.name)[:40] or "study"
c1, c2, c3 = st.columns(3)
c1.download_button("Download HTML report", html, file_name=f"report-{stem}-seed{seed}.html", mime="text/html",
                   type="primary", on_click="ignore", icon=":material/download:")
c2.download_button("Download scenario (TOML)", toml, file_name=f"scenario-{stem}.toml",
                   mime="application/toml", on_click="ignore")
if schema_name:
    c3.download_button("Download schema (TOML)", cohort.schema.to_toml(), file_name=schema_name,
                       mime="application/toml", on_click="ignore")
st.caption(f"The report is one HTML file ({len(html) / 1e6:.1f} MB, plotly.js included) that opens offline. "
           f"`insilico power scenario-{stem}.toml --report report.html` reproduces the numbers (seed {seed}).")
st.subheader("Scenario")
st.code(toml, language="toml")
if not builtin:
    st.caption(f"Keep `{ref.data}` and `{schema_name}` next to the scenario file.")
