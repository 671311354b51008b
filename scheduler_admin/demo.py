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
from scheduler_admin.sqlite.connection import database_path, from_db_time
from scheduler_admin.sqlite.worker import CronWorker
from scheduler_admin.waker import Waker

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

    say(
        "4. running the emulated cron worker (as pg_cron would, once a minute) and the "
        "application's waker (at each end time)"
    )
    worker = CronWorker(backend)
    worker.start_thread()
    waker = Waker.from_settings(settings)
    waker.start_thread()
    ids = [m for m, _, _ in meetings]
    ends = {m: e for m, _, e in meetings}
    titles = {m: t for m, t, _ in meetings}
    reported: set[str] = set()
    deadline = time.monotonic() + TIMEOUT
    last_line = 0.0
    try:
        while True:
            with sqlite3.connect(path, timeout=10) as conn:
                rows = {
                    m: (status, updated)
                    for m, status, updated in conn.execute(
                        "select id, status, updated_at from meetings "
                        f"where id in ({','.join('?' * len(ids))})",
                        ids,
                    ).fetchall()
                }
            for m in ids:
                status, updated = rows.get(m, (None, None))
                if status == "done" and m not in reported:
                    reported.add(m)
                    when = from_db_time(updated)  # completion sets updated_at
                    if when is None:
                        say(f"   {titles[m]}: done")
                    else:
                        late = (when - ends[m]).total_seconds()
                        stamp = when.strftime("%H:%M:%S.%f")[:-3]
                        say(f"   {titles[m]}: done at {stamp} UTC, {late:.2f} s after its end")
            if len(reported) == len(ids):
                break
            if time.monotonic() - last_line >= 5:
                last_line = time.monotonic()
                clock = datetime.now(UTC)
                statuses = ", ".join(
                    f"{t.split()[-1]}={rows.get(m, (None,))[0]}" for m, t, _ in meetings
                )
                say(f"   {clock:%H:%M:%S} UTC  {len(reported)}/{len(ids)} done  ({statuses})")
            if time.monotonic() > deadline:
                print("Error: the demo meetings did not finish in time", file=sys.stderr)
                return 1
            time.sleep(0.1)
    finally:
        waker.stop()
        worker.stop()
    say("5. every demo meeting is done. Recent runs (scheduler-admin history):")
    for run in backend.history(limit=5):
        say(f"   {run['job_name']}: {run['status']} ({run['return_message']})")
    say("6. how each was completed (scheduler-admin events):")
    for event in reversed(backend.events(limit=len(ids))):
        say(
            f"   meeting {event['key'][:8]}…: by the {event['path']}, "
            f"{event['lateness_seconds']:.2f} s after its end"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
