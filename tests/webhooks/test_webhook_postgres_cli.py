"""``scheduler-admin events`` and ``webhooks --once`` on the real PostgreSQL backend, delivering
to a receiver on 127.0.0.1."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cli_helpers import run, run_json
from pg_helpers import Server
from webhook_helpers import WebhookReceiver

from scheduler_admin.webhooks import verify

SECRET = "whsec_" + base64.b64encode(b"the PostgreSQL CLI test secret!!").decode()


def write_events(db: Any, count: int) -> list[str]:
    """Meetings written with an end time already past: completed at once (path write)."""
    return [
        str(row[0])
        for row in db.execute(
            "insert into public.meetings (title, end_time) select 'cli ' || g, "
            "clock_timestamp() - interval '90 seconds' from generate_series(1, %s) g returning id",
            (count,),
        ).fetchall()
    ]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (
        "SCHEDULER_WEBHOOK_URL",
        "SCHEDULER_WEBHOOK_SECRET",
        "SCHEDULER_WEBHOOK_MAX_ATTEMPTS",
        "SCHEDULER_WEBHOOK_TIMEOUT",
        "ENABLE_MEETING_STATUS_UPDATES",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_events_lists_completions_on_postgres(
    capsys: pytest.CaptureFixture[str], db: Any, migrated: Server, env: pytest.MonkeyPatch
) -> None:
    ids = write_events(db, 2)
    rows = run_json(capsys, "--database-url", migrated.url, "events")
    assert sorted(r["meeting_id"] for r in rows) == sorted(ids)
    assert {(r["path"], r["delivery"], r["attempts"]) for r in rows} == {("write", None, 0)}
    assert all(89 <= r["lateness_seconds"] <= 120 for r in rows)
    code, out, err = run(capsys, "--database-url", migrated.url, "events", "--path", "write")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[-1] == "2 events"
    assert all(
        line.split()[3:] == ["write", "1m", line.split()[5], "off", "0"] for line in lines[1:3]
    )
    assert run_json(capsys, "--database-url", migrated.url, "events", "--path", "waker") == []


def test_webhooks_once_on_postgres(
    capsys: pytest.CaptureFixture[str],
    db: Any,
    migrated: Server,
    env: pytest.MonkeyPatch,
    receiver: WebhookReceiver,
) -> None:
    env.setenv("SCHEDULER_WEBHOOK_URL", receiver.url)
    env.setenv("SCHEDULER_WEBHOOK_SECRET", SECRET)
    before = write_events(db, 1)  # webhooks off: never sent
    assert run_json(capsys, "--database-url", migrated.url, "webhooks", "--once")["claimed"] == 0
    after = write_events(db, 3)
    receiver.script(404)
    counts = run_json(capsys, "--database-url", migrated.url, "webhooks", "--once")
    assert (counts["claimed"], counts["delivered"], counts["failed"]) == (3, 2, 1)
    sent = {r.json["meeting_id"] for r in receiver.received()}
    for request in receiver.received():
        verify(request.body, request.headers, SECRET)
    assert sent == set(after) and not sent & set(before)
    rows = {r["meeting_id"]: r for r in run_json(capsys, "--database-url", migrated.url, "events")}
    assert rows[before[0]]["delivery"] is None
    assert sorted(rows[m]["delivery"] for m in after) == ["delivered", "delivered", "failed"]
    assert {rows[m]["attempts"] for m in after} == {1}
