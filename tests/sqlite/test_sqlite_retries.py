"""A failed run on SQLite is retried by the runs that follow, and counted: the application's own
trigger refuses the completion once, the meeting's job run fails (the meeting is recorded as
failing to complete, revision 0009), the reconcile run of the same minute leaves it alone during
its back-off and does not fail, the next minute's reconcile run completes the meeting; health,
doctor and the metrics count one failed run, retried."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

from sqlite_helpers import FakeClock, future, insert, meeting

from scheduler_admin.backends.sqlite import SqliteBackend
from scheduler_admin.sqlite.worker import CronWorker


def test_a_failed_run_is_retried_by_the_next_run_and_counted(
    conn: sqlite3.Connection, worker: CronWorker, backend: SqliteBackend, clock: FakeClock
) -> None:
    end = future(30, second=20)
    meeting_id = insert(conn, end, title="frozen")
    job_minute = end.replace(second=0) + timedelta(minutes=1)
    # an application trigger that refuses, for now, to let this meeting change
    conn.execute(
        "CREATE TRIGGER app_freeze BEFORE UPDATE ON meetings WHEN old.title = 'frozen' "
        "BEGIN SELECT RAISE(ABORT, 'frozen by the application'); END"
    )
    first = worker.tick(job_minute)
    failed = [r for r in first.runs if r.status == "failed"]
    assert [r.job_name for r in failed] == [f"meeting-status-{meeting_id}"]
    assert all("frozen by the application" in (r.return_message or "") for r in failed)
    assert [r.status for r in first.runs if r.job_name == "meeting-status-reconcile"] == [
        "succeeded"
    ]
    assert meeting(conn, meeting_id)["status"] == "upcoming"  # type: ignore[index]
    health = backend.health()
    assert (health["failed_runs_24h"], health["retried_runs_24h"], health["ok"]) == (1, 0, False)
    assert health["failing_rows"] == 1

    conn.execute("DROP TRIGGER app_freeze")
    second = worker.tick(job_minute + timedelta(minutes=1))
    assert {r.status for r in second.runs} == {"succeeded"}
    assert meeting(conn, meeting_id)["status"] == "done"  # type: ignore[index]
    assert [(e["meeting_id"], e["path"]) for e in backend.events()] == [(meeting_id, "reconcile")]
    health = backend.health()
    assert (health["failed_runs_24h"], health["retried_runs_24h"]) == (1, 1)
    assert health["failing_rows"] == 0
    metrics = backend.metrics()
    assert (metrics["failed_runs"], metrics["retried_runs"]) == (1, 1)
    check = {c["name"]: c for c in backend.doctor()}["failed runs retried (24 h)"]
    assert check["ok"] is True
    assert check["detail"].startswith("1 failed run, 1 retried by a later run")
