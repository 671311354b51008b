"""The Python twin of ``sql/postgres/40_admin.sql``: what ``scheduler-admin`` does on SQLite.

Every function takes an open connection and runs inside the caller's transaction
(:class:`scheduler_admin.backends.sqlite.SqliteBackend` opens them); those that depend on the
time take ``now`` (the backend's clock), which SQL views cannot take. Results have the shapes of
:mod:`scheduler_admin.core`, as on PostgreSQL. The set logic (which upcoming meeting has
a right, wrong or missing job, which jobs are orphans) is in the views of
``sql/sqlite/20_views.sql``.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from scheduler_admin import cron
from scheduler_admin.core import (
    BUILTIN,
    JOB_PREFIX,
    Event,
    Job,
    Paused,
    Reconciled,
    ReconcileReport,
    Recovered,
    RecoverReport,
    Run,
    TransitionReconcileReport,
    require_aware,
)
from scheduler_admin.exceptions import InvalidInput, MeetingNotFound
from scheduler_admin.sqlite import failing, transitions
from scheduler_admin.sqlite.connection import (
    UTC,
    from_db_time,
    iso,
    iso_text,
    to_db_time,
    utcnow,
)
from scheduler_admin.sqlite.events import EVENT_COLUMNS, event_row, purge_events
from scheduler_admin.sqlite.functions import (
    RECONCILE_COMMAND,
    RECONCILE_JOB,
    RECONCILE_SCHEDULE,
    Statuses,
    complete_meetings,
    forget_meetings,
    is_active,
    is_enabled,
    job_name,
    job_name_of_command,
    meeting_id,
    paused_by_name,
    register_jobs,
    statuses,
    unregister_jobs,
)

log = logging.getLogger(__name__)

# A meeting's job fires at the start of the minute after its end time: health and doctor allow
# this much delay before an upcoming meeting past its end time counts as a problem.
OVERDUE_GRACE = timedelta(minutes=2)
_OURS_SQL = "substr({col}, 1, 15) = 'meeting-status-'"
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


# -- list_jobs ----------------------------------------------------------------------------------


def next_run(schedule: str, after: datetime) -> datetime | None:
    """Twin of scheduler.next_run() in sql/postgres/40_admin.sql (None: never, or unreadable)."""
    try:
        return cron.next_run(schedule, after)
    except cron.CronError:
        return None


_JOBS_SQL = f"""
    SELECT j.jobid, j.jobname, j.schedule, j.command, j.active, m.status, m.end_time
      FROM cron_job j
      LEFT JOIN meetings m
        ON j.jobname <> '{RECONCILE_JOB}' AND m.id = substr(j.jobname, 16)
     WHERE {_OURS_SQL.format(col="j.jobname")}
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
    )


def list_jobs(conn: sqlite3.Connection, now: datetime, transition: str | None = None) -> list[Job]:
    """Twin of scheduler.list_jobs() in sql/postgres/40_admin.sql (by next run, then name): the
    jobs of every transition (None; meetings' with the reconcile job) or of the one named."""
    if transition is not None:
        transitions.require(conn, transition)
    jobs: list[Job] = []
    if transition in (None, BUILTIN):
        jobs += [_job(row, now) for row in conn.execute(_JOBS_SQL)]
    if transition != BUILTIN:
        jobs += transitions.transition_jobs(conn, now, transition)
    jobs.sort(key=lambda job: (job["next_run"] is None, job["next_run"] or "", job["job_name"]))
    return jobs


def meeting_job(conn: sqlite3.Connection, meeting: str, now: datetime) -> Job | None:
    """The row of scheduler.list_jobs() in sql/postgres/40_admin.sql for one meeting."""
    row = conn.execute(_JOBS_SQL + " AND j.jobname = ?", (job_name(meeting),)).fetchone()
    return None if row is None else _job(row, now)


# -- repair, recover, reconcile -----------------------------------------------------------------


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


def repair_plan(conn: sqlite3.Connection, now: datetime) -> RepairPlan:
    """The comparison at the start of scheduler.repair() in sql/postgres/40_admin.sql (no write).

    ``scheduler_upcoming_jobs`` compares every upcoming meeting's job with the one it should
    have, ``scheduler_orphan_jobs`` lists the jobs no upcoming meeting owns; this splits the
    upcoming meetings by ``now``: overdue ones are completed, not scheduled.
    """
    plan = RepairPlan()
    for row in conn.execute(
        "SELECT meeting_id, end_time, end_utc, schedule, job_ok FROM scheduler_upcoming_jobs"
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
    ]
    return plan


def repair(
    conn: sqlite3.Connection,
    now: datetime,
    *,
    dry_run: bool,
    path: str = "recover",
    others: bool = True,
) -> RecoverReport:
    """Twin of scheduler.repair() in sql/postgres/40_admin.sql (each item in its own savepoint).

    ``path``: what the completion events of the overdue meetings say did it (``recover`` for
    recover, resume and configure_statuses, ``reconcile`` for the reconcile job). ``others``:
    the other transitions too (not paused by name), each under the key ``transitions``; the
    transitions paused by name are listed under ``paused_transitions``. Meetings paused by name,
    in a repair of every transition: its pending meetings are counted, nothing else is done for
    them (``others`` False is meetings named alone, which recover refuses while paused but for
    a dry run, and reports then what it would do)."""
    plan = repair_plan(conn, now)
    if others and paused_by_name(conn, BUILTIN):
        return _with_transitions(
            RecoverReport(
                total_meetings=plan.total,
                jobs_scheduled=0,
                jobs_already_exist=0,
                overdue_completed=0,
                orphans_removed=0,
                errors=[],
                success=True,
                dry_run=dry_run,
            ),
            conn,
            now,
            others=others,
            path=path,
        )
    errors = list(plan.errors)
    if dry_run:
        return _with_transitions(
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
            conn,
            now,
            others=others,
            path=path,
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
            # until its retry time (sqlite/failing.py); the jobs of those completed go (their
            # trigger removed them, unless it is missing)
            done = complete_meetings(conn, now, plan.overdue, path=path)
            conn.execute(
                """DELETE FROM cron_job
                    WHERE jobname IN (
                          SELECT :prefix || j.value FROM json_each(:ids) j
                           WHERE NOT EXISTS (SELECT 1 FROM meetings m
                                              WHERE m.id = j.value AND m.status = :pending))""",
                {
                    "prefix": JOB_PREFIX,
                    "ids": json.dumps(plan.overdue),
                    "pending": statuses(conn).pending,
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
    # the other transitions are repaired afterwards (_with_transitions)
    return _with_transitions(
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
        conn,
        now,
        others=others,
        path=path,
    )


def _with_transitions(
    report: RecoverReport,
    conn: sqlite3.Connection,
    now: datetime,
    *,
    others: bool,
    path: str = "recover",
) -> RecoverReport:
    """The meetings' report, then (``others``) the repair of every registered transition not
    paused by name (sqlite/transitions.py, each in its own savepoint): the key ``transitions``
    ({name: TransitionRepair}) when one was repaired, the key ``paused_transitions`` ([names],
    meetings included) when a transition is paused by name, their errors added. A report with
    neither keeps exactly the keys of RecoverReport."""
    if not others:
        return report
    repaired, failed = transitions.repair_all(conn, now, dry_run=report["dry_run"], path=path)
    if not report["dry_run"]:
        # the failing entries of transitions removed meanwhile
        failing.forget_unregistered(conn)
    if failed:
        report["errors"] += failed
        report["success"] = False
    extra = cast(dict[str, Any], report)
    if repaired:
        extra["transitions"] = repaired
    paused = transitions.paused_names(conn)
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
    """Twin of scheduler.recover() in sql/postgres/40_admin.sql: every transition (None; those
    paused by name are skipped), meetings alone, or the one named (a TransitionReport).
    Refused while paused (the scheduler, or the transition named), except as a dry run."""
    if transition is not None:
        transitions.require(conn, transition)
    if not dry_run:
        _require_active(conn, transition)
    if transition is None:
        return repair(conn, now, dry_run=dry_run)
    if transition == BUILTIN:
        return repair(conn, now, dry_run=dry_run, others=False)
    return transitions.transition_report(conn, transition, now, dry_run=dry_run)


def delete_old_history(
    conn: sqlite3.Connection, now: datetime, transition: str | None = None
) -> int:
    """The history pruning of scheduler.reconcile() in sql/postgres/40_admin.sql: the runs of
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
    """scheduler.reconcile() in sql/postgres/40_admin.sql once it knows it is not paused: repair
    (events of path ``reconcile``), then delete the run history and the completion events older
    than the retention (the events' counts kept in scheduler_metric_totals). ``others``: the
    other transitions too, and their run history (False: meetings alone)."""
    report = repair(conn, now, dry_run=False, path="reconcile", others=others)
    return ReconcileReport(
        **report,
        history_deleted=delete_old_history(conn, now, None if others else BUILTIN),
        events_deleted=purge_events(conn, now, retention_days(conn)),
    )


def reconcile(conn: sqlite3.Connection, now: datetime, transition: str | None = None) -> Reconciled:
    """Twin of scheduler.reconcile() in sql/postgres/40_admin.sql: every transition (None; those
    paused by name skipped), meetings alone, or the one named (its repair and its jobs' run
    history). Paused (the scheduler, or the transition named): changes nothing."""
    if transition is not None:
        transitions.require(conn, transition)
    if not is_enabled(conn) or (transition is not None and paused_by_name(conn, transition)):
        return Paused(paused=True)
    if transition is None:
        return repair_and_prune(conn, now)
    if transition == BUILTIN:
        return repair_and_prune(conn, now, others=False)
    report = transitions.transition_report(conn, transition, now, dry_run=False, path="reconcile")
    return TransitionReconcileReport(
        **report, history_deleted=delete_old_history(conn, now, transition)
    )


# -- one meeting ----------------------------------------------------------------------------------


def _status(conn: sqlite3.Connection, meeting: str) -> str | None:
    row = conn.execute("SELECT status FROM meetings WHERE id = ?", (meeting,)).fetchone()
    return None if row is None else str(row[0])


def schedule_meeting(
    conn: sqlite3.Connection, meeting: str, end_time: datetime, now: datetime
) -> dict[str, Any]:
    """Twin of scheduler.schedule_meeting() in sql/postgres/40_admin.sql."""
    # Milliseconds, what the schema stores, a finer fraction rounded up so that the job never
    # fires before the end time. (The triggers round a finer fraction up too, but a fraction of
    # .9995 s or more lost its second there: SQLite's %S truncates where %f rounds.)
    utc = require_aware(end_time).astimezone(UTC)
    if utc.microsecond % 1000:
        utc += timedelta(microseconds=1000 - utc.microsecond % 1000)
    stored = to_db_time(utc)
    pending = statuses(conn).pending
    status = _status(conn, meeting)
    if status is None:
        raise MeetingNotFound(meeting)
    if status != pending:
        raise InvalidInput(
            f"meeting {meeting} is {status}, not {pending}: nothing to schedule",
            hint=f"Set its status back to {pending} first.",
        )
    try:
        conn.execute("UPDATE meetings SET end_time = ? WHERE id = ?", (stored, meeting))
    except sqlite3.IntegrityError as exc:
        raise InvalidInput(str(exc)) from exc
    status = _status(conn, meeting)
    if status == pending and is_active(conn):
        # The triggers did it unless the job was missing already; make sure.
        register_jobs(conn, [meeting])
    return {"meeting_id": meeting, "status": status, "job": meeting_job(conn, meeting, now)}


def cancel_meeting(conn: sqlite3.Connection, meeting: str) -> dict[str, Any]:
    """Twin of scheduler.cancel_meeting() in sql/postgres/40_admin.sql (a stray job goes too)."""
    status = _status(conn, meeting)
    if status is None:
        raise MeetingNotFound(meeting)
    count = "SELECT count(*) FROM cron_job WHERE jobname = ?"
    before = int(conn.execute(count, (job_name(meeting),)).fetchone()[0])
    words = statuses(conn)
    if status == words.pending:
        conn.execute("UPDATE meetings SET status = ? WHERE id = ?", (words.cancelled, meeting))
    unregister_jobs(conn, [meeting])
    after = int(conn.execute(count, (job_name(meeting),)).fetchone()[0])
    return {"meeting_id": meeting, "status": _status(conn, meeting), "jobs_removed": before - after}


# -- the words of meetings.status --------------------------------------------------------------

STATUS_HINT = (
    "Give the words the table uses (alembic -x pending_status=... -x done_status=... "
    "-x cancelled_status=..., or the variables SCHEDULER_PENDING_STATUS, SCHEDULER_DONE_STATUS, "
    "SCHEDULER_CANCELLED_STATUS), or change the constraint."
)

_TOKEN = re.compile(
    r"""(?P<space>\s+|--[^\n]*|/\*.*?(?:\*/|\Z))
      | (?P<string>'(?:[^']|'')*')
      | (?P<quoted>"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\])
      | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
      | (?P<other>.)""",
    re.S | re.X,
)


class StatusCheck(NamedTuple):
    """A CHECK constraint of the meetings table, as its CREATE TABLE statement writes it."""

    name: str  # the constraint's name, "(unnamed)" without one
    definition: str  # CHECK (<expression>), on one line
    expression: str


def _unquote(token: str) -> str:
    if token[:1] in ('"', "`", "["):
        inner = token[1:-1]
        return inner if token[0] == "[" else inner.replace(token[0] * 2, token[0])
    return token


def status_checks(conn: sqlite3.Connection) -> Iterator[StatusCheck]:
    """Every CHECK constraint in the CREATE TABLE statement of meetings (column and table
    constraints; SQLite keeps the statement as written and has no catalog of constraints)."""
    row = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'meetings'"
    ).fetchone()
    sql = "" if row is None or row[0] is None else str(row[0])
    tokens = [
        (m.lastgroup, m.group(), m.start(), m.end())
        for m in _TOKEN.finditer(sql)
        if m.lastgroup != "space"
    ]
    for index, (kind, text, _, _) in enumerate(tokens):
        if kind != "word" or text.upper() != "CHECK" or index + 1 >= len(tokens):
            continue
        if tokens[index + 1][1] != "(":
            continue
        depth, close = 0, None
        for other in tokens[index + 1 :]:
            depth += {"(": 1, ")": -1}.get(other[1], 0) if other[0] == "other" else 0
            if depth == 0:
                close = other
                break
        if close is None:
            continue
        expression = sql[tokens[index + 1][3] : close[2]].strip()
        named = index >= 2 and tokens[index - 2][1].upper() == "CONSTRAINT"
        yield StatusCheck(
            name=_unquote(tokens[index - 1][1]) if named else "(unnamed)",
            definition="CHECK (" + " ".join(expression.split()) + ")",
            expression=expression,
        )


def status_allowed(conn: sqlite3.Connection, check: StatusCheck, word: str) -> bool | None:
    """Whether a constraint lets meetings.status hold ``word``: its own expression evaluated on a
    one-row relation whose column status is the word (a parameter, never spliced in); a check
    passes unless false. None: the expression reads other columns (not a check of the status
    alone, as on PostgreSQL, which compares only those)."""
    try:
        row = conn.execute(
            f"SELECT ({check.expression}) IS NULL OR ({check.expression}) "
            "FROM (SELECT ? AS status) AS meetings",
            (word,),
        ).fetchone()
    except sqlite3.OperationalError:
        return None
    return bool(row[0])


def quote_literal(text: str) -> str:
    """PostgreSQL's quote_literal(), for messages that read the same on both backends."""
    quoted = "'" + text.replace("'", "''").replace("\\", "\\\\") + "'"
    return "E" + quoted if "\\" in text else quoted


def left_alone(conn: sqlite3.Connection, words: Statuses) -> dict[str, int]:
    """The statuses of meetings that are none of the three words, with their counts (null as
    "null"), keys ordered as PostgreSQL's jsonb prints them (shorter first)."""
    rows = conn.execute(
        """SELECT coalesce(CAST(status AS TEXT), 'null'), count(*) FROM meetings
            WHERE status IS NULL OR CAST(status AS TEXT) NOT IN (?, ?, ?)
            GROUP BY 1""",
        tuple(words),
    ).fetchall()
    counts = {str(row[0]): int(row[1]) for row in rows}
    jsonb_order = sorted(counts, key=lambda key: (len(key.encode()), key.encode()))
    return {key: counts[key] for key in jsonb_order}


def configure_statuses(
    conn: sqlite3.Connection,
    pending: str | None = None,
    done: str | None = None,
    cancelled: str | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Twin of scheduler.configure_statuses() in sql/postgres/40_admin.sql.

    Sets the words of ``meetings.status`` the scheduler acts on, for an application whose table
    uses its own (None keeps a word). Each word must satisfy every CHECK constraint of meetings
    that reads only its status column, else :class:`InvalidInput` names the constraint and
    nothing is changed. The meetings whose status is none of the three are reported (left
    alone: no job, never completed), in the words of PostgreSQL's notice, logged at INFO. Then,
    if the words changed and the scheduler is not paused, it repairs as recover does, so that
    meetings with the new pending word get their jobs at once.
    """
    now = now or utcnow()
    current = statuses(conn)
    words = Statuses(
        current.pending if pending is None else pending,
        current.done if done is None else done,
        current.cancelled if cancelled is None else cancelled,
    )
    if "" in words or len(set(words)) < len(words):
        raise InvalidInput(
            "the pending, done and cancelled statuses must be three different words, got "
            + ", ".join(quote_literal(word) for word in words)
        )
    for check in status_checks(conn):
        for word in words:
            if status_allowed(conn, check, word) is False:
                raise InvalidInput(
                    f"status {quote_literal(word)} is not allowed by the constraint "
                    f"{check.name} of meetings ({check.definition})",
                    hint=STATUS_HINT,
                )
    others = left_alone(conn, words)
    repaired: RecoverReport | None = None
    if words != current:
        conn.execute(
            """UPDATE scheduler_statuses
                  SET pending_status = ?, done_status = ?, cancelled_status = ?
                WHERE singleton = 1""",
            tuple(words),
        )
        conn.execute(
            "UPDATE scheduler_settings SET updated_at = ? WHERE singleton = 1", (to_db_time(now),)
        )
        if is_enabled(conn):
            repaired = repair(conn, now, dry_run=False)
    log.info(
        "meeting statuses: pending %s, done %s, cancelled %s; left alone: %s",
        quote_literal(words.pending),
        quote_literal(words.done),
        quote_literal(words.cancelled),
        json.dumps(others, ensure_ascii=False) if others else "none",
    )
    return {
        "pending_status": words.pending,
        "done_status": words.done,
        "cancelled_status": words.cancelled,
        "left_alone": others,
        "repair": repaired,
    }


def _set_enabled(conn: sqlite3.Connection, enabled: bool, now: datetime) -> None:
    conn.execute(
        """INSERT INTO scheduler_settings (singleton, enabled, updated_at) VALUES (1, ?, ?)
           ON CONFLICT (singleton) DO UPDATE
              SET enabled = excluded.enabled, updated_at = excluded.updated_at""",
        (int(enabled), to_db_time(now)),
    )


def _set_paused(conn: sqlite3.Connection, transition: str | None, paused: bool) -> None:
    """Set the paused flag of one transition (or of every one, None)."""
    conn.execute(
        "UPDATE scheduler_transitions SET paused = :paused "
        "WHERE (:name IS NULL OR name = :name) AND paused <> :paused",
        {"paused": int(paused), "name": transition},
    )


def pause(conn: sqlite3.Connection, now: datetime, transition: str | None = None) -> dict[str, Any]:
    """Twin of scheduler.pause() in sql/postgres/40_admin.sql: the scheduler as a whole (None),
    or one transition by name (its flag: its triggers register no job, its jobs change
    nothing, recover refuses it, reconcile and the waker skip it)."""
    if transition is None:
        _set_enabled(conn, False, now)
        return {"enabled": False}
    transitions.require(conn, transition)
    _set_paused(conn, transition, True)
    return {"transition": transition, "paused": True}


def resume(conn: sqlite3.Connection, now: datetime, transition: str | None = None) -> Recovered:
    """Twin of scheduler.resume() in sql/postgres/40_admin.sql: enable the scheduler, clear
    every transition's paused flag and recover all (None); or clear one transition's flag and
    recover it (refused, nothing changed, while the scheduler is paused as a whole)."""
    if transition is None:
        _set_enabled(conn, True, now)
        _set_paused(conn, None, False)
        return recover(conn, now)
    transitions.require(conn, transition)
    if not is_enabled(conn):
        raise InvalidInput(
            f"the scheduler is paused as a whole: resuming transition {transition} alone would "
            "not make it act",
            hint="Run scheduler-admin resume (every transition resumes with it).",
        )
    _set_paused(conn, transition, False)
    return recover(conn, now, transition=transition)


# -- completion events ----------------------------------------------------------------------------


def events(
    conn: sqlite3.Connection,
    *,
    limit: int = 50,
    path: str | None = None,
    transition: str | None = None,
) -> list[Event]:
    """Twin of scheduler.events() in sql/postgres/40_admin.sql: newest first, of one path or
    all (a path no event has, none), of every transition (None) or of the one named (an
    unknown name: :class:`InvalidInput`)."""
    if limit < 1:
        raise InvalidInput(f"limit must be at least 1, not {limit}")
    if transition is not None:
        transitions.require(conn, transition)
    rows = conn.execute(
        f"""SELECT {EVENT_COLUMNS} FROM scheduler_events
             WHERE (:path IS NULL OR path = :path)
               AND (:transition IS NULL OR transition = :transition)
             ORDER BY event_id DESC LIMIT :limit""",
        {"path": path, "limit": limit, "transition": transition},
    ).fetchall()
    return [event_row(row) for row in rows]


# -- history and health ---------------------------------------------------------------------------


def history(
    conn: sqlite3.Connection,
    *,
    failed_only: bool = False,
    limit: int = 50,
    transition: str | None = None,
) -> list[Run]:
    """Twin of scheduler.history() in sql/postgres/40_admin.sql: newest run first, of every job
    of ours (None), of meetings' jobs and the reconcile job, or of the jobs of the transition
    named. A run of another transition's job says its transition and its row's key."""
    if limit < 1:
        raise InvalidInput(f"limit must be at least 1, not {limit}")
    if transition is not None:
        transitions.require(conn, transition)
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
            name = job_name_of_command(row["command"]) or row["jobname"]
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

# As scheduler.failed_runs() in sql/postgres/40_admin.sql, a failed run was retried when, for a
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


def failed_runs_since(conn: sqlite3.Connection, since: datetime | None) -> int:
    """Failed runs of ours since a time (health's failed_runs_24h), or in the whole kept
    history when ``since`` is None (metrics' failed_runs)."""
    params = {"since": None if since is None else to_db_time(since)}
    return int(conn.execute(_FAILED_RUNS_SQL, params).fetchone()[0])


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


# The reconcile job is never skipped on SQLite: the worker runs it every minute, and a write
# transaction (BEGIN IMMEDIATE) waits for another recovery instead of skipping (PostgreSQL's
# reconcile skips a run while another recovery holds its lock, and counts those in a row).
RECONCILE_SKIPPED_IN_A_ROW = 0
# doctor's and health's limit: this many failed (or skipped) reconcile runs in a row is a problem
RECONCILE_IN_A_ROW_LIMIT = 3


def retried_runs_since(conn: sqlite3.Connection, since: datetime | None) -> int:
    """The failed runs of :func:`failed_runs_since` that were retried (health's
    retried_runs_24h, metrics' retried_runs)."""
    params = {"since": None if since is None else to_db_time(since)}
    return int(conn.execute(_FAILED_RUNS_SQL + _RETRIED_SQL, params).fetchone()[0])


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


def worker_status(conn: sqlite3.Connection, now: datetime) -> dict[str, Any]:
    """The emulated worker from its heartbeat: ``{"running": bool, "heartbeat_at": iso|None}``."""
    row = conn.execute("SELECT heartbeat_at FROM scheduler_worker WHERE singleton = 1").fetchone()
    heartbeat = None if row is None else from_db_time(row[0])
    return {
        "running": heartbeat is not None and now - heartbeat <= WORKER_STALE_AFTER,
        "heartbeat_at": None if heartbeat is None else iso(heartbeat),
    }


def meeting_jobs_count(conn: sqlite3.Connection) -> int:
    """How many meetings' jobs of ours there are (the reconcile job not counted)."""
    row = conn.execute(
        f"""SELECT count(*) FROM cron_job
             WHERE {_OURS_SQL.format(col="jobname")} AND jobname <> '{RECONCILE_JOB}'"""
    ).fetchone()
    return int(row[0])


def health(
    conn: sqlite3.Connection, now: datetime, plan: RepairPlan | None = None
) -> dict[str, Any]:
    """Twin of scheduler.health() in sql/postgres/40_admin.sql.

    ``overdue_meetings`` counts upcoming meetings that ended more than two minutes ago (a job
    fires at the start of the minute after the end time); ``missing_jobs`` counts upcoming
    meetings in the future without a job. ``worker`` is the emulated cron worker: running when
    its heartbeat is at most :data:`WORKER_STALE_AFTER` old; on SQLite nothing else runs the
    jobs, so ``ok`` is false without it. ``retried_runs_24h``: the failed runs of the last day
    that were retried (:func:`retried_runs_since`); ``ok`` allows those, as the doctor check
    does. ``failing_rows``: the rows of every transition whose completion failed and that wait
    for their retry, ``failing_rows_detail`` the most recent 20 of them
    (:mod:`scheduler_admin.sqlite.failing`); ``reconcile_failed_in_a_row``: the reconcile job's
    last runs that failed, in a row (``reconcile_skipped_in_a_row``: always 0 here). ``ok``
    is false while a row is failing or the reconcile job failed 3 times in a row. ``plan``:
    :func:`repair_plan` if already read.
    """
    plan = plan or repair_plan(conn, now)
    enabled = is_enabled(conn)
    day_ago = now - timedelta(hours=24)
    failed = failed_runs_since(conn, day_ago)
    retried = retried_runs_since(conn, day_ago)
    reconcile_ok, _ = reconcile_job_ok(conn)
    worker = worker_status(conn, now)
    failing_rows = failing.count(conn)
    failed_in_a_row = reconcile_failed_in_a_row(conn)
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
        "failing_rows_detail": failing.detail(conn),
        "reconcile_skipped_in_a_row": RECONCILE_SKIPPED_IN_A_ROW,
        "reconcile_failed_in_a_row": failed_in_a_row,
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
