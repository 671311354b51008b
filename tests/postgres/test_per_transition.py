"""Every operation per transition (revision 0006): list-jobs, history, recover, reconcile, pause,
resume, the waker's wake() and doctor take a transition's name and default to all of them.
Meetings and a membership table with a bigint key, through the PostgreSQL backend and SQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from clock_helpers import future_on
from pg_helpers import (
    Conn,
    Server,
    expected_schedule,
    insert_meeting,
    job_name,
    reconcile_job_inactive,
    run_command,
    value,
)

from scheduler_admin.backends.postgres import PostgresBackend
from scheduler_admin.exceptions import InvalidInput

UTC = timezone.utc
FUTURE = future_on(3, 14, 9, 26, 1)
PREFIX = "memberships-status-"
ADD = (
    "select scheduler.add_transition('memberships', 'public.memberships', 'id', 'expires_at', "
    "'status', array['active'], 'expired')"
)


@pytest.fixture
def memberships(db: Conn, migrated: Server) -> Iterator[PostgresBackend]:
    """public.memberships registered as the transition memberships; the backend on the test
    database. Afterwards the transition is removed and the table dropped."""
    db.execute(
        "create table public.memberships (id bigint generated always as identity primary key, "
        "status text not null default 'active', expires_at timestamptz not null)"
    )
    db.execute(ADD)
    backend = PostgresBackend(migrated.url)
    try:
        # the reconcile job out: at a tick it would complete the tests' rows (path reconcile)
        with reconcile_job_inactive(db):
            yield backend
    finally:
        backend.close()
        db.execute("update scheduler.transitions set paused = false")
        db.execute("update scheduler.settings set enabled = true")
        db.execute(
            "select scheduler.remove_transition(name) from scheduler.transitions where not builtin"
        )
        db.execute("drop table if exists public.memberships")


def member(db: Conn, expires_at: datetime, status: str = "active") -> int:
    return int(
        value(
            db,
            "insert into public.memberships (status, expires_at) values (%s, %s) returning id",
            (status, expires_at),
        )
    )


def state(db: Conn, key: int) -> str:
    return str(value(db, "select status from public.memberships where id = %s", (key,)))


def job_names(db: Conn, prefix: str) -> set[str]:
    return {
        r[0]
        for r in db.execute("select jobname from cron.job where jobname like %s", (prefix + "%",))
    }


def unschedule(db: Conn, name: str) -> None:
    db.execute("select cron.unschedule(%s)", (name,))


def make_overdue(db: Conn, key: int) -> None:
    """The row's time in the past behind the triggers' back (its job stays)."""
    db.execute("set session_replication_role = replica")
    try:
        db.execute(
            "update public.memberships set expires_at = now() - interval '1 hour' where id = %s",
            (key,),
        )
    finally:
        db.execute("set session_replication_role = origin")


def test_pausing_one_transition_leaves_the_others_running(
    db: Conn, memberships: PostgresBackend
) -> None:
    backend = memberships
    assert backend.pause(transition="memberships") == {"transition": "memberships", "paused": True}
    paused = member(db, FUTURE)
    meeting_id, _ = insert_meeting(db, FUTURE)
    assert job_names(db, PREFIX) == set()  # its trigger registered nothing
    assert job_name(meeting_id) in job_names(db, "meeting-status-")  # meetings go on
    listed = {t["name"]: t["paused"] for t in backend.transitions()}
    assert listed == {"meetings": False, "memberships": True}
    # its job changes nothing while it is paused
    make_overdue(db, paused)
    assert value(db, "select scheduler.complete_transition('memberships', %s)", (str(paused),)) == 0
    assert state(db, paused) == "active"
    with pytest.raises(InvalidInput, match="transition memberships is paused") as refused:
        backend.recover(transition="memberships")
    assert "resume --transition memberships" in (refused.value.hint or "")
    # a dry run says what recovery would do
    assert backend.recover(dry_run=True, transition="memberships")["overdue_completed"] == 1
    assert state(db, paused) == "active"
    # recovery of all of them skips it and says so
    report = dict(backend.recover())
    assert report["paused_transitions"] == ["memberships"]
    assert "transitions" not in report
    assert state(db, paused) == "active"
    # resuming it recovers it alone
    resumed = dict(backend.resume(transition="memberships"))
    assert resumed["transition"] == "memberships"
    assert resumed["overdue_completed"] == 1 and resumed["success"] is True
    assert state(db, paused) == "expired"
    assert not value(db, "select paused from scheduler.transitions where name = 'memberships'")


def test_pausing_meetings_by_name_leaves_memberships_running(
    db: Conn, memberships: PostgresBackend
) -> None:
    backend = memberships
    backend.pause(transition="meetings")
    meeting_id, _ = insert_meeting(db, FUTURE)
    key = member(db, FUTURE)
    assert job_name(meeting_id) not in job_names(db, "meeting-status-")
    assert job_names(db, PREFIX) == {f"{PREFIX}{key}"}
    report = dict(backend.recover())
    # meetings paused: counted, left alone; memberships recovered
    assert (report["total_meetings"], report["jobs_scheduled"]) == (1, 0)
    assert report["paused_transitions"] == ["meetings"]
    assert report["transitions"]["memberships"]["jobs_already_exist"] == 1
    with pytest.raises(InvalidInput, match="transition meetings is paused"):
        backend.recover(transition="meetings")
    assert backend.reconcile(transition="meetings") == {"paused": True}
    assert job_name(meeting_id) not in job_names(db, "meeting-status-")
    # resuming everything clears every pause by name and recovers the meeting
    resumed = backend.resume()
    assert resumed["jobs_scheduled"] == 1
    assert job_name(meeting_id) in job_names(db, "meeting-status-")
    assert value(db, "select count(*) from scheduler.transitions where paused") == 0


def test_recover_and_reconcile_of_one_transition_touch_only_it(
    db: Conn, memberships: PostgresBackend
) -> None:
    backend = memberships
    meeting_id, _ = insert_meeting(db, FUTURE)
    key = member(db, FUTURE)
    overdue = member(db, FUTURE + timedelta(days=1))
    make_overdue(db, overdue)
    unschedule(db, job_name(meeting_id))
    unschedule(db, f"{PREFIX}{key}")
    report = backend.recover(transition="memberships")
    assert report == {
        "transition": "memberships",
        "total": 2,
        "jobs_scheduled": 1,
        "jobs_already_exist": 0,
        "overdue_completed": 1,
        "orphans_removed": 0,  # the completed row's job went with its update
        "errors": [],
        "success": True,
        "dry_run": False,
    }
    assert job_names(db, PREFIX) == {f"{PREFIX}{key}"}
    assert state(db, overdue) == "expired"
    assert job_name(meeting_id) not in job_names(db, "meeting-status-")  # not meetings'
    meetings = dict(backend.recover(transition="meetings"))
    assert "transitions" not in meetings and meetings["jobs_scheduled"] == 1
    assert job_name(meeting_id) in job_names(db, "meeting-status-")
    # reconcile of one transition: its repair and its runs' retention
    unschedule(db, f"{PREFIX}{key}")
    reconciled = dict(backend.reconcile(transition="memberships"))
    assert reconciled["transition"] == "memberships"
    assert reconciled["jobs_scheduled"] == 1 and "history_deleted" in reconciled
    assert "sweep" not in reconciled  # the reconcile job's own work is not done for one transition


def test_list_jobs_and_history_per_transition(db: Conn, memberships: PostgresBackend) -> None:
    backend = memberships
    meeting_id, _ = insert_meeting(db, FUTURE)
    key = member(db, FUTURE)
    # an orphan: a job of the prefix whose row is gone (deleted behind the triggers' back)
    gone = member(db, FUTURE)
    db.execute("set session_replication_role = replica")
    db.execute("delete from public.memberships where id = %s", (gone,))
    db.execute("set session_replication_role = origin")
    everything = backend.list_jobs()
    ours = {j["job_name"]: j for j in everything}
    assert {j["transition"] for j in everything} == {"meetings", "memberships"}
    row = ours[f"{PREFIX}{key}"]
    assert (row["transition"], row["key"], row["meeting_id"]) == ("memberships", str(key), None)
    assert row["schedule"] == expected_schedule(FUTURE)
    assert (row["end_time"], row["meeting_status"]) == (FUTURE.isoformat(), "active")
    orphan = ours[f"{PREFIX}{gone}"]
    assert (orphan["key"], orphan["meeting_status"], orphan["end_time"]) == (str(gone), None, None)
    assert ours[job_name(meeting_id)]["transition"] == "meetings"
    assert ours[job_name(meeting_id)]["key"] == str(meeting_id)
    assert ours["meeting-status-reconcile"]["key"] is None
    assert [j["next_run"] or "" for j in everything] == sorted(
        j["next_run"] or "" for j in everything
    )
    only = backend.list_jobs(transition="memberships")
    assert {j["job_name"] for j in only} == {f"{PREFIX}{key}", f"{PREFIX}{gone}"}
    assert {j["transition"] for j in backend.list_jobs(transition="meetings")} == {"meetings"}

    # history: a run of each transition's job, as pg_cron records them
    now = value(db, "select now()")
    for command, status, message in [
        (value(db, "select scheduler.job_command(%s)", (meeting_id,)), "succeeded", "1 row"),
        (
            f"set statement_timeout = '2min'; select scheduler.complete_transition("
            f"'memberships', '{key}')",
            "failed",
            "boom",
        ),
        (
            f"set statement_timeout = '2min'; select scheduler.complete_transition("
            f"'memberships', '{key}')",
            "succeeded",
            "1 row",
        ),
    ]:
        db.execute(
            "insert into cron.job_run_details (jobid, job_pid, database, username, command, "
            "status, return_message, start_time, end_time) values (0, 4242, current_database(), "
            "current_user, %s, %s, %s, %s, %s)",
            (command, status, message, now, now),
        )
    runs = backend.history()
    mine = [(r["transition"], r["key"], r["job_name"], r["status"]) for r in runs]
    assert mine[:3] == [
        ("memberships", str(key), f"{PREFIX}{key}", "succeeded"),
        ("memberships", str(key), f"{PREFIX}{key}", "failed"),
        ("meetings", str(meeting_id), job_name(meeting_id), "succeeded"),
    ]
    assert runs[0]["meeting_id"] is None
    assert runs[0]["return_message"] == "checked the row: the due rows of memberships are expired"
    assert {r["transition"] for r in backend.history(transition="memberships")} == {"memberships"}
    assert {r["transition"] for r in backend.history(transition="meetings")} == {"meetings"}
    assert [r["status"] for r in backend.history(failed_only=True, transition="memberships")] == [
        "failed"
    ]
    # the reconcile job's retention deletes old runs of every transition's jobs
    db.execute("update cron.job_run_details set end_time = now() - interval '30 days'")
    with_memberships = value(
        db,
        "select count(*) from cron.job_run_details where command like %s",
        ("%complete_transition(%",),
    )
    assert with_memberships == 2
    run_command(db, "select scheduler.reconcile()")
    assert backend.history(transition="memberships") == []


def test_wake_completes_one_transition_or_all(db: Conn, memberships: PostgresBackend) -> None:
    backend = memberships
    due = member(db, FUTURE)
    make_overdue(db, due)
    later = member(db, FUTURE + timedelta(days=2))
    woke = backend.wake(transition="meetings")
    assert woke["completed"] == 0 and state(db, due) == "active"
    woke = backend.wake(transition="memberships")
    assert woke["completed"] == 1 and state(db, due) == "expired"
    assert woke["next_end_time"] == (FUTURE + timedelta(days=2)).isoformat()
    assert state(db, later) == "active"
    backend.pause(transition="memberships")
    assert backend.wake(transition="memberships")["paused"] is True
    assert backend.wake()["paused"] is False  # meetings still act


def test_doctor_checks_each_transition_and_recover_restores_its_triggers(
    db: Conn, memberships: PostgresBackend
) -> None:
    backend = memberships
    member(db, FUTURE)

    def checks(transition: str | None) -> dict[str, bool]:
        return {c["name"]: c["ok"] for c in backend.doctor(transition=transition)}

    ours = checks("memberships")
    assert {k: v for k, v in ours.items() if k.startswith("transition ")} == {
        "transition memberships: active": True,
        "transition memberships: triggers": True,
        "transition memberships: jobs": True,
        "transition memberships: no overdue rows": True,
    }
    assert "every upcoming meeting has a job" not in ours
    assert not any(k.startswith("transition ") for k in checks("meetings"))
    assert "transition memberships: jobs" in checks(None)
    db.execute("drop trigger scheduler_memberships_after_insert on public.memberships")
    assert checks("memberships")["transition memberships: triggers"] is False
    backend.recover(transition="memberships")
    assert checks("memberships")["transition memberships: triggers"] is True
    key = member(db, FUTURE)  # the re-created trigger registers
    assert f"{PREFIX}{key}" in job_names(db, PREFIX)


@pytest.mark.parametrize(
    "call",
    [
        lambda b: b.list_jobs(transition="nope"),
        lambda b: b.history(transition="nope"),
        lambda b: b.recover(transition="nope"),
        lambda b: b.recover(dry_run=True, transition="nope"),
        lambda b: b.reconcile(transition="nope"),
        lambda b: b.pause(transition="nope"),
        lambda b: b.resume(transition="nope"),
        lambda b: b.wake(transition="nope"),
        lambda b: b.doctor(transition="nope"),
    ],
    ids=[
        "list_jobs",
        "history",
        "recover",
        "recover-dry-run",
        "reconcile",
        "pause",
        "resume",
        "wake",
        "doctor",
    ],
)
def test_an_unknown_transition_is_a_clear_error_that_changes_nothing(
    db: Conn, memberships: PostgresBackend, call: Any
) -> None:
    key = member(db, FUTURE)
    before = (
        value(db, "select jsonb_agg(t order by name) from scheduler.transitions t"),
        value(db, "select enabled from scheduler.settings"),
        job_names(db, ""),
    )
    with pytest.raises(InvalidInput, match="no transition named nope") as error:
        call(memberships)
    assert "transitions list" in (error.value.hint or "")
    after = (
        value(db, "select jsonb_agg(t order by name) from scheduler.transitions t"),
        value(db, "select enabled from scheduler.settings"),
        job_names(db, ""),
    )
    assert after == before and state(db, key) == "active"


def test_resuming_one_transition_while_all_are_paused_is_refused(
    db: Conn, memberships: PostgresBackend
) -> None:
    memberships.pause()
    memberships.pause(transition="memberships")
    with pytest.raises(InvalidInput, match="paused as a whole"):
        memberships.resume(transition="memberships")
    assert value(db, "select paused from scheduler.transitions where name = 'memberships'")


def test_a_job_of_a_removed_transition_removes_itself_and_reconcile_removes_the_rest(
    db: Conn, memberships: PostgresBackend
) -> None:
    """remove_transition unschedules at most 1000 jobs per transaction where it calls
    cron.unschedule per job: the jobs left behind of a transition no longer registered go when
    they run, or with the reconcile job."""
    stray = "set statement_timeout = '2min'; select scheduler.complete_transition('gone', '%s')"
    for key in (1, 2):
        db.execute("select cron.schedule(%s, '0 0 1 1 *', %s)", (f"gone-status-{key}", stray % key))
    assert value(db, "select scheduler.complete_transition('gone', '1')") == 0
    assert job_names(db, "gone-status-") == {"gone-status-2"}
    key = member(db, FUTURE)
    run_command(db, "select scheduler.reconcile()")
    assert job_names(db, "gone-status-") == set()
    assert job_names(db, PREFIX) == {f"{PREFIX}{key}"}  # a registered transition's job stays


# -- completion events and metrics per transition (0007) -------------------------------------


def transition_events(db: Conn) -> list[tuple[Any, ...]]:
    return db.execute(
        "select transition, row_key, meeting_id, path, end_time, completed_at, "
        "extract(epoch from lateness)::float8 from scheduler.completion_events "
        "where transition = 'memberships' order by event_id"
    ).fetchall()


@pytest.mark.parametrize(
    ("command", "path"),
    [
        ("select scheduler.complete_transition('memberships', %s)", "job"),
        ("select scheduler.sweep()", "sweep"),
        ("select scheduler.sweep('memberships')", "sweep"),
        ("select scheduler.wake('memberships')", "waker"),
        ("select scheduler.wake()", "waker"),
        ("select scheduler.reconcile()", "reconcile"),
        ("select scheduler.reconcile('memberships')", "reconcile"),
        ("select scheduler.recover()", "recover"),
        ("select scheduler.recover(false, 'memberships')", "recover"),
    ],
)
def test_each_path_records_one_event_per_row_it_completes(
    db: Conn, memberships: PostgresBackend, command: str, path: str
) -> None:
    keys = [member(db, FUTURE) for _ in range(2)]
    for key in keys:
        make_overdue(db, key)
    times = dict(db.execute("select id, expires_at from public.memberships").fetchall())
    if "%s" in command:
        db.execute(command, (str(keys[0]),))
    else:
        run_command(db, command)
    assert [state(db, k) for k in keys] == ["expired", "expired"]
    rows = transition_events(db)
    assert sorted(r[1] for r in rows) == sorted(str(k) for k in keys)
    for transition, key, meeting_id, got_path, end_time, completed_at, lateness in rows:
        assert (transition, meeting_id, got_path) == ("memberships", None, path)
        assert end_time == times[int(key)]
        assert completed_at >= end_time
        assert lateness == pytest.approx((completed_at - end_time).total_seconds())


def test_a_write_with_a_time_already_past_records_a_write_event(
    db: Conn, memberships: PostgresBackend
) -> None:
    """A pending row inserted, or moved, to a time already past gets the to-state from the BEFORE
    trigger: path write. A row the application sets expired itself, or inserts expired, is not a
    completion of ours."""
    past = datetime.now(UTC) - timedelta(minutes=5)
    inserted = member(db, past)
    moved = member(db, FUTURE)
    db.execute("update public.memberships set expires_at = %s where id = %s", (past, moved))
    by_app = member(db, FUTURE)
    db.execute("update public.memberships set status = 'expired' where id = %s", (by_app,))
    member(db, past, status="expired")
    assert [state(db, k) for k in (inserted, moved)] == ["expired", "expired"]
    assert [(r[1], r[3]) for r in transition_events(db)] == [
        (str(inserted), "write"),
        (str(moved), "write"),
    ]
    # the meetings' events are not the transition's
    meeting_id, _ = insert_meeting(db, past)
    (meeting_event,) = db.execute(
        "select transition, row_key, meeting_id, path from scheduler.completion_events "
        "where transition = 'meetings'"
    ).fetchall()
    assert meeting_event == ("meetings", None, meeting_id, "write")


def test_registration_completes_due_rows_with_recover_events(db: Conn) -> None:
    db.execute(
        "create table public.memberships (id bigint generated always as identity primary key, "
        "status text not null default 'active', expires_at timestamptz not null)"
    )
    try:
        db.execute("insert into public.memberships (expires_at) values (now() - interval '1 hour')")
        assert value(db, ADD)["completed"] == 1
        assert [(r[0], r[3]) for r in transition_events(db)] == [("memberships", "recover")]
    finally:
        db.execute("select scheduler.remove_transition('memberships')")
        db.execute("drop table public.memberships")


def test_events_and_metrics_of_one_transition_or_all(
    db: Conn, memberships: PostgresBackend
) -> None:
    backend = memberships
    past = datetime.now(UTC) - timedelta(minutes=5)
    key = member(db, past)
    meeting_id, _ = insert_meeting(db, past)
    every = backend.events()
    assert {(e["transition"], e["key"]) for e in every} == {
        ("memberships", str(key)),
        ("meetings", str(meeting_id)),
    }
    (ours,) = backend.events(transition="memberships")
    assert (ours["meeting_id"], ours["path"], ours["end_time"]) == (None, "write", past.isoformat())
    assert [e["transition"] for e in backend.events(transition="meetings")] == ["meetings"]
    total = backend.metrics()
    mine = backend.metrics(transition="memberships")
    meetings = backend.metrics(transition="meetings")
    assert (total["completions"]["write"], mine["completions"]["write"]) == (2, 1)
    assert meetings["completions"]["write"] == 1
    assert mine["transition"] == "memberships" and "transition" not in total
    assert (mine["lateness"]["count"], total["lateness"]["count"]) == (1, 2)
    # the health part of the transition: its pending rows and jobs
    pending = member(db, FUTURE)
    mine = backend.metrics(transition="memberships")
    assert (mine["upcoming_meetings"], mine["jobs"], mine["missing_jobs"]) == (1, 1, 0)
    assert f"{PREFIX}{pending}" in job_names(db, PREFIX)
    # the retention keeps the counts per transition
    db.execute("update scheduler.completion_events set completed_at = now() - interval '30 days'")
    assert run_command(db, "select scheduler.reconcile()")["events_deleted"] == 2
    assert backend.events() == []
    assert backend.metrics(transition="memberships")["completions"]["write"] == 1
    assert backend.metrics(transition="meetings")["completions"]["write"] == 1
    assert backend.metrics()["completions"]["write"] == 2
    with pytest.raises(InvalidInput, match="no transition named nope"):
        backend.events(transition="nope")
    with pytest.raises(InvalidInput, match="no transition named nope"):
        backend.metrics(transition="nope")


def test_the_sweep_of_one_transition_leaves_the_others(
    db: Conn, memberships: PostgresBackend
) -> None:
    key = member(db, FUTURE)
    make_overdue(db, key)
    meeting_id, _ = insert_meeting(db, FUTURE)
    db.execute("set session_replication_role = replica")
    db.execute(
        "update meetings set end_time = now() - interval '1 hour' where id = %s", (meeting_id,)
    )
    db.execute("set session_replication_role = origin")
    assert value(db, "select scheduler.sweep('meetings')") == 1
    assert state(db, key) == "active"
    memberships.pause(transition="memberships")
    assert value(db, "select scheduler.sweep('memberships')") == 0  # paused: nothing done
    memberships.resume(transition="memberships")  # its recovery completes the row
    assert state(db, key) == "expired"
    with pytest.raises(psycopg.errors.NoDataFound, match="no transition named nope"):
        db.execute("select scheduler.sweep('nope')")
