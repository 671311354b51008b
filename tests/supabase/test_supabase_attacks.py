"""Attacks on the Supabase shape: the API roles (anon, authenticated, service_role, reached
through PostgREST's authenticator) try to run code as the migration role that owns our
functions and jobs, to add triggers that the jobs fire, and to touch alembic's version table.
Every attack must fail and change nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta, timezone
from typing import Any

import psycopg
import pytest
from attack_helpers import (
    PG_TEMP_TYPES,
    arm_pg_temp_domains,
    create_attack_log,
    create_pg_temp_trigger_function,
    drop_attack_log,
    evil_jobs,
    is_superuser,
    logged_users,
    make_overdue,
    run_job_as_pg_cron,
)
from clock_helpers import future_on
from pg_helpers import job_name, status_of
from supabase_shape import ADMIN_FUNCTIONS, MIGRATOR, SupabaseShape

UTC = timezone.utc
FUTURE = future_on(6, 1, 12)
LATER = FUTURE + timedelta(days=1)
API_ROLES = ("anon", "authenticated", "service_role")
Conn = psycopg.Connection[Any]


@pytest.fixture
def su(supa: SupabaseShape) -> Iterator[Conn]:
    """A superuser connection, with public.attack_log for the attacks to write to."""
    with supa.superuser() as conn:
        create_attack_log(conn)
        try:
            yield conn
        finally:
            drop_attack_log(conn)


def schedules(su: Conn) -> dict[str, str]:
    rows = su.execute(
        "select jobname, schedule from cron.job where jobname like 'meeting-status-%'"
    ).fetchall()
    return dict(rows)


def user_id_for(role: str) -> object:
    return uuid.uuid4() if role == "authenticated" else None


def assert_no_escalation(su: Conn, role: str) -> None:
    """The attack code ran as the API role only, gained nothing and scheduled nothing."""
    for name in (role, "authenticator", MIGRATOR):
        assert not is_superuser(su, name), f"{name} became a superuser"
    assert evil_jobs(su) == [], "the attack code scheduled a pg_cron job"
    assert logged_users(su) <= {role}, "the attack code ran as another role"


# B1. pg_temp type hijack ----------------------------------------------------------------------


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_an_api_role_cannot_run_code_as_the_owner_through_pg_temp_types(
    supa: SupabaseShape, su: Conn, role: str
) -> None:
    """anon and authenticated write meetings through their row-level security policies after
    creating domains in their session's pg_temp named like pg_catalog's types: no check of
    those domains runs as the migration role (our trigger functions' owner), and every write
    schedules, moves or removes its job as usual."""
    with supa.as_role(role, user_id_for(role)) as conn:
        arm_pg_temp_domains(conn, su, role)

        (meeting_id,) = conn.execute(
            "insert into public.meetings (title, end_time) values ('attack', %s) returning id",
            (FUTURE,),
        ).fetchone()  # type: ignore[misc]
        name = job_name(meeting_id)
        assert schedules(su).get(name) == "0 12 1 6 *"
        conn.execute("update public.meetings set end_time = %s where id = %s", (LATER, meeting_id))
        assert schedules(su).get(name) == "0 12 2 6 *"
        conn.execute("update public.meetings set status = 'cancelled' where id = %s", (meeting_id,))
        assert name not in schedules(su)
        conn.execute("update public.meetings set status = 'upcoming' where id = %s", (meeting_id,))
        assert schedules(su).get(name) == "0 12 2 6 *"
        conn.execute("delete from public.meetings where id = %s", (meeting_id,))
        assert name not in schedules(su)

    assert_no_escalation(su, role)


def admin_calls(
    meeting_id: object, event_id: object = None
) -> dict[str, list[tuple[str, tuple[object, ...]]]]:
    """Calls of every admin function service_role may execute, by signature."""
    return {
        "scheduler.list_jobs(text)": [
            ("select * from scheduler.list_jobs()", ()),
            ("select * from scheduler.list_jobs('meetings')", ()),
        ],
        "scheduler.recover(boolean, text)": [
            ("select scheduler.recover(true)", ()),
            ("select scheduler.recover(false)", ()),
            ("select scheduler.recover(false, 'meetings')", ()),
        ],
        "scheduler.history(boolean, integer, text)": [
            ("select * from scheduler.history(false, 10)", ()),
            ("select * from scheduler.history(true, 10)", ()),
            ("select * from scheduler.history(false, 10, 'meetings')", ()),
        ],
        "scheduler.health()": [("select scheduler.health()", ())],
        "scheduler.schedule_meeting(uuid, timestamp with time zone)": [
            ("select scheduler.schedule_meeting(%s, %s)", (meeting_id, LATER))
        ],
        "scheduler.cancel_meeting(uuid)": [("select scheduler.cancel_meeting(%s)", (meeting_id,))],
        "scheduler.wake(text)": [
            ("select scheduler.wake()", ()),
            ("select scheduler.wake('meetings')", ()),
        ],
        "scheduler.next_end_time()": [("select scheduler.next_end_time()", ())],
        "scheduler.events(integer, text, text)": [
            ("select * from scheduler.events(10, null)", ()),
            ("select * from scheduler.events(10, null, 'meetings')", ()),
        ],
        "scheduler.set_webhooks(boolean)": [
            ("select scheduler.set_webhooks(true)", ()),
            ("select scheduler.set_webhooks(false)", ()),
        ],
        "scheduler.claim_events(integer, double precision)": [
            ("select * from scheduler.claim_events(5, 30)", ())
        ],
        "scheduler.record_attempt(bigint, text, integer, text, double precision)": [
            ("select scheduler.record_attempt(%s, 'retry', 500, 'boom', 1)", (event_id,))
        ],
        "scheduler.metrics(text)": [
            ("select scheduler.metrics()", ()),
            ("select scheduler.metrics('meetings')", ()),
        ],
        "scheduler.transitions()": [("select * from scheduler.transitions()", ())],
        # of each registered transition but meetings (test_supabase_transition_attacks.py
        # registers one and calls it there)
        "scheduler.transition_health(text)": [
            (
                "select scheduler.transition_health(t.name) from scheduler.transitions() t "
                "where not t.builtin",
                (),
            )
        ],
        # the job horizon (0011): set, read with the rows beyond it, cleared
        "scheduler.set_job_horizon(interval, text)": [
            ("select scheduler.set_job_horizon('1 day')", ()),
            ("select scheduler.set_job_horizon(null)", ()),
        ],
        "scheduler.horizons()": [("select * from scheduler.horizons()", ())],
        "scheduler.deferred_jobs(text)": [("select * from scheduler.deferred_jobs()", ())],
        # the elected waker (0012): take the lease, then give it up
        "scheduler.claim_waker(text, double precision, text)": [
            ("select scheduler.claim_waker('attack-test', 1.2)", ())
        ],
        "scheduler.release_waker(text, text)": [
            ("select scheduler.release_waker('attack-test')", ())
        ],
    }


def test_every_admin_function_is_attacked() -> None:
    assert set(admin_calls(None)) == set(ADMIN_FUNCTIONS)


@pytest.mark.parametrize("signature", ADMIN_FUNCTIONS)
def test_service_role_cannot_run_code_as_the_owner_through_pg_temp_types(
    supa: SupabaseShape, su: Conn, signature: str
) -> None:
    """service_role calls an admin function (security definer, owned by the migration role)
    after creating domains in its session's pg_temp named like pg_catalog's types: no check of
    those domains runs as the function's owner, and the function does its usual work."""
    (meeting_id,) = su.execute(
        "insert into public.meetings (title, end_time) values ('target', %s) returning id",
        (FUTURE,),
    ).fetchone()  # type: ignore[misc]
    # a failed run of the meeting's job, so that history() and health() have a row to read
    su.execute(
        "insert into cron.job_run_details (jobid, runid, job_pid, database, username, command, "
        "status, return_message, start_time, end_time) "
        "select jobid, nextval('cron.runid_seq'), 1, current_database(), username, command, "
        "'failed', 'boom', now(), now() from cron.job where jobname = %s",
        (job_name(meeting_id),),
    )
    # a completion event, for the dispatcher's functions to claim and record
    (event_id,) = su.execute(
        "insert into scheduler.completion_events "
        "(meeting_id, end_time, completed_at, path, delivery, next_attempt_at) "
        "values (gen_random_uuid(), now(), now(), 'job', 'pending', now()) returning event_id"
    ).fetchone()  # type: ignore[misc]
    # All the domains at once, then each alone: a domain that breaks a function's query (its
    # result type no longer matches) rolls back what its check did, one alone may not.
    errors = []
    for types in [PG_TEMP_TYPES, *((t,) for t in PG_TEMP_TYPES)]:
        if signature == "scheduler.cancel_meeting(uuid)":
            # upcoming again for each round: cancelling a cancelled meeting is refused, by design
            su.execute(
                "update public.meetings set status = 'upcoming' where id = %s", (meeting_id,)
            )
        with supa.as_role("service_role") as conn:
            arm_pg_temp_domains(conn, su, "service_role", types)
            for statement, params in admin_calls(meeting_id, event_id)[signature]:
                try:
                    conn.execute(statement, params).fetchall()
                except psycopg.Error as error:
                    errors.append(f"{types}: {statement}: {error.diag.message_primary}")

    assert_no_escalation(su, "service_role")
    assert errors == [], "a pg_temp type broke an admin function"
    expected = {
        "scheduler.schedule_meeting(uuid, timestamp with time zone)": ("upcoming", "0 12 2 6 *"),
        "scheduler.cancel_meeting(uuid)": ("cancelled", None),
    }.get(signature, ("upcoming", "0 12 1 6 *"))
    assert (status_of(su, meeting_id), schedules(su).get(job_name(meeting_id))) == expected


# B2. Triggers on meetings ---------------------------------------------------------------------


@pytest.mark.parametrize("role", API_ROLES)
def test_api_roles_hold_no_trigger_privilege_on_meetings(supa: SupabaseShape, role: str) -> None:
    """The project's default privileges grant ALL on the migration role's tables to the API
    roles; the migration takes TRIGGER on public.meetings back (the jobs fire its triggers)."""
    with supa.superuser() as conn:
        assert conn.execute(
            "select has_table_privilege(%s, 'public.meetings', 'trigger')", (role,)
        ).fetchone() == (False,)


def test_authenticated_cannot_add_a_trigger_that_the_jobs_fire(
    supa: SupabaseShape, su: Conn
) -> None:
    """authenticated cannot add a trigger to public.meetings: with TRIGGER alone it needs no
    schema to create in (its function can live in pg_temp), and the trigger would run in every
    session that writes meetings, the jobs' included, as that session's role."""
    with supa.as_role("authenticated", uuid.uuid4()) as conn:
        function = create_pg_temp_trigger_function(conn, "authenticated")
        try:
            conn.execute(
                "create trigger scheduler_attack before update on public.meetings "
                f"for each row execute function {function}()"
            )
        except psycopg.errors.InsufficientPrivilege:
            added = False
        else:
            added = True
        try:
            # whether or not it was added: a meeting's job runs, as pg_cron runs it
            (meeting_id,) = su.execute(
                "insert into public.meetings (title, end_time) values ('target', %s) returning id",
                (FUTURE,),
            ).fetchone()  # type: ignore[misc]
            make_overdue(su, meeting_id)
            run_job_as_pg_cron(su, supa.dsn, job_name(meeting_id))
            assert status_of(su, meeting_id) == "done"
        finally:
            su.execute("drop trigger if exists scheduler_attack on public.meetings")

    assert_no_escalation(su, "authenticated")
    assert not added, "authenticated added a trigger to public.meetings"


@pytest.fixture
def remigrated(supa: SupabaseShape) -> Iterator[SupabaseShape]:
    """Downgraded to base for the test's set-up; upgraded to head again afterwards."""
    down = supa.alembic("downgrade", "base")
    assert down.returncode == 0, down.stderr
    try:
        yield supa
    finally:
        up = supa.alembic("upgrade", "head")
        assert up.returncode == 0, up.stderr


def test_the_migration_revokes_trigger_granted_before_it(remigrated: SupabaseShape) -> None:
    """TRIGGER on public.meetings granted to the API roles before the migration is revoked by
    it: only the table owner may add triggers that the jobs fire."""
    with psycopg.connect(remigrated.dsn(MIGRATOR), autocommit=True) as owner:
        owner.execute("grant trigger on public.meetings to anon, authenticated, service_role")
    up = remigrated.alembic("upgrade", "head")
    assert up.returncode == 0, up.stderr
    with remigrated.superuser() as conn:
        rows = conn.execute(
            "select r, has_table_privilege(r, 'public.meetings', 'trigger') "
            "from unnest(%s::text[]) r order by 1",
            (list(API_ROLES),),
        ).fetchall()
    assert rows == [(role, False) for role in API_ROLES]


# B3. alembic's version table ------------------------------------------------------------------

VERSION_TABLES = ("scheduler.alembic_version", "public.alembic_version")
VERSION_TABLE_STATEMENTS = (
    "select * from {table}",
    "insert into {table} (version_num) values ('attack')",
    "update {table} set version_num = 'attack'",
    "delete from {table}",
    "truncate {table}",
)


def test_alembic_version_lives_in_schema_scheduler(supa: SupabaseShape) -> None:
    """alembic's version table is ours: it lives in schema scheduler, not in public."""
    with supa.superuser() as conn:
        assert conn.execute(
            "select to_regclass('scheduler.alembic_version') is not null, "
            "       to_regclass('public.alembic_version') is null"
        ).fetchone() == (True, True)


@pytest.mark.parametrize("role", API_ROLES)
def test_api_roles_cannot_read_or_write_alembic_version(supa: SupabaseShape, role: str) -> None:
    """No API role holds a privilege on alembic's version table, wherever it is, and reading or
    writing it fails (every attempt is rolled back in any case)."""
    with supa.superuser() as conn:
        for table in VERSION_TABLES:
            if conn.execute("select to_regclass(%s)", (table,)).fetchone() == (None,):
                continue
            privileges = [
                p
                for (p,) in conn.execute(
                    "select p from unnest(array['select', 'insert', 'update', 'delete', "
                    "'truncate', 'references', 'trigger']) p "
                    "where has_table_privilege(%s, %s, p)",
                    (role, table),
                )
            ]
            assert privileges == [], f"{role} has {privileges} on {table}"
    with supa.as_role(role, user_id_for(role)) as conn:
        for table in VERSION_TABLES:
            for statement in VERSION_TABLE_STATEMENTS:
                sql = statement.format(table=table)
                with (
                    pytest.raises(
                        (psycopg.errors.InsufficientPrivilege, psycopg.errors.UndefinedTable)
                    ),
                    conn.transaction(force_rollback=True),
                ):
                    conn.execute(sql)
