"""FastAPI integration (the ``fastapi`` extra): start-up recovery in the background and a debug
endpoint, as the original service had.

.. code-block:: python

    from fastapi import FastAPI
    from scheduler_admin.fastapi import include_scheduler

    app = FastAPI()
    include_scheduler(app)

* Start-up: ``SCHEDULER_STARTUP_DELAY`` seconds (default 1) after the application has started,
  recovery runs in a background task (``scheduler_service.start()``: on SQLite migrate the
  development store and start the emulated cron worker; with ``SCHEDULER_WEBHOOK_URL`` set,
  start the webhook dispatcher; then recover) and logs its summary;
  recovery that fails is retried with back-off in the background until shutdown. Start-up
  never waits for it, and no failure of it (database down, bad configuration) reaches the
  application: it is logged and that is all.
  ``ENABLE_MEETING_STATUS_UPDATES=false`` skips it and says so.
* ``GET /debug/scheduler`` returns the jobs and the scheduler's health as JSON. It is mounted only
  when the operator asked for development: ``ENVIRONMENT`` set to ``dev`` or ``development``
  (any case), or the store is the SQLite development store (and ``ENVIRONMENT`` is not
  ``prod``/``production``). Elsewhere the path does not exist (404), and one INFO line says why
  when the application is built. An unset ``ENVIRONMENT`` with PostgreSQL or Supabase is not
  development: the endpoint shows the database's host and user and every meeting.
* ``GET /metrics`` (opt-in: ``include_scheduler(app, metrics=True)`` or
  ``SCHEDULER_METRICS_ROUTE=true``) returns the Prometheus text format of
  :mod:`scheduler_admin.metrics`: one ``backend.metrics()`` call per scrape, in a worker thread;
  a failed call is ``scheduler_up 0`` (status 200, as exporters do). Keep it private: it is not
  authenticated, so serve it on the internal network or behind the application's own auth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import traceback
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response

from scheduler_admin.config import PRODUCTION_NAMES, metrics_route_enabled
from scheduler_admin.exceptions import ConfigurationError, SchedulerError
from scheduler_admin.metrics import CONTENT_TYPE_LATEST, ConfiguredSource, render
from scheduler_admin.redact import Redactor
from scheduler_admin.service import SchedulerService

log = logging.getLogger("scheduler_admin.fastapi")

DEFAULT_STARTUP_DELAY = 1.0
DEV_ENVIRONMENTS = frozenset({"dev", "development"})
STARTUP_DELAY_HINT = "Give a number of seconds, 0 or more (e.g. 1 or 0.5), or unset it (1 s)."


def startup_delay(env: dict[str, str] | None = None) -> float:
    """``SCHEDULER_STARTUP_DELAY`` in seconds (default 1)."""
    value = (env if env is not None else os.environ).get("SCHEDULER_STARTUP_DELAY", "")
    if not value.strip():
        return DEFAULT_STARTUP_DELAY
    try:
        delay = float(value)
    except ValueError:
        raise ConfigurationError(
            f"SCHEDULER_STARTUP_DELAY={value!r} is not a number of seconds",
            hint=STARTUP_DELAY_HINT,
        ) from None
    if delay < 0:
        raise ConfigurationError(
            f"SCHEDULER_STARTUP_DELAY={value!r} is negative", hint=STARTUP_DELAY_HINT
        )
    return delay


def _default_service() -> SchedulerService:
    import scheduler_admin

    return scheduler_admin.scheduler_service


def _redactor(service: SchedulerService) -> Redactor:
    """The secrets of the service's settings and of the environment's URLs and keys."""
    redactor = Redactor.from_environment(os.environ)
    # invalid settings: the environment's secrets are all there is
    with contextlib.suppress(SchedulerError):
        redactor.update(service.settings.redactor())
    return redactor


def _describe(exc: BaseException, redactor: Redactor) -> str:
    """An exception as one line for a log or a response, with no secret in it."""
    return redactor(getattr(exc, "message", None) or str(exc) or type(exc).__name__)


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
        redactor = _redactor(service)
        retrying = (
            f"; retrying in {service.RECOVERY_RETRY_FIRST:g} s, backing off"
            if service.recovery_retrying
            else ""
        )
        log.error(
            "meeting status start-up recovery failed: %s%s", _describe(exc, redactor), retrying
        )
        if log.isEnabledFor(logging.DEBUG):
            log.debug("start-up recovery failure:\n%s", redactor(traceback.format_exc()))
        return None
    # service.start() logged the summary and each error
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
            jobs = await svc.list_jobs()
            health = await svc.health()
        except Exception as exc:
            error = _describe(exc, _redactor(svc))
            log.error("GET /debug/scheduler failed: %s", error)
            return JSONResponse({"enabled": True, "error": error}, status_code=503)
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


def metrics_router(service: SchedulerService | None = None, path: str = "/metrics") -> APIRouter:
    """``GET /metrics``: the Prometheus text format (see :mod:`scheduler_admin.metrics`).

    Each scrape opens the configured backend, calls ``metrics()`` once (the figures of every
    transition) and closes it, in a worker thread (the event loop never waits on the database).
    A failure is logged (masked) and answered with ``scheduler_up 0``.
    """
    router = APIRouter()

    @router.get(path, include_in_schema=False)
    async def scheduler_metrics() -> Response:
        svc = service or _default_service()
        source = ConfiguredSource(lambda: svc.settings)
        body = await asyncio.to_thread(
            render, source, describe=lambda exc: _describe(exc, _redactor(svc))
        )
        return Response(content=body, media_type=CONTENT_TYPE_LATEST)

    return router


def is_development(env: Mapping[str, str] | None = None) -> bool:
    """True when ``ENVIRONMENT`` is explicitly ``dev`` or ``development`` (any case)."""
    environment = (env if env is not None else os.environ).get("ENVIRONMENT") or ""
    return environment.strip().lower() in DEV_ENVIRONMENTS


def debug_route_refusal(
    service: SchedulerService | None = None, env: Mapping[str, str] | None = None
) -> str | None:
    """Why ``GET /debug/scheduler`` must not be mounted, or None when it may be.

    It may when ``ENVIRONMENT`` is ``dev``/``development``, or when it is not
    ``prod``/``production`` and the store is the SQLite development store.
    """
    env = os.environ if env is None else env
    if is_development(env):
        return None
    environment = (env.get("ENVIRONMENT") or "").strip()
    said = f"ENVIRONMENT={environment}" if environment else "ENVIRONMENT is not set"
    if environment.lower() in PRODUCTION_NAMES:
        return f"{said} (production)"
    try:
        backend = (service or _default_service()).settings.backend
    except SchedulerError as exc:
        return f"{said} and the scheduler's configuration is invalid ({exc.message})"
    if backend == "sqlite":
        return None
    return f"{said} and the store is {backend}, not the SQLite development store"


def include_scheduler(
    app: FastAPI,
    service: SchedulerService | None = None,
    *,
    delay: float | None = None,
    metrics: bool | None = None,
) -> None:
    """Add background start-up recovery to ``app``'s lifespan (keeping its own); in
    development only (see :func:`debug_route_refusal`), ``GET /debug/scheduler``; and
    ``GET /metrics`` when ``metrics`` is true, or, when it is None (the default), when
    ``SCHEDULER_METRICS_ROUTE`` is true (see :func:`metrics_router`)."""
    ours = scheduler_lifespan(service, delay=delay)
    theirs = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with ours(a), theirs(a) as state:
            yield state

    app.router.lifespan_context = lifespan
    refusal = debug_route_refusal(service)
    if refusal is None:
        app.include_router(debug_router(service))
    else:
        log.info(
            "GET /debug/scheduler is not mounted: %s; set ENVIRONMENT=dev to mount it",
            refusal,
        )
    if metrics is None:
        try:
            metrics = metrics_route_enabled()
        except ConfigurationError as exc:  # building the application must not fail on it
            log.error("%s; GET /metrics is not mounted", exc.message)
            metrics = False
    if metrics:
        app.include_router(metrics_router(service))
