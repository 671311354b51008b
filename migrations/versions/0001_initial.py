"""Initial schema: pg_cron preflight, scheduler schema, settings, meetings, triggers, admin
functions, grants, the reconcile job.

Revision ID: 0001
Revises:
Create Date: 2026-11-29

Its SQL is frozen in ``sql/revisions/0001/`` exactly as released (only its teardown keeps
alembic's version table, which later releases keep in schema scheduler).
"""

from __future__ import annotations

from alembic import op

from scheduler_admin.schema import apply_revision_files

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UPGRADE_FILES: dict[str, list[str]] = {
    "postgresql": [
        "00_extension.sql",
        "10_schema.sql",
        "20_functions.sql",
        "30_triggers.sql",
        "40_admin.sql",
        "50_grants.sql",
        "60_jobs.sql",
    ],
    "sqlite": [
        "10_schema.sql",
        "20_views.sql",
        "30_triggers.sql",
        "60_jobs.sql",
    ],
}
DOWNGRADE_FILES: dict[str, list[str]] = {
    "postgresql": ["teardown.sql"],
    "sqlite": ["teardown.sql"],
}


def upgrade() -> None:
    bind = op.get_bind()
    apply_revision_files(
        bind, [(revision, name) for name in UPGRADE_FILES[bind.dialect.name]], delta_of=revision
    )


def downgrade() -> None:
    bind = op.get_bind()
    apply_revision_files(bind, [(revision, name) for name in DOWNGRADE_FILES[bind.dialect.name]])
