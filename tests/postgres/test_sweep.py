"""The seconds sweep: on pg_cron 1.5+ the job meeting-status-sweep completes a meeting within
about a second of its end; on 1.4 it is absent and doctor says why. Both lanes run this file:
the local one has pg_cron 1.4.2, the container lane 1.6.5."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from pg_helpers import Conn, Server, poll, run_command, sweep_off, sweep_supported

from scheduler_admin.backends.postgres import PostgresBackend

SWEEP = "meeting-status-sweep"


@pytest.fixture(autouse=True)
def sweep_on(db: Conn) -> Iterator[None]:
    """The product's default, which the shared reset turns off for the other tests."""
    db.execute("update scheduler.settings set sweep_seconds = 1")
    run_command(db, "select scheduler.sync_sweep()")
    yield
    sweep_off(db)


def sweep_job(db: Conn) -> tuple[str, str] | None:
    row = db.execute(
        "select schedule, command from cron.job where jobname = %s", (SWEEP,)
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def test_the_sweep_exists_exactly_where_pg_cron_takes_seconds(db: Conn, migrated: Server) -> None:
    # the test decides from the catalog's extversion (pg_helpers); the product must agree
    assert run_command(db, "select scheduler.sweep_supported()") is sweep_supported(db)
    health = run_command(db, "select scheduler.health()")
    backend = PostgresBackend(migrated.url)
    try:
        checks = {c["name"]: c for c in backend.doctor()}
    finally:
        backend.close()
    if sweep_supported(db):
        assert sweep_job(db) == (
            "1 seconds",
            "set statement_timeout = '10s'; select scheduler.sweep()",
        )
        assert health["sweep"] == {"supported": True, "seconds": 1, "job": True}
        assert checks["seconds sweep"]["ok"] is True
        assert "every 1 second" in checks["seconds sweep"]["detail"]
    else:
        assert sweep_job(db) is None
        assert health["sweep"] == {"supported": False, "seconds": 1, "job": False}
        assert health["ok"] is True
        assert checks["seconds sweep"]["ok"] is True
        assert "has no schedules in seconds (1.5 and later do)" in checks["seconds sweep"]["detail"]


def test_a_meeting_is_done_within_a_second_or_two_of_its_end(db: Conn) -> None:
    """With the sweep (pg_cron 1.5+), a meeting ending mid-minute is done about a second after
    its end, never before (updated_at is set when it is completed). Without it (1.4) the meeting
    stays upcoming until its own job runs at the next minute (the tick tests cover that run)."""
    if not sweep_supported(db):
        # keep clear of a minute boundary, where the meeting's own job would run
        seconds = datetime.now(timezone.utc).second
        if seconds > 50:
            time.sleep(61 - seconds)
    end = datetime.now(timezone.utc) + timedelta(seconds=3)
    (meeting,) = db.execute(
        "insert into meetings (title, end_time) values ('soon', %s) returning id", (end,)
    ).fetchone()  # type: ignore[misc]
    if not sweep_supported(db):
        # nothing completes it within seconds of its end: an absence, so a window, not a poll
        time.sleep(max(0.0, (end - datetime.now(timezone.utc)).total_seconds()) + 2.0)
        assert db.execute("select status from meetings where id = %s", (meeting,)).fetchone() == (
            "upcoming",
        )
        return
    done_at = poll(
        lambda: db.execute(
            "select updated_at from meetings where id = %s and status = 'done'", (meeting,)
        ).fetchone(),
        timeout=20,
        interval=0.1,
    )
    completed = done_at[0]
    assert completed >= end, "completed before its end time"
    assert completed - end < timedelta(seconds=2.5), completed - end


def test_the_sweep_writes_nothing_when_nothing_is_due(db: Conn) -> None:
    """Every second on an idle database: one probe, no write, no transaction id."""
    db.execute("insert into meetings (title, end_time) values ('later', now() + interval '1 h')")
    with db.transaction():
        assert db.execute("select scheduler.sweep()").fetchone() == (0,)
        assert db.execute("select pg_current_xact_id_if_assigned()").fetchone() == (None,)


def test_the_setting_turns_it_off_and_on(db: Conn) -> None:
    """sweep_seconds = 0 removes the job at the next reconcile; another value re-registers it."""
    try:
        db.execute("update scheduler.settings set sweep_seconds = 0")
        report = run_command(db, "select scheduler.reconcile()")
        assert sweep_job(db) is None
        assert report["sweep"] == ("off" if sweep_supported(db) else "unsupported")
        db.execute("update scheduler.settings set sweep_seconds = 5")
        report = run_command(db, "select scheduler.reconcile()")
        if sweep_supported(db):
            assert report["sweep"] == "5 seconds"
            assert sweep_job(db) == (
                "5 seconds",
                "set statement_timeout = '10s'; select scheduler.sweep()",
            )
        else:
            assert report["sweep"] == "unsupported" and sweep_job(db) is None
    finally:
        db.execute("update scheduler.settings set sweep_seconds = 1")
        run_command(db, "select scheduler.reconcile()")


def test_successful_sweep_runs_are_kept_briefly_and_failures_as_long_as_ours(db: Conn) -> None:
    """The sweep succeeds every second: reconcile deletes its successful runs after ten minutes,
    its failed runs after the history retention; history shows only the failures."""
    command = run_command(db, "select scheduler.sweep_command()")
    rows = {}
    for key, status, age in (
        ("old_ok", "succeeded", "11 minutes"),
        ("recent_ok", "succeeded", "2 minutes"),
        ("old_failed", "failed", "11 minutes"),
    ):
        (rows[key],) = db.execute(
            "insert into cron.job_run_details (jobid, job_pid, database, username, command, "
            "  status, return_message, start_time, end_time) "
            "values (null, 1, current_database(), current_user, %s, %s, 'x', "
            "        now() - %s::interval, now() - %s::interval) returning runid",
            (command, status, age, age),
        ).fetchone()  # type: ignore[misc]
    run_command(db, "select scheduler.reconcile()")
    left = {
        r[0]
        for r in db.execute(
            "select runid from cron.job_run_details where runid = any(%s)", (list(rows.values()),)
        ).fetchall()
    }
    assert left == {rows["recent_ok"], rows["old_failed"]}
    history = db.execute(
        "select run_id, job_name, status from scheduler.history(false, 1000)"
    ).fetchall()
    assert (rows["old_failed"], SWEEP, "failed") in history
    assert rows["recent_ok"] not in {h[0] for h in history}
    db.execute("delete from cron.job_run_details where runid = any(%s)", (list(rows.values()),))
