"""The HTML report in a real browser (headless Debian Chromium via Playwright): no console errors, no page
errors, no request leaving the file (the report works offline), and every figure drawn by plotly.js."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from browser_support import launch
from cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report_file(tmp_path_factory):
    """report.html of a power run directory built by `insilico report --format html`."""
    d = tmp_path_factory.mktemp("browser") / "run"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        rc = main(["power", str(ROOT / "examples" / "als_slope.toml"), "--replicates", "20", "--out", str(d),
                   "--quiet"])
        assert rc == 0, err.getvalue()
        assert main(["report", str(d), "--format", "html"]) == 0, err.getvalue()
    return d / "report" / "report.html"


def test_report_loads_in_chromium_without_errors_or_network(report_file):
    playwright = pytest.importorskip("playwright.sync_api")
    html = report_file.read_text(encoding="utf-8")
    n_figures = html.count('class="plotly-graph-div"')
    assert n_figures >= 3  # power curve, real vs synthetic, evaluation figures
    with playwright.sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_page()
            errors, requests = [], []
            page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:", "blob:"))
                    else None)
            page.goto(report_file.as_uri(), wait_until="load")
            page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length >= {n_figures}",
                                   timeout=30_000)
            drawn = page.evaluate("document.querySelectorAll('.js-plotly-plot .main-svg').length")
            sections = page.evaluate("Array.from(document.querySelectorAll('section[id]')).map(s => s.id)")
        finally:
            browser.close()
    assert errors == []
    assert requests == []
    assert drawn >= n_figures  # each figure has at least one rendered SVG layer
    for sid in ("executive-summary", "provenance", "generator", "design", "operating", "sensitivity",
                "example-trial", "limitations", "reproducibility"):
        assert sid in sections, sid
