"""Runs: every background job of this workspace (training, evaluation, power, sample size, sweep) with its
scenario and status, live while running; kept on disk, so they are still listed after a refresh."""

from __future__ import annotations

import streamlit as st

from app_pages import _runs_view as rv
from app_pages._runs import workspace
from app_pages._state import sidebar

sidebar()
st.title("Runs")
folder = workspace()
st.caption(f"This browser session's workspace: `{folder}`. Its address (with `?ws=...`) comes back to it after a "
           "refresh or from a bookmark; whoever has the address can see these runs.")
rv.runs_table(folder)
