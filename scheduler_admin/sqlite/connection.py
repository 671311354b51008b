"""Connections to the SQLite file, transactions, and the time helpers of the schema.

Every connection uses WAL mode and a busy timeout, and every write runs in a short
``BEGIN IMMEDIATE`` transaction, so that application writes while the worker runs wait for the
lock instead of failing with "database is locked". Times are stored as ISO-8601 UTC text
(``2026-12-01T15:30:00+00:00``, milliseconds at most).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote, urlsplit

from scheduler_admin.core import require_aware
from scheduler_admin.exceptions import DatabaseError, InvalidInput, NotMigrated

log = logging.getLogger(__name__)
UTC = timezone.utc
Clock = Callable[[], datetime]
# The reconcile job's command (sql/sqlite/10_schema.sql; functions.reconcile_command()), here
# for every module of the twin: the run history of the job is read below functions.py.
RECONCILE_COMMAND = "reconcile()"

# The objects of ours every operation needs (sql/sqlite/10_schema.sql and 20_views.sql; the
# completion events and webhooks since revision 0004, the registry of transitions since 0005,
# the rows failing to complete since 0009).
REQUIRED = {
    "meetings": "table",
    "cron_job": "table",
    "cron_job_run_details": "table",
    "scheduler_settings": "table",
    "scheduler_statuses": "table",
    "scheduler_worker": "table",
    "scheduler_meeting_jobs": "view",
    "scheduler_upcoming_jobs": "view",
    "scheduler_orphan_jobs": "view",
    "scheduler_completion_events": "table",
    "scheduler_webhook_attempts": "table",
    "scheduler_webhooks": "table",
    "scheduler_metric_totals": "table",
    "scheduler_events": "view",
    "scheduler_transitions": "table",
    "scheduler_failing_rows": "table",
}

# The columns of ours added to a table after it was created (revision 0006: a transition
# paused by name; revision 0007: the transition and key of a completion event, the totals per
# transition).
REQUIRED_COLUMNS = {
    "scheduler_transitions": ("paused",),
    "scheduler_completion_events": ("transition", "key"),
    "scheduler_metric_totals": ("transition",),
}

# The triggers on meetings (sql/sqlite/30_triggers.sql).
TRIGGERS = (
    "scheduler_meetings_before_insert",
    "scheduler_meetings_before_update",
    "scheduler_meetings_after_insert",
    "scheduler_meetings_after_update",
    "scheduler_meetings_after_delete",
)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def to_db_time(when: datetime) -> str:
    """A datetime as the schema stores it: ``YYYY-MM-DDTHH:MM:SS[.fff]+00:00`` (UTC, ms)."""
    utc = require_aware(when, "time").astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond // 1000:
        text += f".{utc.microsecond // 1000:03d}"
    return text + "+00:00"


def to_event_time(when: datetime) -> str:
    """A datetime as the completion events store it: ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00`` (UTC,
    always six fraction digits, so that these times compare as text and lateness is exact)."""
    utc = require_aware(when, "time").astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+00:00"


def from_db_time(text: object) -> datetime | None:
    """Parse a stored time (ISO-8601; no offset means UTC). None when it cannot be parsed."""
    if not isinstance(text, str) or not text:
        return None
    candidate = text.strip().replace(" ", "T", 1)
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def iso(when: datetime | None) -> str | None:
    """ISO-8601 in UTC, as the result shapes use it."""
    return None if when is None else when.astimezone(UTC).isoformat()


def iso_text(text: object) -> str | None:
    """A stored time as ISO-8601 UTC (the raw text if it cannot be parsed)."""
    parsed = from_db_time(text)
    if parsed is None:
        return None if text is None else str(text)
    return iso(parsed)


def database_path(url_or_path: str | os.PathLike[str]) -> str:
    """The file path of a ``sqlite://`` URL or a plain path (``:memory:`` for memory)."""
    text = os.fspath(url_or_path)
    if "://" not in text:
        return text or ":memory:"
    parts = urlsplit(text)
    if not parts.scheme.lower().startswith("sqlite"):
        raise InvalidInput(
            f"not a SQLite URL: {parts.scheme}://…", hint="Use sqlite:///path/to/file.db."
        )
    # sqlite:///relative.db -> path "/relative.db"; sqlite:////abs.db -> "//abs.db".
    path = unquote(parts.path)
    if path.startswith("/"):
        path = path[1:]
    return path or ":memory:"


def missing_objects(conn: sqlite3.Connection) -> list[str]:
    """The objects of :data:`REQUIRED` and the columns of :data:`REQUIRED_COLUMNS` that the
    database lacks."""
    present = {
        (row[0], row[1])
        for row in conn.execute(
            "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view')"
        )
    }
    missing = [name for name, kind in REQUIRED.items() if (name, kind) not in present]
    for table, columns in REQUIRED_COLUMNS.items():
        if (table, "table") not in present:
            continue
        have = {
            str(row[0]) for row in conn.execute("SELECT name FROM pragma_table_info(?)", (table,))
        }
        missing += [f"{table}.{column}" for column in columns if column not in have]
    return missing


class Database:
    """One SQLite database: a file (a connection per operation) or memory (one connection), and
    the clock its operations run at (``clock``: default the system's, UTC)."""

    def __init__(
        self,
        url_or_path: str | os.PathLike[str],
        clock: Clock | None = None,
        *,
        busy_timeout: float = 10.0,
    ) -> None:
        self.path = database_path(url_or_path)
        self.clock: Clock = clock or utcnow
        self.busy_timeout = busy_timeout
        self._memory: sqlite3.Connection | None = None
        self._memory_lock = threading.RLock()
        self._wal_done = False

    def now(self) -> datetime:
        """The database's clock, as aware UTC."""
        current = self.clock()
        if current.tzinfo is None:
            raise ValueError("the clock must return timezone-aware datetimes")
        return current.astimezone(UTC)

    @property
    def is_memory(self) -> bool:
        return self.path == ":memory:" or "mode=memory" in self.path

    def _open(self) -> sqlite3.Connection:
        if not Path(self.path).exists():
            raise NotMigrated(
                f"SQLite database {self.path} does not exist: run `scheduler-admin migrate` "
                "(or `alembic upgrade head`) first"
            )
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        except sqlite3.Error:
            conn.close()
            raise
        if not self._wal_done:
            # Persistent in the file; needs a moment without other writers. Best effort: the
            # next connection tries again.
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                self._wal_done = str(mode).lower() == "wal"
            except sqlite3.OperationalError as exc:
                log.warning("could not switch %s to WAL mode yet: %s", self.path, exc)
        conn.row_factory = sqlite3.Row
        return conn

    @contextlib.contextmanager
    def connection(self, *, check_schema: bool = True) -> Iterator[sqlite3.Connection]:
        """A connection in autocommit mode (file: a new one, closed afterwards)."""
        try:
            if self.is_memory:
                with self._memory_lock:
                    if self._memory is None:
                        self._memory = sqlite3.connect(
                            self.path, isolation_level=None, check_same_thread=False
                        )
                        self._memory.row_factory = sqlite3.Row
                    if check_schema:
                        self._check_schema(self._memory)
                    yield self._memory
                return
            conn = self._open()
            try:
                if check_schema:
                    self._check_schema(conn)
                yield conn
            finally:
                conn.close()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc) or "no such view" in str(exc):
                raise NotMigrated(
                    f"SQLite database {self.path} is not migrated ({exc}): run "
                    "`scheduler-admin migrate`"
                ) from exc
            raise DatabaseError(f"SQLite error on {self.path}: {exc}") from exc
        except sqlite3.Error as exc:
            raise DatabaseError(f"SQLite error on {self.path}: {exc}") from exc

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """A transaction: ``BEGIN IMMEDIATE`` for writes (waits for the lock), else ``BEGIN``."""
        with self.connection() as conn:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        missing = missing_objects(conn)
        if missing:
            raise NotMigrated(
                f"SQLite database {self.path} is not migrated (missing {', '.join(missing)}): "
                "run `scheduler-admin migrate`"
            )

    def close(self) -> None:
        """Close the in-memory connection, if any (file connections are per operation)."""
        with self._memory_lock:
            if self._memory is not None:
                self._memory.close()
                self._memory = None
