"""The emulated cron worker of the SQLite backend: pg_cron's job runner, in Python.

Once per minute (aligned to minute boundaries, UTC) it runs every active job in ``cron_job``
whose five-field schedule matches the minute, and records each run in ``cron_job_run_details``
(``running``, then ``succeeded`` or ``failed`` with a return message), like pg_cron. The minute
is claimed in the database first, so two workers on one database never run a minute twice.
A worker that was late by a few minutes runs the jobs of the minutes it missed (pg_cron does the
same for small clock jumps); longer gaps are left to the reconcile job, which runs every minute
and completes overdue meetings.

What a job's command does is :mod:`scheduler_admin.sqlite.commands` (PostgreSQL's part: it runs
the SQL that pg_cron hands it); this module is pg_cron's part: the loop, the minute claimed in
``scheduler_worker``, and the runs recorded in ``cron_job_run_details``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from scheduler_admin import cron
from scheduler_admin.core import RECONCILE_JOB
from scheduler_admin.exceptions import SchedulerError
from scheduler_admin.loop import ThreadedLoop, stop_on_signals
from scheduler_admin.sqlite import commands
from scheduler_admin.sqlite.connection import UTC, Clock, Database, from_db_time, to_db_time

log = logging.getLogger("scheduler_admin.worker")

# pg_cron runs the jobs of skipped minutes after a small clock jump; so does the worker.
CATCH_UP_MINUTES = 5
# A run still "running" this long after it started belongs to a worker that died.
STALE_RUN_AFTER = timedelta(minutes=10)
_ALIGN_SLACK = 0.05  # seconds past the minute boundary, so the tick lands inside the new minute


@dataclass(frozen=True)
class RunResult:
    """One recorded run."""

    run_id: int
    job_id: int
    job_name: str | None
    status: str  # succeeded or failed
    return_message: str


@dataclass
class TickResult:
    """What one tick did."""

    minute: datetime
    minutes: list[datetime] = field(default_factory=list)  # the minutes whose jobs ran
    runs: list[RunResult] = field(default_factory=list)
    skipped: bool = False  # this minute had already been run (by this or another worker)


def floor_minute(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(second=0, microsecond=0)


class CronWorker(ThreadedLoop):
    """Runs the jobs of ``cron_job`` like pg_cron. Use :meth:`tick` directly (tests, ``--once``),
    :meth:`run_forever` in the foreground, :meth:`start_thread` in an application, or
    :meth:`run_async` in an event loop.

    ``database``: a :class:`~scheduler_admin.sqlite.connection.Database` (a ``SqliteBackend`` is
    one), whose clock it runs at unless ``clock`` is given; or the URL or path of the file."""

    thread_name = "scheduler-cron-worker"

    def __init__(
        self,
        database: Database | str | os.PathLike[str],
        clock: Clock | None = None,
        *,
        catch_up_minutes: int = CATCH_UP_MINUTES,
    ) -> None:
        if isinstance(database, Database):
            self.database = database
        else:
            self.database = Database(database, clock=clock)
        self.clock: Clock = clock or self.database.clock
        self.catch_up_minutes = catch_up_minutes
        self.hostname = socket.gethostname()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int:
        """The process that runs the ticks (read at each tick: a worker made before a fork
        records the child's pid), recorded with the heartbeat so that doctor on this host can
        tell a stopped worker at once."""
        return os.getpid()

    def now(self) -> datetime:
        current = self.clock()
        if current.tzinfo is None:
            raise ValueError("the clock must return timezone-aware datetimes")
        return current.astimezone(UTC)

    # -- one tick ---------------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> TickResult:
        """Run the jobs due in the minute of ``now`` (default: the clock) not run yet."""
        now = (now or self.now()).astimezone(UTC)
        minute = floor_minute(now)
        result = TickResult(minute=minute)
        with self.database.transaction() as conn:
            row = conn.execute(
                "SELECT last_minute FROM scheduler_worker WHERE singleton = 1"
            ).fetchone()
            last = None if row is None else from_db_time(row["last_minute"])
            claim = last is None or last < minute
            if claim:
                result.minutes = self._minutes_to_run(last, minute)
            conn.execute(
                """INSERT INTO scheduler_worker
                       (singleton, last_minute, heartbeat_at, pid, hostname)
                   VALUES (1, ?, ?, ?, ?)
                   ON CONFLICT (singleton) DO UPDATE
                      SET last_minute = excluded.last_minute, heartbeat_at = excluded.heartbeat_at,
                          pid = excluded.pid, hostname = excluded.hostname""",
                (
                    to_db_time(minute if claim or last is None else last),
                    to_db_time(now),
                    self.pid,
                    self.hostname,
                ),
            )
            jobs = (
                conn.execute(
                    "SELECT jobid, jobname, schedule, command FROM cron_job WHERE active = 1"
                ).fetchall()
                if claim
                else []
            )
        if not claim:
            result.skipped = True
            return result
        due: list[sqlite3.Row] = []
        for job in jobs:
            try:
                schedule = cron.parse(str(job["schedule"]))
            except cron.CronError as exc:
                log.warning("job %s has an invalid schedule: %s", job["jobname"], exc)
                continue
            if any(schedule.matches(m) for m in result.minutes):
                due.append(job)
        # Meetings' jobs first, then the reconcile job (as pg_cron's order would not matter).
        due.sort(key=lambda job: (job["jobname"] == RECONCILE_JOB, int(job["jobid"])))
        for job in due:
            run = self._run(job, now)
            if run is not None:
                result.runs.append(run)
        return result

    def _minutes_to_run(self, last: datetime | None, minute: datetime) -> list[datetime]:
        if last is None or minute - last > timedelta(minutes=self.catch_up_minutes):
            return [minute]
        minutes: list[datetime] = []
        current = last + timedelta(minutes=1)
        while current <= minute:
            minutes.append(current)
            current += timedelta(minutes=1)
        return minutes

    def _run(self, job: sqlite3.Row, now: datetime) -> RunResult | None:
        """Run one job and record it; None when the job was removed before its turn."""
        jobid, command = int(job["jobid"]), str(job["command"])
        started = time.monotonic()
        with self.database.transaction() as conn:
            current = conn.execute(
                "SELECT username, database FROM cron_job WHERE jobid = ? AND active = 1 "
                "AND command = ?",
                (jobid, command),
            ).fetchone()
            if current is None:
                return None  # unscheduled meanwhile: pg_cron drops the pending run too
            run_id = conn.execute(
                """INSERT INTO cron_job_run_details
                       (jobid, job_pid, database, username, command, status, start_time)
                   VALUES (?, ?, ?, ?, ?, 'running', ?)""",
                (
                    jobid,
                    self.pid,
                    current["database"],
                    current["username"],
                    command,
                    to_db_time(now),
                ),
            ).lastrowid
        assert run_id is not None
        try:
            # A job reporting errors (reconcile with a bad row) keeps what it did.
            with self.database.transaction() as conn:
                outcome = commands.execute(conn, command, now)
            ok, message = outcome.ok, outcome.message
        except (sqlite3.Error, SchedulerError) as exc:
            ok, message = False, f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a job never stops the worker
            log.exception("job %s failed", job["jobname"])
            ok, message = False, f"{type(exc).__name__}: {exc}"
        status = "succeeded" if ok else "failed"
        finished = now + timedelta(seconds=time.monotonic() - started)
        with self.database.transaction() as conn:
            conn.execute(
                """UPDATE cron_job_run_details SET status = ?, return_message = ?, end_time = ?
                    WHERE runid = ?""",
                (status, message, to_db_time(finished), run_id),
            )
        if not ok:
            log.warning("job %s failed: %s", job["jobname"], message)
        return RunResult(run_id, jobid, job["jobname"], status, message)

    def mark_stale_runs(self, now: datetime | None = None) -> int:
        """Fail the runs a dead worker left ``running``; returns how many."""
        now = now or self.now()
        with self.database.transaction() as conn:
            return conn.execute(
                """UPDATE cron_job_run_details
                      SET status = 'failed', end_time = ?,
                          return_message = 'worker stopped before the run finished'
                    WHERE status IN ('starting', 'running')
                      AND julianday(start_time) < julianday(?)""",
                (to_db_time(now), to_db_time(now - STALE_RUN_AFTER)),
            ).rowcount

    # -- loops ------------------------------------------------------------------------------

    def seconds_to_next_minute(self) -> float:
        now = self.now()
        boundary = floor_minute(now) + timedelta(minutes=1)
        return max((boundary - now).total_seconds(), 0.0) + _ALIGN_SLACK

    def _safe_tick(self) -> None:
        try:
            result = self.tick()
        except Exception:
            log.exception("worker tick failed; retrying at the next minute")
            return
        for run in result.runs:
            log.info("%s %s: %s", run.job_name, run.status, run.return_message)

    def run_forever(self, stop_event: threading.Event | None = None) -> None:
        """Tick once per minute until ``stop_event`` is set (or SIGTERM/SIGINT in the
        foreground main thread)."""
        stop = stop_event or self._stop
        with stop_on_signals(stop, "stopping after the current tick"):
            try:
                self.mark_stale_runs()
            except Exception:
                log.exception("could not clean up stale runs")
            while not stop.is_set():
                self._safe_tick()
                stop.wait(self.seconds_to_next_minute())

    async def run_async(self, stop: asyncio.Event) -> None:
        """The same loop in an event loop; ticks run in a thread so the loop never blocks."""
        try:
            await asyncio.to_thread(self.mark_stale_runs)
        except Exception:
            log.exception("could not clean up stale runs")
        while not stop.is_set():
            await asyncio.to_thread(self._safe_tick)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.seconds_to_next_minute())
