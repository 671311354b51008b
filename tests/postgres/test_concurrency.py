"""Concurrent writers: whatever interleaving, exactly one job per upcoming meeting."""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta

import psycopg
from clock_helpers import future_on
from pg_helpers import Conn, Server, connect, expected_schedule, job_name, meeting_jobs

BASE = future_on(1, 1)
WRITERS = 6
SECONDS = 4.0


def writer(
    dsn: str, seed: int, shared: list[object], stop: float, errors: list[BaseException]
) -> None:
    rng = random.Random(seed)
    own: list[object] = []
    try:
        with connect(dsn) as conn:
            while time.monotonic() < stop:
                action = rng.random()
                pool = shared if rng.random() < 0.5 or not own else own
                target = rng.choice(pool) if pool else None
                end = BASE + timedelta(seconds=rng.randrange(0, 86400 * 30))
                if action < 0.3 or target is None:
                    (new_id,) = conn.execute(
                        "insert into meetings (title, end_time) values ('c', %s) returning id",
                        (end,),
                    ).fetchone()
                    own.append(new_id)
                elif action < 0.55:
                    conn.execute("update meetings set end_time = %s where id = %s", (end, target))
                elif action < 0.7:
                    status = rng.choice(["upcoming", "done", "cancelled"])
                    conn.execute("update meetings set status = %s where id = %s", (status, target))
                elif action < 0.8:
                    conn.execute("delete from meetings where id = %s", (target,))
                elif action < 0.9:
                    with conn.transaction():  # a multi-statement transaction
                        conn.execute(
                            "update meetings set end_time = %s where id = %s", (end, target)
                        )
                        conn.execute(
                            "update meetings set status = 'upcoming' where id = %s", (target,)
                        )
                else:
                    conn.execute(
                        "insert into meetings (title, end_time) select 'bulk', %s + i * interval "
                        "'1 second' from generate_series(1, 20) i",
                        (end,),
                    )
    except BaseException as exc:  # reported by the test
        errors.append(exc)


def test_concurrent_writers_leave_exactly_one_job_per_upcoming_meeting(
    db: Conn, migrated: Server
) -> None:
    shared = [
        row[0]
        for row in db.execute(
            "insert into meetings (title, end_time) select 's', %s + i * interval '1 minute' "
            "from generate_series(1, 50) i returning id",
            (BASE,),
        ).fetchall()
    ]
    errors: list[BaseException] = []
    stop = time.monotonic() + SECONDS
    threads = [
        threading.Thread(target=writer, args=(migrated.dsn, seed, shared, stop, errors))
        for seed in range(WRITERS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    deadlocks = [e for e in errors if isinstance(e, psycopg.errors.DeadlockDetected)]
    assert not [e for e in errors if e not in deadlocks], errors
    rows = db.execute("select id, end_time, status from meetings").fetchall()
    assert len(rows) > 100, "the writers did too little to prove anything"
    expected = {job_name(i): expected_schedule(t) for i, t, s in rows if s == "upcoming"}
    actual = {name: schedule for name, (schedule, _) in meeting_jobs(db).items()}
    assert actual == expected
    assert db.execute(
        "select count(*) from cron.job where jobname like 'meeting-status-%%' "
        "and jobname <> 'meeting-status-reconcile'"
    ).fetchone() == (len(expected),)
