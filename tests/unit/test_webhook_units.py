"""The pieces of a webhook delivery without a server: back-off with full jitter, the body and its
signature, what each HTTP status means, the settings and what they never show."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random

import pytest

from scheduler_admin import config
from scheduler_admin.backends.base import Event
from scheduler_admin.cli import duration, events_table
from scheduler_admin.config import WebhookSettings, resolve, webhook_display, webhook_settings
from scheduler_admin.exceptions import ConfigurationError
from scheduler_admin.redact import Redactor
from scheduler_admin.webhooks import (
    BACKOFF_CAP,
    TRANSITION_EVENT_TYPE,
    Attempt,
    Counts,
    Dispatcher,
    _Done,
    backoff,
    classify,
    describe_row,
    encode,
    payload,
    request_headers,
    retry_after,
    signature,
    verify,
)

EVENT: Event = {
    "event_id": 42,
    "event_key": "6f1c2b7e-3d4a-4e5f-8a9b-0c1d2e3f4a5b",
    "meeting_id": "b6d14ac3-7b21-4b79-930d-b3ba7598ebf3",
    "end_time": "2026-11-29T11:39:32+00:00",
    "completed_at": "2026-11-29T11:39:32.412000+00:00",
    "lateness_seconds": 0.412,
    "path": "waker",
    "delivery": "pending",
    "attempts": 3,
    "last_error": "HTTP 503",
    "transition": "meetings",
    "key": "b6d14ac3-7b21-4b79-930d-b3ba7598ebf3",
}
# a row of another registered transition: no meeting id, its key as text
ROW_EVENT: Event = {
    **EVENT,
    "event_id": 43,
    "event_key": "0d7e9a3c-1b2f-4c5d-9e8f-a1b2c3d4e5f6",
    "meeting_id": None,
    "transition": "memberships",
    "key": "12",
    "path": "job",
}


# -- back-off ----------------------------------------------------------------------------------


def test_backoff_ceiling_doubles_from_one_second_to_the_cap() -> None:
    top = [backoff(n, rand=lambda: 1.0) for n in range(1, 13)]
    assert top == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]
    assert BACKOFF_CAP == 300
    assert [backoff(n, rand=lambda: 0.0) for n in range(1, 13)] == [0.0] * 12
    assert backoff(4, rand=lambda: 0.25) == 2.0  # full jitter: rand() * ceiling


def test_backoff_is_full_jitter_within_the_ceiling() -> None:
    generator = random.Random(7)
    for attempt in range(1, 20):
        ceiling = min(300.0, 2.0 ** (attempt - 1))
        waits = [backoff(attempt, rand=generator.random) for _ in range(200)]
        assert all(0 <= w < ceiling for w in waits)
        # spread over the whole range, not bunched at the top (equal jitter) or fixed
        assert min(waits) < ceiling * 0.1 and max(waits) > ceiling * 0.9


def test_backoff_of_a_huge_attempt_number_is_the_cap() -> None:
    assert backoff(10_000, rand=lambda: 1.0) == 300.0
    assert backoff(3, base=0.5, factor=3, cap=10, rand=lambda: 1.0) == 4.5
    with pytest.raises(ValueError, match="start at 1"):
        backoff(0)


# -- the request -------------------------------------------------------------------------------


def test_the_body_is_compact_json_of_the_contract_fields() -> None:
    body = encode(EVENT)
    assert body == (
        b'{"type":"meeting.completed","event_id":42,'
        b'"event_key":"6f1c2b7e-3d4a-4e5f-8a9b-0c1d2e3f4a5b",'
        b'"transition":"meetings","key":"b6d14ac3-7b21-4b79-930d-b3ba7598ebf3",'
        b'"meeting_id":"b6d14ac3-7b21-4b79-930d-b3ba7598ebf3",'
        b'"end_time":"2026-11-29T11:39:32+00:00",'
        b'"completed_at":"2026-11-29T11:39:32.412000+00:00",'
        b'"lateness_seconds":0.412,"path":"waker","attempt":3}'
    )
    assert json.loads(body) == payload(EVENT)
    assert "delivery" not in payload(EVENT) and "last_error" not in payload(EVENT)


def test_the_payload_of_another_transition_names_it_and_its_key() -> None:
    body = encode(ROW_EVENT)
    assert body == (
        b'{"type":"transition.completed","event_id":43,'
        b'"event_key":"0d7e9a3c-1b2f-4c5d-9e8f-a1b2c3d4e5f6",'
        b'"transition":"memberships","key":"12","meeting_id":null,'
        b'"end_time":"2026-11-29T11:39:32+00:00",'
        b'"completed_at":"2026-11-29T11:39:32.412000+00:00",'
        b'"lateness_seconds":0.412,"path":"job","attempt":3}'
    )
    assert json.loads(body) == payload(ROW_EVENT)
    assert payload(ROW_EVENT)["type"] == TRANSITION_EVENT_TYPE
    header = signature(body, "s3cret")
    assert request_headers(ROW_EVENT, body, "s3cret") == {
        "Content-Type": "application/json",
        "Idempotency-Key": ROW_EVENT["event_key"],
        "X-Scheduler-Event": "transition.completed",
        "X-Scheduler-Signature": header,
    }
    assert verify(body, "s3cret", header)


def test_a_final_failure_is_logged_with_the_row_it_completed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert describe_row(EVENT) == f"meeting {EVENT['meeting_id']}"
    assert describe_row(ROW_EVENT) == "memberships row 12"

    class Store:
        def record_attempt(self, event_id: int, **kwargs: object) -> bool:
            return True

        def close(self) -> None:
            pass

    dispatcher = Dispatcher(Store(), "https://hooks.example.com/x")  # type: ignore[arg-type]
    dispatcher._unrecorded = [
        _Done(ROW_EVENT, Attempt("failed", 410, "HTTP 410")),
        _Done(EVENT, Attempt("failed", 410, "HTTP 410")),
    ]
    counts = Counts()
    with caplog.at_level(logging.WARNING, logger="scheduler_admin.webhooks"):
        dispatcher._record(counts)
    assert counts.failed == 2
    assert [r.getMessage() for r in caplog.records] == [
        "webhooks: event 43 (memberships row 12) failed after 3 attempt(s): HTTP 410",
        f"webhooks: event 42 (meeting {EVENT['meeting_id']}) failed after 3 attempt(s): HTTP 410",
    ]


def test_the_signature_is_hmac_sha256_hex_of_the_body() -> None:
    # RFC-style known answer: HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog")
    known = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    assert signature(b"The quick brown fox jumps over the lazy dog", "key") == f"sha256={known}"
    body = encode(EVENT)
    header = signature(body, "s3cret")
    assert header == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert verify(body, "s3cret", header) and verify(body, "s3cret", f" {header} ")
    assert not verify(body, "s3cret", None) and not verify(body, "s3cret", "")
    assert not verify(body, "other", header)
    assert not verify(body.replace(b"42", b"43"), "s3cret", header)
    assert (
        signature(body, "clé") == "sha256=" + hmac.new("clé".encode(), body, "sha256").hexdigest()
    )


def test_headers_carry_the_idempotency_key_and_the_signature_only_with_a_secret() -> None:
    body = encode(EVENT)
    plain = request_headers(EVENT, body, None)
    assert plain == {
        "Content-Type": "application/json",
        "Idempotency-Key": EVENT["event_key"],
        "X-Scheduler-Event": "meeting.completed",
    }
    signed = request_headers(EVENT, body, "s3cret")
    assert signed["X-Scheduler-Signature"] == signature(body, "s3cret")
    assert "s3cret" not in json.dumps(signed)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        *((s, "delivered") for s in (200, 201, 202, 204, 299)),
        *((s, "failed") for s in (400, 401, 403, 404, 405, 409, 410, 413, 422, 451, 499)),
        *((s, "retry") for s in (408, 429, 500, 501, 502, 503, 504, 599)),
        *((s, "retry") for s in (100, 301, 302, 307, 308)),  # redirects are not followed
    ],
)
def test_classify(status: int, outcome: str) -> None:
    assert classify(status) == outcome


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("5", 5.0),
        (" 0.5 ", 0.5),
        ("-1", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
    ],
)
def test_retry_after(header: str | None, seconds: float | None) -> None:
    assert retry_after(header) == seconds


def test_the_lease_outlasts_the_timeout() -> None:
    class NoStore:
        def close(self) -> None:
            pass

    store = NoStore()
    dispatcher = Dispatcher(store, "https://hooks.example.com/x", timeout=10)  # type: ignore[arg-type]
    assert dispatcher.lease_seconds == 25.0 > dispatcher.timeout
    assert Dispatcher(store, "http://h/", timeout=2, lease_seconds=3).lease_seconds == 3  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must exceed the HTTP timeout"):
        Dispatcher(store, "http://h/", timeout=10, lease_seconds=10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_attempts"):
        Dispatcher(store, "http://h/", max_attempts=0)  # type: ignore[arg-type]


# -- settings ----------------------------------------------------------------------------------

URL = "https://hook-user:hook-pass@hooks.example.com:8443/T0/B0/path-token?token=query-token"


def test_webhook_settings_defaults_and_values() -> None:
    assert webhook_settings({}) is None
    assert resolve(None, {}).webhook is None
    settings = webhook_settings({"SCHEDULER_WEBHOOK_URL": " https://hooks.example.com/x "})
    assert settings == WebhookSettings("https://hooks.example.com/x", None, 8, 10.0)
    env = {
        "SCHEDULER_WEBHOOK_URL": URL,
        "SCHEDULER_WEBHOOK_SECRET": "whsec-abcdef123456",
        "SCHEDULER_WEBHOOK_MAX_ATTEMPTS": "3",
        "SCHEDULER_WEBHOOK_TIMEOUT": "2.5",
    }
    settings = resolve(None, env).webhook
    assert settings == WebhookSettings(URL, "whsec-abcdef123456", 3, 2.5)
    assert resolve("postgresql://u:p@db/app", env).webhook == settings
    assert resolve(None, {**env, "SCHEDULER_WEBHOOK_SECRET": ""}).webhook == WebhookSettings(
        URL, None, 3, 2.5
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"SCHEDULER_WEBHOOK_URL": "ftp://hooks.example.com/x"},
            "scheme 'ftp': only http:// and https://",
        ),
        ({"SCHEDULER_WEBHOOK_URL": "hooks.example.com/x"}, "has no scheme"),
        ({"SCHEDULER_WEBHOOK_URL": "https:///x"}, "has no host"),
        ({"SCHEDULER_WEBHOOK_URL": "https://h:port/x"}, "is not a valid URL"),
        (
            {"SCHEDULER_WEBHOOK_TIMEOUT": "ten"},
            "SCHEDULER_WEBHOOK_TIMEOUT='ten' is not a number of seconds",
        ),
        ({"SCHEDULER_WEBHOOK_TIMEOUT": "0"}, "SCHEDULER_WEBHOOK_TIMEOUT='0' is not above 0"),
        ({"SCHEDULER_WEBHOOK_TIMEOUT": "-3"}, "is not above 0"),
        ({"SCHEDULER_WEBHOOK_TIMEOUT": "inf"}, "is not above 0"),
        (
            {"SCHEDULER_WEBHOOK_MAX_ATTEMPTS": "0"},
            "SCHEDULER_WEBHOOK_MAX_ATTEMPTS='0' is not above 0",
        ),
        ({"SCHEDULER_WEBHOOK_MAX_ATTEMPTS": "2.5"}, "is not a whole number"),
    ],
)
def test_invalid_webhook_settings_are_clear_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(")) as caught:
        resolve(None, env)
    assert "path" not in str(caught.value)


def test_the_url_is_shown_without_credentials_path_or_query() -> None:
    assert webhook_display(URL) == "https://hooks.example.com:8443/***"
    assert webhook_display("http://127.0.0.1:9000/") == "http://127.0.0.1:9000"
    assert webhook_display("HTTPS://[::1]/x") == "https://[::1]/***"
    assert webhook_display("https://h:bad/x") == "***"
    settings = WebhookSettings(URL, "whsec-abcdef123456")
    for text in (repr(settings), settings.display):
        for secret in ("hook-pass", "hook-user", "path-token", "query-token", "whsec"):
            assert secret not in text
    with pytest.raises(ConfigurationError) as caught:
        webhook_settings({"SCHEDULER_WEBHOOK_URL": "https://hook-user:hook-pass@h:port/path-token"})
    assert "hook-pass" not in str(caught.value) and "path-token" not in str(caught.value)


def test_settings_and_environment_redact_the_webhook_secrets() -> None:
    env = {"SCHEDULER_WEBHOOK_URL": URL, "SCHEDULER_WEBHOOK_SECRET": "whsec-abcdef123456"}
    text = f"posting to {URL} with whsec-abcdef123456"
    for redactor in (resolve(None, env).redactor(), Redactor.from_environment(env)):
        cleaned = redactor(text)
        for secret in ("hook-pass", "query-token", "whsec-abcdef123456"):
            assert secret not in cleaned, cleaned
    assert config.DEFAULT_WEBHOOK_MAX_ATTEMPTS == 8 and config.DEFAULT_WEBHOOK_TIMEOUT == 10


# -- the events table --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.412, "0.41 s"), (-0.05, "-0.05 s"), (12.34, "12.3 s"), (125, "2m 05s"), (12000, "3h 20m")],
)
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_events_table() -> None:
    assert events_table([]) == "no completion events"
    off: Event = {**EVENT, "event_id": 41, "delivery": None, "attempts": 0, "path": "job"}
    lines = events_table([EVENT, off]).splitlines()
    assert lines[0].split() == [
        "COMPLETED",
        "AT",
        "(UTC)",
        "MEETING",
        "PATH",
        "LATENESS",
        "DELIVERY",
        "ATTEMPTS",
    ]
    assert lines[1].split() == [
        "2026-11-29",
        "11:39:32",
        EVENT["meeting_id"],
        "waker",
        "0.41",
        "s",
        "pending",
        "3",
    ]
    assert lines[2].split()[-3:] == ["s", "off", "0"]
    assert lines[-1] == "2 events"


def test_events_table_of_meetings_alone_reads_as_before() -> None:
    # a meetings-only list: no TRANSITION column, the meeting id under MEETING
    assert events_table([EVENT]).splitlines()[0].split()[:4] == [
        "COMPLETED",
        "AT",
        "(UTC)",
        "MEETING",
    ]


def test_events_table_with_another_transition_names_each_and_its_key() -> None:
    lines = events_table([ROW_EVENT, EVENT]).splitlines()
    assert lines[0].split() == [
        "TRANSITION",
        "COMPLETED",
        "AT",
        "(UTC)",
        "KEY",
        "PATH",
        "LATENESS",
        "DELIVERY",
        "ATTEMPTS",
    ]
    assert lines[1].split()[:5] == ["memberships", "2026-11-29", "11:39:32", "12", "job"]
    assert lines[2].split()[:5] == [
        "meetings",
        "2026-11-29",
        "11:39:32",
        EVENT["meeting_id"],
        "waker",
    ]
    assert lines[-1] == "2 events"
    # one other transition alone has the column too
    assert events_table([ROW_EVENT]).splitlines()[0].startswith("TRANSITION")
