"""The Runs page's drawing: one row per job of the workspace, the running ones live (progress, time left,
Cancel), each with its scenario and, once written, its run directory."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from app_pages._jobs import jobs_in, read_statuses
from app_pages._state import duration, progress_text

STATE_ICONS = {"running": ":material/hourglass_top:", "cancelling": ":material/hourglass_top:",
               "finished": ":material/check_circle:", "failed": ":material/error:", "cancelled": ":material/cancel:",
               "interrupted": ":material/warning:"}
KIND_NAMES = {"train": "training", "evaluate": "evaluation", "compare": "comparison", "power": "power",
              "sample_size": "sample size", "sweep": "sweep"}


def status_frame(statuses) -> pd.DataFrame:
    """The table of the Runs page (one row per job, newest first)."""
    return pd.DataFrame({
        "started (UTC)": [s.started.replace("T", " ").split("+")[0] for s in statuses],
        "kind": [KIND_NAMES.get(s.kind, s.kind) for s in statuses],
        "what": [s.title for s in statuses],
        "status": [s.state for s in statuses],
        "progress": [s.fraction for s in statuses],
        "time": [duration(s.elapsed_s) for s in statuses],
        "run directory": [s.run_dir or "" for s in statuses],
    })


def runs_table(folder: Path) -> None:
    live = {j.id: j for j in jobs_in(folder) if j.running}

    @st.fragment(run_every=1.0 if live else None)
    def _table() -> None:
        if any(not j.running for j in live.values()):
            st.rerun()
        for job in live.values():
            c1, c2 = st.columns([6, 1])
            c1.progress(job.fraction, text=f"{job.title or job.label}: {progress_text(job)}")
            c2.button("Cancel", key=f"w_runs_cancel_{job.id}", on_click=job.cancel, disabled=job.state != "running")
        statuses = read_statuses(folder)
        if not statuses:
            st.info("No runs yet. Training, evaluation, power, sample-size and sweep runs appear here as they start.")
            return
        st.dataframe(status_frame(statuses), hide_index=True, width="stretch",
                     column_config={"progress": st.column_config.ProgressColumn("progress", min_value=0.0,
                                                                                max_value=1.0, format="percent")})
        for s in statuses:
            if s.state == "running":
                continue
            label = f"{s.state} · {KIND_NAMES.get(s.kind, s.kind)} · {s.title} · " \
                    f"started {s.started.replace('T', ' ').split('+')[0]} UTC"
            with st.expander(label, icon=STATE_ICONS.get(s.state)):
                if s.error:
                    st.error(s.error)
                if s.state == "interrupted":
                    st.warning("The server stopped while this ran; nothing was written. Start it again.")
                if s.run_dir:
                    st.caption(f"Run directory: `{folder / 'runs' / s.run_dir}` (report it on the Report page; "
                               "`insilico reproduce` re-runs it).")
                if s.scenario:
                    st.code(s.scenario, language="toml")
    _table()
