"""scheduler-admin against a migrated PostgreSQL with pg_cron, in table and JSON form."""

from __future__ import annotations

import socket
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
from cli_helpers import run, run_json
from clock_helpers import future_on
from pg_helpers import Conn, Server, insert_meeting, job_name, meeting_jobs, status_of
from skip_helpers import require_or_skip

from scheduler_admin.backends.postgres import PostgresBackend

FUTURE = future_on(5, 5, 10, 0, 30)  # 5 May, 10:00:30 UTC, at least 30 days ahead
YEAR = FUTURE.year


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SCHEDULER_DATABASE_URL", "DATABASE_URL", "ENVIRONMENT", "SUPABASE_DB_URL"):
        monkeypatch.delenv(name, raising=False)


def test_list_jobs_json_and_table(
    db: Conn, migrated: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    meeting_id, _ = insert_meeting(db, FUTURE)
    jobs = run_json(capsys, "--database-url", migrated.url, "list-jobs")
    by_name = {j["job_name"]: j for j in jobs}
    assert set(by_name) == {job_name(meeting_id), "meeting-status-reconcile"}
    job = by_name[job_name(meeting_id)]
    assert job["meeting_id"] == str(meeting_id)
    assert job["schedule"] == "1 10 5 5 *"
    # the next firing of the five-field schedule: this year's or next year's 5 May 10:01 UTC
    now = datetime.now(timezone.utc)
    year = (
        now.year if now < now.replace(month=5, day=5, hour=10, minute=1, second=0) else now.year + 1
    )
    assert job["next_run"] == f"{year}-05-05T10:01:00+00:00"
    assert job["end_time"] == FUTURE.isoformat()
    assert job["meeting_status"] == "upcoming"
    code, out, _ = run(capsys, "--database-url", migrated.url, "list-jobs")
    assert code == 0
    assert job_name(meeting_id) in out and "NEXT RUN (UTC)" in out


def test_recover_reports_and_repairs(
    db: Conn, migrated: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    db.execute("set session_replication_role = replica")
    db.execute(
        "insert into meetings (title, end_time) values ('a', %s), ('b', %s), ('c', now() - interval '1 hour')",
        (FUTURE, FUTURE + timedelta(days=1)),
    )
    db.execute("set session_replication_role = origin")
    dry = run_json(capsys, "--database-url", migrated.url, "recover", "--dry-run")
    assert meeting_jobs(db) == {}
    report = run_json(capsys, "--database-url", migrated.url, "recover")
    assert {k: report[k] for k in dry if k != "dry_run"} == {
        k: dry[k] for k in dry if k != "dry_run"
    }
    assert report["total_meetings"] == 3
    assert report["jobs_scheduled"] == 2
    assert report["overdue_completed"] == 1
    assert report["success"] is True and report["errors"] == []
    assert len(meeting_jobs(db)) == 2
    again = run_json(capsys, "--database-url", migrated.url, "recover")
    assert (again["jobs_scheduled"], again["jobs_already_exist"]) == (0, 2)


def test_schedule_and_cancel(
    db: Conn, migrated: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    meeting_id, _ = insert_meeting(db, FUTURE)
    result = run_json(
        capsys,
        "--database-url",
        migrated.url,
        "schedule",
        str(meeting_id),
        f"{YEAR}-05-05T12:00:00+02:00",
    )
    assert result["status"] == "upcoming"
    assert result["job"]["schedule"] == "0 10 5 5 *"
    assert meeting_jobs(db)[job_name(meeting_id)][0] == "0 10 5 5 *"
    result = run_json(capsys, "--database-url", migrated.url, "cancel", str(meeting_id))
    assert (result["status"], result["jobs_removed"]) == ("cancelled", 1)
    assert status_of(db, meeting_id) == "cancelled" and meeting_jobs(db) == {}
    # again: the meeting is no longer upcoming, and cancel says so and fails
    code, out, err = run(capsys, "--database-url", migrated.url, "cancel", str(meeting_id))
    assert (code, out) == (1, "")
    assert err.startswith(
        f"Error: meeting {meeting_id} is cancelled, not upcoming: nothing to cancel\n"
        "Hint: Only a meeting in status upcoming can be cancelled. A job left over for another "
        "one goes with the next reconcile (scheduler-admin reconcile)."
    )
    assert status_of(db, meeting_id) == "cancelled"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("schedule", "not-a-uuid", f"{YEAR + 1}-01-01T00:00:00Z"),
            "no meeting with id not-a-uuid\nHint: Meeting ids are UUIDs.",
        ),
        (("cancel", "not-a-uuid"), "no meeting with id not-a-uuid\nHint: Meeting ids are UUIDs."),
        (("schedule", "{id}", "tomorrow at noon"), "cannot parse end time 'tomorrow at noon'"),
        (
            ("schedule", "{id}", f"{YEAR + 1}-01-01T10:00:00"),
            f"end time {YEAR + 1}-01-01T10:00:00 has no time zone",
        ),
        (
            ("schedule", str(uuid.UUID(int=1)), f"{YEAR + 1}-01-01T00:00:00Z"),
            f"no meeting with id {uuid.UUID(int=1)}",
        ),
        (("cancel", str(uuid.UUID(int=2))), f"no meeting with id {uuid.UUID(int=2)}"),
    ],
)
def test_bad_input_says_what_is_wrong_and_changes_nothing(
    db: Conn,
    migrated: Server,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
) -> None:
    meeting_id, _ = insert_meeting(db, FUTURE)
    before = (db.execute("select * from meetings").fetchall(), meeting_jobs(db))
    code, out, err = run(
        capsys, "--database-url", migrated.url, *(a.format(id=meeting_id) for a in args)
    )
    assert code == 1
    assert err.startswith(f"Error: {message}")
    assert "Traceback" not in err and out == ""
    assert (db.execute("select * from meetings").fetchall(), meeting_jobs(db)) == before


def test_doctor_passes_then_fails_on_a_missing_job(
    db: Conn, migrated: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    meeting_id, _ = insert_meeting(db, FUTURE)
    healthy = run_json(capsys, "--database-url", migrated.url, "doctor")
    assert healthy["ok"] is True, healthy
    db.execute("select cron.unschedule(%s)", (job_name(meeting_id),))
    code, out, _err = run(capsys, "--database-url", migrated.url, "doctor")
    assert code == 1
    assert "[FAIL] every upcoming meeting has a job: 1 upcoming, 1 without a job" in out
    assert "scheduler-admin recover" in out


def test_pause_and_resume(db: Conn, migrated: Server, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_json(capsys, "--database-url", migrated.url, "pause") == {"enabled": False}
    meeting_id, _ = insert_meeting(db, FUTURE)
    assert meeting_jobs(db) == {}
    report = run_json(capsys, "--database-url", migrated.url, "resume")
    assert report["jobs_scheduled"] == 1
    assert list(meeting_jobs(db)) == [job_name(meeting_id)]


def test_wrong_password_and_unreachable_server_fail_clearly(
    migrated: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    if migrated.cluster is None:
        require_or_skip("needs the throwaway cluster: SCHEDULER_TEST_DSN is set")
    port = migrated.cluster.port
    code, _, err = run(
        capsys,
        "--database-url",
        f"postgresql://nobody:s3cret@127.0.0.1:{port}/scheduler_test",
        "list-jobs",
    )
    assert code == 1 and err.startswith(
        "Error: cannot connect to postgresql://nobody:***@127.0.0.1"
    )
    assert "s3cret" not in err
    code, _, err = run(capsys, "--database-url", "postgresql://u:pw@127.0.0.1:1/x", "list-jobs")
    assert code == 1 and "Error: cannot connect to postgresql://u:***@127.0.0.1:1/x" in err
    assert "Traceback" not in err


def test_not_migrated_and_no_pg_cron_database(
    migrated: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    if migrated.cluster is None:
        require_or_skip(
            "needs the throwaway cluster (creates a database): SCHEDULER_TEST_DSN is set"
        )
    migrated.cluster.create_database("cli_empty")
    url = migrated.cluster.url("cli_empty")
    code, _, err = run(capsys, "--database-url", url, "list-jobs")
    assert code == 1 and "is not migrated" in err and "scheduler-admin migrate" in err
    code, out, err = run(capsys, "--database-url", url, "doctor")
    assert (
        code == 1
        and "[FAIL] pg_cron runs in this database: cron.database_name = scheduler_test" in out
    )
    code, _, err = run(capsys, "--database-url", url, "migrate")
    assert code == 1
    assert 'Error: migration failed: pg_cron runs jobs only in database "scheduler_test"' in err
    assert "cron.database_name = 'cli_empty'" in err


@pytest.mark.parametrize("micro", [0, 1, 120000, 999999])
def test_list_jobs_times_are_python_iso_8601_utc(db: Conn, micro: int) -> None:
    """Times in list-jobs read back exactly as datetime.isoformat() writes them, in UTC."""
    end_time = FUTURE.replace(microsecond=micro)
    meeting_id, _ = insert_meeting(db, end_time)
    backend = PostgresBackend(db.info.dsn)
    try:
        (job,) = [j for j in backend.list_jobs() if j["meeting_id"] == str(meeting_id)]
    finally:
        backend.close()
    assert job["end_time"] == end_time.isoformat()
    assert (
        datetime.fromisoformat(job["next_run"]).astimezone(timezone.utc).isoformat()
        == job["next_run"]
    )


def test_migrate_and_list_jobs_take_a_multi_host_url(
    migrated: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """A libpq multi-host URL (docs/high-availability.md), whose first host is down: migrate
    (SQLAlchemy cannot parse such a URL) and list-jobs reach the server that answers."""
    parts = urlsplit(migrated.url)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # closed again before the URL is used: nothing listens there
    hosts = f"{parts.hostname}:{dead},{parts.hostname}:{parts.port}"
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    query = "&".join(q for q in (parts.query, "target_session_attrs=read-write") if q)
    url = f"postgresql://{userinfo}{hosts}{parts.path}?{query}"
    code, _, err = run(capsys, "--database-url", url, "migrate")
    assert code == 0, err
    code, out, err = run(capsys, "--database-url", url, "list-jobs")
    assert code == 0, err
    assert "meeting-status-reconcile" in out
