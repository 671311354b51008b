"""Registered timed transitions on SQLite (issue 14, first slice): the registry, the triggers
generated per table, the jobs and their completion, the repair by recover/reconcile, pause."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from clock_helpers import future_on
from sqlalchemy import create_engine, pool
from sqlite_helpers import FakeClock, expected_schedule, future, insert, job, jobs

from scheduler_admin.backends.sqlite import SqliteBackend
from scheduler_admin.core import RecoverReport
from scheduler_admin.exceptions import InvalidInput
from scheduler_admin.migrate import downgrade, upgrade
from scheduler_admin.schema import teardown
from scheduler_admin.sqlite import commands
from scheduler_admin.sqlite.transitions import (
    parse_transition_command,
    transition_command,
)
from scheduler_admin.sqlite.worker import CronWorker

UTC = timezone.utc
PAST = "2020-01-01T00:00:00Z"
YEAR = future_on(3, 14, 9, 26).year  # 14 March of it is at least 30 days ahead
MEMBERSHIPS = (
    "CREATE TABLE memberships (id INTEGER PRIMARY KEY, user_id TEXT, "
    "status TEXT NOT NULL DEFAULT 'active', expires_at TEXT NOT NULL)"
)
# a TEXT key with a unique index, no NOT NULL on the time
PASSES = (
    "CREATE TABLE passes (code TEXT, state TEXT, valid_until TEXT, note TEXT);"
    "CREATE UNIQUE INDEX passes_code_key ON passes (code)"
)
EVIL = "x'); DROP TABLE meetings; --"
PREFIX = "memberships-status-"


@pytest.fixture
def app(conn: sqlite3.Connection) -> sqlite3.Connection:
    """The application's connection with its tables memberships and passes."""
    conn.execute(MEMBERSHIPS)
    for statement in PASSES.split(";"):
        conn.execute(statement)
    return conn


def add_memberships(backend: SqliteBackend, **overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "table": "memberships",
        "key_column": "id",
        "time_column": "expires_at",
        "state_column": "status",
        "from_states": ["active"],
        "to_state": "expired",
    }
    arguments.update(overrides)
    name = arguments.pop("name", "memberships")
    return backend.add_transition(name, **arguments)


def add_passes(backend: SqliteBackend) -> dict[str, Any]:
    return backend.add_transition(
        "passes",
        table="passes",
        key_column="code",
        time_column="valid_until",
        state_column="state",
        from_states=["valid", "paused"],
        to_state="lapsed",
        job_prefix="pass-",
    )


def member(conn: sqlite3.Connection, expires_at: str | datetime, **values: Any) -> int:
    """Insert a membership as the application would; its id."""
    when = expires_at.isoformat() if isinstance(expires_at, datetime) else expires_at
    columns = ["expires_at", *values]
    row = conn.execute(
        f"INSERT INTO memberships ({', '.join(columns)}) VALUES "
        f"({', '.join('?' for _ in columns)}) RETURNING id",
        [when, *values.values()],
    ).fetchone()
    return int(row[0])


def status(conn: sqlite3.Connection, member_id: int) -> str | None:
    row = conn.execute("SELECT status FROM memberships WHERE id = ?", (member_id,)).fetchone()
    return None if row is None else str(row[0])


def tjobs(conn: sqlite3.Connection, prefix: str = PREFIX) -> dict[str, dict[str, Any]]:
    """The jobs of one transition by job name."""
    return {
        row["jobname"]: dict(row)
        for row in conn.execute(
            "SELECT * FROM cron_job WHERE substr(jobname, 1, length(?)) = ?", (prefix, prefix)
        )
    }


def state_of(conn: sqlite3.Connection) -> tuple[list[Any], ...]:
    """Everything a refused call must leave as it was."""
    return (
        [tuple(r) for r in conn.execute("SELECT * FROM scheduler_transitions ORDER BY name")],
        [tuple(r) for r in conn.execute("SELECT * FROM cron_job ORDER BY jobid")],
        [tuple(r) for r in conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name")],
        [tuple(r) for r in conn.execute("SELECT * FROM memberships ORDER BY id")],
    )


def triggers(conn: sqlite3.Connection, name: str) -> set[str]:
    return {
        str(row[0])
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE ?",
            (f"scheduler_{name}_%",),
        )
    }


# -- add, list ------------------------------------------------------------------------------


def test_add_registers_pending_rows_and_completes_due_ones(
    app: sqlite3.Connection, backend: SqliteBackend
) -> None:
    end = future(90, second=30)
    pending = member(app, end, user_id="u1")
    overdue = member(app, PAST)
    other = member(app, future(30), status="suspended")

    result = add_memberships(backend)

    assert result == {
        "name": "memberships",
        "table": "memberships",
        "job_prefix": PREFIX,
        "jobs_registered": 1,
        "completed": 1,
    }
    assert status(app, overdue) == "expired"
    assert status(app, other) == "suspended"
    assert status(app, pending) == "active"
    registered = tjobs(app)
    assert set(registered) == {f"{PREFIX}{pending}"}
    assert registered[f"{PREFIX}{pending}"]["schedule"] == expected_schedule(end)
    assert registered[f"{PREFIX}{pending}"]["command"] == (
        f"complete_transition('memberships', '{pending}')"
    )
    assert triggers(app, "memberships") == {
        f"scheduler_memberships_{kind}"
        for kind in ("before_insert", "before_update", "after_insert", "after_update")
    } | {"scheduler_memberships_after_delete"}

    listed = backend.transitions()
    assert [t["name"] for t in listed] == ["meetings", "memberships"]
    assert listed[0] == {
        "name": "meetings",
        "table_name": "meetings",
        "key_column": "id",
        "time_column": "end_time",
        "state_column": "status",
        "from_states": ["upcoming"],
        "to_state": "done",
        "job_prefix": "meeting-status-",
        "builtin": True,
        "pending_rows": 0,
        "jobs": 0,
        "paused": False,
    }
    assert listed[1] == {
        "name": "memberships",
        "table_name": "memberships",
        "key_column": "id",
        "time_column": "expires_at",
        "state_column": "status",
        "from_states": ["active"],
        "to_state": "expired",
        "job_prefix": PREFIX,
        "builtin": False,
        "pending_rows": 1,
        "jobs": 1,
        "paused": False,
    }


def test_the_builtin_row_lists_the_configured_words(
    conn: sqlite3.Connection, backend: SqliteBackend
) -> None:
    conn.execute(
        "UPDATE scheduler_statuses SET pending_status = 'scheduled', done_status = 'completed'"
    )
    insert(conn, future(60), status="upcoming")  # no longer the pending word: no job
    (meetings,) = backend.transitions()
    assert (meetings["from_states"], meetings["to_state"]) == (["scheduled"], "completed")
    assert meetings["pending_rows"] == 0


def test_the_postgres_spelling_of_the_table_is_accepted(
    app: sqlite3.Connection, backend: SqliteBackend
) -> None:
    assert add_memberships(backend, table="public.Memberships")["table"] == "memberships"


# -- the triggers ---------------------------------------------------------------------------


def test_insert_update_delete_keep_one_job_per_pending_row(
    app: sqlite3.Connection, backend: SqliteBackend
) -> None:
    add_memberships(backend)
    end = future(60, second=15)
    first = member(app, end)
    name = f"{PREFIX}{first}"
    assert tjobs(app)[name]["schedule"] == expected_schedule(end)

    # the time moves: the job follows
    later = future(120)
    app.execute("UPDATE memberships SET expires_at = ? WHERE id = ?", (later.isoformat(), first))
    assert tjobs(app)[name]["schedule"] == expected_schedule(later)
    jobid = tjobs(app)[name]["jobid"]

    # another column changes: the job stays as it is
    app.execute("UPDATE memberships SET user_id = 'u9' WHERE id = ?", (first,))
    assert tjobs(app)[name]["jobid"] == jobid

    # the row leaves the pending state: its job goes; it comes back: the job too
    app.execute("UPDATE memberships SET status = 'suspended' WHERE id = ?", (first,))
    assert tjobs(app) == {}
    app.execute("UPDATE memberships SET status = 'active' WHERE id = ?", (first,))
    assert set(tjobs(app)) == {name}

    # the key changes: the old job goes, the new key gets one
    app.execute("UPDATE memberships SET id = 500 WHERE id = ?", (first,))
    assert set(tjobs(app)) == {f"{PREFIX}500"}

    # a pending row whose time has passed expires at once, without a job
    late = member(app, PAST)
    assert status(app, late) == "expired"
    assert set(tjobs(app)) == {f"{PREFIX}500"}
    # moved into the past: expired at once, its job removed
    app.execute("UPDATE memberships SET expires_at = ? WHERE id = 500", (PAST,))
    assert status(app, 500) == "expired" and tjobs(app) == {}

    # delete: the job goes
    doomed = member(app, future(45))
    assert set(tjobs(app)) == {f"{PREFIX}{doomed}"}
    app.execute("DELETE FROM memberships WHERE id = ?", (doomed,))
    assert tjobs(app) == {}
    # the meetings' jobs were never touched
    assert jobs(app) == {}


def test_a_sub_millisecond_fraction_past_the_minute_rounds_the_job_up(
    app: sqlite3.Connection, backend: SqliteBackend
) -> None:
    """SQLite reads milliseconds only: 09:26:00.0004 reads as 09:26:00.000, yet its job must not
    fire in minute 26 (before the time); zeros beyond the milliseconds change nothing. The
    application's text is kept as written, and the repair expects the same schedules."""
    add_memberships(backend)
    times = {
        f"{YEAR}-03-14T09:26:00.0004Z": "27 9 14 3 *",
        f"{YEAR}-03-14T09:26:00Z": "26 9 14 3 *",
        f"{YEAR}-03-14T09:26:00.000Z": "26 9 14 3 *",
        f"{YEAR}-03-14T09:26:00.0000Z": "26 9 14 3 *",
    }
    ids = {when: member(app, when) for when in times}
    assert {name: job["schedule"] for name, job in tjobs(app).items()} == {
        f"{PREFIX}{ids[when]}": schedule for when, schedule in times.items()
    }
    for when, member_id in ids.items():
        row = app.execute("SELECT expires_at FROM memberships WHERE id = ?", (member_id,))
        assert row.fetchone()[0] == when

    # a row moved onto such a time follows too
    moved = member(app, f"{YEAR}-03-14T09:20:00Z")
    app.execute(
        "UPDATE memberships SET expires_at = ? WHERE id = ?",
        (f"{YEAR}-03-14T11:26:00.000001+02:00", moved),
    )
    assert tjobs(app)[f"{PREFIX}{moved}"]["schedule"] == "27 9 14 3 *"

    before = tjobs(app)
    assert backend.recover()["transitions"]["memberships"] == {
        "total": 5,
        "jobs_scheduled": 0,
        "jobs_already_exist": 5,
        "overdue_completed": 0,
        "orphans_removed": 0,
    }
    assert tjobs(app) == before


def test_rows_in_other_states_are_left_alone(
    app: sqlite3.Connection, backend: SqliteBackend
) -> None:
    add_memberships(backend)
    other = member(app, PAST, status="suspended")
    odd = member(app, "whenever", status="cancelled")  # not pending: not checked either
    app.execute("UPDATE memberships SET expires_at = 'later' WHERE id = ?", (other,))
    assert (status(app, other), status(app, odd)) == ("suspended", "cancelled")
    assert tjobs(app) == {}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("tomorrow", "is not a valid time"),
        ("2026-02-30T10:00:00Z", "is not a valid time"),
        ("2026-12-01T24:00:00Z", "is not a valid time"),
        (20261201, "is not a valid time"),
    ],
)
def test_a_bad_time_on_a_pending_row_is_refused(
    app: sqlite3.Connection, backend: SqliteBackend, value: object, message: str
) -> None:
    add_memberships(backend)
    kept = member(app, future(60))
    before = state_of(app)
    expected = re.escape(
        f"memberships.expires_at (transition memberships, a row in state active) {message}"
    )
    with pytest.raises(sqlite3.IntegrityError, match=expected):
        app.execute("INSERT INTO memberships (expires_at) VALUES (?)", (value,))
    with pytest.raises(sqlite3.IntegrityError, match=expected):
        app.execute("UPDATE memberships SET expires_at = ? WHERE id = ?", (value, kept))
    assert state_of(app) == before


def test_a_missing_time_or_key_on_a_pending_row_is_refused(
    app: sqlite3.Connection, backend: SqliteBackend
) -> None:
    add_passes(backend)
    before = [tuple(r) for r in app.execute("SELECT * FROM passes")]
    with pytest.raises(sqlite3.IntegrityError, match=r"passes.valid_until .* is required"):
        app.execute("INSERT INTO passes (code, state) VALUES ('a', 'valid')")
    with pytest.raises(sqlite3.IntegrityError, match=r"passes.code is required"):
        app.execute(
            "INSERT INTO passes (code, state, valid_until) VALUES (NULL, 'paused', ?)",
            (future(60).isoformat(),),
        )
    assert [tuple(r) for r in app.execute("SELECT * FROM passes")] == before
    assert tjobs(app, "pass-") == {}


def test_the_worker_completes_a_row_at_its_minute(
    app: sqlite3.Connection, backend: SqliteBackend, worker: CronWorker
) -> None:
    add_memberships(backend)
    end = future(30, second=20)
    row = member(app, end)
    job_minute = end.replace(second=0) + timedelta(minutes=1)

    result = worker.tick(end - timedelta(seconds=1))
    assert [run.job_name for run in result.runs] == ["meeting-status-reconcile"]
    assert status(app, row) == "active"

    result = worker.tick(job_minute)
    ran = [run for run in result.runs if run.job_name == f"{PREFIX}{row}"]
    assert len(ran) == 1
    assert ran[0].status == "succeeded"
    assert ran[0].return_message == "completed 1 row (this one included)"
    assert status(app, row) == "expired"
    assert tjobs(app) == {}


def test_the_job_rechecks_the_time(
    app: sqlite3.Connection, backend: SqliteBackend, worker: CronWorker
) -> None:
    """A yearly-repeating schedule that matches a year early completes nothing."""
    add_memberships(backend)
    end = future(60 * 24 * 400)
    row = member(app, end)
    early = (
        end.replace(year=end.year - 1)
        if (end.month, end.day) != (2, 29)
        else end - timedelta(days=366)
    )
    result = worker.tick(early)
    ran = [run for run in result.runs if run.job_name == f"{PREFIX}{row}"]
    assert [run.return_message for run in ran] == ["row not due yet: nothing done"]
    assert status(app, row) == "active" and set(tjobs(app)) == {f"{PREFIX}{row}"}


def test_a_job_whose_row_left_removes_itself(
    app: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    add_memberships(backend)
    row = member(app, future(30))
    app.execute(
        "INSERT INTO cron_job (schedule, command, jobname) VALUES ('* * * * *', ?, ?)",
        (transition_command("memberships", "77"), f"{PREFIX}77"),
    )
    with backend.transaction() as conn:
        outcome = commands.execute(conn, transition_command("memberships", "77"), clock())
    assert (outcome.ok, outcome.message) == (True, "row gone; job removed")
    app.execute("UPDATE memberships SET status = 'suspended' WHERE id = ?", (row,))
    with backend.transaction() as conn:
        outcome = commands.execute(conn, transition_command("memberships", str(row)), clock())
    assert outcome.message == "row already suspended; no job left to remove"
    assert tjobs(app) == {}
    with backend.transaction() as conn, pytest.raises(InvalidInput, match="no transition named"):
        commands.execute(conn, transition_command("nosuch", "1"), clock())


def test_text_keys_are_quoted_safely(
    app: sqlite3.Connection, backend: SqliteBackend, worker: CronWorker
) -> None:
    add_passes(backend)
    meeting = insert(app, future(600))
    end = future(30, second=10)
    keys = [EVIL, 'a"b', "plain"]
    for key in keys:
        app.execute(
            "INSERT INTO passes (code, state, valid_until) VALUES (?, 'valid', ?)",
            (key, end.isoformat()),
        )
    registered = tjobs(app, "pass-")
    assert set(registered) == {f"pass-{key}" for key in keys}
    assert registered[f"pass-{EVIL}"]["command"] == (
        "complete_transition('passes', 'x''); DROP TABLE meetings; --')"
    )
    assert parse_transition_command(registered[f"pass-{EVIL}"]["command"]) == ("passes", EVIL)

    result = worker.tick(end.replace(second=0) + timedelta(minutes=1))
    ran = [run for run in result.runs if run.job_name != "meeting-status-reconcile"]
    assert [run.status for run in ran] == ["succeeded"]  # the first one completes all three
    assert ran[0].return_message == "completed 3 rows (this one included)"
    assert {tuple(r) for r in app.execute("SELECT code, state FROM passes")} == {
        (key, "lapsed") for key in keys
    }
    assert tjobs(app, "pass-") == {}
    assert job(app, meeting) is not None  # meetings is still there, its job too


def test_the_command_parser_is_strict() -> None:
    assert parse_transition_command("complete_transition('m', '1')") == ("m", "1")
    assert parse_transition_command("complete_transition('m', 'it''s')") == ("m", "it's")
    for command in (
        None,
        "",
        "complete_transition('m', 'it's')",
        "complete_transition('m','1')",
        "complete_transition('M', '1')",
        "complete_transition('m', '1'); reconcile()",
        "complete_transition('m', '1') ",
        "complete_transition(m, '1')",
    ):
        assert parse_transition_command(command) is None, command
    assert (
        transition_command("m", EVIL) == "complete_transition('m', 'x''); DROP TABLE meetings; --')"
    )


# -- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "Memberships"}, "transition name 'Memberships' is not valid"),
        ({"name": "m" * 41}, "is not valid"),
        ({"name": "1st"}, "is not valid"),
        ({"name": "meetings"}, "the transition meetings is builtin"),
        ({"table": "nosuch"}, "table nosuch does not exist"),
        ({"table": "member_view"}, "member_view is a view, not a table"),
        ({"table": "cron_job"}, "cron_job is a table of the scheduler"),
        ({"key_column": "nope"}, 'column "nope" \\(the key\\) does not exist in memberships'),
        ({"time_column": "nope"}, 'column "nope" \\(the time\\) does not exist'),
        ({"state_column": "nope"}, 'column "nope" \\(the state\\) does not exist'),
        ({"key_column": "user_id"}, "neither the primary key nor a column with a unique index"),
        ({"key_column": "score"}, 'memberships.score is declared "REAL"'),
        ({"state_column": "rank"}, 'memberships.rank is declared "INTEGER"'),
        ({"state_column": "label"}, "memberships.label is a generated column"),
        ({"state_column": "expires_at"}, "three different columns"),
        ({"from_states": []}, "from_states must name at least one state"),
        ({"from_states": ["active", ""]}, "from_states must name at least one state"),
        ({"to_state": "active"}, "to_state 'active' is among the from states"),
        ({"to_state": ""}, "to_state must not be empty"),
        ({"job_prefix": "Members-"}, "job prefix 'Members-' is not valid"),
        ({"job_prefix": "members"}, "job prefix 'members' is not valid"),
        ({"job_prefix": "meeting-status-m-"}, "starts with 'meeting-status-'"),
        ({"name": "meeting"}, "starts with 'meeting-status-'"),  # the default prefix
    ],
)
def test_each_validation_error_changes_nothing(
    app: sqlite3.Connection, backend: SqliteBackend, overrides: dict[str, Any], message: str
) -> None:
    app.execute("ALTER TABLE memberships ADD COLUMN score REAL")
    app.execute("ALTER TABLE memberships ADD COLUMN rank INTEGER")
    app.execute("ALTER TABLE memberships ADD COLUMN label TEXT AS (user_id || '!')")
    app.execute("CREATE VIEW member_view AS SELECT * FROM memberships")
    member(app, future(60))
    before = state_of(app)
    with pytest.raises(InvalidInput, match=message):
        add_memberships(backend, **overrides)
    assert state_of(app) == before


def test_validation_against_other_transitions(
    app: sqlite3.Connection, backend: SqliteBackend
) -> None:
    add_memberships(backend)
    before = state_of(app)
    cases = [
        ({}, "a transition named memberships already exists"),
        ({"name": "again"}, "memberships.expires_at is already the time of the transition"),
        ({"name": "again", "time_column": "user_id", "job_prefix": "memberships-"}, "overlaps"),
        (
            {"name": "again", "time_column": "user_id", "job_prefix": "memberships-status-x-"},
            "overlaps",
        ),
    ]
    for overrides, message in cases:
        with pytest.raises(InvalidInput, match=message):
            add_memberships(backend, **overrides)
    assert state_of(app) == before


def test_a_pending_row_with_a_bad_time_refuses_the_add(
    app: sqlite3.Connection, backend: SqliteBackend
) -> None:
    good = member(app, future(60))
    bad = member(app, "soon")
    before = state_of(app)
    with pytest.raises(InvalidInput, match=rf"{bad} \('soon'\)"):
        add_memberships(backend)
    assert state_of(app) == before
    assert status(app, good) == "active"


# -- remove ---------------------------------------------------------------------------------


def test_remove_drops_triggers_and_jobs_and_keeps_rows(
    app: sqlite3.Connection, backend: SqliteBackend
) -> None:
    add_memberships(backend)
    rows = [member(app, future(60 + i)) for i in range(3)]
    assert len(tjobs(app)) == 3
    kept = [tuple(r) for r in app.execute("SELECT * FROM memberships ORDER BY id")]

    assert backend.remove_transition("memberships") == {"name": "memberships", "jobs_removed": 3}

    assert tjobs(app) == {} and triggers(app, "memberships") == set()
    assert [tuple(r) for r in app.execute("SELECT * FROM memberships ORDER BY id")] == kept
    assert [t["name"] for t in backend.transitions()] == ["meetings"]
    # the table is the application's again: anything goes, nothing is scheduled
    member(app, PAST)
    member(app, "whenever")
    assert tjobs(app) == {} and status(app, rows[0]) == "active"
    # and it can be registered again (the bad row now refuses it)
    app.execute("DELETE FROM memberships WHERE expires_at = 'whenever'")
    assert add_memberships(backend)["completed"] == 1


def test_remove_refuses_meetings_and_unknown_names(backend: SqliteBackend) -> None:
    with pytest.raises(InvalidInput, match="builtin and cannot be removed"):
        backend.remove_transition("meetings")
    with pytest.raises(InvalidInput, match="no transition named nosuch"):
        backend.remove_transition("nosuch")


# -- meetings, recover, reconcile, pause, waker ---------------------------------------------


def test_meetings_work_as_before_next_to_a_transition(
    app: sqlite3.Connection, backend: SqliteBackend, worker: CronWorker
) -> None:
    add_memberships(backend)
    end = future(30, second=5)
    meeting = insert(app, end)
    row = member(app, end)
    assert job(app, meeting) is not None and set(tjobs(app)) == {f"{PREFIX}{row}"}
    result = worker.tick(end.replace(second=0) + timedelta(minutes=1))
    messages = {run.job_name: run.return_message for run in result.runs}
    assert messages[f"meeting-status-{meeting}"] == "completed 1 meeting (this one included)"
    assert messages[f"{PREFIX}{row}"] == "completed 1 row (this one included)"
    assert app.execute("SELECT status FROM meetings").fetchone()[0] == "done"
    assert status(app, row) == "expired"


def test_reports_have_the_transitions_key_only_with_a_transition(
    app: sqlite3.Connection, backend: SqliteBackend
) -> None:
    insert(app, future(60))
    assert set(backend.recover()) == set(RecoverReport.__annotations__) - {"beyond_horizon"}
    add_memberships(backend)
    member(app, future(60))
    report = backend.recover(dry_run=True)
    assert report["transitions"] == {
        "memberships": {
            "total": 1,
            "jobs_scheduled": 0,
            "jobs_already_exist": 1,
            "overdue_completed": 0,
            "orphans_removed": 0,
        }
    }


def test_reconcile_repairs_a_broken_transition(
    app: sqlite3.Connection, backend: SqliteBackend, worker: CronWorker
) -> None:
    add_memberships(backend)
    right = member(app, future(60))
    wrong = member(app, future(90, second=30))
    missing = member(app, future(120))
    # broken by hand: a trigger dropped, a job lost, one wrong, an orphan, an overdue row
    app.execute("DROP TRIGGER scheduler_memberships_after_insert")
    app.execute("DELETE FROM cron_job WHERE jobname = ?", (f"{PREFIX}{missing}",))
    app.execute(
        "UPDATE cron_job SET schedule = '0 0 1 1 *' WHERE jobname = ?", (f"{PREFIX}{wrong}",)
    )
    app.execute(
        "INSERT INTO cron_job (schedule, command, jobname) VALUES ('1 1 1 1 *', ?, ?)",
        (transition_command("memberships", "999"), f"{PREFIX}999"),
    )
    overdue = member(app, PAST)  # no after-insert trigger: stays active, no job
    assert status(app, overdue) == "active"

    report = backend.reconcile()

    assert report["success"] is True
    assert report["transitions"] == {
        "memberships": {
            "total": 4,
            "jobs_scheduled": 2,
            "jobs_already_exist": 1,
            "overdue_completed": 1,
            "orphans_removed": 1,
        }
    }
    assert status(app, overdue) == "expired"
    assert set(tjobs(app)) == {f"{PREFIX}{k}" for k in (right, wrong, missing)}
    assert tjobs(app)[f"{PREFIX}{wrong}"]["schedule"] == expected_schedule(future(90, second=30))
    assert "scheduler_memberships_after_insert" in triggers(app, "memberships")
    assert set(backend.recover()["transitions"]["memberships"].values()) == {0, 3}
    # the reconcile job says so too
    result = worker.tick()
    (run,) = [r for r in result.runs if r.job_name == "meeting-status-reconcile"]
    assert run.return_message.endswith(
        "; transition memberships: 3 pending rows, 0 scheduled, 3 already there, "
        "0 overdue completed, 0 orphans removed"
    )


def test_a_dropped_table_is_an_error_of_the_repair_not_a_crash(
    app: sqlite3.Connection, backend: SqliteBackend
) -> None:
    add_memberships(backend)
    member(app, future(60))
    app.execute("DROP TABLE memberships")
    report = backend.recover()
    assert report["success"] is False
    assert "its table memberships does not exist" in report["errors"][0]["error"]
    assert backend.transitions()[1]["pending_rows"] == 0
    assert backend.remove_transition("memberships")["jobs_removed"] == 1


def test_pause_stops_registration_and_jobs(
    app: sqlite3.Connection, backend: SqliteBackend, worker: CronWorker
) -> None:
    add_memberships(backend)
    backend.pause()
    end = future(30, second=10)
    row = member(app, end)
    assert tjobs(app) == {}
    late = member(app, PAST)  # as for meetings: a write already past completes at once
    assert status(app, late) == "expired"
    # a job left from before the pause completes nothing while paused
    app.execute(
        "INSERT INTO cron_job (schedule, command, jobname) VALUES (?, ?, ?)",
        (expected_schedule(end), transition_command("memberships", str(row)), f"{PREFIX}{row}"),
    )
    result = worker.tick(end.replace(second=0) + timedelta(minutes=1))
    ran = [r for r in result.runs if r.job_name == f"{PREFIX}{row}"]
    assert [r.return_message for r in ran] == [commands.PAUSED]
    assert status(app, row) == "active"
    app.execute("DELETE FROM cron_job WHERE jobname = ?", (f"{PREFIX}{row}",))
    report = backend.resume()
    assert report["transitions"]["memberships"]["jobs_scheduled"] == 1
    assert set(tjobs(app)) == {f"{PREFIX}{row}"}


def test_add_while_paused_installs_the_triggers_only(
    app: sqlite3.Connection, backend: SqliteBackend
) -> None:
    due = member(app, PAST)
    pending = member(app, future(60))
    backend.pause()
    assert add_memberships(backend)["jobs_registered"] == 0
    assert status(app, due) == "active" and tjobs(app) == {}
    backend.resume()
    assert status(app, due) == "expired" and set(tjobs(app)) == {f"{PREFIX}{pending}"}


def test_the_waker_completes_due_rows(
    app: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    add_memberships(backend)
    end = future(10, second=30)
    row = member(app, end)
    meeting = insert(app, future(20))
    clock.set(end + timedelta(seconds=1))
    woke = backend.wake()
    assert woke["completed"] == 1  # the membership (every transition's rows count)
    assert (
        woke["next_end_time"]
        == app.execute("SELECT end_time FROM meetings WHERE id = ?", (meeting,)).fetchone()[0]
    )
    assert status(app, row) == "expired" and tjobs(app) == {}


# -- migrations -----------------------------------------------------------------------------


def objects(path: Path) -> dict[tuple[str, str], str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT type, name, coalesce(sql, '') FROM sqlite_master "
            "WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE 'alembic_%'"
        ).fetchall()
    return {(t, n): s for t, n, s in rows}


def test_downgrading_0005_drops_the_generated_triggers_and_jobs(tmp_path: Path) -> None:
    at_0004, path = tmp_path / "at_0004.db", tmp_path / "store.db"
    upgrade("0004", url=f"sqlite:///{at_0004}")
    upgrade(url=f"sqlite:///{path}")
    with sqlite3.connect(at_0004) as conn:
        conn.execute(MEMBERSHIPS)
    with sqlite3.connect(path) as conn:
        conn.execute(MEMBERSHIPS)
    backend = SqliteBackend(f"sqlite:///{path}")
    add_memberships(backend)
    backend.close()
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        meeting = insert(conn, future(60))
        row = member(conn, future(60))
        assert set(tjobs(conn)) == {f"{PREFIX}{row}"}
    downgrade("0004", url=f"sqlite:///{path}")
    assert objects(path) == objects(at_0004)
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        assert tjobs(conn) == {} and job(conn, meeting) is not None
        member(conn, "anything goes")  # no trigger of ours left on memberships
    upgrade(url=f"sqlite:///{path}")


def test_teardown_leaves_registered_tables_writable(tmp_path: Path) -> None:
    path = tmp_path / "teardown.db"
    upgrade(url=f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:
        conn.execute(MEMBERSHIPS)
    backend = SqliteBackend(f"sqlite:///{path}")
    add_memberships(backend)
    backend.close()
    engine = create_engine(f"sqlite:///{path}", poolclass=pool.NullPool)
    with engine.begin() as conn:
        teardown(conn)
    engine.dispose()
    assert set(objects(path)) == {("table", "meetings"), ("table", "memberships")}
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        member(conn, datetime.now(UTC).isoformat())
