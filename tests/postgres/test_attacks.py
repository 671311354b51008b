"""Attacks on the self-hosted shape: unprivileged roles try to run code as the owner of our
functions and jobs, to block them with a lock, to feed them values they cannot schedule, and
the migration is given tables it must refuse. Every attack must fail and change nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
import sqlalchemy.exc
from attack_helpers import (
    arm_pg_temp_domains,
    assert_no_escalation,
    create_trigger_function,
    dsn_as,
    is_superuser,
    logged_users,
    make_overdue,
    run_job_as_pg_cron,
)
from clock_helpers import future_on
from pg_helpers import (
    Conn,
    Server,
    connect,
    job_name,
    meeting_jobs,
    migrate,
    reconcile_job_inactive,
    status_of,
    upgrade_error,
)

UTC = timezone.utc
FUTURE = future_on(6, 1, 12)
LATER = FUTURE + timedelta(days=1)
APP_OWNER = "scheduler_test_app_owner"
CLIENT_STATEMENT_TIMEOUT = "30s"  # far above the design's lock_timeout: a hang, not a wait


def insert_upcoming(db: Conn, end_time: datetime = FUTURE) -> object:
    row = db.execute(
        "insert into public.meetings (title, end_time) values ('target', %s) returning id",
        (end_time,),
    ).fetchone()
    assert row is not None
    return row[0]


# 1. pg_temp type hijack, one role kind at a time -------------------------------------------


@dataclass
class WriteAttack:
    grants: tuple[str, ...]
    prepare: Callable[[Conn], object]  # as the superuser: the meeting the attacker writes, if any
    write: Callable[[Conn, Conn, object], None]  # (attacker, superuser, meeting id): write, check


def _insert(conn: Conn, db: Conn, _: object) -> None:
    conn.execute("insert into public.meetings (title, end_time) values ('attack', %s)", (FUTURE,))
    (meeting_id,) = db.execute("select id from public.meetings").fetchone()  # type: ignore[misc]
    assert meeting_jobs(db)[job_name(meeting_id)][0] == "0 12 1 6 *"


def _update(conn: Conn, db: Conn, meeting_id: object) -> None:
    conn.execute("update public.meetings set end_time = %s where id = %s", (LATER, meeting_id))
    assert meeting_jobs(db)[job_name(meeting_id)][0] == "0 12 2 6 *"
    conn.execute("update public.meetings set status = 'cancelled' where id = %s", (meeting_id,))
    assert status_of(db, meeting_id) == "cancelled"
    assert meeting_jobs(db) == {}


def _delete(conn: Conn, db: Conn, meeting_id: object) -> None:
    conn.execute("delete from public.meetings")  # no WHERE: DELETE alone needs no SELECT
    assert status_of(db, meeting_id) is None
    assert meeting_jobs(db) == {}


USAGE = "grant usage on schema public to {role}"
# The rows a writing role may touch when meetings has row-level security (the migration enables
# it on a table it creates): all of them, as an application's policy would allow its own role.
ALL_ROWS = "create policy {role} on public.meetings to {role} using (true) with check (true)"
WRITE_ATTACKS = {
    "insert-only": WriteAttack(
        (USAGE, ALL_ROWS, "grant insert on public.meetings to {role}"), lambda db: None, _insert
    ),
    "update-only": WriteAttack(
        (
            USAGE,
            ALL_ROWS,
            "grant update on public.meetings to {role}",
            "grant select (id) on public.meetings to {role}",  # for the WHERE
        ),
        insert_upcoming,
        _update,
    ),
    "delete-only": WriteAttack(
        (USAGE, ALL_ROWS, "grant delete on public.meetings to {role}"), insert_upcoming, _delete
    ),
}


@pytest.mark.parametrize("kind", list(WRITE_ATTACKS))
def test_a_writing_role_cannot_run_code_as_the_owner_through_pg_temp_types(
    db: Conn, attack_log: None, login_as: Callable[..., Conn], kind: str
) -> None:
    """An INSERT-only, UPDATE-only or DELETE-only role cannot run code as the owner of our
    trigger functions through domains it creates in pg_temp under the names of pg_catalog's
    types (text, name, uuid, ...); its write schedules, moves or removes the job as usual."""
    attack = WRITE_ATTACKS[kind]
    attacker = f"scheduler_test_{kind.replace('-', '_')}"
    meeting_id = attack.prepare(db)
    conn = login_as(attacker, *attack.grants)
    arm_pg_temp_domains(conn, db, attacker)

    attack.write(conn, db, meeting_id)

    assert_no_escalation(db, attacker)


# 2. A table owner that is not a superuser adds a trigger ------------------------------------


@pytest.fixture
def app_owned_meetings(db: Conn, migrated: Server) -> Iterator[Conn]:
    """public.meetings owned by a login role that is not a superuser (the application's), the
    scheduler migrated onto it by the superuser. Restores the original table afterwards."""
    migrate(migrated, "base", down=True)
    db.execute("alter table public.meetings rename to meetings_before_attack")
    db.execute(f"drop role if exists {APP_OWNER}")
    db.execute(f"create role {APP_OWNER} login nosuperuser")
    db.execute(f"grant usage, create on schema public to {APP_OWNER}")
    try:
        db.execute(
            """
            create table public.meetings (
                id uuid primary key default gen_random_uuid(),
                title text,
                start_time timestamptz,
                end_time timestamptz not null,
                status text not null default 'upcoming'
                    constraint meetings_status_check
                    check (status in ('upcoming', 'done', 'cancelled')),
                created_at timestamptz not null default now(),
                updated_at timestamptz not null default now()
            )
            """
        )
        db.execute(f"alter table public.meetings owner to {APP_OWNER}")
        migrate(migrated)
        with connect(dsn_as(migrated, APP_OWNER)) as owner:
            yield owner
    finally:
        migrate(migrated, "base", down=True)
        db.execute("drop table if exists public.meetings")
        db.execute("alter table public.meetings_before_attack rename to meetings")
        db.execute("delete from cron.job where username = %s", (APP_OWNER,))
        db.execute(f"drop owned by {APP_OWNER}")
        db.execute(f"drop role {APP_OWNER}")
        migrate(migrated)


def test_a_table_owner_that_is_not_superuser_cannot_run_code_as_superuser_through_a_trigger(
    db: Conn, migrated: Server, attack_log: None, app_owned_meetings: Conn
) -> None:
    """The owner of meetings may add triggers to it, and the jobs fire them: so the jobs run as
    that owner (cron.job.username), never as the superuser who migrated, and an invoker trigger
    of the owner's runs with the owner's rights only."""
    owner = app_owned_meetings
    create_trigger_function(owner, "public.app_owner_audit", APP_OWNER)
    owner.execute(
        "create trigger app_owner_audit before update on public.meetings "
        "for each row execute function public.app_owner_audit()"
    )
    meeting_id = insert_upcoming(db)
    make_overdue(db, meeting_id)

    username = run_job_as_pg_cron(db, lambda user: dsn_as(migrated, user), job_name(meeting_id))

    assert status_of(db, meeting_id) == "done"
    assert not is_superuser(db, APP_OWNER), "the table owner became a superuser"
    assert logged_users(db) == {APP_OWNER}, "the owner's trigger ran as another role"
    assert username == APP_OWNER, "the meeting's job runs as a superuser, not the table owner"


# 3. A held lock -----------------------------------------------------------------------------


@pytest.fixture
def reconcile_job_paused(db: Conn) -> Iterator[None]:
    with reconcile_job_inactive(db):
        yield


LOCKED_CALLS = {
    "meeting job": None,  # the meeting job's command, read from cron.job
    "reconcile": "select scheduler.reconcile()",
    "recover": "select scheduler.recover()",
}


@pytest.mark.parametrize("call", list(LOCKED_CALLS))
def test_a_held_lock_makes_our_job_functions_fail_fast(
    db: Conn,
    migrated: Server,
    login_as: Callable[..., Conn],
    reconcile_job_paused: None,
    call: str,
) -> None:
    """A role that may UPDATE meetings can hold an ACCESS EXCLUSIVE lock on it for as long as it
    likes. The meeting job then fails fast (lock_timeout, SQLSTATE 55P03) instead of piling up
    blocked pg_cron connections; reconcile() and recover(), which repair each transition in
    isolation (0009), give up on meetings as fast and report the lock in its errors. A later run
    completes the meeting."""
    meeting_id = insert_upcoming(db)
    make_overdue(db, meeting_id)
    username, command = db.execute(
        "select username, command from cron.job where jobname = %s", (job_name(meeting_id),)
    ).fetchone()  # type: ignore[misc]
    statement = LOCKED_CALLS[call] or command

    login_as(
        "scheduler_test_locker",
        USAGE,
        "grant update on public.meetings to {role}",
    ).close()
    with psycopg.connect(dsn_as(migrated, "scheduler_test_locker")) as locker:
        locker.execute("lock table public.meetings in access exclusive mode")
        assert locker.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        with connect(
            dsn_as(migrated, username), options=f"-c statement_timeout={CLIENT_STATEMENT_TIMEOUT}"
        ) as victim:
            if call == "meeting job":
                with pytest.raises(psycopg.errors.LockNotAvailable):
                    victim.execute(statement)
            else:
                row = victim.execute(statement).fetchone()
                assert row is not None
                report = row[0]
                assert report["success"] is False
                assert "lock timeout" in json.dumps(report["errors"])
            assert locker.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        locker.rollback()

    assert status_of(db, meeting_id) == "upcoming"
    run_job_as_pg_cron(db, lambda user: dsn_as(migrated, user), job_name(meeting_id))
    assert status_of(db, meeting_id) == "done"
    assert job_name(meeting_id) not in meeting_jobs(db)


# 4. End times no job can represent ----------------------------------------------------------

BAD_END_TIMES = ["infinity", "-infinity", "10000-01-01 00:00:00+00", "0044-03-15 12:00:00+00 BC"]


def snapshot(db: Conn) -> tuple[object, ...]:
    rows = db.execute(
        "select id, status, end_time::text from public.meetings order by id"
    ).fetchall()
    return rows, meeting_jobs(db)


@pytest.mark.parametrize("write", ["insert", "update"])
@pytest.mark.parametrize("end_time", BAD_END_TIMES)
def test_an_end_time_no_job_can_represent_is_rejected_clearly(
    db: Conn, end_time: str, write: str
) -> None:
    """An upcoming meeting whose end time is infinite or outside the years 1..9999 is rejected
    by the trigger with an error about end_time (not a pg_cron error about cron.job or its
    schedule), and nothing changes: no row, no job (an upcoming meeting keeps its job)."""
    meeting_id = insert_upcoming(db)
    before = snapshot(db)

    with pytest.raises(psycopg.Error) as info:
        if write == "insert":
            db.execute(
                "insert into public.meetings (title, end_time) values ('bad', %s)", (end_time,)
            )
        else:
            db.execute(
                "update public.meetings set end_time = %s where id = %s", (end_time, meeting_id)
            )

    error = info.value
    primary = error.diag.message_primary or ""
    text = f"{primary}\n{error.diag.message_detail or ''}"
    assert isinstance(error, psycopg.errors.DataError) or "end_time" in primary, (
        f"{type(error).__name__}: {primary}"
    )
    assert "cron.job" not in text and not re.search(r"\bschedule\b", text), primary
    assert snapshot(db) == before


# 5. and 6. What the migration accepts and creates --------------------------------------------


COLUMNS = "status text not null default 'upcoming', end_time timestamptz not null"


@pytest.mark.parametrize(
    "ddl",
    [
        f"create table meetings (id uuid default gen_random_uuid(), {COLUMNS})",
        f"create table meetings (id uuid default gen_random_uuid(), {COLUMNS}); "
        "create index on meetings (id)",
        f"create table meetings (id uuid default gen_random_uuid(), {COLUMNS}, "
        "unique (id, status))",
    ],
    ids=["no key", "plain index", "unique with another column"],
)
def test_the_migration_refuses_meetings_whose_id_is_not_unique(
    bare_database: Conn, migrated: Server, ddl: str
) -> None:
    """Job names are made from meetings.id: two meetings with one id would share (and remove)
    one job. Without a primary key or unique constraint on id alone the migration stops with an
    error naming the column and a hint, and leaves nothing of ours."""
    bare_database.execute(ddl)
    error = upgrade_error(migrated)
    primary = error.diag.message_primary or ""
    assert re.search(r"\bid\b", primary), primary
    hint = (error.diag.message_hint or "").lower()
    assert "primary key" in hint or "unique" in hint, hint
    assert bare_database.execute(
        "select count(*) from pg_proc where pronamespace = 'scheduler'::regnamespace"
    ).fetchone() == (0,)


def test_the_migration_accepts_a_unique_id_that_is_not_the_primary_key(
    bare_database: Conn, migrated: Server
) -> None:
    """A unique constraint on id is as good as a primary key."""
    bare_database.execute(
        f"create table meetings (id uuid not null unique default gen_random_uuid(), {COLUMNS})"
    )
    migrate(migrated)
    assert bare_database.execute("select to_regnamespace('scheduler') is not null").fetchone() == (
        True,
    )


def test_tables_the_migration_creates_have_row_level_security_and_no_public_version_table(
    bare_database: Conn, migrated: Server
) -> None:
    """The tables the migration creates (meetings when missing, scheduler.settings) have
    row-level security enabled with no policy, so that a default grant to an API role shows no
    row; alembic's version table lives in schema scheduler, not in public."""
    migrate(migrated)
    rows = bare_database.execute(
        "select c.relnamespace::regnamespace || '.' || c.relname, c.relrowsecurity, "
        "       (select count(*) from pg_policy p where p.polrelid = c.oid) "
        "from pg_class c where c.oid in ('public.meetings'::regclass, "
        "                                'scheduler.settings'::regclass) order by 1"
    ).fetchall()
    assert rows == [("public.meetings", True, 0), ("scheduler.settings", True, 0)]
    assert bare_database.execute(
        "select to_regclass('scheduler.alembic_version') is not null, "
        "       to_regclass('public.alembic_version') is null"
    ).fetchone() == (True, True)


def test_the_owner_of_schema_scheduler_cannot_plant_a_version_table_for_the_superuser(
    db: Conn, migrated: Server, attack_log: None, app_owned_meetings: Conn
) -> None:
    """Schema scheduler belongs to the owner of meetings, who may drop alembic's version table and
    make its own with a trigger: the next migration by the superuser refuses to write it."""
    owner = app_owned_meetings
    (version,) = db.execute("select version_num from scheduler.alembic_version").fetchone()  # type: ignore[misc]
    owner.execute(
        f"""
        drop table scheduler.alembic_version;
        create table scheduler.alembic_version (version_num varchar(32) primary key);
        insert into scheduler.alembic_version values ('{version}');
        """
    )
    create_trigger_function(owner, "public.version_audit", APP_OWNER)
    owner.execute(
        """
        create trigger version_audit before insert or update or delete
            on scheduler.alembic_version for each row execute function public.version_audit();
        """
    )
    with pytest.raises((psycopg.Error, sqlalchemy.exc.DBAPIError)) as info:
        migrate(migrated, "-1", down=True)
    assert "scheduler.alembic_version belongs to role " + APP_OWNER in str(info.value)
    assert not is_superuser(db, APP_OWNER)
    assert logged_users(db) == set()
    # as the fixture's teardown will: the superuser's own version table again
    db.execute("drop table scheduler.alembic_version")
    db.execute("create table scheduler.alembic_version (version_num varchar(32) primary key)")
    db.execute("insert into scheduler.alembic_version values (%s)", (version,))


def test_a_trigger_on_the_settings_table_never_runs_as_the_superuser(
    db: Conn, migrated: Server, attack_log: None, app_owned_meetings: Conn
) -> None:
    """The owner of meetings owns scheduler.settings and may add triggers to it: a migration by
    the superuser writes the table only as that owner."""
    owner = app_owned_meetings
    create_trigger_function(owner, "public.settings_audit", APP_OWNER)
    owner.execute(
        """
        create trigger settings_audit before insert or update on scheduler.settings
            for each row execute function public.settings_audit();
        """
    )
    migrate(migrated, "-1", down=True)  # 0001's downgrade path, then 0002 again
    migrate(migrated)
    assert not is_superuser(db, APP_OWNER)
    assert logged_users(db) <= {APP_OWNER}


# 6. A registered second table ----------------------------------------------------------------

ADD_MEMBERSHIPS = (
    "select scheduler.add_transition('memberships', 'public.memberships', 'id', 'expires_at', "
    "'status', array['active'], 'expired')"
)


@pytest.fixture
def memberships(db: Conn) -> Iterator[None]:
    """public.memberships (bigint key) registered as the transition memberships, with row-level
    security as an application would have it."""
    db.execute(
        "create table public.memberships (id bigint generated always as identity primary key, "
        "status text not null default 'active', expires_at timestamptz not null)"
    )
    db.execute("alter table public.memberships enable row level security")
    db.execute(ADD_MEMBERSHIPS)
    try:
        yield
    finally:
        db.execute("select scheduler.remove_transition('memberships')")
        db.execute("drop table public.memberships")


def membership_jobs(db: Conn) -> dict[str, str]:
    return dict(
        db.execute(
            "select jobname, schedule from cron.job where jobname like 'memberships-status-%'"
        ).fetchall()
    )


def insert_membership(db: Conn) -> object:
    row = db.execute(
        "insert into public.memberships (expires_at) values (%s) returning id", (FUTURE,)
    ).fetchone()
    assert row is not None
    return row[0]


def _insert_membership(conn: Conn, db: Conn, _: object) -> None:
    conn.execute("insert into public.memberships (expires_at) values (%s)", (FUTURE,))
    (key,) = db.execute("select id from public.memberships").fetchone()  # type: ignore[misc]
    assert membership_jobs(db) == {f"memberships-status-{key}": "0 12 1 6 *"}


def _update_membership(conn: Conn, db: Conn, key: object) -> None:
    conn.execute("update public.memberships set expires_at = %s where id = %s", (LATER, key))
    assert membership_jobs(db) == {f"memberships-status-{key}": "0 12 2 6 *"}
    conn.execute("update public.memberships set status = 'cancelled' where id = %s", (key,))
    assert membership_jobs(db) == {}


def _delete_membership(conn: Conn, db: Conn, key: object) -> None:
    conn.execute("delete from public.memberships")
    assert membership_jobs(db) == {}


MEMBERSHIP_ROWS = (
    "create policy {role} on public.memberships to {role} using (true) with check (true)"
)
MEMBERSHIP_ATTACKS = {
    "insert-only": WriteAttack(
        (USAGE, MEMBERSHIP_ROWS, "grant insert on public.memberships to {role}"),
        lambda db: None,
        _insert_membership,
    ),
    "update-only": WriteAttack(
        (
            USAGE,
            MEMBERSHIP_ROWS,
            "grant update on public.memberships to {role}",
            "grant select (id) on public.memberships to {role}",  # for the WHERE
        ),
        insert_membership,
        _update_membership,
    ),
    "delete-only": WriteAttack(
        (USAGE, MEMBERSHIP_ROWS, "grant delete on public.memberships to {role}"),
        insert_membership,
        _delete_membership,
    ),
}


@pytest.mark.parametrize("kind", list(MEMBERSHIP_ATTACKS))
def test_a_writing_role_cannot_run_code_as_the_owner_through_a_registered_table(
    db: Conn, attack_log: None, login_as: Callable[..., Conn], memberships: None, kind: str
) -> None:
    """The same attack through a second table registered as a transition: its generic triggers
    (the AFTER one security definer) run no check of the attacker's pg_temp domains as the
    owner, and each write schedules, moves or removes the row's job as usual."""
    attack = MEMBERSHIP_ATTACKS[kind]
    attacker = f"scheduler_test_m_{kind.replace('-', '_')}"
    key = attack.prepare(db)
    conn = login_as(attacker, *attack.grants)
    arm_pg_temp_domains(conn, db, attacker)

    attack.write(conn, db, key)

    assert_no_escalation(db, attacker)
