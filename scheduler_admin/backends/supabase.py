"""The Backend protocol over Supabase's REST API: ``rpc()`` calls of the SQL functions.

Used with ``ENVIRONMENT=prod``, ``SUPABASE_URL`` and ``SUPABASE_SERVICE_ROLE_KEY`` and no direct
database URL. What service_role may call, and what needs ``SUPABASE_DB_URL`` instead, is in
:mod:`scheduler_admin.backends.postgrest_transport`.

Needs the ``supabase`` extra: ``pip install 'scheduler-admin[supabase]'``.
"""

from __future__ import annotations

from scheduler_admin.backends.functions import FunctionsBackend
from scheduler_admin.backends.postgrest_transport import PostgrestTransport
from scheduler_admin.backends.transport import SCHEMA

__all__ = ["SupabaseBackend"]


class SupabaseBackend(FunctionsBackend):
    """Admin operations through PostgREST RPC with the service role key."""

    name = "supabase"
    transport: PostgrestTransport

    def __init__(self, url: str, key: str, *, timeout: float = 30.0, schema: str = SCHEMA) -> None:
        super().__init__(PostgrestTransport(url, key, timeout=timeout, schema=schema))
