"""scripts/next_delta.py, the maintainer tool that writes the next revision's delta: it compares a
database at the last revision with what sql/postgres/ defines."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pg_helpers import Conn, Server, migrate

from scheduler_admin import schema
from scheduler_admin.sql_units import MARKER, Unit, units

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import next_delta

CHANGED_BODY = "select 'set statement_timeout = ''11s''; select scheduler.sweep()'::pg_catalog.text"
NEW_FUNCTION = (
    "\n-- A helper the next revision adds.\n"
    "create or replace function scheduler.next_helper(p_x pg_catalog.text)\n"
    "returns pg_catalog.text\nlanguage sql immutable\n"
    "set search_path = pg_catalog, pg_temp\nas $$ select p_x $$;\n"
)


def rebuild_from_files(db: Conn, edit: dict[str, str]) -> None:
    """What the tool does after reading the database at head: ours removed, then every file of
    sql/postgres/ applied, with ``edit`` (old text -> new text) applied to the files first."""
    db.execute(schema.read_sql("postgres", "teardown.sql"))  # type: ignore[arg-type]
    for name in schema.schema_files("postgres"):
        text = schema.read_sql("postgres", name)
        for old, new in edit.items():
            text = text.replace(old, new)
        db.execute(text)  # type: ignore[arg-type]


def restore(db: Conn, migrated: Server) -> None:
    """The migrated database the other tests expect, from alembic again."""
    db.execute(schema.read_sql("postgres", "teardown.sql"))  # type: ignore[arg-type]
    db.execute("drop table if exists scheduler.alembic_version")
    migrate(migrated)


def test_at_the_last_revision_nothing_is_left_to_write(db: Conn, migrated: Server) -> None:
    try:
        at_head = next_delta.snapshot(db)
        rebuild_from_files(db, {})
        up, down, notes = next_delta.delta(db, at_head, next_delta.snapshot(db))
    finally:
        restore(db, migrated)
    assert at_head["functions"]
    assert (up, down, notes) == ("", "", [])


def test_a_changed_and_a_new_function_are_written_with_their_inverse(
    db: Conn, migrated: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = next(
        line
        for line in schema.read_sql("postgres", "20_functions.sql").splitlines()
        if "select scheduler.sweep()'::pg_catalog.text" in line
    )
    edit = {original: CHANGED_BODY}
    edited_units = [
        (name, Unit(unit.text.replace(original, CHANGED_BODY), unit.key))
        for name, unit in next_delta.schema_units()
    ] + [("20_functions.sql", units(NEW_FUNCTION)[0])]
    monkeypatch.setattr(next_delta, "schema_units", lambda: edited_units)
    try:
        at_head = next_delta.snapshot(db)
        rebuild_from_files(db, edit)
        db.execute(NEW_FUNCTION)  # type: ignore[arg-type]
        up, down, _ = next_delta.delta(db, at_head, next_delta.snapshot(db))
    finally:
        restore(db, migrated)
    # the upgrade: the two functions and nothing else
    assert [u.key for u in units(up) if u.key] == [
        "function scheduler.sweep_command()",
        "function scheduler.next_helper(p_x pg_catalog.text)",
    ]
    assert CHANGED_BODY in up
    # the inverse: the new one dropped, the changed one re-applied from the revision holding it
    assert "drop function if exists scheduler.next_helper(text);" in down
    found = MARKER.search(down)
    assert found is not None and found.group(2) == "function scheduler.sweep_command()"
    released = "".join(
        schema.released_revision_sql(found.group(1), "postgres", p.name)
        for p in schema.revision_sql_dir(found.group(1), "postgres").glob("[0-9]*.sql")
    )
    assert original in released
