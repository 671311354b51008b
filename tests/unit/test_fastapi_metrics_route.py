"""FastAPI's opt-in ``GET /metrics``: absent by default, mounted by ``metrics=True`` or
``SCHEDULER_METRICS_ROUTE=true``; the backend is called in a worker thread, never in the event
loop (a fake backend of the contract's shape; no database)."""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

import scheduler_admin.backends
from scheduler_admin import config
from scheduler_admin.config import metrics_route_enabled
from scheduler_admin.exceptions import ConfigurationError
from scheduler_admin.fastapi import include_scheduler, metrics_router
from scheduler_admin.service import SchedulerService

SECRET = "s3cr3t-pw"

DATA: dict[str, Any] = {
    "backend": "sqlite",
    "enabled": True,
    "upcoming_meetings": 5,
    "jobs": 5,
    "missing_jobs": 0,
    "orphan_jobs": 0,
    "overdue_meetings": 0,
    "completions": {"job": 1, "sweep": 0, "waker": 2, "reconcile": 0, "recover": 0, "write": 0},
    "lateness": {
        "buckets": [
            [0.5, 2],
            [1, 3],
            [2, 3],
            [5, 3],
            [10, 3],
            [30, 3],
            [60, 3],
            [120, 3],
            [300, 3],
            [600, 3],
            [3600, 3],
        ],
        "count": 3,
        "sum": 1.5,
    },
    "failed_runs": 0,
    "retried_runs": 0,
    "webhooks": {
        "enabled": False,
        "delivered": 0,
        "failed": 0,
        "attempt_failures": 0,
        "backlog": 0,
        "oldest_pending_seconds": None,
    },
}


class FakeBackend:
    def __init__(self) -> None:
        self.threads: list[int] = []
        self.closed = 0
        self.failure: Exception | None = None

    def metrics(self, *, transition: str | None = None) -> dict[str, Any]:
        self.threads.append(threading.get_ident())
        if self.failure is not None:
            raise self.failure
        return copy.deepcopy(DATA)

    def transitions(self) -> list[dict[str, Any]]:
        self.threads.append(threading.get_ident())
        if self.failure is not None:
            raise self.failure
        return [{"name": "meetings"}]

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    for name in (
        "SCHEDULER_METRICS_ROUTE",
        "ENVIRONMENT",
        "SCHEDULER_DATABASE_URL",
        "DATABASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    fake = FakeBackend()
    monkeypatch.setattr(scheduler_admin.backends, "open_backend", lambda settings: fake)
    return fake


def service(tmp_path: Path) -> SchedulerService:
    return SchedulerService(config.resolve(f"sqlite:///{tmp_path / 'm.db'}", {}))


def app_with(tmp_path: Path, **kwargs: Any) -> FastAPI:
    app = FastAPI()
    include_scheduler(app, service(tmp_path), delay=0, **kwargs)
    return app


def get(app: FastAPI, path: str = "/metrics") -> tuple[httpx.Response, int]:
    """GET ``path`` (no lifespan: no start-up recovery); also the event loop's thread."""

    async def go() -> tuple[httpx.Response, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.get(path), threading.get_ident()

    return asyncio.run(go())


def test_absent_by_default(backend: FakeBackend, tmp_path: Path) -> None:
    response, _ = get(app_with(tmp_path))
    assert response.status_code == 404
    assert backend.threads == []


def test_mounted_by_the_argument(backend: FakeBackend, tmp_path: Path) -> None:
    response, loop_thread = get(app_with(tmp_path, metrics=True))
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert families["scheduler_up"].samples[0].value == 1
    (upcoming,) = families["scheduler_upcoming_meetings"].samples
    assert upcoming.value == 5 and upcoming.labels == {"transition": "meetings"}
    # one backend per scrape (the list of transitions, then a call per transition), in a
    # worker thread, and closed again
    assert len(backend.threads) == 2 and loop_thread not in backend.threads
    assert backend.closed == 1


@pytest.mark.parametrize(
    ("value", "mounted"), [("true", True), ("1", True), ("false", False), ("", False)]
)
def test_mounted_by_the_environment(
    backend: FakeBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, mounted: bool
) -> None:
    monkeypatch.setenv("SCHEDULER_METRICS_ROUTE", value)
    response, _ = get(app_with(tmp_path))
    assert response.status_code == (200 if mounted else 404)


def test_the_argument_wins_over_the_environment(
    backend: FakeBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEDULER_METRICS_ROUTE", "true")
    assert get(app_with(tmp_path, metrics=False))[0].status_code == 404


def test_an_invalid_setting_leaves_it_off_and_says_so(
    backend: FakeBackend,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SCHEDULER_METRICS_ROUTE", "sometimes")
    caplog.set_level(logging.ERROR, logger="scheduler_admin")
    assert get(app_with(tmp_path))[0].status_code == 404
    assert "SCHEDULER_METRICS_ROUTE='sometimes' is not a boolean" in caplog.text
    with pytest.raises(ConfigurationError):
        metrics_route_enabled({"SCHEDULER_METRICS_ROUTE": "sometimes"})
    assert metrics_route_enabled({}) is False


def test_a_failing_backend_is_up_zero_and_the_log_is_masked(
    backend: FakeBackend,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://app:{SECRET}@db.example:5432/app")
    backend.failure = RuntimeError(f"connection to postgresql://app:{SECRET}@db.example failed")
    caplog.set_level(logging.WARNING, logger="scheduler_admin")
    app = FastAPI()
    app.include_router(metrics_router(service(tmp_path)))
    response, _ = get(app)
    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert list(families) == ["scheduler_up"] and families["scheduler_up"].samples[0].value == 0
    assert "scheduler metrics unavailable" in caplog.text and SECRET not in caplog.text


def test_a_configuration_error_is_up_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "prod")  # and no production database configured
    for name in ("SCHEDULER_DATABASE_URL", "DATABASE_URL", "SUPABASE_DB_URL", "SUPABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    app = FastAPI()
    app.include_router(metrics_router(SchedulerService()))
    response, _ = get(app)
    assert response.status_code == 200 and "scheduler_up 0.0" in response.text
