"""Streamlit entry point: `streamlit run app.py`. Pages live in app_pages/; logic lives in the library.

Every run starts by finding the session's workspace (kept in the address, so a refresh comes back to it) and ends,
whatever happened, by keeping the session's values for a refresh (:mod:`app_pages._session`).
"""

from pathlib import Path

import streamlit as st

from app_pages._session import begin_session, page_guard

st.set_page_config(page_title="In-silico trial workbench", page_icon=str(Path(__file__).parent / "app_pages" / "icon.png"), layout="wide")
begin_session()
pg = st.navigation([
    st.Page("app_pages/data.py", title="Data", icon=":material/table:", default=True),
    st.Page("app_pages/generator.py", title="Generator", icon=":material/model_training:"),
    st.Page("app_pages/design.py", title="Design", icon=":material/tune:"),
    st.Page("app_pages/power.py", title="Power", icon=":material/monitoring:"),
    st.Page("app_pages/outcome.py", title="Outcome", icon=":material/insights:"),
    st.Page("app_pages/report.py", title="Report", icon=":material/description:"),
    st.Page("app_pages/runs.py", title="Runs", icon=":material/history:"),
])
with page_guard(getattr(pg, "title", None) or "app"):  # no title outside a browser session
    pg.run()
