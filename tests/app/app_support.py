"""What the AppTest files share: the app's path, a fresh app (optionally on a workspace key, as after a refresh),
a page switch that fails on an exception, a background job waited for, and the text of a list of elements."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TIMEOUT = 120


def new_app(token: str | None = None, *, timeout: float = TIMEOUT) -> AppTest:
    """The app after its first run (the Data page); ``token``: the address's ``?ws=`` key."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    if token is not None:
        at.query_params["ws"] = token
    at.run()
    assert not at.exception, at.exception
    return at


def page(at: AppTest, name: str) -> AppTest:
    """Switch to ``app_pages/<name>.py`` and run it; no exception allowed."""
    at.switch_page(f"app_pages/{name}.py").run()
    assert not at.exception, at.exception
    return at


def wait_job(at: AppTest, job_key: str, timeout: float = TIMEOUT) -> AppTest:
    """Wait for the background job under ``job_key`` to finish without error, then rerun (as the polling
    fragment would)."""
    job = at.session_state[job_key]
    job.join(timeout)
    assert not job.running, f"{job_key} did not finish in {timeout} s"
    assert job.error is None and job.exception is None, job.error or job.traceback
    at.run()
    assert not at.exception, at.exception
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)
