"""Completion events and metrics per transition: every completion of a registered transition's
row records its event (path job, sweep, waker, reconcile, recover or write), with the
transition's name and the row's key; the retention keeps the totals per transition; events(),
metrics() and sweep() take an optional transition name (null: all of them).
PostgreSQL: scheduler.completion_events gains transition and row_key (meeting_id becomes
nullable), scheduler.metric_totals is kept per transition; complete_due_transition takes the
path; a transition's AFTER trigger records the write path.

SQLite: scheduler_completion_events gains transition and key (meeting_id becomes nullable) and
scheduler_metric_totals is kept per transition, both rebuilt keeping every row and id; the view
scheduler_events shows the new columns; the meetings triggers record their transition and key;
the triggers generated for each registered transition are re-created so that they record the
events of the write path, from the shape frozen in ``sql/revisions/0007/sqlite/
generated_triggers.sql`` (the downgrade: 0006's).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

Its SQL is frozen in ``sql/revisions/0007/``.
"""

from __future__ import annotations

from typing import Any

from alembic import op

from scheduler_admin.schema import apply_revision_files, read_revision_sql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UPGRADE_FILES: dict[str, list[tuple[str, str]]] = {
    "postgresql": [
        ("0002", "05_owner.sql"),
        ("0007", "10_schema.sql"),
        ("0007", "20_functions.sql"),
        ("0007", "40_admin.sql"),
        ("0007", "45_transitions.sql"),
        ("0007", "50_grants.sql"),
        ("0003", "60_jobs.sql"),
        ("0002", "90_reset_role.sql"),
    ],
    # the tables rebuilt first, then the view and the meetings triggers that read them
    "sqlite": [("0007", "upgrade.sql"), ("0007", "20_views.sql"), ("0007", "30_triggers.sql")],
}
DOWNGRADE_FILES: dict[str, list[tuple[str, str]]] = {
    "postgresql": [
        ("0002", "05_owner.sql"),
        # the functions whose signature or columns changed, the other transitions' events and
        # totals and 0007's columns; then 0006's functions; then what 0007 added
        ("0007", "downgrade.sql"),
        ("0006", "20_functions.sql"),
        ("0006", "40_admin.sql"),
        ("0006", "45_transitions.sql"),
        ("0006", "50_grants.sql"),
        ("0007", "downgrade_functions.sql"),
        ("0002", "90_reset_role.sql"),
    ],
    # the tables of 0006 again, then its view (frozen by 0004) and its meetings triggers
    "sqlite": [("0007", "downgrade.sql"), ("0004", "20_views.sql"), ("0006", "30_triggers.sql")],
}


def _sqlite_driver(bind: Any) -> Any:
    """The sqlite3 connection under the migration's connection, in its transaction."""
    driver = bind.connection.driver_connection
    if not driver.in_transaction:
        driver.execute("BEGIN")
    return driver


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        apply_revision_files(bind, UPGRADE_FILES[bind.dialect.name], delta_of=revision)
        return
    from scheduler_admin.sqlite.transitions import (
        create_generated_triggers,
        drop_generated_triggers,
    )

    # the generated triggers are dropped before the rebuild and re-created after it, now
    # recording the events of the write path
    present = drop_generated_triggers(_sqlite_driver(bind))
    apply_revision_files(bind, UPGRADE_FILES["sqlite"], delta_of=revision)
    create_generated_triggers(
        _sqlite_driver(bind), present, read_revision_sql("0007", "sqlite", "generated_triggers.sql")
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

    # the generated triggers of 0007 record events in columns 0006 has not: dropped first,
    # re-created as 0006 wrote them
    present = drop_generated_triggers(_sqlite_driver(bind))
    apply_revision_files(bind, DOWNGRADE_FILES["sqlite"])
    create_generated_triggers(
        _sqlite_driver(bind), present, read_revision_sql("0006", "sqlite", "generated_triggers.sql")
    )
