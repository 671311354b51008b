"""The Python API, compatible with the original service's ``scheduler_service``.

>>> from scheduler_admin import scheduler_service
>>> await scheduler_service.start()            # start-up recovery (and the SQLite worker)
>>> scheduler_service.get_scheduled_jobs()     # a list (awaiting it works too)

Every call opens the configured backend, does one operation in a worker thread and closes it,
so the service is safe to share across requests. On PostgreSQL the database does the
scheduling; these methods only inspect and repair.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Generator
from datetime import datetime
from typing import Any, TypeVar, overload

from scheduler_admin import config
from scheduler_admin.backends import open_backend
from scheduler_admin.backends.base import Backend
from scheduler_admin.core import Job, Recovered, RecoverReport, recover_summary, require_aware

log = logging.getLogger(__name__)
T = TypeVar("T")


class ScheduledJobs(list[Job]):
    """A list of jobs that is also awaitable (``await`` gives the list itself), so that code
    written for either form of ``get_scheduled_jobs()`` works."""

    def __await__(self) -> Generator[Any, None, ScheduledJobs]:
        return self
        yield  # a generator that returns at once


class SchedulerService:
    """Admin operations on the configured database, as coroutines."""

    # Recovery that fails retries in the background: 1 s, doubling, at most 60 s apart.
    RECOVERY_RETRY_FIRST = 1.0
    RECOVERY_RETRY_MAX = 60.0
    RECOVERY_ATTEMPTS = 8

    def __init__(self, settings: config.Settings | None = None) -> None:
        self._settings = settings
        self._worker: Any = None
        self._waker: Any = None
        self._webhooks: Any = None
        self._retry: asyncio.Task[RecoverReport | None] | None = None

    @property
    def settings(self) -> config.Settings:
        """Resolved on first use, so importing the package never reads the environment."""
        if self._settings is None:
            self._settings = config.resolve()
        return self._settings

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    async def _call(self, operation: Callable[[Backend], T]) -> T:
        def run() -> T:
            backend = open_backend(self.settings)
            try:
                return operation(backend)
            finally:
                backend.close()

        return await asyncio.to_thread(run)

    async def start(self) -> RecoverReport | None:
        """Start-up: log which setting gave the database (:meth:`log_configuration`); on SQLite
        migrate the development store to head; start the waker (a thread that completes each
        meeting within a second of its end, :mod:`scheduler_admin.waker`;
        ``SCHEDULER_WAKER=false`` leaves it off); on SQLite start the emulated cron worker in a
        thread; then recover. The waker starts after the migration, so that it never finds a
        store that is not migrated yet (a migration that fails still starts it: it backs off).

        The worker starts whatever recovery does. Recovery that fails is logged and retried in
        the background with exponential back-off (1 s doubling to 60 s, a few attempts) until
        it succeeds or :meth:`shutdown`; the first failure is still raised to the caller, which
        logs it (:mod:`scheduler_admin.fastapi` does).

        With ``SCHEDULER_WEBHOOK_URL`` set it also starts the webhook dispatcher in a thread
        (:mod:`scheduler_admin.webhooks`), which POSTs each completion event there.

        Returns the recovery report, or None when ENABLE_MEETING_STATUS_UPDATES=false.
        """
        if not self.enabled:
            log.warning("ENABLE_MEETING_STATUS_UPDATES=false: meeting status updates are off")
            return None
        self.log_configuration()
        if self.settings.backend == "sqlite":
            # only the development store: PostgreSQL and Supabase are never migrated here.
            # Before the waker, which would otherwise find no store and advise running migrate.
            try:
                await asyncio.to_thread(self._migrate_sqlite)
            except Exception:
                self.start_waker()  # it backs off and resumes once the store is migrated
                raise
        # before recovery: it outlives a database that is down at start-up (it backs off and
        # resumes), where recovery then fails
        self.start_waker()
        if self.settings.backend == "sqlite":
            self._start_worker()
        # after the SQLite migration (the events table must exist); like the waker it outlives a
        # database that is down
        self.start_webhooks()
        try:
            return await self.ensure_scheduled_jobs_for_existing_meetings()
        except Exception:
            self._schedule_recovery_retry()
            raise

    def log_configuration(self) -> None:
        """One line on which setting gave the database, and which set ones it ignored and why
        (:attr:`~scheduler_admin.config.Settings.origin`): a WARNING when one was ignored (a
        leftover ``DATABASE_URL`` wins over ``ENVIRONMENT=prod`` with ``SUPABASE_DB_URL``),
        else INFO."""
        settings = self.settings
        level = logging.WARNING if settings.ignored else logging.INFO
        log.log(level, "scheduler database %s: %s", settings.display, settings.origin)

    def _migrate_sqlite(self) -> None:
        """Upgrade the SQLite store to head (idempotent); one INFO line when it changed it."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory
        from sqlalchemy import create_engine

        from scheduler_admin.migrate import alembic_config, upgrade

        url = self.settings.url
        assert url is not None
        config.check_sqlite_url(url, self.settings.source)  # settings built without resolve()
        head = ScriptDirectory.from_config(alembic_config(url=url)).get_current_head()
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                current = MigrationContext.configure(conn).get_current_revision()
        finally:
            engine.dispose()
        if current == head:
            return
        upgrade(url=url)
        log.info(
            "migrated the SQLite development store %s from %s to %s",
            self.settings.display,
            current or "empty",
            head,
        )

    def _start_worker(self) -> None:
        if self._worker is not None:
            return
        from scheduler_admin.sqlite.worker import CronWorker

        assert self.settings.url is not None
        self._worker = CronWorker(self.settings.url)
        self._worker.start_thread()
        log.info("emulated cron worker started on %s", self.settings.display)

    def _schedule_recovery_retry(self) -> None:
        if self._retry is None or self._retry.done():
            self._retry = asyncio.get_running_loop().create_task(
                self._retry_recovery(), name="scheduler-recovery-retry"
            )

    @property
    def recovery_retrying(self) -> bool:
        """Whether recovery that failed is being retried in the background."""
        return self._retry is not None and not self._retry.done()

    async def _retry_recovery(self) -> RecoverReport | None:
        """Retry recovery with exponential back-off, logging each failure once with the next
        wait (the caller of :meth:`start` logs the first). Never raises (except cancellation,
        which :meth:`shutdown` does)."""
        delay = self.RECOVERY_RETRY_FIRST
        for attempt in range(1, self.RECOVERY_ATTEMPTS + 1):
            await asyncio.sleep(delay)
            try:
                return await self.ensure_scheduled_jobs_for_existing_meetings()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = self.settings.redactor()(
                    getattr(exc, "message", None) or str(exc) or type(exc).__name__
                )
                delay = min(delay * 2, self.RECOVERY_RETRY_MAX)
                if attempt == self.RECOVERY_ATTEMPTS:
                    log.error(
                        "meeting status recovery retry %d failed: %s; giving up "
                        "(run `scheduler-admin recover`)",
                        attempt,
                        error,
                    )
                else:
                    log.warning(
                        "meeting status recovery retry %d failed: %s; retrying in %g s",
                        attempt,
                        error,
                        delay,
                    )
        return None

    def start_waker(self) -> bool:
        """Start the waker thread unless it runs already or ``SCHEDULER_WAKER=false``; whether
        it runs."""
        from scheduler_admin.waker import Waker, waker_enabled

        if self._waker is not None:
            return True
        if not self.enabled or not waker_enabled():
            log.info("SCHEDULER_WAKER=false: the waker does not run")
            return False
        self._waker = Waker.from_settings(self.settings)
        self._waker.start_thread()
        log.info("waker started on %s", self.settings.display)
        return True

    def start_webhooks(self) -> bool:
        """Start the webhook dispatcher thread when ``SCHEDULER_WEBHOOK_URL`` is set (unless it
        runs already); whether it runs."""
        from scheduler_admin.webhooks import Dispatcher

        if self._webhooks is not None:
            return True
        webhook = self.settings.webhook
        if not self.enabled or webhook is None:
            return False
        self._webhooks = Dispatcher.from_settings(self.settings)
        self._webhooks.start_thread()
        log.info(
            "webhooks on: completion events are POSTed to %s (signed: %s, at most %d attempts, "
            "timeout %g s)",
            webhook.display,
            "yes" if webhook.secret else "no",
            webhook.max_attempts,
            webhook.timeout,
        )
        return True

    async def shutdown(self) -> None:
        """Stop the recovery retries, the waker, the webhook dispatcher and the SQLite worker
        thread, if this service started them."""
        if self._retry is not None:
            retry, self._retry = self._retry, None
            retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retry
        if self._waker is not None:
            waker, self._waker = self._waker, None
            await asyncio.to_thread(waker.stop)
        if self._webhooks is not None:
            dispatcher, self._webhooks = self._webhooks, None
            await asyncio.to_thread(dispatcher.stop)
        if self._worker is not None:
            worker, self._worker = self._worker, None
            await asyncio.to_thread(worker.stop)

    async def schedule_meeting_status_update(
        self, meeting_id: str, end_time: datetime
    ) -> dict[str, Any]:
        """Set an upcoming meeting's end time and make sure its job exists."""
        require_aware(end_time)
        return await self._call(lambda b: b.schedule(str(meeting_id), end_time))

    async def cancel_meeting_status_update(self, meeting_id: str) -> dict[str, Any]:
        """Cancel an upcoming meeting, which removes its job."""
        return await self._call(lambda b: b.cancel(str(meeting_id)))

    @overload
    async def ensure_scheduled_jobs_for_existing_meetings(
        self, transition: None = None
    ) -> RecoverReport: ...

    @overload
    async def ensure_scheduled_jobs_for_existing_meetings(self, transition: str) -> Recovered: ...

    async def ensure_scheduled_jobs_for_existing_meetings(
        self, transition: str | None = None
    ) -> Recovered:
        """Start-up recovery: re-run the registration for every upcoming meeting and every
        pending row of the other transitions; ``transition``: only that registered transition
        (``meetings``: the RecoverReport of meetings alone; another: its TransitionReport)."""
        report = await self._call(lambda b: b.recover(transition=transition))
        what = "meeting status" if transition is None else f"transition {transition}"
        log.info("%s recovery: %s", what, recover_summary(report))
        for error in report["errors"]:
            if "meeting_id" in error:
                log.warning(
                    "recovery error for meeting %s: %s", error["meeting_id"], error.get("error")
                )
            else:
                log.warning("recovery error for %s: %s", what, error)
        return report

    def get_scheduled_jobs(self, transition: str | None = None) -> ScheduledJobs:
        """The jobs of ours, with their meetings (or rows) and next runs: a list, read when
        called; ``transition``: only that registered transition's (default: every one's).

        Called as the original service called it (``jobs = get_scheduled_jobs()``, a list a
        FastAPI route can return) and awaitable as well (``await get_scheduled_jobs()``). The
        query runs on the calling thread; async code that must not wait on the database in its
        event loop uses :meth:`list_jobs`.
        """
        backend = open_backend(self.settings)
        try:
            return ScheduledJobs(backend.list_jobs(transition=transition))
        finally:
            backend.close()

    async def list_jobs(self, transition: str | None = None) -> list[Job]:
        """The jobs of ours (of every transition, or of the one named), read in a worker thread
        (never blocks the event loop)."""
        return await self._call(lambda b: b.list_jobs(transition=transition))

    async def health(self) -> dict[str, Any]:
        return await self._call(lambda b: b.health())
