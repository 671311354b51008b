"""The README's first command: see the scheduler work on the embedded SQLite default.

Migrates the configured database (default ``sqlite:///scheduler_jobs.db``), creates three
meetings ending within the next 80 seconds, shows ``list-jobs``, and prints each demo meeting as
it turns ``done``. Both completion paths show: the first meeting is completed by its own cron
job, run by the emulated cron worker at the minute tick after its end (the path pg_cron takes
with no application running); the waker, started only once that has happened, completes the
other two at their end times.
"""

from __future__ import annotations

import sqlite3
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from scheduler_admin import config
from scheduler_admin.backends.sqlite import SqliteBackend
from scheduler_admin.cli import jobs_table
from scheduler_admin.core import job_name
from scheduler_admin.migrate import upgrade
from scheduler_admin.sqlite.connection import database_path, from_db_time
from scheduler_admin.sqlite.worker import CronWorker, floor_minute
from scheduler_admin.waker import Waker

UTC = timezone.utc
TIMEOUT = 180.0
# The first meeting's job fires at the first minute boundary at least this far ahead (a minute
# at most to wait), and the meeting ends a few seconds before it.
TICK_AHEAD = timedelta(seconds=10)
BEFORE_TICK = timedelta(seconds=5)
# the waker's two meetings end this long after that minute
AFTER_TICK = (timedelta(seconds=5), timedelta(seconds=10))
PATHS = {
    "job": "by its own cron job (the worker's minute tick)",
    "waker": "by the waker",
    "reconcile": "by the reconcile job",
    "write": "by the trigger, on insert",
}


@dataclass(frozen=True)
class Meeting:
    id: str
    title: str
    end: datetime


@dataclass(frozen=True)
class Plan:
    """The demo's meetings: ``meetings[0]`` for its cron job, whose minute is ``tick``; the
    others, ending after ``tick``, for the waker."""

    tick: datetime
    meetings: list[Meeting]


def plan(now: datetime) -> Plan:
    """The first meeting ends 5 s before the first minute boundary at least 10 s from ``now``
    (so its job fires in that minute), the other two 5 and 10 s after it: 20 to 80 s in all."""
    tick = floor_minute(now + TICK_AHEAD) + timedelta(minutes=1)
    ends = [tick - BEFORE_TICK, *(tick + after for after in AFTER_TICK)]
    return Plan(
        tick,
        [Meeting(str(uuid.uuid4()), f"demo meeting {i + 1}", end) for i, end in enumerate(ends)],
    )


def say(message: str) -> None:
    print(message, flush=True)


def insert(path: str, meetings: list[Meeting]) -> None:
    """With plain SQL, as any client would: the triggers schedule them."""
    with sqlite3.connect(path, timeout=10) as conn:
        conn.executemany(
            "insert into meetings (id, title, end_time) values (?, ?, ?)",
            [(m.id, m.title, m.end.isoformat()) for m in meetings],
        )


class Watch:
    """Polls the demo meetings and prints each once it is done: when, how late, by which path
    (from its completion event)."""

    def __init__(self, path: str, backend: SqliteBackend, meetings: list[Meeting]) -> None:
        self.path, self.backend, self.meetings = path, backend, meetings
        self.done: set[str] = set()
        self.statuses: dict[str, str | None] = {}

    def poll(self) -> None:
        ids = [m.id for m in self.meetings]
        with sqlite3.connect(self.path, timeout=10) as conn:
            rows = {
                m: (status, updated)
                for m, status, updated in conn.execute(
                    "select id, status, updated_at from meetings "
                    f"where id in ({','.join('?' * len(ids))})",
                    ids,
                ).fetchall()
            }
        self.statuses = {m: rows.get(m, (None, None))[0] for m in ids}
        finished = [m for m in self.meetings if self.statuses[m.id] == "done"]
        if all(m.id in self.done for m in finished):
            return
        paths = {e["key"]: e["path"] for e in self.backend.events(limit=50)}
        for m in finished:
            if m.id in self.done:
                continue
            self.done.add(m.id)
            by = PATHS.get(paths.get(m.id, ""), f"by {paths.get(m.id, 'an unknown path')}")
            when = from_db_time(rows[m.id][1])  # completion sets updated_at
            if when is None:
                say(f"   {m.title}: done {by}")
                continue
            late = (when - m.end).total_seconds()
            stamp = when.strftime("%H:%M:%S.%f")[:-3]
            say(f"   {m.title}: done at {stamp} UTC, {late:.2f} s after its end, {by}")

    def until(self, meetings: list[Meeting], deadline: float) -> bool:
        """Poll until ``meetings`` are done (a progress line every 5 s); False at the
        deadline."""
        last_line = time.monotonic()
        while True:
            self.poll()
            if all(m.id in self.done for m in meetings):
                return True
            if time.monotonic() > deadline:
                return False
            if time.monotonic() - last_line >= 5:
                last_line = time.monotonic()
                states = ", ".join(
                    f"{m.title.split()[-1]}={self.statuses.get(m.id)}" for m in self.meetings
                )
                say(
                    f"   {datetime.now(UTC):%H:%M:%S} UTC  "
                    f"{len(self.done)}/{len(self.meetings)} done  ({states})"
                )
            time.sleep(0.1)


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

    demo = plan(datetime.now(UTC))
    first, *rest = demo.meetings
    say("2. inserting three meetings with plain SQL (the triggers schedule them)")
    insert(path, demo.meetings)
    for m in demo.meetings:
        say(f"   {m.title}: ends {m.end:%H:%M:%S} UTC")

    backend = SqliteBackend(settings.url)
    say("3. scheduler-admin list-jobs")
    say(jobs_table(backend.list_jobs()))

    say(
        "4. running the emulated cron worker alone, as pg_cron would (once a minute): "
        f"{first.title} is completed by its own job, {job_name(first.id)[:23]}…, "
        f"in the minute {demo.tick:%H:%M} UTC"
    )
    worker = CronWorker(backend)
    worker.start_thread()
    waker: Waker | None = None
    watch = Watch(path, backend, demo.meetings)
    deadline = time.monotonic() + TIMEOUT
    try:
        if not watch.until([first], deadline):
            print(f"Error: {first.title} was not completed in time", file=sys.stderr)
            return 1
        say(
            "5. starting the application's waker too: it completes the other two at their end "
            "times, before their jobs' minute"
        )
        waker = Waker.from_settings(settings)
        waker.start_thread()
        if not watch.until(rest, deadline):
            print("Error: the demo meetings did not finish in time", file=sys.stderr)
            return 1
    finally:
        if waker is not None:
            waker.stop()
        worker.stop()
    say("6. every demo meeting is done. Recent runs (scheduler-admin history):")
    for run in backend.history(limit=5):
        say(f"   {run['job_name']}: {run['status']} ({run['return_message']})")
    say("7. how each was completed (scheduler-admin events):")
    for event in reversed(backend.events(limit=len(demo.meetings))):
        say(
            f"   meeting {event['key'][:8]}…: by the {event['path']}, "
            f"{event['lateness_seconds']:.2f} s after its end"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
