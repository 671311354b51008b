"""Real pg_cron ticks: a meeting's own job, a failed run retried, a registered transition's row,
and the reconcile job after an outage and after a load with the triggers off.

pg_cron fires at minute boundaries only, so each of these used to wait for a tick of its own.
Here one module fixture (``ticks``) sets every scenario up before the first tick, on two
servers of the lane, drives them through three ticks, and records what happened; each test then
asserts its own scenario (what it recorded and what the database holds afterwards).

* The lane's server, with the reconcile job inactive throughout (it fires at every tick and
  would complete a row before the row's own job could: kept out, so that the job must do it).
  Tick 1: a meeting's own job completes it. Tick 2: a meeting's own job fails on a lock held on
  ``meetings``; the test retries it. Tick 3: a registered transition's row's own job expires it,
  the only job of ours in that minute.
* A second server of the lane, reconcile job active: down across tick 1 (the minute a meeting's
  job would have fired), started again after it; at tick 2 the reconcile job completes that
  meeting and repairs 200 meetings loaded with the triggers off since the restart.

A meeting's job completes every due meeting, so on one server no two scenarios have rows of one
table due at the same tick, and each scenario's assertions name its own rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from clock_helpers import future_on
from pg_helpers import (
    Conn,
    Server,
    connect,
    db_now,
    expected_schedule,
    insert_meeting,
    job_command,
    job_name,
    meeting_jobs,
    migrate,
    poll,
    reconcile_job_inactive,
    reset,
    run_command,
    status_of,
    value,
)
from skip_helpers import require_or_skip

from scheduler_admin.backends.postgres import PostgresBackend
from scheduler_admin.testing.cluster import ClusterError
from scheduler_admin.testing.lanes import throwaway_server

pytestmark = pytest.mark.slow

UTC = timezone.utc
FUTURE = future_on(3, 14, 9, 26)  # 14 March, 09:26 UTC, at least 30 days ahead
LOAD_START = future_on(1, 1)  # 1 January, 00:00 UTC
LEAD = timedelta(seconds=20)  # set-up time before tick 1 (rows on two servers, one stopped)
BEFORE = timedelta(seconds=5)  # each row's time: this long before the tick that fires its job
FINISHED = "status not in ('starting', 'running', 'sending', 'connecting')"


def first_minute_at_or_after(t: datetime) -> datetime:
    minute = t.astimezone(UTC).replace(second=0, microsecond=0)
    return minute if minute == t else minute + timedelta(minutes=1)


def job_id_of(conn: Conn, name: str) -> int:
    row = conn.execute("select jobid from cron.job where jobname = %s", (name,)).fetchone()
    assert row is not None, f"no job {name}"
    return int(row[0])


def finished_runs(conn: Conn, job_id: int, after: datetime) -> list[tuple[Any, ...]]:
    """(status, return_message, started at or after ``after``) of the job's finished runs."""
    return conn.execute(
        f"select status, return_message, start_time >= %s from cron.job_run_details "
        f"where jobid = %s and {FINISHED}",
        (after, job_id),
    ).fetchall()


def settled_runs(conn: Conn, job_id: int, after: datetime) -> list[tuple[Any, ...]]:
    """The job's finished runs once one of them succeeded and none is still going, else []:
    when several jobs fire in one minute and some unschedule themselves, pg_cron may drop a
    pending run as 'failed' / 'job canceled' (scheduler.history() reports it 'canceled', not a
    failure) and start the job again in the same minute."""
    runs = finished_runs(conn, job_id, after)
    going = conn.execute(
        f"select count(*) from cron.job_run_details where jobid = %s and not ({FINISHED})",
        (job_id,),
    ).fetchone()
    if going != (0,) or not any(status == "succeeded" for status, _, _ in runs):
        return []
    return runs


def runs_of(conn: Conn, job_id: int, after: datetime) -> list[tuple[Any, ...]]:
    """settled_runs(), polled for 30 s; then, if none settled, whatever runs finished (so that
    a failure shows their messages)."""
    return poll(lambda: settled_runs(conn, job_id, after), timeout=30) or finished_runs(
        conn, job_id, after
    )


def succeeded(runs: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The runs but pg_cron's own cancellations, each of which must be just that."""
    canceled = [r for r in runs if r[:2] == ("failed", "job canceled")]
    return [r for r in runs if r not in canceled]


def events_of(conn: Conn, meeting_ids: list[Any]) -> list[tuple[Any, str]]:
    return conn.execute(
        "select meeting_id, path from scheduler.completion_events "
        "where meeting_id = any(%s) order by completed_at, meeting_id",
        (meeting_ids,),
    ).fetchall()


def jobs_of(conn: Conn, meeting_ids: list[Any]) -> list[str]:
    names = {job_name(m) for m in meeting_ids}
    return sorted(name for name in meeting_jobs(conn) if name in names)


@dataclass
class OwnJob:
    """Tick 1, lane's server: a meeting whose own job completes it, and one a day later."""

    meeting: Any = None
    later: Any = None
    end_time: datetime | None = None
    job_id: int = 0
    done: bool = False
    runs: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass
class FailedRun:
    """Tick 2, lane's server: a meeting whose own run fails on a lock held on meetings."""

    meeting: Any = None
    job_id: int = 0
    locked_before_tick: bool = False
    failed: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass
class TransitionRow:
    """Tick 3, lane's server: a row of a registered transition, expired by its own job."""

    key: Any = None
    expires_at: datetime | None = None
    job_id: int = 0
    expired: bool = False
    runs: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass
class Outage:
    """The second server, down across tick 1 (the meeting's minute); reconcile at tick 2."""

    meeting: Any = None
    later: Any = None
    job_id: int = 0
    stopped_before_tick: bool = False
    started_after_tick: bool = False
    status_after_restart: str | None = None
    done: bool = False


@dataclass
class Load:
    """The second server: 200 meetings written with the triggers off after the restart (100
    overdue, 100 ahead, no job); the reconcile job repairs them at tick 2."""

    ids: list[Any] = field(default_factory=list)
    jobs_after_load: list[str] = field(default_factory=list)
    repaired: bool = False


@dataclass
class Ticks:
    first: datetime
    second: datetime
    main: Conn  # the lane's server (reconcile job inactive)
    server: Server
    other: Conn | None  # the second server (reconcile job active), None when it cannot start
    other_server: Server | None
    other_unavailable: str
    own_job: OwnJob
    failed_run: FailedRun
    transition_row: TransitionRow
    outage: Outage
    load: Load

    def second_server(self) -> tuple[Conn, Server]:
        if self.other is None or self.other_server is None:
            require_or_skip(f"needs a second throwaway server: {self.other_unavailable}")
        assert self.other is not None and self.other_server is not None
        return self.other, self.other_server


def _start_second_server(stack: ExitStack) -> tuple[Server | None, str]:
    try:
        cluster = stack.enter_context(throwaway_server())
    except ClusterError as exc:
        return None, str(exc)
    server = Server(cluster.dsn(), cluster.url(), cluster)
    migrate(server)
    with connect(server.dsn) as conn:
        reset(conn)
        # the lane's server must agree with it: the ticks are planned on one clock
        assert abs(db_now(conn) - datetime.now(UTC)) < timedelta(seconds=2)
    return server, ""


def _until(conn: Conn, moment: datetime) -> None:
    """Wait until the server's clock reads ``moment``."""
    poll(lambda: db_now(conn) >= moment, timeout=(moment - db_now(conn)).total_seconds() + 30)


@pytest.fixture(scope="module")
def ticks(migrated: Server) -> Iterator[Ticks]:
    with ExitStack() as stack:
        main = stack.enter_context(connect(migrated.dsn))
        migrate(migrated)  # a test before may have downgraded
        reset(main)
        other_server, unavailable = _start_second_server(stack)
        other = stack.enter_context(connect(other_server.dsn)) if other_server else None
        stack.enter_context(reconcile_job_inactive(main))
        main.execute(
            "create table public.memberships (id bigint generated always as identity primary "
            "key, status text not null default 'active', expires_at timestamptz not null)"
        )
        stack.callback(main.execute, "drop table public.memberships")
        main.execute(
            "select scheduler.add_transition('memberships', 'public.memberships', 'id', "
            "'expires_at', 'status', array['active'], 'expired')"
        )
        stack.callback(main.execute, "select scheduler.remove_transition('memberships')")

        first = first_minute_at_or_after(db_now(main) + LEAD)
        second = first + timedelta(minutes=1)
        third = second + timedelta(minutes=1)
        t = Ticks(
            first, second, main, migrated, other, other_server, unavailable,
            OwnJob(), FailedRun(), TransitionRow(), Outage(), Load(),
        )  # fmt: skip

        # -- before tick 1 --------------------------------------------------------------------
        own = t.own_job
        own.end_time = first - BEFORE
        own.meeting, _ = insert_meeting(main, own.end_time)
        own.later, _ = insert_meeting(main, own.end_time + timedelta(days=1))
        own.job_id = job_id_of(main, job_name(own.meeting))
        row = t.transition_row
        row.expires_at = third - BEFORE
        (row.key,) = main.execute(
            "insert into public.memberships (expires_at) values (%s) returning id",
            (row.expires_at,),
        ).fetchone()  # type: ignore[misc]
        row.job_id = job_id_of(main, f"memberships-status-{row.key}")
        failed = t.failed_run
        failed.meeting, _ = insert_meeting(main, second - BEFORE)
        failed.job_id = job_id_of(main, job_name(failed.meeting))
        outage = t.outage
        if other is not None and other_server is not None:
            outage.meeting, _ = insert_meeting(other, first - BEFORE)
            outage.later, _ = insert_meeting(other, FUTURE)
            outage.job_id = job_id_of(other, job_name(outage.meeting))
            other.close()
            assert other_server.cluster is not None
            other_server.cluster.stop()
            outage.stopped_before_tick = db_now(main) < first

        # -- tick 1 ---------------------------------------------------------------------------
        _until(main, first + timedelta(seconds=2))
        if other_server is not None:
            # stay down across the minute in which the meeting ends, then start again
            assert other_server.cluster is not None
            outage.started_after_tick = db_now(main) >= first + timedelta(seconds=2)
            other_server.cluster.start()
            other = t.other = stack.enter_context(connect(other_server.dsn))
            outage.status_after_restart = status_of(other, outage.meeting)  # nothing replayed
            load = t.load
            other.execute("set session_replication_role = replica")  # as pg_restore writes
            load.ids = [
                r[0]
                for r in other.execute(
                    "insert into meetings (title, end_time) "
                    "select 'restored ' || i, case when i %% 2 = 0 then now() - i * interval "
                    "'1 hour' else %s::timestamptz + i * interval '1 minute' end "
                    "from generate_series(1, 200) i returning id",
                    (LOAD_START,),
                ).fetchall()
            ]
            other.execute("set session_replication_role = origin")
            load.jobs_after_load = jobs_of(other, load.ids)

        own.done = bool(poll(lambda: status_of(main, own.meeting) == "done", timeout=150))
        own.runs = runs_of(main, own.job_id, own.end_time)

        # -- tick 2 ---------------------------------------------------------------------------
        with psycopg.connect(migrated.dsn) as locker:
            locker.execute("lock table public.meetings in exclusive mode")
            failed.locked_before_tick = db_now(main) < second
            failed.failed = poll(
                lambda: main.execute(
                    "select return_message from cron.job_run_details "
                    "where jobid = %s and status = 'failed'",
                    (failed.job_id,),
                ).fetchall(),
                timeout=150,
            )
            locker.rollback()
        if other is not None:
            outage.done = bool(poll(lambda: status_of(other, outage.meeting) == "done", 150))

            def repaired() -> bool:
                overdue = value(
                    other,
                    "select count(*) from meetings where id = any(%s) "
                    "and status = 'upcoming' and end_time <= now()",
                    (t.load.ids,),
                )
                return overdue == 0 and len(jobs_of(other, t.load.ids)) == 100

            t.load.repaired = bool(poll(repaired, timeout=150, interval=1))

        # -- tick 3 ---------------------------------------------------------------------------
        # the transition row's job alone in its minute (in the minute of other jobs of ours it
        # once recorded no successful run though the row was expired: not understood yet)
        _until(main, third + timedelta(seconds=2))
        row.expired = bool(
            poll(
                lambda: (
                    main.execute(
                        "select status from public.memberships where id = %s", (row.key,)
                    ).fetchone()
                    == ("expired",)
                ),
                timeout=150,
            )
        )
        row.runs = runs_of(main, row.job_id, row.expires_at)
        yield t
        reset(main)


# -- the lane's server, tick 1 ------------------------------------------------------------------


def test_pg_cron_tick_completes_the_meeting_and_records_success(ticks: Ticks) -> None:
    """The meeting's own job, fired by pg_cron at the first minute at or after its end,
    completes it (and only it), removes its job and records one successful run."""
    own, db = ticks.own_job, ticks.main
    assert own.done, "the meeting was not completed by its job"
    assert status_of(db, own.later) == "upcoming"
    assert jobs_of(db, [own.meeting, own.later]) == [job_name(own.later)]
    # succeeded, and started at or after the meeting's end time (never before it)
    assert succeeded(own.runs) == [("succeeded", "1 row", True)], own.runs
    assert events_of(db, [own.meeting]) == [(own.meeting, "job")]


def test_a_failed_run_is_retried_by_the_next_run_and_counted(ticks: Ticks) -> None:
    """A meeting's run fails (a lock held on meetings past its 5 s lock_timeout); the next run
    of our command completes the meeting, and health, doctor and the metrics count the failed
    run as retried."""
    failed, db = ticks.failed_run, ticks.main
    assert failed.locked_before_tick, "the lock was taken after the meeting's tick"
    assert len(failed.failed) == 1 and "lock timeout" in str(failed.failed[0][0])
    assert status_of(db, failed.meeting) == "upcoming"
    health = run_command(db, "select scheduler.health()")
    assert (health["failed_runs_24h"], health["retried_runs_24h"], health["ok"]) == (1, 0, False)

    # the next run: the command every job of ours runs completes what is due
    run_command(db, job_command(failed.meeting))
    assert status_of(db, failed.meeting) == "done"
    # the meetings completed on this server: tick 1's by its job, this one by the command
    assert events_of(db, [ticks.own_job.meeting, failed.meeting]) == [
        (ticks.own_job.meeting, "job"),
        (failed.meeting, "job"),
    ]
    assert value(db, "select count(*) from scheduler.completion_events") == 3  # and the row's
    health = run_command(db, "select scheduler.health()")
    assert (health["failed_runs_24h"], health["retried_runs_24h"]) == (1, 1)
    metrics = run_command(db, "select scheduler.metrics()")
    assert (metrics["failed_runs"], metrics["retried_runs"]) == (1, 1)
    backend = PostgresBackend(ticks.server.url)
    try:
        check = {c["name"]: c for c in backend.doctor()}["failed runs retried (24 h)"]
    finally:
        backend.close()
    assert check["ok"] is True
    assert check["detail"].startswith("1 failed run, 1 retried by a later run")


def test_pg_cron_tick_gives_a_registered_transition_s_row_its_state(ticks: Ticks) -> None:
    """A second table registered as a transition: its row's own job, fired by pg_cron at the
    first minute at or after the row's time, expires it; the run succeeds, history names the
    transition and the row, and one completion event (path job) is recorded."""
    row, db = ticks.transition_row, ticks.main
    assert row.expired, "the row was not expired by its job"
    # succeeded, and started at or after the row's time (never before it)
    assert [(status, on_time) for status, _, on_time in succeeded(row.runs)] == [
        ("succeeded", True)
    ], row.runs
    assert db.execute(
        "select count(*) from cron.job where jobname like 'memberships-status-%'"
    ).fetchone() == (0,)
    backend = PostgresBackend(ticks.server.url)
    try:
        # a run pg_cron dropped as canceled is listed as such (see settled_runs)
        (listed,) = [
            r for r in backend.history(transition="memberships") if r["status"] != "canceled"
        ]
        assert (listed["key"], listed["status"]) == (str(row.key), "succeeded")
        assert (
            listed["return_message"] == "checked the row: the due rows of memberships are expired"
        )
        (event,) = backend.events(transition="memberships")
        assert (event["key"], event["path"]) == (str(row.key), "job")
        assert event["lateness_seconds"] >= 0
    finally:
        backend.close()


# -- the second server, reconcile job active ----------------------------------------------------


def test_reconcile_job_completes_a_meeting_missed_while_the_server_was_down(
    ticks: Ticks,
) -> None:
    """pg_cron does not replay runs missed while the server was down: a meeting whose end minute
    passed during the outage is completed by the reconcile job after the restart, with no
    command from the test, and its own job never runs."""
    conn, _ = ticks.second_server()
    outage = ticks.outage
    assert outage.stopped_before_tick, "the server stopped after the job's minute"
    assert outage.started_after_tick, "the server started before the job's minute had passed"
    assert outage.status_after_restart == "upcoming"  # nothing replayed the missed run
    assert outage.done, "the reconcile job did not complete the meeting"
    assert status_of(conn, outage.later) == "upcoming"
    assert jobs_of(conn, [outage.meeting, outage.later]) == [job_name(outage.later)]
    # the meeting's own job never ran: the reconcile job did it
    assert (
        value(conn, "select count(*) from cron.job_run_details where jobid = %s", (outage.job_id,))
        == 0
    )
    assert events_of(conn, [outage.meeting]) == [(outage.meeting, "reconcile")]
    health = value(conn, "select scheduler.health()")
    assert [health[k] for k in ("missing_jobs", "orphan_jobs", "overdue_meetings")] == [0, 0, 0]


def test_reconcile_job_completes_meetings_loaded_with_triggers_off(ticks: Ticks) -> None:
    """Meetings loaded in replica mode (no job, some already overdue) are completed or given
    their jobs by the reconcile job alone, within about two minutes."""
    conn, _ = ticks.second_server()
    load = ticks.load
    assert load.jobs_after_load == []
    assert load.repaired, "the reconcile job did not repair the loaded meetings"
    counts = dict(
        conn.execute(
            "select status, count(*) from meetings where id = any(%s) group by 1", (load.ids,)
        ).fetchall()
    )
    assert counts == {"upcoming": 100, "done": 100}
    # every upcoming meeting of the server has its job, of the right schedule, and no other job
    rows = conn.execute("select id, end_time from meetings where status = 'upcoming'").fetchall()
    assert {name: schedule for name, (schedule, _) in meeting_jobs(conn).items()} == {
        job_name(i): expected_schedule(end) for i, end in rows
    }
    assert (
        value(conn, "select count(*) from meetings where status = 'done' and end_time > now()") == 0
    )
    # completed by the reconcile job, not by a job of a meeting or a write
    paths = conn.execute(
        "select path, count(*) from scheduler.completion_events where meeting_id = any(%s) "
        "group by 1",
        (load.ids,),
    ).fetchall()
    assert paths == [("reconcile", 100)]
