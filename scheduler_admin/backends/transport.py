"""The port between the backend and a database running our SQL functions, and the one time format.

A transport calls ``scheduler.<function>`` with named parameters (``p_...``) and hands back what
the function returned. :class:`~scheduler_admin.backends.functions.FunctionsBackend` is written
once over it; psycopg (:mod:`.psycopg_transport`) and PostgREST (:mod:`.postgrest_transport`)
carry the calls. Parameters are JSON values (strings, numbers, booleans), so that both transports
send the same thing.

Times leave a transport as ISO-8601 strings in UTC, ``datetime.isoformat()``'s spelling
(``2026-12-01T15:30:00+00:00``, microseconds only when non-zero): :func:`iso` in Python,
:func:`iso_sql` when the server formats them, :func:`parse_time` for times PostgreSQL wrote in
JSON.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Literal, Protocol, runtime_checkable

UTC = timezone.utc
SCHEMA = "scheduler"

# How a column of a set-returning function leaves the transport: "text" as a string (ids are
# uuids), "time" as iso() text, "value" as the JSON scalar it is (integers, booleans).
Kind = Literal["text", "time", "value"]
Column = tuple[str, Kind]
Params = Mapping[str, Any]


@runtime_checkable
class Transport(Protocol):
    """Calls of the SQL functions in schema ``scheduler``, whatever carries them."""

    @property
    def target(self) -> str:
        """The database, for messages: passwords and keys masked."""
        ...

    def call(self, function: str, params: Params | None = None) -> Any:
        """``scheduler.<function>(p_... => ...)``: the JSON value a jsonb function returned."""
        ...

    def rows(
        self, function: str, params: Params | None, columns: Sequence[Column]
    ) -> list[tuple[Any, ...]]:
        """The rows of a set-returning function, one tuple each in the order of ``columns``."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class SqlTransport(Transport, Protocol):
    """A transport that may also run SQL of its own: the checks only a direct connection can do
    (PostgREST runs nothing but the functions it exposes)."""

    def facts(self, query: str) -> list[dict[str, Any]]:
        """The rows of a read-only query without parameters, as dicts."""
        ...


def iso(value: object) -> str | None:
    """A time as ISO-8601 in UTC (``datetime.isoformat()``); None stays None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return parse_time(value)


def iso_sql(column: str) -> str:
    """SQL formatting a timestamptz expression as :func:`iso` does."""
    utc = f"({column} at time zone 'UTC')"
    return (
        f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') "
        f"|| case when mod(extract(microseconds from {utc})::bigint, 1000000) <> 0 "
        f"then to_char({utc}, '.US') else '' end || '+00:00'"
    )


_FRACTION = re.compile(r"\.(\d{1,6})")
_SHORT_OFFSET = re.compile(r"([+-]\d\d)$")


def parse_time(value: object) -> str | None:
    """A time PostgreSQL wrote in JSON (``2031-06-01T14:00:00.5+02``) as :func:`iso` writes it."""
    if value is None:
        return None
    # Python 3.10's fromisoformat wants 0, 3 or 6 fractional digits and a +HH:MM offset.
    text = _FRACTION.sub(lambda m: "." + m.group(1).ljust(6, "0"), str(value))
    text = _SHORT_OFFSET.sub(r"\1:00", text)
    return datetime.fromisoformat(text).astimezone(UTC).isoformat()


def normalise_times(result: dict[str, Any]) -> dict[str, Any]:
    """The times of the job in a ``schedule_meeting`` result, as :func:`iso` writes them."""
    job = result.get("job")
    if isinstance(job, dict):
        for key in ("next_run", "end_time"):
            if job.get(key):
                job[key] = parse_time(job[key])
        # the shape of list_jobs' rows: a job has no registration time (a meeting beyond the job
        # horizon has no job: "job" is null then)
        job.setdefault("registered_at", None)
    return result
