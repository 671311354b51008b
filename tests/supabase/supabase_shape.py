"""A Supabase-shaped database on a throwaway cluster, and connections as its roles.

The platform's roles and pg_cron grants and the application's table are set up by
:mod:`scheduler_admin.testing.supabase` (shared with the benchmarks); in short:

* pg_cron is created by a superuser (``supabase_admin`` there, ``postgres`` here); its objects live
  in schema ``cron``.
* The role that runs migrations (``postgres`` there, ``migrator`` here) is not a superuser. It has
  the platform's pg_cron grants: usage on schema ``cron``, ``cron.schedule``/``cron.unschedule``,
  all privileges on ``cron.job_run_details`` and only SELECT on ``cron.job``; in the variant
  ``cron-job-writable`` (the install guide's ``grant all privileges on all tables in schema
  cron``) it may also write ``cron.job``. It may create schemas in the database and owns
  ``public.meetings``.
* Requests arrive through PostgREST, which logs in as ``authenticator`` (statement timeout 8 s)
  and switches to ``anon`` (3 s), ``authenticated`` (8 s) or ``service_role`` (``bypassrls``, no
  timeout of its own), applying the role's settings. ``auth.uid()`` reads the JWT's subject from
  ``request.jwt.claims`` (or ``request.jwt.claim.sub``, as PostgREST before v10 set it).
* ``public.meetings`` has row-level security: an authenticated user reads and writes only the rows
  it owns, anon only rows that belong to nobody.
"""

from __future__ import annotations

import json
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
from scheduler_admin.testing.supabase import (
    APP_SQL,
    CRON_JOB_WRITABLE_SQL,
    DATABASE,
    MIGRATOR,
    PLATFORM_SQL,
    VARIANTS,
    apply_shape,
)

__all__ = [
    "ADMIN_FUNCTIONS", "ANON_KEY", "APP_SQL", "CRON_JOB_WRITABLE_SQL", "DATABASE", "MIGRATOR",
    "PLATFORM_SQL", "REPO", "SERVICE_KEY", "VARIANTS", "SupabaseShape", "build", "reset",
    "role_settings",
]  # fmt: skip

REPO = Path(__file__).resolve().parents[2]
# The API keys the PostgREST stand-in accepts, and the role each one means.
SERVICE_KEY = "test-service-role-key-0123456789"
ANON_KEY = "test-anon-key-0123456789"
# Every admin function service_role may execute, with arguments to call it with.
ADMIN_FUNCTIONS = (
    "scheduler.list_jobs(text)",
    "scheduler.recover(boolean, text)",
    "scheduler.history(boolean, integer, text)",
    "scheduler.health()",
    "scheduler.schedule_meeting(uuid, timestamp with time zone)",
    "scheduler.cancel_meeting(uuid)",
    "scheduler.wake(text)",
    "scheduler.next_end_time()",
    # completion events, the webhook dispatcher and the metrics (0004)
    "scheduler.events(integer, text, text)",
    "scheduler.set_webhooks(boolean)",
    "scheduler.claim_events(integer, double precision)",
    "scheduler.record_attempt(bigint, text, integer, text, double precision)",
    "scheduler.metrics(text)",
    # the registered transitions (0005), doctor's facts about one (0006)
    "scheduler.transitions()",
    "scheduler.transition_health(text)",
    # the job horizon (0011)
    "scheduler.horizons()",
    "scheduler.deferred_jobs(text)",
    "scheduler.set_job_horizon(interval, text)",
    # the elected waker (0012)
    "scheduler.claim_waker(text, double precision, text)",
    "scheduler.release_waker(text, text)",
)

Conn = psycopg.Connection[Any]


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
    def as_role(
        self, role: str, user_id: object = None, *, legacy_claims: bool = False
    ) -> Iterator[Conn]:
        """A connection like PostgREST's: logged in as authenticator (and so with its settings),
        switched to an API role with that role's settings applied (its statement timeout), the
        JWT's claims in ``request.jwt.claims`` as current PostgREST sets them, or with
        ``legacy_claims`` the subject alone in ``request.jwt.claim.sub`` as PostgREST did before
        v10."""
        with psycopg.connect(self.dsn("authenticator"), autocommit=True) as conn:
            conn.execute(sql.SQL("set role {}").format(sql.Identifier(role)))
            for name, setting in role_settings(conn, role):
                conn.execute("select set_config(%s, %s, false)", (name, setting))
            if legacy_claims:
                if user_id is not None:
                    conn.execute(
                        "select set_config('request.jwt.claim.sub', %s, false)", (str(user_id),)
                    )
            else:
                claims = {"role": role} | ({"sub": str(user_id)} if user_id is not None else {})
                conn.execute(
                    "select set_config('request.jwt.claims', %s, false)", (json.dumps(claims),)
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


def role_settings(conn: Conn, role: str) -> list[tuple[str, str]]:
    """A role's own settings (``alter role … set``) that any user may set, for this database or
    all, as PostgREST applies them to an impersonated role (the database's override last)."""
    rows = conn.execute(
        "select split_part(c, '=', 1), substr(c, strpos(c, '=') + 1) "
        "from pg_catalog.pg_db_role_setting s "
        "join pg_catalog.pg_roles r on r.oid = s.setrole "
        "cross join lateral unnest(s.setconfig) c "
        "join pg_catalog.pg_settings g on g.name = split_part(c, '=', 1) and g.context = 'user' "
        "where r.rolname = %s and s.setdatabase in (0, (select oid from pg_catalog.pg_database "
        "                                               where datname = current_database())) "
        "order by s.setdatabase <> 0",
        (role,),
    ).fetchall()
    return [(str(name), str(setting)) for name, setting in rows]


def build(cluster: ThrowawayServer, variant: str = "platform") -> SupabaseShape:
    assert variant in VARIANTS, variant
    shape = SupabaseShape(cluster, variant)
    apply_shape(shape.dsn(), shape.dsn(MIGRATOR), variant)
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
        conn.execute("update scheduler.settings set webhooks = false")
        conn.execute("delete from scheduler.completion_events")
        conn.execute("delete from scheduler.metric_totals")
        conn.execute("delete from scheduler.failing_rows")
        conn.execute("update scheduler.reconcile_state set skipped_in_a_row = 0")
