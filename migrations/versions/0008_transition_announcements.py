"""A transition's writes wake the waker, and history reads every key: the AFTER trigger of a
registered transition's table announces the earliest time a statement registered on channel
``scheduler_transitions`` (NOTIFY at commit, JSON ``{"transition", "time"}``), as the meetings
triggers do on ``scheduler_meetings``; ``history()`` reads the runs of a row whose text key
holds a backslash (its job's command carries the key as an escape string ``E'...'``); and the
repair of a transition (recover, reconcile, doctor's ``transition_health()``) finds orphan jobs
through a hashed anti join instead of comparing each job with every pending key (20,000 rows:
2.0 s to 0.07 s).

PostgreSQL only: SQLite has no NOTIFY (its waker re-polls every second) and writes every key
with quotes doubled, which its history already reads.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

Its SQL is frozen in ``sql/revisions/0008/``.
"""

from __future__ import annotations

from alembic import op

from scheduler_admin.schema import apply_revision_files

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UPGRADE_FILES: dict[str, list[tuple[str, str]]] = {
    "postgresql": [
        ("0002", "05_owner.sql"),
        ("0008", "40_admin.sql"),
        ("0008", "45_transitions.sql"),
        ("0007", "50_grants.sql"),
        ("0002", "90_reset_role.sql"),
    ],
}
DOWNGRADE_FILES: dict[str, list[tuple[str, str]]] = {
    "postgresql": [
        ("0002", "05_owner.sql"),
        ("0007", "40_admin.sql"),
        ("0007", "45_transitions.sql"),
        ("0007", "50_grants.sql"),
        ("0002", "90_reset_role.sql"),
    ],
}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name in UPGRADE_FILES:
        apply_revision_files(bind, UPGRADE_FILES[bind.dialect.name], delta_of=revision)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name in DOWNGRADE_FILES:
        apply_revision_files(bind, DOWNGRADE_FILES[bind.dialect.name])
