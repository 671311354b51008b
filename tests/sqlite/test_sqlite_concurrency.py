"""Application writes while the worker runs never fail with "database is locked"."""

from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

from sqlite_helpers import FakeClock, future

from scheduler_admin.backends.sqlite import SqliteBackend
from scheduler_admin.sqlite.worker import CronWorker

WRITES = 1500


def test_writer_thread_while_the_worker_ticks(db_path: Path, clock: FakeClock) -> None:
    backend = SqliteBackend(db_path, clock=clock)
    backend.list_jobs()  # the backend switches the file to WAL
    worker = CronWorker(backend, clock=clock)
    errors: list[BaseException] = []
    written = threading.Event()
    base = future(5, second=0)

    def writer() -> None:
        # A plain application connection: Python's default 5 s timeout, implicit transactions.
        conn = sqlite3.connect(db_path)
        try:
            for i in range(WRITES):
                conn.execute(
                    "INSERT INTO meetings (title, end_time) VALUES (?, ?)",
                    (f"w{i}", (base + timedelta(seconds=i)).isoformat()),
                )
                conn.commit()
                if i % 7 == 0:
                    conn.execute(
                        "UPDATE meetings SET end_time = ? WHERE title = ?",
                        ((base + timedelta(seconds=i + 90)).isoformat(), f"w{i}"),
                    )
                    conn.commit()
        except BaseException as exc:  # reported to the test thread
            errors.append(exc)
        finally:
            conn.close()
            written.set()

    thread = threading.Thread(target=writer)
    thread.start()
    ticks = 0
    # Tick through the minutes in which the meetings end while the writer is still writing.
    while not written.is_set() or ticks < 3:
        clock.set(base + timedelta(minutes=ticks))
        worker.tick()
        backend.health()
        ticks += 1
    thread.join(60)
    assert not thread.is_alive()
    assert errors == [], errors
    assert ticks >= 3

    # Everything written is consistent: after one more tick far ahead, all meetings are done
    # and no job of a meeting is left.
    clock.set(base + timedelta(days=1))
    worker.tick()
    with sqlite3.connect(db_path) as conn:
        counts = dict(
            conn.execute("SELECT status, count(*) FROM meetings GROUP BY status").fetchall()
        )
        left = conn.execute(
            "SELECT count(*) FROM cron_job WHERE jobname <> 'meeting-status-reconcile'"
        ).fetchone()[0]
        failed = conn.execute(
            "SELECT count(*) FROM cron_job_run_details WHERE status <> 'succeeded'"
        ).fetchone()[0]
    assert counts == {"done": WRITES}
    assert left == 0
    assert failed == 0


def test_two_workers_in_threads_run_each_minute_once(db_path: Path, clock: FakeClock) -> None:
    workers = [CronWorker(SqliteBackend(db_path, clock=clock), clock=clock) for _ in range(4)]
    minutes = 5
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(workers))

    def run(worker: CronWorker) -> None:
        try:
            for minute in range(minutes):
                barrier.wait(timeout=30)
                worker.tick(clock() + timedelta(minutes=minute))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    with sqlite3.connect(db_path) as conn:
        reconcile_runs = conn.execute(
            "SELECT count(*) FROM cron_job_run_details WHERE command = 'reconcile()'"
        ).fetchone()[0]
    assert reconcile_runs == minutes
