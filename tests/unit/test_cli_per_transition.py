"""Every operation per transition (issue 14, slice 2) on the Python side, over a fake backend of
the contract's shape: ``--transition NAME`` reaches the backend, the tables gain a TRANSITION
column only when another transition than meetings shows up, the reports of one transition and
of all of them read well, and the waker and the service pass the name on. What the databases
answer for a transition: tests/postgres, tests/sqlite and tests/scenarios."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run, run_json

from scheduler_admin import backends, cli, config, service, waker
from scheduler_admin.core import (
    Check,
    Job,
    RecoverReport,
    Run,
    TransitionReport,
    Wake,
    recover_summary,
)

UTC = timezone.utc
MEETING = "6f1d2c3b-0000-4000-8000-000000000001"
SOON = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)

MEETING_JOB: Job = {
    "meeting_id": MEETING,
    "job_id": 7,
    "job_name": f"meeting-status-{MEETING}",
    "schedule": "1 12 1 6 *",
    "next_run": SOON.isoformat(),
    "end_time": SOON.isoformat(),
    "meeting_status": "upcoming",
    "active": True,
    "transition": "meetings",
    "key": MEETING,
}
RECONCILE_JOB: Job = {
    "meeting_id": None,
    "job_id": 1,
    "job_name": "meeting-status-reconcile",
    "schedule": "*/5 * * * *",
    "next_run": SOON.isoformat(),
    "end_time": None,
    "meeting_status": None,
    "active": True,
    "transition": "meetings",
    "key": None,
}
MEMBERSHIP_JOB: Job = {
    "meeting_id": None,
    "job_id": 9,
    "job_name": "memberships-status-12",
    "schedule": "30 9 2 6 *",
    "next_run": SOON.isoformat(),
    "end_time": SOON.isoformat(),
    "meeting_status": "active",
    "active": True,
    "transition": "memberships",
    "key": "12",
}
# a job whose row is gone: no state, but a key
ORPHAN_JOB: Job = {
    **MEMBERSHIP_JOB,
    "job_id": 10,
    "job_name": "memberships-status-13",
    "end_time": None,
    "meeting_status": None,
    "key": "13",
}

MEETING_RUN: Run = {
    "run_id": 3,
    "job_id": 7,
    "job_name": f"meeting-status-{MEETING}",
    "meeting_id": MEETING,
    "status": "succeeded",
    "return_message": "1 row",
    "start_time": "2031-06-01T12:01:00+00:00",
    "end_time": "2031-06-01T12:01:01+00:00",
    "transition": "meetings",
    "key": MEETING,
}
MEMBERSHIP_RUN: Run = {
    "run_id": 4,
    "job_id": 9,
    "job_name": "memberships-status-12",
    "meeting_id": None,
    "status": "failed",
    "return_message": "lock timeout",
    "start_time": "2031-06-02T09:30:00+00:00",
    "end_time": None,
    "transition": "memberships",
    "key": "12",
}

MEETINGS_REPORT: RecoverReport = {
    "total_meetings": 3,
    "jobs_scheduled": 1,
    "jobs_already_exist": 2,
    "overdue_completed": 0,
    "orphans_removed": 0,
    "errors": [],
    "success": True,
    "dry_run": False,
}
MEMBERSHIPS_REPORT: TransitionReport = {
    "transition": "memberships",
    "total": 12,
    "jobs_scheduled": 4,
    "jobs_already_exist": 7,
    "overdue_completed": 1,
    "orphans_removed": 2,
    "errors": [],
    "success": True,
    "dry_run": True,
}
COUNTS = {
    "total": 5,
    "jobs_scheduled": 5,
    "jobs_already_exist": 0,
    "overdue_completed": 3,
    "orphans_removed": 1,
}
CHECKS: list[Check] = [
    {"name": "migrated", "ok": True, "detail": "at head", "fix": None},
    {
        "name": "transition memberships: paused",
        "ok": False,
        "detail": "paused by name",
        "fix": "scheduler-admin resume --transition memberships",
    },
]
WAKE: Wake = {
    "completed": 2,
    "next_end_time": "2031-06-02T09:30:00+00:00",
    "now": "2031-06-01T12:00:00+00:00",
    "paused": False,
}


class FakeBackend:
    """The per-transition operations of the Backend protocol; records each call's arguments."""

    def __init__(self) -> None:
        self.jobs: list[Job] = [RECONCILE_JOB, MEETING_JOB]
        self.runs: list[Run] = [MEETING_RUN]
        self.report: dict[str, Any] = dict(MEETINGS_REPORT)
        self.paused: dict[str, Any] = {"enabled": False}
        self.woke: dict[str, Any] = dict(WAKE)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.closed = 0

    def list_jobs(self, **kwargs: Any) -> list[Job]:
        self.calls.append(("list_jobs", kwargs))
        return copy.deepcopy(self.jobs)

    def recover(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("recover", kwargs))
        return copy.deepcopy(self.report)

    def history(self, **kwargs: Any) -> list[Run]:
        self.calls.append(("history", kwargs))
        return copy.deepcopy(self.runs)

    def doctor(self, **kwargs: Any) -> list[Check]:
        self.calls.append(("doctor", kwargs))
        return copy.deepcopy(CHECKS)

    def pause(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("pause", kwargs))
        return dict(self.paused)

    def resume(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("resume", kwargs))
        return copy.deepcopy(self.report)

    def wake(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("wake", kwargs))
        return dict(self.woke)

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeBackend:
    for name in (
        "SCHEDULER_DATABASE_URL",
        "DATABASE_URL",
        "ENVIRONMENT",
        "SCHEDULER_JOBSTORE_URL",
        "ENABLE_MEETING_STATUS_UPDATES",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    fake = FakeBackend()
    monkeypatch.setattr(cli, "open_backend", lambda settings: fake)
    # the waker opens its backend through scheduler_admin.backends (SQLite here: a re-poll)
    monkeypatch.setattr(backends, "open_backend", lambda settings: fake)
    return fake


# -- the option reaches the backend ---------------------------------------------------------

COMMANDS = [
    (("list-jobs",), "list_jobs", {}),
    (("recover", "--dry-run"), "recover", {"dry_run": True}),
    (("recover",), "recover", {"dry_run": False}),
    (("history", "--failed", "--limit", "5"), "history", {"failed_only": True, "limit": 5}),
    (("doctor",), "doctor", {}),
    (("pause",), "pause", {}),
    (("resume",), "resume", {}),
    (("waker", "--once"), "wake", {}),
]


@pytest.mark.parametrize(
    ("args", "method", "kwargs"), COMMANDS, ids=[" ".join(c[0]) for c in COMMANDS]
)
@pytest.mark.parametrize("transition", [None, "memberships", "meetings"])
def test_the_transition_option_is_passed_to_the_backend(
    backend: FakeBackend,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    method: str,
    kwargs: dict[str, Any],
    transition: str | None,
) -> None:
    option = () if transition is None else ("--transition", transition)
    run(capsys, *args, *option)
    assert backend.calls == [(method, {**kwargs, "transition": transition})]
    assert backend.closed == 1


@pytest.mark.parametrize("args", [c[0] for c in COMMANDS], ids=[" ".join(c[0]) for c in COMMANDS])
def test_the_option_needs_a_name_and_says_what_it_is(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    code, _, err = run(capsys, *args, "--transition")
    assert code == 2 and "'--transition' requires an argument" in err
    assert backend.calls == []
    code, out, _ = run(capsys, *args[:1], "--help")
    assert code == 0
    words = " ".join(out.split())  # the help wraps as the terminal's width says
    assert "--transition NAME Only this registered transition" in words


def test_json_is_the_backend_answer_as_is(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    backend.jobs = [MEMBERSHIP_JOB, ORPHAN_JOB]
    backend.runs = [MEMBERSHIP_RUN]
    backend.report = dict(MEMBERSHIPS_REPORT)
    backend.paused = {"transition": "memberships", "paused": True}
    name = ("--transition", "memberships")
    assert run_json(capsys, "list-jobs", *name) == [MEMBERSHIP_JOB, ORPHAN_JOB]
    assert run_json(capsys, "history", *name) == [MEMBERSHIP_RUN]
    assert run_json(capsys, "recover", "--dry-run", *name) == MEMBERSHIPS_REPORT
    assert run_json(capsys, "pause", *name) == {"transition": "memberships", "paused": True}
    assert run_json(capsys, "resume", *name) == MEMBERSHIPS_REPORT
    assert run_json(capsys, "waker", "--once", *name) == WAKE


# -- list-jobs and history: the TRANSITION column --------------------------------------------


def test_list_jobs_of_meetings_only_has_no_transition_column(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "list-jobs")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split("  ")[0] == "JOB"
    assert "TRANSITION" not in out and "END TIME (UTC)" in lines[0]
    assert lines[1].split()[0] == "meeting-status-reconcile"
    assert lines[2].split()[0] == f"meeting-status-{MEETING}"
    assert lines[-1] == "2 jobs"


def test_list_jobs_with_another_transition_shows_which_each_job_serves(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    backend.jobs = [RECONCILE_JOB, MEETING_JOB, MEMBERSHIP_JOB, ORPHAN_JOB]
    code, out, err = run(capsys, "list-jobs")
    assert code == 0, err
    head, *rows, total = out.splitlines()
    assert head.split()[:2] == ["TRANSITION", "JOB"]
    # a membership's expiry is its row's time, not an end time
    assert "TIME (UTC)" in head and "END TIME" not in head
    by_job = {row.split()[1]: row.split() for row in rows}
    assert by_job["meeting-status-reconcile"][0] == "meetings"
    assert by_job[f"meeting-status-{MEETING}"][0] == "meetings"
    assert by_job["memberships-status-12"][0] == "memberships"
    assert by_job["memberships-status-12"][-2:] == ["active", "yes"]
    # the job of a row that is gone is an orphan, as a meeting's would be
    assert by_job["memberships-status-13"][-2:] == ["orphan", "yes"]
    assert by_job["meeting-status-reconcile"][-2:] == ["-", "yes"]
    assert total == "4 jobs"
    # columns line up: each job name starts under JOB
    assert {row.find(row.split()[1]) for row in rows} == {head.index("JOB")}


def test_list_jobs_of_one_other_transition_shows_the_column(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    backend.jobs = [MEMBERSHIP_JOB]
    _, out, _ = run(capsys, "list-jobs", "--transition", "memberships")
    head, row, total = out.splitlines()
    assert head.startswith("TRANSITION") and row.split()[:2] == [
        "memberships",
        "memberships-status-12",
    ]
    assert total == "1 job"


def test_history_of_meetings_only_has_no_transition_column(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "history")
    assert code == 0, err
    head, row = out.splitlines()
    assert head.split() == ["RUN", "JOB", "STATUS", "START", "(UTC)", "END", "(UTC)", "MESSAGE"]
    assert row.split()[:3] == ["3", f"meeting-status-{MEETING}", "succeeded"]


def test_history_with_another_transition_has_the_column(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    backend.runs = [MEMBERSHIP_RUN, MEETING_RUN]
    code, out, err = run(capsys, "history")
    assert code == 0, err
    head, first, second = out.splitlines()
    assert head.split()[:3] == ["TRANSITION", "RUN", "JOB"]
    assert first.split()[:4] == ["memberships", "4", "memberships-status-12", "failed"]
    assert second.split()[:3] == ["meetings", "3", f"meeting-status-{MEETING}"]
    assert first.rstrip().endswith("lock timeout")


def test_empty_lists_read_as_before(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    backend.jobs, backend.runs = [], []
    assert run(capsys, "list-jobs", "--transition", "memberships")[1] == "no jobs\n"
    assert run(capsys, "history", "--transition", "memberships")[1] == "no runs\n"


# -- recover and resume: the reports ---------------------------------------------------------


def test_the_report_of_meetings_alone_reads_as_before(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "recover")
    assert code == 0
    assert out.splitlines() == [
        "recovery of 3 upcoming meetings:",
        "  jobs scheduled      1",
        "  jobs already there  2",
        "  overdue completed   0",
        "  orphans removed     0",
        "  errors              0",
        "ok",
    ]


def test_a_dry_run_says_what_it_would_recover(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dry run reads "would recover N upcoming meetings", not "would be recovery of"."""
    backend.report = {**MEETINGS_REPORT, "total_meetings": 0, "dry_run": True}
    code, out, err = run(capsys, "recover", "--dry-run")
    assert code == 0, err
    assert out.splitlines()[0] == "would recover 0 upcoming meetings:"
    assert "would be" not in out


def test_the_report_of_one_other_transition_counts_its_pending_rows(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    backend.report = dict(MEMBERSHIPS_REPORT)
    code, out, err = run(capsys, "recover", "--transition", "memberships", "--dry-run")
    assert code == 0, err
    assert out.splitlines() == [
        "would recover transition memberships, 12 pending rows:",
        "  jobs scheduled      4",
        "  jobs already there  7",
        "  overdue completed   1",
        "  orphans removed     2",
        "  errors              0",
        "ok",
    ]


def test_a_report_of_one_transition_with_errors_names_the_keys_and_exits_1(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    backend.report = {
        **MEMBERSHIPS_REPORT,
        "total": 1,
        "dry_run": False,
        "success": False,
        "errors": [{"key": "12", "error": "lock timeout"}],
    }
    for command in ("recover", "resume"):
        code, out, _ = run(capsys, command, "--transition", "memberships")
        assert code == 1, command
        lines = out.splitlines()
        assert "recovery of transition memberships, 1 pending row:" in lines
        assert "  errors              1" in lines and "    12: lock timeout" in lines
        assert lines[-1] == "completed with errors"
    # the JSON is printed before the exit code says it failed
    code, out, _ = run(capsys, "--json", "resume", "--transition", "memberships")
    assert code == 1 and '"success": false' in out


def test_the_report_of_all_lists_each_transition_and_the_paused_ones(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    backend.report = {
        **MEETINGS_REPORT,
        "transitions": {"memberships": COUNTS, "trials": {**COUNTS, "total": 1}},
        "paused_transitions": ["passes", "coupons"],
    }
    code, out, _ = run(capsys, "recover")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "recovery of 3 upcoming meetings:"
    at = lines.index("transition memberships, 5 pending rows:")
    assert lines[at + 1 : at + 5] == [
        "  jobs scheduled      5",
        "  jobs already there  0",
        "  overdue completed   3",
        "  orphans removed     1",
    ]
    assert "transition trials, 1 pending row:" in lines
    assert lines[-2:] == ["skipped, paused: transition passes, transition coupons", "ok"]
    # the meetings' own counts come first, before any other transition's
    assert lines.index("  errors              0") < at


def test_meetings_paused_by_name_are_listed_as_skipped(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    backend.report = {
        **MEETINGS_REPORT,
        "jobs_scheduled": 0,
        "jobs_already_exist": 0,
        "paused_transitions": ["meetings"],
    }
    _, out, _ = run(capsys, "recover")
    assert "skipped, paused: transition meetings" in out.splitlines()


# -- pause and resume say what -----------------------------------------------------------------


def test_pause_says_whether_the_whole_scheduler_or_one_transition(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "pause")[1] == "paused the whole scheduler\n"
    backend.paused = {"transition": "memberships", "paused": True}
    assert run(capsys, "pause", "--transition", "memberships")[1] == (
        "paused transition memberships\n"
    )


def test_resume_says_what_it_resumed_then_its_recovery(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "resume")
    assert code == 0
    assert out.splitlines()[:2] == [
        "resumed the whole scheduler",
        "recovery of 3 upcoming meetings:",
    ]
    backend.report = {**MEMBERSHIPS_REPORT, "dry_run": False}
    code, out, _ = run(capsys, "resume", "--transition", "memberships")
    assert code == 0
    assert out.splitlines()[:2] == [
        "resumed transition memberships",
        "recovery of transition memberships, 12 pending rows:",
    ]


def test_a_refused_name_is_an_error_with_the_backend_hint(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from scheduler_admin.exceptions import InvalidInput

    def refuse(**kwargs: Any) -> None:
        raise InvalidInput(
            "no transition named nosuch",
            hint="scheduler-admin transitions list shows the registered ones.",
        )

    monkeypatch.setattr(backend, "pause", refuse)
    code, out, err = run(capsys, "pause", "--transition", "nosuch")
    assert code == 1 and out == ""
    assert err.splitlines() == [
        "Error: no transition named nosuch",
        "Hint: scheduler-admin transitions list shows the registered ones.",
    ]


def test_doctor_of_one_transition_fails_on_its_failed_check(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "doctor", "--transition", "memberships")
    assert code == 1
    assert "[FAIL] transition memberships: paused: paused by name" in out
    assert "fix: scheduler-admin resume --transition memberships" in out
    assert "not healthy" in err


# -- the waker -------------------------------------------------------------------------------


def test_waker_once_for_one_transition(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "waker", "--once", "--transition", "memberships")
    assert code == 0, err
    assert backend.calls == [("wake", {"transition": "memberships"})]
    assert out == (
        "transition memberships: 2 rows completed; next end time 2031-06-02T09:30:00+00:00\n"
    )
    backend.woke = {**WAKE, "completed": 1, "paused": True, "next_end_time": None}
    _, out, _ = run(capsys, "waker", "--once", "--transition", "memberships")
    assert out == "transition memberships: 1 row completed; transition memberships is paused\n"
    assert backend.closed == 2  # the source is closed after each --once


def test_waker_once_for_all_and_for_meetings(
    backend: FakeBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(capsys, "waker", "--once")
    assert out == "2 rows completed; next end time 2031-06-02T09:30:00+00:00\n"
    _, out, _ = run(capsys, "waker", "--once", "--transition", "meetings")
    assert out == "2 meetings completed; next end time 2031-06-02T09:30:00+00:00\n"
    backend.woke = {**WAKE, "completed": 0, "paused": True}
    _, out, _ = run(capsys, "waker", "--once")
    assert out == "0 rows completed; the scheduler is paused\n"


class FakeSource:
    """A WakeSource that answers one Wake and records what it was asked."""

    target = "fake"
    poll_interval: float | None = 1.0

    def __init__(self) -> None:
        self.asked: list[str | None] = []

    def wake(self, *, transition: str | None = None) -> Wake:
        self.asked.append(transition)
        return dict(WAKE)  # type: ignore[return-value]

    def wait(self, timeout: float, stop: threading.Event) -> list[datetime]:
        return []

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.parametrize("transition", [None, "meetings", "memberships"])
def test_the_waker_asks_for_its_transition_every_cycle(transition: str | None) -> None:
    source = FakeSource()
    woke = waker.Waker(source, transition=transition, jitter=0)
    woke.run_once()
    woke.run_once()
    assert source.asked == [transition, transition]
    assert woke.completed == 4


def test_the_polling_source_passes_the_transition_to_the_backend() -> None:
    fake = FakeBackend()
    source = waker.PollingSource(fake, 1.0, "fake")  # type: ignore[arg-type]
    source.wake(transition="memberships")
    source.wake()
    assert fake.calls == [("wake", {"transition": "memberships"}), ("wake", {"transition": None})]


@pytest.mark.parametrize("transition", [None, "meetings", "memberships"])
def test_on_postgres_every_waker_relies_on_listen_and_heeds_its_transition(
    transition: str | None,
) -> None:
    # every transition is announced (0008): no waker re-polls on PostgreSQL, and each source
    # heeds the announcements of its waker's transition
    settings = config.Settings(
        backend="postgres", source="test", url="postgresql://app@127.0.0.1:1/db"
    )
    woke = waker.Waker.from_settings(settings, transition=transition)
    assert isinstance(woke.source, waker.ListeningSource)  # no connection until it is used
    assert woke.source.poll_interval is None
    assert woke.source.transition == transition
    assert woke.transition == transition


AT = "2031-03-14T09:26:01.250000+00:00"
MEMBERSHIP = json.dumps({"transition": "memberships", "time": AT})


@pytest.mark.parametrize(
    ("channel", "payload", "transition", "heeded"),
    [
        (waker.CHANNEL, AT, None, True),
        (waker.CHANNEL, AT, "meetings", True),
        (waker.CHANNEL, AT, "memberships", False),
        (waker.TRANSITION_CHANNEL, MEMBERSHIP, None, True),
        (waker.TRANSITION_CHANNEL, MEMBERSHIP, "memberships", True),
        (waker.TRANSITION_CHANNEL, MEMBERSHIP, "meetings", False),
        (waker.TRANSITION_CHANNEL, MEMBERSHIP, "invoices", False),
    ],
)
def test_an_announcement_is_heeded_by_the_wakers_of_its_transition(
    channel: str, payload: str, transition: str | None, heeded: bool
) -> None:
    expected = datetime.fromisoformat(AT) if heeded else None
    assert waker.announced_time(channel, payload, transition) == expected


@pytest.mark.parametrize(
    ("channel", "payload"),
    [
        (waker.CHANNEL, "not a time"),
        (waker.TRANSITION_CHANNEL, AT),  # a bare time where JSON belongs
        (waker.TRANSITION_CHANNEL, "{not json"),
        (waker.TRANSITION_CHANNEL, json.dumps({"transition": "memberships"})),
        (waker.TRANSITION_CHANNEL, json.dumps(["memberships", AT])),
        (waker.TRANSITION_CHANNEL, json.dumps({"transition": "memberships", "time": "soon"})),
        ("another_channel", AT),
    ],
)
def test_an_unreadable_announcement_is_ignored(channel: str, payload: str) -> None:
    assert waker.announced_time(channel, payload, None) is None


# -- recover_summary and the service -----------------------------------------------------------


def test_recover_summary_of_meetings_is_unchanged_and_names_another_transition() -> None:
    assert recover_summary(MEETINGS_REPORT) == (
        "3 upcoming meetings: 1 scheduled, 2 already there, 0 overdue completed, "
        "0 orphans removed, 0 errors"
    )
    one: TransitionReport = {**MEMBERSHIPS_REPORT, "total": 1, "orphans_removed": 1}
    assert recover_summary(one) == (
        "transition memberships: 1 pending row: 4 scheduled, 7 already there, "
        "1 overdue completed, 1 orphan removed, 0 errors"
    )
    reconciled = {**MEMBERSHIPS_REPORT, "history_deleted": 3}
    assert recover_summary(reconciled).endswith(", 3 old runs deleted")  # type: ignore[arg-type]


@pytest.fixture
def scheduler(monkeypatch: pytest.MonkeyPatch) -> tuple[service.SchedulerService, FakeBackend]:
    fake = FakeBackend()
    monkeypatch.setattr(service, "open_backend", lambda settings: fake)
    settings = config.Settings(backend="sqlite", source="test", url="sqlite:///unused.db")
    return service.SchedulerService(settings), fake


def test_the_service_lists_jobs_of_all_or_of_one_transition(
    scheduler: tuple[service.SchedulerService, FakeBackend],
) -> None:
    svc, fake = scheduler
    fake.jobs = [MEMBERSHIP_JOB]
    assert svc.get_scheduled_jobs() == [MEMBERSHIP_JOB]
    assert svc.get_scheduled_jobs(transition="memberships") == [MEMBERSHIP_JOB]
    assert asyncio.run(svc.list_jobs()) == [MEMBERSHIP_JOB]
    assert asyncio.run(svc.list_jobs("memberships")) == [MEMBERSHIP_JOB]
    assert [kwargs for _, kwargs in fake.calls] == [
        {"transition": None},
        {"transition": "memberships"},
        {"transition": None},
        {"transition": "memberships"},
    ]
    assert fake.closed == 4


def test_the_service_recovers_all_or_one_transition_and_logs_it(
    scheduler: tuple[service.SchedulerService, FakeBackend], caplog: pytest.LogCaptureFixture
) -> None:
    svc, fake = scheduler
    caplog.set_level("INFO", logger="scheduler_admin.service")
    assert asyncio.run(svc.ensure_scheduled_jobs_for_existing_meetings()) == MEETINGS_REPORT
    fake.report = {**MEMBERSHIPS_REPORT, "errors": [{"key": "12", "error": "lock timeout"}]}
    report = asyncio.run(svc.ensure_scheduled_jobs_for_existing_meetings("memberships"))
    assert report["errors"] == [{"key": "12", "error": "lock timeout"}]
    assert fake.calls == [
        ("recover", {"transition": None}),
        ("recover", {"transition": "memberships"}),
    ]
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("meeting status recovery: 3 upcoming meetings: ")
    assert messages[1].startswith("transition memberships recovery: transition memberships: ")
    assert "12" in messages[2] and "lock timeout" in messages[2]
