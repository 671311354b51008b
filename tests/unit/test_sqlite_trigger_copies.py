"""SQLite has no shared trigger functions: the triggers of sql/sqlite/30_triggers.sql repeat
what PostgreSQL writes once (sql/postgres/30_triggers.sql). The copies must stay identical."""

from __future__ import annotations

import re

from scheduler_admin.schema import read_sql

_TRIGGER = re.compile(
    r"^CREATE TRIGGER (?P<name>\w+)\n(?P<header>.*?)\nBEGIN\n(?P<body>.*?)\nEND;",
    re.MULTILINE | re.DOTALL,
)


def triggers() -> dict[str, tuple[str, str]]:
    """(header, body) of every trigger of the current schema, by name."""
    found = {
        m["name"]: (m["header"], m["body"])
        for m in _TRIGGER.finditer(read_sql("sqlite", "30_triggers.sql"))
    }
    assert len(found) == 5, sorted(found)
    return found


def test_the_before_triggers_check_the_same_way() -> None:
    """The validation of an inserted and of an updated row is one body, written twice."""
    found = triggers()
    insert_header, insert_body = found["scheduler_meetings_before_insert"]
    update_header, update_body = found["scheduler_meetings_before_update"]
    assert insert_header == "BEFORE INSERT ON meetings"
    assert update_header == "BEFORE UPDATE OF id, status, end_time ON meetings"
    assert insert_body == update_body


def test_the_after_triggers_normalise_end_time_the_same_way() -> None:
    """The after triggers start alike (round a sub-millisecond end time up, complete an overdue
    meeting, store UTC text); they differ only in how they register or remove the job."""
    found = triggers()

    def normalisation(body: str) -> str:
        # everything up to the first statement about the job
        return re.split(r"\n    -- (?:Register|A meeting that left)", body)[0]

    after_insert = normalisation(found["scheduler_meetings_after_insert"][1])
    after_update = normalisation(found["scheduler_meetings_after_update"][1])
    assert "UPDATE meetings" in after_insert
    assert after_insert == after_update
