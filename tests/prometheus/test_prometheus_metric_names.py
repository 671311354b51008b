"""Every metric name that an alert or the dashboard selects (parsed out of its PromQL) is one
that ``GET /metrics`` exports: a scrape of the FastAPI route over a real SQLite store. The same
check against what a real Prometheus ingested from PostgreSQL: test_prometheus_scrape_e2e.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from cli_helpers import run
from fastapi import FastAPI
from prometheus_helpers import expression_names, metric_names, sample_names, unknown_names

from scheduler_admin import config
from scheduler_admin.fastapi import include_scheduler
from scheduler_admin.service import SchedulerService


def scrape(app: FastAPI) -> str:
    async def go() -> str:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            response = await client.get("/metrics")
            response.raise_for_status()
            return response.text

    return asyncio.run(go())


def test_the_alerts_and_the_dashboard_name_only_exported_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("SCHEDULER_DATABASE_URL", "DATABASE_URL", "ENVIRONMENT", "SCHEDULER_JOBSTORE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    code, _, err = run(capsys, "--database-url", url, "migrate")
    assert code == 0, err
    app = FastAPI()
    include_scheduler(app, SchedulerService(config.resolve(url, {})), delay=0, metrics=True)
    exported = sample_names(scrape(app))
    assert "scheduler_upcoming_meetings" in exported  # scheduler_up 1: every family is there
    assert unknown_names(exported) == {}
    used = expression_names()
    assert all(names for where, names in used.items()), used


def test_the_name_parser_finds_every_selector() -> None:
    expr = (
        'histogram_quantile(0.99, max by (transition, le) (rate(a_bucket{transition=~"x"}[5m])))'
        " > 60 and on (transition) max by (transition) (b) == 1 or absent(c) unless -d offset 5m"
        ' or sum_over_time(e[10m:1m]) or label_replace(f, "x", "$1", "y", "(.*)")'
    )
    assert metric_names(expr) == {"a_bucket", "b", "c", "d", "e", "f"}
    with pytest.raises(AssertionError, match="without a metric name"):
        metric_names('{__name__="a"}')
