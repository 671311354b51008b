"""A thin stand-in for PostgREST's RPC endpoint, for testing the Supabase client path.

There is no PostgREST binary here. This adapter accepts what supabase-py sends for ``rpc()``:
``POST /rest/v1/rpc/<function>`` with the arguments as a JSON object, ``apikey`` and
``Authorization: Bearer`` headers, and ``Content-Profile: <schema>``. Each key stands for a JWT:
it maps to the JWT's claims (a bare role name means ``{"role": role}``). As PostgREST does, it
logs in as ``authenticator`` (whose own settings, Supabase's 8 s statement timeout among them,
apply to that session), and runs each request in one transaction: ``set local role`` to the
claims' role, that role's own settings applied for the transaction (Supabase's 3 s for anon, 8 s
for authenticated; PostgREST's "impersonated role settings"), the claims as JSON in
``request.jwt.claims`` (with ``request.method``, ``request.path`` and ``request.headers``), then
the call with named arguments. The function is chosen as PostgREST's schema cache chooses it
(the one whose parameters match the argument names; none is 404 ``PGRST202``, several are
300 ``PGRST203``). The result is serialised by PostgreSQL (``to_json`` / ``json_agg``) as
PostgREST does; a database error comes back as PostgREST's ``{"code", "message", "details",
"hint"}`` with the HTTP status of PostgREST's documented table (:func:`http_status`). Nothing
behind the HTTP layer is simulated; GET calls, embedding and the other endpoints are not served.
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
from supabase_shape import role_settings

RPC_PATH = re.compile(r"^/rest/v1/rpc/([A-Za-z_][A-Za-z0-9_]*)$")
# PostgREST's documented table (docs.postgrest.org, Errors, "HTTP Status Codes"): exact codes
# first, then classes (the first two characters), anything else 400. 42501 is separate: 403 for
# a request whose role is not the anonymous one, else 401.
STATUS_BY_CODE = {
    "23503": 409, "23505": 409, "25006": 405, "53400": 500, "P0001": 400,
    "42883": 404, "42P01": 404, "42P17": 500,
}  # fmt: skip
STATUS_BY_CLASS = {
    "08": 503, "09": 500, "0L": 403, "0P": 403, "25": 500, "28": 403, "2D": 500, "38": 500,
    "39": 500, "3B": 500, "40": 500, "53": 503, "54": 500, "55": 500, "57": 500, "58": 500,
    "F0": 500, "HV": 500, "P0": 500, "XX": 500,
}  # fmt: skip
AMBIGUOUS_HINT = (
    "Try renaming the parameters or the function itself in the database so function overloading "
    "can be resolved"
)


def http_status(sqlstate: str, authenticated: bool) -> int:
    """PostgREST's HTTP status for a SQLSTATE raised in a request; ``authenticated``: the
    request's role is not the anonymous role. ``PTxyz`` (a function's own status) is ``xyz``."""
    if sqlstate == "42501":
        return 403 if authenticated else 401
    if len(sqlstate) == 5 and sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])
    if sqlstate in STATUS_BY_CODE:
        return STATUS_BY_CODE[sqlstate]
    return STATUS_BY_CLASS.get(sqlstate[:2], 400)


class PostgrestAdapter:
    """Serve ``/rest/v1/rpc/*`` on 127.0.0.1 for the schemas in ``schemas``."""

    def __init__(
        self,
        dsn: str,
        keys: Mapping[str, str | Mapping[str, Any]],
        schemas: tuple[str, ...],
        anon_role: str = "anon",
    ) -> None:
        self.dsn = dsn  # authenticator's connection string
        # API key -> the claims of the JWT it stands for (a role name: {"role": role})
        self.keys = {
            key: {"role": claims} if isinstance(claims, str) else dict(claims)
            for key, claims in keys.items()
        }
        self.schemas = schemas
        self.anon_role = anon_role
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
        claims = self.keys[bearer]
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
        request = {
            "method": "POST",
            "path": path.split("?", 1)[0].removeprefix("/rest/v1"),
            "headers": {k.lower(): v for k, v in headers.items()},
        }
        return self.call(claims, schema, match.group(1), args, request)

    def call(
        self,
        claims: Mapping[str, Any],
        schema: str,
        function: str,
        args: dict[str, Any],
        request: Mapping[str, Any] | None = None,
    ) -> tuple[int, Any]:
        role = str(claims["role"])
        with psycopg.connect(self.dsn) as conn:  # one transaction, like a PostgREST request
            # PostgREST's schema cache: the functions of that name whose parameters match the
            # keys (every key a parameter, every parameter without a default given)
            candidates = conn.execute(
                "select p.proretset, coalesce(p.proargnames[1:p.pronargs], '{}'), "
                "       p.pronargs - p.pronargdefaults, "
                "       array(select format_type(t, null) from unnest(p.proargtypes::oid[]) "
                "             with ordinality a(t, i) order by i) "
                "from pg_proc p join pg_namespace n on n.oid = p.pronamespace "
                "where n.nspname = %s and p.proname = %s order by p.oid",
                (schema, function),
            ).fetchall()
            chosen = [
                (retset, names, types)
                for retset, names, required, types in candidates
                if set(args) <= set(names) and set(names[:required]) <= set(args)
            ]
            if not chosen:
                params = ", ".join(sorted(args))
                return 404, error(
                    "PGRST202",
                    f"Could not find the function {schema}.{function}({params}) in the schema cache",
                    details=f"Searched for the function {schema}.{function} with parameters "
                    f"{params or '(none)'}, but no matches were found in the schema cache.",
                )
            if len(chosen) > 1:
                signatures = ", ".join(
                    f"{schema}.{function}("
                    + ", ".join(f"{n} => {t}" for n, t in zip(names, types, strict=False))
                    + ")"
                    for _, names, types in chosen
                )
                return 300, error(
                    "PGRST203",
                    f"Could not choose the best candidate function between: {signatures}",
                    hint=AMBIGUOUS_HINT,
                )
            retset, _, _ = chosen[0]
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
            settings = role_settings(conn, role)  # read as authenticator, like the schema cache
            try:
                conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
                # the impersonated role's own settings, then the request's, for this transaction
                for name, setting in settings:
                    conn.execute("select set_config(%s, %s, true)", (name, setting))
                conn.execute(
                    "select set_config('request.jwt.claims', %s, true), "
                    "       set_config('request.method', %s, true), "
                    "       set_config('request.path', %s, true), "
                    "       set_config('request.headers', %s, true)",
                    (
                        json.dumps(dict(claims)),
                        (request or {}).get("method", "POST"),
                        (request or {}).get("path", f"/rpc/{function}"),
                        json.dumps((request or {}).get("headers", {})),
                    ),
                )
                (body,) = conn.execute(query, [as_text(v) for v in args.values()]).fetchone()  # type: ignore[misc]
            except psycopg.Error as exc:
                conn.rollback()
                diag = exc.diag
                return http_status(exc.sqlstate or "", role != self.anon_role), error(
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
