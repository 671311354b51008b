"""The interface every backend (postgres, sqlite, supabase) implements, and its result shapes.

Results are plain JSON-ready dicts so that ``--json`` output is identical across backends.
Times are ISO-8601 strings in UTC (``2026-12-01T15:30:00+00:00``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, TypedDict


class Job(TypedDict):
    """One meeting's job (``list-jobs``)."""

    meeting_id: str | None  # None for the reconcile job
    job_id: int
    job_name: str
    schedule: str
    next_run: str | None  # next time the schedule fires, UTC
    end_time: str | None
    meeting_status: str | None  # None when the meeting is gone (an orphan job)
    active: bool


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


class Check(TypedDict):
    """One ``doctor`` check."""

    name: str
    ok: bool
    detail: str
    fix: str | None


class Backend(Protocol):
    def list_jobs(self) -> list[Job]: ...

    def recover(self, *, dry_run: bool = False) -> RecoverReport: ...

    def reconcile(self) -> RecoverReport: ...

    def history(self, *, failed_only: bool = False, limit: int = 50) -> list[Run]: ...

    def doctor(self) -> list[Check]: ...

    def schedule(self, meeting_id: str, end_time: datetime) -> dict[str, Any]: ...

    def cancel(self, meeting_id: str) -> dict[str, Any]: ...

    def pause(self) -> dict[str, Any]: ...

    def resume(self) -> RecoverReport: ...

    def health(self) -> dict[str, Any]: ...

    def close(self) -> None: ...
