"""Start-up on a new SQLite store says nothing false (issue 24, item 2: the store is migrated
before the waker starts, so the waker never advises running migrate) and says which setting gave
the database (item 10: a leftover DATABASE_URL wins over ENVIRONMENT=prod with SUPABASE_DB_URL,
and start-up and doctor say so)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlite_helpers import insert

from scheduler_admin import SchedulerService, config
from scheduler_admin.fastapi import include_scheduler
from tests.cli_helpers import run_json

UTC = timezone.utc
SUPABASE = "postgresql://postgres:Sb9xQ2pw@db.abcdefgh.supabase.co:5432/postgres"
FALSE_ADVICE = ("does not exist", "not migrated", "scheduler-admin migrate")


@pytest.fixture(autouse=True)
def _waker_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCHEDULER_WAKER", raising=False)
    monkeypatch.delenv("ENVIRONMENT", raising=False)


def status(path: Path, meeting_id: str) -> str:
    with sqlite3.connect(path) as conn:
        row = conn.execute("select status from meetings where id = ?", (meeting_id,)).fetchone()
    return str(row[0])


async def done_within(path: Path, meeting_id: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if status(path, meeting_id) == "done":
            return True
        await asyncio.sleep(0.05)
    return False


def assert_no_false_advice(caplog: pytest.LogCaptureFixture) -> None:
    said = [r.getMessage() for r in caplog.records if r.name.startswith("scheduler_admin")]
    wrong = [line for line in said if any(words in line for words in FALSE_ADVICE)]
    assert wrong == [], said


async def the_waker_completes_a_meeting(service: SchedulerService, path: Path) -> None:
    """The waker runs: a meeting that ends in a second is done within a few (the emulated
    worker fires per minute, so only the waker is this quick), and it never failed."""
    with sqlite3.connect(path, isolation_level=None) as conn:
        meeting_id = insert(conn, datetime.now(UTC) + timedelta(seconds=1))
    assert await done_within(path, meeting_id, 6.0)
    waker = service._waker
    assert waker is not None and waker.failures == 0


def test_start_on_a_new_store_migrates_before_the_waker(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="scheduler_admin")
    path = tmp_path / "scheduler_jobs.db"
    service = SchedulerService(config.resolve(f"sqlite:///{path}", {}))

    async def scenario() -> None:
        try:
            report = await service.start()
            assert report is not None and report["success"] is True
            await the_waker_completes_a_meeting(service, path)
        finally:
            await service.shutdown()

    asyncio.run(scenario())
    assert_no_false_advice(caplog)
    said = [r.getMessage() for r in caplog.records]
    migrated = next(i for i, line in enumerate(said) if line.startswith("migrated the SQLite"))
    started = next(i for i, line in enumerate(said) if line.startswith("waker started"))
    assert migrated < started


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            yield client


def test_fastapi_app_on_a_new_store_prints_no_migrate_advice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As with plain uvicorn: the app's default service, configured from the environment."""
    caplog.set_level(logging.DEBUG, logger="scheduler_admin")
    path = tmp_path / "scheduler_jobs.db"
    for name in ("SCHEDULER_DATABASE_URL", "DATABASE_URL", "SUPABASE_DB_URL", "SUPABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SCHEDULER_JOBSTORE_URL", f"sqlite:///{path}")
    service = SchedulerService()
    app = FastAPI()
    include_scheduler(app, service, delay=0)

    async def scenario() -> None:
        async with serving(app) as client:
            report = await asyncio.wait_for(app.state.scheduler_startup, timeout=30)
            assert report is not None and report["success"] is True
            await the_waker_completes_a_meeting(service, path)
            assert (await client.get("/debug/scheduler")).status_code == 200

    asyncio.run(scenario())
    assert_no_false_advice(caplog)


def test_a_migration_that_fails_still_starts_the_waker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The waker outlives a store that cannot be migrated yet: it backs off and resumes."""
    service = SchedulerService(config.resolve(f"sqlite:///{tmp_path / 'x.db'}", {}))

    def fail() -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(service, "_migrate_sqlite", fail)

    async def scenario() -> None:
        try:
            with pytest.raises(RuntimeError, match="disk full"):
                await service.start()
            assert service._waker is not None
        finally:
            await service.shutdown()

    asyncio.run(scenario())


def precedence_env(path: Path) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite:///{path}", "ENVIRONMENT": "prod", "SUPABASE_DB_URL": SUPABASE}


def test_start_up_says_which_setting_won_and_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scheduler_admin")
    path = tmp_path / "scheduler_jobs.db"
    service = SchedulerService(config.resolve(None, precedence_env(path)))

    async def scenario() -> None:
        try:
            await service.start()
        finally:
            await service.shutdown()

    asyncio.run(scenario())
    lines = [r for r in caplog.records if r.getMessage().startswith("scheduler database ")]
    assert len(lines) == 1
    assert lines[0].levelno == logging.WARNING
    assert lines[0].getMessage() == (
        f"scheduler database sqlite:///{path}: database URL from DATABASE_URL "
        "(ignored: SUPABASE_DB_URL, because DATABASE_URL comes first)"
    )
    assert "Sb9xQ2pw" not in caplog.text


def test_doctor_says_which_setting_won_and_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "scheduler_jobs.db"
    for name, value in precedence_env(path).items():
        monkeypatch.setenv(name, value)
    run_json(capsys, "migrate")
    capsys.readouterr()
    from tests.cli_helpers import run

    _, out, err = run(capsys, "doctor")
    first = out.splitlines()[0]
    assert first == (
        f"[ok] configuration: sqlite:///{path}: database URL from DATABASE_URL "
        "(ignored: SUPABASE_DB_URL, because DATABASE_URL comes first)"
    )
    assert "Sb9xQ2pw" not in out + err
