"""The Supabase backend: rpc() through supabase-py, against the PostgREST stand-in, compared with
the direct PostgreSQL backend on the same database."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from cli_helpers import run
from clock_helpers import future_on
from pg_helpers import db_now, poll, reconcile_job_inactive
from postgrest_adapter import PostgrestAdapter
from skip_helpers import require_or_skip
from supabase_shape import (
    ANON_KEY,
    DATABASE,
    SERVICE_KEY,
    VARIANTS,
    SupabaseShape,
    build,
    reset,
)

from scheduler_admin import config
from scheduler_admin.backends import open_backend
from scheduler_admin.backends.postgres import PostgresBackend
from scheduler_admin.backends.supabase import SupabaseBackend
from scheduler_admin.backends.transport import parse_time
from scheduler_admin.exceptions import (
    ConfigurationError,
    ConnectionFailed,
    InvalidInput,
    MeetingNotFound,
    NotMigrated,
    PermissionDenied,
)
from scheduler_admin.service import SchedulerService
from scheduler_admin.testing.cluster import ClusterError
from scheduler_admin.testing.lanes import server_lane, throwaway_server

UTC = timezone.utc
FUTURE = future_on(6, 1, 12, 0, 30)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "SCHEDULER_DATABASE_URL",
        "DATABASE_URL",
        "SUPABASE_DB_URL",
        "ENVIRONMENT",
        "SUPABASE_URL",
        "SUPABASE_SERVICE_ROLE_KEY",
        "ENABLE_MEETING_STATUS_UPDATES",
    ):
        monkeypatch.delenv(name, raising=False)


def prod_env(url: str, key: str = SERVICE_KEY) -> dict[str, str]:
    return {"ENVIRONMENT": "prod", "SUPABASE_URL": url, "SUPABASE_SERVICE_ROLE_KEY": key}


@pytest.fixture
def both(
    supa: SupabaseShape, rest: PostgrestAdapter
) -> Iterator[tuple[SupabaseBackend, PostgresBackend]]:
    """The REST backend (resolved from the production variables) and the direct one."""
    settings = config.resolve(None, prod_env(rest.url))
    backend = open_backend(settings)
    assert isinstance(backend, SupabaseBackend)
    direct = PostgresBackend(supa.url())  # the migration role: the owner of the jobs
    try:
        yield backend, direct
    finally:
        backend.close()
        direct.close()


def insert(supa: SupabaseShape, *end_times: datetime) -> list[str]:
    with supa.superuser() as su:
        return [
            str(
                su.execute(
                    "insert into meetings (title, end_time) values ('m', %s) returning id", (t,)
                ).fetchone()[0]
            )  # type: ignore[index]
            for t in end_times
        ]


def test_list_jobs_history_health_recover_equal_the_direct_backend(
    supa: SupabaseShape, rest: PostgrestAdapter, both: tuple[SupabaseBackend, PostgresBackend]
) -> None:
    backend, direct = both
    insert(supa, FUTURE, FUTURE + timedelta(days=40, microseconds=120000))
    with supa.superuser() as su:
        # a finished run and a failed one, as pg_cron records them
        su.execute(
            "insert into cron.job_run_details (jobid, runid, job_pid, database, username, "
            "command, status, return_message, start_time, end_time) "
            "select jobid, 10 + row_number() over (), 1, current_database(), username, command, "
            "       s, 'message', now() - interval '1 minute' * row_number() over (), now() "
            "from cron.job, unnest(array['succeeded', 'failed']) s where username = 'migrator'"
        )
    before = rest.requests
    jobs = backend.list_jobs()
    # two rpcs (the jobs, then the rows beyond the job horizon), not a direct query
    assert rest.requests == before + 2
    assert jobs == direct.list_jobs() and len(jobs) == 3
    assert backend.history() == direct.history() and len(backend.history()) == 6
    assert backend.history(failed_only=True, limit=2) == direct.history(failed_only=True, limit=2)
    assert backend.health() == direct.health()
    assert backend.recover(dry_run=True) == direct.recover(dry_run=True)
    with supa.superuser() as su:  # lose one job: recovery puts it back
        su.execute(
            "select cron.unschedule(min(jobid)) from cron.job where jobname <> 'meeting-status-reconcile'"
        )
    report = backend.recover()
    assert report["jobs_scheduled"] == 1 and report["success"] is True
    assert backend.recover() == direct.recover()


def test_schedule_and_cancel_equal_the_direct_backend(
    supa: SupabaseShape, both: tuple[SupabaseBackend, PostgresBackend]
) -> None:
    backend, direct = both
    a, b = insert(supa, FUTURE, FUTURE)
    moved = FUTURE + timedelta(days=1, seconds=0.25)
    result = backend.schedule(a, moved)
    assert result["job"]["schedule"] == "1 12 2 6 *"
    assert result["job"]["end_time"] == moved.isoformat()
    assert result == direct.schedule(a, moved)  # the same call again: the same answer
    cancelled = backend.cancel(a)
    assert cancelled == {"meeting_id": a, "status": "cancelled", "jobs_removed": 1}
    assert direct.cancel(b) == {"meeting_id": b, "status": "cancelled", "jobs_removed": 1}
    # cancelled already: both refuse it alike, naming its status
    with pytest.raises(InvalidInput) as over_rest:
        backend.cancel(b)
    with pytest.raises(InvalidInput) as directly:
        direct.cancel(b)
    assert (over_rest.value.message, over_rest.value.hint) == (
        directly.value.message,
        directly.value.hint,
    )
    assert over_rest.value.message == f"meeting {b} is cancelled, not upcoming: nothing to cancel"
    with pytest.raises(MeetingNotFound):
        backend.cancel(str(uuid.uuid4()))
    with pytest.raises(InvalidInput, match="not upcoming"):
        backend.schedule(a, moved)
    for call in (lambda: backend.cancel("nope"), lambda: backend.schedule("nope", moved)):
        with pytest.raises(MeetingNotFound, match="no meeting with id nope") as caught:
            call()
        assert caught.value.hint == "Meeting ids are UUIDs."


def test_doctor_over_rpc_uses_health_and_history(
    supa: SupabaseShape, both: tuple[SupabaseBackend, PostgresBackend]
) -> None:
    backend = both[0]
    insert(supa, FUTURE)
    checks = backend.doctor()
    assert all(c["ok"] for c in checks), checks
    assert "only scheduler.health() and scheduler.history()" in checks[0]["detail"]
    # The direct doctor as the non-superuser migrator, which may not read pg_cron's settings
    # (cron.database_name): it skips those checks and still passes.
    full = PostgresBackend(supa.url())
    try:
        direct = full.doctor()
    finally:
        full.close()
    assert all(c["ok"] for c in direct), direct
    direct_checks = {c["name"]: c for c in direct}
    assert "cannot read pg_cron's settings" in direct_checks["pg_cron installed"]["detail"]
    shared = [c for c in checks if c["name"] in direct_checks]
    assert {c["name"] for c in shared} >= {
        "pg_cron installed",
        "scheduler enabled",
        "reconcile job",
        "every upcoming meeting has a job",
        "no orphan jobs",
        "no overdue meetings",
        "failed runs retried (24 h)",
    }
    for c in shared:
        if c["name"] == "pg_cron installed":
            assert c["ok"] == direct_checks[c["name"]]["ok"]
        elif c["name"] != "migrated":
            assert c == direct_checks[c["name"]]
    with supa.superuser() as su:  # a missing job is a problem over RPC too
        su.execute(
            "select cron.unschedule(min(jobid)) from cron.job where jobname <> 'meeting-status-reconcile'"
        )
    failed = {c["name"]: c for c in backend.doctor() if not c["ok"]}
    assert set(failed) == {"every upcoming meeting has a job"}
    assert failed["every upcoming meeting has a job"]["fix"] == "Run `scheduler-admin recover`."


def test_cli_over_rest_prints_what_the_direct_cli_prints(
    supa: SupabaseShape,
    rest: PostgrestAdapter,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (meeting_id,) = insert(supa, FUTURE)
    direct: dict[str, Any] = {}
    for args in (["list-jobs"], ["history"], ["recover", "--dry-run"]):
        code, out, err = run(capsys, "--json", "--database-url", supa.url(), *args)
        assert code == 0, err
        direct[args[0]] = json.loads(out)
    for name, value in prod_env(rest.url).items():
        monkeypatch.setenv(name, value)
    before = rest.requests
    for args in (["list-jobs"], ["history"], ["recover", "--dry-run"]):
        code, out, err = run(capsys, "--json", *args)
        assert code == 0, err
        assert json.loads(out) == direct[args[0]], args
        assert SERVICE_KEY not in out + err
    assert rest.requests == before + 4  # list-jobs: 2 (see above), history: 1, recover: 1
    code, out, err = run(capsys, "doctor")
    assert code == 0, err
    assert "[ok] checked through the REST API" in out
    code, out, _ = run(capsys, "--json", "schedule", meeting_id, f"{FUTURE.year}-06-02T12:00:00Z")
    assert code == 0 and json.loads(out)["job"]["schedule"] == "0 12 2 6 *"
    code, out, _ = run(capsys, "--json", "cancel", meeting_id)
    assert code == 0 and json.loads(out)["jobs_removed"] == 1
    code, _, err = run(capsys, "pause")
    assert (
        code == 1 and "not available over the Supabase REST API" in err and "SUPABASE_DB_URL" in err
    )
    code, _, err = run(capsys, "migrate")
    assert code == 1 and "direct database connection" in err


def test_python_api_over_rest(
    supa: SupabaseShape, rest: PostgrestAdapter, both: tuple[SupabaseBackend, PostgresBackend]
) -> None:
    asyncio.run(python_api(supa, rest, both[1]))


async def python_api(supa: SupabaseShape, rest: PostgrestAdapter, direct: PostgresBackend) -> None:
    a, b = insert(supa, FUTURE, FUTURE)
    service = SchedulerService(config.resolve(None, prod_env(rest.url)))
    assert service.settings.backend == "supabase"
    report = await service.start()
    assert report is not None and report["jobs_already_exist"] == 2 and report["success"]
    assert await service.get_scheduled_jobs() == direct.list_jobs()
    assert await service.health() == direct.health()
    result = await service.schedule_meeting_status_update(a, FUTURE + timedelta(hours=1))
    assert result["job"]["schedule"] == "1 13 1 6 *"
    result = await service.cancel_meeting_status_update(b)
    assert result["jobs_removed"] == 1
    assert len(await service.get_scheduled_jobs()) == 2  # a's job and the reconcile job
    await service.shutdown()


def test_wrong_key_is_a_clear_error(
    rest: PostgrestAdapter, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = SupabaseBackend(rest.url, "not-the-key-at-all-0000")
    with pytest.raises(ConnectionFailed, match="rejected the API key") as caught:
        backend.list_jobs()
    assert "service_role key" in (caught.value.hint or "")
    assert "not-the-key-at-all-0000" not in str(caught.value)
    for name, value in prod_env(rest.url, "not-the-key-at-all-0000").items():
        monkeypatch.setenv(name, value)
    code, out, err = run(capsys, "list-jobs")
    assert code == 1 and out == ""
    assert err.startswith("Error: ") and "rejected the API key" in err
    assert "Traceback" not in err and "not-the-key-at-all-0000" not in err


def test_anon_key_is_refused_the_admin_functions(rest: PostgrestAdapter) -> None:
    backend = SupabaseBackend(rest.url, ANON_KEY)
    with pytest.raises(
        PermissionDenied, match=re.escape("permission denied for scheduler.list_jobs")
    ) as caught:
        backend.list_jobs()
    assert caught.value.hint and "service_role" in caught.value.hint


def test_unreachable_url_is_a_clear_error() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = SupabaseBackend(f"http://127.0.0.1:{port}", SERVICE_KEY, timeout=5)
    with pytest.raises(
        ConnectionFailed, match=re.escape("cannot connect to http://127.0.0.1")
    ) as caught:
        backend.health()
    assert "SUPABASE_URL" in (caught.value.hint or "")
    assert SERVICE_KEY not in str(caught.value)


def test_missing_function_is_a_clear_error(supa: SupabaseShape, rest: PostgrestAdapter) -> None:
    backend = SupabaseBackend(rest.url, SERVICE_KEY)
    with supa.superuser() as su:
        su.execute("alter function scheduler.health() rename to health_renamed")
        try:
            with pytest.raises(
                NotMigrated, match=re.escape("has no function scheduler.health")
            ) as caught:
                backend.doctor()
        finally:
            su.execute("alter function scheduler.health_renamed() rename to health")
    assert "alembic upgrade head" in (caught.value.hint or "")


def test_unexposed_schema_is_a_clear_error(rest: PostgrestAdapter) -> None:
    backend = SupabaseBackend(rest.url, SERVICE_KEY, schema="public")
    with pytest.raises(ConfigurationError, match="schema public is not exposed") as caught:
        backend.list_jobs()
    assert "Exposed schemas" in str(caught.value)


def test_the_adapter_runs_as_the_keys_role(supa: SupabaseShape, rest: PostgrestAdapter) -> None:
    """The stand-in is honest: what it answers is the database's answer for that role."""
    import httpx

    for key, expected in ((SERVICE_KEY, 200), (ANON_KEY, 401), ("wrong", 401)):
        response = httpx.post(
            f"{rest.url}/rest/v1/rpc/health",
            json={},
            headers={
                "apikey": key,
                "Authorization": f"Bearer {key}",
                "Content-Profile": "scheduler",
            },
        )
        assert response.status_code == expected, response.text
    with supa.superuser() as su:
        su.execute("revoke execute on function scheduler.health() from service_role")
        try:
            with pytest.raises(PermissionDenied, match="permission denied"):
                SupabaseBackend(rest.url, SERVICE_KEY).health()
        finally:
            su.execute("grant execute on function scheduler.health() to service_role")


def test_parse_time_reads_postgresql_json_times() -> None:
    assert parse_time("2031-06-01T12:00:00.12+00:00") == "2031-06-01T12:00:00.120000+00:00"
    assert parse_time("2031-06-01T14:00:00+02") == "2031-06-01T12:00:00+00:00"
    assert parse_time(None) is None


@dataclass
class Ticked:
    """One grant variant's server after a real tick: its shape, its stand-in, the meeting an
    authenticated user inserted and whether the tick completed it."""

    shape: SupabaseShape
    rest: PostgrestAdapter
    meeting_id: Any
    done: bool


@pytest.fixture(scope="module")
def ticked() -> Iterator[dict[str, Ticked]]:
    """Both grant variants, each migrated on a server of its own (the suite's cluster exists in
    one variant at a time), through one real pg_cron tick: an authenticated user inserts a
    meeting ending 2 s ahead on each, with the reconcile job inactive (it fires at the same tick:
    kept out, so that the meeting's own job must complete it)."""
    try:
        lane = server_lane()
    except ClusterError as exc:
        pytest.fail(str(exc))
    with ExitStack() as stack:
        servers: dict[str, tuple[SupabaseShape, PostgrestAdapter]] = {}
        for variant in VARIANTS:
            try:
                cluster = stack.enter_context(throwaway_server(database=DATABASE))
            except ClusterError as exc:
                require_or_skip(f"could not start a throwaway server ({lane} lane): {exc}")
            shape = build(cluster, variant)
            result = shape.alembic("upgrade", "head")
            assert result.returncode == 0, result.stderr
            reset(shape)
            su = stack.enter_context(shape.superuser())
            stack.enter_context(reconcile_job_inactive(su))
            adapter = PostgrestAdapter(
                shape.dsn("authenticator"),
                keys={SERVICE_KEY: "service_role", ANON_KEY: "anon"},
                schemas=("scheduler",),
            )
            stack.enter_context(adapter.running())
            servers[variant] = (shape, adapter)
        users = {variant: uuid.uuid4() for variant in VARIANTS}
        meetings: dict[str, Any] = {}
        # one end time for both, so that one tick fires both jobs
        with servers[VARIANTS[0]][0].superuser() as su:
            end_time = db_now(su) + timedelta(seconds=3)
        for variant, (shape, _) in servers.items():
            with shape.as_role("authenticated", users[variant]) as conn:
                (meetings[variant],) = conn.execute(
                    "insert into meetings (title, end_time) values ('tick', %s) returning id",
                    (end_time,),
                ).fetchone()  # type: ignore[misc]

        def status(variant: str) -> str:
            shape = servers[variant][0]
            with shape.as_role("authenticated", users[variant]) as conn:
                (value,) = conn.execute(
                    "select status from meetings where id = %s", (meetings[variant],)
                ).fetchone()  # type: ignore[misc]
            return str(value)

        done = {
            variant: bool(poll(lambda v=variant: status(v) == "done", timeout=130, interval=1))
            for variant in VARIANTS
        }
        yield {
            variant: Ticked(shape, adapter, meetings[variant], done[variant])
            for variant, (shape, adapter) in servers.items()
        }


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("variant", VARIANTS)
def test_a_real_tick_completes_an_authenticated_users_meeting(
    ticked: dict[str, Ticked], variant: str
) -> None:
    """pg_cron runs the job as the migration role (logging in over libpq) and it succeeds: the
    authenticated user sees the meeting done, and over REST history has the job's successful
    run and list_jobs no job of the meeting."""
    tick = ticked[variant]
    assert tick.done, "the meeting was not completed by its job"
    backend = SupabaseBackend(tick.rest.url, SERVICE_KEY)
    try:
        runs = poll(
            lambda: [
                r
                for r in backend.history(limit=20)
                if r["meeting_id"] == str(tick.meeting_id) and r["status"] == "succeeded"
            ],
            timeout=30,
        )
        assert runs, backend.history(limit=20)
        assert not [j for j in backend.list_jobs() if j["meeting_id"] == str(tick.meeting_id)]
    finally:
        backend.close()
