"""One adapter per backend, offering the same operations to the scenario suite.

A scenario writes meetings with plain SQL, as any client of the database would, reads what the
triggers did, runs a meeting's job "now", breaks the state behind the triggers' back, and calls
the admin side through the :class:`~scheduler_admin.backends.base.Backend` protocol. Everything
backend-specific lives here; the scenarios are written once.

PostgreSQL: the reconcile job of pg_cron runs every minute while the tests run. ``held()`` opens a
transaction holding the lock that recover() and reconcile() take, so that the reconcile job
neither sees a broken state built inside it nor changes it. The adapter's direct SQL and the
backend's protocol calls share one session (the backend's connection), so a protocol call made
inside ``held()`` sees that state and takes the lock again (advisory locks are re-entrant).
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
from pg_helpers import run_command

from scheduler_admin.backends.postgres import PostgresBackend
from scheduler_admin.backends.sqlite import SqliteBackend
from scheduler_admin.schema import read_sql
from scheduler_admin.sqlite import commands
from scheduler_admin.sqlite.connection import TRIGGERS, from_db_time
from scheduler_admin.sqlite_script import execute_sqlite_script

UTC = timezone.utc
JOB_PREFIX = "meeting-status-"
RECONCILE_JOB = "meeting-status-reconcile"
PG_JOB_PATTERN = "^meeting-status-[0-9a-f-]{36}$"
PG_REPAIR_LOCK = "select pg_advisory_xact_lock(hashtext('scheduler.repair'))"

EndTime = datetime | str | int | None


class Rejected(Exception):
    """The database refused a write (the driver's error, whatever the backend)."""


def job_name(meeting_id: object) -> str:
    return f"{JOB_PREFIX}{meeting_id}"


class PostgresAdapter:
    name = "postgres"

    def __init__(self, url: str) -> None:
        self.backend = PostgresBackend(url)
        # One session for direct SQL and protocol calls (see the module docstring).
        self.conn: psycopg.Connection[dict[str, Any]] = self.backend.connect()

    def close(self) -> None:
        self.backend.close()

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else next(iter(row.values()))

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        try:
            cursor = self.conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []
        except psycopg.Error as exc:
            raise Rejected(str(exc)) from exc

    # -- plain SQL writes, as an application does -------------------------------------------

    def insert(self, end_time: EndTime, status: str | None = None, title: str = "m") -> str:
        return self.insert_rows([(end_time, status)], title=title)[0]

    def insert_rows(self, rows: list[tuple[EndTime, str | None]], title: str = "m") -> list[str]:
        """One multi-row INSERT ... VALUES; a status of None takes the column default."""
        values = ", ".join(
            "(%s, %s, coalesce(%s, 'upcoming'))" if status is None else "(%s, %s, %s)"
            for _, status in rows
        )
        params: list[Any] = []
        for end_time, status in rows:
            params += [title, end_time, status]
        returned = self._write(
            f"insert into meetings (title, end_time, status) values {values} returning id",
            tuple(params),
        )
        return [str(r["id"]) for r in returned]

    def insert_select(self, count: int, first_end: datetime, step_seconds: int) -> int:
        """One INSERT ... SELECT of ``count`` upcoming meetings ending step_seconds apart."""
        rows = self._write(
            "insert into meetings (title, end_time) "
            "select 'bulk ' || g, %s::timestamptz + g * make_interval(secs => %s) "
            "from generate_series(0, %s - 1) g returning id",
            (first_end, step_seconds, count),
        )
        return len(rows)

    def update(self, meeting_id: str, **values: EndTime) -> None:
        sets = ", ".join(f"{column} = %s" for column in values)
        self._write(f"update meetings set {sets} where id = %s", (*values.values(), meeting_id))

    def delete(self, meeting_id: str) -> None:
        self._write("delete from meetings where id = %s", (meeting_id,))

    # -- reading ----------------------------------------------------------------------------

    def status(self, meeting_id: str) -> str | None:
        value = self._one("select status from meetings where id = %s", (meeting_id,))
        return None if value is None else str(value)

    def end_time(self, meeting_id: str) -> datetime:
        value = self._one("select end_time from meetings where id = %s", (meeting_id,))
        assert isinstance(value, datetime)
        return value

    def upcoming(self) -> dict[str, datetime]:
        rows = self.conn.execute(
            "select id, end_time from meetings where status = 'upcoming'"
        ).fetchall()
        return {str(r["id"]): r["end_time"] for r in rows}

    def jobs(self) -> dict[str, str]:
        """Our meetings' jobs (the reconcile job excluded): job name -> schedule."""
        rows = self.conn.execute(
            "select jobname, schedule from cron.job where jobname ~ %s", (PG_JOB_PATTERN,)
        ).fetchall()
        return {str(r["jobname"]): str(r["schedule"]) for r in rows}

    def snapshot(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        meetings = self.conn.execute(
            "select id::text, title, end_time, status, updated_at from meetings order by id"
        ).fetchall()
        jobs = self.conn.execute(
            "select jobid, jobname, schedule, command, active from cron.job "
            "where jobname like 'meeting-status-%%' order by jobid"
        ).fetchall()
        return [tuple(r.values()) for r in meetings], [tuple(r.values()) for r in jobs]

    # -- jobs -------------------------------------------------------------------------------

    def run_job(self, meeting_id: str) -> int | None:
        """Execute the command stored in the meeting's cron.job row, as pg_cron would now;
        returns what it reports (meetings completed), None when the meeting has no job."""
        command = self._one(
            "select command from cron.job where jobname = %s", (job_name(meeting_id),)
        )
        if command is None:
            return None
        return int(run_command(self.conn, str(command)))

    def set_job_active(self, meeting_id: str, active: bool) -> None:
        self.conn.execute(
            "update cron.job set active = %s where jobname = %s", (active, job_name(meeting_id))
        )

    def job_active(self, meeting_id: str) -> bool | None:
        value = self._one("select active from cron.job where jobname = %s", (job_name(meeting_id),))
        return None if value is None else bool(value)

    def add_orphan_job(self, meeting_id: str, schedule: str = "0 0 1 1 *") -> None:
        """A job of ours, registered as the triggers would, whatever the meeting's state."""
        self._one(
            "select cron.schedule(scheduler.job_name(%s), %s, scheduler.job_command(%s))",
            (meeting_id, schedule, meeting_id),
        )

    def add_run(self, meeting_id: str | None, status: str, message: str, start: datetime) -> None:
        """A row of job history, as pg_cron writes it (reconcile job for meeting_id None)."""
        command = (
            "set statement_timeout = '2min'; select scheduler.reconcile()"
            if meeting_id is None
            else self._one("select scheduler.job_command(%s)", (meeting_id,))
        )
        self._one(
            "insert into cron.job_run_details (jobid, job_pid, database, username, command, "
            "status, return_message, start_time, end_time) values (0, 4242, current_database(), "
            "current_user, %s, %s, %s, %s, %s + interval '1 second') returning runid",
            (command, status, message, start, start),
        )

    # -- bypassing the triggers and the reconcile job ---------------------------------------

    @contextlib.contextmanager
    def without_triggers(self) -> Iterator[None]:
        """Write without firing the triggers, as pg_restore and logical replication do."""
        self.conn.execute("set session_replication_role = replica")
        try:
            yield
        finally:
            self.conn.execute("set session_replication_role = origin")

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self.conn.transaction():
            self.conn.execute(PG_REPAIR_LOCK)
            yield

    def set_paused(self, paused: bool) -> None:
        self.conn.execute("update scheduler.settings set enabled = %s", (not paused,))


class SqliteAdapter:
    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.backend = SqliteBackend(f"sqlite:///{path}")  # the real clock, as on PostgreSQL
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=10)
        self.conn.row_factory = sqlite3.Row

    def close(self) -> None:
        self.conn.close()
        self.backend.close()

    @staticmethod
    def _value(end_time: EndTime) -> Any:
        return end_time.isoformat() if isinstance(end_time, datetime) else end_time

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise Rejected(str(exc)) from exc

    # -- plain SQL writes, as an application does -------------------------------------------

    def insert(self, end_time: EndTime, status: str | None = None, title: str = "m") -> str:
        return self.insert_rows([(end_time, status)], title=title)[0]

    def insert_rows(self, rows: list[tuple[EndTime, str | None]], title: str = "m") -> list[str]:
        values = ", ".join(
            "(?, ?, coalesce(?, 'upcoming'))" if status is None else "(?, ?, ?)"
            for _, status in rows
        )
        params: list[Any] = []
        for end_time, status in rows:
            params += [title, self._value(end_time), status]
        returned = self._write(
            f"INSERT INTO meetings (title, end_time, status) VALUES {values} RETURNING id",
            tuple(params),
        )
        return [str(r["id"]) for r in returned]

    def insert_select(self, count: int, first_end: datetime, step_seconds: int) -> int:
        before = self.conn.execute("SELECT count(*) FROM meetings").fetchone()[0]
        self._write(
            """INSERT INTO meetings (title, end_time)
               WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < ? - 1)
               SELECT 'bulk ' || n,
                      strftime('%Y-%m-%dT%H:%M:%S+00:00', ?, '+' || (n * ?) || ' seconds')
                 FROM g""",
            (count, first_end.astimezone(UTC).isoformat(), step_seconds),
        )
        return int(self.conn.execute("SELECT count(*) FROM meetings").fetchone()[0] - before)

    def update(self, meeting_id: str, **values: EndTime) -> None:
        sets = ", ".join(f"{column} = ?" for column in values)
        self._write(
            f"UPDATE meetings SET {sets} WHERE id = ?",
            (*(self._value(v) for v in values.values()), meeting_id),
        )

    def delete(self, meeting_id: str) -> None:
        self._write("DELETE FROM meetings WHERE id = ?", (meeting_id,))

    # -- reading ----------------------------------------------------------------------------

    def status(self, meeting_id: str) -> str | None:
        row = self.conn.execute(
            "SELECT status FROM meetings WHERE id = ?", (meeting_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def end_time(self, meeting_id: str) -> datetime:
        row = self.conn.execute(
            "SELECT end_time FROM meetings WHERE id = ?", (meeting_id,)
        ).fetchone()
        parsed = from_db_time(row[0])
        assert parsed is not None, row[0]
        return parsed

    def upcoming(self) -> dict[str, datetime]:
        rows = self.conn.execute("SELECT id, end_time FROM meetings WHERE status = 'upcoming'")
        return {str(r["id"]): from_db_time(r["end_time"]) for r in rows}  # type: ignore[misc]

    def jobs(self) -> dict[str, str]:
        rows = self.conn.execute(
            "SELECT jobname, schedule FROM cron_job WHERE jobname LIKE 'meeting-status-%' "
            "AND jobname <> ?",
            (RECONCILE_JOB,),
        )
        return {str(r["jobname"]): str(r["schedule"]) for r in rows}

    def snapshot(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        meetings = self.conn.execute(
            "SELECT id, title, end_time, status, updated_at FROM meetings ORDER BY id"
        ).fetchall()
        jobs = self.conn.execute(
            "SELECT jobid, jobname, schedule, command, active FROM cron_job "
            "WHERE jobname LIKE 'meeting-status-%' ORDER BY jobid"
        ).fetchall()
        return [tuple(r) for r in meetings], [tuple(r) for r in jobs]

    # -- jobs -------------------------------------------------------------------------------

    def run_job(self, meeting_id: str) -> int | None:
        """Execute the meeting's cron_job command as the worker does, at the real current time;
        returns what it reports (meetings completed), None when the meeting has no job."""
        row = self.conn.execute(
            "SELECT command FROM cron_job WHERE jobname = ?", (job_name(meeting_id),)
        ).fetchone()
        if row is None:
            return None
        with self.backend.transaction() as conn:
            outcome = commands.execute(conn, str(row[0]), datetime.now(UTC))
        assert outcome.ok, outcome.message
        return outcome.completed

    def set_job_active(self, meeting_id: str, active: bool) -> None:
        self.conn.execute(
            "UPDATE cron_job SET active = ? WHERE jobname = ?", (int(active), job_name(meeting_id))
        )

    def job_active(self, meeting_id: str) -> bool | None:
        row = self.conn.execute(
            "SELECT active FROM cron_job WHERE jobname = ?", (job_name(meeting_id),)
        ).fetchone()
        return None if row is None else bool(row[0])

    def add_orphan_job(self, meeting_id: str, schedule: str = "0 0 1 1 *") -> None:
        self.conn.execute(
            "INSERT INTO cron_job (schedule, command, jobname) "
            "VALUES (?, 'complete_meeting(' || quote(?) || ')', ?)",
            (schedule, meeting_id, job_name(meeting_id)),
        )

    def add_run(self, meeting_id: str | None, status: str, message: str, start: datetime) -> None:
        command = "reconcile()" if meeting_id is None else f"complete_meeting('{meeting_id}')"
        self.conn.execute(
            "INSERT INTO cron_job_run_details (jobid, job_pid, database, username, command, "
            "status, return_message, start_time, end_time) "
            "VALUES (0, 4242, 'main', 'scheduler', ?, ?, ?, ?, ?)",
            (
                command,
                status,
                message,
                start.astimezone(UTC).isoformat(),
                (start + timedelta(seconds=1)).astimezone(UTC).isoformat(),
            ),
        )

    # -- bypassing the triggers --------------------------------------------------------------

    @contextlib.contextmanager
    def without_triggers(self) -> Iterator[None]:
        """Write without firing the triggers: drop them, then re-create them from the schema
        file (sql/sqlite/30_triggers.sql) as a migration would."""
        for trigger in TRIGGERS:
            self.conn.execute(f"DROP TRIGGER {trigger}")
        try:
            yield
        finally:
            self.conn.execute("BEGIN")
            execute_sqlite_script(self.conn, read_sql("sqlite", "30_triggers.sql"))
            self.conn.execute("COMMIT")

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        # Nothing runs concurrently on SQLite unless a worker is started; none is here.
        yield

    def set_paused(self, paused: bool) -> None:
        self.conn.execute("UPDATE scheduler_settings SET enabled = ?", (int(not paused),))


Adapter = PostgresAdapter | SqliteAdapter


def ghost_id() -> str:
    """The id of a meeting that does not exist."""
    return str(uuid.uuid4())
