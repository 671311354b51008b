"""The Python twin of ``sql/postgres/41_scheduling.sql``: schedule or cancel one meeting; pause
and resume the scheduler or one transition.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Any

from scheduler_admin.core import (
    Recovered,
    require_aware,
)
from scheduler_admin.exceptions import InvalidInput, MeetingNotFound
from scheduler_admin.sqlite import transitions
from scheduler_admin.sqlite.connection import (
    UTC,
    to_db_time,
)
from scheduler_admin.sqlite.functions import (
    is_enabled,
    job_name,
    pending_status,
    register_jobs,
    statuses,
    transition_active,
    unregister_jobs,
)
from scheduler_admin.sqlite.history import meeting_job
from scheduler_admin.sqlite.recovery import recover


def _status(conn: sqlite3.Connection, meeting: str) -> str | None:
    row = conn.execute("SELECT status FROM meetings WHERE id = ?", (meeting,)).fetchone()
    return None if row is None else str(row[0])


def schedule_meeting(
    conn: sqlite3.Connection, meeting: str, end_time: datetime, now: datetime
) -> dict[str, Any]:
    """Twin of scheduler.schedule_meeting() in sql/postgres/41_scheduling.sql."""
    # Milliseconds, what the schema stores, a finer fraction rounded up so that the job never
    # fires before the end time. (The triggers round a finer fraction up too, but a fraction of
    # .9995 s or more lost its second there: SQLite's %S truncates where %f rounds.)
    utc = require_aware(end_time).astimezone(UTC)
    if utc.microsecond % 1000:
        utc += timedelta(microseconds=1000 - utc.microsecond % 1000)
    stored = to_db_time(utc)
    pending = pending_status(conn)
    status = _status(conn, meeting)
    if status is None:
        raise MeetingNotFound(meeting)
    if status != pending:
        raise InvalidInput(
            f"meeting {meeting} is {status}, not {pending}: nothing to schedule",
            hint=f"Set its status back to {pending} first.",
        )
    try:
        conn.execute("UPDATE meetings SET end_time = ? WHERE id = ?", (stored, meeting))
    except sqlite3.IntegrityError as exc:
        raise InvalidInput(str(exc)) from exc
    status = _status(conn, meeting)
    if status == pending and transition_active(conn):
        # The triggers did it unless the job was missing already; make sure.
        register_jobs(conn, [meeting])
    return {"meeting_id": meeting, "status": status, "job": meeting_job(conn, meeting, now)}


def cancel_meeting(conn: sqlite3.Connection, meeting: str) -> dict[str, Any]:
    """Twin of scheduler.cancel_meeting() in sql/postgres/41_scheduling.sql: an upcoming meeting
    gets the cancelled status and loses its job; a meeting in another status is refused, naming
    it, and nothing changes."""
    status = _status(conn, meeting)
    if status is None:
        raise MeetingNotFound(meeting)
    words = statuses(conn)
    if status != words.pending:
        raise InvalidInput(
            f"meeting {meeting} is {status or 'without a status'}, not {words.pending}: "
            "nothing to cancel",
            hint=f"Only a meeting in status {words.pending} can be cancelled. A job left over "
            "for another one goes with the next reconcile (scheduler-admin reconcile).",
        )
    count = "SELECT count(*) FROM cron_job WHERE jobname = ?"
    before = int(conn.execute(count, (job_name(meeting),)).fetchone()[0])
    conn.execute("UPDATE meetings SET status = ? WHERE id = ?", (words.cancelled, meeting))
    unregister_jobs(conn, [meeting])
    after = int(conn.execute(count, (job_name(meeting),)).fetchone()[0])
    return {"meeting_id": meeting, "status": _status(conn, meeting), "jobs_removed": before - after}


def _set_enabled(conn: sqlite3.Connection, enabled: bool, now: datetime) -> None:
    conn.execute(
        """INSERT INTO scheduler_settings (singleton, enabled, updated_at) VALUES (1, ?, ?)
           ON CONFLICT (singleton) DO UPDATE
              SET enabled = excluded.enabled, updated_at = excluded.updated_at""",
        (int(enabled), to_db_time(now)),
    )


def _set_paused(conn: sqlite3.Connection, transition: str | None, paused: bool) -> None:
    """Set the paused flag of one transition (or of every one, None)."""
    conn.execute(
        "UPDATE scheduler_transitions SET paused = :paused "
        "WHERE (:name IS NULL OR name = :name) AND paused <> :paused",
        {"paused": int(paused), "name": transition},
    )


def pause(conn: sqlite3.Connection, now: datetime, transition: str | None = None) -> dict[str, Any]:
    """Twin of scheduler.pause() in sql/postgres/41_scheduling.sql: the scheduler as a whole (None),
    or one transition by name (its flag: its triggers register no job, its jobs change
    nothing, recover refuses it, reconcile and the waker skip it)."""
    if transition is None:
        _set_enabled(conn, False, now)
        return {"enabled": False}
    transitions.transition_target(conn, transition)
    _set_paused(conn, transition, True)
    return {"transition": transition, "paused": True}


def resume(conn: sqlite3.Connection, now: datetime, transition: str | None = None) -> Recovered:
    """Twin of scheduler.resume() in sql/postgres/41_scheduling.sql: enable the scheduler, clear
    every transition's paused flag and recover all (None); or clear one transition's flag and
    recover it (refused, nothing changed, while the scheduler is paused as a whole)."""
    if transition is None:
        _set_enabled(conn, True, now)
        _set_paused(conn, None, False)
        return recover(conn, now)
    transitions.transition_target(conn, transition)
    if not is_enabled(conn):
        raise InvalidInput(
            f"the scheduler is paused as a whole: resuming transition {transition} alone would "
            "not make it act",
            hint="Run scheduler-admin resume (every transition resumes with it).",
        )
    _set_paused(conn, transition, False)
    return recover(conn, now, transition=transition)
