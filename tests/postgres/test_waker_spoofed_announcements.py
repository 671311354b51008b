"""Spoofed announcements: PostgreSQL has no privilege on LISTEN/NOTIFY channels, so any role that
can connect may send on ``scheduler_meetings`` and ``scheduler_transitions``. The waker treats
what it hears there as hints: a malformed announcement (garbage, a time without an offset, bad
JSON, the wrong shape, a huge payload, a time out of range, no transition's name) is ignored
without touching its connection, and a flood of well-formed spoofed times brings ``wake()``
forward at most once per ``ANNOUNCE_GAP`` instead of making it busy-loop. Either way a real
meeting is still completed by the waker within half a second of its end.

The first tests parse payloads without a server; the others run a role that has nothing but
CONNECT against a waker on the real server. As in test_waker.py, the shared reset turns the
seconds sweep off and the end times are chosen away from minute boundaries, so that pg_cron's
per-meeting jobs do not race the waker.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from attack_helpers import dsn_as
from pg_helpers import Conn, Server, clear_of_ticks, connect, poll, value

from scheduler_admin import waker as waker_module
from scheduler_admin.waker import CHANNEL, TRANSITION_CHANNEL, ListeningSource, Waker

UTC = timezone.utc
BOUND = 0.5  # seconds after its end_time by which the waker completes a meeting (test_waker.py)
MAX_CALLS_PER_SECOND = 5  # of wake() brought by announcements, however many arrive (ANNOUNCE_GAP)
SPOOFER = "scheduler_test_spoofer"
AT = "2026-12-01T15:30:00.000000+00:00"  # an announcement's time as the triggers write it

# What no trigger of ours sends, on each channel: every one must be ignored.
MALFORMED: list[tuple[str, str]] = [
    (CHANNEL, "garbage"),
    (CHANNEL, ""),
    (CHANNEL, "2026-12-01T15:30:00"),  # no offset: no time zone is guessed
    (CHANNEL, "2026-12-01T15:30:00.000000"),
    (CHANNEL, "2026-12-01"),  # a date: midnight of no time zone
    (CHANNEL, "2026-13-01T15:30:00+00:00"),
    (CHANNEL, "10000-01-01T00:00:00+00:00"),  # out of range
    (CHANNEL, "0001-01-01T00:00:00+14:00"),  # before year 1 in UTC
    (CHANNEL, "9999-12-31T23:59:59-14:00"),  # after year 9999 in UTC
    (CHANNEL, "2026-12-01T15:30:00+00:00" + " " * 300),  # longer than any announcement
    (CHANNEL, "9" * 7900),  # a huge payload (NOTIFY takes up to 8000 bytes)
    (CHANNEL, json.dumps({"transition": "meetings", "time": AT})),  # JSON where a time belongs
    (TRANSITION_CHANNEL, AT),  # a bare time where JSON belongs
    (TRANSITION_CHANNEL, "{not json"),
    (TRANSITION_CHANNEL, "[" * 7000),  # nested deeper than Python's JSON decoder goes
    (TRANSITION_CHANNEL, "null"),
    (TRANSITION_CHANNEL, '"memberships"'),
    (TRANSITION_CHANNEL, json.dumps(["memberships", AT])),
    (TRANSITION_CHANNEL, "{}"),
    (TRANSITION_CHANNEL, json.dumps({"transition": "memberships"})),
    (TRANSITION_CHANNEL, json.dumps({"time": AT})),
    (TRANSITION_CHANNEL, json.dumps({"transition": "memberships", "time": "2026-12-01T15:30:00"})),
    (TRANSITION_CHANNEL, json.dumps({"transition": "memberships", "time": "soon"})),
    (TRANSITION_CHANNEL, json.dumps({"transition": "memberships", "time": 1796139000})),
    (TRANSITION_CHANNEL, '{"transition": "memberships", "time": NaN}'),
    (TRANSITION_CHANNEL, json.dumps({"transition": "memberships", "time": [AT]})),
    (TRANSITION_CHANNEL, json.dumps({"transition": 42, "time": AT})),
    (TRANSITION_CHANNEL, json.dumps({"transition": None, "time": AT})),
    (TRANSITION_CHANNEL, json.dumps({"transition": ["memberships"], "time": AT})),
    # names no transition can have (scheduler.transitions: ^[a-z][a-z0-9_]{0,39}$), and meetings,
    # whose rows are announced on scheduler_meetings only
    (TRANSITION_CHANNEL, json.dumps({"transition": "Memberships", "time": AT})),
    (TRANSITION_CHANNEL, json.dumps({"transition": "x'); drop table t; --", "time": AT})),
    (TRANSITION_CHANNEL, json.dumps({"transition": "m" * 41, "time": AT})),
    (TRANSITION_CHANNEL, json.dumps({"transition": "meetings", "time": AT})),
    (TRANSITION_CHANNEL, json.dumps({"transition": "memberships", "time": AT + "x" * 300})),
]


# -- parsing, without a server -------------------------------------------------------------------


@pytest.mark.parametrize(("channel", "payload"), MALFORMED)
def test_a_malformed_announcement_is_refused_by_the_parser(channel: str, payload: str) -> None:
    # whichever transition a waker serves, it hears nothing in it
    for transition in (None, "meetings", "memberships"):
        assert waker_module.announced_time(channel, payload, transition) is None
    with pytest.raises(waker_module.BadAnnouncement):
        waker_module.parse_announcement(channel, payload)


@pytest.mark.parametrize(
    ("channel", "payload", "transition"),
    [
        (CHANNEL, AT, "meetings"),
        (CHANNEL, "2026-12-01T16:30:00+01:00", "meetings"),  # another offset, the same instant
        (TRANSITION_CHANNEL, json.dumps({"transition": "memberships", "time": AT}), "memberships"),
        (TRANSITION_CHANNEL, json.dumps({"time": AT, "transition": "m_2", "by": 1}), "m_2"),
    ],
)
def test_a_well_formed_announcement_is_parsed_to_utc(
    channel: str, payload: str, transition: str
) -> None:
    name, when = waker_module.parse_announcement(channel, payload)
    assert name == transition
    assert when == datetime(2026, 12, 1, 15, 30, tzinfo=UTC)
    assert when.utcoffset() == timedelta(0)


def test_ignored_announcements_are_counted_and_logged_at_most_once_per_interval(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG, logger="scheduler_admin.waker")
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    source = ListeningSource("postgresql://app@127.0.0.1:1/db")  # no connection until used
    for _ in range(3):
        for channel, payload in MALFORMED:
            assert source.heed(channel, payload) is None
    assert source.ignored == 3 * len(MALFORMED)
    lines = [r.getMessage() for r in caplog.records if r.name == "scheduler_admin.waker"]
    assert len(lines) == 1, lines
    assert "garbage" in lines[0]
    assert all(r.levelno == logging.DEBUG for r in caplog.records)

    clock[0] += waker_module.IGNORED_LOG_INTERVAL
    caplog.clear()
    assert source.heed(CHANNEL, "9" * 7900) is None
    (line,) = [r.getMessage() for r in caplog.records]
    assert f"{3 * len(MALFORMED) - 1} more" in line  # the ones left out since the first line
    assert len(line) < 400  # a huge payload is not copied into the log
    # a well-formed announcement is heeded, and not counted
    assert source.heed(CHANNEL, AT) == datetime(2026, 12, 1, 15, 30, tzinfo=UTC)
    assert source.ignored == 3 * len(MALFORMED) + 1


# -- on the server: a role with nothing but CONNECT ----------------------------------------------


@pytest.fixture
def spoofer(db: Conn, migrated: Server) -> Iterator[Conn]:
    """A connection as a login role granted CONNECT on the database and nothing else."""
    db.execute(f"drop role if exists {SPOOFER}")
    db.execute(f"create role {SPOOFER} login nosuperuser")
    database = value(db, "select current_database()")
    db.execute(f'grant connect on database "{database}" to {SPOOFER}')
    try:
        with connect(dsn_as(migrated, SPOOFER)) as conn:
            # it may not even look into the scheduler's schema, nor touch meetings
            assert value(conn, "select has_schema_privilege('scheduler', 'usage')") is False
            assert value(conn, "select has_table_privilege('public.meetings', 'select')") is False
            yield conn
    finally:
        db.execute(f"drop owned by {SPOOFER}")
        db.execute(f"drop role {SPOOFER}")


def started(server: Server, transition: str | None = None, **options: float) -> Waker:
    waker = Waker(
        ListeningSource(server.url, transition=transition), transition=transition, **options
    )
    waker.start_thread()
    assert poll(lambda: waker.cycles >= 1, timeout=10, interval=0.05), "the waker never answered"
    return waker


def waker_session(db: Conn) -> int:
    """The backend pid of the (one) waker's session: the one whose last query was wake()."""
    rows = db.execute(
        "select pid from pg_stat_activity where application_name = 'scheduler-admin' "
        """and query like 'select "scheduler"."wake"(%'"""
    ).fetchall()
    assert len(rows) == 1, rows
    return int(rows[0][0])


def insert_meeting(db: Conn, end_time: datetime) -> object:
    return value(
        db, "insert into meetings (title, end_time) values ('real', %s) returning id", (end_time,)
    )


def completion(db: Conn, meeting_id: object) -> tuple[str, float] | None:
    """How and how late (seconds after its end) the meeting was completed; None while it is not."""
    row = db.execute(
        "select path, extract(epoch from completed_at - end_time)::float8 "
        "from scheduler.completion_events where meeting_id = %s",
        (meeting_id,),
    ).fetchone()
    return None if row is None else (str(row[0]), float(row[1]))


def send(conn: Conn, payloads: list[tuple[str, str]]) -> int:
    """NOTIFY every payload in one transaction (delivered together at its commit)."""
    with conn.transaction():
        for channel, payload in payloads:
            conn.execute("select pg_notify(%s, %s)", (channel, payload))
    return len(payloads)


def waker_lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "scheduler_admin.waker" and r.levelno >= level
    ]


@pytest.mark.parametrize("transition", [None, "meetings"])
def test_malformed_announcements_never_disturb_the_waker(
    db: Conn,
    migrated: Server,
    spoofer: Conn,
    caplog: pytest.LogCaptureFixture,
    transition: str | None,
) -> None:
    """Bursts of malformed announcements on both channels until a real meeting's end: the
    waker keeps its session, logs no failure, calls wake() no more than for the meeting alone,
    and completes the meeting on time."""
    caplog.set_level(logging.DEBUG, logger="scheduler_admin.waker")
    waker = started(migrated, transition)
    try:
        meeting_id = insert_meeting(db, clear_of_ticks(db, 4))
        pid = waker_session(db)
        cycles = waker.cycles
        sent = 0

        def burst_until_done() -> tuple[str, float] | None:
            nonlocal sent
            sent += send(spoofer, MALFORMED)
            return completion(db, meeting_id)

        done = poll(burst_until_done, timeout=20, interval=0.05)
        assert done is not None, "the meeting was not completed"
        assert sent >= 10 * len(MALFORMED)  # bursts went on for the seconds before the end
        path, late = done
        assert path == "waker"
        assert 0 <= late <= BOUND, f"completed {late:.3f} s after its end"

        # it heard every one of them on the same session, and none was a failure
        assert waker_lines(caplog, logging.WARNING) == []
        assert waker.failures == 0
        assert waker_session(db) == pid, "the waker dropped its session"
        # one call at the meeting's end (and possibly one more look), none for the bursts
        assert waker.cycles - cycles <= 2, waker.cycles - cycles
        assert poll(lambda: waker.ignored >= sent, timeout=10, interval=0.05), (
            waker.ignored,
            sent,
        )
        assert waker.ignored == sent
        assert isinstance(waker.source, ListeningSource)
        assert waker.source.sessions == 1
        # the debug lines about them are rate-limited (one per IGNORED_LOG_INTERVAL)
        ignored_lines = [m for m in waker_lines(caplog, logging.DEBUG) if "ignored" in m]
        assert len(ignored_lines) == 1, ignored_lines[:3]
    finally:
        waker.stop()


def test_a_flood_of_spoofed_times_makes_a_bounded_number_of_calls(
    db: Conn, migrated: Server, spoofer: Conn, caplog: pytest.LogCaptureFixture
) -> None:
    """Well-formed announcements of times in the past and the next instants, on both channels
    (for a transition that does not exist), thousands a second until a real meeting's end: a
    waker without jitter calls wake() at most MAX_CALLS_PER_SECOND times a second, and still
    completes the meeting on time."""
    waker = started(migrated, jitter=0)
    try:
        meeting_id = insert_meeting(db, clear_of_ticks(db, 3))
        cycles = waker.cycles
        began = time.monotonic()
        flood = (
            "select pg_notify('scheduler_meetings', to_char(t at time zone 'UTC', "
            """'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')), """
            "pg_notify('scheduler_transitions', json_build_object('transition', 'memberships', "
            """'time', to_char(t at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'))::text) """
            "from (select clock_timestamp() + (g - 50) * interval '1 millisecond' as t "
            "from generate_series(1, 100) g) s"
        )
        sent = 0

        def flood_until_done() -> tuple[str, float] | None:
            nonlocal sent
            spoofer.execute(flood)
            sent += 200
            return completion(db, meeting_id)

        done = poll(flood_until_done, timeout=20, interval=0.02)
        calls = waker.cycles - cycles  # read before the clock: every call counted is in elapsed
        elapsed = time.monotonic() - began
        assert done is not None, "the meeting was not completed"
        path, late = done
        assert path == "waker"
        assert 0 <= late <= BOUND, f"completed {late:.3f} s after its end"
        print(f"\n[spoofed flood] {sent} announcements in {elapsed:.1f} s: {calls} calls of wake()")
        assert calls <= MAX_CALLS_PER_SECOND * elapsed + 2, (calls, elapsed)
        assert waker.failures == 0
        assert waker_lines(caplog, logging.WARNING) == []
    finally:
        waker.stop()
