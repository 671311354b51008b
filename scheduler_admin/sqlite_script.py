"""Run the SQLite schema scripts inside the caller's transaction.

``sqlite3.Connection.executescript`` commits any pending transaction first and runs every
statement in autocommit mode, which would make a migration non-atomic. Here the script is split
into complete statements (``sqlite3.complete_statement`` knows that a trigger's
``BEGIN … END;`` body is one statement, and ignores ``;`` inside strings and comments) and each
statement runs on the same connection, in one transaction.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator

_ONLY_COMMENTS = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*;?\s*$", re.S)


def split_statements(script: str) -> Iterator[str]:
    """Yield the complete SQL statements of a script, without empty or comment-only ones."""
    buffer: list[str] = []
    start = 0
    for index, char in enumerate(script):
        if char != ";":
            continue
        candidate = script[start : index + 1]
        if sqlite3.complete_statement(candidate):
            buffer.append(candidate)
            start = index + 1
            statement = "".join(buffer).strip()
            buffer.clear()
            if not _ONLY_COMMENTS.match(statement):
                yield statement
    rest = script[start:].strip()
    if rest and not _ONLY_COMMENTS.match(rest):
        if not sqlite3.complete_statement(rest + ";"):
            raise ValueError(f"incomplete SQL statement at the end of the script: {rest[:80]!r}")
        yield rest


def execute_sqlite_script(driver_connection: sqlite3.Connection, script: str) -> None:
    """Run every statement of ``script`` on ``driver_connection`` in the current transaction.

    If no transaction is open (the ``sqlite3`` module opens one only before DML, so SQLAlchemy
    and alembic often have none yet) one is begun here; the owner of the connection commits or
    rolls it back, so a failing script leaves nothing behind.
    """
    if not driver_connection.in_transaction:
        driver_connection.execute("BEGIN")
    for statement in split_statements(script):
        driver_connection.execute(statement)
