"""The Python twin of ``sql/postgres/42_statuses.sql``: the words of ``meetings.status`` the
scheduler acts on (``configure_statuses``).
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from typing import Any, NamedTuple

from scheduler_admin.core import (
    RecoverReport,
)
from scheduler_admin.exceptions import InvalidInput
from scheduler_admin.sqlite.connection import (
    to_db_time,
    utcnow,
)
from scheduler_admin.sqlite.functions import (
    Statuses,
    is_enabled,
    statuses,
)
from scheduler_admin.sqlite.recovery import repair_all

log = logging.getLogger(__name__)


STATUS_HINT = (
    "Give the words the table uses (alembic -x pending_status=... -x done_status=... "
    "-x cancelled_status=..., or the variables SCHEDULER_PENDING_STATUS, SCHEDULER_DONE_STATUS, "
    "SCHEDULER_CANCELLED_STATUS), or change the constraint."
)


_TOKEN = re.compile(
    r"""(?P<space>\s+|--[^\n]*|/\*.*?(?:\*/|\Z))
      | (?P<string>'(?:[^']|'')*')
      | (?P<quoted>"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\])
      | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
      | (?P<other>.)""",
    re.S | re.X,
)


class StatusCheck(NamedTuple):
    """A CHECK constraint of the meetings table, as its CREATE TABLE statement writes it."""

    name: str  # the constraint's name, "(unnamed)" without one
    definition: str  # CHECK (<expression>), on one line
    expression: str


def _unquote(token: str) -> str:
    if token[:1] in ('"', "`", "["):
        inner = token[1:-1]
        return inner if token[0] == "[" else inner.replace(token[0] * 2, token[0])
    return token


def status_checks(conn: sqlite3.Connection) -> Iterator[StatusCheck]:
    """Every CHECK constraint in the CREATE TABLE statement of meetings (column and table
    constraints; SQLite keeps the statement as written and has no catalog of constraints)."""
    row = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'meetings'"
    ).fetchone()
    sql = "" if row is None or row[0] is None else str(row[0])
    tokens = [
        (m.lastgroup, m.group(), m.start(), m.end())
        for m in _TOKEN.finditer(sql)
        if m.lastgroup != "space"
    ]
    for index, (kind, text, _, _) in enumerate(tokens):
        if kind != "word" or text.upper() != "CHECK" or index + 1 >= len(tokens):
            continue
        if tokens[index + 1][1] != "(":
            continue
        depth, close = 0, None
        for other in tokens[index + 1 :]:
            depth += {"(": 1, ")": -1}.get(other[1], 0) if other[0] == "other" else 0
            if depth == 0:
                close = other
                break
        if close is None:
            continue
        expression = sql[tokens[index + 1][3] : close[2]].strip()
        named = index >= 2 and tokens[index - 2][1].upper() == "CONSTRAINT"
        yield StatusCheck(
            name=_unquote(tokens[index - 1][1]) if named else "(unnamed)",
            definition="CHECK (" + " ".join(expression.split()) + ")",
            expression=expression,
        )


def status_allowed(conn: sqlite3.Connection, check: StatusCheck, word: str) -> bool | None:
    """Whether a constraint lets meetings.status hold ``word``: its own expression evaluated on a
    one-row relation whose column status is the word (a parameter, never spliced in); a check
    passes unless false. None: the expression reads other columns (not a check of the status
    alone, as on PostgreSQL, which compares only those)."""
    try:
        row = conn.execute(
            f"SELECT ({check.expression}) IS NULL OR ({check.expression}) "
            "FROM (SELECT ? AS status) AS meetings",
            (word,),
        ).fetchone()
    except sqlite3.OperationalError:
        return None
    return bool(row[0])


def quote_literal(text: str) -> str:
    """PostgreSQL's quote_literal(), for messages that read the same on both backends."""
    quoted = "'" + text.replace("'", "''").replace("\\", "\\\\") + "'"
    return "E" + quoted if "\\" in text else quoted


def left_alone(conn: sqlite3.Connection, words: Statuses) -> dict[str, int]:
    """The statuses of meetings that are none of the three words, with their counts (null as
    "null"), keys ordered as PostgreSQL's jsonb prints them (shorter first)."""
    rows = conn.execute(
        """SELECT coalesce(CAST(status AS TEXT), 'null'), count(*) FROM meetings
            WHERE status IS NULL OR CAST(status AS TEXT) NOT IN (?, ?, ?)
            GROUP BY 1""",
        tuple(words),
    ).fetchall()
    counts = {str(row[0]): int(row[1]) for row in rows}
    jsonb_order = sorted(counts, key=lambda key: (len(key.encode()), key.encode()))
    return {key: counts[key] for key in jsonb_order}


def configure_statuses(
    conn: sqlite3.Connection,
    pending: str | None = None,
    done: str | None = None,
    cancelled: str | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Twin of scheduler.configure_statuses() in sql/postgres/42_statuses.sql.

    Sets the words of ``meetings.status`` the scheduler acts on, for an application whose table
    uses its own (None keeps a word). Each word must satisfy every CHECK constraint of meetings
    that reads only its status column, else :class:`InvalidInput` names the constraint and
    nothing is changed. The meetings whose status is none of the three are reported (left
    alone: no job, never completed), in the words of PostgreSQL's notice, logged at INFO. Then,
    if the words changed and the scheduler is not paused, it repairs as recover does, so that
    meetings with the new pending word get their jobs at once.
    """
    now = now or utcnow()
    current = statuses(conn)
    words = Statuses(
        current.pending if pending is None else pending,
        current.done if done is None else done,
        current.cancelled if cancelled is None else cancelled,
    )
    if "" in words or len(set(words)) < len(words):
        raise InvalidInput(
            "the pending, done and cancelled statuses must be three different words, got "
            + ", ".join(quote_literal(word) for word in words)
        )
    for check in status_checks(conn):
        for word in words:
            if status_allowed(conn, check, word) is False:
                raise InvalidInput(
                    f"status {quote_literal(word)} is not allowed by the constraint "
                    f"{check.name} of meetings ({check.definition})",
                    hint=STATUS_HINT,
                )
    others = left_alone(conn, words)
    repaired: RecoverReport | None = None
    if words != current:
        conn.execute(
            """UPDATE scheduler_statuses
                  SET pending_status = ?, done_status = ?, cancelled_status = ?
                WHERE singleton = 1""",
            tuple(words),
        )
        conn.execute(
            "UPDATE scheduler_settings SET updated_at = ? WHERE singleton = 1", (to_db_time(now),)
        )
        if is_enabled(conn):
            repaired = repair_all(conn, now, dry_run=False)
    log.info(
        "meeting statuses: pending %s, done %s, cancelled %s; left alone: %s",
        quote_literal(words.pending),
        quote_literal(words.done),
        quote_literal(words.cancelled),
        json.dumps(others, ensure_ascii=False) if others else "none",
    )
    return {
        "pending_status": words.pending,
        "done_status": words.done,
        "cancelled_status": words.cancelled,
        "left_alone": others,
        "repair": repaired,
    }
