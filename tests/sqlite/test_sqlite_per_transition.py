"""Every operation per transition on SQLite (issue 14, slice 2): list_jobs, history, recover,
reconcile, pause, resume, wake and doctor of one transition by name, next to meetings, with a
registered table memberships (active -> expired)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlite_helpers import FakeClock, expected_schedule, future, insert, job, jobs

from scheduler_admin.backends.sqlite import SqliteBackend
from scheduler_admin.core import (
    RecoverReport,
    TransitionReconcileReport,
    TransitionReport,
)
from scheduler_admin.exceptions import InvalidInput, NotMigrated
from scheduler_admin.migrate import upgrade
from scheduler_admin.sqlite import commands, transitions
from scheduler_admin.sqlite.transitions import transition_command
from scheduler_admin.sqlite.worker import CronWorker

PREFIX = "memberships-status-"
PAST = "2020-01-01T00:00:00Z"
RECONCILE = "meeting-status-reconcile"


@pytest.fixture
def app(conn: sqlite3.Connection, backend: SqliteBackend) -> sqlite3.Connection:
    """The application's connection, with memberships registered as a transition."""
    conn.execute("CREATE TABLE memberships (id INTEGER PRIMARY KEY, status TEXT, expires_at TEXT)")
    backend.add_transition(
        "memberships",
        table="memberships",
        key_column="id",
        time_column="expires_at",
        state_column="status",
        from_states=["active"],
        to_state="expired",
    )
    return conn


def member(conn: sqlite3.Connection, expires_at: str | datetime, state: str = "active") -> int:
    when = expires_at.isoformat() if isinstance(expires_at, datetime) else expires_at
    row = conn.execute(
        "INSERT INTO memberships (status, expires_at) VALUES (?, ?) RETURNING id", (state, when)
    ).fetchone()
    return int(row[0])


def status(conn: sqlite3.Connection, member_id: int) -> str | None:
    row = conn.execute("SELECT status FROM memberships WHERE id = ?", (member_id,)).fetchone()
    return None if row is None else str(row[0])


def meeting_status(conn: sqlite3.Connection, meeting_id: str) -> str:
    return str(
        conn.execute("SELECT status FROM meetings WHERE id = ?", (meeting_id,)).fetchone()[0]
    )


def mjobs(conn: sqlite3.Connection) -> set[str]:
    """The memberships' job names."""
    return {
        str(row[0])
        for row in conn.execute(
            "SELECT jobname FROM cron_job WHERE substr(jobname, 1, length(?)) = ?",
            (PREFIX, PREFIX),
        )
    }


def orphan_job(conn: sqlite3.Connection, key: str = "999") -> None:
    conn.execute(
        "INSERT INTO cron_job (schedule, command, jobname) VALUES ('1 1 1 1 *', ?, ?)",
        (transition_command("memberships", key), PREFIX + key),
    )


def paused_flags(conn: sqlite3.Connection) -> dict[str, int]:
    return {
        str(r[0]): int(r[1]) for r in conn.execute("SELECT name, paused FROM scheduler_transitions")
    }


TABLES = (
    "scheduler_transitions",
    "scheduler_settings",
    "cron_job",
    "cron_job_run_details",
    "memberships",
    "meetings",
    "scheduler_completion_events",
)


def state_of(conn: sqlite3.Connection) -> list[list[Any]]:
    """Everything a refused call must leave as it was."""
    rows = [
        [tuple(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY 1")] for table in TABLES
    ]
    schema = [
        tuple(r) for r in conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY 2")
    ]
    return [*rows, schema]


def minute_after(end: datetime) -> datetime:
    return end.replace(second=0, microsecond=0) + timedelta(minutes=1)


# -- list_jobs ------------------------------------------------------------------------------


def test_list_jobs_says_each_job_s_transition_and_key(
    app: sqlite3.Connection, backend: SqliteBackend
) -> None:
    meeting_end = future(90)
    meeting = insert(app, meeting_end)
    expires = future(30, second=20)
    row = member(app, expires)
    orphan_job(app)

    every = backend.list_jobs()
    by_name = {j["job_name"]: j for j in every}
    assert set(by_name) == {
        RECONCILE,
        f"meeting-status-{meeting}",
        f"{PREFIX}{row}",
        f"{PREFIX}999",
    }
    assert (by_name[RECONCILE]["transition"], by_name[RECONCILE]["key"]) == ("meetings", None)
    ours = by_name[f"meeting-status-{meeting}"]
    assert (ours["transition"], ours["key"], ours["meeting_id"]) == ("meetings", meeting, meeting)
    assert ours["meeting_status"] == "upcoming"
    theirs = by_name[f"{PREFIX}{row}"]
    assert theirs["transition"] == "memberships" and theirs["key"] == str(row)
    assert theirs["meeting_id"] is None
    assert theirs["schedule"] == expected_schedule(expires)
    assert theirs["end_time"] == expires.isoformat()
    assert theirs["meeting_status"] == "active" and theirs["active"] is True
    assert theirs["next_run"] == minute_after(expires).isoformat()
    lost = by_name[f"{PREFIX}999"]
    assert (lost["key"], lost["end_time"], lost["meeting_status"]) == ("999", None, None)
    # by next run (None last), then name
    order = [(j["next_run"] is None, j["next_run"] or "", j["job_name"]) for j in every]
    assert order == sorted(order)

    # meetings: its jobs and the reconcile job, as they are in the list of all
    meetings_only = backend.list_jobs(transition="meetings")
    assert meetings_only == [j for j in every if j["transition"] == "meetings"]
    assert {j["job_name"] for j in meetings_only} == {RECONCILE, f"meeting-status-{meeting}"}
    members_only = backend.list_jobs(transition="memberships")
    assert members_only == [j for j in every if j["transition"] == "memberships"]
    assert len(members_only) == 2


def test_the_key_of_an_integer_key_finds_its_row_exactly(
    app: sqlite3.Connection, backend: SqliteBackend
) -> None:
    """A job named with a key written differently (leading zero) is no row's: an orphan."""
    row = member(app, future(60))
    orphan_job(app, f"0{row}")
    listed = {j["key"]: j for j in backend.list_jobs(transition="memberships")}
    assert listed[str(row)]["meeting_status"] == "active"
    assert listed[f"0{row}"]["meeting_status"] is None


# -- history and its retention --------------------------------------------------------------


def run_one_minute(
    app: sqlite3.Connection, worker: CronWorker
) -> tuple[str, int, dict[str, dict[str, Any]]]:
    """A meeting and a membership due in one minute, and the worker's tick of that minute: the
    meeting, the membership and the runs by job name."""
    end = future(20, second=10)
    meeting = insert(app, end)
    row = member(app, end)
    result = worker.tick(minute_after(end))
    ran = {r.job_name or "": {"run_id": r.run_id, "message": r.return_message} for r in result.runs}
    assert set(ran) == {RECONCILE, f"meeting-status-{meeting}", f"{PREFIX}{row}"}
    return meeting, row, ran


def test_history_shows_every_transition_s_runs_and_filters_by_name(
    app: sqlite3.Connection, backend: SqliteBackend, worker: CronWorker
) -> None:
    meeting, row, ran = run_one_minute(app, worker)
    assert status(app, row) == "expired" and meeting_status(app, meeting) == "done"

    every = backend.history()
    assert [r["run_id"] for r in every] == sorted((r["run_id"] for r in every), reverse=True)
    by_name = {r["job_name"]: r for r in every}
    assert set(by_name) == set(ran)
    theirs = by_name[f"{PREFIX}{row}"]
    assert (theirs["transition"], theirs["key"], theirs["meeting_id"]) == (
        "memberships",
        str(row),
        None,
    )
    assert theirs["status"] == "succeeded"
    assert theirs["return_message"] == ran[f"{PREFIX}{row}"]["message"]
    ours = by_name[f"meeting-status-{meeting}"]
    assert (ours["transition"], ours["key"], ours["meeting_id"]) == ("meetings", meeting, meeting)
    assert (by_name[RECONCILE]["transition"], by_name[RECONCILE]["key"]) == ("meetings", None)

    assert backend.history(transition="memberships") == [theirs]
    assert backend.history(transition="meetings") == [
        r for r in every if r["transition"] == "meetings"
    ]
    # the limit counts the runs of the transition asked for
    assert backend.history(transition="memberships", limit=1) == [theirs]
    assert backend.history(transition="memberships", failed_only=True) == []


def test_a_failed_transition_run_is_in_history_failed(
    app: sqlite3.Connection, backend: SqliteBackend, worker: CronWorker
) -> None:
    row = member(app, future(30))
    app.execute("DROP TABLE memberships")  # its jobs now fail: the table is gone
    app.execute("UPDATE cron_job SET schedule = '* * * * *' WHERE jobname = ?", (f"{PREFIX}{row}",))
    worker.tick()
    (failed,) = backend.history(failed_only=True, transition="memberships")
    assert failed["status"] == "failed" and failed["key"] == str(row)
    assert "does not exist" in (failed["return_message"] or "")
    assert failed in backend.history(failed_only=True)


def test_the_retention_prunes_transition_runs_like_meeting_runs(
    app: sqlite3.Connection, backend: SqliteBackend, worker: CronWorker, clock: FakeClock
) -> None:
    meeting, _, ran = run_one_minute(app, worker)
    assert len(backend.history(transition="memberships")) == 1
    clock.set(minute_after(clock()) + timedelta(days=8))  # past the 7 days of retention

    report = backend.reconcile(transition="memberships")
    assert set(report) == set(TransitionReconcileReport.__annotations__) - {"beyond_horizon"}
    assert report["history_deleted"] == 1  # its own run only
    assert backend.history(transition="memberships") == []
    assert {r["job_name"] for r in backend.history()} == {RECONCILE, f"meeting-status-{meeting}"}

    # the reconcile of all of them (the job's) prunes the runs of every transition
    again_end = future(40, second=5)
    member_again = member(app, again_end)
    worker.tick(minute_after(again_end))  # runs its job and the reconcile job
    assert status(app, member_again) == "expired"
    assert len(backend.history(transition="memberships")) == 1
    deleted = backend.reconcile()
    assert deleted["history_deleted"] == len(ran) - 1 + 2  # every run of every job
    assert backend.history() == []


# -- pause and resume by name ---------------------------------------------------------------


def test_pause_by_name_stops_only_that_transition(
    app: sqlite3.Connection, backend: SqliteBackend, worker: CronWorker, clock: FakeClock
) -> None:
    end = future(30, second=10)
    before = member(app, end)  # its job exists from before the pause
    assert backend.pause(transition="memberships") == {"transition": "memberships", "paused": True}
    assert [t["paused"] for t in backend.transitions()] == [False, True]

    # its triggers register nothing; a row already past still expires at write, as for meetings
    after = member(app, end)
    late = member(app, PAST)
    assert mjobs(app) == {f"{PREFIX}{before}"}
    assert status(app, late) == "expired"
    # meetings keep going
    meeting = insert(app, end)
    assert job(app, meeting) is not None

    # its job changes nothing; the meeting's job completes its meeting
    result = worker.tick(minute_after(end))
    messages = {r.job_name: r.return_message for r in result.runs}
    assert messages[f"{PREFIX}{before}"] == commands.paused_message("memberships")
    assert messages[f"meeting-status-{meeting}"] == "completed 1 meeting (this one included)"
    assert (status(app, before), status(app, after)) == ("active", "active")
    assert meeting_status(app, meeting) == "done"
    assert "paused: memberships" in messages[RECONCILE]
    clock.set(minute_after(end))  # both rows are due from now on

    # recover and reconcile of all skip it and say so; by name they refuse or do nothing
    report = backend.recover()
    assert "transitions" not in report
    assert report["paused_transitions"] == ["memberships"]
    assert (status(app, before), mjobs(app)) == ("active", {f"{PREFIX}{before}"})
    with pytest.raises(InvalidInput, match="transition memberships is paused") as refused:
        backend.recover(transition="memberships")
    assert refused.value.hint == (
        "Run scheduler-admin resume --transition memberships, which also recovers."
    )
    dry = backend.recover(dry_run=True, transition="memberships")
    assert (dry["overdue_completed"], dry["dry_run"]) == (2, True)
    assert backend.reconcile(transition="memberships") == {"paused": True}
    assert "transitions" not in backend.reconcile()
    # the waker leaves it alone
    woke = backend.wake(transition="memberships")
    assert (woke["completed"], woke["next_end_time"], woke["paused"]) == (0, None, True)
    assert backend.wake()["completed"] == 0 and status(app, before) == "active"

    # resume by name: its flag cleared and it is recovered (the report of recover by name)
    resumed = backend.resume(transition="memberships")
    assert resumed == TransitionReport(
        transition="memberships",
        total=2,
        jobs_scheduled=0,
        jobs_already_exist=0,
        overdue_completed=2,
        orphans_removed=0,  # the job left from before the pause went with its row's update
        errors=[],
        success=True,
        dry_run=False,
    )
    assert (status(app, before), status(app, after)) == ("expired", "expired")
    assert mjobs(app) == set()
    assert paused_flags(app) == {"meetings": 0, "memberships": 0}
    fresh = member(app, future(60))
    assert mjobs(app) == {f"{PREFIX}{fresh}"}


def test_pause_meetings_by_name_keeps_the_others_going(
    app: sqlite3.Connection, backend: SqliteBackend, worker: CronWorker, clock: FakeClock
) -> None:
    end = future(30, second=10)
    kept = insert(app, end)
    assert backend.pause(transition="meetings") == {"transition": "meetings", "paused": True}
    meeting = insert(app, end)
    row = member(app, end)
    assert set(jobs(app)) == {f"meeting-status-{kept}"}  # none for the new meeting
    assert mjobs(app) == {f"{PREFIX}{row}"}

    result = worker.tick(minute_after(end))
    messages = {r.job_name: r.return_message for r in result.runs}
    assert messages[f"meeting-status-{kept}"] == commands.paused_message("meetings")
    assert messages[f"{PREFIX}{row}"] == "completed 1 row (this one included)"
    assert meeting_status(app, kept) == "upcoming" and status(app, row) == "expired"
    clock.set(minute_after(end))  # both meetings are due from now on

    other_end = future(60)
    other = member(app, other_end)
    report = backend.recover()
    assert {k: v for k, v in report.items() if k not in ("transitions", "paused_transitions")} == (
        RecoverReport(
            total_meetings=2,
            jobs_scheduled=0,
            jobs_already_exist=0,
            overdue_completed=0,
            orphans_removed=0,
            errors=[],
            success=True,
            dry_run=False,
        )
    )
    assert report["paused_transitions"] == ["meetings"]
    assert report["transitions"]["memberships"]["jobs_already_exist"] == 1
    assert meeting_status(app, kept) == "upcoming"
    with pytest.raises(InvalidInput, match="transition meetings is paused"):
        backend.recover(transition="meetings")
    dry = backend.recover(dry_run=True, transition="meetings")  # what resuming it would do
    assert (dry["overdue_completed"], dry["jobs_scheduled"], dry["dry_run"]) == (2, 0, True)
    assert meeting_status(app, kept) == "upcoming"
    assert backend.reconcile(transition="meetings") == {"paused": True}
    woke = backend.wake()
    assert woke["paused"] is False and woke["completed"] == 0
    assert woke["next_end_time"] == other_end.isoformat()  # the membership's, not the meetings'
    assert mjobs(app) == {f"{PREFIX}{other}"}

    resumed = backend.resume(transition="meetings")
    assert set(resumed) == set(RecoverReport.__annotations__) - {"beyond_horizon"}
    assert (resumed["overdue_completed"], resumed["orphans_removed"]) == (2, 0)
    assert meeting_status(app, kept) == "done" and meeting_status(app, meeting) == "done"


def test_resume_by_name_while_the_scheduler_is_paused_changes_nothing(
    app: sqlite3.Connection, backend: SqliteBackend
) -> None:
    backend.pause(transition="memberships")
    backend.pause()
    before = state_of(app)
    with pytest.raises(InvalidInput, match="the scheduler is paused as a whole") as refused:
        backend.resume(transition="memberships")
    assert refused.value.hint is not None and "scheduler-admin resume" in refused.value.hint
    assert state_of(app) == before
    with pytest.raises(InvalidInput, match="the scheduler is paused: recovery"):
        backend.recover(transition="memberships")
    assert backend.reconcile(transition="memberships") == {"paused": True}

    # resume of all: enabled, every flag cleared, all recovered
    row = member(app, future(60))  # paused: no job yet
    assert mjobs(app) == set()
    report = backend.resume()
    assert "paused_transitions" not in report
    assert report["transitions"]["memberships"]["jobs_scheduled"] == 1
    assert paused_flags(app) == {"meetings": 0, "memberships": 0}
    assert mjobs(app) == {f"{PREFIX}{row}"}


# -- recover and reconcile by name ----------------------------------------------------------


def break_both(app: sqlite3.Connection) -> tuple[str, int]:
    """A meeting and a membership whose jobs were lost, and an orphan job of each."""
    meeting = insert(app, future(60))
    row = member(app, future(60))
    app.execute(
        "DELETE FROM cron_job WHERE jobname IN (?, ?)",
        (f"meeting-status-{meeting}", f"{PREFIX}{row}"),
    )
    orphan_job(app)
    app.execute(
        "INSERT INTO cron_job (schedule, command, jobname) "
        "VALUES ('1 1 1 1 *', 'complete_meeting(''gone'')', 'meeting-status-gone')"
    )
    return meeting, row


def test_recover_by_name_touches_only_that_transition(
    app: sqlite3.Connection, backend: SqliteBackend
) -> None:
    meeting, row = break_both(app)
    report = backend.recover(transition="memberships")
    assert report == TransitionReport(
        transition="memberships",
        total=1,
        jobs_scheduled=1,
        jobs_already_exist=0,
        overdue_completed=0,
        orphans_removed=1,
        errors=[],
        success=True,
        dry_run=False,
    )
    assert mjobs(app) == {f"{PREFIX}{row}"}
    assert set(jobs(app)) == {"meeting-status-gone"}  # meetings untouched

    orphan_job(app)
    meetings_report = backend.recover(transition="meetings")
    assert meetings_report == RecoverReport(
        total_meetings=1,
        jobs_scheduled=1,
        jobs_already_exist=0,
        overdue_completed=0,
        orphans_removed=1,
        errors=[],
        success=True,
        dry_run=False,
    )
    assert set(jobs(app)) == {f"meeting-status-{meeting}"}
    assert mjobs(app) == {f"{PREFIX}{row}", f"{PREFIX}999"}  # memberships untouched


def test_reconcile_by_name_touches_only_that_transition(
    app: sqlite3.Connection, backend: SqliteBackend
) -> None:
    meeting, row = break_both(app)
    report = backend.reconcile(transition="memberships")
    assert report == TransitionReconcileReport(
        transition="memberships",
        total=1,
        jobs_scheduled=1,
        jobs_already_exist=0,
        overdue_completed=0,
        orphans_removed=1,
        errors=[],
        success=True,
        dry_run=False,
        history_deleted=0,
    )
    assert set(jobs(app)) == {"meeting-status-gone"}
    orphan_job(app)
    meetings_report = backend.reconcile(transition="meetings")
    assert "transitions" not in meetings_report
    assert meetings_report["jobs_scheduled"] == 1
    assert meetings_report["orphans_removed"] == 1
    assert set(jobs(app)) == {f"meeting-status-{meeting}"}
    assert mjobs(app) == {f"{PREFIX}{row}", f"{PREFIX}999"}


def test_wake_by_name_completes_only_that_transition(
    app: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    end = future(10, second=30)
    row = member(app, end)
    meeting = insert(app, end)
    later = future(50)
    member(app, later)
    clock.set(end + timedelta(seconds=1))
    woke = backend.wake(transition="memberships")
    assert (woke["completed"], woke["paused"]) == (1, False)
    assert woke["next_end_time"] == later.isoformat()
    assert status(app, row) == "expired" and meeting_status(app, meeting) == "upcoming"
    woke = backend.wake(transition="meetings")
    assert (woke["completed"], woke["next_end_time"]) == (1, None)
    assert meeting_status(app, meeting) == "done"


# -- unknown names --------------------------------------------------------------------------

CALLS: dict[str, Callable[[SqliteBackend], object]] = {
    "list_jobs": lambda b: b.list_jobs(transition="nosuch"),
    "history": lambda b: b.history(transition="nosuch"),
    "recover": lambda b: b.recover(transition="nosuch"),
    "recover dry run": lambda b: b.recover(dry_run=True, transition="nosuch"),
    "reconcile": lambda b: b.reconcile(transition="nosuch"),
    "pause": lambda b: b.pause(transition="nosuch"),
    "resume": lambda b: b.resume(transition="nosuch"),
    "wake": lambda b: b.wake(transition="nosuch"),
    "doctor": lambda b: b.doctor(transition="nosuch"),
}


@pytest.mark.parametrize("operation", sorted(CALLS))
def test_an_unknown_name_is_refused_before_any_change(
    app: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock, operation: str
) -> None:
    end = future(10)
    insert(app, end)
    member(app, end)
    orphan_job(app)  # recover, reconcile and resume of all would remove it
    clock.set(end + timedelta(minutes=5))  # wake, recover and reconcile would complete rows
    before = state_of(app)
    with pytest.raises(InvalidInput) as refused:
        CALLS[operation](backend)
    assert refused.value.message == "no transition named nosuch"
    assert refused.value.hint == "scheduler-admin transitions list shows the registered ones."
    assert state_of(app) == before


# -- doctor ---------------------------------------------------------------------------------


def checks_of(backend: SqliteBackend, transition: str | None = None) -> dict[str, Any]:
    return {c["name"]: c for c in backend.doctor(transition=transition)}


def test_doctor_by_name_checks_its_triggers_jobs_and_pause(
    app: sqlite3.Connection, backend: SqliteBackend
) -> None:
    member(app, future(60))
    member(app, PAST)  # expired at write: nothing of it to check
    found = checks_of(backend, "memberships")
    assert list(found) == [
        "migrated",
        "scheduler enabled",
        "transition memberships: triggers",
        "transition memberships: jobs",
    ]
    assert all(c["ok"] for c in found.values()), found
    assert found["transition memberships: triggers"]["detail"] == (
        "5 of 5 triggers on memberships present"
    )
    # all of them: today's checks, then the transition's; meetings: today's only
    every = checks_of(backend)
    assert set(found) - {"migrated", "scheduler enabled"} <= set(every)
    meetings = checks_of(backend, "meetings")
    assert not any(name.startswith("transition ") for name in meetings)
    assert set(every) == set(meetings) | set(found)

    # a dropped trigger fails the check (and the doctor of all of them)
    app.execute("DROP TRIGGER scheduler_memberships_after_insert")
    found = checks_of(backend, "memberships")
    triggers = found["transition memberships: triggers"]
    assert triggers["ok"] is False
    assert "missing: scheduler_memberships_after_insert" in triggers["detail"]
    assert "scheduler-admin recover --transition memberships" in triggers["fix"]
    assert checks_of(backend)["transition memberships: triggers"]["ok"] is False
    assert checks_of(backend, "meetings").get("transition memberships: triggers") is None

    # a lost job or an orphan fails the jobs check; recover by name repairs both
    orphan_job(app)
    jobs_check = checks_of(backend, "memberships")["transition memberships: jobs"]
    assert jobs_check["ok"] is False and "1 orphan job" in jobs_check["detail"]
    backend.recover(transition="memberships")
    assert all(c["ok"] for c in checks_of(backend, "memberships").values())

    # paused by name: a failing check saying how to resume
    backend.pause(transition="memberships")
    paused = checks_of(backend, "memberships")["transition memberships: paused"]
    assert paused["ok"] is False
    assert "scheduler-admin resume --transition memberships" in paused["fix"]
    assert checks_of(backend)["transition memberships: paused"]["ok"] is False
    backend.resume(transition="memberships")
    assert "transition memberships: paused" not in checks_of(backend, "memberships")


def test_transition_health_answers_doctors_facts(
    app: sqlite3.Connection, backend: SqliteBackend
) -> None:
    """scheduler.transition_health(): the facts doctor's checks of a transition are made of;
    meetings and an unknown name are refused, a dry run changes nothing."""
    soon, later = member(app, future(5)), member(app, future(60))
    orphan_job(app)
    app.execute("DELETE FROM cron_job WHERE jobname = ?", (f"{PREFIX}{later}",))
    app.execute("DROP TRIGGER scheduler_memberships_after_delete")
    before = state_of(app)
    # ten minutes on: the first row is overdue (its job has not run), the second lacks its job
    facts = transitions.transition_health(app, "memberships", future(10))
    assert facts == {
        "transition": "memberships",
        "table": "memberships",
        "paused": False,
        "triggers": 4,
        "pending_rows": 2,
        "missing_jobs": 1,
        "orphan_jobs": 1,
        "overdue_rows": 1,
        "missing_triggers": ["scheduler_memberships_after_delete"],
        "unreadable_rows": 0,
    }
    assert transitions.transition_health(app, "memberships", future(0))["overdue_rows"] == 0
    assert state_of(app) == before and status(app, soon) == "active"
    backend.pause(transition="memberships")
    assert transitions.transition_health(app, "memberships", future(0))["paused"] is True
    with pytest.raises(InvalidInput, match="meetings is checked by health"):
        transitions.transition_health(app, "meetings", future(0))
    with pytest.raises(InvalidInput, match="no transition named nosuch"):
        transitions.transition_health(app, "nosuch", future(0))
    app.execute("DROP TABLE memberships")
    with pytest.raises(InvalidInput, match="its table memberships does not exist"):
        transitions.transition_health(app, "memberships", future(0))


def test_named_transitions_are_those_but_meetings_whose_table_exists(
    app: sqlite3.Connection, backend: SqliteBackend
) -> None:
    """scheduler.named_transitions(): paused or not, all of them or the one named; what wake
    and list_jobs serve."""
    app.execute("CREATE TABLE trials (id INTEGER PRIMARY KEY, status TEXT, ends_at TEXT)")
    backend.add_transition(
        "trials",
        table="trials",
        key_column="id",
        time_column="ends_at",
        state_column="status",
        from_states=["open"],
        to_state="closed",
    )
    backend.pause(transition="trials")

    def names(name: str | None = None) -> list[str]:
        return [spec.name for spec in transitions.named_transitions(app, name)]

    assert names() == ["memberships", "trials"]
    assert names("trials") == ["trials"] and names("meetings") == [] and names("nosuch") == []
    member(app, future(60))
    app.execute("DROP TABLE memberships")
    assert names() == ["trials"] and names("memberships") == []
    # the waker and list_jobs leave a transition whose table is gone alone
    assert backend.wake(transition="memberships")["paused"] is True
    assert backend.list_jobs(transition="memberships") == []


def test_doctor_names_meetings_paused_by_name(
    app: sqlite3.Connection, backend: SqliteBackend
) -> None:
    backend.pause(transition="meetings")
    assert checks_of(backend, "meetings")["transition meetings: paused"]["ok"] is False
    assert checks_of(backend)["transition meetings: paused"]["ok"] is False
    assert "transition meetings: paused" not in checks_of(backend, "memberships")


def test_a_job_of_a_paused_transition_changes_nothing_even_when_due(
    app: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    end = future(30)
    row = member(app, end)
    backend.pause(transition="memberships")
    with backend.transaction() as conn:
        outcome = commands.execute(
            conn, transition_command("memberships", str(row)), end + timedelta(minutes=1)
        )
    assert (outcome.ok, outcome.message) == (True, "transition memberships paused: nothing done")
    assert status(app, row) == "active" and mjobs(app) == {f"{PREFIX}{row}"}


def test_a_store_not_upgraded_to_0006_is_not_migrated(tmp_path: Path) -> None:
    path = tmp_path / "at_0005.db"
    upgrade("0005", url=f"sqlite:///{path}")
    backend = SqliteBackend(f"sqlite:///{path}")
    try:
        with pytest.raises(NotMigrated, match=r"scheduler_transitions\.paused"):
            backend.list_jobs()
        (migrated,) = backend.doctor()
        assert migrated["ok"] is False and "scheduler_transitions.paused" in migrated["detail"]
    finally:
        backend.close()
