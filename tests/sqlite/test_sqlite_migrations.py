"""Alembic on SQLite: upgrade, downgrade, idempotence, atomicity, configuration sources."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from clock_helpers import future_on
from sqlalchemy import create_engine, pool
from sqlite_helpers import future, insert, jobs

from scheduler_admin.backends.sqlite import SqliteBackend
from scheduler_admin.migrate import alembic_config, downgrade, upgrade
from scheduler_admin.schema import apply_schema, read_revision_sql, read_sql, schema_files, teardown
from scheduler_admin.sqlite.transitions import Spec, render_frozen_triggers

REPO = Path(__file__).resolve().parents[2]
OURS = {
    ("table", "cron_job"),
    ("table", "cron_job_run_details"),
    ("table", "scheduler_settings"),
    ("table", "scheduler_statuses"),
    ("table", "scheduler_worker"),
    ("view", "scheduler_meeting_jobs"),
    ("view", "scheduler_upcoming_jobs"),
    ("view", "scheduler_orphan_jobs"),
    ("table", "scheduler_completion_events"),
    ("table", "scheduler_webhook_attempts"),
    ("table", "scheduler_webhooks"),
    ("table", "scheduler_metric_totals"),
    ("view", "scheduler_events"),
    ("trigger", "scheduler_meetings_before_insert"),
    ("trigger", "scheduler_meetings_before_update"),
    ("trigger", "scheduler_meetings_after_insert"),
    ("trigger", "scheduler_meetings_after_update"),
    ("trigger", "scheduler_meetings_after_delete"),
    ("index", "scheduler_meetings_status_end_time_idx"),
    ("index", "scheduler_run_details_start_time_idx"),
}


def objects(path: Path) -> dict[tuple[str, str], str]:
    """Every schema object of the file (type, name) -> SQL, SQLite's internals excluded."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT type, name, coalesce(sql, '') FROM sqlite_master "
            "WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE 'alembic_%'"
        ).fetchall()
    return {(t, n): s for t, n, s in rows}


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


HEAD = head_revision()


def url(path: Path) -> str:
    return f"sqlite:///{path}"


def revision(path: Path) -> str | None:
    with sqlite3.connect(path) as conn:
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:
            return None
    return None if row is None else str(row[0])


def test_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "cycle.db"
    upgrade(url=url(path))
    assert set(objects(path)) >= OURS
    assert revision(path) == HEAD
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        kept = insert(conn, future(60), title="keep me")
        assert len(jobs(conn)) == 1
    downgrade("base", url=url(path))
    left = objects(path)
    assert set(left) == {("table", "meetings")}, left
    assert revision(path) is None
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT id, title FROM meetings").fetchall() == [(kept, "keep me")]
    upgrade(url=url(path))
    assert set(objects(path)) >= OURS
    assert revision(path) == HEAD


def test_downgrading_0003_gives_back_the_0002_schema(tmp_path: Path) -> None:
    """0003's downgrade drops scheduler_statuses and restores the views and triggers of 0001,
    whatever words were configured; upgrading again starts from the default words."""
    at_0002 = tmp_path / "at_0002.db"
    upgrade("0002", url=url(at_0002))
    path = tmp_path / "down.db"
    upgrade(url=url(path))
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE scheduler_statuses SET cancelled_status = 'dropped'")
    downgrade("0002", url=url(path))
    assert objects(path) == objects(at_0002)
    upgrade(url=url(path))
    with sqlite3.connect(path) as conn:
        assert conn.execute(
            "SELECT pending_status, done_status, cancelled_status FROM scheduler_statuses"
        ).fetchall() == [("upcoming", "done", "cancelled")]


EVENTS = {  # revision 0004
    ("table", "scheduler_completion_events"),
    ("table", "scheduler_webhook_attempts"),
    ("table", "scheduler_webhooks"),
    ("table", "scheduler_metric_totals"),
    ("view", "scheduler_events"),
}


def event_rows(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT meeting_id, path FROM scheduler_completion_events ORDER BY event_id"
        ).fetchall()


def test_a_0003_store_upgraded_to_0004_records_events_and_downgrades_back(tmp_path: Path) -> None:
    """0004 on a store of 0003 with meetings: the same schema as a fresh store at 0004, the
    triggers record events; its downgrade gives back 0003's schema with the meetings and jobs
    kept."""
    at_0003, fresh = tmp_path / "at_0003.db", tmp_path / "fresh.db"
    upgrade("0003", url=url(at_0003))
    upgrade("0004", url=url(fresh))
    path = tmp_path / "store.db"
    upgrade("0003", url=url(path))
    assert not set(objects(path)) & EVENTS
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        kept = insert(conn, future(60))
        insert(conn, "2020-01-01T00:00:00Z")  # completed by 0003's triggers: no event to record
    upgrade("0004", url=url(path))
    assert objects(path) == objects(fresh)
    assert event_rows(path) == []
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        late = insert(conn, "2020-01-01T00:00:00Z")
    assert event_rows(path) == [(late, "write")]
    downgrade("0003", url=url(path))
    assert objects(path) == objects(at_0003)
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        assert set(jobs(conn)) == {f"meeting-status-{kept}"}
        insert(conn, "2020-01-01T00:00:00Z")  # 0003's triggers again: no events table needed
        assert conn.execute("SELECT count(*) FROM meetings").fetchone()[0] == 4
    upgrade("0004", url=url(path))
    assert objects(path) == objects(fresh)
    assert event_rows(path) == []  # the events went with the downgrade


def test_upgrade_twice_is_harmless(tmp_path: Path) -> None:
    path = tmp_path / "twice.db"
    upgrade(url=url(path))
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        insert(conn, future(60))
        conn.execute("UPDATE scheduler_settings SET history_retention_days = 30")
    before = objects(path)
    upgrade(url=url(path))
    assert objects(path) == before
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT history_retention_days FROM scheduler_settings").fetchone() == (
            30,
        )
        assert conn.execute("SELECT count(*) FROM cron_job").fetchone() == (2,)


def test_applying_every_file_twice_equals_migrating_to_head(tmp_path: Path) -> None:
    migrated = tmp_path / "migrated.db"
    upgrade(url=url(migrated))
    applied = tmp_path / "applied.db"
    engine = create_engine(url(applied), poolclass=pool.NullPool)
    with engine.begin() as conn:
        apply_schema(conn)
    with engine.begin() as conn:
        apply_schema(conn)  # idempotent
    engine.dispose()
    assert objects(applied) == objects(migrated)
    with sqlite3.connect(applied) as conn:
        assert conn.execute("SELECT jobname FROM cron_job").fetchall() == [
            ("meeting-status-reconcile",)
        ]
        assert conn.execute("SELECT count(*) FROM scheduler_settings").fetchone() == (1,)


def test_the_revision_applies_every_sqlite_file() -> None:
    from importlib import util

    spec = util.spec_from_file_location(
        "rev0001", REPO / "migrations" / "versions" / "0001_initial.py"
    )
    assert spec is not None and spec.loader is not None
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.UPGRADE_FILES["sqlite"] == schema_files("sqlite")
    assert module.DOWNGRADE_FILES["sqlite"] == ["teardown.sql"]


def test_a_failing_upgrade_leaves_nothing_behind(tmp_path: Path) -> None:
    """An existing meetings table without end_time: the revision fails as a whole."""
    path = tmp_path / "legacy.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE meetings (id TEXT PRIMARY KEY, status TEXT, ends TEXT)")
        conn.execute("INSERT INTO meetings VALUES ('m', 'upcoming', '2030-01-01')")
    with pytest.raises(Exception, match='meetings exists but has no column "end_time"'):
        upgrade(url=url(path))
    assert set(objects(path)) == {("table", "meetings")}
    assert revision(path) is None
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT * FROM meetings").fetchall() == [
            ("m", "upcoming", "2030-01-01")
        ]


def test_an_existing_meetings_table_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "existing.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE meetings (id TEXT PRIMARY KEY, status TEXT NOT NULL DEFAULT 'upcoming', "
            "end_time TEXT NOT NULL, room TEXT)"
        )
        conn.execute(
            "INSERT INTO meetings (id, end_time, room) VALUES ('old', ?, 'A')",
            (future_on(1, 1).isoformat(),),
        )
    upgrade(url=url(path))
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        assert [tuple(r) for r in conn.execute("SELECT id, room FROM meetings")] == [("old", "A")]
        conn.execute(
            "INSERT INTO meetings (id, end_time, room) VALUES ('new', ?, 'B')",
            (future(60).isoformat(),),
        )
        # the row written before the migration got its job at the migration (as on PostgreSQL)
        assert set(jobs(conn)) == {"meeting-status-old", "meeting-status-new"}


def test_teardown_inside_a_rolled_back_transaction_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "rollback.db"
    upgrade(url=url(path))
    before = objects(path)
    engine = create_engine(url(path), poolclass=pool.NullPool)
    with engine.connect() as conn:
        conn.begin()
        teardown(conn)
        conn.rollback()
    engine.dispose()
    assert objects(path) == before


def test_migrating_through_a_passed_connection(tmp_path: Path) -> None:
    from alembic import command

    path = tmp_path / "conn.db"
    engine = create_engine(url(path), poolclass=pool.NullPool)
    with engine.begin() as conn:
        command.upgrade(alembic_config(connection=conn), "head")
    engine.dispose()
    assert set(objects(path)) >= OURS
    assert revision(path) == HEAD


def alembic_cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("SCHEDULER_DATABASE_URL", "DATABASE_URL", "SCHEDULER_JOBSTORE_URL", "ENVIRONMENT")
    }
    environment.update(env)
    environment["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(REPO / "alembic.ini"), *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_alembic_cli_with_x_url(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    result = alembic_cli(tmp_path, "-x", f"url={url(path)}", "upgrade", "head")
    assert result.returncode == 0, result.stderr
    assert revision(path) == HEAD
    result = alembic_cli(tmp_path, "-x", f"url={url(path)}", "downgrade", "base")
    assert result.returncode == 0, result.stderr
    assert set(objects(path)) == {("table", "meetings")}


def test_alembic_cli_with_status_words(tmp_path: Path) -> None:
    """-x pending_status=... (and the others) on the command line, as on PostgreSQL."""
    path = tmp_path / "words.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE meetings (id TEXT PRIMARY KEY, status TEXT NOT NULL "
            "CHECK (status IN ('scheduled', 'completed', 'canceled')), end_time TEXT)"
        )
    words = ["pending_status=scheduled", "done_status=completed", "cancelled_status=canceled"]
    result = alembic_cli(
        tmp_path,
        "-x",
        f"url={url(path)}",
        *(arg for word in words for arg in ("-x", word)),
        "upgrade",
        "head",
    )
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(path) as conn:
        assert conn.execute(
            "SELECT pending_status, done_status, cancelled_status FROM scheduler_statuses"
        ).fetchall() == [("scheduled", "completed", "canceled")]
    # a word the table refuses: the command fails with the constraint named, nothing migrated
    refused = tmp_path / "refused.db"
    with sqlite3.connect(refused) as conn:
        conn.execute(
            "CREATE TABLE meetings (id TEXT PRIMARY KEY, status TEXT NOT NULL "
            "CHECK (status IN ('scheduled', 'completed', 'canceled')), end_time TEXT)"
        )
    result = alembic_cli(
        tmp_path, "-x", f"url={url(refused)}", "upgrade", "head", SCHEDULER_DONE_STATUS="completed"
    )
    assert result.returncode != 0
    assert (
        "status 'upcoming' is not allowed by the constraint (unnamed) of meetings" in result.stderr
    )
    assert set(objects(refused)) == {("table", "meetings")} and revision(refused) is None


def test_alembic_cli_with_scheduler_jobstore_url(tmp_path: Path) -> None:
    path = tmp_path / "jobstore.db"
    result = alembic_cli(tmp_path, "upgrade", "head", SCHEDULER_JOBSTORE_URL=url(path))
    assert result.returncode == 0, result.stderr
    assert set(objects(path)) >= OURS


def test_alembic_cli_default_database(tmp_path: Path) -> None:
    result = alembic_cli(tmp_path, "upgrade", "head")
    assert result.returncode == 0, result.stderr
    assert set(objects(tmp_path / "scheduler_jobs.db")) >= OURS


def test_sql_files_are_split_into_statements() -> None:
    from scheduler_admin.sqlite_script import split_statements

    triggers = list(split_statements(read_sql("sqlite", "30_triggers.sql")))
    assert sum(s.upper().startswith("CREATE TRIGGER") for s in triggers) == 5
    assert all(sqlite3.complete_statement(s + ";") for s in triggers)


MEMBERSHIPS = "CREATE TABLE memberships (id INTEGER PRIMARY KEY, status TEXT, expires_at TEXT)"
MEMBERSHIP_SPEC = Spec(
    name="memberships",
    table="memberships",
    key="id",
    time="expires_at",
    state="status",
    from_states=("active",),
    to_state="expired",
    prefix="memberships-status-",
)


def register_as_0005(conn: sqlite3.Connection) -> None:
    """Register memberships as revision 0005 did: its registry row (no paused column then) and
    its triggers, which read the scheduler's flag only."""
    conn.execute(
        """INSERT INTO scheduler_transitions (name, table_name, key_column, time_column,
                                              state_column, from_states, to_state, job_prefix)
           VALUES ('memberships', 'memberships', 'id', 'expires_at', 'status', '["active"]',
                   'expired', 'memberships-status-')"""
    )
    template = read_revision_sql("0005", "sqlite", "generated_triggers.sql")
    for sql in render_frozen_triggers(template, MEMBERSHIP_SPEC).values():
        conn.execute(sql)


def member(conn: sqlite3.Connection, expires_at: str) -> int:
    row = conn.execute(
        "INSERT INTO memberships (status, expires_at) VALUES ('active', ?) RETURNING id",
        (expires_at,),
    ).fetchone()
    return int(row[0])


def member_jobs(conn: sqlite3.Connection) -> set[str]:
    return {
        str(r[0])
        for r in conn.execute("SELECT jobname FROM cron_job WHERE jobname LIKE 'memberships-%'")
    }


def test_0006_keeps_a_transition_registered_before_and_downgrades_back(tmp_path: Path) -> None:
    """0006 on a store of 0005 with a registered transition: the same schema as a new store at
    head with that transition (its triggers re-created with the paused check), the transition
    keeps working and can be paused by name; the downgrade gives back 0005's schema (its
    triggers as 0005 wrote them, a pause by name forgotten) and the jobs."""
    path, fresh = tmp_path / "store.db", tmp_path / "fresh.db"
    upgrade("0005", url=url(path))
    with sqlite3.connect(path) as conn:
        conn.execute(MEMBERSHIPS)
        register_as_0005(conn)
        first = member(conn, future(60).isoformat())
        assert member_jobs(conn) == {f"memberships-status-{first}"}
    at_0005 = objects(path)
    upgrade("0005", url=url(fresh))
    with sqlite3.connect(fresh) as conn:
        conn.execute(MEMBERSHIPS)
    # what a new store at head gets from add_transition
    upgrade(url=url(fresh))
    backend = SqliteBackend(url(fresh))
    backend.add_transition(
        "memberships",
        table="memberships",
        key_column="id",
        time_column="expires_at",
        state_column="status",
        from_states=["active"],
        to_state="expired",
    )
    backend.close()

    upgrade(url=url(path))
    assert revision(path) == HEAD
    assert objects(path) == objects(fresh)
    assert objects(path) != at_0005  # the column and the triggers that read it
    backend = SqliteBackend(url(path))
    try:
        assert [(t["name"], t["paused"], t["jobs"]) for t in backend.transitions()] == [
            ("meetings", False, 0),
            ("memberships", False, 1),
        ]
        with sqlite3.connect(path) as conn:
            second = member(conn, future(90).isoformat())
            assert member_jobs(conn) == {f"memberships-status-{k}" for k in (first, second)}
        backend.pause(transition="memberships")
        with sqlite3.connect(path) as conn:
            conn.row_factory = sqlite3.Row
            paused = member(conn, future(90).isoformat())
            assert f"memberships-status-{paused}" not in member_jobs(conn)
            meeting = insert(conn, future(90))  # meetings keep going
            assert f"meeting-status-{meeting}" in jobs(conn)
    finally:
        backend.close()

    downgrade("0005", url=url(path))
    assert revision(path) == "0005"
    assert objects(path) == at_0005
    with sqlite3.connect(path) as conn:
        assert "paused" not in {
            r[1] for r in conn.execute("PRAGMA table_info(scheduler_transitions)")
        }
        assert member_jobs(conn) == {f"memberships-status-{k}" for k in (first, second)}
        # 0005's triggers register again, the pause by name gone with its column
        third = member(conn, future(120).isoformat())
        assert f"memberships-status-{third}" in member_jobs(conn)
    upgrade(url=url(path))
    assert objects(path) == objects(fresh)
    # 0006's triggers round a fraction finer than milliseconds up (0005's did not)
    with sqlite3.connect(path) as conn:
        fine = member(conn, f"{future_on(3, 14, 9, 26).year}-03-14T09:26:00.0004Z")
        (schedule,) = conn.execute(
            "SELECT schedule FROM cron_job WHERE jobname = ?", (f"memberships-status-{fine}",)
        ).fetchone()
        assert schedule == "27 9 14 3 *"
