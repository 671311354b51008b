"""A `scheduler-admin webhooks` process killed with SIGKILL while the receiver holds its request,
and a new process started: the event is delivered once the dead one's lease has run out, with the
same idempotency key, on the real PostgreSQL backend. Nothing is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_helpers import Server
from webhook_helpers import HOLD, WebhookReceiver, poll

TIMEOUT = 1.0  # SCHEDULER_WEBHOOK_TIMEOUT: the lease is 2 * timeout + 5 s


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


def dispatcher(migrated: Server, receiver: WebhookReceiver, log: Path) -> subprocess.Popen[bytes]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SCHEDULER_") and k not in ("DATABASE_URL", "ENVIRONMENT")
    }
    env |= {
        "SCHEDULER_DATABASE_URL": migrated.url,
        "SCHEDULER_WEBHOOK_URL": receiver.url,
        "SCHEDULER_WEBHOOK_TIMEOUT": str(TIMEOUT),
    }
    with log.open("ab") as stderr:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "scheduler_admin.cli", "webhooks"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def state(db: Any, meeting_id: object) -> tuple[Any, ...]:
    row = db.execute(
        "select delivery, attempts, event_key::text from scheduler.completion_events "
        "where meeting_id = %s",
        (meeting_id,),
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_a_dispatcher_process_killed_mid_delivery_loses_nothing(
    db: Any, migrated: Server, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    log = tmp_path / "dispatchers.log"
    db.execute("select scheduler.set_webhooks(true)")
    (meeting_id,) = db.execute(
        "insert into public.meetings (title, end_time) "
        "values ('killed', clock_timestamp() - interval '1 second') returning id"
    ).fetchone()
    receiver.script(HOLD)
    first = dispatcher(migrated, receiver, log)
    second: subprocess.Popen[bytes] | None = None
    try:
        assert poll(lambda: receiver.received(), timeout=30), log.read_text()
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
        receiver.release()  # the held request's answer goes nowhere
        delivery, attempts, key = state(db, meeting_id)
        assert (delivery, attempts) == ("pending", 1)  # claimed, its outcome never recorded
        second = dispatcher(migrated, receiver, log)
        assert poll(lambda: state(db, meeting_id)[0] == "delivered", timeout=30), log.read_text()
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=10)
    sent = receiver.by_key()[key]
    assert [r.json["attempt"] for r in sent] == [1, 2]
    # the second POST waited for the dead dispatcher's lease (2 * timeout + 5 s)
    assert sent[1].at - sent[0].at >= 2 * TIMEOUT + 5 - 0.5
    assert state(db, meeting_id)[:2] == ("delivered", 2)
    assert db.execute(
        "select outcome from scheduler.webhook_attempts a join scheduler.completion_events e "
        "using (event_id) where e.meeting_id = %s",
        (meeting_id,),
    ).fetchall() == [("delivered",)]
