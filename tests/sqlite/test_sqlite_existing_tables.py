"""SQLite twin of tests/postgres/test_existing_tables.py: an application's own meetings table.

Statuses the scheduler does not know are left alone, the pending, done and cancelled words are
configurable at migration (checked against the table's CHECK constraints), and completing a
meeting sets updated_at where the table has that column. Real files, the real migration, the
emulated cron worker driven by a clock.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlite_helpers import FakeClock, insert, jobs, meeting

from scheduler_admin.backends.sqlite import SqliteBackend
from scheduler_admin.exceptions import InvalidInput
from scheduler_admin.migrate import upgrade
from scheduler_admin.sqlite.connection import to_db_time
from scheduler_admin.sqlite.statuses import configure_statuses
from scheduler_admin.sqlite.worker import CronWorker

UTC = timezone.utc
LONG_AGO = "2000-01-01T00:00:00+00:00"
# Every time of a test is counted from one minute, read once: a minute boundary passing while
# the test runs does not change them.

OWN_STATUSES_TABLE = (
    "CREATE TABLE meetings (id TEXT PRIMARY KEY NOT NULL "
    "DEFAULT (lower(hex(randomblob(16)))), title TEXT, "
    "status TEXT NOT NULL DEFAULT 'scheduled' "
    "  CONSTRAINT meetings_status_check "
    "  CHECK (status IN ('scheduled', 'in_progress', 'completed', 'canceled')), "
    "end_time TEXT, updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now')))"
)


def statuses(monkeypatch: pytest.MonkeyPatch, pending: str, done: str, cancelled: str) -> None:
    monkeypatch.setenv("SCHEDULER_PENDING_STATUS", pending)
    monkeypatch.setenv("SCHEDULER_DONE_STATUS", done)
    monkeypatch.setenv("SCHEDULER_CANCELLED_STATUS", cancelled)


@pytest.fixture(autouse=True)
def no_status_words(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the words a test gives (not those of the environment running the suite)."""
    for variable in (
        "SCHEDULER_PENDING_STATUS",
        "SCHEDULER_DONE_STATUS",
        "SCHEDULER_CANCELLED_STATUS",
    ):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "existing.db"


@pytest.fixture
def conn(path: Path) -> Iterator[sqlite3.Connection]:
    """The application's connection (autocommit); the file exists before any migration."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=10)
    connection.row_factory = sqlite3.Row
    yield connection
    connection.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def backend(path: Path, clock: FakeClock) -> Iterator[SqliteBackend]:
    instance = SqliteBackend(f"sqlite:///{path}", clock=clock)
    yield instance
    instance.close()


def minute(minutes: int, second: int = 0) -> datetime:
    """A time in the real future at a chosen second (the triggers use SQLite's clock): minutes
    after the start of the test's next minute (read when the test starts: a time computed when
    the module was collected is in the past by the time a long run reaches this file)."""
    return _base + timedelta(minutes=minutes, seconds=second)


_base = datetime.now(UTC)


@pytest.fixture(autouse=True)
def _next_minute() -> None:
    global _base
    _base = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)


def migrate(path: Path) -> None:
    upgrade(url=f"sqlite:///{path}")


def status_words(conn: sqlite3.Connection) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT pending_status, done_status, cancelled_status FROM scheduler_statuses"
    ).fetchone()
    return tuple(row)


def schema(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY 2")]


def rows(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute("SELECT * FROM meetings ORDER BY id")]


def test_the_migration_gives_existing_upcoming_meetings_their_jobs(
    conn: sqlite3.Connection, path: Path, backend: SqliteBackend
) -> None:
    """As on PostgreSQL (60_jobs.sql runs scheduler.repair()): a table that existed before the
    migration has its upcoming meetings scheduled and those already over completed by the
    migration itself, with no recover; a second migration at head changes nothing."""
    conn.execute("CREATE TABLE meetings (id TEXT PRIMARY KEY, status TEXT NOT NULL, end_time TEXT)")
    conn.execute(
        "INSERT INTO meetings VALUES ('later', 'upcoming', ?), ('over', 'upcoming', ?), "
        "('gone', 'done', ?)",
        (minute(90).isoformat(), LONG_AGO, minute(90).isoformat()),
    )
    migrate(path)
    later = minute(90)
    assert {name: job["schedule"] for name, job in jobs(conn).items()} == {
        "meeting-status-later": f"{later.minute} {later.hour} {later.day} {later.month} *"
    }
    assert [tuple(r) for r in conn.execute("SELECT id, status FROM meetings ORDER BY id")] == [
        ("gone", "done"),
        ("later", "upcoming"),
        ("over", "done"),
    ]
    report = backend.recover(dry_run=True)
    assert (report["jobs_scheduled"], report["overdue_completed"]) == (0, 0)
    before = schema(conn), dict(jobs(conn))
    migrate(path)
    assert (schema(conn), dict(jobs(conn))) == before


def test_a_paused_store_gets_no_job_at_migration(
    conn: sqlite3.Connection, path: Path, backend: SqliteBackend
) -> None:
    """Paused, the migration registers nothing (as 60_jobs.sql's repair, which runs only while
    the scheduler is enabled); resume does."""
    conn.execute("CREATE TABLE meetings (id TEXT PRIMARY KEY, status TEXT NOT NULL, end_time TEXT)")
    migrate(path)
    backend.pause()
    conn.execute("INSERT INTO meetings VALUES ('later', 'upcoming', ?)", (minute(90).isoformat(),))
    migrate(path)
    assert set(jobs(conn)) == set()
    backend.resume()
    assert set(jobs(conn)) == {"meeting-status-later"}


def test_rows_with_other_statuses_are_left_alone(
    conn: sqlite3.Connection, path: Path, backend: SqliteBackend, clock: FakeClock
) -> None:
    """The table has rows in statuses we do not know (in_progress, canceled, null): the
    migration succeeds, those rows can still be written, keep their end time as written (even
    none, or text that is no time), get no job and are never completed by a job run, the
    reconcile job or recover."""
    conn.execute(
        "CREATE TABLE meetings (id TEXT PRIMARY KEY, title TEXT, "
        "status TEXT DEFAULT 'upcoming', end_time TEXT)"
    )
    conn.execute(
        "INSERT INTO meetings VALUES ('running', 'call', 'in_progress', '2020-01-01 10:00'), "
        "('dropped', 'x', 'canceled', NULL), ('unset', 'y', NULL, 'whenever')"
    )
    migrate(path)

    conn.execute("UPDATE meetings SET title = 'renamed'")  # the triggers used to refuse these
    conn.execute("UPDATE meetings SET end_time = 'later' WHERE id = 'dropped'")
    conn.execute("INSERT INTO meetings VALUES ('paused', 'z', 'on_hold', NULL)")
    upcoming = insert(conn, minute(30), meeting_id="next")
    assert set(jobs(conn)) == {f"meeting-status-{upcoming}"}

    worker = CronWorker(backend, clock=clock)
    clock.set(minute(30, second=1))
    ran = worker.tick()  # the meeting's job and the reconcile job run
    assert {run.job_name for run in ran.runs} == {
        f"meeting-status-{upcoming}",
        "meeting-status-reconcile",
    }
    assert all(run.status == "succeeded" for run in ran.runs)
    report = backend.recover()
    assert report["overdue_completed"] == 0 and report["success"] is True
    assert report["total_meetings"] == 0
    assert rows(conn) == [
        ("dropped", "renamed", "canceled", "later"),
        ("next", "meeting", "done", minute(30).isoformat()),
        ("paused", "z", "on_hold", None),
        ("running", "renamed", "in_progress", "2020-01-01 10:00"),
        ("unset", "renamed", None, "whenever"),
    ]
    assert jobs(conn) == {}
    health = backend.health()
    assert (health["upcoming_meetings"], health["overdue_meetings"], health["ok"]) == (0, 0, True)


def test_configured_words_are_used_and_reported(
    conn: sqlite3.Connection,
    path: Path,
    backend: SqliteBackend,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A table that says scheduled/completed/canceled, migrated with those words: scheduled
    meetings get jobs, become completed at their end time (updated_at set), cancel sets
    canceled, in_progress rows are reported and left alone."""
    conn.execute(OWN_STATUSES_TABLE)
    busy = insert(conn, minute(30), status="in_progress", meeting_id="busy")
    kept = insert(conn, minute(60), meeting_id="kept")
    statuses(monkeypatch, "scheduled", "completed", "canceled")
    caplog.set_level(logging.INFO, logger="scheduler_admin")
    migrate(path)

    assert (
        "meeting statuses: pending 'scheduled', done 'completed', cancelled 'canceled'; "
        'left alone: {"in_progress": 1}'
    ) in caplog.messages
    assert status_words(conn) == ("scheduled", "completed", "canceled")
    # the row that existed before the migration got its job from the migration's repair
    assert set(jobs(conn)) == {f"meeting-status-{kept}"}
    checks = {check["name"]: check for check in backend.doctor()}
    assert checks["every upcoming meeting has a job"]["detail"] == (
        "1 scheduled, 0 without a job, 0 with a wrong job"
    )

    due = insert(conn, minute(10, second=30), meeting_id="due")
    conn.execute("UPDATE meetings SET updated_at = ? WHERE id = ?", (LONG_AGO, due))
    assert set(jobs(conn)) == {f"meeting-status-{kept}", f"meeting-status-{due}"}
    assert meeting(conn, due)["status"] == "scheduled"  # type: ignore[index]

    worker = CronWorker(backend, clock=clock)
    at = minute(11, second=5)  # the job's minute, the one after the end time
    ran = worker.tick(at)
    assert [run.job_name for run in ran.runs] == [
        f"meeting-status-{due}",
        "meeting-status-reconcile",
    ]
    assert ran.runs[0].return_message == "completed 1 meeting (this one included)"
    done = meeting(conn, due)
    assert done is not None and (done["status"], done["updated_at"]) == (
        "completed",
        to_db_time(at),
    )
    assert set(jobs(conn)) == {f"meeting-status-{kept}"}

    # a job that runs early says "not due yet", in the table's words as in the default ones
    conn.execute(
        "UPDATE cron_job SET schedule = '* * * * *' WHERE jobname = ?", (f"meeting-status-{kept}",)
    )
    early = worker.tick(at + timedelta(minutes=1))
    assert early.runs[0].job_name == f"meeting-status-{kept}"
    assert early.runs[0].return_message == "meeting not due yet: nothing done"

    with pytest.raises(InvalidInput, match="is in_progress, not scheduled: nothing to schedule"):
        backend.schedule(busy, minute(90))
    assert backend.schedule(kept, minute(90))["status"] == "scheduled"
    assert backend.cancel(kept) == {"meeting_id": kept, "status": "canceled", "jobs_removed": 1}
    assert meeting(conn, busy)["status"] == "in_progress"  # type: ignore[index]
    assert jobs(conn) == {}

    # the triggers use the words too: an end time already past is completed at once
    past = insert(conn, datetime.now(UTC) - timedelta(minutes=5), meeting_id="past")
    assert meeting(conn, past)["status"] == "completed"  # type: ignore[index]
    assert jobs(conn) == {}
    # a word the migration is not given is kept
    monkeypatch.delenv("SCHEDULER_DONE_STATUS")
    migrate(path)
    assert status_words(conn) == ("scheduled", "completed", "canceled")


@pytest.mark.parametrize(
    ("words", "message", "hint"),
    [
        (
            ("scheduled", "done", "canceled"),  # the table says completed
            "status 'done' is not allowed by the constraint meetings_status_check of meetings "
            "(CHECK (status IN ('scheduled', 'in_progress', 'completed', 'canceled')))",
            "SCHEDULER_DONE_STATUS",
        ),
        (
            ("scheduled", "completed", "scheduled"),
            "the pending, done and cancelled statuses must be three different words, "
            "got 'scheduled', 'completed', 'scheduled'",
            None,
        ),
    ],
)
def test_words_the_table_does_not_allow_fail_clearly_and_change_nothing(
    conn: sqlite3.Connection,
    path: Path,
    monkeypatch: pytest.MonkeyPatch,
    words: tuple[str, str, str],
    message: str,
    hint: str | None,
) -> None:
    """Words that the table's status constraint rejects stop the migration with the constraint
    named and the fix; nothing of ours is left and the rows are as they were."""
    conn.execute(OWN_STATUSES_TABLE)
    insert(conn, minute(60), meeting_id="kept")
    before = (schema(conn), rows(conn))
    statuses(monkeypatch, *words)
    with pytest.raises(InvalidInput) as error:
        migrate(path)
    assert error.value.message == message
    if hint is not None:
        assert hint in (error.value.hint or "")
    assert (schema(conn), rows(conn)) == before


def test_the_constraints_that_read_only_the_status_are_checked(
    conn: sqlite3.Connection, path: Path, backend: SqliteBackend
) -> None:
    """Column and table constraints, named or not, in any quoting; a constraint that reads other
    columns too is not the status's alone and is not checked (as on PostgreSQL); a refused word
    changes nothing."""
    conn.execute(
        """CREATE TABLE meetings (
               id TEXT PRIMARY KEY, title TEXT,
               status TEXT NOT NULL CHECK ("status" <> 'x (not this)'), -- a comment: CHECK (0)
               end_time TEXT,
               CONSTRAINT [both] CHECK (status <> 'y' OR title IS NOT NULL),
               CHECK (meetings.status NOT IN ('z'))
           )"""
    )
    migrate(path)
    with backend.transaction() as db:
        for word, name, definition in [
            ("x (not this)", "(unnamed)", """CHECK ("status" <> 'x (not this)')"""),
            ("z", "(unnamed)", "CHECK (meetings.status NOT IN ('z'))"),
        ]:
            with pytest.raises(InvalidInput) as error:
                configure_statuses(db, cancelled=word)
            assert error.value.message == (
                f"status '{word}' is not allowed by the constraint {name} of meetings "
                f"({definition})"
            )
        assert status_words(db) == ("upcoming", "done", "cancelled")
        result = configure_statuses(db, cancelled="y")
    assert result == {
        "pending_status": "upcoming",
        "done_status": "done",
        "cancelled_status": "y",
        "left_alone": {},
        "repair": result["repair"],
    }
    assert status_words(conn) == ("upcoming", "done", "y")


def test_changing_the_words_moves_the_jobs_and_paused_changes_no_job(
    conn: sqlite3.Connection,
    path: Path,
    backend: SqliteBackend,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """configure_statuses() repairs: meetings with the new pending word get jobs, those with the
    old one lose theirs and are reported as left alone. Paused, the words change and no job."""
    conn.execute("CREATE TABLE meetings (id TEXT PRIMARY KEY, status TEXT NOT NULL, end_time TEXT)")
    conn.execute(
        "INSERT INTO meetings VALUES ('old', 'upcoming', ?), ('new', 'planned', ?), "
        "('weird''s', 'maybe', NULL), ('also', 'maybe', NULL)",
        (minute(60).isoformat(), minute(60).isoformat()),
    )
    migrate(path)
    backend.recover()  # the rows written before the migration get their jobs
    assert set(jobs(conn)) == {"meeting-status-old"}
    caplog.set_level(logging.INFO, logger="scheduler_admin")
    with backend.transaction() as db:
        result = configure_statuses(db, "planned", "over", "called off")
    assert result["left_alone"] == {"maybe": 2, "upcoming": 1}
    assert result["repair"] is not None
    assert (result["repair"]["jobs_scheduled"], result["repair"]["orphans_removed"]) == (1, 1)
    assert set(jobs(conn)) == {"meeting-status-new"}
    assert caplog.messages[-1] == (
        "meeting statuses: pending 'planned', done 'over', cancelled 'called off'; "
        'left alone: {"maybe": 2, "upcoming": 1}'
    )

    backend.pause()
    with backend.transaction() as db:
        result = configure_statuses(db, "upcoming", "done", "it's off")
    assert result["repair"] is None and status_words(conn) == ("upcoming", "done", "it's off")
    assert set(jobs(conn)) == {"meeting-status-new"}  # resume repairs
    assert "cancelled 'it''s off'" in caplog.messages[-1]
    backend.resume()
    assert set(jobs(conn)) == {"meeting-status-old"}


def test_completion_sets_updated_at_where_the_table_has_it(
    conn: sqlite3.Connection, path: Path, backend: SqliteBackend, clock: FakeClock
) -> None:
    """A meeting completed by its job or by recover gets updated_at = the time it was completed,
    as ISO-8601 UTC text (the table the migration creates has the column)."""
    migrate(path)
    by_job = insert(conn, minute(5))
    overdue = insert(conn, minute(5))
    conn.execute("UPDATE meetings SET updated_at = ?", (LONG_AGO,))
    conn.execute("UPDATE cron_job SET active = 0 WHERE jobname = ?", (f"meeting-status-{overdue}",))
    worker = CronWorker(backend, clock=clock)
    at = minute(5, second=2)
    worker.tick(at)
    assert meeting(conn, by_job)["updated_at"] == to_db_time(at)  # type: ignore[index]
    # the reconcile job of the same minute completed the other one ...
    assert meeting(conn, overdue)["updated_at"] == to_db_time(at)  # type: ignore[index]
    # ... and recover does the same for a meeting moved into the past behind the triggers' back
    late = insert(conn, minute(90))
    conn.execute("DROP TRIGGER scheduler_meetings_before_update")
    conn.execute("DROP TRIGGER scheduler_meetings_after_update")
    conn.execute(
        "UPDATE meetings SET end_time = ?, updated_at = ? WHERE id = ?",
        (to_db_time(minute(6)), LONG_AGO, late),
    )
    clock.set(minute(7))
    assert backend.recover()["overdue_completed"] == 1
    completed = meeting(conn, late)
    assert completed is not None
    assert (completed["status"], completed["updated_at"]) == ("done", to_db_time(minute(7)))


def test_completion_works_on_a_table_without_updated_at(
    conn: sqlite3.Connection, path: Path, backend: SqliteBackend, clock: FakeClock
) -> None:
    conn.execute(
        "CREATE TABLE meetings (id TEXT PRIMARY KEY, title TEXT, "
        "status TEXT NOT NULL DEFAULT 'upcoming', end_time TEXT)"
    )
    migrate(path)
    first = insert(conn, minute(5), meeting_id="first")
    second = insert(conn, minute(5), meeting_id="second")
    conn.execute("UPDATE cron_job SET active = 0 WHERE jobname = ?", (f"meeting-status-{second}",))
    worker = CronWorker(backend, clock=clock)
    ran = worker.tick(minute(5, second=1))
    assert all(run.status == "succeeded" for run in ran.runs)
    assert [
        tuple(r) for r in conn.execute("SELECT id, status FROM meetings ORDER BY id")
    ] == sorted([(first, "done"), (second, "done")])
    assert backend.recover()["success"] is True
