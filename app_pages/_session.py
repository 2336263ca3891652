"""A browser session's life: which workspace it works in, getting its state back after a refresh, and the guard
around every page.

Streamlit forgets ``session_state`` when the browser reloads the page (a new session starts). The workbench keeps
the session's workspace key in the address (``?ws=<key>``), so a refresh, or a bookmark, comes back to the same
workspace: its uploads and run directories on disk, its jobs (still running or finished in this server
process: :mod:`app_pages._jobs`) and, while this server runs, the plain session values (cohort, generator,
design, results, every widget's last value), kept at the end of every script run.

The key is 96 random bits (``secrets.token_hex(12)``): another session cannot guess it, and anything else in the
address is ignored (a new workspace is made), so a crafted address cannot point into another folder. Whoever has
the address has the workspace: share it only with people who may see the work.

Session keys that are widget keys start with ``w_`` (the convention of :func:`app_pages._state.widget`); they
are not kept, because streamlit refuses values set for some widgets (buttons, uploads) and recreates the others
from the kept ``form`` values.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets

import streamlit as st

from app_pages._jobs import recall_session, remember_session
from cohorts.errors import WorkbenchError

__all__ = ["WS_PARAM", "begin_session", "end_run", "page_guard", "is_token", "kept_keys"]

log = logging.getLogger("insilico.app")

WS_PARAM = "ws"
_TOKEN = re.compile(r"^[0-9a-f]{24}$")
#: session keys never kept for a refresh: widget keys, and streamlit's own
_NOT_KEPT = re.compile(r"^(w_|\$\$|FormSubmitter:)")


def is_token(value) -> bool:
    return isinstance(value, str) and bool(_TOKEN.match(value))


def begin_session() -> str:
    """The session's workspace key: the one in the address when valid, else a new one. A session that starts
    with a key gets back what this server kept for it. The key is (re)written into the address."""
    ss = st.session_state
    token = ss.get("workspace_token")
    if token is None:
        asked = st.query_params.get(WS_PARAM)
        token = asked if is_token(asked) else secrets.token_hex(12)
        for key, value in recall_session(token).items():
            if key not in ss:  # containers copied: two tabs on one workspace do not edit each other's form
                ss[key] = type(value)(value) if isinstance(value, (dict, list, set)) else value
        ss["workspace_token"] = token
    if st.query_params.get(WS_PARAM) != token:
        st.query_params[WS_PARAM] = token
    return token


def _session_values() -> dict:
    """Every session value, read without streamlit's yield point: after ``st.stop()`` each ``st.session_state``
    access raises the stop again, so the end of a stopped run could keep nothing through the proxy."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx
    ctx = get_script_run_ctx()
    state = getattr(ctx, "session_state", None)
    try:
        return dict(state.filtered_state)
    except AttributeError:  # no script run context (bare mode) or another streamlit: the proxy
        ss = st.session_state
        return {k: ss[k] for k in list(ss.keys())}


def kept_keys() -> dict:
    """The session values kept for a refresh (everything but widget keys)."""
    return {k: v for k, v in _session_values().items() if isinstance(k, str) and not _NOT_KEPT.match(k)}


def end_run() -> None:
    """Keep the session's values for a refresh (called after every script run, whatever its outcome)."""
    values = kept_keys()
    token = values.get("workspace_token")
    if token:
        remember_session(token, values)


@contextlib.contextmanager
def page_guard(page: str = "page"):
    """Run a page: a user mistake that escaped the page (a :class:`WorkbenchError`) is shown as an inline
    error; a bug is logged and shown as a sentence with its details folded away; either way the session is
    kept for a refresh. Streamlit's own stop and rerun signals pass through (they are not ``Exception``)."""
    try:
        yield
    except WorkbenchError as exc:
        from app_pages._state import show_error
        show_error(exc)
    except Exception as exc:  # noqa: BLE001 - the last line of defence against a traceback on the page
        from app_pages._state import show_bug
        log.exception("page %s failed", page)
        show_bug(exc, f"showing the {page} page")
    finally:
        end_run()
