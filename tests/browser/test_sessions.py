"""Sessions in a real browser: two browsers on one server do not see each other's runs, and a refresh while a run
is going still shows the finished run.

Each Playwright browser context is a separate browser (its own cookies and Streamlit session). A refresh is
``page.reload()``: Streamlit starts a new session; the address keeps ``?ws=<key>`` (app_pages/_session.py).
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlparse

from app_ui import JOB_TIMEOUT_MS, assert_no_exception, click, fill, goto, metric, open_app, screenshot, wait_idle, \
    wait_result, wait_text
from playwright.sync_api import expect

READY = "SHA-256 of the data"


def _workspace_key(page) -> str:
    (key,) = parse_qs(urlparse(page.url).query)["ws"]
    assert re.fullmatch(r"[0-9a-f]{24}", key), page.url
    return key


def _small_power_run(page, n: str, replicates: int) -> None:
    goto(page, "Design", "Total sample sizes N")
    fill(page, "Total sample sizes N", n)
    fill(page, "Replicates per N", replicates)
    goto(page, "Power", "Run simulation")
    click(page, "Run simulation")


def test_two_browsers_do_not_see_each_other_runs(app_server, new_page):
    a, b = new_page(), new_page()
    open_app(a, app_server.url, READY)
    open_app(b, app_server.url, READY)
    key_a, key_b = _workspace_key(a), _workspace_key(b)
    assert key_a != key_b

    _small_power_run(a, "60", 50)
    wait_result(a, "Type I error (no effect)")
    goto(a, "Runs", "This browser session's workspace")
    wait_text(a, re.compile(r"finished · power · "))
    (run_a,) = [p for p in app_server.run_dirs("power") if p.parent.parent.name == key_a]

    goto(b, "Runs", "No runs yet")                  # b sees no run of a ...
    goto(b, "Report", "Run a simulation first")     # ... and cannot report one
    assert not (app_server.workspace / key_b / "runs").exists() or \
        not any((app_server.workspace / key_b / "runs").iterdir())
    for page in (a, b):
        assert_no_exception(page)
        assert page.errors == []


def test_a_refresh_during_a_run_shows_the_finished_run(app_server, new_page):
    page = new_page()
    open_app(page, app_server.url, READY)
    key = _workspace_key(page)
    _small_power_run(page, "100, 200", 1500)
    wait_text(page, re.compile(r"^(Simulating|Training)"))          # the progress bar of the running job
    jobs = app_server.workspace / key / "jobs"
    (status,) = [json.loads(p.read_text()) for p in jobs.glob("*-power-*.json")]
    assert status["state"] == "running"                               # the refresh below happens during the run

    page.reload()                                                     # a new Streamlit session, same address
    wait_idle(page)
    assert _workspace_key(page) == key
    wait_result(page, "Type I error (no effect)", timeout=JOB_TIMEOUT_MS)   # the run's result, in the new session
    assert re.fullmatch(r"\d{1,3}\.\d%", metric(page, "Power at N = 200"))
    screenshot(page, "power-after-refresh", folder=None)
    (run,) = [p for p in app_server.run_dirs("power") if p.parent.parent.name == key]
    goto(page, "Runs", "This browser session's workspace")
    entry = page.get_by_test_id("stExpander").filter(has_text=re.compile(r"finished · power · ")).first
    entry.locator("summary").click()                                  # the finished run, with its run directory
    expect(entry.get_by_text(run.name)).to_be_visible(timeout=30_000)
    assert json.loads(next(jobs.glob("*-power-*.json")).read_text())["state"] == "finished"
    assert_no_exception(page)
    assert page.errors == []
