"""Driving the Streamlit app in a real browser (Playwright, sync API): navigate, fill widgets, wait, screenshot.

Selectors use what a user sees (page titles in the sidebar, widget labels, button captions, visible text) and
Streamlit's stable ``data-testid`` attributes, never generated class names. Waits are on visible text, on the end
of the script run an action started (read from the app's websocket: :func:`rerun`) or on the app's run state
(``data-test-script-state`` on ``stApp``), never on fixed sleeps.

Screenshots go to ``$INSILICO_ARTIFACTS`` (default ``<repo>/test-artifacts/screenshots/``), which CI keeps as
artifacts.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from google.protobuf.message import DecodeError
from playwright.sync_api import Locator, Page, expect
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

ROOT = Path(__file__).resolve().parents[2]
UI_TIMEOUT_MS = 60_000     # a rerun, a page switch (2 cores, maybe another server busy beside us)
JOB_TIMEOUT_MS = 240_000   # a background job: training, a power simulation

IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
_WHOLE_RUN_ENDS = (ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR)


def artifacts_dir() -> Path:
    """Where screenshots go (created)."""
    path = Path(os.environ.get("INSILICO_ARTIFACTS") or ROOT / "test-artifacts" / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


# ------------------------------------------------------------------------------------------------ waits
def _run_finished(payload) -> bool:
    """Whether a websocket frame from the server is the end of a whole script run (not of a fragment's run, not
    a run cut short by a newer one)."""
    if not isinstance(payload, bytes):
        return False
    try:
        msg = ForwardMsg.FromString(payload)
    except DecodeError:
        return False
    return msg.WhichOneof("type") == "script_finished" and msg.script_finished in _WHOLE_RUN_ENDS


def watch(page: Page) -> Page:
    """Keep the page's Streamlit websocket (the latest one, after a reconnect) as ``page.st_socket``, for
    :func:`rerun`. Call before the page opens the app (``new_page`` does)."""
    def keep(ws) -> None:
        if "/_stcore/stream" in ws.url:
            page.st_socket = ws
    page.st_socket = None
    page.on("websocket", keep)
    return page


def wait_idle(page: Page, timeout: float = UI_TIMEOUT_MS) -> None:
    """Wait until the script is not running and no element is still drawn as stale (left from a former run).

    Right after a click the rerun may not have started yet: use :func:`rerun` around actions. While a background
    job runs, its polling fragment reruns every half second: wait for the job's result (:func:`wait_result`).
    """
    page.locator(IDLE).wait_for(state="attached", timeout=timeout)
    page.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]')", timeout=timeout)


@contextlib.contextmanager
def rerun(page: Page, timeout: float = UI_TIMEOUT_MS):
    """Wait, after the block, until the server has finished a whole script run started by the block's action.

    The end of a run is read from the websocket (Streamlit's ``script_finished`` message), not from the page:
    a fast run can go from running to done within one rendered frame, which no DOM attribute shows. For actions
    that make Streamlit rerun (a widget change, a button, a page switch); an action that changes nothing (the
    option already chosen) reruns nothing, and this times out. The page must be watched (:func:`watch`).
    """
    socket = getattr(page, "st_socket", None)
    if socket is None:
        raise AssertionError("the page is not connected to a Streamlit app (or not watched: app_ui.watch(page))")
    with socket.expect_event("framereceived", predicate=_run_finished, timeout=timeout):
        yield
    wait_idle(page, timeout)


def wait_text(page: Page, text: str | re.Pattern, timeout: float = UI_TIMEOUT_MS) -> Locator:
    """The first visible element showing ``text`` (a substring, or a regular expression), once it is there."""
    loc = page.get_by_text(text).first
    loc.wait_for(state="visible", timeout=timeout)
    return loc


def wait_result(page: Page, text: str | re.Pattern, timeout: float = JOB_TIMEOUT_MS) -> Locator:
    """Wait for a background job's result ``text``; fail at once, with what the page says, when an exception
    box or an error box shows up instead."""
    target = page.get_by_text(text).first
    failure = page.get_by_test_id("stException").or_(page.get_by_test_id("stAlertContentError")).first
    target.or_(failure).first.wait_for(state="visible", timeout=timeout)
    if not target.is_visible():
        raise AssertionError(f"waiting for {text!r}, the page shows an error:\n{failure.inner_text()}")
    return target


def assert_no_exception(page: Page) -> None:
    """No Streamlit exception box (an uncaught error in a page, or a background job's bug) is on the page."""
    boxes = page.get_by_test_id("stException")
    if boxes.count():
        raise AssertionError("Streamlit exception on the page:\n" + "\n---\n".join(boxes.all_inner_texts()))


# ----------------------------------------------------------------------------------------- navigation
def open_app(page: Page, url: str, ready_text: str | re.Pattern) -> None:
    """Load the app at ``url`` and wait until ``ready_text`` shows (the first page has run)."""
    page.goto(url)
    wait_text(page, ready_text)
    wait_idle(page)


def goto(page: Page, title: str, ready_text: str | re.Pattern | None = None) -> None:
    """Click the sidebar navigation link named ``title`` (st.navigation) and wait for that page's run."""
    link = page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True)
    with rerun(page):
        link.click()
    expect(link).to_have_attribute("aria-current", "page", timeout=UI_TIMEOUT_MS)
    if ready_text is not None:
        wait_text(page, ready_text)


# --------------------------------------------------------------------------------------------- widgets
def _labelled(page: Page, testid: str, label: str) -> Locator:
    """The widget of kind ``testid`` (stSelectbox, stMultiSelect, stRadio ...) whose label is ``label``."""
    return page.get_by_test_id(testid).filter(
        has=page.get_by_test_id("stWidgetLabel").get_by_text(label, exact=True))


def choose_radio(page: Page, label: str, option: str) -> None:
    """Click ``option`` of the radio group labelled ``label`` (nothing when it is already chosen)."""
    item = _labelled(page, "stRadio", label).get_by_role("radio", name=option, exact=True)
    if item.is_checked():
        return
    with rerun(page):
        _labelled(page, "stRadio", label).get_by_text(option, exact=True).click()
    expect(item).to_be_checked()


def upload(page: Page, label: str | re.Pattern, path: Path) -> None:
    """Give ``path`` to the file uploader whose label shows ``label`` (a substring, or a pattern)."""
    widget = page.get_by_test_id("stFileUploader").filter(has=page.get_by_test_id("stWidgetLabel").get_by_text(label))
    with rerun(page):
        widget.locator("input[type=file]").set_input_files(path)
    expect(widget).to_contain_text(Path(path).name, timeout=UI_TIMEOUT_MS)


def select(page: Page, label: str, option: str | re.Pattern) -> None:
    """Choose ``option`` (its shown text, or a pattern of it) in the select box labelled ``label`` (nothing when
    it is already chosen)."""
    box = page.get_by_role("combobox", name=label, exact=True)
    current = box.input_value()
    if current == option or (isinstance(option, re.Pattern) and option.search(current)):
        return
    box.click()
    with rerun(page):
        page.get_by_role("option", name=option, exact=isinstance(option, str)).first.click()
    if isinstance(option, str):
        expect(box).to_have_value(option, timeout=UI_TIMEOUT_MS)


def unselect(page: Page, label: str, value: str) -> None:
    """Remove the chip ``value`` from the multiselect labelled ``label``."""
    chip = _labelled(page, "stMultiSelect", label).get_by_role("button", name=f"Remove {value}", exact=True)
    with rerun(page):
        chip.click()
    expect(chip).to_have_count(0, timeout=UI_TIMEOUT_MS)


def fill(page: Page, label: str, value) -> None:
    """Type ``value`` into the text or number input labelled ``label`` and commit it (Enter); then move the focus
    away (a focused input draws a red frame). Nothing when the input already shows ``value``."""
    box = page.get_by_label(label, exact=True)
    if box.input_value() == str(value):
        return
    box.fill(str(value))
    with rerun(page):
        box.press("Enter")
    expect(box).to_have_value(str(value), timeout=UI_TIMEOUT_MS)
    box.blur()


def click(page: Page, name: str) -> None:
    """Click the enabled button captioned ``name`` and wait for the run it starts."""
    button = page.get_by_role("button", name=name, exact=True)
    expect(button).to_be_enabled(timeout=UI_TIMEOUT_MS)
    with rerun(page):
        button.click()


def metric(page: Page, label: str) -> str:
    """The value shown by the st.metric labelled ``label``."""
    box = page.get_by_test_id("stMetric").filter(
        has=page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True))
    return box.get_by_test_id("stMetricValue").inner_text().strip()


# ------------------------------------------------------------------------------------------ screenshots
def screenshot(page: Page, name: str, *, folder: Path | None = None, full_page: bool = True) -> Path:
    """Write ``<folder>/<name>.png`` (default folder: :func:`artifacts_dir`) and return its path.

    Streamlit scrolls its main column (``stMain``), not the document, so Playwright's ``full_page`` would stop
    at the viewport: for a full page the viewport is stretched to the column's height for the shot, then put
    back. ``full_page=False`` takes the viewport as it is (README pictures).
    """
    folder = Path(folder) if folder is not None else artifacts_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    size = page.viewport_size
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight || 0")
    if full_page and size and height > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": min(int(height), 12_000)})
        try:
            wait_idle(page)
            page.screenshot(path=str(path))
        finally:
            page.set_viewport_size(size)
    else:
        page.screenshot(path=str(path))
    return path
