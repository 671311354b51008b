"""``scheduler-admin doctor`` on SQLite: checks with a fix for each failing one.

No SQL twin, and so not in :mod:`scheduler_admin.sqlite`: on PostgreSQL too the checks are Python
(:mod:`scheduler_admin.backends.functions`), and those a ``health()`` result answers are the same
function on both (:func:`scheduler_admin.backends.checks.health_checks`); here they read the twins
(:func:`scheduler_admin.sqlite.health.health` and the registry of transitions), with SQLite's own
fixes and the emulated worker.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from scheduler_admin.backends.checks import check as make_check
from scheduler_admin.backends.checks import health_checks
from scheduler_admin.core import BUILTIN, Check, plural
from scheduler_admin.exceptions import NotMigrated
from scheduler_admin.sqlite import health as sqlite_health
from scheduler_admin.sqlite import recovery, transitions
from scheduler_admin.sqlite.connection import (
    TRIGGERS,
    Database,
    from_db_time,
    iso,
    missing_objects,
)
from scheduler_admin.sqlite.functions import is_enabled, statuses

WORKER_STALE_AFTER = sqlite_health.WORKER_STALE_AFTER


def paused_check(name: str) -> Check:
    """A transition paused by name: a failing check saying how to resume it."""
    return make_check(
        f"transition {name}: paused",
        False,
        "paused by name: its triggers register no job and its jobs change nothing",
        f"Run `scheduler-admin resume --transition {name}` (it also recovers).",
    )


def transition_checks(
    conn: sqlite3.Connection, spec: transitions.Spec, now: datetime
) -> list[Check]:
    """The checks of a registered transition other than meetings, from
    :func:`scheduler_admin.sqlite.transitions.transition_health` (its table gone: two failing
    checks saying so): its triggers are there, every pending row not yet due has its job and no
    job of its prefix is an orphan, and whether it is paused by name."""
    name = spec.name
    recover_fix = f"Run `scheduler-admin recover --transition {name}`"
    if not transitions.table_exists(conn, spec.table):
        gone = f"its table {spec.table} does not exist"
        remove_fix = (
            f"Remove it (`scheduler-admin transitions remove {name}`) or restore the table."
        )
        checks = [
            make_check(f"transition {name}: triggers", False, gone, remove_fix),
            make_check(f"transition {name}: jobs", False, gone, remove_fix),
        ]
    else:
        facts = transitions.transition_health(conn, name, now)
        missing = facts["missing_triggers"]
        detail = (
            f"{facts['pending_rows']} pending in {facts['table']}, {facts['missing_jobs']} "
            f"without their job (missing or wrong), {plural(facts['orphan_jobs'], 'orphan job')}"
        )
        if facts["unreadable_rows"]:
            detail += f", {facts['unreadable_rows']} with an unreadable {spec.time}"
        checks = [
            make_check(
                f"transition {name}: triggers",
                not missing,
                f"{facts['triggers']} of {len(transitions.TRIGGER_KINDS)} triggers on "
                f"{facts['table']} present"
                + (f" (missing: {', '.join(missing)})" if missing else ""),
                f"{recover_fix}: it re-creates them.",
            ),
            make_check(
                f"transition {name}: jobs",
                not (facts["missing_jobs"] or facts["orphan_jobs"] or facts["unreadable_rows"]),
                detail,
                f"{recover_fix} (and fix the {spec.time} of the rows it reports).",
            ),
        ]
    if spec.paused:
        checks.append(paused_check(name))
    return checks


def doctor(db: Database, now: datetime, transition: str | None = None) -> list[Check]:
    """Checks with a fix for each failing one; an unmigrated database is a failing check.
    ``transition``: None, every check (today's, then those of each other registered
    transition); meetings, today's; another name, the basic ones and that transition's."""
    checks: list[Check] = []

    def check(name: str, ok: bool, detail: str, fix: str) -> bool:
        checks.append(Check(name=name, ok=ok, detail=detail, fix=None if ok else fix))
        return ok

    migrate_fix = "Run `scheduler-admin migrate` (or `alembic upgrade head`)."
    try:
        with db.connection(check_schema=False) as conn:
            missing = missing_objects(conn)
    except NotMigrated as exc:
        check("migrated", False, exc.message, migrate_fix)
        return checks
    if not check(
        "migrated",
        not missing,
        f"{db.path}: scheduler tables present"
        if not missing
        else f"{db.path} is not migrated: missing {', '.join(missing)}",
        migrate_fix,
    ):
        return checks
    if transition is not None and transition != BUILTIN:
        with db.transaction(write=False) as conn:
            spec = transitions.spec_of(conn, transition)
            enabled = is_enabled(conn)
            check(
                "scheduler enabled",
                enabled,
                "enabled" if enabled else "paused",
                "Run `scheduler-admin resume`.",
            )
            return checks + transition_checks(conn, spec, now)
    with db.transaction(write=False) as conn:
        if transition is not None:
            transitions.transition_target(conn, transition)
        meetings_paused = transitions.paused_transitions(conn)[:1] == [BUILTIN]
        others: list[Check] = []
        if transition is None:
            for spec in transitions.other_transitions(conn):
                others += transition_checks(conn, spec, now)
        present = {
            str(row[0])
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'meetings'"
            )
        }
        pending = statuses(conn).pending
        plan = recovery.repair_plan(conn, now)
        health = sqlite_health.health(conn, now, plan)
        _, reconcile_detail = sqlite_health.reconcile_job_ok(conn)
        worker = conn.execute(
            "SELECT heartbeat_at, pid, hostname FROM scheduler_worker WHERE singleton = 1"
        ).fetchone()
    missing_triggers = [name for name in TRIGGERS if name not in present]
    check(
        "triggers on meetings",
        not missing_triggers,
        f"{len(TRIGGERS) - len(missing_triggers)} of {len(TRIGGERS)} triggers present"
        + (f" (missing: {', '.join(missing_triggers)})" if missing_triggers else ""),
        f"Re-apply them: sqlite3 {db.path} < sql/sqlite/30_triggers.sql, then run "
        "`scheduler-admin recover`.",
    )
    wrong = len(plan.to_schedule) - plan.missing
    detail = f"{plan.total} {pending}, {plan.missing} without a job, {wrong} with a wrong job"
    if plan.errors:
        detail += f", {len(plan.errors)} with an unreadable end_time"
    # a wrong job or an unreadable end time fails the check here too
    counted = {**health, "missing_jobs": len(plan.to_schedule) + len(plan.errors)}
    checks += health_checks(
        counted,
        [],
        details={"reconcile job": reconcile_detail, "every upcoming meeting has a job": detail},
        fixes={
            "reconcile job": f"Re-create it: sqlite3 {db.path} < sql/sqlite/60_jobs.sql.",
            "every upcoming meeting has a job": "Run `scheduler-admin recover` (and fix the "
            "end_time of the meetings it reports).",
            "no overdue meetings": "Start the worker (`scheduler-admin worker`), or run "
            "`scheduler-admin recover`.",
            "failed runs retried (24 h)": "See `scheduler-admin history --failed`.",
        },
    )
    heartbeat = None if worker is None else from_db_time(worker["heartbeat_at"])
    if heartbeat is None:
        worker_ok, worker_detail = False, "the worker has never run on this database"
    else:
        seen = f"last heartbeat {iso(heartbeat)}"
        where = f"pid {worker['pid']} on {worker['hostname']}"
        # on this host a stopped worker is known at once; elsewhere its heartbeat tells
        if sqlite_health.worker_process_gone(worker["pid"], worker["hostname"]):
            worker_ok = False
            worker_detail = f"stopped (process {worker['pid']} is gone; {seen})"
        else:
            worker_ok = now - heartbeat <= WORKER_STALE_AFTER
            worker_detail = f"{seen} ({where})"
    check(
        "worker running",
        worker_ok,
        worker_detail,
        "Run `scheduler-admin worker` (or start CronWorker in the application): on SQLite "
        "nothing else runs the jobs.",
    )
    if meetings_paused:
        checks.append(paused_check(BUILTIN))
    return checks + others
