"""The whole workflow in a real browser (headless Chromium against ``streamlit run app.py``).

Data (upload ``tests/data/va_lung.csv``; the event column set by hand, a wrong one first: an inline error) ->
Generator (copula, trained in the background) -> Design (N = 100, 200; 100 replicates) -> Power (curve and type I
error) -> Outcome (one virtual trial) -> Report (the HTML report downloaded through the browser). Every page is
screenshotted into the artifacts folder, and no page may show a Streamlit exception box.

What only a browser checks: the websocket round trips, the file upload and download paths, the polling
fragments that pick up background jobs, the sidebar navigation, and that plotly draws the charts.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from app_ui import (artifacts_dir, assert_no_exception, choose_radio, click, fill, goto, metric, open_app, screenshot,
                    select, unselect, upload, wait_result, wait_text)
from playwright.sync_api import expect

from app_pages._data_sources import UPLOAD

DATA = Path(__file__).resolve().parents[1] / "data" / "va_lung.csv"
EVENT = "Event column (1 = event, 0 = censored)"
#: top-level sections of the HTML report (analysis/templates/report.html.j2 and its includes)
SECTIONS = ("executive-summary", "provenance", "generator", "design", "operating", "sensitivity", "example-trial",
            "limitations", "reproducibility")


def test_upload_to_report_in_chromium(app_server, new_page):
    page = new_page()
    shots = artifacts_dir() / "workflow"
    csv = DATA.read_bytes()
    sha = hashlib.sha256(csv).hexdigest()  # the Data page names the cohort by the uploaded bytes' SHA-256

    # ---- Data: upload; set the event column by hand: a wrong one (an inline error), then the right one
    open_app(page, app_server.url, "SHA-256 of the data")  # the built-in cohort is loaded first
    choose_radio(page, "Source", UPLOAD)
    upload(page, re.compile("historical patients", re.IGNORECASE), DATA)
    wait_text(page, sha)
    select(page, "Outcome type", "tte")
    select(page, "Time column", "time_days")
    select(page, EVENT, "Celltype")
    expect(page.get_by_test_id("stAlertContentError")).to_contain_text("Celltype")
    select(page, EVENT, "death")
    expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)
    roles = page.get_by_test_id("stTable")
    expect(roles).to_contain_text("type=tte, time=time_days, event=death, time_unit=days")
    expect(roles).to_contain_text("Age_in_years, Karnofsky_score, Months_from_Diagnosis")
    wait_text(page, sha)
    assert metric(page, "Patients") == "137" and metric(page, "Outcome") == "tte"
    assert_no_exception(page)
    screenshot(page, "data", folder=shots)

    # ---- Generator: a fast family, trained in a background thread, picked up by the polling fragment
    goto(page, "Generator", "Generator family")
    select(page, "Generator family", re.compile(r"^copula\b"))
    click(page, "Train generator")
    wait_result(page, re.compile(r"Generator copula trained: 137 training patients"))
    assert_no_exception(page)
    screenshot(page, "generator", folder=shots)

    # ---- Design: small sample sizes and few replicates
    goto(page, "Design", "Total sample sizes N")
    fill(page, "Total sample sizes N", "100, 200")
    fill(page, "Replicates per N", 100)
    wait_text(page, re.compile(r"N = 100 \(50:50\), 200 \(100:100\); 100 replicates per N"))
    assert_no_exception(page)
    screenshot(page, "design", folder=shots)

    # ---- Power: simulate, then the power curve (drawn by plotly.js) and the type I error
    goto(page, "Power", "Run simulation")
    click(page, "Run simulation")
    wait_result(page, "Type I error (no effect)")
    chart = page.get_by_test_id("stPlotlyChart").first
    expect(chart.locator(".main-svg").first).to_be_attached(timeout=30_000)
    expect(chart).to_contain_text("total sample size n", ignore_case=True, timeout=30_000)
    type1 = metric(page, "Type I error (no effect)")
    assert re.fullmatch(r"\d{1,3}\.\d\d%", type1), type1
    assert 0.0 <= float(type1.rstrip("%")) <= 100.0
    power = metric(page, "Power at N = 200")
    assert re.fullmatch(r"\d{1,3}\.\d%", power), power
    # hazard ratio 0.7, 200 patients: logrank power about 38 % (analytic), far above the 5 % of no effect
    assert float(power.rstrip("%")) > float(type1.rstrip("%")), (power, type1)
    assert_no_exception(page)
    screenshot(page, "power", folder=shots)
    assert len(app_server.run_dirs("power")) == 1  # the run directory is in this server's workspace

    # ---- Outcome: one virtual trial at the largest N
    goto(page, "Outcome", "Outcome of one trial")
    wait_text(page, re.compile(r"one virtual trial, 200 patients, seed \d+"))
    wait_text(page, "Primary analysis")
    assert re.fullmatch(r"[0-9.e+-]+", metric(page, "p-value")), metric(page, "p-value")
    assert_no_exception(page)
    screenshot(page, "outcome", folder=shots)

    # ---- Report: download the HTML report through the browser
    goto(page, "Report", "HTML report")
    button = page.get_by_test_id("stDownloadButton").filter(has_text="HTML report")
    expect(button).to_be_visible()
    with page.expect_download(timeout=60_000) as download:
        button.click()
    html = Path(download.value.path()).read_text(encoding="utf-8")
    assert download.value.suggested_filename.startswith("report-") and \
        download.value.suggested_filename.endswith(".html")
    assert html.lstrip().startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in html, sid
    assert sha in html
    assert "va_lung" in html
    assert_no_exception(page)
    screenshot(page, "report", folder=shots)
    assert page.errors == []


def test_role_change_reaches_the_session_cohort(app_server, new_page):
    """Taking a covariate out of the roles changes the cohort the later pages use (the roles table shows it)."""
    page = new_page()
    open_app(page, app_server.url, "SHA-256 of the data")
    choose_radio(page, "Source", UPLOAD)
    upload(page, re.compile("historical patients", re.IGNORECASE), DATA)
    roles = page.get_by_test_id("stTable")
    expect(roles).to_contain_text("Age_in_years, Karnofsky_score, Months_from_Diagnosis")
    unselect(page, "Numeric baseline covariates", "Months_from_Diagnosis")
    expect(roles).to_contain_text(re.compile(r"numeric\s*Age_in_years, Karnofsky_score\s*categorical"),
                                  timeout=5_000)  # the rerun has finished: the table is drawn
