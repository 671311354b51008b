"""A Supabase-shaped database on a throwaway cluster, and connections as its roles.

What Supabase gives a project, reduced to what the scheduler meets there:

* pg_cron is created by a superuser (``supabase_admin`` there, ``postgres`` here); its objects live
  in schema ``cron``.
* The role that runs migrations (``postgres`` there, ``migrator`` here) is not a superuser. It has
  the platform's pg_cron grants: usage on schema ``cron``, ``cron.schedule``/``cron.unschedule``,
  all privileges on ``cron.job_run_details`` and only SELECT on ``cron.job``; in the variant
  ``cron-job-writable`` (the install guide's ``grant all privileges on all tables in schema
  cron``) it may also write ``cron.job``. It may create schemas in the database and owns
  ``public.meetings``.
* Requests arrive through PostgREST, which logs in as ``authenticator`` and switches to ``anon``,
  ``authenticated`` or ``service_role`` (``bypassrls``). ``auth.uid()`` reads the JWT's subject.
* ``public.meetings`` has row-level security: an authenticated user reads and writes only the rows
  it owns, anon only rows that belong to nobody.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from scheduler_admin.testing.lanes import ThrowawayServer

REPO = Path(__file__).resolve().parents[2]
DATABASE = "supabase_db"
MIGRATOR = "migrator"
# The API keys the PostgREST stand-in accepts, and the role each one means.
SERVICE_KEY = "test-service-role-key-0123456789"
ANON_KEY = "test-anon-key-0123456789"
# Every admin function service_role may execute, with arguments to call it with.
ADMIN_FUNCTIONS = (
    "scheduler.list_jobs()",
    "scheduler.recover(boolean)",
    "scheduler.history(boolean, integer)",
    "scheduler.health()",
    "scheduler.schedule_meeting(uuid, timestamp with time zone)",
    "scheduler.cancel_meeting(uuid)",
    "scheduler.wake()",
    "scheduler.next_end_time()",
)

Conn = psycopg.Connection[Any]

# Run by the superuser before anything of ours (Supabase's platform set-up).
PLATFORM_SQL = """
create extension pg_cron;

create role anon nologin noinherit;
create role authenticated nologin noinherit;
create role service_role nologin noinherit bypassrls;
create role authenticator login noinherit;
grant anon, authenticated, service_role to authenticator;

create role migrator login nosuperuser nocreatedb nocreaterole nobypassrls;
grant create on database supabase_db to migrator;
grant usage, create on schema public to migrator;
grant usage on schema public to anon, authenticated, service_role;

-- Supabase's platform hook for pg_cron: usage on schema cron with grant option, all privileges
-- on every cron table but cron.job (job_run_details included), only SELECT on cron.job, and the
-- right to call cron.schedule and cron.unschedule (every signature the installed pg_cron has:
-- 1.4 has cron.unschedule(name), 1.5+ cron.unschedule(text) instead)
grant usage on schema cron to migrator with grant option;
grant select on cron.job to migrator;
do $$
declare
    t regclass;
    f regprocedure;
begin
    for t in
        select c.oid::regclass from pg_class c
        where c.relnamespace = 'cron'::regnamespace and c.relkind in ('r', 'p')
          and c.relname <> 'job'
    loop
        execute format('grant all privileges on table %s to migrator', t);
    end loop;
    for f in
        select p.oid::regprocedure from pg_proc p
        where p.pronamespace = 'cron'::regnamespace and p.proname in ('schedule', 'unschedule')
    loop
        execute format('grant execute on function %s to migrator', f);
    end loop;
end
$$;

create schema auth;
create function auth.uid() returns uuid language sql stable as $$
    select nullif(pg_catalog.current_setting('request.jwt.claim.sub', true), '')::uuid
$$;
grant usage on schema auth to migrator, anon, authenticated, service_role;

-- A project whose default privileges hand every new schema, function and table of the migration
-- role to the API roles: the migration must take that back for the scheduler's objects.
alter default privileges for role migrator grant usage on schemas to anon, authenticated, service_role;
alter default privileges for role migrator grant execute on functions to anon, authenticated, service_role;
alter default privileges for role migrator grant all on tables to anon, authenticated, service_role;
"""

# Supabase's install guide for pg_cron also says `grant all privileges on all tables in schema
# cron to postgres`: projects that ran it have a migration role that may write cron.job.
CRON_JOB_WRITABLE_SQL = """
grant all privileges on all tables in schema cron to migrator;
grant usage on all sequences in schema cron to migrator;
"""
# The grant variants every test of the Supabase suite runs on.
VARIANTS = ("platform", "cron-job-writable")

# Run by the migration role: the application's table, with row-level security, before migrating.
APP_SQL = """
create table public.meetings (
    id uuid primary key default gen_random_uuid(),
    title text,
    start_time timestamptz,
    end_time timestamptz not null,
    status text not null default 'upcoming'
        constraint meetings_status_check check (status in ('upcoming', 'done', 'cancelled')),
    owner_id uuid default auth.uid(),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
alter table public.meetings enable row level security;
create policy meetings_own_rows on public.meetings for all to authenticated
    using (owner_id = auth.uid()) with check (owner_id = auth.uid());
create policy meetings_public_rows on public.meetings for all to anon
    using (owner_id is null) with check (owner_id is null);
grant select, insert, update, delete on public.meetings to anon, authenticated, service_role;
"""


@dataclass
class SupabaseShape:
    cluster: ThrowawayServer
    variant: str = "platform"

    @property
    def cron_job_writable(self) -> bool:
        """The migration role may insert, update and delete cron.job (the set-based path)."""
        return self.variant == "cron-job-writable"

    def dsn(self, user: str = "postgres") -> str:
        return self.cluster.dsn(DATABASE, user=user)

    def url(self, user: str = MIGRATOR) -> str:
        return self.cluster.url(DATABASE, user=user)

    def superuser(self) -> Conn:
        return psycopg.connect(self.dsn(), autocommit=True)

    @contextmanager
    def as_role(self, role: str, user_id: object = None) -> Iterator[Conn]:
        """A connection like PostgREST's: logged in as authenticator, switched to an API role."""
        with psycopg.connect(self.dsn("authenticator"), autocommit=True) as conn:
            conn.execute(sql.SQL("set role {}").format(sql.Identifier(role)))
            if user_id is not None:
                conn.execute(
                    "select set_config('request.jwt.claim.sub', %s, false)", (str(user_id),)
                )
            yield conn

    def alembic(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the alembic command line from the repository root as the migration role."""
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("SCHEDULER_DATABASE_URL", "DATABASE_URL", "SUPABASE_DB_URL", "ENVIRONMENT")
        }
        return subprocess.run(
            [sys.executable, "-m", "alembic", "-x", f"url={self.url()}", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )


def build(cluster: ThrowawayServer, variant: str = "platform") -> SupabaseShape:
    assert variant in VARIANTS, variant
    shape = SupabaseShape(cluster, variant)
    with shape.superuser() as conn:
        conn.execute(PLATFORM_SQL)
        if shape.cron_job_writable:
            conn.execute(CRON_JOB_WRITABLE_SQL)
    with psycopg.connect(shape.dsn(MIGRATOR), autocommit=True) as conn:
        conn.execute(APP_SQL)
    return shape


def reset(shape: SupabaseShape) -> None:
    """No meeting, no job of ours but the reconcile job, no run history, scheduler enabled."""
    with shape.superuser() as conn:
        # the seconds sweep (pg_cron 1.5+) off, as in tests/postgres: tests turn it on
        conn.execute("update scheduler.settings set enabled = true, sweep_seconds = 0")
        conn.execute(
            "select cron.unschedule(jobid) from cron.job where jobname = 'meeting-status-sweep'"
        )
        conn.execute("delete from public.meetings")
        conn.execute(
            "select cron.unschedule(jobid) from cron.job "
            "where jobname ~ '^meeting-status-[0-9a-f-]{36}$' or username <> %s",
            (MIGRATOR,),
        )
        conn.execute("delete from cron.job_run_details")
