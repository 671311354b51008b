"""An application's own meetings table: statuses the scheduler does not know are left alone, the
pending, done and cancelled words are configurable at migration (checked against the table's
constraints), and completing a meeting sets updated_at where the table has that column."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import psycopg
import pytest
from clock_helpers import future_on
from pg_helpers import (
    Conn,
    Server,
    clear_of_ticks,
    job_command,
    job_name,
    meeting_jobs,
    migrate,
    reconcile_job_inactive,
    run_command,
    sweep_off,
)

FUTURE = future_on(6, 1, 12)

OWN_STATUSES_TABLE = (
    "create table meetings (id uuid primary key default gen_random_uuid(), title text, "
    "status text not null default 'scheduled' "
    "  constraint meetings_status_check "
    "  check (status in ('scheduled', 'in_progress', 'completed', 'canceled')), "
    "end_time timestamptz, updated_at timestamptz not null default now())"
)


def statuses(monkeypatch: pytest.MonkeyPatch, pending: str, done: str, cancelled: str) -> None:
    monkeypatch.setenv("SCHEDULER_PENDING_STATUS", pending)
    monkeypatch.setenv("SCHEDULER_DONE_STATUS", done)
    monkeypatch.setenv("SCHEDULER_CANCELLED_STATUS", cancelled)


def test_rows_with_other_statuses_are_left_alone(bare_database: Conn, migrated: Server) -> None:
    """The table has rows in statuses we do not know (in_progress, canceled): the migration
    succeeds, those rows can still be written, get no job and are never completed, even with
    an end time in the past or none at all."""
    db = bare_database
    db.execute(
        "create table meetings (id uuid primary key default gen_random_uuid(), title text, "
        "status text not null default 'upcoming', end_time timestamptz)"
    )
    (running,) = db.execute(
        "insert into meetings (title, status, end_time) "
        "values ('call', 'in_progress', now() - interval '1 hour') returning id"
    ).fetchone()  # type: ignore[misc]
    (dropped,) = db.execute(
        "insert into meetings (title, status, end_time) values ('x', 'canceled', null) returning id"
    ).fetchone()  # type: ignore[misc]
    migrate(migrated)

    db.execute("update meetings set title = 'renamed'")  # failed with "unknown status" before
    (upcoming,) = db.execute(
        "insert into meetings (title, end_time) values ('next', %s) returning id", (FUTURE,)
    ).fetchone()  # type: ignore[misc]
    assert set(meeting_jobs(db)) == {job_name(upcoming)}
    run_command(db, job_command(upcoming))  # a job run completes what is due: not these
    report = run_command(db, "select scheduler.recover()")
    assert report["overdue_completed"] == 0 and report["success"] is True
    rows = dict(db.execute("select id, status from meetings").fetchall())  # type: ignore[arg-type]
    assert rows == {running: "in_progress", dropped: "canceled", upcoming: "upcoming"}


def test_configured_words_are_used_and_reported(
    bare_database: Conn,
    migrated: Server,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A table that says scheduled/completed/canceled, migrated with those words: scheduled
    meetings get jobs, become completed at their end time (updated_at set), cancel sets
    canceled, in_progress rows are reported and left alone."""
    db = bare_database
    db.execute(OWN_STATUSES_TABLE)
    (busy,) = db.execute(
        "insert into meetings (title, status, end_time) values ('busy', 'in_progress', %s) "
        "returning id",
        (FUTURE,),
    ).fetchone()  # type: ignore[misc]
    (kept,) = db.execute(
        "insert into meetings (title, end_time) values ('kept', %s) returning id", (FUTURE,)
    ).fetchone()  # type: ignore[misc]
    statuses(monkeypatch, "scheduled", "completed", "canceled")
    caplog.set_level(logging.INFO, logger="scheduler_admin")
    migrate(migrated)

    assert 'left alone: {"in_progress": 1}' in caplog.text
    assert db.execute(
        "select pending_status, done_status, cancelled_status from scheduler.settings"
    ).fetchone() == ("scheduled", "completed", "canceled")
    # the row that existed before the migration got its job from the migration's repair
    assert set(meeting_jobs(db)) == {job_name(kept)}
    assert job_name(busy) not in meeting_jobs(db)

    # the job's command must do it: the reconcile job kept out, the seconds sweep (pg_cron 1.5+,
    # registered by the migration) off, and the end away from a minute boundary (where the
    # meeting's own job fires)
    with reconcile_job_inactive(db):
        sweep_off(db)
        soon = clear_of_ticks(db, 2)
        (due,) = db.execute(
            "insert into meetings (title, end_time, updated_at) "
            "values ('due', %s, '2000-01-01') returning id",
            (soon,),
        ).fetchone()  # type: ignore[misc]
        assert job_name(due) in meeting_jobs(db)
        db.execute(
            "select pg_sleep(greatest(0, extract(epoch from %s::timestamptz - now())) + 0.05)",
            (soon,),
        )
        assert run_command(db, job_command(due)) == 1
    status, updated = db.execute(
        "select status, updated_at from meetings where id = %s", (due,)
    ).fetchone()  # type: ignore[misc]
    assert status == "completed" and updated > soon
    assert job_name(due) not in meeting_jobs(db)

    cancelled = run_command(db, f"select scheduler.cancel_meeting('{kept}')")
    assert cancelled["status"] == "canceled"
    assert db.execute("select status from meetings where id = %s", (busy,)).fetchone() == (
        "in_progress",
    )


def test_words_the_table_does_not_allow_fail_clearly_and_change_nothing(
    bare_database: Conn, migrated: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Words that the table's status constraint rejects stop the migration with the constraint
    named and the fix; nothing of ours is left."""
    db = bare_database
    db.execute(OWN_STATUSES_TABLE)
    statuses(monkeypatch, "scheduled", "done", "canceled")  # the table says completed
    with pytest.raises(Exception) as info:
        migrate(migrated)
    error = info.value.__cause__ if info.value.__cause__ is not None else info.value
    assert isinstance(error, psycopg.errors.CheckViolation), repr(info.value)
    assert error.diag.message_primary == (
        "status 'done' is not allowed by the constraint meetings_status_check of public.meetings "
        "(CHECK ((status = ANY (ARRAY['scheduled'::text, 'in_progress'::text, "
        "'completed'::text, 'canceled'::text]))))"
    )
    assert "SCHEDULER_DONE_STATUS" in (error.diag.message_hint or "")
    # rolled back: no function, trigger or job of ours (alembic's version table stays at base)
    assert db.execute(
        "select to_regprocedure('scheduler.complete_meeting(uuid)'), "
        "       (select count(*) from pg_trigger where tgrelid = 'public.meetings'::regclass "
        "        and not tgisinternal), "
        "       (select count(*) from cron.job where jobname like 'meeting-status-%%')"
    ).fetchone() == (None, 0, 0)


def test_completion_sets_updated_at_where_the_table_has_it(db: Conn) -> None:
    """A meeting completed by its job, by recover, or on insert with an end time already past
    gets updated_at = now() (the table the migration creates has the column)."""
    long_ago = datetime(2000, 1, 1, tzinfo=timezone.utc)
    (past,) = db.execute(
        "insert into meetings (title, end_time, updated_at) values ('p', now() - interval '1 s', %s) "
        "returning id",
        (long_ago,),
    ).fetchone()  # type: ignore[misc]
    (overdue,) = db.execute(
        "insert into meetings (title, end_time, updated_at) values ('o', %s, %s) returning id",
        (FUTURE, long_ago),
    ).fetchone()  # type: ignore[misc]
    db.execute("set session_replication_role = replica")  # move it into the past unseen
    db.execute(
        "update meetings set end_time = now() - interval '1 hour', updated_at = %s where id = %s",
        (long_ago, overdue),
    )
    db.execute("set session_replication_role = origin")
    report = run_command(db, "select scheduler.recover()")
    assert report["overdue_completed"] == 1
    rows = db.execute(
        "select id, status, updated_at > %s from meetings where id = any(%s)",
        (long_ago, [past, overdue]),
    ).fetchall()
    assert sorted(rows) == sorted([(past, "done", True), (overdue, "done", True)])
