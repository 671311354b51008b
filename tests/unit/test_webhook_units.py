"""The pieces of a webhook delivery without a server: back-off with full jitter, the body and its
Standard Webhooks signature, verify(), what each HTTP status means, the settings and what they
never show."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import random
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from scheduler_admin import config
from scheduler_admin.cli import duration, events_table
from scheduler_admin.config import WebhookSettings, resolve, webhook_display, webhook_settings
from scheduler_admin.core import Event
from scheduler_admin.exceptions import ConfigurationError
from scheduler_admin.redact import Redactor
from scheduler_admin.webhooks import (
    BACKOFF_CAP,
    TRANSITION_EVENT_TYPE,
    Attempt,
    Counts,
    Dispatcher,
    VerificationError,
    _Done,
    backoff,
    classify,
    describe_row,
    encode,
    payload,
    request_headers,
    retry_after,
    sign,
    verify,
)

# Standard Webhooks secrets: whsec_ and the base64 of 32 (24) bytes
SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
OTHER = "whsec_" + base64.b64encode(bytes(range(100, 124))).decode()
SENT = 1_796_000_000  # a webhook-timestamp (Unix seconds)

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
    headers = request_headers(ROW_EVENT, body, SECRET, timestamp=SENT)
    assert headers == {
        "Content-Type": "application/json",
        "webhook-id": ROW_EVENT["event_key"],
        "webhook-timestamp": str(SENT),
        "webhook-signature": sign(
            body, msg_id=ROW_EVENT["event_key"], timestamp=SENT, secret=SECRET
        ),
        "Idempotency-Key": ROW_EVENT["event_key"],
        "X-Scheduler-Event": "transition.completed",
    }
    verify(body, headers, SECRET, now=SENT)


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


def test_the_signature_is_the_standard_webhooks_hmac_of_id_timestamp_and_body() -> None:
    # the known answer of the Standard Webhooks scheme's own example
    assert (
        sign(
            b'{"test": 2432232314}',
            msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
            timestamp=1614265330,
            secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )
    body = encode(EVENT)
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed = f"{EVENT['event_key']}.{SENT}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(digest).decode()
    assert sign(body, msg_id=EVENT["event_key"], timestamp=SENT, secret=SECRET) == expected


def test_headers_carry_the_id_and_timestamp_always_and_the_signature_only_with_a_secret() -> None:
    body = encode(EVENT)
    plain = request_headers(EVENT, body, None, timestamp=SENT)
    assert plain == {
        "Content-Type": "application/json",
        "webhook-id": EVENT["event_key"],
        "webhook-timestamp": str(SENT),
        "Idempotency-Key": EVENT["event_key"],
        "X-Scheduler-Event": "meeting.completed",
    }
    signed = request_headers(EVENT, body, SECRET, timestamp=SENT)
    assert signed == {**plain, "webhook-signature": signed["webhook-signature"]}
    assert signed["webhook-signature"].startswith("v1,")
    assert "X-Scheduler-Signature" not in signed  # dropped: it signed the body alone
    assert SECRET.removeprefix("whsec_") not in json.dumps(signed)
    now = request_headers(EVENT, body, SECRET)
    assert abs(int(now["webhook-timestamp"]) - datetime.now(timezone.utc).timestamp()) < 5


Change = Callable[[bytes, dict[str, str]], tuple[bytes, dict[str, str]]]


def headers_of(body: bytes, secret: str = SECRET, *, sent: int = SENT) -> dict[str, str]:
    return request_headers(EVENT, body, secret, timestamp=sent)


def test_verify_accepts_a_genuine_request() -> None:
    body = encode(EVENT)
    headers = headers_of(body)
    assert verify(body, headers, SECRET, now=SENT) is None
    assert (
        verify(body, headers, SECRET, now=datetime.fromtimestamp(SENT + 299, timezone.utc)) is None
    )
    # names in any case, values with surrounding blanks, any mapping
    shouted = {name.upper(): f" {value} " for name, value in headers.items()}
    verify(body, shouted, SECRET, now=SENT - 299)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b, h: (b + b" ", h), "no webhook-signature matches"),
        (
            lambda b, h: (b.replace(b'"attempt":3', b'"attempt":4'), h),
            "no webhook-signature matches",
        ),
        (lambda b, h: (b, {**h, "webhook-id": "another-key"}), "no webhook-signature matches"),
        (
            lambda b, h: (b, {**h, "webhook-timestamp": str(SENT + 1)}),
            "no webhook-signature matches",
        ),
        (lambda b, h: (b, {**h, "webhook-signature": "v1,AAAA"}), "no webhook-signature matches"),
        (lambda b, h: (b, {**h, "webhook-signature": "v1a,xyz"}), "no webhook-signature matches"),
        (lambda b, h: (b, {**h, "webhook-timestamp": "1796000000.5"}), "not a time in whole Unix"),
        (lambda b, h: (b, {**h, "webhook-timestamp": "-5"}), "not a time in whole Unix"),
        (
            lambda b, h: (b, {k: v for k, v in h.items() if k != "webhook-signature"}),
            "missing webhook-signature header",
        ),
        (
            lambda b, h: (b, {k: v for k, v in h.items() if k != "webhook-id"}),
            "missing webhook-id header",
        ),
        (lambda b, h: (b, {**h, "webhook-timestamp": ""}), "missing webhook-timestamp header"),
        (
            lambda b, h: (b, {"Content-Type": "application/json"}),
            "missing webhook-id, webhook-timestamp, webhook-signature headers",
        ),
    ],
)
def test_verify_refuses_a_changed_or_unsigned_request(change: Change, message: str) -> None:
    body, headers = change(encode(EVENT), headers_of(encode(EVENT)))
    with pytest.raises(VerificationError, match=message):
        verify(body, headers, SECRET, now=SENT)


def test_verify_refuses_another_secret() -> None:
    body = encode(EVENT)
    with pytest.raises(VerificationError, match="signed with another secret"):
        verify(body, headers_of(body, OTHER), SECRET, now=SENT)


def test_verify_refuses_a_replay_or_a_timestamp_from_the_future() -> None:
    body = encode(EVENT)
    headers = headers_of(body)
    with pytest.raises(VerificationError, match=r"is 301 s old, more than the tolerance of 300 s"):
        verify(body, headers, SECRET, now=SENT + 301)
    later = datetime.fromtimestamp(SENT, timezone.utc) + timedelta(days=1)
    with pytest.raises(VerificationError, match="a replayed or long-delayed request"):
        verify(body, headers, SECRET, now=later)
    with pytest.raises(VerificationError, match=r"is 301 s in the future"):
        verify(body, headers, SECRET, now=SENT - 301)
    with pytest.raises(VerificationError, match=r"is 999999999999 s in the future"):
        verify(body, {**headers, "webhook-timestamp": "999999999999"}, SECRET, now=0)
    # the tolerance is a keyword argument
    verify(body, headers, SECRET, now=SENT + 3599, tolerance=timedelta(hours=1))
    with pytest.raises(VerificationError, match="more than the tolerance of 10 s"):
        verify(body, headers, SECRET, now=SENT + 11, tolerance=timedelta(seconds=10))
    # a fresh request on the real clock
    verify(body, request_headers(EVENT, body, SECRET), SECRET)
    with pytest.raises(VerificationError, match="s old"):
        verify(body, headers, SECRET)  # SENT is long past


def test_verify_errors_are_the_standard_webhooks_error() -> None:
    body = encode(EVENT)
    with pytest.raises(WebhookVerificationError):
        verify(body, {}, SECRET)


def test_rotation_two_secrets_two_signatures_either_accepted() -> None:
    body = encode(EVENT)
    headers = headers_of(body, f"{SECRET} {OTHER}")
    first, second = headers["webhook-signature"].split(" ")
    assert first == headers_of(body, SECRET)["webhook-signature"]
    assert second == headers_of(body, OTHER)["webhook-signature"]
    for secret in (SECRET, OTHER, f"{SECRET} {OTHER}", f"{OTHER}  {SECRET}"):
        verify(body, headers, secret, now=SENT)
    # a receiver that holds both accepts a request signed with either alone
    verify(body, headers_of(body, OTHER), f"{SECRET} {OTHER}", now=SENT)
    verify(body, headers_of(body, SECRET), f"{SECRET} {OTHER}", now=SENT)
    third = "whsec_" + base64.b64encode(b"3" * 32).decode()
    with pytest.raises(VerificationError, match="signed with another secret"):
        verify(body, headers, third, now=SENT)


def test_interoperability_with_the_standardwebhooks_package_without_a_server() -> None:
    body = encode(EVENT)
    # ours, verified by the package (on the real clock: it has a fixed 5-minute tolerance)
    headers = request_headers(EVENT, body, f"{SECRET} {OTHER}")
    assert Webhook(SECRET).verify(body, headers) == payload(EVENT)
    assert Webhook(OTHER).verify(body, headers) == payload(EVENT)
    # the package's, verified by ours
    msg_id, when = "msg_2mN5xWjQnT1oKp", datetime.now(timezone.utc)
    theirs = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(SECRET).sign(msg_id, when, body),
    }
    verify(body, theirs, SECRET)
    with pytest.raises(VerificationError):
        verify(body, theirs, OTHER)


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("0123456789abcdef0123456789abcdef0123456789abcdef", "does not start with whsec_"),
        ("whsec-" + "A" * 44, "does not start with whsec_"),
        ("whsec_" + "A" * 40 + "!", "what follows whsec_ is not base64"),
        ("whsec_" + "A" * 41, "what follows whsec_ is not base64"),
        ("whsec_" + "A" * 40 + "-_", "what follows whsec_ is not base64"),
        ("whsec_", "what follows whsec_ is not base64"),
        ("whsec_c2hvcnQ=", "too short: its key is 5 bytes, at least 24 are needed"),
        (f"{SECRET} {OTHER} {SECRET}", "holds 3 space-separated values: at most 2 secrets"),
        (f"{SECRET} hexhexhexhexhexhex", r"\(secret 2 of 2\) does not start with whsec_"),
    ],
)
def test_a_malformed_secret_is_a_clear_error_that_never_shows_it(secret: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        resolve(None, {"SCHEDULER_WEBHOOK_URL": URL, "SCHEDULER_WEBHOOK_SECRET": secret})
    shown = str(caught.value)
    assert "SCHEDULER_WEBHOOK_SECRET" in shown
    assert "base64.b64encode(os.urandom(32))" in shown  # how to make one
    for part in secret.split():
        if part.removeprefix("whsec_"):
            assert part not in shown and part.removeprefix("whsec_") not in shown
    # also without a URL (a typo shows before webhooks are on), and given to the dispatcher
    with pytest.raises(ConfigurationError, match=message):
        webhook_settings({"SCHEDULER_WEBHOOK_SECRET": secret})

    class NoStore:
        def close(self) -> None:
            pass

    with pytest.raises(ConfigurationError, match=message):
        Dispatcher(NoStore(), "https://hooks.example.com/x", secret=secret)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="the secret"):
        verify(b"{}", headers_of(b"{}"), secret, now=SENT)


def test_a_generated_secret_is_accepted() -> None:
    generated = "whsec_" + base64.b64encode(os.urandom(32)).decode()  # the hint's command
    assert config.webhook_secret_keys(generated) == [base64.b64decode(generated[6:])]
    # unpadded base64 and the spec's 24-byte keys are secrets too
    assert len(config.webhook_secret_keys(generated.rstrip("="))[0]) == 32
    assert len(config.webhook_secret_keys(OTHER)[0]) == 24


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
        "SCHEDULER_WEBHOOK_SECRET": f" {SECRET}\t",
        "SCHEDULER_WEBHOOK_MAX_ATTEMPTS": "3",
        "SCHEDULER_WEBHOOK_TIMEOUT": "2.5",
    }
    settings = resolve(None, env).webhook
    assert settings == WebhookSettings(URL, SECRET, 3, 2.5)
    assert resolve("postgresql://u:p@db/app", env).webhook == settings
    assert resolve(None, {**env, "SCHEDULER_WEBHOOK_SECRET": ""}).webhook == WebhookSettings(
        URL, None, 3, 2.5
    )
    assert resolve(None, {**env, "SCHEDULER_WEBHOOK_SECRET": " "}).webhook == WebhookSettings(
        URL, None, 3, 2.5
    )
    rotating = {**env, "SCHEDULER_WEBHOOK_SECRET": f"{SECRET}   {OTHER}"}
    assert resolve(None, rotating).webhook == WebhookSettings(URL, f"{SECRET} {OTHER}", 3, 2.5)


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
    settings = WebhookSettings(URL, SECRET)
    for text in (repr(settings), settings.display):
        for secret in ("hook-pass", "hook-user", "path-token", "query-token", "whsec"):
            assert secret not in text
    with pytest.raises(ConfigurationError) as caught:
        webhook_settings({"SCHEDULER_WEBHOOK_URL": "https://hook-user:hook-pass@h:port/path-token"})
    assert "hook-pass" not in str(caught.value) and "path-token" not in str(caught.value)


def test_settings_and_environment_redact_the_webhook_secrets() -> None:
    env = {"SCHEDULER_WEBHOOK_URL": URL, "SCHEDULER_WEBHOOK_SECRET": f"{SECRET} {OTHER}"}
    text = f"posting to {URL} with {SECRET}, then {OTHER} and {SECRET} {OTHER}"
    for redactor in (resolve(None, env).redactor(), Redactor.from_environment(env)):
        cleaned = redactor(text)
        for secret in ("hook-pass", "query-token", SECRET, OTHER, SECRET[6:], OTHER[6:]):
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
