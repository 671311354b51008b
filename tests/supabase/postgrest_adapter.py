"""A thin stand-in for PostgREST's RPC endpoint, for testing the Supabase client path.

There is no PostgREST binary here. This adapter accepts what supabase-py sends for ``rpc()``:
``POST /rest/v1/rpc/<function>`` with the arguments as a JSON object, ``apikey`` and
``Authorization: Bearer`` headers, and ``Content-Profile: <schema>``. It maps the key to a role as
PostgREST maps a JWT's ``role`` claim, logs in as ``authenticator``, switches to that role with
``set local role`` and calls the real function on the test cluster with named arguments. The
result is serialised by PostgreSQL (``to_json`` / ``json_agg``) as PostgREST does; a database
error comes back as PostgREST's ``{"code", "message", "details", "hint"}`` with PostgREST's HTTP
status for its SQLSTATE. Nothing behind the HTTP layer is simulated.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
from psycopg import sql

RPC_PATH = re.compile(r"^/rest/v1/rpc/([A-Za-z_][A-Za-z0-9_]*)$")


def http_status(sqlstate: str, role: str) -> int:
    """PostgREST's HTTP status for a SQLSTATE (the subset our functions can raise)."""
    if sqlstate == "42501":
        return 401 if role == "anon" else 403
    if sqlstate in ("42883", "42P01"):
        return 404
    if sqlstate in ("23503", "23505"):
        return 409
    if sqlstate == "P0001" or sqlstate[:2] in ("22", "23", "42"):
        return 400
    if sqlstate[:2] in ("08", "53"):
        return 503
    return 500


class PostgrestAdapter:
    """Serve ``/rest/v1/rpc/*`` on 127.0.0.1 for the schemas in ``schemas``."""

    def __init__(self, dsn: str, keys: Mapping[str, str], schemas: tuple[str, ...]) -> None:
        self.dsn = dsn  # authenticator's connection string
        self.keys = dict(keys)  # API key -> role
        self.schemas = schemas
        adapter = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                status, body = adapter.handle(
                    self.path,
                    self.headers,
                    self.rfile.read(int(self.headers.get("Content-Length") or 0)),
                )
                payload = json.dumps(body).encode() if not isinstance(body, bytes) else body
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.requests = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @contextmanager
    def running(self) -> Iterator[PostgrestAdapter]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
            thread.join()

    def handle(self, path: str, headers: Mapping[str, str], raw: bytes) -> tuple[int, Any]:
        self.requests += 1
        match = RPC_PATH.match(path.split("?", 1)[0])
        if match is None:
            return 404, error("PGRST125", f"Invalid path specified in request URL: {path}")
        # The API gateway checks apikey; PostgREST takes the role from the bearer token.
        apikey = headers.get("apikey")
        bearer = (headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        if apikey not in self.keys or bearer not in self.keys:
            return 401, {
                "message": "Invalid API key",
                "hint": "Double check your Supabase `anon` or `service_role` API key.",
            }
        role = self.keys[bearer]
        schema = headers.get("Content-Profile") or self.schemas[0]
        if schema not in self.schemas:
            return 406, error(
                "PGRST106",
                "Invalid schema: " + schema,
                hint="Only the following schemas are exposed: " + ", ".join(self.schemas),
            )
        try:
            args = json.loads(raw or b"{}")
        except ValueError as exc:
            return 400, error("PGRST102", f"Empty or invalid json: {exc}")
        if not isinstance(args, dict):
            return 400, error("PGRST102", "The request body must be a JSON object")
        return self.call(role, schema, match.group(1), args)

    def call(self, role: str, schema: str, function: str, args: dict[str, Any]) -> tuple[int, Any]:
        with psycopg.connect(self.dsn) as conn:  # one transaction, like a PostgREST request
            # PostgREST's schema cache: the function of that name whose parameters match the keys.
            candidates = conn.execute(
                "select p.proretset, "
                "       coalesce(p.proargnames[1:p.pronargs], '{}'), p.pronargs - p.pronargdefaults "
                "from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
                "where n.nspname = %s and p.proname = %s",
                (schema, function),
            ).fetchall()
            chosen = [
                (retset, names)
                for retset, names, required in candidates
                if set(args) <= set(names) and set(names[:required]) <= set(args)
            ]
            if len(chosen) != 1:
                params = ", ".join(sorted(args))
                return 404, error(
                    "PGRST202",
                    f"Could not find the function {schema}.{function}({params}) in the schema cache",
                    details=f"Searched for the function {schema}.{function} with parameters "
                    f"{params or '(none)'}, but no matches were found in the schema cache.",
                )
            retset, _ = chosen[0]
            call = sql.SQL("{}.{}({})").format(
                sql.Identifier(schema),
                sql.Identifier(function),
                sql.SQL(", ").join(
                    sql.SQL("{} => {}").format(sql.Identifier(name), sql.Placeholder())
                    for name in args
                ),
            )
            if retset:
                query = sql.SQL(
                    "select coalesce(json_agg(_postgrest_t), '[]')::text from (select * from {}) _postgrest_t"
                ).format(call)
            else:
                query = sql.SQL("select to_json({})::text").format(call)
            try:
                conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
                (body,) = conn.execute(query, [as_text(v) for v in args.values()]).fetchone()  # type: ignore[misc]
            except psycopg.Error as exc:
                conn.rollback()
                diag = exc.diag
                return http_status(exc.sqlstate or "", role), error(
                    exc.sqlstate or "",
                    diag.message_primary or str(exc),
                    details=diag.message_detail,
                    hint=diag.message_hint,
                )
        return 200, (body or "null").encode()


def as_text(value: Any) -> str | None:
    """A JSON argument as PostgreSQL text input of the parameter's type (sent as unknown)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


def error(
    code: str, message: str, *, details: str | None = None, hint: str | None = None
) -> dict[str, Any]:
    return {"code": code, "message": message, "details": details, "hint": hint}
