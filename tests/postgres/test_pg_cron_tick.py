"""A real pg_cron tick completes a meeting (waits for a minute boundary)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from pg_helpers import (
    Conn,
    insert_meeting,
    job_name,
    meeting_jobs,
    poll,
    reconcile_job_inactive,
    status_of,
)


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
