"""Background jobs of the app: they outlive widget changes, page switches and a browser refresh.

A :class:`Job` runs ``fn(progress)`` in a daemon thread of the server process. While it runs, its state is kept
in two places:

* in memory, in a process-wide registry keyed by the session's workspace folder, so that a browser session that
  comes back to the same workspace (a refresh keeps the ``?ws=`` address) finds the very job object, with its
  progress and, once finished, its result;
* on disk, as ``<workspace>/jobs/<id>.json`` (kind, title, state, fraction, message, start, end, ETA, the run
  directory it writes, the error), so the Runs page lists every run of the workspace with its scenario and
  status, including runs of a server that has since stopped (shown as ``interrupted``).

Cancelling sets a flag that the job's next ``progress(...)`` call turns into :class:`JobCancelled`, which unwinds
the computation (training reports progress per epoch or step, simulation per batch of replicates, a sweep per
cell); the job then ends in state ``cancelled`` and writes nothing else.

This module draws nothing and does not import streamlit (tested without a browser session).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cohorts.errors import WorkbenchError

__all__ = ["Job", "JobCancelled", "JobStatus", "JOBS_FOLDER", "jobs_in", "read_statuses", "eta_seconds",
           "remember_session", "recall_session", "STATES"]

log = logging.getLogger("insilico.app")

JOBS_FOLDER = "jobs"
#: every state a job can be in; the last four are final
STATES = ("running", "cancelling", "finished", "failed", "cancelled", "interrupted")
#: seconds between two writes of a running job's status file
WRITE_EVERY_S = 1.0
#: sessions whose state is kept for a refresh (least recently used dropped first)
MAX_SESSIONS = 64


class JobCancelled(Exception):
    """Raised inside a job's progress callback once the job was asked to stop."""


def eta_seconds(fraction: float, elapsed: float, first_progress: float | None) -> float | None:
    """Seconds left at a constant rate since the first progress report, or ``None`` while it is too early to say
    (under 2 % done or under 2 s of measured progress)."""
    if first_progress is None or fraction < 0.02 or fraction >= 1.0:
        return None
    measured = elapsed - first_progress
    if measured < 2.0:
        return None
    return measured * (1.0 - fraction) / fraction


class Job:
    """``fn(progress)`` in a daemon thread; ``progress(fraction, message)`` updates the job (and raises
    :class:`JobCancelled` once :meth:`cancel` was called).

    ``folder``: the workspace the job belongs to (its status file goes to ``folder/jobs/``; ``None``: memory
    only). ``kind``, ``title``, ``scenario``: what the Runs page shows; ``run_path``: the run directory the job
    writes when it finishes (shown and linked once it exists).
    """

    def __init__(self, fn: Callable[[Callable[[float, str], None]], object], *, label: str, key=None,
                 kind: str = "job", title: str = "", folder: Path | None = None, run_path: Path | None = None,
                 scenario: str | None = None):
        self.label, self.key, self.kind, self.title = label, key, kind, title
        self.folder, self.run_path, self.scenario = folder, run_path, scenario
        self.id = f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{kind}-{secrets.token_hex(3)}"
        self.fraction, self.message = 0.0, "starting"
        self.result = None
        self.error: WorkbenchError | None = None
        self.exception: BaseException | None = None
        self.traceback = ""
        self.started, self.finished = time.time(), None
        self.first_progress: float | None = None
        self.adopted = False
        self._cancel = threading.Event()
        self._cancelled = False
        self._written = 0.0
        self._lock = threading.Lock()
        _register(self)
        self._write(force=True)
        self._thread = threading.Thread(target=self._run, args=(fn,), name=f"job-{self.id}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------------------------------ running
    def progress(self, fraction: float, message: str) -> None:
        if self._cancel.is_set():
            raise JobCancelled(self.label)
        fraction = min(max(float(fraction), 0.0), 1.0)
        if fraction > 0 and self.first_progress is None:
            self.first_progress = self.elapsed
        self.fraction, self.message = fraction, message
        self._write()

    def cancel(self) -> None:
        """Ask the job to stop at its next progress report."""
        if self.running:
            self._cancel.set()
            self._write(force=True)

    def _run(self, fn) -> None:
        try:
            self.result = fn(self.progress)
            self.fraction = 1.0
        except JobCancelled:
            self._cancelled = True
        except WorkbenchError as exc:
            self.error = exc
        except Exception as exc:  # noqa: BLE001 - a bug: kept, logged and shown with its details folded away
            self.exception, self.traceback = exc, traceback.format_exc()
            log.error("job %s (%s) failed:\n%s", self.id, self.label, self.traceback)
        finally:
            self.finished = time.time()
            self._write(force=True)

    # ------------------------------------------------------------------------------------------- state
    @property
    def running(self) -> bool:
        return self._thread.is_alive() if hasattr(self, "_thread") else self.finished is None

    @property
    def state(self) -> str:
        if self.finished is None:
            return "cancelling" if self._cancel.is_set() else "running"
        if self._cancelled:
            return "cancelled"
        return "failed" if (self.error is not None or self.exception is not None) else "finished"

    @property
    def elapsed(self) -> float:
        return (self.finished or time.time()) - self.started

    @property
    def eta(self) -> float | None:
        return eta_seconds(self.fraction, self.elapsed, self.first_progress) if self.running else None

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def status(self) -> dict:
        run = self.run_path if (self.run_path is not None and self.run_path.exists()) else None
        problem = (str(self.error) if self.error is not None else
                   f"internal error: {type(self.exception).__name__}: {self.exception}"
                   if self.exception is not None else None)
        return {"id": self.id, "kind": self.kind, "label": self.label, "title": self.title, "state": self.state,
                "fraction": round(self.fraction, 4), "message": self.message,
                "started": _iso(self.started), "finished": _iso(self.finished) if self.finished else None,
                "updated": _iso(time.time()), "elapsed_s": round(self.elapsed, 1),
                "eta_s": None if self.eta is None else round(self.eta, 1),
                "run_dir": run.name if run is not None else None, "error": problem, "scenario": self.scenario,
                "pid": os.getpid()}

    def _write(self, force: bool = False) -> None:
        """Write the status file (at most once per :data:`WRITE_EVERY_S` unless ``force``); atomic rename, so a
        reader never sees half a file."""
        if self.folder is None:
            return
        now = time.time()
        if not force and now - self._written < WRITE_EVERY_S:
            return
        with self._lock:
            self._written = now
            folder = Path(self.folder) / JOBS_FOLDER
            try:
                folder.mkdir(parents=True, exist_ok=True)
                tmp = folder / f".{self.id}.{threading.get_ident()}.tmp"
                tmp.write_text(json.dumps(self.status(), indent=1), encoding="utf-8")
                os.replace(tmp, folder / f"{self.id}.json")
            except OSError as exc:  # a full disk must not kill the computation; the registry still has it
                log.warning("could not write the status of job %s: %s", self.id, exc)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------------- registry
_JOBS: dict[str, dict[str, Job]] = {}
_REG_LOCK = threading.Lock()


def _register(job: Job) -> None:
    if job.folder is None:
        return
    with _REG_LOCK:
        _JOBS.setdefault(str(Path(job.folder).resolve()), {})[job.id] = job


def jobs_in(folder: Path) -> list[Job]:
    """This server's jobs of the workspace ``folder``, newest first."""
    with _REG_LOCK:
        jobs = list(_JOBS.get(str(Path(folder).resolve()), {}).values())
    return sorted(jobs, key=lambda j: j.started, reverse=True)


@dataclass(frozen=True)
class JobStatus:
    """One status file, as read back (``state`` is ``interrupted`` for a job that no server runs any more)."""

    id: str
    kind: str
    title: str
    state: str
    fraction: float
    message: str
    started: str
    finished: str | None
    elapsed_s: float
    eta_s: float | None
    run_dir: str | None
    error: str | None
    scenario: str | None


def read_statuses(folder: Path) -> list[JobStatus]:
    """Every job of the workspace ``folder``, newest first: live jobs from the registry, the others from their
    status files. Unreadable files are skipped (a status file is written atomically, so only a foreign file can
    be unreadable)."""
    live = {j.id: j for j in jobs_in(folder)}
    out = {}
    for path in (Path(folder) / JOBS_FOLDER).glob("*.json"):
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            out[d["id"]] = d
        except (OSError, ValueError, KeyError, TypeError):
            continue
    for job_id, job in live.items():
        out[job_id] = job.status()
    statuses = []
    for job_id, d in out.items():
        state = d.get("state", "interrupted")
        if job_id not in live and state in ("running", "cancelling"):
            state = "interrupted"
        statuses.append(JobStatus(
            id=job_id, kind=str(d.get("kind", "job")), title=str(d.get("title", "")), state=state,
            fraction=float(d.get("fraction") or 0.0), message=str(d.get("message", "")),
            started=str(d.get("started", "")), finished=d.get("finished"),
            elapsed_s=float(d.get("elapsed_s") or 0.0), eta_s=d.get("eta_s") if state == "running" else None,
            run_dir=d.get("run_dir"), error=d.get("error"), scenario=d.get("scenario")))
    return sorted(statuses, key=lambda s: s.started, reverse=True)


# ------------------------------------------------------------------------------------- session memory
_SESSIONS: OrderedDict[str, dict] = OrderedDict()


def remember_session(token: str, values: dict) -> None:
    """Keep a browser session's plain state (cohort, design, generator, results, jobs: references, not
    copies) so that a refresh, which starts a new session on the same workspace, gets it back."""
    with _REG_LOCK:
        _SESSIONS[token] = dict(values)
        _SESSIONS.move_to_end(token)
        while len(_SESSIONS) > MAX_SESSIONS:
            _SESSIONS.popitem(last=False)


def recall_session(token: str) -> dict:
    """What :func:`remember_session` kept for ``token`` (empty when nothing was)."""
    with _REG_LOCK:
        return dict(_SESSIONS.get(token, {}))
