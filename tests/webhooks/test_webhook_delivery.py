"""The webhook dispatcher against a real HTTP receiver on 127.0.0.1 and a store of completion
events: retries, timeouts, a receiver that is down, dispatchers that die or run side by side,
permanent failures, the attempt limit, the signature and the idempotency key."""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from datetime import timedelta

import pytest
from standardwebhooks import Webhook
from webhook_helpers import (
    HOLD,
    Answer,
    DispatcherFactory,
    EventStoreHarness,
    FlakyStore,
    Killable,
    WebhookReceiver,
    free_port,
    poll,
    sleep,
)

from scheduler_admin.webhooks import (
    EVENT_TYPE,
    TRANSITION_EVENT_TYPE,
    Dispatcher,
    VerificationError,
    verify,
)

SECRET = "whsec_" + base64.b64encode(b"delivery tests' secret, 32 bytes").decode()


def delivered(store: EventStoreHarness, *event_ids: int) -> bool:
    return all(store.event(i)["delivery"] == "delivered" for i in event_ids)


def settled(store: EventStoreHarness, *event_ids: int) -> bool:
    return all(store.event(i)["delivery"] in ("delivered", "failed") for i in event_ids)


def outcomes(store: EventStoreHarness, event_id: int) -> list[str]:
    return [a["outcome"] for a in store.attempts(event_id)]


def test_one_event_is_posted_with_its_payload_and_headers(
    event_store: EventStoreHarness, receiver: WebhookReceiver, make_dispatcher: DispatcherFactory
) -> None:
    (event,) = event_store.add_events(1)
    before = int(time.time())
    counts = make_dispatcher().run_once()
    after = time.time()
    assert (counts.claimed, counts.delivered, counts.retried, counts.failed) == (1, 1, 0, 0)
    (request,) = receiver.received()
    assert request.path == "/hooks/meetings"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == event["event_key"]
    assert before <= int(request.headers["webhook-timestamp"]) <= after
    assert request.headers["idempotency-key"] == event["event_key"]
    assert request.headers["x-scheduler-event"] == EVENT_TYPE == "meeting.completed"
    assert "webhook-signature" not in request.headers  # no secret, no signature
    assert "x-scheduler-signature" not in request.headers  # the old scheme is gone
    assert request.json == {
        "type": "meeting.completed",
        "event_id": event["event_id"],
        "event_key": event["event_key"],
        "transition": "meetings",
        "key": event["meeting_id"],
        "meeting_id": event["meeting_id"],
        "end_time": event["end_time"],
        "completed_at": event["completed_at"],
        "lateness_seconds": event["lateness_seconds"],
        "path": event["path"],
        "attempt": 1,
    }
    now = event_store.event(event["event_id"])
    assert (now["delivery"], now["attempts"]) == ("delivered", 1)
    assert [
        (a["attempt"], a["outcome"], a["status_code"])
        for a in event_store.attempts(now["event_id"])
    ] == [(1, "delivered", 200)]


def test_500s_then_success_retries_with_the_same_idempotency_key(
    event_store: EventStoreHarness, receiver: WebhookReceiver, make_dispatcher: DispatcherFactory
) -> None:
    (event,) = event_store.add_events(1)
    receiver.script(500, 502, 503)
    dispatcher = make_dispatcher()
    dispatcher.start_thread()
    assert poll(lambda: delivered(event_store, event["event_id"]))
    requests = receiver.received()
    assert [r.key for r in requests] == [event["event_key"]] * 4
    assert [r.headers["webhook-id"] for r in requests] == [event["event_key"]] * 4
    stamps = [int(r.headers["webhook-timestamp"]) for r in requests]
    assert stamps == sorted(stamps)  # each attempt is stamped when it is sent
    assert [r.json["attempt"] for r in requests] == [1, 2, 3, 4]
    assert {
        r.body.replace(b'"attempt":' + str(r.json["attempt"]).encode(), b"") for r in requests
    } == {
        requests[0].body.replace(b'"attempt":1', b"")
    }  # the same event each time, but for the attempt number
    attempts = event_store.attempts(event["event_id"])
    assert [(a["attempt"], a["outcome"], a["status_code"]) for a in attempts] == [
        (1, "retry", 500),
        (2, "retry", 502),
        (3, "retry", 503),
        (4, "delivered", 200),
    ]
    assert attempts[0]["error"] == "HTTP 500"
    assert event_store.event(event["event_id"])["attempts"] == 4


def test_408_and_429_are_retried_and_retry_after_is_honoured(
    event_store: EventStoreHarness, receiver: WebhookReceiver, make_dispatcher: DispatcherFactory
) -> None:
    (event,) = event_store.add_events(1)
    receiver.script(408, Answer(429, headers=(("Retry-After", "0.3"),)))
    dispatcher = make_dispatcher(backoff_cap=1.0)
    dispatcher.start_thread()
    assert poll(lambda: delivered(event_store, event["event_id"]))
    assert outcomes(event_store, event["event_id"]) == ["retry", "retry", "delivered"]
    second, third = receiver.received()[1:]
    assert third.at - second.at >= 0.3 - 0.05  # the receiver asked for 0.3 s


def test_a_timeout_is_retried(
    event_store: EventStoreHarness, receiver: WebhookReceiver, make_dispatcher: DispatcherFactory
) -> None:
    (event,) = event_store.add_events(1)
    receiver.script(sleep(2.0))  # past the dispatcher's 0.3 s
    dispatcher = make_dispatcher(timeout=0.3)
    dispatcher.start_thread()
    assert poll(lambda: delivered(event_store, event["event_id"]))
    first, second = event_store.attempts(event["event_id"])
    assert (first["outcome"], first["status_code"]) == ("retry", None)
    assert first["error"] == "no answer after 0.3 s"
    assert second["outcome"] == "delivered"
    assert [r.key for r in receiver.received()] == [event["event_key"]] * 2


def test_a_receiver_that_is_down_then_up_gets_every_event(
    event_store: EventStoreHarness, make_dispatcher: DispatcherFactory
) -> None:
    events = event_store.add_events(3)
    ids = [e["event_id"] for e in events]
    port = free_port()
    dispatcher = make_dispatcher(url=f"http://127.0.0.1:{port}/hooks", max_attempts=1000)
    dispatcher.start_thread()
    assert poll(lambda: all(len(event_store.attempts(i)) >= 2 for i in ids))
    assert all(
        a["outcome"] == "retry" and a["error"].startswith("connection failed")
        for i in ids
        for a in event_store.attempts(i)
    )
    assert not settled(event_store, *ids)
    with WebhookReceiver(port=port) as receiver:
        assert poll(lambda: delivered(event_store, *ids))
        assert sorted(receiver.by_key()) == sorted(e["event_key"] for e in events)


def test_a_dispatcher_killed_mid_delivery_loses_nothing(
    event_store: EventStoreHarness, receiver: WebhookReceiver, make_dispatcher: DispatcherFactory
) -> None:
    """The receiver holds the first request; the dispatcher dies before it can record anything
    more. A new dispatcher leaves the event alone while its lease runs, then delivers it with
    the same idempotency key; the other events were delivered once."""
    events = event_store.add_events(3)
    ids = [e["event_id"] for e in events]
    receiver.script(HOLD)
    lease = 1.5
    doomed = Killable(event_store.open())
    first = make_dispatcher(store=doomed, lease_seconds=lease, timeout=1.0)
    first.start_thread()
    assert poll(lambda: len(receiver.received()) == 3)  # all three POSTed, one of them held
    held = receiver.received()[0]
    others = [e["event_id"] for e in events if e["event_key"] != held.key]
    assert poll(lambda: delivered(event_store, *others))
    doomed.kill()  # SIGKILL: the held event's outcome never reaches the store
    second = make_dispatcher(lease_seconds=lease, timeout=1.0)
    second.start_thread()
    (held_id,) = [e["event_id"] for e in events if e["event_key"] == held.key]
    assert poll(lambda: delivered(event_store, held_id), timeout=15)
    again = receiver.by_key()[held.key or ""]
    # only once the lease has run out (without it, the new dispatcher would have sent it within
    # a poll interval, 0.02 s; the claim came a little before the first arrival)
    assert len(again) == 2 and again[1].at - again[0].at >= lease / 2
    assert [r.json["attempt"] for r in again] == [1, 2]
    assert all(
        len(receiver.by_key()[e["event_key"]]) == (2 if e["event_key"] == held.key else 1)
        for e in events
    )
    assert outcomes(event_store, held_id) == ["delivered"]  # the dead one's was never recorded
    assert event_store.event(held_id)["attempts"] == 2
    assert delivered(event_store, *ids)


def test_two_dispatchers_deliver_every_event_once(
    event_store: EventStoreHarness, receiver: WebhookReceiver, make_dispatcher: DispatcherFactory
) -> None:
    receiver.default = sleep(0.01)
    events = event_store.add_events(60)
    ids = [e["event_id"] for e in events]
    dispatchers = [make_dispatcher(concurrency=4), make_dispatcher(concurrency=4)]
    for dispatcher in dispatchers:
        dispatcher.start_thread()
    assert poll(lambda: delivered(event_store, *ids), timeout=30)
    by_key = receiver.by_key()
    assert sorted(by_key) == sorted(e["event_key"] for e in events)
    # a duplicate is allowed only where a lease expired between the two POSTs
    lease = dispatchers[0].lease_seconds
    for requests in by_key.values():
        for before, after in itertools.pairwise(requests):
            assert after.at - before.at >= lease - 0.2
    assert sum(d.totals.delivered for d in dispatchers) == len(events)
    assert all(d.totals.delivered for d in dispatchers), "one dispatcher did all the work"


def test_a_4xx_fails_at_once(
    event_store: EventStoreHarness, receiver: WebhookReceiver, make_dispatcher: DispatcherFactory
) -> None:
    (event,) = event_store.add_events(1)
    receiver.script(404)
    counts = make_dispatcher().run_once()
    assert (counts.delivered, counts.retried, counts.failed) == (0, 0, 1)
    now = event_store.event(event["event_id"])
    assert (now["delivery"], now["attempts"], now["last_error"]) == ("failed", 1, "HTTP 404")
    assert [(a["outcome"], a["status_code"]) for a in event_store.attempts(event["event_id"])] == [
        ("failed", 404)
    ]
    assert make_dispatcher().run_once().claimed == 0  # never sent again
    assert len(receiver.received()) == 1


def test_max_attempts_then_failed(
    event_store: EventStoreHarness, receiver: WebhookReceiver, make_dispatcher: DispatcherFactory
) -> None:
    (event,) = event_store.add_events(1)
    receiver.default = Answer(500)
    dispatcher = make_dispatcher(max_attempts=3)
    dispatcher.start_thread()
    assert poll(lambda: settled(event_store, event["event_id"]))
    now = event_store.event(event["event_id"])
    assert (now["delivery"], now["attempts"]) == ("failed", 3)
    assert now["last_error"] == "HTTP 500; gave up after 3 attempts"
    assert outcomes(event_store, event["event_id"]) == ["retry", "retry", "failed"]
    dispatcher.stop()
    assert len(receiver.received()) == 3
    assert {r.key for r in receiver.received()} == {event["event_key"]}


def test_every_attempt_is_signed_with_the_standard_webhooks_scheme(
    event_store: EventStoreHarness, receiver: WebhookReceiver, make_dispatcher: DispatcherFactory
) -> None:
    event_store.add_events(2)
    receiver.script(500)  # a retry is signed too
    dispatcher = make_dispatcher(secret=SECRET)
    dispatcher.start_thread()
    assert poll(lambda: len(receiver.received()) == 3)
    for request in receiver.received():
        signature = request.headers["webhook-signature"]
        assert signature.startswith("v1,") and " " not in signature  # one secret, one signature
        assert "x-scheduler-signature" not in request.headers
        # the Standard Webhooks library accepts it, and so does ours
        assert Webhook(SECRET).verify(request.body, request.headers) == request.json
        verify(request.body, request.headers, SECRET)
        other = "whsec_" + base64.b64encode(b"another secret of thirty-two byt").decode()
        with pytest.raises(VerificationError, match="signed with another secret"):
            verify(request.body, request.headers, other)
        with pytest.raises(VerificationError, match="no webhook-signature matches"):
            verify(request.body + b" ", request.headers, SECRET)
        # replayed six minutes later: refused
        sent = int(request.headers["webhook-timestamp"])
        with pytest.raises(VerificationError, match="a replayed or long-delayed request"):
            verify(request.body, request.headers, SECRET, now=sent + 360)
        verify(
            request.body, request.headers, SECRET, now=sent + 360, tolerance=timedelta(minutes=7)
        )
        assert json.loads(request.body)["event_key"] == request.key == request.headers["webhook-id"]


def test_a_database_that_goes_away_is_retried_and_nothing_is_lost(
    event_store: EventStoreHarness, receiver: WebhookReceiver, make_dispatcher: DispatcherFactory
) -> None:
    """The store fails while deliveries are in flight: their outcomes are recorded once it is
    back; meanwhile the loop keeps running."""
    store = FlakyStore(event_store.open())
    receiver.script(HOLD, HOLD)
    events = event_store.add_events(2)
    dispatcher = make_dispatcher(store=store)
    thread = dispatcher.start_thread()
    assert poll(lambda: len(receiver.received()) == 2)
    store.down()
    receiver.release()
    assert poll(lambda: dispatcher.failures >= 2)  # logged, backing off, still looping
    assert thread.is_alive()
    store.up()
    assert poll(lambda: delivered(event_store, *(e["event_id"] for e in events)))
    assert len(receiver.received()) == 2  # recorded late, not sent again
    assert poll(lambda: dispatcher.failures == 0)


def test_stop_finishes_and_records_the_deliveries_in_flight(
    event_store: EventStoreHarness, receiver: WebhookReceiver, make_dispatcher: DispatcherFactory
) -> None:
    (event,) = event_store.add_events(1)
    receiver.script(HOLD)
    dispatcher = make_dispatcher()
    dispatcher.start_thread()
    assert poll(lambda: len(receiver.received()) == 1)
    stopping = threading.Thread(target=dispatcher.stop)
    stopping.start()
    receiver.release()
    stopping.join(10)
    assert not stopping.is_alive()
    assert delivered(event_store, event["event_id"])


def test_idle_polling_never_claims_more_than_due(
    event_store: EventStoreHarness, receiver: WebhookReceiver, make_dispatcher: DispatcherFactory
) -> None:
    dispatcher = make_dispatcher()
    dispatcher.start_thread()
    assert poll(lambda: dispatcher.batches >= 5)  # idle: a few polls find nothing
    assert receiver.received() == []
    (event,) = event_store.add_events(1)
    assert poll(lambda: delivered(event_store, event["event_id"]))
    assert len(receiver.received()) == 1


def test_webhooks_are_turned_on_once_at_start(receiver: WebhookReceiver) -> None:
    from webhook_helpers import MemoryEventStore

    store = MemoryEventStore()
    assert store.events() == []
    before = store.add_events(1)[0]
    assert before["delivery"] is None  # webhooks off: not queued
    dispatcher = Dispatcher(store, receiver.url, poll_interval=0.01)
    assert dispatcher.run_once().claimed == 0
    assert dispatcher.run_once().claimed == 0
    assert store.calls.count("set_webhooks(True)") == 1
    after = store.add_events(1)[0]
    assert after["delivery"] == "pending"
    assert dispatcher.run_once().delivered == 1
    dispatcher.close()
    assert store.event(before["event_id"])["delivery"] is None


def test_an_event_of_another_transition_is_delivered_signed_with_its_transition_and_key(
    receiver: WebhookReceiver,
) -> None:
    """A row of memberships completed: delivered like a meeting's, signed, typed
    ``transition.completed``, naming its transition and key (no meeting id). The in-memory
    store: the databases' recording of these events is tested in tests/postgres and
    tests/sqlite."""
    from webhook_helpers import MemoryEventStore

    secret = SECRET
    store = MemoryEventStore()
    store.set_webhooks(True)
    (meeting,) = store.add_events(1)
    (row,) = store.add_events(1, path="waker", transition="memberships")
    receiver.script(503)  # its retry is signed and typed the same
    dispatcher = Dispatcher(
        store, receiver.url, secret=secret, poll_interval=0.02, backoff_base=0.01, backoff_cap=0.05
    )
    dispatcher.start_thread()
    try:
        assert poll(lambda: delivered(store, meeting["event_id"], row["event_id"]))
    finally:
        dispatcher.stop(timeout=10)
        dispatcher.close()
    by_key = receiver.by_key()
    assert len(by_key[meeting["event_key"]]) + len(by_key[row["event_key"]]) == 3
    for request in receiver.received():
        verify(request.body, request.headers, secret)
    for request in by_key[row["event_key"]]:
        assert request.headers["x-scheduler-event"] == TRANSITION_EVENT_TYPE
        assert request.json == {
            "type": "transition.completed",
            "event_id": row["event_id"],
            "event_key": row["event_key"],
            "transition": "memberships",
            "key": row["key"],
            "meeting_id": None,
            "end_time": row["end_time"],
            "completed_at": row["completed_at"],
            "lateness_seconds": row["lateness_seconds"],
            "path": "waker",
            "attempt": request.json["attempt"],
        }
    (sent,) = by_key[meeting["event_key"]][-1:]
    assert sent.headers["x-scheduler-event"] == EVENT_TYPE
    assert (sent.json["type"], sent.json["transition"], sent.json["key"]) == (
        "meeting.completed",
        "meetings",
        meeting["meeting_id"],
    )
