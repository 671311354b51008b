"""FastAPI integration (the ``fastapi`` extra): start-up recovery in the background and a debug
endpoint, as the original service had.

.. code-block:: python

    from fastapi import FastAPI
    from scheduler_admin.fastapi import include_scheduler

    app = FastAPI()
    include_scheduler(app)

* Start-up: ``SCHEDULER_STARTUP_DELAY`` seconds (default 1) after the application has started,
  recovery runs in a background task (``scheduler_service.start()``: recover, and on SQLite the
  emulated cron worker) and logs its summary. Start-up never waits for it, and no failure of it
  (database down, bad configuration) reaches the application: it is logged and that is all.
  ``ENABLE_MEETING_STATUS_UPDATES=false`` skips it and says so.
* ``GET /debug/scheduler`` returns the jobs and the scheduler's health as JSON. It is mounted only
  when ``ENVIRONMENT`` is ``dev`` (the default); elsewhere the path does not exist (404).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from scheduler_admin.exceptions import ConfigurationError
from scheduler_admin.service import SchedulerService

log = logging.getLogger("scheduler_admin.fastapi")

DEFAULT_STARTUP_DELAY = 1.0
DEV_ENVIRONMENTS = frozenset({"dev", "development"})


def startup_delay(env: dict[str, str] | None = None) -> float:
    """``SCHEDULER_STARTUP_DELAY`` in seconds (default 1)."""
    value = (env if env is not None else os.environ).get("SCHEDULER_STARTUP_DELAY", "")
    if not value.strip():
        return DEFAULT_STARTUP_DELAY
    try:
        delay = float(value)
    except ValueError:
        raise ConfigurationError(
            f"SCHEDULER_STARTUP_DELAY={value!r} is not a number of seconds"
        ) from None
    if delay < 0:
        raise ConfigurationError(f"SCHEDULER_STARTUP_DELAY={value!r} is negative")
    return delay


def _default_service() -> SchedulerService:
    import scheduler_admin

    return scheduler_admin.scheduler_service


async def run_startup_recovery(service: SchedulerService, delay: float) -> dict[str, Any] | None:
    """Wait ``delay`` seconds, then recover; log the outcome. Never raises (except cancellation)."""
    await asyncio.sleep(delay)
    try:
        if not service.enabled:
            log.warning(
                "ENABLE_MEETING_STATUS_UPDATES=false: start-up recovery skipped, "
                "meeting status updates are off"
            )
            return None
        report = await service.start()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.error("meeting status start-up recovery failed: %s", exc)
        log.debug("start-up recovery failure", exc_info=True)
        return None
    if report is not None:
        log.info(
            "meeting status start-up recovery: %d upcoming, %d jobs scheduled, %d already "
            "existed, %d overdue completed, %d orphans removed, %d errors",
            report["total_meetings"],
            report["jobs_scheduled"],
            report["jobs_already_exist"],
            report["overdue_completed"],
            report["orphans_removed"],
            len(report["errors"]),
        )
        for error in report["errors"]:
            log.warning(
                "recovery error for meeting %s: %s", error.get("meeting_id"), error.get("error")
            )
    return dict(report) if report is not None else None


def scheduler_lifespan(
    service: SchedulerService | None = None, *, delay: float | None = None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """A lifespan that starts recovery in the background; pass it to ``FastAPI(lifespan=…)``.

    The task is ``app.state.scheduler_startup``; its result is the recovery report (None when it
    was skipped or failed).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = service or _default_service()
        try:
            wait = startup_delay() if delay is None else delay
        except ConfigurationError as exc:
            log.error("%s; using %g s", exc, DEFAULT_STARTUP_DELAY)
            wait = DEFAULT_STARTUP_DELAY
        task = asyncio.create_task(run_startup_recovery(svc, wait), name="scheduler-startup")
        app.state.scheduler_startup = task
        try:
            yield
        finally:
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            try:
                await svc.shutdown()
            except Exception as exc:  # shutting down must not fail either
                log.error("scheduler shutdown failed: %s", exc)

    return lifespan


def debug_router(service: SchedulerService | None = None) -> APIRouter:
    """``GET /debug/scheduler``: the jobs and the health report, as JSON."""
    router = APIRouter()

    @router.get("/debug/scheduler", include_in_schema=False)
    async def debug_scheduler() -> JSONResponse:
        svc = service or _default_service()
        try:
            if not svc.enabled:
                return JSONResponse(
                    {
                        "enabled": False,
                        "detail": "ENABLE_MEETING_STATUS_UPDATES=false: meeting status updates "
                        "are off",
                    }
                )
            jobs = await svc.get_scheduled_jobs()
            health = await svc.health()
        except Exception as exc:
            log.error("GET /debug/scheduler failed: %s", exc)
            return JSONResponse(
                {"enabled": True, "error": getattr(exc, "message", None) or str(exc)},
                status_code=503,
            )
        return JSONResponse(
            {
                "enabled": True,
                "backend": svc.settings.backend,
                "database": svc.settings.display,
                "jobs": jobs,
                "health": health,
            }
        )

    return router


def is_development(env: dict[str, str] | None = None) -> bool:
    environment = (env if env is not None else os.environ).get("ENVIRONMENT") or "dev"
    return environment.strip().lower() in DEV_ENVIRONMENTS


def include_scheduler(
    app: FastAPI, service: SchedulerService | None = None, *, delay: float | None = None
) -> None:
    """Add background start-up recovery to ``app``'s lifespan (keeping its own) and, in
    development only, ``GET /debug/scheduler``."""
    ours = scheduler_lifespan(service, delay=delay)
    theirs = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with ours(a), theirs(a) as state:
            yield state

    app.router.lifespan_context = lifespan
    if is_development():
        app.include_router(debug_router(service))
