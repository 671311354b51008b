"""The waker on SQLite, in-process: a re-poll of the next end time (every second at most) and the
twin of scheduler.wake(); and the service starting and stopping it."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import statistics
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlite_helpers import insert

from scheduler_admin import config
from scheduler_admin.backends.sqlite import SqliteBackend
from scheduler_admin.service import SchedulerService
from scheduler_admin.sqlite.connection import from_db_time, to_db_time
from scheduler_admin.waker import SQLITE_POLL, PollingSource, Waker

UTC = timezone.utc
BOUND = 0.5  # seconds after its end_time by which a meeting must be done


def poll(condition: object, timeout: float) -> bool:
    import time

    assert callable(condition)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def lateness(conn: sqlite3.Connection, ids: list[str], timeout: float) -> list[float]:
    marks = ",".join("?" for _ in ids)

    def done() -> bool:
        row = conn.execute(
            f"SELECT count(*) FROM meetings WHERE status = 'done' AND id IN ({marks})", ids
        ).fetchone()
        return bool(row[0] == len(ids))

    assert poll(done, timeout), "the meetings were not completed in time"
    late = []
    for row in conn.execute(
        f"SELECT end_time, updated_at FROM meetings WHERE id IN ({marks})", ids
    ):
        end, updated = from_db_time(row[0]), from_db_time(row[1])
        assert end is not None and updated is not None
        late.append((updated - end).total_seconds())
    return late


def ends(*offsets: float) -> list[datetime]:
    now = datetime.now(UTC)
    return [now + timedelta(seconds=s) for s in offsets]


def test_meetings_are_done_within_half_a_second_of_their_end(
    db_path: Path, conn: sqlite3.Connection
) -> None:
    waker = Waker(PollingSource(SqliteBackend(db_path), SQLITE_POLL, str(db_path)))
    waker.start_thread()
    try:
        assert poll(lambda: waker.cycles >= 1, 5)
        # inserted after the waker's first look: found by its re-poll
        ids = [insert(conn, to_db_time(end)) for end in ends(1.5, 1.9, 2.6)]
        late = lateness(conn, ids, timeout=10)
    finally:
        waker.stop()
    print(
        f"\n[waker latency] SQLite: n={len(late)} p50={statistics.median(late):.3f}s "
        f"max={max(late):.3f}s"
    )
    assert all(0 <= s <= BOUND for s in late), late
    assert waker.completed == 3 and waker.failures == 0


def test_the_service_starts_and_stops_the_waker(
    db_path: Path, conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCHEDULER_WAKER", raising=False)
    service = SchedulerService(config.resolve(f"sqlite:///{db_path}", env={}))

    async def run() -> list[float]:
        await service.start()
        try:
            (meeting_id,) = [insert(conn, to_db_time(end)) for end in ends(1.5)]

            def wait() -> list[float]:
                with contextlib.closing(sqlite3.connect(db_path)) as own:
                    return lateness(own, [meeting_id], 10)

            return await asyncio.to_thread(wait)
        finally:
            await service.shutdown()

    late = asyncio.run(run())
    assert 0 <= late[0] <= BOUND
    assert service._waker is None


def test_scheduler_waker_false_leaves_it_off(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEDULER_WAKER", "false")
    service = SchedulerService(config.resolve(f"sqlite:///{db_path}", env={}))
    assert service.start_waker() is False
    assert service._waker is None


def test_wake_twin_never_completes_early(db_path: Path, conn: sqlite3.Connection) -> None:
    (later,) = ends(30)
    meeting_id = insert(conn, to_db_time(later))
    result = SqliteBackend(db_path).wake()
    assert result["completed"] == 0 and result["paused"] is False
    assert result["next_end_time"] is not None
    assert from_db_time(result["next_end_time"]) == from_db_time(to_db_time(later))
    row = conn.execute("SELECT status FROM meetings WHERE id = ?", (meeting_id,)).fetchone()
    assert row[0] == "upcoming"
