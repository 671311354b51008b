"""The Python twin of ``sql/postgres/20_functions.sql``: job names, registration, completion.

On SQLite the one definition of a job's name, schedule and command is the view
``scheduler_meeting_jobs`` (the twin of ``scheduler.job_specs()``) and the jobs every upcoming
meeting should have are the view ``scheduler_upcoming_jobs`` (``scheduler.upcoming_jobs()``),
both in ``sql/sqlite/20_views.sql``; the functions here read them. The job-name rules themselves
live in :mod:`scheduler_admin.core`, re-exported here. Every function takes an open
connection and runs inside the caller's transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import NamedTuple

from scheduler_admin.core import BUILTIN, JOB_PREFIX, PATHS, RECONCILE_JOB, job_name, meeting_id
from scheduler_admin.exceptions import InvalidInput, NotMigrated
from scheduler_admin.sqlite import safety
from scheduler_admin.sqlite.connection import (
    RECONCILE_COMMAND,
    from_db_time,
    iso,
    iso_text,
    to_db_time,
    to_event_time,
)

__all__ = [
    "JOB_PREFIX",
    "RECONCILE_COMMAND",
    "RECONCILE_JOB",
    "RECONCILE_SCHEDULE",
    "Completion",
    "Statuses",
    "command_job",
    "complete_due",
    "complete_due_meetings",
    "complete_meeting",
    "forget_meetings",
    "has_column",
    "is_enabled",
    "job_command",
    "job_name",
    "meeting_id",
    "next_end_time",
    "parse_complete_command",
    "paused_by_name",
    "register_jobs",
    "statuses",
    "transition_active",
    "unregister_jobs",
]

RECONCILE_SCHEDULE = "* * * * *"
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


def reconcile_command() -> str:
    """Twin of scheduler.reconcile_command() in sql/postgres/20_functions.sql: the command of the
    reconcile job."""
    return RECONCILE_COMMAND


def command_job(command: str | None) -> str | None:
    """The job name a command belongs to (for runs whose job was removed since)."""
    if command == reconcile_command():
        return RECONCILE_JOB
    meeting = parse_complete_command(command)
    return None if meeting is None else job_name(meeting)


class Statuses(NamedTuple):
    """The words of ``meetings.status`` the scheduler acts on (the row of scheduler_statuses)."""

    pending: str  # gets a job, becomes done at its end time (default upcoming)
    done: str  # what a pending meeting becomes at its end time (default done)
    cancelled: str  # what cancel_meeting sets (default cancelled)


def statuses(conn: sqlite3.Connection) -> Statuses:
    """Twin of scheduler.pending_status() and scheduler.done_status() in
    sql/postgres/20_functions.sql (and of the cancelled word of scheduler.settings): the one row
    of ``scheduler_statuses`` (sql/sqlite/10_schema.sql). A meeting with any other status is left
    alone."""
    row = conn.execute(
        "SELECT pending_status, done_status, cancelled_status FROM scheduler_statuses "
        "WHERE singleton = 1"
    ).fetchone()
    if row is None:
        # the triggers and views then treat no meeting as pending; say so rather than guess
        raise NotMigrated(
            "scheduler_statuses has no row: the words of meetings.status are unknown",
            hint="Re-create it: sqlite3 <database> < sql/sqlite/10_schema.sql (the defaults), "
            "then set the words again if the table uses its own.",
        )
    return Statuses(str(row[0]), str(row[1]), str(row[2]))


def pending_status(conn: sqlite3.Connection) -> str:
    """Twin of scheduler.pending_status() in sql/postgres/20_functions.sql: the status that gets a
    job (default upcoming)."""
    return statuses(conn).pending


def has_column(conn: sqlite3.Connection, table: str, column: str) -> bool:
    """Whether ``table`` has ``column`` (PRAGMA table_info), e.g. meetings.updated_at."""
    row = conn.execute(
        "SELECT 1 FROM pragma_table_info(?) WHERE name = ?", (table, column)
    ).fetchone()
    return row is not None


def is_enabled(conn: sqlite3.Connection) -> bool:
    """Twin of scheduler.is_enabled() in sql/postgres/20_functions.sql."""
    row = conn.execute("SELECT enabled FROM scheduler_settings WHERE singleton = 1").fetchone()
    return True if row is None else bool(row[0])


def paused_by_name(conn: sqlite3.Connection, name: str) -> bool:
    """Whether the transition ``name`` is paused by name (its ``paused`` flag in
    scheduler_transitions, revision 0006; False for a name not registered)."""
    row = conn.execute(
        "SELECT paused FROM scheduler_transitions WHERE name = ?", (name,)
    ).fetchone()
    return row is not None and bool(row[0])


def transition_active(conn: sqlite3.Connection, name: str = BUILTIN) -> bool:
    """Twin of scheduler.transition_active() (scheduler.is_enabled() for meetings): the
    scheduler as a whole is enabled and the transition is not paused by name. While not
    active, its triggers register no job, its jobs change nothing, recover refuses it and
    reconcile and the waker skip it."""
    return is_enabled(conn) and not paused_by_name(conn, name)


def _ids(meeting_ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(meeting_ids))


def register_jobs(conn: sqlite3.Connection, meeting_ids: Iterable[str]) -> int:
    """Twin of scheduler.register_jobs() in sql/postgres/20_functions.sql.

    (Re)registers the jobs of pending meetings from ``scheduler_meeting_jobs``, keeping the id
    and the active flag of an existing job; returns how many jobs were created or changed.
    """
    count = 0
    pending = pending_status(conn)
    for meeting in _ids(meeting_ids):
        # beyond the job horizon (revision 0011): no job, and the one it had goes
        if _beyond_horizon(conn, meeting):
            conn.execute("DELETE FROM cron_job WHERE jobname = ?", (job_name(meeting),))
            continue
        count += conn.execute(
            """INSERT INTO cron_job (schedule, command, jobname)
               SELECT schedule, command, jobname FROM scheduler_meeting_jobs
                WHERE meeting_id = ? AND status = ?
               ON CONFLICT (jobname) DO UPDATE
                  SET schedule = excluded.schedule, command = excluded.command
                WHERE cron_job.schedule IS NOT excluded.schedule
                   OR cron_job.command IS NOT excluded.command""",
            (meeting, pending),
        ).rowcount
    return count


def horizon_of(conn: sqlite3.Connection, name: str) -> timedelta | None:
    """The job horizon of the transition ``name``: its own, else the default ('*'), else None
    (revision 0011; scheduler_admin.sqlite.horizon.job_horizon)."""
    row = conn.execute(
        "SELECT horizon_seconds FROM scheduler_horizons WHERE transition IN (?, '*') "
        "ORDER BY transition = '*' LIMIT 1",
        (name,),
    ).fetchone()
    return None if row is None else timedelta(seconds=int(row[0]))


def _beyond_horizon(conn: sqlite3.Connection, meeting: str) -> bool:
    """Whether the meeting's end time is beyond the meetings' job horizon (the condition of the
    triggers, sql/sqlite/30_triggers.sql, on SQLite's clock)."""
    row = conn.execute(
        """SELECT COALESCE(julianday(m.end_time) > (
                      SELECT julianday('now') + h.horizon_seconds / 86400.0
                        FROM scheduler_horizons h WHERE h.transition IN ('meetings', '*')
                       ORDER BY h.transition = '*' LIMIT 1), 0)
             FROM meetings m WHERE m.id = ?""",
        (meeting,),
    ).fetchone()
    return bool(row and row[0])


def unregister_jobs(conn: sqlite3.Connection, meeting_ids: Iterable[str]) -> int:
    """Twin of scheduler.unregister_jobs() in sql/postgres/20_functions.sql; returns how many."""
    return unschedule_jobs(conn, [job_name(meeting) for meeting in _ids(meeting_ids)])


def unschedule_jobs(conn: sqlite3.Connection, job_names: Iterable[str]) -> int:
    """Twin of scheduler.unschedule_jobs() in sql/postgres/20_functions.sql: remove the jobs of
    these names (those that exist); returns how many."""
    count = 0
    for name in dict.fromkeys(job_names):
        count += conn.execute("DELETE FROM cron_job WHERE jobname = ?", (name,)).rowcount
    return count


def complete_due(
    conn: sqlite3.Connection,
    now: datetime,
    meeting_ids: Iterable[str] | None = None,
    *,
    path: str,
) -> int:
    """Twin of scheduler.complete_due() in sql/postgres/20_functions.sql.

    Marks done the pending meetings whose end time is at or before ``now`` (all of them, or
    those of ``meeting_ids``), and sets their ``updated_at`` to ``now`` when the table has that
    column (applications sync on it); the update trigger removes their jobs. Each completed
    meeting gets its completion event of ``path`` (``job``, ``waker``, ``reconcile``,
    ``recover``) at ``now``, in the same transaction (:func:`record_completions`).

    One set UPDATE; a meeting whose completion is rejected (a constraint or a trigger of the
    application's) never holds up the others: it is recorded as failing and left out until its
    retry time (:func:`scheduler_admin.sqlite.safety.complete_rows`).
    """
    words = statuses(conn)
    stamp = ", updated_at = :now" if has_column(conn, "meetings", "updated_at") else ""
    pending = "meetings.status = :pending"
    due = f"{pending} AND julianday(meetings.end_time) <= julianday(:now)"
    params = {"done": words.done, "pending": words.pending, "now": to_db_time(now)}
    if meeting_ids is not None:
        ids = _ids(meeting_ids)
        if not ids:
            return 0
        due += " AND meetings.id IN (SELECT value FROM json_each(:ids))"
        params["ids"] = json.dumps(ids)

    def complete(where: str, values: dict[str, str]) -> int:
        # the events first: afterwards the rows no longer match the condition
        record_completions(conn, now, path=path, where=where, params=values)
        update = f"UPDATE meetings SET status = :done{stamp} WHERE {where}"
        return conn.execute(update, values).rowcount

    return safety.complete_rows(
        conn,
        now,
        transition=BUILTIN,
        table="meetings",
        key="meetings.id",
        pending=pending,
        where=due,
        params=params,
        complete=complete,
    )


# What a new event's delivery is: pending while webhooks are on, else NULL (also in the triggers).
DELIVERY_SQL = """(SELECT CASE WHEN w.enabled = 1 THEN 'pending' END
                      FROM scheduler_webhooks w WHERE w.singleton = 1)"""


def record_completions(
    conn: sqlite3.Connection,
    now: datetime,
    *,
    path: str,
    where: str,
    params: Mapping[str, object],
) -> int:
    """One event per meeting matching ``where`` (the condition of the completing UPDATE, run
    right after it in the same transaction), completed at ``now`` by ``path``; how many.

    ``where`` is SQL on ``meetings`` written by the caller (never row data), ``params`` its
    named parameters. The twin of the recording of completion events by the completing
    functions of sql/postgres/20_functions.sql (scheduler.complete_due() and its callers).
    """
    if path not in PATHS:
        raise InvalidInput(f"unknown completion path {path!r}: expected one of {', '.join(PATHS)}")
    sql = f"""INSERT INTO scheduler_completion_events
                     (meeting_id, end_time, completed_at, path, delivery, next_attempt_at,
                      transition, key)
              SELECT id, strftime('%Y-%m-%dT%H:%M:%f', end_time) || '000+00:00',
                     :event_completed_at, :event_path, {DELIVERY_SQL}, :event_completed_at,
                     'meetings', id
                FROM meetings
               WHERE {where}"""
    stamp = to_event_time(now)
    values = {**params, "event_completed_at": stamp, "event_path": path}
    return conn.execute(sql, values).rowcount


def record_row_completions(
    conn: sqlite3.Connection,
    now: datetime,
    *,
    path: str,
    transition: str,
    table: str,
    key: str,
    time: str,
    where: str,
    params: Mapping[str, object],
) -> int:
    """One event per row of another transition's ``table`` matching ``where`` (the condition of
    its completing UPDATE, run right before it), completed at ``now`` by ``path``; how many.

    ``table``, ``key`` and ``time`` are the quoted identifiers of the transition's table and
    its key and time columns, ``where`` SQL on that table, all written by
    ``sqlite/transitions.py`` from the validated registry (never row data). The event's
    meeting_id is null, its key the row's key as text, its end_time the row's time (UTC, to
    the millisecond SQLite reads).
    """
    if path not in PATHS:
        raise InvalidInput(f"unknown completion path {path!r}: expected one of {', '.join(PATHS)}")
    sql = f"""INSERT INTO scheduler_completion_events
                     (meeting_id, end_time, completed_at, path, delivery, next_attempt_at,
                      transition, key)
              SELECT NULL, strftime('%Y-%m-%dT%H:%M:%f', {time}) || '000+00:00',
                     :event_completed_at, :event_path, {DELIVERY_SQL}, :event_completed_at,
                     :event_transition, CAST({key} AS TEXT)
                FROM {table}
               WHERE {where}"""
    values = {
        **params,
        "event_completed_at": to_event_time(now),
        "event_path": path,
        "event_transition": transition,
    }
    return conn.execute(sql, values).rowcount


def forget_meetings(conn: sqlite3.Connection) -> int:
    """Forget the failing entries of meetings that are gone or no longer pending (reconcile)."""
    return safety.clear_failing_rows(
        conn,
        BUILTIN,
        table="meetings",
        key="meetings.id",
        pending="meetings.status = :pending",
        params={"pending": pending_status(conn)},
    )


def complete_due_meetings(conn: sqlite3.Connection, now: datetime, *, path: str) -> int:
    """Twin of scheduler.complete_due_meetings() in sql/postgres/20_functions.sql.

    Marks done every pending meeting whose end time is at or before ``now`` (see
    :func:`complete_due`), recording events of ``path``.
    """
    return complete_due(conn, now, path=path)


class Completion(NamedTuple):
    """What :func:`complete_meeting` did (and ``sqlite/transitions.py`` ``complete_transition``:
    rows and their state for meetings and their status)."""

    completed: int  # meetings marked done (every due one, not only the job's)
    this_one: bool  # the job's own meeting was among them
    status: str | None  # the job's meeting's status afterwards (None: no such meeting)
    job_removed: bool  # the job's meeting was not pending: its job was removed
    pending: bool  # the job's meeting is still pending (not due yet, or failing)
    # the job's meeting is due but could not be completed: its failing entry in one line
    # (error, attempts, next try; revision 0009), else None
    failing: str | None = None


def complete_meeting(conn: sqlite3.Connection, meeting_id: str, now: datetime) -> Completion:
    """Twin of scheduler.complete_meeting() in sql/postgres/20_functions.sql.

    Completes every pending meeting whose end time has passed (so that the jobs of a busy
    minute finish together; their events have path ``job``), leaves a meeting that is not due
    alone, and removes the job of a meeting that is gone or no longer pending. Paused (the
    scheduler, or meetings by name): changes nothing.
    """

    def status() -> str | None:
        row = conn.execute("SELECT status FROM meetings WHERE id = ?", (meeting_id,)).fetchone()
        return None if row is None else str(row[0])

    words = statuses(conn)
    before = status()
    if not transition_active(conn):
        return Completion(0, False, before, False, before == words.pending)
    completed = complete_due_meetings(conn, now, path="job")
    after = status()
    still_pending = after == words.pending
    removed = not still_pending and unregister_jobs(conn, [meeting_id]) > 0
    this_one = before == words.pending and after == words.done
    found = safety.entry(conn, BUILTIN, meeting_id) if still_pending else None
    return Completion(
        completed,
        this_one,
        after,
        removed,
        still_pending,
        None if found is None else safety.describe(found),
    )


def next_end_time(conn: sqlite3.Connection, now: datetime | None = None) -> str | None:
    """Twin of scheduler.next_end_time() in sql/postgres/20_functions.sql: the earliest end time
    of a pending meeting (ISO, UTC), None when there is none. With ``now``: a meeting waiting
    for its retry after a failed completion counts at its retry time (revision 0009), so that
    the waker does not wake again and again for it."""
    pending = pending_status(conn)
    if now is None:
        row = conn.execute(
            "SELECT end_time FROM meetings WHERE status = ? ORDER BY julianday(end_time) LIMIT 1",
            (pending,),
        ).fetchone()
        return None if row is None else iso_text(row[0])
    row = conn.execute(
        f"""SELECT end_time FROM meetings
             WHERE meetings.status = :pending AND {safety.not_waiting_sql("meetings.id")}
             ORDER BY julianday(end_time) LIMIT 1""",
        {"pending": pending, "fr_transition": BUILTIN, "fr_now": to_db_time(now)},
    ).fetchone()
    times = [] if row is None else [from_db_time(row[0])]
    times.append(
        safety.next_retry(
            conn,
            now,
            BUILTIN,
            table="meetings",
            key="meetings.id",
            time="meetings.end_time",
            pending="meetings.status = :pending",
            params={"pending": pending},
        )
    )
    known = [time for time in times if time is not None]
    if known:
        return iso(min(known))
    return None if row is None else iso_text(row[0])
