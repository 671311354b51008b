"""The Backend protocol over Supabase's REST API: ``rpc()`` calls of the SQL functions.

Used with ``ENVIRONMENT=prod``, ``SUPABASE_URL`` and ``SUPABASE_SERVICE_ROLE_KEY`` and no direct
database URL. The functions live in schema ``scheduler``, which must be listed in the project's
exposed schemas (Project Settings → API). ``service_role`` may execute ``list_jobs``, ``recover``,
``history``, ``health``, ``schedule_meeting`` and ``cancel_meeting``; everything else (migrations,
pause, resume, reconcile, the pg_cron settings) needs the direct connection, ``SUPABASE_DB_URL``.

Needs the ``supabase`` extra: ``pip install 'scheduler-admin[supabase]'``.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from scheduler_admin.backends.base import Check, Job, Paused, ReconcileReport, RecoverReport, Run
from scheduler_admin.backends.checks import health_checks, security_checks
from scheduler_admin.backends.postgres import UTC, normalise_times, parse_meeting_id, summary
from scheduler_admin.config import mask_secret, mask_url
from scheduler_admin.exceptions import (
    ConfigurationError,
    ConnectionFailed,
    DatabaseError,
    InvalidInput,
    MeetingNotFound,
    NotMigrated,
    SchedulerError,
)
from scheduler_admin.redact import Redactor

if TYPE_CHECKING:
    from supabase import Client

log = logging.getLogger(__name__)

SCHEMA = "scheduler"
KEY_HINT = (
    "Set SUPABASE_SERVICE_ROLE_KEY to the project's service_role key (Project Settings → API); "
    "the anon key may not run the admin functions."
)
DIRECT_ONLY_HINT = (
    "Use the direct connection: set SUPABASE_DB_URL (or --database-url) to the database's "
    "connection string."
)


def parse_time(value: object) -> str | None:
    """A time from PostgreSQL's JSON (``2031-06-01T12:00:00.5+00:00``) as ISO-8601 UTC."""
    if value is None:
        return None
    text = str(value)
    # Python 3.10's fromisoformat wants 0, 3 or 6 fractional digits and a +HH:MM offset.
    text = re.sub(r"\.(\d{1,6})", lambda m: "." + m.group(1).ljust(6, "0"), text)
    text = re.sub(r"([+-]\d\d)$", r"\1:00", text)
    return datetime.fromisoformat(text).astimezone(UTC).isoformat()


class SupabaseBackend:
    """Admin operations through PostgREST RPC with the service role key."""

    name = "supabase"

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

    def _connect(self) -> Client:
        if self._client is None:
            try:
                import httpx
                from supabase import ClientOptions, create_client
            except ImportError:
                raise ConfigurationError(
                    "the Supabase backend needs the supabase package",
                    hint="pip install 'scheduler-admin[supabase]', or set SUPABASE_DB_URL to use "
                    "the direct connection instead.",
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

    def _rpc(self, function: str, params: dict[str, Any] | None = None) -> Any:
        import httpx
        from postgrest.exceptions import APIError

        client = self._connect()
        try:
            return client.rpc(function, params or {}).execute().data
        except APIError as exc:
            raise self._translate(exc, function) from None
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

    def _translate(self, exc: Any, function: str) -> SchedulerError:
        """Map a PostgREST error (``code`` is a SQLSTATE or PGRSTxxx) to the domain error."""
        code = str(exc.code or "")
        message = str(exc.message or exc)
        hint = exc.hint if isinstance(exc.hint, str) else None
        if message == "Invalid API key" or code.startswith("PGRST30"):
            return ConnectionFailed(
                f"{self.target} rejected the API key ({message})", hint=KEY_HINT
            )
        if code == "42501":
            return ConnectionFailed(
                f"{self.target}: permission denied for scheduler.{function} ({message})",
                hint=KEY_HINT,
            )
        if code == "PGRST106":
            return ConfigurationError(
                f"schema {self.schema} is not exposed by {self.target} ({message})",
                hint=f"Add {self.schema} to Exposed schemas in Project Settings → API.",
            )
        if code in ("PGRST202", "42883", "3F000"):
            return NotMigrated(
                f"{self.target} has no function {self.schema}.{function} ({message})",
                hint="Run the migrations with the direct connection (SUPABASE_DB_URL=… "
                "alembic upgrade head), check that schema scheduler is exposed (Project "
                "Settings → API), then reload the API's schema cache.",
            )
        if code == "P0002" and message.startswith("no meeting with id"):
            return MeetingNotFound(message.removeprefix("no meeting with id ").strip())
        if code in ("22023", "55000", "22P02", "22007", "22008"):
            return InvalidInput(message, hint=hint)
        return DatabaseError(f"{message} (code {code or 'unknown'})", hint=hint)

    # -- operations ---------------------------------------------------------------------------

    def list_jobs(self) -> list[Job]:
        rows = cast(list[dict[str, Any]], self._rpc("list_jobs"))
        return [
            Job(
                meeting_id=r["meeting_id"],
                job_id=int(r["job_id"]),
                job_name=str(r["job_name"]),
                schedule=str(r["schedule"]),
                next_run=parse_time(r["next_run"]),
                end_time=parse_time(r["end_time"]),
                meeting_status=r["meeting_status"],
                active=bool(r["active"]),
            )
            for r in rows
        ]

    def recover(self, *, dry_run: bool = False) -> RecoverReport:
        report = cast(RecoverReport, self._rpc("recover", {"p_dry_run": dry_run}))
        log.info(
            "recover%s on %s: %s", " (dry run)" if dry_run else "", self.target, summary(report)
        )
        return report

    def history(self, *, failed_only: bool = False, limit: int = 50) -> list[Run]:
        if limit < 1:
            raise InvalidInput(f"--limit must be at least 1, got {limit}")
        rows = cast(
            list[dict[str, Any]],
            self._rpc("history", {"p_failed_only": failed_only, "p_limit": limit}),
        )
        return [
            Run(
                run_id=int(r["run_id"]),
                job_id=int(r["job_id"]),
                job_name=r["job_name"],
                meeting_id=r["meeting_id"],
                status=str(r["status"]),
                return_message=r["return_message"],
                start_time=parse_time(r["start_time"]),
                end_time=parse_time(r["end_time"]),
            )
            for r in rows
        ]

    def schedule(self, meeting_id: str, end_time: datetime) -> dict[str, Any]:
        if end_time.tzinfo is None:
            raise InvalidInput("the end time needs a time zone", hint="e.g. 2026-12-01T15:30:00Z")
        result = cast(
            dict[str, Any],
            self._rpc(
                "schedule_meeting",
                {
                    "p_meeting_id": str(parse_meeting_id(meeting_id)),
                    "p_end_time": end_time.isoformat(),
                },
            ),
        )
        log.info("scheduled meeting %s to end at %s", meeting_id, end_time.isoformat())
        return normalise_times(result)

    def cancel(self, meeting_id: str) -> dict[str, Any]:
        result = cast(
            dict[str, Any],
            self._rpc("cancel_meeting", {"p_meeting_id": str(parse_meeting_id(meeting_id))}),
        )
        log.info("cancelled meeting %s (%s job removed)", meeting_id, result.get("jobs_removed"))
        return result

    def health(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._rpc("health"))

    def _direct_only(self, what: str) -> SchedulerError:
        return InvalidInput(
            f"{what} is not available over the Supabase REST API (service_role may only list, "
            "recover, read history and health, schedule and cancel)",
            hint=DIRECT_ONLY_HINT,
        )

    def reconcile(self) -> ReconcileReport | Paused:
        raise self._direct_only("reconcile (the job meeting-status-reconcile runs it every minute)")

    def pause(self) -> dict[str, Any]:
        raise self._direct_only("pause")

    def resume(self) -> RecoverReport:
        raise self._direct_only("resume")

    def doctor(self) -> list[Check]:
        """The checks scheduler.health() and scheduler.history() can answer over RPC."""
        health = self.health()
        failures = self.history(failed_only=True, limit=3) if health["failed_runs_24h"] else []
        checks = [
            Check(
                name="checked through the REST API",
                ok=True,
                detail="only scheduler.health() and scheduler.history() are available over RPC: "
                "pg_cron's preload and database settings and the triggers on meetings are not "
                "checked",
                fix=None,
            ),
            Check(
                name="pg_cron installed",
                ok=health.get("pg_cron_version") is not None,
                detail=f"pg_cron {health.get('pg_cron_version')}"
                if health.get("pg_cron_version")
                else "extension pg_cron not created",
                fix=None
                if health.get("pg_cron_version")
                else "Enable pg_cron (Database → Extensions), then run the migrations.",
            ),
            Check(
                name="migrated",
                ok=True,
                detail="the scheduler's functions answer over RPC",
                fix=None,
            ),
        ]
        checks += health_checks(health, failures)
        checks += security_checks(health.get("security"))
        checks.append(
            Check(
                name="full check",
                ok=True,
                detail="for the pg_cron settings and the triggers, run doctor with SUPABASE_DB_URL "
                "set to the direct connection",
                fix=None,
            )
        )
        return checks
