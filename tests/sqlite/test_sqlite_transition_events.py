"""Completion events and metrics per transition on SQLite (issue 14, slice 3, revision 0007): a
registered table memberships (active -> expired) records one event per completed row on every
path, with its transition and key, next to the meetings' events; events() and metrics() filter
by transition; the retention keeps the totals per transition; webhooks claim both."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlite_helpers import FakeClock, future, insert

from scheduler_admin.backends.sqlite import SqliteBackend
from scheduler_admin.core import Event
from scheduler_admin.exceptions import InvalidInput, NotMigrated
from scheduler_admin.migrate import downgrade, upgrade
from scheduler_admin.schema import read_revision_sql
from scheduler_admin.sqlite.transitions import Spec, render_frozen_triggers
from scheduler_admin.sqlite.worker import CronWorker

PREFIX = "memberships-status-"
PAST = "2020-01-01T00:00:00Z"
UNKNOWN_HINT = "scheduler-admin transitions list shows the registered ones."


@pytest.fixture
def app(conn: sqlite3.Connection, backend: SqliteBackend) -> sqlite3.Connection:
    """The application's connection, with memberships registered as a transition."""
    conn.execute("CREATE TABLE memberships (id INTEGER PRIMARY KEY, status TEXT, expires_at TEXT)")
    backend.add_transition(
        "memberships",
        table="memberships",
        key_column="id",
        time_column="expires_at",
        state_column="status",
        from_states=["active"],
        to_state="expired",
    )
    return conn


def member(conn: sqlite3.Connection, expires_at: str | datetime) -> int:
    when = expires_at.isoformat() if isinstance(expires_at, datetime) else expires_at
    row = conn.execute(
        "INSERT INTO memberships (status, expires_at) VALUES ('active', ?) RETURNING id", (when,)
    ).fetchone()
    return int(row[0])


def status(conn: sqlite3.Connection, member_id: int) -> str:
    row = conn.execute("SELECT status FROM memberships WHERE id = ?", (member_id,)).fetchone()
    return str(row[0])


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def soon(clock: FakeClock, seconds: float) -> datetime:
    """A time in the real future (the triggers read SQLite's clock) at whole milliseconds."""
    end = clock() + timedelta(seconds=seconds)
    end = end.replace(microsecond=end.microsecond // 1000 * 1000)
    # never on a minute: the job of a time on the minute fires in that minute, and the tests
    # tick the minute after the time's (the clock starts at a whole second, so 1 run in 60 hit it)
    return end + timedelta(milliseconds=1) if end.second == 0 and end.microsecond == 0 else end


def only(backend: SqliteBackend, transition: str = "memberships") -> Event:
    found = backend.events(transition=transition)
    assert len(found) == 1, found
    return found[0]


# -- one event per completion, on every path ------------------------------------------------


def test_a_job_run_by_the_worker_records_a_job_event_next_to_the_meeting_s(
    app: sqlite3.Connection, backend: SqliteBackend, worker: CronWorker, clock: FakeClock
) -> None:
    end = soon(clock, 20.25)
    meeting_id = insert(app, end)
    row = member(app, end)
    ran_at = end.replace(second=0, microsecond=0) + timedelta(minutes=1, seconds=2)
    worker.tick(ran_at)
    assert status(app, row) == "expired"
    event = only(backend)
    assert (event["transition"], event["key"], event["meeting_id"]) == (
        "memberships",
        str(row),
        None,
    )
    assert (event["path"], event["delivery"], event["attempts"]) == ("job", None, 0)
    assert when(event["end_time"]) == end
    assert when(event["completed_at"]) == ran_at
    assert event["lateness_seconds"] == pytest.approx((ran_at - end).total_seconds(), abs=1e-9)
    # the meeting's event is as before, with its transition and key
    meeting_event = only(backend, "meetings")
    assert (meeting_event["transition"], meeting_event["key"], meeting_event["meeting_id"]) == (
        "meetings",
        meeting_id,
        meeting_id,
    )
    assert meeting_event["path"] == "job"
    assert [e["transition"] for e in backend.events()] == ["memberships", "meetings"]


CALLS: dict[str, Callable[[SqliteBackend], object]] = {
    "waker": lambda b: b.wake(),
    "waker by name": lambda b: b.wake(transition="memberships"),
    "reconcile": lambda b: b.reconcile(),
    "reconcile by name": lambda b: b.reconcile(transition="memberships"),
    "recover": lambda b: b.recover(),
    "recover by name": lambda b: b.recover(transition="memberships"),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_the_backend_s_completions_record_their_path(
    app: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock, call: str
) -> None:
    end = soon(clock, 30)
    row = member(app, end)
    clock.set(end + timedelta(seconds=1.5))
    CALLS[call](backend)
    assert status(app, row) == "expired"
    event = only(backend)
    assert event["path"] == call.split()[0]
    assert event["key"] == str(row)
    assert when(event["completed_at"]) == clock()
    assert event["lateness_seconds"] == pytest.approx(1.5, abs=1e-9)


def test_resume_by_name_records_recover_events(
    app: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    end = soon(clock, 30)
    backend.pause(transition="memberships")
    row = member(app, end)
    clock.set(end + timedelta(seconds=2))
    assert backend.wake(transition="memberships")["paused"]
    assert backend.events(transition="memberships") == []
    backend.resume(transition="memberships")
    assert status(app, row) == "expired"
    assert only(backend)["path"] == "recover"


def test_registration_records_recover_events_for_rows_already_due(
    conn: sqlite3.Connection, backend: SqliteBackend
) -> None:
    conn.execute("CREATE TABLE memberships (id INTEGER PRIMARY KEY, status TEXT, expires_at TEXT)")
    row = member(conn, PAST)  # no triggers yet: stays active
    backend.add_transition(
        "memberships",
        table="memberships",
        key_column="id",
        time_column="expires_at",
        state_column="status",
        from_states=["active"],
        to_state="expired",
    )
    assert status(conn, row) == "expired"
    event = only(backend)
    assert (event["path"], event["key"]) == ("recover", str(row))
    assert event["end_time"] == "2020-01-01T00:00:00+00:00"


def test_a_write_whose_time_has_passed_records_a_write_event(
    app: sqlite3.Connection, backend: SqliteBackend
) -> None:
    backend.set_webhooks(True)
    inserted = member(app, PAST)
    assert status(app, inserted) == "expired"
    later = member(app, future(60))
    app.execute("UPDATE memberships SET expires_at = ? WHERE id = ?", (PAST, later))
    assert status(app, later) == "expired"
    found = backend.events(transition="memberships")
    assert [(e["key"], e["path"], e["delivery"]) for e in found] == [
        (str(later), "write", "pending"),
        (str(inserted), "write", "pending"),
    ]
    assert all(e["end_time"] == "2020-01-01T00:00:00+00:00" for e in found)
    assert all(e["lateness_seconds"] > 0 for e in found)
    # an application's own update to the to-state is no event, nor a later write of the row
    third = member(app, future(60))
    app.execute("UPDATE memberships SET status = 'expired' WHERE id = ?", (third,))
    app.execute("UPDATE memberships SET expires_at = ? WHERE id = ?", (PAST, inserted))
    assert len(backend.events(transition="memberships")) == 2


# -- events() and metrics() by transition ---------------------------------------------------


def test_events_filter_by_transition_and_path(
    app: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    meeting_id = insert(app, PAST)
    written = member(app, PAST)
    end = soon(clock, 30)
    woken = member(app, end)
    clock.set(end + timedelta(seconds=1))
    backend.wake()
    assert [(e["transition"], e["key"], e["path"]) for e in backend.events()] == [
        ("memberships", str(woken), "waker"),
        ("memberships", str(written), "write"),
        ("meetings", meeting_id, "write"),
    ]
    assert [e["key"] for e in backend.events(transition="meetings")] == [meeting_id]
    assert [e["key"] for e in backend.events(transition="memberships", path="write")] == [
        str(written)
    ]
    assert [e["key"] for e in backend.events(transition="memberships", limit=1)] == [str(woken)]
    assert backend.events(transition="meetings", path="waker") == []


def test_metrics_of_one_transition(
    app: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    insert(app, PAST)  # a meeting's write event
    member(app, PAST)  # a membership's write event
    end = soon(clock, 30)
    woken = member(app, end)
    pending = member(app, future(90))
    clock.set(end + timedelta(seconds=2))
    backend.wake(transition="memberships")
    # health: one row without its job, one overdue row (no trigger ran for them)
    app.execute("DELETE FROM cron_job WHERE jobname = ?", (f"{PREFIX}{pending}",))
    app.execute(
        "INSERT INTO cron_job (schedule, command, jobname) VALUES ('1 1 1 1 *', "
        "'complete_transition(''memberships'', ''999'')', ?)",
        (f"{PREFIX}999",),
    )
    app.execute("DROP TRIGGER scheduler_memberships_after_insert")
    overdue = member(app, clock() - timedelta(minutes=5))
    assert status(app, overdue) == "active"

    mine = backend.metrics(transition="memberships")
    assert mine["transition"] == "memberships"
    assert mine["completions"]["write"] == 1 and mine["completions"]["waker"] == 1
    assert sum(mine["completions"].values()) == 2
    assert mine["lateness"]["count"] == 2
    assert (
        mine["upcoming_meetings"],
        mine["jobs"],
        mine["missing_jobs"],
        mine["orphan_jobs"],
        mine["overdue_meetings"],
    ) == (2, 1, 1, 1, 1)
    assert (mine["failed_runs"], mine["retried_runs"]) == (0, 0)
    assert status(app, woken) == "expired"

    meetings = backend.metrics(transition="meetings")
    assert "transition" not in meetings
    assert sum(meetings["completions"].values()) == 1 and meetings["completions"]["write"] == 1
    everything = backend.metrics()
    assert sum(everything["completions"].values()) == 3
    assert everything["lateness"]["count"] == 3
    # the health part of all and of meetings stays the meetings'
    for key in ("upcoming_meetings", "jobs", "missing_jobs", "orphan_jobs", "overdue_meetings"):
        assert everything[key] == meetings[key]
    assert set(mine) == set(everything) | {"transition"}


def test_a_failed_run_of_a_transition_s_job_counts_in_its_metrics(
    app: sqlite3.Connection, backend: SqliteBackend, worker: CronWorker, clock: FakeClock
) -> None:
    end = soon(clock, 20)
    row = member(app, end)
    app.execute("DROP TRIGGER scheduler_memberships_after_update")
    app.execute(
        "CREATE TRIGGER refuse BEFORE UPDATE OF status ON memberships "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    worker.tick(end.replace(second=0, microsecond=0) + timedelta(minutes=1))
    mine = backend.metrics(transition="memberships")
    assert (mine["failed_runs"], mine["retried_runs"]) == (1, 0)
    app.execute("DROP TRIGGER refuse")
    app.execute("UPDATE memberships SET status = 'cancelled' WHERE id = ?", (row,))
    mine = backend.metrics(transition="memberships")
    assert (mine["failed_runs"], mine["retried_runs"]) == (1, 1)


def test_the_retention_keeps_the_totals_of_each_transition(
    app: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    insert(app, PAST)
    member(app, PAST)
    member(app, PAST)
    before = {name: backend.metrics(transition=name) for name in ("meetings", "memberships")}
    app.execute("UPDATE scheduler_settings SET history_retention_days = 1")
    clock.set(clock() + timedelta(days=2))
    report = backend.reconcile()
    assert report["events_deleted"] == 3  # type: ignore[typeddict-item]
    assert backend.events() == []
    totals = {
        (r[0], r[1], r[2]): r[3]
        for r in app.execute("SELECT transition, name, label, value FROM scheduler_metric_totals")
    }
    assert totals[("meetings", "completions", "write")] == 1
    assert totals[("memberships", "completions", "write")] == 2
    for name, metrics in before.items():
        after = backend.metrics(transition=name)
        assert after["completions"] == metrics["completions"]
        assert after["lateness"]["count"] == metrics["lateness"]["count"]
    assert backend.metrics()["completions"]["write"] == 3


def test_webhooks_claim_every_transition_s_events(
    app: sqlite3.Connection, backend: SqliteBackend, clock: FakeClock
) -> None:
    backend.set_webhooks(True)
    meeting_id = insert(app, PAST)
    row = member(app, PAST)
    clock.advance(minutes=1)  # the triggers stamp SQLite's clock, ahead of the fake one
    claimed = backend.claim_events(limit=10, lease_seconds=60)
    assert [(e["transition"], e["key"], e["meeting_id"]) for e in claimed] == [
        ("meetings", meeting_id, meeting_id),
        ("memberships", str(row), None),
    ]
    assert backend.record_attempt(claimed[1]["event_id"], outcome="delivered", status_code=200)
    assert backend.record_attempt(claimed[0]["event_id"], outcome="failed", error="gone")
    assert backend.metrics(transition="memberships")["webhooks"]["delivered"] == 1
    assert backend.metrics(transition="memberships")["webhooks"]["failed"] == 0
    assert backend.metrics(transition="meetings")["webhooks"]["failed"] == 1
    assert backend.metrics(transition="meetings")["webhooks"]["delivered"] == 0
    everything = backend.metrics()["webhooks"]
    assert (everything["delivered"], everything["failed"], everything["backlog"]) == (1, 1, 0)


@pytest.mark.parametrize("call", ["events", "metrics"])
def test_an_unknown_name_is_refused(
    app: sqlite3.Connection, backend: SqliteBackend, call: str
) -> None:
    member(app, PAST)
    with pytest.raises(InvalidInput) as refused:
        getattr(backend, call)(transition="nosuch")
    assert refused.value.message == "no transition named nosuch"
    assert refused.value.hint == UNKNOWN_HINT


# -- revision 0007 --------------------------------------------------------------------------

MEMBERSHIPS = "CREATE TABLE memberships (id INTEGER PRIMARY KEY, status TEXT, expires_at TEXT)"
SPEC = Spec(
    name="memberships",
    table="memberships",
    key="id",
    time="expires_at",
    state="status",
    from_states=("active",),
    to_state="expired",
    prefix=PREFIX,
)


def objects(path: Path) -> dict[tuple[str, str], str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT type, name, coalesce(sql, '') FROM sqlite_master "
            "WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE 'alembic_%'"
        ).fetchall()
    return {(t, n): s for t, n, s in rows}


def url(path: Path) -> str:
    return f"sqlite:///{path}"


def register_as_0006(conn: sqlite3.Connection) -> None:
    """memberships registered as revision 0006 did: its row and its triggers (no events)."""
    conn.execute(
        """INSERT INTO scheduler_transitions (name, table_name, key_column, time_column,
                                              state_column, from_states, to_state, job_prefix)
           VALUES ('memberships', 'memberships', 'id', 'expires_at', 'status', '["active"]',
                   'expired', ?)""",
        (PREFIX,),
    )
    template = read_revision_sql("0006", "sqlite", "generated_triggers.sql")
    for sql in render_frozen_triggers(template, SPEC).values():
        conn.execute(sql)


def event_rows(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
    return [
        tuple(r)
        for r in conn.execute(
            "SELECT event_id, event_key, meeting_id, end_time, completed_at, path, delivery, "
            "attempts FROM scheduler_completion_events ORDER BY event_id"
        )
    ]


def test_0007_keeps_the_events_and_a_registered_transition_and_downgrades_back(
    tmp_path: Path,
) -> None:
    """0007 on a store of 0006 with a registered transition and events: the schema of a new
    store at head, every event kept (id, key, attempts; transition meetings, key the meeting
    id), the id counter kept, the transition's triggers re-created so that they record events;
    the downgrade gives back 0006's schema, the meetings' events and their attempts."""
    path, fresh = tmp_path / "store.db", tmp_path / "fresh.db"
    upgrade("0006", url=url(path))
    with sqlite3.connect(path) as conn:
        conn.execute(MEMBERSHIPS)
        register_as_0006(conn)
        conn.execute("UPDATE scheduler_webhooks SET enabled = 1")
        kept = insert(conn, PAST)
        dropped = insert(conn, PAST)  # its event: 2, then deleted (as the retention would)
        conn.execute("DELETE FROM scheduler_completion_events WHERE meeting_id = ?", (dropped,))
        conn.execute(
            "INSERT INTO scheduler_webhook_attempts (event_id, attempt, attempted_at, outcome) "
            "VALUES (1, 1, '2026-01-01T00:00:00.000000+00:00', 'retry')"
        )
        conn.execute(
            "INSERT INTO scheduler_metric_totals (name, label, value) "
            "VALUES ('completions', 'write', 5)"
        )
        early = member(conn, future(60))
        expired = member(conn, PAST)  # 0006's triggers: completed, no event
        assert {r[0] for r in conn.execute("SELECT status FROM memberships")} == {
            "active",
            "expired",
        }
        at_0006 = event_rows(conn)
        attempts = conn.execute("SELECT * FROM scheduler_webhook_attempts").fetchall()
    assert [r[2] for r in at_0006] == [kept]
    schema_0006 = objects(path)

    upgrade("0006", url=url(fresh))
    with sqlite3.connect(fresh) as conn:
        conn.execute(MEMBERSHIPS)
    upgrade(url=url(fresh))
    backend = SqliteBackend(url(fresh))
    backend.add_transition(
        "memberships",
        table="memberships",
        key_column="id",
        time_column="expires_at",
        state_column="status",
        from_states=["active"],
        to_state="expired",
    )
    backend.close()

    upgrade(url=url(path))
    assert objects(path) == objects(fresh)
    backend = SqliteBackend(url(path))
    try:
        with sqlite3.connect(path) as conn:
            assert event_rows(conn) == at_0006
            assert conn.execute(
                "SELECT transition, key FROM scheduler_completion_events"
            ).fetchall() == [("meetings", kept)]
            assert conn.execute("SELECT * FROM scheduler_webhook_attempts").fetchall() == attempts
            assert conn.execute(
                "SELECT transition, name, label, value FROM scheduler_metric_totals"
            ).fetchall() == [("meetings", "completions", "write", 5.0)]
            written = member(conn, PAST)
            conn.execute("UPDATE memberships SET expires_at = ? WHERE id = ?", (PAST, early))
        found = backend.events()
        assert [(e["event_id"], e["transition"], e["key"], e["path"]) for e in found] == [
            (4, "memberships", str(early), "write"),
            (3, "memberships", str(written), "write"),  # the counter kept: not 2
            (1, "meetings", kept, "write"),
        ]
        assert backend.metrics(transition="meetings")["completions"]["write"] == 6
        assert backend.metrics(transition="memberships")["completions"]["write"] == 2
        assert str(expired) not in {e["key"] for e in found}
    finally:
        backend.close()

    downgrade("0006", url=url(path))
    assert objects(path) == schema_0006
    with sqlite3.connect(path) as conn:
        assert event_rows(conn) == at_0006  # the memberships' events gone
        assert conn.execute("SELECT * FROM scheduler_webhook_attempts").fetchall() == attempts
        assert conn.execute(
            "SELECT name, label, value FROM scheduler_metric_totals"
        ).fetchall() == [("completions", "write", 5.0)]
        # 0006's triggers work again (no event of memberships), meetings record theirs
        again = member(conn, PAST)
        assert conn.execute("SELECT status FROM memberships WHERE id = ?", (again,)).fetchone() == (
            "expired",
        )
        third = insert(conn, PAST)
        assert conn.execute(
            "SELECT event_id FROM scheduler_completion_events WHERE meeting_id = ?", (third,)
        ).fetchone() == (5,)
    upgrade(url=url(path))
    assert objects(path) == objects(fresh)


def test_a_store_not_upgraded_to_0007_is_not_migrated(tmp_path: Path) -> None:
    path = tmp_path / "at_0006.db"
    upgrade("0006", url=url(path))
    backend = SqliteBackend(url(path))
    try:
        with pytest.raises(NotMigrated, match=r"scheduler_completion_events\.transition"):
            backend.events()
        (migrated,) = backend.doctor()
        assert migrated["ok"] is False
        assert "scheduler_metric_totals.transition" in migrated["detail"]
    finally:
        backend.close()
