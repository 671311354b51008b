"""The application's waker: a meeting becomes done within a second of its end while the
application runs, on every backend.

pg_cron's per-meeting jobs fire at the first minute after a meeting's end (the seconds sweep
needs pg_cron 1.5+, and the SQLite worker runs by the minute). The waker closes that gap from the
application: it asks the database for the earliest end time of a pending meeting, sleeps until
then (at most ``max_wait`` seconds, so a missed announcement costs at most that), and calls the
one completion function, ``scheduler.wake()`` (``sql/postgres/20_functions.sql``; on SQLite its
twin in :mod:`scheduler_admin.sqlite.transitions`), which completes what is due and answers the
next end time and the database's clock in the same round trip.

* **PostgreSQL (direct)**: a dedicated autocommit session that ``LISTEN``\\s on
  ``scheduler_meetings`` and ``scheduler_transitions``. The triggers on meetings ``NOTIFY`` the
  earliest end time a statement registered (at commit), and those of every other registered
  transition its name and earliest time (JSON ``{"transition", "time"}``, revision 0008), so an
  earlier row inserted while the waker sleeps wakes it.
* **Supabase REST**: no LISTEN over REST; the waker re-polls through RPC every
  ``poll_interval`` seconds (default 2), sleeping less when the next end time is nearer.
* **SQLite**: in-process, a re-poll every second through the twin of ``scheduler.wake()``.

The database's clock decides what is due: the waker sleeps for ``next_end_time - now`` as the
database answered them, never by the application's clock alone, and the SQL only completes
``end_time <= now()``; woken early, it finds nothing due and sleeps the rest. A database that
goes away is logged once; the waker backs off exponentially (capped) and resumes by itself.
Nothing here raises into the application.

**One active waker** (revision 0012). Several application instances may each run a waker; one
of them, the holder of the lease in ``scheduler.waker_lease`` (``sql/postgres/21_waker.sql``),
calls ``wake()`` and the others stand by. ``scheduler.claim_waker()`` takes or renews the lease
(``LEASE`` = 1.2 s by the database's clock) in one short statement of its own transaction: the
holder renews it every ``RENEW`` = 0.4 s, also while it sleeps, and a standby tries for it as
often (it keeps its session, and reads and drops the announcements meanwhile), so when the
holder's process or connection dies a standby holds the lease within ``LEASE + RENEW`` (1.6 s)
and wakes at once. A clean stop releases the lease (``scheduler.release_waker()``), and a standby
takes over at its next try. The table is the owner's (row-level security, no grant) and the two
functions are ``security definer``, executable by service_role only: unlike a public advisory
key, which any role that can connect may take and hold, no other role can seize the lease. The
election is about precision, not safety: two wakers that overlap for a moment (a holder stalled
past its lease) complete nothing twice, as ``complete_due`` skips rows another transaction
holds and completes only pending rows. Being alone, the active waker adds no random delay: a
meeting is done a few milliseconds after its end. A role change is one INFO line; standing by
logs nothing else. Where there is nothing to elect on (a database before revision 0012, a way to
it that cannot call ``claim_waker``, ``elect=False``) every instance calls ``wake()`` after a
random delay of up to ``jitter`` (0.1 s), as before 0012, so that they do not wake in lockstep.

* **SQLite**: several processes may share one file (an application served by several
  workers), so the same lease lives in ``scheduler_waker_lease``
  (:mod:`scheduler_admin.sqlite.waker`), claimed in a ``BEGIN IMMEDIATE`` transaction.
* **Supabase REST**: the same lease through RPC (``claim_waker`` and ``release_waker`` are
  granted to service_role); the active waker re-polls every ``poll_interval``, the others stand
  by.

A waker serves every registered transition (``transition=None``: ``wake()`` completes the due
rows of each active one and answers the earliest pending time among them), or one named
transition (``scheduler-admin waker --transition memberships``), which heeds only that
transition's announcements.

Announcements are hints. PostgreSQL has no privilege on channels: any role that can connect may
``LISTEN`` on these two (and learn the earliest end time of the rows a statement wrote, and a
transition's name) and ``NOTIFY`` on them. So the waker trusts nothing it hears there: a payload
the triggers would not send (not a time, a time without an offset, not JSON of that shape, too
long, out of range, no transition's name) is ignored with a rate-limited debug line, never
treated as a failure, and the connection stays; a well-formed time only brings the next
``wake()`` forward, never sooner than ``announce_gap`` after the last answer, so that a stream of
them (spoofed, or a burst of real writes) costs at most one call per ``announce_gap`` (0.2 s), and
``wake()`` reads the real next time from the database anyway.

``SCHEDULER_WAKER=false`` turns it off (as does ``ENABLE_MEETING_STATUS_UPDATES=false``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import re
import secrets
import socket
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Protocol, runtime_checkable

from scheduler_admin import backends, config
from scheduler_admin.backends.base import Backend
from scheduler_admin.backends.functions import FunctionsBackend
from scheduler_admin.backends.postgres import PostgresBackend
from scheduler_admin.backends.sqlite import SqliteBackend
from scheduler_admin.core import BUILTIN, Wake
from scheduler_admin.exceptions import NotMigrated
from scheduler_admin.loop import BACKOFF_CAP, BACKOFF_START, Backoff, ThreadedLoop, stop_on_signals
from scheduler_admin.sqlite import waker as sqlite_waker

log = logging.getLogger("scheduler_admin.waker")

CHANNEL = "scheduler_meetings"  # payload: a meeting's end time (ISO 8601)
TRANSITION_CHANNEL = "scheduler_transitions"  # payload: {"transition": name, "time": ISO 8601}
MAX_WAIT = 60.0  # seconds: the longest sleep, what a missed notification can cost
JITTER = 0.1  # seconds: the largest random delay of a waker that is not elected (elect=False)
LEASE = 1.2  # seconds: the lease of the active waker (scheduler.claim_waker())
RENEW = 0.4  # seconds: how often the active waker renews its lease and a standby tries for it
DUE_RETRY = 0.5  # seconds: re-poll when a due meeting was left (locked by another transaction)
REST_POLL = 2.0  # seconds: the re-poll over Supabase's REST API
SQLITE_POLL = 1.0  # seconds: the re-poll on SQLite
CONNECT_TIMEOUT = 5  # seconds: the longest wait for the LISTENing session to open (CLI: 10)
_LISTEN_SLICE = 0.5  # seconds: how often a LISTENing waker looks at its stop flag
ANNOUNCE_GAP = 0.2  # seconds: the soonest after an answer that an announcement brings a call
IGNORED_LOG_INTERVAL = 60.0  # seconds: at most one debug line about ignored announcements
MAX_PAYLOAD = 256  # characters: longer is no announcement of ours (they have fewer than 100)
_MAX_TIME = 40  # characters of an announced time (the triggers write 32)
_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")  # a transition's name (scheduler.transitions)


def waker_enabled(env: Mapping[str, str] | None = None) -> bool:
    """``SCHEDULER_WAKER`` (default true)."""
    value = (env if env is not None else os.environ).get("SCHEDULER_WAKER")
    return config.parse_bool(value, name="SCHEDULER_WAKER", default=True)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


class WakeSource(Protocol):
    """How a waker reaches its database: the completion call and the wait between calls."""

    @property
    def target(self) -> str: ...

    @property
    def poll_interval(self) -> float | None:
        """The longest sleep between calls where nothing is announced; None where the database
        announces new meetings (LISTEN)."""
        ...

    def wake(self, *, transition: str | None = None) -> Wake:
        """Complete what is due (of every transition, or of the one named); the next end time
        and the database's clock."""
        ...

    def wait(self, timeout: float, stop: threading.Event) -> list[datetime]:
        """Wait up to ``timeout`` seconds (less when ``stop`` is set); the end times announced
        meanwhile (always empty where nothing is announced)."""
        ...

    def reset(self) -> None:
        """Drop the connection after a failure: the next call connects again."""
        ...

    def close(self) -> None: ...


Lease = dict[str, Any]  # claim_waker()'s answer: {held, holder, expires_at, now}


@runtime_checkable
class ElectingSource(WakeSource, Protocol):
    """A source whose database elects the one active waker (revision 0012):
    ``scheduler.claim_waker()`` and ``scheduler.release_waker()``, or their SQLite twins."""

    def claim(self, holder: str, lease_seconds: float, transition: str | None) -> Lease:
        """Take or renew ``holder``'s lease, or learn who holds it."""
        ...

    def release(self, holder: str, transition: str | None) -> None:
        """Give ``holder``'s lease up (a clean stop)."""
        ...


def holder_id() -> str:
    """This waker instance's name in the lease: host, process id and a random part (two
    wakers of one process, or a process id reused after a restart, are told apart)."""
    return f"{socket.gethostname()[:120]}:{os.getpid()}:{secrets.token_hex(4)}"


class NoElection(Exception):
    """The way to the database cannot reach the lease: every instance calls wake() itself."""


def claim_on(backend: Backend, holder: str, lease_seconds: float, transition: str | None) -> Lease:
    """``scheduler.claim_waker()`` through the backend's transport (psycopg or PostgREST), or
    its twin on SQLite."""
    if isinstance(backend, SqliteBackend):
        now = backend.now()
        with backend.transaction() as conn:
            return sqlite_waker.claim_waker(conn, now, holder, lease_seconds, transition)
    if not isinstance(backend, FunctionsBackend):
        raise NoElection(f"{type(backend).__name__} elects no waker")
    answer = backend.transport.call(
        "claim_waker",
        {"p_holder": holder, "p_lease_seconds": lease_seconds, "p_transition": transition},
    )
    return dict(answer)


def release_on(backend: Backend, holder: str, transition: str | None) -> None:
    """``scheduler.release_waker()``, or its twin on SQLite."""
    if isinstance(backend, SqliteBackend):
        with backend.transaction() as conn:
            sqlite_waker.release_waker(conn, holder, transition)
    elif isinstance(backend, FunctionsBackend):
        backend.transport.call("release_waker", {"p_holder": holder, "p_transition": transition})


class PollingSource:
    """A backend without notifications (Supabase REST, SQLite): the waker re-polls every
    ``poll_interval`` seconds, or sooner when the next end time is nearer."""

    def __init__(self, backend: Backend, poll_interval: float, target: str) -> None:
        self.backend = backend
        self.poll_interval: float | None = poll_interval
        self.target = target

    def wake(self, *, transition: str | None = None) -> Wake:
        return self.backend.wake(transition=transition)

    def claim(self, holder: str, lease_seconds: float, transition: str | None) -> Lease:
        return claim_on(self.backend, holder, lease_seconds, transition)

    def release(self, holder: str, transition: str | None) -> None:
        release_on(self.backend, holder, transition)

    def wait(self, timeout: float, stop: threading.Event) -> list[datetime]:
        stop.wait(timeout)
        return []

    def reset(self) -> None:
        # the REST transport's HTTP client and SQLite's connections are made again on next use
        with contextlib.suppress(Exception):
            self.backend.close()

    def close(self) -> None:
        self.reset()


class BadAnnouncement(ValueError):
    """A notification on our channels that no trigger of ours sends (anyone may send one)."""


def _announced_utc(text: str) -> datetime:
    """An announced time: ISO 8601 with its offset (no time zone is guessed), in UTC."""
    if len(text) > _MAX_TIME or not text.isascii():
        raise BadAnnouncement("not a time")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise BadAnnouncement("not an ISO 8601 time") from None
    if when.utcoffset() is None:
        raise BadAnnouncement("a time without an offset")
    try:
        return when.astimezone(timezone.utc)
    except OverflowError:
        raise BadAnnouncement("a time out of range") from None


def parse_announcement(channel: str, payload: str) -> tuple[str, datetime]:
    """The transition and the time (UTC) of an announcement as the triggers send them: on
    ``scheduler_meetings`` an ISO 8601 time with its offset (meetings), on
    ``scheduler_transitions`` a JSON object ``{"transition": name, "time": ISO 8601}`` naming a
    transition other than meetings. Any role that can connect may NOTIFY these channels: anything
    else raises :class:`BadAnnouncement`, and nothing else does."""
    if len(payload) > MAX_PAYLOAD:
        raise BadAnnouncement(f"longer than {MAX_PAYLOAD} characters")
    if channel == CHANNEL:
        return BUILTIN, _announced_utc(payload)
    if channel != TRANSITION_CHANNEL:
        raise BadAnnouncement("not a channel of the scheduler")
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        raise BadAnnouncement("not JSON") from None
    if not isinstance(data, dict):
        raise BadAnnouncement("not a JSON object")
    name, text = data.get("transition"), data.get("time")
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name == BUILTIN:
        raise BadAnnouncement("no transition's name")  # meetings announce on scheduler_meetings
    if not isinstance(text, str):
        raise BadAnnouncement("no time")
    return name, _announced_utc(text)


def announced_time(channel: str, payload: str, transition: str | None) -> datetime | None:
    """The time (UTC) a notification announces, when it concerns ``transition`` (None: every
    transition); None for another transition's or a malformed payload."""
    try:
        name, when = parse_announcement(channel, payload)
    except BadAnnouncement:
        return None
    return when if transition is None or name == transition else None


class _IgnoredLog:
    """At most one debug line per ``interval`` seconds about ignored announcements, with the
    count of those left out since the previous one (anyone may send thousands a second)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next = float("-inf")
        self._left_out = 0

    def __call__(self, channel: str, payload: str, reason: str) -> None:
        now = time.monotonic()
        if now < self._next:
            self._left_out += 1
            return
        log.debug(
            "waker: ignored an announcement on %s (%s): %r%s; announcements are hints, and any "
            "role that can connect may send them (at most one such line per %g s)",
            channel,
            reason,
            payload[:80],
            f" (and {self._left_out} more since the previous such line)" if self._left_out else "",
            self.interval,
        )
        self._next = now + self.interval
        self._left_out = 0


class ListeningSource:
    """Direct PostgreSQL: a dedicated autocommit session that ``LISTEN``\\s on
    ``scheduler_meetings`` and ``scheduler_transitions``; the triggers announce the earliest time
    a statement registered. ``backend``: a backend of its own, whose session is the one that
    listens (and gives up connecting after ``connect_timeout`` seconds, so that a server gone is
    noticed soon), or the database's URL. ``transition``: heed only that transition's
    announcements (None: every transition's)."""

    poll_interval: float | None = None

    def __init__(
        self,
        backend: PostgresBackend | str,
        *,
        connect_timeout: int = CONNECT_TIMEOUT,
        transition: str | None = None,
    ) -> None:
        if isinstance(backend, str):
            backend = PostgresBackend(backend)
        backend.transport.connect_timeout = connect_timeout
        self.backend = backend
        self.target = self.backend.target
        self.transition = transition
        self.ignored = 0  # malformed announcements ignored (any role that can connect may send)
        self.sessions = 0  # sessions opened (LISTEN issued): stays 1 while the connection holds
        self._listening = False
        self._ignored_log = _IgnoredLog(IGNORED_LOG_INTERVAL)

    def _session(self) -> Any:
        conn = self.backend.connect()
        if not self._listening:
            # a statement that hangs (a lock, a server in trouble) must not stall the waker
            conn.execute("set statement_timeout = '10s'")
            conn.execute(f"listen {CHANNEL}")
            conn.execute(f"listen {TRANSITION_CHANNEL}")
            self._listening = True
            self.sessions += 1
        return conn

    def heed(self, channel: str, payload: str) -> datetime | None:
        """The time (UTC) an announcement gives this waker: None for another transition's, and
        for a malformed one, which is counted and logged (rate-limited), never raised."""
        try:
            name, when = parse_announcement(channel, payload)
        except Exception as exc:  # a hint from anyone: never a failure of the waker
            self._ignore(channel, payload, str(exc) or type(exc).__name__)
            return None
        if self.transition is not None and name != self.transition:
            return None
        return when

    def _ignore(self, channel: str, payload: str, reason: str) -> None:
        self.ignored += 1
        self._ignored_log(channel, payload, reason)

    def wake(self, *, transition: str | None = None) -> Wake:
        self._session()
        return self.backend.wake(transition=transition)

    def claim(self, holder: str, lease_seconds: float, transition: str | None) -> Lease:
        self._session()  # the listening session: a standby keeps it, ready to take over
        return claim_on(self.backend, holder, lease_seconds, transition)

    def release(self, holder: str, transition: str | None) -> None:
        release_on(self.backend, holder, transition)

    def wait(self, timeout: float, stop: threading.Event) -> list[datetime]:
        conn = self._session()
        announced: list[datetime] = []
        deadline = time.monotonic() + timeout
        while not announced and not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                for notify in conn.notifies(timeout=min(remaining, _LISTEN_SLICE), stop_after=1):
                    when = self.heed(notify.channel, notify.payload)
                    if when is not None:
                        announced.append(when)
            except UnicodeDecodeError:
                # a payload not in the session's encoding (possible in a SQL_ASCII database):
                # psycopg drops the rest of its batch, which costs at most a wait until max_wait
                self._ignore("?", "", "not in the session's encoding")
        return announced

    def reset(self) -> None:
        self._listening = False
        with contextlib.suppress(Exception):
            self.backend.close()

    def close(self) -> None:
        self.reset()


def source_for(settings: config.Settings, transition: str | None = None) -> WakeSource:
    """The waker's way to the configured database (for every transition, or the one named): the
    backend that the one switch, :func:`~scheduler_admin.backends.open_backend`, opens for it; a
    direct PostgreSQL connection listens, every other backend is re-polled."""
    backend = backends.open_backend(settings)
    if isinstance(backend, PostgresBackend):
        return ListeningSource(backend, transition=transition)
    poll = SQLITE_POLL if isinstance(backend, SqliteBackend) else REST_POLL
    return PollingSource(backend, poll, settings.display)


class Waker(ThreadedLoop):
    """Sleeps until the next meeting ends and completes it. :meth:`run_once` for one cycle,
    :meth:`run_forever` in the foreground, :meth:`start_thread` inside an application.
    ``transition``: only that registered transition's rows (default: every transition's).

    ``elect`` (default): of the wakers of one database (and scope), only the holder of the lease
    calls ``wake()``, with no random delay; the others stand by, trying for the lease every
    ``renew`` seconds, and one of them takes over once the holder's lease (``lease`` seconds,
    renewed every ``renew``) has expired. ``elect=False`` (or a database before revision 0012):
    every instance calls ``wake()``, after a random delay of up to ``jitter`` seconds."""

    thread_name = "scheduler-waker"

    def __init__(
        self,
        source: WakeSource,
        *,
        transition: str | None = None,
        max_wait: float = MAX_WAIT,
        jitter: float = JITTER,
        backoff_start: float = BACKOFF_START,
        backoff_cap: float = BACKOFF_CAP,
        announce_gap: float = ANNOUNCE_GAP,
        elect: bool = True,
        lease: float = LEASE,
        renew: float = RENEW,
        holder: str | None = None,
    ) -> None:
        if elect and not 0 < renew < lease:
            raise ValueError(f"the renewal interval ({renew} s) must be shorter than the lease")
        self.source = source
        self.transition = transition
        self.max_wait = max_wait
        self.jitter = jitter
        self.announce_gap = announce_gap
        self.elect = elect and isinstance(source, ElectingSource)
        self.lease = lease
        self.renew = renew
        self.holder = holder or holder_id()
        self.active = not self.elect  # whether this instance calls wake() (the lease's holder)
        self.takeovers = 0  # times this instance became the active waker
        self._renew_at = float("-inf")  # monotonic: the next claim of the lease
        self._unelected = False  # the database has no lease (before revision 0012)
        self.role: str | None = None  # "active" or "standby" (elected), as last logged
        self.completed = 0  # meetings (and other transitions' rows) this waker completed
        self.cycles = 0  # successful calls of wake()
        self.backoff = Backoff(log, "waker", start=backoff_start, cap=backoff_cap)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # the last answer: the database's clock, the monotonic time the call was sent (its now()
        # is the start of the call's transaction: a deadline counts from there, not from the
        # answer, so a slow call does not delay the next one by its own duration) and the one
        # it was received; an announced end time becomes a deadline without trusting the
        # application's clock
        self._db_now: datetime | None = None
        self._sent = 0.0
        self._received = 0.0

    @classmethod
    def from_settings(
        cls, settings: config.Settings, *, transition: str | None = None, **options: Any
    ) -> Waker:
        return cls(source_for(settings, transition), transition=transition, **options)

    @property
    def target(self) -> str:
        return self.source.target

    @property
    def failures(self) -> int:
        """Consecutive failed cycles (0: the database answers)."""
        return self.backoff.failures

    @property
    def elected(self) -> bool:
        """Whether an election decides if this instance calls ``wake()``."""
        return self.elect and not self._unelected

    @property
    def ignored(self) -> int:
        """Malformed announcements its source ignored (0 where nothing is announced)."""
        return int(getattr(self.source, "ignored", 0))

    # -- one cycle ------------------------------------------------------------------------------

    def run_once(self) -> Wake:
        """Complete what is due now and return the database's answer (errors propagate)."""
        sent = time.monotonic()
        result = self.source.wake(transition=self.transition)
        self._db_now = _time(result["now"])
        self._sent, self._received = sent, time.monotonic()
        self.cycles += 1
        if result["completed"]:
            self.completed += result["completed"]
            log.info(
                "waker completed %d %s on %s",
                result["completed"],
                "meeting(s)"
                if self.transition in (None, BUILTIN)
                else f"row(s) of transition {self.transition}",
                self.target,
            )
        return result

    def _lead(self) -> bool:
        """Whether this instance is to call ``wake()``: the holder of the lease (claimed again,
        or renewed, every ``renew`` seconds), or any instance where nothing is elected."""
        if not self.elect:
            return True
        now = time.monotonic()
        if now < self._renew_at:
            return self.active
        assert isinstance(self.source, ElectingSource)
        try:
            answer = self.source.claim(self.holder, self.lease, self.transition)
        except (NotMigrated, NoElection) as exc:
            # a database before revision 0012 (or a way to it that cannot reach the lease):
            # every instance wakes, as before; try again after max_wait
            if not self._unelected:
                log.info(
                    "waker: %s elects no waker (%s); this instance calls wake() itself, after a "
                    "random delay",
                    self.target,
                    getattr(exc, "message", None) or exc,
                )
            self._unelected, self.active = True, True
            self._renew_at = now + self.max_wait
            return True
        self._unelected = False
        self._renew_at = now + self.renew
        held = bool(answer.get("held"))
        role = "active" if held else "standby"
        if role != self.role:  # one line per change of role, at INFO: standing by is normal
            if held:
                self.takeovers += 1
                log.info("waker: %s is the active waker on %s", self.holder, self.target)
            else:
                log.info(
                    "waker: %s stands by on %s (%s is the active waker)",
                    self.holder,
                    self.target,
                    answer.get("holder"),
                )
            self.role = role
        self.active = held
        return held

    def _stand_by(self) -> None:
        """A standby's wait until its next try for the lease (announcements are read and left:
        the active waker heeds them)."""
        while not self._stop.is_set():
            remaining = self._renew_at - time.monotonic()
            if remaining <= 0:
                break
            self.source.wait(remaining, self._stop)

    def _delay(self, result: Wake) -> float:
        """Seconds to sleep from now after ``result``, by the database's clock."""
        if result["paused"] or result["next_end_time"] is None:
            return self.max_wait
        remaining = (_time(result["next_end_time"]) - _time(result["now"])).total_seconds()
        if remaining <= 0:
            return DUE_RETRY  # due, but held by another transaction: look again shortly
        # what the call itself took since its transaction began counts against the wait
        elapsed = time.monotonic() - self._sent
        return max(0.0, min(remaining - elapsed, self.max_wait))

    def _deadline_of(self, end_time: datetime) -> float:
        """The monotonic time at which ``end_time`` is due by the database's clock."""
        assert self._db_now is not None
        return self._sent + (end_time - self._db_now).total_seconds()

    def _sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` (at most the source's poll interval), cut short by an earlier
        announced end time or by stop(); an elected waker renews its lease meanwhile, and ends
        the sleep at once when it has lost it."""
        if self.source.poll_interval is not None:
            seconds = min(seconds, self.source.poll_interval)
        deadline = time.monotonic() + seconds
        while not self._stop.is_set():
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                break
            if self.elected:
                if now >= self._renew_at:
                    if not self._lead():
                        return  # another instance holds the lease: stand by
                    continue
                remaining = min(remaining, self._renew_at - now)
            for end_time in self.source.wait(remaining, self._stop):
                if self._db_now is not None:
                    # a hint anyone may send: it brings the call forward, never to sooner than
                    # announce_gap after the last answer, so that announcements in a stream
                    # (past times, the next instants) coalesce into one call per announce_gap
                    soonest = self._received + self.announce_gap
                    deadline = min(deadline, max(self._deadline_of(end_time), soonest))
        if self.jitter > 0 and not self.elected:
            # several instances that all call wake() must not wake in lockstep; the elected
            # one is alone, and waits for nothing
            self._stop.wait(random.uniform(0, self.jitter))

    # -- loops ----------------------------------------------------------------------------------

    def _step(self) -> None:
        try:
            if not self._lead():
                self.backoff.answered(self.target)
                self._stand_by()
                return
            delay = self._delay(self.run_once())
            self.backoff.answered(self.target)
            self._sleep(delay)
        except Exception as exc:  # never into the application: log once, back off, resume
            self._renew_at = float("-inf")  # claim (or renew) first on the next try
            self.source.reset()
            self._stop.wait(self.backoff.failed(exc, self.target))

    def _release(self) -> None:
        """A clean stop: the holder gives its lease up, so that a standby takes over at its next
        try (not when the lease expires). Skipped while the database fails (a stop stays prompt:
        the lease then simply expires)."""
        if not (self.elected and self.active and self.failures == 0):
            return
        assert isinstance(self.source, ElectingSource)
        try:
            self.source.release(self.holder, self.transition)
        except Exception as exc:
            log.debug("waker: could not release the lease on %s: %s", self.target, exc)
        self.active, self.role, self._renew_at = False, None, float("-inf")

    def run_forever(self, stop_event: threading.Event | None = None) -> None:
        """Cycle until ``stop_event`` (or stop(), or SIGTERM/SIGINT in the foreground main
        thread)."""
        if stop_event is not None:
            self._stop = stop_event
        try:
            with stop_on_signals(self._stop, "stopping the waker"):
                while not self._stop.is_set():
                    self._step()
        finally:
            self._release()
            self.source.close()
