"""The Python twin of ``sql/postgres/43_events.sql``, the completion events of revision 0004
(their recording is in :mod:`scheduler_admin.sqlite.functions`): ``scheduler.events()``,
``scheduler.event_rows()`` (the rows both of them return), ``scheduler.set_webhooks()``,
``scheduler.claim_events()``, ``scheduler.record_attempt()``,
``scheduler.event_counts()``, and ``scheduler.purge_events()``, the retention of
``scheduler.reconcile()`` that rolls deleted events into the totals.

The tables are ``scheduler_completion_events``, ``scheduler_webhook_attempts``,
``scheduler_webhooks`` and ``scheduler_metric_totals`` (``sql/sqlite/10_schema.sql``); the view
``scheduler_events`` (``20_views.sql``) adds the lateness. Every function takes an open
connection and runs inside the caller's transaction; the times are the backend's clock (``now``),
stored with microseconds (:func:`~scheduler_admin.sqlite.connection.to_event_time`). The
triggers record the completions of path ``write`` themselves (``30_triggers.sql``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from scheduler_admin.core import Event, Outcome
from scheduler_admin.exceptions import DatabaseError, InvalidInput
from scheduler_admin.sqlite import transitions
from scheduler_admin.sqlite.connection import iso_text, to_event_time

OUTCOMES = ("delivered", "retry", "failed")
MAX_ERROR = 2000  # characters of an attempt's error kept (as PostgreSQL's left(p_error, 2000))
# The upper bounds (seconds) of the cumulative lateness buckets of metrics().
LATENESS_BUCKETS: tuple[float, ...] = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 3600)

EVENT_COLUMNS = """event_id, event_key, meeting_id, end_time, completed_at, lateness_seconds,
                    path, delivery, attempts, last_error, transition, key"""

# (name, label) -> value, as scheduler_metric_totals holds them
Totals = dict[tuple[str, str], float]


def event_row(row: sqlite3.Row) -> Event:
    """One row of the view scheduler_events (its columns :data:`EVENT_COLUMNS`) as an Event."""
    return Event(
        event_id=int(row["event_id"]),
        event_key=str(row["event_key"]),
        meeting_id=None if row["meeting_id"] is None else str(row["meeting_id"]),
        end_time=iso_text(row["end_time"]) or "",
        completed_at=iso_text(row["completed_at"]) or "",
        lateness_seconds=float(row["lateness_seconds"]),
        path=str(row["path"]),
        delivery=None if row["delivery"] is None else str(row["delivery"]),
        attempts=int(row["attempts"]),
        last_error=None if row["last_error"] is None else str(row["last_error"]),
        transition=str(row["transition"]),
        key=str(row["key"]),
    )


def event_rows(conn: sqlite3.Connection, event_ids: Iterable[int]) -> list[Event]:
    """Twin of scheduler.event_rows() in sql/postgres/43_events.sql: the events of these ids as
    the admin side reads them (lateness in seconds, the key: a meeting's id or another
    transition's row_key), by event_id; an id without an event is left out. What
    :func:`events` and :func:`claim_events` return."""
    rows = conn.execute(
        f"""SELECT {EVENT_COLUMNS} FROM scheduler_events
             WHERE event_id IN (SELECT value FROM json_each(?)) ORDER BY event_id""",
        (json.dumps([int(event_id) for event_id in event_ids]),),
    ).fetchall()
    return [event_row(row) for row in rows]


def webhooks_enabled(conn: sqlite3.Connection) -> bool:
    """scheduler.settings.webhooks: whether new events are to be delivered."""
    row = conn.execute("SELECT enabled FROM scheduler_webhooks WHERE singleton = 1").fetchone()
    return row is not None and bool(row[0])


def set_webhooks(conn: sqlite3.Connection, enabled: bool) -> dict[str, Any]:
    """Twin of scheduler.set_webhooks() in sql/postgres/43_events.sql: events completed from now
    on are pending delivery (or not); existing events keep their delivery."""
    conn.execute(
        """INSERT INTO scheduler_webhooks (singleton, enabled) VALUES (1, ?)
           ON CONFLICT (singleton) DO UPDATE SET enabled = excluded.enabled""",
        (int(enabled),),
    )
    return {"webhooks": webhooks_enabled(conn)}


def claim_events(
    conn: sqlite3.Connection, now: datetime, *, limit: int, lease_seconds: float
) -> list[Event]:
    """Twin of scheduler.claim_events() in sql/postgres/43_events.sql: up to ``limit`` pending
    events due at ``now`` (next_attempt_at reached) without a live lease, oldest first (by
    next_attempt_at, then event_id); each gets a lease until ``now + lease_seconds`` and one
    more attempt.

    PostgreSQL's ``for update skip locked`` has no SQLite equivalent: the caller's write
    transaction (``BEGIN IMMEDIATE``) serialises claimers, so no event is claimed twice.
    """
    if limit < 1:
        raise InvalidInput(f"limit must be at least 1, not {limit}")
    if not lease_seconds > 0:
        raise InvalidInput(f"lease_seconds must be positive, not {lease_seconds}")
    stamp = to_event_time(now)
    claimed = [
        int(row[0])
        for row in conn.execute(
            """UPDATE scheduler_completion_events
                  SET claimed_until = :until, attempts = attempts + 1
                WHERE event_id IN (
                      SELECT event_id FROM scheduler_completion_events
                       WHERE delivery = 'pending' AND next_attempt_at <= :now
                         AND (claimed_until IS NULL OR claimed_until <= :now)
                       ORDER BY next_attempt_at, event_id LIMIT :limit)
            RETURNING event_id""",
            {
                "now": stamp,
                "until": to_event_time(now + timedelta(seconds=lease_seconds)),
                "limit": limit,
            },
        )
    ]
    return event_rows(conn, claimed)


_OUTCOME_SET = {
    "delivered": "delivery = 'delivered', delivered_at = :now, claimed_until = NULL",
    "retry": "next_attempt_at = :next, claimed_until = NULL, last_error = :error",
    "failed": "delivery = 'failed', claimed_until = NULL, last_error = :error",
}


def record_attempt(
    conn: sqlite3.Connection,
    now: datetime,
    event_id: int,
    *,
    outcome: Outcome,
    status_code: int | None = None,
    error: str | None = None,
    retry_in_seconds: float | None = None,
) -> bool:
    """Twin of scheduler.record_attempt() in sql/postgres/43_events.sql.

    Keeps an attempt row (numbered by the event's attempts so far; the error cut to
    :data:`MAX_ERROR` characters), then applies the outcome to a pending event, releasing its
    lease: ``delivered`` (delivered_at = now), ``retry`` (claimable again at
    ``now + retry_in_seconds``; none or negative: at once) or ``failed``. An event already
    delivered or failed (or never to be delivered) is not changed: False. An event that does
    not exist (the retention may have deleted it) is an error, as on PostgreSQL.
    """
    if outcome not in OUTCOMES:
        raise InvalidInput(
            f"unknown delivery outcome {outcome}", hint="Give delivered, retry or failed."
        )
    row = conn.execute(
        "SELECT attempts FROM scheduler_completion_events WHERE event_id = ?", (event_id,)
    ).fetchone()
    if row is None:
        raise DatabaseError(
            f"no completion event {event_id}",
            hint="It may have been deleted by the retention (history_retention_days).",
        )
    retry_in = max(retry_in_seconds or 0.0, 0.0)
    params = {
        "event_id": event_id,
        "attempt": int(row[0]),
        "now": to_event_time(now),
        "next": to_event_time(now + timedelta(seconds=retry_in)),
        "outcome": outcome,
        "status_code": status_code,
        "error": None if error is None else error[:MAX_ERROR],
    }
    conn.execute(
        """INSERT INTO scheduler_webhook_attempts
                  (event_id, attempt, attempted_at, outcome, status_code, error)
           VALUES (:event_id, :attempt, :now, :outcome, :status_code, :error)""",
        params,
    )
    changed = conn.execute(
        f"""UPDATE scheduler_completion_events SET {_OUTCOME_SET[outcome]}
             WHERE event_id = :event_id AND delivery = 'pending'""",
        params,
    ).rowcount
    return changed > 0


# -- the counters of metrics() and the retention --------------------------------------------------


def lateness_buckets() -> tuple[float, ...]:
    """Twin of scheduler.lateness_buckets() in sql/postgres/43_events.sql: the upper bounds
    (seconds) of the lateness histogram's buckets."""
    return LATENESS_BUCKETS


def bucket_label(bound: float) -> str:
    """The label of a lateness bucket in scheduler_metric_totals: ``0.5``, ``1``, ``3600`` (as
    PostgreSQL prints the double precision bound)."""
    return format(bound, "g")


def _bucket_columns() -> str:
    return ", ".join(
        f"coalesce(sum(lateness_us <= {int(bound * 1_000_000)}), 0)" for bound in lateness_buckets()
    )


def event_counts(conn: sqlite3.Connection, where: str, params: Mapping[str, object]) -> Totals:
    """Twin of scheduler.event_counts() in sql/postgres/43_events.sql: the counters of the events
    matching ``where`` (SQL on the view scheduler_events, written by the caller), keyed as
    scheduler_metric_totals is: (name, label) -> value."""
    counts: Totals = {}
    for path, count in conn.execute(
        f"SELECT path, count(*) FROM scheduler_events WHERE {where} GROUP BY path", params
    ):
        counts["completions", str(path)] = count
    row = conn.execute(
        f"""SELECT count(*), coalesce(sum(lateness_us), 0), {_bucket_columns()},
                   coalesce(sum(delivery = 'delivered'), 0), coalesce(sum(delivery = 'failed'), 0)
              FROM scheduler_events WHERE {where}""",
        params,
    ).fetchone()
    counts["lateness_count", ""] = row[0]
    counts["lateness_sum", ""] = row[1] / 1_000_000
    for index, bound in enumerate(lateness_buckets(), start=2):
        counts["lateness_le", bucket_label(bound)] = row[index]
    counts["webhook_delivered", ""] = row[-2]
    counts["webhook_failed", ""] = row[-1]
    failures = conn.execute(
        f"""SELECT count(*) FROM scheduler_webhook_attempts a
             WHERE a.outcome <> 'delivered'
               AND a.event_id IN (SELECT event_id FROM scheduler_events WHERE {where})""",
        params,
    ).fetchone()
    counts["webhook_attempt_failures", ""] = failures[0]
    return counts


def totals(conn: sqlite3.Connection, transition: str | None = None) -> Totals:
    """The counters of the events the retention deleted (scheduler_metric_totals): of every
    transition summed (None), or of the one named."""
    return {
        (str(name), str(label)): value
        for name, label, value in conn.execute(
            """SELECT name, label, sum(value) FROM scheduler_metric_totals
                WHERE :transition IS NULL OR transition = :transition
                GROUP BY name, label""",
            {"transition": transition},
        )
    }


def purge_events(conn: sqlite3.Connection, now: datetime, retention_days: int) -> int:
    """Twin of scheduler.purge_events() in sql/postgres/43_events.sql (the reconcile job): events
    completed more than ``retention_days`` before ``now`` (any delivery state) are added to
    scheduler_metric_totals (per transition), then deleted with their attempts; how many
    events."""
    params = {"cutoff": to_event_time(now - timedelta(days=retention_days))}
    old = "completed_at < :cutoff"
    names = [
        str(row[0])
        for row in conn.execute(
            f"SELECT DISTINCT transition FROM scheduler_completion_events WHERE {old}", params
        )
    ]
    if not names:
        return 0
    for name in names:
        conn.executemany(
            """INSERT INTO scheduler_metric_totals (transition, name, label, value)
               VALUES (?, ?, ?, ?)
               ON CONFLICT (transition, name, label) DO UPDATE
                  SET value = value + excluded.value""",
            [
                (name, metric, label, value)
                for (metric, label), value in event_counts(
                    conn, f"{old} AND transition = :transition", {**params, "transition": name}
                ).items()
                if value
            ],
        )
    conn.execute(
        f"""DELETE FROM scheduler_webhook_attempts WHERE event_id IN (
                SELECT event_id FROM scheduler_completion_events WHERE {old})""",
        params,
    )
    return conn.execute(f"DELETE FROM scheduler_completion_events WHERE {old}", params).rowcount


def events(
    conn: sqlite3.Connection,
    *,
    limit: int = 50,
    path: str | None = None,
    transition: str | None = None,
) -> list[Event]:
    """Twin of scheduler.events() in sql/postgres/43_events.sql: newest first, of one path or
    all (a path no event has, none), of every transition (None) or of the one named (an
    unknown name: :class:`InvalidInput`)."""
    if limit < 1:
        raise InvalidInput(f"limit must be at least 1, not {limit}")
    if transition is not None:
        transitions.transition_target(conn, transition)
    latest = [
        int(row[0])
        for row in conn.execute(
            """SELECT event_id FROM scheduler_completion_events
                WHERE (:path IS NULL OR path = :path)
                  AND (:transition IS NULL OR transition = :transition)
                ORDER BY event_id DESC LIMIT :limit""",
            {"path": path, "limit": limit, "transition": transition},
        )
    ]
    return event_rows(conn, latest)[::-1]
