"""AppTest runs each page as a fake ``__main__`` module and leaves it in ``sys.modules``; put the real one back
after every app test, so that later tests in the same worker that start processes with multiprocessing's
"spawn" (Dask's LocalCluster) do not re-run a page script in the child."""

import sys

import pytest


@pytest.fixture(autouse=True)
def _restore_main_module():
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main
