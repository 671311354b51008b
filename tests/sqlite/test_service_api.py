"""The original service's API, on the SQLite default: start, schedule, cancel, recover, list."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from scheduler_admin import SchedulerService, config
from scheduler_admin.exceptions import MeetingNotFound
from scheduler_admin.migrate import upgrade


def service_with_a_meeting(path: Path, end: datetime) -> tuple[SchedulerService, str]:
    """A service on a migrated SQLite file holding one upcoming meeting; and its id."""
    url = f"sqlite:///{path}"
    upgrade(url=url)
    meeting_id = str(uuid.uuid4())
    with sqlite3.connect(path) as conn:
        conn.execute(
            "insert into meetings (id, title, end_time) values (?, 'x', ?)",
            (meeting_id, end.isoformat()),
        )
    return SchedulerService(config.resolve(url, {})), meeting_id


def test_service_api_round_trip(tmp_path: Path) -> None:
    end = datetime.now(timezone.utc) + timedelta(days=2)
    service, meeting_id = service_with_a_meeting(tmp_path / "api.db", end)

    async def scenario() -> None:
        report = await service.start()
        try:
            assert report is not None
            assert (report["total_meetings"], report["jobs_already_exist"]) == (1, 1)
            moved = end + timedelta(hours=1, seconds=1)
            result = await service.schedule_meeting_status_update(meeting_id, moved)
            stored = datetime.fromisoformat(result["job"]["end_time"])
            assert abs(stored - moved) < timedelta(milliseconds=1)
            jobs = await service.get_scheduled_jobs()
            names = {j["job_name"] for j in jobs}
            assert f"meeting-status-{meeting_id}" in names
            cancelled = await service.cancel_meeting_status_update(meeting_id)
            assert cancelled["status"] == "cancelled"
            jobs = await service.get_scheduled_jobs()
            assert f"meeting-status-{meeting_id}" not in {j["job_name"] for j in jobs}
            with pytest.raises(MeetingNotFound):
                await service.cancel_meeting_status_update(str(uuid.uuid4()))
        finally:
            await service.shutdown()

    asyncio.run(scenario())


def test_disabled_service_does_nothing_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'off.db'}"
    service = SchedulerService(config.resolve(url, {"ENABLE_MEETING_STATUS_UPDATES": "false"}))
    assert asyncio.run(service.start()) is None
    assert "ENABLE_MEETING_STATUS_UPDATES=false" in caplog.text
    assert not (tmp_path / "off.db").exists()


def test_get_scheduled_jobs_works_called_as_the_original_service_called_it(
    tmp_path: Path,
) -> None:
    """The original service called get_scheduled_jobs() without await and returned the result
    from a FastAPI route: that gives a list, the same list await gives, and a 200 response."""
    import httpx
    from fastapi import FastAPI

    end = datetime.now(timezone.utc) + timedelta(days=1)
    service, meeting_id = service_with_a_meeting(tmp_path / "jobs.db", end)

    jobs = service.get_scheduled_jobs()
    assert isinstance(jobs, list)
    assert f"meeting-status-{meeting_id}" in {j["job_name"] for j in jobs}

    async def awaited() -> list[object]:
        return list(await service.get_scheduled_jobs())

    assert asyncio.run(awaited()) == list(jobs)
    assert asyncio.run(service.list_jobs()) == list(jobs)

    app = FastAPI()

    @app.get("/jobs")
    async def route() -> object:
        return service.get_scheduled_jobs()  # no await, as in the original service

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.get("/jobs")

    response = asyncio.run(get())
    assert response.status_code == 200
    assert response.json() == list(jobs)
