"""AppTest runs each page as a fake ``__main__`` module and leaves it in ``sys.modules``; put the real one back
after every app test, so that later tests in the same worker that start processes with multiprocessing's
"spawn" (Dask's LocalCluster) do not re-run a page script in the child."""

import os
import sys
import tempfile

import pytest

# run directories written by app runs go to a throw-away workspace, never the user's
os.environ.setdefault("INSILICO_WORKSPACE", tempfile.mkdtemp(prefix="insilico-test-workspace-"))


@pytest.fixture(autouse=True)
def _restore_main_module():
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main
