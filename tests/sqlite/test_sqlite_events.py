"""Completion events on SQLite: one per completion on every path, in the completing transaction;
webhook delivery state (claims, leases, attempts); retention into the totals; metrics()."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlite_helpers import FakeClock, future, insert, meeting

from scheduler_admin.backends.sqlite import SqliteBackend
from scheduler_admin.core import PATHS, Event, Outcome
from scheduler_admin.exceptions import DatabaseError, InvalidInput
from scheduler_admin.sqlite import events, transitions
from scheduler_admin.sqlite.connection import from_db_time
from scheduler_admin.sqlite.worker import CronWorker

UTC = timezone.utc
BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 3600)


def all_events(backend: SqliteBackend) -> list[Event]:
    return backend.events(limit=10_000)


def when(text: str) -> datetime:
    parsed = from_db_time(text)
    assert parsed is not None
    return parsed


def only_event(backend: SqliteBackend, meeting_id: str) -> Event:
    found = [e for e in all_events(backend) if e["meeting_id"] == meeting_id]
    assert len(found) == 1, found
    return found[0]


def soon(clock: FakeClock, seconds: float) -> datetime:
    """An end time in the real future (the triggers read SQLite's clock), at whole milliseconds
    (what the schema stores), ``seconds`` after the fake clock."""
    end = clock() + timedelta(seconds=seconds)
    end = end.replace(microsecond=end.microsecond // 1000 * 1000)
    # never on a minute: the job of a time on the minute fires in that minute, and the tests
    # tick the minute after the time's (the clock starts at a whole second, so 1 run in 60 hit it)
    return end + timedelta(milliseconds=1) if end.second == 0 and end.microsecond == 0 else end


# -- one event per completion, on every path ------------------------------------------------------


def test_a_meetings_job_run_by_the_worker_records_a_job_event(
    conn: sqlite3.Connection, backend: SqliteBackend, worker: CronWorker, clock: FakeClock
) -> None:
    end = soon(clock, 20.25)
    meeting_id = insert(conn, end)
    fires = end.replace(second=0, microsecond=0) + timedelta(minutes=1)
    ran_at = fires + timedelta(seconds=2, microseconds=345_678)
    worker.tick(ran_at)
    event = only_event(backend, meeting_id)
    assert (event["path"], event["delivery"], event["attempts"]) == ("job", None, 0)
    assert when(event["end_time"]) == end
    assert when(event["completed_at"]) == ran_at  # the backend's clock, microseconds kept
    assert event["lateness_seconds"] == pytest.approx((ran_at - end).total_seconds(), abs=1e-9)


@pytest.mark.parametrize("path", ["reconcile", "recover", "waker"])
def test_the_backends_completions_record_their_path(
    conn: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock, path: str
) -> None:
    end = soon(clock, 30)
    meeting_id = insert(conn, end)
    clock.set(end + timedelta(seconds=1.5))
    {"reconcile": backend.reconcile, "recover": backend.recover, "waker": backend.wake}[path]()
    assert meeting(conn, meeting_id)["status"] == "done"  # type: ignore[index]
    event = only_event(backend, meeting_id)
    assert event["path"] == path
    assert when(event["completed_at"]) == clock()
    assert event["lateness_seconds"] == pytest.approx(1.5, abs=1e-9)


def test_the_reconcile_job_run_by_the_worker_records_reconcile(
    conn: sqlite3.Connection, backend: SqliteBackend, worker: CronWorker, clock: FakeClock
) -> None:
    end = soon(clock, 30)
    meeting_id = insert(conn, end)
    conn.execute("DELETE FROM cron_job WHERE jobname = ?", (f"meeting-status-{meeting_id}",))
    worker.tick(end + timedelta(minutes=2))
    assert only_event(backend, meeting_id)["path"] == "reconcile"


def test_resume_records_recover(
    conn: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    end = soon(clock, 30)
    meeting_id = insert(conn, end)
    backend.pause()
    clock.set(end + timedelta(minutes=5))
    assert backend.wake()["completed"] == 0  # paused: nothing completed, no event
    assert all_events(backend) == []
    backend.resume()
    assert only_event(backend, meeting_id)["path"] == "recover"


def test_the_job_of_one_meeting_records_every_meeting_it_completes(
    conn: sqlite3.Connection, backend: SqliteBackend, worker: CronWorker, clock: FakeClock
) -> None:
    first, second = soon(clock, 20), soon(clock, 25)
    ids = [insert(conn, first), insert(conn, second)]
    worker.tick(second.replace(second=0, microsecond=0) + timedelta(minutes=1))
    assert sorted((e["meeting_id"], e["path"]) for e in all_events(backend)) == sorted(
        (meeting_id, "job") for meeting_id in ids
    )


@pytest.mark.parametrize("recursive", [False, True])
def test_a_write_with_an_end_time_already_past_records_write(
    conn: sqlite3.Connection, backend: SqliteBackend, recursive: bool
) -> None:
    """Inserted, moved into the past, and with a sub-millisecond end time (rounded up by one
    UPDATE of the trigger, which fires the update trigger, which completes it): one event each,
    also with recursive triggers."""
    conn.execute(f"PRAGMA recursive_triggers = {'ON' if recursive else 'OFF'}")
    before = datetime.now(UTC) - timedelta(milliseconds=1)  # SQLite's clock has milliseconds
    inserted = insert(conn, "2020-01-01T02:00:00+02:00")
    fine = insert(conn, "2020-01-01T00:00:00.0004Z")
    moved = insert(conn, future(60))
    conn.execute("UPDATE meetings SET end_time = '2021-06-01T12:00:00Z' WHERE id = ?", (moved,))
    after = datetime.now(UTC)
    expected_ends = {
        inserted: datetime(2020, 1, 1, tzinfo=UTC),
        fine: datetime(2020, 1, 1, 0, 0, 0, 1000, tzinfo=UTC),
        moved: datetime(2021, 6, 1, 12, tzinfo=UTC),
    }
    found = all_events(backend)
    assert sorted(e["meeting_id"] for e in found) == sorted(expected_ends)
    for event in found:
        end, completed = when(event["end_time"]), when(event["completed_at"])
        assert event["path"] == "write"
        assert end == expected_ends[event["meeting_id"]]
        assert before <= completed <= after
        assert event["lateness_seconds"] == pytest.approx((completed - end).total_seconds())


def test_the_applications_own_updates_record_nothing(
    conn: sqlite3.Connection, backend: SqliteBackend
) -> None:
    done = insert(conn, future(60))
    cancelled = insert(conn, future(60))
    conn.execute("UPDATE meetings SET status = 'done' WHERE id = ?", (done,))
    backend.cancel(cancelled)
    insert(conn, "2020-01-01T00:00:00Z", status="done")  # not pending: left alone
    conn.execute("UPDATE meetings SET end_time = '2020-01-01T00:00:00Z' WHERE id = ?", (done,))
    assert all_events(backend) == []


def test_a_rolled_back_completion_leaves_no_event(
    conn: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    meeting_id = insert(conn, soon(clock, 30))
    clock.advance(minutes=1)
    with pytest.raises(RuntimeError), backend.transaction() as db:
        assert transitions.wake(db, clock())["completed"] == 1
        assert db.execute("SELECT count(*) FROM scheduler_completion_events").fetchone()[0] == 1
        raise RuntimeError("the completing transaction fails")
    assert meeting(conn, meeting_id)["status"] == "upcoming"  # type: ignore[index]
    conn.execute("BEGIN")
    insert(conn, "2020-01-01T00:00:00Z")  # the trigger completes it ...
    conn.execute("ROLLBACK")  # ... in a transaction that is rolled back
    assert all_events(backend) == []


def test_new_events_are_pending_while_webhooks_are_on(
    conn: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    off = insert(conn, "2020-01-01T00:00:00Z")
    assert backend.set_webhooks(True) == {"webhooks": True}
    written = insert(conn, "2020-01-01T00:00:00Z")
    woken = insert(conn, soon(clock, 30))
    clock.advance(minutes=1)
    backend.wake()
    assert backend.set_webhooks(False) == {"webhooks": False}
    later = insert(conn, "2020-01-01T00:00:00Z")
    delivery = {e["meeting_id"]: e["delivery"] for e in all_events(backend)}
    assert delivery == {off: None, written: "pending", woken: "pending", later: None}


def test_events_are_newest_first_and_filtered(
    conn: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    written = [insert(conn, "2020-01-01T00:00:00Z") for _ in range(3)]
    woken = insert(conn, soon(clock, 30))
    clock.advance(minutes=1)
    backend.wake()
    assert [e["meeting_id"] for e in backend.events()] == [woken, *reversed(written)]
    assert [e["meeting_id"] for e in backend.events(limit=2)] == [woken, written[2]]
    assert [e["meeting_id"] for e in backend.events(path="write", limit=1)] == [written[2]]
    assert backend.events(path="job") == []
    event = backend.events(limit=1)[0]
    assert set(event) == set(Event.__annotations__)
    with pytest.raises(InvalidInput):
        backend.events(limit=0)
    with pytest.raises(InvalidInput, match="unknown completion path 'cron'"):
        backend.events(path="cron")  # as the PostgreSQL backend


def test_event_rows_reads_the_events_of_given_ids_by_id(
    conn: sqlite3.Connection, backend: SqliteBackend
) -> None:
    """scheduler.event_rows(): the rows events() and claim_events() return, for any ids."""
    written = [insert(conn, "2020-01-01T00:00:00Z") for _ in range(3)]
    ids = {e["meeting_id"]: e["event_id"] for e in all_events(backend)}
    wanted = [ids[written[2]], ids[written[0]], 10_000]  # in any order; an unknown id is left out
    rows = events.event_rows(conn, wanted)
    assert [e["meeting_id"] for e in rows] == [written[0], written[2]]
    assert rows == [e for e in reversed(all_events(backend)) if e["event_id"] in wanted]
    assert events.event_rows(conn, []) == []


# -- delivery state -----------------------------------------------------------------------------


@pytest.fixture
def pending(conn: sqlite3.Connection, backend: SqliteBackend) -> list[int]:
    """Three events pending delivery, oldest first."""
    backend.set_webhooks(True)
    for _ in range(3):
        insert(conn, "2020-01-01T00:00:00Z")
    return sorted(e["event_id"] for e in all_events(backend))


def delivery_of(backend: SqliteBackend, event_id: int) -> Event:
    return next(e for e in all_events(backend) if e["event_id"] == event_id)


def claim(backend: SqliteBackend, limit: int = 10, lease: float = 30) -> list[int]:
    return [e["event_id"] for e in backend.claim_events(limit=limit, lease_seconds=lease)]


def test_claims_take_the_oldest_and_a_lease_keeps_others_off(
    backend: SqliteBackend, clock: FakeClock, pending: list[int]
) -> None:
    clock.advance(seconds=5)  # the trigger's events completed at SQLite's (real) clock
    claimed = backend.claim_events(limit=2, lease_seconds=30)
    assert [e["event_id"] for e in claimed] == pending[:2]
    assert [e["attempts"] for e in claimed] == [1, 1]
    assert claim(backend) == pending[2:]
    assert claim(backend) == []  # all leased
    clock.advance(seconds=29)
    assert claim(backend) == []
    clock.advance(seconds=1.5)  # the first two leases ran out; the third's too
    assert claim(backend, limit=2) == pending[:2]
    assert [delivery_of(backend, i)["attempts"] for i in pending] == [2, 2, 1]


def test_record_attempt_delivered_retry_failed(
    conn: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock, pending: list[int]
) -> None:
    delivered, retried, failed = pending
    clock.advance(seconds=5)
    assert claim(backend) == pending
    assert backend.record_attempt(delivered, outcome="delivered", status_code=204) is True
    assert (
        backend.record_attempt(
            retried, outcome="retry", status_code=503, error="busy", retry_in_seconds=60
        )
        is True
    )
    assert backend.record_attempt(failed, outcome="failed", status_code=410, error="gone") is True
    states = {i: delivery_of(backend, i) for i in pending}
    assert [(states[i]["delivery"], states[i]["last_error"]) for i in pending] == [
        ("delivered", None),
        ("pending", "busy"),
        ("failed", "gone"),
    ]
    row = conn.execute(
        "SELECT delivered_at, claimed_until FROM scheduler_completion_events WHERE event_id = ?",
        (delivered,),
    ).fetchone()
    assert (when(row[0]), row[1]) == (clock(), None)
    # a retry releases the lease but waits for its time; the others are never claimed again
    clock.advance(seconds=59)
    assert claim(backend) == []
    clock.advance(seconds=1)
    assert claim(backend) == [retried]
    assert delivery_of(backend, retried)["attempts"] == 2


def test_retried_events_are_claimed_by_their_next_attempt(
    conn: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock, pending: list[int]
) -> None:
    """Oldest first means the earliest next attempt first, then the oldest event; a negative
    retry time means at once, and a long error is cut."""
    first, second, third = pending
    clock.advance(seconds=5)
    claim(backend)
    backend.record_attempt(first, outcome="retry", error="x" * 5000, retry_in_seconds=20)
    backend.record_attempt(second, outcome="retry", retry_in_seconds=10)
    backend.record_attempt(third, outcome="retry", retry_in_seconds=-5)
    assert claim(backend) == [third]
    clock.advance(seconds=20)  # both due: the one due earlier goes first
    assert claim(backend, limit=1) == [second]
    assert claim(backend, limit=1) == [first]
    assert len(delivery_of(backend, first)["last_error"] or "") == 2000
    kept = conn.execute(
        "SELECT length(error) FROM scheduler_webhook_attempts WHERE event_id = ?", (first,)
    ).fetchone()
    assert kept[0] == 2000


def test_a_delivered_or_failed_event_is_never_changed(
    conn: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock, pending: list[int]
) -> None:
    delivered, failed, _ = pending
    clock.advance(seconds=5)
    claim(backend)
    backend.record_attempt(delivered, outcome="delivered", status_code=200)
    backend.record_attempt(failed, outcome="failed", error="permanent")
    outcomes: tuple[Outcome, ...] = ("delivered", "retry", "failed")
    for event_id in (delivered, failed):
        for outcome in outcomes:
            recorded = backend.record_attempt(
                event_id, outcome=outcome, error="late", retry_in_seconds=1
            )
            assert recorded is False
    assert delivery_of(backend, delivered)["delivery"] == "delivered"
    assert delivery_of(backend, failed)["delivery"] == "failed"
    assert delivery_of(backend, delivered)["last_error"] is None
    attempts = conn.execute(
        "SELECT event_id, attempt, outcome FROM scheduler_webhook_attempts ORDER BY attempt_id"
    ).fetchall()
    assert len(attempts) == 2 + 2 * 3  # the attempt rows are kept
    assert {tuple(a) for a in attempts} >= {(delivered, 1, "delivered"), (failed, 1, "failed")}
    with pytest.raises(DatabaseError, match="no completion event 10000"):
        backend.record_attempt(10_000, outcome="delivered")  # e.g. deleted by the retention
    with pytest.raises(InvalidInput):
        backend.record_attempt(delivered, outcome="lost")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        backend.claim_events(limit=1, lease_seconds=0)


def test_concurrent_claimers_never_claim_an_event_twice(
    db_path: Path, backend: SqliteBackend, clock: FakeClock, pending: list[int]
) -> None:
    clock.advance(seconds=5)
    claimed: list[int] = []
    lock = threading.Lock()

    def dispatcher() -> None:
        other = SqliteBackend(f"sqlite:///{db_path}", clock=clock)
        try:
            while batch := claim(other, limit=1):
                with lock:
                    claimed.extend(batch)
        finally:
            other.close()

    threads = [threading.Thread(target=dispatcher) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(claimed) == pending


# -- retention and metrics ----------------------------------------------------------------------


def counters(metrics: dict[str, object]) -> dict[str, object]:
    """The cumulative parts of metrics() (never decreasing)."""
    webhooks = metrics["webhooks"]
    assert isinstance(webhooks, dict)
    return {
        "completions": metrics["completions"],
        "lateness": metrics["lateness"],
        "delivered": webhooks["delivered"],
        "failed": webhooks["failed"],
        "attempt_failures": webhooks["attempt_failures"],
    }


def complete_at(
    conn: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock, late: float
) -> str:
    """A meeting completed by the waker ``late`` seconds after its end (the fake clock moves)."""
    end = soon(clock, 30)
    meeting_id = insert(conn, end)
    clock.set(end + timedelta(seconds=late))
    assert backend.wake()["completed"] == 1
    return meeting_id


def test_retention_rolls_old_events_into_the_totals(
    conn: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    backend.set_webhooks(True)
    start = clock()
    assert backend.reconcile()["events_deleted"] == 0  # type: ignore[typeddict-item]
    for late in (0.25, 3.0, 700.0):
        complete_at(conn, backend, clock, late)
    clock.advance(seconds=1)
    first, second, _left_pending = claim(backend)
    backend.record_attempt(first, outcome="retry", error="timeout", retry_in_seconds=0)
    backend.record_attempt(first, outcome="delivered", status_code=200)
    backend.record_attempt(second, outcome="failed", status_code=400, error="bad")
    clock.set(start + timedelta(days=7, hours=2))  # older than the 7 days of the retention
    recent = complete_at(conn, backend, clock, 0.75)
    before = backend.metrics()
    assert before["webhooks"]["backlog"] == 2
    assert backend.reconcile()["events_deleted"] == 3  # type: ignore[typeddict-item]
    assert [e["meeting_id"] for e in all_events(backend)] == [recent]
    assert conn.execute("SELECT count(*) FROM scheduler_webhook_attempts").fetchone()[0] == 0
    after = backend.metrics()
    assert counters(after) == counters(before)  # nothing lost, nothing counted twice
    assert after["webhooks"]["backlog"] == 1  # a gauge: the deleted pending event is gone
    assert after["completions"]["waker"] == 4
    assert after["lateness"]["count"] == 4
    assert after["lateness"]["sum"] == pytest.approx(0.25 + 3.0 + 700.0 + 0.75)
    webhooks = after["webhooks"]
    assert (webhooks["delivered"], webhooks["failed"], webhooks["attempt_failures"]) == (1, 1, 2)
    backend.reconcile()  # again: nothing more to roll up
    assert counters(backend.metrics()) == counters(before)


def test_retention_follows_the_setting(
    conn: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    meeting_id = complete_at(conn, backend, clock, 1)
    conn.execute("UPDATE scheduler_settings SET history_retention_days = 30")
    clock.advance(days=8)
    backend.reconcile()
    assert [e["meeting_id"] for e in all_events(backend)] == [meeting_id]
    clock.advance(days=23)
    backend.reconcile()
    assert all_events(backend) == []
    assert backend.metrics()["completions"]["waker"] == 1


def add_run(
    conn: sqlite3.Connection, command: str, status: str, at: datetime, *, message: str = "x"
) -> None:
    conn.execute(
        "INSERT INTO cron_job_run_details (jobid, command, status, return_message, start_time, "
        "end_time) VALUES (1, ?, ?, ?, ?, ?)",
        (command, status, message, at.isoformat(), at.isoformat()),
    )


@pytest.fixture
def dataset(
    conn: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> dict[str, list[float]]:
    """A small known dataset: completions of known lateness (seconds) by path, delivery
    outcomes, failed runs (three of them retried), and two upcoming meetings with their jobs."""
    backend.set_webhooks(True)
    lateness = {"waker": [0.25, 0.5, 1.5, 45.0], "recover": [7200.0]}
    done = [complete_at(conn, backend, clock, late) for late in lateness["waker"]]
    end = soon(clock, 30)
    insert(conn, end)
    clock.set(end + timedelta(seconds=lateness["recover"][0]))
    backend.recover()
    clock.advance(seconds=1)
    ids = claim(backend)
    backend.record_attempt(ids[0], outcome="delivered", status_code=200)
    backend.record_attempt(ids[1], outcome="retry", status_code=503, retry_in_seconds=10)
    backend.record_attempt(ids[2], outcome="failed", status_code=404, error="no")
    insert(conn, future(600))
    insert(conn, future(600), meeting_id="it's")
    hour_ago = clock() - timedelta(hours=1)
    retried = [f"complete_meeting('{done[0]}')", "complete_meeting('gone')", "reconcile()"]
    for command in retried:
        add_run(conn, command, "failed", hour_ago)
    add_run(conn, "reconcile()", "succeeded", hour_ago + timedelta(minutes=1))
    add_run(conn, "complete_meeting('it''s')", "failed", hour_ago)  # still pending
    add_run(conn, "reconcile()", "failed", hour_ago + timedelta(minutes=2))  # the last run
    add_run(conn, "reconcile()", "failed", hour_ago, message="job canceled")  # not a failure
    return lateness


def test_metrics_of_a_known_dataset(
    backend: SqliteBackend, clock: FakeClock, dataset: dict[str, list[float]]
) -> None:
    every = [late for lates in dataset.values() for late in lates]
    metrics = backend.metrics()
    assert set(metrics) == {
        "backend",
        "enabled",
        "upcoming_meetings",
        "jobs",
        "missing_jobs",
        "orphan_jobs",
        "overdue_meetings",
        "completions",
        "lateness",
        "failed_runs",
        "retried_runs",
        "failing_rows",
        "reconcile_skipped_in_a_row",
        "reconcile_failed_in_a_row",
        "job_horizon_seconds",
        "beyond_horizon",
        "webhooks",
    }
    assert metrics["job_horizon_seconds"] is None and metrics["beyond_horizon"] == 0
    assert metrics["backend"] == "sqlite" and metrics["enabled"] is True
    assert (metrics["upcoming_meetings"], metrics["jobs"], metrics["missing_jobs"]) == (2, 2, 0)
    assert (metrics["orphan_jobs"], metrics["overdue_meetings"]) == (0, 0)
    assert metrics["completions"] == {path: len(dataset.get(path, [])) for path in PATHS}
    assert metrics["lateness"]["buckets"] == [
        [bound, sum(late <= bound for late in every)] for bound in BUCKETS
    ]
    assert metrics["lateness"]["count"] == len(every)
    assert metrics["lateness"]["sum"] == pytest.approx(sum(every))
    # the done meeting's, the gone meeting's and the reconcile job's first failure were retried
    assert (metrics["failed_runs"], metrics["retried_runs"]) == (5, 3)
    oldest = min(
        when(e["completed_at"]) for e in backend.events(limit=100) if e["delivery"] == "pending"
    )
    assert metrics["webhooks"] == {
        "enabled": True,
        "delivered": 1,
        "failed": 1,
        "attempt_failures": 2,
        "backlog": 3,
        "oldest_pending_seconds": pytest.approx((clock() - oldest).total_seconds()),
    }
    assert backend.health()["retried_runs_24h"] == 3


def test_metrics_of_an_empty_store(backend: SqliteBackend) -> None:
    metrics = backend.metrics()
    assert metrics["completions"] == dict.fromkeys(PATHS, 0)
    assert metrics["lateness"] == {"buckets": [[b, 0] for b in BUCKETS], "count": 0, "sum": 0}
    assert metrics["webhooks"] == {
        "enabled": False,
        "delivered": 0,
        "failed": 0,
        "attempt_failures": 0,
        "backlog": 0,
        "oldest_pending_seconds": None,
    }
    assert (metrics["failed_runs"], metrics["retried_runs"]) == (0, 0)
