"""Timed transitions for any table (revision 0005): a registered table gets the meetings'
behaviour (one job per pending row, completed at its time, repaired by recover and the reconcile
job) through generic triggers and functions. Memberships with a bigint key, and a table with a
text key whose values look like SQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from cli_helpers import run, run_json
from clock_helpers import future_on
from pg_helpers import (
    Conn,
    Server,
    expected_schedule,
    reconcile_job_inactive,
    run_command,
    value,
)

UTC = timezone.utc
FUTURE = future_on(3, 14, 9, 26, 1)
PREFIX = "memberships-status-"
ADD = (
    "select scheduler.add_transition('memberships', 'public.memberships', 'id', 'expires_at', "
    "'status', array['active'], 'expired')"
)


@pytest.fixture
def memberships(db: Conn) -> Iterator[Conn]:
    """public.memberships, not registered yet; afterwards every transition of the test removed
    and its tables dropped."""
    db.execute(
        "create table public.memberships (id bigint generated always as identity primary key, "
        "user_id uuid, status text not null default 'active', expires_at timestamptz not null)"
    )
    try:
        with reconcile_job_inactive(db):
            yield db
    finally:
        db.execute(
            "select scheduler.remove_transition(name) from scheduler.transitions where not builtin"
        )
        db.execute("drop table if exists public.memberships, public.invites")


def insert(db: Conn, expires_at: datetime | None, status: str = "active") -> int:
    return int(
        value(
            db,
            "insert into public.memberships (status, expires_at) values (%s, %s) returning id",
            (status, expires_at),
        )
    )


def jobs(db: Conn, prefix: str = PREFIX) -> dict[str, tuple[str, str]]:
    return {
        name: (schedule, command)
        for name, schedule, command in db.execute(
            "select jobname, schedule, command from cron.job where jobname like %s order by 1",
            (prefix + "%",),
        ).fetchall()
    }


def command(name: str, key: object) -> str:
    quoted = str(key).replace("'", "''")
    return (
        f"set statement_timeout = '2min'; "
        f"select scheduler.complete_transition('{name}', '{quoted}')"
    )


def status(db: Conn, key: int) -> str:
    return str(value(db, "select status from public.memberships where id = %s", (key,)))


def test_registering_installs_triggers_jobs_and_completes_what_is_due(memberships: Conn) -> None:
    db = memberships
    pending = insert(db, FUTURE)
    overdue = insert(db, datetime.now(UTC) + timedelta(hours=1))
    db.execute(
        "update public.memberships set expires_at = now() - interval '1 hour' where id = %s",
        (overdue,),
    )  # no trigger yet: overdue when registered
    cancelled = insert(db, FUTURE, status="cancelled")
    result = value(db, ADD)
    assert result == {
        "name": "memberships",
        "table": "public.memberships",
        "job_prefix": PREFIX,
        "jobs_registered": 1,
        "completed": 1,
    }
    assert [status(db, k) for k in (pending, overdue, cancelled)] == [
        "active",
        "expired",
        "cancelled",
    ]
    assert jobs(db) == {
        f"{PREFIX}{pending}": (expected_schedule(FUTURE), command("memberships", pending))
    }
    triggers = {
        r[0]
        for r in db.execute(
            "select tgname from pg_trigger where tgrelid = 'public.memberships'::regclass "
            "and not tgisinternal"
        ).fetchall()
    }
    assert triggers == {
        "scheduler_memberships_before_write",
        "scheduler_memberships_after_insert",
        "scheduler_memberships_after_update",
        "scheduler_memberships_after_delete",
    }
    listed = {
        r["name"]: r for r in run_command(db, "select json_agg(t) from scheduler.transitions() t")
    }
    assert listed["meetings"]["builtin"] is True
    assert listed["meetings"]["from_states"] == ["upcoming"]
    assert {k: listed["memberships"][k] for k in ("table_name", "pending_rows", "jobs")} == {
        "table_name": "public.memberships",
        "pending_rows": 1,
        "jobs": 1,
    }


def test_writes_keep_one_job_per_pending_row(memberships: Conn) -> None:
    db = memberships
    value(db, ADD)
    a, b, c = insert(db, FUTURE), insert(db, FUTURE), insert(db, FUTURE)
    moved = FUTURE + timedelta(days=3, seconds=30)
    db.execute("update public.memberships set expires_at = %s where id = %s", (moved, a))
    db.execute("update public.memberships set status = 'cancelled' where id = %s", (b,))
    db.execute("delete from public.memberships where id = %s", (c,))
    assert jobs(db) == {f"{PREFIX}{a}": (expected_schedule(moved), command("memberships", a))}
    db.execute("update public.memberships set status = 'active' where id = %s", (b,))
    assert set(jobs(db)) == {f"{PREFIX}{a}", f"{PREFIX}{b}"}
    # a pending row written with its time already past expires at once, without a job
    gone = insert(db, datetime.now(UTC) - timedelta(seconds=1))
    assert status(db, gone) == "expired" and f"{PREFIX}{gone}" not in jobs(db)
    # one statement of many rows is handled as a set
    db.execute(
        "insert into public.memberships (expires_at) "
        "select %s + g * interval '1 minute' from generate_series(1, 500) g",
        (FUTURE,),
    )
    assert len(jobs(db)) == 502


def test_a_pending_row_needs_a_finite_time_and_other_states_are_left_alone(
    memberships: Conn,
) -> None:
    db = memberships
    value(db, ADD)
    with pytest.raises(
        psycopg.errors.DatetimeFieldOverflow, match="expires_at infinity is out of range"
    ):
        db.execute("insert into public.memberships (expires_at) values ('infinity')")
    assert value(db, "select count(*) from public.memberships") == 0
    kept = insert(db, datetime.now(UTC) - timedelta(days=1), status="paused")
    assert status(db, kept) == "paused" and jobs(db) == {}


def test_the_job_completes_every_due_row_and_removes_itself(memberships: Conn) -> None:
    db = memberships
    value(db, ADD)
    first, second, later = insert(db, FUTURE), insert(db, FUTURE), insert(db, FUTURE)
    with db.transaction():
        db.execute("set local session_replication_role = replica")
        db.execute(
            "update public.memberships set expires_at = now() - interval '1 second' "
            "where id in (%s, %s)",
            (first, second),
        )
    assert run_command(db, command("memberships", first)) == 2
    assert [status(db, k) for k in (first, second, later)] == ["expired", "expired", "active"]
    assert set(jobs(db)) == {f"{PREFIX}{later}"}
    # a job whose row is gone removes itself
    db.execute("delete from public.memberships where id = %s", (later,))
    db.execute(
        "select cron.schedule(%s, '0 0 1 1 *', %s)",
        (f"{PREFIX}{later}", command("memberships", later)),
    )
    assert run_command(db, command("memberships", later)) == 0
    assert jobs(db) == {}


def test_keys_that_look_like_sql_are_only_ever_values(memberships: Conn) -> None:
    db = memberships
    db.execute(
        "create table public.invites (code text primary key, state varchar(20) not null, "
        "due timestamptz not null)"
    )
    value(
        db,
        "select scheduler.add_transition('invites', 'public.invites', 'code', 'due', 'state', "
        "array['open', 'sent'], 'lapsed', 'invite-')",
    )
    evil = "x'); drop table public.meetings; --"
    db.execute("insert into public.invites values (%s, 'sent', %s)", (evil, FUTURE))
    assert jobs(db, "invite-") == {
        f"invite-{evil}": (expected_schedule(FUTURE), command("invites", evil))
    }
    with db.transaction():
        db.execute("set local session_replication_role = replica")
        db.execute("update public.invites set due = now() - interval '1 second'")
    assert run_command(db, command("invites", evil)) == 1
    assert value(db, "select state from public.invites") == "lapsed"
    assert value(db, "select to_regclass('public.meetings') is not null") is True
    assert jobs(db, "invite-") == {}
    # pg_cron keeps 63 bytes of a job name: a key that would not fit is refused, not cut
    with pytest.raises(psycopg.errors.StringDataRightTruncation, match="too long for a job name"):
        db.execute("insert into public.invites values (%s, 'open', %s)", ("k" * 60, FUTURE))
    assert value(db, "select count(*) from public.invites") == 1


def test_the_schedule_rule_is_the_meetings_one(memberships: Conn) -> None:
    times = [FUTURE, FUTURE + timedelta(microseconds=1), FUTURE.replace(second=0)]
    ours = memberships.execute(
        "select schedule from scheduler.transition_job_specs('x', 'x-', %s, %s)",
        (["1", "2", "3"], times),
    ).fetchall()
    db_schedules = memberships.execute(
        "select schedule from scheduler.job_specs(array[gen_random_uuid(), gen_random_uuid(), "
        "gen_random_uuid()], %s)",
        (times,),
    ).fetchall()
    assert ours == db_schedules == [(expected_schedule(t),) for t in times]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        ("'memberships', 'public.memberships', 'nope', 'expires_at', 'status', array['active'], 'expired'",
         psycopg.errors.UndefinedColumn, "has no column nope"),
        ("'memberships', 'public.memberships', 'id', 'user_id', 'status', array['active'], 'expired'",
         psycopg.errors.DatatypeMismatch, "user_id has type uuid, expected timestamp with time zone"),
        ("'memberships', 'public.memberships', 'user_id', 'expires_at', 'status', array['active'], 'expired'",
         psycopg.errors.InvalidTableDefinition, "user_id is not unique"),
        ("'memberships', 'public.memberships', 'id', 'expires_at', 'status', array['active'], 'active'",
         psycopg.errors.InvalidParameterValue, "a different state to set"),
        ("'Members', 'public.memberships', 'id', 'expires_at', 'status', array['active'], 'expired'",
         psycopg.errors.InvalidParameterValue, "invalid transition name"),
        ("'meetings', 'public.memberships', 'id', 'expires_at', 'status', array['active'], 'expired'",
         psycopg.errors.DuplicateObject, "a transition named meetings exists already"),
        ("'memberships', 'public.memberships', 'id', 'expires_at', 'status', array['active'], 'expired', 'meeting-status-x-'",
         psycopg.errors.InvalidParameterValue, "invalid or overlaps"),
    ],
)  # fmt: skip
def test_registration_refuses_what_it_cannot_serve_and_changes_nothing(
    memberships: Conn, call: str, error: type[Exception], message: str
) -> None:
    before = value(memberships, "select count(*) from scheduler.transitions")
    with pytest.raises(error, match=message):
        memberships.execute(f"select scheduler.add_transition({call})")  # type: ignore[arg-type]
    assert value(memberships, "select count(*) from scheduler.transitions") == before
    assert (
        value(
            memberships,
            "select count(*) from pg_trigger where tgrelid = 'public.memberships'::regclass "
            "and not tgisinternal",
        )
        == 0
    )


def test_registration_takes_foreign_trigger_rights_back_and_refuses_a_table_of_another_owner(
    memberships: Conn,
) -> None:
    """TRIGGER, TRUNCATE and REFERENCES of another role are revoked by the registration (0009;
    before, it refused the table and said to revoke them); a table of another owner is
    refused."""
    db = memberships
    db.execute("drop role if exists transitions_other")
    db.execute("create role transitions_other")
    try:
        db.execute(
            "grant trigger, truncate, references, select on public.memberships to transitions_other"
        )
        db.execute(ADD)
        held = db.execute(
            "select privilege_type from pg_class c, aclexplode(c.relacl) a "
            "where c.oid = 'public.memberships'::regclass "
            "and a.grantee = 'transitions_other'::regrole order by 1"
        ).fetchall()
        assert held == [("SELECT",)]
        db.execute("select scheduler.remove_transition('memberships')")
        db.execute("alter table public.memberships owner to transitions_other")
        with pytest.raises(
            psycopg.errors.InsufficientPrivilege, match="belongs to transitions_other"
        ) as info:
            db.execute(ADD)
        assert "alter table public.memberships owner to" in str(info.value.diag.message_hint)
        db.execute("alter table public.memberships owner to current_user")
    finally:
        db.execute("drop owned by transitions_other")
        db.execute("drop role transitions_other")


def test_removing_keeps_the_rows_and_removes_triggers_index_and_jobs(memberships: Conn) -> None:
    db = memberships
    value(db, ADD)
    for _ in range(3):
        insert(db, FUTURE)
    assert value(db, "select scheduler.remove_transition('memberships')") == {
        "name": "memberships",
        "jobs_removed": 3,
    }
    assert jobs(db) == {}
    assert value(db, "select count(*) from public.memberships where status = 'active'") == 3
    assert (
        value(
            db,
            "select count(*) from pg_trigger where tgrelid = 'public.memberships'::regclass "
            "and not tgisinternal",
        )
        == 0
    )
    assert value(db, "select to_regclass('public.scheduler_memberships_due_idx')") is None
    insert(db, datetime.now(UTC) - timedelta(days=1))  # no trigger: stays active
    assert value(db, "select count(*) from public.memberships where status = 'active'") == 4
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="cannot be removed"):
        db.execute("select scheduler.remove_transition('meetings')")
    with pytest.raises(psycopg.errors.NoDataFound, match="no transition named memberships"):
        db.execute("select scheduler.remove_transition('memberships')")


def test_recover_and_reconcile_repair_a_transition(memberships: Conn) -> None:
    db = memberships
    assert "transitions" not in value(db, "select scheduler.recover(true)")
    value(db, ADD)
    kept, lost, overdue = insert(db, FUTURE), insert(db, FUTURE), insert(db, FUTURE)
    db.execute("select cron.unschedule(%s)", (f"{PREFIX}{lost}",))
    db.execute(
        "select cron.schedule(%s, '0 0 1 1 *', 'select 1')", (f"{PREFIX}999999",)
    )  # an orphan
    with db.transaction():
        db.execute("set local session_replication_role = replica")
        db.execute(
            "update public.memberships set expires_at = now() - interval '1 hour' where id = %s",
            (overdue,),
        )
    expected = {
        "total": 3,
        "jobs_scheduled": 1,
        "jobs_already_exist": 1,
        "overdue_completed": 1,
        "orphans_removed": 1,
    }
    assert value(db, "select scheduler.recover(true)")["transitions"] == {"memberships": expected}
    assert value(db, "select scheduler.reconcile()")["transitions"] == {"memberships": expected}
    assert set(jobs(db)) == {f"{PREFIX}{kept}", f"{PREFIX}{lost}"}
    assert status(db, overdue) == "expired"
    again = value(db, "select scheduler.recover()")["transitions"]["memberships"]
    assert again == {**expected, "total": 2, "jobs_scheduled": 0, "jobs_already_exist": 2,
                     "overdue_completed": 0, "orphans_removed": 0}  # fmt: skip


def test_the_sweep_and_pause_apply_to_every_transition(memberships: Conn) -> None:
    db = memberships
    value(db, ADD)
    swept, held = insert(db, FUTURE), insert(db, FUTURE)

    def make_due(key: int) -> None:
        with db.transaction():
            db.execute("set local session_replication_role = replica")
            db.execute(
                "update public.memberships set expires_at = now() - interval '1 second' "
                "where id = %s",
                (key,),
            )

    make_due(swept)
    assert run_command(db, "select scheduler.sweep()") == 1
    assert status(db, swept) == "expired"
    make_due(held)
    db.execute("select scheduler.pause()")
    try:
        assert run_command(db, "select scheduler.sweep()") == 0
        assert run_command(db, command("memberships", held)) == 0
        assert status(db, held) == "active"
        fresh = insert(db, FUTURE)
        assert f"{PREFIX}{fresh}" not in jobs(db)  # paused: no job registered
    finally:
        resumed = value(db, "select scheduler.resume()")
    # resuming recovers every transition: the due row completed, the missing job registered
    assert resumed["transitions"]["memberships"]["overdue_completed"] == 1
    assert status(db, held) == "expired"
    assert f"{PREFIX}{fresh}" in jobs(db)


def test_the_cli_adds_lists_and_removes(
    capsys: pytest.CaptureFixture[str], memberships: Conn, migrated: Server
) -> None:
    key = insert(memberships, FUTURE)
    url = ("--database-url", migrated.url)
    added = run_json(
        capsys, *url, "transitions", "add", "memberships", "--table", "public.memberships",
        "--key", "id", "--time", "expires_at", "--state", "status", "--from", "active",
        "--to", "expired",
    )  # fmt: skip
    assert added["jobs_registered"] == 1 and f"{PREFIX}{key}" in jobs(memberships)
    listed = run_json(capsys, *url, "transitions", "list")
    assert [t["name"] for t in listed] == ["meetings", "memberships"]
    assert listed[1]["from_states"] == ["active"] and listed[1]["jobs"] == 1
    code, _out, err = run(capsys, *url, "transitions", "remove", "meetings")
    assert code == 1 and "cannot be removed" in err
    assert run_json(capsys, *url, "transitions", "remove", "memberships")["jobs_removed"] == 1
    assert jobs(memberships) == {}
    code, _out, err = run(capsys, *url, "transitions", "remove", "memberships")
    assert code == 1 and "Error: no transition named memberships" in err
    assert "Hint: scheduler-admin transitions list shows the registered ones." in err
    code, _out, err = run(
        capsys, *url, "transitions", "add", "memberships", "--table", "public.memberships",
        "--key", "nope", "--time", "expires_at", "--state", "status", "--from", "active",
        "--to", "expired",
    )  # fmt: skip
    assert code == 1 and "Error: public.memberships has no column nope" in err
    assert "Traceback" not in err
