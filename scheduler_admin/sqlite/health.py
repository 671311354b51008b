"""The Python twin of ``sql/postgres/47_health.sql``: what doctor reads (``health``), with what
SQLite adds: the emulated worker's heartbeat.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from datetime import datetime, timedelta
from typing import Any

from scheduler_admin.core import BUILTIN
from scheduler_admin.sqlite import horizon, safety
from scheduler_admin.sqlite.connection import (
    from_db_time,
    iso,
)
from scheduler_admin.sqlite.functions import (
    RECONCILE_COMMAND,
    RECONCILE_JOB,
    RECONCILE_SCHEDULE,
    is_enabled,
)
from scheduler_admin.sqlite.history import OURS_SQL, failed_runs
from scheduler_admin.sqlite.recovery import RepairPlan, repair_plan
from scheduler_admin.sqlite.safety import reconcile_failed_in_a_row

# The reconcile job is never skipped on SQLite: the worker runs it every minute, and a write
# transaction (BEGIN IMMEDIATE) waits for another recovery instead of skipping (PostgreSQL's
# reconcile skips a run while another recovery holds its lock, and counts those in a row).
RECONCILE_SKIPPED_IN_A_ROW = 0


# doctor's and health's limit: this many failed (or skipped) reconcile runs in a row is a problem
RECONCILE_IN_A_ROW_LIMIT = 3


def reconcile_job_ok(conn: sqlite3.Connection) -> tuple[bool, str]:
    """Whether the reconcile job is there as 60_jobs.sql made it, and a line saying so."""
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


# The worker records a heartbeat every minute; older than this means it is not running.
WORKER_STALE_AFTER = timedelta(minutes=3)


def worker_process_gone(pid: int | None, hostname: str | None) -> bool:
    """Whether the worker that wrote the heartbeat is known to be stopped: it ran on this host
    (``socket.gethostname()``) and no process has its pid any more. A worker on another host,
    a row without pid or host, or a system without POSIX signals (on Windows ``os.kill`` ends
    the process) is judged by its heartbeat alone; a process of another user is alive."""
    if pid is None or pid <= 0 or hostname != socket.gethostname() or os.name != "posix":
        return False
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent, only whether the process exists
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: it exists, as another user's
        return False
    return False


def worker_status(conn: sqlite3.Connection, now: datetime) -> dict[str, Any]:
    """The emulated worker from its heartbeat: ``{"running": bool, "heartbeat_at": iso|None}``;
    not running when the heartbeat is older than :data:`WORKER_STALE_AFTER` or its process on
    this host is gone (:func:`worker_process_gone`)."""
    row = conn.execute(
        "SELECT heartbeat_at, pid, hostname FROM scheduler_worker WHERE singleton = 1"
    ).fetchone()
    heartbeat = None if row is None else from_db_time(row[0])
    return {
        "running": heartbeat is not None
        and now - heartbeat <= WORKER_STALE_AFTER
        and not worker_process_gone(row[1], row[2]),
        "heartbeat_at": None if heartbeat is None else iso(heartbeat),
    }


def meeting_jobs_count(conn: sqlite3.Connection) -> int:
    """How many meetings' jobs of ours there are (the reconcile job not counted)."""
    row = conn.execute(
        f"""SELECT count(*) FROM cron_job
             WHERE {OURS_SQL.format(col="jobname")} AND jobname <> '{RECONCILE_JOB}'"""
    ).fetchone()
    return int(row[0])


def health(
    conn: sqlite3.Connection, now: datetime, plan: RepairPlan | None = None
) -> dict[str, Any]:
    """Twin of scheduler.health() in sql/postgres/47_health.sql.

    ``overdue_meetings`` counts upcoming meetings that ended more than two minutes ago (a job
    fires at the start of the minute after the end time); ``missing_jobs`` counts upcoming
    meetings in the future without a job. ``worker`` is the emulated cron worker: running when
    its heartbeat is at most :data:`WORKER_STALE_AFTER` old and, on this host, its process is
    alive; on SQLite nothing else runs the
    jobs, so ``ok`` is false without it. ``retried_runs_24h``: the failed runs of the last day
    that were retried (:func:`~scheduler_admin.sqlite.history.failed_runs`); ``ok`` allows
    those, as the doctor check does. ``failing_rows``: the rows of every transition whose
    completion failed and that wait for their retry, ``failing_rows_detail`` the most recent 20
    of them
    (:mod:`scheduler_admin.sqlite.safety`); ``reconcile_failed_in_a_row``: the reconcile job's
    last runs that failed, in a row (``reconcile_skipped_in_a_row``: always 0 here). ``ok``
    is false while a row is failing or the reconcile job failed 3 times in a row. ``plan``:
    :func:`repair_plan` if already read.
    """
    plan = plan or repair_plan(conn, now)
    enabled = is_enabled(conn)
    day_ago = now - timedelta(hours=24)
    failed, retried = failed_runs(conn, day_ago)
    reconcile_ok, _ = reconcile_job_ok(conn)
    worker = worker_status(conn, now)
    failing_rows = safety.count(conn)
    failed_in_a_row = reconcile_failed_in_a_row(conn)
    horizons = horizon.horizons(conn, now)
    return {
        "backend": "sqlite",
        "enabled": enabled,
        "upcoming_meetings": plan.total,
        "jobs": meeting_jobs_count(conn),
        "missing_jobs": plan.missing,
        "orphan_jobs": len(plan.orphans),
        "overdue_meetings": plan.overdue_beyond_grace,
        "failed_runs_24h": failed,
        "retried_runs_24h": retried,
        "reconcile_job": reconcile_ok,
        "worker": worker,
        # rows whose completion failed, waiting for their retry (revision 0009)
        "failing_rows": failing_rows,
        "failing_rows_detail": safety.failing_rows_report(conn),
        "reconcile_skipped_in_a_row": RECONCILE_SKIPPED_IN_A_ROW,
        "reconcile_failed_in_a_row": failed_in_a_row,
        # the job horizon (revision 0011) and the pending rows beyond it, of every transition
        "job_horizon": next(h["job_horizon"] for h in horizons if h["transition"] == BUILTIN),
        "beyond_horizon": sum(h["beyond_horizon"] for h in horizons),
        "cron_jobs": int(conn.execute("SELECT count(*) FROM cron_job").fetchone()[0]),
        "ok": enabled
        and worker["running"]
        and plan.missing == 0
        and not plan.orphans
        and plan.overdue_beyond_grace == 0
        # a failed run is a problem until a later run has done its work
        and failed == retried
        and reconcile_ok
        and failing_rows == 0
        and failed_in_a_row < RECONCILE_IN_A_ROW_LIMIT,
    }
