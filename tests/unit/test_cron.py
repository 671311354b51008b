"""The five-field cron matcher and next-run calculator."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from scheduler_admin import cron
from scheduler_admin.schema import read_sql
from scheduler_admin.sqlite_script import execute_sqlite_script

UTC = timezone.utc


def at(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def brute_next(
    expression: str, after: datetime, limit: timedelta = timedelta(days=800)
) -> datetime | None:
    """Reference: step minute by minute (slow, obviously right)."""
    current = after.replace(second=0, microsecond=0)
    if current < after:
        current += timedelta(minutes=1)
    end = after + limit
    while current <= end:
        if cron.matches(expression, current):
            return current
        current += timedelta(minutes=1)
    return None


@pytest.mark.parametrize(
    ("expression", "when", "expected"),
    [
        ("* * * * *", at(2026, 1, 1, 0, 0), True),
        ("5 14 1 12 *", at(2026, 12, 1, 14, 5), True),
        ("5 14 1 12 *", at(2026, 12, 1, 14, 6), False),
        ("5 14 1 12 *", at(2027, 12, 1, 14, 5), True),  # repeats every year
        ("*/15 * * * *", at(2026, 5, 5, 5, 45), True),
        ("*/15 * * * *", at(2026, 5, 5, 5, 46), False),
        ("10-20/5 * * * *", at(2026, 5, 5, 5, 15), True),
        ("10-20/5 * * * *", at(2026, 5, 5, 5, 25), False),
        ("5/20 * * * *", at(2026, 5, 5, 5, 45), True),
        ("0 9-17 * * *", at(2026, 5, 5, 17, 0), True),
        ("0 9-17 * * *", at(2026, 5, 5, 18, 0), False),
        ("0 0 1,15 * *", at(2026, 5, 15, 0, 0), True),
        ("0 0 * jan,Mar *", at(2026, 3, 2, 0, 0), True),
        ("0 0 * * mon-fri", at(2026, 11, 29, 0, 0), False),  # a Sunday
        ("0 0 * * 0", at(2026, 11, 29, 0, 0), True),
        ("0 0 * * 7", at(2026, 11, 29, 0, 0), True),  # 7 is Sunday too
        ("0 0 * * sun", at(2026, 11, 29, 0, 0), True),
        # Both day fields restricted: either matches (Vixie cron).
        ("0 0 13 * 5", at(2026, 11, 13, 0, 0), True),  # the 13th, a Friday
        ("0 0 13 * 5", at(2026, 11, 20, 0, 0), True),  # a Friday
        ("0 0 13 * 5", at(2026, 11, 14, 0, 0), False),
        # A stepped star still counts as "*" for that rule.
        ("0 0 */2 * 1", at(2026, 11, 30, 0, 0), False),  # Monday the 30th: day even -> no
        ("@daily", at(2026, 1, 1, 0, 0), True),
        ("@hourly", at(2026, 1, 1, 7, 0), True),
        ("@hourly", at(2026, 1, 1, 7, 1), False),
    ],
)
def test_matches(expression: str, when: datetime, expected: bool) -> None:
    assert cron.matches(expression, when) is expected


def test_matches_uses_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert cron.matches("0 12 * * *", datetime(2026, 6, 1, 14, 0, tzinfo=plus_two))
    assert not cron.matches("0 14 * * *", datetime(2026, 6, 1, 14, 0, tzinfo=plus_two))


@pytest.mark.parametrize(
    "expression",
    [
        "* * * * *",
        "5 14 1 12 *",
        "*/7 3 * * *",
        "0 0 13 * 5",
        "30 2 * * 1-5",
        "0 0 31 * *",
        "0 12 1 1,7 *",
    ],
)
@pytest.mark.parametrize(
    "after",
    [
        at(2026, 11, 29, 11, 0),
        datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC),
        at(2027, 2, 27, 3, 0),
    ],
)
def test_next_run_agrees_with_brute_force(expression: str, after: datetime) -> None:
    assert cron.next_run(expression, after) == brute_next(expression, after)


def test_next_run_at_or_after() -> None:
    assert cron.next_run("5 14 1 12 *", at(2026, 12, 1, 14, 5)) == at(2026, 12, 1, 14, 5)
    assert cron.next_run("5 14 1 12 *", datetime(2026, 12, 1, 14, 5, 1, tzinfo=UTC)) == at(
        2027, 12, 1, 14, 5
    )
    assert cron.next_run("* * * * *", datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC)) == at(
        2026, 1, 1, 0, 1
    )


def test_next_run_of_rare_schedules() -> None:
    assert cron.next_run("0 0 29 2 *", at(2026, 3, 1, 0, 0)) == at(2028, 2, 29, 0, 0)
    assert cron.next_run("0 0 30 2 *", at(2026, 3, 1, 0, 0)) is None  # never


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "* * * *",
        "* * * * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * * 13 *",
        "* * * * 8",
        "a * * * *",
        "*/0 * * * *",
        "5-1 * * * *",
        "1,,2 * * * *",
        "-1 * * * *",
        "30 seconds",
    ],
)
def test_invalid_expressions(expression: str) -> None:
    with pytest.raises(cron.CronError):
        cron.parse(expression)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        cron.matches("* * * * *", datetime(2026, 1, 1))


@pytest.fixture(scope="module")
def views() -> Iterator[sqlite3.Connection]:
    """The SQLite tables and views (no triggers): the rule of scheduler_meeting_jobs alone."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    for name in ("10_schema.sql", "20_views.sql"):
        execute_sqlite_script(conn, read_sql("sqlite", name))
    yield conn
    conn.close()


@pytest.mark.parametrize(
    ("end_time", "expected"),
    [
        (datetime(2026, 12, 1, 14, 5, tzinfo=UTC), "5 14 1 12 *"),
        # SQLite reads a finer fraction to the nearest millisecond: 0.000999 s is 0.001 s, past
        # the minute (the triggers store it rounded up too)
        (datetime(2026, 12, 1, 14, 5, 0, 999, tzinfo=UTC), "6 14 1 12 *"),
        (datetime(2026, 12, 1, 14, 5, 0, 500000, tzinfo=UTC), "6 14 1 12 *"),
        (datetime(2026, 12, 1, 14, 5, 1, tzinfo=UTC), "6 14 1 12 *"),
        (datetime(2026, 12, 31, 23, 59, 1, tzinfo=UTC), "0 0 1 1 *"),
        (
            datetime(2026, 12, 1, 10, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            "30 4 1 12 *",
        ),
    ],
)
def test_the_schedule_of_a_meeting_fires_at_or_after_its_end(
    views: sqlite3.Connection, end_time: datetime, expected: str
) -> None:
    """The one schedule rule on SQLite is the view scheduler_meeting_jobs (the twin of
    scheduler.cron_schedule()); the cron parser fires its schedule at or after the end time."""
    meeting_id = uuid.uuid4().hex
    views.execute(
        "INSERT INTO meetings (id, end_time) VALUES (?, ?)", (meeting_id, end_time.isoformat())
    )
    [(schedule,)] = views.execute(
        "SELECT schedule FROM scheduler_meeting_jobs WHERE meeting_id = ?", (meeting_id,)
    ).fetchall()
    assert schedule == expected
    fired = cron.next_run(schedule, end_time - timedelta(minutes=1))
    assert fired is not None and fired >= end_time
