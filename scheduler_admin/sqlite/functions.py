"""The Python twin of ``sql/postgres/20_functions.sql``: job names, registration, completion.

On SQLite the one definition of a job's name, schedule and command is the view
``scheduler_meeting_jobs`` (the twin of ``scheduler.job_specs()``) and the jobs every upcoming
meeting should have are the view ``scheduler_upcoming_jobs`` (``scheduler.upcoming_jobs()``),
both in ``sql/sqlite/20_views.sql``; the functions here read them. The job-name rules themselves
live in :mod:`scheduler_admin.backends.base`, re-exported here. Every function takes an open
connection and runs inside the caller's transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from scheduler_admin.backends.base import JOB_PREFIX, RECONCILE_JOB, job_name, meeting_id
from scheduler_admin.sqlite.connection import to_db_time

__all__ = [
    "JOB_PREFIX",
    "RECONCILE_COMMAND",
    "RECONCILE_JOB",
    "RECONCILE_SCHEDULE",
    "Completion",
    "complete_due_meetings",
    "complete_meeting",
    "is_enabled",
    "job_command",
    "job_name",
    "job_name_of_command",
    "meeting_id",
    "parse_complete_command",
    "reconcile_command",
    "register_jobs",
    "unregister_jobs",
    "upcoming_jobs",
]

RECONCILE_SCHEDULE = "* * * * *"
RECONCILE_COMMAND = "reconcile()"
_COMPLETE_PREFIX = "complete_meeting('"


def job_command(meeting_id: str) -> str:
    """Twin of scheduler.job_command() in sql/postgres/20_functions.sql."""
    return _COMPLETE_PREFIX + meeting_id.replace("'", "''") + "')"


def parse_complete_command(command: str | None) -> str | None:
    """The meeting id in a ``complete_meeting('<id>')`` command (see job_command), else None."""
    if not command or not command.startswith(_COMPLETE_PREFIX) or not command.endswith("')"):
        return None
    literal = command[len(_COMPLETE_PREFIX) : -2]
    # An SQL literal: quotes inside are doubled (quote() in the view).
    if "'" in literal.replace("''", ""):
        return None
    return literal.replace("''", "'")


def job_name_of_command(command: str | None) -> str | None:
    """The job name a command belongs to (for runs whose job was removed since)."""
    if command == RECONCILE_COMMAND:
        return RECONCILE_JOB
    meeting = parse_complete_command(command)
    return None if meeting is None else job_name(meeting)


def reconcile_command() -> str:
    """Twin of scheduler.reconcile_command() in sql/postgres/20_functions.sql."""
    return RECONCILE_COMMAND


def upcoming_jobs(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Twin of scheduler.upcoming_jobs() in sql/postgres/20_functions.sql (the view)."""
    return conn.execute("SELECT * FROM scheduler_upcoming_jobs ORDER BY meeting_id").fetchall()


def is_enabled(conn: sqlite3.Connection) -> bool:
    """Twin of scheduler.is_enabled() in sql/postgres/20_functions.sql."""
    row = conn.execute("SELECT enabled FROM scheduler_settings WHERE singleton = 1").fetchone()
    return True if row is None else bool(row[0])


def _ids(meeting_ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(meeting_ids))


def register_jobs(conn: sqlite3.Connection, meeting_ids: Iterable[str]) -> int:
    """Twin of scheduler.register_jobs() in sql/postgres/20_functions.sql.

    (Re)registers the jobs of upcoming meetings from ``scheduler_meeting_jobs``, keeping the id
    and the active flag of an existing job; returns how many jobs were created or changed.
    """
    count = 0
    for meeting in _ids(meeting_ids):
        count += conn.execute(
            """INSERT INTO cron_job (schedule, command, jobname)
               SELECT schedule, command, jobname FROM scheduler_meeting_jobs
                WHERE meeting_id = ? AND status = 'upcoming'
               ON CONFLICT (jobname) DO UPDATE
                  SET schedule = excluded.schedule, command = excluded.command
                WHERE cron_job.schedule IS NOT excluded.schedule
                   OR cron_job.command IS NOT excluded.command""",
            (meeting,),
        ).rowcount
    return count


def unregister_jobs(conn: sqlite3.Connection, meeting_ids: Iterable[str]) -> int:
    """Twin of scheduler.unregister_jobs() in sql/postgres/20_functions.sql; returns how many."""
    count = 0
    for meeting in _ids(meeting_ids):
        count += conn.execute(
            "DELETE FROM cron_job WHERE jobname = ?", (job_name(meeting),)
        ).rowcount
    return count


def complete_due_meetings(conn: sqlite3.Connection, now: datetime) -> int:
    """Twin of scheduler.complete_due_meetings() in sql/postgres/20_functions.sql.

    Marks done every upcoming meeting whose end time is at or before ``now``; the update trigger
    removes their jobs.
    """
    return conn.execute(
        """UPDATE meetings SET status = 'done'
            WHERE status = 'upcoming' AND julianday(end_time) <= julianday(?)""",
        (to_db_time(now),),
    ).rowcount


class Completion(NamedTuple):
    """What :func:`complete_meeting` did."""

    completed: int  # meetings marked done (every due one, not only the job's)
    this_one: bool  # the job's own meeting was among them
    status: str | None  # the job's meeting's status afterwards (None: no such meeting)
    job_removed: bool  # the job's meeting was not upcoming: its job was removed


def complete_meeting(conn: sqlite3.Connection, meeting_id: str, now: datetime) -> Completion:
    """Twin of scheduler.complete_meeting() in sql/postgres/20_functions.sql.

    Completes every upcoming meeting whose end time has passed (so that the jobs of a busy
    minute finish together), leaves a meeting that is not due alone, and removes the job of a
    meeting that is gone or no longer upcoming. Paused: changes nothing.
    """

    def status() -> str | None:
        row = conn.execute("SELECT status FROM meetings WHERE id = ?", (meeting_id,)).fetchone()
        return None if row is None else str(row[0])

    before = status()
    if not is_enabled(conn):
        return Completion(0, False, before, False)
    completed = complete_due_meetings(conn, now)
    after = status()
    removed = after != "upcoming" and unregister_jobs(conn, [meeting_id]) > 0
    return Completion(completed, before == "upcoming" and after == "done", after, removed)
