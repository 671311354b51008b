"""SqliteBackend: the admin operations and their result shapes."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlite_helpers import FakeClock, expected_schedule, future, insert, job, jobs, meeting, runs

from scheduler_admin.backends.sqlite import SqliteBackend
from scheduler_admin.core import Check, Job, RecoverReport, Run
from scheduler_admin.exceptions import InvalidInput, MeetingNotFound, NotMigrated
from scheduler_admin.schema import read_sql
from scheduler_admin.sqlite.worker import CronWorker

UTC = timezone.utc


def keys(typed: type) -> set[str]:
    """The keys every result of the shape has (beyond_horizon only with a job horizon)."""
    return set(typed.__annotations__) - {"beyond_horizon"}


def add_bad_row(conn: sqlite3.Connection, meeting_id: str, end_time: str) -> None:
    """A row the triggers would refuse (as left by a client before the migration)."""
    conn.execute("DROP TRIGGER scheduler_meetings_before_insert")
    conn.execute("DROP TRIGGER scheduler_meetings_after_insert")
    conn.execute("INSERT INTO meetings (id, end_time) VALUES (?, ?)", (meeting_id, end_time))
    conn.execute("BEGIN")
    from scheduler_admin.sqlite_script import execute_sqlite_script

    execute_sqlite_script(conn, read_sql("sqlite", "30_triggers.sql"))
    conn.execute("COMMIT")


# -- list_jobs ------------------------------------------------------------------------------


def test_list_jobs_shape_and_order(
    conn: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    late = future(300, second=30)
    early = future(100, second=0)
    late_id = insert(conn, late)
    early_id = insert(conn, early)
    listed = backend.list_jobs()
    assert all(set(j) == keys(Job) for j in listed)
    assert [j["job_name"] for j in listed] == [
        "meeting-status-reconcile",
        f"meeting-status-{early_id}",
        f"meeting-status-{late_id}",
    ]
    reconcile, first, second = listed
    assert reconcile["meeting_id"] is None and reconcile["schedule"] == "* * * * *"
    assert reconcile["end_time"] is None and reconcile["meeting_status"] is None
    assert datetime.fromisoformat(reconcile["next_run"] or "") == (
        clock().replace(second=0) + timedelta(minutes=1)
    )
    assert first["meeting_id"] == early_id and first["meeting_status"] == "upcoming"
    assert first["end_time"] == early.isoformat()
    assert first["next_run"] == early.isoformat()
    assert second["next_run"] == (late.replace(second=0) + timedelta(minutes=1)).isoformat()
    assert second["schedule"] == expected_schedule(late)
    assert all(j["active"] for j in listed)


def test_list_jobs_shows_orphans_with_no_meeting(
    conn: sqlite3.Connection, backend: SqliteBackend
) -> None:
    conn.execute(
        "INSERT INTO cron_job (schedule, command, jobname) "
        "VALUES ('0 1 1 1 *', 'complete_meeting(''gone'')', 'meeting-status-gone')"
    )
    conn.execute(
        "INSERT INTO cron_job (schedule, command, jobname) VALUES ('0 1 1 1 *', 'x', 'not-ours')"
    )
    listed = {j["job_name"]: j for j in backend.list_jobs()}
    assert "not-ours" not in listed
    assert listed["meeting-status-gone"]["meeting_id"] == "gone"
    assert listed["meeting-status-gone"]["meeting_status"] is None


# -- recover ---------------------------------------------------------------------------------


def test_recover_on_a_consistent_database(conn: sqlite3.Connection, backend: SqliteBackend) -> None:
    for minutes in (30, 60, 90):
        insert(conn, future(minutes))
    report = backend.recover()
    assert set(report) == keys(RecoverReport)
    assert report == {
        "total_meetings": 3,
        "jobs_scheduled": 0,
        "jobs_already_exist": 3,
        "overdue_completed": 0,
        "orphans_removed": 0,
        "errors": [],
        "success": True,
        "dry_run": False,
    }


def make_a_mess(conn: sqlite3.Connection, clock: FakeClock) -> dict[str, str]:
    """One of each: overdue, missing job, wrong job, orphan of a done meeting, job of nobody."""
    ids = {
        "overdue": insert(conn, future(2, second=0)),
        "missing": insert(conn, future(60)),
        "wrong": insert(conn, future(90)),
        "ok": insert(conn, future(120)),
        "done": insert(conn, future(30), status="done"),
    }
    conn.execute("DELETE FROM cron_job WHERE jobname = ?", (f"meeting-status-{ids['missing']}",))
    conn.execute(
        "UPDATE cron_job SET schedule = '1 2 3 4 *' WHERE jobname = ?",
        (f"meeting-status-{ids['wrong']}",),
    )
    conn.execute(
        "INSERT INTO cron_job (schedule, command, jobname) VALUES ('0 0 1 1 *', ?, ?)",
        (f"complete_meeting('{ids['done']}')", f"meeting-status-{ids['done']}"),
    )
    conn.execute(
        "INSERT INTO cron_job (schedule, command, jobname) "
        "VALUES ('0 0 1 1 *', 'complete_meeting(''nobody'')', 'meeting-status-nobody')"
    )
    clock.set(future(2, second=0) + timedelta(seconds=30))  # the first meeting is now overdue
    return ids


EXPECTED_MESS = {
    "total_meetings": 4,
    "jobs_scheduled": 2,
    "jobs_already_exist": 1,
    "overdue_completed": 1,
    "orphans_removed": 2,
    "errors": [],
    "success": True,
}


def test_recover_repairs_everything(
    conn: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    ids = make_a_mess(conn, clock)
    wrong_jobid = job(conn, ids["wrong"])["jobid"]  # type: ignore[index]
    report = backend.recover()
    assert report == {**EXPECTED_MESS, "dry_run": False}
    assert meeting(conn, ids["overdue"])["status"] == "done"  # type: ignore[index]
    assert set(jobs(conn)) == {f"meeting-status-{ids[k]}" for k in ("missing", "wrong", "ok")}
    for key in ("missing", "wrong", "ok"):
        row = meeting(conn, ids[key])
        assert job(conn, ids[key])["schedule"] == expected_schedule(  # type: ignore[index]
            datetime.fromisoformat(row["end_time"])  # type: ignore[index]
        )
    assert job(conn, ids["wrong"])["jobid"] == wrong_jobid  # type: ignore[index]
    # Idempotent: a second run finds everything in order.
    again = backend.recover()
    assert (again["jobs_scheduled"], again["jobs_already_exist"], again["orphans_removed"]) == (
        0,
        3,
        0,
    )


def test_dry_run_changes_nothing_and_reports_the_same(
    conn: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    make_a_mess(conn, clock)
    snapshot = (
        [tuple(r) for r in conn.execute("SELECT * FROM meetings ORDER BY id")],
        [tuple(r) for r in conn.execute("SELECT * FROM cron_job ORDER BY jobid")],
    )
    dry = backend.recover(dry_run=True)
    assert dry == {**EXPECTED_MESS, "dry_run": True}
    assert snapshot == (
        [tuple(r) for r in conn.execute("SELECT * FROM meetings ORDER BY id")],
        [tuple(r) for r in conn.execute("SELECT * FROM cron_job ORDER BY jobid")],
    )
    real = backend.recover()
    assert {k: v for k, v in real.items() if k != "dry_run"} == {
        k: v for k, v in dry.items() if k != "dry_run"
    }


def test_one_bad_row_does_not_stop_the_others(
    conn: sqlite3.Connection, backend: SqliteBackend
) -> None:
    add_bad_row(conn, "broken", "next week")
    good = insert(conn, future(60))
    conn.execute("DELETE FROM cron_job WHERE jobname = ?", (f"meeting-status-{good}",))
    report = backend.recover()
    assert report["total_meetings"] == 2
    assert report["jobs_scheduled"] == 1
    assert report["success"] is False
    assert report["errors"] == [{"meeting_id": "broken", "error": report["errors"][0]["error"]}]
    assert "next week" in report["errors"][0]["error"]
    assert job(conn, good) is not None


def test_recover_while_paused_is_refused_but_dry_run_works(
    conn: sqlite3.Connection, backend: SqliteBackend
) -> None:
    backend.pause()
    with pytest.raises(InvalidInput, match="paused"):
        backend.recover()
    assert backend.recover(dry_run=True)["dry_run"] is True


# -- reconcile and history ---------------------------------------------------------------------


def add_run(
    conn: sqlite3.Connection, command: str, status: str, message: str, when: datetime
) -> None:
    conn.execute(
        "INSERT INTO cron_job_run_details "
        "(jobid, command, status, return_message, start_time, end_time) "
        "VALUES (1, ?, ?, ?, ?, ?)",
        (command, status, message, when.isoformat(), (when + timedelta(seconds=1)).isoformat()),
    )


def test_reconcile_deletes_our_runs_older_than_the_retention(
    conn: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    now = clock()
    add_run(conn, "reconcile()", "succeeded", "old", now - timedelta(days=8))
    add_run(conn, "complete_meeting('x')", "succeeded", "old", now - timedelta(days=7, minutes=1))
    add_run(conn, "complete_meeting('x')", "succeeded", "recent", now - timedelta(days=6))
    add_run(conn, "somebody else's", "succeeded", "old", now - timedelta(days=30))
    report = backend.reconcile()
    assert report["success"] is True
    assert report["history_deleted"] == 2  # type: ignore[typeddict-item]
    assert sorted((r["command"], r["return_message"]) for r in runs(conn)) == [
        ("complete_meeting('x')", "recent"),
        ("somebody else's", "old"),
    ]
    conn.execute("UPDATE scheduler_settings SET history_retention_days = 1")
    backend.reconcile()
    assert [r["command"] for r in runs(conn)] == ["somebody else's"]


def test_reconcile_while_paused_changes_nothing(
    conn: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    meeting_id = insert(conn, future(2, second=0))
    add_run(conn, "reconcile()", "succeeded", "old", clock() - timedelta(days=30))
    backend.pause()
    clock.set(future(5))
    assert backend.reconcile() == {"paused": True}  # as scheduler.reconcile() on PostgreSQL
    assert meeting(conn, meeting_id)["status"] == "upcoming"  # type: ignore[index]
    assert len(runs(conn)) == 1


def test_history_newest_first_with_canceled_runs(
    conn: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    now = clock()
    meeting_id = insert(conn, future(60))
    jobid = job(conn, meeting_id)["jobid"]  # type: ignore[index]
    conn.execute(
        "INSERT INTO cron_job_run_details (jobid, command, status, return_message, start_time) "
        "VALUES (?, ?, 'succeeded', 'first', ?)",
        (jobid, f"complete_meeting('{meeting_id}')", (now - timedelta(minutes=3)).isoformat()),
    )
    add_run(
        conn,
        "complete_meeting('gone-meeting')",
        "failed",
        "job canceled",
        now - timedelta(minutes=2),
    )
    add_run(conn, "reconcile()", "failed", "disk I/O error", now - timedelta(minutes=1))
    add_run(conn, "not ours", "failed", "x", now)
    history = backend.history()
    assert all(set(run) == keys(Run) for run in history)
    assert [r["return_message"] for r in history] == ["disk I/O error", "job canceled", "first"]
    failed, canceled, first = history
    assert failed["job_name"] == "meeting-status-reconcile" and failed["meeting_id"] is None
    assert failed["status"] == "failed"
    assert canceled["status"] == "canceled"
    assert canceled["job_name"] == "meeting-status-gone-meeting"
    assert canceled["meeting_id"] == "gone-meeting"
    assert first["job_id"] == jobid and first["meeting_id"] == meeting_id
    assert first["start_time"] == (now - timedelta(minutes=3)).isoformat()
    assert [r["return_message"] for r in backend.history(failed_only=True)] == ["disk I/O error"]
    assert len(backend.history(limit=2)) == 2
    with pytest.raises(InvalidInput):
        backend.history(limit=0)


def test_history_is_newest_run_first(
    conn: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    """By run id, as runs are recorded: a run without a start time (or with an odd one) does
    not sort above the runs recorded after it."""
    now = clock()
    add_run(conn, "reconcile()", "succeeded", "oldest", now - timedelta(minutes=3))
    conn.execute(
        "INSERT INTO cron_job_run_details (jobid, command, status, return_message) "
        "VALUES (1, 'reconcile()', 'failed', 'never started')"
    )
    add_run(conn, "reconcile()", "succeeded", "started earlier", now - timedelta(hours=1))
    add_run(conn, "reconcile()", "succeeded", "newest", now)
    assert [r["return_message"] for r in backend.history()] == [
        "newest",
        "started earlier",
        "never started",
        "oldest",
    ]


def test_history_of_worker_runs(
    conn: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    end = future(3, second=0)
    meeting_id = insert(conn, end)
    worker = CronWorker(backend, clock=clock)
    worker.tick(end)
    history = backend.history()
    assert [r["job_name"] for r in history][:2] in (
        [f"meeting-status-{meeting_id}", "meeting-status-reconcile"],
        ["meeting-status-reconcile", f"meeting-status-{meeting_id}"],
    )
    assert {r["status"] for r in history} == {"succeeded"}
    assert all(r["start_time"] == end.isoformat() for r in history)


# -- schedule, cancel, pause, resume ------------------------------------------------------------


def test_schedule_moves_the_job(conn: sqlite3.Connection, backend: SqliteBackend) -> None:
    meeting_id = insert(conn, future(60))
    new_end = future(600, second=45).astimezone(timezone(timedelta(hours=9)))
    result = backend.schedule(meeting_id, new_end)
    assert set(result) == {"meeting_id", "status", "job"}
    assert result["meeting_id"] == meeting_id and result["status"] == "upcoming"
    assert result["job"]["schedule"] == expected_schedule(new_end)
    assert result["job"]["end_time"] == new_end.astimezone(UTC).isoformat()
    assert meeting(conn, meeting_id)["end_time"] == new_end.astimezone(UTC).strftime(  # type: ignore[index]
        "%Y-%m-%dT%H:%M:%S+00:00"
    )


def test_schedule_restores_a_missing_job(conn: sqlite3.Connection, backend: SqliteBackend) -> None:
    end = future(60)
    meeting_id = insert(conn, end)
    conn.execute("DELETE FROM cron_job WHERE jobname = ?", (f"meeting-status-{meeting_id}",))
    result = backend.schedule(meeting_id, end)
    assert result["job"] is not None and job(conn, meeting_id) is not None


def test_schedule_in_the_past_completes(conn: sqlite3.Connection, backend: SqliteBackend) -> None:
    meeting_id = insert(conn, future(60))
    result = backend.schedule(meeting_id, datetime.now(UTC) - timedelta(minutes=1))
    assert result == {"meeting_id": meeting_id, "status": "done", "job": None}


def test_schedule_errors(conn: sqlite3.Connection, backend: SqliteBackend) -> None:
    with pytest.raises(MeetingNotFound):
        backend.schedule("no-such-meeting", future(60))
    done = insert(conn, future(60), status="done")
    with pytest.raises(InvalidInput, match=r"is done, not upcoming: nothing to schedule") as error:
        backend.schedule(done, future(60))
    assert error.value.hint == "Set its status back to upcoming first."
    upcoming = insert(conn, future(60))
    with pytest.raises(InvalidInput, match="time zone"):
        backend.schedule(upcoming, future(60).replace(tzinfo=None))


def test_cancel(conn: sqlite3.Connection, backend: SqliteBackend) -> None:
    meeting_id = insert(conn, future(60))
    assert backend.cancel(meeting_id) == {
        "meeting_id": meeting_id,
        "status": "cancelled",
        "jobs_removed": 1,
    }
    assert job(conn, meeting_id) is None
    with pytest.raises(InvalidInput, match="is cancelled, not upcoming: nothing to cancel"):
        backend.cancel(meeting_id)
    done = insert(conn, future(60), status="done")
    with pytest.raises(InvalidInput, match="is done, not upcoming: nothing to cancel"):
        backend.cancel(done)
    assert conn.execute("SELECT status FROM meetings WHERE id = ?", (done,)).fetchone()[0] == "done"
    with pytest.raises(MeetingNotFound):
        backend.cancel("no-such-meeting")


def test_pause_and_resume(conn: sqlite3.Connection, backend: SqliteBackend) -> None:
    assert backend.pause() == {"enabled": False}
    paused = insert(conn, future(60))
    assert job(conn, paused) is None
    report = backend.resume()
    assert set(report) == keys(RecoverReport)
    assert report["jobs_scheduled"] == 1
    assert job(conn, paused) is not None
    assert conn.execute("SELECT enabled FROM scheduler_settings").fetchone()[0] == 1


# -- health and doctor ---------------------------------------------------------------------------


def test_health(conn: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock) -> None:
    health = backend.health()
    assert health["worker"] == {"running": False, "heartbeat_at": None}
    assert health["ok"] is False  # on SQLite nothing but the worker runs the jobs
    CronWorker(backend, clock=clock).tick()
    health = backend.health()
    assert health == {
        "backend": "sqlite",
        "enabled": True,
        "upcoming_meetings": 0,
        "jobs": 0,
        "missing_jobs": 0,
        "orphan_jobs": 0,
        "overdue_meetings": 0,
        "failed_runs_24h": 0,
        "retried_runs_24h": 0,
        "reconcile_job": True,
        "worker": {"running": True, "heartbeat_at": clock().isoformat()},
        "failing_rows": 0,
        "failing_rows_detail": [],
        "reconcile_skipped_in_a_row": 0,
        "reconcile_failed_in_a_row": 0,
        "job_horizon": None,
        "beyond_horizon": 0,
        "cron_jobs": 1,  # the reconcile job
        "ok": True,
    }
    make_a_mess(conn, clock)
    clock.advance(minutes=3)  # the overdue meeting is now more than 2 minutes late
    add_run(conn, "reconcile()", "failed", "boom", clock() - timedelta(hours=1))
    add_run(conn, "reconcile()", "failed", "job canceled", clock() - timedelta(hours=1))
    add_run(conn, "reconcile()", "failed", "too old", clock() - timedelta(hours=25))
    health = backend.health()
    assert (health["upcoming_meetings"], health["jobs"]) == (4, 5)
    assert (health["missing_jobs"], health["orphan_jobs"], health["overdue_meetings"]) == (1, 2, 1)
    assert (health["failed_runs_24h"], health["retried_runs_24h"]) == (1, 0)
    assert health["ok"] is False
    add_run(conn, "reconcile()", "succeeded", "fine", clock() - timedelta(minutes=30))
    assert backend.health()["retried_runs_24h"] == 1  # a later run of the job succeeded


def test_health_is_ok_with_failed_runs_that_were_retried(
    conn: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    CronWorker(backend, clock=clock).tick()
    add_run(conn, "reconcile()", "failed", "boom", clock() - timedelta(minutes=3))
    add_run(conn, "reconcile()", "succeeded", "fine", clock() - timedelta(minutes=2))
    add_run(conn, "complete_meeting('gone')", "failed", "boom", clock() - timedelta(minutes=2))
    health = backend.health()
    assert (health["failed_runs_24h"], health["retried_runs_24h"], health["ok"]) == (2, 2, True)
    add_run(conn, "reconcile()", "failed", "boom", clock() - timedelta(minutes=1))
    health = backend.health()
    assert (health["failed_runs_24h"], health["retried_runs_24h"], health["ok"]) == (3, 2, False)


def test_doctor_all_green_after_a_worker_tick(backend: SqliteBackend, clock: FakeClock) -> None:
    CronWorker(backend, clock=clock).tick()
    checks = backend.doctor()
    assert all(set(c) == keys(Check) for c in checks)
    assert [c["name"] for c in checks if not c["ok"]] == []
    assert all(c["fix"] is None for c in checks)
    assert {c["name"] for c in checks} >= {
        "migrated",
        "triggers on meetings",
        "reconcile job",
        "every upcoming meeting has a job",
        "failed runs retried (24 h)",
        "worker running",
    }


def test_doctor_reports_problems_with_fixes(
    conn: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    meeting_id = insert(conn, future(60))
    conn.execute("DELETE FROM cron_job")  # no reconcile job, a meeting without a job
    conn.execute("DROP TRIGGER scheduler_meetings_after_delete")
    # a failed run of a meeting still pending: not retried (a gone meeting's would be)
    add_run(
        conn, f"complete_meeting('{meeting_id}')", "failed", "boom", clock() - timedelta(hours=2)
    )
    failing = {c["name"]: c for c in backend.doctor() if not c["ok"]}
    assert set(failing) == {
        "triggers on meetings",
        "reconcile job",
        "every upcoming meeting has a job",
        "failed runs retried (24 h)",
        "worker running",
    }
    assert all(c["fix"] for c in failing.values())
    assert "scheduler_meetings_after_delete" in failing["triggers on meetings"]["detail"]
    assert "30_triggers.sql" in (failing["triggers on meetings"]["fix"] or "")
    assert "recover" in (failing["every upcoming meeting has a job"]["fix"] or "")


def test_doctor_on_an_unmigrated_database(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    checks = SqliteBackend(path).doctor()
    assert [(c["name"], c["ok"]) for c in checks] == [("migrated", False)]
    assert "scheduler-admin migrate" in (checks[0]["fix"] or "")


# -- not migrated ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "operation",
    ["list_jobs", "recover", "reconcile", "history", "health", "pause", "resume"],
)
def test_unmigrated_database_raises_not_migrated(tmp_path: Path, operation: str) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    backend = SqliteBackend(f"sqlite:///{path}")
    with pytest.raises(NotMigrated, match="scheduler-admin migrate"):
        getattr(backend, operation)()


def test_missing_file_raises_not_migrated_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(NotMigrated, match="scheduler-admin migrate"):
        SqliteBackend(path).list_jobs()
    assert not path.exists()


def test_urls_and_paths(tmp_path: Path, db_path: Path) -> None:
    from scheduler_admin.sqlite.connection import database_path

    assert database_path("sqlite:///relative.db") == "relative.db"
    assert database_path("sqlite:////abs/file.db") == "/abs/file.db"
    assert database_path("sqlite+pysqlite:////abs/file.db") == "/abs/file.db"
    assert database_path("sqlite://") == ":memory:"
    assert database_path(tmp_path / "x.db") == str(tmp_path / "x.db")
    assert (
        SqliteBackend(f"sqlite:///{db_path}").list_jobs()[0]["job_name"]
        == "meeting-status-reconcile"
    )


def test_connections_use_wal(db_path: Path, backend: SqliteBackend) -> None:
    backend.list_jobs()
    with sqlite3.connect(db_path) as check:
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with backend.connection() as conn:
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 10000
