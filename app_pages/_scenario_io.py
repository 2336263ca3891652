"""Scenario TOML download and upload in the sidebar (drawing only; the logic is :mod:`app_pages._scenario_state`).

Drawn by :func:`app_pages._state.sidebar` at the top of every page, before the page's own widgets, so a restored
scenario is in the session (and its widgets re-read from ``form``) before any page widget is created. An uploaded
file is applied once (its upload id and SHA-256 are remembered under ``scenario_applied``), so reruns do not undo
later edits; an invalid one is checked once (``scenario_failed``); one naming a data file this session lacks is
checked again on each rerun, so it is applied once that file is uploaded on the Data page.
"""

from __future__ import annotations

import hashlib

import streamlit as st

from app_pages._scenario_state import MissingUploadError, apply_restore, form_params, prepare_restore, scenario_files
from app_pages._state import DEFAULT_SEED, form, show_error
from cohorts.errors import WorkbenchError

UPLOAD_KEY = "w_scenario_upload"


def scenario_sidebar() -> None:
    """Draw the scenario download / upload controls in the sidebar."""
    with st.sidebar.expander("Scenario file"):
        _download()
        _upload()


def _download() -> None:
    ss = st.session_state
    cohort, design, settings = ss.get("cohort"), ss.get("design"), ss.get("settings")
    if cohort is None or design is None or settings is None:
        what = "choose a cohort on the **Data** page and " if cohort is None else ""
        st.caption(f"To download the scenario as TOML, {what}set the design on the **Design** page.")
        return
    name = form().get("generator_name", "default")
    files = scenario_files(cohort, ss.get("upload"), name, form_params(name, form()), design, settings,
                           int(ss.get("seed", DEFAULT_SEED)))
    st.download_button("Download scenario (TOML)", files.toml, file_name=files.name, mime="application/toml",
                       key="w_scenario_download", on_click="ignore", icon=":material/download:",
                       help="Cohort, generator, seed, design and power settings: `insilico power FILE` runs it, "
                            "and uploading it here restores them.")
    if files.schema_toml is not None:
        st.download_button("Download its schema (TOML)", files.schema_toml, file_name=files.schema_name,
                           mime="application/toml", key="w_scenario_schema_download", on_click="ignore",
                           icon=":material/download:")
        st.caption(f"Keep **{files.data_name}** and **{files.schema_name}** beside the scenario file.")


def _upload() -> None:
    ss = st.session_state
    up = st.file_uploader("Restore a scenario (TOML)", type=["toml"], key=UPLOAD_KEY,
                          help="Sets the cohort, generator, seed and every design input from the file.")
    if up is None:
        return
    raw = up.getvalue()
    marker = (getattr(up, "file_id", None) or up.name, hashlib.sha256(raw).hexdigest())
    if ss.get("scenario_applied") == marker:
        summary, notes = ss.get("scenario_status", ("", ()))
        st.success(summary)
        for note in notes:
            st.caption(note)
        return
    failed = ss.get("scenario_failed")
    if failed is not None and failed[0] == marker:   # the same invalid file: its problems, not parsed again
        show_error(failed[1])
        return
    from app_pages._runs import workspace
    try:
        restore = prepare_restore(raw, up.name, uploads=workspace() / "uploads", session_upload=ss.get("upload"),
                                  session_cohort=ss.get("cohort"))
    except MissingUploadError as exc:   # checked again on the next rerun: the file may have been uploaded since
        st.warning(exc.problems[0])
        return
    except WorkbenchError as exc:
        ss["scenario_failed"] = (marker, exc)
        show_error(exc)
        return
    apply_restore(ss, restore)
    ss["scenario_applied"] = marker
    ss["scenario_status"] = (restore.summary(), restore.notes)
    st.rerun()
