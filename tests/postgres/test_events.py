"""Completion events (scheduler.completion_events): one row per meeting a path of ours completed,
written by the completing statement, and the webhook delivery state the dispatcher works with
(claim_events, record_attempt). Both lanes run this file."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from pg_helpers import (
    Conn,
    Server,
    connect,
    insert_meeting,
    job_command,
    poll,
    reconcile_job_inactive,
    run_command,
)

UTC = timezone.utc


def events(db: Conn) -> list[tuple[Any, ...]]:
    """(meeting_id, path, end_time, completed_at, lateness in s, delivery) of every event."""
    return db.execute(
        "select meeting_id, path, end_time, completed_at, extract(epoch from lateness)::float8, "
        "delivery from scheduler.completion_events order by event_id"
    ).fetchall()


@pytest.fixture(autouse=True)
def no_tick(db: Conn) -> Iterator[None]:
    """The reconcile job out (it would complete the tests' meetings at a tick, as path
    reconcile); ended_meetings() deactivates the meetings' own jobs for the same reason."""
    with reconcile_job_inactive(db):
        yield


def ended_meetings(db: Conn, count: int = 1) -> list[Any]:
    """Upcoming meetings whose end time has just passed on the server's clock. Their jobs are
    registered, then deactivated: the test runs what completes them."""
    end = db.execute("select clock_timestamp() + interval '200 milliseconds'").fetchone()[0]  # type: ignore[index]
    ids = [
        row[0]
        for row in db.execute(
            "insert into meetings (title, end_time) select 'm' || g, %s "
            "from generate_series(1, %s) g returning id",
            (end, count),
        ).fetchall()
    ]
    db.execute(
        "update cron.job set active = false where jobname ~ '^meeting-status-[0-9a-f-]{36}$'"
    )
    assert poll(
        lambda: db.execute("select clock_timestamp() > %s", (end,)).fetchone()[0],  # type: ignore[index]
        timeout=5,
        interval=0.05,
    )
    return ids


@pytest.mark.parametrize(
    ("command", "path"),
    [
        ("job", "job"),
        ("select scheduler.sweep()", "sweep"),
        ("select scheduler.wake()", "waker"),
        ("select scheduler.reconcile()", "reconcile"),
        ("select scheduler.recover()", "recover"),
    ],
)
def test_each_path_records_one_event_per_meeting_it_completes(
    db: Conn, command: str, path: str
) -> None:
    """A meeting's job run, the sweep, the waker, the reconcile job and recover each record one
    event per meeting they complete, with the meeting's end_time, the time of the completing
    statement (never before the end) and the lateness between them."""
    ids = ended_meetings(db, 3)
    run_command(db, job_command(ids[0]) if command == "job" else command)
    rows = events(db)
    assert sorted(str(r[0]) for r in rows) == sorted(str(i) for i in ids)
    assert {r[1] for r in rows} == {path}
    ends = dict(db.execute("select id, end_time from meetings").fetchall())
    for meeting, _path, end_time, completed_at, lateness, delivery in rows:
        assert end_time == ends[meeting]
        assert completed_at >= end_time
        assert lateness == pytest.approx((completed_at - end_time).total_seconds())
        assert delivery is None  # webhooks are off
    # one statement completed them: one completion time
    assert len({r[3] for r in rows}) == 1


def test_a_write_with_an_end_time_already_past_records_a_write_event(db: Conn) -> None:
    """The BEFORE trigger completes a pending meeting inserted, or moved, to an end time that has
    passed: path write. A meeting the application sets done itself, or inserts done, is not a
    completion of ours: no event."""
    past = datetime.now(UTC) - timedelta(minutes=5)
    inserted, status = insert_meeting(db, past)
    assert status == "done"
    moved, _ = insert_meeting(db, datetime.now(UTC) + timedelta(hours=1))
    db.execute("update meetings set end_time = %s where id = %s", (past, moved))
    by_app, _ = insert_meeting(db, datetime.now(UTC) + timedelta(hours=1))
    db.execute("update meetings set status = 'done' where id = %s", (by_app,))
    insert_meeting(db, past, status="done")
    # one statement: a pending meeting already ended and one the application inserts done
    # with a later end time (it did not end: not a completion)
    (mixed,) = db.execute(
        "insert into meetings (title, end_time, status) values ('a', %s, 'upcoming'), "
        "('b', now() + interval '1 day', 'done') returning id",
        (past,),
    ).fetchall()[:1]
    rows = events(db)
    assert [(r[0], r[1]) for r in rows] == [
        (inserted, "write"),
        (moved, "write"),
        (mixed[0], "write"),
    ]
    assert all(r[2] == past for r in rows)


def test_a_rolled_back_completion_leaves_no_event_and_a_committed_one_always_has_one(
    db: Conn, migrated: Server
) -> None:
    ids = ended_meetings(db, 2)
    with psycopg.connect(migrated.dsn) as other:
        assert run_command(other, job_command(ids[0])) == 2
        other.rollback()
    assert events(db) == []
    assert db.execute("select count(*) from meetings where status = 'upcoming'").fetchone() == (2,)
    with psycopg.connect(migrated.dsn) as other:
        run_command(other, job_command(ids[0]))
        other.commit()
    done = db.execute("select id from meetings where status = 'done'").fetchall()
    assert sorted(str(r[0]) for r in events(db)) == sorted(str(r[0]) for r in done)
    assert len(done) == 2


def test_a_burst_is_recorded_set_based_by_one_statement(db: Conn) -> None:
    """500 meetings completed by one job run: 500 events, one per meeting, one completion time."""
    ids = ended_meetings(db, 500)
    assert run_command(db, job_command(ids[0])) == 500
    rows = events(db)
    assert len(rows) == 500 and len({r[0] for r in rows}) == 500
    assert len({r[3] for r in rows}) == 1


def test_events_wait_for_delivery_only_while_webhooks_are_on(db: Conn) -> None:
    off = ended_meetings(db)[0]
    run_command(db, "select scheduler.sweep()")
    assert run_command(db, "select scheduler.set_webhooks(true)") == {"webhooks": True}
    on = ended_meetings(db)[0]
    run_command(db, "select scheduler.sweep()")
    assert [(r[0], r[5]) for r in events(db)] == [(off, None), (on, "pending")]


def claim(db: Conn, limit: int = 10, lease: float = 30.0) -> list[tuple[Any, ...]]:
    """(event_id, meeting_id, attempts) of what scheduler.claim_events hands out."""
    return db.execute(
        "select event_id, meeting_id, attempts from scheduler.claim_events(%s, %s)",
        (limit, lease),
    ).fetchall()


def record(db: Conn, event_id: int, outcome: str, retry_in: float | None = None) -> bool:
    result = db.execute(
        "select scheduler.record_attempt(%s, %s, 500, 'boom', %s)", (event_id, outcome, retry_in)
    ).fetchone()[0]  # type: ignore[index]
    return bool(result["recorded"])


def pending_events(db: Conn, count: int) -> list[Any]:
    db.execute("select scheduler.set_webhooks(true)")
    ids = ended_meetings(db, count)
    run_command(db, "select scheduler.sweep()")
    return ids


def test_claims_lease_events_and_a_lapsed_lease_makes_them_claimable_again(db: Conn) -> None:
    pending_events(db, 3)
    first = claim(db, limit=2, lease=0.5)
    assert [r[2] for r in first] == [1, 1]
    second = claim(db)
    assert len(second) == 1 and second[0][0] not in {r[0] for r in first}
    assert claim(db) == []
    # a dispatcher that died holding the first two: after its lease they are claimed again
    again = poll(lambda: claim(db), timeout=5, interval=0.1)
    assert sorted(r[0] for r in again) == sorted(r[0] for r in first)
    assert [r[2] for r in again] == [2, 2]


def test_concurrent_claims_never_hand_out_the_same_event(db: Conn, migrated: Server) -> None:
    """Two dispatchers claiming at once (skip locked): disjoint claims that cover every event."""
    pending_events(db, 200)
    claimed: list[list[int]] = []
    start = threading.Barrier(2)

    def dispatcher() -> None:
        with connect(migrated.dsn) as conn:
            got: list[int] = []
            start.wait()
            while batch := claim(conn, limit=7):
                got += [r[0] for r in batch]
            claimed.append(got)

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = claimed[0] + claimed[1]
    assert len(every) == len(set(every)) == 200


def test_record_attempt_moves_the_delivery_state_and_keeps_every_attempt(db: Conn) -> None:
    pending_events(db, 3)
    (a, _, _), (b, _, _), (c, _, _) = claim(db)
    assert record(db, a, "retry", 3600)
    assert record(db, b, "delivered")
    assert record(db, c, "failed")
    # late reports (a lapsed lease) never undo a final state; the attempt is still recorded
    assert not record(db, b, "retry", 1)
    assert not record(db, c, "delivered")
    state = dict(
        (r[0], r[1:])
        for r in db.execute(
            "select event_id, delivery, delivered_at is not null, next_attempt_at > now() + "
            "interval '59 minutes', claimed_until, last_error "
            "from scheduler.completion_events"
        ).fetchall()
    )
    assert state[a] == ("pending", False, True, None, "boom")
    assert state[b] == ("delivered", True, False, None, None)
    assert state[c] == ("failed", False, False, None, "boom")
    assert claim(db) == []  # a waits for its retry time
    attempts = db.execute(
        "select event_id, outcome from scheduler.webhook_attempts order by attempt_id"
    ).fetchall()
    assert attempts == [
        (a, "retry"),
        (b, "delivered"),
        (c, "failed"),
        (b, "retry"),
        (c, "delivered"),
    ]


def test_bad_delivery_reports_get_clear_errors_and_change_nothing(db: Conn) -> None:
    pending_events(db, 1)
    ((event_id, _, _),) = claim(db)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown delivery outcome"):
        record(db, event_id, "maybe")
    with pytest.raises(psycopg.errors.NoDataFound, match="no completion event 0"):
        record(db, 0, "delivered")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="positive limit"):
        claim(db, limit=0)
    assert db.execute("select count(*) from scheduler.webhook_attempts").fetchone() == (0,)


def metrics(db: Conn) -> dict[str, Any]:
    return db.execute("select scheduler.metrics()").fetchone()[0]  # type: ignore[index,no-any-return]


def test_metrics_count_completions_by_path_and_never_go_down_after_the_retention(
    db: Conn,
) -> None:
    ended_meetings(db, 2)
    run_command(db, "select scheduler.sweep()")
    insert_meeting(db, datetime.now(UTC) - timedelta(seconds=30))  # write, 30 s late
    before = metrics(db)
    assert before["completions"] == {
        "job": 0,
        "sweep": 2,
        "waker": 0,
        "reconcile": 0,
        "recover": 0,
        "write": 1,
    }
    lateness = before["lateness"]
    assert lateness["count"] == 3
    buckets = dict((le, n) for le, n in lateness["buckets"])
    assert buckets[10] == 2 and buckets[60] == 3 and buckets[3600] == 3
    assert list(buckets.values()) == sorted(buckets.values())  # cumulative
    kept = db.execute(
        "select sum(extract(epoch from lateness))::float8 from scheduler.completion_events"
    ).fetchone()[0]  # type: ignore[index]
    assert lateness["sum"] == pytest.approx(kept)
    # the retention deletes them all; their counts move to scheduler.metric_totals
    db.execute("update scheduler.settings set history_retention = interval '0'")
    try:
        assert run_command(db, "select scheduler.reconcile()")["events_deleted"] == 3
    finally:
        db.execute("update scheduler.settings set history_retention = interval '7 days'")
    assert db.execute("select count(*) from scheduler.completion_events").fetchone() == (0,)
    after = metrics(db)
    assert after["completions"] == before["completions"]
    assert after["lateness"]["buckets"] == lateness["buckets"]
    assert after["lateness"]["sum"] == pytest.approx(lateness["sum"])


def test_metrics_report_the_webhook_backlog_and_outcomes(db: Conn) -> None:
    pending_events(db, 3)
    assert metrics(db)["webhooks"]["backlog"] == 3
    (a, _, _), (b, _, _), _ = claim(db)
    record(db, a, "retry", 0)
    record(db, a, "delivered")
    record(db, b, "failed")
    webhooks = metrics(db)["webhooks"]
    assert {
        k: webhooks[k] for k in ("enabled", "delivered", "failed", "attempt_failures", "backlog")
    } == {
        "enabled": True,
        "delivered": 1,
        "failed": 1,
        "attempt_failures": 2,
        "backlog": 1,
    }
    assert webhooks["oldest_pending_seconds"] >= 0
