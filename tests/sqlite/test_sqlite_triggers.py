"""The SQLite triggers on meetings behave like the PostgreSQL ones, for any client."""

from __future__ import annotations

import re
import sqlite3
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlite_helpers import expected_schedule, future, insert, job, jobs, meeting

UTC = timezone.utc
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_insert_upcoming_registers_one_job(conn: sqlite3.Connection) -> None:
    end = future(90, second=0)
    meeting_id = insert(conn, end)
    registered = job(conn, meeting_id)
    assert registered is not None
    assert registered["schedule"] == expected_schedule(end)
    assert registered["command"] == f"complete_meeting('{meeting_id}')"
    assert registered["active"] == 1
    assert list(jobs(conn)) == [f"meeting-status-{meeting_id}"]


def test_default_id_is_a_uuid_v4(conn: sqlite3.Connection) -> None:
    ids = {insert(conn, future(30)) for _ in range(50)}
    assert len(ids) == 50
    assert all(UUID4.match(i) for i in ids), ids


def test_schedule_has_five_fields_without_leading_zeros(conn: sqlite3.Connection) -> None:
    year = datetime.now(UTC).year + 1
    meeting_id = insert(conn, f"{year}-12-01T14:05:00Z")
    assert job(conn, meeting_id)["schedule"] == "5 14 1 12 *"  # type: ignore[index]
    other = insert(conn, f"{year}-03-04T00:00:00Z")
    assert job(conn, other)["schedule"] == "0 0 4 3 *"  # type: ignore[index]


@pytest.mark.parametrize(
    ("seconds", "rounds_up"),
    [
        ("00", False),
        ("00.000", False),
        ("00.001", True),
        ("00.5", True),
        ("01", True),
        ("59.999", True),
    ],
)
def test_rounding_to_the_minute(conn: sqlite3.Connection, seconds: str, rounds_up: bool) -> None:
    year = datetime.now(UTC).year + 1
    meeting_id = insert(conn, f"{year}-06-15T10:30:{seconds}Z")
    schedule = job(conn, meeting_id)["schedule"]  # type: ignore[index]
    assert schedule == ("31 10 15 6 *" if rounds_up else "30 10 15 6 *")


def test_rounding_across_the_year_end(conn: sqlite3.Connection) -> None:
    year = datetime.now(UTC).year + 1
    meeting_id = insert(conn, f"{year}-12-31T23:59:30Z")
    assert job(conn, meeting_id)["schedule"] == "0 0 1 1 *"  # type: ignore[index]


@pytest.mark.parametrize(
    ("text", "stored", "schedule"),
    [
        ("{y}-12-01T10:00:00+05:30", "{y}-12-01T04:30:00+00:00", "30 4 1 12 *"),
        ("{y}-12-01T01:15:00+05:30", "{y}-11-30T19:45:00+00:00", "45 19 30 11 *"),
        ("{y}-12-31T20:00:00-05:00", "{y1}-01-01T01:00:00+00:00", "0 1 1 1 *"),
        ("{y}-12-01T10:00:00Z", "{y}-12-01T10:00:00+00:00", "0 10 1 12 *"),
        ("{y}-12-01 10:00:00", "{y}-12-01T10:00:00+00:00", "0 10 1 12 *"),
        ("{y}-12-01T10:00", "{y}-12-01T10:00:00+00:00", "0 10 1 12 *"),
        ("{y}-12-01T10:00:00.123456+00:00", "{y}-12-01T10:00:00.124+00:00", "1 10 1 12 *"),
        # a fraction finer than a millisecond rounds up, never down to the minute
        ("{y}-12-01T10:00:00.0004Z", "{y}-12-01T10:00:00.001+00:00", "1 10 1 12 *"),
        ("{y}-12-01T09:59:59.9996+00:00", "{y}-12-01T10:00:00+00:00", "0 10 1 12 *"),
    ],
)
def test_offsets_are_normalised_to_utc(
    conn: sqlite3.Connection, text: str, stored: str, schedule: str
) -> None:
    y = datetime.now(UTC).year + 1
    meeting_id = insert(conn, text.format(y=y))
    row = meeting(conn, meeting_id)
    assert row is not None
    assert row["end_time"] == stored.format(y=y, y1=y + 1)
    assert row["status"] == "upcoming"
    assert job(conn, meeting_id)["schedule"] == schedule  # type: ignore[index]


def test_start_time_is_not_touched(conn: sqlite3.Connection) -> None:
    """Only id, status and end_time matter (an existing table may not even have start_time)."""
    y = datetime.now(UTC).year + 1
    conn.execute(
        "INSERT INTO meetings (id, start_time, end_time) VALUES ('s', ?, ?)",
        (f"{y}-12-01T09:00:00+01:00", f"{y}-12-01T10:00:00+01:00"),
    )
    row = meeting(conn, "s")
    assert row is not None
    assert (row["start_time"], row["end_time"]) == (
        f"{y}-12-01T09:00:00+01:00",
        f"{y}-12-01T09:00:00+00:00",
    )


def test_end_time_moved_reschedules_the_same_job(conn: sqlite3.Connection) -> None:
    meeting_id = insert(conn, future(60))
    before = job(conn, meeting_id)
    later = future(24 * 60 + 7, second=30)
    conn.execute("UPDATE meetings SET end_time = ? WHERE id = ?", (later.isoformat(), meeting_id))
    after = job(conn, meeting_id)
    assert after is not None and before is not None
    assert after["jobid"] == before["jobid"]
    assert after["schedule"] == expected_schedule(later)
    assert len(jobs(conn)) == 1


def test_same_instant_in_another_offset_keeps_the_job(conn: sqlite3.Connection) -> None:
    end = future(120)
    meeting_id = insert(conn, end)
    before = job(conn, meeting_id)
    shifted = end.astimezone(timezone(timedelta(hours=-3)))
    conn.execute("UPDATE meetings SET end_time = ? WHERE id = ?", (shifted.isoformat(), meeting_id))
    assert job(conn, meeting_id) == before
    assert meeting(conn, meeting_id)["end_time"] == end.strftime("%Y-%m-%dT%H:%M:%S+00:00")  # type: ignore[index]


@pytest.mark.parametrize("new_status", ["done", "cancelled"])
def test_leaving_upcoming_removes_the_job_and_coming_back_restores_it(
    conn: sqlite3.Connection, new_status: str
) -> None:
    end = future(45, second=10)
    meeting_id = insert(conn, end)
    conn.execute("UPDATE meetings SET status = ? WHERE id = ?", (new_status, meeting_id))
    assert job(conn, meeting_id) is None
    conn.execute("UPDATE meetings SET status = 'upcoming' WHERE id = ?", (meeting_id,))
    restored = job(conn, meeting_id)
    assert restored is not None and restored["schedule"] == expected_schedule(end)


def test_delete_removes_the_job_and_keeps_others(conn: sqlite3.Connection) -> None:
    first = insert(conn, future(30))
    second = insert(conn, future(40))
    conn.execute("DELETE FROM meetings WHERE id = ?", (first,))
    assert set(jobs(conn)) == {f"meeting-status-{second}"}


def test_id_change_moves_the_job(conn: sqlite3.Connection) -> None:
    insert(conn, future(30), meeting_id="old-id")
    conn.execute("UPDATE meetings SET id = 'new-id' WHERE id = 'old-id'")
    assert set(jobs(conn)) == {"meeting-status-new-id"}
    assert job(conn, "new-id")["command"] == "complete_meeting('new-id')"  # type: ignore[index]


def test_quotes_in_ids_are_quoted_in_the_command(conn: sqlite3.Connection) -> None:
    insert(conn, future(30), meeting_id="it's")
    assert job(conn, "it's")["command"] == "complete_meeting('it''s')"  # type: ignore[index]


@pytest.mark.parametrize("past", [timedelta(seconds=1), timedelta(days=400)])
def test_upcoming_in_the_past_is_stored_done_without_a_job(
    conn: sqlite3.Connection, past: timedelta
) -> None:
    meeting_id = insert(conn, datetime.now(UTC) - past)
    assert meeting(conn, meeting_id)["status"] == "done"  # type: ignore[index]
    assert jobs(conn) == {}


def test_moving_an_upcoming_meeting_into_the_past_completes_it(conn: sqlite3.Connection) -> None:
    meeting_id = insert(conn, future(30))
    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    conn.execute("UPDATE meetings SET end_time = ? WHERE id = ?", (past, meeting_id))
    assert meeting(conn, meeting_id)["status"] == "done"  # type: ignore[index]
    assert jobs(conn) == {}


def test_done_and_cancelled_inserts_get_no_job(conn: sqlite3.Connection) -> None:
    insert(conn, future(30), status="done")
    insert(conn, future(30), status="cancelled")
    assert jobs(conn) == {}


def test_title_update_leaves_the_job_alone(conn: sqlite3.Connection) -> None:
    meeting_id = insert(conn, future(30))
    before = job(conn, meeting_id)
    conn.execute("UPDATE meetings SET title = 'renamed' WHERE id = ?", (meeting_id,))
    assert job(conn, meeting_id) == before


@pytest.mark.parametrize(
    ("end_time", "message"),
    [
        (None, "end_time is required"),
        ("", "end_time is not a valid time"),
        ("tomorrow", "end_time is not a valid time"),
        ("2030-12-01", "end_time is not a valid time"),
        ("2030-02-30T10:00:00Z", "end_time is not a valid time"),
        ("2030-12-01T24:00:00Z", "end_time is not a valid time"),
        ("2030-12-01T10:00:60Z", "end_time is not a valid time"),
        ("2030-12-01T10:00:00+0530", "end_time is not a valid time"),
        ("2030-12-01T10:00:00 garbage", "end_time is not a valid time"),
        (2461375.5, "end_time is not a valid time"),
    ],
)
def test_bad_end_time_is_rejected_and_not_written(
    conn: sqlite3.Connection, end_time: object, message: str
) -> None:
    with pytest.raises(sqlite3.IntegrityError, match=message) as raised:
        conn.execute("INSERT INTO meetings (id, end_time) VALUES ('bad', ?)", (end_time,))
    assert "ISO-8601" in str(raised.value) and "2026-12-01T15:30:00Z" in str(raised.value)
    assert meeting(conn, "bad") is None
    assert jobs(conn) == {}


@pytest.mark.parametrize(
    ("status", "message"),
    [
        # the table's own constraints refuse them (unknown statuses are not ours to refuse)
        (None, "NOT NULL constraint failed: meetings.status"),
        ("pending", "CHECK constraint failed: meetings_status_check"),
        ("UPCOMING", "CHECK constraint failed: meetings_status_check"),
        ("", "CHECK constraint failed: meetings_status_check"),
    ],
)
def test_a_status_the_table_refuses_is_not_written(
    conn: sqlite3.Connection, status: str | None, message: str
) -> None:
    with pytest.raises(sqlite3.IntegrityError, match=message):
        conn.execute(
            "INSERT INTO meetings (id, end_time, status) VALUES ('bad', ?, ?)",
            (future(30).isoformat(), status),
        )
    assert meeting(conn, "bad") is None


def test_bad_update_is_rejected_and_the_row_kept(conn: sqlite3.Connection) -> None:
    end = future(30)
    meeting_id = insert(conn, end)
    before = (meeting(conn, meeting_id), job(conn, meeting_id))
    with pytest.raises(sqlite3.IntegrityError, match="end_time is required"):
        conn.execute("UPDATE meetings SET end_time = NULL WHERE id = ?", (meeting_id,))
    with pytest.raises(sqlite3.IntegrityError, match="end_time is not a valid time"):
        conn.execute("UPDATE meetings SET end_time = 'soon' WHERE id = ?", (meeting_id,))
    with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
        conn.execute("UPDATE meetings SET status = 'archived' WHERE id = ?", (meeting_id,))
    assert (meeting(conn, meeting_id), job(conn, meeting_id)) == before


def test_a_bad_row_aborts_the_whole_statement(conn: sqlite3.Connection) -> None:
    good = future(30).isoformat()
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO meetings (id, end_time) VALUES ('a', ?), ('b', 'never'), ('c', ?)",
            (good, good),
        )
    assert conn.execute("SELECT count(*) FROM meetings").fetchone()[0] == 0
    assert jobs(conn) == {}


def test_reconcile_is_a_reserved_id(conn: sqlite3.Connection) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="reserved"):
        insert(conn, future(30), meeting_id="reconcile")


def test_paused_registers_nothing_but_still_unschedules(conn: sqlite3.Connection) -> None:
    kept = insert(conn, future(30))
    conn.execute("UPDATE scheduler_settings SET enabled = 0")
    paused = insert(conn, future(40))
    assert job(conn, paused) is None
    conn.execute("UPDATE meetings SET status = 'cancelled' WHERE id = ?", (kept,))
    assert jobs(conn) == {}
    # Past end times still complete at once while paused (no job either way).
    past = insert(conn, datetime.now(UTC) - timedelta(minutes=1))
    assert meeting(conn, past)["status"] == "done"  # type: ignore[index]
    conn.execute("UPDATE scheduler_settings SET enabled = 1")
    resumed = insert(conn, future(50))
    assert set(jobs(conn)) == {f"meeting-status-{resumed}"}


def test_bulk_insert_of_ten_thousand_rows_makes_ten_thousand_jobs(conn: sqlite3.Connection) -> None:
    started = time.monotonic()
    conn.execute(
        """WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
           INSERT INTO meetings (title, end_time)
           SELECT 'bulk ' || i,
                  strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '+1 day', '+' || i || ' minutes')
             FROM n"""
    )
    elapsed = time.monotonic() - started
    assert (
        conn.execute("SELECT count(*) FROM meetings WHERE status = 'upcoming'").fetchone()[0]
        == 10000
    )
    mismatched = conn.execute(
        """SELECT count(*) FROM meetings m
             LEFT JOIN cron_job j ON j.jobname = 'meeting-status-' || m.id
            WHERE j.jobid IS NULL OR j.command <> 'complete_meeting(''' || m.id || ''')'"""
    ).fetchone()[0]
    assert mismatched == 0
    assert len(jobs(conn)) == 10000
    assert elapsed < 30, f"bulk insert took {elapsed:.1f}s"
    # ... and one UPDATE of all of them removes all the jobs.
    conn.execute("UPDATE meetings SET status = 'cancelled'")
    assert jobs(conn) == {}


def test_recursive_triggers_on_terminates_with_the_same_result(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA recursive_triggers = ON")
    y = datetime.now(UTC).year + 1
    meeting_id = insert(conn, f"{y}-12-01T10:00:00+02:00")
    assert meeting(conn, meeting_id)["end_time"] == f"{y}-12-01T08:00:00+00:00"  # type: ignore[index]
    assert job(conn, meeting_id)["schedule"] == "0 8 1 12 *"  # type: ignore[index]
    past = insert(conn, datetime.now(UTC) - timedelta(hours=1))
    assert meeting(conn, past)["status"] == "done"  # type: ignore[index]
    assert job(conn, past) is None


def test_writes_inside_a_rolled_back_transaction_leave_no_job(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN")
    insert(conn, future(30), meeting_id="rolled-back")
    assert job(conn, "rolled-back") is not None
    conn.execute("ROLLBACK")
    assert jobs(conn) == {}
