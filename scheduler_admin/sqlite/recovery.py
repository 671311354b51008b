"""The Python twin of ``sql/postgres/40_recovery.sql``: repair every pending row (``recover``
at start-up, ``reconcile`` every minute) and delete the old run history.

Every function takes an open connection and runs inside the caller's transaction; ``now`` is
the backend's clock. The set logic (which upcoming meeting has a right, wrong or missing job,
which jobs are orphans) is in the views of ``sql/sqlite/20_views.sql``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from scheduler_admin.core import (
    BUILTIN,
    JOB_PREFIX,
    Paused,
    Reconciled,
    ReconcileReport,
    Recovered,
    RecoverReport,
    TransitionReconcileReport,
)
from scheduler_admin.exceptions import InvalidInput
from scheduler_admin.sqlite import horizon, safety, transitions
from scheduler_admin.sqlite.connection import (
    from_db_time,
    to_db_time,
)
from scheduler_admin.sqlite.events import purge_events
from scheduler_admin.sqlite.functions import (
    complete_due,
    forget_meetings,
    is_enabled,
    meeting_id,
    paused_by_name,
    pending_status,
    register_jobs,
)
from scheduler_admin.sqlite.history import _commands_sql, retention_days

# A meeting's job fires at the start of the minute after its end time: health and doctor allow
# this much delay before an upcoming meeting past its end time counts as a problem.
OVERDUE_GRACE = timedelta(minutes=2)


@dataclass
class RepairPlan:
    """What repair would do: the views' comparison, split by the clock."""

    total: int = 0
    overdue: list[str] = field(default_factory=list)  # meeting ids
    overdue_beyond_grace: int = 0
    to_schedule: list[str] = field(default_factory=list)  # meeting ids (missing or wrong job)
    missing: int = 0  # no job at all
    existing: int = 0
    orphans: list[tuple[int, str]] = field(default_factory=list)  # (jobid, jobname)
    errors: list[dict[str, str]] = field(default_factory=list)
    beyond: int = 0  # beyond the job horizon: no job yet (a job of one is an orphan)
    horizon: bool = False  # whether meetings have a job horizon


def repair_plan(conn: sqlite3.Connection, now: datetime) -> RepairPlan:
    """The comparison at the start of scheduler.repair() in sql/postgres/40_recovery.sql (no write).

    ``scheduler_upcoming_jobs`` compares every upcoming meeting's job with the one it should
    have, ``scheduler_orphan_jobs`` lists the jobs no upcoming meeting owns; this splits the
    upcoming meetings by ``now``: overdue ones are completed, not scheduled.
    """
    plan = RepairPlan()
    limit = horizon.job_cutoff(conn, BUILTIN, now)
    plan.horizon = limit is not None
    beyond_jobs: list[tuple[int, str]] = []
    for row in conn.execute(
        "SELECT meeting_id, end_time, end_utc, schedule, job_ok, jobid, job_name "
        "FROM scheduler_upcoming_jobs"
    ):
        plan.total += 1
        meeting = str(row["meeting_id"])
        end = from_db_time(row["end_utc"])
        if end is None or row["schedule"] is None:
            plan.errors.append(
                {
                    "meeting_id": meeting,
                    "error": f"end_time {row['end_time']!r} is not an ISO-8601 time "
                    "(expected e.g. 2026-12-01T15:30:00+00:00)",
                }
            )
        elif limit is not None and end > limit:
            # beyond the job horizon (revision 0011): no job yet, and a job of it goes
            plan.beyond += 1
            if row["jobid"] is not None:
                beyond_jobs.append((int(row["jobid"]), str(row["job_name"])))
        elif end <= now:
            plan.overdue.append(meeting)
            plan.overdue_beyond_grace += end < now - OVERDUE_GRACE
        elif row["job_ok"]:
            plan.existing += 1
        else:
            plan.missing += row["job_ok"] is None
            plan.to_schedule.append(meeting)
    plan.orphans = [
        (int(row["jobid"]), str(row["jobname"]))
        for row in conn.execute("SELECT jobid, jobname FROM scheduler_orphan_jobs ORDER BY jobname")
    ] + sorted(beyond_jobs, key=lambda job: job[1])
    return plan


def _with_beyond(report: RecoverReport, plan: RepairPlan) -> RecoverReport:
    """The report with the key beyond_horizon, only when meetings have a job horizon."""
    if plan.horizon:
        report["beyond_horizon"] = plan.beyond
    return report


def repair(
    conn: sqlite3.Connection, now: datetime, *, dry_run: bool, path: str = "recover"
) -> RecoverReport:
    """Twin of scheduler.repair() in sql/postgres/40_recovery.sql: the meetings' repair (each
    item in its own savepoint). ``path``: what the completion events of the overdue meetings
    say did it (``recover`` for recover, resume and configure_statuses, ``reconcile`` for the
    reconcile job). Meetings paused by name are repaired all the same (recover refuses them
    while paused but for a dry run, and reports then what it would do)."""
    plan = repair_plan(conn, now)
    errors = list(plan.errors)
    if dry_run:
        return _with_beyond(
            RecoverReport(
                total_meetings=plan.total,
                jobs_scheduled=len(plan.to_schedule),
                jobs_already_exist=plan.existing,
                overdue_completed=len(plan.overdue),
                orphans_removed=len(plan.orphans),
                errors=errors,
                success=not errors,
                dry_run=True,
            ),
            plan,
        )
    counts = {"overdue": 0, "scheduled": 0, "orphans": 0}

    def attempt(kind: str, meeting: str | None, action: Callable[[], int]) -> None:
        # One bad row must not stop the others (PostgreSQL retries one meeting at a time).
        conn.execute("SAVEPOINT scheduler_repair_item")
        try:
            counts[kind] += action()
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK TO scheduler_repair_item")
            errors.append({"meeting_id": meeting or "", "error": str(exc)})
        conn.execute("RELEASE scheduler_repair_item")

    if plan.overdue:

        def complete() -> int:
            # one set, a meeting whose completion is rejected recorded as failing and left out
            # until its retry time (sqlite/safety.py); the jobs of those completed go (their
            # trigger removed them, unless it is missing)
            done = complete_due(conn, now, plan.overdue, path=path)
            conn.execute(
                """DELETE FROM cron_job
                    WHERE jobname IN (
                          SELECT :prefix || j.value FROM json_each(:ids) j
                           WHERE NOT EXISTS (SELECT 1 FROM meetings m
                                              WHERE m.id = j.value AND m.status = :pending))""",
                {
                    "prefix": JOB_PREFIX,
                    "ids": json.dumps(plan.overdue),
                    "pending": pending_status(conn),
                },
            )
            return done

        attempt("overdue", None, complete)
    # the failing entries of meetings gone, or set to another status by the application
    forget_meetings(conn)
    for meeting in plan.to_schedule:

        def schedule(meeting: str = meeting) -> int:
            register_jobs(conn, [meeting])
            return 1

        attempt("scheduled", meeting, schedule)
    for jobid, name in plan.orphans:

        def remove(jobid: int = jobid) -> int:
            return conn.execute("DELETE FROM cron_job WHERE jobid = ?", (jobid,)).rowcount

        attempt("orphans", meeting_id(name), remove)
    return _with_beyond(
        RecoverReport(
            total_meetings=plan.total,
            jobs_scheduled=counts["scheduled"],
            jobs_already_exist=plan.existing,
            overdue_completed=counts["overdue"],
            orphans_removed=counts["orphans"],
            errors=errors,
            success=not errors,
            dry_run=False,
        ),
        plan,
    )


def skipped_meetings_report(conn: sqlite3.Connection, *, dry_run: bool) -> RecoverReport:
    """Twin of scheduler.skipped_meetings_report() in sql/postgres/40_recovery.sql: the meetings'
    part of a report while meetings is paused by name: the pending meetings read, nothing
    done."""
    row = conn.execute(
        "SELECT count(*) FROM meetings WHERE status = ?", (pending_status(conn),)
    ).fetchone()
    return RecoverReport(
        total_meetings=int(row[0]),
        jobs_scheduled=0,
        jobs_already_exist=0,
        overdue_completed=0,
        orphans_removed=0,
        errors=[],
        success=True,
        dry_run=dry_run,
    )


def repair_all(
    conn: sqlite3.Connection, now: datetime, *, dry_run: bool, path: str = "recover"
) -> RecoverReport:
    """Twin of scheduler.repair_all() in sql/postgres/40_recovery.sql: recover and reconcile of
    every transition. The meetings' report (:func:`repair`, or :func:`skipped_meetings_report`
    while meetings is paused by name), then the repair of every other transition not paused by
    name (:func:`scheduler_admin.sqlite.transitions.repair_transitions`, each in its own
    savepoint): the key ``transitions`` ({name: TransitionRepair}) when one was repaired, the
    key ``paused_transitions`` ([names], meetings included) when a transition is paused by name,
    their errors added. A report with neither keeps exactly the keys of RecoverReport."""
    if paused_by_name(conn, BUILTIN):
        report = skipped_meetings_report(conn, dry_run=dry_run)
    else:
        report = repair(conn, now, dry_run=dry_run, path=path)
    repaired, failed = transitions.repair_transitions(
        conn, now, dry_run=report["dry_run"], path=path
    )
    if not report["dry_run"]:
        # the failing entries of transitions removed meanwhile
        safety.forget_unregistered(conn)
    if failed:
        report["errors"] += failed
        report["success"] = False
    extra = cast(dict[str, Any], report)
    if repaired:
        extra["transitions"] = repaired
    paused = transitions.paused_transitions(conn)
    if paused:
        extra["paused_transitions"] = paused
    return report


def _require_active(conn: sqlite3.Connection, transition: str | None) -> None:
    """Recovery registers jobs: refused while the scheduler, or the transition, is paused."""
    if not is_enabled(conn):
        raise InvalidInput(
            "the scheduler is paused: recovery would register jobs",
            hint="Run `scheduler-admin resume`, which also recovers.",
        )
    if transition is not None and paused_by_name(conn, transition):
        raise InvalidInput(
            f"transition {transition} is paused: recovery would register jobs",
            hint=f"Run scheduler-admin resume --transition {transition}, which also recovers.",
        )


def recover(
    conn: sqlite3.Connection,
    now: datetime,
    *,
    dry_run: bool = False,
    transition: str | None = None,
) -> Recovered:
    """Twin of scheduler.recover() in sql/postgres/40_recovery.sql: every transition (None; those
    paused by name are skipped), meetings alone, or the one named (a TransitionReport).
    Refused while paused (the scheduler, or the transition named), except as a dry run."""
    if transition is not None:
        transitions.transition_target(conn, transition)
    if not dry_run:
        _require_active(conn, transition)
    if transition is None:
        return repair_all(conn, now, dry_run=dry_run)
    if transition == BUILTIN:
        return repair(conn, now, dry_run=dry_run)
    return transitions.transition_report(conn, transition, now, dry_run=dry_run)


def delete_old_runs(conn: sqlite3.Connection, now: datetime, transition: str | None = None) -> int:
    """The history pruning of scheduler.reconcile() in sql/postgres/40_recovery.sql: the runs of
    our jobs (of every transition, None, or of the one named) older than the retention."""
    cutoff = now - timedelta(days=retention_days(conn))
    condition, params = _commands_sql("command", transition)
    return conn.execute(
        f"""DELETE FROM cron_job_run_details
             WHERE julianday(end_time) < julianday(:cutoff) AND {condition}""",
        {**params, "cutoff": to_db_time(cutoff)},
    ).rowcount


def repair_and_prune(
    conn: sqlite3.Connection, now: datetime, *, others: bool = True
) -> ReconcileReport:
    """scheduler.reconcile() in sql/postgres/40_recovery.sql once it knows it is not paused: repair
    (events of path ``reconcile``), then delete the run history and the completion events older
    than the retention (the events' counts kept in scheduler_metric_totals). ``others``: the
    other transitions too, and their run history (False: meetings alone)."""
    report = (
        repair_all(conn, now, dry_run=False, path="reconcile")
        if others
        else repair(conn, now, dry_run=False, path="reconcile")
    )
    return ReconcileReport(
        **report,
        history_deleted=delete_old_runs(conn, now, None if others else BUILTIN),
        events_deleted=purge_events(conn, now, retention_days(conn)),
    )


def reconcile(conn: sqlite3.Connection, now: datetime, transition: str | None = None) -> Reconciled:
    """Twin of scheduler.reconcile() in sql/postgres/40_recovery.sql: every transition (None; those
    paused by name skipped), meetings alone, or the one named (its repair and its jobs' run
    history). Paused (the scheduler, or the transition named): changes nothing."""
    if transition is not None:
        transitions.transition_target(conn, transition)
    if not is_enabled(conn) or (transition is not None and paused_by_name(conn, transition)):
        return Paused(paused=True)
    if transition is None:
        return repair_and_prune(conn, now)
    if transition == BUILTIN:
        return repair_and_prune(conn, now, others=False)
    report = transitions.transition_report(conn, transition, now, dry_run=False, path="reconcile")
    return TransitionReconcileReport(
        **report, history_deleted=delete_old_runs(conn, now, transition)
    )
