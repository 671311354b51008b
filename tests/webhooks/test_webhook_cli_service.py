"""``scheduler-admin webhooks`` and ``events``, and the service starting the dispatcher with the
application, against a receiver on 127.0.0.1 and the in-memory store (the backend the settings
open is replaced by it)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from pathlib import Path

import pytest
from cli_helpers import run, run_json
from standardwebhooks import Webhook
from webhook_helpers import MemoryEventStore, WebhookReceiver, poll

import scheduler_admin.backends
import scheduler_admin.cli
from scheduler_admin import config
from scheduler_admin.service import SchedulerService

SECRET = "whsec_" + base64.b64encode(b"the cli and service test secret!").decode()


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> MemoryEventStore:
    """The store every backend the CLI or the service opens is (the database is elsewhere)."""
    for name in (
        "SCHEDULER_DATABASE_URL",
        "DATABASE_URL",
        "ENVIRONMENT",
        "SUPABASE_URL",
        "SUPABASE_SERVICE_ROLE_KEY",
        "SUPABASE_DB_URL",
        "ENABLE_MEETING_STATUS_UPDATES",
        "SCHEDULER_WEBHOOK_URL",
        "SCHEDULER_WEBHOOK_SECRET",
        "SCHEDULER_WEBHOOK_MAX_ATTEMPTS",
        "SCHEDULER_WEBHOOK_TIMEOUT",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SCHEDULER_JOBSTORE_URL", f"sqlite:///{tmp_path / 'unused.db'}")
    memory = MemoryEventStore()
    monkeypatch.setattr(scheduler_admin.backends, "open_backend", lambda settings: memory)
    monkeypatch.setattr(scheduler_admin.cli, "open_backend", lambda settings: memory)
    return memory


def test_webhooks_needs_a_url(capsys: pytest.CaptureFixture[str], store: MemoryEventStore) -> None:
    code, out, err = run(capsys, "webhooks", "--once")
    assert (code, out) == (1, "")
    assert err.startswith("Error: SCHEDULER_WEBHOOK_URL is not set")
    assert "Hint: Set SCHEDULER_WEBHOOK_URL" in err
    assert store.calls == []


def test_webhooks_refuses_bad_settings(
    capsys: pytest.CaptureFixture[str], store: MemoryEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCHEDULER_WEBHOOK_URL", "ftp://user:hunter2@hooks.example.com/x")
    code, _, err = run(capsys, "webhooks")
    assert code == 1 and "only http:// and https://" in err and "hunter2" not in err
    monkeypatch.setenv("SCHEDULER_WEBHOOK_URL", "https://hooks.example.com/x")
    monkeypatch.setenv("SCHEDULER_WEBHOOK_TIMEOUT", "0")
    code, _, err = run(capsys, "webhooks")
    assert code == 1 and "Error: SCHEDULER_WEBHOOK_TIMEOUT='0' is not above 0" in err


def test_webhooks_once_delivers_what_is_due(
    capsys: pytest.CaptureFixture[str],
    store: MemoryEventStore,
    receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCHEDULER_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("SCHEDULER_WEBHOOK_SECRET", SECRET)
    assert run_json(capsys, "webhooks", "--once") == {
        "claimed": 0,
        "delivered": 0,
        "retried": 0,
        "failed": 0,
        "superseded": 0,
    }
    assert store.webhooks  # turned on: events are queued from now on
    events = store.add_events(3)
    receiver.script(500)
    code, out, err = run(capsys, "webhooks", "--once")
    assert code == 0, err
    assert out.strip() == "3 events claimed: 2 delivered, 1 to retry, 0 failed"
    assert len(receiver.received()) == 3
    for request in receiver.received():
        assert Webhook(SECRET).verify(request.body, request.headers) == request.json
    retried = [e for e in events if store.event(e["event_id"])["delivery"] == "pending"]
    assert len(retried) == 1
    assert poll(lambda: run_json(capsys, "webhooks", "--once")["delivered"] == 1)
    assert {store.event(e["event_id"])["delivery"] for e in events} == {"delivered"}


def test_webhooks_never_shows_the_secrets(
    capsys: pytest.CaptureFixture[str],
    store: MemoryEventStore,
    receiver: WebhookReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = (
        receiver.url.replace("http://", "http://hook-user:hook-pass@")
        + "/path-token?token=query-token"
    )
    monkeypatch.setenv("SCHEDULER_WEBHOOK_URL", url)
    monkeypatch.setenv("SCHEDULER_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("SCHEDULER_WEBHOOK_MAX_ATTEMPTS", "1")
    store.set_webhooks(True)
    store.add_events(2)
    receiver.script(503, 404)
    code, out, err = run(capsys, "-vv", "webhooks", "--once")
    assert code == 0, err
    assert "2 failed" in out
    assert "failed after 1 attempt(s): HTTP 503; gave up after 1 attempts" in err
    assert "HTTP 404" in err
    assert f"POST http://127.0.0.1:{receiver.port}/*** " in err  # httpx's line, URL shortened
    for secret in ("hook-pass", "path-token", "query-token", SECRET):
        assert secret not in out + err
    assert receiver.received()[0].path == "/hooks/meetings/path-token?token=query-token"


def test_events_table_and_json(capsys: pytest.CaptureFixture[str], store: MemoryEventStore) -> None:
    code, out, _ = run(capsys, "events")
    assert (code, out.strip()) == (0, "no completion events")
    store.add_events(2, path="job")
    store.set_webhooks(True)
    store.add_events(1, path="waker", late=0.05)
    code, out, _ = run(capsys, "events")
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].startswith("COMPLETED AT (UTC)")
    assert [line.split()[3] for line in lines[1:4]] == ["waker", "job", "job"]  # newest first
    assert [line.split()[6] for line in lines[1:4]] == ["pending", "off", "off"]
    assert lines[-1] == "3 events"
    rows = run_json(capsys, "events", "--limit", "2")
    assert [r["event_id"] for r in rows] == [3, 2]
    assert set(rows[0]) == {
        "event_id",
        "event_key",
        "meeting_id",
        "end_time",
        "completed_at",
        "lateness_seconds",
        "path",
        "delivery",
        "attempts",
        "last_error",
        "transition",
        "key",
    }
    assert [r["path"] for r in run_json(capsys, "events", "--path", "waker")] == ["waker"]
    code, _, err = run(capsys, "events", "--path", "cron")
    assert code == 2 and "Invalid value for '--path'" in err
    code, _, err = run(capsys, "events", "--limit", "0")
    assert code == 2


def test_the_service_starts_and_stops_the_dispatcher(
    store: MemoryEventStore, receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    url = receiver.url + "/path-token"
    settings = config.resolve(
        None,
        {
            "SCHEDULER_JOBSTORE_URL": "sqlite:///unused.db",
            "SCHEDULER_WEBHOOK_URL": url,
            "SCHEDULER_WEBHOOK_SECRET": SECRET,
        },
    )
    service = SchedulerService(settings)
    caplog.set_level(logging.INFO, logger="scheduler_admin")
    assert service.start_webhooks()
    assert service.start_webhooks()  # once
    assert poll(lambda: store.webhooks)
    (event,) = store.add_events(1)
    assert poll(lambda: store.event(event["event_id"])["delivery"] == "delivered")
    (line,) = [r.getMessage() for r in caplog.records if "webhooks on" in r.getMessage()]
    assert f"http://127.0.0.1:{receiver.port}/***" in line and "signed: yes" in line
    assert "path-token" not in caplog.text and SECRET not in caplog.text
    asyncio.run(service.shutdown())
    assert service._webhooks is None
    store.add_events(1)
    assert len(receiver.received()) == 1  # stopped: nothing more is sent


def test_no_url_no_dispatcher(store: MemoryEventStore) -> None:
    settings = config.resolve(None, {"SCHEDULER_JOBSTORE_URL": "sqlite:///unused.db"})
    assert not SchedulerService(settings).start_webhooks()
    disabled = config.resolve(
        None,
        {
            "SCHEDULER_JOBSTORE_URL": "sqlite:///unused.db",
            "SCHEDULER_WEBHOOK_URL": "http://127.0.0.1:9/x",
            "ENABLE_MEETING_STATUS_UPDATES": "false",
        },
    )
    assert not SchedulerService(disabled).start_webhooks()
    assert store.calls == []
    assert json.dumps(store.events()) == "[]"
