"""Secrets never reach output: masking of database URLs, conninfo strings and messages.

:func:`mask_url` shows a URL or a libpq ``key=value`` conninfo with every part that could be a
secret replaced by ``***``. It is deliberately conservative: a password may hold any character
(``@``, ``/``, ``#``, ``?``, ``:``, spaces, bad ``%`` escapes), so for a URL it masks everything
from the first ``:`` after ``scheme://`` to the **last** ``@`` (a superset of what libpq, which
stops at the first ``@``, and SQLAlchemy take as the password), every query parameter value
whose key is not a known harmless one, and a port that is not a number. What cannot be parsed is
masked, never echoed.

:class:`Redactor` cleans free text (a driver's error message, a log line, a traceback) of the
secrets of known URLs: it masks them wherever they occur, in their raw, percent-decoded and
escaped forms, masks every quoted value in the text that shares a piece with a secret (libpq and
psycopg quote the fragments of a mis-parsed URL they complain about: ``invalid percent-encoded
token: "p%zz"``, ``failed to resolve host 'ss@db'``), and masks any URL or ``password=…`` it
finds.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote

MASK = "***"

# Parameters whose values are shown (libpq keywords that hold no secret, and SQLite URI
# parameters); the value of any other parameter is masked.
SHOWN_PARAMS = frozenset(
    {
        "application_name",
        "channel_binding",
        "client_encoding",
        "connect_timeout",
        "dbname",
        "fallback_application_name",
        "gssdelegation",
        "gssencmode",
        "gsslib",
        "host",
        "hostaddr",
        "keepalives",
        "keepalives_count",
        "keepalives_idle",
        "keepalives_interval",
        "krbsrvname",
        "passfile",
        "load_balance_hosts",
        "options",
        "port",
        "replication",
        "require_auth",
        "requirepeer",
        "service",
        "ssl_max_protocol_version",
        "ssl_min_protocol_version",
        "sslcert",
        "sslcertmode",
        "sslcompression",
        "sslcrl",
        "sslcrldir",
        "sslkey",
        "sslkeylogfile",
        "sslmode",
        "sslnegotiation",
        "sslrootcert",
        "sslsni",
        "target_session_attrs",
        "tcp_user_timeout",
        "user",
        # SQLite URIs
        "cache",
        "check_same_thread",
        "immutable",
        "mode",
        "nolock",
        "timeout",
        "uri",
        "vfs",
    }
)

# libpq keywords that hold a secret: the key is shown, its value masked. Any other parameter
# that is not in SHOWN_PARAMS is masked whole.
SECRET_PARAMS = frozenset({"password", "sslpassword"})

# Environment variables that may hold a URL with a password, and those that hold a key.
URL_VARIABLES = (
    "SCHEDULER_DATABASE_URL",
    "DATABASE_URL",
    "SUPABASE_DB_URL",
    "SCHEDULER_JOBSTORE_URL",
    "SUPABASE_URL",
    "SCHEDULER_WEBHOOK_URL",
)
KEY_VARIABLES = ("SUPABASE_SERVICE_ROLE_KEY", "SCHEDULER_WEBHOOK_SECRET")

_URL_START = re.compile(r"\s*[A-Za-z][A-Za-z0-9+.-]*://")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>`]*")
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b([\w-]*(?:pass|secret|token|key|pwd)[\w-]*)(\s*=\s*)"
    r"('(?:[^'\\]|\\.)*'?|\"(?:[^\"\\]|\\.)*\"?|(?:[^\s\\'\"]|\\.)+)"
)
_QUOTED = re.compile(r"\"([^\"\n]*)\"|'([^'\n]*)'")
_QUOTED_GREEDY = re.compile(r"\"([^\n]*)\"|'([^\n]*)'")
_PIECE_SEPARATOR = re.compile(r"[^\w.-]+")
_LIBPQ_SPACE = " \t\n\r\f\v"

Span = tuple[int, int]


def _merge(spans: Iterable[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _plausible_user(user: str) -> bool:
    """A user name libpq could have read from a URL (it stops at ``/``; no spaces allowed)."""
    return not any(c in user for c in "/?#&=") and not any(c.isspace() for c in user)


def _url_spans(url: str, start: int) -> list[Span]:
    """Secret spans of a URL whose ``scheme://`` ends at ``start``."""
    spans: list[Span] = []
    at = url.rfind("@", start)
    host_start = start
    if at >= 0:
        host_start = at + 1
        colon = url.find(":", start, at)
        user = url[start : colon if colon >= 0 else at]
        if not _plausible_user(user):
            spans.append((start, at))
        elif colon >= 0:
            spans.append((colon + 1, at))
    # The host list: a port that is not a number may be a password whose '@' was forgotten.
    end = len(url)
    for sep in "/?#":
        found = url.find(sep, host_start)
        if found >= 0:
            end = min(end, found)
    position = host_start
    for host in url[host_start:end].split(","):
        port_at = host.rfind(":") if not host.endswith("]") else -1
        if port_at >= 0 and "]" not in host[port_at:]:
            port = host[port_at + 1 :]
            if port and not port.isdigit():
                spans.append((position + port_at + 1, position + len(host)))
        position += len(host) + 1
    # Query parameters. After the last '@' the query is the query: a parameter that is not a
    # known one (a piece of a password with an unencoded '&'?) is masked whole. Before it, a
    # '?' or '&' may be in the password, or start libpq's query when the password holds a '/'
    # or the '@' is in a query value: there a secret parameter's value is masked up to the
    # next '&', and so is an unknown parameter after a '&' that runs across the '@'.
    for i in range(start, len(url)):
        if url[i] not in "?&":
            continue
        segment_end = url.find("&", i + 1)
        segment_end = len(url) if segment_end < 0 else segment_end
        key, equals, _ = url[i + 1 : segment_end].partition("=")
        name = unquote(key).strip().lower()
        if name in SHOWN_PARAMS:
            continue
        if equals and name in SECRET_PARAMS:
            spans.append((i + 1 + len(key) + 1, segment_end))
        elif (i > at or (url[i] == "&" and segment_end > at)) and segment_end > i + 1:
            spans.append((i + 1, segment_end))
    return spans


def _conninfo_spans(text: str) -> list[Span]:
    """Secret spans of a libpq ``key=value`` conninfo; from a parse error on, everything."""
    spans: list[Span] = []
    n = len(text)
    i = 0
    while True:
        while i < n and text[i] in _LIBPQ_SPACE:
            i += 1
        if i >= n:
            return spans
        key_start = i
        while i < n and text[i] not in _LIBPQ_SPACE and text[i] != "=":
            i += 1
        key = text[key_start:i]
        while i < n and text[i] in _LIBPQ_SPACE:
            i += 1
        if not key or i >= n or text[i] != "=":
            spans.append((key_start, n))
            return spans
        i += 1
        while i < n and text[i] in _LIBPQ_SPACE:
            i += 1
        value_start = i
        if i < n and text[i] == "'":
            i += 1
            closed = False
            while i < n:
                if text[i] == "\\":
                    i += 2
                elif text[i] == "'":
                    i += 1
                    closed = True
                    break
                else:
                    i += 1
            if not closed:
                spans.append((value_start, n))
                return spans
        else:
            while i < n and text[i] not in _LIBPQ_SPACE:
                i += 2 if text[i] == "\\" else 1
        i = min(i, n)
        if key.lower() in SECRET_PARAMS:
            spans.append((value_start, i))
        elif key.lower() not in SHOWN_PARAMS:  # not a keyword: maybe a piece of a password
            spans.append((key_start, i))


def holds_no_secret(value: str) -> bool:
    """Whether ``value``, neither a URL (``scheme://``) nor a conninfo, holds nothing that could
    be a secret and can be shown as it is (a file path, ``sqlite:name.db``): no ``@`` (a
    user:password@ part), no ``=`` (key=value), no quotes, no spaces, and at most one ``:`` (a
    scheme or a drive letter, never user:password)."""
    text = value.strip()
    return (
        bool(text)
        and _URL_START.match(text) is None
        and not any(c in text for c in "@='\"\\")
        and not any(c.isspace() for c in text)
        and text.count(":") <= 1
    )


def _spans(url: str) -> list[Span]:
    match = _URL_START.match(url)
    if match:
        scheme = url[: match.end() - 3].strip()
        if scheme:
            return _url_spans(url, match.end())
    if holds_no_secret(url):  # a file path, say: nothing to mask
        return []
    return _conninfo_spans(url)


def mask_url(url: str) -> str:
    """``url`` (a URL or a libpq conninfo) with every part that could be a secret as ``***``."""
    pieces = []
    position = 0
    for start, end in _merge(_spans(url)):
        pieces += [url[position:start], MASK]
        position = end
    pieces.append(url[position:])
    return "".join(pieces)


def mask_secret(secret: str | None) -> str:
    """``abc…`` style: never more than the first 4 characters of a secret."""
    if not secret:
        return "(unset)"
    return secret[:4] + MASK if len(secret) > 12 else MASK


def _libpq_values(url: str) -> dict[str, str]:
    """What libpq reads from ``url`` (empty when it cannot parse it or psycopg is missing)."""
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return {}
    try:
        values = conninfo_to_dict(re.sub(r"^\s*postgres(?:ql)?\+\w+://", "postgresql://", url))
    except Exception:
        return {}
    return {k: str(v) for k, v in values.items() if v is not None}


def _masked_and_derived(url: str) -> tuple[set[str], set[str]]:
    """What :func:`mask_url` masks (raw, decoded, unescaped), and what libpq reads out of the
    masked parts (a piece of a password that libpq takes for a host, a port or a database)."""
    masked: set[str] = set()
    for start, end in _spans(url):
        raw = url[start:end]
        masked.add(raw)
        if len(raw) >= 2 and raw[0] == raw[-1] == "'":
            raw = raw[1:-1]
            masked.add(raw)
        masked.add(unquote(raw))
        masked.add(re.sub(r"\\(.)", r"\1", raw))
    display = mask_url(url)
    shown = (display, unquote(display))
    derived: set[str] = set()
    for key, value in _libpq_values(url).items():
        if key not in SHOWN_PARAMS:
            derived.add(value)
            continue
        parts = value.split(",") if key in ("host", "hostaddr", "port") else [value]
        derived.update(p for p in parts if not any(p in s for s in shown))

    def keep(found: set[str]) -> set[str]:
        return {s for s in found if s.strip() and s != MASK}

    return keep(masked), keep(derived) - keep(masked)


def secrets_of(url: str) -> set[str]:
    """The strings of ``url`` that must never be shown: what :func:`mask_url` masks, decoded,
    and whatever libpq reads out of the masked parts."""
    masked, derived = _masked_and_derived(url)
    return masked | derived


def _variants(secret: str) -> set[str]:
    """The forms a secret takes in text: as is, repr()'d, JSON, conninfo-quoted."""
    return {
        secret,
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
        secret.replace("\\", "\\\\").replace("'", "\\'"),
    }


def _pieces(text: str) -> set[str]:
    return {p for p in _PIECE_SEPARATOR.split(text) if p}


class Redactor:
    """Removes known secrets (and anything shaped like a URL password) from text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        # What libpq reads out of a masked part (a host 'pw-end@db' from 'u:pw@pw-end@db'):
        # masked after the secrets proper, so that the real host of the URL stays visible.
        self._derived: set[str] = set()
        self._shown: set[str] = set()  # pieces of the masked URLs: no secret in them
        for secret in secrets:
            self.add_secret(secret)

    @classmethod
    def from_environment(
        cls, env: Mapping[str, str], *, urls: Iterable[str | None] = ()
    ) -> Redactor:
        """The secrets of ``urls`` and of every URL and key variable of ``env``."""
        redactor = cls()
        for url in (*urls, *(env.get(name) for name in URL_VARIABLES)):
            if url:
                redactor.add_url(url)
        for name in KEY_VARIABLES:
            if env.get(name):
                redactor.add_secret(env[name])
        return redactor

    @property
    def secrets(self) -> frozenset[str]:
        return frozenset(self._secrets | self._derived)

    def add_url(self, url: str) -> None:
        masked, derived = _masked_and_derived(url)
        for secret in masked:
            self.add_secret(secret)
        for secret in derived:
            self._derived |= {v for v in _variants(secret.strip()) if v.strip()}
        display = mask_url(url)
        self._shown |= _pieces(display) | _pieces(unquote(display))

    def update(self, other: Redactor) -> None:
        """Add the secrets of ``other``."""
        self._secrets |= other._secrets
        self._derived |= other._derived
        self._shown |= other._shown

    def add_secret(self, secret: str) -> None:
        secret = secret.strip()
        if secret and secret != MASK:
            self._secrets |= {v for v in _variants(secret) if v.strip()}

    def __call__(self, text: str, *, shapes: bool = True) -> str:
        """``text`` without the known secrets.

        In order: every form of every secret; with ``shapes`` (the default), URL passwords and
        ``…password=…`` values of secrets nobody told us about (our own hints show placeholders
        such as ``postgresql://user:password@host:port/dbname`` and are redacted without);
        every quoted value that shares a piece with a secret, first the shortest quotes, then
        from the first quote of a line to its last (a quoted value may hold quotes); and every
        piece of a secret of 4 characters or more that still stands alone.
        """
        ordered = sorted(self._secrets, key=len, reverse=True)
        ordered += sorted(self._derived - self._secrets, key=len, reverse=True)
        for secret in ordered:
            if len(secret) >= 4:
                text = text.replace(secret, MASK)
            else:  # a short secret only where it stands alone, not inside a word
                text = re.sub(rf"(?<![^\W_]){re.escape(secret)}(?![^\W_])", MASK, text)
        if shapes:
            text = _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text)
            text = _SECRET_ASSIGNMENT.sub(lambda m: m.group(1) + m.group(2) + MASK, text)
        secrets = self.secrets
        if not secrets:
            return text
        pieces = set().union(*(_pieces(s) for s in secrets)) - self._shown

        def quoted(match: re.Match[str]) -> str:
            token = match.group(1) if match.group(1) is not None else match.group(2)
            quote = match.group(0)[0]
            token_pieces = _pieces(token)
            if token_pieces & pieces or (
                not token_pieces <= self._shown and any(token in s or s in token for s in secrets)
            ):
                return f"{quote}{MASK}{quote}"
            return match.group(0)

        text = _QUOTED.sub(quoted, text)
        text = _QUOTED_GREEDY.sub(quoted, text)
        long_pieces = sorted((p for p in pieces if len(p) >= 4), key=len, reverse=True)
        if long_pieces:
            alternatives = "|".join(re.escape(p) for p in long_pieces)
            text = re.sub(rf"(?<![\w.-])(?:{alternatives})(?![\w.-])", MASK, text)
        return text


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without the given secrets and without anything shaped like a URL password."""
    return Redactor(secrets)(text)


class RedactingFilter(logging.Filter):
    """A logging filter for a handler: every record it lets through is redacted (message,
    arguments, traceback and stack)."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what there is, redacted
            message = f"{record.msg} {record.args}"
        record.msg = self.redactor(message)
        record.args = None
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.redactor(record.exc_text)
        elif record.exc_text:
            record.exc_text = self.redactor(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor(record.stack_info)
        return True
