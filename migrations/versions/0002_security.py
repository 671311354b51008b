"""Security: pinned search path and qualified types in every function, functions and jobs owned
by the owner of public.meetings, TRIGGER on meetings only for its owner, lock and statement
timeouts for the jobs, end times checked for range, unique meeting ids required, row-level
security on the tables the migration creates.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Its SQL is frozen in ``sql/revisions/0002/``.
"""

from __future__ import annotations

from alembic import op

from scheduler_admin.schema import apply_revision_files

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE_FILES: dict[str, list[tuple[str, str]]] = {
    "postgresql": [
        ("0002", "05_owner.sql"),
        ("0002", "10_schema.sql"),
        ("0002", "20_functions.sql"),
        ("0002", "30_triggers.sql"),
        ("0002", "40_admin.sql"),
        ("0002", "50_grants.sql"),
        ("0002", "60_jobs.sql"),
        ("0002", "90_reset_role.sql"),
    ],
    "sqlite": [],
}
DOWNGRADE_FILES: dict[str, list[tuple[str, str]]] = {
    "postgresql": [
        ("0002", "downgrade.sql"),
        ("0001", "20_functions.sql"),
        ("0001", "30_triggers.sql"),
        ("0001", "40_admin.sql"),
        ("0001", "50_grants.sql"),
        ("0001", "60_jobs.sql"),
    ],
    "sqlite": [],
}


def upgrade() -> None:
    bind = op.get_bind()
    apply_revision_files(bind, UPGRADE_FILES[bind.dialect.name], delta_of=revision)


def downgrade() -> None:
    bind = op.get_bind()
    apply_revision_files(bind, DOWNGRADE_FILES[bind.dialect.name])
