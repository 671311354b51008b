"""Every operation per transition: recover, reconcile, list_jobs, history, pause, resume and
wake take an optional transition name (null: all of them); a transition can be paused by name
(the registry's column ``paused``): its triggers register no job and its jobs change nothing
while it is paused, and recover, reconcile, the sweep and the waker leave it alone.

PostgreSQL: scheduler.transition_active (is_enabled for meetings), transition_health for doctor,
the reconcile job's retention of every transition's job runs, the repair re-creating a
transition's lost triggers. SQLite: the column of scheduler_transitions, the meetings triggers
that read it, and the triggers generated for each registered transition re-created so that they
read it too, from the shape frozen in ``sql/revisions/0006/sqlite/generated_triggers.sql`` (the
downgrade: 0005's, frozen in ``sql/revisions/0005/sqlite/``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Its SQL is frozen in ``sql/revisions/0006/``.
"""

from __future__ import annotations

from typing import Any

from alembic import op

from scheduler_admin.schema import apply_revision_files, read_revision_sql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UPGRADE_FILES: dict[str, list[tuple[str, str]]] = {
    "postgresql": [
        ("0002", "05_owner.sql"),
        ("0006", "20_functions.sql"),
        ("0006", "40_admin.sql"),
        ("0006", "45_transitions.sql"),
        ("0006", "50_grants.sql"),
        ("0003", "60_jobs.sql"),
        ("0002", "90_reset_role.sql"),
    ],
    # the column first, then the meetings triggers that read it
    "sqlite": [("0006", "upgrade.sql"), ("0006", "30_triggers.sql")],
}
DOWNGRADE_FILES: dict[str, list[tuple[str, str]]] = {
    "postgresql": [
        ("0002", "05_owner.sql"),
        # the functions whose signature or columns changed, then 0005's, then what 0006 added
        ("0006", "downgrade.sql"),
        ("0005", "20_functions.sql"),
        ("0005", "40_admin.sql"),
        ("0005", "45_transitions.sql"),
        ("0005", "50_grants.sql"),
        ("0006", "downgrade_functions.sql"),
        ("0002", "90_reset_role.sql"),
    ],
    # 0005's meetings triggers (frozen by 0004) first: they do not read the column, which then
    # goes (the generated triggers are dropped before and re-created after, see downgrade())
    "sqlite": [("0004", "30_triggers.sql"), ("0006", "downgrade.sql")],
}


def _sqlite_driver(bind: Any) -> Any:
    """The sqlite3 connection under the migration's connection, in its transaction."""
    driver = bind.connection.driver_connection
    if not driver.in_transaction:
        driver.execute("BEGIN")
    return driver


def upgrade() -> None:
    bind = op.get_bind()
    apply_revision_files(bind, UPGRADE_FILES[bind.dialect.name], delta_of=revision)
    if bind.dialect.name == "sqlite":
        from scheduler_admin.sqlite.transitions import (
            create_generated_triggers,
            drop_generated_triggers,
        )

        # the triggers of the transitions registered under 0005, again with the paused check and
        # the job minute that rounds up a fraction finer than SQLite's milliseconds
        driver = _sqlite_driver(bind)
        create_generated_triggers(
            driver,
            drop_generated_triggers(driver),
            read_revision_sql("0006", "sqlite", "generated_triggers.sql"),
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        apply_revision_files(bind, DOWNGRADE_FILES[bind.dialect.name])
        return
    from scheduler_admin.sqlite.transitions import (
        create_generated_triggers,
        drop_generated_triggers,
    )

    # the generated triggers read the column: dropped first, re-created as 0005 wrote them (no
    # paused check, the job minute of the meetings' view)
    present = drop_generated_triggers(_sqlite_driver(bind))
    apply_revision_files(bind, DOWNGRADE_FILES["sqlite"])
    create_generated_triggers(
        _sqlite_driver(bind), present, read_revision_sql("0005", "sqlite", "generated_triggers.sql")
    )
