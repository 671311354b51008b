"""The triggers generated for registered transitions (scheduler_admin/sqlite/transitions.py)
reuse the meetings' rules as SQL text: the job minute and schedule of the view
scheduler_meeting_jobs (sql/sqlite/20_views.sql), the time check of the before triggers and the
condition on which the after triggers round a fraction finer than milliseconds up
(sql/sqlite/30_triggers.sql). SQLite has no functions to share them, so the copies must stay
identical to the originals. The transitions' job minute is the view's rule plus that condition
(they never rewrite the application's time column as the meetings triggers do)."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from scheduler_admin.schema import read_revision_sql, read_sql
from scheduler_admin.sqlite.transitions import (
    Spec,
    active_sql,
    finer_fraction_sql,
    invalid_time_sql,
    job_minute_sql,
    quote_ident,
    quote_text,
    render_frozen_triggers,
    schedule_sql,
    trigger_sql,
)

# sha256 of the generated triggers of a memberships transition as the code of revision 0005
# wrote them (before 0006's work began), joined by newlines
DIGEST_0005 = "7a418ac2f4fa15dc8705c7da87c3c4b65ce5dd120115147201b087d1eef5d9cb"
# the same of the triggers as released 0006's code generated them (the downgrade of 0007)
DIGEST_0006 = "72d9979626f898318f188c2d8ea61a1eb975fb0cfecb7e72dc6a4c98fcf2105a"


def flat(sql: str) -> str:
    return " ".join(sql.split())


def test_the_schedule_rule_is_the_view_s() -> None:
    view = flat(read_sql("sqlite", "20_views.sql"))
    assert flat(job_minute_sql("end_time", finer_fraction=False)) in view
    assert flat(schedule_sql("m.job_minute")) in view


def test_the_finer_fraction_condition_is_the_meetings_triggers() -> None:
    """The transitions round up what the meetings' after triggers round up, on the same
    condition, written the same way."""
    triggers = flat(read_sql("sqlite", "30_triggers.sql"))
    assert triggers.count(flat("AND " + finer_fraction_sql("end_time") + ";")) == 2


def test_the_transitions_job_minute_is_the_view_s_plus_the_finer_fraction() -> None:
    """The view's rule, with a time at :00.000 kept in its minute only when its text has no
    nonzero fraction digit beyond the third; nothing else differs."""
    view_rule = flat(job_minute_sql("t.x", finer_fraction=False))
    on_the_minute = "strftime('%f', t.x) = '00.000'"
    assert view_rule.count(on_the_minute) == 1
    assert flat(job_minute_sql("t.x")) == view_rule.replace(
        on_the_minute, f"{on_the_minute} AND NOT ({flat(finer_fraction_sql('t.x'))})"
    )


@pytest.mark.parametrize(
    ("time", "minute"),
    [
        ("2031-03-14T09:26:00Z", "2031-03-14 09:26:00"),
        ("2031-03-14T09:26:00.000Z", "2031-03-14 09:26:00"),
        ("2031-03-14T09:26:00.0000Z", "2031-03-14 09:26:00"),
        ("2031-03-14T09:26:00.000000", "2031-03-14 09:26:00"),
        ("2031-03-14T09:26:00.0004Z", "2031-03-14 09:27:00"),
        ("2031-03-14T09:26:00.000001Z", "2031-03-14 09:27:00"),
        ("2031-03-14 09:26:00.00040", "2031-03-14 09:27:00"),
        ("2031-03-14T11:26:00.0004+02:00", "2031-03-14 09:27:00"),
        ("2031-03-14T09:26:00.0Z", "2031-03-14 09:26:00"),
        ("2031-03-14T09:26:00.00+02:00", "2031-03-14 07:26:00"),
        ("2031-03-14T09:26:00.0006Z", "2031-03-14 09:27:00"),
        ("2031-03-14T09:26:30.0004Z", "2031-03-14 09:27:00"),
        # SQLite rounds this one up into the next minute itself (on the offset's way): kept
        ("2031-03-14T11:26:59.9996+02:00", "2031-03-14 09:27:00"),
        ("2031-03-14T09:26:59.9996Z", "2031-03-14 09:27:00"),
        ("2031-12-31T23:59:59.999999Z", "2032-01-01 00:00:00"),
    ],
)
def test_the_job_minute_is_the_first_minute_at_or_after_the_time(time: str, minute: str) -> None:
    conn = sqlite3.connect(":memory:")
    (got,) = conn.execute(f"SELECT {job_minute_sql(':t')}", {"t": time}).fetchone()
    assert got == minute


def test_the_triggers_of_revision_0005_are_kept_byte_for_byte() -> None:
    """The downgrade of 0006 re-creates the generated triggers as released 0005 wrote them:
    without the paused check and with the view's job minute (digest of their text as 0005's
    code generated it)."""
    spec = Spec(
        "memberships",
        "memberships",
        "id",
        "expires_at",
        "status",
        ("active",),
        "expired",
        "memberships-status-",
    )
    text = "\n".join(frozen("0005", spec).values())
    assert hashlib.sha256(text.encode()).hexdigest() == DIGEST_0005
    assert flat(finer_fraction_sql('"expires_at"')) not in flat(text)
    assert flat(finer_fraction_sql('t."expires_at"')) in flat(" ".join(trigger_sql(spec).values()))


def test_the_triggers_of_revision_0006_are_kept_byte_for_byte() -> None:
    """The downgrade of 0007 re-creates the generated triggers as released 0006 wrote them:
    with the paused check and the finer fraction, without the events of the write path."""
    spec = Spec(
        "memberships",
        "memberships",
        "id",
        "expires_at",
        "status",
        ("active",),
        "expired",
        "memberships-status-",
    )
    text = "\n".join(frozen("0006", spec).values())
    assert hashlib.sha256(text.encode()).hexdigest() == DIGEST_0006
    assert "scheduler_completion_events" not in text
    assert "scheduler_completion_events" in " ".join(trigger_sql(spec).values())


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
    assert "paused" not in " ".join(frozen("0005", spec).values())


@pytest.mark.parametrize(
    "spec",
    [
        Spec("odd", "t", "k", "w", "s", ("on",), "off", "odd-"),
        Spec("we_ird", 'it\'s "a" table', "k'ey", 'ti"me', "st'ate", ("a'b", "c"), "d'one", "w-"),
        # values that look like the placeholders are substituted once, never again
        Spec("n_me", "k@y", "t@ble", "st@te", "t@me", ("t@state", "fr@m"), "fr@m", "n-"),
    ],
)
def test_the_latest_frozen_shape_is_today_s(spec: Spec) -> None:
    """The generated triggers are frozen by the revision that last changed their shape (0011):
    rendered for any transition, that template gives what trigger_sql() writes today."""
    assert frozen("0011", spec) == trigger_sql(spec)


def frozen(revision: str, spec: Spec) -> dict[str, str]:
    """The generated triggers of ``spec`` in the shape ``revision`` froze."""
    template = read_revision_sql(revision, "sqlite", "generated_triggers.sql")
    return render_frozen_triggers(template, spec)


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
    conn.execute("CREATE TABLE scheduler_webhooks (singleton INTEGER PRIMARY KEY, enabled INTEGER)")
    conn.execute(
        "CREATE TABLE scheduler_horizons (transition TEXT PRIMARY KEY, horizon_seconds INTEGER)"
    )
    conn.execute(
        "CREATE TABLE scheduler_completion_events (meeting_id TEXT, end_time TEXT, "
        "completed_at TEXT, path TEXT, delivery TEXT, next_attempt_at TEXT, transition TEXT, "
        "key TEXT)"
    )
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
    assert conn.execute(
        "SELECT meeting_id, end_time, path, transition, key FROM scheduler_completion_events"
    ).fetchall() == [(None, "2000-01-01T00:00:00.000000+00:00", "write", "odd", "k2")]
    conn.execute('DELETE FROM "my ""odd"" table"')
    assert conn.execute("SELECT count(*) FROM cron_job").fetchone() == (0,)
