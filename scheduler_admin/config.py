"""Configuration: which database the scheduler works on.

Resolution order (compatible with the original service's variables):

1. the ``--database-url`` option (``explicit_url``);
2. ``SCHEDULER_DATABASE_URL``;
3. ``DATABASE_URL``;
4. ``ENVIRONMENT=prod``: ``SUPABASE_DB_URL`` (direct connection), else ``SUPABASE_URL`` with
   ``SUPABASE_SERVICE_ROLE_KEY`` (REST, admin commands only);
5. development: ``SCHEDULER_JOBSTORE_URL``, default ``sqlite:///scheduler_jobs.db``.

``ENABLE_MEETING_STATUS_UPDATES=false`` turns off the Python side (start-up recovery, worker).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from scheduler_admin.exceptions import ConfigurationError

DEFAULT_SQLITE_URL = "sqlite:///scheduler_jobs.db"
PRODUCTION_NAMES = frozenset({"prod", "production"})
Backend = Literal["postgres", "sqlite", "supabase"]

_SECRET_PARAMS = frozenset({"password", "sslpassword", "apikey", "api_key", "key", "token"})
_FALSE = frozenset({"0", "false", "no", "off"})
_TRUE = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True)
class Settings:
    """Where and how the scheduler works. ``url`` is unset for the Supabase REST backend."""

    backend: Backend
    source: str
    url: str | None = None
    supabase_url: str | None = None
    supabase_key: str | None = None
    environment: str = "dev"
    enabled: bool = True

    @property
    def display(self) -> str:
        """The target with every secret masked, for messages and logs."""
        if self.backend == "supabase":
            return f"{self.supabase_url} (Supabase REST, key {mask_secret(self.supabase_key)})"
        return mask_url(self.url or "")

    @property
    def is_production(self) -> bool:
        return self.environment.lower() in PRODUCTION_NAMES


def mask_secret(secret: str | None) -> str:
    """``abc…`` style: never more than the first 4 characters of a secret."""
    if not secret:
        return "(unset)"
    return secret[:4] + "***" if len(secret) > 12 else "***"


def mask_url(url: str) -> str:
    """Replace the password (and secret query parameters) of a URL or conninfo with ``***``."""
    if "://" not in url:
        # libpq key=value conninfo
        return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", url, flags=re.I)
    parts = urlsplit(url)
    if "@" not in parts.netloc and not any(
        k.lower() in _SECRET_PARAMS for k, _ in parse_qsl(parts.query, keep_blank_values=True)
    ):
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    query = parts.query
    if query:
        pairs = [
            (k, "***" if k.lower() in _SECRET_PARAMS else v)
            for k, v in parse_qsl(query, keep_blank_values=True)
        ]
        query = urlencode(pairs, safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def parse_bool(value: str | None, *, name: str, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigurationError(f"{name}={value!r} is not a boolean", hint="Use true or false.")


def backend_of(url: str) -> Backend:
    """The backend a URL (or a libpq ``key=value`` conninfo) points at."""
    if "://" not in url and "=" in url:
        return "postgres"
    scheme = url.split(":", 1)[0].lower()
    if scheme.startswith("sqlite"):
        return "sqlite"
    if scheme.startswith(("postgres", "postgresql")):
        return "postgres"
    raise ConfigurationError(
        f"unsupported database URL {mask_url(url)!r}",
        hint="Use postgresql://user:password@host:port/dbname or sqlite:///path/to/file.db.",
    )


def resolve(explicit_url: str | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Resolve the settings from the option and the environment (see the module docstring)."""
    env = os.environ if env is None else env
    environment = env.get("ENVIRONMENT", "dev") or "dev"
    enabled = parse_bool(
        env.get("ENABLE_MEETING_STATUS_UPDATES"), name="ENABLE_MEETING_STATUS_UPDATES", default=True
    )

    def direct(url: str, source: str) -> Settings:
        url = url.strip()
        return Settings(backend_of(url), source, url=url, environment=environment, enabled=enabled)

    if explicit_url:
        return direct(explicit_url, "--database-url")
    for name in ("SCHEDULER_DATABASE_URL", "DATABASE_URL"):
        if env.get(name):
            return direct(env[name], name)
    if environment.lower() in PRODUCTION_NAMES:
        if env.get("SUPABASE_DB_URL"):
            return direct(env["SUPABASE_DB_URL"], "SUPABASE_DB_URL")
        supabase_url, key = env.get("SUPABASE_URL"), env.get("SUPABASE_SERVICE_ROLE_KEY")
        if supabase_url and key:
            return Settings(
                "supabase",
                "SUPABASE_URL",
                supabase_url=supabase_url.rstrip("/"),
                supabase_key=key,
                environment=environment,
                enabled=enabled,
            )
        raise ConfigurationError(
            f"ENVIRONMENT={environment} but no production database is configured",
            hint="Set SUPABASE_DB_URL (direct connection), or SUPABASE_URL and "
            "SUPABASE_SERVICE_ROLE_KEY, or SCHEDULER_DATABASE_URL.",
        )
    return direct(env.get("SCHEDULER_JOBSTORE_URL") or DEFAULT_SQLITE_URL, "SCHEDULER_JOBSTORE_URL")


def psycopg_conninfo(url: str) -> str:
    """A libpq URL or conninfo from a SQLAlchemy-style URL (drops ``+driver``)."""
    return re.sub(r"^postgres(?:ql)?\+\w+://", "postgresql://", url)


def sqlalchemy_url(url: str) -> str:
    """A SQLAlchemy URL: PostgreSQL through psycopg 3, SQLite through the standard library."""
    if backend_of(url) == "postgres":
        if "://" not in url:
            raise ConfigurationError(
                "migrations need a URL, not a key=value conninfo",
                hint="Use postgresql://user:password@host:port/dbname.",
            )
        return re.sub(r"^postgres(?:ql)?(?:\+\w+)?://", "postgresql+psycopg://", url)
    return url
