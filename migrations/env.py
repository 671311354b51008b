"""Alembic environment of the meeting status scheduler.

The connection comes, in order, from ``config.attributes["connection"]`` (tests and
``scheduler-admin migrate`` pass theirs), ``-x url=…``, ``sqlalchemy.url`` in the ini file, then
the scheduler's configuration (``scheduler_admin.config.resolve``).
"""

from __future__ import annotations

import logging
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import Connection

from scheduler_admin import config as scheduler_config

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


def run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(url=database_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = alembic_config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as conn:
        run(conn)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
