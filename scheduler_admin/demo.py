"""The README's first command: see the scheduler work on the embedded SQLite default.

Migrates the configured database (default ``sqlite:///scheduler_jobs.db``), creates three
meetings ending within the next two minutes, shows ``list-jobs``, runs the emulated cron worker
and prints progress until every demo meeting is ``done``.
"""

from __future__ import annotations

import sqlite3
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

from scheduler_admin import config
from scheduler_admin.backends.sqlite import SqliteBackend
from scheduler_admin.cli import jobs_table
from scheduler_admin.migrate import upgrade
from scheduler_admin.sqlite.connection import database_path
from scheduler_admin.worker import CronWorker

UTC = timezone.utc
TIMEOUT = 180.0


def say(message: str) -> None:
    print(message, flush=True)


def main() -> int:
    settings = config.resolve()
    if settings.backend != "sqlite":
        print(
            f"The demo runs on SQLite; {settings.source} points at {settings.display}. "
            "Unset it (or set SCHEDULER_JOBSTORE_URL=sqlite:///demo.db) to run the demo.",
            file=sys.stderr,
        )
        return 1
    assert settings.url is not None
    say(f"1. migrating {settings.display}")
    upgrade(url=settings.url)
    path = database_path(settings.url)

    now = datetime.now(UTC)
    meetings = [
        (str(uuid.uuid4()), f"demo meeting {i + 1}", now + timedelta(seconds=s))
        for i, s in enumerate((15, 45, 75))
    ]
    say("2. inserting three meetings with plain SQL (the triggers schedule them)")
    with sqlite3.connect(path, timeout=10) as conn:
        conn.executemany(
            "insert into meetings (id, title, end_time) values (?, ?, ?)",
            [(m, t, e.isoformat()) for m, t, e in meetings],
        )
    for _, title, end in meetings:
        say(f"   {title}: ends {end:%H:%M:%S} UTC")

    backend = SqliteBackend(settings.url)
    say("3. scheduler-admin list-jobs")
    say(jobs_table(backend.list_jobs()))

    say("4. running the emulated cron worker (as pg_cron would, once a minute)")
    worker = CronWorker(backend)
    worker.start_thread()
    ids = [m for m, _, _ in meetings]
    deadline = time.monotonic() + TIMEOUT
    try:
        while True:
            with sqlite3.connect(path, timeout=10) as conn:
                rows = dict(
                    conn.execute(
                        f"select id, status from meetings where id in ({','.join('?' * len(ids))})",
                        ids,
                    ).fetchall()
                )
            done = sum(1 for m in ids if rows.get(m) == "done")
            clock = datetime.now(UTC)
            statuses = ", ".join(f"{t.split()[-1]}={rows.get(m)}" for m, t, _ in meetings)
            say(f"   {clock:%H:%M:%S} UTC  {done}/{len(ids)} done  ({statuses})")
            if done == len(ids):
                break
            if time.monotonic() > deadline:
                print("Error: the demo meetings did not finish in time", file=sys.stderr)
                return 1
            time.sleep(5)
    finally:
        worker.stop()
    say("5. every demo meeting is done. Recent runs (scheduler-admin history):")
    for run in backend.history(limit=5):
        say(f"   {run['job_name']}: {run['status']} ({run['return_message']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
