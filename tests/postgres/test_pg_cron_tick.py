"""A real pg_cron tick completes a meeting (waits for a minute boundary)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from pg_helpers import (
    Conn,
    Server,
    insert_meeting,
    job_command,
    job_name,
    meeting_jobs,
    poll,
    reconcile_job_inactive,
    run_command,
    status_of,
)

from scheduler_admin.backends.postgres import PostgresBackend


@pytest.fixture
def reconcile_job_out(db: Conn) -> Iterator[None]:
    """It fires at the same tick: kept out, so that the meeting's own job must complete it."""
    with reconcile_job_inactive(db):
        yield


@pytest.mark.slow
def test_pg_cron_tick_completes_the_meeting_and_records_success(
    db: Conn, reconcile_job_out: None
) -> None:
    now = datetime.now(timezone.utc)
    end_time = now + timedelta(seconds=2)
    meeting_id, _ = insert_meeting(db, end_time)
    later_id, _ = insert_meeting(db, end_time + timedelta(days=1))
    (job_id,) = db.execute(
        "select jobid from cron.job where jobname = %s", (job_name(meeting_id),)
    ).fetchone()
    assert poll(lambda: status_of(db, meeting_id) == "done", timeout=150)
    assert status_of(db, later_id) == "upcoming"
    assert list(meeting_jobs(db)) == [job_name(later_id)]
    run = poll(
        lambda: db.execute(
            "select status, return_message, start_time >= %s from cron.job_run_details "
            "where jobid = %s and status not in ('starting', 'running', 'sending', 'connecting')",
            (end_time, job_id),
        ).fetchall(),
        timeout=30,
    )
    # succeeded, and started at or after the meeting's end time (never before it)
    assert run == [("succeeded", "1 row", True)]


@pytest.mark.slow
def test_a_failed_run_is_retried_by_the_next_run_and_counted(
    db: Conn, migrated: Server, reconcile_job_out: None
) -> None:
    """A meeting's run fails (a lock held on meetings past its 5 s lock_timeout); the next run
    of our command completes the meeting, and health, doctor and the metrics count the failed
    run as retried."""
    meeting_id, _ = insert_meeting(db, datetime.now(timezone.utc) + timedelta(seconds=2))
    (job_id,) = db.execute(
        "select jobid from cron.job where jobname = %s", (job_name(meeting_id),)
    ).fetchone()  # type: ignore[misc]
    with psycopg.connect(migrated.dsn) as locker:
        locker.execute("lock table public.meetings in exclusive mode")
        failed = poll(
            lambda: db.execute(
                "select return_message from cron.job_run_details "
                "where jobid = %s and status = 'failed'",
                (job_id,),
            ).fetchall(),
            timeout=150,
        )
        locker.rollback()
    assert len(failed) == 1 and "lock timeout" in str(failed[0][0])
    assert status_of(db, meeting_id) == "upcoming"
    health = run_command(db, "select scheduler.health()")
    assert (health["failed_runs_24h"], health["retried_runs_24h"], health["ok"]) == (1, 0, False)

    # the next run: the command every job of ours runs completes what is due
    run_command(db, job_command(meeting_id))
    assert status_of(db, meeting_id) == "done"
    assert db.execute("select meeting_id, path from scheduler.completion_events").fetchall() == [
        (meeting_id, "job")
    ]
    health = run_command(db, "select scheduler.health()")
    assert (health["failed_runs_24h"], health["retried_runs_24h"]) == (1, 1)
    metrics = run_command(db, "select scheduler.metrics()")
    assert (metrics["failed_runs"], metrics["retried_runs"]) == (1, 1)
    backend = PostgresBackend(migrated.url)
    try:
        check = {c["name"]: c for c in backend.doctor()}["failed runs retried (24 h)"]
    finally:
        backend.close()
    assert check["ok"] is True
    assert check["detail"].startswith("1 failed run, 1 retried by a later run")


@pytest.mark.slow
def test_pg_cron_tick_gives_a_registered_transition_s_row_its_state(
    db: Conn, migrated: Server, reconcile_job_out: None
) -> None:
    """A second table registered as a transition: its row's own job, fired by pg_cron at the
    first minute at or after the row's time, expires it; the run succeeds, history names the
    transition and the row, and one completion event (path job) is recorded."""
    db.execute(
        "create table public.memberships (id bigint generated always as identity primary key, "
        "status text not null default 'active', expires_at timestamptz not null)"
    )
    db.execute(
        "select scheduler.add_transition('memberships', 'public.memberships', 'id', "
        "'expires_at', 'status', array['active'], 'expired')"
    )
    backend = PostgresBackend(migrated.url)
    try:
        expires_at = datetime.now(timezone.utc) + timedelta(seconds=2)
        (key,) = db.execute(
            "insert into public.memberships (expires_at) values (%s) returning id", (expires_at,)
        ).fetchone()  # type: ignore[misc]
        (job_id,) = db.execute(
            "select jobid from cron.job where jobname = %s", (f"memberships-status-{key}",)
        ).fetchone()  # type: ignore[misc]
        assert poll(
            lambda: (
                db.execute("select status from public.memberships where id = %s", (key,)).fetchone()
                == ("expired",)
            ),
            timeout=150,
        )
        run = poll(
            lambda: db.execute(
                "select status, start_time >= %s from cron.job_run_details where jobid = %s "
                "and status not in ('starting', 'running', 'sending', 'connecting')",
                (expires_at, job_id),
            ).fetchall(),
            timeout=30,
        )
        assert run == [("succeeded", True)]
        assert db.execute(
            "select count(*) from cron.job where jobname like 'memberships-status-%'"
        ).fetchone() == (0,)
        (listed,) = backend.history(transition="memberships")
        assert (listed["key"], listed["status"]) == (str(key), "succeeded")
        assert (
            listed["return_message"] == "checked the row: the due rows of memberships are expired"
        )
        (event,) = backend.events(transition="memberships")
        assert (event["key"], event["path"]) == (str(key), "job")
        assert event["lateness_seconds"] >= 0
    finally:
        backend.close()
        db.execute("select scheduler.remove_transition('memberships')")
        db.execute("drop table public.memberships")
