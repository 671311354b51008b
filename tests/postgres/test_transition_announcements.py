"""Revision 0008 on a real server: a registered transition's writes announce their earliest time
on ``scheduler_transitions`` (NOTIFY at commit), so the waker of that transition (or of all of
them) sleeping until a later row is woken for an earlier one; and ``history()`` reads the runs
of a row whose text key holds a backslash (its job's command carries an ``E'...'`` literal).

As in test_waker.py, the shared reset turns the seconds sweep off and the times are chosen away
from minute boundaries, so that pg_cron's per-row jobs do not race the waker.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from pg_helpers import (
    Conn,
    Server,
    clear_of_ticks,
    connect,
    db_now,
    poll,
    reconcile_job_inactive,
)

from scheduler_admin.backends.postgres import PostgresBackend
from scheduler_admin.waker import TRANSITION_CHANNEL, ListeningSource, Waker

BOUND = 0.5  # seconds after its time by which a row must be expired while its waker runs
PREFIX = "memberships-status-"


@pytest.fixture
def memberships(db: Conn, migrated: Server) -> Iterator[None]:
    """public.memberships (bigint key) registered as the transition memberships; removed and
    dropped afterwards."""
    db.execute(
        "create table public.memberships (id bigint generated always as identity primary key, "
        "status text not null default 'active', expires_at timestamptz not null)"
    )
    db.execute(
        "select scheduler.add_transition('memberships', 'public.memberships', 'id', "
        "'expires_at', 'status', array['active'], 'expired')"
    )
    try:
        with reconcile_job_inactive(db):
            yield
    finally:
        db.execute("update scheduler.transitions set paused = false")
        db.execute(
            "select scheduler.remove_transition(name) from scheduler.transitions where not builtin"
        )
        db.execute("drop table if exists public.memberships")
        db.execute("drop table if exists public.invoices")


def insert(conn: Conn, *times: datetime, status: str = "active") -> list[int]:
    rows = conn.execute(
        "insert into public.memberships (status, expires_at) "
        "select %s, t from unnest(%s::timestamptz[]) t returning id",
        (status, list(times)),
    ).fetchall()
    return [int(row[0]) for row in rows]


def announcements(listener: Any, timeout: float) -> list[dict[str, Any]]:
    """What was announced on scheduler_transitions, decoded (waits ``timeout`` for the first)."""
    return [
        json.loads(n.payload)
        for n in listener.notifies(timeout=timeout, stop_after=1)
        if n.channel == TRANSITION_CHANNEL
    ]


def lateness(conn: Conn, keys: list[int], timeout: float) -> list[float]:
    """Seconds between each row's time and its completion by the waker (its event's
    completed_at), once every row is expired."""
    assert poll(
        lambda: conn.execute(
            "select bool_and(status = 'expired') from public.memberships where id = any(%s)",
            (keys,),
        ).fetchone()[0],  # type: ignore[index]
        timeout=timeout,
        interval=0.05,
    ), "the rows were not expired in time"
    rows = conn.execute(
        "select path, extract(epoch from completed_at - end_time)::float8 "
        "from scheduler.completion_events where transition = 'memberships' "
        "and row_key = any(%s::text[])",
        ([str(k) for k in keys],),
    ).fetchall()
    assert {row[0] for row in rows} == {"waker"}, rows
    assert len(rows) == len(keys)
    return [float(row[1]) for row in rows]


def started(server: Server, transition: str | None) -> Waker:
    waker = Waker(ListeningSource(server.url, transition=transition), transition=transition)
    waker.start_thread()
    assert poll(lambda: waker.cycles >= 1, timeout=10, interval=0.05), "the waker never answered"
    return waker


def test_a_write_announces_the_earliest_time_it_registered_at_commit(
    db: Conn, migrated: Server, memberships: None
) -> None:
    with connect(migrated.dsn) as listener:
        listener.execute(f"listen {TRANSITION_CHANNEL}")
        times = [clear_of_ticks(db, 30), clear_of_ticks(db, 20)]
        with db.transaction():
            insert(db, *times)
            assert list(listener.notifies(timeout=0.3)) == []  # nothing before commit
        announced = announcements(listener, timeout=2)
        assert [a["transition"] for a in announced] == ["memberships"]
        assert [datetime.fromisoformat(a["time"]) for a in announced] == [min(times)]

        # a row that is not pending, or whose time has passed (expired at once), is not announced
        insert(db, clear_of_ticks(db, 15), status="expired")
        insert(db, db_now(db) - timedelta(minutes=1))
        assert list(listener.notifies(timeout=0.3)) == []

        # moving a pending row's time is announced
        moved = clear_of_ticks(db, 10)
        db.execute(
            "update public.memberships set expires_at = %s where expires_at = %s",
            (moved, times[0]),
        )
        announced = announcements(listener, timeout=2)
        assert [datetime.fromisoformat(a["time"]) for a in announced] == [moved]

        # a paused transition registers nothing and so announces nothing
        db.execute("select scheduler.pause('memberships')")
        insert(db, clear_of_ticks(db, 12))
        assert list(listener.notifies(timeout=0.3)) == []


@pytest.mark.parametrize("transition", ["memberships", None])
def test_an_earlier_row_wakes_a_sleeping_waker(
    db: Conn, migrated: Server, memberships: None, transition: str | None
) -> None:
    """The waker (of memberships, or of every transition) sleeps until a row 40 s ahead; an
    earlier row announced on scheduler_transitions wakes it, and it expires that row on time."""
    insert(db, clear_of_ticks(db, 40))
    waker = started(migrated, transition)
    try:
        cycles = waker.cycles
        (earlier,) = insert(db, clear_of_ticks(db, 2))
        late = lateness(db, [earlier], timeout=10)
        print(
            f"\n[waker latency] transition {transition or 'all'}, woken by NOTIFY: "
            f"p50={statistics.median(late):.3f}s"
        )
        assert 0 <= late[0] <= BOUND, late
        assert waker.completed == 1
        # it slept through the insert: one call at the earlier row's time, none in between
        # (without the announcement it would sleep until the later row, max_wait at most)
        assert waker.cycles - cycles <= 2
        assert waker.failures == 0
    finally:
        waker.stop()


def test_a_waker_of_meetings_is_not_woken_by_another_transition(
    db: Conn, migrated: Server, memberships: None
) -> None:
    waker = started(migrated, "meetings")
    try:
        cycles = waker.cycles
        (key,) = insert(db, clear_of_ticks(db, 2))
        # the row is announced, but not to this waker: after its time it is still active
        # and the waker made no call (it sleeps until a meeting, max_wait at most)
        deadline = db.execute(
            "select expires_at + interval '1 second' from public.memberships where id = %s",
            (key,),
        ).fetchone()[0]  # type: ignore[index]
        assert poll(lambda: db_now(db) >= deadline, timeout=10, interval=0.1)
        assert waker.cycles == cycles
        (status,) = db.execute(
            "select status from public.memberships where id = %s", (key,)
        ).fetchone()  # type: ignore[misc]
        assert status == "active"
    finally:
        waker.stop()


def test_history_reads_the_runs_of_a_key_with_a_backslash(
    db: Conn, migrated: Server, memberships: None
) -> None:
    """A text key with a backslash (and a quote) is written E'...' in its job's command by
    format('%L'); history() gives that run with the key and the job name exactly."""
    db.execute(
        "create table public.invoices (code text primary key, state text not null, "
        "due_at timestamptz not null)"
    )
    db.execute(
        "select scheduler.add_transition('invoices', 'public.invoices', 'code', 'due_at', "
        "'state', array['open'], 'overdue')"
    )
    keys = ["INV\\2031\\'7", "plain-'quoted'", "ends-with\\"]
    due = db_now(db) + timedelta(days=3)
    for key in keys:
        db.execute("insert into public.invoices values (%s, 'open', %s)", (key, due))
    commands = dict(
        db.execute(
            "select jobname, command from cron.job where jobname like 'invoices-status-%'"
        ).fetchall()
    )
    assert set(commands) == {f"invoices-status-{k}" for k in keys}
    assert "E'INV\\\\2031\\\\''7'" in commands[f"invoices-status-{keys[0]}"]
    now = db_now(db)
    for key in keys:
        db.execute(
            "insert into cron.job_run_details (jobid, job_pid, database, username, command, "
            "status, return_message, start_time, end_time) values (0, 4242, current_database(), "
            "current_user, %s, 'succeeded', '1 row', %s, %s)",
            (commands[f"invoices-status-{key}"], now, now),
        )
    backend = PostgresBackend(migrated.url)
    try:
        runs = backend.history(transition="invoices")
    finally:
        backend.close()
    assert sorted((r["key"], r["job_name"]) for r in runs) == sorted(
        (k, f"invoices-status-{k}") for k in keys
    )
    # and each command, run as pg_cron runs it, checks exactly its row
    # (the times moved into the past behind the triggers' back, which would expire the rows)
    db.execute("set session_replication_role = replica")
    try:
        db.execute("update public.invoices set due_at = now() - interval '1 hour'")
    finally:
        db.execute("set session_replication_role = origin")
    try:
        for key in keys:
            db.execute(commands[f"invoices-status-{key}"])
    finally:
        db.execute("reset statement_timeout")
    states = dict(db.execute("select code, state from public.invoices").fetchall())
    assert states == {k: "overdue" for k in keys}
