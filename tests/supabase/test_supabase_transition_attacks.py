"""Attacks through a registered second table on the Supabase shape: public.memberships, owned
by the migration role like public.meetings, registered as the transition memberships. The API
roles write it through row-level security with pg_temp domains armed, and try to add a trigger
that its jobs fire; the migration role's default privileges first give them TRIGGER, which
registration refuses. Every attack must fail and change nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta, timezone
from typing import Any

import psycopg
import pytest
from attack_helpers import (
    arm_pg_temp_domains,
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
LATER = FUTURE + timedelta(days=1)
PREFIX = "memberships-status-"
ADD = (
    "select scheduler.add_transition('memberships', 'public.memberships', 'id', 'expires_at', "
    "'status', array['active'], 'expired')"
)
Conn = psycopg.Connection[Any]


@pytest.fixture
def su(supa: SupabaseShape) -> Iterator[Conn]:
    """A superuser connection, with public.attack_log, and public.memberships created by the
    migration role as an application would (row-level security: each user sees their own)."""
    with supa.superuser() as conn, psycopg.connect(supa.dsn(MIGRATOR), autocommit=True) as owner:
        create_attack_log(conn)
        owner.execute(
            "create table public.memberships (id bigint generated always as identity primary key, "
            "user_id uuid not null default auth.uid(), status text not null default 'active', "
            "expires_at timestamptz not null)"
        )
        owner.execute("alter table public.memberships enable row level security")
        owner.execute(
            "create policy own_memberships on public.memberships to authenticated "
            "using (user_id = auth.uid()) with check (user_id = auth.uid())"
        )
        try:
            yield conn
        finally:
            owner.execute(
                "select scheduler.remove_transition(name) from scheduler.transitions "
                "where name = 'memberships'"
            )
            owner.execute("drop table public.memberships")
            drop_attack_log(conn)


def jobs(su: Conn) -> dict[str, str]:
    rows = su.execute(
        "select jobname, schedule from cron.job where jobname like %s", (PREFIX + "%",)
    ).fetchall()
    return dict(rows)


def register(supa: SupabaseShape) -> Any:
    with psycopg.connect(supa.dsn(MIGRATOR), autocommit=True) as owner:
        return owner.execute(ADD).fetchone()[0]  # type: ignore[index]


def assert_no_escalation(su: Conn, role: str) -> None:
    for name in (role, "authenticator", MIGRATOR):
        assert not is_superuser(su, name), f"{name} became a superuser"
    assert evil_jobs(su) == [], "the attack code scheduled a pg_cron job"
    assert logged_users(su) <= {role}, "the attack code ran as another role"


def test_registration_takes_trigger_truncate_references_back_from_the_api_roles(
    supa: SupabaseShape, su: Conn
) -> None:
    """The project's default privileges gave the API roles ALL on the new table, TRIGGER,
    TRUNCATE and REFERENCES included: registering it takes those three back (0009; before, it
    refused the table and said to revoke TRIGGER), and leaves the rest to the application."""
    assert register(supa)["job_prefix"] == PREFIX
    for role in ("anon", "authenticated", "service_role"):
        for privilege in ("trigger", "truncate", "references"):
            assert su.execute(
                "select has_table_privilege(%s, 'public.memberships', %s)", (role, privilege)
            ).fetchone() == (False,), (role, privilege)
        assert su.execute(
            "select has_table_privilege(%s, 'public.memberships', 'select')", (role,)
        ).fetchone() == (True,)


@pytest.fixture
def registered(supa: SupabaseShape, su: Conn) -> Conn:
    with psycopg.connect(supa.dsn(MIGRATOR), autocommit=True) as owner:
        owner.execute("revoke trigger on public.memberships from anon, authenticated, service_role")
    assert register(supa)["job_prefix"] == PREFIX
    return su


def test_authenticated_writes_schedule_as_usual_with_pg_temp_types_armed(
    supa: SupabaseShape, registered: Conn
) -> None:
    """authenticated writes its own memberships after creating pg_temp domains named like
    pg_catalog's types: no check of those domains runs as the migration role (the generic
    triggers' owner), and every write registers, moves or removes its job."""
    su = registered
    with supa.as_role("authenticated", uuid.uuid4()) as conn:
        arm_pg_temp_domains(conn, su, "authenticated")
        (key,) = conn.execute(
            "insert into public.memberships (expires_at) values (%s) returning id", (FUTURE,)
        ).fetchone()  # type: ignore[misc]
        name = f"{PREFIX}{key}"
        assert jobs(su).get(name) == "0 12 1 6 *"
        conn.execute("update public.memberships set expires_at = %s where id = %s", (LATER, key))
        assert jobs(su).get(name) == "0 12 2 6 *"
        conn.execute("update public.memberships set status = 'cancelled' where id = %s", (key,))
        assert name not in jobs(su)
        conn.execute("update public.memberships set status = 'active' where id = %s", (key,))
        assert jobs(su).get(name) == "0 12 2 6 *"
        conn.execute("delete from public.memberships where id = %s", (key,))
        assert name not in jobs(su)
    assert_no_escalation(su, "authenticated")


def test_authenticated_cannot_add_a_trigger_that_the_jobs_fire(
    supa: SupabaseShape, registered: Conn
) -> None:
    """With TRIGGER revoked (registration required it), authenticated cannot add a trigger to
    public.memberships; the transition's job then runs as pg_cron runs it, as the owner, and
    expires the row with no code of the attacker's running."""
    su = registered
    user = uuid.uuid4()
    with supa.as_role("authenticated", user) as conn:
        function = create_pg_temp_trigger_function(conn, "authenticated")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "create trigger scheduler_attack before update on public.memberships "
                f"for each row execute function {function}()"
            )
        (key,) = conn.execute(
            "insert into public.memberships (expires_at) values (%s) returning id", (FUTURE,)
        ).fetchone()  # type: ignore[misc]
        with su.transaction():
            su.execute("set local session_replication_role = replica")
            su.execute(
                "update public.memberships set expires_at = now() - interval '1 minute' "
                "where id = %s",
                (key,),
            )
        assert run_job_as_pg_cron(su, supa.dsn, f"{PREFIX}{key}") == MIGRATOR
        assert su.execute(
            "select status from public.memberships where id = %s", (key,)
        ).fetchone() == ("expired",)
        assert f"{PREFIX}{key}" not in jobs(su)
    assert_no_escalation(su, "authenticated")


@pytest.mark.parametrize("role", ["anon", "authenticated", "service_role"])
def test_api_roles_cannot_register_remove_or_complete_transitions(
    supa: SupabaseShape, registered: Conn, role: str
) -> None:
    su = registered
    for call in (
        ADD.replace("'memberships', 'public", "'other', 'public"),
        "select scheduler.remove_transition('memberships')",
        "select scheduler.complete_transition('memberships', '1')",
    ):
        user = uuid.uuid4() if role == "authenticated" else None
        with (
            supa.as_role(role, user) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute(call)  # type: ignore[arg-type]
    assert [r[0] for r in su.execute("select name from scheduler.transitions order by 1")] == [
        "meetings",
        "memberships",
    ]


def test_service_role_runs_every_operation_of_the_transition_with_pg_temp_types_armed(
    supa: SupabaseShape, registered: Conn
) -> None:
    """service_role calls each admin function that takes a transition's name, naming
    memberships, after creating pg_temp domains named like pg_catalog's types: no check of those
    domains runs as the migration role (the functions' owner), each call does its usual work,
    and the registered table's job stays as its row needs it."""
    su = registered
    (key,) = su.execute(
        "insert into public.memberships (user_id, expires_at) values (gen_random_uuid(), %s) "
        "returning id",
        (FUTURE,),
    ).fetchone()  # type: ignore[misc]
    calls = (
        "select * from scheduler.list_jobs('memberships')",
        "select * from scheduler.history(false, 10, 'memberships')",
        "select scheduler.recover(true, 'memberships')",
        "select scheduler.recover(false, 'memberships')",
        "select scheduler.wake('memberships')",
        "select scheduler.transition_health('memberships')",
        "select * from scheduler.events(10, null, 'memberships')",
        "select scheduler.metrics('memberships')",
    )
    errors = []
    with supa.as_role("service_role") as conn:
        arm_pg_temp_domains(conn, su, "service_role")
        for call in calls:
            try:
                conn.execute(call).fetchall()  # type: ignore[arg-type]
            except psycopg.Error as error:
                errors.append(f"{call}: {error.diag.message_primary}")
        listed = conn.execute(
            "select job_name, key from scheduler.list_jobs('memberships')"
        ).fetchall()
        health = conn.execute("select scheduler.transition_health('memberships')").fetchone()[0]  # type: ignore[index]
    assert errors == [], "a pg_temp type broke an admin function of a transition"
    assert_no_escalation(su, "service_role")
    assert listed == [(f"{PREFIX}{key}", str(key))]
    assert (health["triggers"], health["missing_jobs"], health["orphan_jobs"]) == (4, 0, 0)
    assert jobs(su) == {f"{PREFIX}{key}": "0 12 1 6 *"}
    # pause and resume stay the owner's: service_role may not pause a transition
    with supa.as_role("service_role") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("select scheduler.pause('memberships')")
