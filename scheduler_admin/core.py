"""What every layer shares and none owns: the result shapes, the names of jobs and of the builtin
transition, and the small rules on them.

Below both :mod:`scheduler_admin.backends` (the Backend protocol returns these shapes) and
:mod:`scheduler_admin.sqlite` (the SQLite twin builds them); it imports nothing of the package but
:mod:`scheduler_admin.exceptions`.

Results are plain JSON-ready dicts so that ``--json`` output is identical across backends.
Times are ISO-8601 strings in UTC (``2026-12-01T15:30:00+00:00``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypedDict, cast

from scheduler_admin.exceptions import InvalidInput

# The package's version, as pyproject.toml gives it: ``scheduler_admin.__version__`` and the
# webhooks' User-Agent.
VERSION = "0.1.0"

# The transition the migrations create (scheduler.transitions): meetings, served by the meetings
# machinery; every other transition is registered by name.
BUILTIN = "meetings"

# Job names: the Python twin of scheduler.job_name() / scheduler.meeting_id() (20_functions.sql).
JOB_PREFIX = "meeting-status-"
RECONCILE_JOB = "meeting-status-reconcile"


class Job(TypedDict):
    """One job of ours (``list-jobs``): a meeting's, another transition's row's, or the reconcile
    or sweep job. For another transition's job, ``end_time`` and ``meeting_status`` are its row's
    time and state and ``meeting_id`` is None."""

    meeting_id: str | None  # None for the reconcile and sweep jobs and other transitions' jobs
    job_id: int
    job_name: str
    schedule: str
    next_run: str | None  # next time the schedule fires, UTC
    end_time: str | None
    meeting_status: str | None  # None when the row is gone (an orphan job)
    active: bool
    transition: str  # the transition the job serves; meetings for the reconcile and sweep jobs
    key: str | None  # its row's key as text (a meeting's id); None for reconcile and sweep


class RecoverReport(TypedDict):
    """``recover``: the original service's fields plus ours."""

    total_meetings: int  # upcoming meetings read
    jobs_scheduled: int  # jobs registered because they were missing or wrong
    jobs_already_exist: int
    overdue_completed: int  # upcoming meetings whose end time had passed, marked done
    orphans_removed: int  # jobs of ours with no upcoming meeting or a wrong schedule
    errors: list[dict[str, str]]  # {"meeting_id": ..., "error": ...}
    success: bool
    dry_run: bool


class TransitionReport(TypedDict):
    """``recover``/``resume``/``reconcile`` of one transition other than meetings (the value of
    its name under the key ``transitions`` of a report of all of them, without ``transition``,
    ``errors``, ``success`` and ``dry_run``)."""

    transition: str
    total: int  # pending rows read
    jobs_scheduled: int
    jobs_already_exist: int
    overdue_completed: int  # pending rows whose time had passed, given the to-state
    orphans_removed: int  # jobs with the transition's prefix and no pending row
    errors: list[dict[str, str]]
    success: bool
    dry_run: bool


class ReconcileReport(RecoverReport):
    """``reconcile``: the recover report plus the run-history rows and the completion events
    deleted by the retention (PostgreSQL adds ``sweep``: the seconds sweep's schedule, ``off``
    or ``unsupported``)."""

    history_deleted: int
    events_deleted: int


class Paused(TypedDict):
    """``reconcile`` while the scheduler is paused: nothing was done."""

    paused: Literal[True]


class Skipped(TypedDict):
    """``reconcile`` while another recovery holds the lock (PostgreSQL): nothing was done."""

    skipped: str


class TransitionReconcileReport(TransitionReport):
    """``reconcile`` of one transition other than meetings: its repair plus its jobs' run
    history deleted by the retention."""

    history_deleted: int


Reconciled = ReconcileReport | TransitionReconcileReport | Paused | Skipped
# recover/resume: all transitions or meetings (RecoverReport), or another one (TransitionReport)
Recovered = RecoverReport | TransitionReport


class Run(TypedDict):
    """One row of job history (``history``)."""

    run_id: int
    job_id: int
    job_name: str | None
    meeting_id: str | None
    status: str  # starting, running, sending, connecting, succeeded, failed
    return_message: str | None
    start_time: str | None
    end_time: str | None
    transition: str  # the transition whose job ran; meetings for the reconcile and sweep jobs
    key: str | None  # the row's key as text (a meeting's id); None for reconcile and sweep


class Check(TypedDict):
    """One ``doctor`` check."""

    name: str
    ok: bool
    detail: str
    fix: str | None


class Wake(TypedDict):
    """What ``scheduler.wake()`` (and its SQLite twin) did and what comes next, for the waker."""

    completed: int  # meetings marked done by this call
    next_end_time: str | None  # earliest end_time still pending (ISO, UTC); None: none or paused
    now: str  # the database's clock when it answered (ISO, UTC): it decides what is due
    paused: bool  # the scheduler is paused: nothing completed, nothing to wait for


# How a completion happened (the path column of the completion events): a meeting's job run, the
# seconds sweep job, the application's waker (wake), the reconcile job, recover/resume/migration,
# or a write to meetings with an end time already past (the BEFORE trigger completed it).
PATHS = ("job", "sweep", "waker", "reconcile", "recover", "write")
Outcome = Literal["delivered", "retry", "failed"]


class Event(TypedDict):
    """One completion event (``events``; what the webhook dispatcher delivers)."""

    event_id: int
    event_key: str  # a UUID: the webhook's idempotency key
    meeting_id: str | None  # None for another transition's row
    end_time: str  # the row's time (a meeting's end_time) when it was completed (ISO, UTC)
    completed_at: str  # when the completing statement ran (ISO, UTC)
    lateness_seconds: float  # completed_at - end_time
    path: str  # one of PATHS
    delivery: str | None  # None: webhooks were off; pending, delivered, failed
    attempts: int  # delivery attempts so far (counted when claimed)
    last_error: str | None
    transition: str  # the transition that completed the row (meetings for a meeting)
    key: str  # the row's key as text (a meeting's id)


class Transition(TypedDict):
    """One registered timed transition (``transitions list``): rows of ``table_name`` in one of
    ``from_states`` get ``to_state`` at their ``time_column``. ``meetings`` is the builtin one."""

    name: str
    table_name: str  # schema.table on PostgreSQL, the table on SQLite
    key_column: str
    time_column: str
    state_column: str
    from_states: list[str]
    to_state: str
    job_prefix: str  # jobs are named <job_prefix><key>
    builtin: bool
    pending_rows: int
    jobs: int
    paused: bool  # paused by name (pause --transition); the whole scheduler may be paused too


def job_name(meeting_id: str) -> str:
    """The job name of a meeting (``scheduler.job_name``)."""
    return JOB_PREFIX + meeting_id


def meeting_id(name: str | None) -> str | None:
    """The meeting id in a job name of ours; None for the reconcile job and other names
    (``scheduler.meeting_id``)."""
    if name is None or not name.startswith(JOB_PREFIX) or name == RECONCILE_JOB:
        return None
    return name[len(JOB_PREFIX) :]


def require_aware(when: datetime, what: str = "end time") -> datetime:
    """``when`` unchanged if it carries a time zone; else the one error every entry point gives."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidInput(
            f"{what} {when.isoformat()} has no time zone",
            hint="Give one, e.g. 2026-12-01T15:30:00Z (UTC) or 2026-12-01T17:30:00+02:00.",
        )
    return when


def require_path(path: str | None) -> str | None:
    """``path`` unchanged if it is a completion path (or None); else the one error every backend
    gives."""
    if path is not None and path not in PATHS:
        raise InvalidInput(
            f"unknown completion path {path!r}", hint=f"Give one of: {', '.join(PATHS)}."
        )
    return path


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 job``, ``2 jobs``, ``0 jobs`` (``many`` for irregular plurals)."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def recover_summary(report: RecoverReport | TransitionReport) -> str:
    """One line for logs and job messages: what a recover or reconcile did (of meetings, or of
    the one other transition a TransitionReport names: its pending rows)."""
    if "total_meetings" in report:
        read = plural(cast(RecoverReport, report)["total_meetings"], "upcoming meeting")
    else:
        read = f"transition {report['transition']}: {plural(report['total'], 'pending row')}"
    text = (
        f"{read}: "
        f"{report['jobs_scheduled']} scheduled, {report['jobs_already_exist']} already there, "
        f"{report['overdue_completed']} overdue completed, "
        f"{plural(report['orphans_removed'], 'orphan')} removed, "
        f"{plural(len(report['errors']), 'error')}"
    )
    deleted = report.get("history_deleted")
    if isinstance(deleted, int):
        text += f", {plural(deleted, 'old run')} deleted"
    return text
