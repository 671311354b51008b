"""The SQLite development backend: the Backend protocol of :mod:`scheduler_admin.backends.base`
on a SQLite file.

The schema (``sql/sqlite``) keeps one row in ``cron_job`` per upcoming meeting through plain
SQLite triggers; :class:`scheduler_admin.sqlite.worker.CronWorker` runs the due jobs like pg_cron.
This class opens a transaction per operation and calls the twins in :mod:`scheduler_admin.sqlite`
(one module per file of ``sql/postgres/``: :mod:`~scheduler_admin.sqlite.recovery`, the twin
of ``40_recovery.sql``, and so on) at the
backend's clock (:meth:`~scheduler_admin.sqlite.connection.Database.now`); its doctor is
:mod:`scheduler_admin.backends.sqlite_doctor`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from scheduler_admin.backends.sqlite_doctor import doctor
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
    require_path,
)
from scheduler_admin.sqlite import (
    events,
    health,
    history,
    horizon,
    metrics,
    recovery,
    scheduling,
    transitions,
)
from scheduler_admin.sqlite.connection import Database


class SqliteBackend(Database):
    """The Backend protocol on a SQLite file (see :mod:`scheduler_admin.backends.base`)."""

    name = "sqlite"

    def list_jobs(self, *, transition: str | None = None) -> list[Job]:
        """Every job of ours (the reconcile job included), or those of one transition, by next
        run then name."""
        now = self.now()
        with self.transaction(write=False) as conn:
            return history.list_jobs(conn, now, transition)

    def recover(self, *, dry_run: bool = False, transition: str | None = None) -> Recovered:
        """Complete overdue rows, register missing or wrong jobs, remove orphan jobs: of every
        transition not paused by name (None), of meetings, or of the one named.

        Refused while the scheduler (or the transition named) is paused (it would register
        jobs), except as a dry run: resume() enables and recovers.
        """
        now = self.now()
        with self.transaction(write=not dry_run) as conn:
            return recovery.recover(conn, now, dry_run=dry_run, transition=transition)

    def reconcile(self, *, transition: str | None = None) -> Reconciled:
        """Recover, then delete our run history older than the retention (of every transition,
        meetings, or the one named); while paused it changes nothing and returns exactly
        ``{"paused": True}``, like the reconcile job."""
        now = self.now()
        with self.transaction() as conn:
            return recovery.reconcile(conn, now, transition)

    def history(
        self, *, failed_only: bool = False, limit: int = 50, transition: str | None = None
    ) -> list[Run]:
        """Runs of our jobs (or of one transition's), newest first. ``failed``/``job canceled``
        is reported as canceled."""
        with self.transaction(write=False) as conn:
            return history.history(
                conn, failed_only=failed_only, limit=limit, transition=transition
            )

    def health(self) -> dict[str, Any]:
        """Counts for monitoring, as the PostgreSQL backend reports them."""
        now = self.now()
        with self.transaction(write=False) as conn:
            return health.health(conn, now)

    def doctor(self, *, transition: str | None = None) -> list[Check]:
        """Checks with a fix for each failing one; an unmigrated database is a failing check
        (of every transition, meetings, or the basic ones and the named transition's)."""
        return doctor(self, self.now(), transition)

    def schedule(self, meeting_id: str, end_time: datetime) -> dict[str, Any]:
        """Move an upcoming meeting's end time; the triggers (re)register or complete it."""
        now = self.now()
        with self.transaction() as conn:
            return scheduling.schedule_meeting(conn, meeting_id, end_time, now)

    def cancel(self, meeting_id: str) -> dict[str, Any]:
        """Cancel an upcoming meeting (its job goes with it); a stray job is removed too."""
        with self.transaction() as conn:
            return scheduling.cancel_meeting(conn, meeting_id)

    def pause(self, *, transition: str | None = None) -> dict[str, Any]:
        """Triggers register no job and jobs change nothing until resume(): the whole
        scheduler (None) or one transition by name."""
        now = self.now()
        with self.transaction() as conn:
            return scheduling.pause(conn, now, transition)

    def resume(self, *, transition: str | None = None) -> Recovered:
        """Enable the scheduler and every transition, then recover what happened while paused
        (None); or resume one transition and recover it."""
        now = self.now()
        with self.transaction() as conn:
            return scheduling.resume(conn, now, transition)

    def wake(self, *, transition: str | None = None) -> Wake:
        """Complete what is due at the backend's clock (of every active transition, or of the
        one named), then the next time (the twin of scheduler.wake(), for the waker)."""
        now = self.now()
        with self.transaction() as conn:
            return transitions.wake(conn, now, transition)

    def events(
        self, *, limit: int = 50, path: str | None = None, transition: str | None = None
    ) -> list[Event]:
        """Completion events, newest first (of one path, or all; of one transition, or all)."""
        with self.transaction(write=False) as conn:
            return events.events(conn, limit=limit, path=require_path(path), transition=transition)

    def set_webhooks(self, enabled: bool) -> dict[str, Any]:
        """Whether meetings completed from now on are to be delivered by webhook."""
        with self.transaction() as conn:
            return events.set_webhooks(conn, enabled)

    def claim_events(self, *, limit: int, lease_seconds: float) -> list[Event]:
        """Lease the oldest pending events due now to this dispatcher (one more attempt each).

        SQLite has no ``skip locked``: the write transaction (``BEGIN IMMEDIATE``) serialises
        claimers, so two dispatchers never claim one event.
        """
        now = self.now()
        with self.transaction() as conn:
            return events.claim_events(conn, now, limit=limit, lease_seconds=lease_seconds)

    def record_attempt(
        self,
        event_id: int,
        *,
        outcome: Outcome,
        status_code: int | None = None,
        error: str | None = None,
        retry_in_seconds: float | None = None,
    ) -> bool:
        """Record a delivery attempt; whether it changed the event (False once it is delivered
        or failed)."""
        now = self.now()
        with self.transaction() as conn:
            return events.record_attempt(
                conn,
                now,
                event_id,
                outcome=outcome,
                status_code=status_code,
                error=error,
                retry_in_seconds=retry_in_seconds,
            )

    def metrics(self, *, transition: str | None = None) -> dict[str, Any]:
        """Gauges and cumulative counters, the JSON of scheduler.metrics() (of every transition,
        or of the one named)."""
        now = self.now()
        with self.transaction(write=False) as conn:
            return metrics.metrics(conn, now, transition)

    def transitions(self) -> list[Transition]:
        """The registered timed transitions: meetings (builtin) first, then by name."""
        with self.transaction(write=False) as conn:
            return transitions.transitions(conn)

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
    ) -> dict[str, Any]:
        """Register a timed transition on a table: its triggers, a job per pending row, the
        rows already due completed; refused (nothing changed) with a clear error otherwise."""
        now = self.now()
        with self.transaction() as conn:
            return transitions.add_transition(
                conn,
                name,
                table=table,
                key_column=key_column,
                time_column=time_column,
                state_column=state_column,
                from_states=list(from_states),
                to_state=to_state,
                job_prefix=job_prefix,
                now=now,
            )

    def remove_transition(self, name: str) -> dict[str, Any]:
        """Drop a transition's triggers and jobs (its table's rows are kept); not meetings."""
        with self.transaction() as conn:
            return transitions.remove_transition(conn, name)

    def horizons(self) -> list[Horizon]:
        """Each transition's job horizon and its pending rows beyond it (no job yet)."""
        now = self.now()
        with self.transaction(write=False) as conn:
            return horizon.horizons(conn, now)

    def set_job_horizon(self, value: str | None, *, transition: str | None = None) -> Horizon:
        """The default job horizon (no transition) or one transition's own (None: none, or for
        a transition the default); the reconcile job applies it."""
        now = self.now()
        with self.transaction() as conn:
            return horizon.set_job_horizon(conn, value, transition, now)
