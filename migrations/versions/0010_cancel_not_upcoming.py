"""cancel_meeting refuses a meeting that is not upcoming.

``scheduler.cancel_meeting()`` raised nothing for a meeting already done or cancelled: it
answered with its status and ``0 jobs removed``, which read as success. It now raises
invalid_parameter_value naming the meeting's status, with a hint, and changes nothing, as
``schedule_meeting()`` does. SQLite's twin (``scheduler_admin/sqlite/scheduling.py``) is Python:
nothing to migrate there.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

Its SQL is frozen in ``sql/revisions/0010/``: the delta written by ``scripts/next_delta.py``
(the changed function) and its inverse (a marker: the definition 0009 holds).
"""

from __future__ import annotations

from alembic import op

from scheduler_admin.schema import apply_revision_files

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

UPGRADE_FILES: dict[str, list[tuple[str, str]]] = {
    "postgresql": [
        ("0002", "05_owner.sql"),
        ("0010", "upgrade.sql"),
        ("0002", "90_reset_role.sql"),
    ],
    "sqlite": [],
}
DOWNGRADE_FILES: dict[str, list[tuple[str, str]]] = {
    "postgresql": [
        ("0002", "05_owner.sql"),
        ("0010", "downgrade.sql"),
        ("0002", "90_reset_role.sql"),
    ],
    "sqlite": [],
}


def upgrade() -> None:
    bind = op.get_bind()
    apply_revision_files(bind, UPGRADE_FILES[bind.dialect.name], delta_of=revision)


def downgrade() -> None:
    bind = op.get_bind()
    apply_revision_files(bind, DOWNGRADE_FILES[bind.dialect.name])
