"""Backends: the same admin operations on PostgreSQL, SQLite and (later) Supabase's REST API."""

from __future__ import annotations

from scheduler_admin.backends.base import Backend
from scheduler_admin.config import Settings
from scheduler_admin.exceptions import ConfigurationError


def open_backend(settings: Settings) -> Backend:
    """The backend the settings point at (connections open lazily)."""
    if settings.backend == "postgres":
        from scheduler_admin.backends.postgres import PostgresBackend

        assert settings.url is not None
        return PostgresBackend(settings.url)
    if settings.backend == "sqlite":
        from scheduler_admin.backends.sqlite import SqliteBackend

        assert settings.url is not None
        return SqliteBackend(settings.url)
    raise ConfigurationError(
        "the Supabase REST backend is not available in this version",
        hint="Set SUPABASE_DB_URL to the database's direct connection string instead.",
    )
