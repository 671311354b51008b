"""FastAPI integration: background start-up recovery and GET /debug/scheduler."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from clock_helpers import future_on
from fastapi import FastAPI
from pg_helpers import reconcile_job_inactive
from postgrest_adapter import PostgrestAdapter
from secret_helpers import NAMED, generated_passwords, leaked, url_forms
from supabase_shape import SERVICE_KEY, SupabaseShape

from scheduler_admin import config
from scheduler_admin.backends.postgres import PostgresBackend
from scheduler_admin.exceptions import ConfigurationError
from scheduler_admin.fastapi import debug_router, include_scheduler, startup_delay
from scheduler_admin.migrate import upgrade
from scheduler_admin.service import SchedulerService

FUTURE = future_on(6, 1, 12)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "SCHEDULER_DATABASE_URL",
        "DATABASE_URL",
        "ENVIRONMENT",
        "SUPABASE_URL",
        "SUPABASE_SERVICE_ROLE_KEY",
        "SUPABASE_DB_URL",
        "SCHEDULER_STARTUP_DELAY",
        "ENABLE_MEETING_STATUS_UPDATES",
    ):
        monkeypatch.delenv(name, raising=False)


def make_app(service: SchedulerService, delay: float | None = 0) -> FastAPI:
    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict[str, bool]:
        return {"ok": True}

    include_scheduler(app, service, delay=delay)
    return app


def service_for(env: dict[str, str]) -> SchedulerService:
    return SchedulerService(config.resolve(None, env))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the application's lifespan (start-up and shutdown) around an HTTP client of it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            yield client


async def finished(app: FastAPI) -> object:
    return await asyncio.wait_for(app.state.scheduler_startup, timeout=30)


def test_database_down_at_start_up_does_not_take_the_app_down(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="scheduler_admin")
    monkeypatch.setenv("ENVIRONMENT", "dev")
    url = f"postgresql://postgres@127.0.0.1:{closed_port()}/nowhere"
    app = make_app(service_for({"SCHEDULER_DATABASE_URL": url}))

    async def scenario() -> None:
        async with serving(app) as client:
            assert (await client.get("/ping")).json() == {"ok": True}
            assert await finished(app) is None
            assert (await client.get("/ping")).status_code == 200
            # the debug endpoint (development) reports the failure instead of raising
            response = await client.get("/debug/scheduler")
            assert response.status_code == 503 and "cannot connect" in response.json()["error"]

    asyncio.run(scenario())
    failures = [r for r in caplog.records if "start-up recovery failed" in r.getMessage()]
    assert len(failures) == 1 and "cannot connect" in failures[0].getMessage()


def test_the_delay_never_holds_up_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEDULER_STARTUP_DELAY", "30")
    url = f"postgresql://postgres@127.0.0.1:{closed_port()}/nowhere"
    app = make_app(service_for({"SCHEDULER_DATABASE_URL": url}), delay=None)

    async def scenario() -> None:
        started = time.monotonic()
        async with serving(app) as client:
            assert time.monotonic() - started < 2
            assert (await client.get("/ping")).status_code == 200
            assert not app.state.scheduler_startup.done()  # still waiting its 30 s
        assert app.state.scheduler_startup.cancelled()  # shut down without waiting
        assert time.monotonic() - started < 5

    asyncio.run(scenario())


def test_startup_delay_setting() -> None:
    assert startup_delay({}) == 1.0
    assert startup_delay({"SCHEDULER_STARTUP_DELAY": "2.5"}) == 2.5
    with pytest.raises(ConfigurationError, match="not a number"):
        startup_delay({"SCHEDULER_STARTUP_DELAY": "soon"})


def test_start_up_recovery_over_rest_logs_its_summary_and_no_debug_in_prod(
    supa: SupabaseShape,
    rest: PostgrestAdapter,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO, logger="scheduler_admin")
    monkeypatch.setenv("ENVIRONMENT", "prod")
    service = service_for(
        {"ENVIRONMENT": "prod", "SUPABASE_URL": rest.url, "SUPABASE_SERVICE_ROLE_KEY": SERVICE_KEY}
    )
    app = make_app(service)

    async def scenario() -> None:
        async with serving(app) as client:
            report = await finished(app)
            assert isinstance(report, dict)
            assert report["jobs_scheduled"] == 1 and report["success"] is True
            assert (await client.get("/debug/scheduler")).status_code == 404

    # an upcoming meeting whose job is missing; the reconcile job held off, or it may register
    # the job first
    with supa.superuser() as su, reconcile_job_inactive(su):
        su.execute("set session_replication_role = replica")
        su.execute("insert into meetings (title, end_time) values ('m', %s)", (FUTURE,))
        su.execute("set session_replication_role = origin")
        asyncio.run(scenario())
    # the outcome is logged once (not by the backend, the service and the app each)
    summaries = [r.getMessage() for r in caplog.records if "upcoming meeting" in r.getMessage()]
    assert len(summaries) == 1
    assert "1 upcoming meeting:" in summaries[0] and "1 scheduled" in summaries[0]
    assert SERVICE_KEY not in caplog.text


def test_debug_endpoint_in_development(
    supa: SupabaseShape, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "dev")
    with supa.superuser() as su:
        su.execute("insert into meetings (title, end_time) values ('m', %s)", (FUTURE,))
    app = make_app(service_for({"SCHEDULER_DATABASE_URL": supa.url()}))

    async def scenario() -> dict[str, object]:
        async with serving(app) as client:
            await finished(app)
            response = await client.get("/debug/scheduler")
            assert response.status_code == 200
            body: dict[str, object] = response.json()
            return body

    body = asyncio.run(scenario())
    direct = PostgresBackend(supa.url())
    try:
        assert body["enabled"] is True and body["backend"] == "postgres"
        assert body["jobs"] == direct.list_jobs() and len(direct.list_jobs()) == 2
        assert body["health"] == direct.health() and direct.health()["ok"] is True
    finally:
        direct.close()


def test_enable_meeting_status_updates_false(
    supa: SupabaseShape, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="scheduler_admin")
    monkeypatch.setenv("ENVIRONMENT", "development")
    with supa.superuser() as su:
        su.execute("set session_replication_role = replica")
        su.execute("insert into meetings (title, end_time) values ('m', %s)", (FUTURE,))
    service = service_for(
        {"SCHEDULER_DATABASE_URL": supa.url(), "ENABLE_MEETING_STATUS_UPDATES": "false"}
    )
    app = make_app(service)

    async def scenario() -> dict[str, object]:
        async with serving(app) as client:
            assert await finished(app) is None
            body: dict[str, object] = (await client.get("/debug/scheduler")).json()
            return body

    body = asyncio.run(scenario())
    assert body["enabled"] is False and "ENABLE_MEETING_STATUS_UPDATES=false" in str(body["detail"])
    assert "start-up recovery skipped" in caplog.text
    with supa.superuser() as su:  # nothing was recovered: the meeting still has no job
        assert su.execute(
            "select count(*) from cron.job where jobname <> 'meeting-status-reconcile'"
        ).fetchone() == (0,)


# -- where GET /debug/scheduler exists, and what it never shows ------------------------------


@pytest.fixture
def sqlite_store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'dev.db'}"
    upgrade(url=url)
    return url


def settings_for(store: str, sqlite_url: str) -> config.Settings:
    if store == "sqlite":
        return config.resolve(sqlite_url, {})
    if store == "postgres":
        return config.resolve(f"postgresql://app:Kb2Qx@127.0.0.1:{closed_port()}/db", {})
    return config.Settings(
        "supabase",
        "SUPABASE_URL",
        supabase_url=f"http://127.0.0.1:{closed_port()}",
        supabase_key="service-role-key-Kb2Qx",
    )


async def debug_statuses(app: FastAPI, times: int = 3) -> list[int]:
    """GET /debug/scheduler ``times`` times, without running the lifespan (no start-up)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        return [(await client.get("/debug/scheduler")).status_code for _ in range(times)]


@pytest.mark.parametrize(
    ("environment", "store", "mounted"),
    [
        (None, "postgres", False),
        ("", "postgres", False),
        ("staging", "postgres", False),
        ("prod", "postgres", False),
        ("dev", "postgres", True),
        ("DEV", "postgres", True),
        (" Development ", "postgres", True),
        (None, "supabase", False),
        ("dev", "supabase", True),
        (None, "sqlite", True),
        ("staging", "sqlite", True),
        ("production", "sqlite", False),
        ("PROD", "sqlite", False),
    ],
)
def test_debug_endpoint_only_when_development_was_asked_for(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    sqlite_store: str,
    environment: str | None,
    store: str,
    mounted: bool,
) -> None:
    caplog.set_level(logging.INFO, logger="scheduler_admin")
    if environment is not None:
        monkeypatch.setenv("ENVIRONMENT", environment)
    app = make_app(SchedulerService(settings_for(store, sqlite_store)))
    statuses = asyncio.run(debug_statuses(app))
    refusals = [r for r in caplog.records if "/debug/scheduler is not mounted" in r.getMessage()]
    if mounted:
        expected = 200 if store == "sqlite" else 503  # the database is down, the route is there
        assert statuses == [expected] * 3
        assert refusals == []
    else:
        assert statuses == [404] * 3
        # said once, when the application was built, not per request; no target in it
        assert [r.levelno for r in refusals] == [logging.INFO]
        message = refusals[0].getMessage()
        assert "ENVIRONMENT" in message and "127.0.0.1" not in message and "Kb2Qx" not in message


def test_debug_router_can_still_be_mounted_explicitly() -> None:
    # ENVIRONMENT is unset and the store is PostgreSQL: include_scheduler would not mount it
    service = SchedulerService(settings_for("postgres", ""))
    app = FastAPI()
    app.include_router(debug_router(service))
    assert asyncio.run(debug_statuses(app, times=1)) == [503]


@pytest.mark.parametrize(
    ("password", "markers"), NAMED + generated_passwords(10, seed=13), ids=lambda v: repr(v)[:40]
)
def test_debug_error_body_and_logs_never_show_the_password(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    password: str,
    markers: list[str],
) -> None:
    """The 503 body and the start-up failure logged (with its traceback at DEBUG), for URLs
    that cannot be parsed and for URLs that cannot connect."""
    caplog.set_level(logging.DEBUG, logger="scheduler_admin")
    monkeypatch.setenv("ENVIRONMENT", "dev")
    for url in url_forms(password, port=closed_port()):
        monkeypatch.setenv("SCHEDULER_DATABASE_URL", url)
        app = make_app(SchedulerService())  # resolved from the environment on first use

        async def scenario(app: FastAPI = app) -> httpx.Response:
            async with serving(app) as client:
                await finished(app)
                return await client.get("/debug/scheduler")

        response = asyncio.run(scenario())
        assert response.status_code == 503
        error = response.json()["error"]
        assert error.startswith(("invalid database URL", "cannot connect to")), error
        assert not leaked(markers, response.text), (url, response.text)
    assert "start-up recovery failed" in caplog.text
    assert not leaked(markers, caplog.text), caplog.text
