"""Released revisions stored as deltas: for every step N-1 -> N, running N's delta gives the same
catalog as running N's files as they were released (functions with bodies and settings, owners,
ACLs, triggers, row-level security and policies, settings, registered transitions, jobs), on a
database with upcoming meetings and, from 0005 on, a registered transition with pending rows.

The released files come from the stored deltas with their markers expanded, which
tests/unit/test_released_revisions.py pins byte for byte to the checksums of the files in git
history (9308ec2 and earlier), so the proof is reproducible from that history."""

from __future__ import annotations

from typing import Any

import pytest
from clock_helpers import future_on
from pg_helpers import Conn, Server, catalog, migrate, revisions

from scheduler_admin import schema

SOON = future_on(1, 2, 3, 4, 5)
LATER = future_on(6, 1, 12, 0, 30)
MEETINGS = (
    "create table public.meetings (id uuid primary key default gen_random_uuid(), title text, "
    "owner text, status text not null default 'upcoming', end_time timestamptz not null)"
)
MEETING_ROWS = (
    "insert into public.meetings (id, title, status, end_time) values "
    f"('7d8e5a62-3c4b-4b8f-9f59-0e4d8d3c2a11', 'later', 'upcoming', '{LATER}'), "
    "('0c3f0e1d-59f6-4c1e-8a0b-6d2f1c9e7b22', 'over', 'done', '2020-01-01 00:00:00+00'), "
    f"('5b6a7c8d-1e2f-4a3b-9c4d-5e6f7a8b9c33', 'soon', 'upcoming', '{SOON}')"
)
TASKS = "create table public.tasks (id bigint primary key, state text not null, due timestamptz)"
TASK_ROWS = (
    f"insert into public.tasks values (1, 'pending', '{SOON}'), (2, 'pending', '{LATER}'), "
    "(3, 'done', '2020-01-01 00:00:00+00')"
)
REGISTER = (
    "select scheduler.add_transition('tasks', 'public.tasks', 'id', 'due', 'state', "
    "array['pending'], 'done', 'task-')"
)


def drop_everything(conn: Conn) -> None:
    conn.execute(schema.read_sql("postgres", "teardown.sql"))  # type: ignore[arg-type]
    conn.execute("drop table if exists public.meetings, public.tasks")
    conn.execute("drop table if exists scheduler.alembic_version")
    conn.execute("drop schema if exists scheduler")


def proof_catalog(conn: Conn) -> dict[str, object]:
    """catalog() and what it leaves out: every table's triggers, policies, whole settings and
    transition rows, and every job in cron.job."""
    q = conn.execute
    out = catalog(conn)
    out["all triggers"] = q(
        "select tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) from pg_trigger "
        "where tgrelid in ('public.meetings'::regclass, 'public.tasks'::regclass) "
        "  and not tgisinternal order by 1, 2"
    ).fetchall()
    out["task table"] = q(
        "select relacl::text, relrowsecurity from pg_class where oid = 'public.tasks'::regclass"
    ).fetchall()
    out["policies"] = q(
        "select polrelid::regclass::text, polname, polcmd, polroles::regrole[]::text, "
        "       pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid) "
        "from pg_policy order by 1, 2"
    ).fetchall()
    out["settings rows"] = q(
        "select to_jsonb(s) - 'updated_at' from scheduler.settings s"
    ).fetchall()
    if q("select to_regclass('scheduler.transitions') is not null").fetchone() == (True,):
        out["transitions"] = q(
            "select to_jsonb(t) - 'created_at' - 'updated_at' from scheduler.transitions t order by t.name"
        ).fetchall()
    out["every job"] = q(
        "select jobname, schedule, command, username, active from cron.job order by 1"
    ).fetchall()
    return out


def build(conn: Conn, server: Server, previous: str, revision: str) -> dict[str, object]:
    """From nothing to ``previous`` with meetings (and a registered transition from 0005 on),
    then to ``revision``; the catalog there."""
    drop_everything(conn)
    conn.execute(MEETINGS)
    conn.execute(MEETING_ROWS)
    conn.execute(TASKS)
    conn.execute(TASK_ROWS)
    migrate(server, previous)
    if previous >= "0005":
        conn.execute(REGISTER)
    migrate(server, revision)
    return proof_catalog(conn)


STEPS = list(zip(revisions()[:-1], revisions()[1:], strict=True))


@pytest.mark.parametrize(("previous", "revision"), STEPS, ids=[r for _, r in STEPS])
def test_each_delta_gives_the_catalog_of_the_released_files(
    db: Conn, migrated: Server, monkeypatch: pytest.MonkeyPatch, previous: str, revision: str
) -> None:
    try:
        with_delta = build(db, migrated, previous, revision)

        # the same step with the revision's files as released: alembic loads the revision
        # scripts afresh for each run, and they take apply_revision_files from schema
        apply = schema.apply_revision_files

        def released(connection: Any, files: list[tuple[str, str]], delta_of: Any = None) -> None:
            apply(connection, files)  # every file expanded

        monkeypatch.setattr(schema, "apply_revision_files", released)
        as_released = build(db, migrated, previous, revision)
        monkeypatch.undo()
    finally:  # back to the table the migration creates, for the other tests
        drop_everything(db)
        migrate(migrated)
    assert with_delta["functions"], "no function: the step did not run"
    for key in with_delta:
        assert with_delta[key] == as_released[key], key
    assert with_delta == as_released


def test_a_delta_runs_less_than_the_released_files() -> None:
    """The proof above compares something: each delta of 0002-0008 leaves definitions out."""
    for revision in ("0002", "0003", "0004", "0005", "0006", "0007", "0008"):
        names = [p.name for p in schema.revision_sql_dir(revision, "postgres").glob("[0-9]*.sql")]
        stored = "".join(schema.read_revision_sql(revision, "postgres", n) for n in names)
        released = "".join(schema.released_revision_sql(revision, "postgres", n) for n in names)
        assert "\n-- unchanged since " in stored, revision
        assert len(stored) < len(released), revision
    for name in ("40_admin.sql", "45_transitions.sql"):
        stored = schema.read_revision_sql("0008", "postgres", name)
        assert len(stored) < len(schema.released_revision_sql("0008", "postgres", name)) / 2
