"""The Data page AppTest here runs pages as a fake ``__main__``: put the real module back after each test (as
tests/app/conftest.py does), and send any workspace the app creates to a throw-away folder."""

import os
import sys
import tempfile

import pytest

os.environ.setdefault("INSILICO_WORKSPACE", tempfile.mkdtemp(prefix="insilico-test-workspace-"))


@pytest.fixture(autouse=True)
def _restore_main_module():
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main
