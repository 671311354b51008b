"""Small helpers shared by the PostgreSQL tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import psycopg

Conn = psycopg.Connection[Any]
JOB_PATTERN = "^meeting-status-[0-9a-f-]{36}$"
T = TypeVar("T")


def meeting_jobs(conn: Conn) -> dict[str, tuple[str, str]]:
    """Every meeting job of ours: job name -> (schedule, command)."""
    rows = conn.execute(
        "select jobname, schedule, command from cron.job where jobname ~ %s", (JOB_PATTERN,)
    ).fetchall()
    return {name: (schedule, command) for name, schedule, command in rows}


def job_name(meeting_id: object) -> str:
    return f"meeting-status-{meeting_id}"


def insert_meeting(
    conn: Conn, end_time: datetime | str, status: str = "upcoming", title: str = "m"
) -> tuple[Any, str]:
    """Insert one meeting; return (id, stored status)."""
    row = conn.execute(
        "insert into meetings (title, end_time, status) values (%s, %s, %s) returning id, status",
        (title, end_time, status),
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def status_of(conn: Conn, meeting_id: object) -> str | None:
    row = conn.execute("select status from meetings where id = %s", (meeting_id,)).fetchone()
    return None if row is None else str(row[0])


def expected_schedule(end_time: datetime) -> str:
    """The five-field UTC schedule of the first minute at or after end_time, computed in Python."""
    from datetime import timedelta, timezone

    utc = end_time.astimezone(timezone.utc)
    minute = utc.replace(second=0, microsecond=0)
    if minute < utc:
        minute += timedelta(minutes=1)
    return f"{minute.minute} {minute.hour} {minute.day} {minute.month} *"


def poll(condition: Callable[[], T], timeout: float, interval: float = 0.5) -> T:
    """Evaluate condition until it is truthy or timeout seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    return condition()
