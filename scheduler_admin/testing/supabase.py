"""The Supabase shape of a database: Supabase's platform grants on pg_cron and a migration role
that is not a superuser and owns ``public.meetings``.

Shared by the Supabase test suite (``tests/supabase/supabase_shape.py``) and the benchmarks
(``python -m benchmarks --shapes supabase``). What Supabase gives a project, reduced to what the
scheduler meets there:

* pg_cron is created by a superuser (``supabase_admin`` there, ``postgres`` here); its objects live
  in schema ``cron``.
* The role that runs migrations (``postgres`` there, ``migrator`` here) is not a superuser. It has
  the platform's pg_cron grants: usage on schema ``cron``, ``cron.schedule``/``cron.unschedule``,
  all privileges on ``cron.job_run_details`` and only SELECT on ``cron.job`` (so the scheduler
  calls ``cron.schedule``/``cron.unschedule`` once per job); in the variant ``cron-job-writable``
  (the install guide's ``grant all privileges on all tables in schema cron``) it may also write
  ``cron.job`` (the set-based path). It may create schemas in the database and owns
  ``public.meetings``.
* API roles ``anon``, ``authenticated``, ``service_role`` and the login role ``authenticator``,
  with Supabase's statement timeouts (``authenticator`` 8 s, ``anon`` 3 s, ``authenticated``
  8 s; ``service_role`` none of its own, so authenticator's 8 s); ``auth.uid()`` reads the JWT's
  subject from ``request.jwt.claims`` (current PostgREST) or ``request.jwt.claim.sub`` (before
  v10); ``public.meetings`` has row-level security.
"""

from __future__ import annotations

from typing import Any

import psycopg

# pg_cron runs in this database (cron.database_name of the cluster that hosts the shape).
DATABASE = "supabase_db"
MIGRATOR = "migrator"

# Run by the superuser before anything of ours (Supabase's platform set-up).
PLATFORM_SQL = """
create extension pg_cron;

create role anon nologin noinherit;
create role authenticated nologin noinherit;
create role service_role nologin noinherit bypassrls;
create role authenticator login noinherit;
grant anon, authenticated, service_role to authenticator;
-- Supabase's statement timeouts: authenticator's applies to the session PostgREST logs in with
-- (and so to service_role, which has none of its own); PostgREST applies an impersonated role's
-- own settings in each request's transaction
alter role authenticator set statement_timeout = '8s';
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';

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
-- Supabase's definition: PostgREST before v10 set request.jwt.claim.sub, current PostgREST sets
-- the claims as one JSON object, request.jwt.claims
create function auth.uid() returns uuid language sql stable as $$
    select coalesce(
        nullif(pg_catalog.current_setting('request.jwt.claim.sub', true), ''),
        (nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;
grant usage on schema auth to migrator, anon, authenticated, service_role;

-- A project whose default privileges hand every new schema, function and table of the migration
-- role to the API roles: the migration must take that back for the scheduler's objects.
alter default privileges for role migrator
    grant usage on schemas to anon, authenticated, service_role;
alter default privileges for role migrator
    grant execute on functions to anon, authenticated, service_role;
alter default privileges for role migrator
    grant all on tables to anon, authenticated, service_role;
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


def apply_shape(superuser_dsn: str, migrator_dsn: str, variant: str = "platform") -> None:
    """Give a fresh database (``DATABASE``, pg_cron preloaded for it) the platform's roles and
    grants (as the superuser), then create ``public.meetings`` as the migration role."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: expected one of {', '.join(VARIANTS)}")
    conn: psycopg.Connection[Any]
    with psycopg.connect(superuser_dsn, autocommit=True) as conn:
        conn.execute(PLATFORM_SQL)
        if variant == "cron-job-writable":
            conn.execute(CRON_JOB_WRITABLE_SQL)
    with psycopg.connect(migrator_dsn, autocommit=True) as conn:
        conn.execute(APP_SQL)
