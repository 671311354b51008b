"""One active waker among several (revision 0012): of three wakers on one database exactly one,
the holder of the lease in ``scheduler.waker_lease``, calls ``wake()``, and every meeting is
completed once, never early; when the holder's process dies (killed, no release), a standby
takes the lease over within 2 s and completes a meeting that ends after the kill; a clean stop
hands the lease over at once; no role but the owner may read or write the lease, nor call the
functions unless granted.

Times are the server's: lateness is the completion event's ``completed_at`` minus
``end_time``; the takeover is the new lease's ``acquired_at`` minus the server's clock read just
after the killed process was reaped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from pg_helpers import Conn, Server, connect, db_now, poll

from scheduler_admin.backends.sqlite import SqliteBackend
from scheduler_admin.migrate import upgrade
from scheduler_admin.waker import LEASE, RENEW, SQLITE_POLL, ListeningSource, PollingSource, Waker

BOUND = 0.5  # seconds after its end_time by which the active waker completes a meeting
TAKEOVER = 2.0  # seconds after the holder died by which a standby holds the lease
ROLE = "scheduler_test_lease_intruder"


def insert_ahead(conn: Conn, lead: float, *offsets: float) -> list[object]:
    """Meetings ending ``lead`` + each offset seconds after the statement's clock_timestamp(),
    moved clear of a minute boundary (where pg_cron's minute tick could complete one first)."""
    rows = conn.execute(
        "with ahead as (select clock_timestamp() + make_interval(secs => %s) as t), "
        "first as (select t + make_interval(secs => case "
        "    when extract(second from t) >= 55 then 65 - extract(second from t)::float8 "
        "    when extract(second from t) < 3 then 3 - extract(second from t)::float8 "
        "    else 0 end) as t from ahead) "
        "insert into meetings (title, end_time) "
        "select 'e', first.t + make_interval(secs => o) "
        "from first, unnest(%s::float8[]) with ordinality u(o, i) order by i returning id",
        (lead, [float(o) for o in offsets or (0.0,)]),
    ).fetchall()
    return [row[0] for row in rows]


def lateness(conn: Conn, ids: list[object], timeout: float) -> list[float]:
    """Each meeting's lateness once all are done; one completion event each, by a waker."""
    assert poll(
        lambda: conn.execute(
            "select bool_and(status = 'done') from meetings where id = any(%s)", (ids,)
        ).fetchone()[0],  # type: ignore[index]
        timeout=timeout,
        interval=0.05,
    ), "the meetings were not completed in time"
    rows = conn.execute(
        "select meeting_id, path, extract(epoch from completed_at - end_time)::float8 "
        "from scheduler.completion_events where meeting_id = any(%s)",
        (ids,),
    ).fetchall()
    assert sorted(str(r[0]) for r in rows) == sorted(str(i) for i in ids), rows  # once each
    assert {r[1] for r in rows} == {"waker"}, rows
    return [float(r[2]) for r in rows]


def lease(conn: Conn) -> tuple[str, datetime, datetime] | None:
    """(holder, acquired_at, expires_at) of the wakers of every transition, read as the owner."""
    row = conn.execute(
        "select holder, acquired_at, expires_at from scheduler.waker_lease where scope = '*'"
    ).fetchone()
    return None if row is None else (str(row[0]), row[1], row[2])  # type: ignore[return-value]


def settled(wakers: list[Waker]) -> bool:
    """Every waker has claimed once, and exactly one is active."""
    return all(w.role is not None for w in wakers) and sum(w.active for w in wakers) == 1


@pytest.fixture
def wakers(migrated: Server, db: Conn) -> Iterator[list[Waker]]:
    started: list[Waker] = []

    def start(count: int) -> list[Waker]:
        for _ in range(count):
            waker = Waker(ListeningSource(migrated.url))
            waker.start_thread()
            started.append(waker)
        return started

    db.execute("delete from scheduler.waker_lease")
    yield start  # type: ignore[misc]
    for waker in started:
        waker.stop()
    db.execute("delete from scheduler.waker_lease")


def test_three_wakers_elect_one_which_completes_every_meeting_once(
    db: Conn, wakers: object
) -> None:
    """Exactly one of three wakers calls wake(); every meeting is done once, never early, within
    half a second; the lease names that waker."""
    three: list[Waker] = wakers(3)  # type: ignore[operator]
    assert poll(lambda: settled(three), timeout=10, interval=0.05), [w.role for w in three]
    (active,) = [w for w in three if w.active]
    ids = insert_ahead(db, 1.5, *(0.05 * i for i in range(30)))
    late = lateness(db, ids, timeout=10)
    assert all(0 <= s <= BOUND for s in late), late
    assert [w.cycles > 0 for w in three].count(True) == 1  # the standbys never called wake()
    assert active.cycles > 0 and active.completed == len(ids)
    assert [w.failures for w in three] == [0, 0, 0]
    found = lease(db)
    assert found is not None and found[0] == active.holder
    print(f"\n[waker election] three wakers: n={len(late)} max={max(late):.3f}s")


def test_a_clean_stop_hands_the_lease_over_at_once(db: Conn, wakers: object) -> None:
    """stop() releases the lease: a standby holds it at its next try (within ``RENEW``), not
    when the lease would have expired."""
    two: list[Waker] = wakers(2)  # type: ignore[operator]
    assert poll(lambda: settled(two), timeout=10, interval=0.05)
    (active,) = [w for w in two if w.active]
    (standby,) = [w for w in two if not w.active]
    active.stop()
    assert lease(db) is None or lease(db)[0] == standby.holder  # type: ignore[index]
    assert poll(lambda: standby.active, timeout=RENEW + 0.5, interval=0.02)
    (meeting_id,) = insert_ahead(db, 1.0)
    assert all(0 <= s <= BOUND for s in lateness(db, [meeting_id], timeout=10))


CHILD = textwrap.dedent(
    """
    import sys
    from scheduler_admin.waker import ListeningSource, Waker
    Waker(ListeningSource(sys.argv[1])).run_forever()
    """
)


def test_a_dead_active_waker_is_replaced_within_two_seconds(
    db: Conn, migrated: Server, wakers: object
) -> None:
    """The active waker's process is killed (SIGKILL: no release, its connection dropped); a
    standby holds the lease within 2 s of the kill and completes a meeting that ends after it,
    once and not early."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, migrated.url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        holds = lambda: (lease(db) or ("",))[0].split(":")[1:2] == [str(child.pid)]  # noqa: E731
        assert poll(holds, timeout=20, interval=0.05), "the process never took the lease"
        two: list[Waker] = wakers(2)  # type: ignore[operator]
        assert poll(lambda: all(w.role == "standby" for w in two), timeout=10, interval=0.05), [
            w.role for w in two
        ]
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        killed_at = db_now(db)
        (meeting_id,) = insert_ahead(db, 0.3)
        assert poll(lambda: any(w.active for w in two), timeout=5, interval=0.02)
        found = lease(db)
        assert found is not None
        (successor,) = [w for w in two if w.active]
        assert found[0] == successor.holder
        takeover = (found[1] - killed_at).total_seconds()
        assert takeover <= TAKEOVER, takeover
        late = lateness(db, [meeting_id], timeout=10)
        assert all(0 <= s <= TAKEOVER + BOUND for s in late), late
        assert successor.completed == 1
        print(f"\n[waker election] takeover {takeover:.3f}s after the kill, lease {LEASE:g}s")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)


@pytest.fixture
def intruder(db: Conn, migrated: Server) -> Iterator[Conn]:
    """A fresh login role that may use schema scheduler (so that what stops it is the table's
    and the functions' privileges, not the schema's)."""
    db.execute(f"drop role if exists {ROLE}")
    db.execute(f"create role {ROLE} login")
    db.execute(f"grant usage on schema scheduler to {ROLE}")
    dsn = migrated.dsn.replace("user=postgres", f"user={ROLE}")
    try:
        with connect(dsn) as conn:
            yield conn
    finally:
        db.execute("delete from scheduler.waker_lease")
        db.execute(f"revoke usage on schema scheduler from {ROLE}")
        db.execute(f"drop owned by {ROLE}")
        db.execute(f"drop role {ROLE}")


@pytest.mark.parametrize(
    "statement",
    [
        "select * from scheduler.waker_lease",
        "update scheduler.waker_lease set holder = 'intruder', expires_at = 'infinity'",
        "insert into scheduler.waker_lease values ('*', 'intruder', 'infinity', now())",
        "delete from scheduler.waker_lease",
        "truncate scheduler.waker_lease",
        "select scheduler.claim_waker('intruder', 60)",
        "select scheduler.release_waker('intruder')",
    ],
)
def test_no_other_role_may_touch_the_lease(db: Conn, intruder: Conn, statement: str) -> None:
    """Neither the table nor the functions are reachable by a role that was not granted them."""
    db.execute("insert into scheduler.waker_lease values ('*', 'owner', now() + '1 h', now())")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        intruder.execute(statement)
    assert lease(db) is not None and lease(db)[0] == "owner"  # type: ignore[index]


def test_a_granted_role_may_claim_but_not_write_the_table(db: Conn, intruder: Conn) -> None:
    """Execute granted (as service_role has it on Supabase): the functions answer, and the
    table stays out of reach; the lease is the owner's row-level-secured table, no grant on it."""
    db.execute(f"grant execute on function scheduler.claim_waker(text, float8, text) to {ROLE}")
    db.execute(f"grant execute on function scheduler.release_waker(text, text) to {ROLE}")
    (first,) = intruder.execute("select scheduler.claim_waker('a', 1.2)").fetchone()  # type: ignore[misc]
    (second,) = intruder.execute("select scheduler.claim_waker('b', 1.2)").fetchone()  # type: ignore[misc]
    assert first["held"] is True and first["holder"] == "a"
    assert second["held"] is False and second["holder"] == "a"
    assert datetime.fromisoformat(second["expires_at"]) > datetime.fromisoformat(second["now"])
    (released,) = intruder.execute("select scheduler.release_waker('b')").fetchone()  # type: ignore[misc]
    assert released is False  # only the holder's own lease
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        intruder.execute("update scheduler.waker_lease set holder = 'b'")
    (rls, owner_only) = db.execute(
        "select c.relrowsecurity, not exists (select 1 from aclexplode(c.relacl) a "
        "                                     where a.grantee <> c.relowner) "
        "from pg_class c where c.oid = 'scheduler.waker_lease'::regclass"
    ).fetchone()  # type: ignore[misc]
    assert rls is True and owner_only is True
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        intruder.execute("select scheduler.claim_waker('a', 3600)")


def test_wakers_sharing_a_sqlite_file_elect_one_too(tmp_path: Path) -> None:
    """Several processes may share a SQLite file: its wakers elect one on the twin of the lease
    (scheduler_waker_lease), and a clean stop hands it over."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    upgrade(url=url)
    two = [Waker(PollingSource(SqliteBackend(url), SQLITE_POLL, url)) for _ in range(2)]
    for waker in two:
        waker.start_thread()
    try:
        assert poll(lambda: settled(two), timeout=10, interval=0.05), [w.role for w in two]
        (active,) = [w for w in two if w.active]
        (standby,) = [w for w in two if not w.active]
        assert active.cycles > 0 and standby.cycles == 0
        active.stop()
        assert poll(lambda: standby.active, timeout=RENEW + 1.0, interval=0.02)
    finally:
        for waker in two:
            waker.stop()
