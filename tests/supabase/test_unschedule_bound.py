"""A burst larger than the bound of cron.unschedule calls per transaction, on the Supabase shape.

Where the owner of public.meetings may not delete from cron.job (the platform's grants), the
scheduler removes jobs with one cron.unschedule call each, at most UNSCHEDULE_BOUND per
transaction (sql/postgres/20_functions.sql, unregister_jobs), and complete_due_meetings completes
at most as many meetings per call; jobs left over are removed by their own runs and the
reconcile job. Where cron.job is writable (the second grant variant) one DELETE removes any
number. The jobs' runs are made here the way pg_cron makes them: scheduler.complete_meeting(id)
as the owner, one transaction each.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from supabase_shape import MIGRATOR, SupabaseShape

# The bound written in unregister_jobs and complete_due_meetings.
UNSCHEDULE_BOUND = 1000
EXTRA = 500
OURS = "^meeting-status-[0-9a-f-]{36}$"

Conn = psycopg.Connection[Any]


@contextmanager
def no_reconcile(supa: SupabaseShape) -> Iterator[None]:
    """Hold the lock the reconcile job takes, so that its runs (every minute) skip while the
    test counts jobs; the test calls scheduler.reconcile() itself after releasing it."""
    with supa.superuser() as lock, lock.transaction():
        # the row of scheduler.locks reconcile() locks (0009), held until this transaction ends
        lock.execute("select 1 from scheduler.locks where name = 'repair' for update")
        yield


def our_jobs(conn: Conn) -> int:
    row = conn.execute(
        "select count(*) from cron.job where jobname ~ %s and username = %s", (OURS, MIGRATOR)
    ).fetchone()
    assert row is not None
    return int(row[0])


def jobs_of_meetings_not_upcoming(conn: Conn) -> int:
    """Jobs of ours whose meeting is gone or no longer upcoming."""
    row = conn.execute(
        "select count(*) from cron.job j where j.jobname ~ %s and not exists ("
        "  select 1 from public.meetings m"
        "  where m.status = 'upcoming' and 'meeting-status-' || m.id = j.jobname)",
        (OURS,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def insert_upcoming(conn: Conn, title: str, count: int) -> None:
    """``count`` upcoming meetings ending a day ahead: the triggers register their jobs."""
    conn.execute(
        "insert into public.meetings (title, end_time) "
        "select %s, now() + interval '1 day' + i * interval '1 second' "
        "from generate_series(1, %s) i",
        (title, count),
    )


def test_a_burst_larger_than_the_bound(supa: SupabaseShape) -> None:
    size = UNSCHEDULE_BOUND + EXTRA
    bounded = not supa.cron_job_writable
    with no_reconcile(supa), psycopg.connect(supa.dsn(MIGRATOR), autocommit=True) as owner:
        insert_upcoming(owner, "due", size)
        insert_upcoming(owner, "later", 10)
        assert our_jobs(owner) == size + 10
        # The burst's meetings end now, their jobs still in place: move their end times into the
        # past with the triggers off, as if the minute of their jobs had come.
        with supa.superuser() as su, su.transaction():
            su.execute("set local session_replication_role = replica")
            su.execute(
                "update public.meetings set end_time = now() - interval '1 second' "
                "where title = 'due'"
            )
        ids = [
            r[0]
            for r in owner.execute(
                "select id from public.meetings where title = 'due' order by id"
            ).fetchall()
        ]

        # The first run: one transaction, as pg_cron runs the job's command.
        before = our_jobs(owner)
        with owner.transaction():
            completed = owner.execute(
                "select scheduler.complete_meeting(%s::uuid)", (ids[0],)
            ).fetchone()
            removed_in_transaction = before - our_jobs(owner)
        assert completed is not None
        if bounded:
            assert completed[0] == UNSCHEDULE_BOUND
            assert 0 < removed_in_transaction <= UNSCHEDULE_BOUND
        else:
            assert completed[0] == size
            assert removed_in_transaction == size

        # The next runs complete the rest, each within the bound.
        calls = 1
        for meeting_id in ids[1:]:
            left = owner.execute(
                "select count(*) from public.meetings where title = 'due' and status = 'upcoming'"
            ).fetchone()
            assert left is not None
            if left[0] == 0:
                break
            before = our_jobs(owner)
            with owner.transaction():
                owner.execute("select scheduler.complete_meeting(%s::uuid)", (meeting_id,))
                assert before - our_jobs(owner) <= UNSCHEDULE_BOUND
            calls += 1
        assert calls == (math.ceil(size / UNSCHEDULE_BOUND) if bounded else 1)
        statuses = dict(
            owner.execute(  # type: ignore[arg-type]
                "select title || ':' || status, count(*) from public.meetings group by 1"
            ).fetchall()
        )
        assert statuses == {"due:done": size, "later:upcoming": 10}
        # never one completed before its end time
        early = owner.execute(
            "select count(*) from public.meetings where status = 'done' and end_time > now()"
        ).fetchone()
        assert early == (0,)

    # The reconcile job removes whatever jobs of done meetings are left.
    with psycopg.connect(supa.dsn(MIGRATOR), autocommit=True) as owner:
        owner.execute("select scheduler.reconcile()")
        assert jobs_of_meetings_not_upcoming(owner) == 0
        assert our_jobs(owner) == 10


def test_one_statement_leaving_more_than_the_bound(supa: SupabaseShape) -> None:
    """Cancelling more meetings than the bound in one statement unschedules at most the bound
    in that transaction; the reconcile job removes the jobs left over."""
    size = UNSCHEDULE_BOUND + EXTRA
    bounded = not supa.cron_job_writable
    with no_reconcile(supa), psycopg.connect(supa.dsn(MIGRATOR), autocommit=True) as owner:
        insert_upcoming(owner, "cancel", size)
        insert_upcoming(owner, "later", 10)
        before = our_jobs(owner)
        with owner.transaction():
            owner.execute("update public.meetings set status = 'cancelled' where title = 'cancel'")
            # a second statement in the same transaction removes nothing more once the bound is
            # reached
            owner.execute(
                "update public.meetings set status = 'cancelled' "
                "where id = (select id from public.meetings where title = 'later' limit 1)"
            )
            removed = before - our_jobs(owner)
        if bounded:
            assert removed == UNSCHEDULE_BOUND
            assert jobs_of_meetings_not_upcoming(owner) == EXTRA + 1
        else:
            assert removed == size + 1
            assert jobs_of_meetings_not_upcoming(owner) == 0
        # A leftover job's own run removes it (its meeting is no longer upcoming).
        if bounded:
            leftover = owner.execute(
                "select m.id from public.meetings m join cron.job j "
                "on j.jobname = 'meeting-status-' || m.id where m.status = 'cancelled' limit 1"
            ).fetchone()
            assert leftover is not None
            owner.execute("select scheduler.complete_meeting(%s::uuid)", (leftover[0],))
            assert jobs_of_meetings_not_upcoming(owner) == EXTRA

    with psycopg.connect(supa.dsn(MIGRATOR), autocommit=True) as owner:
        report = owner.execute("select scheduler.reconcile()").fetchone()
        assert report is not None
        assert report[0]["orphans_removed"] == (EXTRA if bounded else 0)
        assert jobs_of_meetings_not_upcoming(owner) == 0
        assert our_jobs(owner) == 9


@pytest.mark.parametrize("used", ["999999", "-5", "junk"])
def test_the_count_of_a_transaction_is_read_safely(supa: SupabaseShape, used: str) -> None:
    """Whatever a writer sets scheduler.unscheduled_in_transaction to, a removal either happens
    (anything but a count reads as none) or is left to the job's own run and the reconcile job:
    never an error in the writer's statement."""
    with psycopg.connect(supa.dsn(MIGRATOR), autocommit=True) as owner:
        insert_upcoming(owner, "one", 1)
        with owner.transaction():
            owner.execute(
                "select set_config('scheduler.unscheduled_in_transaction', %s, true)", (used,)
            )
            owner.execute("update public.meetings set status = 'cancelled' where title = 'one'")
        left = jobs_of_meetings_not_upcoming(owner)
        if used == "999999" and not supa.cron_job_writable:
            assert left == 1
            owner.execute("select scheduler.reconcile()")
            left = jobs_of_meetings_not_upcoming(owner)
        assert left == 0


def test_one_unscheduling_transaction_at_a_time(supa: SupabaseShape) -> None:
    """On the per-call path a transaction that removed jobs holds the others that would remove
    jobs until it ends (pg_cron's cache invalidations of one at a time); the set-based path
    takes no such lock."""
    with psycopg.connect(supa.dsn(MIGRATOR), autocommit=True) as first:
        insert_upcoming(first, "a", 1)
        insert_upcoming(first, "b", 1)
        with psycopg.connect(supa.dsn(MIGRATOR), autocommit=True) as second:
            second_pid = second.info.backend_pid
            with first.transaction():
                first.execute("update public.meetings set status = 'cancelled' where title = 'a'")
                done = threading.Event()

                def cancel_b() -> None:
                    second.execute(
                        "update public.meetings set status = 'cancelled' where title = 'b'"
                    )
                    done.set()

                worker = threading.Thread(target=cancel_b)
                worker.start()
                try:
                    waiting = False
                    for _ in range(50):
                        if done.is_set():
                            break
                        row = first.execute(
                            # waiting for the row of scheduler.locks the first one holds
                            "select exists (select 1 from pg_locks where pid = %s "
                            "and locktype in ('transactionid', 'tuple') and not granted)",
                            (second_pid,),
                        ).fetchone()
                        if row and row[0]:
                            waiting = True
                            break
                        time.sleep(0.1)
                    assert waiting is not supa.cron_job_writable
                    if supa.cron_job_writable:
                        worker.join(10)
                        assert done.is_set()
                    else:
                        assert not done.is_set()
                except BaseException:
                    worker.join(10)
                    raise
            worker.join(10)
            assert done.is_set()
        assert jobs_of_meetings_not_upcoming(first) == 0
