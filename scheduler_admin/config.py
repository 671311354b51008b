"""Configuration: which database the scheduler works on.

Resolution order (compatible with the original service's variables):

1. the ``--database-url`` option (``explicit_url``);
2. ``SCHEDULER_DATABASE_URL``;
3. ``DATABASE_URL``;
4. ``ENVIRONMENT=prod``: ``SUPABASE_DB_URL`` (direct connection), else ``SUPABASE_URL`` with
   ``SUPABASE_SERVICE_ROLE_KEY`` (REST, admin commands only);
5. development: ``SCHEDULER_JOBSTORE_URL``, default ``sqlite:///scheduler_jobs.db``.

``ENABLE_MEETING_STATUS_UPDATES=false`` turns off the Python side (start-up recovery, worker).
``SCHEDULER_METRICS_ROUTE=true`` mounts ``GET /metrics`` in the FastAPI integration
(:func:`metrics_route_enabled`; off by default).

Webhooks (opt-in, :mod:`scheduler_admin.webhooks`): ``SCHEDULER_WEBHOOK_URL`` (an http(s) URL),
``SCHEDULER_WEBHOOK_SECRET`` (a Standard Webhooks secret ``whsec_<base64>``, or two separated by
a space while rotating: see :func:`webhook_secret_keys`), ``SCHEDULER_WEBHOOK_MAX_ATTEMPTS``
(default 8) and ``SCHEDULER_WEBHOOK_TIMEOUT`` (seconds, default 10); see :func:`webhook_settings`.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from scheduler_admin.exceptions import ConfigurationError
from scheduler_admin.redact import Redactor, holds_no_secret, mask_secret, mask_url

__all__ = [
    "DEFAULT_SQLITE_URL",
    "ConfigurationError",
    "Settings",
    "WebhookSettings",
    "backend_of",
    "check_postgres_url",
    "check_sqlite_url",
    "mask_secret",
    "mask_url",
    "metrics_route_enabled",
    "parse_bool",
    "psycopg_conninfo",
    "resolve",
    "sqlalchemy_url",
    "webhook_display",
    "webhook_secret_keys",
    "webhook_settings",
]

DEFAULT_SQLITE_URL = "sqlite:///scheduler_jobs.db"
PRODUCTION_NAMES = frozenset({"prod", "production"})
BackendName = Literal["postgres", "sqlite", "supabase"]

_FALSE = frozenset({"0", "false", "no", "off"})
_TRUE = frozenset({"1", "true", "yes", "on"})

MASKED_URL = "***"
DEFAULT_WEBHOOK_MAX_ATTEMPTS = 8
DEFAULT_WEBHOOK_TIMEOUT = 10.0  # seconds
WEBHOOK_SECRET_PREFIX = "whsec_"  # a Standard Webhooks secret: whsec_<base64 of the key>
WEBHOOK_SECRET_MIN_BYTES = 24  # the Standard Webhooks scheme: keys of 24 to 64 random bytes
WEBHOOK_SECRETS_MAX = 2  # while rotating: the new secret and the old one
NEW_WEBHOOK_SECRET_COMMAND = (
    "python -c \"import base64,os;print('whsec_'+base64.b64encode(os.urandom(32)).decode())\""
)


@dataclass(frozen=True)
class WebhookSettings:
    """Where completion events are POSTed (``SCHEDULER_WEBHOOK_*``)."""

    url: str
    secret: str | None = None
    max_attempts: int = DEFAULT_WEBHOOK_MAX_ATTEMPTS
    timeout: float = DEFAULT_WEBHOOK_TIMEOUT

    @property
    def display(self) -> str:
        """The URL for messages and logs: scheme, host and port only (see
        :func:`webhook_display`)."""
        return webhook_display(self.url)

    def __repr__(self) -> str:
        secret = "set" if self.secret else "unset"
        return (
            f"WebhookSettings(url={self.display!r}, secret={secret}, "
            f"max_attempts={self.max_attempts}, timeout={self.timeout:g})"
        )


@dataclass(frozen=True)
class Settings:
    """Where and how the scheduler works. ``url`` is unset for the Supabase REST backend."""

    backend: BackendName
    source: str
    url: str | None = None
    supabase_url: str | None = None
    supabase_key: str | None = None
    environment: str = "dev"
    enabled: bool = True
    webhook: WebhookSettings | None = None  # None: SCHEDULER_WEBHOOK_URL is unset
    # settings that were set but not used, each with the reason (see resolve())
    ignored: tuple[tuple[str, str], ...] = ()
    default: bool = False  # no setting named a database: the default SQLite store

    @property
    def origin(self) -> str:
        """Which setting gave the database and which set ones it ignored, and why: for
        ``doctor`` and the start-up log (a leftover ``DATABASE_URL`` wins over
        ``ENVIRONMENT=prod`` with ``SUPABASE_DB_URL``, and this line says so)."""
        what = "database" if self.backend == "supabase" else "database URL"
        if self.default:
            text = f"{what}: {DEFAULT_SQLITE_URL}, the default (no SCHEDULER_JOBSTORE_URL)"
        else:
            text = f"{what} from {self.source}"
        by_reason: dict[str, list[str]] = {}
        for name, reason in self.ignored:
            by_reason.setdefault(reason, []).append(name)
        notes = [f"ignored: {', '.join(names)}, {reason}" for reason, names in by_reason.items()]
        return text + (f" ({'; '.join(notes)})" if notes else "")

    @property
    def display(self) -> str:
        """The target with every secret masked, for messages and logs."""
        if self.backend == "supabase":
            url = mask_url(self.supabase_url or "")
            return f"{url} (Supabase REST, key {mask_secret(self.supabase_key)})"
        return mask_url(self.url or "")

    def redactor(self) -> Redactor:
        """A :class:`~scheduler_admin.redact.Redactor` of the secrets of these settings."""
        redactor = Redactor()
        for url in (self.url, self.supabase_url):
            if url:
                redactor.add_url(url)
        if self.supabase_key:
            redactor.add_secret(self.supabase_key)
        if self.webhook is not None:
            redactor.add_url(self.webhook.url)
            if self.webhook.secret:
                redactor.add_secret(self.webhook.secret)
                for secret in self.webhook.secret.split():  # each of two while rotating
                    redactor.add_secret(secret)
        return redactor


URL_HINT = (
    "Use postgresql://user:password@host:port/dbname, with the special characters of the user "
    "name and password percent-encoded (@ %40, : %3A, / %2F, ? %3F, # %23, % %25, space %20), "
    "or a key=value conninfo with password='…'."
)

IPV6_HINT = (
    "Write an IPv6 address in brackets, closed, port after them "
    "(postgresql://user:password@[::1]:5432/dbname), and a host name or IPv4 address without."
)


def check_postgres_url(url: str, source: str) -> None:
    """Raise :class:`ConfigurationError` when libpq cannot use ``url``.

    The message says what is wrong with the URL shown masked; libpq's own message is passed
    through the :class:`~scheduler_admin.redact.Redactor` of the URL, since it quotes the part it
    could not parse, which may be a piece of the password.
    """
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    redactor = Redactor()
    redactor.add_url(url)
    where = f"invalid database URL {mask_url(url)} (from {source})"
    try:
        values = conninfo_to_dict(psycopg_conninfo(url))
    except UnicodeDecodeError:
        raise ConfigurationError(
            f"{where}: a percent-encoded part is not UTF-8 (a password with an unencoded %?)",
            hint=URL_HINT,
        ) from None
    except psycopg.Error as exc:
        detail = (str(exc).strip().splitlines() or ["libpq cannot parse it"])[0]
        hint = IPV6_HINT if "ipv6" in detail.lower() else URL_HINT
        raise ConfigurationError(f"{where}: {redactor(detail)}", hint=hint) from None
    ports = str(values.get("port") or "").split(",")
    if any(p.strip() and not p.strip().isdigit() for p in ports):
        raise ConfigurationError(
            f"{where}: the port is not a number (a password with an unencoded / or @?)",
            hint=URL_HINT,
        )
    hosts = str(values.get("host") or "").split(",")
    if any("@" in h[1:] for h in hosts):
        raise ConfigurationError(
            f"{where}: the host name contains @ (the password has an unencoded @?)", hint=URL_HINT
        )
    scheme = re.match(r"\s*postgres(?:ql)?(?:\+\w+)?://", url)
    if scheme:
        rest = url[scheme.end() :]
        host_part = re.split(r"[/?#]", rest[rest.rfind("@") + 1 :], maxsplit=1)[0]
        for literal in re.findall(r"\[([^\]]*)\]", host_part):
            try:
                ipaddress.IPv6Address(literal.split("%", 1)[0])
            except ValueError:
                raise ConfigurationError(
                    f"{where}: {redactor(repr(literal))} in brackets is not an IPv6 address",
                    hint=IPV6_HINT,
                ) from None


def parse_bool(value: str | None, *, name: str, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigurationError(f"{name}={value!r} is not a boolean", hint="Use true or false.")


def metrics_route_enabled(env: Mapping[str, str] | None = None) -> bool:
    """``SCHEDULER_METRICS_ROUTE``: whether the FastAPI integration mounts ``GET /metrics``
    (default false: the route shows the scheduler's state to whoever can reach it)."""
    env = os.environ if env is None else env
    return parse_bool(
        env.get("SCHEDULER_METRICS_ROUTE"), name="SCHEDULER_METRICS_ROUTE", default=False
    )


def webhook_display(url: str) -> str:
    """A webhook URL as logs show it: ``scheme://host[:port]``, then ``/***`` when it has a path
    or query. Receivers often carry a token in the path (``/hooks/T0/B0/XXXX``) or the query,
    and the user and password go with the rest."""
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return MASKED_URL
    if not parts.scheme or not host:
        return MASKED_URL
    shown = f"[{host}]" if ":" in host else host
    if port is not None:
        shown += f":{port}"
    rest = parts.path not in ("", "/") or parts.query or parts.fragment
    return f"{parts.scheme.lower()}://{shown}" + ("/***" if rest else "")


def _positive_number(env: Mapping[str, str], name: str, default: float, *, integer: bool) -> float:
    value = (env.get(name) or "").strip()
    if not value:
        return default
    what = "a whole number" if integer else "a number of seconds"
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        raise ConfigurationError(
            f"{name}={value!r} is not {what}", hint=f"Give {what} above 0, or unset it."
        ) from None
    if not math.isfinite(number) or number <= 0:
        raise ConfigurationError(
            f"{name}={value!r} is not above 0", hint=f"Give {what} above 0, or unset it."
        )
    return number


def webhook_secret_keys(value: str, *, name: str = "SCHEDULER_WEBHOOK_SECRET") -> list[bytes]:
    """The HMAC keys of a webhook secret setting: one Standard Webhooks secret
    (``whsec_<base64>``, the key being the decoded bytes, at least 24 of them), or two separated
    by whitespace while rotating (the dispatcher signs with both; a receiver accepts either).

    Raises :class:`ConfigurationError` saying what is wrong and how to make a secret; it never
    shows the secret. ``name`` is what the message calls the setting.
    """
    secrets = value.split()
    hint = (
        f"Generate a secret with: {NEW_WEBHOOK_SECRET_COMMAND} and give the receiver the same "
        "value. A secret of the old X-Scheduler-Signature header (e.g. openssl rand -hex 32) "
        "is not one: see docs/webhooks.md, Moving from X-Scheduler-Signature."
    )
    if not secrets:
        raise ConfigurationError(f"{name} is empty", hint=hint)
    if len(secrets) > WEBHOOK_SECRETS_MAX:
        raise ConfigurationError(
            f"{name} holds {len(secrets)} space-separated values: at most "
            f"{WEBHOOK_SECRETS_MAX} secrets (the new and the old one while rotating)",
            hint=hint,
        )
    keys = []
    for number, secret in enumerate(secrets, 1):
        which = name if len(secrets) == 1 else f"{name} (secret {number} of {len(secrets)})"
        if not secret.startswith(WEBHOOK_SECRET_PREFIX):
            raise ConfigurationError(
                f"{which} does not start with {WEBHOOK_SECRET_PREFIX}: it must be a Standard "
                f"Webhooks secret, {WEBHOOK_SECRET_PREFIX} followed by the key in base64",
                hint=hint,
            )
        encoded = secret[len(WEBHOOK_SECRET_PREFIX) :]
        try:
            if not re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", encoded):
                raise binascii.Error
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigurationError(
                f"{which}: what follows {WEBHOOK_SECRET_PREFIX} is not base64 (A-Z, a-z, 0-9, "
                "+ and /, then = padding)",
                hint=hint,
            ) from None
        if len(key) < WEBHOOK_SECRET_MIN_BYTES:
            raise ConfigurationError(
                f"{which} is too short: its key is {len(key)} bytes, at least "
                f"{WEBHOOK_SECRET_MIN_BYTES} are needed",
                hint=hint,
            )
        keys.append(key)
    return keys


def webhook_settings(env: Mapping[str, str] | None = None) -> WebhookSettings | None:
    """The webhook settings of ``env``; None when ``SCHEDULER_WEBHOOK_URL`` is unset.

    ``SCHEDULER_WEBHOOK_SECRET``, ``SCHEDULER_WEBHOOK_MAX_ATTEMPTS`` and
    ``SCHEDULER_WEBHOOK_TIMEOUT`` are checked even then, so that a typo shows before webhooks
    are turned on.
    """
    env = os.environ if env is None else env
    secret = " ".join((env.get("SCHEDULER_WEBHOOK_SECRET") or "").split()) or None
    if secret is not None:
        webhook_secret_keys(secret)
    max_attempts = int(
        _positive_number(
            env, "SCHEDULER_WEBHOOK_MAX_ATTEMPTS", DEFAULT_WEBHOOK_MAX_ATTEMPTS, integer=True
        )
    )
    timeout = _positive_number(
        env, "SCHEDULER_WEBHOOK_TIMEOUT", DEFAULT_WEBHOOK_TIMEOUT, integer=False
    )
    url = (env.get("SCHEDULER_WEBHOOK_URL") or "").strip()
    if not url:
        return None
    hint = (
        "Use the http:// or https:// URL that receives the events, "
        "e.g. https://app.example.com/hooks/meetings."
    )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        raise ConfigurationError(
            f"SCHEDULER_WEBHOOK_URL={webhook_display(url)} is not a valid URL", hint=hint
        ) from None
    if parts.scheme.lower() not in ("http", "https"):
        said = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        raise ConfigurationError(
            f"SCHEDULER_WEBHOOK_URL has {said}: only http:// and https:// URLs are supported",
            hint=hint,
        )
    if not parts.hostname:
        raise ConfigurationError("SCHEDULER_WEBHOOK_URL has no host", hint=hint)
    return WebhookSettings(url, secret, max_attempts, timeout)


SQLITE_URL_HINT = (
    "A SQLite URL has three slashes before a relative path (sqlite:///scheduler_jobs.db, in "
    "the working directory) and four before an absolute one (sqlite:////var/lib/app/jobs.db)."
)
_SQLITE_SCHEME = re.compile(r"\s*(sqlite(?:\+\w+)?):(//)?", re.IGNORECASE)


def _sqlite_fix(path: str) -> str:
    """The SQLite URL of a file path: ``sqlite:///`` and the path (an absolute path keeps its
    slash, which makes the fourth)."""
    return f"sqlite:///{path}"


def check_sqlite_url(url: str, source: str | None = None) -> None:
    """Raise :class:`ConfigurationError` for a SQLite URL that names no file the way SQLAlchemy
    and the CLI read it alike: ``sqlite://scheduler_jobs.db`` (two slashes: the file name is
    taken for a host, and the database would be in memory for one command and invalid for
    another) or ``sqlite:scheduler_jobs.db`` (no slashes). The message gives the URL to use.

    ``sqlite://`` and ``sqlite:///:memory:`` (in memory) are valid."""
    match = _SQLITE_SCHEME.match(url)
    if match is None:
        return
    shown = url.strip() if holds_no_secret(url) else mask_url(url.strip())
    where = f"invalid SQLite URL {shown!r}" + (f" (from {source})" if source else "")
    rest = url[match.end() :].strip()
    if match.group(2) is None:  # sqlite:name.db
        fix = _sqlite_fix(rest or "scheduler_jobs.db") if holds_no_secret(rest or "x") else ""
        raise ConfigurationError(
            f"{where}: 'sqlite:' must be followed by slashes",
            hint=f"Use {fix}. {SQLITE_URL_HINT}" if fix else SQLITE_URL_HINT,
        )
    host = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if host:
        secret = "@" in host
        what = "the part before the first /" if secret else repr(host)
        raise ConfigurationError(
            f"{where}: with two slashes {what} is read as a host name, not a file "
            "(SQLite URLs have no host)",
            hint=SQLITE_URL_HINT if secret else f"Use {_sqlite_fix(rest)}. {SQLITE_URL_HINT}",
        )


def backend_of(url: str, source: str | None = None) -> BackendName:
    """The backend a URL (or a libpq ``key=value`` conninfo) points at; a SQLite URL must be
    one SQLAlchemy and the SQLite backend read alike (:func:`check_sqlite_url`). ``source``
    names the setting in messages."""
    if not re.match(r"\s*[A-Za-z][A-Za-z0-9+.-]*:", url) and "=" in url:
        return "postgres"  # a value of a conninfo may hold "://" (a password, say)
    scheme = url.split(":", 1)[0].strip().lower()
    if scheme.startswith("sqlite") and ":" in url:
        check_sqlite_url(url, source)
        return "sqlite"
    if scheme.startswith(("postgres", "postgresql")) and ":" in url:
        return "postgres"
    shown = repr(url.strip()) if holds_no_secret(url) else repr(mask_url(url))
    where = f"unsupported database URL {shown}" + (f" (from {source})" if source else "")
    hint = "Use postgresql://user:password@host:port/dbname or sqlite:///path/to/file.db."
    if holds_no_secret(url):  # a file path, say: the SQLite URL of that file
        raise ConfigurationError(
            f"{where}: not a URL (it has no scheme)",
            hint=f"For a SQLite file use {_sqlite_fix(url.strip())}. {SQLITE_URL_HINT} "
            "For PostgreSQL use postgresql://user:password@host:port/dbname.",
        )
    raise ConfigurationError(where, hint=hint)


def resolve(explicit_url: str | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Resolve the settings from the option and the environment (see the module docstring)."""
    env = os.environ if env is None else env
    environment = env.get("ENVIRONMENT", "dev") or "dev"
    enabled = parse_bool(
        env.get("ENABLE_MEETING_STATUS_UPDATES"), name="ENABLE_MEETING_STATUS_UPDATES", default=True
    )
    webhook = webhook_settings(env)

    production = environment.lower() in PRODUCTION_NAMES
    # The candidates in the order they are read: (setting, value, read at all).
    candidates = [
        ("--database-url", explicit_url, True),
        ("SCHEDULER_DATABASE_URL", env.get("SCHEDULER_DATABASE_URL"), True),
        ("DATABASE_URL", env.get("DATABASE_URL"), True),
        ("SUPABASE_DB_URL", env.get("SUPABASE_DB_URL"), production),
        ("SUPABASE_URL", env.get("SUPABASE_URL"), production),
        ("SCHEDULER_JOBSTORE_URL", env.get("SCHEDULER_JOBSTORE_URL"), not production),
    ]

    def ignored_after(winner: str) -> tuple[tuple[str, str], ...]:
        """The settings set besides ``winner``, and why each was not used."""
        found = []
        for name, value, read in candidates:  # one read before the winner would have won
            if not value or name == winner:
                continue
            if read or not name.startswith("SUPABASE"):
                reason = f"because {winner} comes first"
            else:
                said = (
                    f"ENVIRONMENT={env['ENVIRONMENT']}"
                    if env.get("ENVIRONMENT")
                    else ("ENVIRONMENT is not set")
                )
                reason = (
                    f"because {said}: the SUPABASE_ settings are read only with ENVIRONMENT=prod"
                )
            found.append((name, reason))
        return tuple(found)

    def direct(url: str, source: str, *, default: bool = False) -> Settings:
        url = url.strip()
        backend = backend_of(url, source)
        if backend == "postgres":
            check_postgres_url(url, source)
        return Settings(
            backend,
            source,
            url=url,
            environment=environment,
            enabled=enabled,
            webhook=webhook,
            ignored=ignored_after(source),
            default=default,
        )

    if explicit_url:
        return direct(explicit_url, "--database-url")
    for name in ("SCHEDULER_DATABASE_URL", "DATABASE_URL"):
        if env.get(name):
            return direct(env[name], name)
    if production:
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
                webhook=webhook,
                ignored=ignored_after("SUPABASE_URL"),
            )
        raise ConfigurationError(
            f"ENVIRONMENT={environment} but no production database is configured",
            hint="Set SUPABASE_DB_URL (direct connection), or SUPABASE_URL and "
            "SUPABASE_SERVICE_ROLE_KEY, or SCHEDULER_DATABASE_URL.",
        )
    jobstore = env.get("SCHEDULER_JOBSTORE_URL")
    return direct(jobstore or DEFAULT_SQLITE_URL, "SCHEDULER_JOBSTORE_URL", default=not jobstore)


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
