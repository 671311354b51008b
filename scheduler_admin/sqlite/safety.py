"""Rows that cannot be completed, on SQLite: the twin of ``scheduler.complete_rows()`` and of
the table ``scheduler.failing_rows`` (revision 0009).

Every completion of a set of due rows (a meeting's or a row's job, the waker, reconcile,
recover, resume, ``add_transition``) goes through :func:`complete_rows`: one set UPDATE, as
before, in a savepoint. When it fails (a CHECK constraint, a trigger of the application's or of
another transition on the same table that rejects one row), the attempt is rolled back and the
set is split in halves, recursively, each half in its own savepoint, down to single rows; every
other row completes on time, and a row that fails alone is recorded in
``scheduler_failing_rows`` (``sql/sqlite/10_schema.sql``) with its error and its attempts. It
is then left out of every completion until its ``retry_at``: 10 s after its first failure,
doubling per attempt, at most an hour, so that a poison row costs bounded work. Its entry goes
when it completes (or leaves its pending state, or its row goes: :func:`forget`, which the
completions and the repair of recover/reconcile call).

The SQL fragments given here are written by the callers from validated identifiers (the
meetings table, a registered transition's quoted table and columns), never from row data.
"""

from __future__ import annotations

import functools
import json
import logging
import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from scheduler_admin.core import plural
from scheduler_admin.sqlite.connection import (
    RECONCILE_COMMAND,
    from_db_time,
    iso,
    iso_text,
    to_db_time,
)

log = logging.getLogger(__name__)

TABLE = "scheduler_failing_rows"
FIRST_RETRY = 10  # seconds after the first failure
LAST_RETRY = 3600  # the longest wait between two attempts (seconds)
DETAIL_LIMIT = 20  # rows listed by health's failing_rows_detail
MAX_ERROR = 2000  # characters of an error kept
_SAVEPOINT = "scheduler_complete_rows"

# SQLite's errors that say nothing about a row (the database, the disk, the lock): never split
# a set for those, the caller's transaction fails as before.
_NOT_ROW_ERRORS = (
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_INTERRUPT",
    "SQLITE_IOERR",
    "SQLITE_FULL",
    "SQLITE_NOMEM",
    "SQLITE_READONLY",
    "SQLITE_CORRUPT",
    "SQLITE_CANTOPEN",
    "SQLITE_NOTADB",
    "SQLITE_PROTOCOL",
    "SQLITE_SCHEMA",
)
_NOT_ROW_MESSAGES = (
    "database is locked",
    "database table is locked",
    "interrupted",
    "disk i/o error",
    "database or disk is full",
    "out of memory",
    "readonly database",
    "malformed",
)

# What the caller's completion does for the rows matching a condition: record their events and
# update them, in that order; how many it updated.
Complete = Callable[[str, dict[str, Any]], int]


def retry_delay(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failure: 10 s * 2^(attempts - 1), at most an hour."""
    exponent = min(max(attempts, 1) - 1, 20)  # 10 s * 2^9 is past the hour already
    return timedelta(seconds=min(FIRST_RETRY * 2**exponent, LAST_RETRY))


def not_waiting_sql(key: str) -> str:
    """SQL: the row whose key is ``key`` (a column qualified by its table's name) is not waiting
    for its retry (named parameters ``:fr_transition`` and ``:fr_now``, see
    :func:`complete_rows`); one lookup of the table's primary key per row."""
    return (
        f"NOT EXISTS (SELECT 1 FROM {TABLE}"
        f" WHERE {TABLE}.transition = :fr_transition"
        f" AND {TABLE}.row_key = CAST({key} AS TEXT)"
        f" AND julianday({TABLE}.retry_at) > julianday(:fr_now))"
    )


def is_row_error(exc: sqlite3.Error) -> bool:
    """Whether an error of a completing UPDATE may come from one of its rows (a constraint, a
    trigger's RAISE, anything a trigger runs), rather than from the database itself."""
    name = getattr(exc, "sqlite_errorname", None)  # Python 3.11 and later
    if isinstance(name, str) and name:
        return not name.startswith(_NOT_ROW_ERRORS)
    text = str(exc).lower()
    return not any(words in text for words in _NOT_ROW_MESSAGES)


def _attempt(conn: sqlite3.Connection, run: Callable[[], int]) -> int:
    """``run()`` in a savepoint: rolled back to it (and re-raised) when it fails."""
    conn.execute(f"SAVEPOINT {_SAVEPOINT}")
    try:
        done = run()
    except sqlite3.Error:
        # RAISE(ROLLBACK) in a trigger ends the whole transaction: nothing to roll back to
        if conn.in_transaction:
            conn.execute(f"ROLLBACK TO {_SAVEPOINT}")
            conn.execute(f"RELEASE {_SAVEPOINT}")
        raise
    conn.execute(f"RELEASE {_SAVEPOINT}")
    return done


def complete_rows(
    conn: sqlite3.Connection,
    now: datetime,
    *,
    transition: str,
    table: str,
    key: str,
    pending: str,
    where: str,
    params: Mapping[str, Any],
    complete: Complete,
) -> int:
    """Twin of scheduler.complete_rows(): complete the rows of ``table`` matching ``where``
    (pending and due, SQL with the named ``params``) but those waiting for their retry, through
    ``complete`` (their events, then the UPDATE); how many were completed.

    ``key`` is the key column qualified by the table's name (``meetings.id``), ``pending`` the
    condition on a row being in a pending state (SQL on ``table``, the same parameters). The
    fast path is one set UPDATE in a savepoint; only when it fails is the set split (see the
    module's doc) and a row failing alone recorded. Afterwards, the entries of rows no longer
    pending are forgotten."""
    values = {**params, "fr_transition": transition, "fr_now": to_db_time(now)}
    condition = f"({where}) AND {not_waiting_sql(key)}"
    try:
        done = _attempt(conn, lambda: complete(condition, values))
    except sqlite3.Error as exc:
        if not conn.in_transaction or not is_row_error(exc):
            raise
        rows = conn.execute(
            f"SELECT {key}, CAST({key} AS TEXT) FROM {table} WHERE {condition} ORDER BY {key}",
            values,
        ).fetchall()
        keys = [(row[0], str(row[1])) for row in rows]
        done = _split(conn, now, transition, key, condition, values, complete, keys, exc)
    clear_failing_rows(conn, transition, table=table, key=key, pending=pending, params=params)
    return done


def _split(
    conn: sqlite3.Connection,
    now: datetime,
    transition: str,
    key: str,
    condition: str,
    values: dict[str, Any],
    complete: Complete,
    keys: list[tuple[Any, str]],
    failure: sqlite3.Error,
) -> int:
    """The rows ``keys`` (their values and their text), whose completion together failed with
    ``failure``: a single row is recorded, a larger set is completed in halves."""
    if not keys:
        return 0
    if len(keys) == 1:
        note_failing_row(conn, now, transition, keys[0][1], failure)
        return 0
    done = 0
    middle = len(keys) // 2
    for half in (keys[:middle], keys[middle:]):
        chosen = f"{condition} AND {key} IN (SELECT value FROM json_each(:fr_keys))"
        subset = {**values, "fr_keys": json.dumps([value for value, _ in half])}
        try:
            done += _attempt(conn, functools.partial(complete, chosen, subset))
        except sqlite3.Error as exc:
            if not conn.in_transaction or not is_row_error(exc):
                raise
            done += _split(conn, now, transition, key, condition, values, complete, half, exc)
    return done


def note_failing_row(
    conn: sqlite3.Connection, now: datetime, transition: str, row_key: str, exc: BaseException
) -> None:
    """Record (or count once more) a row that failed alone: its error, attempts + 1 and the
    time it may be tried again (:func:`retry_delay`)."""
    found = conn.execute(
        f"SELECT attempts FROM {TABLE} WHERE transition = ? AND row_key = ?",
        (transition, row_key),
    ).fetchone()
    attempts = 1 if found is None else int(found[0]) + 1
    retry_at = now + retry_delay(attempts)
    error = str(exc)[:MAX_ERROR] or type(exc).__name__
    conn.execute(
        f"""INSERT INTO {TABLE}
                   (transition, row_key, error, sqlstate, attempts, first_failed_at,
                    last_failed_at, retry_at)
            VALUES (:transition, :row_key, :error, NULL, :attempts, :now, :now, :retry_at)
            ON CONFLICT (transition, row_key) DO UPDATE
               SET error = excluded.error, sqlstate = excluded.sqlstate,
                   attempts = excluded.attempts, last_failed_at = excluded.last_failed_at,
                   retry_at = excluded.retry_at""",
        {
            "transition": transition,
            "row_key": row_key,
            "error": error,
            "attempts": attempts,
            "now": to_db_time(now),
            "retry_at": to_db_time(retry_at),
        },
    )
    log.warning(
        "transition %s: the row %s could not be completed (%s, next try %s): %s",
        transition,
        row_key,
        plural(attempts, "attempt"),
        iso(retry_at),
        error,
    )


def clear_failing_rows(
    conn: sqlite3.Connection,
    transition: str,
    *,
    table: str,
    key: str,
    pending: str,
    params: Mapping[str, Any],
) -> int:
    """Delete the entries of the transition whose row is gone or no longer pending (it
    completed, or the application changed its state); how many. Nothing to do, nothing read
    but one lookup of the primary key."""
    if (
        conn.execute(
            f"SELECT 1 FROM {TABLE} WHERE transition = ? LIMIT 1", (transition,)
        ).fetchone()
        is None
    ):
        return 0
    return conn.execute(
        f"""DELETE FROM {TABLE}
             WHERE transition = :fr_transition
               AND NOT EXISTS (SELECT 1 FROM {table}
                                WHERE {key} = {TABLE}.row_key AND ({pending}))""",
        {**params, "fr_transition": transition},
    ).rowcount


def forget_transition(conn: sqlite3.Connection, transition: str) -> int:
    """Delete every entry of the transition (removed, or its table gone); how many."""
    return conn.execute(f"DELETE FROM {TABLE} WHERE transition = ?", (transition,)).rowcount


def forget_unregistered(conn: sqlite3.Connection) -> int:
    """Delete the entries of transitions no longer registered; how many."""
    return conn.execute(
        f"DELETE FROM {TABLE} WHERE transition NOT IN (SELECT name FROM scheduler_transitions)"
    ).rowcount


def entry(conn: sqlite3.Connection, transition: str, row_key: str) -> dict[str, Any] | None:
    """The entry of one row ({error, attempts, retry_at}), None when it has none."""
    row = conn.execute(
        f"SELECT error, attempts, retry_at FROM {TABLE} WHERE transition = ? AND row_key = ?",
        (transition, row_key),
    ).fetchone()
    if row is None:
        return None
    return {"error": str(row[0]), "attempts": int(row[1]), "retry_at": iso_text(row[2])}


def describe(found: Mapping[str, Any]) -> str:
    """An entry in one line: ``<error> (2 attempts, next try <time>)``."""
    return (
        f"{found['error']} ({plural(int(found['attempts']), 'attempt')}, "
        f"next try {found['retry_at']})"
    )


def count(conn: sqlite3.Connection, transition: str | None = None) -> int:
    """The rows failing to complete: of every transition (None), or of the one named."""
    row = conn.execute(
        f"SELECT count(*) FROM {TABLE} WHERE :transition IS NULL OR transition = :transition",
        {"transition": transition},
    ).fetchone()
    return int(row[0])


def failing_rows_report(
    conn: sqlite3.Connection, limit: int = DETAIL_LIMIT
) -> list[dict[str, Any]]:
    """health's ``failing_rows_detail``: the most recent failures first, at most ``limit``."""
    rows = conn.execute(
        f"""SELECT transition, row_key, error, attempts, retry_at, last_failed_at FROM {TABLE}
             ORDER BY julianday(last_failed_at) DESC, transition, row_key LIMIT ?""",
        (limit,),
    ).fetchall()
    return [
        {
            "transition": str(row[0]),
            "key": str(row[1]),
            "error": str(row[2]),
            "attempts": int(row[3]),
            "retry_at": iso_text(row[4]),
            "last_failed_at": iso_text(row[5]),
        }
        for row in rows
    ]


def next_retry(
    conn: sqlite3.Connection,
    now: datetime,
    transition: str,
    *,
    table: str,
    key: str,
    time: str,
    pending: str,
    params: Mapping[str, Any],
) -> datetime | None:
    """The earliest time a pending row of the transition waiting for its retry may be completed
    (the later of its time and its retry_at): what the waker sleeps until for those rows,
    instead of their time already past."""
    row = conn.execute(
        f"""SELECT CASE WHEN julianday({time}) > julianday({TABLE}.retry_at) THEN {time}
                        ELSE {TABLE}.retry_at END
              FROM {TABLE} JOIN {table} ON {key} = {TABLE}.row_key
             WHERE {TABLE}.transition = :fr_transition
               AND julianday({TABLE}.retry_at) > julianday(:fr_now)
               AND ({pending}) AND julianday({time}) IS NOT NULL
             ORDER BY max(julianday({time}), julianday({TABLE}.retry_at)) LIMIT 1""",
        {**params, "fr_transition": transition, "fr_now": to_db_time(now)},
    ).fetchone()
    return None if row is None else from_db_time(row[0])


def reconcile_failed_in_a_row(conn: sqlite3.Connection) -> int:
    """How many of the reconcile job's last runs failed in a row (since its last run that
    succeeded; a run under way not counted): health's and the metrics'
    ``reconcile_failed_in_a_row``."""
    row = conn.execute(
        """SELECT count(*) FROM cron_job_run_details r
            WHERE r.command = :command AND r.status = 'failed'
              AND r.runid > coalesce((SELECT max(s.runid) FROM cron_job_run_details s
                                       WHERE s.command = :command AND s.status = 'succeeded'),
                                     0)""",
        {"command": RECONCILE_COMMAND},
    ).fetchone()
    return int(row[0])
