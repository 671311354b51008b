"""The interface every backend (postgres, sqlite, supabase) implements.

Its results are the shapes of :mod:`scheduler_admin.core`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from scheduler_admin.core import (
    Check,
    Event,
    Horizon,
    Job,
    Outcome,
    Reconciled,
    Recovered,
    Run,
    Transition,
    Wake,
)


class Backend(Protocol):
    """Every ``transition`` argument names a registered transition (``transitions list``); None
    means all of them. An unknown name raises InvalidInput before anything is changed."""

    def list_jobs(self, *, transition: str | None = None) -> list[Job]: ...

    def recover(self, *, dry_run: bool = False, transition: str | None = None) -> Recovered: ...

    def reconcile(self, *, transition: str | None = None) -> Reconciled: ...

    def history(
        self, *, failed_only: bool = False, limit: int = 50, transition: str | None = None
    ) -> list[Run]: ...

    def doctor(self, *, transition: str | None = None) -> list[Check]: ...

    def schedule(self, meeting_id: str, end_time: datetime) -> dict[str, Any]: ...

    def cancel(self, meeting_id: str) -> dict[str, Any]: ...

    def pause(self, *, transition: str | None = None) -> dict[str, Any]: ...

    def resume(self, *, transition: str | None = None) -> Recovered: ...

    def health(self) -> dict[str, Any]: ...

    def wake(self, *, transition: str | None = None) -> Wake: ...

    def events(
        self, *, limit: int = 50, path: str | None = None, transition: str | None = None
    ) -> list[Event]: ...

    def set_webhooks(self, enabled: bool) -> dict[str, Any]: ...

    def claim_events(self, *, limit: int, lease_seconds: float) -> list[Event]: ...

    def record_attempt(
        self,
        event_id: int,
        *,
        outcome: Outcome,
        status_code: int | None = None,
        error: str | None = None,
        retry_in_seconds: float | None = None,
    ) -> bool: ...

    def metrics(self, *, transition: str | None = None) -> dict[str, Any]: ...

    def transitions(self) -> list[Transition]: ...

    def add_transition(
        self,
        name: str,
        *,
        table: str,
        key_column: str,
        time_column: str,
        state_column: str,
        from_states: list[str],
        to_state: str,
        job_prefix: str | None = None,
    ) -> dict[str, Any]: ...

    def remove_transition(self, name: str) -> dict[str, Any]: ...

    def horizons(self) -> list[Horizon]: ...

    def set_job_horizon(self, horizon: str | None, *, transition: str | None = None) -> Horizon: ...

    def close(self) -> None: ...
