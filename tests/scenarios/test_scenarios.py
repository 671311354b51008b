"""Behaviour scenarios written once, run against PostgreSQL, SQLite and the Supabase shape, for
the builtin transition meetings and for a registered one, memberships (see conftest.py).

A difference between the backends or the transitions is a bug unless /DESIGN.md names it. Every
scenario that breaks the state on purpose does so inside ``adapter.held()``: on PostgreSQL the
reconcile job (every minute) can then neither see nor repair it before the scenario has measured
it.

The scenarios marked ``any_transition`` speak of a transition's words: its rows (a meeting, a
membership), their time (end_time, expires_at), the pending state (upcoming, active), the state
they get (done, expired) and another state that gets no job (cancelled). Those marked
``per_transition`` call the admin side for one transition (``transition=`` of the protocol).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from clock_helpers import future_on
from pg_helpers import expected_schedule
from scenario_adapters import Adapter, Rejected, ghost_id, job_name

from scheduler_admin.core import Job, RecoverReport, Run
from scheduler_admin.exceptions import InvalidInput, MeetingNotFound

UTC = timezone.utc
FUTURE = future_on(3, 14, 9, 26)  # 14 March, 09:26 UTC, at least 30 days ahead
YEAR = FUTURE.year
any_transition = pytest.mark.any_transition


def report(
    total: int, scheduled: int, exist: int, overdue: int, orphans: int, *, dry_run: bool = False
) -> dict[str, Any]:
    """The meetings' recover report (the meetings-only scenarios)."""
    return {
        "total_meetings": total,
        "jobs_scheduled": scheduled,
        "jobs_already_exist": exist,
        "overdue_completed": overdue,
        "orphans_removed": orphans,
        "errors": [],
        "success": True,
        "dry_run": dry_run,
    }


def minute_ceiling(when: datetime) -> datetime:
    minute = when.replace(second=0, microsecond=0)
    return minute if minute == when else minute + timedelta(minutes=1)


def expected_jobs(adapter: Adapter) -> dict[str, str]:
    """What the jobs must be, from the rows alone: one per pending row."""
    return {adapter.t.job_name(k): expected_schedule(end) for k, end in adapter.pending().items()}


# -- the triggers: insert, move, state change, delete, past time --------------------------------


@any_transition
@pytest.mark.parametrize(
    ("end_time", "schedule"),
    [
        ("03-14T09:26:00Z", "26 9 14 3 *"),  # exactly on the minute: stays in it
        ("03-14T09:26:01Z", "27 9 14 3 *"),  # one second later: rounds up
        ("03-14T09:26:00.001+00:00", "27 9 14 3 *"),
        ("03-14T09:26:59.999+00:00", "27 9 14 3 *"),
        ("03-14T15:00:01+05:30", "31 9 14 3 *"),  # offsets are converted to UTC
        ("03-15T01:00:00+05:30", "30 19 14 3 *"),  # ... across the day boundary
        ("03-13T22:59:30-11:00", "0 10 14 3 *"),
        ("12-31T23:59:30Z", "0 0 1 1 *"),  # rounding up across the year end
    ],
)
def test_insert_registers_one_job_with_name_and_utc_schedule(
    adapter: Adapter, end_time: str, schedule: str
) -> None:
    end_time = f"{YEAR}-{end_time}"  # the parameters are month-day and time of FUTURE's year
    key = adapter.insert(end_time)
    assert adapter.status(key) == adapter.t.pending
    assert adapter.jobs() == {adapter.t.job_name(key): schedule}
    # the stored time is the same instant, and the independent rule agrees
    stored = adapter.end_time(key)
    assert stored == datetime.fromisoformat(end_time.replace("Z", "+00:00"))
    assert expected_schedule(stored) == schedule


@pytest.mark.parametrize(
    ("end_time", "schedule"),
    [
        ("03-14T09:26:00.0004Z", "27 9 14 3 *"),
        ("03-14T09:26:00.000001Z", "27 9 14 3 *"),
        ("03-14T09:26:59.9996Z", "27 9 14 3 *"),
        ("12-31T23:59:59.999999Z", "0 0 1 1 *"),
    ],
)
def test_a_sub_millisecond_fraction_rounds_up_too(
    adapter: Adapter, end_time: str, schedule: str
) -> None:
    """A job never fires before end_time, even by a fraction of a millisecond. PostgreSQL stores
    microseconds; SQLite stores milliseconds and rounds a finer fraction up (never down)."""
    end_time = f"{YEAR}-{end_time}"
    meeting_id = adapter.insert(end_time)
    assert adapter.jobs() == {job_name(meeting_id): schedule}
    given = datetime.fromisoformat(end_time.replace("Z", "+00:00"))
    stored = adapter.end_time(meeting_id)
    assert given <= stored < given + timedelta(milliseconds=1)
    assert expected_schedule(stored) == schedule
    result = adapter.backend.schedule(meeting_id, given + timedelta(days=1))
    assert result["job"]["schedule"] == expected_schedule(given + timedelta(days=1))
    assert adapter.jobs() == {job_name(meeting_id): expected_schedule(given + timedelta(days=1))}


@any_transition
@pytest.mark.parametrize(
    ("end_time", "schedule"),
    [
        ("03-14T09:26:00.0004Z", "27 9 14 3 *"),
        ("03-14T09:26:00.000001Z", "27 9 14 3 *"),
    ],
)
def test_a_sub_millisecond_fraction_never_schedules_the_job_early(
    adapter: Adapter, end_time: str, schedule: str
) -> None:
    """DESIGN.md: a job never fires before its time, even by a fraction of a millisecond."""
    assert_sub_millisecond_schedule(adapter, end_time, schedule)


@any_transition
@pytest.mark.parametrize(
    ("end_time", "schedule"),
    [
        ("03-14T09:26:59.9996Z", "27 9 14 3 *"),
        ("12-31T23:59:59.999999Z", "0 0 1 1 *"),
    ],
)
def test_a_sub_millisecond_fraction_before_the_minute_rounds_up_into_it(
    adapter: Adapter, end_time: str, schedule: str
) -> None:
    assert_sub_millisecond_schedule(adapter, end_time, schedule)


@pytest.mark.parametrize(
    "end_time",
    [
        "03-14T09:26:21.999987Z",  # rounds up into the next second
        "03-14T09:26:59.9996Z",  # ... into the next minute
        "03-14T23:59:59.99951+00:00",  # ... into the next day
        "03-14T09:26:21.0004Z",
        "03-14T15:00:01.9999+05:30",
    ],
)
def test_the_stored_end_time_is_never_before_the_one_written(
    adapter: Adapter, end_time: str
) -> None:
    """Written with plain SQL and more fraction digits than SQLite keeps, the end time is
    stored at or after the instant written (never a second early: revision 0013), and the job
    is that of the stored time."""
    end_time = f"{YEAR}-{end_time}"
    given = datetime.fromisoformat(end_time.replace("Z", "+00:00"))
    key = adapter.insert(end_time)
    stored = adapter.end_time(key)
    assert given <= stored < given + timedelta(milliseconds=1)
    assert adapter.jobs() == {adapter.t.job_name(key): expected_schedule(stored)}
    assert expected_schedule(stored) == expected_schedule(given)
    adapter.set_time(key, f"{YEAR}-03-15T08:00:00Z")
    adapter.set_time(key, end_time)  # the update path stores it the same way
    assert adapter.end_time(key) == stored


def assert_sub_millisecond_schedule(adapter: Adapter, end_time: str, schedule: str) -> None:
    end_time = f"{YEAR}-{end_time}"
    key = adapter.insert(end_time)
    given = datetime.fromisoformat(end_time.replace("Z", "+00:00"))
    stored = adapter.end_time(key)
    assert given <= stored < given + timedelta(milliseconds=1)
    assert adapter.jobs() == {adapter.t.job_name(key): schedule}


@any_transition
def test_insert_with_a_datetime_parameter(adapter: Adapter) -> None:
    end = future_on(7, 1, 16, 0, 1).astimezone(timezone(timedelta(hours=-4)))  # 12:00:01 there
    key = adapter.insert(end)
    assert adapter.jobs() == {adapter.t.job_name(key): "1 16 1 7 *"}


@any_transition
def test_move_keeps_one_job_with_the_new_schedule(adapter: Adapter) -> None:
    t = adapter.t
    key = adapter.insert(FUTURE)
    other = adapter.insert(FUTURE + timedelta(days=1))
    adapter.set_time(key, FUTURE + timedelta(hours=2, seconds=5))
    assert adapter.jobs() == {
        t.job_name(key): "27 11 14 3 *",
        t.job_name(other): expected_schedule(FUTURE + timedelta(days=1)),
    }
    # the same instant written in another offset changes nothing
    adapter.set_time(key, f"{YEAR}-03-14T13:26:05+02:00")
    assert adapter.jobs()[t.job_name(key)] == "27 11 14 3 *"
    assert adapter.status(key) == t.pending


@any_transition
def test_an_unrelated_update_leaves_the_job_alone(adapter: Adapter) -> None:
    key = adapter.insert(FUTURE)
    before = adapter.snapshot()[1]
    adapter.unrelated_update(key)
    assert adapter.snapshot()[1] == before


@any_transition
@pytest.mark.parametrize("new_status", ["done", "other"])
def test_status_change_removes_the_job_and_coming_back_restores_it(
    adapter: Adapter, new_status: str
) -> None:
    t = adapter.t
    state = t.done if new_status == "done" else t.other
    key = adapter.insert(FUTURE)
    adapter.set_state(key, state)
    assert adapter.status(key) == state
    assert adapter.jobs() == {}
    adapter.set_state(key, t.pending)
    assert adapter.jobs() == {t.job_name(key): expected_schedule(FUTURE)}


@any_transition
def test_delete_removes_the_job_and_keeps_the_others(adapter: Adapter) -> None:
    key = adapter.insert(FUTURE)
    other = adapter.insert(FUTURE + timedelta(minutes=1))
    adapter.delete(key)
    assert adapter.status(key) is None
    assert adapter.jobs() == {
        adapter.t.job_name(other): expected_schedule(FUTURE + timedelta(minutes=1))
    }


@any_transition
def test_past_end_time_on_insert_is_done_without_a_job(adapter: Adapter) -> None:
    key = adapter.insert(datetime.now(UTC) - timedelta(minutes=1))
    assert adapter.status(key) == adapter.t.done
    assert adapter.jobs() == {}


@any_transition
def test_moving_into_the_past_completes_at_once(adapter: Adapter) -> None:
    key = adapter.insert(FUTURE)
    adapter.set_time(key, datetime.now(UTC) - timedelta(seconds=5))
    assert adapter.status(key) == adapter.t.done
    assert adapter.jobs() == {}


@any_transition
@pytest.mark.parametrize("status", ["done", "other"])
def test_done_or_cancelled_on_insert_gets_no_job(adapter: Adapter, status: str) -> None:
    state = adapter.t.done if status == "done" else adapter.t.other
    key = adapter.insert(FUTURE, status=state)
    assert adapter.status(key) == state
    assert adapter.jobs() == {}


@any_transition
def test_bulk_insert_select_of_ten_thousand_rows_makes_ten_thousand_jobs(
    adapter: Adapter,
) -> None:
    # 37 s apart: the times fall at every second of the minute, so half of them round up.
    assert adapter.insert_select(10_000, FUTURE, 37) == 10_000
    jobs = adapter.jobs()
    assert len(jobs) == 10_000
    assert jobs == expected_jobs(adapter)
    assert len(set(jobs.values())) < 10_000  # several rows share a minute, each its own job


@any_transition
@pytest.mark.only_transitions("memberships")  # meetings cannot be removed
def test_removing_the_transition_removes_every_job(adapter: Adapter) -> None:
    assert adapter.insert_select(1500, FUTURE, 60) == 1500
    assert len(adapter.jobs()) == 1500
    before = adapter.snapshot()[0]
    result = adapter.backend.remove_transition(adapter.t.name)
    # where cron.unschedule is called per job (Supabase: cron.job read-only), at most 1000 per
    # transaction: the jobs left are removed by the reconcile job
    left = result.get("jobs_left", 0)
    assert result == {"name": adapter.t.name, "jobs_removed": 1500 - left} | (
        {"jobs_left": left} if left else {}
    )
    assert len(adapter.jobs()) == left
    if left:
        adapter.backend.reconcile()
    assert adapter.jobs() == {}
    assert adapter.snapshot()[0] == before  # the rows stay as they are


# -- a job firing -------------------------------------------------------------------------------


@any_transition
def test_a_job_before_its_end_time_changes_nothing(adapter: Adapter) -> None:
    key = adapter.insert(FUTURE)
    before = adapter.snapshot()
    assert adapter.run_job(key) == 0
    assert adapter.snapshot() == before


@any_transition
def test_a_job_after_its_end_time_completes_the_meeting_and_removes_its_job(
    adapter: Adapter,
) -> None:
    t = adapter.t
    key = adapter.insert(datetime.now(UTC) + timedelta(hours=1))
    later = adapter.insert(FUTURE)
    with adapter.held():
        with adapter.without_triggers():
            adapter.set_time(key, datetime.now(UTC) - timedelta(seconds=1))
        assert adapter.status(key) == t.pending
        assert t.job_name(key) in adapter.jobs()
        assert adapter.run_job(key) == 1
        assert adapter.status(key) == t.done
        assert adapter.status(later) == t.pending
        assert adapter.jobs() == {t.job_name(later): expected_schedule(FUTURE)}


@any_transition
def test_one_run_completes_every_meeting_already_due(adapter: Adapter) -> None:
    t = adapter.t
    first = adapter.insert(datetime.now(UTC) + timedelta(hours=1))
    second = adapter.insert(datetime.now(UTC) + timedelta(hours=1))
    later = adapter.insert(FUTURE)
    with adapter.held():
        with adapter.without_triggers():
            for key in (first, second):
                adapter.set_time(key, datetime.now(UTC) - timedelta(minutes=1))
        assert adapter.run_job(first) == 2
        assert [adapter.status(k) for k in (first, second, later)] == [t.done, t.done, t.pending]
        assert adapter.jobs() == {t.job_name(later): expected_schedule(FUTURE)}
        assert adapter.run_job(second) is None  # its job went with it


@any_transition
@pytest.mark.parametrize("change", ["status done", "deleted"])
def test_a_job_whose_meeting_is_no_longer_upcoming_removes_itself(
    adapter: Adapter, change: str
) -> None:
    t = adapter.t
    key = adapter.insert(FUTURE)
    with adapter.held():
        with adapter.without_triggers():
            if change == "deleted":
                adapter.delete(key)
            else:
                adapter.set_state(key, t.done)
        assert t.job_name(key) in adapter.jobs()
        assert adapter.run_job(key) == 0
        assert adapter.jobs() == {}
        assert adapter.status(key) == (None if change == "deleted" else t.done)


# -- recover and reconcile ----------------------------------------------------------------------


def break_the_state(adapter: Adapter) -> dict[str, Any]:
    """Every kind of damage recovery repairs, next to healthy rows. Expected repair: 8 pending;
    3 jobs right; 3 to schedule (2 missing, 1 stale); 2 overdue to complete (one with a job, one
    without); 2 orphan jobs (a done row's, a deleted row's)."""
    t = adapter.t
    ids: dict[str, Any] = {
        "healthy": [adapter.insert(FUTURE + timedelta(hours=i)) for i in range(3)],
        "moved": adapter.insert(FUTURE + timedelta(days=2)),
        "overdue_with_job": adapter.insert(FUTURE + timedelta(days=3)),
        "done_with_job": adapter.insert(FUTURE + timedelta(days=4)),
        "untouched": [adapter.insert(FUTURE, status=s) for s in (t.done, t.other)],
    }
    past = datetime.now(UTC) - timedelta(minutes=10)
    with adapter.without_triggers():
        ids["missing"] = [
            adapter.insert(FUTURE + timedelta(days=1, seconds=61 * i)) for i in range(2)
        ]
        ids["overdue_no_job"] = adapter.insert(past)
        adapter.set_time(ids["moved"], FUTURE + timedelta(days=5, seconds=30))
        adapter.set_time(ids["overdue_with_job"], past)
        adapter.set_state(ids["done_with_job"], t.done)
    ids["ghost"] = t.ghost_key()
    adapter.add_orphan_job(ids["ghost"])
    return ids


def assert_repaired(adapter: Adapter, ids: dict[str, Any]) -> None:
    t = adapter.t
    jobs = adapter.jobs()
    assert len(jobs) == 6
    assert jobs == expected_jobs(adapter)
    assert jobs[t.job_name(ids["moved"])] == expected_schedule(
        FUTURE + timedelta(days=5, seconds=30)
    )
    for key in ("overdue_with_job", "overdue_no_job", "done_with_job"):
        assert adapter.status(ids[key]) == t.done, key
    assert [adapter.status(i) for i in ids["untouched"]] == [t.done, t.other]


@any_transition
def test_recover_dry_run_then_repair_then_idempotent(adapter: Adapter) -> None:
    t, backend = adapter.t, adapter.backend
    with adapter.held():
        ids = break_the_state(adapter)
        broken = adapter.snapshot()
        assert backend.recover(dry_run=True, **t.scope) == t.report(8, 3, 3, 2, 2, dry_run=True)
        assert adapter.snapshot() == broken  # a dry run changes nothing
        assert backend.recover(**t.scope) == t.report(8, 3, 3, 2, 2)
        assert_repaired(adapter, ids)
        repaired = adapter.snapshot()
        assert backend.recover(**t.scope) == t.report(6, 0, 6, 0, 0)
        assert adapter.snapshot() == repaired
        assert backend.recover(dry_run=True, **t.scope) == t.report(6, 0, 6, 0, 0, dry_run=True)


@any_transition
def test_reconcile_removes_orphans_and_completes_overdue_meetings(adapter: Adapter) -> None:
    t, backend = adapter.t, adapter.backend
    with adapter.held():
        ids = break_the_state(adapter)
        # DESIGN.md: the reconcile job also deletes our run history older than the retention
        # (7 days by default); reconcile() reports how many rows it deleted as history_deleted.
        adapter.add_run(
            ids["healthy"][0], "succeeded", "old", datetime.now(UTC) - timedelta(days=8)
        )
        adapter.add_run(ids["healthy"][1], "succeeded", "recent", datetime.now(UTC))
        result = dict(backend.reconcile(**t.scope))
        result.pop("sweep", None)  # PostgreSQL also says how its seconds sweep stands
        assert result == t.reconcile_report(8, 3, 3, 2, 2, history=1)
        assert_repaired(adapter, ids)
        runs = backend.history(**t.scope)
        assert [r["return_message"] for r in runs if t.run_key(dict(r))] == ["recent"]
        again = dict(backend.reconcile(**t.scope))
        again.pop("sweep", None)
        assert again == t.reconcile_report(6, 0, 6, 0, 0, history=0)


@any_transition
def test_paused_registers_nothing_and_resume_recovers(adapter: Adapter) -> None:
    t, backend = adapter.t, adapter.backend
    assert backend.pause(**t.scope) == t.paused_report()
    key = adapter.insert(FUTURE)
    assert adapter.jobs() == {}
    assert backend.reconcile(**t.scope) == {"paused": True}
    assert adapter.jobs() == {}
    with pytest.raises(InvalidInput, match="paused"):
        backend.recover(**t.scope)
    assert backend.recover(dry_run=True, **t.scope) == t.report(1, 1, 0, 0, 0, dry_run=True)
    assert backend.resume(**t.scope) == t.report(1, 1, 0, 0, 0)
    assert adapter.jobs() == {t.job_name(key): expected_schedule(FUTURE)}


@any_transition
def test_list_jobs_of_the_transition_names_its_rows(adapter: Adapter) -> None:
    """list_jobs(transition=...) lists the transition's jobs, each with its transition, its
    row's key, time and state; an orphan's time and state are None."""
    t = adapter.t
    key = adapter.insert(FUTURE + timedelta(seconds=20))
    ghost = t.ghost_key()
    with adapter.held():
        adapter.add_orphan_job(ghost)
        jobs = adapter.backend.list_jobs(**t.scope)
    assert json.loads(json.dumps(jobs)) == jobs
    rows = {j["job_name"]: j for j in jobs if j["key"] is not None}
    assert set(rows) == {t.job_name(key), t.job_name(ghost)}
    assert {j["transition"] for j in jobs} == {t.name}
    job, orphan = rows[t.job_name(key)], rows[t.job_name(ghost)]
    assert list(job) == list(Job.__annotations__)
    assert (job["key"], job["schedule"], job["end_time"], job["meeting_status"]) == (
        str(key),
        expected_schedule(FUTURE + timedelta(seconds=20)),
        (FUTURE + timedelta(seconds=20)).isoformat(),
        t.pending,
    )
    assert (orphan["key"], orphan["end_time"], orphan["meeting_status"]) == (str(ghost), None, None)
    assert job["meeting_id"] == (str(key) if t.api is None else None)


# -- bad input ----------------------------------------------------------------------------------

BAD_END_TIMES = [
    pytest.param(None, "the time column", id="null"),
    pytest.param("not a time", None, id="unparsable text"),
    pytest.param("2031-02-30T10:00:00Z", None, id="30 February"),
    pytest.param("2031-03-14T25:00:00Z", None, id="hour 25"),
    pytest.param(20310314, None, id="a number"),
]


@any_transition
@pytest.mark.parametrize(("end_time", "mentions"), BAD_END_TIMES)
def test_bad_end_time_is_rejected_and_nothing_changes(
    adapter: Adapter, end_time: Any, mentions: str | None
) -> None:
    existing = adapter.insert(FUTURE)
    before = adapter.snapshot()
    with pytest.raises(Rejected) as insert_error:
        adapter.insert(end_time)
    with pytest.raises(Rejected) as update_error:
        adapter.set_time(existing, end_time)
    # one bad row rejects the whole statement
    with pytest.raises(Rejected):
        adapter.insert_rows([(FUTURE + timedelta(days=1), None), (end_time, None)])
    assert adapter.snapshot() == before
    if mentions:
        mentions = adapter.t.time_column  # the error names the column
        assert mentions in str(insert_error.value) and mentions in str(update_error.value)


@pytest.mark.parametrize("status", ["postponed", "Upcoming", ""])
def test_unknown_status_is_rejected_and_nothing_changes(adapter: Adapter, status: str) -> None:
    existing = adapter.insert(FUTURE)
    before = adapter.snapshot()
    with pytest.raises(Rejected, match="status"):
        adapter.insert(FUTURE, status=status)
    with pytest.raises(Rejected, match="status"):
        adapter.set_state(existing, status)
    assert adapter.snapshot() == before


# -- schedule and cancel through the Backend protocol --------------------------------------------


def assert_job_shape(job: Any) -> None:
    assert isinstance(job, dict) and set(job) == set(Job.__annotations__)


def test_schedule_moves_the_job_and_reports_it(adapter: Adapter) -> None:
    meeting_id = adapter.insert(FUTURE)
    new_end = datetime(YEAR, 3, 14, 15, 0, 1, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    result = adapter.backend.schedule(meeting_id, new_end)
    assert set(result) == {"meeting_id", "status", "job"}
    assert str(result["meeting_id"]) == meeting_id and result["status"] == "upcoming"
    assert_job_shape(result["job"])
    job = result["job"]
    assert (job["job_name"], job["schedule"], job["meeting_id"]) == (
        job_name(meeting_id),
        "31 9 14 3 *",
        meeting_id,
    )
    assert job["end_time"] == new_end.astimezone(UTC).isoformat()
    assert job["meeting_status"] == "upcoming" and job["active"] is True
    assert adapter.jobs() == {job_name(meeting_id): "31 9 14 3 *"}
    assert adapter.end_time(meeting_id) == new_end


def test_schedule_into_the_past_completes_the_meeting(adapter: Adapter) -> None:
    meeting_id = adapter.insert(FUTURE)
    result = adapter.backend.schedule(meeting_id, datetime.now(UTC) - timedelta(minutes=1))
    assert (result["status"], result["job"]) == ("done", None)
    assert adapter.status(meeting_id) == "done" and adapter.jobs() == {}


def test_schedule_refuses_bad_requests(adapter: Adapter) -> None:
    done = adapter.insert(FUTURE, status="done")
    before = adapter.snapshot()
    with pytest.raises(MeetingNotFound):
        adapter.backend.schedule(ghost_id(), FUTURE)
    with pytest.raises(InvalidInput):
        adapter.backend.schedule(done, FUTURE)
    with pytest.raises(InvalidInput):
        adapter.backend.schedule(done, FUTURE.replace(tzinfo=None))
    assert adapter.snapshot() == before


def test_cancel_removes_the_job(adapter: Adapter) -> None:
    meeting_id = adapter.insert(FUTURE)
    assert adapter.backend.cancel(meeting_id) == {
        "meeting_id": meeting_id,
        "status": "cancelled",
        "jobs_removed": 1,
    }
    assert adapter.status(meeting_id) == "cancelled" and adapter.jobs() == {}
    # again: a cancelled meeting is not upcoming, and the error says so
    before = adapter.snapshot()
    with pytest.raises(InvalidInput) as refused:
        adapter.backend.cancel(meeting_id)
    assert refused.value.message == (
        f"meeting {meeting_id} is cancelled, not upcoming: nothing to cancel"
    )
    assert adapter.snapshot() == before


def test_cancel_of_a_done_meeting_is_refused_and_changes_nothing(adapter: Adapter) -> None:
    """Cancelling a meeting that is not upcoming is an error naming its status, with what to do;
    nothing changes, not even a stray job (the reconcile job removes that)."""
    meeting_id = adapter.insert(FUTURE)
    with adapter.held():
        with adapter.without_triggers():
            adapter.set_state(meeting_id, "done")
        assert job_name(meeting_id) in adapter.jobs()
        before = adapter.snapshot()
        with pytest.raises(InvalidInput) as refused, adapter.savepoint():
            adapter.backend.cancel(meeting_id)
        assert refused.value.message == (
            f"meeting {meeting_id} is done, not upcoming: nothing to cancel"
        )
        assert "Only a meeting in status upcoming can be cancelled" in (refused.value.hint or "")
        assert adapter.snapshot() == before
        assert job_name(meeting_id) in adapter.jobs()


def test_cancel_of_an_unknown_meeting(adapter: Adapter) -> None:
    with pytest.raises(MeetingNotFound):
        adapter.backend.cancel(ghost_id())


def test_an_id_that_is_not_a_uuid_is_no_meetings_id(adapter: Adapter) -> None:
    """Every backend raises MeetingNotFound for an id no meeting can have, and changes nothing."""
    meeting_id = adapter.insert(FUTURE)
    before = adapter.snapshot()
    with pytest.raises(MeetingNotFound, match="no meeting with id abc"):
        adapter.backend.cancel("abc")
    with pytest.raises(MeetingNotFound, match="no meeting with id abc"):
        adapter.backend.schedule("abc", FUTURE)
    assert adapter.snapshot() == before and adapter.status(meeting_id) == "upcoming"


# -- list_jobs and history: the same JSON on both ----------------------------------------------

JOB_TYPES = {
    "meeting": {
        "meeting_id": str,
        "job_id": int,
        "job_name": str,
        "schedule": str,
        "next_run": str,
        "end_time": str,
        "meeting_status": str,
        "active": bool,
        "transition": str,
        "key": str,
        "registered_at": type(None),
    },
    "reconcile": {
        "meeting_id": type(None),
        "job_id": int,
        "job_name": str,
        "schedule": str,
        "next_run": str,
        "end_time": type(None),
        "meeting_status": type(None),
        "active": bool,
        "transition": str,
        "key": type(None),
        "registered_at": type(None),
    },
    "orphan": {
        "meeting_id": str,
        "job_id": int,
        "job_name": str,
        "schedule": str,
        "next_run": str,
        "end_time": type(None),
        "meeting_status": type(None),
        "active": bool,
        "transition": str,
        "key": str,
        "registered_at": type(None),
    },
}


def next_new_year(after: datetime) -> datetime:
    candidate = datetime(after.year, 1, 1, tzinfo=UTC)
    return candidate if candidate >= after else datetime(after.year + 1, 1, 1, tzinfo=UTC)


def test_list_jobs_json_shape(adapter: Adapter) -> None:
    soon = minute_ceiling(datetime.now(UTC)) + timedelta(hours=3, seconds=20)
    meeting_id = adapter.insert(soon)
    ghost = ghost_id()
    with adapter.held():
        adapter.add_orphan_job(ghost, "0 0 1 1 *")
        before = datetime.now(UTC)
        jobs = adapter.backend.list_jobs()
        after = datetime.now(UTC)
    assert json.loads(json.dumps(jobs)) == jobs
    by_name = {job["job_name"]: job for job in jobs}
    assert set(by_name) == {"meeting-status-reconcile", job_name(meeting_id), job_name(ghost)}
    kinds = {
        "meeting-status-reconcile": "reconcile",
        job_name(meeting_id): "meeting",
        job_name(ghost): "orphan",
    }
    for name, kind in kinds.items():
        job = by_name[name]
        assert list(job) == list(Job.__annotations__)
        assert {k: type(v) for k, v in job.items()} == JOB_TYPES[kind], name
        assert job["active"] is True
    meeting = by_name[job_name(meeting_id)]
    assert meeting["meeting_id"] == meeting["key"] == meeting_id
    assert {j["transition"] for j in jobs} == {"meetings"}
    assert meeting["schedule"] == expected_schedule(soon)
    assert meeting["next_run"] == minute_ceiling(soon).isoformat()
    assert meeting["end_time"] == soon.isoformat()
    assert meeting["meeting_status"] == "upcoming"
    reconcile = by_name["meeting-status-reconcile"]
    assert reconcile["schedule"] == "* * * * *"
    assert reconcile["next_run"] in {
        minute_ceiling(before).isoformat(),
        minute_ceiling(after).isoformat(),
    }
    orphan = by_name[job_name(ghost)]
    assert orphan["meeting_id"] == ghost
    assert orphan["next_run"] == next_new_year(minute_ceiling(before)).isoformat()
    # ordered by next run, then name
    assert [j["job_name"] for j in jobs] == [
        j["job_name"] for j in sorted(jobs, key=lambda j: (j["next_run"], j["job_name"]))
    ]


def test_list_jobs_json_shape_of_a_row_beyond_the_horizon(adapter: Adapter) -> None:
    """A pending row beyond the job horizon is listed after the jobs, with no job id and no
    active flag, the job it will get and when it gets it."""
    adapter.backend.set_job_horizon("1d")
    far = minute_ceiling(datetime.now(UTC)) + timedelta(days=3, seconds=20)
    meeting_id = adapter.insert(far)
    jobs = adapter.backend.list_jobs()
    assert json.loads(json.dumps(jobs)) == jobs
    (row,) = [j for j in jobs if j["key"] == meeting_id]
    assert list(row) == list(Job.__annotations__)
    assert {k: type(v) for k, v in row.items()} == {
        **JOB_TYPES["meeting"],
        "job_id": type(None),
        "active": type(None),
        "registered_at": str,
    }
    assert row["job_name"] == job_name(meeting_id)
    assert row["schedule"] == expected_schedule(far)
    assert row["next_run"] == minute_ceiling(far).isoformat()
    assert row["registered_at"] == (far - timedelta(days=1)).isoformat()
    assert jobs[-1] == row  # after the jobs


def test_history_json_shape(adapter: Adapter) -> None:
    meeting_id = adapter.insert(FUTURE)
    token = uuid.uuid4().hex
    now = datetime.now(UTC).replace(microsecond=0)
    with adapter.held():
        adapter.add_run(meeting_id, "succeeded", f"ok {token}", now - timedelta(minutes=3))
        adapter.add_run(meeting_id, "failed", f"boom {token}", now - timedelta(minutes=2))
        adapter.add_run(meeting_id, "failed", "job canceled", now - timedelta(minutes=1))
        adapter.add_run(None, "succeeded", f"reconcile {token}", now)
        runs = adapter.backend.history()
        failed = adapter.backend.history(failed_only=True)
    assert json.loads(json.dumps(runs)) == runs
    ours = [r for r in runs if token in (r["return_message"] or "") or r["meeting_id"]]
    assert [(r["job_name"], r["meeting_id"], r["status"], r["return_message"]) for r in ours] == [
        ("meeting-status-reconcile", None, "succeeded", f"reconcile {token}"),
        (job_name(meeting_id), meeting_id, "canceled", "job canceled"),
        (job_name(meeting_id), meeting_id, "failed", f"boom {token}"),
        (job_name(meeting_id), meeting_id, "succeeded", f"ok {token}"),
    ]
    for run in ours:
        assert list(run) == list(Run.__annotations__)
        assert isinstance(run["run_id"], int) and isinstance(run["job_id"], int)
        assert isinstance(run["start_time"], str) and isinstance(run["end_time"], str)
    assert ours[-1]["start_time"] == (now - timedelta(minutes=3)).isoformat()
    assert [r["return_message"] for r in failed if token in (r["return_message"] or "")] == [
        f"boom {token}"
    ]
    with pytest.raises(InvalidInput):
        adapter.backend.history(limit=0)


def test_recover_report_json_shape(adapter: Adapter) -> None:
    adapter.insert(FUTURE)
    result = adapter.backend.recover(dry_run=True)
    # beyond_horizon only with a job horizon (none here)
    keys = set(RecoverReport.__annotations__) - {"beyond_horizon"}
    assert set(result) == keys
    assert {k: type(v) for k, v in result.items()} == {
        **{k: int for k in keys},
        "errors": list,
        "success": bool,
        "dry_run": bool,
    }
    assert json.loads(json.dumps(result)) == result


def test_a_deactivated_job_stays_inactive(adapter: Adapter) -> None:
    """An operator's deactivation is kept, as cron.schedule keeps it: moving the meeting updates
    the schedule only, and recovery counts the job as existing."""
    meeting_id = adapter.insert(FUTURE)
    with adapter.held():
        adapter.set_job_active(meeting_id, False)
        adapter.set_time(meeting_id, FUTURE + timedelta(hours=1))
        assert adapter.jobs() == {
            job_name(meeting_id): expected_schedule(FUTURE + timedelta(hours=1))
        }
        [job] = [j for j in adapter.backend.list_jobs() if j["meeting_id"] == meeting_id]
        assert job["active"] is False
        assert adapter.backend.recover() == report(1, 0, 1, 0, 0)
        assert adapter.job_active(meeting_id) is False


# -- completion events, webhook delivery state, metrics ------------------------------------------


@any_transition
def test_each_completion_records_one_event_with_its_path_and_lateness(adapter: Adapter) -> None:
    """A row's job run, recover and a write with a time already past each record one event of
    the row's transition; an application giving a row the to-state itself records none."""
    t = adapter.t
    by_job, by_recover, by_app = (adapter.insert(FUTURE) for _ in range(3))
    # whole milliseconds: what SQLite keeps of an end time (the triggers, bypassed here, round up)
    past = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=3)
    with adapter.held():
        with adapter.without_triggers():
            adapter.set_time(by_job, past)
        assert adapter.run_job(by_job) == 1
        with adapter.without_triggers():
            adapter.set_time(by_recover, past)
        assert adapter.backend.recover(**t.scope)["overdue_completed"] == 1
        # whole milliseconds again: SQLite's events keep milliseconds of another transition's
        # time, which the triggers never rewrite
        by_write = adapter.insert(past - timedelta(seconds=30))
        adapter.set_state(by_app, t.done)
    events = adapter.backend.events(**t.scope)
    assert [(e["transition"], e["key"], e["path"]) for e in events] == [
        (t.name, str(by_write), "write"),
        (t.name, str(by_recover), "recover"),
        (t.name, str(by_job), "job"),
    ]
    for event in events:
        # a meeting's event names the meeting; another transition's row only by its key
        assert event["meeting_id"] == (event["key"] if t.name == "meetings" else None)
        completed = datetime.fromisoformat(event["completed_at"])
        ended = datetime.fromisoformat(event["end_time"])
        assert ended == adapter.end_time(t.key_type(event["key"]))
        assert event["lateness_seconds"] == pytest.approx((completed - ended).total_seconds())
        assert event["lateness_seconds"] >= 0
        assert (event["delivery"], event["attempts"], event["last_error"]) == (None, 0, None)
        assert str(uuid.UUID(event["event_key"])) == event["event_key"]
    assert [e["path"] for e in adapter.backend.events(limit=1, **t.scope)] == ["write"]
    assert [e["key"] for e in adapter.backend.events(path="job", **t.scope)] == [str(by_job)]
    completions = adapter.backend.metrics(**t.scope)["completions"]
    assert {path: n for path, n in completions.items() if n} == {"job": 1, "recover": 1, "write": 1}
    with pytest.raises(InvalidInput, match="unknown completion path"):
        adapter.backend.events(path="cron")


def test_webhook_delivery_state_on_both_backends(adapter: Adapter) -> None:
    """Claimed once until the lease lapses, retried later, delivered once and for all."""
    assert adapter.backend.set_webhooks(True) == {"webhooks": True}
    first, second = adapter.insert(FUTURE), adapter.insert(FUTURE)
    with adapter.held():
        with adapter.without_triggers():
            for meeting_id in (first, second):
                adapter.set_time(meeting_id, datetime.now(UTC) - timedelta(seconds=1))
        assert adapter.run_job(first) == 2
    claimed = adapter.backend.claim_events(limit=10, lease_seconds=60)
    assert sorted(e["meeting_id"] for e in claimed) == sorted([first, second])
    assert {(e["delivery"], e["attempts"]) for e in claimed} == {("pending", 1)}
    assert adapter.backend.claim_events(limit=10, lease_seconds=60) == []  # leased
    a, b = (e["event_id"] for e in claimed)
    assert adapter.backend.record_attempt(a, outcome="delivered", status_code=200)
    assert adapter.backend.record_attempt(b, outcome="retry", status_code=500, retry_in_seconds=0)
    assert not adapter.backend.record_attempt(a, outcome="retry", retry_in_seconds=0)
    again = adapter.backend.claim_events(limit=10, lease_seconds=60)
    assert [(e["event_id"], e["attempts"]) for e in again] == [(b, 2)]
    assert adapter.backend.record_attempt(b, outcome="failed", status_code=410, error="gone")
    state = {e["event_id"]: (e["delivery"], e["last_error"]) for e in adapter.backend.events()}
    assert state == {a: ("delivered", None), b: ("failed", "gone")}
    webhooks = adapter.backend.metrics()["webhooks"]
    assert {k: webhooks[k] for k in ("enabled", "delivered", "failed", "attempt_failures")} == {
        "enabled": True,
        "delivered": 1,
        "failed": 1,
        "attempt_failures": 3,
    }
    assert webhooks["backlog"] == 0


def test_metrics_json_shape(adapter: Adapter) -> None:
    adapter.insert(FUTURE)
    adapter.insert(datetime.now(UTC) - timedelta(seconds=7))
    metrics = adapter.backend.metrics()
    # revision 0009's gauges (rows failing to complete, the reconcile job's runs failed or
    # skipped in a row): 0 for a database that does not report them yet
    later = {"failing_rows", "reconcile_skipped_in_a_row", "reconcile_failed_in_a_row"}
    assert set(metrics) - later == {
        "backend", "enabled", "upcoming_meetings", "jobs", "missing_jobs", "orphan_jobs",
        "overdue_meetings", "completions", "lateness", "failed_runs", "retried_runs", "webhooks",
        "job_horizon_seconds", "beyond_horizon",
    }  # fmt: skip
    assert all(metrics.get(key, 0) == 0 for key in later)
    assert (metrics["job_horizon_seconds"], metrics["beyond_horizon"]) == (None, 0)
    assert metrics["backend"] == adapter.name
    assert (metrics["upcoming_meetings"], metrics["jobs"], metrics["overdue_meetings"]) == (1, 1, 0)
    assert metrics["completions"] == {
        "job": 0, "sweep": 0, "waker": 0, "reconcile": 0, "recover": 0, "write": 1,
    }  # fmt: skip
    bounds = [le for le, _ in metrics["lateness"]["buckets"]]
    assert bounds == [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 3600]
    counts = dict(metrics["lateness"]["buckets"])
    assert (counts[2], counts[5], counts[10], metrics["lateness"]["count"]) == (0, 0, 1, 1)
    assert set(metrics["webhooks"]) == {
        "enabled", "delivered", "failed", "attempt_failures", "backlog", "oldest_pending_seconds",
    }  # fmt: skip
    assert json.loads(json.dumps(metrics)) == metrics


# -- the job horizon (issue 25): a pending row gets its job once its time is within it ------------

SHORT = "1 day"
sets_horizon = pytest.mark.sets_horizon


def hours_ahead(hours: float) -> datetime:
    return (datetime.now(UTC) + timedelta(hours=hours)).replace(microsecond=0)


def deferred(adapter: Adapter) -> list[Job]:
    """The rows list_jobs shows beyond the horizon (no job yet)."""
    return [j for j in adapter.backend.list_jobs(**adapter.t.scope) if j["registered_at"]]


@any_transition
@sets_horizon
def test_a_row_beyond_the_horizon_has_no_job_until_it_enters_it(adapter: Adapter) -> None:
    t, backend = adapter.t, adapter.backend
    backend.set_job_horizon(SHORT)
    near = adapter.insert(hours_ahead(2))
    far = adapter.insert(hours_ahead(72))
    assert adapter.jobs() == {t.job_name(near): expected_schedule(adapter.end_time(near))}
    (row,) = deferred(adapter)
    assert (row["key"], row["job_id"], row["job_name"]) == (str(far), None, t.job_name(far))
    registered_at = datetime.fromisoformat(str(row["registered_at"]))
    assert registered_at == adapter.end_time(far) - timedelta(days=1)
    report = backend.recover(**t.scope)
    assert report.get("beyond_horizon") == 1 and report["jobs_scheduled"] == 0
    assert report["orphans_removed"] == 0
    # the row enters the horizon (here: the horizon grows past it) and the reconcile job
    # registers it
    backend.set_job_horizon("4 days")
    reconciled = backend.reconcile(**t.scope)
    assert reconciled.get("beyond_horizon") == 0 and reconciled.get("jobs_scheduled") == 1
    assert adapter.jobs() == expected_jobs(adapter)
    assert deferred(adapter) == []


@any_transition
@sets_horizon
def test_a_row_moved_beyond_the_horizon_loses_its_job_and_gets_it_back(adapter: Adapter) -> None:
    t = adapter.t
    adapter.backend.set_job_horizon(SHORT)
    key = adapter.insert(hours_ahead(2))
    other = adapter.insert(hours_ahead(5))
    adapter.set_time(key, hours_ahead(72))
    assert adapter.jobs() == {t.job_name(other): expected_schedule(adapter.end_time(other))}
    adapter.set_time(key, hours_ahead(3))
    assert adapter.jobs() == expected_jobs(adapter)
    assert set(adapter.jobs()) == {t.job_name(key), t.job_name(other)}


@any_transition
@sets_horizon
def test_deleting_a_row_beyond_the_horizon_leaves_the_other_jobs(adapter: Adapter) -> None:
    t = adapter.t
    adapter.backend.set_job_horizon(SHORT)
    near = adapter.insert(hours_ahead(2))
    far = adapter.insert(hours_ahead(72))
    adapter.delete(far)
    assert adapter.jobs() == {t.job_name(near): expected_schedule(adapter.end_time(near))}
    assert deferred(adapter) == []


@any_transition
@sets_horizon
def test_pause_across_the_horizon_then_resume_registers_the_rows_within_only(
    adapter: Adapter,
) -> None:
    t, backend = adapter.t, adapter.backend
    backend.set_job_horizon(SHORT)
    backend.pause(**t.scope)
    near = adapter.insert(hours_ahead(2))
    far = adapter.insert(hours_ahead(72))
    assert adapter.jobs() == {}
    resumed = backend.resume(**t.scope)
    assert resumed.get("jobs_scheduled") == 1 and resumed.get("beyond_horizon") == 1
    assert adapter.jobs() == {t.job_name(near): expected_schedule(adapter.end_time(near))}
    assert [r["key"] for r in deferred(adapter)] == [str(far)]


@any_transition
@sets_horizon
def test_a_shorter_horizon_removes_the_jobs_beyond_it_at_the_next_reconcile(
    adapter: Adapter,
) -> None:
    t, backend = adapter.t, adapter.backend
    near = adapter.insert(hours_ahead(2))
    far = adapter.insert(hours_ahead(72))
    assert set(adapter.jobs()) == {t.job_name(near), t.job_name(far)}
    backend.set_job_horizon(SHORT)
    reconciled = backend.reconcile(**t.scope)
    assert reconciled.get("orphans_removed") == 1 and reconciled.get("beyond_horizon") == 1
    assert set(adapter.jobs()) == {t.job_name(near)}
    backend.set_job_horizon(None)
    assert backend.reconcile(**t.scope).get("jobs_scheduled") == 1
    assert adapter.jobs() == expected_jobs(adapter)
