"""Maintainer tool: the delta of the next revision, from what sql/postgres/ defines and what a
database at the last revision holds.

    python scripts/next_delta.py [--dsn DSN] [--out DIR]

It migrates a database to the last revision (alembic head) and reads its functions, tables and
columns; then removes everything of ours, applies the files of sql/postgres/ and reads them
again. The difference, written to DIR (default: stdout only):

- ``upgrade.sql``: every function that is new or changed, as sql/postgres/ writes it (its leading
  comment, its ``create or replace function`` and its ``comment on function``), in schema-file
  order; a ``drop function`` for every function removed; the statement of sql/postgres/ that
  creates each new table, and an ``add column`` for each new column;
- ``downgrade.sql``: its inverse: a ``drop function`` for each new function, a marker
  (``-- unchanged since NNNN: …``) for each changed or removed one, naming the revision that holds
  its definition (a downgrade re-applies it from there), and the drops of new columns and tables;
- on stderr, what it cannot write for you: changed privileges, triggers and grants.

Without --dsn it starts a throwaway cluster from the local PostgreSQL binaries, as the tests do
(pg_cron installed). A database given with --dsn is emptied and rebuilt: give a scratch one.
A person reviews the files, adds them to a new alembic revision and pins them.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from scheduler_admin import schema  # noqa: E402
from scheduler_admin.sql_units import MARKER, Unit, marker, signature, units  # noqa: E402

FUNCTIONS = (
    "select p.oid::regprocedure::text, pg_catalog.pg_get_functiondef(p.oid), p.proacl::text "
    "from pg_catalog.pg_proc p where p.pronamespace = 'scheduler'::regnamespace"
)
COLUMNS = (
    "select c.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) "
    "from pg_catalog.pg_attribute a join pg_catalog.pg_class c on c.oid = a.attrelid "
    "where c.relnamespace = 'scheduler'::regnamespace and c.relkind in ('r', 'p') "
    "  and c.relname <> 'alembic_version' and a.attnum > 0 and not a.attisdropped"
)
TRIGGERS = (
    "select t.tgname, pg_catalog.pg_get_triggerdef(t.oid) from pg_catalog.pg_trigger t "
    "where t.tgrelid = 'public.meetings'::regclass and not t.tgisinternal"
)


def snapshot(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    functions = {row[0]: (row[1], row[2]) for row in conn.execute(FUNCTIONS)}
    columns: dict[str, dict[str, str]] = {}
    for table, column, type_ in conn.execute(COLUMNS):
        columns.setdefault(table, {})[column] = type_
    triggers = dict(conn.execute(TRIGGERS).fetchall())
    return {"functions": functions, "columns": columns, "triggers": triggers}


def migrate_to_head(dsn: str) -> None:
    from alembic import command
    from sqlalchemy import create_engine, pool

    from scheduler_admin.migrate import alembic_config

    engine = create_engine(
        "postgresql+psycopg://", poolclass=pool.NullPool, creator=lambda: psycopg.connect(dsn)
    )
    with engine.begin() as conn:
        command.upgrade(alembic_config(connection=conn), "head")
    engine.dispose()


def regprocedure(conn: psycopg.Connection[Any], key: str) -> str | None:
    """The catalog's name of a function a unit defines (its types as PostgreSQL spells them)."""
    named = signature(key)
    if named is None:
        return None
    name, types = named
    row = conn.execute(
        "select array(select t::regtype::text from unnest(%s::text[]) t)", (types,)
    ).fetchone()
    assert row is not None
    return f"{name}({','.join(row[0])})"


def schema_units() -> list[tuple[str, Unit]]:
    return [
        (name, unit)
        for name in schema.schema_files("postgres")
        for unit in units(schema.read_sql("postgres", name))
    ]


def last_definition(conn: psycopg.Connection[Any], wanted: str) -> tuple[str, str] | None:
    """(revision, key) of the newest revision whose files define a function, following markers
    to the revision that holds its text."""
    root = schema.revision_sql_dir("0001", "postgres").parent.parent
    for revision in sorted((p.name for p in root.iterdir()), reverse=True):
        files = sorted(schema.revision_sql_dir(revision, "postgres").glob("[0-9]*.sql"))
        files += sorted(schema.revision_sql_dir(revision, "postgres").glob("functions.sql"))
        for path in files:
            for unit in units(path.read_text(encoding="utf-8")):
                if (
                    unit.key
                    and unit.key.startswith("function ")
                    and (regprocedure(conn, unit.key) == wanted)
                ):
                    found = MARKER.search(unit.text)
                    return (found.group(1), unit.key) if found else (revision, unit.key)
    return None


def delta(
    conn: psycopg.Connection[Any], at_head: dict[str, Any], current: dict[str, Any]
) -> tuple[str, str, list[str]]:
    up: list[str] = []
    down: list[str] = []
    notes: list[str] = []
    old_f, new_f = at_head["functions"], current["functions"]
    # new tables and columns
    for table, columns in current["columns"].items():
        if table not in at_head["columns"]:
            creates = [
                u.text
                for _, u in schema_units()
                if u.key is None and f"table if not exists scheduler.{table} (" in u.text
            ]
            up += creates or [f"-- new table scheduler.{table}: write its create table\n"]
            down.append(f"drop table if exists scheduler.{table};\n")
            continue
        for column, type_ in columns.items():
            if column not in at_head["columns"][table]:
                up.append(
                    f"alter table scheduler.{table} add column if not exists {column} {type_};"
                    "  -- check its default and constraints\n"
                )
                down.append(f"alter table scheduler.{table} drop column if exists {column};\n")
    for table in at_head["columns"]:
        if table not in current["columns"]:
            up.append(f"drop table if exists scheduler.{table};\n")
            notes.append(f"table scheduler.{table} removed: its downgrade must create it again")
    # functions: new or changed, in schema-file order
    written = set()
    for _file, unit in schema_units():
        if not (unit.key and unit.key.startswith("function ")):
            continue
        name = regprocedure(conn, unit.key)
        if name is None or name in written:
            continue
        if name not in old_f:
            up.append("\n" + unit.text.lstrip("\n"))
            down.append(f"drop function if exists {name};\n")
            written.add(name)
        elif old_f[name][0] != new_f.get(name, ("",))[0]:
            up.append("\n" + unit.text.lstrip("\n"))
            written.add(name)
            source = last_definition(conn, name)
            down.append(marker(*source) if source else f"-- {name}: no earlier definition found\n")
        if name in old_f and name in new_f and old_f[name][1] != new_f[name][1]:
            notes.append(f"privileges of {name} differ: {old_f[name][1]} -> {new_f[name][1]}")
    for name in sorted(set(old_f) - set(new_f)):
        up.append(f"drop function if exists {name};\n")
        source = last_definition(conn, name)
        down.append(marker(*source) if source else f"-- {name}: no earlier definition found\n")
    for trigger in sorted(set(at_head["triggers"]) | set(current["triggers"])):
        if at_head["triggers"].get(trigger) != current["triggers"].get(trigger):
            notes.append(f"trigger {trigger} on public.meetings differs: write it by hand")
    return "".join(up), "".join(down), notes


@contextlib.contextmanager
def database(dsn: str | None) -> Iterator[str]:
    if dsn:
        yield dsn
        return
    from scheduler_admin.testing.cluster import throwaway_cluster

    with throwaway_cluster() as cluster:
        yield cluster.dsn()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", help="a scratch database with pg_cron (emptied and rebuilt)")
    parser.add_argument("--out", type=Path, help="write upgrade.sql and downgrade.sql here")
    args = parser.parse_args()
    with database(args.dsn) as dsn:
        migrate_to_head(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            at_head = snapshot(conn)
            conn.execute(schema.read_sql("postgres", "teardown.sql"))  # type: ignore[arg-type]
            for name in schema.schema_files("postgres"):
                conn.execute(schema.read_sql("postgres", name))  # type: ignore[arg-type]
            current = snapshot(conn)
            up, down, notes = delta(conn, at_head, current)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "upgrade.sql").write_text(up, encoding="utf-8")
        (args.out / "downgrade.sql").write_text(down, encoding="utf-8")
    else:
        sys.stdout.write("-- upgrade.sql\n" + (up or "-- nothing changed\n"))
        sys.stdout.write("\n-- downgrade.sql\n" + (down or "-- nothing changed\n"))
    for note in notes:
        print(f"next_delta: {note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
