"""Least privilege: an application role schedules through the triggers, never through cron."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from clock_helpers import future_on
from pg_helpers import Conn, Server, connect, job_name, meeting_jobs

FUTURE = future_on(6, 1, 12)
APP_ROLE = "scheduler_test_app"


@pytest.fixture
def app_conn(db: Conn, migrated: Server) -> Iterator[Conn]:
    """A connection as a role that may write meetings and nothing else."""
    db.execute(f"drop role if exists {APP_ROLE}")
    db.execute(f"create role {APP_ROLE} login")
    db.execute(f"grant usage on schema public to {APP_ROLE}")
    db.execute(f"grant select, insert, update, delete on public.meetings to {APP_ROLE}")
    # the migration created meetings with row-level security and no policy: the application
    # adds its own (docs/security.md, "Row-level security")
    db.execute(f"create policy app_all_rows on public.meetings for all to {APP_ROLE} using (true)")
    dsn = migrated.dsn.replace("user=postgres", f"user={APP_ROLE}")
    try:
        with connect(dsn) as conn:
            yield conn
    finally:
        db.execute("drop policy if exists app_all_rows on public.meetings")
        db.execute(f"drop owned by {APP_ROLE}")
        db.execute(f"drop role {APP_ROLE}")


def test_app_role_writes_schedule_and_unschedule_jobs(db: Conn, app_conn: Conn) -> None:
    (meeting_id,) = app_conn.execute(
        "insert into meetings (title, end_time) values ('app', %s) returning id", (FUTURE,)
    ).fetchone()
    owner = db.execute(
        "select username from cron.job where jobname = %s", (job_name(meeting_id),)
    ).fetchone()
    assert owner == ("postgres",)  # the jobs belong to the migrating role, not the writer
    app_conn.execute(
        "update meetings set end_time = end_time + interval '1 day' where id = %s", (meeting_id,)
    )
    assert meeting_jobs(db)[job_name(meeting_id)][0] == "0 12 2 6 *"
    app_conn.execute("delete from meetings where id = %s", (meeting_id,))
    assert meeting_jobs(db) == {}


def test_app_role_cannot_call_cron_or_our_functions(db: Conn, app_conn: Conn) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_conn.execute("select cron.schedule('x', '* * * * *', 'select 1')")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_conn.execute("select scheduler.complete_meeting(gen_random_uuid())")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_conn.execute("select * from scheduler.settings")
    assert db.execute("select count(*) from cron.job where jobname = 'x'").fetchone() == (0,)


def test_no_function_of_ours_is_executable_by_public_or_the_app(db: Conn, app_conn: Conn) -> None:
    rows = db.execute(
        "select p.oid::regprocedure::text, "
        "       has_function_privilege(%s, p.oid, 'execute'), "
        "       p.proacl is null or exists (select 1 from aclexplode(p.proacl) a "
        "                               where a.grantee = 0 and a.privilege_type = 'EXECUTE') "
        "from pg_proc p where p.pronamespace = 'scheduler'::regnamespace",
        (APP_ROLE,),
    ).fetchall()
    assert rows, "no functions in schema scheduler"
    for signature, app_can_execute, public_can_execute in rows:
        assert not app_can_execute, signature
        assert not public_can_execute, f"{signature} is executable by PUBLIC"


def test_every_function_pins_the_search_path_with_pg_temp_last(db: Conn) -> None:
    """In the database, not only in the files: every function of ours runs with
    search_path = pg_catalog, pg_temp, and the trigger functions that run as the owner are
    security definer (0009: the BEFORE triggers too, which note the rows they complete in a
    table only the owner may write, so that no writer can forge a completion event)."""
    rows = db.execute(
        "select p.oid::regprocedure::text, p.proconfig, p.prosecdef "
        "from pg_proc p where p.pronamespace = 'scheduler'::regnamespace"
    ).fetchall()
    definers = {signature for signature, _, definer in rows if definer}
    assert {
        "scheduler.meetings_after_insert()",
        "scheduler.meetings_after_update()",
        "scheduler.meetings_after_delete()",
    } <= definers
    assert {"scheduler.meetings_before_write()", "scheduler.transition_before_write()"} <= definers
    for signature, config, _ in rows:
        assert config is not None and "search_path=pg_catalog, pg_temp" in config, signature
