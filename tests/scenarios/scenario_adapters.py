"""One adapter per backend, offering the same operations to the scenario suite, for one timed
transition: meetings (the builtin one) or memberships (a table registered with add_transition).

A scenario writes rows with plain SQL, as any client of the database would, reads what the
triggers did, runs a row's job "now", breaks the state behind the triggers' back, and calls the
admin side through the :class:`~scheduler_admin.backends.base.Backend` protocol. Everything
backend- and table-specific lives here (and in :class:`Transition`); the scenarios are written
once.

PostgreSQL: the reconcile job of pg_cron runs every minute while the tests run. ``held()`` opens a
transaction holding the lock that recover() and reconcile() take, so that the reconcile job
neither sees a broken state built inside it nor changes it. The adapter's direct SQL and the
backend's protocol calls share one session (the backend's connection), so a protocol call made
inside ``held()`` sees that state and takes the lock again (advisory locks are re-entrant).

Supabase shape: the application writes as ``authenticated`` (row-level security: its own rows),
the admin side is the backend of the migration role (the owner of the tables and the jobs), and
writes behind the triggers' back are a superuser's (``session_replication_role`` is a
superuser's setting). The reconcile job is inactive while a scenario runs (see conftest.py), so
``held()`` has nothing to hold off.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
from pg_helpers import run_command
from psycopg.rows import tuple_row

from scheduler_admin.backends.postgres import PostgresBackend
from scheduler_admin.backends.sqlite import SqliteBackend
from scheduler_admin.schema import read_sql
from scheduler_admin.sqlite import commands
from scheduler_admin.sqlite import transitions as sqlite_transitions
from scheduler_admin.sqlite.connection import TRIGGERS, from_db_time
from scheduler_admin.sqlite_script import execute_sqlite_script

UTC = timezone.utc
RECONCILE_JOB = "meeting-status-reconcile"
PG_REPAIR_LOCK = "select pg_advisory_xact_lock(hashtext('scheduler.repair'))"

EndTime = datetime | str | int | None
Key = Any  # a meeting's id as text (a uuid), a membership's id as an int


class Rejected(Exception):
    """The database refused a write (the driver's error, whatever the backend)."""


@dataclass(frozen=True)
class Transition:
    """A timed transition as the scenarios see it: rows of ``table`` whose ``state_column`` is
    ``pending`` get ``done`` at ``time_column`` through one job ``<job_prefix><key>`` each."""

    name: str
    table: str  # unqualified (public on PostgreSQL)
    key_column: str
    key_type: type  # str (a uuid's text) or int
    time_column: str
    state_column: str
    pending: str
    done: str
    other: str  # a third state, which gets no job either
    job_prefix: str
    pg_key_pattern: str  # the regular expression of a key in a job name (not reconcile/sweep)
    # The transition argument of the per-transition operations (recover, reconcile, pause,
    # resume, list_jobs, history). Meetings: None, the calls of today (the whole scheduler, whose
    # only transition is meetings in these scenarios).
    api: str | None
    # A SET clause that changes neither the state nor the time of a row.
    unrelated_update: str
    # The job horizon the scenario runs with (scheduler-admin horizon; conftest.py): None, or
    # one so long that every row of the scenarios is within it (the reports then say how many
    # rows are beyond it: beyond_horizon)
    horizon: str | None = None

    def job_name(self, key: Key) -> str:
        return f"{self.job_prefix}{key}"

    @property
    def scope(self) -> dict[str, Any]:
        """The keyword arguments of a per-transition operation: none for meetings (the calls
        of today), ``transition=NAME`` for another one."""
        return {} if self.api is None else {"transition": self.api}

    def ghost_key(self) -> Key:
        """A key no row has."""
        if self.key_type is int:
            return random.randrange(10**15, 10**16)
        return str(uuid.uuid4())

    def report(
        self,
        total: int,
        scheduled: int,
        exist: int,
        overdue: int,
        orphans: int,
        *,
        dry_run: bool = False,
        beyond: int = 0,
    ) -> dict[str, Any]:
        """What recover() of this transition reports (RecoverReport or TransitionReport); with a
        job horizon, the rows beyond it too."""
        counts: dict[str, Any] = {
            "jobs_scheduled": scheduled,
            "jobs_already_exist": exist,
            "overdue_completed": overdue,
            "orphans_removed": orphans,
            "errors": [],
            "success": True,
            "dry_run": dry_run,
        }
        if self.horizon is not None:
            counts["beyond_horizon"] = beyond
        if self.api is None:
            return {"total_meetings": total, **counts}
        return {"transition": self.api, "total": total, **counts}

    def reconcile_report(
        self, total: int, scheduled: int, exist: int, overdue: int, orphans: int, *, history: int
    ) -> dict[str, Any]:
        """What reconcile() of this transition reports (the sweep's state left out)."""
        result = {
            **self.report(total, scheduled, exist, overdue, orphans),
            "history_deleted": history,
        }
        if self.api is None:
            result["events_deleted"] = 0
        return result

    def paused_report(self) -> dict[str, Any]:
        """What pause() of this transition answers."""
        if self.api is None:
            return {"enabled": False}
        return {"transition": self.api, "paused": True}

    def run_key(self, run: dict[str, Any]) -> Any:
        """The key of the row whose job a run of history() ran (None: reconcile, sweep)."""
        return run["meeting_id"] if self.api is None else run["key"]


MEETINGS = Transition(
    name="meetings",
    table="meetings",
    key_column="id",
    key_type=str,
    time_column="end_time",
    state_column="status",
    pending="upcoming",
    done="done",
    other="cancelled",
    job_prefix="meeting-status-",
    pg_key_pattern="[0-9a-f-]{36}",
    api=None,
    unrelated_update="title = 'renamed'",
)
MEMBERSHIPS = Transition(
    name="memberships",
    table="memberships",
    key_column="id",
    key_type=int,
    time_column="expires_at",
    state_column="status",
    pending="active",
    done="expired",
    other="cancelled",
    job_prefix="memberships-status-",
    pg_key_pattern="[0-9]+",
    api="memberships",
    unrelated_update="status = status, expires_at = expires_at",
)
TRANSITIONS = {t.name: t for t in (MEETINGS, MEMBERSHIPS)}

# The application's memberships table (the brief's shape: a bigint identity key, a nullable
# time that the triggers require of an active row).
PG_MEMBERSHIPS = (
    "create table public.memberships (id bigint primary key generated always as identity, "
    "status text not null default 'active', expires_at timestamptz)"
)
SQLITE_MEMBERSHIPS = (
    "CREATE TABLE memberships (id INTEGER PRIMARY KEY, status TEXT NOT NULL DEFAULT 'active', "
    "expires_at TEXT)"
)


def add_memberships(backend: PostgresBackend | SqliteBackend) -> dict[str, Any]:
    """Register public.memberships (SQLite: memberships) as the transition memberships."""
    return backend.add_transition(
        MEMBERSHIPS.name,
        table=("public." if isinstance(backend, PostgresBackend) else "") + MEMBERSHIPS.table,
        key_column=MEMBERSHIPS.key_column,
        time_column=MEMBERSHIPS.time_column,
        state_column=MEMBERSHIPS.state_column,
        from_states=[MEMBERSHIPS.pending],
        to_state=MEMBERSHIPS.done,
    )


class PostgresAdapter:
    name = "postgres"

    def __init__(self, url: str, transition: Transition) -> None:
        self.t = transition
        self.table = f"public.{transition.table}"
        self.backend = PostgresBackend(url)
        # One session for direct SQL and protocol calls (see the module docstring).
        self.conn: psycopg.Connection[dict[str, Any]] = self.backend.connect()
        # The application's writes (Supabase: another session, as authenticated).
        self.writer: psycopg.Connection[Any] = self.conn
        # pg_cron's writes of run history (Supabase: the migration role may not use its sequence)
        self.history_writer: psycopg.Connection[Any] = self.conn

    def close(self) -> None:
        self.backend.close()

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else next(iter(row.values()))

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            with self.writer.cursor(row_factory=tuple_row) as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall() if cursor.description else [(cursor.rowcount,)]
        except psycopg.Error as exc:
            raise Rejected(str(exc)) from exc

    # -- plain SQL writes, as an application does -------------------------------------------

    def insert(self, end_time: EndTime, status: str | None = None) -> Key:
        return self.insert_rows([(end_time, status)])[0]

    def insert_rows(self, rows: list[tuple[EndTime, str | None]]) -> list[Key]:
        """One multi-row INSERT ... VALUES; a status of None is the pending state."""
        t = self.t
        values = ", ".join("(%s, %s)" for _ in rows)
        params: list[Any] = []
        for end_time, status in rows:
            params += [end_time, t.pending if status is None else status]
        returned = self._write(
            f"insert into {self.table} ({t.time_column}, {t.state_column}) values {values} "
            f"returning {t.key_column}",
            tuple(params),
        )
        return [t.key_type(r[0]) for r in returned]

    def insert_select(self, count: int, first_end: datetime, step_seconds: int) -> int:
        """One INSERT ... SELECT of ``count`` pending rows whose times are step_seconds apart."""
        rows = self._write(
            f"insert into {self.table} ({self.t.time_column}) "
            "select %s::timestamptz + g * make_interval(secs => %s) "
            f"from generate_series(0, %s - 1) g returning {self.t.key_column}",
            (first_end, step_seconds, count),
        )
        return len(rows)

    def set_time(self, key: Key, end_time: EndTime) -> None:
        self._update(key, f"{self.t.time_column} = %s", (end_time,))

    def set_state(self, key: Key, status: str) -> None:
        self._update(key, f"{self.t.state_column} = %s", (status,))

    def unrelated_update(self, key: Key) -> None:
        self._update(key, self.t.unrelated_update, ())

    def _update(self, key: Key, sets: str, params: tuple[Any, ...]) -> None:
        [(count,)] = self._write(
            f"update {self.table} set {sets} where {self.t.key_column} = %s", (*params, key)
        )
        assert count == 1, f"the update of {key} touched {count} rows"

    def delete(self, key: Key) -> None:
        [(count,)] = self._write(f"delete from {self.table} where {self.t.key_column} = %s", (key,))
        assert count == 1, f"the delete of {key} touched {count} rows"

    # -- reading ----------------------------------------------------------------------------

    def status(self, key: Key) -> str | None:
        value = self._one(
            f"select {self.t.state_column} from {self.table} where {self.t.key_column} = %s",
            (key,),
        )
        return None if value is None else str(value)

    def end_time(self, key: Key) -> datetime:
        value = self._one(
            f"select {self.t.time_column} from {self.table} where {self.t.key_column} = %s",
            (key,),
        )
        assert isinstance(value, datetime)
        return value

    def pending(self) -> dict[Key, datetime]:
        t = self.t
        rows = self.conn.execute(
            f"select {t.key_column} as key, {t.time_column} as time from {self.table} "
            f"where {t.state_column} = %s",
            (t.pending,),
        ).fetchall()
        return {t.key_type(r["key"]): r["time"] for r in rows}

    def jobs(self) -> dict[str, str]:
        """The jobs of the transition's rows (reconcile and sweep excluded): name -> schedule."""
        rows = self.conn.execute(
            "select jobname, schedule from cron.job where jobname ~ %s",
            (f"^{self.t.job_prefix}{self.t.pg_key_pattern}$",),
        ).fetchall()
        return {str(r["jobname"]): str(r["schedule"]) for r in rows}

    def snapshot(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        rows = self.conn.execute(
            f"select * from {self.table} order by {self.t.key_column}"
        ).fetchall()
        jobs = self.conn.execute(
            "select jobid, jobname, schedule, command, active from cron.job "
            "where starts_with(jobname, %s) order by jobid",
            (self.t.job_prefix,),
        ).fetchall()
        return [tuple(r.values()) for r in rows], [tuple(r.values()) for r in jobs]

    # -- jobs -------------------------------------------------------------------------------

    def job_command(self, key: Key) -> str:
        """The command of a row's job, as the triggers build it."""
        if self.t.api is None:
            return str(self._one("select scheduler.job_command(%s)", (key,)))
        return str(
            self._one(
                "select command from scheduler.transition_job_specs(%s, %s, %s, %s)",
                (self.t.name, self.t.job_prefix, [str(key)], [datetime.now(UTC)]),
            )
        )

    def run_job(self, key: Key) -> int | None:
        """Execute the command stored in the row's cron.job row, as pg_cron would now; returns
        what it reports (rows completed), None when the row has no job."""
        command = self._one(
            "select command from cron.job where jobname = %s", (self.t.job_name(key),)
        )
        if command is None:
            return None
        return int(run_command(self.conn, str(command)))

    def set_job_active(self, key: Key, active: bool) -> None:
        self.conn.execute(
            "update cron.job set active = %s where jobname = %s", (active, self.t.job_name(key))
        )

    def job_active(self, key: Key) -> bool | None:
        value = self._one("select active from cron.job where jobname = %s", (self.t.job_name(key),))
        return None if value is None else bool(value)

    def add_orphan_job(self, key: Key, schedule: str = "0 0 1 1 *") -> None:
        """A job of ours, registered as the triggers would, whatever the row's state."""
        self._one(
            "select cron.schedule(%s, %s, %s)",
            (self.t.job_name(key), schedule, self.job_command(key)),
        )

    def add_run(self, key: Key | None, status: str, message: str, start: datetime) -> None:
        """A row of job history, as pg_cron writes it (the reconcile job's for key None)."""
        command = (
            "set statement_timeout = '2min'; select scheduler.reconcile()"
            if key is None
            else self.job_command(key)
        )
        user = self._one("select current_user")
        self.history_writer.execute(
            "insert into cron.job_run_details (jobid, job_pid, database, username, command, "
            "status, return_message, start_time, end_time) values (0, 4242, current_database(), "
            "%s, %s, %s, %s, %s, %s + interval '1 second')",
            (user, command, status, message, start, start),
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

    def savepoint(self) -> contextlib.AbstractContextManager[Any]:
        """Around a backend call expected to fail inside held(): the backend shares this
        connection, so its error would abort the held transaction; a savepoint keeps it."""
        return self.conn.transaction()


class SupabaseAdapter(PostgresAdapter):
    """The Supabase shape: the backend (and the reads) as the migration role, the application's
    writes as ``authenticated`` with a user of its own, the writes behind the triggers' back as
    a superuser (see the module docstring)."""

    name = "supabase"

    def __init__(
        self, url: str, transition: Transition, authenticated: psycopg.Connection[Any],
        superuser: psycopg.Connection[Any],
    ) -> None:  # fmt: skip
        super().__init__(url, transition)
        self.app = authenticated
        self.superuser = superuser
        self.writer = authenticated
        self.history_writer = superuser

    @contextlib.contextmanager
    def without_triggers(self) -> Iterator[None]:
        self.superuser.execute("set session_replication_role = replica")
        self.writer = self.superuser
        try:
            yield
        finally:
            self.writer = self.app
            self.superuser.execute("set session_replication_role = origin")

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        yield  # the reconcile job is inactive (conftest.py)


class SqliteAdapter:
    name = "sqlite"

    def savepoint(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()  # the backend has connections of its own

    def __init__(self, path: Path, transition: Transition) -> None:
        self.t = transition
        self.table = transition.table
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

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        try:
            return self.conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise Rejected(str(exc)) from exc

    # -- plain SQL writes, as an application does -------------------------------------------

    def insert(self, end_time: EndTime, status: str | None = None) -> Key:
        return self.insert_rows([(end_time, status)])[0]

    def insert_rows(self, rows: list[tuple[EndTime, str | None]]) -> list[Key]:
        t = self.t
        values = ", ".join("(?, ?)" for _ in rows)
        params: list[Any] = []
        for end_time, status in rows:
            params += [self._value(end_time), t.pending if status is None else status]
        try:
            returned = self.conn.execute(
                f"INSERT INTO {self.table} ({t.time_column}, {t.state_column}) VALUES {values} "
                f"RETURNING {t.key_column}",
                tuple(params),
            ).fetchall()
        except sqlite3.Error as exc:
            raise Rejected(str(exc)) from exc
        return [t.key_type(r[0]) for r in returned]

    def insert_select(self, count: int, first_end: datetime, step_seconds: int) -> int:
        before = self.conn.execute(f"SELECT count(*) FROM {self.table}").fetchone()[0]
        self._write(
            f"""INSERT INTO {self.table} ({self.t.time_column})
               WITH RECURSIVE g(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM g WHERE n < ? - 1)
               SELECT strftime('%Y-%m-%dT%H:%M:%S+00:00', ?, '+' || (n * ?) || ' seconds')
                 FROM g""",
            (count, first_end.astimezone(UTC).isoformat(), step_seconds),
        )
        return int(self.conn.execute(f"SELECT count(*) FROM {self.table}").fetchone()[0] - before)

    def set_time(self, key: Key, end_time: EndTime) -> None:
        self._update(key, f"{self.t.time_column} = ?", (self._value(end_time),))

    def set_state(self, key: Key, status: str) -> None:
        self._update(key, f"{self.t.state_column} = ?", (status,))

    def unrelated_update(self, key: Key) -> None:
        self._update(key, self.t.unrelated_update, ())

    def _update(self, key: Key, sets: str, params: tuple[Any, ...]) -> None:
        count = self._write(
            f"UPDATE {self.table} SET {sets} WHERE {self.t.key_column} = ?", (*params, key)
        ).rowcount
        assert count == 1, f"the update of {key} touched {count} rows"

    def delete(self, key: Key) -> None:
        count = self._write(
            f"DELETE FROM {self.table} WHERE {self.t.key_column} = ?", (key,)
        ).rowcount
        assert count == 1, f"the delete of {key} touched {count} rows"

    # -- reading ----------------------------------------------------------------------------

    def status(self, key: Key) -> str | None:
        row = self.conn.execute(
            f"SELECT {self.t.state_column} FROM {self.table} WHERE {self.t.key_column} = ?",
            (key,),
        ).fetchone()
        return None if row is None else str(row[0])

    def end_time(self, key: Key) -> datetime:
        row = self.conn.execute(
            f"SELECT {self.t.time_column} FROM {self.table} WHERE {self.t.key_column} = ?",
            (key,),
        ).fetchone()
        parsed = from_db_time(row[0])
        assert parsed is not None, row[0]
        return parsed

    def pending(self) -> dict[Key, datetime]:
        t = self.t
        rows = self.conn.execute(
            f"SELECT {t.key_column}, {t.time_column} FROM {self.table} WHERE {t.state_column} = ?",
            (t.pending,),
        )
        return {t.key_type(r[0]): from_db_time(r[1]) for r in rows}

    def jobs(self) -> dict[str, str]:
        """The jobs of the transition's rows (reconcile and sweep excluded): name -> schedule."""
        rows = self.conn.execute(
            "SELECT jobname, schedule FROM cron_job "
            "WHERE substr(jobname, 1, length(?)) = ? AND jobname <> ?",
            (self.t.job_prefix, self.t.job_prefix, RECONCILE_JOB),
        )
        return {str(r["jobname"]): str(r["schedule"]) for r in rows}

    def snapshot(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        rows = self.conn.execute(
            f"SELECT * FROM {self.table} ORDER BY {self.t.key_column}"
        ).fetchall()
        jobs = self.conn.execute(
            "SELECT jobid, jobname, schedule, command, active FROM cron_job "
            "WHERE substr(jobname, 1, length(?)) = ? ORDER BY jobid",
            (self.t.job_prefix, self.t.job_prefix),
        ).fetchall()
        return [tuple(r) for r in rows], [tuple(r) for r in jobs]

    # -- jobs -------------------------------------------------------------------------------

    def job_command(self, key: Key) -> str:
        if self.t.api is None:
            return f"complete_meeting({sqlite_transitions.quote_text(str(key))})"
        return sqlite_transitions.transition_command(self.t.name, str(key))

    def run_job(self, key: Key) -> int | None:
        """Execute the row's cron_job command as the worker does, at the real current time;
        returns what it reports (rows completed), None when the row has no job."""
        row = self.conn.execute(
            "SELECT command FROM cron_job WHERE jobname = ?", (self.t.job_name(key),)
        ).fetchone()
        if row is None:
            return None
        with self.backend.transaction() as conn:
            outcome = commands.execute(conn, str(row[0]), datetime.now(UTC))
        assert outcome.ok, outcome.message
        return outcome.completed

    def set_job_active(self, key: Key, active: bool) -> None:
        self.conn.execute(
            "UPDATE cron_job SET active = ? WHERE jobname = ?", (int(active), self.t.job_name(key))
        )

    def job_active(self, key: Key) -> bool | None:
        row = self.conn.execute(
            "SELECT active FROM cron_job WHERE jobname = ?", (self.t.job_name(key),)
        ).fetchone()
        return None if row is None else bool(row[0])

    def add_orphan_job(self, key: Key, schedule: str = "0 0 1 1 *") -> None:
        self.conn.execute(
            "INSERT INTO cron_job (schedule, command, jobname) VALUES (?, ?, ?)",
            (schedule, self.job_command(key), self.t.job_name(key)),
        )

    def add_run(self, key: Key | None, status: str, message: str, start: datetime) -> None:
        command = "reconcile()" if key is None else self.job_command(key)
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
        """Write without firing the triggers: drop them, then re-create them as a migration
        (meetings: sql/sqlite/30_triggers.sql) or the registration (another transition:
        generated from the registry) would."""
        if self.t.api is None:
            for trigger in TRIGGERS:
                self.conn.execute(f"DROP TRIGGER {trigger}")
            try:
                yield
            finally:
                self.conn.execute("BEGIN")
                execute_sqlite_script(self.conn, read_sql("sqlite", "30_triggers.sql"))
                self.conn.execute("COMMIT")
            return
        [spec] = [
            s for s in sqlite_transitions.other_transitions(self.conn) if s.name == self.t.name
        ]
        sqlite_transitions.drop_transition_triggers(self.conn, spec)
        try:
            yield
        finally:
            assert sqlite_transitions.create_transition_triggers(self.conn, spec) == 5

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        # Nothing runs concurrently on SQLite unless a worker is started; none is here.
        yield


Adapter = PostgresAdapter | SqliteAdapter


def job_name(meeting_id: object) -> str:
    """A meeting's job name (the meetings-only scenarios)."""
    return MEETINGS.job_name(meeting_id)


def ghost_id() -> str:
    """The id of a meeting that does not exist."""
    return str(MEETINGS.ghost_key())
