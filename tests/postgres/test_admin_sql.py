"""Admin SQL functions in schema scheduler, on the real server: recover, reconcile (and its job),
schedule_meeting, cancel_meeting, pause, resume, list_jobs, next_run, history, health.

The reconcile job runs every minute while these tests run. A test that builds a broken state and
then checks what a function reports does both inside one transaction that holds the repair lock
(``exclusive``): the reconcile job sees none of the uncommitted state and skips while the lock is
held, so its runs cannot change what the test measures.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from clock_helpers import future_on
from pg_helpers import (
    JOB_PATTERN,
    RECONCILE_COMMAND,
    Conn,
    expected_schedule,
    insert_meeting,
    job_command,
    job_name,
    meeting_jobs,
    status_of,
    sweep_supported,
)

UTC = timezone.utc
FUTURE = future_on(3, 14, 9, 26)  # 14 March, 09:26 UTC, at least 30 days ahead
LOAD_START = future_on(1, 1)  # 1 January, 00:00 UTC
RECONCILE_JOB = "meeting-status-reconcile"
# the row of scheduler.locks recover() and reconcile() lock (0009; only the owner may)
REPAIR_LOCK = "select scheduler.take_lock('repair', true)"
REPORT_KEYS = {
    "total_meetings",
    "jobs_scheduled",
    "jobs_already_exist",
    "overdue_completed",
    "orphans_removed",
    "errors",
    "success",
    "dry_run",
}


# -- helpers ------------------------------------------------------------------------------------


def value(conn: Conn, sql: str, params: tuple[object, ...] | None = None) -> Any:
    """The single value of a one-row, one-column query."""
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


@contextmanager
def exclusive(conn: Conn, *, rollback: bool = False) -> Iterator[None]:
    """A transaction holding the lock recover() and reconcile() take: the reconcile job skips
    while it is open and cannot see its uncommitted changes. Rolled back when asked."""
    with conn.transaction():
        conn.execute(REPAIR_LOCK)
        yield
        if rollback:
            raise psycopg.Rollback()


def drain(conn: Conn) -> None:
    """Wait for a reconcile run in progress (if any) to finish."""
    with exclusive(conn):
        pass


@contextmanager
def triggers_off(conn: Conn) -> Iterator[None]:
    """Write without firing the triggers, as pg_restore and logical replication do."""
    conn.execute("set session_replication_role = replica")
    try:
        yield
    finally:
        conn.execute("set session_replication_role = origin")


def our_jobs(conn: Conn) -> list[tuple[object, ...]]:
    """Every pg_cron job of ours, all columns that matter, in a stable order."""
    return conn.execute(
        "select jobid, jobname, schedule, command, username, active from cron.job "
        "where jobname ~ %s or jobname = %s order by jobid",
        (JOB_PATTERN, RECONCILE_JOB),
    ).fetchall()


def meeting_rows(conn: Conn) -> list[tuple[object, ...]]:
    return conn.execute(
        "select id, title, end_time, status, updated_at from meetings order by id"
    ).fetchall()


def snapshot(conn: Conn) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    return meeting_rows(conn), our_jobs(conn)


def orphan_job(conn: Conn) -> uuid.UUID:
    """A job of ours for a meeting that does not exist."""
    ghost = uuid.uuid4()
    conn.execute(
        "select cron.schedule(scheduler.job_name(%s), '0 0 1 1 *', scheduler.job_command(%s))",
        (ghost, ghost),
    )
    return ghost


def report(
    total: int,
    scheduled: int,
    exist: int,
    overdue: int,
    orphans: int,
    *,
    dry_run: bool = False,
) -> dict[str, object]:
    return {
        "total_meetings": total,
        "jobs_scheduled": scheduled,
        "jobs_already_exist": exist,
        "overdue_completed": overdue,
        "orphans_removed": orphans,
        "errors": [],
        "success": True,
        "dry_run": dry_run,
    }


def upcoming_schedules(conn: Conn) -> dict[str, str]:
    """What the jobs should be: job name -> schedule of every upcoming meeting."""
    rows = conn.execute("select id, end_time from meetings where status = 'upcoming'").fetchall()
    return {job_name(i): expected_schedule(t) for i, t in rows}


def job_schedules(conn: Conn) -> dict[str, str]:
    return {name: schedule for name, (schedule, _) in meeting_jobs(conn).items()}


def build_broken_state(conn: Conn) -> dict[str, Any]:
    """Every kind of damage recovery repairs, next to healthy meetings. Expected repair:
    total 8 upcoming; 3 jobs already right; 3 to schedule (2 missing, 1 stale schedule);
    2 overdue to complete (one with a job, one without); 2 orphan jobs to remove."""
    now = datetime.now(UTC)
    ids: dict[str, Any] = {}
    ids["healthy"] = [insert_meeting(conn, FUTURE + timedelta(hours=i))[0] for i in range(3)]
    ids["moved"] = insert_meeting(conn, FUTURE + timedelta(days=2))[0]
    ids["overdue_with_job"] = insert_meeting(conn, FUTURE + timedelta(days=3))[0]
    ids["done_with_job"] = insert_meeting(conn, FUTURE + timedelta(days=4))[0]
    ids["untouched"] = [
        insert_meeting(conn, FUTURE, status="done")[0],
        insert_meeting(conn, FUTURE, status="cancelled")[0],
    ]
    with triggers_off(conn):
        ids["missing"] = [
            insert_meeting(conn, FUTURE + timedelta(days=1, seconds=61 * i))[0] for i in range(2)
        ]
        ids["overdue_no_job"] = insert_meeting(conn, now - timedelta(hours=1))[0]
        conn.execute(
            "update meetings set end_time = %s where id = %s",
            (FUTURE + timedelta(days=5, seconds=30), ids["moved"]),
        )
        conn.execute(
            "update meetings set end_time = now() - interval '10 minutes' where id = %s",
            (ids["overdue_with_job"],),
        )
        conn.execute("update meetings set status = 'done' where id = %s", (ids["done_with_job"],))
    ids["ghost"] = orphan_job(conn)
    return ids


def assert_repaired(conn: Conn, ids: dict[str, Any]) -> None:
    """After recovery: one right job per upcoming meeting, overdue ones done, no orphan."""
    schedules = upcoming_schedules(conn)
    assert len(schedules) == 6
    assert job_schedules(conn) == schedules
    assert job_schedules(conn)[job_name(ids["moved"])] == expected_schedule(
        FUTURE + timedelta(days=5, seconds=30)
    )
    for meeting_id, (_, command) in meeting_jobs(conn).items():
        assert command == job_command(meeting_id[15:])
    assert status_of(conn, ids["overdue_with_job"]) == "done"
    assert status_of(conn, ids["overdue_no_job"]) == "done"
    assert status_of(conn, ids["done_with_job"]) == "done"
    assert [status_of(conn, i) for i in ids["untouched"]] == ["done", "cancelled"]


def insert_run(
    conn: Conn,
    command: str,
    *,
    status: str = "succeeded",
    message: str | None = "1 row",
    ended_ago: str | None = "1 hour",
    username: str | None = None,
    jobid: int | None = None,
) -> int:
    """A row in cron.job_run_details as pg_cron writes it (we are superuser); returns its runid.
    ended_ago None leaves start_time and end_time null (a run dropped before it started)."""
    return int(
        value(
            conn,
            "insert into cron.job_run_details "
            "  (jobid, job_pid, database, username, command, status, return_message, "
            "   start_time, end_time) "
            "values (%s, 4242, current_database(), coalesce(%s, current_user), %s, %s, %s, "
            "        now() - %s::interval - interval '1 second', now() - %s::interval) "
            "returning runid",
            (jobid, username, command, status, message, ended_ago, ended_ago),
        )
    )


def completion(meeting_id: object) -> str:
    return job_command(meeting_id)


def run_ids(conn: Conn, runids: list[int]) -> set[int]:
    return {
        r
        for (r,) in conn.execute(
            "select runid from cron.job_run_details where runid = any(%s)", (runids,)
        ).fetchall()
    }


def next_yearly(month: int, day: int, hour: int, minute: int, after: datetime) -> datetime:
    """Next firing at or after `after` of the five-field schedule "minute hour day month *"."""
    for year in range(after.year, after.year + 9):
        try:
            candidate = datetime(year, month, day, hour, minute, tzinfo=UTC)
        except ValueError:  # 29 February of a common year
            continue
        if candidate >= after:
            return candidate
    raise AssertionError("no firing within 8 years")


def first_minute_at_or_after(t: datetime) -> datetime:
    minute = t.astimezone(UTC).replace(second=0, microsecond=0)
    return minute if minute == t else minute + timedelta(minutes=1)


# -- recover() ----------------------------------------------------------------------------------


def test_recover_reports_exact_counts_and_repairs_everything(db: Conn) -> None:
    """recover() completes overdue upcoming meetings, registers missing jobs, re-registers a job
    whose schedule no longer matches end_time, removes orphan jobs (meeting gone or not
    upcoming), and reports each count; done and cancelled meetings are not counted."""
    with exclusive(db):
        ids = build_broken_state(db)
        (moved_jobid,) = db.execute(
            "select jobid from cron.job where jobname = %s", (job_name(ids["moved"]),)
        ).fetchone()
        result = value(db, "select scheduler.recover()")
        assert set(result) == REPORT_KEYS
        assert result == report(total=8, scheduled=3, exist=3, overdue=2, orphans=2)
        assert_repaired(db, ids)
        # the stale job was updated in place, not duplicated
        assert db.execute(
            "select jobid from cron.job where jobname = %s", (job_name(ids["moved"]),)
        ).fetchall() == [(moved_jobid,)]


def test_recover_is_idempotent(db: Conn) -> None:
    """A second recover() finds every job in place: it schedules, completes and removes nothing,
    and changes no row."""
    with exclusive(db):
        build_broken_state(db)
        value(db, "select scheduler.recover()")
    with exclusive(db):
        before = snapshot(db)
        assert value(db, "select scheduler.recover()") == report(6, 0, 6, 0, 0)
        assert value(db, "select scheduler.recover(false)") == report(6, 0, 6, 0, 0)
        assert snapshot(db) == before


def test_recover_dry_run_changes_nothing_and_predicts_the_real_run(db: Conn) -> None:
    """recover(true) writes nothing (meetings and cron.job identical) and reports exactly the
    counts that the real run then produces, with dry_run true."""
    with exclusive(db):
        ids = build_broken_state(db)
        before = snapshot(db)
        dry = value(db, "select scheduler.recover(true)")
        assert snapshot(db) == before
        assert value(db, "select scheduler.recover(p_dry_run => true)") == dry
        real = value(db, "select scheduler.recover()")
        assert dry == report(8, 3, 3, 2, 2, dry_run=True)
        assert {**dry, "dry_run": False} == real
        assert_repaired(db, ids)


def test_recover_after_replica_mode_load_of_1000_meetings(db: Conn) -> None:
    """Meetings loaded with the triggers off (session_replication_role = replica, as pg_restore
    does) have no job and may be overdue: recover() registers a job for each future one and
    completes each past one."""
    with exclusive(db):
        with triggers_off(db):
            db.execute(
                "insert into meetings (title, end_time) "
                "select 'load ' || i, case when i %% 8 = 0 then now() - i * interval '1 minute' "
                "  else %s::timestamptz + i * interval '17 seconds' end "
                "from generate_series(1, 1000) i",
                (LOAD_START,),
            )
        assert meeting_jobs(db) == {}
        assert value(db, "select count(*) from meetings where status = 'upcoming'") == 1000
        result = value(db, "select scheduler.recover()")
        assert result == report(total=1000, scheduled=875, exist=0, overdue=125, orphans=0)
        counts = dict(db.execute("select status, count(*) from meetings group by 1").fetchall())
        assert counts == {"upcoming": 875, "done": 125}
        assert (
            value(db, "select count(*) from meetings where status = 'done' and end_time > now()")
            == 0
        )
        schedules = upcoming_schedules(db)
        assert len(schedules) == 875
        assert job_schedules(db) == schedules


def test_recover_while_paused_is_refused_with_a_hint_to_resume(db: Conn) -> None:
    """While paused, recover() raises (object_not_in_prerequisite_state) with a hint naming
    resume, and changes nothing; a dry run is still allowed and reports what it would do."""
    db.execute("select scheduler.pause()")
    insert_meeting(db, FUTURE)  # paused: no job
    drain(db)
    before = snapshot(db)
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as info:
        db.execute("select scheduler.recover()")
    assert "paused" in str(info.value)
    assert info.value.diag.message_hint is not None
    assert "resume" in info.value.diag.message_hint
    assert snapshot(db) == before
    assert value(db, "select scheduler.recover(true)") == report(1, 1, 0, 0, 0, dry_run=True)
    assert snapshot(db) == before


# -- reconcile() --------------------------------------------------------------------------------


def test_reconcile_repairs_like_recover(db: Conn) -> None:
    """reconcile() makes the same repairs as recover() and reports the same counts, plus
    history_deleted and the state of the seconds sweep (off here: the tests' reset turns it
    off where pg_cron has seconds)."""
    sweep = "off" if sweep_supported(db) else "unsupported"
    with exclusive(db):
        ids = build_broken_state(db)
        result = value(db, "select scheduler.reconcile()")
        assert result == {
            **report(8, 3, 3, 2, 2),
            "history_deleted": 0,
            "events_deleted": 0,
            "sweep": sweep,
        }
        assert_repaired(db, ids)
        assert value(db, "select scheduler.reconcile()") == {
            **report(6, 0, 6, 0, 0),
            "history_deleted": 0,
            "events_deleted": 0,
            "sweep": sweep,
        }


def test_reconcile_deletes_only_our_history_older_than_the_retention(db: Conn) -> None:
    """reconcile() deletes our own rows in cron.job_run_details (meeting jobs and the reconcile
    job) that ended longer ago than scheduler.settings.history_retention (default 7 days); it
    keeps recent rows, other jobs' rows and other users' rows."""
    meeting = uuid.uuid4()
    with exclusive(db, rollback=True):  # rolled back: the retention setting is restored
        assert value(db, "select history_retention from scheduler.settings") == timedelta(days=7)
        old_ours = insert_run(db, completion(meeting), ended_ago="8 days")
        old_reconcile = insert_run(db, RECONCILE_COMMAND, ended_ago="7 days 1 minute")
        six_days = insert_run(db, completion(meeting), ended_ago="6 days")
        recent_reconcile = insert_run(db, RECONCILE_COMMAND, ended_ago="1 hour")
        other_job = insert_run(db, "select 42", ended_ago="30 days")
        other_failed = insert_run(db, "select 42", status="failed", message="x", ended_ago="9 days")
        other_user = insert_run(db, completion(meeting), ended_ago="30 days", username="someone")
        mine = [
            old_ours,
            old_reconcile,
            six_days,
            recent_reconcile,
            other_job,
            other_failed,
            other_user,
        ]
        kept = {six_days, recent_reconcile, other_job, other_failed, other_user}

        result = value(db, "select scheduler.reconcile()")
        assert result["history_deleted"] == 2
        assert run_ids(db, mine) == kept

        db.execute("update scheduler.settings set history_retention = interval '1 day'")
        assert value(db, "select scheduler.reconcile()")["history_deleted"] == 1
        assert run_ids(db, mine) == kept - {six_days}


def test_reconcile_while_paused_returns_paused_and_changes_nothing(db: Conn) -> None:
    """Paused, reconcile() returns exactly {"paused": true}: no completion, no registration, no
    orphan removal, no history deletion."""
    assert value(db, "select scheduler.pause()") == {"enabled": False}
    drain(db)
    with triggers_off(db):
        overdue, _ = insert_meeting(db, datetime.now(UTC) - timedelta(hours=1))
        insert_meeting(db, FUTURE)
    orphan_job(db)
    old_run = insert_run(db, completion(overdue), ended_ago="30 days")
    before = snapshot(db)
    assert value(db, "select scheduler.reconcile()") == {"paused": True}
    assert snapshot(db) == before
    assert status_of(db, overdue) == "upcoming"
    assert run_ids(db, [old_run]) == {old_run}


# -- the reconcile job --------------------------------------------------------------------------


def test_reconcile_job_exists_after_migration(db: Conn) -> None:
    """The migration registers one active job meeting-status-reconcile, every minute, owned by
    the migrating role, running select scheduler.reconcile()."""
    rows = db.execute(
        "select schedule, command, username = current_user, active from cron.job "
        "where jobname = %s",
        (RECONCILE_JOB,),
    ).fetchall()
    assert rows == [("* * * * *", RECONCILE_COMMAND, True, True)]


# The reconcile job's own runs (after an outage, after a load with the triggers off) wait for
# real ticks: tests/postgres/test_pg_cron_tick.py, where they share ticks with the other tests
# that wait for one.


# -- schedule_meeting() and cancel_meeting() ----------------------------------------------------


def test_schedule_meeting_unknown_id_raises_no_data_found(db: Conn) -> None:
    """An unknown meeting id raises no_data_found (P0002) 'no meeting with id ...'; nothing
    changes."""
    insert_meeting(db, FUTURE)
    before = snapshot(db)
    unknown = uuid.uuid4()
    with pytest.raises(psycopg.errors.NoDataFound) as info:
        db.execute("select scheduler.schedule_meeting(%s, %s)", (unknown, FUTURE))
    assert info.value.sqlstate == "P0002"
    assert f"no meeting with id {unknown}" in str(info.value)
    assert snapshot(db) == before


@pytest.mark.parametrize("status", ["done", "cancelled"])
def test_schedule_meeting_not_upcoming_raises_invalid_parameter(db: Conn, status: str) -> None:
    """A meeting that is not upcoming cannot be scheduled (invalid_parameter_value); its row and
    the jobs are unchanged."""
    meeting_id, _ = insert_meeting(db, FUTURE, status=status)
    before = snapshot(db)
    with pytest.raises(psycopg.errors.InvalidParameterValue) as info:
        db.execute(
            "select scheduler.schedule_meeting(%s, %s)", (meeting_id, FUTURE + timedelta(days=1))
        )
    assert "not upcoming" in str(info.value)
    assert snapshot(db) == before


def test_schedule_meeting_null_end_time_is_rejected(db: Conn) -> None:
    """A null end time raises invalid_parameter_value and changes nothing."""
    meeting_id, _ = insert_meeting(db, FUTURE)
    before = snapshot(db)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="end_time is required"):
        db.execute("select scheduler.schedule_meeting(%s, null)", (meeting_id,))
    assert snapshot(db) == before


def test_schedule_meeting_moves_end_time_and_job_and_returns_the_job(db: Conn) -> None:
    """schedule_meeting sets end_time, keeps one job whose schedule is the new end minute, and
    returns the meeting's status and its list_jobs row."""
    meeting_id, _ = insert_meeting(db, FUTURE)
    (job_id,) = db.execute(
        "select jobid from cron.job where jobname = %s", (job_name(meeting_id),)
    ).fetchone()
    new_end = value(db, "select now()") + timedelta(days=30, hours=2, seconds=30)
    result = value(db, "select scheduler.schedule_meeting(%s, %s)", (meeting_id, new_end))
    assert value(db, "select end_time from meetings where id = %s", (meeting_id,)) == new_end
    assert meeting_jobs(db) == {
        job_name(meeting_id): (expected_schedule(new_end), completion(meeting_id))
    }
    assert result["meeting_id"] == str(meeting_id)
    assert result["status"] == "upcoming"
    job = result["job"]
    assert set(job) == {
        "meeting_id", "job_id", "job_name", "schedule", "next_run", "end_time",
        "meeting_status", "active", "transition", "key",
    }  # fmt: skip
    assert job["meeting_id"] == str(meeting_id)
    assert job["job_id"] == job_id
    assert job["job_name"] == job_name(meeting_id)
    assert job["schedule"] == expected_schedule(new_end)
    assert datetime.fromisoformat(job["next_run"]) == first_minute_at_or_after(new_end)
    assert datetime.fromisoformat(job["end_time"]) == new_end
    assert job["meeting_status"] == "upcoming"
    assert job["active"] is True


def test_schedule_meeting_registers_a_missing_job(db: Conn) -> None:
    """With the same end time and no job (loaded with triggers off), schedule_meeting registers
    the job."""
    with exclusive(db):
        with triggers_off(db):
            meeting_id, _ = insert_meeting(db, FUTURE)
        assert meeting_jobs(db) == {}
        result = value(db, "select scheduler.schedule_meeting(%s, %s)", (meeting_id, FUTURE))
        assert result["job"]["schedule"] == "26 9 14 3 *"
        assert job_schedules(db) == {job_name(meeting_id): "26 9 14 3 *"}


def test_schedule_meeting_in_the_past_completes_it(db: Conn) -> None:
    """An end time already past makes the meeting done at once, with no job; job is null."""
    meeting_id, _ = insert_meeting(db, FUTURE)
    past = datetime.now(UTC) - timedelta(minutes=5)
    result = value(db, "select scheduler.schedule_meeting(%s, %s)", (meeting_id, past))
    assert result == {"meeting_id": str(meeting_id), "status": "done", "job": None}
    assert status_of(db, meeting_id) == "done"
    assert value(db, "select end_time from meetings where id = %s", (meeting_id,)) == past
    assert meeting_jobs(db) == {}


def test_cancel_meeting_unknown_id_raises_no_data_found(db: Conn) -> None:
    """cancel_meeting of an unknown id raises no_data_found and changes nothing."""
    insert_meeting(db, FUTURE)
    before = snapshot(db)
    unknown = uuid.uuid4()
    with pytest.raises(psycopg.errors.NoDataFound, match=f"no meeting with id {unknown}"):
        db.execute("select scheduler.cancel_meeting(%s)", (unknown,))
    assert snapshot(db) == before


def test_cancel_meeting_cancels_an_upcoming_meeting_and_removes_its_job(db: Conn) -> None:
    """An upcoming meeting becomes cancelled, its job is removed (jobs_removed 1), other
    meetings keep theirs."""
    meeting_id, _ = insert_meeting(db, FUTURE)
    other_id, _ = insert_meeting(db, FUTURE + timedelta(hours=1))
    result = value(db, "select scheduler.cancel_meeting(%s)", (meeting_id,))
    assert result == {"meeting_id": str(meeting_id), "status": "cancelled", "jobs_removed": 1}
    assert status_of(db, meeting_id) == "cancelled"
    assert list(meeting_jobs(db)) == [job_name(other_id)]


def test_cancel_meeting_not_upcoming_is_refused_naming_its_status(db: Conn) -> None:
    """A meeting already done is not cancelled: invalid_parameter_value naming its status, with
    what to do; nothing changes (a job left over for it stays for the reconcile job)."""
    meeting_id, _ = insert_meeting(db, FUTURE)
    with exclusive(db), triggers_off(db):
        db.execute("update meetings set status = 'done' where id = %s", (meeting_id,))
    with pytest.raises(psycopg.errors.InvalidParameterValue) as refused:
        db.execute("select scheduler.cancel_meeting(%s)", (meeting_id,))
    assert refused.value.diag.message_primary == (
        f"meeting {meeting_id} is done, not upcoming: nothing to cancel"
    )
    assert refused.value.diag.message_hint == (
        "Only a meeting in status upcoming can be cancelled. A job left over for another one "
        "goes with the next reconcile (scheduler-admin reconcile)."
    )
    assert status_of(db, meeting_id) == "done"
    assert list(meeting_jobs(db)) == [job_name(meeting_id)]


# -- pause() and resume() -----------------------------------------------------------------------


def test_pause_registers_nothing_and_resume_recovers(db: Conn) -> None:
    """After pause() inserts register no job; resume() sets enabled back, registers their jobs,
    completes what became overdue meanwhile and returns the recover report."""
    kept, _ = insert_meeting(db, FUTURE)
    assert value(db, "select scheduler.pause()") == {"enabled": False}
    assert value(db, "select enabled from scheduler.settings") is False
    drain(db)
    paused_ids = [insert_meeting(db, FUTURE + timedelta(minutes=i))[0] for i in range(1, 4)]
    assert list(meeting_jobs(db)) == [job_name(kept)]
    with triggers_off(db):
        db.execute(
            "update meetings set end_time = now() - interval '1 hour' where id = %s", (kept,)
        )
    assert value(db, "select (scheduler.health())->>'enabled'") == "false"

    result = value(db, "select scheduler.resume()")
    assert result == report(total=4, scheduled=3, exist=0, overdue=1, orphans=0)
    assert value(db, "select enabled from scheduler.settings") is True
    assert status_of(db, kept) == "done"
    assert job_schedules(db) == {
        job_name(m): expected_schedule(FUTURE + timedelta(minutes=i))
        for i, m in enumerate(paused_ids, start=1)
    }
    # enabled again: inserts register their job at once
    again, _ = insert_meeting(db, FUTURE + timedelta(days=1))
    assert job_name(again) in meeting_jobs(db)


# -- list_jobs() and next_run() -----------------------------------------------------------------


def test_list_jobs_one_row_per_job_of_ours(db: Conn) -> None:
    """list_jobs() returns every job of ours, the reconcile job included (meeting_id null),
    ordered by next run. next_run is when pg_cron fires the job next: for a meeting ending
    within a year, the first UTC minute at or after its end_time; for one further ahead the
    yearly schedule's next firing (its command then changes nothing); an orphan job (no
    meeting) has meeting_status null and its meeting id from the job name; a job whose
    schedule no longer matches shows when it would really fire next."""
    with exclusive(db):
        now = value(db, "select now()")
        # more than a year ahead: its next run is the yearly schedule's, before its end time
        far, _ = insert_meeting(db, FUTURE.replace(year=FUTURE.year + 1) + timedelta(seconds=30))
        soon_end = now + timedelta(minutes=10, seconds=30)
        soon, _ = insert_meeting(db, soon_end)
        mid_end = now + timedelta(days=200, seconds=17)
        mid, _ = insert_meeting(db, mid_end)
        stale, _ = insert_meeting(db, FUTURE + timedelta(days=2))
        done, _ = insert_meeting(db, FUTURE + timedelta(days=1))
        with triggers_off(db):
            db.execute(
                "update meetings set end_time = now() - interval '5 minutes' where id = %s",
                (stale,),
            )
            db.execute("update meetings set status = 'done' where id = %s", (done,))
        ghost = orphan_job(db)
        rows = db.execute(
            "select meeting_id, job_id, job_name, schedule, next_run, end_time, meeting_status, "
            "active from scheduler.list_jobs()"
        ).fetchall()
        jobids = dict(
            db.execute(
                "select jobname, jobid from cron.job where jobname ~ %s or jobname = %s",
                (JOB_PATTERN, RECONCILE_JOB),
            ).fetchall()
        )

    by_name = {r[2]: r for r in rows}
    assert len(rows) == len(by_name) == len(jobids) == 7
    assert {name: r[1] for name, r in by_name.items()} == jobids
    assert by_name[RECONCILE_JOB] == (
        None, jobids[RECONCILE_JOB], RECONCILE_JOB, "* * * * *", first_minute_at_or_after(now),
        None, None, True,
    )  # fmt: skip
    assert by_name[job_name(soon)][4] == first_minute_at_or_after(soon_end)
    assert by_name[job_name(soon)][5:7] == (soon_end, "upcoming")
    assert by_name[job_name(mid)][4] == first_minute_at_or_after(mid_end)
    assert by_name[job_name(mid)][3] == expected_schedule(mid_end)
    assert by_name[job_name(far)][3] == "27 9 14 3 *"
    assert by_name[job_name(far)][4] == next_yearly(3, 14, 9, 27, now)
    assert by_name[job_name(far)][6] == "upcoming"
    assert by_name[job_name(ghost)][0] == ghost
    assert by_name[job_name(ghost)][5:7] == (None, None)
    assert by_name[job_name(ghost)][4] == next_yearly(1, 1, 0, 0, now)
    assert by_name[job_name(done)][6] == "done"
    assert by_name[job_name(done)][4] == next_yearly(3, 15, 9, 26, now)
    # the stale job keeps firing on its old day every year, not at the new end_time
    assert by_name[job_name(stale)][3] == "26 9 16 3 *"
    assert by_name[job_name(stale)][4] == next_yearly(3, 16, 9, 26, now)
    assert all(r[7] is True for r in rows)
    assert [r[2] for r in rows] == [r[2] for r in sorted(rows, key=lambda r: (r[4], r[2]))]
    assert rows[0][2] == RECONCILE_JOB


def test_list_jobs_ignores_other_jobs(db: Conn) -> None:
    """Jobs that are not ours (another name) are not listed."""
    db.execute("select cron.schedule('someone-elses-job', '0 3 * * *', 'select 1')")
    try:
        names = [r[0] for r in db.execute("select job_name from scheduler.list_jobs()")]
        assert names == [RECONCILE_JOB]
    finally:
        db.execute("select cron.unschedule('someone-elses-job')")


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("* * * * *", "2031-03-14 09:26:30+00", "2031-03-14 09:27:00+00"),
        ("* * * * *", "2031-03-14 09:26:00+00", "2031-03-14 09:26:00+00"),  # at or after
        ("* * * * *", "2031-12-31 23:59:59.5+00", "2032-01-01 00:00:00+00"),
        ("26 9 14 3 *", "2031-03-14 09:26:00+00", "2031-03-14 09:26:00+00"),
        ("26 9 14 3 *", "2031-03-14 09:26:00.000001+00", "2032-03-14 09:26:00+00"),
        ("30 9 14 3 *", "2031-03-14 05:00:00-03:00", "2031-03-14 09:30:00+00"),
        ("0 0 1 1 *", "2031-03-14 00:00:00+00", "2032-01-01 00:00:00+00"),  # passed: next year
        ("59 23 31 12 *", "2031-12-31 23:59:30+00", "2032-12-31 23:59:00+00"),
        ("0 0 29 2 *", "2031-03-14 00:00:00+00", "2032-02-29 00:00:00+00"),  # next leap year
        ("0 0 29 2 *", "2028-02-29 00:00:00+00", "2028-02-29 00:00:00+00"),
        ("0 0 29 2 *", "2028-02-29 00:01:00+00", "2032-02-29 00:00:00+00"),
        ("0 0 29 2 *", "2097-01-01 00:00:00+00", "2104-02-29 00:00:00+00"),  # 2100 is not leap
        ("0 0 31 4 *", "2031-01-01 00:00:00+00", None),  # never fires
        ("*/5 * * * *", "2031-01-01 00:00:00+00", None),  # not a schedule of ours
    ],
)
def test_next_run(db: Conn, schedule: str, after: str, expected: str | None) -> None:
    """next_run(schedule, after) is the first firing at or after `after`, in UTC: every minute,
    or yearly for "M H D MON *" (a date already passed this year fires next year, 29 February
    in the next leap year); null for a schedule it does not model."""
    result = value(db, "select scheduler.next_run(%s, %s::timestamptz)", (schedule, after))
    if expected is None:
        assert result is None
    else:
        assert result == datetime.fromisoformat(expected)


def test_next_run_is_utc_whatever_the_session_timezone(db: Conn) -> None:
    """next_run reads schedules in UTC, as pg_cron does, even where the local date differs."""
    db.execute("set timezone = 'Pacific/Kiritimati'")  # UTC+14: already 2032 locally
    result = value(
        db, "select scheduler.next_run('0 0 1 1 *', timestamptz '2031-12-31 20:00:00+00')"
    )
    assert result == datetime(2032, 1, 1, tzinfo=UTC)


# -- history() ----------------------------------------------------------------------------------


def test_command_job_inverts_the_job_commands_of_every_release(db: Conn) -> None:
    """command_job() names the job of each command we ever registered (0001's without a
    statement timeout, today's with one) and nothing else."""
    meeting = uuid.uuid4()
    cases = {
        job_command(meeting): job_name(meeting),
        f"select scheduler.complete_meeting('{meeting}'::uuid)": job_name(meeting),
        RECONCILE_COMMAND: RECONCILE_JOB,
        "select scheduler.reconcile()": RECONCILE_JOB,
        "select 42": None,
        "select scheduler.complete_meeting('not-a-uuid-at-all-but-36-characters!')": None,
        f"select scheduler.complete_meeting('{str(meeting).upper()}'::uuid)": None,
    }
    for command, expected in cases.items():
        assert value(db, "select scheduler.command_job(%s)", (command,)) == expected, command


def test_history_lists_our_runs_newest_first_with_filters(db: Conn) -> None:
    """history() lists runs of our jobs (meeting jobs and reconcile) strictly newest first (by
    run id: a canceled run that never started sorts by when pg_cron created it), with job name
    and meeting id; a run 'failed' with 'job canceled' is reported as 'canceled' and is not a
    failure; a successful run says what it left behind instead of pg_cron's row count;
    failed_only keeps failed runs; p_limit bounds the rows; other jobs' and other users' rows
    never appear."""
    m1, m2, m3 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    db.execute(
        "insert into meetings (id, title, status, end_time) "
        "values (%s, 'over', 'done', now() - interval '3 hours')",
        (m1,),
    )
    early_cancel = insert_run(
        db, completion(m3), status="failed", message="job canceled", ended_ago=None
    )
    ok = insert_run(db, completion(m1), ended_ago="3 hours")
    failed = insert_run(
        db, completion(m2), status="failed", message="ERROR: boom", ended_ago="2 hours"
    )
    reconciled = insert_run(db, RECONCILE_COMMAND, message="1 row", ended_ago="30 minutes")
    canceled = insert_run(
        db, completion(m3), status="failed", message="job canceled", ended_ago=None
    )
    other = insert_run(db, "select 42", status="failed", message="ERROR: x", ended_ago="10 minutes")
    other_user = insert_run(
        db, completion(m1), status="failed", message="ERROR: y", ended_ago="5 minutes",
        username="someone",
    )  # fmt: skip
    background = insert_run(db, completion(m2), message="SELECT 1", ended_ago="1 minute")
    mine = {early_cancel, ok, failed, reconciled, canceled, background}

    columns = "run_id, job_id, job_name, meeting_id, status, return_message, start_time, end_time"
    rows = db.execute(f"select {columns} from scheduler.history(false, 100000)").fetchall()
    assert {r[0] for r in rows}.isdisjoint({other, other_user})
    assert all(r[2] == RECONCILE_JOB or r[2] == job_name(r[3]) for r in rows)
    run_ids = [r[0] for r in rows]
    assert run_ids == sorted(run_ids, reverse=True)
    ours = [r for r in rows if r[0] in mine]
    assert [r[0] for r in ours] == [background, canceled, reconciled, failed, ok, early_cancel]
    assert [(r[2], r[3], r[4], r[5]) for r in ours] == [
        # m2 does not exist (only its runs were inserted)
        (job_name(m2), m2, "succeeded", "checked the meeting: it is now deleted"),
        (job_name(m3), m3, "canceled", "job canceled"),
        (
            RECONCILE_JOB,
            None,
            "succeeded",
            "reconciled: overdue meetings completed, missing jobs registered, orphan jobs removed",
        ),
        (job_name(m2), m2, "failed", "ERROR: boom"),
        (job_name(m1), m1, "succeeded", "checked the meeting: it is now done"),
        (job_name(m3), m3, "canceled", "job canceled"),
    ]

    failed_rows = db.execute(f"select {columns} from scheduler.history(true, 100000)").fetchall()
    assert all(r[4] == "failed" for r in failed_rows)
    assert [r[0] for r in failed_rows if r[0] in mine | {other, other_user}] == [failed]
    assert [
        r[0] for r in db.execute("select run_id from scheduler.history(p_failed_only => true)")
    ] == [failed]

    # p_limit takes the newest rows of the same list (one statement: one snapshot)
    assert (
        value(
            db,
            "select array(select run_id from scheduler.history(false, 2)) "
            "     = array(select run_id from scheduler.history(false, 100000) limit 2)",
        )
        is True
    )
    assert len(db.execute("select * from scheduler.history(false, 2)").fetchall()) == 2
    assert db.execute("select * from scheduler.history(true, 0)").fetchall() == []


# -- health() -----------------------------------------------------------------------------------

COUNTS = ("missing_jobs", "orphan_jobs", "overdue_meetings", "failed_runs_24h")


def test_health_ok_on_a_clean_state(db: Conn) -> None:
    """Every upcoming meeting with its job, no orphan, nothing overdue, no failure, the
    reconcile job present and enabled: ok is true, with the counts."""
    insert_meeting(db, FUTURE)
    insert_meeting(db, FUTURE + timedelta(days=1))
    insert_meeting(db, FUTURE, status="done")
    insert_run(db, RECONCILE_COMMAND, status="failed", message="old", ended_ago="25 hours")
    health = value(db, "select scheduler.health()")
    assert {k: health[k] for k in COUNTS} == dict.fromkeys(COUNTS, 0)
    assert health["upcoming_meetings"] == 2
    assert health["jobs"] == 2
    assert health["enabled"] is True
    assert health["reconcile_job"] is True
    assert health["backend"] == "postgres"
    assert health["pg_cron_version"] == value(
        db, "select extversion from pg_extension where extname = 'pg_cron'"
    )
    assert health["ok"] is True


def _missing(db: Conn) -> None:
    with triggers_off(db):
        insert_meeting(db, FUTURE)


def _orphans(db: Conn) -> None:
    orphan_job(db)
    meeting_id, _ = insert_meeting(db, FUTURE)
    with triggers_off(db):  # a done meeting that kept its job
        db.execute("update meetings set status = 'done' where id = %s", (meeting_id,))


def _overdue(db: Conn) -> None:
    with triggers_off(db):
        insert_meeting(db, datetime.now(UTC) - timedelta(hours=1))
        insert_meeting(db, datetime.now(UTC) - timedelta(seconds=30))  # within the grace


def _failed(db: Conn) -> None:
    insert_run(
        db, completion(uuid.uuid4()), status="failed", message="ERROR: a", ended_ago="1 hour"
    )
    insert_run(db, RECONCILE_COMMAND, status="failed", message="ERROR: b", ended_ago="23 hours")
    # not counted: too old, canceled, another job, another user
    insert_run(db, RECONCILE_COMMAND, status="failed", message="ERROR: c", ended_ago="25 hours")
    insert_run(db, completion(uuid.uuid4()), status="failed", message="job canceled")
    insert_run(db, "select 42", status="failed", message="ERROR: d")
    insert_run(db, RECONCILE_COMMAND, status="failed", message="ERROR: e", username="someone")


def _no_reconcile_job(db: Conn) -> None:
    db.execute("select cron.unschedule(%s)", (RECONCILE_JOB,))


def _paused(db: Conn) -> None:
    db.execute("select scheduler.pause()")


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (_missing, {"missing_jobs": 1}),
        (_orphans, {"orphan_jobs": 2}),
        (_overdue, {"overdue_meetings": 1}),
        (_failed, {"failed_runs_24h": 2}),
        (_no_reconcile_job, {"reconcile_job": False}),
        (_paused, {"enabled": False}),
    ],
    ids=["missing", "orphans", "overdue", "failed", "no-reconcile-job", "paused"],
)
def test_health_reports_each_problem_and_is_not_ok(
    db: Conn, damage: Callable[[Conn], None], expected: dict[str, object]
) -> None:
    """Each problem shows in its own count (missing_jobs, orphan_jobs, overdue_meetings beyond
    a 2-minute grace, failed_runs_24h of our jobs, reconcile_job, enabled) and makes ok false;
    the other counts stay clean."""
    insert_meeting(db, FUTURE + timedelta(days=3))  # a healthy meeting alongside
    clean = {**dict.fromkeys(COUNTS, 0), "reconcile_job": True, "enabled": True}
    with exclusive(db, rollback=True):  # the damage is rolled back (reconcile job, pause)
        damage(db)
        health = value(db, "select scheduler.health()")
        assert {k: health[k] for k in clean} == {**clean, **expected}
        assert health["ok"] is False
    assert value(db, "select (scheduler.health())->>'ok'") == "true"
