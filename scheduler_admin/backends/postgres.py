"""The Backend protocol on PostgreSQL with pg_cron: calls of the SQL functions in ``scheduler``."""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any, cast

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row, tuple_row

from scheduler_admin.backends.base import Check, Job, Paused, ReconcileReport, RecoverReport, Run
from scheduler_admin.backends.checks import health_checks, security_checks
from scheduler_admin.config import URL_HINT, mask_url, psycopg_conninfo
from scheduler_admin.exceptions import (
    ConnectionFailed,
    DatabaseError,
    InvalidInput,
    MeetingNotFound,
    NotMigrated,
    PgCronUnavailable,
    SchedulerError,
)
from scheduler_admin.redact import Redactor

log = logging.getLogger(__name__)
UTC = timezone.utc


def iso(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


def _iso_sql(column: str) -> str:
    """SQL formatting a timestamptz column as ``iso()`` does (microseconds only when non-zero)."""
    utc = f"({column} at time zone 'UTC')"
    return (
        f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') "
        f"|| case when extract(microseconds from {utc})::bigint % 1000000 <> 0 "
        f"then to_char({utc}, '.US') else '' end || '+00:00'"
    )


def parse_meeting_id(meeting_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(meeting_id))
    except ValueError:
        raise InvalidInput(
            f"{meeting_id!r} is not a meeting id", hint="Meeting ids are UUIDs."
        ) from None


def translate(exc: psycopg.Error, target: str) -> SchedulerError:
    """Map a driver error to the domain error it means (the only place that does)."""
    diag = exc.diag
    message = diag.message_primary or str(exc).strip().splitlines()[0]
    hint = diag.message_hint
    if isinstance(exc, pg_errors.NoDataFound) and "no meeting with id" in message:
        return MeetingNotFound(message.removeprefix("no meeting with id ").strip())
    if isinstance(exc, pg_errors.InvalidParameterValue | pg_errors.ObjectNotInPrerequisiteState):
        return InvalidInput(message, hint=hint)
    if isinstance(exc, pg_errors.InvalidSchemaName | pg_errors.UndefinedFunction) and (
        "scheduler" in message
    ):
        return NotMigrated(
            f"{target} is not migrated ({message})",
            hint="Run `scheduler-admin migrate` (or `alembic upgrade head`).",
        )
    if (
        isinstance(exc, pg_errors.UndefinedTable | pg_errors.InvalidSchemaName)
        and "cron" in message
    ):
        return PgCronUnavailable(
            f"pg_cron is not installed in {target} ({message})",
            hint="Run `scheduler-admin doctor` to see what is missing.",
        )
    if isinstance(exc, pg_errors.UndefinedTable) and "meetings" in message:
        return NotMigrated(f"{target} has no meetings table", hint="Run `scheduler-admin migrate`.")
    return DatabaseError(f"{message} (SQLSTATE {exc.sqlstate})", hint=hint)


def connection_error(
    exc: psycopg.OperationalError, target: str, redactor: Redactor | None = None
) -> ConnectionFailed:
    """What went wrong connecting to ``target`` (already masked) and what to do about it.

    libpq's and psycopg's messages quote what they could not use (a host, a port, a database
    name), which may be a piece of a mis-parsed password: the message shown is redacted.
    """
    raw = str(exc).strip()
    lowered = raw.lower()
    text = (redactor or Redactor())(raw)
    first = text.splitlines()[0] if text else "connection failed"
    if "authentication failed" in lowered or "no password supplied" in lowered:
        hint = "Check the user and password in the database URL."
    elif "role" in lowered and "does not exist" in lowered:
        hint = "Check the user name in the database URL."
    elif "does not exist" in lowered:
        hint = "Check the database name in the URL."
    elif "resolve host" in lowered or "translate host name" in lowered:
        hint = (
            "Check the host name in the URL. If the password holds @ or /, percent-encode them "
            "(%40, %2F): unencoded, part of the password is read as the host."
        )
    elif "timeout" in lowered or "timed out" in lowered:
        hint = "The server did not answer: check host, port and firewall."
    else:
        hint = "Check that the server is running and that host and port in the URL are right."
    return ConnectionFailed(f"cannot connect to {target}: {first}", hint=hint)


class PostgresBackend:
    """Admin operations on a PostgreSQL database migrated by this package."""

    name = "postgres"

    def __init__(self, url: str, *, connect_timeout: int = 10) -> None:
        self.conninfo = psycopg_conninfo(url)
        self.target = mask_url(url)
        self.redactor = Redactor()
        self.redactor.add_url(url)
        self.connect_timeout = connect_timeout
        self._conn: psycopg.Connection[dict[str, Any]] | None = None

    def _connect(self) -> psycopg.Connection[dict[str, Any]]:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(
                    self.conninfo,
                    autocommit=True,
                    row_factory=dict_row,
                    connect_timeout=self.connect_timeout,
                    application_name="scheduler-admin",
                )
            except psycopg.OperationalError as exc:
                raise connection_error(exc, self.target, self.redactor) from None
            except UnicodeDecodeError:
                raise ConnectionFailed(
                    f"invalid database URL {self.target}: a percent-encoded part is not UTF-8",
                    hint=URL_HINT,
                ) from None
            except psycopg.ProgrammingError as exc:
                detail = self.redactor(str(exc).strip()).splitlines() or ["libpq cannot parse it"]
                raise ConnectionFailed(
                    f"invalid database URL {self.target}: {detail[0]}", hint=URL_HINT
                ) from None
        return self._conn

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except psycopg.OperationalError as exc:
            if self._conn is not None and self._conn.closed:
                raise connection_error(exc, self.target, self.redactor) from None
            raise translate(exc, self.target) from None
        except psycopg.Error as exc:
            raise translate(exc, self.target) from None

    def _rows(self, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._errors():
            return self._connect().execute(query, params).fetchall()

    def _value(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        rows = self._rows(query, params)
        value = next(iter(rows[0].values()))
        return json.loads(value) if isinstance(value, str) else value

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- operations ---------------------------------------------------------------------------

    def list_jobs(self) -> list[Job]:
        # Ids and times come back as text, times formatted by the server exactly as iso() does:
        # converting 100,000 rows into Python objects and back took longer than the query.
        query = (
            "select meeting_id::text, job_id, job_name, schedule, "
            f"{_iso_sql('next_run')}, {_iso_sql('end_time')}, meeting_status, active "
            "from scheduler.list_jobs()"
        )
        with self._errors():
            rows = self._connect().cursor(row_factory=tuple_row).execute(query).fetchall()
        log.debug("listed %d jobs on %s", len(rows), self.target)
        return [cast(Job, dict(zip(Job.__annotations__, row, strict=True))) for row in rows]

    def recover(self, *, dry_run: bool = False) -> RecoverReport:
        report = cast(RecoverReport, self._value("select scheduler.recover(%s)", (dry_run,)))
        log.info(
            "recover%s on %s: %s", " (dry run)" if dry_run else "", self.target, summary(report)
        )
        return report

    def reconcile(self) -> ReconcileReport | Paused:
        report = cast(ReconcileReport | Paused, self._value("select scheduler.reconcile()"))
        log.info("reconcile on %s: %s", self.target, report)
        return report

    def history(self, *, failed_only: bool = False, limit: int = 50) -> list[Run]:
        if limit < 1:
            raise InvalidInput(f"--limit must be at least 1, got {limit}")
        rows = self._rows("select * from scheduler.history(%s, %s)", (failed_only, limit))
        return [
            Run(
                run_id=int(r["run_id"]),
                job_id=int(r["job_id"]),
                job_name=r["job_name"],
                meeting_id=str(r["meeting_id"]) if r["meeting_id"] else None,
                status=str(r["status"]),
                return_message=r["return_message"],
                start_time=iso(r["start_time"]),
                end_time=iso(r["end_time"]),
            )
            for r in rows
        ]

    def schedule(self, meeting_id: str, end_time: datetime) -> dict[str, Any]:
        if end_time.tzinfo is None:
            raise InvalidInput("the end time needs a time zone", hint="e.g. 2026-12-01T15:30:00Z")
        result: dict[str, Any] = self._value(
            "select scheduler.schedule_meeting(%s, %s)", (parse_meeting_id(meeting_id), end_time)
        )
        log.info("scheduled meeting %s to end at %s", meeting_id, iso(end_time))
        return normalise_times(result)

    def cancel(self, meeting_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._value(
            "select scheduler.cancel_meeting(%s)", (parse_meeting_id(meeting_id),)
        )
        log.info("cancelled meeting %s (%s job removed)", meeting_id, result.get("jobs_removed"))
        return result

    def pause(self) -> dict[str, Any]:
        result: dict[str, Any] = self._value("select scheduler.pause()")
        log.warning("scheduler paused on %s: no job will be registered until resume", self.target)
        return result

    def resume(self) -> RecoverReport:
        report = cast(RecoverReport, self._value("select scheduler.resume()"))
        log.info("scheduler resumed on %s: %s", self.target, summary(report))
        return report

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._value("select scheduler.health()")
        return result

    def doctor(self) -> list[Check]:
        checks: list[Check] = []

        def check(name: str, ok: bool, detail: str, fix: str | None = None) -> bool:
            checks.append(Check(name=name, ok=ok, detail=detail, fix=None if ok else fix))
            return ok

        facts = self._rows(
            "select (select extversion from pg_extension where extname = 'pg_cron') as version, "
            # cron.database_name is readable by superusers and pg_read_all_settings only (absent
            # from pg_settings otherwise, as on Supabase for the postgres role).
            "       (select setting from pg_settings where name = 'cron.database_name') "
            "       as cron_db, "
            "       (select rolsuper from pg_roles where rolname = current_user) "
            "       or pg_has_role(current_user, 'pg_read_all_settings', 'member') as can_read, "
            "       current_database() as db, "
            "       to_regnamespace('scheduler') is not null as migrated, "
            "       to_regclass('public.meetings') is not null as has_meetings"
        )[0]
        # Without the right to read pg_cron's settings (Supabase's postgres role) the first two
        # checks are skipped: pg_cron can only be installed in its own database anyway, and the
        # checks on jobs below show whether they run.
        if facts["can_read"]:
            if not check(
                "pg_cron preloaded",
                facts["cron_db"] is not None,
                "pg_cron is loaded at server start"
                if facts["cron_db"] is not None
                else "pg_cron is not in shared_preload_libraries",
                f"Set shared_preload_libraries = 'pg_cron' and cron.database_name = "
                f"'{facts['db']}' in postgresql.conf, then restart PostgreSQL.",
            ):
                return checks
            if not check(
                "pg_cron runs in this database",
                facts["cron_db"] == facts["db"],
                f"cron.database_name = {facts['cron_db']}",
                f"Set cron.database_name = '{facts['db']}' and restart, or point the scheduler "
                f"at database {facts['cron_db']}.",
            ):
                return checks
        unread = "" if facts["can_read"] else " (this role cannot read pg_cron's settings)"
        if not check(
            "pg_cron installed",
            facts["version"] is not None,
            (f"pg_cron {facts['version']}" if facts["version"] else "extension pg_cron not created")
            + unread,
            "Run `scheduler-admin migrate` (it creates the extension; on Supabase enable pg_cron "
            "under Database > Extensions first).",
        ):
            return checks
        if not check(
            "migrated",
            bool(facts["migrated"] and facts["has_meetings"]),
            "schema scheduler present" if facts["migrated"] else "schema scheduler missing",
            "Run `scheduler-admin migrate`.",
        ):
            return checks
        triggers = self._value(
            "select count(*) from pg_trigger where tgrelid = 'public.meetings'::regclass "
            "and tgname like 'scheduler_meetings_%%' and tgenabled <> 'D'"
        )
        check(
            "triggers on meetings",
            triggers == 4,
            f"{triggers} of 4 triggers present and enabled",
            "Run `scheduler-admin migrate`; if they are disabled, `alter table meetings enable "
            "trigger all`.",
        )
        health = self.health()
        checks += health_checks(health, self.history(failed_only=True, limit=3))
        checks += security_checks(health.get("security"))
        return checks


def normalise_times(result: dict[str, Any]) -> dict[str, Any]:
    """Times in a JSON result from PostgreSQL, as the same ISO-8601 UTC strings as elsewhere."""
    job = result.get("job")
    if isinstance(job, dict):
        for key in ("next_run", "end_time"):
            if job.get(key):
                job[key] = datetime.fromisoformat(job[key]).astimezone(UTC).isoformat()
    return result


def summary(report: RecoverReport) -> str:
    return (
        f"{report['total_meetings']} upcoming, {report['jobs_scheduled']} scheduled, "
        f"{report['jobs_already_exist']} already there, {report['overdue_completed']} overdue "
        f"completed, {report['orphans_removed']} orphans removed, {len(report['errors'])} errors"
    )
