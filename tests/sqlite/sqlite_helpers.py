"""Helpers of the SQLite suite (imported by the test modules)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any

UTC = timezone.utc


class FakeClock:
    """A settable clock returning aware UTC datetimes."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def set(self, when: datetime) -> None:
        self.current = when

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


def future(minutes: int = 60, *, second: int = 0, microsecond: int = 0) -> datetime:
    """A time in the real future (the triggers use SQLite's clock), at a chosen second."""
    base = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=minutes)
    return base.replace(second=second, microsecond=microsecond)


def insert(
    conn: sqlite3.Connection,
    end_time: str | datetime | None,
    *,
    meeting_id: str | None = None,
    status: str | None = None,
    title: str = "meeting",
) -> str:
    """Insert a meeting as an application would; returns its id."""
    value = end_time.isoformat() if isinstance(end_time, datetime) else end_time
    columns = ["title", "end_time"]
    values: list[Any] = [title, value]
    if meeting_id is not None:
        columns.append("id")
        values.append(meeting_id)
    if status is not None:
        columns.append("status")
        values.append(status)
    placeholders = ", ".join("?" for _ in values)
    row = conn.execute(
        f"INSERT INTO meetings ({', '.join(columns)}) VALUES ({placeholders}) RETURNING id", values
    ).fetchone()
    return str(row[0])


def meeting(conn: sqlite3.Connection, meeting_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM meetings WHERE id = ?", (meeting_id,)).fetchone()
    return None if row is None else dict(row)


def jobs(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """Our meetings' jobs by job name (the reconcile job excluded)."""
    return {
        row["jobname"]: dict(row)
        for row in conn.execute(
            "SELECT * FROM cron_job WHERE jobname LIKE 'meeting-status-%' "
            "AND jobname <> 'meeting-status-reconcile'"
        )
    }


def job(conn: sqlite3.Connection, meeting_id: str) -> dict[str, Any] | None:
    return jobs(conn).get(f"meeting-status-{meeting_id}")


def runs(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute("SELECT * FROM cron_job_run_details ORDER BY runid")]


def expected_schedule(end: datetime) -> str:
    """Independent of the code under test: round up to the minute, format without zeros."""
    utc = end.astimezone(UTC)
    minute = utc.replace(second=0, microsecond=0)
    if utc - minute >= timedelta(milliseconds=1):
        minute += timedelta(minutes=1)
    return f"{minute.minute} {minute.hour} {minute.day} {minute.month} *"
