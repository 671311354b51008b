"""FunctionsBackend over a fake transport: the calls it makes, the rows it maps, the checks it
runs with and without direct SQL. (What the real servers answer: tests/postgres, tests/supabase.)"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from cli_helpers import run

from scheduler_admin.backends.functions import (
    HORIZON_COLUMNS,
    JOB_COLUMNS,
    RUN_COLUMNS,
    FunctionsBackend,
)
from scheduler_admin.backends.postgres import PostgresBackend
from scheduler_admin.backends.supabase import SupabaseBackend
from scheduler_admin.backends.transport import (
    Column,
    Params,
    SqlTransport,
    Transport,
    iso,
    parse_time,
)
from scheduler_admin.core import Horizon, Job, Run
from scheduler_admin.exceptions import ConfigurationError, InvalidInput, MeetingNotFound

UTC = timezone.utc
MEETING = "6f1d2c3b-0000-4000-8000-000000000001"
SECURE: dict[str, Any] = {
    "owner": "app",
    "functions_not_owned": [],
    "jobs_not_owned": 0,
    "trigger_grantees": [],
    "other_triggers": [],
    "row_security": True,
    "api_writers": [],
    "cron_timezone": "GMT",
    "cron_timezone_readable": True,
}
HEALTH: dict[str, Any] = {
    "enabled": True,
    "reconcile_job": True,
    "upcoming_meetings": 1,
    "missing_jobs": 0,
    "orphan_jobs": 0,
    "overdue_meetings": 0,
    "failed_runs_24h": 0,
    "pg_cron_version": "1.6",
    "security": SECURE,
}
REPORT: dict[str, Any] = {
    "total_meetings": 1,
    "jobs_scheduled": 1,
    "jobs_already_exist": 0,
    "overdue_completed": 0,
    "orphans_removed": 0,
    "errors": [],
    "success": True,
    "dry_run": False,
}


class FakeTransport:
    """Answers calls from a dict, as a REST transport would: no direct SQL."""

    target = "fake://db"

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.closed = False

    def call(self, function: str, params: Params | None = None) -> Any:
        self.calls.append((function, dict(params or {})))
        return self.answers[function]

    def rows(
        self, function: str, params: Params | None, columns: Sequence[Column]
    ) -> list[tuple[Any, ...]]:
        data = self.call(function, params)
        return [
            tuple(parse_time(r[name]) if kind == "time" else r[name] for name, kind in columns)
            for r in data
        ]

    def close(self) -> None:
        self.closed = True


class FakeSqlTransport(FakeTransport):
    """A transport that may also read the catalog, as a direct connection does."""

    def __init__(self, answers: dict[str, Any], facts: dict[str, Any]) -> None:
        super().__init__(answers)
        self.fact_row = facts

    def facts(self, query: str) -> list[dict[str, Any]]:
        self.calls.append(("facts", {}))
        return [self.fact_row]


GOOD_FACTS = {
    "version": "1.6",
    "cron_db": "app",
    "can_read": True,
    "db": "app",
    "migrated": True,
    "has_meetings": True,
    "triggers": 4,
}


def test_the_fakes_are_transports() -> None:
    assert isinstance(FakeTransport({}), Transport)
    assert not isinstance(FakeTransport({}), SqlTransport)
    assert isinstance(FakeSqlTransport({}, {}), SqlTransport)


def test_columns_follow_the_typed_dicts() -> None:
    # registered_at is the backend's: None for a job of scheduler.list_jobs(), the time of a
    # row of scheduler.deferred_jobs() (a row beyond the job horizon)
    assert [name for name, _ in JOB_COLUMNS] + ["registered_at"] == list(Job.__annotations__)
    assert [name for name, _ in HORIZON_COLUMNS] == list(Horizon.__annotations__)
    assert [name for name, _ in RUN_COLUMNS] == list(Run.__annotations__)


def test_list_jobs_and_history_map_rows_with_times_in_utc() -> None:
    job = {
        "meeting_id": MEETING,
        "job_id": 7,
        "job_name": f"meeting-status-{MEETING}",
        "schedule": "1 12 1 6 *",
        "next_run": "2031-06-01T14:01:00+02:00",
        "end_time": "2031-06-01T12:00:00.12+00:00",
        "meeting_status": "upcoming",
        "active": True,
        "transition": "meetings",
        "key": MEETING,
    }
    run_row = {
        "run_id": 3,
        "job_id": 7,
        "job_name": job["job_name"],
        "meeting_id": MEETING,
        "status": "failed",
        "return_message": "boom",
        "start_time": "2031-06-01T12:01:00+00",
        "end_time": None,
        "transition": "meetings",
        "key": MEETING,
    }
    deferred_row = {
        "transition": "meetings",
        "key": MEETING.replace("1", "2"),
        "job_name": f"meeting-status-{MEETING.replace('1', '2')}",
        "schedule": "0 9 3 7 *",
        "next_run": "2031-07-03T09:00:00+00",
        "end_time": "2031-07-03T09:00:00+00",
        "state": "upcoming",
        "registered_at": "2031-07-02T09:00:00+00",
    }
    transport = FakeTransport(
        {"list_jobs": [job], "history": [run_row], "deferred_jobs": [deferred_row]}
    )
    backend = FunctionsBackend(transport)
    listed, deferred = backend.list_jobs()
    assert listed == {
        **job,
        "next_run": "2031-06-01T12:01:00+00:00",
        "end_time": "2031-06-01T12:00:00.120000+00:00",
        "registered_at": None,
    }
    assert list(listed) == list(Job.__annotations__)
    # a row beyond the job horizon: no job yet, the one it will get and from when
    assert deferred == {
        "meeting_id": deferred_row["key"],
        "job_id": None,
        "job_name": deferred_row["job_name"],
        "schedule": "0 9 3 7 *",
        "next_run": "2031-07-03T09:00:00+00:00",
        "end_time": "2031-07-03T09:00:00+00:00",
        "meeting_status": "upcoming",
        "active": None,
        "transition": "meetings",
        "key": deferred_row["key"],
        "registered_at": "2031-07-02T09:00:00+00:00",
    }
    (ran,) = backend.history(failed_only=True, limit=3)
    assert ran == {**run_row, "start_time": "2031-06-01T12:01:00+00:00"}
    assert transport.calls == [
        ("list_jobs", {}),
        ("deferred_jobs", {}),
        ("history", {"p_failed_only": True, "p_limit": 3}),
    ]
    with pytest.raises(InvalidInput, match="at least 1"):
        backend.history(limit=0)


def test_iso_and_parse_time_write_the_same_text() -> None:
    when = datetime(2031, 6, 1, 14, 0, 0, 120000, tzinfo=timezone(timedelta(hours=2)))
    assert (
        iso(when) == parse_time("2031-06-01T14:00:00.12+02") == "2031-06-01T12:00:00.120000+00:00"
    )
    assert iso(when.replace(microsecond=0)) == "2031-06-01T12:00:00+00:00"
    assert iso(None) is None and parse_time(None) is None


def test_schedule_and_cancel_send_canonical_ids_and_iso_times(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="scheduler_admin")
    transport = FakeTransport(
        {
            "schedule_meeting": {
                "meeting_id": MEETING,
                "status": "upcoming",
                "job": {
                    "next_run": "2031-06-01T14:01:00+02:00",
                    "end_time": "2031-06-01T12:00:00+00:00",
                },
            },
            "cancel_meeting": {"meeting_id": MEETING, "status": "cancelled", "jobs_removed": 0},
        }
    )
    backend = FunctionsBackend(transport)
    end = datetime(2031, 6, 1, 12, tzinfo=UTC)
    result = backend.schedule(MEETING.upper(), end)
    assert result["job"]["next_run"] == "2031-06-01T12:01:00+00:00"
    backend.cancel("{" + MEETING + "}")
    assert transport.calls == [
        ("schedule_meeting", {"p_meeting_id": MEETING, "p_end_time": "2031-06-01T12:00:00+00:00"}),
        ("cancel_meeting", {"p_meeting_id": MEETING}),
    ]
    assert "(0 jobs removed)" in caplog.text


@pytest.mark.parametrize("meeting_id", ["abc", "", "6f1d2c3b"])
def test_an_id_that_is_not_a_uuid_is_no_meeting_and_calls_nothing(meeting_id: str) -> None:
    transport = FakeTransport({})
    backend = FunctionsBackend(transport)
    for call in (
        lambda: backend.cancel(meeting_id),
        lambda: backend.schedule(meeting_id, datetime(2031, 6, 1, tzinfo=UTC)),
    ):
        with pytest.raises(MeetingNotFound) as caught:
            call()
        assert caught.value.meeting_id == meeting_id
        assert caught.value.hint == "Meeting ids are UUIDs."
    assert transport.calls == []


def test_a_naive_end_time_is_refused_before_any_call() -> None:
    transport = FakeTransport({})
    with pytest.raises(InvalidInput, match="has no time zone"):
        FunctionsBackend(transport).schedule(MEETING, datetime(2031, 6, 1, 12))
    assert transport.calls == []


def test_recover_resume_and_reconcile_log_one_summary(caplog: pytest.LogCaptureFixture) -> None:
    """One line each; recover's at DEBUG (its caller reports the outcome: the CLI prints it, the
    service logs it once at start-up)."""
    caplog.set_level(logging.DEBUG, logger="scheduler_admin")
    transport = FakeTransport(
        {"recover": REPORT, "resume": REPORT, "reconcile": {**REPORT, "history_deleted": 1}}
    )
    backend = FunctionsBackend(transport)
    assert backend.recover(dry_run=True) == REPORT
    assert backend.resume() == REPORT
    assert backend.reconcile() == {**REPORT, "history_deleted": 1}
    assert transport.calls[0] == ("recover", {"p_dry_run": True})
    lines = [r.getMessage() for r in caplog.records]
    assert caplog.records[0].levelno == logging.DEBUG
    assert lines[0] == (
        "recover (dry run) on fake://db: 1 upcoming meeting: 1 scheduled, 0 already there, "
        "0 overdue completed, 0 orphans removed, 0 errors"
    )
    assert lines[2].endswith("0 errors, 1 old run deleted")
    transport.answers["reconcile"] = {"paused": True}
    assert backend.reconcile() == {"paused": True}
    assert "paused, nothing done" in caplog.records[-1].getMessage()


# scheduler.transitions() of a database with meetings only
TRANSITIONS = [
    {
        "name": "meetings",
        "table_name": "public.meetings",
        "key_column": "id",
        "time_column": "end_time",
        "state_column": "status",
        "from_states": ["upcoming"],
        "to_state": "done",
        "job_prefix": "meeting-status-",
        "builtin": True,
        "pending_rows": 0,
        "jobs": 0,
        "paused": False,
    }
]


def test_doctor_without_direct_sql_says_what_it_did_not_check() -> None:
    transport = FakeTransport({"health": HEALTH, "transitions": TRANSITIONS})
    checks = FunctionsBackend(transport).doctor()
    assert all(c["ok"] for c in checks), checks
    names = [c["name"] for c in checks]
    assert names[:3] == ["checked through the REST API", "pg_cron installed", "migrated"]
    assert names[-1] == "full check"
    assert "triggers on meetings" not in names and "pg_cron preloaded" not in names
    # no failed run: no history call
    assert [name for name, _ in transport.calls] == ["health", "transitions"]


def test_doctor_with_direct_sql_checks_pg_cron_and_the_triggers() -> None:
    health = {**HEALTH, "failed_runs_24h": 1}
    run_row = {name: None for name, _ in RUN_COLUMNS} | {
        "run_id": 1,
        "job_id": 2,
        "status": "failed",
        "job_name": "meeting-status-reconcile",
        "return_message": "boom",
    }
    transport = FakeSqlTransport(
        {"health": health, "history": [run_row], "transitions": TRANSITIONS}, GOOD_FACTS
    )
    checks = {c["name"]: c for c in FunctionsBackend(transport).doctor()}
    assert "checked through the REST API" not in checks and "full check" not in checks
    assert checks["pg_cron preloaded"]["ok"] and checks["triggers on meetings"]["ok"]
    failed = [name for name, c in checks.items() if not c["ok"]]
    assert failed == ["failed runs retried (24 h)"]
    assert "meeting-status-reconcile: boom" in checks["failed runs retried (24 h)"]["detail"]
    assert [name for name, _ in transport.calls] == ["facts", "health", "transitions", "history"]


def test_doctor_stops_at_the_first_catalog_problem() -> None:
    facts = {**GOOD_FACTS, "cron_db": "postgres"}
    transport = FakeSqlTransport({}, facts)
    checks = FunctionsBackend(transport).doctor()
    assert [(c["name"], c["ok"]) for c in checks] == [
        ("pg_cron preloaded", True),
        ("pg_cron runs in this database", False),
    ]
    assert transport.calls == [("facts", {})]
    facts = {**GOOD_FACTS, "triggers": 3}
    transport = FakeSqlTransport({"health": HEALTH, "transitions": TRANSITIONS}, facts)
    checks = {c["name"]: c for c in FunctionsBackend(transport).doctor()}
    assert checks["triggers on meetings"]["detail"] == "3 of 4 triggers present and enabled"
    assert "scheduler enabled" in checks  # a missing trigger does not hide the other checks


def test_rest_refuses_direct_only_functions_without_a_request() -> None:
    backend = SupabaseBackend("https://project.supabase.co", "secret-key-0123456789")
    for operation in (backend.reconcile, backend.pause, backend.resume):
        with pytest.raises(
            InvalidInput, match="not available over the Supabase REST API"
        ) as caught:
            operation()
        assert "SUPABASE_DB_URL" in (caught.value.hint or "")
    assert backend.transport._client is None  # nothing was sent


def test_backends_keep_their_names_and_targets() -> None:
    direct = PostgresBackend("postgresql://app:pw@db.example/app")
    assert direct.name == "postgres" and direct.target == "postgresql://app:***@db.example/app"
    assert direct.conninfo == "postgresql://app:pw@db.example/app"
    assert isinstance(direct.transport, SqlTransport)
    rest = SupabaseBackend("https://project.supabase.co/", "secret-key-0123456789")
    assert rest.name == "supabase" and "secret-key-0123456789" not in rest.target
    assert not isinstance(rest.transport, SqlTransport)


def test_rest_without_the_supabase_extra_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)  # import httpx raises ImportError
    backend = SupabaseBackend("https://project.supabase.co", "secret-key-0123456789")
    with pytest.raises(ConfigurationError, match="needs the supabase package") as caught:
        backend.health()
    assert "scheduler-admin[supabase]" in (caught.value.hint or "")
    for name in ("SCHEDULER_DATABASE_URL", "DATABASE_URL", "SUPABASE_DB_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ENVIRONMENT", "prod")
    monkeypatch.setenv("SUPABASE_URL", "https://project.supabase.co")
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", "secret-key-0123456789")
    code, out, err = run(capsys, "list-jobs")
    assert code == 1 and out == ""
    assert err.startswith("Error: the Supabase backend needs the supabase package")
    assert "Hint: pip install 'scheduler-admin[supabase]'" in err
    assert "ModuleNotFoundError" not in err and "Traceback" not in err
