"""Attacks of the second round on the Supabase shape (the migration role owns meetings and is
not a superuser; the project's default privileges give every new table to the API roles), in
both grant variants: a trigger on a partition, TRUNCATE and REFERENCES, the lock keys, forged
completion events."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timezone
from typing import Any

import psycopg
import pytest
from attack_helpers import (
    create_attack_log,
    create_pg_temp_trigger_function,
    drop_attack_log,
    evil_jobs,
    is_superuser,
    logged_users,
    run_job_as_pg_cron,
)
from clock_helpers import future_on
from supabase_shape import MIGRATOR, SupabaseShape

UTC = timezone.utc
FUTURE = future_on(6, 1, 12)
API_ROLES = ("anon", "authenticated", "service_role")
Conn = psycopg.Connection[Any]


@pytest.fixture
def su(supa: SupabaseShape) -> Iterator[Conn]:
    with supa.superuser() as conn:
        create_attack_log(conn)
        try:
            yield conn
        finally:
            drop_attack_log(conn)


@pytest.fixture
def owner(supa: SupabaseShape) -> Iterator[Conn]:
    with psycopg.connect(supa.dsn(MIGRATOR), autocommit=True) as conn:
        yield conn


def one(conn: Conn, query: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query, params).fetchone()  # type: ignore[arg-type]
    assert row is not None
    return row[0]


def assert_no_escalation(su: Conn, role: str) -> None:
    for name in (role, "authenticator", MIGRATOR):
        assert not is_superuser(su, name), f"{name} became a superuser"
    assert evil_jobs(su) == [], "the attack code scheduled a pg_cron job"
    assert logged_users(su) <= {role}, "the attack code ran as another role"


@pytest.mark.parametrize("role", API_ROLES)
def test_api_roles_hold_no_truncate_or_references_on_meetings(
    supa: SupabaseShape, su: Conn, role: str
) -> None:
    """The default privileges give ALL on the migration role's tables to the API roles; the
    migration takes TRIGGER, TRUNCATE and REFERENCES back (TRUNCATE bypasses row-level security
    and unschedules nothing)."""
    for privilege in ("trigger", "truncate", "references"):
        assert (
            one(su, "select has_table_privilege(%s, 'public.meetings', %s)", (role, privilege))
            is False
        )


@pytest.fixture
def bookings(owner: Conn) -> Iterator[None]:
    """public.bookings, owned by the migration role and partitioned by hash of id, registered
    as a transition; its second partition is created after the registration (the project's
    default privileges give it to the API roles, TRIGGER included)."""
    owner.execute(
        "create table public.bookings (id bigint not null, status text not null default 'open', "
        "ends_at timestamptz not null, primary key (id)) partition by hash (id)"
    )
    owner.execute("alter table public.bookings enable row level security")
    owner.execute(
        "create table public.bookings_p0 partition of public.bookings "
        "for values with (modulus 2, remainder 0)"
    )
    # as add_transition of revision 0008 asked (it refused a table whose TRIGGER another role
    # held): the parent and its first partition are clean when it is registered
    owner.execute(
        "revoke trigger on public.bookings, public.bookings_p0 "
        "from anon, authenticated, service_role"
    )
    owner.execute(
        "select scheduler.add_transition('bookings', 'public.bookings', 'id', 'ends_at', "
        "'status', array['open'], 'closed')"
    )
    owner.execute(
        "create table public.bookings_p1 partition of public.bookings "
        "for values with (modulus 2, remainder 1)"
    )
    try:
        yield
    finally:
        owner.execute("select scheduler.remove_transition('bookings')")
        owner.execute("drop table public.bookings cascade")


def test_a_trigger_on_a_partition_created_later_never_runs_as_the_migration_role(
    supa: SupabaseShape, su: Conn, owner: Conn, bookings: None
) -> None:
    """authenticated holds TRIGGER on the partition created after the registration (default
    privileges) and adds a BEFORE UPDATE trigger from its pg_temp. The row's job, the sweep of
    its transition and the reconcile job leave that partition's rows alone, complete the
    others, and take the grant back; doctor's facts name the trigger."""
    assert one(su, "select has_table_privilege('authenticated', 'public.bookings_p1', 'trigger')")
    with supa.as_role("authenticated", uuid.uuid4()) as attacker:
        function = create_pg_temp_trigger_function(attacker, "authenticated")
        attacker.execute(
            "create trigger attack before update on public.bookings_p1 "
            f"for each row execute function {function}()"
        )
        # a row in each partition (hash of 1 and 2 differ), due a minute ago
        for key in (1, 2, 3, 4):
            owner.execute(
                "insert into public.bookings (id, ends_at) values (%s, %s)", (key, FUTURE)
            )
        with su.transaction():
            su.execute("set local session_replication_role = replica")
            su.execute("update public.bookings set ends_at = now() - interval '1 minute'")
        by_partition: dict[str, list[int]] = {}
        for key, part in owner.execute(
            "select b.id, c.relname::text from public.bookings b "
            "join pg_class c on c.oid = b.tableoid order by b.id"
        ).fetchall():
            by_partition.setdefault(part, []).append(key)
        run_job_as_pg_cron(su, supa.dsn, f"bookings-status-{by_partition['bookings_p1'][0]}")
        owner.execute("select scheduler.wake('bookings')")
        owner.execute("select scheduler.reconcile()")
        assert_no_escalation(su, "authenticated")

        facts = one(owner, "select scheduler.health()")["security"]["tables"]
        bookings_facts = next(t for t in facts if t["table"] == "public.bookings")
        assert [t["trigger"] for t in bookings_facts["foreign_triggers"]] == ["attack"]

        statuses = dict(owner.execute("select id, status from public.bookings").fetchall())
        assert {statuses[k] for k in by_partition["bookings_p0"]} == {"closed"}
        assert {statuses[k] for k in by_partition["bookings_p1"]} == {"open"}
        assert (
            one(su, "select has_table_privilege('authenticated', 'public.bookings_p1', 'trigger')")
            is False
        ), "reconcile left TRIGGER on the partition created after the registration"

    assert_no_escalation(su, "authenticated")


def test_an_api_role_cannot_stall_reconcile_through_the_old_lock_keys(
    supa: SupabaseShape, owner: Conn
) -> None:
    """anon holds the advisory keys the scheduler used to serialise on: reconcile, recover and
    the sweep go on; the rows of scheduler.locks cannot be locked by it."""
    with supa.as_role("anon") as anon:
        for key in ("scheduler.repair", "scheduler.unschedule"):
            anon.execute("select pg_advisory_lock(hashtext(%s))", (key,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            anon.execute("select 1 from scheduler.locks for update")
        with psycopg.connect(
            supa.dsn(MIGRATOR), autocommit=True, options="-c statement_timeout=20s"
        ) as caller:
            assert "skipped" not in one(caller, "select scheduler.reconcile()")
            assert one(caller, "select scheduler.recover()")["success"] is True


def test_authenticated_cannot_forge_a_completion_event(supa: SupabaseShape, owner: Conn) -> None:
    """The settings the triggers once trusted are set by an authenticated writer, which then
    inserts its own meeting already done with a past end time: no completion event, so no
    signed webhook."""
    owner.execute("update scheduler.settings set webhooks = true")
    user = uuid.uuid4()
    with supa.as_role("authenticated", user) as writer:
        columns = {
            name
            for (name,) in owner.execute(
                "select column_name from information_schema.columns "
                "where table_schema = 'public' and table_name = 'meetings'"
            ).fetchall()
        }
        owned = ", user_id" if "user_id" in columns else ""
        value = ", %s" if owned else ""
        with writer.transaction():
            writer.execute("set local scheduler.completed_on_write = 'on'")
            writer.execute(
                f"insert into public.meetings (title, end_time, status{owned}) "
                f"values ('forged', now() - interval '1 hour', 'done'{value})",
                (user,) if owned else (),
            )
    assert one(owner, "select count(*) from scheduler.completion_events") == 0
