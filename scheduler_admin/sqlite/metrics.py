"""The Python twin of ``scheduler.metrics()`` (``sql/postgres/40_admin.sql``): the counters and
gauges ``scheduler-admin metrics`` prints, as the same JSON document.

The counters (completions by path, the lateness histogram, webhook deliveries and failures) are
cumulative: the events the retention deleted were added to ``scheduler_metric_totals`` first
(:func:`scheduler_admin.sqlite.events.purge_events`), and the events still kept are counted
here, so that no counter ever decreases.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from scheduler_admin.backends.base import PATHS
from scheduler_admin.sqlite import admin, events
from scheduler_admin.sqlite.connection import from_db_time
from scheduler_admin.sqlite.functions import is_enabled


def cumulative_counts(conn: sqlite3.Connection) -> events.Totals:
    """The totals of the deleted events plus the counts of the kept ones, by (metric, label)."""
    counts = events.totals(conn)
    for key, value in events.event_counts(conn, "1", {}).items():
        counts[key] = counts.get(key, 0) + value
    return counts


def backlog(conn: sqlite3.Connection, now: datetime) -> tuple[int, float | None]:
    """Events pending delivery, and how long ago the oldest of them completed (seconds)."""
    row = conn.execute(
        """SELECT count(*), min(completed_at) FROM scheduler_completion_events
            WHERE delivery = 'pending'"""
    ).fetchone()
    oldest = from_db_time(row[1])
    return int(row[0]), None if oldest is None else (now - oldest).total_seconds()


def lateness(counts: events.Totals) -> dict[str, Any]:
    """The lateness histogram: cumulative buckets (upper bound in seconds, count), count, sum."""
    return {
        "buckets": [
            [bound, int(counts.get(("lateness_le", events.bucket_label(bound)), 0))]
            for bound in events.LATENESS_BUCKETS
        ],
        "count": int(counts.get(("lateness_count", ""), 0)),
        "sum": counts.get(("lateness_sum", ""), 0),
    }


def webhooks(conn: sqlite3.Connection, counts: events.Totals, now: datetime) -> dict[str, Any]:
    """Delivery: whether it is on, what was delivered or failed, the failed attempts (retried or
    not) and what waits."""
    pending, oldest = backlog(conn, now)
    return {
        "enabled": events.webhooks_enabled(conn),
        "delivered": int(counts.get(("webhook_delivered", ""), 0)),
        "failed": int(counts.get(("webhook_failed", ""), 0)),
        "attempt_failures": int(counts.get(("webhook_attempt_failures", ""), 0)),
        "backlog": pending,
        "oldest_pending_seconds": oldest,
    }


def metrics(conn: sqlite3.Connection, now: datetime) -> dict[str, Any]:
    """Twin of scheduler.metrics() in sql/postgres/40_admin.sql (backend ``sqlite``).

    The gauges of health() (upcoming meetings, jobs, missing, orphan and overdue), the
    cumulative counters of the completion events, the failed runs kept in the run history and
    those retried (:func:`scheduler_admin.sqlite.admin.retried_runs_since`), and webhooks.
    """
    plan = admin.repair_plan(conn, now)
    counts = cumulative_counts(conn)
    return {
        "backend": "sqlite",
        "enabled": is_enabled(conn),
        "upcoming_meetings": plan.total,
        "jobs": admin.meeting_jobs_count(conn),
        "missing_jobs": plan.missing,
        "orphan_jobs": len(plan.orphans),
        "overdue_meetings": plan.overdue_beyond_grace,
        "completions": {path: int(counts.get(("completions", path), 0)) for path in PATHS},
        "lateness": lateness(counts),
        "failed_runs": admin.failed_runs_since(conn, None),
        "retried_runs": admin.retried_runs_since(conn, None),
        "webhooks": webhooks(conn, counts, now),
    }
