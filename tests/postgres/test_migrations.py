"""alembic migrations: create everything, remove everything of ours, equal the schema in sql/."""

from __future__ import annotations

import re

import psycopg
import pytest
from clock_helpers import future_on
from pg_helpers import (
    Conn,
    Server,
    catalog,
    connect,
    head_revision,
    insert_meeting,
    job_name,
    meeting_jobs,
    migrate,
    revisions,
    run_command,
    sweep_supported,
    upgrade_error,
)
from skip_helpers import require_or_skip

from scheduler_admin.schema import read_sql, schema_files
from scheduler_admin.testing.cluster import find_bindir
from scheduler_admin.testing.lanes import server_lane, throwaway_server

FUTURE = future_on(6, 1, 12)


def apply_sql_directory(conn: Conn) -> None:
    for name in schema_files("postgres"):
        conn.execute(read_sql("postgres", name))  # type: ignore[arg-type]


def drop_everything(conn: Conn) -> None:
    conn.execute(read_sql("postgres", "teardown.sql"))  # type: ignore[arg-type]
    conn.execute("drop table if exists public.meetings")
    conn.execute("drop table if exists scheduler.alembic_version")
    conn.execute("drop table if exists public.alembic_version")
    conn.execute("drop schema if exists scheduler")


APP_TABLE = (
    "create table public.meetings (id uuid primary key default gen_random_uuid(), title text, "
    "owner text, status text not null default 'upcoming', end_time timestamptz not null)"
)
# upcoming whenever the tests run: 1 June 12:00:30 and 2 January 03:04:05 UTC, 30+ days ahead
LATER_END = future_on(6, 1, 12, 0, 30)
SOON_END = future_on(1, 2, 3, 4, 5)
APP_ROWS = (
    "insert into public.meetings (id, title, status, end_time) values "
    f"('7d8e5a62-3c4b-4b8f-9f59-0e4d8d3c2a11', 'later', 'upcoming', '{LATER_END}'), "
    "('0c3f0e1d-59f6-4c1e-8a0b-6d2f1c9e7b22', 'over', 'done', '2020-01-01 00:00:00+00'), "
    f"('5b6a7c8d-1e2f-4a3b-9c4d-5e6f7a8b9c33', 'soon', 'upcoming', '{SOON_END}')"
)


def test_migrating_equals_the_schema_in_sql(db: Conn, migrated: Server) -> None:
    """The schema alembic builds from nothing is exactly the one the files in sql/postgres/ define
    (functions with their bodies, settings and owners, triggers, grants, row-level security)."""
    drop_everything(db)
    apply_sql_directory(db)
    from_files = catalog(db)
    drop_everything(db)
    migrate(migrated)
    from_migrations = catalog(db)
    assert from_files["functions"], "the schema defines no function"
    assert from_files == from_migrations


def test_migrating_through_every_revision_equals_the_schema_in_sql(
    db: Conn, migrated: Server
) -> None:
    """A database migrated by each release in turn (one alembic run per revision, meetings and
    jobs in between) ends with exactly the current schema and jobs: released revisions are
    frozen and every later change ships in a revision of its own."""
    every = revisions()
    assert every[0] == "0001" and len(every) >= 2

    drop_everything(db)
    db.execute(APP_TABLE)
    db.execute(APP_ROWS)
    apply_sql_directory(db)
    from_files = catalog(db)

    drop_everything(db)
    db.execute(APP_TABLE)
    db.execute(APP_ROWS)
    try:
        for revision in every:
            migrate(migrated, revision)
            assert db.execute("select version_num from scheduler.alembic_version").fetchall() == [
                (revision,)
            ]
        stepwise = catalog(db)
    finally:  # back to the table the migration creates, for the other tests
        drop_everything(db)
        migrate(migrated)
    # reconcile + the two upcoming meetings (+ the seconds sweep where pg_cron has seconds)
    names = [job[0] for job in from_files["jobs"]]  # type: ignore[index]
    sweep = ["meeting-status-sweep"] if sweep_supported(db) else []
    recurring = [name for name in names if not re.fullmatch(r"meeting-status-[0-9a-f-]{36}", name)]
    assert sorted(recurring) == ["meeting-status-reconcile", *sweep]
    assert len(names) == 3 + len(sweep)
    assert stepwise == from_files


def test_downgrade_one_step_restores_the_previous_revision(db: Conn, migrated: Server) -> None:
    """head -> previous gives what migrating to the previous revision gives (functions, grants,
    triggers, jobs), and upgrading again gives the current schema. The seconds sweep at the
    product's default first (the shared reset turns it off; a fresh migration turns it on)."""
    db.execute("update scheduler.settings set sweep_seconds = 1")
    run_command(db, "select scheduler.sync_sweep()")
    insert_meeting(db, FUTURE)
    at_head = catalog(db)
    previous = revisions()[-2]
    migrate(migrated, "-1", down=True)
    assert db.execute("select version_num from scheduler.alembic_version").fetchone() == (previous,)
    downgraded = catalog(db)
    migrate(migrated, "base", down=True)
    migrate(migrated, previous)
    assert catalog(db) == downgraded
    migrate(migrated)
    assert catalog(db) == at_head


def test_downgrade_from_0002_restores_0001(db: Conn, migrated: Server) -> None:
    """0002 -> 0001: 0001's function settings and job commands come back."""
    meeting_id, _ = insert_meeting(db, FUTURE)
    migrate(migrated, "0002", down=True)
    migrate(migrated, "0001", down=True)
    (config,) = db.execute(
        "select proconfig from pg_proc where oid = 'scheduler.complete_meeting(uuid)'::regprocedure"
    ).fetchone()
    assert config == ['search_path=""']  # 0001's setting
    assert meeting_jobs(db)[job_name(meeting_id)][1] == (
        f"select scheduler.complete_meeting('{meeting_id}'::uuid)"
    )
    assert db.execute("select version_num from scheduler.alembic_version").fetchone() == ("0001",)
    migrate(migrated)


def test_version_table_lives_in_schema_scheduler(db: Conn, migrated: Server) -> None:
    """alembic's version table is scheduler.alembic_version, out of the API-exposed public
    schema; one left in public by an earlier release is moved there."""
    assert db.execute("select to_regclass('public.alembic_version')").fetchone() == (None,)
    assert db.execute("select version_num from scheduler.alembic_version").fetchone() == (
        head_revision(),
    )
    db.execute("alter table scheduler.alembic_version set schema public")
    migrate(migrated)
    assert db.execute("select to_regclass('public.alembic_version')").fetchone() == (None,)
    assert db.execute("select version_num from scheduler.alembic_version").fetchone() == (
        head_revision(),
    )


def test_applying_the_schema_again_is_harmless(db: Conn) -> None:
    """Upgrading twice (re-running every file) changes no object, no job, no meeting."""
    meeting_id, _ = insert_meeting(db, FUTURE)
    before = catalog(db), db.execute("select * from meetings").fetchall()
    apply_sql_directory(db)
    assert (catalog(db), db.execute("select * from meetings").fetchall()) == before
    assert list(meeting_jobs(db)) == [job_name(meeting_id)]


def test_downgrade_removes_everything_of_ours_and_keeps_meetings(
    db: Conn, migrated: Server
) -> None:
    insert_meeting(db, FUTURE)
    insert_meeting(db, FUTURE, status="done")
    rows = db.execute("select * from meetings order by id").fetchall()
    migrate(migrated, "base", down=True)
    # only alembic's (empty) version table is left in schema scheduler
    assert db.execute(
        "select array_agg(c.relname::text) from pg_class c "
        "where c.relnamespace = 'scheduler'::regnamespace and c.relkind = 'r'"
    ).fetchone() == (["alembic_version"],)
    assert db.execute(
        "select count(*) from pg_proc where pronamespace = 'scheduler'::regnamespace"
    ).fetchone() == (0,)
    assert db.execute("select count(*) from scheduler.alembic_version").fetchone() == (0,)
    assert db.execute(
        "select count(*) from pg_trigger where tgrelid = 'public.meetings'::regclass "
        "and not tgisinternal"
    ).fetchone() == (0,)
    assert db.execute(
        "select count(*) from cron.job where jobname like 'meeting-status-%%'"
    ).fetchone() == (0,)
    assert db.execute("select * from meetings order by id").fetchall() == rows
    migrate(migrated)  # upgrade -> downgrade -> upgrade
    assert db.execute("select * from meetings order by id").fetchall() == rows
    assert db.execute("select to_regnamespace('scheduler') is not null").fetchone() == (True,)


@pytest.mark.parametrize(
    ("ddl", "message", "hint"),
    [
        (
            "create table meetings (id bigint primary key, status text, end_time timestamptz)",
            "public.meetings.id has type bigint, expected uuid",
            "alter column id type uuid",
        ),
        (
            "create table meetings (id uuid primary key, status text, end_time timestamp)",
            "public.meetings.end_time has type timestamp without time zone, expected timestamp "
            "with time zone",
            "alter column end_time type timestamp with time zone",
        ),
        (
            "create table meetings (id uuid primary key, end_time timestamptz)",
            'public.meetings exists but has no column "status"',
            "Add the column (text)",
        ),
    ],
)
def test_unusable_existing_meetings_table_fails_clearly(
    bare_database: Conn, migrated: Server, ddl: str, message: str, hint: str
) -> None:
    bare_database.execute(ddl)
    error = upgrade_error(migrated)
    assert error.diag.message_primary == message
    assert hint in (error.diag.message_hint or "")
    assert bare_database.execute(
        "select count(*) from pg_proc where pronamespace = 'scheduler'::regnamespace"
    ).fetchone() == (0,)


def test_existing_compatible_meetings_table_is_used_as_is(
    bare_database: Conn, migrated: Server
) -> None:
    bare_database.execute(
        "create table meetings (id uuid primary key default gen_random_uuid(), owner text, "
        "status varchar(20) not null default 'upcoming', end_time timestamptz not null)"
    )
    (kept,) = bare_database.execute(
        "insert into meetings (owner, end_time) values ('x', %s) returning id", (FUTURE,)
    ).fetchone()
    migrate(migrated)
    columns = bare_database.execute(
        "select attname from pg_attribute where attrelid = 'public.meetings'::regclass "
        "and attnum > 0 and not attisdropped order by attnum"
    ).fetchall()
    assert columns == [("id",), ("owner",), ("status",), ("end_time",)]
    (new_id,) = bare_database.execute(
        "insert into meetings (owner, end_time) values ('y', %s) returning id", (FUTURE,)
    ).fetchone()
    assert job_name(new_id) in meeting_jobs(bare_database)
    assert bare_database.execute("select id from meetings where id = %s", (kept,)).fetchone()
    migrate(migrated, "base", down=True)


def test_database_other_than_cron_database_name_fails_naming_the_setting(
    migrated: Server,
) -> None:
    if migrated.cluster is None:
        require_or_skip(
            "needs the throwaway cluster (creates a database): SCHEDULER_TEST_DSN is set"
        )
    migrated.cluster.create_database("not_the_cron_db")
    other = Server(
        migrated.cluster.dsn("not_the_cron_db"), migrated.cluster.url("not_the_cron_db"), None
    )
    error = upgrade_error(other)
    assert error.diag.message_primary == (
        'pg_cron runs jobs only in database "scheduler_test" (cron.database_name), '
        'not in "not_the_cron_db"'
    )
    assert "cron.database_name = 'not_the_cron_db'" in (error.diag.message_hint or "")
    with connect(other.dsn) as conn:
        assert conn.execute("select to_regnamespace('scheduler')").fetchone() == (None,)


def test_server_without_pg_cron_preloaded_fails_naming_the_setting() -> None:
    if server_lane() == "local" and find_bindir() is None:
        require_or_skip("needs local PostgreSQL binaries (scripts/install-postgres.sh)")
    with throwaway_server(preload_pg_cron=False) as cluster:
        server = Server(cluster.dsn(), cluster.url(), cluster)
        error = upgrade_error(server)
        assert error.diag.message_primary == (
            "pg_cron is not preloaded: shared_preload_libraries must include pg_cron"
        )
        hint = error.diag.message_hint or ""
        assert "shared_preload_libraries = 'pg_cron'" in hint
        assert "cron.database_name = 'scheduler_test'" in hint


def test_a_role_that_may_not_act_as_the_owner_of_meetings_is_refused(migrated: Server) -> None:
    """The scheduler's functions and jobs must belong to the owner of meetings: a migrating role
    that is neither that owner, a member of it nor a superuser is refused with the fix, before
    anything of ours changes (the check of 05_owner.sql, run as such a role; rolled back)."""
    with psycopg.connect(migrated.dsn) as conn:  # one transaction, rolled back on exit
        conn.execute("create role scheduler_test_table_owner nologin")
        conn.execute("create role scheduler_test_migrator nologin")
        conn.execute("alter table public.meetings owner to scheduler_test_table_owner")
        conn.execute("set role scheduler_test_migrator")
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as info:
            conn.execute(read_sql("postgres", "05_owner.sql"))  # type: ignore[arg-type]
        conn.rollback()
    assert info.value.diag.message_primary == (
        "public.meetings belongs to role scheduler_test_table_owner, and scheduler_test_migrator "
        "may not act as it"
    )
    assert "Migrate as scheduler_test_table_owner (or as a superuser)" in (
        info.value.diag.message_hint or ""
    )


def test_migrating_while_the_jobs_run_never_deadlocks(db: Conn, migrated: Server) -> None:
    """The jobs (the sweep runs every second on pg_cron 1.5+) call our functions while a
    migration replaces triggers and drops tables: the migration takes every table they touch
    first, so neither side waits for the other while holding what the other needs."""
    import threading

    stop = threading.Event()
    calls = [0]

    def jobs() -> None:
        with connect(migrated.dsn) as conn:
            while not stop.is_set():
                for statement in (
                    "select scheduler.sweep()",
                    "select scheduler.reconcile()",
                    "select scheduler.complete_due(true, 'sweep')",
                ):
                    try:
                        conn.execute(statement)  # type: ignore[arg-type]
                        calls[0] += 1
                    except psycopg.Error:
                        pass  # missing while downgraded, or a lock timeout: as for a job

    for _ in range(3):
        insert_meeting(db, FUTURE)
    worker = threading.Thread(target=jobs)
    worker.start()
    try:
        for _ in range(4):
            migrate(migrated, "base", down=True)
            migrate(migrated)
    finally:
        stop.set()
        worker.join()
    assert calls[0] > 0
    assert db.execute("select count(*) from meetings where status = 'upcoming'").fetchone() == (3,)
