"""The emulated cron worker, driven with an injected clock."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlite_helpers import FakeClock, future, insert, job, jobs, meeting, runs

from scheduler_admin.backends.sqlite import SqliteBackend
from scheduler_admin.core import Check
from scheduler_admin.sqlite.health import WORKER_STALE_AFTER, worker_process_gone
from scheduler_admin.sqlite.worker import CronWorker

UTC = timezone.utc
REPO = Path(__file__).resolve().parents[2]


def wait_for(predicate: object, timeout: float = 30.0) -> None:
    """Poll until predicate() is true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def test_meeting_becomes_done_at_its_minute_not_before(
    conn: sqlite3.Connection, worker: CronWorker, clock: FakeClock
) -> None:
    end = future(30, second=20)
    meeting_id = insert(conn, end)
    job_minute = end.replace(second=0) + timedelta(minutes=1)

    # One second before the end time (the minute before the job's): nothing for this meeting.
    result = worker.tick(end - timedelta(seconds=1))
    assert [run.job_name for run in result.runs] == ["meeting-status-reconcile"]
    assert meeting(conn, meeting_id)["status"] == "upcoming"  # type: ignore[index]

    result = worker.tick(job_minute)
    assert [run.job_name for run in result.runs] == [
        f"meeting-status-{meeting_id}",
        "meeting-status-reconcile",
    ]
    assert meeting(conn, meeting_id)["status"] == "done"  # type: ignore[index]
    assert job(conn, meeting_id) is None
    recorded = [r for r in runs(conn) if r["command"] == f"complete_meeting('{meeting_id}')"]
    assert len(recorded) == 1
    assert recorded[0]["status"] == "succeeded"
    assert recorded[0]["return_message"] == "completed 1 meeting (this one included)"
    assert recorded[0]["start_time"] <= recorded[0]["end_time"]
    assert recorded[0]["job_pid"] == os.getpid()


def test_the_job_rechecks_end_time(conn: sqlite3.Connection, worker: CronWorker) -> None:
    """A yearly-repeating schedule that matches a year early must not complete the meeting."""
    end = future(60 * 24 * 400)  # more than a year ahead: same schedule fires next year first
    meeting_id = insert(conn, end)
    early = (
        end.replace(year=end.year - 1)
        if end.month != 2 or end.day != 29
        else end - timedelta(days=366)
    )
    result = worker.tick(early)
    ran = [run for run in result.runs if run.job_name == f"meeting-status-{meeting_id}"]
    assert len(ran) == 1 and ran[0].return_message == "meeting not due yet: nothing done"
    assert meeting(conn, meeting_id)["status"] == "upcoming"  # type: ignore[index]
    assert job(conn, meeting_id) is not None


def test_a_busy_minute_finishes_together(conn: sqlite3.Connection, worker: CronWorker) -> None:
    end = future(20, second=0)
    ids = [insert(conn, end + timedelta(milliseconds=100 * i)) for i in range(1, 51)]
    assert len({job(conn, i)["schedule"] for i in ids}) == 1  # type: ignore[index]
    result = worker.tick(end + timedelta(minutes=1, seconds=2))
    meeting_runs = [run for run in result.runs if run.job_name != "meeting-status-reconcile"]
    # The first job completes every due meeting; the others' jobs are gone before their turn.
    assert len(meeting_runs) == 1
    assert meeting_runs[0].return_message == "completed 50 meetings (this one included)"
    assert conn.execute("SELECT count(*) FROM meetings WHERE status = 'done'").fetchone()[0] == 50
    assert jobs(conn) == {}


def test_a_minute_runs_once_even_with_two_workers(
    db_path: Path, conn: sqlite3.Connection, clock: FakeClock
) -> None:
    first = CronWorker(db_path, clock=clock)
    second = CronWorker(SqliteBackend(db_path, clock=clock))
    assert not first.tick().skipped
    again = second.tick()
    assert again.skipped and again.runs == []
    assert first.tick().skipped
    assert len(runs(conn)) == 1
    clock.advance(minutes=1)
    assert len(second.tick().runs) == 1
    assert len(runs(conn)) == 2


def test_late_worker_catches_up_a_few_minutes(
    conn: sqlite3.Connection, worker: CronWorker, clock: FakeClock
) -> None:
    start = clock().replace(second=0)
    worker.tick(start)
    # Ends 30 s into the next minute (still in the real future): its job fires at start + 2.
    meeting_id = insert(conn, start + timedelta(minutes=1, seconds=30))
    result = worker.tick(start + timedelta(minutes=3))
    assert result.minutes == [start + timedelta(minutes=m) for m in (1, 2, 3)]
    names = [run.job_name for run in result.runs]
    assert f"meeting-status-{meeting_id}" in names
    # The reconcile job ran once for the tick, not once per missed minute.
    assert names.count("meeting-status-reconcile") == 1
    assert meeting(conn, meeting_id)["status"] == "done"  # type: ignore[index]


def test_long_gap_runs_only_the_current_minute(worker: CronWorker, clock: FakeClock) -> None:
    worker.tick(clock())
    result = worker.tick(clock() + timedelta(hours=2))
    assert len(result.minutes) == 1


def test_reconcile_job_completes_meetings_whose_run_was_missed(
    conn: sqlite3.Connection, worker: CronWorker
) -> None:
    end = future(5, second=0)
    meeting_id = insert(conn, end)
    # The worker was down at the job's minute; it comes back an hour later.
    result = worker.tick(end + timedelta(hours=1))
    assert [run.job_name for run in result.runs] == ["meeting-status-reconcile"]
    assert result.runs[0].return_message == (
        "1 upcoming meeting: 0 scheduled, 0 already there, 1 overdue completed, "
        "0 orphans removed, 0 errors, 0 old runs deleted"
    )
    assert meeting(conn, meeting_id)["status"] == "done"  # type: ignore[index]
    assert job(conn, meeting_id) is None


def test_paused_jobs_change_nothing(
    conn: sqlite3.Connection, worker: CronWorker, backend: SqliteBackend, clock: FakeClock
) -> None:
    end = future(5, second=0)
    meeting_id = insert(conn, end)
    backend.pause()
    clock.set(end + timedelta(seconds=5))
    result = worker.tick()
    assert [run.return_message for run in result.runs] == [
        "scheduler paused: nothing done",
        "scheduler paused: nothing done",
    ]
    assert meeting(conn, meeting_id)["status"] == "upcoming"  # type: ignore[index]
    report = backend.resume()
    assert report["overdue_completed"] == 1
    assert meeting(conn, meeting_id)["status"] == "done"  # type: ignore[index]


def test_job_of_a_gone_meeting_removes_itself(conn: sqlite3.Connection, worker: CronWorker) -> None:
    conn.execute(
        "INSERT INTO cron_job (schedule, command, jobname) "
        "VALUES ('* * * * *', 'complete_meeting(''ghost'')', 'meeting-status-ghost')"
    )
    result = worker.tick()
    ghost = [run for run in result.runs if run.job_name == "meeting-status-ghost"]
    assert ghost[0].status == "succeeded"
    assert ghost[0].return_message == "meeting gone; job removed"
    assert job(conn, "ghost") is None


def test_unknown_command_is_a_failed_run(conn: sqlite3.Connection, worker: CronWorker) -> None:
    conn.execute(
        "INSERT INTO cron_job (schedule, command, jobname) VALUES ('* * * * *', 'vacuum', 'other')"
    )
    result = worker.tick()
    failed = [run for run in result.runs if run.job_name == "other"]
    assert failed[0].status == "failed" and "unknown command" in failed[0].return_message
    row = conn.execute(
        "SELECT status, return_message FROM cron_job_run_details WHERE jobid = ?",
        (failed[0].job_id,),
    ).fetchone()
    assert row["status"] == "failed"


def test_inactive_jobs_do_not_run(conn: sqlite3.Connection, worker: CronWorker) -> None:
    conn.execute("UPDATE cron_job SET active = 0 WHERE jobname = 'meeting-status-reconcile'")
    assert worker.tick().runs == []


def test_stale_running_rows_are_failed(
    conn: sqlite3.Connection, worker: CronWorker, clock: FakeClock
) -> None:
    old = (clock() - timedelta(hours=1)).isoformat()
    conn.execute(
        "INSERT INTO cron_job_run_details (jobid, command, status, start_time) "
        "VALUES (1, 'reconcile()', 'running', ?)",
        (old,),
    )
    assert worker.mark_stale_runs() == 1
    row = conn.execute("SELECT status, return_message FROM cron_job_run_details").fetchone()
    assert row["status"] == "failed" and "worker stopped" in row["return_message"]


def test_heartbeat_is_recorded(
    conn: sqlite3.Connection, worker: CronWorker, clock: FakeClock
) -> None:
    worker.tick()
    row = conn.execute("SELECT * FROM scheduler_worker").fetchone()
    assert row["pid"] == os.getpid()
    assert datetime.fromisoformat(row["heartbeat_at"]) == clock().replace(microsecond=0)


def test_start_thread_and_stop(conn: sqlite3.Connection, db_path: Path) -> None:
    worker = CronWorker(db_path)
    thread = worker.start_thread()
    try:
        wait_for(lambda: len(runs(conn)) >= 1)
    finally:
        worker.stop(timeout=10)
    assert not thread.is_alive()
    assert runs(conn)[0]["status"] == "succeeded"


def test_run_forever_stops_on_event(conn: sqlite3.Connection, db_path: Path) -> None:
    worker = CronWorker(db_path)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,))
    thread.start()
    wait_for(lambda: len(runs(conn)) >= 1)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()


def test_run_async_stops_on_event(conn: sqlite3.Connection, db_path: Path) -> None:
    worker = CronWorker(db_path)

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run_async(stop))
        while not runs(conn):
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, timeout=10)

    asyncio.run(main())
    assert runs(conn)[0]["command"] == "reconcile()"


def test_foreground_worker_stops_cleanly_on_sigterm(
    conn: sqlite3.Connection, db_path: Path
) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    code = (
        "import sys; from scheduler_admin.sqlite.worker import CronWorker; "
        "CronWorker(sys.argv[1]).run_forever(); print('stopped')"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(db_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(runs(conn)) >= 1 or process.poll() is not None)
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert out.strip() == "stopped"


# -- doctor and health on this host: the worker's process, not only its heartbeat --------------


def worker_check(backend: SqliteBackend) -> Check:
    return next(c for c in backend.doctor() if c["name"] == "worker running")


def test_doctor_calls_a_killed_worker_stopped_at_once(
    conn: sqlite3.Connection, db_path: Path
) -> None:
    """On the worker's host, doctor and health check that its process is alive: a killed worker
    is "stopped (process <pid> is gone)" while its heartbeat is still fresh; a worker on another
    host keeps the heartbeat rule."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    code = "import sys; from scheduler_admin.sqlite.worker import CronWorker; " + (
        "CronWorker(sys.argv[1]).run_forever()"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(db_path)], env=env, stderr=subprocess.PIPE, text=True
    )
    backend = SqliteBackend(db_path)  # the real clock, the worker's
    try:

        def heartbeat_of_the_process() -> bool:
            row = conn.execute("SELECT pid FROM scheduler_worker").fetchone()
            return row["pid"] == process.pid or process.poll() is not None

        wait_for(heartbeat_of_the_process)  # its first tick is at once
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        alive = worker_check(backend)
        assert alive["ok"], alive
        assert f"(pid {process.pid} on {socket.gethostname()})" in alive["detail"]
        assert backend.health()["worker"]["running"] is True

        process.kill()
        process.wait(timeout=20)  # reaped: no process has its pid any more
        row = conn.execute("SELECT heartbeat_at FROM scheduler_worker").fetchone()
        # the heartbeat alone would still say running
        heartbeat = datetime.fromisoformat(row["heartbeat_at"])
        assert datetime.now(UTC) - heartbeat < WORKER_STALE_AFTER
        stopped = worker_check(backend)
        assert not stopped["ok"]
        assert stopped["detail"].startswith(f"stopped (process {process.pid} is gone; ")
        assert stopped["fix"] and "scheduler-admin worker" in stopped["fix"]
        assert backend.health()["worker"]["running"] is False

        # the same row written on another host: its pid says nothing here
        conn.execute("UPDATE scheduler_worker SET hostname = 'another-host'")
        elsewhere = worker_check(backend)
        assert elsewhere["ok"], elsewhere
        assert f"(pid {process.pid} on another-host)" in elsewhere["detail"]
        assert backend.health()["worker"]["running"] is True
    finally:
        backend.close()
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()


def test_a_worker_process_of_another_user_counts_as_alive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """os.kill(pid, 0) refused (another user's process) means the process exists."""
    host = socket.gethostname()

    def refused(pid: int, sig: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    def gone(pid: int, sig: int) -> None:
        raise ProcessLookupError(3, "No such process")

    monkeypatch.setattr(os, "kill", refused)
    assert worker_process_gone(4321, host) is False
    monkeypatch.setattr(os, "kill", gone)
    assert worker_process_gone(4321, host) is True
    # another host, or a row without its pid or host: the heartbeat decides
    assert worker_process_gone(4321, "another-host") is False
    assert worker_process_gone(None, host) is False
    assert worker_process_gone(0, host) is False
    assert worker_process_gone(4321, None) is False
