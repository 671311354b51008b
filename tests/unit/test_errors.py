"""The one table from SQLSTATE to domain error, shared by the psycopg and PostgREST transports."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from scheduler_admin.backends.errors import (
    MIGRATE_HINT,
    ROLE_HINT,
    SQLSTATES,
    Call,
    ServerError,
    translate,
)
from scheduler_admin.backends.postgrest_transport import KEY_HINT, PostgrestTransport
from scheduler_admin.exceptions import (
    ConfigurationError,
    ConnectionFailed,
    DatabaseError,
    InvalidInput,
    MeetingNotFound,
    NotMigrated,
    PermissionDenied,
    PgCronUnavailable,
    SchedulerError,
)

MEETING = "6f1d2c3b-0000-4000-8000-000000000001"
CALL = Call("postgresql://app:***@db/app", "cancel_meeting", {"p_meeting_id": MEETING})

# (SQLSTATE, message, error class, words of its message)
CASES = [
    ("P0002", f"no meeting with id {MEETING}", MeetingNotFound, f"no meeting with id {MEETING}"),
    ("22023", "meeting x is done, not upcoming", InvalidInput, "not upcoming"),
    ("55000", "the scheduler is paused", InvalidInput, "paused"),
    ("22P02", 'invalid input syntax for type uuid: "x"', InvalidInput, "invalid input syntax"),
    ("22007", 'invalid input syntax for type timestamp: "x"', InvalidInput, "timestamp"),
    ("22008", "meeting x: end_time is out of range", InvalidInput, "out of range"),
    (
        "42501",
        "permission denied for function cancel_meeting",
        PermissionDenied,
        "postgresql://app:***@db/app: permission denied for scheduler.cancel_meeting",
    ),
    ("3F000", 'schema "scheduler" does not exist', NotMigrated, "is not migrated"),
    ("42883", "function scheduler.cancel_meeting(uuid) does not exist", NotMigrated, "migrated"),
    ("42P01", 'relation "public.meetings" does not exist', NotMigrated, "is not migrated"),
]


ADD = Call("postgresql://app:***@db/app", "add_transition", {"p_name": "memberships"})
# add_transition's refusals of a table keep the function's words and hint; the same SQLSTATEs
# from anything else (a migration's SQL) are the generic error
REFUSALS = [
    ("42703", "public.memberships has no column nope"),
    ("42804", "public.memberships.user_id has type uuid, expected timestamp with time zone"),
    ("42P16", "public.memberships.user_id is not unique"),
    ("42710", "a transition named memberships exists already"),
    ("42809", "public.v is not a table"),
]


def test_every_mapped_sqlstate_is_tested() -> None:
    assert {case[0] for case in CASES} | {code for code, _ in REFUSALS} == set(SQLSTATES)


@pytest.mark.parametrize(("sqlstate", "message"), REFUSALS)
def test_a_functions_refusal_keeps_its_words_and_hint(sqlstate: str, message: str) -> None:
    result = translate(ServerError(sqlstate, message, "the fix"), ADD)
    assert type(result) is InvalidInput
    assert (result.message, result.hint) == (message, "the fix")
    other = translate(ServerError(sqlstate, message, "the fix"), Call("db"))
    assert type(other) is DatabaseError


def test_an_unknown_transition_is_a_refusal_not_a_missing_meeting() -> None:
    call = Call("db", "remove_transition", {"p_name": "nope"})
    result = translate(ServerError("P0002", "no transition named nope", "list them"), call)
    assert type(result) is InvalidInput
    assert (result.message, result.hint) == ("no transition named nope", "list them")


@pytest.mark.parametrize(("sqlstate", "message", "error", "words"), CASES)
def test_sqlstates_map_to_domain_errors(
    sqlstate: str, message: str, error: type[SchedulerError], words: str
) -> None:
    result = translate(ServerError(sqlstate, message, "the server's hint"), CALL)
    assert type(result) is error
    assert words in result.message
    assert result.hint == (MIGRATE_HINT if error is NotMigrated else "the server's hint")


def test_other_sqlstates_keep_the_servers_words() -> None:
    result = translate(ServerError("55P03", "canceling statement due to lock timeout", "h"), CALL)
    assert type(result) is DatabaseError
    assert result.message == "canceling statement due to lock timeout (SQLSTATE 55P03)"
    assert result.hint == "h"
    assert translate(ServerError("", "no code"), CALL).message == "no code (SQLSTATE unknown)"


def test_the_meeting_id_comes_from_the_call_not_the_message() -> None:
    error = translate(ServerError("P0002", "anything at all"), CALL)
    assert isinstance(error, MeetingNotFound) and error.meeting_id == MEETING
    # no_data_found outside a call about a meeting is not about meetings
    other = translate(ServerError("P0002", "query returned no rows"), Call("db", "health"))
    assert type(other) is DatabaseError


def test_permission_denied_hints_at_the_role_or_the_key() -> None:
    denied = ServerError("42501", "permission denied for function health")
    assert translate(denied, Call("db", "health")).hint == ROLE_HINT
    assert translate(denied, Call("db", "health", access_hint=KEY_HINT)).hint == KEY_HINT
    # a migration's own refusal keeps its words and its hint
    refused = ServerError("42501", "public.meetings belongs to role a", "Migrate as a.")
    error = translate(refused, Call("db"))
    assert isinstance(error, PermissionDenied)
    assert (error.message, error.hint) == ("public.meetings belongs to role a", "Migrate as a.")


def test_missing_pg_cron_and_missing_objects_outside_our_functions() -> None:
    for sqlstate, message in (
        ("3F000", 'schema "cron" does not exist'),
        ("42P01", 'relation "cron.job" does not exist'),
    ):
        error = translate(ServerError(sqlstate, message), CALL)
        assert isinstance(error, PgCronUnavailable) and "pg_cron is not installed" in error.message
    # in a migration a missing table is the migration's own error, not "run migrate"
    error = translate(ServerError("42P01", 'relation "x" does not exist'), Call("db"))
    assert type(error) is DatabaseError
    assert translate(ServerError("42883", "f"), Call("db", "health")).hint == MIGRATE_HINT


def api_error(code: str | None, message: str, hint: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(code=code, message=message, hint=hint, details=None)


@pytest.mark.parametrize(
    ("code", "message", "error", "words"),
    [
        (None, "Invalid API key", ConnectionFailed, "rejected the API key"),
        ("PGRST301", "JWT expired", ConnectionFailed, "rejected the API key"),
        ("PGRST106", "Invalid schema: scheduler", ConfigurationError, "is not exposed"),
        (
            "PGRST202",
            "Could not find the function",
            NotMigrated,
            "has no function scheduler.health",
        ),
        ("PGRST102", "Empty or invalid json", DatabaseError, "(PostgREST PGRST102)"),
        ("42501", "permission denied for function health", PermissionDenied, "scheduler.health"),
        ("P0002", "no meeting with id x", DatabaseError, "(SQLSTATE P0002)"),
        ("57014", "canceling statement due to statement timeout", DatabaseError, "SQLSTATE 57014"),
    ],
)
def test_postgrest_codes_first_then_the_shared_table(
    code: str | None, message: str, error: type[SchedulerError], words: str
) -> None:
    transport = PostgrestTransport("https://project.supabase.co", "secret-key-0123456789")
    result = transport.translate(api_error(code, message), "health", {})
    assert type(result) is error and words in result.message
    assert "secret-key-0123456789" not in str(result)
    if error is PermissionDenied:
        assert result.hint == KEY_HINT
