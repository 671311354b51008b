"""Failover to a streaming standby (docs/high-availability.md): the promoted server completes
every meeting that ended while there was no primary, none early, keeps exactly one job per
meeting still pending, and a waker and a webhook dispatcher given both hosts follow it.

One module fixture (``failover``) drives the whole story once, on a primary and a hot standby
started from the local binaries (``primary_and_standby()`` in scheduler_admin/testing/cluster.py:
``pg_basebackup -R``, both with pg_cron preloaded and the same settings, in a directory under
pytest's base temporary directory, where their server logs stay), and records what happened;
each test then asserts one part of it:

1. The primary is migrated (``alembic upgrade head``); a webhook dispatcher and a waker start,
   both on the multi-host URL ``postgresql://postgres@127.0.0.1:P,127.0.0.2:P/...?
   target_session_attrs=read-write``, with a local HTTP receiver counting deliveries per
   ``webhook-id``. Two meetings stay pending (1 h and 2 h ahead); one is completed as it is
   written (its end already past), one by the waker: their events are delivered and the standby
   has replayed all of it.
2. The batch: six meetings ending between 9 and 6.5 s before a minute boundary M. The primary is
   killed (``pg_ctl stop -m immediate``) 10 s before M, before any of them ends; the standby is
   promoted 5 s before M, after all of them ended. Their jobs (replicated with ``cron.job``)
   fire at M on the promoted server, whose pg_cron started when its recovery ended.
3. After the batch is done, a new meeting ending 2 s ahead is inserted on the new primary: the
   waker, which has reconnected and LISTENs again, completes it within a second of its end.

pg_cron 1.4 fires at minute boundaries only, so the whole story takes 25 to 85 s, most of it
waiting for M. The failover happens before M, so no tick is missed here: a tick missed while no
server ran is caught up by the reconcile job at the next one, which
tests/postgres/test_pg_cron_tick.py shows across a restart (pg_cron starts the same way at the
end of a promotion as at start-up).

The waker runs throughout. Its session fails at the kill; its back-off is then held (a test
double) until pg_cron has completed the batch, so that the batch shows what the promoted server
does by itself (a waker not held completes such meetings within its back-off cap, 1 s here,
after the promotion); released, it reconnects through the same URL and LISTENs again, and only
the announcement on the new session can wake it for the new meeting in time (it otherwise
sleeps 60 s, the pending rows being an hour away). The dispatcher is not held: no event is
pending or in flight at the failover (every earlier one was delivered, recorded and replayed
before the kill), so every event must arrive exactly once.

The two servers run on one machine with one port, as two machines would: the primary on
127.0.0.1, the standby on 127.0.0.2 (the loopback on Linux), ``cron.host`` naming both, since
pg_cron runs a job by connecting to the host and port stored with it (docs/high-availability.md).

Only the local lane runs this module: the container lane's server is one container, with no
standby to promote. Under ``SCHEDULER_REQUIRE_POSTGRES=1`` (CI) every skip is a failure
(tests/skip_helpers.py), so the container lane does not collect it at all (``__test__`` below,
which pytest honours for a module); the local lane runs it as any other test.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pg_helpers import JOB_PATTERN, Conn, Server, clear_of_ticks, connect, db_now, migrate, poll
from skip_helpers import require_or_skip
from webhook_helpers import WebhookReceiver

from scheduler_admin.backends.postgres import PostgresBackend
from scheduler_admin.loop import Backoff
from scheduler_admin.redact import mask_url
from scheduler_admin.testing.cluster import Cluster, ClusterError, primary_and_standby
from scheduler_admin.testing.lanes import server_lane
from scheduler_admin.waker import ListeningSource, Waker
from scheduler_admin.webhooks import Dispatcher

__test__ = server_lane() == "local"  # the container lane has no standby: see the docstring

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

UTC = timezone.utc
LEAD = timedelta(seconds=15)  # at least this long from the plan to the minute boundary M
KILL = timedelta(seconds=-10)  # the primary is killed at M + KILL
ENDS = [timedelta(seconds=-9 + 0.5 * i) for i in range(6)]  # the batch ends at M + each
PROMOTE = timedelta(seconds=-5)  # the standby is promoted at M + PROMOTE
WAKER_BOUND = 1.0  # seconds after its end by which the waker completes a meeting
CONVERGE = 30.0  # seconds: the longest wait for anything that follows a step
LAUNCHER = "select count(*) from pg_stat_activity where backend_type = 'pg_cron launcher'"
JOBS = (
    "select jobid, jobname, schedule, command, nodename, nodeport, database, username, active "
    "from cron.job order by jobname"
)
# what else a standby has as the primary had it: settings, events, pg_cron's run history
REPLICATED = {
    "settings": "select to_jsonb(s) from scheduler.settings s",
    "events": "select to_jsonb(e) from scheduler.completion_events e order by event_id",
    "runs": "select runid, jobid, status, start_time from cron.job_run_details order by runid",
}


class HeldBackoff(Backoff):
    """The waker's back-off, held from its first failure after :attr:`armed` is set until
    :attr:`released` is (at most ``limit`` seconds)."""

    def __init__(self, limit: float) -> None:
        super().__init__(logging.getLogger("scheduler_admin.waker"), "waker", start=0.2, cap=1.0)
        self.limit = limit
        self.armed = threading.Event()
        self.held = threading.Event()  # a failure came while armed
        self.released = threading.Event()

    def failed(self, exc: BaseException, target: str) -> float:
        wait = super().failed(exc, target)
        if self.armed.is_set() and not self.released.is_set():
            self.held.set()
            self.released.wait(self.limit)
        return wait


@dataclass
class Failover:
    """What happened, and the promoted server (still running) to look at."""

    primary: Cluster
    standby: Cluster  # the new primary
    url: str  # both hosts, target_session_attrs=read-write
    boundary: datetime  # M
    killed_at: datetime = field(init=False)
    promoted_at: datetime = field(init=False)
    pending: list[Any] = field(default_factory=list)  # stay upcoming throughout
    before: dict[str, Any] = field(default_factory=dict)  # path -> meeting, done before the kill
    batch: list[Any] = field(default_factory=list)  # ended during the failover
    after: Any = None  # inserted on the new primary, completed by the waker
    jobs_before_kill: list[tuple[Any, ...]] = field(default_factory=list)  # the primary's
    jobs_on_standby: list[tuple[Any, ...]] = field(default_factory=list)  # before promotion
    replicated: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # (primary, standby)
    launchers: dict[str, int] = field(default_factory=dict)
    waker_held: bool = False  # the waker's session failed at the kill
    waker_sessions: int = 0  # sessions the waker opened (LISTEN issued)
    waker_completed: int = 0
    waker_failures: int = 0
    deliveries: dict[str, int] = field(default_factory=dict)  # webhook-id -> requests
    dispatcher_failures: int = 0


def insert_at(conn: Conn, *ends: datetime) -> list[Any]:
    rows = conn.execute(
        "insert into meetings (title, end_time) select 'failover', e "
        "from unnest(%s::timestamptz[]) with ordinality u(e, i) order by i returning id",
        (list(ends),),
    ).fetchall()
    return [row[0] for row in rows]


def all_done(conn: Conn, ids: list[Any]) -> bool:
    row = conn.execute(
        "select count(*) = %s from meetings where id = any(%s) and status = 'done'",
        (len(ids), ids),
    ).fetchone()
    return bool(row and row[0])


def count(conn: Conn, sql: str) -> int:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def replayed(primary: Conn, standby: Conn) -> bool:
    """Whether the standby has replayed everything the primary has written so far."""
    (lsn,) = primary.execute("select pg_current_wal_insert_lsn()").fetchone()  # type: ignore[misc]
    return bool(
        poll(
            lambda: standby.execute(
                "select pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)
            ).fetchone()[0],  # type: ignore[index]
            timeout=CONVERGE,
            interval=0.05,
        )
    )


def delivered(conn: Conn, receiver: WebhookReceiver) -> bool:
    """Every event is recorded delivered, and the receiver got each."""
    rows = conn.execute("select event_key::text, delivery from scheduler.completion_events")
    events = dict(rows.fetchall())
    received = receiver.by_key()
    return bool(events) and all(
        state == "delivered" and key in received for key, state in events.items()
    )


def wait_until(instant: datetime, offset: timedelta) -> None:
    """Sleep until ``instant`` by the database's clock (``offset``: database minus local)."""
    remaining = (instant - offset - datetime.now(UTC)).total_seconds()
    if remaining > 0:
        time.sleep(remaining)


def run(stack: ExitStack, primary: Cluster, standby: Cluster) -> Failover:
    """The story of the module's docstring; the waker, the dispatcher and the receiver are
    stopped when ``stack`` closes."""
    url = (
        f"postgresql://postgres@{primary.host}:{primary.port},{standby.host}:{standby.port}"
        f"/{primary.database}?target_session_attrs=read-write"
    )
    old = stack.enter_context(connect(primary.dsn()))
    new = stack.enter_context(connect(standby.dsn()))
    receiver = stack.enter_context(WebhookReceiver())
    dispatcher = Dispatcher(
        PostgresBackend(url, connect_timeout=2),
        receiver.url,
        timeout=2.0,
        poll_interval=0.2,
        db_backoff_start=0.2,
        db_backoff_cap=1.0,
        target=mask_url(url),
    )
    dispatcher.start_thread()
    stack.callback(dispatcher.stop)
    backoff = HeldBackoff(limit=120.0)
    source = ListeningSource(url, connect_timeout=2)
    waker = Waker(source)
    waker.backoff = backoff
    waker.start_thread()
    stack.callback(waker.stop)
    stack.callback(backoff.released.set)  # runs first: a held waker cannot stop
    assert poll(lambda: waker.cycles >= 1, timeout=CONVERGE, interval=0.05), "no waker"
    assert poll(
        lambda: count(old, "select count(*) from scheduler.settings where webhooks"),
        timeout=CONVERGE,
        interval=0.05,
    ), "the dispatcher did not turn webhooks on"

    now = db_now(old)
    record = Failover(primary, standby, url, boundary=now)
    # (started 1 s after the database was created: it failed to connect before)
    record.launchers["primary"] = poll(
        lambda: count(old, LAUNCHER), timeout=CONVERGE, interval=0.05
    )
    # before the failover: rows that stay pending, one completed as it is written, one by the
    # waker; their events delivered, and all of it replayed on the standby
    record.pending = insert_at(old, now + timedelta(hours=1), now + timedelta(hours=2))
    (record.before["write"],) = insert_at(old, now - timedelta(minutes=1))
    (record.before["waker"],) = insert_at(old, clear_of_ticks(old, 1.5))
    assert poll(lambda: all_done(old, list(record.before.values())), timeout=CONVERGE)
    assert poll(lambda: delivered(old, receiver), timeout=CONVERGE, interval=0.05)

    # the batch, ending between the kill and the promotion, before the boundary M
    now = db_now(old)
    offset = now - datetime.now(UTC)
    boundary = (now + LEAD).replace(second=0, microsecond=0) + timedelta(minutes=1)
    record.boundary = boundary
    record.batch = insert_at(old, *(boundary + end for end in ENDS))
    assert db_now(old) < boundary + KILL, "the batch was inserted too late (a slow machine)"
    assert replayed(old, new), "the standby did not replay the primary's writes"
    record.jobs_before_kill = old.execute(JOBS).fetchall()
    record.jobs_on_standby = new.execute(JOBS).fetchall()
    for name, sql in REPLICATED.items():
        record.replicated[name] = (old.execute(sql).fetchall(), new.execute(sql).fetchall())
    record.launchers["standby before the kill"] = count(new, LAUNCHER)

    wait_until(boundary + KILL, offset)
    backoff.armed.set()
    primary.stop("immediate")
    record.killed_at = datetime.now(UTC) + offset
    record.waker_held = bool(poll(backoff.held.is_set, timeout=CONVERGE, interval=0.05))

    wait_until(boundary + PROMOTE, offset)
    record.launchers["standby before promotion"] = count(new, LAUNCHER)
    standby.promote()
    record.promoted_at = db_now(new)
    record.launchers["standby once promoted"] = poll(
        lambda: count(new, LAUNCHER), timeout=CONVERGE, interval=0.05
    )
    # at M (a pg_cron started late would miss it: the reconcile job completes them a minute on)
    assert poll(
        lambda: all_done(new, record.batch),
        timeout=(boundary - db_now(new)).total_seconds() + 60 + CONVERGE,
    ), "the promoted server did not complete the batch"

    # the waker: released, it reconnects, LISTENs again, and is woken for a new meeting
    backoff.released.set()
    assert poll(
        lambda: waker.failures == 0 and source.sessions >= 2, timeout=CONVERGE, interval=0.05
    ), "the waker did not reconnect"
    (record.after,) = insert_at(new, clear_of_ticks(new, 2.0))
    assert poll(lambda: all_done(new, [record.after]), timeout=CONVERGE, interval=0.05)
    assert poll(lambda: delivered(new, receiver), timeout=CONVERGE, interval=0.05)

    record.waker_sessions = source.sessions
    record.waker_completed = waker.completed
    record.waker_failures = waker.failures
    record.dispatcher_failures = dispatcher.failures
    record.deliveries = {key: len(got) for key, got in receiver.by_key().items()}
    return record


@pytest.fixture(scope="module")
def failover(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Failover]:
    """The story, once for the module; the promoted server keeps running for the tests."""
    with ExitStack() as servers:
        try:
            primary, standby = servers.enter_context(
                primary_and_standby(parent=tmp_path_factory.mktemp("failover"))
            )
        except ClusterError as exc:
            require_or_skip(f"could not start a primary and a standby (local binaries): {exc}")
        migrate(Server(primary.dsn(), primary.url(), primary))
        with ExitStack() as clients:
            record = run(clients, primary, standby)
        yield record


@pytest.fixture
def new(failover: Failover) -> Iterator[Conn]:
    """A connection to the promoted server."""
    with connect(failover.standby.dsn()) as conn:
        yield conn


def events(conn: Conn, ids: list[Any]) -> list[tuple[Any, ...]]:
    """(meeting, path, completed_at, end_time, updated_at) of each completion event of ``ids``."""
    return conn.execute(
        "select e.meeting_id, e.path, e.completed_at, e.end_time, m.updated_at "
        "from scheduler.completion_events e join meetings m on m.id = e.meeting_id "
        "where e.meeting_id = any(%s) order by e.end_time",
        (ids,),
    ).fetchall()


def test_pg_cron_starts_on_the_standby_when_it_is_promoted(failover: Failover) -> None:
    """pg_cron's launcher runs on the primary, not on the standby while it replays, and starts
    there when recovery ends."""
    assert failover.launchers == {
        "primary": 1,
        "standby before the kill": 0,
        "standby before promotion": 0,
        "standby once promoted": 1,
    }


def test_jobs_settings_events_and_runs_are_replicated(failover: Failover) -> None:
    """cron.job, scheduler.settings, the completion events and cron.job_run_details are
    ordinary tables: the standby had the primary's rows, row for row, before the failover (the
    batch's jobs among them)."""
    assert failover.jobs_on_standby == failover.jobs_before_kill
    names = {row[1] for row in failover.jobs_before_kill}
    assert {f"meeting-status-{m}" for m in failover.batch + failover.pending} <= names
    for name, (on_primary, on_standby) in failover.replicated.items():
        assert on_standby == on_primary, name
    ((settings,),) = failover.replicated["settings"][1]
    assert settings["webhooks"] is True  # as the dispatcher set it on the primary
    assert len(failover.replicated["events"][1]) == 2  # the two completed before the failover


def test_every_meeting_that_ended_during_the_failover_is_completed_by_the_promoted_server(
    failover: Failover, new: Conn
) -> None:
    rows = events(new, failover.batch)
    assert [row[0] for row in rows] == failover.batch  # one event each
    for meeting, path, completed_at, end_time, _ in rows:
        assert failover.killed_at < end_time < failover.promoted_at, meeting
        assert path in ("job", "reconcile"), (meeting, path)  # pg_cron's runs, no application
        assert completed_at >= failover.boundary, (meeting, completed_at)  # at the tick M


def test_no_meeting_is_completed_early(failover: Failover, new: Conn) -> None:
    """Before, during and after the failover: completion event and updated_at never before
    end_time."""
    ids = [*failover.before.values(), *failover.batch, failover.after]
    rows = events(new, ids)
    assert len(rows) == len(ids)
    for meeting, _, completed_at, end_time, updated_at in rows:
        assert completed_at >= end_time, meeting
        assert updated_at >= end_time, meeting


def test_exactly_one_job_per_pending_meeting_on_the_new_primary(
    failover: Failover, new: Conn
) -> None:
    pending = new.execute("select id from meetings where status = 'upcoming' order by end_time")
    assert [row[0] for row in pending.fetchall()] == failover.pending
    jobs = new.execute(
        "select jobname, count(*) from cron.job where jobname ~ %s group by jobname",
        (JOB_PATTERN,),
    ).fetchall()
    assert dict(jobs) == {f"meeting-status-{m}": 1 for m in failover.pending}
    # the same rows as on the old primary (host and port included: pg_cron connects there)
    kept = {f"meeting-status-{m}" for m in failover.pending} | {"meeting-status-reconcile"}
    assert new.execute(JOBS).fetchall() == [
        row for row in failover.jobs_before_kill if row[1] in kept
    ]


def test_the_waker_follows_the_failover(failover: Failover, new: Conn) -> None:
    """Given both hosts, the waker's session failed at the kill; it reconnected to the new
    primary, LISTENed again, and completed a new meeting within a second of its end."""
    assert failover.waker_held
    assert failover.waker_sessions == 2
    assert failover.waker_failures == 0
    assert failover.waker_completed == 2  # one before the failover, one after
    paths = {meeting: path for meeting, path, *_ in events(new, list(failover.before.values()))}
    assert paths == {failover.before["write"]: "write", failover.before["waker"]: "waker"}
    ((_, path, completed_at, end_time, _),) = events(new, [failover.after])
    assert path == "waker"
    assert 0 <= (completed_at - end_time).total_seconds() <= WAKER_BOUND


def test_the_dispatcher_delivers_every_event_exactly_once(failover: Failover, new: Conn) -> None:
    """Given both hosts, the dispatcher follows too. No event was pending at the failover, so
    at-least-once allows no second delivery here: each event reached the receiver once."""
    keys = new.execute("select event_key::text, delivery from scheduler.completion_events")
    states = dict(keys.fetchall())
    assert len(states) == 2 + len(failover.batch) + 1
    assert set(states.values()) == {"delivered"}
    assert failover.deliveries == dict.fromkeys(states, 1)
    assert failover.dispatcher_failures == 0
