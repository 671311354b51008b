"""The transport over a direct connection: psycopg, one autocommit session, opened lazily."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row, tuple_row

from scheduler_admin.backends.errors import Call, ServerError
from scheduler_admin.backends.errors import translate as translate_server_error
from scheduler_admin.backends.transport import SCHEMA, Column, Params, iso_sql
from scheduler_admin.config import URL_HINT, mask_url, psycopg_conninfo
from scheduler_admin.exceptions import ConnectionFailed, SchedulerError
from scheduler_admin.redact import Redactor


def server_error(exc: psycopg.Error) -> ServerError:
    """What the server said, from psycopg's diagnostics."""
    diag = exc.diag
    lines = str(exc).strip().splitlines()
    message = diag.message_primary or (lines[0] if lines else type(exc).__name__)
    return ServerError(exc.sqlstate or "", message, diag.message_hint)


def translate(exc: psycopg.Error, target: str) -> SchedulerError:
    """The domain error a psycopg error means, outside a call of our functions (migrations)."""
    return translate_server_error(server_error(exc), Call(target))


def connection_error(
    exc: psycopg.OperationalError, target: str, redactor: Redactor | None = None
) -> ConnectionFailed:
    """What went wrong connecting to ``target`` (already masked) and what to do about it.

    libpq's and psycopg's messages quote what they could not use (a host, a port, a database
    name), which may be a piece of a mis-parsed password: the message shown is redacted.
    """
    raw = str(exc).strip()
    lowered = raw.lower()
    text = (redactor or Redactor())(raw)
    first = text.splitlines()[0] if text else "connection failed"
    if "authentication failed" in lowered or "no password supplied" in lowered:
        hint = "Check the user and password in the database URL."
    elif "role" in lowered and "does not exist" in lowered:
        hint = "Check the user name in the database URL."
    elif "does not exist" in lowered:
        hint = "Check the database name in the URL."
    elif "resolve host" in lowered or "translate host name" in lowered:
        hint = (
            "Check the host name in the URL. If the password holds @ or /, percent-encode them "
            "(%40, %2F): unencoded, part of the password is read as the host."
        )
    elif "timeout" in lowered or "timed out" in lowered:
        hint = "The server did not answer: check host, port and firewall."
    else:
        hint = "Check that the server is running and that host and port in the URL are right."
    return ConnectionFailed(f"cannot connect to {target}: {first}", hint=hint)


def _arguments(params: Params) -> sql.Composable:
    return sql.SQL(", ").join(
        sql.SQL("{} => {}").format(sql.Identifier(name), sql.Placeholder()) for name in params
    )


def _column(name: str, kind: str) -> sql.Composable:
    if kind == "time":
        # formatted by the server: converting 100,000 times into datetimes and back took longer
        # than the query
        return sql.SQL(iso_sql("{0}")).format(sql.Identifier(name))
    if kind == "text":
        return sql.SQL("{}::text").format(sql.Identifier(name))
    return sql.Identifier(name)


class PsycopgTransport:
    """Calls of ``scheduler.*`` on a direct connection to the database."""

    def __init__(self, url: str, *, connect_timeout: int = 10) -> None:
        self.conninfo = psycopg_conninfo(url)
        self.target = mask_url(url)
        self.redactor = Redactor()
        self.redactor.add_url(url)
        self.connect_timeout = connect_timeout
        self._conn: psycopg.Connection[dict[str, Any]] | None = None

    def connect(self) -> psycopg.Connection[dict[str, Any]]:
        """The session (autocommit, dict rows), opened on first use."""
        if self._conn is None or self._conn.closed:
            try:
                self._conn = psycopg.connect(
                    self.conninfo,
                    autocommit=True,
                    row_factory=dict_row,
                    connect_timeout=self.connect_timeout,
                    application_name="scheduler-admin",
                )
            except psycopg.OperationalError as exc:
                raise connection_error(exc, self.target, self.redactor) from None
            except UnicodeDecodeError:
                raise ConnectionFailed(
                    f"invalid database URL {self.target}: a percent-encoded part is not UTF-8",
                    hint=URL_HINT,
                ) from None
            except psycopg.ProgrammingError as exc:
                detail = self.redactor(str(exc).strip()).splitlines() or ["libpq cannot parse it"]
                raise ConnectionFailed(
                    f"invalid database URL {self.target}: {detail[0]}", hint=URL_HINT
                ) from None
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextlib.contextmanager
    def _errors(self, function: str | None = None, params: Params | None = None) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.OperationalError) and (
                self._conn is not None and self._conn.closed
            ):
                raise connection_error(exc, self.target, self.redactor) from None
            call = Call(self.target, function, params or {})
            raise translate_server_error(server_error(exc), call) from None

    def call(self, function: str, params: Params | None = None) -> Any:
        params = params or {}
        query = sql.SQL("select {}.{}({})").format(
            sql.Identifier(SCHEMA), sql.Identifier(function), _arguments(params)
        )
        with self._errors(function, params):
            row = self.connect().cursor(row_factory=tuple_row).execute(query, list(params.values()))
            value = row.fetchone()
        result = None if value is None else value[0]
        return json.loads(result) if isinstance(result, str) else result

    def rows(
        self, function: str, params: Params | None, columns: Sequence[Column]
    ) -> list[tuple[Any, ...]]:
        params = params or {}
        query = sql.SQL("select {} from {}.{}({})").format(
            sql.SQL(", ").join(_column(name, kind) for name, kind in columns),
            sql.Identifier(SCHEMA),
            sql.Identifier(function),
            _arguments(params),
        )
        with self._errors(function, params):
            cursor = self.connect().cursor(row_factory=tuple_row)
            return cursor.execute(query, list(params.values())).fetchall()

    def facts(self, query: str) -> list[dict[str, Any]]:
        with self._errors():
            return self.connect().execute(query).fetchall()
