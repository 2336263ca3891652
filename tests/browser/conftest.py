"""Fixtures for real-browser tests of the app: Streamlit servers, a headless Chromium, fresh pages.

* ``start_server(workspace=None, env=None)`` (fixture ``start_server``): a factory starting one more
  ``streamlit run app.py`` server with its own workspace root (a new temporary folder unless given); every
  server it started is stopped at the end of the module. Tests of two sessions, or of a server restart, use it.
* ``app_server``: one server per test module, workspace root in a temporary folder.
* ``browser``: headless Debian Chromium (``browser_support.launch``), one per module. Module scope, not session:
  Playwright's sync API cannot start while another sync Playwright is running in the same process, and other
  test modules (``tests/analysis/test_report_browser.py``) start their own.
* ``new_page(viewport=..., **context_options)``: a page in a fresh browser context (its own cookies and
  Streamlit session); closed after the test. Uncaught page errors are collected in ``page.errors``; its
  Streamlit websocket is watched (``app_ui.watch``), so that ``app_ui.rerun`` can wait for the end of a script
  run. When the test failed, each of its pages is screenshotted into ``<artifacts>/failures/`` first.

Chromium missing: skipped, or failed when ``INSILICO_REQUIRE_BROWSER`` is set (CI), by ``browser_support``.
"""

from __future__ import annotations

import pytest
from app_server import start_app_server
from app_ui import artifacts_dir, screenshot, watch
from browser_support import chromium_path, launch

VIEWPORT = {"width": 1400, "height": 900}


@pytest.fixture(scope="module")
def start_server(tmp_path_factory):
    servers = []

    def start(workspace=None, env=None):
        root = tmp_path_factory.mktemp("app-server")
        server = start_app_server(workspace or root / "workspace", root / "logs", env=env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def app_server(start_server):
    return start_server()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium_path()  # skip (or fail in CI) before starting Playwright
    with sync_api.sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def new_page(browser, request):
    contexts = []

    def make(viewport=None, **options):
        context = browser.new_context(viewport=viewport or VIEWPORT, accept_downloads=True, **options)
        contexts.append(context)
        page = watch(context.new_page())
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        return page

    yield make
    report = getattr(request.node, "report_call", None)
    for i, context in enumerate(contexts):
        if report is not None and report.failed:  # what the page showed when the test failed
            for j, page in enumerate(context.pages):
                try:
                    screenshot(page, f"{request.node.name}-{i}-{j}", folder=artifacts_dir() / "failures")
                except Exception as exc:  # noqa: BLE001 - a dead page must not hide the test's own failure
                    print(f"no failure screenshot of page {j}: {exc}")
        context.close()
