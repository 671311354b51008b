"""Splitting and running SQLite scripts inside the caller's transaction."""

from __future__ import annotations

import sqlite3

import pytest

from scheduler_admin.sqlite_script import execute_sqlite_script, split_statements

SCRIPT = """
-- a comment; with a semicolon
CREATE TABLE t (x TEXT);  /* block; comment */
INSERT INTO t VALUES ('a;b');
CREATE TRIGGER t_ins AFTER INSERT ON t
BEGIN
    INSERT INTO log VALUES ('one;');
    INSERT INTO log VALUES ('two');
END;
CREATE TABLE log (m TEXT);
-- trailing comment
"""


def test_split_statements() -> None:
    statements = list(split_statements(SCRIPT))
    assert len(statements) == 4
    assert statements[0].endswith("CREATE TABLE t (x TEXT);")
    # A comment goes with the statement after it; ";" in comments and strings does not split.
    assert statements[1] == "/* block; comment */\nINSERT INTO t VALUES ('a;b');"
    assert statements[2].startswith("CREATE TRIGGER t_ins") and statements[2].endswith("END;")
    assert statements[3] == "CREATE TABLE log (m TEXT);"


def test_last_statement_without_semicolon() -> None:
    assert list(split_statements("SELECT 1; SELECT 2")) == ["SELECT 1;", "SELECT 2"]


def test_incomplete_statement_is_an_error() -> None:
    with pytest.raises(ValueError, match="incomplete"):
        list(split_statements("CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT 1;"))


def test_runs_in_the_current_transaction_and_rolls_back() -> None:
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE TABLE keep (x)")
        conn.commit()
        execute_sqlite_script(conn, SCRIPT)
        assert conn.in_transaction
        conn.execute("INSERT INTO t VALUES ('c')")
        assert conn.execute("SELECT m FROM log").fetchall() == [("one;",), ("two",)]
        conn.rollback()
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert names == {"keep"}
    finally:
        conn.close()


def test_does_not_commit_pending_work() -> None:
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE TABLE keep (x)")
        conn.commit()
        conn.execute("INSERT INTO keep VALUES (1)")  # opens a transaction
        execute_sqlite_script(conn, "CREATE TABLE other (y); INSERT INTO other VALUES (2);")
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM keep").fetchone() == (0,)
        assert conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE name = 'other'"
        ).fetchone() == (0,)
    finally:
        conn.close()


def test_a_failing_statement_leaves_the_transaction_to_the_caller() -> None:
    conn = sqlite3.connect(":memory:")
    try:
        with pytest.raises(sqlite3.OperationalError):
            execute_sqlite_script(conn, "CREATE TABLE a (x); SELECT nope FROM a;")
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)
    finally:
        conn.close()
