"""For every test: app runs write to a throw-away workspace, and the real ``__main__`` is put back after each test.

AppTest runs each page as a fake ``__main__`` module and leaves it in ``sys.modules``; a later test in the same
worker that starts processes with multiprocessing's "spawn" (Dask's LocalCluster) would re-run that page script
in the child. The real module is taken when pytest imports this file, before any AppTest ran (a module-scoped
fixture running AppTest is set up before a function-scoped autouse fixture could take it).
"""

import os
import sys
import tempfile

import pytest

# run directories written by app runs go to a throw-away workspace, never the user's
os.environ.setdefault("INSILICO_WORKSPACE", tempfile.mkdtemp(prefix="insilico-test-workspace-"))

REAL_MAIN = sys.modules.get("__main__")


@pytest.fixture(autouse=True)
def _restore_main_module():
    yield
    if REAL_MAIN is not None:
        sys.modules["__main__"] = REAL_MAIN
