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


def test_service_api_round_trip(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    upgrade(url=url)
    meeting_id = str(uuid.uuid4())
    end = datetime.now(timezone.utc) + timedelta(days=2)
    with sqlite3.connect(tmp_path / "api.db") as conn:
        conn.execute(
            "insert into meetings (id, title, end_time) values (?, 'x', ?)",
            (meeting_id, end.isoformat()),
        )
    service = SchedulerService(config.resolve(url, {}))

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
