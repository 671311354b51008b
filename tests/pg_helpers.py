"""Small helpers shared by the PostgreSQL tests."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

import psycopg
import pytest
import sqlalchemy.exc
from sqlalchemy import create_engine, pool

from scheduler_admin.migrate import alembic_config
from scheduler_admin.testing.lanes import ThrowawayServer

Conn = psycopg.Connection[Any]
JOB_PATTERN = "^meeting-status-[0-9a-f-]{36}$"
T = TypeVar("T")


def revisions() -> list[str]:
    """The package's alembic revisions, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def head_revision() -> str:
    """The newest alembic revision of the package."""
    return revisions()[-1]


def catalog(conn: Conn) -> dict[str, object]:
    """Everything of ours that a schema defines, as comparable data (alembic's own version table
    aside)."""
    q = conn.execute
    return {
        "functions": q(
            "select p.oid::regprocedure::text, pg_get_functiondef(p.oid), p.proacl::text, "
            "       p.proowner::regrole::text, obj_description(p.oid, 'pg_proc') "
            "from pg_proc p where p.pronamespace = 'scheduler'::regnamespace order by 1"
        ).fetchall(),
        "columns": q(
            "select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
            "       pg_get_expr(d.adbin, d.adrelid) "
            "from pg_attribute a join pg_class c on c.oid = a.attrelid "
            "left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum "
            "where (c.relnamespace in ('scheduler'::regnamespace) and c.relname !~ '^alembic_version' "
            "       or c.oid = 'public.meetings'::regclass) "
            "  and a.attnum > 0 and not a.attisdropped order by 1, 2"
        ).fetchall(),
        "constraints": q(
            "select conrelid::regclass::text, conname, pg_get_constraintdef(oid) from pg_constraint "
            "where (connamespace = 'scheduler'::regnamespace "
            "       and conrelid::regclass::text <> 'scheduler.alembic_version') "
            "   or conrelid = 'public.meetings'::regclass "
            "order by 1, 2"
        ).fetchall(),
        "indexes": q(
            "select indexrelid::regclass::text, pg_get_indexdef(indexrelid) from pg_index "
            "where indrelid in (select oid from pg_class where relnamespace = 'scheduler'::regnamespace "
            "                   and relname <> 'alembic_version') "
            "   or indrelid = 'public.meetings'::regclass order by 1"
        ).fetchall(),
        "triggers": q(
            "select tgname, pg_get_triggerdef(oid) from pg_trigger "
            "where tgrelid = 'public.meetings'::regclass and not tgisinternal order by 1"
        ).fetchall(),
        "tables": q(
            "select c.oid::regclass::text, c.relowner::regrole::text, c.relacl::text, "
            "       c.relrowsecurity, c.relforcerowsecurity from pg_class c "
            "where (c.relnamespace = 'scheduler'::regnamespace and c.relname !~ '^alembic_version') "
            "   or c.oid = 'public.meetings'::regclass order by 1"
        ).fetchall(),
        "schema": q(
            "select nspowner::regrole::text, nspacl::text, obj_description(oid, 'pg_namespace') "
            "from pg_namespace where nspname = 'scheduler'"
        ).fetchall(),
        "comments": q(
            "select obj_description('scheduler.settings'::regclass, 'pg_class')"
        ).fetchall(),
        "settings": q("select enabled, history_retention from scheduler.settings").fetchall(),
        "jobs": q(
            "select jobname, schedule, command, username from cron.job "
            "where jobname like 'meeting-status-%%' order by 1"
        ).fetchall(),
    }


def pg_cron_version(conn: Conn) -> tuple[int, ...]:
    """The installed pg_cron's extension version, read from the catalog and parsed here (not by
    the code under test): extversion "1.4-1" is (1, 4), "1.6" is (1, 6)."""
    row = conn.execute(
        "select extversion from pg_catalog.pg_extension where extname = 'pg_cron'"
    ).fetchone()
    assert row is not None, "pg_cron is not created in this database"
    match = re.fullmatch(r"([0-9]+)\.([0-9]+)(?:\.([0-9]+))?(?:-[0-9]+)?", str(row[0]))
    assert match is not None, f"unexpected pg_cron extversion {row[0]!r}"
    return tuple(int(part) for part in match.groups() if part is not None)


def server_major(conn: Conn) -> int:
    """The server's major version (15, 17), from server_version_num."""
    return int(value(conn, "select current_setting('server_version_num')")) // 10000


def sweep_supported(conn: Conn) -> bool:
    """Whether the server's pg_cron takes schedules in seconds (1.5+), where the sweep job
    exists: decided from pg_cron_version(), never from the product's
    scheduler.sweep_supported() (tests compare the two)."""
    return pg_cron_version(conn)[:2] >= (1, 5)


def sweep_off(conn: Conn) -> None:
    """sweep_seconds = 0 and no sweep job (as the reconcile job would make it)."""
    conn.execute("update scheduler.settings set sweep_seconds = 0")
    conn.execute(
        "select cron.unschedule(jobid) from cron.job where jobname = 'meeting-status-sweep'"
    )


def meeting_jobs(conn: Conn) -> dict[str, tuple[str, str]]:
    """Every meeting job of ours: job name -> (schedule, command)."""
    rows = conn.execute(
        "select jobname, schedule, command from cron.job where jobname ~ %s", (JOB_PATTERN,)
    ).fetchall()
    return {name: (schedule, command) for name, schedule, command in rows}


def job_name(meeting_id: object) -> str:
    return f"meeting-status-{meeting_id}"


# What a job of ours runs: a statement timeout (pg_cron starts a fresh session per run), then the
# function of ours, with the meeting id as a literal of a qualified type.
RECONCILE_COMMAND = "set statement_timeout = '2min'; select scheduler.reconcile()"


def job_command(meeting_id: object) -> str:
    return (
        "set statement_timeout = '2min'; "
        f"select scheduler.complete_meeting('{meeting_id}'::pg_catalog.uuid)"
    )


def run_command(conn: Conn, command: str) -> Any:
    """Run a job's command as pg_cron does (one simple query, several statements) and return
    the first value of the last statement's result; then undo the command's session settings
    (pg_cron's session ends after each run, the test's connection does not)."""
    cur = conn.execute(command)  # type: ignore[arg-type]
    value = None
    while True:
        if cur.description is not None:
            row = cur.fetchone()
            if isinstance(row, dict):  # a connection with a dict row factory
                row = tuple(row.values())
            value = None if row is None else row[0]
        if not cur.nextset():
            break
    conn.execute("reset statement_timeout")
    return value


def insert_meeting(
    conn: Conn, end_time: datetime | str, status: str = "upcoming", title: str = "m"
) -> tuple[Any, str]:
    """Insert one meeting; return (id, stored status)."""
    row = conn.execute(
        "insert into meetings (title, end_time, status) values (%s, %s, %s) returning id, status",
        (title, end_time, status),
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def status_of(conn: Conn, meeting_id: object) -> str | None:
    row = conn.execute("select status from meetings where id = %s", (meeting_id,)).fetchone()
    return None if row is None else str(row[0])


def expected_schedule(end_time: datetime) -> str:
    """The five-field UTC schedule of the first minute at or after end_time, computed in Python."""
    from datetime import timedelta, timezone

    utc = end_time.astimezone(timezone.utc)
    minute = utc.replace(second=0, microsecond=0)
    if minute < utc:
        minute += timedelta(minutes=1)
    return f"{minute.minute} {minute.hour} {minute.day} {minute.month} *"


def value(conn: Conn, sql: str, params: tuple[Any, ...] = ()) -> Any:
    """The first column of the first row a query gives, None when it gives no row."""
    row = conn.execute(sql, params).fetchone()  # type: ignore[arg-type]
    return None if row is None else row[0]


def db_now(conn: Conn) -> datetime:
    """The database's clock (clock_timestamp(): not frozen at the transaction's start)."""
    now = value(conn, "select clock_timestamp()")
    assert isinstance(now, datetime)
    return now


def clear_of_ticks(conn: Conn, seconds: float) -> datetime:
    """A time ``seconds`` ahead by the database's clock, moved later while it falls within 3 s of
    a minute boundary (where pg_cron's minute tick could complete its row first)."""
    at = db_now(conn) + timedelta(seconds=seconds)
    while at.second < 3 or at.second >= 57:
        at += timedelta(seconds=1)
    return at


def poll(condition: Callable[[], T], timeout: float, interval: float = 0.5) -> T:
    """Evaluate condition until it is truthy or timeout seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    return condition()


class Server:
    """The PostgreSQL server under test."""

    def __init__(self, dsn: str, url: str, cluster: ThrowawayServer | None) -> None:
        self.dsn = dsn
        self.url = url
        self.cluster = cluster


def connect(dsn: str, **kwargs: object) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(dsn, autocommit=True, **kwargs)  # type: ignore[arg-type]


def migrate(server: Server, revision: str = "head", *, down: bool = False) -> None:
    from alembic import command

    engine = create_engine(
        "postgresql+psycopg://",
        poolclass=pool.NullPool,
        creator=lambda: psycopg.connect(server.dsn),
    )
    with engine.begin() as conn:
        cfg = alembic_config(connection=conn)
        if down:
            command.downgrade(cfg, revision)
        else:
            command.upgrade(cfg, revision)
    engine.dispose()


def reset(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Delete every meeting (the triggers unschedule their jobs) and any job of ours left. The
    seconds sweep (pg_cron 1.5+) is off: these tests are about the meetings' own jobs, and
    tests/postgres/test_sweep.py turns it on."""
    sweep_off(conn)
    conn.execute("update scheduler.settings set enabled = true")
    conn.execute("delete from public.meetings")
    conn.execute(
        "select cron.unschedule(jobid) from cron.job "
        "where jobname ~ '^meeting-status-[0-9a-f-]{36}$'"
    )
    conn.execute("delete from cron.job_run_details")
    if conn.execute("select to_regclass('scheduler.completion_events') is not null").fetchone()[0]:  # type: ignore[index]
        conn.execute("update scheduler.settings set webhooks = false")
        conn.execute("delete from scheduler.completion_events")
        conn.execute("delete from scheduler.metric_totals")
    horizon = "select count(*) = 1 from pg_attribute where attrelid = 'scheduler.settings'::regclass and attname = 'job_horizon'"
    if conn.execute(horizon).fetchone()[0]:  # type: ignore[index]
        conn.execute("update scheduler.settings set job_horizon = null")
        conn.execute("update scheduler.transitions set job_horizon = null")
    if conn.execute("select to_regclass('scheduler.failing_rows') is not null").fetchone()[0]:  # type: ignore[index]
        conn.execute("delete from scheduler.failing_rows")
        conn.execute("update scheduler.reconcile_state set skipped_in_a_row = 0")


def upgrade_error(server: Server) -> psycopg.Error:
    """The database error that makes `alembic upgrade head` fail."""
    with pytest.raises((psycopg.Error, sqlalchemy.exc.DBAPIError)) as info:
        migrate(server)
    error = info.value.orig if isinstance(info.value, sqlalchemy.exc.DBAPIError) else info.value
    assert isinstance(error, psycopg.Error)
    return error


@contextmanager
def reconcile_job_inactive(conn: Conn) -> Iterator[None]:
    """The recurring reconcile job inactive, and no run of it in progress: it fires at every
    tick and may complete a test's meeting first (the meeting's pending run is then dropped as
    canceled), and its lock makes reconcile() skip. Reactivated afterwards."""
    conn.execute("update cron.job set active = false where jobname = 'meeting-status-reconcile'")
    try:
        assert poll(
            lambda: conn.execute(
                "select count(*) = 0 from pg_stat_activity where pid <> pg_backend_pid() "
                "and state <> 'idle' and query like '%scheduler.reconcile()%'"
            ).fetchone()[0],  # type: ignore[index]
            timeout=60,
        ), "a reconcile run did not finish"
        yield
    finally:
        conn.execute("update cron.job set active = true where jobname = 'meeting-status-reconcile'")
