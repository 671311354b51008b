"""Run the packaged alembic migrations from Python (used by ``scheduler-admin migrate``)."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config

from scheduler_admin.schema import migrations_dir


def alembic_config(*, connection: Any = None, url: str | None = None) -> Config:
    """An alembic Config for the packaged migrations, bound to a connection or a URL.

    With ``connection`` (a SQLAlchemy Connection) the migrations run in it, so a caller can
    migrate exactly the connection it uses.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("path_separator", "os")
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    cfg.attributes["skip_logging_config"] = True
    return cfg


def upgrade(revision: str = "head", **kwargs: Any) -> None:
    command.upgrade(alembic_config(**kwargs), revision)


def downgrade(revision: str, **kwargs: Any) -> None:
    command.downgrade(alembic_config(**kwargs), revision)
