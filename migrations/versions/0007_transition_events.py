"""Completion events and metrics per transition: every completion of a registered transition's
row records an event (its transition and key; meeting_id only for meetings) with the path that
completed it; the totals the retention keeps are per transition; events() and metrics() take an
optional transition name (null: all of them).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

Its SQL is frozen in ``sql/revisions/0007/``.
"""

from __future__ import annotations

from alembic import op

from scheduler_admin.schema import apply_revision_files

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
    "sqlite": [],
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
    "sqlite": [],
}


def upgrade() -> None:
    bind = op.get_bind()
    apply_revision_files(bind, UPGRADE_FILES[bind.dialect.name])


def downgrade() -> None:
    bind = op.get_bind()
    apply_revision_files(bind, DOWNGRADE_FILES[bind.dialect.name])
