"""Headless Debian Chromium for tests (GUIDE.md section 4): where it is, and a Playwright browser launched on it.

``.ci/run`` installs Debian's chromium and sets ``INSILICO_REQUIRE_BROWSER=1``, so in CI a missing browser fails
the browser tests; elsewhere they are skipped with the install command.
"""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    """Path of Debian's chromium, or skip (fail when INSILICO_REQUIRE_BROWSER is set)."""
    path = os.environ.get("INSILICO_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    message = "Debian's chromium is not installed: sudo apt-get install chromium"
    if os.environ.get("INSILICO_REQUIRE_BROWSER"):
        pytest.fail(message)
    pytest.skip(message)


def launch(playwright):
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
