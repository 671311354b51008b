"""The transport over Supabase's REST API: ``rpc()`` through supabase-py (PostgREST).

The functions live in schema ``scheduler``, which must be listed in the project's exposed schemas
(Project Settings → API). ``service_role`` may execute ``list_jobs``, ``recover``, ``history``,
``health``, ``schedule_meeting``, ``cancel_meeting`` and the waker's ``wake`` and
``next_end_time`` (``sql/postgres/50_grants.sql``);
everything else (migrations, pause, resume, reconcile, the pg_cron settings) needs the direct
connection, ``SUPABASE_DB_URL``. PostgREST runs no SQL but these calls: this transport has no
``facts()``.

Needs the ``supabase`` extra: ``pip install 'scheduler-admin[supabase]'``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from scheduler_admin.backends.errors import Call, ServerError, translate
from scheduler_admin.backends.transport import SCHEMA, Column, Params, parse_time
from scheduler_admin.config import mask_secret, mask_url
from scheduler_admin.exceptions import (
    ConfigurationError,
    ConnectionFailed,
    DatabaseError,
    InvalidInput,
    NotMigrated,
    SchedulerError,
)
from scheduler_admin.redact import Redactor

if TYPE_CHECKING:
    from supabase import Client

KEY_HINT = (
    "Set SUPABASE_SERVICE_ROLE_KEY to the project's service_role key (Project Settings → API); "
    "the anon key may not run the admin functions."
)
DIRECT_ONLY_HINT = (
    "Use the direct connection: set SUPABASE_DB_URL (or --database-url) to the database's "
    "connection string."
)
MISSING_EXTRA_HINT = (
    "pip install 'scheduler-admin[supabase]', or set SUPABASE_DB_URL to use the direct "
    "connection instead."
)
# What 50_grants.sql lets service_role execute.
SERVICE_ROLE_FUNCTIONS = frozenset(
    {
        "list_jobs",
        "recover",
        "history",
        "health",
        "schedule_meeting",
        "cancel_meeting",
        "wake",
        "next_end_time",
        # completion events, the webhook dispatcher and the metrics (revision 0004)
        "events",
        "set_webhooks",
        "claim_events",
        "record_attempt",
        "metrics",
        # the registered transitions (0005), doctor's facts about one (0006)
        "transitions",
        "transition_health",
        # the job horizon (0011): list-jobs reads the rows beyond it, horizon shows and sets it
        "horizons",
        "deferred_jobs",
        "set_job_horizon",
        # the elected waker (0012): only the holder of the lease calls wake()
        "claim_waker",
        "release_waker",
    }
)
_DIRECT_ONLY_NOTES = {
    "reconcile": "reconcile (the job meeting-status-reconcile runs it every minute)",
}


def direct_only(function: str) -> InvalidInput:
    """The error for a function service_role may not execute."""
    return InvalidInput(
        f"{_DIRECT_ONLY_NOTES.get(function, function)} is not available over the Supabase REST "
        "API (service_role may only list, recover, read history, health, events and metrics, "
        "schedule, cancel, set the job horizon and deliver webhooks)",
        hint=DIRECT_ONLY_HINT,
    )


class PostgrestTransport:
    """Calls of ``scheduler.*`` through PostgREST RPC with the service role key."""

    def __init__(self, url: str, key: str, *, timeout: float = 30.0, schema: str = SCHEMA) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self.timeout = timeout
        self.schema = schema
        self.target = f"{mask_url(self.url)} (Supabase REST, key {mask_secret(key)})"
        self.redactor = Redactor([key])
        self.redactor.add_url(self.url)
        self._client: Client | None = None
        self._http: Any = None

    def connect(self) -> Client:
        """The supabase-py client, made on first use."""
        if self._client is None:
            try:
                import httpx
                from supabase import ClientOptions, create_client
            except ImportError:
                raise ConfigurationError(
                    "the Supabase backend needs the supabase package", hint=MISSING_EXTRA_HINT
                ) from None
            # the timeout is configured on the HTTP client (supabase-py's own option is deprecated)
            self._http = httpx.Client(timeout=self.timeout)
            try:
                self._client = create_client(
                    self.url,
                    self.key,
                    options=ClientOptions(schema=self.schema, httpx_client=self._http),
                )
            except Exception as exc:  # supabase.SupabaseException: a malformed URL or key
                self.close()
                raise ConfigurationError(
                    f"invalid Supabase settings for {self.target}: "
                    + self.redactor(str(getattr(exc, "message", exc))),
                    hint="SUPABASE_URL is https://<project>.supabase.co.",
                ) from None
        return self._client

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        self._http = None
        self._client = None

    def call(self, function: str, params: Params | None = None) -> Any:
        if function not in SERVICE_ROLE_FUNCTIONS:
            raise direct_only(function)
        params = dict(params or {})
        client = self.connect()  # first: it reports a missing supabase extra
        import httpx
        from postgrest.exceptions import APIError

        try:
            return client.rpc(function, params).execute().data
        except APIError as exc:
            raise self.translate(exc, function, params) from None
        except httpx.TimeoutException:
            raise ConnectionFailed(
                f"{self.target} did not answer within {self.timeout:g} s",
                hint="Check SUPABASE_URL and that the project is not paused.",
            ) from None
        except httpx.HTTPError as exc:
            raise ConnectionFailed(
                f"cannot connect to {self.target}: {self.redactor(str(exc))}",
                hint="Check SUPABASE_URL (https://<project>.supabase.co) and the network.",
            ) from None

    def rows(
        self, function: str, params: Params | None, columns: Sequence[Column]
    ) -> list[tuple[Any, ...]]:
        data = self.call(function, params)
        if not isinstance(data, list):
            raise DatabaseError(f"scheduler.{function} over {self.target} returned no rows")
        return [
            tuple(parse_time(row[name]) if kind == "time" else row[name] for name, kind in columns)
            for row in data
        ]

    def translate(self, exc: Any, function: str, params: Params) -> SchedulerError:
        """A PostgREST error as the domain error: PostgREST's own codes (``PGRST…``) and the API
        gateway's key check here, SQLSTATEs from the database through the shared table."""
        code = str(exc.code or "")
        message = str(exc.message or exc)
        hint = exc.hint if isinstance(exc.hint, str) else None
        # The gateway in front of PostgREST answers a wrong key with no code at all.
        if (not code and message == "Invalid API key") or code.startswith("PGRST30"):
            return ConnectionFailed(
                f"{self.target} rejected the API key ({message})", hint=KEY_HINT
            )
        if code == "PGRST106":
            return ConfigurationError(
                f"schema {self.schema} is not exposed by {self.target} ({message})",
                hint=f"Add {self.schema} to Exposed schemas in Project Settings → API.",
            )
        if code == "PGRST202":
            return NotMigrated(
                f"{self.target} has no function {self.schema}.{function} ({message})",
                hint="Run the migrations with the direct connection (SUPABASE_DB_URL=… "
                "alembic upgrade head), check that schema scheduler is exposed (Project "
                "Settings → API), then reload the API's schema cache.",
            )
        if code.startswith("PGRST") or not code:
            return DatabaseError(f"{message} (PostgREST {code or 'error'})", hint=hint)
        call = Call(self.target, function, params, access_hint=KEY_HINT)
        return translate(ServerError(code, message, hint), call)
