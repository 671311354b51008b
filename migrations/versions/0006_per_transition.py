"""Every operation per transition: recover, reconcile, list_jobs, history, pause, resume and
wake take an optional transition name (null: all of them); a transition can be paused by name
(scheduler.transitions.paused; scheduler.transition_active); transition_health for doctor;
the reconcile job's retention deletes the other transitions' job runs too.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Its SQL is frozen in ``sql/revisions/0006/``.
"""

from __future__ import annotations

from alembic import op

from scheduler_admin.schema import apply_revision_files

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
    "sqlite": [],
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
    "sqlite": [],
}


def upgrade() -> None:
    bind = op.get_bind()
    apply_revision_files(bind, UPGRADE_FILES[bind.dialect.name])


def downgrade() -> None:
    bind = op.get_bind()
    apply_revision_files(bind, DOWNGRADE_FILES[bind.dialect.name])
