"""The Backend protocol on PostgreSQL with pg_cron, over a direct psycopg connection."""

from __future__ import annotations

from typing import Any

import psycopg

from scheduler_admin.backends.functions import FunctionsBackend
from scheduler_admin.backends.psycopg_transport import (
    PsycopgTransport,
    connection_error,
    translate,
)

__all__ = ["PostgresBackend", "connection_error", "translate"]


class PostgresBackend(FunctionsBackend):
    """Admin operations on a PostgreSQL database migrated by this package."""

    name = "postgres"
    transport: PsycopgTransport

    def __init__(self, url: str, *, connect_timeout: int = 10) -> None:
        super().__init__(PsycopgTransport(url, connect_timeout=connect_timeout))

    @property
    def conninfo(self) -> str:
        """The libpq connection string of the URL."""
        return self.transport.conninfo

    def connect(self) -> psycopg.Connection[dict[str, Any]]:
        """The backend's session (autocommit, dict rows), for SQL of one's own."""
        return self.transport.connect()
