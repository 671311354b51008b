"""The Standard Webhooks scheme end to end: what the dispatcher POSTs to a receiver on 127.0.0.1
is verified by the scheme's own library (the ``standardwebhooks`` package), what that library
signs is accepted by ``scheduler_admin.webhooks.verify``; rotation (two secrets, two
signatures), a retried event keeps its ``webhook-id``, a replay is refused, and a malformed
secret stops ``scheduler-admin webhooks`` before anything is sent; and the receivers of
docs/webhooks.md run as written."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
from cli_helpers import run
from standardwebhooks import Webhook, WebhookVerificationError
from webhook_helpers import MemoryEventStore, WebhookReceiver, poll

import scheduler_admin.backends
import scheduler_admin.cli
from scheduler_admin.webhooks import Dispatcher, VerificationError, verify

NEW = "whsec_" + base64.b64encode(b"the new secret, thirty-two bytes").decode()
OLD = "whsec_" + base64.b64encode(b"the old secret, thirty-two bytes").decode()
FAST: dict[str, Any] = {"poll_interval": 0.02, "backoff_base": 0.01, "backoff_cap": 0.05}


@pytest.fixture
def store() -> MemoryEventStore:
    memory = MemoryEventStore()
    memory.set_webhooks(True)
    return memory


@pytest.fixture
def dispatch(store: MemoryEventStore, receiver: WebhookReceiver) -> Iterator[Any]:
    """``dispatch(secret)``: a dispatcher of ``store`` to the receiver, running in a thread."""
    made: list[Dispatcher] = []

    def start(secret: str | None) -> Dispatcher:
        dispatcher = Dispatcher(store, receiver.url, secret=secret, **FAST)
        made.append(dispatcher)
        dispatcher.start_thread()
        return dispatcher

    yield start
    for dispatcher in made:
        dispatcher.stop(timeout=10)
        dispatcher.close()


def delivered(store: MemoryEventStore, *event_ids: int) -> bool:
    return all(store.event(i)["delivery"] == "delivered" for i in event_ids)


def test_a_real_delivery_is_verified_by_the_standardwebhooks_package(
    store: MemoryEventStore, receiver: WebhookReceiver, dispatch: Any
) -> None:
    (meeting,) = store.add_events(1)
    (row,) = store.add_events(1, transition="memberships")
    before = int(time.time())
    dispatch(NEW)
    assert poll(lambda: delivered(store, meeting["event_id"], row["event_id"]))
    requests = receiver.received()
    assert len(requests) == 2
    for request in requests:
        assert request.headers["webhook-id"] == request.json["event_key"]
        assert before <= int(request.headers["webhook-timestamp"]) <= time.time()
        assert request.headers["webhook-signature"].startswith("v1,")
        # the scheme's own library, as any receiver would call it: body bytes and headers
        assert Webhook(NEW).verify(request.body, request.headers) == request.json
        with pytest.raises(WebhookVerificationError):
            Webhook(OLD).verify(request.body, request.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(NEW).verify(
                request.body.replace(b'"attempt":1', b'"attempt":2'), request.headers
            )
        verify(request.body, request.headers, NEW)


def test_what_the_package_signs_our_verify_accepts() -> None:
    body = b'{"type":"meeting.completed","event_key":"evt_1"}'
    when = datetime.now(timezone.utc)
    headers = {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(NEW).sign("evt_1", when, body),
    }
    verify(body, headers, NEW)
    verify(body, headers, f"{NEW} {OLD}")
    with pytest.raises(VerificationError, match="signed with another secret"):
        verify(body, headers, OLD)
    with pytest.raises(VerificationError, match="no webhook-signature matches"):
        verify(body + b"\n", headers, NEW)
    # the same request replayed later than the tolerance
    with pytest.raises(VerificationError, match="s old, more than the tolerance of 300 s"):
        verify(body, headers, NEW, now=when.timestamp() + 301)


def test_rotation_sends_two_signatures_either_secret_verifies(
    store: MemoryEventStore, receiver: WebhookReceiver, dispatch: Any
) -> None:
    (event,) = store.add_events(1)
    dispatch(f"{NEW} {OLD}")
    assert poll(lambda: delivered(store, event["event_id"]))
    (request,) = receiver.received()
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    # a receiver that still has only the old secret, or already only the new one
    for secret in (NEW, OLD):
        assert Webhook(secret).verify(request.body, request.headers) == request.json
        verify(request.body, request.headers, secret)
    verify(request.body, request.headers, f"{OLD} {NEW}")
    third = "whsec_" + base64.b64encode(b"a third secret of thirty-two byt").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(third).verify(request.body, request.headers)
    with pytest.raises(VerificationError):
        verify(request.body, request.headers, third)


def test_a_retried_event_keeps_its_webhook_id_and_is_signed_anew(
    store: MemoryEventStore, receiver: WebhookReceiver, dispatch: Any
) -> None:
    (event,) = store.add_events(1)
    receiver.script(503, 500)
    dispatch(NEW)
    assert poll(lambda: delivered(store, event["event_id"]))
    requests = receiver.received()
    assert len(requests) == 3
    assert {r.headers["webhook-id"] for r in requests} == {event["event_key"]}
    assert [r.json["attempt"] for r in requests] == [1, 2, 3]
    for request in requests:  # each attempt's body (its attempt number) signed with its stamp
        assert Webhook(NEW).verify(request.body, request.headers) == request.json
    stamps = [int(r.headers["webhook-timestamp"]) for r in requests]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("0123456789abcdef0123456789abcdef", "does not start with whsec_"),
        ("whsec_Kq3v-Hx7Q-Wm2z-Rt9Q-Pb4Q-Zd5Q", "what follows whsec_ is not base64"),
        ("whsec_dG9vIHNob3J0", "too short: its key is 9 bytes"),
    ],
)
def test_the_cli_refuses_a_malformed_secret_before_sending(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    receiver: WebhookReceiver,
    store: MemoryEventStore,
    tmp_path: Any,
    secret: str,
    message: str,
) -> None:
    for name in ("SCHEDULER_DATABASE_URL", "DATABASE_URL", "ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SCHEDULER_JOBSTORE_URL", f"sqlite:///{tmp_path / 'unused.db'}")
    monkeypatch.setattr(scheduler_admin.backends, "open_backend", lambda settings: store)
    monkeypatch.setattr(scheduler_admin.cli, "open_backend", lambda settings: store)
    monkeypatch.setenv("SCHEDULER_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("SCHEDULER_WEBHOOK_SECRET", secret)
    store.add_events(1)
    code, out, err = run(capsys, "webhooks", "--once")
    assert (code, out) == (1, "")
    assert err.startswith("Error: SCHEDULER_WEBHOOK_SECRET") and message in err
    assert "Hint: Generate a secret with: python -c" in err
    assert secret not in err and secret.removeprefix("whsec_") not in err
    assert receiver.received() == []


def test_the_docs_receivers_run_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/webhooks.md: the FastAPI receiver with the standardwebhooks package, and the check
    with ours, accept a signed event and refuse a replay and a forgery."""
    from docs_helpers import blocks, section
    from fastapi import HTTPException

    from scheduler_admin.webhooks import encode, request_headers

    page = "docs/webhooks.md"
    receiver_code, ours_code = blocks(section(page, "Webhooks"), "python")
    monkeypatch.setenv("SCHEDULER_WEBHOOK_SECRET", NEW)
    namespace: dict[str, Any] = {}
    exec(compile(receiver_code, page, "exec"), namespace)
    memory = MemoryEventStore()
    memory.set_webhooks(True)
    (event,) = memory.add_events(1)
    body = encode(event)
    fresh = request_headers(event, body, NEW)
    stale = request_headers(event, body, NEW, timestamp=int(time.time()) - 600)
    forged = request_headers(event, body, OLD)

    async def post(headers: dict[str, str]) -> httpx.Response:
        transport = httpx.ASGITransport(app=namespace["app"])
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.post("/hooks/meetings", content=body, headers=headers)

    answer = asyncio.run(post(fresh))
    assert (answer.status_code, answer.json()) == (200, {"ok": True})
    for headers in (stale, forged, {"Content-Type": "application/json"}):
        answer = asyncio.run(post(headers))
        assert (answer.status_code, answer.json()) == (401, {"detail": "bad signature"})

    class Request:
        def __init__(self, headers: dict[str, str]) -> None:
            self.headers = headers

    def check(headers: dict[str, str]) -> None:
        exec(
            compile(ours_code, page, "exec"),
            {
                "os": __import__("os"),
                "HTTPException": HTTPException,
                "body": body,
                "request": Request(headers),
            },
        )

    check(fresh)
    for headers, reason in ((stale, "s old"), (forged, "another secret")):
        with pytest.raises(HTTPException) as caught:
            check(headers)
        assert caught.value.status_code == 401 and reason in caught.value.detail
