"""The built-in ALS walk in a real browser, and the README's pictures of it.

The default cohort (``als-natural-history``, simulated from published summaries), the default generator family
trained and evaluated, the default design (ALSFRS-R slope analysis, 25 % slowing of decline) with few replicates,
the power simulation, one virtual trial and the report page. One 1400x900 viewport screenshot per page, scrolled
to what the page is about.

Normal runs write the pictures to the artifacts folder only. To refresh the README's pictures:

    INSILICO_UPDATE_DOCS=1 .venv/bin/pytest -p no:xdist tests/browser -k screenshots

which writes ``docs/screenshots/<page>.png`` (data, generator, design, power, outcome, report).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from app_ui import (ROOT, artifacts_dir, assert_no_exception, click, fill, goto, metric, open_app, screenshot,
                    wait_idle, wait_result, wait_text)
from playwright.sync_api import Locator, expect

VIEWPORT = {"width": 1400, "height": 900}
N_TOTAL, REPLICATES = "60, 120, 180, 240", 200  # the default N list; few replicates (about 1 s of simulation)


@pytest.fixture(scope="module")
def docs_server(start_server):
    """A server without the developer toolbar ("Deploy"), as a user of ``make run`` behind a proxy sees it; for
    the README its workspace is a short temporary path like the app's default (the Report page shows it)."""
    env = {"STREAMLIT_CLIENT_TOOLBAR_MODE": "viewer"}
    if not os.environ.get("INSILICO_UPDATE_DOCS"):
        yield start_server(env=env)
        return
    workspace = Path(tempfile.mkdtemp(prefix="insilico-workspace-"))
    server = start_server(workspace=workspace, env=env)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workspace, ignore_errors=True)


def _shots_folder():
    if os.environ.get("INSILICO_UPDATE_DOCS"):
        return ROOT / "docs" / "screenshots"
    return artifacts_dir() / "docs"


def _shot(page, name: str, top: str | Locator | None = None) -> None:
    """Viewport screenshot with the main column scrolled so that ``top`` (a section heading, or an element) is
    at the top, the mouse parked on an empty corner (no hover effects)."""
    if top is not None:
        if isinstance(top, str):
            top = page.get_by_test_id("stMain").get_by_role("heading", name=top, exact=True)
        top.first.evaluate("e => { e.scrollIntoView({block: 'start'}); "  # then clear of the page's header bar
                           "document.querySelector('[data-testid=\"stMain\"]').scrollBy(0, -60); }")
    page.mouse.move(VIEWPORT["width"] - 5, VIEWPORT["height"] - 5)
    wait_idle(page)
    screenshot(page, name, folder=_shots_folder(), full_page=False)


def test_builtin_als_walk_screenshots(docs_server, new_page):
    page = new_page(viewport=VIEWPORT)

    # ---- Data: the default built-in cohort, labelled as simulated
    open_app(page, docs_server.url, "SHA-256 of the data")
    wait_text(page, "Simulated cohort, not patient data.")
    assert metric(page, "Patients") == "3,000" and metric(page, "Outcome") == "longitudinal"
    assert_no_exception(page)
    _shot(page, "data")

    # ---- Generator: the default family, trained, then evaluated on held-out patients
    goto(page, "Generator", "Generator family")
    click(page, "Train generator")
    wait_result(page, re.compile(r"Generator \w+ trained: 3,000 training patients"))
    click(page, "Evaluate")
    wait_result(page, re.compile(r"trained on 2,100 patients, scored against 900 held-out patients: \d+ of \d+ "
                                 r"targets met"))
    expect(page.get_by_test_id("stPlotlyChart").first.locator(".main-svg").first).to_be_attached()
    assert_no_exception(page)
    _shot(page, "generator", "Evaluate on held-out patients")

    # ---- Design: the defaults (slope analysis, 25 % slowing), few replicates
    goto(page, "Design", "Total sample sizes N")
    expect(page.get_by_label("Slowing of decline (%)", exact=True)).to_have_value("25.00")
    fill(page, "Total sample sizes N", N_TOTAL)
    fill(page, "Replicates per N", REPLICATES)
    wait_text(page, re.compile(rf"slope analysis of .*25% slowing.*{REPLICATES} replicates per N"))
    assert_no_exception(page)
    _shot(page, "design", "Assumed treatment effect")

    # ---- Power
    goto(page, "Power", "Run simulation")
    click(page, "Run simulation")
    wait_result(page, "Type I error (no effect)")
    expect(page.get_by_test_id("stPlotlyChart").first.locator(".main-svg").first).to_be_attached()
    power, type1 = metric(page, "Power at N = 240"), metric(page, "Type I error (no effect)")
    assert re.fullmatch(r"\d{1,3}\.\d%", power) and re.fullmatch(r"\d{1,3}\.\d\d%", type1), (power, type1)
    # 25 % slowing with 240 patients over 6 months: analytic power about 0.92; the null keeps about 5 %
    assert 60.0 <= float(power.rstrip("%")) <= 99.9 and float(type1.rstrip("%")) <= 15.0, (power, type1)
    assert_no_exception(page)
    _shot(page, "power", page.get_by_test_id("stMetric"))

    # ---- Outcome: one virtual trial at the largest N
    goto(page, "Outcome", "Outcome of one trial")
    wait_text(page, re.compile(r"one virtual trial, 240 patients, seed \d+"))
    expect(page.get_by_test_id("stPlotlyChart").first.locator(".main-svg").first).to_be_attached()
    assert_no_exception(page)
    _shot(page, "outcome", "Outcome")

    # ---- Report: the preview of the run's report
    goto(page, "Report", "HTML report")
    expect(page.get_by_test_id("stDownloadButton").filter(has_text="HTML report")).to_be_visible()
    expect(page.frame_locator("iframe").first.locator("#executive-summary")).to_be_attached(timeout=30_000)
    assert_no_exception(page)
    _shot(page, "report")

    # ---- Runs: the workspace's training and power runs, finished
    goto(page, "Runs", "This browser session's workspace")
    expect(page.get_by_test_id("stExpander").filter(has_text=re.compile(r"finished · power · "))).to_have_count(1)
    assert_no_exception(page)
    _shot(page, "runs")
    assert page.errors == []
