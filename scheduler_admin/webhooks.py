"""The webhook dispatcher: every completion event is POSTed to ``SCHEDULER_WEBHOOK_URL``, at least
once, with retries.

The database writes one completion event per row our paths complete (job, sweep, waker,
reconcile, recover, write), a meeting or a row of another registered transition, in the
transaction that completes it; while webhooks are on
(``scheduler.set_webhooks(true)``, which the dispatcher calls when it starts) each new event is
``pending``. The dispatcher:

1. claims a batch of due pending events (``claim_events``: oldest first, ``for update skip
   locked``, each leased for ``lease_seconds`` and its ``attempts`` counted), so that several
   dispatchers share the work and an event whose dispatcher died is claimed again once its lease
   has expired;
2. POSTs each one as JSON, in parallel (``concurrency`` at a time), with the headers of the
   Standard Webhooks scheme: ``webhook-id: <event_key>`` (the same on every attempt),
   ``webhook-timestamp: <Unix seconds at sending>`` and, when ``SCHEDULER_WEBHOOK_SECRET`` is
   set, ``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` (one
   signature per secret, space-separated, while two are rotated); and ``Idempotency-Key:
   <event_key>``, ``X-Scheduler-Event: <type>`` (``meeting.completed`` for a meeting,
   ``transition.completed`` for a row of another transition: the payload's ``type``).
   :func:`verify` checks such a request on the receiving side, as does any Standard Webhooks
   library;
3. records every attempt (``record_attempt``): a 2xx answer is ``delivered``; a 4xx other than
   408 and 429 is ``failed`` at once (the receiver refuses it, sending it again would not
   help); anything else (5xx, 408, 429, a redirect, a timeout, a connection error) is ``retry``
   with exponential back-off and full jitter (a random wait between 0 and ``min(300 s, 1 s *
   2 ** (attempt - 1))``, at least ``Retry-After`` when the receiver sends one) until the event
   has been claimed ``max_attempts`` times, then ``failed``.

Delivery is at least once: a dispatcher that dies between the POST and the record leaves the
event claimed until its lease expires, then it is sent again with the same ``webhook-id`` (and
``Idempotency-Key``), a new ``webhook-timestamp`` and so a new signature.
The lease (by default twice the HTTP timeout plus 5 s: connecting and waiting for the answer
are each bounded by the timeout) outlasts a delivery, so live dispatchers never send the same
event twice.

The dispatcher only reads and writes the events and their attempts, never ``meetings`` nor
another transition's table: it never
holds a lock a completion waits for. When nothing is due it polls every ``poll_interval``
seconds (default 1). A database that goes away is logged once and retried with back-off (1 s
doubling to 30 s); nothing here raises into the application. Neither the secret nor the URL's
path, query or credentials are ever logged (:func:`scheduler_admin.config.webhook_display`).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import httpx
from standardwebhooks import Webhook, WebhookVerificationError

from scheduler_admin import config
from scheduler_admin.core import BUILTIN, VERSION, Event, Outcome
from scheduler_admin.exceptions import ConfigurationError
from scheduler_admin.loop import BACKOFF_CAP as DB_BACKOFF_CAP
from scheduler_admin.loop import BACKOFF_START as DB_BACKOFF_START
from scheduler_admin.loop import Backoff, ThreadedLoop, stop_on_signals
from scheduler_admin.redact import Redactor

log = logging.getLogger("scheduler_admin.webhooks")

EVENT_TYPE = "meeting.completed"  # the type of a meeting's event
TRANSITION_EVENT_TYPE = "transition.completed"  # the type of another transition's row's event
ID_HEADER = "webhook-id"  # Standard Webhooks: the event's key, the same on every attempt
TIMESTAMP_HEADER = "webhook-timestamp"  # Standard Webhooks: Unix seconds at sending
SIGNATURE_HEADER = "webhook-signature"  # Standard Webhooks: v1,<base64> per secret
EVENT_HEADER = "X-Scheduler-Event"
IDEMPOTENCY_HEADER = "Idempotency-Key"
TOLERANCE = timedelta(minutes=5)  # verify(): how far a timestamp may be from the clock
USER_AGENT = f"scheduler-admin/{VERSION}"

BACKOFF_BASE = 1.0  # seconds: the largest wait before the second attempt
BACKOFF_FACTOR = 2.0  # each further attempt doubles it
BACKOFF_CAP = 300.0  # seconds: the largest wait between two attempts
POLL_INTERVAL = 1.0  # seconds: how often an idle dispatcher looks for due events
CONCURRENCY = 8  # events claimed, and POSTed in parallel, at a time
LEASE_MARGIN = 5.0  # seconds: the lease is 2 * timeout + this


class EventStore(Protocol):
    """What the dispatcher needs of a backend (every :class:`~scheduler_admin.backends.base.
    Backend` has it)."""

    def set_webhooks(self, enabled: bool) -> dict[str, Any]: ...

    def claim_events(self, *, limit: int, lease_seconds: float) -> list[Event]: ...

    def record_attempt(
        self,
        event_id: int,
        *,
        outcome: Outcome,
        status_code: int | None = None,
        error: str | None = None,
        retry_in_seconds: float | None = None,
    ) -> bool: ...

    def close(self) -> None: ...


# -- the pieces of one delivery ---------------------------------------------------------------


def backoff(
    attempt: int,
    *,
    base: float = BACKOFF_BASE,
    factor: float = BACKOFF_FACTOR,
    cap: float = BACKOFF_CAP,
    rand: Callable[[], float] = random.random,
) -> float:
    """The wait after failed attempt number ``attempt`` (1 for the first): full jitter, a uniform
    random value between 0 and ``min(cap, base * factor ** (attempt - 1))``. ``rand`` returns a
    float in [0, 1)."""
    if attempt < 1:
        raise ValueError(f"attempt numbers start at 1, got {attempt}")
    ceiling = cap
    if factor <= 1 or attempt - 1 < 64:  # beyond, the exponential is past any cap anyway
        ceiling = min(cap, base * factor ** (attempt - 1))
    return float(rand()) * ceiling


def event_type(event: Event) -> str:
    """``meeting.completed`` for a meeting's event, ``transition.completed`` for another
    transition's row."""
    return EVENT_TYPE if event.get("transition", BUILTIN) == BUILTIN else TRANSITION_EVENT_TYPE


def row_key(event: Event) -> str | None:
    """The completed row's key: a meeting's id, another transition's row's key."""
    key = event.get("key")
    return event["meeting_id"] if key is None else key


def payload(event: Event) -> dict[str, Any]:
    """The JSON object POSTed for ``event`` (``attempt``: the how-manieth try this is);
    ``meeting_id`` is null for another transition's row (``key`` names it)."""
    return {
        "type": event_type(event),
        "event_id": event["event_id"],
        "event_key": event["event_key"],
        "transition": event.get("transition", BUILTIN),
        "key": row_key(event),
        "meeting_id": event["meeting_id"],
        "end_time": event["end_time"],
        "completed_at": event["completed_at"],
        "lateness_seconds": event["lateness_seconds"],
        "path": event["path"],
        "attempt": event["attempts"],
    }


def describe_row(event: Event) -> str:
    """What an event completed, for a log line: ``meeting <id>`` or ``memberships row <key>``."""
    transition = event.get("transition", BUILTIN)
    if transition == BUILTIN:
        return f"meeting {row_key(event)}"
    return f"{transition} row {row_key(event)}"


def encode(event: Event) -> bytes:
    """The exact body bytes of ``event``'s POST (compact JSON, UTF-8): what is signed."""
    return json.dumps(payload(event), separators=(",", ":")).encode("utf-8")


class VerificationError(WebhookVerificationError):
    """A webhook request failed :func:`verify`; the message says why (a missing header, a
    timestamp out of the tolerance, no matching signature). A subclass of the standardwebhooks
    package's ``WebhookVerificationError``, so that one ``except`` catches both."""


def _signers(secret: str, *, name: str = "SCHEDULER_WEBHOOK_SECRET") -> list[Webhook]:
    """One signer per secret of ``secret`` (checked: :func:`~scheduler_admin.config.
    webhook_secret_keys`)."""
    return [Webhook(key) for key in config.webhook_secret_keys(secret, name=name)]


def sign(body: bytes, *, msg_id: str, timestamp: int, secret: str) -> str:
    """The ``webhook-signature`` value of ``body`` sent as ``msg_id`` at ``timestamp`` (Unix
    seconds): ``v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">`` keyed with each
    secret of ``secret`` (``whsec_<base64>``, or two of them separated by a space while rotating:
    two signatures, space-separated). Made by the standardwebhooks package."""
    when = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return " ".join(signer.sign(msg_id, when, body) for signer in _signers(secret))


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance: timedelta = TOLERANCE,
    now: datetime | float | None = None,
) -> None:
    """Check a webhook request as a receiver got it; raise :class:`VerificationError` unless it
    is genuine and fresh. For receivers written in Python (any Standard Webhooks library does
    the same).

    ``body``: the raw request body, before any parsing. ``headers``: the request's headers (any
    mapping; names are matched without regard to case). ``secret``: ``whsec_<base64>``, or two
    secrets separated by a space while rotating (a signature made with either is accepted); a
    malformed one raises :class:`~scheduler_admin.exceptions.ConfigurationError`.

    Refused: a request without ``webhook-id``, ``webhook-timestamp`` or ``webhook-signature``;
    a ``webhook-timestamp`` more than ``tolerance`` (default 5 minutes) before or after ``now``
    (a datetime or Unix seconds; default the clock), so that a captured request cannot be
    replayed later; and one none of whose signatures (``v1,<base64>``, space-separated) is the
    HMAC of ``"{webhook-id}.{webhook-timestamp}.{body}"`` with a secret of ``secret``, compared
    in constant time. Act once per ``webhook-id``: a retried event comes again with the same id.
    """
    signers = _signers(secret, name="the secret")
    named = {name.lower(): value.strip() for name, value in headers.items()}
    wanted = (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)
    missing = [name for name in wanted if not named.get(name)]
    if missing:
        raise VerificationError(
            f"missing {', '.join(missing)} header{'s' if len(missing) > 1 else ''}: not a "
            "request signed with the Standard Webhooks scheme"
        )
    msg_id, stamp, given = (named[name] for name in wanted)
    if not re.fullmatch(r"[0-9]{1,12}", stamp):
        raise VerificationError(
            f"{TIMESTAMP_HEADER} {stamp[:24]!r} is not a time in whole Unix seconds"
        )
    sent = int(stamp)
    if now is None:
        current = time.time()
    else:
        current = now.timestamp() if isinstance(now, datetime) else float(now)
    age, limit = current - sent, tolerance.total_seconds()
    if age > limit:
        raise VerificationError(
            f"{TIMESTAMP_HEADER} is {age:.0f} s old, more than the tolerance of {limit:g} s: "
            "a replayed or long-delayed request (or a clock that is wrong)"
        )
    if -age > limit:
        raise VerificationError(
            f"{TIMESTAMP_HEADER} is {-age:.0f} s in the future, more than the tolerance of "
            f"{limit:g} s: the sender's or this clock is wrong"
        )
    when = datetime.fromtimestamp(sent, tz=timezone.utc)
    expected = [signer.sign(msg_id, when, body).encode() for signer in signers]
    signatures = [s.encode() for s in given.split()]
    if not any(hmac.compare_digest(e, s) for e in expected for s in signatures):
        raise VerificationError(
            f"no {SIGNATURE_HEADER} matches: signed with another secret, or the body, "
            f"{ID_HEADER} or {TIMESTAMP_HEADER} was changed"
        )


def request_headers(
    event: Event, body: bytes, secret: str | None, *, timestamp: int | None = None
) -> dict[str, str]:
    """The headers of ``event``'s POST sent at ``timestamp`` (Unix seconds; default now):
    signed when there is a ``secret``."""
    sent = int(time.time()) if timestamp is None else timestamp
    headers = {
        "Content-Type": "application/json",
        ID_HEADER: event["event_key"],
        TIMESTAMP_HEADER: str(sent),
        IDEMPOTENCY_HEADER: event["event_key"],
        EVENT_HEADER: event_type(event),
    }
    if secret:
        headers[SIGNATURE_HEADER] = sign(
            body, msg_id=event["event_key"], timestamp=sent, secret=secret
        )
    return headers


def classify(status_code: int) -> Outcome:
    """What an HTTP status means for an event: 2xx delivered; 4xx but 408 and 429 failed (the
    receiver refuses it); anything else (5xx, 408, 429, 1xx, 3xx: redirects are not followed)
    retried."""
    if 200 <= status_code < 300:
        return "delivered"
    if 400 <= status_code < 500 and status_code not in (408, 429):
        return "failed"
    return "retry"


def retry_after(value: str | None) -> float | None:
    """Seconds of a ``Retry-After`` header given in seconds (an HTTP date is ignored)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


@dataclass(frozen=True)
class Attempt:
    """The outcome of one POST of an event, as it is recorded."""

    outcome: Outcome
    status_code: int | None = None
    error: str | None = None
    retry_in_seconds: float | None = None


@dataclass
class Counts:
    """What a dispatcher did: events claimed, and attempts recorded by outcome (``superseded``:
    the event was already delivered or failed, by another dispatcher after a lease expired)."""

    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    superseded: int = 0

    def add(self, other: Counts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class _Done:
    """A delivery waiting to be recorded."""

    event: Event
    attempt: Attempt
    finished: float = field(default_factory=time.monotonic)


# -- the dispatcher -----------------------------------------------------------------------------


class Dispatcher(ThreadedLoop):
    """Delivers the pending completion events. :meth:`run_once` delivers what is due now,
    :meth:`run_forever` loops in the foreground, :meth:`start_thread` inside an application."""

    thread_name = "scheduler-webhooks"

    def __init__(
        self,
        store: EventStore,
        url: str,
        *,
        secret: str | None = None,
        max_attempts: int = config.DEFAULT_WEBHOOK_MAX_ATTEMPTS,
        timeout: float = config.DEFAULT_WEBHOOK_TIMEOUT,
        lease_seconds: float | None = None,
        poll_interval: float = POLL_INTERVAL,
        concurrency: int = CONCURRENCY,
        backoff_base: float = BACKOFF_BASE,
        backoff_cap: float = BACKOFF_CAP,
        rand: Callable[[], float] = random.random,
        db_backoff_start: float = DB_BACKOFF_START,
        db_backoff_cap: float = DB_BACKOFF_CAP,
        target: str = "the database",
        client: httpx.Client | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        if timeout <= 0 or poll_interval <= 0 or concurrency < 1:
            raise ValueError("timeout and poll_interval must be positive, concurrency at least 1")
        lease = 2 * timeout + LEASE_MARGIN if lease_seconds is None else lease_seconds
        if lease <= timeout:
            raise ValueError(
                f"the lease ({lease:g} s) must exceed the HTTP timeout ({timeout:g} s): a live "
                "dispatcher's event would be claimed again while it is being delivered"
            )
        self.store = store
        self.url = url
        self.display = config.webhook_display(url)
        self.secret = " ".join((secret or "").split()) or None
        if self.secret:
            _signers(self.secret)  # a malformed secret is refused now, not at the first POST
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.lease_seconds = lease
        self.poll_interval = poll_interval
        self.concurrency = concurrency
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.rand = rand
        self.target = target
        self.totals = Counts()
        self.batches = 0  # claims made (idle polls included)
        self._client = client
        self._own_client = client is None
        self._pool: ThreadPoolExecutor | None = None
        self._enabled = False  # set_webhooks(True) done
        self._unrecorded: list[_Done] = []
        self._receiver_failing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._redact = Redactor()
        self._redact.add_url(url)
        if self.secret:
            self._redact.add_secret(self.secret)
            for one in self.secret.split():
                self._redact.add_secret(one)
        self.db_backoff = Backoff(
            log, "webhooks", start=db_backoff_start, cap=db_backoff_cap, redact=self._redact
        )

    @classmethod
    def from_settings(cls, settings: config.Settings, **options: Any) -> Dispatcher:
        """A dispatcher on the configured database (a backend of its own) to
        ``settings.webhook``."""
        from scheduler_admin.backends import open_backend

        webhook = settings.webhook
        if webhook is None:
            raise ConfigurationError(
                "webhooks are off: SCHEDULER_WEBHOOK_URL is not set",
                hint="Set SCHEDULER_WEBHOOK_URL to the https:// URL that receives the "
                "completion events (and SCHEDULER_WEBHOOK_SECRET to sign them).",
            )
        options.setdefault("secret", webhook.secret)
        options.setdefault("max_attempts", webhook.max_attempts)
        options.setdefault("timeout", webhook.timeout)
        options.setdefault("target", settings.display)
        return cls(open_backend(settings), webhook.url, **options)

    @property
    def failures(self) -> int:
        """Consecutive failures of the database (0: it answers)."""
        return self.db_backoff.failures

    # -- HTTP ------------------------------------------------------------------------------------

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            _url_filter.add(self.url, self.display)
            self._client = httpx.Client(
                timeout=httpx.Timeout(self.timeout),
                follow_redirects=False,
                limits=httpx.Limits(
                    max_connections=self.concurrency, max_keepalive_connections=self.concurrency
                ),
                headers={"User-Agent": USER_AGENT},
            )
        return self._client

    def _post(self, client: httpx.Client, event: Event) -> Attempt:
        body = encode(event)
        headers = request_headers(event, body, self.secret)
        status: int | None = None
        wait_at_least: float | None = None
        try:
            # the status is all that counts: the body is not read (a slow one cannot hold us)
            with client.stream("POST", self.url, content=body, headers=headers) as response:
                status = response.status_code
                outcome = classify(status)
                error = None if outcome == "delivered" else f"HTTP {status}"
                if status in (429, 503):
                    wait_at_least = retry_after(response.headers.get("Retry-After"))
        except httpx.TimeoutException as exc:
            outcome, error = "retry", f"{_timeout_kind(exc)} after {self.timeout:g} s"
        except httpx.TransportError as exc:
            outcome, error = "retry", f"connection failed: {self._describe(exc)}"
        except Exception as exc:  # a failure nobody foresaw is retried, never raised
            outcome, error = "retry", f"{type(exc).__name__}: {self._describe(exc)}"
        if outcome != "retry":
            return Attempt(outcome, status, error)
        attempt = event["attempts"]
        if attempt >= self.max_attempts:
            return Attempt("failed", status, f"{error}; gave up after {attempt} attempts")
        wait = backoff(attempt, base=self.backoff_base, cap=self.backoff_cap, rand=self.rand)
        if wait_at_least is not None:
            wait = max(wait, min(wait_at_least, self.backoff_cap))
        return Attempt("retry", status, error, wait)

    def _describe(self, exc: BaseException) -> str:
        text = str(exc).strip() or type(exc).__name__
        return self._redact(text.splitlines()[0])

    # -- one batch -------------------------------------------------------------------------------

    def _enable(self) -> None:
        if not self._enabled:
            self.store.set_webhooks(True)
            self._enabled = True
            log.debug("webhooks: new completion events are queued for delivery")

    def _record(self, counts: Counts) -> None:
        """Record the deliveries waiting to be recorded, oldest first; a failure of the
        database propagates and leaves the rest waiting for the next try."""
        while self._unrecorded:
            done = self._unrecorded[0]
            event, attempt = done.event, done.attempt
            recorded = self.store.record_attempt(
                event["event_id"],
                outcome=attempt.outcome,
                status_code=attempt.status_code,
                error=attempt.error,
                retry_in_seconds=attempt.retry_in_seconds,
            )
            self._unrecorded.pop(0)
            if not recorded:
                counts.superseded += 1
                log.debug("webhooks: event %s was already settled", event["event_id"])
            elif attempt.outcome == "delivered":
                counts.delivered += 1
                self._receiver_failing = False
            elif attempt.outcome == "retry":
                counts.retried += 1
                self._note_retry(event, attempt)
            else:
                counts.failed += 1
                log.warning(
                    "webhooks: event %s (%s) failed after %d attempt(s): %s",
                    event["event_id"],
                    describe_row(event),
                    event["attempts"],
                    attempt.error,
                )

    def _note_retry(self, event: Event, attempt: Attempt) -> None:
        """One WARNING when the receiver starts failing; DEBUG for each retry after it."""
        assert attempt.retry_in_seconds is not None
        if not self._receiver_failing:
            self._receiver_failing = True
            log.warning(
                "webhooks: %s did not take event %s (%s); retrying with back-off up to %g s",
                self.display,
                event["event_id"],
                attempt.error,
                self.backoff_cap,
            )
        else:
            log.debug(
                "webhooks: event %s attempt %d: %s; next in %.3g s",
                event["event_id"],
                event["attempts"],
                attempt.error,
                attempt.retry_in_seconds,
            )

    def _batch(self, counts: Counts) -> None:
        """Record what is left over, claim up to ``concurrency`` due events, POST them in
        parallel and record each as it is answered; ``counts`` says what was done, even when
        the database fails half-way."""
        self._record(counts)
        self._enable()
        client = self.client  # made here, once: the POSTs start as soon as events are claimed
        claimed_at = time.monotonic()  # at the latest, the leases started now
        events = self.store.claim_events(limit=self.concurrency, lease_seconds=self.lease_seconds)
        self.batches += 1
        counts.claimed = len(events)
        if not events:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self.concurrency, thread_name_prefix="scheduler-webhook-post"
            )
        futures: dict[Future[Attempt], Event] = {
            self._pool.submit(self._post, client, event): event for event in events
        }
        failure: Exception | None = None
        for future in as_completed(futures):
            done = _Done(futures[future], future.result())
            if done.finished - claimed_at >= self.lease_seconds:
                log.warning(
                    "webhooks: event %s took longer than its lease (%g s) to deliver; another "
                    "dispatcher may send it again",
                    done.event["event_id"],
                    self.lease_seconds,
                )
            self._unrecorded.append(done)
            if failure is None:
                try:
                    self._record(counts)
                except Exception as exc:  # keep collecting: every answer is recorded later
                    failure = exc
        if failure is not None:
            raise failure

    def _count(self, counts: Counts) -> Counts:
        self.totals.add(counts)
        if counts.delivered:
            log.info("webhooks: delivered %d event(s) to %s", counts.delivered, self.display)
        return counts

    def run_once(self) -> Counts:
        """Deliver every event due now (batch after batch until none is left) and return what
        was done; errors of the database propagate (the deliveries made are still recorded
        later, or their events delivered again after their leases)."""
        total = Counts()
        while True:
            counts = Counts()
            try:
                self._batch(counts)
            finally:
                total.add(self._count(counts))
            if counts.claimed < self.concurrency:
                break
        return total

    # -- loop ------------------------------------------------------------------------------------

    def _step(self) -> None:
        counts = Counts()
        try:
            try:
                self._batch(counts)
            finally:
                self._count(counts)
            self.db_backoff.answered(self.target)
            if counts.claimed < self.concurrency:  # nothing more is due: poll again later
                self._stop.wait(self.poll_interval)
        except Exception as exc:  # never into the application: log once, back off, resume
            with contextlib.suppress(Exception):
                self.store.close()  # the next call connects again
            self._stop.wait(self.db_backoff.failed(exc, self.target))

    def run_forever(self, stop_event: threading.Event | None = None) -> None:
        """Deliver until ``stop_event`` (or stop(), or SIGTERM/SIGINT in the foreground main
        thread). Deliveries in flight when it is stopped are finished and recorded."""
        if stop_event is not None:
            self._stop = stop_event
        try:
            with stop_on_signals(self._stop, "stopping the webhook dispatcher"):
                while not self._stop.is_set():
                    self._step()
                # what was answered but could not be recorded: one last try
                if self._unrecorded:
                    with contextlib.suppress(Exception):
                        self._record(self.totals)
        finally:
            self.close()

    def close(self) -> None:
        """Release the HTTP client, the worker threads and the backend."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._client is not None and self._own_client:
            self._client.close()
            self._client = None
            _url_filter.discard(self.url)
        with contextlib.suppress(Exception):
            self.store.close()


class _UrlFilter(logging.Filter):
    """On httpx's logger: its INFO line of each request (``HTTP Request: POST <url> ...``) shows
    a webhook URL as :func:`~scheduler_admin.config.webhook_display` does, without its
    credentials, path or query."""

    def __init__(self) -> None:
        super().__init__()
        self._urls: dict[str, tuple[str, int]] = {}  # URL spelling -> (display, users)
        self._lock = threading.Lock()

    def add(self, url: str, display: str) -> None:
        with self._lock:
            if not self._urls:
                logging.getLogger("httpx").addFilter(self)
            for spelling in {url, str(httpx.URL(url))}:
                shown, users = self._urls.get(spelling, (display, 0))
                self._urls[spelling] = (shown, users + 1)

    def discard(self, url: str) -> None:
        with self._lock:
            for spelling in {url, str(httpx.URL(url))}:
                shown, users = self._urls.get(spelling, ("", 1))
                if users > 1:
                    self._urls[spelling] = (shown, users - 1)
                else:
                    self._urls.pop(spelling, None)
            if not self._urls:
                logging.getLogger("httpx").removeFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            urls = sorted(self._urls.items(), key=lambda item: len(item[0]), reverse=True)
        if not urls:
            return True
        try:
            message = record.getMessage()
        except Exception:
            return True
        changed = message
        for spelling, (shown, _) in urls:
            changed = changed.replace(spelling, shown)
        if changed != message:
            record.msg, record.args = changed, None
        return True


_url_filter = _UrlFilter()


def _timeout_kind(exc: httpx.TimeoutException) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "no connection"
    if isinstance(exc, httpx.PoolTimeout):
        return "no free connection"
    if isinstance(exc, httpx.WriteTimeout):
        return "could not send"
    return "no answer"


@contextlib.contextmanager
def running(dispatcher: Dispatcher) -> Iterator[Dispatcher]:
    """``dispatcher`` in a daemon thread for the block, stopped afterwards."""
    dispatcher.start_thread()
    try:
        yield dispatcher
    finally:
        dispatcher.stop()
