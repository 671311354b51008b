"""The interpreter of job commands: what PostgreSQL does with the SQL text pg_cron hands it.

A job's ``command`` (built by the view ``scheduler_meeting_jobs`` and by ``60_jobs.sql``) is one
of two calls:

* ``complete_meeting('<id>')``: :func:`scheduler_admin.sqlite.functions.complete_meeting`
  (``scheduler.complete_meeting()``); the id is an SQL literal (quotes doubled);
* ``reconcile()``: :func:`scheduler_admin.sqlite.recovery.reconcile` (``scheduler.reconcile()``;
  the transitions paused by name are skipped, meetings included);
* ``complete_transition('<name>', '<key>')``: the job of a row of a registered transition,
  :func:`scheduler_admin.sqlite.transitions.complete_transition`
  (``scheduler.complete_transition()``); both arguments SQL literals (quotes doubled).

:func:`execute` runs one inside the caller's transaction and returns what the run did, in the
words a run's ``return_message`` keeps. Anything else is an unknown command: a failed run. A
job whose own row is due but could not be completed (recorded as failing, revision 0009) is a
failed run too, which keeps what it did for the other rows; the reconcile job is not failed by
such a row (doctor and the metrics show it).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from scheduler_admin.core import BUILTIN, RecoverReport, plural, recover_summary
from scheduler_admin.sqlite import recovery, transitions
from scheduler_admin.sqlite.functions import (
    RECONCILE_COMMAND,
    Completion,
    complete_meeting,
    is_enabled,
    parse_complete_command,
    paused_by_name,
)

PAUSED = "scheduler paused: nothing done"


def paused_message(name: str) -> str:
    """The return message of a job of a transition paused by name (revision 0006)."""
    return f"transition {name} paused: nothing done"


@dataclass(frozen=True)
class Outcome:
    """What one command did."""

    ok: bool  # succeeded (else the run is recorded as failed)
    message: str  # the run's return_message
    completed: int = 0  # meetings marked done


def completion_message(done: Completion, noun: str = "meeting") -> str:
    """What a ``complete_meeting`` run did, in one line (``noun`` "row" for a
    ``complete_transition`` run)."""
    if done.failing is not None:
        text = f"{noun} failed to complete: {done.failing}"
        others = f"completed {plural(done.completed, 'other ' + noun)}"
        return text + (f"; {others}" if done.completed else "")
    if done.this_one:
        return f"completed {plural(done.completed, noun)} (this one included)"
    others = f"completed {plural(done.completed, 'other ' + noun)}"
    if done.pending:
        return f"{noun} not due yet: " + (others if done.completed else "nothing done")
    state = f"{noun} gone" if done.status is None else f"{noun} already {done.status}"
    text = state + ("; job removed" if done.job_removed else "; no job left to remove")
    return text + (f"; {others}" if done.completed else "")


def transitions_summary(report: RecoverReport) -> str:
    """What the repair did for each registered transition, appended to the summary, and which
    ones it skipped because they are paused by name (nothing when none is registered)."""
    extra = cast(dict[str, Any], report)
    text = "".join(
        f"; transition {name}: {plural(r['total'], 'pending row')}, {r['jobs_scheduled']} "
        f"scheduled, {r['jobs_already_exist']} already there, {r['overdue_completed']} overdue "
        f"completed, {plural(r['orphans_removed'], 'orphan')} removed"
        for name, r in extra.get("transitions", {}).items()
    )
    paused = extra.get("paused_transitions") or []
    return text + (f"; paused: {', '.join(paused)}" if paused else "")


def execute(conn: sqlite3.Connection, command: str, now: datetime) -> Outcome:
    """Run a job's command inside an open transaction on ``conn``, at ``now``."""
    if command == RECONCILE_COMMAND:
        if not is_enabled(conn):
            return Outcome(True, PAUSED)
        report = recovery.repair_and_prune(conn, now)
        summary = recover_summary(report) + transitions_summary(report)
        if report["errors"]:
            details = "; ".join(
                f"{e['meeting_id']}: {e['error']}" if e.get("meeting_id") else e["error"]
                for e in report["errors"][:5]
            )
            return Outcome(False, f"{summary}: {details}", report["overdue_completed"])
        return Outcome(True, summary, report["overdue_completed"])
    row = transitions.parse_transition_command(command)
    if row is not None:
        if not is_enabled(conn):
            return Outcome(True, PAUSED)
        name, key = row
        if paused_by_name(conn, name):
            return Outcome(True, paused_message(name))
        moved = transitions.complete_transition(conn, name, key, now)
        # its own row due but rejected: a failed run (what it did for the others is kept)
        return Outcome(
            moved.failing is None, completion_message(moved, noun="row"), moved.completed
        )
    meeting = parse_complete_command(command)
    if meeting is None:
        return Outcome(
            False,
            f"unknown command {command!r}: expected complete_meeting('<id>'), "
            "complete_transition('<name>', '<key>') or reconcile()",
        )
    if not is_enabled(conn):
        return Outcome(True, PAUSED)
    if paused_by_name(conn, BUILTIN):
        return Outcome(True, paused_message(BUILTIN))
    done = complete_meeting(conn, meeting, now)
    return Outcome(done.failing is None, completion_message(done), done.completed)
