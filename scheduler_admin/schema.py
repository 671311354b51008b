"""The SQL shipped with the package: where it lives and how migrations apply it.

``sql/<backend>/`` holds the current schema as numbered files applied in order (every file is
idempotent: ``create … if not exists``, ``create or replace``, ``drop … if exists``) and
``teardown.sql``, which removes every object of ours. ``sql/revisions/<revision>/<backend>/``
holds what each alembic revision applies, frozen when the revision is released (a unit test
pins their checksums): only what the revision changed, each definition it repeated word for word
replaced by a marker naming the revision that holds it (``scheduler_admin.sql_units``). So
``alembic upgrade head`` brings a database migrated by an older release to the current schema; a
test proves that migrating to head equals applying every file of ``sql/<backend>/``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from scheduler_admin.sql_units import expand

SqlDialect = Literal["postgres", "sqlite"]

_PACKAGE_DIR = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    # Installed wheel: shipped inside the package. Source checkout: at the repository root.
    for candidate in (_PACKAGE_DIR / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"the {name}/ directory is missing from this installation")


def sql_dir(backend: SqlDialect) -> Path:
    return _data_dir("sql") / backend


def migrations_dir() -> Path:
    return _data_dir("migrations")


def schema_files(backend: SqlDialect) -> list[str]:
    """Every numbered schema file of a backend, in the order they apply."""
    return sorted(p.name for p in sql_dir(backend).glob("[0-9]*.sql"))


def read_sql(backend: SqlDialect, name: str) -> str:
    return (sql_dir(backend) / name).read_text(encoding="utf-8")


def revision_sql_dir(revision: str, backend: SqlDialect) -> Path:
    """The frozen SQL of one alembic revision."""
    return _data_dir("sql") / "revisions" / revision / backend


def read_revision_sql(revision: str, backend: SqlDialect, name: str) -> str:
    """A frozen file as stored: the revision's delta."""
    return (revision_sql_dir(revision, backend) / name).read_text(encoding="utf-8")


def _definitions(backend: SqlDialect) -> Callable[[str], str]:
    """What the markers of a backend point into: the files of a revision that define (numbered
    files first), not its inverse, teardown or the template of generated triggers."""

    def read(revision: str) -> str:
        directory = revision_sql_dir(revision, backend)
        numbered = sorted(directory.glob("[0-9]*.sql"))
        others = sorted(
            p
            for p in directory.glob("*.sql")
            if p not in numbered
            and not p.name.startswith(("downgrade", "teardown"))
            and p.name != "generated_triggers.sql"
        )
        return "".join(p.read_text(encoding="utf-8") for p in numbered + others)

    return read


def released_revision_sql(revision: str, backend: SqlDialect, name: str) -> str:
    """A frozen file as the revision released it: its markers expanded into the definitions they
    name, from the revisions that hold them."""
    return expand(read_revision_sql(revision, backend, name), _definitions(backend), revision)


def backend_of_dialect(dialect_name: str) -> SqlDialect:
    if dialect_name == "postgresql":
        return "postgres"
    if dialect_name == "sqlite":
        return "sqlite"
    raise ValueError(f"unsupported database dialect {dialect_name!r}")


def execute_script(connection: Any, backend: SqlDialect, script: str) -> None:
    """Run a multi-statement SQL script on a SQLAlchemy connection, in its transaction."""
    driver = connection.connection.driver_connection
    if backend == "postgres":
        # psycopg sends a parameterless query as is: several statements, no placeholder parsing.
        driver.execute(script)
    else:
        from scheduler_admin.sqlite_script import execute_sqlite_script

        execute_sqlite_script(driver, script)


def apply_files(connection: Any, names: list[str]) -> None:
    """Apply current schema files of the connection's backend."""
    backend = backend_of_dialect(connection.dialect.name)
    for name in names:
        execute_script(connection, backend, read_sql(backend, name))


def apply_revision_files(
    connection: Any, files: list[tuple[str, str]], delta_of: str | None = None
) -> None:
    """Apply frozen revision files, each given as ``(revision, file name)`` (used by the alembic
    revisions: a revision may re-apply files frozen by an earlier one, e.g. on downgrade). The
    files of revision ``delta_of`` (the upgrade being run) apply as their delta, what changed;
    every other file as it was released, to bring back the definitions it had."""
    backend = backend_of_dialect(connection.dialect.name)
    for revision, name in files:
        if revision == delta_of:
            script = read_revision_sql(revision, backend, name)
        else:
            script = released_revision_sql(revision, backend, name)
        execute_script(connection, backend, script)


def apply_schema(connection: Any) -> None:
    """Apply the whole current schema of the connection's backend."""
    backend = backend_of_dialect(connection.dialect.name)
    apply_files(connection, schema_files(backend))


def drop_transition_triggers(connection: Any) -> None:
    """SQLite: drop the triggers generated for the registered transitions (revision 0005), in
    the connection's transaction. No SQL file can name them, and once ``cron_job`` or
    ``scheduler_settings`` is gone they would break every write to their tables; teardown and
    the downgrade of 0005 call this first. Nothing on PostgreSQL (its SQL drops its own)."""
    if backend_of_dialect(connection.dialect.name) != "sqlite":
        return
    from scheduler_admin.sqlite.transitions import drop_all_triggers

    driver = connection.connection.driver_connection
    if not driver.in_transaction:
        driver.execute("BEGIN")
    drop_all_triggers(driver)


def teardown(connection: Any) -> None:
    backend = backend_of_dialect(connection.dialect.name)
    drop_transition_triggers(connection)
    execute_script(connection, backend, read_sql(backend, "teardown.sql"))
