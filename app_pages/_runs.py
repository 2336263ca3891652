"""Run directories of the app: every power, sample-size or sweep run started in the browser is written to disk.

Each browser session has its own workspace folder, ``$INSILICO_WORKSPACE/<session token>/`` (default root: the
system temporary folder's ``insilico-workspace``): ``uploads/`` holds the uploaded table and its schema as TOML
(so a run's scenario names real files), ``runs/`` one run directory per finished run
(:mod:`analysis.run_dir`), the same layout ``insilico power --out`` writes, so ``insilico report`` and
``insilico reproduce`` work on them too; ``jobs/`` the status of every background job (:mod:`app_pages._jobs`).
The folder's key is random (:mod:`app_pages._session`), so one session cannot guess another's folder.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from datetime import datetime, timezone
from pathlib import Path, PureWindowsPath

import streamlit as st

__all__ = ["bare_name", "safe_name", "workspace", "workspace_root", "session_scenario", "new_run_path", "list_runs", "WORKSPACE_ENV"]

WORKSPACE_ENV = "INSILICO_WORKSPACE"


def workspace_root() -> Path:
    """The folder holding every session's workspace (``$INSILICO_WORKSPACE`` or the temporary folder's
    ``insilico-workspace``)."""
    return Path(os.environ.get(WORKSPACE_ENV) or Path(tempfile.gettempdir()) / "insilico-workspace")


def workspace() -> Path:
    """This session's workspace folder (created); its key comes from :func:`app_pages._session.begin_session`."""
    from app_pages._session import begin_session
    token = st.session_state.get("workspace_token") or begin_session()
    path = workspace_root() / token
    (path / "runs").mkdir(parents=True, exist_ok=True)
    return path


def bare_name(path_text: str) -> str:
    """The last component of a path written with ``/`` or ``\\`` (``"../../x.csv"`` -> ``"x.csv"``); ``""``
    when there is none (``"/"``, ``".."``)."""
    name = PureWindowsPath(str(path_text).replace("/", "\\")).name
    return "" if name in (".", "..") else name


def safe_name(name: str) -> str:
    """A file name safe in the workspace (letters, digits, ``._-``; nothing else, no leading dot)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "data"


def session_scenario(cohort, generator_name: str, params: dict, design, settings, seed: int, title: str):
    """The :class:`~trials.scenario.Scenario` of what the session runs: a built-in cohort by name, an uploaded
    one as the uploaded bytes and its schema written to ``uploads/`` (same SHA-256 as the upload)."""
    from trials.scenario import CohortRef, Scenario
    ref_params = tuple(sorted(params.items()))
    if cohort.source.startswith("builtin:"):
        ref = CohortRef(builtin=cohort.source.removeprefix("builtin:"), generator=generator_name, params=ref_params)
    else:
        upload = st.session_state.get("upload")
        folder = workspace() / "uploads"
        folder.mkdir(exist_ok=True)
        name = safe_name(upload[0] if upload else f"{cohort.name}.csv")
        data = folder / name
        if upload is not None:
            data.write_bytes(upload[1])
        else:  # no bytes kept (should not happen): the validated table itself
            cohort.data.to_csv(data, index=False, lineterminator="\n")
        schema = folder / f"{Path(name).stem}.schema.toml"
        schema.write_text(cohort.schema.to_toml(), encoding="utf-8")
        ref = CohortRef(data=data, schema=schema, generator=generator_name, params=ref_params)
    return Scenario(title=title, seed=int(seed), cohort=ref, design=design, power=settings)


def new_run_path(kind: str) -> Path:
    """A fresh path under ``runs/`` named by UTC time and kind (the run directory is created when written)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return workspace() / "runs" / f"{stamp}-{kind}-{secrets.token_hex(2)}"


def list_runs(kind: str | None = None) -> list:
    """This session's run directories, newest first, as :class:`analysis.run_reader.RunDirectory`."""
    from analysis.run_reader import open_run_dir
    from cohorts.errors import WorkbenchError
    out = []
    for p in sorted((workspace() / "runs").iterdir(), reverse=True):
        if not p.is_dir() or p.name.startswith("."):
            continue
        try:
            run = open_run_dir(p)
        except WorkbenchError:
            continue
        if kind is None or run.kind == kind:
            out.append(run)
    return out
