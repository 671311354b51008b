"""The application's waker on a real server: a meeting is done within half a second of its end
while the waker runs (LISTEN scheduler_meetings wakes it for an earlier meeting), of two wakers
one is elected and completes everything exactly once while the other stands by (revision 0012;
tests/postgres/test_waker_election.py has the rest), and a restart of the server is survived.

The shared reset turns the seconds sweep off, so the waker is what completes meetings within
seconds here; pg_cron's per-meeting jobs fire at the first minute after an end, and the end
times are chosen away from minute boundaries so that they do not race the waker.

Every time here is the server's: end times are set by the inserting statement from its own
clock (a test process starved of the CPU between reading a clock and inserting cannot shorten
the lead), and lateness is the completion event's ``completed_at`` (the completing transaction,
recorded by the server) minus ``end_time``, for completions whose path is the waker's.
"""

from __future__ import annotations

import statistics
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import psycopg
import pytest
from pg_helpers import Conn, Server, clear_of_ticks, connect, db_now, poll, reset
from skip_helpers import require_or_skip

from scheduler_admin.waker import CHANNEL, ListeningSource, Waker

BOUND = 0.5  # seconds after its end_time by which a meeting must be done


def insert(conn: Conn, *ends: datetime) -> list[object]:
    rows = conn.execute(
        "insert into meetings (title, end_time) select 'w', e from unnest(%s::timestamptz[]) e "
        "returning id",
        (list(ends),),
    ).fetchall()
    return [row[0] for row in rows]


def insert_ahead(conn: Conn, lead: float, *offsets: float) -> list[object]:
    """Meetings ending ``lead`` + each offset seconds after the inserting statement's own
    clock_timestamp(), the first end moved later while it falls within 3 s of a minute
    boundary (where pg_cron's minute tick could complete it first)."""
    rows = conn.execute(
        "with ahead as (select clock_timestamp() + make_interval(secs => %s) as t), "
        "first as (select t + make_interval(secs => case "
        "    when extract(second from t) >= 57 then 63 - extract(second from t)::float8 "
        "    when extract(second from t) < 3 then 3 - extract(second from t)::float8 "
        "    else 0 end) as t from ahead) "
        "insert into meetings (title, end_time) "
        "select 'w', first.t + make_interval(secs => o) "
        "from first, unnest(%s::float8[]) with ordinality u(o, i) order by i returning id",
        (lead, [float(o) for o in offsets or (0.0,)]),
    ).fetchall()
    return [row[0] for row in rows]


def lateness(conn: Conn, ids: list[object], timeout: float) -> list[float]:
    """Seconds between each meeting's end_time and its completion by the waker, by the
    server's clock (its completion event's completed_at), once all are done."""
    assert poll(
        lambda: conn.execute(
            "select bool_and(status = 'done') from meetings where id = any(%s)", (ids,)
        ).fetchone()[0],  # type: ignore[index]
        timeout=timeout,
        interval=0.05,
    ), "the meetings were not completed in time"
    rows = conn.execute(
        "select path, extract(epoch from completed_at - end_time)::float8 "
        "from scheduler.completion_events where meeting_id = any(%s)",
        (ids,),
    ).fetchall()
    assert len(rows) == len(ids), rows  # one completion each
    assert {path for path, _ in rows} == {"waker"}, rows  # each by a waker
    return [float(late) for _, late in rows]


def report(name: str, late: list[float]) -> None:
    print(
        f"\n[waker latency] {name}: n={len(late)} p50={statistics.median(late):.3f}s "
        f"max={max(late):.3f}s min={min(late):.3f}s"
    )


def started(server: Server, **options: float) -> Waker:
    """A waker in its thread, once it has answered: called wake() (the active one) or learnt that
    another waker holds the lease (a standby)."""
    waker = Waker(ListeningSource(server.url), **options)
    waker.start_thread()
    assert poll(lambda: waker.cycles >= 1 or waker.role == "standby", timeout=10, interval=0.05), (
        "the waker never answered"
    )
    return waker


@pytest.fixture
def waker(migrated: Server, db: Conn) -> Iterator[Waker]:
    instance = started(migrated)
    yield instance
    instance.stop()


def test_meetings_are_done_within_half_a_second_of_their_end(db: Conn, waker: Waker) -> None:
    ids = insert_ahead(db, 1.5, 0, 0.4, 1.1)
    late = lateness(db, ids, timeout=10)
    report("direct PostgreSQL", late)
    assert all(0 <= s <= BOUND for s in late), late  # never early, never later than the bound
    assert waker.completed == 3
    assert waker.failures == 0


def test_an_earlier_meeting_wakes_a_sleeping_waker(db: Conn, waker: Waker) -> None:
    """The waker sleeps until a meeting 40 s ahead; an earlier one announced by NOTIFY wakes it."""
    insert_ahead(db, 40)
    cycles = waker.cycles
    (later_id,) = insert_ahead(db, 2)
    late = lateness(db, [later_id], timeout=10)
    report("direct PostgreSQL, woken by NOTIFY", late)
    assert 0 <= late[0] <= BOUND
    assert waker.completed == 1
    # it slept through both inserts: one call for the earlier meeting's end, none in between
    assert waker.cycles - cycles <= 2


def test_the_triggers_announce_the_earliest_end_time_at_commit(db: Conn, migrated: Server) -> None:
    with connect(migrated.dsn) as listener:
        listener.execute(f"listen {CHANNEL}")
        ends = [clear_of_ticks(db, 30), clear_of_ticks(db, 20)]
        with db.transaction():
            insert(db, *ends)
            assert list(listener.notifies(timeout=0.3)) == []  # nothing before commit
        payloads = [n.payload for n in listener.notifies(timeout=2, stop_after=1)]
        assert [datetime.fromisoformat(p) for p in payloads] == [min(ends)]
        # a meeting inserted as done is not announced; moving an end time is
        insert_done = "insert into meetings (title, end_time, status) values ('d', %s, 'done')"
        db.execute(insert_done, (ends[0],))
        assert list(listener.notifies(timeout=0.3)) == []
        moved = clear_of_ticks(db, 10)
        db.execute("update meetings set end_time = %s where end_time = %s", (moved, ends[0]))
        payloads = [n.payload for n in listener.notifies(timeout=2, stop_after=1)]
        assert [datetime.fromisoformat(p) for p in payloads] == [moved]


def test_two_wakers_complete_every_meeting_once(db: Conn, migrated: Server) -> None:
    """One of the two holds the lease and completes every meeting; the other never calls
    wake() (no random delay keeps them apart any more: only one wakes)."""
    wakers = [started(migrated), started(migrated)]
    try:
        ids = insert_ahead(db, 1.5, *(0.05 * i for i in range(40)))
        late = lateness(db, ids, timeout=10)
        report("two wakers", late)
        assert all(0 <= s <= BOUND for s in late), late
        assert sum(w.completed for w in wakers) == len(ids)
        assert sorted(w.completed for w in wakers) == [0, len(ids)]
        assert [w.cycles > 0 for w in wakers].count(True) == 1
        assert [w.failures for w in wakers] == [0, 0]
    finally:
        for w in wakers:
            w.stop()


def test_the_waker_survives_a_restart_of_the_server(migrated: Server) -> None:
    cluster = migrated.cluster
    if cluster is None:
        require_or_skip("needs the throwaway cluster (restarts it): SCHEDULER_TEST_DSN is set")
    with connect(migrated.dsn) as conn:
        reset(conn)
    waker = started(migrated, backoff_start=0.2, backoff_cap=1.0)
    try:
        cluster.stop()
        try:
            assert poll(lambda: waker.failures >= 2, timeout=15, interval=0.05), (
                "the waker did not notice the server going away"
            )
        finally:
            cluster.start()
        with connect(migrated.dsn) as conn:
            (meeting_id,) = insert_ahead(conn, 2)
            late = lateness(conn, [meeting_id], timeout=10)
            report("after a restart", late)
            # the first try after the restart comes within the backoff cap (1 s)
            assert 0 <= late[0] <= BOUND + 1.0
            assert waker.failures == 0
            assert waker.completed == 1
            reset(conn)
    finally:
        waker.stop()


def test_stop_is_prompt_and_closes_the_session(migrated: Server, db: Conn) -> None:
    waker = started(migrated)
    stopped = threading.Event()

    def stop() -> None:
        waker.stop()
        stopped.set()

    threading.Thread(target=stop).start()
    assert stopped.wait(3), "stop() took longer than 3 s"
    assert poll(
        lambda: (
            not db.execute(
                "select count(*) from pg_stat_activity where query ilike %s",
                (f"listen {CHANNEL}%",),
            ).fetchone()[0]
        ),  # type: ignore[index]
        timeout=5,
        interval=0.05,
    )


def test_run_once_never_completes_early(db: Conn, migrated: Server) -> None:
    (meeting_id,) = insert(db, db_now(db) + timedelta(seconds=30))
    waker = Waker(ListeningSource(migrated.url))
    try:
        result = waker.run_once()
    finally:
        waker.source.close()
    assert result["completed"] == 0
    assert result["paused"] is False
    assert result["next_end_time"] is not None
    assert (
        29
        < (
            datetime.fromisoformat(result["next_end_time"]) - datetime.fromisoformat(result["now"])
        ).total_seconds()
        <= 30
    )
    (status,) = db.execute("select status from meetings where id = %s", (meeting_id,)).fetchone()  # type: ignore[misc]
    assert status == "upcoming"


def test_wake_when_paused_reports_nothing_to_wait_for(db: Conn, migrated: Server) -> None:
    insert(db, db_now(db) + timedelta(seconds=30))
    db.execute("update scheduler.settings set enabled = false")
    with psycopg.connect(migrated.dsn, autocommit=True) as conn:
        (result,) = conn.execute("select scheduler.wake()").fetchone()  # type: ignore[misc]
    assert result["paused"] is True
    assert result["completed"] == 0
    assert result["next_end_time"] is None
