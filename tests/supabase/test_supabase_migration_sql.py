"""`scheduler-admin sql` on the Supabase shape: the printed script, applied with psql as the
migration role (as `supabase db push` applies a migration file), builds exactly what
`alembic upgrade head` builds, and the printed downgrade removes exactly what `alembic downgrade
base` removes; alembic takes over from either.

pg_cron runs in one database per cluster, so the script is compared on the fixture's database:
its state after `alembic upgrade head` is captured, alembic takes it down to base (keeping
public.meetings), psql applies the script, and alembic brings it back to head at the end.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from clock_helpers import future_on
from pg_helpers import Conn, catalog, head_revision, sweep_supported
from skip_helpers import require_or_skip
from supabase_shape import MIGRATOR, SupabaseShape

from scheduler_admin.migration_sql import migration_sql
from scheduler_admin.testing.cluster import find_bindir

# upcoming whenever the tests run: 1 June 12:00:30 and 2 January 03:04:05 UTC, 30+ days ahead
LATER_END = future_on(6, 1, 12, 0, 30)
SOON_END = future_on(1, 2, 3, 4, 5)
MEETINGS = (
    "insert into public.meetings (id, title, end_time) values "
    f"('7d8e5a62-3c4b-4b8f-9f59-0e4d8d3c2a11', 'later', '{LATER_END}'), "
    f"('5b6a7c8d-1e2f-4a3b-9c4d-5e6f7a8b9c33', 'soon', '{SOON_END}')"
)


def psql() -> Path:
    bindir = find_bindir()
    if bindir is None or not (bindir / "psql").exists():
        require_or_skip(
            "needs the psql binary next to initdb (postgresql-client; "
            "scripts/install-postgres.sh installs it)"
        )
    return bindir / "psql"


def apply_with_psql(shape: SupabaseShape, script: str) -> subprocess.CompletedProcess[str]:
    """Feed the script to psql on stdin as the migration role, stopping at the first error."""
    return subprocess.run(
        [str(psql()), "-v", "ON_ERROR_STOP=1", "-X", "-q", "-f", "-", "-d", shape.dsn(MIGRATOR)],
        input=script,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def alembic(shape: SupabaseShape, *args: str) -> None:
    result = shape.alembic(*args)
    assert result.returncode == 0, result.stderr


def leftovers(conn: Conn) -> dict[str, object]:
    """Whatever of ours a database holds, schema scheduler or not."""
    q = conn.execute
    return {
        "schema": q(
            "select nspowner::regrole::text, nspacl::text from pg_namespace "
            "where nspname = 'scheduler'"
        ).fetchall(),
        "relations": q(
            "select c.oid::regclass::text, c.relkind::text, c.relowner::regrole::text, "
            "       c.relacl::text, c.relrowsecurity from pg_class c "
            "where c.relnamespace = to_regnamespace('scheduler') order by 1"
        ).fetchall(),
        "functions": q(
            "select count(*) from pg_proc where pronamespace = to_regnamespace('scheduler')"
        ).fetchall(),
        "types": q(
            "select typname::text from pg_type where typnamespace = to_regnamespace('scheduler') "
            "and typrelid = 0 order by 1"
        ).fetchall(),
        "triggers": q(
            "select tgname::text from pg_trigger where tgrelid = 'public.meetings'::regclass "
            "and not tgisinternal order by 1"
        ).fetchall(),
        "jobs": q(
            "select jobname, username from cron.job where jobname like 'meeting-status-%%' "
            "order by 1"
        ).fetchall(),
        "versions": q(
            "select version_num from scheduler.alembic_version"
            if q("select to_regclass('scheduler.alembic_version') is not null").fetchone()
            == (True,)
            else "select null where false"
        ).fetchall(),
        "meetings": q("select * from public.meetings order by id").fetchall(),
    }


def version_table(conn: Conn) -> dict[str, object]:
    """alembic's version table as alembic made it: columns, constraints, owner, grants, RLS."""
    q = conn.execute
    return {
        "columns": q(
            "select attname::text, format_type(atttypid, atttypmod), attnotnull "
            "from pg_attribute where attrelid = 'scheduler.alembic_version'::regclass "
            "and attnum > 0 and not attisdropped order by attnum"
        ).fetchall(),
        "constraints": q(
            "select conname::text, pg_get_constraintdef(oid) from pg_constraint "
            "where conrelid = 'scheduler.alembic_version'::regclass order by 1"
        ).fetchall(),
        "table": q(
            "select relowner::regrole::text, relacl::text, relrowsecurity from pg_class "
            "where oid = 'scheduler.alembic_version'::regclass"
        ).fetchall(),
        "rows": version(conn),
    }


def version(conn: Conn) -> list[tuple[object, ...]]:
    return conn.execute("select version_num from scheduler.alembic_version").fetchall()


@pytest.fixture
def db(supa: SupabaseShape) -> Iterator[Conn]:
    """The superuser's connection to the migrated database, with two upcoming meetings (and
    their jobs); back at head with no meeting afterwards. The settings are a fresh migration's
    (the shared reset turns the seconds sweep off; a migration turns it on where pg_cron has
    seconds), so that alembic's catalog compares with the printed script's."""
    with psycopg.connect(supa.dsn(), autocommit=True) as conn:
        conn.execute("update scheduler.settings set sweep_seconds = 1")
        conn.execute(MEETINGS)
        with psycopg.connect(supa.dsn(MIGRATOR), autocommit=True) as owner:
            owner.execute("select scheduler.sync_sweep()")
        try:
            yield conn
        finally:
            alembic(supa, "upgrade", "head")


def test_printed_upgrade_applied_with_psql_equals_alembic_upgrade_head(
    supa: SupabaseShape, db: Conn
) -> None:
    at_head = catalog(db)
    # reconcile + the two upcoming meetings (+ the seconds sweep where pg_cron has seconds)
    assert len(at_head["jobs"]) == 3 + sweep_supported(db)  # type: ignore[arg-type]
    alembic_made = version_table(db)
    alembic(supa, "downgrade", "base")
    assert leftovers(db)["functions"] == [(0,)]
    db.execute("drop table scheduler.alembic_version")  # the script creates it as alembic does

    result = apply_with_psql(supa, migration_sql(start=None, end="head", downgrade=False))
    assert result.returncode == 0, result.stderr
    assert catalog(db) == at_head
    assert version_table(db) == alembic_made
    assert alembic_made["rows"] == [(head_revision(),)]
    # alembic sees the database at head: a downgrade runs every revision's downgrade
    alembic(supa, "downgrade", "base")
    assert leftovers(db)["functions"] == [(0,)]


def test_printed_upgrade_refuses_a_database_that_is_already_migrated(
    supa: SupabaseShape, db: Conn
) -> None:
    at_head = catalog(db)
    result = apply_with_psql(supa, migration_sql(start=None, end="head", downgrade=False))
    assert result.returncode != 0
    assert (
        f"the database is at revision {head_revision()}, and this script starts at base"
        in result.stderr
    )
    assert f"scheduler-admin sql --from {head_revision()}" in result.stderr
    assert catalog(db) == at_head  # rolled back: nothing ran
    # the script from head to head changes nothing
    result = apply_with_psql(
        supa, migration_sql(start=head_revision(), end="head", downgrade=False)
    )
    assert result.returncode == 0, result.stderr
    assert catalog(db) == at_head


def test_printed_upgrade_from_a_revision_continues_alembic(supa: SupabaseShape, db: Conn) -> None:
    """A database migrated by alembic to 0002 is brought to head by `sql --from 0002`."""
    at_head = catalog(db)
    alembic(supa, "downgrade", "0002")
    assert version(db) == [("0002",)]
    result = apply_with_psql(supa, migration_sql(start="0002", end="head", downgrade=False))
    assert result.returncode == 0, result.stderr
    assert catalog(db) == at_head
    assert version(db) == [(head_revision(),)]


def test_printed_downgrade_applied_with_psql_equals_alembic_downgrade_base(
    supa: SupabaseShape, db: Conn
) -> None:
    at_head = catalog(db)
    alembic(supa, "downgrade", "base")
    by_alembic = leftovers(db)
    assert by_alembic["functions"] == [(0,)] and by_alembic["jobs"] == []
    assert by_alembic["versions"] == []
    assert len(by_alembic["meetings"]) == 2  # type: ignore[arg-type]
    alembic(supa, "upgrade", "head")

    result = apply_with_psql(supa, migration_sql(start="head", end="base", downgrade=True))
    assert result.returncode == 0, result.stderr
    assert leftovers(db) == by_alembic
    # alembic sees the database at base and upgrades it again
    alembic(supa, "upgrade", "head")
    assert catalog(db) == at_head


def test_printed_upgrade_then_downgrade_with_psql(supa: SupabaseShape, db: Conn) -> None:
    """Both scripts in turn with no alembic run between: down to base and up again."""
    alembic(supa, "downgrade", "base")
    at_base = leftovers(db)
    up = migration_sql(start=None, end="head", downgrade=False)
    down = migration_sql(start="head", end="base", downgrade=True)
    assert apply_with_psql(supa, up).returncode == 0
    first = catalog(db)
    result = apply_with_psql(supa, down)
    assert result.returncode == 0, result.stderr
    assert leftovers(db) == at_base
    assert apply_with_psql(supa, up).returncode == 0
    assert catalog(db) == first
