"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from __future__ import annotations

from alembic import op

from scheduler_admin.schema import apply_files

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}

# The sql/ files this revision adds or changes, per backend (re-applying a file is harmless).
UPGRADE_FILES: dict[str, list[str]] = {"postgresql": [], "sqlite": []}
DOWNGRADE_FILES: dict[str, list[str]] = {"postgresql": [], "sqlite": []}


def upgrade() -> None:
    bind = op.get_bind()
    apply_files(bind, UPGRADE_FILES[bind.dialect.name])


def downgrade() -> None:
    bind = op.get_bind()
    apply_files(bind, DOWNGRADE_FILES[bind.dialect.name])
