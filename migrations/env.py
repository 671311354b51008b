"""Alembic environment of the meeting status scheduler.

The connection comes, in order, from ``config.attributes["connection"]`` (tests and
``scheduler-admin migrate`` pass theirs), ``-x url=…``, ``sqlalchemy.url`` in the ini file, then
the scheduler's configuration (``scheduler_admin.config.resolve``).
"""

from __future__ import annotations

import logging
import os
from logging.config import fileConfig
from typing import Any
from urllib.parse import urlsplit

from alembic import context
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from scheduler_admin import config as scheduler_config
from scheduler_admin.schema import execute_script, read_sql

alembic_config = context.config
if alembic_config.config_file_name is not None and not alembic_config.attributes.get(
    "skip_logging_config"
):
    fileConfig(alembic_config.config_file_name, disable_existing_loggers=False)

log = logging.getLogger("scheduler_admin.migrations")

# Our schema is SQL in sql/, not SQLAlchemy models: no autogenerate.
target_metadata = None


def database_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or alembic_config.get_main_option(
        "sqlalchemy.url"
    )
    settings = scheduler_config.resolve(url)
    if settings.url is None:
        raise scheduler_config.ConfigurationError(
            "migrations need a direct database connection, not the Supabase REST API",
            hint="Set SUPABASE_DB_URL (or SCHEDULER_DATABASE_URL) to its connection string.",
        )
    log.info("migrating %s (from %s)", settings.display, settings.source)
    return scheduler_config.sqlalchemy_url(settings.url)


# On PostgreSQL alembic's version table lives in schema scheduler with everything else of ours,
# out of public (which Supabase's Data API exposes).
VERSION_TABLE_SCHEMA = "scheduler"


# The words of meetings.status to act on (for tables with their own statuses): -x name=word, or
# the environment variable; passed to the SQL as settings of the migration's transaction.
STATUS_OPTIONS = {
    "pending_status": "SCHEDULER_PENDING_STATUS",
    "done_status": "SCHEDULER_DONE_STATUS",
    "cancelled_status": "SCHEDULER_CANCELLED_STATUS",
}


def status_words() -> dict[str, str]:
    x_args = context.get_x_argument(as_dictionary=True)
    words = {}
    for name, variable in STATUS_OPTIONS.items():
        word = x_args.get(name) or os.environ.get(variable, "")
        if word.strip():
            words[name] = word.strip()
    return words


# The default job horizon (issue 25): -x job_horizon=1d, or SCHEDULER_JOB_HORIZON; "none" clears
# it; not given: left as it is. Stored after the revisions by scheduler.set_job_horizon() (its
# twin on SQLite), from revision 0011 on.
HORIZON_OPTION = ("job_horizon", "SCHEDULER_JOB_HORIZON")


def job_horizon() -> tuple[bool, str | None]:
    """Whether this run was given a job horizon, and which (as an interval's text; None: none).
    An unreadable or too short one fails the migration before anything is changed."""
    from scheduler_admin.core import interval_text, parse_horizon

    name, variable = HORIZON_OPTION
    given = context.get_x_argument(as_dictionary=True).get(name) or os.environ.get(variable, "")
    if not given.strip():
        return False, None
    return True, interval_text(parse_horizon(given))


def set_job_horizon(connection: Connection) -> None:
    """After the revisions: the job horizon this run was given, when the schema has it."""
    given, value = job_horizon()
    if not given:
        return
    driver = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        exists = driver.execute(
            "select pg_catalog.to_regprocedure("
            "'scheduler.set_job_horizon(pg_catalog.interval, pg_catalog.text)') is not null"
        ).fetchone()[0]
        if exists:
            driver.execute("select scheduler.set_job_horizon(%s::pg_catalog.interval)", (value,))
            log.info("job horizon: %s", value or "none")
        return
    import sqlite3
    from datetime import datetime, timezone

    from scheduler_admin.sqlite.horizon import set_job_horizon as set_sqlite_horizon

    if driver.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'scheduler_horizons'"
    ).fetchone():
        row_factory = driver.row_factory
        driver.row_factory = sqlite3.Row
        try:
            set_sqlite_horizon(driver, value, None, datetime.now(timezone.utc))
        finally:
            driver.row_factory = row_factory
        log.info("job horizon: %s", value or "none")


def prepare_postgres(connection: Connection) -> None:
    """Before the revisions run: the schema for the version table (moved there from public by
    earlier releases, refused when another role made it), whether public.meetings exists, and
    the status words this run was given (after_revisions.sql stores them)."""
    execute_script(
        connection, "postgres", read_sql("postgres", "migration_env/before_revisions.sql")
    )
    driver = connection.connection.driver_connection
    for name, word in status_words().items():
        driver.execute("select pg_catalog.set_config(%s, %s, true)", (f"scheduler.{name}", word))
    # the report of configure_statuses() (the statuses left alone) reaches alembic's log; other
    # notices ("already exists, skipping") do not
    driver.add_notice_handler(report_statuses)


def report_statuses(diag: Any) -> None:
    message = diag.message_primary or ""
    if message.startswith("meeting statuses:"):
        log.info("%s", message)


def secure_version_table(connection: Connection) -> None:
    """After the revisions: nobody but its owner reads or writes the version table."""
    execute_script(
        connection, "postgres", read_sql("postgres", "migration_env/after_revisions.sql")
    )


def begin_sqlite(connection: Connection) -> None:
    """The driver's transaction, begun before alembic creates its version table (Python's
    sqlite3 would run that CREATE TABLE outside of any transaction); whoever owns the connection
    commits or rolls it back, as execute_sqlite_script() assumes."""
    driver = connection.connection.driver_connection
    if not driver.in_transaction:
        driver.execute("BEGIN")


def configure_sqlite_statuses(connection: Connection) -> None:
    """After the revisions, on SQLite: the status words this run was given, checked against the
    meetings table and stored by configure_statuses() (the twin of after_revisions.sql), on the
    driver connection, in the migration's transaction. It logs the statuses left alone."""
    words = status_words()
    if not words:
        return
    import sqlite3

    from scheduler_admin.sqlite.statuses import configure_statuses

    driver = connection.connection.driver_connection
    begin_sqlite(connection)  # still open unless a caller's code committed it
    row_factory = driver.row_factory
    driver.row_factory = sqlite3.Row  # what scheduler_admin.sqlite reads rows with
    try:
        configure_statuses(
            driver,
            words.get("pending_status"),
            words.get("done_status"),
            words.get("cancelled_status"),
        )
    finally:
        driver.row_factory = row_factory


def run(connection: Connection) -> None:
    postgres = connection.dialect.name == "postgresql"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table_schema=VERSION_TABLE_SCHEMA if postgres else None,
        # SQLite's DDL is transactional too (alembic assumes it is not, and would commit each
        # revision on its own): one transaction for the revisions and configure_statuses(), so
        # that a refused status word leaves the database as it was, as on PostgreSQL
        transactional_ddl=True,
    )
    sqlite = connection.dialect.name == "sqlite"
    job_horizon()  # an unreadable job horizon fails before anything is changed
    with context.begin_transaction():
        if postgres:
            prepare_postgres(connection)
        elif sqlite:
            begin_sqlite(connection)
        context.run_migrations()
        if postgres:
            secure_version_table(connection)
        elif sqlite:
            configure_sqlite_statuses(connection)
        set_job_horizon(connection)
        if sqlite:
            repair_sqlite_jobs(connection)


def repair_sqlite_jobs(connection: Connection) -> None:
    """After the revisions, on SQLite, when the store is at head and the scheduler enabled: the
    jobs of upcoming meetings that have none (a meetings table that existed before the
    migration, rows written while the triggers were missing) are registered and those already
    over completed, by the twin of scheduler.repair(), as 60_jobs.sql does on PostgreSQL; in
    the migration's transaction."""
    import sqlite3
    from datetime import datetime, timezone

    from alembic.script import ScriptDirectory

    from scheduler_admin.sqlite.functions import is_enabled
    from scheduler_admin.sqlite.recovery import repair

    current = context.get_context().get_current_revision()
    if current is None or current != ScriptDirectory.from_config(alembic_config).get_current_head():
        return
    driver = connection.connection.driver_connection
    row_factory = driver.row_factory
    driver.row_factory = sqlite3.Row  # what scheduler_admin.sqlite reads rows with
    try:
        if not is_enabled(driver):  # as 60_jobs.sql's "where scheduler.is_enabled()"
            return
        report = repair(driver, datetime.now(timezone.utc), dry_run=False)
    finally:
        driver.row_factory = row_factory
    if report["jobs_scheduled"] or report["overdue_completed"]:
        log.info(
            "meetings already in the table: %d job(s) registered, %d overdue meeting(s) completed",
            report["jobs_scheduled"],
            report["overdue_completed"],
        )


def run_migrations_offline() -> None:
    url = database_url()
    context.configure(
        url=url,
        literal_binds=True,
        version_table_schema=VERSION_TABLE_SCHEMA if url.startswith("postgresql") else None,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = alembic_config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    url = database_url()
    engine = create_engine(
        "postgresql+psycopg://" if multi_host(url) else url,
        poolclass=pool.NullPool,
        **multi_host(url),
    )
    try:
        conn = engine.connect()
    except OperationalError as exc:
        failure = connection_failed(exc, url)
        if failure is None:
            raise
        raise failure from None
    with conn:
        run(conn)
    engine.dispose()


def multi_host(url: str) -> dict[str, Any]:
    """For a libpq multi-host URL (``postgresql://h1:5432,h2:5432/db?target_session_attrs=
    read-write``, see docs/high-availability.md), which SQLAlchemy cannot parse: the connection
    made by psycopg from the URL itself (the engine's URL then only names the dialect)."""
    if not url.startswith("postgresql") or "," not in urlsplit(url).netloc:
        return {}
    import psycopg

    conninfo = scheduler_config.psycopg_conninfo(url)
    return {"creator": lambda: psycopg.connect(conninfo)}


def connection_failed(exc: OperationalError, url: str) -> Exception | None:
    """Our message for a failed connection: the target masked, the driver's message redacted
    (libpq quotes the part of a URL it could not use, which may be a piece of the password)."""
    import psycopg

    from scheduler_admin.backends.postgres import connection_error
    from scheduler_admin.redact import Redactor

    if not isinstance(exc.orig, psycopg.OperationalError):
        return None
    redactor = Redactor()
    redactor.add_url(url)
    target = scheduler_config.mask_url(scheduler_config.psycopg_conninfo(url))
    return connection_error(exc.orig, target, redactor)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
