"""Attacks of the second round on the self-hosted shape (the superuser migrates): a trigger on a
partition, the lock keys, a poison row, forged completion events, over-long keys, TRUNCATE and
REFERENCES. Each attack must fail, change nothing it should not, and show in doctor's facts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta, timezone
from typing import Any

import psycopg
import pytest
from attack_helpers import (
    assert_no_escalation,
    create_pg_temp_trigger_function,
    dsn_as,
    run_job_as_pg_cron,
)
from clock_helpers import future_on
from pg_helpers import Conn, Server, connect, job_name, migrate, status_of, value

UTC = timezone.utc
FUTURE = future_on(6, 1, 12)
ATTACKER = "scheduler_test_r2_attacker"
MEETINGS_INDEX = "meetings_upcoming_end_time_idx"


def health(db: Conn) -> dict[str, Any]:
    result = value(db, "select scheduler.health()")
    assert isinstance(result, dict)
    return result


def overdue(db: Conn, table: str, key: str, keys: list[object], column: str) -> None:
    """As the superuser: move rows' times into the past without firing any trigger."""
    with db.transaction():
        db.execute("set local session_replication_role = replica")
        db.execute(
            f"update {table} set {column} = now() - interval '1 minute' where {key} = any(%s)",
            (keys,),
        )


# 1. A trigger on a partition ------------------------------------------------------------------


@pytest.fixture
def partitioned_meetings(db: Conn, migrated: Server) -> Iterator[Conn]:
    """public.meetings partitioned by hash of id, with one partition when the migration runs
    (meetings_p0) and one created afterwards (meetings_p1, as an application adds partitions);
    the original table is put back afterwards."""
    migrate(migrated, "base", down=True)
    db.execute("alter table public.meetings rename to meetings_aside")
    db.execute(f"alter index if exists public.{MEETINGS_INDEX} rename to {MEETINGS_INDEX}_aside")
    try:
        db.execute(
            """
            create table public.meetings (
                id uuid not null default gen_random_uuid(),
                title text,
                end_time timestamptz not null,
                status text not null default 'upcoming',
                primary key (id)
            ) partition by hash (id)
            """
        )
        db.execute(
            "create table public.meetings_p0 partition of public.meetings "
            "for values with (modulus 2, remainder 0)"
        )
        yield db
    finally:
        migrate(migrated, "base", down=True)
        db.execute("drop table if exists public.meetings cascade")
        db.execute("alter table public.meetings_aside rename to meetings")
        db.execute(
            f"alter index if exists public.{MEETINGS_INDEX}_aside rename to {MEETINGS_INDEX}"
        )
        migrate(migrated)


def one_meeting_per_partition(db: Conn) -> dict[str, object]:
    """Insert upcoming meetings until each partition holds one; {partition: meeting id}."""
    found: dict[str, object] = {}
    while len(found) < 2:
        row = db.execute(
            "insert into public.meetings (title, end_time) values ('m', %s) "
            "returning id, tableoid::regclass::text",
            (FUTURE,),
        ).fetchone()
        assert row is not None
        if row[1] in found:
            db.execute("delete from public.meetings where id = %s", (row[0],))
        else:
            found[row[1]] = row[0]
    return found


def test_the_migration_revokes_trigger_truncate_references_on_every_partition(
    partitioned_meetings: Conn, migrated: Server, login_as: Callable[..., Conn]
) -> None:
    """TRIGGER, TRUNCATE and REFERENCES granted on the table and its partition before the
    migration are taken back from every role but the owner."""
    db = partitioned_meetings
    login_as(ATTACKER).close()
    for table in ("public.meetings", "public.meetings_p0"):
        db.execute(f"grant trigger, truncate, references, select on {table} to {ATTACKER}, public")
    migrate(migrated)
    held = db.execute(
        "select c.relname, a.privilege_type from pg_class c, aclexplode(c.relacl) a "
        "where c.relname in ('meetings', 'meetings_p0') and a.grantee <> c.relowner "
        "and a.privilege_type in ('TRIGGER', 'TRUNCATE', 'REFERENCES')"
    ).fetchall()
    assert held == []
    # SELECT is the application's business: left as it was
    assert value(db, "select has_table_privilege(%s, 'public.meetings_p0', 'select')", (ATTACKER,))


def test_a_trigger_on_a_partition_attached_later_never_runs_as_the_owner(
    partitioned_meetings: Conn,
    migrated: Server,
    attack_log: None,
    login_as: Callable[..., Conn],
) -> None:
    """A partition created after the migration, on which a role was given TRIGGER (as
    Supabase's default privileges do for every new table): the role adds a BEFORE UPDATE
    trigger whose function lives in its pg_temp. The meeting's job, the reconcile job, recover
    and the waker's wake() leave that partition's meetings alone (never running the trigger as
    the owner) and complete the others; doctor's facts name the trigger and the grant; the next
    reconcile takes the grant back."""
    db = partitioned_meetings
    migrate(migrated)
    db.execute(
        "create table public.meetings_p1 partition of public.meetings "
        "for values with (modulus 2, remainder 1)"
    )
    attacker = login_as(ATTACKER, "grant usage on schema public to {role}")
    db.execute(f"grant trigger on public.meetings_p1 to {ATTACKER}")
    function = create_pg_temp_trigger_function(attacker, ATTACKER)
    attacker.execute(
        "create trigger attack before update on public.meetings_p1 "
        f"for each row execute function {function}()"
    )
    by_partition = one_meeting_per_partition(db)
    tainted, clean = by_partition["meetings_p1"], by_partition["meetings_p0"]
    overdue(db, "public.meetings", "id", [tainted, clean], "end_time")

    run_job_as_pg_cron(db, lambda user: dsn_as(migrated, user), job_name(tainted))
    db.execute("select scheduler.wake()")
    db.execute("select scheduler.recover()")

    assert_no_escalation(db, ATTACKER)
    assert status_of(db, clean) == "done"
    assert status_of(db, tainted) == "upcoming"
    facts = health(db)["security"]["tables"]
    meetings_facts = next(t for t in facts if t["table"] == "public.meetings")
    assert [t["trigger"] for t in meetings_facts["foreign_triggers"]] == ["attack"]
    assert {
        (g["relation"], g["grantee"], g["privilege"]) for g in meetings_facts["foreign_grants"]
    } >= {("public.meetings_p1", ATTACKER, "TRIGGER")}
    db.execute("select scheduler.reconcile()")
    assert_no_escalation(db, ATTACKER)
    assert status_of(db, tainted) == "upcoming"

    assert not value(
        db, "select has_table_privilege(%s, 'public.meetings_p1', 'trigger')", (ATTACKER,)
    ), "reconcile left TRIGGER on the partition attached after the migration"
    # the admin functions refuse to write that meeting as the owner
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="meetings_p1"):
        db.execute("select scheduler.cancel_meeting(%s)", (tainted,))
    # once the trigger is gone, the meeting completes
    # dropped before the attacker's session ends: its exit drops the pg_temp function and,
    # with it, the trigger, and the two drops would deadlock
    db.execute("drop trigger if exists attack on public.meetings_p1")
    attacker.close()
    db.execute("select scheduler.reconcile()")
    assert status_of(db, tainted) == "done"


def test_doctor_flags_a_partition_the_api_roles_may_read_with_rls_off(
    partitioned_meetings: Conn, migrated: Server
) -> None:
    """Reading a partition directly skips the parent's policies: a partition that PUBLIC (or
    anon, authenticated) may read with row-level security off shows in doctor's facts."""
    db = partitioned_meetings
    migrate(migrated)
    db.execute("alter table public.meetings enable row level security")
    db.execute("grant select on public.meetings_p0 to public")
    facts = next(t for t in health(db)["security"]["tables"] if t["table"] == "public.meetings")
    assert facts["readable_without_rls"] == [
        {"relation": "public.meetings_p0", "grantee": "PUBLIC"}
    ]
    db.execute("alter table public.meetings_p0 enable row level security")
    facts = next(t for t in health(db)["security"]["tables"] if t["table"] == "public.meetings")
    assert facts["readable_without_rls"] == []


@pytest.fixture
def bookings(db: Conn) -> Iterator[None]:
    """public.bookings, partitioned by hash of id, registered as the transition bookings."""
    db.execute(
        "create table public.bookings (id bigint not null, status text not null default 'open', "
        "ends_at timestamptz, primary key (id)) partition by hash (id)"
    )
    db.execute(
        "create table public.bookings_p0 partition of public.bookings "
        "for values with (modulus 2, remainder 0)"
    )
    db.execute(
        "create table public.bookings_p1 partition of public.bookings "
        "for values with (modulus 2, remainder 1)"
    )
    try:
        yield
    finally:
        db.execute(
            "select scheduler.remove_transition('bookings') where exists "
            "(select 1 from scheduler.transitions where name = 'bookings')"
        )
        db.execute("drop table public.bookings cascade")


def test_transitions_add_revokes_on_every_partition_and_refuses_a_foreign_trigger(
    db: Conn, bookings: None, attack_log: None, login_as: Callable[..., Conn]
) -> None:
    """Registering a partitioned table takes TRIGGER, TRUNCATE and REFERENCES back on every
    partition; a partition that already carries another role's trigger is refused, with what
    to do."""
    attacker = login_as(ATTACKER, "grant usage on schema public to {role}")
    db.execute(f"grant trigger, truncate, references on public.bookings_p1 to {ATTACKER}")
    function = create_pg_temp_trigger_function(attacker, ATTACKER)
    attacker.execute(
        "create trigger attack before update on public.bookings_p1 "
        f"for each row execute function {function}()"
    )
    add = (
        "select scheduler.add_transition('bookings', 'public.bookings', 'id', 'ends_at', "
        "'status', array['open'], 'closed')"
    )
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="bookings_p1") as info:
        db.execute(add)
    assert "drop the triggers" in (info.value.diag.message_hint or "")
    # dropped before the attacker's session ends: its exit drops the pg_temp function and,
    # with it, the trigger, and the two drops would deadlock
    db.execute("drop trigger if exists attack on public.bookings_p1")
    attacker.close()
    db.execute(add)
    assert (
        value(
            db,
            "select count(*) from pg_class c, aclexplode(c.relacl) a where c.relname like 'bookings%%' "
            "and a.grantee <> c.relowner and a.privilege_type in ('TRIGGER','TRUNCATE','REFERENCES')",
        )
        == 0
    )
    assert_no_escalation(db, ATTACKER)


# 2. The lock keys -----------------------------------------------------------------------------


def test_a_role_with_only_connect_cannot_stall_reconcile_recover_or_the_sweep(
    db: Conn, login_as: Callable[..., Conn]
) -> None:
    """The advisory keys the scheduler used to serialise on were public: holding them made
    reconcile skip and recover fail. Serialisation is now on rows of scheduler.locks, which no
    role but the owner may lock."""
    stranger = login_as(ATTACKER)
    for key in ("scheduler.repair", "scheduler.unschedule"):
        stranger.execute("select pg_advisory_lock(hashtext(%s))", (key,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        stranger.execute("select 1 from scheduler.locks for update")
    row = db.execute(
        "insert into public.meetings (title, end_time) values ('m', %s) returning id", (FUTURE,)
    ).fetchone()
    assert row is not None
    overdue(db, "public.meetings", "id", [row[0]], "end_time")
    with connect(db.info.dsn, options="-c statement_timeout=20s") as caller:
        report = value(caller, "select scheduler.reconcile()")
        assert "skipped" not in report
        assert value(caller, "select scheduler.recover()")["success"] is True
    assert status_of(db, row[0]) == "done"


def test_a_reconcile_skipped_three_times_in_a_row_shows_in_health_and_metrics(db: Conn) -> None:
    """Skips are counted (another recovery held the lock): three in a row make health not ok;
    the next run that does its work resets the count."""
    with connect(db.info.dsn) as holder, holder.transaction():
        holder.execute("select scheduler.take_lock('repair', true)")
        for _ in range(3):
            assert "skipped" in value(db, "select scheduler.reconcile()")
        facts = health(db)
        assert facts["reconcile_skipped_in_a_row"] == 3
        assert facts["ok"] is False
        assert value(db, "select scheduler.metrics()")["reconcile_skipped_in_a_row"] == 3
    value(db, "select scheduler.reconcile()")
    assert health(db)["reconcile_skipped_in_a_row"] == 0


# 3. A poison row -------------------------------------------------------------------------------


@pytest.fixture
def two_step_bookings(db: Conn) -> Iterator[None]:
    """public.stays with two transitions: pending -> active at starts_at, active -> finished at
    ends_at (null allowed while pending)."""
    db.execute(
        "create table public.stays (id bigint primary key, status text not null, "
        "starts_at timestamptz, ends_at timestamptz)"
    )
    db.execute(
        "select scheduler.add_transition('stay_start', 'public.stays', 'id', 'starts_at', "
        "'status', array['pending'], 'active')"
    )
    db.execute(
        "select scheduler.add_transition('stay_end', 'public.stays', 'id', 'ends_at', "
        "'status', array['active'], 'finished')"
    )
    try:
        yield
    finally:
        for name in ("stay_start", "stay_end"):
            db.execute("select scheduler.remove_transition(%s)", (name,))
        db.execute("drop table public.stays")


def stays(db: Conn) -> dict[int, str]:
    return dict(db.execute("select id, status from public.stays order by id").fetchall())


def test_a_poison_row_never_holds_up_other_rows_or_transitions(
    db: Conn, two_step_bookings: None
) -> None:
    """A stay without ends_at cannot become active (the second transition's BEFORE trigger
    rejects an active row without its time). The other stays, the other transition and overdue
    meetings complete on every path; the poison row is recorded with its error and left out
    until its retry time; health and the metrics show it; once fixed, it completes."""
    db.execute(
        "insert into public.stays values (1, 'pending', %s, %s), (2, 'pending', %s, null), "
        "(3, 'pending', %s, %s), (4, 'active', null, %s)",
        (FUTURE, FUTURE + timedelta(days=1), FUTURE, FUTURE, FUTURE + timedelta(days=1), FUTURE),
    )
    overdue(db, "public.stays", "id", [1, 2, 3], "starts_at")
    overdue(db, "public.stays", "id", [4], "ends_at")
    meeting = db.execute(
        "insert into public.meetings (title, end_time) values ('m', %s) returning id", (FUTURE,)
    ).fetchone()
    assert meeting is not None
    overdue(db, "public.meetings", "id", [meeting[0]], "end_time")

    db.execute("select scheduler.sweep()")
    assert stays(db) == {1: "active", 2: "pending", 3: "active", 4: "finished"}
    assert status_of(db, meeting[0]) == "done"
    failing = db.execute(
        "select transition, row_key, sqlstate, attempts, retry_at > now() "
        "from scheduler.failing_rows"
    ).fetchall()
    assert failing == [("stay_start", "2", "23502", 1, True)]
    facts = health(db)
    assert facts["failing_rows"] == 1
    assert facts["failing_rows_detail"][0]["key"] == "2"
    assert "ends_at is required" in facts["failing_rows_detail"][0]["error"]
    assert value(db, "select scheduler.metrics()")["failing_rows"] == 1

    # left out until its retry time: the paths run, nothing is tried again
    for call in (
        "select scheduler.sweep()",
        "select scheduler.wake()",
        "select scheduler.reconcile()",
        "select scheduler.recover()",
    ):
        report = value(db, call)
        if isinstance(report, dict) and "success" in report:
            assert report["success"] is True, report
    assert value(db, "select attempts from scheduler.failing_rows") == 1

    # due again: tried, fails, the back-off doubles
    db.execute("update scheduler.failing_rows set retry_at = now()")
    db.execute("select scheduler.sweep()")
    attempts, wait = db.execute(
        "select attempts, extract(epoch from retry_at - last_failed_at) from scheduler.failing_rows"
    ).fetchone()  # type: ignore[misc]
    assert attempts == 2 and 19 <= float(wait) <= 21

    # fixed by a write (which completes it, its time having passed): the reconcile job removes
    # the entry of a row no longer pending
    db.execute("update public.stays set ends_at = %s where id = 2", (FUTURE + timedelta(days=1),))
    assert stays(db)[2] == "active"
    db.execute("select scheduler.reconcile()")
    assert value(db, "select count(*) from scheduler.failing_rows") == 0


def test_a_check_constraint_rejecting_one_meeting_holds_up_no_other(db: Conn) -> None:
    """A CHECK constraint of the application's that rejects one meeting's completion: the
    meeting's own job, the sweep and the reconcile job complete every other meeting."""
    db.execute(
        "alter table public.meetings add constraint r2_no_done_bad "
        "check (not (status = 'done' and title = 'bad'))"
    )
    try:
        ids = [
            value(
                db,
                "insert into public.meetings (title, end_time) values (%s, %s) returning id",
                (title, FUTURE),
            )
            for title in ("good-1", "bad", "good-2")
        ]
        overdue(db, "public.meetings", "id", ids, "end_time")
        db.execute(
            "select scheduler.complete_meeting(%s)", (ids[1],)
        )  # the poison meeting's own job
        assert [status_of(db, i) for i in ids] == ["done", "upcoming", "done"]
        assert value(db, "select row_key from scheduler.failing_rows") == str(ids[1])
        assert value(db, "select scheduler.reconcile()")["success"] is True
        # the constraint relaxed: the next try completes it, and its entry goes
        db.execute("alter table public.meetings drop constraint r2_no_done_bad")
        db.execute("update scheduler.failing_rows set retry_at = now()")
        db.execute("select scheduler.sweep()")
        assert status_of(db, ids[1]) == "done"
        assert value(db, "select count(*) from scheduler.failing_rows") == 0
    finally:
        db.execute("delete from public.meetings where title = 'bad'")
        db.execute("alter table public.meetings drop constraint if exists r2_no_done_bad")


# 4. Forged completion events ---------------------------------------------------------------------


def test_a_writer_cannot_forge_completion_events(db: Conn, login_as: Callable[..., Conn]) -> None:
    """Setting the settings the triggers once trusted, then inserting rows already done with a
    past end time, makes no completion event; a meeting the scheduler completes on a write
    still makes one."""
    writer = login_as(
        ATTACKER,
        "grant usage on schema public to {role}",
        "grant insert, select on public.meetings to {role}",
        "create policy {role} on public.meetings to {role} using (true) with check (true)",
    )
    db.execute("update scheduler.settings set webhooks = true")
    with writer.transaction():
        writer.execute("set local scheduler.completed_on_write = 'on'")
        writer.execute("set local scheduler.transition_completed_on_write = 'on'")
        writer.execute(
            "insert into public.meetings (title, end_time, status) "
            "values ('forged', now() - interval '1 hour', 'done')"
        )
    assert value(db, "select count(*) from scheduler.completion_events") == 0
    with writer.transaction():
        writer.execute("set local scheduler.completed_on_write = 'on'")
        writer.execute(
            "insert into public.meetings (title, end_time) values ('late', now() - interval '1 hour')"
        )
    events = db.execute(
        "select m.title, e.path from scheduler.completion_events e "
        "join public.meetings m on m.id = e.meeting_id"
    ).fetchall()
    assert events == [("late", "write")]
    assert value(db, "select count(*) from scheduler.write_completions") == 0


# 5. Over-long keys -------------------------------------------------------------------------------

LONG_A = "k" * 60 + "-a"
LONG_B = "k" * 60 + "-b"


@pytest.fixture
def tickets(db: Conn) -> Iterator[None]:
    db.execute(
        "create table public.tickets (code text primary key, status text not null, "
        "due_at timestamptz not null)"
    )
    db.execute(
        "select scheduler.add_transition('tickets', 'public.tickets', 'code', 'due_at', "
        "'status', array['open'], 'expired')"
    )
    try:
        yield
    finally:
        db.execute("select scheduler.resume()")
        db.execute("select scheduler.remove_transition('tickets')")
        db.execute("drop table public.tickets")


def test_over_long_keys_are_refused_while_paused_and_never_fail_resume(
    db: Conn, tickets: None
) -> None:
    """A key too long for a job name is refused on write, paused or not. Rows written with the
    triggers off are reported one by one by resume, recover and reconcile, which never fail as a
    whole and never register (nor re-add) a cut job for them."""
    db.execute("select scheduler.pause()")
    with pytest.raises(psycopg.errors.StringDataRightTruncation, match="too long"):
        db.execute(
            "insert into public.tickets values (%s, 'open', %s), (%s, 'open', %s)",
            (LONG_A, FUTURE, LONG_B, FUTURE),
        )
    with db.transaction():
        db.execute("set local session_replication_role = replica")
        db.execute(
            "insert into public.tickets values (%s, 'open', %s), (%s, 'open', %s), "
            "('short', 'open', %s)",
            (LONG_A, FUTURE, LONG_B, FUTURE, FUTURE),
        )
    report = value(db, "select scheduler.resume()")
    tickets_report = report["transitions"]["tickets"]
    assert sorted(e["key"] for e in tickets_report["errors"]) == [LONG_A, LONG_B]
    assert tickets_report["jobs_scheduled"] == 1
    for _ in range(2):
        reconciled = value(db, "select scheduler.reconcile()")["transitions"]["tickets"]
        assert reconciled["jobs_scheduled"] == 0 and reconciled["orphans_removed"] == 0
    jobs = [
        name
        for (name,) in db.execute(
            "select jobname from cron.job where jobname like 'tickets-status-%%'"
        ).fetchall()
    ]
    assert jobs == ["tickets-status-short"]


# 7. TRUNCATE and REFERENCES -----------------------------------------------------------------------


def test_truncate_and_references_on_meetings_show_in_doctor_and_go_at_the_next_reconcile(
    db: Conn, login_as: Callable[..., Conn]
) -> None:
    login_as(ATTACKER).close()
    db.execute(f"grant truncate, references on public.meetings to {ATTACKER}")
    facts = next(t for t in health(db)["security"]["tables"] if t["table"] == "public.meetings")
    assert sorted(g["privilege"] for g in facts["foreign_grants"]) == ["REFERENCES", "TRUNCATE"]
    db.execute("select scheduler.reconcile()")
    facts = next(t for t in health(db)["security"]["tables"] if t["table"] == "public.meetings")
    assert facts["foreign_grants"] == []


def test_health_is_json_serialisable(db: Conn) -> None:
    """(doctor prints these facts with --json)"""
    json.dumps(health(db))
