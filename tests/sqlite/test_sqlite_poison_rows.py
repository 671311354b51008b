"""One row whose completion is rejected never stops the others on SQLite (security issue 22,
finding 3).

Two transitions on one table: ``opening`` (pending -> active at starts_at) and ``closing``
(active -> finished at ends_at). A pending row without ends_at cannot become active: the BEFORE
trigger of ``closing`` refuses an active row without its time. Equally a CHECK constraint of the
application's table, or a trigger of the application's that RAISEs. On every path (the worker's
jobs, the reconcile job, recover, resume, the waker, ``worker --once``) every other row is
completed, the row that fails is recorded in ``scheduler_failing_rows`` with its error and its
attempts, left out of every completion until ``retry_at`` (10 s, doubling, at most an hour),
retried and forgotten once it completes; doctor names it and the metrics count it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run
from sqlite_helpers import FakeClock, future, insert, meeting

from scheduler_admin.backends.sqlite import SqliteBackend
from scheduler_admin.exceptions import NotMigrated
from scheduler_admin.metrics import render
from scheduler_admin.migrate import downgrade, upgrade
from scheduler_admin.sqlite import transitions
from scheduler_admin.sqlite.connection import iso, to_db_time
from scheduler_admin.sqlite.worker import CronWorker

UTC = timezone.utc
FAILING = "no rows failing to complete"
RECONCILE = "reconcile job runs"
BOOKINGS = (
    "CREATE TABLE bookings (id INTEGER PRIMARY KEY, state TEXT NOT NULL, starts_at TEXT, "
    "ends_at TEXT)"
)
TICKETS = (
    "CREATE TABLE tickets (id INTEGER PRIMARY KEY, state TEXT NOT NULL, expires_at TEXT, "
    "note TEXT, CONSTRAINT tickets_note_check CHECK (state <> 'expired' OR note IS NOT NULL))"
)
REQUIRED = "bookings.ends_at (transition closing, a row in state active) is required"


def url(path: Path) -> str:
    return f"sqlite:///{path}"


def add_bookings(backend: SqliteBackend) -> None:
    backend.add_transition(
        "opening",
        table="bookings",
        key_column="id",
        time_column="starts_at",
        state_column="state",
        from_states=["pending"],
        to_state="active",
    )
    backend.add_transition(
        "closing",
        table="bookings",
        key_column="id",
        time_column="ends_at",
        state_column="state",
        from_states=["active"],
        to_state="finished",
    )


def booking(conn: sqlite3.Connection, starts_at: datetime, ends_at: datetime | None) -> int:
    row = conn.execute(
        "INSERT INTO bookings (state, starts_at, ends_at) VALUES ('pending', ?, ?) RETURNING id",
        (starts_at.isoformat(), None if ends_at is None else ends_at.isoformat()),
    ).fetchone()
    return int(row[0])


def state(conn: sqlite3.Connection, key: int, table: str = "bookings") -> str | None:
    row = conn.execute(f"SELECT state FROM {table} WHERE id = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def failing(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [
        dict(row)
        for row in conn.execute("SELECT * FROM scheduler_failing_rows ORDER BY transition, row_key")
    ]


@pytest.fixture
def app(conn: sqlite3.Connection, backend: SqliteBackend) -> sqlite3.Connection:
    conn.execute(BOOKINGS)
    add_bookings(backend)
    return conn


class Due:
    """Four bookings that can open and one (``poison``) that cannot (no ends_at), all starting
    at ``start`` (the real future, so that the triggers register their jobs); the clock is set
    30 s after it, when they are due."""

    def __init__(self, conn: sqlite3.Connection, clock: FakeClock) -> None:
        self.start = future(2)
        ends = future(60)
        first = [booking(conn, self.start, ends) for _ in range(2)]
        self.poison = booking(conn, self.start, None)
        self.good = first + [booking(conn, self.start, ends) for _ in range(2)]
        self.now = self.start + timedelta(seconds=30)
        clock.set(self.now)


@pytest.fixture
def due(app: sqlite3.Connection, clock: FakeClock) -> Due:
    return Due(app, clock)


def assert_isolated(conn: sqlite3.Connection, due: Due, *, at: datetime, attempts: int = 1) -> None:
    """Every good booking opened, the poison is pending and recorded as failing."""
    assert {key: state(conn, key) for key in due.good} == dict.fromkeys(due.good, "active")
    assert state(conn, due.poison) == "pending"
    (entry,) = failing(conn)
    assert (entry["transition"], entry["row_key"]) == ("opening", str(due.poison))
    assert entry["error"].startswith(REQUIRED)
    assert entry["sqlstate"] is None
    assert entry["attempts"] == attempts
    assert entry["last_failed_at"] == to_db_time(at)
    delay = min(10 * 2 ** (attempts - 1), 3600)
    assert entry["retry_at"] == to_db_time(at + timedelta(seconds=delay))


# -- every path -------------------------------------------------------------------------------


def test_the_worker_s_jobs_complete_every_other_row(
    due: Due, app: sqlite3.Connection, worker: CronWorker, backend: SqliteBackend
) -> None:
    result = worker.tick(due.now)
    assert_isolated(app, due, at=due.now)
    runs = {r.job_name: r for r in result.runs}
    # the poison's own job failed, saying why; the reconcile job did not
    poison_run = runs[f"opening-status-{due.poison}"]
    assert poison_run.status == "failed" and REQUIRED in poison_run.return_message
    assert runs["meeting-status-reconcile"].status == "succeeded"
    assert [r.status for name, r in runs.items() if name != poison_run.job_name] == [
        "succeeded"
    ] * (len(runs) - 1)
    # an event per opened booking, none for the poison (its attempt was rolled back)
    assert sorted(int(e["key"]) for e in backend.events(transition="opening")) == due.good
    # the next minute's reconcile leaves it alone until its retry time, then tries again
    worker.tick(due.now + timedelta(seconds=5))
    assert failing(app)[0]["attempts"] == 1
    later = due.now + timedelta(minutes=1)
    worker.tick(later)
    assert_isolated(app, due, at=later, attempts=2)


def test_reconcile_completes_every_other_row_and_backs_off(
    due: Due, app: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    report = backend.reconcile()
    assert report["success"] is True  # type: ignore[typeddict-item]
    assert_isolated(app, due, at=due.now)
    # within its back-off the row is left out: no new attempt
    clock.set(due.now + timedelta(seconds=9))
    backend.reconcile()
    assert_isolated(app, due, at=due.now, attempts=1)
    # then retried: the back-off doubles
    second = due.now + timedelta(seconds=10)
    clock.set(second)
    backend.reconcile()
    assert_isolated(app, due, at=second, attempts=2)
    third = second + timedelta(seconds=20)
    clock.set(third)
    backend.reconcile()
    assert_isolated(app, due, at=third, attempts=3)


def test_the_back_off_is_capped_at_an_hour(
    due: Due, app: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    app.execute(
        "INSERT INTO scheduler_failing_rows (transition, row_key, error, attempts, "
        "first_failed_at, last_failed_at, retry_at) VALUES ('opening', ?, 'old', 12, ?, ?, ?)",
        (str(due.poison), to_db_time(due.now), to_db_time(due.now), to_db_time(due.now)),
    )
    backend.wake()
    (entry,) = failing(app)
    assert entry["attempts"] == 13 and entry["error"].startswith(REQUIRED)
    assert entry["retry_at"] == to_db_time(due.now + timedelta(hours=1))


def test_recover_completes_every_other_row(
    due: Due, app: sqlite3.Connection, backend: SqliteBackend
) -> None:
    report = backend.recover()
    assert report["success"] is True
    assert report["transitions"]["opening"]["overdue_completed"] == 4  # type: ignore[typeddict-item]
    assert_isolated(app, due, at=due.now)


def test_resume_completes_every_other_row(
    due: Due, app: sqlite3.Connection, backend: SqliteBackend
) -> None:
    backend.pause()
    backend.resume()
    assert_isolated(app, due, at=due.now)


def test_the_waker_completes_every_other_row_and_sleeps_until_the_retry(
    due: Due, app: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    meeting_id = insert(app, due.start)
    woken = backend.wake()
    assert woken["completed"] == 5  # the four bookings and the meeting
    assert meeting(app, meeting_id)["status"] == "done"  # type: ignore[index]
    assert_isolated(app, due, at=due.now)
    # the next time is the poison's retry, not its (past) start: no busy loop
    assert woken["next_end_time"] == iso(due.now + timedelta(seconds=10))
    # the same for the one transition
    assert backend.wake(transition="opening")["next_end_time"] == iso(
        due.now + timedelta(seconds=10)
    )


def test_add_transition_completes_every_other_due_row(
    conn: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    conn.execute(BOOKINGS)
    backend.add_transition(
        "closing",
        table="bookings",
        key_column="id",
        time_column="ends_at",
        state_column="state",
        from_states=["active"],
        to_state="finished",
    )
    start = future(2)
    good = booking(conn, start, future(60))
    poison = booking(conn, start, None)
    clock.set(start + timedelta(seconds=1))
    result = backend.add_transition(
        "opening",
        table="bookings",
        key_column="id",
        time_column="starts_at",
        state_column="state",
        from_states=["pending"],
        to_state="active",
    )
    assert result["completed"] == 1
    assert (state(conn, good), state(conn, poison)) == ("active", "pending")
    assert [(e["transition"], e["row_key"]) for e in failing(conn)] == [("opening", str(poison))]


# -- worker --once, a CHECK constraint, a trigger of the application's -------------------------


@contextlib.contextmanager
def behind_triggers(conn: sqlite3.Connection, *names: str) -> Iterator[None]:
    """Write rows the transitions' triggers do not see (due already by the real clock, which
    ``worker --once`` reads); the triggers are back afterwards."""
    specs = [transitions.spec_of(conn, name) for name in names]
    for spec in specs:
        transitions.drop_transition_triggers(conn, spec)
    yield
    for spec in specs:
        transitions.create_transition_triggers(conn, spec)


def test_worker_once_completes_every_other_row(
    app: sqlite3.Connection, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    past = datetime.now(UTC) - timedelta(minutes=5)
    with behind_triggers(app, "opening", "closing"):
        good = [booking(app, past, future(60)) for _ in range(3)]
        poison = booking(app, past, None)
    code, out, err = run(capsys, "--database-url", url(db_path), "worker", "--once")
    assert code == 0, err
    assert "meeting-status-reconcile: succeeded" in out
    assert [state(app, key) for key in good] == ["active"] * 3
    assert state(app, poison) == "pending"
    (entry,) = failing(app)
    assert (entry["transition"], entry["row_key"], entry["attempts"]) == ("opening", str(poison), 1)
    assert entry["error"].startswith(REQUIRED)
    code, out, _ = run(capsys, "--database-url", url(db_path), "doctor")
    assert code == 1
    assert FAILING in out and f"opening {poison}: {REQUIRED}" in out


def test_a_check_constraint_rejecting_one_row(
    conn: sqlite3.Connection, backend: SqliteBackend, worker: CronWorker, clock: FakeClock
) -> None:
    conn.execute(TICKETS)
    backend.add_transition(
        "expiry",
        table="tickets",
        key_column="id",
        time_column="expires_at",
        state_column="state",
        from_states=["open"],
        to_state="expired",
    )
    start = future(2)
    rows = [
        int(
            conn.execute(
                "INSERT INTO tickets (state, expires_at, note) VALUES ('open', ?, ?) RETURNING id",
                (start.isoformat(), note),
            ).fetchone()[0]
        )
        for note in ("a", "b", None, "c", "d")
    ]
    poison = rows[2]
    now = start + timedelta(seconds=30)
    clock.set(now)
    result = worker.tick(now)
    assert [state(conn, key, "tickets") for key in rows] == [
        "expired",
        "expired",
        "open",
        "expired",
        "expired",
    ]
    (entry,) = failing(conn)
    assert (entry["transition"], entry["row_key"]) == ("expiry", str(poison))
    assert "CHECK constraint failed" in entry["error"]
    assert {r.job_name: r.status for r in result.runs}["meeting-status-reconcile"] == "succeeded"
    # fixed by the application: retried after its back-off, then forgotten
    conn.execute("UPDATE tickets SET note = 'fixed' WHERE id = ?", (poison,))
    clock.set(now + timedelta(seconds=10))
    assert backend.wake()["completed"] == 1
    assert state(conn, poison, "tickets") == "expired"
    assert failing(conn) == []


def test_a_trigger_of_the_application_rejecting_one_meeting(
    conn: sqlite3.Connection, backend: SqliteBackend, worker: CronWorker, clock: FakeClock
) -> None:
    end = future(2)
    ids = [insert(conn, end, title=title) for title in ("a", "b", "locked", "c")]
    locked = ids[2]
    conn.execute(
        "CREATE TRIGGER app_lock BEFORE UPDATE OF status ON meetings "
        "WHEN OLD.title = 'locked' AND NEW.status = 'done' "
        "BEGIN SELECT RAISE(ABORT, 'locked by the application'); END"
    )
    now = end + timedelta(seconds=30)
    clock.set(now)
    result = worker.tick(now)
    assert {key: meeting(conn, key)["status"] for key in ids} == {  # type: ignore[index]
        key: "upcoming" if key == locked else "done" for key in ids
    }
    runs = {r.job_name: r for r in result.runs}
    assert runs[f"meeting-status-{locked}"].status == "failed"
    assert "locked by the application" in runs[f"meeting-status-{locked}"].return_message
    assert runs["meeting-status-reconcile"].status == "succeeded"
    (entry,) = failing(conn)
    assert (entry["transition"], entry["row_key"], entry["error"]) == (
        "meetings",
        locked,
        "locked by the application",
    )
    health = backend.health()
    assert health["failing_rows"] == 1
    assert health["failing_rows_detail"] == [
        {
            "transition": "meetings",
            "key": locked,
            "error": "locked by the application",
            "attempts": 1,
            "retry_at": iso(now + timedelta(seconds=10)),
            "last_failed_at": iso(now),
        }
    ]
    # recover leaves it out during its back-off, and reports no error for it
    report = backend.recover()
    assert report["success"] is True and report["overdue_completed"] == 0
    assert failing(conn)[0]["attempts"] == 1
    conn.execute("DROP TRIGGER app_lock")
    later = now + timedelta(minutes=1)
    worker.tick(later)
    assert meeting(conn, locked)["status"] == "done"  # type: ignore[index]
    assert failing(conn) == []
    assert backend.health()["failing_rows"] == 0


# -- retried, cleared, shown ------------------------------------------------------------------


def test_a_fixed_row_is_retried_then_forgotten_and_doctor_says_so(
    due: Due, app: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    backend.wake()
    check = {c["name"]: c for c in backend.doctor()}[FAILING]
    assert check["ok"] is False
    assert f"opening {due.poison}: {REQUIRED}" in check["detail"]
    assert "(1 attempt, next try " in check["detail"]
    assert "fix the row" in (check["fix"] or "")
    metrics = backend.metrics()
    assert metrics["failing_rows"] == 1
    assert backend.metrics(transition="opening")["failing_rows"] == 1
    assert backend.metrics(transition="closing")["failing_rows"] == 0
    assert backend.metrics(transition="meetings")["failing_rows"] == 0
    scraped = render(backend).decode()  # each transition's rows under its label
    assert 'scheduler_failing_rows{transition="opening"} 1.0' in scraped
    assert 'scheduler_failing_rows{transition="closing"} 0.0' in scraped
    assert 'scheduler_failing_rows{transition="meetings"} 0.0' in scraped

    # the application fixes the row; it is not retried before its time
    app.execute(
        "UPDATE bookings SET ends_at = ? WHERE id = ?", (future(60).isoformat(), due.poison)
    )
    clock.set(due.now + timedelta(seconds=9))
    assert backend.wake()["completed"] == 0
    assert state(app, due.poison) == "pending"
    clock.set(due.now + timedelta(seconds=10))
    assert backend.wake()["completed"] == 1
    assert state(app, due.poison) == "active"
    assert failing(app) == []
    assert {c["name"]: c for c in backend.doctor()}[FAILING]["ok"] is True
    assert backend.metrics()["failing_rows"] == 0
    assert 'scheduler_failing_rows{transition="opening"} 0.0' in render(backend).decode()
    opened = [e for e in backend.events(transition="opening") if e["key"] == str(due.poison)]
    assert [e["path"] for e in opened] == ["waker"]


def test_reconcile_forgets_rows_gone_or_no_longer_pending(
    due: Due, app: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    backend.wake()
    other = booking(app, due.start, None)
    clock.set(due.now + timedelta(seconds=1))
    backend.wake()
    assert [e["row_key"] for e in failing(app)] == [str(due.poison), str(other)]
    # set by hand, and deleted: both still pending back-off entries until reconcile
    app.execute("UPDATE bookings SET state = 'cancelled' WHERE id = ?", (due.poison,))
    app.execute("DELETE FROM bookings WHERE id = ?", (other,))
    # an entry of a transition no longer registered
    app.execute(
        "INSERT INTO scheduler_failing_rows (transition, row_key, error, attempts, "
        "first_failed_at, last_failed_at, retry_at) VALUES ('gone', '1', 'x', 1, ?, ?, ?)",
        (to_db_time(due.now),) * 3,
    )
    backend.reconcile()
    assert failing(app) == []


def test_reconcile_runs_failed_in_a_row_show_in_health_doctor_and_metrics(
    conn: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    def add_run(status: str, minutes: int) -> None:
        start = to_db_time(clock() - timedelta(minutes=minutes))
        conn.execute(
            "INSERT INTO cron_job_run_details (jobid, command, status, return_message, "
            "start_time, end_time) VALUES (1, 'reconcile()', ?, 'x', ?, ?)",
            (status, start, start),
        )

    health = backend.health()
    assert (health["reconcile_failed_in_a_row"], health["reconcile_skipped_in_a_row"]) == (0, 0)
    add_run("succeeded", 5)
    add_run("failed", 4)
    add_run("failed", 3)
    assert backend.health()["reconcile_failed_in_a_row"] == 2
    assert {c["name"]: c for c in backend.doctor()}[RECONCILE]["ok"] is True
    add_run("failed", 2)
    add_run("running", 0)  # the run under way does not count
    assert backend.health()["reconcile_failed_in_a_row"] == 3
    check = {c["name"]: c for c in backend.doctor()}[RECONCILE]
    assert check["ok"] is False and "the last 3 runs failed" in check["detail"]
    metrics = backend.metrics()
    assert (metrics["reconcile_failed_in_a_row"], metrics["reconcile_skipped_in_a_row"]) == (3, 0)
    assert "scheduler_reconcile_failed_in_a_row 3.0" in render(backend).decode()
    add_run("succeeded", 1)
    assert backend.health()["reconcile_failed_in_a_row"] == 0


# -- one transition's error never stops another's ---------------------------------------------


def test_a_broken_transition_does_not_stop_the_waker_for_the_others(
    app: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    app.execute(
        "CREATE TABLE passes (code TEXT PRIMARY KEY, phase TEXT NOT NULL, valid_until TEXT)"
    )
    backend.add_transition(
        "passes",
        table="passes",
        key_column="code",
        time_column="valid_until",
        state_column="phase",
        from_states=["valid"],
        to_state="lapsed",
    )
    start = future(2)
    good = [booking(app, start, future(60)) for _ in range(2)]
    meeting_id = insert(app, start)
    # the application renames the state column behind the registry's back: completing the
    # passes fails as a whole (no row is to blame), the others still complete
    app.execute("ALTER TABLE passes RENAME COLUMN phase TO status")
    clock.set(start + timedelta(seconds=30))
    woken = backend.wake()
    assert woken["completed"] == 3
    assert meeting(app, meeting_id)["status"] == "done"  # type: ignore[index]
    assert [state(app, key) for key in good] == ["active", "active"]
    assert failing(app) == []  # not a row's fault: nothing recorded against a row


# -- the schema -------------------------------------------------------------------------------


def objects(path: Path) -> dict[tuple[str, str], str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT type, name, coalesce(sql, '') FROM sqlite_master "
            "WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE 'alembic_%'"
        ).fetchall()
    return {(t, n): s for t, n, s in rows}


def test_revision_0009_adds_the_table_and_its_downgrade_removes_it(tmp_path: Path) -> None:
    at_0008, path = tmp_path / "at_0008.db", tmp_path / "store.db"
    upgrade("0008", url=url(at_0008))
    upgrade("0008", url=url(path))
    assert ("table", "scheduler_failing_rows") not in objects(path)
    old = SqliteBackend(url(path))
    try:
        with pytest.raises(NotMigrated, match="scheduler_failing_rows"):
            old.health()
    finally:
        old.close()
    upgrade("0009", url=url(path))
    assert ("table", "scheduler_failing_rows") in objects(path)
    with sqlite3.connect(path) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(scheduler_failing_rows)")]
        keys = [
            row[1] for row in conn.execute("PRAGMA table_info(scheduler_failing_rows)") if row[5]
        ]
    assert columns == [
        "transition",
        "row_key",
        "error",
        "sqlstate",
        "attempts",
        "first_failed_at",
        "last_failed_at",
        "retry_at",
    ]
    assert keys == ["transition", "row_key"]
    downgrade("0008", url=url(path))
    assert objects(path) == objects(at_0008)
