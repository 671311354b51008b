"""Triggers on public.meetings keep exactly one pg_cron job per upcoming meeting."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from clock_helpers import future_on
from pg_helpers import (
    Conn,
    expected_schedule,
    insert_meeting,
    job_command,
    job_name,
    meeting_jobs,
    reconcile_job_inactive,
    run_command,
    status_of,
)

UTC = timezone.utc
FUTURE = future_on(3, 14, 9, 26)  # 14 March, 09:26 UTC, at least 30 days ahead
YEAR = FUTURE.year
BULK_START = future_on(1, 1)  # 1 January, 00:00 UTC


def command_of(conn: Conn, meeting_id: object) -> str:
    row = conn.execute(
        "select command from cron.job where jobname = %s", (job_name(meeting_id),)
    ).fetchone()
    assert row is not None, f"no job for meeting {meeting_id}"
    return str(row[0])


def test_insert_registers_one_job_with_name_schedule_and_command(db: Conn) -> None:
    """An upcoming meeting gets one job: meeting-status-<id>, its end minute, completing it."""
    meeting_id, status = insert_meeting(db, FUTURE)
    assert status == "upcoming"
    jobs = meeting_jobs(db)
    assert list(jobs) == [job_name(meeting_id)]
    schedule, command = jobs[job_name(meeting_id)]
    assert schedule == "26 9 14 3 *"
    assert command == job_command(meeting_id)


@pytest.mark.parametrize(
    ("end_time", "schedule"),
    [
        ("03-14 09:26:00+00", "26 9 14 3 *"),  # exactly on the minute: that minute
        ("03-14 09:26:00.000001+00", "27 9 14 3 *"),  # a microsecond later: round up
        ("03-14 09:26:01+00", "27 9 14 3 *"),  # :01 rounds up
        ("03-14 09:26:59.5+00", "27 9 14 3 *"),
        ("03-14 23:59:30+00", "0 0 15 3 *"),  # rounds into the next day
        ("12-31 23:59:01+00", "0 0 1 1 *"),  # and the next year
        ("03-14 15:00:00+05:30", "30 9 14 3 *"),  # non-UTC offsets are converted
        ("03-14 05:56:30-03:30", "27 9 14 3 *"),
    ],
)
def test_schedule_is_first_utc_minute_at_or_after_end_time(
    db: Conn, end_time: str, schedule: str
) -> None:
    """The schedule is the first UTC minute at or after end_time, never earlier."""
    end_time = f"{YEAR}-{end_time}"  # the parameters are month-day and time of FUTURE's year
    meeting_id, _ = insert_meeting(db, end_time)
    assert meeting_jobs(db)[job_name(meeting_id)][0] == schedule


@pytest.mark.parametrize("session_tz", ["Asia/Kolkata", "America/St_Johns", "Pacific/Chatham"])
def test_schedule_ignores_session_timezone(db: Conn, session_tz: str) -> None:
    """Whatever the session's TimeZone, schedules are in UTC (as pg_cron 1.4 reads them)."""
    db.execute(f"set timezone = '{session_tz}'")
    end_times = [FUTURE + timedelta(seconds=s) for s in (0, 1, 59, 3600 * 13 + 30)]
    ids = [insert_meeting(db, f"{YEAR}-03-14 09:26:00Z")[0]]  # text parsed in the session zone
    ids += [insert_meeting(db, t)[0] for t in end_times]
    jobs = meeting_jobs(db)
    assert jobs[job_name(ids[0])][0] == "26 9 14 3 *"
    for meeting_id, end_time in zip(ids[1:], end_times, strict=True):
        assert jobs[job_name(meeting_id)][0] == expected_schedule(end_time)
    # a wall-clock literal without offset is read in the session zone, then converted
    local_id, _ = insert_meeting(db, f"{YEAR}-03-14 09:26:00")
    (local_end,) = db.execute("select end_time from meetings where id = %s", (local_id,)).fetchone()
    assert meeting_jobs(db)[job_name(local_id)][0] == expected_schedule(local_end)


def test_moving_end_time_keeps_one_job_with_new_schedule(db: Conn) -> None:
    meeting_id, _ = insert_meeting(db, FUTURE)
    (job_id,) = db.execute(
        "select jobid from cron.job where jobname = %s", (job_name(meeting_id),)
    ).fetchone()
    db.execute(
        "update meetings set end_time = %s where id = %s",
        (FUTURE + timedelta(hours=2, seconds=1), meeting_id),
    )
    jobs = db.execute(
        "select jobid, schedule from cron.job where jobname = %s", (job_name(meeting_id),)
    ).fetchall()
    assert jobs == [(job_id, "27 11 14 3 *")]
    assert list(meeting_jobs(db)) == [job_name(meeting_id)]


def test_unrelated_update_leaves_job_alone(db: Conn) -> None:
    meeting_id, _ = insert_meeting(db, FUTURE)
    before = meeting_jobs(db)
    db.execute("update meetings set title = 'renamed' where id = %s", (meeting_id,))
    assert meeting_jobs(db) == before


@pytest.mark.parametrize("new_status", ["done", "cancelled"])
def test_status_change_removes_job_and_return_to_upcoming_restores_it(
    db: Conn, new_status: str
) -> None:
    meeting_id, _ = insert_meeting(db, FUTURE)
    db.execute("update meetings set status = %s where id = %s", (new_status, meeting_id))
    assert meeting_jobs(db) == {}
    db.execute("update meetings set status = 'upcoming' where id = %s", (meeting_id,))
    assert meeting_jobs(db)[job_name(meeting_id)][0] == expected_schedule(FUTURE)
    assert len(meeting_jobs(db)) == 1


def test_delete_removes_job(db: Conn) -> None:
    keep, _ = insert_meeting(db, FUTURE)
    gone, _ = insert_meeting(db, FUTURE + timedelta(minutes=5))
    db.execute("delete from meetings where id = %s", (gone,))
    assert list(meeting_jobs(db)) == [job_name(keep)]


def test_past_end_time_on_insert_is_done_without_job(db: Conn) -> None:
    _meeting_id, status = insert_meeting(db, datetime.now(UTC) - timedelta(seconds=1))
    assert status == "done"
    assert meeting_jobs(db) == {}


def test_moving_end_time_into_the_past_completes_at_once(db: Conn) -> None:
    meeting_id, _ = insert_meeting(db, FUTURE)
    db.execute(
        "update meetings set end_time = now() - interval '5 minutes' where id = %s", (meeting_id,)
    )
    assert status_of(db, meeting_id) == "done"
    assert meeting_jobs(db) == {}


@pytest.mark.parametrize("status", ["done", "cancelled"])
def test_insert_not_upcoming_registers_nothing(db: Conn, status: str) -> None:
    _, stored = insert_meeting(db, FUTURE, status=status)
    assert stored == status
    assert meeting_jobs(db) == {}


def test_bulk_insert_of_10000_rows_registers_10000_jobs(db: Conn) -> None:
    """One INSERT ... SELECT of 10,000 rows: one job per meeting, each with its own schedule."""
    db.execute(
        "insert into meetings (title, end_time) "
        "select 'bulk ' || i, %s::timestamptz + i * interval '17 seconds' "
        "from generate_series(1, 10000) i",
        (BULK_START,),
    )
    rows = db.execute("select id, end_time from meetings").fetchall()
    jobs = meeting_jobs(db)
    assert len(rows) == 10000
    assert len(jobs) == 10000
    for meeting_id, end_time in rows:
        assert jobs[job_name(meeting_id)][0] == expected_schedule(end_time)


def test_bulk_update_moves_cancels_and_completes_as_a_set(db: Conn) -> None:
    """One UPDATE of many rows re-registers, unschedules and completes correctly."""
    db.execute(
        "insert into meetings (title, end_time) "
        "select 'b' || i, %s::timestamptz + i * interval '1 minute' "
        "from generate_series(1, 3000) i",
        (BULK_START,),
    )
    db.execute("update meetings set end_time = end_time + interval '1 day 30 seconds'")
    db.execute("update meetings set status = 'cancelled' where right(title, 1) = '1'")
    db.execute(
        "update meetings set end_time = now() - interval '1 hour' where right(title, 1) = '2'"
    )
    rows = db.execute("select id, end_time, status from meetings").fetchall()
    jobs = meeting_jobs(db)
    upcoming = {job_name(i): expected_schedule(t) for i, t, s in rows if s == "upcoming"}
    assert len(upcoming) == 2400
    assert {name: schedule for name, (schedule, _) in jobs.items()} == upcoming
    assert sum(1 for _, _, s in rows if s == "done") == 300


def test_changing_meeting_id_moves_its_job(db: Conn) -> None:
    old_id, _ = insert_meeting(db, FUTURE)
    new_id = uuid.uuid4()
    db.execute("update meetings set id = %s where id = %s", (new_id, old_id))
    assert list(meeting_jobs(db)) == [job_name(new_id)]


@pytest.fixture
def no_reconcile_job(db: Conn) -> Iterator[None]:
    """The reconcile job inactive (and no run of it in progress): it completes overdue meetings
    and removes orphan jobs every minute, so with it active a test of a job's command could
    pass on its work. Reactivated afterwards."""
    with reconcile_job_inactive(db):
        yield


def completion_paths(db: Conn) -> list[tuple[object, str]]:
    """(meeting id, path) of every completion event: which path completed which meeting."""
    return db.execute(
        "select meeting_id, path from scheduler.completion_events order by meeting_id"
    ).fetchall()


def make_overdue_with_job(db: Conn, meeting_id: object) -> None:
    """Move an upcoming meeting's end time into the past without firing the triggers."""
    db.execute("set session_replication_role = replica")
    try:
        db.execute(
            "update meetings set end_time = now() - interval '1 minute' where id = %s",
            (meeting_id,),
        )
    finally:
        db.execute("set session_replication_role = origin")


def test_job_command_before_end_time_changes_nothing(db: Conn) -> None:
    """A run before end_time (a yearly repeat, an early tick) leaves meeting and job as they were."""
    meeting_id, _ = insert_meeting(db, datetime.now(UTC) + timedelta(days=400))
    jobs = meeting_jobs(db)
    run_command(db, command_of(db, meeting_id))
    assert status_of(db, meeting_id) == "upcoming"
    assert meeting_jobs(db) == jobs


def test_job_command_after_end_time_completes_and_removes_job(
    db: Conn, no_reconcile_job: None
) -> None:
    """The job's command completes its overdue meeting (it says so: 1 completed, path job) and
    its job goes; the other meeting and its job stay."""
    meeting_id, _ = insert_meeting(db, FUTURE)
    other_id, _ = insert_meeting(db, FUTURE + timedelta(days=1))
    command = command_of(db, meeting_id)
    make_overdue_with_job(db, meeting_id)
    assert status_of(db, meeting_id) == "upcoming"  # nothing completed it before the command
    assert run_command(db, command) == 1
    assert status_of(db, meeting_id) == "done"
    assert completion_paths(db) == [(meeting_id, "job")]
    assert status_of(db, other_id) == "upcoming"
    assert list(meeting_jobs(db)) == [job_name(other_id)]


def test_job_command_completes_every_due_meeting_together(db: Conn, no_reconcile_job: None) -> None:
    """One run completes all meetings already due, so a busy minute finishes in one run."""
    due = [insert_meeting(db, FUTURE + timedelta(seconds=i))[0] for i in range(5)]
    later, _ = insert_meeting(db, FUTURE + timedelta(days=30))
    for meeting_id in due:
        make_overdue_with_job(db, meeting_id)
    assert [status_of(db, m) for m in due] == ["upcoming"] * 5
    assert run_command(db, command_of(db, due[0])) == 5  # one run, all five
    assert [status_of(db, m) for m in due] == ["done"] * 5
    assert completion_paths(db) == sorted((m, "job") for m in due)
    assert list(meeting_jobs(db)) == [job_name(later)]


def test_job_of_a_missing_meeting_removes_itself(db: Conn, no_reconcile_job: None) -> None:
    """A job whose meeting does not exist removes itself when it runs (the reconcile job, which
    also removes such orphans, is kept out)."""
    ghost = uuid.uuid4()
    db.execute(
        "select cron.schedule(scheduler.job_name(%s), '0 0 1 1 *', scheduler.job_command(%s))",
        (ghost, ghost),
    )
    command = command_of(db, ghost)
    assert list(meeting_jobs(db)) == [job_name(ghost)]
    assert run_command(db, command) == 0  # nothing to complete: it only removed its job
    assert meeting_jobs(db) == {}


def test_paused_triggers_register_nothing_and_jobs_change_nothing(db: Conn) -> None:
    kept, _ = insert_meeting(db, FUTURE)
    db.execute("update scheduler.settings set enabled = false")
    paused, _ = insert_meeting(db, FUTURE + timedelta(minutes=1))
    assert list(meeting_jobs(db)) == [job_name(kept)]
    make_overdue_with_job(db, kept)
    run_command(db, command_of(db, kept))
    assert status_of(db, kept) == "upcoming"
    db.execute("delete from meetings where id = %s", (kept,))  # unscheduling still works
    assert meeting_jobs(db) == {}
    assert status_of(db, paused) == "upcoming"


def snapshot(db: Conn) -> list[tuple[object, ...]]:
    return [
        *db.execute("select id, title, end_time, status from meetings order by id").fetchall(),
        tuple(sorted(meeting_jobs(db).items())),
    ]


@pytest.mark.parametrize(
    ("sql", "params", "error", "message"),
    [
        (
            "insert into meetings (title, end_time) values ('x', %s)",
            (None,),
            psycopg.errors.NotNullViolation,
            "end_time is required",
        ),
        (
            "insert into meetings (title) values (%s)",
            ("no end time",),
            psycopg.errors.NotNullViolation,
            "end_time is required",
        ),
        (
            "insert into meetings (title, end_time, status) values ('x', %s, 'maybe')",
            (FUTURE,),
            psycopg.errors.CheckViolation,
            'violates check constraint "meetings_status_check"',  # the table's, not ours
        ),
        (
            "insert into meetings (title, end_time, status) values ('x', %s, null)",
            (FUTURE,),
            psycopg.errors.NotNullViolation,
            'null value in column "status"',
        ),
        (
            "insert into meetings (title, end_time) values ('x', %s::text::timestamptz)",
            ("next tuesday-ish",),
            psycopg.errors.InvalidDatetimeFormat,
            "invalid input syntax for type timestamp with time zone",
        ),
        (
            "update meetings set status = 'postponed'",
            None,
            psycopg.errors.CheckViolation,
            'violates check constraint "meetings_status_check"',
        ),
        (
            "update meetings set end_time = null",
            None,
            psycopg.errors.NotNullViolation,
            "end_time is required",
        ),
    ],
)
def test_bad_input_is_rejected_clearly_and_changes_nothing(
    db: Conn, sql: str, params: tuple[object, ...] | None, error: type[Exception], message: str
) -> None:
    insert_meeting(db, FUTURE)
    insert_meeting(db, FUTURE + timedelta(hours=1))
    before = snapshot(db)
    with pytest.raises(error) as info:
        db.execute(sql, params)
    assert message in str(info.value)
    assert snapshot(db) == before


def test_set_based_registration_stores_what_cron_schedule_stores(db: Conn) -> None:
    """The direct INSERT path (owner may write cron.job) equals a cron.schedule call, column by column."""
    meeting_id, _ = insert_meeting(db, FUTURE)
    columns = "schedule, command, nodename, nodeport, database, username, jobname, active"
    has_active = db.execute(
        "select count(*) from pg_attribute where attrelid = 'cron.job'::regclass "
        "and attname = 'active'"
    ).fetchone() == (1,)
    if not has_active:
        columns = columns.replace(", active", "")
    query = f"select {columns} from cron.job where jobname = %s"
    direct = db.execute(query, (job_name(meeting_id),)).fetchall()
    db.execute("select cron.unschedule(%s)", (job_name(meeting_id),))
    db.execute(
        "select cron.schedule(%s, scheduler.cron_schedule(%s), scheduler.job_command(%s))",
        (job_name(meeting_id), FUTURE, meeting_id),
    )
    assert db.execute(query, (job_name(meeting_id),)).fetchall() == direct
