"""Helpers of the webhook tests: an in-memory event store with the contract's semantics, a
scripted HTTP receiver on 127.0.0.1, and polling with a deadline.

The delivery tests (tests/webhooks) run against an :class:`EventStoreHarness`: the in-memory one
here, and the real SQLite and PostgreSQL backends once they implement the completion events
(a harness for them needs the same four methods).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from scheduler_admin.core import PATHS, Event, Outcome
from scheduler_admin.webhooks import Dispatcher

UTC = timezone.utc
HOST = "127.0.0.1"  # the receiver never listens on another address


# make_dispatcher(**options) in tests/webhooks: a dispatcher to the receiver with short timings
DispatcherFactory = Callable[..., Dispatcher]


def poll(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.01) -> bool:
    """Whether ``condition()`` became true within ``timeout`` seconds (checked every
    ``interval``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())


# -- the stores --------------------------------------------------------------------------------


class EventStoreHarness(Protocol):
    """What a delivery test needs of a store: handles for dispatchers, a way to make events,
    and a look at the events and their recorded attempts."""

    def open(self) -> Any:
        """A new handle on the store (a backend: set_webhooks, claim_events, record_attempt,
        events, close), as a dispatcher of its own would open it."""
        ...

    def add_events(self, count: int) -> list[Event]:
        """Complete ``count`` meetings (webhooks on): their events, pending, oldest first."""
        ...

    def event(self, event_id: int) -> Event:
        """The event as it is now."""
        ...

    def attempts(self, event_id: int) -> list[dict[str, Any]]:
        """The recorded attempts of the event, in order: dicts with ``attempt``, ``outcome``,
        ``status_code``, ``error``."""
        ...


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


@dataclass
class _Row:
    event: dict[str, Any]
    next_attempt_at: datetime
    claimed_until: datetime | None = None
    delivered_at: datetime | None = None
    attempt_rows: list[dict[str, Any]] = field(default_factory=list)


class MemoryEventStore:
    """The contract's completion events and webhook attempts in memory, thread-safe.

    ``claim_events``: pending events with ``next_attempt_at <= now`` and no live lease, oldest
    first; each is leased for ``lease_seconds`` and its ``attempts`` incremented.
    ``record_attempt``: keeps an attempt row; ``delivered`` settles it, ``retry`` frees it until
    ``now + retry_in_seconds``, ``failed`` settles it; an event already settled is not changed
    (``False``).
    """

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.clock = clock or (lambda: datetime.now(UTC))
        self.webhooks = False
        self.lock = threading.Lock()
        self.rows: dict[int, _Row] = {}
        self.calls: list[str] = []
        self._next_id = 1

    # the harness
    def open(self) -> MemoryEventStore:
        return self

    def add_events(
        self, count: int, *, path: str = "job", late: float = 0.25, transition: str = "meetings"
    ) -> list[Event]:
        """``count`` completions of meetings, or of rows of another ``transition`` (their
        ``meeting_id`` null, their keys numbers)."""
        added = []
        with self.lock:
            for _ in range(count):
                now = self.clock()
                event_id, self._next_id = self._next_id, self._next_id + 1
                meeting = str(uuid.uuid4()) if transition == "meetings" else None
                event = {
                    "event_id": event_id,
                    "event_key": str(uuid.uuid4()),
                    "meeting_id": meeting,
                    "end_time": _iso(now - timedelta(seconds=late)),
                    "completed_at": _iso(now),
                    "lateness_seconds": late,
                    "path": path,
                    "delivery": "pending" if self.webhooks else None,
                    "attempts": 0,
                    "last_error": None,
                    "transition": transition,
                    "key": meeting or str(1000 + event_id),
                }
                self.rows[event_id] = _Row(event, now)
                added.append(self._copy(event_id))
        return added

    def event(self, event_id: int) -> Event:
        with self.lock:
            return self._copy(event_id)

    def attempts(self, event_id: int) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(a) for a in self.rows[event_id].attempt_rows]

    def _copy(self, event_id: int) -> Event:
        return dict(self.rows[event_id].event)  # type: ignore[return-value]

    # the backend methods
    def events(
        self, *, limit: int = 50, path: str | None = None, transition: str | None = None
    ) -> list[Event]:
        if path is not None and path not in PATHS:
            raise ValueError(path)
        with self.lock:
            ids = sorted(self.rows, reverse=True)
            chosen = [
                i
                for i in ids
                if (path is None or self.rows[i].event["path"] == path)
                and (transition is None or self.rows[i].event["transition"] == transition)
            ]
            return [self._copy(i) for i in chosen[:limit]]

    def set_webhooks(self, enabled: bool) -> dict[str, Any]:
        with self.lock:
            self.calls.append(f"set_webhooks({enabled})")
            self.webhooks = enabled
            return {"webhooks": enabled}

    def claim_events(self, *, limit: int, lease_seconds: float) -> list[Event]:
        with self.lock:
            self.calls.append("claim_events")
            now = self.clock()
            claimed = []
            for event_id in sorted(self.rows):
                row = self.rows[event_id]
                if len(claimed) >= limit:
                    break
                if row.event["delivery"] != "pending" or row.next_attempt_at > now:
                    continue
                if row.claimed_until is not None and row.claimed_until > now:
                    continue
                row.claimed_until = now + timedelta(seconds=lease_seconds)
                row.event["attempts"] += 1
                claimed.append(self._copy(event_id))
            return claimed

    def record_attempt(
        self,
        event_id: int,
        *,
        outcome: Outcome,
        status_code: int | None = None,
        error: str | None = None,
        retry_in_seconds: float | None = None,
    ) -> bool:
        assert outcome in ("delivered", "retry", "failed"), outcome
        with self.lock:
            self.calls.append("record_attempt")
            now = self.clock()
            row = self.rows[event_id]
            row.attempt_rows.append(
                {
                    "attempt": row.event["attempts"],
                    "outcome": outcome,
                    "status_code": status_code,
                    "error": error,
                    "attempted_at": now,
                }
            )
            if row.event["delivery"] in ("delivered", "failed"):
                return False
            if outcome == "delivered":
                row.event["delivery"] = "delivered"
                row.delivered_at = now
                row.claimed_until = None
            elif outcome == "retry":
                row.next_attempt_at = now + timedelta(seconds=retry_in_seconds or 0.0)
                row.claimed_until = None
                row.event["last_error"] = error
            else:
                row.event["delivery"] = "failed"
                row.event["last_error"] = error
                row.claimed_until = None
            return True

    def close(self) -> None:
        pass


class Killable:
    """A store handle whose process "dies" at :meth:`kill`: from then on nothing it sends
    reaches the store (every call raises), as for a dispatcher killed with SIGKILL."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.killed = threading.Event()

    def kill(self) -> None:
        self.killed.set()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.store, name)
        if name == "close" or not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.killed.is_set():
                raise ConnectionError("the dispatcher's process is gone")
            return attribute(*args, **kwargs)

        return call


class FlakyStore(Killable):
    """A store handle whose database is down between :meth:`down` and :meth:`up`."""

    def down(self) -> None:
        self.killed.set()

    def up(self) -> None:
        self.killed.clear()


# -- the receiver ------------------------------------------------------------------------------


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float  # time.monotonic() on arrival

    @property
    def json(self) -> dict[str, Any]:
        value = json.loads(self.body)
        assert isinstance(value, dict)
        return value

    @property
    def key(self) -> str | None:
        return self.headers.get("idempotency-key")


@dataclass(frozen=True)
class Answer:
    """What the receiver does with one request: wait ``delay`` seconds (or until released,
    ``hold``), then answer ``status`` with ``headers``."""

    status: int = 200
    delay: float = 0.0
    hold: bool = False
    headers: tuple[tuple[str, str], ...] = ()


HOLD = Answer(200, hold=True)


def sleep(seconds: float, status: int = 200) -> Answer:
    return Answer(status, delay=seconds)


class WebhookReceiver:
    """A threaded HTTP server on 127.0.0.1 that records every request (headers and body, on
    arrival) and answers them as scripted: :meth:`script` queues answers for the next requests,
    ``default`` answers the rest."""

    def __init__(self, port: int = 0, default: Answer | int = 200) -> None:
        self.requests: list[Received] = []
        self.default = default if isinstance(default, Answer) else Answer(default)
        self._plan: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._closing = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                answer = receiver._arrived(
                    Received(
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                        time.monotonic(),
                    )
                )
                if answer.hold:
                    while not (receiver._released.is_set() or receiver._closing.is_set()):
                        receiver._released.wait(0.05)
                if answer.delay:
                    receiver._closing.wait(answer.delay)
                with contextlib.suppress(OSError):  # the client may have given up
                    self.send_response(answer.status)
                    for name, value in answer.headers:
                        self.send_header(name, value)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that went away mid-answer

        self._server = Server((HOST, port), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://{HOST}:{self.port}/hooks/meetings"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def _arrived(self, received: Received) -> Answer:
        with self._lock:
            self.requests.append(received)
            return self._plan.popleft() if self._plan else self.default

    def script(self, *answers: Answer | int) -> None:
        with self._lock:
            self._plan.extend(a if isinstance(a, Answer) else Answer(a) for a in answers)

    def release(self) -> None:
        """Answer the held requests (and the ones still to be held)."""
        self._released.set()

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.requests)

    def by_key(self) -> dict[str, list[Received]]:
        keys: dict[str, list[Received]] = {}
        for request in self.received():
            keys.setdefault(request.key or "", []).append(request)
        return keys

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on (now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def receiving(*answers: Answer | int, default: Answer | int = 200) -> Iterator[WebhookReceiver]:
    with WebhookReceiver(default=default) as receiver:
        receiver.script(*answers)
        yield receiver
