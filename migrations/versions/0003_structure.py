"""Structure: orphan jobs removed set-based by repair, history newest first with run messages
that say what the run did, one parser of our job commands.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Its SQL is frozen in ``sql/revisions/0003/``.
"""

from __future__ import annotations

from alembic import op

from scheduler_admin.schema import apply_revision_files

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UPGRADE_FILES: dict[str, list[tuple[str, str]]] = {
    "postgresql": [],
    "sqlite": [("0003", "20_views.sql")],
}
DOWNGRADE_FILES: dict[str, list[tuple[str, str]]] = {
    "postgresql": [],
    "sqlite": [("0003", "downgrade.sql"), ("0001", "20_views.sql")],
}


def upgrade() -> None:
    bind = op.get_bind()
    apply_revision_files(bind, UPGRADE_FILES[bind.dialect.name])


def downgrade() -> None:
    bind = op.get_bind()
    apply_revision_files(bind, DOWNGRADE_FILES[bind.dialect.name])
