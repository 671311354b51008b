"""The Python twin of ``scheduler.metrics()`` (``sql/postgres/48_metrics.sql``): the counters and
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

from scheduler_admin.core import BUILTIN, PATHS
from scheduler_admin.sqlite import events, health, history, horizon, recovery, safety, transitions
from scheduler_admin.sqlite.connection import from_db_time, to_db_time
from scheduler_admin.sqlite.functions import is_enabled


def cumulative_counts(conn: sqlite3.Connection, transition: str | None = None) -> events.Totals:
    """The totals of the deleted events plus the counts of the kept ones, by (metric, label):
    of every transition's events (None), or of the one named."""
    counts = events.totals(conn, transition)
    where = "1" if transition is None else "transition = :transition"
    for key, value in events.event_counts(conn, where, {"transition": transition}).items():
        counts[key] = counts.get(key, 0) + value
    return counts


def backlog(
    conn: sqlite3.Connection, now: datetime, transition: str | None = None
) -> tuple[int, float | None]:
    """Events pending delivery (of every transition, or of the one named), and how long ago
    the oldest of them completed (seconds)."""
    row = conn.execute(
        """SELECT count(*), min(completed_at) FROM scheduler_completion_events
            WHERE delivery = 'pending' AND (:transition IS NULL OR transition = :transition)""",
        {"transition": transition},
    ).fetchone()
    oldest = from_db_time(row[1])
    return int(row[0]), None if oldest is None else (now - oldest).total_seconds()


def lateness(counts: events.Totals) -> dict[str, Any]:
    """The lateness histogram: cumulative buckets (upper bound in seconds, count), count, sum."""
    return {
        "buckets": [
            [bound, int(counts.get(("lateness_le", events.bucket_label(bound)), 0))]
            for bound in events.lateness_buckets()
        ],
        "count": int(counts.get(("lateness_count", ""), 0)),
        "sum": counts.get(("lateness_sum", ""), 0),
    }


def webhooks(
    conn: sqlite3.Connection,
    counts: events.Totals,
    now: datetime,
    transition: str | None = None,
) -> dict[str, Any]:
    """Delivery: whether it is on, what was delivered or failed, the failed attempts (retried or
    not) and what waits (of every transition's events, or of the one named)."""
    pending, oldest = backlog(conn, now, transition)
    return {
        "enabled": events.webhooks_enabled(conn),
        "delivered": int(counts.get(("webhook_delivered", ""), 0)),
        "failed": int(counts.get(("webhook_failed", ""), 0)),
        "attempt_failures": int(counts.get(("webhook_attempt_failures", ""), 0)),
        "backlog": pending,
        "oldest_pending_seconds": oldest,
    }


def transition_gauges(
    conn: sqlite3.Connection, spec: transitions.Spec, now: datetime
) -> dict[str, int]:
    """The health part of metrics() for another transition than meetings, under the meetings'
    keys: its pending rows (upcoming_meetings), its jobs, the pending rows not yet due without
    a job (missing_jobs), its orphan jobs, and its pending rows overdue by more than the grace
    of the meetings' health (overdue_meetings)."""
    jobs = int(
        conn.execute(
            "SELECT count(*) FROM cron_job WHERE substr(jobname, 1, length(:prefix)) = :prefix",
            {"prefix": spec.prefix},
        ).fetchone()[0]
    )
    gauges = {
        "upcoming_meetings": 0,
        "jobs": jobs,
        "missing_jobs": 0,
        "orphan_jobs": jobs,
        "overdue_meetings": 0,
    }
    if not transitions.table_exists(conn, spec.table):
        return gauges
    time, key = spec.col(spec.time, "t"), spec.col(spec.key, "t")
    row = conn.execute(
        f"""SELECT count(*),
                   coalesce(sum(julianday({time}) > julianday(:now) AND NOT EXISTS (
                       SELECT 1 FROM cron_job c
                        WHERE c.jobname = :prefix || CAST({key} AS TEXT))), 0),
                   coalesce(sum(julianday({time}) < julianday(:overdue)), 0)
              FROM {spec.qtable} t
             WHERE {spec.pending(spec.col(spec.state, "t"))}""",
        {
            "now": to_db_time(now),
            "overdue": to_db_time(now - recovery.OVERDUE_GRACE),
            "prefix": spec.prefix,
        },
    ).fetchone()
    gauges["upcoming_meetings"] = int(row[0])
    gauges["missing_jobs"] = int(row[1])
    gauges["overdue_meetings"] = int(row[2])
    gauges["orphan_jobs"] = len(transitions.orphan_jobs(conn, spec))
    return gauges


def transition_runs(conn: sqlite3.Connection, spec: transitions.Spec) -> tuple[int, int]:
    """The failed runs of the transition's jobs kept in the run history, and those retried: its
    row is no longer pending (or gone), or a later run of its job succeeded (as
    scheduler.failed_runs() says of a meeting's job)."""
    failed = conn.execute(
        """SELECT r.runid, r.command FROM cron_job_run_details r
            WHERE r.status = 'failed' AND r.return_message IS NOT 'job canceled'
              AND substr(r.command, 1, length(:head)) = :head""",
        {"head": transitions.command_head(spec.name)},
    ).fetchall()
    exists = transitions.table_exists(conn, spec.table)
    retried = 0
    for runid, command in failed:
        later = conn.execute(
            """SELECT 1 FROM cron_job_run_details
                WHERE command = ? AND runid > ? AND status = 'succeeded'""",
            (command, runid),
        ).fetchone()
        parsed = transitions.parse_transition_command(command)
        pending = (
            exists
            and parsed is not None
            and conn.execute(
                f"""SELECT 1 FROM {spec.qtable} t
                     WHERE {spec.col(spec.key, "t")} = ?
                       AND {spec.pending(spec.col(spec.state, "t"))}""",
                (parsed[1],),
            ).fetchone()
            is not None
        )
        if later is not None or not pending:
            retried += 1
    return len(failed), retried


def reconcile_and_failing(
    conn: sqlite3.Connection, transition: str | None, now: datetime
) -> dict[str, Any]:
    """The rows failing to complete (of every transition, None, or of the one named) and the
    reconcile job's runs failed (or skipped: never, on SQLite) in a row (revision 0009); the job
    horizon (of the one named, or the meetings') and the pending rows beyond it (revision 0011)."""
    horizons = horizon.horizons(conn, now)
    return {
        "failing_rows": safety.count(conn, transition),
        "reconcile_skipped_in_a_row": health.RECONCILE_SKIPPED_IN_A_ROW,
        "reconcile_failed_in_a_row": safety.reconcile_failed_in_a_row(conn),
        "job_horizon_seconds": next(
            h["horizon_seconds"] for h in horizons if h["transition"] == (transition or BUILTIN)
        ),
        "beyond_horizon": sum(
            h["beyond_horizon"] for h in horizons if transition in (None, h["transition"])
        ),
    }


def metrics(
    conn: sqlite3.Connection, now: datetime, transition: str | None = None
) -> dict[str, Any]:
    """Twin of scheduler.metrics() in sql/postgres/48_metrics.sql (backend ``sqlite``).

    The gauges of health() (upcoming meetings, jobs, missing, orphan and overdue), the
    cumulative counters of the completion events, the failed runs kept in the run history and
    those retried (:func:`scheduler_admin.sqlite.history.failed_runs`), the rows failing
    to complete and the reconcile job's failures in a row (:func:`reconcile_and_failing`), and
    webhooks.

    ``transition``: None, every transition's events counted, the gauges and runs the meetings';
    ``meetings``: the same with the meetings' events only; another name: the gauges, runs and
    events of that transition, and the key ``transition``. An unknown name:
    :class:`~scheduler_admin.exceptions.InvalidInput`.
    """
    if transition is not None:
        transitions.transition_target(conn, transition)
    counts_of = None if transition is None else transition
    counts = cumulative_counts(conn, counts_of)
    if transition not in (None, BUILTIN):
        assert transition is not None
        spec = transitions.spec_of(conn, transition)
        failed, retried = transition_runs(conn, spec)
        return {
            "backend": "sqlite",
            "enabled": is_enabled(conn),
            "transition": transition,
            **transition_gauges(conn, spec, now),
            "completions": {path: int(counts.get(("completions", path), 0)) for path in PATHS},
            "lateness": lateness(counts),
            "failed_runs": failed,
            "retried_runs": retried,
            **reconcile_and_failing(conn, transition, now),
            "webhooks": webhooks(conn, counts, now, transition),
        }
    plan = recovery.repair_plan(conn, now)
    runs = history.failed_runs(conn, None)
    return {
        "backend": "sqlite",
        "enabled": is_enabled(conn),
        "upcoming_meetings": plan.total,
        "jobs": health.meeting_jobs_count(conn),
        "missing_jobs": plan.missing,
        "orphan_jobs": len(plan.orphans),
        "overdue_meetings": plan.overdue_beyond_grace,
        "completions": {path: int(counts.get(("completions", path), 0)) for path in PATHS},
        "lateness": lateness(counts),
        "failed_runs": runs.failed,
        "retried_runs": runs.retried,
        **reconcile_and_failing(conn, transition, now),
        "webhooks": webhooks(conn, counts, now, counts_of),
    }
