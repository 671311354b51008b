"""The SQLite development backend.

The schema (``sql/sqlite``) keeps one row in ``cron_job`` per upcoming meeting through plain
SQLite triggers; :mod:`scheduler_admin.worker` runs the due jobs like pg_cron. This class is the
admin side: it reads and repairs that state, with the same semantics and result shapes as the
PostgreSQL backend (:mod:`scheduler_admin.backends.base`).

Every connection uses WAL mode and a busy timeout, and every write runs in a short
``BEGIN IMMEDIATE`` transaction, so that application writes while the worker runs wait for the
lock instead of failing with "database is locked".
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from scheduler_admin import cron
from scheduler_admin.backends.base import Check, Job, Paused, ReconcileReport, RecoverReport, Run
from scheduler_admin.exceptions import DatabaseError, InvalidInput, MeetingNotFound, NotMigrated

log = logging.getLogger(__name__)
UTC = timezone.utc
Clock = Callable[[], datetime]

JOB_PREFIX = "meeting-status-"
RECONCILE_JOB = "meeting-status-reconcile"
RECONCILE_SCHEDULE = "* * * * *"
RECONCILE_COMMAND = "reconcile()"
TRIGGERS = (
    "scheduler_meetings_before_insert",
    "scheduler_meetings_before_update",
    "scheduler_meetings_after_insert",
    "scheduler_meetings_after_update",
    "scheduler_meetings_after_delete",
)
_REQUIRED = {
    "meetings": "table",
    "cron_job": "table",
    "cron_job_run_details": "table",
    "scheduler_settings": "table",
    "scheduler_worker": "table",
    "scheduler_meeting_jobs": "view",
}
# A meeting's job fires at the start of the minute after its end time: health and doctor allow
# this much delay before an upcoming meeting past its end time counts as a problem.
OVERDUE_GRACE = timedelta(minutes=2)
# The worker records a heartbeat every minute; older than this means it is not running.
WORKER_STALE_AFTER = timedelta(minutes=3)
_OURS_SQL = "substr({col}, 1, 15) = 'meeting-status-'"
_OUR_COMMANDS_SQL = "(substr({col}, 1, 17) = 'complete_meeting(' OR {col} = 'reconcile()')"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def to_db_time(when: datetime) -> str:
    """A datetime as the schema stores it: ``YYYY-MM-DDTHH:MM:SS[.fff]+00:00`` (UTC, ms)."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidInput(
            f"time {when.isoformat()} has no time zone", hint="Give an offset, e.g. +00:00."
        )
    utc = when.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond // 1000:
        text += f".{utc.microsecond // 1000:03d}"
    return text + "+00:00"


def from_db_time(text: object) -> datetime | None:
    """Parse a stored time (ISO-8601; no offset means UTC). None when it cannot be parsed."""
    if not isinstance(text, str) or not text:
        return None
    candidate = text.strip().replace(" ", "T", 1)
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def iso(when: datetime | None) -> str | None:
    """ISO-8601 in UTC, as the result shapes use it."""
    return None if when is None else when.astimezone(UTC).isoformat()


def iso_text(text: object) -> str | None:
    """A stored time as ISO-8601 UTC (the raw text if it cannot be parsed)."""
    parsed = from_db_time(text)
    if parsed is None:
        return None if text is None else str(text)
    return iso(parsed)


def job_name(meeting_id: str) -> str:
    return JOB_PREFIX + meeting_id


def meeting_id_of(name: str | None) -> str | None:
    """The meeting id in a job name of ours; None for the reconcile job and other names."""
    if name is None or not name.startswith(JOB_PREFIX) or name == RECONCILE_JOB:
        return None
    return name[len(JOB_PREFIX) :]


def job_name_of_command(command: str | None) -> str | None:
    """The job name a command belongs to (for runs whose job was removed since)."""
    if command == RECONCILE_COMMAND:
        return RECONCILE_JOB
    meeting_id = parse_complete_command(command)
    return None if meeting_id is None else job_name(meeting_id)


def parse_complete_command(command: str | None) -> str | None:
    """The meeting id of a ``complete_meeting('<id>')`` command, else None."""
    if not command or not command.startswith("complete_meeting('") or not command.endswith("')"):
        return None
    literal = command[len("complete_meeting('") : -2]
    # An SQL literal: quotes inside are doubled (quote() in the view).
    if "'" in literal.replace("''", ""):
        return None
    return literal.replace("''", "'")


def database_path(url_or_path: str | os.PathLike[str]) -> str:
    """The file path of a ``sqlite://`` URL or a plain path (``:memory:`` for memory)."""
    text = os.fspath(url_or_path)
    if "://" not in text:
        return text or ":memory:"
    parts = urlsplit(text)
    if not parts.scheme.lower().startswith("sqlite"):
        raise InvalidInput(
            f"not a SQLite URL: {parts.scheme}://…", hint="Use sqlite:///path/to/file.db."
        )
    # sqlite:///relative.db -> path "/relative.db"; sqlite:////abs.db -> "//abs.db".
    path = unquote(parts.path)
    if path.startswith("/"):
        path = path[1:]
    return path or ":memory:"


@dataclass
class _Plan:
    """What recovery would do, computed in one read of the database."""

    total: int = 0
    overdue: list[str] = field(default_factory=list)  # meeting ids
    overdue_beyond_grace: int = 0
    to_schedule: list[str] = field(default_factory=list)  # meeting ids (missing or wrong job)
    missing: int = 0  # no job at all
    existing: int = 0
    orphans: list[tuple[int, str]] = field(default_factory=list)  # (jobid, jobname)
    errors: list[dict[str, str]] = field(default_factory=list)


class SqliteBackend:
    """The Backend protocol on a SQLite file (see :mod:`scheduler_admin.backends.base`)."""

    name = "sqlite"

    def __init__(
        self,
        url_or_path: str | os.PathLike[str],
        clock: Clock | None = None,
        *,
        busy_timeout: float = 10.0,
    ) -> None:
        self.path = database_path(url_or_path)
        self.clock: Clock = clock or utcnow
        self.busy_timeout = busy_timeout
        self._memory: sqlite3.Connection | None = None
        self._memory_lock = threading.RLock()
        self._wal_done = False

    # -- connections ------------------------------------------------------------------------

    @property
    def is_memory(self) -> bool:
        return self.path == ":memory:" or "mode=memory" in self.path

    def now(self) -> datetime:
        """The backend's clock, as aware UTC."""
        current = self.clock()
        if current.tzinfo is None:
            raise ValueError("the clock must return timezone-aware datetimes")
        return current.astimezone(UTC)

    def _open(self) -> sqlite3.Connection:
        if not Path(self.path).exists():
            raise NotMigrated(
                f"SQLite database {self.path} does not exist: run `scheduler-admin migrate` "
                "(or `alembic upgrade head`) first"
            )
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        except sqlite3.Error:
            conn.close()
            raise
        if not self._wal_done:
            # Persistent in the file; needs a moment without other writers. Best effort: the
            # next connection tries again.
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                self._wal_done = str(mode).lower() == "wal"
            except sqlite3.OperationalError as exc:
                log.warning("could not switch %s to WAL mode yet: %s", self.path, exc)
        conn.row_factory = sqlite3.Row
        return conn

    @contextlib.contextmanager
    def connection(self, *, check_schema: bool = True) -> Iterator[sqlite3.Connection]:
        """A connection in autocommit mode (file: a new one, closed afterwards)."""
        try:
            if self.is_memory:
                with self._memory_lock:
                    if self._memory is None:
                        self._memory = sqlite3.connect(
                            self.path, isolation_level=None, check_same_thread=False
                        )
                        self._memory.row_factory = sqlite3.Row
                    if check_schema:
                        self._check_schema(self._memory)
                    yield self._memory
                return
            conn = self._open()
            try:
                if check_schema:
                    self._check_schema(conn)
                yield conn
            finally:
                conn.close()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc) or "no such view" in str(exc):
                raise NotMigrated(
                    f"SQLite database {self.path} is not migrated ({exc}): run "
                    "`scheduler-admin migrate`"
                ) from exc
            raise DatabaseError(f"SQLite error on {self.path}: {exc}") from exc
        except sqlite3.Error as exc:
            raise DatabaseError(f"SQLite error on {self.path}: {exc}") from exc

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """A transaction: ``BEGIN IMMEDIATE`` for writes (waits for the lock), else ``BEGIN``."""
        with self.connection() as conn:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        missing = self._missing_objects(conn)
        if missing:
            raise NotMigrated(
                f"SQLite database {self.path} is not migrated (missing {', '.join(missing)}): "
                "run `scheduler-admin migrate`"
            )

    @staticmethod
    def _missing_objects(conn: sqlite3.Connection) -> list[str]:
        present = {
            (row[0], row[1])
            for row in conn.execute(
                "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view')"
            )
        }
        return [name for name, kind in _REQUIRED.items() if (name, kind) not in present]

    def close(self) -> None:
        """Close the in-memory connection, if any (file connections are per operation)."""
        with self._memory_lock:
            if self._memory is not None:
                self._memory.close()
                self._memory = None

    # -- reading ----------------------------------------------------------------------------

    @staticmethod
    def enabled(conn: sqlite3.Connection) -> bool:
        row = conn.execute("SELECT enabled FROM scheduler_settings WHERE singleton = 1").fetchone()
        return True if row is None else bool(row[0])

    @staticmethod
    def retention_days(conn: sqlite3.Connection) -> int:
        row = conn.execute(
            "SELECT history_retention_days FROM scheduler_settings WHERE singleton = 1"
        ).fetchone()
        return 7 if row is None else int(row[0])

    @staticmethod
    def _job_from_row(row: sqlite3.Row, now: datetime) -> Job:
        name = str(row["jobname"])
        active = bool(row["active"])
        next_run: str | None = None
        if active:
            try:
                next_run = iso(cron.next_run(str(row["schedule"]), now))
            except cron.CronError:
                next_run = None
        return Job(
            meeting_id=meeting_id_of(name),
            job_id=int(row["jobid"]),
            job_name=name,
            schedule=str(row["schedule"]),
            next_run=next_run,
            end_time=iso_text(row["end_time"]),
            meeting_status=None if row["status"] is None else str(row["status"]),
            active=active,
        )

    _JOBS_SQL = f"""
        SELECT j.jobid, j.jobname, j.schedule, j.command, j.active, m.status, m.end_time
          FROM cron_job j
          LEFT JOIN meetings m
            ON j.jobname <> '{RECONCILE_JOB}' AND m.id = substr(j.jobname, 16)
         WHERE {_OURS_SQL.format(col="j.jobname")}
    """

    def list_jobs(self) -> list[Job]:
        """Every job of ours (the reconcile job included), by next run then name."""
        now = self.now()
        with self.transaction(write=False) as conn:
            rows = conn.execute(self._JOBS_SQL).fetchall()
        jobs = [self._job_from_row(row, now) for row in rows]
        far = "9999"
        jobs.sort(
            key=lambda job: (job["next_run"] is None, job["next_run"] or far, job["job_name"])
        )
        return jobs

    def job(
        self, conn: sqlite3.Connection, meeting_id: str, now: datetime | None = None
    ) -> Job | None:
        """The job of one meeting, if it has one."""
        row = conn.execute(
            self._JOBS_SQL + " AND j.jobname = ?", (job_name(meeting_id),)
        ).fetchone()
        return None if row is None else self._job_from_row(row, now or self.now())

    def _plan(self, conn: sqlite3.Connection, now: datetime) -> _Plan:
        """Compare upcoming meetings with our jobs (no write)."""
        plan = _Plan()
        meetings = conn.execute(
            """SELECT v.meeting_id, v.end_time, v.schedule, v.command,
                      strftime('%Y-%m-%dT%H:%M:%f', v.end_time) AS end_utc
                 FROM scheduler_meeting_jobs v
                WHERE v.status = 'upcoming'"""
        ).fetchall()
        jobs = {
            str(row["jobname"]): row
            for row in conn.execute(
                f"""SELECT jobid, jobname, schedule, command, active FROM cron_job
                     WHERE {_OURS_SQL.format(col="jobname")} AND jobname <> '{RECONCILE_JOB}'"""
            )
        }
        keep: set[str] = set()
        plan.total = len(meetings)
        for row in meetings:
            meeting_id = str(row["meeting_id"])
            name = job_name(meeting_id)
            keep.add(name)  # an overdue meeting's job goes with it, not as an orphan
            end = None if row["end_utc"] is None else from_db_time(str(row["end_utc"]))
            if end is None or row["schedule"] is None:
                plan.errors.append(
                    {
                        "meeting_id": meeting_id,
                        "error": f"end_time {row['end_time']!r} is not an ISO-8601 time "
                        "(expected e.g. 2026-12-01T15:30:00+00:00)",
                    }
                )
                continue
            if end <= now:
                plan.overdue.append(meeting_id)
                if end < now - OVERDUE_GRACE:
                    plan.overdue_beyond_grace += 1
                continue
            job = jobs.get(name)
            if (
                job is not None
                and job["schedule"] == row["schedule"]
                and job["command"] == row["command"]
            ):
                plan.existing += 1
            else:
                plan.missing += job is None
                plan.to_schedule.append(meeting_id)
        plan.orphans = [
            (int(job["jobid"]), name) for name, job in sorted(jobs.items()) if name not in keep
        ]
        return plan

    # -- recovery ---------------------------------------------------------------------------

    @staticmethod
    def register_job(conn: sqlite3.Connection, meeting_id: str) -> None:
        """(Re)register the job of one meeting from ``scheduler_meeting_jobs`` (keeps its id)."""
        conn.execute(
            """INSERT INTO cron_job (schedule, command, jobname)
               SELECT schedule, command, jobname FROM scheduler_meeting_jobs
                WHERE meeting_id = ? AND status = 'upcoming'
               ON CONFLICT (jobname) DO UPDATE
                  SET schedule = excluded.schedule, command = excluded.command""",
            (meeting_id,),
        )

    def recover_in(
        self, conn: sqlite3.Connection, now: datetime, *, dry_run: bool
    ) -> RecoverReport:
        """Recovery inside an open transaction on ``conn`` (each item in its own savepoint)."""
        plan = self._plan(conn, now)
        errors = list(plan.errors)
        if dry_run:
            return RecoverReport(
                total_meetings=plan.total,
                jobs_scheduled=len(plan.to_schedule),
                jobs_already_exist=plan.existing,
                overdue_completed=len(plan.overdue),
                orphans_removed=len(plan.orphans),
                errors=errors,
                success=not errors,
                dry_run=True,
            )
        counts = {"overdue": 0, "scheduled": 0, "orphans": 0}

        def attempt(kind: str, meeting_id: str | None, action: Callable[[], int]) -> None:
            conn.execute("SAVEPOINT scheduler_recover_item")
            try:
                counts[kind] += action()
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK TO scheduler_recover_item")
                errors.append({"meeting_id": meeting_id or "", "error": str(exc)})
            conn.execute("RELEASE scheduler_recover_item")

        for meeting_id in plan.overdue:

            def complete(meeting_id: str = meeting_id) -> int:
                done = conn.execute(
                    "UPDATE meetings SET status = 'done' WHERE id = ? AND status = 'upcoming'",
                    (meeting_id,),
                ).rowcount
                conn.execute("DELETE FROM cron_job WHERE jobname = ?", (job_name(meeting_id),))
                return done

            attempt("overdue", meeting_id, complete)
        for meeting_id in plan.to_schedule:

            def schedule(meeting_id: str = meeting_id) -> int:
                self.register_job(conn, meeting_id)
                return 1

            attempt("scheduled", meeting_id, schedule)
        for jobid, name in plan.orphans:

            def remove(jobid: int = jobid) -> int:
                return conn.execute("DELETE FROM cron_job WHERE jobid = ?", (jobid,)).rowcount

            attempt("orphans", meeting_id_of(name), remove)
        return RecoverReport(
            total_meetings=plan.total,
            jobs_scheduled=counts["scheduled"],
            jobs_already_exist=plan.existing,
            overdue_completed=counts["overdue"],
            orphans_removed=counts["orphans"],
            errors=errors,
            success=not errors,
            dry_run=False,
        )

    def recover(self, *, dry_run: bool = False) -> RecoverReport:
        """Complete overdue meetings, register missing or wrong jobs, remove orphan jobs.

        Refused while the scheduler is paused (it would register jobs), except as a dry run:
        resume() enables and recovers.
        """
        now = self.now()
        with self.transaction(write=not dry_run) as conn:
            if not dry_run and not self.enabled(conn):
                raise InvalidInput(
                    "the scheduler is paused: recovery would register jobs",
                    hint="Run `scheduler-admin resume`, which also recovers.",
                )
            return self.recover_in(conn, now, dry_run=dry_run)

    def delete_old_runs(self, conn: sqlite3.Connection, now: datetime) -> int:
        """Delete our run-details rows older than the retention; returns how many."""
        cutoff = now - timedelta(days=self.retention_days(conn))
        return conn.execute(
            f"""DELETE FROM cron_job_run_details
                 WHERE julianday(end_time) < julianday(?)
                   AND {_OUR_COMMANDS_SQL.format(col="command")}""",
            (to_db_time(cutoff),),
        ).rowcount

    def reconcile_in(self, conn: sqlite3.Connection, now: datetime) -> tuple[RecoverReport, int]:
        """What the reconcile job does, inside an open transaction: recover, then prune runs."""
        report = self.recover_in(conn, now, dry_run=False)
        return report, self.delete_old_runs(conn, now)

    def reconcile(self) -> ReconcileReport | Paused:
        """Recover, then delete our run history older than the retention.

        Returns what ``scheduler.reconcile()`` returns on PostgreSQL: the recover report plus
        ``history_deleted`` (run rows deleted); while paused it changes nothing and returns
        exactly ``{"paused": True}``, like the reconcile job.
        """
        now = self.now()
        with self.transaction() as conn:
            if not self.enabled(conn):
                return Paused(paused=True)
            report, deleted = self.reconcile_in(conn, now)
        return ReconcileReport(**report, history_deleted=deleted)

    # -- history ----------------------------------------------------------------------------

    def history(self, *, failed_only: bool = False, limit: int = 50) -> list[Run]:
        """Runs of our jobs, newest first. ``failed``/``job canceled`` is reported as canceled."""
        if limit < 1:
            raise InvalidInput(f"limit must be at least 1, not {limit}")
        where = _OUR_COMMANDS_SQL.format(col="r.command")
        if failed_only:
            where += " AND r.status = 'failed' AND r.return_message IS NOT 'job canceled'"
        with self.transaction(write=False) as conn:
            rows = conn.execute(
                f"""SELECT r.runid, r.jobid, j.jobname, r.command, r.status, r.return_message,
                           r.start_time, r.end_time
                      FROM cron_job_run_details r
                      LEFT JOIN cron_job j ON j.jobid = r.jobid
                     WHERE {where}
                     ORDER BY r.start_time IS NULL DESC, julianday(r.start_time) DESC, r.runid DESC
                     LIMIT ?""",
                (limit,),
            ).fetchall()
        runs: list[Run] = []
        for row in rows:
            # The command names the job (as on PostgreSQL); the job itself may be gone.
            name = job_name_of_command(row["command"]) or row["jobname"]
            status = str(row["status"])
            if status == "failed" and row["return_message"] == "job canceled":
                status = "canceled"
            runs.append(
                Run(
                    run_id=int(row["runid"]),
                    job_id=0 if row["jobid"] is None else int(row["jobid"]),
                    job_name=name,
                    meeting_id=meeting_id_of(name),
                    status=status,
                    return_message=row["return_message"],
                    start_time=iso_text(row["start_time"]),
                    end_time=iso_text(row["end_time"]),
                )
            )
        return runs

    @staticmethod
    def failed_runs_since(conn: sqlite3.Connection, since: datetime) -> int:
        row = conn.execute(
            f"""SELECT count(*) FROM cron_job_run_details
                 WHERE status = 'failed' AND return_message IS NOT 'job canceled'
                   AND julianday(start_time) >= julianday(?)
                   AND {_OUR_COMMANDS_SQL.format(col="command")}""",
            (to_db_time(since),),
        ).fetchone()
        return int(row[0])

    @staticmethod
    def reconcile_job_ok(conn: sqlite3.Connection) -> tuple[bool, str]:
        row = conn.execute(
            "SELECT jobid, schedule, command, active FROM cron_job WHERE jobname = ?",
            (RECONCILE_JOB,),
        ).fetchone()
        if row is None:
            return False, f"the job {RECONCILE_JOB} does not exist"
        if (row["schedule"], row["command"], bool(row["active"])) != (
            RECONCILE_SCHEDULE,
            RECONCILE_COMMAND,
            True,
        ):
            return False, (
                f"the job {RECONCILE_JOB} is {row['schedule']!r} {row['command']!r}"
                f"{'' if row['active'] else ' (inactive)'}, expected "
                f"{RECONCILE_SCHEDULE!r} {RECONCILE_COMMAND!r}"
            )
        return True, f"job {row['jobid']} runs {RECONCILE_COMMAND} every minute"

    # -- doctor and health ------------------------------------------------------------------

    def _facts(self, conn: sqlite3.Connection, now: datetime) -> tuple[dict[str, Any], _Plan]:
        plan = self._plan(conn, now)
        jobs = conn.execute(
            f"""SELECT count(*) FROM cron_job
                 WHERE {_OURS_SQL.format(col="jobname")} AND jobname <> '{RECONCILE_JOB}'"""
        ).fetchone()[0]
        enabled = self.enabled(conn)
        failed = self.failed_runs_since(conn, now - timedelta(hours=24))
        reconcile_ok, _ = self.reconcile_job_ok(conn)
        health: dict[str, Any] = {
            "backend": "sqlite",
            "enabled": enabled,
            "upcoming_meetings": plan.total,
            "jobs": int(jobs),
            "missing_jobs": plan.missing,
            "orphan_jobs": len(plan.orphans),
            "overdue_meetings": plan.overdue_beyond_grace,
            "failed_runs_24h": failed,
            "reconcile_job": reconcile_ok,
            "ok": enabled
            and plan.missing == 0
            and not plan.orphans
            and plan.overdue_beyond_grace == 0
            and failed == 0
            and reconcile_ok,
        }
        return health, plan

    def health(self) -> dict[str, Any]:
        """Counts for monitoring, as the PostgreSQL backend reports them.

        ``overdue_meetings`` counts upcoming meetings that ended more than two minutes ago (a job
        fires at the start of the minute after the end time); ``missing_jobs`` counts upcoming
        meetings in the future without a job.
        """
        now = self.now()
        with self.transaction(write=False) as conn:
            health, _ = self._facts(conn, now)
        return health

    def doctor(self) -> list[Check]:
        """Checks with a fix for each failing one; an unmigrated database is a failing check."""
        checks: list[Check] = []

        def check(name: str, ok: bool, detail: str, fix: str) -> bool:
            checks.append(Check(name=name, ok=ok, detail=detail, fix=None if ok else fix))
            return ok

        migrate_fix = "Run `scheduler-admin migrate` (or `alembic upgrade head`)."
        try:
            with self.connection(check_schema=False) as conn:
                missing = self._missing_objects(conn)
        except NotMigrated as exc:
            check("migrated", False, exc.message, migrate_fix)
            return checks
        if not check(
            "migrated",
            not missing,
            f"{self.path}: scheduler tables present"
            if not missing
            else f"{self.path} is not migrated: missing {', '.join(missing)}",
            migrate_fix,
        ):
            return checks
        now = self.now()
        with self.transaction(write=False) as conn:
            present = {
                str(row[0])
                for row in conn.execute(
                    "SELECT name FROM sqlite_master "
                    "WHERE type = 'trigger' AND tbl_name = 'meetings'"
                )
            }
            health, plan = self._facts(conn, now)
            _, reconcile_detail = self.reconcile_job_ok(conn)
            worker = conn.execute(
                "SELECT heartbeat_at, pid, hostname FROM scheduler_worker WHERE singleton = 1"
            ).fetchone()
        missing_triggers = [name for name in TRIGGERS if name not in present]
        check(
            "triggers on meetings",
            not missing_triggers,
            f"{len(TRIGGERS) - len(missing_triggers)} of {len(TRIGGERS)} triggers present"
            + (f" (missing: {', '.join(missing_triggers)})" if missing_triggers else ""),
            f"Re-apply them: sqlite3 {self.path} < sql/sqlite/30_triggers.sql, then run "
            "`scheduler-admin recover`.",
        )
        check(
            "scheduler enabled",
            bool(health["enabled"]),
            "enabled" if health["enabled"] else "paused",
            "Run `scheduler-admin resume`.",
        )
        check(
            "reconcile job",
            bool(health["reconcile_job"]),
            reconcile_detail,
            f"Re-create it: sqlite3 {self.path} < sql/sqlite/60_jobs.sql.",
        )
        wrong = len(plan.to_schedule) - plan.missing
        detail = f"{plan.total} upcoming, {plan.missing} without a job, {wrong} with a wrong job"
        if plan.errors:
            detail += f", {len(plan.errors)} with an unreadable end_time"
        check(
            "every upcoming meeting has a job",
            not plan.to_schedule and not plan.errors,
            detail,
            "Run `scheduler-admin recover` (and fix the end_time of the meetings it reports).",
        )
        check(
            "no orphan jobs",
            health["orphan_jobs"] == 0,
            f"{health['orphan_jobs']} jobs without an upcoming meeting",
            "Run `scheduler-admin recover`.",
        )
        check(
            "no overdue meetings",
            health["overdue_meetings"] == 0,
            f"{health['overdue_meetings']} upcoming meetings ended over 2 minutes ago",
            "Start the worker (`scheduler-admin worker`), or run `scheduler-admin recover`.",
        )
        check(
            "no failed runs in 24 h",
            health["failed_runs_24h"] == 0,
            f"{health['failed_runs_24h']} failed runs",
            "See `scheduler-admin history --failed`.",
        )
        heartbeat = None if worker is None else from_db_time(worker["heartbeat_at"])
        check(
            "worker running",
            heartbeat is not None and now - heartbeat <= WORKER_STALE_AFTER,
            "the worker has never run on this database"
            if heartbeat is None
            else f"last heartbeat {iso(heartbeat)} (pid {worker['pid']} on {worker['hostname']})",
            "Run `scheduler-admin worker` (or start CronWorker in the application): on SQLite "
            "nothing else runs the jobs.",
        )
        return checks

    # -- commands ---------------------------------------------------------------------------

    def schedule(self, meeting_id: str, end_time: datetime) -> dict[str, Any]:
        """Move an upcoming meeting's end time; the triggers (re)register or complete it."""
        if end_time.tzinfo is None or end_time.utcoffset() is None:
            raise InvalidInput(
                f"end time {end_time.isoformat()} has no time zone",
                hint="Give an offset, e.g. 2026-12-01T15:30:00+00:00.",
            )
        # Full precision: the triggers store milliseconds and round a finer fraction up, so
        # that the job never fires before the end time.
        stored = end_time.astimezone(UTC).isoformat()
        with self.transaction() as conn:
            row = conn.execute("SELECT status FROM meetings WHERE id = ?", (meeting_id,)).fetchone()
            if row is None:
                raise MeetingNotFound(meeting_id)
            if row["status"] != "upcoming":
                raise InvalidInput(
                    f"meeting {meeting_id} is {row['status']}: only an upcoming meeting can be "
                    "scheduled"
                )
            try:
                conn.execute("UPDATE meetings SET end_time = ? WHERE id = ?", (stored, meeting_id))
            except sqlite3.IntegrityError as exc:
                raise InvalidInput(str(exc)) from exc
            status = str(
                conn.execute("SELECT status FROM meetings WHERE id = ?", (meeting_id,)).fetchone()[
                    0
                ]
            )
            if status == "upcoming" and self.enabled(conn):
                # The triggers did it unless the job was missing already; make sure.
                self.register_job(conn, meeting_id)
            job = self.job(conn, meeting_id)
        return {"meeting_id": meeting_id, "status": status, "job": job}

    def cancel(self, meeting_id: str) -> dict[str, Any]:
        """Cancel an upcoming meeting (its job goes with it); a stray job is removed too."""
        name = job_name(meeting_id)
        with self.transaction() as conn:
            row = conn.execute("SELECT status FROM meetings WHERE id = ?", (meeting_id,)).fetchone()
            if row is None:
                raise MeetingNotFound(meeting_id)
            count = "SELECT count(*) FROM cron_job WHERE jobname = ?"
            before = int(conn.execute(count, (name,)).fetchone()[0])
            if row["status"] == "upcoming":
                conn.execute("UPDATE meetings SET status = 'cancelled' WHERE id = ?", (meeting_id,))
            conn.execute("DELETE FROM cron_job WHERE jobname = ?", (name,))
            after = int(conn.execute(count, (name,)).fetchone()[0])
            status = str(
                conn.execute("SELECT status FROM meetings WHERE id = ?", (meeting_id,)).fetchone()[
                    0
                ]
            )
        return {"meeting_id": meeting_id, "status": status, "jobs_removed": before - after}

    def _set_enabled(self, enabled: bool) -> None:
        with self.transaction() as conn:
            conn.execute(
                """INSERT INTO scheduler_settings (singleton, enabled, updated_at) VALUES (1, ?, ?)
                   ON CONFLICT (singleton) DO UPDATE
                      SET enabled = excluded.enabled, updated_at = excluded.updated_at""",
                (int(enabled), to_db_time(self.now())),
            )

    def pause(self) -> dict[str, Any]:
        """Triggers register no job and jobs change nothing until resume()."""
        self._set_enabled(False)
        return {"enabled": False}

    def resume(self) -> RecoverReport:
        """Enable the scheduler, then recover what happened while it was paused."""
        self._set_enabled(True)
        return self.recover()
