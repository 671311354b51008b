"""Fixtures of the webhook delivery tests: ``event_store`` (a store with completion events, see
:class:`webhook_helpers.EventStoreHarness`), a receiver on 127.0.0.1 and dispatchers with short
timings.

``event_store`` is parametrised over the stores: the in-memory model of the contract here;
the real SQLite and PostgreSQL backends are further params (a harness with the same methods).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from webhook_helpers import DispatcherFactory, EventStoreHarness, MemoryEventStore, WebhookReceiver

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


@pytest.fixture(params=["memory"])
def event_store(request: pytest.FixtureRequest) -> Iterator[EventStoreHarness]:
    if request.param == "memory":
        store = MemoryEventStore()
        store.set_webhooks(True)  # as a dispatcher that ran before would have
        yield store
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
