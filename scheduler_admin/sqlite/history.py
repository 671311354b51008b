"""The Python twin of ``sql/postgres/46_history.sql``: the jobs of ours with their next
runs (``list_jobs``, ``next_run``) and their past runs (``history``, ``failed_runs``).

Every function takes an open connection and runs inside the caller's transaction.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import NamedTuple

from scheduler_admin import cron
from scheduler_admin.core import (
    BUILTIN,
    Job,
    Run,
)
from scheduler_admin.exceptions import InvalidInput
from scheduler_admin.sqlite import horizon, transitions
from scheduler_admin.sqlite.connection import (
    iso,
    iso_text,
    to_db_time,
)
from scheduler_admin.sqlite.functions import (
    RECONCILE_JOB,
    command_job,
    job_name,
    meeting_id,
)

OURS_SQL = "substr({col}, 1, 15) = 'meeting-status-'"


_OUR_COMMANDS_SQL = "(substr({col}, 1, 17) = 'complete_meeting(' OR {col} = 'reconcile()')"


# the commands of every transition's jobs (history and its retention; health and metrics still
# count the meetings' runs only)
_ALL_COMMANDS_SQL = (
    "(substr({col}, 1, 17) = 'complete_meeting(' OR {col} = 'reconcile()'"
    " OR substr({col}, 1, 20) = 'complete_transition(')"
)


def _commands_sql(col: str, transition: str | None) -> tuple[str, dict[str, str]]:
    """The condition on a run's command selecting the runs of the jobs of ``transition`` (None:
    every job of ours; meetings: its jobs and the reconcile job), with its parameters."""
    if transition is None:
        return _ALL_COMMANDS_SQL.format(col=col), {}
    if transition == BUILTIN:
        return _OUR_COMMANDS_SQL.format(col=col), {}
    return f"substr({col}, 1, length(:head)) = :head", {
        "head": transitions.command_head(transition)
    }


def retention_days(conn: sqlite3.Connection) -> int:
    """``scheduler_settings.history_retention_days`` (scheduler.settings.history_retention)."""
    row = conn.execute(
        "SELECT history_retention_days FROM scheduler_settings WHERE singleton = 1"
    ).fetchone()
    return 7 if row is None else int(row[0])


def next_run(schedule: str, after: datetime) -> datetime | None:
    """Twin of scheduler.next_run() in sql/postgres/46_history.sql (None: never, or unreadable)."""
    try:
        return cron.next_run(schedule, after)
    except cron.CronError:
        return None


_JOBS_SQL = f"""
    SELECT j.jobid, j.jobname, j.schedule, j.command, j.active, m.status, m.end_time
      FROM cron_job j
      LEFT JOIN meetings m
        ON j.jobname <> '{RECONCILE_JOB}' AND m.id = substr(j.jobname, 16)
     WHERE {OURS_SQL.format(col="j.jobname")}
"""


def _job(row: sqlite3.Row, now: datetime) -> Job:
    name = str(row["jobname"])
    active = bool(row["active"])
    return Job(
        meeting_id=meeting_id(name),
        job_id=int(row["jobid"]),
        job_name=name,
        schedule=str(row["schedule"]),
        next_run=iso(next_run(str(row["schedule"]), now)) if active else None,
        end_time=iso_text(row["end_time"]),
        meeting_status=None if row["status"] is None else str(row["status"]),
        active=active,
        transition=BUILTIN,
        key=meeting_id(name),
        registered_at=None,
    )


def list_jobs(conn: sqlite3.Connection, now: datetime, transition: str | None = None) -> list[Job]:
    """Twin of scheduler.list_jobs() in sql/postgres/46_history.sql (by next run, then name): the
    jobs of every transition (None; meetings' with the reconcile job) or of the one named."""
    if transition is not None:
        transitions.transition_target(conn, transition)
    jobs: list[Job] = []
    if transition in (None, BUILTIN):
        jobs += [_job(row, now) for row in conn.execute(_JOBS_SQL)]
    if transition != BUILTIN:
        jobs += transitions.transition_jobs(conn, now, transition)
    jobs.sort(key=lambda job: (job["next_run"] is None, job["next_run"] or "", job["job_name"]))
    # the pending rows beyond the job horizon, after the jobs (revision 0011)
    return jobs + horizon.deferred_jobs(conn, now, transition)


def meeting_job(conn: sqlite3.Connection, meeting: str, now: datetime) -> Job | None:
    """The row of scheduler.list_jobs() in sql/postgres/46_history.sql for one meeting."""
    row = conn.execute(_JOBS_SQL + " AND j.jobname = ?", (job_name(meeting),)).fetchone()
    return None if row is None else _job(row, now)


def history(
    conn: sqlite3.Connection,
    *,
    failed_only: bool = False,
    limit: int = 50,
    transition: str | None = None,
) -> list[Run]:
    """Twin of scheduler.history() in sql/postgres/46_history.sql: newest run first, of every job
    of ours (None), of meetings' jobs and the reconcile job, or of the jobs of the transition
    named. A run of another transition's job says its transition and its row's key."""
    if limit < 1:
        raise InvalidInput(f"limit must be at least 1, not {limit}")
    if transition is not None:
        transitions.transition_target(conn, transition)
    where, params = _commands_sql("r.command", transition)
    if failed_only:
        where += " AND r.status = 'failed' AND r.return_message IS NOT 'job canceled'"
    rows = conn.execute(
        f"""SELECT r.runid, r.jobid, j.jobname, r.command, r.status, r.return_message,
                   r.start_time, r.end_time
              FROM cron_job_run_details r
              LEFT JOIN cron_job j ON j.jobid = r.jobid
             WHERE {where}
             ORDER BY r.runid DESC
             LIMIT :limit""",
        {**params, "limit": limit},
    ).fetchall()
    runs: list[Run] = []
    prefixes: dict[str, str | None] = {}
    for row in rows:
        # The command names the job (as on PostgreSQL); the job itself may be gone.
        target = transitions.parse_transition_command(row["command"])
        if target is None:
            name = command_job(row["command"]) or row["jobname"]
            owner, key = BUILTIN, meeting_id(name)
        else:
            owner, key = target
            if owner not in prefixes:
                prefixes[owner] = transitions.job_name_of(conn, owner, "")
            prefix = prefixes[owner]
            name = row["jobname"] if prefix is None else prefix + key
        status = str(row["status"])
        if status == "failed" and row["return_message"] == "job canceled":
            status = "canceled"  # a pending run dropped because its job was removed
        runs.append(
            Run(
                run_id=int(row["runid"]),
                job_id=0 if row["jobid"] is None else int(row["jobid"]),
                job_name=name,
                meeting_id=meeting_id(name) if owner == BUILTIN else None,
                status=status,
                return_message=row["return_message"],
                start_time=iso_text(row["start_time"]),
                end_time=iso_text(row["end_time"]),
                transition=owner,
                key=key,
            )
        )
    return runs


_FAILED_RUNS_SQL = f"""
    SELECT count(*) FROM cron_job_run_details r
     WHERE r.status = 'failed' AND r.return_message IS NOT 'job canceled'
       AND (:since IS NULL OR julianday(r.start_time) >= julianday(:since))
       AND {_OUR_COMMANDS_SQL.format(col="r.command")}"""


# As scheduler.failed_runs() in sql/postgres/46_history.sql, a failed run was retried when, for a
# meeting's job, its meeting is no longer pending (a later run, the reconcile job or the waker
# completed it, or it went away), and for the reconcile job when a later run of it succeeded.
# The meeting id is the SQL literal in the command complete_meeting('<id>')
# (scheduler_meeting_jobs), its quotes doubled.
_RETRIED_SQL = """
       AND CASE WHEN substr(r.command, 1, 17) = 'complete_meeting('
                THEN NOT EXISTS (
                    SELECT 1 FROM meetings m
                     WHERE m.id = replace(substr(r.command, 19, length(r.command) - 20),
                                          '''''', '''')
                       AND m.status = (SELECT s.pending_status FROM scheduler_statuses s))
                ELSE EXISTS (SELECT 1 FROM cron_job_run_details later
                              WHERE later.command = r.command AND later.runid > r.runid
                                AND later.status = 'succeeded')
           END"""


class FailedRuns(NamedTuple):
    """The two columns of scheduler.failed_runs()."""

    failed: int
    retried: int


def failed_runs(conn: sqlite3.Connection, since: datetime | None) -> FailedRuns:
    """Twin of scheduler.failed_runs() in sql/postgres/46_history.sql: the failed runs of ours
    since a time (health's failed_runs_24h), or in the whole kept history when ``since`` is None
    (metrics' failed_runs), and how many of them were retried (health's retried_runs_24h,
    metrics' retried_runs)."""
    params = {"since": None if since is None else to_db_time(since)}
    failed = int(conn.execute(_FAILED_RUNS_SQL, params).fetchone()[0])
    retried = int(conn.execute(_FAILED_RUNS_SQL + _RETRIED_SQL, params).fetchone()[0])
    return FailedRuns(failed, retried)
