"""The development app on a fresh directory: the SQLite store migrates itself on start, the
emulated worker starts whatever recovery does, failed recovery retries with back-off, and
health (``GET /debug/scheduler``) reports the worker."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlite_helpers import FakeClock, future, insert

from scheduler_admin import SchedulerService, config
from scheduler_admin.backends.sqlite import SqliteBackend
from scheduler_admin.fastapi import include_scheduler
from scheduler_admin.sqlite.connection import to_db_time

UTC = timezone.utc


async def worker_running(service: SchedulerService, timeout: float = 10.0) -> dict[str, Any]:
    """The health report once it shows the worker running (its first tick is at once)."""
    deadline = time.monotonic() + timeout
    while True:
        health = await service.health()
        if health["worker"]["running"] or time.monotonic() > deadline:
            return health
        await asyncio.sleep(0.05)


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master")}


def test_start_on_a_fresh_directory_migrates_recovers_and_runs_the_worker(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scheduler_admin")
    path = tmp_path / "scheduler_jobs.db"
    url = f"sqlite:///{path}"

    async def scenario() -> None:
        service = SchedulerService(config.resolve(url, {}))
        try:
            report = await service.start()
            assert report is not None and report["success"] is True
            assert {"meetings", "cron_job", "scheduler_worker"} <= tables(path)
            health = await worker_running(service)
            assert health["worker"]["running"] is True and health["ok"] is True, health
        finally:
            await service.shutdown()
        # a second start finds the store at head: nothing to migrate, nothing logged
        caplog.clear()
        again = SchedulerService(config.resolve(url, {}))
        try:
            assert await again.start() is not None
        finally:
            await again.shutdown()
        assert "migrated" not in caplog.text

    asyncio.run(scenario())


def test_start_migration_logs_one_info_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scheduler_admin")
    service = SchedulerService(config.resolve(f"sqlite:///{tmp_path / 'new.db'}", {}))

    async def scenario() -> None:
        try:
            await service.start()
        finally:
            await service.shutdown()

    asyncio.run(scenario())
    lines = [r for r in caplog.records if "migrated the SQLite development store" in r.message]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO


def test_failed_recovery_still_starts_the_worker_and_a_retry_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scheduler_admin")
    real_recover = SqliteBackend.recover
    calls: list[int] = []

    def recover_failing_once(self: SqliteBackend, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database is locked (injected)")
        return real_recover(self, **kwargs)

    monkeypatch.setattr(SqliteBackend, "recover", recover_failing_once)
    service = SchedulerService(config.resolve(f"sqlite:///{tmp_path / 'retry.db'}", {}))
    service.RECOVERY_RETRY_FIRST = 0.05

    async def scenario() -> None:
        try:
            with pytest.raises(RuntimeError, match="injected"):
                await service.start()
            assert service.recovery_retrying
            assert (await worker_running(service))["worker"]["running"] is True
            assert service._retry is not None
            report = await asyncio.wait_for(service._retry, timeout=10)
            assert report is not None and report["success"] is True
        finally:
            await service.shutdown()

    asyncio.run(scenario())
    assert len(calls) == 2


def test_recovery_retries_back_off_log_each_failure_and_stop_at_shutdown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scheduler_admin")

    def recover_failing(self: SqliteBackend, **kwargs: Any) -> Any:
        raise RuntimeError("still down")

    monkeypatch.setattr(SqliteBackend, "recover", recover_failing)
    service = SchedulerService(config.resolve(f"sqlite:///{tmp_path / 'down.db'}", {}))
    service.RECOVERY_RETRY_FIRST = 0.01
    service.RECOVERY_ATTEMPTS = 3

    async def gives_up() -> None:
        try:
            with pytest.raises(RuntimeError):
                await service.start()
            assert service._retry is not None
            assert await asyncio.wait_for(service._retry, timeout=10) is None
        finally:
            await service.shutdown()

    asyncio.run(gives_up())
    messages = [r.getMessage() for r in caplog.records if "recovery retry" in r.getMessage()]
    assert messages == [
        "meeting status recovery retry 1 failed: still down; retrying in 0.02 s",
        "meeting status recovery retry 2 failed: still down; retrying in 0.04 s",
        "meeting status recovery retry 3 failed: still down; giving up "
        "(run `scheduler-admin recover`)",
    ]

    # shutdown cancels a retry that is waiting
    waiting = SchedulerService(config.resolve(f"sqlite:///{tmp_path / 'down.db'}", {}))
    waiting.RECOVERY_RETRY_FIRST = 60

    async def shut_down_while_waiting() -> None:
        with pytest.raises(RuntimeError):
            await waiting.start()
        task = waiting._retry
        assert task is not None and not task.done()
        await waiting.shutdown()
        assert task.cancelled() and not waiting.recovery_retrying

    asyncio.run(shut_down_while_waiting())


def test_health_is_not_ok_with_a_meeting_two_minutes_overdue(
    conn: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    end = future(2)
    insert(conn, end)

    def heartbeat() -> None:  # the worker is running, but has not completed the meeting
        conn.execute(
            """INSERT INTO scheduler_worker (singleton, last_minute, heartbeat_at, pid, hostname)
               VALUES (1, ?, ?, 0, 'test')
               ON CONFLICT (singleton) DO UPDATE SET heartbeat_at = excluded.heartbeat_at""",
            (to_db_time(clock()), to_db_time(clock())),
        )

    clock.set(end + timedelta(minutes=1, seconds=59))
    heartbeat()
    health = backend.health()
    assert (health["overdue_meetings"], health["worker"]["running"], health["ok"]) == (
        0,
        True,
        True,
    )
    clock.set(end + timedelta(minutes=2, seconds=1))
    heartbeat()
    health = backend.health()
    assert (health["overdue_meetings"], health["worker"]["running"]) == (1, True)
    assert health["ok"] is False


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            yield client


def test_fastapi_dev_app_on_a_fresh_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENVIRONMENT", raising=False)
    path = tmp_path / "scheduler_jobs.db"
    service = SchedulerService(config.resolve(f"sqlite:///{path}", {}))
    app = FastAPI()
    include_scheduler(app, service, delay=0)

    async def scenario() -> None:
        async with serving(app) as client:
            report = await asyncio.wait_for(app.state.scheduler_startup, timeout=30)
            assert report is not None and report["success"] is True
            await worker_running(service)
            response = await client.get("/debug/scheduler")
            assert response.status_code == 200
            health = response.json()["health"]
            assert health["ok"] is True and health["worker"]["running"] is True, health

            # the worker stops; a meeting ends and is two minutes overdue
            await service.shutdown()
            with sqlite3.connect(path, isolation_level=None) as conn:
                insert(conn, datetime.now(UTC) + timedelta(minutes=1))
            later = datetime.now(UTC) + timedelta(minutes=3, seconds=5)
            monkeypatch.setattr(SqliteBackend, "now", lambda self: later)
            response = await client.get("/debug/scheduler")
            assert response.status_code == 200
            health = response.json()["health"]
            assert health["overdue_meetings"] == 1, health
            assert health["worker"]["running"] is False and health["ok"] is False, health

    asyncio.run(scenario())
