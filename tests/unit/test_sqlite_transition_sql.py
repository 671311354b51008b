"""The triggers generated for registered transitions (scheduler_admin/sqlite/transitions.py)
reuse the meetings' rules as SQL text: the job minute and schedule of the view
scheduler_meeting_jobs (sql/sqlite/20_views.sql) and the time check of the before triggers
(sql/sqlite/30_triggers.sql). SQLite has no functions to share them, so the copies must stay
identical to the originals."""

from __future__ import annotations

import sqlite3

from scheduler_admin.schema import read_sql
from scheduler_admin.sqlite.transitions import (
    Spec,
    active_sql,
    invalid_time_sql,
    job_minute_sql,
    quote_ident,
    quote_text,
    schedule_sql,
    trigger_sql,
)


def flat(sql: str) -> str:
    return " ".join(sql.split())


def test_the_schedule_rule_is_the_view_s() -> None:
    view = flat(read_sql("sqlite", "20_views.sql"))
    assert flat(job_minute_sql("end_time")) in view
    assert flat(schedule_sql("m.job_minute")) in view


def test_the_time_check_is_the_meetings_triggers() -> None:
    triggers = flat(read_sql("sqlite", "30_triggers.sql"))
    assert triggers.count(flat("AND " + invalid_time_sql("NEW.end_time") + ";")) == 2


def test_the_meetings_triggers_check_their_paused_flag_as_the_generated_ones() -> None:
    """Both register a job only while their transition is active (revision 0006)."""
    triggers = flat(read_sql("sqlite", "30_triggers.sql"))
    assert triggers.count(flat(active_sql("meetings"))) == 2
    spec = Spec("odd", "t", "k", "w", "s", ("on",), "off", "odd-")
    generated = flat(" ".join(trigger_sql(spec).values()))
    assert generated.count(flat(active_sql("odd"))) == 2
    # the triggers of revision 0005 (the downgrade of 0006) read the scheduler's flag only
    assert "paused" not in " ".join(trigger_sql(spec, paused_check=False).values())


def test_identifiers_and_literals_are_quoted() -> None:
    assert quote_ident('we"ird') == '"we""ird"'
    assert quote_text("it's") == "'it''s'"


def test_generated_triggers_compile_for_awkward_names() -> None:
    """Table, columns and states with quotes and spaces give valid triggers that work."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute(
        "CREATE TABLE cron_job (jobid INTEGER PRIMARY KEY, schedule TEXT, "
        "command TEXT, jobname TEXT UNIQUE, active INTEGER DEFAULT 1)"
    )
    conn.execute("CREATE TABLE scheduler_settings (singleton INTEGER PRIMARY KEY, enabled INTEGER)")
    conn.execute("CREATE TABLE scheduler_transitions (name TEXT PRIMARY KEY, paused INTEGER)")
    conn.execute(
        'CREATE TABLE "my ""odd"" table" ("the key" TEXT PRIMARY KEY, '
        '"when\'s" TEXT, "st""ate" TEXT)'
    )
    spec = Spec(
        name="odd",
        table='my "odd" table',
        key="the key",
        time="when's",
        state='st"ate',
        from_states=("it's on",),
        to_state="off",
        prefix="odd-",
    )
    for sql in trigger_sql(spec).values():
        conn.execute(sql)
    conn.execute(
        'INSERT INTO "my ""odd"" table" VALUES (?, ?, ?)',
        ("k'1", "2999-01-01T00:00:30Z", "it's on"),
    )
    assert conn.execute("SELECT jobname, schedule, command FROM cron_job").fetchall() == [
        ("odd-k'1", "1 0 1 1 *", "complete_transition('odd', 'k''1')")
    ]
    conn.execute(
        'INSERT INTO "my ""odd"" table" VALUES (?, ?, ?)', ("k2", "2000-01-01T00:00Z", "it's on")
    )
    assert conn.execute(
        'SELECT "st""ate" FROM "my ""odd"" table" WHERE "the key" = \'k2\''
    ).fetchone() == ("off",)
    conn.execute('DELETE FROM "my ""odd"" table"')
    assert conn.execute("SELECT count(*) FROM cron_job").fetchone() == (0,)
