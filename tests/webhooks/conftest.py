"""Fixtures of the webhook delivery tests: ``event_store`` (a store with completion events, see
:class:`webhook_helpers.EventStoreHarness`), a receiver on 127.0.0.1 and dispatchers with short
timings.

``event_store`` is parametrised over the stores: the in-memory model of the contract
(:class:`webhook_helpers.MemoryEventStore`), the real PostgreSQL backend (SQL functions of
revision 0004) and the real SQLite backend (a migrated file per test).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from webhook_helpers import DispatcherFactory, EventStoreHarness, MemoryEventStore, WebhookReceiver

from scheduler_admin.backends.postgres import PostgresBackend
from scheduler_admin.backends.sqlite import SqliteBackend
from scheduler_admin.core import Event
from scheduler_admin.migrate import upgrade
from scheduler_admin.webhooks import Dispatcher

# Short timings: the tests wait on conditions with deadlines, never on fixed sleeps.
FAST: dict[str, Any] = {
    "timeout": 0.5,
    "poll_interval": 0.02,
    "backoff_base": 0.01,
    "backoff_cap": 0.05,
    "db_backoff_start": 0.01,
    "db_backoff_cap": 0.05,
}


class PostgresEvents:
    """The harness on the real PostgreSQL backend: events of meetings written with an end time
    already past (path ``write``), a PostgresBackend (a session of its own) per handle."""

    def __init__(self, db: Any, url: str) -> None:
        self.db = db
        self.url = url
        self.reader = PostgresBackend(url)

    def open(self) -> PostgresBackend:
        return PostgresBackend(self.url)

    def add_events(self, count: int) -> list[Event]:
        ids = {
            str(row[0])
            for row in self.db.execute(
                "insert into public.meetings (title, end_time) select 'webhook ' || g, "
                "clock_timestamp() - interval '1 second' from generate_series(1, %s) g "
                "returning id",
                (count,),
            ).fetchall()
        }
        events = [e for e in self.reader.events(limit=100_000) if e["meeting_id"] in ids]
        assert len(events) == count and {e["delivery"] for e in events} == {"pending"}
        return sorted(events, key=lambda e: e["event_id"])

    def event(self, event_id: int) -> Event:
        (event,) = [e for e in self.reader.events(limit=100_000) if e["event_id"] == event_id]
        return event

    def attempts(self, event_id: int) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "select attempt, outcome, status_code, error from scheduler.webhook_attempts "
            "where event_id = %s order by attempt_id",
            (event_id,),
        ).fetchall()
        return [
            dict(zip(("attempt", "outcome", "status_code", "error"), r, strict=True)) for r in rows
        ]

    def close(self) -> None:
        self.reader.close()


class SqliteEvents:
    """The harness on the real SQLite backend: events of meetings written with an end time
    already past (path ``write``, recorded by the SQLite triggers), a SqliteBackend per handle."""

    def __init__(self, path: Path) -> None:
        self.url = f"sqlite:///{path}"
        upgrade(url=self.url)
        self.db = sqlite3.connect(path, isolation_level=None, timeout=10)
        self.reader = SqliteBackend(self.url)

    def open(self) -> SqliteBackend:
        return SqliteBackend(self.url)

    def add_events(self, count: int) -> list[Event]:
        before = {e["event_id"] for e in self.reader.events(limit=100_000)}
        self.db.executemany(
            "insert into meetings (title, end_time) values (?, "
            "strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now', '-1 second'))",
            [(f"webhook {i}",) for i in range(count)],
        )
        events = [e for e in self.reader.events(limit=100_000) if e["event_id"] not in before]
        assert len(events) == count and {e["delivery"] for e in events} == {"pending"}
        return sorted(events, key=lambda e: e["event_id"])

    def event(self, event_id: int) -> Event:
        (event,) = [e for e in self.reader.events(limit=100_000) if e["event_id"] == event_id]
        return event

    def attempts(self, event_id: int) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "select attempt, outcome, status_code, error from scheduler_webhook_attempts "
            "where event_id = ? order by attempt_id",
            (event_id,),
        ).fetchall()
        return [
            dict(zip(("attempt", "outcome", "status_code", "error"), r, strict=True)) for r in rows
        ]

    def close(self) -> None:
        self.reader.close()
        self.db.close()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def event_store(request: pytest.FixtureRequest) -> Iterator[EventStoreHarness]:
    if request.param == "memory":
        store = MemoryEventStore()
        store.set_webhooks(True)  # as a dispatcher that ran before would have
        yield store
        return
    if request.param == "postgres":
        db = request.getfixturevalue("db")  # migrated, no meeting, no event, webhooks off
        harness = PostgresEvents(db, request.getfixturevalue("migrated").url)
        harness.reader.set_webhooks(True)
        try:
            yield harness
        finally:
            harness.close()
        return
    if request.param == "sqlite":
        sqlite_store = SqliteEvents(request.getfixturevalue("tmp_path") / "scheduler.db")
        sqlite_store.reader.set_webhooks(True)
        try:
            yield sqlite_store
        finally:
            sqlite_store.close()
        return
    raise AssertionError(f"unknown store {request.param}")  # pragma: no cover


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server
        server.release()


@pytest.fixture
def make_dispatcher(
    event_store: EventStoreHarness, receiver: WebhookReceiver
) -> Iterator[DispatcherFactory]:
    """``make_dispatcher(**options)``: a dispatcher on a new handle of the store, to the
    receiver, with short timings; every one made is stopped after the test."""
    made: list[Dispatcher] = []

    def make(*, store: Any = None, url: str | None = None, **options: Any) -> Dispatcher:
        dispatcher = Dispatcher(
            store if store is not None else event_store.open(),
            url or receiver.url,
            **{**FAST, **options},
        )
        made.append(dispatcher)
        return dispatcher

    yield make
    receiver.release()
    for dispatcher in made:
        dispatcher.stop(timeout=10)
        dispatcher.close()
