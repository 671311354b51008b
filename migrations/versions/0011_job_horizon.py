"""The job horizon, and unschedule_jobs() locks the jobs' rows before it deletes them.

``scheduler.settings.job_horizon`` (the default of every transition) and
``scheduler.transitions.job_horizon`` (a transition's own): a pending row gets its pg_cron job
only once its time is within the horizon, and the reconcile job registers the rows that enter
it (``sql/postgres/46_horizon.sql``). Null, the default, means no horizon: every pending row
has its job, as before. pg_cron's launcher pays for every job it holds at every wake-up
(benchmarks/RESULTS.md, "Scale").

``scheduler.unschedule_jobs()`` on the set-based path locks the rows with SELECT ... FOR UPDATE
and then deletes them by id, so that no statement on cron.job waits on a row with the table open
(benchmarks/findings/stack-depth-superuser.md).

SQLite: the same columns (``job_horizon_seconds``) and triggers that give a row beyond the
horizon no job (``sql/revisions/0011/sqlite/``).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

Its SQL is frozen in ``sql/revisions/0011/``: the delta written by ``scripts/next_delta.py``
(the new columns and functions, the changed functions, the grants) and its inverse.
"""

from __future__ import annotations

from typing import Any

from alembic import op

from scheduler_admin.schema import apply_revision_files, read_revision_sql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UPGRADE_FILES: dict[str, list[tuple[str, str]]] = {
    "postgresql": [
        ("0002", "05_owner.sql"),
        ("0011", "upgrade.sql"),
        ("0002", "90_reset_role.sql"),
    ],
    "sqlite": [("0011", "upgrade.sql"), ("0011", "30_triggers.sql")],
}
DOWNGRADE_FILES: dict[str, list[tuple[str, str]]] = {
    "postgresql": [
        ("0002", "05_owner.sql"),
        ("0011", "downgrade.sql"),
        ("0002", "90_reset_role.sql"),
    ],
    # the table dropped, then the meetings triggers of 0007
    "sqlite": [("0011", "downgrade.sql"), ("0007", "30_triggers.sql")],
}


def _sqlite_driver(bind: Any) -> Any:
    """The sqlite3 connection under the migration's connection, in its transaction."""
    driver = bind.connection.driver_connection
    if not driver.in_transaction:
        driver.execute("BEGIN")
    return driver


def _sqlite(bind: Any, files: list[tuple[str, str]], shape: str, *, delta: bool) -> None:
    """The SQLite files, with the triggers generated per transition re-created in the shape
    ``shape`` froze (0011: a row beyond the horizon gets no job; 0007: every pending row)."""
    from scheduler_admin.sqlite.transitions import (
        create_generated_triggers,
        drop_generated_triggers,
    )

    present = drop_generated_triggers(_sqlite_driver(bind))
    apply_revision_files(bind, files, delta_of=revision if delta else None)
    create_generated_triggers(
        _sqlite_driver(bind), present, read_revision_sql(shape, "sqlite", "generated_triggers.sql")
    )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _sqlite(bind, UPGRADE_FILES["sqlite"], "0011", delta=True)
        return
    apply_revision_files(bind, UPGRADE_FILES[bind.dialect.name], delta_of=revision)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _sqlite(bind, DOWNGRADE_FILES["sqlite"], "0007", delta=False)
        return
    apply_revision_files(bind, DOWNGRADE_FILES[bind.dialect.name])
