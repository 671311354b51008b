"""Timed transitions for any table, first slice: the registry scheduler.transitions (meetings the
builtin first entry), scheduler.add_transition / remove_transition / transitions, generic
triggers, jobs <prefix><key> running scheduler.complete_transition, repaired by recover and the
reconcile job and swept by the seconds sweep; jobs scheduled and unscheduled by name
(scheduler.schedule_jobs / unschedule_jobs, which register_jobs / unregister_jobs now call).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Its SQL is frozen in ``sql/revisions/0005/``.
"""

from __future__ import annotations

from alembic import op

from scheduler_admin.schema import apply_revision_files

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UPGRADE_FILES: dict[str, list[tuple[str, str]]] = {
    "postgresql": [
        ("0002", "05_owner.sql"),
        ("0004", "10_schema.sql"),
        ("0005", "20_functions.sql"),
        ("0004", "30_triggers.sql"),
        ("0005", "40_admin.sql"),
        ("0005", "45_transitions.sql"),
        ("0005", "50_grants.sql"),
        ("0003", "60_jobs.sql"),
        ("0002", "90_reset_role.sql"),
    ],
    "sqlite": [],
}
DOWNGRADE_FILES: dict[str, list[tuple[str, str]]] = {
    "postgresql": [
        ("0002", "05_owner.sql"),
        # the transitions' triggers and jobs first, while their functions exist
        ("0005", "downgrade.sql"),
        ("0004", "20_functions.sql"),
        ("0004", "40_admin.sql"),
        ("0005", "downgrade_functions.sql"),
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
