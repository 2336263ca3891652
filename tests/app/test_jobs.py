"""Background jobs without a browser: status files, cancel, the time left, interrupted runs, kept sessions."""

from __future__ import annotations

import json
import threading

import pytest

from app_pages import _jobs as jobs
from app_pages._jobs import Job, JobCancelled, eta_seconds, read_statuses
from cohorts.errors import InvalidDataError


def _status(folder, job):
    return json.loads((folder / "jobs" / f"{job.id}.json").read_text())


def test_a_finished_job_writes_its_status_and_run_directory(tmp_path):
    run = tmp_path / "runs" / "r1"

    def work(progress):
        progress(0.5, "half way")
        run.mkdir(parents=True)
        return 42
    job = Job(work, label="Simulating", kind="power", title="ALS: 25 % slowing", folder=tmp_path, run_path=run,
              scenario="[cohort]\nbuiltin = \"x\"\n")
    job.join(10)
    assert job.result == 42 and job.state == "finished" and job.fraction == 1.0
    d = _status(tmp_path, job)
    assert d["state"] == "finished" and d["run_dir"] == "r1" and d["title"] == "ALS: 25 % slowing"
    assert d["scenario"].startswith("[cohort]") and d["finished"] is not None
    (s,) = read_statuses(tmp_path)
    assert (s.state, s.run_dir, s.kind) == ("finished", "r1", "power")
    assert not list((tmp_path / "jobs").glob(".*.tmp"))  # atomic writes leave no temp file


def test_cancel_stops_at_the_next_progress_report_and_writes_nothing(tmp_path):
    started, release = threading.Event(), threading.Event()
    reached = []

    def work(progress):
        progress(0.1, "first batch")
        started.set()
        release.wait(10)
        progress(0.2, "second batch")      # raises JobCancelled here
        reached.append("after")
        (tmp_path / "runs").mkdir()
    job = Job(work, label="Simulating", kind="power", folder=tmp_path)
    assert started.wait(10)
    job.cancel()
    assert job.state == "cancelling" and _status(tmp_path, job)["state"] == "cancelling"
    release.set()
    job.join(10)
    assert job.state == "cancelled" and reached == [] and not (tmp_path / "runs").exists()
    assert job.result is None and job.error is None and job.exception is None
    assert _status(tmp_path, job)["state"] == "cancelled"


def test_cancel_after_the_end_changes_nothing(tmp_path):
    job = Job(lambda progress: 1, label="x", folder=tmp_path)
    job.join(10)
    job.cancel()
    assert job.state == "finished"


def test_user_errors_and_bugs_are_kept_apart(tmp_path):
    def mistake(progress):
        raise InvalidDataError("the event column has a 2 in row 7; use 0 or 1")

    def bug(progress):
        return {}["missing"]
    a = Job(mistake, label="Training", folder=tmp_path)
    b = Job(bug, label="Training", folder=tmp_path)
    a.join(10), b.join(10)
    assert a.state == b.state == "failed"
    assert isinstance(a.error, InvalidDataError) and a.exception is None
    assert isinstance(b.exception, KeyError) and "KeyError" in b.traceback
    assert "the event column has a 2 in row 7" in _status(tmp_path, a)["error"]
    assert _status(tmp_path, b)["error"] == "internal error: KeyError: 'missing'"


def test_a_running_status_without_a_live_job_reads_as_interrupted(tmp_path):
    """A status file left by a server that stopped: no job of this process has its id."""
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "20260101-000000-power-abcdef.json").write_text(json.dumps({
        "id": "20260101-000000-power-abcdef", "kind": "power", "title": "old", "state": "running",
        "fraction": 0.4, "message": "N = 60", "started": "2026-01-01T00:00:00+00:00", "eta_s": 30.0}))
    (tmp_path / "jobs" / "garbage.json").write_text("{not json")
    (s,) = read_statuses(tmp_path)
    assert s.state == "interrupted" and s.eta_s is None and s.fraction == 0.4


def test_live_jobs_are_listed_from_memory_while_running(tmp_path):
    release = threading.Event()
    job = Job(lambda progress: (progress(0.3, "working"), release.wait(10)), label="x", kind="sweep",
              folder=tmp_path)
    try:
        (s,) = read_statuses(tmp_path)
        assert s.state == "running" and s.id == job.id
        assert jobs.jobs_in(tmp_path) == [job]
        assert jobs.jobs_in(tmp_path / "elsewhere") == []
    finally:
        release.set()
        job.join(10)


@pytest.mark.parametrize("fraction, elapsed, first, expected", [
    (0.5, 12.0, 2.0, 10.0),     # 10 s for half the work since the first report: 10 s left
    (0.25, 32.0, 2.0, 90.0),
    (0.01, 100.0, 0.0, None),   # too early to say
    (0.5, 3.0, 2.0, None),      # under 2 s measured
    (0.5, 10.0, None, None),    # no progress reported yet
    (1.0, 10.0, 1.0, None),
])
def test_time_left_is_linear_in_the_measured_rate(fraction, elapsed, first, expected):
    assert eta_seconds(fraction, elapsed, first) == (pytest.approx(expected) if expected is not None else None)


def test_progress_after_cancel_raises_in_the_calling_thread(tmp_path):
    release = threading.Event()
    job = Job(lambda progress: release.wait(10), label="x", folder=tmp_path)
    job.cancel()
    with pytest.raises(JobCancelled):
        job.progress(0.5, "too late")
    release.set()
    job.join(10)


def test_kept_sessions_are_bounded_and_least_recent_go_first():
    for i in range(jobs.MAX_SESSIONS + 5):
        jobs.remember_session(f"t{i}", {"i": i})
    assert jobs.recall_session("t0") == {} and jobs.recall_session("t4") == {}
    assert jobs.recall_session(f"t{jobs.MAX_SESSIONS + 4}") == {"i": jobs.MAX_SESSIONS + 4}
    assert jobs.recall_session("never") == {}
