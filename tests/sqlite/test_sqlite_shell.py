"""Writes from the sqlite3 command-line shell go through the same triggers."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from skip_helpers import require_or_skip
from sqlite_helpers import job, jobs, meeting

UTC = timezone.utc
SQLITE3 = shutil.which("sqlite3")


@pytest.fixture(autouse=True)
def _sqlite3_shell() -> None:
    if SQLITE3 is None:
        require_or_skip(
            "the sqlite3 command-line shell is not installed (scripts/install-postgres.sh "
            "installs it)"
        )


def shell(db_path: Path, sql: str) -> subprocess.CompletedProcess[str]:
    assert SQLITE3 is not None
    return subprocess.run(
        [SQLITE3, "-bail", str(db_path)], input=sql, capture_output=True, text=True, timeout=60
    )


def test_shell_insert_update_delete(db_path: Path, conn: sqlite3.Connection) -> None:
    year = datetime.now(UTC).year + 1
    done = shell(
        db_path,
        f"""
        INSERT INTO meetings (id, title, end_time)
            VALUES ('cli-1', 'from the shell', '{year}-07-04T09:15:00+02:00');
        INSERT INTO meetings (id, title, end_time)
            VALUES ('cli-2', 'second', '{year}-07-04T09:15:01Z');
        INSERT INTO meetings (id, title, end_time)
            VALUES ('cli-past', 'past', '2001-01-01T00:00:00Z');
        """,
    )
    assert done.returncode == 0, done.stderr
    assert meeting(conn, "cli-1")["end_time"] == f"{year}-07-04T07:15:00+00:00"  # type: ignore[index]
    assert job(conn, "cli-1")["schedule"] == "15 7 4 7 *"  # type: ignore[index]
    assert job(conn, "cli-2")["schedule"] == "16 9 4 7 *"  # type: ignore[index]
    assert meeting(conn, "cli-past")["status"] == "done"  # type: ignore[index]
    assert job(conn, "cli-past") is None

    moved = shell(
        db_path,
        f"""
        UPDATE meetings SET end_time = '{year}-08-01T12:00:00Z' WHERE id = 'cli-1';
        UPDATE meetings SET status = 'cancelled' WHERE id = 'cli-2';
        """,
    )
    assert moved.returncode == 0, moved.stderr
    assert job(conn, "cli-1")["schedule"] == "0 12 1 8 *"  # type: ignore[index]
    assert job(conn, "cli-2") is None

    deleted = shell(db_path, "DELETE FROM meetings WHERE id = 'cli-1';")
    assert deleted.returncode == 0, deleted.stderr
    assert jobs(conn) == {}


def test_shell_bad_input_is_rejected(db_path: Path, conn: sqlite3.Connection) -> None:
    result = shell(
        db_path, "INSERT INTO meetings (id, end_time) VALUES ('cli-bad', 'next tuesday');"
    )
    assert result.returncode != 0
    assert "end_time is not a valid time" in result.stderr
    assert meeting(conn, "cli-bad") is None
    result = shell(db_path, "INSERT INTO meetings (id) VALUES ('cli-null');")
    assert result.returncode != 0
    assert "end_time is required" in result.stderr
    assert meeting(conn, "cli-null") is None


def test_shell_sees_the_worker_complete_a_meeting(db_path: Path, conn: sqlite3.Connection) -> None:
    """End to end: the shell schedules, the worker (at the job's minute) completes."""
    from scheduler_admin.sqlite.worker import CronWorker

    end = (datetime.now(UTC) + timedelta(minutes=10)).replace(second=20, microsecond=0)
    assert (
        shell(
            db_path, f"INSERT INTO meetings (id, end_time) VALUES ('e2e', '{end.isoformat()}');"
        ).returncode
        == 0
    )
    worker = CronWorker(db_path, clock=lambda: end + timedelta(seconds=40))
    result = worker.tick()
    assert result.runs[0].job_name == "meeting-status-e2e"
    out = shell(db_path, "SELECT status FROM meetings WHERE id = 'e2e';")
    assert out.stdout.strip() == "done"
