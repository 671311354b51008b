"""Errors the server reports, as the domain errors they mean: one table keyed on SQLSTATE.

Both transports read the SQLSTATE of a failed call (psycopg from ``exc.diag``, PostgREST from the
``code`` of its JSON error) into a :class:`ServerError` and call :func:`translate`. The SQLSTATEs
our functions raise are in the admin functions of ``sql/postgres/`` (``40_recovery.sql`` …):
``no_data_found`` for an unknown meeting, ``invalid_parameter_value`` for a meeting that is not
upcoming, ``object_not_in_prerequisite_state`` while the scheduler is paused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scheduler_admin.exceptions import (
    DatabaseError,
    InvalidInput,
    MeetingNotFound,
    NotMigrated,
    PermissionDenied,
    PgCronUnavailable,
    SchedulerError,
)

MIGRATE_HINT = "Run `scheduler-admin migrate` (or `alembic upgrade head`)."
ROLE_HINT = (
    "Connect as the role that ran the migrations (the owner of public.meetings) or as a "
    "superuser: the scheduler's functions are not granted to other roles."
)
PG_CRON_HINT = "Run `scheduler-admin doctor` to see what is missing."


@dataclass(frozen=True)
class ServerError:
    """An error the server reported, whichever transport carried it."""

    sqlstate: str
    message: str
    hint: str | None = None


@dataclass(frozen=True)
class Call:
    """What was being done when the error came: for the message and the hint."""

    target: str  # the database, masked
    function: str | None = None  # scheduler.<function>; None for other SQL (a migration)
    params: Mapping[str, Any] = field(default_factory=dict)
    access_hint: str = ROLE_HINT  # how to get the right role (a key over REST)


def _invalid_input(error: ServerError, call: Call) -> SchedulerError:
    return InvalidInput(error.message, hint=error.hint)


def _meeting_not_found(error: ServerError, call: Call) -> SchedulerError:
    # no_data_found is what schedule_meeting and cancel_meeting raise for an unknown id, and
    # the transitions' functions for an unknown name (or a delivery report for an event gone)
    if "p_transition" in call.params:  # an operation of one transition: an unknown name
        return InvalidInput(error.message, hint=error.hint)
    if "p_meeting_id" not in call.params:
        return _refused(error, call)
    return MeetingNotFound(str(call.params["p_meeting_id"]), hint=error.hint)


# The functions that refuse a request with their own message and hint under these SQLSTATEs
# (add_transition's checks of a table, an unknown transition or event).
REFUSING = frozenset({"add_transition", "remove_transition", "record_attempt", "transition_health"})


def _refused(error: ServerError, call: Call) -> SchedulerError:
    if call.function not in REFUSING:
        return fallback(error, call)
    return InvalidInput(error.message, hint=error.hint)


def _permission_denied(error: ServerError, call: Call) -> SchedulerError:
    if call.function is None:
        return PermissionDenied(error.message, hint=error.hint or call.access_hint)
    return PermissionDenied(
        f"{call.target}: permission denied for scheduler.{call.function} ({error.message})",
        hint=error.hint or call.access_hint,
    )


def _missing_object(error: ServerError, call: Call) -> SchedulerError:
    # The SQLSTATE says that a schema, function or table is missing; only the message says which.
    if "cron" in error.message:
        return PgCronUnavailable(
            f"pg_cron is not installed in {call.target} ({error.message})", hint=PG_CRON_HINT
        )
    if call.function is None:  # SQL of a migration: nothing of ours to point at
        return fallback(error, call)
    return NotMigrated(f"{call.target} is not migrated ({error.message})", hint=MIGRATE_HINT)


Rule = Callable[[ServerError, Call], SchedulerError]

SQLSTATES: dict[str, Rule] = {
    "P0002": _meeting_not_found,  # no_data_found
    "22023": _invalid_input,  # invalid_parameter_value
    "55000": _invalid_input,  # object_not_in_prerequisite_state
    "22P02": _invalid_input,  # invalid_text_representation
    "22007": _invalid_input,  # invalid_datetime_format
    "22008": _invalid_input,  # datetime_field_overflow
    "42501": _permission_denied,  # insufficient_privilege
    "3F000": _missing_object,  # invalid_schema_name
    "42883": _missing_object,  # undefined_function
    "42P01": _missing_object,  # undefined_table
    # add_transition's checks of a table
    "42703": _refused,  # undefined_column
    "42804": _refused,  # datatype_mismatch
    "42P16": _refused,  # invalid_table_definition
    "42710": _refused,  # duplicate_object
    "42809": _refused,  # wrong_object_type
}


def fallback(error: ServerError, call: Call) -> SchedulerError:
    """Any other error: the server's words and its SQLSTATE."""
    return DatabaseError(
        f"{error.message} (SQLSTATE {error.sqlstate or 'unknown'})", hint=error.hint
    )


def translate(error: ServerError, call: Call) -> SchedulerError:
    """The domain error a server error means (the only table that says so)."""
    return SQLSTATES.get(error.sqlstate, fallback)(error, call)
