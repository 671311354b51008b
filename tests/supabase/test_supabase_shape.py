"""Migrations and grants on a Supabase-shaped database (see supabase_shape.py)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta, timezone

import psycopg
import pytest
from clock_helpers import future_on
from pg_helpers import head_revision, sweep_supported
from supabase_shape import ADMIN_FUNCTIONS, MIGRATOR, REPO, SupabaseShape

UTC = timezone.utc
FUTURE = future_on(6, 1, 12)
INTERNAL_FUNCTIONS = (
    "scheduler.reconcile(text)",
    "scheduler.pause(text)",
    "scheduler.resume(text)",
    "scheduler.complete_meeting(uuid)",
    "scheduler.repair(boolean, boolean)",
    "scheduler.register_jobs(uuid[], timestamp with time zone[])",
    "scheduler.complete_due(boolean, text)",
    "scheduler.purge_events()",
    "scheduler.schedule_jobs(text[], text[], text[])",
    "scheduler.unschedule_jobs(text[])",
    "scheduler.add_transition(text, regclass, text, text, text, text[], text, text)",
    "scheduler.remove_transition(text)",
    "scheduler.complete_transition(text, text)",
)
CRON_CALLS = (
    "select cron.schedule('x', '* * * * *', 'select 1')",
    "select cron.unschedule(1)",
    "select cron.unschedule('meeting-status-reconcile')",
    "select cron.alter_job(1, active => false)",
)


def jobs(conn: psycopg.Connection[object]) -> dict[str, tuple[str, str]]:
    rows = conn.execute(
        "select jobname, schedule, username from cron.job where jobname like 'meeting-status-%'"
    ).fetchall()
    return {name: (schedule, username) for name, schedule, username in rows}  # type: ignore[misc]


def test_the_migration_role_has_exactly_the_supabase_rights(supa: SupabaseShape) -> None:
    with supa.superuser() as su:
        row = su.execute(
            "select r.rolsuper, r.rolbypassrls, "
            "  has_table_privilege(r.oid, 'cron.job', 'select'), "
            "  has_table_privilege(r.oid, 'cron.job', 'insert'), "
            "  has_table_privilege(r.oid, 'cron.job', 'update'), "
            "  has_table_privilege(r.oid, 'cron.job', 'delete'), "
            "  has_function_privilege(r.oid, 'cron.schedule(text,text,text)', 'execute'), "
            "  (select extowner::regrole::text from pg_extension where extname = 'pg_cron'), "
            "  (select relrowsecurity from pg_class where oid = 'public.meetings'::regclass) "
            "from pg_roles r where r.rolname = %s",
            (MIGRATOR,),
        ).fetchone()
    writable = supa.cron_job_writable
    assert row == (False, False, True, writable, writable, writable, True, "postgres", True)


def test_alembic_upgrade_head_as_the_migration_role(supa: SupabaseShape) -> None:
    """The session fixture ran `alembic upgrade head` as migrator: everything of ours is its."""
    with supa.superuser() as su:
        owners = su.execute(
            "select distinct proowner::regrole::text from pg_proc "
            "where pronamespace = 'scheduler'::regnamespace"
        ).fetchall()
        assert owners == [(MIGRATOR,)]
        assert su.execute(
            "select nspowner::regrole::text from pg_namespace where nspname = 'scheduler'"
        ).fetchone() == (MIGRATOR,)
        triggers = su.execute(
            "select count(*) from pg_trigger where tgrelid = 'public.meetings'::regclass "
            "and tgname like 'scheduler_meetings_%'"
        ).fetchone()
        assert triggers == (4,)
        assert jobs(su) == {"meeting-status-reconcile": ("* * * * *", MIGRATOR)}
        assert su.execute("select version_num from scheduler.alembic_version").fetchone() == (
            head_revision(),
        )


def test_downgrade_and_upgrade_as_the_migration_role(supa: SupabaseShape) -> None:
    with supa.superuser() as su:
        (meeting_id,) = su.execute(
            "insert into meetings (title, end_time) values ('kept', %s) returning id", (FUTURE,)
        ).fetchone()  # type: ignore[misc]
        try:
            down = supa.alembic("downgrade", "base")
            assert down.returncode == 0, down.stderr
            assert jobs(su) == {}
            # only alembic's (empty) version table is left of ours
            assert su.execute(
                "select count(*) from pg_proc where pronamespace = 'scheduler'::regnamespace"
            ).fetchone() == (0,)
            assert su.execute("select count(*) from scheduler.alembic_version").fetchone() == (0,)
        finally:
            up = supa.alembic("upgrade", "head")
        assert up.returncode == 0, up.stderr
        # the upgrade registered the job of the meeting that survived the downgrade
        assert jobs(su)[f"meeting-status-{meeting_id}"] == ("0 12 1 6 *", MIGRATOR)


def test_authenticated_writes_schedule_and_unschedule_only_its_rows(supa: SupabaseShape) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    with (
        supa.superuser() as su,
        supa.as_role("authenticated", alice) as a,
        supa.as_role("authenticated", bob) as b,
    ):
        (meeting_id,) = a.execute(
            "insert into meetings (title, end_time) values ('alice', %s) returning id", (FUTURE,)
        ).fetchone()  # type: ignore[misc]
        name = f"meeting-status-{meeting_id}"
        # the job belongs to the migration role, whoever wrote the row
        assert jobs(su)[name] == ("0 12 1 6 *", MIGRATOR)

        # row-level security: bob neither sees nor moves alice's meeting, and her job stays
        assert b.execute("select count(*) from meetings").fetchone() == (0,)
        moved = b.execute(
            "update meetings set end_time = end_time + interval '1 day' where id = %s",
            (meeting_id,),
        )
        assert moved.rowcount == 0
        assert jobs(su)[name] == ("0 12 1 6 *", MIGRATOR)

        a.execute(
            "update meetings set end_time = end_time + interval '1 day' where id = %s",
            (meeting_id,),
        )
        assert jobs(su)[name] == ("0 12 2 6 *", MIGRATOR)
        a.execute("update meetings set status = 'cancelled' where id = %s", (meeting_id,))
        assert name not in jobs(su)
        a.execute("update meetings set status = 'upcoming' where id = %s", (meeting_id,))
        assert name in jobs(su)
        a.execute("delete from meetings where id = %s", (meeting_id,))
        assert name not in jobs(su)
        # an end time already past is completed at once, with no job
        (status,) = a.execute(
            "insert into meetings (title, end_time) values ('past', now() - interval '1 minute') "
            "returning status"
        ).fetchone()  # type: ignore[misc]
        assert status == "done"
        assert set(jobs(su)) == {"meeting-status-reconcile"}


def test_anon_writes_schedule_and_unschedule(supa: SupabaseShape) -> None:
    with supa.superuser() as su, supa.as_role("anon") as anon:
        rows = anon.execute(
            "insert into meetings (title, end_time) values ('a', %s), ('b', %s) returning id",
            (FUTURE, FUTURE + timedelta(hours=1)),
        ).fetchall()
        names = {f"meeting-status-{i}" for (i,) in rows}
        assert names <= set(jobs(su))
        anon.execute("delete from meetings")
        assert set(jobs(su)) == {"meeting-status-reconcile"}


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_api_roles_cannot_execute_admin_or_internal_functions(
    supa: SupabaseShape, role: str
) -> None:
    with supa.superuser() as su:
        for signature in ADMIN_FUNCTIONS + INTERNAL_FUNCTIONS:
            (allowed,) = su.execute(
                "select has_function_privilege(%s, %s, 'execute')", (role, signature)
            ).fetchone()  # type: ignore[misc]
            assert allowed is False, f"{role} may execute {signature}"
        assert su.execute(
            "select has_schema_privilege(%s, 'scheduler', 'usage')", (role,)
        ).fetchone() == (False,)
    calls = (
        "select * from scheduler.list_jobs()",
        "select scheduler.recover(true)",
        "select * from scheduler.history(false, 10)",
        "select scheduler.health()",
        f"select scheduler.schedule_meeting('{uuid.uuid4()}', now() + interval '1 day')",
        f"select scheduler.cancel_meeting('{uuid.uuid4()}')",
        "select scheduler.pause()",
        "select scheduler.reconcile()",
    )
    with supa.as_role(role, uuid.uuid4() if role == "authenticated" else None) as conn:
        for call in calls:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(call)


@pytest.mark.parametrize("role", ["anon", "authenticated", "service_role"])
def test_api_roles_cannot_call_cron_or_read_jobs(supa: SupabaseShape, role: str) -> None:
    # pg_cron leaves EXECUTE on cron.schedule/unschedule to PUBLIC (as on Supabase); what keeps
    # the API roles out is that they have no USAGE on schema cron.
    with supa.superuser() as su:
        assert su.execute(
            "select has_schema_privilege(%s, 'cron', 'usage')", (role,)
        ).fetchone() == (False,)
        (alter_job,) = su.execute(
            "select has_function_privilege(%s, "
            "'cron.alter_job(bigint, text, text, text, text, boolean)', 'execute')",
            (role,),
        ).fetchone()  # type: ignore[misc]
        assert alter_job is False
        before = jobs(su)
    with supa.as_role(role, uuid.uuid4() if role == "authenticated" else None) as conn:
        for call in (
            *CRON_CALLS,
            "select * from cron.job",
            "select * from cron.job_run_details",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(call)
    with supa.superuser() as su:
        assert jobs(su) == before


def test_service_role_may_execute_exactly_the_admin_functions(supa: SupabaseShape) -> None:
    """Every function of ours that service_role may execute is in ADMIN_FUNCTIONS, which the
    attack tests call one by one (tests/supabase/test_supabase_attacks.py)."""
    with supa.superuser() as su:
        granted = {
            oid
            for (oid,) in su.execute(
                "select p.oid from pg_proc p where p.pronamespace = 'scheduler'::regnamespace "
                "and has_function_privilege('service_role', p.oid, 'execute')"
            ).fetchall()
        }
        listed = {
            oid
            for signature in ADMIN_FUNCTIONS
            for (oid,) in su.execute("select %s::regprocedure::oid", (signature,)).fetchall()
        }
    assert granted == listed


def test_service_role_executes_the_admin_functions(supa: SupabaseShape) -> None:
    with supa.superuser() as su:
        for signature in ADMIN_FUNCTIONS:
            assert su.execute(
                "select has_function_privilege('service_role', %s, 'execute')", (signature,)
            ).fetchone() == (True,), signature
        for signature in INTERNAL_FUNCTIONS:
            assert su.execute(
                "select has_function_privilege('service_role', %s, 'execute')", (signature,)
            ).fetchone() == (False,), signature
        # default privileges gave it the settings table; the migration took that back
        assert su.execute(
            "select has_table_privilege('service_role', 'scheduler.settings', 'update')"
        ).fetchone() == (False,)
        (meeting_id,) = su.execute(
            "insert into meetings (title, end_time) values ('s', %s) returning id", (FUTURE,)
        ).fetchone()  # type: ignore[misc]
    with supa.as_role("service_role") as svc:
        listed = svc.execute("select job_name from scheduler.list_jobs()").fetchall()
        assert (f"meeting-status-{meeting_id}",) in listed
        (report,) = svc.execute("select scheduler.recover(false)").fetchone()  # type: ignore[misc]
        assert report["jobs_already_exist"] == 1 and report["success"] is True
        assert svc.execute("select * from scheduler.history(false, 5)").fetchall() == []
        (health,) = svc.execute("select scheduler.health()").fetchone()  # type: ignore[misc]
        assert health["jobs"] == 1 and health["reconcile_job"] is True
        (scheduled,) = svc.execute(
            "select scheduler.schedule_meeting(%s, %s)", (meeting_id, FUTURE + timedelta(days=1))
        ).fetchone()  # type: ignore[misc]
        assert scheduled["job"]["schedule"] == "0 12 2 6 *"
        (cancelled,) = svc.execute("select scheduler.cancel_meeting(%s)", (meeting_id,)).fetchone()  # type: ignore[misc]
        assert cancelled == {
            "meeting_id": str(meeting_id),
            "status": "cancelled",
            "jobs_removed": 1,
        }
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            svc.execute("select scheduler.pause()")


def test_history_and_jobs_show_only_the_migration_roles(supa: SupabaseShape) -> None:
    other = uuid.uuid4()
    with supa.superuser() as su:
        # a job of another owner, and a run of it that looks like ours
        su.execute(
            "select cron.schedule('meeting-status-' || %s, '0 12 1 6 *', "
            "format('select scheduler.complete_meeting(%%L::uuid)', %s::text))",
            (str(other), str(other)),
        )
        su.execute(
            "insert into cron.job_run_details (jobid, runid, job_pid, database, username, command, "
            "status, return_message, start_time, end_time) "
            "select jobid, 1, 1, current_database(), 'postgres', command, 'failed', 'boom', "
            "now(), now() from cron.job where username = 'postgres'"
        )
    with supa.as_role("service_role") as svc:
        assert svc.execute("select * from scheduler.history(false, 50)").fetchall() == []
        names = [n for (n,) in svc.execute("select job_name from scheduler.list_jobs()")]
        assert names == ["meeting-status-reconcile"]
        (health,) = svc.execute("select scheduler.health()").fetchone()  # type: ignore[misc]
        assert health["failed_runs_24h"] == 0 and health["orphan_jobs"] == 0


def test_our_sql_needs_nothing_beyond_pg_cron_1_4() -> None:
    """pg_cron 1.4 and 1.6: five-field schedules only, no seconds, no `$`, no cron.timezone, and
    cron.job is written directly only behind a privilege check (the Supabase path schedules)."""
    text = "\n".join(p.read_text() for p in sorted((REPO / "sql" / "postgres").glob("*.sql")))
    for literal in re.findall(r"cron\.schedule\(\s*'[^']*',\s*'([^']*)'", text):
        assert re.fullmatch(r"[0-9*]+( [0-9*]+){4}", literal), literal
    # cron.timezone (1.5+) is only read, by doctor, where a missing setting reads as null
    code = re.sub(r"--[^\n]*|comment on [^;]*;", "", text)
    assert re.findall(r"[^\n]*cron\.timezone[^\n]*", code) == [
        "        v_timezone := pg_catalog.current_setting('cron.timezone', true);"
    ]
    # seconds (1.5+) only in the sweep's schedule, built after checking the installed version
    rest = re.sub(r"interval '59\.999999 seconds'", "", text)
    # (a quoted number of seconds, or the format that makes one; not a message's words)
    assert re.findall(r"[^\n]*'(?:%s|[0-9]+) seconds'[^\n]*", rest) == [
        "    v_schedule := pg_catalog.format('%s seconds', v_seconds);"
    ]
    sync = text[
        text.index("function scheduler.sync_sweep()") : text.index(
            "v_schedule := pg_catalog.format"
        )
    ]
    assert "if not scheduler.sweep_supported()" in sync
    assert "schedule_in_database" not in text
    writes = list(re.finditer(r"(insert into|update|delete from) cron\.job\b", text))
    assert {w.group(1) for w in writes} == {"insert into", "delete from"}
    # the check itself, or (inserts) scheduler.job_target(), which makes it, and a branch on it
    guards = {
        "insert into": ("select * into v from scheduler.job_target();", "if v.direct then"),
        "delete from": ("has_table_privilege('cron.job', 'DELETE')", ""),
    }
    target = text[text.index("function scheduler.job_target(") :]
    target = target[: target.index("$$;")]
    assert "has_table_privilege('cron.job', 'INSERT')" in target
    assert "has_table_privilege('cron.job', 'UPDATE')" in target
    for write in writes:
        call, branch = guards[write.group(1)]
        guard = text.rfind(call, 0, write.start())
        between = text[guard : write.start()]
        assert guard != -1 and "create or replace function" not in between, write.group(0)
        assert "do $" not in between and branch in between, write.group(0)


def test_jobs_of_meetings_are_stored_as_cron_schedule_stores_them(supa: SupabaseShape) -> None:
    """On the platform's grants register_jobs calls cron.schedule; where the install guide's
    grant lets the migration role write cron.job it inserts the rows itself, without reading
    cron.host (superuser-only): it copies host and port from the reconcile job, which
    cron.schedule wrote. Either way the rows equal cron.schedule's, and deleting the meetings
    removes them."""
    with supa.superuser() as su, supa.as_role("authenticated", uuid.uuid4()) as a:
        ids = [
            a.execute(
                "insert into meetings (title, end_time) values ('direct', %s) returning id",
                (FUTURE + timedelta(minutes=i),),
            ).fetchone()[0]  # type: ignore[index]
            for i in range(3)
        ]
        rows = su.execute(
            "select jobname, nodename, nodeport, database, username from cron.job "
            "where jobname = any(%s) order by jobname",
            ([f"meeting-status-{i}" for i in ids],),
        ).fetchall()
        (reconcile,) = su.execute(
            "select nodename, nodeport, database, username from cron.job "
            "where jobname = 'meeting-status-reconcile'"
        ).fetchall()
        assert [r[0] for r in rows] == sorted(f"meeting-status-{i}" for i in ids)
        assert {r[1:] for r in rows} == {reconcile}
        a.execute("delete from meetings where id = any(%s)", (ids,))
        assert su.execute(
            "select count(*) from cron.job where jobname = any(%s)",
            ([f"meeting-status-{i}" for i in ids],),
        ).fetchone() == (0,)


def test_the_seconds_sweep_is_the_migration_roles_where_pg_cron_has_seconds(
    supa: SupabaseShape,
) -> None:
    """On pg_cron 1.5+ (Supabase's 1.6) the sweep job is registered with cron.schedule as the
    migration role, like every job of ours; on 1.4 it is absent. Which one is decided from the
    catalog's extversion, parsed in the test (pg_helpers); scheduler.sweep_supported() must
    agree."""
    with psycopg.connect(supa.dsn(MIGRATOR), autocommit=True) as conn:
        conn.execute("update scheduler.settings set sweep_seconds = 1")
        (state,) = conn.execute("select scheduler.sync_sweep()").fetchone()  # type: ignore[misc]
        (product_says,) = conn.execute("select scheduler.sweep_supported()").fetchone()  # type: ignore[misc]
        supported = sweep_supported(conn)
    assert product_says is supported
    with supa.superuser() as su:
        sweep = su.execute(
            "select schedule, username from cron.job where jobname = 'meeting-status-sweep'"
        ).fetchall()
    if supported:
        assert state == "1 seconds" and sweep == [("1 seconds", MIGRATOR)]
    else:
        assert state == "unsupported" and sweep == []
