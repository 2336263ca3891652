"""Streamlit entry point: `streamlit run app.py`. Pages live in app_pages/; logic lives in the library."""

import streamlit as st

st.set_page_config(page_title="In-silico trial workbench", page_icon=":material/science:", layout="wide")
pg = st.navigation([
    st.Page("app_pages/data.py", title="Data", icon=":material/table:", default=True),
    st.Page("app_pages/generator.py", title="Generator", icon=":material/model_training:"),
    st.Page("app_pages/design.py", title="Design", icon=":material/tune:"),
    st.Page("app_pages/power.py", title="Power", icon=":material/monitoring:"),
    st.Page("app_pages/outcome.py", title="Outcome", icon=":material/insights:"),
    st.Page("app_pages/report.py", title="Report", icon=":material/description:"),
])
pg.run()
