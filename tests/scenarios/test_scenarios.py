"""Behaviour scenarios written once, run against PostgreSQL and SQLite (see conftest.py).

A difference between the backends is a bug unless /DESIGN.md names it. Every scenario that
breaks the state on purpose does so inside ``adapter.held()``: on PostgreSQL the reconcile job
(every minute) can then neither see nor repair it before the scenario has measured it.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pg_helpers import expected_schedule
from scenario_adapters import Adapter, Rejected, ghost_id, job_name

from scheduler_admin.backends.base import Job, RecoverReport, Run
from scheduler_admin.exceptions import InvalidInput, MeetingNotFound

UTC = timezone.utc
FUTURE = datetime(2031, 3, 14, 9, 26, 0, tzinfo=UTC)


def report(
    total: int, scheduled: int, exist: int, overdue: int, orphans: int, *, dry_run: bool = False
) -> dict[str, Any]:
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
    """What the jobs must be, from the meetings alone: one per upcoming meeting."""
    return {job_name(i): expected_schedule(end) for i, end in adapter.upcoming().items()}


# -- the triggers: insert, move, status change, delete, past end time ---------------------------


@pytest.mark.parametrize(
    ("end_time", "schedule"),
    [
        ("2031-03-14T09:26:00Z", "26 9 14 3 *"),  # exactly on the minute: stays in it
        ("2031-03-14T09:26:01Z", "27 9 14 3 *"),  # one second later: rounds up
        ("2031-03-14T09:26:00.001+00:00", "27 9 14 3 *"),
        ("2031-03-14T09:26:59.999+00:00", "27 9 14 3 *"),
        ("2031-03-14T15:00:01+05:30", "31 9 14 3 *"),  # offsets are converted to UTC
        ("2031-03-15T01:00:00+05:30", "30 19 14 3 *"),  # ... across the day boundary
        ("2031-03-13T22:59:30-11:00", "0 10 14 3 *"),
        ("2031-12-31T23:59:30Z", "0 0 1 1 *"),  # rounding up across the year end
    ],
)
def test_insert_registers_one_job_with_name_and_utc_schedule(
    adapter: Adapter, end_time: str, schedule: str
) -> None:
    meeting_id = adapter.insert(end_time)
    assert adapter.status(meeting_id) == "upcoming"
    assert adapter.jobs() == {job_name(meeting_id): schedule}
    # the stored end time is the same instant, and the independent rule agrees
    stored = adapter.end_time(meeting_id)
    assert stored == datetime.fromisoformat(end_time.replace("Z", "+00:00"))
    assert expected_schedule(stored) == schedule


@pytest.mark.parametrize(
    ("end_time", "schedule"),
    [
        ("2031-03-14T09:26:00.0004Z", "27 9 14 3 *"),
        ("2031-03-14T09:26:00.000001Z", "27 9 14 3 *"),
        ("2031-03-14T09:26:59.9996Z", "27 9 14 3 *"),
        ("2031-12-31T23:59:59.999999Z", "0 0 1 1 *"),
    ],
)
def test_a_sub_millisecond_fraction_rounds_up_too(
    adapter: Adapter, end_time: str, schedule: str
) -> None:
    """A job never fires before end_time, even by a fraction of a millisecond. PostgreSQL stores
    microseconds; SQLite stores milliseconds and rounds a finer fraction up (never down)."""
    meeting_id = adapter.insert(end_time)
    assert adapter.jobs() == {job_name(meeting_id): schedule}
    given = datetime.fromisoformat(end_time.replace("Z", "+00:00"))
    stored = adapter.end_time(meeting_id)
    assert given <= stored < given + timedelta(milliseconds=1)
    assert expected_schedule(stored) == schedule
    result = adapter.backend.schedule(meeting_id, given + timedelta(days=1))
    assert result["job"]["schedule"] == expected_schedule(given + timedelta(days=1))
    assert adapter.jobs() == {job_name(meeting_id): expected_schedule(given + timedelta(days=1))}


def test_insert_with_a_datetime_parameter(adapter: Adapter) -> None:
    end = datetime(2031, 7, 1, 12, 0, 1, tzinfo=timezone(timedelta(hours=-4)))
    meeting_id = adapter.insert(end)
    assert adapter.jobs() == {job_name(meeting_id): "1 16 1 7 *"}


def test_move_keeps_one_job_with_the_new_schedule(adapter: Adapter) -> None:
    meeting_id = adapter.insert(FUTURE)
    other = adapter.insert(FUTURE + timedelta(days=1))
    adapter.update(meeting_id, end_time=FUTURE + timedelta(hours=2, seconds=5))
    assert adapter.jobs() == {
        job_name(meeting_id): "27 11 14 3 *",
        job_name(other): expected_schedule(FUTURE + timedelta(days=1)),
    }
    # the same instant written in another offset changes nothing
    adapter.update(meeting_id, end_time="2031-03-14T13:26:05+02:00")
    assert adapter.jobs()[job_name(meeting_id)] == "27 11 14 3 *"
    assert adapter.status(meeting_id) == "upcoming"


def test_an_unrelated_update_leaves_the_job_alone(adapter: Adapter) -> None:
    meeting_id = adapter.insert(FUTURE)
    before = adapter.snapshot()[1]
    adapter.update(meeting_id, title="renamed")
    assert adapter.snapshot()[1] == before


@pytest.mark.parametrize("new_status", ["done", "cancelled"])
def test_status_change_removes_the_job_and_coming_back_restores_it(
    adapter: Adapter, new_status: str
) -> None:
    meeting_id = adapter.insert(FUTURE)
    adapter.update(meeting_id, status=new_status)
    assert adapter.status(meeting_id) == new_status
    assert adapter.jobs() == {}
    adapter.update(meeting_id, status="upcoming")
    assert adapter.jobs() == {job_name(meeting_id): expected_schedule(FUTURE)}


def test_delete_removes_the_job_and_keeps_the_others(adapter: Adapter) -> None:
    meeting_id = adapter.insert(FUTURE)
    other = adapter.insert(FUTURE + timedelta(minutes=1))
    adapter.delete(meeting_id)
    assert adapter.status(meeting_id) is None
    assert adapter.jobs() == {job_name(other): expected_schedule(FUTURE + timedelta(minutes=1))}


def test_past_end_time_on_insert_is_done_without_a_job(adapter: Adapter) -> None:
    meeting_id = adapter.insert(datetime.now(UTC) - timedelta(minutes=1))
    assert adapter.status(meeting_id) == "done"
    assert adapter.jobs() == {}


def test_moving_into_the_past_completes_at_once(adapter: Adapter) -> None:
    meeting_id = adapter.insert(FUTURE)
    adapter.update(meeting_id, end_time=datetime.now(UTC) - timedelta(seconds=5))
    assert adapter.status(meeting_id) == "done"
    assert adapter.jobs() == {}


@pytest.mark.parametrize("status", ["done", "cancelled"])
def test_done_or_cancelled_on_insert_gets_no_job(adapter: Adapter, status: str) -> None:
    meeting_id = adapter.insert(FUTURE, status=status)
    assert adapter.status(meeting_id) == status
    assert adapter.jobs() == {}


def test_bulk_insert_select_of_ten_thousand_rows_makes_ten_thousand_jobs(
    adapter: Adapter,
) -> None:
    # 37 s apart: the end times fall at every second of the minute, so half of them round up.
    assert adapter.insert_select(10_000, FUTURE, 37) == 10_000
    jobs = adapter.jobs()
    assert len(jobs) == 10_000
    assert jobs == expected_jobs(adapter)
    assert len(set(jobs.values())) < 10_000  # several meetings share a minute, each its own job


# -- a job firing -------------------------------------------------------------------------------


def test_a_job_before_its_end_time_changes_nothing(adapter: Adapter) -> None:
    meeting_id = adapter.insert(FUTURE)
    before = adapter.snapshot()
    assert adapter.run_job(meeting_id) == 0
    assert adapter.snapshot() == before


def test_a_job_after_its_end_time_completes_the_meeting_and_removes_its_job(
    adapter: Adapter,
) -> None:
    meeting_id = adapter.insert(datetime.now(UTC) + timedelta(hours=1))
    later = adapter.insert(FUTURE)
    with adapter.held():
        with adapter.without_triggers():
            adapter.update(meeting_id, end_time=datetime.now(UTC) - timedelta(seconds=1))
        assert adapter.status(meeting_id) == "upcoming"
        assert job_name(meeting_id) in adapter.jobs()
        assert adapter.run_job(meeting_id) == 1
        assert adapter.status(meeting_id) == "done"
        assert adapter.status(later) == "upcoming"
        assert adapter.jobs() == {job_name(later): expected_schedule(FUTURE)}


def test_one_run_completes_every_meeting_already_due(adapter: Adapter) -> None:
    first = adapter.insert(datetime.now(UTC) + timedelta(hours=1))
    second = adapter.insert(datetime.now(UTC) + timedelta(hours=1))
    later = adapter.insert(FUTURE)
    with adapter.held():
        with adapter.without_triggers():
            for meeting_id in (first, second):
                adapter.update(meeting_id, end_time=datetime.now(UTC) - timedelta(minutes=1))
        assert adapter.run_job(first) == 2
        assert [adapter.status(i) for i in (first, second, later)] == ["done", "done", "upcoming"]
        assert adapter.jobs() == {job_name(later): expected_schedule(FUTURE)}
        assert adapter.run_job(second) is None  # its job went with it


@pytest.mark.parametrize("change", ["status done", "deleted"])
def test_a_job_whose_meeting_is_no_longer_upcoming_removes_itself(
    adapter: Adapter, change: str
) -> None:
    meeting_id = adapter.insert(FUTURE)
    with adapter.held():
        with adapter.without_triggers():
            if change == "deleted":
                adapter.delete(meeting_id)
            else:
                adapter.update(meeting_id, status="done")
        assert job_name(meeting_id) in adapter.jobs()
        assert adapter.run_job(meeting_id) == 0
        assert adapter.jobs() == {}
        assert adapter.status(meeting_id) == (None if change == "deleted" else "done")


# -- recover and reconcile ----------------------------------------------------------------------


def break_the_state(adapter: Adapter) -> dict[str, Any]:
    """Every kind of damage recovery repairs, next to healthy meetings. Expected repair:
    8 upcoming; 3 jobs right; 3 to schedule (2 missing, 1 stale); 2 overdue to complete (one
    with a job, one without); 2 orphan jobs (a done meeting's, a deleted meeting's)."""
    ids: dict[str, Any] = {
        "healthy": [adapter.insert(FUTURE + timedelta(hours=i)) for i in range(3)],
        "moved": adapter.insert(FUTURE + timedelta(days=2)),
        "overdue_with_job": adapter.insert(FUTURE + timedelta(days=3)),
        "done_with_job": adapter.insert(FUTURE + timedelta(days=4)),
        "untouched": [adapter.insert(FUTURE, status=s) for s in ("done", "cancelled")],
    }
    past = datetime.now(UTC) - timedelta(minutes=10)
    with adapter.without_triggers():
        ids["missing"] = [
            adapter.insert(FUTURE + timedelta(days=1, seconds=61 * i)) for i in range(2)
        ]
        ids["overdue_no_job"] = adapter.insert(past)
        adapter.update(ids["moved"], end_time=FUTURE + timedelta(days=5, seconds=30))
        adapter.update(ids["overdue_with_job"], end_time=past)
        adapter.update(ids["done_with_job"], status="done")
    ids["ghost"] = ghost_id()
    adapter.add_orphan_job(ids["ghost"])
    return ids


def assert_repaired(adapter: Adapter, ids: dict[str, Any]) -> None:
    jobs = adapter.jobs()
    assert len(jobs) == 6
    assert jobs == expected_jobs(adapter)
    assert jobs[job_name(ids["moved"])] == expected_schedule(FUTURE + timedelta(days=5, seconds=30))
    for key in ("overdue_with_job", "overdue_no_job", "done_with_job"):
        assert adapter.status(ids[key]) == "done", key
    assert [adapter.status(i) for i in ids["untouched"]] == ["done", "cancelled"]


def test_recover_dry_run_then_repair_then_idempotent(adapter: Adapter) -> None:
    with adapter.held():
        ids = break_the_state(adapter)
        broken = adapter.snapshot()
        assert adapter.backend.recover(dry_run=True) == report(8, 3, 3, 2, 2, dry_run=True)
        assert adapter.snapshot() == broken  # a dry run changes nothing
        assert adapter.backend.recover() == report(8, 3, 3, 2, 2)
        assert_repaired(adapter, ids)
        repaired = adapter.snapshot()
        assert adapter.backend.recover() == report(6, 0, 6, 0, 0)
        assert adapter.snapshot() == repaired
        assert adapter.backend.recover(dry_run=True) == report(6, 0, 6, 0, 0, dry_run=True)


def test_reconcile_removes_orphans_and_completes_overdue_meetings(adapter: Adapter) -> None:
    with adapter.held():
        ids = break_the_state(adapter)
        # DESIGN.md: the reconcile job also deletes our run history older than the retention
        # (7 days by default); reconcile() reports how many rows it deleted as history_deleted.
        adapter.add_run(
            ids["healthy"][0], "succeeded", "old", datetime.now(UTC) - timedelta(days=8)
        )
        adapter.add_run(ids["healthy"][1], "succeeded", "recent", datetime.now(UTC))
        result = dict(adapter.backend.reconcile())
        result.pop("sweep", None)  # PostgreSQL also says how its seconds sweep stands
        assert result == {**report(8, 3, 3, 2, 2), "history_deleted": 1, "events_deleted": 0}
        assert_repaired(adapter, ids)
        assert [r["return_message"] for r in adapter.backend.history() if r["meeting_id"]] == [
            "recent"
        ]
        again = dict(adapter.backend.reconcile())
        again.pop("sweep", None)
        assert again == {**report(6, 0, 6, 0, 0), "history_deleted": 0, "events_deleted": 0}


def test_paused_registers_nothing_and_resume_recovers(adapter: Adapter) -> None:
    assert adapter.backend.pause() == {"enabled": False}
    meeting_id = adapter.insert(FUTURE)
    assert adapter.jobs() == {}
    assert adapter.backend.reconcile() == {"paused": True}
    assert adapter.jobs() == {}
    with pytest.raises(InvalidInput, match="paused"):
        adapter.backend.recover()
    assert adapter.backend.recover(dry_run=True) == report(1, 1, 0, 0, 0, dry_run=True)
    assert adapter.backend.resume() == report(1, 1, 0, 0, 0)
    assert adapter.jobs() == {job_name(meeting_id): expected_schedule(FUTURE)}


# -- bad input ----------------------------------------------------------------------------------

BAD_END_TIMES = [
    pytest.param(None, "end_time", id="null"),
    pytest.param("not a time", None, id="unparsable text"),
    pytest.param("2031-02-30T10:00:00Z", None, id="30 February"),
    pytest.param("2031-03-14T25:00:00Z", None, id="hour 25"),
    pytest.param(20310314, None, id="a number"),
]


@pytest.mark.parametrize(("end_time", "mentions"), BAD_END_TIMES)
def test_bad_end_time_is_rejected_and_nothing_changes(
    adapter: Adapter, end_time: Any, mentions: str | None
) -> None:
    existing = adapter.insert(FUTURE)
    before = adapter.snapshot()
    with pytest.raises(Rejected) as insert_error:
        adapter.insert(end_time)
    with pytest.raises(Rejected) as update_error:
        adapter.update(existing, end_time=end_time)
    # one bad row rejects the whole statement
    with pytest.raises(Rejected):
        adapter.insert_rows([(FUTURE + timedelta(days=1), None), (end_time, None)])
    assert adapter.snapshot() == before
    if mentions:
        assert mentions in str(insert_error.value) and mentions in str(update_error.value)


@pytest.mark.parametrize("status", ["postponed", "Upcoming", ""])
def test_unknown_status_is_rejected_and_nothing_changes(adapter: Adapter, status: str) -> None:
    existing = adapter.insert(FUTURE)
    before = adapter.snapshot()
    with pytest.raises(Rejected, match="status"):
        adapter.insert(FUTURE, status=status)
    with pytest.raises(Rejected, match="status"):
        adapter.update(existing, status=status)
    assert adapter.snapshot() == before


# -- schedule and cancel through the Backend protocol --------------------------------------------


def assert_job_shape(job: Any) -> None:
    assert isinstance(job, dict) and set(job) == set(Job.__annotations__)


def test_schedule_moves_the_job_and_reports_it(adapter: Adapter) -> None:
    meeting_id = adapter.insert(FUTURE)
    new_end = datetime(2031, 3, 14, 15, 0, 1, tzinfo=timezone(timedelta(hours=5, minutes=30)))
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
    # again: nothing left to remove
    assert adapter.backend.cancel(meeting_id) == {
        "meeting_id": meeting_id,
        "status": "cancelled",
        "jobs_removed": 0,
    }


def test_cancel_of_a_done_meeting_removes_a_stray_job(adapter: Adapter) -> None:
    meeting_id = adapter.insert(FUTURE)
    with adapter.held():
        with adapter.without_triggers():
            adapter.update(meeting_id, status="done")
        assert job_name(meeting_id) in adapter.jobs()
        result = adapter.backend.cancel(meeting_id)
        assert result == {"meeting_id": meeting_id, "status": "done", "jobs_removed": 1}
        assert adapter.jobs() == {}


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
    assert meeting["meeting_id"] == meeting_id
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
    assert set(result) == set(RecoverReport.__annotations__)
    assert {k: type(v) for k, v in result.items()} == {
        **{k: int for k in RecoverReport.__annotations__},
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
        adapter.update(meeting_id, end_time=FUTURE + timedelta(hours=1))
        assert adapter.jobs() == {
            job_name(meeting_id): expected_schedule(FUTURE + timedelta(hours=1))
        }
        [job] = [j for j in adapter.backend.list_jobs() if j["meeting_id"] == meeting_id]
        assert job["active"] is False
        assert adapter.backend.recover() == report(1, 0, 1, 0, 0)
        assert adapter.job_active(meeting_id) is False


# -- completion events, webhook delivery state, metrics ------------------------------------------


def test_each_completion_records_one_event_with_its_path_and_lateness(adapter: Adapter) -> None:
    """A meeting's job run, recover and a write with an end time already past each record one
    event; an application setting a meeting done itself records none."""
    by_job, by_recover, by_app = (adapter.insert(FUTURE) for _ in range(3))
    # whole milliseconds: what SQLite keeps of an end time (the triggers, bypassed here, round up)
    past = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=3)
    with adapter.held():
        with adapter.without_triggers():
            adapter.update(by_job, end_time=past)
        assert adapter.run_job(by_job) == 1
        with adapter.without_triggers():
            adapter.update(by_recover, end_time=past)
        assert adapter.backend.recover()["overdue_completed"] == 1
        by_write = adapter.insert(datetime.now(UTC) - timedelta(seconds=30))
        adapter.update(by_app, status="done")
    events = adapter.backend.events()
    assert [(e["meeting_id"], e["path"]) for e in events] == [
        (by_write, "write"),
        (by_recover, "recover"),
        (by_job, "job"),
    ]
    for event in events:
        completed = datetime.fromisoformat(event["completed_at"])
        ended = datetime.fromisoformat(event["end_time"])
        assert event["end_time"] == adapter.end_time(event["meeting_id"]).isoformat()
        assert event["lateness_seconds"] == pytest.approx((completed - ended).total_seconds())
        assert event["lateness_seconds"] >= 0
        assert (event["delivery"], event["attempts"], event["last_error"]) == (None, 0, None)
        assert str(uuid.UUID(event["event_key"])) == event["event_key"]
    assert [e["path"] for e in adapter.backend.events(limit=1)] == ["write"]
    assert [e["meeting_id"] for e in adapter.backend.events(path="job")] == [by_job]
    with pytest.raises(InvalidInput, match="unknown completion path"):
        adapter.backend.events(path="cron")


def test_webhook_delivery_state_on_both_backends(adapter: Adapter) -> None:
    """Claimed once until the lease lapses, retried later, delivered once and for all."""
    assert adapter.backend.set_webhooks(True) == {"webhooks": True}
    first, second = adapter.insert(FUTURE), adapter.insert(FUTURE)
    with adapter.held():
        with adapter.without_triggers():
            for meeting_id in (first, second):
                adapter.update(meeting_id, end_time=datetime.now(UTC) - timedelta(seconds=1))
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
    assert set(metrics) == {
        "backend", "enabled", "upcoming_meetings", "jobs", "missing_jobs", "orphan_jobs",
        "overdue_meetings", "completions", "lateness", "failed_runs", "retried_runs", "webhooks",
    }  # fmt: skip
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
