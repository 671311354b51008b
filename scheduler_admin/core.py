"""What every layer shares and none owns: the result shapes, the names of jobs and of the builtin
transition, and the small rules on them.

Below both :mod:`scheduler_admin.backends` (the Backend protocol returns these shapes) and
:mod:`scheduler_admin.sqlite` (the SQLite twin builds them); it imports nothing of the package but
:mod:`scheduler_admin.exceptions`.

Results are plain JSON-ready dicts so that ``--json`` output is identical across backends.
Times are ISO-8601 strings in UTC (``2026-12-01T15:30:00+00:00``).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal, TypedDict, cast

from scheduler_admin.exceptions import InvalidInput

if TYPE_CHECKING:  # Python 3.11+; the annotations are strings, never evaluated at run time
    from typing import NotRequired

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
    job_id: int | None  # None for a pending row beyond the job horizon (registered_at)
    job_name: str
    schedule: str
    next_run: str | None  # next time the schedule fires, UTC
    end_time: str | None
    meeting_status: str | None  # None when the row is gone (an orphan job)
    active: bool | None  # None for a pending row beyond the job horizon
    transition: str  # the transition the job serves; meetings for the reconcile and sweep jobs
    key: str | None  # its row's key as text (a meeting's id); None for reconcile and sweep
    # None for a job; for a pending row beyond the job horizon (no job yet: job_id and active are
    # None, job_name and schedule the job it will get), when it gets its job (time - horizon)
    registered_at: str | None


class RecoverReport(TypedDict):
    """``recover``: the original service's fields plus ours."""

    total_meetings: int  # upcoming meetings read
    jobs_scheduled: int  # jobs registered because they were missing or wrong
    jobs_already_exist: int
    overdue_completed: int  # upcoming meetings whose end time had passed, marked done
    orphans_removed: int  # jobs of ours with no upcoming meeting or a wrong schedule
    # upcoming meetings beyond the job horizon: no job yet (the key only with a horizon)
    beyond_horizon: NotRequired[int]
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
    beyond_horizon: NotRequired[int]  # pending rows beyond the job horizon (only with one)
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


class Horizon(TypedDict):
    """A transition's job horizon (``scheduler.horizons()``): a pending row gets its job once its
    time is within it."""

    transition: str
    job_horizon: str | None  # as PostgreSQL writes an interval ("1 day", "12:00:00"); None: none
    horizon_seconds: float | None
    own: bool  # the transition's own, not the default (scheduler.settings.job_horizon)
    beyond_horizon: int  # pending rows beyond it (no job yet)
    next_beyond: str | None  # the earliest time among them
    next_registration: str | None  # when that one gets its job (its time minus the horizon)


# The shortest job horizon (scheduler.set_job_horizon): the reconcile job registers the rows
# entering it once a minute, and doctor fails at three runs skipped or failed in a row.
MIN_HORIZON_SECONDS = 15 * 60

_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}  # fmt: skip


def parse_horizon(text: str | None) -> timedelta | None:
    """A job horizon as given on the command line, in the configuration or to the API: ``none``
    (or empty) for none, else one or more ``<number> <unit>`` (``36h``, ``1 day 12 hours``,
    ``90 minutes``; units s, m, h, d, w and their words). At least 15 minutes."""
    if text is None or text.strip().lower() in ("", "none", "null", "off"):
        return None
    # as PostgreSQL writes an interval (what horizons() answers): 1 day 12:00:00, 00:15:00
    written = re.fullmatch(r"(?:(\d+) days?)?\s*(?:(\d+):(\d\d):(\d\d))?", text.strip())
    if written and any(written.groups()):
        days, hours, minutes, secs = (int(g or 0) for g in written.groups())
        text = f"{days}d {hours}h {minutes}m {secs}s"
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]+)", text.strip().lower())
    rest = re.sub(r"(\d+(?:\.\d+)?)\s*([a-z]+)", "", text.strip().lower()).strip(" ,")
    if not parts or rest or any(unit not in _UNITS for _, unit in parts):
        raise InvalidInput(
            f"cannot read the job horizon {text!r}",
            hint="Give a duration such as 1d, 36h, '1 day 12 hours' or 90m, or none.",
        )
    horizon = timedelta(seconds=sum(float(n) * _UNITS[unit] for n, unit in parts))
    if horizon.total_seconds() < MIN_HORIZON_SECONDS:
        raise InvalidInput(
            f"job horizon {text!r} is too short: it must be at least 15 minutes",
            hint="The reconcile job registers the rows entering the horizon once a minute; give "
            "at least 15 minutes (e.g. 1d), or none to give every pending row its job.",
        )
    return horizon


def interval_text(horizon: timedelta | None) -> str | None:
    """A duration as PostgreSQL writes an interval of days and seconds (``1 day``, ``2 days
    03:00:00``, ``00:15:00``): the same text on every backend."""
    if horizon is None:
        return None
    days, seconds = horizon.days, int(horizon.total_seconds()) - horizon.days * 86400
    clock = f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    if not days:
        return clock
    return f"{days} {'day' if days == 1 else 'days'}" + (f" {clock}" if seconds else "")


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
    beyond = report.get("beyond_horizon")
    if isinstance(beyond, int) and beyond:
        text += f", {beyond} beyond the job horizon (no job yet)"

    deleted = report.get("history_deleted")
    if isinstance(deleted, int):
        text += f", {plural(deleted, 'old run')} deleted"
    return text
