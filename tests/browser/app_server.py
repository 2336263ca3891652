"""A real ``streamlit run app.py`` server for browser tests: started on a free port with its own workspace root,
ready once ``/_stcore/health`` answers, stopped (terminate, then kill) by :meth:`AppServer.stop`.

Each server gets ``INSILICO_WORKSPACE=<workspace>``, so the run directories of its browser sessions land in
``<workspace>/<session token>/runs/`` and two servers never share files. The server's stdout and stderr go to
``<log_dir>/streamlit-<port>.log``; a server that does not come up fails with the tail of that log. On Linux a
server also ends when the test process dies.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


def _die_with_parent() -> None:
    """In the server process, before exec (Linux): get SIGTERM when the test process dies, so that a killed
    test run (a CI timeout) leaves no server behind."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n_chars: int = 4000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-n_chars:]
    except OSError:
        return "(no log)"


@dataclass
class AppServer:
    """One running server: its ``url``, its ``workspace`` root, its log file and process."""

    url: str
    port: int
    workspace: Path
    log_path: Path
    process: subprocess.Popen = field(repr=False)

    def log_tail(self, n_chars: int = 4000) -> str:
        return _tail(self.log_path, n_chars)

    def run_dirs(self, kind: str = "power") -> list[Path]:
        """Run directories of ``kind`` written by any session of this server (``<workspace>/<token>/runs/``)."""
        return sorted(p for p in self.workspace.glob(f"*/runs/*-{kind}-*") if p.is_dir())

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Terminate the server; kill it when it has not exited after :data:`STOP_TIMEOUT_S`."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_S)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200 and response.read().strip() == b"ok"
    except (urllib.error.URLError, OSError):
        return False


def start_app_server(workspace: Path, log_dir: Path, *, timeout_s: float = START_TIMEOUT_S,
                     env: dict[str, str] | None = None, attempts: int = 3) -> AppServer:
    """Start ``streamlit run app.py`` with workspace root ``workspace``; return it once healthy.

    ``env`` adds variables to the server's environment. A port taken between choosing and binding it (another
    test process) is retried on a new port, up to ``attempts`` times.
    """
    workspace, log_dir = Path(workspace), Path(log_dir)
    workspace.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, attempts + 1):
        port = free_port()
        log_path = log_dir / f"streamlit-{port}.log"
        cmd = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", "127.0.0.1",
               "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none"]
        server_env = {**os.environ, "INSILICO_WORKSPACE": str(workspace), "PYTHONUNBUFFERED": "1", **(env or {})}
        with open(log_path, "wb") as log:
            process = subprocess.Popen(cmd, cwd=ROOT, env=server_env, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL,
                                       preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        server = AppServer(f"http://127.0.0.1:{port}", port, workspace, log_path, process)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and server.alive:
            if _healthy(server.url):
                return server
            time.sleep(0.2)
        server.stop()
        port_taken = "already in use" in server.log_tail()
        if not (port_taken and attempt < attempts):
            how = f"exited with code {process.returncode}" if time.monotonic() < deadline else \
                f"did not answer /_stcore/health within {timeout_s:.0f} s"
            pytest.fail(f"streamlit server on port {port} {how}; log tail ({log_path}):\n{server.log_tail()}")
    raise AssertionError("unreachable")
