"""Backends: the same admin operations on PostgreSQL, SQLite and Supabase's REST API."""

from __future__ import annotations

from scheduler_admin.backends.base import Backend
from scheduler_admin.config import Settings, check_sqlite_url
from scheduler_admin.exceptions import ConfigurationError


def open_backend(settings: Settings) -> Backend:
    """The backend the settings point at (connections open lazily): the one place that chooses
    it, for the CLI, the API, the metrics, the waker and the webhook dispatcher alike."""
    if settings.backend == "postgres":
        from scheduler_admin.backends.postgres import PostgresBackend

        assert settings.url is not None
        return PostgresBackend(settings.url)
    if settings.backend == "sqlite":
        from scheduler_admin.backends.sqlite import SqliteBackend

        assert settings.url is not None
        check_sqlite_url(settings.url, settings.source)  # settings built without resolve()
        return SqliteBackend(settings.url)
    if settings.backend == "supabase":
        from scheduler_admin.backends.supabase import SupabaseBackend

        if not settings.supabase_url or not settings.supabase_key:
            raise ConfigurationError(
                "the Supabase backend needs SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY",
                hint="Set both (the project URL and its service role key), or SUPABASE_DB_URL.",
            )
        return SupabaseBackend(settings.supabase_url, settings.supabase_key)
    raise ConfigurationError(
        f"unknown backend {settings.backend!r}",
        hint="Use one of postgres, sqlite or supabase (config.resolve() picks it from the URL).",
    )
