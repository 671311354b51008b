"""SQLite: a pending meeting's end time is stored from one reading of its instant.

The AFTER triggers of meetings rewrite a pending meeting's end_time as UTC text. They read its
whole seconds with ``strftime('%S')``, which truncates, and its milliseconds with
``strftime('%f')``, which rounds, so an end time with more than three fraction digits of at least
.9995 (``09:26:21.999987``) was stored a second early (``09:26:21``): written with plain SQL (the
``sqlite3`` shell), such a meeting completed up to a second before its end. Both now read
``julianday(end_time)``, one instant rounded to the millisecond (``09:26:22``). PostgreSQL keeps
microseconds: nothing to migrate there.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06

Its SQL is frozen in ``sql/revisions/0013/sqlite/30_triggers.sql`` (the two triggers); the
downgrade re-applies those of 0011.
"""

from __future__ import annotations

from alembic import op

from scheduler_admin.schema import apply_revision_files

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

UPGRADE_FILES: dict[str, list[tuple[str, str]]] = {
    "postgresql": [],
    "sqlite": [("0013", "30_triggers.sql")],
}
DOWNGRADE_FILES: dict[str, list[tuple[str, str]]] = {
    "postgresql": [],
    "sqlite": [("0011", "30_triggers.sql")],
}


def upgrade() -> None:
    bind = op.get_bind()
    apply_revision_files(bind, UPGRADE_FILES[bind.dialect.name], delta_of=revision)


def downgrade() -> None:
    bind = op.get_bind()
    apply_revision_files(bind, DOWNGRADE_FILES[bind.dialect.name])
